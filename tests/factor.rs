//! The factoring rewrite (`src/simplify/factor.rs`): it preserves value on random sums
//! (every e-node of every e-class it touches evaluates to its class's value), and it
//! finds, alone, with no associativity or commutativity rule, the factorings of terms
//! that are not adjacent.

use std::collections::BTreeMap;
use std::rc::Rc;

use egg::{AstSize, Extractor, Language, RecExpr, Runner};
use matcalc::expr::build;
use matcalc::numeric::{evaluate, Instance};
use matcalc::print::{render, Style};
use matcalc::simplify::analysis::{EGraph, MatAnalysis};
use matcalc::simplify::cost::DisplayCost;
use matcalc::simplify::extract::Choices;
use matcalc::simplify::factor;
use matcalc::simplify::lang::{expr_to_rec, rec_to_expr, Mat, VarShapes};
use matcalc::{Dim, Expr, Props, Shape, VarDecl};
use nalgebra::DMatrix;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const N: u64 = 3;

fn square() -> Shape {
    Shape::new(Dim::Known(N), Dim::Known(N))
}

fn column() -> Shape {
    Shape::vector(Dim::Known(N))
}

/// The variables of the random sums: four square matrices, three vectors, two scalars.
fn table() -> BTreeMap<String, VarDecl> {
    let mut vars = BTreeMap::new();
    for (names, shape) in [
        (["A", "B", "C", "D"].as_slice(), square()),
        (["x", "y", "z"].as_slice(), column()),
        (["s", "t"].as_slice(), Shape::scalar()),
    ] {
        for name in names {
            vars.insert(
                name.to_string(),
                VarDecl {
                    shape: shape.clone(),
                    props: Props::default(),
                },
            );
        }
    }
    vars
}

fn var(name: &str) -> Rc<Expr> {
    let shape = table()[name].shape.clone();
    build::var(name, shape)
}

fn values(rng: &mut ChaCha8Rng) -> BTreeMap<String, DMatrix<f64>> {
    table()
        .into_iter()
        .map(|(name, decl)| {
            let rows = decl.shape.rows.to_string().parse().unwrap_or(1);
            let cols = decl.shape.cols.to_string().parse().unwrap_or(1);
            let m = DMatrix::from_fn(rows, cols, |_, _| rng.gen_range(-1.0..1.0));
            (name, m)
        })
        .collect()
}

/// A random product of one or two letters of a small alphabet (so that terms share
/// factors), times a scalar now and then.
fn matrix_term(rng: &mut ChaCha8Rng) -> Rc<Expr> {
    let letters = ["A", "B", "C", "D"];
    let letter = |rng: &mut ChaCha8Rng| {
        let v = var(letters[rng.gen_range(0..letters.len())]);
        if rng.gen_bool(0.2) {
            build::transpose(v)
        } else {
            v
        }
    };
    let mut word = letter(rng);
    for _ in 0..rng.gen_range(0..3) {
        word = if rng.gen_bool(0.5) {
            build::mul(word, letter(rng))
        } else {
            build::mul(letter(rng), word)
        };
    }
    if rng.gen_bool(0.1) {
        word = build::mul(build::identity(Dim::Known(N)), word);
    }
    scaled(rng, word)
}

/// A Hadamard product of one to three vectors.
fn hadamard_term(rng: &mut ChaCha8Rng) -> Rc<Expr> {
    let letters = ["x", "y", "z"];
    let mut term = var(letters[rng.gen_range(0..3)]);
    for _ in 0..rng.gen_range(0..3) {
        let next = var(letters[rng.gen_range(0..3)]);
        term = if rng.gen_bool(0.5) {
            build::hadamard(term, next)
        } else {
            build::hadamard(next, term)
        };
    }
    scaled(rng, term)
}

/// An inner product `uᵀMv` or a product of scalars.
fn scalar_term(rng: &mut ChaCha8Rng) -> Rc<Expr> {
    if rng.gen_bool(0.5) {
        let letters = ["s", "t"];
        let a = var(letters[rng.gen_range(0..2)]);
        let b = var(letters[rng.gen_range(0..2)]);
        return scaled(rng, build::mul(a, b));
    }
    let vectors = ["x", "y", "z"];
    let u = build::transpose(var(vectors[rng.gen_range(0..3)]));
    let v = var(vectors[rng.gen_range(0..3)]);
    let middle = matrix_term(rng);
    let product = if rng.gen_bool(0.5) {
        build::mul(build::mul(u, middle), v)
    } else {
        build::mul(u, build::mul(middle, v))
    };
    scaled(rng, product)
}

fn scaled(rng: &mut ChaCha8Rng, term: Rc<Expr>) -> Rc<Expr> {
    match rng.gen_range(0..6) {
        0 => build::mul(build::int(rng.gen_range(2..5)), term),
        1 => build::mul(var(["s", "t"][rng.gen_range(0..2)]), term),
        2 => build::neg(term),
        _ => term,
    }
}

