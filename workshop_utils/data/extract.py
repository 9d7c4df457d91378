"""Stage 0-1: decode raw bytes safely, then extract the main text: HTML through trafilatura (as FineWeb), books
without their Project Gutenberg boilerplate."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .books import strip_gutenberg

MAX_DOC_BYTES = 2 * 2**20  # larger raw documents are rejected before any parsing (a 10 MB page is not text)


@dataclass(frozen=True)
class StageResult:
    """What a stage did to one document: the (possibly changed) text, keep or drop, and why."""

    text: str
    keep: bool
    reason: str = ""


def decode(raw: bytes | str | None, max_bytes: int = MAX_DOC_BYTES) -> StageResult:
    """Raw bytes -> text; drops empty, whitespace-only, oversize and invalid UTF-8 / binary input."""
    if not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ValueError(f"max_bytes must be a positive int, got {max_bytes!r}")
    if raw is None:
        return StageResult("", False, "empty")
    if isinstance(raw, str):
        raw = raw.encode("utf-8", errors="surrogatepass")
    if not isinstance(raw, (bytes, bytearray)):
        raise TypeError(f"raw must be bytes, str or None, got {type(raw).__name__}")
    if len(raw) > max_bytes:
        return StageResult("", False, "oversize")
    try:
        text = bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return StageResult("", False, "invalid_utf8")
    if "\x00" in text:
        return StageResult("", False, "binary")
    if not text.strip():
        return StageResult("", False, "empty" if not text else "whitespace_only")
    return StageResult(text, True)


@lru_cache(maxsize=1)
def _options():
    """trafilatura's settings, built once (precision mode, fast path, no comments/tables/dedup)."""
    from trafilatura.settings import DEFAULT_CONFIG, Extractor

    return Extractor(
        config=DEFAULT_CONFIG, output_format="txt", fast=True, precision=True, comments=False, tables=False
    )


def extract_main_text(html: str) -> str | None:
    """The main text of an HTML page (trafilatura, precision mode, fast path); None when nothing is found."""
    import trafilatura

    if not isinstance(html, str):
        raise TypeError(f"html must be str, got {type(html).__name__}")
    return trafilatura.extract(html, options=_options())  # the same as passing the settings each call


def extract(text: str, kind: str) -> StageResult:
    """Extraction stage: web pages go through trafilatura; books lose their Project Gutenberg header,
    licence and footer (cut at the START/END markers); code is already plain text."""
    if kind not in ("web", "book", "code"):
        raise ValueError(f"kind must be one of 'web', 'book', 'code', got {kind!r}")
    if kind == "book":
        body, _ = strip_gutenberg(text)  # no markers: the whole text is the book
        return StageResult(body, True) if body else StageResult("", False, "no_main_text")
    if kind == "code":
        return StageResult(text, True)
    out = extract_main_text(text)
    if out is None or not out.strip():
        return StageResult("", False, "no_main_text")
    return StageResult(out, True)
