//! The command line of SPEC §5: `diff`, `simplify`, `verify` and the REPL, over
//! [`Session`]. Exit status: 0 success, 1 a check or claim failed (or was inconclusive),
//! 2 bad input. This module and [`crate::repl`] are the only places that print.
#![allow(clippy::disallowed_macros)]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;

use clap::{Parser, Subcommand, ValueEnum};

use crate::numeric::Verdict;
use crate::print::Style;
use crate::session::{DerivativeResult, Error, Options, Session};

/// Exit status of a successful run.
pub const EXIT_OK: i32 = 0;
/// Exit status when a check or a claim failed or was inconclusive.
pub const EXIT_FAILED: i32 = 1;
/// Exit status for bad input.
pub const EXIT_BAD_INPUT: i32 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "matcalc",
    version,
    about = "Symbolic matrix calculus: derivatives of matrix expressions, simplified and checked",
    after_help = "With no command, matcalc starts the REPL.\n\nExample:\n  matcalc diff '½‖WᵀWx − x‖²' --wrt W --check"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The derivative of EXPR, simplified.
    Diff(DiffArgs),
    /// The simplified EXPR.
    Simplify(CommonArgs),
    /// Is CLAIM the derivative of EXPR? Exit 0 yes, 1 no.
    Verify(VerifyArgs),
    /// The computation graph and backward pass of EXPR, step by step.
    Explain(ExplainArgs),
    /// The interactive loop (also what `matcalc` alone starts).
    Repl,
}

/// The output formats of SPEC §5.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Unicode notation (the default).
    Unicode,
    /// ASCII notation.
    Ascii,
    /// LaTeX.
    Latex,
    /// Self-contained Python with numpy.
    Numpy,
    /// One JSON object.
    Json,
}

#[derive(clap::Args, Debug)]
struct CommonArgs {
    /// The expression (Unicode, ASCII or LaTeX).
    #[arg(allow_hyphen_values = true, required_unless_present = "expression")]
    expr: Option<String>,
    /// The expression, when it starts with a minus sign (set by matcalc itself).
    #[arg(long, hide = true)]
    expression: Option<String>,
    /// Declarations such as `W: m×n, x: n` (repeatable).
    #[arg(long = "decl", value_name = "DECL")]
    decls: Vec<String>,
    /// Definitions such as `K = αXXᵀ + β⁻¹I` (repeatable).
    #[arg(long = "let", value_name = "DEF")]
    lets: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "unicode")]
    format: Format,
    /// Check the result numerically against finite differences.
    #[arg(long)]
    check: bool,
    /// Seed of the numeric check's random instances.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Sizes for the compute form's cost, e.g. `m=300,n=500`.
    #[arg(long)]
    sizes: Option<String>,
    /// The longest expression or definition, in bytes (at most 1 000 000).
    #[arg(long, value_name = "BYTES", help_heading = "Limits", default_value_t = standard_limit("max-input"), value_parser = |text: &str| parse_limit("max-input", text))]
    max_input: u64,
    /// The deepest expression tree (at most 2 000).
    #[arg(long, value_name = "N", help_heading = "Limits", default_value_t = standard_limit("max-depth"), value_parser = |text: &str| parse_limit("max-depth", text))]
    max_depth: u64,
    /// The largest exponent magnitude, k in Aᵏ (at most 1 000).
    #[arg(long, value_name = "N", help_heading = "Limits", default_value_t = standard_limit("max-exponent"), value_parser = |text: &str| parse_limit("max-exponent", text))]
    max_exponent: u64,
    /// The most distinct variables in one expression (at most 100 000).
    #[arg(long, value_name = "N", help_heading = "Limits", default_value_t = standard_limit("max-symbols"), value_parser = |text: &str| parse_limit("max-symbols", text))]
    max_symbols: u64,
    /// The most e-graph nodes while simplifying (at most 10 000 000).
    #[arg(long, value_name = "N", help_heading = "Limits", default_value_t = standard_limit("max-nodes"), value_parser = |text: &str| parse_limit("max-nodes", text))]
    max_nodes: u64,
    /// The most rewrite iterations while simplifying (at most 100 000).
    #[arg(long, value_name = "N", help_heading = "Limits", default_value_t = standard_limit("max-iterations"), value_parser = |text: &str| parse_limit("max-iterations", text))]
    max_iterations: u64,
    /// The most time simplifying may take, in milliseconds (at most 3 600 000).
    #[arg(long, value_name = "MS", help_heading = "Limits", default_value_t = standard_limit("time-limit"), value_parser = |text: &str| parse_limit("time-limit", text))]
    time_limit: u64,
    /// Stop simplifying after this many rewrite iterations in a row find nothing smaller
    /// (at most 100 000; raise it to run to saturation or another limit).
    #[arg(long, value_name = "N", help_heading = "Limits", default_value_t = standard_limit("patience"), value_parser = |text: &str| parse_limit("patience", text))]
    patience: u64,
}

