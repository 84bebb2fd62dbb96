//! The expression tree every stage shares.
//!
//! The parser produces an [`Expr`] whose nodes carry their source [`Span`] and an
//! unknown [`Shape`]; [`crate::shape::infer`] returns the same tree with every node's
//! shape filled in, and every later stage (differentiation, simplification, numeric
//! evaluation, printing) works on that typed tree. Constants are exact big rationals,
//! so `½`, `D/2` and `3/4` never become floats.
//!
//! Children are reference counted, so a derivative can share subexpressions (a DAG)
//! without copying them. Equality and hashing compare structure and shapes, never spans:
//! `𝟙ₘ` and `𝟙ₙ` are different values, so nothing that shares equal subtrees (hash-consing,
//! common subexpressions, the printers' temporaries) may merge them, while a
//! printed-and-reparsed tree, once its shapes are inferred, compares equal to the original.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

use num_bigint::BigInt;
use num_traits::{One, Zero};

/// An exact rational constant.
pub type Rational = num_rational::BigRational;

/// A variable or function name in its canonical Unicode spelling (`W₁`, `α`, `x′`, `ℓ`).
pub type Symbol = String;

/// A byte range in the source text, `start..end`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    /// First byte of the range.
    pub start: u32,
    /// One past the last byte of the range.
    pub end: u32,
}

impl Span {
    /// The span `start..end`.
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    /// The smallest span covering both `self` and `other`.
    pub fn join(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// A size symbol such as `m` or `n`, interned: a shape is copied at every e-node and
/// every rule match of the simplifier, and copying a `String` there (an allocation, a
/// copy and a free) was a fifth of its instructions. Ordered by its text, like the
/// `String` it replaces, so sorted sizes (`mp`) do not depend on interning order.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SizeName(egg::Symbol);

impl SizeName {
    /// The size's name.
    pub fn as_str(&self) -> &'static str {
        self.0.as_str()
    }
}

impl std::ops::Deref for SizeName {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialOrd for SizeName {
    fn partial_cmp(&self, other: &SizeName) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SizeName {
    fn cmp(&self, other: &SizeName) -> std::cmp::Ordering {
        if self.0 == other.0 {
            std::cmp::Ordering::Equal
        } else {
            self.as_str().cmp(other.as_str())
        }
    }
}

impl fmt::Debug for SizeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SizeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for SizeName {
    fn from(name: &str) -> SizeName {
        SizeName(egg::Symbol::from(name))
    }
}

impl From<String> for SizeName {
    fn from(name: String) -> SizeName {
        SizeName(egg::Symbol::from(name))
    }
}

impl From<&String> for SizeName {
    fn from(name: &String) -> SizeName {
        SizeName(egg::Symbol::from(name.as_str()))
    }
}

impl PartialEq<str> for SizeName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SizeName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One dimension of a shape: a number or a size symbol such as `m` or `n`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dim {
    /// A concrete size.
    Known(u64),
    /// A symbolic size (`m`, `n`).
    Sym(SizeName),
    /// Not inferred yet: only on trees straight from the parser.
    Unknown,
    /// A product of sizes, `mp`: the rows or columns of a Kronecker product `A ⊗ B` or of
    /// a vectorised matrix. Build it with [`Dim::times`], which keeps it canonical: at
    /// least two factors, at most one `Known` factor (first, at least 2), then the symbols
    /// in sorted order, so that equal products compare equal.
    Product(Vec<Dim>),
}

impl Dim {
    /// The dimension 1.
    pub fn one() -> Dim {
        Dim::Known(1)
    }

    /// Whether this dimension is exactly 1.
    pub fn is_one(&self) -> bool {
        matches!(self, Dim::Known(1))
    }

    /// The product `self · other`, canonical (see [`Dim::Product`]): `2·3 = 6`,
    /// `1·m = m`, `p·m = mp`. An unknown factor makes the product unknown.
    ///
    /// # Examples
    /// ```
    /// use matcalc::Dim;
    /// let (m, p) = (Dim::Sym("m".into()), Dim::Sym("p".into()));
    /// assert_eq!(p.times(&m).to_string(), "mp");
    /// assert_eq!(m.times(&Dim::Known(1)), m);
    /// assert_eq!(Dim::Known(2).times(&Dim::Known(3)), Dim::Known(6));
    /// ```
    pub fn times(&self, other: &Dim) -> Dim {
        let mut known: u64 = 1;
        let mut symbols: Vec<Dim> = Vec::new();
        for factor in self.factors().into_iter().chain(other.factors()) {
            match factor {
                Dim::Known(n) => known = known.saturating_mul(n),
                Dim::Unknown => return Dim::Unknown,
                sym => symbols.push(sym),
            }
        }
        symbols.sort();
        if known == 0 || symbols.is_empty() {
            return Dim::Known(known);
        }
        if known == 1 && symbols.len() == 1 {
            return symbols.pop().unwrap_or(Dim::Unknown);
        }
        let mut factors = Vec::with_capacity(symbols.len() + 1);
        if known != 1 {
            factors.push(Dim::Known(known));
        }
        factors.extend(symbols);
        Dim::Product(factors)
    }

    /// The size `d` with `d · divisor = self`, if there is one: `mn / m = n`, `6 / 2 = 3`.
    ///
    /// # Examples
    /// ```
    /// use matcalc::Dim;
    /// let (m, n) = (Dim::Sym("m".into()), Dim::Sym("n".into()));
    /// assert_eq!(m.times(&n).divided_by(&m), Some(n.clone()));
    /// assert_eq!(n.divided_by(&m), None);
    /// assert_eq!(Dim::Known(6).divided_by(&Dim::Known(4)), None);
    /// ```
    pub fn divided_by(&self, divisor: &Dim) -> Option<Dim> {
        let mut known: u64 = 1;
        let mut symbols: Vec<Dim> = Vec::new();
        for factor in self.factors() {
            match factor {
                Dim::Known(n) => known = known.saturating_mul(n),
                Dim::Unknown => return None,
                sym => symbols.push(sym),
            }
        }
        for factor in divisor.factors() {
            match factor {
                Dim::Known(0) | Dim::Unknown => return None,
                Dim::Known(n) if known.is_multiple_of(n) => known /= n,
                Dim::Known(_) => return None,
                sym => {
                    let position = symbols.iter().position(|s| *s == sym)?;
                    symbols.remove(position);
                }
            }
        }
        Some(
            symbols
                .iter()
                .fold(Dim::Known(known), |product, factor| product.times(factor)),
        )
    }

