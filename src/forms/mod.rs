//! How a derivative of a matrix by a matrix is shown (SPEC §4, `--form`):
//!
//! - [`Notation::Differential`], the default: `dF = −X⁻¹ dX X⁻¹`, linear in `dX`;
//! - [`Notation::Vec`]: the Jacobian ∂vec(F)/∂vec(X) as a Kronecker expression,
//!   `−X⁻ᵀ ⊗ X⁻¹` ([`mod@vec`]); with order 2 the Hessian matrix H of a scalar f, with
//!   d²f = vec(dX)ᵀ H vec(dX), `tr(XᵀAX)` → `I ⊗ (A + Aᵀ)`;
//! - [`Notation::Index`]: index notation with explicit indices,
//!   `∂(X⁻¹)ᵢⱼ/∂Xₖₗ = −(X⁻¹)ᵢₖ(X⁻¹)ₗⱼ` ([`mod@index`]).
//!
//! `vec` stacks columns, so entry (i, j) of an m×n matrix is entry i + jm of its vec.

pub mod index;
pub mod vec;

use std::fmt;
use std::str::FromStr;

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
