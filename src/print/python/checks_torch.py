

_REFERENCE = "torch.func's automatic differentiation"
_grad, _jacfwd, _hessian, _jvp = (
    torch.func.grad, torch.func.jacfwd, torch.func.hessian, torch.func.jvp
)
_as_array, _float64 = torch.as_tensor, torch.float64


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


def _max_abs(x):
    return float(torch.max(torch.abs(x))) if x.numel() else 0.0
