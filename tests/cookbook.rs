//! Matrix Cookbook identities (ANCHORS.md (d), 15 Nov 2012 numbering) as a data table.
//!
//! For every row: our derivative passes the finite-difference check, the Cookbook's
//! closed form fed as a claim passes too, and the two are equal on random instances.
//! Differentials write `dX` as the placeholder `V` (declared like X), replaced by the
//! differential node before checking.
//!
//! Symmetric variables (rows 55–57) use matcalc's convention, the symmetric gradient
//! sym(G) = ½(G + Gᵀ), which differs from the Cookbook's 2G − G∘I: for tr(AX) with X
//! symmetric we give ½(A + Aᵀ) where the Cookbook prints A + Aᵀ − A∘I. Both give the same
//! df = tr(G dX) only under their own inner products; see SPEC §4.

use std::rc::Rc;

use matcalc::diff::{derivative, Derivative, DerivativeKind};
use matcalc::expr::build;
use matcalc::numeric::{check_derivative, check_equal, CheckConfig, Verdict};
use matcalc::parse::{parse_decls, parse_with, ParseOptions};
use matcalc::shape::{infer, Typed};
use matcalc::{Decls, Expr, ExprKind};

#[path = "common/cookbook_table.rs"]
mod cookbook_table;
use cookbook_table::{row, Identity, IDENTITIES, SQUARE};

fn config() -> CheckConfig {
    CheckConfig::standard()
}

/// The identity's expression, typed, and a typed closed form with `V` replaced by dX.
fn prepare(identity: &Identity) -> (Typed, Expr) {
    let decls = parse_decls(identity.decls)
        .unwrap_or_else(|e| panic!("{}: declarations: {e}", identity.name));
    let options = ParseOptions::from_decls(&decls);
    let expr = parse_with(identity.expr, &options)
        .unwrap_or_else(|e| panic!("{}: parse: {e}", identity.name));
    let typed = infer(&expr, &decls).unwrap_or_else(|e| panic!("{}: shapes: {e}", identity.name));
    let all = Decls {
        vars: typed.vars.clone(),
        fns: typed.fns.clone(),
        sizes: Default::default(),
    };
    let closed = parse_with(identity.closed_form, &options)
        .unwrap_or_else(|e| panic!("{}: parse closed form: {e}", identity.name));
    let closed = infer(&closed, &all)
        .unwrap_or_else(|e| panic!("{}: shapes of closed form: {e}", identity.name))
        .expr;
    let closed = replace_placeholder(&Rc::new(closed), identity.wrt);
    (typed, (*closed).clone())
}

/// The tree with the variable `V` replaced by the differential of `wrt`.
fn replace_placeholder(e: &Rc<Expr>, wrt: &str) -> Rc<Expr> {
    if matches!(&e.kind, ExprKind::Var(v) if v == "V") {
        return build::differential(wrt, e.shape.clone());
    }
    let mut node = (**e).clone();
    for child in node.children_mut() {
        *child = replace_placeholder(child, wrt);
    }
    Rc::new(node)
}

fn describe(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Pass { .. } => "pass".to_string(),
        Verdict::Fail(counterexample) => counterexample.describe(),
        Verdict::Inconclusive { reason } => format!("inconclusive: {reason}"),
        Verdict::Unreadable { reason } => format!("unreadable: {reason}"),
    }
}

#[test]
fn cookbook_table_has_at_least_45_identities() {
    assert!(IDENTITIES.len() >= 45, "{} identities", IDENTITIES.len());
}

#[test]
fn cookbook_identities_hold_for_ours_and_for_the_closed_forms() {
    let mut failures = Vec::new();
    for identity in IDENTITIES {
        let (typed, closed) = prepare(identity);
        let ours = match derivative(&typed, identity.wrt, identity.order) {
            Ok(ours) => ours,
            Err(e) => {
                failures.push(format!("{}: {e}", identity.name));
                continue;
            }
        };
        let claim = Derivative {
            expr: closed.clone(),
            ..ours.clone()
        };
        let checks = [
            (
                "ours vs finite differences",
                check_derivative(&typed, &ours, &config()),
            ),
            (
                "closed form vs finite differences",
                check_derivative(&typed, &claim, &config()),
            ),
            (
                "ours equals the closed form",
                check_equal(&typed, &ours.expr, &closed, &config()),
            ),
        ];
        for (what, verdict) in checks {
            if !matches!(verdict, Verdict::Pass { .. }) {
                failures.push(format!("{}: {what}: {}", identity.name, describe(&verdict)));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn cookbook_kinds_follow_spec_section_4() {
    for identity in IDENTITIES {
        let (typed, _) = prepare(identity);
        let Ok(ours) = derivative(&typed, identity.wrt, identity.order) else {
            continue;
        };
        let expected = match (identity.order, typed.expr.shape.is_scalar()) {
            (2, _) => DerivativeKind::Hessian,
            (_, true) => DerivativeKind::Gradient,
            (_, false) => DerivativeKind::Differential,
        };
        assert_eq!(ours.kind, expected, "{}", identity.name);
        // Only gradients are symmetrised; differentials hold for every dX.
        let symmetric =
            ours.kind == DerivativeKind::Gradient && typed.vars[identity.wrt].props.symmetric;
        assert_eq!(ours.symmetric, symmetric, "{}", identity.name);
    }
}

#[test]
fn cookbook_negative_control_rejects_a_wrong_closed_form() {
    // ∂tr(AX)/∂X is Aᵀ; the untransposed A must be rejected with a counterexample.
    let wrong = row("(100) with A for Aᵀ", "tr(XA)", SQUARE, "X", "A");
    let (typed, closed) = prepare(&wrong);
    let ours = derivative(&typed, "X", 1).expect("the gradient of tr(XA)");
    let claim = Derivative {
        expr: closed.clone(),
        ..ours.clone()
    };
    let verdict = check_derivative(&typed, &claim, &config());
    assert!(
        matches!(verdict, Verdict::Fail(_)),
        "{}",
        describe(&verdict)
    );
    let verdict = check_equal(&typed, &ours.expr, &closed, &config());
    assert!(
        matches!(verdict, Verdict::Fail(_)),
        "{}",
        describe(&verdict)
    );
}
