//! Numeric evaluation and checks: takes typed trees and concrete sizes and values, returns
//! `nalgebra` matrices, and compares derivatives with finite differences (SPEC §7).
//!
//! - [`evaluate`] computes any typed [`Expr`] for an [`Instance`]: sizes for the size
//!   symbols, a matrix for every variable, a direction for every differential `dX`, and
//!   a smooth stand-in for every opaque function. A value outside a function's domain
//!   (a singular inverse, the log of a non-positive number, an overflow) is
//!   [`EvalError::Undefined`], never a NaN.
//! - [`draw_instance`] draws a random instance that respects the declarations (`sym`,
//!   `spd`, positive scalars) and the obvious domains (positive arguments of `log`, a
//!   positive determinant under `log|·|`).
//! - [`check_derivative`] compares a [`Derivative`] of every kind with central finite
//!   differences (Richardson-extrapolated, with an error estimate) on random instances,
//!   and [`check_equal`]
//!   compares two expressions. Both return a [`Verdict`]; a check that cannot draw a
//!   valid instance is [`Verdict::Inconclusive`], never a pass.
//!
//! # Error measure
//!
//! Results are compared entry by entry, and the error is normalised by the size of the
//! reference result: `max |claimed − expected| / max(1, max |expected|)`. Finite
//! differences carry an absolute error proportional to the scale of the function, not
//! to each entry, so a per-entry relative error would reject correct small entries.
//!
//! # Differentials
//!
//! The direction `dX` of a differential node `ExprKind::Differential("X")` is read from
//! `instance.values` under the key `"dX"` ([`differential_key`]); no variable can have
//! that name, since `dX` parses as the product `d·X`.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use nalgebra::{DMatrix, DVector};
use num_traits::ToPrimitive;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::diag::Diagnostic;
use crate::diff::{Derivative, DerivativeKind};
use crate::expr::{Dim, Expr, ExprKind, Func, NormKind, Props, Shape, Symbol, VarDecl};
use crate::shape::Typed;

/// How a numeric check runs: how many random instances, from which seed, how strict.
///
/// There is no `Default`: use [`CheckConfig::standard`] and change what you mean to.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckConfig {
    /// Number of random instances that must agree.
    pub trials: usize,
    /// Seed of the random generator; the same seed gives the same instances.
    pub seed: u64,
    /// The largest normalised error accepted (see the module docs).
    pub tolerance: f64,
    /// How many times a trial is redrawn when its instance is outside the domain.
    pub max_redraws: usize,
    /// When to give up: past it the check is inconclusive and says why (the
    /// computation's time limit, [`crate::limits::Deadline`]). `None`: no deadline.
    pub deadline: Option<std::time::Instant>,
}

impl CheckConfig {
    /// The check SPEC §7 asks for: 3 trials, seed 0, tolerance 1e-6, 20 redraws a trial.
    pub fn standard() -> CheckConfig {
        CheckConfig {
            trials: 3,
            seed: 0,
            tolerance: 1e-6,
            max_redraws: 20,
            deadline: None,
        }
    }

    /// This configuration, ending by `deadline` too (by the earlier of the two).
    pub fn within(&self, deadline: &crate::limits::Deadline) -> CheckConfig {
        let deadline = match (self.deadline, deadline.at()) {
            (Some(own), Some(given)) => Some(own.min(given)),
            (own, given) => own.or(given),
        };
        CheckConfig {
            deadline,
            ..self.clone()
        }
    }
}

/// The outcome of a numeric check.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Every trial agreed within the tolerance.
    Pass {
        /// Number of trials that agreed.
        trials: usize,
        /// The largest normalised error over all trials.
        max_rel_error: f64,
    },
    /// A trial disagreed; here is the instance.
    Fail(Box<Counterexample>),
    /// No verdict: no valid instance could be drawn, or the expressions cannot be
    /// evaluated at all. Never to be read as a pass.
    Inconclusive {
        /// Why, as a sentence.
        reason: String,
    },
    /// A failure without a counterexample: the printed derivative does not parse or
    /// type back (SPEC §7: what is printed is what is checked), so what the reader takes
    /// away has no value to compare. Never inconclusive: the text itself is wrong.
    Unreadable {
        /// Why, as a sentence: what does not read back.
        reason: String,
    },
}

impl Verdict {
    /// Whether this is [`Verdict::Pass`].
    pub fn is_pass(&self) -> bool {
        matches!(self, Verdict::Pass { .. })
    }

    /// The verdict as a person reads it: a one-line summary, or the counterexample.
    pub fn describe(&self) -> String {
        match self {
            Verdict::Pass {
                trials,
                max_rel_error,
            } => format!(
                "passed {trials} random trial{}, largest relative error {max_rel_error:.1e}",
                if *trials == 1 { "" } else { "s" }
            ),
            Verdict::Fail(counterexample) => format!("failed:\n{}", counterexample.describe()),
            Verdict::Inconclusive { reason } => format!("inconclusive: {reason}"),
            Verdict::Unreadable { reason } => format!("failed: {reason}"),
        }
    }
}

/// A random instance on which a claim disagrees with its reference.
#[derive(Clone, Debug, PartialEq)]
pub struct Counterexample {
    /// What was checked, e.g. `gradient with respect to W`.
    pub checked: String,
    /// What the claim was compared with: `finite differences` or `right-hand side`.
    pub reference: String,
    /// The size of every size symbol.
    pub sizes: BTreeMap<Symbol, usize>,
    /// The inputs: every variable, and every direction `dX` under [`differential_key`].
    pub values: BTreeMap<Symbol, DMatrix<f64>>,
    /// The reference result (finite differences, or the right-hand side of an equality).
    pub expected: DMatrix<f64>,
    /// The claimed result (the derivative, or the left-hand side of an equality).
    pub claimed: DMatrix<f64>,
    /// The 0-based (row, column) of the largest difference.
    pub worst: (usize, usize),
    /// The normalised error (see the module docs); infinite when the shapes differ.
    pub rel_error: f64,
}

impl Counterexample {
    /// A readable report: sizes, inputs (4 significant digits), both results, and the
    /// entry with the largest difference, numbered from 1 as in mathematics.
    ///
    /// # Examples
    /// ```
    /// use matcalc::numeric::Counterexample;
    /// use nalgebra::DMatrix;
    /// let counterexample = Counterexample {
    ///     checked: "gradient with respect to x".into(),
    ///     reference: "finite differences".into(),
    ///     sizes: [("n".to_string(), 2)].into(),
    ///     values: [("x".to_string(), DMatrix::from_column_slice(2, 1, &[1.0, -0.5]))].into(),
    ///     expected: DMatrix::from_column_slice(2, 1, &[2.0, -1.0]),
    ///     claimed: DMatrix::from_column_slice(2, 1, &[1.0, -0.5]),
    ///     worst: (0, 0),
    ///     rel_error: 0.5,
    /// };
    /// let text = counterexample.describe();
    /// assert!(text.contains("sizes: n = 2"));
    /// assert!(text.contains("x = [1; -0.5]"));
    /// assert!(text.contains("largest difference at entry (1, 1): claimed 1 vs finite differences 2"));
    /// ```
    pub fn describe(&self) -> String {
        let mut out = format!("{}, compared with {}\n", self.checked, self.reference);
        if !self.sizes.is_empty() {
            let sizes: Vec<String> = self
                .sizes
                .iter()
                .map(|(name, size)| format!("{name} = {size}"))
                .collect();
            out += &format!("sizes: {}\n", sizes.join(", "));
        }
        for (name, value) in &self.values {
            out += &format!("{name} = {}\n", format_matrix(value));
        }
        out += &format!("claimed: {}\n", format_matrix(&self.claimed));
        out += &format!("{}: {}\n", self.reference, format_matrix(&self.expected));
        if self.claimed.shape() != self.expected.shape() {
            let (claimed_rows, claimed_cols) = self.claimed.shape();
            let (expected_rows, expected_cols) = self.expected.shape();
            out += &format!(
                "the claimed result is {claimed_rows}×{claimed_cols} but the {} are \
                 {expected_rows}×{expected_cols}",
                self.reference
            );
        } else {
            let (row, col) = self.worst;
            let claimed = self.claimed.get((row, col)).copied().unwrap_or(f64::NAN);
            let expected = self.expected.get((row, col)).copied().unwrap_or(f64::NAN);
            out += &format!(
                "largest difference at entry ({}, {}): claimed {} vs {} {} (relative error {:.1e})",
                row + 1,
                col + 1,
                format_number(claimed),
                self.reference,
                format_number(expected),
                self.rel_error
            );
        }
        out
    }
}

/// Why an expression has no value on an instance.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// The instance is outside the expression's domain: a singular or badly conditioned
    /// inverse, the log of a non-positive number, an overflow. A check redraws.
    #[error("undefined: {0}")]
    Undefined(String),
    /// The instance lacks something the expression needs: a variable's value, a size, a
    /// direction `dX`.
    #[error("missing: {0}")]
    Missing(String),
    /// The operands' values do not fit the operation: the tree is not well typed.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A size is too large to evaluate (see [`MAX_ENTRIES`]).
    #[error("too large: {0}")]
    TooLarge(String),
}

