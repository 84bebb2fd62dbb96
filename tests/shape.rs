//! Shape inference: the sheet's losses, default and declared typing, scalar forcing and
//! every error kind, through a few data-driven helpers.

use std::collections::BTreeMap;
use std::rc::Rc;

use matcalc::parse::{parse_decls, parse_with, ParseOptions};
use matcalc::shape::{self, Error, Op, Typed};
use matcalc::{Decls, Dim, Expr, ExprKind, Func, Props, Shape, VarDecl};

// Builders for trees written by hand, so these tests do not depend on the parser.

fn var(name: &str) -> Rc<Expr> {
    Rc::new(Expr::var(name))
}

fn node(kind: ExprKind) -> Rc<Expr> {
    Rc::new(Expr::new(kind))
}

fn num(n: i64) -> Rc<Expr> {
    Rc::new(Expr::int(n))
}

fn half() -> Rc<Expr> {
    Rc::new(Expr::ratio(1, 2))
}

fn mul(a: Rc<Expr>, b: Rc<Expr>) -> Rc<Expr> {
    node(ExprKind::Mul(a, b))
}

fn add(a: Rc<Expr>, b: Rc<Expr>) -> Rc<Expr> {
    node(ExprKind::Add(a, b))
}

fn sub(a: Rc<Expr>, b: Rc<Expr>) -> Rc<Expr> {
    node(ExprKind::Sub(a, b))
}

fn div(a: Rc<Expr>, b: Rc<Expr>) -> Rc<Expr> {
    node(ExprKind::Div(a, b))
}

fn hadamard(a: Rc<Expr>, b: Rc<Expr>) -> Rc<Expr> {
    node(ExprKind::Hadamard(a, b))
}

fn elem_div(a: Rc<Expr>, b: Rc<Expr>) -> Rc<Expr> {
    node(ExprKind::ElemDiv(a, b))
}

fn neg(a: Rc<Expr>) -> Rc<Expr> {
    node(ExprKind::Neg(a))
}

fn t(a: Rc<Expr>) -> Rc<Expr> {
    node(ExprKind::Transpose(a))
}

fn inv(a: Rc<Expr>) -> Rc<Expr> {
    node(ExprKind::Inverse(a))
}

fn pow(a: Rc<Expr>, k: i64) -> Rc<Expr> {
    node(ExprKind::Pow(a, k))
}

fn tr(a: Rc<Expr>) -> Rc<Expr> {
    node(ExprKind::Trace(a))
}

fn logdet(a: Rc<Expr>) -> Rc<Expr> {
    node(ExprKind::LogDet(a))
}

fn norm_sq(a: Rc<Expr>) -> Rc<Expr> {
    node(ExprKind::NormSq(a))
}

fn diag(a: Rc<Expr>) -> Rc<Expr> {
    node(ExprKind::Diag(a))
}

fn func(f: Func, a: Rc<Expr>) -> Rc<Expr> {
    node(ExprKind::Func(f, a))
}

fn sigma(a: Rc<Expr>) -> Rc<Expr> {
    func(Func::Sigma, a)
}

fn apply(name: &str, a: Rc<Expr>) -> Rc<Expr> {
    node(ExprKind::Apply(name.to_string(), a))
}

fn grad(name: &str, a: Rc<Expr>) -> Rc<Expr> {
    node(ExprKind::Grad(name.to_string(), a))
}

fn identity() -> Rc<Expr> {
    node(ExprKind::Identity)
}

fn ones() -> Rc<Expr> {
    node(ExprKind::Ones)
}

fn differential(name: &str) -> Rc<Expr> {
    node(ExprKind::Differential(name.to_string()))
}

fn sym(name: &str) -> Dim {
    Dim::Sym(name.into())
}

/// Declarations from `(name, rows, cols, props)` rows; `fns` are opaque functions.
fn decls(vars: &[(&str, Dim, Dim, Props)], fns: &[&str]) -> Decls {
    Decls {
        vars: vars
            .iter()
            .map(|(name, rows, cols, props)| {
                let shape = Shape::new(rows.clone(), cols.clone());
                (
                    name.to_string(),
                    VarDecl {
                        shape,
                        props: *props,
                    },
                )
            })
            .collect(),
        fns: fns.iter().map(|name| name.to_string()).collect(),
        sizes: Default::default(),
    }
}

fn plain() -> Props {
    Props::default()
}

// The sheet's losses, written by hand.

/// `½‖WᵀWx − x‖²`
fn autoencoder() -> Rc<Expr> {
    mul(
        half(),
        norm_sq(sub(mul(mul(t(var("W")), var("W")), var("x")), var("x"))),
    )
}

/// `αXXᵀ + β⁻¹I`
fn gp_kernel() -> Rc<Expr> {
    add(
        mul(mul(var("α"), var("X")), t(var("X"))),
        mul(inv(var("β")), identity()),
    )
}

/// `−c − D/2 log|αXXᵀ + β⁻¹I| − ½ tr((αXXᵀ + β⁻¹I)⁻¹YYᵀ)`
fn gp_lvm() -> Rc<Expr> {
    sub(
        sub(
            neg(var("c")),
            mul(div(var("D"), num(2)), logdet(gp_kernel())),
        ),
        mul(
            half(),
            tr(mul(mul(inv(gp_kernel()), var("Y")), t(var("Y")))),
        ),
    )
}

