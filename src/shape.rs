//! Shape inference: gives every node of an [`Expr`] its [`Shape`], or returns the first
//! conflict with both operands' spans. Sizes unify symbolically, so `W: m×n` and `x: n`
//! give `Wx: m×1`.
//!
//! # The rules
//!
//! Every size is a variable of a union-find structure. Declared sizes (`m`, `3`) and the
//! `1` of a column vector are rigid; all other sizes are free until unified.
//!
//! * Without a declaration, an upper-case letter (Latin or Greek: `W`, `Σ`) is a matrix
//!   `rows×cols`, a lower-case Latin letter a column vector `n×1`, and a lower-case Greek
//!   letter (or `ℓ`) a scalar. Subscripts and primes follow the base letter. `I` is a
//!   square matrix and `𝟙` a column vector, each of inferred size.
//! * `ab` is scaling when either side is currently `1×1`, otherwise a matrix product that
//!   unifies `a.cols` with `b.rows`. A product never turns a free size into 1: `zw` of two
//!   column vectors is an error, never an inner product of 1-vectors.
//! * `a + b`, `a − b` broadcast a scalar side (`1 − σ(z)` keeps `z` a vector); otherwise
//!   both shapes unify. `a ⊙ b` and `a ⊘ b` need equal shapes or a scalar side; `a / b`
//!   a scalar denominator (`x/2` scales).
//! * A free size of a default-typed letter never becomes 1, in a sum, an elementwise
//!   operation or a Kronecker factor alike: that would silently make the letter another
//!   kind of object. So `xxᵀ ⊙ Cy` is an error whose hint names the declarations that
//!   would give that reading (`C: 1×m, x: scalar`), never `x` read as a scalar; only
//!   scalar forcing, below, makes letters scalars.
//! * `aᵀ` swaps; `a⁻¹`, `aᵏ`, `tr`, `det`, `log|·|` need a square argument; `tr`, `det`,
//!   `log|·|`, `‖·‖²`, `sum` and `ℓ(v)` are scalars; `diag` maps `n×1` to `n×n` and `n×n`
//!   to `n×1`; elementwise functions and `∇ℓ(v)` keep the argument's shape.
//! * Scalar forcing: after a first pass (in which, if the expression types no other way,
//!   sums may still make letters scalars), every sum `a ± b` whose one side is a scalar
//!   (other than a bare numeric constant) and whose other side is *leaf-like* — a
//!   default-typed variable, possibly negated or scaled by scalar factors (`−c`, `D/2 ·
//!   log|K|`), or a sum of such terms — still shaped only by free sizes, makes those
//!   variables scalars, provided none of their sizes is tied to anything outside that
//!   side (another variable, `I`, `𝟙`, or the inner dimension of a product). The pass is
//!   repeated with those variables pinned to `1×1`, and that pass must type with no
//!   other letter's size made 1. So in `−c − D/2 log|K| − ½ tr(…)`
//!   both `c` and `D` are scalars, while `1 − σ(W₁x + b₁)` keeps its vectors.
//! * Sizes left free are named by descending number of uses over all nodes (ties by
//!   first appearance) from `n, m, p, q, r, s, t, k, l, d₁, d₂, …`, skipping the size
//!   symbols the declarations use.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::rc::Rc;

use crate::diag::Diagnostic;
use crate::expr::{Decls, Dim, Expr, ExprKind, Props, Shape, Span, Symbol, VarDecl, WrittenAs};

/// A shape-checked expression: the tree with every node's shape filled in, and what is
/// known about each of its variables.
#[derive(Clone, Debug)]
pub struct Typed {
    /// The tree, every node's `shape` known (no [`crate::Dim::Unknown`] left).
    pub expr: Expr,
    /// Every variable of the tree (and every declared one), with its shape and properties.
    pub vars: BTreeMap<Symbol, VarDecl>,
    /// Opaque scalar functions in force.
    pub fns: BTreeSet<Symbol>,
}

/// The binary operation whose operand shapes clash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// A matrix product or scaling, `ab`.
    Multiply,
    /// `a + b`.
    Add,
    /// `a − b`.
    Subtract,
    /// `a / b`.
    Divide,
    /// `a ⊙ b`.
    Hadamard,
    /// `a ⊘ b`.
    ElemDivide,
}

impl Op {
    /// The one-line message for operands of shapes `lhs` and `rhs`.
    fn message(self, lhs: &Shape, rhs: &Shape) -> String {
        match self {
            Op::Multiply => format!("cannot multiply {lhs} by {rhs}"),
            Op::Add => format!("cannot add {lhs} and {rhs}"),
            Op::Subtract => format!("cannot subtract {rhs} from {lhs}"),
            Op::Divide => format!("cannot divide {lhs} by {rhs}"),
            Op::Hadamard => format!("cannot take the elementwise product of {lhs} and {rhs}"),
            Op::ElemDivide => format!("cannot divide {lhs} elementwise by {rhs}"),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Op::Multiply => "product",
            Op::Add => "sum",
            Op::Subtract => "difference",
            Op::Divide => "division",
            Op::Hadamard => "elementwise product",
            Op::ElemDivide => "elementwise division",
        };
        f.write_str(name)
    }
}

/// One operand of a failed operation, as the error reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operand {
    /// Where it is in the source (`None` for built nodes).
    pub span: Option<Span>,
    /// Its shape, with free sizes named.
    pub shape: Shape,
}

