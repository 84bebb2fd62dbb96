//! What a person types: the LaTeX-style escapes that the REPL's Tab and the web page's
//! expression box turn into Unicode (`\alpha` → α, `\T` → ᵀ). One table, so that both
//! faces offer the same ones.

/// The escapes and the Unicode each becomes.
pub const ESCAPES: &[(&str, &str)] = &[
    ("\\alpha", "α"),
    ("\\beta", "β"),
    ("\\gamma", "γ"),
    ("\\delta", "δ"),
    ("\\lambda", "λ"),
    ("\\mu", "μ"),
    ("\\sigma", "σ"),
    ("\\Sigma", "Σ"),
    ("\\theta", "θ"),
    ("\\ell", "ℓ"),
    ("\\nabla", "∇"),
    ("\\T", "ᵀ"),
    ("\\inv", "⁻¹"),
    ("\\norm", "‖"),
    ("\\odot", "⊙"),
    ("\\circ", "∘"),
    ("\\oslash", "⊘"),
    ("\\otimes", "⊗"),
    ("\\top", "ᵀ"),
    ("\\half", "½"),
    ("\\sq", "²"),
    ("\\cdot", "·"),
    ("\\minus", "−"),
];
