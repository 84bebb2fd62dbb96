"""Shared helpers: random inputs for generated code, and central finite differences."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# The Rust tests' harness is the one home of the input drawing and finite differences.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from numpy_check import draw as draw_inputs, finite_difference  # noqa: E402,F401


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
