//! The REPL: declarations, definitions, derivatives and `:commands`, one statement at a
//! time over a [`Session`]. [`Repl::eval`] turns one statement into the text to print, so
//! the loop is testable without a terminal; [`run_stdio`] drives it from rustyline on a
//! terminal, or line by line from piped input.
#![allow(clippy::disallowed_macros)]

use std::io::{BufRead, IsTerminal, Write};

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};

use crate::limits::{self, LIMITS};
use crate::print::Style;
use crate::report::{claim_text, verdict_line};
use crate::session::{DerivativeResult, Options, Session};
use crate::typing::ESCAPES;

/// What the REPL prints for `:help`.
pub const HELP: &str = "\
Statements
  W: m×n, x: n            declare shapes (also `K: n×n sym`, `S: n×n spd`, `ℓ: fn`)
  let K = αXXᵀ + β⁻¹I     define a name; it is expanded for differentiation
                          and folded back into results
  d/dW ½‖WᵀWx − x‖²       the derivative w.r.t. W (also `d/dW,b …` for several)
  diff <expr> wrt W       the same
  ∂/∂Xₘₙ tr(AX)           the derivative by one entry, in index notation
                          (also `d/dX[m,n] …`, `d/dx[i] …`)
  <expr>                  the simplified expression and its shape
Commands (about the last derivative)
  :check                  check it against finite differences
  :verify <claim>         is <claim> the derivative?
  :latex  :numpy  :json   print it as LaTeX, NumPy code or JSON
  :explain                its computation graph and backward pass, step by step
  :graph FILE.svg         draw that graph (SVG, or DOT for FILE.dot)
  :shapes                 every symbol of the last expression with its shape
  :env                    declarations and definitions in force
  :limits                 the limits on input and simplification
  :limits NAME VALUE      change one (`:limits max-depth 1000`); kept by :reset
  :form vec|index         how a derivative by a matrix is written: the Jacobian
                          ∂vec(F)/∂vec(X), ∂Fᵢⱼ/∂Xₖₗ, or `:form differential` dF (default)
  :order 1|2              first derivatives, or Hessians; both kept by :reset
  :reset  :help  :quit
Examples from the problem sheet
  d/dW ½‖WᵀWx − x‖²
  let K = αXXᵀ + β⁻¹I
  d/dX −c − D/2 log|K| − ½ tr(K⁻¹YYᵀ)
  let z₁ = W₁x + b₁
  d/dW₁,b₁,W₂,b₂ ½‖W₂ swish(z₁) + b₂ − y‖²
  d/dz ½‖W₂ swish(z) + b₂ − y‖²
  :verify (σ(z) + z ⊙ (1 − σ(z))) ⊙ W₂ᵀ(W₂ swish(z) + b₂ − y)
Typing: \\alpha → α, \\T → ᵀ, \\inv → ⁻¹, \\norm → ‖, \\odot → ⊙, \\oslash → ⊘, \\otimes → ⊗, \\half → ½ (press Tab);
  Tab also completes function names (`sof` → `softmax(`), :commands and :form's argument
";

/// The last derivative asked for, so that commands can refer to it.
struct Last {
    text: String,
    wrt: Vec<String>,
    results: Vec<DerivativeResult>,
}

/// One REPL session: the [`Session`] plus what the commands refer to.
pub struct Repl {
    session: Session,
    options: Options,
    last: Option<Last>,
    last_expr: Option<String>,
}

/// What evaluating one statement produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// Text for standard output.
    Out(String),
    /// An error, rendered with its caret, for standard error.
    Err(String),
    /// `:quit`.
    Quit,
}

impl Default for Repl {
    fn default() -> Repl {
        Repl::new()
    }
}

impl Repl {
    /// A fresh REPL.
    pub fn new() -> Repl {
        Repl {
            session: Session::new(),
            options: Options::standard(),
            last: None,
            last_expr: None,
        }
    }

