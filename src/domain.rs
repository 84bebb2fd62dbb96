//! Where an expression is undefined for every value the check draws: the function whose
//! argument leaves its domain (`log(−‖x‖²)`, `sqrt(−xᵀx − 1)`), with its source span and
//! a hint, for the inconclusive check to point at (SPEC §7 says it is inconclusive, exit
//! 1; the user sees which part of the input made it so).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::diag::Diagnostic;
use crate::expr::{Expr, ExprKind, Span};
use crate::numeric::{draw_instance, evaluate, EvalError};
use crate::shape::Typed;

/// How many instances must all put the same node outside its domain.
const DRAWS: u64 = 8;

/// Past this many nodes the search (a quadratic walk) is not worth its time.
const MAX_NODES: usize = 2_000;

/// The node of `typed` that is undefined on each of a few random instances (drawn as the
/// check draws them) while its operands are defined: the function or operation whose
/// domain the input leaves, pointed at in the source with a hint. `None` when some
/// instance is defined everywhere, when different nodes fail on different instances, or
/// when the failing node has no source span.
pub fn undefined_everywhere(typed: &Typed, seed: u64) -> Option<Diagnostic> {
    if typed.expr.size() > MAX_NODES {
        return None;
    }
    let mut found: Option<(Span, String, String)> = None;
    for draw in 0..DRAWS {
        let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(draw));
        let instance = draw_instance(typed, &mut rng);
        let (node, reason) = first_undefined(&typed.expr, &instance)?;
        let span = node.span?;
        match &found {
            Some((first, _, _)) if *first != span => return None,
            Some(_) => {}
            None => found = Some((span, reason, describe(node))),
        }
    }
    let (span, reason, what) = found?;
    Some(
        Diagnostic::new(format!(
            "every draw is outside the domain of {what} ({reason})"
        ))
        .at(span, "")
        .hint(hint(&what)),
    )
}

/// The first node, children before parents, whose evaluation is undefined although its
/// children's are not; with the evaluator's reason.
fn first_undefined<'a>(
    expr: &'a Expr,
    instance: &crate::numeric::Instance,
) -> Option<(&'a Expr, String)> {
    for child in expr.children() {
        if let Some(found) = first_undefined(child.as_ref(), instance) {
            return Some(found);
        }
    }
    match evaluate(expr, instance) {
        Err(EvalError::Undefined(reason)) => Some((expr, reason)),
        _ => None,
    }
}

/// What the node is, as the message names it.
fn describe(node: &Expr) -> String {
    match &node.kind {
        ExprKind::Func(function, _) => format!("`{}`", function.name()),
        ExprKind::LogDet(_) => "the log-determinant".to_string(),
        ExprKind::Inverse(_) => "the inverse".to_string(),
        ExprKind::Div(..) | ExprKind::ElemDiv(..) => "the quotient".to_string(),
        ExprKind::Pow(..) | ExprKind::ElemPow(..) | ExprKind::PowSym(..) => "the power".to_string(),
        _ => "the expression".to_string(),
    }
}

fn hint(what: &str) -> String {
    format!(
        "on each of the check's random draws the argument of {what} was outside its \
         domain: is a sign wrong, or does a variable need a declaration (`spd`, `scalar`)?"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn located(text: &str) -> Option<String> {
        let parsed = crate::parse::parse(text).unwrap();
        let typed = crate::shape::infer(&parsed, &crate::expr::Decls::new()).unwrap();
        undefined_everywhere(&typed, 7).map(|d| d.render(text))
    }

    #[test]
    fn domain_points_at_the_function_left_on_every_draw() {
        let log = located("log(−‖x‖²)").expect("log of a negative number");
        assert!(
            log.contains("every draw is outside the domain of `log`"),
            "{log}"
        );
        assert!(log.contains("^^^^^^^^^^"), "{log}");
        let sqrt = located("sqrt(−xᵀx − 1) + xᵀx").expect("sqrt of a negative number");
        assert!(sqrt.contains("`sqrt`"), "{sqrt}");
        assert!(
            sqrt.contains("1 | sqrt(−xᵀx − 1) + xᵀx\n  | ^^^^^^^^^^^^^^"),
            "{sqrt}"
        );
        // Defined for some draws (log of a vector of either sign) or everywhere: nothing.
        assert_eq!(located("sum(log(x ⊙ x))"), None);
        assert_eq!(located("xᵀx"), None);
    }
}