    /// The factors of the dimension: itself, or a product's factors.
    pub fn factors(&self) -> Vec<Dim> {
        match self {
            Dim::Product(factors) => factors.clone(),
            other => vec![other.clone()],
        }
    }

    /// The size symbols the dimension is made of (`m`, `p` for `mp`).
    pub fn symbols(&self) -> Vec<&SizeName> {
        match self {
            Dim::Sym(name) => vec![name],
            Dim::Product(factors) => factors.iter().flat_map(Dim::symbols).collect(),
            Dim::Known(_) | Dim::Unknown => vec![],
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Known(n) => write!(f, "{n}"),
            Dim::Sym(s) => write!(f, "{s}"),
            Dim::Unknown => write!(f, "?"),
            Dim::Product(factors) => {
                // Repeated factors are powers, `n²`; factors are otherwise side by side.
                let mut index = 0;
                while index < factors.len() {
                    let run = factors[index..]
                        .iter()
                        .take_while(|factor| **factor == factors[index])
                        .count();
                    write!(f, "{}", factors[index])?;
                    if run > 1 {
                        write!(f, "{}", superscript(run))?;
                    }
                    index += run;
                }
                Ok(())
            }
        }
    }
}

/// `n` in superscript digits: `²`, `¹²`.
fn superscript(n: usize) -> String {
    const DIGITS: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    n.to_string()
        .chars()
        .map(|digit| DIGITS[digit.to_digit(10).unwrap_or(0) as usize])
        .collect()
}

/// The shape `rows × cols` of a value; a column vector is `n × 1`, a scalar `1 × 1`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    /// Number of rows.
    pub rows: Dim,
    /// Number of columns.
    pub cols: Dim,
}

impl Shape {
    /// The shape `rows × cols`.
    pub fn new(rows: Dim, cols: Dim) -> Shape {
        Shape { rows, cols }
    }

    /// The scalar shape `1 × 1`.
    pub fn scalar() -> Shape {
        Shape::new(Dim::one(), Dim::one())
    }

    /// The shape of a tree that has not been through shape inference.
    pub fn unknown() -> Shape {
        Shape::new(Dim::Unknown, Dim::Unknown)
    }

    /// The column-vector shape `n × 1`.
    pub fn vector(n: Dim) -> Shape {
        Shape::new(n, Dim::one())
    }

    /// Whether this is `1 × 1`.
    pub fn is_scalar(&self) -> bool {
        self.rows.is_one() && self.cols.is_one()
    }

    /// Whether this is a column vector `n × 1` with `n` not known to be 1.
    pub fn is_col_vector(&self) -> bool {
        self.cols.is_one() && !self.rows.is_one()
    }

    /// Whether rows and columns are the same dimension.
    pub fn is_square(&self) -> bool {
        self.rows == self.cols
    }

    /// The transposed shape.
    pub fn transposed(&self) -> Shape {
        Shape::new(self.cols.clone(), self.rows.clone())
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_scalar() {
            write!(f, "scalar")
        } else {
            write!(f, "{}×{}", self.rows, self.cols)
        }
    }
}

/// Properties a declaration gives a matrix, used by the simplifier and the numeric check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Props {
    /// Declared symmetric (`sym`).
    pub symmetric: bool,
    /// Declared symmetric positive definite (`spd`); implies `symmetric`.
    pub positive_definite: bool,
    /// Declared an integer (`k: int`), a scalar that may be a matrix exponent (`Xᵏ`).
    pub integer: bool,
}

/// The elementwise functions of the notation table, plus the derivatives that have no
/// closed form in the others (`step`, the derivative of `relu`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Func {
    /// The logistic sigmoid σ.
    Sigma,
    /// The exponential.
    Exp,
    /// The natural logarithm (elementwise; `log|A|` is [`ExprKind::LogDet`]).
    Log,
    /// The hyperbolic tangent.
    Tanh,
    /// swish(z) = z σ(z).
    Swish,
    /// relu(z) = max(z, 0).
    Relu,
    /// softplus(z) = log(1 + exp z).
    Softplus,
    /// The square root.
    Sqrt,
    /// The Heaviside step `1[z > 0]`, the derivative of relu.
    Step,
    /// The sine.
    Sin,
    /// The cosine.
    Cos,
    /// The tangent.
    Tan,
    /// The inverse sine, defined on [−1, 1].
    Arcsin,
    /// The inverse cosine, defined on [−1, 1].
    Arccos,
    /// The inverse tangent.
    Arctan,
    /// The hyperbolic sine.
    Sinh,
    /// The hyperbolic cosine.
    Cosh,
    /// The absolute value |z|, not differentiable at 0.
    Abs,
    /// The sign of z (−1, 0 or 1), the derivative of abs.
    Sign,
}

impl Func {
    /// Every elementwise function.
    pub const ALL: [Func; 19] = [
        Func::Sigma,
        Func::Exp,
        Func::Log,
        Func::Tanh,
        Func::Swish,
        Func::Relu,
        Func::Softplus,
        Func::Sqrt,
        Func::Step,
        Func::Sin,
        Func::Cos,
        Func::Tan,
        Func::Arcsin,
        Func::Arccos,
        Func::Arctan,
        Func::Sinh,
        Func::Cosh,
        Func::Abs,
        Func::Sign,
    ];

