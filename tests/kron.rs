//! The Kronecker product `A ⊗ B` (ASCII `kron(A, B)`, LaTeX `\otimes`), `vec(A)` and the
//! commutation matrix `K₍ₘ,ₙ₎` in the language: parsing in three spellings, shapes
//! (`mp × nq`), printing that parses back, numeric values, differentials checked against
//! finite differences, and the simplifier's identities.

use matcalc::numeric::{evaluate, Instance};
use matcalc::parse::parse;
use matcalc::print::{render, Style};
use matcalc::session::{Options, Session};
use matcalc::shape;
use matcalc::{Decls, Dim, ExprKind};
use nalgebra::DMatrix;

fn decls(text: &str) -> Decls {
    matcalc::parse::parse_decls(text).expect("declarations parse")
}

#[test]
fn kron_three_spellings_parse_to_one_tree() {
    let unicode = parse("A ⊗ B").unwrap();
    assert!(matches!(unicode.kind, ExprKind::Kron(..)));
    assert_eq!(parse("kron(A, B)").unwrap(), unicode);
    assert_eq!(parse(r"A \otimes B").unwrap(), unicode);
    assert_eq!(parse(r"\operatorname{kron}(A, B)").unwrap(), unicode);
}

#[test]
fn kron_binds_like_hadamard_tighter_than_sums_looser_than_products() {
    assert_eq!(
        parse("AB ⊗ C + D").unwrap(),
        parse("((AB) ⊗ C) + D").unwrap()
    );
    assert_eq!(parse("A ⊗ B ⊗ C").unwrap(), parse("(A ⊗ B) ⊗ C").unwrap());
    assert_eq!(parse("−A ⊗ B").unwrap(), parse("−(A ⊗ B)").unwrap());
}

#[test]
fn kron_shape_is_the_product_of_sizes() {
    let typed = shape::infer(&parse("A ⊗ B").unwrap(), &decls("A: m×n, B: p×q")).unwrap();
    assert_eq!(typed.expr.shape.to_string(), "mp×nq");
    let known = shape::infer(&parse("A ⊗ B").unwrap(), &decls("A: 2×3, B: 4×5")).unwrap();
    assert_eq!(known.expr.shape.to_string(), "8×15");
    let vector = shape::infer(&parse("vec(X)").unwrap(), &decls("X: m×n")).unwrap();
    assert_eq!(vector.expr.shape.to_string(), "mn×1");
}

#[test]
fn kron_sizes_unify_through_products() {
    // x must have the size of the Kronecker product's rows and columns.
    let typed = shape::infer(&parse("xᵀ(A ⊗ B)x").unwrap(), &decls("A: n×n, B: m×m")).unwrap();
    assert_eq!(typed.expr.shape.to_string(), "scalar");
    assert_eq!(typed.vars["x"].shape.to_string(), "mn×1");
    // Undeclared factors get named sizes, and the product reads in their names.
    let free = shape::infer(&parse("tr(A ⊗ B)").unwrap(), &Decls::new()).unwrap();
    assert_eq!(free.expr.shape.to_string(), "scalar");
}

#[test]
fn kron_size_clash_is_an_error_with_a_span() {
    let error =
        shape::infer(&parse("xᵀ(A ⊗ B)").unwrap(), &decls("A: 2×2, B: 3×3, x: 5")).unwrap_err();
    assert_eq!(error.to_string(), "cannot multiply 1×5 by 6×6");
    // A known product cannot tell the sizes of free factors.
    let error = shape::infer(&parse("xᵀ(A ⊗ B)x").unwrap(), &decls("x: 6")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "A ⊗ B: the sizes of its factors cannot be inferred from 6"
    );
    assert!(error.diagnostic().render("xᵀ(A ⊗ B)x").contains("^^^^^"));
}

#[test]
fn kron_prints_and_parses_back_in_every_spelling() {
    for text in [
        "A ⊗ B",
        "(A + B) ⊗ C",
        "A ⊗ (B ⊗ C)",
        "(A ⊙ B) ⊗ C",
        "A ⊙ (B ⊗ C)",
        "(A ⊗ B)ᵀ",
        "(A ⊗ B)⁻¹",
        "(A ⊗ B)(C ⊗ D)",
        "tr(A ⊗ B)",
        "vec(AXB)",
        "(Bᵀ ⊗ A)vec(X)",
        "K₍ₘ,ₙ₎vec(X)",
        "K_{m,n}",
        "−A ⊗ B",
        "(−A) ⊗ B",
        "2A ⊗ B",
    ] {
        let expr = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        for style in [Style::Unicode, Style::Ascii, Style::Latex] {
            let printed = render(&expr, style);
            let back = parse(&printed).unwrap_or_else(|e| panic!("{text} → {printed}: {e}"));
            assert_eq!(back, expr, "{text} printed {printed:?} in {style:?}");
        }
    }
    let expr = parse("kron(A, B)").unwrap();
    assert_eq!(render(&expr, Style::Unicode), "A ⊗ B");
    assert_eq!(render(&expr, Style::Ascii), "kron(A, B)");
    assert_eq!(render(&expr, Style::Latex), r"A \otimes B");
}

