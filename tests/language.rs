//! The language of issue 12, one corpus file per family in `tests/cases/language/`.
//!
//! A derivative case is a block of `key: value` lines (`expr`, `wrt`, optional `decl` and
//! `order`, and `closed`, the textbook answer). For every case: matcalc's printed answer
//! passes its own finite-difference check, the closed form fed as a claim passes it too,
//! and the printed answers of a family are snapshotted (snapshots pin form, the checks pin
//! truth). `spellings.txt` lists, one line each, spellings that must parse to one tree.

use matcalc::numeric::Verdict;
use matcalc::parse::{parse_with, ParseOptions};
use matcalc::print::Style;
use matcalc::session::{Options, Session};

/// One derivative case of a corpus file.
struct Case {
    expr: String,
    wrt: String,
    decl: Option<String>,
    order: u8,
    closed: String,
}

fn cases(text: &str) -> Vec<Case> {
    let mut res = vec![];
    for block in text.split("\n\n") {
        let mut fields = std::collections::BTreeMap::new();
        for line in block.lines().filter(|line| !line.starts_with('#')) {
            if let Some((key, value)) = line.split_once(": ") {
                fields.insert(key.trim(), value.trim().to_string());
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
            closed: field("closed"),
        });
    }
    res
}

fn describe(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Pass { .. } => "pass".to_string(),
        Verdict::Fail(counterexample) => counterexample.describe(),
        Verdict::Inconclusive { reason } => format!("inconclusive: {reason}"),
    }
}

/// Checks every case of one corpus file and returns the printed answers, one a line.
fn check_family(file: &str) -> String {
    let path = format!("{}/tests/cases/language/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut printed = String::new();
    let mut failures = vec![];
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
        let results = match session.derivative(&case.expr, &[&case.wrt], &options) {
            Ok(results) => results,
            Err(error) => {
                failures.push(format!("{name}: {}", error.render()));
                continue;
            }
        };
        let result = &results[0];
        let answer = result.to_text(Style::Unicode);
        printed.push_str(&format!("{} | {}\n", case.expr, answer.trim_end()));
        match &result.check {
            Some(Verdict::Pass { .. }) => {}
            Some(other) => failures.push(format!("{name}: ours {answer}: {}", describe(other))),
            None => failures.push(format!("{name}: not checked")),
        }
        match session.verify(&case.expr, &case.wrt, &case.closed, &options) {
            Ok(verified) if matches!(verified.verdict, Verdict::Pass { .. }) => {}
            Ok(verified) => failures.push(format!(
                "{name}: closed form {}: {}",
                case.closed,
                describe(&verified.verdict)
            )),
            Err(error) => failures.push(format!(
                "{name}: closed form {}: {}",
                case.closed,
                error.render()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    printed
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
        let first = parse(spellings[0]);
        for spelling in &spellings[1..] {
            assert_eq!(
                parse(spelling),
                first,
                "{spelling} differs from {}",
                spellings[0]
            );
        }
    }
}
