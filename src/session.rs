//! The library's entry point: a [`Session`] holds declarations and `let` definitions and
//! runs the whole pipeline (parse → shape → diff → simplify → numeric check) on request.
//! The command line and the REPL are thin layers over it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::diag::Diagnostic;
use crate::diff::{self, Derivative, DerivativeKind};
use crate::expr::{Decls, Expr, ExprKind, Shape, Symbol, VarDecl};
use crate::forms::index::IndexForm;
use crate::forms::Notation;
use crate::numeric::{self, CheckConfig, Verdict};
use crate::parse::{self, ParseOptions};
use crate::print::{self, Style};
use crate::shape::{self, Typed};
use crate::simplify;

/// Any error of the pipeline, with the text it refers to so that it can be rendered
/// with a caret under the offending span.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text did not parse.
    #[error("{error}")]
    Parse {
        /// The parser's error.
        error: parse::Error,
        /// The text that was parsed.
        text: String,
    },
    /// The expression is not well shaped.
    #[error("{error}")]
    Shape {
        /// The shape checker's error.
        error: shape::Error,
        /// The text of the expression.
        text: String,
    },
    /// The derivative cannot be taken (unknown variable, unsupported operation).
    #[error("{error}")]
    Diff {
        /// The differentiator's error.
        error: diff::Error,
        /// The text of the expression.
        text: String,
    },
    /// The step-by-step explanation cannot be made.
    #[error("{error}")]
    Explain {
        /// The explainer's error.
        error: crate::explain::Error,
        /// The text of the expression.
        text: String,
    },
    /// A request that makes no sense, such as an empty `--wrt` or a malformed `--sizes`.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// The diagnostic a person reads.
    pub fn diagnostic(&self) -> Diagnostic {
        match self {
            Error::Parse { error, .. } => error.diagnostic(),
            Error::Shape { error, .. } => error.diagnostic(),
            Error::Diff { error, .. } => error.diagnostic(),
            Error::Explain { error, .. } => error.diagnostic(),
            Error::Usage(message) => Diagnostic::new(message.clone()),
        }
    }

    /// The text the error is about (the expression, a claim or a definition), whose
    /// bytes the diagnostic's spans index; empty for a usage error.
    pub fn source_text(&self) -> &str {
        match self {
            Error::Parse { text, .. }
            | Error::Shape { text, .. }
            | Error::Diff { text, .. }
            | Error::Explain { text, .. } => text.as_str(),
            Error::Usage(_) => "",
        }
    }

    /// The error rendered with its source line and caret.
    pub fn render(&self) -> String {
        self.diagnostic().render(self.source_text())
    }
}

/// One `let` definition: its name, its text and its parsed body (itself expanded).
#[derive(Clone, Debug)]
pub struct Definition {
    /// The defined name.
    pub name: Symbol,
    /// The body as typed.
    pub text: String,
    /// The body with earlier definitions expanded.
    pub body: Expr,
}

/// How much work a request may do, and how its check runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Derivative order (1 or 2).
    pub order: u8,
    /// Run the numeric check and attach its verdict.
    pub check: bool,
    /// The numeric check's settings.
    pub check_config: CheckConfig,
    /// Limits of equality saturation.
    pub limits: simplify::Limits,
    /// Limits on what the parser accepts (input length, depth, exponents, variables), for
    /// the expression, claims and definitions parsed with these options.
    pub parse_limits: parse::Limits,
    /// Concrete sizes for the compute form's cost (`m=300,n=500`).
    pub sizes: BTreeMap<Symbol, u64>,
    /// How a derivative is written: the differential, the vec form or index notation.
    pub form: Notation,
}

impl Options {
    /// First order, no check, standard limits, no sizes.
    pub fn standard() -> Options {
        Options {
            order: 1,
            check: false,
            check_config: CheckConfig::standard(),
            limits: simplify::Limits::standard(),
            parse_limits: parse::Limits::standard(),
            sizes: BTreeMap::new(),
            form: Notation::Differential,
        }
    }
}

/// Parses sizes for the compute form's cost, `m=300,n=500` (as `--sizes` takes them).
///
/// ```
/// let sizes = matcalc::session::parse_sizes("m=300, n=500").unwrap();
/// assert_eq!(sizes["n"], 500);
/// assert!(matcalc::session::parse_sizes("m=lots").is_err());
/// ```
pub fn parse_sizes(text: &str) -> Result<BTreeMap<Symbol, u64>, String> {
    text.split(',')
        .filter(|part| !part.trim().is_empty())
        .map(|part| {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("expected name=number, found `{}`", part.trim()))?;
            let value = value
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("`{}` is not a size", value.trim()))?;
            Ok((name.trim().into(), value))
        })
        .collect()
}

/// A simplified expression with its `where` definitions, in both extracted forms.
#[derive(Clone, Debug)]
pub struct Form {
    /// The display form: as a person writes it.
    pub display: Expr,
    /// The compute form: fewest floating-point operations.
    pub compute: Expr,
    /// Shared subexpressions named once: `(z, WᵀWx − x)`.
    pub wheres: Vec<(Symbol, Expr)>,
    /// The same names with flop-optimal bodies, for the compute form.
    pub compute_wheres: Vec<(Symbol, Expr)>,
    /// False when a limit stopped saturation early (the best form found is still right).
    pub saturated: bool,
    /// Why saturation stopped (`saturated`, `node limit (…)`, …).
    pub stop_reason: String,
    /// Where the time went, stage by stage (the JSON `timings`).
    pub timings: StageTimings,
}

/// Time spent in each stage of one request, in-process (SPEC §5 `timings`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StageTimings {
    /// Parsing, with the expansion of definitions.
    pub parse: Duration,
    /// Shape inference.
    pub shape: Duration,
    /// Differentiation (zero for `simplify`).
    pub diff: Duration,
    /// Simplification: saturation, extraction and `where` names.
    pub simplify: Duration,
    /// From text in to result out (checks included), without printing.
    pub total: Duration,
}

impl StageTimings {
    /// The JSON object `{"parse_us", "shape_us", "diff_us", "simplify_us", "total_us"}`.
    pub fn to_json(&self) -> serde_json::Value {
        let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        serde_json::json!({
            "parse_us": us(self.parse),
            "shape_us": us(self.shape),
            "diff_us": us(self.diff),
            "simplify_us": us(self.simplify),
            "total_us": us(self.total),
        })
    }
}

impl Form {
    /// The display form with every `where` name expanded back into the expression.
    pub fn expanded(&self) -> Expr {
        expand(&self.display, &self.wheres)
    }

    /// The compute form with every `where` name expanded back into the expression.
    pub fn compute_expanded(&self) -> Expr {
        expand(&self.compute, &self.compute_wheres)
    }

    /// The display form in the given spelling, without the `where` lines.
    pub fn render(&self, style: Style) -> String {
        print::render(&self.display, style)
    }

    /// The `where` definitions in the given spelling.
    pub fn render_wheres(&self, style: Style) -> Vec<(String, String)> {
        self.wheres
            .iter()
            .map(|(name, body)| (render_symbol(name, style), print::render(body, style)))
            .collect()
    }
}

/// The expression a result was computed from: the text as typed and its shape-checked
/// tree with the definitions expanded. The code printers build `value` from it.
#[derive(Clone, Debug)]
pub struct Problem {
    /// The expression as typed.
    pub text: String,
    /// The tree with every definition expanded and every shape inferred.
    pub typed: Typed,
}

/// The derivative of an expression with respect to one variable, simplified.
///
/// Its fields and methods are those of the Python package's `Derivative`: [`text`],
/// [`ascii`], [`latex`], [`wheres`], [`shape`], [`compute`], [`check`], [`json`] and
/// [`numpy_source`].
///
/// [`text`]: DerivativeResult::text
/// [`ascii`]: DerivativeResult::ascii
/// [`latex`]: DerivativeResult::latex
/// [`wheres`]: DerivativeResult::wheres
/// [`shape`]: DerivativeResult::shape
/// [`compute`]: DerivativeResult::compute
/// [`check`]: DerivativeResult::check
/// [`json`]: DerivativeResult::json
/// [`numpy_source`]: DerivativeResult::numpy_source
#[derive(Clone, Debug)]
pub struct DerivativeResult {
    /// The variable.
    pub wrt: Symbol,
    /// Which kind of derivative (gradient, Jacobian, differential, …).
    pub kind: DerivativeKind,
    /// The derivative's shape.
    pub shape: Shape,
    /// Whether this is the symmetric gradient of a `sym`/`spd` variable.
    pub symmetric: bool,
    /// The simplified derivative.
    pub form: Form,
    /// The numeric check's verdict, when one was asked for.
    pub check: Option<Verdict>,
    /// What this is the derivative of.
    pub problem: Rc<Problem>,
    /// How the derivative is written (`--form`): the vec form's Jacobian and Hessian are
    /// matrices in vec(X), `kind` [`DerivativeKind::Jacobian`] and
    /// [`DerivativeKind::Hessian`].
    pub notation: Notation,
    /// For a derivative by one entry (`--wrt 'X[m,n]'`), that entry and its index form.
    pub entry: Option<EntryResult>,
    /// In index notation, the index form of the whole derivative (see
    /// [`DerivativeResult::index_form`]).
    pub index: Option<IndexForm>,
    /// When the check was inconclusive because no draw was in the expression's domain:
    /// the function that every draw left, with its span in the source and a hint.
    pub domain: Option<crate::diag::Diagnostic>,
}

