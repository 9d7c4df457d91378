"""Closed-form parameter counts vs real models instantiated on the meta device."""

from __future__ import annotations

import pytest
import torch
import transformers as tf

from workshop_utils.params import (
    CATEGORIES,
    KNOWN_CONFIGS,
    ParamBreakdown,
    build_on_meta,
    count_model_parameters,
    count_parameters,
    known_config,
    model_breakdown,
)


@pytest.mark.parametrize("name", KNOWN_CONFIGS)
def test_known_configs_match_meta_models_exactly(name: str) -> None:
    model = build_on_meta(name)
    assert all(p.device.type == "meta" for p in model.parameters())
    closed = count_parameters(known_config(name))
    assert closed.total == count_model_parameters(model)
    assert closed == model_breakdown(model)  # every category, not only the total


# Variants the known configs do not exercise: untied heads, gated T5, biases, explicit head_dim.
VARIANTS = {
    "bert-untied": tf.BertConfig(
        vocab_size=101,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=48,
        max_position_embeddings=40,
        type_vocab_size=3,
        tie_word_embeddings=False,
    ),
    "gpt2-untied-n_inner": tf.GPT2Config(
        vocab_size=97, n_positions=33, n_embd=32, n_layer=3, n_head=4, n_inner=80, tie_word_embeddings=False
    ),
    "t5-v1.1-gated-untied": tf.T5Config(
        vocab_size=120,
        d_model=32,
        d_kv=8,
        d_ff=72,
        num_layers=2,
        num_decoder_layers=3,
        num_heads=3,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
    ),
    "llama-biases-headdim-tied": tf.LlamaConfig(
        vocab_size=99,
        hidden_size=48,
        intermediate_size=80,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        attention_bias=True,
        mlp_bias=True,
        tie_word_embeddings=True,
    ),
    "mistral-gqa": tf.MistralConfig(
        vocab_size=77,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=8,
        num_key_value_heads=2,
        tie_word_embeddings=False,
    ),
}


@pytest.mark.parametrize("name", VARIANTS)
def test_variants_match_meta_models_exactly(name: str) -> None:
    config = VARIANTS[name]
    model = build_on_meta(config)
    assert count_parameters(config) == model_breakdown(model)
    assert count_parameters(config).total == count_model_parameters(model)


def test_tying_saves_exactly_one_vocab_by_hidden_matrix() -> None:
    tied, untied = known_config("gpt2"), known_config("gpt2")
    untied.tie_word_embeddings = False
    diff = count_parameters(untied).total - count_parameters(tied).total
    assert diff == tied.vocab_size * tied.n_embd
    assert count_model_parameters(build_on_meta(untied)) - count_model_parameters(build_on_meta(tied)) == diff


def test_gqa_shrinks_only_attention() -> None:
    mha = known_config("llama-3-8b")
    mha.num_key_value_heads = mha.num_attention_heads
    gqa = count_parameters(known_config("llama-3-8b"))
    full = count_parameters(mha)
    head_dim = mha.hidden_size // mha.num_attention_heads
    saved = mha.num_hidden_layers * 2 * mha.hidden_size * (32 - 8) * head_dim  # k and v projections
    assert full.attention - gqa.attention == saved
    assert (full.mlp, full.embeddings, full.norms) == (gqa.mlp, gqa.embeddings, gqa.norms)


def test_breakdown_helpers() -> None:
    b = ParamBreakdown(embeddings=1, attention=2, mlp=3, norms=4, lm_head=5, other=6)
    assert b.total == 21
    assert b.as_dict()["total"] == 21 and set(CATEGORIES) <= set(b.as_dict())
    assert sum(b.fractions().values()) == pytest.approx(1.0)


def test_known_config_returns_fresh_objects() -> None:
    a = known_config("llama-2-7b")
    a.num_hidden_layers = 1
    assert known_config("llama-2-7b").num_hidden_layers == 32


def test_unsupported_config_names_type_and_valid_ones() -> None:
    with pytest.raises(TypeError, match=r"OPTConfig.*LlamaConfig"):
        count_parameters(tf.OPTConfig())
    with pytest.raises(TypeError, match=r"'dict'.*BertConfig"):
        count_parameters({"hidden_size": 8})
    with pytest.raises(TypeError, match="OPTConfig"):
        build_on_meta(tf.OPTConfig())


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match=r"'llama-9b'.*llama-2-7b"):
        known_config("llama-9b")
    with pytest.raises(ValueError, match="gpt-5"):
        build_on_meta("gpt-5")


def test_meta_build_allocates_no_storage() -> None:
    model = build_on_meta("llama-2-70b")
    assert next(model.parameters()).device == torch.device("meta")
