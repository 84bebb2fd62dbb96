//! The backpropagation rules in words, each in Unicode and in LaTeX. `C` is the node, `A`
//! and `B` its operands, ∂L/∂C the node's adjoint.

use super::render::latex_name;
use super::Rule;
use crate::expr::Func;

fn dl(of: &str) -> String {
    format!("\\frac{{\\partial L}}{{\\partial {of}}}")
}

fn rule(words: &str, latex: String) -> Rule {
    Rule {
        words: words.to_string(),
        latex,
    }
}

/// The seed: the output's adjoint.
pub(super) fn seed(output: &str) -> Rule {
    let name = latex_name(output);
    Rule {
        words: format!("the output's adjoint is ∂{output}/∂{output} = 1"),
        latex: format!(
            "\\text{{the output's adjoint is }} \\frac{{\\partial {name}}}{{\\partial {name}}} = 1"
        ),
    }
}

/// A variable that does not occur.
pub(super) fn absent(name: &str) -> Rule {
    Rule {
        words: format!("{name} does not occur: its adjoint is 0"),
        latex: format!(
            "{} \\text{{ does not occur: its adjoint is }} 0",
            latex_name(name)
        ),
    }
}

/// Several uses of one node.
pub(super) fn paths(name: &str, count: usize) -> Rule {
    let (times, paths) = match count {
        2 => ("twice".to_string(), "the two paths'".to_string()),
        3 => ("three times".to_string(), "the three paths'".to_string()),
        k => (format!("{k} times"), format!("the {k} paths'")),
    };
    Rule {
        words: format!("{name} appears {times}: {paths} adjoints add"),
        latex: format!(
            "{} \\text{{ appears {times}: {paths} adjoints add}}",
            latex_name(name)
        ),
    }
}

/// Appends the broadcast note to a rule.
pub(super) fn broadcast(base: Rule) -> Rule {
    Rule {
        words: format!("{}, summed over the broadcast entries", base.words),
        latex: format!(
            "{} \\text{{, summed over the broadcast entries}}",
            base.latex
        ),
    }
}

pub(super) fn sum() -> Rule {
    rule(
        "sum passes the adjoint to both terms",
        "\\text{sum passes the adjoint to both terms}".into(),
    )
}

pub(super) fn difference_first() -> Rule {
    rule(
        "difference passes the adjoint to the first term",
        "\\text{difference passes the adjoint to the first term}".into(),
    )
}

pub(super) fn difference_second() -> Rule {
    rule(
        "difference passes the negated adjoint to the second term",
        "\\text{difference passes the negated adjoint to the second term}".into(),
    )
}

pub(super) fn negation() -> Rule {
    rule(
        "negation: ∂L/∂A = −∂L/∂C",
        format!("\\text{{negation: }} {} = -{}", dl("A"), dl("C")),
    )
}

pub(super) fn product_left() -> Rule {
    rule(
        "product C = AB: ∂L/∂A = (∂L/∂C)Bᵀ",
        format!(
            "\\text{{product }} C = AB\\text{{: }} {} = {} B^\\top",
            dl("A"),
            dl("C")
        ),
    )
}

pub(super) fn product_right() -> Rule {
    rule(
        "product C = AB: ∂L/∂B = Aᵀ(∂L/∂C)",
        format!(
            "\\text{{product }} C = AB\\text{{: }} {} = A^\\top {}",
            dl("B"),
            dl("C")
        ),
    )
}

pub(super) fn scale_factor() -> Rule {
    rule(
        "scaling C = αB: ∂L/∂α = tr((∂L/∂C)ᵀB)",
        format!(
            "\\text{{scaling }} C = \\alpha B\\text{{: }} {} = \\operatorname{{tr}}\\left({}^\\top B\\right)",
            dl("\\alpha"),
            dl("C")
        ),
    )
}

pub(super) fn scale_operand() -> Rule {
    rule(
        "scaling C = αB: ∂L/∂B = α(∂L/∂C)",
        format!(
            "\\text{{scaling }} C = \\alpha B\\text{{: }} {} = \\alpha {}",
            dl("B"),
            dl("C")
        ),
    )
}

pub(super) fn quotient_numerator() -> Rule {
    rule(
        "quotient C = A/β: ∂L/∂A = (∂L/∂C)/β",
        format!(
            "\\text{{quotient }} C = A/\\beta\\text{{: }} {} = {}/\\beta",
            dl("A"),
            dl("C")
        ),
    )
}

