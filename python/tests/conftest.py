"""Shared helpers: random inputs for generated code, and central finite differences."""

import os
import subprocess

import numpy as np
import pytest


def draw_inputs(module, rng, low=2, high=5):
    """Random arguments for a generated module, from its SHAPES and SYMMETRIC: sizes
    drawn once per size symbol, scalars positive, spd inputs well conditioned."""
    sizes = {}

    def size(name):
        if name.isdigit():
            return int(name)
        return sizes.setdefault(name, int(rng.integers(low, high)))

    args = {}
    for name, shape in module.SHAPES.items():
        dims = tuple(size(dim) for dim in shape)
        args[name] = rng.standard_normal(dims) if dims else float(rng.uniform(0.5, 2.0))
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


def relative_error(got, expected):
    """max |got − expected| / max(1, max |expected|): the error measure of the Rust
    numeric check (its module docs say why it is normalised so)."""
    got = np.asarray(got, dtype=float)
    expected = np.asarray(expected, dtype=float)
    assert got.shape == expected.shape, f"shape {got.shape}, expected {expected.shape}"
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    return float(np.max(np.abs(got - expected), initial=0.0)) / scale


def matcalc_binary():
    """The command-line binary that .ci/run built, for comparing answers with it."""
    path = os.environ.get("MATCALC_BIN")
    if not path:
        here = os.path.dirname(os.path.abspath(__file__))
        for profile in ("release", "debug"):
            candidate = os.path.join(here, "..", "..", "target", profile, "matcalc")
            if os.path.exists(candidate):
                path = candidate
                break
    if not path or not os.path.exists(path):
        pytest.skip("the matcalc binary is not built (set MATCALC_BIN); .ci/run builds it")
    return path


def cli(*args):
    """Runs `matcalc ARGS…`: (exit status, stdout, stderr)."""
    run = subprocess.run([matcalc_binary(), *args], capture_output=True, text=True)
    return run.returncode, run.stdout, run.stderr
