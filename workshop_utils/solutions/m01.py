"""Module 01's exercises: tied embeddings, the KV cache at scale, multi-head attention on the tiny LLaMA."""

from __future__ import annotations

from typing import Any

from .. import architectures as A
from ..params import build_on_meta, count_model_parameters, count_parameters, known_config
from . import Check

GIB = 2**30


def solution_1() -> int:
    """Parameters Llama-2-7B would save with its LM head tied to the token embedding."""
    cfg = known_config("llama-2-7b")
    untied = count_parameters(cfg).total
    cfg.tie_word_embeddings = True
    tied = count_parameters(cfg).total
    print(f"tied: {tied:,}; saved {untied - tied:,} = vocab x hidden = {cfg.vocab_size * cfg.hidden_size:,}")
    assert tied == count_model_parameters(build_on_meta(cfg))  # the meta-device model agrees
    return untied - tied


def solution_2() -> dict:
    """Llama-3-8B's bf16 KV cache for 8 sequences of 8192 tokens, with GQA and with MHA, and its weights."""
    cfg = known_config("llama-3-8b")
    gqa = A.kv_cache_bytes(cfg, seq_len=8192, batch_size=8)
    cfg.num_key_value_heads = cfg.num_attention_heads
    mha = A.kv_cache_bytes(cfg, seq_len=8192, batch_size=8)
    weights = 2 * count_parameters(known_config("llama-3-8b")).total  # bf16: 2 bytes per parameter
    print(f"GQA {gqa / GIB:.1f} GiB, MHA {mha / GIB:.1f} GiB, weights {weights / GIB:.1f} GiB")
    assert mha > weights > gqa  # with MHA the cache alone would outgrow the weights; GQA keeps it below
    return {"gqa_gib": gqa / GIB, "mha_gib": mha / GIB, "weights_gib": weights / GIB}


def solution_3(vocab: A.CharVocab, arch: Any, tiny: Any) -> dict:
    """The tiny LLaMA rebuilt with as many key/value heads as query heads: cache and parameters vs GQA."""
    import transformers

    mha_cfg = A.tiny_config("llama", vocab, arch, arch.context)
    mha_cfg.num_key_value_heads = mha_cfg.num_attention_heads
    mha_model = transformers.LlamaForCausalLM(mha_cfg)
    gqa_kv = A.measured_kv_cache_bytes(tiny, arch.context)
    mha_kv = A.measured_kv_cache_bytes(mha_model, arch.context)
    gqa_params, mha_params = count_model_parameters(tiny), count_model_parameters(mha_model)
    print(f"cache bytes: GQA {gqa_kv:,}, MHA {mha_kv:,} (ratio {mha_kv / gqa_kv:.1f})")
    print(f"params: GQA {gqa_params:,}, MHA {mha_params:,}")
    assert count_parameters(mha_cfg).total == mha_params  # the closed-form counter still agrees
    return {
        "cache_ratio": mha_kv / gqa_kv,
        "gqa_params": gqa_params,
        "mha_params": mha_params,
        "counter_agrees": count_parameters(mha_cfg).total == mha_params,
    }


# ---------------------------------------------------------------------------------------- the checks
def expected_1() -> int:
    """The difference counted on meta-device models (no closed form involved)."""
    untied, tied = known_config("llama-2-7b"), known_config("llama-2-7b")
    tied.tie_word_embeddings = True
    return count_model_parameters(build_on_meta(untied)) - count_model_parameters(build_on_meta(tied))


def expected_2() -> dict:
    """Cache sizes from the formula, weights from the meta-device model."""
    gqa, mha = known_config("llama-3-8b"), known_config("llama-3-8b")
    mha.num_key_value_heads = mha.num_attention_heads
    return {
        "gqa_gib": A.kv_cache_bytes(gqa, 8192, 8) / GIB,
        "mha_gib": A.kv_cache_bytes(mha, 8192, 8) / GIB,
        "weights_gib": 2 * count_model_parameters(build_on_meta(gqa)) / GIB,
    }


def expected_3(vocab: A.CharVocab, arch: Any, tiny: Any) -> dict:
    """The ratio from the heads, the counts in closed form, and the counter must agree."""
    mha_cfg = A.tiny_config("llama", vocab, arch, arch.context)
    mha_cfg.num_key_value_heads = mha_cfg.num_attention_heads
    heads = tiny.config.num_attention_heads / tiny.config.num_key_value_heads
    return {
        "cache_ratio": heads,
        "gqa_params": count_parameters(tiny.config).total,
        "mha_params": count_parameters(mha_cfg).total,
        "counter_agrees": True,
    }


CHECKS = {
    1: Check(expected_1, "an int: parameters saved", "exact (a parameter count)"),
    2: Check(
        expected_2,
        "a dict {'gqa_gib': ..., 'mha_gib': ..., 'weights_gib': ...} in GiB (2**30 bytes)",
        "1 % (a decimal of GiB will do)",
        rtol=0.01,
    ),
    3: Check(
        expected_3,
        "a dict {'cache_ratio': MHA / GQA cache bytes, 'gqa_params': int, 'mha_params': int, "
        "'counter_agrees': bool}",
        "exact counts; the ratio to 1e-9",
        rtol=1e-9,
    ),
}
