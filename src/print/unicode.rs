//! The Unicode spelling: `½‖WᵀWx − x‖²`, `W(zxᵀ + xzᵀ)`, `−c − D/2 log|K|`.

use num_bigint::BigInt;

use super::{letters_call_a_misspelt_function, letters_merge_into_word, Spelling};
use crate::expr::{Func, Rational};

#[rustfmt::skip]
pub(super) const SPELLING: Spelling = Spelling {
    add:               " + ",
    sub:               " − ",
    neg:               "−",
    hadamard:          " ⊙ ",
    div:               "/",
    open:              "(",
    close:             ")",
    transpose:         "ᵀ",
    inverse:           "⁻¹",
    inverse_transpose: "⁻ᵀ",
    identity:          "I",
    ones:              "𝟙",
    grad:              "∇",
    differential:      "d",
    trace:             "tr",
    det:               "det",
    diag:              "diag",
    sum:               "sum",
    logdet_open:       "log|",
    logdet_close:      "|",
    norm_open:         "‖",
    norm_close:        "‖²",
    elem_div:          " ⊘ ",
    norm2_open:        "‖",
    norm2_close:       "‖",
    norm1_open:        "‖",
    norm1_close:       "‖₁",
    softmax:           "softmax",
    logsumexp:         "logsumexp",
    delimiters_are_bars: true,
};

/// `text` in Unicode subscript characters, if every character has one: `mn` → `ₘₙ`.
/// Several letters (`b`, `c`, `d`, `q`, `w`, …) have none.
pub(super) fn subscript(text: &str) -> Option<String> {
    text.chars()
        .map(|c| {
            Some(match c {
                '0'..='9' => char::from_u32(0x2080 + c.to_digit(10)?)?,
                '₀'..='₉' => c,
                'a' => 'ₐ',
                'e' => 'ₑ',
                'h' => 'ₕ',
                'i' => 'ᵢ',
                'j' => 'ⱼ',
                'k' => 'ₖ',
                'l' => 'ₗ',
                'm' => 'ₘ',
                'n' => 'ₙ',
                'o' => 'ₒ',
                'p' => 'ₚ',
                'r' => 'ᵣ',
                's' => 'ₛ',
                't' => 'ₜ',
                'u' => 'ᵤ',
                'v' => 'ᵥ',
                'x' => 'ₓ',
                _ => return None,
            })
        })
        .collect()
}

/// The elementwise functions' names.
pub(super) fn function_name(function: Func) -> &'static str {
    match function {
        Func::Sigma => "σ",
        other => other.name(),
    }
}

/// The vulgar fractions printed as one character; others print as `p/q`. (The parser
/// also reads `⅐ ⅑ ⅒`, which many fonts lack.)
#[rustfmt::skip]
const VULGAR_FRACTIONS: [(i64, i64, &str); 15] = [
    (1, 2, "½"), (1, 3, "⅓"), (2, 3, "⅔"), (1, 4, "¼"), (3, 4, "¾"),
    (1, 5, "⅕"), (2, 5, "⅖"), (3, 5, "⅗"), (4, 5, "⅘"), (1, 6, "⅙"),
    (5, 6, "⅚"), (1, 8, "⅛"), (3, 8, "⅜"), (5, 8, "⅝"), (7, 8, "⅞"),
];

/// The single character for `q`, if there is one: ½ → `½`.
pub(super) fn vulgar_fraction(q: &Rational) -> Option<&'static str> {
    VULGAR_FRACTIONS
        .iter()
        .find(|(numer, denom, _)| {
            *q.numer() == BigInt::from(*numer) && *q.denom() == BigInt::from(*denom)
        })
        .map(|(_, _, text)| *text)
}

/// A power as superscripts: 2 → `²`, −2 → `⁻²`, 10 → `¹⁰`.
pub(super) fn power(exponent: i64) -> String {
    const DIGITS: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let mut res = String::new();
    if exponent < 0 {
        res.push('⁻');
    }
    for digit in exponent.unsigned_abs().to_string().bytes() {
        res.push(DIGITS[usize::from(digit - b'0')]);
    }
    res
}

/// An elementwise or rational power: `^{∘3}`, `^{∘1/3}`, `^{1/3}` (a scalar's).
pub(super) fn rational_power(exponent: &Rational, elementwise: bool) -> String {
    let circle = if elementwise { "∘" } else { "" };
    let sign = if exponent < &Rational::from_integer(0.into()) {
        "−"
    } else {
        ""
    };
    let magnitude = num_traits::Signed::abs(exponent);
    format!("^{{{circle}{sign}{magnitude}}}")
}

/// A power with an integer symbol: `ᵏ`, `ᵏ⁻¹`, or `^{q−1}` for a letter without a
/// superscript form.
pub(super) fn symbolic_power(symbol: &str, offset: i64) -> String {
    const LETTERS: [(&str, &str); 8] = [
        ("k", "ᵏ"),
        ("n", "ⁿ"),
        ("m", "ᵐ"),
        ("p", "ᵖ"),
        ("i", "ⁱ"),
        ("j", "ʲ"),
        ("l", "ˡ"),
        ("r", "ʳ"),
    ];
    let superscript = LETTERS.iter().find(|(letter, _)| *letter == symbol);
    match superscript {
        Some((_, letter)) => {
            let tail = match offset {
                0 => String::new(),
                o if o > 0 => format!("⁺{}", power(o)),
                o => power(o),
            };
            format!("{letter}{tail}")
        }
        None => match offset {
            0 => format!("^{{{symbol}}}"),
            o if o > 0 => format!("^{{{symbol}+{o}}}"),
            o => format!("^{{{symbol}−{}}}", -o),
        },
    }
}

/// What goes between two juxtaposed factors printed as `left` and `right`: nothing
/// (`WᵀWx`), a space for readability (`D/2 log|K|`, `W₂ swish(z)`, `dX B`), or `·` where writing
/// them side by side would read differently (`x·2`, not the name `x₂`) or not at all
/// (`tiag·(x)`, not the unknown function `tiag`).
pub(super) fn separator(
    left: &str,
    right: &str,
    inside_bars: bool,
    space_after_left: bool,
) -> &'static str {
    let (Some(last), Some(first)) = (left.chars().last(), right.chars().next()) else {
        return "";
    };
    let right_is_number = first.is_ascii_digit() || vulgar_char(first);
    // A bare σ before a parenthesis is the sigmoid, even with a space between.
    let sigma_call = last == 'σ' && first == '(';
    let bar = inside_bars && (first == '|' || first == '‖');
    if right_is_number
        || sigma_call
        || bar
        || letters_merge_into_word(left, right)
        || letters_call_a_misspelt_function(left, right)
    {
        return "·";
    }
    let right_starts_with_word = right
        .chars()
        .take(2)
        .filter(|c| c.is_ascii_alphabetic())
        .count()
        == 2;
    if space_after_left || right_starts_with_word {
        " "
    } else {
        ""
    }
}

fn vulgar_char(c: char) -> bool {
    VULGAR_FRACTIONS
        .iter()
        .any(|(_, _, text)| text.starts_with(c))
        || matches!(c, '⅐' | '⅑' | '⅒')
}