pub(super) fn quotient_denominator() -> Rule {
    rule(
        "quotient C = A/β: ∂L/∂β = −tr((∂L/∂C)ᵀA)/β²",
        format!(
            "\\text{{quotient }} C = A/\\beta\\text{{: }} {} = -\\operatorname{{tr}}\\left({}^\\top A\\right)/\\beta^{{2}}",
            dl("\\beta"),
            dl("C")
        ),
    )
}

pub(super) fn elementwise_quotient_numerator() -> Rule {
    rule(
        "elementwise quotient C = A ⊘ B: ∂L/∂A = (∂L/∂C) ⊘ B",
        format!(
            "\\text{{elementwise quotient }} C = A \\oslash B\\text{{: }} {} = {} \\oslash B",
            dl("A"),
            dl("C")
        ),
    )
}

pub(super) fn elementwise_quotient_denominator() -> Rule {
    rule(
        "elementwise quotient C = A ⊘ B: ∂L/∂B = −(∂L/∂C) ⊙ A ⊘ (B ⊙ B)",
        format!(
            "\\text{{elementwise quotient }} C = A \\oslash B\\text{{: }} {} = -{} \\odot A \\oslash (B \\odot B)",
            dl("B"),
            dl("C")
        ),
    )
}

pub(super) fn hadamard() -> Rule {
    rule(
        "elementwise product C = A ⊙ B: ∂L/∂A = (∂L/∂C) ⊙ B",
        format!(
            "\\text{{elementwise product }} C = A \\odot B\\text{{: }} {} = {} \\odot B",
            dl("A"),
            dl("C")
        ),
    )
}

pub(super) fn transpose() -> Rule {
    rule(
        "transpose: ∂L/∂A = (∂L/∂C)ᵀ",
        format!(
            "\\text{{transpose: }} {} = \\left({}\\right)^\\top",
            dl("A"),
            dl("C")
        ),
    )
}

pub(super) fn inverse() -> Rule {
    rule(
        "inverse C = A⁻¹: ∂L/∂A = −Cᵀ(∂L/∂C)Cᵀ",
        format!(
            "\\text{{inverse }} C = A^{{-1}}\\text{{: }} {} = -C^\\top {} C^\\top",
            dl("A"),
            dl("C")
        ),
    )
}

pub(super) fn power() -> Rule {
    rule(
        "power C = Aᵏ: ∂L/∂A = Σⱼ (Aᵀ)ʲ(∂L/∂C)(Aᵀ)ᵏ⁻¹⁻ʲ",
        format!(
            "\\text{{power }} C = A^{{k}}\\text{{: }} {} = \\sum_{{j}} (A^\\top)^{{j}} {} (A^\\top)^{{k-1-j}}",
            dl("A"),
            dl("C")
        ),
    )
}

pub(super) fn trace() -> Rule {
    rule(
        "trace: ∂L/∂A = (∂L/∂C)I",
        format!("\\text{{trace: }} {} = {} I", dl("A"), dl("C")),
    )
}

pub(super) fn determinant() -> Rule {
    rule(
        "determinant C = |A|: ∂L/∂A = (∂L/∂C)CA⁻ᵀ",
        format!(
            "\\text{{determinant }} C = |A|\\text{{: }} {} = {} C A^{{-\\top}}",
            dl("A"),
            dl("C")
        ),
    )
}

pub(super) fn log_determinant() -> Rule {
    rule(
        "log-determinant C = log|A|: ∂L/∂A = (∂L/∂C)A⁻ᵀ",
        format!(
            "\\text{{log-determinant }} C = \\log|A|\\text{{: }} {} = {} A^{{-\\top}}",
            dl("A"),
            dl("C")
        ),
    )
}

pub(super) fn norm_sq() -> Rule {
    rule(
        "squared norm C = ‖A‖²: ∂L/∂A = 2(∂L/∂C)A",
        format!(
            "\\text{{squared norm }} C = \\|A\\|^{{2}}\\text{{: }} {} = 2 {} A",
            dl("A"),
            dl("C")
        ),
    )
}

pub(super) fn diag() -> Rule {
    rule(
        "diag: ∂L/∂A = diag(∂L/∂C)",
        format!(
            "\\text{{diag: }} {} = \\operatorname{{diag}}\\left({}\\right)",
            dl("A"),
            dl("C")
        ),
    )
}

pub(super) fn sum_entries() -> Rule {
    rule(
        "sum of entries: ∂L/∂A = (∂L/∂C)𝟙𝟙ᵀ",
        format!(
            "\\text{{sum of entries: }} {} = {} \\mathbf{{1}}\\mathbf{{1}}^\\top",
            dl("A"),
            dl("C")
        ),
    )
}

