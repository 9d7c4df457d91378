"""The data mixture: LLaMA-1's Table 1 re-derived, and a sampler that builds a training mix the same way.

A pre-training corpus is not one crawl but several sources, each given a share of the training tokens
(its *sampling proportion*). A source whose share needs more tokens than it holds is repeated (epochs > 1);
a big one is only partly used (epochs < 1). LLaMA-1 (Touvron et al. 2023, arXiv:2302.13971, Table 1)
publishes the proportion, the epochs and the disk size of each source; `llama_table1` recomputes the
tokens behind them, and `sample_mixture` builds such a mix from our own cleaned sources.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..published import figure, group

FILE = "data_pipeline"
TABLE1 = "llama_table1"  # group of data_pipeline.json: <source>/proportion, /epochs, /disk
TRAINING_TOKENS = ("planning", "llama1_65b_tokens")  # 1.4T: the run Table 1's epochs refer to
SUM_TOLERANCE = 1e-6  # how far a sampler's proportions may sum from 1
# Which Table 1 sources each kind of document in our crawl stands for (used by `table1_proportions`).
OUR_KINDS = {"web": ("CommonCrawl", "C4"), "book": ("Books",), "code": ("Github",)}


def llama_table1() -> pd.DataFrame:
    """LLaMA-1 Table 1 per source: published proportion, epochs, disk bytes; computed tokens and bytes/token.

    sampled tokens = proportion x 1.4T (what training read from the source), unique tokens = sampled /
    epochs (the size of the source's subset), bytes per token = disk bytes / unique tokens. Epochs are
    above 1 for the small high-quality sources (Wikipedia 2.45, Books 2.23): the authors chose to see
    them more than once rather than let the web's bulk drown them, while most of Github (0.64) is never
    read. Every source lands at a few bytes per token, as a subword tokenizer on text does.
    """
    total = figure(*TRAINING_TOKENS).value
    rows: dict[str, dict[str, float]] = {}
    for item, fig in group(FILE, TABLE1).items():
        source, field = item.split("/")
        rows.setdefault(source, {})[field] = float(fig.value)
    df = pd.DataFrame.from_dict(rows, orient="index")[["proportion", "epochs", "disk"]]
    df = df.rename(columns={"disk": "disk_bytes"})
    df["sampled_tokens"] = df["proportion"] * total
    df["unique_tokens"] = df["sampled_tokens"] / df["epochs"]
    df["bytes_per_token"] = df["disk_bytes"] / df["unique_tokens"]
    df.index.name = "source"
    return df


def proportion_sum() -> tuple[float, float]:
    """(sum of Table 1's proportions, the most the table's rounding can move that sum): half a unit each."""
    figs = [f for item, f in group(FILE, TABLE1).items() if item.endswith("/proportion")]
    slack = sum(f.tolerance.rel * abs(f.value) for f in figs if f.tolerance is not None)
    return math.fsum(f.value for f in figs), slack


def proportions_sum_to_one() -> bool:
    """Table 1's proportions sum to 1 within what their printed digits can hide."""
    total, slack = proportion_sum()
    return abs(total - 1.0) <= slack + 1e-12


def table1_proportions(kinds: Mapping[str, tuple[str, ...]] = OUR_KINDS) -> dict[str, float]:
    """Proportions for our own sources: each kind gets the summed Table 1 share of its sources, renormalised."""
    table = llama_table1()
    if not isinstance(kinds, Mapping) or not kinds:
        raise ValueError("kinds must be a non-empty mapping of kind -> Table 1 source names")
    unknown = sorted({s for names in kinds.values() for s in names} - set(table.index))
    if unknown:
        raise ValueError(f"kinds: unknown Table 1 sources {unknown}; valid: {list(table.index)}")
    raw = {k: float(table.loc[list(names), "proportion"].sum()) for k, names in kinds.items()}
    total = math.fsum(raw.values())
    return {k: v / total for k, v in raw.items()}


def whitespace_tokens(text: str) -> int:
    """The default token count: whitespace-separated words (`len(text.split())`), a tokenizer stand-in."""
    return len(text.split())


@dataclass(frozen=True)
class Mixture:
    """A training mix: (source, text) pairs in a seeded shuffled order, and what each source contributed."""

    docs: list[tuple[str, str]]
    proportions: dict[str, float]
    total_tokens: int  # the target
    documents: dict[str, int]  # documents each source holds
    available: dict[str, int]  # tokens each source holds
    picked: dict[str, int]  # documents drawn from each source (repeats counted)
    sampled: dict[str, int]  # tokens drawn from each source

    def table(self) -> pd.DataFrame:
        """Per source, as Table 1 reports it: available and sampled tokens, share, epochs (= sampled/available)."""
        names = list(self.proportions)
        tokens = sum(self.sampled.values())
        df = pd.DataFrame(
            {
                "documents": [self.documents[n] for n in names],
                "available_tokens": [self.available[n] for n in names],
                "proportion": [self.proportions[n] for n in names],
                "target_tokens": [self.proportions[n] * self.total_tokens for n in names],
                "documents_sampled": [self.picked[n] for n in names],
                "sampled_tokens": [self.sampled[n] for n in names],
            },
            index=pd.Index(names, name="source"),
        )
        df["share"] = df["sampled_tokens"] / tokens if tokens else 0.0
        df["epochs"] = df["sampled_tokens"] / df["available_tokens"]
        return df


def _check_inputs(sources: object, proportions: object, total_tokens: object, seed: object) -> None:
    """Raise a ValueError/TypeError naming the argument unless the sampler's inputs make sense."""
    if not isinstance(sources, Mapping) or not sources:
        raise TypeError("sources must be a non-empty dict of source name -> list of texts")
    if not isinstance(proportions, Mapping):
        raise TypeError("proportions must be a dict of source name -> share of the tokens")
    missing, unknown = sorted(set(sources) - set(proportions)), sorted(set(proportions) - set(sources))
    if missing or unknown:
        raise ValueError(f"proportions: missing sources {missing}, unknown sources {unknown}")
    for name, p in proportions.items():
        if isinstance(p, bool) or not isinstance(p, int | float) or not math.isfinite(p):
            raise TypeError(f"proportions[{name!r}] must be a finite number, got {p!r}")
        if p < 0:
            raise ValueError(f"proportions[{name!r}] must be >= 0, got {p}")
    total = math.fsum(proportions.values())
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise ValueError(f"proportions must sum to 1 (within {SUM_TOLERANCE}), got {total}")
    for name, texts in sources.items():
        if not isinstance(texts, list | tuple) or not all(isinstance(t, str) for t in texts):
            raise TypeError(f"sources[{name!r}] must be a list of str")
        if not texts:
            raise ValueError(f"sources[{name!r}] is empty: a source needs at least one document")
    if isinstance(total_tokens, bool) or not isinstance(total_tokens, int):
        raise TypeError(f"total_tokens must be an int, got {total_tokens!r}")
    if total_tokens <= 0:
        raise ValueError(f"total_tokens must be > 0, got {total_tokens}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")


def _counts(name: str, texts: list[str], count_tokens: Callable[[str], int]) -> list[int]:
    """Tokens of each text of source `name`; a clear error for a counter that returns nonsense."""
    counts = [count_tokens(t) for t in texts]
    bad = [c for c in counts if isinstance(c, bool) or not isinstance(c, int | np.integer) or c < 0]
    if bad:
        raise ValueError(f"count_tokens must return ints >= 0, got {bad[0]!r} for a text of {name!r}")
    return [int(c) for c in counts]


def _draw(counts: list[int], target: float, rng: np.random.Generator) -> list[int]:
    """Indices drawn in seeded passes (a fresh permutation each pass) until the tokens are closest to target.

    A document is taken while it brings the total closer (total + its tokens / 2 < target), so the total
    ends within half a document of the target: a subset when the source is bigger, repeats when smaller.
    """
    picked: list[int] = []
    got = 0
    while True:
        for i in rng.permutation(len(counts)):
            if got + counts[i] / 2 >= target:
                return picked
            picked.append(int(i))
            got += counts[i]


def sample_mixture(
    sources: dict[str, list[str]],
    proportions: dict[str, float],
    total_tokens: int,
    count_tokens: Callable[[str], int] | None = None,
    seed: int = 0,
) -> Mixture:
    """A training mix of about `total_tokens` tokens in which each source's share is its proportion.

    Each source is drawn in seeded passes over its documents until its tokens are within half a document of
    proportion x total_tokens: it is repeated when it holds fewer tokens (epochs > 1) and only a seeded
    subset is used when it holds more (epochs < 1). The drawn (source, text) pairs are then shuffled with
    the same seed. `count_tokens` defaults to `whitespace_tokens` (whitespace-separated words); pass a
    tokenizer's `lambda t: len(tok.encode(t))` to count real tokens. Proportions must sum to 1 (1e-6).
    """
    _check_inputs(sources, proportions, total_tokens, seed)
    count = whitespace_tokens if count_tokens is None else count_tokens
    if not callable(count):
        raise TypeError(f"count_tokens must be callable or None, got {count_tokens!r}")
    names = list(proportions)
    docs: list[tuple[str, str]] = []
    documents, available, picked, sampled = {}, {}, {}, {}
    for name in names:
        texts = list(sources[name])
        counts = _counts(name, texts, count)
        available[name], documents[name] = sum(counts), len(texts)
        target = proportions[name] * total_tokens
        if available[name] == 0 and target > 0:
            raise ValueError(
                f"sources[{name!r}] has no tokens: nothing to sample for proportion {proportions[name]}"
            )
        rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])  # per source, order-free
        idx = _draw(counts, target, rng) if target > 0 else []
        picked[name], sampled[name] = len(idx), sum(counts[i] for i in idx)
        docs += [(name, texts[i]) for i in idx]
    order = np.random.default_rng(seed).permutation(len(docs))
    return Mixture(
        [docs[i] for i in order], dict(proportions), total_tokens, documents, available, picked, sampled
    )
