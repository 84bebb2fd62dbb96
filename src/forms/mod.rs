//! How a derivative of a matrix by a matrix is shown (SPEC §4, `--form`):
//!
//! - [`Notation::Differential`], the default: `dF = −X⁻¹ dX X⁻¹`, linear in `dX`;
//! - [`Notation::Vec`]: the Jacobian ∂vec(F)/∂vec(X) as a Kronecker expression,
//!   `−X⁻ᵀ ⊗ X⁻¹` ([`mod@vec`]); with order 2 the Hessian matrix H of a scalar f, with
//!   d²f = vec(dX)ᵀ H vec(dX), `tr(XᵀAX)` → `I ⊗ (A + Aᵀ)`;
//! - [`Notation::Index`]: index notation with explicit indices,
//!   `∂(X⁻¹)ᵢⱼ/∂Xₖₗ = −(X⁻¹)ᵢₖ(X⁻¹)ₗⱼ` ([`mod@index`]).
//!
//! An entry as the variable, `--wrt 'X[m,n]'`, is answered in index notation
//! ([`mod@entry`]).
//!
//! `vec` stacks columns, so entry (i, j) of an m×n matrix is entry i + jm of its vec.

pub mod entry;
pub mod index;
pub mod vec;

use std::fmt;
use std::str::FromStr;

use crate::diff::{self, Error};
use crate::expr::{Expr, ExprKind, Shape};
use crate::shape::Typed;

/// Which way a derivative of a matrix by a matrix is written (`--form`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Notation {
    /// The differential `dF`, linear in `dX` (the default).
    #[default]
    Differential,
    /// The Jacobian ∂vec(F)/∂vec(X), or with order 2 the Hessian matrix in vec(X).
    Vec,
    /// Index notation: ∂Fᵢⱼ/∂Xₖₗ with Kronecker deltas.
    Index,
}

impl Notation {
    /// The name used on the command line, in the REPL and in JSON: `differential`,
    /// `vec`, `index`.
    pub fn name(self) -> &'static str {
        match self {
            Notation::Differential => "differential",
            Notation::Vec => "vec",
            Notation::Index => "index",
        }
    }
}

impl fmt::Display for Notation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Notation {
    type Err = String;

    fn from_str(text: &str) -> Result<Notation, String> {
        match text.trim() {
            "differential" | "diff" => Ok(Notation::Differential),
            "vec" | "kronecker" => Ok(Notation::Vec),
            "index" => Ok(Notation::Index),
            other => Err(format!(
                "unknown form `{other}`: use differential, vec or index"
            )),
        }
    }
}

/// What the vec and index forms are both read from: with order 1 the differential dF of
/// F, with order 2 the differential dG of the unconstrained gradient G of a scalar f
/// (then ∂²f/∂Xᵢⱼ∂Xₖₗ = ∂Gᵢⱼ/∂Xₖₗ), with the shapes of F (or G) and of X.
pub(crate) struct Source {
    /// dF, linear in dX.
    pub expr: Expr,
    /// The shape of F, or of the gradient G with order 2.
    pub of_shape: Shape,
    /// The shape of X.
    pub x_shape: Shape,
}

