"""Checks a matcalc-generated NumPy module: `derivative` against central finite
differences of `value`, on random inputs drawn from the module's SHAPES and SYMMETRIC.

usage: python3 numpy_check.py MODULE.py WRT[,WRT...] [vec|vec2]
With `vec`, `derivative` is the Jacobian of vec(value) in vec(WRT) (vec stacks
columns); with `vec2`, the Hessian matrix of the scalar `value` in vec(WRT).
Prints `ok <max relative error>` and exits 0, or prints the mismatch and exits 1.
"""
import importlib.util
import sys

import numpy as np


def load(path):
    spec = importlib.util.spec_from_file_location("generated", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def draw(module, rng, low=2, high=5):
    """Random arguments for a generated module, from its SHAPES, SIZES and SYMMETRIC:
    sizes drawn once per size symbol, scalars positive, spd inputs well conditioned."""
    sizes = {}

    def size(name):
        if name.isdigit():
            return int(name)
        return sizes.setdefault(name, int(rng.integers(low, high)))

    args = {}
    for name, shape in module.SHAPES.items():
        dims = tuple(size(dim) for dim in shape)
        if dims:
            args[name] = rng.standard_normal(dims)
        else:
            args[name] = float(rng.uniform(0.5, 2.0))
    for name in getattr(module, "SIZES", []):
        args["size_" + name] = size(name)
    for name, spd in module.SYMMETRIC:
        a = args[name]
        args[name] = a @ a.T + len(a) * np.eye(len(a)) if spd else (a + a.T) / 2
    return args


def finite_difference(value, args, wrt, symmetric=False, step=1e-5):
    """The gradient of the scalar function `value` with respect to `args[wrt]` by
    central differences; a symmetric variable moves each off-diagonal pair together."""
    x = np.array(args[wrt], dtype=float)
    grad = np.zeros_like(x)
    for index in np.ndindex(*x.shape) if x.shape else [()]:
        def at(t):
            moved = dict(args)
            y = np.array(x, dtype=float)
            if y.shape:
                y[index] += t
                if symmetric and index[0] != index[1]:
                    y[index[::-1]] += t
            else:
                y = float(y) + t
            moved[wrt] = y
            return float(value(**moved))

        slope = (at(step) - at(-step)) / (2 * step)
        if symmetric and x.shape and index[0] != index[1]:
            slope /= 2
        if x.shape:
            grad[index] = slope
        else:
            grad = slope
    return grad


def vec_jacobian(module, args, wrt):
    """Column k: the central difference of vec(value) along entry k of vec(wrt)."""
    x = np.array(args[wrt], dtype=float)
    step = 1e-5
    columns = []
    for k in range(x.size):
        def at(t):
            moved = dict(args)
            y = np.array(x, dtype=float).ravel(order="F")
            y[k] += t
            moved[wrt] = y.reshape(x.shape, order="F")
            return np.ravel(np.asarray(module.value(**moved), dtype=float), order="F")

        columns.append((at(step) - at(-step)) / (2 * step))
    return np.stack(columns, axis=1)


def vec_hessian(module, args, wrt):
    """Entry (i, j): the central second difference of value along entries i and j."""
    x = np.array(args[wrt], dtype=float)
    step = 1e-3
    n = x.size

    def at(moves):
        moved = dict(args)
        y = np.array(x, dtype=float).ravel(order="F")
        for k, t in moves:
            y[k] += t
        moved[wrt] = y.reshape(x.shape, order="F")
        return float(module.value(**moved))

    h = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            h[i, j] = (
                at([(i, step), (j, step)])
                - at([(i, step), (j, -step)])
                - at([(i, -step), (j, step)])
                + at([(i, -step), (j, -step)])
            ) / (4 * step * step)
    return h


def gradient(module, args, wrt):
    symmetric = any(name == wrt for name, _ in module.SYMMETRIC)
    return finite_difference(module.value, args, wrt, symmetric)


def main():
    module = load(sys.argv[1])
    wrts = sys.argv[2].split(",")
    mode = sys.argv[3] if len(sys.argv) > 3 else "gradient"
    reference = {"gradient": gradient, "vec": vec_jacobian, "vec2": vec_hessian}[mode]
    rng = np.random.default_rng(7)
    worst = 0.0
    for _ in range(3):
        args = draw(module, rng)
        result = module.derivative(**args)
        if len(wrts) == 1:
            result = (result,)
        for wrt, got in zip(wrts, result):
            expected = reference(module, args, wrt)
            got = np.asarray(got, dtype=float)
            if got.shape != np.shape(expected):
                print(f"shape mismatch for {wrt}: {got.shape} vs {np.shape(expected)}")
                return 1
            scale = max(1.0, float(np.max(np.abs(expected))) if np.size(expected) else 1.0)
            error = float(np.max(np.abs(got - expected))) / scale if np.size(expected) else 0.0
            worst = max(worst, error)
            if error > 1e-6:
                print(f"mismatch for {wrt}: relative error {error:.2e}\n{got}\n{expected}")
                return 1
    print(f"ok {worst:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
