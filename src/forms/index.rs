//! Index notation: ∂Fᵢⱼ/∂Xₖₗ with explicit indices and Kronecker deltas,
//! `∂(X⁻¹)ᵢⱼ/∂Xₖₗ = −(X⁻¹)ᵢₖ(X⁻¹)ₗⱼ`, in Unicode and LaTeX.
//!
//! The entries come from the differential dF: the coefficient of dXₖₗ in (dF)ᵢⱼ, node by
//! node, with a fresh summation index for every inner dimension of a product:
//! (dX)ᵣ꜀ = δᵣₖδ꜀ₗ, (A M)ᵣ꜀ = Σₛ AᵣₛMₛ꜀, (Mᵀ)ᵣ꜀ = M꜀ᵣ, (A ⊙ M)ᵣ꜀ = Aᵣ꜀Mᵣ꜀,
//! tr(M) = Σₛ Mₛₛ, (s B)ᵣ꜀ = s Bᵣ꜀. A delta on a summation index is then summed out, so
//! only the deltas between free indices remain (δᵢₗ in ∂(XᵀX)ᵢⱼ/∂Xₖₗ = δᵢₗXₖⱼ + Xₖᵢδⱼₗ).
//! A size-1 dimension has no index: a vector's entries are xᵢ.
//!
//! With order 2 the same is done to the differential of the gradient G:
//! ∂²f/∂Xᵢⱼ∂Xₖₗ = ∂Gᵢⱼ/∂Xₖₗ.

use std::rc::Rc;

use num_traits::{One, Signed, Zero};

use super::{mentions_differential, Step};
use crate::diff::Error;
use crate::expr::{Expr, ExprKind, Rational, Shape};
use crate::print::{self, Style};
use crate::shape::Typed;

/// An index of an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Index {
    /// A free index, named: `i`, `j`, `k`, `l` (or the `m`, `n` of `--wrt 'X[m,n]'`).
    Free(String),
    /// A summation index, numbered.
    Summed(usize),
    /// The only index of a size-1 dimension, never written.
    One,
}

/// One factor of a term.
#[derive(Clone, Debug)]
pub enum Factor {
    /// An entry `Mᵣ꜀` of a matrix free of dX.
    Entry(Rc<Expr>, Index, Index),
    /// A Kronecker delta `δₐᵦ`.
    Delta(Index, Index),
    /// A scalar free of dX (`det(X)`, `tr(A)`).
    Scalar(Rc<Expr>),
}

/// A term: a coefficient, summation indices and factors.
#[derive(Clone, Debug)]
pub struct Term {
    /// The rational coefficient, with its sign.
    pub coefficient: Rational,
    /// The summation indices still summed over.
    pub sums: Vec<usize>,
    /// The factors, in the order of the product.
    pub factors: Vec<Factor>,
}

/// The entry derivative ∂Fᵢⱼ/∂Xₖₗ of `typed` with respect to `wrt` (with order 2 the
/// Hessian's ∂²f/∂Xᵢⱼ∂Xₖₗ), as a sum of terms, with F's indices named `row`, `col`
/// and X's `k`, `l`.
#[derive(Clone, Debug)]
pub struct IndexForm {
    /// The terms of the sum.
    pub terms: Vec<Term>,
    /// The names of F's indices (or of the gradient's with order 2).
    pub row: Index,
    /// The column index of F.
    pub col: Index,
    /// The names of X's indices.
    pub k: Index,
    /// The column index of X.
    pub l: Index,
    /// F as written, or `None` for a Hessian (then the left side is ∂²f/∂Xᵢⱼ∂Xₖₗ).
    pub of: Option<String>,
    /// The variable.
    pub wrt: String,
    /// The size each summation index runs over, by number (index n at n − 1).
    pub sums: Vec<crate::expr::Dim>,
    /// The shape of F (of the gradient, with order 2) and of X.
    pub shapes: (Shape, Shape),
    /// The differential the entries were read from, in Unicode.
    pub differential: String,
    /// The index rules used on it, each once, for `explain --form index`; empty but
    /// from [`derivative_with_steps`].
    pub steps: Vec<Step>,
}