impl EvalError {
    /// The error as a person reads it.
    pub fn diagnostic(&self) -> Diagnostic {
        let diagnostic = Diagnostic::new(self.to_string());
        match self {
            EvalError::Undefined(_) => diagnostic,
            EvalError::Missing(_) => {
                diagnostic.hint("every variable, size and direction needs a value")
            }
            EvalError::Shape(_) => diagnostic.hint("run shape inference before evaluating"),
            EvalError::TooLarge(_) => diagnostic.hint("use symbolic sizes to check numerically"),
        }
    }
}

fn undefined(what: impl Into<String>) -> EvalError {
    EvalError::Undefined(what.into())
}

fn mismatch(what: impl Into<String>) -> EvalError {
    EvalError::Shape(what.into())
}

/// The smooth stand-in for an opaque scalar function `ℓ` on vectors of one length:
/// ℓ(v) = ½ vᵀAv + bᵀv, so ∇ℓ(v) = Av + b (A symmetric).
#[derive(Clone, Debug, PartialEq)]
pub struct OpaqueStandIn {
    /// The symmetric matrix A.
    pub quadratic: DMatrix<f64>,
    /// The vector b.
    pub linear: DVector<f64>,
}

impl OpaqueStandIn {
    fn draw(length: usize, rng: &mut impl Rng) -> OpaqueStandIn {
        let square = DMatrix::from_fn(length, length, |_, _| standard_normal(rng));
        let quadratic = (&square + square.transpose()) * 0.25;
        let linear = DVector::from_fn(length, |_, _| 0.5 * standard_normal(rng));
        OpaqueStandIn { quadratic, linear }
    }

    /// ℓ(v) for the entries of `argument` taken column by column.
    fn value(&self, argument: &DMatrix<f64>) -> f64 {
        let v = DVector::from_column_slice(argument.as_slice());
        0.5 * v.dot(&(&self.quadratic * &v)) + self.linear.dot(&v)
    }

    /// ∇ℓ(v), shaped like `argument`.
    fn gradient(&self, argument: &DMatrix<f64>) -> DMatrix<f64> {
        let v = DVector::from_column_slice(argument.as_slice());
        let gradient = &self.quadratic * &v + &self.linear;
        DMatrix::from_column_slice(argument.nrows(), argument.ncols(), gradient.as_slice())
    }
}

/// Concrete sizes and values for evaluating expressions.
#[derive(Clone, Debug)]
pub struct Instance {
    /// The size of every size symbol (`n`, `m`).
    pub sizes: BTreeMap<Symbol, usize>,
    /// The value of every variable, and every direction `dX` under [`differential_key`].
    pub values: BTreeMap<Symbol, DMatrix<f64>>,
    /// The seed from which each opaque function's stand-in is drawn, per (name, argument
    /// length), the first time it is needed.
    pub opaque_seed: u64,
    opaque_cache: RefCell<BTreeMap<(Symbol, usize), Rc<OpaqueStandIn>>>,
}

impl Instance {
    /// An instance with the given sizes and values, and opaque-function seed 0.
    pub fn new(sizes: BTreeMap<Symbol, usize>, values: BTreeMap<Symbol, DMatrix<f64>>) -> Instance {
        Instance {
            sizes,
            values,
            opaque_seed: 0,
            opaque_cache: RefCell::default(),
        }
    }

    /// The stand-in for the opaque function `name` on arguments of `length` entries. It
    /// depends only on `opaque_seed`, `name` and `length`, never on the order of calls.
    pub fn opaque_function(&self, name: &str, length: usize) -> Rc<OpaqueStandIn> {
        let key = (name.to_string(), length);
        if let Some(stand_in) = self.opaque_cache.borrow().get(&key) {
            return Rc::clone(stand_in);
        }
        let seed = fnv1a(name.as_bytes())
            ^ self.opaque_seed.rotate_left(17)
            ^ (length as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let stand_in = Rc::new(OpaqueStandIn::draw(length, &mut rng));
        self.opaque_cache
            .borrow_mut()
            .insert(key, Rc::clone(&stand_in));
        stand_in
    }

    /// The concrete size of a dimension.
    pub fn dim(&self, dim: &Dim) -> Result<usize, EvalError> {
        match dim {
            Dim::Known(n) => {
                usize::try_from(*n).map_err(|_| EvalError::TooLarge(format!("size {n}")))
            }
            Dim::Sym(name) => self
                .sizes
                .get(name.as_str())
                .copied()
                .ok_or_else(|| EvalError::Missing(format!("no value for the size `{name}`"))),
            Dim::Unknown => Err(EvalError::Missing(
                "a shape that was never inferred".to_string(),
            )),
            Dim::Product(factors) => factors.iter().try_fold(1usize, |product, factor| {
                let size = self.dim(factor)?;
                product
                    .checked_mul(size)
                    .ok_or_else(|| EvalError::TooLarge(format!("size {dim}")))
            }),
        }
    }

    /// The concrete shape, refused above [`MAX_ENTRIES`] entries.
    fn shape(&self, shape: &Shape) -> Result<(usize, usize), EvalError> {
        let (rows, cols) = (self.dim(&shape.rows)?, self.dim(&shape.cols)?);
        match rows.checked_mul(cols) {
            Some(entries) if entries <= MAX_ENTRIES => Ok((rows, cols)),
            _ => Err(EvalError::TooLarge(format!(
                "a {rows}×{cols} matrix has more than {MAX_ENTRIES} entries"
            ))),
        }
    }
}

/// The most entries a drawn or built matrix may have, so that a declared size such as
/// `W: 100000×100000` is refused instead of exhausting memory.
pub const MAX_ENTRIES: usize = 1 << 20;

/// The key of the direction `dX` of the variable `X` in [`Instance::values`]: `"dX"`.
pub fn differential_key(variable: &str) -> Symbol {
    format!("d{variable}")
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

// ---------------------------------------------------------------------------------------
// Evaluation.

/// The value of `expr` on `instance`.
///
/// `Num` nodes fill their shape (so a zero derivative `Num(0)` shaped `n×n` is the zero
/// matrix); `I` and `𝟙` take their size from the node's shape. A `1×1` operand of `+`,
/// `−`, `⊙`, `/` broadcasts, and a product with a `1×1` side is scaling. `diag` of a
/// column vector is a diagonal matrix and of a square matrix its diagonal. Opaque
/// functions use [`Instance::opaque_function`], differentials [`differential_key`].
///
/// # Examples
/// ```
/// use matcalc::expr::{build, Dim, Shape};
/// use matcalc::numeric::{evaluate, Instance};
/// use nalgebra::DMatrix;
/// let x = build::var("x", Shape::vector(Dim::Sym("n".into())));
/// let f = build::norm_sq(x);
/// let instance = Instance::new(
///     [("n".to_string(), 2)].into(),
///     [("x".to_string(), DMatrix::from_column_slice(2, 1, &[3.0, 4.0]))].into(),
/// );
/// assert_eq!(evaluate(&f, &instance)?[(0, 0)], 25.0);
/// # Ok::<(), matcalc::numeric::EvalError>(())
/// ```
pub fn evaluate(expr: &Expr, instance: &Instance) -> Result<DMatrix<f64>, EvalError> {
    Evaluator {
        instance,
        strict: false,
    }
    .run(expr)
}

/// Below this distance from a kink (relu, step), a strict evaluation calls the point
/// undefined: finite differences with steps of about 1e-3 would straddle it.
const STRICT_MARGIN: f64 = 0.05;
/// Above this condition number an inverse is treated as singular.
const MAX_CONDITION: f64 = 1e10;
/// Above this condition number a strict evaluation calls an inverse undefined, because
/// finite differences lose about this factor of accuracy.
const STRICT_MAX_CONDITION: f64 = 1e6;

struct Evaluator<'a> {
    instance: &'a Instance,
    /// Whether to reject points close to kinks, domain edges and singularity, where
    /// finite differences are unreliable. Used at the base point of a check only.
    strict: bool,
}

impl Evaluator<'_> {
    /// Evaluates without recursion, children first. Nodes shared through `Rc` are
    /// computed once per call, so a derivative DAG costs its number of distinct nodes.
    fn run(&self, root: &Expr) -> Result<DMatrix<f64>, EvalError> {
        let mut memo: HashMap<*const Expr, DMatrix<f64>> = HashMap::new();
        let mut results: Vec<DMatrix<f64>> = Vec::new();
        let mut stack: Vec<(&Expr, bool, bool)> = vec![(root, false, false)];
        while let Some((node, shared, expanded)) = stack.pop() {
            let pointer = node as *const Expr;
            if !expanded {
                if let Some(value) = memo.get(&pointer) {
                    results.push(value.clone());
                    continue;
                }
                stack.push((node, shared, true));
                for child in node.children().into_iter().rev() {
                    stack.push((child.as_ref(), Rc::strong_count(child) > 1, false));
                }
                continue;
            }
            let arity = node.children().len();
            let arguments = results.split_off(results.len().saturating_sub(arity));
            let value = self.node(node, arguments)?;
            if value.iter().any(|entry| !entry.is_finite()) {
                return Err(undefined(format!(
                    "overflow in {}",
                    describe_kind(&node.kind)
                )));
            }
            if shared {
                memo.insert(pointer, value.clone());
            }
            results.push(value);
        }
        results.pop().ok_or_else(|| mismatch("an empty expression"))
    }

