//! The JSON API of SPEC §5: `POST /api/diff`, `/api/simplify`, `/api/verify` and
//! `/api/explain`. Each request builds a [`Session`] from its declarations and `let`
//! lines, runs it like the command line does with the server's [`Options`] (the CLI's
//! limits), and answers the command line's `--format json` object, or 400 with the
//! error's message, span and hints.
//!
//! A request may also ask for `"render": [...]`, further renderings of the same result
//! that the page shows (`"latex"`, `"text"`, `"numpy"`, `"svg"`, `"dot"`); they come
//! back under `"render"`, next to the command line's keys, never instead of them.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::print::Style;
use crate::report;
use crate::session::{Error, Options, Session};

/// The body of every API request. Unknown keys are errors, so that a misspelt key is
/// not silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiRequest {
    /// The expression (Unicode, ASCII or LaTeX).
    pub expr: String,
    /// The variables: `"W"`, `"W₁,b₁"` or `["W₁", "b₁"]`.
    #[serde(default)]
    pub wrt: Wrt,
    /// Declarations, one statement each (`"W: m×n, x: n"`).
    #[serde(default)]
    pub decl: Vec<String>,
    /// Definitions, in order (`"K = αXXᵀ + β⁻¹I"`).
    #[serde(default, rename = "let")]
    pub lets: Vec<String>,
    /// Derivative order, 1 or 2.
    #[serde(default)]
    pub order: Option<u8>,
    /// Run the numeric check.
    #[serde(default)]
    pub check: bool,
    /// The seed of the check's random instances.
    #[serde(default)]
    pub seed: Option<u64>,
    /// The claimed derivative (`verify`).
    #[serde(default)]
    pub claim: Option<String>,
    /// For a wrong claim, locate the first wrong step of the backward pass (`verify`).
    #[serde(default)]
    pub steps: bool,
    /// How the derivative is written (SPEC §5 `--form`): `differential`, `vec`, `index`.
    #[serde(default)]
    pub form: Option<String>,
    /// Sizes for the compute form's cost (`diff`, `simplify`), as `--sizes` takes them:
    /// `{"m": 300, "n": 500}` or `"m=300,n=500"`.
    #[serde(default)]
    pub sizes: Option<Sizes>,
    /// Further renderings wanted, by name.
    #[serde(default)]
    pub render: Vec<String>,
}

/// `"sizes"` as an object of numbers or the command line's text.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Sizes {
    /// `{"m": 300, "n": 500}`.
    Map(std::collections::BTreeMap<String, u64>),
    /// `"m=300,n=500"`.
    Text(String),
}

/// `"wrt"` as a comma-separated string or a list of names.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
pub enum Wrt {
    /// No variable given.
    #[default]
    None,
    /// `"W₁,b₁"`.
    Text(String),
    /// `["W₁", "b₁"]`.
    List(Vec<String>),
}

impl Wrt {
    fn names(&self) -> Vec<String> {
        // Commas inside an entry's brackets (`X[m,n]`) separate nothing.
        let split = crate::forms::entry::split_wrt;
        match self {
            Wrt::None => vec![],
            Wrt::Text(text) => split(text),
            Wrt::List(names) => names.iter().flat_map(|name| split(name)).collect(),
        }
    }
}

/// An endpoint's answer: the status and the JSON body.
pub type Answer = (u16, Value);

/// Answers `POST /api/{endpoint}` with `body`, within the limits of `options`.
pub fn answer(endpoint: &str, body: &[u8], options: &Options) -> Answer {
    let request: ApiRequest = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(error) => return request_error(&format!("the body is not a valid request: {error}")),
    };
    let outcome = Prepared::new(&request, options).and_then(|prepared| match endpoint {
        "diff" => prepared.diff(&request),
        "simplify" => prepared.simplify(&request),
        "verify" => prepared.verify(&request),
        "explain" => prepared.explain(&request),
        _ => Err(Failure::Request(format!("no endpoint /api/{endpoint}"))),
    });
    match outcome {
        Ok(value) => (200, value),
        Err(Failure::Request(message)) => request_error(&message),
        Err(Failure::Input(error)) => (400, error_json(&error, &request)),
    }
}

/// Why a request failed: the request itself, or the mathematics in it.
enum Failure {
    /// A malformed or contradictory request (a missing key, a bad `order`).
    Request(String),
    /// An error in the expression, a claim, a declaration or a definition.
    Input(Error),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure::Input(error)
    }
}

fn request_error(message: &str) -> Answer {
    (
        400,
        json!({ "error": message, "span": null, "input": "request", "hints": [] }),
    )
}

