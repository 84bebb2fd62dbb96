//! Scaling families at sizes 1, 2, 4, … 64: time from text to simplified derivatives
//! and output size per size, with the fitted log-log growth exponent of each.
//!
//! Run with `cargo bench --bench scaling`.

#![allow(clippy::disallowed_macros)] // Benchmark reports are programs: they print.

mod support;

use std::time::Duration;

use matcalc::session::Options;
use support::{growth_exponent, median_time, output_size, run_problem, show, subscripted, Problem};

/// A single run longer than this ends the family: the next size would take too long.
const STOP_AFTER: Duration = Duration::from_secs(3);

/// `½‖W_L σ(… σ(W₁x) …) − y‖²` with respect to every weight.
fn network(layers: usize) -> Problem {
    let mut inner = format!("{}x", subscripted("W", 1));
    for layer in 2..=layers {
        inner = format!("{} σ({inner})", subscripted("W", layer));
    }
    Problem {
        name: format!("network L={layers}"),
        expr: format!("½‖{inner} − y‖²"),
        wrt: (1..=layers).map(|i| subscripted("W", i)).collect(),
        lets: Vec::new(),
    }
}

/// `tr(A₁A₂⋯A_k)` with respect to every factor.
fn chain(length: usize) -> Problem {
    let product: String = (1..=length).map(|i| subscripted("A", i)).collect();
    Problem {
        name: format!("chain k={length}"),
        expr: format!("tr({product})"),
        wrt: (1..=length).map(|i| subscripted("A", i)).collect(),
        lets: Vec::new(),
    }
}

/// `x₁ᵀAx₁ + ⋯ + x_kᵀAx_k` with respect to `A`.
fn quadratic_forms(count: usize) -> Problem {
    let terms: Vec<String> = (1..=count)
        .map(|i| {
            let x = subscripted("x", i);
            format!("{x}ᵀA{x}")
        })
        .collect();
    Problem {
        name: format!("quadratic k={count}"),
        expr: terms.join(" + "),
        wrt: vec!["A".to_string()],
        lets: Vec::new(),
    }
}

/// A family's title and its problem at a given size.
type Family = (&'static str, fn(usize) -> Problem);

fn main() {
    let options = Options::standard();
    // `cargo bench` passes `--bench`; without it (`cargo test --all-targets`) this is a
    // smoke test of the two smallest sizes.
    let full = std::env::args().any(|arg| arg == "--bench");
    let family_sizes: &[usize] = if full {
        &[1, 2, 4, 8, 16, 32, 64]
    } else {
        &[1, 2]
    };
    let families: [Family; 3] = [
        (
            "L-layer network ½‖W_L σ(…σ(W₁x)…) − y‖², ∂/∂W₁…W_L",
            network,
        ),
        ("product chain tr(A₁A₂⋯A_k), ∂/∂A₁…A_k", chain),
        ("sum of quadratic forms Σ x_iᵀAx_i, ∂/∂A", quadratic_forms),
    ];
    for (title, family) in families {
        println!("\n{title}");
        println!(
            "{:>4} {:>10} {:>5} {:>8} {:>10}  stop reason",
            "size", "median", "runs", "out size", "saturated"
        );
        let mut times = Vec::new();
        let mut sizes = Vec::new();
        for &size in family_sizes {
            let problem = family(size);
            let results = run_problem(&problem, &options);
            if results.len() != problem.wrt.len() {
                println!("{size:>4} failed: {}", problem.expr);
                break;
            }
            let (median, runs) = median_time(
                || {
                    std::hint::black_box(run_problem(&problem, &options));
                },
                Duration::from_secs(2),
                11,
            );
            let out = output_size(&results);
            let saturated = results.iter().all(|r| r.form.saturated);
            println!(
                "{size:>4} {:>10} {runs:>5} {out:>8} {:>10}  {}",
                show(median),
                if saturated { "yes" } else { "no" },
                results.first().map_or("", |r| r.form.stop_reason.as_str())
            );
            times.push((size as f64, median.as_secs_f64()));
            sizes.push((size as f64, out as f64));
            if median > STOP_AFTER {
                println!("     stopped: one run took over {}", show(STOP_AFTER));
                break;
            }
        }
        // The exponent over the sizes from 4 up, where fixed costs no longer dominate.
        let tail = |points: &[(f64, f64)]| -> String {
            let from: Vec<(f64, f64)> = points.iter().copied().filter(|p| p.0 >= 4.0).collect();
            growth_exponent(&from).map_or("n/a".into(), |e| format!("{e:.2}"))
        };
        println!(
            "growth exponent (sizes ≥ 4): time {}, output size {}",
            tail(&times),
            tail(&sizes)
        );
    }
}