    fn node(&self, node: &Expr, arguments: Vec<DMatrix<f64>>) -> Result<DMatrix<f64>, EvalError> {
        use ExprKind as K;
        let mut arguments = arguments.into_iter();
        let mut next = || {
            arguments
                .next()
                .ok_or_else(|| mismatch("an operation lacks an operand"))
        };
        let instance = self.instance;
        match &node.kind {
            K::Num(q) => {
                let value = q
                    .to_f64()
                    .ok_or_else(|| undefined("a constant too large for a float"))?;
                // A parsed literal has no inferred shape yet; it is a scalar.
                let (rows, cols) = if node.shape == Shape::unknown() {
                    (1, 1)
                } else {
                    instance.shape(&node.shape)?
                };
                Ok(DMatrix::from_element(rows, cols, value))
            }
            K::Var(name) => {
                instance.values.get(name).cloned().ok_or_else(|| {
                    EvalError::Missing(format!("no value for the variable `{name}`"))
                })
            }
            K::Differential(name) => instance
                .values
                .get(&differential_key(name))
                .cloned()
                .ok_or_else(|| EvalError::Missing(format!("no direction d{name}"))),
            K::Identity => {
                let (rows, cols) = instance.shape(&node.shape)?;
                Ok(DMatrix::identity(rows, cols))
            }
            K::Ones => {
                let (rows, cols) = instance.shape(&node.shape)?;
                Ok(DMatrix::from_element(rows, cols, 1.0))
            }
            K::Size(name) => {
                let size = instance.dim(&Dim::Sym(*name))?;
                Ok(DMatrix::from_element(1, 1, size as f64))
            }
            K::Neg(_) => Ok(-next()?),
            K::Add(_, _) => elementwise(next()?, next()?, "add", |a, b| a + b),
            K::Sub(_, _) => elementwise(next()?, next()?, "subtract", |a, b| a - b),
            K::Hadamard(_, _) => {
                elementwise(next()?, next()?, "multiply elementwise", |a, b| a * b)
            }
            K::Mul(_, _) => multiply(next()?, next()?),
            K::Div(_, _) => {
                let (a, b) = (next()?, next()?);
                if b.iter().any(|entry| *entry == 0.0) {
                    return Err(undefined("division by zero"));
                }
                elementwise(a, b, "divide", |a, b| a / b)
            }
            K::Transpose(_) => Ok(next()?.transpose()),
            K::Inverse(_) => self.inverse(next()?),
            K::Pow(_, k) => self.power(next()?, *k),
            K::Trace(_) => {
                let a = square(next()?, "the trace")?;
                Ok(scalar(a.trace()))
            }
            K::Det(_) => {
                let a = square(next()?, "the determinant")?;
                Ok(scalar(a.determinant()))
            }
            K::LogDet(_) => {
                let a = square(next()?, "the log-determinant")?;
                if self.strict {
                    self.inverse(a.clone())?;
                }
                let det = a.determinant();
                if det > 0.0 {
                    Ok(scalar(det.ln()))
                } else {
                    Err(undefined("log of a non-positive determinant"))
                }
            }
            K::NormSq(_) => Ok(scalar(next()?.norm_squared())),
            K::Sum(_) => Ok(scalar(next()?.sum())),
            K::Diag(_) => {
                let a = next()?;
                if a.ncols() == 1 {
                    Ok(DMatrix::from_diagonal(&a.column(0).into_owned()))
                } else if a.is_square() {
                    Ok(DMatrix::from_column_slice(
                        a.nrows(),
                        1,
                        a.diagonal().as_slice(),
                    ))
                } else {
                    Err(mismatch(format!(
                        "diag of a {}×{} matrix",
                        a.nrows(),
                        a.ncols()
                    )))
                }
            }
            K::Func(function, _) => self.function(*function, next()?),
            K::Apply(name, _) => {
                let argument = next()?;
                let stand_in = instance.opaque_function(name, argument.len());
                Ok(scalar(stand_in.value(&argument)))
            }
            K::Grad(name, _) => {
                let argument = next()?;
                let stand_in = instance.opaque_function(name, argument.len());
                Ok(stand_in.gradient(&argument))
            }
            K::Kron(_, _) => {
                let (a, b) = (next()?, next()?);
                match a.len().checked_mul(b.len()) {
                    Some(entries) if entries <= MAX_ENTRIES => Ok(a.kronecker(&b)),
                    _ => Err(EvalError::TooLarge(format!(
                        "a Kronecker product of {} and {} entries",
                        a.len(),
                        b.len()
                    ))),
                }
            }
            // Column-major storage is vec already.
            K::Vectorize(_) => {
                let a = next()?;
                Ok(DMatrix::from_column_slice(a.len(), 1, a.as_slice()))
            }
            K::Commutation(m, n) => {
                let (m, n) = (instance.dim(m)?, instance.dim(n)?);
                instance.shape(&node.shape)?;
                Ok(commutation(m, n))
            }
            K::Norm(_, kind) => self.norm(next()?, *kind),
            K::ElemDiv(_, _) => {
                let (a, b) = (next()?, next()?);
                if b.iter().any(|entry| *entry == 0.0) {
                    return Err(undefined("division by zero"));
                }
                if self.strict && b.iter().any(|entry| entry.abs() < STRICT_MARGIN) {
                    return Err(undefined("too close to a division by zero"));
                }
                elementwise(a, b, "divide elementwise", |a, b| a / b)
            }
            K::ElemPow(_, q) => self.elementwise_power(next()?, q),
            K::PowSym(_, k, offset) => {
                let base = next()?;
                let exponent = self
                    .integer_symbol(k)?
                    .checked_add(*offset)
                    .ok_or_else(|| undefined("an exponent too large"))?;
                if is_scalar(&base) {
                    let value = base[(0, 0)];
                    if exponent < 0 && value == 0.0 {
                        return Err(undefined("a negative power of zero"));
                    }
                    Ok(scalar(value.powi(exponent.clamp(-1000, 1000) as i32)))
                } else {
                    self.power(base, exponent)
                }
            }
            K::Softmax(_) => {
                let z = column(next()?, "softmax")?;
                Ok(softmax(&z))
            }
            K::LogSumExp(_) => {
                let z = column(next()?, "logsumexp")?;
                let top = z.max();
                Ok(scalar(top + z.map(|entry| (entry - top).exp()).sum().ln()))
            }
            K::Written(..) => next(),
        }
    }

    /// The value of the integer symbol `k` of `Xᵏ`, which must be a whole number.
    fn integer_symbol(&self, k: &str) -> Result<i64, EvalError> {
        let value = self
            .instance
            .values
            .get(k)
            .ok_or_else(|| EvalError::Missing(format!("no value for the integer `{k}`")))?;
        let entry = value[(0, 0)];
        if value.len() != 1 || entry.fract() != 0.0 || entry.abs() > 64.0 {
            return Err(mismatch(format!("`{k}` must be a small whole number")));
        }
        Ok(entry as i64)
    }

    fn norm(&self, a: DMatrix<f64>, kind: NormKind) -> Result<DMatrix<f64>, EvalError> {
        if self.strict {
            // ‖·‖₂ has a kink at 0 only; ‖·‖₁ wherever an entry is 0.
            let near_kink = match kind {
                NormKind::Two => a.norm() < STRICT_MARGIN,
                NormKind::One => a.iter().any(|entry| entry.abs() < STRICT_MARGIN),
            };
            if near_kink {
                return Err(undefined("too close to where the norm is not smooth"));
            }
        }
        Ok(scalar(match kind {
            NormKind::Two => a.norm(),
            NormKind::One => a.iter().map(|entry| entry.abs()).sum(),
        }))
    }

    fn elementwise_power(
        &self,
        mut a: DMatrix<f64>,
        q: &crate::expr::Rational,
    ) -> Result<DMatrix<f64>, EvalError> {
        let exponent = q
            .to_f64()
            .ok_or_else(|| undefined("an exponent too large for a float"))?;
        if !q.is_integer() && a.iter().any(|entry| *entry < 0.0) {
            return Err(undefined("a fractional power of a negative number"));
        }
        if exponent < 0.0 && a.iter().any(|entry| *entry == 0.0) {
            return Err(undefined("a negative power of zero"));
        }
        if self.strict {
            // A fractional power is not smooth at 0, a negative one not defined there.
            let needs_margin = !q.is_integer() || exponent < 0.0;
            if needs_margin && a.iter().any(|entry| entry.abs() < STRICT_MARGIN) {
                return Err(undefined("too close to 0 for this power"));
            }
        }
        match q.to_integer().to_i32().filter(|_| q.is_integer()) {
            Some(k) => a.apply(|entry| *entry = entry.powi(k)),
            None => a.apply(|entry| *entry = entry.powf(exponent)),
        }
        Ok(a)
    }

