//! Parsing: text in any of the three spellings of SPEC §2 (Unicode, ASCII, a LaTeX subset)
//! to an [`Expr`] whose every node carries its source [`Span`] and an unknown shape.
//!
//! The grammar is `grammar/matcalc.pest`: an expression is a flat sequence of prefix,
//! primary, postfix and infix tokens, folded into a tree here with pest's Pratt parser.
//! Constants stay exact (`0.5`, `½`, `1/2` and `\frac{1}{2}` are all the rational ½), names
//! are canonical Unicode (`alpha` → `α`, `W_1` → `W₁`), and no input panics: length,
//! bracket nesting, operator runs, backtracking and tree depth are all bounded, each with
//! its own error.
//!
//! # Examples
//! ```
//! use matcalc::parse::parse;
//! let unicode = parse("½‖WᵀWx − x‖²")?;
//! let latex = parse(r"\frac{1}{2} \|\mathbf{W}^T \mathbf{Wx} - \mathbf{x}\|^2")?;
//! let ascii = parse("1/2*norm(W'*W*x - x)^2")?;
//! assert_eq!(unicode, latex);
//! assert_eq!(unicode, ascii);
//! # Ok::<(), matcalc::parse::Error>(())
//! ```

use std::collections::{BTreeSet, HashMap};
use std::num::NonZeroUsize;
use std::rc::Rc;
use std::sync::{Once, OnceLock};

use num_bigint::BigInt;
use num_traits::Zero;
use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest::Parser;

use crate::diag::Diagnostic;
use crate::expr::{
    Decls, Dim, Expr, ExprKind, Func, NormKind, Props, Rational, Shape, Span, Symbol, VarDecl,
    WrittenAs,
};

mod grammar {
    #![allow(missing_docs)]
    #[derive(pest_derive::Parser)]
    #[grammar = "../grammar/matcalc.pest"]
    pub struct MatcalcGrammar;
}

use grammar::{MatcalcGrammar, Rule};

/// The deepest bracket nesting the pre-scan lets through to pest.
const MAX_NESTING: usize = 128;
/// The longest run of consecutive prefix or postfix operators the pre-scan lets through.
const MAX_OPERATOR_RUN: usize = 128;
/// The budget of pest rule calls, so that pathological backtracking ends with an error.
const CALL_LIMIT: usize = 5_000_000;

/// Size limits on what the parser accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The longest input, in bytes.
    pub max_input_len: usize,
    /// The deepest nesting (a leaf has depth 1; a flat chain `a + b + c`, `ABC` is one
    /// level however long, [`nesting_depth`]).
    pub max_depth: usize,
    /// The largest exponent magnitude in a power `Aᵏ` (`|k|`).
    pub max_exponent: u64,
    /// The most distinct variables in one expression.
    pub max_symbols: usize,
}

impl Limits {
    /// The standard limits: 10 000 bytes of input, a nesting depth of 512, exponents up to
    /// 64 in magnitude and 200 distinct variables.
    pub fn standard() -> Limits {
        Limits {
            max_input_len: 10_000,
            max_depth: 512,
            max_exponent: 64,
            max_symbols: 200,
        }
    }
}

/// What the parser needs to know besides the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseOptions {
    /// Opaque scalar functions (declared `ℓ: fn`): `ℓ(v)` is an application only for these
    /// names, canonical spelling; any other `f(v)` is the product `f·(v)`.
    pub fns: BTreeSet<Symbol>,
    /// Scalars declared integers (`k: int`): `X^k` is the matrix power for these names
    /// only; of any other letter, `a^b` is the real power `exp(b·log(a))` of scalars.
    pub integers: BTreeSet<Symbol>,
    /// Size limits.
    pub limits: Limits,
}

impl ParseOptions {
    /// No opaque functions, standard limits.
    pub fn standard() -> ParseOptions {
        ParseOptions {
            fns: BTreeSet::new(),
            integers: BTreeSet::new(),
            limits: Limits::standard(),
        }
    }

    /// The opaque functions and integers declared in `decls`, standard limits.
    pub fn from_decls(decls: &Decls) -> ParseOptions {
        ParseOptions {
            fns: decls.fns.clone(),
            integers: decls.integers(),
            limits: Limits::standard(),
        }
    }
}

/// Why a text could not be parsed. Every variant with a place carries its byte span.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The text does not follow the grammar.
    #[error("{message}")]
    Syntax {
        /// What was expected, in human terms.
        message: String,
        /// Where.
        span: Span,
        /// Suggestions (`did you mean ^?`).
        hints: Vec<String>,
    },
    /// A word followed by `(` that looks like a misspelt function name (`sigmod(z)`).
    #[error("unknown function `{name}`")]
    UnknownFunction {
        /// The word as written.
        name: String,
        /// Where.
        span: Span,
        /// The closest known function, if any is close.
        suggestion: Option<String>,
        /// How to write it instead, where matcalc knows (`log10(t) = log(t)/log(10)`).
        hint: Option<String>,
    },
    /// Notation matcalc reads but cannot handle; the message begins `unsupported:`.
    #[error("{message}")]
    Unsupported {
        /// What is unsupported, beginning `unsupported:`.
        message: String,
        /// Where.
        span: Span,
        /// What to write instead.
        hint: Option<String>,
    },
    /// The input is longer than [`Limits::max_input_len`].
    #[error("input too long: {len} bytes, the limit is {max}")]
    InputTooLong {
        /// The input's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Brackets, bars or function arguments nest too deeply.
    #[error("brackets nested too deeply (the limit is {max} levels)")]
    NestingTooDeep {
        /// The opening bracket that crosses the limit.
        span: Span,
        /// The limit.
        max: usize,
    },
    /// Too many prefix or postfix operators in a row (`− − − …`, `x''''…`).
    #[error("too many operators in a row (the limit is {max})")]
    OperatorRunTooLong {
        /// The operator that crosses the limit.
        span: Span,
        /// The limit.
        max: usize,
    },
    /// The expression tree is deeper than [`Limits::max_depth`].
    #[error("expression nested too deeply (the limit is a depth of {max})")]
    TreeTooDeep {
        /// The subexpression that crosses the limit.
        span: Span,
        /// The limit.
        max: usize,
    },
    /// A power whose exponent is beyond [`Limits::max_exponent`] in magnitude.
    #[error("exponent too large: {exponent} (the limit is ±{max})")]
    ExponentTooLarge {
        /// The exponent.
        exponent: i64,
        /// Where.
        span: Span,
        /// The limit.
        max: u64,
    },
    /// More distinct variables than [`Limits::max_symbols`].
    #[error("too many variables: {count} (the limit is {max})")]
    TooManySymbols {
        /// How many distinct variables the expression has.
        count: usize,
        /// The whole expression.
        span: Span,
        /// The limit.
        max: usize,
    },
    /// The parser gave up after too much backtracking.
    #[error("expression too complex")]
    TooComplex {
        /// Where the parser was when it gave up.
        span: Span,
    },
    /// A number that is out of range, such as an exponent beyond 64 bits.
    #[error("{message}")]
    InvalidNumber {
        /// What is wrong.
        message: String,
        /// Where.
        span: Span,
    },
    /// A declaration that parses but makes no sense (`sym` on a non-square shape).
    #[error("{message}")]
    InvalidDeclaration {
        /// What is wrong.
        message: String,
        /// Where.
        span: Span,
    },
}

impl Error {
    /// The source span the error points at, if it has one.
    pub fn span(&self) -> Option<Span> {
        match self {
            Error::Syntax { span, .. }
            | Error::UnknownFunction { span, .. }
            | Error::Unsupported { span, .. }
            | Error::NestingTooDeep { span, .. }
            | Error::OperatorRunTooLong { span, .. }
            | Error::TreeTooDeep { span, .. }
            | Error::ExponentTooLarge { span, .. }
            | Error::TooManySymbols { span, .. }
            | Error::TooComplex { span }
            | Error::InvalidNumber { span, .. }
            | Error::InvalidDeclaration { span, .. } => Some(*span),
            Error::InputTooLong { .. } => None,
        }
    }

    /// The error as a person reads it, ready for [`Diagnostic::render`].
    pub fn diagnostic(&self) -> Diagnostic {
        let diagnostic = Diagnostic::new(self.to_string());
        match self {
            Error::Syntax { span, hints, .. } => {
                let mut diagnostic = diagnostic.at(*span, "");
                for hint in hints {
                    diagnostic = diagnostic.hint(hint.clone());
                }
                diagnostic
            }
            Error::UnknownFunction {
                span,
                suggestion,
                hint,
                ..
            } => {
                let mut diagnostic = diagnostic.at(*span, "not a known function");
                if let Some(known) = suggestion {
                    diagnostic = diagnostic.hint(format!("did you mean `{known}`?"));
                }
                if let Some(hint) = hint {
                    diagnostic = diagnostic.hint(hint.clone());
                }
                diagnostic
            }
            Error::Unsupported { span, hint, .. } => match hint {
                Some(hint) => diagnostic.at(*span, "").hint(hint.clone()),
                None => diagnostic.at(*span, ""),
            },
            Error::InputTooLong { .. } => diagnostic
                .hint("split the expression with `let` definitions")
                .hint(raise_hint("max-input")),
            Error::NestingTooDeep { span, .. } => diagnostic.at(*span, "too deep here"),
            Error::OperatorRunTooLong { span, .. } => diagnostic.at(*span, "too many here"),
            Error::TreeTooDeep { span, .. } => diagnostic
                .hint("split the expression with `let` definitions")
                .hint(raise_hint("max-depth"))
                .at(*span, ""),
            Error::ExponentTooLarge { span, .. } => diagnostic
                .at(*span, "too large")
                .hint("write the power as a product of smaller powers with `let` definitions")
                .hint(raise_hint("max-exponent")),
            Error::TooManySymbols { span, .. } => diagnostic
                .at(*span, "")
                .hint("split the expression with `let` definitions")
                .hint(raise_hint("max-symbols")),
            Error::TooComplex { span } => diagnostic
                .at(*span, "")
                .hint("add parentheses or split the expression with `let` definitions"),
            Error::InvalidNumber { span, .. } | Error::InvalidDeclaration { span, .. } => {
                diagnostic.at(*span, "")
            }
        }
    }
}

/// How to raise the limit called `name` on the command line (`--max-depth`) and in the
/// REPL (`:limits max-depth N`), the same name in both.
fn raise_hint(name: &str) -> String {
    format!("raise the limit with --{name} N (in the REPL, `:limits {name} N`)")
}

/// Parses an expression in any spelling, with no opaque functions and standard limits.
///
/// # Examples
/// ```
/// use matcalc::expr::ExprKind;
/// let expr = matcalc::parse::parse("tr(AXB)")?;
/// assert!(matches!(expr.kind, ExprKind::Trace(_)));
/// # Ok::<(), matcalc::parse::Error>(())
/// ```
pub fn parse(src: &str) -> Result<Expr, Error> {
    parse_with(src, &ParseOptions::standard())
}

/// Parses an expression in any spelling with the given opaque functions and limits.
///
/// # Examples
/// ```
/// use matcalc::expr::ExprKind;
/// use matcalc::parse::{parse_with, ParseOptions};
/// let mut options = ParseOptions::standard();
/// options.fns.insert("ℓ".to_string());
/// let expr = parse_with("ℓ(Wx)", &options)?;
/// assert!(matches!(expr.kind, ExprKind::Apply(..)));
/// # Ok::<(), matcalc::parse::Error>(())
/// ```
pub fn parse_with(src: &str, options: &ParseOptions) -> Result<Expr, Error> {
    prescan(src, &options.limits)?;
    check_function_names(src)?;
    let mut pairs = run_pest(Rule::formula, src)?;
    let formula = next_pair(&mut pairs, src)?;
    let lowerer = Lowerer { options };
    let expr_pair = first_child(formula, Rule::expr, src)?;
    let node = lowerer.expr(expr_pair, 0)?;
    check_depth(&node.expr, &options.limits)?;
    check_symbols(&node.expr, &options.limits)?;
    Ok(node.expr)
}

/// Parses declarations such as `W: m×n, x: n; K: n×n sym; S: n×n spd; ℓ: fn`.
///
/// Shapes may be written `m×n`, `m x n`, `n` (a column vector), `scalar`, `ℝ^{m×n}`,
/// `R^(m,n)` or `\mathbb{R}^{m \times n}`; sizes are symbols or numbers. `spd` implies
/// symmetric, and both need a square shape.
///
/// # Examples
/// ```
/// let decls = matcalc::parse::parse_decls("W: m×n, x: n; K: n×n spd; ℓ: fn")?;
/// assert_eq!(decls.vars["W"].shape.to_string(), "m×n");
/// assert!(decls.vars["K"].props.symmetric);
/// assert!(decls.fns.contains("ℓ"));
/// # Ok::<(), matcalc::parse::Error>(())
/// ```
pub fn parse_decls(src: &str) -> Result<Decls, Error> {
    prescan(src, &Limits::standard())?;
    let mut pairs = run_pest(Rule::declarations, src)?;
    let declarations = next_pair(&mut pairs, src)?;
    let mut decls = Decls::new();
    for declaration in declarations.into_inner() {
        if declaration.as_rule() == Rule::declaration {
            lower_declaration(declaration, &mut decls)?;
        }
    }
    Ok(decls)
}