/// A shape error. Shapes inside are resolved with the names the free sizes would get,
/// so messages read `n×1`, never an internal variable. Spans are `None` for nodes built
/// by later stages rather than parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The operands of a binary operation have incompatible shapes.
    Mismatch {
        /// Which operation.
        op: Op,
        /// The left operand.
        lhs: Box<Operand>,
        /// The right operand.
        rhs: Box<Operand>,
        /// Suggestions (`did you mean ⊙?`), possibly none.
        hints: Vec<String>,
    },
    /// The operands clash because two declared (or numeric) sizes would have to be equal.
    DeclConflict {
        /// Which operation.
        op: Op,
        /// The left operand.
        lhs: Box<Operand>,
        /// The right operand.
        rhs: Box<Operand>,
        /// The two rigid sizes that would have to be equal.
        sizes: Box<(Dim, Dim)>,
        /// Suggestions, possibly none.
        hints: Vec<String>,
    },
    /// An operation that needs a square matrix got another shape.
    NotSquare {
        /// What needs the square matrix (`the inverse`, `the trace`, …).
        what: &'static str,
        /// The argument as written (`X`, `WᵀW`).
        operand: String,
        /// The argument's span.
        span: Option<Span>,
        /// The argument's shape.
        shape: Box<Shape>,
        /// Suggestions, possibly none.
        hints: Vec<String>,
    },
    /// `ℓ(v)` or `∇ℓ(v)` of a name not declared as a function.
    UnknownFunction {
        /// The name.
        name: Symbol,
        /// The application's span.
        span: Option<Span>,
    },
    /// `x(v)` or `∇x(v)` of a name declared as a variable.
    NotAFunction {
        /// The name.
        name: Symbol,
        /// The application's span.
        span: Option<Span>,
    },
    /// The sizes of a Kronecker product or `vec` cannot be made to agree with how the
    /// result is used: the product of the factors' sizes differs from a size it is unified
    /// with, or a factor's size cannot be told from the product's.
    ProductSize {
        /// The operation, as written (`A ⊗ B`, `vec(A)`).
        operand: String,
        /// Its span.
        span: Option<Span>,
        /// What is wrong, as a phrase.
        what: String,
    },
    /// A symbolic exponent (`Xᵏ`) whose symbol is not declared an integer (`k: int`).
    NotAnInteger {
        /// The exponent's symbol.
        name: Symbol,
        /// The power's span.
        span: Option<Span>,
    },
    /// A notation refused for its argument's shape: a non-integer power without `∘` of a
    /// non-scalar (`A^{1/2}` is a matrix root, never silently an elementwise power), or a
    /// written `‖·‖₂`, `‖·‖₁` of a matrix (the spectral and induced norms).
    Notation {
        /// Which notation.
        notation: WrittenAs,
        /// The notation as written, for the message (`A^{1/2}`, `‖X‖₂`).
        written: String,
        /// The argument as written.
        operand: String,
        /// The notation's span.
        span: Option<Span>,
        /// The argument's shape.
        shape: Box<Shape>,
        /// Whether the argument is a variable typed by its letter alone, which a
        /// declaration could make a scalar.
        default_typed: bool,
    },
    /// A name the declarations use as a size (`n` in `X: m×n`), not declared as a
    /// variable, that the expression uses as a vector or matrix: read as the size it
    /// would be a scalar, read as a variable another thing, and neither is chosen
    /// silently.
    SizeAsVariable {
        /// The name.
        name: Symbol,
        /// Its first use.
        span: Option<Span>,
        /// Its shape as a variable.
        shape: Box<Shape>,
        /// A declaration that makes it a size (`X: m×n`).
        declared_in: String,
    },
    /// A vector function (`softmax`, `logsumexp`) of something that is not a vector.
    NotAVector {
        /// What needs the vector (`softmax`).
        what: &'static str,
        /// The argument as written.
        operand: String,
        /// The argument's span.
        span: Option<Span>,
        /// The argument's shape.
        shape: Box<Shape>,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl Error {
    /// The one-line message (`cannot multiply n×1 by n×1`).
    pub fn message(&self) -> String {
        match self {
            Error::Mismatch { op, lhs, rhs, .. } | Error::DeclConflict { op, lhs, rhs, .. } => {
                op.message(&lhs.shape, &rhs.shape)
            }
            Error::NotSquare { operand, shape, .. } => format!("{operand} is {shape}, not square"),
            Error::UnknownFunction { name, .. } => format!("unknown function `{name}`"),
            Error::NotAFunction { name, .. } => {
                format!("`{name}` is declared as a variable, not a function")
            }
            Error::ProductSize { operand, what, .. } => format!("{operand}: {what}"),
            Error::NotAnInteger { name, .. } => {
                format!("the exponent `{name}` is not declared an integer")
            }
            Error::NotAVector {
                what,
                operand,
                shape,
                ..
            } => format!("{what} needs a vector, but {operand} is {shape}"),
            Error::SizeAsVariable {
                name,
                shape,
                declared_in,
                ..
            } => format!(
                "`{name}` is a size (`{declared_in}`) but is used here as a {shape} variable"
            ),
            Error::Notation {
                notation,
                written,
                operand,
                shape,
                ..
            } => match notation {
                WrittenAs::PlainPower if !shape.rows.is_one() && !shape.cols.is_one() => format!(
                    "unsupported: {written} is a matrix root, a non-integer power of the \
                     {shape} matrix {operand}"
                ),
                WrittenAs::PlainPower => format!(
                    "{written} is a non-integer power of {operand}, which is {shape}: \
                     without ∘ a non-integer power needs a scalar"
                ),
                WrittenAs::RealPower => format!(
                    "{written} is a real power, but {operand} is {shape}: the base and the \
                     exponent of a power with a symbolic exponent must be scalars"
                ),
                WrittenAs::Spread => format!("{written} needs a scalar, but {operand} is {shape}"),
                _ if written.ends_with('₁') || written.contains("₁²") => format!(
                    "unsupported: {written} of the {shape} matrix {operand} is the induced \
                     1-norm (the largest column sum of |{operand}|)"
                ),
                _ => format!(
                    "unsupported: {written} of the {shape} matrix {operand} is the spectral \
                     norm (its largest singular value)"
                ),
            },
        }
    }

    /// The hints this error carries.
    pub fn hints(&self) -> Vec<String> {
        match self {
            Error::Mismatch { hints, .. } => hints.clone(),
            Error::DeclConflict { sizes, hints, .. } => {
                let mut all = hints.clone();
                all.push(format!(
                    "the declared sizes {} and {} differ",
                    sizes.0, sizes.1
                ));
                all
            }
            Error::NotSquare { what, hints, .. } => {
                let mut all = hints.clone();
                all.push(format!("{what} needs a square matrix"));
                all
            }
            Error::UnknownFunction { name, .. } => {
                vec![format!("declare it with `{name}: fn`")]
            }
            Error::NotAFunction { name, .. } => vec![format!(
                "write `{name} · (…)` for a product, or declare `{name}: fn`"
            )],
            Error::ProductSize { .. } => {
                vec!["declare the factors' sizes (`A: m×n, B: p×q`)".to_string()]
            }
            Error::NotAnInteger { name, .. } => vec![
                format!("declare it with `{name}: int`"),
                "a real power needs a scalar base: of a matrix, the exponent must be an integer"
                    .to_string(),
            ],
            Error::NotAVector { .. } => {
                vec!["apply it to a column vector, or to each column separately".to_string()]
            }
            Error::SizeAsVariable { name, .. } => vec![
                format!("where only a scalar fits, a size is its value (`sum(X)/{name}`, `sum(X) − {name}`)"),
                format!("for a variable named `{name}`, declare it (`{name}: p`) or rename it"),
            ],
            Error::Notation {
                notation,
                written,
                operand,
                default_typed,
                shape,
                ..
            } => match notation {
                WrittenAs::PlainPower => {
                    let exponent = written.rsplit_once("^{").map_or("", |(_, e)| e);
                    let mut hints = vec![format!(
                        "for the elementwise power write {}^{{∘{exponent}",
                        written.rsplit_once("^{").map_or(written.as_str(), |(base, _)| base)
                    )];
                    if *default_typed && (shape.rows.is_one() || shape.cols.is_one()) {
                        hints.push(format!(
                            "if {operand} is a number, declare it: `{operand}: scalar`"
                        ));
                    }
                    hints.push("matrix roots and fractional matrix powers are not supported".to_string());
                    hints
                }
                WrittenAs::RealPower => {
                    let mut hints = vec![];
                    if *default_typed {
                        hints.push(format!(
                            "if {operand} is a number, declare it: `{operand}: scalar`"
                        ));
                    }
                    hints.push(
                        "elementwise, a power with a symbolic exponent e is exp(e log(x)) \
                         (for x > 0)"
                            .to_string(),
                    );
                    hints.push(
                        "a matrix power takes an integer exponent or a declared integer \
                         symbol plus or minus an integer (Xᵏ, X^{k−1} with `k: int`); \
                         other exponents (2k, −k, k²) are not supported"
                            .to_string(),
                    );
                    hints
                }
                WrittenAs::Spread => {
                    let mut hints = vec![
                        "vector(c) is c𝟙 and matrix(c) is c𝟙𝟙ᵀ for a number c (matrixcalculus.org's words)"
                            .to_string(),
                    ];
                    if *default_typed {
                        hints.push(format!(
                            "if {operand} is a number, declare it: `{operand}: scalar`"
                        ));
                    }
                    hints
                }
                _ if written.contains('₁') => vec![format!(
                    "for the sum of the entries' absolute values write norm1({operand}) or sum(abs({operand}))"
                )],
                _ => vec![format!(
                    "for the Frobenius norm write ‖{operand}‖_F or ‖{operand}‖"
                )],
            },
        }
    }

    /// The error as a person reads it: message, both operands labelled with their
    /// shapes, and hints. Operands without a span are left unlabelled.
    pub fn diagnostic(&self) -> Diagnostic {
        let mut diagnostic = Diagnostic::new(self.message());
        match self {
            Error::Mismatch { lhs, rhs, .. } | Error::DeclConflict { lhs, rhs, .. } => {
                match (lhs.span, rhs.span) {
                    (Some(left), Some(right)) => {
                        diagnostic = diagnostic
                            .at(left, lhs.shape.to_string())
                            .label(right, rhs.shape.to_string());
                    }
                    (Some(left), None) => diagnostic = diagnostic.at(left, lhs.shape.to_string()),
                    (None, Some(right)) => diagnostic = diagnostic.at(right, rhs.shape.to_string()),
                    (None, None) => {}
                }
            }
            Error::NotSquare { span, shape, .. } => {
                if let Some(span) = span {
                    diagnostic = diagnostic.at(*span, shape.to_string());
                }
            }
            Error::UnknownFunction { span, .. }
            | Error::NotAFunction { span, .. }
            | Error::ProductSize { span, .. }
            | Error::NotAnInteger { span, .. } => {
                if let Some(span) = span {
                    diagnostic = diagnostic.at(*span, "");
                }
            }
            Error::NotAVector { span, shape, .. }
            | Error::Notation { span, shape, .. }
            | Error::SizeAsVariable { span, shape, .. } => {
                if let Some(span) = span {
                    diagnostic = diagnostic.at(*span, shape.to_string());
                }
            }
        }
        for hint in self.hints() {
            diagnostic = diagnostic.hint(hint);
        }
        diagnostic
    }
}

/// Infers the shape of every node in `expr`.
///
/// Returns the same tree (same structure, same spans) with every shape known, every
/// variable's resolved shape and properties, and the declared functions. The rules are
/// listed in the [module documentation](self).
///
/// # Examples
/// ```
/// use std::rc::Rc;
/// use matcalc::{Decls, Expr, ExprKind};
/// // W x, with no declarations: W is a matrix and x a vector.
/// let product = Expr::new(ExprKind::Mul(Rc::new(Expr::var("W")), Rc::new(Expr::var("x"))));
/// let typed = matcalc::shape::infer(&product, &Decls::new()).unwrap();
/// // Both sizes are used equally often, so the first to appear is named n.
/// assert_eq!(typed.expr.shape.to_string(), "n×1");
/// assert_eq!(typed.vars["W"].shape.to_string(), "n×m");
/// assert_eq!(typed.vars["x"].shape.to_string(), "m×1");
/// ```
pub fn infer(expr: &Expr, decls: &Decls) -> Result<Typed, Error> {
    infer_within(expr, decls, None)
}

/// Infers the shape of every node in `expr` as [`infer`] does, where the whole is known to
/// be `expected`: sizes left free by the expression alone (of `𝟙𝟙ᵀ`, `I`) take the
/// expected ones. A shape that cannot be `expected` is left as inferred, for the caller
/// to report.
///
/// # Examples
/// ```
/// use std::rc::Rc;
/// use matcalc::{Decls, Dim, Expr, ExprKind, Shape};
/// let ones = Rc::new(Expr::new(ExprKind::Ones));
/// let outer = Expr::new(ExprKind::Mul(ones.clone(), Rc::new(Expr::new(ExprKind::Transpose(ones)))));
/// let n = Dim::Sym("n".into());
/// let typed = matcalc::shape::infer_as(&outer, &Decls::new(), &Shape::new(n.clone(), n)).unwrap();
/// assert_eq!(typed.expr.shape.to_string(), "n×n");
/// ```
pub fn infer_as(expr: &Expr, decls: &Decls, expected: &Shape) -> Result<Typed, Error> {
    infer_within(expr, decls, Some(expected))
}

/// Infers `expr` as [`infer_as`] does, reading sizes as values: a name the
/// declarations use as a size (`n` in `X: m×n`) and do not declare as a variable or a
/// function is that size's value where a scalar is expected (`sum(X)/n`), as a reader
/// takes it. The expression is first typed as if such names were undeclared variables;
/// if that reading uses one of them as a vector or a matrix (`nᵀx`, `Xn`; see
/// [`used_as_a_vector`]), the name would mean two things and it is an error
/// ([`Error::SizeAsVariable`]); otherwise (no such use, or no reading as variables
/// types) the names are sizes.
fn infer_within(expr: &Expr, decls: &Decls, expected: Option<&Shape>) -> Result<Typed, Error> {
    infer_sizes_as_values(expr, decls, expected)
        .map_err(|error| with_vector_reading_hint(expr, decls, expected, error))
}

/// `error` with a hint naming a Greek letter that, declared a vector, makes `expr` type:
/// papers write vectors in Greek (`‖y − Xβ‖²`, `Σ⁻¹μ`) where matcalc's default reads a
/// scalar, and the hint that fits is then about the Greek letter, not the matrix beside
/// it. Only declarations that type are offered: each undeclared Greek letter (a few) as a
/// vector of each size the error names, columns first.
fn with_vector_reading_hint(
    expr: &Expr,
    decls: &Decls,
    expected: Option<&Shape>,
    mut error: Error,
) -> Error {
    let (Error::Mismatch {
        lhs, rhs, hints, ..
    }
    | Error::DeclConflict {
        lhs, rhs, hints, ..
    }) = &mut error
    else {
        return error;
    };
    let mut sizes: Vec<Dim> = vec![];
    // Columns first: the letter is most often the vector a matrix multiplies (`Xβ`).
    for dim in [
        &rhs.shape.cols,
        &lhs.shape.cols,
        &lhs.shape.rows,
        &rhs.shape.rows,
    ] {
        if matches!(dim, Dim::Sym(_)) && !sizes.contains(dim) {
            sizes.push(dim.clone());
        }
    }
    let mut greek: Vec<Symbol> = vec![];
    for node in expr.distinct_nodes() {
        if let ExprKind::Var(name) = &node.kind {
            let undeclared = !decls.vars.contains_key(name) && !decls.fns.contains(name);
            if undeclared
                && matches!(default_kind(name), DefaultKind::Scalar)
                && !greek.contains(name)
            {
                greek.push(name.clone());
            }
        }
    }
    for name in greek.iter().take(3) {
        for size in &sizes {
            let mut trial = decls.clone();
            let shape = Shape::vector(size.clone());
            trial.vars.insert(
                name.clone(),
                VarDecl {
                    shape,
                    props: Props::default(),
                },
            );
            if infer_sizes_as_values(expr, &trial, expected).is_ok() {
                hints.insert(
                    0,
                    format!("if `{name}` is a vector, declare it: `{name}: {size}` (undeclared, a Greek letter is a scalar)"),
                );
                return error;
            }
        }
    }
    error
}

/// [`infer_within`] without its hints.
fn infer_sizes_as_values(
    expr: &Expr,
    decls: &Decls,
    expected: Option<&Shape>,
) -> Result<Typed, Error> {
    let sizes = sizes_as_values(expr, decls);
    if sizes.is_empty() {
        return infer_reading(expr, decls, expected);
    }
    let as_sizes = |error: Option<Error>| {
        let read = with_sizes_as_values(&Rc::new(expr.clone()), &sizes, &mut HashMap::new());
        infer_reading(&read, decls, expected).map_err(|other| error.unwrap_or(other))
    };
    match infer_reading(expr, decls, expected) {
        Err(error) => as_sizes(Some(error)),
        Ok(typed) => match used_as_a_vector(&typed.expr, &sizes) {
            None => as_sizes(None),
            Some(name) => Err(Error::SizeAsVariable {
                name: name.clone(),
                span: first_use(expr, &name),
                shape: Box::new(typed.vars[&name].shape.clone()),
                declared_in: declaring(decls, &name),
            }),
        },
    }
}

/// The first of `sizes` that the typed `expr`, reading them as variables, uses as a
/// vector or a matrix: a value made from it alone (by negation, scaling, sums with
/// scalars, elementwise functions: `α n`, `n/2`, `log(n) − 1`) means the same of a
/// scalar, so it is a size's value there too; one that something else takes as a
/// vector or matrix (`nᵀx`, `Xn`, `‖n‖`, `n ⊙ x`) would mean another thing.
fn used_as_a_vector(expr: &Expr, sizes: &BTreeSet<Symbol>) -> Option<Symbol> {
    use ExprKind::*;
    // For each distinct node, the size it is made from alone, if any.
    let mut made_of: HashMap<*const Expr, Option<Symbol>> = HashMap::new();
    for node in expr.children_first() {
        let of = |child: &Rc<Expr>| made_of.get(&Rc::as_ptr(child)).cloned().flatten();
        let derived = match &node.kind {
            Var(name) if sizes.contains(name) => Some(name.clone()),
            Neg(a) | Func(_, a) | ElemPow(a, _) => of(a),
            Add(a, b) | Sub(a, b) | Mul(a, b) | Div(a, b) | Hadamard(a, b) | ElemDiv(a, b) => {
                let side = |x: &Rc<Expr>, y: &Rc<Expr>| {
                    of(x).filter(|_| y.shape.is_scalar() || of(y).is_some())
                };
                side(a, b).or_else(|| side(b, a))
            }
            _ => None,
        };
        if derived.is_none() {
            for child in node.children() {
                if let Some(name) = of(child).filter(|_| !child.shape.is_scalar()) {
                    return Some(name);
                }
            }
        }
        made_of.insert(node as *const Expr, derived);
    }
    None
}

/// The variables of `expr` that read as sizes: names the declarations use as sizes and
/// declare as nothing else.
fn sizes_as_values(expr: &Expr, decls: &Decls) -> BTreeSet<Symbol> {
    let declared_sizes = decls.size_names();
    if declared_sizes.is_empty() {
        return BTreeSet::new();
    }
    let mut res = BTreeSet::new();
    for node in expr.distinct_nodes() {
        if let ExprKind::Var(name) = &node.kind {
            let declared = decls.vars.contains_key(name) || decls.fns.contains(name);
            if !declared && declared_sizes.contains(name.as_str()) {
                res.insert(name.clone());
            }
        }
    }
    res
}

/// `expr` with each variable named in `sizes` replaced by the size's value, spans kept;
/// shared subtrees stay shared (`done` remembers each rebuilt node).
fn with_sizes_as_values(
    expr: &Rc<Expr>,
    sizes: &BTreeSet<Symbol>,
    done: &mut HashMap<*const Expr, Rc<Expr>>,
) -> Rc<Expr> {
    if let Some(rebuilt) = done.get(&Rc::as_ptr(expr)) {
        return rebuilt.clone();
    }
    let res = match &expr.kind {
        ExprKind::Var(name) if sizes.contains(name) => Rc::new(Expr {
            kind: ExprKind::Size(name.into()),
            span: expr.span,
            shape: expr.shape.clone(),
        }),
        _ => expr.map_children(|child| with_sizes_as_values(child, sizes, done)),
    };
    done.insert(Rc::as_ptr(expr), res.clone());
    res
}

/// The span of the first use of the variable `name` that has one.
fn first_use(expr: &Expr, name: &str) -> Option<Span> {
    expr.distinct_nodes()
        .into_iter()
        .filter(|node| matches!(&node.kind, ExprKind::Var(v) if v == name))
        .filter_map(|node| node.span)
        .min()
}

/// A declaration that uses the size `name`, as written in a message (`X: m×n`).
fn declaring(decls: &Decls, name: &str) -> String {
    decls
        .vars
        .iter()
        .find(|(_, decl)| {
            [&decl.shape.rows, &decl.shape.cols]
                .iter()
                .any(|dim| dim.symbols().iter().any(|size| size.as_str() == name))
        })
        .map(|(var, decl)| match decl.shape.is_scalar() {
            true => format!("{var}: scalar"),
            false => format!("{var}: {}", decl.shape),
        })
        .unwrap_or_else(|| name.to_string())
}

/// [`infer_within`] for one reading of the names.
fn infer_reading(expr: &Expr, decls: &Decls, expected: Option<&Shape>) -> Result<Typed, Error> {
    let strict = Pass::run(expr, decls, &BTreeSet::new(), expected, true);
    // A sum of default-typed letters with a scalar (`−c − D/2 log|K| − ½ tr(…)`) may only
    // type once scalar forcing has pinned them; forcing then looks at a first reading in
    // which sums may still make such letters scalars. The reading that counts is the
    // strict one with those pins, so nothing else is ever made a scalar silently.
    let (mut pass, strict_error) = match strict {
        Ok(pass) => (pass, None),
        Err(error) => match Pass::run(expr, decls, &BTreeSet::new(), expected, false) {
            Ok(pass) => (pass, Some(error)),
            Err(_) => return Err(error),
        },
    };
    let mut pinned = BTreeSet::new();
    // Pinning can expose further sums with a scalar side; a handful of rounds reaches the
    // fixed point for any realistic input, and each round only adds variables.
    for _round in 0..8 {
        let newly_pinned = pass.scalar_forcing(expr);
        if newly_pinned.is_subset(&pinned) {
            break;
        }
        pinned.extend(newly_pinned);
        match Pass::run(expr, decls, &pinned, expected, pass.strict) {
            Ok(next) => pass = next,
            // Forcing is a refinement: if it cannot be typed, keep the first reading.
            Err(_) => break,
        }
    }
    if let Some(error) = strict_error {
        pass = Pass::run(expr, decls, &pinned, expected, true).map_err(|_| error)?;
    }
    Ok(pass.finish(expr))
}

/// Infers `expr`'s shape with every variable typed by `vars` (functions are taken to be
/// whatever `expr` applies), returning the root's shape. Later stages use it to re-type
/// a rewritten tree against the variables of an existing [`Typed`].
pub fn shape_of(expr: &Expr, vars: &BTreeMap<Symbol, VarDecl>) -> Result<Shape, Error> {
    let mut fns = BTreeSet::new();
    let mut stack = vec![expr];
    while let Some(node) = stack.pop() {
        if let ExprKind::Apply(name, _) | ExprKind::Grad(name, _) = &node.kind {
            fns.insert(name.clone());
        }
        stack.extend(node.children().into_iter().map(|child| child.as_ref()));
    }
    let decls = Decls {
        vars: vars.clone(),
        fns,
        sizes: BTreeSet::new(),
    };
    infer(expr, &decls).map(|typed| typed.expr.shape)
}

/// A failed unification: the two rigid values that clash (`None` for a free size that
/// may not become 1 here).
#[derive(Clone, Debug)]
struct Clash {
    left: Option<Dim>,
    right: Option<Dim>,
}

/// Size variables with union-find. A class may carry a rigid value (`Known` or `Sym`).
#[derive(Clone, Debug, Default)]
struct Sizes {
    parent: Vec<usize>,
    value: Vec<Option<Dim>>,
    /// Whether the class was the inner dimension of a matrix product.
    product_tied: Vec<bool>,
    /// Whether the class holds a size of a variable typed by its letter alone: it never
    /// becomes 1, which would silently make that letter another kind of object (a vector
    /// a scalar, a matrix a vector); only scalar forcing, by pinning, may do that.
    letter_tied: Vec<bool>,
    /// An upper bound on the height of the class's tree.
    rank: Vec<u8>,
}

impl Sizes {
    fn fresh(&mut self) -> usize {
        self.parent.push(self.parent.len());
        self.value.push(None);
        self.product_tied.push(false);
        self.letter_tied.push(false);
        self.rank.push(0);
        self.parent.len() - 1
    }

    /// A free size of a default-typed variable (see [`Sizes::letter_tied`]).
    fn letter(&mut self) -> usize {
        let id = self.fresh();
        self.letter_tied[id] = true;
        id
    }

    fn rigid(&mut self, dim: Dim) -> usize {
        let id = self.fresh();
        if dim != Dim::Unknown {
            self.value[id] = Some(dim);
        }
        id
    }

    fn one(&mut self) -> usize {
        self.rigid(Dim::one())
    }

    fn find(&self, mut id: usize) -> usize {
        while self.parent[id] != id {
            id = self.parent[id];
        }
        id
    }

    fn value_of(&self, id: usize) -> Option<&Dim> {
        self.value[self.find(id)].as_ref()
    }

    fn is_one(&self, id: usize) -> bool {
        matches!(self.value_of(id), Some(Dim::Known(1)))
    }

    fn is_free(&self, id: usize) -> bool {
        self.value_of(id).is_none()
    }

    /// Whether two sizes are already known to be equal.
    fn same(&self, a: usize, b: usize) -> bool {
        let (root_a, root_b) = (self.find(a), self.find(b));
        root_a == root_b
            || matches!((&self.value[root_a], &self.value[root_b]), (Some(x), Some(y)) if x == y)
    }

    /// Unifies two sizes. With `allow_one` false (products, square requirements) a free
    /// size may not become 1; a size that was a product's inner dimension, or is a size
    /// of a default-typed variable, never may.
    fn unify(&mut self, a: usize, b: usize, allow_one: bool) -> Result<(), Clash> {
        let (root_a, root_b) = (self.find(a), self.find(b));
        if root_a == root_b {
            return Ok(());
        }
        let (value_a, value_b) = (self.value[root_a].clone(), self.value[root_b].clone());
        let value = match (&value_a, &value_b) {
            (Some(x), Some(y)) if x != y => {
                return Err(Clash {
                    left: value_a.clone(),
                    right: value_b.clone(),
                })
            }
            (Some(x), _) | (None, Some(x)) => Some(x.clone()),
            (None, None) => None,
        };
        if value == Some(Dim::one()) {
            let tied =
                |root: usize| !allow_one || self.product_tied[root] || self.letter_tied[root];
            let free_tied =
                (value_a.is_none() && tied(root_a)) || (value_b.is_none() && tied(root_b));
            if free_tied {
                return Err(Clash {
                    left: value_a,
                    right: value_b,
                });
            }
        }
        // Union by rank keeps every chain logarithmic, so `find` needs no compression.
        let (root, child) = if self.rank[root_a] >= self.rank[root_b] {
            (root_a, root_b)
        } else {
            (root_b, root_a)
        };
        if self.rank[root] == self.rank[child] {
            self.rank[root] = self.rank[root].saturating_add(1);
        }
        self.parent[child] = root;
        self.value[root] = value;
        self.product_tied[root] = self.product_tied[root_a] || self.product_tied[root_b];
        self.letter_tied[root] = self.letter_tied[root_a] || self.letter_tied[root_b];
        Ok(())
    }

    /// Whether `a` and `b` could be unified (without changing anything).
    fn could_unify(&self, pairs: &[(usize, usize)]) -> bool {
        let mut trial = self.clone();
        pairs.iter().all(|&(a, b)| trial.unify(a, b, false).is_ok())
    }
}

/// The size `r` with `r · r = dim`, if there is one: `n` for n², `2m` for 4m², none for
/// `mn` or 8.
fn square_root(dim: &Dim) -> Option<Dim> {
    let mut root = Dim::one();
    let mut symbols = Vec::new();
    for factor in dim.factors() {
        match factor {
            Dim::Known(k) => {
                let r = k.isqrt();
                if r * r != k {
                    return None;
                }
                root = root.times(&Dim::Known(r));
            }
            Dim::Unknown => return None,
            symbol => symbols.push(symbol),
        }
    }
    symbols.sort();
    if symbols.len() % 2 != 0 {
        return None;
    }
    for pair in symbols.chunks_exact(2) {
        if pair[0] != pair[1] {
            return None;
        }
        root = root.times(&pair[0]);
    }
    Some(root)
}

/// A shape as two size variables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Dims {
    rows: usize,
    cols: usize,
}