impl CommonArgs {
    /// The limits given on the command line (or their standard values), by name.
    fn limits(&self) -> [(&'static str, u64); 8] {
        [
            ("max-input", self.max_input),
            ("max-depth", self.max_depth),
            ("max-exponent", self.max_exponent),
            ("max-symbols", self.max_symbols),
            ("max-nodes", self.max_nodes),
            ("max-iterations", self.max_iterations),
            ("time-limit", self.time_limit),
            ("patience", self.patience),
        ]
    }
}

/// The standard value of the limit `name`, which `--help` shows as its default.
fn standard_limit(name: &str) -> u64 {
    limit(&Options::standard(), name).unwrap_or(1)
}

#[derive(clap::Args, Debug)]
struct DiffArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// The variables, comma separated (`W₁,b₁,W₂,b₂`).
    #[arg(long, required = true)]
    wrt: String,
    /// Derivative order (1 or 2).
    #[arg(long, default_value_t = 1)]
    order: u8,
}

/// One limit that a `--NAME` flag and the REPL's `:limits NAME VALUE` set.
pub struct LimitSpec {
    /// The flag without its dashes, also the REPL's name: `max-depth`.
    pub name: &'static str,
    /// What it bounds: `the deepest expression tree`.
    pub what: &'static str,
    /// The unit of its value, if any: `bytes`.
    pub unit: &'static str,
    /// The largest value accepted; more would exhaust memory or the stack, or never end.
    pub ceiling: u64,
}

/// Every configurable limit. The parser's limits make bad input an error (exit 2) whose
/// hint names the flag; the e-graph's limits only stop simplification early, which the
/// JSON output reports as `"saturated": false`.
#[rustfmt::skip]
pub const LIMITS: [LimitSpec; 8] = [
    LimitSpec { name: "max-input",      unit: "bytes", ceiling: 1_000_000, what: "the longest expression or definition" },
    LimitSpec { name: "max-depth",      unit: "",      ceiling: 2_000,     what: "the deepest expression tree" },
    LimitSpec { name: "max-exponent",   unit: "",      ceiling: 1_000,     what: "the largest exponent magnitude" },
    LimitSpec { name: "max-symbols",    unit: "",      ceiling: 100_000,   what: "the most distinct variables" },
    LimitSpec { name: "max-nodes",      unit: "",      ceiling: 10_000_000, what: "the most e-graph nodes" },
    LimitSpec { name: "max-iterations", unit: "",      ceiling: 100_000,   what: "the most rewrite iterations" },
    LimitSpec { name: "time-limit",     unit: "ms",    ceiling: 3_600_000, what: "the most time simplifying may take" },
    LimitSpec { name: "patience",       unit: "",      ceiling: 100_000,   what: "iterations in a row without a smaller form" },
];

/// Reads the value of the limit `name`: a whole number from 1 to its ceiling.
fn parse_limit(name: &str, text: &str) -> Result<u64, String> {
    let spec = LIMITS
        .iter()
        .find(|spec| spec.name == name)
        .ok_or_else(|| {
            let names: Vec<&str> = LIMITS.iter().map(|spec| spec.name).collect();
            format!(
                "unknown limit `{name}`; the limits are {}",
                names.join(", ")
            )
        })?;
    let out_of_range = || format!("must be a whole number from 1 to {}", spec.ceiling);
    let value = text.trim().parse::<u64>().map_err(|_| out_of_range())?;
    if !(1..=spec.ceiling).contains(&value) {
        return Err(out_of_range());
    }
    Ok(value)
}

