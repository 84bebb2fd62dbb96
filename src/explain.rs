//! Step-by-step derivations: takes a shape-checked scalar [`Typed`] loss and the variables
//! to differentiate, returns an [`Explanation`]: its computation graph with named nodes
//! (the forward pass) and each node's adjoint with the rule that produced it (the backward
//! pass), the way the problem sheet backpropagates by hand.
//!
//! # The graph
//!
//! The loss is read as a DAG: structurally equal subtrees are one node (hash-consing), so
//! a shared subexpression is drawn and differentiated once and its adjoint sums over its
//! uses. A subtree that mentions none of the `wrt` variables is one *constant* input
//! (`YYᵀ`, `β⁻¹I`, `½`); the `wrt` variables are the *variable* inputs; every other node
//! is an *operation*.
//!
//! # Names
//!
//! The output is `L`. Every other operation node is named by the user's `let` whose body
//! it equals, or else `z₁, z₂, …` (skipping names already taken by variables and lets).
//! Numbers run from the output downward, as the sheet writes `L = ½z₁, z₁ = ‖z₂‖²,
//! z₂ = z₃ − x`: a node is numbered once every node that uses it has been (a topological
//! order from the output), and among the nodes ready at the same time the one met first in
//! a left-to-right depth-first walk from the output goes first. So the backward pass runs
//! in increasing number and the forward pass in decreasing number.
//!
//! # Adjoints
//!
//! A small reverse-mode walk of its own (it needs every node's adjoint and the rule in
//! words, which [`crate::diff`] does not keep): the output's adjoint is 1; each operation
//! passes its adjoint to its operands by one local rule ("product C = AB: ∂L/∂A =
//! (∂L/∂C)Bᵀ"); a node used several times adds its paths' adjoints. Each adjoint is kept
//! in terms of node names, as the sheet writes `∂L/∂z₄ = z₂xᵀ`, and fully expanded over
//! the inputs, for numeric checking ([`check_adjoints`]) and for locating the first wrong
//! step of a claimed derivation ([`first_wrong_step`]). Only light local tidying happens
//! (constant factors collected, `1·A = A`, `IA = A`, transposes pushed through
//! products); factoring is the simplifier's job.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use num_bigint::BigInt;
use num_traits::Zero;

use crate::diag::Diagnostic;
use crate::expr::{build, Decls, Expr, ExprKind, Func, Rational, Shape, Symbol, VarDecl};
use crate::shape::Typed;

mod check;
mod graph;
mod render;
mod rules;
mod tidy;

pub use check::{check_adjoint, check_adjoints, first_wrong_step, Claim, Diagnosis, StepCheck};
pub use graph::{to_dot, to_svg};
pub use render::{to_json, to_latex, to_text};

/// Why an explanation (or a step check) could not be made.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Error {
    /// The variable is neither declared nor used in the expression.
    #[error("unknown variable `{name}`")]
    UnknownVariable {
        /// The name asked for.
        name: String,
        /// Every variable there is, sorted (empty when not known here).
        known: Vec<String>,
    },
    /// Backpropagation explains a scalar loss only.
    #[error("explain needs a scalar expression, but this one is {shape}")]
    NotScalar {
        /// The expression's shape.
        shape: Shape,
    },
    /// The expression needs a rule the explainer does not have.
    #[error("unsupported: {what}")]
    Unsupported {
        /// What is not supported, as a phrase.
        what: String,
    },
    /// A claimed step names no node of the graph.
    #[error("no node of the computation graph is named `{name}`")]
    UnknownNode {
        /// The name the claim used.
        name: String,
        /// The names the graph has.
        known: Vec<Symbol>,
    },
    /// A `let` body or a claimed adjoint did not shape-check against the graph.
    #[error("{what} does not fit the computation graph: {message}")]
    Shape {
        /// What was being checked (`the claim for ∂L/∂z₃`).
        what: String,
        /// The shape checker's message.
        message: String,
    },
}

impl Error {
    /// The error as a person reads it.
    pub fn diagnostic(&self) -> Diagnostic {
        let diagnostic = Diagnostic::new(self.to_string());
        match self {
            Error::UnknownVariable { known, .. } if !known.is_empty() => diagnostic.hint(format!(
                "explain with respect to a variable of the expression; {}",
                crate::diff::known_variables(known)
            )),
            Error::UnknownVariable { .. } => {
                diagnostic.hint("explain with respect to a variable of the expression")
            }
            Error::NotScalar { .. } => {
                diagnostic.hint("backpropagation starts from a scalar loss; take tr(·) or ‖·‖²")
            }
            Error::Unsupported { .. } | Error::Shape { .. } => diagnostic,
            Error::UnknownNode { known, .. } => {
                diagnostic.hint(format!("the graph's nodes are {}", known.join(", ")))
            }
        }
    }
}

fn unsupported(what: impl Into<String>) -> Error {
    Error::Unsupported { what: what.into() }
}

/// What a node of the computation graph is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The loss itself, `L`.
    Output,
    /// An operation between the inputs and the output.
    Intermediate,
    /// A variable the loss is differentiated with respect to.
    Variable,
    /// A subexpression that mentions no variable of `wrt` (`YYᵀ`, `½`, `x`).
    Constant,
}

/// One node of the computation graph.
#[derive(Clone, Debug)]
pub struct Node {
    /// `L`, `z₃`, a `let` name, a variable name, or for a constant its Unicode rendering.
    pub name: Symbol,
    /// What the node is.
    pub role: Role,
    /// Whether the name comes from the user's `let`.
    pub named_by_let: bool,
    /// The operands, as indices into [`Explanation::nodes`] (empty for inputs).
    pub children: Vec<usize>,
    /// The forward-pass definition in terms of the operands' names (`z₄x` for `z₃`); for
    /// an input, the input itself.
    pub definition: Expr,
    /// The node's value written over the inputs (`WᵀWx`).
    pub value: Expr,
}

impl Node {
    /// The node's shape.
    pub fn shape(&self) -> &Shape {
        &self.value.shape
    }

