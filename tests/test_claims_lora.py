"""Claims ledger, module 08: LoRA (Hu et al. 2021) and QLoRA (Dettmers et al. 2023) numbers recomputed.

Source for every published value: ../shared/reference_figures.md §8.1 (LoRA) and §8.2 (QLoRA).
"""

from __future__ import annotations

import pytest

from workshop_utils.lora import TARGET_SETS, lora_paper_count, lora_parameter_count
from workshop_utils.params import build_on_meta
from workshop_utils.quant import constant_bits_per_param, finetune_memory_rows, storage_bytes

GPT3 = {"n_layers": 96, "d_model": 12288}  # GPT-3 175B (Brown et al. 2020), LoRA on W_q and W_v


def test_gpt3_lora_trainable_counts_table4():
    # LoRA Table 4: "4.7M" (r=1) and "37.7M" (r=8); §4.2's checkpoint used r=4 (18.9M). Tolerance: the
    # paper's rounding to 0.1M.
    assert lora_paper_count(1, **GPT3) == 4_718_592 == pytest.approx(4.7e6, abs=0.05e6)
    assert lora_paper_count(8, **GPT3) == 37_748_736 == pytest.approx(37.7e6, abs=0.05e6)
    assert lora_paper_count(4, **GPT3) == 18_874_368 == pytest.approx(18.9e6, abs=0.05e6)


def test_gpt3_10000x_and_35mb_checkpoint():
    r4 = lora_paper_count(4, **GPT3)
    ratio = 175e9 / r4  # abstract: "10,000 times"; §4.2 "roughly 10,000x"
    assert ratio == pytest.approx(9272, abs=1) and 0.9e4 <= ratio <= 1.1e4  # order of magnitude, within 10 %
    mib = r4 * 2 / 2**20  # fp16 adapter; §4.2 "35MB" (37.7e6 bytes = 36.0 MiB): within 5 %
    assert mib == pytest.approx(36.0, abs=0.05) and abs(mib - 35) / 35 <= 0.05
    assert 175e9 * 2 / 1e9 == 350  # the 350 GB full checkpoint


def test_llama2_7b_r8_qv():
    assert lora_parameter_count(build_on_meta("llama-2-7b"), 8, TARGET_SETS["q,v"]) == 4_194_304  # exact


def test_qlora_double_quantisation_saving():
    # QLoRA §3: 32/64 = 0.5 bits -> 8/64 + 32/(64*256) = 0.127 bits: a 0.373 bits/param saving (exact).
    saving = constant_bits_per_param(64) - constant_bits_per_param(64, double=True)
    assert saving == 0.373046875
    assert 65e9 * saving / 8 / 1e9 == pytest.approx(3.0, abs=0.05)  # "approximately 3 GB" on 65B


def test_qlora_65b_storage_and_48gb_headline():
    assert storage_bytes(65e9, double=True) / 1e9 == pytest.approx(33.5, abs=0.05)  # derived in §8.2
    assert storage_bytes(65e9, double=False) / 1e9 == pytest.approx(36.6, abs=0.05)
    row = next(r for r in finetune_memory_rows(r=64) if r["model"] == "LLaMA-65B")
    # Abstract: 65B fine-tuned "on a single 48GB GPU": NF4+DQ weights plus r=64 all-linear adapters with
    # Adam states fit with room for checkpointed activations; full 16-bit fine-tuning needs > 780 GB (§1).
    assert row["qlora"] < 48
    assert row["full_ft_16bit"] > 780
