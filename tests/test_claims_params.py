"""Claims ledger, module 01: parameter counts vs the published figures in ../shared/reference_figures.md."""

from __future__ import annotations

import pytest

from workshop_utils.params import build_on_meta, count_model_parameters, count_parameters, known_config

# (name, published value, source). Exact integers: the tolerance is zero, because these are
# integers derived from the configs and quoted verbatim elsewhere (no rounding in the sources).
PUBLISHED = [
    # reference_figures.md §3.1: "Llama-2-7B exact parameter count 6,738,415,616" (derived + Keras-hub,
    # Ollama, PEFT logs).
    ("llama-2-7b", 6_738_415_616, "reference_figures.md §3.1"),
    # reference_figures.md §3.1: "The same formula gives 13,015,864,320 for Llama-2-13B".
    ("llama-2-13b", 13_015_864_320, "reference_figures.md §3.1"),
    # reference_figures.md §3.1: "... and 68,976,648,192 for Llama-2-70B".
    ("llama-2-70b", 68_976_648_192, "reference_figures.md §3.1"),
    # reference_figures.md §9: "The parameter count 8,030,261,248 used for Llama-3-8B".
    ("llama-3-8b", 8_030_261_248, "reference_figures.md §9"),
    # COURSE_GUIDE.md field notes: GPT-2 small 124,439,808 (tied); BertForMaskedLM 109,514,298.
    ("gpt2", 124_439_808, "COURSE_GUIDE.md field notes"),
    ("bert-base", 109_514_298, "COURSE_GUIDE.md field notes"),
]


@pytest.mark.parametrize(("name", "published", "source"), PUBLISHED)
def test_parameter_count_matches_published(name: str, published: int, source: str) -> None:
    assert count_parameters(known_config(name)).total == published, source
    assert count_model_parameters(build_on_meta(name)) == published, source


def test_llama_2_7b_derivation_terms() -> None:
    """reference_figures.md §3.1 derivation: embeddings 131,072,000; per layer attention 67,108,864,
    MLP 135,266,304, norms 8,192; final norm 4,096; LM head 131,072,000."""
    b = count_parameters(known_config("llama-2-7b"))
    assert b.embeddings == 131_072_000
    assert b.attention == 32 * 67_108_864
    assert b.mlp == 32 * 135_266_304
    assert b.norms == 32 * 8_192 + 4_096
    assert b.lm_head == 131_072_000


def test_kaplan_12_L_d2_approximation() -> None:
    """reference_figures.md §2 (Kaplan et al.): N ≈ 12 n_layer d_model² non-embedding parameters.
    GPT-2 small follows it within 1 % (it has biases and norms the formula omits)."""
    c = known_config("gpt2")
    b = count_parameters(c)
    non_embedding = b.attention + b.mlp  # weights + biases of the blocks
    assert non_embedding == pytest.approx(12 * c.n_layer * c.n_embd**2, rel=0.01)


def test_lora_llama_2_7b_r8_qv_count_uses_our_config() -> None:
    """reference_figures.md §8.1: Llama-2-7B, r = 8 on q and v: 32 × 2 × (4096×8 + 8×4096) = 4,194,304."""
    c = known_config("llama-2-7b")
    r = 8
    assert c.num_hidden_layers * 2 * (c.hidden_size * r + r * c.hidden_size) == 4_194_304
