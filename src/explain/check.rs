//! Numeric checks of an explanation's steps, and locating the first wrong step of a
//! claimed derivation.
//!
//! # Checking one adjoint
//!
//! The adjoint of node zᵢ is compared with finite differences of L with respect to zᵢ
//! treated as an input: every occurrence of zᵢ in L is replaced by a fresh variable v of
//! zᵢ's shape; a random instance of the inputs is drawn ([`numeric::draw_instance`]), v is
//! set to zᵢ's value there, and central differences of L in each entry of v
//! ([`numeric::finite_difference_gradient`]) are compared with the adjoint evaluated at
//! the same inputs. Trials, redraws and the error measure are numeric's
//! ([`numeric::check_on_random_instances`]).
//!
//! # Locating the first wrong step
//!
//! * With claimed intermediate adjoints ([`Claim::Steps`]), each claim is checked as above
//!   in backward order, and the first one that disagrees is reported together with the
//!   operations that produced it from their own adjoints: when those were claimed
//!   correctly, the slip is in that operation's local rule.
//! * With only a claimed final gradient ([`Claim::Gradient`]), the claim is checked
//!   against finite differences; if it is wrong, the backward pass is re-run with one
//!   local rule at a time replaced by a known slip (a path left out, factors in the wrong
//!   order, a transpose or a sign forgotten, the derivative of the inverse taken as
//!   −(Cᵀ)²Ḡ, swish′ missing a factor, …), operations in backward order. The first slip
//!   whose final gradient agrees numerically with the claim is reported: a hypothesis
//!   that explains the claim, not a proof that it is the one made. When no single slip
//!   reproduces the claim, the diagnosis says so.

use std::collections::HashMap;
use std::rc::Rc;

use super::render::unicode;
use super::{backward, replace_subtree, slips, substitute, Error, Explanation, Rule, SlipAt};
use crate::expr::{build, Decls, Expr, ExprKind, Symbol};
use crate::numeric::{self, CheckConfig, Comparison, Verdict};
use crate::shape::Typed;

/// The numeric check of one step of the backward pass.
#[derive(Clone, Debug)]
pub struct StepCheck {
    /// The node, an index into [`Explanation::nodes`].
    pub node: usize,
    /// Its name.
    pub name: Symbol,
    /// How its adjoint compared with finite differences.
    pub verdict: Verdict,
}

fn typed_loss(explanation: &Explanation) -> Typed {
    Typed {
        expr: explanation.loss.clone(),
        vars: explanation.vars.clone(),
        fns: explanation.fns.clone(),
    }
}

/// A variable name that no input uses, standing for node `name`.
fn fresh_name(explanation: &Explanation, name: &str) -> Symbol {
    let mut candidate = format!("⟨{name}⟩");
    while explanation.vars.contains_key(&candidate) {
        candidate.push('′');
    }
    candidate
}

/// Checks a claimed adjoint of node `index` (an expression over the inputs only) against
/// finite differences of L with respect to that node treated as an input.
pub fn check_adjoint(
    explanation: &Explanation,
    index: usize,
    claimed: &Expr,
    config: &CheckConfig,
) -> Verdict {
    let Some(node) = explanation.nodes.get(index) else {
        return Verdict::Inconclusive {
            reason: format!("there is no node {index}"),
        };
    };
    let typed = typed_loss(explanation);
    let fresh = fresh_name(explanation, &node.name);
    let fresh_var = build::var(&fresh, node.shape().clone());
    let perturbed = replace_subtree(&Rc::new(explanation.loss.clone()), &node.value, &fresh_var);
    numeric::check_on_random_instances(
        config,
        &format!("the adjoint of {}", node.name),
        &format!("finite differences of the loss in {}", node.name),
        |rng| numeric::draw_instance(&typed, rng),
        |instance| {
            // The loss itself is evaluated so that a point outside its domain is redrawn.
            numeric::evaluate(&explanation.loss, instance)?;
            let base = numeric::evaluate(&node.value, instance)?;
            let claimed = numeric::evaluate(claimed, instance)?;
            instance.values.insert(fresh.clone(), base);
            let expected = numeric::finite_difference_gradient(
                &perturbed,
                &fresh,
                instance,
                config.tolerance,
            )?;
            // A counterexample shows the inputs only, not the stand-in for the node.
            instance.values.remove(&fresh);
            Ok(Comparison { claimed, expected })
        },
    )
}

