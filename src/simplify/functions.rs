//! Facts about the language's newer nodes (issue 12): elementwise functions commute with
//! the transpose, the all-ones matrix is the identity of ⊙, diag(𝟙) = I, diag(I) = 𝟙 and diag(𝟙𝟙ᵀ) = 𝟙,
//! functions of a zero are constants (tanh(0·X) = 0·X, cosh(0·X) = 𝟙𝟙ᵀ), and square roots
//! of inner products and of scalars are norms and powers, the square of a root is its
//! argument, a power of ones is ones, an integer power of a scaled value is the power of
//! each factor, softmax sums to one, and a power of a determinant
//! times it is the next power (det(X)⁴det(X) = det(X)⁵, which the derivative of det(X)⁵
//! holds), and the square of a norm is the squared norm (the Hessian of ‖x‖ holds
//! (‖x‖)²), and a real power over or times its base is the power one lower or higher
//! (the derivative of σ^{α−1} holds (α − 1)σ^{α−1}/σ). One table, in the format of
//! [`super`], pulled into [`super::rule_specs`].

use super::{
    Direction::Forward,
    Guard::{AllOnes, Integer, OnesOfMatch, Scalar, Successor, Vector},
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
        rule("diag-of-identity",      "(diag (I ?n))",        "(ones ?n)",            &[]),   // diag(I) = 𝟙, the diagonal of I
        rule("diag-of-ones-outer",    "(diag (mul (ones ?n) (T (ones ?n))))", "(ones ?n)", &[]), // diag(𝟙ₙ𝟙ₙᵀ) = 𝟙ₙ, the diagonal of a square 𝟙𝟙ᵀ
        // A function of a zero (what a derivative leaves inside tanh(0·X)): the zero where
        // the function is 0 at 0, the ones where it is 1 (scalar zeros fold in the analysis).
        rule("sin-of-zero",           "(ew-sin (mul 0 ?a))",    "(mul 0 ?a)",     &[]),   // sin(0) = 0
        rule("tan-of-zero",           "(ew-tan (mul 0 ?a))",    "(mul 0 ?a)",     &[]),   // tan(0) = 0
        rule("arcsin-of-zero",        "(ew-arcsin (mul 0 ?a))", "(mul 0 ?a)",     &[]),   // arcsin(0) = 0
        rule("arctan-of-zero",        "(ew-arctan (mul 0 ?a))", "(mul 0 ?a)",     &[]),   // arctan(0) = 0
        rule("sinh-of-zero",          "(ew-sinh (mul 0 ?a))",   "(mul 0 ?a)",     &[]),   // sinh(0) = 0
        rule("tanh-of-zero",          "(ew-tanh (mul 0 ?a))",   "(mul 0 ?a)",     &[]),   // tanh(0) = 0
        rule("abs-of-zero",           "(ew-abs (mul 0 ?a))",    "(mul 0 ?a)",     &[]),   // |0| = 0
        rule("sign-of-zero",          "(ew-sign (mul 0 ?a))",   "(mul 0 ?a)",     &[]),   // sign(0) = 0
        rule("relu-of-zero",          "(ew-relu (mul 0 ?a))",   "(mul 0 ?a)",     &[]),   // relu(0) = 0
        rule("swish-of-zero",         "(ew-swish (mul 0 ?a))",  "(mul 0 ?a)",     &[]),   // swish(0) = 0·σ(0) = 0
        rule("sqrt-of-zero",          "(ew-sqrt (mul 0 ?a))",   "(mul 0 ?a)",     &[]),   // √0 = 0
        rule("exp-of-zero",           "(ew-exp (mul 0 ?a))",    "?o",             &[OnesOfMatch("?o")]), // exp(0) = 1
        rule("cos-of-zero",           "(ew-cos (mul 0 ?a))",    "?o",             &[OnesOfMatch("?o")]), // cos(0) = 1
        rule("cosh-of-zero",          "(ew-cosh (mul 0 ?a))",   "?o",             &[OnesOfMatch("?o")]), // cosh(0) = 1
        rule("log-of-ones",           "(ew-log ?a)",            "(mul 0 ?a)",     &[AllOnes("?a")]), // log(1) = 0
        rule("sqrt-of-ones",          "(ew-sqrt ?a)",           "?a",             &[AllOnes("?a")]), // √1 = 1
        rule("abs-of-ones",           "(ew-abs ?a)",            "?a",             &[AllOnes("?a")]), // |1| = 1
        rule("sign-of-ones",          "(ew-sign ?a)",           "?a",             &[AllOnes("?a")]), // sign(1) = 1
        rule("power-of-ones",         "(epow ?a ?k)",           "?a",             &[AllOnes("?a")]), // 1^{∘k} = 1
        rule("power-of-scaled",       "(epow (mul ?c ?a) ?k)",  "(mul (pow ?c ?k) (epow ?a ?k))", &[Scalar("?c"), Integer("?k")]), // (cA)^{∘k} = cᵏA^{∘k}, k an integer
        rule("relu-of-ones",          "(ew-relu ?a)",           "?a",             &[AllOnes("?a")]), // relu(1) = 1
        rule("sigma-of-zero",         "(ew-sigma (mul 0 ?a))",  "(mul 1/2 ?o)",   &[OnesOfMatch("?o")]), // σ(0) = ½
        rule("sum-of-softmax",        "(sum (softmax ?a))",   "1",                    &[]),   // 𝟙ᵀsoftmax(z) = 1
        rule("sqrt-of-inner-product", "(ew-sqrt (mul (T ?a) ?a))", "(norm2 ?a)",      &[Vector("?a")]), // sqrt(aᵀa) = ‖a‖
        rule("half-power-as-sqrt",    "(epow ?s 1/2)",        "(ew-sqrt ?s)",         &[]),   // s^{∘1/2} = sqrt(s)
        rule("minus-half-power",      "(epow ?s -1/2)",       "(inv (ew-sqrt ?s))",   &[Scalar("?s")]), // s^{−1/2} = 1/sqrt(s)
        // What the power rule and the chain rule leave of a root: sqrt(a)² = a wherever
        // sqrt(a) is defined (a ≥ 0), the display of (α^{1/2})².
        rule("square-of-sqrt",        "(pow (ew-sqrt ?a) 2)", "?a",                   &[Scalar("?a")]), // (√a)² = a
        rule("elementwise-square-of-sqrt", "(epow (ew-sqrt ?a) 2)", "?a",             &[]),   // sqrt(A)^{∘2} = A
        rule("sqrt-hadamard-sqrt",    "(had (ew-sqrt ?a) (ew-sqrt ?a))", "?a",        &[]),   // sqrt(A) ⊙ sqrt(A) = A
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
