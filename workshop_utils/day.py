"""The workshop day: the instructor's plan (an input), the notebooks' sections, the measured run times, the clock.

`data/day_plan.json` holds the plan: per module the talk, hands-on and question minutes, the sections run live,
where to pause and what to skip when late; two schedules (one day, two afternoons); the glossary. Those minutes
are a plan, not a measurement. `timeline` adds each notebook's measured run time (tools/build_day.py reads the
run tables; a notebook not recorded is scheduled at its profile's budget, never at a made-up time), turns a
schedule into clock times and refuses one that does not fit, naming the module that overruns.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from .course import MODULES
from .paths import repo_root

PLAN_PATH = "data/day_plan.json"
NOTEBOOKS = {m.number: m.notebook for m in MODULES}
_LABEL = re.compile(r"^(\d+[a-z]?(?:\.\d+)*)\.?\s")  # "2.6 Dedup" -> "2.6", "4b. Does" -> "4b"
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


# --------------------------------------------------------------------------------------------- notebooks
@dataclass(frozen=True)
class Section:
    """A `##` or `###` section of a notebook: label ("2.6", "4b", "Exercises"), title, cell range, text."""

    label: str
    title: str
    level: int
    start: int
    stop: int  # one past its last cell
    code_cells: int
    text: str


@cache
def cells(notebook: str) -> tuple[tuple[str, str], ...]:
    """(cell type, source) of every cell of notebooks/<notebook>, read once as plain JSON (nbformat v4)."""
    path = repo_root() / "notebooks" / notebook
    if not path.exists():
        raise ValueError(f"notebook: no file notebooks/{notebook}")
    raw = json.loads(path.read_text())["cells"]
    return tuple(
        (c["cell_type"], c["source"] if isinstance(c["source"], str) else "".join(c["source"])) for c in raw
    )


@cache
def notebook_sections(notebook: str) -> tuple[Section, ...]:
    """Every `##`/`###` section of notebooks/<notebook>; the cells before the first one are "intro"."""
    body, heads = cells(notebook), [(0, 2, "intro", "Introduction")]
    for i, (kind, source) in enumerate(body):
        for line in source.splitlines() if kind == "markdown" else ():
            if m := re.match(r"(#{2,3}) (.+)", line):
                title = m.group(2).strip()
                heads.append((i, len(m.group(1)), (_LABEL.match(title) or [title, title])[1], title))
    out = []
    for k, (start, level, label, title) in enumerate(heads):
        stop = next((s for s, lv, *_ in heads[k + 1 :] if lv <= level and s > start), len(body))
        code = sum(kind == "code" for kind, _ in body[start:stop])
        out.append(
            Section(label, title, level, start, stop, code, "\n".join(src for _, src in body[start:stop]))
        )
    return tuple(out)


def section(notebook: str, label: str) -> Section:
    """The section `label` of a notebook; a clear error listing the valid labels."""
    found = [s for s in notebook_sections(notebook) if s.label == label]
    if not found:
        valid = [s.label for s in notebook_sections(notebook)]
        raise ValueError(f"section: no section {label!r} in notebooks/{notebook}; valid: {valid}")
    return found[0]


# --------------------------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class Mark:
    """A section and minutes: a pause for questions after it, or a section to skip when late and what it saves."""

    section: str
    minutes: int


@dataclass(frozen=True)
class ModulePlan:
    """The instructor's plan for one module."""

    number: int
    talk_min: int
    hands_on_min: int
    live: tuple[str, ...]  # section labels run in front of the room
    pauses: tuple[Mark, ...]  # pause for questions after `section`, for `minutes`
    skips: tuple[Mark, ...]  # skip `section` when late: saves `minutes`

    @property
    def questions_min(self) -> int:
        """Minutes of all its question pauses."""
        return sum(p.minutes for p in self.pauses)

    @property
    def planned_min(self) -> int:
        """Talk + hands-on + questions (the run time comes on top)."""
        return self.talk_min + self.hands_on_min + self.questions_min


