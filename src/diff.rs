//! Differentiation: takes a shape-checked [`Typed`] tree and a variable, returns its
//! derivative as a new typed tree (SPEC §4).
//!
//! The input is treated as a DAG: structurally equal subtrees are hash-consed into one
//! node, so a shared subexpression gets one adjoint that accumulates from all its uses and
//! is differentiated once. Every rule builds O(1) new nodes that point at the forward
//! expression's own `Rc` nodes, so the result grows linearly with the input.
//!
//! - Reverse mode with matrix adjoints gives the gradient of a scalar (shaped like the
//!   variable, Cookbook layout: ∂tr(AX)/∂X = Aᵀ).
//! - Forward mode gives the differential `dF`, linear in `dX`
//!   ([`ExprKind::Differential`]).
//! - A linear-extraction step writes a vector differential `df` as `J dx` (Jacobians and
//!   Hessians).
//!
//! Only light local cleanup happens here (`0 + x = x`, `1·x = x`, `−(−x) = x`,
//! `(xᵀ)ᵀ = x`, `(AB)ᵀ = BᵀAᵀ` for short products); factoring is the simplifier's job.

use std::collections::HashMap;
use std::rc::Rc;

use num_traits::Zero;

use crate::diag::Diagnostic;
use crate::expr::{build, Dim, Expr, ExprKind, Func, NormKind, Rational, Shape, Symbol};
use crate::shape::Typed;

/// Which kind of derivative a [`Derivative`] is (SPEC §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DerivativeKind {
    /// Scalar f, any variable: the gradient, shaped like the variable.
    Gradient,
    /// Vector f, vector or scalar x: the Jacobian, rows = f's length.
    Jacobian,
    /// Any f, matrix X: the differential dF, linear in dX.
    Differential,
    /// Scalar f, vector x, order 2: the Hessian.
    Hessian,
    /// Scalar f, matrix X, order 2: the second differential, quadratic in dX.
    SecondDifferential,
}

/// A derivative of an expression with respect to one variable.
#[derive(Clone, Debug)]
pub struct Derivative {
    /// Which kind.
    pub kind: DerivativeKind,
    /// The variable.
    pub wrt: String,
    /// The derivative itself (for differentials, an expression in `dX`).
    pub expr: Expr,
    /// Whether this is the symmetric gradient of a `sym`/`spd` variable.
    pub symmetric: bool,
}

/// Why a derivative could not be taken.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Error {
    /// The variable is not declared and does not occur in the expression.
    #[error("unknown variable `{name}`")]
    UnknownVariable {
        /// The name asked for.
        name: String,
        /// The nearest known variable name, if one is close.
        hint: Option<String>,
        /// Every variable there is, sorted.
        known: Vec<Symbol>,
    },
    /// The variable asked for is a size whose value the expression uses (`n` of
    /// `sum(X)/n` for `X: m×n`): a constant, not a variable.
    #[error("`{name}` is a size, not a variable: the expression uses its value, a constant")]
    SizeNotVariable {
        /// The name asked for.
        name: String,
    },
    /// The expression needs a rule matcalc does not have; it refuses rather than guess.
    #[error("unsupported: {what}")]
    Unsupported {
        /// What is not supported, as a phrase.
        what: String,
    },
    /// The derivative, written out, would pass a limit (`--max-nodes`).
    #[error("too large: {what}")]
    TooLarge {
        /// What would be too large, as a phrase.
        what: String,
    },
    /// A second derivative was asked of an expression that is not a scalar.
    #[error("a second derivative needs a scalar expression, but this one is {shape}")]
    NotScalar {
        /// The expression's shape.
        shape: Shape,
    },
}

impl Error {
    /// The error as a person reads it.
    pub fn diagnostic(&self) -> Diagnostic {
        let diagnostic = Diagnostic::new(self.to_string());
        match self {
            Error::UnknownVariable { hint, known, .. } => {
                let there = known_variables(known);
                match hint {
                    Some(hint) => diagnostic.hint(format!("did you mean `{hint}`? {there}")),
                    None => diagnostic.hint(format!(
                        "differentiate with respect to a variable of the expression; {there}"
                    )),
                }
            }
            Error::SizeNotVariable { name } => diagnostic.hint(format!(
                "to differentiate by `{name}`, declare it a variable (`{name}: scalar`)"
            )),
            Error::Unsupported { .. } => diagnostic,
            Error::TooLarge { .. } => diagnostic
                .hint("raise the limit with --max-nodes, or `:limits max-nodes` in the REPL"),
            Error::NotScalar { .. } => diagnostic
                .hint("take the Jacobian (order 1) of a vector, or the differential of a matrix"),
        }
    }
}

/// `the variables are `W`, `x`` (or that there are none), for unknown-variable hints.
pub fn known_variables(known: &[Symbol]) -> String {
    match known {
        [] => "the expression has no variables".to_string(),
        [only] => format!("the only variable is `{only}`"),
        _ => format!(
            "the variables are {}",
            known
                .iter()
                .map(|name| format!("`{name}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn unsupported(what: impl Into<String>) -> Error {
    Error::Unsupported { what: what.into() }
}

/// The derivative of `typed` with respect to the variable `wrt`, of order 1 or 2, its
/// kind chosen by SPEC §4:
///
/// | f      | x                | order 1        | order 2              |
/// |--------|------------------|----------------|----------------------|
/// | scalar | scalar or vector | gradient       | Hessian              |
/// | scalar | matrix           | gradient       | second differential  |
/// | vector | scalar or vector | Jacobian       | error `NotScalar`    |
/// | vector | matrix           | differential   | error `NotScalar`    |
/// | matrix | any              | differential   | error `NotScalar`    |
///
/// A variable declared `sym`/`spd` gets the symmetric gradient ½(G + Gᵀ), with
/// `symmetric` set. A variable that is declared but does not occur gives an explicit zero:
/// a `Num(0)` node carrying the derivative's shape.
///
/// # Examples
/// ```
/// use matcalc::expr::{build, Decls, Dim, Props, Shape, VarDecl};
/// use matcalc::shape::Typed;
/// use matcalc::diff::{derivative, DerivativeKind};
/// // f = tr(AX), with A: n×n and X: n×n.
/// let n = Dim::Sym("n".into());
/// let square = Shape::new(n.clone(), n.clone());
/// let a = build::var("A", square.clone());
/// let x = build::var("X", square.clone());
/// let f = build::trace(build::mul(a, x));
/// let decl = VarDecl { shape: square, props: Props::default() };
/// let typed = Typed {
///     expr: (*f).clone(),
///     vars: [("A".to_string(), decl.clone()), ("X".to_string(), decl)].into(),
///     fns: Default::default(),
/// };
/// let gradient = derivative(&typed, "X", 1)?;
/// assert_eq!(gradient.kind, DerivativeKind::Gradient);
/// assert_eq!(gradient.expr, *build::transpose(build::var("A", Shape::new(n.clone(), n))));
/// # Ok::<(), matcalc::diff::Error>(())
/// ```
pub fn derivative(typed: &Typed, wrt: &str, order: u8) -> Result<Derivative, Error> {
    let decl = lookup(typed, wrt)?;
    if decl.props.integer {
        return Err(unsupported(format!(
            "differentiating with respect to the integer {wrt}"
        )));
    }
    let f_shape = &typed.expr.shape;
    let x_shape = &decl.shape;
    let x_is_vector_like = x_shape.cols.is_one();
    let root = textbook_identities(&Rc::new(typed.expr.clone()));
    let (kind, expr, symmetric) = match order {
        1 if f_shape.is_scalar() => {
            let gradient = gradient_of(&root, wrt, x_shape)?;
            if decl.props.symmetric && !x_shape.is_scalar() {
                let symmetric = scale(half(), add(gradient.clone(), transpose(gradient)));
                (DerivativeKind::Gradient, symmetric, true)
            } else {
                (DerivativeKind::Gradient, gradient, false)
            }
        }
        1 if f_shape.cols.is_one() && x_is_vector_like => {
            let jacobian = jacobian_of(&root, wrt, x_shape)?;
            (DerivativeKind::Jacobian, jacobian, false)
        }
        1 => {
            let differential = differential_of(&root, wrt, x_shape)?;
            (DerivativeKind::Differential, differential, false)
        }
        2 if !f_shape.is_scalar() => {
            return Err(Error::NotScalar {
                shape: f_shape.clone(),
            })
        }
        2 if x_is_vector_like => {
            let gradient = gradient_of(&root, wrt, x_shape)?;
            let hessian = jacobian_of(&gradient, wrt, x_shape)?;
            (DerivativeKind::Hessian, hessian, false)
        }
        2 => {
            // d²f = ⟨d(∂f/∂X), dX⟩, the differential of tr(Gᵀ dX) along the same dX.
            let gradient = gradient_of(&root, wrt, x_shape)?;
            let gradient_differential = differential_of(&gradient, wrt, x_shape)?;
            let dx = build::differential(wrt, x_shape.clone());
            let second = if gradient_differential.is_zero() {
                zero(Shape::scalar())
            } else {
                inner(gradient_differential, dx)
            };
            (DerivativeKind::SecondDifferential, second, false)
        }
        _ => {
            return Err(unsupported(format!(
                "derivatives of order {order} (orders 1 and 2 are supported)"
            )))
        }
    };
    Ok(Derivative {
        kind,
        wrt: wrt.to_string(),
        expr: (*expr).clone(),
        symmetric,
    })
}

/// The differential of `typed` with respect to `wrt`: an expression shaped like `typed`,
/// linear in `dX` (an [`ExprKind::Differential`] node named `wrt`). A declared variable
/// that does not occur gives a `Num(0)` node carrying the expression's shape.
///
/// Rules: d(X⁻¹) = −X⁻¹ dX X⁻¹, d det X = det X · tr(X⁻¹dX), d log|X| = tr(X⁻¹dX),
/// d‖a‖² = 2⟨a, da⟩, d f(z) = f′(z) ⊙ dz, d ℓ(v) = ∇ℓ(v)ᵀdv. A gradient `∇ℓ(v)` that
/// depends on `wrt` is unsupported (it would need the Hessian of ℓ).
pub fn differential(typed: &Typed, wrt: &str) -> Result<Expr, Error> {
    let decl = lookup(typed, wrt)?;
    let root = Rc::new(typed.expr.clone());
    let res = differential_of(&root, wrt, &decl.shape)?;
    Ok((*res).clone())
}

/// The tree rewritten by identities that keep its value and give the derivative a
/// textbook's form rather than one through the inner function's chain rule:
/// `log(softmax(z)) = z − logsumexp(z)` (so its Jacobian is `I − 𝟙 softmax(z)ᵀ`, not a
/// product through `1 ⊘ softmax(z)`); `det(Aᵏ) = det(A)ᵏ`,
/// `log|Aᵏ| = k log|A|` and `log|A⁻¹| = −log|A|`, for an integer or a declared integer
/// symbol `k` (so `∂det(X⁵)/∂X = 5 det(X)⁵X⁻ᵀ`, `∂log det(X⁻¹)/∂X = −X⁻ᵀ`, and `det(Xᵏ)`,
/// whose power has no differential in closed form, is answered).
fn textbook_identities(root: &Rc<Expr>) -> Rc<Expr> {
    let graph = Graph::build(root);
    let mut rebuilt: Vec<Rc<Expr>> = Vec::with_capacity(graph.nodes.len());
    for (id, node) in graph.nodes.iter().enumerate() {
        let kids: Vec<Rc<Expr>> = graph.children[id]
            .iter()
            .map(|&kid| rebuilt[kid].clone())
            .collect();
        let unchanged = kids
            .iter()
            .zip(node.children())
            .all(|(new, old)| Rc::ptr_eq(new, old));
        let new_node = match (&node.kind, kids.first().map(|kid| &kid.kind)) {
            (ExprKind::Func(Func::Log, _), Some(ExprKind::Softmax(z))) => {
                build::sub(z.clone(), build::logsumexp(z.clone()))
            }
            (ExprKind::Det(_), Some(ExprKind::Pow(a, k))) => build::pow(build::det(a.clone()), *k),
            (ExprKind::Det(_), Some(ExprKind::PowSym(a, k, offset))) => {
                build::pow_sym(build::det(a.clone()), k, *offset)
            }
            (ExprKind::LogDet(_), Some(ExprKind::Pow(a, k))) => {
                mul(build::int(*k), build::logdet(a.clone()))
            }
            (ExprKind::LogDet(_), Some(ExprKind::PowSym(a, k, offset))) => {
                mul(symbolic_exponent(k, *offset), build::logdet(a.clone()))
            }
            (ExprKind::LogDet(_), Some(ExprKind::Inverse(a))) => neg(build::logdet(a.clone())),
            // log det(A), written with the scalar log, is log|A| where it is defined; its
            // argument, rewritten above, may be a power of the determinant.
            (ExprKind::Func(Func::Log, _), Some(ExprKind::Det(a))) if !a.shape.is_scalar() => {
                match &a.kind {
                    ExprKind::Inverse(b) => neg(build::logdet(b.clone())),
                    _ => build::logdet(a.clone()),
                }
            }
            (ExprKind::Func(Func::Log, _), Some(ExprKind::Pow(d, k))) if is_det(d) => {
                mul(build::int(*k), build::logdet(d.children()[0].clone()))
            }
            (ExprKind::Func(Func::Log, _), Some(ExprKind::PowSym(d, k, offset))) if is_det(d) => {
                let a = d.children()[0].clone();
                mul(symbolic_exponent(k, *offset), build::logdet(a))
            }
            (ExprKind::Func(Func::Log, _), Some(ExprKind::Inverse(d))) if is_det(d) => {
                neg(build::logdet(d.children()[0].clone()))
            }
            _ if unchanged => node.clone(),
            _ => {
                let mut copy = (**node).clone();
                for (slot, kid) in copy.children_mut().into_iter().zip(kids) {
                    *slot = kid;
                }
                Rc::new(copy)
            }
        };
        rebuilt.push(new_node);
    }
    rebuilt[graph.root()].clone()
}

/// Whether `e` is the determinant of a matrix.
fn is_det(e: &Expr) -> bool {
    matches!(&e.kind, ExprKind::Det(a) if !a.shape.is_scalar())
}

fn lookup<'a>(typed: &'a Typed, wrt: &str) -> Result<&'a crate::expr::VarDecl, Error> {
    let size_used = || {
        typed
            .expr
            .distinct_nodes()
            .iter()
            .any(|node| matches!(&node.kind, ExprKind::Size(size) if *size == wrt))
    };
    if !typed.vars.contains_key(wrt) && size_used() {
        return Err(Error::SizeNotVariable {
            name: wrt.to_string(),
        });
    }
    typed.vars.get(wrt).ok_or_else(|| Error::UnknownVariable {
        name: wrt.to_string(),
        hint: nearest_name(wrt, typed.vars.keys()),
        known: typed.vars.keys().cloned().collect(),
    })
}

/// The known name closest to `name` in edit distance, if it is close enough to be a typo.
fn nearest_name<'a>(name: &str, known: impl Iterator<Item = &'a Symbol>) -> Option<String> {
    known
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(distance, candidate)| {
            *distance <= 2 && *distance < candidate.chars().count().max(name.chars().count())
        })
        .min()
        .map(|(_, candidate)| candidate.clone())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution =
                previous[j] + usize::from(ca != cb && !ca.to_lowercase().eq(cb.to_lowercase()));
            let best = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
            current.push(best);
        }
        previous = current;
    }
    previous[b.len()]
}

