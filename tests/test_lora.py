"""LoRA from scratch: no-op at step 0, merge equivalence, equality with PEFT, parameter counts, bad input."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from workshop_utils.lora import (
    TARGET_SETS,
    FinetuneRun,
    LoRALinear,
    apply_lora,
    lora_parameter_count,
    merge_lora,
    rebuild_finetuned,
    trainable_parameters,
    trained_weights,
)

QV = ["q_proj", "v_proj"]


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=64,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=32,
    )
    return LlamaForCausalLM(cfg).eval()


X = torch.randint(0, 64, (2, 10), generator=torch.Generator().manual_seed(0))


def test_lora_is_a_no_op_at_step_zero():
    base = tiny_llama()
    ref = base(input_ids=X).logits
    model = apply_lora(tiny_llama(), r=4, alpha=8, target_modules=QV)
    assert torch.equal(model(input_ids=X).logits, ref)
    layer = model.model.layers[0].self_attn.q_proj
    assert isinstance(layer, LoRALinear) and torch.count_nonzero(layer.lora_B) == 0
    assert torch.count_nonzero(layer.lora_A) > 0  # A random, B zero (Hu et al. §4.1)


def test_only_adapters_train_and_counts_match_formula():
    model = apply_lora(tiny_llama(), r=4, alpha=8, target_modules=QV)
    trainable, total = trainable_parameters(model)
    # q: 64->64, v: 64->32 (GQA), 2 layers: 4 * ((64+64) + (64+32)) * 2
    assert trainable == 4 * ((64 + 64) + (64 + 32)) * 2 == lora_parameter_count(tiny_llama(), 4, QV)
    assert {n.split(".")[-1] for n, p in model.named_parameters() if p.requires_grad} == {"lora_A", "lora_B"}


def perturb(model: nn.Module) -> None:
    torch.manual_seed(5)
    for m in model.modules():
        if isinstance(m, LoRALinear):
            nn.init.normal_(m.lora_B, std=0.1)


def test_merge_gives_same_logits_and_plain_linears():
    model = apply_lora(tiny_llama(), r=4, alpha=16, target_modules=QV)
    perturb(model)
    adapter_logits = model(input_ids=X).logits
    merge_lora(model)
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert (model(input_ids=X).logits - adapter_logits).abs().max() <= 1e-5
    with pytest.raises(ValueError, match="already merged"):
        merge_lora(model)


def test_equal_to_peft_lora():
    ours = apply_lora(tiny_llama(), r=4, alpha=16, target_modules=QV)
    perturb(ours)
    peft_model = get_peft_model(
        tiny_llama(), LoraConfig(r=4, lora_alpha=16, target_modules=QV, lora_dropout=0.0)
    )
    ours_sd = {n: p for n, p in ours.named_parameters() if "lora_" in n}
    for name, p in peft_model.named_parameters():
        if "lora_" in name:  # base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight
            key = name.replace("base_model.model.", "", 1).replace(".default.weight", "")
            with torch.no_grad():
                p.copy_(ours_sd[key])
    peft_model.eval()
    assert (peft_model(input_ids=X).logits - ours(input_ids=X).logits).abs().max() <= 1e-5
    peft_merged = peft_model.merge_and_unload()
    merge_lora(ours)
    for (n1, p1), (n2, p2) in zip(ours.state_dict().items(), peft_merged.state_dict().items()):
        assert n1 == n2 and (p1 - p2).abs().max() <= 1e-6


def _run(method: str, r=None, alpha=None, targets=None) -> FinetuneRun:
    return FinetuneRun(method, r, alpha, 1e-3, targets, 1, 1.0, 0.5, 1.5, 1.8, False, 0, 0, 1.0, 2.0)


def test_trained_weights_rebuild_the_same_model():
    """The live fast path stores only what training changed and rebuilds the model from the base."""
    base = tiny_llama()
    adapted = apply_lora(tiny_llama(), r=4, alpha=8, target_modules=TARGET_SETS["all linear"])
    perturb(adapted)
    weights = trained_weights(adapted)
    assert weights and all(n.endswith(("lora_A", "lora_B")) for n in weights)
    run = _run("lora", 4, 8, "all linear")
    rebuilt = rebuild_finetuned(base, run, weights)
    assert torch.equal(rebuilt(input_ids=X).logits, adapted(input_ids=X).logits)
    assert FinetuneRun.from_row(run.row()) == run

    full = tiny_llama(seed=3)
    rebuilt_full = rebuild_finetuned(base, _run("full"), trained_weights(full))
    assert torch.equal(rebuilt_full(input_ids=X).logits, full(input_ids=X).logits)

    with pytest.raises(ValueError, match="do not match the adapters of r=8"):
        rebuild_finetuned(base, _run("lora", 8, 16, "all linear"), weights)
    with pytest.raises(ValueError, match="cannot rebuild a run with method='dora'"):
        rebuild_finetuned(base, _run("dora", 4, 8, "all linear"), weights)
    with pytest.raises(ValueError, match="not a FinetuneRun row"):
        FinetuneRun.from_row({"method": "lora"})


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="rank r"):
        LoRALinear(nn.Linear(4, 4), r=0, alpha=1)
    with pytest.raises(ValueError, match="alpha"):
        LoRALinear(nn.Linear(4, 4), r=2, alpha=0)
    with pytest.raises(TypeError, match="dequantize"):
        LoRALinear(nn.Conv1d(4, 4, 1), r=2, alpha=1)
    with pytest.raises(ValueError, match="match no nn.Linear"):
        apply_lora(tiny_llama(), r=2, alpha=2, target_modules=["nonexistent"])
    model = apply_lora(tiny_llama(), r=2, alpha=2, target_modules=QV)
    with pytest.raises(ValueError, match="already has LoRA"):
        apply_lora(model, r=2, alpha=2, target_modules=QV)