/// `ℓ(W₂ swish(W₁x + b₁) + b₂)`, the swish network with an opaque loss `ℓ: fn`.
fn swish_network() -> Rc<Expr> {
    let hidden = func(Func::Swish, add(mul(var("W₁"), var("x")), var("b₁")));
    apply("ℓ", add(mul(var("W₂"), hidden), var("b₂")))
}

// The helpers every test goes through.

#[track_caller]
fn check(expr: &Expr, decls: &Decls) -> Typed {
    match shape::infer(expr, decls) {
        Ok(typed) => {
            assert_fully_shaped(&typed.expr);
            typed
        }
        Err(error) => panic!("unexpected shape error: {}", error.diagnostic().render("")),
    }
}

/// Checks the root's shape and the listed variables' shapes (`"m×n"`, `"n×1"`, `"scalar"`).
#[track_caller]
fn check_shapes(expr: &Expr, decls: &Decls, root: &str, vars: &[(&str, &str)]) -> Typed {
    let typed = check(expr, decls);
    assert_eq!(typed.expr.shape.to_string(), root, "root shape");
    for (name, expected) in vars {
        let actual = typed.vars.get(*name).map(|decl| decl.shape.to_string());
        assert_eq!(actual.as_deref(), Some(*expected), "shape of {name}");
    }
    typed
}

#[track_caller]
fn check_error(expr: &Expr, decls: &Decls) -> Error {
    match shape::infer(expr, decls) {
        Ok(typed) => panic!("expected a shape error, got {}", typed.expr.shape),
        Err(error) => error,
    }
}

/// Checks the error's message and that some hint contains each of `hints`.
#[track_caller]
fn check_error_text(expr: &Expr, decls: &Decls, message: &str, hints: &[&str]) -> Error {
    let error = check_error(expr, decls);
    let diagnostic = error.diagnostic();
    assert_eq!(diagnostic.message, message);
    for hint in hints {
        assert!(
            diagnostic.hints.iter().any(|h| h.contains(hint)),
            "no hint containing {hint:?} in {:?}",
            diagnostic.hints
        );
    }
    error
}

#[track_caller]
fn assert_fully_shaped(expr: &Expr) {
    let mut stack = vec![expr];
    while let Some(node) = stack.pop() {
        assert!(
            node.shape.rows != Dim::Unknown && node.shape.cols != Dim::Unknown,
            "unshaped node {node:?}"
        );
        stack.extend(node.children().into_iter().map(|c| c.as_ref()));
    }
}

/// The shape of the first node (pre-order) equal to `wanted`.
fn shape_of_subtree(root: &Expr, wanted: &Expr) -> Option<String> {
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        if node.same_structure(wanted) {
            return Some(node.shape.to_string());
        }
        let mut children = node.children();
        children.reverse();
        stack.extend(children.into_iter().map(|c| c.as_ref()));
    }
    None
}

// The sheet.

#[test]
fn shape_autoencoder_names_the_busier_size_n() {
    check_shapes(
        &autoencoder(),
        &Decls::new(),
        "scalar",
        &[("W", "m×n"), ("x", "n×1")],
    );
}

#[test]
fn shape_gp_lvm_loss_forces_c_and_d_to_scalars() {
    let typed = check_shapes(
        &gp_lvm(),
        &Decls::new(),
        "scalar",
        &[
            ("c", "scalar"),
            ("D", "scalar"),
            ("X", "n×m"),
            ("Y", "n×p"),
            ("α", "scalar"),
            ("β", "scalar"),
        ],
    );
    let xxt = mul(var("X"), t(var("X")));
    let alpha_xxt = mul(mul(var("α"), var("X")), t(var("X")));
    assert_eq!(
        shape_of_subtree(&typed.expr, &alpha_xxt).as_deref(),
        Some("n×n")
    );
    assert_eq!(
        shape_of_subtree(&typed.expr, &gp_kernel()).as_deref(),
        Some("n×n")
    );
    let yyt_product = mul(mul(inv(gp_kernel()), var("Y")), t(var("Y")));
    assert_eq!(
        shape_of_subtree(&typed.expr, &yyt_product).as_deref(),
        Some("n×n")
    );
    // `XXᵀ` alone, without the α.
    check_shapes(&xxt, &Decls::new(), "n×n", &[("X", "n×m")]);
}

#[test]
fn shape_swish_network_with_opaque_loss() {
    check_shapes(
        &swish_network(),
        &decls(&[], &["ℓ"]),
        "scalar",
        &[
            ("W₁", "n×p"),
            ("x", "p×1"),
            ("b₁", "n×1"),
            ("W₂", "m×n"),
            ("b₂", "m×1"),
        ],
    );
}

#[test]
fn shape_swish_derivative_of_the_sheet_suggests_hadamard() {
    // σ(z₁) + z₁(1 − σ(z₁)): the sheet's step multiplies two n-vectors.
    let expr = add(
        sigma(var("z₁")),
        mul(var("z₁"), sub(num(1), sigma(var("z₁")))),
    );
    let error = check_error_text(
        &expr,
        &Decls::new(),
        "cannot multiply n×1 by n×1",
        &[
            "did you mean ⊙?",
            "for the elementwise product write z₁ ⊙ (1 − σ(z₁))",
        ],
    );
    assert!(matches!(
        error,
        Error::Mismatch {
            op: Op::Multiply,
            ..
        }
    ));
}