// ---------------------------------------------------------------------------------------
// The hash-consed DAG.

/// The input as a DAG: one node per structurally distinct subtree, children before
/// parents, so the last node is the root.
struct Graph {
    nodes: Vec<Rc<Expr>>,
    children: Vec<Vec<usize>>,
}

#[derive(PartialEq, Eq, Hash)]
struct NodeKey {
    tag: std::mem::Discriminant<ExprKind>,
    children: Vec<usize>,
    payload: Payload,
}

#[derive(PartialEq, Eq, Hash)]
enum Payload {
    None,
    Leaf(ExprKind, Shape),
    Power(i64),
    Norm(NormKind),
    Exponent(Rational),
    Symbolic(Symbol, i64),
    Function(Func),
    Name(Symbol),
}

impl Graph {
    /// Numbers the distinct subtrees of `root` without recursion. Shared `Rc`s are found
    /// by pointer first, so a DAG is walked in time linear in its number of nodes, never
    /// in the size of its unfolded tree.
    fn build(root: &Rc<Expr>) -> Graph {
        let mut nodes: Vec<Rc<Expr>> = Vec::new();
        let mut children: Vec<Vec<usize>> = Vec::new();
        let mut by_pointer: HashMap<*const Expr, usize> = HashMap::new();
        let mut by_key: HashMap<NodeKey, usize> = HashMap::new();
        let mut stack: Vec<(Rc<Expr>, bool)> = vec![(root.clone(), false)];
        while let Some((node, expanded)) = stack.pop() {
            let pointer = Rc::as_ptr(&node);
            if by_pointer.contains_key(&pointer) {
                continue;
            }
            let kids = node.children();
            let missing: Vec<Rc<Expr>> = kids
                .iter()
                .filter(|kid| !by_pointer.contains_key(&Rc::as_ptr(kid)))
                .map(|kid| Rc::clone(kid))
                .collect();
            if !expanded || !missing.is_empty() {
                stack.push((node.clone(), true));
                stack.extend(missing.into_iter().map(|kid| (kid, false)));
                continue;
            }
            let child_ids: Vec<usize> = kids
                .iter()
                .map(|kid| by_pointer[&Rc::as_ptr(kid)])
                .collect();
            let key = NodeKey {
                tag: std::mem::discriminant(&node.kind),
                payload: payload_of(&node),
                children: child_ids.clone(),
            };
            let id = *by_key.entry(key).or_insert_with(|| {
                nodes.push(node.clone());
                children.push(child_ids);
                nodes.len() - 1
            });
            by_pointer.insert(pointer, id);
        }
        Graph { nodes, children }
    }

    fn root(&self) -> usize {
        self.nodes.len() - 1
    }

    /// For every node, whether it depends on the variable `wrt`.
    fn depends_on(&self, wrt: &str) -> Vec<bool> {
        let mut depends = vec![false; self.nodes.len()];
        for id in 0..self.nodes.len() {
            depends[id] = matches!(&self.nodes[id].kind, ExprKind::Var(v) if v == wrt)
                || self.children[id].iter().any(|&kid| depends[kid]);
        }
        depends
    }

    /// For every node, whether it mentions the differential `dX` of `wrt`.
    fn mentions_differential(&self, wrt: &str) -> Vec<bool> {
        let mut mentions = vec![false; self.nodes.len()];
        for id in 0..self.nodes.len() {
            mentions[id] = matches!(&self.nodes[id].kind, ExprKind::Differential(v) if v == wrt)
                || self.children[id].iter().any(|&kid| mentions[kid]);
        }
        mentions
    }
}

fn payload_of(node: &Expr) -> Payload {
    match &node.kind {
        ExprKind::Num(_)
        | ExprKind::Var(_)
        | ExprKind::Identity
        | ExprKind::Ones
        | ExprKind::Size(_)
        | ExprKind::Commutation(..)
        | ExprKind::Differential(_) => Payload::Leaf(node.kind.clone(), node.shape.clone()),
        ExprKind::Pow(_, k) => Payload::Power(*k),
        ExprKind::Norm(_, kind) => Payload::Norm(*kind),
        ExprKind::ElemPow(_, q) => Payload::Exponent(q.clone()),
        ExprKind::PowSym(_, k, offset) => Payload::Symbolic(k.clone(), *offset),
        ExprKind::Func(f, _) => Payload::Function(*f),
        ExprKind::Apply(name, _) | ExprKind::Grad(name, _) => Payload::Name(name.clone()),
        _ => Payload::None,
    }
}

// ---------------------------------------------------------------------------------------
// Reverse mode.

/// The gradient of the scalar `root` with respect to `wrt` (shaped `x_shape`).
fn gradient_of(root: &Rc<Expr>, wrt: &str, x_shape: &Shape) -> Result<Rc<Expr>, Error> {
    let graph = Graph::build(root);
    let depends = graph.depends_on(wrt);
    let mut adjoints: Vec<Option<Rc<Expr>>> = vec![None; graph.nodes.len()];
    adjoints[graph.root()] = Some(build::int(1));
    let mut res = None;
    for id in (0..graph.nodes.len()).rev() {
        if !depends[id] {
            continue;
        }
        let Some(adjoint) = adjoints[id].clone() else {
            continue;
        };
        let node = &graph.nodes[id];
        if matches!(&node.kind, ExprKind::Var(v) if v == wrt) {
            res = Some(adjoint);
            continue;
        }
        let needed: Vec<bool> = graph.children[id].iter().map(|&kid| depends[kid]).collect();
        for (position, contribution) in backpropagate(node, &adjoint, &needed)? {
            if contribution.is_zero() {
                continue;
            }
            let kid = graph.children[id][position];
            adjoints[kid] = Some(match adjoints[kid].take() {
                None => contribution,
                Some(sum) => add(sum, contribution),
            });
        }
    }
    Ok(res.unwrap_or_else(|| zero(x_shape.clone())))
}