    /// Evaluates one statement (which may span several lines).
    ///
    /// # Examples
    /// ```
    /// use matcalc::repl::{Repl, Reply};
    /// let mut repl = Repl::new();
    /// assert_eq!(repl.eval("x: n"), Reply::Out("x: n declared\n".to_string()));
    /// assert!(matches!(repl.eval("d/dx ‖x‖²"), Reply::Out(text) if text.contains("2x")));
    /// ```
    pub fn eval(&mut self, line: &str) -> Reply {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Reply::Out(String::new());
        }
        if let Some(command) = line.strip_prefix(':') {
            return self.command(command.trim());
        }
        if let Some(rest) = strip_keyword(line, "let") {
            return match self.session.define_with(rest, &self.options) {
                Ok(name) => Reply::Out(format!("{name} defined\n")),
                Err(error) => Reply::Err(error.render()),
            };
        }
        if let Some((wrt, text)) = parse_derivative_statement(line) {
            return self.derivative(text, wrt);
        }
        if looks_like_declaration(line) {
            return match crate::parse::parse_decls(line) {
                Ok(decls) => {
                    // Answered like `let`: what is now in force.
                    let mut names: Vec<String> = decls
                        .vars
                        .iter()
                        .map(|(name, decl)| {
                            let shape = &decl.shape;
                            let shape = if shape.is_col_vector() {
                                shape.rows.to_string()
                            } else {
                                shape.to_string()
                            };
                            format!("{name}: {shape}{}", props_word(decl.props))
                        })
                        .collect();
                    names.extend(decls.fns.iter().map(|name| format!("{name}: fn")));
                    match self.session.declare(line) {
                        Ok(()) => Reply::Out(format!("{} declared\n", names.join(", "))),
                        Err(error) => Reply::Err(error.render()),
                    }
                }
                Err(_) => match self.session.declare(line) {
                    Ok(()) => Reply::Out(String::new()),
                    Err(error) => Reply::Err(error.render()),
                },
            };
        }
        match self.session.simplify(line, &self.options) {
            Ok(result) => {
                self.last_expr = Some(line.to_string());
                let mut out = format!(
                    "{}    ({})\n",
                    result.form.render(Style::Unicode),
                    result.shape
                );
                for (name, body) in result.form.render_wheres(Style::Unicode) {
                    out += &format!("  where {name} = {body}\n");
                }
                Reply::Out(out)
            }
            Err(error) => Reply::Err(error.render()),
        }
    }

    fn derivative(&mut self, text: &str, wrt: Vec<String>) -> Reply {
        let names: Vec<&str> = wrt.iter().map(String::as_str).collect();
        match self.session.derivative(text, &names, &self.options) {
            Ok(results) => {
                let out = crate::session::results_text(&results, Style::Unicode);
                self.last_expr = Some(text.to_string());
                self.last = Some(Last {
                    text: text.to_string(),
                    wrt,
                    results,
                });
                Reply::Out(out)
            }
            Err(error) => Reply::Err(error.render()),
        }
    }

    fn command(&mut self, command: &str) -> Reply {
        let (name, argument) = match command.split_once(char::is_whitespace) {
            Some((name, argument)) => (name, argument.trim()),
            None => (command, ""),
        };
        match name {
            "quit" | "q" | "exit" => Reply::Quit,
            "help" | "h" => Reply::Out(HELP.to_string()),
            "reset" => {
                let options = std::mem::replace(&mut self.options, Options::standard());
                *self = Repl::new();
                self.options = options;
                Reply::Out("session reset\n".to_string())
            }
            "limits" => self.limits(argument),
            "form" => self.form(argument),
            "order" => self.order(argument),
            "env" => Reply::Out(self.env()),
            "shapes" => self.shapes(),
            "check" => self.check(),
            "verify" => self.verify(argument),
            "explain" => self.explain(),
            "graph" => self.graph(argument),
            "latex" => self.with_last(|last| Ok(crate::session::results_latex(&last.results))),
            "json" => self.with_last(|last| {
                Ok(format!(
                    "{:#}\n",
                    crate::report::results_json(&last.results)
                ))
            }),
            "numpy" => {
                let session = self.session.clone();
                let options = self.options.clone();
                self.with_last(|last| {
                    crate::print::numpy::derivative_module(
                        &session,
                        &last.text,
                        &last.results,
                        &options,
                        crate::print::numpy::Backend::Numpy,
                    )
                })
            }
            other => Reply::Err(format!(
                "error: unknown command `:{other}`\n  = hint: type :help for the list\n"
            )),
        }
    }

    /// `:form` shows how derivatives by matrices are written, `:form NAME` sets it.
    fn form(&mut self, argument: &str) -> Reply {
        if argument.is_empty() {
            return Reply::Out(format!("form = {}\n", self.options.form));
        }
        match argument.parse::<crate::forms::Notation>() {
            Ok(form) => {
                self.options.form = form;
                Reply::Out(format!("form = {form}\n"))
            }
            Err(message) => Reply::Err(format!("error: {message}\n")),
        }
    }

    /// `:order` shows the derivative order, `:order 1|2` sets it.
    fn order(&mut self, argument: &str) -> Reply {
        match argument {
            "" => Reply::Out(format!("order = {}\n", self.options.order)),
            "1" | "2" => {
                self.options.order = if argument == "1" { 1 } else { 2 };
                Reply::Out(format!("order = {argument}\n"))
            }
            other => Reply::Err(format!(
                "error: unknown order `{other}`\n  = hint: 1 (first derivatives) or 2 (Hessians)\n"
            )),
        }
    }

    /// `:limits` shows every limit, `:limits NAME` one, `:limits NAME VALUE` sets one.
    fn limits(&mut self, argument: &str) -> Reply {
        let mut words = argument.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (None, _, _) => Reply::Out(limits::describe(&self.options)),
            (Some(name), None, _) => match limits::get(&self.options, name) {
                Some(value) => Reply::Out(format!("{name} = {value}\n")),
                None => Reply::Err(unknown_limit(name)),
            },
            (Some(name), Some(value), None) => {
                if limits::get(&self.options, name).is_none() {
                    return Reply::Err(unknown_limit(name));
                }
                match limits::set(&mut self.options, name, value) {
                    Ok(()) => Reply::Out(format!(
                        "{name} = {}\n",
                        limits::get(&self.options, name).unwrap_or_default()
                    )),
                    Err(message) => Reply::Err(format!("error: {message}\n")),
                }
            }
            _ => Reply::Err(
                "error: `:limits` takes a name and a value\n  = hint: :limits max-depth 1000\n"
                    .to_string(),
            ),
        }
    }

    fn with_last(&self, render: impl FnOnce(&Last) -> Result<String, String>) -> Reply {
        match &self.last {
            Some(last) => match render(last) {
                Ok(text) => Reply::Out(text),
                Err(message) => Reply::Err(format!("error: {message}\n")),
            },
            None => Reply::Err(
                "error: no derivative yet\n  = hint: try `d/dW ½‖WᵀWx − x‖²`\n".to_string(),
            ),
        }
    }

    fn env(&self) -> String {
        let mut out = String::new();
        for (name, decl) in &self.session.decls().vars {
            out += &format!("{name}: {}{}\n", decl.shape, props_word(decl.props));
        }
        for name in &self.session.decls().fns {
            out += &format!("{name}: fn\n");
        }
        for definition in self.session.definitions() {
            out += &format!(
                "let {}\n",
                definition.text.trim_start_matches("let ").trim()
            );
        }
        if out.is_empty() {
            out = "(no declarations or definitions)\n".into();
        }
        out
    }

    fn shapes(&self) -> Reply {
        let Some(text) = &self.last_expr else {
            return Reply::Err("error: no expression yet\n".into());
        };
        match self.session.shapes_with(text, &self.options) {
            Ok(vars) => Reply::Out(
                vars.iter()
                    .map(|(name, decl)| format!("{name}: {}\n", decl.shape))
                    .collect(),
            ),
            Err(error) => Reply::Err(error.render()),
        }
    }

    fn check(&mut self) -> Reply {
        let Some(last) = &self.last else {
            return self.with_last(|_| Ok(String::new()));
        };
        let mut options = self.options.clone();
        options.check = true;
        let names: Vec<&str> = last.wrt.iter().map(String::as_str).collect();
        match self.session.derivative(&last.text, &names, &options) {
            Ok(results) => Reply::Out(
                results
                    .iter()
                    .filter_map(|result| {
                        let verdict = result.check.as_ref()?;
                        // Named as the result was printed: `∂/∂X`, `∂vec(F)/∂vec(X)`, `∂tr(AX)/∂Xₖₗ`.
                        let lhs = result.lhs(Style::Unicode);
                        let domain = result.domain.as_ref().map_or(String::new(), |domain| {
                            domain.render_note(&result.problem.text)
                        });
                        Some(format!("{lhs}: {}\n{domain}", verdict_line(verdict)))
                    })
                    .collect(),
            ),
            Err(error) => Reply::Err(error.render()),
        }
    }

    fn last_explanation(&self) -> Result<crate::explain::Explanation, Reply> {
        let Some(last) = &self.last else {
            return Err(self.with_last(|_| Ok(String::new())));
        };
        self.session
            .explain_with(&last.text, &last.wrt.join(","), &self.options)
            .map_err(|error| Reply::Err(error.render()))
    }

    fn explain(&self) -> Reply {
        match self.last_explanation() {
            Ok(explanation) => Reply::Out(crate::explain::to_text(&explanation)),
            Err(reply) => reply,
        }
    }

    fn graph(&self, path: &str) -> Reply {
        if path.is_empty() {
            return Reply::Err(
                "error: `:graph` needs a file name\n  = hint: :graph graph.svg (or graph.dot)\n"
                    .into(),
            );
        }
        let explanation = match self.last_explanation() {
            Ok(explanation) => explanation,
            Err(reply) => return reply,
        };
        let extension = std::path::Path::new(path)
            .extension()
            .and_then(|extension| extension.to_str())
            .map(str::to_ascii_lowercase);
        let drawing = match extension.as_deref() {
            Some("dot") => crate::explain::to_dot(&explanation, true),
            Some("svg") => crate::explain::to_svg(&explanation, true),
            _ => {
                return Reply::Err(format!(
                    "error: `:graph` draws SVG or DOT, not `{path}`\n  = hint: :graph graph.svg (or graph.dot)\n"
                ))
            }
        };
        match std::fs::write(path, drawing) {
            Ok(()) => Reply::Out(format!("wrote {path}\n")),
            Err(error) => Reply::Err(format!("error: cannot write {path}: {error}\n")),
        }
    }

    fn verify(&self, claim: &str) -> Reply {
        let Some(last) = &self.last else {
            return self.with_last(|_| Ok(String::new()));
        };
        if claim.is_empty() {
            return Reply::Err(
                "error: `:verify` needs a claim\n  = hint: :verify W(zxᵀ + xzᵀ)\n".into(),
            );
        }
        let Some(wrt) = last.wrt.first() else {
            return Reply::Err("error: no variable\n".into());
        };
        match self.session.verify(&last.text, wrt, claim, &self.options) {
            Ok(result) => Reply::Out(claim_text(&result.verdict)),
            Err(error) => Reply::Err(error.render()),
        }
    }
}

