//! The e-graph language [`Mat`]: one node per [`ExprKind`], with operator strings that
//! double as the s-expression syntax used in rule tables, snapshots and debugging
//! (`(mul W (add (mul z (T x)) (mul x (T z))))`).
//!
//! Leaves are exact rational numbers ([`Num`]), size symbols ([`DimLeaf`], written with a
//! leading `#`, so that `(I #n)` is the `n×n` identity and the e-graph knows its shape),
//! and, last as egg's documentation advises, variable and function names.
//!
//! [`expr_to_rec`] and [`rec_to_expr`] convert to and from the shared [`Expr`] tree; the
//! way back recomputes every shape with [`crate::expr::build`], so it needs the shapes of
//! the variables (a [`VarShapes`] table).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::rc::Rc;
use std::str::FromStr;

use egg::{Id, RecExpr};
use num_bigint::BigInt;
use num_traits::{Signed, ToPrimitive, Zero};

use crate::expr::{build, Dim, Expr, ExprKind, Func, NormKind, Rational, Shape};

/// Shapes of the variables (and of `let` and `where` names) the converters may meet.
pub type VarShapes = BTreeMap<String, Shape>;

/// An exact rational constant as an e-graph leaf; unlike [`ExprKind::Num`] it may be
/// negative, because constant folding produces negative values.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Num(pub Rational);

impl Num {
    /// The integer `n`.
    pub fn int(n: i64) -> Num {
        Num(Rational::from_integer(BigInt::from(n)))
    }

    /// The value as an `i64` when it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        if self.0.is_integer() {
            self.0.to_integer().to_i64()
        } else {
            None
        }
    }
}

impl FromStr for Num {
    type Err = String;

    fn from_str(text: &str) -> Result<Num, String> {
        let parse_int = |part: &str| -> Result<BigInt, String> {
            // BigInt accepts a leading '+', which no rule or printer ever writes.
            if part.is_empty() || part.starts_with('+') {
                return Err(format!("not a number: {text}"));
            }
            part.parse::<BigInt>()
                .map_err(|_| format!("not a number: {text}"))
        };
        match text.split_once('/') {
            Some((numer, denom)) => {
                let denom = parse_int(denom)?;
                if denom.is_zero() || denom.is_negative() {
                    return Err(format!("not a number: {text}"));
                }
                Ok(Num(Rational::new(parse_int(numer)?, denom)))
            }
            None => Ok(Num(Rational::from_integer(parse_int(text)?))),
        }
    }
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_integer() {
            write!(f, "{}", self.0.numer())
        } else {
            write!(f, "{}/{}", self.0.numer(), self.0.denom())
        }
    }
}

/// A size (`#n`, `#3`) as an e-graph leaf: the child of `I` and `ones`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DimLeaf(pub Dim);

impl FromStr for DimLeaf {
    type Err = String;

    fn from_str(text: &str) -> Result<DimLeaf, String> {
        let name = text
            .strip_prefix('#')
            .ok_or_else(|| format!("not a size: {text}"))?;
        if name.is_empty() {
            return Err(format!("not a size: {text}"));
        }
        // A product of sizes is written with `*` between its factors: `#m*n`.
        let factor = |text: &str| match text.parse::<u64>() {
            Ok(n) => Dim::Known(n),
            Err(_) => Dim::Sym(text.into()),
        };
        Ok(DimLeaf(match name.split_once('*') {
            Some(_) => name
                .split('*')
                .map(factor)
                .fold(Dim::Known(1), |product, next| product.times(&next)),
            None => factor(name),
        }))
    }
}

impl fmt::Display for DimLeaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Dim::Product(factors) => {
                let factors: Vec<String> = factors.iter().map(ToString::to_string).collect();
                write!(f, "#{}", factors.join("*"))
            }
            dim => write!(f, "#{dim}"),
        }
    }
}

// The macro gives variants no place for doc comments; `Mat`'s own comment documents them.
#[allow(missing_docs)]
mod language {
    use super::{DimLeaf, Num};
    use egg::Id;

