//! Criterion benchmarks of each stage (parse, shape inference, differentiation,
//! simplification and its saturation and extraction, printing) and of the whole pipeline
//! on the problem sheet, the corpus and every Cookbook identity of the tests.
//!
//! Run with `cargo bench --bench stages`.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

mod support;

#[path = "../tests/common/cookbook_table.rs"]
#[allow(dead_code)] // The table's helpers serve the tests.
mod cookbook_table;

use std::hint::black_box;
use std::time::Duration;

use cookbook_table::{Identity, IDENTITIES};
use criterion::{criterion_group, criterion_main, Criterion};
use matcalc::expr::Decls;
use matcalc::print::{render, Style};
use matcalc::session::{Options, Session};
use matcalc::simplify::{simplify, Limits, Timings};
use support::{corpus, run_problem, session_for};

/// The problems measured stage by stage: the sheet's three and a few identities.
const STAGED: [&str; 6] = [
    "sheet_autoencoder",
    "sheet_gplvm",
    "sheet_swish",
    "cb061_inv_bilinear",
    "cb082_quad_d",
    "cb119_tr_sq",
];

fn stages(c: &mut Criterion) {
    let problems = corpus();
    for problem in problems
        .iter()
        .filter(|p| STAGED.contains(&p.name.as_str()))
    {
        let session = session_for(problem);
        let Ok(typed) = session.typed(&problem.expr) else {
            continue;
        };
        let Ok(parsed) = matcalc::parse::parse(&problem.expr) else {
            continue;
        };
        let wrt = &problem.wrt[0];
        let Ok(derivative) = matcalc::diff::derivative(&typed, wrt, 1) else {
            continue;
        };
        let limits = Limits::standard();
        let simplified = simplify(&derivative.expr, &typed.vars, &[], &limits);
        let mut group = c.benchmark_group(problem.name.as_str());
        // Let definitions are expanded before shape inference, so the parse stage is
        // measured on the text as written (its `let` names are parsed as variables).
        group.bench_function("parse", |b| {
            b.iter(|| matcalc::parse::parse(black_box(&problem.expr)))
        });
        let decls = Decls::new();
        group.bench_function("shape", |b| {
            b.iter(|| matcalc::shape::infer(black_box(&parsed), &decls))
        });
        group.bench_function(format!("diff ∂/∂{wrt}"), |b| {
            b.iter(|| matcalc::diff::derivative(black_box(&typed), wrt, 1))
        });
        group.bench_function("simplify (setup + saturate + extract)", |b| {
            b.iter(|| simplify(black_box(&derivative.expr), &typed.vars, &[], &limits))
        });
        // The two parts of simplification, timed inside it (`Simplified::timings`).
        let vars = &typed.vars;
        let expr = &derivative.expr;
        group.bench_function("saturate", |b| {
            b.iter_custom(|iters| part(expr, vars, &limits, iters, |t| t.saturation))
        });
        group.bench_function("extract", |b| {
            b.iter_custom(|iters| part(expr, vars, &limits, iters, |t| t.extraction))
        });
        group.bench_function("print", |b| {
            b.iter(|| render(black_box(&simplified.display), Style::Unicode))
        });
        group.finish();
    }

    let options = Options::standard();
    let mut group = c.benchmark_group("pipeline");
    for problem in &problems {
        group.bench_function(problem.name.as_str(), |b| {
            b.iter(|| run_problem(black_box(problem), &options))
        });
    }
    group.finish();

    // Every identity of the tests' Cookbook table, declarations to simplified derivative.
    let sessions: Vec<(Session, &Identity, Options)> = IDENTITIES
        .iter()
        .filter_map(|identity| {
            let mut session = Session::new();
            session.declare(identity.decls).ok()?;
            let options = Options {
                order: identity.order,
                ..Options::standard()
            };
            Some((session, identity, options))
        })
        .collect();
    let mut group = c.benchmark_group("cookbook table");
    group.bench_function(format!("all {} identities", sessions.len()), |b| {
        b.iter(|| {
            for (session, identity, options) in &sessions {
                let _ = black_box(session.derivative(identity.expr, &[identity.wrt], options));
            }
        })
    });
    group.finish();
}

/// Total time of one part of `iters` simplifications of `expr`.
fn part(
    expr: &matcalc::Expr,
    vars: &std::collections::BTreeMap<String, matcalc::VarDecl>,
    limits: &Limits,
    iters: u64,
    pick: fn(&Timings) -> Duration,
) -> Duration {
    (0..iters)
        .map(|_| pick(&simplify(black_box(expr), vars, &[], limits).timings))
        .sum()
}

fn configured() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = configured();
    targets = stages
}
criterion_main!(benches);
