//! Renderings of an [`Explanation`]: Unicode text, a LaTeX `align*` block, JSON.
//!
//! Expressions are printed by a small precedence-aware printer of this module's own, since
//! explanations contain names no other stage prints: node names (`z₃`) and adjoint
//! symbols (`∂L/∂z₃`, LaTeX `\frac{\partial L}{\partial z_{3}}`). Precedence, tightest
//! first, is the parser's: postfix, product, `⊙`, prefix minus, `+`/`−`; a product of
//! products prints flat (`Wxz₂ᵀ`), which is the same value by associativity.

use serde_json::json;

use super::{Explanation, Node, Role, Step};
use crate::expr::{Dim, Expr, ExprKind, Func, Rational, Shape};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Unicode,
    Latex,
}

const SUM: u8 = 1;
const NEG: u8 = 2;
const HADAMARD: u8 = 3;
const PRODUCT: u8 = 4;
const POSTFIX: u8 = 5;
const ATOM: u8 = 6;

/// An expression in Unicode (`z₂xᵀ`, `½‖z₂‖²`).
pub(crate) fn unicode(expr: &Expr) -> String {
    node(expr, Style::Unicode).0
}

/// An expression as LaTeX math.
pub(crate) fn latex(expr: &Expr) -> String {
    node(expr, Style::Latex).0
}

fn vulgar(q: &Rational) -> Option<&'static str> {
    let n = q.numer().to_string();
    let d = q.denom().to_string();
    Some(match (n.as_str(), d.as_str()) {
        ("1", "2") => "½",
        ("1", "3") => "⅓",
        ("2", "3") => "⅔",
        ("1", "4") => "¼",
        ("3", "4") => "¾",
        ("1", "5") => "⅕",
        ("1", "6") => "⅙",
        ("1", "8") => "⅛",
        _ => return None,
    })
}

fn superscript(k: i64) -> String {
    k.to_string()
        .chars()
        .map(|c| match c {
            '-' => '⁻',
            '0' => '⁰',
            '1' => '¹',
            '2' => '²',
            '3' => '³',
            '4' => '⁴',
            '5' => '⁵',
            '6' => '⁶',
            '7' => '⁷',
            '8' => '⁸',
            _ => '⁹',
        })
        .collect()
}

fn greek(c: char) -> Option<&'static str> {
    Some(match c {
        'α' => "\\alpha",
        'β' => "\\beta",
        'γ' => "\\gamma",
        'δ' => "\\delta",
        'ε' => "\\varepsilon",
        'ζ' => "\\zeta",
        'η' => "\\eta",
        'θ' => "\\theta",
        'ι' => "\\iota",
        'κ' => "\\kappa",
        'λ' => "\\lambda",
        'μ' => "\\mu",
        'ν' => "\\nu",
        'ξ' => "\\xi",
        'π' => "\\pi",
        'ρ' => "\\rho",
        'σ' => "\\sigma",
        'τ' => "\\tau",
        'υ' => "\\upsilon",
        'φ' => "\\varphi",
        'χ' => "\\chi",
        'ψ' => "\\psi",
        'ω' => "\\omega",
        'Γ' => "\\Gamma",
        'Δ' => "\\Delta",
        'Θ' => "\\Theta",
        'Λ' => "\\Lambda",
        'Ξ' => "\\Xi",
        'Π' => "\\Pi",
        'Σ' => "\\Sigma",
        'Υ' => "\\Upsilon",
        'Φ' => "\\Phi",
        'Ψ' => "\\Psi",
        'Ω' => "\\Omega",
        'ℓ' => "\\ell",
        'ℒ' => "\\mathcal{L}",
        '∂' => "\\partial",
        '∇' => "\\nabla",
        '𝟙' => "\\mathbf{1}",
        '²' => "^{2}",
        'ᵀ' => "^{\\top}",
        '−' => "-",
        _ => return None,
    })
}

