"""Where a transformer's parameters live: a closed-form counter from a `transformers` config.

`count_parameters(config)` does the arithmetic by hand from the config's numbers (the lesson), and
`count_model_parameters(build_on_meta(config))` asks a real model built on the meta device (no memory,
milliseconds) for the same numbers; the tests check both agree exactly, category by category.

Supported configs (and the model class they are counted as):

| config        | model                          |
|---------------|--------------------------------|
| BertConfig    | BertForMaskedLM (MLM head)     |
| GPT2Config    | GPT2LMHeadModel                |
| T5Config      | T5ForConditionalGeneration     |
| LlamaConfig   | LlamaForCausalLM               |
| MistralConfig | MistralForCausalLM             |

Stable API (modules 04 memory and 08 LoRA import it): `ParamBreakdown`, `count_parameters`,
`known_config`, `KNOWN_CONFIGS`, `build_on_meta`, `count_model_parameters`, `model_breakdown`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import transformers as tf

CATEGORIES = ("embeddings", "attention", "mlp", "norms", "lm_head", "other")


@dataclass(frozen=True)
class ParamBreakdown:
    """Parameter counts by where they live; `total` is their sum."""

    embeddings: int = 0  # token (+ learned position / token-type) embedding tables
    attention: int = 0  # q, k, v, o projections (+ biases, + T5's relative-position bias)
    mlp: int = 0  # feed-forward blocks
    norms: int = 0  # LayerNorm / RMSNorm scales (+ biases)
    lm_head: int = 0  # output projection when untied (+ BERT's MLM transform and output bias)
    other: int = 0  # anything else (none for the supported models)

    @property
    def total(self) -> int:
        """All parameters, each shared tensor counted once."""
        return sum(asdict(self).values())

    def as_dict(self) -> dict[str, int]:
        """Categories plus `total`, for tables."""
        return {**asdict(self), "total": self.total}

    def fractions(self) -> dict[str, float]:
        """Share of the total per category."""
        return {k: v / self.total for k, v in asdict(self).items()}


# --- the closed forms, one per family ---------------------------------------------------------


def _bert(c: tf.BertConfig) -> ParamBreakdown:
    """BertForMaskedLM: post-norm encoder with biases; decoder weight tied to the word embeddings."""
    h, i, v = c.hidden_size, c.intermediate_size, c.vocab_size
    layers = c.num_hidden_layers
    emb = (v + c.max_position_embeddings + c.type_vocab_size) * h
    attn = 4 * (h * h + h)  # query, key, value, output dense, each with a bias
    mlp = (h * i + i) + (i * h + h)  # intermediate.dense, output.dense
    norms_per_layer = 2 * (2 * h)  # two LayerNorms (weight + bias)
    head = (h * h + h) + v  # transform.dense + per-token output bias (transform LayerNorm is in norms)
    if not c.tie_word_embeddings:  # transformers 5 then ties neither decoder weight nor decoder bias
        head += v * h + v
    return ParamBreakdown(
        embeddings=emb,
        attention=layers * attn,
        mlp=layers * mlp,
        norms=2 * h + layers * norms_per_layer + 2 * h,  # embeddings LN, per-layer LNs, head LN
        lm_head=head,
    )


def _gpt2(c: tf.GPT2Config) -> ParamBreakdown:
    """GPT2LMHeadModel: pre-norm decoder, learned positions, GELU MLP, biases everywhere."""
    h, v, layers = c.n_embd, c.vocab_size, c.n_layer
    inner = c.n_inner if c.n_inner is not None else 4 * h
    attn = (h * 3 * h + 3 * h) + (h * h + h)  # fused c_attn (q, k, v) + c_proj
    mlp = (h * inner + inner) + (inner * h + h)  # c_fc + c_proj
    return ParamBreakdown(
        embeddings=(v + c.n_positions) * h,  # wte + wpe
        attention=layers * attn,
        mlp=layers * mlp,
        norms=layers * 2 * (2 * h) + 2 * h,  # ln_1, ln_2 per layer + ln_f
        lm_head=0 if c.tie_word_embeddings else v * h,
    )


def _t5(c: tf.T5Config) -> ParamBreakdown:
    """T5ForConditionalGeneration: encoder + decoder, no biases, relative-position bias in layer 0."""
    d, v, inner = c.d_model, c.vocab_size, c.num_heads * c.d_kv
    n_enc, n_dec = c.num_layers, c.num_decoder_layers
    attn = 2 * d * inner + 2 * d * inner  # q, k, v: d -> inner; o: inner -> d
    rel_bias = c.relative_attention_num_buckets * c.num_heads  # one table per stack (layer 0)
    n_in = 2 if c.is_gated_act else 1  # gated-gelu (T5 v1.1) has wi_0 and wi_1
    mlp = n_in * d * c.d_ff + c.d_ff * d
    return ParamBreakdown(
        embeddings=v * d,  # `shared`, used by encoder and decoder
        attention=(n_enc + 2 * n_dec) * attn + 2 * rel_bias,  # decoder: self + cross attention
        mlp=(n_enc + n_dec) * mlp,
        norms=(2 * n_enc + 3 * n_dec + 2) * d,  # RMS-style scale only; + 2 final norms
        lm_head=0 if c.tie_word_embeddings else v * d,
    )


def _llama(c: tf.LlamaConfig | tf.MistralConfig) -> ParamBreakdown:
    """LlamaForCausalLM / MistralForCausalLM: pre-RMSNorm, RoPE (no position table), SwiGLU, GQA."""
    h, i, v, layers = c.hidden_size, c.intermediate_size, c.vocab_size, c.num_hidden_layers
    head_dim = getattr(c, "head_dim", None) or h // c.num_attention_heads
    q_out = c.num_attention_heads * head_dim
    kv_out = c.num_key_value_heads * head_dim  # GQA: fewer k/v heads than q heads
    attn = h * q_out + 2 * h * kv_out + q_out * h  # q, k, v, o
    if getattr(c, "attention_bias", False):
        attn += q_out + 2 * kv_out + h
    mlp = 3 * h * i  # gate_proj, up_proj, down_proj
    if getattr(c, "mlp_bias", False):
        mlp += 2 * i + h
    return ParamBreakdown(
        embeddings=v * h,
        attention=layers * attn,
        mlp=layers * mlp,
        norms=layers * 2 * h + h,  # input + post-attention RMSNorm per layer, final norm
        lm_head=0 if c.tie_word_embeddings else v * h,
    )


# Exact types: a subclass (say a config with extra weights) must be added on purpose, not guessed.
_FAMILIES: dict[type, tuple[Any, type]] = {
    tf.BertConfig: (_bert, tf.BertForMaskedLM),
    tf.GPT2Config: (_gpt2, tf.GPT2LMHeadModel),
    tf.T5Config: (_t5, tf.T5ForConditionalGeneration),
    tf.LlamaConfig: (_llama, tf.LlamaForCausalLM),
    tf.MistralConfig: (_llama, tf.MistralForCausalLM),
}
SUPPORTED_CONFIGS = tuple(t.__name__ for t in _FAMILIES)


def _family(config: Any) -> tuple[Any, type]:
    """The counter and model class for `config`, or a clear error naming what is supported."""
    entry = _FAMILIES.get(type(config))
    if entry is None:
        raise TypeError(
            f"count_parameters: unsupported config type {type(config).__name__!r}; "
            f"supported: {', '.join(SUPPORTED_CONFIGS)}"
        )
    return entry


def count_parameters(config: Any) -> ParamBreakdown:
    """Closed-form parameter count of the model `config` describes (see the table in the module doc)."""
    counter, _ = _family(config)
    return counter(config)


# --- real configs, written by hand (no hub download) ------------------------------------------


def _known_configs() -> dict[str, Any]:
    """Published architecture numbers of a few landmark models, as transformers configs."""
    return {
        # google-bert/bert-base-uncased config.json (Devlin et al. 2018, arXiv:1810.04805, BERT-base).
        "bert-base": tf.BertConfig(
            vocab_size=30522,
            hidden_size=768,
            num_hidden_layers=12,
            num_attention_heads=12,
            intermediate_size=3072,
            max_position_embeddings=512,
            type_vocab_size=2,
        ),
        # openai-community/gpt2 config.json (Radford et al. 2019, GPT-2 small); LM head tied to wte.
        "gpt2": tf.GPT2Config(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12),
        # google-t5/t5-base config.json (Raffel et al. 2020, arXiv:1910.10683); LM head tied to `shared`.
        "t5-base": tf.T5Config(
            vocab_size=32128,
            d_model=768,
            d_kv=64,
            d_ff=3072,
            num_layers=12,
            num_decoder_layers=12,
            num_heads=12,
            relative_attention_num_buckets=32,
            feed_forward_proj="relu",
            tie_word_embeddings=True,
        ),
        # meta-llama/Llama-2-7b-hf config.json; reference_figures.md §3.1 (Touvron et al. 2023, arXiv:2307.09288).
        "llama-2-7b": _llama_config(4096, 32, 32, 32, 11008, 32000, 4096, 10000.0),
        # meta-llama/Llama-2-13b-hf config.json; reference_figures.md §3.1 (5120 / 40 layers / 13824).
        "llama-2-13b": _llama_config(5120, 40, 40, 40, 13824, 32000, 4096, 10000.0),
        # meta-llama/Llama-2-70b-hf config.json; reference_figures.md §3.1 (GQA: 64 heads, 8 kv heads).
        "llama-2-70b": _llama_config(8192, 80, 64, 8, 28672, 32000, 4096, 10000.0),
        # meta-llama/Meta-Llama-3-8B config.json; reference_figures.md §9 (GQA 8 kv heads, vocab 128256).
        "llama-3-8b": _llama_config(4096, 32, 32, 8, 14336, 128256, 8192, 500000.0),
        # mistralai/Mistral-7B-v0.1 config.json (Jiang et al. 2023, arXiv:2310.06825): GQA, 8 kv heads.
        "mistral-7b": tf.MistralConfig(
            vocab_size=32000,
            hidden_size=4096,
            intermediate_size=14336,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=8,
            max_position_embeddings=32768,
            rope_theta=10000.0,
            tie_word_embeddings=False,
        ),
    }


def _llama_config(
    hidden: int, layers: int, heads: int, kv_heads: int, ffn: int, vocab: int, ctx: int, theta: float
) -> tf.LlamaConfig:
    """A LlamaConfig from the handful of numbers that define a Llama checkpoint."""
    return tf.LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=ffn,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=ctx,
        rope_theta=theta,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
    )


KNOWN_CONFIGS = tuple(_known_configs())


def known_config(name: str) -> Any:
    """A fresh transformers config for a named real model (e.g. "llama-2-7b"), built offline."""
    configs = _known_configs()
    if name not in configs:
        raise ValueError(f"known_config: unknown model name {name!r}; valid names: {', '.join(configs)}")
    return configs[name]


# --- the check: a real model on the meta device -----------------------------------------------


def build_on_meta(config_or_name: Any) -> torch.nn.Module:
    """Instantiate the model for a config (or a `known_config` name) on the meta device: shapes only."""
    config = known_config(config_or_name) if isinstance(config_or_name, str) else config_or_name
    _, model_cls = _family(config)
    with torch.device("meta"):  # parameters get shapes but no storage: a 70B model in milliseconds
        return model_cls(config)


def count_model_parameters(model: torch.nn.Module) -> int:
    """Number of distinct parameters in a model (tied tensors counted once)."""
    return sum(p.numel() for p in model.parameters())


def _category(name: str) -> str:
    """Which ParamBreakdown category a parameter name belongs to (HF naming of the supported models)."""
    parts = name.split(".")
    if any("norm" in p.lower() or p.startswith("ln_") for p in parts):
        return "norms"
    if "relative_attention_bias" in parts:
        return "attention"
    if any(p in ("embeddings", "wte", "wpe", "shared", "embed_tokens") for p in parts):
        return "embeddings"
    if parts[0] in ("lm_head", "cls"):
        return "lm_head"
    if any(p in ("attention", "attn", "self_attn", "SelfAttention", "EncDecAttention") for p in parts):
        return "attention"
    if any(p in ("mlp", "intermediate", "output", "DenseReluDense") for p in parts):
        return "mlp"
    return "other"


def model_breakdown(model: torch.nn.Module) -> ParamBreakdown:
    """A ParamBreakdown read off a real model's named parameters (tied tensors counted once)."""
    counts = dict.fromkeys(CATEGORIES, 0)
    for name, p in model.named_parameters():  # remove_duplicate=True: a tied tensor appears once
        counts[_category(name)] += p.numel()
    return ParamBreakdown(**counts)
