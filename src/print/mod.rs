//! Printing: an [`Expr`] to text in one of three spellings (SPEC §2), with the fewest
//! parentheses the precedence rules allow, so that parsing the text gives back an equal
//! tree: `parse(render(e, style)) == e` for every style. A size's value is the exception:
//! it reads back as its name, which shape inference takes as the size only where a
//! vector could not stand, so the printer writes an equal tree that puts it there
//! (`(mαu)ᵀ` for `mαuᵀ`, see `sizes.rs`).
//!
//! One precedence-aware walker does all the work; each spelling is a table
//! (`unicode.rs`, `ascii.rs` and `latex.rs` hold them, together with the few choices that are
//! not table lookups: numbers, powers and what goes between two juxtaposed factors).
//! Precedence, tightest first, as in the parser: postfix (ᵀ, ⁻¹, powers) > products
//! (juxtaposition, `*`, `/`, left associative) > `⊙` > prefix minus > `+`/`−` (left
//! associative). So `−ab` is `Neg(Mul(a, b))`, `Mul(Neg(a), b)` prints `(−a)b`, and a
//! product nested on the right keeps its parentheses, `a(bc)`.
//!
//! # Examples
//! ```
//! use matcalc::parse::parse;
//! use matcalc::print::{render, Style};
//! let expr = parse("½‖WᵀWx − x‖²")?;
//! assert_eq!(render(&expr, Style::Unicode), "½‖WᵀWx − x‖²");
//! assert_eq!(render(&expr, Style::Ascii), "1/2*norm(W'*W*x - x)^2");
//! assert_eq!(render(&expr, Style::Latex), r"\frac{1}{2} \|W^\top W x - x\|^2");
//! for style in [Style::Unicode, Style::Ascii, Style::Latex] {
//!     assert_eq!(parse(&render(&expr, style))?, expr);
//! }
//! # Ok::<(), matcalc::parse::Error>(())
//! ```

mod ascii;
mod latex;
pub mod numpy;
mod powers;
mod sizes;
mod unicode;

/// What Unicode puts between two factors printed side by side: `·` where they would
/// merge into a number or a word (`2·3`, `y softmax(x)`), a space or nothing otherwise.
pub(crate) fn unicode_separator(left: &str, right: &str) -> &'static str {
    unicode::separator(left, right, false, false)
}

pub use ascii::ascii_name;
pub use latex::latex_name;

use num_traits::Signed;

use crate::expr::{Expr, ExprKind, Func, NormKind, Rational, WrittenAs};

/// Which of the three spellings of SPEC §2 to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Style {
    /// `½‖WᵀWx − x‖²`: juxtaposition, `−`, `ᵀ`, superscript powers, vulgar fractions.
    Unicode,
    /// `1/2*norm(W'*W*x - x)^2`: `*` for every product, `'`, `^`, spelled-out Greek.
    Ascii,
    /// `\frac{1}{2} \|W^\top W x - x\|^2`: the LaTeX subset the parser reads.
    Latex,
}

/// Renders `expr` in `style`, with the fewest parentheses that keep the tree.
///
/// # Examples
/// ```
/// use matcalc::parse::parse;
/// use matcalc::print::{render, Style};
/// let expr = parse("W*(z*x' + x*z')")?;
/// assert_eq!(render(&expr, Style::Unicode), "W(zxᵀ + xzᵀ)");
/// assert_eq!(render(&expr, Style::Ascii), "W*(z*x' + x*z')");
/// assert_eq!(render(&expr, Style::Latex), r"W\left(z x^\top + x z^\top\right)");
/// # Ok::<(), matcalc::parse::Error>(())
/// ```
pub fn render(expr: &Expr, style: Style) -> String {
    Printer::new(style, false).finish(expr)
}

/// The tree [`render`] and [`render_grouped`] print for `expr`: `expr` itself, but for a
/// size's value placed where it reads back as the size (`(mαu)ᵀ` for `mαuᵀ`, see the
/// module documentation) and a power past the parser's exponent bound written as
/// powers within it (`X¹²⁸` as `(X⁶⁴)²`). What the printed text parses back to has its
/// structure.
pub fn as_printed(expr: &Expr) -> std::rc::Rc<Expr> {
    let placed = sizes::place_sizes(expr);
    let current = placed.as_deref().unwrap_or(expr);
    powers::split_powers(current)
        .or(placed)
        .unwrap_or_else(|| std::rc::Rc::new(expr.clone()))
}