    /// Whether the node is an operation (the output or an intermediate).
    pub fn is_operation(&self) -> bool {
        matches!(self.role, Role::Output | Role::Intermediate) && !self.children.is_empty()
    }
}

/// A backpropagation rule in words, ready for each output format.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Rule {
    /// Unicode text: `product C = AB: ∂L/∂A = (∂L/∂C)Bᵀ`.
    pub words: String,
    /// The same as LaTeX math (words inside `\text{…}`).
    pub latex: String,
}

/// One path's share of a node's adjoint: what one user of the node passes down.
#[derive(Clone, Debug)]
pub struct Contribution {
    /// The node that uses this one, whose adjoint is passed down.
    pub from: usize,
    /// The local rule applied.
    pub rule: Rule,
    /// The share written with the user's adjoint as a symbol: `(∂L/∂z₃)xᵀ`.
    pub template: Expr,
    /// The share in terms of node names: `z₂xᵀ`.
    pub value: Expr,
}

/// One line of the backward pass: a node's adjoint ∂L/∂zᵢ.
#[derive(Clone, Debug)]
pub struct Step {
    /// The node, an index into [`Explanation::nodes`].
    pub node: usize,
    /// The shares from each use of the node, in the order they were computed.
    pub contributions: Vec<Contribution>,
    /// The rule: the single share's rule, "the paths' adjoints add" for several, the seed
    /// for the output.
    pub rule: Rule,
    /// The adjoint in terms of node names (`z₂xᵀ`).
    pub adjoint: Expr,
    /// The adjoint written over the inputs only (`(WᵀWx − x)xᵀ`).
    pub expanded: Expr,
}

/// A computation graph with its forward and backward pass.
#[derive(Clone, Debug)]
pub struct Explanation {
    /// The explained loss (with `let` names expanded), every node shaped.
    pub loss: Expr,
    /// The variables of the loss with their shapes and properties.
    pub vars: BTreeMap<Symbol, VarDecl>,
    /// The opaque functions in force.
    pub fns: BTreeSet<Symbol>,
    /// The variables differentiated, in the order asked.
    pub wrt: Vec<Symbol>,
    /// Every node: the operations in name order (the output first), then the inputs.
    pub nodes: Vec<Node>,
    /// The backward pass in the order computed: the output, every operation, then each
    /// `wrt` variable (whose adjoint is the final gradient).
    pub steps: Vec<Step>,
}

impl Explanation {
    /// The operations in the order the forward pass computes them (inputs first).
    pub fn forward(&self) -> Vec<&Node> {
        let mut res: Vec<&Node> = self.nodes.iter().filter(|n| n.is_operation()).collect();
        res.reverse();
        res
    }

    /// The index of the node called `name` (an operation, a `let` name or a variable).
    pub fn node_named(&self, name: &str) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.name == name && n.role != Role::Constant)
    }

    /// The backward-pass step of node `index`, if it has one (constants have none).
    pub fn step_of(&self, index: usize) -> Option<&Step> {
        self.steps.iter().find(|s| s.node == index)
    }

    /// The final gradient ∂L/∂`var`, as a step of the backward pass.
    pub fn gradient(&self, var: &str) -> Option<&Step> {
        let index = self
            .nodes
            .iter()
            .position(|n| n.role == Role::Variable && n.name == var)?;
        self.step_of(index)
    }

    /// The label a drawing gives node `index`: `z₃ = z₄x` for an operation, the name for an
    /// input.
    pub fn label(&self, index: usize) -> String {
        match self.nodes.get(index) {
            Some(node) if node.is_operation() => {
                format!("{} = {}", node.name, render::unicode(&node.definition))
            }
            Some(node) => node.name.clone(),
            None => String::new(),
        }
    }
}

/// Explains the scalar loss `typed` with respect to `wrt` (one variable, or several
/// separated by commas: `W₁,b₁`).
///
/// `lets` are the user's definitions `(name, body)`, in order; a body may use earlier (or
/// later) `let` names. Each graph node equal to a body takes its name, and a loss that uses
/// a `let` name is expanded before it is explained.
///
/// # Examples
/// ```
/// use matcalc::expr::{build, Dim, Props, Shape, VarDecl};
/// use matcalc::shape::Typed;
/// // L = ½‖x‖² with x: n.
/// let x = build::var("x", Shape::vector(Dim::Sym("n".into())));
/// let loss = build::mul(build::constant(matcalc::Rational::new(1.into(), 2.into())), build::norm_sq(x.clone()));
/// let decl = VarDecl { shape: x.shape.clone(), props: Props::default() };
/// let typed = Typed { expr: (*loss).clone(), vars: [("x".to_string(), decl)].into(), fns: Default::default() };
/// let explanation = matcalc::explain::explain(&typed, "x", &[])?;
/// assert_eq!(explanation.label(0), "L = ½z₁");
/// let gradient = explanation.gradient("x").unwrap();
/// assert_eq!(gradient.expanded, *x);
/// # Ok::<(), matcalc::explain::Error>(())
/// ```
pub fn explain(typed: &Typed, wrt: &str, lets: &[(Symbol, Expr)]) -> Result<Explanation, Error> {
    let lets = expand_lets(lets);
    let loss = expand_loss(typed, &lets)?;
    let loss = (*pull_scalars(&Rc::new(loss))).clone();
    let decls = Decls {
        vars: typed.vars.clone(),
        fns: typed.fns.clone(),
        sizes: Default::default(),
    };
    // Let bodies are typed so that they are read the same way as the loss.
    let lets: Vec<(Symbol, Rc<Expr>)> = lets
        .into_iter()
        .map(|(name, body)| {
            let body = crate::shape::infer(&body, &decls)
                .map(|t| pull_scalars(&Rc::new(t.expr)))
                .unwrap_or(body);
            (name, body)
        })
        .collect();
    if !loss.shape.is_scalar() {
        return Err(Error::NotScalar {
            shape: loss.shape.clone(),
        });
    }
    let mut vars = typed.vars.clone();
    for (name, _) in &lets {
        if !loss.mentions(name) {
            vars.remove(name);
        }
    }
    let mut wrt_names: Vec<Symbol> = Vec::new();
    for name in wrt.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if !vars.contains_key(name) && !loss.mentions(name) {
            return Err(Error::UnknownVariable {
                name: name.to_string(),
                known: vars.keys().cloned().collect(),
            });
        }
        if !wrt_names.iter().any(|w| w == name) {
            wrt_names.push(name.to_string());
        }
    }
    if wrt_names.is_empty() {
        return Err(Error::UnknownVariable {
            name: wrt.to_string(),
            known: vars.keys().cloned().collect(),
        });
    }
    let nodes = build_graph(&loss, &wrt_names, &vars, &lets)?;
    let steps = backward(&nodes, None)?;
    Ok(Explanation {
        loss,
        vars,
        fns: typed.fns.clone(),
        wrt: wrt_names,
        nodes,
        steps,
    })
}

