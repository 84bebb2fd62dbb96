"""matcalc against SymPy's matrix-expression derivative on one corpus (bench/corpus.tsv).

usage: python3 bench/sympy_compare.py [--markdown]

For every problem it prints the in-process time of each engine (SymPy: median of
`expr.diff(X)` over a few runs with SymPy's cache cleared, import excluded; matcalc:
median from text to simplified output, measured by `cargo bench --bench corpus`), the
ratio, whether each result is numerically right (central finite differences on random
numbers), the size of each result (SymPy: nodes of the result tree; matcalc: nodes of the
display forms plus `where` bodies), and the peak memory (max RSS) of one `matcalc diff
--check` run of the release CLI. It installs sympy and numpy if they are missing.
"""
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ensure(package):
    try:
        return importlib.import_module(package)
    except ImportError:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", package])
        return importlib.import_module(package)


np = ensure("numpy")
sympy = ensure("sympy")
from sympy import (  # noqa: E402
    Determinant, Identity, ImmutableMatrix, Inverse, Lambda, MatrixSymbol, Symbol, Trace,
    exp, log, preorder_traversal)
from sympy.core.cache import clear_cache  # noqa: E402
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction  # noqa: E402


def load_corpus():
    problems = []
    with open(os.path.join(ROOT, "bench", "corpus.tsv"), encoding="utf-8") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split("\t") + [""]
            problems.append({
                "name": fields[0], "expr": fields[1], "wrt": fields[2].split(","),
                "lets": [d.strip() for d in fields[3].split(";") if d.strip()],
            })
    return problems


class Space:
    """MatrixSymbols of one size n (a Symbol for timing, an int for checking)."""

    def __init__(self, n):
        self.n = n
        self.symbols = {}

    def m(self, name):
        return self.symbols.setdefault(name, MatrixSymbol(name, self.n, self.n))

    def v(self, name):
        return self.symbols.setdefault(name, MatrixSymbol(name, self.n, 1))

    def s(self, name):
        return self.symbols.setdefault(name, Symbol(name, positive=True))


def swish(z):
    t = Symbol("t")
    return ElementwiseApplyFunction(Lambda(t, t / (1 + exp(-t))), z)


def half_norm_sq(u):
    """½‖u‖² in the two ways SymPy can be given it: a 1×1 product, or a trace."""
    return [(u.T * u) / 2, Trace(u.T * u) / 2]


# Each builder returns the SymPy formulations to try in order (the first that does not
# raise is used) and the variables, in the corpus's order.
def build(name, S):
    m, v, s = S.m, S.v, S.s
    if name == "sheet_autoencoder":
        W, x = m("W"), v("x")
        return half_norm_sq(W.T * W * x - x), [W]
    if name == "sheet_gplvm":
        X, Y = m("X"), m("Y")
        K = s("alpha") * X * X.T + Identity(S.n) / s("beta")
        f = -s("c") - s("D") / 2 * log(Determinant(K)) - Trace(Inverse(K) * Y * Y.T) / 2
        return [f], [X]
    if name == "sheet_swish":
        W1, b1, W2, b2, x, y = m("W1"), v("b1"), m("W2"), v("b2"), v("x"), v("y")
        return half_norm_sq(W2 * swish(W1 * x + b1) + b2 - y), [W1, b1, W2, b2]
    X, A, B, C, D = m("X"), m("A"), m("B"), m("C"), m("D")
    a, b, c, d, x = v("a"), v("b"), v("c"), v("d"), v("x")
    table = {
        "cb049_det": ([Determinant(X)], [X]),
        "cb057_logdet": ([log(Determinant(X))], [X]),
        "cb061_inv_bilinear": ([a.T * Inverse(X) * b], [X]),
        "cb063_tr_inv": ([Trace(A * Inverse(X) * B)], [X]),
        "cb064_tr_inv_sum": ([Trace(Inverse(X + A))], [X]),
        "cb070_bilinear": ([a.T * X * b], [X]),
        "cb071_bilinear_t": ([a.T * X.T * b], [X]),
        "cb077_quad": ([b.T * X.T * X * c], [X]),
        "cb078_affine_quad": ([(B * x + b).T * C * (D * x + d)], [x]),
        "cb081_quad_form": ([x.T * B * x], [x]),
        "cb082_quad_d": ([b.T * X.T * D * X * c], [X]),
        "cb083_affine_d": ([(X * b + c).T * D * (X * b + c)], [X]),
        "cb100_tr_xa": ([Trace(X * A)], [X]),
        "cb101_tr_axb": ([Trace(A * X * B)], [X]),
        "cb107_tr_x2b": ([Trace(X**2 * B)], [X]),
        "cb108_tr_xtbx": ([Trace(X.T * B * X)], [X]),
        "cb114_tr_axbx": ([Trace(A * X * B * X)], [X]),
        "cb116_tr_btxtcxb": ([Trace(B.T * X.T * C * X * B)], [X]),
        "cb119_tr_sq": ([Trace((A * X * B + C) * (A * X * B + C).T)], [X]),
        "cb132_frobenius": ([Trace(X.T * X)], [X]),
    }
    return table[name]


