//! The problem sheet's two-layer network with swish: all four gradients in one call,
//! sharing their `where` definitions, and the sheet's wrong swish derivative rejected.
//!
//! Run with `cargo run --example swish_network`.

#![allow(clippy::disallowed_macros)] // Examples are programs: they print.

use matcalc::numeric::Verdict;
use matcalc::print::Style;
use matcalc::session::{Options, Session};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut session = Session::new();
    session.define("z₁ = W₁x + b₁")?;
    let mut options = Options::standard();
    options.check = true;
    let loss = "½‖W₂ swish(z₁) + b₂ − y‖²";
    let results = session.derivative(loss, &["W₁", "b₁", "W₂", "b₂"], &options)?;
    print!(
        "{}",
        matcalc::session::results_text(&results, Style::Unicode)
    );
    if !results
        .iter()
        .all(|result| matches!(result.check, Some(Verdict::Pass { .. })))
    {
        return Err("a gradient failed its check".into());
    }

    // The sheet writes swish′(z) = σ(z) + z(1 − σ(z)); the right one has σ(z)(1 − σ(z)).
    let wrong = "(σ(z) + z ⊙ (1 − σ(z))) ⊙ W₂ᵀ(W₂ swish(z) + b₂ − y)";
    let verdict = session
        .verify("½‖W₂ swish(z) + b₂ − y‖²", "z", wrong, &options)?
        .verdict;
    match verdict {
        Verdict::Fail(counterexample) => {
            println!(
                "the sheet's swish derivative is wrong:\n{}",
                counterexample.describe()
            )
        }
        other => return Err(format!("expected a counterexample, got {other:?}").into()),
    }
    Ok(())
}
