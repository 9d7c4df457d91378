"""The workshop day (AGENDA.md, PREREQUISITES.md, GLOSSARY.md, cheatsheets/): generated, measured, fitting, linked.

The committed documents must equal a fresh run of tools/build_day.py; the agenda's run times must be the run
tables' (read here straight from the JSON); every slot's clock time must follow from its minutes and fit its
session; a plan that overruns or names a missing section is refused; every glossary link and term is in the
notebook it points to; a handful of cheat-sheet numbers equal an independent computation; and no prose
template carries a typed number (tools/lint_digits.py).
"""

from __future__ import annotations

import copy
import json
import math
import re
import sys
from pathlib import Path

import pytest

from workshop_utils import day

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_day  # noqa: E402
import lint_digits  # noqa: E402

RAW = json.loads((ROOT / day.PLAN_PATH).read_text())
ROW = re.compile(r"^\| (\d\d:\d\d)–(\d\d:\d\d) \| (.+?) \|(.*)\| (\d+) min \|$")


@pytest.fixture(scope="module")
def files() -> dict[str, str]:
    """Every generated document, rendered once for this module."""
    return build_day.render_all()


def _table(profile: str) -> dict[str, dict]:
    """The run table's rows by notebook, read here without the generator."""
    path = ROOT / f"benchmarks/results/notebook_times_{profile}.json"
    return {r["notebook"]: r for r in json.loads(path.read_text())["rows"]} if path.exists() else {}


def _minutes(clock: str) -> int:
    """'09:30' -> 570."""
    h, m = clock.split(":")
    return int(h) * 60 + int(m)


# ------------------------------------------------------------------------------------------ generated output
def test_committed_documents_are_up_to_date(files):
    """AGENDA.md, PREREQUISITES.md, GLOSSARY.md and every cheat sheet equal a fresh generation."""
    assert build_day.stale(files) == [], "run: python tools/build_day.py"
    assert sorted(p for p in files if p.startswith("cheatsheets/")) == sorted(
        f"cheatsheets/{m.notebook.removesuffix('.ipynb')}.md" for m in day.MODULES
    )


def test_no_typed_numbers_in_prose_templates(files):
    """Every template the generator fills passes the digit lint: the numbers in the documents come from code."""
    assert build_day.TEMPLATES, "the generator registered no templates"
    bad = {tpl: lint_digits.flagged(tpl) for tpl in set(build_day.TEMPLATES) if lint_digits.flagged(tpl)}
    assert bad == {}
    assert lint_digits.flagged("the run takes 37 min") == ["37"]  # the lint can refuse


# ------------------------------------------------------------------------------------------ the agenda
def test_agenda_run_times_are_the_run_tables(files):
    """Each module row shows the cpu and ci seconds of the run tables, and the cpu minutes rounded up."""
    cpu, ci = _table("cpu"), _table("ci")
    agenda = files["AGENDA.md"]
    for m in day.MODULES:
        rows = [line for line in agenda.splitlines() if f"[{m.number:02d} · {m.title}](" in line]
        rows = [r for r in rows if ROW.match(r)]
        assert len(rows) == len(RAW["schedules"]), m.notebook  # one row per schedule
        c, i = cpu.get(m.notebook), ci.get(m.notebook)
        want_cpu = f"{c['seconds']:.1f} s → {math.ceil(c['seconds'] / 60)} min" if c else "not recorded"
        want_ci = f"{i['seconds']:.1f} s" if i else "not recorded"
        for r in rows:
            assert f"| {want_cpu} | {want_ci} |" in r, r
        if c:
            assert f"cpu {c['seconds']:.1f} s (row of {c.get('date')})" in agenda


