//! The LaTeX spelling: `\frac{1}{2} \|W^\top W x - x\|^2`, `W\left(z x^\top + x z^\top\right)`.

use super::ascii::subscript_digit_value;
use super::Spelling;
use crate::expr::{Func, Rational};
use crate::parse::GREEK_LETTERS;

#[rustfmt::skip]
pub(super) const SPELLING: Spelling = Spelling {
    add:               " + ",
    sub:               " - ",
    neg:               "-",
    hadamard:          " \\odot ",
    div:               "/",
    open:              "\\left(",
    close:             "\\right)",
    transpose:         "^\\top",
    inverse:           "^{-1}",
    inverse_transpose: "^{-\\top}",
    identity:          "I",
    ones:              "\\mathbf{1}",
    grad:              "\\nabla ",
    differential:      "\\mathrm{d}",
    trace:             "\\operatorname{tr}",
    det:               "\\det",
    diag:              "\\operatorname{diag}",
    sum:               "\\operatorname{sum}",
    logdet_open:       "\\log\\left|",
    logdet_close:      "\\right|",
    norm_open:         "\\|",
    norm_close:        "\\|^2",
    elem_div:          " \\oslash ",
    norm2_open:        "\\|",
    norm2_close:       "\\|",
    norm1_open:        "\\|",
    norm1_close:       "\\|_1",
    softmax:           "\\operatorname{softmax}",
    logsumexp:         "\\operatorname{logsumexp}",
    delimiters_are_bars: true,
};

/// The elementwise functions' names (`\sqrt` takes its argument in braces).
#[rustfmt::skip]
pub(super) fn function_name(function: Func) -> &'static str {
    match function {
        Func::Sigma    => "\\sigma",
        Func::Exp      => "\\exp",
        Func::Log      => "\\log",
        Func::Tanh     => "\\tanh",
        Func::Swish    => "\\operatorname{swish}",
        Func::Relu     => "\\operatorname{relu}",
        Func::Softplus => "\\operatorname{softplus}",
        Func::Sqrt     => "\\sqrt",
        Func::Step     => "\\operatorname{step}",
        Func::Sin      => "\\sin",
        Func::Cos      => "\\cos",
        Func::Tan      => "\\tan",
        Func::Arcsin   => "\\arcsin",
        Func::Arccos   => "\\arccos",
        Func::Arctan   => "\\arctan",
        Func::Sinh     => "\\sinh",
        Func::Cosh     => "\\cosh",
        Func::Abs      => "\\operatorname{abs}",
        Func::Sign     => "\\operatorname{sign}",
    }
}

/// A power: `^{2}`, `^{-2}`.
pub(super) fn power(exponent: i64) -> String {
    format!("^{{{exponent}}}")
}

/// An elementwise or rational power: `^{\circ 3}`, `^{\circ 1/3}`, `^{1/3}` (a scalar's).
pub(super) fn rational_power(exponent: &Rational, elementwise: bool) -> String {
    let circle = if elementwise { "\\circ " } else { "" };
    format!("^{{{circle}{exponent}}}")
}

/// A power with an integer symbol: `^{k}`, `^{k-1}`.
pub(super) fn symbolic_power(symbol: &str, offset: i64) -> String {
    match offset {
        0 => format!("^{{{symbol}}}"),
        o if o > 0 => format!("^{{{symbol}+{o}}}"),
        o => format!("^{{{symbol}-{}}}", -o),
    }
}

/// What goes between two juxtaposed factors: a space (`W x`), nothing before a
/// parenthesis (`W\left(…\right)`), or `\cdot` where the
/// factors would otherwise read differently or look like one number (`x \cdot 2`).
pub(super) fn separator(left: &str, right: &str, inside_bars: bool) -> &'static str {
    let right_is_number = right.starts_with(|c: char| c.is_ascii_digit())
        || (right.starts_with("\\frac")
            && left.ends_with(|c: char| c.is_ascii_digit() || c == '}'));
    // `\sigma (a + b)` is the sigmoid of a + b, even with a space between.
    let sigma_call = left.ends_with("\\sigma") && right.starts_with("\\left(");
    let bar = inside_bars && (right.starts_with("\\|") || right.starts_with('|'));
    if right_is_number || sigma_call || bar {
        " \\cdot "
    } else if right.starts_with("\\left(") {
        // SPEC §5 writes `W\left(z x^\top + x z^\top\right)`.
        ""
    } else {
        " "
    }
}

/// The LaTeX spelling of a symbol: Greek letters as commands (`α` → `\alpha`, `ℓ` →
/// `\ell`), subscripts braced (`W₁` → `W_{1}`), primes as `^{\prime}`.
///
/// # Examples
/// ```
/// use matcalc::print::latex_name;
/// assert_eq!(latex_name("α"), r"\alpha");
/// assert_eq!(latex_name("W₁"), "W_{1}");
/// assert_eq!(latex_name("β₁₂"), r"\beta_{12}");
/// assert_eq!(latex_name("x′"), r"x^{\prime}");
/// ```
pub fn latex_name(symbol: &str) -> String {
    let mut res = String::new();
    let mut subscript = String::new();
    for c in symbol.chars() {
        if let Some(digit) = subscript_digit_value(c) {
            subscript.push(char::from(b'0' + digit));
            continue;
        }
        if !subscript.is_empty() {
            res.push_str(&format!("_{{{subscript}}}"));
            subscript.clear();
        }
        let mut buffer = [0u8; 4];
        let letter: &str = c.encode_utf8(&mut buffer);
        if let Some((ascii, _)) = GREEK_LETTERS.iter().find(|(_, greek)| *greek == letter) {
            res.push('\\');
            res.push_str(ascii);
        } else if c == '′' {
            res.push_str("^{\\prime}");
        } else {
            res.push(c);
        }
    }
    if !subscript.is_empty() {
        res.push_str(&format!("_{{{subscript}}}"));
    }
    res
}
