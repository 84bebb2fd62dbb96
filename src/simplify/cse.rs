//! `where` definitions: common subexpressions of an extracted result get names.
//!
//! Extraction gives each e-class one chosen node, so the chosen terms form a DAG of
//! e-classes (an [`Arena`]); a subexpression is repeated when its class occurs more than
//! once in the tree that DAG unfolds to. The largest repeated, non-trivial class is named
//! first, then occurrences are counted again with named classes cut off, until nothing
//! non-trivial repeats. `let` names are folded back before this, by the caller, as
//! leaves in the e-graph.

use std::collections::{BTreeSet, HashMap};

use egg::{CostFunction, Id, Language, RecExpr};

use super::analysis::EGraph;
use super::extract::Choices;
use super::lang::Mat;
use crate::expr::{Expr, Shape, Symbol};

/// One chosen node: its e-class, the node, and its children as arena indices.
#[derive(Clone, Debug)]
pub struct TreeNode {
    /// The e-class the node was chosen for.
    pub class: Id,
    /// The chosen node (children are e-class ids; see `children`).
    pub enode: Mat,
    /// The chosen children, as indices into the arena.
    pub children: Vec<usize>,
}

/// Chosen nodes of one or more extractions; children always come before parents.
#[derive(Clone, Debug, Default)]
pub struct Arena {
    /// The nodes.
    pub nodes: Vec<TreeNode>,
}

impl Arena {
    /// Adds the term `choices` makes for `class` (sharing within this one call) and
    /// returns its index.
    pub fn extract<CF: CostFunction<Mat>>(
        &mut self,
        egraph: &EGraph,
        choices: &mut Choices<'_, CF>,
        class: Id,
    ) -> usize {
        choices.settle(class);
        let mut memo: HashMap<Id, usize> = HashMap::new();
        // An explicit stack: chosen terms of hostile inputs can be deep.
        let mut stack: Vec<(Id, bool)> = vec![(egraph.find(class), false)];
        while let Some((id, children_done)) = stack.pop() {
            if memo.contains_key(&id) {
                continue;
            }
            let Some(enode) = choices.best_node(id).cloned() else {
                continue;
            };
            if children_done {
                let children = enode
                    .children()
                    .iter()
                    .map(|c| memo.get(&egraph.find(*c)).copied().unwrap_or(usize::MAX))
                    .collect::<Vec<_>>();
                if children.contains(&usize::MAX) {
                    // A cycle among chosen nodes cannot happen with positive costs;
                    // should it, the child is cut (the caller falls back to the input).
                    continue;
                }
                memo.insert(id, self.nodes.len());
                self.nodes.push(TreeNode {
                    class: id,
                    enode,
                    children,
                });
            } else {
                stack.push((id, true));
                for child in enode.children() {
                    let child = egraph.find(*child);
                    if !memo.contains_key(&child) {
                        stack.push((child, false));
                    }
                }
            }
        }
        memo.get(&egraph.find(class)).copied().unwrap_or(0)
    }

    /// Adds `rec` to `egraph` node by node, recording each node with its e-class, and
    /// returns the arena index of its root.
    pub fn add_rec(&mut self, egraph: &mut EGraph, rec: &RecExpr<Mat>) -> usize {
        let mut indices: Vec<usize> = Vec::with_capacity(rec.as_ref().len());
        for node in rec.as_ref() {
            let children: Vec<usize> = node
                .children()
                .iter()
                .map(|c| indices[usize::from(*c)])
                .collect();
            let mut enode = node.clone();
            for (slot, child) in enode.children_mut().iter_mut().zip(&children) {
                *slot = self.nodes[*child].class;
            }
            let class = egraph.add(enode.clone());
            indices.push(self.nodes.len());
            self.nodes.push(TreeNode {
                class,
                enode,
                children,
            });
        }
        indices.last().copied().unwrap_or(0)
    }

