"""Deck 06 · Chinchilla scaling laws: count compute, reproduce the paper, place real models, fit our own sweep."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from workshop_utils import published
from workshop_utils import scaling as sc
from workshop_utils.config import get_profile
from workshop_utils.gpu_workloads import results_file, run_seconds
from workshop_utils.paths import repo_root
from workshop_utils.sweep import load_sweep, plan_sweep, stored_label, sweep_spec
from workshop_utils.tokenizer import load_course_tokenizer

GOPHER_BUDGET = published.value("scaling", "gopher_budget")  # FLOPs, Hoffmann et al. 2022 (data/published)
SERVING_TOKENS = 1e14  # assumption, as in the notebook: tokens a model serves over its lifetime
# The instructor's plan, not a measurement: minutes per notebook section, and the question to ask the room
# before running that section's checkpoint.
# fmt: off
PLAN = {  # key: (minutes, question before the checkpoint, remark for the speaker)
    "compute": (5, "Does the attention term matter more for GPT-3 or for our smallest sweep model?",
                "GPT-3's layers, width and context are the published ones; the notebook uses Chinchilla 70B and finds the same: a few percent."),
    "table3": (5, "Every row should be 6ND: which one breaks it, and is that rounding or not?",
               "The claims test asserts the discrepancy rather than loosening every tolerance."),
    "law": (6, "If a grows from a third to a half, does a bigger budget buy more parameters or more tokens?",
            "The TeX-precision constants; the figure shows all three published sets. Tokens per parameter is not a constant along the frontier."),
    "gopher": (4, "The paper's figure says one size for Gopher's budget: which set of constants gives it?",
               "The spread between fits is the honest error bar; Epoch AI's refit moves the optimum a lot."),
    "real": (4, "Which of these models were trained on too few tokens for their compute?",
             "Each point is 6ND from the published parameters and tokens (data/published)."),
    "overtrain": (4, "Meta trained the 8B model far past the frontier: when does that pay back?",
                  "Inference costs about 2N FLOPs per token; the serving volume is the notebook's stated assumption."),
    "live": (6, "At the smallest budget, does the smallest model win, or one in the middle?",
             "A parabola in log N through each budget's losses gives N_opt(C); a power law through the minima gives a."),
    "stored": (6, "What would it take to tell Chinchilla's exponent from Kaplan's with a sweep like ours?",
               "More budgets, wider apart, is the answer. The file is refused if its code or inputs changed."),
    "approach3": (4, "Fitted on so few points, how far from any published set will E, alpha and beta land?",
                  "The bootstrap captures the scatter around the parabolas, not the choices behind the sweep: one learning rate, N with embeddings, one seed, repeated data."),
    "recap": (6, "Which number of this module would you quote to your team, and with which error bar?",
              "Then the exercises. The module is planned at {min_total}."),
}
# fmt: on


def _notes(d, key: str) -> str:
    """Speaker notes from PLAN: the planned minutes, the question to ask before the checkpoint, the remark."""
    minutes, question, remark = PLAN[key]
    ask = "Recap, then ask" if key == "recap" else "Ask before the checkpoint"
    return f"{d.value(f'min_{key}', minutes, '{} min')}. {ask}: {question} {remark}".strip()


def build(d) -> None:
    """Slides of module 06, one per notebook section."""
    _compute_slide(d)
    _table3_slide(d)
    law = sc.CHINCHILLA_TEX
    _law_slide(d, law)
    _gopher_slide(d, law)
    _real_models_slide(d, law)
    _overtraining_slide(d, law)
    _live_sweep_slide(d)
    _stored_sweep_slide(d)
    _approach3_slide(d)
    d.value("min_total", sum(m for m, _, _ in PLAN.values()), "{} min")
    d.run_table_slide(_notes(d, "recap"))


def _compute_slide(d) -> None:
    """§1: C = 6ND, and the attention term it leaves out."""
    chin = next(m for m in sc.REAL_MODELS if m.name == "Chinchilla")
    d.value("chin_n", chin.params / 1e9, "{:.0f}B")
    d.value("chin_d", chin.tokens / 1e12, "{:.1f}T")
    d.value("chin_c", sc.training_flops(chin.params, chin.tokens), "{:.3g}")
    d.value("chin_tpp", sc.tokens_per_param(chin.params, chin.tokens), "{:.0f}")
    pt = {
        k: published.value("pretraining", f"gpt3_{k}")
        for k in ("params", "tokens", "layers", "d_model", "context")
    }
    gpt3 = sc.training_flops_with_attention(
        pt["params"], pt["tokens"], pt["layers"], pt["d_model"], pt["context"]
    )
    d.value("attn_gpt3", gpt3 / sc.training_flops(pt["params"], pt["tokens"]) - 1, "{:.1%}")
    d.value("gpt3_ctx", pt["context"], "{:,}")
    live = get_profile(get_profile("cpu").scaling.live_profile)
    small = min(
        plan_sweep(sweep_spec(live), live, len(load_course_tokenizer(live))), key=lambda r: r["params"]
    )
    attn = sc.training_flops_with_attention(small["params"], small["tokens"], small["n_layers"], small["d_model"],
                                            live.scaling.context)  # fmt: skip
    d.value("attn_small", attn / sc.training_flops(small["params"], small["tokens"]) - 1, "{:.1%}")
    d.value("small_n", small["params"], "{:,}")
    d.slide(
        "Counting compute: C ≈ 6ND",
        [
            "forward 2N, backward 4N FLOPs per token: training N parameters on D tokens costs `C = 6ND`",
            "Chinchilla, {chin_n} parameters on {chin_d} tokens: 6ND = {chin_c} FLOPs, {chin_tpp} tokens per parameter",
            "the attention term `12 L d T` adds {attn_gpt3} for GPT-3 (context {gpt3_ctx}) and "
            "{attn_small} for our smallest sweep model ({small_n} parameters)",
        ],
        _notes(d, "compute"),  # fmt: skip
    )


def _table3_slide(d) -> None:
    """§2: Chinchilla's Table 3 recomputed with 6ND, within the rounding of its printed digits."""
    rows = sc.table3_check()
    odd = [r for r in rows if not r["consistent"]]
    n_params = {label: n for label, n, _, _ in sc.CHINCHILLA_TABLE3}
    # tokens per parameter; an inconsistent row counts the tokens that make 6ND = C (as the notebook does)
    per_param = [
        r["tokens/param"] if r["consistent"] else r["tokens if 6ND = C"] / n_params[r["params"]] for r in rows
    ]
    d.value("t3_ok", len(rows) - len(odd))
    d.value("t3_n", len(rows))
    d.value("t3_odd", ", ".join(r["params"] for r in odd))
    d.value("t3_off", odd[0]["6ND / FLOPs"] - 1, "{:+.1%}")
    d.value("t3_need", odd[0]["tokens if 6ND = C"] / 1e12, "{:.2f}T")
    d.value("tpp_min", min(per_param), "{:.1f}")
    d.value("tpp_max", max(per_param), "{:.1f}")
    table = [[r["params"], f"{r['6ND / FLOPs']:.4f}", f"±{r['rounding allows']:.4f}", f"{r['tokens/param']:.1f}",
              "yes" if r["consistent"] else "no"] for r in rows]  # fmt: skip
    d.slide(
        "Chinchilla's projection table, recomputed",
        [
            "{t3_ok} of {t3_n} rows are 6ND within what rounding to the printed digits can hide",
            "the {t3_odd} row is off by {t3_off}: its FLOPs are Gopher's budget, and 6ND = C needs {t3_need} tokens",
            "tokens per parameter across the table: {tpp_min} to {tpp_max}, where the rule of thumb comes from",
        ],
        _notes(d, "table3"),
        table=(["params", "6ND / printed FLOPs", "rounding allows", "tokens/param", "6ND?"], table),
    )


