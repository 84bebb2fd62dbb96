"""`verify` rejects the sheet's two mistakes with a counterexample, and accepts the
right answers."""

import numpy as np

import matcalc
from conftest import cli

GPLVM = "−c − D/2 log|K| − ½ tr(K⁻¹YYᵀ)"
GPLVM_K = "K = αXXᵀ + β⁻¹I"
# The sheet treats the derivative of K⁻¹ as −(K⁻ᵀ)², both factors on one side.
GPLVM_SHEET = "α/2 ((K⁻ᵀ)²YYᵀ + YYᵀ(K⁻ᵀ)²)X − DαK⁻¹X"
SWISH = "½‖W₂ swish(z) + b₂ − y‖²"
# The sheet's swish′(z) = σ(z) + z(1 − σ(z)) forgets a factor σ(z) in the second term.
SWISH_SHEET = "(σ(z) + z ⊙ (1 − σ(z))) ⊙ W₂ᵀ(W₂ swish(z) + b₂ − y)"
SWISH_RIGHT = "(σ(z) + z ⊙ σ(z) ⊙ (1 − σ(z))) ⊙ W₂ᵀ(W₂ swish(z) + b₂ − y)"


def test_the_sheets_gplvm_gradient_is_rejected_with_a_counterexample():
    verdict = matcalc.verify(GPLVM, "X", GPLVM_SHEET, let=GPLVM_K)
    assert not verdict and not verdict.correct and not verdict.inconclusive
    example = verdict.counterexample
    assert example is not None and example.rel_error > 1e-6
    assert example.checked.startswith("gradient with respect to X")
    assert set(example.sizes) and "X" in example.values
    assert np.shape(example.expected) == np.shape(example.claimed)
    row, col = example.worst
    assert abs(example.expected[row][col] - example.claimed[row][col]) > 0
    assert repr(verdict).startswith("claim: wrong")
    assert "the derivative is" in repr(verdict)
    assert verdict.derivative.text == matcalc.diff(GPLVM, wrt="X", let=GPLVM_K).text


def test_steps_names_the_wrong_rule():
    verdict = matcalc.verify(
        "−½ tr(K⁻¹YYᵀ)", "X", "α/2 ((K⁻ᵀ)²YYᵀ + YYᵀ(K⁻ᵀ)²)X", let=GPLVM_K, steps=True
    )
    assert not verdict
    assert verdict.first_wrong_step and "inverse" in verdict.first_wrong_step
    assert "first wrong step:" in repr(verdict)


def test_the_sheets_swish_derivative_is_rejected():
    verdict = matcalc.verify(SWISH, "z", SWISH_SHEET)
    assert not verdict and verdict.counterexample is not None


def test_right_answers_are_accepted():
    assert matcalc.verify(SWISH, "z", SWISH_RIGHT)
    verdict = matcalc.verify("½‖WᵀWx − x‖²", "W", "W(zxᵀ + xzᵀ)")
    assert verdict.passed and verdict.trials == 3
    assert repr(verdict).startswith("claim: correct")
    assert matcalc.verify(GPLVM, "X", "αK⁻¹(YYᵀK⁻¹X − DX)", let=GPLVM_K)


def test_the_same_verdict_as_the_command_line():
    args = ["verify", GPLVM, "--wrt", "X", "--claim", GPLVM_SHEET, "--let", GPLVM_K]
    status, out, err = cli(*args)
    assert status == 1, err
    assert repr(matcalc.verify(GPLVM, "X", GPLVM_SHEET, let=GPLVM_K)) == out.rstrip("\n")
    status, out, err = cli(*args, "--steps")
    verdict = matcalc.verify(GPLVM, "X", GPLVM_SHEET, let=GPLVM_K, steps=True)
    assert repr(verdict) == out.rstrip("\n")
