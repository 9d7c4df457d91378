"""Stage 3: heuristic quality filters with the published thresholds.

- Gopher quality rules (Rae et al. 2021, App. A) and Gopher repetition rules (Table A1).
- C4 line and page rules (Raffel et al. 2019, §2.2): the paper's numbers, >= 5 words per kept line and
  >= 3 sentences per page (datatrove's defaults swap them; we follow the paper).
- Code files: BigCode's basic filters (max line length 1000, mean line length 100, alphanumeric
  fraction 0.25) plus an auto-generated-file check.
Each filter returns a `Verdict`: keep or drop, and the rule that fired.
The repetition rules count n-grams with numpy on integer n-gram ids (level n built from level n-1) and the
word rules use regexes compiled once; `tests/test_data_perf.py` checks both against the plain counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})  # Gopher's list
BULLETS = ("\u2022", "-", "*", "\u25cf", "\u25aa")
C4_POLICY = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)
C4_TERMINAL = (".", "!", "?", '"', "\u201d", "'")
_CITATION = re.compile(r"\[\d+\]|\[citation needed\]|\[edit\]", re.IGNORECASE)
# Regexes compiled once. A "word" is a whitespace token (`str.split()`: same whitespace as `\S`);
# `[^\W_]` is exactly `str.isalnum()` for one character, so `_ALNUM_WORD` finds the tokens with one.
_ALNUM_WORD = re.compile(r"\S*[^\W_]\S*")
_ASCII_ALPHA_WORD = re.compile(r"\S*[A-Za-z]\S*")  # the tokens with an ASCII letter
_NO_ASCII_LETTER_WORD = re.compile(
    r"(?<!\S)[^\sA-Za-z]*[^\x00-\x7f\s][^\sA-Za-z]*(?!\S)"
)  # non-ASCII, no A-z
_NOT_ALNUM = re.compile(r"[\W_]+")
_PARAGRAPH_BREAK = re.compile(r"\n{2,}")
_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")
_STRIP = ".,;:!?\"'()"


@dataclass(frozen=True)
class Verdict:
    """Keep (True) or drop (False) plus the name of the rule that dropped the document."""

    keep: bool
    rule: str = ""

    def __bool__(self) -> bool:
        return self.keep


KEEP = Verdict(True)


def _check_text(text: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be str, got {type(text).__name__}")
    return text


# ---------------------------------------------------------------------------------------------
# Gopher quality (MassiveWeb) rules
# ---------------------------------------------------------------------------------------------
def gopher_quality(
    text: str,
    min_words: int = 50,
    max_words: int = 100_000,
    min_mean_word_len: float = 3,
    max_mean_word_len: float = 10,
    max_symbol_ratio: float = 0.1,
    max_bullet_lines: float = 0.9,
    max_ellipsis_lines: float = 0.3,
    min_alpha_words: float = 0.8,
    min_stop_words: int = 2,
) -> Verdict:
    """Gopher's document rules; the first rule that fails is returned."""
    _check_text(text)
    all_words = text.split()
    words = _ALNUM_WORD.findall(text)  # symbols ('-', '|') are not words
    n = len(words)
    if n < min_words:
        return Verdict(False, "gopher_min_words")
    if n > max_words:
        return Verdict(False, "gopher_max_words")
    mean_len = sum(map(len, words)) / n
    if not min_mean_word_len <= mean_len <= max_mean_word_len:
        return Verdict(False, "gopher_mean_word_length")
    if text.count("#") / n > max_symbol_ratio:
        return Verdict(False, "gopher_hash_ratio")
    if (text.count("...") + text.count("\u2026")) / n > max_symbol_ratio:
        return Verdict(False, "gopher_ellipsis_ratio")
    lines = [ln for ln in map(str.strip, text.split("\n")) if ln]
    if lines and sum(ln.startswith(BULLETS) for ln in lines) / len(lines) > max_bullet_lines:
        return Verdict(False, "gopher_bullet_lines")
    if lines and sum(ln.endswith(("...", "\u2026")) for ln in lines) / len(lines) > max_ellipsis_lines:
        return Verdict(False, "gopher_ellipsis_lines")
    if _count_alpha_words(text) / len(all_words) < min_alpha_words:
        return Verdict(False, "gopher_alpha_words")
    if len(STOP_WORDS & {w.lower().strip(_STRIP) for w in set(words)}) < min_stop_words:
        return Verdict(False, "gopher_stop_words")
    return KEEP


def gopher_quality_filter(text: str) -> bool:
    """True when `text` passes every Gopher quality rule."""
    return gopher_quality(text).keep


