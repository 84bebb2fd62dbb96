//! The vec form (`--form vec`): Jacobians ∂vec(F)/∂vec(X) and Hessian matrices in vec(X)
//! for the standard table of the Matrix Cookbook (§10.2) and Magnus & Neudecker
//! (ch. 9–10). Each entry is checked three ways: matcalc's answer against finite
//! differences of vec(F), the textbook closed form against the same finite differences,
//! and the printed answer against a snapshot.

#[path = "common/run.rs"]
#[allow(dead_code)] // Not every test file drives the REPL.
mod run;
use run::matcalc;

use matcalc::diff::{Derivative, DerivativeKind};
use matcalc::forms::Notation;
use matcalc::numeric::{check_derivative, CheckConfig};
use matcalc::print::Style;
use matcalc::session::{Options, Session};
use matcalc::{Dim, Expr, ExprKind, Shape};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// One row of the table: F, its declarations, the order, the display matcalc prints
/// and the textbook's closed form (K_{m,n} the commutation matrix).
struct Row {
    expr: &'static str,
    decls: &'static str,
    wrt: &'static str,
    order: u8,
    ours: &'static str,
    textbook: &'static str,
}

const fn row(
    expr: &'static str,
    decls: &'static str,
    wrt: &'static str,
    order: u8,
    ours: &'static str,
    textbook: &'static str,
) -> Row {
    Row {
        expr,
        decls,
        wrt,
        order,
        ours,
        textbook,
    }
}

/// Magnus & Neudecker, Table 9.2 and §10.6; Cookbook (520)–(525).
const TABLE: &[Row] = &[
    row("AXB", "X: m×n, A: p×m, B: n×q", "X", 1, "Bᵀ ⊗ A", "Bᵀ ⊗ A"),
    row("Xᵀ", "X: m×n", "X", 1, "K₍ₘ,ₙ₎", "K_{m,n}"),
    row("X⁻¹", "X: n×n", "X", 1, "−X⁻ᵀ ⊗ X⁻¹", "−X⁻ᵀ ⊗ X⁻¹"),
    row("XᵀX", "X: m×n", "X", 1, "(K₍ₙ,ₙ₎ + I)(I ⊗ Xᵀ)", "(I + K_{n,n})(I ⊗ Xᵀ)"),
    row("XXᵀ", "X: m×n", "X", 1, "(K₍ₘ,ₘ₎ + I)(X ⊗ I)", "(I + K_{m,m})(X ⊗ I)"),
    row("X ⊙ X", "X: m×n", "X", 1, "2 diag(vec(X))", "2diag(vec(X))"),
    row(
        "X³",
        "X: n×n",
        "X",
        1,
        "Xᵀ ⊗ X + Zᵀ ⊗ I + I ⊗ Z",
        "(Xᵀ)² ⊗ I + Xᵀ ⊗ X + I ⊗ X²",
    ),
    row(
        "det(X)X⁻¹",
        "X: n×n",
        "X",
        1,
        "det(X)(vec(X⁻¹) vec(Z)ᵀ − Z ⊗ X⁻¹)",
        "det(X)(vec(X⁻¹)vec(X⁻ᵀ)ᵀ − X⁻ᵀ ⊗ X⁻¹)",
    ),
    row(
        "σ(X)",
        "X: m×n",
        "X",
        1,
        "diag(vec(σ(X) ⊙ (1 − σ(X))))",
        "diag(vec(σ(X) ⊙ (1 − σ(X))))",
    ),
    row("tr(XᵀAX)", "X: n×m, A: n×n", "X", 2, "I ⊗ (A + Aᵀ)", "I ⊗ (A + Aᵀ)"),
    row(
        "tr(AXBXᵀ)",
        "X: m×n, A: m×m, B: n×n",
        "X",
        2,
        "B ⊗ Aᵀ + Bᵀ ⊗ A",
        "Bᵀ ⊗ A + B ⊗ Aᵀ",
    ),
    row("log|X|", "X: n×n", "X", 2, "−K₍ₙ,ₙ₎(X⁻ᵀ ⊗ X⁻¹)", "−K_{n,n}(X⁻ᵀ ⊗ X⁻¹)"),
    // f = ½‖r‖², r = WᵀWx − x: d²f = ‖dr‖² + rᵀd²r, dr = J vec(dW) with
    // J = ((Wx)ᵀ ⊗ I)K₍ₘ,ₙ₎ + xᵀ ⊗ Wᵀ, and rᵀd²r = 2 tr(dWᵀdW xrᵀ).
    row(
        "½‖WᵀWx − x‖²",
        "W: m×n, x: n",
        "W",
        2,
        "K₍ₙ,ₘ₎((WZ ⊗ I)(K₍ₙ,ₙ₎ + I)(I ⊗ Wᵀ) + W ⊗ ZWᵀ) + Z ⊗ WWᵀ + (xzᵀ + zxᵀ) ⊗ I",
        "(((Wx)ᵀ ⊗ I)K_{m,n} + xᵀ ⊗ Wᵀ)ᵀ(((Wx)ᵀ ⊗ I)K_{m,n} + xᵀ ⊗ Wᵀ) + ((WᵀWx − x)xᵀ + x(WᵀWx − x)ᵀ) ⊗ I",
    ),
];