/// The adjoint contributions of one node to its children: `(child position, Ḡ_child)`.
/// `needed[i]` says whether child `i` depends on the variable at all.
fn backpropagate(
    node: &Rc<Expr>,
    adjoint: &Rc<Expr>,
    needed: &[bool],
) -> Result<Vec<(usize, Rc<Expr>)>, Error> {
    use ExprKind as K;
    let g = adjoint.clone();
    let need = |i: usize| needed.get(i).copied().unwrap_or(false);
    let mut out: Vec<(usize, Rc<Expr>)> = Vec::new();
    match &node.kind {
        K::Num(_)
        | K::Var(_)
        | K::Identity
        | K::Ones
        | K::Size(_)
        | K::Differential(_)
        | K::Commutation(..) => {}
        K::Neg(_) => out.push((0, neg(g))),
        K::Add(a, b) | K::Sub(a, b) => {
            if need(0) {
                out.push((0, reduce_to(a, g.clone())));
            }
            if need(1) {
                let gb = reduce_to(b, g);
                let is_sub = matches!(node.kind, K::Sub(_, _));
                out.push((1, if is_sub { neg(gb) } else { gb }));
            }
        }
        K::Hadamard(a, b) if !a.shape.is_scalar() && !b.shape.is_scalar() => {
            if need(0) {
                out.push((0, elementwise(g.clone(), b.clone())));
            }
            if need(1) {
                out.push((1, elementwise(a.clone(), g)));
            }
        }
        // A Hadamard product with a scalar is a scaling, like a product with one.
        K::Mul(a, b) | K::Hadamard(a, b) => {
            let (ga, gb) = product_adjoints(a, b, &g, need(0), need(1));
            out.extend(ga.map(|x| (0, x)));
            out.extend(gb.map(|x| (1, x)));
        }
        K::Div(a, b) | K::ElemDiv(a, b) => {
            if b.shape.is_scalar() {
                if need(0) {
                    out.push((0, reduce_to(a, div(g.clone(), b.clone()))));
                }
                if need(1) {
                    let numerator = inner(g, a.clone());
                    out.push((1, neg(div(numerator, build::pow(b.clone(), 2)))));
                }
            } else {
                // Elementwise: ∂(a ⊘ b)/∂b = −(a ⊘ b) ⊘ b, written with the forward node.
                if need(0) {
                    out.push((0, reduce_to(a, div(g.clone(), b.clone()))));
                }
                if need(1) {
                    out.push((1, neg(div(elementwise(g, node.clone()), b.clone()))));
                }
            }
        }
        K::Transpose(_) => out.push((0, transpose(g))),
        K::Inverse(a) => {
            if a.shape.is_scalar() {
                out.push((0, neg(div(g, build::pow(a.clone(), 2)))));
            } else {
                let inverse_transposed = transpose(node.clone());
                out.push((
                    0,
                    neg(mul(mul(inverse_transposed.clone(), g), inverse_transposed)),
                ));
            }
        }
        K::Pow(a, k) => out.extend(power_rule(a, *k, &g, true).map(|x| (0, x))),
        // On a scalar, trace, determinant and diag are the identity.
        K::Trace(a) | K::Det(a) | K::Diag(a) if a.shape.is_scalar() => out.push((0, g)),
        K::Trace(a) => out.push((0, mul(g, build::identity(a.shape.rows.clone())))),
        K::Det(a) => {
            let inverse_transposed = transpose(build::inverse(a.clone()));
            out.push((0, mul(mul(g, node.clone()), inverse_transposed)));
        }
        K::LogDet(a) => {
            if a.shape.is_scalar() {
                out.push((0, div(g, a.clone())));
            } else {
                let inverse_transposed = transpose(build::inverse(a.clone()));
                out.push((0, mul(g, inverse_transposed)));
            }
        }
        K::NormSq(a) => out.push((
            0,
            scale(Rational::from_integer(2.into()), mul(g, a.clone())),
        )),
        K::Diag(_) => out.push((0, build::diag(g))),
        K::Sum(a) => out.push((0, broadcast_scalar(g, &a.shape))),
        K::Func(f, z) => out.extend(function_rule(*f, z, node, g).map(|x| (0, x))),
        K::Apply(name, v) => out.push((0, mul(g, build::grad(name, v.clone())))),
        K::Grad(name, _) => {
            return Err(unsupported(format!(
                "differentiating ∇{name}(…) would need the Hessian of the opaque function {name}"
            )))
        }
        // The adjoint of a Kronecker factor is a partial trace of Ḡ against the other
        // factor, and that of vec(A) is Ḡ reshaped; both are written with vec and ⊗.
        K::Kron(a, b) => {
            if need(0) {
                out.push((0, kron_adjoint_left(a, b, &g)));
            }
            if need(1) {
                out.push((1, kron_adjoint_right(a, b, &g)));
            }
        }
        K::Vectorize(a) => out.push((0, unvec(&g, &a.shape))),
        K::Norm(a, NormKind::Two) => out.push((0, mul(div(g, node.clone()), a.clone()))),
        K::Norm(a, NormKind::One) => out.push((0, mul(g, build::func(Func::Sign, a.clone())))),
        K::ElemPow(a, q) => out.push((0, elementwise_power_rule(a, q, g))),
        K::PowSym(a, k, offset) => out.push((0, symbolic_power_adjoint(a, k, *offset, g)?)),
        K::Softmax(_) => out.push((0, softmax_rule(node, g))),
        K::LogSumExp(z) => out.push((0, mul(g, build::softmax(z.clone())))),
        // A notation as written is the node inside (typed trees do not hold one).
        K::Written(..) => out.push((0, g)),
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Adjoints through ⊗ and vec, for A: m×n, B: p×q and Ḡ: mp×nq, whose block (i, j) (p×q)
// multiplies Aᵢⱼ. df = tr(Ḡᵀ(dA ⊗ B)) = Σᵢⱼ dAᵢⱼ ⟨Ḡᵢⱼ, B⟩ and
// tr(Ḡᵀ(A ⊗ dB)) = ⟨Σᵢⱼ AᵢⱼḠᵢⱼ, dB⟩: a partial trace of Ḡ against the other factor,
// which the notation writes with vec(I) picking the matching indices.

/// Ḡ_A = (Iₘ ⊗ vec(Iₚ)ᵀ)(Ḡ ⊗ Iₚ)(Iₙ ⊗ vec(B)): entry (i, j) is ⟨Ḡᵢⱼ, B⟩.
pub(crate) fn kron_adjoint_left(a: &Rc<Expr>, b: &Rc<Expr>, g: &Rc<Expr>) -> Rc<Expr> {
    let (m, n) = (a.shape.rows.clone(), a.shape.cols.clone());
    let p = b.shape.rows.clone();
    let pick = transpose(vec_of(eye(p.clone())));
    let left = kron(eye(m), pick);
    let right = kron(eye(n), vec_of(b.clone()));
    mul(mul(left, kron(g.clone(), eye(p))), right)
}

/// Ḡ_B = (vec(Iₘ)ᵀ ⊗ Iₚ)(Iₘ ⊗ Ḡ)(vec(Aᵀ) ⊗ I_q): Σᵢⱼ Aᵢⱼ Ḡᵢⱼ.
pub(crate) fn kron_adjoint_right(a: &Rc<Expr>, b: &Rc<Expr>, g: &Rc<Expr>) -> Rc<Expr> {
    let m = a.shape.rows.clone();
    let (p, q) = (b.shape.rows.clone(), b.shape.cols.clone());
    let pick = transpose(vec_of(eye(m.clone())));
    let left = kron(pick, eye(p));
    let right = kron(vec_of(transpose(a.clone())), eye(q));
    mul(mul(left, kron(eye(m), g.clone())), right)
}

/// The m×n matrix whose vec is `g` (mn × 1): (vec(Iₙ)ᵀ ⊗ Iₘ)(Iₙ ⊗ g).
pub(crate) fn unvec(g: &Rc<Expr>, shape: &Shape) -> Rc<Expr> {
    if shape.cols.is_one() {
        return g.clone();
    }
    let (m, n) = (shape.rows.clone(), shape.cols.clone());
    let pick = kron(transpose(vec_of(eye(n.clone()))), eye(m));
    mul(pick, kron(eye(n), g.clone()))
}

/// Iₙ, or the number 1 for n = 1.
fn eye(n: Dim) -> Rc<Expr> {
    if n.is_one() {
        build::int(1)
    } else {
        build::identity(n)
    }
}

/// vec(a); a column vector is its own vec.
fn vec_of(a: Rc<Expr>) -> Rc<Expr> {
    if a.shape.cols.is_one() {
        a
    } else {
        build::vec(a)
    }
}

/// a ⊗ b, a scalar factor written as a product.
fn kron(a: Rc<Expr>, b: Rc<Expr>) -> Rc<Expr> {
    if a.shape.is_scalar() || b.shape.is_scalar() {
        mul(a, b)
    } else {
        build::kron(a, b)
    }
}

/// Adjoints of the two factors of `a·b` (a matrix product or a scaling).
fn product_adjoints(
    a: &Rc<Expr>,
    b: &Rc<Expr>,
    g: &Rc<Expr>,
    need_a: bool,
    need_b: bool,
) -> (Option<Rc<Expr>>, Option<Rc<Expr>>) {
    let a_scalar = a.shape.is_scalar();
    let b_scalar = b.shape.is_scalar();
    let ga = need_a.then(|| match (a_scalar, b_scalar) {
        (true, true) => mul(g.clone(), b.clone()),
        (true, false) => inner(g.clone(), b.clone()),
        (false, true) => mul(b.clone(), g.clone()),
        (false, false) => mul(g.clone(), transpose(b.clone())),
    });
    let gb = need_b.then(|| match (a_scalar, b_scalar) {
        (true, true) => mul(a.clone(), g.clone()),
        (false, true) => inner(g.clone(), a.clone()),
        (true, false) => mul(a.clone(), g.clone()),
        (false, false) => mul(transpose(a.clone()), g.clone()),
    });
    (ga, gb)
}

/// The power rule for `aᵏ`, seeded with `seed`. With `adjoint`, the adjoint of `a`,
/// Σ_r (aʳ)ᵀ Ḡ (aᵏ⁻¹⁻ʳ)ᵀ; without, the differential d(aᵏ) = Σ_r aʳ da aᵏ⁻¹⁻ʳ. Negative
/// powers go through a⁻¹, whose rules are Ḡ_a = −a⁻ᵀ Ḡ a⁻ᵀ and d(a⁻¹) = −a⁻¹ da a⁻¹.
fn power_rule(a: &Rc<Expr>, k: i64, seed: &Rc<Expr>, adjoint: bool) -> Option<Rc<Expr>> {
    if k == 0 {
        return None;
    }
    if a.shape.is_scalar() {
        let coefficient = Rational::from_integer(k.into());
        return Some(scale(coefficient, mul(power(a, k - 1), seed.clone())));
    }
    if k > 0 {
        return Some(sum_of_power_terms(a, k, seed, adjoint));
    }
    let inverse = build::inverse(a.clone());
    Some(if adjoint {
        let inverse_adjoint = sum_of_power_terms(&inverse, -k, seed, true);
        let inverse_transposed = transpose(inverse);
        neg(mul(
            mul(inverse_transposed.clone(), inverse_adjoint),
            inverse_transposed,
        ))
    } else {
        let inverse_differential = neg(mul(mul(inverse.clone(), seed.clone()), inverse.clone()));
        sum_of_power_terms(&inverse, -k, &inverse_differential, false)
    })
}

/// Σ_{r=0}^{k−1} f(aʳ) · middle · f(aᵏ⁻¹⁻ʳ), with f the transpose when `transposed`.
/// A `middle` that commutes with every matrix (`I`, `cI`) makes the k terms one:
/// k · f(aᵏ⁻¹) · middle, so ∂tr(Aᵏ)/∂A is k(Aᵏ⁻¹)ᵀ (Cookbook (106)).
fn sum_of_power_terms(a: &Rc<Expr>, k: i64, middle: &Rc<Expr>, transposed: bool) -> Rc<Expr> {
    if k > 1 && is_scaled_identity(middle) {
        let power = if transposed {
            transpose(power(a, k - 1))
        } else {
            power(a, k - 1)
        };
        return scale(Rational::from_integer(k.into()), mul(power, middle.clone()));
    }
    let factor = |r: i64| -> Option<Rc<Expr>> {
        if r == 0 {
            None
        } else if transposed {
            Some(transpose(power(a, r)))
        } else {
            Some(power(a, r))
        }
    };
    let mut res: Option<Rc<Expr>> = None;
    for r in 0..k {
        let mut term = middle.clone();
        if let Some(left) = factor(r) {
            term = mul(left, term);
        }
        if let Some(right) = factor(k - 1 - r) {
            term = mul(term, right);
        }
        res = Some(match res {
            None => term,
            Some(sum) => add(sum, term),
        });
    }
    res.unwrap_or_else(|| zero(middle.shape.clone()))
}

/// Whether `e` is `I` times a scalar (`I`, `−I`, `cI`), which commutes with every matrix.
fn is_scaled_identity(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Identity => true,
        ExprKind::Neg(inner) => is_scaled_identity(inner),
        ExprKind::Mul(left, right) if left.shape.is_scalar() => is_scaled_identity(right),
        ExprKind::Mul(left, right) if right.shape.is_scalar() => is_scaled_identity(left),
        _ => false,
    }
}

fn power(a: &Rc<Expr>, r: i64) -> Rc<Expr> {
    match r {
        0 if a.shape.is_scalar() => build::int(1),
        0 => build::identity(a.shape.rows.clone()),
        1 => a.clone(),
        -1 => build::inverse(a.clone()),
        _ => build::pow(a.clone(), r),
    }
}

/// f′(z) ⊙ `seed` for an elementwise function, kept symbolic: the rule of both modes,
/// since an elementwise derivative is its own adjoint (`seed` is Ḡ or dz). `node` is the
/// forward f(z), reused where f′ is written in terms of f. `None` means zero (the step
/// function).
fn function_rule(f: Func, z: &Rc<Expr>, node: &Rc<Expr>, seed: Rc<Expr>) -> Option<Rc<Expr>> {
    let one_minus = |x: Rc<Expr>| sub(build::int(1), x);
    let derivative = match f {
        Func::Sigma => elementwise(node.clone(), one_minus(node.clone())),
        Func::Swish => {
            let sigma = build::func(Func::Sigma, z.clone());
            let tail = elementwise(
                elementwise(z.clone(), sigma.clone()),
                one_minus(sigma.clone()),
            );
            add(sigma, tail)
        }
        Func::Softplus => build::func(Func::Sigma, z.clone()),
        Func::Tanh => one_minus(elementwise(node.clone(), node.clone())),
        Func::Relu => build::func(Func::Step, z.clone()),
        Func::Exp => node.clone(),
        // Log and sqrt divide the seed, so the result reads Ḡ/z rather than (1/z) ⊙ Ḡ.
        Func::Log => return Some(div(seed, z.clone())),
        Func::Sqrt => return Some(div(scale(half(), seed), node.clone())),
        Func::Step | Func::Sign => return None,
        Func::Sin => build::func(Func::Cos, z.clone()),
        Func::Cos => neg(build::func(Func::Sin, z.clone())),
        Func::Tan => add(build::int(1), elementwise(node.clone(), node.clone())),
        Func::Sinh => build::func(Func::Cosh, z.clone()),
        Func::Cosh => build::func(Func::Sinh, z.clone()),
        Func::Abs => build::func(Func::Sign, z.clone()),
        // The inverse functions divide the seed, like log: Ḡ ⊘ √(1 − z ⊙ z).
        Func::Arcsin | Func::Arccos => {
            let root = build::func(Func::Sqrt, one_minus(elementwise(z.clone(), z.clone())));
            let quotient = div(seed, root);
            return Some(if f == Func::Arccos {
                neg(quotient)
            } else {
                quotient
            });
        }
        Func::Arctan => {
            return Some(div(
                seed,
                add(build::int(1), elementwise(z.clone(), z.clone())),
            ))
        }
    };
    Some(elementwise(derivative, seed))
}

/// d(a^{∘q}) = q a^{∘(q−1)} ⊙ `seed`, the rule of both modes (like [`function_rule`]).
fn elementwise_power_rule(a: &Rc<Expr>, q: &Rational, seed: Rc<Expr>) -> Rc<Expr> {
    let lowered = q - Rational::from_integer(1.into());
    scale(q.clone(), elementwise(elementwise_power(a, lowered), seed))
}

/// `a^{∘q}` with the trivial exponents folded: a⁰ = 1, a¹ = a, and an integer power of a
/// scalar is the ordinary power.
fn elementwise_power(a: &Rc<Expr>, q: Rational) -> Rc<Expr> {
    if q.is_zero() {
        return build::int(1);
    }
    if q == Rational::from_integer(1.into()) {
        return a.clone();
    }
    if a.shape.is_scalar() && q.is_integer() {
        if let Some(k) = num_traits::ToPrimitive::to_i64(q.numer()) {
            return power(a, k);
        }
    }
    build::elem_pow(a.clone(), q)
}

/// The coefficient `k + offset` of the rule for `aᵏ⁺ᵒ` with an integer symbol `k`.
fn symbolic_exponent(k: &str, offset: i64) -> Rc<Expr> {
    let symbol = build::var(k, Shape::scalar());
    match offset {
        0 => symbol,
        o if o > 0 => add(symbol, build::int(o)),
        o => sub(symbol, build::int(-o)),
    }
}

/// The adjoint of `aᵏ⁺ᵒ` for an integer symbol `k`: for a scalar, (k+o)aᵏ⁺ᵒ⁻¹ Ḡ; for a
/// matrix, only when Ḡ commutes with every matrix (a multiple of I, as under a trace),
/// (k+o)(aᵏ⁺ᵒ⁻¹)ᵀ Ḡ, since the k terms of Σ_r (aʳ)ᵀ Ḡ (aᵏ⁻¹⁻ʳ)ᵀ are then equal
/// (Cookbook (106), ∂tr(Xᵏ)/∂X = k(Xᵏ⁻¹)ᵀ).
fn symbolic_power_adjoint(
    a: &Rc<Expr>,
    k: &str,
    offset: i64,
    g: Rc<Expr>,
) -> Result<Rc<Expr>, Error> {
    let coefficient = symbolic_exponent(k, offset);
    let lowered = build::pow_sym(a.clone(), k, offset - 1);
    if a.shape.is_scalar() {
        return Ok(mul(coefficient, mul(lowered, g)));
    }
    if !is_scaled_identity(&g) {
        return Err(unsupported(format!(
            "the derivative of a matrix power with the symbolic exponent {k} outside a trace \
             and a determinant (tr(X^{k}), det(X^{k}) and their multiples are supported)"
        )));
    }
    Ok(mul(coefficient, mul(transpose(lowered), g)))
}

/// The rule of softmax in both modes: with p = softmax(z), J = diag(p) − ppᵀ is symmetric,
/// so both dp and the adjoint are p ⊙ s − p(pᵀs) for the seed s.
fn softmax_rule(node: &Rc<Expr>, seed: Rc<Expr>) -> Rc<Expr> {
    sub(
        elementwise(node.clone(), seed.clone()),
        mul(node.clone(), inner(node.clone(), seed)),
    )
}

// ---------------------------------------------------------------------------------------
// Forward mode.

/// The differential of `root` along `dX` (`wrt`, shaped `x_shape`).
fn differential_of(root: &Rc<Expr>, wrt: &str, x_shape: &Shape) -> Result<Rc<Expr>, Error> {
    let graph = Graph::build(root);
    let depends = graph.depends_on(wrt);
    let mut differentials: Vec<Option<Rc<Expr>>> = vec![None; graph.nodes.len()];
    for id in 0..graph.nodes.len() {
        if !depends[id] {
            continue;
        }
        let node = &graph.nodes[id];
        let kids: Vec<Option<Rc<Expr>>> = graph.children[id]
            .iter()
            .map(|&kid| differentials[kid].clone())
            .collect();
        differentials[id] = forward(node, &kids, wrt, x_shape)?.filter(|d| !d.is_zero());
    }
    Ok(differentials[graph.root()]
        .clone()
        .unwrap_or_else(|| zero(root.shape.clone())))
}

/// The differential of one node from its children's differentials (`None` = zero).
fn forward(
    node: &Rc<Expr>,
    kids: &[Option<Rc<Expr>>],
    wrt: &str,
    x_shape: &Shape,
) -> Result<Option<Rc<Expr>>, Error> {
    use ExprKind as K;
    let d = |i: usize| kids.get(i).cloned().flatten();
    let res = match &node.kind {
        K::Var(v) if v == wrt => Some(build::differential(wrt, x_shape.clone())),
        K::Num(_)
        | K::Var(_)
        | K::Identity
        | K::Ones
        | K::Size(_)
        | K::Differential(_)
        | K::Commutation(..) => None,
        K::Neg(_) => d(0).map(neg),
        // d(A ⊗ B) = dA ⊗ B + A ⊗ dB; vec is linear.
        K::Kron(a, b) => sum_options(
            d(0).map(|da| build::kron(da, b.clone())),
            d(1).map(|db| build::kron(a.clone(), db)),
        ),
        K::Vectorize(_) => d(0).map(build::vec),
        K::Add(_, _) | K::Sub(_, _) => {
            let da = d(0).map(|x| broadcast_scalar(x, &node.shape));
            let db = d(1).map(|x| broadcast_scalar(x, &node.shape));
            let is_add = matches!(node.kind, K::Add(_, _));
            match (da, db) {
                (Some(x), Some(y)) if is_add => Some(add(x, y)),
                (Some(x), Some(y)) => Some(sub(x, y)),
                (Some(x), None) => Some(x),
                (None, Some(y)) if is_add => Some(y),
                (None, Some(y)) => Some(neg(y)),
                (None, None) => None,
            }
        }
        K::Mul(a, b) => sum_options(
            d(0).map(|da| mul(da, b.clone())),
            d(1).map(|db| mul(a.clone(), db)),
        ),
        K::Hadamard(a, b) => sum_options(
            d(0).map(|da| elementwise(da, b.clone())),
            d(1).map(|db| elementwise(a.clone(), db)),
        ),
        K::Div(a, b) | K::ElemDiv(a, b) => {
            let first = d(0).map(|da| div(da, b.clone()));
            let second = d(1).map(|db| {
                if b.shape.is_scalar() {
                    div(mul(a.clone(), db), build::pow(b.clone(), 2))
                } else {
                    div(elementwise(node.clone(), db), b.clone())
                }
            });
            match (first, second) {
                (Some(x), Some(y)) => Some(sub(x, y)),
                (x, y) => x.or(y.map(neg)),
            }
        }
        K::Transpose(_) => d(0).map(transpose),
        K::Inverse(a) => d(0).map(|da| {
            if a.shape.is_scalar() {
                neg(div(da, build::pow(a.clone(), 2)))
            } else {
                neg(mul(mul(node.clone(), da), node.clone()))
            }
        }),
        K::Pow(a, k) => d(0).and_then(|da| power_rule(a, *k, &da, false)),
        // On a scalar, trace, determinant, diag and sum are the identity.
        K::Trace(a) | K::Det(a) | K::Diag(a) | K::Sum(a) if a.shape.is_scalar() => d(0),
        K::Trace(_) => d(0).map(build::trace),
        K::Det(a) => d(0).map(|da| {
            mul(
                node.clone(),
                build::trace(mul(build::inverse(a.clone()), da)),
            )
        }),
        K::LogDet(a) => d(0).map(|da| {
            if a.shape.is_scalar() {
                div(da, a.clone())
            } else {
                build::trace(mul(build::inverse(a.clone()), da))
            }
        }),
        K::NormSq(a) => {
            d(0).map(|da| scale(Rational::from_integer(2.into()), inner(a.clone(), da)))
        }
        K::Diag(_) => d(0).map(build::diag),
        K::Sum(_) => d(0).map(build::sum),
        K::Func(f, z) => d(0).and_then(|dz| function_rule(*f, z, node, dz)),
        K::Apply(name, v) => d(0).map(|dv| inner(build::grad(name, v.clone()), dv)),
        K::Grad(name, _) => {
            return Err(unsupported(format!(
            "the differential of ∇{name}(…) would need the Hessian of the opaque function {name}"
        )))
        }
        K::Norm(a, NormKind::Two) => d(0).map(|da| div(inner(a.clone(), da), node.clone())),
        K::Norm(a, NormKind::One) => d(0).map(|da| inner(build::func(Func::Sign, a.clone()), da)),
        K::ElemPow(a, q) => d(0).map(|da| elementwise_power_rule(a, q, da)),
        K::PowSym(a, k, offset) => match d(0) {
            None => None,
            Some(da) if a.shape.is_scalar() => {
                let lowered = build::pow_sym(a.clone(), k, offset - 1);
                Some(mul(symbolic_exponent(k, *offset), mul(lowered, da)))
            }
            Some(_) => {
                return Err(unsupported(format!(
                    "the differential of a matrix power with the symbolic exponent {k} \
                     (its gradient under a trace is supported)"
                )))
            }
        },
        K::Softmax(_) => d(0).map(|dz| softmax_rule(node, dz)),
        K::LogSumExp(z) => d(0).map(|dz| inner(build::softmax(z.clone()), dz)),
        K::Written(..) => d(0),
    };
    Ok(res)
}

fn sum_options(a: Option<Rc<Expr>>, b: Option<Rc<Expr>>) -> Option<Rc<Expr>> {
    match (a, b) {
        (Some(x), Some(y)) => Some(add(x, y)),
        (x, y) => x.or(y),
    }
}

// ---------------------------------------------------------------------------------------
// Linear extraction: df = J dx.

/// The Jacobian of the column vector (or scalar) `root` with respect to the vector or
/// scalar variable `wrt`: the differential, then its coefficient of `dx`.
fn jacobian_of(root: &Rc<Expr>, wrt: &str, x_shape: &Shape) -> Result<Rc<Expr>, Error> {
    let df = differential_of(root, wrt, x_shape)?;
    let jacobian_shape = Shape::new(root.shape.rows.clone(), x_shape.rows.clone());
    if df.is_zero() {
        return Ok(zero(jacobian_shape));
    }
    if x_shape.is_scalar() {
        // With a scalar dx the Jacobian is df with dx set to 1, since scalars commute.
        return Ok(substitute_one(&df, wrt));
    }
    extract_coefficient(&df, wrt, x_shape)
}

/// `df` with the differential of `wrt` replaced by 1, rebuilt with the cleaning builders.
fn substitute_one(df: &Rc<Expr>, wrt: &str) -> Rc<Expr> {
    let graph = Graph::build(df);
    let mentions = graph.mentions_differential(wrt);
    let mut rebuilt: Vec<Rc<Expr>> = Vec::with_capacity(graph.nodes.len());
    for (id, node) in graph.nodes.iter().enumerate() {
        let new_node = if !mentions[id] {
            node.clone()
        } else if matches!(node.kind, ExprKind::Differential(_)) {
            build::int(1)
        } else {
            let kids: Vec<Rc<Expr>> = graph.children[id]
                .iter()
                .map(|&kid| rebuilt[kid].clone())
                .collect();
            rebuild(node, kids)
        };
        rebuilt.push(new_node);
    }
    rebuilt[graph.root()].clone()
}

/// The same kind of node over new children, through the cleaning builders.
fn rebuild(node: &Rc<Expr>, kids: Vec<Rc<Expr>>) -> Rc<Expr> {
    use ExprKind as K;
    let mut kids = kids.into_iter();
    let mut next = || kids.next().unwrap_or_else(|| zero(Shape::scalar()));
    match &node.kind {
        K::Num(_)
        | K::Var(_)
        | K::Identity
        | K::Ones
        | K::Size(_)
        | K::Differential(_)
        | K::Commutation(..) => node.clone(),
        K::Neg(_) => neg(next()),
        K::Kron(_, _) => build::kron(next(), next()),
        K::Vectorize(_) => build::vec(next()),
        K::Add(_, _) => add(next(), next()),
        K::Sub(_, _) => sub(next(), next()),
        K::Mul(_, _) => mul(next(), next()),
        K::Div(_, _) => div(next(), next()),
        K::Hadamard(_, _) => elementwise(next(), next()),
        K::Transpose(_) => transpose(next()),
        K::Inverse(_) => build::inverse(next()),
        K::Pow(_, k) => build::pow(next(), *k),
        K::Trace(_) => build::trace(next()),
        K::Det(_) => build::det(next()),
        K::LogDet(_) => build::logdet(next()),
        K::NormSq(_) => build::norm_sq(next()),
        K::Diag(_) => build::diag(next()),
        K::Sum(_) => build::sum(next()),
        K::Func(f, _) => build::func(*f, next()),
        K::Apply(name, _) => build::apply(name, next()),
        K::Grad(name, _) => build::grad(name, next()),
        K::Norm(_, kind) => build::norm(next(), *kind),
        K::ElemDiv(_, _) => div(next(), next()),
        K::ElemPow(_, q) => build::elem_pow(next(), q.clone()),
        K::PowSym(_, k, offset) => build::pow_sym(next(), k, *offset),
        K::Softmax(_) => build::softmax(next()),
        K::LogSumExp(_) => build::logsumexp(next()),
        K::Written(..) => next(),
    }
}

/// One linear term. Its core is `left · D · right` with D = dx or dxᵀ (a missing factor
/// is the identity of the right size); `outer` says how the core sits in the term's value,
/// so that a scalar linear in dx may scale a matrix, and a column linear in dx may stand
/// on a diagonal, until later factors make the whole a column again (SPEC §4: every
/// linear form is extracted).
#[derive(Clone)]
struct Term {
    left: Option<Rc<Expr>>,
    transposed: bool,
    right: Option<Rc<Expr>>,
    outer: Outer,
}

/// How a term's core makes its value.
#[derive(Clone)]
enum Outer {
    /// The value is the core.
    Plain,
    /// `(core) M`: the scalar core scales the matrix M.
    Scaled(Rc<Expr>),
    /// `P diag(core) Q` for a column core (P, Q absent: the identity).
    Diagonal(Option<Rc<Expr>>, Option<Rc<Expr>>),
}

const MAX_TERMS: usize = 4096;

/// Most terms all nodes of one differential may hold together. Each node's terms are its
/// children's, extended: along a chain of n products that is n²/2 terms in all, under
/// [`MAX_TERMS`] at every node (the 1 000-factor x ⊙ x ⊙ … took a second to reach the
/// node past it). Past this total the differential is just as unsupported, sooner.
const MAX_TOTAL_TERMS: usize = 64 * MAX_TERMS;

fn optional_product(a: Option<Rc<Expr>>, b: Option<Rc<Expr>>) -> Option<Rc<Expr>> {
    match (a, b) {
        (Some(x), Some(y)) => Some(mul(x, y)),
        (x, y) => x.or(y),
    }
}

/// Whether `e` is a column or row vector (not a scalar).
fn is_column(e: &Expr) -> bool {
    e.shape.cols.is_one() && !e.shape.rows.is_one()
}

fn is_row(e: &Expr) -> bool {
    e.shape.rows.is_one() && !e.shape.cols.is_one()
}

impl Term {
    /// The term `dx`.
    fn dx() -> Term {
        Term {
            left: None,
            transposed: false,
            right: None,
            outer: Outer::Plain,
        }
    }

    /// The core alone, as a term.
    fn core(&self) -> Term {
        Term {
            outer: Outer::Plain,
            ..self.clone()
        }
    }

    fn with_outer(&self, outer: Outer) -> Term {
        Term {
            outer,
            ..self.clone()
        }
        .normalized()
    }

    fn times_left(&self, factor: &Rc<Expr>) -> Term {
        match &self.outer {
            Outer::Plain => Term {
                left: optional_product(Some(factor.clone()), self.left.clone()),
                ..self.clone()
            },
            Outer::Scaled(m) => self.with_outer(Outer::Scaled(mul(factor.clone(), m.clone()))),
            Outer::Diagonal(p, q) => self.with_outer(Outer::Diagonal(
                optional_product(Some(factor.clone()), p.clone()),
                q.clone(),
            )),
        }
    }

    fn times_right(&self, factor: &Rc<Expr>) -> Term {
        match &self.outer {
            Outer::Plain => Term {
                right: optional_product(self.right.clone(), Some(factor.clone())),
                ..self.clone()
            },
            Outer::Scaled(m) => self.with_outer(Outer::Scaled(mul(m.clone(), factor.clone()))),
            Outer::Diagonal(p, q) => self.with_outer(Outer::Diagonal(
                p.clone(),
                optional_product(q.clone(), Some(factor.clone())),
            )),
        }
    }

    /// A term whose value is a scalar, times the matrix `m`: `(core) m`.
    fn scaling(&self, m: &Rc<Expr>) -> Term {
        match &self.outer {
            Outer::Plain => self.with_outer(Outer::Scaled(m.clone())),
            _ => self.times_right(m),
        }
    }

    fn negated(&self) -> Term {
        let minus_one = Rc::new(Expr::int(-1));
        self.times_left(&minus_one)
    }

    fn transposed(&self) -> Term {
        match &self.outer {
            Outer::Plain => Term {
                left: self.right.clone().map(transpose),
                transposed: !self.transposed,
                right: self.left.clone().map(transpose),
                outer: Outer::Plain,
            },
            // A scalar is its own transpose, and so is a diagonal matrix.
            Outer::Scaled(m) => self.with_outer(Outer::Scaled(transpose(m.clone()))),
            Outer::Diagonal(p, q) => self.with_outer(Outer::Diagonal(
                q.clone().map(transpose),
                p.clone().map(transpose),
            )),
        }
    }

    /// The same value with the outer structure folded into the core where the factors
    /// allow: `(core)m = m·core` for a column m (`core·m` for a row), and
    /// `P diag(u) q = P diag(q) u` for a column q (`(diag(pᵀ) u)ᵀ Q` for a row p).
    fn normalized(self) -> Term {
        match &self.outer {
            Outer::Plain => self,
            Outer::Scaled(m) if m.shape.is_scalar() => self.core().times_left(m),
            Outer::Scaled(m) if m.shape.cols.is_one() => Term {
                left: optional_product(Some(m.clone()), self.left.clone()),
                ..self.core()
            },
            Outer::Scaled(m) if m.shape.rows.is_one() => Term {
                right: optional_product(self.right.clone(), Some(m.clone())),
                ..self.core()
            },
            Outer::Diagonal(p, Some(q)) if is_column(q) => {
                let column = self.core().times_left(&build::diag(q.clone()));
                match p {
                    Some(p) => column.times_left(p),
                    None => column,
                }
            }
            Outer::Diagonal(Some(p), q) if is_row(p) => {
                let row = self
                    .core()
                    .times_left(&build::diag(transpose(p.clone())))
                    .transposed();
                match q {
                    Some(q) => row.times_right(q),
                    None => row,
                }
            }
            _ => self,
        }
    }

    /// The same column-shaped term written `left · dx · (scalar)`, using
    /// `L dxᵀ R = L Rᵀ dx` when `dxᵀ R` is a scalar.
    fn as_column(&self) -> Result<Term, Error> {
        if !matches!(self.outer, Outer::Plain) {
            return Err(unsupported(
                "cannot write the differential as J·dx: a matrix linear in dx where the \
                 Jacobian needs a column",
            ));
        }
        if !self.transposed {
            return Ok(self.clone());
        }
        match &self.right {
            Some(right) => Ok(Term {
                left: optional_product(self.left.clone(), Some(transpose(right.clone()))),
                transposed: false,
                right: None,
                outer: Outer::Plain,
            }),
            None => Err(unsupported(
                "a row vector dxᵀ where the Jacobian needs a column vector",
            )),
        }
    }

    /// The term's coefficient matrix J in `term = J dx`, for a column-shaped term.
    fn coefficient(&self, x_rows: &Dim) -> Result<Rc<Expr>, Error> {
        let column = self.clone().normalized().as_column()?;
        let identity = build::identity(x_rows.clone());
        // A scalar left factor c means c·dx, whose coefficient is cI.
        let left = match column.left {
            None => identity,
            Some(left) if left.shape.is_scalar() => mul(left, identity),
            Some(left) => left,
        };
        Ok(match column.right {
            Some(right) => mul(right, left),
            None => left,
        })
    }

    /// `C ⊙ term` for a constant matrix C of the term's (matrix) shape:
    /// `C ⊙ (u rᵀ) = diag(u) C diag(r)`, `C ⊙ (s M) = s (C ⊙ M)`,
    /// `C ⊙ (diag(u) Q) = diag(u)(C ⊙ Q)`, `C ⊙ (P diag(u)) = (C ⊙ P) diag(u)`.
    fn hadamard(&self, c: &Rc<Expr>) -> Result<Term, Error> {
        let identity_like = |shape: &Shape| build::identity(shape.rows.clone());
        Ok(match &self.outer {
            Outer::Plain if !self.transposed => {
                // L dx R with L dx the column u and R a row.
                let q = match &self.right {
                    Some(right) => mul(c.clone(), build::diag(transpose(right.clone()))),
                    None => c.clone(),
                };
                Term {
                    right: None,
                    ..self.core()
                }
                .with_outer(Outer::Diagonal(None, Some(q)))
            }
            Outer::Plain => {
                // L dxᵀ R = l vᵀ with v = Rᵀ dx.
                let p = match &self.left {
                    Some(left) if left.shape.is_scalar() => mul(left.clone(), c.clone()),
                    Some(left) => mul(build::diag(left.clone()), c.clone()),
                    None => c.clone(),
                };
                Term {
                    left: self.right.clone().map(transpose),
                    transposed: false,
                    right: None,
                    outer: Outer::Plain,
                }
                .with_outer(Outer::Diagonal(Some(p), None))
            }
            Outer::Scaled(m) => self.with_outer(Outer::Scaled(elementwise(c.clone(), m.clone()))),
            Outer::Diagonal(None, q) => {
                let q = q.clone().unwrap_or_else(|| identity_like(&c.shape));
                self.with_outer(Outer::Diagonal(None, Some(elementwise(c.clone(), q))))
            }
            Outer::Diagonal(Some(p), None) => self.with_outer(Outer::Diagonal(
                Some(elementwise(c.clone(), p.clone())),
                None,
            )),
            Outer::Diagonal(Some(_), Some(_)) => {
                return Err(unsupported(
                    "cannot write the differential as J·dx: a Hadamard product with \
                     P diag(J dx) Q",
                ))
            }
        })
    }

    /// `tr(term)` of a square term of size `size`, a scalar.
    fn trace(&self, size: &Dim) -> Term {
        match &self.outer {
            // tr(L dx R) = (R L) dx and tr(L dxᵀ R) = dxᵀ (R L), by cyclicity.
            Outer::Plain => {
                let cycled = optional_product(self.right.clone(), self.left.clone());
                if self.transposed {
                    Term {
                        left: None,
                        transposed: true,
                        right: cycled,
                        outer: Outer::Plain,
                    }
                } else {
                    Term {
                        left: cycled,
                        transposed: false,
                        right: None,
                        outer: Outer::Plain,
                    }
                }
            }
            Outer::Scaled(m) => self.core().times_left(&build::trace(m.clone())),
            // tr(P diag(u) Q) = diag(QP)ᵀ u.
            Outer::Diagonal(p, q) => match optional_product(q.clone(), p.clone()) {
                Some(qp) => self.core().times_left(&transpose(build::diag(qp))),
                None => self
                    .core()
                    .times_left(&transpose(build::ones(size.clone()))),
            },
        }
    }
}

fn extract_coefficient(df: &Rc<Expr>, wrt: &str, x_shape: &Shape) -> Result<Rc<Expr>, Error> {
    let graph = Graph::build(df);
    let mentions = graph.mentions_differential(wrt);
    let mut terms: Vec<Option<Vec<Term>>> = Vec::with_capacity(graph.nodes.len());
    let mut total_terms: usize = 0;
    for (id, mentioned) in mentions.iter().enumerate() {
        let res = if *mentioned {
            let kids: Vec<Option<&Vec<Term>>> = graph.children[id]
                .iter()
                .map(|&kid| terms[kid].as_ref())
                .collect();
            let node_terms = linear_terms(&graph.nodes[id], &kids)?;
            total_terms += node_terms.len();
            if node_terms.len() > MAX_TERMS || total_terms > MAX_TOTAL_TERMS {
                return Err(unsupported(
                    "a differential with too many terms to write as J·dx",
                ));
            }
            Some(node_terms)
        } else {
            None
        };
        terms.push(res);
    }
    let root_terms = terms[graph.root()].clone().unwrap_or_default();
    let mut res: Option<Rc<Expr>> = None;
    for term in &root_terms {
        let coefficient = term.coefficient(&x_shape.rows)?;
        res = Some(match res {
            None => coefficient,
            Some(sum) => add(sum, coefficient),
        });
    }
    Ok(res.unwrap_or_else(|| zero(Shape::new(df.shape.rows.clone(), x_shape.rows.clone()))))
}

/// The linear terms of one node of a differential, from its children's terms (`None`
/// for a child free of dx).
fn linear_terms(node: &Rc<Expr>, kids: &[Option<&Vec<Term>>]) -> Result<Vec<Term>, Error> {
    use ExprKind as K;
    let kid = |i: usize| kids.get(i).copied().flatten();
    let map = |terms: &Vec<Term>, f: &dyn Fn(&Term) -> Term| terms.iter().map(f).collect();
    let not_linear = || {
        unsupported(format!(
            "cannot write the differential as J·dx: {} is not linear in dx",
            describe(node)
        ))
    };
    let broadcast_terms = |operand: &Rc<Expr>, terms: &Vec<Term>| -> Result<Vec<Term>, Error> {
        if operand.shape.is_scalar() && !node.shape.is_scalar() {
            // A scalar s broadcast to m×n is s 𝟙ₘ𝟙ₙᵀ.
            let ones = build::ones(node.shape.rows.clone());
            let all_ones = if node.shape.cols.is_one() {
                ones
            } else {
                mul(ones, transpose(build::ones(node.shape.cols.clone())))
            };
            Ok(terms.iter().map(|t| t.scaling(&all_ones)).collect())
        } else {
            Ok(terms.clone())
        }
    };
    Ok(match &node.kind {
        K::Differential(_) => vec![Term::dx()],
        K::Neg(_) => map(kid(0).ok_or_else(not_linear)?, &|t| t.negated()),
        K::Add(a, b) | K::Sub(a, b) => {
            let (Some(ta), Some(tb)) = (kid(0), kid(1)) else {
                return Err(not_linear());
            };
            let mut res = broadcast_terms(a, ta)?;
            let right = broadcast_terms(b, tb)?;
            if matches!(node.kind, K::Sub(_, _)) {
                res.extend(right.iter().map(|t| t.negated()));
            } else {
                res.extend(right);
            }
            res
        }
        K::Mul(a, b) | K::Hadamard(a, b)
            if matches!(node.kind, K::Mul(_, _)) || a.shape.is_scalar() || b.shape.is_scalar() =>
        {
            match (kid(0), kid(1)) {
                (Some(_), Some(_)) | (None, None) => return Err(not_linear()),
                (None, Some(tb)) => {
                    // The constant is on the left: a·(L D R) = (aL) D R; a matrix a times
                    // a scalar s linear in dx is s·a.
                    if !a.shape.is_scalar() && b.shape.is_scalar() {
                        map(tb, &|t| t.scaling(a))
                    } else {
                        map(tb, &|t| t.times_left(a))
                    }
                }
                (Some(ta), None) => {
                    if a.shape.is_scalar() && !b.shape.is_scalar() {
                        // s·b with s linear in dx.
                        map(ta, &|t| t.scaling(b))
                    } else if a.shape.is_scalar() {
                        map(ta, &|t| t.times_left(b))
                    } else {
                        map(ta, &|t| t.times_right(b))
                    }
                }
            }
        }
        K::Hadamard(a, b) => {
            let (constant, terms) = match (kid(0), kid(1)) {
                (None, Some(tb)) => (a, tb),
                (Some(ta), None) => (b, ta),
                _ => return Err(not_linear()),
            };
            hadamard_terms(node, constant, terms)?
        }
        K::Div(a, b) | K::ElemDiv(a, b) => {
            let (Some(ta), None) = (kid(0), kid(1)) else {
                return Err(not_linear());
            };
            if b.shape.is_scalar() {
                let reciprocal = div(build::int(1), b.clone());
                map(ta, &|t| t.times_left(&reciprocal))
            } else if a.shape.is_scalar() {
                // s ⊘ B with s linear in dx is s (1 ⊘ B).
                let reciprocal = div(build::int(1), b.clone());
                map(ta, &|t| t.scaling(&reciprocal))
            } else {
                // A ⊘ B = A ⊙ (1 ⊘ B).
                hadamard_terms(node, &div(build::int(1), b.clone()), ta)?
            }
        }
        K::Transpose(_) => map(kid(0).ok_or_else(not_linear)?, &|t| t.transposed()),
        K::Trace(a) => {
            let terms = kid(0).ok_or_else(not_linear)?;
            if a.shape.is_scalar() {
                terms.clone()
            } else {
                map(terms, &|t| t.trace(&a.shape.rows))
            }
        }
        K::Diag(a) if a.shape.is_scalar() => kid(0).ok_or_else(not_linear)?.clone(),
        K::Diag(_) if node.shape.cols.is_one() => {
            // The diagonal of a square term: diag(L dx rᵀ) = diag(r) L dx and
            // diag(l dxᵀ R) = diag(l) Rᵀ dx; diag(s M) = s diag(M) and
            // diag(P diag(u) Q) = (P ⊙ Qᵀ) u.
            let terms = kid(0).ok_or_else(not_linear)?;
            let mut res = Vec::with_capacity(terms.len());
            for term in terms {
                let term = term.clone().normalized();
                match &term.outer {
                    Outer::Plain => {}
                    Outer::Scaled(m) => {
                        res.push(term.with_outer(Outer::Scaled(build::diag(m.clone()))));
                        continue;
                    }
                    Outer::Diagonal(p, q) => {
                        let size = node.shape.rows.clone();
                        let p = p.clone().unwrap_or_else(|| build::identity(size.clone()));
                        let q = q.clone().map(transpose);
                        let q = q.unwrap_or_else(|| build::identity(size));
                        res.push(term.core().times_left(&elementwise(p, q)));
                        continue;
                    }
                }
                let (outer, inner) = if term.transposed {
                    (term.left.clone(), term.right.clone().map(transpose))
                } else {
                    (term.right.clone().map(transpose), term.left.clone())
                };
                let outer = outer
                    .filter(|factor| factor.shape.cols.is_one() && !factor.shape.is_scalar())
                    .ok_or_else(not_linear)?;
                res.push(Term {
                    left: optional_product(Some(build::diag(outer)), inner),
                    transposed: false,
                    right: None,
                    outer: Outer::Plain,
                });
            }
            res
        }
        K::Diag(_) => {
            // diag(J dx) of a column: the column on a diagonal.
            let terms = kid(0).ok_or_else(not_linear)?;
            let mut res = Vec::with_capacity(terms.len());
            for term in terms {
                let column = term.clone().normalized().as_column()?;
                res.push(column.with_outer(Outer::Diagonal(None, None)));
            }
            res
        }
        K::Kron(a, b) if node.shape.cols.is_one() => {
            // a ⊗ (L dx) = (a ⊗ L) dx and (L dx) ⊗ b = (L ⊗ b) dx for columns a, b.
            let (constant, operand, terms, constant_first) = match (kid(0), kid(1)) {
                (None, Some(tb)) => (a, b, tb, true),
                (Some(ta), None) => (b, a, ta, false),
                _ => return Err(not_linear()),
            };
            let mut res = Vec::with_capacity(terms.len());
            for term in terms {
                let column = term.clone().normalized().as_column()?;
                // Without a left factor the operand is dx (times a scalar), dx's length.
                let left = column
                    .left
                    .clone()
                    .unwrap_or_else(|| build::identity(operand.shape.rows.clone()));
                let left = if constant_first {
                    build::kron(constant.clone(), left)
                } else {
                    build::kron(left, constant.clone())
                };
                res.push(Term {
                    left: Some(left),
                    ..column
                });
            }
            res
        }
        K::Vectorize(a) => {
            // vec(L dx R) = (Rᵀ ⊗ L) dx, and likewise for dxᵀ, since vec(dxᵀ) = vec(dx).
            let terms = kid(0).ok_or_else(not_linear)?;
            if a.shape.cols.is_one() {
                terms.clone()
            } else {
                let mut res = Vec::with_capacity(terms.len());
                for term in terms {
                    // vec(s M) = vec(M) s; vec(P diag(u) Q) would need a Khatri–Rao product.
                    let term = term.clone().normalized();
                    match &term.outer {
                        Outer::Plain => {}
                        Outer::Scaled(m) => {
                            res.push(term.with_outer(Outer::Scaled(build::vec(m.clone()))));
                            continue;
                        }
                        Outer::Diagonal(..) => {
                            return Err(unsupported(
                                "cannot write the differential as J·dx: vec of a matrix \
                                 with J dx on its diagonal",
                            ))
                        }
                    }
                    // A missing right factor of L dxᵀ is I (dxᵀ is 1×n); of L dx it
                    // cannot be, since L dx is a column and `a` is not.
                    let right = match (&term.right, term.transposed) {
                        (Some(right), _) => transpose(right.clone()),
                        (None, true) => build::identity(a.shape.cols.clone()),
                        (None, false) => return Err(not_linear()),
                    };
                    let coefficient = match (&term.left, term.transposed) {
                        (Some(left), _) => build::kron(right, left.clone()),
                        (None, true) => right,
                        (None, false) => build::kron(right, build::identity(a.shape.rows.clone())),
                    };
                    res.push(Term {
                        left: Some(coefficient),
                        transposed: false,
                        right: None,
                        outer: Outer::Plain,
                    });
                }
                res
            }
        }
        K::Sum(a) => {
            let terms = kid(0).ok_or_else(not_linear)?;
            let mut res = terms.clone();
            if !a.shape.rows.is_one() {
                let ones_row = transpose(build::ones(a.shape.rows.clone()));
                res = res.iter().map(|t| t.times_left(&ones_row)).collect();
            }
            if !a.shape.cols.is_one() {
                let ones = build::ones(a.shape.cols.clone());
                res = res.iter().map(|t| t.times_right(&ones)).collect();
            }
            res
        }
        _ => return Err(not_linear()),
    })
}

/// The terms of `constant ⊙ (terms)` (or `(terms) ⊙ constant`), `node` being the product:
/// `a ⊙ (J dx) = diag(a) J dx` for columns, [`Term::hadamard`] for matrices.
fn hadamard_terms(node: &Expr, constant: &Rc<Expr>, terms: &[Term]) -> Result<Vec<Term>, Error> {
    let mut res = Vec::with_capacity(terms.len());
    if node.shape.cols.is_one() {
        let diagonal = build::diag(constant.clone());
        for term in terms {
            res.push(term.clone().normalized().as_column()?.times_left(&diagonal));
        }
    } else {
        for term in terms {
            res.push(term.clone().normalized().hadamard(constant)?);
        }
    }
    Ok(res)
}

fn describe(node: &Expr) -> &'static str {
    use ExprKind as K;
    match &node.kind {
        K::Num(_)
        | K::Var(_)
        | K::Identity
        | K::Ones
        | K::Size(_)
        | K::Differential(_)
        | K::Commutation(..) => "a leaf",
        K::Kron(_, _) => "a Kronecker product",
        K::Vectorize(_) => "vec(…)",
        K::Neg(_) => "a negation",
        K::Add(_, _) => "a sum",
        K::Sub(_, _) => "a difference",
        K::Mul(_, _) => "a product",
        K::Div(_, _) => "a quotient",
        K::Hadamard(_, _) => "a Hadamard product",
        K::Transpose(_) => "a transpose",
        K::Inverse(_) => "an inverse",
        K::Pow(_, _) => "a power",
        K::Trace(_) => "a trace",
        K::Det(_) => "a determinant",
        K::LogDet(_) => "a log-determinant",
        K::NormSq(_) => "a squared norm",
        K::Diag(_) => "diag(…)",
        K::Sum(_) => "sum(…)",
        K::Func(_, _) => "an elementwise function",
        K::Apply(_, _) => "an opaque function",
        K::Grad(_, _) => "a gradient of an opaque function",
        K::Norm(_, _) => "a norm",
        K::ElemDiv(_, _) => "an elementwise quotient",
        K::ElemPow(_, _) => "an elementwise power",
        K::PowSym(_, _, _) => "a power with a symbolic exponent",
        K::Softmax(_) => "softmax",
        K::LogSumExp(_) => "logsumexp",
        K::Written(..) => "a notation",
    }
}