/// The current value of the limit `name` in `options`.
pub fn limit(options: &Options, name: &str) -> Option<u64> {
    let wide = |value: usize| u64::try_from(value).unwrap_or(u64::MAX);
    Some(match name {
        "max-input" => wide(options.parse_limits.max_input_len),
        "max-depth" => wide(options.parse_limits.max_depth),
        "max-exponent" => options.parse_limits.max_exponent,
        "max-symbols" => wide(options.parse_limits.max_symbols),
        "max-nodes" => wide(options.limits.nodes),
        "max-iterations" => wide(options.limits.iterations),
        "time-limit" => u64::try_from(options.limits.time.as_millis()).unwrap_or(u64::MAX),
        "patience" => wide(options.limits.patience),
        _ => return None,
    })
}

/// Sets the limit `name` in `options` from its text, `:limits max-depth 1000` in the REPL.
pub fn set_limit(options: &mut Options, name: &str, text: &str) -> Result<(), String> {
    let value = parse_limit(name, text).map_err(|message| format!("{name}: {message}"))?;
    set_limit_value(options, name, value);
    Ok(())
}

/// Sets a limit whose value is already in range.
fn set_limit_value(options: &mut Options, name: &str, value: u64) {
    let narrow = usize::try_from(value).unwrap_or(usize::MAX);
    match name {
        "max-input" => options.parse_limits.max_input_len = narrow,
        "max-depth" => options.parse_limits.max_depth = narrow,
        "max-exponent" => options.parse_limits.max_exponent = value,
        "max-symbols" => options.parse_limits.max_symbols = narrow,
        "max-nodes" => options.limits.nodes = narrow,
        "max-iterations" => options.limits.iterations = narrow,
        "time-limit" => options.limits.time = std::time::Duration::from_millis(value),
        "patience" => options.limits.patience = narrow,
        _ => {}
    }
}

/// Every limit with its current value, one a line, as `:limits` shows them.
pub fn describe_limits(options: &Options) -> String {
    LIMITS
        .iter()
        .map(|spec| {
            let value = limit(options, spec.name).unwrap_or_default();
            let unit = if spec.unit.is_empty() {
                String::new()
            } else {
                format!(" {}", spec.unit)
            };
            format!(
                "{:<15} {:>9}{unit:<6} {} (1 to {})\n",
                spec.name, value, spec.what, spec.ceiling
            )
        })
        .collect()
}

#[derive(clap::Args, Debug)]
struct VerifyArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// The variable.
    #[arg(long, required = true)]
    wrt: String,
    /// The claimed derivative.
    #[arg(long, required = true, allow_hyphen_values = true)]
    claim: String,
    /// Derivative order (1 or 2).
    #[arg(long, default_value_t = 1)]
    order: u8,
    /// When the claim is wrong, locate the first wrong step of the backward pass.
    #[arg(long)]
    steps: bool,
    /// A claimed intermediate adjoint `NAME = EXPR` (∂L/∂NAME, NAME a node or `let` name);
    /// repeatable, implies --steps.
    #[arg(long = "step", value_name = "NAME=EXPR")]
    step: Vec<String>,
}

/// Drawings of the computation graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Graph {
    /// Graphviz DOT.
    Dot,
    /// SVG, laid out in-process.
    Svg,
}

#[derive(clap::Args, Debug)]
struct ExplainArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// The variables, comma separated.
    #[arg(long, required = true)]
    wrt: String,
    /// Draw the graph instead of the text explanation.
    #[arg(long, value_enum)]
    graph: Option<Graph>,
    /// Label each node of the drawing with its adjoint too.
    #[arg(long)]
    adjoints: bool,
}

/// Runs the command line on `args` (program name first) and returns the exit status.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args = protect_leading_minus(args.into_iter().map(Into::into).collect());
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return match error.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    EXIT_OK
                }
                _ => EXIT_BAD_INPUT,
            };
        }
    };
    let outcome = match cli.command {
        None | Some(Command::Repl) => return crate::repl::run_stdio(),
        Some(Command::Diff(args)) => run_diff(args),
        Some(Command::Simplify(args)) => run_simplify(args),
        Some(Command::Verify(args)) => run_verify(args),
        Some(Command::Explain(args)) => run_explain(args),
    };
    match outcome {
        Ok((text, status)) => {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
            status
        }
        Err(error) => {
            eprint!("{}", error.render());
            EXIT_BAD_INPUT
        }
    }
}

