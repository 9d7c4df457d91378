"""Digit lint: flag numbers typed into notebook markdown and slide text that no allow-list rule explains.

    python tools/lint_digits.py            # every finding (file, cell or slide, the number, its sentence); exit 1 if any
    python tools/lint_digits.py --list     # every number seen, with the rule that allowed it (or FLAGGED)
    python tools/lint_digits.py --no-slides --only 04   # notebooks whose file name contains 04, no decks

House rule: a number in prose is computed by code. A number that depends on the profile ("229,696
parameters", "a 2-layer model", "64-wide") belongs in a printed line of a code cell (or
`display(Markdown(...))`), not in markdown. What may stay typed is listed once, in the table below:

- SOURCES: a sentence that names its source (a citation "Hoffmann et al. 2022", "(Raffel et al., 2020)",
  an arXiv id, a paper's "Table 3" / "Fig. 1" / "§5.1" / "App. D.2", a file under data/published/, IEEE 754)
  may quote published figures: every number in that sentence is allowed.
- ALLOWED: spans whose digits are names or references, not claims: years in a citation or in parentheses,
  arXiv ids, section/table/figure references, module and notebook numbers, names with a spaced number
  ("Llama 3", "bitsandbytes 0.50", "A100 80 GB"), "4-bit"-style format names, ids ("rank 0", "seed 0").
- LINE_PREFIXES: markdown heading and list numbering ("## 3. Title", "1. item") is structure.

What is not scanned: fenced code blocks, link targets, images, HTML tags, slide placeholders `{key}`
(their values are computed, see slides/build_slides.py). Code spans (`...`) and math ($...$) are code and
formulas, not prose, so they are skipped, with one exception: a span that is nothing but a number
(`64`, $229{,}696$) is a typed value in disguise and is checked like prose. Digits glued to letters are
names ("GPT-2", "fp16", "7B", "H100", "6ND", "16Ψ"); digits followed by "-word" are quantities ("2-layer")
unless a rule allows them ("4-bit").
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SLIDES = ROOT / "slides"

_YEAR = r"(?:19|20)\d\d[a-z]?"
_MONTHS = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?"
_PAPER_REF = r"(?:Tables?|Tab\.|Figures?|Figs?\.|Appendix|App\.|Eqs?\.|Equations?|§)\s*\(?[A-Z]?\d+(?:\.\d+)*"

# (name, regex, why). A sentence matching any of these may quote published numbers.
SOURCES: tuple[tuple[str, str, str], ...] = (
    ("citation", rf"\bet al\.?,?\s*\(?{_YEAR}\b", "author-year citation: the figure's source"),
    ("citation", rf"\([A-Z][\w'’\-]+(?: (?:and|&) [A-Z][\w'’\-]+)?,? {_YEAR}[,;)]", "(Author 2022) citation"),
    ("arxiv", r"\barXiv:?\s?\d{4}\.\d{4,5}(?:v\d+)?", "arXiv id: the figure's source"),
    ("paper ref", _PAPER_REF, "a paper's table / figure / section / appendix / equation"),
    ("published file", r"data/published/", "the course's file of published figures, each with its source"),
    ("standard", r"\bIEEE 754\b", "floating-point formats are defined by IEEE 754"),
)

# (name, regex, why). Digits inside a match are names or references, not claims.
ALLOWED: tuple[tuple[str, str, str], ...] = (
    ("year", rf"\({_YEAR}(?=[),;])|\b{_YEAR}\)", "a year in parentheses, as in a citation"),
    ("year", rf"\bet al\.?,?\s*\(?{_YEAR}\b", "a year after et al."),
    ("year", rf"\b[A-Z][\w'’\-]+,?\s+{_YEAR}\b(?![.,]\d)", "Author 2022"),
    ("year", rf"\b{_MONTHS}\s+{_YEAR}\b", "a date"),
    ("arxiv", r"\barXiv:?\s?\d{4}\.\d{4,5}(?:v\d+)?", "an arXiv id"),
    ("reference", _PAPER_REF, "a table / figure / section / appendix / equation reference"),
    (
        "reference",
        r"\bApproach(?:es)?\s+\d(?:\s*(?:,|and|or)\s*\d)*\b",
        "Chinchilla's Approaches 1-3 (a paper's names)",
    ),
    (
        "reference",
        r"(?i)\b(?:sections?|exercises?|solutions?)\s+\d+[a-z]?(?:\.\d+)*(?:\s*(?:,|and|or|–|-)\s*\d+[a-z]?)*",
        "section / exercise N of this notebook",
    ),
    (
        "module",
        r"(?i)\b(?:modules?|notebooks?|decks?)\s+\d{2}\b(?:\s*(?:,|and|or|/|–|-|to)\s*\d{2}\b)*",
        "module / notebook / deck numbers are names",
    ),
    (
        "name",
        r"\b(?:Llama|LLaMA|GPT|Qwen|Mistral|Gemma|Phi|Python|CUDA|PyTorch|torch|transformers|PEFT|peft"
        r"|TRL|trl|accelerate|bitsandbytes|reveal\.js|MathJax)\s+v?\d+(?:\.\d+)*\b",
        "a model or library name with its version",
    ),
    (
        "name",
        r"\b(?:A100|H100|H200|A10G?|L4|L40S?|V100|T4|RTX\s?\d{4})\s+\d+\s?GB\b",
        "a GPU product with its memory variant",
    ),
    ("name", r"\b(?:1|2|3|4|8|16|32|64)-bit\b", "number formats: 4-bit, 8-bit, 16-bit, 32-bit"),
    ("id", r"\b(?:rank|seed|example|node|worker)\s+\d\b|\bstep 0\b", "identifiers, not quantities"),
)

# Markdown structure: heading numbers ("## 3. Title", "# 04 · Title", "### 5.1 Name") and list numbers.
LINE_PREFIXES: tuple[str, ...] = (r"^\s{0,3}#{1,6}\s+\d+[a-z]?(?:\.\d+)*\.?(?=\s)", r"^\s*\d+[.)](?=\s)")

NUMBER = re.compile(r"\d+(?:[.,]\d+)*(?:[eE][-+−]?\d+)?[⁰¹²³⁴⁵⁶⁷⁸⁹⁻]*")
_SOURCES = [(n, re.compile(p), w) for n, p, w in SOURCES]
_ALLOWED = [(n, re.compile(p), w) for n, p, w in ALLOWED]
_PREFIXES = [re.compile(p) for p in LINE_PREFIXES]
_PROTECT = re.compile(r"`[^`\n]+`|\$\$.+?\$\$|\$(?!\s)[^$\n]+?(?<!\s)\$(?!\d)|\{[a-z0-9_]+\}", re.S)
_ABBREV = ("al.", "e.g.", "i.e.", "Fig.", "Figs.", "Eq.", "Eqs.", "App.", "Tab.", "vs.", "cf.", "Sec.", "No.")
_PUA = 0xE000  # private-use characters stand in for protected spans (no digits, no letters)


@dataclass(frozen=True)
class Number:
    """One number seen in one sentence, and the rule that allows it (None: flagged)."""

    file: str
    where: str
    sentence: str
    number: str
    rule: str | None

    def __str__(self) -> str:
        """file · where: "number" in: sentence."""
        return f'{self.file} · {self.where}: "{self.number}" in: {self.sentence}'


def _strip_markup(md: str) -> str:
    """Markdown without fenced code, HTML comments/tags, images and link targets (link text stays)."""
    md = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", md, flags=re.S | re.M)
    md = re.sub(r"<!--.*?-->", "", md, flags=re.S)
    md = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", md)
    md = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", md)
    md = re.sub(r"https?://\S+", "", md)
    parts = re.split(r"(`[^`\n]+`)", md)  # HTML tags outside code spans only: `<s0>` is code
    return "".join(p if i % 2 else re.sub(r"</?[A-Za-z][^>]*>", "", p) for i, p in enumerate(parts))


def blocks(md: str) -> list[str]:
    """Paragraphs, list items, headings and table rows of markdown, each joined to one line, numbering removed."""
    out: list[list[str]] = []
    for raw in _strip_markup(md).splitlines():
        line = raw
        for p in _PREFIXES:
            line = p.sub("", line, count=1)
        starts = not raw.strip() or raw.lstrip().startswith(("#", "|", "- ", "* ", "+ ")) or line != raw
        if not raw.strip():
            out.append([])
        elif starts or not out:
            out.append([line.strip()])
        else:
            out[-1].append(line.strip())
        if raw.lstrip().startswith(("#", "|")):
            out.append([])
    return [" ".join(b) for b in out if b and " ".join(b).strip()]


def sentences(block: str) -> list[str]:
    """A block split into sentences (not after "et al.", "e.g.", "Fig." ...; code spans kept whole)."""
    protected, spans = _protect(block)
    parts, start = [], 0
    for m in re.finditer(r"(?<=[.!?])\s+(?=[A-Z*_(\[\"“\ue000-\uf8ff])", protected):
        if protected[: m.start()].endswith(_ABBREV):
            continue
        parts.append(protected[start : m.start()])
        start = m.end()
    parts.append(protected[start:])
    return [_restore(p, spans).strip() for p in parts if p.strip()]


def _protect(text: str) -> tuple[str, list[str]]:
    """Replace code spans, math and `{key}` placeholders by private-use characters; return text and spans."""
    spans: list[str] = []

    def sub(m: re.Match) -> str:
        spans.append(m.group(0))
        return chr(_PUA + len(spans) - 1)

    return _PROTECT.sub(sub, text), spans


def _restore(text: str, spans: list[str]) -> str:
    """Undo _protect."""
    return re.sub(r"[\ue000-\uf8ff]", lambda m: spans[ord(m.group(0)) - _PUA], text)


def _is_number_at(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] stands alone as a number (not part of a name such as GPT-2, fp16, 7B)."""
    before = text[start - 1] if start else " "
    before2 = text[start - 2] if start > 1 else " "
    after = text[end] if end < len(text) else " "
    after2 = text[end + 1] if end + 1 < len(text) else " "
    if before.isalnum() or before in "_.{\\/^#@" or (before in "-–−" and before2.isalnum()):
        return False
    if after == "x" and not after2.isalpha():
        return True  # a multiplier: "10x"
    return not (after.isalnum() or after in "_}")


