//! Per-e-class facts: the shape, an exact constant value, and whether the value is a
//! scalar, symmetric, or symmetric positive definite.
//!
//! Shapes are computed from the children exactly as [`crate::expr::build`] computes them,
//! so every node of an e-class must agree: the analysis's `merge` asserts it, because a
//! shape conflict inside the e-graph is a bug in a rewrite rule (every rule is also
//! shape-guarded, see [`super::rules`], so the assertion is a last line of defence).
//! Constants are folded exactly (big rationals) and added to their class as a `Num`
//! leaf, so rules such as `(mul 0 ?a)` see folded values.

use std::collections::BTreeMap;

use egg::{DidMerge, Id};
use num_traits::{One, Signed, Zero};

use super::lang::{DimLeaf, Mat, Num};
use crate::expr::{Dim, Props, Rational, Shape, VarDecl};

/// The e-graph of matrix expressions.
pub type EGraph = egg::EGraph<Mat, MatAnalysis>;

/// What is known about every variable (and every `let` or `where` name) of the input.
#[derive(Clone, Debug, Default)]
pub struct MatAnalysis {
    /// Shapes and properties of the names, keyed by name.
    pub vars: BTreeMap<String, VarDecl>,
    /// The rule matches already applied or rejected for their shape in this e-graph.
    /// Equality saturation finds the same matches again in every iteration; applying
    /// one again adds nothing (e-graphs only grow) and most of the time went there.
    /// Hashed with Fx, not SipHash: the keys are small integers, looked up at every
    /// match.
    pub(super) settled: rustc_hash::FxHashSet<MatchKey>,
}

/// One rule match: the rule, the matched class and the classes of its pattern
/// variables (in the pattern's order, unused slots `None`).
pub(super) type MatchKey = (egg::Symbol, Id, [Option<Id>; 4]);

impl MatAnalysis {
    /// An analysis knowing the given variables.
    pub fn new(vars: BTreeMap<String, VarDecl>) -> MatAnalysis {
        MatAnalysis {
            vars,
            settled: rustc_hash::FxHashSet::default(),
        }
    }

    /// The same knowledge of names for a fresh e-graph, where no match is settled yet.
    pub fn fresh(&self) -> MatAnalysis {
        MatAnalysis::new(self.vars.clone())
    }
}

/// The facts of one e-class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Data {
    /// The shape every node of the class has.
    pub shape: Shape,
    /// The exact value, when the class is a constant scalar.
    pub constant: Option<Rational>,
    /// Whether the value equals its transpose (every scalar does).
    pub symmetric: bool,
    /// Whether the value is symmetric positive definite.
    pub spd: bool,
    /// Whether the shape is `1×1`.
    pub scalar: bool,
    /// The size this class denotes, for the size leaves under `I` and `ones`.
    pub dim: Option<Dim>,
    /// Whether every entry is 1 (`𝟙`, `𝟙ᵀ`, `𝟙𝟙ᵀ`, the number 1).
    pub ones: bool,
    /// Whether the value is zero (`0`, `0·A`; a product, Kronecker or Hadamard product
    /// with a zero factor; a sum or difference of zeros; the negation, transpose, vec,
    /// diag, trace or sum of a zero): such a class holds the zero of its shape at once,
    /// where the rules
    /// that absorb a zero one node at a time could stop at a limit first and leave
    /// `(vec(X)ᵀ ⊗ I) vec(0·𝟙𝟙ᵀI)`, whose sizes no reader can tell.
    pub zero: bool,
}

impl Data {
    fn of_shape(shape: Shape) -> Data {
        let scalar = shape.is_scalar();
        Data {
            shape,
            constant: None,
            symmetric: scalar,
            spd: false,
            scalar,
            dim: None,
            ones: false,
            zero: false,
        }
    }
}

/// Largest exponent folded exactly; beyond it the power stays symbolic, so a hostile
/// input cannot make the constants grow without bound.
const MAX_FOLDED_EXPONENT: i64 = 64;

/// Largest constant (in bits of numerator or denominator) folding produces.
const MAX_FOLDED_BITS: u64 = 512;