/// An expression right after the subcommand that starts with a minus sign is an
/// expression, not an option (SPEC §5): pass it through the hidden `--expression`.
fn protect_leading_minus(mut args: Vec<OsString>) -> Vec<OsString> {
    if args.len() > 2 {
        if let Some(text) = args[2].to_str() {
            let looks_like_flag = text.starts_with("--") || text == "-h" || text == "-V";
            if (text.starts_with('-') || text.starts_with('−')) && !looks_like_flag {
                args[2] = OsString::from(format!("--expression={text}"));
            }
        }
    }
    args
}

fn session_for(common: &CommonArgs) -> Result<Session, Error> {
    let mut session = Session::new();
    for decl in &common.decls {
        session.declare(decl)?;
    }
    let options = options_for(common, 1)?;
    for definition in &common.lets {
        session.define_with(definition, &options)?;
    }
    Ok(session)
}

fn expression_text(common: &CommonArgs) -> Result<&str, Error> {
    common
        .expression
        .as_deref()
        .or(common.expr.as_deref())
        .ok_or_else(|| Error::Usage("no expression given".into()))
}

fn options_for(common: &CommonArgs, order: u8) -> Result<Options, Error> {
    let mut options = Options::standard();
    options.order = order;
    options.check = common.check;
    options.check_config.seed = common.seed;
    if let Some(sizes) = &common.sizes {
        options.sizes = parse_sizes(sizes)?;
    }
    for (name, value) in common.limits() {
        set_limit_value(&mut options, name, value);
    }
    if !(1..=2).contains(&order) {
        return Err(Error::Usage(format!(
            "--order {order}: only first and second derivatives are supported"
        )));
    }
    Ok(options)
}

/// Parses `m=300,n=500`.
fn parse_sizes(text: &str) -> Result<BTreeMap<String, u64>, Error> {
    text.split(',')
        .filter(|part| !part.trim().is_empty())
        .map(|part| {
            let (name, value) = part.split_once('=').ok_or_else(|| {
                Error::Usage(format!("--sizes: expected name=number, found `{part}`"))
            })?;
            let value = value
                .trim()
                .parse::<u64>()
                .map_err(|_| Error::Usage(format!("--sizes: `{}` is not a size", value.trim())))?;
            Ok((name.trim().to_string(), value))
        })
        .collect()
}

fn style_of(format: Format) -> Style {
    match format {
        Format::Ascii => Style::Ascii,
        Format::Latex => Style::Latex,
        _ => Style::Unicode,
    }
}

fn wrt_list(wrt: &str) -> Vec<String> {
    wrt.split(',')
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .collect()
}

fn run_diff(args: DiffArgs) -> Result<(String, i32), Error> {
    let session = session_for(&args.common)?;
    let options = options_for(&args.common, args.order)?;
    let text = expression_text(&args.common)?;
    let names = wrt_list(&args.wrt);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let results = session.derivative(text, &names, &options)?;
    let status = if results.iter().any(
        |result| matches!(&result.check, Some(verdict) if !matches!(verdict, Verdict::Pass { .. })),
    ) {
        EXIT_FAILED
    } else {
        EXIT_OK
    };
    let out = match args.common.format {
        Format::Json => {
            let value = if results.len() == 1 {
                results[0].to_json()
            } else {
                serde_json::json!({"results": results.iter().map(DerivativeResult::to_json).collect::<Vec<_>>()})
            };
            format!("{value}\n")
        }
        Format::Numpy => crate::print::numpy::derivative_module(&session, text, &results, &options)
            .map_err(Error::Usage)?,
        Format::Latex => crate::session::results_latex(&results),
        format => {
            let mut out = crate::session::results_text(&results, style_of(format));
            for result in &results {
                if let Some(verdict) = &result.check {
                    let name = crate::session::render_symbol(&result.wrt, style_of(format));
                    let prefix = if results.len() > 1 {
                        format!("{name}: ")
                    } else {
                        String::new()
                    };
                    out += &format!("{prefix}{}\n", verdict_line(verdict));
                }
            }
            out
        }
    };
    Ok((out, status))
}

