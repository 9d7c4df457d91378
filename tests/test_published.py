"""data/published: one schema, one reader (workshop_utils.published), and no orphan figures.

Every row of every file is read by a test or by package code (its key, or the group it belongs to, appears
as a quoted string in tests/ or workshop_utils/), has value/unit/source/location/status, and every
tolerance says why; a printed figure's tolerance is never tighter than its printed digits allow.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workshop_utils import finetune_grid_report, published

ROOT = Path(__file__).resolve().parents[1]
FILES = published.files()


def _source() -> str:
    """The text of every test and package module except this file: where a figure can be read."""
    paths = [*(ROOT / "workshop_utils").rglob("*.py"), *(ROOT / "tests").glob("*.py")]
    return "\n".join(p.read_text() for p in sorted(paths) if p.resolve() != Path(__file__).resolve())


def _quoted(name: str, source: str) -> bool:
    """`name` appears in `source` as a string literal."""
    return f'"{name}"' in source or f"'{name}'" in source


def unread_rows(source: str) -> list[str]:
    """'file/key' of every row whose key, and whose group, never appears quoted in `source`."""
    return [f"{file}/{key}" for file in FILES for key in published.rows(file)
            if not _quoted(key, source) and not ("/" in key and _quoted(key.split("/")[0], source))]  # fmt: skip


def test_the_files():
    assert set(FILES) >= {
        "data_pipeline",
        "fine_tuning",
        "hardware",
        "memory",
        "planning",
        "pretraining",
        "scaling",
    }


def test_every_row_is_read_by_a_test_or_the_package():
    """No orphan figures (replaces the per-file checks of test_claims_planner and test_finetune_grid)."""
    assert not unread_rows(_source()), unread_rows(_source())


def test_the_orphan_check_can_fail():
    source = _source()
    key = "qlora_65b_full_ft_memory"  # read by one test only
    assert f"fine_tuning/{key}" in unread_rows(source.replace(f'"{key}"', '"?"'))


@pytest.mark.parametrize("file", FILES)
def test_every_row_follows_the_schema(file):
    """value, unit, source, location, status; a tolerance has rel in [0, 1) and a why; printed matches value."""
    for key, fig in published.figures(file).items():
        assert fig.source.strip() and fig.location.strip() and isinstance(fig.unit, str), key
        assert fig.status in published.STATUSES, key
        if fig.tolerance is not None:
            assert 0 <= fig.tolerance.rel < 1 and fig.tolerance.why.strip(), key
        if fig.printed is not None:
            assert float(fig.printed) == pytest.approx(fig.value, rel=1e-12), key
            if fig.tolerance is not None:  # never tighter than half a unit of the last printed digit
                assert fig.tolerance.rel >= published.rounding_bound(fig.printed) * (1 - 1e-9), key


@pytest.mark.parametrize("file", FILES)
def test_every_tolerance_can_fail(file):
    """A value just outside the tolerance is refused: no comparison passes whatever the package computes."""
    for key, fig in published.figures(file).items():
        if fig.tolerance is None:
            continue
        assert fig.agrees(fig.value), key
        if isinstance(fig.value, bool) or not isinstance(fig.value, int | float):
            assert not fig.agrees(object()), key
            continue
        off = (
            abs(fig.value) * fig.tolerance.rel * 1.01
            + 1e-9 * abs(fig.value)
            + (1 if fig.tolerance.rel == 0 else 0)
        )
        assert not fig.agrees(fig.value + off) and not fig.agrees(fig.value - off), key


def test_fine_tuning_json_keeps_the_report_s_access_path():
    """finetune_grid_report reads json.loads(...)["figures"][key]["value"]; that path stays valid for every row."""
    raw = json.loads((ROOT / "data" / "published" / "fine_tuning.json").read_text())["figures"]
    assert finetune_grid_report.published() == raw == published.rows("fine_tuning")
    assert all("value" in row for row in raw.values())
    assert finetune_grid_report.gpt3_point()["wikisql"] > 0.9


def test_reader_errors_name_the_argument():
    with pytest.raises(ValueError, match="file: no data/published/nope.json"):
        published.figure("nope", "x")
    with pytest.raises(ValueError, match="key: no figure 'gopher_budgt'.*gopher_budget"):
        published.figure("scaling", "gopher_budgt")
    with pytest.raises(ValueError, match="name: no group 'zero'"):
        published.group("memory", "zero")
    with pytest.raises(ValueError, match="has no tolerance"):
        published.figure("scaling", "kaplan/a").agrees(0.73)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"value": 1, "unit": "", "source": "s", "location": "l"}, "missing fields \\['status'\\]"),
        ({"value": 1, "unit": "", "source": "s", "location": "l", "status": "ok"}, "status 'ok'"),
        ({"value": 1, "unit": "", "source": "", "location": "l", "status": "derived"}, "source must be a non-empty"),
        ({"value": 1, "unit": "", "source": "s", "location": "l", "status": "derived", "note": 1}, "unknown fields \\['note'\\]"),
        ({"value": 1, "unit": "", "source": "s", "location": "l", "status": "derived", "tolerance": {"rel": 0.1}}, "tolerance must be"),
        ({"value": 1, "unit": "", "source": "s", "location": "l", "status": "derived", "tolerance": {"rel": 0.1, "why": " "}},
         "tolerance must be"),
    ],
)  # fmt: skip
def test_a_malformed_file_is_refused(tmp_path, monkeypatch, row, message):
    (tmp_path / "bad.json").write_text(json.dumps({"about": "a test file", "figures": {"k": row}}))
    monkeypatch.setattr(published, "directory", lambda: tmp_path)
    published._load.cache_clear()
    try:
        with pytest.raises(ValueError, match=f"bad.json, figure 'k': {message}"):
            published.figures("bad")
    finally:
        published._load.cache_clear()


def test_rounding_bound():
    """Half a unit of the last printed digit, relative to the number; one unit for a truncating source."""
    assert published.rounding_bound("1.92e19") == pytest.approx(0.005 / 1.92)
    assert published.rounding_bound("216.2e12") == pytest.approx(0.05 / 216.2)
    assert published.rounding_bound("8.0e9") == pytest.approx(0.05 / 8.0)
    assert published.rounding_bound("4187", units=1.0) == pytest.approx(1 / 4187)
    with pytest.raises(ValueError, match="printed"):
        published.rounding_bound("about 3")