# ---------------------------------------------------------------------------------------------
# Gopher repetition rules (Table A1)
# ---------------------------------------------------------------------------------------------
def _dup_fraction(items: list[str]) -> tuple[float, float]:
    """(fraction of items that repeat an earlier one, fraction of characters in them)."""
    seen: set[str] = set()
    n_dup = chars_dup = 0
    for it in items:
        if it in seen:
            n_dup += 1
            chars_dup += len(it)
        seen.add(it)
    total_chars = sum(len(it) for it in items) or 1
    return n_dup / max(len(items), 1), chars_dup / total_chars


def _count_alpha_words(text: str) -> int:
    """Whitespace tokens with at least one letter (`str.isalpha`): those with an ASCII letter, plus those
    without one whose non-ASCII characters include a letter (checked one by one: they are few)."""
    others = _NO_ASCII_LETTER_WORD.findall(text) if not text.isascii() else []
    return len(_ASCII_ALPHA_WORD.findall(text)) + sum(any(c.isalpha() for c in w) for w in others)


def _word_arrays(words: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(ids (W,), lengths (W,)) of the words: equal words get equal ids, in order of first appearance."""
    index: dict[str, int] = {}
    ids = np.fromiter((index.setdefault(w, len(index)) for w in words), np.int64, len(words))  # (W,)
    lengths = np.fromiter(map(len, index), np.int64, len(index))[ids]  # (W,)
    return ids, lengths


def _longer_grams(grams: np.ndarray, counts: np.ndarray, ids: np.ndarray, n: int) -> np.ndarray:
    """Ids of the word n-grams (W-n+1,) from those of the (n-1)-grams (W-n+2,): equal ids = equal n-grams.

    An n-gram can repeat only where both (n-1)-grams inside it repeat: only those windows are sorted,
    every other window gets an id of its own.
    """
    repeats = counts[grams] > 1  # (W-n+2,)
    maybe = repeats[:-1] & repeats[1:]  # (W-n+1,)
    out = np.empty(len(maybe), np.int64)
    at = np.flatnonzero(maybe)
    packed = grams[at] * (int(ids.max()) + 1) + ids[at + n - 1]  # exact: both factors are < W
    _, out[at] = np.unique(packed, return_inverse=True)
    alone = np.flatnonzero(~maybe)
    out[alone] = len(at) + np.arange(len(alone))
    return out


def _gram_ladder(ids: np.ndarray, n_max: int):
    """Yield (n, id of every word n-gram, count of each id) for n = 1 .. n_max (fewer for a short text)."""
    grams = ids
    counts = np.bincount(ids)
    for n in range(1, min(n_max, len(ids)) + 1):
        if n > 1:
            grams = _longer_grams(grams, counts, ids, n)
            counts = np.bincount(grams)
        yield n, grams, counts


def _top_fraction(grams: np.ndarray, counts: np.ndarray, lengths: np.ndarray, n: int) -> float:
    """`top_ngram_char_fraction` on n-gram ids (ties: the n-gram seen first, like `Counter.most_common`)."""
    count = int(counts.max())
    if count < 2:
        return 0.0
    start = int(np.argmax(counts[grams] == count))  # the first window of a most frequent n-gram
    return int(lengths[start : start + n].sum()) * count / max(int(lengths.sum()), 1)


def _dup_fraction_grams(grams: np.ndarray, counts: np.ndarray, lengths: np.ndarray, n: int) -> float:
    """`dup_ngram_char_fraction` on n-gram ids: characters of words inside a repeated n-gram / all."""
    starts = np.flatnonzero(counts[grams] > 1)  # windows of n-grams that occur twice or more
    if not starts.size:
        return 0.0
    w = len(lengths)
    depth = np.cumsum(np.bincount(starts, minlength=w + 1) - np.bincount(starts + n, minlength=w + 1))
    return int(lengths[depth[:w] > 0].sum()) / max(int(lengths.sum()), 1)


def _ngram_stat(words: list[str], n: int, stat) -> float:
    """Apply an n-gram statistic to a word list (0.0 when there are fewer than n words)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if len(words) < n:
        return 0.0
    ids, lengths = _word_arrays(words)
    *_, (_, grams, counts) = _gram_ladder(ids, n)  # the last level: the n-grams
    return stat(grams, counts, lengths, n)


def top_ngram_char_fraction(words: list[str], n: int) -> float:
    """Characters covered by the most frequent word n-gram (counted once per occurrence) / all characters."""
    return _ngram_stat(words, n, _top_fraction)


def dup_ngram_char_fraction(words: list[str], n: int) -> float:
    """Characters of words inside any n-gram that occurs more than once / all characters."""
    return _ngram_stat(words, n, _dup_fraction_grams)


TOP_NGRAM_MAX = {2: 0.20, 3: 0.18, 4: 0.16}
DUP_NGRAM_MAX = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}