    fn inverse(&self, a: DMatrix<f64>) -> Result<DMatrix<f64>, EvalError> {
        let a = square(a, "the inverse")?;
        let norm = norm_one(&a);
        let inverse = a
            .lu()
            .try_inverse()
            .ok_or_else(|| undefined("singular matrix"))?;
        let condition = norm * norm_one(&inverse);
        let limit = if self.strict {
            STRICT_MAX_CONDITION
        } else {
            MAX_CONDITION
        };
        if !condition.is_finite() || condition > limit {
            return Err(undefined(format!(
                "singular matrix (condition number {condition:.1e})"
            )));
        }
        Ok(inverse)
    }

    fn power(&self, a: DMatrix<f64>, exponent: i64) -> Result<DMatrix<f64>, EvalError> {
        let a = square(a, "a matrix power")?;
        let mut base = if exponent < 0 { self.inverse(a)? } else { a };
        let mut remaining = exponent.unsigned_abs();
        let mut res = DMatrix::identity(base.nrows(), base.ncols());
        while remaining > 0 {
            if remaining & 1 == 1 {
                res = &res * &base;
            }
            remaining >>= 1;
            if remaining > 0 {
                base = &base * &base;
            }
            if res
                .iter()
                .chain(base.iter())
                .any(|entry| !entry.is_finite())
            {
                return Err(undefined("overflow in a matrix power"));
            }
        }
        Ok(res)
    }

    fn function(&self, function: Func, mut a: DMatrix<f64>) -> Result<DMatrix<f64>, EvalError> {
        match function {
            Func::Log if a.iter().any(|z| *z <= 0.0) => {
                return Err(undefined("log of a non-positive number"))
            }
            Func::Sqrt if a.iter().any(|z| *z < 0.0) => {
                return Err(undefined("sqrt of a negative number"))
            }
            Func::Arcsin | Func::Arccos if a.iter().any(|z| z.abs() > 1.0) => {
                return Err(undefined(format!(
                    "{} of a number outside [−1, 1]",
                    function.name()
                )))
            }
            Func::Tan if a.iter().any(|z| z.cos() == 0.0) => {
                return Err(undefined("tan at a pole"))
            }
            _ => {}
        }
        if self.strict {
            // Only kinks need a margin. log and sqrt are smooth wherever they are defined,
            // at 0.01 as at 100 (`log det(S/100)` of a well-conditioned S): a probe that
            // crosses zero is undefined and redraws, and a difference that curvature
            // spoils fails its error estimate and redraws.
            let near_edge = match function {
                Func::Relu | Func::Step | Func::Abs | Func::Sign => {
                    a.iter().any(|z| z.abs() < STRICT_MARGIN)
                }
                Func::Arcsin | Func::Arccos => a.iter().any(|z| z.abs() > 1.0 - STRICT_MARGIN),
                Func::Tan => a.iter().any(|z| z.cos().abs() < STRICT_MARGIN),
                _ => false,
            };
            if near_edge {
                return Err(undefined(format!(
                    "too close to where {} is not smooth",
                    function.name()
                )));
            }
        }
        let apply: fn(f64) -> f64 = match function {
            Func::Sigma => sigmoid,
            Func::Exp => f64::exp,
            Func::Log => f64::ln,
            Func::Tanh => f64::tanh,
            Func::Swish => |z| z * sigmoid(z),
            Func::Relu => |z| z.max(0.0),
            Func::Softplus => |z| z.max(0.0) + (-z.abs()).exp().ln_1p(),
            Func::Sqrt => |z| z.max(0.0).sqrt(),
            Func::Step => |z| if z > 0.0 { 1.0 } else { 0.0 },
            Func::Sin => f64::sin,
            Func::Cos => f64::cos,
            Func::Tan => f64::tan,
            Func::Arcsin => f64::asin,
            Func::Arccos => f64::acos,
            Func::Arctan => f64::atan,
            Func::Sinh => f64::sinh,
            Func::Cosh => f64::cosh,
            Func::Abs => f64::abs,
            Func::Sign => |z| {
                if z > 0.0 {
                    1.0
                } else if z < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            },
        };
        a.apply(|z| *z = apply(*z));
        Ok(a)
    }
}

