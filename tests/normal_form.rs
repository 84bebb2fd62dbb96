//! The normal form (`simplify::normal`): on random well-typed expressions it preserves
//! value (checked numerically), is idempotent, and gives byte-identical forms to inputs
//! that differ only by associativity, commutativity, scalar placement, transposes and
//! trace rotation. A snapshot shows it on readable cases.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use matcalc::expr::build;
use matcalc::numeric::{check_equal, CheckConfig};
use matcalc::print::{render, Style};
use matcalc::session::Session;
use matcalc::shape::Typed;
use matcalc::simplify::lang::expr_to_rec;
use matcalc::simplify::normal::normalise;
use matcalc::{Dim, Expr, ExprKind, Func, Props, Shape, VarDecl};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn n() -> Dim {
    Dim::Sym("n".into())
}

fn m() -> Dim {
    Dim::Sym("m".into())
}

fn vars() -> BTreeMap<String, VarDecl> {
    let decl = |rows: Dim, cols: Dim, symmetric: bool| VarDecl {
        shape: Shape::new(rows, cols),
        props: Props {
            symmetric,
            positive_definite: false,
            integer: false,
        },
    };
    BTreeMap::from([
        ("A".to_string(), decl(n(), n(), false)),
        ("B".to_string(), decl(n(), n(), false)),
        ("S".to_string(), decl(n(), n(), true)),
        ("X".to_string(), decl(n(), m(), false)),
        ("C".to_string(), decl(m(), m(), false)),
        ("x".to_string(), decl(n(), Dim::one(), false)),
        ("y".to_string(), decl(n(), Dim::one(), false)),
        ("z".to_string(), decl(m(), Dim::one(), false)),
        ("a".to_string(), decl(Dim::one(), Dim::one(), false)),
        ("b".to_string(), decl(Dim::one(), Dim::one(), false)),
    ])
}

fn var(name: &str) -> Rc<Expr> {
    build::var(name, vars()[name].shape.clone())
}

/// A random expression of the given shape, built from the variables of [`vars`].
fn random_expr(rng: &mut ChaCha8Rng, shape: &Shape, depth: u32) -> Rc<Expr> {
    let leaf = |rng: &mut ChaCha8Rng| -> Rc<Expr> {
        let (r, c) = (&shape.rows, &shape.cols);
        let names: Vec<String> = vars()
            .iter()
            .filter(|(_, d)| &d.shape.rows == r && &d.shape.cols == c)
            .map(|(name, _)| name.clone())
            .collect();
        let transposed: Vec<String> = vars()
            .iter()
            .filter(|(_, d)| &d.shape.rows == c && &d.shape.cols == r && !d.shape.is_scalar())
            .map(|(name, _)| name.clone())
            .collect();
        if shape.is_scalar() && rng.gen_bool(0.3) {
            return [
                build::int(2),
                build::int(3),
                build::constant(matcalc::expr::Rational::new(1.into(), 2.into())),
            ][rng.gen_range(0..3)]
            .clone();
        }
        if !transposed.is_empty() && (names.is_empty() || rng.gen_bool(0.3)) {
            return build::transpose(var(&transposed[rng.gen_range(0..transposed.len())]));
        }
        if shape.rows == shape.cols && !shape.is_scalar() && (names.is_empty() || rng.gen_bool(0.1))
        {
            return build::identity(shape.rows.clone());
        }
        if names.is_empty() {
            // An outer product always fits.
            let left = random_expr(rng, &Shape::vector(shape.rows.clone()), 0);
            let right = random_expr(rng, &Shape::vector(shape.cols.clone()), 0);
            return build::mul(left, build::transpose(right));
        }
        var(&names[rng.gen_range(0..names.len())])
    };
    if depth == 0 {
        return leaf(rng);
    }
    let sub = |rng: &mut ChaCha8Rng, s: &Shape| random_expr(rng, s, depth - 1);
    let square = shape.rows == shape.cols && !shape.is_scalar();
    match rng.gen_range(0..14) {
        0 | 1 => build::add(sub(rng, shape), sub(rng, shape)),
        2 => build::sub(sub(rng, shape), sub(rng, shape)),
        3 => build::neg(sub(rng, shape)),
        4..=6 => {
            let inner = [n(), m(), Dim::one()][rng.gen_range(0..3)].clone();
            let left = sub(rng, &Shape::new(shape.rows.clone(), inner.clone()));
            let right = sub(rng, &Shape::new(inner, shape.cols.clone()));
            build::mul(left, right)
        }
        7 => {
            let k = sub(rng, &Shape::scalar());
            let a = sub(rng, shape);
            if rng.gen_bool(0.5) {
                build::mul(k, a)
            } else {
                build::mul(a, k)
            }
        }
        8 => build::hadamard(sub(rng, shape), sub(rng, shape)),
        9 => build::transpose(sub(rng, &shape.transposed())),
        10 if shape.is_scalar() => {
            let side = [n(), m()][rng.gen_range(0..2)].clone();
            build::trace(sub(rng, &Shape::new(side.clone(), side)))
        }
        10 if square => {
            let f = [Func::Sigma, Func::Tanh, Func::Exp][rng.gen_range(0..3)];
            build::func(f, sub(rng, shape))
        }
        11 if square && shape.rows == n() => {
            let base = ["A", "B", "S"][rng.gen_range(0..3)];
            match rng.gen_range(0..3) {
                0 => build::inverse(var(base)),
                1 => build::pow(var(base), rng.gen_range(2..4)),
                _ => build::diag(sub(rng, &Shape::vector(n()))),
            }
        }
        12 => build::div(sub(rng, shape), build::int(2)),
        13 if shape.is_scalar() => {
            let side = Shape::new(n(), m());
            build::sum(sub(rng, &side))
        }
        _ => leaf(rng),
    }
}

