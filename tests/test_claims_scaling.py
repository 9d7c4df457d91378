"""Claims ledger of module 06: the package's scaling-law numbers vs the published ones.

Every published value comes from data/published/scaling.json (and pretraining.json for the models' sizes),
each row with its source (Hoffmann et al. 2022, arXiv:2203.15556; Besiroglu et al. 2024, arXiv:2404.10102;
Kaplan et al. 2020, arXiv:2001.08361, or the course's derivation from them) and the tolerance that source's
precision allows. The tests call workshop_utils.scaling and compare.
"""

from __future__ import annotations

import numpy as np
import pytest
from published_helpers import expect, expect_figure

from workshop_utils import published
from workshop_utils import scaling as sc

GOPHER_BUDGET = published.value("scaling", "gopher_budget")  # FLOPs, Chinchilla Fig. 2 caption
LAWS = {"rounded": sc.CHINCHILLA_ROUNDED, "tex": sc.CHINCHILLA_TEX, "epoch": sc.EPOCH_REFIT}
TABLE3 = {row["params"]: row for row in sc.table3_check()}


def test_laws_and_table3_are_the_published_ones():
    """The package's constants and Table 3 are read from data/published/scaling.json, not typed in code."""
    for name, law in (("chinchilla_rounded", sc.CHINCHILLA_ROUNDED), ("chinchilla_tex", sc.CHINCHILLA_TEX),
                      ("epoch_refit", sc.EPOCH_REFIT)):  # fmt: skip
        consts = {k: f.value for k, f in published.group("scaling", name).items()}
        assert (law.E, law.A, law.B, law.alpha, law.beta) == tuple(
            consts[k] for k in ("E", "A", "B", "alpha", "beta")
        )
    t3 = published.group("scaling", "chinchilla_table3")
    for label, n, c_str, d_str in sc.CHINCHILLA_TABLE3:
        assert (n, float(c_str), float(d_str)) == tuple(
            t3[f"{label}/{k}"].value for k in ("params", "flops", "tokens")
        )


def test_table3_rounding_bound_is_the_figures_tolerance():
    """`table3_check`'s 'rounding allows' combines the FLOPs and tokens tolerances of the published rows."""
    t3 = published.group("scaling", "chinchilla_table3")
    for label, row in TABLE3.items():
        tc, td = t3[f"{label}/flops"].tolerance.rel, t3[f"{label}/tokens"].tolerance.rel
        assert row["rounding allows"] == pytest.approx((1 + tc) * (1 + td) - 1, rel=1e-12)


@pytest.mark.parametrize("label", [k for k in TABLE3 if k != "67B"])
def test_table3_flops_are_6nd_within_rounding(label):
    """Chinchilla Table 3: 6ND reproduces every FLOPs entry within what the printed digits allow."""
    row = TABLE3[label]
    assert row["consistent"], (
        f"{label}: 6ND/C = {row['6ND / FLOPs']:.4f}, rounding allows +-{row['rounding allows']:.4f}"
    )


def test_table3_67b_row_is_inconsistent_beyond_rounding():
    """Gotcha 3 (reference figures §11): the 67B row's 6ND is 4.7 % above its FLOPs.

    Its FLOPs are Gopher's budget exactly (Gopher units = 1); 6ND = C would need 1.433T tokens, which
    prints as 1.4T, not the 1.5T in the table. No values that round to the printed ones satisfy 6ND = C,
    so the test asserts the inconsistency (ratio outside the rounding bound) and its published size.
    """
    row = TABLE3["67B"]
    expect("scaling", "gopher_budget", row["FLOPs (printed)"])
    assert not row["consistent"]
    expect("scaling", "table3_67b/ratio", row["6ND / FLOPs"])
    expect("scaling", "table3_67b/implied_tokens", row["tokens if 6ND = C"])
    assert round(row["tokens if 6ND = C"] / 1e12, 1) == 1.4  # what the table would print if 6ND = C held


def test_twenty_tokens_per_param_rule():
    """The '~20 tokens per parameter' rule: D/N of Table 3 spans 20.0-21.6 once the 67B row uses 6ND = C."""
    ratios = [sc.tokens_per_param(n, TABLE3[label]["tokens if 6ND = C"] if label == "67B" else float(d))
              for label, n, _, d in sc.CHINCHILLA_TABLE3]  # fmt: skip
    expect("scaling", "table3_tokens_per_param/min", min(ratios))
    expect("scaling", "table3_tokens_per_param/max", max(ratios))
    # and D is proportional to N: the exponent of a power law D = k N^p is 1 within 1 %
    sizes = [n for _, n, _, _ in sc.CHINCHILLA_TABLE3]
    fit = sc.fit_power_law(sizes, [n * q for n, q in zip(sizes, ratios)])
    assert fit.exponent == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("name", LAWS)