/// The derivative by one entry of a variable (`--wrt 'X[m,n]'`, SPEC §4).
#[derive(Clone, Debug)]
pub struct EntryResult {
    /// The entry as written back: `X[m,n]`.
    pub written: String,
    /// ∂f/∂Xₘₙ (∂Fᵢⱼ/∂Xₘₙ for a matrix F) in index notation: what is printed.
    pub form: crate::forms::index::IndexForm,
    /// Whether the form is the entry of the gradient as displayed, whose `where` lines
    /// it then uses.
    pub of_gradient: bool,
}

impl DerivativeResult {
    /// The derivative in Unicode, without its `where` lines: `W(zxᵀ + xzᵀ)`.
    pub fn text(&self) -> String {
        self.form.render(Style::Unicode)
    }

    /// The derivative in ASCII: `W*(z*x' + x*z')`.
    pub fn ascii(&self) -> String {
        self.form.render(Style::Ascii)
    }

    /// The derivative in LaTeX: `W\left(z x^\top + x z^\top\right)`.
    pub fn latex(&self) -> String {
        self.form.render(Style::Latex)
    }

    /// The `where` definitions the derivative uses, in Unicode: `[("z", "WᵀWx − x")]`.
    pub fn wheres(&self) -> Vec<(String, String)> {
        self.form.render_wheres(Style::Unicode)
    }

    /// The compute form, the one the code printers emit: `(Wz)xᵀ + (Wx)zᵀ`.
    pub fn compute(&self) -> String {
        print::render_grouped(&self.form.compute, Style::Unicode)
    }

    /// The JSON object of SPEC §5, as `--format json` prints it.
    pub fn json(&self) -> serde_json::Value {
        self.to_json()
    }

    /// Self-contained Python (numpy only) defining `value(...)` and `derivative(...)`, as
    /// `--format numpy` prints it for this one variable.
    pub fn numpy_source(&self) -> Result<String, String> {
        self.source(print::numpy::Backend::Numpy)
    }

    /// The same module for `backend`: `--format numpy|jax|torch` for this one variable.
    pub fn source(&self, backend: print::numpy::Backend) -> Result<String, String> {
        print::numpy::derivative_source(
            &self.problem.text,
            &self.problem.typed,
            std::slice::from_ref(self),
            backend,
        )
    }

    /// The left-hand side a person reads: `∂/∂W`, `dF`, `∂²/∂x²`, `d²f`, in the vec
    /// form `∂vec(F)/∂vec(X)`, `∂²f/∂vec(X)∂vec(X)ᵀ`, and in index notation the index
    /// form's (`∂(X⁻¹)ᵢⱼ/∂Xₖₗ`, `∂tr(AX)/∂Xₘₙ`).
    pub fn lhs(&self, style: Style) -> String {
        let name = render_symbol(&self.wrt, style);
        if self.notation == Notation::Index {
            if let Ok(form) = self.index_form() {
                return form.lhs(style);
            }
        }
        if self.notation != Notation::Differential {
            return match (self.kind, style) {
                (DerivativeKind::Hessian, Style::Latex) => format!(
                    "\\frac{{\\partial^2 f}}{{\\partial \\operatorname{{vec}}({name}) \\, \\partial \\operatorname{{vec}}({name})^\\top}}"
                ),
                (DerivativeKind::Hessian, Style::Ascii) => {
                    format!("d2f/dvec({name})dvec({name})'")
                }
                (DerivativeKind::Hessian, Style::Unicode) => {
                    format!("∂²f/∂vec({name})∂vec({name})ᵀ")
                }
                (_, Style::Latex) => format!(
                    "\\frac{{\\partial \\operatorname{{vec}}(F)}}{{\\partial \\operatorname{{vec}}({name})}}"
                ),
                (_, Style::Ascii) => format!("dvec(F)/dvec({name})"),
                (_, Style::Unicode) => format!("∂vec(F)/∂vec({name})"),
            };
        }
        match (self.kind, style) {
            (DerivativeKind::Gradient, Style::Latex) => {
                format!("\\frac{{\\partial}}{{\\partial {name}}}")
            }
            (DerivativeKind::Gradient, Style::Ascii) => format!("d/d{name}"),
            (DerivativeKind::Gradient, Style::Unicode) => format!("∂/∂{name}"),
            (DerivativeKind::Jacobian, Style::Latex) => {
                format!("\\frac{{\\partial f}}{{\\partial {name}}}")
            }
            (DerivativeKind::Jacobian, Style::Ascii) => format!("J_{name}"),
            (DerivativeKind::Jacobian, Style::Unicode) => format!("∂f/∂{name}"),
            (DerivativeKind::Hessian, Style::Latex) => {
                format!("\\frac{{\\partial^2}}{{\\partial {name}^2}}")
            }
            (DerivativeKind::Hessian, Style::Ascii) => format!("d2/d{name}2"),
            (DerivativeKind::Hessian, Style::Unicode) => format!("∂²/∂{name}²"),
            (DerivativeKind::Differential, Style::Latex) => "\\mathrm{d}F".to_string(),
            (DerivativeKind::Differential, _) => "dF".to_string(),
            (DerivativeKind::SecondDifferential, Style::Latex) => "\\mathrm{d}^2 f".to_string(),
            (DerivativeKind::SecondDifferential, Style::Ascii) => "d2f".to_string(),
            (DerivativeKind::SecondDifferential, Style::Unicode) => "d²f".to_string(),
        }
    }

    /// The result as the CLI prints it in Unicode or ASCII: the equation, its `where`
    /// lines and the convention note for symmetric variables.
    pub fn to_text(&self, style: Style) -> String {
        if self.notation == Notation::Index {
            let mut out = match self.index_form() {
                Ok(form) => format!("{}\n", form.render(style)),
                Err(error) => format!("{error}\n"),
            };
            if self.entry.as_ref().is_some_and(|entry| entry.of_gradient) {
                for (index, (name, body)) in self.form.render_wheres(style).iter().enumerate() {
                    let lead = if index == 0 { "  where" } else { "       " };
                    out += &format!("{lead} {name} = {body}\n");
                }
                let declared = self.problem.typed.vars.get(&self.wrt);
                if declared.is_some_and(|decl| decl.props.symmetric) {
                    out += &format!(
                        "  ({} is declared {}: this is the derivative by that one entry, every other entry fixed)\n",
                        render_symbol(&self.wrt, style),
                        if declared.is_some_and(|decl| decl.props.positive_definite) { "spd" } else { "sym" },
                    );
                }
            }
            return out;
        }
        let mut out = format!("{} = {}\n", self.lhs(style), self.form.render(style));
        let wheres = self.form.render_wheres(style);
        for (index, (name, body)) in wheres.iter().enumerate() {
            let lead = if index == 0 { "  where" } else { "       " };
            out += &format!("{lead} {name} = {body}\n");
        }
        if self.symmetric {
            out += &format!(
                "  ({} is symmetric: this is the symmetric gradient ½(G + Gᵀ), df = tr(G dX) for symmetric dX)\n",
                render_symbol(&self.wrt, style)
            );
        }
        out += &self.commutation_notes(style);
        if let Some(note) = self.vec_note(style) {
            out += &format!("  ({note})\n");
        }
        out
    }

    /// For the vec form of a `sym`/`spd` variable, what the matrix means: vec(X) has
    /// repeated entries, so the Jacobian treats them as independent, and the Jacobian in
    /// the free entries vech(X) is J Dₙ (Dₙ the duplication matrix, vec(X) = Dₙvech(X));
    /// the Hessian there is Dₙᵀ H Dₙ. `None` otherwise.
    pub fn vec_note(&self, style: Style) -> Option<String> {
        let decl = self.problem.typed.vars.get(&self.wrt)?;
        if self.notation != Notation::Vec || !decl.props.symmetric {
            return None;
        }
        let x = render_symbol(&self.wrt, style);
        let n = &decl.shape.rows;
        let (d, dt, vech) = match style {
            Style::Ascii => (format!("D_{n}"), format!("D_{n}'"), "vech"),
            _ => (
                format!(
                    "D{}",
                    print::unicode_subscript(&n.to_string()).unwrap_or_else(|| format!("_{n}"))
                ),
                String::new(),
                "vech",
            ),
        };
        let dt = if dt.is_empty() { format!("{d}ᵀ") } else { dt };
        let kind = if self.declared_spd() { "spd" } else { "sym" };
        Some(if self.kind == DerivativeKind::Hessian {
            format!(
                "{x} is declared {kind}: H treats the entries of vec({x}) as independent; in the free entries {vech}({x}), with vec({x}) = {d} {vech}({x}) and {d} the duplication matrix, the Hessian is {dt} H {d}"
            )
        } else {
            format!(
                "{x} is declared {kind}: J treats the entries of vec({x}) as independent; in the free entries {vech}({x}), with vec({x}) = {d} {vech}({x}) and {d} the duplication matrix, the Jacobian is J {d}"
            )
        })
    }

    fn declared_spd(&self) -> bool {
        self.problem
            .typed
            .vars
            .get(&self.wrt)
            .is_some_and(|decl| decl.props.positive_definite)
    }

