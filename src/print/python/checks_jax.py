

_REFERENCE = "jax's automatic differentiation"


def _rng(seed):
    import numpy

    return numpy.random.default_rng(seed)


def _integer(rng, low, high):
    return int(rng.integers(low, high))


def _normal(rng, dims):
    return jnp.asarray(rng.standard_normal(dims))


def _uniform(rng, low, high):
    return float(rng.uniform(low, high))


def _eye(n, like):
    return jnp.eye(n, dtype=jnp.asarray(like).dtype)


def _is_finite(x):
    return bool(jnp.all(jnp.isfinite(x)))


def _error(got, expected):
    got, expected = jnp.asarray(got), jnp.asarray(expected)
    if got.shape != expected.shape:
        return float("inf")
    scale = max(1.0, float(jnp.max(jnp.abs(expected), initial=0.0)))
    return float(jnp.max(jnp.abs(got - expected), initial=0.0)) / scale


def _tolerance(kind, expected):
    # Both sides are computed in the same precision: float64 with jax_enable_x64.
    return 1e-8 if jnp.asarray(expected).dtype == jnp.float64 else 1e-3


def _reference(kind, name, args):
    params = _value_args(args)

    def f(v):
        return value(**{**params, name: v})

    x = args[name]
    if kind == "gradient":
        gradient = jax.grad(f)(x)
        return (gradient + gradient.T) / 2 if name in dict(SYMMETRIC) else gradient
    if kind == "jacobian":
        return jax.jacfwd(f)(x)
    if kind == "hessian":
        return jax.hessian(f)(x)
    d = args["d" + name]
    if kind == "differential":
        return jax.jvp(f, (x,), (d,))[1]
    return jax.jvp(lambda v: jax.jvp(f, (v,), (d,))[1], (x,), (d,))[1]
