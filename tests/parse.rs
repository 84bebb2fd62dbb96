//! Parser tests: the expression corpus snapshotted as S-expressions, the three spellings
//! of the sheet's expressions parsing to equal trees, the error corpus snapshotted as
//! rendered diagnostics, limits, declarations, definitions, and no-panic properties.

use std::collections::BTreeSet;

use matcalc::expr::{Dim, Expr, ExprKind, Func, Rational, Shape, Span};
use matcalc::parse::{
    did_you_mean, juxtaposition_is_safe, parse, parse_decls, parse_let, parse_with, Error, Limits,
    ParseOptions,
};
use proptest::prelude::*;

/// The tree as a one-line S-expression: `(mul (T W) x)`.
fn sexpr(expr: &Expr) -> String {
    let node = |name: &str| {
        let parts: Vec<String> = expr
            .children()
            .into_iter()
            .map(|child| sexpr(child))
            .collect();
        format!("({name} {})", parts.join(" "))
    };
    match &expr.kind {
        ExprKind::Num(q) => q.to_string(),
        ExprKind::Var(name) => name.clone(),
        ExprKind::Identity => "I".to_string(),
        ExprKind::Ones => "𝟙".to_string(),
        ExprKind::Size(name) => format!("#{name}"),
        ExprKind::Differential(name) => format!("d{name}"),
        ExprKind::Neg(_) => node("neg"),
        ExprKind::Add(..) => node("add"),
        ExprKind::Sub(..) => node("sub"),
        ExprKind::Mul(..) => node("mul"),
        ExprKind::Div(..) => node("div"),
        ExprKind::Hadamard(..) => node("hadamard"),
        ExprKind::Transpose(_) => node("T"),
        ExprKind::Inverse(_) => node("inv"),
        ExprKind::Pow(_, k) => node(&format!("pow {k}")),
        ExprKind::Trace(_) => node("tr"),
        ExprKind::Det(_) => node("det"),
        ExprKind::LogDet(_) => node("logdet"),
        ExprKind::NormSq(_) => node("normsq"),
        ExprKind::Diag(_) => node("diag"),
        ExprKind::Sum(_) => node("sum"),
        ExprKind::Func(f, _) => node(f.name()),
        ExprKind::Apply(f, _) => node(&format!("apply {f}")),
        ExprKind::Grad(f, _) => node(&format!("grad {f}")),
        ExprKind::Kron(..) => node("kron"),
        ExprKind::Vectorize(_) => node("vec"),
        ExprKind::Commutation(m, n) => format!("(K {m} {n})"),
        ExprKind::Norm(_, kind) => node(&format!("norm {kind:?}")),
        ExprKind::ElemDiv(..) => node("ediv"),
        ExprKind::ElemPow(_, q) => node(&format!("epow {q}")),
        ExprKind::PowSym(_, k, offset) => node(&format!("powsym {k} {offset}")),
        ExprKind::Softmax(_) => node("softmax"),
        ExprKind::LogSumExp(_) => node("logsumexp"),
        ExprKind::Written(_, notation) => node(&format!("written {notation:?}")),
    }
}

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

#[track_caller]
fn check_sexpr(src: &str, expected: &str) {
    assert_eq!(sexpr(&check_parse(src)), expected, "parsing {src:?}");
}

#[track_caller]
fn check_error(src: &str) -> Error {
    match parse(src) {
        Ok(expr) => panic!("{src:?} parsed as {}, expected an error", sexpr(&expr)),
        Err(error) => error,
    }
}

#[track_caller]
fn check_same_tree(spellings: &[&str]) {
    // Compared once typed: a notation whose meaning depends on shapes (`|A|` is det(A)
    // of a matrix, `‖x‖₂` a vector norm) is resolved by inference.
    let typed = |tree: &Expr| {
        let decls = matcalc::Decls {
            fns: corpus_options().fns,
            ..Default::default()
        };
        matcalc::shape::infer(tree, &decls)
            .map(|typed| sexpr(&typed.expr))
            .map_err(|error| error.message())
    };
    let first = check_parse(spellings[0]);
    for other in &spellings[1..] {
        let tree = check_parse(other);
        assert_eq!(
            typed(&first),
            typed(&tree),
            "{:?} and {other:?} parse differently",
            spellings[0]
        );
    }
}

