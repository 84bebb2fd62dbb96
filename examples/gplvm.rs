//! The problem sheet's GP-LVM log-likelihood: ∂L/∂X with K = αXXᵀ + β⁻¹I, and the
//! sheet's wrong hand derivation of ∂L₂/∂X rejected with a counterexample.
//!
//! Run with `cargo run --example gplvm`.

#![allow(clippy::disallowed_macros)] // Examples are programs: they print.

use matcalc::numeric::Verdict;
use matcalc::print::Style;
use matcalc::session::{Options, Session};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut session = Session::new();
    session.define("K = αXXᵀ + β⁻¹I")?;
    let mut options = Options::standard();
    options.check = true;
    let loss = "−c − D/2 log|K| − ½ tr(K⁻¹YYᵀ)";
    let results = session.derivative(loss, &["X"], &options)?;
    print!("{}", results[0].to_text(Style::Unicode));

    // The sheet differentiates K⁻¹ as −(K⁻ᵀ)²: matcalc says where that goes wrong.
    let claim = "α/2 ((K⁻ᵀ)²YYᵀ + YYᵀ(K⁻ᵀ)²)X";
    let verdict = session
        .verify("−½ tr(K⁻¹YYᵀ)", "X", claim, &options)?
        .verdict;
    match verdict {
        Verdict::Fail(counterexample) => {
            println!(
                "the sheet's ∂L₂/∂X is wrong:\n{}",
                counterexample.describe()
            )
        }
        other => return Err(format!("expected a counterexample, got {other:?}").into()),
    }
    Ok(())
}