def test_frontier_at_gopher_budget(name):
    """Approach 3 at Gopher's budget: rounded constants give 32B, TeX precision 40B (the paper's '40B'), Epoch 72B."""
    law, derived = LAWS[name], published.group("scaling", "frontier")
    got = {
        "a": law.a,
        "G": law.G,
        "n_opt": law.n_opt(GOPHER_BUDGET),
        "tokens_per_param": law.d_opt(GOPHER_BUDGET) / law.n_opt(GOPHER_BUDGET),
        "loss_chinchilla": law.loss(*_size("Chinchilla")),
        "loss_gopher": law.loss(*_size("Gopher")),
    }
    for item, value in got.items():
        expect_figure(derived[f"{name}/{item}"], value)
    assert got["loss_chinchilla"] < got["loss_gopher"]  # Chinchilla beats Gopher under every law


def _size(model: str) -> tuple[float, float]:
    """(parameters, tokens) of one of REAL_MODELS."""
    m = next(m for m in sc.REAL_MODELS if m.name == model)
    return m.params, m.tokens


def test_paper_40b_needs_tex_precision():
    """Fig. 4 caption: 'projected ... to be 40B'. Only the TeX-precision constants agree at its 2 digits."""
    paper = published.figure("scaling", "chinchilla_n_opt_gopher_budget")
    assert paper.agrees(sc.CHINCHILLA_TEX.n_opt(GOPHER_BUDGET)), paper.describe(
        sc.CHINCHILLA_TEX.n_opt(GOPHER_BUDGET)
    )
    assert not paper.agrees(sc.CHINCHILLA_ROUNDED.n_opt(GOPHER_BUDGET))  # 32B with the printed constants


def test_table2_approach3_exponent():
    """Table 2, Approach 3: a = 0.46, b = 0.54 (two decimals): the TeX-precision constants give them."""
    expect("scaling", "chinchilla_table2/approach3_a", sc.CHINCHILLA_TEX.a)
    expect("scaling", "chinchilla_table2/approach3_b", sc.CHINCHILLA_TEX.b)


def test_chinchilla_and_gopher_compute():
    """6ND: Chinchilla 5.88e23, Gopher 5.04e23 (derived), both 'the same compute budget' as Gopher's 5.76e23."""
    chinchilla, gopher = (sc.training_flops(*_size(m)) for m in ("Chinchilla", "Gopher"))
    expect("scaling", "chinchilla_6nd", chinchilla)
    expect("scaling", "gopher_6nd", gopher)
    for c in (chinchilla, gopher):
        expect("scaling", "chinchilla_gopher_same_budget", c)


def test_kaplan_numbers():
    """Kaplan §1.2 and Chinchilla §1: L(N) values, 'loss x 0.95 per doubling', '10x compute -> 5.5x model, 1.8x tokens'."""
    for n, fig in published.group("scaling", "kaplan_loss").items():
        expect_figure(fig, sc.KAPLAN.loss_n(float(n)))
    expect("scaling", "kaplan_doubling_factor", sc.KAPLAN.loss_n(2e9) / sc.KAPLAN.loss_n(1e9))
    params_x, tokens_x = sc.KAPLAN.allocation(10)
    expect("scaling", "kaplan_allocation/params", params_x)
    expect("scaling", "kaplan_allocation/tokens", tokens_x)


def test_most_older_models_were_undertrained():
    """GPT-3, Gopher, MT-NLG: several times more parameters than compute-optimal under all three laws."""
    for law in sc.LAWS:
        for m in sc.REAL_MODELS:
            ratio = sc.size_vs_optimal(law, m.params, m.tokens)
            if m.name in ("GPT-3", "Gopher", "MT-NLG"):
                assert ratio > 3, (law.name, m.name, ratio)
            if m.name in ("Llama-2 7B", "Llama-3 8B"):  # newer small models train far past the frontier
                assert ratio < 0.6, (law.name, m.name, ratio)


def test_llama3_8b_overtraining_pays_back_at_scale():
    """Inference saving of Llama-3-8B (15T tokens) vs the compute-optimal model of equal predicted loss.

    Under the TeX-precision law the equal-loss optimal model has ~30B parameters; the over-training costs
    extra training FLOPs that are recovered after about 1e13 served tokens (2N FLOPs per token).
    """
    t = sc.overtraining_tradeoff(sc.CHINCHILLA_TEX, *_size("Llama-3 8B"), serving_tokens=1e14)
    assert 20e9 < t.optimal_params < 40e9
    assert 1e12 < t.breakeven_tokens < 1e14
    assert t.net_flops_saved > 0
    assert np.isfinite(t.net_flops_saved)
