"""Stage 3: heuristic quality filters with the published thresholds.

- Gopher quality rules (Rae et al. 2021, App. A) and Gopher repetition rules (Table A1).
- C4 line and page rules (Raffel et al. 2019, §2.2): the paper's numbers, >= 5 words per kept line and
  >= 3 sentences per page (datatrove's defaults swap them; we follow the paper).
- Code files: BigCode's basic filters (max line length 1000, mean line length 100, alphanumeric
  fraction 0.25) plus an auto-generated-file check.
Each filter returns a `Verdict`: keep or drop, and the rule that fired.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

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
_WORD = re.compile(r"\S+")


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
    all_words = _WORD.findall(text)
    words = [w for w in all_words if any(c.isalnum() for c in w)]  # symbols ('-', '|') are not words
    n = len(words)
    if n < min_words:
        return Verdict(False, "gopher_min_words")
    if n > max_words:
        return Verdict(False, "gopher_max_words")
    mean_len = sum(len(w) for w in words) / n
    if not min_mean_word_len <= mean_len <= max_mean_word_len:
        return Verdict(False, "gopher_mean_word_length")
    if text.count("#") / n > max_symbol_ratio:
        return Verdict(False, "gopher_hash_ratio")
    if (text.count("...") + text.count("\u2026")) / n > max_symbol_ratio:
        return Verdict(False, "gopher_ellipsis_ratio")
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    if lines and sum(ln.startswith(BULLETS) for ln in lines) / len(lines) > max_bullet_lines:
        return Verdict(False, "gopher_bullet_lines")
    if lines and sum(ln.endswith(("...", "\u2026")) for ln in lines) / len(lines) > max_ellipsis_lines:
        return Verdict(False, "gopher_ellipsis_lines")
    if sum(any(c.isalpha() for c in w) for w in all_words) / len(all_words) < min_alpha_words:
        return Verdict(False, "gopher_alpha_words")
    if len(STOP_WORDS & {w.lower().strip(".,;:!?\"'()") for w in words}) < min_stop_words:
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


def top_ngram_char_fraction(words: list[str], n: int) -> float:
    """Characters covered by the most frequent word n-gram (counted once per occurrence) / all characters."""
    if len(words) < n:
        return 0.0
    grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    gram, count = grams.most_common(1)[0]
    if count < 2:
        return 0.0
    return sum(len(w) for w in gram) * count / max(sum(len(w) for w in words), 1)


def dup_ngram_char_fraction(words: list[str], n: int) -> float:
    """Characters of words inside any n-gram that occurs more than once / all characters."""
    if len(words) < n:
        return 0.0
    seen: set[tuple[str, ...]] = set()
    covered = [False] * len(words)
    first_pos: dict[tuple[str, ...], int] = {}
    for i in range(len(words) - n + 1):
        g = tuple(words[i : i + n])
        if g in seen:
            for j in range(i, i + n):
                covered[j] = True
            k = first_pos[g]
            for j in range(k, k + n):
                covered[j] = True
        else:
            seen.add(g)
            first_pos[g] = i
    return sum(len(w) for w, c in zip(words, covered) if c) / max(sum(len(w) for w in words), 1)


TOP_NGRAM_MAX = {2: 0.20, 3: 0.18, 4: 0.16}
DUP_NGRAM_MAX = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}


def gopher_repetition(text: str) -> Verdict:
    """Gopher's repetition rules: duplicate lines/paragraphs and repeated n-grams (Table A1 thresholds)."""
    _check_text(text)
    paragraphs = [p.strip() for p in re.split(r"\n{2,}", text) if p.strip()]
    frac, char_frac = _dup_fraction(paragraphs)
    if frac > 0.30:
        return Verdict(False, "gopher_dup_para_fraction")
    if char_frac > 0.20:
        return Verdict(False, "gopher_dup_para_char_fraction")
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    frac, char_frac = _dup_fraction(lines)
    if frac > 0.30:
        return Verdict(False, "gopher_dup_line_fraction")
    if char_frac > 0.20:
        return Verdict(False, "gopher_dup_line_char_fraction")
    words = [w.lower() for w in _WORD.findall(text)]
    for n, limit in TOP_NGRAM_MAX.items():
        if top_ngram_char_fraction(words, n) > limit:
            return Verdict(False, f"gopher_top_{n}gram")
    for n, limit in DUP_NGRAM_MAX.items():
        if dup_ngram_char_fraction(words, n) > limit:
            return Verdict(False, f"gopher_dup_{n}gram")
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
    n_sentences = len(re.findall(r"[.!?]+(?:\s|$)", new))
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
    if sum(c.isalnum() for c in text) / max(len(text), 1) < min_alnum:
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