/// Renders `expr` like [`render`], but keeps the parentheses of every product that is
/// itself the left factor of a product, so the text shows the evaluation order: the
/// compute form of SPEC §6, `(Wz)xᵀ + (Wx)zᵀ`. It parses back to the same tree.
///
/// # Examples
/// ```
/// use matcalc::parse::parse;
/// use matcalc::print::{render, render_grouped, Style};
/// let expr = parse("(Wz)xᵀ + (Wx)zᵀ")?;
/// assert_eq!(render(&expr, Style::Unicode), "Wzxᵀ + Wxzᵀ");
/// assert_eq!(render_grouped(&expr, Style::Unicode), "(Wz)xᵀ + (Wx)zᵀ");
/// assert_eq!(render_grouped(&expr, Style::Ascii), "(W*z)*x' + (W*x)*z'");
/// # Ok::<(), matcalc::parse::Error>(())
/// ```
pub fn render_grouped(expr: &Expr, style: Style) -> String {
    Printer::new(style, true).finish(expr)
}

/// The fixed spellings of one style: operators, delimiters, constants and function names.
/// Everything a parser author may want to compare against lives in these three tables.
struct Spelling {
    /// Binary `+`, with its spaces.
    add: &'static str,
    /// Binary `−`, with its spaces.
    sub: &'static str,
    /// Prefix minus.
    neg: &'static str,
    /// The Hadamard product, with its spaces.
    hadamard: &'static str,
    /// Division when it is written inline (LaTeX uses `\frac` instead).
    div: &'static str,
    /// Grouping parentheses.
    open: &'static str,
    close: &'static str,
    /// Postfix operators.
    transpose: &'static str,
    inverse: &'static str,
    inverse_transpose: &'static str,
    /// Constants.
    identity: &'static str,
    ones: &'static str,
    /// Prefixes of the gradient `∇ℓ(v)` and the differential `dX`.
    grad: &'static str,
    differential: &'static str,
    /// Function names, each followed by a parenthesised argument.
    trace: &'static str,
    det: &'static str,
    diag: &'static str,
    sum: &'static str,
    /// The delimiters of `log|A|` and `‖x‖²`, and whether they are bars (inside bars a
    /// juxtaposed factor may not begin with a bar, see the grammar's `delimited_juxt`).
    logdet_open: &'static str,
    logdet_close: &'static str,
    norm_open: &'static str,
    norm_close: &'static str,
    delimiters_are_bars: bool,
    /// The elementwise quotient, with its spaces.
    elem_div: &'static str,
    /// The delimiters of the unsquared norms `‖x‖` and `‖x‖₁`.
    norm2_open: &'static str,
    norm2_close: &'static str,
    norm1_open: &'static str,
    norm1_close: &'static str,
    /// The vector functions' names.
    softmax: &'static str,
    logsumexp: &'static str,
}

/// How tightly a printed node binds, loosest first. A child printed where a tighter level
/// is required gets parentheses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    /// `a + b`, `a − b`.
    Sum,
    /// `−a`.
    Negation,
    /// `a ⊙ b`.
    Hadamard,
    /// `ab`, `a/b`, and the inline fraction `3/5`.
    Product,
    /// `aᵀ`, `a⁻¹`, `a²`, and `‖a‖²`, which already ends with a power.
    Postfix,
    /// Names, numbers, function calls, anything already bracketed.
    Atom,
}

/// What the surroundings of a node impose besides precedence.
#[derive(Clone, Copy, Debug)]
struct Context {
    /// Inside `|…|` or `‖…‖`, where a juxtaposed factor may not begin with a bar.
    inside_bars: bool,
}

impl Context {
    const TOP: Context = Context { inside_bars: false };
}

struct Printer {
    style: Style,
    spelling: &'static Spelling,
    /// Parenthesise a product that is the left factor of a product: `(Wz)xᵀ`.
    group_products: bool,
    out: String,
}

impl Printer {
    fn new(style: Style, group_products: bool) -> Printer {
        Printer {
            style,
            spelling: match style {
                Style::Unicode => &unicode::SPELLING,
                Style::Ascii => &ascii::SPELLING,
                Style::Latex => &latex::SPELLING,
            },
            group_products,
            out: String::new(),
        }
    }

    fn finish(mut self, expr: &Expr) -> String {
        let printed = as_printed(expr);
        self.node(&printed, Level::Sum, Context::TOP);
        self.out
    }

