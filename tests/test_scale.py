"""Unit tests of workshop_utils.scale: FLOPs per token (checked against torch's FLOP counter), peak, MFU."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from workshop_utils.scale import (
    PublishedRun,
    flops_per_token,
    llama_param_count,
    matmul_params,
    measure_matmul_peak,
    mfu,
    model_flops_per_token,
    published_runs,
    runs_table,
    time_at_our_speed,
)


def _tiny_llama(attn: str = "eager") -> LlamaForCausalLM:
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=512,
        hidden_size=64,
        intermediate_size=192,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=False,
    )
    cfg._attn_implementation = attn
    return LlamaForCausalLM(cfg)


def test_llama_param_count_matches_real_model():
    model = _tiny_llama()
    assert llama_param_count(64, 2, 192, 512, 4, 2) == sum(p.numel() for p in model.parameters())


def test_matmul_params_excludes_input_embedding_only_when_untied():
    llama = _tiny_llama()
    assert matmul_params(llama) == sum(p.numel() for p in llama.parameters()) - 512 * 64
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=256, n_embd=32, n_layer=1, n_head=2, n_positions=16))
    assert gpt2.lm_head.weight is gpt2.transformer.wte.weight
    assert matmul_params(gpt2) == sum(p.numel() for p in gpt2.parameters())  # the tied table is the head


def test_flops_per_token_formula():
    assert flops_per_token(1000, 2, 64, 128) == 6 * 1000 + 12 * 2 * 64 * 128


def test_flops_per_token_equals_torch_flop_counter():
    """6N + 12*L*d*T equals the matmul FLOPs torch counts in one forward+backward (eager attention).

    The only parameters outside matmuls are the RMSNorm weights (elementwise), so they are subtracted.
    """
    model = _tiny_llama("eager")
    batch, context = 4, 32
    x = torch.randint(0, 512, (batch, context), generator=torch.Generator().manual_seed(0))
    with FlopCounterMode(display=False) as counter:
        model(input_ids=x, labels=x).loss.backward()
    norm_params = sum(p.numel() for n, p in model.named_parameters() if "norm" in n)
    predicted = (model_flops_per_token(model, context) - 6 * norm_params) * batch * context
    assert counter.get_total_flops() == predicted


def test_measure_matmul_peak_is_positive_and_validated():
    assert measure_matmul_peak(torch.float32, n=128, repeats=2) > 0
    assert measure_matmul_peak(torch.bfloat16, n=128, repeats=1) > 0
    with pytest.raises(ValueError, match="dtype"):
        measure_matmul_peak(torch.int32)
    with pytest.raises(ValueError, match="n >= 64"):
        measure_matmul_peak(n=8)


def test_mfu_and_bad_input():
    assert mfu(1000.0, 1e6, 1e10) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="peak_flops"):
        mfu(1000.0, 1e6, 0.0)
    with pytest.raises(ValueError, match="n_layers"):
        flops_per_token(1000, 0, 64, 128)
    with pytest.raises(ValueError, match="our_flops_per_s"):
        time_at_our_speed(published_runs()[0], -1.0)


def test_published_run_arithmetic():
    run = PublishedRun("toy", 1e9, 1e10, 10.0, "X", 1e14, "made up")
    assert run.train_flops == 6e19
    assert run.flops_per_gpu == pytest.approx(6e19 / 36_000)
    assert run.mfu == pytest.approx(6e19 / 36_000 / 1e14)
    assert time_at_our_speed(run, 1e9) == pytest.approx(6e10)
    rows = runs_table([run])
    assert rows[0]["MFU vs 312 TFLOPS"] == pytest.approx(run.mfu)
