//! A thousand expressions of growing size through the library in one process: none
//! panics, each finishes within a generous bound (the saturation limits hold), and a
//! second pass over the same inputs does not grow the resident memory.
//!
//! Timings are printed (`cargo test --release --test stress -- --nocapture`), not
//! asserted beyond the generous bound: speed is the benchmarks' business.

use std::time::{Duration, Instant};

use matcalc::session::{Options, Session};
use matcalc::simplify;

/// The most any one expression may take: far above the saturation time limit, so that
/// only a limit that does not hold fails it.
const GENEROUS: Duration = Duration::from_secs(20);

/// The term of index `i`, from a fixed menu of loss shapes.
fn term(i: usize) -> String {
    let k = i % 7;
    match i % 12 {
        0 => format!("‖W_{{{k}}}x − y‖²"),
        1 => "xᵀAx".to_string(),
        2 => format!("tr(A^{{{}}})", 1 + k),
        3 => "log|AᵀA + I|".to_string(),
        4 => "sum(exp(Wx))".to_string(),
        5 => format!("‖σ(W_{{{k}}}x)‖²"),
        6 => "tr(A⁻¹B)".to_string(),
        7 => "½‖WᵀWx − x‖²".to_string(),
        8 => format!("{}xᵀx", 1 + k),
        9 => "sum(log(𝟙 + exp(−Wx)))".to_string(),
        10 => "tr(AᵀA)".to_string(),
        _ => "‖x‖²‖Wx‖²".to_string(),
    }
}

/// Expression `index` of the thousand: `1 + index / 100` terms.
fn expression(index: usize) -> String {
    let terms = 1 + index / 100;
    (0..terms)
        .map(|t| term(index * 7 + t * 5))
        .collect::<Vec<_>>()
        .join(" + ")
}

fn resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn options() -> Options {
    let mut options = Options::standard();
    options.limits = simplify::Limits {
        iterations: 10,
        nodes: 4_000,
        time: Duration::from_millis(25),
        ..simplify::Limits::standard()
    };
    options
}

/// Runs expressions `range` once; returns the slowest time and its text.
fn pass(range: std::ops::Range<usize>, timings: &mut Vec<Duration>) -> (Duration, String) {
    let session = Session::new();
    let options = options();
    let mut slowest = (Duration::ZERO, String::new());
    for index in range {
        let text = expression(index);
        let free = matcalc::parse::parse(&text)
            .map(|e| e.free_vars())
            .unwrap_or_default();
        let wrt: Vec<&str> = ["A", "W", "x"]
            .into_iter()
            .filter(|v| free.iter().any(|f| f == v))
            .collect();
        let started = Instant::now();
        let outcome = session.derivative(&text, &wrt, &options);
        let elapsed = started.elapsed();
        assert!(
            outcome.is_ok() || matches!(outcome, Err(matcalc::session::Error::Diff { .. })),
            "{text}: {:?}",
            outcome.err().map(|e| e.render())
        );
        assert!(elapsed < GENEROUS, "{text} took {elapsed:?}");
        timings.push(elapsed);
        if elapsed > slowest.0 {
            slowest = (elapsed, text);
        }
    }
    slowest
}

#[test]
// The timings are the report the issue asks for; they go to the test log.
#[allow(clippy::disallowed_macros)]
fn a_thousand_growing_expressions_finish_without_growing_memory() {
    let mut timings = Vec::new();
    let started = Instant::now();
    let (slowest, text) = pass(0..1_000, &mut timings);
    let first = started.elapsed();
    let before = resident_kib();
    let mut again = Vec::new();
    pass(0..300, &mut again);
    let after = resident_kib();
    timings.sort();
    let median = timings[timings.len() / 2];
    let p99 = timings[timings.len() * 99 / 100];
    eprintln!(
        "stress: 1000 expressions in {first:?}; median {median:?}, p99 {p99:?}, \
         slowest {slowest:?} ({text}); VmRSS {before:?} KiB → {after:?} KiB after a second pass over 300"
    );
    if let (Some(before), Some(after)) = (before, after) {
        assert!(
            after < before + 50 * 1024,
            "resident memory grew from {before} KiB to {after} KiB over the second pass"
        );
    }
}
