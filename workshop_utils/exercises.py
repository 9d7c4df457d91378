"""Exercises with feedback: `check_exercise` says right or "not yet" and why; solutions on demand.

In a notebook (JupyterLab, Colab or plain Jupyter alike, since nothing relies on hidden cells):

    answer_1 = None  # your answer
    check_exercise(2, 1, answer_1, ctx)   # prints "right" or "not yet: <what differs>", returns the verdict
    show_solution(2, 1)                   # renders the solution's source, folded; it does not run it
    verify_solutions(2, ctx)              # runs every solution through its checker (what CI does)

`ctx` is a dict of the notebook's objects the solutions and checkers use (a trained model, the crawl...),
passed to them by argument name. The expected answers are computed by the package (`solutions.mNN`), with
a stated tolerance per exercise; an answer in words is asked for in a structured form (the numbers it rests
on, or a chosen option), never graded as prose.
"""

from __future__ import annotations

import dataclasses
import html
import importlib
import inspect
import math
import numbers
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from .course import MODULES
from .solutions import AnyOf, Check, Passes

MODULE_NUMBERS = tuple(m.number for m in MODULES)


def solutions_module(module: int) -> ModuleType:
    """The `solutions.mNN` module of a course module number (ValueError naming the valid ones)."""
    if isinstance(module, bool) or not isinstance(module, int) or module not in MODULE_NUMBERS:
        raise ValueError(f"module must be one of {list(MODULE_NUMBERS)}, got {module!r}")
    return importlib.import_module(f"{__package__}.solutions.m{module:02d}")


def exercise_numbers(module: int) -> list[int]:
    """The exercise numbers of a module, in order."""
    return sorted(solutions_module(module).CHECKS)


def _check_of(module: int, n: int) -> tuple[Check, Callable[..., Any]]:
    """(Check, solution function) of exercise `n` of `module` (ValueError naming the valid numbers)."""
    mod = solutions_module(module)
    if isinstance(n, bool) or n not in mod.CHECKS:
        raise ValueError(f"module {module:02d} has exercises {exercise_numbers(module)}, got n={n!r}")
    return mod.CHECKS[n], getattr(mod, f"solution_{n}")


def _call(fn: Callable[..., Any], ctx: Mapping[str, Any] | None, what: str) -> Any:
    """Call `fn` with the ctx entries named by its parameters (ValueError naming the missing ones)."""
    names = list(inspect.signature(fn).parameters)
    ctx = {} if ctx is None else ctx
    if not isinstance(ctx, Mapping):
        raise ValueError(f"ctx must be a dict of the notebook's objects, got {type(ctx).__name__}")
    missing = [k for k in names if k not in ctx]
    if missing:
        raise ValueError(f"{what} needs ctx entries {missing} (the notebook's ctx cell builds them)")
    return fn(**{k: ctx[k] for k in names})


# ------------------------------------------------------------------------------------------- comparison
def _magnitude(x: float) -> str:
    """Order of magnitude as '1e9' (or '0')."""
    return "0" if x == 0 else f"1e{math.floor(math.log10(abs(x)))}"


def _plain(answer: Any) -> Any:
    """Answers as plain Python: dataclasses as dicts, numpy / torch scalars and arrays as numbers and lists."""
    if dataclasses.is_dataclass(answer) and not isinstance(answer, type):
        return {f.name: getattr(answer, f.name) for f in dataclasses.fields(answer)}
    if hasattr(answer, "tolist") and not isinstance(answer, (str, bytes)):  # numpy / torch
        return answer.tolist()
    return answer


def _tolerance(rtol: float, atol: float) -> str:
    """The tolerance in words."""
    if rtol:
        return f"tolerance ±{rtol:.2g} relative" + (f" + {atol:.2g}" if atol else "")
    return f"tolerance ±{atol:.2g}" if atol else "an exact value"


def _number(where: str, answer: Any, expected: float, rtol: float, atol: float) -> str | None:
    """Compare one number within rtol * |expected| + atol; the reason names direction and magnitude only."""
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real) or not math.isfinite(answer):
        return f"{where}expected a finite number, got {answer!r}"
    if abs(answer - expected) <= rtol * abs(expected) + atol + 1e-12 * abs(expected):
        return None
    tol, direction = _tolerance(rtol, atol), "too high" if answer > expected else "too low"
    if not expected:
        return f"{where}{direction} ({tol})"
    if answer == 0 or answer / expected < 0 or not 1 / 3 < answer / expected < 3:
        return f"{where}expected order of magnitude {_magnitude(expected)}, got {answer:.3g} ({tol})"
    return f"{where}{direction} ({tol}; same order of magnitude)"


def _mapping(
    where: str, answer: Any, expected: Mapping, tol: tuple[float, float], partial: bool
) -> str | None:
    """Compare dicts key by key: missing or unexpected keys first."""
    keys = ", ".join(repr(k) for k in expected)
    if not isinstance(answer, Mapping):
        return f"{where}expected a dict with keys {keys}, got {type(answer).__name__}"
    for k in expected:
        if k not in answer:
            return f"{where}missing key {k!r} (expected keys: {keys})"
    extra = [k for k in answer if k not in expected]
    if extra and not partial:
        return f"{where}unexpected key {extra[0]!r} (expected keys: {keys})"
    for k, v in expected.items():
        reason = compare(answer[k], v, tol, f"{where}[{k!r}]", partial)
        if reason:
            return reason
    return None