/// Substitutes `let` names inside the bodies until none is left (bounded by the number
/// of lets, so a cyclic definition stops instead of looping).
fn expand_lets(lets: &[(Symbol, Expr)]) -> Vec<(Symbol, Rc<Expr>)> {
    let mut bodies: Vec<(Symbol, Rc<Expr>)> = lets
        .iter()
        .map(|(name, body)| (name.clone(), Rc::new(body.clone())))
        .collect();
    for _ in 0..bodies.len() {
        let map: HashMap<Symbol, Rc<Expr>> = bodies.iter().cloned().collect();
        let mut changed = false;
        for (name, body) in bodies.iter_mut() {
            let mut others = map.clone();
            others.remove(name);
            let next = substitute(body, &others);
            if *next != **body {
                changed = true;
                *body = next;
            }
        }
        if !changed {
            break;
        }
    }
    bodies
}

/// The loss with `let` names expanded, re-typed when anything was substituted.
fn expand_loss(typed: &Typed, lets: &[(Symbol, Rc<Expr>)]) -> Result<Expr, Error> {
    let map: HashMap<Symbol, Rc<Expr>> = lets.iter().cloned().collect();
    let expr = Rc::new(typed.expr.clone());
    let expanded = substitute(&expr, &map);
    if Rc::ptr_eq(&expanded, &expr) {
        return Ok(typed.expr.clone());
    }
    let mut decls = Decls {
        vars: typed.vars.clone(),
        fns: typed.fns.clone(),
        sizes: Default::default(),
    };
    for (name, _) in lets {
        decls.vars.remove(name);
    }
    crate::shape::infer(&expanded, &decls)
        .map(|t| t.expr)
        .map_err(|e| Error::Shape {
            what: "the loss with its `let` names expanded".to_string(),
            message: e.to_string(),
        })
}

/// Reads a scalar factor in a product of matrices as scaling the whole product, `(αX)Xᵀ`
/// as `α(XXᵀ)`, as the sheet draws it (Z₄ = αZ₅, Z₅ = XXᵀ); the value is the same.
fn pull_scalars(expr: &Rc<Expr>) -> Rc<Expr> {
    let children = expr.children();
    if children.is_empty() {
        return expr.clone();
    }
    let new: Vec<Rc<Expr>> = children.iter().map(|c| pull_scalars(c)).collect();
    if let (ExprKind::Mul(..), [left, right]) = (&expr.kind, new.as_slice()) {
        if let ExprKind::Mul(factor, inner) = &left.kind {
            let known = |e: &Expr| e.shape.rows != crate::expr::Dim::Unknown;
            if known(factor)
                && factor.shape.is_scalar()
                && !inner.shape.is_scalar()
                && known(right)
                && !right.shape.is_scalar()
            {
                let product = pull_scalars(&build::mul(inner.clone(), right.clone()));
                return build::mul(factor.clone(), product);
            }
        }
    }
    if new.iter().zip(&children).all(|(a, b)| Rc::ptr_eq(a, b)) {
        return expr.clone();
    }
    Rc::new(with_children(expr, &new))
}

/// Replaces every variable named in `map` by its expression; shares unchanged subtrees.
pub(crate) fn substitute(expr: &Rc<Expr>, map: &HashMap<Symbol, Rc<Expr>>) -> Rc<Expr> {
    if let ExprKind::Var(name) = &expr.kind {
        return map.get(name).cloned().unwrap_or_else(|| expr.clone());
    }
    let children = expr.children();
    if children.is_empty() || map.is_empty() {
        return expr.clone();
    }
    let new: Vec<Rc<Expr>> = children.iter().map(|c| substitute(c, map)).collect();
    if new.iter().zip(&children).all(|(a, b)| Rc::ptr_eq(a, b)) {
        return expr.clone();
    }
    Rc::new(with_children(expr, &new))
}

/// Replaces every occurrence of the subtree `target` by `with`.
pub(crate) fn replace_subtree(expr: &Rc<Expr>, target: &Expr, with: &Rc<Expr>) -> Rc<Expr> {
    if **expr == *target {
        return with.clone();
    }
    let children = expr.children();
    if children.is_empty() {
        return expr.clone();
    }
    let new: Vec<Rc<Expr>> = children
        .iter()
        .map(|c| replace_subtree(c, target, with))
        .collect();
    if new.iter().zip(&children).all(|(a, b)| Rc::ptr_eq(a, b)) {
        return expr.clone();
    }
    Rc::new(with_children(expr, &new))
}

