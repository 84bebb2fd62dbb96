//! The native half of the `matcalc` Python package (`matcalc._matcalc`).
//!
//! Every function takes plain strings (the expression, declarations, definitions) and
//! returns one JSON document, `{"ok": …}` or `{"error": …}`, that `matcalc/__init__.py`
//! turns into its classes and exceptions. Keeping the boundary to text keeps the Python
//! API free to follow Python's conventions, and lets the pipeline run without the GIL:
//! the session, whose trees are not `Send`, lives and dies inside one call.

use std::collections::BTreeMap;

use matcalc::numeric::{Counterexample, Verdict};
use matcalc::print::numpy::Backend;
use matcalc::print::Style;
use matcalc::report::{claim_text, verdict_line};
use matcalc::session::{self, DerivativeResult, Error, Options, Session};
use nalgebra::DMatrix;
use pyo3::prelude::*;
use serde_json::{json, Value};

/// The outcome of one call, before it is written as JSON.
type Outcome = Result<Value, Error>;

/// Runs `work` without the GIL and writes its outcome as the JSON document.
fn respond(py: Python<'_>, work: impl FnOnce() -> Outcome + Send) -> String {
    let outcome = py.detach(work);
    let document = match outcome {
        Ok(value) => json!({ "ok": value }),
        Err(error) => json!({ "error": error_json(&error) }),
    };
    document.to_string()
}

/// The error as Python raises it: its class, and the library's error JSON (the caret
/// diagnostic as `rendered`, the span in characters, Python's string indices).
fn error_json(error: &Error) -> Value {
    let kind = match error {
        Error::Parse { .. } => "ParseError",
        Error::Shape { .. } => "ShapeError",
        Error::Diff { error, .. } => diff_error_kind(error),
        Error::Explain { error, .. } => explain_error_kind(error),
        Error::Usage(_) => "MatcalcError",
    };
    let mut value = matcalc::report::error_json(error);
    value["kind"] = json!(kind);
    value
}

fn diff_error_kind(error: &matcalc::diff::Error) -> &'static str {
    match error {
        matcalc::diff::Error::Unsupported { .. } => "UnsupportedError",
        matcalc::diff::Error::NotScalar { .. } => "ShapeError",
        _ => "MatcalcError",
    }
}

fn explain_error_kind(error: &matcalc::explain::Error) -> &'static str {
    match error {
        matcalc::explain::Error::Unsupported { .. } => "UnsupportedError",
        matcalc::explain::Error::NotScalar { .. } | matcalc::explain::Error::Shape { .. } => {
            "ShapeError"
        }
        _ => "MatcalcError",
    }
}

/// What every request shares: declarations, definitions and settings.
struct Request {
    decls: Vec<String>,
    lets: Vec<String>,
    order: u8,
    check: bool,
    seed: u64,
    sizes: BTreeMap<String, u64>,
    form: Option<String>,
}

impl Request {
    fn options(&self) -> Result<Options, Error> {
        if !(1..=2).contains(&self.order) {
            return Err(Error::Usage(format!(
                "order={}: only first and second derivatives are supported",
                self.order
            )));
        }
        let mut options = Options::standard();
        options.order = self.order;
        options.check = self.check;
        options.check_config.seed = self.seed;
        options.sizes = self.sizes.clone();
        if let Some(form) = &self.form {
            options.form = form
                .parse()
                .map_err(|message| Error::Usage(format!("form={form:?}: {message}")))?;
        }
        Ok(options)
    }

    fn session(&self, options: &Options) -> Result<Session, Error> {
        let mut session = Session::new();
        for decl in &self.decls {
            session.declare(decl)?;
        }
        for definition in &self.lets {
            session.define_with(definition, options)?;
        }
        Ok(session)
    }
}

fn code_error(message: String) -> Error {
    Error::Usage(format!("cannot generate code: {message}"))
}

/// One derivative with every field of the Python `Derivative`.
fn result_json(result: &DerivativeResult) -> Result<Value, Error> {
    Ok(json!({
        "wrt": result.wrt,
        "param": matcalc::print::numpy::python_name(&result.wrt),
        "lhs": result.lhs(Style::Unicode),
        "shape": [result.shape.rows.to_string(), result.shape.cols.to_string()],
        "symmetric": result.symmetric,
        "text": result.text(),
        "ascii": result.ascii(),
        "latex": result.latex(),
        "where": result.wheres(),
        "compute": result.compute(),
        "display": result.to_text(Style::Unicode),
        "latex_block": result.to_latex(),
        "check": result.check.as_ref().map(verdict_json),
        "json": result.json(),
        "numpy_source": result.source(Backend::Numpy).map_err(code_error)?,
        "jax_source": result.source(Backend::Jax).map_err(code_error)?,
        "torch_source": result.source(Backend::Torch).map_err(code_error)?,
    }))
}

