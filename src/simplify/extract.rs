//! Extraction that names as it goes: the cheapest term of an e-class under a cost
//! function, where classes given a `where` or `let` name are leaves.
//!
//! Naming a class makes it as cheap as a variable, which changes the best choice of
//! every class above it. Rebuilding egg's `Extractor` after each name costs a pass over
//! the whole e-graph per name, quadratic on a many-layer network. Here costs are
//! computed on demand, for the classes below the one extracted, and a named class is
//! not looked into: after the first extraction, each settles only a small part.

use std::collections::HashMap;

use egg::{CostFunction, Id, Language, RecExpr};

use super::analysis::EGraph;
use super::lang::Mat;

/// Best nodes of e-classes, with names as leaves.
pub struct Choices<'a, CF: CostFunction<Mat>> {
    egraph: &'a EGraph,
    cost_fn: CF,
    /// The cheapest cost and node per class id, valid for the classes last settled.
    best: Vec<Option<(CF::Cost, Mat)>>,
    /// Name leaves of named classes (not added to the e-graph, which stays untouched).
    names: HashMap<Id, Mat>,
    /// Bumped by every name: costs settled before it may be stale.
    epoch: u32,
    /// Per class, `epoch + 1` of its last settling (0: never settled).
    settled_in: Vec<u32>,
    /// Per class, the number of the settling that last visited it.
    visited_by: Vec<u32>,
    settlings: u32,
}

impl<'a, CF: CostFunction<Mat>> Choices<'a, CF> {
    /// Choices in `egraph` under `cost_fn`, none named yet.
    pub fn new(egraph: &'a EGraph, cost_fn: CF) -> Choices<'a, CF> {
        let ids = egraph
            .classes()
            .map(|class| usize::from(class.id) + 1)
            .max()
            .unwrap_or(0);
        Choices {
            egraph,
            cost_fn,
            best: vec![None; ids],
            names: HashMap::new(),
            epoch: 0,
            settled_in: vec![0; ids],
            visited_by: vec![0; ids],
            settlings: 0,
        }
    }

    /// Makes `class` a leaf named by `name` (a `Mat::Symbol`) in later extractions.
    pub fn name(&mut self, class: Id, name: Mat) {
        self.names.insert(self.egraph.find(class), name);
        self.epoch += 1;
    }

    /// The cost of `class`'s chosen term, valid for the classes below the last one
    /// settled.
    pub fn cost(&self, class: Id) -> Option<&CF::Cost> {
        let class = usize::from(self.egraph.find(class));
        self.best.get(class)?.as_ref().map(|(cost, _)| cost)
    }

    /// The chosen node of `class`, valid for the classes below the last one settled.
    pub fn best_node(&self, class: Id) -> Option<&Mat> {
        let class = usize::from(self.egraph.find(class));
        self.best.get(class)?.as_ref().map(|(_, node)| node)
    }

    /// Computes the best node of `top` and of every class below it, down to named
    /// classes, whose costs depend only on the classes below them. Classes are priced
    /// children first (depth-first post-order), so an acyclic part settles in one pass
    /// and each class picks the first of its cheapest nodes given its children's final
    /// costs; cycles take further passes.
    pub fn settle(&mut self, top: Id) {
        let egraph = self.egraph;
        let top = egraph.find(top);
        let current = self.epoch + 1;
        self.settlings += 1;
        let mut below: Vec<Id> = vec![];
        // (class, children pushed): a class is listed once all of its children are.
        let mut stack = vec![(top, false)];
        while let Some((class, children_pushed)) = stack.pop() {
            let index = usize::from(class);
            if children_pushed {
                below.push(class);
                continue;
            }
            // Classes settled since the last name keep their (final) costs.
            let (Some(settled), Some(visited)) =
                (self.settled_in.get(index), self.visited_by.get(index))
            else {
                continue;
            };
            if *settled == current || *visited == self.settlings {
                continue;
            }
            self.visited_by[index] = self.settlings;
            self.best[index] = None;
            stack.push((class, true));
            if self.names.contains_key(&class) {
                continue;
            }
            for node in egraph[class].iter() {
                stack.extend(
                    node.children()
                        .iter()
                        .map(|child| (egraph.find(*child), false)),
                );
            }
        }
        let mut changed = true;
        while changed {
            changed = false;
            for class in &below {
                if self.reprice(*class) {
                    changed = true;
                }
            }
        }
        for class in &below {
            self.settled_in[usize::from(*class)] = current;
        }
    }

    /// The chosen term of `class` as a `RecExpr` (names as leaves), if every class on
    /// the way has a choice.
    pub fn rec(&mut self, class: Id) -> Option<RecExpr<Mat>> {
        self.settle(class);
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
        let egraph = self.egraph;
        let mut candidate: Option<(CF::Cost, Mat)> = None;
        let named = self.names.get(&class).cloned();
        // A named class is its name; the others choose among their nodes.
        let nodes = match &named {
            Some(leaf) => std::slice::from_ref(leaf),
            None => egraph[class].nodes.as_slice(),
        };
        for node in nodes {
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
