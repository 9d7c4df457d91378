"""Build the live-session slide decks: one self-contained reveal.js HTML file per module.

    python slides/build_slides.py                 # every deck -> build/slides/NN_name.html (what `make slides` runs)
    python slides/build_slides.py --only 04       # one deck
    python slides/build_slides.py --run build/ci  # take the headline metrics from that run's run_table.json

Each deck's source is `slides/deck_NN_name.py` with `build(d: DeckBuilder)`. A deck never types a number:
it records every number with `d.value(key, raw, fmt)` from a `workshop_utils` call (the same code as the
notebook) and writes `{key}` where the number goes; `tests/test_slides.py` checks that no other number
appears in the text and recomputes the values. Figures are matplotlib PNGs embedded as base64.

reveal.js (pinned version and sha512, tools/vendor_assets.py, fetched once from the npm registry into
artifacts/vendor/) is inlined, CSS and JS, so a deck opens from disk anywhere with no network. Speaker notes
are `<aside class="notes">`: press S in the deck for the speaker view.
"""

from __future__ import annotations

import argparse
import base64
import html
import importlib.util
import io
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SLIDES_SRC = Path(__file__).resolve().parent
OUT_DIR = ROOT / "build" / "slides"
RUN_DIRS = (
    ROOT / "build" / "course",
    ROOT / "build" / "ci",
)  # where headline metrics are looked up, in order
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
from vendor_assets import REVEAL, ensure_asset  # noqa: E402

from workshop_utils.course import MODULES  # noqa: E402

NOT_RUN = "not run yet"
_PLACEHOLDER = re.compile(r"\{([a-z0-9_]+)\}")


@dataclass(frozen=True)
class Value:
    """One number shown on a slide: the raw value from the package and the text the slide prints."""

    raw: Any
    text: str


@dataclass
class Slide:
    """One slide: title, bullets, optional figure/table, speaker notes. Text may hold `{key}` placeholders."""

    title: str
    bullets: list[str] = field(default_factory=list)
    notes: str = ""
    figure: str | None = None  # base64 PNG
    table: tuple[list[str], list[list[str]]] | None = None  # (header, rows), cells already formatted


@dataclass
class Deck:
    """A built deck: its slides (templates), the values they show, and where it was written."""

    number: int
    stem: str  # e.g. "04_memory_and_mixed_precision"
    title: str
    summary: str
    slides: list[Slide]
    values: dict[str, Value]
    path: Path | None = None

    def render_text(self, template: str) -> str:
        """A template with every `{key}` replaced by its value's text (unknown keys are an error)."""

        def sub(m: re.Match) -> str:
            if m.group(1) not in self.values:
                raise KeyError(f"deck {self.stem}: no value {m.group(1)!r} (record it with d.value first)")
            return self.values[m.group(1)].text

        return _PLACEHOLDER.sub(sub, template)

    def templates(self) -> list[str]:
        """Every template string of the deck (titles, bullets, notes), for the no-typed-numbers check."""
        out = []
        for s in self.slides:
            out += [s.title, *s.bullets, s.notes]
        return out


