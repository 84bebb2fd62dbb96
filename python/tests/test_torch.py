"""`--format torch`: the generated code agrees with torch.func's automatic
differentiation of the generated `value`, on the corpus. torch is large and CI does not
install it: without it these tests are skipped, and say so."""

import pytest

torch = pytest.importorskip(
    "torch",
    reason="torch is not installed: the PyTorch tests are skipped (CI does not install "
    "torch; `pip install torch` to run them)",
)

import matcalc  # noqa: E402
from corpus import CORPUS  # noqa: E402


@pytest.mark.parametrize("expr, wrt, decls, lets, order", CORPUS)
def test_derivative_agrees_with_torch_autodiff(expr, wrt, decls, lets, order):
    result = matcalc.diff(expr, wrt=wrt, decl=decls, let=lets, order=order)
    assert result.torch_fn("check_gradient")() < 1e-8


def test_value_and_derivative_and_float32():
    d = matcalc.diff("½‖WᵀWx − x‖²", wrt="W")
    args = d.torch_fn("random_inputs")(seed=2)
    value, gradient = d.torch_fn("value_and_derivative")(**args)
    assert torch.allclose(gradient, d.torch_fn()(**args))
    w = args["W"].clone().requires_grad_(True)
    d.torch_fn("value")(W=w, x=args["x"]).backward()
    assert torch.allclose(w.grad, gradient)
    single = {k: v.float() for k, v in args.items()}
    assert d.torch_fn()(**single).dtype == torch.float32
