"""Every module notebook ends with 2-3 exercises whose solutions are collapsed code cells that CI executes.

CONTRIBUTING.md, notebook anatomy step 8: an "Exercises" markdown heading, the exercises as a numbered
list (or "### Exercise N" headings), each solution in a code cell tagged `solution` with cell metadata
`{"jupyter": {"source_hidden": true}}`. Solutions run with the rest of the notebook in `make notebooks`
(papermill executes every code cell), so they cannot rot; the `course` test below checks they did run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from workshop_utils.course import MODULES

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = [ROOT / "notebooks" / m.notebook for m in MODULES]  # every module of the course map
RUN = ROOT / "build" / "ci"
HEADING = re.compile(r"^#{1,3}\s*Exercises?\b", re.M | re.I)
ITEM = re.compile(r"^(?:\s{0,3}(\d+)[.)]\s+\S|#{2,4}\s*Exercise\s+(\d+)\b)", re.M | re.I)
SKIP_TAGS = {"skip-execution", "skip", "raises-exception"}


def exercise_section(nb) -> tuple[list[int], list[int]]:
    """(exercise numbers found after the Exercises heading, indices of `solution` cells after it)."""
    start = next(
        (i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and HEADING.search(c.source)), None
    )
    if start is None:
        return [], []
    numbers, solutions = [], []
    for i, cell in enumerate(nb.cells[start:], start):
        if cell.cell_type == "markdown":
            body = cell.source[HEADING.search(cell.source).end() :] if i == start else cell.source
            numbers += [int(a or b) for a, b in ITEM.findall(body)]
        elif "solution" in cell.metadata.get("tags", []):
            solutions.append(i)
    return numbers, solutions


def test_there_are_module_notebooks() -> None:
    missing = [p.name for p in NOTEBOOKS if not p.exists()]
    assert NOTEBOOKS and not missing, f"course map names notebooks that do not exist: {missing}"


def test_checker_on_a_made_up_notebook() -> None:
    md = nbformat.v4.new_markdown_cell(
        "## Exercises\n1. warm-up\n2. measure\n   3 GB is not an item\n3. extend"
    )
    meta = {"tags": ["solution"], "jupyter": {"source_hidden": True}}
    sol, sol2 = (nbformat.v4.new_code_cell(f"x = {i}", metadata=meta) for i in (1, 2))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# T\n1. goal"), md, sol, sol2])
    assert exercise_section(nb) == ([1, 2, 3], [2, 3])
    assert exercise_section(nbformat.v4.new_notebook(cells=[md])) == ([1, 2, 3], [])
    assert exercise_section(nbformat.v4.new_notebook(cells=[sol])) == ([], [])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercises_and_hidden_solutions(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    numbers, solutions = exercise_section(nb)
    assert numbers, f"{path.name}: no '## Exercises' markdown heading with numbered exercises after it"
    assert numbers == list(range(1, len(numbers) + 1)) and 2 <= len(numbers) <= 3, (
        f"{path.name}: exercises must be numbered 1..n with n = 2 or 3, found {numbers}"
    )
    assert len(solutions) >= 2, (
        f"{path.name}: needs >= 2 code cells tagged `solution`, found {len(solutions)}"
    )
    for i in solutions:
        cell = nb.cells[i]
        assert cell.metadata.get("jupyter", {}).get("source_hidden") is True, (
            f"{path.name} cell {i}: a solution cell needs metadata {json.dumps({'jupyter': {'source_hidden': True}})}"
        )
        assert not SKIP_TAGS & set(cell.metadata.get("tags", [])), (
            f"{path.name} cell {i}: solution is not executed"
        )
        assert cell.source.strip(), f"{path.name} cell {i}: empty solution"


@pytest.mark.course
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_solutions_ran_in_the_ci_run(path: Path) -> None:
    executed = RUN / "notebooks" / path.name
    assert executed.is_file(), f"{executed} missing: run `make notebooks`"
    nb = nbformat.read(executed, as_version=4)
    _, solutions = exercise_section(nb)
    assert len(solutions) >= 2, f"{path.name}: the executed copy has no solution cells"
    for i in solutions:
        cell = nb.cells[i]
        assert cell.get("execution_count") is not None, f"{path.name} cell {i}: solution was not executed"
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{path.name} cell {i}: solution raised {errors[0].get('ename')}"