fn small(q: Rational) -> Option<Rational> {
    if q.numer().bits() > MAX_FOLDED_BITS || q.denom().bits() > MAX_FOLDED_BITS {
        None
    } else {
        Some(q)
    }
}

fn fold(egraph: &EGraph, enode: &Mat) -> Option<Rational> {
    let c = |id: &Id| egraph[*id].data.constant.clone();
    let res = match enode {
        Mat::Num(q) => q.0.clone(),
        // A known size is a number: `(size #3)` is 3.
        Mat::Size(n) => match &egraph[*n].data.dim {
            Some(Dim::Known(k)) => Rational::from_integer((*k).into()),
            _ => return None,
        },
        Mat::Neg(a) => -c(a)?,
        Mat::Add([a, b]) => c(a)? + c(b)?,
        Mat::Sub([a, b]) => c(a)? - c(b)?,
        Mat::Mul([a, b]) | Mat::Had([a, b]) => c(a)? * c(b)?,
        Mat::Div([a, b]) => {
            let denom = c(b)?;
            if denom.is_zero() {
                return None;
            }
            c(a)? / denom
        }
        Mat::Inverse(a) => {
            let value = c(a)?;
            if value.is_zero() {
                return None;
            }
            value.recip()
        }
        Mat::Transpose(a) | Mat::Trace(a) | Mat::Det(a) | Mat::Diag(a) | Mat::Sum(a) => c(a)?,
        Mat::NormSq(a) => {
            let value = c(a)?;
            &value * &value
        }
        Mat::Pow([a, k]) => {
            let base = c(a)?;
            let exponent = egraph[*k].data.constant.clone()?;
            if !exponent.is_integer() {
                return None;
            }
            let exponent = Num(exponent).as_i64()?;
            if exponent.abs() > MAX_FOLDED_EXPONENT || (exponent < 0 && base.is_zero()) {
                return None;
            }
            num_traits::pow::Pow::pow(base, exponent as i32)
        }
        Mat::Step(a) => {
            if c(a)?.is_positive() {
                Rational::one()
            } else {
                Rational::zero()
            }
        }
        Mat::Relu(a) => {
            let value = c(a)?;
            if value.is_positive() {
                value
            } else {
                Rational::zero()
            }
        }
        Mat::Abs(a) => c(a)?.abs(),
        Mat::Sign(a) => c(a)?.signum(),
        // The functions whose value at 0 is rational (a zero a derivative left inside them,
        // tanh(0)); elsewhere they are irrational and stay as written.
        Mat::Sin(a)
        | Mat::Tan(a)
        | Mat::Arcsin(a)
        | Mat::Arctan(a)
        | Mat::Sinh(a)
        | Mat::Tanh(a)
        | Mat::Swish(a)
        | Mat::Sqrt(a)
            if c(a)?.is_zero() =>
        {
            Rational::zero()
        }
        Mat::Exp(a) | Mat::Cos(a) | Mat::Cosh(a) if c(a)?.is_zero() => Rational::one(),
        Mat::Sigma(a) if c(a)?.is_zero() => Rational::new(1.into(), 2.into()),
        Mat::Log(a) if c(a)?.is_one() => Rational::zero(),
        _ => return None,
    };
    small(res)
}

fn shape_of_node(egraph: &EGraph, enode: &Mat) -> Shape {
    let facts = |id: Id| {
        let data = &egraph[id].data;
        (data.shape.clone(), data.dim.clone())
    };
    let leaf_shape = |name: &str| {
        egraph
            .analysis
            .vars
            .get(name)
            .map(|decl| decl.shape.clone())
    };
    node_shape(enode, facts, leaf_shape).0
}

