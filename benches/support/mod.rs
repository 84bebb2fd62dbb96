//! Helpers shared by the benchmark binaries: the corpus, flop counting and timing.
//!
//! Each binary uses a different subset, so unused helpers are expected.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use matcalc::expr::{Dim, Expr, ExprKind, Shape};
use matcalc::session::{DerivativeResult, Options, Session};

/// One problem of `bench/corpus.tsv`.
#[derive(Clone, Debug)]
pub struct Problem {
    /// A short identifier.
    pub name: String,
    /// The function, in matcalc's Unicode notation.
    pub expr: String,
    /// The variables to differentiate with respect to.
    pub wrt: Vec<String>,
    /// `let` definitions such as `K = αXXᵀ + β⁻¹I`.
    pub lets: Vec<String>,
}

/// The corpus shared by every benchmark and by `bench/sympy_compare.py`.
pub fn corpus() -> Vec<Problem> {
    let text = include_str!("../../bench/corpus.tsv");
    text.lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            if fields.len() < 3 {
                return None;
            }
            Some(Problem {
                name: fields[0].to_string(),
                expr: fields[1].to_string(),
                wrt: fields[2].split(',').map(|w| w.trim().to_string()).collect(),
                lets: fields
                    .get(3)
                    .map(|lets| {
                        lets.split(';')
                            .map(str::trim)
                            .filter(|l| !l.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// A session with the problem's definitions.
pub fn session_for(problem: &Problem) -> Session {
    let mut session = Session::new();
    for definition in &problem.lets {
        // A corpus definition that does not parse shows up as an error of the problem itself.
        let _ = session.define(definition);
    }
    session
}

/// The whole pipeline, from text to simplified derivatives, as the library runs it.
pub fn run_problem(problem: &Problem, options: &Options) -> Vec<DerivativeResult> {
    let session = session_for(problem);
    let wrt: Vec<&str> = problem.wrt.iter().map(String::as_str).collect();
    session
        .derivative(&problem.expr, &wrt, options)
        .unwrap_or_default()
}

/// Output size: nodes of every display form plus the `where` bodies, each counted once.
pub fn output_size(results: &[DerivativeResult]) -> usize {
    let mut seen_wheres = HashSet::new();
    let mut size = 0;
    for result in results {
        size += result.form.display.size();
        for (name, body) in &result.form.wheres {
            if seen_wheres.insert(name.clone()) {
                size += body.size();
            }
        }
    }
    size
}

/// The median of `samples` runs of `work` (at least one), and the number of runs.
pub fn median_time(mut work: impl FnMut(), budget: Duration, max_runs: usize) -> (Duration, usize) {
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < max_runs && (times.is_empty() || start.elapsed() < budget) {
        let one = Instant::now();
        work();
        times.push(one.elapsed());
    }
    times.sort();
    (times[times.len() / 2], times.len())
}

/// Counts floating-point operations of expressions for concrete sizes, with the same
/// model as the simplifier's flop cost: a product `m×k · k×n` costs `mkn`, scaling and
/// elementwise operations one per entry, elementwise functions four per entry, an
/// inverse or determinant `n³`, transposes and names nothing. A subexpression that
/// occurs several times (in one expression or across several) is counted once, as a
/// program that names it would compute it once.
pub struct FlopCounter {
    sizes: BTreeMap<String, u64>,
    default_size: f64,
    seen: HashSet<Expr>,
}

impl FlopCounter {
    /// A counter where every size symbol not in `sizes` is `default_size`.
    pub fn new(sizes: BTreeMap<String, u64>, default_size: u64) -> FlopCounter {
        FlopCounter {
            sizes,
            default_size: default_size as f64,
            seen: HashSet::new(),
        }
    }

    fn dim(&self, dim: &Dim) -> f64 {
        match dim {
            Dim::Known(n) => *n as f64,
            Dim::Sym(name) => self
                .sizes
                .get(name.as_str())
                .map_or(self.default_size, |n| *n as f64),
            Dim::Unknown => self.default_size,
            Dim::Product(factors) => factors.iter().map(|factor| self.dim(factor)).product(),
        }
    }

    fn entries(&self, shape: &Shape) -> f64 {
        self.dim(&shape.rows) * self.dim(&shape.cols)
    }

    /// Flops of `expr` not already counted.
    pub fn count(&mut self, expr: &Expr) -> f64 {
        if self.seen.contains(expr) {
            return 0.0;
        }
        let children: f64 = expr.children().iter().map(|c| self.count(c)).sum();
        self.seen.insert(expr.clone());
        let own = match &expr.kind {
            ExprKind::Num(_)
            | ExprKind::Var(_)
            | ExprKind::Identity
            | ExprKind::Ones
            | ExprKind::Size(_)
            | ExprKind::Transpose(_)
            | ExprKind::Vectorize(_)
            | ExprKind::Commutation(..)
            | ExprKind::Differential(_) => 0.0,
            ExprKind::Kron(a, b) => self.entries(&a.shape) * self.entries(&b.shape),
            ExprKind::Mul(a, b) => {
                if a.shape.is_scalar() {
                    self.entries(&b.shape)
                } else if b.shape.is_scalar() {
                    self.entries(&a.shape)
                } else {
                    self.dim(&a.shape.rows) * self.dim(&a.shape.cols) * self.dim(&b.shape.cols)
                }
            }
            ExprKind::Add(a, b)
            | ExprKind::Sub(a, b)
            | ExprKind::Hadamard(a, b)
            | ExprKind::Div(a, b)
            | ExprKind::ElemDiv(a, b) => self.entries(&a.shape).max(self.entries(&b.shape)),
            ExprKind::Neg(a) | ExprKind::Sum(a) => self.entries(&a.shape),
            ExprKind::NormSq(a) => 2.0 * self.entries(&a.shape),
            ExprKind::Inverse(a) | ExprKind::Det(a) | ExprKind::LogDet(a) => {
                self.dim(&a.shape.rows).powi(3)
            }
            ExprKind::Pow(a, k) => {
                let k = k.unsigned_abs().max(2);
                self.dim(&a.shape.rows).powi(3) * f64::from(64 - k.leading_zeros())
            }
            ExprKind::Trace(a) | ExprKind::Diag(a) => self.dim(&a.shape.rows),
            ExprKind::Func(_, a) => 4.0 * self.entries(&a.shape),
            ExprKind::Apply(_, a) | ExprKind::Grad(_, a) => 10.0 * self.entries(&a.shape),
            ExprKind::Norm(a, _) => 2.0 * self.entries(&a.shape) + 4.0,
            ExprKind::ElemPow(a, _) => 4.0 * self.entries(&a.shape),
            ExprKind::PowSym(a, _, _) => self.dim(&a.shape.rows).powi(3) * 6.0,
            ExprKind::Softmax(a) | ExprKind::LogSumExp(a) => 6.0 * self.entries(&a.shape),
            // Only in parsed trees; costs what the node inside costs.
            ExprKind::Written(..) => 0.0,
        };
        children + own
    }
}

/// The size symbols of the problem's variables.
pub fn size_symbols(session: &Session, problem: &Problem) -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(typed) = session.typed(&problem.expr) {
        for decl in typed.vars.values() {
            for dim in [&decl.shape.rows, &decl.shape.cols] {
                if let Dim::Sym(name) = dim {
                    if !names.iter().any(|known| name.as_str() == known) {
                        names.push(name.to_string());
                    }
                }
            }
        }
    }
    names
}

/// Flops of the function's compute form and of all its gradients' compute forms
/// (sharing `where` definitions), with every size symbol set to `size`.
pub fn flop_ratio(problem: &Problem, size: u64) -> Option<(f64, f64)> {
    let session = session_for(problem);
    let mut options = Options::standard();
    options.sizes = size_symbols(&session, problem)
        .into_iter()
        .map(|name| (name, size))
        .collect();
    let function = session.simplify(&problem.expr, &options).ok()?;
    let mut counter = FlopCounter::new(options.sizes.clone(), size);
    let mut function_flops = 0.0;
    for (_, body) in &function.form.compute_wheres {
        function_flops += counter.count(body);
    }
    function_flops += counter.count(&function.form.compute);

    let results = {
        let wrt: Vec<&str> = problem.wrt.iter().map(String::as_str).collect();
        session.derivative(&problem.expr, &wrt, &options).ok()?
    };
    let mut counter = FlopCounter::new(options.sizes.clone(), size);
    let mut gradient_flops = 0.0;
    let mut where_names = HashSet::new();
    for result in &results {
        for (name, body) in &result.form.compute_wheres {
            if where_names.insert(name.clone()) {
                gradient_flops += counter.count(body);
            }
        }
        gradient_flops += counter.count(&result.form.compute);
    }
    Some((function_flops, gradient_flops))
}

/// `name` followed by `index` in Unicode subscript digits (`W₁₂`).
pub fn subscripted(name: &str, index: usize) -> String {
    const DIGITS: [char; 10] = ['₀', '₁', '₂', '₃', '₄', '₅', '₆', '₇', '₈', '₉'];
    let mut text = name.to_string();
    for digit in index.to_string().bytes() {
        text.push(DIGITS[usize::from(digit - b'0')]);
    }
    text
}

/// Human-readable duration with a fixed unit per magnitude.
pub fn show(duration: Duration) -> String {
    let micros = duration.as_secs_f64() * 1e6;
    if micros < 1000.0 {
        format!("{micros:.1} µs")
    } else if micros < 1e6 {
        format!("{:.2} ms", micros / 1e3)
    } else {
        format!("{:.2} s", micros / 1e6)
    }
}

/// Least-squares slope of log y against log x.
pub fn growth_exponent(points: &[(f64, f64)]) -> Option<f64> {
    let points: Vec<(f64, f64)> = points
        .iter()
        .filter(|(x, y)| *x > 0.0 && *y > 0.0)
        .map(|(x, y)| (x.ln(), y.ln()))
        .collect();
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = points
        .iter()
        .map(|(x, y)| (x - mean_x) * (y - mean_y))
        .sum();
    let sxx: f64 = points.iter().map(|(x, _)| (x - mean_x).powi(2)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}