/// The index form of the derivative of `typed` by `wrt`, with X's indices named `k`, `l`
/// (`m`, `n` for `--wrt 'X[m,n]'`), or [`Error::TooLarge`] once its terms hold more than
/// `max_factors` factors (`--max-nodes`): a product of n factors has n² of them.
///
/// # Examples
/// ```
/// use matcalc::forms::index;
/// use matcalc::print::Style;
/// let mut session = matcalc::session::Session::new();
/// session.declare("X: n×n").unwrap();
/// let typed = session.typed("X⁻¹").unwrap();
/// let form = index::derivative(&typed, "X", 1, ("k", "l"), 10_000)?;
/// assert_eq!(form.render(Style::Unicode), "∂(X⁻¹)ᵢⱼ/∂Xₖₗ = −(X⁻¹)ᵢₖ(X⁻¹)ₗⱼ");
/// assert!(index::derivative(&typed, "X", 1, ("k", "l"), 1).is_err());
/// # Ok::<(), matcalc::diff::Error>(())
/// ```
pub fn derivative(
    typed: &Typed,
    wrt: &str,
    order: u8,
    names: (&str, &str),
    max_factors: usize,
) -> Result<IndexForm, Error> {
    build(typed, wrt, order, names, max_factors, false)
}

/// [`derivative`] with [`IndexForm::steps`] filled in, for `explain --form index`
/// (writing the rules renders every node, quadratic in a long product).
pub fn derivative_with_steps(
    typed: &Typed,
    wrt: &str,
    order: u8,
    names: (&str, &str),
    max_factors: usize,
) -> Result<IndexForm, Error> {
    build(typed, wrt, order, names, max_factors, true)
}

fn build(
    typed: &Typed,
    wrt: &str,
    order: u8,
    names: (&str, &str),
    max_factors: usize,
    with_steps: bool,
) -> Result<IndexForm, Error> {
    let read = super::differential(typed, wrt, order)?;
    let (f_shape, x_shape) = (read.of_shape, read.x_shape);
    let of = (order == 1).then(|| print::render(&typed.expr, Style::Unicode));
    let differential = read.expr;
    let index_of = |shape_dim_is_one: bool, name: &str| {
        if shape_dim_is_one {
            Index::One
        } else {
            Index::Free(name.to_string())
        }
    };
    // F's indices are named apart from X's (`--wrt 'X[i,j]'` makes them k, l).
    let mut spare = ["i", "j", "k", "l", "p", "q", "a", "b"]
        .into_iter()
        .filter(|name| *name != names.0 && *name != names.1);
    let row = index_of(f_shape.rows.is_one(), spare.next().unwrap_or("i"));
    let col = index_of(f_shape.cols.is_one(), spare.next().unwrap_or("j"));
    let k = index_of(x_shape.rows.is_one(), names.0);
    let l = index_of(x_shape.cols.is_one(), names.1);
    let mut builder = Builder {
        wrt,
        k: k.clone(),
        l: l.clone(),
        next: 0,
        sizes: Vec::new(),
        steps: Vec::new(),
        with_steps,
        max_factors,
    };
    let differential = Rc::new(differential);
    let terms = builder.entry(&differential, row.clone(), col.clone())?;
    let sums = builder.sizes.clone();
    let terms = collect(terms.into_iter().filter_map(contract).collect());
    Ok(IndexForm {
        terms,
        row,
        col,
        k,
        l,
        of,
        wrt: wrt.to_string(),
        sums,
        shapes: (f_shape, x_shape),
        differential: print::render(&differential, Style::Unicode),
        steps: builder.steps,
    })
}

/// The entry form of a scalar f by one entry of `wrt`: entry (`names`) of the gradient
/// `gradient` as displayed, with sums and scalars distributed, transposes moved into the
/// indices and I written δ (`Aᵀ` → `Aₙₘ`); a product stays one entry, `((A + Aᵀ)x)ᵢ`.
pub fn entry_of(typed: &Typed, wrt: &str, gradient: &Rc<Expr>, names: (&str, &str)) -> IndexForm {
    let x_shape = gradient.shape.clone();
    let index_of = |one: bool, name: &str| {
        if one {
            Index::One
        } else {
            Index::Free(name.to_string())
        }
    };
    let k = index_of(x_shape.rows.is_one(), names.0);
    let l = index_of(x_shape.cols.is_one(), names.1);
    let terms = collect(entries(gradient, k.clone(), l.clone()));
    IndexForm {
        terms,
        row: Index::One,
        col: Index::One,
        k,
        l,
        of: Some(print::render(&typed.expr, Style::Unicode)),
        wrt: wrt.to_string(),
        sums: Vec::new(),
        shapes: (typed.expr.shape.clone(), x_shape),
        differential: String::new(),
        steps: Vec::new(),
    }
}

