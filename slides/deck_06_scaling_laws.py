"""Deck 06 · Chinchilla scaling laws: the compute-optimal frontier and where real models sit."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from workshop_utils import published
from workshop_utils.config import get_profile
from workshop_utils.paths import repo_root
from workshop_utils.scaling import (
    APPROACH2_A,
    CHINCHILLA_TEX,
    KAPLAN,
    LAWS,
    REAL_MODELS,
    bootstrap_isoflop,
    fit_isoflop,
    size_vs_optimal,
    training_flops,
)
from workshop_utils.sweep import load_sweep, stored_label

GOPHER_BUDGET = published.value("scaling", "gopher_budget")  # FLOPs, Hoffmann et al. 2022 (data/published)


def build(d) -> None:
    """Slides of module 06."""
    law = CHINCHILLA_TEX
    d.value("budget", GOPHER_BUDGET, "{:.2e}")
    d.value("e", law.E, "{:.2f}")
    d.value("alpha", law.alpha, "{:.2f}")
    d.value("beta", law.beta, "{:.2f}")
    d.value("exp_a", law.a, "{:.2f}")
    d.slide(
        "The Chinchilla law",
        [
            "`L(N, D) = E + A/N^alpha + B/D^beta` with E = {e}, alpha = {alpha}, beta = {beta}",
            "under a budget `C = 6ND` the best model has `N_opt ∝ C^a`, a = {exp_a}: grow params and tokens together",
        ],
        "The parametric fit of Hoffmann et al.; the notebook also fits the IsoFLOP approach and our own sweep.",
    )
    rows = []
    for i, lw in enumerate(LAWS):
        n, dd = float(lw.n_opt(GOPHER_BUDGET)), float(lw.d_opt(GOPHER_BUDGET))
        rows.append([lw.name, f"{n / 1e9:.1f}B", f"{dd / 1e12:.2f}T", f"{dd / n:.1f}"])
        d.value(f"nopt{i}", n / 1e9, "{:.1f}B")
    tex = LAWS.index(law)
    d.value("tokens_per_param", float(law.d_opt(GOPHER_BUDGET) / law.n_opt(GOPHER_BUDGET)), "{:.0f}")
    gopher = next(m for m in REAL_MODELS if m.name == "Gopher")
    d.value("gopher_params", gopher.params / 1e9, "{:.0f}B")
    d.value("gopher_ratio", float(size_vs_optimal(law, gopher.params, gopher.tokens)), "{:.1f}")
    d.slide(
        "At Gopher's budget of {budget} FLOPs",
        [
            f"compute-optimal size: {{nopt{tex}}} parameters, as the paper projects; {{tokens_per_param}} tokens each",
            "Gopher used {gopher_params}: {gopher_ratio} x the optimal size, on too few tokens",
            "the three published fits disagree: {nopt0} / {nopt1} / {nopt2}",
        ],
        "The spread between fits is the honest error bar; Epoch AI's refit moves the optimum a lot.",
        table=(["law", "N_opt", "D_opt", "tokens per parameter"], rows),
    )
    c = np.geomspace(1e20, 1e26, 50)
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for lw in LAWS:
        ax.plot(c, lw.n_opt(c), label=lw.name)
    for m in REAL_MODELS:
        ax.scatter(training_flops(m.params, m.tokens), m.params, s=12, color="k")
        ax.annotate(m.name, (training_flops(m.params, m.tokens), m.params), fontsize=6)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training compute C = 6ND (FLOPs)")
    ax.set_ylabel("parameters N")
    ax.legend(fontsize=7)
    newer = [m for m in REAL_MODELS if m.name.startswith("Llama-3 8B")][0]
    d.value("l3_ratio", float(size_vs_optimal(law, newer.params, newer.tokens)), "{:.2f}")
    d.slide(
        "Real models against the frontier",
        [
            "above the lines: too many parameters for the tokens (GPT-3, Gopher)",
            "below: over-trained on purpose, cheaper to serve (Llama-3 8B at {l3_ratio} x optimal size)",
        ],
        "Over-training trades extra training compute for cheaper inference: the notebook computes the break-even.",
        figure=fig,
    )
    _our_sweep_slide(d)
    d.run_table_slide()


def _our_sweep_slide(d) -> None:
    """What the stored cpu IsoFLOP sweep can and cannot decide (the notebook asserts the same)."""
    stored = load_sweep(repo_root() / "data" / "scaling" / "sweep_cpu.json")
    df = pd.DataFrame(stored["records"])
    fit = fit_isoflop(df["params"], df["budget"], df["loss"])
    boots = bootstrap_isoflop(
        df["params"], df["budget"], df["loss"], n_boot=get_profile("cpu").scaling.n_boot
    )
    lo, hi = np.percentile(boots, 10), np.percentile(boots, 90)
    used = sorted(fit.used)
    d.value("sweep_a", fit.a, "{:.2f}")
    d.value("sweep_lo", lo, "{:.2f}")
    d.value("sweep_hi", hi, "{:.2f}")
    d.value("sweep_span", used[-1] / used[0], "{:.0f}")
    d.value("sweep_label", stored_label(stored))
    d.value("kaplan_a", KAPLAN.a, "{:.2f}")
    inside = lo <= KAPLAN.a <= hi and lo <= APPROACH2_A[0] <= hi  # Chinchilla Approach 2 (Table 2)
    verdict = (
        "cannot tell Chinchilla's exponent from Kaplan's {kaplan_a}"
        if inside
        else "excludes one published exponent"
    )
    d.slide(
        "Our own sweep: what it can decide",
        [
            "bracketed budgets span {sweep_span}x in compute; a = {sweep_a}, bootstrap interval [{sweep_lo}, {sweep_hi}]",
            f"bigger budgets want bigger models; the interval {verdict}",
            "{sweep_label}: one learning rate, one seed, tiny models",
        ],
        "Ask before the checkpoint: what would it take to separate the two exponents? (More budgets, wider.)",
    )
