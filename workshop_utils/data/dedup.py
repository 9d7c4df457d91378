"""Stage 4: deduplication. Exact (normalised-text hash), exact lines across files, and MinHash + LSH.

MinHash in five steps, written to be read:
1. shingles: the set of word n-grams of the normalised text;
2. signature: for each of `num_hashes` random permutations h(x) = (a*x + b) mod p, the minimum over the
   shingles (P[two minimums are equal] = Jaccard similarity);
3. banding: cut the signature into `num_bands` bands of `rows` values; documents that agree on a whole
   band land in the same bucket and become a candidate pair (P = 1 - (1 - s^rows)^bands, the S-curve);
4. union of the candidate pairs of all bands;
5. confirmation: keep a pair only if the true Jaccard of the shingle sets is >= the threshold; the
   connected components are clusters, and the first document of each cluster (crawl order) is kept.
`shingles` and `minhash_signature` are that recipe for one document. `minhash_near_dedup` computes the same
numbers for the whole corpus at once: every shingle's CRC in one numpy pass (`shingle_hash.py`), the
permutations in blocks of 8,192 shingles, and the Jaccard of each candidate pair on sets of shingle keys
(the CRC, every shared CRC checked byte for byte, colliding strings numbered apart: exact). Tests compare both.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import unicodedata
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .shingle_hash import Windows, spans_equal, windows

MERSENNE_31 = (1 << 31) - 1  # prime modulus of the permutations: (a*x + b) fits in uint64 without overflow
_P = np.uint64(MERSENNE_31)
_NON_WORD = re.compile(r"[^\w\s]+")
# The same rule for ASCII text as one byte table (NFKC leaves ASCII unchanged): a character that is
# neither a word character (`\w`: alphanumeric or "_") nor whitespace (`\s`) becomes a space.
_ASCII_NON_WORD = bytes(
    c if chr(c).isalnum() or chr(c) == "_" or chr(c).isspace() else 32 for c in range(256)
)


def normalize(text: str) -> str:
    """Lower-case, NFKC, punctuation removed, whitespace collapsed: the text that dedup compares."""
    if not isinstance(text, str):
        raise TypeError(f"text must be str, got {type(text).__name__}")
    if text.isascii():  # fast path, same result: one table lookup per byte instead of the regex
        return " ".join(text.lower().encode().translate(_ASCII_NON_WORD).decode().split())
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(_NON_WORD.sub(" ", text).split())


def text_hash(text: str) -> str:
    """SHA-1 of the normalised text (exact-duplicate key)."""
    return hashlib.sha1(normalize(text).encode()).hexdigest()


def exact_dedup(texts: Sequence[str]) -> list[int]:
    """For each text, the index of its first exact (normalised) duplicate, or -1 for a first occurrence."""
    return first_occurrences([text_hash(t) for t in texts])


def first_occurrences(keys: Sequence) -> list[int]:
    """For each key, the index of the first equal key before it, or -1 for a first occurrence."""
    first: dict = {}
    out = []
    for i, k in enumerate(keys):
        out.append(first.get(k, -1))
        first.setdefault(k, i)
    return out


def exact_line_dedup(input_paths: Sequence[str | Path], output_dir: str | Path) -> dict[str, int]:
    """Write every input file to `output_dir`, keeping only lines whose count across ALL inputs is 1.

    Returns {"lines_in": ..., "lines_out": ...}. Lines are compared after stripping the line ending.
    """
    paths = [Path(p) for p in input_paths]
    if not paths:
        raise ValueError("input_paths must name at least one file")
    names = [p.name for p in paths]
    if len(set(names)) != len(names):
        raise ValueError("input_paths must have distinct file names (outputs keep the names)")
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"input path is not a file: {p}")
    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts: Counter[str] = Counter()
    for p in paths:
        counts.update(line.rstrip("\r\n") for line in p.open(encoding="utf-8", newline=""))
    lines_in = lines_out = 0
    for p in paths:
        with (
            p.open(encoding="utf-8", newline="") as src,
            (out_dir / p.name).open("w", encoding="utf-8", newline="") as dst,
        ):
            for line in src:
                lines_in += 1
                if counts[line.rstrip("\r\n")] == 1:
                    dst.write(line)
                    lines_out += 1
    return {"lines_in": lines_in, "lines_out": lines_out}


# ---------------------------------------------------------------------------------------------
# MinHash + LSH
# ---------------------------------------------------------------------------------------------
def shingles(text: str, ngrams: int = 5) -> set[str]:
    """The set of word n-grams of the normalised text (a short text is one shingle)."""
    if not isinstance(ngrams, int) or ngrams < 1:
        raise ValueError(f"ngrams must be a positive int, got {ngrams!r}")
    return _shingle_set(normalize(text).split(), ngrams)


def _shingle_set(words: list[str], ngrams: int) -> set[str]:
    """The word n-grams of a word list as strings; fewer than `ngrams` words: one shingle of them all."""
    if len(words) <= ngrams:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + ngrams]) for i in range(len(words) - ngrams + 1)}


def jaccard(a: set, b: set) -> float:
    """|A ∩ B| / |A ∪ B| (1.0 for two empty sets)."""
    if not a and not b:
        return 1.0
    common = len(a & b)
    return common / (len(a) + len(b) - common)  # |A ∪ B| without building it


def permutations(num_hashes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients (a, b) of `num_hashes` random hash permutations h(x) = (a*x + b) mod (2^31 - 1)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(1, MERSENNE_31, size=num_hashes, dtype=np.uint64)  # (H,)
    b = rng.integers(0, MERSENNE_31, size=num_hashes, dtype=np.uint64)  # (H,)
    return a, b


def permute(x: np.ndarray, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """h(x) = (a*x + b) mod (2^31 - 1) of every shingle hash under every permutation: (S,) -> (H, S).

    `out`, when given, is a (2, H, >= S) uint64 workspace (reused across calls: no fresh pages to fault in).
    Permutations along rows: numpy's loops then run along the long shingle axis.
    """
    v, q = (None, None) if out is None else (out[0, :, : len(x)], out[1, :, : len(x)])
    v = np.multiply(a[:, None], x[None, :], out=v)  # (H, S); a, x < 2^31, so a*x + b < 2^63: no overflow
    v += b[:, None]
    q = np.floor_divide(v, _P, out=q)
    q *= _P
    v -= q  # the remainder: numpy divides by a scalar faster than `%` does
    return v


def minhash_signature(shingle_set: Iterable[str], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The MinHash signature (H,) of a shingle set: per permutation, the smallest permuted shingle hash."""
    x = np.fromiter((zlib.crc32(s.encode()) & MERSENNE_31 for s in shingle_set), dtype=np.uint64)  # (S,)
    if x.size == 0:
        return np.full(a.shape, MERSENNE_31, dtype=np.uint64)
    return permute(x, a, b).min(axis=1)  # (H, S) -> (H,)


