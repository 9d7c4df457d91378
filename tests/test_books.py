"""workshop_utils.data.books: Gutenberg boilerplate added and stripped, LLaMA's 90 % book-level dedup.

Overlaps are recomputed here in plain Python (regex words, tuple 5-grams), not with the package's shingles.
"""

from __future__ import annotations

import random
import re
import time
import unicodedata

import pytest

from workshop_utils import published
from workshop_utils.data import books as bk
from workshop_utils.data.crawl import book_chunks

RULE = published.figure("data_pipeline", "llama_books_dedup_overlap")


def _grams(text: str) -> set[tuple[str, ...]]:
    """Distinct word 5-grams of the lower-cased words (a text of 5 words or fewer: one gram)."""
    words = re.findall(r"\w+", unicodedata.normalize("NFKC", text).lower())
    if len(words) <= 5:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + 5]) for i in range(len(words) - 4)}


def _share(book: str, other: str) -> float:
    """Share of `book`'s 5-grams found in `other`."""
    mine = _grams(book)
    return len(mine & _grams(other)) / len(mine) if mine else 0.0


def _greedy(books: list[str], overlap: float) -> dict[int, int]:
    """{dropped: kept}: each book against every earlier kept one, pair by pair."""
    grams = [_grams(b) for b in books]
    kept: list[int] = []
    out = {}
    for j, mine in enumerate(grams):
        shares = [(len(mine & grams[k]) / len(mine), -k) for k in kept]
        best = max(shares, default=(0.0, 0))
        if best[0] >= overlap:
            out[j] = -best[1]
        else:
            kept.append(j)
    return out


@pytest.fixture(scope="module")
def chunks():
    return book_chunks()


def test_the_rule_is_the_published_one():
    assert RULE.value == bk._overlap(None) and RULE.status == "verified-secondary"
    assert RULE.agrees(0.9) and not RULE.agrees(0.85)


def test_strip_inverts_add_for_many_seeds(chunks):
    firsts, markers = set(), set()
    for seed in range(150):
        title, text = chunks[(seed * 7) % len(chunks)]
        wrapped = bk.add_gutenberg_boilerplate(bk.display_title(title), text, random.Random(seed))
        assert len(wrapped) > len(text) + 1000 and "Project Gutenberg" in wrapped.split("\n")[0]
        assert bk.strip_gutenberg(wrapped) == (text, True), seed
        firsts.add(wrapped.split(" of ")[0].split("'s ")[0])
        markers |= set(re.findall(r"\*\*\* ?START OF (THE|THIS)", wrapped))
    assert len(firsts) == 3 and markers == {"THE", "THIS"}  # every style and both marker wordings


def test_the_adder_is_seeded_and_varies():
    text = "HAMLET.\nTo be, or not to be, that is the question.\n"
    a, b = (bk.add_gutenberg_boilerplate("Hamlet", text, random.Random(s)) for s in (3, 3))
    assert a == b
    assert len({bk.add_gutenberg_boilerplate("Hamlet", text, random.Random(s)) for s in range(10)}) == 10
    assert bk.strip_gutenberg(
        bk.add_gutenberg_boilerplate("Hamlet", "\n\n  " + text + "  \n", random.Random(0))
    ) == (
        text.strip() + "\n",
        True,
    )  # written stripped


def test_strip_real_world_variants():
    body = "ACT I.\r\nSCENE I. Elsinore.\r\n"
    crlf = (
        "The Project Gutenberg EBook of Hamlet\r\n\r\nTitle: Hamlet\r\n\r\n"
        "*** START OF THIS PROJECT GUTENBERG EBOOK HAMLET ***\r\n\r\n\r\n" + body + "\r\n\r\n"
        "*** END OF THIS PROJECT GUTENBERG EBOOK HAMLET ***\r\n\r\nSection 1. General Terms of Use\r\n"
    )
    assert bk.strip_gutenberg(crlf) == (body.strip() + "\n", True)
    assert bk.strip_gutenberg("No markers here.\n\n") == ("No markers here.\n", False)
    assert bk.strip_gutenberg("Header\n***START OF THE PROJECT GUTENBERG EBOOK X***\nBody\n") == (
        "Body\n",
        False,
    )
    assert bk.strip_gutenberg("Body\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\nLicence\n") == (
        "Body\n",
        False,
    )
    assert bk.strip_gutenberg("") == ("", False)