class DeckBuilder:
    """What a deck source gets: record values, add slides, draw figures, read the run table."""

    def __init__(self, number: int, run_dir: Path | None) -> None:
        self.module = next(m for m in MODULES if m.number == number)
        self.run_dir = run_dir
        self.values: dict[str, Value] = {}
        self.slides: list[Slide] = []

    def value(self, key: str, raw: Any, fmt: str | Callable[[Any], str] = "{}") -> str:
        """Record a number (from a package call) under `key`; return its `{key}` placeholder."""
        if not _PLACEHOLDER.fullmatch("{" + key + "}"):
            raise ValueError(f"value key must match [a-z0-9_]+, got {key!r}")
        if key in self.values:
            raise ValueError(f"value {key!r} recorded twice")
        text = fmt(raw) if callable(fmt) else fmt.format(raw)
        self.values[key] = Value(raw, text)
        return "{" + key + "}"

    def slide(self, title: str, bullets: list[str] = (), notes: str = "", figure=None, table=None) -> None:
        """Append a slide; `figure` is a matplotlib Figure (closed after encoding)."""
        self.slides.append(Slide(title, list(bullets), notes, _png_base64(figure) if figure else None, table))

    def headline(self) -> str:
        """Placeholder for this module's run-table headline metric, or the words "not run yet"."""
        stem = Path(self.module.notebook).stem
        row = headline_row(stem, self.run_dir)
        if row is None:
            return self.value("headline", None, lambda _: NOT_RUN)
        metric, run = row
        self.value("headline_name", metric["name"], "{}")
        self.value("headline_run", run, "{}")
        return self.value("headline", metric["value"], lambda v: f"{v:.4g} {metric.get('unit', '')}".strip())

    def run_table_slide(self, notes: str = "") -> None:
        """The closing slide: this module's headline metric from the latest course run."""
        ph = self.headline()
        if "headline_name" in self.values:
            bullets = [f"{{headline_name}} = {ph}", "measured in {headline_run}"]
        else:
            bullets = [f"headline metric: {ph}", "run `make course` (or `make notebooks`) to measure it"]
        self.slide(
            "In the notebook", bullets, notes or "The run table of the course site has the same number."
        )

    def deck(self) -> Deck:
        """The finished deck."""
        m = self.module
        return Deck(m.number, Path(m.notebook).stem, m.title, m.summary, self.slides, self.values)


def headline_row(stem: str, run_dir: Path | None = None) -> tuple[dict, str] | None:
    """(metric, "run <dir> (<profile> profile, <date>)") of a notebook's ok row in the first run table found."""
    for d in [run_dir] if run_dir is not None else RUN_DIRS:
        path = Path(d) / "run_table.json"
        if not path.is_file():
            continue
        table = json.loads(path.read_text())
        for row in table.get("rows", []):
            if row.get("notebook") == f"{stem}.ipynb" and row.get("status") == "ok" and row.get("metric"):
                where = f"{Path(d).name} run ({table.get('profile', '?')} profile, {table.get('date', '?')})"
                return row["metric"], where
    return None