// ---------------------------------------------------------------------------------------
// Cleaning builders: the typed builders of `expr::build` plus light local cleanup.

fn half() -> Rational {
    Rational::new(1.into(), 2.into())
}

/// An explicit zero carrying `shape`.
fn zero(shape: Shape) -> Rc<Expr> {
    Rc::new(Expr::typed(ExprKind::Num(Rational::zero()), shape))
}

fn is_literal_one(e: &Expr) -> bool {
    e.is_one() && e.shape.is_scalar()
}

fn neg(a: Rc<Expr>) -> Rc<Expr> {
    match &a.kind {
        ExprKind::Neg(x) => x.clone(),
        _ if a.is_zero() => a,
        _ => build::neg(a),
    }
}

fn add(a: Rc<Expr>, b: Rc<Expr>) -> Rc<Expr> {
    let shape = broadcast_shape(&a, &b);
    if a.is_zero() && b.shape == shape {
        return b;
    }
    if b.is_zero() && a.shape == shape {
        return a;
    }
    if let ExprKind::Neg(x) = &b.kind {
        return sub(a, x.clone());
    }
    if let ExprKind::Neg(x) = &a.kind {
        return sub(b, x.clone());
    }
    if a.shape == b.shape && same(&a, &b) {
        return scale(Rational::from_integer(2.into()), a);
    }
    build::add(a, b)
}