def gopher_repetition(text: str) -> Verdict:
    """Gopher's repetition rules: duplicate lines/paragraphs and repeated n-grams (Table A1 thresholds)."""
    _check_text(text)
    paragraphs = [p for p in map(str.strip, _PARAGRAPH_BREAK.split(text)) if p]
    frac, char_frac = _dup_fraction(paragraphs)
    if frac > 0.30:
        return Verdict(False, "gopher_dup_para_fraction")
    if char_frac > 0.20:
        return Verdict(False, "gopher_dup_para_char_fraction")
    lines = [ln for ln in map(str.strip, text.split("\n")) if ln]
    frac, char_frac = _dup_fraction(lines)
    if frac > 0.30:
        return Verdict(False, "gopher_dup_line_fraction")
    if char_frac > 0.20:
        return Verdict(False, "gopher_dup_line_char_fraction")
    ids, lengths = _word_arrays(text.lower().split())  # = each word lower-cased (no case maps across spaces)
    for n, grams, counts in _gram_ladder(ids, max(DUP_NGRAM_MAX)):  # each n-gram level built from the last
        if n in TOP_NGRAM_MAX and _top_fraction(grams, counts, lengths, n) > TOP_NGRAM_MAX[n]:
            return Verdict(False, f"gopher_top_{n}gram")
        if n in DUP_NGRAM_MAX and _dup_fraction_grams(grams, counts, lengths, n) > DUP_NGRAM_MAX[n]:
            return Verdict(False, f"gopher_dup_{n}gram")
        if counts.max() < 2:  # no n-gram repeats, so no longer one does: every fraction left is 0
            break
    return KEEP


# ---------------------------------------------------------------------------------------------
# C4 rules (Raffel et al. §2.2, the paper's numbers)
# ---------------------------------------------------------------------------------------------
def c4_filter(
    text: str, min_words_per_line: int = 5, min_sentences: int = 3, terminal_punct: bool = True
) -> tuple[str, Verdict]:
    """C4: drop bad lines (no terminal punctuation, < 5 words, 'javascript', policy text), then page rules."""
    _check_text(text)
    low = text.lower()
    if "lorem ipsum" in low:
        return "", Verdict(False, "c4_lorem_ipsum")
    if "{" in text:
        return "", Verdict(False, "c4_curly_bracket")
    kept = []
    for line in text.split("\n"):
        line = _CITATION.sub("", line).strip()
        ll = line.lower()
        if not line:
            continue
        if terminal_punct and not line.endswith(C4_TERMINAL):
            continue
        if len(line.split()) < min_words_per_line:
            continue
        if "javascript" in ll or any(p in ll for p in C4_POLICY):
            continue
        kept.append(line)
    new = "\n".join(kept)
    n_sentences = len(_SENTENCE_END.findall(new))
    if n_sentences < min_sentences:
        return new, Verdict(False, "c4_min_sentences")
    return new, KEEP


# ---------------------------------------------------------------------------------------------
# Code files (BigCode basic filters)
# ---------------------------------------------------------------------------------------------
AUTOGEN_MARKERS = ("do not edit", "auto-generated", "autogenerated", "generated by")


def code_filter(
    text: str, max_line_length: int = 1000, max_mean_line_length: float = 100, min_alnum: float = 0.25
) -> Verdict:
    """BigCode-style filters for source files: auto-generated header, long lines, little alphanumeric."""
    _check_text(text)
    head = "\n".join(text.split("\n")[:5]).lower()
    if any(m in head for m in AUTOGEN_MARKERS):
        return Verdict(False, "code_autogenerated")
    lines = text.split("\n")
    if max(len(ln) for ln in lines) > max_line_length:
        return Verdict(False, "code_max_line_length")
    if sum(len(ln) for ln in lines) / len(lines) > max_mean_line_length:
        return Verdict(False, "code_mean_line_length")
    if len(_NOT_ALNUM.sub("", text)) / max(len(text), 1) < min_alnum:  # alphanumeric characters
        return Verdict(False, "code_alnum_fraction")
    return KEEP


# ---------------------------------------------------------------------------------------------
# The stage: route by source kind
# ---------------------------------------------------------------------------------------------
def quality_stage(text: str, kind: str) -> tuple[str, Verdict]:
    """Web text: Gopher repetition, Gopher quality, C4 lines/page; code: code filters; books: kept as is.

    Books come from a curated source and skip the web-text heuristics (verse would fail C4's line rules).
    """
    if kind == "code":
        return text, code_filter(text)
    if kind == "book":
        return text, KEEP
    if kind != "web":
        raise ValueError(f"kind must be one of 'web', 'book', 'code', got {kind!r}")
    for rule in (gopher_repetition, gopher_quality):  # FineWeb's order: repetition, quality, then C4
        verdict = rule(text)
        if not verdict:
            return text, verdict
    return c4_filter(text)