    /// Writes the body of each class in `inline` (class → arena index of its body)
    /// wherever the class occurs as its name, a leaf extracted after the name existed.
    /// The class's other nodes stay: they are already written out, and sending them to
    /// the body too would close a loop when two inlined bodies hold each other's class,
    /// one as a name, the other as nodes (a loop `to_rec` would follow until memory runs
    /// out). Names form no such loop: each body was extracted before its own name.
    pub fn inline(&mut self, inline: &HashMap<Id, usize>) {
        let redirect: Vec<usize> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(index, node)| match inline.get(&node.class) {
                Some(&body) if body != index && node.children.is_empty() => body,
                _ => index,
            })
            .collect();
        for node in &mut self.nodes {
            for child in &mut node.children {
                *child = redirect[*child];
            }
        }
    }

    /// Number of nodes of the tree below `index` (sizes not counted), saturating.
    pub fn tree_sizes(&self) -> Vec<u64> {
        let mut sizes = vec![0u64; self.nodes.len()];
        for (index, node) in self.nodes.iter().enumerate() {
            let own = u64::from(!matches!(node.enode, Mat::Dim(_)));
            sizes[index] = node.children.iter().fold(own, |sum, c| {
                sum.saturating_add(sizes.get(*c).copied().unwrap_or(0))
            });
        }
        sizes
    }

    /// Converts the tree below `index` to a [`RecExpr`], writing `names[class]` for a
    /// named class for which `cut` holds, except at the top when `top_is_body` (a
    /// definition's own body); a named class where `cut` fails is written out.
    pub fn to_rec(
        &self,
        index: usize,
        names: &HashMap<Id, egg::Symbol>,
        top_is_body: bool,
        cut: impl Fn(Id) -> bool,
    ) -> RecExpr<Mat> {
        let mut rec = RecExpr::default();
        let mut memo: HashMap<usize, Id> = HashMap::new();
        let mut visiting: BTreeSet<usize> = BTreeSet::new();
        let mut stack: Vec<(usize, bool)> = vec![(index, false)];
        while let Some((at, children_done)) = stack.pop() {
            if memo.contains_key(&at) {
                continue;
            }
            if !children_done && !visiting.insert(at) {
                // A node below itself: no tree to write. The empty expression makes the
                // caller fall back to the input instead of growing the stack forever.
                return RecExpr::default();
            }
            let node = &self.nodes[at];
            let named = if at == index && top_is_body || !cut(node.class) {
                None
            } else {
                names.get(&node.class)
            };
            if let Some(name) = named {
                memo.insert(at, rec.add(Mat::Symbol(*name)));
                continue;
            }
            if children_done {
                let mut enode = node.enode.clone();
                for (slot, child) in enode.children_mut().iter_mut().zip(&node.children) {
                    *slot = memo.get(child).copied().unwrap_or(Id::from(0));
                }
                memo.insert(at, rec.add(enode));
            } else {
                stack.push((at, true));
                for child in &node.children {
                    stack.push((*child, false));
                }
            }
        }
        rec
    }
}

/// Fresh `where` names: `z, u, v, w, z₁, z₂, …` for vectors, `Z, U, V, M, Z₁, …` for
/// matrices, `ζ, η, θ, ξ, ζ₁, …` for scalars, each skipping the names taken and those
/// given before.
pub struct FreshNames {
    taken: BTreeSet<String>,
    /// The next subscript to try per kind (scalar, vector, matrix): counting the names
    /// taken with a letter on each call made naming thousands of classes quadratic.
    next_subscript: [u64; 3],
}

impl FreshNames {
    /// Names avoiding `taken` (the variables, lets and sizes of the expression).
    pub fn new(taken: BTreeSet<String>) -> FreshNames {
        FreshNames {
            taken,
            next_subscript: [1; 3],
        }
    }

