//! Differentiation (being written).

use crate::expr::Expr;
use crate::shape::Typed;

/// Which kind of derivative a [`Derivative`] is (SPEC §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DerivativeKind {
    /// Scalar f, any variable: the gradient, shaped like the variable.
    Gradient,
    /// Vector f, vector or scalar x: the Jacobian, rows = f's length.
    Jacobian,
    /// Any f, matrix X: the differential dF, linear in dX.
    Differential,
    /// Scalar f, vector x, order 2: the Hessian.
    Hessian,
    /// Scalar f, matrix X, order 2: the second differential, quadratic in dX.
    SecondDifferential,
}

/// A derivative of an expression with respect to one variable.
#[derive(Clone, Debug)]
pub struct Derivative {
    /// Which kind.
    pub kind: DerivativeKind,
    /// The variable.
    pub wrt: String,
    /// The derivative itself (for differentials, an expression in `dX`).
    pub expr: Expr,
    /// Whether this is the symmetric gradient of a `sym`/`spd` variable.
    pub symmetric: bool,
}

/// A differentiation error (being written).
#[derive(Clone, Debug, thiserror::Error)]
#[error("the differentiator is being written")]
pub struct Error;

/// The derivative of `typed` with respect to `wrt` (being written).
pub fn derivative(_typed: &Typed, _wrt: &str, _order: u8) -> Result<Derivative, Error> {
    Err(Error)
}
