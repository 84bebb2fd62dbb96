//! The language of issue 12, one corpus file per family in `tests/cases/language/`, with
//! SymPy's matrix-derivative tests translated in `tests/cases/sympy/` and problems as
//! users paste them in `tests/cases/pasted/`.
//!
//! A derivative case is a block of `key: value` lines (`expr`, `wrt`, optional `decl` and
//! `order`, and `closed`, the textbook answer). For every case: matcalc's printed answer
//! passes its own finite-difference check, the closed form fed as a claim passes it too,
//! and the printed answers of a family are snapshotted (snapshots pin form, the checks pin
//! truth). A case with `error:` instead of `closed:` must be refused with a message that
//! contains it. `spellings.txt` lists, one line each, spellings that must parse to one tree.

use matcalc::numeric::Verdict;
use matcalc::parse::{parse_with, ParseOptions};
use matcalc::print::Style;
use matcalc::session::{Options, Session};

/// One case of a corpus file: a derivative with its closed form, or a refusal.
struct Case {
    expr: String,
    wrt: String,
    decl: Option<String>,
    order: u8,
    expected: Expected,
}

/// What a case expects.
enum Expected {
    /// The textbook closed form of the derivative.
    Closed(String),
    /// An error whose rendering contains this text.
    Error(String),
}

fn cases(text: &str) -> Vec<Case> {
    let mut res = vec![];
    for block in text.split("\n\n") {
        let mut fields = std::collections::BTreeMap::new();
        for line in block.lines().filter(|line| !line.starts_with('#')) {
            if let Some((key, value)) = line.split_once(": ") {
                fields.insert(key.trim(), value.trim().to_string());
            } else if let Some(key) = line.strip_suffix(':') {
                fields.insert(key.trim(), String::new());
            }
        }
        if fields.is_empty() {
            continue;
        }
        let field = |key: &str| {
            fields
                .get(key)
                .cloned()
                .unwrap_or_else(|| panic!("a case without `{key}`: {block}"))
        };
        res.push(Case {
            expr: field("expr"),
            wrt: field("wrt"),
            decl: fields.get("decl").cloned(),
            order: fields
                .get("order")
                .map_or(1, |order| order.parse().unwrap()),
            expected: match fields.get("error") {
                Some(message) => Expected::Error(message.clone()),
                None => Expected::Closed(field("closed")),
            },
        });
    }
    res
}

fn describe(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Pass { .. } => "pass".to_string(),
        Verdict::Fail(counterexample) => counterexample.describe(),
        Verdict::Inconclusive { reason } => format!("inconclusive: {reason}"),
        Verdict::Unreadable { reason } => format!("unreadable: {reason}"),
    }
}

/// Checks every case of one corpus file of `tests/cases/language/` and returns the
/// printed answers, one a line.
fn check_family(file: &str) -> String {
    check_corpus(&format!("language/{file}")).printed
}

/// What a corpus run shows: the printed answers (or errors), one a line, and for each
/// answer the size of its display against the closed form's.
struct Corpus {
    printed: String,
    /// (display nodes, where bodies included; the closed form's nodes)
    sizes: Vec<(usize, usize)>,
    errors: usize,
}

/// The number of nodes a form shows: its display and every `where` body.
fn shown_size(form: &matcalc::session::Form) -> usize {
    form.display.size()
        + form
            .wheres
            .iter()
            .map(|(_, body)| body.size())
            .sum::<usize>()
}