    /// A new name for a value of `shape`, taken from now on.
    pub fn fresh(&mut self, shape: &Shape) -> String {
        let (kind, letters): (usize, [&str; 4]) = if shape.is_scalar() {
            (0, ["ζ", "η", "θ", "ξ"])
        } else if shape.cols.is_one() {
            (1, ["z", "u", "v", "w"])
        } else {
            (2, ["Z", "U", "V", "M"])
        };
        let name = match letters.iter().find(|letter| !self.taken.contains(**letter)) {
            Some(letter) => letter.to_string(),
            None => {
                let next = &mut self.next_subscript[kind];
                loop {
                    let name = format!("{}{}", letters[0], subscript(*next));
                    *next += 1;
                    if !self.taken.contains(&name) {
                        break name;
                    }
                }
            }
        };
        self.taken.insert(name.clone());
        name
    }
}

fn subscript(k: u64) -> String {
    const DIGITS: [char; 10] = ['₀', '₁', '₂', '₃', '₄', '₅', '₆', '₇', '₈', '₉'];
    k.to_string()
        .chars()
        .map(|d| DIGITS[d.to_digit(10).unwrap_or(0) as usize])
        .collect()
}

/// Whether a class's chosen term is too small to deserve a name: a leaf, or one
/// operator applied to a leaf (`xᵀ`, `−x`, `K⁻¹`, `σ(z)`).
pub fn trivial(size: u64) -> bool {
    size <= 2
}

/// Most names one call introduces. Each name costs a pass over the arena; a network of
/// L layers needs about 3L names for an output linear in L.
const MAX_NAMES: usize = 1_000;

/// Picks the `where` names: `tops` are the arena indices of the displayed results and of
/// the definitions already named (`defined`, class → arena index of its body), whose
/// classes are cut off wherever they occur below a top. Returns the new definitions,
/// `(class, arena index of the first occurrence)`, largest first. Each name costs a pass
/// over the arena; past `deadline` (the simplification's time limit) every class that
/// still repeats is named in one last pass.
pub fn name_repeats(
    arena: &Arena,
    roots: &[usize],
    defined: &HashMap<Id, usize>,
    deadline: &crate::limits::Deadline,
) -> Vec<(Id, usize)> {
    let sizes = arena.tree_sizes();
    let count = arena.nodes.len();
    // Per-class tables indexed by class id: the arena's classes are canonical ids of one
    // e-graph, so they are dense enough, and this loop runs once per name.
    let classes = arena
        .nodes
        .iter()
        .map(|node| usize::from(node.class) + 1)
        .chain(defined.keys().map(|class| usize::from(*class) + 1))
        .max()
        .unwrap_or(0);
    let mut named = vec![false; classes];
    let mut body_top = vec![false; count];
    for (class, index) in defined {
        named[usize::from(*class)] = true;
        if let Some(slot) = body_top.get_mut(*index) {
            *slot = true;
        }
    }
    let mut incoming = vec![0u64; count];
    let mut uses_of_class = vec![0u64; classes];
    let mut first_of_class = vec![usize::MAX; classes];
    let mut res = vec![];
    while res.len() < MAX_NAMES {
        // Uses of each node in the unfolded trees, parents before children (reverse
        // arena order). A named class passes on only its own body's uses: everywhere
        // else it is a leaf.
        incoming.fill(0);
        uses_of_class.fill(0);
        first_of_class.fill(usize::MAX);
        for &root in roots {
            if let Some(slot) = incoming.get_mut(root) {
                *slot = slot.saturating_add(1);
            }
        }
        for index in (0..count).rev() {
            let uses = incoming[index];
            let node = &arena.nodes[index];
            let class = usize::from(node.class);
            if uses > 0 {
                uses_of_class[class] = uses_of_class[class].saturating_add(uses);
                if first_of_class[class] == usize::MAX {
                    first_of_class[class] = index;
                }
            }
            let passed = if named[class] {
                u64::from(body_top[index])
            } else {
                uses
            };
            if passed == 0 {
                continue;
            }
            for child in &node.children {
                incoming[*child] = incoming[*child].saturating_add(passed);
            }
        }
        let best = (0..classes)
            .filter(|class| {
                let first = first_of_class[*class];
                uses_of_class[*class] >= 2 && !named[*class] && !trivial(sizes[first])
            })
            .max_by_key(|class| (sizes[first_of_class[*class]], std::cmp::Reverse(*class)));
        let Some(class) = best else {
            break;
        };
        if deadline.passed() {
            // Out of time for one pass per name: every class that still repeats is named
            // at once, so that what is printed stays as large as the DAG, never as the
            // tree it unfolds to.
            for class in 0..classes {
                let first = first_of_class[class];
                if uses_of_class[class] >= 2 && !named[class] && !trivial(sizes[first]) {
                    named[class] = true;
                    res.push((Id::from(class), first));
                }
            }
            break;
        }
        let first = first_of_class[class];
        named[class] = true;
        body_top[first] = true;
        res.push((Id::from(class), first));
    }
    res
}