/// The same node with its children replaced (in order), keeping its shape.
fn with_children(expr: &Expr, kids: &[Rc<Expr>]) -> Expr {
    use ExprKind::*;
    let kid = |i: usize| kids.get(i).cloned().unwrap_or_else(|| build::int(0));
    let kind =
        match &expr.kind {
            Neg(_) => Neg(kid(0)),
            Add(..) => Add(kid(0), kid(1)),
            Sub(..) => Sub(kid(0), kid(1)),
            Mul(..) => Mul(kid(0), kid(1)),
            Div(..) => Div(kid(0), kid(1)),
            Hadamard(..) => Hadamard(kid(0), kid(1)),
            Transpose(_) => Transpose(kid(0)),
            Inverse(_) => Inverse(kid(0)),
            Pow(_, k) => Pow(kid(0), *k),
            Trace(_) => Trace(kid(0)),
            Det(_) => Det(kid(0)),
            LogDet(_) => LogDet(kid(0)),
            NormSq(_) => NormSq(kid(0)),
            Diag(_) => Diag(kid(0)),
            Sum(_) => Sum(kid(0)),
            Func(f, _) => Func(*f, kid(0)),
            Apply(name, _) => Apply(name.clone(), kid(0)),
            Grad(name, _) => Grad(name.clone(), kid(0)),
            Kron(..) => Kron(kid(0), kid(1)),
            Vectorize(_) => Vectorize(kid(0)),
            leaf @ (Num(_) | Var(_) | Identity | Ones | Size(_) | Differential(_)
            | Commutation(..)) => leaf.clone(),
            Norm(_, kind) => Norm(kid(0), *kind),
            ElemDiv(..) => ElemDiv(kid(0), kid(1)),
            ElemPow(_, q) => ElemPow(kid(0), q.clone()),
            PowSym(_, k, offset) => PowSym(kid(0), k.clone(), *offset),
            Softmax(_) => Softmax(kid(0)),
            LogSumExp(_) => LogSumExp(kid(0)),
            Written(_, notation) => Written(kid(0), *notation),
        };
    Expr::typed(kind, expr.shape.clone())
}

// ---------------------------------------------------------------------------------------
// Building the graph.

#[derive(Clone, Copy, PartialEq, Eq)]
enum RawKind {
    Operation,
    Variable,
    Constant,
}

struct RawNode {
    value: Rc<Expr>,
    kind: RawKind,
    children: Vec<usize>,
}

struct Interner<'a> {
    wrt: &'a [Symbol],
    index: HashMap<Expr, usize>,
    nodes: Vec<RawNode>,
}

impl Interner<'_> {
    fn intern(&mut self, expr: &Rc<Expr>) -> usize {
        if let Some(&i) = self.index.get(expr.as_ref()) {
            return i;
        }
        let depends = self.wrt.iter().any(|w| expr.mentions(w));
        let (kind, children) = if !depends {
            (RawKind::Constant, Vec::new())
        } else if let ExprKind::Var(_) = &expr.kind {
            (RawKind::Variable, Vec::new())
        } else {
            let children = expr
                .children()
                .into_iter()
                .map(|c| self.intern(c))
                .collect();
            (RawKind::Operation, children)
        };
        let i = self.nodes.len();
        self.nodes.push(RawNode {
            value: expr.clone(),
            kind,
            children,
        });
        self.index.insert((**expr).clone(), i);
        i
    }
}

