//! Where a size's value is written so that it reads back as the size.
//!
//! A size (`m` of `u: m`) prints as its name, and shape inference reads the name back as
//! the size only where reading it as a default-typed letter, a column vector, does not
//! type or uses it as a scalar would be used; where that reading types and takes it as a
//! vector it is an error (`shape::Error::SizeAsVariable`), as a user's `mᵀx` would be.
//! So a value made from a size alone (`m`, `mα`, `log(m) − 1`: a *size scalar*) must not
//! stand where a column vector could: beside a row (`mαuᵀ` would be the outer product
//! of a vector `m` with `u`), on the right of a matrix or a row (`Xm`), or against a
//! column in a sum or an elementwise operation (`u + m`, `u ⊙ m`). [`place_sizes`]
//! rewrites those few nodes into equal ones that only a scalar reading types, `(mαu)ᵀ`,
//! `mX`, `(uᵀ + m)ᵀ`, `mu`, and leaves every other node, and any tree without sizes, as
//! it is.

use std::collections::HashMap;
use std::rc::Rc;

use crate::expr::{build, Expr, ExprKind};

/// `expr` with every size scalar placed where it reads back as one (see the module
/// documentation), or `None` when `expr` has no size. Shared subtrees stay shared.
pub(super) fn place_sizes(expr: &Expr) -> Option<Rc<Expr>> {
    let nodes = expr.children_first();
    if !nodes
        .iter()
        .any(|node| matches!(node.kind, ExprKind::Size(_)))
    {
        return None;
    }
    // Each original node's rewrite, and which rewritten nodes are size scalars.
    let mut done: HashMap<*const Expr, Rc<Expr>> = HashMap::new();
    let mut size_scalars: HashMap<*const Expr, bool> = HashMap::new();
    for node in nodes {
        let mut rebuilt = node.clone();
        for child in rebuilt.children_mut() {
            *child = done[&Rc::as_ptr(child)].clone();
        }
        let is_size_scalar = |e: &Rc<Expr>| size_scalars.get(&Rc::as_ptr(e)) == Some(&true);
        let placed = place(Rc::new(rebuilt), &is_size_scalar);
        let size_scalar = placed.shape.is_scalar()
            && match &placed.kind {
                ExprKind::Size(_) => true,
                // What keeps a column a column when the sizes are read as columns (as
                // `used_as_a_vector` in the shape checker).
                ExprKind::Neg(a) | ExprKind::Func(_, a) | ExprKind::ElemPow(a, _) => {
                    is_size_scalar(a)
                }
                ExprKind::Add(a, b)
                | ExprKind::Sub(a, b)
                | ExprKind::Hadamard(a, b)
                | ExprKind::ElemDiv(a, b) => is_size_scalar(a) || is_size_scalar(b),
                // Read as columns, a product of two (`mn`) or a quotient by one does not
                // type, so the whole text reads with sizes.
                ExprKind::Mul(a, b) => is_size_scalar(a) != is_size_scalar(b),
                ExprKind::Div(a, b) => is_size_scalar(a) && !is_size_scalar(b),
                _ => false,
            };
        size_scalars.insert(Rc::as_ptr(&placed), size_scalar);
        done.insert(node as *const Expr, placed);
    }
    Some(done[&(expr as *const Expr)].clone())
}

/// One node, its children already placed: the equal node that reads back, or the node.
fn place(node: Rc<Expr>, size_scalar: &dyn Fn(&Rc<Expr>) -> bool) -> Rc<Expr> {
    use ExprKind::*;
    // The size scalar of a binary node and its non-scalar other side, if it has them.
    let split = |a: &Rc<Expr>, b: &Rc<Expr>| {
        if size_scalar(a) && !b.shape.is_scalar() {
            Some((a.clone(), b.clone(), true))
        } else if size_scalar(b) && !a.shape.is_scalar() {
            Some((b.clone(), a.clone(), false))
        } else {
            None
        }
    };
    let column = |y: &Expr| y.shape.cols.is_one();
    let row = |y: &Expr| y.shape.rows.is_one();
    match &node.kind {
        // Of a scalar these are the scalar, and `mᵀ`, `sum(m)` would take `m` as a vector.
        Transpose(a) | Sum(a) | Vectorize(a) | Trace(a) | Det(a) | Diag(a) if size_scalar(a) => {
            a.clone()
        }
        Mul(a, b) | Kron(a, b) => match split(a, b) {
            // `s Y` of a row reads as an outer product: `(s Yᵀ)ᵀ`, a scaled column.
            Some((s, y, _)) if row(&y) => build::transpose(scaled(s, transposed(&y))),
            // `Y s` of a matrix reads as a matrix times a vector: `s Y`.
            Some((s, y, first)) if !first && !column(&y) => scaled(s, y),
            Some((s, y, _)) if matches!(node.kind, Kron(..)) => scaled(s, y),
            _ => node,
        },
        // A column with a size scalar in a sum reads as a sum of two columns: as rows,
        // `(uᵀ + m)ᵀ`, the sum no longer types with `m` a column.
        Add(a, b) | Sub(a, b) => match split(a, b) {
            Some((_, y, _)) if column(&y) && !row(&y) => {
                let (a, b) = (transposed(a), transposed(b));
                build::transpose(match node.kind {
                    Add(..) => build::add(a, b),
                    _ => build::sub(a, b),
                })
            }
            _ => node,
        },
        // Elementwise with a column, a size scalar is a scaling: `s ⊙ y` is `s y`.
        Hadamard(a, b) => match split(a, b) {
            Some((s, y, _)) if column(&y) && !row(&y) => scaled(s, y),
            _ => node,
        },
        ElemDiv(a, b) => match split(a, b) {
            Some((s, y, false)) if column(&y) && !row(&y) => build::div(y, s),
            Some((_, y, true)) if column(&y) && !row(&y) => {
                build::transpose(build::elem_div(a.clone(), transposed(&y)))
            }
            _ => node,
        },
        _ => node,
    }
}