fn corpus_lines() -> Vec<String> {
    let text = include_str!("cases/expressions.txt");
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[test]
fn parse_corpus_snapshot() {
    let lines = corpus_lines();
    assert!(
        lines.len() >= 70,
        "the corpus has only {} lines",
        lines.len()
    );
    let mut text = String::new();
    for line in &lines {
        text += &format!("{line}\n    {}\n", sexpr(&check_parse(line)));
    }
    insta::with_settings!({
        snapshot_path => "../snapshots/parse",
        prepend_module_to_snapshot => false,
        omit_expression => false,
    }, {
        insta::assert_snapshot!("expressions", text, "tests/cases/expressions.txt");
    });
}

/// The sheet's expressions: Unicode, ASCII and LaTeX (as on the sheet, typos fixed).
const SHEET_SPELLINGS: [[&str; 3]; 13] = [
    [
        "½‖WᵀWx − x‖²",
        "1/2*norm(W'*W*x - x)^2",
        r"\frac{1}{2} \|\mathbf{W}^T \mathbf{Wx} - \mathbf{x}\|^2",
    ],
    [
        "−c − D/2 log|αXXᵀ + β⁻¹I| − ½ tr((αXXᵀ + β⁻¹I)⁻¹YYᵀ)",
        "-c - D/2*logdet(alpha*X*X' + beta^-1*I) - 1/2*tr(inv(alpha*X*X' + beta^-1*I)*Y*Y')",
        r"-c - \frac{D}{2} \log |\alpha \mathbf{X} \mathbf{X}^T + \beta^{-1} \mathbf{I}| - \frac{1}{2} \text{tr}((\alpha \mathbf{X} \mathbf{X}^T + \beta^{-1} \mathbf{I})^{-1} \mathbf{Y} \mathbf{Y}^T)",
    ],
    [
        "−D/2 log|αXXᵀ + β⁻¹I|",
        "-D/2*logdet(alpha*X*X' + beta^-1*I)",
        r"-\frac{D}{2} \log |\alpha \mathbf{X} \mathbf{X}^T + \beta^{-1} \mathbf{I}|",
    ],
    [
        "−½ tr((αXXᵀ + β⁻¹I)⁻¹YYᵀ)",
        "-1/2*tr(inv(alpha*X*X' + beta^-1*I)*Y*Y')",
        r"-\frac{1}{2} \text{tr}((\alpha XX^T + \beta^{-1} I)^{-1} \cdot YY^T)",
    ],
    [
        "½‖W₂ swish(W₁x + b₁) + b₂ − y‖²",
        "1/2*norm(W2*swish(W1*x + b1) + b2 - y)^2",
        r"\frac{1}{2} \|W_2 \text{swish}(W_1 x + b_1) + b_2 - y\|^2",
    ],
    [
        "w·z₂·xᵀ + w·x·z₂ᵀ",
        "w*z_2*x' + w*x*z_2'",
        r"\mathbf{w} \cdot z_2 \cdot x^T + \mathbf{w} \cdot x \cdot z_2^T",
    ],
    [
        "w((wᵀwx − x)xᵀ + x(wᵀwx − x)ᵀ)",
        "w*((w'*w*x - x)*x' + x*(w'*w*x - x)')",
        r"\mathbf{w} \left((\mathbf{w}^T \mathbf{w} \mathbf{x} - \mathbf{x}) \mathbf{x}^T + \mathbf{x} (\mathbf{w}^T \mathbf{w} \mathbf{x} - \mathbf{x})^T \right)",
    ],
    [
        "−D/2 (Z₁ᵀ)⁻¹",
        "-D/2*inv(Z_1')",
        r"-\frac{D}{2} (\mathbf{Z}_1^T)^{-1}",
    ],
    [
        "−Dα(XXᵀα + β⁻¹I)⁻¹X",
        "-D*alpha*inv(X*X'*alpha + beta^-1*I)*X",
        r"-D\alpha (\mathbf{X}\mathbf{X}^T \alpha + \beta^{-1}\mathbf{I})^{-1}\mathbf{X}",
    ],
    [
        "α/2 ((Z₃⁻ᵀ)²YYᵀ + YYᵀ(Z₃⁻ᵀ)²)X",
        "alpha/2*((Z_3^-T)^2*Y*Y' + Y*Y'*(Z_3^-T)^2)*X",
        r"\frac{\alpha}{2} ((Z_3^{-T})^2 YY^T + YY^T (Z_3^{-T})^2) X",
    ],
    [
        "αXXᵀ + β⁻¹I",
        "alpha*X*X' + beta^-1*I",
        r"\alpha XX^T + \beta^{-1} I",
    ],
    [
        "σ(z₁) + z₁(1 − σ(z₁))",
        "sigma(z1) + z1*(1 - sigma(z1))",
        r"\sigma(z_1) + z_1(1 - \sigma(z_1))",
    ],
    [
        "diag(σ(z₁) + z₁ ⊙ (1 − σ(z₁)))W₂ᵀg",
        "diag(sigmoid(z_1) + z_1 .* (1 - sigmoid(z_1)))*W_2'*g",
        r"\text{diag}(\sigma(z_1) + z_1 \odot (1 - \sigma(z_1))) W_2^T g",
    ],
];

#[test]
fn parse_sheet_spellings_give_equal_trees() {
    for spellings in SHEET_SPELLINGS {
        check_same_tree(&spellings);
    }
}

/// The sheet's evident typos, as (sheet text, fixed text): `\beta^T I` is `\beta^{-1} I`
/// (the kernel's noise term everywhere else on the sheet) and `a` is `\alpha`.
const SHEET_TYPO_FIXES: [(&str, &str); 3] = [
    (
        r"-\frac{1}{2} \text{tr}((\alpha XX^T + \beta^T I)^{-1} \cdot YY^T)",
        r"-\frac{1}{2} \text{tr}((\alpha XX^T + \beta^{-1} I)^{-1} \cdot YY^T)",
    ),
    (
        r"-D \cdot a \cdot (XX^T \cdot a + \beta^T I)^{-1} X",
        r"-D \cdot \alpha \cdot (XX^T \cdot \alpha + \beta^{-1} I)^{-1} X",
    ),
    (r"\alpha XX^T + \beta^T I", r"\alpha XX^T + \beta^{-1} I"),
];

#[test]
fn parse_sheet_typos_parse_but_differ_from_fixes() {
    for (sheet, fixed) in SHEET_TYPO_FIXES {
        assert_ne!(check_parse(sheet), check_parse(fixed), "{sheet:?}");
    }
    check_same_tree(&[SHEET_TYPO_FIXES[1].1, "−Dα(XXᵀα + β⁻¹I)⁻¹X"]);
    check_same_tree(&[SHEET_TYPO_FIXES[2].1, "αXXᵀ + β⁻¹I"]);
}

/// Each row of SPEC §2's notation table, every spelling of one concept.
const SPEC_TABLE_SPELLINGS: &[&[&str]] = &[
    &[
        "WᵀWx",
        "W' W x",
        "W'*W*x",
        "Wᵀ·W·x",
        r"W^T W x",
        r"W^\top \cdot W \cdot x",
    ],
    &["Wᵀ", "W'", "W^T", r"W^\top", r"W^{\top}"],
    &["K⁻¹", "K^-1", "K^{-1}", "inv(K)", "K^{−1}"],
    &["K⁻ᵀ", "K^-T", "K^{-T}", r"K^{-\top}"],
    &["A²", "A^2", "A^{2}"],
    &["K⁻²", "K^-2", "K^{-2}"],
    &[
        "‖x‖²",
        "norm(x)^2",
        "||x||^2",
        r"\|x\|^2",
        r"\lVert x \rVert^2",
        r"\left\| x \right\|^2",
    ],
    &["½", "1/2", "0.5", r"\frac{1}{2}", r"\tfrac12"],
    &["⅓x", "1/3 x", r"\frac{1}{3} x"],
    &["3/4", "¾", "0.75", r"\frac{3}{4}"],
    &["a ⊙ b", "a ∘ b", "a .* b", r"a \odot b", r"a \circ b"],
    &[
        "tr(A)",
        "trace(A)",
        r"\operatorname{tr}(A)",
        r"\mathrm{tr}(A)",
        r"\text{tr}(A)",
        "tr A",
    ],
    &["det(A)", "|A|", r"\det A", r"\det(A)", r"\left| A \right|"],
    &[
        "log|A|",
        "log det A",
        "logdet(A)",
        r"\log |A|",
        r"\log\det A",
        r"\log \left| A \right|",
    ],
    &[
        "σ(z)",
        "sigma(z)",
        "sigmoid(z)",
        r"\sigma(z)",
        r"\sigma\left(z\right)",
    ],
    &["exp(x)", r"\exp(x)", r"\exp x"],
    &["log(x)", r"\log(x)"],
    &["sqrt(x)", r"\sqrt{x}", "√x"],
    &["diag(x)", r"\operatorname{diag}(x)", r"\text{diag}(x)"],
    &[
        "α β W₁",
        "alpha beta W1",
        "alpha beta W_1",
        r"\alpha \beta W_1",
        r"\alpha \beta W_{1}",
    ],
    &["Σ", "Sigma", r"\Sigma"],
    &["ℓ", "ell", r"\ell"],
    &["λ", "lambda", r"\lambda"],
    &[
        "Wx",
        r"\mathbf{Wx}",
        r"\mathbf{W}\mathbf{x}",
        r"\boldsymbol{W} x",
    ],
    &[
        "(a + b)c",
        r"\left( a + b \right) c",
        "{a + b} c",
        "[a + b] c",
    ],
    &["𝟙", "ones", r"\mathbf{1}"],
    &["I", r"\mathbf{I}"],
    &["∇ℓ(v)", "grad ell(v)", r"\nabla \ell(v)"],
];

#[test]
fn parse_spec_table_spellings_give_equal_trees() {
    for spellings in SPEC_TABLE_SPELLINGS {
        check_same_tree(spellings);
    }
}

#[test]
fn parse_products_and_precedence() {
    check_sexpr("xᵀy", "(mul (T x) y)");
    check_sexpr("aᵀXb", "(mul (mul (T a) X) b)");
    check_sexpr("βᵀ", "(T β)");
    check_sexpr("tr(AXB)", "(tr (mul (mul A X) B))");
    check_sexpr("XXᵀ", "(mul X (T X))");
    check_sexpr("Wx", "(mul W x)");
    check_sexpr("2x", "(mul 2 x)");
    check_sexpr("x y", "(mul x y)");
    check_sexpr("W' W x", "(mul (mul (T W) W) x)");
    check_sexpr("−ab", "(neg (mul a b))");
    check_sexpr(
        "−c − D/2 log|K|",
        "(sub (neg c) (mul (div D 2) (logdet K)))",
    );
    check_sexpr("y ⊙ Xw", "(hadamard y (mul X w))");
    check_sexpr("−a ⊙ b + c", "(add (neg (hadamard a b)) c)");
    check_sexpr("a − b − c", "(sub (sub a b) c)");
    check_sexpr("a/b/c", "(div (div a b) c)");
    check_sexpr("a(b+c)ᵀ", "(mul a (T (add b c)))");
    check_sexpr("x·y * z", "(mul (mul x y) z)");
    check_sexpr("W^Tx", "(mul (T W) x)");
    check_sexpr("x^23", "(pow 23 x)");
    check_sexpr(r"\det A^{-1}", "(det (inv A))");
    check_sexpr(r"\det(A)^2", "(pow 2 (det A))");
    check_sexpr("tr(A)B", "(mul (tr A) B)");
    check_sexpr("σ x", "(mul σ x)");
}

#[test]
fn parse_unbraced_exponents_are_whole_integers() {
    for spellings in [
        &["A^12", "A^{12}", "A^(12)", "A¹²"][..],
        &["A^-12", "A^−12", "A^{-12}", "A⁻¹²"],
        &["A^10x", "A¹⁰x", "A^{10} x"],
    ] {
        check_same_tree(spellings);
    }
    check_sexpr("A^12", "(pow 12 A)");
    check_sexpr("A^-12", "(pow -12 A)");
    check_sexpr("A^2 3", "(mul (pow 2 A) 3)");
    // The exponent limit sees the whole exponent, never its first digit.
    for text in ["A^1000000", "tr(A^1000000)", "A^-65", "A¹⁰⁰⁰⁰⁰⁰"] {
        let error = check_error(text);
        assert!(
            matches!(error, Error::ExponentTooLarge { max: 64, .. }),
            "{text}: {error:?}"
        );
    }
    let error = check_error("tr(A^1000000)");
    assert_eq!(error.span(), Some(Span::new(4, 12)));
    // `‖x‖^23` is no square norm: the exponent is 23, of the norm.
    check_sexpr("‖x‖^23", "(pow 23 (norm Two x))");
}

#[test]
fn parse_numbers_are_exact() {
    let half = Rational::new(1.into(), 2.into());
    for src in ["½", "1/2", "0.5", r"\frac{1}{2}", "2/4"] {
        assert_eq!(
            parse(src).map(|e| e.kind),
            Ok(ExprKind::Num(half.clone())),
            "{src}"
        );
    }
    check_sexpr("1/2/3", "1/6");
    check_sexpr("1/0", "(div 1 0)");
    check_sexpr("D/2", "(div D 2)");
    check_sexpr("-2", "(neg 2)");
}

#[test]
fn parse_opaque_functions_need_declaring() {
    check_sexpr("ℓ(v)ᵀ", "(T (apply ℓ v))");
    check_sexpr("2f(x)", "(mul 2 (apply f x))");
    check_sexpr("f·(x)", "(mul f x)");
    check_sexpr("fᵀ(x)", "(mul (T f) x)");
    assert_eq!(sexpr(&parse("f(x)").unwrap()), "(mul f x)");
    assert_eq!(sexpr(&parse("g(x + y)ᵀ").unwrap()), "(mul g (T (add x y)))");
}

#[test]
fn parse_every_node_has_a_span() {
    let src = "½‖WᵀWx − x‖² + tr(K⁻¹)";
    let expr = parse(src).unwrap();
    assert_eq!(expr.span, Some(Span::new(0, src.len())));
    let mut stack = vec![&expr];
    while let Some(node) = stack.pop() {
        let span = node.span.expect("every parsed node has a span");
        assert!(span.start <= span.end && span.end as usize <= src.len());
        stack.extend(node.children().into_iter().map(|child| child.as_ref()));
    }
    let sum = parse("a + bc").unwrap();
    if let ExprKind::Add(_, product) = &sum.kind {
        assert_eq!(product.span, Some(Span::new(4, 6)));
    } else {
        panic!("not a sum");
    }
}

#[test]
fn parse_decls_all_spellings() {
    let decls = parse_decls(
        r"W: m×n, x: n; D: scalar; K: n×n sym; S: n×n spd; V: m x n, U: ℝ^{m×n}; T: R^(m,n); Q: \mathbb{R}^{m \times n}; ℓ: fn; M: 3×4; y: ℝ^n; α: ℝ",
    )
    .unwrap();
    let shape = |name: &str| decls.vars[name].shape.clone();
    let m = || Dim::Sym("m".into());
    let n = || Dim::Sym("n".into());
    assert_eq!(shape("W"), Shape::new(m(), n()));
    assert_eq!(shape("x"), Shape::vector(n()));
    assert_eq!(shape("D"), Shape::scalar());
    for name in ["V", "U", "T", "Q"] {
        assert_eq!(shape(name), Shape::new(m(), n()), "{name}");
    }
    assert_eq!(shape("M"), Shape::new(Dim::Known(3), Dim::Known(4)));
    assert_eq!(shape("y"), Shape::vector(n()));
    assert_eq!(shape("α"), Shape::scalar());
    assert!(decls.vars["K"].props.symmetric && !decls.vars["K"].props.positive_definite);
    assert!(decls.vars["S"].props.symmetric && decls.vars["S"].props.positive_definite);
    assert!(decls.fns.contains("ℓ"));
    assert_eq!(parse_decls("").unwrap(), matcalc::expr::Decls::new());
    assert_eq!(
        parse_decls("W_1: m×n").unwrap().vars["W₁"].shape,
        Shape::new(m(), n())
    );
}

#[test]
fn parse_decls_rejects_nonsense() {
    assert!(matches!(
        parse_decls("W: m×n sym"),
        Err(Error::InvalidDeclaration { .. })
    ));
    assert!(matches!(
        parse_decls("W: 0×n"),
        Err(Error::InvalidDeclaration { .. })
    ));
    assert!(matches!(parse_decls("W m×n"), Err(Error::Syntax { .. })));
    assert!(matches!(parse_decls("W: m×"), Err(Error::Syntax { .. })));
}

#[test]
fn parse_let_definitions() {
    let options = ParseOptions::standard();
    let (name, expr) = parse_let("z₁ = W₁x + b₁", &options).unwrap();
    assert_eq!(name, "z₁");
    assert_eq!(sexpr(&expr), "(add (mul W₁ x) b₁)");
    let (name, expr) = parse_let("let h_1 = swish(z_1)", &options).unwrap();
    assert_eq!(name, "h₁");
    assert_eq!(
        expr.kind,
        ExprKind::Func(Func::Swish, parse("z₁").unwrap().into())
    );
    let (name, _) = parse_let(r"Z_3 = \alpha XX^T + \beta^{-1} I", &options).unwrap();
    assert_eq!(name, "Z₃");
    assert!(parse_let("z₁ + 1", &options).is_err());
}

#[test]
fn parse_errors_name_things_in_human_terms() {
    let error = check_error("x +");
    assert_eq!(
        error.to_string(),
        "unexpected end of input: expected a variable, a number or '('"
    );
    let error = check_error("x ** 2");
    assert!(error
        .diagnostic()
        .hints
        .iter()
        .any(|hint| hint.contains("did you mean ^?")));
    let error = check_error("sigmod(z)");
    assert_eq!(
        error,
        Error::UnknownFunction {
            name: "sigmod".to_string(),
            span: Span::new(0, 6),
            suggestion: Some("sigmoid".to_string()),
            hint: None,
        }
    );
    // Norms other than ‖·‖₁, ‖·‖₂ and ‖·‖_F are refused in words, never misread.
    // The hint names what can be written instead, with the norm's own argument.
    let known = "matcalc knows ‖x‖₁, ‖x‖ (= ‖x‖₂) and ‖·‖_F";
    for (text, message, hint) in [
        (
            "‖x‖₃",
            "unsupported: the 3-norm ‖·‖₃",
            format!("‖x‖₃ is sum(abs(x)^{{∘3}})^{{1/3}}, which matcalc can differentiate; {known}"),
        ),
        (
            r"\|x\|_3",
            "unsupported: the 3-norm ‖·‖₃",
            format!("‖x‖₃ is sum(abs(x)^{{∘3}})^{{1/3}}, which matcalc can differentiate; {known}"),
        ),
        (
            r"\|x\|_\infty",
            "unsupported: the norm ‖·‖_∞",
            known.to_string(),
        ),
        (
            "||x||_p^2",
            "unsupported: the norm ‖·‖_p with a symbolic subscript",
            format!(
                "for a number p ≥ 3, write sum(abs(x)^{{∘p}})^{{1/p}} with that number; {known}"
            ),
        ),
        (
            "‖Wx − y‖₄",
            "unsupported: the 4-norm ‖·‖₄",
            "‖Wx − y‖₄ is sum(abs(Wx − y)^{∘4})^{1/4}, which matcalc can differentiate; \
             matcalc knows ‖Wx − y‖₁, ‖Wx − y‖ (= ‖Wx − y‖₂) and ‖·‖_F"
                .to_string(),
        ),
    ] {
        let error = check_error(text);
        assert_eq!(error.to_string(), message, "{text}");
        assert_eq!(error.diagnostic().hints, vec![hint], "{text}");
    }
    let error = check_error("(a + b");
    assert!(error.to_string().contains("')'"), "{error}");
    assert!(matches!(
        check_error("x^{99999999999999999999999}"),
        Error::InvalidNumber { .. }
    ));
    assert!(matches!(check_error(""), Error::Syntax { .. }));
}

#[test]
fn parse_did_you_mean_suggests_close_names() {
    let names = ["sigma", "exp", "log", "tanh", "trace", "tr", "diag"];
    assert_eq!(did_you_mean("sigmod", &names), Some("sigma"));
    assert_eq!(did_you_mean("tarce", &names), Some("trace"));
    assert_eq!(did_you_mean("tanhh", &names), Some("tanh"));
    assert_eq!(did_you_mean("dag", &names), Some("diag"));
    assert_eq!(did_you_mean("banana", &names), None);
    assert_eq!(did_you_mean("", &names), None);
    assert_eq!(did_you_mean("sigma", &[]), None);
}

#[test]
fn parse_unknown_function_check_leaves_products_alone() {
    check_sexpr("xexp(y)", "(mul x (exp y))");
    check_sexpr("abc·(x)", "(mul (mul (mul a b) c) x)");
    check_sexpr("Wx(y)", "(mul (mul W x) y)");
    check_sexpr("alpha(x)", "(mul α x)");
    check_sexpr("alphax(y)", "(mul (mul α x) y)");
    assert!(matches!(
        check_error("ReLU(z)"),
        Error::UnknownFunction { .. }
    ));
    assert!(matches!(
        check_error("tanhh(z)"),
        Error::UnknownFunction { .. }
    ));
}

#[test]
fn parse_unknown_function_check_reads_the_end_of_a_letter_run() {
    // A run of letters before `(` that ends with a near miss of a function name is that
    // misspelt name after a product of letters, not seven variables: `dle` then `tiag`.
    for (text, name, start, suggestion) in [
        ("dletiag(I)", "tiag", 3, "diag"),
        ("xdaig(v)", "daig", 1, "diag"),
        ("xsigmod(z)", "sigmod", 1, "sigmoid"),
        ("Wxtanhh(z)", "tanhh", 2, "tanh"),
        ("xTrace(A)", "Trace", 1, "trace"),
    ] {
        assert_eq!(
            check_error(text),
            Error::UnknownFunction {
                name: name.to_string(),
                span: Span::new(start, start + name.len()),
                suggestion: Some(suggestion.to_string()),
                hint: None,
            },
            "{text}"
        );
    }
    // A run that ends with a known name is a product ending in a call; any other run of
    // lower-case letters before `(` is an unknown function, never a product (SPEC §2).
    check_sexpr("xdiag(I)", "(mul x (diag I))");
    check_sexpr("atr(A)", "(mul a (tr A))");
    check_sexpr("alogdet(A)", "(mul a (logdet A))");
    for (text, name) in [("abcd(x)", "abcd"), ("foo(x)", "foo"), ("xy(z)", "xy")] {
        assert_eq!(
            check_error(text),
            Error::UnknownFunction {
                name: name.to_string(),
                span: Span::new(0, name.len()),
                suggestion: None,
                hint: None,
            },
            "{text}"
        );
    }
    check_sexpr(
        "dletiag·(x)",
        "(mul (mul (mul (mul (mul (mul (mul d l) e) t) i) a) g) x)",
    );
}

fn big_limits() -> ParseOptions {
    let mut options = ParseOptions::standard();
    options.limits = Limits {
        max_input_len: 1_000_000,
        ..Limits::standard()
    };
    options
}

#[test]
fn parse_limits_give_clean_errors() {
    let deep = format!("{}x{}", "(".repeat(100_000), ")".repeat(100_000));
    assert!(matches!(
        parse_with(&deep, &big_limits()),
        Err(Error::NestingTooDeep { .. })
    ));
    assert!(matches!(parse(&deep), Err(Error::InputTooLong { .. })));
    let negations = format!("{}x", "−".repeat(100_000));
    assert!(matches!(
        parse_with(&negations, &big_limits()),
        Err(Error::OperatorRunTooLong { .. })
    ));
    let transposes = format!("x{}", "'".repeat(100_000));
    assert!(matches!(
        parse_with(&transposes, &big_limits()),
        Err(Error::OperatorRunTooLong { .. })
    ));
    let bars = format!("{}x{}", "|".repeat(50_000), "|".repeat(50_000));
    assert!(parse_with(&bars, &big_limits()).is_err());
    let dets = format!("{}A", r"\det ".repeat(50_000));
    assert!(parse_with(&dets, &big_limits()).is_err());
    for pathological in [
        "|a".repeat(60),
        "‖a".repeat(60),
        "||a".repeat(60),
        "a|b".repeat(200),
    ] {
        let _ = parse(&pathological);
    }
    // A flat chain is one level of nesting; its length is bounded apart.
    let sum = vec!["x"; 2_000].join(" + ");
    assert!(parse(&sum).is_ok());
    let sum = vec!["x"; 20_000].join(" + ");
    assert!(matches!(
        parse_with(&sum, &big_limits()),
        Err(Error::TooComplex { .. })
    ));
    let braces = format!("{}x{}", r"\mathbf{".repeat(100), "}".repeat(100));
    assert_eq!(parse(&braces), parse("x"));
    let just_within = format!("{}x{}", "(".repeat(128), ")".repeat(128));
    assert_eq!(parse(&just_within), parse("x"));
}

#[test]
fn parse_error_snapshots() {
    insta::glob!("cases/parse_error/*.txt", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let src = text.strip_suffix('\n').unwrap_or(&text);
        let rendered = match parse(src) {
            Ok(expr) => format!("unexpectedly parsed: {}", sexpr(&expr)),
            Err(error) => error.diagnostic().render(src),
        };
        let shown = if src.len() > 200 {
            let cut = src.floor_char_boundary_compat(120);
            format!("{}… ({} bytes)", &src[..cut], src.len())
        } else {
            src.to_string()
        };
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path("../snapshots/parse");
        settings.set_prepend_module_to_snapshot(false);
        settings.set_description(shown);
        settings.bind(|| insta::assert_snapshot!(rendered));
    });
}