def test_clock_times_add_up_and_fit(files):
    """Rows are contiguous; a module's slot is talk + hands-on + questions + run minutes; sessions end in time."""
    sessions = {
        s["name"].capitalize(): (s["start"], s["end"])
        for v in RAW["schedules"].values()
        for s in v["sessions"]
    }
    current, now, seen = None, None, 0
    for line in files["AGENDA.md"].splitlines():
        head = re.match(r"^### (.+): (\d\d:\d\d)–(\d\d:\d\d)$", line)
        if head:
            assert (head.group(2), head.group(3)) == sessions[head.group(1)]
            current, now = head.group(3), _minutes(head.group(2))
            continue
        row = ROW.match(line)
        if not row or current is None:
            continue
        start, end, minutes = _minutes(row.group(1)), _minutes(row.group(2)), int(row.group(5))
        assert start == now and end - start == minutes and end <= _minutes(current), line
        parts = [int(x) for x in re.findall(r"(\d+) min", row.group(4))]  # talk, hands-on, questions, run
        if parts:
            assert sum(parts) == minutes, line
            seen += 1
        now = end
    assert seen == len(day.MODULES) * len(RAW["schedules"])


def test_one_day_fits_a_day_and_halves_fit_afternoons():
    """Every schedule of the plan runs through `timeline` without an overrun."""
    plan, cpu = day.load_plan(), build_day.run_table("cpu")
    run_s = {n: cpu.seconds(n) for n in day.NOTEBOOKS}
    for schedule in plan.schedules.values():
        for session, slots in zip(schedule.sessions, day.timeline(schedule, plan, run_s, 300)):
            assert slots[0].start == day.parse_clock(session.start)
            assert slots[-1].end <= day.parse_clock(session.end)


def test_an_overlong_plan_is_refused_naming_the_module():
    """Module 07 talking for two more hours overruns the day; module 03 overrunning pushes module 04 past lunch."""
    raw = copy.deepcopy(RAW)
    next(m for m in raw["modules"] if m["module"] == 7)["talk_min"] += 120
    plan = day.load_plan(raw)
    with pytest.raises(ValueError, match=r"module 0[789] ends at .*past its end 17:00"):
        day.timeline(plan.schedules["one_day"], plan, {}, 60)
    raw = copy.deepcopy(RAW)
    next(m for m in raw["modules"] if m["module"] == 3)["talk_min"] += 60
    plan = day.load_plan(raw)
    with pytest.raises(ValueError, match=r"module 04 ends at .* after Lunch"):
        day.timeline(plan.schedules["one_day"], plan, {}, 60)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r["modules"][2]["live"].append("9.9"), r"module 02: section: no section '9\.9'"),
        (lambda r: r["modules"][0].update(talk_min=-5), r"module 00 talk_min must be whole minutes > 0"),
        (lambda r: r["modules"].pop(), r"every module once"),
        (lambda r: r["schedules"]["one_day"]["sessions"][0]["items"].remove(9), r"every module once"),
        (lambda r: r["schedules"]["one_day"]["sessions"][0].update(start="9:00"), r"HH:MM"),
        (lambda r: r["glossary"][0]["taught"][0].update(section="nope"), r"no section 'nope'"),
    ],
)
def test_bad_plan_input_is_refused(edit, message):
    """Unknown sections, negative minutes, missing modules, bad clock times: a clear ValueError."""
    raw = copy.deepcopy(RAW)
    edit(raw)
    with pytest.raises(ValueError, match=message):
        day.load_plan(raw)


def test_a_missing_run_is_not_recorded_never_made_up():
    """A notebook missing from the run table is scheduled at the budget and the agenda says "not recorded"."""
    plan, cpu = day.load_plan(), build_day.run_table("cpu")
    rows = {k: v for k, v in cpu.rows.items() if k != day.NOTEBOOKS[9]}
    partial = build_day.RunTable("cpu", cpu.path, cpu.date, cpu.machine, rows)
    text = build_day.agenda(plan, partial, partial)
    row = next(
        line for line in text.splitlines() if ROW.match(line) and f"[09 · {day.MODULES[9].title}]" in line
    )
    assert "| not recorded: scheduled at the cpu budget → 5 min | not recorded |" in row
    assert "cpu not recorded; ci not recorded." in text
    empty = {n: None for n in day.NOTEBOOKS}
    slots = day.timeline(plan.schedules["two_half_days"], plan, empty, 90)  # a ci-sized budget: 2 min each
    assert all(not s.recorded and s.run_min == 2 for ss in slots for s in ss if s.kind == "module")


