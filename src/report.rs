//! Result texts and JSON that every face shows alike: the check's verdict line, the
//! claim's verdict, the `--format json` objects of `diff` and `verify`, and the JSON of an
//! error. The command line, the REPL and `matcalc serve` take them from here, so that
//! the same answer reads the same everywhere.

use crate::numeric::Verdict;
use crate::print::Style;
use crate::session::{
    results_text, verdict_json, DerivativeResult, Error, SimplifyResult, VerifyResult,
};

/// The one-line summary of a numeric check (a failure adds its counterexample's lines).
pub fn verdict_line(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Pass {
            trials,
            max_rel_error,
        } => format!("check: ok ({trials} random trials, max rel. error {max_rel_error:.1e})"),
        Verdict::Fail(counterexample) => {
            format!("check: FAILED\n{}", counterexample.describe().trim_end())
        }
        Verdict::Inconclusive { reason } => format!("check: inconclusive ({reason})"),
        Verdict::Unreadable { reason } => format!("check: FAILED ({reason})"),
    }
}

/// What `verify` says about a claim, ending in a newline: `claim: correct (…)`, or
/// `claim: wrong` with the counterexample, or `claim: inconclusive (…)`.
pub fn claim_text(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Pass {
            trials,
            max_rel_error,
        } => {
            format!("claim: correct ({trials} random trials, max rel. error {max_rel_error:.1e})\n")
        }
        Verdict::Fail(counterexample) => {
            format!("claim: wrong\n{}\n", counterexample.describe().trim_end())
        }
        Verdict::Inconclusive { reason } => format!("claim: inconclusive ({reason})\n"),
        Verdict::Unreadable { reason } => format!("claim: wrong ({reason})\n"),
    }
}

/// What `diff` prints in Unicode or ASCII: the equations, their `where` lines, and a
/// verdict line for each derivative that was checked.
pub fn derivative_text(results: &[DerivativeResult], style: Style) -> String {
    let mut out = results_text(results, style);
    for result in results {
        if let Some(verdict) = &result.check {
            if results.len() > 1 {
                out += &format!("{}: ", crate::session::render_symbol(&result.wrt, style));
            }
            out += &format!("{}\n", verdict_line(verdict));
            if let Some(domain) = &result.domain {
                out += &domain.render_note(&result.problem.text);
            }
        }
    }
    out
}

/// What `diff --format latex` prints: the `aligned` block, then each check's verdict as a
/// LaTeX comment (`% W: check: ok …`), so that the block still compiles and the check
/// is shown.
pub fn derivative_latex(results: &[DerivativeResult]) -> String {
    crate::session::results_latex(results) + &check_comments(results, "% ")
}

/// Each checked derivative's verdict, one line each after `comment` (`# ` in Python,
/// `% ` in LaTeX): every format shows its check.
pub fn check_comments(results: &[DerivativeResult], comment: &str) -> String {
    let mut out = String::new();
    for result in results {
        if let Some(verdict) = &result.check {
            let name = crate::session::render_symbol(&result.wrt, Style::Ascii);
            for line in verdict_line(verdict).lines() {
                out += &format!("{comment}{name}: {line}\n");
            }
        }
    }
    out
}

/// What `simplify` prints in Unicode or ASCII: the simplified form and its `where` lines.
pub fn simplified_text(result: &SimplifyResult, style: Style) -> String {
    let mut out = format!("{}\n", result.form.render(style));
    for (index, (name, body)) in result.form.render_wheres(style).iter().enumerate() {
        let lead = if index == 0 { "  where" } else { "       " };
        out += &format!("{lead} {name} = {body}\n");
    }
    out
}

/// `simplify`'s answer as an `aligned` LaTeX block, its `where` lines below it, as
/// [`crate::session::results_latex`] writes derivatives.
pub fn simplified_latex(result: &SimplifyResult) -> String {
    let mut lines = vec![format!("&{}", result.form.render(Style::Latex))];
    for (index, (name, body)) in result.form.render_wheres(Style::Latex).iter().enumerate() {
        let lead = if index == 0 { "\\text{where } " } else { "" };
        lines.push(format!("{lead}{name} &= {body}"));
    }
    format!(
        "\\begin{{aligned}}\n{}\n\\end{{aligned}}\n",
        lines.join(" \\\\\n")
    )
}

/// The `--format json` object of `diff` (SPEC §5): one derivative's object, or
/// `{"results": [...]}` for several variables.
pub fn results_json(results: &[DerivativeResult]) -> serde_json::Value {
    match results {
        [single] => single.to_json(),
        _ => serde_json::json!({
            "results": results.iter().map(DerivativeResult::to_json).collect::<Vec<_>>()
        }),
    }
}

/// The `--format json` object of `verify`: the claim, whether it is correct, the check's
/// verdict and matcalc's own derivative.
pub fn verify_json(result: &VerifyResult, claim: &str) -> serde_json::Value {
    serde_json::json!({
        "wrt": result.ours.wrt,
        "claim": claim,
        "correct": matches!(result.verdict, Verdict::Pass { .. }),
        "check": verdict_json(&result.verdict),
        "derivative": result.ours.form.render(Style::Unicode),
    })
}

/// An error as JSON: `{"error": message, "span": [start, end], "source", "hints",
/// "rendered"}`. `span` counts characters (not bytes) of `source`, the text the error
/// is about, and is `null` when the error has no place; `rendered` is what the command
/// line prints, caret and hints included.
///
/// # Examples
/// ```
/// use matcalc::session::{Options, Session};
/// let error = Session::new().simplify("z₁(1 − σ(z₁))", &Options::standard()).unwrap_err();
/// let json = matcalc::report::error_json(&error);
/// assert_eq!(json["span"][0], 0);
/// assert_eq!(json["hints"][0], "did you mean ⊙?");
/// ```
pub fn error_json(error: &Error) -> serde_json::Value {
    let diagnostic = error.diagnostic();
    let source = error.source_text();
    let characters = |byte: u32| {
        let mut byte = (byte as usize).min(source.len());
        while !source.is_char_boundary(byte) {
            byte -= 1;
        }
        source[..byte].chars().count()
    };
    let span = diagnostic
        .primary
        .as_ref()
        .or(diagnostic.secondary.first())
        .map(|label| serde_json::json!([characters(label.span.start), characters(label.span.end)]));
    serde_json::json!({
        "error": diagnostic.message,
        "span": span,
        "source": source,
        "hints": diagnostic.hints,
        "rendered": error.render(),
    })
}