/// ` spd`, ` sym` or nothing, as a declaration writes the properties.
fn props_word(props: crate::expr::Props) -> &'static str {
    if props.positive_definite {
        " spd"
    } else if props.symmetric {
        " sym"
    } else {
        ""
    }
}

fn unknown_limit(name: &str) -> String {
    let names: Vec<&str> = LIMITS.iter().map(|spec| spec.name).collect();
    format!(
        "error: unknown limit `{name}`\n  = hint: the limits are {}\n",
        names.join(", ")
    )
}

fn strip_keyword<'a>(line: &'a str, keyword: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(keyword)?;
    rest.starts_with(char::is_whitespace).then(|| rest.trim())
}

/// `d/dW expr`, `d/dW₁,b₁ expr`, `∂/∂W expr` or `diff expr wrt W`; an entry as the
/// variable, `d/dX[m,n] expr` or `∂/∂Xₘₙ expr`.
fn parse_derivative_statement(line: &str) -> Option<(Vec<String>, &str)> {
    let split_names = crate::forms::entry::split_wrt;
    for prefix in ["d/d", "∂/∂"] {
        if let Some(rest) = line.strip_prefix(prefix) {
            // The names end at the first space outside an entry's brackets (`X[m, n]`).
            let mut depth = 0usize;
            let end = rest.char_indices().find_map(|(at, c)| {
                match c {
                    '[' => depth += 1,
                    ']' => depth = depth.saturating_sub(1),
                    _ if c.is_whitespace() && depth == 0 => return Some(at),
                    _ => {}
                }
                None
            })?;
            let (names, text) = rest.split_at(end);
            return Some((split_names(names), text.trim()));
        }
    }
    let rest = strip_keyword(line, "diff")?;
    let (text, names) = rest.rsplit_once(" wrt ")?;
    Some((split_names(names), text.trim()))
}