    /// Prints `expr` where at least `min` binding is needed, adding parentheses if not.
    fn node(&mut self, expr: &Expr, min: Level, context: Context) {
        if self.level(expr) < min {
            self.out.push_str(self.spelling.open);
            self.bare(expr, Context::TOP);
            self.out.push_str(self.spelling.close);
        } else {
            self.bare(expr, context);
        }
    }

    /// How tightly `expr` binds when printed in this style without parentheses.
    fn level(&self, expr: &Expr) -> Level {
        use ExprKind::*;
        if real_power(expr).is_some() {
            return Level::Postfix;
        }
        match &expr.kind {
            Num(q) => self.number_level(q),
            Neg(_) => Level::Negation,
            Add(..) | Sub(..) => Level::Sum,
            Hadamard(..) => Level::Hadamard,
            Mul(..) => Level::Product,
            // `\frac{a}{b}` is bracketed already, but a postfix on it still reads better
            // with parentheses around it.
            Div(..) if self.style == Style::Latex => Level::Postfix,
            Div(..) => Level::Product,
            // The parser reads `\sqrt{a}^\top` as √(aᵀ): a bare argument takes the
            // postfixes after it. A postfix on `\sqrt{…}` needs `\left(…\right)`.
            Func(crate::expr::Func::Sqrt, _) if self.style == Style::Latex => Level::Postfix,
            Transpose(_) | Inverse(_) | Pow(..) | NormSq(_) => Level::Postfix,
            // ASCII writes the Kronecker product as a call, `kron(A, B)`.
            Kron(..) if self.style == Style::Ascii => Level::Atom,
            Kron(..) => Level::Hadamard,
            ElemPow(..) | PowSym(..) => Level::Postfix,
            // `‖x‖⁻¹`, `‖x‖ᵀ`, `‖x‖³` read as written: only the square needs parentheses,
            // `(‖x‖)²`, as `‖x‖²` reads as the squared norm (see the `Pow` case of `bare`).
            Norm(..) => Level::Atom,
            ElemDiv(..) => Level::Hadamard,
            Var(_) | Size(_) | Identity | Ones | Differential(_) | Trace(_) | Det(_)
            | LogDet(_) | Diag(_) | Sum(_) | Func(..) | Apply(..) | Grad(..) | Vectorize(_)
            | Commutation(..) | Softmax(_) | LogSumExp(_) => Level::Atom,
            Written(inner, WrittenAs::RealPower) if written_real_power(inner).is_some() => {
                Level::Postfix
            }
            Written(inner, _) => self.level(inner),
        }
    }

    fn number_level(&self, q: &Rational) -> Level {
        if q.is_negative() {
            // Only a malformed tree holds a negative literal; it prints as `−q`.
            Level::Negation
        } else if q.is_integer() {
            Level::Atom
        } else {
            match self.style {
                Style::Unicode if unicode::vulgar_fraction(q).is_some() => Level::Atom,
                Style::Latex => Level::Postfix,
                _ => Level::Product,
            }
        }
    }

