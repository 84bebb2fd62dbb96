//! The command line, tested by running the real binary: exit codes, stdout and stderr.

#[path = "common/run.rs"]
#[allow(dead_code)] // Not every test file drives the REPL.
mod run;
use run::{matcalc, Run};

fn snapshot(name: &str, run: &Run, args: &[&str]) {
    let text = format!(
        "$ matcalc {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        run.status,
        run.stdout,
        run.stderr
    );
    insta::with_settings!({snapshot_path => "../snapshots/cli", prepend_module_to_snapshot => false, omit_expression => true, filters => vec![(r"max rel\. error [0-9.e+-]+", "max rel. error [ERR]")]}, {
        insta::assert_snapshot!(name, text);
    });
}

const AUTOENCODER: &str = "½‖WᵀWx − x‖²";
const GPLVM: &str = "−c − D/2 log|αXXᵀ + β⁻¹I| − ½ tr((αXXᵀ + β⁻¹I)⁻¹YYᵀ)";

#[test]
fn cli_diff_autoencoder_checks_ok() {
    let args = ["diff", AUTOENCODER, "--wrt", "W", "--check"];
    let run = matcalc(&args);
    assert_eq!(run.status, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.starts_with("∂/∂W = "), "{}", run.stdout);
    assert!(
        run.stdout.contains("check: ok (3 random trials"),
        "{}",
        run.stdout
    );
    snapshot("diff_autoencoder", &run, &args);
}