    /// The canonical ASCII name (`sigma`, `exp`, …).
    pub fn name(self) -> &'static str {
        match self {
            Func::Sigma => "sigma",
            Func::Exp => "exp",
            Func::Log => "log",
            Func::Tanh => "tanh",
            Func::Swish => "swish",
            Func::Relu => "relu",
            Func::Softplus => "softplus",
            Func::Sqrt => "sqrt",
            Func::Step => "step",
            Func::Sin => "sin",
            Func::Cos => "cos",
            Func::Tan => "tan",
            Func::Arcsin => "arcsin",
            Func::Arccos => "arccos",
            Func::Arctan => "arctan",
            Func::Sinh => "sinh",
            Func::Cosh => "cosh",
            Func::Abs => "abs",
            Func::Sign => "sign",
        }
    }
}

/// Which norm an [`ExprKind::Norm`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NormKind {
    /// ‖x‖ = ‖x‖₂, the Euclidean norm; of a matrix, the Frobenius norm ‖X‖_F.
    Two,
    /// ‖x‖₁, the sum of absolute values (of all entries, for a matrix).
    One,
}

/// What a node is. Children are shared ([`Rc`]), so derivatives can reuse subtrees.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ExprKind {
    /// An exact non-negative rational constant (negation is [`ExprKind::Neg`]).
    Num(Rational),
    /// A variable.
    Var(Symbol),
    /// The identity matrix `I`, its size given by the node's shape.
    Identity,
    /// The all-ones vector `𝟙`, its size given by the node's shape.
    Ones,
    /// The value of a size symbol, a scalar constant: `n` in `sum(X)/n` for `X: m×n`
    /// (a name the declarations use as a size and not as a variable, read where a
    /// scalar is expected), or in `mn`, the value of `sum(𝟙ₘ𝟙ₙᵀ)`. Printed as the
    /// size's name; products of sizes are products of these nodes (see [`build::size`]).
    Size(SizeName),
    /// `−a`.
    Neg(Rc<Expr>),
    /// `a + b` (a scalar operand broadcasts).
    Add(Rc<Expr>, Rc<Expr>),
    /// `a − b` (a scalar operand broadcasts).
    Sub(Rc<Expr>, Rc<Expr>),
    /// `ab`: matrix product, or scaling when either side is a scalar.
    Mul(Rc<Expr>, Rc<Expr>),
    /// `a / b`: division by a scalar `b` (SPEC §2: a non-scalar denominator is a shape
    /// error; elementwise quotients are [`ExprKind::ElemDiv`]).
    Div(Rc<Expr>, Rc<Expr>),
    /// `a ⊙ b`, the elementwise (Hadamard) product.
    Hadamard(Rc<Expr>, Rc<Expr>),
    /// `aᵀ`.
    Transpose(Rc<Expr>),
    /// `a⁻¹`.
    Inverse(Rc<Expr>),
    /// `aᵏ`, an integer matrix power other than −1 (which is [`ExprKind::Inverse`]).
    Pow(Rc<Expr>, i64),
    /// `tr(A)`.
    Trace(Rc<Expr>),
    /// `det(A)`, `|A|`.
    Det(Rc<Expr>),
    /// `log|A|`, the log-determinant.
    LogDet(Rc<Expr>),
    /// `‖a‖²`, the squared Euclidean (Frobenius for matrices) norm.
    NormSq(Rc<Expr>),
    /// `diag(a)`: a vector to a diagonal matrix, or a square matrix to its diagonal.
    Diag(Rc<Expr>),
    /// `sum(a)`, the sum of all entries.
    Sum(Rc<Expr>),
    /// An elementwise function.
    Func(Func, Rc<Expr>),
    /// An opaque scalar function applied to an argument, `ℓ(v)` (declared `ℓ: fn`).
    Apply(Symbol, Rc<Expr>),
    /// The gradient of an opaque function at an argument, `∇ℓ(v)`.
    Grad(Symbol, Rc<Expr>),
    /// The differential `dX` of a variable, in differentials and second differentials.
    Differential(Symbol),
    /// `a ⊗ b`, the Kronecker product: `mp × nq` for `a: m×n`, `b: p×q`.
    Kron(Rc<Expr>, Rc<Expr>),
    /// `vec(a)`, the columns of `a` stacked into one column (`mn × 1` for `a: m×n`).
    Vectorize(Rc<Expr>),
    /// The commutation matrix `K₍ₘ,ₙ₎` (`mn × mn`): `K₍ₘ,ₙ₎ vec(A) = vec(Aᵀ)` for every
    /// `m×n` matrix `A`. It is how the vec form writes a transposed differential `dXᵀ`.
    Commutation(Dim, Dim),
    /// `‖a‖`, `‖a‖₂`, `‖a‖₁`, `‖A‖_F`: a norm that is not squared (that is
    /// [`ExprKind::NormSq`]).
    Norm(Rc<Expr>, NormKind),
    /// `a ⊘ b`, the elementwise quotient of equal shapes (a scalar side broadcasts).
    ElemDiv(Rc<Expr>, Rc<Expr>),
    /// `a^{∘k}`, the elementwise power with an exact rational exponent; on a scalar it is
    /// the ordinary power (`(cᵀx)^{1/3}`).
    ElemPow(Rc<Expr>, Rational),
    /// `a^{k+o}`: a square matrix (or scalar) to the power of a declared integer symbol
    /// `k` (`k: int`) plus a fixed offset `o`, as in `Xᵏ` (o = 0) or `Xᵏ⁻¹` (o = −1).
    PowSym(Rc<Expr>, Symbol, i64),
    /// `softmax(z)` = exp(z) / 𝟙ᵀexp(z), of a column vector.
    Softmax(Rc<Expr>),
    /// `logsumexp(z)` = log 𝟙ᵀexp(z), of a column vector.
    LogSumExp(Rc<Expr>),
    /// A notation whose meaning depends on its argument's shape, as the parser read it:
    /// the node it stands for (`ElemPow`, a norm, `Det`) and how it was written. Only the
    /// parser makes it, and [`crate::shape::infer`] replaces it by the node it means or
    /// refuses it, so typed trees never hold it; a stage that meets one anyway treats it as
    /// the node inside.
    Written(Rc<Expr>, WrittenAs),
}

