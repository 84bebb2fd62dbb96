"""Symbolic matrix calculus: derivatives of matrix expressions, simplified and checked.

matcalc parses a scalar loss written in Unicode, ASCII or LaTeX, infers every shape,
differentiates it with matrix-calculus rules, simplifies the result with an e-graph into
the form a person writes, checks it against finite differences, and turns it into NumPy
code::

    >>> import matcalc
    >>> d = matcalc.diff("½‖WᵀWx − x‖²", wrt="W")
    >>> d
    ∂/∂W = W(zxᵀ + xzᵀ)
      where z = WᵀWx − x
    >>> d.compute
    '(Wz)xᵀ + (Wx)zᵀ'
    >>> grad = d.numpy_fn()          # grad(W=..., x=...) computes the compute form

In a notebook a :class:`Derivative` renders as LaTeX. Bad input raises a
:class:`ParseError`, :class:`ShapeError` or :class:`UnsupportedError` (all
:class:`ValueError` subclasses) whose text is the diagnostic with a caret under the
offending span. The notation and the meaning of every field are those of the `matcalc`
command line (its SPEC, sections 2 to 7).
"""

from __future__ import annotations

import itertools
import json
import linecache
import re
import types
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from . import _matcalc

__version__: str = _matcalc.__version__

__all__ = [
    "Counterexample",
    "Derivative",
    "Derivatives",
    "Explanation",
    "MatcalcError",
    "ParseError",
    "Session",
    "ShapeError",
    "Simplified",
    "UnsupportedError",
    "Verdict",
    "diff",
    "explain",
    "simplify",
    "verify",
]


class MatcalcError(ValueError):
    """Input matcalc cannot answer: an unknown variable, a bad option, or (through the
    subclasses) a parse error, a shape error or an unsupported construct.

    ``str(error)`` is the diagnostic as the command line prints it: the message, the
    source line with a caret under the offending span, and hints.

    Attributes:
        message: the one-line message, without the source line and hints.
        span: ``(start, end)`` character offsets into :attr:`source`, or ``None``.
        hints: suggestions such as ``"did you mean ⊙?"``.
        source: the text the span refers to.
    """

    def __init__(
        self,
        rendered: str,
        *,
        message: Optional[str] = None,
        span: Optional[Tuple[int, int]] = None,
        hints: Sequence[str] = (),
        source: str = "",
    ) -> None:
        super().__init__(rendered.rstrip("\n"))
        self.message: str = message if message is not None else rendered
        self.span: Optional[Tuple[int, int]] = span
        self.hints: List[str] = list(hints)
        self.source: str = source


class ParseError(MatcalcError):
    """The text is not an expression (or declaration, or definition) of the notation."""


class ShapeError(MatcalcError):
    """The expression is not well shaped: operands whose sizes clash, a non-scalar
    denominator, a second derivative of a non-scalar."""


class UnsupportedError(MatcalcError):
    """The expression needs a rule matcalc does not have; it refuses rather than guess.
    The message begins ``unsupported:``."""


_ERRORS = {
    "MatcalcError": MatcalcError,
    "ParseError": ParseError,
    "ShapeError": ShapeError,
    "UnsupportedError": UnsupportedError,
}


def _call(function: Callable[..., str], *args: Any) -> Any:
    """Calls the native module and raises its error, if any, as the matching class."""
    document = json.loads(function(*args))
    if "error" in document:
        error = document["error"]
        span = tuple(error["span"]) if error.get("span") is not None else None
        raise _ERRORS.get(error["kind"], MatcalcError)(
            error["rendered"],
            message=error["error"],
            span=span,
            hints=error.get("hints", ()),
            source=error.get("source", ""),
        ) from None
    return document["ok"]


