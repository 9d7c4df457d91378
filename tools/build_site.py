"""Build the offline course site from a course run: `build/site/index.html` plus one page per notebook.

    python tools/build_site.py build/ci        # rebuild the site from an earlier run (run_course.py calls this)

Input: `<out>/notebooks/*.ipynb` (executed by tools/run_course.py) and `<out>/run_table.json`.
Output, all under `build/site/`, viewable from disk with no network:
- `index.html`: the module map (links to each page and to Colab), the run table (status, seconds, headline
  metric), where the time goes (slowest cells per notebook, from papermill's cell timings), links to the
  benchmark results (`benchmarks/results/*.md|json`) and to the slide decks (`build/slides/*.html`) if built;
- `<notebook>.html`: nbconvert's lab template with figures embedded as base64 and every script served from
  `vendor/` (MathJax 3, require.js; see tools/vendor_assets.py) instead of a CDN.
Mermaid diagrams are not vendored (the course draws with matplotlib): their source shows as a code block.
Every page is checked for external scripts, styles and images before the build reports success.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from vendor_assets import copy_assets  # noqa: E402

from workshop_utils import fastpath  # noqa: E402
from workshop_utils.course import MODULES, colab_url  # noqa: E402
from workshop_utils.fastpath import LIVE_BUDGET_S  # noqa: E402

SITE_DIR = ROOT / "build" / "site"
SLIDES_DIR = ROOT / "build" / "slides"  # decks built by the slides target (issue 10), linked when present
RESULTS_DIR = ROOT / "benchmarks" / "results"
TEMPLATE_DIR = Path(__file__).resolve().parent / "site_template"
BADGE_URL = "https://colab.research.google.com/assets/colab-badge.svg"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
OWNED = ("index.html", "vendor", "assets", "benchmarks", "slides")  # what a rebuild replaces (plus *.html)

# A self-drawn badge, so pages show "Open in Colab" without fetching Google's image.
BADGE_SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="117" height="20" role="img" aria-label="Open in Colab">
<rect width="117" height="20" rx="3" fill="#555"/><rect x="40" width="77" height="20" rx="3" fill="#f9ab00"/>
<rect x="40" width="6" height="20" fill="#f9ab00"/>
<g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">
<text x="6" y="14">Open</text><text x="47" y="14" fill="#222">in Colab</text></g></svg>
"""