/// Parses a definition `name = expr`, optionally introduced by `let`: `z₁ = W₁x + b₁`.
///
/// # Examples
/// ```
/// use matcalc::parse::{parse_let, ParseOptions};
/// let (name, expr) = parse_let("let z_1 = W_1 x + b_1", &ParseOptions::standard())?;
/// assert_eq!(name, "z₁");
/// assert_eq!(expr, matcalc::parse::parse("W₁x + b₁")?);
/// # Ok::<(), matcalc::parse::Error>(())
/// ```
pub fn parse_let(src: &str, options: &ParseOptions) -> Result<(Symbol, Expr), Error> {
    prescan(src, &options.limits)?;
    check_function_names(src)?;
    let mut pairs = run_pest(Rule::definition, src)?;
    let definition = next_pair(&mut pairs, src)?;
    let lowerer = Lowerer { options };
    let mut name = None;
    let mut body = None;
    for child in definition.into_inner() {
        match child.as_rule() {
            Rule::ident => name = Some(ident_symbol(child)),
            Rule::expr => body = Some(lowerer.expr(child, 0)?),
            _ => {}
        }
    }
    match (name, body) {
        (Some(name), Some(body)) => {
            check_depth(&body.expr, &options.limits)?;
            check_symbols(&body.expr, &options.limits)?;
            Ok((name, body.expr))
        }
        _ => Err(internal_error(src)),
    }
}

/// The length of the longest of [`ASCII_WORDS`].
const LONGEST_ASCII_WORD: usize = {
    let mut longest = 0;
    let mut index = 0;
    while index < ASCII_WORDS.len() {
        if ASCII_WORDS[index].len() > longest {
            longest = ASCII_WORDS[index].len();
        }
        index += 1;
    }
    longest
};

/// Whether the ASCII letter runs `left_run` and `right_run`, written side by side, spell
/// one of [`ASCII_WORDS`] that starts in `left_run` and reaches into `right_run` (or, if
/// `touching`, ends right at the boundary). Only the letters a word could span are
/// looked at, so the test takes constant time however long the runs (`AAA…A` in a long
/// product).
pub(crate) fn spells_word_across(left_run: &str, right_run: &str, touching: bool) -> bool {
    let left_run = &left_run[left_run.len().saturating_sub(LONGEST_ASCII_WORD)..];
    let right_run = &right_run[..right_run.len().min(LONGEST_ASCII_WORD)];
    let run = format!("{left_run}{right_run}");
    let boundary = left_run.len();
    ASCII_WORDS.iter().any(|word| {
        run.match_indices(word).any(|(start, _)| {
            let end = start + word.len();
            start < boundary && (end > boundary || (touching && end == boundary))
        })
    })
}

/// Every multi-letter ASCII word the grammar reads as one token (a function, a Greek
/// letter, a keyword). A run of juxtaposed single letters that spells one of these reads
/// as that word instead: `x` next to `i` is `xi`, the Greek ξ.
pub const ASCII_WORDS: [&str; 83] = [
    "kron",
    "vec",
    "softplus",
    "sigmoid",
    "logdet",
    "trace",
    "swish",
    "tanh",
    "sqrt",
    "step",
    "relu",
    "diag",
    "norm",
    "ones",
    "grad",
    "sum",
    "exp",
    "log",
    "det",
    "inv",
    "tr",
    "Tr",
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "pi",
    "rho",
    "sigma",
    "tau",
    "upsilon",
    "phi",
    "chi",
    "psi",
    "omega",
    "Gamma",
    "Delta",
    "Theta",
    "Lambda",
    "Xi",
    "Pi",
    "Sigma",
    "Upsilon",
    "Phi",
    "Psi",
    "Omega",
    "ell",
    "let",
    "scalar",
    "sym",
    "spd",
    "fn",
    "logsumexp",
    "softmax",
    "arcsin",
    "arccos",
    "arctan",
    "matrix",
    "vector",
    "sinh",
    "cosh",
    "asin",
    "acos",
    "atan",
    "sign",
    "sin",
    "cos",
    "tan",
    "abs",
    "lse",
    "eye",
    "int",
    "ln",
];

/// Whether two factors, rendered as `left` and `right`, may be written side by side with
/// no operator (juxtaposition) and still parse as the product `left · right`.
///
/// Unsafe are: a letter run across the boundary that spells a word of [`ASCII_WORDS`]
/// (`x` then `i`), a name then a digit (`x` then `2` reads as `x₂`), two numbers, a LaTeX
/// command then a letter (`\alpha` then `x`), and a name or Greek letter then `(` or `[`
/// (`f(x)` may be an application and `σ(z)` is always the sigmoid), and anything that
/// begins with a bar (`|A|`, `‖x‖²`), which inside bars would close them. When it returns
/// false, a printer writes `·`, `*` or `\cdot` between the factors (a space is enough
/// for the letter and digit cases, but not before `(` or a bar).
///
/// # Examples
/// ```
/// use matcalc::parse::juxtaposition_is_safe;
/// assert!(juxtaposition_is_safe("W", "x"));
/// assert!(juxtaposition_is_safe("Wᵀ", "(a + b)"));
/// assert!(!juxtaposition_is_safe("x", "i"));
/// assert!(!juxtaposition_is_safe("σ", "(z)"));
/// assert!(!juxtaposition_is_safe(r"\alpha", "x"));
/// assert!(!juxtaposition_is_safe("x", "2"));
/// ```
pub fn juxtaposition_is_safe(left: &str, right: &str) -> bool {
    let (Some(last), Some(first)) = (left.chars().last(), right.chars().next()) else {
        return true;
    };
    // `ᵀ` is a Unicode letter (a modifier letter) but ends a transpose, not a name.
    let ends_with_name = (last.is_alphabetic() && last != 'ᵀ')
        || ('₀'..='₉').contains(&last)
        || last == '′'
        || (last.is_ascii_digit() && {
            let stem = left.trim_end_matches(|c: char| c.is_ascii_digit());
            stem.ends_with(|c: char| c.is_ascii_alphabetic()) || stem.ends_with('_')
        });
    if ends_with_name && matches!(first, '(' | '[') {
        return false;
    }
    if left.ends_with("\\left") || left.ends_with('\\') {
        return false;
    }
    if first.is_ascii_digit() && (last.is_ascii_digit() || ends_with_name || last == '.') {
        return false;
    }
    if first == '\'' || first == '_' || first == '^' {
        return false;
    }
    // Inside `|…|` and `‖…‖` juxtaposition never starts with a bar (see the grammar).
    let bar_starts = [
        "|", "‖", "\\|", "\\lVert", "\\Vert", "\\lvert", "\\vert", "\\left|",
    ];
    if bar_starts.iter().any(|bar| right.starts_with(bar)) || right.starts_with("\\left\\") {
        return false;
    }
    if last.is_ascii_alphabetic() && first.is_ascii_alphabetic() {
        let left_run_start = left
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphabetic())
            .last()
            .map_or(left.len(), |(index, _)| index);
        if left[..left_run_start].ends_with('\\') {
            return false;
        }
        let left_run = &left[left_run_start..];
        let right_run_end = right
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(right.len());
        if spells_word_across(left_run, &right[..right_run_end], true) {
            return false;
        }
    }
    true
}

/// The canonical names of the named functions: the one list behind "did you mean"
/// suggestions, the REPL's Tab completion and, less `NOT_LATEX_COMMANDS`, the LaTeX
/// commands the grammar knows as functions (`\sin`, `\softmax`, `\logdet`).
pub const FUNCTION_NAMES: [&str; 38] = [
    "kron",
    "vec",
    "sigma",
    "exp",
    "log",
    "tanh",
    "swish",
    "relu",
    "softplus",
    "sqrt",
    "step",
    "tr",
    "trace",
    "det",
    "logdet",
    "diag",
    "sum",
    "inv",
    "norm",
    "sigmoid",
    "norm1",
    "norm2",
    "sin",
    "cos",
    "tan",
    "arcsin",
    "arccos",
    "arctan",
    "sinh",
    "cosh",
    "abs",
    "sign",
    "softmax",
    "logsumexp",
    "lse",
    "vector",
    "matrix",
    "eye",
];

/// The closest candidate to `word` by edit distance, if it is close enough to be a likely
/// misspelling: at most two edits, and at most a third of the word's length (at least one).
///
/// # Examples
/// ```
/// use matcalc::parse::did_you_mean;
/// assert_eq!(did_you_mean("sigmod", &["sigma", "tanh"]), Some("sigma"));
/// assert_eq!(did_you_mean("banana", &["sigma", "tanh"]), None);
/// ```
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let allowed = (word.chars().count() / 3).clamp(1, 2);
    candidates
        .iter()
        .map(|candidate| (edit_distance(word, candidate), *candidate))
        .filter(|(distance, _)| *distance <= allowed)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// The Levenshtein distance, counting an adjacent swap as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let substitution = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + substitution);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

/// ASCII spellings of the Greek letters and their canonical Unicode letters. The same
/// words after a backslash are the LaTeX spellings (plus a few `var` variants).
pub const GREEK_LETTERS: [(&str, &str); 37] = [
    ("alpha", "α"),
    ("beta", "β"),
    ("gamma", "γ"),
    ("delta", "δ"),
    ("epsilon", "ε"),
    ("zeta", "ζ"),
    ("eta", "η"),
    ("theta", "θ"),
    ("iota", "ι"),
    ("kappa", "κ"),
    ("lambda", "λ"),
    ("mu", "μ"),
    ("nu", "ν"),
    ("xi", "ξ"),
    ("pi", "π"),
    ("rho", "ρ"),
    ("sigma", "σ"),
    ("tau", "τ"),
    ("upsilon", "υ"),
    ("phi", "φ"),
    ("chi", "χ"),
    ("psi", "ψ"),
    ("omega", "ω"),
    ("Gamma", "Γ"),
    ("Delta", "Δ"),
    ("Theta", "Θ"),
    ("Lambda", "Λ"),
    ("Xi", "Ξ"),
    ("Pi", "Π"),
    ("Sigma", "Σ"),
    ("Upsilon", "Υ"),
    ("Phi", "Φ"),
    ("Psi", "Ψ"),
    ("Omega", "Ω"),
    ("ell", "ℓ"),
    ("varepsilon", "ε"),
    ("vartheta", "θ"),
];

/// The LaTeX-only variants of Greek letters and their canonical letters.
const GREEK_VARIANTS: [(&str, &str); 4] = [
    ("varphi", "φ"),
    ("varrho", "ρ"),
    ("varpi", "π"),
    ("varsigma", "σ"),
];

fn greek_letter(name: &str) -> Option<&'static str> {
    GREEK_LETTERS
        .iter()
        .chain(GREEK_VARIANTS.iter())
        .find(|(ascii, _)| *ascii == name)
        .map(|(_, unicode)| *unicode)
}

fn pratt() -> &'static PrattParser<Rule> {
    static PRATT: OnceLock<PrattParser<Rule>> = OnceLock::new();
    PRATT.get_or_init(|| {
        PrattParser::new()
            .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
            .op(Op::prefix(Rule::neg))
            .op(Op::infix(Rule::hadamard, Assoc::Left)
                | Op::infix(Rule::kron, Assoc::Left)
                | Op::infix(Rule::elem_div, Assoc::Left))
            .op(Op::infix(Rule::mul, Assoc::Left)
                | Op::infix(Rule::div, Assoc::Left)
                | Op::infix(Rule::juxt, Assoc::Left)
                | Op::infix(Rule::delimited_juxt, Assoc::Left))
            .op(Op::postfix(Rule::transpose)
                | Op::postfix(Rule::inverse_transpose)
                | Op::postfix(Rule::power)
                | Op::postfix(Rule::elem_power)
                | Op::postfix(Rule::rational_power)
                | Op::postfix(Rule::symbolic_power)
                | Op::postfix(Rule::real_power))
    })
}

/// Runs pest on `src`, once the process-wide call limit is in place.
fn run_pest(rule: Rule, src: &str) -> Result<Pairs<'_, Rule>, Error> {
    static CALL_LIMIT_SET: Once = Once::new();
    CALL_LIMIT_SET.call_once(|| pest::set_call_limit(NonZeroUsize::new(CALL_LIMIT)));
    MatcalcGrammar::parse(rule, src).map_err(|error| syntax_error(src, error))
}

fn next_pair<'i>(pairs: &mut Pairs<'i, Rule>, src: &str) -> Result<Pair<'i, Rule>, Error> {
    pairs.next().ok_or_else(|| internal_error(src))
}

fn first_child<'i>(pair: Pair<'i, Rule>, rule: Rule, src: &str) -> Result<Pair<'i, Rule>, Error> {
    pair.into_inner()
        .find(|child| child.as_rule() == rule)
        .ok_or_else(|| internal_error(src))
}

/// A grammar/lowering mismatch; reported as a syntax error rather than a panic.
fn internal_error(src: &str) -> Error {
    Error::Syntax {
        message: "could not read this expression".to_string(),
        span: Span::new(0, src.len()),
        hints: vec![],
    }
}

fn span_of(pair: &Pair<'_, Rule>) -> Span {
    let span = pair.as_span();
    Span::new(span.start(), span.end())
}