@dataclass(frozen=True)
class Break:
    """A break; with `at`, it starts at that clock time (the gap before it is buffer)."""

    name: str
    minutes: int
    at: str | None = None


@dataclass(frozen=True)
class Session:
    """A stretch of a day from `start` to `end` holding module numbers and breaks, in order."""

    name: str
    start: str
    end: str
    items: tuple[int | Break, ...]


@dataclass(frozen=True)
class Schedule:
    """A whole plan: one session (one day) or several (two afternoons)."""

    key: str
    title: str
    sessions: tuple[Session, ...]


@dataclass(frozen=True)
class Term:
    """A glossary entry: term, one-line meaning, (module, section label) where taught, words that show it there."""

    term: str
    definition: str
    taught: tuple[tuple[int, str], ...]
    match: tuple[str, ...]


@dataclass(frozen=True)
class DayPlan:
    """Everything in data/day_plan.json, checked."""

    modules: dict[int, ModulePlan]
    schedules: dict[str, Schedule]
    glossary: tuple[Term, ...]


def parse_clock(text: str) -> int:
    """'09:30' -> minutes after midnight."""
    m = _CLOCK.match(text) if isinstance(text, str) else None
    if not m:
        raise ValueError(f"clock time must read HH:MM (24 h), got {text!r}")
    return int(m.group(1)) * 60 + int(m.group(2))


def clock(minutes: int) -> str:
    """Minutes after midnight -> 'HH:MM' (an overrun past midnight reads on, e.g. '25:10')."""
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 0:
        raise ValueError(f"minutes must be an int >= 0, got {minutes!r}")
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _minutes(where: str, value: Any, zero_ok: bool = False) -> int:
    """A whole number of minutes (> 0, or >= 0 with zero_ok), else a ValueError naming `where`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if zero_ok else 1):
        raise ValueError(f"{where} must be whole minutes {'>= 0' if zero_ok else '> 0'}, got {value!r}")
    return value


def _module_plan(raw: dict) -> ModulePlan:
    """One module's plan, its section labels checked against its notebook."""
    n = raw.get("module")
    if n not in NOTEBOOKS:
        raise ValueError(f"module must be one of {sorted(NOTEBOOKS)}, got {n!r}")
    where = f"module {n:02d}"
    pauses = tuple(Mark(p["after"], _minutes(f"{where} pause", p["minutes"])) for p in raw.get("pauses", []))
    skips = tuple(Mark(k["section"], _minutes(f"{where} saves_min", k["saves_min"])) for k in raw.get("skip_when_late", []))  # fmt: skip
    for label in (*raw.get("live", []), *(m.section for m in pauses + skips)):
        try:
            section(NOTEBOOKS[n], label)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
    talk = _minutes(f"{where} talk_min", raw.get("talk_min"))
    hands_on = _minutes(f"{where} hands_on_min", raw.get("hands_on_min"), zero_ok=True)
    return ModulePlan(n, talk, hands_on, tuple(raw.get("live", [])), pauses, skips)


def _item(i: Any, where: str, start: int, end: int) -> int | Break:
    """A module number, or a break (one with `at` inside its session)."""
    if isinstance(i, dict):
        if i.get("at") is not None and not start <= parse_clock(i["at"]) < end:
            raise ValueError(f"{where}: {i.get('break')} at {i['at']} lies outside the session")
        name = str(i.get("break"))
        return Break(name, _minutes(f"{where}, {name!r}", i.get("minutes")), i.get("at"))
    if i not in NOTEBOOKS:
        raise ValueError(
            f"{where}: an item must be a module number {sorted(NOTEBOOKS)} or a break, got {i!r}"
        )
    return i


