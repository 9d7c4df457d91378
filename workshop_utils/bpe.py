"""Byte-level BPE from scratch: the trainer and the tokenizer, written to be read next to notebook 03.

The recipe of GPT-2 (Radford et al., 2019), the same one Hugging Face `tokenizers` runs in Rust:

1. Work on UTF-8 **bytes**, so every string is representable: the starting vocabulary is the 256 bytes.
2. **Pre-tokenise** with GPT-2's regex (words with their leading space, numbers, punctuation runs,
   whitespace), so merges never cross a word boundary. Special tokens are cut out first and never merged.
3. Count every adjacent pair of tokens inside the pre-tokens (weighted by how often a pre-token occurs),
   merge the most frequent pair into a new token, repeat until the vocabulary is full. Ties: the
   lexicographically greatest pair of byte strings wins, so the result is deterministic.
4. Encoding applies the learned merges to each pre-token in the order they were learned.

Vocabulary layout: ids 0-255 are the single bytes (id == byte value), then the special tokens, then one
id per merge in the order learned.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

import regex

# GPT-2's pre-tokenisation pattern (openai/gpt-2 src/encoder.py; also `tokenizers` ByteLevel).
GPT2_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_PRETOKEN_RE = regex.compile(GPT2_SPLIT_PATTERN)

Pair = tuple[bytes, bytes]


def gpt2_bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in for each byte (how `tokenizers` ByteLevel writes its vocab and merges)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    mapping, extra = {}, 0
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:  # control bytes, space, ... are shifted to unused code points 256, 257, ...
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def _special_splitter(special_tokens: list[str]) -> regex.Pattern | None:
    """A regex that captures special tokens (longest first, so '<|end|>' never shadows '<|endoftext|>')."""
    if not special_tokens:
        return None
    alternatives = "|".join(regex.escape(s) for s in sorted(special_tokens, key=len, reverse=True))
    return regex.compile(f"({alternatives})")


def _check_specials(special_tokens: list[str] | None) -> list[str]:
    """Validate the special-token list: distinct non-empty strings."""
    special_tokens = list(special_tokens or [])
    for s in special_tokens:
        if not isinstance(s, str) or not s:
            raise ValueError(f"special_tokens must be non-empty strings, got {s!r}")
    if len(set(special_tokens)) != len(special_tokens):
        raise ValueError(f"special_tokens must be distinct, got {special_tokens}")
    return special_tokens


def pretokenize_counts(text: str, special_tokens: list[str]) -> Counter[bytes]:
    """How often each pre-token (as UTF-8 bytes) occurs; special tokens are cut out, never counted."""
    splitter = _special_splitter(special_tokens)
    segments = splitter.split(text)[::2] if splitter else [text]  # even items: text between specials
    counts: Counter[bytes] = Counter()
    for segment in segments:
        counts.update(m.group().encode("utf-8") for m in _PRETOKEN_RE.finditer(segment))
    return counts


class _Greatest:
    """Heap key that orders pairs descending, so heapq (a min-heap) pops the lexicographically greatest."""

    __slots__ = ("pair",)

    def __init__(self, pair: Pair) -> None:
        self.pair = pair

    def __lt__(self, other: _Greatest) -> bool:
        return self.pair > other.pair

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Greatest) and self.pair == other.pair


def _pairs(word: list[bytes]) -> Iterator[Pair]:
    """Adjacent pairs of a word (a list of tokens)."""
    return zip(word, word[1:], strict=False)


def _merge_word(word: list[bytes], pair: Pair, new: bytes) -> list[bytes]:
    """Replace every non-overlapping occurrence of `pair` in `word`, left to right."""
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == pair[0] and word[i + 1] == pair[1]:
            out.append(new)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def _hf_initial_ranks() -> dict[bytes, int]:
    """Ids `tokenizers` gives the 256 bytes: sorted by their GPT-2 stand-in character, not by byte value."""
    stand_in = gpt2_bytes_to_unicode()
    return {bytes([b]): rank for rank, b in enumerate(sorted(range(256), key=lambda b: stand_in[b]))}


def bpe_merges(word_counts: dict[bytes, int], n_tokens: int, tie_break: str = "greatest") -> list[Pair]:
    """The BPE merge loop: merge the most frequent pair until `n_tokens` new tokens exist.

    Pair counts are updated incrementally: a merge only touches the words that contain the pair.
    tie_break="greatest": among equally frequent pairs the lexicographically greatest pair of bytes wins;
    "hf": the pair with the smallest token ids wins, as in Hugging Face `tokenizers` (for the comparison).
    """
    if tie_break not in ("greatest", "hf"):
        raise ValueError(f"tie_break must be 'greatest' or 'hf', got {tie_break!r}")
    ranks = _hf_initial_ranks()  # token -> id in `tokenizers` order (used by tie_break="hf")

    def key(pair: Pair):
        return _Greatest(pair) if tie_break == "greatest" else (ranks[pair[0]], ranks[pair[1]])

    words = [[bytes([b]) for b in w] for w in word_counts]  # each pre-token as a list of 1-byte tokens
    freqs = list(word_counts.values())
    pair_counts: Counter[Pair] = Counter()
    where: defaultdict[Pair, set[int]] = defaultdict(set)  # pair -> indices of words that contain it
    for idx, (word, freq) in enumerate(zip(words, freqs, strict=True)):
        for pair in _pairs(word):
            pair_counts[pair] += freq
            where[pair].add(idx)
    # Max-heap by (count, tie-break key); stale entries are skipped when popped (lazy deletion).
    heap = [(-c, key(p), p) for p, c in pair_counts.items()]
    heapq.heapify(heap)

    merges: list[Pair] = []
    new_tokens: set[bytes] = set()
    while len(new_tokens) < n_tokens and heap:
        neg_count, _, best = heapq.heappop(heap)
        if pair_counts.get(best, 0) != -neg_count:
            continue  # stale: the count changed after this entry was pushed
        merges.append(best)
        new_token = best[0] + best[1]  # (two different merges can make the same bytes: one token)
        new_tokens.add(new_token)
        ranks.setdefault(new_token, len(ranks))
        changed: set[Pair] = set()
        for idx in sorted(where.pop(best)):  # only the words that contain the pair change
            old, freq = words[idx], freqs[idx]
            new = _merge_word(old, best, new_token)
            for pair in _pairs(old):  # remove the old word's pairs ...
                pair_counts[pair] -= freq
                changed.add(pair)
            for pair in _pairs(new):  # ... and add the new word's pairs
                pair_counts[pair] += freq
                changed.add(pair)
                where[pair].add(idx)
            words[idx] = new
        pair_counts.pop(best, None)
        changed.discard(best)
        for pair in changed:
            count = pair_counts[pair]
            if count <= 0:
                del pair_counts[pair]
                where.pop(pair, None)
            else:
                heapq.heappush(heap, (-count, key(pair), pair))
    return merges


def train_bpe(
    input_path: str | Path,
    vocab_size: int,
    special_tokens: list[str] | None = None,
    tie_break: str = "greatest",
) -> tuple[dict[int, bytes], list[Pair]]:
    """Train a byte-level BPE on a UTF-8 text file: returns (vocab id -> bytes, merges in order)."""
    special_tokens = _check_specials(special_tokens)
    min_size = 256 + len(special_tokens)
    if not isinstance(vocab_size, int) or vocab_size < min_size:
        raise ValueError(
            f"vocab_size must be an int >= 256 bytes + {len(special_tokens)} special tokens = {min_size}, "
            f"got {vocab_size!r}"
        )
    path = Path(input_path)
    if not path.is_file():
        raise FileNotFoundError(f"input_path {str(path)!r} is not a file")
    text = path.read_text(encoding="utf-8")
    counts = pretokenize_counts(text, special_tokens)
    if not counts:
        raise ValueError(f"input_path {str(path)!r} has no text to learn from (empty after special tokens)")

    vocab: dict[int, bytes] = {i: bytes([i]) for i in range(256)}
    for s in special_tokens:
        vocab[len(vocab)] = s.encode("utf-8")
    merges = bpe_merges(counts, vocab_size - len(vocab), tie_break)
    known = set(vocab.values())
    for a, b in merges:
        if a + b not in known:  # a token reached by two different merges gets one id
            known.add(a + b)
            vocab[len(vocab)] = a + b
    return vocab, merges


def merges_from_hf(tokenizer) -> list[Pair]:
    """The merges of a `tokenizers` / `PreTrainedTokenizerFast` ByteLevel BPE, as pairs of raw bytes."""
    import json

    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    model = json.loads(backend.to_str())["model"]
    if model.get("type") != "BPE":
        raise ValueError(f"tokenizer must be a BPE model, got {model.get('type')!r}")
    to_byte = {u: b for b, u in gpt2_bytes_to_unicode().items()}
    merges = []
    for m in model["merges"]:
        a, b = m.split(" ") if isinstance(m, str) else m
        merges.append((bytes(to_byte[c] for c in a), bytes(to_byte[c] for c in b)))
    return merges


def train_hf_bpe(text: str, vocab_size: int, special_tokens: list[str] | None = None) -> list[Pair]:
    """The library's answer: merges of `tokenizers` ByteLevel BPE trained on the same whole text, as bytes."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import models, pre_tokenizers, trainers

    tok = HFTokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)  # GPT-2 regex, no extra space
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=_check_specials(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes, as in train_bpe
        show_progress=False,
    )
    tok.train_from_iterator([text], trainer=trainer)
    return merges_from_hf(tok)