/// How a shape-dependent notation was written (see [`ExprKind::Written`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WrittenAs {
    /// `a^{p/q}` without `∘` or `.^`: an ordinary power, which for a non-integer exponent
    /// matcalc supports only of a scalar (a matrix root is not an elementwise power). The
    /// node inside is `ElemPow(a, p/q)`.
    PlainPower,
    /// `‖a‖₂`, `‖a‖₁` with the subscript written: of a matrix these name the spectral and
    /// the induced 1-norm, not the Frobenius or entrywise norms, so the argument must be
    /// a vector. The node inside is the norm (`Norm`, `NormSq` or `Pow(Norm, 2)`).
    VectorNorm,
    /// `|a|`: the determinant of a square matrix, the absolute value of a scalar or a
    /// vector (elementwise). The node inside is `Det(a)`.
    Bars,
    /// `a^{e}` with an exponent that is no number (`a^{b+c}`, `(cᵀx)^(dᵀx)`, `2^{x}`): a
    /// real power, defined for a positive scalar `a` and a scalar `e` only. The node
    /// inside is what it means, `exp(e·log(a))`.
    RealPower,
    /// matrixcalculus.org's `vector(c)` and `matrix(c)`: a number `c` spread over a vector
    /// or a matrix, `c𝟙` and `c𝟙𝟙ᵀ`. The argument must be a scalar (a default-typed
    /// lower-case letter becomes one), never a vector or matrix silently multiplied by
    /// ones. The node inside is that product.
    Spread,
}

/// A node: what it is, where it came from and, after shape inference, its shape.
///
/// Equality and hashing look at the structure and the shapes, never at spans.
#[derive(Clone, Debug)]
pub struct Expr {
    /// What the node is.
    pub kind: ExprKind,
    /// Where it came from in the source; `None` for nodes made by later stages.
    pub span: Option<Span>,
    /// Its shape; [`Shape::unknown`] before inference.
    pub shape: Shape,
}

impl PartialEq for Expr {
    fn eq(&self, other: &Expr) -> bool {
        self.shape == other.shape && self.kind == other.kind
    }
}

impl Eq for Expr {}

impl Hash for Expr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
        self.shape.hash(state)
    }
}

/// The children of an [`ExprKind`], by shared or mutable reference: one list of which
/// node kinds have how many children, for [`Expr::children`] and [`Expr::children_mut`].
macro_rules! children_of {
    ($kind:expr) => {{
        use ExprKind::*;
        match $kind {
            Num(_) | Var(_) | Identity | Ones | Size(_) | Differential(_) | Commutation(..) => {
                vec![]
            }
            Neg(a)
            | Vectorize(a)
            | Transpose(a)
            | Inverse(a)
            | Pow(a, _)
            | Trace(a)
            | Det(a)
            | LogDet(a)
            | NormSq(a)
            | Diag(a)
            | Sum(a)
            | Func(_, a)
            | Apply(_, a)
            | Grad(_, a)
            | Norm(a, _)
            | ElemPow(a, _)
            | PowSym(a, _, _)
            | Softmax(a)
            | LogSumExp(a)
            | Written(a, _) => vec![a],
            Add(a, b)
            | Sub(a, b)
            | Mul(a, b)
            | Div(a, b)
            | Hadamard(a, b)
            | Kron(a, b)
            | ElemDiv(a, b) => vec![a, b],
        }
    }};
}

impl Expr {
    /// A node with no span and an unknown shape.
    pub fn new(kind: ExprKind) -> Expr {
        Expr {
            kind,
            span: None,
            shape: Shape::unknown(),
        }
    }

    /// A node with the given shape and no span.
    pub fn typed(kind: ExprKind, shape: Shape) -> Expr {
        Expr {
            kind,
            span: None,
            shape,
        }
    }

    /// The same node with a span attached.
    pub fn with_span(mut self, span: Span) -> Expr {
        self.span = Some(span);
        self
    }

    /// An exact integer constant.
    pub fn int(n: i64) -> Expr {
        Expr::num(Rational::from_integer(BigInt::from(n)))
    }

    /// An exact rational constant `n/d`.
    pub fn ratio(n: i64, d: i64) -> Expr {
        Expr::num(Rational::new(BigInt::from(n), BigInt::from(d)))
    }

    /// A rational constant node; negative values become `Neg(Num(|q|))`.
    pub fn num(q: Rational) -> Expr {
        if q < Rational::zero() {
            Expr::typed(
                ExprKind::Neg(Rc::new(Expr::typed(ExprKind::Num(-q), Shape::scalar()))),
                Shape::scalar(),
            )
        } else {
            Expr::typed(ExprKind::Num(q), Shape::scalar())
        }
    }

    /// A variable node with an unknown shape.
    pub fn var(name: &str) -> Expr {
        Expr::new(ExprKind::Var(name.to_string()))
    }

    /// The exact constant this node is, if it is a literal or a negated literal.
    pub fn as_constant(&self) -> Option<Rational> {
        match &self.kind {
            ExprKind::Num(q) => Some(q.clone()),
            ExprKind::Neg(inner) => inner.as_constant().map(|q| -q),
            _ => None,
        }
    }