def minhash_signatures(texts: Sequence[str], a: np.ndarray, b: np.ndarray, ngrams: int = 5) -> np.ndarray:
    """Signatures (N, H) of many texts at once; row i equals `minhash_signature(shingles(texts[i]), a, b)`."""
    return _signatures(windows([normalize(t) for t in texts], ngrams), a, b)


_BLOCK = 8192  # shingles permuted per numpy call: 2 x (112, 8192) uint64 = 15 MB of workspace, reused


def _signatures(win: Windows, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MinHash signatures (N, H) from every shingle's CRC (hashed in one pass), permuted in blocks."""
    x = win.crc.astype(np.uint64) & MERSENNE_31  # (S,) as `minhash_signature` hashes a shingle
    sig = np.full((len(win.counts), len(a)), MERSENNE_31, dtype=np.uint64)  # (N, H); no shingle: maximum
    doc_of = np.repeat(np.arange(len(win.counts)), win.counts)  # (S,) the document of each shingle
    work = np.empty((2, len(a), _BLOCK), np.uint64)
    for lo in range(0, len(x), _BLOCK):
        block = permute(x[lo : lo + _BLOCK], a, b, out=work)  # (H, B)
        docs = doc_of[lo : lo + _BLOCK]
        first = np.flatnonzero(np.r_[True, docs[1:] != docs[:-1]])  # each document's first column here
        d = docs[first]  # a document cut by the block edge gets the smaller of its two minima
        sig[d] = np.minimum(sig[d], np.minimum.reduceat(block, first, axis=1).T)
    return sig


def _shingle_keys(win: Windows, idx: np.ndarray) -> np.ndarray:
    """(W,) uint64 key of each window in `idx`: equal keys exactly when the shingles are equal.

    The CRC in the high 32 bits. Windows are grouped by CRC and each one is compared byte for byte with
    the first of its group; in a group where some differ (a CRC collision: rare, but expected once there
    are millions of distinct shingles), the low bits number its distinct byte strings.
    """
    order = np.argsort(win.crc[idx])
    sidx = idx[order]
    crc = win.crc[sidx]
    first = np.r_[True, crc[1:] != crc[:-1]]
    group = np.cumsum(first) - 1  # (W,) which CRC
    rep = sidx[first][group]  # the first window of its CRC
    later = np.flatnonzero(~first)
    same = np.ones(len(sidx), bool)
    la, lr = sidx[later], rep[later]
    same[later] = (win.length[la] == win.length[lr]) & spans_equal(
        win.buf, win.start[la], win.start[lr], win.length[la]
    )
    keys = crc.astype(np.uint64) << np.uint64(32)
    bounds = np.r_[np.flatnonzero(first), len(sidx)]  # a group's windows are adjacent
    for g in np.unique(group[~same]).tolist():  # CRC collisions: number the distinct strings
        members = np.arange(bounds[g], bounds[g + 1])
        at, size = win.start[sidx[members]].tolist(), win.length[sidx[members]].tolist()
        number: dict[bytes, int] = {}
        spans = [win.buf[s : s + n].tobytes() for s, n in zip(at, size)]
        keys[members] |= np.array([number.setdefault(x, len(number)) for x in spans], np.uint64)
    out = np.empty_like(keys)
    out[order] = keys
    return out


def _exact_jaccards(win: Windows, pairs: list[tuple[int, int]]) -> list[float]:
    """Jaccard of the shingle sets of each pair, exactly: on sets of keys that are equal only for equal
    shingles (`_shingle_keys`), never building the shingle strings."""
    docs = sorted({i for p in pairs for i in p})
    counts = win.counts[docs]
    ends = np.cumsum(counts)
    idx = np.repeat(win.offsets[docs] - (ends - counts), counts) + np.arange(int(ends[-1]) if docs else 0)
    keys = _shingle_keys(win, idx)
    distinct = {d: np.unique(keys[e - c : e]) for d, e, c in zip(docs, ends.tolist(), counts.tolist())}
    out = []
    for i, j in pairs:
        a, b = distinct[i], distinct[j]
        common = len(np.intersect1d(a, b, assume_unique=True))
        out.append(common / (len(a) + len(b) - common) if len(a) + len(b) else 1.0)  # as `jaccard`
    return out


def lsh_candidates(signatures: np.ndarray, num_bands: int) -> set[tuple[int, int]]:
    """Pairs (i < j) whose signatures agree on all rows of at least one band."""
    n, h = signatures.shape  # (N, H)
    if num_bands < 1 or h % num_bands:
        raise ValueError(f"num_bands must divide num_hashes={h}, got {num_bands}")
    rows = h // num_bands
    pairs: set[tuple[int, int]] = set()
    for band in range(num_bands):
        buckets: dict[bytes, list[int]] = defaultdict(list)
        block = np.ascontiguousarray(signatures[:, band * rows : (band + 1) * rows])  # (N, rows)
        for i in range(n):
            buckets[block[i].tobytes()].append(i)
        for members in buckets.values():
            for x in range(len(members)):
                for y in range(x + 1, len(members)):
                    pairs.add((members[x], members[y]))
    return pairs


def s_curve(s: np.ndarray | float, num_bands: int, rows: int) -> np.ndarray | float:
    """P(candidate | Jaccard s) = 1 - (1 - s^rows)^bands."""
    return 1.0 - (1.0 - np.asarray(s, dtype=float) ** rows) ** num_bands


@dataclass
class MinHashResult:
    """Outcome of near-duplicate detection over N documents."""

    duplicate_of: list[int]  # -1 = kept, else the index of the kept document of its cluster
    candidates: set[tuple[int, int]] = field(default_factory=set)
    confirmed: set[tuple[int, int]] = field(default_factory=set)

    @property
    def kept(self) -> list[int]:
        """Indices of kept documents."""
        return [i for i, d in enumerate(self.duplicate_of) if d < 0]


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def minhash_near_dedup(
    texts: Sequence[str],
    num_hashes: int = 112,
    num_bands: int = 14,
    ngrams: int = 5,
    jaccard_threshold: float = 0.8,
    seed: int = 0,
) -> MinHashResult:
    """Near-duplicate clusters of `texts`; in each cluster the lowest index is kept."""
    normalised = [normalize(t) for t in texts]
    return near_duplicates(normalised, num_hashes, num_bands, ngrams, jaccard_threshold, seed, validate=False)


def near_duplicates(
    normalised: Sequence[str],
    num_hashes: int = 112,
    num_bands: int = 14,
    ngrams: int = 5,
    jaccard_threshold: float = 0.8,
    seed: int = 0,
    validate: bool = True,
) -> MinHashResult:
    """`minhash_near_dedup` of texts already passed through `normalize` (the pipeline does it in parallel)."""
    if not isinstance(num_hashes, int) or num_hashes < 1:
        raise ValueError(f"num_hashes must be a positive int, got {num_hashes!r}")
    if not isinstance(num_bands, int) or num_bands < 1 or num_hashes % num_bands:
        raise ValueError(
            f"num_bands must be a positive int dividing num_hashes={num_hashes}, got {num_bands!r}"
        )
    if not 0.0 < jaccard_threshold <= 1.0:
        raise ValueError(f"jaccard_threshold must be in (0, 1], got {jaccard_threshold!r}")
    a, b = permutations(num_hashes, seed)
    win = windows(normalised, ngrams, validate=validate)  # every shingle's CRC in one pass
    candidates = lsh_candidates(_signatures(win, a, b), num_bands)  # (N, H) -> pairs
    pairs = sorted(candidates)
    sims = _exact_jaccards(win, pairs) if pairs else []  # no candidate pair: nothing to confirm
    confirmed = {p for p, s in zip(pairs, sims) if s >= jaccard_threshold}
    parent = list(range(len(normalised)))
    for i, j in sorted(confirmed):
        ri, rj = _find(parent, i), _find(parent, j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)  # the root is always the lowest index
    roots = [_find(parent, i) for i in range(len(normalised))]
    return MinHashResult([r if r != i else -1 for i, r in enumerate(roots)], candidates, confirmed)


def minhash_dedup(
    input_paths: Sequence[str | Path],
    output_dir: str | Path,
    num_hashes: int = 112,
    num_bands: int = 14,
    ngrams: int = 5,
    jaccard_threshold: float = 0.8,
) -> dict[str, str]:
    """Near-dedup files (one document per file): copy the kept ones byte-identical into `output_dir`.

    Returns {removed file name: name of the kept file it duplicates}.
    """
    paths = [Path(p) for p in input_paths]
    names = [p.name for p in paths]
    if len(set(names)) != len(names):
        raise ValueError("input_paths must have distinct file names (outputs keep the names)")
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"input path is not a file: {p}")
    texts = [p.read_bytes().decode("utf-8", errors="replace") for p in paths]
    res = minhash_near_dedup(texts, num_hashes, num_bands, ngrams, jaccard_threshold)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    removed = {}
    for p, dup in zip(paths, res.duplicate_of):
        if dup < 0:
            shutil.copyfile(p, out / p.name)  # byte-identical
        else:
            removed[p.name] = paths[dup].name
    return removed


def pair_candidates(
    pairs: Sequence[tuple[str, str]],
    num_hashes: int = 112,
    num_bands: int = 14,
    ngrams: int = 5,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """For labelled text pairs: (true Jaccard (P,), became an LSH candidate (P,) bool)."""
    if num_hashes % num_bands:
        raise ValueError(f"num_bands ({num_bands}) must divide num_hashes ({num_hashes})")
    a, b = permutations(num_hashes, seed)
    rows = num_hashes // num_bands
    sims = np.array([jaccard(shingles(x, ngrams), shingles(y, ngrams)) for x, y in pairs], dtype=float)
    eq = minhash_signatures([x for x, _ in pairs], a, b, ngrams) == minhash_signatures(
        [y for _, y in pairs], a, b, ngrams
    )  # (P, H)
    return sims, eq.reshape(len(pairs), num_bands, rows).all(axis=2).any(axis=1)  # some band fully equal