/// How often each defined class is used in the displayed results and in the bodies
/// of the definitions they reach (each body counted once).
pub fn count_uses(
    arena: &Arena,
    roots: &[usize],
    definitions: &HashMap<Id, usize>,
) -> HashMap<Id, u64> {
    let (reached, _) = dependency_order(arena, roots, definitions);
    let mut incoming = vec![0u64; arena.nodes.len()];
    let mut body_tops = vec![false; arena.nodes.len()];
    for &root in roots {
        incoming[root] = incoming[root].saturating_add(1);
    }
    for class in &reached {
        if let Some(&body) = definitions.get(class) {
            body_tops[body] = true;
        }
    }
    let mut res: HashMap<Id, u64> = HashMap::new();
    for index in (0..arena.nodes.len()).rev() {
        let node = &arena.nodes[index];
        let uses = incoming[index];
        let passed = if definitions.contains_key(&node.class) {
            if uses > 0 {
                let count = res.entry(node.class).or_insert(0);
                *count = count.saturating_add(uses);
            }
            u64::from(body_tops[index])
        } else {
            uses
        };
        if passed == 0 {
            continue;
        }
        for child in &node.children {
            incoming[*child] = incoming[*child].saturating_add(passed);
        }
    }
    res
}

/// Pairs `(definition, name)` where the definition's body writes the name's class out
/// instead of using the name, because using it would close a cycle of `where` lines.
pub type Uncut = BTreeSet<(Id, Id)>;

/// Orders definitions so that each comes after the ones its body uses, visiting from
/// the `roots` (definitions no root reaches, directly or not, are dropped).
///
/// Bodies are extracted at different times, so the body of an early name can contain
/// the class of a later one whose body uses the early name (`Z = diag(z)`, `z = Z𝟙`).
/// Such a use closes a cycle of the depth-first search: one edge of the cycle is
/// recorded in the returned [`Uncut`] set and the search starts again, so the order
/// returned is acyclic by construction: every body uses only names before it. The edge
/// is one whose use can be written out: where a body holds the name itself as a leaf
/// (extracted after the name existed, `ζ = 2⟨3⟩`), writing it out would print the
/// placeholder, so the cycle is cut where the body holds the used class's own nodes.
/// No cycle with such an edge: the order is empty (the caller falls back).
pub fn dependency_order(
    arena: &Arena,
    roots: &[usize],
    definitions: &HashMap<Id, usize>,
) -> (Vec<Id>, Uncut) {
    let mut uncut = Uncut::new();
    loop {
        match try_order(arena, roots, definitions, &uncut) {
            Ok(order) => return (order, uncut),
            Err(edge) => {
                // Each round uncuts one more pair, of finitely many.
                if !uncut.insert(edge) {
                    return (vec![], uncut);
                }
            }
        }
    }
}

