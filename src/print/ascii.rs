//! The ASCII spelling: `1/2*norm(W'*W*x - x)^2`, `W*(z*x' + x*z')`, `alpha*X*X'`.

use super::Spelling;
use crate::expr::Rational;
use crate::parse::GREEK_LETTERS;

#[rustfmt::skip]
pub(super) const SPELLING: Spelling = Spelling {
    add:               " + ",
    sub:               " - ",
    neg:               "-",
    hadamard:          " .* ",
    div:               "/",
    open:              "(",
    close:             ")",
    transpose:         "'",
    inverse:           "^-1",
    inverse_transpose: "^-T",
    identity:          "I",
    ones:              "ones",
    grad:              "grad ",
    differential:      "d",
    trace:             "tr",
    det:               "det",
    diag:              "diag",
    sum:               "sum",
    logdet_open:       "logdet(",
    logdet_close:      ")",
    norm_open:         "norm(",
    norm_close:        ")^2",
    elem_div:          " ./ ",
    norm2_open:        "norm(",
    norm2_close:       ")",
    norm1_open:        "norm1(",
    norm1_close:       ")",
    softmax:           "softmax",
    logsumexp:         "logsumexp",
    delimiters_are_bars: false,
};

/// Every product is written out, so no juxtaposition can re-lex.
pub(super) const SEPARATOR: &str = "*";

/// A power: `^2`, `^-2`; longer exponents get parentheses, `^(10)`, because a reader
/// used to LaTeX takes an unbraced exponent for one digit (matcalc reads `^10` whole).
pub(super) fn power(exponent: i64) -> String {
    if exponent.unsigned_abs() < 10 {
        format!("^{exponent}")
    } else {
        format!("^({exponent})")
    }
}

/// An elementwise or rational power: `.^3`, `.^(1/3)`, `.^(-1)`, `^(1/3)` (a scalar's).
pub(super) fn rational_power(exponent: &Rational, elementwise: bool) -> String {
    let caret = if elementwise { ".^" } else { "^" };
    if exponent.is_integer() && exponent >= &Rational::from_integer(0.into()) {
        format!("{caret}{exponent}")
    } else {
        format!("{caret}({exponent})")
    }
}

/// A power with an integer symbol: `^k`, `^(k-1)`, `^(k+1)`.
pub(super) fn symbolic_power(symbol: &str, offset: i64) -> String {
    match offset {
        0 => format!("^{symbol}"),
        o if o > 0 => format!("^({symbol}+{o})"),
        o => format!("^({symbol}-{})", -o),
    }
}

/// The ASCII spelling of a symbol: Greek letters spelled out (`α` → `alpha`, `Σ` →
/// `Sigma`, `ℓ` → `ell`), subscript digits as plain digits (`W₁` → `W1`); primes and any
/// other character are kept (`x′` → `x′`).
///
/// # Examples
/// ```
/// use matcalc::print::ascii_name;
/// assert_eq!(ascii_name("α"), "alpha");
/// assert_eq!(ascii_name("W₁"), "W1");
/// assert_eq!(ascii_name("λ₁₂"), "lambda12");
/// assert_eq!(ascii_name("x′"), "x′");
/// ```
pub fn ascii_name(symbol: &str) -> String {
    let mut res = String::new();
    for c in symbol.chars() {
        let mut buffer = [0u8; 4];
        let letter: &str = c.encode_utf8(&mut buffer);
        if let Some((ascii, _)) = GREEK_LETTERS.iter().find(|(_, greek)| *greek == letter) {
            res.push_str(ascii);
        } else if let Some(digit) = subscript_digit_value(c) {
            res.push(char::from(b'0' + digit));
        } else {
            res.push(c);
        }
    }
    res
}

/// The value of a subscript digit: `₁` → 1.
pub(super) fn subscript_digit_value(c: char) -> Option<u8> {
    ('₀'..='₉')
        .contains(&c)
        .then(|| (u32::from(c) - u32::from('₀')) as u8)
}
