//! No input panics: token soup through the whole pipeline (a stable stand-in for the
//! cargo-fuzz targets in `fuzz/`), and every input the fuzzing found, kept as a named
//! regression case.

use std::time::{Duration, Instant};

use matcalc::session::{Options, Session};
use matcalc::simplify;
use proptest::prelude::*;

#[path = "../fuzz/harness.rs"]
mod harness;

fn options() -> Options {
    let mut options = Options::standard();
    options.check = true;
    options.check_config = harness::fuzz_check_config();
    options.limits = harness::fuzz_limits();
    options
}

/// Runs `text` through the session and the harness; panics are the failure.
fn survive(text: &str) {
    let session = Session::new();
    let options = options();
    let _ = session.simplify(text, &options);
    if let Ok(expr) = matcalc::parse::parse(text) {
        for wrt in expr.free_vars().iter().take(2) {
            let _ = session.derivative(text, &[wrt.as_str()], &options);
        }
    }
    // Broken invariants other than panics (round trips) are reported by the fuzzing and
    // by the round-trip tests; here only panics count.
    let _ = harness::pipeline(text);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn token_soup_never_panics(tokens in proptest::collection::vec(0..harness::TOKENS.len(), 0..24)) {
        let text: String = tokens.iter().map(|&i| harness::TOKENS[i]).collect();
        survive(&text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,40}") {
        survive(&text);
    }
}

// Regression cases found by the fuzzing (examples/fuzz_soup.rs and tests/hostile.rs).

/// `0/0` made the e-graph prove `0 = 1` and the constant analysis asserted.
#[test]
fn regression_zero_over_zero() {
    survive("0/0");
    survive("x/(x−x)");
}

/// `log|I|` is the constant 0, so inverting it divides by zero (same assertion).
#[test]
fn regression_inverse_of_log_det_identity() {
    survive("(tanh(2xᵀy)((W)⁻¹log|I|)⁻¹)ᵀ");
    survive("((log|I|) ⊙ (β + α))⁻¹");
    survive("B + log|(−log|I|ᵀlog(‖b‖²))⁻¹|");
}

/// `W: 1000×1000` is a valid declaration, but the finite-difference check made a
/// million probes of a million-entry expression; it is now refused as inconclusive.
#[test]
fn regression_huge_declared_sizes_are_not_checked_for_minutes() {
    let mut session = Session::new();
    session.declare("W: 1000×1000").expect("valid declaration");
    let started = Instant::now();
    let results = session
        .derivative("‖Wx‖²", &["W"], &options())
        .expect("derivative");
    assert!(started.elapsed() < Duration::from_secs(10));
    let check = results[0].check.as_ref().expect("checked");
    assert!(!check.is_pass());
}

/// Exponents beyond the limit are a clean error, not a huge symbolic power.
#[test]
fn regression_huge_exponent() {
    survive("tr(A^{1000000})");
    survive("A⁻⁹²²³³⁷²⁰³⁶⁸⁵⁴⁷⁷⁵⁸⁰⁸");
}

/// libFuzzer (`pipeline`): a product of 200 `M`s. It finishes, but its derivative with
/// respect to `M` has 200 terms, and extracting them after saturation (not bounded by
/// the time limit) takes about 2 s in release.
#[test]
fn regression_long_product_of_one_matrix() {
    let text = format!("a .* {}b", "M".repeat(200));
    let session = Session::new();
    let mut options = options();
    options.check = false;
    let _ = session.derivative(&text, &["a"], &options);
    let _ = session.simplify(&text, &options);
}

#[test]
fn regression_saturation_with_tiny_limits() {
    let session = Session::new();
    let mut options = options();
    options.limits = simplify::Limits {
        iterations: 0,
        nodes: 0,
        time: Duration::ZERO,
        patience: 0,
    };
    let _ = session.derivative("½‖WᵀWx − x‖²", &["W"], &options);
    let _ = session.simplify("(A + B)(A + B)", &options);
}
