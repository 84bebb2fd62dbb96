//! The vec form: the Jacobian ∂vec(F)/∂vec(X) of any F, derived from its differential dF
//! by the vec rules, and the Hessian matrix of a scalar f of a matrix X.
//!
//! Every node of dF that mentions `dX` gets the matrix J with vec(node) = J vec(dX),
//! children first (Magnus & Neudecker, ch. 9; Cookbook §10.2.2):
//!
//! | node            | J                                                            |
//! |-----------------|--------------------------------------------------------------|
//! | dX              | I (of size mn)                                               |
//! | A·dY, dY·B      | (I ⊗ A)J, (Bᵀ ⊗ I)J: vec(AYB) = (Bᵀ ⊗ A)vec(Y)              |
//! | s·B (s scalar)  | vec(B)J_s                                                    |
//! | dYᵀ (Y: r×c)    | K₍ᵣ,꜀₎J, the commutation matrix: K₍ᵣ,꜀₎vec(Y) = vec(Yᵀ)       |
//! | A ⊙ dY          | diag(vec(A))J                                                |
//! | tr(dY), sum(dY) | vec(I)ᵀJ, 𝟙ᵀJ                                                |
//! | A ⊗ dB, dA ⊗ B  | (Iₙ ⊗ K₍q,ₘ₎ ⊗ Iₚ)(vec(A) ⊗ I)J, (Iₙ ⊗ K₍q,ₘ₎ ⊗ Iₚ)(I ⊗ vec(B))J |
//!
//! The builders here apply the mixed product (A ⊗ B)(C ⊗ D) = AC ⊗ BD, drop identities
//! and use the vec trick vec(C)ᵀ(B ⊗ A) = vec(AᵀCB)ᵀ as they go, so that A dX B gives
//! Bᵀ ⊗ A directly; the simplifier does the rest, as for every other result.
//!
//! The Hessian of a scalar f is the Jacobian of its (unconstrained) gradient G:
//! d²f = tr(dXᵀ dG) = vec(dX)ᵀ H vec(dX) with H = ∂vec(G)/∂vec(X), symmetric.

use std::collections::HashMap;
use std::rc::Rc;

use super::{mentions_differential, Step};
use crate::diff::{Derivative, DerivativeKind, Error};
use crate::expr::{build, Dim, Expr, ExprKind, Shape};
use crate::shape::Typed;

/// The vec form of the derivative of `typed` with respect to `wrt`: with order 1 the
/// Jacobian ∂vec(F)/∂vec(X) (kind [`DerivativeKind::Jacobian`], `pq × mn` for F: p×q
/// and X: m×n), with order 2 the Hessian matrix of a scalar f in vec(X) (kind
/// [`DerivativeKind::Hessian`], `mn × mn`). Both are what [`crate::numeric::check_derivative`]
/// compares entry by entry with finite differences of vec(F).
///
/// # Examples
/// ```
/// use matcalc::forms::vec;
/// use matcalc::print::{render, Style};
/// let mut session = matcalc::session::Session::new();
/// session.declare("X: n×n").unwrap();
/// let typed = session.typed("X⁻¹").unwrap();
/// let jacobian = vec::derivative(&typed, "X", 1)?;
/// assert_eq!(render(&jacobian.expr, Style::Unicode), "−X⁻ᵀ ⊗ X⁻¹");
/// # Ok::<(), matcalc::diff::Error>(())
/// ```
pub fn derivative(typed: &Typed, wrt: &str, order: u8) -> Result<Derivative, Error> {
    let read = super::differential(typed, wrt, order)?;
    let kind = if order == 2 {
        DerivativeKind::Hessian
    } else {
        DerivativeKind::Jacobian
    };
    let expr = jacobian_of(&read.expr, wrt, &read.x_shape, &read.of_shape)?;
    Ok(Derivative {
        kind,
        wrt: wrt.to_string(),
        expr: (*expr).clone(),
        symmetric: false,
    })
}

