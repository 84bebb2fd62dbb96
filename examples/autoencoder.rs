//! The problem sheet's linear autoencoder: ∂/∂W ½‖WᵀWx − x‖², simplified and checked.
//!
//! Run with `cargo run --example autoencoder`.

#![allow(clippy::disallowed_macros)] // Examples are programs: they print.

use matcalc::numeric::Verdict;
use matcalc::print::Style;
use matcalc::session::{Options, Session};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut session = Session::new();
    session.declare("W: m×n, x: n")?;
    let mut options = Options::standard();
    options.check = true;
    let results = session.derivative("½‖WᵀWx − x‖²", &["W"], &options)?;
    let gradient = &results[0];
    print!("{}", gradient.to_text(Style::Unicode));
    println!(
        "compute form: {}",
        matcalc::print::render(&gradient.form.compute, Style::Unicode)
    );
    match &gradient.check {
        Some(Verdict::Pass {
            trials,
            max_rel_error,
        }) => {
            println!("check: ok ({trials} trials, max rel. error {max_rel_error:.1e})")
        }
        other => return Err(format!("check did not pass: {other:?}").into()),
    }
    Ok(())
}
