//! Light local tidying of adjoints so that they read as the sheet writes them: exact
//! constant factors collected in front (`2·½·z₂ = z₂`), `1·A = A`, `IA = A`, `0 + A = A`,
//! `a + (−b) = a − b`, `𝟙 ⊙ A = A`, and transposes pushed through products (`(z₂xᵀWᵀ)ᵀ =
//! Wxz₂ᵀ`). A transpose of a node that is itself a transpose, `z₅ = Wᵀ`, is written as the
//! inner operand (`z₅ᵀ = W`). Every rewrite is an identity, so values never change.

use std::collections::HashMap;
use std::rc::Rc;

use num_traits::{One, Signed, Zero};

use crate::expr::{build, Expr, ExprKind, Rational, Symbol};

/// Tidies `expr` bottom-up; `transposes` maps a node name to its operand when the node is
/// a transpose.
pub(super) fn tidy(expr: &Rc<Expr>, transposes: &HashMap<Symbol, Rc<Expr>>) -> Rc<Expr> {
    use ExprKind::*;
    let t = |e: &Rc<Expr>| tidy(e, transposes);
    match &expr.kind {
        Num(_) | Var(_) | Identity | Ones | Size(_) | Differential(_) => expr.clone(),
        Neg(a) => {
            let a = t(a);
            let (c, rest) = split(&a);
            scale(-c, rest, &expr.shape)
        }
        Mul(a, b) => product(t(a), t(b)),
        Hadamard(a, b) => hadamard(t(a), t(b)),
        Transpose(a) => transpose(t(a), transposes),
        Add(a, b) => sum(t(a), t(b)),
        Sub(a, b) => difference(t(a), t(b)),
        Div(a, b) => {
            let (a, b) = (t(a), t(b));
            match b.as_constant() {
                Some(q) if b.shape.is_scalar() && !q.is_zero() => {
                    let (c, rest) = split(&a);
                    scale(c / q, rest, &a.shape)
                }
                _ => build::div(a, b),
            }
        }
        _ => {
            let kids: Vec<Rc<Expr>> = expr.children().into_iter().map(t).collect();
            Rc::new(super::with_children(expr, &kids))
        }
    }
}

fn is_zero(e: &Expr) -> bool {
    matches!(&e.kind, ExprKind::Num(q) if q.is_zero())
}

/// Splits `c·rest` into its exact constant factor and the rest (`None` for a constant).
fn split(e: &Rc<Expr>) -> (Rational, Option<Rc<Expr>>) {
    match &e.kind {
        ExprKind::Num(q) if e.shape.is_scalar() => (q.clone(), None),
        ExprKind::Neg(inner) => {
            let (c, rest) = split(inner);
            (-c, rest)
        }
        ExprKind::Mul(a, b) => match (&a.kind, a.shape.is_scalar()) {
            (ExprKind::Num(q), true) => {
                let (c, rest) = split(b);
                (q * c, rest)
            }
            _ => (Rational::one(), Some(e.clone())),
        },
        _ => (Rational::one(), Some(e.clone())),
    }
}

/// `c·rest`, spelled `rest`, `−rest`, `c rest` or `−c rest`.
fn scale(c: Rational, rest: Option<Rc<Expr>>, shape: &crate::expr::Shape) -> Rc<Expr> {
    if c.is_zero() {
        return super::zero(shape);
    }
    let Some(rest) = rest else {
        return build::constant(c);
    };
    if c.is_one() {
        rest
    } else if c == -Rational::one() {
        build::neg(rest)
    } else if c.is_positive() {
        build::mul(build::constant(c), rest)
    } else {
        build::neg(build::mul(build::constant(-c), rest))
    }
}