/// The shapes of one node and its children, in the order of [`Expr::children`].
#[derive(Clone, Debug)]
struct ShapedNode {
    dims: Dims,
    children: Vec<Rc<ShapedNode>>,
    /// For an [`ExprKind::Written`] node, the node it means; `dims` and `children` are
    /// that node's.
    meaning: Option<Rc<Expr>>,
}

/// What the pass knows about one variable.
#[derive(Clone, Debug)]
struct VarEntry {
    dims: Dims,
    props: Props,
    declared: bool,
}

/// One inference pass over the tree, with a fixed set of variables pinned to scalars.
struct Pass<'a> {
    decls: &'a Decls,
    /// Whether the sizes of default-typed letters are kept from becoming 1
    /// ([`Sizes::letter_tied`]); only the first reading that scalar forcing inspects is
    /// not strict.
    strict: bool,
    pinned: BTreeSet<Symbol>,
    sizes: Sizes,
    vars: BTreeMap<Symbol, VarEntry>,
    /// Every node's dims in post-order, for naming sizes by frequency of use.
    uses: Vec<Dims>,
    /// Dims of `I` and `𝟙` nodes: sizes shared with them are not free to become 1.
    constant_dims: Vec<Dims>,
    /// Sizes that are products of two others (`A ⊗ B`, `vec(A)`) whose factors were not
    /// known when the node was met: (product, left factor, right factor, the node).
    products: Vec<(usize, usize, usize, Rc<Expr>)>,
    root: Option<Rc<ShapedNode>>,
    /// The shapes of shared nodes, by address (each kept alive with its node): a DAG,
    /// such as definitions expanded, is walked in time linear in its distinct nodes, and
    /// a shared node, one name's value, has one shape wherever it is used.
    shared: HashMap<*const Expr, (Rc<Expr>, Rc<ShapedNode>)>,
}