    /// Prints `expr` itself, its children with the parentheses their levels need.
    fn bare(&mut self, expr: &Expr, context: Context) {
        use ExprKind::*;
        let spelling = self.spelling;
        if let Some((base, exponent)) = real_power(expr) {
            return self.real_power(base, exponent, context);
        }
        match &expr.kind {
            Num(q) => {
                let text = self.number(q);
                self.out.push_str(&text);
            }
            Var(name) => {
                let text = self.name(name);
                self.out.push_str(&text);
            }
            // A size is written as its name, which shape inference reads back as the size.
            Size(name) => {
                let text = self.name(name);
                self.out.push_str(&text);
            }
            Identity => self.out.push_str(spelling.identity),
            Ones => self.out.push_str(spelling.ones),
            Differential(name) => {
                let text = self.name(name);
                self.out.push_str(spelling.differential);
                self.out.push_str(&text);
            }
            // A negation on the right of an operator, or under another negation, gets
            // parentheses although precedence alone would allow `a − −b`: people read
            // `a − (−b)` without stopping.
            Neg(operand) => {
                self.out.push_str(spelling.neg);
                self.node(operand, Level::Hadamard, context);
            }
            Add(left, right) => self.infix(left, spelling.add, right, Level::Sum, context),
            Sub(left, right) => self.infix(left, spelling.sub, right, Level::Sum, context),
            Hadamard(left, right) => {
                self.infix(left, spelling.hadamard, right, Level::Hadamard, context)
            }
            Mul(left, right) => self.product(left, right, context),
            Div(numerator, denominator) => {
                if self.style == Style::Latex {
                    self.out.push_str("\\frac{");
                    self.node(numerator, Level::Sum, Context::TOP);
                    self.out.push_str("}{");
                    self.node(denominator, Level::Sum, Context::TOP);
                    self.out.push('}');
                } else {
                    self.infix(
                        numerator,
                        spelling.div,
                        denominator,
                        Level::Product,
                        context,
                    )
                }
            }
            Transpose(operand) => match &operand.kind {
                Inverse(inner) => self.postfix(inner, spelling.inverse_transpose, context),
                _ => self.postfix(operand, spelling.transpose, context),
            },
            Inverse(operand) => self.postfix(operand, spelling.inverse, context),
            Pow(operand, exponent) => {
                let text = self.power(*exponent);
                let norm = match &operand.kind {
                    Written(inner, _) => matches!(inner.kind, Norm(..)),
                    kind => matches!(kind, Norm(..)),
                };
                if *exponent == 2 && norm {
                    self.out.push_str(spelling.open);
                    self.bare(operand, Context::TOP);
                    self.out.push_str(spelling.close);
                    self.out.push_str(&text);
                } else {
                    self.postfix(operand, &text, context)
                }
            }
            Trace(argument) => self.call(spelling.trace, argument),
            Det(argument) => self.call(spelling.det, argument),
            Diag(argument) => self.call(spelling.diag, argument),
            Sum(argument) => self.call(spelling.sum, argument),
            Func(function, argument) => {
                let (name, open, close) = self.function(*function);
                self.out.push_str(name);
                self.out.push_str(open);
                self.node(argument, Level::Sum, Context::TOP);
                self.out.push_str(close);
            }
            LogDet(argument) => self.delimited(
                spelling.logdet_open,
                argument,
                spelling.logdet_close,
                spelling.delimiters_are_bars,
            ),
            NormSq(argument) => self.delimited(
                spelling.norm_open,
                argument,
                spelling.norm_close,
                spelling.delimiters_are_bars,
            ),
            Apply(function, argument) => {
                let name = self.name(function);
                self.call(&name, argument);
            }
            Grad(function, argument) => {
                let name = format!("{}{}", spelling.grad, self.name(function));
                self.call(&name, argument);
            }
            Kron(left, right) => self.kron(left, right, context),
            Vectorize(argument) => {
                let name = match self.style {
                    Style::Latex => "\\operatorname{vec}",
                    _ => "vec",
                };
                self.call(name, argument);
            }
            Commutation(m, n) => {
                let text = self.commutation(m, n);
                self.out.push_str(&text);
            }
            Norm(argument, NormKind::Two) => self.delimited(
                spelling.norm2_open,
                argument,
                spelling.norm2_close,
                spelling.delimiters_are_bars,
            ),
            // Of a matrix, ‖X‖₁ would read as the induced norm: the entrywise one is
            // matrixcalculus.org's `norm1(X)` in every style.
            Norm(argument, NormKind::One)
                if !argument.shape.cols.is_one() && !argument.shape.rows.is_one() =>
            {
                let name = if self.style == Style::Latex {
                    "\\operatorname{norm1}"
                } else {
                    "norm1"
                };
                self.call(name, argument)
            }
            Norm(argument, NormKind::One) => self.delimited(
                spelling.norm1_open,
                argument,
                spelling.norm1_close,
                spelling.delimiters_are_bars,
            ),
            ElemDiv(left, right) => {
                self.infix(left, spelling.elem_div, right, Level::Hadamard, context)
            }
            ElemPow(operand, exponent) => {
                // A scalar's fractional power is the ordinary one, `(cᵀx)^{1/3}`; every
                // other elementwise power is marked, `x^{∘3}`, so that it reads back the same.
                let elementwise = !operand.shape.is_scalar() || exponent.is_integer();
                let text = match self.style {
                    Style::Unicode => unicode::rational_power(exponent, elementwise),
                    Style::Ascii => ascii::rational_power(exponent, elementwise),
                    Style::Latex => latex::rational_power(exponent, elementwise),
                };
                self.postfix(operand, &text, context)
            }
            PowSym(operand, symbol, offset) => {
                let text = match self.style {
                    Style::Unicode => unicode::symbolic_power(symbol, *offset),
                    Style::Ascii => ascii::symbolic_power(&ascii_name(symbol), *offset),
                    Style::Latex => latex::symbolic_power(&latex_name(symbol), *offset),
                };
                self.postfix(operand, &text, context)
            }
            Softmax(argument) => self.call(spelling.softmax, argument),
            LogSumExp(argument) => self.call(spelling.logsumexp, argument),
            Written(inner, notation) => self.written(inner, *notation, context),
        }
    }

