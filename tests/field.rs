//! The elementwise field pass (`simplify::field`): on random elementwise and diagonal
//! expressions it preserves value (checked numerically) and shape and never makes a term
//! larger; the textbook derivatives it exists for come out as the textbook writes them,
//! each checked against finite differences on what is printed.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use matcalc::expr::{build, Rational};
use matcalc::numeric::{check_equal, CheckConfig, Verdict};
use matcalc::print::{render, Style};
use matcalc::session::{Options, Session};
use matcalc::shape::Typed;
use matcalc::simplify::field::prepare;
use matcalc::{Dim, Expr, Func, Props, Shape, VarDecl};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn n() -> Dim {
    Dim::Sym("n".into())
}

fn vars() -> BTreeMap<String, VarDecl> {
    let decl = |rows: Dim, cols: Dim| VarDecl {
        shape: Shape::new(rows, cols),
        props: Props::default(),
    };
    BTreeMap::from([
        ("x".to_string(), decl(n(), Dim::one())),
        ("y".to_string(), decl(n(), Dim::one())),
        ("A".to_string(), decl(n(), n())),
        ("a".to_string(), decl(Dim::one(), Dim::one())),
    ])
}

fn var(name: &str) -> Rc<Expr> {
    build::var(name, vars()[name].shape.clone())
}

/// A random elementwise expression: a vector (`n`), a scalar, or an `n×n` matrix built
/// from diagonal matrices, products with `A`, sums and scalings.
fn random_expr(rng: &mut ChaCha8Rng, shape: &Shape, depth: u32) -> Rc<Expr> {
    let vector = Shape::vector(n());
    if shape.is_scalar() {
        return match rng.gen_range(0..4) {
            0 => var("a"),
            1 => build::int(rng.gen_range(1..4)),
            2 => build::constant(Rational::new(1.into(), 2.into())),
            _ => build::sum(random_expr(rng, &vector, depth.saturating_sub(1))),
        };
    }
    if shape.rows == shape.cols {
        if depth == 0 {
            return match rng.gen_range(0..3) {
                0 => build::identity(n()),
                1 => var("A"),
                _ => build::diag(random_expr(rng, &vector, 0)),
            };
        }
        let sub = |rng: &mut ChaCha8Rng| random_expr(rng, shape, depth - 1);
        return match rng.gen_range(0..6) {
            0 => build::add(sub(rng), sub(rng)),
            1 => build::sub(sub(rng), sub(rng)),
            2 | 3 => build::mul(sub(rng), sub(rng)),
            4 => build::mul(random_expr(rng, &Shape::scalar(), 0), sub(rng)),
            _ => build::diag(random_expr(rng, &vector, depth - 1)),
        };
    }
    if depth == 0 {
        return match rng.gen_range(0..8) {
            0 | 1 => var("x"),
            2 => var("y"),
            3 => build::func(Func::Sigma, var("x")),
            4 => build::func(Func::Exp, var("x")),
            5 => build::func(Func::Tanh, var("y")),
            6 => build::ones(n()),
            _ => build::mul(var("A"), var("x")),
        };
    }
    let sub = |rng: &mut ChaCha8Rng| random_expr(rng, shape, depth - 1);
    match rng.gen_range(0..11) {
        0 | 1 => build::add(sub(rng), sub(rng)),
        2 => build::sub(sub(rng), sub(rng)),
        3 => build::neg(sub(rng)),
        4 | 5 => build::hadamard(sub(rng), sub(rng)),
        6 => build::elem_div(sub(rng), build::add(build::int(2), sub(rng))),
        7 => build::add(build::int(1), sub(rng)),
        8 => build::mul(random_expr(rng, &Shape::scalar(), 0), sub(rng)),
        9 => build::mul(random_expr(rng, &Shape::new(n(), n()), 1), sub(rng)),
        _ => build::elem_pow(sub(rng), Rational::from_integer(2.into())),
    }
}

fn typed(expr: &Expr) -> Typed {
    Typed {
        expr: expr.clone(),
        vars: vars(),
        fns: BTreeSet::new(),
    }
}