impl<'a> Pass<'a> {
    fn run(
        expr: &Expr,
        decls: &'a Decls,
        pinned: &BTreeSet<Symbol>,
        expected: Option<&Shape>,
        strict: bool,
    ) -> Result<Pass<'a>, Error> {
        let mut pass = Pass {
            decls,
            strict,
            pinned: pinned.clone(),
            sizes: Sizes::default(),
            vars: BTreeMap::new(),
            uses: Vec::new(),
            constant_dims: Vec::new(),
            products: Vec::new(),
            root: None,
            shared: HashMap::new(),
        };
        let root = pass.walk(expr)?;
        if let Some(expected) = expected {
            // Best effort: a clash is left for the caller, which compares the shapes.
            for (id, dim) in [
                (root.dims.rows, &expected.rows),
                (root.dims.cols, &expected.cols),
            ] {
                let rigid = pass.sizes.rigid(dim.clone());
                let _ = pass.sizes.unify(id, rigid, false);
            }
        }
        pass.root = Some(root);
        pass.resolve_products()?;
        Ok(pass)
    }

    /// The size `a·b`: rigid when both factors are known now, otherwise a new size whose
    /// value [`Pass::resolve_products`] settles once the walk is over.
    fn product_size(&mut self, a: usize, b: usize, node: &Expr) -> usize {
        match (self.sizes.value_of(a), self.sizes.value_of(b)) {
            (Some(x), Some(y)) => {
                let product = x.times(y);
                self.sizes.rigid(product)
            }
            _ => {
                let id = self.sizes.fresh();
                self.products.push((id, a, b, Rc::new(node.clone())));
                id
            }
        }
    }

    /// Gives every product size whose factors are now known its value, and refuses a
    /// product that clashes with the size it was unified with, or whose factors can only
    /// be told from it (a size that is a product of itself, or free factors of a known
    /// product). Products of free factors stay products of their factors' names.
    fn resolve_products(&mut self) -> Result<(), Error> {
        let refuse = |node: &Expr, what: String| Error::ProductSize {
            operand: show(node),
            span: node.span,
            what,
        };
        let mut changed = true;
        while changed {
            changed = false;
            for (id, a, b, node) in &self.products {
                // A known product with one known factor gives the other: `I ⊗ A` used
                // where an mn-sized matrix is expected, with A: m×m, makes I n×n.
                let total = self.sizes.value_of(*id).cloned();
                for (known, free) in [(*a, *b), (*b, *a)] {
                    if let (Some(total), Some(factor), true) =
                        (&total, self.sizes.value_of(known), self.sizes.is_free(free))
                    {
                        let root = self.sizes.find(free);
                        // A letter's size never becomes 1 (`Sizes::letter_tied`): the
                        // factor is then refused as not inferable, below.
                        let quotient = total
                            .divided_by(factor)
                            .filter(|quotient| !quotient.is_one() || !self.sizes.letter_tied[root]);
                        if let Some(quotient) = quotient {
                            self.sizes.value[root] = Some(quotient);
                            changed = true;
                        }
                    }
                }
                // A square of one free size is the square root of a known product: the
                // n² rows of `vec(I)` make I n×n.
                if let (Some(total), true, true) = (
                    &total,
                    self.sizes.find(*a) == self.sizes.find(*b),
                    self.sizes.is_free(*a),
                ) {
                    if let Some(root_size) = square_root(total) {
                        let root = self.sizes.find(*a);
                        self.sizes.value[root] = Some(root_size);
                        changed = true;
                    }
                }
                let (Some(x), Some(y)) = (self.sizes.value_of(*a), self.sizes.value_of(*b)) else {
                    continue;
                };
                let product = x.times(y);
                let root = self.sizes.find(*id);
                match &self.sizes.value[root] {
                    None => {
                        self.sizes.value[root] = Some(product);
                        changed = true;
                    }
                    Some(value) if *value != product => {
                        return Err(refuse(
                            node,
                            format!("its size {product} would have to equal {value}"),
                        ))
                    }
                    Some(_) => {}
                }
            }
        }
        for (id, a, b, node) in &self.products {
            let root = self.sizes.find(*id);
            if let Some(value) = &self.sizes.value[root] {
                if self.sizes.is_free(*a) || self.sizes.is_free(*b) {
                    return Err(refuse(
                        node,
                        format!("the sizes of its factors cannot be inferred from {value}"),
                    ));
                }
            } else if self.depends_on_product(root, *a) || self.depends_on_product(root, *b) {
                return Err(refuse(
                    node,
                    "a size would have to be a product of itself".to_string(),
                ));
            }
        }
        Ok(())
    }

    /// Whether the size `id` is, or is a product involving, the class `root`.
    fn depends_on_product(&self, root: usize, id: usize) -> bool {
        let mut stack = vec![id];
        let mut seen = HashSet::new();
        while let Some(next) = stack.pop() {
            let next_root = self.sizes.find(next);
            if next_root == root {
                return true;
            }
            if !seen.insert(next_root) || self.sizes.value[next_root].is_some() {
                continue;
            }
            for (product, a, b, _) in &self.products {
                if self.sizes.find(*product) == next_root {
                    stack.push(*a);
                    stack.push(*b);
                }
            }
        }
        false
    }

    /// The unresolved product sizes, by class root, for naming.
    fn pending_products(&self) -> HashMap<usize, (usize, usize)> {
        self.products
            .iter()
            .filter_map(|(id, a, b, _)| {
                let root = self.sizes.find(*id);
                self.sizes.value[root].is_none().then_some((root, (*a, *b)))
            })
            .collect()
    }

    fn scalar_dims(&mut self) -> Dims {
        Dims {
            rows: self.sizes.one(),
            cols: self.sizes.one(),
        }
    }

    fn is_scalar(&self, dims: Dims) -> bool {
        self.sizes.is_one(dims.rows) && self.sizes.is_one(dims.cols)
    }

    fn is_col_vector(&self, dims: Dims) -> bool {
        self.sizes.is_one(dims.cols) && !self.sizes.is_one(dims.rows)
    }

    fn is_row_vector(&self, dims: Dims) -> bool {
        self.sizes.is_one(dims.rows) && !self.sizes.is_one(dims.cols)
    }

    /// A free size of a default-typed variable, kept from becoming 1 in a strict pass.
    fn letter_size(&mut self) -> usize {
        match self.strict {
            true => self.sizes.letter(),
            false => self.sizes.fresh(),
        }
    }

    /// The dims of variable `name`, created on first use from its declaration, its pin or
    /// its letter.
    fn variable(&mut self, name: &str) -> Dims {
        if let Some(entry) = self.vars.get(name) {
            return entry.dims;
        }
        let entry = if let Some(decl) = self.decls.vars.get(name) {
            VarEntry {
                dims: Dims {
                    rows: self.sizes.rigid(decl.shape.rows.clone()),
                    cols: self.sizes.rigid(decl.shape.cols.clone()),
                },
                props: decl.props,
                declared: true,
            }
        } else {
            let dims = if self.pinned.contains(name) {
                self.scalar_dims()
            } else {
                match default_kind(name) {
                    DefaultKind::Matrix => Dims {
                        rows: self.letter_size(),
                        cols: self.letter_size(),
                    },
                    DefaultKind::Vector => Dims {
                        rows: self.letter_size(),
                        cols: self.sizes.one(),
                    },
                    DefaultKind::Scalar => self.scalar_dims(),
                }
            };
            VarEntry {
                dims,
                props: Props::default(),
                declared: false,
            }
        };
        let dims = entry.dims;
        self.vars.insert(name.to_string(), entry);
        dims
    }

    fn walk(&mut self, expr: &Expr) -> Result<Rc<ShapedNode>, Error> {
        if let ExprKind::Written(inner, notation) = &expr.kind {
            return self.written(expr, inner, *notation).map(Rc::new);
        }
        if let Some(meaning) = self.symbolic_real_power(expr) {
            return self.real_power(expr, &meaning).map(Rc::new);
        }
        let mut children = Vec::new();
        for child in expr.children() {
            match self.walk_child(child) {
                Ok(shaped) => children.push(shaped),
                Err(error) => return Err(with_quotient_hint(expr, error)),
            }
        }
        let child_dims: Vec<Dims> = children.iter().map(|child| child.dims).collect();
        let dims = self.node_dims(expr, &child_dims)?;
        self.uses.push(dims);
        Ok(Rc::new(ShapedNode {
            dims,
            children,
            meaning: None,
        }))
    }

    /// [`Pass::walk`] of a child, once per shared node.
    fn walk_child(&mut self, child: &Rc<Expr>) -> Result<Rc<ShapedNode>, Error> {
        if Rc::strong_count(child) == 1 {
            return self.walk(child);
        }
        if let Some((_, shaped)) = self.shared.get(&Rc::as_ptr(child)) {
            return Ok(shaped.clone());
        }
        let shaped = self.walk(child)?;
        self.shared
            .insert(Rc::as_ptr(child), (child.clone(), shaped.clone()));
        Ok(shaped)
    }

    /// `a^b` with a letter `b` not declared an integer: the real power `exp(b·log(a))`
    /// (`a^{b−1}`: `exp((b − 1)·log(a))`), which [`Pass::real_power`] types or refuses.
    fn symbolic_real_power(&self, expr: &Expr) -> Option<Rc<Expr>> {
        let ExprKind::PowSym(base, k, offset) = &expr.kind else {
            return None;
        };
        let integer = self
            .decls
            .vars
            .get(k)
            .is_some_and(|decl| decl.props.integer && decl.shape.is_scalar());
        if integer {
            return None;
        }
        let at = |kind: ExprKind| {
            Rc::new(Expr {
                kind,
                span: expr.span,
                shape: Shape::unknown(),
            })
        };
        let symbol = at(ExprKind::Var(k.clone()));
        let magnitude = at(ExprKind::Num(crate::expr::Rational::from_integer(
            offset.unsigned_abs().into(),
        )));
        let exponent = match offset.signum() {
            0 => symbol,
            1 => at(ExprKind::Add(symbol, magnitude)),
            _ => at(ExprKind::Sub(symbol, magnitude)),
        };
        let log = at(ExprKind::Func(crate::expr::Func::Log, base.clone()));
        Some(at(ExprKind::Func(
            crate::expr::Func::Exp,
            at(ExprKind::Mul(exponent, log)),
        )))
    }

    /// A real power `exp(e·log(a))` as written `a^{e}` (or `a^b`, see
    /// [`Pass::symbolic_real_power`]): the base and the exponent must be scalars. A
    /// default-typed lower-case letter in either place is a scalar here, as scalar forcing
    /// pins it (no other reading of a power with a symbolic exponent exists); a matrix
    /// base with a letter exponent is the matrix power of an undeclared integer.
    fn real_power(&mut self, expr: &Expr, meaning: &Rc<Expr>) -> Result<ShapedNode, Error> {
        let Some((base, exponent)) = meaning.real_power_parts() else {
            return Ok(self.walk(meaning)?.as_ref().clone());
        };
        let shaped_exponent = self.walk(exponent)?;
        let shaped_base = self.walk(base)?;
        for (part, shaped) in [(base, &shaped_base), (exponent, &shaped_exponent)] {
            // The first reading, for scalar forcing, leaves the letters free to be pinned.
            if self.is_scalar(shaped.dims) || !self.strict && self.only_free_sizes(shaped.dims) {
                continue;
            }
            let (one_rows, one_cols) = (self.sizes.one(), self.sizes.one());
            let scalar = self.sizes.unify(shaped.dims.rows, one_rows, true).is_ok()
                && self.sizes.unify(shaped.dims.cols, one_cols, true).is_ok();
            if scalar {
                continue;
            }
            // `X^k` of a matrix: the exponent of a matrix power must be declared `k: int`.
            let letter = match &exponent.kind {
                ExprKind::Var(k) => Some(k),
                ExprKind::Add(a, b) | ExprKind::Sub(a, b) if b.as_constant().is_some() => {
                    match &a.kind {
                        ExprKind::Var(k) => Some(k),
                        _ => None,
                    }
                }
                _ => None,
            };
            let matrix =
                !self.sizes.is_one(shaped.dims.rows) && !self.sizes.is_one(shaped.dims.cols);
            if let (Some(k), true) = (letter, matrix && std::ptr::eq(part, base)) {
                if k.chars().count() == 1 && k.chars().all(|c| c.is_ascii_lowercase()) {
                    return Err(Error::NotAnInteger {
                        name: k.clone(),
                        span: expr.span,
                    });
                }
            }
            let names = self.names();
            let shape = names.shape(&self.sizes, shaped.dims);
            return Err(Error::Notation {
                notation: WrittenAs::RealPower,
                written: show(expr),
                operand: show(part),
                span: expr.span,
                shape: Box::new(shape),
                default_typed: matches!(&part.kind, ExprKind::Var(name)
                    if self.vars.get(name).is_some_and(|entry| !entry.declared)),
            });
        }
        let scalar = shaped_base.dims;
        let log = Rc::new(ShapedNode {
            dims: scalar,
            children: vec![shaped_base],
            meaning: None,
        });
        let product = Rc::new(ShapedNode {
            dims: scalar,
            children: vec![shaped_exponent, log],
            meaning: None,
        });
        self.uses.extend([scalar, scalar, scalar]);
        Ok(ShapedNode {
            dims: scalar,
            children: vec![product],
            meaning: Some(meaning.clone()),
        })
    }

    /// `vector(c)`, `matrix(c)`: `c𝟙`, `c𝟙𝟙ᵀ` of a scalar `c`. The argument is a
    /// scalar-only position (SPEC §3): the first reading leaves a default-typed letter
    /// free for scalar forcing to pin, and anything that cannot be a scalar is refused.
    fn spread(&mut self, expr: &Expr, inner: &Rc<Expr>) -> Result<ShapedNode, Error> {
        let ExprKind::Mul(argument, ones) = &inner.kind else {
            return Ok(self.walk(inner)?.as_ref().clone());
        };
        let shaped_argument = self.walk(argument)?;
        let shaped_ones = self.walk(ones)?;
        let dims = shaped_argument.dims;
        // The first reading leaves free letters for scalar forcing to pin.
        let free_letters = !self.strict && self.only_free_sizes(dims);
        let mut trial = self.sizes.clone();
        let (one_rows, one_cols) = (trial.one(), trial.one());
        let scalar = self.is_scalar(dims)
            || !free_letters
                && trial.unify(dims.rows, one_rows, true).is_ok()
                && trial.unify(dims.cols, one_cols, true).is_ok();
        if scalar {
            self.sizes = trial;
        } else if !free_letters {
            let names = self.names();
            let shape = names.shape(&self.sizes, dims);
            let word = match ones.kind {
                ExprKind::Ones => "vector",
                _ => "matrix",
            };
            return Err(Error::Notation {
                notation: WrittenAs::Spread,
                written: format!("{word}({})", show(argument)),
                operand: show(argument),
                span: expr.span,
                shape: Box::new(shape),
                default_typed: matches!(&argument.kind, ExprKind::Var(name)
                    if self.vars.get(name).is_some_and(|entry| !entry.declared)),
            });
        }
        let res = shaped_ones.dims;
        self.uses.push(res);
        Ok(ShapedNode {
            dims: res,
            children: vec![shaped_argument, shaped_ones],
            meaning: Some(inner.clone()),
        })
    }

    /// A notation whose meaning depends on its argument's shape (SPEC §2, §3): `|a|` is
    /// the determinant of a matrix and the absolute value of a scalar or vector; `a^{p/q}`
    /// without `∘` is a power of a scalar only; a written `‖·‖₂`, `‖·‖₁` is a vector norm.
    /// The argument is typed first, then the node it means, or the notation is refused.
    fn written(
        &mut self,
        expr: &Expr,
        inner: &Rc<Expr>,
        notation: WrittenAs,
    ) -> Result<ShapedNode, Error> {
        if notation == WrittenAs::RealPower {
            return self.real_power(expr, inner);
        }
        if notation == WrittenAs::Spread {
            return self.spread(expr, inner);
        }
        if let (WrittenAs::Bars, ExprKind::Det(argument)) = (notation, &inner.kind) {
            let shaped_argument = self.walk(argument)?;
            let dims = shaped_argument.dims;
            let vector_like = self.sizes.is_one(dims.cols) || self.sizes.is_one(dims.rows);
            let meaning = if vector_like {
                let abs = ExprKind::Func(crate::expr::Func::Abs, argument.clone());
                Rc::new(Expr {
                    kind: abs,
                    span: expr.span,
                    shape: Shape::unknown(),
                })
            } else {
                inner.clone()
            };
            let dims = self.node_dims(&meaning, &[dims])?;
            self.uses.push(dims);
            return Ok(ShapedNode {
                dims,
                children: vec![shaped_argument],
                meaning: Some(meaning),
            });
        }
        let mut shaped = self.walk(inner)?.as_ref().clone();
        // The argument whose shape decides: the base of the power, the norm's argument.
        let (mut node, mut shaped_node) = (inner.as_ref(), &shaped);
        while let (ExprKind::Pow(child, _) | ExprKind::Written(child, _), Some(first)) =
            (&node.kind, shaped_node.children.first())
        {
            node = child;
            shaped_node = first;
        }
        let (argument, argument_dims) =
            match (node.children().first(), shaped_node.children.first()) {
                (Some(argument), Some(shaped_argument)) => {
                    (Rc::clone(argument), shaped_argument.dims)
                }
                _ => return Ok(shaped),
            };
        let refused = match notation {
            WrittenAs::PlainPower => !self.is_scalar(argument_dims),
            WrittenAs::VectorNorm => {
                !self.sizes.is_one(argument_dims.cols) && !self.sizes.is_one(argument_dims.rows)
            }
            WrittenAs::Bars | WrittenAs::RealPower | WrittenAs::Spread => false,
        };
        if refused {
            let names = self.names();
            let shape = names.shape(&self.sizes, argument_dims);
            return Err(Error::Notation {
                notation,
                written: written_text(node, &argument),
                operand: show(&argument),
                span: expr.span,
                shape: Box::new(shape),
                default_typed: matches!(&argument.kind, ExprKind::Var(name)
                    if self.vars.get(name).is_some_and(|entry| !entry.declared)),
            });
        }
        shaped.meaning = Some(inner.clone());
        Ok(shaped)
    }

    /// The dims of `expr` given its children's dims; unifies as the node's rule demands.
    fn node_dims(&mut self, expr: &Expr, child_dims: &[Dims]) -> Result<Dims, Error> {
        use ExprKind::*;
        let child = |index: usize| -> Dims {
            child_dims
                .get(index)
                .copied()
                .unwrap_or(Dims { rows: 0, cols: 0 })
        };
        if child_dims.len() != expr.children().len() {
            // `walk` shapes exactly `expr.children()`, so this cannot happen; the guard
            // keeps the index closure below free of a panic path.
            return Ok(self.scalar_dims());
        }
        let res = match &expr.kind {
            Num(_) | Size(_) => self.scalar_dims(),
            Var(name) | Differential(name) => self.variable(name),
            Identity => {
                let size = self.sizes.fresh();
                let dims = Dims {
                    rows: size,
                    cols: size,
                };
                self.constant_dims.push(dims);
                dims
            }
            Ones => {
                let dims = Dims {
                    rows: self.sizes.fresh(),
                    cols: self.sizes.one(),
                };
                self.constant_dims.push(dims);
                dims
            }
            Neg(_) | Func(_, _) | Grad(_, _) => {
                if let Grad(name, _) = &expr.kind {
                    self.check_function(name, expr.span)?;
                }
                child(0)
            }
            Apply(name, _) => {
                self.check_function(name, expr.span)?;
                self.scalar_dims()
            }
            Transpose(_) => Dims {
                rows: child(0).cols,
                cols: child(0).rows,
            },
            Add(a, b) | Sub(a, b) | Hadamard(a, b) => {
                let op = match &expr.kind {
                    Add(_, _) => Op::Add,
                    Sub(_, _) => Op::Subtract,
                    _ => Op::Hadamard,
                };
                self.elementwise(op, (a, child(0)), (b, child(1)))?
            }
            Div(a, b) => self.quotient((a, child(0)), (b, child(1)))?,
            ElemDiv(a, b) => self.elementwise(Op::ElemDivide, (a, child(0)), (b, child(1)))?,
            ElemPow(_, _) | Written(_, _) => child(0),
            PowSym(a, k, _) => {
                let is_integer = self
                    .decls
                    .vars
                    .get(k)
                    .is_some_and(|decl| decl.props.integer && decl.shape.is_scalar());
                if !is_integer {
                    return Err(Error::NotAnInteger {
                        name: k.clone(),
                        span: expr.span,
                    });
                }
                self.require_square(a, child(0), "a matrix power", vec![])?;
                child(0)
            }
            Softmax(a) | LogSumExp(a) => {
                let dims = child(0);
                let what = if matches!(expr.kind, Softmax(_)) {
                    "softmax"
                } else {
                    "logsumexp"
                };
                let one = self.sizes.one();
                if self.sizes.unify(dims.cols, one, false).is_err() {
                    let names = self.names();
                    return Err(Error::NotAVector {
                        what,
                        operand: show(a),
                        span: a.span,
                        shape: Box::new(names.shape(&self.sizes, dims)),
                    });
                }
                if matches!(expr.kind, Softmax(_)) {
                    dims
                } else {
                    self.scalar_dims()
                }
            }
            Norm(_, _) => self.scalar_dims(),
            Mul(a, b) => self.product((a, child(0)), (b, child(1)))?,
            Inverse(a) => {
                self.require_square(a, child(0), "the inverse", vec![])?;
                child(0)
            }
            Pow(a, power) => {
                let dims = child(0);
                if self.is_col_vector(dims) || self.is_row_vector(dims) {
                    let hint = if *power == 2 {
                        format!("for an elementwise square write {}", show_hadamard(a, a))
                    } else {
                        "for elementwise powers use ⊙ or an elementwise function".to_string()
                    };
                    return Err(self.not_square(a, dims, "a matrix power", vec![hint]));
                }
                self.require_square(a, dims, "a matrix power", vec![])?;
                dims
            }
            Trace(a) | Det(a) | LogDet(a) => {
                let what = match &expr.kind {
                    Trace(_) => "the trace",
                    Det(_) => "the determinant",
                    _ => "the log-determinant",
                };
                self.require_square(a, child(0), what, vec![])?;
                self.scalar_dims()
            }
            NormSq(_) | Sum(_) => self.scalar_dims(),
            Kron(_, _) => {
                let (a, b) = (child(0), child(1));
                Dims {
                    rows: self.product_size(a.rows, b.rows, expr),
                    cols: self.product_size(a.cols, b.cols, expr),
                }
            }
            Vectorize(_) => {
                let a = child(0);
                Dims {
                    rows: self.product_size(a.rows, a.cols, expr),
                    cols: self.sizes.one(),
                }
            }
            Commutation(m, n) => {
                let size = self.sizes.rigid(m.times(n));
                Dims {
                    rows: size,
                    cols: size,
                }
            }
            Diag(a) => {
                let dims = child(0);
                if self.is_scalar(dims) {
                    dims
                } else if self.sizes.is_one(dims.cols) {
                    Dims {
                        rows: dims.rows,
                        cols: dims.rows,
                    }
                } else {
                    self.require_square(a, dims, "diag of a matrix", vec![])?;
                    Dims {
                        rows: dims.rows,
                        cols: self.sizes.one(),
                    }
                }
            }
        };
        Ok(res)
    }

    fn check_function(&self, name: &str, span: Option<Span>) -> Result<(), Error> {
        if self.decls.fns.contains(name) {
            Ok(())
        } else if self.decls.vars.contains_key(name) {
            Err(Error::NotAFunction {
                name: name.to_string(),
                span,
            })
        } else {
            Err(Error::UnknownFunction {
                name: name.to_string(),
                span,
            })
        }
    }

    /// `a / b`: the denominator must be a scalar (SPEC §2); elementwise quotients are
    /// written `⊘`.
    fn quotient(&mut self, lhs: (&Rc<Expr>, Dims), rhs: (&Rc<Expr>, Dims)) -> Result<Dims, Error> {
        if self.is_scalar(rhs.1) {
            return Ok(lhs.1);
        }
        let mut hints = vec![
            "the denominator of / is the one factor after it, and must be a scalar".to_string(),
        ];
        // Shapes that are or could be made equal (`x/y` of two default vectors).
        let same_shape = !self.is_scalar(lhs.1)
            && self
                .sizes
                .could_unify(&[(lhs.1.rows, rhs.1.rows), (lhs.1.cols, rhs.1.cols)]);
        if same_shape || self.is_scalar(lhs.1) {
            hints.push(format!(
                "for elementwise division write {}",
                show(&Expr::new(ExprKind::ElemDiv(lhs.0.clone(), rhs.0.clone())))
            ));
        }
        if let ExprKind::Var(name) = &rhs.0.kind {
            if self.vars.get(name).is_some_and(|entry| !entry.declared) {
                hints.push(format!(
                    "if `{name}` is a scalar, declare it: `{name}: scalar`"
                ));
            }
        }
        let clash = Clash {
            left: None,
            right: None,
        };
        Err(self.mismatch(Op::Divide, lhs, rhs, clash, hints))
    }

    fn elementwise(
        &mut self,
        op: Op,
        lhs: (&Rc<Expr>, Dims),
        rhs: (&Rc<Expr>, Dims),
    ) -> Result<Dims, Error> {
        if self.is_scalar(lhs.1) {
            return Ok(rhs.1);
        }
        if self.is_scalar(rhs.1) {
            return Ok(lhs.1);
        }
        self.unify_equal(op, lhs, rhs)?;
        Ok(lhs.1)
    }

    /// Unifies two shapes entry by entry, as a sum or an elementwise operation does.
    fn unify_equal(
        &mut self,
        op: Op,
        lhs: (&Rc<Expr>, Dims),
        rhs: (&Rc<Expr>, Dims),
    ) -> Result<(), Error> {
        let (left, right) = (lhs.1, rhs.1);
        let result = self
            .sizes
            .unify(left.rows, right.rows, true)
            .and_then(|()| self.sizes.unify(left.cols, right.cols, true));
        match result {
            Ok(()) => Ok(()),
            Err(clash) => {
                let mut hints = vec![];
                if self
                    .sizes
                    .could_unify(&[(left.rows, right.cols), (left.cols, right.rows)])
                {
                    hints.push(format!("did you mean {}?", show_transposed(rhs.0)));
                }
                hints.extend(self.other_kind_hints(left, right));
                Err(self.mismatch(op, lhs, rhs, clash, hints))
            }
        }
    }

    /// The declarations under which `left` and `right` would agree, as one hint: the
    /// default-typed variables that become another kind of object (a scalar, a vector)
    /// once their sizes may be 1. Their letters say otherwise, so inference never reads
    /// them so silently (see [`Sizes::letter_tied`]); the user may say so.
    fn other_kind_hints(&self, left: Dims, right: Dims) -> Vec<String> {
        let mut trial = self.sizes.clone();
        trial.letter_tied.iter_mut().for_each(|tied| *tied = false);
        let agrees = trial
            .unify(left.rows, right.rows, true)
            .and_then(|()| trial.unify(left.cols, right.cols, true))
            .is_ok();
        if !agrees {
            return vec![];
        }
        let names = self.names();
        let dim = |id: usize| match trial.is_one(id) {
            true => "1".to_string(),
            false => names.dim(&self.sizes, id).to_string(),
        };
        let (mut kinds, mut declarations) = (vec![], vec![]);
        for (name, entry) in &self.vars {
            let (rows, cols) = (entry.dims.rows, entry.dims.cols);
            let became_one = |id: usize| trial.is_one(id) && !self.sizes.is_one(id);
            if entry.declared || !(became_one(rows) || became_one(cols)) {
                continue;
            }
            let (kind, declaration) = match (trial.is_one(rows), trial.is_one(cols)) {
                (true, true) => ("a scalar", "scalar".to_string()),
                (false, true) => ("a column vector", dim(rows)),
                _ => ("a row vector", format!("{}×{}", dim(rows), dim(cols))),
            };
            let verb = if kinds.is_empty() { "is " } else { "" };
            kinds.push(format!("`{name}` {verb}{kind}"));
            declarations.push(format!("{name}: {declaration}"));
        }
        let Some(last) = kinds.pop() else {
            return vec![];
        };
        let (kinds, them) = match kinds.is_empty() {
            true => (last, "it"),
            false => (format!("{} and {last}", kinds.join(", ")), "them"),
        };
        vec![format!(
            "if {kinds}, declare {them}: `{}` (undeclared, a letter's case fixes its kind)",
            declarations.join(", ")
        )]
    }

    fn product(&mut self, lhs: (&Rc<Expr>, Dims), rhs: (&Rc<Expr>, Dims)) -> Result<Dims, Error> {
        let (left, right) = (lhs.1, rhs.1);
        if self.is_scalar(left) {
            return Ok(right);
        }
        if self.is_scalar(right) {
            return Ok(left);
        }
        match self.sizes.unify(left.cols, right.rows, false) {
            Ok(()) => {
                let root = self.sizes.find(left.cols);
                self.sizes.product_tied[root] = true;
                Ok(Dims {
                    rows: left.rows,
                    cols: right.cols,
                })
            }
            Err(clash) => {
                let hints = self.product_hints(lhs, rhs);
                Err(self.mismatch(Op::Multiply, lhs, rhs, clash, hints))
            }
        }
    }

    /// Suggestions for a failed product: `⊙`, a transpose, or the other order.
    fn product_hints(&mut self, lhs: (&Rc<Expr>, Dims), rhs: (&Rc<Expr>, Dims)) -> Vec<String> {
        let (left, right) = (lhs.1, rhs.1);
        if self.is_col_vector(left) && self.is_col_vector(right) {
            if self.sizes.same(left.rows, right.rows) {
                return vec![
                    "did you mean ⊙?".to_string(),
                    format!(
                        "for the elementwise product write {}",
                        show_hadamard(lhs.0, rhs.0)
                    ),
                ];
            }
            // Two vectors of free lengths: the fix makes them the same length, so show
            // them that way.
            if self.sizes.unify(left.rows, right.rows, false).is_ok() {
                return vec![format!(
                    "did you mean {} or {}?",
                    show_product(&transposed(lhs.0), rhs.0),
                    show_hadamard(lhs.0, rhs.0)
                )];
            }
            return vec![format!(
                "did you mean {}?",
                show_product(lhs.0, &transposed(rhs.0))
            )];
        }
        if self.sizes.could_unify(&[(left.rows, right.rows)]) {
            return vec![format!("did you mean {}?", show_transposed(lhs.0))];
        }
        if self.sizes.could_unify(&[(left.cols, right.cols)]) {
            return vec![format!("did you mean {}?", show_transposed(rhs.0))];
        }
        if self.sizes.could_unify(&[(right.cols, left.rows)]) {
            return vec![format!("did you mean {}?", show_product(rhs.0, lhs.0))];
        }
        vec![]
    }

    fn require_square(
        &mut self,
        arg: &Expr,
        dims: Dims,
        what: &'static str,
        hints: Vec<String>,
    ) -> Result<(), Error> {
        if self.sizes.unify(dims.rows, dims.cols, false).is_err() {
            return Err(self.not_square(arg, dims, what, hints));
        }
        Ok(())
    }

    fn not_square(&self, arg: &Expr, dims: Dims, what: &'static str, hints: Vec<String>) -> Error {
        let names = self.names();
        Error::NotSquare {
            what,
            operand: show(arg),
            span: arg.span,
            shape: Box::new(names.shape(&self.sizes, dims)),
            hints,
        }
    }

    fn mismatch(
        &self,
        op: Op,
        lhs: (&Rc<Expr>, Dims),
        rhs: (&Rc<Expr>, Dims),
        clash: Clash,
        hints: Vec<String>,
    ) -> Error {
        let names = self.names();
        let lhs_part = Box::new(Operand {
            span: lhs.0.span,
            shape: names.shape(&self.sizes, lhs.1),
        });
        let rhs_part = Box::new(Operand {
            span: rhs.0.span,
            shape: names.shape(&self.sizes, rhs.1),
        });
        match (clash.left, clash.right) {
            (Some(a), Some(b)) if !a.is_one() && !b.is_one() => Error::DeclConflict {
                op,
                lhs: lhs_part,
                rhs: rhs_part,
                sizes: Box::new((a, b)),
                hints,
            },
            _ => Error::Mismatch {
                op,
                lhs: lhs_part,
                rhs: rhs_part,
                hints,
            },
        }
    }

    /// Names for the free sizes seen so far.
    fn names(&self) -> SizeNames {
        let products = self.pending_products();
        let mut counts: HashMap<usize, (usize, usize)> = HashMap::new();
        let mut order = 0;
        for dims in &self.uses {
            for id in [dims.rows, dims.cols] {
                let root = self.sizes.find(id);
                if self.sizes.value[root].is_some() || products.contains_key(&root) {
                    continue;
                }
                let entry = counts.entry(root).or_insert_with(|| {
                    order += 1;
                    (0, order)
                });
                entry.0 += 1;
            }
        }
        let mut roots: Vec<(usize, (usize, usize))> = counts.into_iter().collect();
        roots.sort_by_key(|&(root, (count, first))| (std::cmp::Reverse(count), first, root));
        let taken: BTreeSet<Symbol> = self
            .decls
            .size_names()
            .into_iter()
            .map(String::from)
            .collect();
        let mut fresh = FreshNames::new(taken);
        let names = roots
            .into_iter()
            .map(|(root, _)| (root, fresh.next_name()))
            .collect();
        SizeNames {
            names,
            fresh,
            products,
        }
    }

    /// Variables that scalar forcing pins after this pass (see the module docs).
    fn scalar_forcing(&self, expr: &Expr) -> BTreeSet<Symbol> {
        let mut pinned = BTreeSet::new();
        let Some(root) = &self.root else {
            return pinned;
        };
        let mut stack: Vec<(&Expr, &ShapedNode)> = vec![(expr, root)];
        let mut seen: HashSet<*const ShapedNode> = HashSet::new();
        while let Some((node, shaped)) = stack.pop() {
            if !seen.insert(shaped as *const ShapedNode) {
                continue;
            }
            let real_power = matches!(node.kind, ExprKind::Written(_, WrittenAs::RealPower))
                || matches!(node.kind, ExprKind::PowSym(..)) && shaped.meaning.is_some();
            let spread = matches!(node.kind, ExprKind::Written(_, WrittenAs::Spread));
            let node = shaped.meaning.as_deref().unwrap_or(node);
            if real_power {
                pinned.extend(self.real_power_pins(node, shaped));
            }
            if let (true, ExprKind::Mul(argument, _), Some(shaped_argument)) =
                (spread, &node.kind, shaped.children.first())
            {
                let mut leaves = BTreeSet::new();
                if self.only_free_sizes(shaped_argument.dims) {
                    self.leaf_like(argument, shaped_argument, &mut leaves);
                }
                leaves.retain(|name| default_kind(name) != DefaultKind::Matrix);
                pinned.extend(self.untied(&leaves));
            }
            if let ExprKind::Add(a, b) | ExprKind::Sub(a, b) = &node.kind {
                if let [left, right] = shaped.children.as_slice() {
                    for (scalar_side, scalar_shape, other_side, other_shape) in
                        [(a, left, b, right), (b, right, a, left)]
                    {
                        if self.is_scalar(scalar_shape.dims)
                            && scalar_side.as_constant().is_none()
                            // A size broadcasts like a number: `n − x` keeps x a vector.
                            && !matches!(scalar_side.kind, ExprKind::Size(_))
                            && self.only_free_sizes(other_shape.dims)
                        {
                            let mut leaves = BTreeSet::new();
                            if self.leaf_like(other_side, other_shape, &mut leaves) {
                                pinned.extend(self.untied(&leaves));
                            }
                        }
                    }
                }
            }
            for (child, child_shape) in node.children().into_iter().zip(&shaped.children) {
                stack.push((child, child_shape));
            }
        }
        pinned
    }

    /// The default-typed letters a real power `exp(e·log(a))` makes scalars: those of the
    /// exponent `e` (a scalar-only position, SPEC §3), and the base when it is a letter.
    /// Upper-case letters stay matrices, so `X^b` is refused rather than read as a number.
    fn real_power_pins(&self, node: &Expr, shaped: &ShapedNode) -> BTreeSet<Symbol> {
        let mut leaves = BTreeSet::new();
        let (Some((base, exponent)), Some(product)) =
            (node.real_power_parts(), shaped.children.first())
        else {
            return leaves;
        };
        if let [shaped_exponent, log] = product.children.as_slice() {
            if self.only_free_sizes(shaped_exponent.dims) {
                self.leaf_like(exponent, shaped_exponent, &mut leaves);
            }
            if let (ExprKind::Var(name), Some(shaped_base)) = (&base.kind, log.children.first()) {
                if self.only_free_sizes(shaped_base.dims)
                    && self.vars.get(name).is_some_and(|entry| !entry.declared)
                {
                    leaves.insert(name.clone());
                }
            }
        }
        leaves.retain(|name| default_kind(name) != DefaultKind::Matrix);
        self.untied(&leaves)
    }

    /// Whether the shape is made only of free sizes and 1, and is not scalar.
    fn only_free_sizes(&self, dims: Dims) -> bool {
        let free_or_one = |id| self.sizes.is_free(id) || self.sizes.is_one(id);
        free_or_one(dims.rows) && free_or_one(dims.cols) && !self.is_scalar(dims)
    }

    /// Whether `expr` is a default-typed variable, negated or scaled by scalar factors,
    /// or a sum of such terms (constants allowed); collects the variables.
    fn leaf_like(&self, expr: &Expr, shaped: &ShapedNode, leaves: &mut BTreeSet<Symbol>) -> bool {
        self.leaf_like_within(expr, shaped, leaves, &mut HashMap::new())
    }

    /// [`Pass::leaf_like`], each shared node judged once (`judged`, by address).
    fn leaf_like_within(
        &self,
        expr: &Expr,
        shaped: &ShapedNode,
        leaves: &mut BTreeSet<Symbol>,
        judged: &mut HashMap<*const ShapedNode, bool>,
    ) -> bool {
        if let Some(&judgement) = judged.get(&(shaped as *const ShapedNode)) {
            return judgement;
        }
        let judgement = self.leaf_like_node(expr, shaped, leaves, judged);
        judged.insert(shaped as *const ShapedNode, judgement);
        judgement
    }

    fn leaf_like_node(
        &self,
        expr: &Expr,
        shaped: &ShapedNode,
        leaves: &mut BTreeSet<Symbol>,
        judged: &mut HashMap<*const ShapedNode, bool>,
    ) -> bool {
        use ExprKind::*;
        let child = |index: usize| shaped.children.get(index);
        match &expr.kind {
            Num(_) | Size(_) => true,
            Var(name) => {
                let default_typed = self.vars.get(name).is_some_and(|entry| !entry.declared);
                if default_typed {
                    leaves.insert(name.clone());
                }
                default_typed
            }
            Neg(a) => child(0).is_some_and(|shape| self.leaf_like_within(a, shape, leaves, judged)),
            Add(a, b) | Sub(a, b) => match (child(0), child(1)) {
                (Some(left), Some(right)) => {
                    self.leaf_like_within(a, left, leaves, judged)
                        && self.leaf_like_within(b, right, leaves, judged)
                }
                _ => false,
            },
            Mul(a, b) => match (child(0), child(1)) {
                (Some(left), Some(right)) if self.is_scalar(left.dims) => {
                    self.leaf_like_within(b, right, leaves, judged)
                }
                (Some(left), Some(right)) if self.is_scalar(right.dims) => {
                    self.leaf_like_within(a, left, leaves, judged)
                }
                _ => false,
            },
            Div(a, _) => match (child(0), child(1)) {
                (Some(left), Some(right)) if self.is_scalar(right.dims) => {
                    self.leaf_like_within(a, left, leaves, judged)
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// The variables among `leaves` none of whose free sizes is tied to a variable
    /// outside `leaves`, to `I` or `𝟙`, or to a product's inner dimension.
    fn untied(&self, leaves: &BTreeSet<Symbol>) -> BTreeSet<Symbol> {
        let mut outside: HashSet<usize> = HashSet::new();
        for (name, entry) in &self.vars {
            if !leaves.contains(name) {
                outside.insert(self.sizes.find(entry.dims.rows));
                outside.insert(self.sizes.find(entry.dims.cols));
            }
        }
        for dims in &self.constant_dims {
            outside.insert(self.sizes.find(dims.rows));
            outside.insert(self.sizes.find(dims.cols));
        }
        leaves
            .iter()
            .filter(|name| {
                self.vars.get(*name).is_some_and(|entry| {
                    [entry.dims.rows, entry.dims.cols].into_iter().all(|id| {
                        let root = self.sizes.find(id);
                        self.sizes.is_one(id)
                            || (self.sizes.is_free(id)
                                && !self.sizes.product_tied[root]
                                && !outside.contains(&root))
                    })
                })
            })
            .cloned()
            .collect()
    }

    /// Rebuilds the tree with resolved shapes and collects the variables.
    fn finish(self, expr: &Expr) -> Typed {
        let mut names = self.names();
        let res_expr = match &self.root {
            Some(root) => rebuild(expr, root, &self.sizes, &mut names, &mut HashMap::new())
                .as_ref()
                .clone(),
            None => expr.clone(),
        };
        let mut vars = BTreeMap::new();
        for (name, entry) in &self.vars {
            vars.insert(
                name.clone(),
                VarDecl {
                    shape: names.shape_mut(&self.sizes, entry.dims),
                    props: entry.props,
                },
            );
        }
        for (name, decl) in &self.decls.vars {
            if !vars.contains_key(name) {
                let rows = match &decl.shape.rows {
                    Dim::Unknown => Dim::Sym(names.fresh.next_name().into()),
                    dim => dim.clone(),
                };
                let cols = match &decl.shape.cols {
                    Dim::Unknown => Dim::Sym(names.fresh.next_name().into()),
                    dim => dim.clone(),
                };
                vars.insert(
                    name.clone(),
                    VarDecl {
                        shape: Shape::new(rows, cols),
                        props: decl.props,
                    },
                );
            }
        }
        Typed {
            expr: res_expr,
            vars,
            fns: self.decls.fns.clone(),
        }
    }
}

/// A non-scalar denominator that starts a product, `xᵀAx/xᵀx`, is read by SPEC §2 as
/// `((xᵀAx)/xᵀ)x`; the error then offers the quotient of the whole product, rebuilt at
/// each enclosing factor so that the outermost one wins: `(xᵀAx)/(xᵀx)`.
fn with_quotient_hint(expr: &Expr, error: Error) -> Error {
    let Error::Mismatch {
        op: Op::Divide,
        lhs,
        rhs,
        mut hints,
    } = error
    else {
        return error;
    };
    let mut factors = vec![];
    let mut node = expr;
    while let ExprKind::Mul(left, right) = &node.kind {
        factors.push(right.clone());
        node = left;
    }
    if let (ExprKind::Div(numerator, denominator), false) = (&node.kind, factors.is_empty()) {
        let whole = factors
            .into_iter()
            .rev()
            .fold(denominator.clone(), |product, factor| {
                Rc::new(Expr::new(ExprKind::Mul(product, factor)))
            });
        // The quotient of the whole product is what was meant; `⊘` of its first factor
        // (`xᵀAx ⊘ xᵀ`) is no reading anyone had in mind.
        hints.retain(|hint| {
            !hint.starts_with("did you mean (") && !hint.starts_with("for elementwise division")
        });
        hints.insert(
            0,
            format!("did you mean ({})/({})?", show(numerator), show(&whole)),
        );
    }
    Error::Mismatch {
        op: Op::Divide,
        lhs,
        rhs,
        hints,
    }
}

/// A refused notation as written: `A^{1/2}`, `‖X‖₂`, `‖X‖₁²` (`node` is the power or the
/// norm, `argument` its base or argument).
fn written_text(node: &Expr, argument: &Expr) -> String {
    let operand = match &argument.kind {
        ExprKind::Var(_) => show(argument),
        _ => format!("({})", show(argument)),
    };
    match &node.kind {
        ExprKind::ElemPow(_, q) => format!("{operand}^{{{q}}}"),
        ExprKind::Norm(_, crate::expr::NormKind::One) => format!("‖{}‖₁", show(argument)),
        ExprKind::NormSq(_) => format!("‖{}‖₂²", show(argument)),
        _ => format!("‖{}‖₂", show(argument)),
    }
}

/// `expr` with the shapes of `shaped`; a node shared in `shaped` is rebuilt once and
/// stays shared (`done`, by address).
fn rebuild(
    expr: &Expr,
    shaped: &ShapedNode,
    sizes: &Sizes,
    names: &mut SizeNames,
    done: &mut HashMap<*const ShapedNode, Rc<Expr>>,
) -> Rc<Expr> {
    let key = shaped as *const ShapedNode;
    if let Some(rebuilt) = done.get(&key) {
        return rebuilt.clone();
    }
    let rebuilt = Rc::new(rebuild_node(expr, shaped, sizes, names, done));
    done.insert(key, rebuilt.clone());
    rebuilt
}

fn rebuild_node(
    expr: &Expr,
    shaped: &ShapedNode,
    sizes: &Sizes,
    names: &mut SizeNames,
    done: &mut HashMap<*const ShapedNode, Rc<Expr>>,
) -> Expr {
    use ExprKind::*;
    // A written notation becomes the node it means, whose shapes `shaped` holds.
    let expr = shaped.meaning.as_deref().unwrap_or(expr);
    let mut kids = shaped.children.iter();
    let mut next = |child: &Rc<Expr>| -> Rc<Expr> {
        match kids.next() {
            Some(child_shape) => rebuild(child, child_shape, sizes, names, done),
            None => child.clone(),
        }
    };
    let kind = match &expr.kind {
        Num(_) | Var(_) | Identity | Ones | Size(_) | Differential(_) | Commutation(..) => {
            expr.kind.clone()
        }
        Neg(a) => Neg(next(a)),
        Vectorize(a) => Vectorize(next(a)),
        Transpose(a) => Transpose(next(a)),
        Inverse(a) => Inverse(next(a)),
        Pow(a, k) => Pow(next(a), *k),
        Trace(a) => Trace(next(a)),
        Det(a) => Det(next(a)),
        LogDet(a) => LogDet(next(a)),
        NormSq(a) => NormSq(next(a)),
        Diag(a) => Diag(next(a)),
        Sum(a) => Sum(next(a)),
        Func(f, a) => Func(*f, next(a)),
        Apply(name, a) => Apply(name.clone(), next(a)),
        Grad(name, a) => Grad(name.clone(), next(a)),
        Norm(a, kind) => Norm(next(a), *kind),
        ElemPow(a, q) => ElemPow(next(a), q.clone()),
        PowSym(a, k, offset) => PowSym(next(a), k.clone(), *offset),
        Softmax(a) => Softmax(next(a)),
        LogSumExp(a) => LogSumExp(next(a)),
        // `walk` never leaves one unresolved; keep the node inside if it did.
        Written(a, _) => return rebuild_node(a, shaped, sizes, names, done),
        ElemDiv(a, b) => {
            let a = next(a);
            ElemDiv(a, next(b))
        }
        Add(a, b) => {
            let a = next(a);
            Add(a, next(b))
        }
        Sub(a, b) => {
            let a = next(a);
            Sub(a, next(b))
        }
        Mul(a, b) => {
            let a = next(a);
            Mul(a, next(b))
        }
        Div(a, b) => {
            let a = next(a);
            Div(a, next(b))
        }
        Hadamard(a, b) => {
            let a = next(a);
            Hadamard(a, next(b))
        }
        Kron(a, b) => {
            let a = next(a);
            Kron(a, next(b))
        }
    };
    Expr {
        kind,
        span: expr.span,
        shape: names.shape_mut(sizes, shaped.dims),
    }
}

/// The names chosen for free sizes, and the generator for any still unnamed.
struct SizeNames {
    names: HashMap<usize, Symbol>,
    fresh: FreshNames,
    /// Product sizes of free factors (acyclic, see [`Pass::resolve_products`]): each is
    /// the product of its factors' names.
    products: HashMap<usize, (usize, usize)>,
}

impl SizeNames {
    fn dim(&self, sizes: &Sizes, id: usize) -> Dim {
        let root = sizes.find(id);
        match &sizes.value[root] {
            Some(dim) => dim.clone(),
            None => match (self.names.get(&root), self.products.get(&root)) {
                (Some(name), _) => Dim::Sym(name.into()),
                (None, Some(&(a, b))) => self.dim(sizes, a).times(&self.dim(sizes, b)),
                (None, None) => Dim::Sym("?".into()),
            },
        }
    }

    fn shape(&self, sizes: &Sizes, dims: Dims) -> Shape {
        Shape::new(self.dim(sizes, dims.rows), self.dim(sizes, dims.cols))
    }

    fn dim_mut(&mut self, sizes: &Sizes, id: usize) -> Dim {
        let root = sizes.find(id);
        if let Some(&(a, b)) = self.products.get(&root) {
            // Name the factors first, so that the product reads in their names.
            self.dim_mut(sizes, a);
            self.dim_mut(sizes, b);
        } else if sizes.value[root].is_none() && !self.names.contains_key(&root) {
            let name = self.fresh.next_name();
            self.names.insert(root, name);
        }
        self.dim(sizes, id)
    }

    fn shape_mut(&mut self, sizes: &Sizes, dims: Dims) -> Shape {
        Shape::new(
            self.dim_mut(sizes, dims.rows),
            self.dim_mut(sizes, dims.cols),
        )
    }
}

/// `n, m, p, q, r, s, t, k, l, d₁, d₂, …`, skipping names already taken.
struct FreshNames {
    taken: BTreeSet<Symbol>,
    index: usize,
}

impl FreshNames {
    const FIRST: [&'static str; 9] = ["n", "m", "p", "q", "r", "s", "t", "k", "l"];

    fn new(taken: BTreeSet<Symbol>) -> FreshNames {
        FreshNames { taken, index: 0 }
    }

    fn next_name(&mut self) -> Symbol {
        loop {
            let candidate = match FreshNames::FIRST.get(self.index) {
                Some(name) => name.to_string(),
                None => format!("d{}", subscript(self.index + 1 - FreshNames::FIRST.len())),
            };
            self.index += 1;
            if !self.taken.contains(&candidate) {
                self.taken.insert(candidate.clone());
                return candidate;
            }
        }
    }
}

fn subscript(number: usize) -> String {
    number
        .to_string()
        .chars()
        .map(|digit| match digit {
            '0' => '₀',
            '1' => '₁',
            '2' => '₂',
            '3' => '₃',
            '4' => '₄',
            '5' => '₅',
            '6' => '₆',
            '7' => '₇',
            '8' => '₈',
            _ => '₉',
        })
        .collect()
}

/// How a variable is typed without a declaration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DefaultKind {
    Matrix,
    Vector,
    Scalar,
}

/// The default typing of a name, from its first letter (subscripts and primes follow it).
fn default_kind(name: &str) -> DefaultKind {
    let Some(letter) = name.chars().next() else {
        return DefaultKind::Scalar;
    };
    let greek = matches!(letter, '\u{0370}'..='\u{03FF}' | '\u{1F00}'..='\u{1FFF}');
    if letter.is_uppercase() {
        DefaultKind::Matrix
    } else if greek || letter == 'ℓ' {
        DefaultKind::Scalar
    } else {
        DefaultKind::Vector
    }
}

/// A hint's expression in Unicode, printed by the one printer every stage shares.
fn show(expr: &Expr) -> String {
    crate::print::render(expr, crate::print::Style::Unicode)
}

/// `exprᵀ`, or `a` when `expr` is already `aᵀ`.
fn transposed(expr: &Rc<Expr>) -> Rc<Expr> {
    match &expr.kind {
        ExprKind::Transpose(inner) => inner.clone(),
        _ => Rc::new(Expr::new(ExprKind::Transpose(expr.clone()))),
    }
}

fn show_transposed(expr: &Rc<Expr>) -> String {
    show(&transposed(expr))
}

fn show_product(left: &Rc<Expr>, right: &Rc<Expr>) -> String {
    show(&Expr::new(ExprKind::Mul(left.clone(), right.clone())))
}

fn show_hadamard(left: &Rc<Expr>, right: &Rc<Expr>) -> String {
    show(&Expr::new(ExprKind::Hadamard(left.clone(), right.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_fresh_names_skip_declared_symbols() {
        let mut fresh = FreshNames::new(["n".to_string(), "p".to_string()].into());
        let names: Vec<Symbol> = (0..9).map(|_| fresh.next_name()).collect();
        assert_eq!(names, ["m", "q", "r", "s", "t", "k", "l", "d₁", "d₂"]);
    }

    #[test]
    fn shape_product_unification_never_binds_a_free_size_to_one() {
        let mut sizes = Sizes::default();
        let (free, one) = (sizes.fresh(), sizes.one());
        assert!(sizes.unify(free, one, false).is_err());
        assert!(sizes.unify(free, one, true).is_ok());
        assert!(sizes.is_one(free));
    }

    #[test]
    fn shape_product_tied_size_never_becomes_one() {
        let mut sizes = Sizes::default();
        let (free, one) = (sizes.fresh(), sizes.one());
        sizes.product_tied[free] = true;
        assert!(sizes.unify(free, one, true).is_err());
    }

    #[test]
    fn shape_rigid_sizes_clash() {
        let mut sizes = Sizes::default();
        let m = sizes.rigid(Dim::Sym("m".into()));
        let n = sizes.rigid(Dim::Sym("n".into()));
        let free = sizes.fresh();
        assert!(sizes.unify(free, m, false).is_ok());
        assert!(sizes.unify(free, n, true).is_err());
    }

    #[test]
    fn shape_default_kinds() {
        assert_eq!(default_kind("W₁"), DefaultKind::Matrix);
        assert_eq!(default_kind("Σ"), DefaultKind::Matrix);
        assert_eq!(default_kind("x′"), DefaultKind::Vector);
        assert_eq!(default_kind("α"), DefaultKind::Scalar);
        assert_eq!(default_kind("ℓ"), DefaultKind::Scalar);
    }
}