def test_content_share_matches_plain_python(chunks):
    a, b = chunks[0][1], chunks[1][1]
    half = "\n".join(a.split("\n")[: len(a.split("\n")) // 2])
    for x, y in ((a, a), (a, b), (half, a), (a, half), ("", a), ("Exeunt.", a)):
        assert bk.content_share(x, y) == pytest.approx(_share(x, y), abs=1e-12)
    assert bk.content_share(a, a) == 1.0 and 0.4 < bk.content_share(a, half) < 0.6


def test_the_90_percent_rule_catches_95_and_keeps_85(chunks):
    title, text = chunks[40]
    editions = bk.book_variants(bk.display_title(title), text, random.Random(1))
    (b95, ok95), (b85, ok85) = (bk.strip_gutenberg(e) for e in editions)
    assert ok95 and ok85
    s95, s85 = _share(b95, text), _share(b85, text)
    assert RULE.value <= s95 <= RULE.value + bk.VARIANT_MARGIN, s95  # at most 95 %, above the rule
    assert RULE.value - bk.VARIANT_MARGIN - 0.01 <= s85 <= RULE.value - bk.VARIANT_MARGIN, s85
    changed = sum(x != y for x, y in zip(b95.split("\n"), text.split("\n")))
    assert 0 < changed < 0.1 * len(text.split("\n"))  # a few percent of lines
    found = bk.book_near_duplicates([text, b95, b85])
    assert [(d.index, d.kept) for d in found] == [(1, 0)] and found[0].share == pytest.approx(s95)
    # the boilerplate must go first: two editions share their licence, which reads as shared content
    assert _share(editions[1], bk.add_gutenberg_boilerplate("X", text, random.Random(2))) > s85


def test_the_boundary_is_inclusive(chunks):
    text = chunks[3][1]
    copy = bk.book_variant(text, 0.93, random.Random(0))
    s = _share(copy, text)
    assert [d.index for d in bk.book_near_duplicates([text, copy], overlap=s)] == [1]
    assert bk.book_near_duplicates([text, copy], overlap=s + 1e-9) == []


def test_dedup_of_100_books_is_exact_and_fast(chunks):
    rng = random.Random(5)
    books = [t for _, t in chunks[:90:]]
    for i in range(10):  # second editions of earlier books, above and below the rule
        books.append(bk.book_variant(books[i * 7], rng.choice((0.97, 0.92, 0.88, 0.8)), rng))
    books.append(books[2])  # an exact copy
    start = time.perf_counter()
    found = bk.book_near_duplicates(books)
    took = time.perf_counter() - start
    assert {d.index: d.kept for d in found} == _greedy(books, RULE.value)
    assert {d.index: d.kept for d in found}[100] == 2 and 0 < len(found) < 11
    assert bk.book_near_duplicates(books, overlap=RULE.value) == found
    assert took < 5.0, took


def test_later_supersets_are_kept_earlier_kept_books_are_the_reference(chunks):
    a, b = chunks[10][1], chunks[11][1]
    assert bk.book_near_duplicates([a, a + b]) == []  # the later book adds content: kept
    assert [(d.index, d.kept) for d in bk.book_near_duplicates([a + b, a])] == [(1, 0)]


def test_bad_inputs():
    rng = random.Random(0)
    with pytest.raises(TypeError, match="text"):
        bk.add_gutenberg_boilerplate("T", b"x", rng)
    with pytest.raises(TypeError, match="rng"):
        bk.add_gutenberg_boilerplate("T", "x", 0)
    with pytest.raises(ValueError, match="title"):
        bk.add_gutenberg_boilerplate("a\nb", "x", rng)
    with pytest.raises(ValueError, match="text"):
        bk.add_gutenberg_boilerplate("T", " \n", rng)
    with pytest.raises(ValueError, match="marker"):
        bk.add_gutenberg_boilerplate("T", "*** END OF THE PROJECT GUTENBERG EBOOK T ***\n", rng)
    with pytest.raises(TypeError, match="text"):
        bk.strip_gutenberg(None)
    with pytest.raises(TypeError, match="books"):
        bk.book_near_duplicates("one book")
    with pytest.raises(TypeError, match=r"books\[1\]"):
        bk.book_near_duplicates(["a", 2])
    for bad in (0, 1.5, True, "0.9"):
        with pytest.raises(ValueError, match="overlap"):
            bk.book_near_duplicates(["a"], overlap=bad)
    with pytest.raises(ValueError, match="target"):
        bk.book_variant("a b c d e f g", 0, rng)
    with pytest.raises(ValueError, match="target"):
        bk.book_variant("1 2 3\n", 0.5, rng)  # no word to edit: stays a full copy