/// Checks every step of the backward pass (its expanded adjoint) against finite
/// differences, in backward order.
pub fn check_adjoints(explanation: &Explanation, config: &CheckConfig) -> Vec<StepCheck> {
    explanation
        .steps
        .iter()
        .map(|step| StepCheck {
            node: step.node,
            name: explanation
                .nodes
                .get(step.node)
                .map(|n| n.name.clone())
                .unwrap_or_default(),
            verdict: check_adjoint(explanation, step.node, &step.expanded, config),
        })
        .collect()
}

/// A claimed derivation to check step by step.
#[derive(Clone, Debug)]
pub enum Claim {
    /// Claimed adjoints ∂L/∂name, in any order; `name` is a node name (`z₃`, a `let` name,
    /// `L`) or a variable. Each expression may use the inputs and node names, and need not
    /// be shape-checked (it is typed against the node it claims).
    Steps(Vec<(Symbol, Expr)>),
    /// Only a claimed final gradient ∂L/∂`wrt`.
    Gradient {
        /// The variable.
        wrt: Symbol,
        /// The claimed gradient (over the inputs and node names, untyped is fine).
        gradient: Expr,
    },
}

/// Where a claimed derivation first goes wrong.
#[derive(Clone, Debug)]
pub enum Diagnosis {
    /// Every claimed step agrees with finite differences.
    Agrees {
        /// The nodes whose claimed adjoints were checked, in backward order.
        checked: Vec<usize>,
    },
    /// The claimed adjoint of `node` is the first, in backward order, that disagrees with
    /// finite differences of L in that node.
    WrongStep {
        /// The node whose claimed adjoint is wrong.
        node: usize,
        /// The operations that pass their adjoint down to `node`: when their claimed
        /// adjoints agree (or were not claimed), the slip is in one of their local rules.
        produced_by: Vec<usize>,
        /// The claimed nodes before it that agreed.
        agreed: Vec<usize>,
        /// The failed comparison.
        verdict: Verdict,
    },
    /// A final claim is wrong, and one slipped local rule reproduces it exactly.
    Slip {
        /// The operation whose rule slipped.
        node: usize,
        /// The operand the slipped rule passes its adjoint to.
        operand: usize,
        /// The slip in words.
        slip: String,
        /// The correct rule.
        rule: Rule,
        /// The failed comparison of the claim with finite differences.
        verdict: Verdict,
    },
    /// A final claim is wrong, and no single known slip reproduces it.
    Unlocated {
        /// The failed comparison of the claim with finite differences.
        verdict: Verdict,
    },
    /// A comparison could not be made.
    Inconclusive {
        /// Why.
        reason: String,
    },
}

