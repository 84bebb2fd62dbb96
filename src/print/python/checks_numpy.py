

_REFERENCE = "central finite differences"


def _rng(seed):
    return np.random.default_rng(seed)


def _integer(rng, low, high):
    return int(rng.integers(low, high))


def _normal(rng, dims):
    return rng.standard_normal(dims)


def _uniform(rng, low, high):
    return float(rng.uniform(low, high))


def _eye(n, like):
    return np.eye(n)


def _is_finite(x):
    return bool(np.all(np.isfinite(x)))


def _error(got, expected):
    got, expected = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    if got.shape != expected.shape:
        return float("inf")
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    return float(np.max(np.abs(got - expected), initial=0.0)) / scale


def _tolerance(kind, expected):
    # Second differences lose about half the digits of first differences.
    return 1e-5 if kind in ("hessian", "second differential") else 1e-6


def _reference(kind, name, args):
    params = _value_args(args)
    x = np.asarray(args[name], dtype=float)

    def f(v):
        return np.asarray(value(**{**params, name: v if v.shape else float(v)}), dtype=float)

    if kind.endswith("differential"):
        d = np.asarray(args["d" + name], dtype=float)
        if kind == "differential":
            h = 1e-5
            return (f(x + h * d) - f(x - h * d)) / (2 * h)
        h = 1e-3
        return (f(x + h * d) - 2 * f(x) + f(x - h * d)) / h**2
    units = []
    for index in np.ndindex(*x.shape):
        unit = np.zeros(x.shape)
        unit[index] = 1.0
        units.append(unit)
    if kind == "hessian":
        h = 1e-3
        rows = [
            [(f(x + h * a + h * b) - f(x + h * a - h * b) - f(x - h * a + h * b)
              + f(x - h * a - h * b)) / (4 * h * h) for b in units]
            for a in units
        ]
        return np.reshape(np.array(rows), x.shape + x.shape)
    h = 1e-5
    slopes = [(f(x + h * unit) - f(x - h * unit)) / (2 * h) for unit in units]
    if kind == "jacobian":
        return np.stack(slopes, axis=-1) if x.shape else slopes[0]
    gradient = np.reshape(np.array(slopes), x.shape)
    return (gradient + gradient.T) / 2 if name in dict(SYMMETRIC) else gradient
