//! Numeric stage: evaluation of every node kind, random instances that respect the
//! declarations, and finite-difference checks of every derivative kind — right claims
//! pass, wrong claims fail with a readable counterexample, impossible domains are
//! inconclusive.

use std::collections::BTreeMap;
use std::rc::Rc;

use matcalc::diff::{Derivative, DerivativeKind};
use matcalc::expr::build::{self, *};
use matcalc::numeric::{
    check_derivative, check_equal, differential_key, draw_instance, evaluate, CheckConfig,
    Counterexample, EvalError, Instance, Verdict,
};
use matcalc::parse::{parse_decls, parse_with, ParseOptions};
use matcalc::shape::{infer, Typed};
use matcalc::{Decls, Dim, Expr, Func, Props, Shape, VarDecl};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

// ---------------------------------------------------------------------------------------
// Helpers.

fn n() -> Dim {
    Dim::Sym("n".into())
}

fn m() -> Dim {
    Dim::Sym("m".into())
}

fn matrix(rows: Dim, cols: Dim) -> Shape {
    Shape::new(rows, cols)
}

fn vector(rows: Dim) -> Shape {
    Shape::vector(rows)
}

fn plain() -> Props {
    Props::default()
}

fn symmetric() -> Props {
    Props {
        symmetric: true,
        positive_definite: false,
        integer: false,
    }
}

fn spd() -> Props {
    Props {
        symmetric: true,
        positive_definite: true,
        integer: false,
    }
}

fn half() -> Rc<Expr> {
    build::constant(matcalc::Rational::new(1.into(), 2.into()))
}

/// A typed function built by hand, with its variables' declarations.
fn typed(expr: Rc<Expr>, vars: &[(&str, &Shape, Props)]) -> Typed {
    Typed {
        expr: (*expr).clone(),
        vars: vars
            .iter()
            .map(|(name, shape, props)| {
                let decl = VarDecl {
                    shape: (*shape).clone(),
                    props: *props,
                };
                (name.to_string(), decl)
            })
            .collect(),
        fns: ["ℓ".to_string()].into(),
    }
}

fn claim(kind: DerivativeKind, wrt: &str, expr: Rc<Expr>, symmetric: bool) -> Derivative {
    Derivative {
        kind,
        wrt: wrt.to_string(),
        expr: (*expr).clone(),
        symmetric,
    }
}

fn gradient(wrt: &str, expr: Rc<Expr>) -> Derivative {
    claim(DerivativeKind::Gradient, wrt, expr, false)
}

#[track_caller]
fn check_pass(f: &Typed, derivative: &Derivative) {
    match check_derivative(f, derivative, &CheckConfig::standard()) {
        Verdict::Pass {
            trials,
            max_rel_error,
        } => {
            assert_eq!(trials, 3);
            assert!(max_rel_error < 1e-8, "max_rel_error {max_rel_error:e}");
        }
        other => panic!("expected a pass, got {}", other.describe()),
    }
}

#[track_caller]
fn check_fail(f: &Typed, derivative: &Derivative) -> Counterexample {
    match check_derivative(f, derivative, &CheckConfig::standard()) {
        Verdict::Fail(counterexample) => *counterexample,
        other => panic!("expected a failure, got {}", other.describe()),
    }
}

#[track_caller]
fn check_inconclusive(verdict: Verdict) -> String {
    match verdict {
        Verdict::Inconclusive { reason } => reason,
        other => panic!("expected inconclusive, got {}", other.describe()),
    }
}

