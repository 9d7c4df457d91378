"""Books cleaned the way LLaMA's were: Project Gutenberg boilerplate stripped, book-level deduplication.

LLaMA-1 (arXiv:2302.13971, §2.1) trains on Project Gutenberg and Books3 and removes books with 90 %
content overlap (row `llama_books_dedup_overlap`). A Gutenberg file wraps the book in a header (title,
release date, a short licence) and a footer (the full licence), cut off by its `*** START OF ...` and
`*** END OF ...` marker lines: the rule real pipelines use to strip them (`strip_gutenberg`).
`add_gutenberg_boilerplate` writes such a wrapper (our own text, in the three styles PG files have had),
and `book_variants` makes second editions of a book a few percent away from the 90 % rule on either side.
"""

from __future__ import annotations

import random
import re
import textwrap
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ..published import value
from .dedup import shingles

FILE = "data_pipeline"
OVERLAP_KEY = "llama_books_dedup_overlap"
SHINGLE_WORDS = 5  # assumption: LLaMA does not say how it measures overlap; word 5-grams as in MinHash dedup
VARIANT_MARGIN = 0.05  # assumption: the demonstration editions sit 5 points either side of the rule
_MARKER = r"^[ \t]*\*{3}[ \t]*%s OF (?:THE|THIS) PROJECT GUTENBERG E-?BOOK\b[^\n]*?\*{3}[ \t]*\r?$"
_START = re.compile(_MARKER % "START", re.IGNORECASE | re.MULTILINE)
_END = re.compile(_MARKER % "END", re.IGNORECASE | re.MULTILINE)
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")  # fmt: skip
_CREDITS = ("the Project Gutenberg volunteers", "volunteers of Distributed Proofreaders",
            "the Internet Archive and a team of volunteers", "an anonymous Project Gutenberg volunteer")  # fmt: skip
_USE = ("This eBook is for the use of anyone anywhere{where} at no cost and with almost no restrictions "
        "whatsoever. You may copy it, give it away or re-use it under the terms of the Project Gutenberg "
        "License included with this eBook or online at www.gutenberg.org.{local}")  # fmt: skip
_WHERE = " in the United States and most other parts of the world"
_LOCAL = (" If you are not located in the United States, you will have to check the laws of the country "
          "where you are located before using this eBook.")  # fmt: skip
_LICENCE = (
    "Updated editions will replace the previous one; the old editions will be renamed.",
    "Creating the works from print editions not protected by U.S. copyright law means that no one owns a "
    "United States copyright in these works, so the Foundation (and you!) can copy and distribute them in "
    "the United States without permission and without paying copyright royalties.",
    "START: FULL LICENSE\n\nTHE FULL PROJECT GUTENBERG LICENSE\nPLEASE READ THIS BEFORE YOU DISTRIBUTE OR "
    "USE THIS WORK",
    "Section 1. General Terms of Use and Redistributing Project Gutenberg electronic works. By reading or "
    "using any part of this work, you indicate that you have read and accept all the terms of this "
    "license. If you do not agree, you must stop using it and return or destroy all copies in your "
    "possession.",
    "Section 2. Information about the Mission of Project Gutenberg. Project Gutenberg is synonymous with "
    "the free distribution of electronic works in formats readable by the widest variety of computers, "
    "old, middle-aged and new. It exists because of the efforts of hundreds of volunteers and donations.",
    "Section 3. Information about the Project Gutenberg Literary Archive Foundation, a non-profit "
    "educational corporation. Contributions to the Foundation are tax deductible to the full extent "
    "permitted by U.S. federal laws and your state's laws.",
    "Section 4. Information about Donations to the Project Gutenberg Literary Archive Foundation. The "
    "Foundation depends upon and cannot survive without widespread public support and donations.",
    "Section 5. General Information About Project Gutenberg electronic works. For forty years, Michael S. "
    "Hart produced and distributed Project Gutenberg eBooks with only a loose network of volunteer "
    "support. Most people start at our website, which has the main search facility.",
)