/// The Jacobian J with vec(dF) = J vec(dX) of a differential `df` (an expression linear
/// in the differential of `wrt`, shaped like F: `f_shape`), for X shaped `x_shape`.
///
/// # Errors
/// [`Error::Unsupported`] when `df` is not linear in `dX` in a way the vec rules cover.
pub fn jacobian_of(
    df: &Expr,
    wrt: &str,
    x_shape: &Shape,
    f_shape: &Shape,
) -> Result<Rc<Expr>, Error> {
    Ok(vectorize(df, wrt, x_shape, f_shape, false)?.0)
}

/// [`jacobian_of`] with the vec rules it used, node by node, children first.
pub fn jacobian_with_steps(
    df: &Expr,
    wrt: &str,
    x_shape: &Shape,
    f_shape: &Shape,
) -> Result<(Rc<Expr>, Vec<Step>), Error> {
    vectorize(df, wrt, x_shape, f_shape, true)
}

/// The Jacobian, and the rules used if `with_steps` (writing them renders every node,
/// quadratic in a long product, so only `explain` asks).
fn vectorize(
    df: &Expr,
    wrt: &str,
    x_shape: &Shape,
    f_shape: &Shape,
    with_steps: bool,
) -> Result<(Rc<Expr>, Vec<Step>), Error> {
    let mut vectorizer = Vectorizer {
        wrt,
        x_size: x_shape.rows.times(&x_shape.cols),
        memo: HashMap::new(),
        steps: Vec::new(),
        with_steps,
    };
    let root = Rc::new(df.clone());
    // Combining products is linear in dF but for sums shared along several paths.
    let budget = 64 * root.dag_size() + 10_000;
    let jacobian = with_products_remembered(budget, || vectorizer.jacobian(&root))?;
    let rows = f_shape.rows.times(&f_shape.cols);
    let jacobian = jacobian.unwrap_or_else(|| {
        Rc::new(Expr::typed(
            ExprKind::Num(num_traits::Zero::zero()),
            Shape::new(rows, vectorizer.x_size.clone()),
        ))
    });
    Ok((jacobian, vectorizer.steps))
}

/// The differential the vec form is read from (dF, or dG of the gradient with order 2)
/// and the vec rules used on it, for `explain --form vec`.
///
/// # Examples
/// ```
/// use matcalc::forms::vec;
/// let mut session = matcalc::session::Session::new();
/// session.declare("X: n×n").unwrap();
/// let typed = session.typed("X⁻¹").unwrap();
/// let (differential, steps) = vec::steps(&typed, "X", 1)?;
/// assert_eq!(matcalc::print::render(&differential, matcalc::print::Style::Unicode), "−X⁻¹ dX X⁻¹");
/// assert!(steps.iter().any(|step| step.rule.contains("vec(dY M) = (Mᵀ ⊗ I) vec(dY)")));
/// # Ok::<(), matcalc::diff::Error>(())
/// ```
pub fn steps(typed: &Typed, wrt: &str, order: u8) -> Result<(Expr, Vec<Step>), Error> {
    let read = super::differential(typed, wrt, order)?;
    let (_, steps) = jacobian_with_steps(&read.expr, wrt, &read.x_shape, &read.of_shape)?;
    Ok((read.expr, steps))
}

fn text(expr: &Expr) -> String {
    crate::print::render(expr, crate::print::Style::Unicode)
}

struct Vectorizer<'a> {
    wrt: &'a str,
    /// mn, the length of vec(X).
    x_size: Dim,
    /// Jacobians of the nodes seen, by address: dF is a DAG.
    memo: HashMap<*const Expr, Option<Rc<Expr>>>,
    /// The rules used, in the order they were applied, for `explain`.
    steps: Vec<Step>,
    /// Whether to record `steps`.
    with_steps: bool,
}

fn unsupported(what: impl Into<String>) -> Error {
    Error::Unsupported { what: what.into() }
}

fn size(shape: &Shape) -> Dim {
    shape.rows.times(&shape.cols)
}