def _law_slide(d, law: sc.ChinchillaLaw) -> None:
    """§3: the loss law and its frontier, with a figure of tokens per parameter along it."""
    d.value("e", law.E, "{:.2f}")
    d.value("alpha", law.alpha, "{:.2f}")
    d.value("beta", law.beta, "{:.2f}")
    d.value("exp_a", law.a, "{:.2f}")
    tab = published.group("scaling", "chinchilla_table1")
    chin, gopher = ((tab[f"{m}/params"].value, tab[f"{m}/tokens"].value) for m in ("Chinchilla", "Gopher"))
    d.value("loss_chin", law.loss(*chin), "{:.4f}")
    d.value("loss_gopher", law.loss(*gopher), "{:.4f}")
    d.value("gopher_d", gopher[1] / 1e9, "{:.0f}B")
    c = np.geomspace(1e18, 1e26, 40)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for lw in sc.LAWS:
        ax.semilogx(c, lw.d_opt(c) / lw.n_opt(c), label=f"{lw.name}: a = {lw.a:.3f}")
    ax.axvline(GOPHER_BUDGET, color="grey", lw=0.8)
    ax.set(
        xlabel="training compute C (FLOPs)",
        ylabel="D_opt / N_opt",
        title="tokens per parameter on the frontier",
    )
    ax.legend(fontsize=7)
    d.slide(
        "The Chinchilla law",
        [
            "`L(N, D) = E + A/N^alpha + B/D^beta` with E = {e}, alpha = {alpha}, beta = {beta}",
            "under a budget `C = 6ND` the best model has `N_opt ∝ C^a`, a = {exp_a}: grow params and tokens together",
            "predicted loss: Chinchilla ({chin_n}, {chin_d}) {loss_chin} below Gopher ({gopher_params}, {gopher_d}) {loss_gopher}",
        ],
        _notes(d, "law"),  # fmt: skip
        figure=fig,
    )


