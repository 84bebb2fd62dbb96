//! Step-by-step derivations: the problem sheet's three problems explained (snapshots in
//! Unicode, LaTeX and DOT), every adjoint line checked against finite differences with a
//! negative control, the SVG drawing checked for well-formedness, and the sheet's two
//! wrong steps located.

use matcalc::explain::{self, Claim, Diagnosis, Explanation, Role};
use matcalc::numeric::{CheckConfig, Verdict};
use matcalc::parse::{self, ParseOptions};
use matcalc::shape::{self, Typed};
use matcalc::{Decls, Expr, ExprKind, Symbol};

fn typed(src: &str, decls: &str) -> Typed {
    let expr = parse::parse(src).expect("the expression parses");
    let decls = if decls.is_empty() {
        Decls::new()
    } else {
        parse::parse_decls(decls).expect("the declarations parse")
    };
    shape::infer(&expr, &decls).expect("the expression shape-checks")
}

fn lets(defs: &[&str]) -> Vec<(Symbol, Expr)> {
    defs.iter()
        .map(|d| parse::parse_let(d, &ParseOptions::standard()).expect("the let parses"))
        .collect()
}

fn explained(src: &str, decls: &str, wrt: &str, defs: &[&str]) -> Explanation {
    explain::explain(&typed(src, decls), wrt, &lets(defs)).expect("the loss is explained")
}

fn expr(src: &str) -> Expr {
    parse::parse(src).expect("the claim parses")
}

const AUTOENCODER: &str = "½‖WᵀWx − x‖²";
const GPLVM_L1: &str = "−D/2 log|αXXᵀ + β⁻¹I|";
const GPLVM_L2: &str = "−½ tr((αXXᵀ + β⁻¹I)⁻¹YYᵀ)";
const SWISH: &str = "½‖W₂ swish(W₁x + b₁) + b₂ − y‖²";
const SWISH_LETS: [&str; 5] = [
    "z₁ = W₁x + b₁",
    "h₁ = swish(z₁)",
    "m₁ = W₁x",
    "m₂ = W₂h₁",
    "z₂ = m₂ + b₂",
];
const GPLVM_LETS: [&str; 3] = ["Z₃ = αXXᵀ + β⁻¹I", "Z₂ = Z₃⁻¹", "Z₁ = Z₂YYᵀ"];

/// The sheet's problems: (snapshot name, explanation).
fn sheet() -> Vec<(&'static str, Explanation)> {
    vec![
        ("autoencoder", explained(AUTOENCODER, "", "W", &[])),
        ("gplvm_l1", explained(GPLVM_L1, "D: scalar", "X", &[])),
        ("gplvm_l2", explained(GPLVM_L2, "", "X", &[])),
        ("gplvm_l2_named", explained(GPLVM_L2, "", "X", &GPLVM_LETS)),
        ("swish", explained(SWISH, "", "W₁", &SWISH_LETS)),
    ]
}

macro_rules! snapshot_settings {
    ($body:block) => {
        insta::with_settings!({
            snapshot_path => "../snapshots/explain",
            prepend_module_to_snapshot => false,
            omit_expression => false,
        }, $body)
    };
}

#[test]
fn explain_sheet_problems_in_unicode_and_latex() {
    for (name, explanation) in sheet() {
        snapshot_settings!({
            insta::assert_snapshot!(format!("{name}_unicode"), explain::to_text(&explanation));
            insta::assert_snapshot!(format!("{name}_latex"), explain::to_latex(&explanation));
        });
    }
}

#[test]
fn explain_dot_draws_shared_nodes_once() {
    let autoencoder = explained(AUTOENCODER, "", "W", &[]);
    let gplvm = explained(GPLVM_L2, "", "X", &GPLVM_LETS);
    // W feeds both Wᵀ and the product WᵀW, but is one node with two out-edges.
    let dot = explain::to_dot(&autoencoder, true);
    assert_eq!(dot.matches("label=\"W\\n").count(), 1);
    snapshot_settings!({
        insta::assert_snapshot!("autoencoder_dot_adjoints", dot);
        insta::assert_snapshot!("gplvm_l2_dot", explain::to_dot(&gplvm, false));
    });
}