pub(super) fn opaque(name: &str) -> Rule {
    let latex = latex_name(name);
    Rule {
        words: format!("opaque function C = {name}(A): ∂L/∂A = (∂L/∂C)∇{name}(A)"),
        latex: format!(
            "\\text{{opaque function }} C = {latex}(A)\\text{{: }} {} = {} \\nabla {latex}(A)",
            dl("A"),
            dl("C")
        ),
    }
}

pub(super) fn elementwise(f: Func) -> Rule {
    let (words, latex) = match f {
        Func::Sigma => (
            "elementwise σ: ∂L/∂A = (∂L/∂C) ⊙ σ(A) ⊙ (1 − σ(A))",
            "\\sigma(A) \\odot (1 - \\sigma(A))",
        ),
        Func::Exp => ("elementwise exp: ∂L/∂A = (∂L/∂C) ⊙ exp(A)", "\\exp(A)"),
        Func::Log => ("elementwise log: ∂L/∂A = (∂L/∂C) ⊙ (1/A)", "(1/A)"),
        Func::Tanh => (
            "elementwise tanh: ∂L/∂A = (∂L/∂C) ⊙ (1 − tanh(A) ⊙ tanh(A))",
            "(1 - \\tanh(A) \\odot \\tanh(A))",
        ),
        Func::Swish => (
            "elementwise swish: ∂L/∂A = (∂L/∂C) ⊙ (σ(A) + A ⊙ σ(A) ⊙ (1 − σ(A)))",
            "(\\sigma(A) + A \\odot \\sigma(A) \\odot (1 - \\sigma(A)))",
        ),
        Func::Relu => (
            "elementwise relu: ∂L/∂A = (∂L/∂C) ⊙ step(A)",
            "\\operatorname{step}(A)",
        ),
        Func::Softplus => ("elementwise softplus: ∂L/∂A = (∂L/∂C) ⊙ σ(A)", "\\sigma(A)"),
        Func::Sqrt => (
            "elementwise sqrt: ∂L/∂A = (∂L/∂C) ⊙ 1/(2 sqrt(A))",
            "1/(2\\sqrt{A})",
        ),
        Func::Step => ("elementwise step: flat, no adjoint flows", "0"),
        Func::Sin => ("elementwise sin: ∂L/∂A = (∂L/∂C) ⊙ cos(A)", "\\cos(A)"),
        Func::Cos => ("elementwise cos: ∂L/∂A = −(∂L/∂C) ⊙ sin(A)", "(-\\sin(A))"),
        Func::Tan => (
            "elementwise tan: ∂L/∂A = (∂L/∂C) ⊙ (1 + tan(A) ⊙ tan(A))",
            "(1 + \\tan(A) \\odot \\tan(A))",
        ),
        Func::Arcsin => (
            "elementwise arcsin: ∂L/∂A = (∂L/∂C) ⊘ sqrt(1 − A ⊙ A)",
            "1 \\oslash \\sqrt{1 - A \\odot A}",
        ),
        Func::Arccos => (
            "elementwise arccos: ∂L/∂A = −(∂L/∂C) ⊘ sqrt(1 − A ⊙ A)",
            "(-1) \\oslash \\sqrt{1 - A \\odot A}",
        ),
        Func::Arctan => (
            "elementwise arctan: ∂L/∂A = (∂L/∂C) ⊘ (1 + A ⊙ A)",
            "1 \\oslash (1 + A \\odot A)",
        ),
        Func::Sinh => ("elementwise sinh: ∂L/∂A = (∂L/∂C) ⊙ cosh(A)", "\\cosh(A)"),
        Func::Cosh => ("elementwise cosh: ∂L/∂A = (∂L/∂C) ⊙ sinh(A)", "\\sinh(A)"),
        Func::Abs => (
            "elementwise abs: ∂L/∂A = (∂L/∂C) ⊙ sign(A), away from 0",
            "\\operatorname{sign}(A)",
        ),
        Func::Sign => ("elementwise sign: flat away from 0, no adjoint flows", "0"),
    };
    let name = match f {
        Func::Sigma => "\\sigma".to_string(),
        other => format!("\\operatorname{{{}}}", other.name()),
    };
    Rule {
        words: words.to_string(),
        latex: format!(
            "\\text{{elementwise }} {name}\\text{{: }} {} = {} \\odot {latex}",
            dl("A"),
            dl("C")
        ),
    }
}