impl Vectorizer<'_> {
    /// J for `node`, `None` where the node does not mention dX (J = 0).
    fn jacobian(&mut self, node: &Rc<Expr>) -> Result<Option<Rc<Expr>>, Error> {
        let key = Rc::as_ptr(node);
        if let Some(known) = self.memo.get(&key) {
            return Ok(known.clone());
        }
        let res = if mentions_differential(node, self.wrt) {
            let res = self.rule(node)?;
            let rule = self.with_steps.then(|| self.rule_in_words(node)).flatten();
            if let Some(rule) = rule {
                self.steps.push(Step {
                    node: text(node),
                    rule,
                });
            }
            res
        } else {
            None
        };
        self.memo.insert(key, res.clone());
        Ok(res)
    }

    /// The rule [`Vectorizer::rule`] applies to `node`, in words with the node's own
    /// factors; `None` for the ones that say nothing (dX itself, −, +).
    fn rule_in_words(&self, node: &Expr) -> Option<String> {
        use ExprKind as K;
        let linear = |e: &Expr| mentions_differential(e, self.wrt);
        Some(match &node.kind {
            K::Mul(a, b) | K::Hadamard(a, b) if a.shape.is_scalar() || b.shape.is_scalar() => {
                let (scalar, other) = if a.shape.is_scalar() { (a, b) } else { (b, a) };
                if linear(scalar) && !other.shape.is_scalar() {
                    format!(
                        "vec(M ds) = vec(M) ds with M = {}: a scalar ds times a constant matrix",
                        text(other)
                    )
                } else {
                    return None;
                }
            }
            K::Mul(a, b) if linear(b) => format!(
                "vec(M dY) = (I ⊗ M) vec(dY) with M = {}, dY = {}: the vec trick vec(AYB) = (Bᵀ ⊗ A) vec(Y) with B = I",
                text(a),
                text(b)
            ),
            K::Mul(a, b) => format!(
                "vec(dY M) = (Mᵀ ⊗ I) vec(dY) with dY = {}, M = {}: the vec trick vec(AYB) = (Bᵀ ⊗ A) vec(Y) with A = I",
                text(a),
                text(b)
            ),
            K::Hadamard(a, b) => {
                let constant = if linear(a) { b } else { a };
                format!(
                    "vec(M ⊙ dY) = diag(vec(M)) vec(dY) with M = {}: a Hadamard product scales each entry",
                    text(constant)
                )
            }
            K::Div(_, b) if b.shape.is_scalar() => {
                format!("vec(dY/s) = vec(dY)/s with s = {}", text(b))
            }
            K::Div(_, b) => format!(
                "vec(dY ⊘ M) = diag(vec(1 ⊘ M)) vec(dY) with M = {}: elementwise division",
                text(b)
            ),
            K::Transpose(a) if !(a.shape.rows.is_one() || a.shape.cols.is_one()) => {
                let k = text(&build::commutation(a.shape.rows.clone(), a.shape.cols.clone()));
                format!(
                    "vec(dYᵀ) = {k} vec(dY) for dY: {}×{}: the commutation matrix {k} reorders the entries of vec(dY) into those of vec(dYᵀ)",
                    a.shape.rows, a.shape.cols
                )
            }
            K::Trace(a) if !a.shape.is_scalar() => {
                "tr(dY) = vec(I)ᵀ vec(dY): the trace adds the diagonal entries".to_string()
            }
            K::Sum(a) if !a.shape.is_scalar() => {
                "sum(dY) = 𝟙ᵀ vec(dY): the sum adds every entry".to_string()
            }
            K::Diag(a) if a.shape.cols.is_one() && !a.shape.is_scalar() => {
                "vec(diag(dy)) = diag(vec(I))(𝟙 ⊗ I) dy: dy's entries spread along the columns, kept on the diagonal".to_string()
            }
            K::Diag(a) if !a.shape.is_scalar() => {
                "diag(dY) = (𝟙ᵀ ⊗ I) diag(vec(I)) vec(dY): the diagonal entries of dY gathered into a vector".to_string()
            }
            K::Kron(a, b) => {
                let k = text(&build::commutation(b.shape.cols.clone(), a.shape.rows.clone()));
                let (factor, rule) = if linear(b) {
                    (a, "vec(A ⊗ dB) = (I ⊗ K ⊗ I)(vec(A) ⊗ I) vec(dB)")
                } else {
                    (b, "vec(dA ⊗ B) = (I ⊗ K ⊗ I)(I ⊗ vec(B)) vec(dA)")
                };
                format!(
                    "{rule}, the other factor {}, K = {k}: vec(A ⊗ B) = (I ⊗ K ⊗ I)(vec(A) ⊗ vec(B)) (Magnus & Neudecker, Theorem 3.10)",
                    text(factor)
                )
            }
            _ => return None,
        })
    }

    fn rule(&mut self, node: &Rc<Expr>) -> Result<Option<Rc<Expr>>, Error> {
        use ExprKind as K;
        let wrt = self.wrt;
        let not_linear = || {
            unsupported(format!(
                "the vec form: {} is not linear in d{wrt}",
                crate::print::render(node, crate::print::Style::Unicode),
            ))
        };
        let shape = &node.shape;
        Ok(match &node.kind {
            K::Differential(name) if name == self.wrt => Some(identity(self.x_size.clone())),
            K::Var(_) | K::Differential(_) => None,
            K::Neg(a) => self.jacobian(a)?.map(negate),
            K::Add(a, b) | K::Sub(a, b) => {
                let ja = self.jacobian(a)?.map(|j| broadcast(a, shape, j));
                let jb = self.jacobian(b)?.map(|j| broadcast(b, shape, j));
                let is_sub = matches!(node.kind, K::Sub(..));
                match (ja, jb) {
                    (Some(x), Some(y)) if is_sub => Some(build::sub(x, y)),
                    (Some(x), Some(y)) => Some(build::add(x, y)),
                    (Some(x), None) => Some(x),
                    (None, Some(y)) if is_sub => Some(negate(y)),
                    (None, Some(y)) => Some(y),
                    (None, None) => None,
                }
            }
            K::Mul(a, b) | K::Hadamard(a, b) => {
                let hadamard = matches!(node.kind, K::Hadamard(..));
                match (self.jacobian(a)?, self.jacobian(b)?) {
                    (Some(_), Some(_)) => return Err(not_linear()),
                    (None, None) => None,
                    (None, Some(jb)) => Some(product_rule(a, b, jb, true, hadamard)),
                    (Some(ja), None) => Some(product_rule(b, a, ja, false, hadamard)),
                }
            }
            K::Div(a, b) => {
                if self.jacobian(b)?.is_some() {
                    return Err(not_linear());
                }
                self.jacobian(a)?.map(|ja| {
                    if b.shape.is_scalar() {
                        build::div(ja, b.clone())
                    } else {
                        // Elementwise: dA / B = (1/B) ⊙ dA.
                        let reciprocal = build::div(build::int(1), b.clone());
                        mul(build::diag(vec_of(&reciprocal)), ja)
                    }
                })
            }
            K::Transpose(a) => self.jacobian(a)?.map(|ja| {
                let (rows, cols) = (&a.shape.rows, &a.shape.cols);
                if rows.is_one() || cols.is_one() {
                    ja
                } else {
                    mul(build::commutation(rows.clone(), cols.clone()), ja)
                }
            }),
            K::Trace(a) => self.jacobian(a)?.map(|ja| {
                if a.shape.is_scalar() {
                    ja
                } else {
                    let identity = build::identity(a.shape.rows.clone());
                    mul(transpose(vec_of(&identity)), ja)
                }
            }),
            K::Sum(a) => self.jacobian(a)?.map(|ja| {
                if a.shape.is_scalar() {
                    ja
                } else {
                    mul(transpose(build::ones(size(&a.shape))), ja)
                }
            }),
            K::Diag(a) => self.jacobian(a)?.map(|ja| {
                if a.shape.is_scalar() {
                    return ja;
                }
                let n = a.shape.rows.clone();
                let identity = build::identity(n.clone());
                let on_diagonal = build::diag(vec_of(&identity));
                if a.shape.cols.is_one() {
                    // vec(diag(v)) = diag(vec I)(𝟙 ⊗ I) v: v's entries spread along columns.
                    let spread = kron(build::ones(n), identity);
                    mul(on_diagonal, mul(spread, ja))
                } else {
                    // diag(A) = (I ⊙ A)𝟙, so vec(diag A) = (𝟙ᵀ ⊗ I) diag(vec I) vec(A).
                    let gather = kron(transpose(build::ones(n)), identity);
                    mul(gather, mul(on_diagonal, ja))
                }
            }),
            K::Vectorize(a) => self.jacobian(a)?,
            K::Kron(a, b) => {
                let (m, n) = (a.shape.rows.clone(), a.shape.cols.clone());
                let (p, q) = (b.shape.rows.clone(), b.shape.cols.clone());
                // vec(A ⊗ B) = (Iₙ ⊗ K₍q,ₘ₎ ⊗ Iₚ)(vec A ⊗ vec B), Magnus & Neudecker Thm 3.10.
                let shuffle = kron(
                    build::identity(n),
                    kron(build::commutation(q, m), build::identity(p)),
                );
                match (self.jacobian(a)?, self.jacobian(b)?) {
                    (Some(_), Some(_)) => return Err(not_linear()),
                    (None, None) => None,
                    (None, Some(jb)) => {
                        let spread = kron(vec_of(a), build::identity(size(&b.shape)));
                        Some(mul(shuffle, mul(spread, jb)))
                    }
                    (Some(ja), None) => {
                        let spread = kron(build::identity(size(&a.shape)), vec_of(b));
                        Some(mul(shuffle, mul(spread, ja)))
                    }
                }
            }
            _ => return Err(not_linear()),
        })
    }
}

