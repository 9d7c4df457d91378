"""Module 03's exercises: where two tokenizers disagree, the FLOPs of a real model, vocabulary vs compression."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..bpe import Tokenizer, train_bpe
from ..params import count_parameters, known_config
from ..scale import flops_per_token
from ..scaling import training_flops
from ..tokenizer import SPECIAL_TOKENS
from . import Check

SENTENCE = "Now is the winter of our discontent made glorious summer by this sun of York."
CONTEXTS = (4096, 32_768)


def solution_1(ours: Tokenizer, course_tok: Any) -> dict:
    """Encode one sentence with both tokenizers; which words do they split differently?"""
    sentence = "Now is the winter of our discontent made glorious summer by this sun of York."

    def pieces(text: str) -> tuple[list[str], list[str]]:
        hf_ids = course_tok(text, add_special_tokens=False)["input_ids"]
        return [ours.decode([i]) for i in ours.encode(text)], [course_tok.decode([i]) for i in hf_ids]

    differ = []
    for i, word in enumerate(sentence.split(" ")):
        a, b = pieces(word if i == 0 else " " + word)  # pre-tokenization keeps a word's leading space
        if a != b:
            differ.append(word)
    ours_all, hf_all = pieces(sentence)
    print("ours:", " | ".join(ours_all))
    print("HF:  ", " | ".join(hf_all))
    print(f"split differently: {differ}; tokens: ours {len(ours_all)}, HF {len(hf_all)}")
    # Both learned almost the same merges (they differ only after ties), so most words split alike.
    return {"split_differently": sorted(differ), "ours_tokens": len(ours_all), "hf_tokens": len(hf_all)}


def solution_2() -> dict:
    """Share of LLaMA-2 7B's training FLOPs per token spent on attention scores, at 4k and 32k context."""
    from ..scale import LLAMA2_PARAMS

    n7 = LLAMA2_PARAMS["7B"] - 32000 * 4096  # without the input embedding (Touvron et al. 2023)
    shares = {}
    for context in (4096, 32_768):
        total = flops_per_token(n7, 32, 4096, context)
        shares[context] = 12 * 32 * 4096 * context / total  # the 12 L d T term of flops_per_token
        print(f"context {context:>6}: {total:.3e} FLOPs/token, attention {shares[context]:.1%}")
    # The attention term grows linearly with context: at long context it becomes a big part of the bill.
    return shares


def solution_3(bpe_file: Path, vocab_size: int, val_text: str) -> dict:
    """Bytes per token on held-out text for a smaller and a bigger vocabulary, trained on the same slice."""
    held_out = val_text[:50_000]
    out = {}
    for size in (3 * vocab_size // 4, vocab_size * 2):
        v, m = train_bpe(bpe_file, size, SPECIAL_TOKENS)
        out[size] = len(held_out.encode()) / len(Tokenizer(v, m, SPECIAL_TOKENS).encode(held_out))
        print(f"vocab {size:>5}: {out[size]:.3f} bytes/token")
    # Bigger vocabularies compress better with diminishing returns, but every extra token adds 2 x d_model
    # parameters (embedding + LM head) and spreads the training signal over more, rarer tokens.
    return out


# ---------------------------------------------------------------------------------------- the checks
def _words(pieces: list[str]) -> list[tuple[str, ...]]:
    """Group a sentence's pieces into words: a piece starting with a space starts a new word."""
    words: list[list[str]] = []
    for p in pieces:
        if not words or p.startswith(" "):
            words.append([])
        words[-1].append(p)
    return [tuple(w) for w in words]


def expected_1(ours: Tokenizer, course_tok: Any) -> dict:
    """Words whose pieces differ, from the whole sentence's pieces grouped by word."""
    a = [ours.decode([i]) for i in ours.encode(SENTENCE)]
    b = [course_tok.decode([i]) for i in course_tok(SENTENCE, add_special_tokens=False)["input_ids"]]
    wa, wb = _words(a), _words(b)
    if len(wa) != len(wb):
        raise RuntimeError("the tokenizers disagree on word boundaries: the grouping does not apply")
    differ = sorted("".join(x).strip() for x, y in zip(wa, wb) if x != y)
    return {"split_differently": differ, "ours_tokens": len(a), "hf_tokens": len(b)}


def expected_2() -> dict:
    """1 - 6N / (FLOPs per token), with N from the Llama-2-7B config less its input embedding."""
    cfg = known_config("llama-2-7b")
    n = count_parameters(cfg).total - cfg.vocab_size * cfg.hidden_size
    fpt = {t: flops_per_token(n, cfg.num_hidden_layers, cfg.hidden_size, t) for t in CONTEXTS}
    return {t: 1 - training_flops(n, 1) / fpt[t] for t in CONTEXTS}


def expected_3(bpe_file: Path, vocab_size: int, val_text: str) -> dict:
    """The same two trainings (seeded by nothing: BPE is deterministic)."""
    held = val_text[:50_000].encode()
    out = {}
    for size in (3 * vocab_size // 4, 2 * vocab_size):
        tok = Tokenizer(*train_bpe(bpe_file, size, SPECIAL_TOKENS), SPECIAL_TOKENS)
        out[size] = len(held) / len(tok.encode(held.decode()))
    return out


CHECKS = {
    1: Check(
        expected_1,
        "a dict {'split_differently': sorted list of words as in sentence.split(), 'ours_tokens': int, "
        "'hf_tokens': int}",
        "exact",
    ),
    2: Check(
        expected_2,
        "a dict {context: attention share of the FLOPs per token} for both contexts",
        "1 % (one decimal of a percent will do)",
        rtol=0.01,
    ),
    3: Check(
        expected_3,
        "a dict {vocab size: bytes per token on val_text[:50_000]} for both sizes",
        "0.5 % (three decimals of bytes/token)",
        rtol=0.005,
    ),
}