/// The commutation matrix K₍ₘ,ₙ₎: K vec(A) = vec(Aᵀ) for an m×n matrix A. Entry (i, j)
/// of A sits at i + jm in vec(A) and at j + in in vec(Aᵀ).
pub fn commutation(m: usize, n: usize) -> DMatrix<f64> {
    let mut res = DMatrix::zeros(m * n, m * n);
    for i in 0..m {
        for j in 0..n {
            res[(j + i * n, i + j * m)] = 1.0;
        }
    }
    res
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// softmax(z) = exp(z − max z) / Σ exp(z − max z), the shift keeping exp finite.
fn softmax(z: &DMatrix<f64>) -> DMatrix<f64> {
    let top = z.max();
    let shifted = z.map(|entry| (entry - top).exp());
    let total = shifted.sum();
    shifted / total
}

/// `a` if it is a column vector, as the vector functions need.
fn column(a: DMatrix<f64>, what: &str) -> Result<DMatrix<f64>, EvalError> {
    if a.ncols() == 1 {
        Ok(a)
    } else {
        Err(mismatch(format!(
            "{what} of a {}×{} matrix",
            a.nrows(),
            a.ncols()
        )))
    }
}

fn scalar(value: f64) -> DMatrix<f64> {
    DMatrix::from_element(1, 1, value)
}

fn is_scalar(a: &DMatrix<f64>) -> bool {
    a.nrows() == 1 && a.ncols() == 1
}

/// The maximum absolute column sum, the matrix 1-norm.
fn norm_one(a: &DMatrix<f64>) -> f64 {
    a.column_iter()
        .map(|column| column.iter().map(|entry| entry.abs()).sum::<f64>())
        .fold(0.0, f64::max)
}

fn square(a: DMatrix<f64>, what: &str) -> Result<DMatrix<f64>, EvalError> {
    if a.is_square() {
        Ok(a)
    } else {
        Err(mismatch(format!(
            "{what} of a {}×{} matrix",
            a.nrows(),
            a.ncols()
        )))
    }
}

/// `a op b` entry by entry, a `1×1` side broadcasting.
fn elementwise(
    mut a: DMatrix<f64>,
    b: DMatrix<f64>,
    what: &str,
    op: impl Fn(f64, f64) -> f64,
) -> Result<DMatrix<f64>, EvalError> {
    if a.shape() == b.shape() {
        a.zip_apply(&b, |x, y| *x = op(*x, y));
        Ok(a)
    } else if is_scalar(&b) {
        let y = b[(0, 0)];
        a.apply(|x| *x = op(*x, y));
        Ok(a)
    } else if is_scalar(&a) {
        let x = a[(0, 0)];
        Ok(b.map(|y| op(x, y)))
    } else {
        Err(mismatch(format!(
            "cannot {what} {}×{} and {}×{}",
            a.nrows(),
            a.ncols(),
            b.nrows(),
            b.ncols()
        )))
    }
}

fn multiply(a: DMatrix<f64>, b: DMatrix<f64>) -> Result<DMatrix<f64>, EvalError> {
    if is_scalar(&a) {
        Ok(b * a[(0, 0)])
    } else if is_scalar(&b) {
        Ok(a * b[(0, 0)])
    } else if a.ncols() == b.nrows() {
        Ok(a * b)
    } else {
        Err(mismatch(format!(
            "cannot multiply {}×{} by {}×{}",
            a.nrows(),
            a.ncols(),
            b.nrows(),
            b.ncols()
        )))
    }
}

fn describe_kind(kind: &ExprKind) -> String {
    use ExprKind as K;
    let name = match kind {
        K::Num(_) => "a constant",
        K::Var(_) => "a variable",
        K::Differential(_) => "a differential",
        K::Identity => "I",
        K::Ones => "𝟙",
        K::Size(_) => "a size",
        K::Neg(_) => "a negation",
        K::Add(_, _) => "a sum",
        K::Sub(_, _) => "a difference",
        K::Mul(_, _) => "a product",
        K::Div(_, _) => "a division",
        K::Hadamard(_, _) => "an elementwise product",
        K::Transpose(_) => "a transpose",
        K::Inverse(_) => "an inverse",
        K::Pow(_, _) => "a matrix power",
        K::Trace(_) => "a trace",
        K::Det(_) => "a determinant",
        K::LogDet(_) => "a log-determinant",
        K::NormSq(_) => "a squared norm",
        K::Diag(_) => "diag",
        K::Sum(_) => "a sum of entries",
        K::Func(function, _) => return function.name().to_string(),
        K::Apply(name, _) => return name.clone(),
        K::Grad(name, _) => return format!("∇{name}"),
        K::Kron(_, _) => "a Kronecker product",
        K::Vectorize(_) => "vec",
        K::Commutation(..) => "a commutation matrix",
        K::Norm(_, _) => "a norm",
        K::ElemDiv(_, _) => "an elementwise division",
        K::ElemPow(_, _) => "an elementwise power",
        K::PowSym(_, _, _) => "a matrix power",
        K::Softmax(_) => "softmax",
        K::LogSumExp(_) => "logsumexp",
        K::Written(..) => "a notation",
    };
    name.to_string()
}

// ---------------------------------------------------------------------------------------
// Random instances.

/// A random instance for `typed`: every size symbol (of the declarations and of every
/// node) gets an independent size in 2..=4 (`Dim::Known` sizes stay as given), and every
/// variable a value that respects its declaration:
///
/// - a scalar (`1×1`): uniform in [0.5, 2], so logs and inverses of scalars are defined;
/// - `spd`: AAᵀ/n + I with A standard normal (eigenvalues about 1 to 5);
/// - `sym`: ½(B + Bᵀ) with B normal;
/// - any other matrix or vector: standard normal entries times a factor in [0.5, 1].
///
/// Domains are respected where a variable is the direct argument: a variable under `log`
/// or `sqrt`, or a denominator, gets entries in [0.5, 2]; a general square variable
/// under `log|·|` has a row negated if its determinant is negative, and a `sym` one is
/// drawn positive definite. Other domain violations make [`evaluate`] report
/// [`EvalError::Undefined`], and a check redraws.
pub fn draw_instance(typed: &Typed, rng: &mut impl Rng) -> Instance {
    draw_instance_for(typed, &[&typed.expr], &BTreeSet::new(), rng)
}

/// Draws an instance covering the sizes and variables of `exprs` as well, with a random
/// direction for every differential that occurs and for every variable in `directions`.
fn draw_instance_for(
    typed: &Typed,
    exprs: &[&Expr],
    directions: &BTreeSet<Symbol>,
    rng: &mut impl Rng,
) -> Instance {
    let facts = Facts::gather(typed, exprs);
    let sizes: BTreeMap<Symbol, usize> = facts
        .size_symbols
        .iter()
        .map(|name| (name.clone(), rng.gen_range(2..=4)))
        .collect();
    let mut instance = Instance::new(sizes, BTreeMap::new());
    for (name, decl) in &facts.vars {
        let Ok((rows, cols)) = instance.shape(&decl.shape) else {
            continue;
        };
        let domain = Domain {
            positive: facts.positive.contains(name),
            bounded: facts.bounded.contains(name),
            under_logdet: facts.under_logdet.contains(name),
        };
        let value = draw_value(rows, cols, decl.props, domain, rng);
        instance.values.insert(name.clone(), value);
    }
    for name in facts.differentials.iter().chain(directions) {
        let Some(decl) = facts.vars.get(name) else {
            continue;
        };
        let Ok((rows, cols)) = instance.shape(&decl.shape) else {
            continue;
        };
        let direction = draw_direction(rows, cols, decl.props, rng);
        instance.values.insert(differential_key(name), direction);
    }
    instance.opaque_seed = rng.gen();
    instance
}

/// What drawing needs to know about the expressions at hand.
struct Facts {
    size_symbols: BTreeSet<Symbol>,
    vars: BTreeMap<Symbol, VarDecl>,
    differentials: BTreeSet<Symbol>,
    positive: BTreeSet<Symbol>,
    /// Variables that are the direct argument of arcsin or arccos, drawn inside (−1, 1).
    bounded: BTreeSet<Symbol>,
    under_logdet: BTreeSet<Symbol>,
}

impl Facts {
    fn gather(typed: &Typed, exprs: &[&Expr]) -> Facts {
        let mut facts = Facts {
            size_symbols: BTreeSet::new(),
            vars: typed.vars.clone(),
            differentials: BTreeSet::new(),
            positive: BTreeSet::new(),
            bounded: BTreeSet::new(),
            under_logdet: BTreeSet::new(),
        };
        for decl in typed.vars.values() {
            facts.add_shape(&decl.shape);
        }
        for expr in exprs {
            // Shared subtrees once: a derivative's tree can be exponential in its DAG.
            for node in expr.distinct_nodes() {
                facts.visit(node);
            }
        }
        facts
    }

    fn add_shape(&mut self, shape: &Shape) {
        for dim in [&shape.rows, &shape.cols] {
            for name in dim.symbols() {
                self.size_symbols.insert(name.to_string());
            }
        }
    }

    fn visit(&mut self, node: &Expr) {
        use ExprKind as K;
        self.add_shape(&node.shape);
        match &node.kind {
            K::Size(name) => {
                self.size_symbols.insert(name.to_string());
            }
            K::Var(name) | K::Differential(name) => {
                if !self.vars.contains_key(name) && node.shape != Shape::unknown() {
                    let decl = VarDecl {
                        shape: node.shape.clone(),
                        props: Props::default(),
                    };
                    self.vars.insert(name.clone(), decl);
                }
                if let K::Differential(name) = &node.kind {
                    self.differentials.insert(name.clone());
                }
            }
            K::Func(Func::Log | Func::Sqrt, argument)
            | K::Div(_, argument)
            | K::ElemDiv(_, argument) => {
                if let Some(name) = direct_variable(argument) {
                    self.positive.insert(name.clone());
                }
            }
            K::ElemPow(argument, q) if !q.is_integer() => {
                if let Some(name) = direct_variable(argument) {
                    self.positive.insert(name.clone());
                }
            }
            K::Func(Func::Arcsin | Func::Arccos, argument) => {
                if let Some(name) = direct_variable(argument) {
                    self.bounded.insert(name.clone());
                }
            }
            K::LogDet(argument) => {
                if let Some(name) = direct_variable(argument) {
                    self.under_logdet.insert(name.clone());
                }
            }
            _ => {}
        }
    }
}

/// The variable `expr` is, through any transposes.
fn direct_variable(expr: &Expr) -> Option<&Symbol> {
    match &expr.kind {
        ExprKind::Var(name) => Some(name),
        ExprKind::Transpose(inner) => direct_variable(inner),
        _ => None,
    }
}

#[derive(Clone, Copy)]
struct Domain {
    positive: bool,
    bounded: bool,
    under_logdet: bool,
}

fn draw_value(
    rows: usize,
    cols: usize,
    props: Props,
    domain: Domain,
    rng: &mut impl Rng,
) -> DMatrix<f64> {
    let square = rows == cols;
    if props.integer {
        return scalar(f64::from(rng.gen_range(2..=4)));
    }
    if domain.bounded {
        return DMatrix::from_fn(rows, cols, |_, _| rng.gen_range(-0.8..=0.8));
    }
    if rows == 1 && cols == 1 {
        return scalar(rng.gen_range(0.5..=2.0));
    }
    if square && (props.positive_definite || (props.symmetric && domain.under_logdet)) {
        let a = DMatrix::from_fn(rows, cols, |_, _| standard_normal(rng));
        return &a * a.transpose() / rows as f64 + DMatrix::identity(rows, cols);
    }
    let mut value = if domain.positive {
        DMatrix::from_fn(rows, cols, |_, _| rng.gen_range(0.5..=2.0))
    } else {
        let factor = rng.gen_range(0.5..=1.0);
        DMatrix::from_fn(rows, cols, |_, _| factor * standard_normal(rng))
    };
    if square && props.symmetric {
        value = (&value + value.transpose()) * 0.5;
    }
    if square && domain.under_logdet && !props.symmetric && value.determinant() < 0.0 {
        value.row_mut(0).neg_mut();
    }
    value
}

fn draw_direction(rows: usize, cols: usize, props: Props, rng: &mut impl Rng) -> DMatrix<f64> {
    let direction = DMatrix::from_fn(rows, cols, |_, _| standard_normal(rng));
    if rows == cols && props.symmetric {
        (&direction + direction.transpose()) * 0.5
    } else {
        direction
    }
}

/// A standard normal draw (Box–Muller), so that no distribution crate is needed.
fn standard_normal(rng: &mut impl Rng) -> f64 {
    let uniform_open: f64 = 1.0 - rng.gen::<f64>();
    let angle: f64 = rng.gen::<f64>() * std::f64::consts::TAU;
    (-2.0 * uniform_open.ln()).sqrt() * angle.cos()
}

// ---------------------------------------------------------------------------------------
// Finite differences.

/// The first step, relative to max(1, |x|) over the perturbed entries. Central
/// differences at h, h/2 and h/4, extrapolated twice (Richardson), have a truncation
/// error of O(h⁶) and a rounding error of about 1e-16/h ≈ 1e-12, both relative to the
/// function's scale.
const FIRST_STEP: f64 = 1e-3;
/// The first step for second differences, whose rounding error grows like 1e-16/h²:
/// with h/4 = 2.5e-3 it is about 1e-10.
const SECOND_STEP: f64 = 1e-2;
/// How many times the step is divided by 8 when the error estimate is too large.
const STEP_REFINEMENTS: usize = 3;

/// Evaluates one expression at points moved along directions in one variable, always
/// restoring the variable's value.
struct Probe<'a> {
    expr: &'a Expr,
    var: &'a str,
    base: DMatrix<f64>,
    /// The largest estimated error (normalised like the comparison) that a finite
    /// difference may carry; a larger one is not trusted and the trial is redrawn.
    target: f64,
    /// Past it every evaluation stops, and the check with it.
    deadline: Option<std::time::Instant>,
    /// The rounding noise of F near the base point ([`Probe::noise`]), once measured.
    noise: std::cell::Cell<Option<f64>>,
}

/// How many times finer than the finest step the points of [`Probe::noise`] are spaced.
const NOISE_SPACING: f64 = 1e-2;