/// `expr` rewritten at random by associativity, commutativity, scalar placement,
/// transposes and trace rotation: a different tree with the same normal form.
fn ac_variant(rng: &mut ChaCha8Rng, expr: &Rc<Expr>) -> Rc<Expr> {
    use ExprKind as K;
    let mut node = expr.as_ref().clone();
    for child in node.children_mut() {
        *child = ac_variant(rng, child);
    }
    let e = Rc::new(node);
    let flip = rng.gen_bool(0.5);
    match &e.kind {
        K::Add(a, b) if flip => build::add(b.clone(), a.clone()),
        K::Add(ab, c) if matches!(ab.kind, K::Add(..)) && ab.shape == c.shape => {
            let K::Add(a, b) = &ab.kind else {
                unreachable!()
            };
            if a.shape == ab.shape && b.shape == ab.shape {
                build::add(a.clone(), build::add(b.clone(), c.clone()))
            } else {
                e
            }
        }
        K::Sub(a, b) if flip => build::add(a.clone(), build::neg(b.clone())),
        K::Hadamard(a, b) if flip => build::hadamard(b.clone(), a.clone()),
        K::Mul(k, a) if flip && k.shape.is_scalar() => build::mul(a.clone(), k.clone()),
        K::Mul(ab, c) if matches!(ab.kind, K::Mul(..)) => {
            let K::Mul(a, b) = &ab.kind else {
                unreachable!()
            };
            // Only a chain of true products re-associates; a scaling inside does not.
            let chain = [a, b, c].iter().all(|f| !f.shape.is_scalar()) && !ab.shape.is_scalar();
            if chain && b.shape.cols == c.shape.rows {
                build::mul(a.clone(), build::mul(b.clone(), c.clone()))
            } else {
                e
            }
        }
        K::Transpose(inner) => match &inner.kind {
            K::Mul(a, b) => build::mul(build::transpose(b.clone()), build::transpose(a.clone())),
            K::Add(a, b) => build::add(build::transpose(a.clone()), build::transpose(b.clone())),
            K::Neg(a) => build::neg(build::transpose(a.clone())),
            K::Transpose(a) => a.clone(),
            _ => e,
        },
        K::Trace(inner) => match &inner.kind {
            K::Mul(a, b) if !a.shape.is_scalar() && !b.shape.is_scalar() => {
                build::trace(build::mul(b.clone(), a.clone()))
            }
            _ => build::trace(build::transpose(inner.clone())),
        },
        _ => e,
    }
}

fn sexpr(expr: &Expr) -> String {
    expr_to_rec(expr).to_string()
}

fn typed(expr: &Expr) -> Typed {
    Typed {
        expr: expr.clone(),
        vars: vars(),
        fns: BTreeSet::new(),
    }
}

fn random_shape(rng: &mut ChaCha8Rng) -> Shape {
    [
        Shape::new(n(), n()),
        Shape::new(n(), m()),
        Shape::vector(n()),
        Shape::scalar(),
    ][rng.gen_range(0..4)]
    .clone()
}