// Default and declared typing.

#[test]
fn shape_default_typing_by_letter() {
    for (name, expected) in [
        ("W", "n×m"),
        ("W₁", "n×m"),
        ("Σ", "n×m"),
        ("Λ", "n×m"),
        ("x", "n×1"),
        ("x′", "n×1"),
        ("b₂", "n×1"),
        ("α", "scalar"),
        ("ℓ", "scalar"),
    ] {
        check_shapes(&var(name), &Decls::new(), expected, &[(name, expected)]);
    }
}

#[test]
fn shape_declarations_override_letters() {
    let declared = decls(
        &[
            ("W", sym("m"), sym("n"), plain()),
            ("x", sym("n"), Dim::one(), plain()),
            ("α", sym("n"), Dim::one(), plain()),
        ],
        &[],
    );
    check_shapes(
        &mul(var("W"), var("x")),
        &declared,
        "m×1",
        &[("W", "m×n"), ("x", "n×1")],
    );
    // A Greek letter declared a vector is a vector.
    check_shapes(&mul(var("W"), var("α")), &declared, "m×1", &[("α", "n×1")]);
}

#[test]
fn shape_declared_scalar_scales() {
    let declared = decls(&[("D", Dim::one(), Dim::one(), plain())], &[]);
    check_shapes(
        &mul(var("D"), var("X")),
        &declared,
        "n×m",
        &[("D", "scalar")],
    );
}

#[test]
fn shape_declared_sizes_are_never_renamed_and_fresh_names_skip_them() {
    let declared = decls(&[("x", sym("n"), Dim::one(), plain())], &[]);
    // A is free in both sizes: its rows meet x, its columns get the first free name.
    check_shapes(
        &mul(t(var("x")), var("A")),
        &declared,
        "1×m",
        &[("A", "n×m"), ("x", "n×1")],
    );
    let declared = decls(&[("x", sym("m"), Dim::one(), plain())], &[]);
    check_shapes(&var("y"), &declared, "n×1", &[("x", "m×1"), ("y", "n×1")]);
    let declared = decls(&[("x", sym("n"), Dim::one(), plain())], &[]);
    check_shapes(&var("y"), &declared, "m×1", &[("x", "n×1"), ("y", "m×1")]);
}

#[test]
fn shape_numeric_declared_sizes() {
    let declared = decls(&[("W", Dim::Known(3), Dim::Known(4), plain())], &[]);
    check_shapes(
        &mul(var("W"), var("x")),
        &declared,
        "3×1",
        &[("W", "3×4"), ("x", "4×1")],
    );
}

#[test]
fn shape_properties_are_carried_into_vars() {
    let symmetric = Props {
        symmetric: true,
        positive_definite: false,
        integer: false,
    };
    let spd = Props {
        symmetric: true,
        positive_definite: true,
        integer: false,
    };
    let declared = decls(
        &[
            ("K", sym("n"), sym("n"), symmetric),
            ("S", sym("n"), sym("n"), spd),
            ("U", sym("n"), sym("n"), plain()),
        ],
        &[],
    );
    // U is declared but unused: it is still listed.
    let typed = check_shapes(
        &tr(mul(inv(var("K")), var("S"))),
        &declared,
        "scalar",
        &[("K", "n×n"), ("S", "n×n"), ("U", "n×n")],
    );
    assert_eq!(typed.vars["K"].props, symmetric);
    assert_eq!(typed.vars["S"].props, spd);
    assert_eq!(typed.vars["U"].props, plain());
}

#[test]
fn shape_declared_unknown_sizes_are_inferred() {
    let declared = decls(&[("W", Dim::Unknown, Dim::Unknown, plain())], &[]);
    check_shapes(&mul(var("W"), var("x")), &declared, "n×1", &[("W", "n×m")]);
}

#[test]
fn shape_functions_are_carried_into_typed() {
    let typed = check(&apply("f", var("x")), &decls(&[], &["f", "g"]));
    assert_eq!(typed.fns.len(), 2);
}

// The node rules.

#[test]
fn shape_xxt_is_square() {
    check_shapes(
        &mul(var("X"), t(var("X"))),
        &Decls::new(),
        "n×n",
        &[("X", "n×m")],
    );
    check_shapes(
        &mul(t(var("X")), var("X")),
        &Decls::new(),
        "n×n",
        &[("X", "m×n")],
    );
}

#[test]
fn shape_scalar_broadcasts_in_sums() {
    // 1 − σ(z) keeps z a vector.
    check_shapes(
        &sub(num(1), sigma(var("z"))),
        &Decls::new(),
        "n×1",
        &[("z", "n×1")],
    );
    // So does 1 − σ(W₁x + b₁).
    let pre = add(mul(var("W₁"), var("x")), var("b₁"));
    check_shapes(
        &sub(num(1), sigma(pre)),
        &Decls::new(),
        "n×1",
        &[("b₁", "n×1"), ("W₁", "n×m"), ("x", "m×1")],
    );
    // A numeric constant beside a bare vector broadcasts too: x − 1 keeps x a vector.
    check_shapes(
        &sub(var("x"), num(1)),
        &Decls::new(),
        "n×1",
        &[("x", "n×1")],
    );
}