impl Probe<'_> {
    fn new<'a>(
        expr: &'a Expr,
        var: &'a str,
        base: DMatrix<f64>,
        tolerance: f64,
        deadline: Option<std::time::Instant>,
    ) -> Probe<'a> {
        Probe {
            expr,
            var,
            base,
            target: tolerance / 10.0,
            deadline,
            noise: std::cell::Cell::new(None),
        }
    }

    /// The rounding noise of evaluating F near the base point: an estimate of the
    /// standard deviation of the error each value of F carries, as Moré and Wild's
    /// ECnoise measures it. F is evaluated at seven points X + kδD (k = −3…3, D moving
    /// every entry, δ a hundredth of the finest step); a fourth difference cancels their
    /// smooth part (δ⁴F⁗ is far below any rounding), so each of the three holds noise
    /// only, of variance 70σ². The largest, over √70 and doubled, is a cautious σ.
    ///
    /// The last bit of |F| underestimates this where F is computed from values much
    /// larger than itself: log|S + ZZᵀ| with Z ≈ 86·𝟙𝟙ᵀ has noise near 1e-12, not 1e-15,
    /// and over a step of 4e-6 that is a derivative off by 1e-6 (random differential
    /// finding, seed 112). Measured once a point: the noise is the evaluation's.
    fn noise(&self, instance: &mut Instance) -> Result<f64, EvalError> {
        if let Some(noise) = self.noise.get() {
            return Ok(noise);
        }
        let direction = DMatrix::from_element(self.base.nrows(), self.base.ncols(), 1.0);
        let spacing = self.step(&direction, FIRST_STEP) / 4.0 * NOISE_SPACING;
        let mut values = Vec::with_capacity(7);
        for k in -3..=3 {
            values.push(self.at(instance, &direction, f64::from(k) * spacing)?);
        }
        let mut largest: f64 = 0.0;
        for window in values.windows(5) {
            let fourth =
                &window[0] - &window[1] * 4.0 + &window[2] * 6.0 - &window[3] * 4.0 + &window[4];
            largest = largest.max(fourth.amax());
        }
        let noise = 2.0 * largest / 70f64.sqrt();
        self.noise.set(Some(noise));
        Ok(noise)
    }

    fn at(
        &self,
        instance: &mut Instance,
        direction: &DMatrix<f64>,
        t: f64,
    ) -> Result<DMatrix<f64>, EvalError> {
        if self
            .deadline
            .is_some_and(|deadline| std::time::Instant::now() >= deadline)
        {
            // Undefined, so the trial loop comes round to its own deadline test.
            return Err(undefined(LATE.to_string()));
        }
        let moved = &self.base + direction * t;
        instance.values.insert(self.var.to_string(), moved);
        let res = evaluate(self.expr, instance);
        instance
            .values
            .insert(self.var.to_string(), self.base.clone());
        res
    }

    /// The step for `direction`: the base step times max(1, |x|) over the entries the
    /// direction moves, divided by the direction's largest entry.
    fn step(&self, direction: &DMatrix<f64>, base_step: f64) -> f64 {
        let mut scale: f64 = 1.0;
        let mut largest: f64 = 0.0;
        for (x, d) in self.base.iter().zip(direction.iter()) {
            if *d != 0.0 {
                scale = scale.max(x.abs());
                largest = largest.max(d.abs());
            }
        }
        if largest == 0.0 {
            base_step
        } else {
            base_step * scale / largest
        }
    }

    /// d/dt F(X + t·D) at t = 0.
    fn first(
        &self,
        instance: &mut Instance,
        direction: &DMatrix<f64>,
    ) -> Result<DMatrix<f64>, EvalError> {
        self.extrapolate(instance, direction, None)
    }

    /// The derivative of the scalar F in every entry of X, one entry at a time.
    fn gradient(&self, instance: &mut Instance) -> Result<DMatrix<f64>, EvalError> {
        let (rows, cols) = self.base.shape();
        let mut res = DMatrix::zeros(rows, cols);
        for col in 0..cols {
            for row in 0..rows {
                let derivative = self.first(instance, &unit(rows, cols, &[(row, col)]))?;
                if !is_scalar(&derivative) {
                    return Err(mismatch("a gradient needs a scalar function"));
                }
                res[(row, col)] = derivative[(0, 0)];
            }
        }
        Ok(res)
    }

    /// d²/dt² F(X + t·D) at t = 0, given F(X).
    fn second(
        &self,
        instance: &mut Instance,
        direction: &DMatrix<f64>,
        at_base: &DMatrix<f64>,
    ) -> Result<DMatrix<f64>, EvalError> {
        self.extrapolate(instance, direction, Some(at_base))
    }

    /// One central difference with step h: the first derivative, or the second when
    /// F(X) is given; with the largest magnitude of the values it differences.
    fn central(
        &self,
        instance: &mut Instance,
        direction: &DMatrix<f64>,
        at_base: Option<&DMatrix<f64>>,
        h: f64,
    ) -> Result<(DMatrix<f64>, f64), EvalError> {
        let forward = self.at(instance, direction, h)?;
        let backward = self.at(instance, direction, -h)?;
        let magnitude = forward.amax().max(backward.amax());
        Ok(match at_base {
            None => ((forward - backward) / (2.0 * h), magnitude),
            Some(at_base) => (
                (forward + backward - at_base * 2.0) / (h * h),
                magnitude.max(at_base.amax()),
            ),
        })
    }

    /// A Richardson table over steps h, h/2, h/4 (errors in h² and h⁴ cancelled). The
    /// difference between the last two levels estimates the error; when it exceeds the
    /// target the function changes too fast for this step, and the step shrinks. When no
    /// step gives a trusted value the point is undefined for the check, which redraws.
    fn extrapolate(
        &self,
        instance: &mut Instance,
        direction: &DMatrix<f64>,
        at_base: Option<&DMatrix<f64>>,
    ) -> Result<DMatrix<f64>, EvalError> {
        let base_step = if at_base.is_some() {
            SECOND_STEP
        } else {
            FIRST_STEP
        };
        let mut h = self.step(direction, base_step);
        let mut estimate = f64::INFINITY;
        for _ in 0..STEP_REFINEMENTS {
            let (coarse, _) = self.central(instance, direction, at_base, h)?;
            let (middle, _) = self.central(instance, direction, at_base, h / 2.0)?;
            let (fine, magnitude) = self.central(instance, direction, at_base, h / 4.0)?;
            let first_level = (&middle * 4.0 - coarse) / 3.0;
            let second_level = (fine * 4.0 - middle) / 3.0;
            let res = (&second_level * 16.0 - first_level) / 15.0;
            let scale = res.amax().max(1.0);
            // The rounding error of the finest difference, which the table cannot see
            // (when F is so large that F(X + h·D) and F(X − h·D) round to one number,
            // every level agrees on a derivative of 0; when F's noise is a large part of
            // its change, the levels can agree by chance): the error of each value (its
            // last bit, or the noise measured around the point, whichever is larger) over
            // the step, weighed by the extrapolation (64/45 for the finest level; 2 is
            // safe), must stay below half the tolerance (five times the target) so that
            // it cannot decide a verdict. A smaller step only rounds worse, so the point
            // is left for another (and the check, with no point left, is inconclusive).
            let fine_step = h / 4.0;
            let last_bit = magnitude * f64::EPSILON;
            let noise = self.noise(instance)?;
            let value_error = last_bit.max(noise);
            let rounding = match at_base {
                None => value_error / fine_step,
                Some(_) => 4.0 * value_error / (fine_step * fine_step),
            };
            if 2.0 * rounding / scale > 5.0 * self.target {
                return Err(undefined(if noise > last_bit {
                    format!(
                        "finite differences cannot resolve the tolerance here: the \
                         function's rounding noise ({noise:.1e}) over the step is comparable \
                         to it"
                    )
                } else {
                    format!(
                        "the function's value here ({magnitude:.1e}) is too large for finite \
                         differences to resolve its change"
                    )
                }));
            }
            estimate = (&res - second_level).amax() / scale;
            if estimate <= self.target {
                return Ok(res);
            }
            h /= 8.0;
        }
        Err(undefined(format!(
            "finite differences do not settle here (estimated error {estimate:.1e})"
        )))
    }
}

/// The gradient of the scalar `expr` in every entry of the variable `var`, by central
/// finite differences around `var`'s value in `instance`, the method of
/// [`check_derivative`]: steps h, h/2 and h/4 with h = 1e-3·max(1, |x|),
/// Richardson-extrapolated twice, the step shrunk while the estimated error exceeds
/// `tolerance / 10`. `var`'s value in `instance` is restored before returning.
///
/// # Errors
/// [`EvalError::Missing`] when `var` has no value, [`EvalError::Shape`] when `expr` is
/// not a scalar, [`EvalError::Undefined`] when `expr` is undefined near the point or the
/// differences do not settle, and any other error of [`evaluate`].
///
/// # Examples
/// ```
/// use matcalc::expr::{build, Dim, Shape};
/// use matcalc::numeric::{finite_difference_gradient, Instance};
/// use nalgebra::DMatrix;
/// // f = ‖x‖², with gradient 2x.
/// let x = build::var("x", Shape::vector(Dim::Sym("n".into())));
/// let f = build::norm_sq(x);
/// let mut instance = Instance::new(
///     [("n".to_string(), 3)].into(),
///     [("x".to_string(), DMatrix::from_column_slice(3, 1, &[1.0, -2.0, 3.0]))].into(),
/// );
/// let gradient = finite_difference_gradient(&f, "x", &mut instance, 1e-6).unwrap();
/// let exact = DMatrix::from_column_slice(3, 1, &[2.0, -4.0, 6.0]);
/// assert!((gradient - exact).amax() < 1e-8);
/// ```
pub fn finite_difference_gradient(
    expr: &Expr,
    var: &str,
    instance: &mut Instance,
    tolerance: f64,
) -> Result<DMatrix<f64>, EvalError> {
    let base = instance
        .values
        .get(var)
        .cloned()
        .ok_or_else(|| EvalError::Missing(format!("a value for `{var}`")))?;
    let probe = Probe::new(expr, var, base, tolerance, None);
    probe.gradient(instance)
}