#[test]
fn cli_diff_json_has_the_contract_keys() {
    let run = matcalc(&[
        "diff",
        AUTOENCODER,
        "--wrt",
        "W",
        "--format",
        "json",
        "--check",
    ]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let value: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON object");
    assert_eq!(value["wrt"], "W");
    assert_eq!(value["shape"], serde_json::json!(["m", "n"]));
    for key in [
        "derivative",
        "ascii",
        "latex",
        "where",
        "compute",
        "saturated",
    ] {
        assert!(value.get(key).is_some(), "missing {key}: {value}");
    }
    assert_eq!(value["check"]["passed"], true);
    assert_eq!(value["check"]["trials"], 3);
    // SPEC §5: in-process microseconds per stage; the stages add up to at most the total.
    let timings = &value["timings"];
    let us = |key: &str| {
        timings[key]
            .as_u64()
            .unwrap_or_else(|| panic!("timings.{key} missing: {value}"))
    };
    let stages = us("parse_us") + us("shape_us") + us("diff_us") + us("simplify_us");
    assert!(stages <= us("total_us"), "{timings}");
    assert!(us("simplify_us") > 0, "{timings}");
}

#[test]
fn cli_simplify_json_has_timings_without_diff() {
    let run = matcalc(&["simplify", "(Wᵀ)ᵀ + W", "--format", "json"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let value: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON object");
    assert_eq!(value["timings"]["diff_us"], 0, "{value}");
    assert!(value["timings"]["total_us"].as_u64().is_some(), "{value}");
}

#[test]
fn cli_diff_several_variables_gives_results_array() {
    let run = matcalc(&[
        "diff",
        "½‖W₂ swish(W₁x + b₁) + b₂ − y‖²",
        "--wrt",
        "W₁,b₁,W₂,b₂",
        "--format",
        "json",
        "--check",
    ]);
    assert_eq!(run.status, 0, "{}{}", run.stdout, run.stderr);
    let value: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON object");
    let results = value["results"].as_array().expect("results array");
    let names: Vec<&str> = results
        .iter()
        .map(|r| r["wrt"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["W₁", "b₁", "W₂", "b₂"]);
    assert!(
        results.iter().all(|r| r["check"]["passed"] == true),
        "{value}"
    );
}

#[test]
fn cli_wrt_accepts_every_spelling_of_a_variable() {
    let unicode = matcalc(&["diff", "½‖W₂ σ(W₁x) − y‖²", "--wrt", "W₁,W₂"]);
    assert_eq!(unicode.status, 0, "{}", unicode.stderr);
    for wrt in ["W_1,W_2", "W_{1}, W_2"] {
        let ascii = matcalc(&["diff", "½‖W_2 σ(W_1 x) − y‖²", "--wrt", wrt]);
        assert_eq!(ascii.status, 0, "{wrt}: {}", ascii.stderr);
        assert_eq!(ascii.stdout, unicode.stdout, "{wrt}");
    }
    let latex = matcalc(&["diff", r"\alpha x^\top x", "--wrt", r"\alpha"]);
    assert_eq!(latex.stdout, "∂/∂α = xᵀx\n", "{}", latex.stderr);
    let unknown = matcalc(&["diff", "xᵀx", "--wrt", "W_1"]);
    assert_eq!(unknown.status, 2, "{}", unknown.stderr);
}

#[test]
fn cli_simplify_json_reports_the_shape_of_each_sheet_expression_in_each_spelling() {
    let cases: &[(&str, [&str; 2])] = &[
        (AUTOENCODER, ["1", "1"]),
        ("1/2 * norm(W' * W * x - x)^2", ["1", "1"]),
        ("\\frac{1}{2} \\|\\mathbf{W}^T \\mathbf{Wx} - \\mathbf{x}\\|^2", ["1", "1"]),
        (GPLVM, ["1", "1"]),
        ("-c - D/2 * logdet(alpha*X*X' + beta^-1*I) - 1/2 * tr(inv(alpha*X*X' + beta^-1*I)*Y*Y')", ["1", "1"]),
        ("-c - \\frac{D}{2} \\log|\\alpha X X^T + \\beta^{-1} I| - \\frac{1}{2} \\operatorname{tr}((\\alpha X X^T + \\beta^{-1} I)^{-1} Y Y^T)", ["1", "1"]),
        ("αXXᵀ + β⁻¹I", ["n", "n"]),
        ("alpha*X*X' + beta^-1*I", ["n", "n"]),
        ("\\alpha \\mathbf{X} \\mathbf{X}^T + \\beta^{-1} \\mathbf{I}", ["n", "n"]),
        ("½‖W₂ swish(W₁x + b₁) + b₂ − y‖²", ["1", "1"]),
        ("1/2 * ||W2 * swish(W1*x + b1) + b2 - y||^2", ["1", "1"]),
        ("\\frac{1}{2} \\|W_2 \\operatorname{swish}(W_1 x + b_1) + b_2 - y\\|^2", ["1", "1"]),
    ];
    for (text, shape) in cases {
        let run = matcalc(&["simplify", text, "--format", "json"]);
        assert_eq!(run.status, 0, "{text}: {}", run.stderr);
        let value: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
        assert_eq!(value["shape"], serde_json::json!(shape), "{text}: {value}");
    }
}

#[test]
fn cli_verify_rejects_the_sheets_l2_gradient_with_a_counterexample() {
    // Sheet error (i): the derivative of K⁻¹ taken as −(K⁻ᵀ)².
    let args = [
        "verify",
        "−½ tr(K⁻¹YYᵀ)",
        "--wrt",
        "X",
        "--let",
        "K = αXXᵀ + β⁻¹I",
        "--claim",
        "α/2 ((K⁻ᵀ)²YYᵀ + YYᵀ(K⁻ᵀ)²)X",
    ];
    let run = matcalc(&args);
    assert_eq!(run.status, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.starts_with("claim: wrong"), "{}", run.stdout);
    assert!(run.stdout.contains("largest difference"), "{}", run.stdout);
}

#[test]
fn cli_verify_accepts_the_correct_l2_gradient() {
    let run = matcalc(&[
        "verify",
        "−½ tr(K⁻¹YYᵀ)",
        "--wrt",
        "X",
        "--let",
        "K = αXXᵀ + β⁻¹I",
        "--claim",
        "αK⁻¹YYᵀK⁻¹X",
    ]);
    assert_eq!(run.status, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.starts_with("claim: correct"), "{}", run.stdout);
}

#[test]
fn cli_expression_starting_with_minus_is_not_an_option() {
    let run = matcalc(&["diff", "-c - xᵀx", "--wrt", "x"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let run = matcalc(&["diff", "−c − xᵀx", "--wrt", "x", "--check"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
}

#[test]
fn cli_bad_input_exits_2_with_a_caret() {
    for (name, args) in [
        ("parse_error", vec!["diff", "½‖Wx − ", "--wrt", "W"]),
        ("shape_error", vec!["diff", "‖z(1 − σ(z))‖²", "--wrt", "z"]),
        ("unknown_variable", vec!["diff", "‖Wx‖²", "--wrt", "V"]),
        ("unknown_function", vec!["simplify", "sigmod(z)"]),
    ] {
        let run = matcalc(&args);
        assert_eq!(run.status, 2, "{name}: {}{}", run.stdout, run.stderr);
        assert!(run.stderr.starts_with("error: "), "{name}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{name}");
        snapshot(name, &run, &args);
    }
}

#[test]
fn cli_help_exits_0() {
    let run = matcalc(&["--help"]);
    assert_eq!(run.status, 0);
    assert!(run.stdout.contains("diff"));
}

#[test]
fn cli_other_formats_render() {
    for format in ["ascii", "latex", "numpy"] {
        let run = matcalc(&["diff", AUTOENCODER, "--wrt", "W", "--format", format]);
        assert_eq!(run.status, 0, "{format}: {}", run.stderr);
        assert!(!run.stdout.trim().is_empty(), "{format}");
    }
}

#[test]
fn cli_second_order_and_differentials() {
    let hessian = matcalc(&[
        "diff",
        "½‖Ax − b‖²",
        "--wrt",
        "x",
        "--order",
        "2",
        "--check",
    ]);
    assert_eq!(hessian.status, 0, "{}{}", hessian.stdout, hessian.stderr);
    assert!(
        hessian.stdout.starts_with("∂²/∂x² = "),
        "{}",
        hessian.stdout
    );
    let differential = matcalc(&["diff", "(αXXᵀ + β⁻¹I)⁻¹", "--wrt", "X", "--check"]);
    assert_eq!(
        differential.status, 0,
        "{}{}",
        differential.stdout, differential.stderr
    );
    assert!(
        differential.stdout.starts_with("dF = "),
        "{}",
        differential.stdout
    );
    let jacobian = matcalc(&["diff", "swish(W₁x + b₁)", "--wrt", "x", "--check"]);
    assert_eq!(jacobian.status, 0, "{}{}", jacobian.stdout, jacobian.stderr);
    let second = matcalc(&["diff", "tr(XᵀX)", "--wrt", "X", "--order", "2", "--check"]);
    assert_eq!(second.status, 0, "{}{}", second.stdout, second.stderr);
    assert!(second.stdout.starts_with("d²f = "), "{}", second.stdout);
}

#[test]
fn cli_symmetric_variable_says_so() {
    let run = matcalc(&[
        "diff",
        "tr(AX)",
        "--wrt",
        "X",
        "--decl",
        "X: n×n sym",
        "--format",
        "json",
        "--check",
    ]);
    assert_eq!(run.status, 0, "{}{}", run.stdout, run.stderr);
    let value: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(value["gradient"], "symmetric");
    assert_eq!(value["check"]["passed"], true);
}

#[test]
fn cli_opaque_function_differentiates_to_its_gradient() {
    let run = matcalc(&[
        "diff",
        "ℓ(W₂h + b₂)",
        "--wrt",
        "W₂",
        "--decl",
        "ℓ: fn",
        "--check",
    ]);
    assert_eq!(run.status, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("∇ℓ"), "{}", run.stdout);
}

#[test]
fn cli_latex_output_for_the_sheet() {
    let cases: [(&str, Vec<&str>); 3] = [
        (
            "latex_autoencoder",
            vec!["diff", AUTOENCODER, "--wrt", "W", "--format", "latex"],
        ),
        (
            "latex_log_likelihood",
            vec![
                "diff",
                "−c − D/2 log|K| − ½ tr(K⁻¹YYᵀ)",
                "--let",
                "K = αXXᵀ + β⁻¹I",
                "--wrt",
                "X",
                "--format",
                "latex",
                // The iteration limits, not a loaded machine's clock, decide the form
                // (under the whole suite's load, 500 ms ended saturation first).
                "--time-limit",
                "30000",
            ],
        ),
        (
            "latex_swish_network",
            vec![
                "diff",
                "½‖W₂ swish(z₁) + b₂ − y‖²",
                "--let",
                "z₁ = W₁x + b₁",
                "--wrt",
                "W₁,b₁,W₂,b₂",
                "--format",
                "latex",
            ],
        ),
    ];
    for (name, args) in cases {
        let run = matcalc(&args);
        assert_eq!(run.status, 0, "{name}: {}", run.stderr);
        assert!(run.stdout.starts_with("\\begin{aligned}"), "{}", run.stdout);
        assert_eq!(
            run.stdout.matches("\\begin{aligned}").count(),
            run.stdout.matches("\\end{aligned}").count()
        );
        snapshot(name, &run, &args);
    }
}

#[test]
fn cli_explain_prints_both_passes_and_checks_every_adjoint() {
    let run = matcalc(&["explain", AUTOENCODER, "--wrt", "W", "--check"]);
    assert_eq!(run.status, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("Forward pass") && run.stdout.contains("Backward pass"));
    assert!(run.stdout.contains("W appears twice"), "{}", run.stdout);
    assert!(!run.stdout.contains("FAILED"), "{}", run.stdout);
    for (format, marker) in [("latex", "\\begin{align*}"), ("json", "{")] {
        let run = matcalc(&["explain", AUTOENCODER, "--wrt", "W", "--format", format]);
        assert_eq!(run.status, 0, "{format}: {}", run.stderr);
        assert!(run.stdout.starts_with(marker), "{format}: {}", run.stdout);
    }
    let dot = matcalc(&[
        "explain",
        AUTOENCODER,
        "--wrt",
        "W",
        "--graph",
        "dot",
        "--adjoints",
    ]);
    assert!(dot.stdout.starts_with("digraph"), "{}", dot.stdout);
    let svg = matcalc(&["explain", AUTOENCODER, "--wrt", "W", "--graph", "svg"]);
    assert!(svg.stdout.contains("<svg") && svg.stdout.trim_end().ends_with("</svg>"));
}

#[test]
fn cli_verify_steps_locates_the_sheets_l2_error_at_the_inverse_node() {
    let run = matcalc(&[
        "verify",
        "−½ tr(K⁻¹YYᵀ)",
        "--let",
        "K = αXXᵀ + β⁻¹I",
        "--wrt",
        "X",
        "--claim",
        "α/2 ((K⁻ᵀ)²YYᵀ + YYᵀ(K⁻ᵀ)²)X",
        "--steps",
    ]);
    assert_eq!(run.status, 1, "{}{}", run.stdout, run.stderr);
    let located = run
        .stdout
        .split("first wrong step:")
        .nth(1)
        .expect("a located step");
    assert!(
        located.contains("K⁻¹") && located.contains("inverse"),
        "{located}"
    );
}

#[test]
fn cli_zero_gradient_is_shaped_like_the_variable() {
    let run = matcalc(&["diff", "tr(0A)", "--wrt", "A", "--check"]);
    assert_eq!(run.status, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.starts_with("∂/∂A = 0\ncheck: ok"),
        "{}",
        run.stdout
    );
}
