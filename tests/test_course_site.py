"""The course run and its offline site.

Tests marked `course` read what `make notebooks` produced (build/ci and build/site) and run after it in
`make test`. The unmarked ones test the site builder itself on a tiny fake run (no network: assets stubbed).
"""

from __future__ import annotations

import base64
import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import nbformat
import pytest

from workshop_utils.course import MODULES

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_site  # noqa: E402

RUN = ROOT / "build" / "ci"
SITE = ROOT / "build" / "site"
PNG_1PX = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
    )
).decode()


class _Links(HTMLParser):
    """Every src/href in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs) -> None:
        for key, value in attrs:
            if key in ("src", "href") and value:
                self.refs.append((tag, key, value))


def _refs(page: Path) -> list[tuple[str, str, str]]:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.refs


# ------------------------------------------------------------------------------- the checker itself
@pytest.mark.parametrize(
    "snippet",
    [
        '<script src="https://cdnjs.cloudflare.com/ajax/libs/require.js/2.1.10/require.min.js"></script>',
        '<img src="http://example.org/a.png">',
        '<link rel="stylesheet" href="//fonts.googleapis.com/css?family=Roboto">',
        '<script>const m = await import("https://cdnjs.cloudflare.com/ajax/libs/mermaid/11/mermaid.mjs");</script>',
        "<script>var s = 'https://unpkg.com/@jupyter-widgets/html-manager@*/dist/embed-amd.js';</script>",
        '<style>@import url("https://fonts.googleapis.com/css2?family=Inter");</style>',
        '<div style="background: url(https://example.org/bg.png)"></div>',
        '<iframe src="https://www.youtube.com/embed/x"></iframe>',
    ],
)
def test_checker_flags_what_a_browser_would_fetch(snippet: str) -> None:
    assert build_site.external_references(f"<html><body>{snippet}</body></html>")


def test_checker_allows_links_data_uris_and_local_files() -> None:
    page = (
        '<a href="https://colab.research.google.com/github/x/y/blob/main/n.ipynb">'
        '<img src="assets/colab-badge.svg"></a><img src="data:image/png;base64,AAAA">'
        '<script src="vendor/mathjax/es5/tex-svg-full.js"></script>'
        '<script>var ns = "http://www.w3.org/2000/svg";</script>'
    )
    assert build_site.external_references(page) == []


# --------------------------------------------------------------------- the builder on a fake run
def _fake_run(out: Path) -> None:
    """A run dir with one executed 'plotting' notebook: badge, png figure, tqdm widget, timings."""
    (out / "notebooks").mkdir(parents=True)
    md = nbformat.v4.new_markdown_cell(
        "# 00 · Setup\n\n[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        "(https://colab.research.google.com/github/a/b/blob/main/notebooks/00_setup.ipynb)\n\n$e^{i\\pi}$"
    )
    plot = nbformat.v4.new_code_cell("plt.plot([1, 2])")
    plot.outputs = [
        nbformat.v4.new_output("display_data", data={"image/png": PNG_1PX, "text/plain": "<Figure>"})
    ]
    plot.metadata["papermill"] = {"duration": 2.5}
    bar = nbformat.v4.new_code_cell("for _ in tqdm.auto.tqdm(range(3)): pass")
    bar.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={
                "application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2},
                "text/plain": "100%|##########| 3/3",
            },
        ),
        nbformat.v4.new_output("stream", name="stdout", text="step 1\rstep 2\rstep 3\n"),
    ]
    bar.metadata["papermill"] = {"duration": 0.5}
    slow = nbformat.v4.new_code_cell("# long\nrun = train_everything()")
    slow.metadata["papermill"] = {"duration": 75.0}  # over the live budget, no fast path
    nb = nbformat.v4.new_notebook(cells=[md, plot, bar, slow])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nbformat.write(nb, out / "notebooks" / "00_setup.ipynb")
    row = {
        "notebook": "00_setup.ipynb",
        "status": "ok",
        "seconds": 3.2,
        "over_budget": False,
        "metric": {"name": "matmul GFLOP/s", "value": 12.5, "unit": "GFLOP/s"},
        "error": "",
        "slow_cells": [{"cell": 3, "seconds": 75.0, "first_line": "# long", "fast_path": False}],
    }
    table = {"profile": "ci", "requested": "ci", "budget_s": 90, "total_s": 3.2, "rows": [row]}
    (out / "run_table.json").write_text(json.dumps(table))


def _stub_assets(site_vendor: Path) -> dict[str, str]:
    for rel in ("mathjax/es5/tex-svg-full.js", "requirejs/require.js"):
        (site_vendor / rel).parent.mkdir(parents=True, exist_ok=True)
        (site_vendor / rel).write_text("/* stub */")
    return {"mathjax": "vendor/mathjax/es5/tex-svg-full.js", "requirejs": "vendor/requirejs/require.js"}


def test_build_site_on_a_fake_run(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(build_site, "copy_assets", _stub_assets)
    monkeypatch.setattr(build_site, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(build_site, "SLIDES_DIR", tmp_path / "slides")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "speed_ci.md").write_text("# Speed\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    (tmp_path / "slides").mkdir()
    (tmp_path / "slides" / "00_setup.html").write_text("<html><body>deck</body></html>")
    _fake_run(tmp_path / "run")
    index = build_site.build_site(tmp_path / "run", site_dir=tmp_path / "site")

    page = (tmp_path / "site" / "00_setup.html").read_text()
    assert f"data:image/png;base64,{PNG_1PX}" in page
    assert "widget-view+json" not in page and "unpkg" not in page
    assert "100%|##########| 3/3" in page  # the widget's text form stays
    assert "step 3" in page and "step 1" not in page  # carriage returns applied
    assert 'src="assets/colab-badge.svg"' in page and 'href="index.html"' in page
    assert 'src="vendor/mathjax/es5/tex-svg-full.js"' in page and "window.MathJax" in page
    text = index.read_text()
    for href in ("00_setup.html", "benchmarks/speed_ci.html", "slides/00_setup.html", "run_table.json"):
        assert f'href="{href}"' in text and (tmp_path / "site" / href).is_file(), href
    assert "matmul GFLOP/s = 12.5 GFLOP/s" in text and "not run" in text  # module 01 etc. absent
    assert "plt.plot([1, 2])" in text  # where the time goes: the slowest cells
    assert "<td class='num'>1 (0)</td>" in text  # one cell over the live budget, without a fast path
    assert "<b>missing</b></td><td><code># long</code>" in text
    assert build_site.check_site(tmp_path / "site") == []


def test_build_site_refuses_an_external_image(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(build_site, "copy_assets", _stub_assets)
    monkeypatch.setattr(build_site, "RESULTS_DIR", tmp_path / "none")
    monkeypatch.setattr(build_site, "SLIDES_DIR", tmp_path / "none")
    _fake_run(tmp_path / "run")
    path = tmp_path / "run" / "notebooks" / "00_setup.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source += "\n\n![chart](https://example.org/chart.png)"
    nbformat.write(nb, path)
    with pytest.raises(RuntimeError, match="example.org/chart.png"):
        build_site.build_site(tmp_path / "run", site_dir=tmp_path / "site")


def test_build_site_without_a_run_says_what_to_do(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="run_course.py"):
        build_site.build_site(tmp_path / "nothing", site_dir=tmp_path / "site")


# ------------------------------------------------------------------ the real ci run (make notebooks)
@pytest.fixture(scope="module")
def table() -> dict:
    path = RUN / "run_table.json"
    if not path.exists():
        pytest.fail(f"{path} missing: run `make notebooks` (tools/run_course.py --profile ci --out build/ci)")
    return json.loads(path.read_text())


@pytest.mark.course
def test_every_module_notebook_ran_ok_in_ci(table) -> None:
    expected = [m.notebook for m in MODULES if (ROOT / "notebooks" / m.notebook).exists()]
    rows = {r["notebook"]: r for r in table["rows"]}
    assert table["profile"] == "ci"
    missing = [nb for nb in expected if nb not in rows]
    assert not missing, f"not executed in the ci run: {missing}"
    failed = {nb: rows[nb]["error"][-500:] for nb in expected if rows[nb]["status"] != "ok"}
    assert not failed, failed
    for nb in expected:
        metric = rows[nb]["metric"]
        assert metric.get("name") and isinstance(metric.get("value"), float), f"{nb}: no headline metric"


@pytest.mark.course
def test_ci_times_are_recorded(table) -> None:
    rows = table["rows"]
    assert all(r["seconds"] > 0 for r in rows)
    assert table["total_s"] == pytest.approx(sum(r["seconds"] for r in rows), abs=0.05 * len(rows) + 0.05)
    assert table["budget_s"] == 90 and table["machine"] and table["date"]
    md = (RUN / "run_table.md").read_text()
    assert all(r["notebook"] in md for r in rows) and "**total**" in md


@pytest.mark.course
def test_site_index_links_every_executed_notebook(table) -> None:
    index = SITE / "index.html"
    assert index.exists(), "build/site/index.html missing: the ci run builds it"
    assert json.loads((SITE / "run_table.json").read_text()) == table, "the site is not from the ci run"
    hrefs = {v for tag, key, v in _refs(index) if tag == "a"}
    for nb in sorted((RUN / "notebooks").glob("*.ipynb")):
        assert f"{nb.stem}.html" in hrefs, f"index does not link {nb.stem}.html"
        assert (SITE / f"{nb.stem}.html").is_file()


@pytest.mark.course
def test_site_pages_load_nothing_from_the_network() -> None:
    pages = sorted(SITE.rglob("*.html"))
    assert pages
    assert build_site.check_site(SITE) == []
    for page in pages:
        for tag, key, value in _refs(page):
            parsed = urlparse(value)
            if parsed.scheme in ("http", "https") or value.startswith("//"):
                assert tag == "a" and key == "href", (
                    f"{page.name}: <{tag} {key}={value!r}> loads from the network"
                )
            elif parsed.scheme in ("", "file") and parsed.path:  # a local file: it must exist in the site
                target = (page.parent / unquote(parsed.path)).resolve()
                assert target.exists(), f"{page.name}: broken local reference {value!r}"


@pytest.mark.course
def test_figures_are_embedded_and_progress_bars_are_text() -> None:
    plotted = []
    for nb_path in sorted((RUN / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        pngs = sum(
            "image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs
        )
        page = (SITE / f"{nb_path.stem}.html").read_text(encoding="utf-8")
        assert "application/vnd.jupyter.widget-view+json" not in page, f"{nb_path.name}: a widget output"
        assert not re.search(r"<img[^>]+src=\"(?!data:|assets/)", page), f"{nb_path.name}: non-embedded image"
        if pngs:
            plotted.append(nb_path.name)
            assert page.count('src="data:image/png;base64,') >= pngs, f"{nb_path.name}: figures not embedded"
    if not plotted:
        pytest.skip("no executed notebook plots yet")


def test_recording_one_notebook_replaces_only_its_row(tmp_path) -> None:
    import run_course

    def row(nb: str, s: float, date: str | None = None) -> dict:
        return {"notebook": nb, "seconds": s, **({"date": date} if date else {})}

    path = tmp_path / "notebook_times_cpu.json"
    old = {"profile": "cpu", "date": "2026-01-01 00:00 UTC", "total_s": 30.0,
           "rows": [row("00_setup.ipynb", 10.0), row("01_architecture_evolution.ipynb", 20.0)]}  # fmt: skip
    path.write_text(json.dumps(old))
    new = {"profile": "cpu", "date": "2026-02-02 00:00 UTC", "total_s": 5.0,
           "rows": [row("01_architecture_evolution.ipynb", 5.0, "2026-02-02 00:00 UTC")]}  # fmt: skip
    merged = run_course.merge_recorded(path, new)
    assert [(r["notebook"], r["seconds"], r["date"]) for r in merged["rows"]] == [
        ("00_setup.ipynb", 10.0, "2026-01-01 00:00 UTC"),
        ("01_architecture_evolution.ipynb", 5.0, "2026-02-02 00:00 UTC"),
    ]
    assert merged["total_s"] == 15.0 and "rows from 2 runs" in merged["note"]
    assert run_course.merge_recorded(path, {**new, "profile": "ci"})["rows"] == new["rows"]  # other profile
    assert run_course.merge_recorded(tmp_path / "none.json", new) is new
