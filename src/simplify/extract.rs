//! Extraction that names as it goes: the cheapest node of every e-class under a cost
//! function, kept up to date when a class gets a `where` or `let` name.
//!
//! Naming a class makes it as cheap as a variable, which changes the best choice of
//! every class above it. Rebuilding egg's `Extractor` after each name costs a pass over
//! the whole e-graph per name (most of the time on a many-layer network); here a name
//! only re-prices the classes above the named one.

use std::collections::{HashMap, HashSet, VecDeque};

use egg::{CostFunction, Id, Language, RecExpr};

use super::analysis::EGraph;
use super::lang::Mat;

/// The best node of every e-class, with names as extra leaves.
pub struct Choices<'a, CF: CostFunction<Mat>> {
    egraph: &'a EGraph,
    cost_fn: CF,
    /// The cheapest cost and node per class, indexed by class id.
    best: Vec<Option<(CF::Cost, Mat)>>,
    /// Name leaves added to classes (not to the e-graph, which stays untouched).
    names: HashMap<Id, Mat>,
}

impl<'a, CF: CostFunction<Mat>> Choices<'a, CF> {
    /// The cheapest choices in `egraph`: the same fixpoint, in the same order, as
    /// `egg::Extractor`, so ties break the same way.
    pub fn new(egraph: &'a EGraph, cost_fn: CF) -> Choices<'a, CF> {
        let ids = egraph
            .classes()
            .map(|class| usize::from(class.id) + 1)
            .max()
            .unwrap_or(0);
        let mut choices = Choices {
            egraph,
            cost_fn,
            best: vec![None; ids],
            names: HashMap::new(),
        };
        let mut changed = true;
        while changed {
            changed = false;
            for class in egraph.classes() {
                if choices.reprice(class.id) {
                    changed = true;
                }
            }
        }
        choices
    }

    /// The chosen node of `class`, if it has a finite cost.
    pub fn best_node(&self, class: Id) -> Option<&Mat> {
        let class = usize::from(self.egraph.find(class));
        self.best.get(class)?.as_ref().map(|(_, node)| node)
    }

    /// Gives `class` the leaf `name` (a `Mat::Symbol`) and re-prices what lies above it.
    pub fn name(&mut self, class: Id, name: Mat) {
        let class = self.egraph.find(class);
        self.names.insert(class, name);
        if !self.reprice(class) {
            return;
        }
        // Breadth first, each class queued once at a time: costs only fall, so this
        // settles; the cap guards against a cost function that is not monotone.
        let mut budget = 16 * self.egraph.number_of_classes() + 16;
        let mut queued: HashSet<Id> = HashSet::new();
        let mut queue: VecDeque<Id> = VecDeque::new();
        let egraph = self.egraph;
        let enqueue_parents = |of: Id, queue: &mut VecDeque<Id>, queued: &mut HashSet<Id>| {
            for parent in egraph[of].parents() {
                let parent = egraph.find(parent);
                if queued.insert(parent) {
                    queue.push_back(parent);
                }
            }
        };
        enqueue_parents(class, &mut queue, &mut queued);
        while let Some(next) = queue.pop_front() {
            queued.remove(&next);
            if budget == 0 {
                return;
            }
            budget -= 1;
            if self.reprice(next) {
                enqueue_parents(next, &mut queue, &mut queued);
            }
        }
    }

    /// The chosen term of `class` as a `RecExpr` (names as leaves), if every class on
    /// the way has a choice.
    pub fn rec(&self, class: Id) -> Option<RecExpr<Mat>> {
        let mut rec = RecExpr::default();
        let mut memo: HashMap<Id, Id> = HashMap::new();
        // An explicit stack: chosen terms of hostile inputs can be deep.
        let mut stack = vec![(self.egraph.find(class), false)];
        while let Some((id, children_done)) = stack.pop() {
            if memo.contains_key(&id) {
                continue;
            }
            let node = self.best_node(id)?;
            if children_done {
                let mut missing = false;
                let node = node.clone().map_children(|child| {
                    memo.get(&self.egraph.find(child))
                        .copied()
                        .unwrap_or_else(|| {
                            missing = true;
                            child
                        })
                });
                if missing {
                    // Chosen nodes form no cycle with positive costs; should they, give up.
                    return None;
                }
                memo.insert(id, rec.add(node));
            } else {
                stack.push((id, true));
                for child in node.children() {
                    let child = self.egraph.find(*child);
                    if !memo.contains_key(&child) {
                        stack.push((child, false));
                    }
                }
            }
        }
        memo.get(&self.egraph.find(class))?;
        Some(rec)
    }

    /// Recomputes the best node of `class`; true if its cost fell (or it had none).
    fn reprice(&mut self, class: Id) -> bool {
        let mut candidate: Option<(CF::Cost, Mat)> = None;
        let egraph = self.egraph;
        let name = self.names.get(&class).cloned();
        for node in egraph[class].iter().chain(name.as_ref()) {
            let Some(cost) = self.node_cost(node) else {
                continue;
            };
            // The first of equally cheap nodes wins, as in egg.
            if candidate.as_ref().is_none_or(|(best, _)| cost < *best) {
                candidate = Some((cost, node.clone()));
            }
        }
        let Some((cost, node)) = candidate else {
            return false;
        };
        let Some(slot) = self.best.get_mut(usize::from(class)) else {
            return false;
        };
        // Only a strictly lower cost replaces a choice, as in egg.
        let lower = slot.as_ref().is_none_or(|(old, _)| cost < *old);
        if lower {
            *slot = Some((cost, node));
        }
        lower
    }

    fn node_cost(&mut self, node: &Mat) -> Option<CF::Cost> {
        let egraph = self.egraph;
        let best = &self.best;
        let cost_of = |child: Id| {
            best.get(usize::from(egraph.find(child)))
                .and_then(|slot| slot.as_ref())
                .map(|(cost, _)| cost)
        };
        if node
            .children()
            .iter()
            .any(|child| cost_of(*child).is_none())
        {
            return None;
        }
        Some(self.cost_fn.cost(node, |child| match cost_of(child) {
            Some(cost) => cost.clone(),
            None => unreachable!("every child was checked to have a cost"),
        }))
    }
}
