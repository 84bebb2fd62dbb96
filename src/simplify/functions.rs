//! Facts about the language's newer nodes (issue 12): elementwise functions commute with
//! the transpose, the all-ones matrix is the identity of ⊙, diag(𝟙) = I, and square roots
//! of inner products and of scalars are norms and powers, and a power of a determinant
//! times it is the next power (det(X)⁴det(X) = det(X)⁵, which the derivative of det(X)⁵
//! holds), and the square of a norm is the squared norm (the Hessian of ‖x‖ holds
//! (‖x‖)²), and a real power over or times its base is the power one lower or higher
//! (the derivative of σ^{α−1} holds (α − 1)σ^{α−1}/σ). One table, in the format of
//! [`super`], pulled into [`super::rule_specs`].

use super::{
    Direction::Forward,
    Guard::{Scalar, Successor, Vector},
    RuleSpec,
};

/// The facts, each with the identity it states.
#[rustfmt::skip]
pub fn function_rules() -> Vec<RuleSpec> {
    let f = "functions";
    let rule = |name, lhs, rhs, guards| RuleSpec { name, family: f, lhs, direction: Forward, rhs, guards };
    vec![
        rule("transpose-of-sin",      "(T (ew-sin ?a))",      "(ew-sin (T ?a))",      &[]),   // sin(A)ᵀ = sin(Aᵀ), elementwise
        rule("transpose-of-cos",      "(T (ew-cos ?a))",      "(ew-cos (T ?a))",      &[]),   // cos(A)ᵀ = cos(Aᵀ)
        rule("transpose-of-tan",      "(T (ew-tan ?a))",      "(ew-tan (T ?a))",      &[]),   // tan(A)ᵀ = tan(Aᵀ)
        rule("transpose-of-arcsin",   "(T (ew-arcsin ?a))",   "(ew-arcsin (T ?a))",   &[]),   // arcsin(A)ᵀ = arcsin(Aᵀ)
        rule("transpose-of-arccos",   "(T (ew-arccos ?a))",   "(ew-arccos (T ?a))",   &[]),   // arccos(A)ᵀ = arccos(Aᵀ)
        rule("transpose-of-arctan",   "(T (ew-arctan ?a))",   "(ew-arctan (T ?a))",   &[]),   // arctan(A)ᵀ = arctan(Aᵀ)
        rule("transpose-of-sinh",     "(T (ew-sinh ?a))",     "(ew-sinh (T ?a))",     &[]),   // sinh(A)ᵀ = sinh(Aᵀ)
        rule("transpose-of-cosh",     "(T (ew-cosh ?a))",     "(ew-cosh (T ?a))",     &[]),   // cosh(A)ᵀ = cosh(Aᵀ)
        rule("transpose-of-abs",      "(T (ew-abs ?a))",      "(ew-abs (T ?a))",      &[]),   // abs(A)ᵀ = abs(Aᵀ)
        rule("transpose-of-sign",     "(T (ew-sign ?a))",     "(ew-sign (T ?a))",     &[]),   // sign(A)ᵀ = sign(Aᵀ)
        rule("hadamard-all-ones",     "(had ?a (mul (ones ?n) (T (ones ?m))))", "?a", &[]),  // A ⊙ 𝟙𝟙ᵀ = A (the shape guard keeps A's shape)
        rule("diag-of-ones",          "(diag (ones ?n))",     "(I ?n)",               &[]),   // diag(𝟙) = I
        rule("sqrt-of-inner-product", "(ew-sqrt (mul (T ?a) ?a))", "(norm2 ?a)",      &[Vector("?a")]), // sqrt(aᵀa) = ‖a‖
        rule("half-power-as-sqrt",    "(epow ?s 1/2)",        "(ew-sqrt ?s)",         &[]),   // s^{∘1/2} = sqrt(s)
        rule("minus-half-power",      "(epow ?s -1/2)",       "(inv (ew-sqrt ?s))",   &[Scalar("?s")]), // s^{−1/2} = 1/sqrt(s)
        rule("square-of-norm",        "(pow (norm2 ?a) 2)",   "(normsq ?a)",          &[]),   // (‖a‖)² = ‖a‖², ‖A‖_F² for a matrix
        rule("elementwise-square-of-norm", "(epow (norm2 ?a) 2)", "(normsq ?a)",      &[]),   // ‖a‖^{∘2} = ‖a‖² (a scalar)
        // A power of a determinant times the determinant: the power rule's det(X)ᵏ⁻¹ times
        // the det(X) of d det(X). Only of determinants: on any scalar base (the powers of
        // xᵀx) it grew the Rayleigh quotient's Hessian, and on matrices the autoencoder's
        // e-graph no longer saturated.
        rule("det-power-times-det",   "(mul (pow (det ?a) ?k) (det ?a))", "(pow (det ?a) ?j)", &[Successor("?j", "?k")]), // det(A)ᵏdet(A) = det(A)ᵏ⁺¹
        rule("det-times-det-power",   "(mul (det ?a) (pow (det ?a) ?k))", "(pow (det ?a) ?j)", &[Successor("?j", "?k")]), // det(A)det(A)ᵏ = det(A)ᵏ⁺¹
        rule("det-symbolic-power-times-det", "(mul (powsym (det ?a) ?k ?o) (det ?a))", "(powsym (det ?a) ?k ?p)", &[Successor("?p", "?o")]), // det(A)ᵏ⁺ᵒdet(A) = det(A)ᵏ⁺ᵒ⁺¹
        rule("det-times-det-symbolic-power", "(mul (det ?a) (powsym (det ?a) ?k ?o))", "(powsym (det ?a) ?k ?p)", &[Successor("?p", "?o")]), // det(A)det(A)ᵏ⁺ᵒ = det(A)ᵏ⁺ᵒ⁺¹
        // A real power aᵉ = exp(e·log a) (a > 0, which log a requires on both sides) over
        // or times its base: the power rule's e·aᵉ/a of d aᵉ is e·aᵉ⁻¹.
        rule("real-power-over-base",  "(mul (inv ?a) (ew-exp (mul ?e (ew-log ?a))))", "(ew-exp (mul (sub ?e 1) (ew-log ?a)))", &[Scalar("?a"), Scalar("?e")]), // aᵉ/a = aᵉ⁻¹
        rule("real-power-times-base", "(mul ?a (ew-exp (mul ?e (ew-log ?a))))", "(ew-exp (mul (add ?e 1) (ew-log ?a)))", &[Scalar("?a"), Scalar("?e")]), // a·aᵉ = aᵉ⁺¹
    ]
}
