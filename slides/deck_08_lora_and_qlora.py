"""Deck 08 · LoRA and QLoRA: small adapters, 4-bit base weights, the memory to fine-tune."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from workshop_utils import finetune_grid_report, finetune_report, stats
from workshop_utils.config import get_profile
from workshop_utils.lora import TARGET_SETS, lora_paper_count, lora_parameter_count
from workshop_utils.params import build_on_meta, count_model_parameters
from workshop_utils.quant import BLOCK, BLOCK2, constant_bits_per_param, finetune_memory_rows

# GPT-3 175B as in Hu et al. 2021 (LoRA), §4.2/§5.1: 96 layers, d_model 12288, adapters on W_q and W_v.
GPT3_PARAMS, GPT3_LAYERS, GPT3_D = 175e9, 96, 12288
QLORA_R = 64  # Dettmers et al. 2023: LoRA r = 64 on all linear layers


def build(d) -> None:
    """Slides of module 08."""
    counts = {r: lora_paper_count(r, GPT3_LAYERS, GPT3_D) for r in (1, 4, 8)}
    for r, n in counts.items():
        d.value(f"r{r}", r)
        d.value(f"gpt3_r{r}", n, "{:,}")
    d.value("gpt3_ratio", GPT3_PARAMS / counts[4], "{:,.0f}")
    d.value("gpt3_mb", 2 * counts[4] / 2**20, "{:.1f} MiB")
    d.slide(
        "LoRA: train a low-rank update",
        [
            "`W x + (alpha/r) B A x`, B starts at zero: the model is unchanged at step zero",
            "GPT-3 175B, adapters on W_q and W_v: r = {r1} -> {gpt3_r1}, r = {r4} -> {gpt3_r4}, r = {r8} -> {gpt3_r8}",
            "r = {r4}: {gpt3_ratio} x fewer trainable parameters, a {gpt3_mb} fp16 checkpoint",
        ],
        "The LoRA paper quotes these numbers rounded (abstract and its GPT-3 section).",
    )
    llama = build_on_meta("llama-2-7b")
    n_lora = lora_parameter_count(llama, 8, TARGET_SETS["q,v"])
    d.value("llama_lora", n_lora, "{:,}")
    d.value("llama_r", 8)
    d.value("llama_pct", 100 * n_lora / count_model_parameters(llama), "{:.3f} %")
    single = constant_bits_per_param(BLOCK)
    double = constant_bits_per_param(BLOCK, double=True, block2=BLOCK2)
    d.value("block", BLOCK)
    d.value("bits_single", single, "{:.3f}")
    d.value("bits_double", double, "{:.3f}")
    d.value("bits_saved", single - double, "{:.3f}")
    d.slide(
        "QLoRA: the base in 4-bit NF4",
        [
            "Llama-2-7B, r = {llama_r} on q and v: {llama_lora} trainable parameters ({llama_pct} of the model)",
            "NF4: one absmax scale per {block} weights costs {bits_single} bits per parameter",
            "double quantisation of the scales: {bits_double} bits, saving {bits_saved} bits per parameter",
        ],
        "The notebook checks our NF4 table equals bitsandbytes' and the LoRA gradients on the 4-bit model.",
    )
    rows = finetune_memory_rows(r=QLORA_R, targets="all linear")
    d.value("qlora_r", QLORA_R)
    labels = [r["model"] for r in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    for i, (key, name) in enumerate([("full_ft_16bit", "full fine-tune"), ("lora_16bit", "LoRA, 16-bit base"),
                                     ("qlora", "QLoRA, NF4 + double quant")]):  # fmt: skip
        ax.bar(x + (i - 1) * 0.27, [r[key] for r in rows], width=0.27, label=name)
    ax.set_xticks(x, labels)
    ax.set_yscale("log")
    ax.set_ylabel("GB of model states")
    ax.legend(fontsize=7)
    big = rows[-1]
    d.value("big", big["model"])
    d.value("big_full", big["full_ft_16bit"], "{:,.0f} GB")
    d.value("big_qlora", big["qlora"], "{:.1f} GB")
    d.slide(
        "Memory to fine-tune",
        [
            "{big}: full fine-tuning {big_full} of model states, QLoRA {big_qlora}",
            "activations come on top: model states decide whether fine-tuning fits at all",
        ],
        "LoRA rank {qlora_r} on all linear layers (QLoRA's setting); embeddings and LM head stay 16-bit.",
        figure=fig,
    )
    study = finetune_report.load_study(get_profile("cpu"), allow_other_base=True)
    v = finetune_report.lora_verdict(study)
    pre, _ = stats.compare(finetune_report.arm_matrix(study, "random", "content"),
                           finetune_report.arm_matrix(study, "full", "content"))  # fmt: skip
    d.value("seeds", len(finetune_report.seed_runs(study, "full")))
    d.value("claim", 100 * finetune_report.CLAIM_RECOVERED, "{:.0f} %")
    d.value("share", v["percent"], "{:.2f} %")
    d.value("recovered", v["recovered"].mean, "{:.1%}")
    d.value("recovered_se", v["recovered"].se, "{:.1%}")
    d.value("verdict", v["verdict"])
    d.value("plain", finetune_report.gain_recovered(study, "lora_plain").mean, "{:.1%}")
    d.value("pretrain", pre.mean, "{:.2f}")
    d.value("pretrain_z", pre.mean / pre.se, "{:.0f}")
    d.slide(
        "Does LoRA match full fine-tuning? Measured",
        [
            "each method at its own learning rate, trained to its plateau, {seeds} seeds, error bars",
            "LoRA + the chat tokens' rows ({share} trainable) recovers {recovered} ± {recovered_se} of full "
            "fine-tuning's gain on the answer's words: the {claim} claim {verdict} at this scale",
            "LoRA without the new tokens' rows: {plain}, the new-token trap",
            "pre-training is worth {pretrain} nats per answer token over a random init ({pretrain_z} standard errors)",
        ],
        d.value("study_label", finetune_report.stored_label(study)),
    )
    grid = finetune_grid_report.load_grid(allow_other_base=True)
    trend = finetune_grid_report.trend_table(grid)
    r4 = {r["width"]: r["recovered"] for r in trend if r["r"] == 4}
    d.value("trend_r", 4)
    d.value("widths", ", ".join(str(w) for w in r4))
    d.value("r4_shares", ", ".join(f"{v.mean:.0%}" for v in r4.values()))
    d.value("trend_words", finetune_grid_report.trend_direction(grid, trend, 4)[1])
    top_factor, top_effect = finetune_grid_report.factor_ranking(grid)[0]
    d.value("top_factor", top_factor)
    d.value("top_effect", top_effect, "{:.2f}")
    q_d, _ = finetune_grid_report.qlora_cost(grid)["loss"]["content"]
    d.value("qlora_cost", q_d.mean, "{:+.3f}")
    d.value("qlora_se", q_d.se, "{:.3f}")
    d.slide(
        "Across base sizes, and what to tune (stored grid)",
        [
            "LoRA r={trend_r} (+ token rows) recovers {r4_shares} of full FT's content gain at d_model {widths}: {trend_words}",
            "largest factor on validation loss: {top_factor} ({top_effect} nats/token)",
            "QLoRA minus LoRA, same seeds and steps: {qlora_cost} ± {qlora_se} nats/token on the answer's words",
        ],
        d.value("grid_label", finetune_report.stored_label(grid, "grid")),
    )
    d.run_table_slide()
