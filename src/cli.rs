//! The command line of SPEC §5: `diff`, `simplify`, `verify`, `explain`, and the REPL and
//! `serve`, which it starts, over [`Session`]. Exit status: 0 success, 1 a check or claim
//! failed (or was inconclusive), 2 bad input. This module, [`crate::repl`] and
//! [`crate::serve`] (its address line) are the only places that print.
#![allow(clippy::disallowed_macros)]

use std::ffi::OsString;
use std::io::Write;

use clap::{Parser, Subcommand, ValueEnum};

use crate::limits;
use crate::numeric::Verdict;
use crate::print::Style;
use crate::report::{claim_text, verdict_line};
use crate::session::{Error, Options, Session};

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
    /// The web page and its JSON API.
    Serve(ServeArgs),
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// The port to listen on (0: any free port; the address is printed).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// The address to listen on; the default is reachable from this machine only.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[command(flatten)]
    limits: LimitArgs,
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
    /// The same over `jax.numpy`, traceable by `jax.jit`.
    Jax,
    /// The same over `torch` tensors.
    Torch,
    /// One JSON object.
    Json,
}

#[derive(clap::Args, Debug)]
struct CommonArgs {
    /// The expression (Unicode, ASCII or LaTeX); absent or `-`: read from standard input.
    #[arg(allow_hyphen_values = true)]
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
    #[command(flatten)]
    limits: LimitArgs,
}

/// The limit flags, one for each row of [`crate::limits::LIMITS`]; `serve` takes them too.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Limits")]
struct LimitArgs {
    /// The longest expression or definition, in bytes (at most 1 000 000).
    #[arg(long, value_name = "BYTES", default_value_t = limits::standard("max-input"), value_parser = |text: &str| limits::parse("max-input", text))]
    max_input: u64,
    /// The deepest nesting, a flat chain such as a + b + c or ABC counting once (at most 2 000).
    #[arg(long, value_name = "N", default_value_t = limits::standard("max-depth"), value_parser = |text: &str| limits::parse("max-depth", text))]
    max_depth: u64,
    /// The largest exponent magnitude, k in Aᵏ (at most 1 000).
    #[arg(long, value_name = "N", default_value_t = limits::standard("max-exponent"), value_parser = |text: &str| limits::parse("max-exponent", text))]
    max_exponent: u64,
    /// The most distinct variables in one expression (at most 100 000).
    #[arg(long, value_name = "N", default_value_t = limits::standard("max-symbols"), value_parser = |text: &str| limits::parse("max-symbols", text))]
    max_symbols: u64,
    /// The most e-graph nodes while simplifying, and factors of an index form (at most
    /// 10 000 000).
    #[arg(long, value_name = "N", default_value_t = limits::standard("max-nodes"), value_parser = |text: &str| limits::parse("max-nodes", text))]
    max_nodes: u64,
    /// The most rewrite iterations while simplifying (at most 100 000).
    #[arg(long, value_name = "N", default_value_t = limits::standard("max-iterations"), value_parser = |text: &str| limits::parse("max-iterations", text))]
    max_iterations: u64,
    /// The most time a computation may take, in milliseconds (at most 3 600 000): differentiation, simplification and, with --check, the numeric check, which has at least half of it.
    #[arg(long, value_name = "MS", default_value_t = limits::standard("time-limit"), value_parser = |text: &str| limits::parse("time-limit", text))]
    time_limit: u64,
    /// Stop simplifying after this many rewrite iterations in a row find nothing smaller
    /// (at most 100 000; raise it to run to saturation or another limit).
    #[arg(long, value_name = "N", default_value_t = limits::standard("patience"), value_parser = |text: &str| limits::parse("patience", text))]
    patience: u64,
}

impl LimitArgs {
    /// Sets every limit in `options` to its flag's value (or the standard value).
    fn apply(&self, options: &mut Options) {
        let values = [
            ("max-input", self.max_input),
            ("max-depth", self.max_depth),
            ("max-exponent", self.max_exponent),
            ("max-symbols", self.max_symbols),
            ("max-nodes", self.max_nodes),
            ("max-iterations", self.max_iterations),
            ("time-limit", self.time_limit),
            ("patience", self.patience),
        ];
        for (name, value) in values {
            if let Ok(limit) = limits::find(name) {
                (limit.set)(options, value);
            }
        }
    }
}