#[test]
fn shape_scalar_forcing_pins_free_leaf_terms() {
    // c − tr(A): c becomes a scalar, A stays a (square) matrix.
    check_shapes(
        &sub(var("c"), tr(var("A"))),
        &Decls::new(),
        "scalar",
        &[("c", "scalar"), ("A", "n×n")],
    );
    // Negated and scaled terms are leaf-like too: −2c/3 + ‖x‖².
    check_shapes(
        &add(neg(div(mul(num(2), var("c")), num(3))), norm_sq(var("x"))),
        &Decls::new(),
        "scalar",
        &[("c", "scalar"), ("x", "n×1")],
    );
    // Upper-case letters too: α + A makes A a scalar.
    check_shapes(
        &add(var("α"), var("A")),
        &Decls::new(),
        "scalar",
        &[("A", "scalar")],
    );
    // Sums of leaf-like terms: a + b − tr(A).
    check_shapes(
        &sub(add(var("a"), var("b")), tr(var("A"))),
        &Decls::new(),
        "scalar",
        &[("a", "scalar"), ("b", "scalar")],
    );
}

#[test]
fn shape_scalar_forcing_leaves_tied_sizes_alone() {
    // c is tied by a product elsewhere (cᵀc), so c − tr(A) broadcasts instead.
    let expr = add(mul(t(var("c")), var("c")), sub(var("c"), tr(var("A"))));
    check_shapes(&expr, &Decls::new(), "n×1", &[("c", "n×1")]);
    // x shares its size with W (Wx), so x − ‖Wx‖² keeps x a vector.
    let expr = sub(var("x"), norm_sq(mul(var("W"), var("x"))));
    check_shapes(&expr, &Decls::new(), "n×1", &[("x", "n×1"), ("W", "m×n")]);
    // A declared vector is never forced.
    let declared = decls(&[("c", sym("n"), Dim::one(), plain())], &[]);
    check_shapes(
        &sub(var("c"), tr(var("A"))),
        &declared,
        "n×1",
        &[("c", "n×1")],
    );
    // A non-leaf side (a product of matrices) is never forced.
    check_shapes(
        &sub(mul(var("A"), var("B")), tr(var("C"))),
        &Decls::new(),
        "n×m",
        &[("A", "n×p"), ("B", "p×m")],
    );
}

#[test]
fn shape_vector_scaled_by_scalar_products() {
    check_shapes(
        &mul(mul(t(var("x")), var("y")), var("z")),
        &Decls::new(),
        "m×1",
        &[("x", "n×1"), ("y", "n×1"), ("z", "m×1")],
    );
    check_shapes(&mul(var("x"), var("α")), &Decls::new(), "n×1", &[]);
    check_shapes(&div(var("W"), num(2)), &Decls::new(), "n×m", &[]);
}

#[test]
fn shape_elementwise_division_and_hadamard_unify() {
    // A scalar numerator broadcasts: 1 ⊘ x is the elementwise reciprocal.
    check_shapes(
        &elem_div(num(1), var("x")),
        &Decls::new(),
        "n×1",
        &[("x", "n×1")],
    );
    check_shapes(
        &elem_div(var("x"), var("y")),
        &Decls::new(),
        "n×1",
        &[("y", "n×1")],
    );
    check_shapes(
        &hadamard(var("x"), var("y")),
        &Decls::new(),
        "n×1",
        &[("y", "n×1")],
    );
    check_shapes(&hadamard(var("α"), var("A")), &Decls::new(), "n×m", &[]);
    // A sum never silently makes a matrix a vector: its letter says it is a matrix.
    check_error_text(
        &add(var("A"), var("x")),
        &Decls::new(),
        "cannot add n×m and n×1",
        &["if `A` is a column vector, declare it: `A: n` (undeclared, a letter's case fixes its kind)"],
    );
}