#[test]
fn field_pass_preserves_value_and_never_grows_on_random_expressions() {
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let config = CheckConfig::standard();
    let shapes = [Shape::vector(n()), Shape::new(n(), n()), Shape::scalar()];
    let (mut changed, mut inconclusive) = (0, 0);
    for case in 0..400 {
        let shape = shapes[rng.gen_range(0..shapes.len())].clone();
        let depth = rng.gen_range(1..5);
        let expr = random_expr(&mut rng, &shape, depth);
        let out = prepare(&expr);
        let text = render(&expr, Style::Unicode);
        assert_eq!(out.shape, expr.shape, "case {case}: {text}");
        assert!(
            out.size() <= expr.size(),
            "case {case}: {text} grew to {}",
            render(&out, Style::Unicode)
        );
        if out == *expr {
            continue;
        }
        changed += 1;
        match check_equal(&typed(&expr), &out, &expr, &config) {
            Verdict::Inconclusive { .. } => inconclusive += 1,
            verdict => assert!(
                verdict.is_pass(),
                "case {case}: {text} ↦ {}: {}",
                render(&out, Style::Unicode),
                verdict.describe()
            ),
        }
    }
    // The test means something only if the pass did change many of them.
    assert!(changed >= 100, "only {changed} of 400 changed");
    assert!(inconclusive < 10, "{inconclusive} inconclusive");
}

/// The derivatives people know by heart, as printed, each with its numeric check.
#[test]
fn field_textbook_derivatives_snapshot() {
    let cases: &[(&str, &str, &str, u8)] = &[
        (
            "−sum(y ⊙ log(σ(Xw)) + (vector(1) − y) ⊙ log(vector(1) − σ(Xw)))",
            "X: n×d; y: n",
            "w",
            1,
        ),
        (
            "−sum(y ⊙ log(σ(Xw)) + (vector(1) − y) ⊙ log(vector(1) − σ(Xw)))",
            "X: n×d; y: n",
            "w",
            2,
        ),
        ("sum(softplus(Xw)) − yᵀXw", "X: n×d", "w", 2),
        ("sum(log(1 + exp(Xw))) − yᵀXw", "X: n×d", "w", 1),
        ("sum(log(1 + exp(Xw))) − yᵀXw", "X: n×d", "w", 2),
        ("sum(log(1 + exp(−y ⊙ Xw)))", "X: n×d; y: n", "w", 2),
        ("sum(σ(x))", "x: n", "x", 2),
        ("sum(tanh(x))", "x: n", "x", 2),
        ("logsumexp(x)", "x: n", "x", 2),
        ("tr(X⁴⁰)", "X: n×n", "X", 1),
        ("tr(XXXX)", "X: n×n", "X", 1),
        // Forty factors, whose adjoints read (X³⁸)ᵀXᵀ and the like: 40(Xᵀ)³⁹.
        (
            "tr(XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX)",
            "X: n×n",
            "X",
            1,
        ),
    ];
    let mut text = String::new();
    for (expr, decls, wrt, order) in cases {
        let mut session = Session::new();
        session.declare(decls).unwrap();
        let options = Options {
            order: *order,
            check: true,
            ..Options::standard()
        };
        let results = session
            .derivative(expr, &[wrt], &options)
            .unwrap_or_else(|e| panic!("{expr}: {}", e.render()));
        let result = &results[0];
        let verdict = result.check.as_ref().expect("a check was asked for");
        assert!(verdict.is_pass(), "{expr}: {}", verdict.describe());
        text += &format!(
            "$ matcalc diff '{expr}' --wrt {wrt} --order {order} --decl '{decls}'\n{}\n\n",
            result.to_text(Style::Unicode)
        );
    }
    let mut session = Session::new();
    session.declare("z: n; X: n×n").unwrap();
    // The log-softmax of a product too: its argument written twice costs less than the
    // log of a softmax, which underflows.
    for expr in [
        "log(softmax(z))",
        "log(softmax(Xz))",
        "XXXX",
        "log(1 + exp(z))",
    ] {
        let simplified = session.simplify(expr, &Options::standard()).unwrap();
        text += &format!(
            "$ matcalc simplify '{expr}'\n{}\n",
            render(&simplified.form.display, Style::Unicode)
        );
        for (name, body) in simplified.form.render_wheres(Style::Unicode) {
            text += &format!("  where {name} = {body}\n");
        }
        text += "\n";
    }
    insta::with_settings!({snapshot_path => "../snapshots/simplify", prepend_module_to_snapshot => false, omit_expression => true}, {
        insta::assert_snapshot!("textbook_derivatives", text);
    });
}
