//! The problem sheet, part by part, through parse → infer → derivative → numeric check.
//!
//! Every derivative here is checked against finite differences (`check_derivative` must
//! give `Verdict::Pass`) and compared with its expected closed form (`check_equal`). The
//! sheet's own hand results are fed as claims: the correct ones pass, and its two wrong
//! steps are rejected with a counterexample. A proptest differentiates 500 random
//! well-shaped scalar expressions over the whole operation set.

use std::rc::Rc;

use matcalc::diff::{derivative, Derivative, DerivativeKind, Error};
use matcalc::expr::build;
use matcalc::numeric::{check_derivative, check_equal, CheckConfig, Verdict};
use matcalc::parse::{parse_decls, parse_with, ParseOptions};
use matcalc::shape::{infer, Typed};
use matcalc::{Decls, Dim, Expr, Func, Props, Shape, VarDecl};

/// A loss, its declarations and its typed tree.
struct Problem {
    typed: Typed,
    options: ParseOptions,
}

#[track_caller]
fn problem(src: &str, decls: &str) -> Problem {
    let decls = parse_decls(decls).unwrap_or_else(|e| panic!("declarations {decls:?}: {e}"));
    let options = ParseOptions::from_decls(&decls);
    let expr = parse_with(src, &options).unwrap_or_else(|e| panic!("parse {src:?}: {e}"));
    let typed = infer(&expr, &decls).unwrap_or_else(|e| panic!("shapes of {src:?}: {e}"));
    Problem { typed, options }
}

impl Problem {
    /// A closed form or claim, typed with the problem's own variables. A name `V` stands
    /// for the differential of `differential_of`, when given.
    #[track_caller]
    fn expr(&self, src: &str) -> Expr {
        let decls = Decls {
            vars: self.typed.vars.clone(),
            fns: self.typed.fns.clone(),
            sizes: Default::default(),
        };
        let expr = parse_with(src, &self.options).unwrap_or_else(|e| panic!("parse {src:?}: {e}"));
        infer(&expr, &decls)
            .unwrap_or_else(|e| panic!("shapes of {src:?}: {e}"))
            .expr
    }

    #[track_caller]
    fn ours(&self, wrt: &str, order: u8) -> Derivative {
        derivative(&self.typed, wrt, order).unwrap_or_else(|e| panic!("∂/∂{wrt}: {e}"))
    }

    /// The claim `src` for the derivative `ours` is of the same kind.
    #[track_caller]
    fn claim(&self, ours: &Derivative, src: &str) -> Derivative {
        Derivative {
            expr: self.expr(src),
            ..ours.clone()
        }
    }

    /// Checks our derivative numerically, and that it equals `closed_form`, which must
    /// also pass as a claim. Returns ours.
    #[track_caller]
    fn check(&self, wrt: &str, order: u8, closed_form: &str) -> Derivative {
        let ours = self.ours(wrt, order);
        assert_pass(
            check_derivative(&self.typed, &ours, &config()),
            &format!("our ∂/∂{wrt}"),
        );
        let claim = self.claim(&ours, closed_form);
        assert_pass(
            check_derivative(&self.typed, &claim, &config()),
            &format!("closed form {closed_form} as a claim for ∂/∂{wrt}"),
        );
        assert_pass(
            check_equal(&self.typed, &ours.expr, &claim.expr, &config()),
            &format!("ours equals {closed_form}"),
        );
        ours
    }
}

fn config() -> CheckConfig {
    CheckConfig::standard()
}

#[track_caller]
fn assert_pass(verdict: Verdict, what: &str) {
    match verdict {
        Verdict::Pass { .. } => {}
        Verdict::Fail(counterexample) => {
            panic!("{what}: failed\n{}", counterexample.describe())
        }
        Verdict::Inconclusive { reason } => panic!("{what}: inconclusive: {reason}"),
        Verdict::Unreadable { reason } => panic!("{what}: unreadable: {reason}"),
    }
}