def _check_str(text: object, name: str) -> str:
    """`text` itself, or a TypeError naming the argument."""
    if not isinstance(text, str):
        raise TypeError(f"{name} must be str, got {type(text).__name__}")
    return text


def _check_rng(rng: object) -> random.Random:
    """`rng` itself, or a TypeError naming the argument."""
    if not isinstance(rng, random.Random):
        raise TypeError(f"rng must be a random.Random, got {type(rng).__name__}")
    return rng


def _overlap(overlap: float | None) -> float:
    """The published 90 % rule when `overlap` is None, else `overlap` checked to lie in (0, 1]."""
    overlap = value(FILE, OVERLAP_KEY) if overlap is None else overlap
    if isinstance(overlap, bool) or not isinstance(overlap, int | float) or not 0 < overlap <= 1:
        raise ValueError(f"overlap must be a number in (0, 1], got {overlap!r}")
    return float(overlap)


def rule_overlap() -> float:
    """LLaMA's book-level dedup threshold (the published 90 %)."""
    return _overlap(None)


def display_title(stem: str) -> str:
    """A title from a file stem: 'alls_well_that_ends_well' -> 'Alls Well That Ends Well'."""
    return " ".join(w.capitalize() for w in _check_str(stem, "stem").replace("_", " ").split())


# ---------------------------------------------------------------------------------------------
# Project Gutenberg boilerplate
# ---------------------------------------------------------------------------------------------
def _date(rng: random.Random, lo: int, hi: int) -> tuple[str, int]:
    """('Month d, yyyy', year) drawn between the years `lo` and `hi`."""
    year = rng.randint(lo, hi)
    return f"{rng.choice(_MONTHS)} {rng.randint(1, 28)}, {year}", year


def _header(title: str, author: str, rng: random.Random, width: int) -> tuple[str, str]:
    """(header up to the START marker, the word for 'the'/'this' in the markers), in one of three styles."""
    style, number = rng.randrange(3), rng.randint(1000, 70000)
    modern = style == 0  # only the newest style speaks of the United States
    wrap = "\n".join(
        textwrap.wrap(_USE.format(where=_WHERE if modern else "", local=_LOCAL if modern else ""), width)
    )
    credit = f"Produced by {rng.choice(_CREDITS)}"
    if modern:  # 2020s
        released, year = _date(rng, 1995, 2015)
        updated, _ = _date(rng, year + 1, 2024)
        lines = [f"The Project Gutenberg eBook of {title}", "", wrap, "", f"Title: {title}", "",
                 f"Author: {author}", "", f"Release date: {released} [eBook #{number}]",
                 f"                Most recently updated: {updated}", "", "Language: English", "",
                 f"Credits: {credit.removeprefix('Produced by ')}", "", ""]  # fmt: skip
        return "\n".join(lines), "THE"
    encoding = rng.choice(("ASCII", "UTF-8", "ISO-8859-1"))
    released, year = _date(rng, 1995, 2012)
    if style == 1:  # 2010s
        lines = [f"The Project Gutenberg EBook of {title}, by {author}", "", wrap, "", "", f"Title: {title}",
                 "", f"Author: {author}", "", f"Posting Date: {released} [EBook #{number}]",
                 f"Release Date: {released.split()[0]}, {year}", "", "Language: English", "",
                 f"Character set encoding: {encoding}", "", credit, "", ""]  # fmt: skip
        return "\n".join(lines), rng.choice(("THIS", "THE"))
    lines = [f"Project Gutenberg's {title}, by {author}", "", wrap, "", f"Title: {title}", f"Author: {author}",
             f"Release Date: {released.split()[0]}, {year}  [Etext #{number}]", "Language: English", credit,
             "", ""]  # fmt: skip
    return "\n".join(lines), "THE"


