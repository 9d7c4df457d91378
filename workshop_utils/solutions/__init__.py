"""The exercises' solutions, one module per course module (`m00` ... `m09`), and what their checkers expect.

Each `mNN` module holds, per exercise `n`:
- `solution_n(...)`: the worked solution, shown on demand by `exercises.show_solution(NN, n)` (not run there);
  its keyword arguments are objects of the notebook, passed by name from the notebook's `ctx` dict;
- `CHECKS[n]`: a `Check`: how `exercises.check_exercise` computes the expected answer (from the package,
  never a typed number), the tolerance and why, and what form the answer takes.

Only this light module is imported by `exercises`; `mNN` modules (some import torch and the SFT code) are
loaded when an exercise of theirs is checked or shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Check:
    """How one exercise is checked: the expected answer, computed from the package, and its tolerance."""

    expected: Callable[..., Any]  # keyword arguments taken from the notebook's ctx by name
    form: str  # what the answer looks like, e.g. "a dict {'lost': [14 ints], 'passed': [14 ints]}"
    tolerance: str  # the tolerance in words, with the reason for it
    rtol: float = 0.0  # relative tolerance for every number of the answer (0 and atol 0: exact)
    atol: float = 0.0  # absolute tolerance, added to rtol * |expected|
    # The part of the expected answer that needs no rerun of a training or evaluation the solution already
    # made; `verify_solutions` (CI) compares only these keys, so a notebook does not repeat a run.
    quick: Callable[..., Any] | None = None


@dataclass(frozen=True)
class AnyOf:
    """An expected value where any of several answers is right (e.g. tied families)."""

    options: tuple[Any, ...]


@dataclass(frozen=True)
class Passes:
    """An expected value that is a test: `test(answer)` returns None when right, else the reason."""

    test: Callable[[Any], str | None]
