"""Keep every notebook's generated header in sync with `workshop_utils.course`, and check notebook hygiene.

    python tools/sync_notebooks.py          # rewrite badges and setup cells, strip outputs, README module map
    python tools/sync_notebooks.py --check  # exit 1 listing every notebook that is out of sync

Generated parts: the "Open in Colab" badge in the first markdown cell (URL from the notebook's path and the
one GitHub slug), the line under it linking the module's cheat sheet, the glossary and the agenda, and the first code cell (the Colab setup cell). A notebook must also have a code cell
tagged `parameters` that sets PROFILE, and no cell hidden with `jupyter.source_hidden` (Colab ignores it:
solutions live in `workshop_utils/solutions/` and a notebook shows one with `show_solution(module, n)`).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from workshop_utils.course import MODULES, colab_badge, colab_setup_source, day_links  # noqa: E402

BADGE_RE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)")
README_BLOCK = re.compile(r"(<!-- modules:start -->\n).*?(<!-- modules:end -->)", re.S)


def readme_module_table() -> str:
    """The README's module map (with Colab badges), generated from workshop_utils.course.MODULES."""
    lines = ["| # | module | what you will see | Colab |", "|---|---|---|---|"]
    for m in MODULES:
        path = f"notebooks/{m.notebook}"
        lines.append(f"| {m.number:02d} | [{m.title}]({path}) | {m.summary} | {colab_badge(path)} |")
    return "\n".join(lines) + "\n"


def sync_readme(fix: bool) -> list[str]:
    """Check (and with fix=True rewrite) the generated module map between the README's markers."""
    readme = ROOT / "README.md"
    text = readme.read_text() if readme.exists() else ""
    match = README_BLOCK.search(text)
    if not match:
        return ["README.md has no <!-- modules:start --> ... <!-- modules:end --> block"]
    want = match.group(1) + readme_module_table() + match.group(2)
    if match.group(0) == want:
        return []
    if fix:
        readme.write_text(text[: match.start()] + want + text[match.end() :])
    return ["README.md module map is out of date"]


def notebook_paths() -> list[Path]:
    """Every course notebook (including solutions notebooks), sorted."""
    return sorted(p for p in (ROOT / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def problems_and_fix(path: Path, fix: bool) -> list[str]:
    """List what is out of sync in one notebook; with fix=True rewrite it in place."""
    nb = nbformat.read(path, as_version=4)
    rel = path.relative_to(ROOT).as_posix()
    problems: list[str] = []
    md = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    want_badge = colab_badge(rel)
    if md is None:
        problems.append("no markdown cell (title + badge)")
    elif want_badge not in md.source:
        problems.append("Colab badge missing or wrong")
        if BADGE_RE.search(md.source):
            md.source = BADGE_RE.sub(want_badge, md.source)
        else:
            lines = md.source.split("\n")
            md.source = "\n".join(lines[:1] + ["", want_badge] + lines[1:])
    want_links = day_links(rel)
    if md is not None and want_links not in md.source:
        problems.append("cheat sheet / glossary / agenda links missing or wrong")
        kept = [ln for ln in md.source.split("\n") if not ln.startswith("Cheat sheet: [")]
        at = next((i for i, ln in enumerate(kept) if want_badge in ln), 0) + 1
        md.source = "\n".join(kept[:at] + ["", want_links] + kept[at:])
    code = [c for c in nb.cells if c.cell_type == "code"]
    if not code or code[0].source.strip() != colab_setup_source().strip():
        problems.append("first code cell is not the canonical Colab setup cell")
        if code and "google.colab" in code[0].source:
            code[0].source = colab_setup_source()
        else:
            idx = nb.cells.index(code[0]) if code else len(nb.cells)
            nb.cells.insert(idx, nbformat.v4.new_code_cell(colab_setup_source()))
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    if len(params) != 1 or "PROFILE" not in params[0].source:
        problems.append("needs exactly one code cell tagged 'parameters' that sets PROFILE")
    hidden = [i for i, c in enumerate(nb.cells) if c.metadata.get("jupyter", {}).get("source_hidden")]
    if hidden:  # not fixed automatically: a hidden solution moves into workshop_utils/solutions/ by hand
        problems.append(f"cells {hidden} hide their source (Colab ignores it): use show_solution(module, n)")
    for cell in code:
        if cell.get("outputs") or cell.get("execution_count"):
            problems.append("has outputs (never commit outputs)")
            break
    if fix:
        for cell in code:
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
            cell.metadata.pop("papermill", None)
        nb.metadata.pop("papermill", None)
        nb.metadata.pop("widgets", None)
        nbformat.write(nb, path)
    return problems


def main() -> int:
    """Check or fix every notebook."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="report problems, change nothing")
    args = parser.parse_args()
    bad = 0
    for problem in sync_readme(fix=not args.check):
        if args.check:
            bad += 1
            print(problem)
    for path in notebook_paths():
        problems = problems_and_fix(path, fix=not args.check)
        if problems and args.check:
            bad += 1
            print(f"{path.relative_to(ROOT)}: " + "; ".join(problems))
    if args.check and bad:
        print(f"{bad} file(s) out of sync: run `python tools/sync_notebooks.py`")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
