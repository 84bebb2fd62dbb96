//! Every explicit limit stops hostile input with its own clean error: input length,
//! bracket nesting, tree depth, operator runs, exponent size, number of variables, and
//! the e-graph's nodes, iterations and time. Each is a public field, so a library user
//! (and the command line) can change it.

use std::time::{Duration, Instant};

use matcalc::parse::{parse, parse_with, Error, Limits, ParseOptions};
use matcalc::session::{Options, Session};
use matcalc::shape::infer;
use matcalc::simplify::{self, simplify};

fn options_with(limits: Limits) -> ParseOptions {
    let mut options = ParseOptions::standard();
    options.limits = limits;
    options
}

/// Standard limits, except any input length.
fn long_inputs() -> ParseOptions {
    options_with(Limits {
        max_input_len: 10_000_000,
        ..Limits::standard()
    })
}

#[test]
fn input_length_is_limited_and_configurable() {
    let long = format!("x{}", " + x".repeat(3_000));
    let error = parse(&long).expect_err("12 001 bytes is over the standard limit");
    assert!(matches!(error, Error::InputTooLong { .. }), "{error:?}");
    assert!(error.to_string().starts_with("input too long"), "{error}");
    let short = options_with(Limits {
        max_input_len: 4,
        ..Limits::standard()
    });
    assert!(matches!(
        parse_with("x + y", &short),
        Err(Error::InputTooLong { len: 5, max: 4 })
    ));
    assert!(parse_with("x+y", &short).is_ok());
}

#[test]
fn nesting_of_100_000_brackets_is_an_error_not_a_stack_overflow() {
    for (open, close) in [("(", ")"), ("[", "]"), ("{", "}")] {
        let deep = format!("{}x{}", open.repeat(100_000), close.repeat(100_000));
        let error = parse_with(&deep, &long_inputs()).expect_err("too deep");
        assert!(
            matches!(error, Error::NestingTooDeep { .. }),
            "{open}: {error:?}"
        );
        assert!(error.to_string().contains("nested too deeply"), "{error}");
    }
    // Nested function calls are caught as a run of prefix operators first.
    for open in ["tr(", "exp(", "log|"] {
        let deep = format!("{}x{}", open.repeat(100_000), ")".repeat(100_000));
        let error = parse_with(&deep, &long_inputs()).expect_err("too deep");
        assert!(
            matches!(
                error,
                Error::NestingTooDeep { .. } | Error::OperatorRunTooLong { .. }
            ),
            "{open}: {error:?}"
        );
    }
    let bars = format!("{}x{}", "‖".repeat(50_000), "‖".repeat(50_000));
    assert!(parse_with(&bars, &long_inputs()).is_err());
}

#[test]
fn operator_runs_of_100_000_are_errors() {
    for text in [
        format!("{}x", "−".repeat(100_000)),
        format!("{}x", "- ".repeat(100_000)),
        format!("x{}", "ᵀ".repeat(100_000)),
        format!("x{}", "'".repeat(100_000)),
        format!("A{}", "⁻¹".repeat(100_000)),
    ] {
        let error = parse_with(&text, &long_inputs()).expect_err("a run of 100 000");
        assert!(
            matches!(
                error,
                Error::OperatorRunTooLong { .. } | Error::TreeTooDeep { .. }
            ),
            "{:?}: {error:?}",
            text.chars().take(5).collect::<String>()
        );
    }
}

#[test]
fn long_chains_hit_the_tree_depth_limit() {
    let chain = format!("x{}", " + x".repeat(100_000));
    let error = parse_with(&chain, &long_inputs()).expect_err("depth 100 001");
    // The parser's own backtracking budget may give up first; either is clean.
    assert!(
        matches!(
            error,
            Error::TreeTooDeep { max: 512, .. } | Error::TooComplex { .. }
        ),
        "{error:?}"
    );
    let chain = format!("x{}", " + x".repeat(1_000));
    let error = parse_with(&chain, &long_inputs()).expect_err("depth 1 001");
    assert!(
        matches!(error, Error::TreeTooDeep { max: 512, .. }),
        "{error:?}"
    );
    let shallow = options_with(Limits {
        max_input_len: 10_000_000,
        max_depth: 3,
        ..Limits::standard()
    });
    assert!(parse_with("x + x", &shallow).is_ok());
    assert!(matches!(
        parse_with("x + x + x + x", &shallow),
        Err(Error::TreeTooDeep { max: 3, .. })
    ));
}

