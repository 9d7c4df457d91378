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

MERSENNE_31 = (1 << 31) - 1  # prime modulus of the permutations: (a*x + b) fits in uint64 without overflow
_NON_WORD = re.compile(r"[^\w\s]+")


def normalize(text: str) -> str:
    """Lower-case, NFKC, punctuation removed, whitespace collapsed: the text that dedup compares."""
    if not isinstance(text, str):
        raise TypeError(f"text must be str, got {type(text).__name__}")
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(_NON_WORD.sub(" ", text).split())


def text_hash(text: str) -> str:
    """SHA-1 of the normalised text (exact-duplicate key)."""
    return hashlib.sha1(normalize(text).encode()).hexdigest()


def exact_dedup(texts: Sequence[str]) -> list[int]:
    """For each text, the index of its first exact (normalised) duplicate, or -1 for a first occurrence."""
    first: dict[str, int] = {}
    out = []
    for i, t in enumerate(texts):
        h = text_hash(t)
        out.append(first.get(h, -1))
        first.setdefault(h, i)
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
    words = normalize(text).split()
    if len(words) <= ngrams:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + ngrams]) for i in range(len(words) - ngrams + 1)}


def jaccard(a: set, b: set) -> float:
    """|A ∩ B| / |A ∪ B| (1.0 for two empty sets)."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def permutations(num_hashes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients (a, b) of `num_hashes` random hash permutations h(x) = (a*x + b) mod (2^31 - 1)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(1, MERSENNE_31, size=num_hashes, dtype=np.uint64)  # (H,)
    b = rng.integers(0, MERSENNE_31, size=num_hashes, dtype=np.uint64)  # (H,)
    return a, b


def minhash_signature(shingle_set: Iterable[str], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The MinHash signature (H,) of a shingle set: per permutation, the smallest permuted shingle hash."""
    x = np.fromiter((zlib.crc32(s.encode()) & MERSENNE_31 for s in shingle_set), dtype=np.uint64)  # (S,)
    if x.size == 0:
        return np.full(a.shape, MERSENNE_31, dtype=np.uint64)
    return ((np.outer(x, a) + b) % MERSENNE_31).min(axis=0)  # (S, H) -> (H,)


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
    if not isinstance(num_hashes, int) or num_hashes < 1:
        raise ValueError(f"num_hashes must be a positive int, got {num_hashes!r}")
    if not isinstance(num_bands, int) or num_bands < 1 or num_hashes % num_bands:
        raise ValueError(
            f"num_bands must be a positive int dividing num_hashes={num_hashes}, got {num_bands!r}"
        )
    if not 0.0 < jaccard_threshold <= 1.0:
        raise ValueError(f"jaccard_threshold must be in (0, 1], got {jaccard_threshold!r}")
    a, b = permutations(num_hashes, seed)
    sets = [shingles(t, ngrams) for t in texts]
    sigs = (
        np.stack([minhash_signature(s, a, b) for s in sets]) if sets else np.zeros((0, num_hashes), np.uint64)
    )
    candidates = lsh_candidates(sigs, num_bands)  # (N, H) -> pairs
    confirmed = {(i, j) for i, j in candidates if jaccard(sets[i], sets[j]) >= jaccard_threshold}
    parent = list(range(len(texts)))
    for i, j in sorted(confirmed):
        ri, rj = _find(parent, i), _find(parent, j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)  # the root is always the lowest index
    roots = [_find(parent, i) for i in range(len(texts))]
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
    sims, cand = [], []
    for x, y in pairs:
        sx, sy = shingles(x, ngrams), shingles(y, ngrams)
        sims.append(jaccard(sx, sy))
        eq = minhash_signature(sx, a, b) == minhash_signature(sy, a, b)  # (H,)
        cand.append(bool(eq.reshape(num_bands, rows).all(axis=1).any()))  # some band fully equal
    return np.array(sims), np.array(cand)
