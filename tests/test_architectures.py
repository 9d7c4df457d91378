"""Tiny model families, masks, objectives and the GPT-2 -> LLaMA component demos."""

from __future__ import annotations

import pytest
import torch
import transformers as tf
from transformers.models.gpt2.modeling_gpt2 import GPT2MLP
from transformers.models.llama.modeling_llama import (
    LlamaMLP,
    LlamaRMSNorm,
    LlamaRotaryEmbedding,
    apply_rotary_pos_emb,
)

from workshop_utils import architectures as A
from workshop_utils.params import known_config

TEXT = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n" * 4
ARCH = {"d_model": 32, "n_layers": 1, "n_heads": 2}


@pytest.fixture(scope="module")
def vocab() -> A.CharVocab:
    return A.CharVocab(TEXT)


def test_vocab_roundtrip_and_errors(vocab: A.CharVocab) -> None:
    assert vocab.decode(vocab.encode(TEXT)) == TEXT
    assert vocab.decode([vocab.mask]) == "[MASK]"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        vocab.encode("Zebra!")
    with pytest.raises(ValueError, match="sentinel index"):
        vocab.sentinel(vocab.n_sentinels)


def test_masks_shapes_and_values() -> None:
    bert = A.attention_masks("bert", 5)
    assert list(bert) == ["encoder self-attention"] and bert["encoder self-attention"].all()
    gpt = A.attention_masks("gpt2", 5)["decoder self-attention"]
    assert torch.equal(gpt, torch.tril(torch.ones(5, 5, dtype=torch.bool)))
    assert gpt.sum() == 15  # n (n + 1) / 2
    t5 = A.attention_masks("t5", 6, 4)
    assert t5["encoder self-attention"].shape == (6, 6)
    assert t5["decoder self-attention"].shape == (4, 4) and not t5["decoder self-attention"][0, 1]
    assert t5["cross-attention"].shape == (4, 6) and t5["cross-attention"].all()
    with pytest.raises(ValueError, match=r"'roberta'.*bert, t5, gpt2, llama"):
        A.attention_masks("roberta", 4)


@pytest.mark.parametrize("family", A.FAMILIES)
def test_measured_masks_equal_drawn_masks(family: str, vocab: A.CharVocab) -> None:
    model = A.build_tiny(family, vocab, ARCH, context=16)
    ids = vocab.encode(TEXT[:7])[None]
    dec = vocab.encode(TEXT[7:12])[None]
    measured = A.measured_masks(family, model, ids, dec if family == "t5" else None)
    drawn = A.attention_masks(family, 7, 5)
    assert measured.keys() == drawn.keys()
    for name in drawn:
        assert torch.equal(measured[name], drawn[name]), name


def test_measured_masks_t5_needs_decoder_ids(vocab: A.CharVocab) -> None:
    model = A.build_tiny("t5", vocab, ARCH, context=16)
    with pytest.raises(ValueError, match="dec_ids"):
        A.measured_masks("t5", model, vocab.encode(TEXT[:4])[None])


def test_mask_tokens_labels(vocab: A.CharVocab) -> None:
    x = vocab.encode(TEXT)[None].repeat(8, 1)  # (8, T)
    inputs, labels = A.mask_tokens(x, vocab, torch.Generator().manual_seed(0))
    chosen = labels != A.IGNORE
    assert 0.10 < chosen.float().mean() < 0.20  # p = 0.15
    assert torch.equal(labels[chosen], x[chosen])
    assert torch.equal(inputs[~chosen], x[~chosen])  # untouched outside the chosen positions
    assert (inputs[chosen] == vocab.mask).float().mean() > 0.6  # 80 % of them become [MASK]


def test_span_corrupt_reconstructs_the_text(vocab: A.CharVocab) -> None:
    x = vocab.encode(TEXT[:64])[None].repeat(3, 1)  # (3, 64)
    inputs, targets = A.span_corrupt(x, vocab, torch.Generator().manual_seed(0))
    n_spans = round(64 * 0.15 / 3)
    assert inputs.shape == (3, 64 - n_spans * 2) and targets.shape == (3, n_spans * 4 + 1)
    for inp, tgt, orig in zip(inputs, targets, x):
        spans = {int(tgt[i * 4]): tgt[i * 4 + 1 : i * 4 + 4].tolist() for i in range(n_spans)}
        rebuilt = []
        for tok in inp.tolist():
            rebuilt += spans[tok] if tok in spans else [tok]
        assert rebuilt == orig.tolist()
        assert tgt[-1] == vocab.eos


@pytest.mark.parametrize("family", A.FAMILIES)
def test_batches_give_finite_losses(family: str, vocab: A.CharVocab) -> None:
    ids = vocab.encode(TEXT)
    batch = A.make_batch(family, ids, vocab, 4, 32, torch.Generator().manual_seed(0))
    assert all(t.is_contiguous() for t in batch.values())
    model = A.build_tiny(family, vocab, ARCH, context=32)
    assert torch.isfinite(model(**batch).loss)


def test_windows_too_short(vocab: A.CharVocab) -> None:
    with pytest.raises(ValueError, match="too short"):
        A.windows(vocab.encode("To be"), 2, 8, torch.Generator())