    egg::define_language! {
        /// Matrix expressions as e-nodes, one variant per [`crate::expr::ExprKind`]; each
        /// operator string is the node's s-expression spelling (`add`, `mul`, `T`, `ew-sigma`, …).
        /// `pow` has an integer `Num` as second child, `epow` a rational one; `powsym`
        /// has the integer symbol and an integer offset `Num` as second and third child;
        /// `apply` and `grad` a function name; `d` a variable name; `I`, `ones` and
        /// `size` (the value of a size, a scalar: `(size #n)` is n) a size leaf.
        pub enum Mat {
            "add" = Add([Id; 2]),
            "sub" = Sub([Id; 2]),
            "neg" = Neg(Id),
            "mul" = Mul([Id; 2]),
            "div" = Div([Id; 2]),
            "had" = Had([Id; 2]),
            "T" = Transpose(Id),
            "inv" = Inverse(Id),
            "pow" = Pow([Id; 2]),
            "tr" = Trace(Id),
            "det" = Det(Id),
            "logdet" = LogDet(Id),
            "normsq" = NormSq(Id),
            "diag" = Diag(Id),
            "sum" = Sum(Id),
            "ew-sigma" = Sigma(Id),
            "ew-exp" = Exp(Id),
            "ew-log" = Log(Id),
            "ew-tanh" = Tanh(Id),
            "ew-swish" = Swish(Id),
            "ew-relu" = Relu(Id),
            "ew-softplus" = Softplus(Id),
            "ew-sqrt" = Sqrt(Id),
            "ew-step" = Step(Id),
            // The language of issue 12: more elementwise functions, norms, elementwise
            // quotients and powers, symbolic integer powers and the vector functions.
            "ew-sin" = Sin(Id),
            "ew-cos" = Cos(Id),
            "ew-tan" = Tan(Id),
            "ew-arcsin" = Arcsin(Id),
            "ew-arccos" = Arccos(Id),
            "ew-arctan" = Arctan(Id),
            "ew-sinh" = Sinh(Id),
            "ew-cosh" = Cosh(Id),
            "ew-abs" = Abs(Id),
            "ew-sign" = Sign(Id),
            "norm2" = Norm2(Id),
            "norm1" = Norm1(Id),
            "ediv" = ElemDiv([Id; 2]),
            "epow" = ElemPow([Id; 2]),
            "powsym" = PowSym([Id; 3]),
            "softmax" = Softmax(Id),
            "logsumexp" = LogSumExp(Id),
            "apply" = Apply([Id; 2]),
            "grad" = Grad([Id; 2]),
            "d" = Differential(Id),
            "I" = Identity(Id),
            "ones" = Ones(Id),
            "size" = Size(Id),
            "kron" = Kron([Id; 2]),
            "vec" = Vectorize(Id),
            "K" = Commutation([Id; 2]),
            Num(Num),
            Dim(DimLeaf),
            Symbol(egg::Symbol),
        }
    }
}

pub use language::Mat;

impl Mat {
    /// The elementwise function this node applies, if it is one.
    pub fn func(&self) -> Option<(Func, Id)> {
        let res = match *self {
            Mat::Sigma(a) => (Func::Sigma, a),
            Mat::Exp(a) => (Func::Exp, a),
            Mat::Log(a) => (Func::Log, a),
            Mat::Tanh(a) => (Func::Tanh, a),
            Mat::Swish(a) => (Func::Swish, a),
            Mat::Relu(a) => (Func::Relu, a),
            Mat::Softplus(a) => (Func::Softplus, a),
            Mat::Sqrt(a) => (Func::Sqrt, a),
            Mat::Step(a) => (Func::Step, a),
            Mat::Sin(a) => (Func::Sin, a),
            Mat::Cos(a) => (Func::Cos, a),
            Mat::Tan(a) => (Func::Tan, a),
            Mat::Arcsin(a) => (Func::Arcsin, a),
            Mat::Arccos(a) => (Func::Arccos, a),
            Mat::Arctan(a) => (Func::Arctan, a),
            Mat::Sinh(a) => (Func::Sinh, a),
            Mat::Cosh(a) => (Func::Cosh, a),
            Mat::Abs(a) => (Func::Abs, a),
            Mat::Sign(a) => (Func::Sign, a),
            _ => return None,
        };
        Some(res)
    }