def _bare_span(span: str) -> str | None:
    """The number a code/math span consists of, if it is nothing but a number (else None)."""
    inner = span.strip("`$").replace("{,}", ",").replace("\\,", ",").strip()
    m = NUMBER.fullmatch(inner.rstrip("% "))
    return m.group(0) if m else None


def scan_sentence(sentence: str) -> Iterator[tuple[str, str | None]]:
    """(number, allowing rule or None) for every number in one sentence."""
    source = next((n for n, rx, _ in _SOURCES if rx.search(sentence)), None)
    protected, spans = _protect(sentence)
    allowed = [(m.span(), n) for n, rx, _ in _ALLOWED for m in rx.finditer(protected)]
    for m in NUMBER.finditer(protected):
        if not _is_number_at(protected, *m.span()):
            continue
        rule = next((n for (a, b), n in allowed if a <= m.start() and m.end() <= b), None)
        yield m.group(0), rule or source
    for span in spans:
        if not span.startswith("{") and _bare_span(span) is not None:
            yield span, source


def scan_text(text: str, file: str, where: str, markdown: bool = True) -> list[Number]:
    """Every number in a piece of text (markdown, or a slide template), with its verdict."""
    units = blocks(text) if markdown else [" ".join(text.split())]
    return [
        Number(file, where, s, n, rule) for b in units for s in sentences(b) for n, rule in scan_sentence(s)
    ]