def sympy_derivatives(name, S):
    """SymPy's derivatives, and the formulation index used; raises what SymPy raises."""
    formulations, wrt = build(name, S)
    error = None
    for index, f in enumerate(formulations):
        try:
            return [f.diff(w) for w in wrt], f, wrt, index
        except Exception as exc:  # SymPy raises many types; any of them is a failure.
            error = exc
    raise error


def time_sympy(name, budget=3.0, max_runs=7):
    times = []
    start = time.perf_counter()
    result = None
    while len(times) < max_runs and (not times or time.perf_counter() - start < budget):
        clear_cache()
        S = Space(Symbol("n", integer=True, positive=True))
        t0 = time.perf_counter()
        result = sympy_derivatives(name, S)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def to_float_array(value):
    value = value.doit()
    if hasattr(value, "as_explicit"):
        value = value.as_explicit()
    if hasattr(value, "evalf"):
        value = value.evalf()
    array = np.array(value.tolist() if hasattr(value, "tolist") else value, dtype=complex)
    return array.real


def check_sympy(name, seed=3, n=3):
    """'right', 'wrong …', 'unevaluated' or 'not evaluable' on random numbers."""
    clear_cache()
    S = Space(n)
    derivatives, f, wrt, _ = sympy_derivatives(name, S)
    if any(isinstance(d, sympy.Derivative) or d.has(sympy.Derivative) for d in derivatives):
        return "unevaluated (returns Derivative(…))"
    rng = np.random.default_rng(seed)
    values = {}
    for key, symbol in S.symbols.items():
        if isinstance(symbol, Symbol):
            values[symbol] = sympy.Float(rng.uniform(0.5, 2.0))
        elif symbol.shape[1] == 1:
            values[symbol] = ImmutableMatrix(rng.standard_normal((n, 1)))
        else:
            values[symbol] = ImmutableMatrix(rng.standard_normal((n, n)) + n * np.eye(n))
    values[Identity(n)] = ImmutableMatrix(np.eye(n))

    def value_at(vals):
        out = f.xreplace(vals).doit()
        out = out.evalf() if hasattr(out, "evalf") else out
        if hasattr(out, "shape"):
            out = out[0, 0]
        return complex(out).real

    outcomes = []
    for w, derivative in zip(wrt, derivatives):
        try:
            got = to_float_array(derivative.xreplace(values))
        except Exception as exc:
            outcomes.append((w.name, f"not evaluable ({type(exc).__name__})"))
            continue
        base = np.array(values[w].tolist(), dtype=float)
        expected = np.zeros_like(base)
        step = 1e-6
        for index in np.ndindex(*base.shape):
            moved = []
            for sign in (1, -1):
                shifted = base.copy()
                shifted[index] += sign * step
                vals = dict(values)
                vals[w] = ImmutableMatrix(shifted)
                moved.append(value_at(vals))
            expected[index] = (moved[0] - moved[1]) / (2 * step)
        # SymPy may lay a vector gradient out as a row: accept any layout of equal size.
        got = np.squeeze(got)
        expected_squeezed = np.squeeze(expected)
        if got.shape != expected_squeezed.shape:
            if got.size == 1 and float(np.abs(got).max()) == 0.0:
                outcomes.append((w.name, "wrong (0)"))
            else:
                outcomes.append((w.name, f"wrong (shape {got.shape})"))
            continue
        scale = max(1.0, float(np.abs(expected).max()))
        error = float(np.abs(got - expected_squeezed).max()) / scale
        if error > 1e-5:
            zero = float(np.abs(got).max()) == 0.0
            outcomes.append((w.name, "wrong (0)" if zero else f"wrong (rel. error {error:.1e})"))
        else:
            outcomes.append((w.name, "right"))
    if all(outcome == "right" for _, outcome in outcomes):
        return "right"
    if len(outcomes) == 1:
        return outcomes[0][1]
    return "; ".join(f"∂/∂{name}: {outcome}" for name, outcome in outcomes)