    /// The base and the exponent of `exp(e·log(a))`, how a real power `a^e` is kept
    /// (whatever the shapes and whether or not `e` is a number).
    pub fn real_power_parts(&self) -> Option<(&Rc<Expr>, &Rc<Expr>)> {
        let ExprKind::Func(Func::Exp, product) = &self.kind else {
            return None;
        };
        let ExprKind::Mul(exponent, log) = &product.kind else {
            return None;
        };
        let ExprKind::Func(Func::Log, base) = &log.kind else {
            return None;
        };
        Some((base, exponent))
    }

    /// Whether the node is the literal 0.
    pub fn is_zero(&self) -> bool {
        matches!(&self.kind, ExprKind::Num(q) if q.is_zero())
    }

    /// Whether the node is the literal 1.
    pub fn is_one(&self) -> bool {
        matches!(&self.kind, ExprKind::Num(q) if q.is_one())
    }

    /// The node's children, in order.
    pub fn children(&self) -> Vec<&Rc<Expr>> {
        children_of!(&self.kind)
    }

    /// The node's children, in order, for rebuilding a node in place.
    pub fn children_mut(&mut self) -> Vec<&mut Rc<Expr>> {
        children_of!(&mut self.kind)
    }

    /// The node with each child replaced by `rebuild(child)`; the same shared node, not a
    /// copy, when no child changed (so a DAG stays a DAG through a rewriting walk).
    pub fn map_children(
        self: &Rc<Self>,
        mut rebuild: impl FnMut(&Rc<Expr>) -> Rc<Expr>,
    ) -> Rc<Expr> {
        let mut node = self.as_ref().clone();
        let mut changed = false;
        for child in node.children_mut() {
            let done = rebuild(child);
            if !Rc::ptr_eq(&done, child) {
                *child = done;
                changed = true;
            }
        }
        if changed {
            Rc::new(node)
        } else {
            self.clone()
        }
    }

    /// The depth of the tree (a leaf has depth 1), computed without recursion so that a
    /// hostile tree cannot overflow the stack while being measured.
    pub fn depth(&self) -> usize {
        let mut max_depth = 0;
        let mut stack: Vec<(&Expr, usize)> = vec![(self, 1)];
        while let Some((node, depth)) = stack.pop() {
            max_depth = max_depth.max(depth);
            for child in node.children() {
                stack.push((child, depth + 1));
            }
        }
        max_depth
    }

    /// The number of nodes, counting shared subtrees once per occurrence (the size of the
    /// tree the DAG unfolds to, saturating at `usize::MAX`), in time linear in the DAG.
    pub fn size(&self) -> usize {
        let mut sizes: std::collections::HashMap<*const Expr, usize> =
            std::collections::HashMap::new();
        for node in self.children_first() {
            let size = node.children().into_iter().fold(1usize, |sum, child| {
                sum.saturating_add(sizes[&Rc::as_ptr(child)])
            });
            sizes.insert(node as *const Expr, size);
        }
        sizes[&(self as *const Expr)]
    }

    /// Every node of the DAG once, each after all its children (the root last), without
    /// recursion: the order in which a value computed from the children's values can be
    /// computed for every node.
    pub fn children_first(&self) -> Vec<&Expr> {
        let mut seen: std::collections::HashSet<*const Expr> = std::collections::HashSet::new();
        let mut out: Vec<&Expr> = vec![];
        let mut stack: Vec<(&Expr, bool)> = vec![(self, false)];
        while let Some((node, ready)) = stack.pop() {
            if ready {
                out.push(node);
            } else if seen.insert(node as *const Expr) {
                stack.push((node, true));
                stack.extend(node.children().into_iter().map(|c| (c.as_ref(), false)));
            }
        }
        out
    }

    /// The number of distinct nodes: a subtree shared through [`Rc`] counts once, so this
    /// is what a DAG costs to store and to walk (compare [`Expr::size`]).
    pub fn dag_size(&self) -> usize {
        self.distinct_nodes().len()
    }

    /// Every node of the DAG once (a subtree shared through [`Rc`] is visited once), the
    /// root first, without recursion.
    pub fn distinct_nodes(&self) -> Vec<&Expr> {
        let mut seen: std::collections::HashSet<*const Expr> = std::collections::HashSet::new();
        let mut out: Vec<&Expr> = vec![];
        let mut stack: Vec<&Expr> = vec![self];
        while let Some(node) = stack.pop() {
            if !seen.insert(node as *const Expr) {
                continue;
            }
            out.push(node);
            stack.extend(node.children().into_iter().map(|c| c.as_ref()));
        }
        out
    }

    /// Whether two trees have the same structure, shapes and spans aside: what a printed
    /// tree and the tree parsed back from its text must share. A [`ExprKind::Written`]
    /// node counts as the node inside it.
    pub fn same_structure(&self, other: &Expr) -> bool {
        let leaf = Rc::new(Expr::new(ExprKind::Ones));
        let shell = |expr: &Expr| {
            let mut copy = Expr::new(expr.kind.clone());
            for child in copy.children_mut() {
                *child = leaf.clone();
            }
            copy.kind
        };
        // A notation as written (only in parsed trees) has the structure of what it means.
        let mut stack: Vec<(&Expr, &Expr)> = vec![(self, other)];
        while let Some((a, b)) = stack.pop() {
            let (a, b) = (unwrap_written(a), unwrap_written(b));
            if std::ptr::eq(a, b) {
                continue;
            }
            // `1/4` is printed from the quotient of two numbers and read as one number.
            if let (Some(p), Some(q)) = (number_literal(a), number_literal(b)) {
                if p == q {
                    continue;
                }
            }
            // A size is printed as its name and parsed as a variable of that name, which
            // shape inference reads as the size.
            if let (ExprKind::Size(size), ExprKind::Var(name))
            | (ExprKind::Var(name), ExprKind::Size(size)) = (&a.kind, &b.kind)
            {
                if size == name.as_str() {
                    continue;
                }
            }
            let (left, right) = (a.children(), b.children());
            if left.len() != right.len() || shell(a) != shell(b) {
                return false;
            }
            stack.extend(
                left.into_iter()
                    .zip(right)
                    .map(|(a, b)| (a.as_ref(), b.as_ref())),
            );
        }
        true
    }
}