fn run_simplify(args: CommonArgs) -> Result<(String, i32), Error> {
    let session = session_for(&args)?;
    let options = options_for(&args, 1)?;
    let text = expression_text(&args)?;
    let result = session.simplify(text, &options)?;
    let out = match args.format {
        Format::Json => format!("{}\n", result.to_json()),
        Format::Numpy => crate::print::numpy::value_module(&session, text, &result, &options)
            .map_err(Error::Usage)?,
        format => {
            let style = style_of(format);
            let mut out = format!("{}\n", result.form.render(style));
            for (index, (name, body)) in result.form.render_wheres(style).iter().enumerate() {
                let lead = if index == 0 { "  where" } else { "       " };
                out += &format!("{lead} {name} = {body}\n");
            }
            out
        }
    };
    Ok((out, EXIT_OK))
}

fn run_verify(args: VerifyArgs) -> Result<(String, i32), Error> {
    let session = session_for(&args.common)?;
    let options = options_for(&args.common, args.order)?;
    let text = expression_text(&args.common)?;
    let result = session.verify(text, args.wrt.trim(), &args.claim, &options)?;
    let status = match result.verdict {
        Verdict::Pass { .. } => EXIT_OK,
        _ => EXIT_FAILED,
    };
    if args.common.format == Format::Json {
        let value = serde_json::json!({
            "wrt": result.ours.wrt,
            "claim": args.claim,
            "correct": matches!(result.verdict, Verdict::Pass { .. }),
            "check": crate::session::verdict_json(&result.verdict),
            "derivative": result.ours.form.render(Style::Unicode),
        });
        return Ok((format!("{value}\n"), status));
    }
    let style = style_of(args.common.format);
    let steps: Vec<(String, String)> = args
        .step
        .iter()
        .map(|step| {
            step.split_once('=')
                .map(|(name, body)| (name.trim().to_string(), body.trim().to_string()))
                .ok_or_else(|| {
                    Error::Usage(format!("--step: expected NAME = EXPR, found `{step}`"))
                })
        })
        .collect::<Result<_, _>>()?;
    let mut located = String::new();
    if !matches!(result.verdict, Verdict::Pass { .. }) && (args.steps || !steps.is_empty()) {
        let (explanation, diagnosis) =
            session.locate_error(text, args.wrt.trim(), &args.claim, &steps, &options)?;
        located = format!(
            "first wrong step:\n{}\n",
            diagnosis.describe(&explanation).trim_end()
        );
    }
    let verdict_text = match &result.verdict {
        Verdict::Pass {
            trials,
            max_rel_error,
        } => {
            format!("claim: correct ({trials} random trials, max rel. error {max_rel_error:.1e})\n")
        }
        Verdict::Fail(counterexample) => format!(
            "claim: wrong\n{}\nthe derivative is\n{}",
            counterexample.describe().trim_end(),
            result.ours.to_text(style)
        ),
        Verdict::Inconclusive { reason } => format!("claim: inconclusive ({reason})\n"),
    };
    Ok((verdict_text + &located, status))
}

fn run_explain(args: ExplainArgs) -> Result<(String, i32), Error> {
    let session = session_for(&args.common)?;
    let options = options_for(&args.common, 1)?;
    let text = expression_text(&args.common)?;
    let explanation = session.explain_with(text, args.wrt.trim(), &options)?;
    let out = match args.graph {
        Some(Graph::Dot) => crate::explain::to_dot(&explanation, args.adjoints),
        Some(Graph::Svg) => crate::explain::to_svg(&explanation, args.adjoints),
        None => match args.common.format {
            Format::Latex => crate::explain::to_latex(&explanation),
            Format::Json => format!("{}\n", crate::explain::to_json(&explanation)),
            _ => crate::explain::to_text(&explanation),
        },
    };
    let mut status = EXIT_OK;
    let mut out = out;
    if args.common.check {
        for step in crate::explain::check_adjoints(&explanation, &options.check_config) {
            if !step.verdict.is_pass() {
                status = EXIT_FAILED;
            }
            out += &format!("∂L/∂{}: {}\n", step.name, verdict_line(&step.verdict));
        }
    }
    Ok((out, status))
}

/// The one-line summary of a numeric check.
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
    }
}