/// A sum of two to six terms of one family, in a random association and with random
/// signs.
fn random_sum(rng: &mut ChaCha8Rng) -> Rc<Expr> {
    let family = rng.gen_range(0..3);
    let term = |rng: &mut ChaCha8Rng| match family {
        0 => matrix_term(rng),
        1 => hadamard_term(rng),
        _ => scalar_term(rng),
    };
    let count = rng.gen_range(2..7);
    let mut terms: Vec<Rc<Expr>> = (0..count).map(|_| term(rng)).collect();
    while terms.len() > 1 {
        let at = rng.gen_range(0..terms.len() - 1);
        let b = terms.remove(at + 1);
        let a = terms.remove(at);
        let joined = if rng.gen_bool(0.3) {
            build::sub(a, b)
        } else {
            build::add(a, b)
        };
        terms.insert(at, joined);
    }
    terms.pop().expect("one term")
}

fn close(a: &DMatrix<f64>, b: &DMatrix<f64>) -> bool {
    let scale = a.iter().chain(b.iter()).fold(1.0f64, |m, v| m.max(v.abs()));
    a.shape() == b.shape() && (a - b).iter().all(|d| d.abs() <= 1e-9 * scale)
}

fn shapes() -> VarShapes {
    table()
        .into_iter()
        .map(|(name, decl)| (name, decl.shape))
        .collect()
}

/// Runs the factoring rewrite alone for `iterations` on `expr`.
fn factored_graph(expr: &Expr, iterations: usize) -> (EGraph, egg::Id) {
    let mut egraph = EGraph::new(MatAnalysis::new(table()));
    let root = egraph.add_expr(&expr_to_rec(expr));
    egraph.rebuild();
    let runner = Runner::default()
        .with_egraph(egraph)
        .with_iter_limit(iterations)
        .with_node_limit(20_000)
        .run(&factor::rules());
    let root = runner.egraph.find(root);
    (runner.egraph, root)
}

#[test]
fn factor_preserves_value_on_random_sums() {
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    let shapes = shapes();
    let mut grown = 0;
    for _ in 0..300 {
        let expr = random_sum(&mut rng);
        let instance = Instance::new(BTreeMap::new(), values(&mut rng));
        let before = expr_to_rec(&expr).as_ref().len();
        let (egraph, _) = factored_graph(&expr, 3);
        if egraph.total_size() > before {
            grown += 1;
        }
        let extractor = Extractor::new(&egraph, AstSize);
        let value_of = |rec: &RecExpr<Mat>| -> Option<DMatrix<f64>> {
            evaluate(&rec_to_expr(rec, &shapes).ok()?, &instance).ok()
        };
        for class in egraph.classes() {
            if class.data.dim.is_some() {
                continue;
            }
            let (_, best) = extractor.find_best(class.id);
            let Some(expected) = value_of(&best) else {
                continue;
            };
            for enode in &class.nodes {
                let rec = enode.build_recexpr(|id| extractor.find_best_node(id).clone());
                let Some(got) = value_of(&rec) else {
                    continue;
                };
                assert!(
                    close(&expected, &got),
                    "factoring {} put {rec} in the class of {best}: {got} ≠ {expected}",
                    render(&expr, Style::Unicode)
                );
            }
        }
    }
    // Most random sums over a small alphabet share a factor somewhere.
    assert!(grown > 150, "the rewrite added to only {grown} of 300 sums");
}

/// The display form of `src` after the factoring rewrite alone.
fn display_after_factoring(expr: &Expr) -> String {
    let (egraph, root) = factored_graph(expr, 4);
    let mut choices = Choices::new(&egraph, DisplayCost::new(&egraph));
    let rec = choices.rec(root).expect("an extraction");
    render(
        &rec_to_expr(&rec, &shapes()).expect("a tree"),
        Style::Unicode,
    )
}

/// Whether the factoring rewrite alone puts `factored` in the class of `expr`.
fn holds(expr: &Expr, factored: &Expr) -> bool {
    let (egraph, root) = factored_graph(expr, 4);
    egraph.lookup_expr(&expr_to_rec(factored)) == Some(root)
}

fn sum(terms: Vec<Rc<Expr>>) -> Rc<Expr> {
    terms.into_iter().reduce(build::add).expect("terms")
}