pub(super) fn product(a: Rc<Expr>, b: Rc<Expr>) -> Rc<Expr> {
    let shape = build::mul(a.clone(), b.clone()).shape.clone();
    if is_zero(&a) || is_zero(&b) {
        return super::zero(&shape);
    }
    let (ca, ra) = split(&a);
    let (cb, rb) = split(&b);
    let rest = match (ra, rb) {
        (None, x) | (x, None) => x,
        (Some(x), Some(y)) => Some(matrix_product(x, y)),
    };
    scale(ca * cb, rest, &shape)
}

/// `a ⊙ b`, without a factor 𝟙 of the product's shape (a broadcast 𝟙 stays).
fn hadamard(a: Rc<Expr>, b: Rc<Expr>) -> Rc<Expr> {
    let is_ones = |e: &Expr| matches!(e.kind, ExprKind::Ones);
    if is_ones(&a) && a.shape == b.shape {
        return b;
    }
    if is_ones(&b) && a.shape == b.shape {
        return a;
    }
    build::hadamard(a, b)
}

fn matrix_product(x: Rc<Expr>, y: Rc<Expr>) -> Rc<Expr> {
    let x_scalar = x.shape.is_scalar();
    let y_scalar = y.shape.is_scalar();
    if matches!(x.kind, ExprKind::Identity) && !x_scalar && !y_scalar {
        return y;
    }
    if matches!(y.kind, ExprKind::Identity) && !x_scalar && !y_scalar {
        return x;
    }
    // Scalar factors inside a matrix product move to its front: Xᵀ(αG) = αXᵀG.
    if !x_scalar {
        if let ExprKind::Mul(s, r) = &y.kind {
            if s.shape.is_scalar() && !r.shape.is_scalar() {
                return build::mul(s.clone(), matrix_product(x, r.clone()));
            }
        }
    }
    if !y_scalar {
        if let ExprKind::Mul(s, r) = &x.kind {
            if s.shape.is_scalar() && !r.shape.is_scalar() {
                return build::mul(s.clone(), matrix_product(r.clone(), y));
            }
        }
    }
    if y_scalar && !x_scalar {
        // A scalar factor reads best in front: α(∂L/∂C), not (∂L/∂C)α.
        return build::mul(y, x);
    }
    build::mul(x, y)
}

fn transpose(a: Rc<Expr>, transposes: &HashMap<Symbol, Rc<Expr>>) -> Rc<Expr> {
    use ExprKind::*;
    if a.shape.is_scalar() {
        return a;
    }
    let (c, rest) = split(&a);
    let Some(rest) = rest else {
        return a;
    };
    let shape = rest.shape.transposed();
    let flipped = match &rest.kind {
        Transpose(inner) => inner.clone(),
        Identity => rest.clone(),
        Num(q) if q.is_zero() => super::zero(&shape),
        Var(name) if transposes.contains_key(name) => transposes[name].clone(),
        Mul(x, y) if x.shape.is_scalar() => product(x.clone(), transpose(y.clone(), transposes)),
        Mul(x, y) => product(
            transpose(y.clone(), transposes),
            transpose(x.clone(), transposes),
        ),
        _ => build::transpose(rest.clone()),
    };
    scale(c, Some(flipped), &shape)
}

pub(super) fn sum(a: Rc<Expr>, b: Rc<Expr>) -> Rc<Expr> {
    if is_zero(&a) && a.shape == b.shape {
        return b;
    }
    if is_zero(&b) && a.shape == b.shape {
        return a;
    }
    let (cb, rb) = split(&b);
    if cb.is_negative() {
        let positive = scale(-cb, rb, &b.shape);
        return build::sub(a, positive);
    }
    build::add(a, b)
}

fn difference(a: Rc<Expr>, b: Rc<Expr>) -> Rc<Expr> {
    if is_zero(&b) && a.shape == b.shape {
        return a;
    }
    if is_zero(&a) && a.shape == b.shape {
        let (c, rest) = split(&b);
        return scale(-c, rest, &b.shape);
    }
    let (cb, rb) = split(&b);
    if cb.is_negative() {
        let positive = scale(-cb, rb, &b.shape);
        return build::add(a, positive);
    }
    build::sub(a, b)
}
