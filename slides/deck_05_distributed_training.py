"""Deck 05 · Distributed training: DDP, ZeRO stages and FSDP, per-device memory."""

from __future__ import annotations

import matplotlib.pyplot as plt

from workshop_utils.memory import ZERO_STAGES, estimate_memory, zero_model_states_bytes

GB = 1e9
PSI, N_D = 7_500_000_000, 64  # the ZeRO paper's worked example (Rajbhandari et al. 2020, Fig. 1)
GPUS = 8  # one 8-GPU node


def build(d) -> None:
    """Slides of module 05."""
    d.slide(
        "Data parallel, then shard",
        [
            "DDP: every rank holds everything, all-reduces gradients",
            "ZeRO-1 shards optimizer states, ZeRO-2 also gradients, ZeRO-3 (FSDP) also parameters",
            "the notebook runs each on real `torch.distributed` ranks (gloo on CPU) and measures per-rank memory",
        ],
        "Losses match the single-process run; only memory and traffic change.",
    )
    d.value("psi", PSI / 1e9, "{:.1f}B")
    d.value("n_d", N_D)
    paper = {s: zero_model_states_bytes(PSI, s, N_D) / GB for s in ZERO_STAGES}
    for s, v in paper.items():
        d.value(f"zero{s}", v, "{:.1f} GB" if v >= 10 else "{:.2f} GB")
    d.slide(
        "ZeRO's worked example",
        [
            "a {psi}-parameter model on {n_d} GPUs, mixed-precision Adam:",
            "plain data parallel {zero0} per GPU",
            "ZeRO-1 {zero1}, ZeRO-2 {zero2}, ZeRO-3 {zero3}",
        ],
        "Recomputed with the paper's formulas; the claims tests compare with the paper's table cell by cell.",
    )
    d.value("gpus", GPUS)
    llama = {s: estimate_memory("llama-2-7b", "mixed", "adamw", batch=1, seq=4096, zero_stage=s, n_d=GPUS)
             for s in ZERO_STAGES}  # fmt: skip
    for s, b in llama.items():
        d.value(f"l7_zero{s}", b.model_states / GB, "{:.1f} GB")
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    ax.bar(
        [f"ZeRO-{s}" if s else "DDP" for s in ZERO_STAGES], [llama[s].model_states / GB for s in ZERO_STAGES]
    )
    ax.set_ylabel("model states per GPU (GB)")
    ax.set_title(f"Llama-2-7B on {GPUS} GPUs")
    d.slide(
        "Llama-2-7B on one node of {gpus} GPUs",
        ["model states per GPU: DDP {l7_zero0}, ZeRO-1 {l7_zero1}, ZeRO-2 {l7_zero2}, ZeRO-3 {l7_zero3}"],
        "ZeRO-3 pays with an all-gather of parameters in forward and backward: the notebook counts the bytes.",
        figure=fig,
    )
    d.run_table_slide()