/// Extra losses that exercise the rules the sheet does not use.
fn more_losses() -> Vec<Explanation> {
    vec![
        explained("sum(log(σ(Wx)))", "", "W", &[]),
        explained("‖tanh(Wx) ⊙ exp(Wx)‖² + log|XᵀX|", "", "W,X", &[]),
        explained("tr(A²X) + det(X) + xᵀX⁻²x", "X: n×n", "X", &[]),
        explained(
            "sum(softplus(Ax) ⊘ (1 + x ⊙ x)) + ‖diag(Bx)‖²",
            "",
            "x",
            &[],
        ),
        explained("α²‖x‖² + tr(αS)", "", "α,x", &[]),
        // Both factors of ⊗ (a partial trace of the adjoint each) and vec.
        explained(
            "tr((D ⊗ E)ᵀ(A ⊗ B)) + ‖vec(AXᵀ)‖²",
            "A: m×n, B: p×q, D: m×n, E: p×q, X: k×n",
            "A,B,X",
            &[],
        ),
    ]
}

#[test]
fn explain_every_adjoint_agrees_with_finite_differences() {
    let config = CheckConfig::standard();
    let mut checked = 0;
    for explanation in sheet().into_iter().map(|(_, e)| e).chain(more_losses()) {
        for check in explain::check_adjoints(&explanation, &config) {
            assert!(
                check.verdict.is_pass(),
                "the adjoint of {} in {}: {}",
                check.name,
                explain::to_text(&explanation),
                check.verdict.describe()
            );
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} adjoints were checked");
}

#[test]
fn explain_check_detects_a_wrong_adjoint() {
    let config = CheckConfig::standard();
    let explanation = explained(AUTOENCODER, "", "W", &[]);
    let node = explanation.node_named("z₄").expect("z₄ exists");
    let step = explanation.step_of(node).expect("z₄ has an adjoint");
    // Twice the true adjoint, and its transpose (same shape, n×n): both must fail.
    let doubled = Expr::typed(
        ExprKind::Mul(
            std::rc::Rc::new(Expr::int(2)),
            std::rc::Rc::new(step.expanded.clone()),
        ),
        step.expanded.shape.clone(),
    );
    let transposed = Expr::typed(
        ExprKind::Transpose(std::rc::Rc::new(step.expanded.clone())),
        step.expanded.shape.transposed(),
    );
    for wrong in [doubled, transposed] {
        let verdict = explain::check_adjoint(&explanation, node, &wrong, &config);
        assert!(
            matches!(verdict, Verdict::Fail(_)),
            "{}",
            verdict.describe()
        );
    }
    // And the true one passes, so the control is not failing for another reason.
    assert!(explain::check_adjoint(&explanation, node, &step.expanded, &config).is_pass());
}

#[test]
fn explain_svg_is_well_formed_and_labels_every_node() {
    let explanation = explained(AUTOENCODER, "", "W", &[]);
    for with_adjoints in [false, true] {
        let svg = explain::to_svg(&explanation, with_adjoints);
        check_well_formed_xml(&svg);
        for index in 0..explanation.nodes.len() {
            let label = xml_escape(&explanation.label(index));
            assert!(svg.contains(&format!(">{label}</text>")), "{label} missing");
        }
    }
    let gplvm = explained(GPLVM_L2, "", "X", &GPLVM_LETS);
    check_well_formed_xml(&explain::to_svg(&gplvm, true));
    // The picture shown in the README.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/autoencoder.svg");
    let svg = explain::to_svg(&explanation, true);
    if std::fs::read_to_string(path).ok().as_deref() != Some(svg.as_str()) {
        std::fs::write(path, &svg).expect("docs/autoencoder.svg is writable");
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// A small well-formedness check: one root element, every tag closed in order, attribute
/// values quoted, and `&` only in the five predefined entities.
fn check_well_formed_xml(text: &str) {
    let mut stack: Vec<String> = Vec::new();
    let mut roots = 0;
    let mut rest = text.trim();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('<') {
            let end = after.find('>').expect("every tag ends with '>'");
            let tag = &after[..end];
            rest = &after[end + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                let open = stack.pop().expect("a closing tag has an opening tag");
                assert_eq!(open, name.trim(), "tags close in order");
            } else {
                let self_closing = tag.ends_with('/');
                let body = tag.trim_end_matches('/');
                let name: String = body.chars().take_while(|c| !c.is_whitespace()).collect();
                assert!(!name.is_empty(), "a tag has a name");
                check_attributes(&body[name.len()..]);
                if stack.is_empty() {
                    roots += 1;
                }
                if !self_closing {
                    stack.push(name);
                }
            }
        } else {
            let end = rest.find('<').unwrap_or(rest.len());
            check_text(&rest[..end]);
            assert!(
                !stack.is_empty() || rest[..end].trim().is_empty(),
                "text outside the root"
            );
            rest = &rest[end..];
        }
    }
    assert!(stack.is_empty(), "unclosed tags: {stack:?}");
    assert_eq!(roots, 1, "one root element");
}

fn check_attributes(mut attributes: &str) {
    loop {
        attributes = attributes.trim_start();
        if attributes.is_empty() {
            return;
        }
        let eq = attributes.find('=').expect("an attribute has a value");
        let name = attributes[..eq].trim();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':'),
            "attribute name {name:?}"
        );
        let value = &attributes[eq + 1..];
        assert!(value.starts_with('"'), "attribute {name} is quoted");
        let close = value[1..].find('"').expect("attribute value closes") + 1;
        check_text(&value[1..close]);
        assert!(!value[1..close].contains('<'), "no '<' in attribute values");
        attributes = &value[close + 1..];
    }
}