/// The flat chains whose length is no nesting: sums and differences, products,
/// Hadamard and Kronecker products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chain {
    Sum,
    Product,
    Hadamard,
    Kronecker,
}

/// The flat chain a node of `kind` continues, if any.
fn chain(kind: &ExprKind) -> Option<Chain> {
    match kind {
        ExprKind::Add(..) | ExprKind::Sub(..) => Some(Chain::Sum),
        ExprKind::Mul(..) => Some(Chain::Product),
        ExprKind::Hadamard(..) => Some(Chain::Hadamard),
        ExprKind::Kron(..) => Some(Chain::Kronecker),
        _ => None,
    }
}

/// The nesting depth of `expr` as [`Limits::max_depth`] counts it (a leaf has depth 1,
/// a flat chain of any length adds one level), without recursion.
pub fn nesting_depth(expr: &Expr) -> usize {
    let mut depths: HashMap<*const Expr, usize> = HashMap::new();
    for node in expr.children_first() {
        let own = chain(&node.kind);
        let depth = node
            .children()
            .into_iter()
            .map(|child| {
                let depth = depths[&Rc::as_ptr(child)];
                match own {
                    Some(own) if chain(&child.kind) == Some(own) => depth - 1,
                    _ => depth,
                }
            })
            .max()
            .unwrap_or(0)
            + 1;
        depths.insert(node as *const Expr, depth);
    }
    depths[&(expr as *const Expr)]
}

/// The deepest tree any limits accept: a flat chain's length adds no nesting, but every
/// stage walks the tree (and a derivative is deeper than its expression), so its length,
/// like bracket nesting, is bounded to protect the stack: the second differential of a
/// product of 4 000 factors, checked, fits in the 8 MB of a main thread (release build;
/// the command line runs on a larger stack, `src/main.rs`).
pub const MAX_TREE_DEPTH: usize = 4_000;

fn check_depth(expr: &Expr, limits: &Limits) -> Result<(), Error> {
    let span = expr.span.unwrap_or_default();
    if nesting_depth(expr) > limits.max_depth {
        return Err(Error::TreeTooDeep {
            span,
            max: limits.max_depth,
        });
    }
    if expr.depth() > MAX_TREE_DEPTH {
        return Err(Error::TooComplex { span });
    }
    Ok(())
}

