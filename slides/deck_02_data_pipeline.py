"""Deck 02 · Pre-training data: the cleaning stages and the MinHash S-curve."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from workshop_utils.data.dedup import s_curve
from workshop_utils.data.pipeline import PUBLISHED, STAGES, PipelineConfig


def build(d) -> None:
    """Slides of module 02."""
    cfg = PipelineConfig()
    rows = cfg.num_hashes // cfg.num_bands
    d.slide(
        "From a crawl to training text",
        [
            " -> ".join(STAGES),
            "each stage is scored against the generator's ground truth (precision, recall)",
        ],
        "The mini crawl ships with labels: broken, non-English, low quality, duplicate, keep.",
    )
    lang = d.value("lang_threshold", cfg.lang_threshold, "{:.2f}")
    overall = d.value("refinedweb_removed", PUBLISHED["overall"][1], "{:.0f} %")
    d.slide(
        "The published recipe",
        [
            f"language ID: drop a document whose top language scores below {lang} (RefinedWeb, FineWeb)",
            "quality: Gopher and C4 rules (word counts, symbol ratios, repetition, stop words)",
            "exact then near-duplicate removal (MinHash LSH), PII masked",
            f"RefinedWeb: nearly {overall} of the documents removed",
        ],
        "Only the overall RefinedWeb figure is verified; the per-stage shares are from a figure, so we show one.",
    )
    bands = d.value("bands", cfg.num_bands)
    r = d.value("rows", rows)
    hashes = d.value("hashes", cfg.num_hashes)
    thr = d.value("jaccard", cfg.jaccard_threshold, "{:.1f}")
    p_thr = d.value("p_at_thr", float(s_curve(cfg.jaccard_threshold, cfg.num_bands, rows)), "{:.3f}")
    lo = cfg.jaccard_threshold - 0.2
    d.value("s_low", lo, "{:.1f}")
    d.value("p_low", float(s_curve(lo, cfg.num_bands, rows)), "{:.3f}")
    s = np.linspace(0, 1, 201)
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.plot(s, s_curve(s, cfg.num_bands, rows), label=f"{cfg.num_bands} bands x {rows} rows")
    ax.axvline(cfg.jaccard_threshold, color="grey", ls=":")
    ax.set_xlabel("Jaccard similarity of two documents")
    ax.set_ylabel("P(candidate pair)")
    ax.legend()
    d.slide(
        "MinHash LSH: the S-curve",
        [
            f"{hashes} hashes = {bands} bands x {r} rows (FineWeb's setting)",
            f"pairs at Jaccard {thr} become candidates with probability {p_thr}",
            "pairs at Jaccard {s_low}: only {p_low}",
        ],
        "Candidate probability is `1 - (1 - s**r)**b`. The notebook measures the rate on real pairs and compares.",
        figure=fig,
    )
    d.run_table_slide()