/// A name (`z₃`, `W₁`, `α`, `x′`, `∂L/∂z₃`) as LaTeX (`z_{3}`, `W_{1}`, `\alpha`, `x'`,
/// `\frac{\partial L}{\partial z_{3}}`).
pub(crate) fn latex_name(name: &str) -> String {
    if let Some(rest) = name.strip_prefix('∂') {
        if let Some((output, of)) = rest.split_once("/∂") {
            return format!(
                "\\frac{{\\partial {}}}{{\\partial {}}}",
                latex_name(output),
                latex_name(of)
            );
        }
    }
    let mut base = String::new();
    let mut sub = String::new();
    let mut primes = String::new();
    for c in name.chars() {
        match c {
            '₀'..='₉' => sub.push(char::from(b'0' + (c as u32 - '₀' as u32) as u8)),
            '′' | '\'' => primes.push('\''),
            _ => match greek(c) {
                Some(g) => {
                    if !base.is_empty() && base.ends_with(|ch: char| ch.is_ascii_alphabetic()) {
                        base.push(' ');
                    }
                    base.push_str(g);
                    if g.starts_with('\\') {
                        base.push(' ');
                    }
                }
                None => base.push(c),
            },
        }
    }
    let mut res = base.trim_end().to_string();
    if !sub.is_empty() {
        res.push_str(&format!("_{{{sub}}}"));
    }
    res.push_str(&primes);
    res
}

/// Unicode text for use inside LaTeX `\text{…}`: math symbols outside ASCII are replaced
/// by words or ASCII so that pdfLaTeX compiles it.
pub(crate) fn latex_text(words: &str) -> String {
    let mut res = String::new();
    for c in words.chars() {
        match c {
            '\\' | '{' | '}' | '$' | '&' | '#' | '_' | '%' | '^' | '~' => {
                res.push('\\');
                res.push(c);
            }
            _ if c.is_ascii() => res.push(c),
            _ => match greek(c) {
                Some(g) => res.push_str(&format!("${g}$")),
                None => match c {
                    '₀'..='₉' => res.push_str(&format!(
                        "$_{}$",
                        char::from(b'0' + (c as u32 - '₀' as u32) as u8)
                    )),
                    '⁻' => res.push_str("$^{-}$"),
                    '¹' => res.push_str("$^{1}$"),
                    '⊙' => res.push_str("$\\odot$"),
                    '′' => res.push('\''),
                    '‖' => res.push_str("$\\|$"),
                    '√' => res.push_str("sqrt"),
                    _ => res.push('?'),
                },
            },
        }
    }
    res
}

fn paren(s: String, style: Style) -> String {
    match style {
        Style::Unicode => format!("({s})"),
        Style::Latex => format!("\\left({s}\\right)"),
    }
}

fn at(e: &Expr, min: u8, style: Style) -> String {
    let (s, level) = node(e, style);
    if level < min {
        paren(s, style)
    } else {
        s
    }
}

fn func_name(f: Func, style: Style) -> String {
    match (f, style) {
        (Func::Sigma, Style::Unicode) => "σ".into(),
        (Func::Sigma, Style::Latex) => "\\sigma".into(),
        (
            Func::Exp
            | Func::Log
            | Func::Tanh
            | Func::Sin
            | Func::Cos
            | Func::Tan
            | Func::Arcsin
            | Func::Arccos
            | Func::Arctan
            | Func::Sinh
            | Func::Cosh,
            Style::Latex,
        ) => format!("\\{}", f.name()),
        (_, Style::Latex) => format!("\\operatorname{{{}}}", f.name()),
        (_, Style::Unicode) => f.name().into(),
    }
}

fn call(name: &str, arg: &Expr, style: Style) -> (String, u8) {
    let inner = node(arg, style).0;
    match style {
        Style::Unicode => (format!("{name}({inner})"), ATOM),
        Style::Latex => (format!("{name}\\left({inner}\\right)"), ATOM),
    }
}

fn starts_numeric(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || "½⅓⅔¼¾⅕⅙⅛".contains(c))
}