fn check_text(text: &str) {
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        let after = &rest[at..];
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                .iter()
                .any(|e| after.starts_with(e)),
            "bare '&' in {text:?}"
        );
        rest = &after[1..];
    }
}

#[test]
fn explain_locates_the_sheets_wrong_inverse_step() {
    // The sheet's intermediate adjoints for L₂, with its node names as lets.
    let explanation = explained(GPLVM_L2, "", "X", &GPLVM_LETS);
    let claim = Claim::Steps(vec![
        ("Z₁".into(), expr("−½I")),
        ("Z₂".into(), expr("−½YYᵀ")),
        ("Z₃".into(), expr("(Z₃⁻ᵀ)²·½YYᵀ")),
    ]);
    let diagnosis =
        explain::first_wrong_step(&explanation, &claim, &CheckConfig::standard()).expect("checks");
    let Diagnosis::WrongStep {
        node,
        produced_by,
        agreed,
        ..
    } = &diagnosis
    else {
        panic!("{}", diagnosis.describe(&explanation));
    };
    assert_eq!(explanation.nodes[*node].name, "Z₃");
    assert_eq!(agreed.len(), 2, "∂L/∂Z₁ and ∂L/∂Z₂ are right");
    let [inverse] = produced_by.as_slice() else {
        panic!("one operation produces ∂L/∂Z₃: {produced_by:?}");
    };
    assert_eq!(explanation.nodes[*inverse].name, "Z₂");
    assert!(matches!(
        explanation.nodes[*inverse].definition.kind,
        ExprKind::Inverse(_)
    ));
    snapshot_settings!({
        insta::assert_snapshot!(
            "gplvm_l2_wrong_step",
            first_lines(&diagnosis.describe(&explanation), 4)
        );
    });
}

fn first_lines(text: &str, n: usize) -> String {
    text.lines().take(n).collect::<Vec<_>>().join("\n")
}