#[test]
fn kron_vec_and_commutation_evaluate_as_defined() {
    // (A ⊗ B)vec(X) = vec(BXAᵀ), and with X: 3×2, K₍₃,₂₎vec(X) = vec(Xᵀ).
    let typed = shape::infer(
        &parse("(A ⊗ B) vec(X) − vec(BXAᵀ) + K_{3,2} vec(X) − vec(Xᵀ)").unwrap(),
        &decls("A: 2×2, B: 3×3, X: 3×2"),
    )
    .unwrap();
    let mut values = std::collections::BTreeMap::new();
    values.insert(
        "A".to_string(),
        DMatrix::from_column_slice(2, 2, &[1.0, -2.0, 0.5, 3.0]),
    );
    values.insert(
        "B".to_string(),
        DMatrix::from_fn(3, 3, |i, j| (i as f64) - 2.0 * (j as f64) + 0.25),
    );
    values.insert(
        "X".to_string(),
        DMatrix::from_fn(3, 2, |i, j| (i * i) as f64 + 1.5 * j as f64),
    );
    let value = evaluate(&typed.expr, &Instance::new(Default::default(), values)).unwrap();
    assert_eq!(value.shape(), (6, 1));
    assert!(value.amax() < 1e-12, "{value}");
}

#[test]
fn kron_commutation_matrix_transposes_vec() {
    let k = matcalc::numeric::commutation(2, 3);
    let a = DMatrix::from_fn(2, 3, |i, j| (10 * i + j) as f64);
    let vec_a = DMatrix::from_column_slice(6, 1, a.as_slice());
    let at = a.transpose();
    let vec_at = DMatrix::from_column_slice(6, 1, at.as_slice());
    assert_eq!(k * vec_a, vec_at);
}

#[test]
fn kron_differential_is_checked() {
    let session = {
        let mut session = Session::new();
        session.declare("A: m×n, B: p×q").unwrap();
        session
    };
    let options = Options {
        check: true,
        ..Options::standard()
    };
    for (expr, wrt, expected) in [
        ("A ⊗ B", "A", "dF = dA ⊗ B"),
        ("A ⊗ B", "B", "dF = A ⊗ dB"),
        ("A ⊗ A", "A", "dF = dA ⊗ A + A ⊗ dA"),
        ("vec(A)", "A", "dF = vec(dA)"),
    ] {
        let results = session.derivative(expr, &[wrt], &options).unwrap();
        let result = &results[0];
        assert_eq!(
            result.to_text(Style::Unicode).trim_end(),
            expected,
            "{expr}"
        );
        assert!(
            result.check.as_ref().is_some_and(|v| v.is_pass()),
            "{expr}: {:?}",
            result.check
        );
    }
}