fn node(e: &Expr, style: Style) -> (String, u8) {
    use ExprKind::*;
    let uni = style == Style::Unicode;
    match &e.kind {
        Num(q) => {
            if q.is_integer() {
                (q.to_string(), ATOM)
            } else if uni {
                match vulgar(q) {
                    Some(v) => (v.to_string(), ATOM),
                    None => (format!("{}/{}", q.numer(), q.denom()), PRODUCT),
                }
            } else {
                (format!("\\frac{{{}}}{{{}}}", q.numer(), q.denom()), ATOM)
            }
        }
        Var(name) => {
            let adjoint = name.starts_with('∂');
            match (uni, adjoint) {
                (true, true) => (name.clone(), NEG),
                (true, false) => (name.clone(), ATOM),
                (false, true) => (latex_name(name), PRODUCT),
                (false, false) => (latex_name(name), ATOM),
            }
        }
        Identity => ("I".into(), ATOM),
        Size(name) if uni => (name.to_string(), ATOM),
        Size(name) => (latex_name(name), ATOM),
        Ones => (if uni { "𝟙" } else { "\\mathbf{1}" }.into(), ATOM),
        Differential(name) => {
            if uni {
                (format!("d{name}"), ATOM)
            } else {
                (format!("\\mathrm{{d}}{}", latex_name(name)), ATOM)
            }
        }
        Neg(a) => (
            format!("{}{}", if uni { "−" } else { "-" }, at(a, HADAMARD, style)),
            NEG,
        ),
        Add(a, b) => (
            format!("{} + {}", at(a, SUM, style), at(b, NEG, style)),
            SUM,
        ),
        Sub(a, b) => (
            format!(
                "{} {} {}",
                at(a, SUM, style),
                if uni { "−" } else { "-" },
                at(b, NEG, style)
            ),
            SUM,
        ),
        Mul(a, b) => {
            let left = at(a, PRODUCT, style);
            let right = at(b, PRODUCT, style);
            let numeric_clash = matches!(a.kind, Num(_)) && matches!(b.kind, Num(_))
                || left.ends_with(|c: char| c.is_ascii_digit()) && starts_numeric(&right);
            let separator = match (uni, numeric_clash) {
                (true, true) => "·",
                // Judged on the first factor on the right: a product prints flat.
                (true, false) => {
                    let mut head = b.as_ref();
                    while let Mul(first, _) = &head.kind {
                        head = first;
                    }
                    crate::print::unicode_separator(&left, &at(head, PRODUCT, style))
                }
                (false, true) => " \\cdot ",
                (false, false) => " ",
            };
            (format!("{left}{separator}{right}"), PRODUCT)
        }
        Div(a, b) => {
            if uni {
                // Below a product, so that `(D/2)z₂` never reads as D/(2z₂).
                (
                    format!("{}/{}", at(a, PRODUCT, style), at(b, POSTFIX, style)),
                    HADAMARD,
                )
            } else {
                (
                    format!("\\frac{{{}}}{{{}}}", node(a, style).0, node(b, style).0),
                    ATOM,
                )
            }
        }
        Hadamard(a, b) => (
            format!(
                "{} {} {}",
                at(a, HADAMARD, style),
                if uni { "⊙" } else { "\\odot" },
                at(b, PRODUCT, style)
            ),
            HADAMARD,
        ),
        Transpose(a) => match &a.kind {
            Inverse(inner) => postfix(inner, if uni { "⁻ᵀ" } else { "^{-\\top}" }, style),
            _ => postfix(a, if uni { "ᵀ" } else { "^{\\top}" }, style),
        },
        Inverse(a) => postfix(a, if uni { "⁻¹" } else { "^{-1}" }, style),
        Pow(a, k) => {
            let sup = if uni {
                superscript(*k)
            } else {
                format!("^{{{k}}}")
            };
            postfix(a, &sup, style)
        }
        Trace(a) => call(if uni { "tr" } else { "\\operatorname{tr}" }, a, style),
        Det(a) => call(if uni { "det" } else { "\\det" }, a, style),
        LogDet(a) => {
            let inner = node(a, style).0;
            if uni {
                (format!("log|{inner}|"), ATOM)
            } else {
                (format!("\\log\\left|{inner}\\right|"), ATOM)
            }
        }
        NormSq(a) => {
            let inner = node(a, style).0;
            if uni {
                (format!("‖{inner}‖²"), ATOM)
            } else {
                (format!("\\left\\|{inner}\\right\\|^{{2}}"), ATOM)
            }
        }
        Diag(a) => call(if uni { "diag" } else { "\\operatorname{diag}" }, a, style),
        Sum(a) => call(if uni { "sum" } else { "\\operatorname{sum}" }, a, style),
        Func(f, a) => call(&func_name(*f, style), a, style),
        Apply(name, a) => {
            let n = if uni { name.clone() } else { latex_name(name) };
            call(&n, a, style)
        }
        Grad(name, a) => {
            let n = if uni {
                format!("∇{name}")
            } else {
                format!("\\nabla {}", latex_name(name))
            };
            call(&n, a, style)
        }
        // The Kronecker nodes print as the main printer prints them.
        Kron(..) | Vectorize(_) | Commutation(..) => {
            let spelling = if uni {
                crate::print::Style::Unicode
            } else {
                crate::print::Style::Latex
            };
            let level = if matches!(e.kind, Kron(..)) {
                HADAMARD
            } else {
                ATOM
            };
            (crate::print::render(e, spelling), level)
        }
        Norm(a, kind) => {
            let inner = node(a, style).0;
            let one = *kind == crate::expr::NormKind::One;
            match (uni, one) {
                (true, false) => (format!("‖{inner}‖"), ATOM),
                (true, true) => (format!("‖{inner}‖₁"), ATOM),
                (false, false) => (format!("\\left\\|{inner}\\right\\|"), ATOM),
                (false, true) => (format!("\\left\\|{inner}\\right\\|_1"), ATOM),
            }
        }
        ElemDiv(a, b) => (
            format!(
                "{} {} {}",
                at(a, HADAMARD, style),
                if uni { "⊘" } else { "\\oslash" },
                at(b, PRODUCT, style)
            ),
            HADAMARD,
        ),
        ElemPow(a, q) => {
            let sup = if uni {
                format!("^{{∘{q}}}")
            } else {
                format!("^{{\\circ {q}}}")
            };
            postfix(a, &sup, style)
        }
        PowSym(a, k, offset) => {
            let exponent = match offset {
                0 => k.clone(),
                o if *o > 0 => format!("{k}+{o}"),
                o => format!("{k}-{}", -o),
            };
            postfix(a, &format!("^{{{exponent}}}"), style)
        }
        Softmax(a) => call(
            if uni {
                "softmax"
            } else {
                "\\operatorname{softmax}"
            },
            a,
            style,
        ),
        Written(a, _) => node(a, style),
        LogSumExp(a) => call(
            if uni {
                "logsumexp"
            } else {
                "\\operatorname{logsumexp}"
            },
            a,
            style,
        ),
    }
}