def add_gutenberg_boilerplate(
    title: str, text: str, rng: random.Random, author: str = "William Shakespeare"
) -> str:
    """`text` as a Project Gutenberg file: header, '*** START OF ... ***', the text, '*** END OF ... ***' and
    the licence; styles, dates, numbers, credits and line width drawn from `rng`.

    The text is written as `text.strip() + '\\n'`, so `strip_gutenberg` gives back exactly that.
    """
    title, author = _check_str(title, "title").strip(), _check_str(author, "author").strip()
    _check_str(text, "text")
    _check_rng(rng)
    if not title or "\n" in title:
        raise ValueError(f"title must be one non-empty line, got {title!r}")
    if not text.strip():
        raise ValueError("text must hold some text, got only whitespace")
    if _START.search(text) or _END.search(text):
        raise ValueError("text must not contain a Project Gutenberg START/END marker line")
    width = rng.randint(66, 76)
    header, the = _header(title, author, rng, width)
    gap = " " if rng.random() < 0.8 else ""
    start = f"***{gap}START OF {the} PROJECT GUTENBERG EBOOK {title.upper()}{gap}***"
    end = f"***{gap}END OF {the} PROJECT GUTENBERG EBOOK {title.upper()}{gap}***"
    licence = "\n\n".join("\n".join(textwrap.wrap(p, width)) if "\n" not in p else p for p in _LICENCE)
    blank = "\n" * rng.randint(2, 5)
    return f"{header}{start}{blank}{text.strip()}\n{blank}{end}\n\n{licence}\n"


def strip_gutenberg(text: str) -> tuple[str, bool]:
    """(the book without header, licence and footer, whether both marker lines were found).

    Cuts after the first '*** START OF THE/THIS PROJECT GUTENBERG EBOOK ... ***' line and before the first
    '*** END OF ...' line after it; with only one marker, cuts at that one. The body comes back as
    `body.strip() + '\\n'` ('' when empty): exactly the text `add_gutenberg_boilerplate` was given.
    """
    _check_str(text, "text")
    start = _START.search(text)
    lo = start.end() if start else 0
    end = _END.search(text, lo)
    body = text[lo : end.start() if end else len(text)].strip()
    return (body + "\n" if body else ""), bool(start and end)


# ---------------------------------------------------------------------------------------------
# Book-level deduplication
# ---------------------------------------------------------------------------------------------
def content_share(book: str, other: str) -> float:
    """Share of `book`'s distinct word 5-grams (of the `dedup.normalize`d text) that also occur in `other`:
    how much of its content `other` already holds (0.0 for a book without words). Not symmetric."""
    mine = shingles(_check_str(book, "book"), SHINGLE_WORDS)
    return len(mine & shingles(_check_str(other, "other"), SHINGLE_WORDS)) / len(mine) if mine else 0.0


@dataclass(frozen=True)
class BookDuplicate:
    """A book to drop: `index`, the earlier kept book `kept` that holds its content, and the `share` held."""

    index: int
    kept: int
    share: float


def book_near_duplicates(books: Sequence[str], overlap: float | None = None) -> list[BookDuplicate]:
    """LLaMA's book-level dedup (`llama_books_dedup_overlap`, 90 %): a book is dropped when at least
    `overlap` of its content (`content_share`: its distinct word 5-grams) is in one earlier kept book.

    Word 5-grams rather than lines: plays share short lines ('Exeunt.', speaker names) across different
    works, and editions re-break lines; 5-grams also match the MinHash stages. Compared with the kept books
    only (what stays in the corpus), exactly, through an index from each 5-gram to the kept books holding
    it: one pass over the shingles, not one set intersection per pair. Pass the bodies
    (`strip_gutenberg`), or the shared licence text counts as content. Ties go to the earliest book.
    """
    if isinstance(books, str) or not isinstance(books, Sequence):
        raise TypeError(f"books must be a list of str, got {type(books).__name__}")
    for i, b in enumerate(books):
        _check_str(b, f"books[{i}]")
    threshold = _overlap(overlap)
    holders: dict[str, list[int]] = {}
    out = []
    for j, book in enumerate(books):
        mine = shingles(book, SHINGLE_WORDS)
        hits = Counter(k for s in mine for k in holders.get(s, ()))
        if hits:
            kept, n = min(hits.items(), key=lambda kn: (-kn[1], kn[0]))
            if n / len(mine) >= threshold:
                out.append(BookDuplicate(j, kept, n / len(mine)))
                continue
        for s in mine:
            holders.setdefault(s, []).append(j)
    return out


