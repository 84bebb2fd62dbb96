"""`--format jax`: the generated code, compiled by jax.jit, agrees with jax's own
automatic differentiation (grad, jacfwd, hessian, jvp) of the generated `value`, on the
corpus. CI installs jax (CPU) in the test environment."""

import pytest

jax = pytest.importorskip("jax", reason="jax is not installed: the JAX tests need it")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import matcalc  # noqa: E402
from conftest import draw_inputs  # noqa: E402
from corpus import CORPUS  # noqa: E402


def derivatives(expr, wrt, decls, lets, order):
    result = matcalc.diff(expr, wrt=wrt, decl=decls, let=lets, order=order)
    return result, (list(result) if isinstance(result, list) else [result])


def autodiff(kind, value, args, name, symmetric, direction):
    """What jax says the derivative of `value` is, independently of matcalc."""

    def f(v):
        return value(**{**args, name: v})

    x = args[name]
    if kind == "gradient":
        g = jax.grad(f)(x)
        return (g + g.T) / 2 if symmetric else g
    if kind == "jacobian":
        return jax.jacfwd(f)(x)
    if kind == "hessian":
        return jax.hessian(f)(x)
    if kind == "differential":
        return jax.jvp(f, (x,), (direction,))[1]
    assert kind == "second differential", kind
    return jax.jvp(lambda v: jax.jvp(f, (v,), (direction,))[1], (x,), (direction,))[1]


def close(got, expected):
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    return float(np.max(np.abs(got - expected), initial=0.0)) / scale < 1e-8


@pytest.mark.parametrize("expr, wrt, decls, lets, order", CORPUS)
def test_jitted_derivative_agrees_with_jax_autodiff(expr, wrt, decls, lets, order):
    result, each = derivatives(expr, wrt, decls, lets, order)
    jitted = result.jax_fn()
    value = result.jax_fn("value", jit=False)
    module = result._module("jax")
    rng = np.random.default_rng(11)
    for trial in range(2):
        args = {
            k: jnp.asarray(v) if isinstance(v, np.ndarray) else v
            for k, v in draw_inputs(module, rng).items()
        }
        for d in each:
            if d.json["kind"].endswith("differential"):
                args["d" + d.param] = jnp.asarray(rng.standard_normal(np.shape(args[d.param])))
        if not bool(jnp.all(jnp.isfinite(value(**{k: v for k, v in args.items() if k in module.SHAPES})))):
            continue
        got = jitted(**args)
        got = got if isinstance(result, list) else (got,)
        for d, claimed in zip(each, got):
            expected = autodiff(
                d.json["kind"],
                value,
                {k: v for k, v in args.items() if k in module.SHAPES},
                d.param,
                d.symmetric,
                args.get("d" + d.param),
            )
            assert close(claimed, expected), (expr, d.wrt, claimed, expected)


@pytest.mark.parametrize("expr, wrt, decls, lets, order", CORPUS)
def test_the_generated_self_test_passes(expr, wrt, decls, lets, order):
    result, _ = derivatives(expr, wrt, decls, lets, order)
    assert result.jax_fn("check_gradient")() < 1e-8
    assert result.numpy_fn("check_gradient")() < 1e-5


def test_value_and_derivative_is_both_in_one_call():
    d = matcalc.diff("½‖WᵀWx − x‖²", wrt="W")
    args = d.jax_fn("random_inputs")(seed=4)
    value, gradient = d.jax_fn("value_and_derivative")(**args)
    assert close(value, d.jax_fn("value")(**args))
    assert close(gradient, d.jax_fn()(**args))
    several = matcalc.diff("½‖W₂ swish(z₁) + b₂ − y‖²", wrt="W₁,b₁", let="z₁ = W₁x + b₁")
    args = several.jax_fn("random_inputs")(seed=5)
    value, (g1, g2) = several.jax_fn("value_and_derivative")(**args)
    e1, e2 = several.jax_fn()(**args)
    assert close(g1, e1) and close(g2, e2)


def test_the_code_has_no_python_shape_branches_and_retraces_for_new_sizes():
    d = matcalc.diff("½‖WᵀWx − x‖²", wrt="W")
    assert " if " not in d.jax_source.split("def derivative")[1].split("\n\n\n")[0]
    gradient = d.jax_fn()
    for m, n in [(2, 3), (5, 4)]:
        assert gradient(W=jnp.ones((m, n)), x=jnp.ones(n)).shape == (m, n)


def test_wrong_shapes_are_a_value_error_even_under_jit():
    gradient = matcalc.diff("½‖WᵀWx − x‖²", wrt="W").jax_fn()
    with pytest.raises(ValueError, match="x has shape"):
        gradient(W=jnp.ones((3, 4)), x=jnp.ones(5))


def test_the_jax_source_is_the_command_lines():
    from conftest import cli

    status, out, err = cli("diff", "½‖WᵀWx − x‖²", "--wrt", "W", "--format", "jax")
    assert status == 0, err
    assert out == matcalc.diff("½‖WᵀWx − x‖²", wrt="W").jax_source