/// `s y`, a scalar factor of `y` joined to `s` (`m(αu)` is written `mαu`).
fn scaled(s: Rc<Expr>, y: Rc<Expr>) -> Rc<Expr> {
    match &y.kind {
        ExprKind::Mul(c, rest) if c.shape.is_scalar() => {
            build::mul(build::mul(s, c.clone()), rest.clone())
        }
        _ => build::mul(s, y),
    }
}

/// `yᵀ`, with a transpose taken off rather than added, scalar factors left in front and
/// sums and elementwise operations transposed term by term (`(uᵀ − β)ᵀ` is `u − β`); a
/// scalar is its own transpose.
fn transposed(y: &Rc<Expr>) -> Rc<Expr> {
    transposed_within(y, 8)
}

/// [`transposed`], going at most `depth` nodes down (a long sum is transposed whole).
fn transposed_within(y: &Rc<Expr>, depth: usize) -> Rc<Expr> {
    use ExprKind::*;
    let inner = |z: &Rc<Expr>| transposed_within(z, depth - 1);
    match &y.kind {
        _ if y.shape.is_scalar() => y.clone(),
        Transpose(z) => z.clone(),
        _ if depth == 0 => build::transpose(y.clone()),
        Neg(z) => build::neg(inner(z)),
        Mul(c, z) if c.shape.is_scalar() => build::mul(c.clone(), inner(z)),
        Add(a, b) => build::add(inner(a), inner(b)),
        Sub(a, b) => build::sub(inner(a), inner(b)),
        Hadamard(a, b) => build::hadamard(inner(a), inner(b)),
        ElemDiv(a, b) => build::elem_div(inner(a), inner(b)),
        _ => build::transpose(y.clone()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use nalgebra::DMatrix;

    use super::*;
    use crate::expr::{Dim, Shape};
    use crate::numeric::{evaluate, Instance};
    use crate::print::{render, Style};

    fn size(name: &str) -> Rc<Expr> {
        build::size(&Dim::Sym(name.into())).expect("a size")
    }

    fn var(name: &str, rows: &str, cols: &str) -> Rc<Expr> {
        let dim = |d: &str| match d {
            "1" => Dim::one(),
            _ => Dim::Sym(d.into()),
        };
        build::var(name, Shape::new(dim(rows), dim(cols)))
    }

    /// Each node that puts a size where a column could stand prints as `text`, which
    /// reads back with the declarations (the size as its value) to an equal value in
    /// every style.
    #[test]
    fn sizes_are_printed_where_they_read_back_as_sizes() {
        let (u, x, alpha) = (var("u", "m", "1"), var("X", "m", "n"), var("α", "1", "1"));
        let row = || build::transpose(u.clone());
        let cases: Vec<(Rc<Expr>, &str)> = vec![
            (
                build::mul(build::mul(size("m"), alpha.clone()), row()),
                "(mαu)ᵀ",
            ),
            (
                build::mul(size("m"), build::mul(alpha.clone(), row())),
                "(mαu)ᵀ",
            ),
            (build::mul(row(), size("m")), "(m·u)ᵀ"),
            (build::mul(x.clone(), size("n")), "nX"),
            (build::mul(x.clone(), build::neg(size("n"))), "(−n)X"),
            (build::add(u.clone(), size("m")), "(uᵀ + m)ᵀ"),
            (build::sub(size("m"), u.clone()), "(m − uᵀ)ᵀ"),
            (build::hadamard(u.clone(), size("m")), "m·u"),
            (build::elem_div(u.clone(), size("m")), "u/m"),
            (build::elem_div(size("m"), u.clone()), "(m ⊘ uᵀ)ᵀ"),
            (build::kron(size("n"), row()), "(n·u)ᵀ"),
            (build::mul(build::sum(size("m")), u.clone()), "m·u"),
            // Already read back: a column beside a size, a product of two sizes.
            (build::mul(size("m"), u.clone()), "m·u"),
            (build::mul(build::mul(size("m"), size("n")), row()), "mn·uᵀ"),
        ];
        let decls = crate::parse::parse_decls("u: m, X: m×n, α: scalar").expect("declarations");
        let sizes = BTreeMap::from([("m".to_string(), 3), ("n".to_string(), 4)]);
        let values = BTreeMap::from([
            (
                "u".to_string(),
                DMatrix::from_fn(3, 1, |i, _| 0.5 + i as f64),
            ),
            (
                "X".to_string(),
                DMatrix::from_fn(3, 4, |i, j| (i * 4 + j) as f64 - 2.5),
            ),
            ("α".to_string(), DMatrix::from_element(1, 1, 0.7)),
        ]);
        let instance = Instance::new(sizes, values);
        for (expr, text) in cases {
            assert_eq!(render(&expr, Style::Unicode), text);
            let expected = evaluate(&expr, &instance).expect("a value");
            for style in [Style::Unicode, Style::Ascii, Style::Latex] {
                let printed = render(&expr, style);
                let parsed = crate::parse::parse(&printed).expect("parses");
                let typed = crate::shape::infer(&parsed, &decls)
                    .unwrap_or_else(|error| panic!("{printed}: {error}"));
                let got = evaluate(&typed.expr, &instance).expect("a value");
                assert!((got - &expected).norm() < 1e-12, "{printed}");
            }
        }
    }
}