fn check_symbols(expr: &Expr, limits: &Limits) -> Result<(), Error> {
    let count = expr.free_vars().len();
    if count > limits.max_symbols {
        return Err(Error::TooManySymbols {
            count,
            span: expr.span.unwrap_or_default(),
            max: limits.max_symbols,
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Pre-scan: cheap checks before pest runs, so that neither pest nor the lowering recurses
// deeper than it safely can.
// ---------------------------------------------------------------------------------------

fn prescan(src: &str, limits: &Limits) -> Result<(), Error> {
    if src.len() > limits.max_input_len {
        return Err(Error::InputTooLong {
            len: src.len(),
            max: limits.max_input_len,
        });
    }
    let mut depth = 0usize;
    let mut run = 0usize;
    let mut chars = src.char_indices().peekable();
    while let Some((offset, c)) = chars.next() {
        let mut end = offset + c.len_utf8();
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(Error::NestingTooDeep {
                        span: Span::new(offset, end),
                        max: MAX_NESTING,
                    });
                }
            }
            ')' | ']' | '}' => {
                depth = depth.saturating_sub(1);
                run = 0;
            }
            '\\' => {
                // A command word counts towards a run of operators unless it names a letter.
                let mut word = String::new();
                while let Some(&(next_offset, next)) = chars.peek() {
                    if next.is_ascii_alphabetic() {
                        word.push(next);
                        end = next_offset + next.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                if greek_letter(&word).is_some() {
                    run = 0;
                } else if !word.is_empty() {
                    run += 1;
                }
            }
            c if is_run_operator(c) => run += 1,
            c if c.is_ascii_alphabetic() => {
                // A function word such as `det` or `log` takes a bare argument, so a chain of
                // them nests like a chain of prefix operators.
                let mut word = String::from(c);
                while let Some(&(next_offset, next)) = chars.peek() {
                    if next.is_ascii_alphabetic() {
                        word.push(next);
                        end = next_offset + next.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                if FUNCTION_NAMES.contains(&word.as_str()) || word == "sigmoid" {
                    run += 1;
                } else {
                    run = 0;
                }
            }
            c if c.is_whitespace() || matches!(c, '*' | '/' | '_' | ',' | '.') => {}
            _ => run = 0,
        }
        if run > MAX_OPERATOR_RUN {
            return Err(Error::OperatorRunTooLong {
                span: Span::new(offset, end),
                max: MAX_OPERATOR_RUN,
            });
        }
    }
    Ok(())
}

fn is_run_operator(c: char) -> bool {
    matches!(
        c,
        '-' | '−'
            | '+'
            | '|'
            | '‖'
            | 'ᵀ'
            | '\''
            | '⁻'
            | '^'
            | '∇'
            | '√'
            | '⊤'
            | '′'
            | '¹'
            | '²'
            | '³'
            | '⁰'
            | '⁴'
            | '⁵'
            | '⁶'
            | '⁷'
            | '⁸'
            | '⁹'
    )
}

/// Finds a word followed by `(` that is no known function (`foo(x)`), or ends with a near
/// miss of one (`sigmod(z)`, `xdaig(v)`): without this check it would silently parse as a
/// product of single letters, s·i·g·m·o·d·(z). See [`unknown_function`]. Also refused
/// here, each in words: the names other languages give functions matcalc spells
/// otherwise or lacks (`log10`, `asinh`, see [`FOREIGN_FUNCTIONS`]), which would read as
/// a known function of a number (`log(10)·θ`) or after a letter (`a·sinh(θ)`); a
/// function's name with digits (`cos2(θ)`, `norm3(x)`) or capitals (`Exp(θ)`); a name in
/// `\operatorname{…}` that is no function; a power written on a function's name
/// (`sin²(θ)`, `\sin^2 θ`); and `eye(n)`, whose argument would read as a factor.
fn check_function_names(src: &str) -> Result<(), Error> {
    let bytes = src.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        if !bytes[index].is_ascii_alphabetic() {
            index += 1;
            continue;
        }
        let start = index;
        while index < bytes.len() && bytes[index].is_ascii_alphabetic() {
            index += 1;
        }
        let word = &src[start..index];
        let mut digits_end = index;
        while digits_end < bytes.len() && bytes[digits_end].is_ascii_digit() {
            digits_end += 1;
        }
        let after_command = start > 0 && bytes[start - 1] == b'\\';
        // Inside `\operatorname{…}` and its kin a function name may be capitalised.
        let wrapped = start > 0 && bytes[start - 1] == b'{';
        let mut rest = src[index..].trim_start();
        if wrapped {
            rest = rest.strip_prefix('}').map_or(rest, str::trim_start);
        }
        let called = rest.starts_with('(') || rest.starts_with("\\left(");
        if !after_command && !wrapped {
            let is_call = |from: usize| {
                let after = src[from..].trim_start();
                after.starts_with('(') || after.starts_with("\\left(")
            };
            let mut run_end = digits_end;
            while run_end < bytes.len() && bytes[run_end].is_ascii_alphanumeric() {
                run_end += 1;
            }
            if is_call(run_end) {
                if let Some(error) = foreign_function(&src[start..run_end], start) {
                    return Err(error);
                }
            }
            if digits_end > index && is_call(digits_end) {
                if let Some(error) = function_with_digits(src, start, index, digits_end) {
                    return Err(error);
                }
            }
        }
        // One positive power on a name is the power of the call's value
        // (sin²θ); the grammar reads it, anything else on the name is refused.
        let readable_power =
            positive_power(rest) && !starts_with_power(rest[power_length(rest)..].trim_start());
        if !wrapped && is_plain_function_name(word) && starts_with_power(rest) && !readable_power {
            return Err(Error::Unsupported {
                message: format!("unsupported: a power written on the function name `{word}`"),
                span: Span::new(start, src.len() - rest.len() + power_length(rest)),
                hint: Some(format!(
                    "write the power after the argument: {word}(…)² for the square{}",
                    if matches!(word, "sin" | "cos" | "tan") {
                        format!(", arc{word}(…) for the inverse function")
                    } else {
                        String::new()
                    }
                )),
            });
        }
        if word == "eye" && !after_command && rest.starts_with('(') {
            return Err(Error::Syntax {
                message: "`eye` takes no argument".to_string(),
                span: Span::new(start, index),
                hints: vec![
                    "eye is the identity I, of the size its place in the expression gives it: write eye or I".to_string(),
                ],
            });
        }
        if after_command || !called {
            continue;
        }
        if wrapped {
            let lower = word.to_ascii_lowercase();
            if is_function_or_greek(&lower) || !follows_function_wrapper(&src[..start - 1]) {
                continue;
            }
            if let Some(error) = foreign_function(&lower, start) {
                return Err(error);
            }
            return Err(Error::UnknownFunction {
                name: word.to_string(),
                span: Span::new(start, index),
                suggestion: did_you_mean(&lower, &FUNCTION_NAMES).map(str::to_string),
                hint: None,
            });
        }
        if capitalised_function(word) {
            let lower = word.to_ascii_lowercase();
            return Err(Error::UnknownFunction {
                name: word.to_string(),
                span: Span::new(start, index),
                suggestion: Some(canonical_function_name(&lower).to_string()),
                hint: None,
            });
        }
        if let Some((offset, suggestion)) = unknown_function(word) {
            return Err(Error::UnknownFunction {
                name: word[offset..].to_string(),
                span: Span::new(start + offset, index),
                suggestion: suggestion.map(str::to_string),
                hint: None,
            });
        }
    }
    Ok(())
}

/// Whether a run of ASCII letters written directly before `(` is refused as a call of a
/// function matcalc does not know: [`unknown_function`], an ending in
/// [`FOREIGN_FUNCTIONS`] (`xasinh`), or a known name capitalised (`Exp`). A printer must
/// not write such a run before `(`: `a·sinh(θ)` is not `asinh(θ)`.
///
/// # Examples
/// ```
/// use matcalc::parse::refused_call;
/// assert!(refused_call("asinh"));
/// assert!(refused_call("Exp"));
/// assert!(!refused_call("Asin"));
/// assert!(!refused_call("xexp"));
/// ```
pub fn refused_call(run: &str) -> bool {
    unknown_function(run).is_some()
        || foreign_function(run, 0).is_some()
        || capitalised_function(run)
}

/// Whether `word` is a function's name with capitals (`Exp`, `LOG`), which a run of
/// letters would otherwise read as a product (E·x·p). `Tr` is the grammar's trace, a
/// Greek name (`Sigma`) is the letter, and a run that ends with a function's name is a
/// product ending in a call (`Asin(x)` is A·sin(x)).
fn capitalised_function(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    lower != word
        && word != "Tr"
        && greek_letter(word).is_none()
        && is_plain_function_name(&lower)
        && !ends_with_known_word(word)
}

/// The names other languages (NumPy, C, MATLAB, Julia) give functions that matcalc
/// spells otherwise or does not have, each with how to write it in matcalc. Written
/// before `(`, each is refused with that hint rather than read as what its letters
/// spell: `log10(θ)` would be log(10)·θ and `asinh(θ)` a·sinh(θ).
pub const FOREIGN_FUNCTIONS: [(&str, &str); 14] = [
    ("arcsinh", "asinh(t) = log(t + sqrt(t^{∘2} + 1))"),
    ("arccosh", "acosh(t) = log(t + sqrt(t^{∘2} − 1)), for t > 1"),
    (
        "arctanh",
        "atanh(t) = ½ log((1 + t) ⊘ (1 − t)), for |t| < 1",
    ),
    ("asinh", "asinh(t) = log(t + sqrt(t^{∘2} + 1))"),
    ("acosh", "acosh(t) = log(t + sqrt(t^{∘2} − 1)), for t > 1"),
    ("atanh", "atanh(t) = ½ log((1 + t) ⊘ (1 − t)), for |t| < 1"),
    ("log10", "log10(t) = log(t)/log(10)"),
    ("log2", "log2(t) = log(t)/log(2)"),
    ("log1p", "log1p(t) = log(1 + t)"),
    ("expm1", "expm1(t) = exp(t) − 1"),
    ("exp2", "exp2(t) = exp(log(2)t)"),
    ("sec", "sec(t) = 1 ⊘ cos(t)"),
    ("csc", "csc(t) = 1 ⊘ sin(t)"),
    ("cot", "cot(t) = cos(t) ⊘ sin(t)"),
];

/// The error for a run of letters and digits written before `(` that is, or ends with,
/// one of [`FOREIGN_FUNCTIONS`] (`log10`, `xasinh`), the run starting at `start`.
fn foreign_function(run: &str, start: usize) -> Option<Error> {
    FOREIGN_FUNCTIONS
        .iter()
        .filter(|(name, _)| run.ends_with(name))
        .max_by_key(|(name, _)| name.len())
        .map(|(name, how)| {
            let offset = run.len() - name.len();
            Error::UnknownFunction {
                name: name.to_string(),
                span: Span::new(start + offset, start + run.len()),
                suggestion: None,
                hint: Some(format!(
                    "matcalc has no `{name}`; write it with its functions: {how}"
                )),
            }
        })
}

/// The error for a function's name followed by digits and `(` (`cos2(θ)`, `norm3(x)`,
/// `xlog10(y)`), which would otherwise read as the function of the number times the
/// argument; `norm1` and `norm2` are names, and a Greek name with digits (`alpha2`) is a
/// subscripted letter. The letters are `src[start..letters_end]`, the digits follow.
fn function_with_digits(
    src: &str,
    start: usize,
    letters_end: usize,
    digits_end: usize,
) -> Option<Error> {
    let letters = &src[start..letters_end];
    let run = &src[start..digits_end];
    if FUNCTION_NAMES.contains(&run) || greek_letter(letters).is_some() {
        return None;
    }
    let offset = (0..letters.len()).find(|&offset| is_plain_function_name(&letters[offset..]))?;
    let name = &letters[offset..];
    let hint = if name == "norm" {
        let p = &src[letters_end..digits_end];
        format!(
            "matcalc knows norm1 and norm2; for the {p}-norm write sum(abs(x)^{{∘{p}}})^{{1/{p}}}"
        )
    } else {
        format!("the argument of {name} goes in parentheses right after its name: {name}(…)")
    };
    Some(Error::UnknownFunction {
        name: run[offset..].to_string(),
        span: Span::new(start + offset, digits_end),
        suggestion: None,
        hint: Some(hint),
    })
}

/// Whether `name` is a function's name as the grammar reads it bare before an argument:
/// one of [`FUNCTION_NAMES`] or an alias (`asin`, `ln`), but no Greek letter (`sigma` is
/// σ) and not `eye`, which takes no argument.
fn is_plain_function_name(name: &str) -> bool {
    (FUNCTION_NAMES.contains(&name) || FUNCTION_ALIASES.contains(&name))
        && greek_letter(name).is_none()
        && name != "eye"
}

/// Other spellings the grammar reads as functions of [`FUNCTION_NAMES`]: `asin` is arcsin
/// and `ln` is log.
const FUNCTION_ALIASES: [&str; 4] = ["asin", "acos", "atan", "ln"];

/// The canonical name of a function's name or alias: `ln` → `log`, `asin` → `arcsin`.
fn canonical_function_name(name: &str) -> &str {
    match name {
        "ln" => "log",
        "asin" => "arcsin",
        "acos" => "arccos",
        "atan" => "arctan",
        other => other,
    }
}

/// Whether `text` starts with a power: `^`, or a superscript digit or minus.
fn starts_with_power(text: &str) -> bool {
    text.starts_with(['^', '⁻', '¹', '²', '³', '⁰', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'])
}

/// Whether `text` starts with a positive integer power, `^2`, `^{3}`, `²`: on a function's
/// name it is the power of the value (`\sin^2 θ` = sin(θ)²); `sin⁻¹` is refused, as people
/// read it as arcsin and as 1/sin.
fn positive_power(text: &str) -> bool {
    let digits = match text.strip_prefix('^') {
        Some(rest) => rest.strip_prefix(['{', '(']).unwrap_or(rest).trim_start(),
        None => return text.starts_with(['¹', '²', '³', '⁰', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹']),
    };
    digits.starts_with(|c: char| c.is_ascii_digit())
}

/// The byte length of the power at the start of `text`: `^2`, `^{-1}`, `²`, `⁻¹`.
fn power_length(text: &str) -> usize {
    if let Some(rest) = text.strip_prefix('^') {
        let body = if rest.starts_with('{') {
            rest.find('}').map_or(rest.len(), |end| end + 1)
        } else {
            rest.chars().next().map_or(0, char::len_utf8)
        };
        return 1 + body;
    }
    text.chars()
        .take_while(|c| starts_with_power(&c.to_string()))
        .map(char::len_utf8)
        .sum()
}

/// Whether `before` (the source up to a `{`) ends with a command that typesets an
/// operator's name: `\operatorname`, `\mathrm`, `\text`, …
fn follows_function_wrapper(before: &str) -> bool {
    [
        "\\operatorname",
        "\\mathrm",
        "\\textrm",
        "\\text",
        "\\mathit",
        "\\mathsf",
    ]
    .iter()
    .any(|command| before.trim_end().ends_with(command))
}

/// Whether `name` is a function or a Greek letter spelled out: `exp`, `sigmoid`, `alpha`.
fn is_function_or_greek(name: &str) -> bool {
    FUNCTION_NAMES.contains(&name)
        || FUNCTION_ALIASES.contains(&name)
        || name == "sigmoid"
        || greek_letter(name).is_some()
}

/// The longest function name, `logsumexp`, plus the most edits [`did_you_mean`] allows.
const LONGEST_NEAR_MISS: usize = 9 + 2;

/// Whether a run of ASCII letters written directly before `(` is read as a call of an
/// unknown function, and if so where the name starts in `word` and which known function
/// it resembles, if any (SPEC §2: `sin(x)` is never s·i·n·x).
///
/// That is a run ending with a near miss of a function name ([`misspelt_function`]:
/// `sigmod` → (0, `sigmoid`), `xdaig` → (1, `diag`)), or a run of two or more lower-case
/// letters that is no known function (`foo` → (0, none)). A run that is, ends with or
/// starts with a function or Greek name is a product (`xexp(y)`, `alphax(y)`), and so is
/// one with capitals (`Wx(y)`, a matrix times a vector).
///
/// # Examples
/// ```
/// use matcalc::parse::unknown_function;
/// assert_eq!(unknown_function("sigmod"), Some((0, Some("sigmoid"))));
/// assert_eq!(unknown_function("sinn"), Some((0, Some("sin"))));
/// assert_eq!(unknown_function("foo"), Some((0, None)));
/// assert_eq!(unknown_function("xexp"), None);
/// assert_eq!(unknown_function("Wx"), None);
/// ```
pub fn unknown_function(word: &str) -> Option<(usize, Option<&'static str>)> {
    if let Some((offset, name)) = misspelt_function(word) {
        return Some((offset, Some(name)));
    }
    let starts_with_greek = GREEK_LETTERS
        .iter()
        .any(|(ascii, _)| word.len() > ascii.len() && word.starts_with(ascii));
    let unknown = word.len() >= 2
        && word.bytes().all(|byte| byte.is_ascii_lowercase())
        && !is_function_or_greek(word)
        && !ends_with_known_word(word)
        && !starts_with_greek;
    unknown.then_some((0, None))
}

/// Whether a run of ASCII letters written directly before `(` ends with a misspelt
/// function name, and if so where that name starts in `word` and which function it
/// resembles: `sigmod` → (0, `sigmoid`), `xdaig` → (1, `diag`).
///
/// The parser rejects such a run with "unknown function"; a printer must not write one.
/// A run that is, or ends with, a function or Greek name is a product that ends in a call
/// (`xexp(y)`, `αtr(A)` → `alphatr(A)`), and names shorter than four letters are never
/// near misses (`abc(x)` is unknown, with no suggestion; see [`unknown_function`]). Among
/// the suspect endings the closest match wins, the longest on a tie.
///
/// # Examples
/// ```
/// use matcalc::parse::misspelt_function;
/// assert_eq!(misspelt_function("sigmod"), Some((0, "sigmoid")));
/// assert_eq!(misspelt_function("dletiag"), Some((3, "diag")));
/// assert_eq!(misspelt_function("ReLU"), Some((0, "relu")));
/// assert_eq!(misspelt_function("xdiag"), None);
/// assert_eq!(misspelt_function("abc"), None);
/// ```
pub fn misspelt_function(word: &str) -> Option<(usize, &'static str)> {
    if !word.bytes().all(|byte| byte.is_ascii_alphabetic())
        || is_function_or_greek(word)
        || ends_with_known_word(word)
    {
        return None;
    }
    let mut best: Option<(usize, usize, &'static str)> = None;
    for offset in word.len().saturating_sub(LONGEST_NEAR_MISS)..word.len().saturating_sub(3) {
        let ending = word[offset..].to_ascii_lowercase();
        let closest = if ending == "sigmoid" {
            Some((0, "sigmoid"))
        } else {
            did_you_mean(&ending, &FUNCTION_NAMES).map(|name| (edit_distance(&ending, name), name))
        };
        if let Some((distance, name)) = closest {
            if best.is_none_or(|(best_distance, _, _)| distance < best_distance) {
                best = Some((distance, offset, name));
            }
        }
    }
    best.map(|(_, offset, name)| (offset, name))
}

/// Whether the word ends with a function or Greek name, as `xexp` (x·exp) does.
fn ends_with_known_word(word: &str) -> bool {
    FUNCTION_NAMES
        .iter()
        .copied()
        .chain(GREEK_LETTERS.iter().map(|(ascii, _)| *ascii))
        .any(|known| word.len() > known.len() && word.ends_with(known))
}

// ---------------------------------------------------------------------------------------
// pest errors to human messages
// ---------------------------------------------------------------------------------------

/// What each rule means to a person, for "expected …" messages.
fn describe(rule: Rule) -> Option<&'static str> {
    use Rule::*;
    Some(match rule {
        number
        | vulgar_fraction
        | frac
        | grad
        | ones
        | norm
        | logdet
        | det_bars
        | sigma_call
        | function_call
        | styled_ident
        | styled
        | paren_group
        | brace_group
        | ident
        | neg
        | bare_argument
        | frac_argument
        | expr
        | delimited_expr
        | frac_digit
        | greek_command
        | greek_word
        | greek_char
        | latin_letter
        | function_word
        | function_word_any_case
        | function_name
        | sigma_name
        | log_name
        | det_name
        | logdet_name
        | norm_word
        | gradient_sign
        | style_command
        | exp_e
        | eye
        | exponent_number
        | frac_command => "a variable, a number or '('",
        elem_div => "an operator",
        elem_power | rational_power | symbolic_power | real_power | real_exponent_letter
        | rational_exponent | bare_exponent | decimal_exponent | vulgar_exponent
        | exponent_symbol | exponent_offset | superscript_symbol | superscript_offset
        | exponent_digits | exponent_digit => "an exponent such as ^T, ^2 or ^{-1}",
        norm_subscript | subscript_digits | subscript_word => "a norm subscript such as ₂ or _F",
        integer_type => "a shape such as `m×n`, `n` or `scalar`",
        add | sub | mul | div | hadamard | juxt | delimited_juxt => "an operator",
        transpose | inverse_transpose | power | caret_exponent | braced_exponent
        | superscript_exponent => "an exponent such as ^T, ^2 or ^{-1}",
        close_paren => "')'",
        close_bracket => "']'",
        close_brace => "'}'",
        norm_close => "a closing '‖'",
        det_close => "a closing '|'",
        norm_square => "'²'",
        EOI => "end of input",
        defines => "'='",
        declaration | dim | dim_number => "a declaration such as `W: m×n`",
        shape_type | scalar_type | function_type => "a shape such as `m×n`, `n` or `scalar`",
        property => "a property such as `sym`",
        decl_colon | in_keyword => "':'",
        decl_separator => "',' or ';'",
        _ => return None,
    })
}

fn syntax_error(src: &str, error: pest::error::Error<Rule>) -> Error {
    let mut position = match error.location {
        pest::error::InputLocation::Pos(position) => position,
        pest::error::InputLocation::Span((start, _)) => start,
    };
    position = position.min(src.len());
    while !src.is_char_boundary(position) {
        position -= 1;
    }
    // pest reports a failed command name just after its backslash; point at the backslash.
    if src[..position].ends_with('\\') {
        position -= 1;
    }
    let found_end = src[position..]
        .chars()
        .next()
        .map_or(position, |c| position + c.len_utf8());
    let span = Span::new(position, found_end);
    let positives = match &error.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => positives.clone(),
        pest::error::ErrorVariant::CustomError { message } => {
            if message.contains("limit") {
                return Error::TooComplex { span };
            }
            vec![]
        }
    };
    let mut expected: Vec<&str> = vec![];
    for rule in positives {
        if let Some(description) = describe(rule) {
            if !expected.contains(&description) {
                expected.push(description);
            }
        }
    }
    // After an operand every token could continue it (juxtaposition is a product), so
    // name only what matters most: a missing closing delimiter, else an operator.
    let closers: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|description| description.starts_with('\'') || description.starts_with("a closing"))
        .collect();
    if !closers.is_empty() {
        expected = closers;
    } else if expected.contains(&"an operator") {
        expected
            .retain(|description| *description == "an operator" || *description == "end of input");
    }
    let mut message = match expected.len() {
        0 => "unexpected input".to_string(),
        1 => format!("expected {}", expected[0]),
        n => format!(
            "expected {} or {}",
            expected[..n - 1].join(", "),
            expected[n - 1]
        ),
    };
    if position >= src.len() {
        message = format!("unexpected end of input: {message}");
    }
    let mut hints = vec![];
    let rest = &src[position..];
    let before = &src[..position];
    if rest.starts_with("**") || (rest.starts_with('*') && before.ends_with('*')) {
        message = "unexpected `**`".to_string();
        hints.push("did you mean ^? Powers are written x^2 or x²".to_string());
    }
    if rest.starts_with(',') {
        if let Some(name) = open_call(before).filter(|name| name.starts_with("norm")) {
            // MATLAB's and NumPy's norm(x, p): the order is in the name or the subscript.
            message = format!("{name}(…) takes one argument, not an order after a comma");
            hints.push(
                "write ‖x‖₁ or norm1(x) for the 1-norm, ‖x‖ (‖x‖₂, norm2(x)) for the 2-norm \
                 and ‖X‖_F for the Frobenius norm; other p-norms are not supported"
                    .to_string(),
            );
        }
    }
    let mut command_span = None;
    if let Some(command) = latex_command_at(rest) {
        if !is_known_command(command) {
            message = format!("unknown LaTeX command `\\{command}`");
            command_span = Some(Span::new(position, position + 1 + command.len()));
            let candidates: Vec<&str> = latex_commands()
                .chain(GREEK_LETTERS.iter().map(|(ascii, _)| *ascii))
                .collect();
            if let Some(known) = did_you_mean(command, &candidates) {
                hints.push(format!("did you mean `\\{known}`?"));
            }
        }
    }
    hints.extend(balance_hints(src));
    Error::Syntax {
        message,
        span: command_span.unwrap_or(span),
        hints,
    }
}

/// The function names the grammar does not know after a backslash: `kron(A, B)`,
/// `norm2(x)` and `eye` are written bare, and `\vec` is a style command (`\vec{x}`).
const NOT_LATEX_COMMANDS: [&str; 6] = ["kron", "vec", "norm", "norm1", "norm2", "eye"];

/// The LaTeX commands the grammar knows besides Greek letters and function names.
const TYPESETTING_COMMANDS: [&str; 56] = [
    "oslash",
    "infty",
    "prime",
    "frac",
    "dfrac",
    "tfrac",
    "left",
    "right",
    "cdot",
    "times",
    "ast",
    "odot",
    "circ",
    "top",
    "intercal",
    "mathsf",
    "mathrm",
    "mathtt",
    "text",
    "mathbf",
    "boldsymbol",
    "bm",
    "bf",
    "langle",
    "rangle",
    "mathit",
    "mathbb",
    "mathcal",
    "textbf",
    "textit",
    "textrm",
    "vec",
    "operatorname",
    "lVert",
    "rVert",
    "Vert",
    "lvert",
    "rvert",
    "vert",
    "nabla",
    "mathds",
    "bigl",
    "bigr",
    "Bigl",
    "Bigr",
    "big",
    "Big",
    "bigg",
    "Bigg",
    "quad",
    "qquad",
    "in",
    "coloneqq",
    "varphi",
    "varrho",
    "varpi",
];

/// Every LaTeX command the grammar knows but Greek letters: typesetting and functions.
fn latex_commands() -> impl Iterator<Item = &'static str> {
    TYPESETTING_COMMANDS.iter().copied().chain(
        FUNCTION_NAMES
            .iter()
            .copied()
            .filter(|name| !NOT_LATEX_COMMANDS.contains(name)),
    )
}

fn is_known_command(command: &str) -> bool {
    latex_commands().any(|known| known == command)
        || greek_letter(command).is_some()
        || command == "varsigma"
}

/// The command word at the start of `text`, if `text` starts with `\` and letters.
fn latex_command_at(text: &str) -> Option<&str> {
    let rest = text.strip_prefix('\\')?;
    let end = rest
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

/// The name of the call whose `(` is the innermost one `before` leaves open (`norm` in
/// `norm(x`), if a name is written right before it.
fn open_call(before: &str) -> Option<&str> {
    let mut depth = 0usize;
    for (at, c) in before.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' if depth > 0 => depth -= 1,
            '(' => {
                let head = &before[..at];
                let start = head
                    .rfind(|c: char| !c.is_ascii_alphanumeric())
                    .map_or(0, |i| {
                        i + head[i..].chars().next().map_or(1, char::len_utf8)
                    });
                return (start < at).then(|| &head[start..]);
            }
            _ => {}
        }
    }
    None
}

/// Hints for unbalanced brackets and norm bars anywhere in the source.
fn balance_hints(src: &str) -> Vec<String> {
    let mut hints = vec![];
    for (open, close, name) in [
        ('(', ')', "parentheses"),
        ('[', ']', "brackets"),
        ('{', '}', "braces"),
    ] {
        let opens = src.chars().filter(|&c| c == open).count();
        let closes = src.chars().filter(|&c| c == close).count();
        if opens != closes {
            hints.push(format!(
                "unbalanced {name}: {opens} '{open}' but {closes} '{close}'"
            ));
        }
    }
    let norm_bars = src.matches('‖').count() + src.matches("\\|").count();
    if norm_bars % 2 == 1 {
        hints.push("unbalanced ‖: a norm needs a closing ‖, as in ‖x‖²".to_string());
    }
    let ascii_bars = src.matches('|').count() - src.matches("\\|").count();
    if ascii_bars % 2 == 1 {
        hints.push("unbalanced |: a determinant needs a closing |, as in |A|".to_string());
    }
    hints
}

// ---------------------------------------------------------------------------------------
// Lowering pest pairs to Expr
// ---------------------------------------------------------------------------------------

/// A lowered subtree and its depth, tracked while building so that a tree deeper than
/// the limit is never built (dropping a very deep tree would itself recurse).
struct Node {
    expr: Expr,
    /// The nesting depth ([`nesting_depth`]).
    depth: usize,
    /// The tree's own depth, a chain's length included ([`MAX_TREE_DEPTH`]).
    height: usize,
}

struct Lowerer<'o> {
    options: &'o ParseOptions,
}

/// The deepest recursion of the lowering through groups and function arguments.
const MAX_LOWERING_NESTING: usize = 2 * MAX_NESTING;

impl Lowerer<'_> {
    /// A new node over children whose greatest nesting depth and height are `below`
    /// ((0, 0) for a leaf).
    fn node(&self, kind: ExprKind, span: Span, below: (usize, usize)) -> Result<Node, Error> {
        let (depth, height) = (below.0 + 1, below.1 + 1);
        if depth > self.options.limits.max_depth {
            return Err(Error::TreeTooDeep {
                span,
                max: self.options.limits.max_depth,
            });
        }
        if height > MAX_TREE_DEPTH {
            return Err(Error::TooComplex { span });
        }
        Ok(Node {
            expr: Expr::new(kind).with_span(span),
            depth,
            height,
        })
    }

    /// `base^{exponent}` as a real power, `exp(exponent·log(base))`, marked as written so
    /// that shape inference refuses it unless both are scalars (SPEC §2: a power with an
    /// exponent that is no number is of scalars only).
    pub(crate) fn real_power(&self, base: Node, exponent: Node, span: Span) -> Result<Node, Error> {
        let log = self.unary(|base| ExprKind::Func(Func::Log, base), span, base)?;
        let product = self.binary(ExprKind::Mul, exponent, log)?;
        let exp = self.unary(|inner| ExprKind::Func(Func::Exp, inner), span, product)?;
        self.unary(
            |inner| ExprKind::Written(inner, WrittenAs::RealPower),
            span,
            exp,
        )
    }

    fn unary(
        &self,
        make: impl FnOnce(Rc<Expr>) -> ExprKind,
        span: Span,
        child: Node,
    ) -> Result<Node, Error> {
        self.node(make(Rc::new(child.expr)), span, (child.depth, child.height))
    }

    /// A binary node. An operand of the same flat chain (a term of a sum, a factor of a
    /// product) adds no depth: `a + b + c` is as deep as `a + b`.
    fn binary(
        &self,
        make: impl FnOnce(Rc<Expr>, Rc<Expr>) -> ExprKind,
        lhs: Node,
        rhs: Node,
    ) -> Result<Node, Error> {
        let span = joined_span(&lhs, &rhs);
        let families = (chain(&lhs.expr.kind), chain(&rhs.expr.kind));
        let kind = make(Rc::new(lhs.expr), Rc::new(rhs.expr));
        let within = |family: Option<Chain>, depth: usize| match chain(&kind) {
            Some(own) if family == Some(own) => depth - 1,
            _ => depth,
        };
        let depth = within(families.0, lhs.depth).max(within(families.1, rhs.depth));
        self.node(kind, span, (depth, lhs.height.max(rhs.height)))
    }

    fn num(&self, value: Rational, span: Span) -> Node {
        Node {
            expr: Expr::num(value).with_span(span),
            depth: 1,
            height: 1,
        }
    }

    /// Lowers an `expr` pair: flattens style commands, merges opaque applications, then
    /// folds the flat sequence with the Pratt parser.
    fn expr(&self, pair: Pair<'_, Rule>, nesting: usize) -> Result<Node, Error> {
        self.sequence(pair.into_inner(), nesting)
    }

    fn sequence<'i>(&self, pairs: Pairs<'i, Rule>, nesting: usize) -> Result<Node, Error> {
        let mut flat: Vec<Pair<'i, Rule>> = vec![];
        self.flatten(pairs, &mut flat, nesting)?;
        let applications = self.merge_applications(&mut flat);
        check_glued_denominators(&flat)?;
        if flat.is_empty() {
            return Err(Error::Syntax {
                message: "expected a variable, a number or '('".to_string(),
                span: Span::default(),
                hints: vec![],
            });
        }
        pratt()
            .map_primary(|primary| self.primary(primary, &applications, nesting + 1))
            .map_prefix(|op, operand| {
                let operand = operand?;
                let span = span_of(&op).join(operand.expr.span.unwrap_or_default());
                self.unary(ExprKind::Neg, span, operand)
            })
            .map_postfix(|operand, op| self.postfix(operand?, op, nesting))
            .map_infix(|lhs, op, rhs| self.infix(lhs?, op, rhs?))
            .parse(flat.into_iter())
    }

    /// Splices the content of style commands (`\mathbf{Wx}`) into the surrounding
    /// sequence, so that they read exactly as if absent.
    fn flatten<'i>(
        &self,
        pairs: Pairs<'i, Rule>,
        out: &mut Vec<Pair<'i, Rule>>,
        nesting: usize,
    ) -> Result<(), Error> {
        for pair in pairs {
            match pair.as_rule() {
                Rule::styled => {
                    if nesting > MAX_LOWERING_NESTING {
                        return Err(Error::NestingTooDeep {
                            span: span_of(&pair),
                            max: MAX_NESTING,
                        });
                    }
                    for child in pair.into_inner() {
                        if is_expr(child.as_rule()) {
                            self.flatten(child.into_inner(), out, nesting + 1)?;
                        }
                    }
                }
                Rule::EOI => {}
                _ => out.push(pair),
            }
        }
        Ok(())
    }

    /// Turns `f (v)` into one application when `f` is a declared opaque function: removes
    /// the name and the juxtaposition, and remembers the group's start for `primary`.
    fn merge_applications(
        &self,
        flat: &mut Vec<Pair<'_, Rule>>,
    ) -> HashMap<usize, (Symbol, usize)> {
        let mut applications = HashMap::new();
        if self.options.fns.is_empty() {
            return applications;
        }
        let mut index = 0;
        while index + 2 < flat.len() {
            let is_call = flat[index].as_rule() == Rule::ident
                && flat[index + 1].as_rule() == Rule::juxt
                && flat[index + 2].as_rule() == Rule::paren_group;
            if is_call {
                let name = ident_symbol(flat[index].clone());
                if self.options.fns.contains(&name) {
                    let name_start = flat[index].as_span().start();
                    let group_start = flat[index + 2].as_span().start();
                    applications.insert(group_start, (name, name_start));
                    flat.drain(index..index + 2);
                    continue;
                }
            }
            index += 1;
        }
        applications
    }

    fn infix(&self, lhs: Node, op: Pair<'_, Rule>, rhs: Node) -> Result<Node, Error> {
        match op.as_rule() {
            Rule::add => self.binary(ExprKind::Add, lhs, rhs),
            Rule::sub => self.binary(ExprKind::Sub, lhs, rhs),
            Rule::hadamard => self.binary(ExprKind::Hadamard, lhs, rhs),
            Rule::kron => self.binary(ExprKind::Kron, lhs, rhs),
            Rule::elem_div => self.binary(ExprKind::ElemDiv, lhs, rhs),
            Rule::div => {
                // A quotient of two literals is one exact constant: `1/2`, `\frac{3}{4}`.
                if let (ExprKind::Num(numerator), ExprKind::Num(denominator)) =
                    (&lhs.expr.kind, &rhs.expr.kind)
                {
                    if !denominator.is_zero() {
                        return Ok(self.num(numerator / denominator, joined_span(&lhs, &rhs)));
                    }
                }
                self.binary(ExprKind::Div, lhs, rhs)
            }
            _ => self.binary(ExprKind::Mul, lhs, rhs),
        }
    }
    /// The named function `name` applied to `argument`: `tr(A)`, `vector(c)`, `sin(x)`.
    fn call(&self, name: &str, span: Span, argument: Node) -> Result<Node, Error> {
        let make: Box<dyn FnOnce(Rc<Expr>) -> ExprKind> = match name {
            "tr" | "trace" => Box::new(ExprKind::Trace),
            "det" => Box::new(ExprKind::Det),
            "logdet" => Box::new(ExprKind::LogDet),
            "diag" => Box::new(ExprKind::Diag),
            "sum" => Box::new(ExprKind::Sum),
            "inv" => Box::new(ExprKind::Inverse),
            "softmax" => Box::new(ExprKind::Softmax),
            "logsumexp" | "lse" => Box::new(ExprKind::LogSumExp),
            // matrixcalculus.org's words: vector(c) = c𝟙 and matrix(c) = c𝟙𝟙ᵀ.
            "vector" | "matrix" => {
                let ones = || Rc::new(Expr::new(ExprKind::Ones).with_span(span));
                let spread = if name == "vector" {
                    ones()
                } else {
                    let row = Rc::new(Expr::new(ExprKind::Transpose(ones())).with_span(span));
                    Rc::new(Expr::new(ExprKind::Mul(ones(), row)).with_span(span))
                };
                let product = Rc::new(
                    Expr::new(ExprKind::Mul(Rc::new(argument.expr), spread)).with_span(span),
                );
                return self.node(
                    ExprKind::Written(product, WrittenAs::Spread),
                    span,
                    (argument.depth + 2, argument.height + 2),
                );
            }
            other => {
                let function = elementwise_function(other).ok_or_else(|| unexpected(span))?;
                Box::new(move |inner| ExprKind::Func(function, inner))
            }
        };
        self.unary(make, span, argument)
    }

    fn postfix(&self, operand: Node, op: Pair<'_, Rule>, nesting: usize) -> Result<Node, Error> {
        let span = operand.expr.span.unwrap_or_default().join(span_of(&op));
        match op.as_rule() {
            Rule::transpose => match &operand.expr.kind {
                // Papers' `1^T x` is the all-ones row's 𝟙ᵀx; MATLAB's `1'*x` is 1·x. People
                // read two things, so neither is chosen (SPEC §2). Other numbers transpose
                // as the scalars they are.
                ExprKind::Num(value)
                    if num_traits::One::is_one(value) && !follows_bracket(&op) =>
                {
                    Err(Error::Syntax {
                    message: "ambiguous: is 1ᵀ the all-ones row 𝟙ᵀ or the number 1?".to_string(),
                    span,
                    hints: vec![
                        "for the all-ones row write 𝟙ᵀ (ASCII ones', LaTeX \\mathbf{1}^T); for the number, 1"
                            .to_string(),
                    ],
                })
                }
                _ => self.unary(ExprKind::Transpose, span, operand),
            },
            Rule::inverse_transpose => {
                let inverse = self.unary(ExprKind::Inverse, span, operand)?;
                self.unary(ExprKind::Transpose, span, inverse)
            }
            Rule::elem_power | Rule::rational_power => {
                let elementwise = op.as_rule() == Rule::elem_power;
                let exponent_span = span_of(&op);
                let exponent = op
                    .into_inner()
                    .next()
                    .and_then(|exponent| exact_exponent(exponent.as_str()))
                    .ok_or_else(|| Error::InvalidNumber {
                        message: "exponent out of range".to_string(),
                        span: exponent_span,
                    })?;
                let limit = Rational::from_integer(BigInt::from(self.options.limits.max_exponent));
                if num_traits::Signed::abs(&exponent) > limit
                    || exponent.denom() > &BigInt::from(1000)
                {
                    return Err(Error::ExponentTooLarge {
                        exponent: exponent.to_integer().try_into().unwrap_or(i64::MAX),
                        span: exponent_span,
                        max: self.options.limits.max_exponent,
                    });
                }
                match (
                    elementwise,
                    num_traits::ToPrimitive::to_i64(&exponent.to_integer()),
                ) {
                    // `c^{4/2}` is the integer power c².
                    (false, Some(k)) if exponent.is_integer() => {
                        self.integer_power(operand, k, span)
                    }
                    (true, _) => {
                        self.unary(|base| ExprKind::ElemPow(base, exponent), span, operand)
                    }
                    // Without `∘` it is an ordinary power: shape inference lets it through
                    // for a scalar only, never reading `A^{1/2}` as an elementwise root.
                    (false, _) => {
                        let power =
                            self.unary(|base| ExprKind::ElemPow(base, exponent), span, operand)?;
                        self.unary(
                            |inner| ExprKind::Written(inner, WrittenAs::PlainPower),
                            span,
                            power,
                        )
                    }
                }
            }
            Rule::symbolic_power => {
                let mut symbol = String::new();
                let mut offset = 0i64;
                for part in op.into_inner() {
                    let text: String = part.as_str().chars().filter(|c| *c != ' ').collect();
                    match part.as_rule() {
                        Rule::exponent_symbol => symbol = text,
                        Rule::superscript_symbol => symbol = superscript_letter(&text).to_string(),
                        _ => {
                            let magnitude = parse_exponent(text.trim_start_matches(['+', '⁺']))
                                .ok_or_else(|| Error::InvalidNumber {
                                    message: "exponent out of range".to_string(),
                                    span,
                                })?;
                            offset = magnitude;
                        }
                    }
                }
                if offset.unsigned_abs() > self.options.limits.max_exponent {
                    return Err(Error::ExponentTooLarge {
                        exponent: offset,
                        span,
                        max: self.options.limits.max_exponent,
                    });
                }
                if !self.options.integers.contains(&symbol) {
                    // Not `k: int`: the real power of scalars, `a^{b−1}` = exp((b − 1)·log(a)).
                    let letter = self.node(ExprKind::Var(symbol), span, (0, 0))?;
                    let exponent = match offset {
                        0 => letter,
                        _ => {
                            let magnitude = self
                                .num(Rational::from_integer(offset.unsigned_abs().into()), span);
                            let make = if offset > 0 {
                                ExprKind::Add
                            } else {
                                ExprKind::Sub
                            };
                            self.binary(make, letter, magnitude)?
                        }
                    };
                    return self.real_power(operand, exponent, span);
                }
                self.unary(|base| ExprKind::PowSym(base, symbol, offset), span, operand)
            }
            Rule::real_power => {
                let exponent = op.into_inner().next().ok_or_else(|| unexpected(span))?;
                let exponent = match exponent.as_rule() {
                    Rule::expr => self.expr(exponent, nesting + 1)?,
                    _ => self.primary(exponent, &HashMap::new(), nesting + 1)?,
                };
                self.real_power(operand, exponent, span)
            }
            _ => {
                let exponent_span = span_of(&op);
                let text: String = op
                    .into_inner()
                    .map(|exponent| exponent.as_str().to_string())
                    .collect();
                let exponent = parse_exponent(&text).ok_or_else(|| Error::InvalidNumber {
                    message: "exponent out of range".to_string(),
                    span: exponent_span,
                })?;
                if exponent.unsigned_abs() > self.options.limits.max_exponent {
                    return Err(Error::ExponentTooLarge {
                        exponent,
                        span: exponent_span,
                        max: self.options.limits.max_exponent,
                    });
                }
                self.integer_power(operand, exponent, span)
            }
        }
    }

    /// `‖a‖`, `‖a‖₁` and their squares.
    fn norm_node(
        &self,
        kind: NormKind,
        squared: bool,
        span: Span,
        argument: Node,
    ) -> Result<Node, Error> {
        match (kind, squared) {
            (NormKind::Two, true) => self.unary(ExprKind::NormSq, span, argument),
            (kind, false) => self.unary(|inner| ExprKind::Norm(inner, kind), span, argument),
            (NormKind::One, true) => {
                let norm =
                    self.unary(|inner| ExprKind::Norm(inner, NormKind::One), span, argument)?;
                self.unary(|inner| ExprKind::Pow(inner, 2), span, norm)
            }
        }
    }

    /// `aᵏ` for an integer k, the inverse for −1. A literal base stays a power
    /// (`10^{-3}`), so that printing and reading back keeps the tree; the simplifier folds it.
    fn integer_power(&self, operand: Node, exponent: i64, span: Span) -> Result<Node, Error> {
        if exponent == -1 {
            self.unary(ExprKind::Inverse, span, operand)
        } else {
            self.unary(|base| ExprKind::Pow(base, exponent), span, operand)
        }
    }

    fn primary(
        &self,
        pair: Pair<'_, Rule>,
        applications: &HashMap<usize, (Symbol, usize)>,
        nesting: usize,
    ) -> Result<Node, Error> {
        let span = span_of(&pair);
        if nesting > MAX_LOWERING_NESTING {
            return Err(Error::NestingTooDeep {
                span,
                max: MAX_NESTING,
            });
        }
        let rule = pair.as_rule();
        match rule {
            Rule::number => {
                let value = parse_decimal(pair.as_str()).ok_or_else(|| Error::InvalidNumber {
                    message: "not a number".to_string(),
                    span,
                })?;
                Ok(self.num(value, span))
            }
            Rule::vulgar_fraction => {
                let (numerator, denominator) = vulgar_value(pair.as_str());
                Ok(self.num(
                    Rational::new(BigInt::from(numerator), BigInt::from(denominator)),
                    span,
                ))
            }
            Rule::frac => {
                let mut parts = vec![];
                for child in pair.into_inner() {
                    if child.as_rule() == Rule::frac_argument {
                        parts.push(self.frac_argument(child, nesting)?);
                    }
                }
                let denominator = parts.pop();
                let numerator = parts.pop();
                match (numerator, denominator) {
                    (Some(numerator), Some(denominator)) => {
                        let folded = self.fold_quotient(numerator, denominator, span)?;
                        Ok(Node {
                            expr: folded.expr.with_span(span),
                            depth: folded.depth,
                            height: folded.height,
                        })
                    }
                    _ => Err(unexpected(span)),
                }
            }
            Rule::grad => {
                let mut name = None;
                let mut argument = None;
                for child in pair.into_inner() {
                    match child.as_rule() {
                        Rule::ident => name = Some(ident_symbol(child)),
                        Rule::paren_group => argument = Some(self.group(child, nesting)?),
                        _ => {}
                    }
                }
                match (name, argument) {
                    (Some(name), Some(argument)) => {
                        self.unary(|inner| ExprKind::Grad(name, inner), span, argument)
                    }
                    _ => Err(unexpected(span)),
                }
            }
            Rule::ones => self.node(ExprKind::Ones, span, (0, 0)),
            Rule::eye => self.node(ExprKind::Identity, span, (0, 0)),
            Rule::exp_e => {
                let argument = pair.into_inner().next().ok_or_else(|| unexpected(span))?;
                let argument = match argument.as_rule() {
                    Rule::expr => self.expr(argument, nesting)?,
                    Rule::exponent_number => {
                        let value =
                            parse_decimal(argument.as_str()).ok_or_else(|| unexpected(span))?;
                        self.num(value, span_of(&argument))
                    }
                    _ => self.primary(argument, &HashMap::new(), nesting)?,
                };
                self.unary(|inner| ExprKind::Func(Func::Exp, inner), span, argument)
            }
            Rule::norm => {
                let mut argument = None;
                let mut squared = false;
                let mut kind = NormKind::Two;
                // `‖X‖₂` and `‖X‖₁` of a matrix name the spectral and induced norms, so a
                // written 2 or 1 asks for a vector; `norm2`/`norm1` keep matrixcalculus.org's
                // meaning (Frobenius, entrywise) for matrices too.
                let mut vector_only = false;
                let mut argument_text = "x";
                for child in pair.into_inner() {
                    match child.as_rule() {
                        Rule::delimited_expr => {
                            argument_text = child.as_str().trim();
                            argument = Some(self.expr(child, nesting)?)
                        }
                        Rule::paren_group => {
                            argument_text = child.as_str().trim();
                            argument = Some(self.group(child, nesting)?)
                        }
                        Rule::norm_square => squared = true,
                        Rule::norm_word if child.as_str().to_lowercase().contains("norm1") => {
                            kind = NormKind::One
                        }
                        Rule::norm_subscript => {
                            let (subscript_kind, frobenius) = norm_kind(&child, argument_text)?;
                            kind = subscript_kind;
                            vector_only = !frobenius;
                        }
                        _ => {}
                    }
                }
                let argument = argument.ok_or_else(|| unexpected(span))?;
                let norm = self.norm_node(kind, squared, span, argument)?;
                if vector_only {
                    self.unary(
                        |inner| ExprKind::Written(inner, WrittenAs::VectorNorm),
                        span,
                        norm,
                    )
                } else {
                    Ok(norm)
                }
            }
            Rule::logdet => {
                let argument = self.last_argument(pair, nesting)?;
                self.unary(ExprKind::LogDet, span, argument)
            }
            Rule::det_bars => {
                let argument = self.last_argument(pair, nesting)?;
                let det = self.unary(ExprKind::Det, span, argument)?;
                self.unary(|inner| ExprKind::Written(inner, WrittenAs::Bars), span, det)
            }
            Rule::sigma_call => {
                let argument = self.last_argument(pair, nesting)?;
                self.unary(|inner| ExprKind::Func(Func::Sigma, inner), span, argument)
            }
            Rule::function_call => {
                let mut inner = pair.into_inner();
                let name = inner
                    .next()
                    .map(|name| {
                        name.into_inner().next().map_or_else(
                            || "sqrt".to_string(),
                            |word| word.as_str().to_ascii_lowercase(),
                        )
                    })
                    .unwrap_or_default();
                let mut next = inner.next();
                let power = match &next {
                    Some(pair) if pair.as_rule() == Rule::power => {
                        let power = pair.clone();
                        next = inner.next();
                        Some(power)
                    }
                    _ => None,
                };
                let argument = match next {
                    Some(argument) => self.argument(argument, nesting)?,
                    None => return Err(unexpected(span)),
                };
                if let Some(power) = power {
                    // `\sin^2 θ` is sin(θ)²: the call without the power, then the power.
                    let call = self.call(&name, span, argument)?;
                    return self.postfix(call, power, nesting);
                }
                self.call(&name, span, argument)
            }
            Rule::styled_ident | Rule::ident => {
                let has_decoration = pair.clone().into_inner().any(|child| {
                    matches!(
                        child.as_rule(),
                        Rule::subscript | Rule::styled_subscript | Rule::primes
                    )
                });
                let name = ident_symbol(pair);
                if name == "I" && !has_decoration {
                    self.node(ExprKind::Identity, span, (0, 0))
                } else {
                    self.node(ExprKind::Var(name), span, (0, 0))
                }
            }
            Rule::paren_group => {
                let inner = self.group(pair, nesting)?;
                match applications.get(&(span.start as usize)) {
                    Some((name, name_start)) => {
                        let span = Span::new(*name_start, span.end as usize);
                        self.unary(
                            |argument| ExprKind::Apply(name.clone(), argument),
                            span,
                            inner,
                        )
                    }
                    None => Ok(inner),
                }
            }
            Rule::brace_group | Rule::styled => self.group(pair, nesting),
            Rule::kron_call => {
                let mut factors = pair.into_inner().filter(|child| is_expr(child.as_rule()));
                let (Some(left), Some(right)) = (factors.next(), factors.next()) else {
                    return Err(unexpected(span));
                };
                let left = self.expr(left, nesting)?;
                let right = self.expr(right, nesting)?;
                let mut node = self.binary(ExprKind::Kron, left, right)?;
                node.expr.span = Some(span);
                Ok(node)
            }
            Rule::inner_product => {
                let mut sides = pair.into_inner().filter(|child| is_expr(child.as_rule()));
                let (Some(left), Some(right)) = (sides.next(), sides.next()) else {
                    return Err(unexpected(span));
                };
                let left = self.expr(left, nesting)?;
                let left_span = left.expr.span.unwrap_or(span);
                let left = self.unary(ExprKind::Transpose, left_span, left)?;
                let right = self.expr(right, nesting)?;
                let product = self.binary(ExprKind::Mul, left, right)?;
                self.unary(ExprKind::Trace, span, product)
            }
            Rule::vec_call => {
                let argument = self.last_argument(pair, nesting)?;
                self.unary(ExprKind::Vectorize, span, argument)
            }
            Rule::commutation => {
                let mut sizes = pair
                    .into_inner()
                    .map(|size| commutation_size(size.as_str()));
                match (sizes.next().flatten(), sizes.next().flatten()) {
                    (Some(m), Some(n)) => self.node(ExprKind::Commutation(m, n), span, (0, 0)),
                    _ => Err(Error::Syntax {
                        message: "not a size of a commutation matrix".to_string(),
                        span,
                        hints: vec!["write K₍ₘ,ₙ₎ or K_{m,n}".to_string()],
                    }),
                }
            }
            _ => Err(unexpected(span)),
        }
    }

    /// The quotient of two lowered operands, folded to one constant when both are literals.
    fn fold_quotient(&self, numerator: Node, denominator: Node, span: Span) -> Result<Node, Error> {
        if let (ExprKind::Num(top), ExprKind::Num(bottom)) =
            (&numerator.expr.kind, &denominator.expr.kind)
        {
            if !bottom.is_zero() {
                return Ok(self.num(top / bottom, span));
            }
        }
        self.binary(ExprKind::Div, numerator, denominator)
    }

    fn frac_argument(&self, pair: Pair<'_, Rule>, nesting: usize) -> Result<Node, Error> {
        let span = span_of(&pair);
        match pair.into_inner().next() {
            Some(child) => match child.as_rule() {
                Rule::expr => self.expr(child, nesting),
                Rule::frac_digit => {
                    let value = parse_decimal(child.as_str()).ok_or_else(|| unexpected(span))?;
                    Ok(self.num(value, span))
                }
                _ => self.primary(child, &HashMap::new(), nesting),
            },
            None => Err(unexpected(span)),
        }
    }

    /// The inner expression of a group, or of any pair whose content is one `expr`.
    fn group(&self, pair: Pair<'_, Rule>, nesting: usize) -> Result<Node, Error> {
        let span = span_of(&pair);
        match pair.into_inner().find(|child| is_expr(child.as_rule())) {
            Some(expr) => self.expr(expr, nesting),
            None => Err(unexpected(span)),
        }
    }

    /// A function argument: a parenthesised group or a bare operand with its postfixes.
    fn argument(&self, pair: Pair<'_, Rule>, nesting: usize) -> Result<Node, Error> {
        match pair.as_rule() {
            Rule::paren_group | Rule::det_bars => self.group(pair, nesting),
            Rule::bare_argument => self.sequence(pair.into_inner(), nesting),
            _ => Err(unexpected(span_of(&pair))),
        }
    }

    /// The argument of `log|K|`, `log det K`, `logdet(K)`, `|A|` or `σ(z)`: the last
    /// argument-like child.
    fn last_argument(&self, pair: Pair<'_, Rule>, nesting: usize) -> Result<Node, Error> {
        let span = span_of(&pair);
        let argument = pair.into_inner().filter(|child| {
            matches!(
                child.as_rule(),
                Rule::expr
                    | Rule::delimited_expr
                    | Rule::paren_group
                    | Rule::bare_argument
                    | Rule::det_bars
            )
        });
        match argument.last() {
            Some(child) if is_expr(child.as_rule()) => self.expr(child, nesting),
            Some(child) => self.argument(child, nesting),
            None => Err(unexpected(span)),
        }
    }
}

