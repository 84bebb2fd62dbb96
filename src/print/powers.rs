//! Powers written so that they read back: an integer exponent past the parser's
//! standard `--max-exponent` (64) prints as nested powers within it, `X¹²⁸` as
//! `(X⁶⁴)²` and `x^{∘4095}` as `(x^{∘63})^{∘65}`… (a prime past it as a product,
//! `X¹²⁷ = X⁶⁴X⁶³`), equal in value. Simplification merges powers (`XX…X`, a chain of
//! squarings) without knowing the parser's bound; the printer keeps it.

use std::collections::HashMap;
use std::rc::Rc;

use num_traits::Signed;

use crate::expr::{build, Expr, ExprKind, Rational};

/// `expr` with every power past the bound split (shared nodes once); `None` when it has
/// none.
pub(super) fn split_powers(expr: &Expr) -> Option<Rc<Expr>> {
    let limit = i64::try_from(crate::parse::Limits::standard().max_exponent).unwrap_or(i64::MAX);
    let exponent = |node: &Expr| match &node.kind {
        ExprKind::Pow(_, k) if k.unsigned_abs() > limit.unsigned_abs() => Some(*k),
        ExprKind::ElemPow(_, q)
            if q.is_integer() && q.abs() > Rational::from_integer(limit.into()) =>
        {
            q.to_integer().try_into().ok()
        }
        _ => None,
    };
    let nodes = expr.children_first();
    if !nodes.iter().any(|node| exponent(node).is_some()) {
        return None;
    }
    let mut done: HashMap<*const Expr, Rc<Expr>> = HashMap::new();
    for node in nodes {
        let mut rebuilt = node.clone();
        for child in rebuilt.children_mut() {
            *child = done[&Rc::as_ptr(child)].clone();
        }
        let split = match (&rebuilt.kind, exponent(node)) {
            (ExprKind::Pow(base, _), Some(k)) => {
                within(base.clone(), k, limit, &build::pow, &build::mul)
            }
            (ExprKind::ElemPow(base, _), Some(k)) => within(
                base.clone(),
                k,
                limit,
                &|b, j| build::elem_pow(b, Rational::from_integer(j.into())),
                &build::hadamard,
            ),
            _ => Rc::new(rebuilt),
        };
        done.insert(node as *const Expr, split);
    }
    Some(done[&(expr as *const Expr)].clone())
}

/// `baseᵏ` as powers of exponents at most `limit` in magnitude: `(base^d)^{k/d}` for the
/// largest divisor `d ≤ limit`, else `base^{k−r} · base^r` with `r = k mod limit`.
fn within(
    base: Rc<Expr>,
    k: i64,
    limit: i64,
    power: &dyn Fn(Rc<Expr>, i64) -> Rc<Expr>,
    times: &dyn Fn(Rc<Expr>, Rc<Expr>) -> Rc<Expr>,
) -> Rc<Expr> {
    if k == 1 {
        return base;
    }
    if k.unsigned_abs() <= limit.unsigned_abs() {
        return power(base, k);
    }
    if let Some(d) = (2..=limit).rev().find(|d| k % d == 0) {
        return within(power(base, d), k / d, limit, power, times);
    }
    let r = k % limit;
    times(
        within(base.clone(), k - r, limit, power, times),
        power(base, r),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;
    use crate::print::{render, Style};

    #[test]
    fn large_powers_print_within_the_bound_and_read_back() {
        let x = Rc::new(parse("X").expect("parses"));
        for k in [65, 128, 127, 4095, 1 << 20, -128, -127] {
            let expr = build::pow(x.clone(), k);
            let text = render(&expr, Style::Unicode);
            let read = parse(&text).unwrap_or_else(|error| panic!("X^{k} as {text}: {error}"));
            let split = split_powers(&expr).expect("a power past the bound");
            assert!(read.same_structure(&split), "X^{k} printed {text}");
            // The exponents multiply and add back to k.
            fn exponent(e: &Expr) -> i64 {
                match &e.kind {
                    ExprKind::Pow(a, j) => exponent(a) * j,
                    ExprKind::Inverse(a) => -exponent(a),
                    ExprKind::Mul(a, b) => exponent(a) + exponent(b),
                    _ => 1,
                }
            }
            assert_eq!(exponent(&split), k, "{text}");
        }
        assert_eq!(render(&build::pow(x, 128), Style::Unicode), "(X⁶⁴)²");
    }
}
