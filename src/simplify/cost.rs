//! The two ways of choosing one expression from an e-class: [`DisplayCost`], for
//! people, and [`FlopCost`], for computers.

use std::collections::BTreeMap;

use egg::{CostFunction, Id, Language};
use num_traits::{Signed, Zero};

use super::analysis::EGraph;
use super::lang::Mat;
use crate::expr::{Dim, Shape};

/// Counts symbols and operators, in tenths so that ties break the way a textbook
/// writes: a transpose costs a little more than other operators (fewest transposes), a
/// sum a little more than a product (so `2A` beats `A + A` and factored forms win),
/// an integer a little less than a variable (so `z ⊙ (1 − z)` beats `z − z ⊙ z`),
/// `−A` less than `(−1)A`, `I` a little more than a variable, a scalar factor on the
/// right (`Ak`) more than on the left (`kA`), a transpose inside a function (`σ(zᵀ)`)
/// more than outside (`σ(z)ᵀ`), a minus or a scalar factor inside a transpose, an inverse
/// or a trace more than outside (`−(AB)ᵀ`, `2 tr(A)`), every avoidable pair of parentheses
/// a little, and sizes nothing (`I` prints without its size).
pub struct DisplayCost<'a> {
    egraph: &'a EGraph,
}

impl<'a> DisplayCost<'a> {
    /// The display cost over `egraph`.
    pub fn new(egraph: &'a EGraph) -> DisplayCost<'a> {
        DisplayCost { egraph }
    }
}

/// Cost of anything that must never be chosen; sums saturate below overflow.
const NEVER: usize = usize::MAX / 4;

/// A display cost: the weighted size first, then what the chosen top node is, which
/// only the parent's cost looks at (to avoid forms that print with extra parentheses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DisplayValue {
    /// Weighted symbols and operators.
    pub total: usize,
    /// The kind of the chosen top node.
    pub top: TopKind,
}

/// The kind of a chosen top node, as far as its parent's printing cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TopKind {
    /// Anything else.
    Other,
    /// A matrix product or sum, which needs parentheses as a right operand.
    Compound,
    /// A scaling `kA`, whose scalar reads badly in the middle of a product.
    Scaled,
    /// A Hadamard product, which needs parentheses as the right operand of another
    /// (`⊙` groups to the left) and as an operand of a matrix product.
    Hadamard,
    /// A transpose, which reads better outside a function application (`σ(z)ᵀ`) than
    /// inside it (`σ(zᵀ)`).
    Transposed,
    /// A sum or difference, which (like a product) needs parentheses as a right operand.
    Sum,
    /// A function application (`σ(z)`), which reads best first in a Hadamard chain
    /// (`σ(z) ⊙ (1 − σ(z)) ⊙ g`): the derivative's factor before the gradient it scales.
    Applied,
    /// A negation, which needs parentheses under a postfix (`(−Xᵀ)⁻¹`, where `−X⁻ᵀ` needs
    /// none), as a factor (`(−a)b`, `a(−b)`), in a Hadamard product and on the right of
    /// a sum (`a + (−b)`).
    Negated,
    /// A logarithm, an application like [`TopKind::Applied`] that reads after the other
    /// factor of a product of scalars (`b log(a)`, `aᵇ log(a)`): so the exponent of a
    /// real power `exp(b·log(a))` comes first, and the power prints as `a^b`.
    Logarithm,
}

impl TopKind {
    /// Whether the node is a matrix product, sum or difference.
    fn is_compound(self) -> bool {
        matches!(self, TopKind::Compound | TopKind::Sum)
    }

    /// Whether the node prints without parentheses under a postfix `ᵀ` or `⁻¹`.
    fn is_atomic(self) -> bool {
        matches!(self, TopKind::Other | TopKind::Applied | TopKind::Logarithm)
    }

    /// Whether the node is a function application.
    fn is_applied(self) -> bool {
        matches!(self, TopKind::Applied | TopKind::Logarithm)
    }
}