/// The matrix with a 1 at each of the given entries and 0 elsewhere.
fn unit(rows: usize, cols: usize, entries: &[(usize, usize)]) -> DMatrix<f64> {
    let mut res = DMatrix::zeros(rows, cols);
    for entry in entries {
        res[*entry] = 1.0;
    }
    res
}

// ---------------------------------------------------------------------------------------
// Checks.

/// What an inconclusive check past its deadline says.
const LATE: &str = "the time limit was reached while checking";

/// Why a trial stopped before comparing.
enum Stop {
    /// Outside the domain: redraw.
    Undefined(String),
    /// Cannot be evaluated on any instance: give up.
    Broken(String),
}

impl From<EvalError> for Stop {
    fn from(error: EvalError) -> Stop {
        match error {
            EvalError::Undefined(reason) => Stop::Undefined(reason),
            other => Stop::Broken(other.to_string()),
        }
    }
}

type Outcome<T> = Result<T, Stop>;

/// A claimed result and its reference on one instance.
#[derive(Clone, Debug)]
pub struct Comparison {
    /// What is checked.
    pub claimed: DMatrix<f64>,
    /// What it should be.
    pub expected: DMatrix<f64>,
}

/// Checks a derivative against central finite differences of `f.expr` on
/// `config.trials` random instances, each redrawn up to `config.max_redraws` times when
/// the function or the derivative is undefined on it.
///
/// - `Gradient`: the derivative in every entry of the variable. For a symmetric
///   gradient the entries (i, j) and (j, i) move together; that derivative is
///   2·G[i, j] for i ≠ j and G[i, i] on the diagonal, for G = ½(∂f/∂X + (∂f/∂X)ᵀ).
/// - `Jacobian`: column j is the derivative of the vector f in entry j of x.
/// - `Differential`: the claimed dF (with a random direction dX, symmetric for a `sym`
///   variable) against the derivative of F along dX.
/// - `Hessian`: entry (i, j) is ¼ of the difference of the second derivatives of f
///   along eᵢ + eⱼ and eᵢ − eⱼ (the second derivative along eᵢ on the diagonal).
/// - `SecondDifferential`: the claimed d²f against the second derivative of f along dX.
///
/// All differences are central, at steps h, h/2 and h/4 (h = 1e-3·max(1, |x|) for
/// first and 1e-2·max(1, |x|) for second derivatives), Richardson-extrapolated twice;
/// on well-conditioned inputs they agree with exact derivatives to about 1e-10. The gap
/// between the last two extrapolation levels estimates the error: above a tenth of the
/// tolerance the step shrinks 8-fold (twice at most), and then the instance is redrawn,
/// so an unreliable difference never decides a verdict. Points close to a kink (relu,
/// step), to the edge of a domain (log, sqrt) or to a singular matrix are redrawn too.
///
/// # Examples
/// ```
/// use matcalc::diff::{Derivative, DerivativeKind};
/// use matcalc::expr::{build, Dim, Props, Shape, VarDecl};
/// use matcalc::numeric::{check_derivative, CheckConfig};
/// use matcalc::shape::Typed;
/// // f = ‖x‖², with gradient 2x.
/// let vector = Shape::vector(Dim::Sym("n".into()));
/// let x = build::var("x", vector.clone());
/// let f = Typed {
///     expr: (*build::norm_sq(x.clone())).clone(),
///     vars: [("x".to_string(), VarDecl { shape: vector, props: Props::default() })].into(),
///     fns: Default::default(),
/// };
/// let gradient = Derivative {
///     kind: DerivativeKind::Gradient,
///     wrt: "x".into(),
///     expr: (*build::mul(build::int(2), x)).clone(),
///     symmetric: false,
/// };
/// assert!(check_derivative(&f, &gradient, &CheckConfig::standard()).is_pass());
/// ```
pub fn check_derivative(f: &Typed, derivative: &Derivative, config: &CheckConfig) -> Verdict {
    let wrt = derivative.wrt.as_str();
    let needs_direction = matches!(
        derivative.kind,
        DerivativeKind::Differential | DerivativeKind::SecondDifferential
    );
    let directions: BTreeSet<Symbol> = if needs_direction {
        [wrt.to_string()].into()
    } else {
        BTreeSet::new()
    };
    let checked = describe_derivative(derivative);
    let exprs = [&f.expr, &derivative.expr];
    run_trials(
        config,
        &checked,
        "finite differences",
        |rng| draw_instance_for(f, &exprs, &directions, rng),
        |instance| compare_derivative(f, derivative, config, instance),
    )
}

fn describe_derivative(derivative: &Derivative) -> String {
    let wrt = &derivative.wrt;
    match derivative.kind {
        DerivativeKind::Gradient if derivative.symmetric => {
            format!("symmetric gradient with respect to {wrt}")
        }
        DerivativeKind::Gradient => format!("gradient with respect to {wrt}"),
        DerivativeKind::Jacobian => format!("Jacobian with respect to {wrt}"),
        DerivativeKind::Differential => format!("differential in d{wrt}"),
        DerivativeKind::Hessian => format!("Hessian with respect to {wrt}"),
        DerivativeKind::SecondDifferential => format!("second differential in d{wrt}"),
    }
}

fn compare_derivative(
    f: &Typed,
    derivative: &Derivative,
    config: &CheckConfig,
    instance: &mut Instance,
) -> Outcome<Comparison> {
    let tolerance = config.tolerance;
    let wrt = derivative.wrt.as_str();
    let strict = Evaluator {
        instance,
        strict: true,
    };
    let at_base = strict.run(&f.expr)?;
    let claimed = evaluate(&derivative.expr, instance)?;
    let base = instance.values.get(wrt).cloned().ok_or_else(|| {
        Stop::Broken(format!(
            "`{wrt}` has no value: it is neither declared nor used"
        ))
    })?;
    let (rows, cols) = base.shape();
    refuse_costly_check(f, derivative.kind, rows * cols, instance)?;
    let probe = Probe::new(&f.expr, wrt, base, tolerance, config.deadline);
    let expected = match derivative.kind {
        DerivativeKind::Gradient => {
            if !is_scalar(&at_base) {
                return Err(Stop::Broken(
                    "a gradient needs a scalar function".to_string(),
                ));
            }
            if derivative.symmetric && rows == cols {
                symmetric_gradient(&probe, instance, rows)?
            } else {
                probe.gradient(instance)?
            }
        }
        DerivativeKind::Jacobian => {
            let mut res = DMatrix::zeros(at_base.len(), rows * cols);
            for entry in 0..rows * cols {
                let direction = unit(rows, cols, &[(entry % rows, entry / rows)]);
                let column = probe.first(instance, &direction)?;
                res.column_mut(entry).copy_from_slice(column.as_slice());
            }
            res
        }
        DerivativeKind::Differential => {
            let direction = direction_of(instance, wrt)?;
            probe.first(instance, &direction)?
        }
        DerivativeKind::Hessian => {
            if !is_scalar(&at_base) {
                return Err(Stop::Broken(
                    "a Hessian needs a scalar function".to_string(),
                ));
            }
            let length = rows * cols;
            let position = |entry: usize| (entry % rows, entry / rows);
            let mut res = DMatrix::zeros(length, length);
            for i in 0..length {
                let along_i = unit(rows, cols, &[position(i)]);
                res[(i, i)] = probe.second(instance, &along_i, &at_base)?[(0, 0)];
                for j in 0..i {
                    let along_j = unit(rows, cols, &[position(j)]);
                    let sum = probe.second(instance, &(&along_i + &along_j), &at_base)?;
                    let difference = probe.second(instance, &(&along_i - &along_j), &at_base)?;
                    let mixed = (sum[(0, 0)] - difference[(0, 0)]) / 4.0;
                    res[(i, j)] = mixed;
                    res[(j, i)] = mixed;
                }
            }
            res
        }
        DerivativeKind::SecondDifferential => {
            let direction = direction_of(instance, wrt)?;
            probe.second(instance, &direction, &at_base)?
        }
    };
    Ok(Comparison { claimed, expected })
}

/// A rough bound on the arithmetic of a finite-difference check, past which the check is
/// refused (inconclusive) instead of running for minutes: declared sizes such as
/// `W: 1000×1000` are valid, but a million probes of a million-entry expression are not.
const MAX_CHECK_WORK: f64 = 1e10;