#[derive(clap::Args, Debug)]
struct DiffArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// The variables, comma separated (`W₁,b₁,W₂,b₂`); an entry `X[m,n]` (or `Xₘₙ`)
    /// asks for the derivative by that one entry, in index notation.
    #[arg(long, required = true)]
    wrt: String,
    /// Derivative order (1 or 2).
    #[arg(long, default_value_t = 1)]
    order: u8,
    /// How a derivative by a matrix is written: `differential` (dF = …), `vec` (the
    /// Jacobian ∂vec(F)/∂vec(X), with --order 2 the Hessian matrix) or `index` (∂Fᵢⱼ/∂Xₖₗ).
    #[arg(long, value_name = "FORM", default_value = "differential", value_parser = |text: &str| text.parse::<crate::forms::Notation>())]
    form: crate::forms::Notation,
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
    /// Explain how the derivative is written in this form: `vec` or `index` describe
    /// each rule used on the differential (the default explains the backward pass).
    #[arg(long, value_name = "FORM", default_value = "differential", value_parser = |text: &str| text.parse::<crate::forms::Notation>())]
    form: crate::forms::Notation,
    /// Derivative order of the form explained (2: the Hessian; with --form vec|index).
    #[arg(long, default_value_t = 1)]
    order: u8,
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
        Some(Command::Serve(args)) => return run_serve(&args),
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

fn run_serve(args: &ServeArgs) -> i32 {
    let mut options = Options::standard();
    args.limits.apply(&mut options);
    let config = crate::serve::Config {
        host: args.host.clone(),
        port: args.port,
        options,
    };
    match crate::serve::run(&config) {
        Ok(()) => EXIT_OK,
        Err(error) => {
            eprintln!(
                "error: cannot serve on {}:{}: {error}",
                args.host, args.port
            );
            EXIT_BAD_INPUT
        }
    }
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

/// EXPR as given, or read from standard input when it is absent or `-` (SPEC §5).
fn expression_text(common: &CommonArgs) -> Result<String, Error> {
    match common.expression.as_deref().or(common.expr.as_deref()) {
        Some(text) if text != "-" => Ok(text.to_string()),
        _ => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut bytes)
                .map_err(|error| Error::Usage(format!("cannot read standard input: {error}")))?;
            let text = String::from_utf8(bytes).map_err(|error| {
                Error::Usage(format!(
                    "standard input is not valid UTF-8 (byte {})",
                    error.utf8_error().valid_up_to() + 1
                ))
            })?;
            let text = text.trim_end_matches(['\n', '\r']).to_string();
            if text.trim().is_empty() {
                return Err(Error::Usage(
                    "no expression given: pass EXPR, or pipe it into standard input".into(),
                ));
            }
            Ok(text)
        }
    }
}

/// An option this subcommand accepts (it is shared) but has no use for: an error, so
/// that nothing is silently ignored.
fn refuse(subcommand: &str, option: &str, why: &str) -> Error {
    Error::Usage(format!("`{subcommand}` does not take {option}: {why}"))
}

fn options_for(common: &CommonArgs, order: u8) -> Result<Options, Error> {
    let mut options = Options::standard();
    options.order = order;
    options.check = common.check;
    options.check_config.seed = common.seed;
    if let Some(sizes) = &common.sizes {
        options.sizes = crate::session::parse_sizes(sizes)
            .map_err(|error| Error::Usage(format!("--sizes: {error}")))?;
    }
    common.limits.apply(&mut options);
    if !(1..=2).contains(&order) {
        return Err(Error::Usage(format!(
            "--order {order}: only first and second derivatives are supported"
        )));
    }
    Ok(options)
}

fn style_of(format: Format) -> Style {
    match format {
        Format::Ascii => Style::Ascii,
        Format::Latex => Style::Latex,
        _ => Style::Unicode,
    }
}

fn wrt_list(wrt: &str) -> Vec<String> {
    crate::forms::entry::split_wrt(wrt)
}

fn run_diff(args: DiffArgs) -> Result<(String, i32), Error> {
    let session = session_for(&args.common)?;
    let mut options = options_for(&args.common, args.order)?;
    options.form = args.form;
    let text = &expression_text(&args.common)?;
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
        Format::Json => format!("{}\n", crate::report::results_json(&results)),
        Format::Numpy | Format::Jax | Format::Torch => {
            let mut out = crate::print::numpy::derivative_module(
                &session,
                text,
                &results,
                &options,
                backend_of(args.common.format),
            )
            .map_err(Error::Usage)?;
            out += &crate::report::check_comments(&results, "# ");
            out
        }
        Format::Latex => crate::report::derivative_latex(&results),
        format => crate::report::derivative_text(&results, style_of(format)),
    };
    Ok((out, status))
}

fn backend_of(format: Format) -> crate::print::numpy::Backend {
    use crate::print::numpy::Backend;
    match format {
        Format::Jax => Backend::Jax,
        Format::Torch => Backend::Torch,
        _ => Backend::Numpy,
    }
}