/// The error's JSON (see [`report::error_json`]) and which input it is about:
/// `"input": "expr" | "claim" | "decl" | "let" | "request"`, with `"index"` for the
/// `decl` and `let` lists.
fn error_json(error: &Error, request: &ApiRequest) -> Value {
    let mut value = report::error_json(error);
    let source = error.source_text();
    let (input, index) = if source.is_empty() {
        ("request", None)
    } else if source == request.expr {
        ("expr", None)
    } else if request.claim.as_deref() == Some(source) {
        ("claim", None)
    } else if let Some(index) = request.lets.iter().position(|text| text == source) {
        ("let", Some(index))
    } else if let Some(index) = request.decl.iter().position(|text| text == source) {
        ("decl", Some(index))
    } else {
        ("expr", None)
    };
    value["input"] = json!(input);
    if let Some(index) = index {
        value["index"] = json!(index);
    }
    value
}

/// A request's session and options, ready to run.
struct Prepared {
    session: Session,
    options: Options,
}

impl Prepared {
    fn new(request: &ApiRequest, server: &Options) -> Result<Prepared, Failure> {
        let mut options = server.clone();
        options.check = request.check;
        if let Some(seed) = request.seed {
            options.check_config.seed = seed;
        }
        options.order = request.order.unwrap_or(1);
        if !(1..=2).contains(&options.order) {
            return Err(Failure::Request(format!(
                "order {}: only first and second derivatives are supported",
                options.order
            )));
        }
        if let Some(form) = request
            .form
            .as_deref()
            .filter(|form| !form.trim().is_empty())
        {
            options.form = form.parse().map_err(Failure::Request)?;
        }
        if request.expr.trim().is_empty() {
            return Err(Failure::Request("no expression given".into()));
        }
        match &request.sizes {
            Some(Sizes::Map(sizes)) => options.sizes = sizes.clone(),
            Some(Sizes::Text(text)) => {
                options.sizes = crate::session::parse_sizes(text)
                    .map_err(|error| Failure::Request(format!("sizes: {error}")))?;
            }
            None => {}
        }
        let mut session = Session::new();
        for decl in &request.decl {
            if !decl.trim().is_empty() {
                session.declare(decl)?;
            }
        }
        for definition in &request.lets {
            if !definition.trim().is_empty() {
                session.define_with(definition, &options)?;
            }
        }
        Ok(Prepared { session, options })
    }

    fn diff(&self, request: &ApiRequest) -> Result<Value, Failure> {
        let names = variables(request)?;
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let results = self
            .session
            .derivative(&request.expr, &names, &self.options)?;
        let mut value = report::results_json(&results);
        attach_renderings(&mut value, &request.render, CODE_RENDERINGS, |name| {
            Ok(Some(match name {
                "latex" => report::derivative_latex(&results),
                "text" => report::derivative_text(&results, Style::Unicode),
                "ascii" => report::derivative_text(&results, Style::Ascii),
                code => {
                    let Some(backend) = backend(code) else {
                        return Ok(None);
                    };
                    crate::print::numpy::derivative_module(
                        &self.session,
                        &request.expr,
                        &results,
                        &self.options,
                        backend,
                    )
                    .map_err(Failure::Request)?
                        + &report::check_comments(&results, "# ")
                }
            }))
        })?;
        Ok(value)
    }

    fn simplify(&self, request: &ApiRequest) -> Result<Value, Failure> {
        let result = self.session.simplify(&request.expr, &self.options)?;
        let mut value = result.to_json();
        attach_renderings(&mut value, &request.render, CODE_RENDERINGS, |name| {
            Ok(Some(match name {
                "latex" => report::simplified_latex(&result),
                "text" => report::simplified_text(&result, Style::Unicode),
                "ascii" => report::simplified_text(&result, Style::Ascii),
                code => {
                    let Some(backend) = backend(code) else {
                        return Ok(None);
                    };
                    crate::print::numpy::value_module(
                        &self.session,
                        &request.expr,
                        &result,
                        &self.options,
                        backend,
                    )
                    .map_err(Failure::Request)?
                }
            }))
        })?;
        Ok(value)
    }

