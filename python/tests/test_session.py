"""A Session keeps declarations and definitions between requests."""

import matcalc


def test_declarations_fix_shapes_and_properties():
    session = matcalc.Session()
    session.declare("W: 3×4").declare("x: 4")
    d = session.diff("½‖WᵀWx − x‖²", wrt="W")
    assert d.shape == (3, 4)
    assert session.decls == ["W: 3×4", "x: 4"]


def test_a_symmetric_variable_gets_the_symmetric_gradient():
    d = matcalc.diff("xᵀSx", wrt="S", decl="S: n×n sym", check=True)
    assert d.symmetric and d.check.passed
    assert "symmetric" in repr(d)


def test_definitions_are_expanded_and_folded_back():
    session = matcalc.Session(let=["z = Wx + b"])
    d = session.diff("½‖σ(z) − y‖²", wrt="b", check=True)
    assert d.check.passed
    assert any(name == "z" for name, _ in d.where) or "z" in d.text
    assert session.lets == ["z = Wx + b"]
    session.reset()
    assert session.lets == [] and session.decls == []


def test_a_hessian():
    d = matcalc.diff("xᵀAx", wrt="x", order=2, check=True)
    assert d.check.passed
    assert d.json["kind"] == "hessian"
    hessian = d.numpy_fn()
    import numpy as np

    a = np.arange(9.0).reshape(3, 3)
    assert np.allclose(hessian(A=a, x=np.ones(3)), a + a.T)


def test_simplify():
    s = matcalc.simplify("(Xᵀ)ᵀ + X")
    assert len(s.shape) == 2
    value = s.numpy_fn()
    import numpy as np

    x = np.arange(6.0).reshape(2, 3)
    assert np.allclose(value(X=x), 2 * x)


def test_the_vec_form_is_the_command_lines():
    from conftest import cli

    d = matcalc.diff("X⁻¹", wrt="X", form="vec", check=True)
    assert "⊗" in d.text and d.check.passed
    status, out, err = cli("diff", "X⁻¹", "--wrt", "X", "--form", "vec")
    assert status == 0, err
    assert repr(matcalc.diff("X⁻¹", wrt="X", form="vec")) == out.rstrip("\n")
    import pytest

    with pytest.raises(ValueError):
        matcalc.diff("X⁻¹", wrt="X", form="sideways")


def test_an_entry_as_the_variable():
    from conftest import cli

    d = matcalc.diff("tr(AX)", wrt="X[m,n]", check=True)
    assert isinstance(d, matcalc.Derivative), "the comma inside brackets separates nothing"
    assert d.entry == "X[m,n]" and d.index == "∂tr(AX)/∂Xₘₙ = Aₙₘ"
    assert d.check.passed
    status, out, err = cli("diff", "tr(AX)", "--wrt", "X[m,n]", "--check")
    assert status == 0, err
    assert repr(d).split("\ncheck:")[0] == out.split("\ncheck:")[0]
    both = matcalc.diff("xᵀAx", wrt="A,x[i]", check=True)
    assert [x.wrt for x in both] == ["A", "x"]
    assert both[1].index == "∂xᵀAx/∂xᵢ = ((A + Aᵀ)x)ᵢ" and both[1].check.passed
    import pytest

    with pytest.raises(ValueError):
        matcalc.diff("tr(AX)", wrt="X[m]")