def compare(
    answer: Any, expected: Any, tol: tuple[float, float] = (0.0, 0.0), where: str = "", partial: bool = False
) -> str | None:
    """None if `answer` matches `expected` (numbers within tol = (rtol, atol)), else what differs, in words."""
    partial = partial or (dataclasses.is_dataclass(answer) and not isinstance(answer, type))
    answer = _plain(answer)  # a dataclass answer (e.g. a GradCheck) may carry more fields than asked for
    at = f"{where}: " if where else ""
    if isinstance(expected, Passes):
        try:
            reason = expected.test(answer)
        except Exception as err:  # the learner's own function (exercise 02.3) may raise
            reason = f"your answer raised {type(err).__name__}: {err}"
        return f"{at}{reason}" if reason else None
    if isinstance(expected, AnyOf):
        if any(compare(answer, o, tol) is None for o in expected.options):
            return None
        return f"{at}{answer!r} is not one of the answers the numbers support"
    if isinstance(expected, (set, frozenset)):  # a list whose order does not matter
        if not isinstance(answer, (list, tuple, set, frozenset)):
            return f"{at}expected a list, got {type(answer).__name__}"
        extra, missing = set(answer) - expected, expected - set(answer)
        if extra:
            return f"{at}{next(iter(extra))!r} should not be in the list"
        return f"{at}{len(missing)} item(s) missing from the list" if missing else None
    if isinstance(expected, Mapping):
        return _mapping(where, answer, expected, tol, partial)
    if isinstance(expected, (list, tuple)):
        if not isinstance(answer, (list, tuple)) or len(answer) != len(expected):
            size = len(answer) if isinstance(answer, (list, tuple)) else type(answer).__name__
            return f"{at}expected a list of {len(expected)} values, got {size}"
        return next((r for a, e in zip(answer, expected) if (r := compare(a, e, tol, where))), None)
    if expected is None or isinstance(expected, (bool, str)):
        if isinstance(answer, str) and isinstance(expected, str) and answer.strip() == expected:
            return None
        if answer is expected or (isinstance(expected, bool) and answer is not None and answer == expected):
            return None
        return f"{at}{answer!r} is not what the numbers say"
    if isinstance(expected, numbers.Real):
        return _number(at, answer, float(expected), *tol)
    raise TypeError(f"cannot compare with an expected {type(expected).__name__}")


# ------------------------------------------------------------------------------------------- the API
def _verdict(module: int, n: int, answer: Any, ctx: Mapping[str, Any] | None, quick: bool) -> str | None:
    """None if right, else the reason."""
    check, _ = _check_of(module, n)
    fn = check.quick if quick and check.quick is not None else check.expected
    expected = _call(fn, ctx, f"exercise {module:02d}.{n}'s checker")
    return compare(answer, expected, (check.rtol, check.atol), partial=fn is check.quick)


def check_exercise(module: int, n: int, answer: Any, ctx: Mapping[str, Any] | None = None) -> bool:
    """Print "right" or "not yet: <why>" for exercise `n` of `module` and return the verdict."""
    check, _ = _check_of(module, n)
    if answer is None:
        print(f"write your answer in the cell above first: answer_{n} = {check.form}")
        return False
    reason = _verdict(module, n, answer, ctx, quick=False)
    print("right" if reason is None else f"not yet: {reason}")
    if reason is not None:
        print(f"  (the answer: {check.form}; tolerance: {check.tolerance})")
    return reason is None


def solution_source(module: int, n: int) -> str:
    """The source of exercise `n`'s solution function."""
    return inspect.getsource(_check_of(module, n)[1])


def show_solution(module: int, n: int) -> None:
    """Render the solution's source folded (click to open), without running it; plain text outside Jupyter."""
    source = solution_source(module, n)
    where = f"workshop_utils/solutions/m{module:02d}.py"
    try:
        from IPython.display import HTML, display
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
    except ImportError:  # plain Python
        print(f"# Solution {n} ({where})\n{source}")
        return
    code = highlight(source, PythonLexer(), HtmlFormatter(noclasses=True, nobackground=True))
    title = html.escape(f"Solution {n} (click to open): {where}")
    display(HTML(f"<details><summary><b>{title}</b></summary>{code}</details>"))


def verify_solutions(module: int, ctx: Mapping[str, Any] | None = None) -> dict[int, bool]:
    """Run every solution of `module` on `ctx` through its checker; AssertionError if one is not right."""
    verdicts, reasons = {}, {}
    for n in exercise_numbers(module):
        check, solution = _check_of(module, n)
        answer = _call(solution, ctx, f"solution {n}")
        reason = _verdict(module, n, answer, ctx, quick=True)
        verdicts[n] = reason is None
        note = " (CI compares the parts that need no rerun)" if check.quick is not None else ""
        print(f"solution {n}: right{note}" if reason is None else f"solution {n}: not yet: {reason}")
        if reason:
            reasons[n] = reason
    if reasons:
        raise AssertionError(f"module {module:02d}: solutions the checker refuses: {reasons}")
    return verdicts