def first_difference(a: list[Pair], b: list[Pair]) -> int | None:
    """Index of the first merge where two merge lists differ (None if one is a prefix of the other)."""
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)


def merge_count(word_counts: dict[bytes, int], merges: list[Pair], i: int) -> int:
    """How often the pair merges[i] occurs once merges[:i] have been applied (its count when chosen)."""
    total = 0
    for word, freq in word_counts.items():
        parts = [bytes([b]) for b in word]
        for pair in merges[:i]:
            parts = _merge_word(parts, pair, pair[0] + pair[1])
        total += freq * sum(p == merges[i] for p in _pairs(parts))
    return total


class Tokenizer:
    """Encode text to ids by applying learned merges in order; decode ids back to text."""

    def __init__(
        self, vocab: dict[int, bytes], merges: list[Pair], special_tokens: list[str] | None = None
    ) -> None:
        self.special_tokens = _check_specials(special_tokens)
        self.vocab = dict(vocab)
        self.ids = {token: i for i, token in self.vocab.items()}
        for s in self.special_tokens:  # a special token missing from the vocab gets a new id
            if s.encode("utf-8") not in self.ids:
                self.vocab[len(self.vocab)] = s.encode("utf-8")
                self.ids[s.encode("utf-8")] = len(self.vocab) - 1
        missing = [bytes([b]) for b in range(256) if bytes([b]) not in self.ids]
        if missing:
            raise ValueError(f"vocab must contain all 256 single bytes; missing {missing[:5]}...")
        self.ranks = {pair: rank for rank, pair in enumerate(merges)}
        for a, b in merges:
            if a + b not in self.ids:
                raise ValueError(f"merge {(a, b)!r} produces {a + b!r}, which is not in vocab")
        self._splitter = _special_splitter(self.special_tokens)
        self._cache: dict[bytes, list[int]] = {}

    def _encode_pretoken(self, piece: bytes) -> list[int]:
        """Apply merges to one pre-token: always merge the adjacent pair that was learned first."""
        if piece in self._cache:
            return self._cache[piece]
        word = [bytes([b]) for b in piece]
        while len(word) > 1:
            pair = min(_pairs(word), key=lambda p: self.ranks.get(p, len(self.ranks)))
            if pair not in self.ranks:
                break
            word = _merge_word(word, pair, pair[0] + pair[1])
        ids = [self.ids[t] for t in word]
        self._cache[piece] = ids
        return ids

    def _encode_plain(self, text: str) -> list[int]:
        """Encode text that contains no special tokens."""
        ids: list[int] = []
        for m in _PRETOKEN_RE.finditer(text):
            ids.extend(self._encode_pretoken(m.group().encode("utf-8")))
        return ids

    def encode(self, text: str) -> list[int]:
        """Text -> token ids; special tokens become their own id."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        if self._splitter is None:
            return self._encode_plain(text)
        ids: list[int] = []
        for i, part in enumerate(self._splitter.split(text)):
            if i % 2:  # odd items are the captured special tokens
                ids.append(self.ids[part.encode("utf-8")])
            elif part:
                ids.extend(self._encode_plain(part))
        return ids

    def _held_tail(self, buffer: str) -> int:
        """Length of the longest buffer tail that could be the start of a special token."""
        held = 0
        for s in self.special_tokens:
            for k in range(min(len(s) - 1, len(buffer)), held, -1):
                if buffer.endswith(s[:k]):
                    held = k
                    break
        return held

    def encode_iterable(self, chunks: Iterable[str]) -> Iterator[int]:
        """Stream ids from an iterable of strings (e.g. an open file), equal to encode() of the whole.

        Only the last pre-token of the buffer (and a tail that may begin a special token) can still change
        when more text arrives; everything before it is encoded and emitted at once.
        """
        buffer = ""
        for chunk in chunks:
            buffer += chunk
            end = len(buffer) - self._held_tail(buffer)
            parts = self._splitter.split(buffer[:end]) if self._splitter else [buffer[:end]]
            for i, part in enumerate(parts[:-1]):  # complete text segments and special tokens
                yield from ([self.ids[part.encode("utf-8")]] if i % 2 else self._encode_plain(part))
            tail = parts[-1]  # text after the last special token: all but its last pre-token are final
            pieces = [m.group() for m in _PRETOKEN_RE.finditer(tail)]
            for piece in pieces[:-1]:
                yield from self._encode_pretoken(piece.encode("utf-8"))
            buffer = (pieces[-1] if pieces else "") + buffer[end:]
        if buffer:
            yield from self.encode(buffer)

    def decode(self, ids: Iterable[int]) -> str:
        """Token ids -> text (invalid UTF-8 from a partial sequence becomes U+FFFD, as in GPT-2)."""
        pieces = []
        for i in ids:
            if i not in self.vocab:
                raise ValueError(f"unknown token id {i!r}; valid ids are 0..{len(self.vocab) - 1}")
            pieces.append(self.vocab[i])
        return b"".join(pieces).decode("utf-8", errors="replace")

    def __len__(self) -> int:
        return len(self.vocab)