    /// A notation as the parser read it (only in untyped trees), printed as written so
    /// that an error message quotes what the user typed: `|x|`, `A^{1/2}`, `‖x‖₂`.
    fn written(&mut self, inner: &Expr, notation: WrittenAs, context: Context) {
        use ExprKind::*;
        let latex = self.style == Style::Latex;
        match (notation, &inner.kind) {
            (WrittenAs::Bars, Det(argument)) => {
                let (open, close) = if latex {
                    ("\\left|", "\\right|")
                } else {
                    ("|", "|")
                };
                self.delimited(open, argument, close, true);
            }
            (WrittenAs::PlainPower, ElemPow(operand, exponent)) => {
                let text = match self.style {
                    Style::Unicode => unicode::rational_power(exponent, false),
                    Style::Ascii => ascii::rational_power(exponent, false),
                    Style::Latex => latex::rational_power(exponent, false),
                };
                self.postfix(operand, &text, context)
            }
            (WrittenAs::RealPower, _) if written_real_power(inner).is_some() => {
                if let Some((base, exponent)) = written_real_power(inner) {
                    self.real_power(base, exponent, context)
                }
            }
            (WrittenAs::VectorNorm, Norm(argument, NormKind::Two) | NormSq(argument)) => {
                let squared = matches!(inner.kind, NormSq(_));
                let (open, close) = match (self.style, squared) {
                    (Style::Unicode, false) => ("‖", "‖₂"),
                    (Style::Unicode, true) => ("‖", "‖₂²"),
                    (Style::Ascii, false) => ("norm2(", ")"),
                    (Style::Ascii, true) => ("norm2(", ")^2"),
                    (Style::Latex, false) => ("\\|", "\\|_2"),
                    (Style::Latex, true) => ("\\|", "\\|_2^2"),
                };
                self.delimited(open, argument, close, self.spelling.delimiters_are_bars);
            }
            _ => self.bare(inner, context),
        }
    }

    /// `A ⊗ B`, or `kron(A, B)` in ASCII. An elementwise product on either side gets
    /// parentheses, although `⊙` and `⊗` bind alike: `(A ⊙ B) ⊗ C` reads unambiguously.
    fn kron(&mut self, left: &Expr, right: &Expr, context: Context) {
        if self.style == Style::Ascii {
            self.out.push_str("kron(");
            self.node(left, Level::Sum, Context::TOP);
            self.out.push_str(", ");
            self.node(right, Level::Sum, Context::TOP);
            self.out.push(')');
            return;
        }
        let operator = match self.style {
            Style::Latex => " \\otimes ",
            _ => " ⊗ ",
        };
        let left_min = if matches!(left.kind, ExprKind::Hadamard(..)) {
            Level::Product
        } else {
            Level::Hadamard
        };
        self.node(left, left_min, context);
        self.out.push_str(operator);
        self.node(right, Level::Product, context);
    }

    /// The commutation matrix: `K₍ₘ,ₙ₎` where Unicode has the subscript letters, else
    /// `K_{m,n}` (also the ASCII and LaTeX spelling).
    fn commutation(&self, m: &crate::expr::Dim, n: &crate::expr::Dim) -> String {
        let (m_text, n_text) = match self.style {
            Style::Latex => (dim_latex(m), dim_latex(n)),
            _ => (m.to_string(), n.to_string()),
        };
        if self.style == Style::Unicode {
            if let (Some(m_sub), Some(n_sub)) =
                (unicode::subscript(&m_text), unicode::subscript(&n_text))
            {
                return format!("K₍{m_sub},{n_sub}₎");
            }
        }
        format!("K_{{{m_text},{n_text}}}")
    }

    /// A left-associative infix operator of level `level`.
    fn infix(&mut self, left: &Expr, operator: &str, right: &Expr, level: Level, context: Context) {
        self.node(left, level, context);
        self.out.push_str(operator);
        // The right operand must bind strictly tighter (left associativity); a negation
        // there always gets parentheses, see `bare`.
        let right_min = match level {
            Level::Sum => Level::Hadamard,
            Level::Hadamard => Level::Product,
            _ => Level::Postfix,
        };
        self.node(right, right_min, context);
    }

