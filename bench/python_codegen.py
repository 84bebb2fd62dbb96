"""Benchmark (not a test): the derivatives matcalc generates for NumPy and JAX against
jax.grad of the loss and against the textbook NumPy gradient, at realistic sizes.

usage: python bench/python_codegen.py [--repeats N]
    (in an environment with the matcalc package, numpy and jax: `pip install ./python
    numpy 'jax[cpu]'`; `.ci/run`'s virtual environment has them)

For each problem it prints the median wall time of one gradient evaluation (after a
warm-up; JAX functions compiled with jax.jit first, results waited for) and the ratio to
jax.grad. Everything runs in float64 (jax_enable_x64) so that the four compute the same
numbers; each result is checked against jax.grad before it is timed.

"Textbook" is the gradient as the problem sheet derives it, written in NumPy the way the
sheet writes it: the autoencoder's W((WᵀWx − x)xᵀ + x(WᵀWx − x)ᵀ) multiplies W by an n×n
matrix; the GP-LVM's inverts K; the network's backward pass is the usual one.
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import matcalc

jax.config.update("jax_enable_x64", True)


def autoencoder(rng):
    m, n = 256, 1024
    args = {"W": rng.standard_normal((m, n)) / np.sqrt(n), "x": rng.standard_normal(n)}

    def loss(W, x):
        return 0.5 * jnp.sum((W.T @ (W @ x) - x) ** 2)

    def textbook(W, x):
        z = W.T @ W @ x - x
        return W @ (np.outer(z, x) + np.outer(x, z))

    return ("½‖WᵀWx − x‖²", "W", [], [], {"m": m, "n": n}, args, loss, textbook, "W")


def gplvm(rng):
    n, q, d = 500, 10, 20
    args = {
        "X": rng.standard_normal((n, q)),
        "Y": rng.standard_normal((n, d)),
        "D": float(d),
        "alpha": 0.7,
        "beta": 2.0,
        "c": 1.0,
    }

    def loss(D, X, Y, alpha, beta, c):
        K = alpha * X @ X.T + jnp.eye(X.shape[0]) / beta
        return -c - D / 2 * jnp.linalg.slogdet(K)[1] - 0.5 * jnp.trace(jnp.linalg.solve(K, Y @ Y.T))

    def textbook(D, X, Y, alpha, beta, c):
        K_inv = np.linalg.inv(alpha * X @ X.T + np.eye(X.shape[0]) / beta)
        return -D * alpha * K_inv @ X + alpha * K_inv @ Y @ Y.T @ K_inv @ X

    return (
        "−c − D/2 log|K| − ½ tr(K⁻¹YYᵀ)",
        "X",
        ["X: n×q", "Y: n×p"],
        ["K = αXXᵀ + β⁻¹I"],
        {"n": n, "q": q, "p": d},
        args,
        loss,
        textbook,
        "X",
    )


def network(rng):
    d, h, p = 784, 256, 10
    args = {
        "W1": rng.standard_normal((h, d)) / np.sqrt(d),
        "b1": rng.standard_normal(h),
        "W2": rng.standard_normal((p, h)) / np.sqrt(h),
        "b2": rng.standard_normal(p),
        "x": rng.standard_normal(d),
        "y": rng.standard_normal(p),
    }

    def loss(W1, W2, b1, b2, x, y):
        z = W1 @ x + b1
        return 0.5 * jnp.sum((W2 @ (z * jax.nn.sigmoid(z)) + b2 - y) ** 2)

    def textbook(W1, W2, b1, b2, x, y):
        z1 = W1 @ x + b1
        s = 1 / (1 + np.exp(-z1))
        h1 = z1 * s
        r = W2 @ h1 + b2 - y
        dz1 = (s + h1 * (1 - s)) * (W2.T @ r)
        return np.outer(dz1, x), dz1, np.outer(r, h1), r

    return (
        "½‖W₂ swish(W₁x + b₁) + b₂ − y‖²",
        "W₁,b₁,W₂,b₂",
        [f"W₁: {h}×{d}", f"W₂: {p}×{h}"],
        [],
        {},
        args,
        loss,
        textbook,
        ("W1", "b1", "W2", "b2"),
    )


def median_seconds(function, args, repeats):
    function(**args)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(function(**args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def as_tuple(value):
    return value if isinstance(value, tuple) else (value,)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=30)
    repeats = parser.parse_args().repeats
    rng = np.random.default_rng(0)
    print(f"{'problem':<14} {'implementation':<26} {'median':>10} {'÷ jax.grad':>11}")
    for make in (autoencoder, gplvm, network):
        expr, wrt, decls, lets, sizes, args, loss, textbook, names = make(rng)
        result = matcalc.diff(expr, wrt=wrt, decl=decls, let=lets, sizes=sizes)
        argnums = tuple(sorted(args).index(n) for n in as_tuple(names))
        ordered = sorted(args)
        by_grad = jax.jit(jax.grad(lambda *xs: loss(*xs), argnums=argnums))

        def autodiff(**kwargs):
            return by_grad(*(kwargs[k] for k in ordered))

        candidates = [
            ("jax.grad (jit)", autodiff),
            ("matcalc JAX (jit)", result.jax_fn()),
            ("matcalc NumPy", result.numpy_fn()),
            ("textbook NumPy", textbook),
        ]
        reference = as_tuple(autodiff(**args))
        timings = {}
        for label, function in candidates:
            got = as_tuple(function(**args))
            for g, r in zip(got, reference):
                error = float(np.max(np.abs(np.asarray(g) - np.asarray(r))))
                assert error <= 1e-8 * max(1.0, float(np.max(np.abs(r)))), (label, error)
            timings[label] = median_seconds(function, args, repeats)
        for label, _ in candidates:
            seconds = timings[label]
            ratio = seconds / timings["jax.grad (jit)"]
            print(f"{make.__name__:<14} {label:<26} {seconds * 1e3:>8.3f} ms {ratio:>10.2f}×")


if __name__ == "__main__":
    main()