impl CostFunction<Mat> for DisplayCost<'_> {
    type Cost = DisplayValue;

    fn cost<C>(&mut self, enode: &Mat, mut costs: C) -> DisplayValue
    where
        C: FnMut(Id) -> DisplayValue,
    {
        let scalar = |id: &Id| self.egraph[*id].data.scalar;
        let mut top = TopKind::Other;
        let own = match enode {
            Mat::Symbol(_) => 10,
            // A size reads as its name, a product of sizes as their names side by side
            // (`mn`), priced about as one name: shorter than any constant of ones it
            // stands for (`‖𝟙ₘₙ‖²`), which also leaves the reader to guess its size.
            Mat::Size(n) => {
                let factors = self.egraph[*n]
                    .data
                    .dim
                    .as_ref()
                    .map_or(1, |d| d.factors().len());
                9 + factors
            }
            // A negative number prints as its minus and its magnitude, in parentheses as a
            // factor (`(−½)xᵀx`): no cheaper than the negation `−½xᵀx`.
            Mat::Num(q) if q.0.is_negative() => {
                top = TopKind::Negated;
                8 + if q.0.is_integer() { 9 } else { 12 }
            }
            // An integer costs a little less than a variable, so that the factored
            // `z ⊙ (1 − z)` beats the distributed `z − z ⊙ z` of the same length.
            Mat::Num(q) if q.0.is_integer() || q.0.is_zero() => 9,
            Mat::Num(_) => 12,
            Mat::Dim(_) => 0,
            Mat::Add([_, b]) | Mat::Sub([_, b]) => {
                top = TopKind::Sum;
                // `a + (b + c)` and `a + (−b)` print with parentheses that `(a + b) + c`
                // and `a − b` do not need.
                let right = costs(*b).top;
                11 + usize::from(right.is_compound() || right == TopKind::Negated)
            }
            Mat::Had([a, b]) => {
                top = TopKind::Hadamard;
                let (left, right) = (costs(*a).top, costs(*b).top);
                // `a ⊙ (b ⊙ c)` prints with parentheses that `a ⊙ b ⊙ c` does not need,
                // and a parenthesised sum reads best right after the factor it
                // multiplies (`σ ⊙ (1 − σ) ⊙ g`): not first (`(1 − σ) ⊙ σ ⊙ g`), not after
                // a product (`g ⊙ (1 − σ) ⊙ σ`), not at the end (`σ ⊙ g ⊙ (1 − σ)`).
                11 + usize::from(right == TopKind::Hadamard)
                    + usize::from(left == TopKind::Sum)
                    + usize::from(
                        right == TopKind::Sum
                            && matches!(left, TopKind::Hadamard | TopKind::Compound),
                    )
                    + usize::from(right.is_applied() && !left.is_applied())
                    + usize::from(left == TopKind::Negated)
                    + usize::from(right == TopKind::Negated)
            }
            Mat::Mul([a, b]) if scalar(a) && !scalar(b) => {
                top = TopKind::Scaled;
                // `k(lA)` and `k(AB)` print with parentheses that `klA` and `kAB` (the
                // scaling grouped with the first factor) do not need.
                10 + usize::from(matches!(
                    costs(*b).top,
                    TopKind::Scaled | TopKind::Compound | TopKind::Negated
                )) + usize::from(costs(*a).top == TopKind::Negated)
            }
            Mat::Mul([a, b]) if scalar(b) && !scalar(a) => 12 + negated_factors(&mut costs, a, b),
            Mat::Mul([a, b]) => {
                // A product that starts with a scalar (`2AᵀB`) reads badly in the middle
                // of another product (`C(2AᵀB)`), like a scaling does.
                top = if costs(*a).top == TopKind::Scaled {
                    TopKind::Scaled
                } else {
                    TopKind::Compound
                };
                let right = costs(*b).top;
                let own = match right {
                    // A sum needs parentheses on either side of a product; a product or
                    // a Hadamard product only on the right.
                    TopKind::Other
                    | TopKind::Applied
                    | TopKind::Logarithm
                    | TopKind::Transposed
                    | TopKind::Sum => 10,
                    TopKind::Compound | TopKind::Hadamard => 11,
                    TopKind::Scaled => 12,
                    TopKind::Negated => 10,
                };
                // A number reads first in a product of scalars: `−½xᵀx`, not `xᵀx(−½)`.
                let constant = |id: &Id| self.egraph[*id].data.constant.is_some();
                let trailing_number = 2 * usize::from(constant(b) && !constant(a));
                let leading_log =
                    usize::from(costs(*a).top == TopKind::Logarithm && right != TopKind::Logarithm);
                own + negated_factors(&mut costs, a, b) + trailing_number + leading_log
            }
            // `(−a)/b`, `a/(−b)`.
            Mat::Div([a, b]) | Mat::ElemDiv([a, b]) => 12 + negated_factors(&mut costs, a, b),
            // tensor: a Kronecker product with a scalar (`2 ⊗ B`, `I ⊗ tr(B)`) is the
            // scaling `2B`, `tr(B)I`, which reads better.
            Mat::Kron([a, b]) if scalar(a) || scalar(b) => 14,
            // `A ⊗ (−B)`: a negated factor prints in parentheses.
            Mat::Kron([a, b]) => 10 + negated_factors(&mut costs, a, b),
            Mat::Neg(_) => {
                top = TopKind::Negated;
                8
            }
            // `(AB)ᵀ` and `(A + B)⁻¹` print with parentheses that `Aᵀ` does not need.
            // A minus reads outside a postfix: `−(AB)ᵀ`, not `(−AB)ᵀ`.
            Mat::Transpose(a) => {
                top = TopKind::Transposed;
                let inner = costs(*a).top;
                12 + usize::from(!inner.is_atomic()) + usize::from(inner == TopKind::Negated)
            }
            Mat::Inverse(a) => {
                let inner = costs(*a).top;
                10 + usize::from(!inner.is_atomic()) + usize::from(inner == TopKind::Negated)
            }
            // A scalar factor reads outside a trace: `4 tr(XᵀX)`, not `tr(4XᵀX)`.
            Mat::Trace(a) => 10 + usize::from(costs(*a).top == TopKind::Scaled),
            // A factored-out identity (`(WᵀW − I)x`) reads worse than the sum it replaces.
            Mat::Identity(_) => 12,
            // The commutation matrix reads worse than I where both are right (K₍₁,ₙ₎ = I).
            Mat::Commutation(_) => 13,
            Mat::Pow(_) => 8,
            other => match other.func() {
                Some((function, a)) => {
                    top = match function {
                        crate::expr::Func::Log => TopKind::Logarithm,
                        _ => TopKind::Applied,
                    };
                    // The log of a softmax underflows where its textbook form, the
                    // log-softmax `z − logsumexp(z)`, does not: the log costs more than
                    // that form's extra node and second `z` (`Wx − logsumexp(Wx)`).
                    let softmax = |class: Id| {
                        self.egraph[class]
                            .nodes
                            .iter()
                            .any(|node| matches!(node, Mat::Softmax(_)))
                    };
                    let log_softmax = matches!(function, crate::expr::Func::Log)
                        && (softmax(a)
                            || self.egraph[a]
                                .nodes
                                .iter()
                                .any(|node| matches!(node, Mat::Transpose(b) if softmax(*b))));
                    let log_softmax_penalty = if log_softmax {
                        costs(a).total.saturating_add(20)
                    } else {
                        0
                    };
                    (10 + usize::from(costs(a).top == TopKind::Transposed))
                        .saturating_add(log_softmax_penalty)
                }
                None => 10,
            },
        };
        // An operator on constants (`−2` as `(neg 2)`) ties with the number its class
        // folds to, which must win: a power's exponent is read as a number only
        // (`det(X)⁻²`, never `det(X)^(neg 2)`, which no expression holds).
        let constant = |id: &Id| self.egraph[*id].data.constant.is_some();
        let folded = !enode.is_leaf() && enode.children().iter().all(constant);
        let total = enode
            .children()
            .iter()
            .fold(own + usize::from(folded), |sum, id| {
                sum.saturating_add(costs(*id).total)
            })
            .min(NEVER);
        DisplayValue { total, top }
    }
}