#[test]
fn factor_finds_factors_of_terms_that_are_not_adjacent() {
    let (a, b, c, d) = (var("A"), var("B"), var("C"), var("D"));
    let (x, y, z) = (var("x"), var("y"), var("z"));
    let t = |e: &Rc<Expr>| build::transpose(e.clone());
    let mul = |a: &Rc<Expr>, b: &Rc<Expr>| build::mul(a.clone(), b.clone());
    // Wzxᵀ + AB + Wxzᵀ = W(zxᵀ + xzᵀ) + AB, with D for W.
    let expr = sum(vec![
        mul(&mul(&d, &z), &t(&x)),
        mul(&a, &b),
        mul(&mul(&d, &x), &t(&z)),
    ]);
    assert_eq!(display_after_factoring(&expr), "D(zxᵀ + xzᵀ) + AB");
    // Right factors, with an identity left over: sC + BD + AC = (sI + A)C + BD.
    let s = var("s");
    // The display cost prefers the sum here; the factored form is in its class.
    let expr = sum(vec![mul(&s, &c), mul(&b, &d), mul(&a, &c)]);
    let identity = build::identity(Dim::Known(N));
    let factored = build::add(
        mul(&build::add(mul(&s, &identity), a.clone()), &c),
        mul(&b, &d),
    );
    assert!(holds(&expr, &factored));
    // Both sides at once: ACB + D + ADB = A(C + D)B + D.
    let expr = sum(vec![
        mul(&mul(&a, &c), &b),
        d.clone(),
        mul(&a, &mul(&d, &b)),
    ]);
    assert_eq!(display_after_factoring(&expr), "A(C + D)B + D");
    // Hadamard factors: x ⊙ y + z + x ⊙ z ⊙ y = x ⊙ y ⊙ (1 + z) + z.
    let had = |a: &Rc<Expr>, b: &Rc<Expr>| build::hadamard(a.clone(), b.clone());
    let expr = sum(vec![had(&x, &y), z.clone(), had(&had(&x, &z), &y)]);
    assert_eq!(display_after_factoring(&expr), "x ⊙ y ⊙ (1 + z) + z");
    // Scalars and coefficients: 2sA − 4sB = 2s(A − 2B).
    let expr = build::sub(
        mul(&build::int(2), &mul(&s, &a)),
        mul(&mul(&build::int(4), &s), &b),
    );
    assert_eq!(display_after_factoring(&expr), "2s(A − 2B)");
    // Inner products: xᵀAy + zᵀB + xᵀCy … as scalars, xᵀAy + xᵀCy = xᵀ(A + C)y.
    let expr = sum(vec![
        mul(&mul(&t(&x), &a), &y),
        mul(&var("t"), &var("s")),
        mul(&t(&x), &mul(&c, &y)),
    ]);
    assert_eq!(display_after_factoring(&expr), "xᵀ(A + C)y + ts");
}

/// A random tree of sums, differences, negations and Hadamard products (nested either
/// way) over vectors, scalars broadcast among them, and products.
fn random_nesting(rng: &mut ChaCha8Rng, depth: usize) -> Rc<Expr> {
    if depth == 0 || rng.gen_bool(0.25) {
        return match rng.gen_range(0..5) {
            0 => var(["s", "t"][rng.gen_range(0..2)]),
            1 => build::mul(var("A"), var(["x", "y"][rng.gen_range(0..2)])),
            2 => build::int(rng.gen_range(1..4)),
            _ => var(["x", "y", "z"][rng.gen_range(0..3)]),
        };
    }
    let a = random_nesting(rng, depth - 1);
    let b = random_nesting(rng, depth - 1);
    match rng.gen_range(0..5) {
        0 => build::add(a, b),
        1 => build::sub(a, b),
        2 => build::neg(a),
        3 => build::hadamard(a, b),
        _ => build::mul(var("B"), build::add(a, b)),
    }
}

#[test]
fn flat_sums_keep_the_value_and_never_print_longer() {
    let mut rng = ChaCha8Rng::seed_from_u64(41);
    let mut shorter = 0;
    for _ in 0..500 {
        let expr = random_nesting(&mut rng, 5);
        if expr.shape.is_scalar() {
            continue;
        }
        let flat = factor::flat_sums(&expr);
        let instance = Instance::new(BTreeMap::new(), values(&mut rng));
        // The generator does not type its trees: an ill-typed one is drawn again.
        let Ok(before) = evaluate(&expr, &instance) else {
            continue;
        };
        let after = evaluate(&flat, &instance).expect("the flat tree has a value");
        let (text, flat_text) = (render(&expr, Style::Unicode), render(&flat, Style::Unicode));
        assert!(close(&before, &after), "{text} became {flat_text}");
        assert!(
            flat_text.chars().count() <= text.chars().count(),
            "{text} became the longer {flat_text}"
        );
        if flat_text.chars().count() < text.chars().count() {
            shorter += 1;
        }
        // What is printed reads back as the tree printed, in every style.
        for style in [Style::Unicode, Style::Ascii, Style::Latex] {
            let printed = render(&flat, style);
            let back = matcalc::parse::parse(&printed).expect("the printed text parses");
            assert!(back.same_structure(&flat), "{printed} reads back otherwise");
        }
    }
    assert!(
        shorter > 100,
        "only {shorter} of the random trees printed shorter"
    );
}