impl Diagnosis {
    /// The diagnosis as a person reads it, saying exactly what was compared.
    pub fn describe(&self, explanation: &Explanation) -> String {
        let name = |i: usize| {
            explanation
                .nodes
                .get(i)
                .map(|n| n.name.clone())
                .unwrap_or_default()
        };
        let output = name(0);
        let definition = |i: usize| {
            explanation
                .nodes
                .get(i)
                .map(|n| {
                    if n.is_operation() {
                        format!("{} = {}", n.name, unicode(&n.definition))
                    } else {
                        n.name.clone()
                    }
                })
                .unwrap_or_default()
        };
        match self {
            Diagnosis::Agrees { checked } => {
                let names: Vec<String> = checked.iter().map(|&i| format!("∂{output}/∂{}", name(i))).collect();
                format!(
                    "every claimed step agrees with finite differences of {output}: {}",
                    names.join(", ")
                )
            }
            Diagnosis::WrongStep {
                node,
                produced_by,
                agreed,
                verdict,
            } => {
                let mut out = format!(
                    "first wrong step: the claimed ∂{output}/∂{} differs from finite differences of {output} in {} (node {})",
                    name(*node),
                    name(*node),
                    definition(*node)
                );
                if !agreed.is_empty() {
                    let names: Vec<String> =
                        agreed.iter().map(|&i| format!("∂{output}/∂{}", name(i))).collect();
                    out.push_str(&format!("\nthe steps before it agree: {}", names.join(", ")));
                }
                for &p in produced_by {
                    let rule = explanation
                        .step_of(*node)
                        .and_then(|s| s.contributions.iter().find(|c| c.from == p))
                        .map(|c| c.rule.words.clone())
                        .unwrap_or_default();
                    out.push_str(&format!(
                        "\nit comes from {} by the rule {rule}",
                        definition(p)
                    ));
                }
                out.push('\n');
                out.push_str(&verdict.describe());
                out
            }
            Diagnosis::Slip {
                node,
                operand,
                slip,
                rule,
                verdict,
            } => format!(
                "the claim differs from finite differences; it is exactly what the backward pass gives when the step at {} passing the adjoint to {} uses {slip}\nthe correct rule: {}\n{}",
                definition(*node),
                name(*operand),
                rule.words,
                verdict.describe()
            ),
            Diagnosis::Unlocated { verdict } => format!(
                "the claim differs from finite differences, and no single slipped rule reproduces it; claim intermediate steps to locate the error\n{}",
                verdict.describe()
            ),
            Diagnosis::Inconclusive { reason } => format!("inconclusive: {reason}"),
        }
    }
}

/// Writes a claimed expression over the inputs: node names expanded, then shape-checked
/// against the node it claims (so `I` in `−½I` takes the node's size).
fn type_claim(
    explanation: &Explanation,
    index: usize,
    claim_name: &str,
    claim: &Expr,
) -> Result<Expr, Error> {
    let names: HashMap<Symbol, Rc<Expr>> = explanation
        .nodes
        .iter()
        .filter(|n| n.is_operation())
        .map(|n| (n.name.clone(), Rc::new(n.value.clone())))
        .collect();
    let expanded = substitute(&Rc::new(claim.clone()), &names);
    let target = Rc::new(explanation.nodes[index].value.clone());
    let joint = Expr::new(ExprKind::Add(expanded, target));
    let decls = Decls {
        vars: explanation.vars.clone(),
        fns: explanation.fns.clone(),
        sizes: Default::default(),
    };
    let output = explanation
        .nodes
        .first()
        .map(|n| n.name.clone())
        .unwrap_or_default();
    let typed = crate::shape::infer(&joint, &decls).map_err(|e| Error::Shape {
        what: format!("the claim for ∂{output}/∂{claim_name}"),
        message: e.to_string(),
    })?;
    match &typed.expr.kind {
        ExprKind::Add(left, _) => Ok((**left).clone()),
        _ => Err(Error::Shape {
            what: format!("the claim for ∂{output}/∂{claim_name}"),
            message: "unexpected shape of the typed claim".into(),
        }),
    }
}

fn lookup(explanation: &Explanation, name: &str) -> Result<usize, Error> {
    explanation
        .node_named(name)
        .ok_or_else(|| Error::UnknownNode {
            name: name.to_string(),
            known: explanation
                .nodes
                .iter()
                .filter(|n| n.is_operation() || n.role == super::Role::Variable)
                .map(|n| n.name.clone())
                .collect(),
        })
}