def _gopher_slide(d, law: sc.ChinchillaLaw) -> None:
    """§3 (continued): the three published fits at Gopher's budget."""
    d.value("budget", GOPHER_BUDGET, "{:.2e}")
    rows = []
    for i, lw in enumerate(sc.LAWS):
        n, dd = float(lw.n_opt(GOPHER_BUDGET)), float(lw.d_opt(GOPHER_BUDGET))
        rows.append([lw.name, f"{n / 1e9:.1f}B", f"{dd / 1e12:.2f}T", f"{dd / n:.1f}"])
        d.value(f"nopt{i}", n / 1e9, "{:.1f}B")
    tex = sc.LAWS.index(law)
    d.value("tokens_per_param", float(law.d_opt(GOPHER_BUDGET) / law.n_opt(GOPHER_BUDGET)), "{:.0f}")
    gopher = next(m for m in sc.REAL_MODELS if m.name == "Gopher")
    d.value("gopher_params", gopher.params / 1e9, "{:.0f}B")
    d.value("gopher_ratio", float(sc.size_vs_optimal(law, gopher.params, gopher.tokens)), "{:.1f}")
    d.slide(
        "At Gopher's budget of {budget} FLOPs",
        [
            f"compute-optimal size: {{nopt{tex}}} parameters, as the paper projects; {{tokens_per_param}} tokens each",
            "Gopher used {gopher_params}: {gopher_ratio} x the optimal size, on too few tokens",
            "the three published fits disagree: {nopt0} / {nopt1} / {nopt2}",
        ],
        _notes(d, "gopher"),
        table=(["law", "N_opt", "D_opt", "tokens per parameter"], rows),
    )


def _real_models_slide(d, law: sc.ChinchillaLaw) -> None:
    """§4: published models against the frontier."""
    c = np.geomspace(1e20, 1e26, 50)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for lw in sc.LAWS:
        ax.plot(c, lw.n_opt(c), label=lw.name)
    for m in sc.REAL_MODELS:
        ax.scatter(sc.training_flops(m.params, m.tokens), m.params, s=12, color="k")
        ax.annotate(m.name, (sc.training_flops(m.params, m.tokens), m.params), fontsize=6)
    ax.set(xscale="log", yscale="log", xlabel="training compute C = 6ND (FLOPs)", ylabel="parameters N")
    ax.legend(fontsize=7)
    ratios = {
        m.name: min(float(sc.size_vs_optimal(lw, m.params, m.tokens)) for lw in sc.LAWS)
        for m in sc.REAL_MODELS
    }
    newer = next(m for m in sc.REAL_MODELS if m.name.startswith("Llama-3 8B"))
    d.value("l3_ratio", float(sc.size_vs_optimal(law, newer.params, newer.tokens)), "{:.2f}")
    d.value("n_models", len(ratios))
    under = [name for name, r in ratios.items() if r > 1]
    d.value("under_names", ", ".join(under))
    d.value("n_rest", len(ratios) - len(under))
    d.slide(
        "Real models against the frontier",
        [
            "above the lines, larger than optimal under all three laws: {under_names}",
            "the other {n_rest} of {n_models} published models sit on or below the frontier under at least one law",
            "below: over-trained on purpose, cheaper to serve (Llama-3 8B at {l3_ratio} x optimal size)",
        ],
        _notes(d, "real"),
        figure=fig,
    )