/// `W: m×n` and friends: a name, a colon, then a shape.
fn looks_like_declaration(line: &str) -> bool {
    match line.split_once(':') {
        Some((name, _)) => {
            let name = name.trim();
            !name.is_empty() && name.chars().count() <= 12 && !name.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// Whether brackets are still open, so the statement continues on the next line.
fn unbalanced(text: &str) -> bool {
    unclosed(text).is_some()
}

/// What is still open at the end of `text`, innermost first, as a person reads it:
/// "`(` at line 1, column 4", or `None` when every bracket and norm bar is closed.
pub fn unclosed(text: &str) -> Option<String> {
    let mut open: Vec<(char, usize, usize)> = vec![];
    for (line_index, line) in text.split('\n').enumerate() {
        for (column, character) in line.chars().enumerate() {
            let at = (line_index + 1, column + 1);
            match character {
                '(' | '[' | '{' => open.push((character, at.0, at.1)),
                ')' | ']' | '}' => {
                    let opening = match character {
                        ')' => '(',
                        ']' => '[',
                        _ => '{',
                    };
                    if let Some(index) = open.iter().rposition(|(c, _, _)| *c == opening) {
                        open.truncate(index);
                    }
                }
                '‖' => match open.last() {
                    Some(('‖', _, _)) => {
                        open.pop();
                    }
                    _ => open.push(('‖', at.0, at.1)),
                },
                _ => {}
            }
        }
    }
    let (character, line, column) = open.last()?;
    let what = if *character == '‖' {
        "the norm `‖`".to_string()
    } else {
        format!("`{character}`")
    };
    Some(format!(
        "{what} opened at line {line}, column {column} is not closed"
    ))
}

/// The error for input that ends inside a statement.
fn unfinished(statement: &str) -> String {
    let what = unclosed(statement).unwrap_or_else(|| "a bracket is not closed".into());
    let first = statement.lines().next().unwrap_or("").trim();
    format!("error: the input ended inside a statement: {what}\n  --> {first}\n")
}

/// Names offered by Tab that take no argument: `eye` (= I) and `ones` (= 𝟙).
const CONSTANT_NAMES: &[&str] = &["eye", "ones"];

/// The forms offered by Tab after `:form `.
const FORMS: &[&str] = &["differential", "vec", "index"];

/// The commands offered by Tab after `:`.
const COMMANDS: &[&str] = &[
    ":check", ":verify", ":explain", ":graph", ":latex", ":numpy", ":json", ":shapes", ":env",
    ":limits", ":form", ":order", ":reset", ":help", ":quit",
];

/// Completions for the word ending at `pos`: escapes become Unicode, names complete.
pub fn complete(line: &str, pos: usize) -> (usize, Vec<String>) {
    let head = &line[..pos];
    // The argument of `:form` is one of the forms.
    if let Some(argument) = head.strip_prefix(":form ") {
        let name = argument.trim_start();
        let candidates = FORMS
            .iter()
            .filter(|form| form.starts_with(name))
            .map(|form| form.to_string())
            .collect();
        return (pos - name.len(), candidates);
    }
    // The first argument of `:limits` is a limit's name, which has dashes in it.
    if let Some(argument) = head.strip_prefix(":limits ") {
        let name = argument.trim_start();
        if !name.contains(char::is_whitespace) {
            let candidates = LIMITS
                .iter()
                .filter(|spec| spec.name.starts_with(name))
                .map(|spec| spec.name.to_string())
                .collect();
            return (pos - name.len(), candidates);
        }
    }
    let start = head
        .char_indices()
        .rev()
        .find(|(_, character)| {
            !(character.is_alphanumeric() || *character == '\\' || *character == ':')
        })
        .map(|(index, character)| index + character.len_utf8())
        .unwrap_or(0);
    let start = head[start..]
        .rfind('\\')
        .map(|offset| start + offset)
        .unwrap_or(start);
    let word = &head[start..];
    if word.is_empty() {
        return (pos, vec![]);
    }
    let exact_escape = ESCAPES.iter().find(|(escape, _)| *escape == word);
    let mut candidates: Vec<String> = if let Some((_, unicode)) = exact_escape {
        // `\T` is ᵀ, whatever else starts with T.
        vec![unicode.to_string()]
    } else if let Some(name) = word.strip_prefix('\\') {
        // An escape or a Greek letter becomes Unicode; a function name after a backslash,
        // as LaTeX writes it, becomes the function (`\sof` → `softmax(`).
        let greek = crate::parse::GREEK_LETTERS
            .iter()
            .filter(|(ascii, _)| ascii.starts_with(name))
            .map(|(_, unicode)| unicode.to_string());
        ESCAPES
            .iter()
            .filter(|(escape, _)| escape.starts_with(word))
            .map(|(_, unicode)| unicode.to_string())
            .chain(greek)
            .chain(name_candidates(name, true))
            .collect()
    } else if word.starts_with(':') {
        COMMANDS
            .iter()
            .filter(|command| command.starts_with(word))
            .map(|command| command.to_string())
            .collect()
    } else {
        name_candidates(word, false).collect()
    };
    // Keep the first of each (`\alpha` is both an escape and a Greek letter).
    let mut seen = std::collections::HashSet::new();
    candidates.retain(|candidate| seen.insert(candidate.clone()));
    (start, candidates)
}

/// The function names (from the parser's one list, [`crate::parse::FUNCTION_NAMES`]) and
/// constants that complete `prefix`, functions with their opening parenthesis
/// (`softmax(`). A name already typed in full is offered only after a backslash, where
/// completing it also drops the backslash.
fn name_candidates(prefix: &str, after_backslash: bool) -> impl Iterator<Item = String> + '_ {
    let wanted = move |name: &str| name.starts_with(prefix) && (after_backslash || name != prefix);
    let functions = crate::parse::FUNCTION_NAMES
        .iter()
        .filter(move |name| !CONSTANT_NAMES.contains(name) && wanted(name))
        .map(|name| format!("{name}("));
    let constants = CONSTANT_NAMES
        .iter()
        .filter(move |name| wanted(name))
        .map(|name| name.to_string());
    functions.chain(constants)
}

struct ReplHelper;

impl Completer for ReplHelper {
    type Candidate = Pair;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, candidates) = complete(line, pos);
        Ok((
            start,
            candidates
                .into_iter()
                .map(|candidate| Pair {
                    display: candidate.clone(),
                    replacement: candidate,
                })
                .collect(),
        ))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}
impl Highlighter for ReplHelper {}
// Open brackets continue on the next line with a `… ` prompt (see `run_terminal`), so
// the editor's own multi-line validation is not used.
impl Validator for ReplHelper {}
impl Helper for ReplHelper {}

fn history_path() -> Option<std::path::PathBuf> {
    let dir = dirs::data_dir()?.join("matcalc");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("history.txt"))
}

