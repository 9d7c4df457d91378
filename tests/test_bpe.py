"""Unit tests of the from-scratch byte-level BPE (workshop_utils.bpe)."""

from __future__ import annotations

import random

import pytest

from workshop_utils.bpe import (
    Tokenizer,
    first_difference,
    merge_count,
    pretokenize_counts,
    train_bpe,
    train_hf_bpe,
)

# Sennrich et al.'s toy corpus; with GPT-2 pre-tokenisation the words carry their leading space:
# "low" x1, " low" x4, " lower" x2, " widest" x3, " newest" x6.
TOY = "low low low low low lower lower widest widest widest newest newest newest newest newest newest"

# Worked by hand (pair counts before each merge; ties -> lexicographically greatest pair of bytes):
#  1 (s,t)        9  ties (e,s) 9, and "s" > "e"
#  2 (e,st)       9
#  3 (o,w)        7  ties (l,o) 7
#  4 (l,ow)       7
#  5 (w,est)      6  ties (" ",low) (" ",n) (n,e) (e,w)... first byte "w" is greatest
#  6 (n,e)        6  ties (" ",low) (" ",n) (e,west)
#  7 (ne,west)    6  ties (" ",low) (" ",ne)
#  8 (" ",newest) 6  ties (" ",low): "newest" > "low"
#  9 (" ",low)    6
HAND_MERGES = [
    (b"s", b"t"),
    (b"e", b"st"),
    (b"o", b"w"),
    (b"l", b"ow"),
    (b"w", b"est"),
    (b"n", b"e"),
    (b"ne", b"west"),
    (b" ", b"newest"),
    (b" ", b"low"),
]


@pytest.fixture
def toy_file(tmp_path):
    path = tmp_path / "toy.txt"
    path.write_text(TOY, encoding="utf-8")
    return path