def _overtraining_slide(d, law: sc.ChinchillaLaw) -> None:
    """§4 (continued): what over-training costs up front and saves per served token."""
    l3 = next(m for m in sc.REAL_MODELS if m.name.startswith("Llama-3 8B"))
    t = sc.overtraining_tradeoff(law, l3.params, l3.tokens, SERVING_TOKENS)
    d.value("l3_d", l3.tokens / 1e12, "{:.0f}T")
    d.value("ot_loss", t.loss, "{:.4f}")
    d.value("ot_n", t.optimal_params / 1e9, "{:.1f}B")
    d.value("ot_d", t.optimal_tokens / 1e12, "{:.2f}T")
    d.value("ot_extra", t.extra_training_flops, "{:.2g}")
    d.value("ot_saved", t.saved_flops_per_token / 1e9, "{:.1f}")
    d.value("ot_break", t.breakeven_tokens, "{:.2g}")
    d.value("serving", SERVING_TOKENS, "{:.0e}")
    d.value("ot_net", t.net_flops_saved, "{:.2g}")
    d.slide(
        "Why over-train: the serving bill",
        [
            "Llama-3 8B on {l3_d} tokens: predicted loss {ot_loss}; the compute-optimal model for it: {ot_n} on {ot_d}",
            "over-training costs {ot_extra} extra training FLOPs and saves {ot_saved} GFLOPs per served token",
            "break-even after {ot_break} served tokens; at an assumed {serving} it saves {ot_net} FLOPs",
        ],
        _notes(d, "overtrain"),
    )


def _live_sweep_slide(d) -> None:
    """§5: the IsoFLOP sweep the notebook trains live (its plan here; nothing is trained in the deck)."""
    live = get_profile(get_profile("cpu").scaling.live_profile)
    spec = sweep_spec(live)
    plan = pd.DataFrame(plan_sweep(spec, live, len(load_course_tokenizer(live))))
    d.value("live_profile", live.name)
    d.value("n_budgets", len(spec.budgets))
    d.value("n_sizes", len(spec.sizes))
    d.value("n_runs", len(plan))
    d.value("p_min", plan["params"].min(), "{:,}")
    d.value("p_max", plan["params"].max(), "{:,}")
    d.value("steps_min", plan["steps"].min())
    d.value("steps_max", plan["steps"].max(), "{:,}")
    d.value("emb_share", 1 - plan["non_embedding_params"].min() / plan["params"].min(), "{:.0%}")
    d.value("nb_seconds", run_seconds("cpu", "06_scaling_laws.ipynb"), "{:.0f} s")
    fig, ax = plt.subplots(figsize=(7, 2.5))
    for b, g in plan.groupby("budget"):
        ax.loglog(g["params"], g["tokens"], "o-", label=f"C = {b:.2g}")
    ax.set(
        xlabel="parameters N (embeddings included)", ylabel="tokens D = C / 6N", title="the live sweep's plan"
    )
    ax.legend(fontsize=7)
    d.slide(
        "Our own IsoFLOP sweep, trained in the notebook",
        [
            "profile {live_profile}: {n_budgets} budgets x {n_sizes} sizes = {n_runs} runs, {p_min} to {p_max} parameters",
            "each run spends its budget exactly: {steps_min} to {steps_max} steps, a cosine schedule as long as the run",
            "N counts every parameter, as Hoffmann et al. do: the embeddings are {emb_share} of the smallest model",
            "the whole notebook took {nb_seconds} in the recorded cpu run (stored run table)",
        ],
        _notes(d, "live"),
        figure=fig,
    )