/// J of `constant · linear` (or `linear · constant` when `!constant_first`), given the
/// linear factor's J; a Hadamard product when `hadamard`.
fn product_rule(
    constant: &Rc<Expr>,
    linear: &Rc<Expr>,
    j: Rc<Expr>,
    constant_first: bool,
    hadamard: bool,
) -> Rc<Expr> {
    if constant.shape.is_scalar() {
        return scale(constant.clone(), j);
    }
    if linear.shape.is_scalar() {
        // s·B = B·s = B ⊙ s: vec(sB) = vec(B) s.
        return mul(vec_of(constant), j);
    }
    if hadamard {
        return mul(build::diag(vec_of(constant)), j);
    }
    if constant_first {
        // vec(A dY) = (I ⊗ A) vec(dY), I of dY's columns.
        mul(
            kron(build::identity(linear.shape.cols.clone()), constant.clone()),
            j,
        )
    } else {
        // vec(dY B) = (Bᵀ ⊗ I) vec(dY), I of dY's rows.
        mul(
            kron(
                transpose(constant.clone()),
                build::identity(linear.shape.rows.clone()),
            ),
            j,
        )
    }
}

/// J of a scalar broadcast to `shape` (`1 − s` of a matrix): 𝟙 J.
fn broadcast(operand: &Expr, shape: &Shape, j: Rc<Expr>) -> Rc<Expr> {
    if operand.shape.is_scalar() && !shape.is_scalar() {
        mul(build::ones(size(shape)), j)
    } else {
        j
    }
}