def book_dup_of(texts: Sequence[str], kinds: Sequence[str]) -> list[int]:
    """The pipeline's book_dedup stage: per document, the index of the kept book it duplicates (LLaMA's
    rule, among the documents of kind 'book'), or -1; other kinds are never book duplicates."""
    rows = [i for i, k in enumerate(kinds) if k == "book"]
    out = [-1] * len(texts)
    for dup in book_near_duplicates([texts[i] for i in rows]):
        out[rows[dup.index]] = rows[dup.kept]
    return out


# ---------------------------------------------------------------------------------------------
# Second editions: realistic near-duplicates
# ---------------------------------------------------------------------------------------------
_SPELLINGS = {"thou": "you", "thee": "you", "thy": "your", "hath": "has", "doth": "does", "art": "are",
              "ere": "before", "oft": "often", "whilst": "while", "o'er": "over", "ne'er": "never",
              "e'en": "even", "betwixt": "between", "shalt": "shall", "wilt": "will", "'tis": "it is"}  # fmt: skip
_WORD = re.compile(r"[A-Za-z][A-Za-z']*")


def _edit_line(line: str, pool: list[str], rng: random.Random) -> str:
    """The line with one word changed: a modern spelling where there is one, else another word of the book."""
    m = rng.choice(list(_WORD.finditer(line)))
    word = m.group()
    new = _SPELLINGS.get(word.lower())
    for _ in range(8):  # another word of the book (a book of one repeated word: it gets an 's')
        if new is not None and new.lower() != word.lower():
            break
        new = rng.choice(pool)
    else:
        new = word + "s"
    new = new.capitalize() if word[0].isupper() else new
    return line[: m.start()] + new + line[m.end() :]


def book_variant(text: str, target: float, rng: random.Random) -> str:
    """Another edition of `text`: the fewest lines edited (one word each, in a random order of the lines)
    that leave at most `target` of its content in `text` (`content_share`). A ValueError if even
    editing every line leaves more."""
    _check_str(text, "text")
    _check_rng(rng)
    if isinstance(target, bool) or not isinstance(target, int | float) or not 0 < target <= 1:
        raise ValueError(f"target must be a number in (0, 1], got {target!r}")
    lines = text.split("\n")
    pool = _WORD.findall(text)
    worded = [i for i, ln in enumerate(lines) if _WORD.search(ln)]
    order = rng.sample(worded, len(worded))
    edited = {i: _edit_line(lines[i], pool, rng) for i in order}

    def edition(k: int) -> str:
        changed = set(order[:k])
        return "\n".join(edited[i] if i in changed else ln for i, ln in enumerate(lines))

    if content_share(edition(len(order)), text) > target:
        raise ValueError(f"target {target} is below what editing every line of this text reaches")
    lo, hi = 0, len(order)  # share(hi) <= target; find the smallest such k
    while lo < hi:
        mid = (lo + hi) // 2
        if content_share(edition(mid), text) <= target:
            hi = mid
        else:
            lo = mid + 1
    while content_share(edition(lo), text) > target:  # the share is monotone only nearly: step on if needed
        lo += 1
    return edition(lo)


def book_variants(
    title: str, text: str, rng: random.Random, targets: Sequence[float] | None = None
) -> list[str]:
    """Second editions of one book as Gutenberg files (each its own boilerplate), one per target share:
    by default 5 points above the 90 % rule (a duplicate to catch) and 5 below (a book to keep)."""
    if targets is None:
        rule = _overlap(None)
        targets = (min(1.0, rule + VARIANT_MARGIN), rule - VARIANT_MARGIN)
    return [add_gutenberg_boilerplate(title, book_variant(text, t, rng), rng) for t in targets]