/// The shape of `enode` given its children's shapes (and sizes, for `I` and `ones`) and
/// the shapes of named leaves, with whether the node is well typed (products, sums and
/// square-only operations agree with their operands' shapes). An ill-typed node still
/// gets the shape [`crate::expr::build`] would give it.
pub fn node_shape(
    enode: &Mat,
    facts: impl Fn(Id) -> (Shape, Option<Dim>),
    leaf_shape: impl Fn(&str) -> Option<Shape>,
) -> (Shape, bool) {
    let shape = |id: &Id| facts(*id).0;
    let elementwise = |a: &Id, b: &Id| {
        let (sa, sb) = (shape(a), shape(b));
        let ok = sa.is_scalar() || sb.is_scalar() || sa == sb;
        (if sa.is_scalar() { sb } else { sa }, ok)
    };
    let square = |a: &Id| {
        let sa = shape(a);
        let ok = sa.is_square();
        (sa, ok)
    };
    let size = |id: &Id| facts(*id).1;
    match enode {
        Mat::Num(_) | Mat::Dim(_) => (Shape::scalar(), true),
        // Function names (the `ℓ` of `ℓ(v)`) are not values; a scalar shape keeps them
        // inert, since no rule builds a node above them.
        Mat::Symbol(name) => match leaf_shape(name.as_str()) {
            Some(shape) => (shape, true),
            None => (Shape::scalar(), true),
        },
        Mat::Identity(n) | Mat::Ones(n) => match size(n) {
            Some(dim) => match enode {
                Mat::Identity(_) => (Shape::new(dim.clone(), dim), true),
                _ => (Shape::vector(dim), true),
            },
            None => (Shape::new(Dim::Unknown, Dim::Unknown), false),
        },
        Mat::Add([a, b]) | Mat::Sub([a, b]) | Mat::Div([a, b]) | Mat::Had([a, b]) => {
            elementwise(a, b)
        }
        Mat::Mul([a, b]) => {
            let (sa, sb) = (shape(a), shape(b));
            if sa.is_scalar() {
                (sb, true)
            } else if sb.is_scalar() {
                (sa, true)
            } else {
                let ok = sa.cols == sb.rows;
                (Shape::new(sa.rows, sb.cols), ok)
            }
        }
        Mat::Transpose(a) => (shape(a).transposed(), true),
        Mat::Neg(a) | Mat::Grad([_, a]) | Mat::Differential(a) => (shape(a), true),
        Mat::Inverse(a) | Mat::Pow([a, _]) => square(a),
        Mat::Trace(a) | Mat::Det(a) | Mat::LogDet(a) => (Shape::scalar(), square(a).1),
        Mat::NormSq(_) | Mat::Sum(_) | Mat::Apply(_) | Mat::Size(_) => (Shape::scalar(), true),
        Mat::Kron([a, b]) => {
            let (sa, sb) = (shape(a), shape(b));
            let rows = sa.rows.times(&sb.rows);
            (Shape::new(rows, sa.cols.times(&sb.cols)), true)
        }
        Mat::Vectorize(a) => {
            let sa = shape(a);
            (Shape::vector(sa.rows.times(&sa.cols)), true)
        }
        Mat::Commutation([m, n]) => match (size(m), size(n)) {
            (Some(m), Some(n)) => {
                let side = m.times(&n);
                (Shape::new(side.clone(), side), true)
            }
            _ => (Shape::new(Dim::Unknown, Dim::Unknown), false),
        },
        Mat::Norm2(_) | Mat::Norm1(_) => (Shape::scalar(), true),
        Mat::ElemDiv([a, b]) => elementwise(a, b),
        Mat::ElemPow([a, _]) => (shape(a), true),
        Mat::PowSym([a, _, _]) => square(a),
        Mat::Softmax(a) => (shape(a), shape(a).cols.is_one()),
        Mat::LogSumExp(a) => (Shape::scalar(), shape(a).cols.is_one()),
        Mat::Diag(a) => {
            let inner = shape(a);
            if inner.cols.is_one() {
                (Shape::new(inner.rows.clone(), inner.rows), true)
            } else {
                let ok = inner.is_square();
                (Shape::vector(inner.rows), ok)
            }
        }
        other => match other.func() {
            Some((_, a)) => (shape(&a), true),
            None => (Shape::scalar(), true),
        },
    }
}