/// Entry (r, c) of `expr` as terms, distributing over sums, negations and scalars.
fn entries(expr: &Rc<Expr>, r: Index, c: Index) -> Vec<Term> {
    use ExprKind as K;
    let index_in = |operand: &Expr, index: &Index, rows: bool| {
        let one = if rows {
            operand.shape.rows.is_one()
        } else {
            operand.shape.cols.is_one()
        };
        if one {
            Index::One
        } else {
            index.clone()
        }
    };
    match &expr.kind {
        K::Add(a, b) | K::Sub(a, b) => {
            let left = entries(a, index_in(a, &r, true), index_in(a, &c, false));
            let right = entries(b, index_in(b, &r, true), index_in(b, &c, false));
            let right = if matches!(expr.kind, K::Sub(..)) {
                negate(right)
            } else {
                right
            };
            left.into_iter().chain(right).collect()
        }
        K::Neg(a) => negate(entries(a, r, c)),
        K::Num(q) if q.is_zero() => vec![],
        K::Num(q) => vec![Term {
            coefficient: q.clone(),
            sums: vec![],
            factors: vec![],
        }],
        K::Mul(a, b) if a.shape.is_scalar() || b.shape.is_scalar() => {
            let (scalar, other) = if a.shape.is_scalar() { (a, b) } else { (b, a) };
            let terms = entries(other, index_in(other, &r, true), index_in(other, &c, false));
            match &scalar.kind {
                K::Num(q) => terms
                    .into_iter()
                    .map(|mut term| {
                        term.coefficient *= q.clone();
                        term
                    })
                    .collect(),
                _ => before(vec![Factor::Scalar(scalar.clone())], terms),
            }
        }
        K::Transpose(a) => entries(a, c, r),
        _ => single(constant_entry(expr, r, c)),
    }
}

struct Builder<'a> {
    wrt: &'a str,
    k: Index,
    l: Index,
    next: usize,
    /// The size of each summation index so far.
    sizes: Vec<crate::expr::Dim>,
    /// The rules used, each once, for `explain --form index`.
    steps: Vec<Step>,
    /// Whether to record `steps`.
    with_steps: bool,
    /// The most factors the terms of one node may hold.
    max_factors: usize,
}

fn unsupported(node: &Expr) -> Error {
    Error::Unsupported {
        what: format!("index notation for {}", print::render(node, Style::Unicode)),
    }
}

fn single(factors: Vec<Factor>) -> Vec<Term> {
    vec![Term {
        coefficient: Rational::one(),
        sums: vec![],
        factors,
    }]
}

/// The entry (r, c) of a matrix free of dX, as factors: transposes move into the
/// indices, I is a delta, a scalar has no indices.
fn constant_entry(expr: &Rc<Expr>, r: Index, c: Index) -> Vec<Factor> {
    match &expr.kind {
        _ if expr.shape.is_scalar() => vec![Factor::Scalar(expr.clone())],
        ExprKind::Transpose(inner) => constant_entry(inner, c, r),
        ExprKind::Identity => vec![Factor::Delta(r, c)],
        ExprKind::Ones => vec![],
        _ => vec![Factor::Entry(expr.clone(), r, c)],
    }
}