    fn verify(&self, request: &ApiRequest) -> Result<Value, Failure> {
        no_sizes(request, "a verdict")?;
        let wrt = self.single_variable(request, "verify")?;
        let Some(claim) = request
            .claim
            .as_deref()
            .filter(|claim| !claim.trim().is_empty())
        else {
            return Err(Failure::Request(
                "no claim to verify: give \"claim\"".into(),
            ));
        };
        let result = self
            .session
            .verify(&request.expr, &wrt, claim, &self.options)?;
        let mut value = report::verify_json(&result, claim);
        let correct = matches!(result.verdict, crate::numeric::Verdict::Pass { .. });
        if request.steps && !correct {
            let (explanation, diagnosis) =
                self.session
                    .locate_error(&request.expr, &wrt, claim, &[], &self.options)?;
            value["first_wrong_step"] = json!(diagnosis.describe(&explanation).trim_end());
        }
        attach_renderings(&mut value, &request.render, "text, latex", |name| {
            Ok(match name {
                "text" => Some(report::claim_text(&result.verdict)),
                "latex" => Some(result.ours.to_latex()),
                _ => None,
            })
        })?;
        Ok(value)
    }

    fn explain(&self, request: &ApiRequest) -> Result<Value, Failure> {
        no_sizes(request, "an explanation")?;
        let deadline = crate::limits::Deadline::starting_now(self.options.limits.time);
        let names = variables(request)?;
        let explanation =
            self.session
                .explain_with(&request.expr, &names.join(","), &self.options)?;
        let mut value = crate::explain::to_json(&explanation);
        if request.check {
            let checks: Vec<Value> = crate::explain::check_adjoints(
                &explanation,
                &self.options.check_config.within(&deadline),
            )
            .iter()
            .map(|step| {
                json!({
                    "name": step.name,
                    "check": crate::session::verdict_json(&step.verdict),
                    "line": report::verdict_line(&step.verdict),
                })
            })
            .collect();
            value["adjoint_checks"] = json!(checks);
        }
        let known = "text, latex, svg, svg-adjoints, dot";
        attach_renderings(&mut value, &request.render, known, |name| {
            Ok(match name {
                "text" => Some(crate::explain::to_text(&explanation)),
                "latex" => Some(crate::explain::to_latex(&explanation)),
                "svg" => Some(crate::explain::to_svg(&explanation, false)),
                "svg-adjoints" => Some(crate::explain::to_svg(&explanation, true)),
                "dot" => Some(crate::explain::to_dot(&explanation, false)),
                _ => None,
            })
        })?;
        Ok(value)
    }

    fn single_variable(&self, request: &ApiRequest, endpoint: &str) -> Result<String, Failure> {
        match request.wrt.names().as_slice() {
            [single] => Ok(single.clone()),
            [] => Err(Failure::Request(format!(
                "no variable for {endpoint}: give \"wrt\""
            ))),
            _ => Err(Failure::Request(format!(
                "{endpoint} takes one variable in \"wrt\""
            ))),
        }
    }
}

/// Sizes given where they change nothing are an error, as on the command line.
fn no_sizes(request: &ApiRequest, what: &str) -> Result<(), Failure> {
    match request.sizes {
        Some(_) => Err(Failure::Request(format!(
            "\"sizes\" cost the compute form, and {what} has none"
        ))),
        None => Ok(()),
    }
}

/// The variables a request differentiates by; at least one.
fn variables(request: &ApiRequest) -> Result<Vec<String>, Failure> {
    let names = request.wrt.names();
    if names.is_empty() {
        return Err(Failure::Request(
            "no variable to differentiate with respect to: give \"wrt\"".into(),
        ));
    }
    Ok(names)
}

/// The renderings `diff` and `simplify` answer.
const CODE_RENDERINGS: &str = "latex, text, ascii, numpy, jax, torch";

/// The code printer's backend a rendering names.
fn backend(name: &str) -> Option<crate::print::numpy::Backend> {
    use crate::print::numpy::Backend;
    match name {
        "numpy" => Some(Backend::Numpy),
        "jax" => Some(Backend::Jax),
        "torch" => Some(Backend::Torch),
        _ => None,
    }
}

/// Puts the renderings a request asks for under `"render"`; `render` answers `None` for
/// a name its endpoint does not have, which is a bad request listing the `known` ones.
fn attach_renderings(
    value: &mut Value,
    names: &[String],
    known: &str,
    mut render: impl FnMut(&str) -> Result<Option<String>, Failure>,
) -> Result<(), Failure> {
    let mut rendered = serde_json::Map::new();
    for name in names {
        let Some(text) = render(name)? else {
            return Err(Failure::Request(format!(
                "unknown rendering `{name}`; this endpoint has {known}"
            )));
        };
        rendered.insert(name.clone(), json!(text));
    }
    if !rendered.is_empty() {
        value["render"] = Value::Object(rendered);
    }
    Ok(())
}
