"""Bad input raises the matching exception, a ValueError whose text is the caret
diagnostic the command line prints."""

import pytest

import matcalc


def test_the_classes_are_value_errors():
    for cls in (matcalc.ParseError, matcalc.ShapeError, matcalc.UnsupportedError):
        assert issubclass(cls, matcalc.MatcalcError)
        assert issubclass(cls, ValueError)


def test_a_parse_error_points_at_the_bad_token():
    with pytest.raises(matcalc.ParseError) as caught:
        matcalc.diff("½‖WᵀWx − x‖² +", wrt="W")
    error = caught.value
    text = str(error)
    assert text.startswith("error: ")
    assert "^" in text
    assert "½‖WᵀWx − x‖² +" in text
    assert error.source == "½‖WᵀWx − x‖² +"
    start, end = error.span
    assert 0 <= start <= end <= len(error.source)


def test_a_misspelt_function_is_a_parse_error_with_a_suggestion():
    with pytest.raises(matcalc.ParseError) as caught:
        matcalc.diff("sum(sigmod(x))", wrt="x")
    assert any("`sigmoid`" in hint for hint in caught.value.hints)
    assert "unknown function `sigmod`" in str(caught.value)
    start, end = caught.value.span
    assert caught.value.source[start:end] == "sigmod"


def test_a_product_of_two_vectors_is_a_shape_error_suggesting_hadamard():
    with pytest.raises(matcalc.ShapeError) as caught:
        matcalc.simplify("z₁(1 − σ(z₁))")
    error = caught.value
    assert "cannot multiply n×1 by n×1" in error.message
    assert any("⊙" in hint for hint in error.hints)
    assert "= hint:" in str(error)
    # The span counts characters, as Python indexes strings (z₁ is two characters).
    start, end = error.span
    assert error.source[start:end] in ("z₁", "(1 − σ(z₁))", "z₁(1 − σ(z₁))")


def test_an_unsupported_derivative_raises_unsupported_error():
    with pytest.raises(matcalc.UnsupportedError) as caught:
        matcalc.diff("sum(∇ℓ(x))", wrt="x", decl="ℓ: fn")
    assert str(caught.value).startswith("error: unsupported:")


def test_unknown_variable_names_the_nearest_one():
    with pytest.raises(matcalc.MatcalcError) as caught:
        matcalc.diff("½‖WᵀWx − x‖²", wrt="V")
    assert "unknown variable `V`" in str(caught.value)


def test_a_bad_declaration_raises_where_it_is_made():
    session = matcalc.Session()
    with pytest.raises(matcalc.ParseError):
        session.declare("W: m××n")
    assert session.decls == []
    with pytest.raises(matcalc.ParseError):
        session.let("K = αXXᵀ +")
    assert session.lets == []


def test_bad_options_are_value_errors():
    with pytest.raises(ValueError):
        matcalc.diff("xᵀx", wrt="x", order=3)
    with pytest.raises(ValueError):
        matcalc.diff("xᵀx", wrt="x", sizes={"n": 0})
    with pytest.raises(TypeError):
        matcalc.diff("xᵀx", wrt="x", decl=[3])