def _write(tmp_path, text, name="corpus.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_pretokenize_counts_gpt2_split():
    counts = pretokenize_counts(TOY, [])
    assert counts == {b"low": 1, b" low": 4, b" lower": 2, b" widest": 3, b" newest": 6}


def test_exact_merges_on_hand_checked_corpus(toy_file):
    vocab, merges = train_bpe(toy_file, 256 + len(HAND_MERGES))
    assert merges == HAND_MERGES
    assert len(vocab) == 256 + len(HAND_MERGES)
    assert [vocab[i] for i in range(256)] == [bytes([b]) for b in range(256)]
    assert vocab[256 + 8] == b" low"


def test_training_stops_when_nothing_left_to_merge(toy_file):
    vocab, merges = train_bpe(toy_file, 10_000)
    # every pre-token ends as one token: 5 distinct words need 2+3+4+5+5 ... merges, far below 10k
    assert len(merges) < 30
    tok = Tokenizer(vocab, merges)
    assert [len(tok.encode(w)) for w in ["low", " low", " lower", " widest", " newest"]] == [1] * 5


def test_special_tokens_in_vocab_and_never_merged(tmp_path):
    text = "ab<|eos|>ab<|eos|>ab<|eos|>" * 20
    vocab, merges = train_bpe(_write(tmp_path, text), 270, ["<|eos|>"])
    assert vocab[256] == b"<|eos|>"
    assert all(b"<|" not in a + b for a, b in merges)  # nothing from inside or across the special token
    assert (b"a", b"b") in merges
    tok = Tokenizer(vocab, merges, ["<|eos|>"])
    ids = tok.encode("ab<|eos|>ab")
    assert ids.count(256) == 1 and tok.decode(ids) == "ab<|eos|>ab"


def test_overlapping_special_tokens_longest_wins(toy_file):
    vocab, merges = train_bpe(toy_file, 270, ["<|end|>", "<|endoftext|>"])
    tok = Tokenizer(vocab, merges, ["<|end|>", "<|endoftext|>"])
    ids = tok.encode("a<|endoftext|>b<|end|>")
    assert tok.ids[b"<|endoftext|>"] in ids and tok.ids[b"<|end|>"] in ids
    assert tok.decode(ids) == "a<|endoftext|>b<|end|>"


def test_training_is_deterministic(tmp_path):
    rng = random.Random(1)
    words = ["the", "then", "there", "these", "hat", "that", "at", "a"]
    text = " ".join(rng.choice(words) for _ in range(2000))
    path = _write(tmp_path, text)
    assert train_bpe(path, 300) == train_bpe(path, 300)


def _random_unicode(rng: random.Random, n: int) -> str:
    """Random text mixing ASCII, accents, CJK, emoji, whitespace and apostrophes (no surrogates)."""
    pools = [
        "abcdefghij ABC 0123 .,;'!?",
        " \n\t  ",
        "éèüßñçø",
        "日本語中文한국어",
        "😀🎉🚀👍🏽",
        "'s 're 've 'll",
    ]
    out = []
    for _ in range(n):
        if rng.random() < 0.1:
            cp = rng.randint(0x20, 0x10FFFF)
            if 0xD800 <= cp <= 0xDFFF:
                cp = 0x41
            out.append(chr(cp))
        else:
            out.append(rng.choice(rng.choice(pools)))
    return "".join(out)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    rng = random.Random(0)
    text = _random_unicode(rng, 20_000) + " the cat sat on the mat " * 200
    path = tmp_path_factory.mktemp("bpe") / "mixed.txt"
    path.write_text(text, encoding="utf-8")
    specials = ["<|bos|>", "<|eos|>"]
    vocab, merges = train_bpe(path, 600, specials)
    return Tokenizer(vocab, merges, specials)


def test_round_trip_random_unicode(trained):
    rng = random.Random(42)
    for _ in range(200):
        s = _random_unicode(rng, rng.randint(0, 80))
        if rng.random() < 0.3:
            s = s + "<|eos|>" + s[: len(s) // 2]
        assert trained.decode(trained.encode(s)) == s


def test_encode_compresses_seen_text(trained):
    s = " the cat sat on the mat" * 5
    assert len(trained.encode(s)) < len(s.encode("utf-8")) / 2


def test_encode_iterable_equals_encode_for_any_chunking(trained):
    rng = random.Random(7)
    for _ in range(50):
        s = _random_unicode(rng, 300) + "<|bos|>x<|eos|>  \n\n it's"
        cuts = sorted(rng.sample(range(1, len(s)), 12))
        chunks = [s[i:j] for i, j in zip([0, *cuts], [*cuts, len(s)], strict=True)]
        assert list(trained.encode_iterable(chunks)) == trained.encode(s)


def test_encode_iterable_on_file_lines(trained, tmp_path):
    text = "First line\n\n  second 'line'\n<|eos|>third\n"
    path = _write(tmp_path, text)
    with open(path, encoding="utf-8") as f:
        assert list(trained.encode_iterable(f)) == trained.encode(text)


def test_decode_unknown_id_raises(trained):
    with pytest.raises(ValueError, match="unknown token id 99999"):
        trained.decode([1, 99999])


def test_vocab_too_small_raises(toy_file):
    with pytest.raises(ValueError, match=r"vocab_size must be .*>= 256 bytes \+ 2 special tokens = 258"):
        train_bpe(toy_file, 257, ["<|a|>", "<|b|>"])


def test_empty_corpus_raises(tmp_path):
    with pytest.raises(ValueError, match="no text"):
        train_bpe(_write(tmp_path, ""), 300)
    with pytest.raises(ValueError, match="no text"):
        train_bpe(_write(tmp_path, "<|eos|><|eos|>", "only_specials.txt"), 300, ["<|eos|>"])


def test_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="input_path"):
        train_bpe(tmp_path / "nope.txt", 300)


def test_bad_special_tokens_raise(toy_file):
    with pytest.raises(ValueError, match="distinct"):
        train_bpe(toy_file, 300, ["<|a|>", "<|a|>"])
    with pytest.raises(ValueError, match="non-empty"):
        train_bpe(toy_file, 300, [""])


def test_tokenizer_rejects_inconsistent_merges():
    vocab = {i: bytes([i]) for i in range(256)}
    with pytest.raises(ValueError, match="not in vocab"):
        Tokenizer(vocab, [(b"a", b"b")])


def test_equal_to_hf_tokenizers_with_its_tie_rule(tmp_path):
    from workshop_utils.config import get_profile
    from workshop_utils.corpus import load_corpus

    text = load_corpus(get_profile("ci")).train[:60_000]
    path = _write(tmp_path, text)
    specials = ["<|pad|>", "<|eos|>"]
    hf = train_hf_bpe(text, 700, specials)
    ours_hf_rule = train_bpe(path, 700, specials, tie_break="hf")[1]
    assert ours_hf_rule == hf  # same algorithm, same counts, same ties -> identical merges
    ours = train_bpe(path, 700, specials)[1]
    assert ours != hf and set(ours[:40]) == set(hf[:40])  # the default tie rule only reorders ties
    counts = pretokenize_counts(text, specials)
    first = first_difference(ours, hf)
    assert merge_count(counts, ours, first) == merge_count(counts, hf, first)  # the first difference is a tie
    assert ours[first] > hf[first]  # ... that we break towards the greatest pair, HF towards smaller ids


def test_tie_break_validated(toy_file):
    with pytest.raises(ValueError, match="tie_break"):
        train_bpe(toy_file, 300, tie_break="random")