/// Whether `p = qᵀ` is already known to the e-graph.
fn is_transpose_of(egraph: &EGraph, p: Id, q: Id) -> bool {
    egraph.lookup(Mat::Transpose(q)) == Some(egraph.find(p))
}

fn symmetric_of_node(egraph: &EGraph, enode: &Mat) -> bool {
    let sym = |id: &Id| egraph[*id].data.symmetric;
    let scalar = |id: &Id| egraph[*id].data.scalar;
    match enode {
        Mat::Symbol(name) => egraph
            .analysis
            .vars
            .get(name.as_str())
            .is_some_and(|decl| decl.props.symmetric || decl.props.positive_definite),
        Mat::Identity(_) | Mat::Num(_) => true,
        Mat::Add([a, b]) | Mat::Sub([a, b]) | Mat::Had([a, b]) => sym(a) && sym(b),
        Mat::Div([a, b]) | Mat::ElemDiv([a, b]) => sym(a) && sym(b),
        Mat::ElemPow([a, _]) | Mat::PowSym([a, _, _]) => sym(a),
        Mat::Neg(a) | Mat::Inverse(a) | Mat::Pow([a, _]) | Mat::Transpose(a) => sym(a),
        Mat::Mul([a, b]) => {
            (scalar(a) && sym(b))
                || (scalar(b) && sym(a))
                // AAᵀ and AᵀA.
                || is_transpose_of(egraph, *a, *b)
                || is_transpose_of(egraph, *b, *a)
                // A S Aᵀ with S symmetric, in either association.
                || egraph[*b].nodes.iter().any(|node| match node {
                    Mat::Mul([s, r]) => sym(s) && is_transpose_of(egraph, *r, *a),
                    _ => false,
                })
        }
        Mat::Diag(a) => egraph[*a].data.shape.cols.is_one(),
        // (A ⊗ B)ᵀ = Aᵀ ⊗ Bᵀ.
        Mat::Kron([a, b]) => sym(a) && sym(b),
        other => other.func().is_some_and(|(_, a)| sym(&a)),
    }
}

/// Whether every entry of `enode` is 1: `𝟙`, its transpose, an outer product or
/// Hadamard product of such.
fn ones_of_node(egraph: &EGraph, enode: &Mat) -> bool {
    let ones = |id: &Id| egraph[*id].data.ones;
    match enode {
        Mat::Ones(_) => true,
        Mat::Transpose(a) => ones(a),
        Mat::Had([a, b]) => ones(a) && ones(b),
        // 𝟙𝟙ᵀ, 1·𝟙: an inner product 𝟙ᵀ𝟙 is a size.
        Mat::Mul([a, b]) => ones(a) && ones(b) && egraph[*a].data.shape.cols.is_one(),
        _ => false,
    }
}

/// Whether `enode` is zero because of its children ([`Data::zero`]).
fn zero_of_node(egraph: &EGraph, enode: &Mat) -> bool {
    let zero = |id: &Id| egraph[*id].data.zero;
    match enode {
        Mat::Mul([a, b]) | Mat::Had([a, b]) | Mat::Kron([a, b]) => zero(a) || zero(b),
        Mat::Add([a, b]) | Mat::Sub([a, b]) => zero(a) && zero(b),
        Mat::Neg(a)
        | Mat::Transpose(a)
        | Mat::Vectorize(a)
        | Mat::Diag(a)
        | Mat::Trace(a)
        | Mat::Sum(a) => zero(a),
        _ => false,
    }
}

fn spd_of_node(egraph: &EGraph, enode: &Mat) -> bool {
    let spd = |id: &Id| egraph[*id].data.spd;
    let positive = |id: &Id| {
        egraph[*id]
            .data
            .constant
            .as_ref()
            .is_some_and(|q| q.is_positive())
    };
    match enode {
        Mat::Symbol(name) => egraph
            .analysis
            .vars
            .get(name.as_str())
            .is_some_and(|decl| decl.props.positive_definite),
        Mat::Identity(_) => true,
        Mat::Num(q) => q.0.is_positive(),
        Mat::Add([a, b]) => spd(a) && spd(b),
        Mat::Inverse(a) => spd(a),
        Mat::Mul([a, b]) => (positive(a) && spd(b)) || (spd(a) && positive(b)),
        _ => false,
    }
}