    /// The node applying the elementwise function `f` to `a`.
    pub fn from_func(f: Func, a: Id) -> Mat {
        match f {
            Func::Sigma => Mat::Sigma(a),
            Func::Exp => Mat::Exp(a),
            Func::Log => Mat::Log(a),
            Func::Tanh => Mat::Tanh(a),
            Func::Swish => Mat::Swish(a),
            Func::Relu => Mat::Relu(a),
            Func::Softplus => Mat::Softplus(a),
            Func::Sqrt => Mat::Sqrt(a),
            Func::Step => Mat::Step(a),
            Func::Sin => Mat::Sin(a),
            Func::Cos => Mat::Cos(a),
            Func::Tan => Mat::Tan(a),
            Func::Arcsin => Mat::Arcsin(a),
            Func::Arccos => Mat::Arccos(a),
            Func::Arctan => Mat::Arctan(a),
            Func::Sinh => Mat::Sinh(a),
            Func::Cosh => Mat::Cosh(a),
            Func::Abs => Mat::Abs(a),
            Func::Sign => Mat::Sign(a),
        }
    }
}

/// Converts a tree to a [`RecExpr`]; subtrees shared through [`Rc`] stay shared, so a
/// derivative that reuses subexpressions does not grow exponentially.
pub fn expr_to_rec(expr: &Expr) -> RecExpr<Mat> {
    let mut rec = RecExpr::default();
    let mut memo: HashMap<*const Expr, Id> = HashMap::new();
    add_expr(expr, &mut rec, &mut memo);
    rec
}

/// Adds `expr` to `rec` (each distinct `Rc` node once, remembered in `memo` across
/// calls) and returns the id of its root.
pub fn add_expr(expr: &Expr, rec: &mut RecExpr<Mat>, memo: &mut HashMap<*const Expr, Id>) -> Id {
    let key = expr as *const Expr;
    if let Some(&id) = memo.get(&key) {
        return id;
    }
    let mut child = |e: &Rc<Expr>, rec: &mut RecExpr<Mat>| add_expr(e, rec, memo);
    let node = match &expr.kind {
        ExprKind::Num(q) if has_matrix_shape(&expr.shape) => {
            // A `Num` filling a matrix shape (a zero derivative `0` shaped `mn×mn`) is a
            // scalar in the e-graph: it keeps its shape as a factor `q·𝟙𝟙ᵀ` (`0·I` for a
            // square zero), or `I ⊗ 0` would become the `n×n` matrix `0I`.
            let carrier = shape_carrier(&expr.shape, q.is_zero(), rec);
            let q = rec.add(Mat::Num(Num(q.clone())));
            Mat::Mul([q, carrier])
        }
        ExprKind::Num(q) => Mat::Num(Num(q.clone())),
        ExprKind::Var(name) => Mat::Symbol(egg::Symbol::from(name.as_str())),
        ExprKind::Identity => {
            let dim = rec.add(Mat::Dim(DimLeaf(expr.shape.rows.clone())));
            Mat::Identity(dim)
        }
        ExprKind::Ones => {
            let dim = rec.add(Mat::Dim(DimLeaf(expr.shape.rows.clone())));
            Mat::Ones(dim)
        }
        ExprKind::Size(name) => {
            let dim = rec.add(Mat::Dim(DimLeaf(Dim::Sym(*name))));
            Mat::Size(dim)
        }
        ExprKind::Neg(a) => Mat::Neg(child(a, rec)),
        ExprKind::Add(a, b) => Mat::Add([child(a, rec), child(b, rec)]),
        ExprKind::Sub(a, b) => Mat::Sub([child(a, rec), child(b, rec)]),
        ExprKind::Mul(a, b) => Mat::Mul([child(a, rec), child(b, rec)]),
        ExprKind::Div(a, b) => Mat::Div([child(a, rec), child(b, rec)]),
        ExprKind::Hadamard(a, b) => Mat::Had([child(a, rec), child(b, rec)]),
        ExprKind::Transpose(a) => Mat::Transpose(child(a, rec)),
        ExprKind::Inverse(a) => Mat::Inverse(child(a, rec)),
        ExprKind::Pow(a, k) => {
            let base = child(a, rec);
            let exponent = rec.add(Mat::Num(Num::int(*k)));
            Mat::Pow([base, exponent])
        }
        ExprKind::Trace(a) => Mat::Trace(child(a, rec)),
        ExprKind::Det(a) => Mat::Det(child(a, rec)),
        ExprKind::LogDet(a) => Mat::LogDet(child(a, rec)),
        ExprKind::NormSq(a) => Mat::NormSq(child(a, rec)),
        ExprKind::Diag(a) => Mat::Diag(child(a, rec)),
        ExprKind::Sum(a) => Mat::Sum(child(a, rec)),
        ExprKind::Func(f, a) => Mat::from_func(*f, child(a, rec)),
        ExprKind::Apply(name, a) => {
            let name = rec.add(Mat::Symbol(egg::Symbol::from(name.as_str())));
            Mat::Apply([name, child(a, rec)])
        }
        ExprKind::Grad(name, a) => {
            let name = rec.add(Mat::Symbol(egg::Symbol::from(name.as_str())));
            Mat::Grad([name, child(a, rec)])
        }
        ExprKind::Differential(name) => {
            let name = rec.add(Mat::Symbol(egg::Symbol::from(name.as_str())));
            Mat::Differential(name)
        }
        ExprKind::Kron(a, b) => Mat::Kron([child(a, rec), child(b, rec)]),
        ExprKind::Vectorize(a) => Mat::Vectorize(child(a, rec)),
        ExprKind::Commutation(m, n) => {
            let m = rec.add(Mat::Dim(DimLeaf(m.clone())));
            let n = rec.add(Mat::Dim(DimLeaf(n.clone())));
            Mat::Commutation([m, n])
        }
        ExprKind::Norm(a, NormKind::Two) => Mat::Norm2(child(a, rec)),
        ExprKind::Norm(a, NormKind::One) => Mat::Norm1(child(a, rec)),
        ExprKind::ElemDiv(a, b) => Mat::ElemDiv([child(a, rec), child(b, rec)]),
        ExprKind::ElemPow(a, k) => {
            let base = child(a, rec);
            let exponent = rec.add(Mat::Num(Num(k.clone())));
            Mat::ElemPow([base, exponent])
        }
        ExprKind::PowSym(a, k, offset) => {
            let base = child(a, rec);
            let symbol = rec.add(Mat::Symbol(egg::Symbol::from(k.as_str())));
            let offset = rec.add(Mat::Num(Num::int(*offset)));
            Mat::PowSym([base, symbol, offset])
        }
        ExprKind::Softmax(a) => Mat::Softmax(child(a, rec)),
        ExprKind::LogSumExp(a) => Mat::LogSumExp(child(a, rec)),
        // A notation as written is the node inside (typed trees do not hold one).
        ExprKind::Written(a, _) => return child(a, rec),
    };
    let id = rec.add(node);
    memo.insert(key, id);
    id
}

