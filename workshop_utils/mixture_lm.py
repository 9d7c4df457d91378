"""What the data mixture changes in a model: the same tiny LLaMA trained on two mixes, held-out loss per source.

LLaMA-1 gave Books and GitHub a few percent of its tokens each (Table 1): a web-only corpus would leave the
model poor at exactly the text those sources hold. Here the course model (module 03's architecture, at the
`ci` sizes so it trains in seconds) is trained from scratch on mixes built by `data.mixture.sample_mixture`
from our cleaned sources, with the same steps and seed for every mix, and scored on held-out documents of
each source: mean loss per token (nats) over fixed windows, as a (seeds, windows) matrix so `stats` can give
every difference its error bar (seed noise and window noise together).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import replace

import pandas as pd
import torch
import torch.nn.functional as F

from .data.mixture import sample_mixture
from .models import build_course_model
from .stats import Z, compare, estimate
from .training import TrainConfig, train_lm


def split_documents(
    sources: Mapping[str, list[str]], val_share: float = 0.1, seed: int = 0
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(train, held-out) documents per source: a seeded `val_share` of each source's documents held out."""
    if not 0 < val_share < 1:
        raise ValueError(f"val_share must be in (0, 1), got {val_share!r}")
    train, val = {}, {}
    for name, docs in sources.items():
        if len(docs) < 4:
            raise ValueError(f"sources[{name!r}] needs >= 4 documents to hold some out, got {len(docs)}")
        order = random.Random(f"{seed}-{name}").sample(range(len(docs)), len(docs))
        k = max(1, round(val_share * len(docs)))
        val[name] = [docs[i] for i in sorted(order[:k])]
        train[name] = [docs[i] for i in sorted(order[k:])]
    return train, val


def encode_documents(tokenizer, texts: list[str]) -> dict[str, list[int]]:
    """Each distinct document's token ids followed by the end-of-sequence token (one batch call)."""
    unique = list(dict.fromkeys(texts))
    eos = tokenizer.eos_token_id
    return {t: [*ids, eos] for t, ids in zip(unique, tokenizer(unique)["input_ids"])} if unique else {}


def token_ids(tokenizer, texts: list[str], encoded: Mapping[str, list[int]] | None = None) -> torch.Tensor:
    """One stream of token ids: the documents joined, each followed by the end-of-sequence token."""
    encoded = encoded if encoded is not None else encode_documents(tokenizer, texts)
    return torch.tensor([i for t in texts for i in encoded[t]], dtype=torch.long)  # (L,)


@torch.no_grad()
def window_losses(model: torch.nn.Module, ids: torch.Tensor, n_windows: int, context: int) -> torch.Tensor:
    """Mean next-token loss of each of `n_windows` fixed, evenly spaced windows of `ids`: shape (n_windows,)."""
    last = ids.numel() - context - 1
    if last <= 0:
        raise ValueError(f"held-out text too short for context {context}: {ids.numel()} tokens")
    starts = torch.linspace(0, last, n_windows).long()
    x = torch.stack([ids[s : s + context] for s in starts])  # (N, T)
    y = torch.stack([ids[s + 1 : s + 1 + context] for s in starts])  # (N, T)
    was = model.training
    model.eval()
    logits = model(input_ids=x).logits.float()  # (N, T, V)
    model.train(was)
    loss = F.cross_entropy(logits.transpose(1, 2), y, reduction="none")  # (N, T)
    return loss.mean(1)


def compare_mixes(
    train: Mapping[str, list[str]],
    val: Mapping[str, list[str]],
    mixes: Mapping[str, Mapping[str, float]],
    tokenizer,
    profile,
    device,
    seeds: tuple[int, ...] = (0, 1),
    steps: int = 150,
    n_windows: int = 64,
) -> dict[str, dict[str, torch.Tensor]]:
    """Train one model per (mix, seed) for `steps` steps; per mix and held-out source a (seeds, windows) loss matrix.

    A mix maps source -> proportion (a source it leaves out gets 0); every run reads the same number of
    tokens (`steps` x batch x context) so the mixes differ only in what those tokens are.
    """
    if not mixes or not seeds:
        raise ValueError("mixes and seeds must be non-empty")
    lm = profile.lm
    cfg = TrainConfig(steps=steps, lr=lm.lr, batch_size=lm.batch_size, context=lm.context,
                      warmup=min(lm.warmup, steps // 10), eval_batches=2)  # fmt: skip
    budget = steps * cfg.batch_size * (cfg.context + 1)  # tokens one run reads
    held = {name: token_ids(tokenizer, docs) for name, docs in val.items()}
    encoded = encode_documents(tokenizer, [t for docs in train.values() for t in docs])  # each document once

    def n_tokens(text: str) -> int:
        return len(encoded[text])  # with its end-of-sequence token

    val_all = torch.cat(list(held.values()))
    out: dict[str, dict[str, list[torch.Tensor]]] = {m: {s: [] for s in held} for m in mixes}
    for mix_name, props in mixes.items():
        used = {s: p for s, p in props.items() if p > 0}
        for seed in seeds:
            mix = sample_mixture({s: train[s] for s in used}, used, budget, count_tokens=n_tokens, seed=seed)
            ids = token_ids(tokenizer, [text for _, text in mix.docs], encoded)
            model = build_course_model(profile, vocab_size=len(tokenizer), seed=seed)
            train_lm(model, ids, val_all, replace(cfg, seed=seed), device, show_progress=False)
            for source, ids_val in held.items():
                out[mix_name][source].append(window_losses(model, ids_val, n_windows, cfg.context))
    return {m: {s: torch.stack(v) for s, v in per.items()} for m, per in out.items()}  # (S, N) each


def mixture_table(losses: Mapping[str, Mapping[str, object]], baseline: str) -> pd.DataFrame:
    """Per held-out source: each mix's loss (mean ± SE) and each mix minus `baseline` with what it shows.

    `losses` as `compare_mixes` returns it (or its JSON form: nested lists). A difference is stated only
    beyond `stats.Z` standard errors."""
    if baseline not in losses:
        raise ValueError(f"baseline must be one of {sorted(losses)}, got {baseline!r}")
    rows = []
    for source in losses[baseline]:
        base = torch.as_tensor(losses[baseline][source])
        row: dict[str, object] = {"held-out source": source, f"{baseline} (nats/token)": str(estimate(base))}
        for mix, per in losses.items():
            if mix == baseline:
                continue
            mine = torch.as_tensor(per[source])
            diff, _ = compare(mine, base)
            if abs(diff.mean) <= Z * diff.se:
                said = f"no difference beyond {Z:g} SE"
            else:
                said = f"{mix if diff.mean < 0 else baseline} lower by {abs(diff.mean):.3f} ({abs(diff.mean) / diff.se:.0f} SE)"
            row |= {
                f"{mix} (nats/token)": str(estimate(mine)),
                f"{mix} - {baseline}": str(diff),
                "shows": said,
            }
        rows.append(row)
    return pd.DataFrame(rows)