impl egg::Analysis<Mat> for MatAnalysis {
    type Data = Data;

    fn make(egraph: &mut EGraph, enode: &Mat) -> Data {
        let shape = shape_of_node(egraph, enode);
        let mut data = Data::of_shape(shape);
        data.constant = if data.scalar {
            fold(egraph, enode)
        } else {
            None
        };
        data.symmetric = data.scalar || symmetric_of_node(egraph, enode);
        data.spd = spd_of_node(egraph, enode) && data.shape.is_square();
        data.ones = data.constant.as_ref().is_some_and(One::is_one) || ones_of_node(egraph, enode);
        data.zero =
            data.constant.as_ref().is_some_and(Zero::is_zero) || zero_of_node(egraph, enode);
        if data.zero && data.scalar && data.constant.is_none() {
            data.constant = Some(Rational::zero());
        }
        if let Mat::Dim(DimLeaf(dim)) = enode {
            data.dim = Some(dim.clone());
        }
        data
    }

    fn merge(&mut self, to: &mut Data, from: Data) -> DidMerge {
        assert_eq!(
            to.shape, from.shape,
            "merged e-classes of different shapes: a rewrite rule changed a shape"
        );
        // Two different constants in one class mean the input divides by zero somewhere
        // (`0/0`, `x/(x − x)`): rules valid for every defined value then prove `0 = 1`.
        // The input has no value, so the class keeps its first constant rather than
        // panicking; the numeric check reports such an input as undefined.
        let mut changed_to = false;
        let mut changed_from = false;
        if to.constant.is_none() && from.constant.is_some() {
            to.constant = from.constant;
            changed_to = true;
        } else if to.constant.is_some() && from.constant.is_none() {
            changed_from = true;
        }
        if to.dim.is_none() && from.dim.is_some() {
            to.dim = from.dim;
            changed_to = true;
        } else if to.dim.is_some() && from.dim.is_none() {
            changed_from = true;
        }
        for (mine, theirs) in [
            (&mut to.symmetric, from.symmetric),
            (&mut to.spd, from.spd),
            (&mut to.ones, from.ones),
            (&mut to.zero, from.zero),
        ] {
            if !*mine && theirs {
                *mine = true;
                changed_to = true;
            } else if *mine && !theirs {
                changed_from = true;
            }
        }
        DidMerge(changed_to, changed_from)
    }

    fn modify(egraph: &mut EGraph, id: Id) {
        if let Some(constant) = egraph[id].data.constant.clone() {
            let leaf = egraph.add(Mat::Num(Num(constant)));
            egraph.union(id, leaf);
        }
        // A zero matrix is the zero of its shape, 0 times its carrier (I when square,
        // else 𝟙, 𝟙ᵀ or 𝟙𝟙ᵀ).
        let data = &egraph[id].data;
        if data.zero
            && !data.scalar
            && ![&data.shape.rows, &data.shape.cols].contains(&&Dim::Unknown)
        {
            let shape = data.shape.clone();
            let carrier =
                super::lang::add_shape_carrier(&shape, true, &mut |node| egraph.add(node));
            let zero = egraph.add(Mat::Num(Num(Rational::zero())));
            let small = egraph.add(Mat::Mul([zero, carrier]));
            egraph.union(id, small);
        }
        // A class equal to its own transpose is symmetric.
        if !egraph[id].data.symmetric && egraph.lookup(Mat::Transpose(id)) == Some(egraph.find(id))
        {
            egraph[id].data.symmetric = true;
        }
    }
}

/// Whether a class is a value (not a size leaf or a function name).
pub fn is_value(egraph: &EGraph, id: Id) -> bool {
    let data = &egraph[id].data;
    data.dim.is_none()
}

/// The properties of a class as a declaration would state them.
pub fn props_of(data: &Data) -> Props {
    Props {
        integer: false,
        symmetric: data.symmetric,
        positive_definite: data.spd,
    }
}