#[test]
fn flat_sums_print_a_sum_of_many_terms_flat() {
    let term = |k: usize| {
        let sub: String = k
            .to_string()
            .chars()
            .map(|d| char::from_u32('₀' as u32 + d.to_digit(10).unwrap_or(0)).unwrap_or('₀'))
            .collect();
        let (a, b) = (format!("A{sub}"), format!("B{sub}"));
        build::mul(build::var(&b, square()), build::var(&a, square()))
    };
    // B₂A₂ + (B₁₀A₁₀ + (B₁A₁ − B₃A₃)), nested on the right as extraction may leave it.
    let expr = build::add(term(2), build::add(term(10), build::sub(term(1), term(3))));
    let flat = factor::flat_sums(&build::transpose(expr));
    assert_eq!(
        render(&flat, Style::Unicode),
        "(B₂A₂ + B₁₀A₁₀ + B₁A₁ − B₃A₃)ᵀ"
    );
    let x = var("x");
    let y = var("y");
    let expr = build::add(build::neg(x.clone()), y.clone());
    assert_eq!(render(&factor::flat_sums(&expr), Style::Unicode), "y − x");
    let expr = build::sub(x.clone(), build::sub(y.clone(), build::neg(var("z"))));
    assert_eq!(
        render(&factor::flat_sums(&expr), Style::Unicode),
        "x − y − z"
    );
}

#[test]
fn flat_sums_collect_like_terms_at_the_first_ones_place() {
    let (x, y, a) = (var("x"), var("y"), var("A"));
    let u = build::mul(a.clone(), x.clone());
    let show = |expr: Rc<Expr>| render(&factor::flat_sums(&expr), Style::Unicode);
    // −U − U, the Rayleigh quotient's Hessian's repeat.
    assert_eq!(show(build::sub(build::neg(u.clone()), u.clone())), "−2Ax");
    assert_eq!(
        show(build::add(
            build::add(build::mul(build::int(2), x.clone()), y.clone()),
            x.clone()
        )),
        "3x + y"
    );
    assert_eq!(
        show(build::add(
            build::sub(x.clone(), y.clone()),
            build::sub(y.clone(), u.clone())
        )),
        "x − Ax"
    );
    // Collecting x − x would leave the scalar s of a vector sum: the sum stays.
    let s = var("s");
    assert_eq!(
        show(build::add(build::sub(x.clone(), x.clone()), s.clone())),
        "x − x + s"
    );
    // A sum without like terms keeps extraction's form.
    assert_eq!(show(build::add(y.clone(), x.clone())), "y + x");
    let (flat, collected) = factor::flat_sums_collecting(&build::add(y, x.clone()));
    assert!(!collected);
    assert_eq!(render(&flat, Style::Unicode), "y + x");
}

/// Sums of terms drawn from a small pool, so that like terms recur, far apart and with
/// coefficients: collected, they keep the value and never print longer.
#[test]
fn collected_like_terms_keep_the_value_on_random_sums() {
    let mut rng = ChaCha8Rng::seed_from_u64(43);
    let mut collected_count = 0;
    for _ in 0..300 {
        let pool: Vec<Rc<Expr>> = (0..3).map(|_| matrix_term(&mut rng)).collect();
        let count = rng.gen_range(2..8);
        let mut expr = pool[rng.gen_range(0..pool.len())].clone();
        for _ in 1..count {
            let mut term = pool[rng.gen_range(0..pool.len())].clone();
            if rng.gen_bool(0.3) {
                term = build::mul(build::int(rng.gen_range(2..5)), term);
            }
            expr = if rng.gen_bool(0.4) {
                build::sub(expr, term)
            } else {
                build::add(expr, term)
            };
        }
        let (flat, collected) = factor::flat_sums_collecting(&expr);
        collected_count += usize::from(collected);
        let instance = Instance::new(BTreeMap::new(), values(&mut rng));
        let before = evaluate(&expr, &instance).expect("a typed sum has a value");
        let after = evaluate(&flat, &instance).expect("the collected sum has a value");
        let (text, flat_text) = (render(&expr, Style::Unicode), render(&flat, Style::Unicode));
        assert!(close(&before, &after), "{text} became {flat_text}");
        assert!(
            flat_text.chars().count() <= text.chars().count(),
            "{text} became the longer {flat_text}"
        );
        for style in [Style::Unicode, Style::Ascii, Style::Latex] {
            let printed = render(&flat, style);
            let back = matcalc::parse::parse(&printed).expect("the printed text parses");
            assert!(back.same_structure(&flat), "{printed} reads back otherwise");
        }
    }
    assert!(
        collected_count > 100,
        "only {collected_count} sums had like terms"
    );
}