/// `0·A`, how the e-graph keeps a zero's shape, as a whole result: the zero of A's
/// shape, a `Num` filling it, printed `0` like a zero derivative. Only for a whole
/// result: inside an expression, or as a `where` body, a printed `0` reads back as a
/// scalar (`0ᵀX` would be `0·X`, not a zero row times X), so there the shape stays
/// written (`0I`, `0𝟙ᵀ`).
pub fn zero_as_num(expr: Expr) -> Expr {
    let is_zero = |e: &Expr| matches!(&e.kind, ExprKind::Num(q) if q.is_zero());
    match &expr.kind {
        ExprKind::Mul(a, b) if !expr.shape.is_scalar() && (is_zero(a) || is_zero(b)) => {
            Expr::typed(ExprKind::Num(Rational::zero()), expr.shape.clone())
        }
        _ => expr,
    }
}

/// Whether a typed node's shape is known and not `1×1`.
fn has_matrix_shape(shape: &Shape) -> bool {
    !shape.is_scalar() && ![&shape.rows, &shape.cols].contains(&&Dim::Unknown)
}

/// A node of `shape` whose entries are all 1 (`𝟙`, `𝟙ᵀ`, `𝟙𝟙ᵀ`), or `I` when `square`
/// is allowed and the shape is square: the factor that gives a constant its shape.
fn shape_carrier(shape: &Shape, square: bool, rec: &mut RecExpr<Mat>) -> Id {
    add_shape_carrier(shape, square, &mut |node| rec.add(node))
}

