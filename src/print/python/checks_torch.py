

_REFERENCE = "torch.func's automatic differentiation"


def _rng(seed):
    return torch.Generator().manual_seed(seed)


def _integer(rng, low, high):
    return int(torch.randint(low, high, (), generator=rng))


def _normal(rng, dims):
    return torch.randn(dims, generator=rng, dtype=torch.float64)


def _uniform(rng, low, high):
    return low + (high - low) * torch.rand((), generator=rng, dtype=torch.float64)


def _eye(n, like):
    return torch.eye(n, dtype=like.dtype)


def _is_finite(x):
    return bool(torch.all(torch.isfinite(torch.as_tensor(x))))


def _error(got, expected):
    got, expected = torch.as_tensor(got), torch.as_tensor(expected)
    if got.shape != expected.shape:
        return float("inf")
    if expected.numel() == 0:
        return 0.0
    scale = max(1.0, float(torch.max(torch.abs(expected))))
    return float(torch.max(torch.abs(got - expected))) / scale


def _tolerance(kind, expected):
    # Both sides are computed in the same precision.
    return 1e-8 if torch.as_tensor(expected).dtype == torch.float64 else 1e-3


def _reference(kind, name, args):
    params = _value_args(args)

    def f(v):
        return value(**{**params, name: v})

    x = args[name]
    if kind == "gradient":
        gradient = torch.func.grad(f)(x)
        return (gradient + gradient.T) / 2 if name in dict(SYMMETRIC) else gradient
    if kind == "jacobian":
        return torch.func.jacfwd(f)(x)
    if kind == "hessian":
        return torch.func.hessian(f)(x)
    d = args["d" + name]
    if kind == "differential":
        return torch.func.jvp(f, (x,), (d,))[1]
    return torch.func.jvp(lambda v: torch.func.jvp(f, (v,), (d,))[1], (x,), (d,))[1]
