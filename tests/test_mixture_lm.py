"""The mixture experiment's parts: held-out splits, per-window losses, the table's verdicts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from workshop_utils import mixture_lm as ML
from workshop_utils.config import get_profile
from workshop_utils.device import pick_device
from workshop_utils.models import build_course_model
from workshop_utils.tokenizer import train_course_tokenizer

SOURCES = {
    "web": [f"page {i} about markets and travel and the weather today" * 3 for i in range(20)],
    "book": [f"act {i} scene two enter the king and the queen of denmark" * 3 for i in range(8)],
}


def test_split_holds_out_a_share_of_each_source_deterministically():
    train, val = ML.split_documents(SOURCES, val_share=0.25, seed=3)
    assert {k: len(v) for k, v in val.items()} == {"web": 5, "book": 2}
    for k in SOURCES:
        assert sorted(train[k] + val[k]) == sorted(SOURCES[k]) and not set(train[k]) & set(val[k])
    assert ML.split_documents(SOURCES, 0.25, 3) == (train, val)
    with pytest.raises(ValueError, match="val_share"):
        ML.split_documents(SOURCES, 1.5)
    with pytest.raises(ValueError, match="needs >= 4 documents"):
        ML.split_documents({"code": ["a", "b"]})


def test_window_losses_are_the_cross_entropy_of_each_window():
    profile = get_profile("ci")
    tok = train_course_tokenizer(" ".join(t for v in SOURCES.values() for t in v), 300)
    model = build_course_model(profile, vocab_size=len(tok), seed=0)
    ids = ML.token_ids(tok, SOURCES["web"])
    assert ids[-1] == tok.eos_token_id
    got = ML.window_losses(model, ids, 4, 16)
    assert got.shape == (4,)
    s = int(torch.linspace(0, ids.numel() - 17, 4).long()[2])
    with torch.no_grad():
        logits = model(input_ids=ids[s : s + 16][None]).logits[0]
    assert float(got[2]) == pytest.approx(float(F.cross_entropy(logits, ids[s + 1 : s + 17])), rel=1e-5)
    with pytest.raises(ValueError, match="too short"):
        ML.window_losses(model, ids[:10], 2, 16)


def test_compare_mixes_shapes_and_the_table():
    profile = get_profile("ci")
    train, val = ML.split_documents(SOURCES, 0.25)
    tok = train_course_tokenizer(" ".join(t for v in train.values() for t in v), 300)
    mixes = {"web only": {"web": 1.0}, "half": {"web": 0.5, "book": 0.5}}
    losses = ML.compare_mixes(
        train, val, mixes, tok, profile, pick_device(), seeds=(0, 1), steps=3, n_windows=5
    )
    assert set(losses) == set(mixes) and all(
        v.shape == (2, 5) for per in losses.values() for v in per.values()
    )
    table = ML.mixture_table(losses, "web only")
    assert list(table["held-out source"]) == ["web", "book"] and "shows" in table
    with pytest.raises(ValueError, match="baseline"):
        ML.mixture_table(losses, "nope")
    with pytest.raises(ValueError, match="non-empty"):
        ML.compare_mixes(train, val, {}, tok, profile, pick_device())


def test_the_table_states_only_differences_beyond_two_standard_errors():
    base = torch.tensor([[1.0, 1.1, 0.9, 1.0], [1.05, 1.0, 0.95, 1.0]])
    jitter = torch.tensor([[0.01, -0.01, 0.02, -0.02], [-0.01, 0.01, -0.02, 0.02]])  # mean 0, spread > 0
    losses = {"a": {"x": base}, "b": {"x": base - 0.5 + jitter}, "c": {"x": base + jitter}}
    row = ML.mixture_table({"a": losses["a"], "b": losses["b"]}, "a").iloc[0]
    assert row["shows"].startswith("b lower by 0.500")
    row = ML.mixture_table({"a": losses["a"], "c": losses["c"]}, "a").iloc[0]
    assert row["shows"] == "no difference beyond 2 SE"
