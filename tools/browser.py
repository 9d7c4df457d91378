"""Headless Chromium for the offline checks: decks and site pages rendered, every request recorded.

Debian's `chromium` (/usr/bin/chromium) driven by Python playwright (its wheel carries the driver; no
`playwright install`, no downloaded browser). Where playwright is missing, `cli_render` drives the same
binary with `--headless --screenshot --dump-dom --log-net-log` instead.

    python tools/browser.py build/slides/04_memory_and_mixed_precision.html   # report + title screenshot
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # resolve no host at all: nothing can leave, even by mistake
]
VIEWPORT = {"width": 1280, "height": 720}
LOCAL_SCHEMES = ("file:", "data:")  # the only requests a course page may make


def ensure_chromium() -> Path:
    """The Chromium binary; installed with apt-get when missing and running as root, else a clear error."""
    if CHROMIUM.is_file():
        return CHROMIUM
    apt = shutil.which("apt-get")
    if os.geteuid() == 0 and apt:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run([apt, "install", "-y", "-q", "chromium"], env=env, check=False).returncode:
            subprocess.run([apt, "update", "-q"], env=env, check=True)
            subprocess.run([apt, "install", "-y", "-q", "chromium"], env=env, check=True)
        if CHROMIUM.is_file():
            return CHROMIUM
    raise RuntimeError(
        f"Chromium not found at {CHROMIUM}: install it with `sudo apt-get install -y chromium` "
        "(Debian/Ubuntu; `make browser-deps` does it as root) or set CHROMIUM=/path/to/chromium"
    )


def have_playwright() -> bool:
    """True when the playwright package imports."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


def external(urls: list[str]) -> list[str]:
    """The requests that would leave the machine (anything not file: or data:)."""
    return [u for u in urls if not u.startswith(LOCAL_SCHEMES)]


def pixel_spread(png: bytes) -> tuple[float, float]:
    """(standard deviation of grey levels 0-255, share of pixels that differ from the most common one)."""
    import numpy as np
    from PIL import Image

    grey = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)
    values, counts = np.unique(grey, return_counts=True)
    background = values[np.argmax(counts)]
    return float(grey.std()), float(np.mean(grey != background))


@dataclass
class Recorder:
    """Every request a page made; external ones are aborted (and stay recorded, so a test fails)."""

    urls: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        """Record every request of `page` and abort the non-local ones."""
        page.on("request", lambda req: self.urls.append(req.url))

        def route(r) -> None:
            if r.request.url.startswith(LOCAL_SCHEMES):
                r.continue_()
            else:
                r.abort()

        page.route("**/*", route)


@contextmanager
def chromium_page() -> Iterator[tuple[object, Recorder]]:
    """A fresh playwright page on Debian's Chromium (offline context) and its request recorder."""
    from playwright.sync_api import sync_playwright

    binary = ensure_chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(binary), args=LAUNCH_ARGS, headless=True)
        try:
            context = browser.new_context(viewport=VIEWPORT, service_workers="block")
            page = context.new_page()
            page.set_default_timeout(60_000)  # generous: the CI machine is shared and often loaded
            recorder = Recorder()
            recorder.attach(page)
            yield page, recorder
        finally:
            browser.close()


# JS run in a deck: visit every slide with Reveal.slide(i) and measure what is on it.
_SLIDE_REPORT = """async () => {
  const out = [];
  const n = Reveal.getTotalSlides();
  for (let i = 0; i < n; i++) {
    Reveal.slide(i);
    await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
    const s = Reveal.getCurrentSlide();
    const box = s.getBoundingClientRect();
    const imgs = Array.from(s.querySelectorAll('img'));
    const notes = s.querySelector('aside.notes');
    out.push({index: i, width: box.width, height: box.height,
              text: (s.innerText || '').trim().length,
              title: (s.querySelector('h1, h2') || {}).innerText || '',
              images: imgs.length, images_ok: imgs.filter(im => im.complete && im.naturalWidth > 0).length,
              fits: s.scrollHeight <= Reveal.getConfig().height + 4,
              notes: notes ? notes.textContent.trim().length : 0,
              notes_hidden: notes ? getComputedStyle(notes).display === 'none' : true});
  }
  Reveal.slide(0);
  return {total: n, slides: out};
}"""


def deck_report(page, deck: Path, screenshot: Path | None = None) -> dict:
    """Open a deck, screenshot its title slide, visit every slide; return the measurements."""
    page.goto(deck.resolve().as_uri(), wait_until="load")
    page.wait_for_function("() => window.Reveal && Reveal.isReady()")
    png = page.screenshot()
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        screenshot.write_bytes(png)
    report = page.evaluate(_SLIDE_REPORT)
    report["title_spread"] = pixel_spread(png)
    report["sections_in_dom"] = page.evaluate(
        "() => document.querySelectorAll('.reveal .slides > section').length"
    )
    return report


@dataclass
class CliRender:
    """What the plain `chromium --headless` fallback saw of one page."""

    png: bytes
    dom: str
    urls: list[str]


def cli_render(page: Path, window: tuple[int, int] = (1280, 720), budget_ms: int = 4000) -> CliRender:
    """Render a local page with the Chromium command line: screenshot, DOM after scripts, requested URLs."""
    binary = ensure_chromium()
    uri = page.resolve().as_uri()
    with tempfile.TemporaryDirectory() as tmp:
        shot, netlog = Path(tmp) / "shot.png", Path(tmp) / "net.json"
        base = [str(binary), "--headless", *LAUNCH_ARGS, f"--user-data-dir={tmp}/profile",
                f"--window-size={window[0]},{window[1]}", f"--virtual-time-budget={budget_ms}"]  # fmt: skip
        subprocess.run(
            [*base, f"--screenshot={shot}", f"--log-net-log={netlog}", uri],
            capture_output=True,
            timeout=120,
            check=True,
        )
        dom = subprocess.run(
            [*base, "--dump-dom", uri], capture_output=True, text=True, timeout=120, check=True
        )
        return CliRender(shot.read_bytes(), dom.stdout, _netlog_urls(netlog))


def _netlog_urls(path: Path) -> list[str]:
    """URLs of the requests the page made, from a Chromium net log.

    Chromium's own background requests (clock check, spell-check dictionary, component update: the command
    line makes them even with the flags above) start with initiator "not an origin"; a page's requests,
    and the navigation to the local file itself, are kept.
    """
    text = path.read_text(errors="replace").rstrip().rstrip(",")
    if not text.endswith("}"):
        text += "]}"  # a log cut short by exit lacks its closing brackets
    try:
        events = json.loads(text).get("events", [])
    except json.JSONDecodeError:
        events = []
    urls = []
    for ev in events:
        params = ev.get("params") or {}
        url = params.get("url")
        if "initiator" not in params or not isinstance(url, str):
            continue  # only URL_REQUEST_START_JOB events carry both
        if params["initiator"] != "not an origin" or url.startswith(LOCAL_SCHEMES):
            urls.append(url)
    return urls


def main(argv: list[str]) -> int:
    """Report on one deck."""
    if len(argv) != 1:
        print("usage: python tools/browser.py <deck.html>", file=sys.stderr)
        return 2
    deck = Path(argv[0])
    with chromium_page() as (page, rec):
        report = deck_report(page, deck, Path("build/screenshots") / f"{deck.stem}.png")
    print(json.dumps({**report, "requests": len(rec.urls), "external": external(rec.urls)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
