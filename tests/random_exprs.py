"""Random differential testing of matcalc (issue 13): random well-typed expressions over
every construct of SPEC §2, in its three spellings (Unicode, ASCII, LaTeX, or mixed
within one formula), each with an evaluator of its own (numpy, written here, not by
matcalc) that knows each function's domain, run through `matcalc diff`.

For every expression
  - the emitted module (`--format numpy --check`) must compute the same value as the
    independent evaluator (no silently different reading), run (no NameError, no shape
    error: no broken emitted program) and return a derivative that matches central
    finite differences of the independent evaluator (no silently wrong answer);
  - `--check` must agree: "ok" only for a right derivative, a failure only for a wrong
    one (no wrong check verdict);
  - the display (`diff` in one of the three spellings, with its `where` lines) is read
    back through `matcalc simplify … --let …` into NumPy and must match the same finite
    differences (what is printed is right, and parses back).
An inconclusive check, an `unsupported:` answer, or a display whose sizes the reader
cannot tell that the check fails for it (`unreadable-and-failed`: said, not silent), is
counted, not a finding.

Values are drawn inside every function's domain: the evaluator raises `Domain` where a
function is not smooth enough for finite differences (log and sqrt near 0, abs, sign,
relu and ‖·‖₁ near a kink, arcsin near ±1, tan near a pole, a near-singular inverse,
overflowing values) and the judge draws again.

usage: python3 random_exprs.py MATCALC --count N --seed S [--jobs J] [--keep DIR]
           [--family F[,F…]] [--spelling unicode|ascii|latex|mixed] [--list]
`--family` restricts the generator to constructs of the named families (the core
plumbing that makes a scalar stays available); `--list` prints the families and the
constructs each reaches. Prints one line per finding and a summary; exits 1 if there
was a finding.
"""
import argparse
import concurrent.futures
import importlib.util
import inspect
import json
import math
import os
import random
import re
import subprocess
import sys
import tempfile

import numpy as np

# Sizes are symbols in the expression; the evaluator draws them per trial. "nm" is the
# product n·m, the size of a Kronecker product or of vec(X).
VARIABLES = {
    # name: (rows, cols, kind)
    "A": ("n", "n", "general"),
    "B": ("n", "n", "general"),
    "C": ("m", "m", "general"),
    "S": ("n", "n", "spd"),
    "X": ("n", "m", "general"),
    "x": ("n", "1", "general"),
    "y": ("n", "1", "general"),
    "x₁": ("n", "1", "general"),
    "u": ("m", "1", "general"),
    "α": ("1", "1", "positive"),
    "β": ("1", "1", "positive"),
    "k": ("1", "1", "int"),
}
DECLS = ("A: n×n, B: n×n, C: m×m, S: n×n spd, X: n×m, x: n, y: n, x₁: n, u: m, "
         "α: scalar, β: scalar, k: int")
PYTHON = {"α": "alpha", "β": "beta", "x₁": "x1"}
SPELLED = {  # how each spelling writes a variable: choices
    "unicode": {"α": ["α"], "β": ["β"], "x₁": ["x₁"]},
    "ascii": {"α": ["alpha"], "β": ["beta"], "x₁": ["x1", "x_1"]},
    "latex": {"α": ["\\alpha"], "β": ["\\beta"], "x₁": ["x_1", "x_{1}"]},
}
SHAPES = [("n", "n"), ("n", "m"), ("m", "n"), ("m", "m"), ("n", "1"), ("m", "1"),
          ("1", "n"), ("1", "1")]
SPELLINGS = ["unicode", "ascii", "latex", "mixed"]


class Undetermined(Exception):
    """A program asks for a size that nothing it was given fixes."""


class Domain(Exception):
    """The evaluator is outside a function's smooth domain: draw again."""


def need(condition):
    if not bool(np.all(condition)):
        raise Domain()


def finite(value):
    value = np.asarray(value, dtype=float)
    need(np.isfinite(value))
    need(np.abs(value) < 1e6)
    return value


def away(z, margin=0.05):
    """A kink or pole at 0 is at least `margin` away, for finite differences."""
    need(np.abs(z) > margin)
    return z


def sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def matmul(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape == (1, 1) or b.shape == (1, 1):
        return a * b
    return a @ b


def softmax(z):
    e = np.exp(z - np.max(z))
    return e / np.sum(e)


def vec(a):
    return np.asarray(a).reshape(-1, 1, order="F")


def checked_inverse(a):
    need(np.linalg.cond(a) < 1e6)
    return np.linalg.inv(a)


def dim_product(a, b):
    """The size of a Kronecker product's side, when the generator has a name for it."""
    if a == "1":
        return b
    if b == "1":
        return a
    if {a, b} == {"n", "m"}:
        return "nm"
    return None


def split_dim(d):
    """Ways of writing size `d` as a product of two sizes."""
    if d == "1":
        return [("1", "1")]
    if d == "nm":
        return [("n", "m"), ("m", "n")]
    return [(d, "1"), ("1", d)]


class Node:
    """A generated expression: its text, its shape, its evaluator and what it is known to
    be (positive entries; entries in (−1, 1))."""

    def __init__(self, text, shape, fn, positive=False, atomic=False, bounded=False,
                 variable=False, families=(), names=()):
        self.text, self.shape, self.fn = text, shape, fn
        self.positive, self.atomic, self.bounded = positive, atomic, bounded
        self.variable = variable
        self.families = set(families)
        self.names = set(names)


# What each family reaches: the constructs of SPEC §2 it generates (for --list).
FAMILIES = {
    "core": "sum, difference, negation, product (juxtaposition, ·, *, \\cdot, \\mathbf{Wx}), "
            "scalar times matrix, scalar broadcast (1 − σ(z)), transpose (ᵀ ' ^T ^\\top), "
            "diag, sum, inner product, quotient by a scalar (/, \\frac)",
    "hadamard": "⊙ ∘ .* \\odot \\circ",
    "functions": "σ sigma sigmoid \\sigma exp e^{…} log sqrt √ tanh swish relu softplus sin cos "
                 "tan arcsin asin arccos acos arctan atan sinh cosh abs sign, elementwise on "
                 "scalars, vectors and matrices",
    "norms": "‖·‖² ‖·‖₂² norm(·)^2 norm2 ||·||^2 \\|·\\|_2^2 \\lVert·\\rVert \\left\\lVert, ‖·‖ ‖·‖₂ "
             "‖·‖₁ norm1 ‖·‖_F \\|·\\|_F, of vectors and matrices",
    "elementwise": "⊘ ./ \\oslash, x^{∘k} x.^k x^{\\circ k} with integer and rational k",
    "powers": "A² A³ A⁻² A^2 A^{2}, K⁻¹ K^-1 inv(K) K^{-1}, K⁻ᵀ K^-T K^{-\\top}, "
              "rational scalar powers c^{1/3} c^0.5 c^{\\frac{1}{2}}, Xᵏ X^k X^{k-1} Xᵏ⁺¹ (k: int)",
    "linalg": "tr trace \\operatorname{tr} \\mathrm{tr}, det(A) |A| \\det A, log|A| log det A "
              "logdet(A) \\log\\det A \\log\\left|A\\right|",
    "vector": "softmax logsumexp lse \\operatorname{softmax}",
    "kron": "⊗ kron(A, B) \\otimes, vec(A) (sizes n·m)",
    # Only when asked for: matcalc reads bars around a scalar as its determinant (the
    # scalar itself), not as SPEC §2's absolute value, so `\lvert α − β \rvert` is a
    # silently different reading (issue 12's "|x| as abs").
    "bars": "\\lvert z \\rvert, the absolute value of a scalar (SPEC §2's LaTeX spelling of abs)",
    "constants": "numbers 2 3 0.5 1e-3 2.5E2 10^{-3} ½ ⅓ ¾ 3/4 \\frac{1}{2} \\tfrac12, "
                 "𝟙 ones \\mathbf{1} vector(c) matrix(c) I eye, Greek α alpha \\alpha, "
                 "subscripts x₁ x1 x_1 x_{1}",
}


class Generator:
    def __init__(self, rng, families=None, spelling="any"):
        self.rng = rng
        self.families = families  # None: every family
        self.spelling_mode = spelling
        self.current = "unicode"

    # ---- choices ------------------------------------------------------------------

    def pick(self, options):
        return options[self.rng.randrange(len(options))]

    def spell(self):
        """The spelling of the construct about to be written: the expression's, or in a
        mixed expression each construct's own."""
        if self.current == "mixed":
            return self.pick(["unicode", "ascii", "latex"])
        return self.current

    def allowed(self, family):
        if self.families is not None and "bars" in self.families and family == "functions":
            return True  # bars are how abs is written
        return self.families is None or family in self.families or family == "core"

    def start(self):
        """A new expression: its spelling, one of the four unless one was asked for."""
        mode = self.spelling_mode
        self.current = self.pick(SPELLINGS) if mode == "any" else mode

    def node(self, text, shape, fn, family, *parts, names=(), **flags):
        families, used = {family}, set(names)
        for part in parts:
            families |= part.families
            used |= part.names
        return Node(text, shape, fn, families=families, names=used, **flags)

    # ---- how things are written ---------------------------------------------------

    def wrap(self, a):
        if a.atomic:
            return a.text
        if self.spell() == "latex" and self.rng.random() < 0.5:
            return f"\\left( {a.text} \\right)"
        return f"({a.text})"

    def base(self, a):
        """The base of a postfix: superscript digits run together (`A²²` is A to the 22),
        so anything but a plain variable is bracketed."""
        return a.text if a.variable else f"({a.text})"

    def call(self, name, a, latex=None):
        """A function applied: `tr(A)`, or its LaTeX form."""
        sp = self.spell()
        if sp == "latex" and latex is not None:
            return f"{latex}\\left({a.text}\\right)" if self.rng.random() < 0.3 \
                else f"{latex}({a.text})"
        return f"{name}({a.text})"

    def juxtapose(self, a, b):
        sp = self.spell()
        if sp == "unicode":
            glue = self.pick([" ", " ", "·", " * "])
            if a.text in GLUED and b.text in GLUED:
                glue = self.pick(["", " "])
            return f"{self.wrap(a)}{glue}{self.wrap(b)}"
        if sp == "ascii":
            return f"{self.wrap(a)}{self.pick([' ', '*', ' * '])}{self.wrap(b)}"
        if a.variable and b.variable and a.text.isalpha() and b.text.isalpha() \
                and len(a.text) == 1 and len(b.text) == 1 and self.rng.random() < 0.5:
            return f"\\mathbf{{{a.text}{b.text}}}"
        glue = self.pick([" ", " \\cdot ", " \\, "])
        return f"{self.wrap(a)}{glue}{self.wrap(b)}"

    def infix(self, a, op, b):
        return f"{self.wrap(a)} {op} {self.wrap(b)}"

    def transposed(self, text_base):
        mark = {"unicode": ["ᵀ"], "ascii": ["'", "^T"],
                "latex": ["^T", "^\\top", "^{\\top}"]}[self.spell()]
        return f"{text_base}{self.pick(mark)}"

    def number(self, value):
        """A positive scalar constant in one of its spellings: (text, value)."""
        sp = self.spell()
        table = {
            "unicode": [("2", 2), ("3", 3), ("0.5", 0.5), ("½", 0.5), ("⅓", 1 / 3), ("¾", 0.75),
                        ("3/4", 0.75), ("1e-3", 1e-3), ("2.5E2", 250.0)],
            "ascii": [("2", 2), ("3", 3), ("0.5", 0.5), ("1/2", 0.5), ("1e-3", 1e-3),
                      ("2.5E2", 250.0)],
            "latex": [("2", 2), ("3", 3), ("0.5", 0.5), ("\\frac{1}{2}", 0.5),
                      ("\\tfrac12", 0.5), ("\\frac{3}{4}", 0.75), ("10^{-3}", 1e-3)],
        }[sp]
        if value is not None:
            table = [entry for entry in table if entry[1] == value] or table
        return self.pick(table)

    # ---- leaves -------------------------------------------------------------------

    def variable(self, name, transpose=False):
        rows, cols, kind = VARIABLES[name]
        text = self.pick(SPELLED[self.spell()].get(name, [name]))
        if self.spell() == "latex" and name in "ABCSXxyu" and self.rng.random() < 0.3:
            text = f"\\mathbf{{{name}}}"
        families = ["constants"] if name in ("x₁", "α", "β") else []
        if transpose:
            return Node(self.transposed(text), (cols, rows), lambda v: v[name].T,
                        atomic=True, families=families, names=[name])
        return Node(text, (rows, cols), lambda v: v[name], positive=kind == "positive",
                    atomic=True, variable=True, families=families, names=[name])

    def leaf(self, shape):
        choices = []
        for name, (r, c, kind) in VARIABLES.items():
            if kind == "int":
                continue
            if (r, c) == shape:
                choices.append((name, False))
            elif (c, r) == shape:
                choices.append((name, True))
        nodes = [self.variable(name, t) for name, t in choices]
        if shape == ("1", "1") and self.allowed("constants"):
            text, value = self.number(None)
            atomic = "/" not in text and "^" not in text
            nodes.append(Node(text, shape, lambda v, q=value: np.array([[float(q)]]),
                              positive=True, atomic=atomic, families={"constants"}))
        if not nodes:
            return None
        return self.pick(nodes)

    def smallest(self, shape):
        """A leaf of `shape`, a product of two leaves, or a Kronecker product or vec of
        leaves, when no variable has that shape."""
        leaf = self.leaf(shape)
        if leaf is not None:
            return leaf
        for inner in ("n", "m"):
            a, b = self.leaf((shape[0], inner)), self.leaf((inner, shape[1]))
            if a is not None and b is not None:
                return self.node(self.juxtapose(a, b), shape,
                                 lambda v: matmul(a.fn(v), b.fn(v)), "core", a, b)
        if shape[1] == "1" and shape[0] == "nm":
            x = self.leaf(("n", "m"))
            return self.node(f"vec({x.text})", shape, lambda v: vec(x.fn(v)), "kron", x,
                             atomic=True)
        for r1, r2 in split_dim(shape[0]):
            for c1, c2 in split_dim(shape[1]):
                a, b = self.leaf((r1, c1)), self.leaf((r2, c2))
                if a is not None and b is not None:
                    return self.kron_of(a, b, shape)
        raise ValueError(f"no expression of shape {shape}")

    # ---- the recursive generator --------------------------------------------------

    def gen(self, shape, depth):
        if depth <= 0:
            return self.smallest(shape)
        if self.rng.random() < 0.1:
            leaf = self.leaf(shape)
            if leaf is not None:
                return leaf
        rows, cols = shape
        builders = [("core", self.sum), ("core", self.difference), ("core", self.product),
                    ("core", self.product), ("core", self.scaled), ("hadamard", self.hadamard),
                    ("functions", self.function), ("functions", self.function),
                    ("core", self.negation), ("core", self.transpose),
                    ("elementwise", self.elem_div), ("elementwise", self.elem_power),
                    ("kron", self.kron), ("core", self.quotient)]
        if rows != "1" or cols != "1":
            builders += [("core", self.broadcast), ("constants", self.constant_matrix)]
        if rows == cols and rows != "1":
            builders += [("powers", self.inverse), ("powers", self.power),
                         ("powers", self.int_power), ("constants", self.plus_identity),
                         ("core", self.diag_matrix), ("powers", self.inverse),
                         ("powers", self.power)]
        if cols == "1" and rows != "1":
            builders += [("core", self.diag_vector), ("constants", self.plus_ones),
                         ("vector", self.softmax)]
        if cols == "1" and rows == "nm":
            builders += [("kron", self.vectorize)]
        if shape == ("1", "1"):
            builders += [("linalg", self.trace), ("core", self.total), ("norms", self.norm_sq),
                         ("norms", self.norm), ("linalg", self.log_det), ("linalg", self.det),
                         ("core", self.inner), ("vector", self.logsumexp),
                         ("powers", self.scalar_power), ("linalg", self.trace)]
        builders = [build for family, build in builders if self.allowed(family)]
        if self.families is not None:
            # Lean towards the families asked for; the core only plumbs shapes.
            favoured = [b for b in builders if self.builder_family(b) in self.families
                        or "bars" in self.families and self.builder_family(b) == "functions"]
            builders = builders + favoured * 3
        for _ in range(10):
            node = self.pick(builders)(shape, depth - 1)
            if node is not None:
                return node
        return self.smallest(shape)

    def builder_family(self, build):
        for family, names in BUILDER_FAMILIES.items():
            if build.__name__ in names:
                return family
        return "core"

    # ---- core ---------------------------------------------------------------------

    def sum(self, shape, depth):
        a, b = self.gen(shape, depth), self.gen(shape, depth)
        return self.node(f"{self.wrap(a)} + {self.wrap(b)}", shape,
                         lambda v: a.fn(v) + b.fn(v), "core", a, b,
                         positive=a.positive and b.positive)

    def difference(self, shape, depth):
        a, b = self.gen(shape, depth), self.gen(shape, depth)
        minus = "−" if self.spell() == "unicode" else "-"
        return self.node(f"{self.wrap(a)} {minus} {self.wrap(b)}", shape,
                         lambda v: a.fn(v) - b.fn(v), "core", a, b)

    def inner_size(self):
        """The inner size of a product; now and then n·m, where Kronecker products live."""
        if self.allowed("kron") and self.rng.random() < 0.1:
            return "nm"
        return self.pick(["n", "m"])

    def product(self, shape, depth):
        rows, cols = shape
        inner = self.inner_size()
        a, b = self.gen((rows, inner), depth), self.gen((inner, cols), depth)
        return self.node(self.juxtapose(a, b), shape, lambda v: matmul(a.fn(v), b.fn(v)),
                         "core", a, b)

    def scaled(self, shape, depth):
        s, a = self.gen(("1", "1"), depth), self.gen(shape, depth)
        return self.node(self.juxtapose(s, a), shape, lambda v: s.fn(v) * a.fn(v), "core",
                         s, a, positive=s.positive and a.positive)

    def broadcast(self, shape, depth):
        """A scalar plus or minus a matrix, elementwise (SPEC §2: `1 − σ(z)`)."""
        s, a = self.gen(("1", "1"), depth), self.gen(shape, depth)
        if self.rng.random() < 0.5:
            return self.node(f"{self.wrap(s)} + {self.wrap(a)}", shape,
                             lambda v: s.fn(v) + a.fn(v), "core", s, a,
                             positive=s.positive and a.positive)
        return self.node(f"{self.wrap(a)} - {self.wrap(s)}", shape,
                         lambda v: a.fn(v) - s.fn(v), "core", s, a)

    def negation(self, shape, depth):
        a = self.gen(shape, depth)
        minus = "−" if self.spell() == "unicode" else "-"
        return self.node(f"{minus}{self.wrap(a)}", shape, lambda v: -a.fn(v), "core", a)

    def transpose(self, shape, depth):
        a = self.gen((shape[1], shape[0]), depth)
        return self.node(self.transposed(self.wrap(a)), shape, lambda v: a.fn(v).T, "core", a,
                         atomic=True, positive=a.positive)

    def diag_matrix(self, shape, depth):
        a = self.gen((shape[0], "1"), depth)
        return self.node(self.call("diag", a, "\\operatorname{diag}"), shape,
                         lambda v: np.diag(a.fn(v)[:, 0]), "core", a, atomic=True)

    def diag_vector(self, shape, depth):
        if shape[0] == "nm":
            return None
        a = self.gen((shape[0], shape[0]), depth)
        return self.node(self.call("diag", a, "\\operatorname{diag}"), shape,
                         lambda v: np.diag(a.fn(v)).reshape(-1, 1), "core", a, atomic=True,
                         positive=a.positive)

    def total(self, shape, depth):
        a = self.gen(self.pick(SHAPES[:-1] + [(self.inner_size(), "1")]), depth)
        return self.node(self.call("sum", a, "\\operatorname{sum}"), shape,
                         lambda v: np.array([[np.sum(a.fn(v))]]), "core", a, atomic=True,
                         positive=a.positive)

    def inner(self, shape, depth):
        n = self.pick(["n", "m"])
        a, b = self.gen((n, "1"), depth), self.gen((n, "1"), depth)
        at = Node(self.transposed(self.wrap(a)), ("1", n), None, atomic=True)
        return self.node(self.juxtapose(at, b), shape, lambda v: a.fn(v).T @ b.fn(v),
                         "core", a, b)

    def quotient(self, shape, depth):
        a = self.gen(shape, depth)
        if self.rng.random() < 0.3 and self.spell() != "latex":
            # A number as the denominator, the one factor after `/`: `x/2`.
            q = self.pick([2, 3, 4])
            return self.node(f"{self.wrap(a)}/{q}", shape, lambda v: a.fn(v) / q, "core", a)
        b = self.positive_node(("1", "1"), depth)
        fn = lambda v: a.fn(v) / b.fn(v)  # noqa: E731
        if self.spell() == "latex" and self.rng.random() < 0.5:
            return self.node(f"\\frac{{{a.text}}}{{{b.text}}}", shape, fn, "core", a, b,
                             atomic=True)
        return self.node(f"{self.wrap(a)}/({b.text})", shape, fn, "core", a, b)

    # ---- domains ------------------------------------------------------------------

    def positive_node(self, shape, depth):
        """An expression of `shape` whose entries are positive."""
        a = self.gen(shape, depth)
        if a.positive:
            return a
        form = self.pick(["square", "exp", "sigma", "softplus", "cosh"])
        if form == "square" and shape == ("1", "1"):
            return self.node(f"{self.base(a)}² + 1" if self.spell() == "unicode"
                             else f"{self.base(a)}^2 + 1", shape,
                             lambda v: a.fn(v) ** 2 + 1.0, "core", a, positive=True)
        if form == "square":
            sq = {"unicode": "⊙", "ascii": ".*", "latex": "\\odot"}[self.spell()]
            return self.node(f"{self.wrap(a)} {sq} {self.wrap(a)} + 1", shape,
                             lambda v: a.fn(v) * a.fn(v) + 1.0, "hadamard", a, positive=True)
        return self.apply_function(form if form != "sigma" else "σ", self.bounded_node(a))

    def bounded_node(self, a):
        """`a`, or tanh(a) when `a` is not known to lie in (−1, 1)."""
        if a.bounded:
            return a
        return self.apply_function("tanh", a)

    # ---- functions ----------------------------------------------------------------

    FUNCTIONS = {
        # name: (evaluator, domain of the argument, positive result, bounded result,
        #        spellings: unicode, ascii, latex)
        "σ": (sigmoid, None, True, True, ["σ", "sigmoid"], ["sigma", "sigmoid"],
              ["\\sigma", "\\operatorname{sigmoid}"]),
        "exp": (np.exp, None, True, False, ["exp"], ["exp"], ["\\exp", "e^"]),
        "log": (np.log, "positive", False, False, ["log"], ["log"], ["\\log"]),
        "sqrt": (np.sqrt, "positive", True, False, ["sqrt", "√"], ["sqrt"], ["\\sqrt"]),
        "tanh": (np.tanh, None, False, True, ["tanh"], ["tanh"], ["\\tanh"]),
        "swish": (lambda z: z * sigmoid(z), None, False, False, ["swish"], ["swish"],
                  ["\\operatorname{swish}"]),
        "relu": (lambda z: np.maximum(z, 0.0), "kink", False, False, ["relu"], ["relu"],
                 ["\\operatorname{relu}"]),
        "softplus": (lambda z: np.logaddexp(0.0, z), None, True, False, ["softplus"],
                     ["softplus"], ["\\operatorname{softplus}"]),
        "sin": (np.sin, None, False, True, ["sin"], ["sin"], ["\\sin"]),
        "cos": (np.cos, None, False, True, ["cos"], ["cos"], ["\\cos"]),
        "tan": (np.tan, "pole", False, False, ["tan"], ["tan"], ["\\tan"]),
        "arcsin": (np.arcsin, "unit", False, False, ["arcsin"], ["asin", "arcsin"],
                   ["\\arcsin"]),
        "arccos": (np.arccos, "unit", True, False, ["arccos"], ["acos", "arccos"],
                   ["\\arccos"]),
        "arctan": (np.arctan, None, False, False, ["arctan"], ["atan", "arctan"],
                   ["\\arctan"]),
        "sinh": (np.sinh, None, False, False, ["sinh"], ["sinh"], ["\\sinh"]),
        "cosh": (np.cosh, None, True, False, ["cosh"], ["cosh"], ["\\cosh"]),
        "abs": (np.abs, "kink", False, False, ["abs"], ["abs"], ["\\operatorname{abs}"]),
        "sign": (np.sign, "kink", False, True, ["sign"], ["sign"], ["\\operatorname{sign}"]),
    }

    def function(self, shape, depth):
        name = self.pick(list(self.FUNCTIONS))
        domain = self.FUNCTIONS[name][1]
        if domain == "positive":
            a = self.positive_node(shape, depth)
        elif domain in ("unit", "pole"):
            a = self.bounded_node(self.gen(shape, depth))
        else:
            a = self.gen(shape, depth)
        return self.apply_function(name, a)

    def apply_function(self, name, a):
        fn, domain, positive, bounded, *spellings = self.FUNCTIONS[name]
        sp = self.spell()
        word = self.pick(spellings[["unicode", "ascii", "latex"].index(sp)])

        def evaluate(v):
            z = a.fn(v)
            if domain == "positive":
                need(z > 0.02)
            elif domain == "kink":
                away(z)
            elif domain == "unit":
                need(np.abs(z) < 0.95)
            elif domain == "pole":
                need(np.abs(np.cos(z)) > 0.1)
            return finite(fn(z))

        if name == "abs" and sp == "latex" and a.shape == ("1", "1") and self.families \
                and "bars" in self.families and self.rng.random() < 0.5:
            text = f"\\lvert {self.norm_content(a)} \\rvert"
        elif word == "e^":
            text = f"e^{{{a.text}}}"
        elif word == "\\sqrt":
            text = f"\\sqrt{{{a.text}}}"
        elif word.startswith("\\") and word != "\\sigma" and self.rng.random() < 0.3:
            text = f"{word}\\left({a.text}\\right)"
        else:
            text = f"{word}({a.text})"
        family = "bars" if text.startswith("\\lvert") else "functions"
        return self.node(text, a.shape, evaluate, family, a, positive=positive,
                         bounded=bounded, atomic=True)

    # ---- Hadamard and elementwise -------------------------------------------------

    def hadamard(self, shape, depth):
        if shape == ("1", "1"):
            return None
        a, b = self.gen(shape, depth), self.gen(shape, depth)
        op = self.pick({"unicode": ["⊙", "∘"], "ascii": [".*"],
                        "latex": ["\\odot", "\\circ"]}[self.spell()])
        return self.node(self.infix(a, op, b), shape, lambda v: a.fn(v) * b.fn(v),
                         "hadamard", a, b, positive=a.positive and b.positive)

    def elem_div(self, shape, depth):
        if shape == ("1", "1"):
            return None
        a, b = self.gen(shape, depth), self.positive_node(shape, depth)
        op = {"unicode": "⊘", "ascii": "./", "latex": "\\oslash"}[self.spell()]

        def evaluate(v):
            den = b.fn(v)
            away(den)
            return finite(a.fn(v) / den)

        return self.node(self.infix(a, op, b), shape, evaluate, "elementwise", a, b,
                         positive=a.positive)

    def elem_power(self, shape, depth):
        if shape == ("1", "1"):
            return None
        k = self.pick([(2, 1), (3, 1), (-1, 1), (-2, 1), (1, 3), (1, 2), (-1, 2), (3, 2)])
        p, q = k
        a = self.positive_node(shape, depth) if q != 1 or p < 0 else self.gen(shape, depth)
        exponent = f"{p}" if q == 1 else f"{p}/{q}"
        sp = self.spell()
        if sp == "unicode":
            minus = exponent.replace("-", "−")
            text = f"{self.base(a)}^{{∘{minus}}}"
        elif sp == "ascii":
            if q == 1:
                text = f"{self.base(a)} .^ {exponent}" if p > 0 else f"{self.base(a)}.^({exponent})"
            else:
                text = f"{self.base(a)}.^({exponent})"
        else:
            ex = exponent if q == 1 else \
                f"{'-' if p < 0 else ''}\\frac{{{abs(p)}}}{{{q}}}"
            text = f"{self.base(a)}^{{\\circ {ex}}}"

        def evaluate(v):
            z = a.fn(v)
            if q != 1 or p < 0:
                need(z > 0.05)
            return finite(z ** (p / q))

        return self.node(text, shape, evaluate, "elementwise", a, positive=q != 1)

    # ---- norms --------------------------------------------------------------------

    def norm_content(self, a):
        """Inside bars, a juxtaposed factor never begins with a bar: bracket bars."""
        if "|" in a.text or "‖" in a.text or "Vert" in a.text or "vert" in a.text:
            return f"({a.text})"
        return a.text

    def norm_sq(self, shape, depth):
        a = self.gen(self.pick(SHAPES[:-1]), depth)
        c = self.norm_content(a)
        text = self.pick({
            "unicode": [f"‖{c}‖²", f"‖{c}‖₂²"] if a.shape[1] == "1" else [f"‖{c}‖²", f"‖{c}‖_F²"],
            "ascii": [f"norm({a.text})^2", f"||{c}||^2"]
            + ([f"norm2({a.text})^2", f"||{c}||_2^2"] if a.shape[1] == "1" else []),
            "latex": [f"\\|{c}\\|^2", f"\\left\\lVert {c} \\right\\rVert^2"]
            + ([f"\\|{c}\\|_2^2", f"\\lVert {c} \\rVert_2^2"] if a.shape[1] == "1"
               else [f"\\|{c}\\|_F^2"]),
        }[self.spell()])
        return self.node(text, shape, lambda v: np.array([[np.sum(a.fn(v) ** 2)]]), "norms",
                         a, positive=True, atomic=True)

    def norm(self, shape, depth):
        """‖·‖ and ‖·‖₂ of a vector, ‖·‖_F of a matrix, ‖·‖₁ of a vector (the entrywise
        reading of a matrix's ‖·‖₁ or ‖·‖₂ is not what a reader assumes)."""
        kind = self.pick(["2", "1", "F"])
        if kind == "F":
            a = self.gen(self.pick([("n", "n"), ("n", "m"), ("m", "n")]), depth)
        else:
            a = self.gen(self.pick([("n", "1"), ("m", "1")]), depth)
        c = self.norm_content(a)
        text = self.pick({
            ("unicode", "2"): [f"‖{c}‖", f"‖{c}‖₂"],
            ("unicode", "1"): [f"‖{c}‖₁"],
            ("unicode", "F"): [f"‖{c}‖_F"],
            ("ascii", "2"): [f"norm({a.text})", f"norm2({a.text})", f"||{c}||"],
            ("ascii", "1"): [f"norm1({a.text})", f"||{c}||_1"],
            ("ascii", "F"): [f"||{c}||_F"],
            ("latex", "2"): [f"\\|{c}\\|_2", f"\\lVert {c} \\rVert"],
            ("latex", "1"): [f"\\|{c}\\|_1"],
            ("latex", "F"): [f"\\|{c}\\|_F", f"\\|{c}\\|_{{\\mathrm{{F}}}}"],
        }[(self.spell(), kind)])

        def evaluate(v):
            z = a.fn(v)
            if kind == "1":
                away(z)
                return np.array([[np.sum(np.abs(z))]])
            value = math.sqrt(np.sum(z ** 2))
            need(value > 0.05)
            return np.array([[value]])

        return self.node(text, shape, evaluate, "norms", a, positive=True, atomic=True)

    # ---- softmax, logsumexp -------------------------------------------------------

    def softmax(self, shape, depth):
        a = self.gen(shape, depth)
        text = self.call("softmax", a, "\\operatorname{softmax}")
        return self.node(text, shape, lambda v: softmax(finite(a.fn(v))), "vector", a,
                         positive=True, bounded=True, atomic=True)

    def logsumexp(self, shape, depth):
        n = self.pick(["n", "m"])
        a = self.gen((n, "1"), depth)
        name = self.pick(["logsumexp", "lse"])
        text = self.call(name, a, "\\operatorname{logsumexp}")

        def evaluate(v):
            z = finite(a.fn(v))
            top = np.max(z)
            return np.array([[top + math.log(np.sum(np.exp(z - top)))]])

        return self.node(text, shape, evaluate, "vector", a, atomic=True)

    # ---- powers -------------------------------------------------------------------

    def well_conditioned(self, shape, depth):
        """A square matrix far from singular: S + ZZᵀ for spd S."""
        n = shape[0]
        if n != "n":
            return None
        z = self.gen((n, self.pick(["n", "m"])), depth)
        s = self.variable("S")
        zt = Node(self.transposed(self.wrap(z)), None, None, atomic=True)
        zz = Node(self.juxtapose(z, zt), None, None)
        return self.node(f"{s.text} + {zz.text}", shape,
                         lambda v: v["S"] + z.fn(v) @ z.fn(v).T, "core", z, s)

    def inverse(self, shape, depth):
        a = self.well_conditioned(shape, depth)
        if a is None:
            return None
        transpose = self.rng.random() < 0.25
        sp = self.spell()
        b = self.base(a)
        if transpose:
            text = self.pick({"unicode": [f"{b}⁻ᵀ"], "ascii": [f"{b}^-T"],
                              "latex": [f"{b}^{{-T}}", f"{b}^{{-\\top}}"]}[sp])
        else:
            text = self.pick({"unicode": [f"{b}⁻¹"], "ascii": [f"{b}^-1", f"inv({a.text})"],
                              "latex": [f"{b}^{{-1}}"]}[sp])

        def evaluate(v):
            inv = checked_inverse(a.fn(v))
            return inv.T if transpose else inv

        return self.node(text, shape, evaluate, "powers", a, atomic=True)

    def power(self, shape, depth):
        k = self.pick([2, 3, -2])
        if k < 0:
            a = self.well_conditioned(shape, min(depth, 1))
            if a is None:
                return None
        else:
            a = self.gen(shape, min(depth, 1))
        b = self.base(a)
        text = {"unicode": f"{b}{ {2: '²', 3: '³', -2: '⁻²'}[k]}",
                "ascii": f"{b}^{k}", "latex": f"{b}^{{{k}}}"}[self.spell()]

        def evaluate(v):
            z = a.fn(v)
            if k < 0:
                z = checked_inverse(z)
            return finite(np.linalg.matrix_power(z, abs(k)))

        return self.node(text, shape, evaluate, "powers", a, atomic=True)

    def int_power(self, shape, depth):
        """Xᵏ with the declared integer k (drawn 1…3), offsets −1, 0, +1."""
        offset = self.pick([0, 0, -1, 1])
        a = self.gen(shape, min(depth, 1)) if offset >= 0 else None
        if a is None:
            a = self.well_conditioned(shape, min(depth, 1))
            if a is None:
                a = self.gen(shape, min(depth, 1))
                offset = max(offset, 0)
        b = self.base(a)
        sp = self.spell()
        sign = "+" if offset > 0 else "-"
        if offset == 0:
            text = self.pick({"unicode": [f"{b}ᵏ"], "ascii": [f"{b}^k"],
                              "latex": [f"{b}^k", f"{b}^{{k}}"]}[sp])
        else:
            text = self.pick({"unicode": [f"{b}ᵏ{'⁺' if offset > 0 else '⁻'}¹"],
                              "ascii": [f"{b}^(k{sign}1)"],
                              "latex": [f"{b}^{{k{sign}1}}"]}[sp])

        def evaluate(v):
            z = a.fn(v)
            e = int(v["k"][0, 0]) + offset
            if e < 0:
                z, e = checked_inverse(z), -e
            return finite(np.linalg.matrix_power(z, e))

        return self.node(text, shape, evaluate, "powers", a, atomic=True, names=["k"])

    def scalar_power(self, shape, depth):
        """A rational power of a positive scalar: c^{1/3}, c^0.5, c^{\\frac{1}{2}}."""
        a = self.positive_node(shape, depth)
        p, q = self.pick([(1, 2), (1, 3), (-1, 2), (3, 2), (2, 3)])
        b = self.base(a)
        sp = self.spell()
        if sp == "latex":
            text = f"{b}^{{{'-' if p < 0 else ''}\\frac{{{abs(p)}}}{{{q}}}}}"
        elif (p, q) == (1, 2) and self.rng.random() < 0.5:
            text = f"{b}^0.5"
        else:
            text = f"{b}^{{{p}/{q}}}" if sp == "unicode" else f"{b}^({p}/{q})"

        def evaluate(v):
            z = a.fn(v)
            need(z > 0.02)
            return finite(z ** (p / q))

        return self.node(text, shape, evaluate, "powers", a, atomic=True, positive=True)

    # ---- linear algebra -----------------------------------------------------------

    def trace(self, shape, depth):
        n = self.inner_size()
        a = self.gen((n, n), depth)
        sp = self.spell()
        word = self.pick({"unicode": ["tr"], "ascii": ["tr", "trace"],
                          "latex": ["\\operatorname{tr}", "\\mathrm{tr}", "\\text{tr}"]}[sp])
        return self.node(f"{word}({a.text})", shape, lambda v: np.array([[np.trace(a.fn(v))]]),
                         "linalg", a, atomic=True)

    def log_det(self, shape, depth):
        a = self.well_conditioned(("n", "n"), depth)
        if a is None:
            return None
        c = self.norm_content(a)
        text = self.pick({
            "unicode": [f"log|{c}|", f"log det({a.text})", f"logdet({a.text})"],
            "ascii": [f"logdet({a.text})", f"log det({a.text})"],
            "latex": [f"\\log|{c}|", f"\\log\\det({a.text})", f"\\log \\left| {c} \\right|"],
        }[self.spell()])

        def evaluate(v):
            sign, value = np.linalg.slogdet(a.fn(v))
            need(sign > 0)
            return np.array([[value]])

        return self.node(text, shape, evaluate, "linalg", a, atomic=True)

    def det(self, shape, depth):
        a = self.well_conditioned(("n", "n"), min(depth, 1))
        if a is None:
            return None
        c = self.norm_content(a)
        text = self.pick({"unicode": [f"det({a.text})", f"|{c}|"],
                          "ascii": [f"det({a.text})"],
                          "latex": [f"\\det({a.text})", f"\\left| {c} \\right|"]}[self.spell()])
        return self.node(text, shape, lambda v: finite(np.array([[np.linalg.det(a.fn(v))]])),
                         "linalg", a, positive=True, atomic=True)

    # ---- constants ----------------------------------------------------------------

    def ones_text(self, shape):
        """The all-ones vector or matrix of inferred size, or c times it: (text, c)."""
        sp = self.spell()
        if shape[1] == "1":
            c = self.pick([1, 1, 2])
            options = {"unicode": ["𝟙", "vector(1)"], "ascii": ["ones", "vector(1)"],
                       "latex": ["\\mathbf{1}", "vector(1)"]}[sp]
            if c != 1:
                options = [f"vector({c})"]
            return self.pick(options), c
        c = self.pick([1, 2, 3])
        return f"matrix({c})", c

    def plus_ones(self, shape, depth):
        a = self.gen(shape, depth)
        text, c = self.ones_text(shape)
        return self.node(f"{self.wrap(a)} + {text}", shape, lambda v: a.fn(v) + float(c),
                         "constants", a, positive=a.positive)

    def constant_matrix(self, shape, depth):
        """A Hadamard product with a constant of inferred size: `X ⊙ matrix(2)`."""
        if shape[0] == "1":
            return None  # a row of ones has no name but 𝟙ᵀ
        a = self.gen(shape, depth)
        text, c = self.ones_text(shape)
        op = {"unicode": "⊙", "ascii": ".*", "latex": "\\odot"}[self.spell()]
        return self.node(f"{self.wrap(a)} {op} {text}", shape, lambda v: a.fn(v) * float(c),
                         "constants", a, positive=a.positive)

    def plus_identity(self, shape, depth):
        a = self.gen(shape, depth)
        eye = self.pick(["I", "eye"])
        return self.node(f"{self.wrap(a)} + {eye}", shape,
                         lambda v: a.fn(v) + np.eye(len(a.fn(v))), "constants", a)

    # ---- Kronecker and vec --------------------------------------------------------

    def kron_of(self, a, b, shape):
        text = self.pick({"unicode": [self.infix(a, "⊗", b)],
                          "ascii": [f"kron({a.text}, {b.text})"],
                          "latex": [self.infix(a, "\\otimes", b)]}[self.spell()])
        return self.node(text, shape, lambda v: np.kron(a.fn(v), b.fn(v)), "kron", a, b,
                         atomic=text.startswith("kron("))

    def kron(self, shape, depth):
        if shape == ("1", "1"):
            return None
        splits = [(r, c) for r in split_dim(shape[0]) for c in split_dim(shape[1])]
        (r1, r2), (c1, c2) = self.pick(splits)
        if (r1, c1) == ("1", "1") or (r2, c2) == ("1", "1"):
            return None
        a, b = self.gen((r1, c1), min(depth, 1)), self.gen((r2, c2), min(depth, 1))
        return self.kron_of(a, b, shape)

    def vectorize(self, shape, depth):
        a = self.gen(self.pick([("n", "m"), ("m", "n")]), min(depth, 2))
        return self.node(f"vec({a.text})", shape, lambda v: vec(a.fn(v)), "kron", a,
                         atomic=True)


# Variables that may be written without a blank between them in Unicode: `WᵀWx`.
GLUED = {"A", "B", "C", "S", "X", "x", "y", "u", "α", "β", "x₁"}

BUILDER_FAMILIES = {
    "hadamard": {"hadamard"},
    "functions": {"function"},
    "norms": {"norm_sq", "norm"},
    "elementwise": {"elem_div", "elem_power"},
    "powers": {"inverse", "power", "int_power", "scalar_power"},
    "linalg": {"trace", "log_det", "det"},
    "vector": {"softmax", "logsumexp"},
    "kron": {"kron", "vectorize"},
    "constants": {"plus_ones", "constant_matrix", "plus_identity"},
}


# ---- the expression's variables and their values ------------------------------------

def draw(rng, names):
    sizes = {"n": int(rng.integers(2, 5)), "m": int(rng.integers(2, 5)), "1": 1}
    sizes["nm"] = sizes["n"] * sizes["m"]
    values = {}
    for name in names:
        r, c, kind = VARIABLES[name]
        shape = (sizes[r], sizes[c])
        if kind == "spd":
            a = rng.standard_normal(shape)
            values[name] = a @ a.T / shape[0] + np.eye(shape[0])
        elif kind == "positive":
            values[name] = np.array([[float(rng.uniform(0.5, 2.0))]])
        elif kind == "int":
            values[name] = np.array([[float(rng.integers(1, 4))]])
        else:
            values[name] = rng.standard_normal(shape) * 0.7
    return sizes, values


def to_python(name, value):
    """A value as the generated module takes it: vectors 1-D, scalars floats."""
    r, c, kind = VARIABLES[name]
    if kind == "int":
        return int(value[0, 0])
    if (r, c) == ("1", "1"):
        return float(value[0, 0])
    if c == "1":
        return value[:, 0].copy()
    return value.copy()


def finite_difference(node, values, wrt):
    """Central differences of the independent evaluator, Richardson-extrapolated from
    steps h, h/2, h/4, with how far they can be trusted: (gradient, spread), the spread
    of an entry being how much its last two extrapolations, and the extrapolation from
    steps 0.7 times as long, disagree, and at least what rounding the values can hide.

    A step that is too long for the function (sin(X/1e-3) turns within 1e-3; cos(e^{det})
    where e^{det} is large) gives extrapolations that disagree: the step is then shortened
    tenfold, down to 1e-6, and the entry keeps the estimate whose spread is smallest. A
    judge may call an answer wrong only where the spread is well below its tolerance
    (`trusted`): finite differences that disagree with themselves judge nothing."""
    base = values[wrt]
    symmetric = VARIABLES[wrt][2] == "spd"
    grad = np.zeros_like(base)
    spread = np.zeros_like(base)

    def at(index, t):
        moved = dict(values)
        y = base.copy()
        y[index] += t
        if symmetric and index[0] != index[1]:
            y[index[::-1]] += t
        moved[wrt] = y
        return float(node.fn(moved)[0, 0])

    def extrapolated(index, h):
        """The extrapolated slope, the one before it, and the rounding floor: a value
        rounded to its last bit (a large term beside the one that depends on the input)
        moves no difference smaller than that, however well the steps agree."""
        pairs = [(at(index, s), at(index, -s)) for s in (h, h / 2, h / 4)]
        d = [(up - down) / (2 * s) for (up, down), s in zip(pairs, (h, h / 2, h / 4))]
        r1 = [(4 * d[1] - d[0]) / 3, (4 * d[2] - d[1]) / 3]
        largest = max(abs(v) for pair in pairs for v in pair)
        floor = 4 * np.finfo(float).eps * largest / (h / 4)
        return (16 * r1[1] - r1[0]) / 15, r1[1], floor

    for index in np.ndindex(*base.shape):
        best = None
        for step in (1e-3, 1e-4, 1e-5, 1e-6):
            h = step * max(1.0, abs(base[index]))
            slope, coarser, floor = extrapolated(index, h)
            # The extrapolations from one family of steps share their rounding errors, so
            # they agree where an ill-conditioned value (the log-determinant of a matrix
            # with a large rank-one term) makes all of them off alike; a second family,
            # whose steps are not the first's halvings, disagrees with it there.
            other, _, _ = extrapolated(index, 0.7 * h)
            disagreement = max(abs(slope - coarser), abs(slope - other), floor)
            if best is None or disagreement < best[1]:
                best = (slope, disagreement)
            if disagreement <= 1e-9 * max(1.0, abs(slope)):
                break
        slope, disagreement = best
        if symmetric and index[0] != index[1]:
            slope, disagreement = slope / 2, disagreement / 2
        grad[index] = slope
        spread[index] = disagreement
    return grad, spread


# An answer is judged against finite differences only where these agree with themselves
# to a tenth of the judge's tolerance (relative to the derivative's scale, like errors).
TOLERANCE = 1e-5


def trusted(expected, spread):
    """Whether finite differences `expected` with `spread` can tell a wrong answer."""
    scale = max(1.0, float(np.max(np.abs(expected))))
    return float(np.max(spread, initial=0.0)) / scale < TOLERANCE / 10


def load(path):
    spec = importlib.util.spec_from_file_location("generated", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def call(function, values, sizes):
    """Calls a generated function with the inputs it names and the sizes it asks for."""
    kwargs = {}
    for parameter in inspect.signature(function).parameters:
        if parameter.startswith("size_"):
            size = parameter[len("size_"):]
            if size not in sizes:
                raise Undetermined(size)
            kwargs[parameter] = sizes[size]
            continue
        if parameter == "G":  # the display's contraction
            g = values["G"]
            kwargs[parameter] = float(g.reshape(-1)[0]) if g.size == 1 else \
                (g[:, 0] if g.shape[1] == 1 else g)
            continue
        name = next(n for n in VARIABLES if PYTHON.get(n, n) == parameter)
        kwargs[parameter] = to_python(name, values[name])
    return function(**kwargs)


# ---- reading the display back --------------------------------------------------------

def displayed(stdout, spelling):
    """The derivative and its `where` lines as printed: (expr, [(name, expr)])."""
    if spelling == "latex":
        lines = [line.strip().rstrip("\\").strip() for line in stdout.splitlines()
                 if "&=" in line]
        parts = []
        for line in lines:
            left, right = line.split("&=", 1)
            parts.append((left.replace("\\text{where }", "").strip(), right.strip()))
    else:
        parts = []
        for line in stdout.splitlines():
            if line.startswith(("∂/∂", "d/d")):
                left, right = line.split(" = ", 1)
                parts.append((left, right))
            elif line.startswith("  ") and " = " in line and not line.strip().startswith("("):
                left, right = line.strip().split(" = ", 1)
                parts.append((left.replace("where ", "").strip(), right))
    if not parts:
        return None, []
    return parts[0][1], parts[1:]


def judge_display(matcalc, text, wrt, spelling, directory, tag, cases):
    """Reads the display in `spelling` back through the parser and returns a function
    evaluating it, or a finding."""
    run = subprocess.run([matcalc, "diff", text, "--wrt", wrt, "--decl", DECLS,
                          "--format", spelling], capture_output=True, timeout=60)
    if run.returncode != 0:
        return None, ("crash" if run.returncode not in (1, 2) else "display-differs",
                      f"--format {spelling}: exit {run.returncode}: "
                      f"{run.stderr.decode('utf-8', 'replace').strip()[:300]}")
    stdout = run.stdout.decode("utf-8", "replace")
    if "⟨" in stdout:  # an internal placeholder for a `where` name, never a name
        return None, ("display-unreadable", f"--format {spelling} printed a placeholder: "
                                            f"{stdout[:300]!r}")
    expr, where = displayed(stdout, spelling)
    if expr is None:
        return None, ("display-unreadable", f"--format {spelling}: no derivative line in "
                                            f"{stdout[:300]!r}")
    # Contracted with a random G shaped like the variable: the display's sizes then
    # unify with the variable's (a displayed `I` or `𝟙𝟙ᵀ` has no size of its own).
    rows, cols, _ = VARIABLES[wrt]
    if (rows, cols) == ("1", "1"):
        contracted, shape = f"G ({expr})", "scalar"
    else:
        contracted, shape = f"sum(G ⊙ ({expr}))", rows if cols == "1" else f"{rows}×{cols}"
    args = [matcalc, "simplify", contracted, "--decl", f"{DECLS}, G: {shape}",
            "--format", "numpy", "--time-limit", "50", "--max-input", "1000000"]
    for name, body in where:
        args += ["--let", f"{name} = {body}"]
    back = subprocess.run(args, capture_output=True, timeout=60)
    reason = back.stderr.decode("utf-8", "replace")
    if back.returncode != 0 and "cannot be inferred from" in reason:
        # A text whose sizes the reader cannot tell (I ⊗ 𝟙𝟙ᵀ of a product size mnq):
        # matcalc's check must not have said ok; the caller judges by its verdict.
        return None, ("display-untyped", f"{stdout.strip()!r}: {reason.strip()[:200]}")
    if back.returncode != 0:
        return None, ("display-unreadable",
                      f"--format {spelling} printed {stdout.strip()!r}; read back: "
                      f"{back.stderr.decode('utf-8', 'replace').strip()[:400]}")
    path = os.path.join(directory, f"display_{tag}.py")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(back.stdout.decode("utf-8"))
    cases.append(path)
    return load(path), stdout.strip()


def judge(matcalc, text, wrt, index, seed, keep, spelling):
    """One expression: returns (category, detail). Categories: pass, unsupported,
    inconclusive, unreadable-and-failed, and the findings: wrong-value, broken-program, wrong-derivative,
    check-says-ok-but-wrong, check-fails-but-right, display-differs, display-unreadable,
    rejected, crash, timeout."""
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
    tag = f"{seed}_{index}_{os.getpid()}"
    path = os.path.join(directory, f"random_{tag}.py")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(stdout)
    files = [path]
    node = NODES[index]
    names = sorted(node.names)
    rng = np.random.default_rng(seed * 7919 + index)
    try:
        try:
            display, shown = judge_display(matcalc, text, wrt, spelling, directory, tag, files)
        except subprocess.TimeoutExpired:
            return "timeout", "the display's read-back ran over 60 s"
        if display is None:
            if shown[0] == "display-untyped":
                # Not a finding when the check says so: matcalc printed a text whose sizes
                # the reader cannot tell and failed it (SPEC §7), counted apart.
                if check_ok:
                    return "check-says-ok-but-display-untyped", shown[1]
                if "does not read back" in stdout:
                    return "unreadable-and-failed", shown[1]
                return "inconclusive", shown[1]
            return shown
        module = load(path)
        worst = worst_display = 0.0
        trials = 0
        # Errors where the tester's finite differences agree with themselves, and where
        # they do not (which judge nothing).
        worst_doubtful = 0.0
        doubtful_trials = 0
        for _attempt in range(30):
            if trials == 2:
                break
            sizes, values = draw(rng, names)
            try:
                with np.errstate(all="raise"):
                    expected_value = float(node.fn(values)[0, 0])
                    expected, spread = finite_difference(node, values, wrt)
            except (Domain, FloatingPointError, np.linalg.LinAlgError):
                continue
            trials += 1
            doubtful = not trusted(expected, spread)
            doubtful_trials += doubtful
            got_value = float(np.asarray(call(module.value, values, sizes)))
            scale = max(1.0, abs(expected_value))
            if not math.isclose(got_value, expected_value, rel_tol=1e-8, abs_tol=1e-8 * scale):
                return "wrong-value", f"value {got_value} vs {expected_value}"
            got = call(module.derivative, values, sizes)
            error = error_of(got, expected)
            if verdict(got, expected, spread) == "doubtful":
                worst_doubtful = max(worst_doubtful, error)
            else:
                worst = max(worst, error)
            if math.isnan(worst):
                return ("check-says-ok-but-wrong" if check_ok else "wrong-derivative",
                        "derivative shape differs")
            g = rng.standard_normal(expected.shape)
            try:
                contracted = float(np.asarray(call(display.value, {**values, "G": g}, sizes)))
            except Undetermined as size:
                if check_ok:
                    return "check-says-ok-but-display-undetermined", \
                        f"the display leaves the size {size} open: {shown}"
                if "does not read back" in stdout:
                    return "unreadable-and-failed", f"the display leaves a size open: {shown}"
                return "inconclusive", f"the display leaves a size open: {shown}"
            shown_value = abs(contracted - float(np.sum(g * expected))) / (
                max(1.0, float(np.max(np.abs(expected)))) * float(np.sum(np.abs(g))))
            if not math.isnan(shown_value) and shown_value > TOLERANCE and doubtful:
                worst_doubtful = max(worst_doubtful, shown_value)
            elif math.isnan(shown_value) or shown_value > TOLERANCE:
                return "display-differs", f"relative error {shown_value:.1e}: {shown}"
            worst_display = max(worst_display, shown_value)
        if trials == 0:
            return "inconclusive", "the tester drew no input inside the domain"
    except Exception as error:  # noqa: BLE001 - any failure of the emitted program
        return "broken-program", f"{type(error).__name__}: {error}"
    finally:
        if not keep:
            for file in files:
                os.remove(file)
    if (worst_doubtful > TOLERANCE or (doubtful_trials and not check_ok)) \
            and worst <= TOLERANCE:
        # Right where the tester can tell, and beyond where it cannot: no verdict on a
        # derivative, a display, or a check that failed.
        return "inconclusive", (f"the tester's finite differences disagree with themselves "
                                f"({worst_doubtful:.1e} off where they do)")
    if worst > TOLERANCE:
        if check_ok:
            return "check-says-ok-but-wrong", f"relative error {worst:.1e}"
        return "wrong-derivative", f"relative error {worst:.1e} (check did not pass)"
    if inconclusive:
        return "inconclusive", stdout.strip().splitlines()[-1]
    if not check_ok:
        return "check-fails-but-right", stdout.strip().splitlines()[-1]
    return "pass", f"{worst:.1e}"


def verdict(got, expected, spread):
    """"right" within the tolerance, "wrong" beyond it where the finite differences can
    tell (`trusted`), "doubtful" where they cannot."""
    error = error_of(got, expected)
    if not math.isnan(error) and error <= TOLERANCE:
        return "right"
    if not math.isnan(error) and not trusted(expected, spread):
        return "doubtful"
    return "wrong"


def self_test():
    """The judge can still fail: on a smooth function and on ill-conditioned ones
    (sin(x/1e-3), cos(e^{det}) with a large determinant), the right answer is never
    "wrong", and an answer scaled by 1 + 1e-3 or 1 + 1e-4 is never "right"."""
    det_of = lambda v: np.linalg.det(v["A"])  # noqa: E731
    cases = [
        ("sum(x³)", "x", lambda v: np.sum(v["x"] ** 3), lambda v: 3 * v["x"] ** 2),
        ("sum(sin(x/1e-3))", "x", lambda v: np.sum(np.sin(v["x"] / 1e-3)),
         lambda v: np.cos(v["x"] / 1e-3) / 1e-3),
        ("cos(e^{det(A)})", "A", lambda v: np.cos(np.exp(det_of(v))),
         lambda v: -np.sin(np.exp(det_of(v))) * np.exp(det_of(v)) * det_of(v)
         * np.linalg.inv(v["A"]).T),
    ]
    rng = np.random.default_rng(13)
    failures = []
    judged = 0
    for text, wrt, f, gradient in cases:
        node = Node(text, ("1", "1"), lambda v, f=f: np.array([[f(v)]]), names=[wrt])
        for trial in range(20):
            _, values = draw(rng, [wrt])
            if wrt == "A":
                values["A"] = values["A"] + 2.0 * np.eye(len(values["A"]))
            expected, spread = finite_difference(node, values, wrt)
            right = gradient(values)
            if verdict(right, expected, spread) == "wrong":
                failures.append(f"{text}: the right gradient judged wrong (trial {trial})")
            for factor in (1 + 1e-3, 1 + 1e-4):
                if verdict(right * factor, expected, spread) == "right":
                    failures.append(f"{text}: the gradient ×{factor} judged right")
            judged += verdict(right * (1 + 1e-3), expected, spread) == "wrong"
    # Doubt must stay rare, or the judge could not fail: most scaled answers are caught.
    if judged < 0.8 * 20 * len(cases):
        failures.append(f"only {judged} of {20 * len(cases)} scaled answers judged wrong")
    for failure in failures:
        print(f"SELF-TEST {failure}")
    print(f"self-test: {judged} of {20 * len(cases)} scaled answers judged wrong, "
          f"{len(failures)} failures")
    return 1 if failures else 0


def error_of(got, expected):
    """Largest entry error relative to the derivative's scale; NaN for a wrong shape."""
    got = np.asarray(got, dtype=float)
    if got.size == 1 and expected.size != 1:
        got = np.full(expected.shape, float(got.reshape(-1)[0]))  # a displayed 0
    if got.size != expected.size:
        return float("nan")
    got = got.reshape(expected.shape)
    return float(np.max(np.abs(got - expected))) / max(1.0, float(np.max(np.abs(expected))))


FINDINGS = {"wrong-value", "broken-program", "wrong-derivative", "check-says-ok-but-wrong",
            "check-fails-but-right", "display-differs", "display-unreadable",
            "check-says-ok-but-display-undetermined", "check-says-ok-but-display-untyped",
            "timeout",
            "crash", "rejected"}
NODES = []


def generate(count, seed, depth, families=None, spelling="any"):
    """`count` cases (text, wrt, spelling of the display read back)."""
    rng = random.Random(seed)
    generator = Generator(rng, families, spelling)
    cases = []
    while len(cases) < count:
        generator.start()
        node = generator.gen(("1", "1"), rng.randint(2, depth))
        if families is not None and not node.families & families:
            continue
        candidates = sorted(name for name in node.names if VARIABLES[name][2] != "int")
        if not candidates or len(node.text) > 400:
            continue
        wrt = rng.choice(candidates)
        NODES.append(node)
        shown = rng.choice(["unicode", "ascii", "latex"])
        cases.append((node.text, wrt, shown))
    return cases


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("matcalc", nargs="?")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--family", default=None,
                        help="comma-separated families to restrict to (see --list)")
    parser.add_argument("--spelling", default="any", choices=SPELLINGS + ["any"],
                        help="the expressions' spelling; any: each its own, mixed included")
    parser.add_argument("--list", action="store_true", help="the families and what they reach")
    parser.add_argument("--print", action="store_true", help="print the cases, judge nothing")
    parser.add_argument("--self-test", action="store_true",
                        help="check the judge on known gradients, right and scaled")
    parser.add_argument("--keep", default=None, help="keep generated modules here")
    parser.add_argument("--json", default=None, help="write every verdict here")
    options = parser.parse_args()
    if options.self_test:
        return self_test()
    if options.list:
        for family, what in FAMILIES.items():
            print(f"{family}: {what}")
        return 0
    families = None
    if options.family:
        families = set(options.family.split(","))
        unknown = families - set(FAMILIES)
        if unknown:
            parser.error(f"unknown family {sorted(unknown)}; the families are {list(FAMILIES)}")
    cases = generate(options.count, options.seed, options.depth, families, options.spelling)
    if options.print:
        for text, wrt, shown in cases:
            print(f"{wrt}\t{shown}\t{text}")
        return 0
    if not options.matcalc:
        parser.error("MATCALC is required unless --list or --print")
    counts = {}
    findings = []
    verdicts = []
    with concurrent.futures.ThreadPoolExecutor(options.jobs) as pool:
        futures = [pool.submit(judge, options.matcalc, text, wrt, index, options.seed,
                               options.keep, shown)
                   for index, (text, wrt, shown) in enumerate(cases)]
        for (text, wrt, shown), future in zip(cases, futures):
            category, detail = future.result()
            counts[category] = counts.get(category, 0) + 1
            verdicts.append({"expr": text, "wrt": wrt, "display": shown, "category": category,
                             "detail": detail})
            if category in FINDINGS:
                findings.append((category, text, wrt, detail))
                print(f"FINDING {category}: matcalc diff '{text}' --wrt {wrt} "
                      f"--decl '{DECLS}' --check --format numpy  (display: {shown})\n"
                      f"    {detail}", flush=True)
    if options.json:
        with open(options.json, "w", encoding="utf-8") as handle:
            json.dump(verdicts, handle, ensure_ascii=False, indent=1)
    summary = ", ".join(f"{key} {value}" for key, value in sorted(counts.items()))
    print(f"{len(cases)} expressions (seed {options.seed}): {summary}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
