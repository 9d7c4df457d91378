"""The fast cleaning code gives exactly what the plain code gave: the whole pipeline on a small crawl against
a result recorded before the speed-up, and each rewritten function against its plain definition."""

from __future__ import annotations

import hashlib
import json
import random
import re
import zlib
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from workshop_utils.data import dedup, pii, quality, shingle_hash
from workshop_utils.data import pipeline as P
from workshop_utils.data.crawl import build_crawl, crawl_dataset, crawl_sha256, similarity_pairs
from workshop_utils.data.stages import decode_batch, extract_batch, quality_batch

GOLDEN = json.loads((Path(__file__).parent / "data" / "pipeline_seed5_300.json").read_text())
UNICODE = "aAzZ09_ \t\n\u00a0\u2003\u3000.,;:!?-'\"()[]{}#…•–—éÉßİıſKΣσς日本²½Ⅻ\u200d\u00ad\x1c"


@pytest.fixture(scope="module")
def small_crawl():
    return build_crawl(300, seed=5, big_mb=1)


@pytest.fixture(scope="module")
def stage_texts(small_crawl):
    """Texts as the quality stage and near-dedup see them (extracted, then quality-rewritten)."""
    texts, _ = decode_batch([d.raw for d in small_crawl])
    kinds = [d.kind for d in small_crawl]
    extracted, reasons = extract_batch(texts, kinds)
    keep = [i for i, r in enumerate(reasons) if not r]
    rewritten, _ = quality_batch([extracted[i] for i in keep], [kinds[i] for i in keep])
    return [extracted[i] for i in keep] + rewritten


def _as_recorded(res) -> dict:
    """A pipeline result in the form of the recorded file."""
    num = lambda i: int(i.removeprefix("doc-"))  # noqa: E731
    by_reason = defaultdict(list)
    for i, s, r in zip(res.rejects["id"], res.rejects["stage"], res.rejects["reason"]):
        by_reason[f"{s}:{r}"].append(num(i))
    h = hashlib.sha256()
    for t in res.kept["text"]:
        h.update(t.encode() + b"\0")
    return {
        "kept": [num(i) for i in res.kept["id"]],
        "rejected": dict(sorted(by_reason.items())),
        "kept_text_sha256": h.hexdigest(),
        "waterfall_words": [None if w != w else int(w) for w in res.waterfall["words"]],
    }


@pytest.mark.parametrize("workers", [1, 2])
def test_pipeline_reproduces_the_recorded_result(small_crawl, workers, monkeypatch):
    """Same kept ids, texts, rejection reasons and waterfall as recorded, in one or two processes."""
    assert crawl_sha256(small_crawl) == GOLDEN["crawl_sha256"], (
        "the crawl generator changed: re-record tests/data/pipeline_seed5_300.json from a commit whose "
        "pipeline is trusted (python tests/test_data_perf.py --record; the file says how it was made)"
    )
    monkeypatch.setattr(P, "_MIN_DOCS_PER_PROC", 100)  # let 300 documents use 2 worker processes
    res = P.run_pipeline(crawl_dataset(small_crawl), P.PipelineConfig(num_proc=workers))
    got = _as_recorded(res)
    for key in ("kept", "rejected", "kept_text_sha256", "waterfall_words"):
        assert got[key] == GOLDEN[key], key
    assert set(res.seconds) == {*P.STAGES, "arrow_io", "pii"} and all(v >= 0 for v in res.seconds.values())


# ---- quality: each rewritten piece against its plain definition ----
def _top_plain(words: list[str], n: int) -> float:
    if len(words) < n:
        return 0.0
    gram, count = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1)).most_common(1)[0]
    return 0.0 if count < 2 else sum(len(w) for w in gram) * count / max(sum(map(len, words)), 1)


def _dup_plain(words: list[str], n: int) -> float:
    if len(words) < n:
        return 0.0
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    counts = Counter(grams)
    covered = {j for i, g in enumerate(grams) if counts[g] > 1 for j in range(i, i + n)}
    return sum(len(words[j]) for j in covered) / max(sum(map(len, words)), 1)


