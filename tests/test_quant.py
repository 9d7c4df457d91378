"""NF4 from scratch equal to bitsandbytes, round-trip error bounds, double quantisation, the 4-bit gradient check."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from workshop_utils import quant
from workshop_utils.quant import (
    bnb_nf4_levels,
    bnb_roundtrip,
    constant_bits_per_param,
    dequantize_blockwise,
    dequantize_scales,
    double_quantize,
    int4_levels,
    nf4_levels,
    quantize_blockwise,
    reconstruction_error,
)

W = torch.randn(128, 256, generator=torch.Generator().manual_seed(0)) * 0.02  # (d_out, d_in), weight-like


def test_nf4_levels_equal_bitsandbytes_table():
    ours = nf4_levels()
    assert ours.shape == (16,) and ours[0] == -1 and ours[-1] == 1 and (ours == 0).sum() == 1
    assert torch.all(ours[1:] > ours[:-1])
    assert (ours - bnb_nf4_levels()).abs().max() <= 1e-6


def test_blockwise_nf4_equals_bitsandbytes_roundtrip():
    ours = dequantize_blockwise(quantize_blockwise(W, nf4_levels(), 64))
    assert (ours - bnb_roundtrip(W, "nf4")).abs().max() <= 1e-6 * W.abs().max()


def test_roundtrip_error_bounds_and_nf4_beats_int4_on_normal_weights():
    q = quantize_blockwise(W, nf4_levels(), 64)
    err = (dequantize_blockwise(q) - W).reshape(-1, 64).abs()
    gaps = (nf4_levels()[1:] - nf4_levels()[:-1]).max()
    # nearest-level rounding: error <= half the widest gap times the block's absmax
    assert torch.all(err <= gaps / 2 * q.absmax[:, None] + 1e-7)
    # each block's absmax is stored exactly (+-1 is a level)
    assert torch.allclose(dequantize_blockwise(q).reshape(-1, 64).abs().amax(1), q.absmax)
    nf4 = reconstruction_error(W, nf4_levels())["rel_rmse"]
    int4 = reconstruction_error(W, int4_levels())["rel_rmse"]
    assert nf4 < int4 and 0.05 < nf4 < 0.15  # measured ~0.09 vs ~0.11 on Gaussian weights


def test_double_quantisation_bits_and_error():
    assert constant_bits_per_param(64) == 0.5
    assert constant_bits_per_param(64, double=True) == 8 / 64 + 32 / (64 * 256)
    absmax = quantize_blockwise(W, nf4_levels()).absmax
    dq = double_quantize(absmax)
    rec = dequantize_scales(dq)
    assert rec.shape == absmax.shape
    assert (rec - absmax).abs().max() <= dq.scale.max() / 2 + 1e-9  # int8 rounding: half a step
    with_dq = reconstruction_error(W, nf4_levels(), double=True)["rel_rmse"]
    assert with_dq <= reconstruction_error(W, nf4_levels())["rel_rmse"] * 1.02  # DQ costs almost nothing


def test_bad_input():
    with pytest.raises(ValueError, match="multiple of block"):
        quantize_blockwise(torch.randn(10), nf4_levels(), 64)
    with pytest.raises(ValueError, match="block must be"):
        quantize_blockwise(torch.randn(64), nf4_levels(), 0)
    with pytest.raises(ValueError, match="offset"):
        nf4_levels(offset=1.5)
    with pytest.raises(ValueError, match="quant_type"):
        bnb_roundtrip(W, "int4")
    with pytest.raises(ValueError, match="block2"):
        double_quantize(torch.ones(4), block2=0)


# --- bitsandbytes 4-bit + PEFT LoRA: gradients verified against a dequantised fp32 reference -------
CFG = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.0)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64)  # fmt: skip
    path = tmp_path_factory.mktemp("tiny_llama")
    LlamaForCausalLM(config).save_pretrained(path)  # safetensors
    return path


def adapters_4bit_and_reference(path):
    model4 = get_peft_model(quant.load_course_model_4bit(str(path)), CFG)
    torch.manual_seed(1)
    for n, p in model4.named_parameters():
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.05)  # B != 0 so that A receives gradients
    ref = get_peft_model(LlamaForCausalLM.from_pretrained(path), CFG)
    return model4, quant.dequantized_reference(model4, ref)


IDS = torch.randint(0, 128, (2, 32), generator=torch.Generator().manual_seed(0))


def test_qlora_gradients_equal_dequantised_reference(saved_model):
    ok, why = quant.bnb_available()
    if not ok:
        pytest.skip(f"bitsandbytes 4-bit cannot run here: {why}")
    model4, ref = adapters_4bit_and_reference(saved_model)
    assert (
        len(quant.linear4bit_layers(model4)) == 2 * 7
    )  # q k v o gate up down, lm_head kept in full precision
    check = quant.lora_gradient_check(model4, ref, IDS)
    assert check.ok and check.n_tensors == 2 * 2 * 7 and check.max_rel_diff <= 1e-3
    # an eval forward with the repack disabled leaves the weights (and gradients) as they were
    model4.eval()
    with torch.no_grad():
        model4(input_ids=IDS)
    assert quant.repacked_layers(model4) == []
    assert quant.lora_gradient_check(model4, ref, IDS).ok
    quant.assert_safe_to_train(model4, check)


def test_cpu_repack_pitfall_is_detected(saved_model):
    import bitsandbytes.functional as bnbf

    if torch.cuda.is_available() or not bnbf.has_avx512bf16():
        pytest.skip("the repack only happens on CPUs with AVX512-BF16")
    model4, ref = adapters_4bit_and_reference(saved_model)
    for _, m in quant.linear4bit_layers(model4):
        m.support_avx512bf16_for_cpu = True  # bitsandbytes' default on this CPU
    model4.eval()
    with torch.no_grad():
        model4(input_ids=IDS)  # e.g. an evaluation or generate() before training
    assert len(quant.repacked_layers(model4)) == 14
    with pytest.warns(UserWarning, match="autograd kernel was not registered"):
        check = quant.lora_gradient_check(model4, ref, IDS)
    assert not check.ok  # wrong gradients, caught
    with pytest.raises(RuntimeError, match="repacked"):
        quant.assert_safe_to_train(model4)
    with pytest.raises(RuntimeError, match="reload"):
        quant.dequantized_reference(model4, ref)