/// Runs the REPL on standard input: rustyline on a terminal, plain lines when piped.
/// Returns the exit status (0; 2 if a piped session had an error).
pub fn run_stdio() -> i32 {
    let mut repl = Repl::new();
    if std::io::stdin().is_terminal() {
        run_terminal(&mut repl)
    } else {
        run_piped(&mut repl)
    }
}

/// Piped input: statements are read line by line (a statement with open brackets goes
/// on to the next line), without prompts; the output is what a terminal session would
/// print. A line that is not UTF-8 is an error for that line alone; input that ends
/// inside a statement is an error naming what is open. Errors make the exit status 2.
fn run_piped(repl: &mut Repl) -> i32 {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut status = 0;
    let mut pending = String::new();
    let mut line_number = 0usize;
    loop {
        let mut bytes = Vec::new();
        match input.read_until(b'\n', &mut bytes) {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) => {
                eprintln!("error: cannot read standard input: {error}");
                return 2;
            }
        }
        line_number += 1;
        while matches!(bytes.last(), Some(b'\n' | b'\r')) {
            bytes.pop();
        }
        let mut stdout = std::io::stdout().lock();
        let line = match String::from_utf8(bytes) {
            Ok(line) => line,
            Err(error) => {
                status = 2;
                let _ = writeln!(
                    stdout,
                    "error: line {line_number} is not valid UTF-8 (byte {} of the line); it is skipped",
                    error.utf8_error().valid_up_to() + 1
                );
                pending.clear();
                continue;
            }
        };
        if !pending.is_empty() {
            pending.push('\n');
        }
        pending += &line;
        if unbalanced(&pending) {
            continue;
        }
        let statement = std::mem::take(&mut pending);
        match repl.eval(&statement) {
            Reply::Out(text) => {
                let _ = stdout.write_all(text.as_bytes());
            }
            Reply::Err(text) => {
                status = 2;
                // Piped sessions keep errors in order with the output they follow.
                let _ = stdout.write_all(text.as_bytes());
            }
            Reply::Quit => return status,
        }
    }
    if !pending.trim().is_empty() {
        let _ = std::io::stdout()
            .lock()
            .write_all(unfinished(&pending).as_bytes());
        status = 2;
    }
    status
}