fn postfix(base: &Expr, suffix: &str, style: Style) -> (String, u8) {
    (format!("{}{suffix}", at(base, ATOM, style)), POSTFIX)
}

fn shape_unicode(shape: &Shape) -> String {
    shape.to_string()
}

fn dim_latex(d: &Dim) -> String {
    match d {
        Dim::Sym(s) => latex_name(s),
        other => other.to_string(),
    }
}

fn shape_latex(shape: &Shape) -> String {
    if shape.is_scalar() {
        "\\text{scalar}".into()
    } else {
        format!(
            "{} \\times {}",
            dim_latex(&shape.rows),
            dim_latex(&shape.cols)
        )
    }
}

fn adjoint_name(explanation: &Explanation, node: &Node) -> String {
    format!("∂{}/∂{}", output_name(explanation), node.name)
}

fn output_name(explanation: &Explanation) -> &str {
    explanation
        .nodes
        .first()
        .map(|n| n.name.as_str())
        .unwrap_or("L")
}

/// The right-hand sides of a step's line: the template with the users' adjoints as
/// symbols, then the value in node names, without repeats.
fn step_sides(step: &Step, style: Style) -> Vec<String> {
    let render = |e: &Expr| match style {
        Style::Unicode => unicode(e),
        Style::Latex => latex(e),
    };
    let mut sides = Vec::new();
    if step.contributions.len() == 1 {
        sides.push(render(&step.contributions[0].template));
    } else if step.contributions.len() > 1 {
        let parts: Vec<String> = step
            .contributions
            .iter()
            .map(|c| at(&c.template, NEG, style))
            .collect();
        sides.push(parts.join(" + "));
    }
    let value = render(&step.adjoint);
    if !sides.contains(&value) {
        sides.push(value);
    }
    sides
}