def sympy_size(derivatives):
    return sum(sum(1 for _ in preorder_traversal(d)) for d in derivatives)


# ---- matcalc ----------------------------------------------------------------------

def matcalc_in_process():
    """Per-problem medians from the corpus bench binary (built in release mode)."""
    output = subprocess.run(
        ["cargo", "bench", "--quiet", "--bench", "corpus", "--", "--json"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    rows = {}
    for line in output.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            rows[row["name"]] = row
    return rows


TIME = "/usr/bin/time"


def matcalc_cli(problem, *extra):
    """Runs the release CLI; returns (stdout, seconds, max RSS in KiB, exit code).

    The RSS comes from GNU time, whose own small process forks the CLI: a child forked
    straight from this Python process would report Python's RSS (sympy loaded) as its
    high-water mark. Without /usr/bin/time it falls back to wait4, an upper bound.
    """
    command = [os.path.join(ROOT, "target", "release", "matcalc"), "diff"]
    for definition in problem["lets"]:
        command += ["--let", definition]
    command += ["--wrt", ",".join(problem["wrt"]), *extra, problem["expr"]]
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile("r") as rss:
        timed = [TIME, "-f", "%M", "-o", rss.name, *command] if os.path.exists(TIME) else command
        start = time.perf_counter()
        process = subprocess.Popen(timed, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        kib = usage.ru_maxrss
        if os.path.exists(TIME):
            lines = [line for line in rss.read().split() if line.isdigit()]
            kib = int(lines[-1]) if lines else kib
        out.seek(0)
        return out.read().decode(), seconds, kib, os.waitstatus_to_exitcode(status)


def check_matcalc_numpy(problem, seed=7):
    """Runs matcalc's `--format numpy` module against central finite differences."""
    code, _, _, status = matcalc_cli(problem, "--format", "numpy")
    if status != 0:
        return "fails"
    namespace = {}
    exec(compile(code, problem["name"], "exec"), namespace)
    rng = np.random.default_rng(seed)
    sizes = {}
    args = {}
    for name, shape in namespace["SHAPES"].items():
        dims = tuple(int(d) if d.isdigit() else sizes.setdefault(d, int(rng.integers(2, 5)))
                     for d in shape)
        args[name] = rng.standard_normal(dims) if dims else float(rng.uniform(0.5, 2.0))
        if len(dims) == 2 and dims[0] == dims[1]:
            args[name] = args[name] + dims[0] * np.eye(dims[0])
    result = namespace["derivative"](**args)
    wrts = [w.translate(str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")) for w in problem["wrt"]]
    if len(wrts) == 1:
        result = (result,)
    for wrt, got in zip(wrts, result):
        base = np.array(args[wrt], dtype=float)
        expected = np.zeros_like(base)
        for index in np.ndindex(*base.shape):
            moved = []
            for sign in (1, -1):
                shifted = base.copy()
                shifted[index] += sign * 1e-6
                moved.append(float(namespace["value"](**{**args, wrt: shifted})))
            expected[index] = (moved[0] - moved[1]) / 2e-6
        got = np.asarray(got, dtype=float)
        if got.shape != expected.shape:
            return f"wrong (shape {got.shape} for ∂/∂{wrt})"
        error = float(np.abs(got - expected).max()) / max(1.0, float(np.abs(expected).max()))
        if error > 1e-5:
            return f"wrong (rel. error {error:.1e} for ∂/∂{wrt})"
    return "right"


def fmt_time(seconds):
    if seconds != seconds:
        return "—"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def main():
    problems = load_corpus()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    matcalc = matcalc_in_process()
    rows = []
    for problem in problems:
        name = problem["name"]
        row = {"name": name}
        try:
            seconds, (derivatives, _, _, formulation) = time_sympy(name)
            row["sympy_time"] = seconds
            row["sympy_size"] = sympy_size(derivatives)
            row["sympy_note"] = "trace form" if formulation == 1 else ""
            try:
                row["sympy_right"] = check_sympy(name)
            except Exception as exc:
                row["sympy_right"] = f"not evaluable ({type(exc).__name__})"
        except Exception as exc:
            row["sympy_time"] = float("nan")
            row["sympy_size"] = None
            row["sympy_right"] = f"fails ({type(exc).__name__}: {str(exc)[:40]})"
            row["sympy_note"] = ""
        ours = matcalc.get(name, {})
        row["matcalc_time"] = ours.get("median_seconds", float("nan"))
        row["matcalc_size"] = ours.get("output_size")
        row["flop_ratio"] = ours.get("flop_ratio")
        _, cli_seconds, rss_kib, status = matcalc_cli(problem, "--check")
        row["cli_seconds"] = cli_seconds
        row["rss_mib"] = rss_kib / 1024
        row["matcalc_right"] = check_matcalc_numpy(problem) if status == 0 else "fails"
        rows.append(row)
        print(f"  done {name}", file=sys.stderr)

    print("| problem | SymPy | matcalc | ratio | SymPy right? | matcalc right? "
          "| SymPy size | matcalc size | matcalc CLI (--check) | max RSS |")
    print("|---|---:|---:|---:|---|---|---:|---:|---:|---:|")
    ratios, solved_ratios = [], []
    for row in rows:
        ratio = row["sympy_time"] / row["matcalc_time"]
        if ratio == ratio:
            ratios.append(ratio)
            if row["sympy_right"] == "right":
                solved_ratios.append(ratio)
        note = f" ({row['sympy_note']})" if row["sympy_note"] else ""
        print(f"| {row['name']} | {fmt_time(row['sympy_time'])} | {fmt_time(row['matcalc_time'])} "
              f"| {ratio:.1f}× | {row['sympy_right']}{note} | {row['matcalc_right']} "
              f"| {row['sympy_size'] if row['sympy_size'] is not None else '—'} "
              f"| {row['matcalc_size']} | {fmt_time(row['cli_seconds'])} | {row['rss_mib']:.1f} MiB |")
    print()
    if ratios:
        print(f"median SymPy/matcalc time ratio over {len(ratios)} problems SymPy answers: "
              f"{statistics.median(ratios):.1f}×")
    if solved_ratios:
        print(f"on the {len(solved_ratios)} problems SymPy gets right: min "
              f"{min(solved_ratios):.1f}×, median {statistics.median(solved_ratios):.1f}×")
    wrong = [r["name"] for r in rows if r["sympy_right"] != "right"]
    print(f"SymPy wrong, unevaluated or failing on {len(wrong)}: {', '.join(wrong)}")
    ours_wrong = [r["name"] for r in rows if r["matcalc_right"] != "right"]
    print(f"matcalc wrong or failing on {len(ours_wrong)}: {', '.join(ours_wrong) or 'none'}")
    print(f"max RSS of the CLI: {max(r['rss_mib'] for r in rows):.1f} MiB")


if __name__ == "__main__":
    main()