def test_unknown_family_everywhere(vocab: A.CharVocab) -> None:
    for fn in (
        lambda: A.tiny_config("xlnet", vocab, ARCH, 8),
        lambda: A.make_batch("xlnet", None, vocab, 1, 8, None),
    ):
        with pytest.raises(ValueError, match="xlnet"):
            fn()


def test_short_training_lowers_the_loss(vocab: A.CharVocab) -> None:
    ids = vocab.encode(TEXT)
    model = A.build_tiny("gpt2", vocab, ARCH, context=32)
    run = A.train_tiny("gpt2", model, ids, ids, vocab, steps=30, context=32, batch_size=8)
    assert run.val_after < run.val_before - 0.5
    assert len(run.losses) == 30


def test_layer_norm_and_rms_norm_equal_the_libraries() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 5, 16) * 3 + 1
    w, b = torch.randn(16), torch.randn(16)
    assert torch.allclose(A.layer_norm(x, w, b), torch.nn.functional.layer_norm(x, (16,), w, b), atol=1e-5)
    ref = LlamaRMSNorm(16, eps=1e-6)
    with torch.no_grad():
        ref.weight.copy_(w)
    assert torch.allclose(A.rms_norm(x, w, 1e-6), ref(x), atol=1e-6)
    xb = x.bfloat16()
    ref_b = ref.to(torch.bfloat16)
    assert torch.equal(A.rms_norm(xb, ref_b.weight, 1e-6), ref_b(xb))


def test_rope_equals_transformers_and_is_relative() -> None:
    cfg = tf.LlamaConfig(hidden_size=64, num_attention_heads=4, rope_theta=10_000.0)
    torch.manual_seed(0)
    q, k = torch.randn(1, 4, 9, 16), torch.randn(1, 4, 9, 16)  # (B, H, T, Dh)
    pos = torch.arange(9)[None]
    cos, sin = LlamaRotaryEmbedding(cfg)(q, pos)
    q_ref, k_ref = apply_rotary_pos_emb(q, k, cos, sin)
    assert torch.allclose(A.apply_rope(q, pos[0]), q_ref, atol=1e-5)
    assert torch.allclose(A.apply_rope(k, pos[0]), k_ref, atol=1e-5)
    qv, kv = q[0, 0, 0], k[0, 0, 0]
    s = A.rope_score(qv, kv, 7, 3)
    assert A.rope_score(qv, kv, 107, 103) == pytest.approx(s, abs=1e-4)
    assert A.rope_score(qv, kv, 7, 4) != pytest.approx(s, abs=1e-3)


@pytest.mark.parametrize(
    ("d", "mult", "multiple_of", "name"),
    [(4096, None, 256, "llama-2-7b"), (5120, None, 256, "llama-2-13b"), (8192, 1.3, 4096, "llama-2-70b"),
     (4096, 1.3, 1024, "llama-3-8b")],
)  # fmt: skip
def test_swiglu_hidden_reproduces_llama_widths(
    d: int, mult: float | None, multiple_of: int, name: str
) -> None:
    assert A.swiglu_hidden(d, multiple_of, mult) == known_config(name).intermediate_size


def test_mlp_params_equal_real_modules() -> None:
    d, hidden = 48, 192
    gelu = GPT2MLP(hidden, tf.GPT2Config(n_embd=d))
    llama = LlamaMLP(tf.LlamaConfig(hidden_size=d, intermediate_size=hidden, num_attention_heads=4))
    assert A.mlp_params(d, hidden, "gelu", bias=True) == sum(p.numel() for p in gelu.parameters())
    assert A.mlp_params(d, hidden, "swiglu") == sum(p.numel() for p in llama.parameters())
    assert A.mlp_params(d, hidden, "swiglu") * 2 == A.mlp_params(d, hidden, "gelu") * 3
    with pytest.raises(ValueError, match="'relu'"):
        A.mlp_params(d, hidden, "relu")


def test_kv_cache_formula_matches_the_model_cache() -> None:
    cfg = tf.LlamaConfig(vocab_size=32, hidden_size=64, intermediate_size=96, num_hidden_layers=3,
                         num_attention_heads=8, num_key_value_heads=2)  # fmt: skip
    model = tf.LlamaForCausalLM(cfg)
    assert A.measured_kv_cache_bytes(model, 11, 2) == A.kv_cache_bytes(cfg, 11, 2, bytes_per_value=4)
    mha = known_config("llama-2-70b")
    gqa_bytes = A.kv_cache_bytes(mha, 4096)
    mha.num_key_value_heads = mha.num_attention_heads
    assert A.kv_cache_bytes(mha, 4096) == 8 * gqa_bytes  # 64 query heads share 8 kv heads


def test_pre_norm_last_layer_gradient_shrinks_with_depth_post_norm_does_not() -> None:
    pre = [A.last_layer_grad_norm(n, pre_norm=True) for n in (2, 16)]
    post = [A.last_layer_grad_norm(n, pre_norm=False) for n in (2, 16)]
    assert pre[1] < 0.75 * pre[0]
    assert post[1] > 0.85 * post[0]


def test_single_threaded_helpers_restore_the_thread_count() -> None:
    before = torch.get_num_threads()
    A.last_layer_grad_norm(1, pre_norm=True)
    assert torch.get_num_threads() == before