fn sub(a: Rc<Expr>, b: Rc<Expr>) -> Rc<Expr> {
    let shape = broadcast_shape(&a, &b);
    if b.is_zero() && a.shape == shape {
        return a;
    }
    if a.is_zero() && b.shape == shape {
        return neg(b);
    }
    if let ExprKind::Neg(x) = &b.kind {
        return add(a, x.clone());
    }
    if a.shape == b.shape && same(&a, &b) {
        return zero(shape);
    }
    build::sub(a, b)
}

fn broadcast_shape(a: &Expr, b: &Expr) -> Shape {
    if a.shape.is_scalar() {
        b.shape.clone()
    } else {
        a.shape.clone()
    }
}

fn product_shape(a: &Expr, b: &Expr) -> Shape {
    if a.shape.is_scalar() {
        b.shape.clone()
    } else if b.shape.is_scalar() {
        a.shape.clone()
    } else {
        Shape::new(a.shape.rows.clone(), b.shape.cols.clone())
    }
}

fn mul(a: Rc<Expr>, b: Rc<Expr>) -> Rc<Expr> {
    use ExprKind as K;
    if a.is_zero() || b.is_zero() {
        return zero(product_shape(&a, &b));
    }
    if is_literal_one(&a) {
        return b;
    }
    if is_literal_one(&b) {
        return a;
    }
    if matches!(a.kind, K::Identity) && !b.shape.is_scalar() {
        return b;
    }
    if matches!(b.kind, K::Identity) && !a.shape.is_scalar() {
        return a;
    }
    if let (Some(p), Some(q)) = (a.as_constant(), b.as_constant()) {
        return build::constant(p * q);
    }
    if let K::Neg(x) = &a.kind {
        return neg(mul(x.clone(), b));
    }
    if let K::Neg(x) = &b.kind {
        return neg(mul(a, x.clone()));
    }
    // Scalar factors of a matrix product move to its front: (sA)B = A(sB) = s(AB).
    if !a.shape.is_scalar() && !b.shape.is_scalar() {
        if let Some((s, rest)) = split_scalar_factor(&a) {
            return mul(s, mul(rest, b));
        }
        if let Some((s, rest)) = split_scalar_factor(&b) {
            return mul(s, mul(a, rest));
        }
    }
    // Scalars go in front, and literal constants before other scalars.
    let b_first = (b.shape.is_scalar() && !a.shape.is_scalar())
        || (a.shape.is_scalar() && b.shape.is_scalar() && b.as_constant().is_some());
    if b_first && a.as_constant().is_none() {
        return mul(b, a);
    }
    if let (Some(p), K::Mul(c, y)) = (a.as_constant(), &b.kind) {
        if let Some(q) = c.as_constant() {
            return mul(build::constant(p * q), y.clone());
        }
    }
    build::mul(a, b)
}

