"""The decks and the course site in headless Chromium: visible, every slide rendered, no request off the machine.

Decks: build/slides (from `make slides`) when it is newer than every deck source, else built here into a
temporary folder. Title-slide screenshots go to build/screenshots/. The site check is marked `course`: it
runs after `make notebooks` has built build/site. Chromium is Debian's (`make browser-deps` installs it).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "slides"))
import browser  # noqa: E402
import build_slides  # noqa: E402

from workshop_utils.course import MODULES  # noqa: E402

SCREENSHOTS = ROOT / "build" / "screenshots"
SITE = ROOT / "build" / "site"
STEMS = [Path(m.notebook).stem for m in MODULES]


@pytest.fixture(scope="module")
def deck_dir(tmp_path_factory) -> Path:
    built = build_slides.OUT_DIR
    sources = [*build_slides.deck_sources(), Path(build_slides.__file__)]
    newest_source = max(p.stat().st_mtime for p in sources)
    decks = [built / f"{s}.html" for s in STEMS]
    if all(d.is_file() and d.stat().st_mtime >= newest_source for d in decks):
        return built
    out = tmp_path_factory.mktemp("slides")
    build_slides.build_all(out)
    return out


@pytest.fixture(scope="module")
def reports(deck_dir) -> dict:
    if not browser.have_playwright():
        pytest.fail("playwright is not installed: `.venv/bin/pip install playwright==1.65.2` (the dev extra)")
    out = {}
    with browser.chromium_page() as (page, rec):
        for stem in STEMS:
            start = len(rec.urls)
            report = browser.deck_report(page, deck_dir / f"{stem}.html", SCREENSHOTS / f"{stem}.png")
            report["requests"] = rec.urls[start:]
            out[stem] = report
    return out


@pytest.mark.parametrize("stem", STEMS)
def test_title_slide_is_visible(reports, stem) -> None:
    spread, ink = reports[stem]["title_spread"]
    assert spread > 5 and 0.005 < ink < 0.6, f"{stem}: title slide looks blank ({spread=:.1f}, {ink=:.3f})"
    assert (SCREENSHOTS / f"{stem}.png").stat().st_size > 5_000
    first = reports[stem]["slides"][0]
    assert first["title"].lower().startswith(stem[:2]), first["title"]


@pytest.mark.parametrize("stem", STEMS)
def test_every_slide_renders(reports, stem) -> None:
    r = reports[stem]
    assert r["total"] == r["sections_in_dom"] == len(r["slides"]) >= 3
    for s in r["slides"]:
        where = f"{stem} slide {s['index']} ({s['title']!r})"
        assert s["width"] > 0 and s["height"] > 0, f"{where}: empty box"
        assert s["text"] > 10 and s["title"], f"{where}: no text"
        assert s["images_ok"] == s["images"], f"{where}: a figure did not decode"
        assert s["fits"], f"{where}: content taller than the slide"
        assert s["notes"] > 0 and s["notes_hidden"], f"{where}: speaker notes missing or visible"


@pytest.mark.parametrize("stem", STEMS)
def test_no_request_leaves_the_machine(reports, stem) -> None:
    requests = reports[stem]["requests"]
    assert requests, f"{stem}: no request recorded at all (the recorder is not attached)"
    assert browser.external(requests) == [], f"{stem}: requests off the machine"


def test_recorder_catches_an_external_request(tmp_path) -> None:
    """The check can fail: a page loading an image from the network is recorded (and aborted)."""
    page_path = tmp_path / "leak.html"
    page_path.write_text('<html><body><h1>x</h1><img src="https://example.invalid/a.png"></body></html>')
    with browser.chromium_page() as (page, rec):
        page.goto(page_path.as_uri(), wait_until="load")
    assert browser.external(rec.urls) == ["https://example.invalid/a.png"]


def test_cli_fallback_renders_a_deck(deck_dir) -> None:
    """Without playwright: chromium --headless screenshot, DOM after scripts, and its net log."""
    r = browser.cli_render(deck_dir / "04_memory_and_mixed_precision.html")
    spread, ink = browser.pixel_spread(r.png)
    assert spread > 5 and ink > 0.005
    assert r.dom.count("<section") >= 4
    assert re.search(r'<div class="reveal [^"]*\bready\b', r.dom), "Reveal did not initialise"
    assert browser.external(r.urls) == []


def test_cli_fallback_records_an_external_request(tmp_path) -> None:
    page = tmp_path / "leak.html"
    page.write_text('<html><body><h1>x</h1><img src="https://example.invalid/a.png"></body></html>')
    assert browser.external(browser.cli_render(page, budget_ms=1000).urls) == [
        "https://example.invalid/a.png"
    ]


@pytest.mark.course
def test_site_pages_in_chromium_stay_offline() -> None:
    index = SITE / "index.html"
    assert index.is_file(), "build/site/index.html missing: `make notebooks` builds it"
    pages = [
        index,
        *sorted(p for p in SITE.glob("*.html") if p != index),
        *sorted(SITE.glob("slides/*.html"))[:1],
    ]
    with browser.chromium_page() as (page, rec):
        for p in pages:
            page.goto(p.as_uri(), wait_until="load")
            assert page.inner_text("body").strip(), f"{p.name}: blank page"
    assert browser.external(rec.urls) == [], "the site requested something off the machine"
    assert any(u.startswith("file:") for u in rec.urls)