def flagged(text: str) -> list[str]:
    """The numbers the lint flags in one markdown string (for tests and quick checks)."""
    return [n.number for n in scan_text(text, "<text>", "-") if n.rule is None]


def scan_notebook(path: Path) -> list[Number]:
    """Every number in the markdown cells of one notebook ("cell N" is the index in nb.cells)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
    return [
        n
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "markdown"
        for n in scan_text(cell.source, rel, f"cell {i}")
    ]


def _load_build_slides():
    """slides/build_slides.py as a module (it is a script folder, not a package)."""
    import importlib.util

    if "build_slides" in sys.modules:
        return sys.modules["build_slides"]
    spec = importlib.util.spec_from_file_location("build_slides", SLIDES / "build_slides.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_slides"] = module
    spec.loader.exec_module(module)
    return module


def scan_decks(only: str | None = None) -> list[Number]:
    """Every number in the static text of every deck: titles, bullets and notes (Deck.templates' text)."""
    import matplotlib

    matplotlib.use("Agg")
    bs = _load_build_slides()
    out: list[Number] = []
    for source in bs.deck_sources():
        if only and only not in source.name:
            continue
        deck = bs.build_deck(source)
        rel = source.relative_to(ROOT).as_posix()
        for i, s in enumerate(deck.slides, start=1):
            fields = [
                ("title", s.title),
                *[(f"bullet {j}", b) for j, b in enumerate(s.bullets)],
                ("notes", s.notes),
            ]
            for name, text in fields:
                out += scan_text(text, rel, f"slide {i} {name}", markdown=False)
    return out


def scan_repo(only: str | None = None, slides: bool = True) -> list[Number]:
    """Every number in notebooks/*.ipynb markdown and (optionally) the slide decks' text."""
    out = [
        n for p in sorted(NOTEBOOKS.glob("*.ipynb")) if not only or only in p.name for n in scan_notebook(p)
    ]
    return out + (scan_decks(only) if slides else [])


def main(argv: list[str] | None = None) -> int:
    """CLI: print the findings (or with --list every number and its rule); exit 1 when something is flagged."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--list", action="store_true", help="every number seen, with the rule that allowed it"
    )
    parser.add_argument("--only", default=None, help="only notebooks/decks whose file name contains this")
    parser.add_argument(
        "--no-slides", action="store_true", help="skip the decks (building them takes seconds)"
    )
    args = parser.parse_args(argv)
    numbers = scan_repo(args.only, slides=not args.no_slides)
    bad = [n for n in numbers if n.rule is None]
    for n in numbers if args.list else bad:
        print(f"[{n.rule or 'FLAGGED'}] {n}" if args.list else n)
    print(f"{len(numbers)} numbers seen, {len(bad)} flagged", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