/// `s·A` with `s` a scalar and `A` not, split into its two factors.
fn split_scalar_factor(e: &Expr) -> Option<(Rc<Expr>, Rc<Expr>)> {
    match &e.kind {
        ExprKind::Mul(s, rest) if s.shape.is_scalar() && !rest.shape.is_scalar() => {
            Some((s.clone(), rest.clone()))
        }
        _ => None,
    }
}

fn scale(q: Rational, x: Rc<Expr>) -> Rc<Expr> {
    mul(build::constant(q), x)
}

/// The quotient `a / b` by a scalar `b`, or the elementwise quotient `a ⊘ b` otherwise
/// (SPEC §2 allows only scalar denominators after `/`).
fn div(a: Rc<Expr>, b: Rc<Expr>) -> Rc<Expr> {
    if is_literal_one(&b) {
        return a;
    }
    if a.is_zero() {
        return zero(broadcast_shape(&a, &b));
    }
    if let ExprKind::Neg(x) = &a.kind {
        return neg(div(x.clone(), b));
    }
    if b.shape.is_scalar() {
        build::div(a, b)
    } else {
        build::elem_div(a, b)
    }
}

/// The elementwise product: a Hadamard product of equal shapes, a scaling otherwise.
fn elementwise(a: Rc<Expr>, b: Rc<Expr>) -> Rc<Expr> {
    if a.shape.is_scalar() || b.shape.is_scalar() {
        return mul(a, b);
    }
    if let ExprKind::Neg(x) = &a.kind {
        return neg(elementwise(x.clone(), b));
    }
    if let ExprKind::Neg(x) = &b.kind {
        return neg(elementwise(a, x.clone()));
    }
    build::hadamard(a, b)
}

/// How many product nodes a transpose may be pushed through before it stays put; the
/// bound keeps the result linear in size even on heavily shared products.
const TRANSPOSE_PUSH_BUDGET: usize = 6;

fn transpose(a: Rc<Expr>) -> Rc<Expr> {
    let mut budget = TRANSPOSE_PUSH_BUDGET;
    transpose_within(a, &mut budget)
}

fn transpose_within(a: Rc<Expr>, budget: &mut usize) -> Rc<Expr> {
    use ExprKind as K;
    if a.shape.is_scalar() {
        return a;
    }
    match &a.kind {
        K::Transpose(x) => x.clone(),
        _ if is_symmetric(&a) => a,
        K::Neg(x) => neg(transpose_within(x.clone(), budget)),
        K::Mul(x, y) if *budget > 0 => {
            *budget -= 1;
            let y_transposed = transpose_within(y.clone(), budget);
            let x_transposed = transpose_within(x.clone(), budget);
            mul(y_transposed, x_transposed)
        }
        _ => build::transpose(a),
    }
}

/// ⟨a, b⟩ = sum of the elementwise product: a·b, aᵀb, abᵀ or tr(aᵀb) by shape.
fn inner(a: Rc<Expr>, b: Rc<Expr>) -> Rc<Expr> {
    if a.shape.is_scalar() || b.shape.is_scalar() {
        mul(a, b)
    } else if a.shape.cols.is_one() {
        mul(transpose(a), b)
    } else if a.shape.rows.is_one() {
        mul(a, transpose(b))
    } else {
        build::trace(mul(transpose(a), b))
    }
}

/// The adjoint of a scalar operand broadcast over a larger sum is the sum of the entries.
fn reduce_to(operand: &Expr, g: Rc<Expr>) -> Rc<Expr> {
    if operand.shape.is_scalar() && !g.shape.is_scalar() {
        build::sum(g)
    } else {
        g
    }
}

/// A scalar spread over `shape`: s𝟙, s𝟙ᵀ or s𝟙𝟙ᵀ.
fn broadcast_scalar(s: Rc<Expr>, shape: &Shape) -> Rc<Expr> {
    if !s.shape.is_scalar() || shape.is_scalar() {
        return s;
    }
    let ones_matrix = if shape.cols.is_one() {
        build::ones(shape.rows.clone())
    } else if shape.rows.is_one() {
        transpose(build::ones(shape.cols.clone()))
    } else {
        build::mul(
            build::ones(shape.rows.clone()),
            transpose(build::ones(shape.cols.clone())),
        )
    };
    mul(s, ones_matrix)
}

// ---------------------------------------------------------------------------------------
// Bounded structural facts, so that cleanup never walks a shared DAG exponentially.

/// How many nodes one structural comparison or symmetry test may visit.
const STRUCTURE_BUDGET: usize = 64;

/// Whether `a` and `b` are structurally equal, answering `false` when unsure.
fn same(a: &Rc<Expr>, b: &Rc<Expr>) -> bool {
    let mut budget = STRUCTURE_BUDGET;
    same_within(a, b, &mut budget)
}

fn same_within(a: &Rc<Expr>, b: &Rc<Expr>, budget: &mut usize) -> bool {
    if Rc::ptr_eq(a, b) {
        return true;
    }
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    if std::mem::discriminant(&a.kind) != std::mem::discriminant(&b.kind)
        || payload_of(a) != payload_of(b)
    {
        return false;
    }
    let (left, right) = (a.children(), b.children());
    left.len() == right.len()
        && left
            .iter()
            .zip(&right)
            .all(|(x, y)| same_within(x, y, budget))
}

/// Whether `a` is symmetric by its structure alone (I, XXᵀ, K⁻¹YYᵀK⁻¹, αXXᵀ + β⁻¹I, …),
/// answering `false` when unsure.
fn is_symmetric(a: &Rc<Expr>) -> bool {
    let mut budget = STRUCTURE_BUDGET;
    symmetric_within(a, &mut budget)
}

fn symmetric_within(a: &Rc<Expr>, budget: &mut usize) -> bool {
    use ExprKind as K;
    if a.shape.is_scalar() {
        return true;
    }
    if !a.shape.is_square() || *budget == 0 {
        return false;
    }
    *budget -= 1;
    match &a.kind {
        K::Identity => true,
        K::Neg(x) | K::Inverse(x) | K::Pow(x, _) | K::Transpose(x) | K::Func(_, x) => {
            symmetric_within(x, budget)
        }
        K::Add(x, y) | K::Sub(x, y) | K::Hadamard(x, y) | K::Div(x, y) => {
            symmetric_within(x, budget) && symmetric_within(y, budget)
        }
        K::Diag(x) => x.shape.cols.is_one(),
        K::Mul(_, _) => {
            let mut factors = Vec::new();
            if !matrix_factors(a, &mut factors, budget) {
                return false;
            }
            let (mut i, mut j) = (0, factors.len().saturating_sub(1));
            while i < j {
                if !transposes_of_each_other(&factors[i], &factors[j], budget) {
                    return false;
                }
                i += 1;
                j -= 1;
            }
            i != j || symmetric_within(&factors[i], budget)
        }
        _ => false,
    }
}

/// The non-scalar factors of a product, in order; `false` if there are too many.
fn matrix_factors(e: &Rc<Expr>, out: &mut Vec<Rc<Expr>>, budget: &mut usize) -> bool {
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    match &e.kind {
        ExprKind::Mul(x, y) => matrix_factors(x, out, budget) && matrix_factors(y, out, budget),
        _ if e.shape.is_scalar() => true,
        _ => {
            out.push(e.clone());
            true
        }
    }
}

fn transposes_of_each_other(p: &Rc<Expr>, q: &Rc<Expr>, budget: &mut usize) -> bool {
    match (&p.kind, &q.kind) {
        (_, ExprKind::Transpose(x)) => same_within(p, x, budget),
        (ExprKind::Transpose(x), _) => same_within(x, q, budget),
        _ => same_within(p, q, budget) && symmetric_within(p, budget),
    }
}

#[cfg(test)]
mod tests {
    //! Unit tests on hand-built typed trees, checked against central differences with a
    //! small evaluator of their own (the numeric stage is tested elsewhere).

    use super::*;
    use crate::expr::{Props, VarDecl};
    use nalgebra::DMatrix;
    use num_traits::ToPrimitive;
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeMap;

    type Env = HashMap<String, DMatrix<f64>>;

    fn size(d: &Dim) -> usize {
        match d {
            Dim::Known(n) => *n as usize,
            Dim::Sym(name) => match name.as_str() {
                "m" => 2,
                "n" => 3,
                "p" => 4,
                _ => 3,
            },
            Dim::Product(factors) => factors.iter().map(size).product(),
            Dim::Unknown => panic!("an untyped node"),
        }
    }

    fn scalar(x: f64) -> DMatrix<f64> {
        DMatrix::from_element(1, 1, x)
    }

    fn broadcast(x: DMatrix<f64>, y: DMatrix<f64>, f: impl Fn(f64, f64) -> f64) -> DMatrix<f64> {
        if x.len() == 1 && y.len() != 1 {
            y.map(|b| f(x[0], b))
        } else if y.len() == 1 && x.len() != 1 {
            x.map(|a| f(a, y[0]))
        } else {
            x.zip_map(&y, f)
        }
    }

    fn sigma(z: f64) -> f64 {
        1.0 / (1.0 + (-z).exp())
    }

