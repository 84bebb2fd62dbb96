//! Printer tests: every line of the expression corpus (`tests/cases/expressions.txt`)
//! printed in the three styles, snapshotted one file per expression, and parsed back to an
//! equal tree; the sheet's losses and the precedence cases pinned inline.

use std::collections::BTreeSet;

use matcalc::expr::Expr;
use matcalc::parse::{parse, parse_with, ParseOptions};
use matcalc::print::{ascii_name, latex_name, render, Style};

const STYLES: [Style; 3] = [Style::Unicode, Style::Ascii, Style::Latex];

/// Options with `ℓ` and `f` declared as opaque functions, as the corpus assumes.
fn corpus_options() -> ParseOptions {
    let mut options = ParseOptions::standard();
    options.fns = BTreeSet::from(["ℓ".to_string(), "f".to_string()]);
    options
}

#[track_caller]
fn check_parse(src: &str) -> Expr {
    match parse_with(src, &corpus_options()) {
        Ok(expr) => expr,
        Err(error) => panic!(
            "{src:?} does not parse:\n{}",
            error.diagnostic().render(src)
        ),
    }
}

/// Every rendering of `expr` that does not parse back to `expr`, described.
fn round_trip_failures(expr: &Expr) -> Vec<String> {
    let mut res = Vec::new();
    for style in STYLES {
        let text = render(expr, style);
        match parse_with(&text, &corpus_options()) {
            // A notation as written (`|A|`) prints as written and reads back the same.
            Ok(back) if back == *expr || back.same_structure(expr) => {}
            Ok(back) => res.push(format!(
                "{style:?} {text:?} parses back as {:?}",
                render(&back, Style::Unicode)
            )),
            Err(error) => res.push(format!(
                "{style:?} {text:?} does not parse:\n{}",
                error.diagnostic().render(&text)
            )),
        }
    }
    res
}

/// Checks that `src` prints as `expected` in `style` and that every style round-trips.
#[track_caller]
fn check_render(src: &str, style: Style, expected: &str) {
    let expr = check_parse(src);
    assert_eq!(
        render(&expr, style),
        expected,
        "printing {src:?} in {style:?}"
    );
    let failures = round_trip_failures(&expr);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The three renderings, one per line, as each snapshot shows them.
fn renderings(src: &str, expr: &Expr) -> String {
    format!(
        "input:   {src}\nunicode: {}\nascii:   {}\nlatex:   {}\n",
        render(expr, Style::Unicode),
        render(expr, Style::Ascii),
        render(expr, Style::Latex)
    )
}

/// A stable, readable snapshot name for a corpus line: its ASCII rendering boiled down to
/// letters and digits, plus a hash of the line so that equal trees in different
/// spellings get different files.
fn snapshot_name(src: &str, expr: &Expr) -> String {
    let mut slug = String::new();
    for c in render(expr, Style::Ascii).chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('_') {
            slug.push('_');
        }
    }
    let slug: String = slug.trim_matches('_').chars().take(32).collect();
    // FNV-1a: stable across Rust versions, unlike the standard library's hasher.
    let mut hash: u32 = 0x811c_9dc5;
    for byte in src.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("{slug}_{hash:08x}")
}

fn corpus_lines() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cases/expressions.txt");
    let text = std::fs::read_to_string(path).expect("the expression corpus is readable");
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[test]
fn print_corpus_snapshots() {
    insta::with_settings!({
        snapshot_path => "../snapshots/print",
        prepend_module_to_snapshot => false,
        omit_expression => false,
    }, {
        for line in corpus_lines() {
            let expr = check_parse(&line);
            insta::assert_snapshot!(snapshot_name(&line, &expr), renderings(&line, &expr), &line);
        }
    });
}

