"""Claims ledger, module 01: parameter counts vs the published figures in data/published/pretraining.json.

The counts are exact integers (derived from the configs and quoted verbatim elsewhere), so their
tolerance is zero; GPT-2 small and bert-base are the course guide's field notes (a meta-device build).
"""

from __future__ import annotations

import pytest
from published_helpers import expect

from workshop_utils import published
from workshop_utils.lora import lora_paper_count
from workshop_utils.params import build_on_meta, count_model_parameters, count_parameters, known_config
from workshop_utils.scaling import kaplan_param_count

PUBLISHED = [  # (model, file, key)
    ("llama-2-7b", "pretraining", "llama2_7b_params"),
    ("llama-2-13b", "pretraining", "llama2_13b_params"),
    ("llama-2-70b", "pretraining", "llama2_70b_params"),
    ("llama-3-8b", "pretraining", "llama3_8b_params"),
    ("gpt2", "pretraining", "gpt2_params"),
    ("bert-base", "pretraining", "bert_base_params"),
]


@pytest.mark.parametrize(("name", "file", "key"), PUBLISHED)
def test_parameter_count_matches_published(name: str, file: str, key: str) -> None:
    expect(file, key, count_parameters(known_config(name)).total)
    expect(file, key, count_model_parameters(build_on_meta(name)))


def test_llama_2_7b_derivation_terms() -> None:
    """The derivation of 6,738,415,616: embeddings, per-layer attention, MLP and norms, final norm, LM head."""
    c = known_config("llama-2-7b")
    b = count_parameters(c)
    terms = published.group("pretraining", "llama2_7b_count")
    for field in ("attention", "mlp"):
        expect("pretraining", f"llama2_7b_count/{field}_per_layer", getattr(b, field) / c.num_hidden_layers)
    expect("pretraining", "llama2_7b_count/embeddings", b.embeddings)
    expect("pretraining", "llama2_7b_count/lm_head", b.lm_head)
    assert b.norms == c.num_hidden_layers * terms["norms_per_layer"].value + terms["final_norm"].value
    total = sum(f.value * (c.num_hidden_layers if k.endswith("_per_layer") else 1) for k, f in terms.items())
    assert total == b.total == published.value("pretraining", "llama2_7b_params")  # the derivation adds up


def test_kaplan_12_L_d2_approximation() -> None:
    """Kaplan §2.1: N ≈ 12 n_layer d_model² non-embedding parameters. GPT-2 small follows it within 1 %
    (the approximation leaves out its biases and norms, O(n_layer d_model) terms)."""
    c = known_config("gpt2")
    b = count_parameters(c)
    assert b.attention + b.mlp == pytest.approx(kaplan_param_count(c.n_layer, c.n_embd), rel=0.01)


def test_lora_llama_2_7b_r8_qv_count_uses_our_config() -> None:
    """LoRA §5.1 |Θ| = 2 × L̂ × d_model × r on our Llama-2-7B config, r = 8 on q and v: 4,194,304."""
    c = known_config("llama-2-7b")
    expect(
        "fine_tuning",
        "lora_llama2_7b_r8_qv_trainable",
        lora_paper_count(8, c.num_hidden_layers, c.hidden_size),
    )