/// A free size of a default-typed letter never becomes 1 to make a sum or an elementwise
/// operation typecheck: that would silently read the letter as another kind of object
/// (`xxᵀ ⊙ Cy` read with x a scalar and C a row vector). The error says which
/// declarations give that reading, and with them it types.
#[test]
fn shape_sums_never_make_a_letter_another_kind() {
    let outer = || mul(var("x"), t(var("x")));
    let cy = || mul(var("C"), var("y"));
    let cases: [(Rc<Expr>, &str, &str); 6] = [
        (
            hadamard(outer(), cy()),
            "cannot take the elementwise product of n×n and n×1",
            "if `C` is a row vector and `x` a scalar, declare them: `C: 1×m, x: scalar` (undeclared, a letter's case fixes its kind)",
        ),
        (
            add(mul(t(var("x")), var("A")), var("b")),
            "cannot add 1×m and p×1",
            "did you mean bᵀ?",
        ),
        (
            add(t(var("x")), var("y")),
            "cannot add 1×n and m×1",
            "if `x` is a scalar and `y` a scalar, declare them: `x: scalar, y: scalar` (undeclared, a letter's case fixes its kind)",
        ),
        (
            elem_div(var("x"), t(var("y"))),
            "cannot divide m×1 elementwise by 1×n",
            "did you mean y?",
        ),
        (
            sub(hadamard(outer(), cy()), var("z")),
            "cannot take the elementwise product of n×n and n×1",
            "x: scalar`",
        ),
        (
            hadamard(t(var("x")), var("X")),
            "cannot take the elementwise product of 1×n and m×p",
            "if `X` is a row vector, declare it: `X: 1×p` (undeclared, a letter's case fixes its kind)",
        ),
    ];
    for (expr, message, hint) in cases {
        check_error_text(&expr, &Decls::new(), message, &[hint]);
    }
    // Declared, the reading is the one asked for: x a scalar keeps C a matrix.
    let decls = parse_decls("x: scalar").unwrap();
    check_shapes(
        &hadamard(outer(), cy()),
        &decls,
        "n×1",
        &[("x", "scalar"), ("C", "n×m")],
    );
    // A vector (declared) against a default matrix: still refused, C stays a matrix.
    let decls = parse_decls("x: n").unwrap();
    check_error_text(
        &hadamard(outer(), cy()),
        &decls,
        "cannot take the elementwise product of n×n and n×1",
        &[],
    );
    // Nor does a Kronecker factor become 1×1 to fit a declared size: B in (A ⊗ B)C with
    // A and C both n×n is refused, never silently a scalar.
    let decls = parse_decls("A: n×n, C: n×n").unwrap();
    let kron = node(ExprKind::Kron(var("A"), var("B")));
    check_error_text(
        &tr(mul(kron, var("C"))),
        &decls,
        "A ⊗ B: the sizes of its factors cannot be inferred from n",
        &["declare the factors' sizes"],
    );
    // Scalar forcing still makes c and D scalars where the sum with a scalar says so.
    check_shapes(
        &sub(sub(neg(var("c")), var("D")), tr(var("A"))),
        &Decls::new(),
        "scalar",
        &[("c", "scalar"), ("D", "scalar"), ("A", "n×n")],
    );
}

#[test]
fn shape_square_operations() {
    check_shapes(&inv(var("A")), &Decls::new(), "n×n", &[("A", "n×n")]);
    check_shapes(&pow(var("A"), 2), &Decls::new(), "n×n", &[("A", "n×n")]);
    check_shapes(&logdet(var("A")), &Decls::new(), "scalar", &[("A", "n×n")]);
    check_shapes(&inv(var("β")), &Decls::new(), "scalar", &[]);
    check_shapes(&pow(var("β"), 3), &Decls::new(), "scalar", &[]);
}

#[test]
fn shape_diag_both_ways() {
    check_shapes(&diag(var("x")), &Decls::new(), "n×n", &[("x", "n×1")]);
    check_shapes(&diag(var("A")), &Decls::new(), "n×1", &[("A", "n×n")]);
    let swish_derivative = add(
        sigma(var("z₁")),
        hadamard(var("z₁"), sub(num(1), sigma(var("z₁")))),
    );
    check_shapes(
        &mul(diag(swish_derivative), var("g")),
        &Decls::new(),
        "n×1",
        &[],
    );
}

#[test]
fn shape_identity_and_ones_take_their_size_from_use() {
    check_shapes(
        &add(mul(var("W"), var("x")), ones()),
        &Decls::new(),
        "n×1",
        &[("W", "n×m")],
    );
    check_shapes(
        &add(var("A"), identity()),
        &Decls::new(),
        "n×n",
        &[("A", "n×n")],
    );
    check_shapes(&identity(), &Decls::new(), "n×n", &[]);
    check_shapes(&mul(t(ones()), var("x")), &Decls::new(), "scalar", &[]);
}

#[test]
fn shape_grad_and_differential_follow_their_argument() {
    check_shapes(
        &grad("ℓ", mul(var("W"), var("x"))),
        &decls(&[], &["ℓ"]),
        "n×1",
        &[],
    );
    check_shapes(
        &tr(mul(t(var("X")), differential("X"))),
        &Decls::new(),
        "scalar",
        &[("X", "m×n")],
    );
}

#[test]
fn shape_keeps_structure_and_spans() {
    let spanned = Rc::new(Expr::var("x").with_span(matcalc::Span::new(3, 4)));
    let expr = mul(var("W"), spanned);
    let typed = check(&expr, &Decls::new());
    // Inference fills in shapes and keeps everything else: the same structure.
    assert!(typed.expr.same_structure(&expr));
    if let ExprKind::Mul(_, x) = &typed.expr.kind {
        assert_eq!(x.span, Some(matcalc::Span::new(3, 4)));
        assert_eq!(x.shape.to_string(), "m×1");
    } else {
        panic!("structure changed: {:?}", typed.expr);
    }
}

#[test]
fn shape_of_retypes_against_known_variables() {
    let typed = check(&autoencoder(), &Decls::new());
    let wx = mul(var("W"), var("x"));
    assert_eq!(
        shape::shape_of(&wx, &typed.vars).map(|s| s.to_string()),
        Ok("m×1".to_string())
    );
    let empty = BTreeMap::new();
    assert!(shape::shape_of(&mul(var("x"), var("y")), &empty).is_err());
}

// Errors.