fn pad(s: &str, width: usize) -> String {
    let len = s.chars().count();
    format!("{s}{}", " ".repeat(width.saturating_sub(len)))
}

fn describe_inputs(explanation: &Explanation) -> String {
    let wrt = explanation.wrt.join(", ");
    format!("with respect to {wrt}")
}

/// The explanation as Unicode text: the forward pass (one line per operation with its
/// shape), the backward pass (one line per adjoint with its rule; a node used several
/// times lists each path), and the gradients written over the inputs.
pub fn to_text(explanation: &Explanation) -> String {
    let mut out = String::new();
    let output = output_name(explanation);
    out.push_str(&format!(
        "Computation graph of {output} = {} {}\n",
        unicode(&explanation.loss),
        describe_inputs(explanation)
    ));
    out.push_str("(operations named from the output down; shared subexpressions are one node)\n\n");

    out.push_str("Forward pass\n");
    let forward = explanation.forward();
    let lines: Vec<(String, String)> = forward
        .iter()
        .map(|n| {
            (
                format!("{} = {}", n.name, unicode(&n.definition)),
                shape_unicode(n.shape()),
            )
        })
        .collect();
    let width = lines
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    for (line, shape) in &lines {
        out.push_str(&format!("  {}    {shape}\n", pad(line, width)));
    }

    out.push_str("\nBackward pass\n");
    let mut rows: Vec<(String, String)> = Vec::new();
    for step in &explanation.steps {
        let Some(node) = explanation.nodes.get(step.node) else {
            continue;
        };
        let mut line = adjoint_name(explanation, node);
        for side in step_sides(step, Style::Unicode) {
            line.push_str(" = ");
            line.push_str(&side);
        }
        rows.push((line, step.rule.words.clone()));
        if step.contributions.len() > 1 {
            for c in &step.contributions {
                let from = explanation.nodes.get(c.from);
                let via = from
                    .map(|f| format!("    via {} = {}: ", f.name, unicode(&f.definition)))
                    .unwrap_or_default();
                rows.push((
                    format!("{via}{} = {}", unicode(&c.template), unicode(&c.value)),
                    c.rule.words.clone(),
                ));
            }
        }
    }
    let width = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    for (line, rule) in &rows {
        out.push_str(&format!("  {}    {rule}\n", pad(line, width)));
    }

    out.push_str("\nGradient\n");
    for var in &explanation.wrt {
        if let Some(step) = explanation.gradient(var) {
            let lhs = format!("∂{output}/∂{var}");
            out.push_str(&format!("  {lhs} = {}\n", unicode(&step.adjoint)));
            let expanded = unicode(&step.expanded);
            if expanded != unicode(&step.adjoint) {
                out.push_str(&format!(
                    "  {} = {expanded}\n",
                    " ".repeat(lhs.chars().count())
                ));
            }
        }
    }
    out
}