/// The parentheses a negated operand of a product or quotient prints with: `(−a)b`, `a(−b)`.
fn negated_factors<C: FnMut(Id) -> DisplayValue>(costs: &mut C, a: &Id, b: &Id) -> usize {
    usize::from(costs(*a).top == TopKind::Negated) + usize::from(costs(*b).top == TopKind::Negated)
}

/// Floating-point operations to evaluate the expression for concrete sizes, plus one
/// per node so that equal-flop forms prefer the shorter one.
///
/// Sizes come from `sizes` (size symbol → value); a size symbol without a value counts
/// as [`FlopCost::DEFAULT_SIZE`]. A product `m×k · k×n` costs `mkn` (`mn` when one side
/// is `diag(v)`, which scales rows or columns), scaling and
/// elementwise operations one per entry, an inverse or determinant `n³`, and names
/// (variables, `let` and `where` names) nothing, since each is computed once.
pub struct FlopCost<'a> {
    egraph: &'a EGraph,
    sizes: &'a BTreeMap<String, u64>,
}

impl<'a> FlopCost<'a> {
    /// The size every size symbol without a value counts as.
    pub const DEFAULT_SIZE: f64 = 1000.0;

    /// The flop cost over `egraph` with the given sizes.
    pub fn new(egraph: &'a EGraph, sizes: &'a BTreeMap<String, u64>) -> FlopCost<'a> {
        FlopCost { egraph, sizes }
    }

    /// The value of a dimension under `sizes`; a symbol without one is
    /// [`FlopCost::DEFAULT_SIZE`]. Shared with the compute form's chain bracketing, so that
    /// both price a size alike.
    pub(crate) fn size_of(dim: &Dim, sizes: &BTreeMap<String, u64>) -> f64 {
        match dim {
            Dim::Known(n) => *n as f64,
            Dim::Sym(name) => sizes
                .get(name.as_str())
                .map_or(Self::DEFAULT_SIZE, |n| *n as f64),
            Dim::Unknown => Self::DEFAULT_SIZE,
            Dim::Product(factors) => factors.iter().map(|f| Self::size_of(f, sizes)).product(),
        }
    }

    fn dim(&self, dim: &Dim) -> f64 {
        Self::size_of(dim, self.sizes)
    }

    fn entries(&self, shape: &Shape) -> f64 {
        self.dim(&shape.rows) * self.dim(&shape.cols)
    }

    /// Whether the class is `diag(v)` of a vector: a product with it scales rows or
    /// columns (and is printed so), one flop per entry.
    fn is_diagonal(&self, class: &Id) -> bool {
        let egraph = self.egraph;
        egraph[*class].nodes.iter().any(|node| match node {
            Mat::Diag(v) => {
                let shape = &egraph[*v].data.shape;
                shape.cols.is_one() && !shape.rows.is_one()
            }
            _ => false,
        })
    }

    fn flops(&self, enode: &Mat) -> f64 {
        let shape = |id: &Id| &self.egraph[*id].data.shape;
        let side = |id: &Id| self.dim(&shape(id).rows);
        let broadcast = |a: &Id, b: &Id| self.entries(shape(a)).max(self.entries(shape(b)));
        match enode {
            Mat::Symbol(_) | Mat::Num(_) | Mat::Dim(_) | Mat::Identity(_) | Mat::Ones(_) => 0.0,
            Mat::Size(_) => 0.0,
            Mat::Transpose(_) | Mat::Differential(_) => 0.0,
            Mat::Mul([a, b]) => {
                let (sa, sb) = (shape(a), shape(b));
                if sa.is_scalar() || self.is_diagonal(a) {
                    self.entries(sb)
                } else if sb.is_scalar() || self.is_diagonal(b) {
                    self.entries(sa)
                } else {
                    self.dim(&sa.rows) * self.dim(&sa.cols) * self.dim(&sb.cols)
                }
            }
            Mat::Add([a, b]) | Mat::Sub([a, b]) | Mat::Had([a, b]) | Mat::Div([a, b]) => {
                broadcast(a, b)
            }
            Mat::Neg(a) | Mat::Sum(a) => self.entries(shape(a)),
            Mat::NormSq(a) => 2.0 * self.entries(shape(a)),
            Mat::Norm2(a) | Mat::Norm1(a) => 2.0 * self.entries(shape(a)) + 4.0,
            Mat::ElemDiv([a, b]) => broadcast(a, b),
            Mat::ElemPow([a, _]) => 4.0 * self.entries(shape(a)),
            Mat::PowSym([a, _, _]) => side(a).powi(3) * 6.0,
            Mat::Softmax(a) | Mat::LogSumExp(a) => 6.0 * self.entries(shape(a)),
            Mat::Inverse(a) | Mat::Det(a) | Mat::LogDet(a) => side(a).powi(3),
            Mat::Pow([a, k]) => {
                let exponent = self.egraph[*k]
                    .data
                    .constant
                    .as_ref()
                    .and_then(|q| super::lang::Num(q.clone()).as_i64())
                    .unwrap_or(2)
                    .unsigned_abs()
                    .max(2);
                side(a).powi(3) * (64 - exponent.leading_zeros()) as f64
            }
            Mat::Trace(a) | Mat::Diag(a) => side(a),
            Mat::Kron([a, b]) => self.entries(shape(a)) * self.entries(shape(b)),
            Mat::Apply([_, a]) | Mat::Grad([_, a]) => 10.0 * self.entries(shape(a)),
            other => match other.func() {
                Some((_, a)) => 4.0 * self.entries(shape(&a)),
                None => 0.0,
            },
        }
    }
}

impl CostFunction<Mat> for FlopCost<'_> {
    type Cost = f64;

    fn cost<C>(&mut self, enode: &Mat, mut costs: C) -> f64
    where
        C: FnMut(Id) -> f64,
    {
        let own = self.flops(enode) + 1.0;
        let total = enode
            .children()
            .iter()
            .fold(own, |sum, id| sum + costs(*id));
        // Keep costs comparable: infinity stays infinity, never NaN.
        if total.is_nan() {
            f64::INFINITY
        } else {
            total
        }
    }
}