/// A verdict with everything a person or a program may want from it.
fn verdict_json(verdict: &Verdict) -> Value {
    let mut value = json!({
        "passed": verdict.is_pass(),
        "inconclusive": matches!(verdict, Verdict::Inconclusive { .. }),
        "line": verdict_line(verdict),
    });
    match verdict {
        Verdict::Pass {
            trials,
            max_rel_error,
        } => {
            value["trials"] = json!(trials);
            value["max_rel_error"] = json!(max_rel_error);
        }
        Verdict::Fail(counterexample) => {
            value["rel_error"] = json!(counterexample.rel_error);
            value["counterexample"] = counterexample_json(counterexample);
        }
        Verdict::Inconclusive { reason } => value["reason"] = json!(reason),
        Verdict::Unreadable { reason } => {
            value["unreadable"] = json!(true);
            value["reason"] = json!(reason);
        }
    }
    value
}

fn counterexample_json(counterexample: &Counterexample) -> Value {
    let values: BTreeMap<&str, Value> = counterexample
        .values
        .iter()
        .map(|(name, matrix)| (name.as_str(), matrix_json(matrix)))
        .collect();
    json!({
        "checked": counterexample.checked,
        "reference": counterexample.reference,
        "sizes": counterexample.sizes,
        "values": values,
        "expected": matrix_json(&counterexample.expected),
        "claimed": matrix_json(&counterexample.claimed),
        "worst": [counterexample.worst.0, counterexample.worst.1],
        "rel_error": counterexample.rel_error,
        "text": counterexample.describe(),
    })
}

fn matrix_json(matrix: &DMatrix<f64>) -> Value {
    let rows: Vec<Vec<f64>> = (0..matrix.nrows())
        .map(|row| (0..matrix.ncols()).map(|col| matrix[(row, col)]).collect())
        .collect();
    json!(rows)
}

/// The derivatives of `expr` with respect to each of `wrt`.
#[pyfunction]
#[pyo3(signature = (expr, wrt, decls, lets, order, check, seed, sizes, form))]
#[allow(clippy::too_many_arguments)]
fn diff(
    py: Python<'_>,
    expr: String,
    wrt: Vec<String>,
    decls: Vec<String>,
    lets: Vec<String>,
    order: u8,
    check: bool,
    seed: u64,
    sizes: BTreeMap<String, u64>,
    form: Option<String>,
) -> String {
    let request = Request {
        decls,
        lets,
        order,
        check,
        seed,
        sizes,
        form,
    };
    respond(py, move || {
        let options = request.options()?;
        let session = request.session(&options)?;
        let names: Vec<&str> = wrt.iter().map(String::as_str).collect();
        let results = session.derivative(&expr, &names, &options)?;
        let each = results
            .iter()
            .map(result_json)
            .collect::<Result<Vec<_>, _>>()?;
        let problem = &results[0].problem;
        let together = |backend| {
            matcalc::print::numpy::derivative_source(
                &problem.text,
                &problem.typed,
                &results,
                backend,
            )
            .map_err(code_error)
        };
        Ok(json!({
            "results": each,
            "display": session::results_text(&results, Style::Unicode),
            "latex_block": session::results_latex(&results),
            "numpy_source": together(Backend::Numpy)?,
            "jax_source": together(Backend::Jax)?,
            "torch_source": together(Backend::Torch)?,
        }))
    })
}

/// The simplified `expr`.
#[pyfunction]
#[pyo3(signature = (expr, decls, lets, sizes))]
fn simplify(
    py: Python<'_>,
    expr: String,
    decls: Vec<String>,
    lets: Vec<String>,
    sizes: BTreeMap<String, u64>,
) -> String {
    let request = Request {
        decls,
        lets,
        order: 1,
        check: false,
        seed: 0,
        sizes,
        form: None,
    };
    respond(py, move || {
        let options = request.options()?;
        let session = request.session(&options)?;
        let result = session.simplify(&expr, &options)?;
        let mut json = result.to_json();
        if let Some(object) = json.as_object_mut() {
            object.remove("wrt");
        }
        Ok(json!({
            "shape": [result.shape.rows.to_string(), result.shape.cols.to_string()],
            "text": result.text(),
            "ascii": result.ascii(),
            "latex": result.latex(),
            "where": result.wheres(),
            "where_latex": result.form.render_wheres(Style::Latex),
            "compute": result.compute(),
            "json": json,
            "numpy_source": result.numpy_source().map_err(code_error)?,
        }))
    })
}

