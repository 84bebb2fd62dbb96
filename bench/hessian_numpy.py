"""Benchmark (not a test): the Hessian code matcalc generates for NumPy against the
textbook NumPy Hessian of logistic regression, Xᵀ diag(p ⊙ (1 − p)) X with the diagonal
applied as row scaling, at X 2000×500 (issue 14's target: within 1.5×).

usage: python bench/hessian_numpy.py [MATCALC_BINARY] [--repeats N]
    (numpy only; the binary defaults to target/release/matcalc)

For each loss it runs `matcalc diff LOSS --wrt w --order 2 --format numpy --sizes
n=2000,d=500`, executes the module, checks its Hessian against the textbook one, and
prints the median wall time of one evaluation of each (after a warm-up) and their ratio.
Wall time depends on the machine's load: run both in the same process, back to back.
"""

import argparse
import statistics
import subprocess
import time

import numpy as np

LOSSES = [
    (
        "cross-entropy",
        "−sum(y ⊙ log(σ(Xw)) + (vector(1) − y) ⊙ log(vector(1) − σ(Xw)))",
        ["X: n×d", "y: n"],
    ),
    ("softplus", "sum(softplus(Xw)) − yᵀXw", ["X: n×d", "y: n"]),
    ("log(1 + exp)", "sum(log(1 + exp(Xw))) − yᵀXw", ["X: n×d", "y: n"]),
]


def textbook(X, w, y):
    p = 1.0 / (1.0 + np.exp(-(X @ w)))
    return X.T @ (X * (p * (1.0 - p))[:, None])


def median_seconds(function, kwargs, repeats):
    function(**kwargs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(**kwargs)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary", nargs="?", default="target/release/matcalc")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n, d = 2000, 500
    inputs = {
        "X": rng.standard_normal((n, d)) / np.sqrt(d),
        "w": rng.standard_normal(d),
        "y": rng.integers(0, 2, n).astype(float),
    }
    print(f"{'loss':<14} {'matcalc NumPy':>14} {'textbook':>10} {'ratio':>7}  code")
    for label, loss, decls in LOSSES:
        command = [args.binary, "diff", loss, "--wrt", "w", "--order", "2"]
        for decl in decls:
            command += ["--decl", decl]
        command += ["--format", "numpy", "--sizes", f"n={n},d={d}"]
        source = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        module = {}
        exec(compile(source, label, "exec"), module)
        generated = module["derivative"]
        parameters = generated.__code__.co_varnames[: generated.__code__.co_argcount]
        kwargs = {name: inputs[name] for name in parameters}
        ours = generated(**kwargs)
        reference = textbook(**inputs)
        assert np.allclose(ours, reference, rtol=1e-9, atol=1e-12), label
        mine = median_seconds(generated, kwargs, args.repeats)
        theirs = median_seconds(textbook, inputs, args.repeats)
        tail = source[source.index("def derivative") :]
        body = [line.strip() for line in tail.splitlines() if line.strip().startswith("return")]
        print(
            f"{label:<14} {mine * 1e3:>11.1f} ms {theirs * 1e3:>7.1f} ms {mine / theirs:>6.2f}×"
            f"  {body[0] if body else ''}"
        )


if __name__ == "__main__":
    main()