impl Builder<'_> {
    fn fresh(&mut self, dim: &crate::expr::Dim) -> Index {
        if dim.is_one() {
            Index::One
        } else {
            self.next += 1;
            self.sizes.push(dim.clone());
            Index::Summed(self.next)
        }
    }

    /// The rule [`Builder::entry`] applies to `node`, in words; `None` for −, + and
    /// the others that say nothing.
    fn rule_in_words(&self, node: &Expr) -> Option<String> {
        use ExprKind as K;
        let linear = |e: &Expr| mentions_differential(e, self.wrt);
        let text = |e: &Expr| print::render(e, Style::Unicode);
        let x = crate::session::render_symbol(self.wrt, Style::Unicode);
        Some(match &node.kind {
            K::Differential(_) => format!(
                "(d{x})ᵣ꜀ = δᵣₖδ꜀ₗ d{x}ₖₗ: entry (r, c) of d{x} moves only with {x}ₖₗ, when r = k and c = l"
            ),
            K::Mul(a, b) | K::Hadamard(a, b) if a.shape.is_scalar() || b.shape.is_scalar() => {
                let (scalar, other) = if a.shape.is_scalar() { (a, b) } else { (b, a) };
                if linear(scalar) {
                    format!("(M ds)ᵣ꜀ = Mᵣ꜀ ds with M = {}: a scalar ds scales every entry", text(other))
                } else {
                    format!("(s dY)ᵣ꜀ = s (dY)ᵣ꜀ with s = {}", text(scalar))
                }
            }
            K::Mul(a, b) if linear(b) => format!(
                "(M dY)ᵣ꜀ = Σₛ Mᵣₛ(dY)ₛ꜀ with M = {}, dY = {}: a matrix product sums over its inner index",
                text(a),
                text(b)
            ),
            K::Mul(a, b) => format!(
                "(dY M)ᵣ꜀ = Σₛ (dY)ᵣₛMₛ꜀ with dY = {}, M = {}: a matrix product sums over its inner index",
                text(a),
                text(b)
            ),
            K::Hadamard(a, b) => format!(
                "(M ⊙ dY)ᵣ꜀ = Mᵣ꜀(dY)ᵣ꜀ with M = {}: entry by entry",
                text(if linear(a) { b } else { a })
            ),
            K::Div(_, b) => format!("(dY/s)ᵣ꜀ = (dY)ᵣ꜀/s with s = {}", text(b)),
            K::Transpose(_) => "(dYᵀ)ᵣ꜀ = (dY)꜀ᵣ: a transpose swaps the indices".to_string(),
            K::Trace(a) if !a.shape.is_scalar() => {
                "tr(dY) = Σₛ (dY)ₛₛ: the trace sums the diagonal".to_string()
            }
            K::Sum(a) if !a.shape.is_scalar() => {
                "sum(dY) = Σₛₜ (dY)ₛₜ: the sum of every entry".to_string()
            }
            _ => return None,
        })
    }

    /// ∂(node)ᵣ꜀/∂Xₖₗ as a sum of terms, refused once they hold more than
    /// `max_factors` factors (a node's terms hold its children's, so the first node over
    /// the bound stops the build, before the quadratic rest).
    fn entry(&mut self, node: &Rc<Expr>, r: Index, c: Index) -> Result<Vec<Term>, Error> {
        let terms = self.entry_unbounded(node, r, c)?;
        let factors: usize = terms.iter().map(|term| term.factors.len()).sum();
        if factors > self.max_factors {
            return Err(Error::TooLarge {
                what: format!(
                    "the index form would hold more than {} factors",
                    self.max_factors
                ),
            });
        }
        Ok(terms)
    }

    fn entry_unbounded(&mut self, node: &Rc<Expr>, r: Index, c: Index) -> Result<Vec<Term>, Error> {
        use ExprKind as K;
        if !mentions_differential(node, self.wrt) {
            return Ok(vec![]);
        }
        let rule = self.with_steps.then(|| self.rule_in_words(node)).flatten();
        if let Some(rule) = rule {
            let step = Step {
                node: print::render(node, Style::Unicode),
                rule,
            };
            if !self.steps.contains(&step) {
                self.steps.push(step);
            }
        }
        // A scalar broadcast over a matrix has the same entry everywhere.
        let scalar_index = |shape: &Shape, index: &Index, rows: bool| {
            let one = if rows {
                shape.rows.is_one()
            } else {
                shape.cols.is_one()
            };
            if one {
                Index::One
            } else {
                index.clone()
            }
        };
        Ok(match &node.kind {
            K::Differential(_) => single(vec![
                Factor::Delta(r, self.k.clone()),
                Factor::Delta(c, self.l.clone()),
            ]),
            K::Neg(a) => negate(self.entry(a, r, c)?),
            K::Add(a, b) | K::Sub(a, b) => {
                let left = self.entry(
                    a,
                    scalar_index(&a.shape, &r, true),
                    scalar_index(&a.shape, &c, false),
                )?;
                let right = self.entry(
                    b,
                    scalar_index(&b.shape, &r, true),
                    scalar_index(&b.shape, &c, false),
                )?;
                let right = if matches!(node.kind, K::Sub(..)) {
                    negate(right)
                } else {
                    right
                };
                left.into_iter().chain(right).collect()
            }
            K::Mul(a, b) | K::Hadamard(a, b) if a.shape.is_scalar() || b.shape.is_scalar() => {
                let (scalar, other) = if a.shape.is_scalar() { (a, b) } else { (b, a) };
                if mentions_differential(scalar, self.wrt) {
                    // (s B)ᵣ꜀ = s Bᵣ꜀ with s linear in dX.
                    let terms = self.entry(scalar, Index::One, Index::One)?;
                    times(terms, constant_entry(other, r, c))
                } else {
                    let terms = self.entry(other, r, c)?;
                    times(terms, vec![Factor::Scalar(scalar.clone())])
                }
            }
            K::Mul(a, b) => {
                let s = self.fresh(&a.shape.cols);
                let summed: Vec<usize> = match s {
                    Index::Summed(n) => vec![n],
                    _ => vec![],
                };
                let terms = if mentions_differential(a, self.wrt) {
                    let terms = self.entry(a, r, s.clone())?;
                    times(terms, constant_entry(b, s, c))
                } else {
                    let terms = self.entry(b, s.clone(), c)?;
                    before(constant_entry(a, r, s), terms)
                };
                summed_over(terms, &summed)
            }
            K::Hadamard(a, b) => {
                let (constant, linear) = if mentions_differential(a, self.wrt) {
                    (b, a)
                } else {
                    (a, b)
                };
                let terms = self.entry(linear, r.clone(), c.clone())?;
                before(constant_entry(constant, r, c), terms)
            }
            K::Div(a, b) if b.shape.is_scalar() && !mentions_differential(b, self.wrt) => {
                let terms = self.entry(a, r, c)?;
                let reciprocal = crate::expr::build::div(crate::expr::build::int(1), b.clone());
                times(terms, vec![Factor::Scalar(reciprocal)])
            }
            K::Transpose(a) => self.entry(a, c, r)?,
            K::Trace(a) if a.shape.is_scalar() => self.entry(a, r, c)?,
            K::Trace(a) => {
                let s = self.fresh(&a.shape.rows);
                let Index::Summed(n) = s else {
                    return Err(unsupported(node));
                };
                summed_over(self.entry(a, s.clone(), s)?, &[n])
            }
            K::Sum(a) => {
                let s = self.fresh(&a.shape.rows);
                let t = self.fresh(&a.shape.cols);
                let summed: Vec<usize> = [&s, &t]
                    .iter()
                    .filter_map(|index| match index {
                        Index::Summed(n) => Some(*n),
                        _ => None,
                    })
                    .collect();
                summed_over(self.entry(a, s, t)?, &summed)
            }
            _ => return Err(unsupported(node)),
        })
    }
}

