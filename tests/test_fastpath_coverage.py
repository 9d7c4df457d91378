"""Every cell that runs past the live budget has a fast path: checked on the recorded `cpu`-profile run."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from workshop_utils import fastpath
from workshop_utils.course import MODULES, kernel_config
from workshop_utils.fastpath import LIVE_BUDGET_S, slow_cells
from workshop_utils.paths import repo_root

ROOT = repo_root()
RECORDED = ROOT / "benchmarks" / "results" / "notebook_times_cpu.json"


def _cells(notebook: str) -> list[str]:
    nb = json.loads((ROOT / "notebooks" / notebook).read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def _cell(source: str, seconds: float | None) -> dict:
    meta = {} if seconds is None else {"papermill": {"duration": seconds}}
    return {"cell_type": "code", "source": source, "metadata": meta}


def test_slow_cells_finds_cells_over_the_budget_and_their_fast_path() -> None:
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": "# t", "metadata": {"papermill": {"duration": 99.0}}},
            _cell("x = 1", 0.5),
            _cell("\n# long, wrapped\nr = cached_result('k', f, **FAST)", 120.04),
            _cell(["y = train()\n", "print(y)"], 75.0),
            _cell("not executed", None),
        ]
    }
    assert slow_cells(nb) == [
        {"cell": 2, "seconds": 120.0, "first_line": "# long, wrapped", "fast_path": True},
        {"cell": 3, "seconds": 75.0, "first_line": "y = train()", "fast_path": False},
    ]
    assert [c["cell"] for c in slow_cells(nb, budget_s=100)] == [2]
    with pytest.raises(TypeError, match="executed_nb must be a notebook"):
        slow_cells({"cells": None})


def test_recorded_cpu_run_covers_every_module_and_every_slow_cell_has_a_fast_path() -> None:
    table = json.loads(RECORDED.read_text())
    assert table["profile"] == "cpu"
    rows = {r["notebook"]: r for r in table["rows"]}
    assert set(rows) == {m.notebook for m in MODULES}, (
        "re-record: `make course` on a machine without a GPU (auto -> cpu)"
    )
    for name, row in rows.items():
        assert row["status"] == "ok", f"{name} failed in the recorded cpu run"
        assert row["live_budget_s"] == LIVE_BUDGET_S, f"{name}: recorded against another live budget"
        missing = [c for c in row["slow_cells"] if not c["fast_path"]]
        assert not missing, f"{name}: cells over {LIVE_BUDGET_S:g} s without a fast path: {missing}"
        for c in row["slow_cells"]:  # the recorded cell still exists and still has its fast path
            current = [s for s in _cells(name) if c["first_line"] in s]
            assert current and all("cached_result(" in s for s in current), (name, c["first_line"])


def test_notebooks_with_a_fast_path_default_to_computing() -> None:
    """`FAST_PATH = False` in the parameters cell of each notebook that has one: CI always computes."""
    for m in MODULES:
        cells = _cells(m.notebook)
        if any("cached_result(" in s for s in cells):
            params = [s for s in cells if s.lstrip().startswith("PROFILE =")]
            assert params and "FAST_PATH = False" in params[0], m.notebook


# ------------------------------------------------------------------ the fast path itself, after the ci run
def _fast_path_notebooks() -> list[str]:
    return [m.notebook for m in MODULES if any("cached_result(" in s for s in _cells(m.notebook))]


@pytest.mark.course
@pytest.mark.parametrize("name", _fast_path_notebooks())
def test_fast_path_loads_what_the_ci_run_stored_and_gives_its_headline(name, tmp_path, monkeypatch) -> None:
    """`FAST_PATH = True` after `make notebooks`: every wrapped cell loads (none recomputes), same headline."""
    import papermill as pm

    first = ROOT / "build" / "ci" / "metrics" / f"{Path(name).stem}.json"
    if not first.exists():
        pytest.fail(f"{first} missing: run `make notebooks` (the ci course run) first")
    guard = str(ROOT / "tools" / "guard")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [guard, os.environ.get("PYTHONPATH", "")])))
    for key, value in {"WORKSHOP_NETWORK_GUARD": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                       "WORKSHOP_METRICS_DIR": str(tmp_path / "metrics"), "PYTHONHASHSEED": "0",
                       "MPLBACKEND": "Agg"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    src = ROOT / "notebooks" / name
    pm.execute_notebook(str(src), str(tmp_path / name), parameters={"PROFILE": "ci", "FAST_PATH": True},
                        kernel_name="python3", cwd=str(src.parent), progress_bar=False, config=kernel_config())  # fmt: skip
    out = json.loads((tmp_path / name).read_text())
    text = "".join("".join(o.get("text", "")) for c in out["cells"] for o in c.get("outputs", []))
    wrapped = sum(s.count("cached_result(") for s in _cells(name))
    assert len(fastpath.loaded_keys(out)) == wrapped, text[-2000:]
    assert "no precomputed result" not in text
    assert " LIVE" not in text  # nothing loaded is presented as live
    again = json.loads((tmp_path / "metrics" / first.name).read_text())
    before = json.loads(first.read_text())
    assert again["name"] == before["name"] and math.isclose(again["value"], before["value"], rel_tol=1e-9)