#[test]
fn shape_vector_times_vector_suggests_inner_or_elementwise_product() {
    let error = check_error_text(
        &mul(var("z"), var("w")),
        &Decls::new(),
        "cannot multiply n×1 by n×1",
        &["did you mean zᵀw or z ⊙ w?"],
    );
    assert!(matches!(
        error,
        Error::Mismatch {
            op: Op::Multiply,
            ..
        }
    ));
}

#[test]
fn shape_vectors_of_declared_different_lengths_suggest_outer_product() {
    let declared = decls(
        &[
            ("z", sym("n"), Dim::one(), plain()),
            ("w", sym("m"), Dim::one(), plain()),
        ],
        &[],
    );
    check_error_text(
        &mul(var("z"), var("w")),
        &declared,
        "cannot multiply n×1 by m×1",
        &["did you mean zwᵀ?"],
    );
}

#[test]
fn shape_transpose_hint() {
    let declared = decls(
        &[
            ("X", sym("m"), sym("n"), plain()),
            ("y", sym("m"), Dim::one(), plain()),
        ],
        &[],
    );
    let error = check_error_text(
        &mul(var("X"), var("y")),
        &declared,
        "cannot multiply m×n by m×1",
        &["did you mean Xᵀ?"],
    );
    assert!(matches!(error, Error::DeclConflict { .. }));
    // A vector on the wrong side: W x written as x W.
    let declared = decls(&[("W", sym("m"), sym("n"), plain())], &[]);
    check_error_text(
        &mul(var("x"), var("W")),
        &declared,
        "cannot multiply p×1 by m×n",
        &["did you mean xᵀ?"],
    );
}

#[test]
fn shape_sum_mismatch_names_both_shapes() {
    let declared = decls(&[("W", sym("m"), sym("n"), plain())], &[]);
    let error = check_error_text(
        &add(var("W"), t(var("W"))),
        &declared,
        "cannot add m×n and n×m",
        &["the declared sizes m and n differ"],
    );
    assert!(matches!(
        error,
        Error::DeclConflict { op: Op::Add, ref sizes, .. } if **sizes == (sym("m"), sym("n"))
    ));
    let declared = decls(
        &[
            ("x", sym("n"), Dim::one(), plain()),
            ("A", sym("n"), sym("m"), plain()),
        ],
        &[],
    );
    check_error_text(
        &sub(var("x"), t(var("A"))),
        &declared,
        "cannot subtract m×n from n×1",
        &[],
    );
}

#[test]
fn shape_hadamard_and_division_mismatch() {
    let declared = decls(
        &[
            ("x", sym("n"), Dim::one(), plain()),
            ("y", sym("m"), Dim::one(), plain()),
        ],
        &[],
    );
    check_error_text(
        &hadamard(var("x"), var("y")),
        &declared,
        "cannot take the elementwise product of n×1 and m×1",
        &[],
    );
    check_error_text(
        &div(var("x"), var("y")),
        &declared,
        "cannot divide n×1 by m×1",
        &[],
    );
}

#[test]
fn shape_not_square_errors() {
    let declared = decls(&[("X", sym("m"), sym("n"), plain())], &[]);
    let error = check_error_text(
        &inv(var("X")),
        &declared,
        "X is m×n, not square",
        &["the inverse needs a square matrix"],
    );
    assert!(matches!(
        error,
        Error::NotSquare {
            what: "the inverse",
            ..
        }
    ));
    check_error_text(
        &tr(var("X")),
        &declared,
        "X is m×n, not square",
        &["the trace"],
    );
    check_error_text(
        &logdet(mul(var("X"), var("X"))),
        &declared,
        "cannot multiply m×n by m×n",
        &[],
    );
    // A product never makes a free vector length 1, and neither does a square test.
    check_error_text(
        &inv(var("x")),
        &Decls::new(),
        "x is n×1, not square",
        &["the inverse needs a square matrix"],
    );
}

#[test]
fn shape_power_of_a_vector_suggests_hadamard() {
    let error = check_error_text(
        &pow(var("x"), 2),
        &Decls::new(),
        "x is n×1, not square",
        &["for an elementwise square write x ⊙ x"],
    );
    assert!(matches!(error, Error::NotSquare { .. }));
    check_error_text(
        &pow(mul(var("W"), var("x")), 2),
        &Decls::new(),
        "Wx is n×1, not square",
        &["for an elementwise square write Wx ⊙ Wx"],
    );
    check_error_text(
        &pow(add(var("x"), var("y")), 2),
        &Decls::new(),
        "x + y is n×1, not square",
        &["for an elementwise square write (x + y) ⊙ (x + y)"],
    );
}

#[test]
fn shape_unknown_and_non_functions() {
    let error = check_error(&apply("ℓ", var("x")), &Decls::new());
    assert!(matches!(error, Error::UnknownFunction { ref name, .. } if name == "ℓ"));
    assert_eq!(error.diagnostic().message, "unknown function `ℓ`");
    let declared = decls(&[("f", Dim::one(), Dim::one(), plain())], &[]);
    let error = check_error(&grad("f", var("x")), &declared);
    assert!(matches!(error, Error::NotAFunction { ref name, .. } if name == "f"));
}