def _png_base64(fig) -> str:
    """A matplotlib figure as base64 PNG (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


# ------------------------------------------------------------------------------------------------
# HTML
# ------------------------------------------------------------------------------------------------
DECK_CSS = """
.reveal { font-size: 30px; }
.reveal h1 { font-size: 1.9em; } .reveal h2 { font-size: 1.3em; }
.reveal h1, .reveal h2 { text-transform: none; }
.reveal ul { display: block; } .reveal li { margin: 0.25em 0; }
.reveal img.figure { max-height: 48vh; max-width: 92%; margin: 0.2em auto; background: #fff; }
.reveal table { font-size: 0.62em; margin: 0.3em auto; }
.reveal table th, .reveal table td { padding: 0.15em 0.5em; border-bottom: 1px solid #ccc; }
.reveal .subtitle { color: #555; font-size: 0.8em; } .reveal .small { font-size: 0.6em; color: #666; }
.reveal code { font-size: 0.9em; }
"""


def _inline_script(js: str) -> str:
    """JS safe to put inside <script> (no premature end tag)."""
    return js.replace("</script", "<\\/script")


def _md_inline(text: str) -> str:
    """Escape text; `code` spans become <code> (the only markup a bullet may use)."""
    parts = text.split("`")
    return "".join(f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p) for i, p in enumerate(parts))


def _section(deck: Deck, slide: Slide, index: int) -> str:
    r = deck.render_text
    out = [f'<section data-slide="{index}">', f"<h2>{_md_inline(r(slide.title))}</h2>"]
    if slide.bullets:
        out.append("<ul>" + "".join(f"<li>{_md_inline(r(b))}</li>" for b in slide.bullets) + "</ul>")
    if slide.table:
        head, rows = slide.table
        out.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>")
        out += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows]
        out.append("</table>")
    if slide.figure:
        alt = html.escape(r(slide.title))
        out.append(f'<img class="figure" alt="{alt}" src="data:image/png;base64,{slide.figure}">')
    out.append(f'<aside class="notes">{_md_inline(r(slide.notes))}</aside></section>')
    return "\n".join(out)


def render_html(deck: Deck) -> str:
    """The deck as one self-contained reveal.js page."""
    src = ensure_asset(REVEAL)
    read = lambda rel: (src / rel).read_text(encoding="utf-8")  # noqa: E731
    title = f"{deck.number:02d} · {deck.title}"
    title_slide = (
        f'<section data-slide="0"><h1>{html.escape(title)}</h1>'
        f'<p class="subtitle">{html.escape(deck.summary)}</p>'
        '<p class="small">LLM Pre-training and Fine-tuning · live-session deck · press S for speaker notes</p>'
        '<aside class="notes">Open the notebook next to this deck; every number here is computed by the same '
        "workshop_utils code as the notebook.</aside></section>"
    )
    sections = [title_slide] + [_section(deck, s, i + 1) for i, s in enumerate(deck.slides)]
    return "\n".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1.0">',
            f"<title>{html.escape(title)}</title>",
            f"<!-- reveal.js {REVEAL.version} (MIT, vendored from the npm registry, {REVEAL.integrity}) -->",
            f"<style>{read('dist/reveal.css')}</style>",
            f"<style>{read('dist/theme/white.css')}</style>",
            f"<style>{DECK_CSS}</style></head><body>",
            '<div class="reveal"><div class="slides">',
            *sections,
            "</div></div>",
            f"<script>{_inline_script(read('dist/reveal.js'))}</script>",
            f"<script>{_inline_script(read('dist/plugin/notes.js'))}</script>",
            "<script>Reveal.initialize({hash: true, slideNumber: 'c/t', transition: 'none', "
            "plugins: [RevealNotes]});</script>",
            "</body></html>\n",
        ]
    )


# ------------------------------------------------------------------------------------------------
# Decks
# ------------------------------------------------------------------------------------------------
def deck_sources() -> list[Path]:
    """slides/deck_NN_*.py, in module order."""
    return sorted(SLIDES_SRC.glob("deck_[0-9][0-9]_*.py"))


def build_deck(source: Path, run_dir: Path | None = None) -> Deck:
    """Run one deck source and return its Deck (nothing written)."""
    number = int(source.stem.split("_")[1])
    spec = importlib.util.spec_from_file_location(source.stem, source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    builder = DeckBuilder(number, run_dir)
    module.build(builder)
    deck = builder.deck()
    if deck.stem != "_".join(source.stem.split("_")[1:]):
        raise ValueError(f"{source.name} does not match its module's notebook {deck.stem}.ipynb")
    return deck


def build_all(out_dir: Path = OUT_DIR, only: str | None = None, run_dir: Path | None = None) -> list[Deck]:
    """Build every deck (or those whose file name contains `only`) into `out_dir`."""
    import matplotlib

    matplotlib.use("Agg")
    sources = [s for s in deck_sources() if only is None or only in s.name]
    if not sources:
        raise ValueError(f"no deck source matches {only!r}; have: {[s.name for s in deck_sources()]}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    decks = []
    for source in sources:
        deck = build_deck(source, run_dir)
        deck.path = out_dir / f"{deck.stem}.html"
        deck.path.write_text(render_html(deck), encoding="utf-8")
        decks.append(deck)
    return decks


def main(argv: list[str] | None = None) -> int:
    """CLI: build the decks and list them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(OUT_DIR))
    parser.add_argument("--only", default=None, help="build the decks whose file name contains this")
    parser.add_argument(
        "--run", default=None, help="run dir with run_table.json (default: build/course, build/ci)"
    )
    args = parser.parse_args(argv)
    run = (ROOT / args.run).resolve() if args.run else None
    for deck in build_all(Path(args.out), args.only, run):
        size = deck.path.stat().st_size / 1e6
        print(f"{deck.path.relative_to(ROOT) if deck.path.is_relative_to(ROOT) else deck.path}  "
              f"{len(deck.slides) + 1} slides, {len(deck.values)} values, {size:.1f} MB")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