/// The size written in a commutation matrix's subscript: `ₘ` or `m`, `mn` (a product),
/// The Unicode subscript letters and the letters they stand for.
pub(crate) const SUBSCRIPT_LETTERS: &[(char, char)] = &[
    ('ₐ', 'a'),
    ('ₑ', 'e'),
    ('ₕ', 'h'),
    ('ᵢ', 'i'),
    ('ⱼ', 'j'),
    ('ₖ', 'k'),
    ('ₗ', 'l'),
    ('ₘ', 'm'),
    ('ₙ', 'n'),
    ('ₒ', 'o'),
    ('ₚ', 'p'),
    ('ᵣ', 'r'),
    ('ₛ', 's'),
    ('ₜ', 't'),
    ('ᵤ', 'u'),
    ('ᵥ', 'v'),
    ('ₓ', 'x'),
];

/// `3`, `d₁`, `n²`.
fn commutation_size(text: &str) -> Option<Dim> {
    let plain: String = text
        .chars()
        .map(|c| match c {
            '₀'..='₉' if text.chars().all(|c| ('₀'..='₉').contains(&c)) => {
                char::from_digit(c as u32 - '₀' as u32, 10).unwrap_or(c)
            }
            _ => SUBSCRIPT_LETTERS
                .iter()
                .find(|(sub, _)| *sub == c)
                .map_or(c, |(_, letter)| *letter),
        })
        .collect();
    let digits: String = plain.chars().take_while(char::is_ascii_digit).collect();
    let mut dim = if digits.is_empty() {
        Dim::Known(1)
    } else {
        Dim::Known(digits.parse().ok()?)
    };
    let mut rest = plain[digits.len()..].chars().peekable();
    while let Some(letter) = rest.next() {
        if !letter.is_ascii_alphabetic() {
            return None;
        }
        let mut name = letter.to_string();
        while let Some(&c) = rest.peek() {
            if ('₀'..='₉').contains(&c) {
                name.push(c);
                rest.next();
            } else {
                break;
            }
        }
        let mut power = String::new();
        while let Some(&c) = rest.peek() {
            match "⁰¹²³⁴⁵⁶⁷⁸⁹".chars().position(|s| s == c) {
                Some(digit) => {
                    power.push(char::from_digit(digit as u32, 10)?);
                    rest.next();
                }
                None => break,
            }
        }
        let power: u32 = if power.is_empty() {
            1
        } else {
            power.parse().ok()?
        };
        for _ in 0..power.min(16) {
            dim = dim.times(&Dim::Sym(name.as_str().into()));
        }
    }
    (dim != Dim::Known(0)).then_some(dim)
}