#[test]
fn shape_errors_render_without_spans() {
    let error = check_error(&mul(var("z"), var("w")), &Decls::new());
    let rendered = error.diagnostic().render("zw");
    assert_eq!(
        rendered,
        "error: cannot multiply n×1 by n×1\n  = hint: did you mean zᵀw or z ⊙ w?\n"
    );
}

// Properties: on random trees, inference never panics, and every typed tree obeys the
// node rules it claims.

/// Checks every node's shape against its children's, rule by rule.
#[track_caller]
fn assert_consistent(expr: &Expr) {
    use ExprKind::*;
    let mut stack = vec![expr];
    while let Some(node) = stack.pop() {
        let shape = &node.shape;
        let child = |index: usize| &node.children()[index].shape;
        let ok = match &node.kind {
            Num(_)
            | Size(_)
            | Trace(_)
            | Det(_)
            | LogDet(_)
            | NormSq(_)
            | Sum(_)
            | Apply(_, _)
            | Norm(_, _)
            | LogSumExp(_) => shape.is_scalar(),
            ElemPow(_, _) => shape == child(0),
            // Inference replaces every notation as written by the node it means.
            Written(_, _) => false,
            Softmax(_) => shape == child(0) && shape.cols.is_one(),
            PowSym(_, _, _) => shape == child(0) && shape.is_square(),
            Var(_) | Differential(_) => true,
            Identity => shape.is_square(),
            Ones => shape.cols.is_one(),
            Neg(_) | Func(_, _) | Grad(_, _) => shape == child(0),
            Transpose(_) => *shape == child(0).transposed(),
            Inverse(_) | Pow(_, _) => shape == child(0) && shape.is_square(),
            Diag(_) => {
                let arg = child(0);
                if arg.cols.is_one() {
                    shape.rows == arg.rows && shape.is_square()
                } else {
                    arg.is_square() && shape.rows == arg.rows && shape.cols.is_one()
                }
            }
            Div(_, _) => child(1).is_scalar() && shape == child(0),
            Add(_, _) | Sub(_, _) | Hadamard(_, _) | ElemDiv(_, _) => {
                let (a, b) = (child(0), child(1));
                (a.is_scalar() && shape == b)
                    || (b.is_scalar() && shape == a)
                    || (a == b && shape == a)
            }
            Mul(_, _) => {
                let (a, b) = (child(0), child(1));
                (a.is_scalar() && shape == b)
                    || (b.is_scalar() && shape == a)
                    || (a.cols == b.rows && shape.rows == a.rows && shape.cols == b.cols)
            }
            Kron(_, _) => {
                let (a, b) = (child(0), child(1));
                shape.rows == a.rows.times(&b.rows) && shape.cols == a.cols.times(&b.cols)
            }
            Vectorize(_) => {
                shape.rows == child(0).rows.times(&child(0).cols) && shape.cols.is_one()
            }
            Commutation(m, n) => shape.rows == m.times(n) && shape.is_square(),
        };
        assert!(ok, "rule broken at {:?} with shape {shape}", node.kind);
        stack.extend(node.children().into_iter().map(|c| c.as_ref()));
    }
}

fn arbitrary_tree() -> impl proptest::strategy::Strategy<Value = Rc<Expr>> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        prop::sample::select(vec!["x", "y", "c", "A", "B", "D", "α", "β"]).prop_map(var),
        (0i64..4).prop_map(num),
        Just(identity()),
        Just(ones()),
    ];
    leaf.prop_recursive(6, 48, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| mul(a, b)),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| add(a, b)),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| sub(a, b)),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| div(a, b)),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| hadamard(a, b)),
            inner.clone().prop_map(neg),
            inner.clone().prop_map(t),
            inner.clone().prop_map(inv),
            inner.clone().prop_map(|a| pow(a, 2)),
            inner.clone().prop_map(tr),
            inner.clone().prop_map(logdet),
            inner.clone().prop_map(norm_sq),
            inner.clone().prop_map(diag),
            inner.clone().prop_map(sigma),
            inner.clone().prop_map(|a| apply("ℓ", a)),
            inner.prop_map(|a| grad("ℓ", a)),
        ]
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, ..Default::default() })]

    #[test]
    fn shape_random_trees_type_consistently_or_fail_cleanly(expr in arbitrary_tree()) {
        match shape::infer(&expr, &decls(&[], &["ℓ"])) {
            Ok(typed) => {
                assert_fully_shaped(&typed.expr);
                assert_consistent(&typed.expr);
                proptest::prop_assert!(typed.expr.same_structure(&expr));
            }
            Err(error) => {
                let diagnostic = error.diagnostic();
                proptest::prop_assert!(!diagnostic.message.is_empty());
                proptest::prop_assert!(!diagnostic.message.contains('?'), "{}", diagnostic.message);
            }
        }
    }
}

// Through the parser: the sheet's losses as typed, and the error corpus.

/// Parses `source` with the functions of `decls` in force.
#[track_caller]
fn parse_with_decls(source: &str, decls: &Decls) -> Expr {
    let options = ParseOptions::from_decls(decls);
    match parse_with(source, &options) {
        Ok(expr) => expr,
        Err(error) => panic!("cannot parse {source:?}: {error:?}"),
    }
}