fn refuse_costly_check(
    f: &Typed,
    kind: DerivativeKind,
    entries: usize,
    instance: &Instance,
) -> Outcome<()> {
    let entries = entries as f64;
    let probes = match kind {
        DerivativeKind::Gradient | DerivativeKind::Jacobian => entries,
        DerivativeKind::Hessian => 2.0 * entries * entries,
        DerivativeKind::Differential | DerivativeKind::SecondDifferential => 1.0,
    };
    let largest_value = instance.values.values().map(|v| v.len()).max().unwrap_or(1) as f64;
    let largest_dim = instance
        .values
        .values()
        .map(|v| v.nrows().max(v.ncols()))
        .max()
        .unwrap_or(1) as f64;
    let work = probes * f.expr.size() as f64 * largest_value * largest_dim;
    if work > MAX_CHECK_WORK {
        return Err(Stop::Broken(format!(
            "too large to check numerically ({probes} finite-difference probes of values with \
             up to {largest_value} entries); declare smaller sizes to check"
        )));
    }
    Ok(())
}

/// The symmetric gradient by moving (i, j) and (j, i) together.
fn symmetric_gradient(
    probe: &Probe,
    instance: &mut Instance,
    n: usize,
) -> Result<DMatrix<f64>, EvalError> {
    let mut res = DMatrix::zeros(n, n);
    for i in 0..n {
        for j in i..n {
            let direction = unit(n, n, &[(i, j), (j, i)]);
            let derivative = probe.first(instance, &direction)?[(0, 0)];
            if i == j {
                res[(i, i)] = derivative;
            } else {
                res[(i, j)] = derivative / 2.0;
                res[(j, i)] = derivative / 2.0;
            }
        }
    }
    Ok(res)
}

fn direction_of(instance: &Instance, wrt: &str) -> Outcome<DMatrix<f64>> {
    instance
        .values
        .get(&differential_key(wrt))
        .cloned()
        .ok_or_else(|| Stop::Broken(format!("no direction d{wrt} could be drawn")))
}

/// Checks that `a` and `b` (typed expressions over `typed`'s variables) agree on
/// `config.trials` random instances, each redrawn up to `config.max_redraws` times when
/// either side is undefined. Differentials in either side get random directions. The
/// counterexample's `claimed` is `a`, its `expected` is `b`.
pub fn check_equal(typed: &Typed, a: &Expr, b: &Expr, config: &CheckConfig) -> Verdict {
    let exprs = [&typed.expr, a, b];
    run_trials(
        config,
        "left-hand side",
        "right-hand side",
        |rng| draw_instance_for(typed, &exprs, &BTreeSet::new(), rng),
        |instance| {
            Ok(Comparison {
                claimed: evaluate(a, instance)?,
                expected: evaluate(b, instance)?,
            })
        },
    )
}

/// Runs a check of the caller's own the way [`check_derivative`] and [`check_equal`] run
/// theirs: `config.trials` instances made by `draw` from a generator seeded with
/// `config.seed`, each compared by `compare`. An [`EvalError::Undefined`] redraws the
/// instance (up to `config.max_redraws` times), any other error makes the verdict
/// inconclusive, and the first comparison whose error exceeds `config.tolerance` is the
/// counterexample, which names `checked` and `reference` and shows the instance as
/// `compare` left it.
pub fn check_on_random_instances(
    config: &CheckConfig,
    checked: &str,
    reference: &str,
    draw: impl FnMut(&mut ChaCha8Rng) -> Instance,
    mut compare: impl FnMut(&mut Instance) -> Result<Comparison, EvalError>,
) -> Verdict {
    run_trials(config, checked, reference, draw, |instance| {
        Ok(compare(instance)?)
    })
}

/// Runs the trials of a check: draws, redraws while undefined, compares.
fn run_trials(
    config: &CheckConfig,
    checked: &str,
    reference: &str,
    mut draw: impl FnMut(&mut ChaCha8Rng) -> Instance,
    mut compare: impl FnMut(&mut Instance) -> Outcome<Comparison>,
) -> Verdict {
    if config.trials == 0 {
        return Verdict::Inconclusive {
            reason: "no trials were asked for".to_string(),
        };
    }
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut max_rel_error: f64 = 0.0;
    let late = |trial: usize| Verdict::Inconclusive {
        reason: format!(
            "{LATE} after {trial} of {} trials (raise --time-limit)",
            config.trials
        ),
    };
    for trial in 0..config.trials {
        let mut last_reason = String::new();
        let mut agreed = false;
        for _draw in 0..=config.max_redraws {
            if config
                .deadline
                .is_some_and(|deadline| std::time::Instant::now() >= deadline)
            {
                return late(trial);
            }
            let mut instance = draw(&mut rng);
            let comparison = match compare(&mut instance) {
                Ok(comparison) => comparison,
                Err(Stop::Undefined(reason)) => {
                    last_reason = reason;
                    continue;
                }
                Err(Stop::Broken(reason)) => {
                    return Verdict::Inconclusive {
                        reason: format!("cannot evaluate: {reason}"),
                    }
                }
            };
            let (worst, rel_error) = difference(&comparison.claimed, &comparison.expected);
            if rel_error > config.tolerance || rel_error.is_nan() {
                return Verdict::Fail(Box::new(Counterexample {
                    checked: checked.to_string(),
                    reference: reference.to_string(),
                    sizes: instance.sizes,
                    values: instance.values,
                    expected: comparison.expected,
                    claimed: comparison.claimed,
                    worst,
                    rel_error,
                }));
            }
            max_rel_error = max_rel_error.max(rel_error);
            agreed = true;
            break;
        }
        if !agreed {
            return Verdict::Inconclusive {
                reason: format!(
                    "no valid instance in {} draws for trial {}: the last was undefined ({last_reason})",
                    config.max_redraws + 1,
                    trial + 1
                ),
            };
        }
    }
    Verdict::Pass {
        trials: config.trials,
        max_rel_error,
    }
}

/// The entry of the largest difference and `max |claimed − expected| / max(1, max
/// |expected|)`, the error measure of every check; infinite when the shapes differ.
pub fn difference(claimed: &DMatrix<f64>, expected: &DMatrix<f64>) -> ((usize, usize), f64) {
    if claimed.shape() != expected.shape() {
        return ((0, 0), f64::INFINITY);
    }
    let scale = expected.amax().max(1.0);
    let mut worst = (0, 0);
    let mut largest = 0.0;
    for col in 0..claimed.ncols() {
        for row in 0..claimed.nrows() {
            let gap = (claimed[(row, col)] - expected[(row, col)]).abs();
            if gap > largest || gap.is_nan() {
                largest = gap;
                worst = (row, col);
            }
        }
    }
    (worst, largest / scale)
}

// ---------------------------------------------------------------------------------------
// Printing.

/// A number with 4 significant digits and no trailing zeros (`0.1235`, `-12.5`, `1.2e-7`).
fn format_number(x: f64) -> String {
    if x == 0.0 {
        return "0".to_string();
    }
    if !x.is_finite() {
        return x.to_string();
    }
    let exponent = x.abs().log10().floor() as i32;
    if (-4..6).contains(&exponent) {
        let decimals = (3 - exponent).max(0) as usize;
        trim_zeros(format!("{x:.decimals$}"))
    } else {
        let text = format!("{x:.3e}");
        match text.split_once('e') {
            Some((mantissa, power)) => format!("{}e{power}", trim_zeros(mantissa.to_string())),
            None => text,
        }
    }
}

fn trim_zeros(text: String) -> String {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// A matrix on one line, rows separated by `;`: `[1, 2; 3, 4]`; a `1×1` as a number.
fn format_matrix(matrix: &DMatrix<f64>) -> String {
    if is_scalar(matrix) {
        return format_number(matrix[(0, 0)]);
    }
    let rows: Vec<String> = matrix
        .row_iter()
        .map(|row| {
            row.iter()
                .map(|entry| format_number(*entry))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    format!("[{}]", rows.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_number_keeps_four_significant_digits() {
        assert_eq!(format_number(0.123456), "0.1235");
        assert_eq!(format_number(-12.5), "-12.5");
        assert_eq!(format_number(2.0), "2");
        assert_eq!(format_number(1234567.0), "1.235e6");
        assert_eq!(format_number(1.2e-7), "1.2e-7");
    }

    #[test]
    fn format_matrix_is_one_line() {
        let matrix = DMatrix::from_row_slice(2, 2, &[1.0, 2.0, 3.0, 4.5]);
        assert_eq!(format_matrix(&matrix), "[1, 2; 3, 4.5]");
    }

    #[test]
    fn softplus_is_stable_for_large_arguments() {
        let evaluator = Evaluator {
            instance: &Instance::new(BTreeMap::new(), BTreeMap::new()),
            strict: false,
        };
        let res = evaluator
            .function(
                Func::Softplus,
                DMatrix::from_column_slice(2, 1, &[800.0, -800.0]),
            )
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(res[(0, 0)], 800.0);
        assert!(res[(1, 0)] >= 0.0 && res[(1, 0)] < 1e-300);
    }
}
