//! Simplifier targets from the problem sheet, end to end through parse, shape and diff.
//! The before-and-after snapshot of every rule is in `tests/rules_preserve_value.rs`.

use std::collections::BTreeMap;

use matcalc::numeric::{check_equal, CheckConfig, Verdict};
use matcalc::shape::Typed;
use matcalc::simplify::lang::expr_to_rec;
use matcalc::simplify::{simplify, simplify_many, Limits, Simplified};
use matcalc::{parse, shape, Expr, Symbol};

fn sexp(expr: &Expr) -> String {
    expr_to_rec(expr).to_string()
}

fn typed(src: &str, decls: &str) -> Typed {
    let expr = parse::parse(src).unwrap();
    let mut options = parse::ParseOptions::standard();
    let decls = parse::parse_decls(decls).unwrap();
    options.fns.extend(decls.fns.iter().cloned());
    let expr = if decls.fns.is_empty() {
        expr
    } else {
        parse::parse_with(src, &options).unwrap()
    };
    shape::infer(&expr, &decls).unwrap()
}

fn gradient(typed: &Typed, wrt: &str) -> Expr {
    matcalc::diff::derivative(typed, wrt, 1).unwrap().expr
}

fn let_of(src: &str, decls: &str) -> (Symbol, Expr) {
    let options = parse::ParseOptions::standard();
    let (name, body) = parse::parse_let(src, &options).unwrap();
    let body = shape::infer(&body, &parse::parse_decls(decls).unwrap())
        .unwrap()
        .expr;
    (name, body)
}

/// `expected` parsed with the `where` names as plain variables, compared structurally.
#[track_caller]
fn assert_form(actual: &Expr, expected: &str) {
    let expected = parse::parse(expected).unwrap();
    assert_eq!(sexp(actual), sexp(&expected));
}

#[track_caller]
fn assert_equal_values(typed: &Typed, a: &Expr, b: &Expr) {
    match check_equal(typed, a, b, &CheckConfig::standard()) {
        Verdict::Pass { .. } => {}
        other => panic!("{} ≠ {}: {other:?}", sexp(a), sexp(b)),
    }
}

/// Replaces the `where` names in `expr` by their bodies, innermost definitions first.
fn expand(expr: &Expr, wheres: &[(Symbol, Expr)], typed: &Typed) -> Expr {
    let mut text = sexp(expr);
    for (name, body) in wheres.iter().rev() {
        text = replace_symbol(&text, name, &sexp(body));
    }
    let rec = text.parse().unwrap();
    let shapes = typed
        .vars
        .iter()
        .map(|(k, v)| (k.clone(), v.shape.clone()))
        .collect();
    matcalc::simplify::lang::rec_to_expr(&rec, &shapes).unwrap()
}

fn replace_symbol(text: &str, name: &str, body: &str) -> String {
    text.split_inclusive([' ', '(', ')'])
        .map(|token| {
            let bare = token.trim_end_matches([' ', '(', ')']);
            if bare == name {
                format!("{body}{}", &token[bare.len()..])
            } else {
                token.to_string()
            }
        })
        .collect()
}

fn describe(res: &Simplified) -> String {
    let mut out = format!(
        "display: {}\ncompute: {}\n",
        sexp(&res.display),
        sexp(&res.compute)
    );
    for (name, body) in &res.wheres {
        out += &format!("where {name} = {}\n", sexp(body));
    }
    out
}

#[test]
fn simplify_autoencoder_gradient_is_w_zxt_plus_xzt() {
    let loss = typed("½‖WᵀWx − x‖²", "W: m×n, x: n");
    let grad = gradient(&loss, "W");
    let res = simplify(&grad, &loss.vars, &[], &Limits::standard());
    assert_form(&res.display, "W(zxᵀ + xzᵀ)");
    assert_eq!(res.wheres.len(), 1, "{}", describe(&res));
    assert_eq!(res.wheres[0].0, "z");
    assert_form(&res.wheres[0].1, "WᵀWx − x");
    assert_form(&res.compute, "(Wz)xᵀ + (Wx)zᵀ");
    assert_equal_values(&loss, &expand(&res.display, &res.wheres, &loss), &grad);
}

