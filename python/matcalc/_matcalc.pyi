"""The native module of matcalc. Every function returns one JSON document,
``{"ok": ...}`` or ``{"error": {"kind", "message", "rendered", "span", "hints",
"source"}}``; use the functions of :mod:`matcalc` instead."""

from typing import Dict, List, Optional

__version__: str

def diff(
    expr: str,
    wrt: List[str],
    decls: List[str],
    lets: List[str],
    order: int,
    check: bool,
    seed: int,
    sizes: Dict[str, int],
    form: Optional[str],
) -> str: ...
def simplify(expr: str, decls: List[str], lets: List[str], sizes: Dict[str, int]) -> str: ...
def verify(
    expr: str,
    wrt: str,
    claim: str,
    decls: List[str],
    lets: List[str],
    order: int,
    seed: int,
    steps: bool,
) -> str: ...
def explain(
    expr: str, wrt: str, decls: List[str], lets: List[str], check: bool, seed: int
) -> str: ...
def validate(decls: List[str], lets: List[str]) -> str: ...