/// The differential both forms read, for `order` 1 or 2 (see [`Source`]).
pub(crate) fn differential(typed: &Typed, wrt: &str, order: u8) -> Result<Source, Error> {
    let x_shape = typed
        .vars
        .get(wrt)
        .map(|decl| decl.shape.clone())
        .ok_or_else(|| Error::UnknownVariable {
            name: wrt.to_string(),
            hint: None,
            known: typed.vars.keys().cloned().collect(),
        })?;
    match order {
        1 => Ok(Source {
            expr: diff::differential(typed, wrt)?,
            of_shape: typed.expr.shape.clone(),
            x_shape,
        }),
        2 => {
            if !typed.expr.shape.is_scalar() {
                return Err(Error::NotScalar {
                    shape: typed.expr.shape.clone(),
                });
            }
            // The unconstrained gradient: the Hessian perturbs entries one by one, as
            // the check does, also for a `sym` variable.
            let mut plain = typed.clone();
            if let Some(decl) = plain.vars.get_mut(wrt) {
                decl.props = Default::default();
            }
            let gradient = diff::derivative(&plain, wrt, 1)?;
            let of_gradient = Typed {
                expr: gradient.expr,
                ..plain
            };
            Ok(Source {
                expr: diff::differential(&of_gradient, wrt)?,
                of_shape: x_shape.clone(),
                x_shape,
            })
        }
        _ => Err(Error::Unsupported {
            what: format!("derivatives of order {order} (orders 1 and 2 are supported)"),
        }),
    }
}

/// Whether the differential `d<wrt>` occurs in `expr` (the variable itself may).
pub(crate) fn mentions_differential(expr: &Expr, wrt: &str) -> bool {
    let mut stack: Vec<&Expr> = vec![expr];
    while let Some(node) = stack.pop() {
        match &node.kind {
            ExprKind::Differential(name) if name == wrt => return true,
            _ => stack.extend(node.children().into_iter().map(|child| child.as_ref())),
        }
    }
    false
}

/// One rule of a form as it was used, for `explain --form vec|index`: the node of the
/// differential it was applied to and the rule in words with the node's own factors
/// (`vec(dY B) = (Bᵀ ⊗ I) vec(dY), B = X⁻¹: …`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The node of the differential, in Unicode.
    pub node: String,
    /// The rule, in Unicode.
    pub rule: String,
}

/// What `explain --form vec|index` shows: the differential the form is read from, each
/// rule of the form used on it, in words, and the result as `diff --form` prints it.
#[derive(Clone, Debug)]
pub struct Explanation {
    /// [`Notation::Vec`] or [`Notation::Index`].
    pub notation: Notation,
    /// Whether the form is of the Hessian (read from the gradient's differential).
    pub hessian: bool,
    /// The differential, in Unicode: `−X⁻¹ dX X⁻¹`.
    pub differential: String,
    /// The rules, children first.
    pub steps: Vec<Step>,
    /// The result as `diff --form` prints it (with its check line when checked).
    pub result: String,
    /// Whether the result's check passed, when it was checked.
    pub passed: Option<bool>,
}

impl Explanation {
    /// The explanation as text.
    pub fn to_text(&self) -> String {
        let (form, how) = match self.notation {
            Notation::Index => (
                "index form",
                "The entry (r, c) of each node of the differential, outermost first:",
            ),
            _ => (
                "vec form",
                "vec of each node of the differential, children first (vec stacks columns):",
            ),
        };
        let from = if self.hessian {
            "the differential dG of the gradient G (the Hessian is ∂vec(G)/∂vec(X))"
        } else {
            "the differential"
        };
        let mut out = format!(
            "The {form}, read from {from}\n  {}\n{how}\n",
            self.differential
        );
        for step in &self.steps {
            out += &format!("  {}\n      {}\n", step.node, step.rule);
        }
        out += match self.notation {
            Notation::Index => {
                "A delta on a summation index is summed out (Σₛ Aᵢₛδₛₖ = Aᵢₖ) and like terms are added:\n"
            }
            _ => {
                "Products of Kronecker factors are combined by (A ⊗ B)(C ⊗ D) = AC ⊗ BD, then simplified:\n"
            }
        };
        out + &self.result
    }

    /// The explanation as JSON: `{"form", "differential", "steps": [{"node", "rule"}],
    /// "result"}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "form": self.notation.name(),
            "hessian": self.hessian,
            "differential": self.differential,
            "steps": self.steps.iter().map(|step| serde_json::json!({"node": step.node, "rule": step.rule})).collect::<Vec<_>>(),
            "result": self.result,
        })
    }
}