/// Whether `claim` is the derivative of `expr` with respect to `wrt`; with `steps`, where
/// a wrong claim's derivation first goes wrong.
#[pyfunction]
#[pyo3(signature = (expr, wrt, claim, decls, lets, order, seed, steps))]
#[allow(clippy::too_many_arguments)]
fn verify(
    py: Python<'_>,
    expr: String,
    wrt: String,
    claim: String,
    decls: Vec<String>,
    lets: Vec<String>,
    order: u8,
    seed: u64,
    steps: bool,
) -> String {
    let request = Request {
        decls,
        lets,
        order,
        check: false,
        seed,
        sizes: BTreeMap::new(),
        form: None,
    };
    respond(py, move || {
        let options = request.options()?;
        let session = request.session(&options)?;
        let result = session.verify(&expr, wrt.trim(), &claim, &options)?;
        let first_wrong_step = if steps && !result.verdict.is_pass() {
            let (explanation, diagnosis) =
                session.locate_error(&expr, wrt.trim(), &claim, &[], &options)?;
            Some(diagnosis.describe(&explanation).trim_end().to_string())
        } else {
            None
        };
        Ok(json!({
            "claim": claim,
            "correct": result.verdict.is_pass(),
            "text": format!(
                "{}{}",
                claim_text(&result.verdict),
                if result.verdict.is_pass() {
                    String::new()
                } else {
                    format!("the derivative is\n{}", result.ours.to_text(Style::Unicode))
                }
            ),
            "check": verdict_json(&result.verdict),
            "derivative": result_json(&result.ours)?,
            "first_wrong_step": first_wrong_step,
        }))
    })
}

/// The computation graph of `expr` and its backward pass with respect to `wrt`.
#[pyfunction]
#[pyo3(signature = (expr, wrt, decls, lets, check, seed))]
fn explain(
    py: Python<'_>,
    expr: String,
    wrt: String,
    decls: Vec<String>,
    lets: Vec<String>,
    check: bool,
    seed: u64,
) -> String {
    let request = Request {
        decls,
        lets,
        order: 1,
        check,
        seed,
        sizes: BTreeMap::new(),
        form: None,
    };
    respond(py, move || {
        let options = request.options()?;
        let session = request.session(&options)?;
        let explanation = session.explain_with(&expr, wrt.trim(), &options)?;
        let checks: Option<Vec<Value>> = check.then(|| {
            matcalc::explain::check_adjoints(&explanation, &options.check_config)
                .iter()
                .map(|step| json!({"name": step.name, "check": verdict_json(&step.verdict)}))
                .collect()
        });
        Ok(json!({
            "text": matcalc::explain::to_text(&explanation),
            "latex": matcalc::explain::to_latex(&explanation),
            "json": matcalc::explain::to_json(&explanation),
            "dot": matcalc::explain::to_dot(&explanation, false),
            "svg": matcalc::explain::to_svg(&explanation, false),
            "svg_adjoints": matcalc::explain::to_svg(&explanation, true),
            "checks": checks,
        }))
    })
}

/// Checks declarations and definitions as a `Session` adds them, so that a mistake is
/// reported where it is made.
#[pyfunction]
#[pyo3(signature = (decls, lets))]
fn validate(py: Python<'_>, decls: Vec<String>, lets: Vec<String>) -> String {
    let request = Request {
        decls,
        lets,
        order: 1,
        check: false,
        seed: 0,
        sizes: BTreeMap::new(),
        form: None,
    };
    respond(py, move || {
        let options = request.options()?;
        request.session(&options)?;
        Ok(Value::Null)
    })
}

/// The native module: the functions above, and the core's version.
#[pymodule]
fn _matcalc(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(diff, module)?)?;
    module.add_function(wrap_pyfunction!(simplify, module)?)?;
    module.add_function(wrap_pyfunction!(verify, module)?)?;
    module.add_function(wrap_pyfunction!(explain, module)?)?;
    module.add_function(wrap_pyfunction!(validate, module)?)?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
