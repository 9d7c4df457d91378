"""Published figures: the one reader of `data/published/*.json`, one schema, clear errors.

Every file is `{"about": str, "figures": {key: row}}`, one file per topic. A row holds one figure:

- `value`: the figure (a number, string, bool or list), in `unit`
- `unit`: what it counts, e.g. "parameters", "GB (1e9 bytes)"; "" for a setting or a name
- `source`: title and arXiv id, URL or repository file
- `location`: where in the source (page, table, section, script line)
- `status`: the course's labels, verified-primary | verified-secondary | derived | unverified
- `printed` (optional): the number as the source prints it, where its digits set the tolerance
- `tolerance` (where a test compares with the figure): `{"rel": r, "why": "..."}`, a relative tolerance
  that follows the source (its printed digits, its "roughly"), never one loosened until a test passes

A key `group/item` puts the row in a group: code that reads a whole table asks for `group(file, "group")`.
Code reads figures through here; `finetune_grid_report` reads `fine_tuning.json` directly with
`json.loads(...)["figures"][key]["value"]`, which this schema keeps valid.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from .paths import repo_root

STATUSES = ("verified-primary", "verified-secondary", "derived", "unverified")
REQUIRED = ("value", "unit", "source", "location", "status")
OPTIONAL = ("printed", "tolerance")


@dataclass(frozen=True)
class Tolerance:
    """How far a computed value may sit from the figure, relative to it, and why that far."""

    rel: float
    why: str


@dataclass(frozen=True)
class Figure:
    """One published figure with its unit, source, location, status and (optional) tolerance."""

    file: str
    key: str
    value: Any
    unit: str
    source: str
    location: str
    status: str
    printed: str | None = None
    tolerance: Tolerance | None = None

    def cite(self) -> str:
        """'source, location': where the figure comes from."""
        return f"{self.source}, {self.location}"

    def agrees(self, computed: Any) -> bool:
        """`computed` lies within the tolerance of the figure (equal, for a tolerance of 0 or a non-number)."""
        if self.tolerance is None:
            raise ValueError(
                f"{self.file}/{self.key} has no tolerance: add one (rel, why) to compare with it"
            )
        if not _is_number(self.value):
            return computed == self.value
        slack = 1e-12 * abs(self.value)  # float representation only
        return abs(float(computed) - self.value) <= self.tolerance.rel * abs(self.value) + slack

    def describe(self, computed: Any) -> str:
        """A one-line comparison of `computed` with the figure, for an assertion message."""
        tol = f"rel {self.tolerance.rel:.3g}: {self.tolerance.why}" if self.tolerance else "no tolerance"
        return f"{self.file}/{self.key}: computed {computed!r}, published {self.value!r} {self.unit} ({tol})"


def _is_number(x: Any) -> bool:
    """An int or float, not a bool."""
    return isinstance(x, int | float) and not isinstance(x, bool)


def directory() -> Path:
    """The folder of published figures: data/published."""
    return repo_root() / "data" / "published"


def files() -> tuple[str, ...]:
    """Names of the published-figure files (without `.json`), sorted."""
    return tuple(sorted(p.stem for p in directory().glob("*.json")))


def _check_row(file: str, key: str, row: Any) -> None:
    """Raise naming the file and key unless `row` follows the schema."""
    where = f"data/published/{file}.json, figure {key!r}"
    if not isinstance(row, dict):
        raise ValueError(f"{where}: a row must be an object with {REQUIRED}, got {type(row).__name__}")
    missing = [f for f in REQUIRED if f not in row]
    extra = sorted(set(row) - set(REQUIRED) - set(OPTIONAL))
    if missing or extra:
        problems = ", ".join(
            f"{what} fields {names}" for what, names in (("missing", missing), ("unknown", extra)) if names
        )
        raise ValueError(f"{where}: {problems}; valid: {REQUIRED + OPTIONAL}")
    for f in ("unit", "source", "location"):
        if not isinstance(row[f], str) or (f != "unit" and not row[f].strip()):
            raise ValueError(f"{where}: {f} must be a {'string' if f == 'unit' else 'non-empty string'}")
    if row["status"] not in STATUSES:
        raise ValueError(f"{where}: status {row['status']!r}; valid: {STATUSES}")
    if "printed" in row and not isinstance(row["printed"], str):
        raise ValueError(f"{where}: printed must be a string (the number as the source prints it)")
    tol = row.get("tolerance")
    if tol is not None:
        ok = (
            isinstance(tol, dict)
            and set(tol) == {"rel", "why"}
            and _is_number(tol["rel"])
            and tol["rel"] >= 0
        )
        if not ok or not isinstance(tol["why"], str) or not tol["why"].strip():
            raise ValueError(f'{where}: tolerance must be {{"rel": number >= 0, "why": non-empty string}}')


@cache
def _load(file: str) -> dict[str, dict]:
    """The validated rows of one file, by key (read once)."""
    if file not in files():
        raise ValueError(f"file: no data/published/{file}.json; valid: {', '.join(files())}")
    raw = json.loads((directory() / f"{file}.json").read_text())
    if not isinstance(raw, dict) or set(raw) != {"about", "figures"} or not isinstance(raw["figures"], dict):
        raise ValueError(f'data/published/{file}.json must be {{"about": str, "figures": {{key: row}}}}')
    for key, row in raw["figures"].items():
        _check_row(file, key, row)
    return raw["figures"]


def rows(file: str) -> dict[str, dict]:
    """The raw rows of `file` (JSON objects), by key: what notebooks index as `rows(...)[key]["value"]`."""
    return _load(file)


def _figure(file: str, key: str, row: dict) -> Figure:
    """A row as a Figure."""
    tol = row.get("tolerance")
    return Figure(file, key, row["value"], row["unit"], row["source"], row["location"], row["status"],
                  row.get("printed"), Tolerance(float(tol["rel"]), tol["why"]) if tol else None)  # fmt: skip


def figures(file: str) -> dict[str, Figure]:
    """Every figure of `file`, by key."""
    return {key: _figure(file, key, row) for key, row in _load(file).items()}


def figure(file: str, key: str) -> Figure:
    """The figure `key` of `file`; a clear error with the closest keys otherwise."""
    known = _load(file)
    if key not in known:
        close = difflib.get_close_matches(str(key), known, n=3)
        raise ValueError(f"key: no figure {key!r} in data/published/{file}.json; closest: {close}")
    return _figure(file, key, known[key])


def value(file: str, key: str) -> Any:
    """The value of figure `key` of `file`."""
    return figure(file, key).value


def groups(file: str) -> dict[str, dict[str, Figure]]:
    """The figures of `file` whose keys read `group/item`, by group and then by item."""
    out: dict[str, dict[str, Figure]] = {}
    for key, fig in figures(file).items():
        if "/" in key:
            name, item = key.split("/", 1)
            out.setdefault(name, {})[item] = fig
    return out


def group(file: str, name: str) -> dict[str, Figure]:
    """The figures `name/item` of `file`, by item (in file order); a clear error for an unknown group."""
    known = groups(file)
    if name not in known:
        raise ValueError(f"name: no group {name!r} in data/published/{file}.json; valid: {sorted(known)}")
    return known[name]


def rounding_bound(printed: str, units: float = 0.5) -> float:
    """Relative error a printed number can hide: `units` of its last digit ('1.92e19' -> 0.26 % for half a unit)."""
    try:
        mantissa = Decimal(str(printed).lower().split("e")[0])
    except ArithmeticError as err:
        raise ValueError(f"printed must be a number such as '1.92e19', got {printed!r}") from err
    if mantissa == 0 or not mantissa.is_finite():
        raise ValueError(f"printed must be a finite non-zero number, got {printed!r}")
    return units * 10.0 ** mantissa.as_tuple().exponent / float(abs(mantissa))