    /// The index form of this derivative (`--form index`): ∂Fᵢⱼ/∂Xₖₗ, or with order 2
    /// ∂²f/∂Xᵢⱼ∂Xₖₗ, from the differential of the problem.
    pub fn index_form(&self) -> Result<IndexForm, diff::Error> {
        if let Some(entry) = &self.entry {
            return Ok(entry.form.clone());
        }
        if let Some(form) = &self.index {
            return Ok(form.clone());
        }
        let order = if self.kind == DerivativeKind::Hessian {
            2
        } else {
            1
        };
        crate::forms::index::derivative(
            &self.problem.typed,
            &self.wrt,
            order,
            ("k", "l"),
            Options::standard().limits.nodes,
        )
    }

    /// One line naming each commutation matrix the result uses: `(K₍ₘ,ₙ₎ is the
    /// commutation matrix: K₍ₘ,ₙ₎vec(A) = vec(Aᵀ) for A: m×n)`.
    pub fn commutation_notes(&self, style: Style) -> String {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&Expr> = vec![&self.form.display];
        stack.extend(self.form.wheres.iter().map(|(_, body)| body));
        while let Some(node) = stack.pop() {
            if let ExprKind::Commutation(m, n) = &node.kind {
                seen.insert((m.clone(), n.clone()));
            }
            stack.extend(node.children().into_iter().map(|child| child.as_ref()));
        }
        seen.into_iter()
            .map(|(m, n)| {
                let k = print::render(
                    &crate::expr::build::commutation(m.clone(), n.clone()),
                    style,
                );
                let vec = match style {
                    Style::Ascii => "vec(A')",
                    _ => "vec(Aᵀ)",
                };
                format!("  ({k} is the commutation matrix: {k} vec(A) = {vec} for A: {m}×{n})\n")
            })
            .collect()
    }

    /// The result as an `aligned` LaTeX block that compiles.
    pub fn to_latex(&self) -> String {
        results_latex(std::slice::from_ref(self))
    }

    /// The JSON object of SPEC §5.
    pub fn to_json(&self) -> serde_json::Value {
        let mut object = serde_json::json!({
            "wrt": self.wrt,
            "kind": kind_name(self.kind),
            "shape": shape_json(&self.shape),
            "derivative": self.form.render(Style::Unicode),
            "ascii": self.form.render(Style::Ascii),
            "latex": self.form.render(Style::Latex),
            "where": wheres_json(&self.form),
            "compute": print::render_grouped(&self.form.compute, Style::Unicode),
            "saturated": self.form.saturated,
            "timings": self.form.timings.to_json(),
        });
        if self.symmetric {
            object["gradient"] = serde_json::json!("symmetric");
        }
        if let Some(verdict) = &self.check {
            object["check"] = verdict_json(verdict);
            if let Some(domain) = &self.domain {
                object["check"]["domain"] = serde_json::json!({
                    "message": domain.message,
                    "span": domain.primary.as_ref().map(|label| [label.span.start, label.span.end]),
                    "hints": domain.hints,
                });
            }
        }
        if self.notation == Notation::Vec {
            object["form"] = serde_json::json!("vec");
            object["vec"] = serde_json::json!(self.form.render(Style::Unicode));
            if let Some(note) = self.vec_note(Style::Unicode) {
                object["note"] = serde_json::json!(note);
            }
        }
        if let Some(entry) = &self.entry {
            object["entry"] = serde_json::json!(entry.written);
        }
        if self.notation == Notation::Index {
            object["form"] = serde_json::json!("index");
            match self.index_form() {
                Ok(form) => {
                    object["index"] = serde_json::json!(form.render(Style::Unicode));
                    object["index_latex"] = serde_json::json!(form.render(Style::Latex));
                }
                Err(error) => object["index"] = serde_json::json!({"error": error.to_string()}),
            }
        }
        object
    }
}

/// A simplified expression (the answer of `simplify`).
#[derive(Clone, Debug)]
pub struct SimplifyResult {
    /// The inferred shape of the expression.
    pub shape: Shape,
    /// The simplified expression.
    pub form: Form,
    /// What was simplified.
    pub problem: Rc<Problem>,
}

impl SimplifyResult {
    /// The simplified expression in Unicode, without its `where` lines.
    pub fn text(&self) -> String {
        self.form.render(Style::Unicode)
    }

    /// The simplified expression in ASCII.
    pub fn ascii(&self) -> String {
        self.form.render(Style::Ascii)
    }

    /// The simplified expression in LaTeX.
    pub fn latex(&self) -> String {
        self.form.render(Style::Latex)
    }

    /// The `where` definitions it uses, in Unicode.
    pub fn wheres(&self) -> Vec<(String, String)> {
        self.form.render_wheres(Style::Unicode)
    }

    /// The compute form, the one `--format numpy` emits.
    pub fn compute(&self) -> String {
        print::render_grouped(&self.form.compute, Style::Unicode)
    }

    /// Self-contained Python (numpy only) defining `value(...)` from the compute form.
    pub fn numpy_source(&self) -> Result<String, String> {
        print::numpy::value_source(
            &self.problem.text,
            &self.problem.typed,
            self,
            print::numpy::Backend::Numpy,
        )
    }

    /// The JSON object of SPEC §5 for `simplify`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "shape": shape_json(&self.shape),
            "derivative": self.form.render(Style::Unicode),
            "ascii": self.form.render(Style::Ascii),
            "latex": self.form.render(Style::Latex),
            "where": wheres_json(&self.form),
            "compute": print::render_grouped(&self.form.compute, Style::Unicode),
            "saturated": self.form.saturated,
            "timings": self.form.timings.to_json(),
        })
    }
}

/// Whether a claimed derivative is right, with the evidence.
#[derive(Clone, Debug)]
pub struct VerifyResult {
    /// Which derivative the claim was compared against.
    pub kind: DerivativeKind,
    /// The verdict of the claim against finite differences of the expression.
    pub verdict: Verdict,
    /// matcalc's own derivative, for comparison.
    pub ours: DerivativeResult,
}

/// Declarations, definitions and settings that stay in force between requests.
///
/// # Examples
/// ```
/// use matcalc::session::{Options, Session};
/// let session = Session::new();
/// let results = session.derivative("½‖WᵀWx − x‖²", &["W"], &Options::standard())?;
/// assert_eq!(results[0].shape.to_string(), "m×n");
/// # Ok::<(), matcalc::session::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Session {
    decls: Decls,
    definitions: Vec<Definition>,
}

impl Session {
    /// A session with no declarations and no definitions.
    pub fn new() -> Session {
        Session::default()
    }

    /// The declarations in force.
    pub fn decls(&self) -> &Decls {
        &self.decls
    }

    /// The definitions in force, in the order they were made.
    pub fn definitions(&self) -> &[Definition] {
        &self.definitions
    }

    /// Forgets every declaration and definition.
    pub fn reset(&mut self) {
        *self = Session::new();
    }

    /// Adds declarations such as `W: m×n, x: n; K: n×n sym; ℓ: fn`.
    pub fn declare(&mut self, text: &str) -> Result<(), Error> {
        let decls = parse::parse_decls(text).map_err(|error| Error::Parse {
            error,
            text: text.to_string(),
        })?;
        self.decls.extend(decls);
        Ok(())
    }

    /// Adds a definition such as `K = αXXᵀ + β⁻¹I` (a leading `let` is allowed); a later
    /// definition of the same name replaces the earlier one.
    pub fn define(&mut self, text: &str) -> Result<Symbol, Error> {
        self.define_with(text, &Options::standard())
    }

