//! Generated NumPy code, executed by `python3` with numpy: for the sheet's problems and
//! for cookbook identities, `derivative` must match finite differences of `value`.
//! `.ci/run` installs numpy when it is missing.

use std::process::Command;

fn check(expr: &str, wrt: &str, decls: &[&str]) {
    check_with(expr, wrt, decls, &[], "gradient");
}

/// Like [`check`], with extra `diff` arguments and the harness's mode (`vec`, `vec2`).
fn check_with(expr: &str, wrt: &str, decls: &[&str], extra: &[&str], mode: &str) {
    let mut args = vec!["diff", expr, "--wrt", wrt, "--format", "numpy"];
    args.extend_from_slice(extra);
    for decl in decls {
        args.extend(["--decl", decl]);
    }
    let output = Command::new(env!("CARGO_BIN_EXE_matcalc"))
        .args(&args)
        .output()
        .expect("the matcalc binary runs");
    assert!(
        output.status.success(),
        "{expr}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = std::env::temp_dir().join(format!("matcalc-numpy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let name: String = format!("{expr}{wrt}{mode}")
        .bytes()
        .fold(0u64, |hash, byte| {
            hash.wrapping_mul(31).wrapping_add(byte as u64)
        })
        .to_string();
    let path = dir.join(format!("m{name}.py"));
    std::fs::write(&path, &output.stdout).expect("module written");
    let harness = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/numpy_check.py");
    let run = Command::new("python3")
        .arg(harness)
        .arg(&path)
        .arg(python_names(wrt))
        .arg(mode)
        .output()
        .expect("python3 runs (numpy is installed by .ci/run)");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && stdout.starts_with("ok"),
        "{expr} w.r.t. {wrt}:\n{stdout}{}\n--- module\n{}",
        String::from_utf8_lossy(&run.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
}

fn python_names(wrt: &str) -> String {
    wrt.split(',')
        .map(matcalc::print::numpy::python_name)
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn numpy_sheet_autoencoder() {
    check("½‖WᵀWx − x‖²", "W", &[]);
}

#[test]
fn numpy_sheet_log_likelihood() {
    check(
        "−c − D/2 log|αXXᵀ + β⁻¹I| − ½ tr((αXXᵀ + β⁻¹I)⁻¹YYᵀ)",
        "X",
        &[],
    );
}

#[test]
fn numpy_sheet_swish_network() {
    check("½‖W₂ swish(W₁x + b₁) + b₂ − y‖²", "W₁,b₁,W₂,b₂", &[]);
}

#[test]
fn numpy_zero_gradient_has_the_variables_shape() {
    check("tr(0A)", "A", &[]);
    check("0xᵀy", "x", &[]);
}

#[test]
fn numpy_cookbook_identities() {
    let cases: &[(&str, &str, &[&str])] = &[
        ("xᵀa", "x", &[]),
        ("aᵀXb", "X", &[]),
        ("aᵀXᵀb", "X", &[]),
        ("aᵀXa", "X", &["X: n×n"]),
        ("bᵀXᵀXc", "X", &[]),
        ("(Bx + b)ᵀC(Dx + d)", "x", &[]),
        ("xᵀBx", "x", &[]),
        ("bᵀXᵀDXc", "X", &[]),
        ("(Xb + c)ᵀD(Xb + c)", "X", &[]),
        ("tr(X)", "X", &["X: n×n"]),
        ("tr(XA)", "X", &[]),
        ("tr(AXB)", "X", &[]),
        ("tr(AXᵀB)", "X", &[]),
        ("tr(X²)", "X", &[]),
        ("tr(X²B)", "X", &[]),
        ("tr(XᵀBX)", "X", &[]),
        ("tr(XBXᵀ)", "X", &[]),
        ("tr(AXBX)", "X", &[]),
        ("tr(XᵀX)", "X", &[]),
        ("tr((AXB + C)(AXB + C)ᵀ)", "X", &[]),
        ("aᵀX⁻¹b", "X", &["X: n×n spd"]),
        ("log|X|", "X", &["X: n×n spd"]),
        ("det(X)", "X", &["X: n×n spd"]),
        ("tr(AX⁻¹B)", "X", &["X: n×n spd"]),
        ("‖x − a‖²", "x", &[]),
        ("‖X‖²", "X", &[]),
        ("tr(AX)", "X", &["X: n×n sym"]),
        ("sum(σ(Wx))", "W", &[]),
    ];
    for (expr, wrt, decls) in cases {
        check(expr, wrt, decls);
    }
}

/// `--form vec`: `derivative` returns the whole Jacobian ∂vec(F)/∂vec(X), and with
/// `--order 2` the Hessian matrix, each against finite differences of `value`.
#[test]
fn numpy_vec_form_returns_the_full_matrix() {
    let vec = &["--form", "vec"];
    for (expr, decls) in [
        ("AXB", &["X: m×n, A: p×m, B: n×q"][..]),
        ("X⁻¹", &["X: n×n spd"][..]),
        ("XᵀX", &["X: m×n"][..]),
        ("σ(X)", &["X: m×n"][..]),
        ("det(X)X⁻¹", &["X: n×n spd"][..]),
        ("Xᵀ", &["X: m×n"][..]),
    ] {
        check_with(expr, "X", decls, vec, "vec");
    }
    let hessian = &["--form", "vec", "--order", "2"];
    for (expr, decls) in [
        ("tr(XᵀAX)", &["X: n×m, A: n×n"][..]),
        ("tr(AXBXᵀ)", &["X: m×n, A: m×m, B: n×n"][..]),
        ("log|X|", &["X: n×n spd"][..]),
    ] {
        check_with(expr, "X", decls, hessian, "vec2");
    }
}

#[test]
fn numpy_diagonal_products_are_row_and_column_scaling() {
    // The logistic Hessian Xᵀ diag(σ ⊙ (1 − σ))X: checked against finite differences,
    // and emitted as `v[:, None] * X` (or `Xᵀ * v[None, :]`), never as a dense np.diag.
    let hessian = &["--order", "2"];
    for (expr, decls) in [
        (
            "−sum(y ⊙ log(σ(Xw)) + (vector(1) − y) ⊙ log(vector(1) − σ(Xw)))",
            &["X: n×d", "y: n"][..],
        ),
        ("sum(softplus(Xw)) − yᵀXw", &["X: n×d", "y: n"][..]),
        ("sum(log(1 + exp(−y ⊙ Xw)))", &["X: n×d", "y: n"][..]),
    ] {
        check_with(expr, "w", decls, hessian, "vec2");
        let mut args = vec![
            "diff", expr, "--wrt", "w", "--order", "2", "--format", "numpy",
        ];
        for decl in decls {
            args.extend(["--decl", decl]);
        }
        let output = Command::new(env!("CARGO_BIN_EXE_matcalc"))
            .args(&args)
            .output()
            .expect("the matcalc binary runs");
        let code = String::from_utf8_lossy(&output.stdout);
        let body = &code[code.find("def derivative").expect("a derivative function")..];
        assert!(
            body.contains("[:, None] *") || body.contains("* ") && body.contains("[None, :]"),
            "{expr}: no row scaling in\n{body}"
        );
        assert!(
            !body.contains("np.diag("),
            "{expr}: a dense diagonal in\n{body}"
        );
    }
}
