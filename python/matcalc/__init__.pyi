"""Symbolic matrix calculus: derivatives of matrix expressions, simplified and checked."""

from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

__version__: str

_Strings = Union[None, str, Iterable[str]]
_Shape = Tuple[Union[int, str], ...]

class MatcalcError(ValueError):
    message: str
    span: Optional[Tuple[int, int]]
    hints: List[str]
    source: str
    def __init__(
        self,
        rendered: str,
        *,
        message: Optional[str] = ...,
        span: Optional[Tuple[int, int]] = ...,
        hints: Sequence[str] = ...,
        source: str = ...,
    ) -> None: ...

class ParseError(MatcalcError): ...
class ShapeError(MatcalcError): ...
class UnsupportedError(MatcalcError): ...

class Counterexample:
    checked: str
    reference: str
    sizes: Dict[str, int]
    values: Dict[str, Any]
    expected: Any
    claimed: Any
    worst: Tuple[int, int]
    rel_error: float
    text: str

class Verdict:
    passed: bool
    inconclusive: bool
    line: str
    trials: Optional[int]
    max_rel_error: Optional[float]
    rel_error: Optional[float]
    reason: Optional[str]
    counterexample: Optional[Counterexample]
    claim: Optional[str]
    derivative: Optional[Derivative]
    first_wrong_step: Optional[str]
    @property
    def correct(self) -> bool: ...
    def __bool__(self) -> bool: ...

class _GeneratedCode:
    numpy_source: str
    jax_source: str
    torch_source: str
    def numpy_fn(self, which: str = ...) -> Callable[..., Any]: ...
    def jax_fn(self, which: str = ..., jit: bool = ...) -> Callable[..., Any]: ...
    def torch_fn(self, which: str = ...) -> Callable[..., Any]: ...
    def _repr_latex_(self) -> str: ...

class Derivative(_GeneratedCode):
    wrt: str
    param: str
    lhs: str
    text: str
    ascii: str
    latex: str
    where: List[Tuple[str, str]]
    shape: _Shape
    compute: str
    check: Optional[Verdict]
    json: Dict[str, Any]
    symmetric: bool
    entry: Optional[str]
    index: Optional[str]

class Derivatives(List[Derivative], _GeneratedCode):
    text: str

class Simplified:
    text: str
    ascii: str
    latex: str
    where: List[Tuple[str, str]]
    shape: _Shape
    compute: str
    json: Dict[str, Any]
    numpy_source: str
    def numpy_fn(self, which: str = ...) -> Callable[..., Any]: ...
    def _repr_latex_(self) -> str: ...

class Explanation:
    text: str
    latex: str
    json: Dict[str, Any]
    dot: str
    svg: str
    svg_adjoints: str
    checks: Optional[List[Tuple[str, Verdict]]]

class Session:
    def __init__(self, decl: _Strings = ..., let: _Strings = ...) -> None: ...
    @property
    def decls(self) -> List[str]: ...
    @property
    def lets(self) -> List[str]: ...
    def declare(self, text: str) -> Session: ...
    def let(self, definition: str) -> Session: ...
    def reset(self) -> None: ...
    def diff(
        self,
        expr: str,
        wrt: Union[str, Sequence[str]],
        *,
        order: int = ...,
        check: bool = ...,
        form: Optional[str] = ...,
        seed: int = ...,
        sizes: Optional[Dict[str, int]] = ...,
    ) -> Union[Derivative, Derivatives]: ...
    def simplify(self, expr: str, *, sizes: Optional[Dict[str, int]] = ...) -> Simplified: ...
    def verify(
        self,
        expr: str,
        wrt: str,
        claim: str,
        *,
        order: int = ...,
        seed: int = ...,
        steps: bool = ...,
    ) -> Verdict: ...
    def explain(
        self, expr: str, wrt: Union[str, Sequence[str]], *, check: bool = ..., seed: int = ...
    ) -> Explanation: ...

def diff(
    expr: str,
    wrt: Union[str, Sequence[str]],
    *,
    decl: _Strings = ...,
    let: _Strings = ...,
    order: int = ...,
    check: bool = ...,
    form: Optional[str] = ...,
    seed: int = ...,
    sizes: Optional[Dict[str, int]] = ...,
) -> Union[Derivative, Derivatives]: ...
def simplify(
    expr: str, *, decl: _Strings = ..., let: _Strings = ..., sizes: Optional[Dict[str, int]] = ...
) -> Simplified: ...
def verify(
    expr: str,
    wrt: str,
    claim: str,
    *,
    decl: _Strings = ...,
    let: _Strings = ...,
    order: int = ...,
    seed: int = ...,
    steps: bool = ...,
) -> Verdict: ...
def explain(
    expr: str,
    wrt: Union[str, Sequence[str]],
    *,
    decl: _Strings = ...,
    let: _Strings = ...,
    check: bool = ...,
    seed: int = ...,
) -> Explanation: ...