// ---------------------------------------------------------------------------------------
// Builders that keep J readable.

fn identity(n: Dim) -> Rc<Expr> {
    build::identity(n)
}

fn is_identity(e: &Expr) -> bool {
    matches!(e.kind, ExprKind::Identity)
}

fn negate(e: Rc<Expr>) -> Rc<Expr> {
    match &e.kind {
        ExprKind::Neg(inner) => inner.clone(),
        _ => build::neg(e),
    }
}

fn scale(k: Rc<Expr>, e: Rc<Expr>) -> Rc<Expr> {
    if k.is_one() {
        e
    } else {
        build::mul(k, e)
    }
}

fn transpose(e: Rc<Expr>) -> Rc<Expr> {
    match &e.kind {
        ExprKind::Transpose(inner) => inner.clone(),
        ExprKind::Identity => e,
        _ if e.shape.is_scalar() => e,
        _ => build::transpose(e),
    }
}

/// vec(a); a column vector is its own vec.
fn vec_of(a: &Rc<Expr>) -> Rc<Expr> {
    if a.shape.cols.is_one() {
        a.clone()
    } else {
        build::vec(a.clone())
    }
}

/// a ⊗ b, with Iₘ ⊗ Iₙ = Iₘₙ and 1 ⊗ b = b.
fn kron(a: Rc<Expr>, b: Rc<Expr>) -> Rc<Expr> {
    if is_identity(&a) && is_identity(&b) {
        return identity(a.shape.rows.times(&b.shape.rows));
    }
    if a.shape.is_scalar() {
        return scale(a, b);
    }
    if b.shape.is_scalar() {
        return scale(b, a);
    }
    build::kron(a, b)
}