fn negate(terms: Vec<Term>) -> Vec<Term> {
    terms
        .into_iter()
        .map(|mut term| {
            term.coefficient = -term.coefficient;
            term
        })
        .collect()
}

fn times(terms: Vec<Term>, factors: Vec<Factor>) -> Vec<Term> {
    terms
        .into_iter()
        .map(|mut term| {
            term.factors.extend(factors.iter().cloned());
            term
        })
        .collect()
}

fn before(factors: Vec<Factor>, terms: Vec<Term>) -> Vec<Term> {
    terms
        .into_iter()
        .map(|mut term| {
            let mut all = factors.clone();
            all.extend(term.factors);
            term.factors = all;
            term
        })
        .collect()
}

fn summed_over(terms: Vec<Term>, sums: &[usize]) -> Vec<Term> {
    terms
        .into_iter()
        .map(|mut term| {
            term.sums.extend_from_slice(sums);
            term
        })
        .collect()
}

/// Sums out every delta on a summation index and drops trivial ones; `None` for a term
/// that is zero.
fn contract(mut term: Term) -> Option<Term> {
    if term.coefficient.is_zero() {
        return None;
    }
    loop {
        let position = term.factors.iter().position(|factor| match factor {
            Factor::Delta(a, b) => {
                a == b || matches!(a, Index::Summed(_)) || matches!(b, Index::Summed(_))
            }
            _ => false,
        });
        let Some(position) = position else {
            break;
        };
        let Factor::Delta(a, b) = term.factors.remove(position) else {
            break;
        };
        if a == b {
            if let Index::Summed(n) = a {
                // Σₛ δₛₛ is a size: keep the delta, it says so.
                term.factors.insert(position, Factor::Delta(a.clone(), b));
                let _ = n;
                break;
            }
            continue;
        }
        let (gone, stays) = match (&a, &b) {
            (Index::Summed(n), _) => (*n, b.clone()),
            (_, Index::Summed(n)) => (*n, a.clone()),
            _ => break,
        };
        term.sums.retain(|sum| *sum != gone);
        for factor in &mut term.factors {
            let rename = |index: &mut Index| {
                if *index == Index::Summed(gone) {
                    *index = stays.clone();
                }
            };
            match factor {
                Factor::Entry(_, r, c) | Factor::Delta(r, c) => {
                    rename(r);
                    rename(c);
                }
                Factor::Scalar(_) => {}
            }
        }
    }
    Some(term)
}

