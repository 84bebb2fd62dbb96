//! The Matrix Cookbook identities both `tests/cookbook.rs` (derivatives right) and
//! `tests/cookbook_display.rs` (display never larger) run over: one table, two checks.

/// One identity: a name with the Cookbook equation number, the expression and its
/// declarations, the variable, the order, and the Cookbook's closed form.
pub struct Identity {
    pub name: &'static str,
    pub expr: &'static str,
    pub decls: &'static str,
    pub wrt: &'static str,
    pub order: u8,
    pub closed_form: &'static str,
}

pub const fn row(
    name: &'static str,
    expr: &'static str,
    decls: &'static str,
    wrt: &'static str,
    closed_form: &'static str,
) -> Identity {
    Identity {
        name,
        expr,
        decls,
        wrt,
        order: 1,
        closed_form,
    }
}

pub const SQUARE: &str = "X: n×n, A: n×n, B: n×n, C: n×n, D: n×n, V: n×n";
/// The same with X positive definite: a random general X is sometimes nearly singular, and
/// then finite differences of X⁻¹ lose the digits the check needs.
pub const SQUARE_SPD: &str = "X: n×n spd, A: n×n, B: n×n, C: n×n, D: n×n, V: n×n";

#[rustfmt::skip]
pub const IDENTITIES: &[Identity] = &[
    // §2 basic differential rules, as differentials in dX (written V).
    row("(36) d tr(X) = tr(dX), via d(X + tr(X)I)", "X + tr(X)I", SQUARE, "X", "V + tr(V)I"),
    row("(37) d(XY) = dX Y + X dY", "XAX", SQUARE, "X", "VAX + XAV"),
    row("(38) d(X∘Y) = dX∘Y + X∘dY", "X ⊙ AX", SQUARE, "X", "V ⊙ AX + X ⊙ AV"),
    row("(40) d(X⁻¹) = −X⁻¹ dX X⁻¹", "X⁻¹", SQUARE_SPD, "X", "−X⁻¹VX⁻¹"),
    row("(42) d det(X) = det(X) tr(X⁻¹dX), as d(det(X)A)", "det(X)A", SQUARE, "X", "det(X) tr(X⁻¹V) A"),
    row("(43) d log det(X) = tr(X⁻¹dX), as d(log|X| A)", "log|X| A", SQUARE_SPD, "X", "tr(X⁻¹V) A"),
    row("(44) d(Xᵀ) = (dX)ᵀ", "XᵀA", SQUARE, "X", "VᵀA"),
    // §2.1 determinants.
    row("(49) ∂det(X)/∂X = det(X)X⁻ᵀ", "det(X)", SQUARE, "X", "det(X)X⁻ᵀ"),
    row("(51) ∂det(AXB)/∂X = det(AXB)X⁻ᵀ", "det(AXB)", SQUARE, "X", "det(AXB)X⁻ᵀ"),
    row("(55) ∂log det(XᵀX)/∂X = 2(X⁺)ᵀ", "log|XᵀX|", "X: n×n", "X", "2X(XᵀX)⁻¹"),
    row("(57) ∂log|det X|/∂X = X⁻ᵀ", "log|X|", SQUARE, "X", "(Xᵀ)⁻¹"),
    row("(58) ∂det(Xᵏ)/∂X = k det(Xᵏ)X⁻ᵀ", "det(X³)", SQUARE, "X", "3det(X³)X⁻ᵀ"),
    // §2.2 inverses.
    row("(61) ∂aᵀX⁻¹b/∂X = −X⁻ᵀabᵀX⁻ᵀ", "aᵀX⁻¹b", "X: n×n, a: n, b: n", "X", "−X⁻ᵀabᵀX⁻ᵀ"),
    row("(62) ∂det(X⁻¹)/∂X = −det(X⁻¹)X⁻ᵀ", "det(X⁻¹)", SQUARE, "X", "−det(X⁻¹)X⁻ᵀ"),
    row("(63) ∂tr(AX⁻¹B)/∂X = −(X⁻¹BAX⁻¹)ᵀ", "tr(AX⁻¹B)", SQUARE, "X", "−(X⁻¹BAX⁻¹)ᵀ"),
    row("(64) ∂tr((X + A)⁻¹)/∂X = −((X + A)⁻¹(X + A)⁻¹)ᵀ", "tr((X + A)⁻¹)", SQUARE, "X", "−((X + A)⁻¹(X + A)⁻¹)ᵀ"),
    // §2.4.1 first order.
    row("(69) ∂xᵀa/∂x = a", "xᵀa", "x: n, a: n", "x", "a"),
    row("(69) ∂aᵀx/∂x = a", "aᵀx", "x: n, a: n", "x", "a"),
    row("(70) ∂aᵀXb/∂X = abᵀ", "aᵀXb", "X: m×n, a: m, b: n", "X", "abᵀ"),
    row("(71) ∂aᵀXᵀb/∂X = baᵀ", "aᵀXᵀb", "X: m×n, a: n, b: m", "X", "baᵀ"),
    row("(72) ∂aᵀXa/∂X = aaᵀ", "aᵀXa", "X: n×n, a: n", "X", "aaᵀ"),
    row("(72) ∂aᵀXᵀa/∂X = aaᵀ", "aᵀXᵀa", "X: n×n, a: n", "X", "aaᵀ"),
    // §2.4.2 second order.
    row("(77) ∂bᵀXᵀXc/∂X = X(bcᵀ + cbᵀ)", "bᵀXᵀXc", "X: m×n, b: n, c: n", "X", "X(bcᵀ + cbᵀ)"),
    row("(78) ∂(Bx + b)ᵀC(Dx + d)/∂x = BᵀC(Dx + d) + DᵀCᵀ(Bx + b)", "(Bx + b)ᵀC(Dx + d)", "x: n, B: m×n, b: m, C: m×m, D: m×n, d: m", "x", "BᵀC(Dx + d) + DᵀCᵀ(Bx + b)"),
    row("(81) ∂xᵀBx/∂x = (B + Bᵀ)x", "xᵀBx", "x: n, B: n×n", "x", "(B + Bᵀ)x"),
    Identity { name: "(81) Hessian of xᵀBx = B + Bᵀ", expr: "xᵀBx", decls: "x: n, B: n×n", wrt: "x", order: 2, closed_form: "B + Bᵀ" },
    row("(82) ∂bᵀXᵀDXc/∂X = DᵀXbcᵀ + DXcbᵀ", "bᵀXᵀDXc", "X: m×n, D: m×m, b: n, c: n", "X", "DᵀXbcᵀ + DXcbᵀ"),
    row("(83) ∂(Xb + c)ᵀD(Xb + c)/∂X = (D + Dᵀ)(Xb + c)bᵀ", "(Xb + c)ᵀD(Xb + c)", "X: m×n, D: m×m, b: n, c: m", "X", "(D + Dᵀ)(Xb + c)bᵀ"),
    row("(84) ∂(x − As)ᵀW(x − As)/∂s = −2AᵀW(x − As), W sym", "(x − As)ᵀW(x − As)", "x: m, A: m×n, s: n, W: m×m sym", "s", "−2AᵀW(x − As)"),
    row("(85) ∂(x − s)ᵀW(x − s)/∂x = 2W(x − s), W sym", "(x − s)ᵀW(x − s)", "x: n, s: n, W: n×n sym", "x", "2W(x − s)"),
    row("(88) ∂(x − As)ᵀW(x − As)/∂A = −2W(x − As)sᵀ, W sym", "(x − As)ᵀW(x − As)", "x: m, A: m×n, s: n, W: m×m sym", "A", "−2W(x − As)sᵀ"),
    // §2.4.3 higher order.
    row("(91) ∂aᵀX³b/∂X = Σ_r (Xʳ)ᵀabᵀ(X²⁻ʳ)ᵀ", "aᵀX³b", "X: n×n, a: n, b: n", "X", "abᵀ(X²)ᵀ + XᵀabᵀXᵀ + (X²)ᵀabᵀ"),
    // §2.5 traces, first order.
    row("(99) ∂tr(X)/∂X = I, written X⁻¹X to give I its size", "tr(X)", SQUARE, "X", "X⁻¹X"),
    row("(100) ∂tr(XA)/∂X = Aᵀ", "tr(XA)", "X: m×n, A: n×m", "X", "Aᵀ"),
    row("(101) ∂tr(AXB)/∂X = AᵀBᵀ", "tr(AXB)", "A: p×m, X: m×n, B: n×p", "X", "AᵀBᵀ"),
    row("(102) ∂tr(AXᵀB)/∂X = BA", "tr(AXᵀB)", "A: p×n, X: m×n, B: m×p", "X", "BA"),
    row("(103) ∂tr(XᵀA)/∂X = A", "tr(XᵀA)", "X: m×n, A: m×n", "X", "A"),
    row("(104) ∂tr(AXᵀ)/∂X = A", "tr(AXᵀ)", "X: m×n, A: m×n", "X", "A"),
    // §2.5 traces, second order.
    row("(106) ∂tr(X²)/∂X = 2Xᵀ", "tr(X²)", SQUARE, "X", "2Xᵀ"),
    row("(107) ∂tr(X²B)/∂X = (XB + BX)ᵀ", "tr(X²B)", SQUARE, "X", "(XB + BX)ᵀ"),
    row("(108) ∂tr(XᵀBX)/∂X = BX + BᵀX", "tr(XᵀBX)", "X: n×m, B: n×n", "X", "BX + BᵀX"),
    row("(111) ∂tr(XBXᵀ)/∂X = XBᵀ + XB", "tr(XBXᵀ)", "X: m×n, B: n×n", "X", "XBᵀ + XB"),
    row("(112) ∂tr(Xᵏ)/∂X = k(Xᵏ⁻¹)ᵀ, k = 5", "tr(X⁵)", SQUARE, "X", "5(X⁴)ᵀ"),
    row("(112) ∂tr(Xᵏ)/∂X = k(Xᵏ⁻¹)ᵀ, k = 8", "tr(X⁸)", SQUARE, "X", "8(X⁷)ᵀ"),
    row("(114) ∂tr(AXBX)/∂X = AᵀXᵀBᵀ + BᵀXᵀAᵀ", "tr(AXBX)", SQUARE, "X", "AᵀXᵀBᵀ + BᵀXᵀAᵀ"),
    row("(115) ∂tr(XᵀX)/∂X = 2X", "tr(XᵀX)", "X: m×n", "X", "2X"),
    row("(115) ∂tr(XXᵀ)/∂X = 2X", "tr(XXᵀ)", "X: m×n", "X", "2X"),
    row("(116) ∂tr(BᵀXᵀCXB)/∂X = CᵀXBBᵀ + CXBBᵀ", "tr(BᵀXᵀCXB)", "X: m×n, B: n×p, C: m×m", "X", "CᵀXBBᵀ + CXBBᵀ"),
    row("(117) ∂tr(XᵀBXC)/∂X = BXC + BᵀXCᵀ", "tr(XᵀBXC)", "X: m×n, B: m×m, C: n×n", "X", "BXC + BᵀXCᵀ"),
    row("(118) ∂tr(AXBXᵀC)/∂X = AᵀCᵀXBᵀ + CAXB", "tr(AXBXᵀC)", "A: p×m, X: m×n, B: n×n, C: m×p", "X", "AᵀCᵀXBᵀ + CAXB"),
    row("(119) ∂tr((AXB + C)(AXB + C)ᵀ)/∂X = 2Aᵀ(AXB + C)Bᵀ", "tr((AXB + C)(AXB + C)ᵀ)", "A: p×m, X: m×n, B: n×q, C: p×q", "X", "2Aᵀ(AXB + C)Bᵀ"),
    // §2.5 traces, higher order and other.
    row("(121) ∂tr(Xᵏ)/∂X = k(Xᵏ⁻¹)ᵀ", "tr(X⁴)", SQUARE, "X", "4(X³)ᵀ"),
    row("(122) ∂tr(AXᵏ)/∂X = Σ_r (XʳAXᵏ⁻ʳ⁻¹)ᵀ", "tr(AX³)", SQUARE, "X", "(AX²)ᵀ + (XAX)ᵀ + (X²A)ᵀ"),
    row("(124) ∂tr(AX⁻¹B)/∂X = −X⁻ᵀAᵀBᵀX⁻ᵀ", "tr(AX⁻¹B)", SQUARE, "X", "−X⁻ᵀAᵀBᵀX⁻ᵀ"),
    row("(126) ∂tr((XᵀCX)⁻¹XᵀBX)/∂X, B, C sym", "tr((XᵀCX)⁻¹(XᵀBX))", "X: n×m, B: n×n sym, C: n×n spd", "X", "−2CX(XᵀCX)⁻¹XᵀBX(XᵀCX)⁻¹ + 2BX(XᵀCX)⁻¹"),
    // §2.6–2.7 norms.
    row("(129) ∂‖x − a‖₂/∂x = (x − a)/‖x − a‖₂", "sqrt(‖x − a‖²)", "x: n, a: n", "x", "(x − a)/sqrt(‖x − a‖²)"),
    row("(131) ∂‖x‖₂²/∂x = 2x", "‖x‖²", "x: n", "x", "2x"),
    row("(132) ∂‖X‖_F²/∂X = 2X", "‖X‖²", "X: m×n", "X", "2X"),
    // §2.8.2 symmetric X, with matcalc's symmetric gradient ½(G + Gᵀ) (see the file doc).
    row("(≈138) ∂tr(AX)/∂X, X sym: ½(A + Aᵀ), Cookbook A + Aᵀ − A∘I", "tr(AX)", "X: n×n sym, A: n×n", "X", "½(A + Aᵀ)"),
    row("(≈140) ∂det(X)/∂X, X spd: det(X)X⁻¹, Cookbook det(X)(2X⁻¹ − X⁻¹∘I)", "det(X)", "X: n×n spd", "X", "det(X)X⁻¹"),
    row("(≈141) ∂log det(X)/∂X, X spd: X⁻¹, Cookbook 2X⁻¹ − X⁻¹∘I", "log|X|", "X: n×n spd", "X", "X⁻¹"),
    // Beyond the Cookbook: the elementwise functions of ANCHORS.md.
    row("σ′(z) = σ(z)(1 − σ(z)): ∂aᵀσ(z)/∂z", "aᵀσ(z)", "a: n, z: n", "z", "a ⊙ σ(z) ⊙ (1 − σ(z))"),
    row("swish′(z) = σ(z) + zσ(z)(1 − σ(z))", "aᵀswish(z)", "a: n, z: n", "z", "a ⊙ (σ(z) + z ⊙ σ(z) ⊙ (1 − σ(z)))"),
    row("softplus′ = σ", "aᵀsoftplus(z)", "a: n, z: n", "z", "a ⊙ σ(z)"),
    row("tanh′ = 1 − tanh²", "aᵀtanh(z)", "a: n, z: n", "z", "a ⊙ (1 − tanh(z) ⊙ tanh(z))"),
    row("relu′ = 1[z > 0]", "aᵀrelu(z)", "a: n, z: n", "z", "diag(step(z))a"),
];