def _stored_sweep_slide(d) -> None:
    """§6: what the stored cpu IsoFLOP sweep can and cannot decide (the notebook asserts the same)."""
    stored = load_sweep(repo_root() / "data" / "scaling" / "sweep_cpu.json")
    df = pd.DataFrame(stored["records"])
    fit = sc.fit_isoflop(df["params"], df["budget"], df["loss"])
    boots = sc.bootstrap_isoflop(
        df["params"], df["budget"], df["loss"], n_boot=get_profile("cpu").scaling.n_boot
    )
    lo, hi = np.percentile(boots, 10), np.percentile(boots, 90)
    used = sorted(fit.used)
    d.value("sweep_a", fit.a, "{:.2f}")
    d.value("sweep_lo", lo, "{:.2f}")
    d.value("sweep_hi", hi, "{:.2f}")
    d.value("sweep_span", used[-1] / used[0], "{:.0f}")
    d.value("sweep_label", stored_label(stored))
    d.value("kaplan_a", sc.KAPLAN.a, "{:.2f}")
    inside = lo <= sc.KAPLAN.a <= hi and lo <= sc.APPROACH2_A[0] <= hi  # Chinchilla Approach 2 (Table 2)
    verdict = (
        "cannot tell Chinchilla's exponent from Kaplan's {kaplan_a}"
        if inside
        else "excludes one published exponent"
    )
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for i, p in enumerate(fit.profiles):
        x = np.geomspace(p.params.min() / 1.3, p.params.max() * 1.3, 40)
        ax.semilogx(p.params, p.losses, "o", color=f"C{i}", label=f"C = {p.compute:.2g}")
        ax.semilogx(x, np.polyval(p.coeffs, np.log(x)), "-", color=f"C{i}", alpha=0.6)
        if p.compute in fit.used:
            ax.plot(p.n_opt, p.loss_min, "*", color=f"C{i}", ms=12)
    ax.set(xlabel="parameters N", ylabel="final validation loss", title="IsoFLOP valleys (stored cpu sweep)")
    ax.legend(fontsize=7)
    d.slide(
        "The stored, larger sweep: what it can decide",
        [
            "bracketed budgets span {sweep_span}x in compute; a = {sweep_a}, bootstrap interval [{sweep_lo}, {sweep_hi}]",
            f"bigger budgets want bigger models; the interval {verdict}",
            "{sweep_label}: one learning rate, one seed, tiny models",
        ],
        _notes(d, "stored"),
        figure=fig,
    )


def _approach3_slide(d) -> None:
    """§6 (continued): Approach 3 on our data, and the published exponents to compare with."""
    starts = {name: int(np.prod([len(v) for v in g.values()])) for name, g in sc.GRIDS.items()}
    bench = results_file("scaling_fit_cpu")
    d.value("starts_paper", starts["paper"], "{:,}")
    d.value("grid_cpu", get_profile("cpu").scaling.grid)
    d.value("starts_cpu", starts[get_profile("cpu").scaling.grid], "{:,}")
    d.value("fit_seconds", bench["seconds"], "{:.1f} s")
    d.value("fit_ms", 1e3 * bench["seconds_per_start"], "{:.0f} ms")
    d.value("a2", sc.APPROACH2_A[0], "{:.2f}")
    d.value("a2_lo", sc.APPROACH2_A[1], "{:.3f}")
    d.value("a2_hi", sc.APPROACH2_A[2], "{:.3f}")
    d.value("a3", sc.CHINCHILLA_TEX.a, "{:.2f}")
    d.value("a_epoch", sc.EPOCH_REFIT.a, "{:.2f}")
    d.slide(
        "The parametric fit on our data, and how far to trust a",
        [
            "Huber loss on log-loss, L-BFGS from a grid of starts: {starts_paper} in the paper, {starts_cpu} in the cpu profile's {grid_cpu} grid",
            "stored benchmark: {fit_seconds} for the cpu fit on the stored sweep, {fit_ms} per start",
            "published a: IsoFLOP approach {a2} ({a2_lo} to {a2_hi}), parametric approach {a3}, Epoch AI refit {a_epoch}, Kaplan {kaplan_a}",
        ],
        _notes(d, "approach3"),  # fmt: skip
    )