    fn eval(e: &Expr, env: &Env) -> DMatrix<f64> {
        use ExprKind as K;
        let ev = |a: &Rc<Expr>| eval(a, env);
        match &e.kind {
            K::Num(q) => DMatrix::from_element(
                size(&e.shape.rows),
                size(&e.shape.cols),
                q.to_f64().unwrap(),
            ),
            K::Var(v) => env[v].clone(),
            K::Differential(v) => env[&format!("d{v}")].clone(),
            K::Identity => DMatrix::identity(size(&e.shape.rows), size(&e.shape.rows)),
            K::Ones => DMatrix::from_element(size(&e.shape.rows), 1, 1.0),
            K::Size(name) => DMatrix::from_element(1, 1, size(&Dim::Sym(*name)) as f64),
            K::Neg(a) => -ev(a),
            K::Add(a, b) => broadcast(ev(a), ev(b), |x, y| x + y),
            K::Sub(a, b) => broadcast(ev(a), ev(b), |x, y| x - y),
            K::Div(a, b) => broadcast(ev(a), ev(b), |x, y| x / y),
            K::Hadamard(a, b) => broadcast(ev(a), ev(b), |x, y| x * y),
            K::Mul(a, b) => {
                let (x, y) = (ev(a), ev(b));
                if x.len() == 1 {
                    y * x[0]
                } else if y.len() == 1 {
                    x * y[0]
                } else {
                    x * y
                }
            }
            K::Transpose(a) => ev(a).transpose(),
            K::Inverse(a) => ev(a).try_inverse().unwrap(),
            K::Pow(a, k) => {
                let m = ev(a);
                let base = if *k < 0 {
                    m.clone().try_inverse().unwrap()
                } else {
                    m.clone()
                };
                let mut res = DMatrix::identity(m.nrows(), m.nrows());
                for _ in 0..k.abs() {
                    res *= &base;
                }
                res
            }
            K::Trace(a) => scalar(ev(a).trace()),
            K::Det(a) => scalar(ev(a).determinant()),
            K::LogDet(a) => scalar(ev(a).determinant().abs().ln()),
            K::NormSq(a) => scalar(ev(a).norm_squared()),
            K::Diag(a) => {
                let m = ev(a);
                if m.ncols() == 1 {
                    DMatrix::from_diagonal(&m.column(0).into_owned())
                } else {
                    DMatrix::from_column_slice(m.nrows(), 1, m.diagonal().as_slice())
                }
            }
            K::Sum(a) => scalar(ev(a).sum()),
            K::Func(f, a) => ev(a).map(|z| match f {
                Func::Sigma => sigma(z),
                Func::Exp => z.exp(),
                Func::Log => z.ln(),
                Func::Tanh => z.tanh(),
                Func::Swish => z * sigma(z),
                Func::Relu => z.max(0.0),
                Func::Softplus => z.exp().ln_1p(),
                Func::Sqrt => z.sqrt(),
                Func::Step => f64::from(u8::from(z > 0.0)),
                Func::Sin => z.sin(),
                Func::Cos => z.cos(),
                Func::Tan => z.tan(),
                Func::Arcsin => z.asin(),
                Func::Arccos => z.acos(),
                Func::Arctan => z.atan(),
                Func::Sinh => z.sinh(),
                Func::Cosh => z.cosh(),
                Func::Abs => z.abs(),
                Func::Sign => z.signum(),
            }),
            // The opaque ℓ(v) of these tests is Σ log(1 + vᵢ²).
            K::Apply(_, v) => scalar(ev(v).iter().map(|x| (1.0 + x * x).ln()).sum()),
            K::Grad(_, v) => ev(v).map(|x| 2.0 * x / (1.0 + x * x)),
            K::Kron(a, b) => ev(a).kronecker(&ev(b)),
            K::Vectorize(a) => {
                let m = ev(a);
                DMatrix::from_column_slice(m.len(), 1, m.as_slice())
            }
            K::Commutation(..) => panic!("no commutation matrix in these tests"),
            K::Norm(a, NormKind::Two) => scalar(ev(a).norm()),
            K::Norm(a, NormKind::One) => scalar(ev(a).iter().map(|x| x.abs()).sum()),
            K::ElemDiv(a, b) => broadcast(ev(a), ev(b), |x, y| x / y),
            K::ElemPow(a, q) => {
                let q = q.to_f64().unwrap();
                ev(a).map(|x| x.powf(q))
            }
            K::PowSym(..) => panic!("no integer symbols in these tests"),
            K::Softmax(a) => {
                let z = ev(a).map(f64::exp);
                let total = z.sum();
                z / total
            }
            K::LogSumExp(a) => scalar(ev(a).map(f64::exp).sum().ln()),
            K::Written(a, _) => ev(a),
        }
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Kind {
        General,
        Positive,
        Sym,
        Spd,
    }

    struct Problem {
        vars: BTreeMap<Symbol, VarDecl>,
        kinds: BTreeMap<Symbol, Kind>,
    }

    impl Problem {
        fn new() -> Problem {
            Problem {
                vars: BTreeMap::new(),
                kinds: BTreeMap::new(),
            }
        }

        fn var(&mut self, name: &str, rows: u64, cols: u64, kind: Kind) -> Rc<Expr> {
            let shape = Shape::new(Dim::Known(rows), Dim::Known(cols));
            let props = Props {
                symmetric: matches!(kind, Kind::Sym | Kind::Spd),
                positive_definite: kind == Kind::Spd,
                integer: false,
            };
            self.vars.insert(
                name.to_string(),
                VarDecl {
                    shape: shape.clone(),
                    props,
                },
            );
            self.kinds.insert(name.to_string(), kind);
            build::var(name, shape)
        }

        fn typed(&self, f: &Rc<Expr>) -> Typed {
            Typed {
                expr: (**f).clone(),
                vars: self.vars.clone(),
                fns: ["ℓ".to_string()].into(),
            }
        }

        fn draw(&self, rng: &mut impl Rng) -> Env {
            let mut env = Env::new();
            for (name, decl) in &self.vars {
                let (rows, cols) = (size(&decl.shape.rows), size(&decl.shape.cols));
                let mut m = DMatrix::from_fn(rows, cols, |_, _| rng.gen_range(-1.0..1.0));
                match self.kinds[name] {
                    Kind::General => {}
                    Kind::Positive => m = m.map(|x: f64| x.abs() + 0.5),
                    Kind::Sym => m = &m + m.transpose(),
                    Kind::Spd => m = &m * m.transpose() + DMatrix::identity(rows, rows),
                }
                env.insert(name.clone(), m);
            }
            env
        }

        fn direction(&self, wrt: &str, rng: &mut impl Rng) -> DMatrix<f64> {
            let decl = &self.vars[wrt];
            let (rows, cols) = (size(&decl.shape.rows), size(&decl.shape.cols));
            let m = DMatrix::from_fn(rows, cols, |_, _| rng.gen_range(-1.0..1.0));
            if decl.props.symmetric {
                (&m + m.transpose()) * 0.5
            } else {
                m
            }
        }
    }

    fn along(f: &Expr, env: &Env, wrt: &str, v: &DMatrix<f64>, t: f64) -> DMatrix<f64> {
        let mut moved = env.clone();
        moved.insert(wrt.to_string(), &env[wrt] + v * t);
        eval(f, &moved)
    }

    fn close(claimed: &DMatrix<f64>, expected: &DMatrix<f64>, tolerance: f64) -> bool {
        let scale = 1.0 + expected.amax();
        claimed.shape() == expected.shape() && (claimed - expected).amax() <= tolerance * scale
    }

    /// Checks a derivative of any kind against central differences along three random
    /// directions, and returns it.
    #[track_caller]
    fn check(problem: &Problem, f: &Rc<Expr>, wrt: &str, order: u8) -> Derivative {
        check_typed(problem, &problem.typed(f), wrt, order)
    }

    /// Parses and infers shapes, and makes a problem that draws every variable as
    /// declared, all scalars positive.
    fn parsed(src: &str, decls: &str) -> (Typed, crate::parse::ParseOptions, Problem) {
        let decls = crate::parse::parse_decls(decls).unwrap();
        let options = crate::parse::ParseOptions::from_decls(&decls);
        let expr = crate::parse::parse_with(src, &options).unwrap();
        let typed = crate::shape::infer(&expr, &decls).unwrap();
        let mut problem = Problem::new();
        for (name, decl) in &typed.vars {
            let kind = if decl.props.positive_definite {
                Kind::Spd
            } else if decl.props.symmetric {
                Kind::Sym
            } else if decl.shape.is_scalar() {
                Kind::Positive
            } else {
                Kind::General
            };
            problem.vars.insert(name.clone(), decl.clone());
            problem.kinds.insert(name.clone(), kind);
        }
        (typed, options, problem)
    }

    /// Parses, infers shapes and checks a derivative, all scalars drawn positive.
    #[track_caller]
    fn check_source(src: &str, decls: &str, wrt: &str, order: u8) -> Derivative {
        let (typed, _, problem) = parsed(src, decls);
        check_typed(&problem, &typed, wrt, order)
    }

    #[track_caller]
    fn check_typed(problem: &Problem, typed: &Typed, wrt: &str, order: u8) -> Derivative {
        let f = &typed.expr;
        let d = derivative(typed, wrt, order).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..3 {
            let env = problem.draw(&mut rng);
            let v = problem.direction(wrt, &mut rng);
            let mut with_direction = env.clone();
            with_direction.insert(format!("d{wrt}"), v.clone());
            let derivative_value = eval(&d.expr, &with_direction);
            let (claimed, expected, tolerance) = match d.kind {
                DerivativeKind::Gradient => {
                    let h = 1e-6;
                    let fd = (along(f, &env, wrt, &v, h) - along(f, &env, wrt, &v, -h)) / (2.0 * h);
                    assert_eq!(derivative_value.shape(), v.shape(), "gradient shape");
                    (scalar(derivative_value.dot(&v)), fd, 1e-6)
                }
                DerivativeKind::Jacobian | DerivativeKind::Differential => {
                    let h = 1e-6;
                    let fd = (along(f, &env, wrt, &v, h) - along(f, &env, wrt, &v, -h)) / (2.0 * h);
                    let claimed = if d.kind == DerivativeKind::Jacobian {
                        if v.len() == 1 {
                            &derivative_value * v[0]
                        } else {
                            &derivative_value * &v
                        }
                    } else {
                        derivative_value
                    };
                    (claimed, fd, 1e-6)
                }
                DerivativeKind::Hessian | DerivativeKind::SecondDifferential => {
                    let h = 1e-4;
                    let fd = (along(f, &env, wrt, &v, h) - eval(f, &env) * 2.0
                        + along(f, &env, wrt, &v, -h))
                        / (h * h);
                    let claimed = if d.kind == DerivativeKind::Hessian {
                        v.transpose() * &derivative_value * &v
                    } else {
                        derivative_value
                    };
                    (claimed, fd, 1e-4)
                }
            };
            assert!(
                close(&claimed, &expected, tolerance),
                "{:?} of {wrt}: claimed {claimed} expected {expected}\nderivative: {}",
                d.kind,
                show(&d.expr)
            );
        }
        d
    }

    /// Checks that two expressions agree on random instances.
    #[track_caller]
    fn check_same(problem: &Problem, a: &Expr, b: &Expr) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for _ in 0..3 {
            let env = problem.draw(&mut rng);
            let (x, y) = (eval(a, &env), eval(b, &env));
            assert!(close(&x, &y, 1e-9), "{x} differs from {y}");
        }
    }

    fn q(n: i64, d: i64) -> Rc<Expr> {
        build::constant(Rational::new(n.into(), d.into()))
    }

    use build::{
        add as plus, hadamard, inverse, logdet, mul as times, norm_sq, sub as minus, trace,
        transpose as t,
    };

    /// A plain fully parenthesised rendering, to eyeball results while debugging.
    fn show(e: &Expr) -> String {
        use ExprKind as K;
        match &e.kind {
            K::Num(q) => q.to_string(),
            K::Var(v) => v.clone(),
            K::Differential(v) => format!("d{v}"),
            K::Identity => "I".into(),
            K::Ones => "𝟙".into(),
            K::Size(name) => name.to_string(),
            K::Neg(a) => format!("−{}", show(a)),
            K::Add(a, b) => format!("({} + {})", show(a), show(b)),
            K::Sub(a, b) => format!("({} − {})", show(a), show(b)),
            K::Mul(a, b) => format!("{}·{}", show(a), show(b)),
            K::Div(a, b) => format!("{}/{}", show(a), show(b)),
            K::Hadamard(a, b) => format!("({} ⊙ {})", show(a), show(b)),
            K::Transpose(a) => format!("[{}]ᵀ", show(a)),
            K::Inverse(a) => format!("[{}]⁻¹", show(a)),
            K::Pow(a, k) => format!("[{}]^{k}", show(a)),
            K::Trace(a) => format!("tr({})", show(a)),
            K::Det(a) => format!("det({})", show(a)),
            K::LogDet(a) => format!("log|{}|", show(a)),
            K::NormSq(a) => format!("‖{}‖²", show(a)),
            K::Diag(a) => format!("diag({})", show(a)),
            K::Sum(a) => format!("sum({})", show(a)),
            K::Func(f, a) => format!("{}({})", f.name(), show(a)),
            K::Apply(n, a) => format!("{n}({})", show(a)),
            K::Grad(n, a) => format!("∇{n}({})", show(a)),
            K::Kron(a, b) => format!("({} ⊗ {})", show(a), show(b)),
            K::Vectorize(a) => format!("vec({})", show(a)),
            K::Commutation(m, n) => format!("K({m},{n})"),
            K::Norm(a, kind) => format!("‖{}‖{kind:?}", show(a)),
            K::ElemDiv(a, b) => format!("({} ⊘ {})", show(a), show(b)),
            K::ElemPow(a, q) => format!("[{}]^∘{q}", show(a)),
            K::PowSym(a, k, o) => format!("[{}]^({k}+{o})", show(a)),
            K::Softmax(a) => format!("softmax({})", show(a)),
            K::LogSumExp(a) => format!("logsumexp({})", show(a)),
            K::Written(a, _) => show(a),
        }
    }

    /// Whether `claim` equals our derivative on random instances.
    fn claim_agrees(src: &str, decls: &str, wrt: &str, order: u8, claim: &str) -> bool {
        let (typed, options, problem) = parsed(src, decls);
        let d = check_typed(&problem, &typed, wrt, order);
        let all = crate::expr::Decls {
            vars: typed.vars.clone(),
            fns: typed.fns.clone(),
            sizes: Default::default(),
        };
        let closed =
            crate::parse::parse_with(claim, &options).unwrap_or_else(|e| panic!("{claim}: {e:?}"));
        let closed = crate::shape::infer(&closed, &all)
            .unwrap_or_else(|e| panic!("{claim}: {e}"))
            .expr;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let env = problem.draw(&mut rng);
        let (x, y) = (eval(&d.expr, &env), eval(&closed, &env));
        close(&x, &y, 1e-8)
    }

    #[test]
    fn diff_parsed_claims_agree_or_disagree() {
        let k = "(αXXᵀ + β⁻¹I)";
        let l2 = "−½ tr((αXXᵀ + β⁻¹I)⁻¹YYᵀ)";
        let gplvm = "−c − D/2 log|αXXᵀ + β⁻¹I| − ½ tr((αXXᵀ + β⁻¹I)⁻¹YYᵀ)";
        assert!(claim_agrees(
            "½‖WᵀWx − x‖²",
            "",
            "W",
            1,
            "W((WᵀWx − x)xᵀ + x(WᵀWx − x)ᵀ)"
        ));
        assert!(claim_agrees(
            "½‖WᵀWx − x‖²",
            "",
            "W",
            1,
            "−2Wxxᵀ + WxxᵀWᵀW + WWᵀWxxᵀ"
        ));
        assert!(claim_agrees(
            "½‖WᵀWx − x‖²",
            "",
            "x",
            1,
            "(WᵀW − I)ᵀ(WᵀWx − x)"
        ));
        assert!(claim_agrees(
            "−D/2 log|αXXᵀ + β⁻¹I|",
            "D: scalar",
            "X",
            1,
            &"−D α K⁻¹ X".replace('K', k)
        ));
        assert!(claim_agrees(l2, "", "X", 1, &"αK⁻¹YYᵀK⁻¹X".replace('K', k)));
        assert!(claim_agrees(
            gplvm,
            "",
            "X",
            1,
            &"α(K⁻¹YYᵀK⁻¹ − D·K⁻¹)X".replace('K', k)
        ));
        assert!(claim_agrees(
            gplvm,
            "",
            "α",
            1,
            &"½ tr(K⁻¹YYᵀK⁻¹XXᵀ) − D/2 tr(K⁻¹XXᵀ)".replace('K', k)
        ));
        assert!(!claim_agrees(
            l2,
            "",
            "X",
            1,
            &"α/2((K⁻ᵀ)²YYᵀ + YYᵀ(K⁻ᵀ)²)X".replace('K', k)
        ));
        let z = "½‖W₂ swish(z₁) + b₂ − y‖²";
        let sp = "(σ(z₁) + z₁ ⊙ σ(z₁) ⊙ (1 − σ(z₁)))";
        assert!(claim_agrees(
            z,
            "",
            "z₁",
            1,
            &format!("{sp} ⊙ W₂ᵀ(W₂ swish(z₁) + b₂ − y)")
        ));
        assert!(claim_agrees(
            z,
            "",
            "z₁",
            1,
            &format!("diag({sp}) W₂ᵀ(W₂ swish(z₁) + b₂ − y)")
        ));
        assert!(!claim_agrees(
            z,
            "",
            "z₁",
            1,
            "(σ(z₁) + z₁ ⊙ (1 − σ(z₁))) ⊙ W₂ᵀ(W₂ swish(z₁) + b₂ − y)"
        ));
        assert!(claim_agrees(
            "½‖W₂h₁ + b₂ − y‖²",
            "",
            "h₁",
            1,
            "W₂ᵀ(W₂h₁ + b₂ − y)"
        ));
        let net = "½‖W₂ swish(W₁x + b₁) + b₂ − y‖²";
        let expand = |t: &str| {
            t.replace("{s′}", sp)
                .replace("{r}", "(W₂ swish(z₁) + b₂ − y)")
                .replace("z₁", "(W₁x + b₁)")
        };
        assert!(claim_agrees(net, "", "W₂", 1, &expand("{r} swish(z₁)ᵀ")));
        assert!(claim_agrees(net, "", "b₂", 1, &expand("{r}")));
        assert!(claim_agrees(
            net,
            "",
            "W₁",
            1,
            &expand("({s′} ⊙ W₂ᵀ{r}) xᵀ")
        ));
        assert!(claim_agrees(net, "", "b₁", 1, &expand("{s′} ⊙ W₂ᵀ{r}")));
        assert!(claim_agrees(net, "", "x", 1, &expand("W₁ᵀ({s′} ⊙ W₂ᵀ{r})")));
        let opaque = "ℓ(W₂ swish(W₁x + b₁) + b₂)";
        let g = "∇ℓ(W₂ swish(z₁) + b₂)";
        assert!(claim_agrees(
            opaque,
            "ℓ: fn",
            "W₁",
            1,
            &expand(&format!("({{s′}} ⊙ W₂ᵀ{g}) xᵀ"))
        ));
        assert!(claim_agrees(
            opaque,
            "ℓ: fn",
            "W₂",
            1,
            &expand(&format!("{g} swish(z₁)ᵀ"))
        ));
        assert!(claim_agrees(
            "swish(W₁x + b₁)",
            "",
            "x",
            1,
            &expand("diag({s′}) W₁")
        ));
        assert!(claim_agrees(
            "swish(W₁x + b₁)",
            "",
            "b₁",
            1,
            &expand("diag({s′})")
        ));
        assert!(claim_agrees("½‖Ax − b‖²", "", "x", 2, "AᵀA"));
        assert!(claim_agrees("tr(AX)", "X: n×n sym", "X", 1, "½(A + Aᵀ)"));
        assert!(!claim_agrees("tr(AX)", "X: n×n sym", "X", 1, "Aᵀ"));
        assert!(claim_agrees("log|X|", "X: n×n spd", "X", 1, "X⁻¹"));
        for (src, decls, wrt) in [
            ("tr(XᵀAX)", "", "X"),
            ("log|X|", "X: n×n spd", "X"),
            (net, "", "W₁"),
        ] {
            check_source(src, decls, wrt, 2);
        }
    }