def _strings(value: Union[None, str, Iterable[str]], what: str) -> List[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    strings = list(value)
    for item in strings:
        if not isinstance(item, str):
            raise TypeError(f"{what} must be a string or a list of strings, not {item!r}")
    return strings


def _sizes(sizes: Optional[Dict[str, int]]) -> Dict[str, int]:
    if sizes is None:
        return {}
    checked = {}
    for name, value in dict(sizes).items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise MatcalcError(f"error: sizes[{name!r}] must be a positive whole number")
        checked[str(name)] = value
    return checked


def _shape(dims: Sequence[str]) -> Tuple[Union[int, str], ...]:
    return tuple(int(dim) if dim.isdigit() else dim for dim in dims)


_counter = itertools.count()


def _load(source: str, name: str) -> types.ModuleType:
    """Executes generated source as a fresh module whose tracebacks show its lines."""
    filename = f"<matcalc {name} {next(_counter)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    module = types.ModuleType(name)
    module.__file__ = filename
    exec(compile(source, filename, "exec"), module.__dict__)
    return module


_NUMERIC = ("value", "derivative", "value_and_derivative")
_PUBLIC = _NUMERIC + ("random_inputs", "check_gradient")


def _function(module: types.ModuleType, which: str) -> Callable[..., Any]:
    function = getattr(module, which, None)
    if not callable(function) or which not in _PUBLIC:
        names = [n for n in _PUBLIC if hasattr(module, n)]
        raise ValueError(f"the generated code defines {', '.join(names)}, not {which!r}")
    return function


class Counterexample:
    """An instance on which a claimed derivative and finite differences disagree.

    Attributes:
        checked: what was checked, e.g. ``"gradient with respect to X"``.
        reference: what it was compared with (``"finite differences"``).
        sizes: the size of every size symbol, ``{"m": 4, "n": 3}``.
        values: every input as a 2-D array (a vector is a column), numpy arrays when
            numpy is installed, nested lists otherwise.
        expected: the finite-difference result.
        claimed: the claimed result.
        worst: the 0-based ``(row, column)`` of the largest difference.
        rel_error: the normalised error of the worst entry.
        text: the report as the command line prints it.
    """

    def __init__(self, data: Dict[str, Any]) -> None:
        self.checked: str = data["checked"]
        self.reference: str = data["reference"]
        self.sizes: Dict[str, int] = dict(data["sizes"])
        self.values: Dict[str, Any] = {k: _array(v) for k, v in data["values"].items()}
        self.expected: Any = _array(data["expected"])
        self.claimed: Any = _array(data["claimed"])
        self.worst: Tuple[int, int] = (data["worst"][0], data["worst"][1])
        self.rel_error: float = _float(data["rel_error"])
        self.text: str = data["text"]

    def __repr__(self) -> str:
        return self.text.rstrip("\n")


def _array(rows: Any) -> Any:
    try:
        import numpy as np
    except ImportError:
        return rows
    return np.array(rows, dtype=float)


def _float(value: Optional[float]) -> float:
    # JSON has no infinity: the native module writes a non-finite error as null.
    return float("inf") if value is None else float(value)


class Verdict:
    """The outcome of a numeric check against finite differences (SPEC §7), or of
    :func:`verify`. True exactly when it passed; a failure carries the counterexample.

    Attributes:
        passed: every trial agreed within 1e-6.
        inconclusive: no valid trial could be drawn (never a pass).
        trials, max_rel_error: for a pass.
        rel_error, counterexample: for a failure.
        reason: for an inconclusive check, or a failed one whose printed text does not
            read back (``unreadable``).
        line: the summary the command line prints (``check: ok (3 random trials, …)``).

    A verdict of :func:`verify` also has ``claim``, ``derivative`` (matcalc's own, a
    :class:`Derivative`) and ``first_wrong_step`` (with ``steps=True``).
    """

    def __init__(self, data: Dict[str, Any]) -> None:
        self.passed: bool = bool(data["passed"])
        self.inconclusive: bool = bool(data["inconclusive"])
        self.unreadable: bool = bool(data.get("unreadable", False))
        self.line: str = data["line"]
        self.trials: Optional[int] = data.get("trials")
        self.max_rel_error: Optional[float] = data.get("max_rel_error")
        self.rel_error: Optional[float] = (
            _float(data.get("rel_error")) if "rel_error" in data else None
        )
        self.reason: Optional[str] = data.get("reason")
        example = data.get("counterexample")
        self.counterexample: Optional[Counterexample] = (
            Counterexample(example) if example else None
        )
        self.claim: Optional[str] = None
        self.derivative: Optional[Derivative] = None
        self.first_wrong_step: Optional[str] = None
        self._claim_text: str = ""

    @property
    def correct(self) -> bool:
        """The same as :attr:`passed`: whether the claim is the derivative."""
        return self.passed

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        if self.claim is None:
            return self.line
        out = self._claim_text.rstrip("\n")
        if self.first_wrong_step:
            out += "\nfirst wrong step:\n" + self.first_wrong_step
        return out


class _GeneratedCode:
    """What :class:`Derivative` and :class:`Derivatives` share: the generated modules,
    loaded once per backend, and the LaTeX block notebooks show."""

    numpy_source: str
    jax_source: str
    torch_source: str
    _latex_block: str
    _module_suffix: str
    _modules: Dict[str, types.ModuleType]

    def _module(self, backend: str) -> types.ModuleType:
        if backend not in self._modules:
            source = getattr(self, f"{backend}_source")
            self._modules[backend] = _load(source, f"matcalc_{backend}{self._module_suffix}")
        return self._modules[backend]

    def numpy_fn(self, which: str = "derivative") -> Callable[..., Any]:
        """The generated NumPy function ``which``: ``"derivative"``, ``"value"``,
        ``"value_and_derivative"``, ``"random_inputs"`` or ``"check_gradient"``.

        Its parameters are the expression's variables by ASCII name (``α`` → ``alpha``,
        ``W₁`` → ``W1``), in sorted order, and may be given by keyword; vectors are 1-D
        arrays, scalars floats. ``derivative`` returns an array shaped like the variable
        (a tuple of them, one per variable, for :class:`Derivatives`). Inputs of the
        wrong shape raise ValueError.
        """
        return _function(self._module("numpy"), which)

    def jax_fn(self, which: str = "derivative", jit: bool = True) -> Callable[..., Any]:
        """The generated JAX function ``which`` (see :meth:`numpy_fn`), compiled with
        ``jax.jit`` unless ``jit=False`` (``random_inputs`` and ``check_gradient`` are
        never compiled). Needs jax."""
        function = _function(self._module("jax"), which)
        if jit and which in _NUMERIC:
            import jax

            return jax.jit(function)
        return function

    def torch_fn(self, which: str = "derivative") -> Callable[..., Any]:
        """The generated PyTorch function ``which`` (see :meth:`numpy_fn`): inputs may be
        tensors, arrays or floats, and constants take the first tensor's dtype and
        device. Needs torch."""
        return _function(self._module("torch"), which)

    def _repr_latex_(self) -> str:
        return "$$" + self._latex_block.strip() + "$$"


def _split_wrt(text: str) -> List[str]:
    """``"W,X[m,n]"`` → ``["W", "X[m,n]"]``: commas inside an entry's brackets separate
    nothing (as the library's ``split_wrt``)."""
    return re.split(r",(?![^\[]*\])", text)


class Derivative(_GeneratedCode):
    """The derivative of an expression with respect to one variable, simplified.

    Attributes:
        wrt: the variable, ``"W₁"``.
        param: its parameter name in the generated code, ``"W1"``.
        lhs: the left-hand side a person reads: ``∂/∂W``, ``dF``, ``∂²/∂x²``.
        text: the display form in Unicode, ``"W(zxᵀ + xzᵀ)"``.
        ascii: the same in ASCII, ``"W*(z*x' + x*z')"``.
        latex: the same in LaTeX.
        where: the shared subexpressions it names, ``[("z", "WᵀWx − x")]``.
        shape: the derivative's shape, ``("m", "n")`` (numbers for known sizes).
        compute: the compute form, fewest flops, ``"(Wz)xᵀ + (Wx)zᵀ"``: the form the
            generated code computes.
        check: the :class:`Verdict` of the numeric check when ``check=True``, else None.
        json: the object ``matcalc diff --format json`` prints.
        numpy_source: self-contained Python (numpy only) defining ``value(...)``,
            ``derivative(...)``, ``value_and_derivative(...)``, ``random_inputs(seed)``
            and the self-test ``check_gradient()``, as ``--format numpy`` prints it.
        jax_source: the same over ``jax.numpy``, traceable by ``jax.jit``
            (``--format jax``); its ``check_gradient()`` compares with ``jax.grad``.
        torch_source: the same over ``torch`` tensors (``--format torch``); its
            ``check_gradient()`` compares with ``torch.func``.
        symmetric: True for the symmetric gradient of a ``sym``/``spd`` variable.
        entry: for ``wrt="X[m,n]"`` (an entry as the variable), ``"X[m,n]"``; else None.
        index: the index form, ``"∂tr(AX)/∂Xₘₙ = Aₙₘ"``, for an entry or
            ``form="index"``; else None.
    """

    def __init__(self, data: Dict[str, Any]) -> None:
        self.wrt: str = data["wrt"]
        self.entry: Optional[str] = data["json"].get("entry")
        index = data["json"].get("index")
        self.index: Optional[str] = index if isinstance(index, str) else None
        self.param: str = data["param"]
        self.lhs: str = data["lhs"]
        self.text: str = data["text"]
        self.ascii: str = data["ascii"]
        self.latex: str = data["latex"]
        self.where: List[Tuple[str, str]] = [(name, body) for name, body in data["where"]]
        self.shape: Tuple[Union[int, str], ...] = _shape(data["shape"])
        self.compute: str = data["compute"]
        self.check: Optional[Verdict] = Verdict(data["check"]) if data["check"] else None
        self.json: Dict[str, Any] = data["json"]
        self.numpy_source: str = data["numpy_source"]
        self.jax_source: str = data["jax_source"]
        self.torch_source: str = data["torch_source"]
        self.symmetric: bool = bool(data["symmetric"])
        self._display: str = data["display"]
        self._latex_block: str = data["latex_block"]
        self._module_suffix = f"_{self.wrt}"
        self._modules = {}

    def __repr__(self) -> str:
        out = self._display.rstrip("\n")
        if self.check is not None:
            out += "\n" + self.check.line
        return out

    __str__ = __repr__


class Derivatives(List[Derivative], _GeneratedCode):
    """The derivatives with respect to several variables, in the order asked. A list of
    :class:`Derivative`, which share one set of ``where`` definitions.

    Attributes:
        text: every equation, then the shared ``where`` lines once.
        numpy_source: one module whose ``derivative(...)`` returns a tuple, one array per
            variable, computing the shared subexpressions once; ``jax_source`` and
            ``torch_source`` the same for JAX and PyTorch.
    """

    def __init__(self, data: Dict[str, Any]) -> None:
        super().__init__(Derivative(result) for result in data["results"])
        self.text: str = data["display"]
        self.numpy_source: str = data["numpy_source"]
        self.jax_source: str = data["jax_source"]
        self.torch_source: str = data["torch_source"]
        self._latex_block: str = data["latex_block"]
        self._module_suffix = ""
        self._modules = {}

    def __repr__(self) -> str:
        out = self.text.rstrip("\n")
        for derivative in self:
            if derivative.check is not None:
                out += f"\n{derivative.wrt}: {derivative.check.line}"
        return out

    __str__ = __repr__


class Simplified:
    """A simplified expression.

    Attributes:
        text, ascii, latex: the display form in each spelling.
        where: the shared subexpressions it names.
        shape: its shape.
        compute: the compute form.
        json: the object ``matcalc simplify --format json`` prints.
        numpy_source: Python defining ``value(...)`` from the compute form.
    """

    def __init__(self, data: Dict[str, Any]) -> None:
        self.text: str = data["text"]
        self.ascii: str = data["ascii"]
        self.latex: str = data["latex"]
        self.where: List[Tuple[str, str]] = [(name, body) for name, body in data["where"]]
        self.shape: Tuple[Union[int, str], ...] = _shape(data["shape"])
        self.compute: str = data["compute"]
        self.json: Dict[str, Any] = data["json"]
        self.numpy_source: str = data["numpy_source"]
        self._where_latex: List[Tuple[str, str]] = [tuple(p) for p in data["where_latex"]]
        self._module: Optional[types.ModuleType] = None

    def numpy_fn(self, which: str = "value") -> Callable[..., Any]:
        """The generated NumPy function ``value``."""
        if self._module is None:
            self._module = _load(self.numpy_source, "matcalc_numpy_value")
        return _function(self._module, which)

    def _repr_latex_(self) -> str:
        lines = [f"& {self.latex}"]
        for index, (name, body) in enumerate(self._where_latex):
            lead = "\\text{where } " if index == 0 else ""
            lines.append(f"{lead}{name} &= {body}")
        return "$$\\begin{aligned}" + " \\\\ ".join(lines) + "\\end{aligned}$$"

    def __repr__(self) -> str:
        out = self.text
        for index, (name, body) in enumerate(self.where):
            lead = "  where" if index == 0 else "       "
            out += f"\n{lead} {name} = {body}"
        return out

    __str__ = __repr__


class Explanation:
    """The computation graph of a loss and its backward pass, node by node.

    Attributes:
        text: the forward and backward pass as the command line prints them.
        latex: the same as an ``align*`` block.
        json: the object ``matcalc explain --format json`` prints.
        dot: the graph in Graphviz DOT.
        svg: the graph drawn as SVG; ``svg_adjoints`` labels each node with its adjoint.
        checks: with ``check=True``, ``[(node name, Verdict)]``, every adjoint checked
            against finite differences.
    """

    def __init__(self, data: Dict[str, Any]) -> None:
        self.text: str = data["text"]
        self.latex: str = data["latex"]
        self.json: Dict[str, Any] = data["json"]
        self.dot: str = data["dot"]
        self.svg: str = data["svg"]
        self.svg_adjoints: str = data["svg_adjoints"]
        self.checks: Optional[List[Tuple[str, Verdict]]] = (
            [(step["name"], Verdict(step["check"])) for step in data["checks"]]
            if data["checks"] is not None
            else None
        )

    def __repr__(self) -> str:
        out = self.text.rstrip("\n")
        for name, verdict in self.checks or []:
            out += f"\n∂L/∂{name}: {verdict.line}"
        return out

    __str__ = __repr__


class Session:
    """Declarations and ``let`` definitions that stay in force between requests, as in
    the REPL::

        >>> s = matcalc.Session()
        >>> s.let("K = αXXᵀ + β⁻¹I")
        >>> s.diff("−c − D/2 log|K| − ½ tr(K⁻¹YYᵀ)", wrt="X")
        ∂/∂X = αK⁻¹(YYᵀK⁻¹X − DX)
          where K = αXXᵀ + I/β

    Each declaration and definition is checked when it is added, so a mistake raises
    there, with its caret.
    """

    def __init__(
        self,
        decl: Union[None, str, Iterable[str]] = None,
        let: Union[None, str, Iterable[str]] = None,
    ) -> None:
        self._decls: List[str] = []
        self._lets: List[str] = []
        for text in _strings(decl, "decl"):
            self.declare(text)
        for text in _strings(let, "let"):
            self.let(text)

    @property
    def decls(self) -> List[str]:
        """The declarations in force, as given."""
        return list(self._decls)

    @property
    def lets(self) -> List[str]:
        """The definitions in force, as given."""
        return list(self._lets)

    def declare(self, text: str) -> "Session":
        """Adds declarations such as ``"W: m×n, x: n; K: n×n sym; ℓ: fn"``."""
        _call(_matcalc.validate, self._decls + [text], self._lets)
        self._decls.append(text)
        return self

    def let(self, definition: str) -> "Session":
        """Adds a definition such as ``"K = αXXᵀ + β⁻¹I"``; it is expanded for
        differentiation and folded back into results wherever it occurs. A later
        definition of the same name replaces the earlier one."""
        _call(_matcalc.validate, self._decls, self._lets + [definition])
        self._lets.append(definition)
        return self

    def reset(self) -> None:
        """Forgets every declaration and definition."""
        self._decls.clear()
        self._lets.clear()

    def diff(
        self,
        expr: str,
        wrt: Union[str, Sequence[str]],
        *,
        order: int = 1,
        check: bool = False,
        form: Optional[str] = None,
        seed: int = 0,
        sizes: Optional[Dict[str, int]] = None,
    ) -> Union[Derivative, Derivatives]:
        """The derivative of ``expr`` with respect to ``wrt``, simplified; see
        :func:`matcalc.diff`."""
        if form is not None and not isinstance(form, str):
            raise TypeError(f"form must be a string, not {form!r}")
        names = [n.strip() for n in (_split_wrt(wrt) if isinstance(wrt, str) else wrt)]
        names = [n for n in names if n]
        several = not isinstance(wrt, str) or len(names) > 1
        data = _call(
            _matcalc.diff,
            expr,
            names,
            self._decls,
            self._lets,
            _order(order),
            bool(check),
            _seed(seed),
            _sizes(sizes),
            form,
        )
        return Derivatives(data) if several else Derivative(data["results"][0])

    def simplify(self, expr: str, *, sizes: Optional[Dict[str, int]] = None) -> Simplified:
        """``expr`` simplified; see :func:`matcalc.simplify`."""
        return Simplified(_call(_matcalc.simplify, expr, self._decls, self._lets, _sizes(sizes)))

    def verify(
        self,
        expr: str,
        wrt: str,
        claim: str,
        *,
        order: int = 1,
        seed: int = 0,
        steps: bool = False,
    ) -> Verdict:
        """Whether ``claim`` is the derivative; see :func:`matcalc.verify`."""
        data = _call(
            _matcalc.verify,
            expr,
            wrt,
            claim,
            self._decls,
            self._lets,
            _order(order),
            _seed(seed),
            bool(steps),
        )
        verdict = Verdict(data["check"])
        verdict.claim = data["claim"]
        verdict.derivative = Derivative(data["derivative"])
        verdict.first_wrong_step = data["first_wrong_step"]
        verdict._claim_text = data["text"]
        return verdict

    def explain(
        self, expr: str, wrt: Union[str, Sequence[str]], *, check: bool = False, seed: int = 0
    ) -> Explanation:
        """The computation graph and backward pass; see :func:`matcalc.explain`."""
        names = wrt if isinstance(wrt, str) else ",".join(wrt)
        return Explanation(
            _call(_matcalc.explain, expr, names, self._decls, self._lets, bool(check), _seed(seed))
        )

    def __repr__(self) -> str:
        return f"Session(decl={self._decls!r}, let={self._lets!r})"


def _order(order: int) -> int:
    if isinstance(order, bool) or not isinstance(order, int) or not 1 <= order <= 2:
        raise MatcalcError(
            f"error: order={order!r}: only first and second derivatives are supported"
        )
    return order


def _seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
        raise MatcalcError(f"error: seed={seed!r} must be a whole number from 0 to 2⁶⁴ − 1")
    return seed


def diff(
    expr: str,
    wrt: Union[str, Sequence[str]],
    *,
    decl: Union[None, str, Iterable[str]] = None,
    let: Union[None, str, Iterable[str]] = None,
    order: int = 1,
    check: bool = False,
    form: Optional[str] = None,
    seed: int = 0,
    sizes: Optional[Dict[str, int]] = None,
) -> Union[Derivative, Derivatives]:
    """The derivative of ``expr`` with respect to ``wrt``, simplified.

    Args:
        expr: a scalar (or vector, or matrix) expression in Unicode, ASCII or LaTeX:
            ``"½‖WᵀWx − x‖²"``, ``"1/2 norm(W' W x - x)^2"``.
        wrt: the variable, ``"W"``; several as ``"W₁,b₁"`` or ``["W₁", "b₁"]``; an
            entry, ``"X[m,n]"``, for the derivative by that one entry in index notation.
        decl: declarations, one string or a list: ``"W: m×n, x: n"``, ``"K: n×n spd"``.
        let: definitions, one string or a list: ``"K = αXXᵀ + β⁻¹I"``.
        order: 1, or 2 for the Hessian (second differential of a matrix variable).
        check: check the printed result against finite differences; the verdict is
            the result's ``check``.
        form: how a derivative by a matrix is written: ``"differential"`` (the
            default, ``dF = …``), ``"vec"`` (the Jacobian ∂vec(F)/∂vec(X) as a Kronecker
            expression; with ``order=2`` the Hessian matrix in vec(X)) or ``"index"``,
            as ``--form`` of the command line.
        seed: the seed of the check's random instances.
        sizes: sizes for costing the compute form, ``{"m": 300, "n": 500}``.

    Returns:
        A :class:`Derivative`, or for several variables a :class:`Derivatives` list.

    Raises:
        ParseError, ShapeError, UnsupportedError, MatcalcError: bad input.
    """
    return Session(decl, let).diff(
        expr, wrt, order=order, check=check, form=form, seed=seed, sizes=sizes
    )


def simplify(
    expr: str,
    *,
    decl: Union[None, str, Iterable[str]] = None,
    let: Union[None, str, Iterable[str]] = None,
    sizes: Optional[Dict[str, int]] = None,
) -> Simplified:
    """``expr`` simplified: the display form (factored, as a person writes it), the
    compute form (fewest flops) and the shared subexpressions they name::

        >>> matcalc.simplify("(Xᵀ)ᵀ + X")
        2X
    """
    return Session(decl, let).simplify(expr, sizes=sizes)


def verify(
    expr: str,
    wrt: str,
    claim: str,
    *,
    decl: Union[None, str, Iterable[str]] = None,
    let: Union[None, str, Iterable[str]] = None,
    order: int = 1,
    seed: int = 0,
    steps: bool = False,
) -> Verdict:
    """Whether ``claim`` is the derivative of ``expr`` with respect to ``wrt``, judged
    against finite differences of ``expr`` on random instances.

    The :class:`Verdict` is true when the claim is right; when it is wrong it carries the
    ``counterexample`` and matcalc's own ``derivative``. With ``steps=True`` a wrong
    claim also gets ``first_wrong_step``: which rule of the backward pass was misapplied.
    The claim may use the ``let`` names and the ``where`` names of matcalc's answer.
    """
    return Session(decl, let).verify(expr, wrt, claim, order=order, seed=seed, steps=steps)


def explain(
    expr: str,
    wrt: Union[str, Sequence[str]],
    *,
    decl: Union[None, str, Iterable[str]] = None,
    let: Union[None, str, Iterable[str]] = None,
    check: bool = False,
    seed: int = 0,
) -> Explanation:
    """The computation graph of the scalar loss ``expr`` and its backward pass with
    respect to ``wrt``, node by node, as a problem sheet draws them. With ``check=True``
    every adjoint is checked against finite differences."""
    return Session(decl, let).explain(expr, wrt, check=check, seed=seed)