fn run_simplify(args: CommonArgs) -> Result<(String, i32), Error> {
    if args.check {
        return Err(refuse(
            "simplify",
            "--check",
            "check a derivative with `diff --check`, or a claim with `verify`",
        ));
    }
    let session = session_for(&args)?;
    let options = options_for(&args, 1)?;
    let text = &expression_text(&args)?;
    let result = session.simplify(text, &options)?;
    let out = match args.format {
        Format::Json => format!("{}\n", result.to_json()),
        Format::Numpy | Format::Jax | Format::Torch => crate::print::numpy::value_module(
            &session,
            text,
            &result,
            &options,
            backend_of(args.format),
        )
        .map_err(Error::Usage)?,
        format => crate::report::simplified_text(&result, style_of(format)),
    };
    Ok((out, EXIT_OK))
}

fn run_verify(args: VerifyArgs) -> Result<(String, i32), Error> {
    if args.common.sizes.is_some() {
        return Err(refuse(
            "verify",
            "--sizes",
            "sizes cost the compute form, and a verdict has none",
        ));
    }
    if args.common.format == Format::Numpy {
        return Err(refuse(
            "verify",
            "--format numpy",
            "a verdict is not code; use `diff --format numpy`",
        ));
    }
    let session = session_for(&args.common)?;
    let options = options_for(&args.common, args.order)?;
    let text = &expression_text(&args.common)?;
    let result = session.verify(text, args.wrt.trim(), &args.claim, &options)?;
    let status = match result.verdict {
        Verdict::Pass { .. } => EXIT_OK,
        _ => EXIT_FAILED,
    };
    if args.common.format == Format::Json {
        let value = crate::report::verify_json(&result, &args.claim);
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
    let mut verdict_text = claim_text(&result.verdict);
    if let Verdict::Fail(_) = result.verdict {
        verdict_text += &format!("the derivative is\n{}", result.ours.to_text(style));
    }
    Ok((verdict_text + &located, status))
}

/// `explain --form vec|index`: the rules of the form, in words, then the result.
fn explain_form(session: &Session, args: &ExplainArgs) -> Result<(String, i32), Error> {
    if args.graph.is_some() {
        return Err(refuse(
            "explain --form",
            "--graph",
            "the graph is of the backward pass; drop --form to draw it",
        ));
    }
    if args.common.format == Format::Latex {
        return Err(refuse(
            "explain --form",
            "--format latex",
            "it prints text (the default) or json",
        ));
    }
    let mut options = options_for(&args.common, args.order)?;
    options.form = args.form;
    options.check = args.common.check;
    let text = &expression_text(&args.common)?;
    let explanation = session.explain_form(text, args.wrt.trim(), &options)?;
    let status = match explanation.passed {
        Some(false) => EXIT_FAILED,
        _ => EXIT_OK,
    };
    Ok(match args.common.format {
        Format::Json => (format!("{}\n", explanation.to_json()), status),
        _ => (explanation.to_text(), status),
    })
}

fn run_explain(args: ExplainArgs) -> Result<(String, i32), Error> {
    if args.common.sizes.is_some() {
        return Err(refuse(
            "explain",
            "--sizes",
            "sizes cost the compute form, and an explanation has none",
        ));
    }
    if args.adjoints && args.graph.is_none() {
        return Err(refuse(
            "explain",
            "--adjoints without --graph",
            "it labels the drawing's nodes; the text explanation always shows adjoints",
        ));
    }
    if matches!(args.common.format, Format::Numpy | Format::Ascii) {
        return Err(refuse(
            "explain",
            &format!("--format {:?}", args.common.format).to_lowercase(),
            "it prints text (the default), latex or json, or draws with --graph",
        ));
    }
    let session = session_for(&args.common)?;
    if args.form != crate::forms::Notation::Differential {
        return explain_form(&session, &args);
    }
    if args.order != 1 {
        return Err(refuse(
            "explain",
            "--order without --form vec|index",
            "the backward pass is of first derivatives; --form vec or index explains a Hessian",
        ));
    }
    let options = options_for(&args.common, 1)?;
    let deadline = crate::limits::Deadline::starting_now(options.limits.time);
    let text = &expression_text(&args.common)?;
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
        let config = options.check_config.within(&deadline);
        for step in crate::explain::check_adjoints(&explanation, &config) {
            if !step.verdict.is_pass() {
                status = EXIT_FAILED;
            }
            out += &format!("∂L/∂{}: {}\n", step.name, verdict_line(&step.verdict));
        }
    }
    Ok((out, status))
}