/// a·b with identities dropped, negations and scalars moved out, the mixed product
/// (A ⊗ B)(C ⊗ D) = AC ⊗ BD where the factors fit, and the vec trick on both sides:
/// (B ⊗ A)vec(C) = vec(ACBᵀ), vec(C)ᵀ(B ⊗ A) = vec(AᵀCB)ᵀ, K₍ₘ,ₙ₎vec(C) = vec(Cᵀ).
/// Two factors and their product.
type Made = (Rc<Expr>, Rc<Expr>, Rc<Expr>);

/// The products [`mul`] made, by the addresses of their factors (kept with them), and
/// how many more it may combine.
struct Products {
    made: HashMap<(*const Expr, *const Expr), Made>,
    budget: usize,
}

thread_local! {
    /// The products [`mul`] has made while a Jacobian is built: J is a DAG whose sums
    /// are shared, and distributing a product over a shared sum once per use would
    /// unfold the DAG into its tree (`zᵢ = zᵢ₋₁ ⊙ zᵢ₋₁`: 2ⁱ terms).
    static PRODUCTS: std::cell::RefCell<Option<Products>> = const { std::cell::RefCell::new(None) };
}

/// Runs `build` with the products [`mul`] makes remembered, then forgets them. Past
/// `budget` combined products, the rest are left as plain products: distributing over
/// sums that share subterms along different paths still multiplies the terms.
fn with_products_remembered<T>(budget: usize, build: impl FnOnce() -> T) -> T {
    PRODUCTS.with(|products| {
        *products.borrow_mut() = Some(Products {
            made: HashMap::new(),
            budget,
        })
    });
    let res = build();
    PRODUCTS.with(|products| *products.borrow_mut() = None);
    res
}

/// `ab`, combined where the vec rules allow; each pair of factors once while a
/// Jacobian is built ([`with_products_remembered`]).
fn mul(a: Rc<Expr>, b: Rc<Expr>) -> Rc<Expr> {
    let key = (Rc::as_ptr(&a), Rc::as_ptr(&b));
    enum Known {
        Made(Rc<Expr>),
        New,
        OverBudget,
        NotRemembering,
    }
    let known = PRODUCTS.with(|products| match products.borrow_mut().as_mut() {
        None => Known::NotRemembering,
        Some(products) => match products.made.get(&key) {
            Some((_, _, product)) => Known::Made(product.clone()),
            None if products.budget == 0 => Known::OverBudget,
            None => {
                products.budget -= 1;
                Known::New
            }
        },
    });
    match known {
        Known::Made(product) => product,
        Known::New => {
            let product = mul_uncached(a.clone(), b.clone());
            PRODUCTS.with(|products| {
                if let Some(products) = products.borrow_mut().as_mut() {
                    products.made.insert(key, (a, b, product.clone()));
                }
            });
            product
        }
        Known::OverBudget => build::mul(a, b),
        Known::NotRemembering => mul_uncached(a, b),
    }
}