/// The explanation as a LaTeX `align*` block (needs `amsmath`): forward pass, backward
/// pass with the rules in `\text{…}`, and the gradients.
pub fn to_latex(explanation: &Explanation) -> String {
    let output = output_name(explanation);
    let output_latex = latex_name(output);
    let mut out = String::from("\\begin{align*}\n");
    out.push_str(&format!(
        "&\\text{{Forward pass of }} {output_latex} = {}\\\\\n",
        latex(&explanation.loss)
    ));
    for n in explanation.forward() {
        out.push_str(&format!(
            "{} &= {} && {} \\\\\n",
            latex_name(&n.name),
            latex(&n.definition),
            shape_latex(n.shape())
        ));
    }
    out.push_str("&\\text{Backward pass} \\\\\n");
    for step in &explanation.steps {
        let Some(node) = explanation.nodes.get(step.node) else {
            continue;
        };
        let lhs = latex_name(&adjoint_name(explanation, node));
        let sides = step_sides(step, Style::Latex).join(" = ");
        out.push_str(&format!("{lhs} &= {sides} && {} \\\\\n", step.rule.latex));
    }
    out.push_str("&\\text{Gradient} \\\\\n");
    let vars: Vec<&String> = explanation.wrt.iter().collect();
    for (k, var) in vars.iter().enumerate() {
        if let Some(step) = explanation.gradient(var) {
            let lhs = latex_name(&format!("∂{output}/∂{var}"));
            let mut line = format!("{lhs} &= {}", latex(&step.adjoint));
            let expanded = latex(&step.expanded);
            if expanded != latex(&step.adjoint) {
                line.push_str(&format!(" = {expanded}"));
            }
            if k + 1 < vars.len() {
                line.push_str(" \\\\");
            }
            out.push_str(&line);
            out.push('\n');
        }
    }
    out.push_str("\\end{align*}\n");
    out
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Output => "output",
        Role::Intermediate => "intermediate",
        Role::Variable => "variable",
        Role::Constant => "constant",
    }
}

/// The explanation as one JSON object: `nodes` (name, role, definition, shape, operands),
/// `forward` (names in computation order), `backward` (each adjoint with its rule, shares
/// and expanded form) and `gradients`.
pub fn to_json(explanation: &Explanation) -> serde_json::Value {
    let name = |i: usize| {
        explanation
            .nodes
            .get(i)
            .map(|n| n.name.clone())
            .unwrap_or_default()
    };
    let nodes: Vec<serde_json::Value> = explanation
        .nodes
        .iter()
        .map(|n| {
            json!({
                "name": n.name,
                "role": role_name(n.role),
                "let": n.named_by_let,
                "definition": unicode(&n.definition),
                "latex": latex(&n.definition),
                "value": unicode(&n.value),
                "shape": shape_unicode(n.shape()),
                "operands": n.children.iter().map(|&c| name(c)).collect::<Vec<_>>(),
            })
        })
        .collect();
    let backward: Vec<serde_json::Value> = explanation
        .steps
        .iter()
        .map(|s| {
            json!({
                "node": name(s.node),
                "adjoint": unicode(&s.adjoint),
                "latex": latex(&s.adjoint),
                "expanded": unicode(&s.expanded),
                "rule": s.rule,
                "paths": s.contributions.iter().map(|c| json!({
                    "from": name(c.from),
                    "template": unicode(&c.template),
                    "value": unicode(&c.value),
                    "rule": c.rule,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let gradients: Vec<serde_json::Value> = explanation
        .wrt
        .iter()
        .filter_map(|v| {
            explanation.gradient(v).map(|s| {
                json!({
                    "wrt": v,
                    "gradient": unicode(&s.adjoint),
                    "expanded": unicode(&s.expanded),
                    "latex": latex(&s.expanded),
                })
            })
        })
        .collect();
    json!({
        "output": output_name(explanation),
        "loss": unicode(&explanation.loss),
        "wrt": explanation.wrt,
        "nodes": nodes,
        "forward": explanation.forward().iter().map(|n| n.name.clone()).collect::<Vec<_>>(),
        "backward": backward,
        "gradients": gradients,
    })
}
