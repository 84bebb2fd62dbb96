//! matcalc: a symbolic matrix-calculus engine.
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
//! [`diag`] renders every error with its source span; [`cli`] and [`repl`] are the
//! command line and the interactive loop over the same core. They import only the
//! library, never each other: the limits are [`limits`], the texts and JSON they show
//! are [`report`], the escapes a person types are [`typing`].

pub mod cli;
pub mod diag;
pub mod diff;
pub mod explain;
pub mod expr;
pub mod limits;
pub mod numeric;
pub mod parse;
pub mod print;
pub mod repl;
pub mod report;
pub mod session;
pub mod shape;
pub mod simplify;
pub mod typing;

pub use expr::{Decls, Dim, Expr, ExprKind, Func, Props, Rational, Shape, Span, Symbol, VarDecl};