/// Gradients through ⊗ and vec: the adjoint of a Kronecker factor is a partial trace of
/// Ḡ against the other factor (written with vec(I) and ⊗), that of vec(A) is Ḡ
/// reshaped. Each is checked against finite differences, and a textbook closed form
/// against the same finite differences with `verify`.
#[test]
fn kron_gradient_through_a_kronecker_product() {
    let mut session = Session::new();
    session
        .declare("A: m×n, B: p×q, S: m×m, T: p×p, X: m×n")
        .unwrap();
    let options = Options {
        check: true,
        ..Options::standard()
    };
    let cases = [
        // (A claim's own I would have a size of its own: these are compared as printed.)
        ("tr(S ⊗ T)", "S", ""),
        ("tr(S ⊗ T)", "T", ""),
        ("‖A ⊗ B‖²", "A", "2‖B‖²A"),
        ("‖A ⊗ B‖²", "B", "2‖A‖²B"),
        // log|S ⊗ T| = p log|S| + m log|T|, the sizes written tr(TT⁻¹) = p.
        ("log|S ⊗ T|", "S", "tr(TT⁻¹)S⁻ᵀ"),
        ("log|S ⊗ T|", "T", "tr(SS⁻¹)T⁻ᵀ"),
        ("‖vec(X)‖²", "X", "2X"),
        // No closed form simpler than the partial trace; the check alone holds them.
        ("tr(C(A ⊗ B))", "A", ""),
        ("tr(C(A ⊗ B))", "B", ""),
        ("xᵀ(A ⊗ B)y", "A", ""),
        ("xᵀ(A ⊗ B)y", "B", ""),
        ("aᵀvec(X)", "X", ""),
    ];
    for (expr, wrt, closed) in cases {
        let results = session
            .derivative(expr, &[wrt], &options)
            .unwrap_or_else(|e| panic!("{expr}: {}", e.render()));
        let result = &results[0];
        assert!(
            result.check.as_ref().is_some_and(|v| v.is_pass()),
            "{expr} by {wrt}: {} {:?}",
            result.to_text(Style::Unicode),
            result.check
        );
        if !closed.is_empty() {
            let verdict = session
                .verify(expr, wrt, closed, &Options::standard())
                .unwrap_or_else(|e| panic!("{closed}: {}", e.render()))
                .verdict;
            assert!(verdict.is_pass(), "{expr} by {wrt}: {closed}: {verdict:?}");
        }
    }
    for (wrt, printed) in [("S", "tr(T)I"), ("T", "tr(S)I")] {
        let results = session.derivative("tr(S ⊗ T)", &[wrt], &options).unwrap();
        assert_eq!(results[0].text(), printed);
    }
    // The partial trace, as printed: entry (i, j) of the adjoint is ⟨Ḡᵢⱼ, B⟩.
    let results = session
        .derivative("tr(C(A ⊗ B))", &["A"], &options)
        .unwrap();
    assert_eq!(
        results[0].text(),
        "(I ⊗ vec(I)ᵀ)(Cᵀ ⊗ I)(I ⊗ vec(B))",
        "{}",
        results[0].to_text(Style::Unicode)
    );
}

#[test]
fn kron_jacobian_of_vector_kronecker_products() {
    let mut session = Session::new();
    session.declare("a: m, x: n").unwrap();
    let options = Options {
        check: true,
        ..Options::standard()
    };
    for expr in ["a ⊗ x", "x ⊗ a", "x ⊗ x", "vec(x aᵀ)", "vec(a xᵀ)"] {
        let results = session.derivative(expr, &["x"], &options).unwrap();
        assert!(
            results[0].check.as_ref().is_some_and(|v| v.is_pass()),
            "{expr}: {} {:?}",
            results[0].to_text(Style::Unicode),
            results[0].check
        );
    }
}

#[test]
fn kron_simplifier_uses_the_identities() {
    let mut session = Session::new();
    session
        .declare("A: n×n, B: m×m, C: n×n, D: m×m, X: m×n")
        .unwrap();
    let options = Options::standard();
    let display = |text: &str| {
        session
            .simplify(text, &options)
            .unwrap()
            .form
            .render(Style::Unicode)
    };
    let compute = |text: &str| {
        let result = session.simplify(text, &options).unwrap();
        render(&result.form.compute, Style::Unicode)
    };
    assert_eq!(display("(A ⊗ B)(C ⊗ D)"), "AC ⊗ BD");
    assert_eq!(display("(Aᵀ ⊗ Bᵀ)ᵀ"), "A ⊗ B");
    assert_eq!(display("(A⁻¹ ⊗ B⁻¹)(A ⊗ B)"), "I");
    assert_eq!(compute("tr(A ⊗ B)"), "tr(A) tr(B)");
    // The vec trick: the compute form multiplies small matrices, not an mn × mn one.
    assert_eq!(compute("(Aᵀ ⊗ B) vec(X)"), "vec(B(XA))");
}

#[test]
fn kron_determinant_of_known_sizes() {
    let mut session = Session::new();
    session.declare("A: 2×2, B: 3×3").unwrap();
    let result = session
        .simplify("det(A ⊗ B)", &Options::standard())
        .unwrap();
    assert_eq!(
        render(&result.form.compute, Style::Unicode),
        "det(A)³ det(B)²"
    );
    let expected = Dim::Known(6);
    assert_eq!(
        shape::infer(&parse("A ⊗ B").unwrap(), &decls("A: 2×2, B: 3×3"))
            .unwrap()
            .expr
            .shape
            .rows,
        expected
    );
}
