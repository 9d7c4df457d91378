"""Module 08's exercises: the rank full fine-tuning needs, what fits an L4, QLoRA with our own LoRALinear."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import torch

from .. import lora, quant
from . import Check, Passes

ENERGY = 0.9  # exercise 1: nine tenths of ||Delta W||^2
L4_GB, ACTIVATION_SHARE = 24, 1 / 6  # exercise 2: an L4 24 GB card, a sixth of it kept for activations


def solution_1(per_layer: dict[str, torch.Tensor], cmp: pd.DataFrame) -> dict:
    """Smallest rank keeping 90 % of every q_proj update's energy, against the best LoRA rank of section 5."""
    need = {}
    for name, s in per_layer.items():
        if name.endswith("q_proj"):
            e = torch.cumsum(s.double() ** 2, 0) / (s.double() ** 2).sum()  # energy kept by rank 1, 2, ...
            need[name] = int((e < 0.9).sum()) + 1
    lora_runs = cmp[cmp.method == "lora"]
    best_rank = int(lora_runs.loc[lora_runs["answer_loss"].idxmin(), "r"])
    print("rank keeping 90 % of ||ΔW||² per q_proj:", need, "; best LoRA rank in section 5:", best_rank)
    assert all(1 <= need[name] <= len(per_layer[name]) for name in need)
    return {"rank_90": max(need.values()), "best_rank": best_rank, "same": max(need.values()) == best_rank}


def solution_2() -> dict:
    """Largest LLaMA whose QLoRA (and 16-bit LoRA) model states fit an L4 with a sixth left for activations."""
    rows = pd.DataFrame(quant.finetune_memory_rows(r=16)).set_index("model")
    budget = 24 * (1 - 1 / 6)  # GB
    fits = {
        col: rows.index[rows[col] <= budget].tolist() for col in ("qlora", "lora_16bit")
    }  # rows grow in size
    largest = {col: (ms[-1] if ms else None) for col, ms in fits.items()}
    print(f"within {budget:.0f} GB:", largest)
    assert len(fits["qlora"]) >= len(fits["lora_16bit"])
    return largest


def solution_3(model_dir: Path, batch_ids: torch.Tensor, seed: int) -> quant.GradCheck | None:
    """Our own apply_lora on a 4-bit course model, gradients checked against fp32 on the dequantised weights."""
    from transformers import LlamaForCausalLM

    ok, why = quant.bnb_available()
    if not ok:
        print("needs bitsandbytes 4-bit:", why)
        return None
    qv = lora.TARGET_SETS["q,v"]
    ours4 = lora.apply_lora(quant.load_course_model_4bit(str(model_dir)), r=4, alpha=8, target_modules=qv)
    ref32 = lora.apply_lora(LlamaForCausalLM.from_pretrained(model_dir), r=4, alpha=8, target_modules=qv)
    torch.manual_seed(seed)
    for m in ours4.modules():
        if isinstance(m, lora.LoRALinear):
            torch.nn.init.normal_(m.lora_B, std=0.02)  # B != 0, so A gets gradients too
    quant.dequantized_reference(ours4, ref32)  # same adapters, fp32 weights = the dequantised 4-bit ones
    check = quant.lora_gradient_check(ours4, ref32, batch_ids)
    print("our LoRALinear on a 4-bit base:", check)
    assert check.ok
    return check


# ---------------------------------------------------------------------------------------- the checks
def expected_1(per_layer: dict[str, torch.Tensor], cmp: pd.DataFrame) -> dict:
    """The rank from lora.energy_captured (Eckart-Young), the best rank by sorting section 5's runs."""
    spectra = [s for name, s in per_layer.items() if name.endswith("q_proj")]
    rank = next(
        r for r in range(1, len(spectra[0]) + 1) if all(lora.energy_captured(s, r) >= ENERGY for s in spectra)
    )
    best = int(cmp[cmp.method == "lora"].sort_values("answer_loss")["r"].iloc[0])
    return {"rank_90": rank, "best_rank": best, "same": rank == best}


def expected_2() -> dict:
    """The largest model (by parameters) under the budget for each method, or None."""
    budget = L4_GB * (1 - ACTIVATION_SHARE)
    rows = quant.finetune_memory_rows(r=16)
    out = {}
    for col in ("qlora", "lora_16bit"):
        fitting = [r for r in rows if r[col] <= budget]
        out[col] = max(fitting, key=lambda r: r["params_B"])["model"] if fitting else None
    return out


def expected_3(model_dir: Path, batch_ids: torch.Tensor, seed: int) -> Any:
    """A passing check over every adapter tensor: A and B of q_proj and v_proj in every layer."""
    from transformers import LlamaConfig

    if not quant.bnb_available()[0]:
        return None  # nothing to check without bitsandbytes
    n_tensors = 2 * len(lora.TARGET_SETS["q,v"]) * LlamaConfig.from_pretrained(model_dir).num_hidden_layers

    def test(answer) -> str | None:
        if not isinstance(answer, dict) or "ok" not in answer or "n_tensors" not in answer:
            return "expected the GradCheck that quant.lora_gradient_check returns"
        if answer["n_tensors"] != n_tensors:
            return f"the check covered {answer['n_tensors']} tensors: LoRA A and B on q_proj and v_proj of every layer?"
        return (
            None
            if answer["ok"]
            else "the 4-bit and fp32 gradients differ: is the reference on the dequantised weights?"
        )

    return Passes(test)


CHECKS = {
    1: Check(expected_1, "a dict {'rank_90': int, 'best_rank': int, 'same': bool}", "exact"),
    2: Check(expected_2, "a dict {'qlora': model name or None, 'lora_16bit': model name or None}", "exact"),
    3: Check(
        expected_3,
        "the GradCheck that quant.lora_gradient_check returns",
        "its own rtol (1e-3 per tensor), over every adapter tensor",
    ),
}