/// Checks every case of `tests/cases/{file}`.
fn check_corpus(file: &str) -> Corpus {
    let path = format!("{}/tests/cases/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut printed = String::new();
    let mut failures = vec![];
    let mut sizes = vec![];
    let mut errors = 0;
    for case in cases(&text) {
        let mut session = Session::new();
        if let Some(decl) = &case.decl {
            session
                .declare(decl)
                .unwrap_or_else(|e| panic!("{decl}: {e:?}"));
        }
        let mut options = Options::standard();
        // Node and iteration limits, not the clock, end saturation here, so that the
        // snapshotted forms do not depend on how loaded the machine is.
        options.limits.time = std::time::Duration::from_secs(60);
        options.order = case.order;
        options.check = true;
        let name = format!("{} (wrt {}, order {})", case.expr, case.wrt, case.order);
        let outcome = session.derivative(&case.expr, &[&case.wrt], &options);
        let closed = match (&case.expected, outcome) {
            (Expected::Closed(closed), Ok(results)) => {
                sizes.push((shown_size(&results[0].form), 0));
                (closed.clone(), results)
            }
            (Expected::Closed(_), Err(error)) => {
                failures.push(format!("{name}: {}", error.render()));
                continue;
            }
            (Expected::Error(message), Err(error)) => {
                let rendered = error.render();
                let first = rendered.lines().next().unwrap_or_default();
                printed.push_str(&format!("{} | {first}\n", case.expr));
                errors += 1;
                if !rendered.contains(message.as_str()) {
                    failures.push(format!("{name}: expected `{message}`, got {rendered}"));
                }
                continue;
            }
            (Expected::Error(message), Ok(results)) => {
                let answer = results[0].to_text(Style::Unicode);
                failures.push(format!(
                    "{name}: expected the error `{message}`, got {answer}"
                ));
                continue;
            }
        };
        let (closed, results) = closed;
        match session.typed(&closed) {
            Ok(typed) => {
                if let Some(last) = sizes.last_mut() {
                    last.1 = typed.expr.size();
                }
            }
            // Closed forms with the derivative's own sizes (`𝟙𝟙ᵀ`) type in its context.
            Err(_) => {
                if let Ok(parsed) = session.parse(&closed) {
                    if let Some(last) = sizes.last_mut() {
                        last.1 = parsed.size();
                    }
                }
            }
        }
        let result = &results[0];
        let answer = result.to_text(Style::Unicode);
        let (shown, textbook) = sizes.last().copied().unwrap_or_default();
        printed.push_str(&format!(
            "{} | {} [{shown}/{textbook}]\n",
            case.expr,
            answer.trim_end()
        ));
        match &result.check {
            Some(Verdict::Pass { .. }) => {}
            Some(other) => failures.push(format!("{name}: ours {answer}: {}", describe(other))),
            None => failures.push(format!("{name}: not checked")),
        }
        match session.verify(&case.expr, &case.wrt, &closed, &options) {
            Ok(verified) if matches!(verified.verdict, Verdict::Pass { .. }) => {}
            Ok(verified) => failures.push(format!(
                "{name}: closed form {closed}: {}",
                describe(&verified.verdict)
            )),
            Err(error) => {
                failures.push(format!("{name}: closed form {closed}: {}", error.render()))
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Corpus {
        printed,
        sizes,
        errors,
    }
}

/// The median of display size over closed-form size, as a line for the snapshot.
fn size_summary(corpus: &Corpus) -> String {
    let mut ratios: Vec<f64> = corpus
        .sizes
        .iter()
        .filter(|(_, closed)| *closed > 0)
        .map(|(shown, closed)| *shown as f64 / *closed as f64)
        .collect();
    ratios.sort_by(f64::total_cmp);
    let median = ratios.get(ratios.len() / 2).copied().unwrap_or(f64::NAN);
    let larger = ratios.iter().filter(|ratio| **ratio > 1.0).count();
    format!(
        "# {} answers (display nodes over the textbook's: median {median:.2}, {larger} larger), {} clear errors\n",
        corpus.sizes.len(),
        corpus.errors
    )
}

fn snapshot(name: &str, printed: &str) {
    insta::with_settings!({snapshot_path => "../snapshots/language", prepend_module_to_snapshot => false, omit_expression => true}, {
        insta::assert_snapshot!(name, printed);
    });
}

#[test]
fn language_functions_agree_with_finite_differences_and_closed_forms() {
    snapshot("functions", &check_family("functions.txt"));
}

#[test]
fn language_vector_functions_agree_with_finite_differences_and_closed_forms() {
    snapshot("vectors", &check_family("vectors.txt"));
}

#[test]
fn language_norms_agree_with_finite_differences_and_closed_forms() {
    snapshot("norms", &check_family("norms.txt"));
}

#[test]
fn language_operators_agree_with_finite_differences_and_closed_forms() {
    snapshot("operators", &check_family("operators.txt"));
}

#[test]
fn language_matrixcalculus_examples_agree_with_finite_differences_and_closed_forms() {
    snapshot("matrixcalculus", &check_family("matrixcalculus.txt"));
}

#[test]
fn language_spellings_parse_to_one_tree() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/cases/language/spellings.txt"
    );
    let text = std::fs::read_to_string(path).expect("the spellings corpus");
    let options = ParseOptions::standard();
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let spellings: Vec<&str> = line.split(" ;; ").collect();
        let parse = |src: &str| {
            parse_with(src, &options)
                .unwrap_or_else(|error| panic!("{src}: {}", error.diagnostic().render(src)))
        };
        // One tree once typed (a notation whose meaning depends on shapes, `‖x‖₂` or `|x|`,
        // is resolved by inference), or the same error for every spelling.
        let typed = |tree: &matcalc::Expr| {
            matcalc::shape::infer(tree, &matcalc::Decls::new())
                .map(|typed| typed.expr)
                .map_err(|error| error.message())
        };
        let first = parse(spellings[0]);
        for spelling in &spellings[1..] {
            let other = parse(spelling);
            assert_eq!(
                typed(&other),
                typed(&first),
                "{spelling} differs from {} once typed",
                spellings[0]
            );
        }
    }
}

/// The error a derivative of `expr` by `wrt` gives, rendered with its caret and hints.
fn refusal(expr: &str, wrt: &str) -> String {
    let mut options = Options::standard();
    options.check = true;
    match Session::new().derivative(expr, &[wrt], &options) {
        Ok(results) => panic!("{expr} was read: {}", results[0].to_text(Style::Unicode)),
        Err(error) => error.render(),
    }
}

/// The answer to `expr` by `wrt`, which must pass its own check and equal `closed`.
fn answer(expr: &str, wrt: &str, closed: &str) -> String {
    let session = Session::new();
    let mut options = Options::standard();
    options.check = true;
    let results = session
        .derivative(expr, &[wrt], &options)
        .unwrap_or_else(|error| panic!("{expr}: {}", error.render()));
    let printed = results[0].to_text(Style::Unicode);
    assert!(
        matches!(results[0].check, Some(Verdict::Pass { .. })),
        "{expr}: {printed}"
    );
    let verified = session
        .verify(expr, wrt, closed, &options)
        .unwrap_or_else(|error| panic!("{expr}: {}", error.render()));
    assert!(
        matches!(verified.verdict, Verdict::Pass { .. }),
        "{expr}: {closed} is not the derivative: {}",
        describe(&verified.verdict)
    );
    printed
}

#[test]
fn language_a_fractional_power_without_the_circle_is_never_elementwise() {
    // `A^{1/2}` of a matrix is a matrix root, which matcalc does not have: refused, with
    // the elementwise spelling offered, never silently the elementwise root.
    for (expr, wrt, base) in [
        ("A^{1/2}", "A", "A"),
        ("tr(X^{1/2})", "X", "X"),
        ("sum(X^(0.5))", "X", "X"),
        ("sum(x^{1/2})", "x", "x"),
        ("sum(x^{-1/3})", "x", "x"),
    ] {
        let error = refusal(expr, wrt);
        assert!(error.contains("non-integer power"), "{expr}: {error}");
        assert!(
            error.contains(&format!("write {base}^{{∘")),
            "{expr}: {error}"
        );
        assert!(error.contains("--> 1:"), "{expr} has no caret: {error}");
    }
    assert!(refusal("A^{1/2}", "A").starts_with("error: unsupported: A^{1/2} is a matrix root"));
    assert!(refusal("sum(x^{1/2})", "x").contains("declare it: `x: scalar`"));
    // With the circle, or of a scalar, the power is read and checked.
    answer("sum(x^{∘1/2})", "x", "½ 𝟙 ⊘ sqrt(x)");
    answer("sum(x.^0.5)", "x", "½ 𝟙 ⊘ sqrt(x)");
    answer("(xᵀx)^{1/2}", "x", "x/‖x‖");
    answer("(c^T x)^{1/3}", "x", "⅓(cᵀx)^{−2/3}c");
}

#[test]
fn language_subscripted_norms_of_matrices_are_not_read_as_frobenius() {
    // ‖X‖₂ and ‖X‖₁ of a matrix are the spectral and induced norms.
    for (expr, what, hint) in [
        ("‖X‖₂", "spectral norm", "‖X‖_F"),
        ("\\|X\\|_2^2", "spectral norm", "‖X‖_F"),
        ("||A - B||_2", "spectral norm", "‖A − B‖_F"),
        ("‖X‖₁", "induced 1-norm", "norm1(X)"),
    ] {
        let error = refusal(expr, if expr.contains('X') { "X" } else { "A" });
        assert!(error.contains(what), "{expr}: {error}");
        assert!(error.contains(hint), "{expr}: {error}");
    }
    // matrixcalculus.org's words keep its meaning: Frobenius, entrywise.
    answer("norm2(X)", "X", "X/‖X‖_F");
    answer("norm1(X)", "X", "sign(X)");
    answer("‖X‖_F²", "X", "2X");
    answer("‖Ax − b‖₂", "x", "Aᵀ(Ax − b)/‖Ax − b‖");
}

#[test]
fn language_bars_are_det_of_a_matrix_and_abs_of_a_vector_or_scalar() {
    answer("|X|", "X", "det(X) X⁻ᵀ");
    answer("sum(|x|)", "x", "sign(x)");
    answer("|x|", "x", "diag(sign(x))");
    answer("\\lvert x^T y \\rvert", "x", "sign(xᵀy) y");
    answer("sum(|Ax − b|)", "x", "Aᵀ sign(Ax − b)");
    // A declared non-square matrix between bars is neither.
    let mut session = Session::new();
    session.declare("W: m×n").unwrap();
    let options = Options::standard();
    let error = session.derivative("|W|", &["W"], &options).unwrap_err();
    assert!(error.render().contains("determinant"), "{}", error.render());
}

#[test]
fn language_every_linear_form_is_extracted() {
    snapshot("forms", &check_family("forms.txt"));
}

#[test]
fn language_claims_with_ones_and_identity_take_the_derivative_sizes() {
    // The sizes of `𝟙𝟙ᵀ` and `I` in a claim are free until unified with the derivative's.
    let session = Session::new();
    let mut options = Options::standard();
    options.check = true;
    for (expr, wrt, order, claim, right) in [
        ("sum(X)", "X", 1, "𝟙𝟙ᵀ", true),
        ("sum(X)", "X", 1, "2𝟙𝟙ᵀ", false),
        ("tr(X)", "X", 1, "I", true),
        ("sum(AX)", "X", 1, "Aᵀ𝟙𝟙ᵀ", true),
        ("xᵀx", "x", 2, "2I", true),
        ("xᵀx", "x", 2, "I", false),
        ("(B + xᵀx)y", "x", 1, "2(𝟙ᵀy)𝟙xᵀ", true),
    ] {
        options.order = order;
        let verified = session
            .verify(expr, wrt, claim, &options)
            .unwrap_or_else(|error| panic!("{expr}, claim {claim}: {}", error.render()));
        assert_eq!(
            matches!(verified.verdict, Verdict::Pass { .. }),
            right,
            "{expr}, claim {claim}: {}",
            describe(&verified.verdict)
        );
    }
}

#[test]
fn sympy_matrix_derivative_tests_translated_agree_with_finite_differences_and_closed_forms() {
    let corpus = check_corpus("sympy/test_derivatives.txt");
    assert_eq!(corpus.errors, 0);
    assert!(corpus.sizes.len() >= 100, "{} cases", corpus.sizes.len());
    snapshot(
        "sympy",
        &format!("{}{}", size_summary(&corpus), corpus.printed),
    );
}

#[test]
fn pasted_problems_are_answered_right_or_refused_clearly() {
    let corpus = check_corpus("pasted/pasted.txt");
    assert!(corpus.sizes.len() + corpus.errors >= 110);
    snapshot(
        "pasted",
        &format!("{}{}", size_summary(&corpus), corpus.printed),
    );
}

#[path = "common/run.rs"]
#[allow(dead_code)] // Not every runner is used here.
mod run;

/// Bad input as a user types it on the command line, one reviewed snapshot each in
/// `snapshots/language/errors/`: the message, the source span with a caret, and a hint,
/// with exit status 2 (SPEC §5). The last case is not bad input but a check that finds
/// no instance in the expression's domain: exit 1, saying why.
#[test]
fn language_errors_have_a_span_and_a_hint() {
    let cases: &[(&str, &[&str])] = &[
        (
            "unknown_function_sigmod",
            &["diff", "sigmod(x)", "--wrt", "x"],
        ),
        ("unknown_function_sinn", &["diff", "sinn(x)", "--wrt", "x"]),
        // Names of other languages and misspellings that would read as a product of
        // letters or as a function of a number: log10(x) as log(10)·x, asinh(θ) as
        // a·sinh(θ), eye(3) as 3I, 1ᵀ (the all-ones row or 1?), matrix(X) as X𝟙𝟙ᵀ.
        (
            "foreign_function_log10",
            &["diff", "sum(log10(x))", "--wrt", "x"],
        ),
        (
            "foreign_function_asinh",
            &["diff", "asinh(θ)", "--wrt", "θ"],
        ),
        (
            "function_with_digits_norm3",
            &["diff", "norm3(x)", "--wrt", "x"],
        ),
        ("capitalised_function", &["diff", "Exp(θ)", "--wrt", "θ"]),
        (
            "power_on_a_function_name",
            &["diff", r"\sin^{-1} \theta", "--wrt", "θ"],
        ),
        // A power on the name is the value's (sin²θ); two of them are read by no one.
        (
            "two_powers_on_a_function_name",
            &["diff", "sin^{2}^{3}(θ)", "--wrt", "θ"],
        ),
        ("eye_with_an_argument", &["diff", "xᵀeye(n)x", "--wrt", "x"]),
        ("transposed_one", &["diff", "1^T x", "--wrt", "x"]),
        (
            "matrix_of_a_matrix",
            &["diff", "tr(matrix(X))", "--wrt", "X"],
        ),
        ("vector_of_a_vector", &["diff", "xᵀvector(x)", "--wrt", "x"]),
        ("vector_denominator", &["diff", "x/y", "--wrt", "x"]),
        (
            "rayleigh_quotient_unbracketed",
            &["diff", "xᵀAx/xᵀx", "--wrt", "x"],
        ),
        (
            "glued_number_after_slash",
            &["diff", "‖x − μ‖²/2σ²", "--wrt", "x"],
        ),
        ("norm_3", &["diff", "‖x‖₃", "--wrt", "x"]),
        // MATLAB's norm(x, p) is refused with the spellings of the norms there are.
        ("norm_with_an_order", &["simplify", "norm(x, 3)"]),
        // An integer expression as a matrix power's exponent: only k plus or minus an
        // integer is supported, and the hint says so though k is declared an integer.
        (
            "matrix_power_of_twice_an_integer",
            &["diff", "tr(X^{2k})", "--wrt", "X", "--decl", "k: int"],
        ),
        ("norm_p", &["diff", "‖x‖_p", "--wrt", "x"]),
        ("spectral_norm_of_a_matrix", &["diff", "‖X‖₂", "--wrt", "X"]),
        (
            "matrix_square_root",
            &["diff", "tr(A^{1/2})", "--wrt", "A", "--decl", "A: n×n spd"],
        ),
        // A letter's kind is never changed to make a sum or ⊙ typecheck (x would be a
        // scalar and C a row vector).
        ("letter_kind_hadamard", &["diff", "xxᵀ ⊙ Cy", "--wrt", "y"]),
        ("letter_kind_sum", &["diff", "xᵀA + b", "--wrt", "b"]),
        // A real power is of scalars only: a declared vector base is refused, not read
        // as an elementwise power.
        (
            "real_power_of_a_vector",
            &["diff", "sum(x^{b + 1})", "--wrt", "b", "--decl", "x: n"],
        ),
        // A declared size used as a vector would be a size in one reading and a vector of
        // another size in the other: neither is chosen silently.
        (
            "size_used_as_a_vector",
            &["diff", "nᵀx + sum(X)", "--wrt", "x", "--decl", "X: m×n"],
        ),
    ];
    for (name, args) in cases {
        let output = run::matcalc(args);
        assert_eq!(output.status, 2, "{name}: {}", output.stderr);
        assert!(output.stdout.is_empty(), "{name}: {}", output.stdout);
        for part in ["error: ", " --> 1:", "^", "= hint: "] {
            assert!(
                output.stderr.contains(part),
                "{name}: no {part:?} in\n{}",
                output.stderr
            );
        }
        error_snapshot(name, args, &output);
    }
    // Never defined: every draw of x makes −‖x‖² negative, so the check is inconclusive
    // and says why, exiting 1 like a failure (SPEC §7), never "ok".
    let args = ["diff", "log(−‖x‖²)", "--wrt", "x", "--check"];
    let output = run::matcalc(&args);
    assert_eq!(output.status, 1, "{}{}", output.stdout, output.stderr);
    assert!(
        output.stdout.contains("check: inconclusive")
            && output.stdout.contains("log of a non-positive number"),
        "{}",
        output.stdout
    );
    error_snapshot("check_outside_the_domain", &args, &output);
    // The same for a square root whose argument is negative for every x, inside a sum
    // that is defined: the note points at the function and hints at a sign.
    let args = ["diff", "sqrt(−xᵀx − 1) + xᵀx", "--wrt", "x", "--check"];
    let output = run::matcalc(&args);
    assert_eq!(output.status, 1, "{}{}", output.stdout, output.stderr);
    for part in [
        "check: inconclusive",
        "note: every draw is outside the domain of `sqrt`",
        "1 | sqrt(−xᵀx − 1) + xᵀx\n  | ^^^^^^^^^^^^^^\n",
        "= hint: ",
    ] {
        assert!(
            output.stdout.contains(part),
            "no {part:?} in {}",
            output.stdout
        );
    }
    error_snapshot("check_outside_the_domain_sqrt", &args, &output);
    // The JSON and the REPL say the same: where, and the hint.
    let output = run::matcalc(&[
        "diff",
        "log(−‖x‖²)",
        "--wrt",
        "x",
        "--check",
        "--format",
        "json",
    ]);
    let value: serde_json::Value = serde_json::from_str(&output.stdout).expect("one JSON object");
    let domain = &value["check"]["domain"];
    assert_eq!(
        domain["span"],
        serde_json::json!([0, "log(−‖x‖²)".len()]),
        "{value}"
    );
    assert!(
        domain["message"].as_str().unwrap().contains("`log`"),
        "{value}"
    );
    assert_eq!(domain["hints"].as_array().map(Vec::len), Some(1), "{value}");
    let output = run::repl("diff log(−‖x‖²) wrt x\n:check\n");
    assert!(
        output.stdout.contains("check: inconclusive")
            && output
                .stdout
                .contains("note: every draw is outside the domain of `log`")
            && output.stdout.contains("^^^^^^^^^^"),
        "{}",
        output.stdout
    );
}

fn error_snapshot(name: &str, args: &[&str], output: &run::Run) {
    let quoted: Vec<String> = args
        .iter()
        .map(|arg| match arg.contains([' ', '(', '|', '‖', '/', '\'']) {
            true => format!("'{arg}'"),
            false => arg.to_string(),
        })
        .collect();
    let text = format!(
        "$ matcalc {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
        quoted.join(" "),
        output.status,
        output.stdout,
        output.stderr
    );
    insta::with_settings!({snapshot_path => "../snapshots/language/errors", prepend_module_to_snapshot => false, omit_expression => true}, {
        insta::assert_snapshot!(name, text);
    });
}

/// `xxᵀ ⊙ Cy` is refused undeclared (see `letter_kind_hadamard` above); declared, each
/// reading is the one asked for, and its derivative passes the finite-difference check.
#[test]
fn language_declared_kinds_give_the_reading_asked_for() {
    for (decl, derivative) in [
        ("x: scalar", "∂f/∂y = x²C\n"),
        ("C: 1×m, x: scalar", "∂/∂y = x²Cᵀ\n"),
    ] {
        let args = ["diff", "xxᵀ ⊙ Cy", "--wrt", "y", "--decl", decl, "--check"];
        let output = run::matcalc(&args);
        assert_eq!(
            output.status, 0,
            "{decl}: {}{}",
            output.stdout, output.stderr
        );
        assert!(
            output.stdout.starts_with(derivative),
            "{decl}: {}",
            output.stdout
        );
        assert!(
            output.stdout.contains("check: ok"),
            "{decl}: {}",
            output.stdout
        );
    }
}