/// The number a literal reads as: a number, or the quotient of two (`1/4`).
fn number_literal(e: &Expr) -> Option<Rational> {
    match &e.kind {
        ExprKind::Num(q) => Some(q.clone()),
        ExprKind::Div(a, b) => match (&unwrap_written(a).kind, &unwrap_written(b).kind) {
            (ExprKind::Num(p), ExprKind::Num(q)) if !q.is_zero() => Some(p / q),
            _ => None,
        },
        _ => None,
    }
}

/// The node a [`ExprKind::Written`] node stands for (the node itself otherwise).
fn unwrap_written(mut e: &Expr) -> &Expr {
    while let ExprKind::Written(inner, _) = &e.kind {
        e = inner;
    }
    e
}

impl Expr {
    /// Whether the variable `name` (or its differential) occurs in the tree.
    pub fn mentions(&self, name: &str) -> bool {
        // The integer symbol of `Xᵏ` counts: the power depends on it.
        self.distinct_nodes().into_iter().any(|node| {
            matches!(
                &node.kind,
                ExprKind::Var(v) | ExprKind::Differential(v) | ExprKind::PowSym(_, v, _)
                    if v == name
            )
        })
    }

    /// The free variables of the tree, sorted and without repeats.
    pub fn free_vars(&self) -> Vec<Symbol> {
        let mut vars = std::collections::BTreeSet::new();
        for node in self.distinct_nodes() {
            // The integer symbol of `Xᵏ` is a variable too: evaluating the power needs it.
            if let ExprKind::Var(v) | ExprKind::PowSym(_, v, _) = &node.kind {
                vars.insert(v.clone());
            }
        }
        vars.into_iter().collect()
    }
}

/// Hash-consing of typed DAGs: equal subtrees (equal structure *and* shapes: `𝟙ₘ` is not
/// `𝟙ₙ`) get one id. Each distinct `Rc` node is looked at once and keyed by its own
/// operator and its children's ids, so interning costs the DAG's size, never the size of
/// the tree it unfolds to.
#[derive(Debug, Default)]
pub struct Interner {
    // Fx, not SipHash: every operand comparison of the simplifier's passes looks a
    // pointer up here, and the keys are not chosen by an adversary who gains by collisions.
    by_pointer: rustc_hash::FxHashMap<*const Expr, usize>,
    by_key: rustc_hash::FxHashMap<(ExprKind, Shape, Vec<usize>), usize>,
    leaf: Option<Rc<Expr>>,
    count: usize,
}

impl Interner {
    /// An empty interner.
    pub fn new() -> Interner {
        Interner::default()
    }

    /// The id of `expr`: equal for equal subtrees, however they are shared.
    pub fn id(&mut self, expr: &Expr) -> usize {
        match self.id_by(expr, None) {
            Some(id) => id,
            None => unreachable!("only a deadline stops interning"),
        }
    }

    /// [`Interner::id`], or `None` once `deadline` has passed: interning the first
    /// node of a large DAG walks all of it (about a microsecond a node), so a caller
    /// under a time limit asks with its deadline. The nodes interned so far stay.
    pub fn id_by(
        &mut self,
        expr: &Expr,
        deadline: Option<&crate::limits::Deadline>,
    ) -> Option<usize> {
        let leaf = self
            .leaf
            .get_or_insert_with(|| Rc::new(Expr::new(ExprKind::Ones)))
            .clone();
        let mut stack: Vec<(&Expr, bool)> = vec![(expr, false)];
        let mut visited: usize = 0;
        while let Some((node, ready)) = stack.pop() {
            let pointer = node as *const Expr;
            if self.by_pointer.contains_key(&pointer) {
                continue;
            }
            visited += 1;
            if visited.is_multiple_of(256) && deadline.is_some_and(|deadline| deadline.passed()) {
                return None;
            }
            if !ready {
                stack.push((node, true));
                stack.extend(node.children().into_iter().map(|c| (c.as_ref(), false)));
                continue;
            }
            let children: Vec<usize> = node
                .children()
                .into_iter()
                .map(|c| self.by_pointer[&Rc::as_ptr(c)])
                .collect();
            // The operator alone: children replaced by one shared placeholder.
            let mut shell = node.kind.clone();
            let mut holder = Expr::new(shell);
            for child in holder.children_mut() {
                *child = leaf.clone();
            }
            shell = holder.kind;
            let next = self.count;
            let id = *self
                .by_key
                .entry((shell, node.shape.clone(), children))
                .or_insert(next);
            if id == next {
                self.count += 1;
            }
            self.by_pointer.insert(pointer, id);
        }
        self.by_pointer.get(&(expr as *const Expr)).copied()
    }
}

/// What a declaration says about one variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VarDecl {
    /// The declared shape (`W: m×n` gives `m×n`, `x: n` gives `n×1`, `D: scalar` `1×1`).
    pub shape: Shape,
    /// `sym` / `spd`.
    pub props: Props,
}

/// Declarations in force: variable shapes and properties, and opaque scalar functions.
///
/// Parsed from text such as `W: m×n, x: n; K: n×n sym; ℓ: fn` by
/// [`crate::parse::parse_decls`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decls {
    /// Declared variables.
    pub vars: std::collections::BTreeMap<Symbol, VarDecl>,
    /// Declared opaque scalar functions (`ℓ: fn`).
    pub fns: std::collections::BTreeSet<Symbol>,
    /// Sizes known besides those of the variables' shapes: the sizes matcalc named in a
    /// problem for an `I` or `𝟙` that no variable fixes (`n` of `tr(αI)`), which its
    /// printed derivative may use as values (`n`). Like the sizes of the variables, each
    /// reads as its value where a scalar is expected.
    pub sizes: std::collections::BTreeSet<Symbol>,
}