fn subscript(n: usize) -> String {
    n.to_string()
        .chars()
        .map(|c| match c {
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

fn build_graph(
    loss: &Expr,
    wrt: &[Symbol],
    vars: &BTreeMap<Symbol, VarDecl>,
    lets: &[(Symbol, Rc<Expr>)],
) -> Result<Vec<Node>, Error> {
    let mut interner = Interner {
        wrt,
        index: HashMap::new(),
        nodes: Vec::new(),
    };
    let root = interner.intern(&Rc::new(loss.clone()));
    // Variables asked for but absent from the loss still get an (isolated) input node, so
    // that their gradient, zero, is reported.
    for name in wrt {
        if !loss.mentions(name) {
            let shape = vars
                .get(name)
                .map(|d| d.shape.clone())
                .unwrap_or_else(Shape::scalar);
            interner.nodes.push(RawNode {
                value: build::var(name, shape),
                kind: RawKind::Variable,
                children: Vec::new(),
            });
        }
    }
    let raw = interner.nodes;

    // Depth-first pre-order positions from the output, left to right.
    let mut preorder = vec![usize::MAX; raw.len()];
    let mut counter = 0;
    let mut stack = vec![root];
    while let Some(i) = stack.pop() {
        if preorder[i] != usize::MAX {
            continue;
        }
        preorder[i] = counter;
        counter += 1;
        for &c in raw[i].children.iter().rev() {
            stack.push(c);
        }
    }
    for p in preorder.iter_mut() {
        if *p == usize::MAX {
            *p = counter;
            counter += 1;
        }
    }

    // Kahn's algorithm from the output over operation nodes; ties by pre-order.
    let mut uses = vec![0usize; raw.len()];
    for node in &raw {
        for &c in &node.children {
            uses[c] += 1;
        }
    }
    let mut ready: BTreeSet<(usize, usize)> = BTreeSet::new();
    let mut op_order = Vec::new();
    if raw[root].kind == RawKind::Operation {
        ready.insert((preorder[root], root));
    }
    while let Some(&(p, i)) = ready.iter().next() {
        ready.remove(&(p, i));
        op_order.push(i);
        for &c in &raw[i].children {
            uses[c] -= 1;
            if uses[c] == 0 && raw[c].kind == RawKind::Operation {
                ready.insert((preorder[c], c));
            }
        }
    }
    let mut inputs: Vec<usize> = (0..raw.len())
        .filter(|&i| raw[i].kind != RawKind::Operation)
        .collect();
    inputs.sort_by_key(|&i| preorder[i]);
    let order: Vec<usize> = op_order.iter().chain(inputs.iter()).copied().collect();
    let mut position = vec![0usize; raw.len()];
    for (new, &old) in order.iter().enumerate() {
        position[old] = new;
    }

    // Names.
    let mut taken: BTreeSet<Symbol> = vars.keys().cloned().collect();
    taken.extend(loss.free_vars());
    taken.extend(lets.iter().map(|(n, _)| n.clone()));
    let output_name = if taken.contains("L") { "ℒ" } else { "L" }.to_string();
    let mut next_number = 1;
    let mut names: Vec<(Symbol, bool)> = Vec::with_capacity(order.len());
    for &old in &order {
        let node = &raw[old];
        let let_name = lets
            .iter()
            .find(|(_, body)| **body == *node.value)
            .map(|(n, _)| n.clone());
        let named = match node.kind {
            RawKind::Operation => match let_name {
                Some(name) => (name, true),
                None if old == root => (output_name.clone(), false),
                None => loop {
                    let candidate = format!("z{}", subscript(next_number));
                    next_number += 1;
                    if !taken.contains(&candidate) {
                        break (candidate, false);
                    }
                },
            },
            RawKind::Variable => match &node.value.kind {
                ExprKind::Var(v) => (v.clone(), false),
                _ => (render::unicode(&node.value), false),
            },
            RawKind::Constant => match let_name {
                Some(name) => (name, true),
                None => (render::unicode(&node.value), false),
            },
        };
        names.push(named);
    }

    let reference = |new: usize| -> Rc<Expr> {
        let node = &raw[order[new]];
        match node.kind {
            RawKind::Constant => node.value.clone(),
            _ => build::var(&names[new].0, node.value.shape.clone()),
        }
    };
    let mut nodes = Vec::with_capacity(order.len());
    for (new, &old) in order.iter().enumerate() {
        let node = &raw[old];
        let children: Vec<usize> = node.children.iter().map(|&c| position[c]).collect();
        let definition = match node.kind {
            RawKind::Operation => {
                let refs: Vec<Rc<Expr>> = children.iter().map(|&c| reference(c)).collect();
                with_children(&node.value, &refs)
            }
            _ => (*node.value).clone(),
        };
        let role = match node.kind {
            RawKind::Operation if old == root => Role::Output,
            RawKind::Operation => Role::Intermediate,
            RawKind::Variable => Role::Variable,
            RawKind::Constant if old == root => Role::Output,
            RawKind::Constant => Role::Constant,
        };
        let (name, named_by_let) = names[new].clone();
        nodes.push(Node {
            name,
            role,
            named_by_let,
            children,
            definition,
            value: (*node.value).clone(),
        });
    }
    Ok(nodes)
}

// ---------------------------------------------------------------------------------------
// The backward pass.

/// A deliberate slip in one local rule: at operation `node`, for the operand in position
/// `operand`, use the slip numbered `slip` from [`slips`] instead of the true rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlipAt {
    pub node: usize,
    pub operand: usize,
    pub slip: usize,
}

/// The expression standing for node `i` in adjoints: its name, or a constant's value.
fn reference(nodes: &[Node], i: usize) -> Rc<Expr> {
    let node = &nodes[i];
    match node.role {
        Role::Constant => Rc::new(node.value.clone()),
        Role::Output
            if node.children.is_empty() && !matches!(node.value.kind, ExprKind::Var(_)) =>
        {
            Rc::new(node.value.clone())
        }
        _ => build::var(&node.name, node.value.shape.clone()),
    }
}

/// The adjoint symbol `∂L/∂zᵢ` used in templates.
pub(crate) fn adjoint_symbol(output: &str, name: &str, shape: &Shape) -> Rc<Expr> {
    build::var(&format!("∂{output}/∂{name}"), shape.clone())
}

/// Runs the backward pass over `nodes`, optionally with one slipped rule.
pub(crate) fn backward(nodes: &[Node], slip: Option<SlipAt>) -> Result<Vec<Step>, Error> {
    let output = nodes.first().map(|n| n.name.clone()).unwrap_or_default();
    let transposes: HashMap<Symbol, Rc<Expr>> = nodes
        .iter()
        .filter(|n| n.is_operation())
        .filter_map(|n| match &n.definition.kind {
            ExprKind::Transpose(inner) => Some((n.name.clone(), inner.clone())),
            _ => None,
        })
        .collect();
    let names: HashMap<Symbol, Rc<Expr>> = nodes
        .iter()
        .filter(|n| n.is_operation())
        .map(|n| (n.name.clone(), Rc::new(n.value.clone())))
        .collect();
    let mut contributions: Vec<Vec<Contribution>> = vec![Vec::new(); nodes.len()];
    let mut steps = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let has_step = i == 0 || node.is_operation() || node.role == Role::Variable;
        if !has_step {
            continue;
        }
        let shares = std::mem::take(&mut contributions[i]);
        let (adjoint, rule) = if i == 0 {
            (build::int(1), rules::seed(&output))
        } else if shares.is_empty() {
            (zero(node.shape()), rules::absent(&node.name))
        } else {
            let total = shares
                .iter()
                .map(|c| Rc::new(c.value.clone()))
                .reduce(tidy::sum)
                .unwrap_or_else(|| zero(node.shape()));
            let rule = if shares.len() == 1 {
                shares[0].rule.clone()
            } else {
                rules::paths(&node.name, shares.len())
            };
            (total, rule)
        };
        let expanded = tidy::tidy(&substitute(&adjoint, &names), &HashMap::new());
        if node.is_operation() {
            let me = reference(nodes, i);
            let args: Vec<Rc<Expr>> = node.children.iter().map(|&c| reference(nodes, c)).collect();
            let symbol = adjoint_symbol(&output, &node.name, node.shape());
            for (position, &child) in node.children.iter().enumerate() {
                if nodes[child].role == Role::Constant {
                    continue;
                }
                let local = local_rule(&node.definition, position, &adjoint, &me, &args)?;
                let (rule, share) = match slip {
                    Some(s) if s.node == i && s.operand == position => {
                        let options = slips(&node.definition, position, &adjoint, &me, &args);
                        match options.into_iter().nth(s.slip) {
                            Some((words, share)) => (
                                Rule {
                                    latex: format!("\\text{{{}}}", render::latex_text(&words)),
                                    words,
                                },
                                share,
                            ),
                            None => (local.0, local.1),
                        }
                    }
                    _ => (local.0, local.1),
                };
                let template = local_rule(&node.definition, position, &symbol, &me, &args)?.1;
                contributions[child].push(Contribution {
                    from: i,
                    rule,
                    template: (*tidy::tidy(&template, &transposes)).clone(),
                    value: (*tidy::tidy(&share, &transposes)).clone(),
                });
            }
        }
        steps.push(Step {
            node: i,
            contributions: shares,
            rule,
            adjoint: (*adjoint).clone(),
            expanded: (*expanded).clone(),
        });
    }
    Ok(steps)
}

/// An explicit zero of the given shape (a `Num(0)` carrying the shape, as `diff` does).
pub(crate) fn zero(shape: &Shape) -> Rc<Expr> {
    Rc::new(Expr::typed(ExprKind::Num(Rational::zero()), shape.clone()))
}

fn rational(n: i64) -> Rational {
    Rational::from_integer(BigInt::from(n))
}

/// Sums a share over broadcast entries when the operand is a scalar and the result is not.
fn unbroadcast(share: Rc<Expr>, operand: &Expr, result: &Shape) -> Rc<Expr> {
    if operand.shape.is_scalar() && !result.is_scalar() {
        build::sum(share)
    } else {
        share
    }
}

/// `tr(gᵀb)`, the inner product of two equally shaped values, in its simplest spelling.
fn inner(g: &Rc<Expr>, b: &Rc<Expr>) -> Rc<Expr> {
    if b.shape.is_scalar() {
        build::mul(g.clone(), b.clone())
    } else if b.shape.cols.is_one() {
        build::mul(build::transpose(g.clone()), b.clone())
    } else {
        build::trace(build::mul(build::transpose(g.clone()), b.clone()))
    }
}

/// The derivative f′(a) of an elementwise function, `None` when it is zero (step).
fn elementwise_derivative(f: Func, a: &Rc<Expr>) -> Option<Rc<Expr>> {
    let sigma = || build::func(Func::Sigma, a.clone());
    let one_minus = |e: Rc<Expr>| build::sub(build::int(1), e);
    Some(match f {
        Func::Sigma => build::hadamard(sigma(), one_minus(sigma())),
        Func::Exp => build::func(Func::Exp, a.clone()),
        Func::Log => build::elem_div(build::int(1), a.clone()),
        Func::Tanh => {
            let t = build::func(Func::Tanh, a.clone());
            one_minus(build::hadamard(t.clone(), t))
        }
        Func::Swish => build::add(
            sigma(),
            build::hadamard(build::hadamard(a.clone(), sigma()), one_minus(sigma())),
        ),
        Func::Relu => build::func(Func::Step, a.clone()),
        Func::Softplus => sigma(),
        Func::Sqrt => build::elem_div(
            build::int(1),
            build::mul(build::int(2), build::func(Func::Sqrt, a.clone())),
        ),
        Func::Step | Func::Sign => return None,
        Func::Sin => build::func(Func::Cos, a.clone()),
        Func::Cos => build::neg(build::func(Func::Sin, a.clone())),
        Func::Tan => {
            let t = build::func(Func::Tan, a.clone());
            build::add(build::int(1), build::hadamard(t.clone(), t))
        }
        Func::Arcsin | Func::Arccos => {
            let root = build::func(Func::Sqrt, one_minus(build::hadamard(a.clone(), a.clone())));
            let numerator = if f == Func::Arccos {
                build::int(-1)
            } else {
                build::int(1)
            };
            build::elem_div(numerator, root)
        }
        Func::Arctan => build::elem_div(
            build::int(1),
            build::add(build::int(1), build::hadamard(a.clone(), a.clone())),
        ),
        Func::Sinh => build::func(Func::Cosh, a.clone()),
        Func::Cosh => build::func(Func::Sinh, a.clone()),
        Func::Abs => build::func(Func::Sign, a.clone()),
    })
}

/// The share of operand `position` of the operation `definition` (written over the
/// references `args`, the node itself being `me`), given the node's adjoint `g`.
fn local_rule(
    definition: &Expr,
    position: usize,
    g: &Rc<Expr>,
    me: &Rc<Expr>,
    args: &[Rc<Expr>],
) -> Result<(Rule, Rc<Expr>), Error> {
    use ExprKind::*;
    let arg = |i: usize| args.get(i).cloned().unwrap_or_else(|| build::int(0));
    let a = arg(0);
    let b = arg(1);
    let result = &definition.shape;
    let operand = if position == 0 { &a } else { &b };
    let broadcast_note = |rule: Rule, share: Rc<Expr>| {
        if operand.shape.is_scalar() && !result.is_scalar() {
            (rules::broadcast(rule), unbroadcast(share, operand, result))
        } else {
            (rule, share)
        }
    };
    let res = match (&definition.kind, position) {
        (Neg(_), _) => (rules::negation(), build::neg(g.clone())),
        (Add(..), _) => broadcast_note(rules::sum(), g.clone()),
        (Sub(..), 0) => broadcast_note(rules::difference_first(), g.clone()),
        (Sub(..), _) => broadcast_note(rules::difference_second(), build::neg(g.clone())),
        (Mul(..), _) if a.shape.is_scalar() || b.shape.is_scalar() => {
            let (factor, scaled) = if a.shape.is_scalar() {
                (&a, &b)
            } else {
                (&b, &a)
            };
            let factor_position = if a.shape.is_scalar() { 0 } else { 1 };
            if position == factor_position {
                (rules::scale_factor(), inner(g, scaled))
            } else {
                (
                    rules::scale_operand(),
                    build::mul(factor.clone(), g.clone()),
                )
            }
        }
        (Mul(..), 0) => (
            rules::product_left(),
            build::mul(g.clone(), build::transpose(b.clone())),
        ),
        (Mul(..), _) => (
            rules::product_right(),
            build::mul(build::transpose(a.clone()), g.clone()),
        ),
        (Div(..), 0) if b.shape.is_scalar() => (
            rules::quotient_numerator(),
            build::div(g.clone(), b.clone()),
        ),
        (Div(..), _) if b.shape.is_scalar() => (
            rules::quotient_denominator(),
            build::neg(build::div(inner(g, &a), build::pow(b.clone(), 2))),
        ),
        (Div(..) | ElemDiv(..), 0) if b.shape.is_scalar() => broadcast_note(
            rules::quotient_numerator(),
            build::div(g.clone(), b.clone()),
        ),
        (Div(..) | ElemDiv(..), _) if b.shape.is_scalar() => broadcast_note(
            rules::quotient_denominator(),
            build::neg(build::div(inner(g, &a), build::pow(b.clone(), 2))),
        ),
        (Div(..) | ElemDiv(..), 0) => broadcast_note(
            rules::elementwise_quotient_numerator(),
            build::elem_div(g.clone(), b.clone()),
        ),
        (Div(..) | ElemDiv(..), _) => broadcast_note(
            rules::elementwise_quotient_denominator(),
            build::neg(build::elem_div(
                build::hadamard(g.clone(), a.clone()),
                build::hadamard(b.clone(), b.clone()),
            )),
        ),
        (Norm(_, crate::expr::NormKind::Two), _) => (
            rules::norm(),
            build::mul(build::div(g.clone(), me.clone()), a.clone()),
        ),
        (Norm(_, crate::expr::NormKind::One), _) => (
            rules::norm_one(),
            build::mul(g.clone(), build::func(crate::expr::Func::Sign, a.clone())),
        ),
        (ElemPow(_, q), _) => {
            let lowered = q - crate::expr::Rational::from_integer(1.into());
            let power = if lowered.is_zero() {
                build::int(1)
            } else {
                build::elem_pow(a.clone(), lowered)
            };
            (
                rules::elementwise_power(),
                build::mul(
                    build::constant(q.clone()),
                    build::hadamard(g.clone(), power),
                ),
            )
        }
        (PowSym(_, k, offset), _) => {
            let lowered = build::pow_sym(a.clone(), k, offset - 1);
            let symbol = build::var(k, crate::expr::Shape::scalar());
            let coefficient = match *offset {
                0 => symbol,
                o => build::add(symbol, build::int(o)),
            };
            // For a matrix the k terms of the power rule agree only when the adjoint
            // commutes with every matrix, as the I of a trace does.
            let commutes = match &g.kind {
                Identity => true,
                Mul(s, i) => s.shape.is_scalar() && matches!(i.kind, Identity),
                _ => false,
            };
            if !a.shape.is_scalar() && !commutes {
                return Err(unsupported(format!(
                    "backpropagating through a matrix power with the symbolic exponent {k} \
                     outside a trace"
                )));
            }
            let share = if a.shape.is_scalar() {
                build::mul(build::mul(coefficient, lowered), g.clone())
            } else {
                build::mul(
                    coefficient,
                    build::mul(build::transpose(lowered), g.clone()),
                )
            };
            (rules::symbolic_power(), share)
        }
        (Softmax(_), _) => (
            rules::softmax(),
            build::sub(
                build::hadamard(me.clone(), g.clone()),
                build::mul(
                    me.clone(),
                    build::mul(build::transpose(me.clone()), g.clone()),
                ),
            ),
        ),
        (LogSumExp(_), _) => (
            rules::logsumexp(),
            build::mul(g.clone(), build::softmax(a.clone())),
        ),
        (Hadamard(..), _) => {
            let other = if position == 0 { &b } else { &a };
            broadcast_note(rules::hadamard(), build::hadamard(g.clone(), other.clone()))
        }
        (Transpose(_), _) => (rules::transpose(), build::transpose(g.clone())),
        (Inverse(_), _) => {
            let ct = build::transpose(me.clone());
            (
                rules::inverse(),
                build::neg(build::mul(build::mul(ct.clone(), g.clone()), ct)),
            )
        }
        (Pow(_, k), _) => (rules::power(), power_share(g, &a, *k)),
        (Trace(_), _) => (
            rules::trace(),
            build::mul(g.clone(), build::identity(a.shape.rows.clone())),
        ),
        (Det(_), _) => (
            rules::determinant(),
            build::mul(
                build::mul(g.clone(), me.clone()),
                build::transpose(build::inverse(a.clone())),
            ),
        ),
        (LogDet(_), _) => (
            rules::log_determinant(),
            build::mul(g.clone(), build::transpose(build::inverse(a.clone()))),
        ),
        (NormSq(_), _) => (
            rules::norm_sq(),
            build::mul(build::mul(build::int(2), g.clone()), a.clone()),
        ),
        (Diag(_), _) => (rules::diag(), build::diag(g.clone())),
        (Sum(_), _) => {
            let ones = if a.shape.cols.is_one() {
                build::ones(a.shape.rows.clone())
            } else {
                build::mul(
                    build::ones(a.shape.rows.clone()),
                    build::transpose(build::ones(a.shape.cols.clone())),
                )
            };
            (rules::sum_entries(), build::mul(g.clone(), ones))
        }
        (Func(f, _), _) => match elementwise_derivative(*f, &a) {
            Some(derivative) => (
                rules::elementwise(*f),
                build::hadamard(g.clone(), derivative),
            ),
            None => (rules::elementwise(*f), zero(&a.shape)),
        },
        (Apply(name, _), _) => (
            rules::opaque(name),
            build::mul(g.clone(), build::grad(name, a.clone())),
        ),
        (Grad(name, _), _) => {
            return Err(unsupported(format!(
                "backpropagating through the gradient ∇{name} of an opaque function"
            )))
        }
        (Kron(..), 0) => (
            rules::kron_left(),
            crate::diff::kron_adjoint_left(&a, &b, g),
        ),
        (Kron(..), _) => (
            rules::kron_right(),
            crate::diff::kron_adjoint_right(&a, &b, g),
        ),
        (Vectorize(_), _) => (rules::vectorize(), crate::diff::unvec(g, &a.shape)),
        (Differential(_), _) => return Err(unsupported("backpropagating through a differential")),
        (Num(_) | Var(_) | Identity | Ones | Size(_) | Commutation(..), _) => {
            return Err(unsupported("an operation without operands"))
        }
        // Shape inference resolves every notation before an explanation is built.
        (Written(..), _) => return Err(unsupported("a notation shape inference left unresolved")),
    };
    Ok(res)
}

/// The share of `A` in `C = Aᵏ`: Σⱼ (Aᵀ)ʲ Ḡ (Aᵀ)ᵏ⁻¹⁻ʲ for k ≥ 1, through `A⁻¹` for k < 0.
fn power_share(g: &Rc<Expr>, a: &Rc<Expr>, k: i64) -> Rc<Expr> {
    if k == 0 {
        return zero(&a.shape);
    }
    if a.shape.is_scalar() {
        let factor = if k == 1 {
            build::int(1)
        } else {
            build::pow(a.clone(), k - 1)
        };
        return build::mul(build::mul(build::constant(rational(k)), factor), g.clone());
    }
    let positive_power_share = |g: &Rc<Expr>, base: &Rc<Expr>, k: i64| -> Rc<Expr> {
        let bt = build::transpose(base.clone());
        let power = |j: i64| -> Option<Rc<Expr>> {
            match j {
                0 => None,
                1 => Some(bt.clone()),
                _ => Some(build::pow(bt.clone(), j)),
            }
        };
        (0..k)
            .map(|j| {
                let mut term = g.clone();
                if let Some(left) = power(j) {
                    term = build::mul(left, term);
                }
                if let Some(right) = power(k - 1 - j) {
                    term = build::mul(term, right);
                }
                term
            })
            .reduce(build::add)
            .unwrap_or_else(|| zero(&base.shape))
    };
    if k > 0 {
        positive_power_share(g, a, k)
    } else {
        let inverse = build::inverse(a.clone());
        let through_inverse = positive_power_share(g, &inverse, -k);
        let it = build::transpose(inverse);
        build::neg(build::mul(build::mul(it.clone(), through_inverse), it))
    }
}

/// Common slips in the local rule for operand `position`: each a description and the share
/// the slipped rule would pass down. Used to explain a wrong final claim.
pub(crate) fn slips(
    definition: &Expr,
    position: usize,
    g: &Rc<Expr>,
    me: &Rc<Expr>,
    args: &[Rc<Expr>],
) -> Vec<(String, Rc<Expr>)> {
    use ExprKind::*;
    let arg = |i: usize| args.get(i).cloned().unwrap_or_else(|| build::int(0));
    let a = arg(0);
    let b = arg(1);
    let mut res: Vec<(String, Rc<Expr>)> = vec![(
        "this path left out (its adjoint share dropped)".to_string(),
        zero(&arg(position).shape),
    )];
    let both_matrices = !a.shape.is_scalar() && !b.shape.is_scalar();
    match (&definition.kind, position) {
        (Sub(..), 1) => res.push((
            "difference: the sign of the second term's adjoint not flipped".to_string(),
            g.clone(),
        )),
        (Neg(_), _) => res.push(("negation: the sign not flipped".to_string(), g.clone())),
        (Mul(..), 0) if both_matrices => {
            let bt = build::transpose(b.clone());
            res.push((
                "product C = AB: ∂L/∂A taken as Bᵀ(∂L/∂C) (factors in the wrong order)".into(),
                build::mul(bt, g.clone()),
            ));
            res.push((
                "product C = AB: ∂L/∂A taken as (∂L/∂C)B (transpose forgotten)".into(),
                build::mul(g.clone(), b.clone()),
            ));
        }
        (Mul(..), _) if both_matrices => {
            let at = build::transpose(a.clone());
            res.push((
                "product C = AB: ∂L/∂B taken as (∂L/∂C)Aᵀ (factors in the wrong order)".into(),
                build::mul(g.clone(), at),
            ));
            res.push((
                "product C = AB: ∂L/∂B taken as A(∂L/∂C) (transpose forgotten)".into(),
                build::mul(a.clone(), g.clone()),
            ));
        }
        (Transpose(_), _) => res.push((
            "transpose: the adjoint passed down without transposing it".into(),
            g.clone(),
        )),
        (Inverse(_), _) => {
            let ct = build::transpose(me.clone());
            res.push((
                "inverse C = A⁻¹: ∂L/∂A taken as −(Cᵀ)²(∂L/∂C), both factors on one side".into(),
                build::neg(build::mul(build::mul(ct.clone(), ct.clone()), g.clone())),
            ));
            res.push((
                "inverse C = A⁻¹: ∂L/∂A taken as −(∂L/∂C)(Cᵀ)², both factors on one side".into(),
                build::neg(build::mul(build::mul(g.clone(), ct.clone()), ct.clone())),
            ));
            res.push((
                "inverse C = A⁻¹: ∂L/∂A taken as −C(∂L/∂C)C (transposes forgotten)".into(),
                build::neg(build::mul(build::mul(me.clone(), g.clone()), me.clone())),
            ));
            res.push((
                "inverse C = A⁻¹: the minus sign forgotten".into(),
                build::mul(build::mul(ct.clone(), g.clone()), ct),
            ));
        }
        (NormSq(_), _) => res.push((
            "squared norm: the factor 2 forgotten".into(),
            build::mul(g.clone(), a.clone()),
        )),
        (LogDet(_), _) => res.push((
            "log-determinant: A⁻¹ used instead of A⁻ᵀ".into(),
            build::mul(g.clone(), build::inverse(a.clone())),
        )),
        (Func(f, _), _) => {
            let sigma = || build::func(crate::expr::Func::Sigma, a.clone());
            let one_minus = |e: Rc<Expr>| build::sub(build::int(1), e);
            match f {
                crate::expr::Func::Swish => {
                    res.push((
                        "swish′(a) taken as σ(a) + a ⊙ (1 − σ(a)) (a factor σ(a) dropped)".into(),
                        build::hadamard(
                            g.clone(),
                            build::add(sigma(), build::hadamard(a.clone(), one_minus(sigma()))),
                        ),
                    ));
                    res.push((
                        "swish′(a) taken as a ⊙ σ(a), the function itself".into(),
                        build::hadamard(g.clone(), build::hadamard(a.clone(), sigma())),
                    ));
                    res.push((
                        "swish′(a) taken as σ(a) (the product rule's second term dropped)".into(),
                        build::hadamard(g.clone(), sigma()),
                    ));
                }
                crate::expr::Func::Sigma => res.push((
                    "σ′(a) taken as σ(a)".into(),
                    build::hadamard(g.clone(), sigma()),
                )),
                crate::expr::Func::Tanh => res.push((
                    "tanh′(a) taken as 1 − tanh(a)".into(),
                    build::hadamard(
                        g.clone(),
                        one_minus(build::func(crate::expr::Func::Tanh, a.clone())),
                    ),
                )),
                _ => {}
            }
            res.push((
                format!("elementwise {}: the factor f′ forgotten", f.name()),
                g.clone(),
            ));
        }
        _ => {}
    }
    res
}
