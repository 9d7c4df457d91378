"""LoRA counts on real shapes, the rank intuition helpers, memory predicted = measured, quantised merges."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from workshop_utils.lora import (
    TARGET_SETS,
    LoRALinear,
    apply_lora,
    energy_captured,
    is_quantized,
    lora_count_table,
    lora_parameter_count,
    merge_lora,
    predicted_training_bytes,
    trainable_parameters,
    update_spectrum,
)
from workshop_utils.memory import measure_training_step
from workshop_utils.params import build_on_meta


def tiny_llama() -> LlamaForCausalLM:
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64)  # fmt: skip
    return LlamaForCausalLM(cfg).eval()


def test_llama2_7b_counts_on_meta():
    model = build_on_meta("llama-2-7b")
    assert lora_parameter_count(model, 8, TARGET_SETS["q,v"]) == 4_194_304  # reference_figures §8.1
    assert lora_parameter_count(model, 8, TARGET_SETS["attention"]) == 2 * 4_194_304
    # all linear: attention 4 * 8 * (4096 + 4096), MLP 3 * 8 * (4096 + 11008), 32 layers
    assert lora_parameter_count(model, 8, TARGET_SETS["all linear"]) == 32 * (4 * 8 * 8192 + 3 * 8 * 15104)
    rows = lora_count_table(model, [1, 8], {"q,v": TARGET_SETS["q,v"]})
    assert [r["trainable"] for r in rows] == [524_288, 4_194_304]
    assert rows[1]["percent"] == pytest.approx(100 * 4_194_304 / 6_738_415_616)


def test_count_equals_what_apply_lora_trains():
    for label, targets in TARGET_SETS.items():
        model = apply_lora(tiny_llama(), r=3, alpha=3, target_modules=targets)
        assert trainable_parameters(model)[0] == lora_parameter_count(tiny_llama(), 3, targets), label


def test_energy_captured():
    u, _ = torch.linalg.qr(torch.randn(32, 32, generator=torch.Generator().manual_seed(0)))
    delta = u[:, :2] @ torch.diag(torch.tensor([3.0, 1.0])) @ u[:, 2:4].T  # exactly rank 2, s = (3, 1)
    s = update_spectrum(delta)
    assert s[:2] == pytest.approx([3.0, 1.0], abs=1e-5) and s[2:].abs().max() < 1e-5
    assert energy_captured(s, 1) == pytest.approx(0.9, abs=1e-6)
    assert energy_captured(s, 2) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="rank r"):
        energy_captured(s, 0)
    with pytest.raises(ValueError, match="matrix"):
        update_spectrum(torch.ones(3))


def test_training_memory_predicted_equals_measured():
    x = torch.randint(0, 128, (2, 16), generator=torch.Generator().manual_seed(0))
    for model in (tiny_llama(), apply_lora(tiny_llama(), r=4, alpha=8, target_modules=TARGET_SETS["q,v"])):
        pred = predicted_training_bytes(model, "fp32", "adamw")
        measured = measure_training_step(model, x, x, "adamw")
        assert measured.gradients == pred["gradients"]
        assert measured.optimizer_states == pred["optimizer_states"]


def test_merging_a_quantised_layer_needs_dequantising():
    import bitsandbytes as bnb

    from workshop_utils.quant import disable_cpu_repack

    torch.manual_seed(0)
    dense = nn.Linear(64, 64, bias=False)
    q = bnb.nn.Linear4bit(64, 64, bias=False, quant_type="nf4", compute_dtype=torch.float32)
    q.weight = bnb.nn.Params4bit(dense.weight.data.clone(), requires_grad=False, quant_type="nf4")
    q = q.to("cpu")  # quantises: uint8 codes + quant_state
    model = nn.Sequential(q)
    disable_cpu_repack(model)
    assert is_quantized(model[0]) and not is_quantized(dense)
    apply_lora(model, r=2, alpha=4, target_modules=["0"])
    assert isinstance(model[0], LoRALinear) and model[0].lora_A.dtype == torch.float32
    torch.nn.init.normal_(model[0].lora_B, std=0.1)
    x = torch.randn(3, 64)
    before = model(x)
    with pytest.raises(TypeError, match="dequantize first"):
        merge_lora(model)
    merge_lora(model, dequantize=True)
    assert type(model[0]) is nn.Linear and model[0].weight.dtype == torch.float32
    assert (model(x) - before).abs().max() <= 1e-5
    with pytest.raises(ValueError, match="already merged"):
        merge_lora(model)