#[test]
fn exponents_are_limited_and_configurable() {
    for text in [
        "A^{1000000}",
        "A^(1000000)",
        "A¹⁰⁰⁰⁰⁰⁰",
        "A^{65}",
        "A^{-65}",
        "A⁻⁶⁵",
    ] {
        let error = parse(text).expect_err("over 64");
        assert!(
            matches!(error, Error::ExponentTooLarge { max: 64, .. }),
            "{text}: {error:?}"
        );
        assert!(
            error.to_string().starts_with("exponent too large"),
            "{error}"
        );
        assert!(!error.diagnostic().render(text).is_empty());
    }
    assert!(parse("A^{64}").is_ok());
    assert!(parse("A^{-64}").is_ok());
    // Beyond 64 bits is a different error, still clean.
    assert!(matches!(
        parse("A^{99999999999999999999999}"),
        Err(Error::InvalidNumber { .. })
    ));
    let generous = options_with(Limits {
        max_exponent: 1_000_000,
        ..Limits::standard()
    });
    assert!(parse_with("A^{1000000}", &generous).is_ok());
    let strict = options_with(Limits {
        max_exponent: 1,
        ..Limits::standard()
    });
    assert!(parse_with("A⁻¹", &strict).is_ok());
    assert!(matches!(
        parse_with("A²", &strict),
        Err(Error::ExponentTooLarge {
            exponent: 2,
            max: 1,
            ..
        })
    ));
}

fn scalars(count: usize) -> String {
    (0..count)
        .map(|i| format!("α_{{{i}}}"))
        .collect::<Vec<_>>()
        .join(" + ")
}

#[test]
fn distinct_variables_are_limited_and_configurable() {
    assert!(parse(&scalars(200)).is_ok());
    let error = parse(&scalars(201)).expect_err("201 variables");
    assert!(
        matches!(
            error,
            Error::TooManySymbols {
                count: 201,
                max: 200,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().starts_with("too many variables"),
        "{error}"
    );
    // Repeats count once.
    assert!(parse(&format!("{} + {}", scalars(150), scalars(150))).is_ok());
    let few = options_with(Limits {
        max_symbols: 2,
        ..Limits::standard()
    });
    assert!(parse_with("xᵀy + xᵀx", &few).is_ok());
    assert!(matches!(
        parse_with("xᵀy + zᵀx", &few),
        Err(Error::TooManySymbols { count: 3, .. })
    ));
}

#[test]
fn the_session_reports_parse_limits_as_errors() {
    let session = Session::new();
    let options = Options::standard();
    let error = session
        .derivative("tr(A^{1000000})", &["A"], &options)
        .expect_err("exponent too large");
    assert!(
        error.render().contains("exponent too large"),
        "{}",
        error.render()
    );
    let error = session
        .simplify(&scalars(300), &options)
        .expect_err("too many variables");
    assert!(
        error.render().contains("too many variables"),
        "{}",
        error.render()
    );
}

/// A gradient whose e-graph grows fast.
fn big_gradient() -> (matcalc::shape::Typed, matcalc::expr::Expr) {
    let text = "‖(A + B)(A + B)(A + B)(A + B)(A + B) − (C + D)ᵀ(C + D)(C + D)‖²";
    let typed = infer(&parse(text).expect("parses"), &Default::default()).expect("shapes");
    let gradient = matcalc::diff::derivative(&typed, "A", 1).expect("gradient");
    (typed, gradient.expr)
}

#[test]
fn the_egraph_node_limit_stops_saturation() {
    let (typed, gradient) = big_gradient();
    let limits = simplify::Limits {
        iterations: 1_000,
        nodes: 500,
        time: Duration::from_secs(60),
    };
    let started = Instant::now();
    let result = simplify(&gradient, &typed.vars, &[], &limits);
    assert!(!result.saturated);
    assert!(!result.stop_reason.is_empty());
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn the_egraph_time_limit_stops_saturation() {
    let (typed, gradient) = big_gradient();
    let limits = simplify::Limits {
        iterations: 1_000_000,
        nodes: 100_000_000,
        time: Duration::from_millis(1),
    };
    let result = simplify(&gradient, &typed.vars, &[], &limits);
    assert!(!result.saturated);
    assert!(!result.stop_reason.is_empty());
}

#[test]
fn the_egraph_iteration_limit_stops_saturation() {
    let (typed, gradient) = big_gradient();
    let limits = simplify::Limits {
        iterations: 1,
        nodes: 100_000_000,
        time: Duration::from_secs(60),
    };
    let result = simplify(&gradient, &typed.vars, &[], &limits);
    assert!(!result.saturated);
}

#[test]
fn session_options_carry_the_egraph_limits() {
    let session = Session::new();
    let mut options = Options::standard();
    options.limits = simplify::Limits {
        iterations: 1,
        nodes: 100,
        time: Duration::from_millis(50),
    };
    let results = session
        .derivative("‖(A + B)(A + B)(A + B) − Cᵀ‖²", &["A"], &options)
        .expect("derivative");
    assert!(results.iter().all(|r| !r.form.saturated));
}