#[test]
fn explain_locates_the_sheets_wrong_final_gradient_at_the_inverse() {
    let explanation = explained(GPLVM_L2, "", "X", &GPLVM_LETS);
    let claim = Claim::Gradient {
        wrt: "X".into(),
        gradient: expr("α/2((Z₃⁻ᵀ)²YYᵀ + YYᵀ(Z₃⁻ᵀ)²)X"),
    };
    let diagnosis =
        explain::first_wrong_step(&explanation, &claim, &CheckConfig::standard()).expect("checks");
    let Diagnosis::Slip { node, operand, .. } = &diagnosis else {
        panic!("{}", diagnosis.describe(&explanation));
    };
    assert_eq!(explanation.nodes[*node].name, "Z₂");
    assert_eq!(explanation.nodes[*operand].name, "Z₃");
    snapshot_settings!({
        insta::assert_snapshot!(
            "gplvm_l2_wrong_gradient",
            first_lines(&diagnosis.describe(&explanation), 2)
        );
    });
    // The right gradient, αZ₃⁻¹YYᵀZ₃⁻¹X for symmetric Z₃, agrees.
    let right = Claim::Gradient {
        wrt: "X".into(),
        gradient: expr("αZ₃⁻¹YYᵀZ₃⁻¹X"),
    };
    let diagnosis =
        explain::first_wrong_step(&explanation, &right, &CheckConfig::standard()).expect("checks");
    assert!(matches!(diagnosis, Diagnosis::Agrees { .. }));
}

#[test]
fn explain_locates_the_sheets_wrong_swish_derivative() {
    let explanation = explained(SWISH, "", "W₁", &SWISH_LETS);
    // The sheet's swish′(z) = σ(z) + z(1 − σ(z)) misses a factor σ(z).
    let claim = Claim::Steps(vec![
        ("z₂".into(), expr("z₂ − y")),
        ("h₁".into(), expr("W₂ᵀ(z₂ − y)")),
        (
            "z₁".into(),
            expr("(σ(z₁) + z₁ ⊙ (1 − σ(z₁))) ⊙ W₂ᵀ(z₂ − y)"),
        ),
    ]);
    let diagnosis =
        explain::first_wrong_step(&explanation, &claim, &CheckConfig::standard()).expect("checks");
    let Diagnosis::WrongStep {
        node, produced_by, ..
    } = &diagnosis
    else {
        panic!("{}", diagnosis.describe(&explanation));
    };
    assert_eq!(explanation.nodes[*node].name, "z₁");
    let names: Vec<&str> = produced_by
        .iter()
        .map(|&i| explanation.nodes[i].name.as_str())
        .collect();
    assert_eq!(names, ["h₁"]);
}

#[test]
fn explain_names_nodes_from_the_output_down() {
    let explanation = explained(AUTOENCODER, "", "W", &[]);
    let names: Vec<&str> = explanation
        .forward()
        .iter()
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(names, ["z₅", "z₄", "z₃", "z₂", "z₁", "L"]);
    assert_eq!(explanation.label(0), "L = ½z₁");
    let w = explanation.node_named("W").expect("W is a node");
    assert_eq!(explanation.nodes[w].role, Role::Variable);
    let gradient = explanation.gradient("W").expect("W has a gradient");
    assert_eq!(gradient.contributions.len(), 2, "W appears twice");
    assert!(gradient.rule.words.contains("the two paths' adjoints add"));
}

#[test]
fn explain_json_lists_nodes_steps_and_gradients() {
    let explanation = explained(GPLVM_L1, "D: scalar", "X", &[]);
    let json = explain::to_json(&explanation);
    assert_eq!(json["output"], "L");
    assert_eq!(json["wrt"][0], "X");
    let steps = json["backward"].as_array().expect("backward is an array");
    assert_eq!(steps.len(), explanation.steps.len());
    assert!(json["gradients"][0]["expanded"].is_string());
    assert!(steps.iter().all(|s| s["rule"]["words"].is_string()));
}

#[test]
fn explain_rejects_what_it_cannot_explain() {
    let not_scalar = explain::explain(&typed("Wx", ""), "W", &[]);
    assert!(matches!(not_scalar, Err(explain::Error::NotScalar { .. })));
    let unknown = explain::explain(&typed("‖x‖²", ""), "y", &[]);
    assert!(matches!(
        unknown,
        Err(explain::Error::UnknownVariable { .. })
    ));
    let explanation = explained(AUTOENCODER, "", "W", &[]);
    let claim = Claim::Steps(vec![("q₇".into(), expr("x"))]);
    assert!(matches!(
        explain::first_wrong_step(&explanation, &claim, &CheckConfig::standard()),
        Err(explain::Error::UnknownNode { .. })
    ));
}