/// SPEC §2: a number after `/` glued to a letter (`‖x − μ‖²/2σ²`, `1/2x`) is read two ways
/// by people, so it is an error offering both readings. With a space, a bracket, a bar, a
/// norm or a function after the number (`D/2 log|K|`, `λ/2‖w‖²`, `1/2 xᵀAx`), the number
/// alone is the denominator.
fn check_glued_denominators(flat: &[Pair<'_, Rule>]) -> Result<(), Error> {
    for (index, token) in flat.iter().enumerate() {
        if token.as_rule() != Rule::div {
            continue;
        }
        let (Some(number), Some(joint), Some(factor)) = (
            flat.get(index + 1),
            flat.get(index + 2),
            flat.get(index + 3),
        ) else {
            continue;
        };
        let glued = number.as_rule() == Rule::number
            && matches!(joint.as_rule(), Rule::juxt | Rule::delimited_juxt)
            && matches!(factor.as_rule(), Rule::ident | Rule::styled_ident)
            && number.as_span().end() == factor.as_span().start();
        if !glued {
            continue;
        }
        let source = token.get_input();
        // The numerator is the product before `/`: back to the last sum, ⊙ or sign.
        let mut first = index;
        while first > 0
            && !matches!(
                flat[first - 1].as_rule(),
                Rule::add | Rule::sub | Rule::neg | Rule::hadamard | Rule::elem_div | Rule::kron
            )
        {
            first -= 1;
        }
        let mut end = factor.as_span().end();
        for next in &flat[index + 4..] {
            match next.as_rule() {
                Rule::transpose
                | Rule::inverse_transpose
                | Rule::power
                | Rule::elem_power
                | Rule::rational_power
                | Rule::symbolic_power
                | Rule::real_power => end = next.as_span().end(),
                _ => break,
            }
        }
        let numerator = source[flat[first].as_span().start()..token.as_span().start()].trim();
        let denominator = &source[number.as_span().start()..end];
        let rest = &source[factor.as_span().start()..end];
        let number = number.as_str();
        return Err(Error::Syntax {
            message: format!(
                "ambiguous: is the denominator of `/{denominator}` {number} or {denominator}?"
            ),
            span: Span::new(token.as_span().start(), end),
            hints: vec![format!(
                "write {numerator}/({denominator}) or ({numerator}/{number}){rest}"
            )],
        });
    }
    Ok(())
}

fn is_expr(rule: Rule) -> bool {
    matches!(rule, Rule::expr | Rule::delimited_expr)
}

fn joined_span(lhs: &Node, rhs: &Node) -> Span {
    let lhs = lhs.expr.span.unwrap_or_default();
    let rhs = rhs.expr.span.unwrap_or_default();
    lhs.join(rhs)
}

fn unexpected(span: Span) -> Error {
    Error::Syntax {
        message: "could not read this part of the expression".to_string(),
        span,
        hints: vec![],
    }
}

fn elementwise_function(name: &str) -> Option<Func> {
    Some(match name {
        "sigma" | "sigmoid" => Func::Sigma,
        "exp" => Func::Exp,
        "log" | "ln" => Func::Log,
        "tanh" => Func::Tanh,
        "swish" => Func::Swish,
        "relu" => Func::Relu,
        "softplus" => Func::Softplus,
        "sqrt" => Func::Sqrt,
        "step" => Func::Step,
        "sin" => Func::Sin,
        "cos" => Func::Cos,
        "tan" => Func::Tan,
        "arcsin" | "asin" => Func::Arcsin,
        "arccos" | "acos" => Func::Arccos,
        "arctan" | "atan" => Func::Arctan,
        "sinh" => Func::Sinh,
        "cosh" => Func::Cosh,
        "abs" => Func::Abs,
        "sign" => Func::Sign,
        _ => return None,
    })
}

/// The canonical Unicode name of an `ident` or `styled_ident` pair: `W_1` → `W₁`.
fn ident_symbol(pair: Pair<'_, Rule>) -> Symbol {
    let mut name = String::new();
    for child in pair.into_inner() {
        let text = child.as_str();
        match child.as_rule() {
            Rule::latin_letter => name.push_str(text),
            Rule::greek_char => name.push_str(match text {
                "ϵ" => "ε",
                "ϕ" => "φ",
                "ϑ" => "θ",
                other => other,
            }),
            Rule::greek_word => name.push_str(greek_letter(text).unwrap_or(text)),
            Rule::greek_command => {
                let word = text.trim_start_matches('\\');
                name.push_str(greek_letter(word).unwrap_or(word));
            }
            Rule::subscript | Rule::styled_subscript => {
                for c in text.chars() {
                    if let Some(digit) = c.to_digit(10) {
                        name.push(subscript_digit(digit));
                    } else if ('₀'..='₉').contains(&c) {
                        name.push(c);
                    }
                }
            }
            Rule::primes => {
                let count = text.matches('′').count()
                    + 2 * text.matches('″').count()
                    + text.matches("prime").count();
                name.extend(std::iter::repeat_n('′', count));
            }
            _ => {}
        }
    }
    name
}

fn subscript_digit(digit: u32) -> char {
    char::from_u32(0x2080 + digit).unwrap_or('₀')
}

/// The most decimal digits a power of ten in scientific notation may shift (`1e-300`).
const MAX_DECIMAL_EXPONENT: u32 = 300;

/// An exact decimal, possibly in scientific notation: `0.5` → 1/2, `1e-3` → 1/1000.
fn parse_decimal(text: &str) -> Option<Rational> {
    let (mantissa, power) = match text.find(['e', 'E']) {
        Some(index) => {
            let power = text[index + 1..].replace('−', "-");
            let power: i64 = power.trim_start_matches('+').parse().ok()?;
            (&text[..index], power)
        }
        None => (text, 0),
    };
    if power.unsigned_abs() > u64::from(MAX_DECIMAL_EXPONENT) {
        return None;
    }
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{whole}{fraction}");
    let numerator = BigInt::parse_bytes(digits.as_bytes(), 10)?;
    let denominator = num_traits::pow(BigInt::from(10), fraction.len());
    let scale = Rational::from_integer(num_traits::pow(
        BigInt::from(10),
        power.unsigned_abs() as usize,
    ));
    let value = Rational::new(numerator, denominator);
    Some(if power < 0 {
        value / scale
    } else {
        value * scale
    })
}

/// An exact exponent from its text: `3`, `−1`, `1/3`, `0.5`, `\frac{1}{2}`, `-\tfrac12`.
fn exact_exponent(text: &str) -> Option<Rational> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let (negative, rest) = match compact.strip_prefix(['-', '−']) {
        Some(rest) => (true, rest),
        None => (false, compact.as_str()),
    };
    // The grammar admits a single vulgar fraction (`½`) as an exponent, and no other
    // non-ASCII character.
    let vulgar = rest.chars().count() == 1 && !rest.is_ascii();
    let value = if vulgar {
        let (numerator, denominator) = vulgar_value(rest);
        Rational::new(BigInt::from(numerator), BigInt::from(denominator))
    } else if let Some(fraction) = ["\\frac", "\\dfrac", "\\tfrac"]
        .iter()
        .find_map(|command| rest.strip_prefix(command))
    {
        let digits: Vec<&str> = if fraction.starts_with('{') {
            fraction
                .split(['{', '}'])
                .filter(|part| !part.is_empty())
                .collect()
        } else {
            let (top, bottom) = fraction.split_at(fraction.len().min(1));
            vec![top, bottom]
        };
        match digits.as_slice() {
            [top, bottom] => {
                let bottom = BigInt::parse_bytes(bottom.as_bytes(), 10)?;
                if bottom.is_zero() {
                    return None;
                }
                Rational::new(BigInt::parse_bytes(top.as_bytes(), 10)?, bottom)
            }
            _ => return None,
        }
    } else {
        match rest.split_once('/') {
            Some((top, bottom)) => {
                let bottom = parse_decimal(bottom)?;
                if bottom.is_zero() {
                    return None;
                }
                parse_decimal(top)? / bottom
            }
            None => parse_decimal(rest)?,
        }
    };
    Some(if negative { -value } else { value })
}

