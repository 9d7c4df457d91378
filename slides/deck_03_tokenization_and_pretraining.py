"""Deck 03 · Tokenization and next-token prediction: BPE, a tiny LLaMA, and the scale of real runs."""

from __future__ import annotations

import matplotlib.pyplot as plt

from workshop_utils.scale import A100_BF16_PEAK, published_runs, runs_table


def build(d) -> None:
    """Slides of module 03."""
    d.slide(
        "Text to token ids",
        [
            "byte-level BPE: start from bytes, merge the most frequent adjacent pair, repeat",
            "our from-scratch trainer gives the same merges as Hugging Face `tokenizers` under its tie rule"
            ' (`tie_break="hf"`); with our default tie rule the lists part at the first tie',
            "the model sees ids; the loss is cross-entropy of the next id",
        ],
        "Show the first merges live in the notebook; ask which pair comes first in Shakespeare.",
    )
    d.slide(
        "A tiny LLaMA, trained live",
        [
            "inputs `x = ids[t:t+T]`, targets `y = ids[t+1:t+T+1]`",
            "loss falls from the uniform guess `ln(V)` within the first minute",
            "samples gain the form of the plays (speaker tags, verse lines) long before the sense",
        ],
        "Be honest about the samples: locally grammatical, sense drifts within a line or two.",
    )
    runs = published_runs()
    rows = runs_table(runs)
    peak = d.value("a100_peak", A100_BF16_PEAK / 1e12, "{:.0f} TFLOP/s")
    star = next(r for r in runs if r.name.startswith("StarCoder"))
    l7 = next(r for r in runs if r.name == "LLaMA-2 7B")
    l70 = next(r for r in runs if r.name == "LLaMA-2 70B")
    d.value("star_flops", star.train_flops, "{:.2e}")
    d.value("star_mfu", 100 * star.mfu, "{:.0f} %")
    d.value("l7_flops", l7.train_flops, "{:.2e}")
    d.value("l70_flops", l70.train_flops, "{:.2e}")
    d.value("l70_mfu", 100 * l70.mfu, "{:.0f} %")
    table = (
        ["run", "params (B)", "tokens (T)", "GPU-hours", "6ND FLOPs", "implied MFU"],
        [
            [r["run"], f"{r['params (B)']:.2f}", f"{r['tokens (T)']:.1f}", f"{r['GPU-hours (published)']:,.0f}",
             f"{r['6ND (FLOPs)']:.2e}", f"{100 * r['MFU vs 312 TFLOPS']:.0f} %"]
            for r in rows
        ],
    )  # fmt: skip
    fig, ax = plt.subplots(figsize=(7, 3.0))
    ax.barh([r.name for r in runs], [r.train_flops for r in runs], color="C0")
    ax.set_xscale("log")
    ax.set_xlabel("training compute C = 6ND (FLOPs)")
    ax.invert_yaxis()
    d.slide(
        "The scale of real runs: C = 6ND",
        [
            "StarCoderBase {star_flops} FLOPs, LLaMA-2 7B {l7_flops}, LLaMA-2 70B {l70_flops}",
            f"published GPU-hours imply {{star_mfu}} to {{l70_mfu}} of the A100's {peak} bf16 peak",
        ],
        "6ND counts the matmuls; the attention term is small at these context lengths (the notebook shows it).",
        table=table,
    )
    d.slide(
        "Training compute of real runs",
        ["StarCoderBase and the four LLaMA-2 sizes, log scale"],
        "Our live run is many orders of magnitude below these; the notebook computes how long ours would take.",
        figure=fig,
    )
    d.run_table_slide()