impl Decls {
    /// No declarations.
    pub fn new() -> Decls {
        Decls::default()
    }

    /// Adds every declaration of `other`, later ones winning.
    pub fn extend(&mut self, other: Decls) {
        self.vars.extend(other.vars);
        self.fns.extend(other.fns);
        self.sizes.extend(other.sizes);
    }

    /// Every size the declarations name: of the variables' shapes, and [`Decls::sizes`].
    pub fn size_names(&self) -> std::collections::BTreeSet<&str> {
        self.vars
            .values()
            .flat_map(|decl| [&decl.shape.rows, &decl.shape.cols])
            .flat_map(Dim::symbols)
            .map(|name| name.as_str())
            .chain(self.sizes.iter().map(String::as_str))
            .collect()
    }

    /// The scalars declared integers (`k: int`), the exponents of matrix powers `Xᵏ`.
    pub fn integers(&self) -> std::collections::BTreeSet<Symbol> {
        self.vars
            .iter()
            .filter(|(_, decl)| decl.props.integer && decl.shape.is_scalar())
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// Whether the size `name` can be written as a value (an [`ExprKind::Size`]) among the
/// names `vars` and read back as that size: it is spelt as one identifier (a letter with
/// optional subscript digits or primes, as the declarations spell sizes) and names no
/// variable, `let` or `where` name, which it would read back as.
pub fn readable_size<V>(name: &str, vars: &std::collections::BTreeMap<Symbol, V>) -> bool {
    let mut chars = name.chars();
    let first_is_letter = chars.next().is_some_and(char::is_alphabetic);
    first_is_letter
        && chars.all(|c| matches!(c, '\u{2080}'..='\u{2089}' | '′'))
        && !vars.contains_key(name)
}

/// Builders for typed nodes: each computes the new node's shape from its children's
/// shapes, which must already be known and compatible (these never check; the shape
/// stage does). Later stages use them to build derivatives and rewritten trees.
pub mod build {
    use super::*;

    fn node(kind: ExprKind, shape: Shape) -> Rc<Expr> {
        Rc::new(Expr::typed(kind, shape))
    }

    /// The shape of a broadcasting elementwise result: the non-scalar side's shape.
    fn broadcast(a: &Expr, b: &Expr) -> Shape {
        if a.shape.is_scalar() {
            b.shape.clone()
        } else {
            a.shape.clone()
        }
    }

    /// An exact constant.
    pub fn constant(q: Rational) -> Rc<Expr> {
        Rc::new(Expr::num(q))
    }

    /// An integer constant.
    pub fn int(n: i64) -> Rc<Expr> {
        Rc::new(Expr::int(n))
    }

    /// A variable of the given shape.
    pub fn var(name: &str, shape: Shape) -> Rc<Expr> {
        node(ExprKind::Var(name.to_string()), shape)
    }

    /// The differential `dX` of a variable of the given shape.
    pub fn differential(name: &str, shape: Shape) -> Rc<Expr> {
        node(ExprKind::Differential(name.to_string()), shape)
    }

    /// The `n×n` identity.
    pub fn identity(n: Dim) -> Rc<Expr> {
        node(ExprKind::Identity, Shape::new(n.clone(), n))
    }

    /// The all-ones vector of length `n`.
    pub fn ones(n: Dim) -> Rc<Expr> {
        node(ExprKind::Ones, Shape::vector(n))
    }

    /// The value of the size `n` as a scalar: a number for a known size, a
    /// [`ExprKind::Size`] for a symbol, their product for a product of sizes (`mp`,
    /// `2n`: the number first, then the symbols in order, grouped to the left as a
    /// reader groups `2mp`). `None` for a size not inferred.
    ///
    /// # Examples
    /// ```
    /// use matcalc::{expr::build, Dim};
    /// let mp = Dim::Known(2).times(&Dim::Sym("m".into())).times(&Dim::Sym("p".into()));
    /// assert_eq!(matcalc::print::render(&build::size(&mp).unwrap(), matcalc::print::Style::Unicode), "2mp");
    /// ```
    pub fn size(n: &Dim) -> Option<Rc<Expr>> {
        let factor = |factor: &Dim| match factor {
            Dim::Known(k) => Some(int(i64::try_from(*k).ok()?)),
            Dim::Sym(name) => Some(node(ExprKind::Size(*name), Shape::scalar())),
            Dim::Unknown | Dim::Product(_) => None,
        };
        let mut factors = n.factors().into_iter();
        let first = factor(&factors.next()?)?;
        factors.try_fold(first, |product, next| Some(mul(product, factor(&next)?)))
    }

    /// `−a`.
    pub fn neg(a: Rc<Expr>) -> Rc<Expr> {
        let shape = a.shape.clone();
        node(ExprKind::Neg(a), shape)
    }

    /// `a + b`.
    pub fn add(a: Rc<Expr>, b: Rc<Expr>) -> Rc<Expr> {
        let shape = broadcast(&a, &b);
        node(ExprKind::Add(a, b), shape)
    }

    /// `a − b`.
    pub fn sub(a: Rc<Expr>, b: Rc<Expr>) -> Rc<Expr> {
        let shape = broadcast(&a, &b);
        node(ExprKind::Sub(a, b), shape)
    }

    /// `ab`: a matrix product, or scaling when either side is scalar.
    pub fn mul(a: Rc<Expr>, b: Rc<Expr>) -> Rc<Expr> {
        let shape = if a.shape.is_scalar() {
            b.shape.clone()
        } else if b.shape.is_scalar() {
            a.shape.clone()
        } else {
            Shape::new(a.shape.rows.clone(), b.shape.cols.clone())
        };
        node(ExprKind::Mul(a, b), shape)
    }

    /// `a / b`.
    pub fn div(a: Rc<Expr>, b: Rc<Expr>) -> Rc<Expr> {
        let shape = broadcast(&a, &b);
        node(ExprKind::Div(a, b), shape)
    }

    /// `a ⊙ b`.
    pub fn hadamard(a: Rc<Expr>, b: Rc<Expr>) -> Rc<Expr> {
        let shape = broadcast(&a, &b);
        node(ExprKind::Hadamard(a, b), shape)
    }

    /// `aᵀ`.
    pub fn transpose(a: Rc<Expr>) -> Rc<Expr> {
        let shape = a.shape.transposed();
        node(ExprKind::Transpose(a), shape)
    }

    /// `a⁻¹`.
    pub fn inverse(a: Rc<Expr>) -> Rc<Expr> {
        let shape = a.shape.clone();
        node(ExprKind::Inverse(a), shape)
    }

    /// `aᵏ`; for k = −1 the inverse, as the parser reads `a⁻¹` (a [`ExprKind::Pow`]
    /// with exponent −1 would print as a text that reads back as another tree).
    pub fn pow(a: Rc<Expr>, k: i64) -> Rc<Expr> {
        if k == -1 {
            return inverse(a);
        }
        let shape = a.shape.clone();
        node(ExprKind::Pow(a, k), shape)
    }

    /// `tr(a)`.
    pub fn trace(a: Rc<Expr>) -> Rc<Expr> {
        node(ExprKind::Trace(a), Shape::scalar())
    }

    /// `det(a)`.
    pub fn det(a: Rc<Expr>) -> Rc<Expr> {
        node(ExprKind::Det(a), Shape::scalar())
    }

    /// `log|a|`.
    pub fn logdet(a: Rc<Expr>) -> Rc<Expr> {
        node(ExprKind::LogDet(a), Shape::scalar())
    }

    /// `‖a‖²`.
    pub fn norm_sq(a: Rc<Expr>) -> Rc<Expr> {
        node(ExprKind::NormSq(a), Shape::scalar())
    }

    /// `diag(a)`: vector to diagonal matrix, or square matrix to its diagonal.
    pub fn diag(a: Rc<Expr>) -> Rc<Expr> {
        let shape = if a.shape.cols.is_one() {
            Shape::new(a.shape.rows.clone(), a.shape.rows.clone())
        } else {
            Shape::vector(a.shape.rows.clone())
        };
        node(ExprKind::Diag(a), shape)
    }

    /// `sum(a)`.
    pub fn sum(a: Rc<Expr>) -> Rc<Expr> {
        node(ExprKind::Sum(a), Shape::scalar())
    }

    /// An elementwise function.
    pub fn func(f: Func, a: Rc<Expr>) -> Rc<Expr> {
        let shape = a.shape.clone();
        node(ExprKind::Func(f, a), shape)
    }

    /// `‖a‖` or `‖a‖₁`.
    pub fn norm(a: Rc<Expr>, kind: NormKind) -> Rc<Expr> {
        node(ExprKind::Norm(a, kind), Shape::scalar())
    }

    /// `a ⊘ b`.
    pub fn elem_div(a: Rc<Expr>, b: Rc<Expr>) -> Rc<Expr> {
        let shape = broadcast(&a, &b);
        node(ExprKind::ElemDiv(a, b), shape)
    }

    /// `a^{∘k}`.
    pub fn elem_pow(a: Rc<Expr>, k: Rational) -> Rc<Expr> {
        let shape = a.shape.clone();
        node(ExprKind::ElemPow(a, k), shape)
    }

    /// `a^{k+offset}` for an integer symbol `k`.
    pub fn pow_sym(a: Rc<Expr>, k: &str, offset: i64) -> Rc<Expr> {
        let shape = a.shape.clone();
        node(ExprKind::PowSym(a, k.to_string(), offset), shape)
    }

    /// `softmax(a)`.
    pub fn softmax(a: Rc<Expr>) -> Rc<Expr> {
        let shape = a.shape.clone();
        node(ExprKind::Softmax(a), shape)
    }

    /// `logsumexp(a)`.
    pub fn logsumexp(a: Rc<Expr>) -> Rc<Expr> {
        node(ExprKind::LogSumExp(a), Shape::scalar())
    }

    /// An opaque scalar function applied: `ℓ(v)`.
    pub fn apply(name: &str, a: Rc<Expr>) -> Rc<Expr> {
        node(ExprKind::Apply(name.to_string(), a), Shape::scalar())
    }

    /// The gradient of an opaque function: `∇ℓ(v)`, shaped like `v`.
    pub fn grad(name: &str, a: Rc<Expr>) -> Rc<Expr> {
        let shape = a.shape.clone();
        node(ExprKind::Grad(name.to_string(), a), shape)
    }

    /// `a ⊗ b`: `mp × nq` for `a: m×n`, `b: p×q`.
    pub fn kron(a: Rc<Expr>, b: Rc<Expr>) -> Rc<Expr> {
        let shape = Shape::new(
            a.shape.rows.times(&b.shape.rows),
            a.shape.cols.times(&b.shape.cols),
        );
        node(ExprKind::Kron(a, b), shape)
    }

    /// `vec(a)`: `mn × 1` for `a: m×n`.
    pub fn vec(a: Rc<Expr>) -> Rc<Expr> {
        let shape = Shape::vector(a.shape.rows.times(&a.shape.cols));
        node(ExprKind::Vectorize(a), shape)
    }

    /// The commutation matrix `K₍ₘ,ₙ₎`, `mn × mn`, with `K₍ₘ,ₙ₎ vec(A) = vec(Aᵀ)` for `A: m×n`.
    pub fn commutation(m: Dim, n: Dim) -> Rc<Expr> {
        let size = m.times(&n);
        node(ExprKind::Commutation(m, n), Shape::new(size.clone(), size))
    }
}
