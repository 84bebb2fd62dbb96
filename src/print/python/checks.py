

def random_inputs(seed=0):
    """Random arguments for `value` and `derivative`, by keyword: each size from 2 to 4,
    scalars from 0.5 to 2, other entries standard normal, symmetric and positive-definite
    inputs as declared, and a random direction for each differential."""
    rng = _rng(seed)
    sizes = {}

    def size(dim):
        if dim.isdigit():
            return int(dim)
        if dim not in sizes:
            sizes[dim] = _integer(rng, 2, 5)
        return sizes[dim]

    args = {}
    for name, shape in SHAPES.items():
        dims = tuple(size(dim) for dim in shape)
        args[name] = _normal(rng, dims) if dims else _uniform(rng, 0.5, 2.0)
    for name, positive_definite in SYMMETRIC:
        a = args[name]
        n = tuple(_shape(a))[0]
        args[name] = a @ a.T + n * _eye(n, a) if positive_definite else (a + a.T) / 2
    for name in globals().get("SIZES", []):
        args["size_" + name] = size(name)
    for name, kind in DERIVATIVES:
        if kind.endswith("differential"):
            direction = _normal(rng, tuple(_shape(args[name])))
            if name in dict(SYMMETRIC):
                direction = (direction + direction.T) / 2
            args["d" + name] = direction
    return args


def check_gradient(seed=0, trials=3, tolerance=None, **fixed):
    """Checks `derivative` against the derivatives of `value` that _REFERENCE_TEXT gives,
    on `trials` random inputs (`random_inputs`; keyword arguments fix inputs, such as
    opaque functions), and returns the largest normalised error
    max |derivative − reference| / max(1, max |reference|). Raises AssertionError when an
    error exceeds `tolerance` (by default _TOLERANCE_TEXT)."""
    worst = 0.0
    for trial in range(trials):
        args = _valid_inputs(seed + 1000 * trial, fixed)
        claimed = derivative(**args)
        if len(DERIVATIVES) == 1:
            claimed = (claimed,)
        for (name, kind), got in zip(DERIVATIVES, claimed):
            expected = _reference(kind, name, args)
            error = _error(got, expected)
            limit = _tolerance(kind, expected) if tolerance is None else tolerance
            if not error <= limit:
                raise AssertionError(
                    f"the {kind} with respect to {name} differs from {_REFERENCE} on "
                    f"trial {trial}: normalised error {error:.3g} > {limit:.3g}"
                )
            worst = max(worst, error)
    return worst


def _value_args(args):
    import inspect

    names = inspect.signature(value).parameters
    return {name: x for name, x in args.items() if name in names}


def _valid_inputs(seed, fixed):
    # Logs, roots and inverses need inputs inside their domain: redraw until `value` is
    # finite, as matcalc's own check does.
    for attempt in range(20):
        args = {**random_inputs(seed + attempt), **fixed}
        if _is_finite(value(**_value_args(args))):
            return args
    raise AssertionError("check_gradient: no random input gave a finite value")