#[test]
fn print_corpus_round_trips() {
    let mut failures = Vec::new();
    for line in corpus_lines() {
        failures.extend(round_trip_failures(&check_parse(&line)));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn print_sheet_losses() {
    check_render("½‖WᵀWx − x‖²", Style::Unicode, "½‖WᵀWx − x‖²");
    check_render("½‖WᵀWx − x‖²", Style::Ascii, "1/2*norm(W'*W*x - x)^2");
    check_render(
        "½‖WᵀWx − x‖²",
        Style::Latex,
        r"\frac{1}{2} \|W^\top W x - x\|^2",
    );

    let gplvm = "−c − D/2 log|αXXᵀ + β⁻¹I| − ½ tr((αXXᵀ + β⁻¹I)⁻¹YYᵀ)";
    check_render(gplvm, Style::Unicode, gplvm);
    check_render(
        gplvm,
        Style::Ascii,
        "-c - D/2*logdet(alpha*X*X' + beta^-1*I) - 1/2*tr((alpha*X*X' + beta^-1*I)^-1*Y*Y')",
    );
    check_render(
        gplvm,
        Style::Latex,
        r"-c - \frac{D}{2} \log\left|\alpha X X^\top + \beta^{-1} I\right| - \frac{1}{2} \operatorname{tr}\left(\left(\alpha X X^\top + \beta^{-1} I\right)^{-1} Y Y^\top\right)",
    );

    let swish = "½‖W₂ swish(W₁x + b₁) + b₂ − y‖²";
    check_render(swish, Style::Unicode, swish);
    check_render(
        swish,
        Style::Ascii,
        "1/2*norm(W2*swish(W1*x + b1) + b2 - y)^2",
    );
    check_render(
        swish,
        Style::Latex,
        r"\frac{1}{2} \|W_{2} \operatorname{swish}\left(W_{1} x + b_{1}\right) + b_{2} - y\|^2",
    );
}

#[test]
fn print_spec_json_example() {
    let src = "W(zxᵀ + xzᵀ)";
    check_render(src, Style::Unicode, "W(zxᵀ + xzᵀ)");
    check_render(src, Style::Ascii, "W*(z*x' + x*z')");
    check_render(src, Style::Latex, r"W\left(z x^\top + x z^\top\right)");
}

#[test]
fn print_precedence_uses_fewest_parentheses() {
    check_render("−ab", Style::Unicode, "−ab");
    check_render("(−a)b", Style::Unicode, "(−a)b");
    check_render("a − (b + c)", Style::Unicode, "a − (b + c)");
    check_render("(a − b) + c", Style::Unicode, "a − b + c");
    check_render("a(bc)", Style::Unicode, "a(bc)");
    check_render("(ab)c", Style::Unicode, "abc");
    check_render("(AB)ᵀ", Style::Unicode, "(AB)ᵀ");
    check_render("y ⊙ Xw", Style::Unicode, "y ⊙ Xw");
    check_render("(y ⊙ X)w", Style::Unicode, "(y ⊙ X)w");
    check_render("−a ⊙ b", Style::Unicode, "−a ⊙ b");
    check_render("(−a) ⊙ b", Style::Unicode, "(−a) ⊙ b");
    check_render("a ⊙ (b ⊙ c)", Style::Unicode, "a ⊙ (b ⊙ c)");
    check_render("a − (−b)", Style::Unicode, "a − (−b)");
    check_render("a/(bc)", Style::Unicode, "a/(bc)");
    check_render("a(b/c)", Style::Unicode, "a(b/c)");
    check_render("(a/b)c", Style::Unicode, "a/b c");
    check_render("x·(3/7)", Style::Unicode, "x(3/7)");
    check_render("x·(3/7)", Style::Ascii, "x*(3/7)");
    check_render("x·(3/7)", Style::Latex, r"x \frac{3}{7}");
    check_render("3/7 x", Style::Unicode, "3/7 x");
    check_render("x·¾", Style::Unicode, "x·¾");
    check_render("x·¾", Style::Ascii, "x*(3/4)");
}

#[test]
fn print_nested_postfix() {
    check_render("K⁻ᵀ", Style::Unicode, "K⁻ᵀ");
    check_render("K⁻ᵀ", Style::Ascii, "K^-T");
    check_render("K⁻ᵀ", Style::Latex, r"K^{-\top}");
    check_render("(Kᵀ)⁻¹", Style::Unicode, "(Kᵀ)⁻¹");
    check_render("(Kᵀ)⁻¹", Style::Ascii, "(K')^-1");
    check_render("(Kᵀ)⁻¹", Style::Latex, r"\left(K^\top\right)^{-1}");
    check_render("(Z₃⁻ᵀ)²", Style::Unicode, "(Z₃⁻ᵀ)²");
    check_render("A¹⁰", Style::Ascii, "A^(10)");
    check_render("A¹⁰", Style::Latex, "A^{10}");
    check_render("(‖x‖²)²", Style::Unicode, "(‖x‖²)²");
    check_render("x′ᵀ", Style::Latex, r"{x^{\prime}}^\top");
}

#[test]
fn print_separators_keep_the_product() {
    check_render("x·2", Style::Unicode, "x·2");
    check_render("2x", Style::Unicode, "2x");
    check_render("2·3", Style::Unicode, "2·3");
    check_render("t·r·(x + y)", Style::Unicode, "t·r(x + y)");
    check_render("x·i", Style::Unicode, "x·i");
    check_render("e·x·p·(z + y)", Style::Unicode, "ex·p(z + y)");
    check_render("m·u", Style::Unicode, "m·u");
    check_render("σ·(a + b)", Style::Unicode, "σ·(a + b)");
    check_render(
        "σ·(a + b)",
        Style::Latex,
        r"\sigma \cdot \left(a + b\right)",
    );
    check_render("‖a·‖x‖²‖²", Style::Unicode, "‖a·‖x‖²‖²");
    check_render("log|a·‖x‖²|", Style::Unicode, "log|a·‖x‖²|");
    check_render("x tr(A)", Style::Unicode, "x tr(A)");
}

#[test]
fn print_functions_and_constants() {
    let src =
        "σ(z) + exp(z) + log(z) + tanh(z) + swish(z) + relu(z) + softplus(z) + sqrt(z) + step(z)";
    check_render(src, Style::Unicode, src);
    check_render(
        src,
        Style::Ascii,
        "sigma(z) + exp(z) + log(z) + tanh(z) + swish(z) + relu(z) + softplus(z) + sqrt(z) + step(z)",
    );
    check_render(
        src,
        Style::Latex,
        r"\sigma\left(z\right) + \exp\left(z\right) + \log\left(z\right) + \tanh\left(z\right) + \operatorname{swish}\left(z\right) + \operatorname{relu}\left(z\right) + \operatorname{softplus}\left(z\right) + \sqrt{z} + \operatorname{step}\left(z\right)",
    );
    let src = "tr(A) + det(A) + log|A| + sum(A) + 𝟙ᵀ diag(x)𝟙 + ‖I‖²";
    check_render(src, Style::Unicode, src);
    check_render(
        src,
        Style::Ascii,
        "tr(A) + det(A) + logdet(A) + sum(A) + ones'*diag(x)*ones + norm(I)^2",
    );
    check_render(
        src,
        Style::Latex,
        r"\operatorname{tr}\left(A\right) + \det\left(A\right) + \log\left|A\right| + \operatorname{sum}\left(A\right) + \mathbf{1}^\top \operatorname{diag}\left(x\right) \mathbf{1} + \|I\|^2",
    );
    check_render("∇ℓ(v) + ℓ(Wx)", Style::Unicode, "∇ℓ(v) + ℓ(Wx)");
    check_render("∇ℓ(v) + ℓ(Wx)", Style::Ascii, "grad ell(v) + ell(W*x)");
    check_render(
        "∇ℓ(v) + ℓ(Wx)",
        Style::Latex,
        r"\nabla \ell\left(v\right) + \ell\left(W x\right)",
    );
}

#[test]
fn print_names() {
    assert_eq!(ascii_name("α"), "alpha");
    assert_eq!(ascii_name("Σ"), "Sigma");
    assert_eq!(ascii_name("λ"), "lambda");
    assert_eq!(ascii_name("W₁"), "W1");
    assert_eq!(ascii_name("ℓ"), "ell");
    assert_eq!(ascii_name("x′"), "x′");
    assert_eq!(latex_name("α"), r"\alpha");
    assert_eq!(latex_name("W₁"), "W_{1}");
    assert_eq!(latex_name("ℓ"), r"\ell");
    check_render("αΣλ₁W₁₂", Style::Ascii, "alpha*Sigma*lambda1*W12");
    check_render("αΣλ₁W₁₂", Style::Latex, r"\alpha \Sigma \lambda_{1} W_{12}");
}

#[test]
fn print_parses_without_declared_functions() {
    // Without declarations `f(x)` is a product, and prints back as one.
    let expr = parse("f(x + y)").expect("a product parses");
    assert_eq!(render(&expr, Style::Unicode), "f(x + y)");
    assert_eq!(render(&expr, Style::Ascii), "f*(x + y)");
}