def test_ngram_fractions_match_the_plain_count():
    rng = random.Random(0)
    for _ in range(1500):  # small alphabets: many repeats and ties
        words = [rng.choice("abc") * rng.randint(1, 3) for _ in range(rng.randint(0, 40))]
        for n in range(1, 11):
            assert quality.top_ngram_char_fraction(words, n) == _top_plain(words, n), (words, n)
            assert quality.dup_ngram_char_fraction(words, n) == _dup_plain(words, n), (words, n)
    with pytest.raises(ValueError, match="n must be"):
        quality.top_ngram_char_fraction(["a"], 0)


def test_word_rules_match_their_definitions(stage_texts):
    rng = random.Random(1)
    texts = stage_texts + [
        "".join(rng.choice(UNICODE) for _ in range(rng.randint(0, 60))) for _ in range(2000)
    ]
    for t in texts:
        tokens = t.split()
        assert tokens == re.findall(r"\S+", t)
        assert t.lower().split() == [w.lower() for w in tokens]
        assert quality._ALNUM_WORD.findall(t) == [w for w in tokens if any(c.isalnum() for c in w)]
        assert quality._count_alpha_words(t) == sum(any(c.isalpha() for c in w) for w in tokens)
        assert len(quality._NOT_ALNUM.sub("", t)) == sum(c.isalnum() for c in t)


def test_gopher_repetition_matches_the_plain_rules(stage_texts):
    """Table A1 rules with the plain n-gram counts, rule by rule, on the crawl's texts."""
    for t in stage_texts:
        words = [w.lower() for w in t.split()]
        plain = next(
            (f"gopher_top_{n}gram" for n, lim in quality.TOP_NGRAM_MAX.items() if _top_plain(words, n) > lim),
            None,
        ) or next(
            (f"gopher_dup_{n}gram" for n, lim in quality.DUP_NGRAM_MAX.items() if _dup_plain(words, n) > lim),
            "",
        )
        rule = quality.gopher_repetition(t).rule
        if not rule.startswith(("gopher_dup_para", "gopher_dup_line")):
            assert rule == plain, t[:200]


# ---- dedup ----
def test_normalize_ascii_path_is_the_regex(stage_texts):
    rng = random.Random(2)
    asc = [t for t in stage_texts if t.isascii()]
    asc += ["".join(chr(rng.randrange(128)) for _ in range(rng.randint(0, 40))) for _ in range(3000)]
    for t in asc:
        assert dedup.normalize(t) == " ".join(re.sub(r"[^\w\s]+", " ", t.lower()).split()), repr(t)


def _plain_windows(words: list[str], n: int) -> list[str]:
    if len(words) <= n:
        return [" ".join(words)] if words else []
    return [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]


@pytest.mark.parametrize("block_words", [7, 1 << 19])
def test_window_crc32_is_zlib(block_words, monkeypatch):
    monkeypatch.setattr(shingle_hash, "_BLOCK_WORDS", block_words)  # 7: texts spread over many blocks
    rng = random.Random(3)
    alphabet = ["a", "é", "日本", "x" * 70, "ß", "zz", "0"]
    for _ in range(300):
        docs = [
            [rng.choice(alphabet) * rng.randint(1, 3) for _ in range(rng.randint(0, 9))] for _ in range(4)
        ]
        for n in (1, 2, 5):
            win = shingle_hash.windows([" ".join(w) for w in docs], n)
            plain = [s for w in docs for s in _plain_windows(w, n)]
            assert win.crc.tolist() == [zlib.crc32(s.encode()) for s in plain], (docs, n)
            assert win.counts.tolist() == [len(_plain_windows(w, n)) for w in docs]
            assert [win.buf[s : s + k].tobytes().decode() for s, k in zip(win.start, win.length)] == plain
    with pytest.raises(ValueError, match="not normalised"):
        shingle_hash.windows(["two  spaces"], 5)
    with pytest.raises(ValueError, match="n must be"):
        shingle_hash.windows(["a b"], 0)


