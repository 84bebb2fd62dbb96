"""What a notebook shows: LaTeX for results, readable text everywhere else."""

import matcalc


def test_a_derivative_renders_as_display_latex():
    d = matcalc.diff("½‖WᵀWx − x‖²", wrt="W")
    latex = d._repr_latex_()
    assert latex.startswith("$$\\begin{aligned}") and latex.endswith("\\end{aligned}$$")
    assert "\\frac{\\partial}{\\partial W} &= " + d.latex in latex
    assert "\\text{where } z &= " in latex
    assert d.latex == "W\\left(z x^\\top + x z^\\top\\right)"


def test_several_derivatives_render_as_one_block():
    results = matcalc.diff("½‖W₂ swish(z₁) + b₂ − y‖²", wrt="W₁,b₁", let="z₁ = W₁x + b₁")
    latex = results._repr_latex_()
    assert latex.count("\\begin{aligned}") == 1
    for d in results:
        assert d.latex in latex


def test_a_simplified_expression_renders_with_its_wheres():
    s = matcalc.simplify("(Xᵀ)ᵀ + X")
    assert s._repr_latex_().startswith("$$\\begin{aligned}")
    assert s.latex in s._repr_latex_()
    assert repr(s) == s.text


def test_an_explanation_reads_as_the_backward_pass():
    e = matcalc.explain("½‖WᵀWx − x‖²", wrt="W", check=True)
    assert "Backward" in e.text or "backward" in e.text
    assert e.svg.lstrip().startswith("<svg") or "<svg" in e.svg
    assert e.dot.startswith("digraph")
    assert e.checks and all(verdict.passed for _, verdict in e.checks)
    assert repr(e).startswith(e.text.rstrip("\n").splitlines()[0])