/// Like terms added up (`Xᵢⱼδᵢₖδⱼₗ + Xᵢⱼδᵢₖδⱼₗ = 2Xᵢⱼδᵢₖδⱼₗ`), scalars first in each.
fn collect(terms: Vec<Term>) -> Vec<Term> {
    let mut out: Vec<Term> = Vec::new();
    let mut position_of: std::collections::HashMap<String, usize> = Default::default();
    for mut term in terms {
        term.factors
            .sort_by_key(|factor| !matches!(factor, Factor::Scalar(_)));
        let unit = Term {
            coefficient: Rational::one(),
            ..term.clone()
        };
        let key = term_text(&unit, Style::Unicode, &[]);
        match position_of.get(&key) {
            Some(&at) => out[at].coefficient += term.coefficient,
            None => {
                position_of.insert(key, out.len());
                out.push(term);
            }
        }
    }
    out.into_iter()
        .filter(|term| !term.coefficient.is_zero())
        .collect()
}

impl IndexForm {
    /// The entries the index form states, evaluated on `instance` and laid out like the
    /// vec form's Jacobian (row i + jp for Fᵢⱼ, column k + lm for Xₖₗ), so that it can be
    /// compared with that checked matrix: what is printed is what is checked.
    pub fn evaluate(
        &self,
        instance: &crate::numeric::Instance,
    ) -> Result<nalgebra::DMatrix<f64>, crate::numeric::EvalError> {
        let (f, x) = &self.shapes;
        let (p, q) = (instance.dim(&f.rows)?, instance.dim(&f.cols)?);
        let (m, n) = (instance.dim(&x.rows)?, instance.dim(&x.cols)?);
        let sizes = self
            .sums
            .iter()
            .map(|dim| instance.dim(dim))
            .collect::<Result<Vec<_>, _>>()?;
        let mut values: Vec<(Vec<nalgebra::DMatrix<f64>>, &Term)> = Vec::new();
        for term in &self.terms {
            let mut matrices = Vec::new();
            for factor in &term.factors {
                if let Factor::Entry(matrix, ..) | Factor::Scalar(matrix) = factor {
                    matrices.push(crate::numeric::evaluate(matrix, instance)?);
                }
            }
            values.push((matrices, term));
        }
        let mut res = nalgebra::DMatrix::zeros(p * q, m * n);
        for (row, col) in (0..p * q).flat_map(|row| (0..m * n).map(move |col| (row, col))) {
            let free = [
                (&self.row, row % p),
                (&self.col, row / p),
                (&self.k, col % m),
                (&self.l, col / m),
            ];
            let mut total = 0.0;
            for (matrices, term) in &values {
                total += term_value(term, matrices, &free, &sizes);
            }
            res[(row, col)] = total;
        }
        Ok(res)
    }
}

/// One term's value at the free indices' values, summed over its summation indices.
fn term_value(
    term: &Term,
    matrices: &[nalgebra::DMatrix<f64>],
    free: &[(&Index, usize)],
    sizes: &[usize],
) -> f64 {
    let coefficient = num_traits::ToPrimitive::to_f64(&term.coefficient).unwrap_or(f64::NAN);
    let ranges: Vec<usize> = term
        .sums
        .iter()
        .map(|n| sizes.get(n.saturating_sub(1)).copied().unwrap_or(0))
        .collect();
    let count: usize = ranges.iter().product();
    let mut total = 0.0;
    for mut flat in 0..count {
        let mut summed = Vec::with_capacity(ranges.len());
        for range in &ranges {
            summed.push(flat % range);
            flat /= range;
        }
        let value_of = |index: &Index| -> usize {
            match index {
                Index::One => 0,
                Index::Summed(n) => term
                    .sums
                    .iter()
                    .position(|s| s == n)
                    .map_or(0, |at| summed[at]),
                Index::Free(_) => free
                    .iter()
                    .find(|(name, _)| *name == index)
                    .map_or(0, |(_, value)| *value),
            }
        };
        let mut product = coefficient;
        let mut next_matrix = matrices.iter();
        for factor in &term.factors {
            product *= match factor {
                Factor::Delta(a, b) => f64::from(u8::from(value_of(a) == value_of(b))),
                Factor::Entry(_, r, c) => next_matrix
                    .next()
                    .and_then(|matrix| matrix.get((value_of(r), value_of(c))).copied())
                    .unwrap_or(f64::NAN),
                Factor::Scalar(_) => next_matrix
                    .next()
                    .and_then(|matrix| matrix.get((0, 0)).copied())
                    .unwrap_or(f64::NAN),
            };
        }
        total += product;
    }
    total
}