/// `str::floor_char_boundary` is unstable; this is its stable stand-in for the snapshots.
trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, index: usize) -> usize;
}

impl FloorCharBoundary for str {
    fn floor_char_boundary_compat(&self, index: usize) -> usize {
        let mut index = index.min(self.len());
        while !self.is_char_boundary(index) {
            index -= 1;
        }
        index
    }
}

const TOKENS: &[&str] = &[
    "ᵀ",
    "⁻¹",
    "⁻ᵀ",
    "²",
    "‖",
    "|",
    "||",
    "⊙",
    "∘",
    ".*",
    r"\frac",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "W",
    "x",
    "α",
    "tr",
    "det",
    "log",
    "exp",
    "−",
    "-",
    "+",
    "*",
    "**",
    "/",
    "^",
    "_",
    "1",
    "2",
    "0.5",
    "½",
    "'",
    "′",
    r"\left",
    r"\right",
    r"\|",
    r"\mathbf",
    r"\alpha",
    r"\sigma",
    "σ",
    "∇",
    "ℓ",
    "𝟙",
    "I",
    " ",
    r"\det",
    r"\log",
    "sigma",
    "norm",
    "^{-1}",
    "^T",
    r"\cdot",
    "·",
    "₁",
    "_{",
    "ones",
    r"\sqrt",
    "√",
    r"\text{tr}",
    "sigmod",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_arbitrary_strings(src in ".{0,64}") {
        let _ = parse_with(&src, &corpus_options());
        let _ = parse_decls(&src);
        let _ = parse_let(&src, &corpus_options());
    }

    #[test]
    fn parse_never_panics_on_token_soup(tokens in prop::collection::vec(prop::sample::select(TOKENS), 0..40)) {
        let src: String = tokens.concat();
        if let Err(error) = parse_with(&src, &corpus_options()) {
            let _ = error.diagnostic().render(&src);
        }
    }
}