#[test]
fn simplify_autoencoder_gradient_in_another_order_gives_the_same_form() {
    let loss = typed("½‖WᵀWx − x‖²", "W: m×n, x: n");
    let reordered = typed("(Wx)(WᵀWx − x)ᵀ + (x(WᵀWx − x)ᵀWᵀ)ᵀ", "W: m×n, x: n");
    let res = simplify(&reordered.expr, &loss.vars, &[], &Limits::standard());
    assert_eq!(
        res.display.size(),
        parse::parse("W(zxᵀ + xzᵀ)").unwrap().size(),
        "{}",
        describe(&res)
    );
    assert_equal_values(
        &loss,
        &expand(&res.display, &res.wheres, &loss),
        &reordered.expr,
    );
}

#[test]
fn simplify_gplvm_gradient_folds_k_and_factors() {
    let loss = typed("−c − D/2 log|αXXᵀ + β⁻¹I| − ½ tr((αXXᵀ + β⁻¹I)⁻¹YYᵀ)", "");
    let grad = gradient(&loss, "X");
    let k = let_of("K = αXXᵀ + β⁻¹I", "X: n×m");
    let res = simplify(&grad, &loss.vars, &[k], &Limits::standard());
    let target = parse::parse("αK⁻¹(YYᵀK⁻¹ − DI)X").unwrap();
    assert!(res.display.size() <= target.size(), "{}", describe(&res));
    assert_eq!(res.wheres.len(), 1);
    assert_eq!(res.wheres[0].0, "K");
    let expanded = expand(&res.display, &res.wheres, &loss);
    let reference = typed(
        "−DαK⁻¹X + αK⁻¹YYᵀK⁻¹X",
        "K: n×n sym, X: n×m, Y: n×p, α: scalar, D: scalar",
    );
    let reference = expand(&reference.expr, &res.wheres, &loss);
    assert_equal_values(&loss, &expanded, &reference);
    assert_equal_values(&loss, &expanded, &grad);
}

fn swish_network() -> (Typed, Vec<(Symbol, Expr)>) {
    let decls = "W₁: h×n, b₁: h, W₂: k×h, b₂: k, x: n, ℓ: fn";
    let loss = typed("ℓ(W₂ swish(W₁x + b₁) + b₂)", decls);
    let z1 = let_of("z₁ = W₁x + b₁", decls);
    let z2 = let_of("z₂ = W₂ swish(z₁) + b₂", decls);
    (loss, vec![z1, z2])
}

#[test]
fn simplify_swish_network_gradients_share_where_definitions() {
    let (loss, lets) = swish_network();
    let wrts = ["W₁", "b₁", "W₂", "b₂"];
    let grads: Vec<Expr> = wrts.iter().map(|w| gradient(&loss, w)).collect();
    let res = simplify_many(
        &grads,
        &loss.vars,
        &lets,
        &Limits::standard(),
        &BTreeMap::new(),
        &matcalc::limits::Deadline::never(),
    );
    let mut all = String::new();
    for (wrt, display) in wrts.iter().zip(&res.displays) {
        all += &format!("∂/∂{wrt} = {}\n", sexp(display));
    }
    for (name, body) in &res.wheres {
        all += &format!("where {name} = {}\n", sexp(body));
    }
    // No non-trivial subexpression occurs twice across the results and definitions.
    let mut seen = BTreeMap::new();
    let mut tops: Vec<&Expr> = res.displays.iter().collect();
    tops.extend(res.wheres.iter().map(|(_, body)| body));
    for top in tops {
        let mut stack = vec![top];
        while let Some(node) = stack.pop() {
            if node.size() > 2 {
                *seen.entry(sexp(node)).or_insert(0) += 1;
            }
            stack.extend(node.children().into_iter().map(|c| c.as_ref()));
        }
    }
    let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "repeated: {repeated:?}\n{all}");
    for (grad, display) in grads.iter().zip(&res.displays) {
        assert_equal_values(&loss, &expand(display, &res.wheres, &loss), grad);
    }
}

