//! Random differential testing (issue 13): `tests/random_exprs.py` generates random
//! well-typed expressions over the constructs of SPEC §2, each with its own numpy
//! evaluator, runs each through `matcalc diff --format numpy --check`, and judges the
//! emitted program and the check's verdict against that evaluator. A few hundred run
//! here; `MATCALC_RANDOM_COUNT` asks for more, `MATCALC_RANDOM_SEED` for another seed, and
//! `fuzz/differential.sh` runs long campaigns. `.ci/run` installs numpy.

use std::process::Command;

#[test]
fn random_expressions_are_printed_emitted_and_checked_right() {
    let count = std::env::var("MATCALC_RANDOM_COUNT").unwrap_or_else(|_| "200".into());
    let seed = std::env::var("MATCALC_RANDOM_SEED").unwrap_or_else(|_| "13".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/random_exprs.py");
    let run = Command::new("python3")
        .args([script, env!("CARGO_BIN_EXE_matcalc")])
        .args(["--count", &count, "--seed", &seed, "--jobs", "2"])
        .output()
        .expect("python3 runs (numpy is installed by .ci/run)");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "findings:\n{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains(&format!("{count} expressions")), "{stdout}");
}
