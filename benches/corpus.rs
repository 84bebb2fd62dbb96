//! The corpus of `bench/corpus.tsv`, end to end: per problem, the median in-process
//! time from text to simplified derivatives, the output size, and the flops of the
//! gradients' compute form against the function's at a few hundred per size.
//!
//! Run with `cargo bench --bench corpus`; `cargo bench --bench corpus -- --json` prints
//! one JSON object per problem instead (read by `bench/sympy_compare.py`), and
//! `cargo bench --bench corpus -- NAME` only the problems whose name contains NAME.

#![allow(clippy::disallowed_macros)] // Benchmark reports are programs: they print.

mod support;

use std::time::Duration;

use matcalc::session::Options;
use support::{corpus, flop_ratio, median_time, output_size, run_problem, show};

/// Every size symbol's value for the compute-form cost.
const FLOP_SIZE: u64 = 300;

fn main() {
    let json = std::env::args().any(|arg| arg == "--json");
    // Arguments that are not flags select problems by name (for profiling one).
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    let options = Options::standard();
    // `cargo bench` passes `--bench`; without it (`cargo test --all-targets`) each
    // problem runs once, as a smoke test.
    let full = std::env::args().any(|arg| arg == "--bench");
    let (budget, max_runs) = if full {
        (Duration::from_millis(500), 200)
    } else {
        (Duration::ZERO, 1)
    };
    if !json {
        println!(
            "{:<20} {:>10} {:>5} {:>5} {:>4} {:>12} {:>12} {:>6}",
            "problem", "median", "runs", "size", "sat", "f flops", "∇f flops", "ratio"
        );
    }
    for problem in corpus()
        .into_iter()
        .filter(|p| filters.is_empty() || filters.iter().any(|f| p.name.contains(f.as_str())))
    {
        // One warm-up run, then up to 200 runs within half a second.
        let results = run_problem(&problem, &options);
        let (median, runs) = median_time(
            || {
                std::hint::black_box(run_problem(&problem, &options));
            },
            budget,
            max_runs,
        );
        let size = output_size(&results);
        let saturated = results.iter().all(|r| r.form.saturated);
        let flops = flop_ratio(&problem, FLOP_SIZE);
        let (function_flops, gradient_flops) = flops.unwrap_or((f64::NAN, f64::NAN));
        let ratio = gradient_flops / function_flops;
        let display: Vec<String> = results
            .iter()
            .map(|r| r.to_text(matcalc::print::Style::Unicode).trim().to_string())
            .collect();
        if json {
            let object = serde_json::json!({
                "name": problem.name,
                "median_seconds": median.as_secs_f64(),
                "runs": runs,
                "ok": results.len() == problem.wrt.len(),
                "output_size": size,
                "saturated": saturated,
                "function_flops": function_flops,
                "gradient_flops": gradient_flops,
                "flop_ratio": ratio,
                "flop_size": FLOP_SIZE,
                "display": display.join("\n"),
            });
            println!("{object}");
        } else {
            println!(
                "{:<20} {:>10} {:>5} {:>5} {:>4} {:>12.3e} {:>12.3e} {:>6.2}",
                problem.name,
                show(median),
                runs,
                size,
                if saturated { "yes" } else { "no" },
                function_flops,
                gradient_flops,
                ratio
            );
        }
    }
}