#[track_caller]
fn assert_fail(verdict: Verdict, what: &str) {
    match verdict {
        Verdict::Fail(counterexample) => {
            assert!(
                counterexample.rel_error > 1e-3,
                "{what}: {}",
                counterexample.describe()
            );
            assert!(!counterexample.describe().is_empty());
        }
        other => panic!("{what}: expected a counterexample, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// 1. The autoencoder.

const AUTOENCODER: &str = "½‖WᵀWx − x‖²";
const AUTOENCODER_GRADIENT: &str = "W((WᵀWx − x)xᵀ + x(WᵀWx − x)ᵀ)";

#[test]
fn diff_sheet_autoencoder_gradient_is_w_times_zxt_plus_xzt() {
    let p = problem(AUTOENCODER, "");
    let ours = p.check("W", 1, AUTOENCODER_GRADIENT);
    assert_eq!(ours.kind, DerivativeKind::Gradient);
    assert!(!ours.symmetric);
    // The sheet's own two-path result, W z₂xᵀ + W x z₂ᵀ, is correct.
    let sheet = p.claim(&ours, "W(WᵀWx − x)xᵀ + Wx(WᵀWx − x)ᵀ");
    assert_pass(check_derivative(&p.typed, &sheet, &config()), "sheet ∂L/∂W");
    // SymPy's expanded trace-form result agrees too.
    let sympy = p.claim(&ours, "−2Wxxᵀ + WxxᵀWᵀW + WWᵀWxxᵀ");
    assert_pass(
        check_derivative(&p.typed, &sympy, &config()),
        "SymPy's expanded form",
    );
    p.check("x", 1, "(WᵀW − I)ᵀ(WᵀWx − x)");
}

// ---------------------------------------------------------------------------------------
// 2. The GP-LVM log-likelihood, K = αXXᵀ + β⁻¹I.

const K: &str = "(αXXᵀ + β⁻¹I)";
const GPLVM: &str = "−c − D/2 log|αXXᵀ + β⁻¹I| − ½ tr((αXXᵀ + β⁻¹I)⁻¹YYᵀ)";
const L1: &str = "−D/2 log|αXXᵀ + β⁻¹I|";
const L2: &str = "−½ tr((αXXᵀ + β⁻¹I)⁻¹YYᵀ)";

fn with_k(template: &str) -> String {
    template.replace('K', K)
}

#[test]
fn diff_sheet_gplvm_l1_gradient() {
    // Alone, L₁ does not force D to be a scalar (D/2 could scale a matrix); the sheet's D is.
    let p = problem(L1, "D: scalar");
    p.check("X", 1, &with_k("−αD K⁻¹X"));
    // The sheet's −D·α·K⁻¹X, with its βᵀ slip (iii) read as β⁻¹.
    let ours = p.ours("X", 1);
    let sheet = p.claim(&ours, &with_k("−D α K⁻¹ X"));
    assert_pass(
        check_derivative(&p.typed, &sheet, &config()),
        "sheet ∂L₁/∂X",
    );
}

#[test]
fn diff_sheet_gplvm_l2_gradient() {
    let p = problem(L2, "");
    p.check("X", 1, &with_k("αK⁻¹YYᵀK⁻¹X"));
}

#[test]
fn diff_sheet_gplvm_gradient_is_alpha_kinv_yyt_kinv_minus_d_kinv_x() {
    let p = problem(GPLVM, "");
    p.check("X", 1, &with_k("α(K⁻¹YYᵀK⁻¹ − D·K⁻¹)X"));
    p.check("α", 1, &with_k("½ tr(K⁻¹YYᵀK⁻¹XXᵀ) − D/2 tr(K⁻¹XXᵀ)"));
    p.check("c", 1, "−1");
}

#[test]
fn diff_sheet_error_i_l2_treats_d_kinv_as_minus_kinvt_squared() {
    // Sheet error (i): ∂L₂/∂X treats d(K⁻¹) as −(K⁻ᵀ)² instead of sandwiching the
    // upstream gradient, giving α/2((K⁻ᵀ)²YYᵀ + YYᵀ(K⁻ᵀ)²)X.
    let p = problem(L2, "");
    let ours = p.ours("X", 1);
    let wrong = p.claim(&ours, &with_k("α/2((K⁻ᵀ)²YYᵀ + YYᵀ(K⁻ᵀ)²)X"));
    assert_fail(
        check_derivative(&p.typed, &wrong, &config()),
        "sheet error (i): ∂L₂/∂X treats d(K⁻¹) as −(K⁻ᵀ)²",
    );
    let sheet_total = problem(GPLVM, "");
    let ours = sheet_total.ours("X", 1);
    let wrong_total = sheet_total.claim(&ours, &with_k("−Dα K⁻¹X + α/2((K⁻ᵀ)²YYᵀ + YYᵀ(K⁻ᵀ)²)X"));
    assert_fail(
        check_derivative(&sheet_total.typed, &wrong_total, &config()),
        "sheet error (i) carried into ∂L/∂X",
    );
}

// ---------------------------------------------------------------------------------------
// 3. The swish network, L = ½‖W₂ swish(W₁x + b₁) + b₂ − y‖².

const Z1: &str = "(W₁x + b₁)";
const SWISH_NETWORK: &str = "½‖W₂ swish(W₁x + b₁) + b₂ − y‖²";

/// Expands `{s′}` (swish′(z₁)), `{r}` (the residual z₂ − y) and then `z₁` in a template.
fn network(template: &str) -> String {
    let swish_prime = "(σ(z₁) + z₁ ⊙ σ(z₁) ⊙ (1 − σ(z₁)))";
    template
        .replace("{s′}", swish_prime)
        .replace("{r}", "(W₂ swish(z₁) + b₂ − y)")
        .replace("z₁", Z1)
}

#[test]
fn diff_sheet_swish_network_gradients() {
    let p = problem(SWISH_NETWORK, "");
    p.check("W₂", 1, &network("{r} swish(z₁)ᵀ"));
    p.check("b₂", 1, &network("{r}"));
    p.check("W₁", 1, &network("({s′} ⊙ W₂ᵀ{r}) xᵀ"));
    p.check("b₁", 1, &network("{s′} ⊙ W₂ᵀ{r}"));
    p.check("x", 1, &network("W₁ᵀ({s′} ⊙ W₂ᵀ{r})"));
}

#[test]
fn diff_sheet_swish_network_intermediate_gradients() {
    let h = problem("½‖W₂h₁ + b₂ − y‖²", "");
    h.check("h₁", 1, "W₂ᵀ(W₂h₁ + b₂ − y)");
    let z = problem("½‖W₂ swish(z₁) + b₂ − y‖²", "");
    let swish_prime = "(σ(z₁) + z₁ ⊙ σ(z₁) ⊙ (1 − σ(z₁)))";
    let ours = z.check(
        "z₁",
        1,
        &format!("{swish_prime} ⊙ W₂ᵀ(W₂ swish(z₁) + b₂ − y)"),
    );
    // The same in the sheet's diag form.
    let diag_form = z.claim(
        &ours,
        &format!("diag({swish_prime}) W₂ᵀ(W₂ swish(z₁) + b₂ − y)"),
    );
    assert_pass(
        check_derivative(&z.typed, &diag_form, &config()),
        "diag(swish′) form",
    );
}

#[test]
fn diff_sheet_error_ii_swish_derivative_written_sigma_plus_z_times_one_minus_sigma() {
    // Sheet error (ii): swish′(z) written σ(z) + z(1 − σ(z)) (then "= z·σ(z)"); it is
    // σ(z) + zσ(z)(1 − σ(z)).
    let z = problem("½‖W₂ swish(z₁) + b₂ − y‖²", "");
    let ours = z.ours("z₁", 1);
    let wrong = z.claim(
        &ours,
        "(σ(z₁) + z₁ ⊙ (1 − σ(z₁))) ⊙ W₂ᵀ(W₂ swish(z₁) + b₂ − y)",
    );
    assert_fail(
        check_derivative(&z.typed, &wrong, &config()),
        "sheet error (ii): swish′(z) written σ(z) + z(1 − σ(z))",
    );
    let collapsed = z.claim(&ours, "(z₁ ⊙ σ(z₁)) ⊙ W₂ᵀ(W₂ swish(z₁) + b₂ − y)");
    assert_fail(
        check_derivative(&z.typed, &collapsed, &config()),
        "sheet error (ii), second step: swish′(z) = z·σ(z)",
    );
    // The same slip carried into ∂L/∂W₁ of the whole network.
    let p = problem(SWISH_NETWORK, "");
    let ours = p.ours("W₁", 1);
    let wrong = p.claim(&ours, &network("((σ(z₁) + z₁ ⊙ (1 − σ(z₁))) ⊙ W₂ᵀ{r}) xᵀ"));
    assert_fail(
        check_derivative(&p.typed, &wrong, &config()),
        "sheet error (ii) carried into ∂L/∂W₁",
    );
}

#[test]
fn diff_sheet_swish_network_with_an_opaque_loss() {
    let p = problem("ℓ(W₂ swish(W₁x + b₁) + b₂)", "ℓ: fn");
    let g = "∇ℓ(W₂ swish(z₁) + b₂)";
    p.check("W₂", 1, &network(&format!("{g} swish(z₁)ᵀ")));
    p.check("b₂", 1, &network(g));
    p.check("W₁", 1, &network(&format!("({{s′}} ⊙ W₂ᵀ{g}) xᵀ")));
    p.check("b₁", 1, &network(&format!("{{s′}} ⊙ W₂ᵀ{g}")));
    let err = derivative(&p.typed, "b₂", 2).unwrap_err();
    assert!(err.to_string().starts_with("unsupported:"), "{err}");
}

// ---------------------------------------------------------------------------------------
// 4. The other derivative kinds of SPEC §4, on the sheet's expressions.

#[test]
fn diff_sheet_jacobian_of_the_hidden_layer() {
    let p = problem("swish(W₁x + b₁)", "");
    let ours = p.check("x", 1, &network("diag({s′}) W₁"));
    assert_eq!(ours.kind, DerivativeKind::Jacobian);
    let j = p.check("b₁", 1, &network("diag({s′})"));
    assert_eq!(j.kind, DerivativeKind::Jacobian);
}

#[test]
fn diff_sheet_differential_of_the_kernel_inverse() {
    let p = problem("(αXXᵀ + β⁻¹I)⁻¹", "");
    let ours = p.ours("X", 1);
    assert_eq!(ours.kind, DerivativeKind::Differential);
    assert_pass(check_derivative(&p.typed, &ours, &config()), "dK⁻¹");
    assert!(ours.expr.mentions("X"));
}

#[test]
fn diff_sheet_hessian_of_least_squares() {
    let p = problem("½‖Ax − b‖²", "");
    let ours = p.check("x", 2, "AᵀA");
    assert_eq!(ours.kind, DerivativeKind::Hessian);
    p.check("x", 1, "Aᵀ(Ax − b)");
}

#[test]
fn diff_sheet_second_differential_of_matrix_functions() {
    for (src, decls) in [
        (GPLVM, ""),
        (AUTOENCODER, ""),
        ("log|X|", "X: n×n spd"),
        ("tr(XᵀAX)", ""),
    ] {
        let p = problem(src, decls);
        let wrt = if src == AUTOENCODER { "W" } else { "X" };
        let ours = p.ours(wrt, 2);
        assert_eq!(ours.kind, DerivativeKind::SecondDifferential);
        assert_pass(
            check_derivative(&p.typed, &ours, &config()),
            &format!("d²({src})"),
        );
    }
}

#[test]
fn diff_sheet_symmetric_variables() {
    let p = problem("tr(AX)", "X: n×n sym");
    let ours = p.check("X", 1, "½(A + Aᵀ)");
    assert!(ours.symmetric);
    let p = problem("log|X|", "X: n×n spd");
    let ours = p.check("X", 1, "X⁻¹");
    assert!(ours.symmetric);
    // The unconstrained answer Aᵀ is not the symmetric gradient.
    let p = problem("tr(AX)", "X: n×n sym");
    let ours = p.ours("X", 1);
    let unconstrained = p.claim(&ours, "Aᵀ");
    assert_fail(
        check_derivative(&p.typed, &unconstrained, &config()),
        "Aᵀ as the symmetric gradient",
    );
}

#[test]
fn diff_errors_name_the_problem() {
    let p = problem(AUTOENCODER, "");
    let err = derivative(&p.typed, "w", 1).unwrap_err();
    assert_eq!(
        err,
        Error::UnknownVariable {
            name: "w".into(),
            hint: Some("W".into()),
            known: vec!["W".into(), "x".into()],
        }
    );
    assert!(err.diagnostic().hints.iter().any(|h| h.contains("`W`")));
    // The hint lists the variables there are.
    assert!(err
        .diagnostic()
        .hints
        .iter()
        .any(|h| h.contains("the variables are `W`, `x`")));
    let p = problem("Wx", "");
    let err = derivative(&p.typed, "x", 2).unwrap_err();
    assert!(matches!(err, Error::NotScalar { .. }));
    let p = problem("‖x‖²", "x: n, y: n");
    let zero = p.ours("y", 1);
    assert!(zero.expr.is_zero());
    assert_eq!(zero.expr.shape, p.typed.vars["y"].shape);
}

// ---------------------------------------------------------------------------------------
// 5. Random well-shaped scalar expressions over the whole operation set.

mod random_expressions {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Builds typed trees over A, B: n×n, x, y: n and α, β: scalars, keeping every
    /// value in its domain: logs and square roots of positive things, inverses and
    /// log-determinants of SPD matrices MMᵀ + I, exponentials of bounded arguments.
    pub struct Generator {
        rng: rand_chacha::ChaCha8Rng,
        n: Dim,
    }

    impl Generator {
        pub fn new(seed: u64) -> Generator {
            Generator {
                rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed),
                n: Dim::Sym("n".into()),
            }
        }

        pub fn vars(&self) -> std::collections::BTreeMap<String, VarDecl> {
            let matrix = Shape::new(self.n.clone(), self.n.clone());
            let vector = Shape::vector(self.n.clone());
            [
                ("A", matrix.clone()),
                ("B", matrix),
                ("x", vector.clone()),
                ("y", vector),
                ("α", Shape::scalar()),
                ("β", Shape::scalar()),
            ]
            .into_iter()
            .map(|(name, shape)| {
                let props = Props::default();
                (name.to_string(), VarDecl { shape, props })
            })
            .collect()
        }

        fn pick(&mut self, n: u32) -> u32 {
            self.rng.gen_range(0..n)
        }

        fn matrix_var(&mut self) -> Rc<Expr> {
            let name = if self.pick(2) == 0 { "A" } else { "B" };
            build::var(name, Shape::new(self.n.clone(), self.n.clone()))
        }

        fn vector_var(&mut self) -> Rc<Expr> {
            let name = if self.pick(2) == 0 { "x" } else { "y" };
            build::var(name, Shape::vector(self.n.clone()))
        }

        fn scalar_var(&mut self) -> Rc<Expr> {
            let name = if self.pick(2) == 0 { "α" } else { "β" };
            build::var(name, Shape::scalar())
        }

        /// A smooth elementwise function, or with `kinks` also relu and step. Matrices get
        /// no kinks: diag(v) and its products have exact zeros, where relu has no
        /// derivative.
        fn elementwise_function(&mut self, kinks: bool) -> Func {
            let all = [
                Func::Sigma,
                Func::Tanh,
                Func::Swish,
                Func::Softplus,
                Func::Relu,
                Func::Step,
            ];
            let count = if kinks { 6 } else { 4 };
            all[self.pick(count) as usize]
        }

        /// A bounded elementwise squashing, so that nested products stay moderate.
        fn squash(&mut self, e: Rc<Expr>) -> Rc<Expr> {
            let f = if self.pick(2) == 0 {
                Func::Tanh
            } else {
                Func::Sigma
            };
            build::func(f, e)
        }

        pub fn spd(&mut self, depth: u32) -> Rc<Expr> {
            let m = self.matrix(depth);
            let n = self.n.clone();
            build::add(
                build::mul(m.clone(), build::transpose(m)),
                build::identity(n),
            )
        }

        pub fn positive(&mut self, depth: u32) -> Rc<Expr> {
            match self.pick(4) {
                0 => build::add(build::norm_sq(self.vector(depth)), build::int(1)),
                1 => {
                    let s = self.scalar(depth);
                    let s = self.squash(s);
                    build::func(Func::Exp, s)
                }
                2 => build::func(Func::Sigma, self.scalar(depth)),
                _ => build::add(
                    build::mul(self.scalar(depth), self.scalar(depth)),
                    build::int(2),
                ),
            }
        }

        pub fn matrix(&mut self, depth: u32) -> Rc<Expr> {
            if depth == 0 {
                return self.matrix_var();
            }
            let d = depth - 1;
            match self.pick(14) {
                0 => self.matrix_var(),
                1 => build::transpose(self.matrix(d)),
                2 => build::mul(self.matrix(d), self.matrix(d)),
                3 => build::add(self.matrix(d), self.matrix(d)),
                4 => build::sub(self.matrix(d), self.scalar(d)),
                5 => build::mul(self.scalar(d), self.matrix(d)),
                6 => build::hadamard(self.matrix(d), self.matrix(d)),
                7 => build::mul(self.vector(d), build::transpose(self.vector(d))),
                8 => build::diag(self.vector(d)),
                9 => build::inverse(self.spd(d)),
                10 => {
                    let m = self.matrix(d);
                    let k = if self.pick(2) == 0 { 2 } else { 3 };
                    build::pow(self.squash(m), k)
                }
                11 => build::pow(self.spd(d), -2),
                12 => {
                    let f = self.elementwise_function(false);
                    build::func(f, self.matrix(d))
                }
                _ => {
                    if self.pick(2) == 0 {
                        build::div(self.matrix(d), self.positive(d))
                    } else {
                        let m = self.matrix(d);
                        let denominator = build::func(Func::Exp, self.squash(m));
                        build::div(self.matrix(d), denominator)
                    }
                }
            }
        }

        pub fn vector(&mut self, depth: u32) -> Rc<Expr> {
            if depth == 0 {
                return self.vector_var();
            }
            let d = depth - 1;
            match self.pick(11) {
                0 => self.vector_var(),
                1 => build::mul(self.matrix(d), self.vector(d)),
                2 => build::add(self.vector(d), self.vector(d)),
                3 => build::sub(self.vector(d), self.scalar(d)),
                4 => build::mul(self.scalar(d), self.vector(d)),
                5 => build::hadamard(self.vector(d), self.vector(d)),
                6 => {
                    let f = self.elementwise_function(true);
                    build::func(f, self.vector(d))
                }
                7 => build::diag(self.matrix(d)),
                8 => build::neg(self.vector(d)),
                9 => {
                    let argument = build::add(
                        build::hadamard(self.vector(d), self.vector(d)),
                        build::int(1),
                    );
                    let f = if self.pick(2) == 0 {
                        Func::Log
                    } else {
                        Func::Sqrt
                    };
                    build::func(f, argument)
                }
                _ => {
                    let v = self.vector(d);
                    build::div(self.vector(d), build::func(Func::Exp, self.squash(v)))
                }
            }
        }

        pub fn scalar(&mut self, depth: u32) -> Rc<Expr> {
            if depth == 0 {
                return self.scalar_var();
            }
            let d = depth - 1;
            match self.pick(17) {
                0 => self.scalar_var(),
                1 => build::trace(self.matrix(d)),
                2 => build::mul(build::transpose(self.vector(d)), self.vector(d)),
                3 => build::norm_sq(self.vector(d)),
                4 => build::norm_sq(self.matrix(d)),
                5 => build::sum(self.vector(d)),
                6 => build::sum(self.matrix(d)),
                7 => build::det(self.spd(d)),
                8 => build::logdet(self.spd(d)),
                9 => build::func(Func::Log, self.positive(d)),
                10 => build::func(Func::Sqrt, self.positive(d)),
                11 => build::mul(self.scalar(d), self.scalar(d)),
                12 => build::sub(self.scalar(d), self.scalar(d)),
                13 => build::div(self.scalar(d), self.positive(d)),
                14 => build::inverse(self.positive(d)),
                15 => build::apply("ℓ", self.vector(d)),
                _ => {
                    let s = self.scalar(d);
                    build::func(Func::Exp, self.squash(s))
                }
            }
        }
    }
}

mod random_gradients {
    use super::random_expressions::Generator;
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::RngSeed;

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 500,
            rng_seed: RngSeed::Fixed(20240601),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn diff_random_scalar_gradients_agree_with_finite_differences(
            seed in any::<u64>(),
            depth in 1u32..5,
            wrt_index in 0usize..6,
        ) {
            let mut generator = Generator::new(seed);
            let f = generator.scalar(depth);
            let vars = generator.vars();
            // Differentiate with respect to a variable that occurs, when one does.
            let free = f.free_vars();
            let wrt = if free.is_empty() {
                "α".to_string()
            } else {
                free[wrt_index % free.len()].clone()
            };
            let typed = Typed {
                expr: (*f).clone(),
                vars,
                fns: ["ℓ".to_string()].into(),
            };
            let ours = derivative(&typed, &wrt, 1).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(ours.kind, DerivativeKind::Gradient);
            match check_derivative(&typed, &ours, &config()) {
                Verdict::Pass { .. } => {}
                other => prop_assert!(false, "∂/∂{} of {:?}: {:?}", wrt, f, other),
            }
        }

        /// Hessians go through the Jacobian's linear extraction, which may refuse
        /// ("unsupported: …", e.g. a Hadamard product of matrices in dx) but must never
        /// be wrong.
        #[test]
        fn diff_random_hessians_agree_or_refuse(
            seed in any::<u64>(),
            depth in 1u32..4,
            use_x in any::<bool>(),
        ) {
            // Redraw until the expression mentions the variable, so the Hessian is not 0.
            let wrt = if use_x { "x" } else { "y" };
            let mut attempt = 0;
            let (generator, f) = loop {
                let mut generator = Generator::new(seed.wrapping_add(attempt));
                let f = generator.scalar(depth);
                attempt += 1;
                if f.mentions(wrt) || attempt == 50 {
                    break (generator, f);
                }
            };
            let typed = Typed {
                expr: (*f).clone(),
                vars: generator.vars(),
                fns: ["ℓ".to_string()].into(),
            };
            match derivative(&typed, wrt, 2) {
                Ok(ours) => {
                    prop_assert_eq!(ours.kind, DerivativeKind::Hessian);
                    match check_derivative(&typed, &ours, &config()) {
                        Verdict::Pass { .. } => {}
                        other => prop_assert!(false, "∂²/∂{}² of {:?}: {:?}", wrt, f, other),
                    }
                }
                Err(Error::Unsupported { what }) => prop_assert!(!what.is_empty()),
                Err(other) => prop_assert!(false, "{}", other),
            }
        }
    }
}