// ---------------------------------------------------------------------------------------
// Printing.

impl IndexForm {
    /// The equation in Unicode (`∂(X⁻¹)ᵢⱼ/∂Xₖₗ = −(X⁻¹)ᵢₖ(X⁻¹)ₗⱼ`) or LaTeX; ASCII
    /// writes indices as `_{ij}`.
    pub fn render(&self, style: Style) -> String {
        format!("{} = {}", self.lhs(style), self.rhs(style))
    }

    /// The left-hand side: `∂(X⁻¹)ᵢⱼ/∂Xₖₗ`, `∂f/∂Xₖₗ`, `∂²f/∂Xᵢⱼ∂Xₖₗ`.
    pub fn lhs(&self, style: Style) -> String {
        let x = entry_text(&self.wrt_text(style), &[&self.k, &self.l], style, true);
        let (partial, over) = match style {
            Style::Latex => ("\\partial ", "}{\\partial "),
            _ => ("∂", "/∂"),
        };
        let top = match &self.of {
            None => {
                let g = entry_text("", &[&self.row, &self.col], style, true);
                let second = match style {
                    Style::Latex => format!(
                        "\\partial^2 f}}{{\\partial {}{g} \\, \\partial ",
                        self.wrt_text(style)
                    ),
                    _ => format!("∂²f/∂{}{g}∂", self.wrt_text(style)),
                };
                return match style {
                    Style::Latex => format!("\\frac{{{second}{x}}}"),
                    _ => format!("{second}{x}"),
                };
            }
            Some(of) if self.row == Index::One && self.col == Index::One => {
                let written = if of.chars().count() <= 12 {
                    of.clone()
                } else {
                    "f".into()
                };
                let written = match style {
                    Style::Unicode => written,
                    _ => "f".to_string(),
                };
                format!("{partial}{written}")
            }
            Some(of) => {
                let simple = of.chars().count() <= 12 && style == Style::Unicode;
                let base = if simple { of.clone() } else { "F".to_string() };
                format!(
                    "{partial}{}",
                    entry_text(
                        &base,
                        &[&self.row, &self.col],
                        style,
                        !simple || is_name(&base)
                    )
                )
            }
        };
        match style {
            Style::Latex => format!("\\frac{{{top}{over}{x}}}"),
            _ => format!("{top}{over}{x}"),
        }
    }

    /// The names of the free indices, which summation indices must not take.
    fn free_names(&self) -> Vec<String> {
        [&self.row, &self.col, &self.k, &self.l]
            .into_iter()
            .filter_map(|index| match index {
                Index::Free(name) => Some(name.clone()),
                _ => None,
            })
            .collect()
    }

    fn wrt_text(&self, style: Style) -> String {
        crate::session::render_symbol(&self.wrt, style)
    }

    /// The right-hand side: the terms, or `0`.
    pub fn rhs(&self, style: Style) -> String {
        if self.terms.is_empty() {
            return "0".to_string();
        }
        let mut out = String::new();
        for (position, term) in self.terms.iter().enumerate() {
            let negative = term.coefficient.is_negative();
            let sign = match (position, negative, style) {
                (0, true, Style::Unicode) => "−",
                (0, true, _) => "-",
                (0, false, _) => "",
                (_, true, Style::Unicode) => " − ",
                (_, true, _) => " - ",
                (_, false, _) => " + ",
            };
            out += sign;
            out += &term_text(term, style, &self.free_names());
        }
        out
    }
}

fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(char::is_alphabetic)
        && chars.all(|c| ('₀'..='₉').contains(&c) || c == '′')
}

fn index_name(index: &Index) -> Option<String> {
    match index {
        Index::Free(name) => Some(name.clone()),
        Index::Summed(n) => Some(
            ["s", "t", "u", "v", "p", "q"]
                .get(n.saturating_sub(1))
                .map_or_else(|| format!("s{n}"), |name| name.to_string()),
        ),
        Index::One => None,
    }
}

