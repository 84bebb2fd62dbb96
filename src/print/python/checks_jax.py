

_REFERENCE = "jax's automatic differentiation"
_grad, _jacfwd, _hessian, _jvp = jax.grad, jax.jacfwd, jax.hessian, jax.jvp
_as_array, _float64 = jnp.asarray, jnp.float64


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


def _max_abs(x):
    return float(jnp.max(jnp.abs(x), initial=0.0))