/// The letter a superscript letter stands for: `ᵏ` → `k`.
fn superscript_letter(text: &str) -> &'static str {
    match text {
        "ᵏ" => "k",
        "ⁿ" => "n",
        "ᵐ" => "m",
        "ᵖ" => "p",
        "ⁱ" => "i",
        "ʲ" => "j",
        "ˡ" => "l",
        _ => "r",
    }
}

/// The norm a subscript names, and whether it is the Frobenius subscript: `₂`, `_2` are
/// ‖·‖₂ and `_F`, `_{\mathrm{F}}` the Frobenius norm (both [`NormKind::Two`]), `₁` and `_1`
/// are ‖·‖₁; any other subscript is unsupported, with a clear error whose hint offers
/// what matcalc can differentiate instead (`argument` is the norm's argument as written).
fn norm_kind(subscript: &Pair<'_, Rule>, argument: &str) -> Result<(NormKind, bool), Error> {
    let text = subscript.as_str();
    let inner: String = text
        .trim_start_matches('_')
        .replace("\\mathrm", "")
        .replace("\\text", "")
        .replace("\\mathsf", "")
        .replace("\\mathit", "")
        .replace("\\infty", "∞")
        .chars()
        .filter(|c| !matches!(c, '{' | '}' | ' '))
        .map(|c| match c {
            '₀'..='₉' => char::from_digit(c as u32 - '₀' as u32, 10).unwrap_or(c),
            other => other,
        })
        .collect();
    let known = format!("matcalc knows ‖{argument}‖₁, ‖{argument}‖ (= ‖{argument}‖₂) and ‖·‖_F");
    let (what, hint) = match inner.parse::<u32>() {
        Ok(p) if p >= 3 => (
            format!("the {p}-norm ‖·‖{}", to_subscript(p)),
            format!(
                "‖{argument}‖{} is sum(abs({argument})^{{∘{p}}})^{{1/{p}}}, which matcalc \
                 can differentiate; {known}",
                to_subscript(p)
            ),
        ),
        _ if inner.chars().all(|c| c.is_alphabetic()) && !inner.is_empty() => (
            format!("the norm ‖·‖_{inner} with a symbolic subscript"),
            format!(
                "for a number p ≥ 3, write sum(abs({argument})^{{∘p}})^{{1/p}} with that \
                 number; {known}"
            ),
        ),
        _ => (format!("the norm ‖·‖_{inner}"), known),
    };
    match inner.as_str() {
        "2" => Ok((NormKind::Two, false)),
        "F" | "f" | "fro" | "Fro" => Ok((NormKind::Two, true)),
        "1" => Ok((NormKind::One, false)),
        _ => Err(Error::Unsupported {
            message: format!("unsupported: {what}"),
            span: span_of(subscript),
            hint: Some(hint),
        }),
    }
}