fn instance(sizes: &[(&str, usize)], values: &[(&str, DMatrix<f64>)]) -> Instance {
    Instance::new(
        sizes.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        values
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

fn column(entries: &[f64]) -> DMatrix<f64> {
    DMatrix::from_column_slice(entries.len(), 1, entries)
}

fn rows(n_rows: usize, entries: &[f64]) -> DMatrix<f64> {
    DMatrix::from_row_slice(n_rows, entries.len() / n_rows, entries)
}

#[track_caller]
fn eval(expr: &Rc<Expr>, instance: &Instance) -> DMatrix<f64> {
    evaluate(expr, instance).unwrap_or_else(|error| panic!("{error}"))
}

#[track_caller]
fn assert_close(a: &DMatrix<f64>, b: &DMatrix<f64>) {
    assert_eq!(a.shape(), b.shape(), "{a} vs {b}");
    assert!((a - b).amax() < 1e-12, "{a} vs {b}");
}

/// Parses `src` under the declarations `decls` and infers its shapes.
#[track_caller]
fn typed_source(src: &str, decls: &str) -> Typed {
    let decls = parse_decls(decls).unwrap_or_else(|error| panic!("{error}"));
    let options = ParseOptions::from_decls(&decls);
    let expr = parse_with(src, &options).unwrap_or_else(|error| panic!("{error}"));
    infer(&expr, &decls).unwrap_or_else(|error| panic!("{error}"))
}

/// Parses a claimed result in the context of `f`: the same variables and functions.
#[track_caller]
fn claim_source(f: &Typed, src: &str) -> Expr {
    let decls = Decls {
        vars: f.vars.clone(),
        fns: f.fns.clone(),
        sizes: Default::default(),
    };
    let options = ParseOptions::from_decls(&decls);
    let expr = parse_with(src, &options).unwrap_or_else(|error| panic!("{error}"));
    infer(&expr, &decls)
        .unwrap_or_else(|error| panic!("{error}"))
        .expr
}

// ---------------------------------------------------------------------------------------
// Evaluation.

#[test]
fn numeric_evaluates_products_sums_and_broadcasts() {
    let a = var("A", matrix(n(), n()));
    let x = var("x", vector(n()));
    let alpha = var("α", Shape::scalar());
    let values = instance(
        &[("n", 2)],
        &[
            ("A", rows(2, &[1.0, 2.0, 3.0, 4.0])),
            ("x", column(&[1.0, -1.0])),
            ("α", DMatrix::from_element(1, 1, 2.0)),
        ],
    );
    assert_close(
        &eval(&mul(a.clone(), x.clone()), &values),
        &column(&[-1.0, -1.0]),
    );
    assert_close(
        &eval(&mul(alpha.clone(), x.clone()), &values),
        &column(&[2.0, -2.0]),
    );
    assert_close(
        &eval(&mul(x.clone(), alpha.clone()), &values),
        &column(&[2.0, -2.0]),
    );
    assert_close(
        &eval(&sub(int(1), x.clone()), &values),
        &column(&[0.0, 2.0]),
    );
    assert_close(
        &eval(&add(x.clone(), alpha.clone()), &values),
        &column(&[3.0, 1.0]),
    );
    assert_close(
        &eval(&div(x.clone(), alpha.clone()), &values),
        &column(&[0.5, -0.5]),
    );
    assert_close(
        &eval(&div(int(1), x.clone()), &values),
        &column(&[1.0, -1.0]),
    );
    assert_close(
        &eval(&hadamard(x.clone(), x.clone()), &values),
        &column(&[1.0, 1.0]),
    );
    assert_close(&eval(&neg(x.clone()), &values), &column(&[-1.0, 1.0]));
    assert_close(
        &eval(&transpose(a.clone()), &values),
        &rows(2, &[1.0, 3.0, 2.0, 4.0]),
    );
    assert_close(&eval(&half(), &values), &DMatrix::from_element(1, 1, 0.5));
}

#[test]
fn numeric_evaluates_matrix_functions() {
    let a = var("A", matrix(n(), n()));
    let x = var("x", vector(n()));
    let values = instance(
        &[("n", 2)],
        &[
            ("A", rows(2, &[2.0, 1.0, 1.0, 3.0])),
            ("x", column(&[3.0, 4.0])),
        ],
    );
    let scalar = |value: f64| DMatrix::from_element(1, 1, value);
    assert_close(&eval(&trace(a.clone()), &values), &scalar(5.0));
    assert_close(&eval(&det(a.clone()), &values), &scalar(5.0));
    assert_close(&eval(&logdet(a.clone()), &values), &scalar(5f64.ln()));
    assert_close(&eval(&norm_sq(x.clone()), &values), &scalar(25.0));
    assert_close(&eval(&sum(a.clone()), &values), &scalar(7.0));
    assert_close(
        &eval(&inverse(a.clone()), &values),
        &rows(2, &[0.6, -0.2, -0.2, 0.4]),
    );
    assert_close(
        &eval(&pow(a.clone(), 2), &values),
        &rows(2, &[5.0, 5.0, 5.0, 10.0]),
    );
    assert_close(&eval(&pow(a.clone(), 0), &values), &DMatrix::identity(2, 2));
    assert_close(
        &eval(&pow(a.clone(), -2), &values),
        &rows(2, &[0.4, -0.2, -0.2, 0.2]),
    );
    assert_close(
        &eval(&diag(x.clone()), &values),
        &rows(2, &[3.0, 0.0, 0.0, 4.0]),
    );
    assert_close(&eval(&diag(a.clone()), &values), &column(&[2.0, 3.0]));
    assert_close(&eval(&identity(n()), &values), &DMatrix::identity(2, 2));
    assert_close(&eval(&ones(n()), &values), &column(&[1.0, 1.0]));
    // A zero derivative is a `Num(0)` carrying its shape.
    let zero = Rc::new(Expr::typed(
        matcalc::ExprKind::Num(matcalc::Rational::from_integer(0.into())),
        matrix(n(), n()),
    ));
    assert_close(&eval(&zero, &values), &DMatrix::zeros(2, 2));
}

#[test]
fn numeric_evaluates_elementwise_functions() {
    let z = var("z", vector(n()));
    let values = instance(&[("n", 3)], &[("z", column(&[-1.0, 0.5, 2.0]))]);
    let sigma = |t: f64| 1.0 / (1.0 + (-t).exp());
    type Reference = fn(f64) -> f64;
    let cases: [(Func, Reference); 7] = [
        (Func::Sigma, |t| 1.0 / (1.0 + (-t).exp())),
        (Func::Exp, f64::exp),
        (Func::Tanh, f64::tanh),
        (Func::Swish, |t| t / (1.0 + (-t).exp())),
        (Func::Relu, |t| t.max(0.0)),
        (Func::Softplus, |t| t.exp().ln_1p()),
        (Func::Step, |t| if t > 0.0 { 1.0 } else { 0.0 }),
    ];
    for (function, reference) in cases {
        let expected = column(&[-1.0, 0.5, 2.0]).map(reference);
        assert_close(&eval(&func(function, z.clone()), &values), &expected);
    }
    assert!((sigma(0.5) - eval(&func(Func::Sigma, z.clone()), &values)[1]).abs() < 1e-15);
    let positive = instance(&[("n", 2)], &[("z", column(&[4.0, 0.25]))]);
    assert_close(
        &eval(&func(Func::Sqrt, z.clone()), &positive),
        &column(&[2.0, 0.5]),
    );
    assert_close(
        &eval(&func(Func::Log, z.clone()), &positive),
        &column(&[4f64.ln(), 0.25f64.ln()]),
    );
}

#[test]
fn numeric_reports_domain_errors_as_undefined() {
    let z = var("z", vector(n()));
    let a = var("A", matrix(n(), n()));
    let values = instance(
        &[("n", 2)],
        &[
            ("z", column(&[-1.0, 2.0])),
            ("A", rows(2, &[1.0, 2.0, 2.0, 4.0])),
        ],
    );
    let undefined = |expr: Rc<Expr>| match evaluate(&expr, &values) {
        Err(EvalError::Undefined(reason)) => reason,
        other => panic!("expected undefined, got {other:?}"),
    };
    assert_eq!(
        undefined(func(Func::Log, z.clone())),
        "log of a non-positive number"
    );
    assert_eq!(
        undefined(func(Func::Sqrt, z.clone())),
        "sqrt of a negative number"
    );
    assert!(undefined(inverse(a.clone())).starts_with("singular matrix"));
    assert_eq!(
        undefined(logdet(neg(identity(Dim::Known(3))))),
        "log of a non-positive determinant"
    );
    assert!(undefined(func(Func::Exp, mul(int(1000), z.clone()))).starts_with("overflow"));
    assert_eq!(
        undefined(div(z.clone(), sub(z.clone(), z.clone()))),
        "division by zero"
    );
}

#[test]
fn numeric_reports_missing_values_and_ill_typed_trees() {
    let values = instance(&[("n", 2)], &[("x", column(&[1.0, 2.0]))]);
    let missing = evaluate(&var("y", vector(n())), &values);
    assert!(matches!(missing, Err(EvalError::Missing(_))), "{missing:?}");
    let missing_size = evaluate(&identity(Dim::Sym("k".into())), &values);
    assert!(
        matches!(missing_size, Err(EvalError::Missing(_))),
        "{missing_size:?}"
    );
    let x = var("x", vector(n()));
    let ill_typed = evaluate(&mul(x.clone(), x), &values);
    assert_eq!(
        ill_typed,
        Err(EvalError::Shape("cannot multiply 2×1 by 2×1".into()))
    );
}

#[test]
fn numeric_opaque_functions_are_quadratics_with_matching_gradients() {
    let v = var("v", vector(n()));
    let values = instance(&[("n", 3)], &[("v", column(&[0.3, -1.0, 2.0]))]);
    let stand_in = values.opaque_function("ℓ", 3);
    assert_eq!(stand_in.quadratic, stand_in.quadratic.transpose());
    let value = eval(&apply("ℓ", v.clone()), &values)[(0, 0)];
    let point = column(&[0.3, -1.0, 2.0]);
    let expected = 0.5 * (point.transpose() * &stand_in.quadratic * &point)[(0, 0)]
        + (stand_in.linear.transpose() * &point)[(0, 0)];
    assert!((value - expected).abs() < 1e-12);
    let gradient_value = eval(&grad("ℓ", v.clone()), &values);
    assert_close(
        &gradient_value,
        &(&stand_in.quadratic * &point + column(stand_in.linear.as_slice())),
    );
    // The stand-in depends on the seed, the name and the length only.
    assert_eq!(*values.opaque_function("ℓ", 3), *stand_in);
    assert_ne!(*values.opaque_function("g", 3), *stand_in);
}

#[test]
fn numeric_reads_differentials_under_their_key() {
    assert_eq!(differential_key("X"), "dX");
    let dx = differential("X", matrix(n(), n()));
    let values = instance(&[("n", 2)], &[("dX", DMatrix::identity(2, 2))]);
    assert_close(&eval(&dx, &values), &DMatrix::identity(2, 2));
}

// ---------------------------------------------------------------------------------------
// Random instances.

#[test]
fn numeric_instances_respect_declarations() {
    let square = matrix(n(), n());
    let (s, k, w, alpha) = (
        var("S", square.clone()),
        var("K", square.clone()),
        var("W", matrix(m(), n())),
        var("α", Shape::scalar()),
    );
    let f = typed(
        add(add(trace(mul(s, k)), sum(w)), alpha),
        &[
            ("S", &square, symmetric()),
            ("K", &square, spd()),
            ("W", &matrix(m(), n()), plain()),
            ("α", &Shape::scalar(), plain()),
        ],
    );
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for _ in 0..20 {
        let drawn = draw_instance(&f, &mut rng);
        let (size_n, size_m) = (drawn.sizes["n"], drawn.sizes["m"]);
        assert!((2..=4).contains(&size_n) && (2..=4).contains(&size_m));
        let s = &drawn.values["S"];
        assert_eq!(s.shape(), (size_n, size_n));
        assert_eq!(s, &s.transpose());
        let k = &drawn.values["K"];
        assert_eq!(k, &k.transpose());
        assert!(k.clone().symmetric_eigenvalues().min() > 0.5);
        assert_eq!(drawn.values["W"].shape(), (size_m, size_n));
        let alpha = drawn.values["α"][(0, 0)];
        assert!((0.5..=2.0).contains(&alpha));
    }
}

#[test]
fn numeric_instances_are_reproducible() {
    let x = var("x", vector(n()));
    let f = typed(norm_sq(x), &[("x", &vector(n()), plain())]);
    let first = draw_instance(&f, &mut ChaCha8Rng::seed_from_u64(5));
    let second = draw_instance(&f, &mut ChaCha8Rng::seed_from_u64(5));
    assert_eq!(first.sizes, second.sizes);
    assert_eq!(first.values, second.values);
}

#[test]
fn numeric_instances_keep_log_arguments_positive() {
    let x = var("x", vector(n()));
    let a = var("A", matrix(n(), n()));
    let f = typed(
        add(sum(func(Func::Log, x)), logdet(a)),
        &[
            ("x", &vector(n()), plain()),
            ("A", &matrix(n(), n()), plain()),
        ],
    );
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for _ in 0..20 {
        let drawn = draw_instance(&f, &mut rng);
        assert!(drawn.values["x"].min() > 0.0);
        assert!(drawn.values["A"].determinant() > 0.0);
    }
}

// ---------------------------------------------------------------------------------------
// Gradients.

/// f = ½‖Wx − y‖², with W: m×n, x: n, y: m.
fn least_squares() -> (Typed, Rc<Expr>, Rc<Expr>, Rc<Expr>) {
    let (w_shape, x_shape, y_shape) = (matrix(m(), n()), vector(n()), vector(m()));
    let w = var("W", w_shape.clone());
    let x = var("x", x_shape.clone());
    let y = var("y", y_shape.clone());
    let residual = sub(mul(w.clone(), x.clone()), y.clone());
    let f = typed(
        mul(half(), norm_sq(residual)),
        &[
            ("W", &w_shape, plain()),
            ("x", &x_shape, plain()),
            ("y", &y_shape, plain()),
        ],
    );
    (f, w, x, y)
}

#[test]
fn numeric_gradient_of_least_squares_passes() {
    let (f, w, x, y) = least_squares();
    let residual = sub(mul(w.clone(), x.clone()), y.clone());
    check_pass(
        &f,
        &gradient("W", mul(residual.clone(), transpose(x.clone()))),
    );
    check_pass(&f, &gradient("x", mul(transpose(w), residual.clone())));
    check_pass(&f, &gradient("y", neg(residual)));
}

#[test]
fn numeric_wrong_gradient_fails_with_a_readable_counterexample() {
    let (f, w, x, y) = least_squares();
    // The factor ½ forgotten: the claim is twice the gradient.
    let residual = sub(mul(w, x.clone()), y);
    let wrong = mul(int(2), mul(residual, transpose(x)));
    let counterexample = check_fail(&f, &gradient("W", wrong));
    assert!(counterexample.rel_error > 0.1);
    let (row, col) = counterexample.worst;
    let claimed = counterexample.claimed[(row, col)];
    let expected = counterexample.expected[(row, col)];
    assert!((claimed - 2.0 * expected).abs() < 1e-6 * expected.abs().max(1.0));
    let text = counterexample.describe();
    assert!(text.starts_with("gradient with respect to W, compared with finite differences\n"));
    assert!(text.contains("\nsizes: m = "), "{text}");
    for name in ["W", "x", "y"] {
        assert!(text.contains(&format!("\n{name} = [")), "{text}");
    }
    assert!(text.contains("\nclaimed: ["), "{text}");
    assert!(text.contains("\nfinite differences: ["), "{text}");
    assert!(
        text.contains(&format!(
            "largest difference at entry ({}, {}): claimed ",
            row + 1,
            col + 1
        )),
        "{text}"
    );
}

#[test]
fn numeric_gradient_of_the_wrong_shape_fails() {
    let (f, w, x, y) = least_squares();
    let residual = sub(mul(w, x.clone()), y);
    let transposed = transpose(mul(residual, transpose(x)));
    let counterexample = check_fail(&f, &gradient("W", transposed));
    // Sizes are drawn independently, so some trial has m ≠ n; a square draw fails on
    // the values instead.
    assert!(counterexample.rel_error > 0.1);
    assert!(counterexample.describe().contains("finite differences"));
}

#[test]
fn numeric_symmetric_gradient_of_trace_passes() {
    // f = tr(AX) with X sym: the symmetric gradient is ½(A + Aᵀ).
    let square = matrix(n(), n());
    let a = var("A", square.clone());
    let x = var("X", square.clone());
    let f = typed(
        trace(mul(a.clone(), x)),
        &[("A", &square, plain()), ("X", &square, symmetric())],
    );
    let symmetric_gradient = mul(half(), add(a.clone(), transpose(a.clone())));
    check_pass(
        &f,
        &claim(DerivativeKind::Gradient, "X", symmetric_gradient, true),
    );
    // The unconstrained gradient Aᵀ is not the symmetric one.
    check_fail(
        &f,
        &claim(DerivativeKind::Gradient, "X", transpose(a.clone()), true),
    );
    // Nor is the "2G − diag G" convention of some textbooks.
    let textbook = sub(add(a.clone(), transpose(a.clone())), diag(diag(a.clone())));
    check_fail(&f, &claim(DerivativeKind::Gradient, "X", textbook, true));
}

#[test]
fn numeric_symmetric_gradient_of_log_det_passes() {
    // f = log|K| with K spd: the gradient K⁻¹ is already symmetric.
    let square = matrix(n(), n());
    let k = var("K", square.clone());
    let f = typed(logdet(k.clone()), &[("K", &square, spd())]);
    check_pass(&f, &claim(DerivativeKind::Gradient, "K", inverse(k), true));
}

#[test]
fn numeric_gradient_through_relu_avoids_the_kink() {
    // f = sum(relu(Wx)): the gradient with respect to W is step(Wx) xᵀ.
    let (w_shape, x_shape) = (matrix(m(), n()), vector(n()));
    let w = var("W", w_shape.clone());
    let x = var("x", x_shape.clone());
    let z = mul(w.clone(), x.clone());
    let f = typed(
        sum(func(Func::Relu, z.clone())),
        &[("W", &w_shape, plain()), ("x", &x_shape, plain())],
    );
    check_pass(&f, &gradient("W", mul(func(Func::Step, z), transpose(x))));
}

#[test]
fn numeric_gradient_of_scalar_variable_passes() {
    // f = log(α) ‖x‖² with α scalar: ∂f/∂α = ‖x‖²/α.
    let x = var("x", vector(n()));
    let alpha = var("α", Shape::scalar());
    let f = typed(
        mul(func(Func::Log, alpha.clone()), norm_sq(x.clone())),
        &[
            ("x", &vector(n()), plain()),
            ("α", &Shape::scalar(), plain()),
        ],
    );
    check_pass(&f, &gradient("α", div(norm_sq(x), alpha)));
}

#[test]
fn numeric_gradient_through_an_opaque_function_passes() {
    // f = ℓ(Wx): ∂f/∂W = ∇ℓ(Wx) xᵀ.
    let (w_shape, x_shape) = (matrix(m(), n()), vector(n()));
    let w = var("W", w_shape.clone());
    let x = var("x", x_shape.clone());
    let z = mul(w.clone(), x.clone());
    let f = typed(
        apply("ℓ", z.clone()),
        &[("W", &w_shape, plain()), ("x", &x_shape, plain())],
    );
    check_pass(
        &f,
        &gradient("W", mul(grad("ℓ", z.clone()), transpose(x.clone()))),
    );
    check_fail(&f, &gradient("W", mul(z, transpose(x))));
}

#[test]
fn numeric_log_det_of_a_negative_definite_matrix_is_inconclusive() {
    // det(−K) < 0 for every spd K of odd size, so no trial is ever defined.
    let three = matrix(Dim::Known(3), Dim::Known(3));
    let k = var("K", three.clone());
    let f = typed(logdet(neg(k.clone())), &[("K", &three, spd())]);
    let reason = check_inconclusive(check_derivative(
        &f,
        &claim(DerivativeKind::Gradient, "K", inverse(k), true),
        &CheckConfig::standard(),
    ));
    assert!(
        reason.contains("log of a non-positive determinant"),
        "{reason}"
    );
    assert!(reason.contains("21 draws"), "{reason}");
}

#[test]
fn numeric_unevaluable_derivative_is_inconclusive() {
    let x = var("x", vector(n()));
    let f = typed(norm_sq(x.clone()), &[("x", &vector(n()), plain())]);
    let unknown = var("q", Shape::unknown());
    let reason = check_inconclusive(check_derivative(
        &f,
        &gradient("x", mul(int(2), unknown)),
        &CheckConfig::standard(),
    ));
    assert!(reason.contains("no value for the variable `q`"), "{reason}");
}

#[test]
fn numeric_zero_trials_is_inconclusive() {
    let x = var("x", vector(n()));
    let f = typed(norm_sq(x.clone()), &[("x", &vector(n()), plain())]);
    let config = CheckConfig {
        trials: 0,
        ..CheckConfig::standard()
    };
    check_inconclusive(check_derivative(
        &f,
        &gradient("x", mul(int(2), x)),
        &config,
    ));
}

// ---------------------------------------------------------------------------------------
// Jacobians, differentials, Hessians, second differentials.

#[test]
fn numeric_jacobian_of_a_layer_passes() {
    // f = σ(Wx): J = diag(σ(Wx) ⊙ (1 − σ(Wx))) W.
    let (w_shape, x_shape) = (matrix(m(), n()), vector(n()));
    let w = var("W", w_shape.clone());
    let x = var("x", x_shape.clone());
    let s = func(Func::Sigma, mul(w.clone(), x.clone()));
    let f = typed(
        s.clone(),
        &[("W", &w_shape, plain()), ("x", &x_shape, plain())],
    );
    let derivative = hadamard(s.clone(), sub(int(1), s.clone()));
    let jacobian = mul(diag(derivative.clone()), w.clone());
    check_pass(&f, &claim(DerivativeKind::Jacobian, "x", jacobian, false));
    let wrong = mul(diag(s), w);
    check_fail(&f, &claim(DerivativeKind::Jacobian, "x", wrong, false));
}

#[test]
fn numeric_jacobian_with_respect_to_a_scalar_passes() {
    // f = exp(αx): ∂f/∂α = exp(αx) ⊙ x, a column.
    let x = var("x", vector(n()));
    let alpha = var("α", Shape::scalar());
    let e = func(Func::Exp, mul(alpha.clone(), x.clone()));
    let f = typed(
        e.clone(),
        &[
            ("x", &vector(n()), plain()),
            ("α", &Shape::scalar(), plain()),
        ],
    );
    check_pass(
        &f,
        &claim(DerivativeKind::Jacobian, "α", hadamard(e, x), false),
    );
}

#[test]
fn numeric_differential_of_inverse_passes() {
    // d(X⁻¹) = −X⁻¹ dX X⁻¹.
    let square = matrix(n(), n());
    let x = var("X", square.clone());
    let dx = differential("X", square.clone());
    let f = typed(inverse(x.clone()), &[("X", &square, plain())]);
    let right = neg(mul(mul(inverse(x.clone()), dx.clone()), inverse(x.clone())));
    check_pass(&f, &claim(DerivativeKind::Differential, "X", right, false));
    let wrong = neg(mul(mul(inverse(x.clone()), inverse(x.clone())), dx));
    check_fail(&f, &claim(DerivativeKind::Differential, "X", wrong, false));
}

#[test]
fn numeric_differential_in_a_symmetric_direction_passes() {
    // F = XAX with X sym: dF = dX A X + X A dX, dX symmetric.
    let square = matrix(n(), n());
    let x = var("X", square.clone());
    let a = var("A", square.clone());
    let dx = differential("X", square.clone());
    let f = typed(
        mul(mul(x.clone(), a.clone()), x.clone()),
        &[("X", &square, symmetric()), ("A", &square, plain())],
    );
    let right = add(
        mul(mul(dx.clone(), a.clone()), x.clone()),
        mul(mul(x.clone(), a.clone()), dx.clone()),
    );
    check_pass(&f, &claim(DerivativeKind::Differential, "X", right, false));
    let Verdict::Fail(counterexample) = check_derivative(
        &f,
        &claim(
            DerivativeKind::Differential,
            "X",
            mul(mul(dx.clone(), a.clone()), x.clone()),
            false,
        ),
        &CheckConfig::standard(),
    ) else {
        panic!("half of the product rule must fail");
    };
    let direction = &counterexample.values["dX"];
    assert_eq!(direction, &direction.transpose());
}

#[test]
fn numeric_hessians_of_quadratic_and_cubic_pass() {
    let square = matrix(n(), n());
    let a = var("A", square.clone());
    let x = var("x", vector(n()));
    let vars: [(&str, &Shape, Props); 2] = [("A", &square, plain()), ("x", &vector(n()), plain())];
    // f = xᵀAx: H = A + Aᵀ.
    let quadratic = typed(mul(mul(transpose(x.clone()), a.clone()), x.clone()), &vars);
    let hessian = add(a.clone(), transpose(a.clone()));
    check_pass(
        &quadratic,
        &claim(DerivativeKind::Hessian, "x", hessian, false),
    );
    check_fail(
        &quadratic,
        &claim(DerivativeKind::Hessian, "x", a.clone(), false),
    );
    // f = sum(x ⊙ x ⊙ x): H = diag(6x).
    let cube = hadamard(hadamard(x.clone(), x.clone()), x.clone());
    let cubic = typed(sum(cube), &vars);
    let hessian = diag(mul(int(6), x.clone()));
    check_pass(&cubic, &claim(DerivativeKind::Hessian, "x", hessian, false));
    // f = sum(exp(Ax)): H = Aᵀ diag(exp(Ax)) A.
    let exponential = typed(sum(func(Func::Exp, mul(a.clone(), x.clone()))), &vars);
    let hessian = mul(
        mul(
            transpose(a.clone()),
            diag(func(Func::Exp, mul(a.clone(), x.clone()))),
        ),
        a,
    );
    check_pass(
        &exponential,
        &claim(DerivativeKind::Hessian, "x", hessian, false),
    );
}

#[test]
fn numeric_second_differential_of_log_det_passes() {
    // d²log|X| = −tr(X⁻¹dX X⁻¹dX).
    let square = matrix(n(), n());
    let x = var("X", square.clone());
    let dx = differential("X", square.clone());
    let f = typed(logdet(x.clone()), &[("X", &square, spd())]);
    let x_inverse_dx = mul(inverse(x.clone()), dx.clone());
    let right = neg(trace(mul(x_inverse_dx.clone(), x_inverse_dx.clone())));
    check_pass(
        &f,
        &claim(DerivativeKind::SecondDifferential, "X", right, false),
    );
    let wrong = trace(mul(x_inverse_dx.clone(), x_inverse_dx));
    check_fail(
        &f,
        &claim(DerivativeKind::SecondDifferential, "X", wrong, false),
    );
}

// ---------------------------------------------------------------------------------------
// Equalities.

#[test]
fn numeric_equalities_of_rewrite_rules() {
    let square = matrix(n(), n());
    let a = var("A", square.clone());
    let b = var("B", square.clone());
    let k = var("K", square.clone());
    let f = typed(
        trace(mul(a.clone(), b.clone())),
        &[
            ("A", &square, plain()),
            ("B", &square, plain()),
            ("K", &square, spd()),
        ],
    );
    let config = CheckConfig::standard();
    let holds = |lhs: Rc<Expr>, rhs: Rc<Expr>| check_equal(&f, &lhs, &rhs, &config);
    assert!(holds(
        trace(mul(a.clone(), b.clone())),
        trace(mul(b.clone(), a.clone()))
    )
    .is_pass());
    assert!(holds(
        transpose(mul(a.clone(), b.clone())),
        mul(transpose(b.clone()), transpose(a.clone()))
    )
    .is_pass());
    assert!(holds(inverse(inverse(k.clone())), k.clone()).is_pass());
    assert!(holds(logdet(k.clone()), neg(logdet(inverse(k.clone())))).is_pass());
    let Verdict::Fail(counterexample) = holds(
        transpose(mul(a.clone(), b.clone())),
        mul(transpose(a.clone()), transpose(b.clone())),
    ) else {
        panic!("(AB)ᵀ = AᵀBᵀ must fail");
    };
    let text = counterexample.describe();
    assert!(text.contains("compared with right-hand side"), "{text}");
    assert!(text.contains("vs right-hand side"), "{text}");
}

#[test]
fn numeric_equality_of_differentials_draws_directions() {
    let square = matrix(n(), n());
    let x = var("X", square.clone());
    let dx = differential("X", square.clone());
    let f = typed(trace(x.clone()), &[("X", &square, plain())]);
    let lhs = trace(mul(x.clone(), dx.clone()));
    let rhs = trace(mul(dx, x));
    assert!(check_equal(&f, &lhs, &rhs, &CheckConfig::standard()).is_pass());
}

#[test]
fn numeric_verdicts_are_reproducible() {
    let (f, w, x, y) = least_squares();
    let residual = sub(mul(w, x.clone()), y);
    let wrong = gradient("W", mul(x.clone(), transpose(residual)));
    let first = check_derivative(&f, &wrong, &CheckConfig::standard());
    let second = check_derivative(&f, &wrong, &CheckConfig::standard());
    assert_eq!(first, second);
}

// ---------------------------------------------------------------------------------------
// Through the parser.

#[test]
fn numeric_parsed_autoencoder_gradient_passes() {
    let f = typed_source("½‖WᵀWx − x‖²", "");
    let right = claim_source(&f, "W((WᵀWx − x)xᵀ + x(WᵀWx − x)ᵀ)");
    check_pass(
        &f,
        &claim(DerivativeKind::Gradient, "W", Rc::new(right), false),
    );
    let wrong = claim_source(&f, "W(WᵀWx − x)xᵀ");
    check_fail(
        &f,
        &claim(DerivativeKind::Gradient, "W", Rc::new(wrong), false),
    );
}

#[test]
fn numeric_parsed_gp_lvm_gradient_passes() {
    // L = −c − D/2 log|K| − ½ tr(K⁻¹YYᵀ), K = XXᵀ + βI, with respect to X:
    // ∂L/∂X = (K⁻¹YYᵀK⁻¹ − D K⁻¹) X.
    let f = typed_source(
        "-c - D/2 log|X X^T + beta I| - 1/2 tr((X X^T + beta I)^{-1} Y Y^T)",
        "X: n×q, Y: n×p",
    );
    let right = claim_source(
        &f,
        "((X X^T + beta I)^{-1} Y Y^T (X X^T + beta I)^{-1} - D (X X^T + beta I)^{-1}) X",
    );
    check_pass(
        &f,
        &claim(DerivativeKind::Gradient, "X", Rc::new(right), false),
    );
}

#[test]
fn numeric_parsed_relu_network_gradient_passes() {
    let f = typed_source("½‖W₂ relu(W₁x + b₁) − y‖²", "");
    let right = claim_source(&f, "(step(W₁x + b₁) ⊙ (W₂ᵀ(W₂ relu(W₁x + b₁) − y))) xᵀ");
    check_pass(
        &f,
        &claim(DerivativeKind::Gradient, "W₁", Rc::new(right), false),
    );
}

#[test]
fn numeric_differentiator_passes_on_the_sheet() {
    let cases: [(&str, &str, &str, u8); 7] = [
        ("½‖WᵀWx − x‖²", "", "W", 1),
        (
            "-c - D/2 log|K| - 1/2 tr(K^{-1} Y Y^T)",
            "K: n×n spd",
            "K",
            1,
        ),
        ("σ(W₂ tanh(W₁x + b₁) + b₂)", "", "W₁", 1),
        ("ℓ(W x)", "ℓ: fn", "W", 1),
        ("xᵀAx + sum(exp(x))", "", "x", 2),
        ("log|X| + tr(AX)", "X: n×n spd", "X", 2),
        ("X⁻¹A", "", "X", 1),
    ];
    for (src, decls, wrt, order) in cases {
        let f = typed_source(src, decls);
        let derivative = matcalc::diff::derivative(&f, wrt, order)
            .unwrap_or_else(|error| panic!("{src}: {error}"));
        let verdict = check_derivative(&f, &derivative, &CheckConfig::standard());
        assert!(verdict.is_pass(), "{src} by {wrt}: {}", verdict.describe());
    }
}

#[test]
fn numeric_empty_values_map_is_missing() {
    let f = typed_source("tr(A)", "");
    let empty = Instance::new(BTreeMap::new(), BTreeMap::new());
    assert!(matches!(
        evaluate(&f.expr, &empty),
        Err(EvalError::Missing(_))
    ));
}

/// Derivatives from the differentiator pass on many seeds, and the same derivatives
/// off by a factor 1.001 fail on every seed (unless the derivative is zero there, as
/// when every relu is off).
#[test]
fn numeric_checks_are_sharp_over_many_seeds() {
    let cases: [(&str, &str, &str, u8); 12] = [
        (
            "-c - D/2 log|X X^T + beta I| - 1/2 tr((X X^T + beta I)^{-1} Y Y^T)",
            "X: n×q, Y: n×p",
            "X",
            1,
        ),
        ("½‖W₂ relu(W₁x + b₁) − y‖²", "", "W₁", 1),
        ("ℓ(W x)", "ℓ: fn", "W", 1),
        ("xᵀAx + sum(exp(x))", "", "x", 2),
        ("log|X| + tr(AX)", "X: n×n spd", "X", 2),
        ("X⁻¹A", "", "X", 1),
        ("sum(softplus(Wx)) + sum(log(x))", "", "x", 2),
        ("log|K| + tr(K A)", "K: n×n sym", "K", 1),
        ("det(X) + tr(X^3) + tr(X^{-2})", "", "X", 1),
        ("sum(swish(Wx)) + sum(sqrt(x))", "", "x", 1),
        ("σ(Wx + b)", "", "x", 1),
        ("α log(β) ‖x‖²", "", "β", 1),
    ];
    for (src, decls, wrt, order) in cases {
        let f = typed_source(src, decls);
        let derivative = matcalc::diff::derivative(&f, wrt, order)
            .unwrap_or_else(|error| panic!("{src}: {error}"));
        let mut off = derivative.clone();
        let factor = build::constant(matcalc::Rational::new(1001.into(), 1000.into()));
        off.expr = (*mul(factor, Rc::new(derivative.expr.clone()))).clone();
        for seed in 0..10 {
            let config = CheckConfig {
                seed,
                ..CheckConfig::standard()
            };
            let verdict = check_derivative(&f, &derivative, &config);
            assert!(
                verdict.is_pass(),
                "{src}, seed {seed}: {}",
                verdict.describe()
            );
            match check_derivative(&f, &off, &config) {
                Verdict::Fail(_) => {}
                Verdict::Pass {
                    max_rel_error: 0.0, ..
                } => {}
                other => panic!("{src}, seed {seed}, off by 0.1%: {}", other.describe()),
            }
        }
    }
}

#[test]
fn numeric_huge_declared_sizes_are_refused_not_allocated() {
    let huge = Shape::new(Dim::Known(1 << 40), Dim::Known(1 << 40));
    let w = var("W", huge.clone());
    let f = typed(sum(w.clone()), &[("W", &huge, plain())]);
    let drawn = draw_instance(&f, &mut ChaCha8Rng::seed_from_u64(0));
    assert!(!drawn.values.contains_key("W"));
    let too_large = evaluate(&identity(Dim::Known(1 << 40)), &drawn);
    assert!(
        matches!(too_large, Err(EvalError::TooLarge(_))),
        "{too_large:?}"
    );
    let reason = check_inconclusive(check_derivative(
        &f,
        &gradient("W", Rc::new(Expr::typed(matcalc::ExprKind::Ones, huge))),
        &CheckConfig::standard(),
    ));
    assert!(reason.starts_with("cannot evaluate"), "{reason}");
}