    #[test]
    fn diff_parsed_sheet_expressions() {
        check_source("½‖WᵀWx − x‖²", "", "W", 1);
        let gplvm = "−c − D/2 log|αXXᵀ + β⁻¹I| − ½ tr((αXXᵀ + β⁻¹I)⁻¹YYᵀ)";
        for wrt in ["X", "α", "β", "c", "D"] {
            check_source(gplvm, "", wrt, 1);
        }
        check_source(gplvm, "", "X", 2);
        let swish = "½‖W₂ swish(W₁x + b₁) + b₂ − y‖²";
        for wrt in ["W₁", "b₁", "W₂", "b₂", "x"] {
            check_source(swish, "", wrt, 1);
        }
        for wrt in ["W₁", "b₁", "W₂", "b₂"] {
            check_source("ℓ(W₂ swish(W₁x + b₁) + b₂)", "ℓ: fn", wrt, 1);
        }
        check_source("swish(W₁x + b₁)", "", "x", 1);
        check_source("½‖Ax − b‖²", "", "x", 2);
        check_source("tr(AX)", "X: n×n sym", "X", 1);
        check_source("log|X|", "X: n×n spd", "X", 1);
    }

    #[test]
    fn diff_autoencoder_gradient_is_w_zxt_plus_xzt() {
        let mut p = Problem::new();
        let w = p.var("W", 2, 3, Kind::General);
        let x = p.var("x", 3, 1, Kind::General);
        let z = minus(times(times(t(w.clone()), w.clone()), x.clone()), x.clone());
        let f = times(q(1, 2), norm_sq(z.clone()));
        let d = check(&p, &f, "W", 1);
        let expected = times(
            w.clone(),
            plus(
                times(z.clone(), t(x.clone())),
                times(x.clone(), t(z.clone())),
            ),
        );
        check_same(&p, &d.expr, &expected);
        check(&p, &f, "x", 1);
    }

    fn gplvm(p: &mut Problem) -> (Rc<Expr>, Rc<Expr>, Rc<Expr>, Rc<Expr>) {
        let x = p.var("X", 3, 2, Kind::General);
        let y = p.var("Y", 3, 2, Kind::General);
        let alpha = p.var("α", 1, 1, Kind::Positive);
        let beta = p.var("β", 1, 1, Kind::Positive);
        let c = p.var("c", 1, 1, Kind::General);
        let dd = p.var("D", 1, 1, Kind::General);
        let k = plus(
            times(times(alpha.clone(), x.clone()), t(x.clone())),
            times(inverse(beta.clone()), build::identity(Dim::Known(3))),
        );
        let l1 = build::neg(times(
            build::div(dd.clone(), build::int(2)),
            logdet(k.clone()),
        ));
        let l2 = build::neg(times(
            q(1, 2),
            trace(times(times(inverse(k.clone()), y.clone()), t(y.clone()))),
        ));
        let l = minus(
            minus(
                build::neg(c),
                times(build::div(dd, build::int(2)), logdet(k.clone())),
            ),
            times(
                q(1, 2),
                trace(times(times(inverse(k.clone()), y.clone()), t(y.clone()))),
            ),
        );
        (k, l1, l2, l)
    }

    #[test]
    fn diff_gplvm_gradients_match_the_closed_form() {
        let mut p = Problem::new();
        let (k, l1, l2, l) = gplvm(&mut p);
        check(&p, &l1, "X", 1);
        check(&p, &l2, "X", 1);
        check(&p, &l, "α", 1);
        check(&p, &l, "β", 1);
        check(&p, &l, "D", 1);
        let d = check(&p, &l, "X", 1);
        let x = build::var("X", p.vars["X"].shape.clone());
        let y = build::var("Y", p.vars["Y"].shape.clone());
        let alpha = build::var("α", Shape::scalar());
        let dd = build::var("D", Shape::scalar());
        let kinv = inverse(k);
        let expected = times(
            alpha,
            times(
                minus(
                    times(times(times(kinv.clone(), y.clone()), t(y)), kinv.clone()),
                    times(dd, kinv),
                ),
                x,
            ),
        );
        check_same(&p, &d.expr, &expected);
    }

    #[test]
    fn diff_gplvm_differential_second_differential_and_order_errors() {
        let mut p = Problem::new();
        let (k, _, _, l) = gplvm(&mut p);
        let d = check(&p, &inverse(k), "X", 1);
        assert_eq!(d.kind, DerivativeKind::Differential);
        let d2 = check(&p, &l, "X", 2);
        assert_eq!(d2.kind, DerivativeKind::SecondDifferential);
        let typed = p.typed(&l);
        assert!(matches!(
            derivative(&typed, "X", 3),
            Err(Error::Unsupported { .. })
        ));
    }

    fn swish_network(p: &mut Problem) -> (Rc<Expr>, Rc<Expr>) {
        let w1 = p.var("W₁", 3, 2, Kind::General);
        let b1 = p.var("b₁", 3, 1, Kind::General);
        let w2 = p.var("W₂", 2, 3, Kind::General);
        let b2 = p.var("b₂", 2, 1, Kind::General);
        let x = p.var("x", 2, 1, Kind::General);
        let y = p.var("y", 2, 1, Kind::General);
        let z1 = plus(times(w1, x), b1);
        let z2 = plus(times(w2, build::func(Func::Swish, z1)), b2);
        let l = times(q(1, 2), norm_sq(minus(z2.clone(), y)));
        (z2, l)
    }

    #[test]
    fn diff_swish_network_gradients() {
        let mut p = Problem::new();
        let (z2, l) = swish_network(&mut p);
        for wrt in ["W₁", "b₁", "W₂", "b₂", "x", "y"] {
            check(&p, &l, wrt, 1);
        }
        let opaque = build::apply("ℓ", z2);
        for wrt in ["W₁", "b₁", "W₂", "b₂"] {
            check(&p, &opaque, wrt, 1);
        }
    }

    /// The identities differentiation rewrites by keep the value (on random SPD
    /// matrices, well conditioned for the finite differences of their powers), and the
    /// derivatives through them agree with central differences.
    #[test]
    fn diff_textbook_identities_keep_the_value() {
        let mut p = Problem::new();
        let x = p.var("X", 3, 3, Kind::Spd);
        let log = |e: Rc<Expr>| build::func(Func::Log, e);
        let cases = [
            build::det(build::pow(x.clone(), 5)),
            build::det(build::pow(x.clone(), -2)),
            build::logdet(build::pow(x.clone(), 3)),
            build::logdet(build::inverse(x.clone())),
            log(build::det(x.clone())),
            log(build::det(build::inverse(x.clone()))),
            log(build::det(build::pow(x.clone(), 3))),
            log(build::pow(build::det(x.clone()), 2)),
            log(build::inverse(build::det(x.clone()))),
        ];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
        for f in &cases {
            let rewritten = textbook_identities(f);
            assert!(!Rc::ptr_eq(&rewritten, f), "{} is not rewritten", show(f));
            for _ in 0..5 {
                let env = p.draw(&mut rng);
                let (before, after) = (eval(f, &env), eval(&rewritten, &env));
                assert!(
                    close(&after, &before, 1e-9),
                    "{}: {before} ≠ {after}",
                    show(f)
                );
            }
            check(&p, f, "X", 1);
        }
    }

    #[test]
    fn diff_every_elementwise_function_and_scalar_rule() {
        let mut p = Problem::new();
        let a = p.var("A", 3, 3, Kind::General);
        let x = p.var("x", 3, 1, Kind::General);
        let s = p.var("s", 1, 1, Kind::Positive);
        let spd = plus(
            times(a.clone(), t(a.clone())),
            build::identity(Dim::Known(3)),
        );
        for f in Func::ALL {
            let z = times(a.clone(), x.clone());
            // Arguments inside each function's domain: positive for log and sqrt, inside
            // (−1, 1) for arcsin and arccos, away from tan's poles.
            let argument = match f {
                Func::Log | Func::Sqrt => build::func(Func::Exp, z),
                Func::Arcsin | Func::Arccos | Func::Tan => build::func(Func::Tanh, z),
                _ => z,
            };
            let e = build::sum(hadamard(build::func(f, argument), x.clone()));
            check(&p, &e, "x", 1);
            check(&p, &e, "A", 1);
            let square = times(s.clone(), s.clone());
            let scalar_argument = match f {
                Func::Arcsin | Func::Arccos | Func::Tan => build::func(Func::Tanh, square),
                _ => square,
            };
            let scalar_e = build::func(f, scalar_argument);
            check(&p, &scalar_e, "s", 1);
        }
        let cases = vec![
            build::det(spd.clone()),
            build::det(a.clone()),
            logdet(a.clone()),
            trace(build::pow(spd.clone(), 3)),
            trace(build::pow(spd.clone(), -2)),
            build::sum(build::pow(spd.clone(), -3)),
            build::sum(build::diag(build::diag(a.clone()))),
            build::sum(build::diag(times(a.clone(), x.clone()))),
            build::sum(build::div(a.clone(), s.clone())),
            build::sum(build::div(a.clone(), build::func(Func::Exp, a.clone()))),
            times(
                build::div(s.clone(), build::pow(s.clone(), 3)),
                norm_sq(x.clone()),
            ),
            build::pow(s.clone(), -2),
            inverse(times(s.clone(), norm_sq(x.clone()))),
            build::det(s.clone()),
            logdet(s.clone()),
            trace(s.clone()),
            build::sum(plus(a.clone(), s.clone())),
            build::sum(minus(s.clone(), x.clone())),
            norm_sq(minus(s.clone(), a.clone())),
            build::sum(hadamard(s.clone(), a.clone())),
            times(t(x.clone()), times(inverse(spd.clone()), x.clone())),
            norm_sq(times(times(x.clone(), t(x.clone())), a.clone())),
        ];
        for e in &cases {
            for wrt in ["A", "x", "s"] {
                check(&p, e, wrt, 1);
            }
        }
    }

    #[test]
    fn diff_jacobian_hessian_and_symmetric_gradients() {
        let mut p = Problem::new();
        let a = p.var("A", 3, 2, Kind::General);
        let b = p.var("b", 3, 1, Kind::General);
        let x = p.var("x", 2, 1, Kind::General);
        let s = p.var("s", 1, 1, Kind::General);
        let c = p.var("C", 3, 3, Kind::General);
        let xs = p.var("X", 3, 3, Kind::Sym);
        let k = p.var("K", 3, 3, Kind::Spd);
        let f = times(
            q(1, 2),
            norm_sq(minus(times(a.clone(), x.clone()), b.clone())),
        );
        let h = check(&p, &f, "x", 2);
        assert_eq!(h.kind, DerivativeKind::Hessian);
        check_same(&p, &h.expr, &times(t(a.clone()), a.clone()));
        let hs = check(&p, &times(s.clone(), times(s.clone(), f.clone())), "s", 2);
        assert_eq!(hs.kind, DerivativeKind::Hessian);
        let vector = build::func(Func::Swish, plus(times(a.clone(), x.clone()), b.clone()));
        let j = check(&p, &vector, "x", 1);
        assert_eq!(j.kind, DerivativeKind::Jacobian);
        check(&p, &vector, "s", 1);
        let mixed = plus(
            times(
                b.clone(),
                times(t(x.clone()), times(t(a.clone()), b.clone())),
            ),
            hadamard(
                build::func(Func::Tanh, b.clone()),
                build::div(times(a.clone(), x.clone()), s.clone()),
            ),
        );
        check(&p, &mixed, "x", 1);
        check(
            &p,
            &times(t(times(t(x.clone()), t(a.clone()))), s.clone()),
            "x",
            1,
        );
        check(
            &p,
            &plus(times(a.clone(), x.clone()), build::sum(x.clone())),
            "x",
            1,
        );
        check(&p, &times(x.clone(), norm_sq(x.clone())), "x", 1);
        let scalar_first = times(times(t(b.clone()), times(a.clone(), x.clone())), b.clone());
        check(&p, &scalar_first, "x", 1);
        let quotient = build::div(
            times(a.clone(), x.clone()),
            build::func(Func::Exp, b.clone()),
        );
        check(&p, &quotient, "x", 1);
        check(
            &p,
            &minus(times(a.clone(), x.clone()), build::sum(x.clone())),
            "x",
            1,
        );
        check(&p, &build::diag(times(b.clone(), t(b.clone()))), "b", 1);
        let diagonal = build::diag(times(times(a.clone(), x.clone()), t(b.clone())));
        check(&p, &diagonal, "x", 1);
        let sym = check(&p, &trace(times(c.clone(), xs.clone())), "X", 1);
        assert!(sym.symmetric);
        let spd = check(&p, &logdet(k.clone()), "K", 1);
        assert!(spd.symmetric);
        check(&p, &build::det(k.clone()), "K", 2);
    }

    #[test]
    fn diff_shared_subexpressions_stay_linear() {
        // x₀ = X, xₖ₊₁ = xₖxₖ: the unfolded tree has 2⁴⁰ leaves, the DAG 41 nodes.
        let mut p = Problem::new();
        let x = p.var("X", 2, 2, Kind::General);
        let mut e = x;
        for _ in 0..40 {
            e = times(e.clone(), e);
        }
        let f = trace(e);
        let d = derivative(&p.typed(&f), "X", 1).unwrap();
        let nodes = Graph::build(&Rc::new(d.expr)).nodes.len();
        assert!(nodes < 40 * 12, "gradient has {nodes} distinct nodes");
        // Equal subtrees built separately are hash-consed and differentiated once.
        let mut p = Problem::new();
        let a = p.var("A", 2, 2, Kind::General);
        let copy = || times(a.clone(), a.clone());
        let f = trace(times(copy(), copy()));
        check(&p, &f, "A", 1);
        let graph = Graph::build(&f);
        assert_eq!(graph.nodes.len(), 4);
    }

    #[test]
    fn diff_errors_are_reported() {
        let mut p = Problem::new();
        let w = p.var("W", 2, 2, Kind::General);
        let v = p.var("v", 2, 1, Kind::General);
        let typed = p.typed(&trace(w.clone()));
        let err = derivative(&typed, "w", 1).unwrap_err();
        assert_eq!(
            err,
            Error::UnknownVariable {
                name: "w".into(),
                hint: Some("W".into()),
                known: vec!["W".into(), "v".into()],
            }
        );
        assert!(err.diagnostic().hints[0].contains("`W`"));
        let unused = derivative(&typed, "v", 1).unwrap();
        assert!(unused.expr.is_zero());
        assert_eq!(unused.expr.shape, p.vars["v"].shape);
        let grad = build::sum(build::grad("ℓ", v.clone()));
        let err = derivative(&p.typed(&grad), "v", 1).unwrap_err();
        assert!(err.to_string().starts_with("unsupported:"), "{err}");
        let err = derivative(&p.typed(&w), "W", 2).unwrap_err();
        assert!(matches!(err, Error::NotScalar { .. }));
        let nonlinear_in_jacobian = hadamard(times(w.clone(), v.clone()), v.clone());
        check(&p, &nonlinear_in_jacobian, "v", 1);
        let matrix_hadamard = times(
            hadamard(w.clone(), times(v.clone(), t(v.clone()))),
            v.clone(),
        );
        // A Hadamard product of matrices with dv is extracted (SPEC §4).
        check(&p, &matrix_hadamard, "v", 1);
    }
}
