//! matcalc: a symbolic matrix-calculus engine.
//!
//! # Quick start
//!
//! A [`session::Session`] runs the whole pipeline: here the gradient of a linear
//! autoencoder's loss, factored, with the shared residual named, and the compute form
//! that code generation uses.
//!
//! ```
//! use matcalc::session::{Options, Session};
//!
//! fn main() -> Result<(), matcalc::session::Error> {
//!     let mut session = Session::new();
//!     session.declare("W: m×n, x: n")?;
//!     let results = session.derivative("½‖WᵀWx − x‖²", &["W"], &Options::standard())?;
//!     let gradient = &results[0];
//!     print!("{}", gradient.to_text(matcalc::print::Style::Unicode));
//!     // ∂/∂W = W(zxᵀ + xzᵀ)
//!     //   where z = WᵀWx − x
//!     assert_eq!(gradient.text(), "W(zxᵀ + xzᵀ)");
//!     assert_eq!(gradient.compute(), "(Wz)xᵀ + (Wx)zᵀ");
//!     Ok(())
//! }
//! ```
//!
//! The result's methods are the fields of the Python package's `Derivative`:
//! [`text`](session::DerivativeResult::text), [`ascii`](session::DerivativeResult::ascii),
//! [`latex`](session::DerivativeResult::latex), [`wheres`](session::DerivativeResult::wheres),
//! [`shape`](session::DerivativeResult::shape), [`compute`](session::DerivativeResult::compute),
//! [`check`](session::DerivativeResult::check) (with [`session::Options::check`]),
//! [`json`](session::DerivativeResult::json) and
//! [`numpy_source`](session::DerivativeResult::numpy_source). The README's library example
//! is this one (`tests/readme.rs` keeps them equal).
//!
//! # Stages
//!
//! The pipeline, one module per stage, in reading order:
//!
//! 1. [`parse`]: text in any of three spellings (Unicode, ASCII, LaTeX) to an [`Expr`].
//! 2. [`shape`]: infers every node's shape, unifying symbolic sizes.
//! 3. [`diff`]: matrix-calculus derivatives (reverse mode with matrix adjoints).
//! 4. [`simplify`]: equality saturation with egg; a display form and a compute form.
//! 5. [`numeric`]: nalgebra evaluation, random instances, finite-difference checks.
//! 6. [`mod@print`]: Unicode, ASCII, LaTeX (and NumPy, JSON) renderings.
//!
//! [`diag`] renders every error with its source span; [`cli`], [`repl`] and [`serve`] are
//! the command line, the interactive loop and the web page over the same core. They
//! import only the library, never each other (the command line only starts the other
//! two): the limits are [`limits`], the texts and JSON they show are [`report`], the
//! escapes a person types are [`typing`]. The Python package (`python/` in the
//! repository, `pip install ./python`) is a binding of [`session`].

pub mod cli;
pub mod diag;
pub mod diff;
pub mod domain;
pub mod explain;
pub mod expr;
pub mod forms;
pub mod limits;
pub mod numeric;
pub mod parse;
pub mod print;
pub mod repl;
pub mod report;
pub mod serve;
pub mod session;
pub mod shape;
pub mod simplify;
pub mod typing;

pub use expr::{Decls, Dim, Expr, ExprKind, Func, Props, Rational, Shape, Span, Symbol, VarDecl};
