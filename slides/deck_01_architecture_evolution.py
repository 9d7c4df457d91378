"""Deck 01 · Architecture evolution: where the parameters of BERT, T5, GPT-2 and LLaMA live."""

from __future__ import annotations

import matplotlib.pyplot as plt

from workshop_utils.params import (
    CATEGORIES,
    build_on_meta,
    count_model_parameters,
    count_parameters,
    known_config,
)

MODELS = ("bert-base", "t5-base", "gpt2", "llama-2-7b", "llama-2-70b", "llama-3-8b")


def build(d) -> None:
    """Slides of module 01."""
    counts = {name: count_parameters(known_config(name)) for name in MODELS}
    d.slide(
        "Four families, one block",
        [
            "BERT: encoder, bidirectional mask, masked-token objective",
            "T5: encoder-decoder, span corruption",
            "GPT-2: decoder, causal mask, next token",
            "LLaMA: GPT-2 plus RMSNorm, RoPE, SwiGLU, no biases (and GQA from Llama-2-70B)",
        ],
        "The notebook measures the masks from the models themselves: change one input token, see which outputs move.",
    )
    rows = [
        [name, f"{c.total:,}"] + [f"{100 * c.fractions()[k]:.1f} %" for k in CATEGORIES[:5]]
        for name, c in counts.items()
    ]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    left = [0.0] * len(MODELS)
    for i, cat in enumerate(CATEGORIES[:5]):
        shares = [100 * counts[m].fractions()[cat] for m in MODELS]
        ax.barh(MODELS, shares, left=left, color=f"C{i}", label=cat)
        left = [a + b for a, b in zip(left, shares)]
    ax.set_xlabel("share of parameters (%)")
    ax.invert_yaxis()
    ax.legend(ncol=5, fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    d.slide(
        "Where the parameters live",
        [],
        "Closed-form counts from the configs, checked against models built on the meta device.",
        figure=fig,
        table=(["model", "parameters", *CATEGORIES[:5]], rows),
    )
    total = d.value("llama7b_total", counts["llama-2-7b"].total, "{:,}")
    meta = d.value("llama7b_meta", count_model_parameters(build_on_meta("llama-2-7b")), "{:,}")
    emb_gpt2 = d.value("gpt2_emb_share", 100 * counts["gpt2"].fractions()["embeddings"], "{:.0f} %")
    emb_llama = d.value("llama7b_emb_share", 100 * counts["llama-2-7b"].fractions()["embeddings"], "{:.1f} %")
    c = known_config("gpt2")
    gpt2 = counts["gpt2"]
    kaplan = d.value("kaplan_ratio", (gpt2.attention + gpt2.mlp) / (12 * c.n_layer * c.n_embd**2), "{:.3f}")
    d.slide(
        "Key numbers",
        [
            f"Llama-2-7B: {total} parameters by formula, {meta} on the meta device",
            f"embeddings are {emb_gpt2} of GPT-2 small but {emb_llama} of Llama-2-7B",
            f"Kaplan's `12·L·d²` covers GPT-2's blocks: ratio {kaplan}",
        ],
        "At scale the blocks dominate; small models spend a large share on the vocabulary.",
    )
    d.run_table_slide()