fn mul_uncached(a: Rc<Expr>, b: Rc<Expr>) -> Rc<Expr> {
    use ExprKind as K;
    if is_identity(&a) && !b.shape.is_scalar() {
        return b;
    }
    if is_identity(&b) && !a.shape.is_scalar() {
        return a;
    }
    if a.shape.is_scalar() || b.shape.is_scalar() {
        return build::mul(a, b);
    }
    match (&a.kind, &b.kind) {
        (K::Neg(x), _) => return negate(mul(x.clone(), b)),
        (_, K::Neg(y)) => return negate(mul(a, y.clone())),
        (K::Mul(k, x), _) if k.shape.is_scalar() => {
            return build::mul(k.clone(), mul(x.clone(), b))
        }
        (_, K::Mul(k, y)) if k.shape.is_scalar() => {
            return build::mul(k.clone(), mul(a, y.clone()))
        }
        (K::Add(x, y), _) | (K::Sub(x, y), _) => {
            // Distribute so that each term meets the vec trick on its own.
            let left = mul(x.clone(), b.clone());
            let right = mul(y.clone(), b);
            return if matches!(a.kind, K::Add(..)) {
                build::add(left, right)
            } else {
                build::sub(left, right)
            };
        }
        (_, K::Add(x, y)) | (_, K::Sub(x, y)) => {
            let left = mul(a.clone(), x.clone());
            let right = mul(a, y.clone());
            return if matches!(b.kind, K::Add(..)) {
                build::add(left, right)
            } else {
                build::sub(left, right)
            };
        }
        (K::Kron(p, q), K::Kron(r, s))
            if p.shape.cols == r.shape.rows && q.shape.cols == s.shape.rows =>
        {
            return kron(mul(p.clone(), r.clone()), mul(q.clone(), s.clone()));
        }
        (K::Kron(p, q), K::Vectorize(c))
            if c.shape.rows == q.shape.cols && c.shape.cols == p.shape.cols =>
        {
            // (P ⊗ Q) vec(C) = vec(Q C Pᵀ).
            return vec_of(&mul(mul(q.clone(), c.clone()), transpose(p.clone())));
        }
        (K::Transpose(v), K::Kron(p, q)) => {
            if let K::Vectorize(c) = &v.kind {
                if c.shape.rows == q.shape.rows && c.shape.cols == p.shape.rows {
                    // vec(C)ᵀ(P ⊗ Q) = vec(QᵀCP)ᵀ.
                    let inner = mul(mul(transpose(q.clone()), c.clone()), p.clone());
                    return transpose(vec_of(&inner));
                }
            }
        }
        (K::Commutation(m, n), K::Vectorize(c)) if c.shape.rows == *m && c.shape.cols == *n => {
            return vec_of(&transpose(c.clone()));
        }
        (K::Transpose(v), K::Commutation(m, n)) => {
            // vec(C)ᵀK₍ₘ,ₙ₎ = (K₍ₙ,ₘ₎vec(C))ᵀ = vec(Cᵀ)ᵀ for C: n×m.
            if let K::Vectorize(c) = &v.kind {
                if c.shape.rows == *n && c.shape.cols == *m {
                    return transpose(vec_of(&transpose(c.clone())));
                }
            }
        }
        _ => {}
    }
    // Reassociate where that lets two neighbours combine: (XY)b = X(Yb), a(YZ) = (aY)Z.
    if let K::Mul(x, y) = &a.kind {
        if !x.shape.is_scalar() && !y.shape.is_scalar() {
            let right = mul(y.clone(), b.clone());
            if !is_plain_product(&right, y, &b) {
                return mul(x.clone(), right);
            }
        }
    }
    if let K::Mul(y, z) = &b.kind {
        if !y.shape.is_scalar() && !z.shape.is_scalar() {
            let left = mul(a.clone(), y.clone());
            if !is_plain_product(&left, &a, y) {
                return mul(left, z.clone());
            }
        }
    }
    build::mul(a, b)
}

/// Whether `product` is just the product node `left · right`, nothing combined.
fn is_plain_product(product: &Expr, left: &Rc<Expr>, right: &Rc<Expr>) -> bool {
    matches!(&product.kind, ExprKind::Mul(p, q) if Rc::ptr_eq(p, left) && Rc::ptr_eq(q, right))
}