/// The factor that gives a constant of `shape` its shape (`𝟙`, `𝟙ᵀ`, `𝟙𝟙ᵀ`, or `I` when
/// `square` is allowed and the shape is square), built by `add` (a [`RecExpr`]'s or an
/// e-graph's): the e-graph's
/// rules write a zero of the matched class's shape as `0·` this carrier, the same form a
/// zero entering the e-graph takes, so that every zero of one shape is one small term.
pub fn add_shape_carrier(shape: &Shape, square: bool, add: &mut dyn FnMut(Mat) -> Id) -> Id {
    let ones = |n: &Dim, add: &mut dyn FnMut(Mat) -> Id| {
        let dim = add(Mat::Dim(DimLeaf(n.clone())));
        add(Mat::Ones(dim))
    };
    if square && shape.is_square() {
        let dim = add(Mat::Dim(DimLeaf(shape.rows.clone())));
        return add(Mat::Identity(dim));
    }
    let column = (!shape.rows.is_one()).then(|| ones(&shape.rows, add));
    let row = (!shape.cols.is_one()).then(|| {
        let column = ones(&shape.cols, add);
        add(Mat::Transpose(column))
    });
    match (column, row) {
        (Some(column), Some(row)) => add(Mat::Mul([column, row])),
        (Some(one), None) | (None, Some(one)) => one,
        // A 1×1 shape is a scalar, carried by 1.
        (None, None) => add(Mat::Num(Num(Rational::from_integer(BigInt::from(1))))),
    }
}

/// Converts a [`RecExpr`] back to a typed tree, recomputing every shape with
/// [`crate::expr::build`] from the variable shapes in `vars`.
///
/// Fails (never panics) on a node that has no [`Expr`] counterpart in its position: a
/// size leaf outside `I`/`ones`/`size`, a non-integer power, a name child that is not a name,
/// or an unknown variable.
pub fn rec_to_expr(rec: &RecExpr<Mat>, vars: &VarShapes) -> Result<Expr, String> {
    let nodes = rec.as_ref();
    if nodes.is_empty() {
        return Err("empty expression".to_string());
    }
    let mut built: Vec<Option<Rc<Expr>>> = Vec::with_capacity(nodes.len());
    for node in nodes {
        built.push(node_to_expr(node, &built, nodes, vars).ok());
    }
    match built.last().cloned().flatten() {
        Some(expr) => Ok(expr.as_ref().clone()),
        None => {
            node_to_expr(&nodes[nodes.len() - 1], &built, nodes, vars).map(|e| e.as_ref().clone())
        }
    }
}