/// `12` as `₁₂`.
fn to_subscript(number: u32) -> String {
    number
        .to_string()
        .chars()
        .filter_map(|digit| digit.to_digit(10))
        .filter_map(|digit| char::from_u32('₀' as u32 + digit))
        .collect()
}

/// An integer exponent from `⁻¹`, `-1`, `−12`, `²`.
fn parse_exponent(text: &str) -> Option<i64> {
    let mut negative = false;
    let mut value: i64 = 0;
    let mut any_digit = false;
    for c in text.chars() {
        let digit = match c {
            '-' | '−' | '⁻' => {
                negative = true;
                continue;
            }
            '⁰' => 0,
            '¹' => 1,
            '²' => 2,
            '³' => 3,
            '⁴'..='⁹' => c as i64 - '⁴' as i64 + 4,
            c => i64::from(c.to_digit(10)?),
        };
        any_digit = true;
        value = value.checked_mul(10)?.checked_add(digit)?;
    }
    if !any_digit {
        return None;
    }
    Some(if negative { -value } else { value })
}

fn vulgar_value(text: &str) -> (i64, i64) {
    match text {
        "½" => (1, 2),
        "⅓" => (1, 3),
        "⅔" => (2, 3),
        "¼" => (1, 4),
        "¾" => (3, 4),
        "⅕" => (1, 5),
        "⅖" => (2, 5),
        "⅗" => (3, 5),
        "⅘" => (4, 5),
        "⅙" => (1, 6),
        "⅚" => (5, 6),
        "⅐" => (1, 7),
        "⅛" => (1, 8),
        "⅜" => (3, 8),
        "⅝" => (5, 8),
        "⅞" => (7, 8),
        "⅑" => (1, 9),
        _ => (1, 10),
    }
}

// ---------------------------------------------------------------------------------------
// Declarations
// ---------------------------------------------------------------------------------------

fn lower_declaration(pair: Pair<'_, Rule>, decls: &mut Decls) -> Result<(), Error> {
    let mut name = None;
    let mut shape = None;
    let mut is_function = false;
    let mut props = Props::default();
    let mut property_span = None;
    for child in pair.into_inner() {
        match child.as_rule() {
            Rule::ident => name = Some(ident_symbol(child)),
            Rule::function_type => is_function = true,
            Rule::scalar_type => shape = Some(Shape::scalar()),
            Rule::integer_type => {
                shape = Some(Shape::scalar());
                props.integer = true;
            }
            Rule::shape_type => {
                let mut dims = vec![];
                for dim in child.into_inner() {
                    if dim.as_rule() == Rule::dim {
                        dims.push(lower_dim(dim)?);
                    }
                }
                let mut dims = dims.into_iter();
                let rows = dims.next().unwrap_or_else(Dim::one);
                let cols = dims.next().unwrap_or_else(Dim::one);
                shape = Some(Shape::new(rows, cols));
            }
            Rule::property => {
                props.symmetric = true;
                if child.as_str().eq_ignore_ascii_case("spd") {
                    props.positive_definite = true;
                }
                property_span = Some(span_of(&child));
            }
            _ => {}
        }
    }
    let Some(name) = name else {
        return Ok(());
    };
    if is_function {
        decls.fns.insert(name);
        return Ok(());
    }
    let shape = shape.unwrap_or_else(Shape::scalar);
    if let Some(span) = property_span {
        if !shape.is_square() {
            return Err(Error::InvalidDeclaration {
                message: format!(
                    "`{name}` is declared symmetric but its shape {shape} is not square"
                ),
                span,
            });
        }
    }
    decls.vars.insert(name, VarDecl { shape, props });
    Ok(())
}

/// Whether the postfix operator `op` is written right after a closing bracket, as in
/// `(1)ᵀ`: the operand is then a group, not a bare number.
fn follows_bracket(op: &Pair<'_, Rule>) -> bool {
    let start = op.as_span().start();
    op.get_input()[..start]
        .trim_end()
        .ends_with([')', '}', ']'])
}

fn lower_dim(pair: Pair<'_, Rule>) -> Result<Dim, Error> {
    let span = span_of(&pair);
    match pair.into_inner().next() {
        Some(child) if child.as_rule() == Rule::dim_number => match child.as_str().parse::<u64>() {
            Ok(0) | Err(_) => Err(Error::InvalidDeclaration {
                message: "a size must be a whole number of at least 1".to_string(),
                span,
            }),
            Ok(size) => Ok(Dim::Known(size)),
        },
        Some(child) => Ok(Dim::Sym(ident_symbol(child).into())),
        None => Err(unexpected(span)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_traits::One;

    /// Looking at the letters a word could span answers as looking at the whole runs
    /// would, for runs longer than any word on either side.
    #[test]
    fn a_word_across_long_runs_is_found_in_its_window() {
        let whole_runs = |left: &str, right: &str, touching: bool| {
            let run = format!("{left}{right}");
            ASCII_WORDS.iter().any(|word| {
                run.match_indices(word).any(|(start, _)| {
                    let end = start + word.len();
                    start < left.len() && (end > left.len() || (touching && end == left.len()))
                })
            })
        };
        let padding = "A".repeat(3 * LONGEST_ASCII_WORD);
        let mut cases = 0;
        for word in ASCII_WORDS {
            for cut in 0..=word.len() {
                let (head, tail) = word.split_at(cut);
                for (left, right) in [
                    (format!("{padding}{head}"), format!("{tail}{padding}")),
                    (format!("{head}{padding}"), format!("{padding}{tail}")),
                    (format!("{padding}{word}"), padding.clone()),
                ] {
                    for touching in [false, true] {
                        assert_eq!(
                            spells_word_across(&left, &right, touching),
                            whole_runs(&left, &right, touching),
                            "{word} cut at {cut}, touching {touching}"
                        );
                        cases += 1;
                    }
                }
            }
        }
        assert!(spells_word_across(&format!("{padding}x"), "i", false));
        assert!(!spells_word_across(&format!("{padding}A"), &padding, true));
        assert!(cases > 1000);
    }

    /// The function names are one list: each is a LaTeX command exactly when the grammar
    /// reads it after a backslash, and each is read bare before `(` as that function.
    #[test]
    fn function_names_are_latex_commands_where_the_grammar_says() {
        for name in FUNCTION_NAMES {
            let bare = match name {
                "eye" => "eye".to_string(),
                "kron" => "kron(X, Y)".to_string(),
                _ => format!("{name}(X)"),
            };
            assert!(parse(&bare).is_ok(), "{bare}: {:?}", parse(&bare));
            let command = format!("\\{name}(X)");
            let known = is_known_command(name);
            if NOT_LATEX_COMMANDS.contains(&name) {
                assert!(parse(&command).is_err(), "{command} parses");
                assert_eq!(known, name == "vec", "{name}");
            } else {
                assert!(known, "{name}");
                assert!(parse(&command).is_ok(), "{command}: {:?}", parse(&command));
            }
        }
        for command in TYPESETTING_COMMANDS {
            assert!(
                !FUNCTION_NAMES.contains(&command) || command == "vec",
                "{command}"
            );
        }
    }

    #[test]
    fn edit_distance_counts_swaps_once() {
        assert_eq!(edit_distance("tarce", "trace"), 1);
        assert_eq!(edit_distance("sigmod", "sigma"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn exponent_parses_superscripts() {
        assert_eq!(parse_exponent("⁻¹"), Some(-1));
        assert_eq!(parse_exponent("¹⁰"), Some(10));
        assert_eq!(parse_exponent("−2"), Some(-2));
        assert_eq!(parse_exponent("99999999999999999999"), None);
    }

    #[test]
    fn decimal_is_exact() {
        assert_eq!(
            parse_decimal("0.5"),
            Some(Rational::new(BigInt::one(), BigInt::from(2)))
        );
    }
}
