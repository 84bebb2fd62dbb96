"""The problem sheet's three problems through the Python API: the results the README
shows, the same as the command line's, and right against finite differences."""

import json

import numpy as np
import pytest

import matcalc
from conftest import cli, draw_inputs, finite_difference, relative_error

AUTOENCODER = "½‖WᵀWx − x‖²"
GPLVM = "−c − D/2 log|K| − ½ tr(K⁻¹YYᵀ)"
GPLVM_K = "K = αXXᵀ + β⁻¹I"
SWISH = "½‖W₂ swish(z₁) + b₂ − y‖²"
SWISH_Z = "z₁ = W₁x + b₁"


def test_autoencoder_is_factored_with_the_residual_named():
    d = matcalc.diff(AUTOENCODER, wrt="W")
    assert isinstance(d, matcalc.Derivative)
    assert d.text == "W(zxᵀ + xzᵀ)"
    assert d.where == [("z", "WᵀWx − x")]
    assert d.ascii == "W*(z*x' + x*z')"
    assert d.shape == ("m", "n")
    assert d.lhs == "∂/∂W"
    assert repr(d) == "∂/∂W = W(zxᵀ + xzᵀ)\n  where z = WᵀWx − x"
    assert d.check is None


def test_check_passes_for_the_three_problems():
    d = matcalc.diff(AUTOENCODER, wrt="W", check=True)
    assert d.check and d.check.passed and d.check.trials == 3
    assert d.check.max_rel_error < 1e-6
    assert repr(d).endswith(d.check.line)
    assert d.check.line.startswith("check: ok (3 random trials")
    gplvm = matcalc.diff(GPLVM, wrt="X", let=GPLVM_K, check=True)
    assert gplvm.check.passed, gplvm.check
    swish = matcalc.diff(SWISH, wrt="W₁,b₁,W₂,b₂", let=SWISH_Z, check=True)
    assert all(d.check.passed for d in swish), swish


def test_gplvm_folds_the_definition_back():
    session = matcalc.Session(let=GPLVM_K)
    d = session.diff(GPLVM, wrt="X")
    assert ("K", "αXXᵀ + I/β") in d.where
    assert "K⁻¹" in d.text


def test_swish_network_gives_four_gradients_sharing_their_wheres():
    results = matcalc.diff(SWISH, wrt=["W₁", "b₁", "W₂", "b₂"], let=SWISH_Z)
    assert isinstance(results, matcalc.Derivatives) and isinstance(results, list)
    assert [d.wrt for d in results] == ["W₁", "b₁", "W₂", "b₂"]
    assert [d.shape for d in results][1] == results[0].shape[:1] + (1,)
    for line in results.text.splitlines()[:4]:
        assert line.startswith("∂/∂")
    assert results.text.count("where") == 1
    # The same as the comma-separated spelling.
    again = matcalc.diff(SWISH, wrt="W₁,b₁,W₂,b₂", let=SWISH_Z)
    assert [d.text for d in again] == [d.text for d in results]


def without_timings(value):
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k != "timings"}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


@pytest.mark.parametrize(
    "expr, wrt, lets",
    [(AUTOENCODER, "W", []), (GPLVM, "X", [GPLVM_K]), (SWISH, "W₁,b₁,W₂,b₂", [SWISH_Z])],
)
def test_the_same_answer_as_the_command_line(expr, wrt, lets):
    args = ["diff", expr, "--wrt", wrt]
    for definition in lets:
        args += ["--let", definition]
    status, out, err = cli(*args, "--format", "json")
    assert status == 0, err
    expected = without_timings(json.loads(out))
    got = matcalc.diff(expr, wrt=wrt, let=lets)
    if isinstance(got, list):
        assert [without_timings(d.json) for d in got] == expected["results"]
        status, text, err = cli(*args)
        assert repr(got) == text.rstrip("\n")
    else:
        assert without_timings(got.json) == expected
        status, text, err = cli(*args)
        assert repr(got) == text.rstrip("\n")
    status, numpy_source, err = cli(*args, "--format", "numpy")
    assert status == 0, err
    joint = got.numpy_source
    assert joint == numpy_source


@pytest.mark.parametrize(
    "expr, wrt, lets",
    [(AUTOENCODER, "W", []), (GPLVM, "X", [GPLVM_K]), (SWISH, "W₁,b₁,W₂,b₂", [SWISH_Z])],
)
def test_the_numpy_functions_agree_with_finite_differences(expr, wrt, lets):
    result = matcalc.diff(expr, wrt=wrt, let=lets)
    derivatives = result if isinstance(result, list) else [result]
    rng = np.random.default_rng(3)
    for d in derivatives:
        module = d._module("numpy")
        value, derivative = d.numpy_fn("value"), d.numpy_fn()
        name = d.param
        for _ in range(3):
            args = draw_inputs(module, rng)
            got = derivative(**args)
            expected = finite_difference(value, args, name)
            assert relative_error(got, expected) < 1e-6, (d.wrt, got, expected)
    if isinstance(result, list):
        joint = result.numpy_fn()(**args)
        assert len(joint) == len(result)

