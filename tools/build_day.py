"""Write the workshop day's documents: AGENDA.md, PREREQUISITES.md, GLOSSARY.md and cheatsheets/NN_*.md.

    python tools/build_day.py          # (re)write them
    python tools/build_day.py --check  # exit 1 listing every file that is out of date

Inputs: the instructor's plan and the glossary (data/day_plan.json, read by workshop_utils.day), the notebooks'
sections, the run tables (benchmarks/results/notebook_times_{cpu,ci}.json) and, for the cheat sheets, the
package's calculators and data/published. Prose is written as templates whose `{key}` placeholders code fills:
every template passes through `t`, which records it, and the tests run the digit lint on each, so no number is
typed into the documents. The documents are generated output: edit the inputs, then run this script.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from day_cheatsheets import Fact, cheat_facts, cheat_sheet  # noqa: E402, F401  (Fact: re-exported for the tests)
from day_text import (  # noqa: E402, F401  (shared with day_cheatsheets; re-exported for the tests)
    GENERATED,
    TEMPLATES,
    TITLES,
    RunTable,
    count,
    nb_link,
    num,
    run_table,
    seconds,
    section_of_cell,
    stem,
    t,
)

from workshop_utils import day  # noqa: E402
from workshop_utils.config import BUDGET_SECONDS  # noqa: E402
from workshop_utils.course import repo_url  # noqa: E402


# --------------------------------------------------------------------------------------------- agenda
def _slot_row(slot: day.Slot, plan: day.DayPlan, cpu: RunTable, ci: RunTable) -> str:
    """One table row of a timeline."""
    span = f"{day.clock(slot.start)}–{day.clock(slot.end)}"
    if slot.kind != "module":
        name = slot.name or "buffer (slack)"
        return f"| {span} | {name} | | | | | | {slot.end - slot.start} min |"
    m, n = plan.modules[slot.module], slot.module
    run = seconds(cpu, n) if slot.recorded else t("not recorded: scheduled at the cpu budget")
    return (f"| {span} | {nb_link(n)} | {m.talk_min} min | {m.hands_on_min} min | {m.questions_min} min "
            f"| {run} → {slot.run_min} min | {seconds(ci, n)} | {slot.end - slot.start} min |")  # fmt: skip


def schedule_md(schedule: day.Schedule, plan: day.DayPlan, cpu: RunTable, ci: RunTable) -> list[str]:
    """A schedule: one table per session and what skipping saves."""
    out = [f"## {schedule.title}", ""]
    run_s = {n: cpu.seconds(n) for n in day.NOTEBOOKS}
    for session, slots in zip(schedule.sessions, day.timeline(schedule, plan, run_s, BUDGET_SECONDS["cpu"])):
        out += [
            t(
                "### {name}: {start}–{end}",
                name=session.name.capitalize(),
                start=session.start,
                end=session.end,
            ),
            "",
        ]
        out += [t("| time | what | talk | hands-on | questions | run, cpu (measured) | run, ci (measured) | slot |"),
                "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        out += [_slot_row(s, plan, cpu, ci) for s in slots]
        mods = [s for s in slots if s.kind == "module"]
        saves = sum(k.minutes for s in mods for k in plan.modules[s.module].skips)
        slack = sum(s.end - s.start for s in slots if s.kind == "buffer")
        out += ["", t("Last module ends at {last}; {slack} min of buffer in all. Running late: skipping every "
                      "section marked *skip when late* below saves {saves} min.",
                      last=day.clock(mods[-1].end), slack=slack, saves=saves), ""]  # fmt: skip
    return out


def _sections(number: int, labels: list[str], extra: list[str] | None = None) -> str:
    """'*title* (what)' for each section label of a module."""
    nb = day.NOTEBOOKS[number]
    parts = [
        f"*{day.section(nb, lb).title}*" + (f" ({x})" if x else "")
        for lb, x in zip(labels, extra or [""] * len(labels))
    ]
    return "; ".join(parts) or t("none")


def module_md(n: int, plan: day.DayPlan, cpu: RunTable, ci: RunTable) -> list[str]:
    """The per-module detail: plan, measured run, live sections, slow cells, pauses, skips."""
    m, nb = plan.modules[n], day.NOTEBOOKS[n]
    live = [day.section(nb, lb).code_cells for lb in m.live]
    cells = [t("{k} code cell", k=k) if k == 1 else t("{k} code cells", k=k) for k in live]
    out = [f"### {n:02d} · {TITLES[n]}", "",
           t("{notebook} · [cheat sheet](cheatsheets/{stem}.md)", notebook=nb_link(n), stem=stem(n)), "",
           t("- **Plan:** talk {talk} min, hands-on {hands} min, questions {q} min.",
             talk=m.talk_min, hands=m.hands_on_min, q=m.questions_min),
           t("- **Measured run:** cpu {cpu}; ci {ci}.", cpu=seconds(cpu, n, True), ci=seconds(ci, n, True)),
           t("- **Run live:** {live}.", live=_sections(n, list(m.live), cells))]  # fmt: skip
    row = cpu.rows.get(nb)
    for c in row["slow_cells"] if row else ():
        where = section_of_cell(nb, c["first_line"])
        fix = (
            t("it has a fast path: set `FAST_PATH = True` after one earlier run")
            if c.get("fast_path")
            else t("no fast path")
        )
        out.append(t("- **Slow cell in the cpu run:** `{line}` in *{where}* took {s} s; {fix}.", line=c["first_line"],
                     where=where.title if where else t("a cell no longer in the notebook"), s=c["seconds"], fix=fix))  # fmt: skip
    out.append(
        t(
            "- **Pause for questions after:** {p}.",
            p=_sections(n, [p.section for p in m.pauses], [t("{k} min", k=p.minutes) for p in m.pauses]),
        )
    )
    out.append(
        t(
            "- **Skip when late:** {s}.",
            s=_sections(n, [s.section for s in m.skips], [t("saves {k} min", k=s.minutes) for s in m.skips]),
        )
    )
    return [*out, ""]


def agenda(plan: day.DayPlan, cpu: RunTable, ci: RunTable) -> str:
    """AGENDA.md."""
    out = ["# The workshop day: agenda", "", f"> {GENERATED}", "",
           t("The minutes of talk, hands-on work and questions, the sections run live, the pauses and what to skip "
             "are the instructor's plan (`data/day_plan.json`), not measurements. Run times are measured: the cpu "
             "profile's run table `{cpu_path}` (dated {cpu_date}, {cpu_machine}), with the ci profile's `{ci_path}` "
             "(dated {ci_date}) beside it; each row carries its own date. A slot is talk + hands-on + questions + "
             "the cpu run time rounded up to whole minutes; a notebook missing from the run table is scheduled at "
             "the cpu budget of {budget} min. `tools/build_day.py` refuses a plan that does not fit.",
             cpu_path=cpu.path, cpu_date=cpu.date, cpu_machine=cpu.machine, ci_path=ci.path, ci_date=ci.date,
             budget=BUDGET_SECONDS["cpu"] // 60),
           "", t("Before the day: [prerequisites](PREREQUISITES.md). Terms: [glossary](GLOSSARY.md)."), ""]  # fmt: skip
    for schedule in plan.schedules.values():
        out += schedule_md(schedule, plan, cpu, ci)
    out += ["## Module by module", ""]
    for n in sorted(plan.modules):
        out += module_md(n, plan, cpu, ci)
    return "\n".join(out)


# --------------------------------------------------------------------------------------------- prerequisites
def prerequisites(cpu: RunTable, ci: RunTable) -> str:
    """PREREQUISITES.md: knowledge, installation, hardware."""
    text = (ROOT / "pyproject.toml").read_text()
    python = re.search(r'requires-python\s*=\s*"([^"]+)"', text).group(1)
    deps = re.findall(r'^\s*"([^"]+)",?\s*$', text.split("dependencies = [", 1)[1].split("]", 1)[0], re.M)
    total = sum(r["seconds"] for r in cpu.rows.values())
    setup_ci = seconds(ci, 0)
    out = ["# Before the workshop day: prerequisites", "", f"> {GENERATED}", "",
           "## What you should know", "",
           t("- **Python:** functions, classes and dataclasses, list and dict comprehensions, reading a traceback."),
           t("- **PyTorch basics:** tensors, dtypes and devices ({m4}); `nn.Module` and `forward` ({m1}); autograd "
             "with `loss.backward()` and an optimizer step ({m3}). Hugging Face `transformers` helps but is not "
             "required: the course builds its models from configs.", m1=nb_link(1), m3=nb_link(3), m4=nb_link(4)),
           t("- **Maths:** logarithms and exponentials, matrix products, probabilities. The [glossary](GLOSSARY.md) "
             "defines the course's terms."),
           "", "## Install before the day", "",
           t("1. Python `{python}` and `make` (Linux or macOS; on Windows use WSL).", python=python),
           t("2. `git clone {url}.git` and, inside it, `make setup`: it builds `.venv` from the tested pins "
             "(`constraints.txt`). Nothing else is downloaded during the day.", url=repo_url()),
           t("3. Check it: `.venv/bin/python tools/run_course.py --profile ci --only {nb}` (the recorded ci run "
             "took {s}).", nb=day.NOTEBOOKS[0], s=setup_ci),
           t("4. No install at all: open any notebook in Colab from its badge; its first cell installs the course."),
           "", t("The package's direct dependencies (`pyproject.toml`): {deps}.", deps=", ".join(f"`{d}`" for d in deps)),
           "", "## Hardware", "",
           t("- **A laptop, no GPU:** the cpu profile. Every notebook is budgeted at {cpu_min} min; the recorded cpu "
             "run ({machine}, {date}) took {total} min for all of them.", cpu_min=BUDGET_SECONDS["cpu"] // 60,
             machine=cpu.machine, date=cpu.date, total=num(total / 60)),
           t("- **A GPU (optional):** the gpu profile, budgeted at {gpu_min} min per notebook on a T4; its times "
             "are predicted, not measured (`python -m workshop_utils.gpu_predict`).", gpu_min=BUDGET_SECONDS["gpu"] // 60),
           t("- Memory and disk needs are not measured by the course."),
           "", "## For the instructor", "",
           t("- Run `make course` on the presenting machine before the day: it records that machine's run table, "
             "and the cells with a fast path need one earlier run."),
           t("- After editing `data/day_plan.json` or a new run table: `python tools/build_day.py`."), ""]  # fmt: skip
    return "\n".join(out)


# --------------------------------------------------------------------------------------------- glossary
def glossary(plan: day.DayPlan) -> str:
    """GLOSSARY.md: one row per term, linked to the sections that teach it."""
    out = ["# Glossary", "", f"> {GENERATED} Terms and definitions: `data/day_plan.json`.", "",
           t("| term | meaning | where it is taught |"), "|---|---|---|"]  # fmt: skip
    for term in sorted(plan.glossary, key=lambda x: x.term.casefold()):
        by_module = {n: [lb for m, lb in term.taught if m == n] for n, _ in term.taught}
        where = "; ".join(f"{nb_link(n)}: {_sections(n, labels)}" for n, labels in by_module.items())
        out.append(f"| **{term.term}** | {t(term.definition)} | {where} |")
    return "\n".join([*out, ""])


# --------------------------------------------------------------------------------------------- cheat sheets
# tools/day_cheatsheets.py builds them (with the shared helpers of tools/day_text.py).


# --------------------------------------------------------------------------------------------- files
def render_all() -> dict[str, str]:
    """Every generated file, by path relative to the repository root."""
    plan, cpu, ci = day.load_plan(), run_table("cpu"), run_table("ci")
    files = {"AGENDA.md": agenda(plan, cpu, ci), "PREREQUISITES.md": prerequisites(cpu, ci),
             "GLOSSARY.md": glossary(plan)}  # fmt: skip
    for n, facts in cheat_facts(cpu, ci).items():
        files[f"cheatsheets/{stem(n)}.md"] = cheat_sheet(n, facts)
    return files


def stale(files: dict[str, str]) -> list[str]:
    """Generated files whose committed text differs (or that are missing), and cheat sheets no module makes."""
    out = [p for p, text in files.items() if not (ROOT / p).exists() or (ROOT / p).read_text() != text]
    return out + [p.relative_to(ROOT).as_posix() for p in sorted((ROOT / "cheatsheets").glob("*.md"))
                  if p.relative_to(ROOT).as_posix() not in files]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """CLI: write the documents, or with --check list the stale ones (exit 1)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated file is out of date")
    args = parser.parse_args(argv)
    files = render_all()
    if args.check:
        bad = stale(files)
        for p in bad:
            print(f"out of date: {p} (run python tools/build_day.py)")
        return 1 if bad else 0
    for p, text in files.items():
        (ROOT / p).parent.mkdir(parents=True, exist_ok=True)
        (ROOT / p).write_text(text)
    print(f"wrote {len(files)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