# ------------------------------------------------------------------------------------------ glossary and links
def test_glossary_links_exist_and_the_term_is_taught_there(files):
    """Each linked notebook exists and its text (and the named section) contains the term."""
    text = {}
    for term in day.load_plan().glossary:
        for n, label in term.taught:
            nb = day.NOTEBOOKS[n]
            if nb not in text:
                cells = json.loads((ROOT / "notebooks" / nb).read_text())["cells"]
                text[nb] = "\n".join("".join(c["source"]) for c in cells).lower()
            assert any(w.lower() in text[nb] for w in term.match), (term.term, nb)
            assert any(w.lower() in day.section(nb, label).text.lower() for w in term.match), (
                term.term,
                nb,
                label,
            )
    links = re.findall(r"\]\((notebooks/[^)]+)\)", files["GLOSSARY.md"])
    assert links and all((ROOT / p).exists() for p in links)


def test_every_local_link_resolves(files):
    """Links between the documents and to the notebooks point at files that exist."""
    for path, text in files.items():
        for target in re.findall(r"\]\(([^)#]+)\)", text):
            if not target.startswith("http"):
                assert (ROOT / path).parent.joinpath(target).resolve().exists(), (path, target)


# ------------------------------------------------------------------------------------------ cheat sheets
@pytest.fixture(scope="module")
def facts() -> dict[tuple[int, str], build_day.Fact]:
    """The cheat-sheet facts by (module, key), computed again."""
    facts = build_day.cheat_facts(build_day.run_table("cpu"), build_day.run_table("ci"))
    return {(n, f.key): f for n, fs in facts.items() for f in fs}


def test_cheat_sheet_numbers_equal_an_independent_computation(files, facts):
    """Six numbers by hand: Llama-2-7B's parameters and 6ND, the S-curve, ZeRO-3, NF4 storage, LoRA's count."""
    v, d, layers, ff = 32000, 4096, 32, 11008  # Llama-2-7B's config.json
    n7 = 2 * v * d + layers * (4 * d * d + 3 * d * ff + 2 * d) + d
    expected = {
        (1, "llama2_7b_params"): n7,
        (3, "llama2_7b_6nd"): 6 * n7 * 2e12,  # 2T tokens (LLaMA-2 Table 1)
        (2, "s_curve_0.80"): 1 - (1 - 0.8**8) ** 14,  # FineWeb: 14 bands of 8 rows
        (5, "zero_stage3"): 16 * 7.5e9 / 64 / 1e9,  # ZeRO §5: 16 bytes/param over 64 ranks
        (8, "nf4_65b"): 65e9 * (4 + 32 / 64) / 8 / 1e9,  # NF4 + one fp32 absmax per 64 weights
        (8, "lora_7b_r8"): layers * 2 * 8 * (d + d),  # r = 8 on W_q and W_v
    }
    for key, want in expected.items():
        assert facts[key].value == pytest.approx(want, rel=1e-12), key
        sheet = files[f"cheatsheets/{day.NOTEBOOKS[key[0]].removesuffix('.ipynb')}.md"]
        assert f"| {facts[key].shown} |" in sheet, key


def test_cheat_sheet_headlines_are_the_run_tables(facts):
    """The measured headline of each module is its run-table metric, with the row's date."""
    for profile in ("cpu", "ci"):
        for nb, row in _table(profile).items():
            n = next(m.number for m in day.MODULES if m.notebook == nb)
            f = facts[(n, f"headline_{profile}")]
            assert f.value == row["metric"]["value"] and row["date"] in f.what


def test_number_formatting():
    """Prose numbers: significant digits, separators, powers of ten."""
    assert build_day.num(8.0863e22) == "8.09 × 10²²"
    assert build_day.num(0.39058) == "0.391"
    assert build_day.num(211.9676) == "212"
    assert build_day.count(6738415616) == "6,738,415,616"
    assert build_day.num(9.996e9) == "1.00 × 10¹⁰"