pub(super) fn norm() -> Rule {
    rule(
        "norm C = ‖A‖: ∂L/∂A = (∂L/∂C) A/‖A‖, away from A = 0",
        format!(
            "\\text{{norm }} C = \\|A\\|\\text{{: }} {} = {} A / \\|A\\|",
            dl("A"),
            dl("C")
        ),
    )
}

pub(super) fn norm_one() -> Rule {
    rule(
        "1-norm C = ‖A‖₁: ∂L/∂A = (∂L/∂C) sign(A), away from zero entries",
        format!(
            "\\text{{1-norm }} C = \\|A\\|_1\\text{{: }} {} = {} \\operatorname{{sign}}(A)",
            dl("A"),
            dl("C")
        ),
    )
}

pub(super) fn elementwise_power() -> Rule {
    rule(
        "elementwise power C = A^{∘q}: ∂L/∂A = q (∂L/∂C) ⊙ A^{∘(q−1)}",
        format!(
            "\\text{{elementwise power }} C = A^{{\\circ q}}\\text{{: }} {} = q {} \\odot A^{{\\circ (q-1)}}",
            dl("A"),
            dl("C")
        ),
    )
}

pub(super) fn symbolic_power() -> Rule {
    rule(
        "power C = Aᵏ (k an integer symbol, under a trace): ∂L/∂A = k (Aᵏ⁻¹)ᵀ (∂L/∂C)",
        format!(
            "\\text{{power }} C = A^{{k}}\\text{{: }} {} = k \\left(A^{{k-1}}\\right)^\\top {}",
            dl("A"),
            dl("C")
        ),
    )
}

pub(super) fn softmax() -> Rule {
    rule(
        "softmax C = softmax(A): ∂L/∂A = C ⊙ (∂L/∂C) − C Cᵀ(∂L/∂C), the Jacobian diag(C) − CCᵀ",
        format!(
            "\\text{{softmax }} C = \\operatorname{{softmax}}(A)\\text{{: }} {} = \\left(\\operatorname{{diag}}(C) - C C^\\top\\right) {}",
            dl("A"),
            dl("C")
        ),
    )
}

pub(super) fn kron_left() -> Rule {
    rule(
        "Kronecker product C = A ⊗ B: ∂L/∂A has entry (i, j) ⟨(∂L/∂C)ᵢⱼ, B⟩, the block (i, j) of ∂L/∂C against B: (I ⊗ vec(I)ᵀ)((∂L/∂C) ⊗ I)(I ⊗ vec(B))",
        format!(
            "\\text{{Kronecker }} C = A \\otimes B\\text{{: }} {} = (I \\otimes \\operatorname{{vec}}(I)^\\top)\\left({} \\otimes I\\right)(I \\otimes \\operatorname{{vec}}(B))",
            dl("A"),
            dl("C")
        ),
    )
}

pub(super) fn kron_right() -> Rule {
    rule(
        "Kronecker product C = A ⊗ B: ∂L/∂B = Σᵢⱼ Aᵢⱼ (∂L/∂C)ᵢⱼ, the blocks of ∂L/∂C weighted by A: (vec(I)ᵀ ⊗ I)(I ⊗ ∂L/∂C)(vec(Aᵀ) ⊗ I)",
        format!(
            "\\text{{Kronecker }} C = A \\otimes B\\text{{: }} {} = (\\operatorname{{vec}}(I)^\\top \\otimes I)\\left(I \\otimes {}\\right)(\\operatorname{{vec}}(A^\\top) \\otimes I)",
            dl("B"),
            dl("C")
        ),
    )
}

pub(super) fn vectorize() -> Rule {
    rule(
        "vec C = vec(A): ∂L/∂A is ∂L/∂C put back in A's shape, column by column: (vec(I)ᵀ ⊗ I)(I ⊗ ∂L/∂C)",
        format!(
            "\\text{{vec }} C = \\operatorname{{vec}}(A)\\text{{: }} {} = (\\operatorname{{vec}}(I)^\\top \\otimes I)\\left(I \\otimes {}\\right)",
            dl("A"),
            dl("C")
        ),
    )
}

pub(super) fn logsumexp() -> Rule {
    rule(
        "logsumexp C = logsumexp(A): ∂L/∂A = (∂L/∂C) softmax(A)",
        format!(
            "\\text{{logsumexp }} C = \\operatorname{{logsumexp}}(A)\\text{{: }} {} = {} \\operatorname{{softmax}}(A)",
            dl("A"),
            dl("C")
        ),
    )
}