/// The named classes that the tree at `top` uses, cutting at named classes except
/// where `(owner, class)` is uncut.
fn uses(
    arena: &Arena,
    top: usize,
    owner: Option<Id>,
    definitions: &HashMap<Id, usize>,
    uncut: &Uncut,
) -> Vec<Id> {
    let mut found = vec![];
    let mut seen = BTreeSet::new();
    let mut stack = vec![top];
    while let Some(at) = stack.pop() {
        if !seen.insert(at) {
            continue;
        }
        let node = &arena.nodes[at];
        let cut = owner.is_none_or(|owner| !uncut.contains(&(owner, node.class)));
        if at != top && definitions.contains_key(&node.class) && cut {
            if !found.contains(&node.class) {
                found.push(node.class);
            }
            continue;
        }
        stack.extend(node.children.iter().rev().copied());
    }
    found
}

/// Whether the body of `owner` at `top` can write out its uses of `used` (with the pair
/// uncut): every occurrence reached, through the written-out ones, has nodes of its own,
/// none is a name leaf.
fn writable(
    arena: &Arena,
    top: usize,
    owner: Id,
    used: Id,
    definitions: &HashMap<Id, usize>,
    uncut: &Uncut,
) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![top];
    while let Some(at) = stack.pop() {
        if !seen.insert(at) {
            continue;
        }
        let node = &arena.nodes[at];
        if at != top && node.class == used {
            if node.children.is_empty() {
                return false;
            }
        } else if at != top
            && definitions.contains_key(&node.class)
            && !uncut.contains(&(owner, node.class))
        {
            continue;
        }
        stack.extend(node.children.iter().copied());
    }
    true
}

/// A depth-first order of the definitions the roots reach, or the first edge
/// `(definition, used)` that closes a cycle.
fn try_order(
    arena: &Arena,
    roots: &[usize],
    definitions: &HashMap<Id, usize>,
    uncut: &Uncut,
) -> Result<Vec<Id>, (Id, Id)> {
    struct Search<'a> {
        arena: &'a Arena,
        definitions: &'a HashMap<Id, usize>,
        uncut: &'a Uncut,
        // false while a class's uses are being visited, true once it is ordered.
        state: HashMap<Id, bool>,
        // The classes being visited, outermost first.
        path: Vec<Id>,
        order: Vec<Id>,
    }
    impl Search<'_> {
        fn visit(&mut self, class: Id) -> Result<(), (Id, Id)> {
            if self.state.contains_key(&class) {
                return Ok(());
            }
            self.state.insert(class, false);
            self.path.push(class);
            if let Some(&top) = self.definitions.get(&class) {
                for used in uses(self.arena, top, Some(class), self.definitions, self.uncut) {
                    if self.state.get(&used) == Some(&false) {
                        return Err(self.edge_to_cut(used));
                    }
                    self.visit(used)?;
                }
            }
            self.path.pop();
            self.state.insert(class, true);
            self.order.push(class);
            Ok(())
        }

        /// The edge to uncut in the cycle the path closes back to `start`: the closing
        /// edge if its use can be written out, else the first that can (else the
        /// closing edge, which the caller then meets again and gives up on).
        fn edge_to_cut(&self, start: Id) -> (Id, Id) {
            let from = self.path.iter().rposition(|c| *c == start).unwrap_or(0);
            let cycle = &self.path[from..];
            let closing = (cycle[cycle.len() - 1], start);
            let edges = std::iter::once(closing).chain(cycle.windows(2).map(|w| (w[0], w[1])));
            edges
                .clone()
                .find(|(owner, used)| {
                    self.definitions.get(owner).is_some_and(|&top| {
                        writable(self.arena, top, *owner, *used, self.definitions, self.uncut)
                    })
                })
                .unwrap_or(closing)
        }
    }
    let mut search = Search {
        arena,
        definitions,
        uncut,
        state: HashMap::new(),
        path: vec![],
        order: vec![],
    };
    for &root in roots {
        let root_class = arena.nodes[root].class;
        if definitions.contains_key(&root_class) {
            search.visit(root_class)?;
            continue;
        }
        for used in uses(arena, root, None, definitions, uncut) {
            search.visit(used)?;
        }
    }
    Ok(search.order)
}