/// The terminal: rustyline with history and completion, `» ` for a new statement and
/// `… ` while brackets are open. End of input (Ctrl-D) inside a statement is an error
/// naming what is open, with exit status 2.
fn run_terminal(repl: &mut Repl) -> i32 {
    let Ok(mut editor) = Editor::<ReplHelper, rustyline::history::DefaultHistory>::new() else {
        return run_piped(repl);
    };
    editor.set_helper(Some(ReplHelper));
    let history = history_path();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    println!(
        "matcalc {} — :help for help, Ctrl-D to leave",
        env!("CARGO_PKG_VERSION")
    );
    let mut status = 0;
    let mut pending = String::new();
    loop {
        let prompt = if pending.is_empty() { "» " } else { "… " };
        match editor.readline(prompt) {
            Ok(line) => {
                if !pending.is_empty() {
                    pending.push('\n');
                }
                pending += &line;
                if unbalanced(&pending) {
                    continue;
                }
                let statement = std::mem::take(&mut pending);
                let _ = editor.add_history_entry(statement.as_str());
                match repl.eval(&statement) {
                    Reply::Out(text) => print!("{text}"),
                    Reply::Err(text) => eprint!("{text}"),
                    Reply::Quit => break,
                }
            }
            Err(ReadlineError::Interrupted) => pending.clear(),
            Err(_) => {
                if !pending.trim().is_empty() {
                    eprint!("{}", unfinished(&pending));
                    status = 2;
                }
                break;
            }
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivative_statements_split_names_and_expression() {
        assert_eq!(
            parse_derivative_statement("d/dW ½‖WᵀWx − x‖²"),
            Some((vec!["W".to_string()], "½‖WᵀWx − x‖²"))
        );
        assert_eq!(
            parse_derivative_statement("diff ‖x‖² wrt x"),
            Some((vec!["x".to_string()], "‖x‖²"))
        );
        assert_eq!(
            parse_derivative_statement("d/dW₁,b₁ ‖W₁x + b₁‖²").map(|(names, _)| names),
            Some(vec!["W₁".to_string(), "b₁".to_string()])
        );
    }

    #[test]
    fn escapes_complete_to_unicode() {
        assert_eq!(complete("x\\T", 3), (1, vec!["ᵀ".to_string()]));
        assert_eq!(complete("\\alp", 4).1, vec!["α".to_string()]);
        // Every Greek letter the parser knows, not only the escapes' few.
        assert_eq!(complete("\\epsi", 5).1, vec!["ε".to_string()]);
        // The LaTeX operators of SPEC §2, as the REPL's help lists them.
        assert_eq!(complete("\\oslash", 7), (0, vec!["⊘".to_string()]));
        assert_eq!(complete("x \\otimes", 9), (2, vec!["⊗".to_string()]));
        assert_eq!(complete("\\odot", 5).1, vec!["⊙".to_string()]);
        assert_eq!(complete("\\circ", 5).1, vec!["∘".to_string()]);
        assert_eq!(complete("W\\top", 5), (1, vec!["ᵀ".to_string()]));
        assert_eq!(complete("\\osl", 4).1, vec!["⊘".to_string()]);
    }

    /// What Tab offers, through the rustyline `Completer` the terminal uses.
    fn tab(line: &str) -> (usize, Vec<String>) {
        let history = rustyline::history::MemHistory::new();
        let context = Context::new(&history);
        let (start, pairs) = ReplHelper
            .complete(line, line.len(), &context)
            .expect("completion never fails");
        for pair in &pairs {
            assert_eq!(pair.display, pair.replacement);
        }
        (
            start,
            pairs.into_iter().map(|pair| pair.replacement).collect(),
        )
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    #[test]
    fn tab_completes_every_function_name() {
        assert_eq!(tab("sof").1, strings(&["softplus(", "softmax("]));
        let line = "½‖x‖² + log";
        assert_eq!(
            tab(line),
            (line.len() - 3, strings(&["logdet(", "logsumexp("]))
        );
        assert_eq!(tab("arc").1, strings(&["arcsin(", "arccos(", "arctan("]));
        assert_eq!(tab("norm").1, strings(&["norm1(", "norm2("]));
        assert_eq!(tab("ey").1, strings(&["eye"]));
        assert_eq!(tab("on").1, strings(&["ones"]));
        assert_eq!(tab("kr").1, strings(&["kron("]));
        assert_eq!(tab("x + W").1, Vec::<String>::new());
        // After a backslash, as in LaTeX, the function itself.
        assert_eq!(tab("\\sinh"), (0, strings(&["sinh("])));
        assert_eq!(tab("\\sigm").1, strings(&["σ", "sigma(", "sigmoid("]));
        // Each name of the parser's list completes to itself, and parses as a function.
        for name in crate::parse::FUNCTION_NAMES {
            let offered = tab(&name[..name.len() - 1]).1;
            let expected = match name {
                "eye" => name.to_string(),
                _ => format!("{name}("),
            };
            assert!(offered.contains(&expected), "{name}: {offered:?}");
            let call = match name {
                "eye" => "eye".to_string(),
                "kron" => "kron(A, B)".to_string(),
                _ => format!("{expected}A)"),
            };
            assert!(crate::parse::parse(&call).is_ok(), "{call}");
        }
    }

    #[test]
    fn tab_completes_commands_and_their_arguments() {
        assert_eq!(tab(":ch").1, strings(&[":check"]));
        assert_eq!(tab(":e").1, strings(&[":explain", ":env"]));
        assert_eq!(tab(":form i"), (6, strings(&["index"])));
        assert_eq!(tab(":form ").1, strings(FORMS));
        for form in FORMS {
            assert!(form.parse::<crate::forms::Notation>().is_ok(), "{form}");
        }
        // Every command Tab offers is one the REPL knows.
        let mut repl = Repl::new();
        for command in COMMANDS.iter().filter(|command| **command != ":quit") {
            let reply = repl.eval(command);
            assert!(
                !matches!(&reply, Reply::Err(text) if text.contains("unknown command")),
                "{command}: {reply:?}"
            );
        }
    }

    #[test]
    fn limits_complete_by_name() {
        assert_eq!(complete(":lim", 4).1, vec![":limits".to_string()]);
        assert_eq!(
            complete(":limits max-d", 13),
            (8, vec!["max-depth".to_string()])
        );
        assert_eq!(complete(":limits ti", 10).1, vec!["time-limit".to_string()]);
    }

    #[test]
    fn limits_show_and_set() {
        let mut repl = Repl::new();
        assert!(matches!(repl.eval(":limits"), Reply::Out(text) if text.contains("max-depth")));
        assert_eq!(
            repl.eval(":limits max-depth 3"),
            Reply::Out("max-depth = 3\n".to_string())
        );
        assert!(
            matches!(repl.eval("((xᵀ)ᵀ)ᵀ"), Reply::Err(text) if text.contains(":limits max-depth"))
        );
        assert!(
            matches!(repl.eval(":limits max-depth 0"), Reply::Err(text) if text.contains("from 1 to"))
        );
        assert!(
            matches!(repl.eval(":limits depth 3"), Reply::Err(text) if text.contains("unknown limit"))
        );
        assert!(matches!(repl.eval(":reset"), Reply::Out(_)));
        assert_eq!(
            repl.eval(":limits max-depth"),
            Reply::Out("max-depth = 3\n".to_string())
        );
    }

    #[test]
    fn unbalanced_brackets_continue_the_statement() {
        assert!(unbalanced("tr((A"));
        assert!(unbalanced("½‖x"));
        assert!(!unbalanced("½‖x‖²"));
    }
}