/// Single factors as printers render them, in all three spellings.
const FACTORS: &[&str] = &[
    "x",
    "i",
    "W",
    "e",
    "t",
    "a",
    "p",
    "h",
    "s",
    "u",
    "m",
    "n",
    "o",
    "g",
    "r",
    "d",
    "l",
    "c",
    "k",
    "I",
    "Wᵀ",
    "W'",
    "x^T",
    "x^{\\top}",
    "σ",
    "α",
    "alpha",
    "\\alpha",
    "ℓ",
    "ell",
    "ones",
    "𝟙",
    "\\mathbf{1}",
    "\\mathbf{x}",
    "x₁",
    "W1",
    "W_1",
    "W_{1}",
    "x′",
    "2",
    "½",
    "\\frac{1}{2}",
    "(a + b)",
    "[a]",
    "{a}",
    "tr(A)",
    "exp(x)",
    "sigma(z)",
    "σ(z)",
    "|A|",
    "‖x‖²",
    "log|A|",
    "det(A)",
    "\\det(A)",
    "∇ℓ(v)",
    "K⁻¹",
    "K^{-1}",
    "A²",
];

#[test]
fn parse_juxtaposition_is_safe_means_product() {
    for left in FACTORS {
        for right in FACTORS {
            if !juxtaposition_is_safe(left, right) {
                continue;
            }
            let (Ok(left_tree), Ok(right_tree)) = (parse(left), parse(right)) else {
                panic!("{left:?} or {right:?} does not parse");
            };
            let joined = format!("{left}{right}");
            let expected = Expr::new(ExprKind::Mul(left_tree.into(), right_tree.into()));
            assert_eq!(
                parse(&joined).map(|tree| sexpr(&tree)),
                Ok(sexpr(&expected)),
                "{left:?} then {right:?} was judged safe"
            );
        }
    }
}

#[test]
fn parse_decls_errors_say_what_was_expected() {
    let message = |src: &str| parse_decls(src).map_err(|error| error.to_string());
    assert_eq!(message("W m×n"), Err("expected ':'".to_string()));
    assert_eq!(
        message("x: n sym"),
        Err("`x` is declared symmetric but its shape n×1 is not square".to_string())
    );
}