/// Whether every body of `wheres` uses only the names defined before it (so the lines
/// read top to bottom and none refers to itself or to a later one).
pub fn defined_in_order(wheres: &[(Symbol, Expr)]) -> bool {
    let names: BTreeSet<&str> = wheres.iter().map(|(name, _)| name.as_str()).collect();
    let mut defined: BTreeSet<&str> = BTreeSet::new();
    for (name, body) in wheres {
        let later = body
            .free_vars()
            .into_iter()
            .any(|used| names.contains(used.as_str()) && !defined.contains(used.as_str()));
        if later {
            return false;
        }
        defined.insert(name.as_str());
    }
    true
}

/// Whether `results` and the bodies of `wheres` mention only the variables `known` and
/// the names `wheres` defines: a placeholder for a name that was then dropped (`⟨3⟩`)
/// must never reach a printed text.
pub fn names_defined<'a>(
    results: impl IntoIterator<Item = &'a Expr>,
    wheres: &'a [(Symbol, Expr)],
    known: &std::collections::BTreeMap<Symbol, crate::expr::VarDecl>,
) -> bool {
    // A set, not a scan of the lines per name: a long product has a thousand of each.
    let where_names: std::collections::HashSet<&Symbol> =
        wheres.iter().map(|(name, _)| name).collect();
    let defined = |name: &Symbol| known.contains_key(name) || where_names.contains(name);
    results
        .into_iter()
        .chain(wheres.iter().map(|(_, body)| body))
        .all(|expr| expr.free_vars().iter().all(defined))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(class: usize, enode: Mat, children: Vec<usize>) -> TreeNode {
        TreeNode {
            class: Id::from(class),
            enode,
            children,
        }
    }

    /// X = exp(Y) extracted before any name, Y = log(⟨X⟩) after X was named: the
    /// e-graph's cycle X = exp(log X). Inlining both writes Y as log(exp(sin x)), never
    /// a loop, never the placeholder.
    #[test]
    fn inlining_bodies_that_hold_each_other_ends() {
        let leaf = |name: &str| Mat::Symbol(egg::Symbol::from(name));
        let at = |class: usize| Id::from(class);
        let mut arena = Arena {
            nodes: vec![
                node(10, leaf("x"), vec![]),
                node(21, Mat::Sin(at(10)), vec![0]),
                node(20, Mat::Exp(at(21)), vec![1]),
                node(20, leaf("⟨0⟩"), vec![]),
                node(21, Mat::Log(at(20)), vec![3]),
            ],
        };
        arena.inline(&HashMap::from([(at(20), 2), (at(21), 4)]));
        let rec = arena.to_rec(4, &HashMap::new(), true, |_| true);
        assert_eq!(rec.to_string(), "(ew-log (ew-exp (ew-sin x)))");
    }

    /// The same cycle with both names kept: the order cuts it where Y's body holds X's
    /// own nodes, not where X's body would have to write out the leaf ⟨X⟩.
    #[test]
    fn cycles_are_cut_where_the_use_can_be_written_out() {
        let leaf = |name: &str| Mat::Symbol(egg::Symbol::from(name));
        let at = |class: usize| Id::from(class);
        let arena = Arena {
            nodes: vec![
                node(10, leaf("x"), vec![]),
                node(21, Mat::Sin(at(10)), vec![0]),
                node(20, Mat::Exp(at(21)), vec![1]),
                node(20, leaf("⟨0⟩"), vec![]),
                node(21, Mat::Log(at(20)), vec![3]),
                node(22, Mat::Add([at(20), at(21)]), vec![3, 4]),
            ],
        };
        let definitions = HashMap::from([(at(20), 2), (at(21), 4)]);
        for roots in [vec![5], vec![4], vec![2]] {
            let (order, uncut) = dependency_order(&arena, &roots, &definitions);
            assert!(!order.is_empty(), "{roots:?}");
            for (owner, used) in &uncut {
                assert!(
                    writable(
                        &arena,
                        definitions[owner],
                        *owner,
                        *used,
                        &definitions,
                        &uncut
                    ),
                    "{roots:?}: uncut {owner:?} → {used:?}"
                );
            }
        }
    }
}
