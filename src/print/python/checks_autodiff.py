

def _reference(kind, name, args):
    params = _value_args(args)

    def f(v):
        return value(**{**params, name: v})

    x = args[name]
    if kind == "gradient":
        gradient = _grad(f)(x)
        return (gradient + gradient.T) / 2 if name in dict(SYMMETRIC) else gradient
    if kind == "jacobian":
        return _jacfwd(f)(x)
    if kind == "hessian":
        return _hessian(f)(x)
    d = args["d" + name]
    if kind == "differential":
        return _jvp(f, (x,), (d,))[1]
    return _jvp(lambda v: _jvp(f, (v,), (d,))[1], (x,), (d,))[1]


def _error(got, expected):
    got, expected = _as_array(got), _as_array(expected)
    if got.shape != expected.shape:
        return float("inf")
    return _max_abs(got - expected) / max(1.0, _max_abs(expected))


def _tolerance(kind, expected):
    # Both sides are computed in the same precision.
    return 1e-8 if _as_array(expected).dtype == _float64 else 1e-3
