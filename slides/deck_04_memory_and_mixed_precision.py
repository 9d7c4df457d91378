"""Deck 04 · Memory math and mixed precision: why 7B needs 140 GB+ to train."""

from __future__ import annotations

import matplotlib.pyplot as plt

from workshop_utils.hardware import catalogue
from workshop_utils.memory import estimate_memory
from workshop_utils.precision import format_info

GB = 1e9


def build(d) -> None:
    """Slides of module 04."""
    seq = 4096  # Llama-2's context (Touvron et al. 2023, Table 1)
    b = estimate_memory("llama-2-7b", "mixed", "adamw", batch=1, seq=seq, activation_model="korthikanti")
    psi = b.settings["params"]
    d.value("params", psi, "{:,}")
    d.value("seq", seq, "{:,}")
    d.value("bytes_per_param", b.model_states / psi, "{:.0f}")
    d.value("weights", b.weights / GB, "{:.1f} GB")
    d.value("grads", b.gradients / GB, "{:.1f} GB")
    d.value("adam", (b.optimizer_states + b.master_weights) / GB, "{:.1f} GB")
    d.value("states", b.model_states / GB, "{:.0f} GB")
    d.value("acts", b.activations / GB, "{:.0f} GB")
    d.value("total", b.total / GB, "{:.0f} GB")
    full = estimate_memory("llama-2-7b", "mixed", "adamw", batch=1, seq=seq, checkpointing="full",
                           activation_model="korthikanti")  # fmt: skip
    d.value("acts_ckpt", full.activations / GB, "{:.1f} GB")
    biggest = max(catalogue().values(), key=lambda g: (g.memory_gb, g.peak_flops))  # largest, then fastest
    d.value("gpu_name", biggest.name)
    d.value("gpu_mem", biggest.memory_gb, "{:.0f} GB")
    fig, ax = plt.subplots(figsize=(6, 2.9))
    b.plot(ax=ax, x=0)
    full.plot(ax=ax, x=1)
    ax.set_xticks([0, 1], ["no checkpointing", "full checkpointing"])
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title("Llama-2-7B, mixed precision AdamW, one sequence")
    d.slide(
        "Training Llama-2-7B: the bill",
        [
            "{params} parameters x {bytes_per_param} bytes (fp16 weights + grads, fp32 master + Adam m, v)",
            "weights {weights} + gradients {grads} + Adam and master {adam} = {states} of model states",
            "activations for one {seq}-token sequence: {acts}; total {total}",
            "full activation checkpointing: {acts_ckpt} of activations",
        ],
        "Model states alone ({states}) exceed an {gpu_name} ({gpu_mem}, the largest card in the course's "
        "hardware table); a card with more memory may hold the states, but states plus activations come to "
        "{total}: that is why the next module shards them and why checkpointing matters.",
        figure=fig,
    )
    fmts = {n: format_info(n) for n in ("fp32", "fp16", "bf16")}
    rows = [[n, f"{f.exponent_bits}", f"{f.fraction_bits}", f"{f.max:.4g}", f"{f.min_normal:.3g}", f"{f.eps:.3g}"]
            for n, f in fmts.items()]  # fmt: skip
    d.value("fp16_max", fmts["fp16"].max, "{:,.0f}")
    d.value("bf16_max", fmts["bf16"].max, "{:.2e}")
    d.value("bf16_eps", fmts["bf16"].eps, "{:.2e}")
    d.slide(
        "fp16 vs bf16",
        [
            "fp16 overflows above {fp16_max}: loss scaling (GradScaler) keeps small gradients alive",
            "bf16 keeps fp32's range (max {bf16_max}) with a coarse step (eps {bf16_eps}): no scaler needed",
        ],
        "Ampere or newer: bf16 autocast; T4: fp16 + GradScaler; CPU: fp32 (bf16 autocast is opt-in and was "
        "slightly slower in the course's CPU training benchmark).",
        table=(["format", "exponent bits", "fraction bits", "max", "min normal", "eps"], rows),
    )
    d.run_table_slide()
