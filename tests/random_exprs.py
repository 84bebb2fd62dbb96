"""Random differential testing of matcalc (issue 13): random well-typed expressions over
the constructs of SPEC §2, each with an evaluator of its own (numpy, written here, not
by matcalc), run through `matcalc diff --format numpy --check`.

For every expression the generated module must
  - compute the same value as the independent evaluator (no silently different reading),
  - run (no NameError, no shape error: no broken emitted program),
  - return a derivative that matches central finite differences of the independent
    evaluator (no silently wrong answer),
and `--check` must agree: "ok" only for a right derivative, and a failure only for a
wrong one (no wrong check verdict). An inconclusive check, or an `unsupported:` answer,
is counted, not a finding.

usage: python3 random_exprs.py MATCALC --count N --seed S [--jobs J] [--keep DIR]
Prints one line per finding and a summary; exits 1 if there was a finding.
"""
import argparse
import concurrent.futures
import importlib.util
import json
import math
import os
import random
import subprocess
import sys
import tempfile

import numpy as np

# Sizes are symbols in the expression; the evaluator draws them per trial.
VARIABLES = {
    # name: (rows, cols, kind)
    "A": ("n", "n", "general"),
    "B": ("n", "n", "general"),
    "S": ("n", "n", "spd"),
    "X": ("n", "m", "general"),
    "x": ("n", "1", "general"),
    "y": ("n", "1", "general"),
    "u": ("m", "1", "general"),
    "α": ("1", "1", "positive"),
    "β": ("1", "1", "positive"),
}
DECLS = "A: n×n, B: n×n, S: n×n spd, X: n×m, x: n, y: n, u: m, α: scalar, β: scalar"
PYTHON = {"α": "alpha", "β": "beta"}
SHAPES = [("n", "n"), ("n", "m"), ("m", "n"), ("m", "m"), ("n", "1"), ("m", "1"),
          ("1", "n"), ("1", "1")]


def sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def matmul(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape == (1, 1) or b.shape == (1, 1):
        return a * b
    return a @ b


class Node:
    """A generated expression: its text, its shape and its evaluator."""

    def __init__(self, text, shape, fn, positive=False, atomic=False):
        self.text, self.shape, self.fn = text, shape, fn
        self.positive = positive
        self.atomic = atomic

    def wrapped(self):
        return self.text if self.atomic else f"({self.text})"

    def base(self):
        """For a postfix power: superscript digits run together (`A²²` is A to the 22),
        so anything but a plain variable is bracketed."""
        return self.text if self.text in VARIABLES else f"({self.text})"


class Generator:
    def __init__(self, rng):
        self.rng = rng

    def pick(self, options):
        return options[self.rng.randrange(len(options))]

    def leaf(self, shape):
        rows, cols = shape
        names = [name for name, (r, c, _) in VARIABLES.items() if (r, c) == shape]
        transposed = [name for name, (r, c, _) in VARIABLES.items()
                      if (c, r) == shape and (r, c) != shape]
        choices = []
        for name in names:
            kind = VARIABLES[name][2]
            choices.append(Node(name, shape, lambda v, name=name: v[name],
                                positive=kind == "positive", atomic=True))
        for name in transposed:
            choices.append(Node(f"{name}ᵀ", shape, lambda v, name=name: v[name].T,
                                atomic=True))
        if shape == ("1", "1"):
            value = self.pick([2, 3, 0.5, "½", "¾"])
            number = {"½": 0.5, "¾": 0.75}.get(value, value)
            choices.append(Node(str(value), shape, lambda v, q=number: np.array([[float(q)]]),
                                positive=True, atomic=True))
        if not choices:
            return None
        return self.pick(choices)

    def smallest(self, shape):
        """A leaf of `shape`, or a product of two leaves when no variable has it."""
        leaf = self.leaf(shape)
        if leaf is not None:
            return leaf
        for inner in ("n", "m"):
            a, b = self.leaf((shape[0], inner)), self.leaf((inner, shape[1]))
            if a is not None and b is not None:
                return Node(f"{a.text} {b.text}", shape, lambda v: matmul(a.fn(v), b.fn(v)))
        raise ValueError(f"no expression of shape {shape}")

    def gen(self, shape, depth):
        if depth <= 0:
            return self.smallest(shape)
        if self.rng.random() < 0.2:
            leaf = self.leaf(shape)
            if leaf is not None:
                return leaf
        builders = [self.sum, self.difference, self.product, self.product, self.scaled,
                    self.hadamard, self.function, self.negation, self.transpose]
        rows, cols = shape
        if rows == cols and rows != "1":
            builders += [self.inverse, self.power, self.plus_identity, self.diag_matrix]
        if cols == "1" and rows != "1":
            builders += [self.diag_vector, self.plus_ones]
        if shape == ("1", "1"):
            builders += [self.trace, self.total, self.norm_sq, self.log_det, self.det,
                         self.log, self.sqrt, self.inner, self.quotient, self.kron_trace]
        for _ in range(10):
            node = self.pick(builders)(shape, depth - 1)
            if node is not None:
                return node
        return self.smallest(shape)

    def sum(self, shape, depth):
        a, b = self.gen(shape, depth), self.gen(shape, depth)
        return Node(f"{a.wrapped()} + {b.wrapped()}", shape, lambda v: a.fn(v) + b.fn(v))

    def difference(self, shape, depth):
        a, b = self.gen(shape, depth), self.gen(shape, depth)
        return Node(f"{a.wrapped()} − {b.wrapped()}", shape, lambda v: a.fn(v) - b.fn(v))

    def product(self, shape, depth):
        rows, cols = shape
        inner = self.pick(["n", "m"])
        if rows == "1" and cols == "1":
            inner = self.pick(["n", "m"])
        a, b = self.gen((rows, inner), depth), self.gen((inner, cols), depth)
        if a is None or b is None:
            return None
        return Node(f"{a.wrapped()} {b.wrapped()}", shape, lambda v: matmul(a.fn(v), b.fn(v)))

    def scaled(self, shape, depth):
        s, a = self.gen(("1", "1"), depth), self.gen(shape, depth)
        return Node(f"{s.wrapped()} {a.wrapped()}", shape, lambda v: s.fn(v) * a.fn(v))

    def hadamard(self, shape, depth):
        if shape == ("1", "1"):
            return None
        a, b = self.gen(shape, depth), self.gen(shape, depth)
        op = self.pick(["⊙", ".*", "∘"])
        return Node(f"{a.wrapped()} {op} {b.wrapped()}", shape, lambda v: a.fn(v) * b.fn(v))

    def function(self, shape, depth):
        a = self.gen(shape, depth)
        name, fn, positive = self.pick([
            ("σ", sigmoid, True), ("tanh", np.tanh, False), ("exp", None, True),
            ("softplus", lambda z: np.logaddexp(0.0, z), True),
            ("swish", lambda z: z * sigmoid(z), False), ("sigmoid", sigmoid, True),
        ])
        if name == "exp":
            # Bounded argument, so that values stay finite.
            return Node(f"exp(tanh({a.text}))", shape, lambda v: np.exp(np.tanh(a.fn(v))),
                        positive=True, atomic=True)
        return Node(f"{name}({a.text})", shape, lambda v: fn(a.fn(v)), positive=positive,
                    atomic=True)

    def negation(self, shape, depth):
        a = self.gen(shape, depth)
        return Node(f"−{a.wrapped()}", shape, lambda v: -a.fn(v))

    def transpose(self, shape, depth):
        a = self.gen((shape[1], shape[0]), depth)
        return Node(f"{a.wrapped()}ᵀ", shape, lambda v: a.fn(v).T, atomic=True)

    def well_conditioned(self, shape, depth):
        """A square matrix far from singular: S + ZZᵀ for spd S."""
        n = shape[0]
        if n != "n":
            return None
        z = self.gen((n, self.pick(["n", "m"])), depth)
        return Node(f"S + {z.wrapped()} {z.wrapped()}ᵀ", shape,
                    lambda v: v["S"] + z.fn(v) @ z.fn(v).T)

    def inverse(self, shape, depth):
        a = self.well_conditioned(shape, depth)
        if a is None:
            return None
        return Node(f"{a.base()}⁻¹", shape, lambda v: np.linalg.inv(a.fn(v)), atomic=True)

    def power(self, shape, depth):
        a = self.gen(shape, min(depth, 1))
        k = self.pick([2, 3])
        return Node(f"{a.base()}{'²' if k == 2 else '³'}", shape,
                    lambda v: np.linalg.matrix_power(a.fn(v), k), atomic=True)

    def plus_identity(self, shape, depth):
        a = self.gen(shape, depth)
        return Node(f"{a.wrapped()} + I", shape, lambda v: a.fn(v) + np.eye(len(a.fn(v))))

    def plus_ones(self, shape, depth):
        a = self.gen(shape, depth)
        return Node(f"{a.wrapped()} + 𝟙", shape, lambda v: a.fn(v) + 1.0)

    def diag_matrix(self, shape, depth):
        a = self.gen((shape[0], "1"), depth)
        return Node(f"diag({a.text})", shape, lambda v: np.diag(a.fn(v)[:, 0]), atomic=True)

    def diag_vector(self, shape, depth):
        a = self.gen((shape[0], shape[0]), depth)
        return Node(f"diag({a.text})", shape, lambda v: np.diag(a.fn(v)).reshape(-1, 1),
                    atomic=True)

    def trace(self, shape, depth):
        n = self.pick(["n", "m"])
        a = self.gen((n, n), depth)
        word = self.pick(["tr", "trace"])
        return Node(f"{word}({a.text})", shape, lambda v: np.array([[np.trace(a.fn(v))]]),
                    atomic=True)

    def total(self, shape, depth):
        a = self.gen(self.pick(SHAPES[:-1]), depth)
        return Node(f"sum({a.text})", shape, lambda v: np.array([[np.sum(a.fn(v))]]),
                    atomic=True)

    def norm_sq(self, shape, depth):
        a = self.gen(self.pick(SHAPES[:-1]), depth)
        return Node(f"‖{a.text}‖²", shape, lambda v: np.array([[np.sum(a.fn(v) ** 2)]]),
                    positive=True, atomic=True)

    def log_det(self, shape, depth):
        a = self.well_conditioned(("n", "n"), depth)
        if a is None:
            return None
        text = self.pick([f"log|{a.text}|", f"logdet({a.text})"])
        return Node(text, shape, lambda v: np.array([[np.linalg.slogdet(a.fn(v))[1]]]),
                    atomic=True)

    def det(self, shape, depth):
        a = self.well_conditioned(("n", "n"), min(depth, 1))
        if a is None:
            return None
        return Node(f"det({a.text})", shape, lambda v: np.array([[np.linalg.det(a.fn(v))]]),
                    positive=True, atomic=True)

    def positive_scalar(self, depth):
        a = self.gen(("1", "1"), depth)
        if a.positive:
            return a
        return Node(f"{a.base()}² + 1", ("1", "1"), lambda v: a.fn(v) ** 2 + 1.0,
                    positive=True)

    def log(self, shape, depth):
        a = self.positive_scalar(depth)
        return Node(f"log({a.text})", shape, lambda v: np.log(a.fn(v)), atomic=True)

    def sqrt(self, shape, depth):
        a = self.positive_scalar(depth)
        return Node(f"sqrt({a.text})", shape, lambda v: np.sqrt(a.fn(v)), positive=True,
                    atomic=True)

    def inner(self, shape, depth):
        n = self.pick(["n", "m"])
        a, b = self.gen((n, "1"), depth), self.gen((n, "1"), depth)
        return Node(f"{a.wrapped()}ᵀ{b.wrapped()}", shape, lambda v: a.fn(v).T @ b.fn(v))

    def quotient(self, shape, depth):
        a, b = self.gen(shape, depth), self.positive_scalar(depth)
        return Node(f"{a.wrapped()}/({b.text})", shape, lambda v: a.fn(v) / b.fn(v))

    def kron_trace(self, shape, depth):
        a = self.gen(("n", "n"), min(depth, 1))
        b = self.gen(("m", "m"), min(depth, 1))
        op = self.pick(["tr({a} ⊗ {b})", "tr(kron({a}, {b}))"])
        return Node(op.format(a=a.wrapped(), b=b.wrapped()), shape,
                    lambda v: np.array([[np.trace(np.kron(a.fn(v), b.fn(v)))]]), atomic=True)


WORDS = ["logdet", "softplus", "sigmoid", "swish", "trace", "tanh", "sqrt", "kron", "diag",
         "sum", "log", "det", "exp", "tr"]


def variables_of(text):
    for word in WORDS:
        text = text.replace(word, " ")
    return sorted(name for name in VARIABLES if name in text)


def draw(rng, names):
    sizes = {"n": int(rng.integers(2, 5)), "m": int(rng.integers(2, 5)), "1": 1}
    values = {}
    for name in names:
        r, c, kind = VARIABLES[name]
        shape = (sizes[r], sizes[c])
        if kind == "spd":
            a = rng.standard_normal(shape)
            values[name] = a @ a.T / shape[0] + np.eye(shape[0])
        elif kind == "positive":
            values[name] = np.array([[float(rng.uniform(0.5, 2.0))]])
        else:
            values[name] = rng.standard_normal(shape) * 0.7
    return sizes, values


def to_python(name, value):
    """A value as the generated module takes it: vectors 1-D, scalars floats."""
    r, c, _ = VARIABLES[name]
    if (r, c) == ("1", "1"):
        return float(value[0, 0])
    if c == "1":
        return value[:, 0].copy()
    return value.copy()


def finite_difference(node, values, wrt):
    """Central differences (Richardson-extrapolated) of the independent evaluator."""
    base = values[wrt]
    symmetric = VARIABLES[wrt][2] == "spd"
    grad = np.zeros_like(base)

    def at(index, t):
        moved = dict(values)
        y = base.copy()
        y[index] += t
        if symmetric and index[0] != index[1]:
            y[index[::-1]] += t
        moved[wrt] = y
        return float(node.fn(moved)[0, 0])

    for index in np.ndindex(*base.shape):
        h = 1e-3 * max(1.0, abs(base[index]))
        d = [(at(index, s) - at(index, -s)) / (2 * s) for s in (h, h / 2, h / 4)]
        r1 = [(4 * d[1] - d[0]) / 3, (4 * d[2] - d[1]) / 3]
        slope = (16 * r1[1] - r1[0]) / 15
        if symmetric and index[0] != index[1]:
            slope /= 2
        grad[index] = slope
    return grad


def load(path):
    spec = importlib.util.spec_from_file_location("generated", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def judge(matcalc, text, wrt, index, seed, keep):
    """One expression: returns (category, detail). Categories: pass, unsupported,
    rejected, inconclusive, and the findings: wrong-value, broken-program,
    wrong-derivative, check-says-ok-but-wrong, check-fails-but-right, timeout."""
    args = [matcalc, "diff", text, "--wrt", wrt, "--decl", DECLS, "--format", "numpy",
            "--check", "--seed", str(seed)]
    try:
        run = subprocess.run(args, capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "timeout", "matcalc ran over 60 s"
    stdout = run.stdout.decode("utf-8", "replace")
    stderr = run.stderr.decode("utf-8", "replace")
    if run.returncode == 2:
        if "unsupported:" in stderr:
            return "unsupported", stderr.strip().splitlines()[0]
        return "rejected", stderr.strip()
    if run.returncode not in (0, 1):
        return "crash", f"exit {run.returncode}: {stderr.strip()[:500]}"
    check_ok = "check: ok" in stdout
    inconclusive = "check: inconclusive" in stdout
    directory = keep or tempfile.gettempdir()
    path = os.path.join(directory, f"random_{seed}_{index}_{os.getpid()}.py")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(stdout)
    node = NODES[index]
    names = variables_of(text)
    rng = np.random.default_rng(seed * 7919 + index)
    try:
        module = load(path)
        worst = 0.0
        for _trial in range(2):
            sizes, values = draw(rng, names)
            for _redraw in range(10):
                ok = True
                try:
                    with np.errstate(all="raise"):
                        node.fn(values)
                        if VARIABLES[wrt][2] != "spd":
                            pass
                except (FloatingPointError, np.linalg.LinAlgError):
                    ok = False
                if ok:
                    break
                sizes, values = draw(rng, names)
            kwargs = {PYTHON.get(name, name): to_python(name, values[name]) for name in names}
            for size in getattr(module, "SIZES", []):
                kwargs["size_" + size] = sizes[size]
            expected_value = float(node.fn(values)[0, 0])
            got_value = float(np.asarray(module.value(**kwargs)))
            scale = max(1.0, abs(expected_value))
            if not math.isclose(got_value, expected_value, rel_tol=1e-8, abs_tol=1e-8 * scale):
                return "wrong-value", f"value {got_value} vs {expected_value}"
            expected = finite_difference(node, values, wrt)
            got = np.asarray(module.derivative(**kwargs), dtype=float)
            r, c, _ = VARIABLES[wrt]
            got = got.reshape(expected.shape) if got.size == expected.size else got
            if got.shape != expected.shape:
                return ("check-says-ok-but-wrong" if check_ok else "wrong-derivative",
                        f"derivative shape {got.shape} vs {expected.shape}")
            error = float(np.max(np.abs(got - expected))) / max(1.0, float(np.max(np.abs(expected))))
            worst = max(worst, error)
    except Exception as error:  # noqa: BLE001 - any failure of the emitted program
        return "broken-program", f"{type(error).__name__}: {error}"
    finally:
        if not keep:
            os.remove(path)
    if worst > 1e-5:
        if check_ok:
            return "check-says-ok-but-wrong", f"relative error {worst:.1e}"
        return "wrong-derivative", f"relative error {worst:.1e} (check did not pass)"
    if inconclusive:
        return "inconclusive", stdout.strip().splitlines()[-1]
    if not check_ok:
        return "check-fails-but-right", stdout.strip().splitlines()[-1]
    return "pass", f"{worst:.1e}"


FINDINGS = {"wrong-value", "broken-program", "wrong-derivative", "check-says-ok-but-wrong",
            "check-fails-but-right", "timeout", "crash", "rejected"}
NODES = []


def generate(count, seed, depth):
    rng = random.Random(seed)
    generator = Generator(rng)
    cases = []
    while len(cases) < count:
        node = generator.gen(("1", "1"), rng.randint(1, depth))
        names = variables_of(node.text)
        if not names or len(node.text) > 400:
            continue
        wrt = rng.choice(names)
        NODES.append(node)
        cases.append((node.text, wrt))
    return cases


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("matcalc")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", default=None, help="keep generated modules here")
    parser.add_argument("--json", default=None, help="write every verdict here")
    options = parser.parse_args()
    cases = generate(options.count, options.seed, options.depth)
    counts = {}
    findings = []
    verdicts = []
    with concurrent.futures.ThreadPoolExecutor(options.jobs) as pool:
        futures = [pool.submit(judge, options.matcalc, text, wrt, index, options.seed,
                               options.keep)
                   for index, (text, wrt) in enumerate(cases)]
        for (text, wrt), future in zip(cases, futures):
            category, detail = future.result()
            counts[category] = counts.get(category, 0) + 1
            verdicts.append({"expr": text, "wrt": wrt, "category": category, "detail": detail})
            if category in FINDINGS:
                findings.append((category, text, wrt, detail))
                print(f"FINDING {category}: matcalc diff '{text}' --wrt {wrt} "
                      f"--decl '{DECLS}' --check --format numpy\n    {detail}", flush=True)
    if options.json:
        with open(options.json, "w", encoding="utf-8") as handle:
            json.dump(verdicts, handle, ensure_ascii=False, indent=1)
    summary = ", ".join(f"{key} {value}" for key, value in sorted(counts.items()))
    print(f"{len(cases)} expressions (seed {options.seed}): {summary}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