    /// A product: both factors, then whatever the style needs between them, decided by
    /// looking at the two texts side by side.
    fn product(&mut self, left: &Expr, right: &Expr, context: Context) {
        let left_min = if self.group_products && matches!(left.kind, ExprKind::Mul(..)) {
            Level::Postfix
        } else {
            Level::Product
        };
        self.node(left, left_min, context);
        let boundary = self.out.len();
        self.node(right, Level::Postfix, context);
        // A quotient or a differential on the left reads better with a space after it:
        // `D/2 log|K|`, `tr(G dW B)`.
        let left_is_quotient = left_min == Level::Product
            && self.level(left) == Level::Product
            && matches!(left.kind, ExprKind::Div(..) | ExprKind::Num(_));
        let left_ends_with_differential = match &left.kind {
            ExprKind::Differential(_) => true,
            ExprKind::Mul(_, last) => {
                left_min == Level::Product && matches!(last.kind, ExprKind::Differential(_))
            }
            _ => false,
        };
        let space_after_left = left_is_quotient || left_ends_with_differential;
        let (before, after) = self.out.split_at(boundary);
        let separator = match self.style {
            Style::Unicode => {
                unicode::separator(before, after, context.inside_bars, space_after_left)
            }
            Style::Ascii => ascii::SEPARATOR,
            Style::Latex => latex::separator(before, after, context.inside_bars),
        };
        self.out.insert_str(boundary, separator);
    }

    /// A postfix operator on `operand`, which must be an atom: `(AB)ᵀ`, `(Kᵀ)⁻¹`.
    fn postfix(&mut self, operand: &Expr, operator: &str, context: Context) {
        // LaTeX primes are superscripts already (`x^{\prime}`); braces keep the second
        // superscript from being a double one.
        let primed_latex_name = self.style == Style::Latex
            && matches!(&operand.kind, ExprKind::Var(name) if name.contains('′'));
        // A bare `1ᵀ` is refused as ambiguous (the all-ones row or the number); the number
        // transposed is written `(1)ᵀ`.
        let transposed_one = matches!(&operand.kind, ExprKind::Num(value) if num_traits::One::is_one(value))
            && operator == self.spelling.transpose;
        if primed_latex_name {
            self.out.push('{');
            self.bare(operand, context);
            self.out.push('}');
        } else if transposed_one {
            self.out.push('(');
            self.bare(operand, context);
            self.out.push(')');
        } else {
            self.node(operand, Level::Atom, context);
        }
        self.out.push_str(operator);
    }

    /// The real power `exp(e·log(a))` as it is written, `a^b`, `a^{b − 1}`, `(cᵀx)^{dᵀx}`:
    /// a letter exponent bare, any other in braces (parentheses in ASCII), all of which
    /// read back as the same tree.
    fn real_power(&mut self, base: &Expr, exponent: &Expr, context: Context) {
        self.node(base, Level::Atom, context);
        self.out.push('^');
        let letter = match &exponent.kind {
            ExprKind::Var(name) => {
                let mut chars = name.chars();
                let first = chars.next().unwrap_or('A');
                let plain = chars.next().is_none();
                // `a^b` is a symbolic power, which shape inference reads as this power;
                // a Greek letter is the real power's own bare form.
                plain
                    && (first.is_ascii_lowercase()
                        || matches!(first, '\u{03B1}'..='\u{03C9}' | '\u{0391}'..='\u{03A9}'))
                    && self.style != Style::Latex
            }
            _ => false,
        };
        let (open, close) = match (letter, self.style) {
            (true, _) => ("", ""),
            (false, Style::Ascii) => ("(", ")"),
            (false, _) => ("{", "}"),
        };
        self.out.push_str(open);
        self.node(exponent, Level::Sum, Context::TOP);
        self.out.push_str(close);
    }

    /// A named function with a parenthesised argument: `tr(A)`.
    fn call(&mut self, name: &str, argument: &Expr) {
        self.out.push_str(name);
        self.out.push_str(self.spelling.open);
        self.node(argument, Level::Sum, Context::TOP);
        self.out.push_str(self.spelling.close);
    }

    /// A construct with its own delimiters: `log|A|`, `‖x‖²`.
    fn delimited(&mut self, open: &str, argument: &Expr, close: &str, bars: bool) {
        self.out.push_str(open);
        self.node(argument, Level::Sum, Context { inside_bars: bars });
        self.out.push_str(close);
    }

    fn number(&self, q: &Rational) -> String {
        if q.is_negative() {
            return format!("{}{}", self.spelling.neg, self.number(&-q));
        }
        if q.is_integer() {
            return q.numer().to_string();
        }
        match self.style {
            Style::Unicode => match unicode::vulgar_fraction(q) {
                Some(vulgar) => vulgar.to_string(),
                None => format!("{}/{}", q.numer(), q.denom()),
            },
            Style::Ascii => format!("{}/{}", q.numer(), q.denom()),
            Style::Latex => format!("\\frac{{{}}}{{{}}}", q.numer(), q.denom()),
        }
    }