/// The rows whose display is still longer than the textbook's closed form: none. (The
/// autoencoder's Hessian was: the textbook writes JᵀJ + (rxᵀ + xrᵀ) ⊗ I with J repeated,
/// ours expands JᵀJ into four Kronecker terms, 97 characters with its `where` lines
/// against 95, until its sum printed flat: 95.)
const LONGER_THAN_TEXTBOOK: &[&str] = &[];

fn session(decls: &str) -> Session {
    let mut session = Session::new();
    session.declare(decls).expect("declarations parse");
    session
}

/// The closed form with the sizes that only the context fixes (the I of `I ⊗ A`, typed
/// alone, has a size of its own) renamed to the declared sizes that make its shape
/// `expected`.
fn pinned(expr: Expr, expected: &Shape, f: &matcalc::shape::Typed) -> Expr {
    let declared: BTreeSet<String> = f
        .vars
        .values()
        .flat_map(|decl| [decl.shape.rows.clone(), decl.shape.cols.clone()])
        .flat_map(|dim| {
            dim.symbols()
                .into_iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut free = BTreeSet::new();
    collect_sizes(&expr, &mut free);
    let free: Vec<String> = free.difference(&declared).cloned().collect();
    let declared: Vec<String> = declared.into_iter().collect();
    let choices = declared.len().pow(free.len() as u32);
    for choice in 0..choices {
        let mut rest = choice;
        let mut map = BTreeMap::new();
        for name in &free {
            map.insert(name.clone(), declared[rest % declared.len()].clone());
            rest /= declared.len();
        }
        let renamed = rename_sizes(&expr, &map);
        if renamed.shape == *expected {
            return renamed;
        }
    }
    expr
}

fn collect_sizes(expr: &Expr, out: &mut BTreeSet<String>) {
    for dim in [&expr.shape.rows, &expr.shape.cols] {
        out.extend(dim.symbols().into_iter().map(|s| s.to_string()));
    }
    for child in expr.children() {
        collect_sizes(child, out);
    }
}

fn rename_dim(dim: &Dim, map: &BTreeMap<String, String>) -> Dim {
    dim.factors()
        .iter()
        .map(|factor| match factor {
            Dim::Sym(name) => Dim::Sym(map.get(name.as_str()).map_or(*name, |to| to.into())),
            other => other.clone(),
        })
        .fold(Dim::Known(1), |product, factor| product.times(&factor))
}

fn rename_sizes(expr: &Expr, map: &BTreeMap<String, String>) -> Expr {
    let mut copy = expr.clone();
    copy.shape = Shape::new(
        rename_dim(&expr.shape.rows, map),
        rename_dim(&expr.shape.cols, map),
    );
    if let ExprKind::Commutation(m, n) = &expr.kind {
        copy.kind = ExprKind::Commutation(rename_dim(m, map), rename_dim(n, map));
    }
    for child in copy.children_mut() {
        *child = Rc::new(rename_sizes(child, map));
    }
    copy
}

/// The row's derivative in `form`, checked, through the library.
fn checked(row: &Row, form: Notation) -> matcalc::session::DerivativeResult {
    let mut options = Options {
        order: row.order,
        check: true,
        form,
        ..Options::standard()
    };
    // As in the snapshot: the patience limit, not the clock, ends saturation.
    options.limits.time = std::time::Duration::from_secs(60);
    let mut results = session(row.decls)
        .derivative(row.expr, &[row.wrt], &options)
        .unwrap_or_else(|e| panic!("{}: {}", row.expr, e.render()));
    results.remove(0)
}

/// The table through the command line in `form`, each row checked, as one text for a
/// snapshot.
fn command_line_table(form: &str) -> String {
    let mut text = String::new();
    for row in TABLE {
        let order = row.order.to_string();
        let args = [
            "diff",
            row.expr,
            "--wrt",
            row.wrt,
            "--form",
            form,
            "--check",
            "--order",
            &order,
            "--decl",
            row.decls,
            // A generous time limit: under load the default one could stop saturation
            // at a different form than the patience limit does.
            "--time-limit",
            "60000",
        ];
        let run = matcalc(&args);
        assert_eq!(run.status, 0, "{}: {}{}", row.expr, run.stdout, run.stderr);
        assert!(run.stdout.contains("check: ok"), "{}", run.stdout);
        text += &format!("$ matcalc {}\n{}\n", args.join(" "), run.stdout);
    }
    text
}

#[test]
fn forms_vec_table_checks_ours_and_the_textbook() {
    let mut failures = Vec::new();
    for row in TABLE {
        let session = session(row.decls);
        let result = &checked(row, Notation::Vec);
        let printed = result.form.render(Style::Unicode);
        if printed != row.ours {
            failures.push(format!(
                "{}: prints {printed}, expected {}",
                row.expr, row.ours
            ));
        }
        if !result.check.as_ref().is_some_and(|v| v.is_pass()) {
            failures.push(format!(
                "{}: our answer fails: {:?}",
                row.expr, result.check
            ));
        }
        // The textbook's closed form, typed with the same variables, against the same
        // finite differences of vec(F).
        let typed = session.typed(row.expr).expect("F types");
        let closed = session
            .typed(row.textbook)
            .unwrap_or_else(|e| panic!("{}: {}", row.textbook, e.render()));
        let closed = pinned(closed.expr, &result.shape, &typed);
        assert_eq!(closed.shape, result.shape, "{}", row.textbook);
        let claim = Derivative {
            kind: if row.order == 2 {
                DerivativeKind::Hessian
            } else {
                DerivativeKind::Jacobian
            },
            wrt: row.wrt.to_string(),
            expr: closed,
            symmetric: false,
        };
        // No longer than the textbook: the display, with its `where` lines or with
        // them written out, whichever is shorter, against the closed form as printed.
        let with_wheres: usize = printed.chars().count()
            + result
                .wheres()
                .iter()
                .map(|(name, body)| format!("{name} = {body}").chars().count())
                .sum::<usize>();
        let written_out = matcalc::print::render(&result.form.expanded(), Style::Unicode);
        let ours_written = with_wheres.min(written_out.chars().count());
        let textbook_written = matcalc::print::render(&claim.expr, Style::Unicode);
        let longer = ours_written > textbook_written.chars().count();
        if longer != LONGER_THAN_TEXTBOOK.contains(&row.expr) {
            failures.push(format!(
                "{}: {printed} ({ours_written} characters at best) against the textbook's \
                 {textbook_written}: longer is {longer}",
                row.expr
            ));
        }
        let verdict = check_derivative(&typed, &claim, &CheckConfig::standard());
        if !verdict.is_pass() {
            failures.push(format!(
                "{}: the textbook's {} fails: {verdict:?}",
                row.expr, row.textbook
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn forms_vec_check_catches_a_wrong_claim() {
    // The check compares entry by entry: the transpose of the right answer fails.
    let session = session("X: n×n");
    let typed = session.typed("X⁻¹").unwrap();
    let wrong = session.typed("−X⁻¹ ⊗ X⁻ᵀ").unwrap();
    let claim = Derivative {
        kind: DerivativeKind::Jacobian,
        wrt: "X".into(),
        expr: wrong.expr,
        symmetric: false,
    };
    assert!(!check_derivative(&typed, &claim, &CheckConfig::standard()).is_pass());
}

#[test]
fn forms_vec_table_snapshot_of_the_command_line() {
    let text = command_line_table("vec");
    insta::with_settings!({snapshot_path => "../snapshots/forms", prepend_module_to_snapshot => false, omit_expression => true, filters => vec![(r"max rel\. error [0-9.e+-]+", "max rel. error [ERR]")]}, {
        insta::assert_snapshot!("vec_table", text);
    });
}

#[test]
fn forms_vec_json_has_the_vec_key() {
    let run = matcalc(&[
        "diff", "X⁻¹", "--wrt", "X", "--decl", "X: n×n", "--form", "vec", "--format", "json",
        "--check",
    ]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let value: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(value["form"], "vec");
    assert_eq!(value["vec"], "−X⁻ᵀ ⊗ X⁻¹");
    assert_eq!(value["derivative"], "−X⁻ᵀ ⊗ X⁻¹");
    assert_eq!(value["shape"], serde_json::json!(["n²", "n²"]));
    assert_eq!(value["check"]["passed"], true);
}

#[test]
fn forms_vec_hessian_in_every_spelling() {
    let run = matcalc(&[
        "diff",
        "tr(XᵀAX)",
        "--wrt",
        "X",
        "--order",
        "2",
        "--form",
        "vec",
        "--format",
        "latex",
    ]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(r"I \otimes \left(A + A^\top\right)"),
        "{}",
        run.stdout
    );
    let run = matcalc(&[
        "diff",
        "tr(XᵀAX)",
        "--wrt",
        "X",
        "--order",
        "2",
        "--form",
        "vec",
        "--format",
        "ascii",
    ]);
    assert_eq!(run.stdout, "d2f/dvec(X)dvec(X)' = kron(I, A + A')\n");
}

#[test]
fn forms_unknown_form_is_a_usage_error() {
    let run = matcalc(&["diff", "X⁻¹", "--wrt", "X", "--form", "kron"]);
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("unknown form `kron`"), "{}", run.stderr);
}

/// `--form index`: the same table in index notation. The printed entries are evaluated
/// on random instances and compared with the vec form's Jacobian, which the check holds
/// to finite differences: what is printed is what is checked.
#[test]
fn forms_index_table_agrees_with_the_checked_jacobian() {
    use rand::SeedableRng;
    let mut failures = Vec::new();
    for row in TABLE {
        let session = session(row.decls);
        let result = &checked(row, Notation::Index);
        if !result.check.as_ref().is_some_and(|v| v.is_pass()) {
            failures.push(format!(
                "{}: the Jacobian fails: {:?}",
                row.expr, result.check
            ));
        }
        let form = result.index_form().expect("an index form");
        let typed = session.typed(row.expr).unwrap();
        let jacobian = result.form.expanded();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let mut compared = 0;
        for _ in 0..20 {
            let instance = matcalc::numeric::draw_instance(&typed, &mut rng);
            let (Ok(expected), Ok(printed)) = (
                matcalc::numeric::evaluate(&jacobian, &instance),
                form.evaluate(&instance),
            ) else {
                continue;
            };
            let scale = expected.amax().max(1.0);
            if (&printed - &expected).amax() > 1e-9 * scale {
                failures.push(format!(
                    "{}: {} differs from the Jacobian\n{printed}\n{expected}",
                    row.expr,
                    form.render(Style::Unicode)
                ));
                break;
            }
            compared += 1;
            if compared == 3 {
                break;
            }
        }
        if compared < 3 {
            failures.push(format!("{}: no instance to compare on", row.expr));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn forms_index_of_the_textbook_entries() {
    let cases = [
        ("X⁻¹", "X: n×n", 1, "∂(X⁻¹)ᵢⱼ/∂Xₖₗ = −(X⁻¹)ᵢₖ(X⁻¹)ₗⱼ"),
        ("XᵀX", "X: m×n", 1, "∂(XᵀX)ᵢⱼ/∂Xₖₗ = δᵢₗXₖⱼ + Xₖᵢδⱼₗ"),
        ("AXB", "X: m×n", 1, "∂(AXB)ᵢⱼ/∂Xₖₗ = AᵢₖBₗⱼ"),
        ("Xᵀ", "X: m×n", 1, "∂(Xᵀ)ᵢⱼ/∂Xₖₗ = δⱼₖδᵢₗ"),
        ("tr(AX)", "X: m×n", 1, "∂tr(AX)/∂Xₖₗ = Aₗₖ"),
        ("tr(XᵀAX)", "X: n×m", 2, "∂²f/∂Xᵢⱼ∂Xₖₗ = Aₖᵢδⱼₗ + Aᵢₖδⱼₗ"),
        ("log|X|", "X: n×n", 2, "∂²f/∂Xᵢⱼ∂Xₖₗ = −(X⁻¹)ₗᵢ(X⁻¹)ⱼₖ"),
    ];
    for (expr, decls, order, expected) in cases {
        let session = session(decls);
        let typed = session.typed(expr).unwrap();
        let form =
            matcalc::forms::index::derivative(&typed, "X", order, ("k", "l"), 10_000).unwrap();
        assert_eq!(form.render(Style::Unicode), expected);
    }
    let session = session("X: n×n");
    let typed = session.typed("X⁻¹").unwrap();
    let form = matcalc::forms::index::derivative(&typed, "X", 1, ("k", "l"), 10_000).unwrap();
    assert_eq!(
        form.render(Style::Latex),
        r"\frac{\partial F_{ij}}{\partial X_{kl}} = -(X^{-1})_{ik} (X^{-1})_{lj}"
    );
}

#[test]
fn forms_index_table_snapshot_of_the_command_line() {
    let text = command_line_table("index");
    insta::with_settings!({snapshot_path => "../snapshots/forms", prepend_module_to_snapshot => false, omit_expression => true, filters => vec![(r"max rel\. error [0-9.e+-]+", "max rel. error [ERR]")]}, {
        insta::assert_snapshot!("index_table", text);
    });
}

#[test]
fn forms_index_json_has_the_index_key() {
    let run = matcalc(&[
        "diff", "X⁻¹", "--wrt", "X", "--decl", "X: n×n", "--form", "index", "--format", "json",
    ]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let value: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(value["form"], "index");
    assert_eq!(value["index"], "∂(X⁻¹)ᵢⱼ/∂Xₖₗ = −(X⁻¹)ᵢₖ(X⁻¹)ₗⱼ");
    assert_eq!(
        value["index_latex"],
        r"\frac{\partial F_{ij}}{\partial X_{kl}} = -(X^{-1})_{ik} (X^{-1})_{lj}"
    );
}

/// `explain --form vec|index` names each rule it used on the differential, with the
/// node's own factors, and ends with the result, checked.
#[test]
fn forms_explain_states_each_rule_used() {
    let explain = |args: &[&str]| {
        let mut all = vec!["explain"];
        all.extend_from_slice(args);
        let run = matcalc(&all);
        assert_eq!(run.status, 0, "{args:?}: {}{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("check: ok"), "{}", run.stdout);
        format!("$ matcalc {}\n{}\n", all.join(" "), run.stdout)
    };
    let inverse = explain(&[
        "X⁻¹", "--wrt", "X", "--decl", "X: n×n", "--form", "vec", "--check",
    ]);
    for fact in [
        "  −X⁻¹ dX X⁻¹\n",
        "vec(M dY) = (I ⊗ M) vec(dY) with M = X⁻¹, dY = dX",
        "vec(dY M) = (Mᵀ ⊗ I) vec(dY) with dY = X⁻¹ dX, M = X⁻¹",
        "∂vec(F)/∂vec(X) = −X⁻ᵀ ⊗ X⁻¹\n",
    ] {
        assert!(inverse.contains(fact), "{fact}\n{inverse}");
    }
    let gram = explain(&[
        "XᵀX", "--wrt", "X", "--decl", "X: m×n", "--form", "vec", "--check",
    ]);
    assert!(
        gram.contains("vec(dYᵀ) = K₍ₘ,ₙ₎ vec(dY) for dY: m×n: the commutation matrix"),
        "{gram}"
    );
    let hessian = explain(&[
        "tr(XᵀAX)",
        "--wrt",
        "X",
        "--decl",
        "X: n×m, A: n×n",
        "--form",
        "index",
        "--order",
        "2",
        "--check",
    ]);
    for fact in [
        "the differential dG of the gradient G",
        "(dX)ᵣ꜀ = δᵣₖδ꜀ₗ dXₖₗ",
        "(M dY)ᵣ꜀ = Σₛ Mᵣₛ(dY)ₛ꜀ with M = Aᵀ, dY = dX",
        "∂²f/∂Xᵢⱼ∂Xₖₗ = ",
    ] {
        assert!(hessian.contains(fact), "{fact}\n{hessian}");
    }
    insta::with_settings!({snapshot_path => "../snapshots/forms", prepend_module_to_snapshot => false, omit_expression => true, filters => vec![(r"max rel\. error [0-9.e+-]+", "max rel. error [ERR]")]}, {
        insta::assert_snapshot!("explain", inverse + &gram + &hessian);
    });

    let run = matcalc(&[
        "explain", "X⁻¹", "--wrt", "X", "--decl", "X: n×n", "--form", "vec", "--format", "json",
    ]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let value: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(value["form"], "vec");
    assert_eq!(value["differential"], "−X⁻¹ dX X⁻¹");
    assert_eq!(value["steps"].as_array().map(Vec::len), Some(2), "{value}");
    assert!(value["result"].as_str().unwrap().contains("−X⁻ᵀ ⊗ X⁻¹"));
}

#[test]
fn forms_explain_refuses_what_it_cannot_show() {
    for (args, says) in [
        (
            vec![
                "explain", "X⁻¹", "--wrt", "X", "--form", "vec", "--graph", "svg",
            ],
            "--graph",
        ),
        (
            vec!["explain", "tr(XᵀAX)", "--wrt", "X", "--order", "2"],
            "--order",
        ),
        (
            vec![
                "explain", "X⁻¹", "--wrt", "X", "--form", "index", "--format", "latex",
            ],
            "latex",
        ),
    ] {
        let run = matcalc(&args);
        assert_eq!(run.status, 2, "{args:?}: {}", run.stdout);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
}

/// The REPL's `:form` and `:order`: the issue's two questions asked in the REPL, each
/// answer checked there with `:check`.
#[test]
fn forms_in_the_repl() {
    let script = "\
X: n×n
:form
:form vec
d/dX X⁻¹
:check
:order 2
d/dX tr(XᵀAX)
:check
:json
:form index
:order 1
d/dX X⁻¹
:form kron
:order 3
:form differential
:order
d/dX X⁻¹
";
    let run = run::repl(script);
    let out = run.stdout;
    assert!(out.contains("∂vec(F)/∂vec(X) = −X⁻ᵀ ⊗ X⁻¹\n"), "{out}");
    assert!(
        out.contains("∂²f/∂vec(X)∂vec(X)ᵀ = I ⊗ (A + Aᵀ)\n"),
        "{out}"
    );
    // Each check is named as its result was printed.
    assert!(out.contains("∂vec(F)/∂vec(X): check: ok"), "{out}");
    assert!(out.contains("∂²f/∂vec(X)∂vec(X)ᵀ: check: ok"), "{out}");
    assert!(out.contains("\"vec\": \"I ⊗ (A + Aᵀ)\""), "{out}");
    assert!(out.contains("∂(X⁻¹)ᵢⱼ/∂Xₖₗ = −(X⁻¹)ᵢₖ(X⁻¹)ₗⱼ\n"), "{out}");
    assert!(out.contains("dF = −X⁻¹ dX X⁻¹\n"), "{out}");
    // Piped, errors stay in order with the output; the bad commands make the exit 2.
    assert_eq!(run.status, 2, "the two bad commands: {out}");
    assert!(out.contains("error: unknown form `kron`"), "{out}");
    assert!(out.contains("error: unknown order `3`"), "{out}");
    insta::with_settings!({snapshot_path => "../snapshots/forms", prepend_module_to_snapshot => false, omit_expression => true, filters => vec![(r"max rel\. error [0-9.e+-]+", "max rel. error [ERR]"), (r#""(\w+_us)": \d+"#, r#""$1": [µs]"#)]}, {
        insta::assert_snapshot!("repl", format!("{script}\n---\n{out}"));
    });
}

/// `--wrt 'X[m,n]'`: the derivative by one entry, in index notation, as SymPy's
/// `expr.diff(X[m, n])`; each printed form checked against finite differences in the
/// entry (`check: ok` is the entry form's own check).
#[test]
fn forms_entry_as_the_variable() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("tr(AX)", "X: m×n", "X[m,n]", "∂tr(AX)/∂Xₘₙ = Aₙₘ\n"),
        ("xᵀAx", "x: n", "x[i]", "∂xᵀAx/∂xᵢ = ((A + Aᵀ)x)ᵢ\n"),
        ("X⁻¹", "X: n×n", "X[m,n]", "∂(X⁻¹)ᵢⱼ/∂Xₘₙ = −(X⁻¹)ᵢₘ(X⁻¹)ₙⱼ\n"),
        // F's indices are named apart from the ones the user chose.
        ("XᵀX", "X: m×n", "X[i,j]", "∂(XᵀX)ₖₗ/∂Xᵢⱼ = δₖⱼXᵢₗ + Xᵢₖδₗⱼ\n"),
        ("AXB", "X: m×n", "Xₘₙ", "∂(AXB)ᵢⱼ/∂Xₘₙ = AᵢₘBₙⱼ\n"),
        (
            "½‖WᵀWx − x‖²",
            "W: m×n, x: n",
            "W[m,n]",
            "∂½‖WᵀWx − x‖²/∂Wₘₙ = (W(zxᵀ + xzᵀ))ₘₙ\n  where z = WᵀWx − x\n",
        ),
        // S⁻ᵀ = S⁻¹ for the declared S; the note says which derivative this is.
        (
            "log|S|",
            "S: n×n spd",
            "S[m,n]",
            "∂log|S|/∂Sₘₙ = (S⁻¹)ₘₙ\n  (S is declared spd: this is the derivative by that one entry, every other entry fixed)\n",
        ),
    ];
    let mut text = String::new();
    for (expr, decls, wrt, expected) in cases {
        let args = ["diff", expr, "--wrt", wrt, "--decl", decls, "--check"];
        let run = matcalc(&args);
        assert_eq!(run.status, 0, "{expr}: {}{}", run.stdout, run.stderr);
        assert!(run.stdout.starts_with(expected), "{expr}: {}", run.stdout);
        assert!(run.stdout.contains("check: ok"), "{expr}: {}", run.stdout);
        text += &format!("$ matcalc {}\n{}\n", args.join(" "), run.stdout);
    }
    insta::with_settings!({snapshot_path => "../snapshots/forms", prepend_module_to_snapshot => false, omit_expression => true, filters => vec![(r"max rel\. error [0-9.e+-]+", "max rel. error [ERR]")]}, {
        insta::assert_snapshot!("entry", text);
    });
    // Both spellings of the entry are one question.
    let unicode = matcalc(&["diff", "tr(AX)", "--wrt", "Xₘₙ"]);
    let brackets = matcalc(&["diff", "tr(AX)", "--wrt", "X[m, n]"]);
    assert_eq!(unicode.stdout, brackets.stdout);
    assert_eq!(unicode.stdout, "∂tr(AX)/∂Xₘₙ = Aₙₘ\n");
}

/// The entry form's check compares what is printed with finite differences: a wrong
/// form (Aₘₙ for ∂tr(AX)/∂Xₘₙ) fails it.
#[test]
fn forms_entry_check_catches_a_wrong_form() {
    let session = session("X: n×n, A: n×n");
    let typed = session.typed("tr(AX)").unwrap();
    let a = session.typed("A").unwrap().expr;
    let wrong = matcalc::forms::entry::of_gradient(&typed, "X", &a, ("m", "n"));
    assert_eq!(wrong.render(Style::Unicode), "∂tr(AX)/∂Xₘₙ = Aₘₙ");
    let config = CheckConfig::standard();
    assert!(!matcalc::forms::entry::check(&typed, "X", &wrong, &[], &config).is_pass());
    let right = session.typed("Aᵀ").unwrap().expr;
    let right = matcalc::forms::entry::of_gradient(&typed, "X", &right, ("m", "n"));
    assert!(matcalc::forms::entry::check(&typed, "X", &right, &[], &config).is_pass());
}

#[test]
fn forms_entry_bad_requests_are_errors() {
    for (args, says) in [
        (
            vec!["diff", "tr(AX)", "--wrt", "X[1,2]"],
            "one lower-case letter",
        ),
        (
            vec!["diff", "tr(AX)", "--wrt", "X[m]"],
            "give two indices, `X[m,n]`",
        ),
        (
            vec!["diff", "xᵀx", "--wrt", "x[i,j]"],
            "give one index, `x[i]`",
        ),
        (vec!["diff", "α tr(X)", "--wrt", "α[i]"], "it is a scalar"),
        (
            vec!["diff", "tr(AX)", "--wrt", "Y[m,n]"],
            "unknown variable `Y`",
        ),
        (vec!["diff", "tr(AX)", "--wrt", "X[m,m]"], "repeated"),
        (vec!["diff", "tr(AX)", "--wrt", "X[m,n"], "closing `]`"),
        (
            vec!["diff", "tr(XᵀX)", "--wrt", "X[m,n]", "--order", "2"],
            "--form index",
        ),
        (
            vec!["diff", "X⁻¹", "--wrt", "X[m,n]", "--form", "vec"],
            "the default form",
        ),
        (
            vec!["verify", "tr(AX)", "--wrt", "X[m,n]", "--claim", "Aᵀ"],
            "not by the entry",
        ),
    ] {
        let run = matcalc(&args);
        assert_eq!(run.status, 2, "{args:?}: {}", run.stdout);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn forms_entry_in_json_the_library_and_the_repl() {
    let run = matcalc(&[
        "diff", "tr(AX)", "--wrt", "X[m,n]", "--format", "json", "--check",
    ]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let value: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(value["entry"], "X[m,n]");
    assert_eq!(value["form"], "index");
    assert_eq!(value["index"], "∂tr(AX)/∂Xₘₙ = Aₙₘ");
    assert_eq!(value["derivative"], "Aᵀ");
    assert_eq!(value["check"]["passed"], true);

    // Several variables, an entry among them: the comma inside brackets is no separator.
    let run = matcalc(&["diff", "xᵀAx", "--wrt", "A,x[i]", "--check"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("∂xᵀAx/∂xᵢ = ((A + Aᵀ)x)ᵢ\n"),
        "{}",
        run.stdout
    );

    let options = Options {
        check: true,
        ..Options::standard()
    };
    let results = session("X: n×n")
        .derivative("X⁻¹", &["X[k,l]"], &options)
        .unwrap();
    assert_eq!(
        results[0].to_text(Style::Unicode),
        "∂(X⁻¹)ᵢⱼ/∂Xₖₗ = −(X⁻¹)ᵢₖ(X⁻¹)ₗⱼ\n"
    );
    assert!(results[0].check.as_ref().is_some_and(|v| v.is_pass()));

    let run = run::repl("A: n×n\n∂/∂Xₘₙ tr(AX)\n:check\nd/dX[m, n] tr(AX)\nd/dx[i] xᵀAx\n:check\n");
    assert_eq!(run.status, 0, "{}", run.stdout);
    assert_eq!(
        run.stdout.matches("∂tr(AX)/∂Xₘₙ = Aₙₘ\n").count(),
        2,
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("∂xᵀAx/∂xᵢ = ((A + Aᵀ)x)ᵢ\n"),
        "{}",
        run.stdout
    );
    assert_eq!(run.stdout.matches("check: ok").count(), 2, "{}", run.stdout);
}