/// `base` with the indices as subscripts: `Xₖₗ`, `(X⁻¹)ᵢₖ`, `X_{kl}`.
fn entry_text(base: &str, indices: &[&Index], style: Style, bare: bool) -> String {
    let names: String = indices
        .iter()
        .filter_map(|index| index_name(index))
        .collect();
    let base = if bare || base.is_empty() {
        base.to_string()
    } else {
        format!("({base})")
    };
    if names.is_empty() {
        return base;
    }
    match style {
        Style::Unicode => match crate::print::unicode_subscript(&names) {
            Some(sub) => format!("{base}{sub}"),
            None => format!("{base}_{{{names}}}"),
        },
        _ => format!("{base}_{{{names}}}"),
    }
}

/// The term with its summation indices named s, t, u, … in order of appearance (as
/// free indices: only the printer uses it).
fn named_locally(term: &Term, taken: &[String]) -> Term {
    let names = summation_names(taken);
    let mut order: Vec<usize> = Vec::new();
    for factor in &term.factors {
        if let Factor::Entry(_, r, c) | Factor::Delta(r, c) = factor {
            for index in [r, c] {
                if let Index::Summed(n) = index {
                    if !order.contains(n) {
                        order.push(*n);
                    }
                }
            }
        }
    }
    let name = |n: usize| -> Index {
        let position = order
            .iter()
            .position(|seen| *seen == n)
            .unwrap_or(order.len());
        Index::Free(
            names
                .get(position)
                .map_or_else(|| format!("s{position}"), |name| name.to_string()),
        )
    };
    let rename = |index: &Index| match index {
        Index::Summed(n) => name(*n),
        other => other.clone(),
    };
    Term {
        coefficient: term.coefficient.clone(),
        sums: term.sums.clone(),
        factors: term
            .factors
            .iter()
            .map(|factor| match factor {
                Factor::Entry(matrix, r, c) => Factor::Entry(matrix.clone(), rename(r), rename(c)),
                Factor::Delta(r, c) => Factor::Delta(rename(r), rename(c)),
                Factor::Scalar(scalar) => Factor::Scalar(scalar.clone()),
            })
            .collect(),
    }
}

/// The names of summation indices, in order, none of them one of the free indices'.
fn summation_names(taken: &[String]) -> Vec<&'static str> {
    ["s", "t", "u", "v", "w", "p", "q", "r", "a", "b", "c", "d"]
        .into_iter()
        .filter(|name| !taken.iter().any(|free| free == name))
        .collect()
}

fn term_text(term: &Term, style: Style, taken: &[String]) -> String {
    let named = named_locally(term, taken);
    let sum_names: String = {
        let names = summation_names(taken);
        (0..term.sums.len())
            .map(|position| {
                names
                    .get(position)
                    .map_or_else(|| format!("s{position}"), |n| n.to_string())
            })
            .collect()
    };
    let term = &named;
    let mut out = String::new();
    let magnitude = term.coefficient.abs();
    if !magnitude.is_one() {
        out += &print::render(&Expr::num(magnitude), style);
        out += if style == Style::Unicode { "" } else { " " };
    }
    if !term.sums.is_empty() {
        let names = sum_names;
        out += &match style {
            Style::Unicode => format!(
                "Σ{}",
                crate::print::unicode_subscript(&names).unwrap_or(names)
            ),
            Style::Latex => format!("\\sum_{{{names}}} "),
            Style::Ascii => format!("sum_{{{names}}} "),
        };
    }
    let mut factors: Vec<String> = Vec::new();
    for factor in &term.factors {
        factors.push(match factor {
            Factor::Entry(matrix, r, c) => {
                let text = print::render(matrix, style);
                let bare = matches!(matrix.kind, ExprKind::Var(_));
                entry_text(&text, &[r, c], style, bare)
            }
            Factor::Delta(r, c) => {
                let delta = if style == Style::Unicode {
                    "δ"
                } else {
                    "\\delta"
                };
                entry_text(delta, &[r, c], style, true)
            }
            Factor::Scalar(scalar) => {
                let text = print::render(scalar, style);
                if matches!(
                    scalar.kind,
                    ExprKind::Add(..) | ExprKind::Sub(..) | ExprKind::Neg(_)
                ) {
                    format!("({text})")
                } else {
                    text
                }
            }
        });
    }
    if factors.is_empty() {
        factors.push("1".to_string());
    }
    let separator = match style {
        Style::Unicode => "",
        Style::Latex => " ",
        Style::Ascii => "*",
    };
    out + &factors.join(separator)
}