    fn name(&self, symbol: &str) -> String {
        match self.style {
            Style::Unicode => symbol.to_string(),
            Style::Ascii => ascii_name(symbol),
            Style::Latex => latex_name(symbol),
        }
    }

    fn power(&self, exponent: i64) -> String {
        match self.style {
            Style::Unicode => unicode::power(exponent),
            Style::Ascii => ascii::power(exponent),
            Style::Latex => latex::power(exponent),
        }
    }

    /// An elementwise function's name and the brackets around its argument.
    fn function(&self, function: Func) -> (&'static str, &'static str, &'static str) {
        let name = match self.style {
            Style::Unicode => unicode::function_name(function),
            Style::Ascii => function.name(),
            Style::Latex => latex::function_name(function),
        };
        if self.style == Style::Latex && function == Func::Sqrt {
            (name, "{", "}")
        } else {
            (name, self.spelling.open, self.spelling.close)
        }
    }
}

/// `text` in Unicode subscript characters (`ij` → `ᵢⱼ`), if every character has one.
pub fn unicode_subscript(text: &str) -> Option<String> {
    unicode::subscript(text)
}

/// A size in LaTeX: its symbols through [`latex_name`] (`d₁` is `d_{1}`).
fn dim_latex(dim: &crate::expr::Dim) -> String {
    match dim {
        crate::expr::Dim::Sym(name) => latex_name(name),
        crate::expr::Dim::Product(factors) => factors.iter().map(dim_latex).collect(),
        other => other.to_string(),
    }
}

/// The run of ASCII letters ending `left`, the run starting `right`, and what follows
/// that run in `right`.
fn letter_runs<'a>(left: &'a str, right: &'a str) -> (&'a str, &'a str, &'a str) {
    let left_run_start = left
        .trim_end_matches(|c: char| c.is_ascii_alphabetic())
        .len();
    let right_run_end = right
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(right.len());
    (
        &left[left_run_start..],
        &right[..right_run_end],
        &right[right_run_end..],
    )
}

/// Whether the run of ASCII letters ending `left` and the one starting `right` would,
/// written side by side, spell across the boundary one of the words the parser reads
/// before single letters (`x` then `i` is `xi`, `t` then `r(…)` is `tr(…)`).
fn letters_merge_into_word(left: &str, right: &str) -> bool {
    let (left_run, right_run, _) = letter_runs(left, right);
    if left_run.is_empty() || right_run.is_empty() {
        return false;
    }
    crate::parse::spells_word_across(left_run, right_run, false)
}

/// Whether writing `left` and `right` side by side would put a run of ASCII letters that
/// ends with a misspelt function name right before `(`, which the parser rejects as an
/// unknown function: `dle·tia` then `g` then `(x + y)` must not print `dle·tiag(x + y)`.
fn letters_call_a_misspelt_function(left: &str, right: &str) -> bool {
    let (left_run, right_run, rest) = letter_runs(left, right);
    if left_run.is_empty() || !rest.starts_with('(') {
        return false;
    }
    crate::parse::refused_call(&format!("{left_run}{right_run}"))
}

/// The base and the exponent of a typed real power `exp(e·log(a))` of scalars with an
/// exponent that is no number, which prints as `a^e` (SPEC §2); `exp(2 log(a))` stays as
/// it is, since `a^2` reads back as another tree.
fn real_power(expr: &Expr) -> Option<(&Expr, &Expr)> {
    let (base, exponent) = written_real_power(expr)?;
    (base.shape.is_scalar() && exponent.shape.is_scalar()).then_some((base, exponent))
}