fn node_to_expr(
    node: &Mat,
    built: &[Option<Rc<Expr>>],
    nodes: &[Mat],
    vars: &VarShapes,
) -> Result<Rc<Expr>, String> {
    let get = |id: Id| -> Result<Rc<Expr>, String> {
        built
            .get(usize::from(id))
            .cloned()
            .flatten()
            .ok_or_else(|| format!("cannot convert the child of {node}"))
    };
    let name = |id: Id| -> Result<String, String> {
        match nodes.get(usize::from(id)) {
            Some(Mat::Symbol(s)) => Ok(s.as_str().to_string()),
            _ => Err(format!("{node} needs a name as its first child")),
        }
    };
    let dim = |id: Id| -> Result<Dim, String> {
        match nodes.get(usize::from(id)) {
            Some(Mat::Dim(d)) => Ok(d.0.clone()),
            _ => Err(format!("{node} needs a size as its child")),
        }
    };
    let res = match node {
        Mat::Num(q) => build::constant(q.0.clone()),
        Mat::Dim(d) => return Err(format!("a size {d} outside I, ones or size")),
        Mat::Symbol(s) => {
            let shape = vars
                .get(s.as_str())
                .cloned()
                .ok_or_else(|| format!("unknown variable {s}"))?;
            build::var(s.as_str(), shape)
        }
        Mat::Identity(n) => build::identity(dim(*n)?),
        Mat::Ones(n) => build::ones(dim(*n)?),
        Mat::Size(n) => {
            let n = dim(*n)?;
            build::size(&n).ok_or_else(|| format!("the size {n} has no value"))?
        }
        Mat::Kron([a, b]) => build::kron(get(*a)?, get(*b)?),
        Mat::Vectorize(a) => build::vec(get(*a)?),
        Mat::Commutation([m, n]) => build::commutation(dim(*m)?, dim(*n)?),
        Mat::Neg(a) => build::neg(get(*a)?),
        Mat::Add([a, b]) => build::add(get(*a)?, get(*b)?),
        Mat::Sub([a, b]) => build::sub(get(*a)?, get(*b)?),
        Mat::Mul([a, b]) => build::mul(get(*a)?, get(*b)?),
        Mat::Div([a, b]) => build::div(get(*a)?, get(*b)?),
        Mat::Had([a, b]) => build::hadamard(get(*a)?, get(*b)?),
        Mat::Transpose(a) => build::transpose(get(*a)?),
        Mat::Inverse(a) => build::inverse(get(*a)?),
        Mat::Pow([a, k]) => {
            let exponent = match nodes.get(usize::from(*k)) {
                Some(Mat::Num(q)) => q.as_i64(),
                _ => None,
            }
            .ok_or_else(|| "a power needs an integer exponent".to_string())?;
            match exponent {
                -1 => build::inverse(get(*a)?),
                1 => get(*a)?,
                k => build::pow(get(*a)?, k),
            }
        }
        Mat::Trace(a) => build::trace(get(*a)?),
        Mat::Det(a) => build::det(get(*a)?),
        Mat::LogDet(a) => build::logdet(get(*a)?),
        Mat::NormSq(a) => build::norm_sq(get(*a)?),
        Mat::Diag(a) => build::diag(get(*a)?),
        Mat::Sum(a) => build::sum(get(*a)?),
        Mat::Apply([f, a]) => build::apply(&name(*f)?, get(*a)?),
        Mat::Grad([f, a]) => build::grad(&name(*f)?, get(*a)?),
        Mat::Differential(x) => {
            let x = name(*x)?;
            let shape = vars
                .get(&x)
                .cloned()
                .ok_or_else(|| format!("unknown variable {x}"))?;
            build::differential(&x, shape)
        }
        Mat::Norm2(a) => build::norm(get(*a)?, NormKind::Two),
        Mat::Norm1(a) => build::norm(get(*a)?, NormKind::One),
        Mat::ElemDiv([a, b]) => build::elem_div(get(*a)?, get(*b)?),
        Mat::ElemPow([a, k]) => {
            let exponent = match nodes.get(usize::from(*k)) {
                Some(Mat::Num(q)) => q.0.clone(),
                _ => return Err("an elementwise power needs a number as exponent".to_string()),
            };
            build::elem_pow(get(*a)?, exponent)
        }
        Mat::PowSym([a, k, offset]) => {
            let offset = match nodes.get(usize::from(*offset)) {
                Some(Mat::Num(q)) => q.as_i64(),
                _ => None,
            }
            .ok_or_else(|| "a symbolic power needs an integer offset".to_string())?;
            build::pow_sym(get(*a)?, &name(*k)?, offset)
        }
        Mat::Softmax(a) => build::softmax(get(*a)?),
        Mat::LogSumExp(a) => build::logsumexp(get(*a)?),
        other => match other.func() {
            Some((f, a)) => build::func(f, get(a)?),
            None => return Err(format!("no expression for {other}")),
        },
    };
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn num_round_trips_through_text() {
        for text in ["0", "3", "-2", "1/2", "-3/4"] {
            let num: Num = text.parse().unwrap();
            assert_eq!(num.to_string(), text);
        }
        assert!("x".parse::<Num>().is_err());
        assert!("1/0".parse::<Num>().is_err());
    }

    #[test]
    fn constants_filling_a_matrix_keep_their_shape() {
        let m = Dim::Sym("m".into());
        let n = Dim::Sym("n".into());
        let vars = VarShapes::new();
        for shape in [
            Shape::new(m.times(&n), m.times(&n)),
            Shape::new(m.clone(), n.clone()),
            Shape::vector(n.clone()),
            Shape::new(Dim::one(), m.clone()),
        ] {
            for q in [0, 3] {
                let constant = Expr::typed(
                    ExprKind::Num(Rational::from_integer(q.into())),
                    shape.clone(),
                );
                let kron = build::kron(build::identity(n.clone()), Rc::new(constant));
                let back = rec_to_expr(&expr_to_rec(&kron), &vars).expect("converts back");
                assert_eq!(back.shape, kron.shape, "{q} shaped {shape:?}");
            }
        }
    }

    #[test]
    fn s_expressions_parse_with_sizes_and_names() {
        let rec: RecExpr<Mat> = "(mul (I #n) (add x (neg 1/2)))".parse().unwrap();
        assert_eq!(rec.to_string(), "(mul (I #n) (add x (neg 1/2)))");
    }
}
