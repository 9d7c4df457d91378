"""CRC-32 of every word n-gram of a corpus in numpy: the same numbers as `zlib.crc32` of the joined string.

MinHash (`dedup.py`) hashes each shingle `" ".join(words[i:i + n])` with zlib's CRC-32. Building every
shingle string in Python dominates its cost, so here all documents are one byte buffer and the CRC of a
shingle is assembled from the CRCs of its words with the identity behind zlib's `crc32_combine`:

    crc32(A + B) = shift(crc32(A), len(B)) ^ crc32(B)

where `shift(c, k)` feeds k zero bytes through the raw CRC register: a linear map over GF(2), applied to
every shingle at once with four table lookups (one per byte of c). Three vectorised steps:
1. `crc32(" " + word)` of every word: the register runs over byte j of all words at once (j = 0, 1, ...);
2. `crc32(word)` from it: remove the leading space, `shift(crc32(" "), len(word))`, a constant per length;
3. the ladder: CRC of the m words from each position = shift(the m-1 words, len(" " + next)) ^ crc32(" " +
   next), for m = 2 .. n.
Nothing is approximated: `tests/test_data_perf.py` compares every value with `zlib.crc32`. `Windows` also
keeps where each shingle's bytes lie, so equal CRCs can be checked byte for byte (`spans_equal`): dedup's
Jaccard confirmation is exact without building the shingle strings.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

_POLY = 0xEDB88320  # CRC-32 (IEEE 802.3) in zlib's reflected bit order


@lru_cache(maxsize=1)
def _byte_table() -> np.ndarray:
    """The 256-entry CRC-32 table (uint32): one register step per byte value."""
    c = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        c = np.where(c & 1, (c >> 1) ^ np.uint32(_POLY), c >> 1)
    return c


def _shift_tables(nbytes: np.ndarray) -> np.ndarray:
    """For each shift length k in `nbytes` (K,), sorted: table (K, 4, 256) of shift(v << 8*pos, k)."""
    table = _byte_table()
    reg = np.uint32(1) << np.arange(32, dtype=np.uint32)  # (32,) the 32 one-bit registers
    images = np.empty((len(nbytes), 32), np.uint32)  # (K, 32) shift(one-bit register, k)
    done = 0
    for i, k in enumerate(nbytes.tolist()):  # walk up the sorted lengths, one step per zero byte
        for _ in range(k - done):
            reg = table[reg & 0xFF] ^ (reg >> 8)
        done = k
        images[i] = reg
    bits = (np.arange(256)[:, None] >> np.arange(8)) & 1  # (256, 8) the bits of each byte value
    out = np.zeros((len(nbytes), 4, 256), np.uint32)
    for pos in range(4):  # linearity: shift(v) = XOR of the images of v's set bits
        for bit in range(8):
            out[:, pos, :] ^= np.where(bits[:, bit], images[:, None, 8 * pos + bit], np.uint32(0))
    return out


def _unaligned(buf: np.ndarray, dtype: str) -> np.ndarray:
    """View of `buf` (zero-padded) whose item i is the `dtype` word made of the bytes from offset i."""
    size = np.dtype(dtype).itemsize
    padded = np.concatenate([buf, np.zeros(size, np.uint8)])
    return np.ndarray((len(buf) + 1,), dtype=dtype, buffer=padded, strides=(1,))


def _spaced_word_crc32(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """crc32 of every byte span buf[starts[t] : starts[t] + lengths[t]] (T,), all spans at once."""
    table = _byte_table()
    key = -lengths.astype(np.int16 if lengths.max() < 2**15 else np.int64)  # int16: numpy's radix sort
    order = np.argsort(key, kind="stable")  # longest first: the spans still running are a prefix
    first, size = starts[order], lengths[order]
    reg = np.full(len(order), 0xFFFFFFFF, np.uint32)  # (T,) zlib's initial register
    for j in range(int(size[0]) if len(size) else 0):  # byte j of every span at once
        running = int(np.searchsorted(-size, -j, side="left"))  # spans longer than j
        r = reg[:running]
        reg[:running] = table[(r ^ buf[first[:running] + j]) & 0xFF] ^ (r >> 8)
    out = np.empty_like(reg)
    out[order] = ~reg
    return out


def _is_normalised(text: str) -> bool:
    """Words separated by single spaces: no other whitespace (not printable), no double/edge space."""
    return text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " "


_BLOCK_WORDS = 1 << 19  # words per block of the CRC computation: the block's bytes and arrays stay in cache


@dataclass(frozen=True)
class Windows:
    """Every n-word window (shingle) of a corpus: its CRC-32 and where its bytes lie in one buffer."""

    buf: np.ndarray  # (B,) uint8: " " + text for every non-empty text, concatenated (UTF-8)
    crc: np.ndarray  # (S,) uint32: zlib.crc32 of the window's string
    start: np.ndarray  # (S,) int64: first byte of the window in `buf`
    length: np.ndarray  # (S,) int64: bytes of the window
    counts: np.ndarray  # (N,) int64: windows per text, in text order

    @cached_property
    def offsets(self) -> np.ndarray:
        """(N,) index of each text's first window."""
        return np.cumsum(self.counts) - self.counts