#[test]
fn normal_form_preserves_value_on_random_expressions() {
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    let config = CheckConfig::standard();
    let mut inconclusive = 0;
    for case in 0..300 {
        let shape = random_shape(&mut rng);
        let depth = rng.gen_range(1..5);
        let expr = random_expr(&mut rng, &shape, depth);
        let normal = normalise(&expr, &vars());
        assert_eq!(
            normal.shape,
            expr.shape,
            "case {case}: {}",
            render(&expr, Style::Unicode)
        );
        let verdict = check_equal(&typed(&expr), &normal, &expr, &config);
        // An expression undefined everywhere drawn (an inverse of a singular sum) has no
        // value to preserve; such cases must stay rare for the test to mean anything.
        if matches!(verdict, matcalc::numeric::Verdict::Inconclusive { .. }) {
            inconclusive += 1;
            continue;
        }
        assert!(
            verdict.is_pass(),
            "case {case}: {} ↦ {}: {}",
            render(&expr, Style::Unicode),
            render(&normal, Style::Unicode),
            verdict.describe()
        );
    }
    assert!(
        inconclusive < 15,
        "{inconclusive} of 300 cases inconclusive"
    );
}

#[test]
fn normal_form_is_idempotent() {
    let mut rng = ChaCha8Rng::seed_from_u64(15);
    for case in 0..500 {
        let shape = random_shape(&mut rng);
        let depth = rng.gen_range(1..6);
        let expr = random_expr(&mut rng, &shape, depth);
        let once = normalise(&expr, &vars());
        let twice = normalise(&once, &vars());
        assert_eq!(
            sexpr(&twice),
            sexpr(&once),
            "case {case}: {}",
            render(&expr, Style::Unicode)
        );
    }
}

#[test]
fn normal_form_is_the_same_for_ac_variants() {
    let mut rng = ChaCha8Rng::seed_from_u64(16);
    for case in 0..500 {
        let shape = random_shape(&mut rng);
        let depth = rng.gen_range(1..6);
        let expr = random_expr(&mut rng, &shape, depth);
        let variant = ac_variant(&mut rng, &expr);
        assert_eq!(
            sexpr(&normalise(&variant, &vars())),
            sexpr(&normalise(&expr, &vars())),
            "case {case}: {} against {}",
            sexpr(&expr),
            sexpr(&variant)
        );
    }
}

/// Readable cases, each with its normal form, checked numerically too.
#[test]
fn normal_form_snapshot() {
    let session = {
        let mut s = Session::new();
        s.declare("A: n×n; B: n×n; S: n×n sym; X: n×m; C: m×m; x: n; y: n; z: m; W: m×n; a: scalar; b: scalar")
            .unwrap();
        s
    };
    let cases = [
        "(A + B) + A",
        "B + A − B",
        "W(zᵀ(Wx))y",
        "2(a A)(3B)",
        "((AB)C₀)ᵀ",
        "(AB)ᵀ",
        "Sᵀ + S",
        "x ⊙ (y ⊙ x)",
        "𝟙 ⊙ x",
        "a ⊙ A",
        "tr(BA) + tr(AB)",
        "tr(AᵀBᵀ)",
        "tr(xyᵀ)",
        "tr(A A A A)",
        "A A A A⁻¹",
        "(2A)⁻¹",
        "((A + B)ᵀ)ᵀ",
        "σ(Xᵀ)ᵀ",
        "diag(𝟙)A",
        "xᵀy + yᵀx",
        "tr(2A − A)",
        "det(Aᵀ) + log|A⁻¹|",
        "A − A",
        "xᵀAy − yᵀAᵀx",
    ];
    let mut text = String::new();
    for case in cases {
        let case = case.replace("C₀", "B");
        let typed = session
            .typed(&case)
            .unwrap_or_else(|e| panic!("{case}: {e:?}"));
        let normal = normalise(&typed.expr, &typed.vars);
        let verdict = check_equal(&typed, &normal, &typed.expr, &CheckConfig::standard());
        assert!(verdict.is_pass(), "{case}: {}", verdict.describe());
        text += &format!("{case}  ↦  {}\n", render(&normal, Style::Unicode));
    }
    insta::with_settings!({snapshot_path => "../snapshots/simplify", prepend_module_to_snapshot => false, omit_expression => true}, {
        insta::assert_snapshot!("normal_form", text);
    });
}