PAGE_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 72em; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #1a7f37; font-weight: 600; } .failed { color: #c62828; font-weight: 600; }
.missing { color: #888; } code { background: #f5f5f5; padding: 0 0.2em; }
details { margin: 0.3em 0; } summary { cursor: pointer; }
"""


# ------------------------------------------------------------------------------------------------
# Offline check: no page may load a script, style, image or font from another machine.
# ------------------------------------------------------------------------------------------------
_EXTERNAL = re.compile(r"^\s*(https?:)?//", re.I)
# URLs a script could fetch at run time (namespace URIs like http://www.w3.org/2000/svg are not fetched).
_FETCHED_IN_SCRIPT = re.compile(
    r"(https?:)?//[^\s'\"`)]*(unpkg\.com|cdnjs|jsdelivr|googleapis|gstatic|cloudflare|jquery\.com|"
    r"mathjax\.org|polyfill\.io)",
    re.I,
)
_CSS_URL = re.compile(r"(url\(\s*['\"]?\s*(https?:)?//|@import\s+['\"]?(https?:)?//)", re.I)


class _RefCollector(HTMLParser):
    """Collect every reference a browser would fetch while rendering the page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        for key in ("src", "srcset", "data", "poster"):
            if key in a and _EXTERNAL.match(a[key]):
                self.problems.append(f"<{tag} {key}={a[key]!r}>")
        if tag == "link" and "href" in a and _EXTERNAL.match(a["href"]):
            self.problems.append(f"<link href={a['href']!r}>")
        if tag in ("image", "use") and _EXTERNAL.match(a.get("href", a.get("xlink:href", ""))):
            self.problems.append(f"<{tag} href=...> external")
        if "style" in a and _CSS_URL.search(a["style"]):
            self.problems.append(f"<{tag} style=...> loads an external url")
        self._in = tag if tag in ("script", "style") else None

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "script":
            for m in _FETCHED_IN_SCRIPT.finditer(data):
                self.problems.append(f"<script> fetches {m.group(0)!r}")
        elif self._in == "style" and _CSS_URL.search(data):
            self.problems.append("<style> loads an external url")


def external_references(page: str) -> list[str]:
    """Everything in an HTML page that would be fetched from another machine (plain <a href> links are fine)."""
    parser = _RefCollector()
    parser.feed(page)
    return parser.problems


def check_site(site_dir: Path) -> list[str]:
    """Offline problems of every page under `site_dir`, as 'page: problem' lines (empty = offline-clean)."""
    out = []
    for page in sorted(site_dir.rglob("*.html")):
        for problem in external_references(page.read_text(encoding="utf-8", errors="replace")):
            out.append(f"{page.relative_to(site_dir)}: {problem}")
    return out


# ------------------------------------------------------------------------------------------------
# Notebook pages
# ------------------------------------------------------------------------------------------------
def _offline_notebook(nb: Any) -> Any:
    """Make an executed notebook render offline: local Colab badge, widget outputs as their text form."""
    nb.metadata.pop("widgets", None)  # widget state would make the page load the widget manager from unpkg
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = cell.source.replace(BADGE_URL, "assets/colab-badge.svg")
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data and WIDGET_MIME in data and len(data) > 1:
                del data[WIDGET_MIME]  # e.g. a tqdm.auto bar: keep its text/plain form
    return nb


def _exporter(urls: dict[str, str]):
    """An nbconvert HTML exporter whose every script URL points into the site."""
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    config = Config()
    config.CoalesceStreamsPreprocessor.enabled = True  # apply \r of plain-text progress bars
    return HTMLExporter(
        config=config,
        template_name="course",
        extra_template_basedirs=[str(TEMPLATE_DIR)],
        mathjax_url=urls["mathjax"],
        require_js_url=urls["requirejs"],
        jquery_url="",  # the lab template does not use jQuery
        mermaid_js_url="",
        mermaid_layout_elk_js_url="",
        jupyter_widgets_base_url="",
        embed_images=True,
    )


_NOTEBOOK_HREF = re.compile(r'href="(\d\d_[a-z0-9_]+)\.ipynb"')


def _site_links(page: str) -> str:
    """A link to a sibling notebook ("03_x.ipynb", as it works in Jupyter, Colab and on GitHub) points to
    that notebook's page of the site instead."""
    return _NOTEBOOK_HREF.sub(r'href="\1.html"', page)


def cell_timings(nb: Any, top: int = 5) -> list[dict[str, Any]]:
    """The slowest code cells of an executed notebook (papermill's per-cell durations), slowest first."""
    return sorted(fastpath.cell_timings(nb), key=lambda r: -r["seconds"])[:top]


def _title(nb: Any, fallback: str) -> str:
    """The notebook's first markdown heading."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", cell.source, re.M)
            if m:
                return m.group(1).strip()
    return fallback


# ------------------------------------------------------------------------------------------------
# Index
# ------------------------------------------------------------------------------------------------
def _md_page(title: str, body_html: str) -> str:
    """A minimal standalone page."""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<style>{PAGE_CSS}</style></head><body><p><a href="../index.html">&larr; course index</a></p>'
        f"{body_html}</body></html>\n"
    )


def _benchmark_pages(site: Path) -> list[tuple[str, str]]:
    """Render benchmarks/results/*.md as pages and copy *.json; return (label, relative link) pairs."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    links = []
    if not RESULTS_DIR.is_dir():
        return links
    dest = site / "benchmarks"
    for src in sorted(RESULTS_DIR.iterdir()):
        if src.suffix == ".md":
            dest.mkdir(exist_ok=True)
            (dest / f"{src.stem}.html").write_text(_md_page(src.stem, markdown2html_mistune(src.read_text())))
            links.append((src.name, f"benchmarks/{src.stem}.html"))
        elif src.suffix == ".json":
            dest.mkdir(exist_ok=True)
            shutil.copy2(src, dest / src.name)
            links.append((src.name, f"benchmarks/{src.name}"))
    return links


def _slides_links(site: Path) -> list[tuple[str, str]]:
    """Copy built decks (build/slides) into the site; return (label, relative link) pairs."""
    if not SLIDES_DIR.is_dir() or not any(SLIDES_DIR.glob("*.html")):
        return []
    shutil.copytree(SLIDES_DIR, site / "slides", dirs_exist_ok=True)
    return [(p.stem, f"slides/{p.name}") for p in sorted(SLIDES_DIR.glob("*.html"))]


def _headline(metric: dict[str, Any]) -> str:
    return f"{metric['name']} = {metric['value']:.4g} {metric.get('unit', '')}".strip() if metric else "-"


def _predicted_label(table: dict[str, Any]) -> str:
    """The predicted column's header, as the run table names it."""
    return (table.get("predicted_t4") or {}).get("label", "predicted T4 s")  # older tables carry no label


def _predicted(row: dict[str, Any]) -> str:
    """A row's predicted T4 seconds, marked as predicted ('' when the run table has none)."""
    value = row.get("predicted_t4_s")
    return "" if value is None else f"{value:.1f} (predicted)"


def _index_html(table: dict[str, Any], pages: dict[str, dict[str, Any]], bench, slides) -> str:
    """The course index page."""
    e = html.escape
    rows_by_nb = {r["notebook"]: r for r in table.get("rows", [])}
    known = {m.notebook for m in MODULES}
    parts = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        f"<title>LLM Pre-training and Fine-tuning: course site</title><style>{PAGE_CSS}</style></head><body>",
        "<h1>LLM Pre-training and Fine-tuning</h1>",
        f"<p>Executed notebooks of the <code>{e(table.get('profile', '?'))}</code> profile "
        f"(requested <code>{e(str(table.get('requested', '?')))}</code>), run {e(str(table.get('date', '?')))} "
        f"on {e(str(table.get('machine', '?')))}. Every page works offline.</p>",
        "<h2>Modules</h2><table><tr><th>#</th><th>module</th><th>status</th><th>seconds "
        f"(budget {e(str(table.get('budget_s', '?')))})</th><th>{e(_predicted_label(table))}</th>"
        f"<th>cells &gt; {LIVE_BUDGET_S:g} s (with fast path)</th><th>headline metric</th><th>Colab</th></tr>",
    ]
    ok = 0
    for m in MODULES:
        row = rows_by_nb.get(m.notebook)
        page = pages.get(m.notebook)
        name = f"<b>{e(m.title)}</b><br><small>{e(m.summary)}</small>"
        if page:
            name = f'<a href="{e(page["href"])}">{name}</a>'
        if row:
            status = f'<span class="{"ok" if row["status"] == "ok" else "failed"}">{e(row["status"])}</span>'
            ok += row["status"] == "ok"
            secs = f"{row['seconds']:.1f}" + (" (over budget)" if row.get("over_budget") else "")
            head = e(_headline(row.get("metric") or {}))
            slow = row.get("slow_cells")
            live = "" if slow is None else f"{len(slow)} ({sum(c['fast_path'] for c in slow)})"
            pred = _predicted(row)
        else:
            status, secs, head, live, pred = '<span class="missing">not run</span>', "", "", "", ""
        colab = f'<a href="{e(colab_url("notebooks/" + m.notebook))}">open</a>'
        parts.append(
            f"<tr><td>{m.number:02d}</td><td>{name}</td><td>{status}</td><td class='num'>{secs}</td>"
            f"<td class='num'>{pred}</td><td class='num'>{live}</td><td>{head}</td><td>{colab}</td></tr>"
        )
    parts.append(
        f"<tr><td></td><td><b>total</b></td><td>{ok}/{len(rows_by_nb)} ok</td>"
        f"<td class='num'>{table.get('total_s', 0):.1f}</td><td></td><td></td><td></td><td></td></tr></table>"
        "<p>The predicted column is a prediction for the notebook's <code>gpu</code> profile on a T4, opened "
        "alone (counted FLOPs over published peaks at a stated utilisation: "
        "<code>python -m workshop_utils.gpu_predict</code>), not a measurement.</p>"
    )
    extra = [nb for nb in pages if nb not in known]
    if extra:
        parts.append("<h2>Other notebooks</h2><ul>")
        parts += [f'<li><a href="{e(pages[nb]["href"])}">{e(pages[nb]["title"])}</a></li>' for nb in extra]
        parts.append("</ul>")
    parts.append(
        "<h2>Where the time goes</h2><p>The slowest cells of each notebook (papermill timings). A cell over "
        f"the live budget of {LIVE_BUDGET_S:g} s needs a fast path: run the notebook once before the session, "
        "then run it with <code>FAST_PATH = True</code> and that cell loads the stored, hash-checked result.</p>"
    )
    for nb, page in pages.items():
        if not page["timings"]:
            continue
        total = rows_by_nb.get(nb, {}).get("seconds")
        parts.append(f"<details><summary>{e(nb)}</summary><table><tr><th>cell</th><th>seconds</th>")
        parts.append("<th>share of notebook</th><th>live fast path</th><th>first line</th></tr>")
        for t in page["timings"]:
            share = f"{100 * t['seconds'] / total:.0f} %" if total else ""
            over = t["seconds"] > LIVE_BUDGET_S
            fast = "yes" if t["fast_path"] else ("<b>missing</b>" if over else "")
            parts.append(
                f"<tr><td class='num'>{t['cell']}</td><td class='num'>{t['seconds']:.1f}</td>"
                f"<td class='num'>{share}</td><td>{fast}</td><td><code>{e(t['first_line'])}</code></td></tr>"
            )
        parts.append("</table></details>")
    if slides:
        parts.append("<h2>Slides</h2><ul>")
        parts += [f'<li><a href="{e(href)}">{e(label)}</a></li>' for label, href in slides]
        parts.append("</ul>")
    parts.append("<h2>Benchmark results</h2>")
    if bench:
        parts.append(
            "<ul>" + "".join(f'<li><a href="{e(h)}">{e(lab)}</a></li>' for lab, h in bench) + "</ul>"
        )
    else:
        parts.append("<p class='missing'>none recorded yet (<code>make bench</code>)</p>")
    parts.append('<p><a href="run_table.json">run_table.json</a></p></body></html>\n')
    return "\n".join(parts)


def build_site(out_dir: Path, site_dir: Path | None = None) -> Path:
    """Render the run in `out_dir` as an offline site; return the path of its index.html."""
    import nbformat

    out_dir = Path(out_dir)
    site = Path(site_dir) if site_dir is not None else SITE_DIR
    table_path = out_dir / "run_table.json"
    if not table_path.is_file():
        raise FileNotFoundError(
            f"no run table at {table_path}: run tools/run_course.py --out {out_dir} first"
        )
    table = json.loads(table_path.read_text())
    site.mkdir(parents=True, exist_ok=True)
    for name in OWNED:
        target = site / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    for old in site.glob("*.html"):
        old.unlink()
    urls = copy_assets(site / "vendor")
    (site / "assets").mkdir(exist_ok=True)
    (site / "assets" / "colab-badge.svg").write_text(BADGE_SVG)
    shutil.copy2(table_path, site / "run_table.json")

    exporter = _exporter(urls)
    order = {m.notebook: i for i, m in enumerate(MODULES)}
    notebooks = sorted(
        (out_dir / "notebooks").glob("*.ipynb"), key=lambda p: (order.get(p.name, len(order)), p.name)
    )
    pages: dict[str, dict[str, Any]] = {}
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        title = _title(nb, path.stem)
        timings = cell_timings(nb)
        body, _ = exporter.from_notebook_node(_offline_notebook(nb), resources={"metadata": {"name": title}})
        (site / f"{path.stem}.html").write_text(_site_links(body), encoding="utf-8")
        pages[path.name] = {"href": f"{path.stem}.html", "title": title, "timings": timings}

    index = site / "index.html"
    index.write_text(_index_html(table, pages, _benchmark_pages(site), _slides_links(site)), encoding="utf-8")
    problems = check_site(site)
    if problems:
        raise RuntimeError("the site would reach the network when viewed:\n  " + "\n  ".join(problems))
    return index


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tools/build_site.py <run output dir, e.g. build/ci>")
    print(build_site((ROOT / sys.argv[1]).resolve()))