#[test]
fn simplify_stops_within_limits_on_a_large_input() {
    let loss = typed(
        "‖(A + B)(A + B)(A + B)(A + B) − (C + D)ᵀ(C + D)‖²",
        "A: n×n, B: n×n, C: n×n, D: n×n",
    );
    let grad = gradient(&loss, "A");
    let limits = Limits {
        iterations: 5,
        nodes: 2_000,
        time: std::time::Duration::from_millis(200),
        ..Limits::standard()
    };
    let res = simplify(&grad, &loss.vars, &[], &limits);
    assert!(!res.stop_reason.is_empty());
    assert_equal_values(&loss, &expand(&res.display, &res.wheres, &loss), &grad);
}

/// The networks' gradients as the command line prints them: swish′ reads
/// `σ(z) ⊙ (1 + z ⊙ (1 − σ(z)))` and σ′ reads `σ ⊙ (1 − σ)`, next to the back-propagated
/// vector, with shared `where` definitions.
#[test]
fn simplify_network_gradient_displays_snapshot() {
    use matcalc::print::Style;
    use matcalc::session::{results_text, Options, Session};
    let mut swish = Session::new();
    swish.define("z₁ = W₁x + b₁").unwrap();
    let swish_results = swish
        .derivative(
            "½‖W₂ swish(z₁) + b₂ − y‖²",
            &["W₁", "b₁", "W₂", "b₂"],
            &Options::standard(),
        )
        .unwrap();
    let sigma_results = Session::new()
        .derivative("½‖W₂σ(W₁x) − y‖²", &["W₁"], &Options::standard())
        .unwrap();
    let text = format!(
        "{}\n{}",
        results_text(&swish_results, Style::Unicode),
        results_text(&sigma_results, Style::Unicode)
    );
    insta::with_settings!({snapshot_path => "../snapshots/simplify", prepend_module_to_snapshot => false, omit_expression => true}, {
        insta::assert_snapshot!("network_gradients", text);
    });
}

/// The compute form's products are bracketed by the matrix-chain programme for the sizes
/// given: for `x: n`, `y: m`, `A: m×n`, `B: n×n` and n much larger than m, the product
/// yᵀABx costs its optimum, whichever association the input had.
#[test]
fn simplify_compute_form_bracketing_is_the_chain_optimum() {
    use matcalc::simplify::chain::{optimal_bracketing, product_flops};
    let sizes = BTreeMap::from([("m".to_string(), 3u64), ("n".to_string(), 500u64)]);
    let dims = [1.0, 3.0, 500.0, 500.0, 1.0];
    let (optimum, _) = optimal_bracketing(&dims);
    for src in ["yᵀ(A(Bx))", "((yᵀA)B)x", "(yᵀ(AB))x"] {
        let t = typed(src, "x: n; y: m; A: m×n; B: n×n");
        let res = simplify_many(
            std::slice::from_ref(&t.expr),
            &t.vars,
            &[],
            &Limits::standard(),
            &sizes,
            &matcalc::limits::Deadline::never(),
        );
        let compute = &res.computes[0];
        assert_eq!(
            product_flops(compute, &sizes),
            optimum,
            "{src}: {}",
            sexp(compute)
        );
        assert_equal_values(&t, compute, &t.expr);
    }
}

// A scalar's powers are written with one exponent, as a person writes them: the rules
// reach powers by squaring and cubing, so `α³α` was extracted as `(α²)²` and `αα⁻³`
// was left as it is. The display keeps the value (checked on random instances).
#[test]
fn simplify_writes_a_scalars_powers_with_one_exponent() {
    for (input, expected) in [
        ("α^3 α", "α⁴"),
        ("α^{-3} α", "α⁻²"),
        ("α α α α", "α⁴"),
        ("α/α^3", "α⁻²"),
        ("tr(X)^2 tr(X)", "tr(X)³"),
        // Across a whole product of scalars, a coefficient in front included.
        ("2 α β α", "2α²β"),
        ("20 α^9 α^{10}", "20α¹⁹"),
        // An exponent the parser would refuse to read back stays apart.
        ("α^{40} α^{40}", "(α⁴⁰)²"),
    ] {
        let typed = typed(input, "α: scalar, X: n×n");
        let res = simplify(&typed.expr, &typed.vars, &[], &Limits::standard());
        assert_form(&res.display, expected);
        assert!(res.wheres.is_empty(), "{input}: {}", describe(&res));
        assert_equal_values(&typed, &res.display, &typed.expr);
    }
}
