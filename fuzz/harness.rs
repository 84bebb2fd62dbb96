//! The whole-pipeline harness shared by the cargo-fuzz targets (`fuzz_targets/*.rs`) and
//! the stable token-soup loop (`examples/fuzz_soup.rs`): one text in, every stage run,
//! and a description of the first broken invariant out. A panic anywhere is a finding
//! too; the callers catch it (libFuzzer by aborting, the soup loop with `catch_unwind`).

// Each caller uses only some of the entry points.
#![allow(dead_code)]

use std::time::Duration;

use matcalc::numeric::{check_derivative, CheckConfig, Verdict};
use matcalc::parse::{parse_with, ParseOptions};
use matcalc::print::{render, Style};
use matcalc::shape::infer;
use matcalc::simplify::{simplify, Limits};

/// Every printing style, for the round trip.
pub const STYLES: [Style; 3] = [Style::Unicode, Style::Ascii, Style::Latex];

/// Small saturation limits, so that one input costs milliseconds, not seconds.
pub fn fuzz_limits() -> Limits {
    Limits {
        iterations: 8,
        nodes: 3_000,
        time: Duration::from_millis(100),
        patience: 3,
    }
}

/// One trial of the numeric check: enough to run every evaluation path.
pub fn fuzz_check_config() -> CheckConfig {
    CheckConfig {
        trials: 1,
        max_redraws: 3,
        ..CheckConfig::standard()
    }
}

/// Parses only; returns the broken invariant, if any. A parse error is not one.
pub fn parse_only(text: &str) -> Result<(), String> {
    let options = ParseOptions::standard();
    if let Ok(expr) = parse_with(text, &options) {
        round_trip(text, &expr, &options)?;
    }
    Ok(())
}

fn round_trip(
    text: &str,
    expr: &matcalc::expr::Expr,
    options: &ParseOptions,
) -> Result<(), String> {
    for style in STYLES {
        let printed = render(expr, style);
        match parse_with(&printed, options) {
            Ok(again) if again == *expr => {}
            Ok(again) => {
                return Err(format!(
                    "round trip changed the tree: {text:?} printed {style:?} as {printed:?}, \
                     which parses to {again:?}, not {expr:?}"
                ))
            }
            // A printed form may legitimately be longer or deeper than the limits.
            Err(matcalc::parse::Error::InputTooLong { .. })
            | Err(matcalc::parse::Error::TreeTooDeep { .. })
            | Err(matcalc::parse::Error::NestingTooDeep { .. })
            | Err(matcalc::parse::Error::OperatorRunTooLong { .. }) => {}
            Err(error) => {
                return Err(format!(
                    "round trip failed to parse: {text:?} printed {style:?} as {printed:?}: {error}"
                ))
            }
        }
    }
    Ok(())
}

/// The whole pipeline: parse, round trip, shapes, the derivative with respect to the
/// first few free variables, simplification, printing in every style, and a numeric
/// check on small sizes. Returns the broken invariant, if any; errors that the pipeline
/// reports cleanly are not broken invariants.
pub fn pipeline(text: &str) -> Result<(), String> {
    let options = ParseOptions::standard();
    let Ok(expr) = parse_with(text, &options) else {
        return Ok(());
    };
    round_trip(text, &expr, &options)?;
    let Ok(typed) = infer(&expr, &matcalc::expr::Decls::new()) else {
        return Ok(());
    };
    let limits = fuzz_limits();
    let simplified = simplify(&typed.expr, &typed.vars, &[], &limits);
    for style in STYLES {
        let _ = render(&simplified.display, style);
        let _ = render(&simplified.compute, style);
    }
    for wrt in expr.free_vars().iter().take(2) {
        let Ok(derivative) = matcalc::diff::derivative(&typed, wrt, 1) else {
            continue;
        };
        let simplified = simplify(&derivative.expr, &typed.vars, &[], &limits);
        for style in STYLES {
            let _ = render(&simplified.display, style);
        }
        let verdict = check_derivative(&typed, &derivative, &fuzz_check_config());
        if let Verdict::Pass { max_rel_error, .. } = verdict {
            if !max_rel_error.is_finite() {
                return Err(format!(
                    "{text:?}: check passed with a non-finite error {max_rel_error}"
                ));
            }
        }
    }
    Ok(())
}

/// Token-soup ingredients for the stable fuzz loop and the no-panic proptest: the
/// grammar's tokens, their look-alikes and plain junk.
pub const TOKENS: &[&str] = &[
    "W",
    "x",
    "y",
    "A",
    "B",
    "K",
    "X",
    "Y",
    "S",
    "z",
    "b",
    "α",
    "β",
    "σ",
    "ℓ",
    "I",
    "𝟙",
    "W₁",
    "W_1",
    "W_{2}",
    "x₂",
    "\\alpha",
    "alpha",
    "Sigma",
    "ell",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "|",
    "‖",
    "||",
    "+",
    "-",
    "−",
    "*",
    "·",
    "/",
    "⊙",
    ".*",
    "ᵀ",
    "'",
    "^T",
    "^\\top",
    "⁻¹",
    "⁻ᵀ",
    "²",
    "³",
    "⁻²",
    "^2",
    "^-1",
    "^(-1)",
    "^{-1}",
    "^0",
    "^64",
    "^65",
    "^-64",
    "½",
    "0",
    "1",
    "2",
    "0.5",
    "1/2",
    "1e300",
    "99999999999999999999",
    "tr",
    "tr(",
    "det(",
    "log",
    "log|",
    "exp(",
    "log(",
    "sqrt(",
    "tanh(",
    "σ(",
    "relu(",
    "softplus(",
    "step(",
    "diag(",
    "sum(",
    "norm(",
    "∇ℓ(",
    "grad ell(",
    "ℓ(",
    "\\frac{1}{2}",
    "\\left(",
    "\\right)",
    "\\|",
    "\\top",
    "\\nabla",
    "\\log",
    "\\operatorname{tr}",
    " ",
    " ",
    "\t",
    "\n",
    "х",
    "Т",
    "ｘ",
    "＋",
    "\u{FEFF}",
    "\u{200B}",
    "\u{200F}",
    "\u{0301}",
    "\0",
    "=",
    ":",
    ",",
    ";",
    "let",
    "where",
    "d",
    "dX",
    "∂",
    "Wx",
    "WᵀW",
    "xxᵀ",
    "Wx − y",
    "XXᵀ",
    "⁻",
    "ᵀᵀ",
    "…",
    "\\",
    "_",
    "^",
    "#",
    "$",
    "%",
    "&",
    "@",
    "~",
    "`",
    "\"",
    "?",
    "^{65}",
];