def _schedule(key: str, raw: dict) -> Schedule:
    """One schedule: every module exactly once."""
    sessions = []
    for r in raw["sessions"]:
        where, start, end = f"schedule {key!r}, {r['name']}", parse_clock(r["start"]), parse_clock(r["end"])
        if end <= start:
            raise ValueError(f"{where}: end {r['end']} is not after start {r['start']}")
        items = tuple(_item(i, where, start, end) for i in r["items"])
        sessions.append(Session(r["name"], r["start"], r["end"], items))
    placed = [i for s in sessions for i in s.items if not isinstance(i, Break)]
    if sorted(placed) != sorted(NOTEBOOKS):
        raise ValueError(f"schedule {key!r} must hold every module once; holds {placed}")
    return Schedule(key, raw["title"], tuple(sessions))


def _term(raw: dict) -> Term:
    """One glossary entry, its sections checked."""
    taught = tuple((t["module"], t["section"]) for t in raw["taught"])
    if not raw["definition"].strip() or not taught or any(n not in NOTEBOOKS for n, _ in taught):
        raise ValueError(f"glossary {raw['term']!r}: needs a definition and the modules that teach it")
    for n, label in taught:
        section(NOTEBOOKS[n], label)
    return Term(raw["term"], raw["definition"], taught, tuple(raw.get("match", [raw["term"]])))


def load_plan(raw: dict | None = None) -> DayPlan:
    """The checked plan from data/day_plan.json (or from `raw`, the same structure)."""
    raw = json.loads((repo_root() / PLAN_PATH).read_text()) if raw is None else raw
    if not isinstance(raw, dict) or not {"modules", "schedules", "glossary"} <= set(raw):
        raise ValueError("plan must be an object with modules, schedules and glossary")
    modules = {m.number: m for m in map(_module_plan, raw["modules"])}
    if sorted(modules) != sorted(NOTEBOOKS) or len(modules) != len(raw["modules"]):
        raise ValueError(
            f"plan must hold every module once, holds {[m.get('module') for m in raw['modules']]}"
        )
    schedules = {k: _schedule(k, v) for k, v in raw["schedules"].items()}
    return DayPlan(modules, schedules, tuple(map(_term, raw["glossary"])))


# --------------------------------------------------------------------------------------------- the clock
@dataclass(frozen=True)
class Slot:
    """One line of a timeline: a module, a break or buffer, from `start` to `end` (minutes after midnight)."""

    kind: str  # "module" | "break" | "buffer"
    start: int
    end: int
    module: int | None = None
    name: str = ""
    run_min: int = 0
    recorded: bool = True


def run_minutes(seconds: float | None, budget_s: float) -> int:
    """Whole minutes to schedule for a notebook's run: its measured seconds, or the budget when not recorded."""
    return math.ceil((budget_s if seconds is None else seconds) / 60)


def timeline(
    schedule: Schedule, plan: DayPlan, run_s: Mapping[int, float | None], budget_s: float
) -> list[list[Slot]]:
    """Clock times per session (`run_s`: measured seconds by module, None when not recorded); refuses overruns.

    A ValueError names the module that ends after its session, or after a break fixed at a clock time.
    """
    out = []
    for s in schedule.sessions:
        now, end, slots, last = parse_clock(s.start), parse_clock(s.end), [], "the session start"
        where = f"plan {schedule.key!r}, {s.name}"
        for item in s.items:
            if isinstance(item, Break):
                at = now if item.at is None else parse_clock(item.at)
                if now > at:
                    raise ValueError(f"{where}: {last} ends at {clock(now)}, after {item.name} at {item.at}")
                slots += [Slot("buffer", now, at)] if at > now else []
                slots.append(Slot("break", at, at + item.minutes, name=item.name))
                now, last = at + item.minutes, item.name
                continue
            run, recorded = run_minutes(run_s.get(item), budget_s), run_s.get(item) is not None
            stop = now + plan.modules[item].planned_min + run
            if stop > end:
                raise ValueError(f"{where}: module {item:02d} ends at {clock(stop)}, past its end {s.end}")
            slots.append(Slot("module", now, stop, item, run_min=run, recorded=recorded))
            now, last = stop, f"module {item:02d}"
        out.append(slots + ([Slot("buffer", now, end)] if now < end else []))
    return out