    /// [`Session::define`], parsing within `options.parse_limits`.
    pub fn define_with(&mut self, text: &str, options: &Options) -> Result<Symbol, Error> {
        let (name, body) = parse::parse_let(text, &self.parse_options(&options.parse_limits))
            .map_err(|error| Error::Parse {
                error,
                text: text.to_string(),
            })?;
        if let Some(cycle) = self.cycle_through(&name, &body) {
            return Err(Error::Usage(if cycle.len() == 1 {
                format!("`{name}` is defined in terms of itself: {}", text.trim())
            } else {
                format!(
                    "the definitions {} form a cycle: {}",
                    cycle
                        .iter()
                        .map(|name| format!("`{name}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    cycle
                        .iter()
                        .chain(std::iter::once(&cycle[0]))
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(" → ")
                )
            }));
        }
        let wheres = self.definition_table();
        let body = expand_inner(&body, &wheres, false);
        self.definitions
            .retain(|definition| definition.name != name);
        self.definitions.push(Definition {
            name: name.clone(),
            text: text.to_string(),
            body,
        });
        Ok(name)
    }

    fn parse_options(&self, limits: &parse::Limits) -> ParseOptions {
        ParseOptions {
            fns: self.decls.fns.clone(),
            integers: self.decls.integers(),
            limits: *limits,
        }
    }

    /// Parses an expression with the session's opaque functions and standard limits.
    pub fn parse(&self, text: &str) -> Result<Expr, Error> {
        self.parse_within(text, &parse::Limits::standard())
    }

    fn parse_within(&self, text: &str, limits: &parse::Limits) -> Result<Expr, Error> {
        parse::parse_with(text, &self.parse_options(limits)).map_err(|error| Error::Parse {
            error,
            text: text.to_string(),
        })
    }

    fn definition_table(&self) -> Vec<(Symbol, Expr)> {
        self.definitions
            .iter()
            .map(|definition| (definition.name.clone(), definition.body.clone()))
            .collect()
    }

    fn expand_definitions(&self, expr: &Expr) -> Expr {
        expand(expr, &self.definition_table())
    }

    /// The cycle that defining `name` as `body` would close, as the names along it
    /// starting with `name`: `[z]` for `z = σ(z)`, `[h, z]` for `h = z + x` after
    /// `z = σ(h)`. A definition's uses are the names its text mentions.
    fn cycle_through(&self, name: &str, body: &Expr) -> Option<Vec<Symbol>> {
        let uses_of = |definition: &Definition| -> Vec<Symbol> {
            parse::parse_let(
                &definition.text,
                &self.parse_options(&parse::Limits::standard()),
            )
            .map(|(_, raw)| raw.free_vars())
            .unwrap_or_else(|_| definition.body.free_vars())
        };
        // Breadth first from the new body, remembering how each name was reached.
        let mut reached: BTreeMap<Symbol, Symbol> = BTreeMap::new();
        let mut queue: std::collections::VecDeque<Symbol> = std::collections::VecDeque::new();
        for used in body.free_vars() {
            if used == name {
                return Some(vec![name.to_string()]);
            }
            if reached.insert(used.clone(), name.to_string()).is_none() {
                queue.push_back(used);
            }
        }
        while let Some(at) = queue.pop_front() {
            let Some(definition) = self.definitions.iter().find(|d| d.name == at) else {
                continue;
            };
            for used in uses_of(definition) {
                if used == name {
                    let mut path = vec![at.clone()];
                    let mut back = at.clone();
                    while let Some(previous) = reached.get(&back) {
                        if previous == name {
                            break;
                        }
                        path.push(previous.clone());
                        back = previous.clone();
                    }
                    path.push(name.to_string());
                    path.reverse();
                    return Some(path);
                }
                if !reached.contains_key(&used) {
                    reached.insert(used.clone(), at.clone());
                    queue.push_back(used);
                }
            }
        }
        None
    }

    /// Parses (within standard limits), expands definitions and infers shapes.
    pub fn typed(&self, text: &str) -> Result<Typed, Error> {
        self.typed_with(text, &Options::standard())
    }

    /// [`Session::typed`], parsing within `options.parse_limits`.
    pub fn typed_with(&self, text: &str, options: &Options) -> Result<Typed, Error> {
        self.typed_timed(text, options, &mut StageTimings::default())
    }

    /// [`Session::typed_with`], adding the time of parsing and of shape inference to
    /// `timings`.
    fn typed_timed(
        &self,
        text: &str,
        options: &Options,
        timings: &mut StageTimings,
    ) -> Result<Typed, Error> {
        let start = Instant::now();
        let parsed = self.parse_within(text, &options.parse_limits)?;
        let expanded = self.expand_definitions(&parsed);
        let size = expanded.dag_size();
        if size > options.limits.nodes && size > parsed.size() {
            return Err(Error::Usage(format!(
                "with its definitions expanded, the expression has {} nodes, more than the \
                 limit of {} (raise it with --max-nodes, or `:limits max-nodes` in the REPL)",
                if size == usize::MAX {
                    "too many".to_string()
                } else {
                    size.to_string()
                },
                options.limits.nodes
            )));
        }
        let parsed_at = Instant::now();
        timings.parse += parsed_at - start;
        let typed = shape::infer(&expanded, &self.decls).map_err(|error| Error::Shape {
            error,
            text: text.to_string(),
        });
        timings.shape += parsed_at.elapsed();
        typed
    }

    /// Shape-checks `text` in the context of an already typed expression, so that its
    /// variables and sizes are those of `context` (for claims and `where` bodies).
    /// A claim may use the `where` names of matcalc's own answer (`W(zxᵀ + xzᵀ)`); names
    /// that are variables of the expression keep their meaning.
    fn typed_in_context(
        &self,
        text: &str,
        context: &Typed,
        wheres: &[(Symbol, Expr)],
        expected: &Shape,
        options: &Options,
    ) -> Result<Typed, Error> {
        let parsed = self.parse_within(text, &options.parse_limits)?;
        let expanded = self.expand_definitions(&parsed);
        let answer_names: Vec<(Symbol, Expr)> = wheres
            .iter()
            .filter(|(name, _)| !context.vars.contains_key(name))
            .cloned()
            .collect();
        let expanded = expand(&expanded, &answer_names);
        let mut decls = self.decls.clone();
        decls.vars.extend(context.vars.clone());
        // The sizes of the expression read as values in the claim, as in the answer
        // (`n` for `tr(αI)` by α).
        decls.sizes.extend(problem_sizes(&context.expr));
        // A claim's free sizes (of `𝟙𝟙ᵀ`, `I`) are those of the derivative it claims.
        shape::infer_as(&expanded, &decls, expected).map_err(|error| Error::Shape {
            error,
            text: text.to_string(),
        })
    }

    /// The definitions, typed in the context of `typed`, for folding back into results.
    fn typed_definitions(&self, typed: &Typed) -> Vec<(Symbol, Expr)> {
        let mut decls = self.decls.clone();
        decls.vars.extend(typed.vars.clone());
        self.definitions
            .iter()
            .filter_map(|definition| {
                let body = shape::infer(&definition.body, &decls).ok()?;
                Some((definition.name.clone(), body.expr))
            })
            .collect()
    }

    fn simplify_form(
        &self,
        expr: &Expr,
        typed: &Typed,
        options: &Options,
        deadline: &crate::limits::Deadline,
    ) -> Form {
        let start = Instant::now();
        let lets = self.typed_definitions(typed);
        let many = simplify::simplify_many(
            std::slice::from_ref(expr),
            &typed.vars,
            &lets,
            &options.limits,
            &options.sizes,
            deadline,
        );
        Form {
            display: many
                .displays
                .into_iter()
                .next()
                .unwrap_or_else(|| expr.clone()),
            compute: many
                .computes
                .into_iter()
                .next()
                .unwrap_or_else(|| expr.clone()),
            wheres: many.wheres,
            compute_wheres: many.compute_wheres,
            saturated: many.saturated,
            stop_reason: many.stop_reason,
            timings: StageTimings {
                simplify: start.elapsed(),
                ..StageTimings::default()
            },
        }
    }

    /// The shape-checked, simplified expression.
    pub fn simplify(&self, text: &str, options: &Options) -> Result<SimplifyResult, Error> {
        let start = Instant::now();
        let mut timings = StageTimings::default();
        let typed = self.typed_timed(text, options, &mut timings)?;
        let deadline = crate::limits::Deadline::starting_now(options.limits.time);
        let mut form = self.simplify_form(&typed.expr, &typed, options, &deadline);
        form.timings = StageTimings {
            simplify: form.timings.simplify,
            total: start.elapsed(),
            ..timings
        };
        Ok(SimplifyResult {
            shape: typed.expr.shape.clone(),
            form,
            problem: Rc::new(Problem {
                text: text.to_string(),
                typed,
            }),
        })
    }

    /// The simplified derivatives of `text` with respect to each of `wrt`, in order.
    ///
    /// With `options.check`, each is checked against finite differences of `text`; the
    /// form checked is the display form that is printed, with its `where` names expanded.
    pub fn derivative(
        &self,
        text: &str,
        wrt: &[&str],
        options: &Options,
    ) -> Result<Vec<DerivativeResult>, Error> {
        if wrt.is_empty() {
            return Err(Error::Usage(
                "no variable to differentiate with respect to".into(),
            ));
        }
        let start = Instant::now();
        let deadline = crate::limits::Deadline::starting_now(options.limits.time);
        let mut timings = StageTimings::default();
        let typed = self.typed_timed(text, options, &mut timings)?;
        let diff_start = Instant::now();
        let targets = wrt
            .iter()
            .map(|written| Target::of(&typed, written, options))
            .collect::<Result<Vec<_>, _>>()?;
        let derivatives = targets
            .iter()
            .map(|target| {
                take_derivative(target.typed(&typed), &target.name, &target.options).map_err(
                    |error| Error::Diff {
                        error,
                        text: text.to_string(),
                    },
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let exprs: Vec<Expr> = derivatives.iter().map(|(d, _)| d.expr.clone()).collect();
        let simplify_start = Instant::now();
        timings.diff = simplify_start - diff_start;
        let lets = self.typed_definitions(&typed);
        let many = simplify::simplify_many(
            &exprs,
            &typed.vars,
            &lets,
            &options.limits,
            &options.sizes,
            &simplification_deadline(&deadline, options),
        );
        timings.simplify = simplify_start.elapsed();
        let problem = Rc::new(Problem {
            text: text.to_string(),
            typed: typed.clone(),
        });
        let mut results: Vec<DerivativeResult> = derivatives
            .into_iter()
            .zip(many.displays.iter().zip(&many.computes))
            .zip(&targets)
            .map(|(((derivative, index), (display, compute)), target)| {
                let shape = &derivative.expr.shape;
                let form = Form {
                    wheres: used_wheres(display, &many.wheres),
                    compute_wheres: used_wheres(compute, &many.compute_wheres),
                    display: shaped_constant(display, shape),
                    compute: shaped_constant(compute, shape),
                    saturated: many.saturated,
                    stop_reason: many.stop_reason.clone(),
                    timings,
                };
                // Checked on instances of the declared variables (a `sym` one drawn
                // symmetric), whatever the derivative was taken of.
                let result = self.finish(
                    &typed,
                    (derivative, index),
                    form,
                    &target.options,
                    &problem,
                    &deadline,
                );
                self.by_entry(result, target, options, &deadline)
            })
            .collect::<Result<_, _>>()?;
        let total = start.elapsed();
        for result in &mut results {
            result.form.timings.total = total;
        }
        Ok(results)
    }

    fn derivative_of(
        &self,
        typed: &Typed,
        text: &str,
        wrt: &str,
        options: &Options,
        deadline: &crate::limits::Deadline,
    ) -> Result<DerivativeResult, Error> {
        let wrt = variable_name(typed, wrt);
        let (derivative, index) =
            take_derivative(typed, &wrt, options).map_err(|error| Error::Diff {
                error,
                text: text.to_string(),
            })?;
        // The claim is checked by the same deadline: simplification leaves it its share.
        let form = self.simplify_form(
            &derivative.expr,
            typed,
            options,
            &deadline.leaving(crate::limits::CHECK_SHARE),
        );
        let problem = Rc::new(Problem {
            text: text.to_string(),
            typed: typed.clone(),
        });
        Ok(self.finish(
            typed,
            (derivative, index),
            form,
            options,
            &problem,
            deadline,
        ))
    }

    fn finish(
        &self,
        typed: &Typed,
        (derivative, index): (Derivative, Option<IndexForm>),
        form: Form,
        options: &Options,
        problem: &Rc<Problem>,
        deadline: &crate::limits::Deadline,
    ) -> DerivativeResult {
        // The check has what the computation's deadline leaves: at least the share
        // simplification left it (limits::CHECK_SHARE).
        let check = options
            .check
            .then(|| self.check_printed(typed, &derivative, &form, options, deadline));
        let domain = match &check {
            Some(Verdict::Inconclusive { reason }) if reason.contains("no valid instance") => {
                crate::domain::undefined_everywhere(typed, options.check_config.seed)
            }
            _ => None,
        };
        DerivativeResult {
            wrt: derivative.wrt.clone(),
            kind: derivative.kind,
            shape: derivative.expr.shape.clone(),
            symmetric: derivative.symmetric,
            form,
            check,
            problem: Rc::clone(problem),
            notation: options.form,
            entry: None,
            index,
            domain,
        }
    }

    /// For a derivative by one entry, `result` with its index form, the check of that
    /// form by finite differences in the entry joined to the result's own check.
    fn by_entry(
        &self,
        mut result: DerivativeResult,
        target: &Target,
        options: &Options,
        deadline: &crate::limits::Deadline,
    ) -> Result<DerivativeResult, Error> {
        let Some((entry, (rows, cols))) = &target.entry else {
            return Ok(result);
        };
        let typed = target.typed(&result.problem.typed).clone();
        let names = (rows.as_str(), cols.as_str());
        let of_gradient = typed.expr.shape.is_scalar();
        let form = if of_gradient {
            crate::forms::entry::of_gradient(&typed, &target.name, &result.form.display, names)
        } else {
            crate::forms::index::derivative(&typed, &target.name, 1, names, options.limits.nodes)
                .map_err(|error| Error::Diff {
                    error,
                    text: result.problem.text.clone(),
                })?
        };
        if options.check && result.check.as_ref().is_some_and(Verdict::is_pass) {
            let mut names = self.typed_definitions(&typed);
            if of_gradient {
                names.extend(result.form.wheres.iter().cloned());
            }
            result.check = Some(crate::forms::entry::check(
                &result.problem.typed,
                &target.name,
                &form,
                &names,
                &options.check_config.within(deadline),
            ));
        }
        result.notation = Notation::Index;
        result.entry = Some(EntryResult {
            written: entry.written(&target.name),
            form,
            of_gradient,
        });
        Ok(result)
    }

    /// The check of SPEC §7: what is shown is what is checked. The display form is read
    /// back from its printed text (with its `where` lines, through the parser) and the
    /// compute form the code printers emit is taken as they take it; each is compared
    /// with finite differences of the expression, and only if both agree is it a pass.
    fn check_printed(
        &self,
        typed: &Typed,
        derivative: &Derivative,
        form: &Form,
        options: &Options,
        deadline: &crate::limits::Deadline,
    ) -> Verdict {
        let config = &options.check_config.within(deadline);
        let read = self.read_back(typed, form, &derivative.expr.shape, options, deadline);
        let display = match read {
            Ok(expr) => expr,
            // Out of time is not a text that does not read back: one message wherever
            // the deadline is met (how far reading got depends on the machine's load).
            Err(_) if deadline.passed() => {
                return Verdict::Inconclusive {
                    reason: "the time limit was reached while reading the printed derivative \
                             back"
                        .into(),
                }
            }
            // A text too large to type again is a limit of the check, not of the text.
            Err(ReadBack::Limit(reason)) => return Verdict::Inconclusive { reason },
            // A text that does not parse or type back is wrong as printed: what the
            // reader takes away has no value, whatever the value inside matcalc.
            Err(ReadBack::Unreadable(reason)) => {
                return Verdict::Unreadable {
                    reason: format!("the printed derivative does not read back: {reason}"),
                }
            }
        };
        let compute = shaped_constant(&form.compute_expanded(), &derivative.expr.shape);
        let shown = Derivative {
            expr: display,
            ..derivative.clone()
        };
        let verdict = numeric::check_derivative(typed, &shown, config);
        if !verdict.is_pass() || compute == shown.expr {
            return verdict;
        }
        let emitted = Derivative {
            expr: compute,
            ..derivative.clone()
        };
        match (verdict, numeric::check_derivative(typed, &emitted, config)) {
            (
                Verdict::Pass {
                    trials,
                    max_rel_error,
                },
                Verdict::Pass {
                    max_rel_error: compute_error,
                    ..
                },
            ) => Verdict::Pass {
                trials,
                max_rel_error: max_rel_error.max(compute_error),
            },
            (_, Verdict::Fail(mut counterexample)) => {
                counterexample.checked = format!(
                    "compute form (emitted code) of the {}",
                    counterexample.checked
                );
                Verdict::Fail(counterexample)
            }
            // Out of time is one message wherever the deadline is met: how far the display's
            // check got before it depends on the machine's load.
            (_, Verdict::Inconclusive { reason }) if deadline.passed() => {
                Verdict::Inconclusive { reason }
            }
            (_, Verdict::Inconclusive { reason }) => Verdict::Inconclusive {
                reason: format!("compute form: {reason}"),
            },
            (other, _) => other,
        }
    }

    /// The display form as printed, read back: the Unicode text of the display and of
    /// each `where` body is parsed again and must give the tree it was printed from
    /// (else the text says something else than what is checked); the `where` lines must
    /// each use only the names before them. The text must also fix every size: typed
    /// again from the printed text alone (its root shaped like the derivative, as its
    /// `∂/∂X` says), every size must be one of the problem's, else a printed `𝟙` or `I`
    /// (`sum(𝟙)`) has a size the reader cannot know. The tree checked is then the display
    /// with its names expanded, with the shapes inference gave it. A differential
    /// `dX` would read as the product `d·X`, so for the round trip it is printed as an
    /// unused capital letter.
    fn read_back(
        &self,
        typed: &Typed,
        form: &Form,
        shape: &Shape,
        options: &Options,
        deadline: &crate::limits::Deadline,
    ) -> Result<Expr, ReadBack> {
        let mut differentials: BTreeMap<Symbol, Shape> = BTreeMap::new();
        for expr in std::iter::once(&form.display).chain(form.wheres.iter().map(|(_, body)| body)) {
            collect_differentials(expr, &mut differentials);
        }
        let taken = |name: &str| {
            typed.vars.contains_key(name)
                || form.wheres.iter().any(|(where_name, _)| where_name == name)
                || self
                    .definitions
                    .iter()
                    .any(|definition| definition.name == name)
        };
        let mut stand_ins: BTreeMap<Symbol, Symbol> = BTreeMap::new();
        let mut letters = "ΩΨΦΓΛΘΞΠΣΥ".chars().map(String::from);
        for name in differentials.keys() {
            let letter = letters
                .find(|letter| !taken(letter))
                .ok_or_else(|| ReadBack::Limit("too many differentials to read back".into()))?;
            stand_ins.insert(name.clone(), letter);
        }
        // matcalc's own output is read back within the widest limits a user may set, not
        // the user's: a derivative may be longer and deeper than its expression.
        let user = options.parse_limits;
        let limits = &parse::Limits {
            max_input_len: user.max_input_len.max(1_000_000),
            max_depth: user.max_depth.max(2_000),
            max_exponent: user.max_exponent.max(1_000),
            max_symbols: user.max_symbols.max(100_000),
        };
        let read = |expr: &Expr| -> Result<Expr, ReadBack> {
            if deadline.passed() {
                return Err(ReadBack::Limit(
                    "the time limit was reached while reading it back".into(),
                ));
            }
            // What the text is printed from, a size's value placed where it reads back.
            let printed = print::as_printed(&replace_differentials(expr, &stand_ins));
            let text = print::render(&printed, Style::Unicode);
            let parsed = self.parse_within(&text, limits).map_err(|error| {
                ReadBack::Unreadable(format!("`{}`: {error}", abbreviated(&text)))
            })?;
            if parsed.same_structure(&printed) {
                Ok(parsed)
            } else {
                Err(ReadBack::Unreadable(format!(
                    "`{}` reads back as another expression",
                    abbreviated(&text)
                )))
            }
        };
        let mut read_wheres = Vec::with_capacity(form.wheres.len());
        for (name, body) in &form.wheres {
            read_wheres.push((name.clone(), read(body)?));
        }
        let read_display = read(&form.display)?;
        if !crate::simplify::cse::defined_in_order(&form.wheres) {
            return Err(ReadBack::Unreadable(
                "a `where` line uses a name defined after it".into(),
            ));
        }
        let declared: Vec<(Symbol, Shape)> = differentials
            .iter()
            .map(|(name, shape)| (stand_ins[name].clone(), shape.clone()))
            .collect();
        let anchor =
            match shape.is_scalar() {
                true => None,
                false => Some(letters.find(|letter| !taken(letter)).ok_or_else(|| {
                    ReadBack::Limit("too many differentials to read back".into())
                })?),
            };
        if deadline.passed() {
            return Err(ReadBack::Limit(
                "the time limit was reached while reading it back".into(),
            ));
        }
        // The text as the reader expands it: each name one shared subtree, not respanned
        // (each use's own copy of everything below it was exponential).
        let text_tree = expand_inner(
            &expand_inner(&read_display, &read_wheres, false),
            &self.definition_table(),
            false,
        );
        self.sizes_fixed_by_text(typed, &text_tree, &declared, anchor.map(|a| (a, shape)))?;
        // Shared, not respanned: a name used in many places is one subtree, so the
        // expansion stays as large as the printed text, never the tree it unfolds to.
        let expanded = expand_inner(
            &expand_inner(&form.display, &form.wheres, false),
            &self.definition_table(),
            false,
        );
        let unknown: Vec<Symbol> = expanded
            .free_vars()
            .into_iter()
            .filter(|name| !typed.vars.contains_key(name))
            .collect();
        if !unknown.is_empty() {
            return Err(ReadBack::Unreadable(format!(
                "`{}` is not defined",
                unknown.join("`, `")
            )));
        }
        Ok(shaped_constant(&expanded, shape))
    }

    /// Whether the printed text `tree` (parsed, names expanded) fixes every size: typed
    /// from the text alone, with the variables of `typed`, the differentials' stand-ins
    /// `declared` and, if the derivative is not a scalar, an `anchor` variable shaped like
    /// it multiplied elementwise with the root (the reader knows ∂/∂X is shaped like X),
    /// it must have only the sizes of the problem. A size left open is named after an
    /// innermost printed node that has it. A name is one shared node, typed once, as a
    /// reader takes it: one value of one shape wherever it is used. Past
    /// [`LARGEST_TYPED`] distinct nodes the check is inconclusive, saying so.
    fn sizes_fixed_by_text(
        &self,
        typed: &Typed,
        tree: &Expr,
        declared: &[(Symbol, Shape)],
        anchor: Option<(Symbol, &Shape)>,
    ) -> Result<(), ReadBack> {
        if tree.dag_size() > LARGEST_TYPED {
            return Err(ReadBack::Limit(
                "the printed derivative unfolds to too large a tree to type".into(),
            ));
        }
        let mut decls = self.decls.clone();
        decls.vars.extend(typed.vars.clone());
        for (name, shape) in declared
            .iter()
            .map(|(name, shape)| (name, shape))
            .chain(anchor.as_ref().map(|(name, shape)| (name, *shape)))
        {
            decls.vars.insert(
                name.clone(),
                VarDecl {
                    shape: shape.clone(),
                    props: Default::default(),
                },
            );
        }
        let mut known: BTreeSet<crate::Dim> = BTreeSet::new();
        let mut note = |shape: &Shape| {
            for dim in [&shape.rows, &shape.cols] {
                known.extend(dim.factors());
            }
        };
        typed.vars.values().for_each(|var| note(&var.shape));
        declared.iter().for_each(|(_, shape)| note(shape));
        typed
            .expr
            .distinct_nodes()
            .into_iter()
            .for_each(|node| note(&node.shape));
        // The problem's sizes are the reader's too: a printed size (`n` of `tr(αIₙ)`,
        // which no variable has) reads as its value.
        decls.sizes.extend(
            known
                .iter()
                .flat_map(|dim| dim.symbols())
                .map(|name| name.to_string()),
        );
        let text = match &anchor {
            Some((name, _)) => Expr::new(ExprKind::Hadamard(
                Rc::new(Expr::var(name)),
                Rc::new(tree.clone()),
            )),
            None => tree.clone(),
        };
        let retyped = match anchor {
            Some(_) => shape::infer(&text, &decls),
            None => shape::infer_as(&text, &decls, &Shape::scalar()),
        }
        .map_err(|error| {
            ReadBack::Unreadable(format!("the printed text does not type: {error}"))
        })?;
        // A scalar derivative has no anchor: the text must read as a scalar by itself.
        if anchor.is_none() && !retyped.expr.shape.is_scalar() {
            return Err(ReadBack::Unreadable(format!(
                "the printed text reads as a {} value, not a scalar",
                retyped.expr.shape
            )));
        }
        let open = |shape: &Shape| {
            [&shape.rows, &shape.cols]
                .into_iter()
                .flat_map(|dim| dim.factors())
                .any(|factor| matches!(factor, crate::Dim::Sym(_)) && !known.contains(&factor))
        };
        let innermost = retyped.expr.distinct_nodes().into_iter().find(|node| {
            open(&node.shape) && node.children().iter().all(|child| !open(&child.shape))
        });
        match innermost {
            None => Ok(()),
            Some(node) => Err(ReadBack::Unreadable(format!(
                "the size of `{}` is not fixed by the printed text",
                abbreviated(&print::render(node, Style::Unicode))
            ))),
        }
    }

    /// Whether `claim` is the derivative of `text` with respect to `wrt`, judged against
    /// finite differences of `text` on random instances.
    pub fn verify(
        &self,
        text: &str,
        wrt: &str,
        claim: &str,
        options: &Options,
    ) -> Result<VerifyResult, Error> {
        if crate::forms::entry::Entry::parse(wrt).is_some() {
            return Err(Error::Usage(format!(
                "verify compares a claim with the derivative by a variable, not by the entry \
                 `{wrt}`: `diff --wrt '{wrt}' --check` shows that one, checked"
            )));
        }
        let deadline = crate::limits::Deadline::starting_now(options.limits.time);
        let typed = self.typed_with(text, options)?;
        let ours = self.derivative_of(&typed, text, wrt, options, &deadline)?;
        let claim_typed =
            self.typed_in_context(claim, &typed, &ours.form.wheres, &ours.shape, options)?;
        if claim_typed.expr.shape != ours.shape {
            return Err(Error::Usage(format!(
                "the claim is {} but the derivative w.r.t. {wrt} is {}",
                claim_typed.expr.shape, ours.shape
            )));
        }
        let claimed = Derivative {
            kind: ours.kind,
            wrt: wrt.to_string(),
            expr: claim_typed.expr,
            symmetric: ours.symmetric,
        };
        let mut merged = typed.clone();
        merged.vars.extend(claim_typed.vars);
        let verdict =
            numeric::check_derivative(&merged, &claimed, &options.check_config.within(&deadline));
        Ok(VerifyResult {
            kind: ours.kind,
            verdict,
            ours,
        })
    }

    /// The computation graph of `text` and its backward pass with respect to `wrt`
    /// (comma-separated for several variables), node by node.
    pub fn explain(&self, text: &str, wrt: &str) -> Result<crate::explain::Explanation, Error> {
        self.explain_with(text, wrt, &Options::standard())
    }

    /// [`Session::explain`], parsing within `options.parse_limits`.
    pub fn explain_with(
        &self,
        text: &str,
        wrt: &str,
        options: &Options,
    ) -> Result<crate::explain::Explanation, Error> {
        let typed = self.typed_with(text, options)?;
        written_out_within_limits(&typed, options)?;
        let lets: Vec<(Symbol, Expr)> = self
            .definitions
            .iter()
            .map(|definition| (definition.name.clone(), definition.body.clone()))
            .collect();
        let wrt = variable_name(&typed, wrt);
        crate::explain::explain(&typed, &wrt, &lets).map_err(|error| Error::Explain {
            error,
            text: text.to_string(),
        })
    }

    /// `explain --form vec|index`: the differential of `text` by `wrt` (of its gradient
    /// with `options.order` 2), each rule of `options.form` used on it in words, and the
    /// result as [`Session::derivative`] gives it, checked when `options.check`.
    pub fn explain_form(
        &self,
        text: &str,
        wrt: &str,
        options: &Options,
    ) -> Result<crate::forms::Explanation, Error> {
        let typed = self.typed_with(text, options)?;
        written_out_within_limits(&typed, options)?;
        let name = variable_name(&typed, wrt);
        let diff_error = |error| Error::Diff {
            error,
            text: text.to_string(),
        };
        let (differential, steps) = match options.form {
            Notation::Vec => {
                let (differential, steps) =
                    crate::forms::vec::steps(&typed, &name, options.order).map_err(diff_error)?;
                (print::render(&differential, Style::Unicode), steps)
            }
            Notation::Index => {
                let form = crate::forms::index::derivative_with_steps(
                    &typed,
                    &name,
                    options.order,
                    ("k", "l"),
                    options.limits.nodes,
                )
                .map_err(diff_error)?;
                (form.differential, form.steps)
            }
            Notation::Differential => {
                return Err(Error::Usage(
                    "explain_form explains the vec and index forms".into(),
                ))
            }
        };
        let results = self.derivative(text, &[wrt], options)?;
        Ok(crate::forms::Explanation {
            notation: options.form,
            hessian: options.order == 2,
            differential,
            steps,
            result: crate::report::derivative_text(&results, Style::Unicode),
            passed: options.check.then(|| {
                results
                    .iter()
                    .all(|result| result.check.as_ref().is_some_and(Verdict::is_pass))
            }),
        })
    }

    /// Where a claimed derivation of `text` first goes wrong: `steps` are claimed adjoints
    /// `∂L/∂name = expr` (node or `let` names), or, when empty, `claim` is the claimed final
    /// gradient with respect to `wrt`.
    pub fn locate_error(
        &self,
        text: &str,
        wrt: &str,
        claim: &str,
        steps: &[(String, String)],
        options: &Options,
    ) -> Result<(crate::explain::Explanation, crate::explain::Diagnosis), Error> {
        use crate::explain::Claim;
        let deadline = crate::limits::Deadline::starting_now(options.limits.time);
        let explanation = self.explain_with(text, wrt, options)?;
        let limits = &options.parse_limits;
        let claim = if steps.is_empty() {
            Claim::Gradient {
                wrt: wrt.to_string(),
                gradient: self.parse_within(claim, limits)?,
            }
        } else {
            let parsed = steps
                .iter()
                .map(|(name, body)| Ok((name.clone(), self.parse_within(body, limits)?)))
                .collect::<Result<Vec<_>, Error>>()?;
            Claim::Steps(parsed)
        };
        let diagnosis = crate::explain::first_wrong_step(
            &explanation,
            &claim,
            &options.check_config.within(&deadline),
        )
        .map_err(|error| Error::Explain {
            error,
            text: text.to_string(),
        })?;
        Ok((explanation, diagnosis))
    }

    /// Every variable of `text` with its inferred shape and properties.
    pub fn shapes(&self, text: &str) -> Result<BTreeMap<Symbol, VarDecl>, Error> {
        self.shapes_with(text, &Options::standard())
    }

    /// [`Session::shapes`], parsing within `options.parse_limits`.
    pub fn shapes_with(
        &self,
        text: &str,
        options: &Options,
    ) -> Result<BTreeMap<Symbol, VarDecl>, Error> {
        Ok(self.typed_with(text, options)?.vars)
    }
}

/// Replaces every named variable by its definition (definitions may use earlier ones).
///
/// The result is a DAG: every use of a name shares one expansion of its body, so a
/// chain of definitions each using the one before twice stays linear in size. Nodes
/// that came from a definition carry the span of the name they replace, so that errors
/// inside them point at the name that was used.
pub fn expand(expr: &Expr, wheres: &[(Symbol, Expr)]) -> Expr {
    expand_inner(expr, wheres, true)
}

fn expand_inner(expr: &Expr, wheres: &[(Symbol, Expr)], respan_uses: bool) -> Expr {
    if wheres.is_empty() {
        return expr.clone();
    }
    let mut expansion = Expansion {
        table: wheres
            .iter()
            .map(|(name, body)| (name.as_str(), body))
            .collect(),
        expanding: BTreeSet::new(),
        bodies: HashMap::new(),
        nodes: HashMap::new(),
        respanned: HashMap::new(),
        respan_uses,
    };
    expansion.substitute(expr)
}

struct Expansion<'a> {
    table: BTreeMap<&'a str, &'a Expr>,
    /// The names being expanded: a definition that mentions itself is left as a name.
    expanding: BTreeSet<&'a str>,
    /// Each name's expansion, computed once.
    bodies: HashMap<&'a str, Rc<Expr>>,
    /// Each shared node's substitution, by address, so that a DAG stays a DAG.
    nodes: HashMap<*const Expr, Rc<Expr>>,
    /// Respanned copies, by address of the original and the span.
    respanned: HashMap<(*const Expr, crate::expr::Span), Rc<Expr>>,
    respan_uses: bool,
}

impl<'a> Expansion<'a> {
    fn substitute(&mut self, expr: &Expr) -> Expr {
        if let ExprKind::Var(name) = &expr.kind {
            if let Some((&key, &body)) = self.table.get_key_value(name.as_str()) {
                let expanded = match self.bodies.get(key) {
                    Some(done) => Some(done.clone()),
                    None if self.expanding.insert(key) => {
                        let done = Rc::new(self.substitute(body));
                        self.expanding.remove(key);
                        self.bodies.insert(key, done.clone());
                        Some(done)
                    }
                    None => None,
                };
                if let Some(expanded) = expanded {
                    return match expr.span {
                        Some(span) if self.respan_uses => {
                            let mut memo = std::mem::take(&mut self.respanned);
                            let res = respan_shared(&expanded, span, &mut memo);
                            self.respanned = memo;
                            res.as_ref().clone()
                        }
                        _ => expanded.as_ref().clone(),
                    };
                }
            }
            return expr.clone();
        }
        let mut copy = expr.clone();
        for child in copy.children_mut() {
            let pointer = Rc::as_ptr(child);
            if let Some(done) = self.nodes.get(&pointer) {
                *child = done.clone();
                continue;
            }
            let done = Rc::new(self.substitute(child));
            if Rc::strong_count(child) > 1 {
                self.nodes.insert(pointer, done.clone());
            }
            *child = done;
        }
        copy
    }
}

/// An explanation writes every node out in full, with no `where` names, so the tree its
/// expression unfolds to, not its DAG, must be within the node limit: a chain of
/// definitions each using the one before twice is answered, but explained only while it
/// is small.
fn written_out_within_limits(typed: &Typed, options: &Options) -> Result<(), Error> {
    let size = typed.expr.size();
    if size <= options.limits.nodes {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "an explanation writes the expression out without names, and with its definitions \
         expanded it has {} nodes, more than the limit of {} (raise it with --max-nodes, \
         or `:limits max-nodes` in the REPL)",
        if size == usize::MAX {
            "too many".to_string()
        } else {
            size.to_string()
        },
        options.limits.nodes
    )))
}

/// The same DAG with every node's span set to `span`, shared nodes copied once.
fn respan_shared(
    expr: &Rc<Expr>,
    span: crate::expr::Span,
    memo: &mut HashMap<(*const Expr, crate::expr::Span), Rc<Expr>>,
) -> Rc<Expr> {
    let key = (Rc::as_ptr(expr), span);
    if let Some(done) = memo.get(&key) {
        return done.clone();
    }
    let mut copy = expr.as_ref().clone();
    copy.span = Some(span);
    for child in copy.children_mut() {
        *child = respan_shared(child, span, memo);
    }
    let done = Rc::new(copy);
    memo.insert(key, done.clone());
    done
}

/// Several derivatives as text: one equation each, then their shared `where` lines once.
pub fn results_text(results: &[DerivativeResult], style: Style) -> String {
    if let [single] = results {
        return single.to_text(style);
    }
    let mut out = String::new();
    let mut wheres: Vec<(String, String)> = Vec::new();
    for result in results {
        if let (Notation::Index, Ok(form)) = (result.notation, result.index_form()) {
            out += &format!("{}\n", form.render(style));
        } else {
            out += &format!("{} = {}\n", result.lhs(style), result.form.render(style));
        }
        for definition in result.form.render_wheres(style) {
            if !wheres.contains(&definition) {
                wheres.push(definition);
            }
        }
    }
    for (index, (name, body)) in wheres.iter().enumerate() {
        let lead = if index == 0 { "  where" } else { "       " };
        out += &format!("{lead} {name} = {body}\n");
    }
    for result in results.iter().filter(|result| result.symmetric) {
        out += &format!(
            "  ({} is symmetric: this is the symmetric gradient ½(G + Gᵀ))\n",
            render_symbol(&result.wrt, style)
        );
    }
    out
}

/// Several derivatives as one LaTeX `aligned` block: one equation each, then their shared
/// `where` lines once.
pub fn results_latex(results: &[DerivativeResult]) -> String {
    let mut lines: Vec<String> = results
        .iter()
        .map(|result| {
            // Only the index notation asks for the index form, which is quadratic in a
            // long product.
            let index_form = (result.notation == Notation::Index)
                .then(|| result.index_form().ok())
                .flatten();
            match index_form {
                Some(form) => format!("{} &= {}", form.lhs(Style::Latex), form.rhs(Style::Latex)),
                None => format!(
                    "{} &= {}",
                    result.lhs(Style::Latex),
                    result.form.render(Style::Latex)
                ),
            }
        })
        .collect();
    let mut wheres: Vec<(String, String)> = Vec::new();
    for result in results {
        for definition in result.form.render_wheres(Style::Latex) {
            if !wheres.contains(&definition) {
                wheres.push(definition);
            }
        }
    }
    for (index, (name, body)) in wheres.iter().enumerate() {
        let lead = if index == 0 { "\\text{where } " } else { "" };
        lines.push(format!("{lead}{name} &= {body}"));
    }
    format!(
        "\\begin{{aligned}}\n{}\n\\end{{aligned}}\n",
        lines.join(" \\\\\n")
    )
}

/// The definitions among `wheres` that `expr` uses, directly or through other definitions,
/// in their original order.
pub fn used_wheres(expr: &Expr, wheres: &[(Symbol, Expr)]) -> Vec<(Symbol, Expr)> {
    // Indexed by name: thousands of `where` lines are searched once each, not per use.
    let by_name: HashMap<&str, &Expr> = wheres
        .iter()
        .map(|(name, body)| (name.as_str(), body))
        .collect();
    let mut used: BTreeSet<&str> = BTreeSet::new();
    let mut pending: Vec<&Expr> = vec![expr];
    while let Some(next) = pending.pop() {
        for name in next.free_vars() {
            if let Some((key, body)) = by_name.get_key_value(name.as_str()) {
                if used.insert(key) {
                    pending.push(body);
                }
            }
        }
    }
    wheres
        .iter()
        .filter(|(name, _)| used.contains(name.as_str()))
        .cloned()
        .collect()
}

/// Most distinct nodes the check types a printed text as: about 250 MB of typed nodes.
const LARGEST_TYPED: usize = 200_000;

/// Why the printed derivative was not read back: a limit of the check (time, size), which
/// leaves it inconclusive, or a text that does not parse or type back, which fails it.
enum ReadBack {
    /// The check ran into one of its limits; the text may be fine.
    Limit(String),
    /// The text is not what it should be: it does not parse, type or fix its sizes.
    Unreadable(String),
}

/// `text`, or its first 60 characters and `…` when it is longer.
fn abbreviated(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

fn collect_differentials(expr: &Expr, found: &mut BTreeMap<Symbol, Shape>) {
    let mut stack: Vec<&Expr> = vec![expr];
    while let Some(node) = stack.pop() {
        if let ExprKind::Differential(name) = &node.kind {
            found.insert(name.clone(), node.shape.clone());
        }
        stack.extend(node.children().into_iter().map(|child| child.as_ref()));
    }
}

/// The tree with each differential `dX` written as the variable `stand_ins[X]`.
fn replace_differentials(expr: &Expr, stand_ins: &BTreeMap<Symbol, Symbol>) -> Expr {
    if let ExprKind::Differential(name) = &expr.kind {
        if let Some(letter) = stand_ins.get(name) {
            return Expr::typed(ExprKind::Var(letter.clone()), expr.shape.clone());
        }
    }
    let mut copy = expr.clone();
    for child in copy.children_mut() {
        *child = Rc::new(replace_differentials(child, stand_ins));
    }
    copy
}

/// The size symbols of every node of `expr` (and the sizes it uses as values).
fn problem_sizes(expr: &Expr) -> BTreeSet<Symbol> {
    let mut sizes = BTreeSet::new();
    for node in expr.distinct_nodes() {
        if let ExprKind::Size(name) = &node.kind {
            sizes.insert(name.to_string());
        }
        for dim in [&node.shape.rows, &node.shape.cols] {
            sizes.extend(dim.symbols().into_iter().map(|name| name.to_string()));
        }
    }
    sizes
}

/// A derivative that simplified to a bare constant (`0` for ∂tr(0·A)/∂A) is that
/// constant in every entry of the derivative's shape: the e-graph's constants are scalars.
fn shaped_constant(expr: &Expr, shape: &Shape) -> Expr {
    match &expr.kind {
        ExprKind::Num(_) if expr.shape != *shape => Expr::typed(expr.kind.clone(), shape.clone()),
        _ => expr.clone(),
    }
}

/// A symbol in the given spelling.
pub fn render_symbol(name: &str, style: Style) -> String {
    match style {
        Style::Unicode => name.to_string(),
        Style::Ascii => print::ascii_name(name),
        Style::Latex => print::latex_name(name),
    }
}

/// The kind's name in JSON: `gradient`, `jacobian`, `differential`, `hessian`,
/// `second differential`.
pub fn kind_name(kind: DerivativeKind) -> &'static str {
    match kind {
        DerivativeKind::Gradient => "gradient",
        DerivativeKind::Jacobian => "jacobian",
        DerivativeKind::Differential => "differential",
        DerivativeKind::Hessian => "hessian",
        DerivativeKind::SecondDifferential => "second differential",
    }
}

fn shape_json(shape: &Shape) -> serde_json::Value {
    serde_json::json!([shape.rows.to_string(), shape.cols.to_string()])
}

#[derive(Serialize)]
struct WhereJson {
    name: String,
    expr: String,
}

fn wheres_json(form: &Form) -> serde_json::Value {
    let wheres: Vec<WhereJson> = form
        .render_wheres(Style::Unicode)
        .into_iter()
        .map(|(name, expr)| WhereJson { name, expr })
        .collect();
    serde_json::json!(wheres)
}

/// The `check` object of SPEC §5.
pub fn verdict_json(verdict: &Verdict) -> serde_json::Value {
    match verdict {
        Verdict::Pass {
            trials,
            max_rel_error,
        } => serde_json::json!({"passed": true, "trials": trials, "max_rel_error": max_rel_error}),
        Verdict::Fail(counterexample) => serde_json::json!({
            "passed": false,
            "rel_error": counterexample.rel_error,
            "counterexample": counterexample.describe(),
        }),
        Verdict::Inconclusive { reason } => {
            serde_json::json!({"passed": false, "inconclusive": true, "reason": reason})
        }
        Verdict::Unreadable { reason } => serde_json::json!({
            "passed": false,
            "inconclusive": false,
            "unreadable": true,
            "reason": reason,
        }),
    }
}

/// What one name of `--wrt` asks for: a variable, or one entry of it (`X[m,n]`), with
/// the options its derivative is taken with.
struct Target {
    /// The variable.
    name: Symbol,
    /// For an entry, how it was written and the index names of the variable's rows and
    /// columns (`_` for a size-1 dimension).
    entry: Option<(crate::forms::entry::Entry, (String, String))>,
    /// The options, with the form the entry's derivative is taken in.
    options: Options,
    /// For an entry, the expression with the variable's `sym`/`spd` dropped: one entry
    /// moves alone.
    plain: Option<Typed>,
}

impl Target {
    fn of(typed: &Typed, written: &str, options: &Options) -> Result<Target, Error> {
        let Some(entry) = crate::forms::entry::Entry::parse(written) else {
            return Ok(Target {
                name: variable_name(typed, written),
                entry: None,
                options: options.clone(),
                plain: None,
            });
        };
        let entry = entry.map_err(Error::Usage)?;
        let name = variable_name(typed, &entry.name);
        let Some(decl) = typed.vars.get(&name) else {
            return Err(Error::Usage(format!(
                "unknown variable `{}` in `{written}`: the variables are {}",
                entry.name,
                typed
                    .vars
                    .keys()
                    .map(|name| format!("`{name}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let names = entry.names_for(&name, &decl.shape).map_err(Error::Usage)?;
        if options.order != 1 {
            return Err(Error::Usage(format!(
                "`{written}`: a derivative by one entry is of first order (order 1, the \
                 default); the second derivatives entry by entry are ∂²f/∂Xᵢⱼ∂Xₖₗ, by {name} \
                 at order 2 in the index form (--order 2 --form index)"
            )));
        }
        if options.form != Notation::Differential {
            return Err(Error::Usage(format!(
                "`{written}` is answered in index notation, not in the {} form: ask in the \
                 default form (no --form; `:form differential` in the REPL)",
                options.form
            )));
        }
        let mut plain = typed.clone();
        if let Some(decl) = plain.vars.get_mut(&name) {
            decl.props = Default::default();
        }
        let mut options = options.clone();
        // A scalar f's entry is read from its gradient; a matrix F's from the Jacobian
        // in vec(X), which is what is simplified and checked, like --form index.
        options.form = if typed.expr.shape.is_scalar() {
            Notation::Differential
        } else {
            Notation::Vec
        };
        Ok(Target {
            name,
            entry: Some((entry, names)),
            options,
            plain: Some(plain),
        })
    }

    /// The expression the derivative is taken of.
    fn typed<'a>(&'a self, typed: &'a Typed) -> &'a Typed {
        self.plain.as_ref().unwrap_or(typed)
    }
}

/// The derivative in the notation `options.form` asks for: the vec and index forms both
/// start from the Jacobian in vec(X) (the Hessian matrix with order 2).
/// The deadline of differentiation and simplification within the computation's
/// `deadline`: all of it, or with `options.check` all but the check's share.
fn simplification_deadline(
    deadline: &crate::limits::Deadline,
    options: &Options,
) -> crate::limits::Deadline {
    match options.check {
        true => deadline.leaving(crate::limits::CHECK_SHARE),
        false => *deadline,
    }
}

/// The derivative of `typed` by `wrt` in the notation of `options`, with its index form
/// in index notation.
fn take_derivative(
    typed: &Typed,
    wrt: &str,
    options: &Options,
) -> Result<(Derivative, Option<IndexForm>), diff::Error> {
    match options.form {
        Notation::Differential => Ok((diff::derivative(typed, wrt, options.order)?, None)),
        Notation::Vec => Ok((
            crate::forms::vec::derivative(typed, wrt, options.order)?,
            None,
        )),
        // The index form is printed from the differential; the vec Jacobian, the same
        // numbers, is what is simplified and checked.
        Notation::Index => {
            let form = crate::forms::index::derivative(
                typed,
                wrt,
                options.order,
                ("k", "l"),
                options.limits.nodes,
            )?;
            let derivative = crate::forms::vec::derivative(typed, wrt, options.order)?;
            Ok((derivative, Some(form)))
        }
    }
}

/// The variable of `typed` that `written` names, in any spelling the expression
/// accepts (`W_1`, `W1` if declared so, `\\alpha`): `--wrt W_1` means `W₁`. Text that
/// is not one variable is returned as written, for the derivative's own error.
fn variable_name(typed: &Typed, written: &str) -> Symbol {
    let written = written.trim();
    if typed.vars.contains_key(written) {
        return written.to_string();
    }
    match crate::parse::parse(written) {
        Ok(Expr {
            kind: ExprKind::Var(name),
            ..
        }) if typed.vars.contains_key(&name) => name,
        _ => written.to_string(),
    }
}