def test_spans_equal():
    rng = np.random.default_rng(0)
    buf = rng.integers(0, 3, 3000, dtype=np.uint8)
    a, b, k = rng.integers(0, 2900, 2000), rng.integers(0, 2900, 2000), rng.integers(0, 40, 2000)
    b[:500] = a[:500]
    plain = [buf[i : i + n].tobytes() == buf[j : j + n].tobytes() for i, j, n in zip(a, b, k)]
    assert shingle_hash.spans_equal(buf, a, b, k).tolist() == plain


def test_vectorised_minhash_is_the_readable_one(stage_texts):
    a, b = dedup.permutations(112, seed=0)
    texts = stage_texts + ["", "one two", "short text here"]
    plain = np.stack([dedup.minhash_signature(dedup.shingles(t), a, b) for t in texts])
    assert np.array_equal(dedup.minhash_signatures(texts, a, b), plain)
    pairs = similarity_pairs(60, seed=0)
    sims, cand = dedup.pair_candidates(pairs)
    for (x, y), s, c in zip(pairs, sims, cand):
        sx, sy = dedup.shingles(x), dedup.shingles(y)
        assert s == dedup.jaccard(sx, sy)
        eq = dedup.minhash_signature(sx, a, b) == dedup.minhash_signature(sy, a, b)
        assert c == eq.reshape(14, 8).all(axis=1).any()


def test_exact_jaccard_matches_the_sets_and_survives_a_crc_collision(stage_texts, monkeypatch):
    norm = [dedup.normalize(t) for t in stage_texts[:60]]
    pairs = [(i, j) for i in range(0, 60, 3) for j in range(i + 1, 60, 7)]
    plain = [
        dedup.jaccard(dedup._shingle_set(norm[i].split(), 5), dedup._shingle_set(norm[j].split(), 5))
        for i, j in pairs
    ]
    assert dedup._exact_jaccards(shingle_hash.windows(norm, 5), pairs) == plain
    # Every shingle gets the same CRC: the bytes must tell them apart.
    real = shingle_hash.windows(norm, 5)
    fake = shingle_hash.Windows(real.buf, np.zeros_like(real.crc), real.start, real.length, real.counts)
    assert dedup._exact_jaccards(fake, pairs) == plain


# ---- PII: the literal checks in front of the regexes never change a match ----
def test_pii_prefilters_change_nothing(stage_texts):
    from workshop_utils.data import fake_pii

    rng = random.Random(4)
    texts = stage_texts + [fake_pii.hard_negative(rng) for _ in range(200)] + fake_pii.phone_examples(rng)
    for t in texts:
        assert pii.find_pii(t, "email") == [m.span() for m in pii.EMAIL_RE.finditer(t)]
        keys = [m.span() for r in pii.KEY_RES for m in r.finditer(t)]
        keys += [m.span(2) for m in pii.ASSIGNED_SECRET_RE.finditer(t) if pii._looks_random(m.group(2))]
        assert pii.find_pii(t, "key") == pii._merge(keys)
        assert bool(pii._IPV4_HINT_RE.search(t)) or not pii.IPV4_RE.search(t)
        assert bool(pii._IPV6_HINT_RE.search(t)) or not pii.IPV6_RE.search(t)


if __name__ == "__main__":  # python tests/test_data_perf.py --record "<how this pipeline was trusted>"
    import sys

    if len(sys.argv) != 3 or sys.argv[1] != "--record":
        sys.exit('usage: python tests/test_data_perf.py --record "<provenance note>"')
    crawl = build_crawl(300, seed=5, big_mb=1)
    out = {"about": sys.argv[2], "crawl_sha256": crawl_sha256(crawl)}
    out |= _as_recorded(P.run_pipeline(crawl_dataset(crawl), P.PipelineConfig(num_proc=1)))
    (Path(__file__).parent / "data" / "pipeline_seed5_300.json").write_text(json.dumps(out, indent=1) + "\n")