/// Finds the first step of a claimed derivation that is wrong (see the module docs for
/// the method, which the [`Diagnosis`] reports).
pub fn first_wrong_step(
    explanation: &Explanation,
    claim: &Claim,
    config: &CheckConfig,
) -> Result<Diagnosis, Error> {
    match claim {
        Claim::Steps(steps) => {
            let mut claims: Vec<(usize, usize, Expr)> = Vec::new();
            for (name, expr) in steps {
                let index = lookup(explanation, name)?;
                let typed = type_claim(explanation, index, name, expr)?;
                let order = explanation
                    .steps
                    .iter()
                    .position(|s| s.node == index)
                    .unwrap_or(usize::MAX);
                claims.push((order, index, typed));
            }
            claims.sort_by_key(|(order, _, _)| *order);
            let mut agreed = Vec::new();
            for (_, index, claimed) in claims {
                match check_adjoint(explanation, index, &claimed, config) {
                    Verdict::Pass { .. } => agreed.push(index),
                    Verdict::Inconclusive { reason } => {
                        return Ok(Diagnosis::Inconclusive {
                            reason: format!(
                                "the claim for {}: {reason}",
                                explanation.nodes[index].name
                            ),
                        })
                    }
                    verdict @ (Verdict::Fail(_) | Verdict::Unreadable { .. }) => {
                        let produced_by = explanation
                            .step_of(index)
                            .map(|s| s.contributions.iter().map(|c| c.from).collect())
                            .unwrap_or_default();
                        return Ok(Diagnosis::WrongStep {
                            node: index,
                            produced_by,
                            agreed,
                            verdict,
                        });
                    }
                }
            }
            Ok(Diagnosis::Agrees { checked: agreed })
        }
        Claim::Gradient { wrt, gradient } => {
            let index = explanation
                .nodes
                .iter()
                .position(|n| n.role == super::Role::Variable && n.name == *wrt)
                .ok_or_else(|| Error::UnknownVariable {
                    name: wrt.clone(),
                    known: explanation
                        .nodes
                        .iter()
                        .filter(|n| n.role == super::Role::Variable)
                        .map(|n| n.name.clone())
                        .collect(),
                })?;
            let claimed = type_claim(explanation, index, wrt, gradient)?;
            let verdict = match check_adjoint(explanation, index, &claimed, config) {
                Verdict::Pass { .. } => {
                    return Ok(Diagnosis::Agrees {
                        checked: vec![index],
                    })
                }
                Verdict::Inconclusive { reason } => return Ok(Diagnosis::Inconclusive { reason }),
                fail => fail,
            };
            let typed = typed_loss(explanation);
            let output = explanation
                .nodes
                .first()
                .map(|n| n.name.clone())
                .unwrap_or_default();
            for (i, node) in explanation.nodes.iter().enumerate() {
                if !node.is_operation() {
                    continue;
                }
                let me = super::reference(&explanation.nodes, i);
                let args: Vec<Rc<Expr>> = node
                    .children
                    .iter()
                    .map(|&c| super::reference(&explanation.nodes, c))
                    .collect();
                let symbol = super::adjoint_symbol(&output, &node.name, node.shape());
                for (position, &child) in node.children.iter().enumerate() {
                    if explanation.nodes[child].role == super::Role::Constant {
                        continue;
                    }
                    let options = slips(&node.definition, position, &symbol, &me, &args);
                    for (slip_index, (words, _)) in options.iter().enumerate() {
                        let slip = SlipAt {
                            node: i,
                            operand: position,
                            slip: slip_index,
                        };
                        let Ok(steps) = backward(&explanation.nodes, Some(slip)) else {
                            continue;
                        };
                        let Some(slipped) = steps.iter().find(|s| s.node == index) else {
                            continue;
                        };
                        let same =
                            numeric::check_equal(&typed, &claimed, &slipped.expanded, config);
                        if same.is_pass() {
                            let rule = explanation
                                .step_of(child)
                                .and_then(|s| s.contributions.iter().find(|c| c.from == i))
                                .map(|c| c.rule.clone())
                                .unwrap_or_else(|| Rule {
                                    words: String::new(),
                                    latex: String::new(),
                                });
                            return Ok(Diagnosis::Slip {
                                node: i,
                                operand: child,
                                slip: words.clone(),
                                rule,
                                verdict,
                            });
                        }
                    }
                }
            }
            Ok(Diagnosis::Unlocated { verdict })
        }
    }
}