/// The base and the exponent of `exp(e·log(a))` whatever the shapes, `e` no number.
fn written_real_power(expr: &Expr) -> Option<(&Expr, &Expr)> {
    let (base, exponent) = expr.real_power_parts()?;
    exponent
        .as_constant()
        .is_none()
        .then_some((base.as_ref(), exponent.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::build;
    use crate::expr::Shape;
    use std::rc::Rc;

    fn var(name: &str) -> Rc<Expr> {
        build::var(name, Shape::unknown())
    }

    fn unicode(expr: &Expr) -> String {
        render(expr, Style::Unicode)
    }

    #[test]
    fn print_letter_then_digit_gets_a_dot() {
        let expr = build::mul(var("x"), build::int(2));
        assert_eq!(unicode(&expr), "x·2");
        assert_eq!(render(&expr, Style::Ascii), "x*2");
        assert_eq!(render(&expr, Style::Latex), r"x \cdot 2");
    }

    #[test]
    fn print_number_then_number_gets_a_dot() {
        let expr = build::mul(build::int(2), build::int(3));
        assert_eq!(unicode(&expr), "2·3");
        let half = build::mul(
            build::int(2),
            build::constant(Rational::new(1.into(), 2.into())),
        );
        assert_eq!(unicode(&half), "2·½");
    }

    #[test]
    fn print_letters_that_would_spell_a_function_get_a_dot() {
        let sum = build::add(var("x"), var("y"));
        let expr = build::mul(var("t"), build::mul(var("r"), sum));
        assert_eq!(unicode(&expr), "t(r(x + y))");
        let left_nested = build::mul(
            build::mul(var("t"), var("r")),
            build::add(var("x"), var("y")),
        );
        assert_eq!(unicode(&left_nested), "t·r(x + y)");
    }

    #[test]
    fn print_letters_that_would_spell_greek_get_a_dot() {
        let xi = build::mul(var("x"), var("i"));
        assert_eq!(unicode(&xi), "x·i");
        let eta = build::mul(build::mul(var("e"), var("t")), var("a"));
        assert_eq!(unicode(&eta), "et·a");
        let plain = build::mul(build::mul(var("z"), var("x")), var("y"));
        assert_eq!(unicode(&plain), "zxy");
    }

    #[test]
    fn print_sigma_variable_before_parenthesis_gets_a_dot() {
        let expr = build::mul(var("σ"), build::add(var("a"), var("b")));
        assert_eq!(unicode(&expr), "σ·(a + b)");
        assert_eq!(
            render(&expr, Style::Latex),
            r"\sigma \cdot \left(a + b\right)"
        );
        let product = build::mul(var("W"), build::add(var("a"), var("b")));
        assert_eq!(unicode(&product), "W(a + b)");
    }

    #[test]
    fn print_bar_inside_bars_gets_a_dot() {
        let inner = build::mul(var("a"), build::norm_sq(var("x")));
        assert_eq!(unicode(&inner), "a‖x‖²");
        assert_eq!(unicode(&build::norm_sq(inner)), "‖a·‖x‖²‖²");
    }

    #[test]
    fn print_quotient_then_factor_gets_a_space() {
        let expr = build::mul(build::div(var("D"), build::int(2)), build::logdet(var("K")));
        assert_eq!(unicode(&expr), "D/2 log|K|");
        let swish = build::mul(var("W"), build::func(Func::Swish, var("x")));
        assert_eq!(unicode(&swish), "W swish(x)");
    }

    #[test]
    fn print_differential_is_set_apart_by_spaces() {
        let dw = build::differential("W", Shape::unknown());
        let expr = build::trace(build::mul(build::mul(var("G"), dw), var("B")));
        assert_eq!(unicode(&expr), "tr(G dW B)");
        assert_eq!(render(&expr, Style::Ascii), "tr(G*dW*B)");
        assert_eq!(
            render(&expr, Style::Latex),
            r"\operatorname{tr}\left(G \mathrm{d}W B\right)"
        );
    }

    #[test]
    fn print_letters_that_would_call_a_misspelt_function_get_a_dot() {
        let letters = "dletiag"
            .chars()
            .map(|letter| var(&letter.to_string()))
            .reduce(build::mul)
            .expect("seven letters");
        let expr = build::mul(letters, build::add(var("x"), var("y")));
        assert_eq!(unicode(&expr), "dle·tiag·(x + y)");
        assert!(letters_call_a_misspelt_function("tia", "g(x)"));
        assert!(!letters_call_a_misspelt_function("x", "diag(x)"));
        assert!(letters_call_a_misspelt_function("abc", "(x)"));
        assert!(!letters_call_a_misspelt_function("Wx", "(x)"));
    }

    #[test]
    fn print_letters_merge_only_across_the_boundary() {
        assert!(letters_merge_into_word("x", "i"));
        assert!(letters_merge_into_word("t", "r(x)"));
        assert!(letters_merge_into_word("be", "ta"));
        assert!(!letters_merge_into_word("W", "x"));
        assert!(!letters_merge_into_word("x", "tr(A)"));
        assert!(!letters_merge_into_word("Wᵀ", "i"));
    }
}