def windows(texts: Sequence[str], n: int, validate: bool = True) -> Windows:
    """Every n-word window `" ".join(words[i:i+n])` of every text, with its `zlib.crc32`, in order.

    `texts` hold words separated by single spaces (as `dedup.normalize` writes them). A text of 1..n
    words has one window (all its words), an empty text none (as `dedup.shingles`). `validate=False`
    skips checking that (for texts straight from `dedup.normalize`).
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    bad = next((i for i, t in enumerate(texts) if not _is_normalised(t)), None) if validate else None
    if bad is not None:
        raise ValueError(f"texts[{bad}] is not normalised: words must be separated by single spaces")
    words = np.fromiter((t.count(" ") + 1 if t else 0 for t in texts), np.int64, len(texts))  # (N,)
    counts = np.where(words >= n, words - n + 1, (words > 0).astype(np.int64))  # (N,) windows
    buf = np.frombuffer(("".join(" " + t for t in texts if t)).encode(), np.uint8)  # " w w w w w ..."
    starts = np.flatnonzero(buf == 32)  # (T,) each word's leading space
    spaced_len = np.diff(starts, append=len(buf))  # (T,) bytes of " " + word
    total = int(counts.sum())
    crc, start, length = np.empty(total, np.uint32), np.empty(total, np.int64), np.empty(total, np.int64)
    word_end, window_end = np.cumsum(words), np.cumsum(counts)
    cuts = np.flatnonzero(np.diff(word_end // _BLOCK_WORDS)) + 1  # blocks of whole texts
    for block in np.split(np.arange(len(texts)), cuts) if len(texts) else []:
        w0, w1 = int(word_end[block[0]] - words[block[0]]), int(word_end[block[-1]])
        s0, s1 = int(window_end[block[0]] - counts[block[0]]), int(window_end[block[-1]])
        c = counts[block]
        first = np.repeat(word_end[block] - words[block] - w0 - (np.cumsum(c) - c), c) + np.arange(s1 - s0)
        size = np.repeat(np.minimum(words[block], n), c)  # (S_block,) words in each window
        st, sl = starts[w0:w1], spaced_len[w0:w1]
        last = first + size - 1
        start[s0:s1] = st[first] + 1
        length[s0:s1] = st[last] + sl[last] - start[s0:s1]
        crc[s0:s1] = _window_crc32(buf, st, sl, first, size)
    return Windows(buf, crc, start, length, counts)


def _window_crc32(
    buf: np.ndarray, starts: np.ndarray, spaced_len: np.ndarray, first: np.ndarray, size: np.ndarray
) -> np.ndarray:
    """CRC-32 (S,) of the windows of `size` words from word `first`: the ladder of the module docstring."""
    crc = np.zeros(len(first), np.uint32)
    if not len(first):
        return crc
    spaced = _spaced_word_crc32(buf, starts, spaced_len)  # (T,) crc32(" " + word)
    present = np.bincount(spaced_len) > 0
    lengths = np.flatnonzero(present)  # (K,) the distinct lengths, sorted
    shift_of = (np.cumsum(present) - 1)[spaced_len]  # (T,) index of each word's length in `lengths`
    drop_space = np.array(  # shift(crc32(" "), len(word)) for each distinct length
        [zlib.crc32(b" " + bytes(k - 1)) ^ zlib.crc32(bytes(k - 1)) for k in lengths.tolist()], np.uint32
    )
    tables = _shift_tables(lengths).reshape(-1)  # (K * 4 * 256,)
    level = spaced ^ drop_space[shift_of]  # (T,) level 1: crc32(word)
    for m in range(1, int(size.max()) + 1):
        if m > 1:  # extend every window by its next word (windows that cross texts are never read)
            base = shift_of[m - 1 :] * 1024  # (T-m+1,) the next word's shift table
            prev, level = level[:-1], spaced[m - 1 :].copy()
            for pos in range(4):
                level ^= tables[base + pos * 256 + ((prev >> np.uint32(8 * pos)) & np.uint32(0xFF))]
        done = np.flatnonzero(size == m)
        crc[done] = level[first[done]]
    return crc


_SPAN_BLOCK = 1 << 15  # spans compared per numpy call


def spans_equal(buf: np.ndarray, a: np.ndarray, b: np.ndarray, length: np.ndarray) -> np.ndarray:
    """(P,) bool: buf[a[i] : a[i] + length[i]] == buf[b[i] : b[i] + length[i]].

    Sorted by length, then in blocks: each span is read as a row of 8-byte words in one gather (its
    bytes are next to each other in memory), the bytes past its end masked off.
    """
    at = _unaligned(buf, "<u8")  # the 8 bytes from each offset
    key = -length.astype(np.int16 if len(length) and length.max() < 2**15 else np.int64)
    order = np.argsort(key, kind="stable")  # similar lengths together: narrow rows
    out = np.empty(len(order), bool)
    for lo in range(0, len(order), _SPAN_BLOCK):
        o = order[lo : lo + _SPAN_BLOCK]
        out[o] = _equal_rows(at, a[o], b[o], length[o])
    return out


def _equal_rows(at: np.ndarray, a: np.ndarray, b: np.ndarray, length: np.ndarray) -> np.ndarray:
    """`spans_equal` for one block: (P, K) words of 8 bytes per side, compared where the span has bytes."""
    step = np.arange(0, int(length.max()) if len(length) else 0, 8)  # (K,) word offsets
    bits = (np.clip(length[:, None] - step, 0, 8) * 8).astype(np.uint64)  # (P, K) bits inside the span
    mask = np.where(bits == 64, np.uint64(2**64 - 1), (np.uint64(1) << bits) - np.uint64(1))
    last = len(at) - 1  # a shorter span's extra words (masked off) may point past the end
    ia, ib = np.minimum(a[:, None] + step, last), np.minimum(b[:, None] + step, last)
    diff = (at[ia] ^ at[ib]) & mask  # (P, K)
    return ~diff.any(axis=1)