#[track_caller]
fn check_parsed(source: &str, declarations: &str, root: &str, vars: &[(&str, &str)]) -> Typed {
    let decls = if declarations.is_empty() {
        Decls::new()
    } else {
        match parse_decls(declarations) {
            Ok(decls) => decls,
            Err(error) => panic!("cannot parse declarations {declarations:?}: {error:?}"),
        }
    };
    check_shapes(&parse_with_decls(source, &decls), &decls, root, vars)
}

#[test]
fn shape_parsed_autoencoder_in_every_spelling() {
    for source in [
        "½‖WᵀWx − x‖²",
        "1/2 norm(W' W x - x)^2",
        r"\frac{1}{2} \|\mathbf{W}^T \mathbf{Wx} - \mathbf{x}\|^2",
    ] {
        check_parsed(source, "", "scalar", &[("W", "m×n"), ("x", "n×1")]);
    }
}

#[test]
fn shape_parsed_gp_lvm_loss() {
    check_parsed(
        "−c − D/2 log|αXXᵀ + β⁻¹I| − ½ tr((αXXᵀ + β⁻¹I)⁻¹YYᵀ)",
        "",
        "scalar",
        &[
            ("c", "scalar"),
            ("D", "scalar"),
            ("X", "n×m"),
            ("Y", "n×p"),
            ("α", "scalar"),
            ("β", "scalar"),
        ],
    );
    check_parsed("XXᵀ", "", "n×n", &[("X", "n×m")]);
}

#[test]
fn shape_parsed_swish_network_and_declarations() {
    check_parsed(
        "ℓ(W₂ swish(W₁x + b₁) + b₂)",
        "ℓ: fn",
        "scalar",
        &[
            ("W₁", "n×p"),
            ("x", "p×1"),
            ("b₁", "n×1"),
            ("W₂", "m×n"),
            ("b₂", "m×1"),
        ],
    );
    let typed = check_parsed(
        "tr(K⁻¹S) + xᵀKx",
        "K: n×n sym; S: n×n spd, x: n",
        "scalar",
        &[("K", "n×n"), ("S", "n×n"), ("x", "n×1")],
    );
    assert!(typed.vars["K"].props.symmetric);
    assert!(typed.vars["S"].props.positive_definite);
    check_parsed("1 − σ(z)", "", "n×1", &[("z", "n×1")]);
}

/// Renders the shape error of a case file: optional `decl: …` lines, then the expression.
fn render_case(text: &str) -> String {
    let mut decls = Decls::new();
    let mut source = "";
    for line in text.lines() {
        if let Some(declarations) = line.strip_prefix("decl:") {
            match parse_decls(declarations.trim()) {
                Ok(parsed) => decls.extend(parsed),
                Err(error) => return format!("bad declarations: {error:?}"),
            }
        } else if !line.trim().is_empty() {
            source = line;
        }
    }
    let expr = parse_with_decls(source, &decls);
    match shape::infer(&expr, &decls) {
        Ok(typed) => format!("no error: {}", typed.expr.shape),
        Err(error) => error.diagnostic().render(source),
    }
}

#[test]
fn shape_error_corpus() {
    insta::glob!("cases/shape_error/*.txt", |path| {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        insta::with_settings!({
            snapshot_path => "../snapshots/shape",
            prepend_module_to_snapshot => false,
            omit_expression => false,
            description => text.trim(),
        }, {
            insta::assert_snapshot!(render_case(&text));
        });
    });
}

#[test]
fn shape_sheet_answers_type_against_the_loss_variables() {
    // A claimed derivative is typed with the loss's variables as declarations, so that D
    // stays the scalar the loss made it.
    let loss = check_parsed(
        "−c − D/2 log|αXXᵀ + β⁻¹I| − ½ tr((αXXᵀ + β⁻¹I)⁻¹YYᵀ)",
        "",
        "scalar",
        &[("D", "scalar")],
    );
    let decls = Decls {
        vars: loss.vars.clone(),
        fns: loss.fns.clone(),
        sizes: Default::default(),
    };
    for answer in [
        "−Dα(XXᵀα + β⁻¹I)⁻¹X",
        "α((αXXᵀ + β⁻¹I)⁻¹YYᵀ(αXXᵀ + β⁻¹I)⁻¹ − D(αXXᵀ + β⁻¹I)⁻¹)X",
    ] {
        check_shapes(&parse_with_decls(answer, &decls), &decls, "n×m", &[]);
    }
    let loss = check_parsed("½‖WᵀWx − x‖²", "", "scalar", &[]);
    let decls = Decls {
        vars: loss.vars.clone(),
        fns: loss.fns.clone(),
        sizes: Default::default(),
    };
    let answer = "W((WᵀWx − x)xᵀ + x(WᵀWx − x)ᵀ)";
    check_shapes(&parse_with_decls(answer, &decls), &decls, "m×n", &[]);
    // The swish step, written correctly, is a vector.
    check_parsed(
        "σ(z₁) + z₁ ⊙ σ(z₁) ⊙ (1 − σ(z₁))",
        "",
        "n×1",
        &[("z₁", "n×1")],
    );
    check_parsed(
        "diag(σ(z₁) + z₁ ⊙ σ(z₁) ⊙ (1 − σ(z₁)))W₂ᵀg",
        "",
        "n×1",
        &[("W₂", "m×n"), ("g", "m×1")],
    );
}
