//! The REPL driven through piped standard input: one scripted session covering every
//! statement and command, snapshotted, with the facts that matter asserted too.

#[path = "common/run.rs"]
#[allow(dead_code)] // The REPL tests need only `repl`.
mod run;

/// The REPL's exit status and standard output for `script`.
fn repl(script: &str) -> (i32, String) {
    let run = run::repl(script);
    (run.status, run.stdout)
}

const SESSION: &str = "\
:help
W: m×n, x: n
d/dW ½‖WᵀWx − x‖²
:check
:verify W(zxᵀ + xzᵀ)
:verify W(WᵀWx − x)xᵀ + Wx(WᵀWx − x)ᵀ
:latex
:json
:shapes
:explain
:graph GRAPHFILE
let K = αXXᵀ + β⁻¹I
diff −c − D/2 log|K| − ½ tr(K⁻¹YYᵀ) wrt X
:check
:verify −DαK⁻¹X + αK⁻¹YYᵀK⁻¹X
:verify α/2 ((K⁻ᵀ)²YYᵀ + YYᵀ(K⁻ᵀ)²)X − DαK⁻¹X
let z₁ = W₁x + b₁
d/dW₁,b₁,W₂,b₂ ½‖W₂ swish(z₁) + b₂ − y‖²
:check
d/dz ½‖W₂ swish(z) + b₂ − y‖²
:verify (σ(z) + z ⊙ (1 − σ(z))) ⊙ W₂ᵀ(W₂ swish(z) + b₂ − y)
:numpy
:env
tr(
  AB
)
z(1 − σ(z))
:frobnicate
:reset
:env
:quit
d/dx never reached
";

#[test]
fn repl_scripted_session() {
    let graph = std::env::temp_dir().join(format!("matcalc-repl-{}.svg", std::process::id()));
    let script = SESSION.replace("GRAPHFILE", &graph.display().to_string());
    let (status, out) = repl(&script);
    let svg = std::fs::read_to_string(&graph).expect(":graph wrote the file");
    assert!(svg.contains("<svg"), "{svg}");
    let out = out.replace(&graph.display().to_string(), "GRAPHFILE");
    // The session had bad lines (a shape error, an unknown command), so it exits 2, but it
    // went on after each of them.
    assert_eq!(status, 2, "{out}");
    // Piped input is not a terminal: no prompts are echoed.
    assert!(!out.contains('»'), "{out}");
    assert!(!out.contains("never reached"), "{out}");
    let checks = out.matches("check: ok").count();
    assert!(checks >= 6, "every :check passes: {out}");
    assert!(out.contains("claim: correct"), "{out}");
    assert!(out.contains("claim: wrong"), "{out}");
    assert!(out.contains("did you mean ⊙"), "{out}");
    assert!(out.contains("def derivative("), "{out}");
    assert!(out.contains("Backward pass"), "{out}");
    insta::with_settings!({snapshot_path => "../snapshots/repl", prepend_module_to_snapshot => false, omit_expression => true, filters => vec![(r"max rel\. error [0-9.e+-]+", "max rel. error [ERR]"), (r#""(\w+_us)": \d+"#, r#""$1": [µs]"#)]}, {
        insta::assert_snapshot!("scripted_session", out);
    });
}
