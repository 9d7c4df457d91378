"""Module 06's exercises: Llama-3 70B against Epoch's law, which N to fit, the cheapest model serving included."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize

from .. import published
from .. import scaling as sc
from . import Check

SERVED = (1e12, 1e13, 1e14)  # exercise 3's lifetime served tokens V
N_RANGE = (10e9, 200e9)  # exercise 3's model sizes


def solution_1() -> dict:
    """Compute-optimal N and D for Llama-3 70B's training compute under Epoch's refit, and Meta's overshoot."""
    c70 = sc.training_flops(70e9, 15e12)
    n70, d70 = sc.EPOCH_REFIT.n_opt(c70), sc.EPOCH_REFIT.d_opt(c70)
    print(
        f"C = {c70:.3g}: Epoch-optimal N = {n70 / 1e9:.0f}B, D = {d70 / 1e12:.2f}T, {d70 / n70:.1f} tokens/param"
    )
    times = (15e12 / 70e9) / (d70 / n70)
    print(f"Llama-3 70B: {15e12 / 70e9:.0f} tokens/param = {times:.1f}x the compute-optimal ratio")
    assert n70 > 70e9  # a bigger model would have been compute-optimal: Llama-3 70B is over-trained
    return {"n_opt": n70, "d_opt": d70, "tokens_per_param": d70 / n70, "times_more": times}


def solution_2(sweep: pd.DataFrame, boot_interval: tuple[float, float]) -> dict:
    """IsoFLOP exponent with non-embedding N, and leave-one-budget-out refits against the bootstrap interval."""
    a_all = sc.fit_isoflop(sweep["params"], sweep["budget"], sweep["loss"]).a
    a_ne = sc.fit_isoflop(
        sweep["non_embedding_params"], sweep["budget"], sweep["loss"], require_interior=False
    ).a
    print(f"a with all parameters: {a_all:.3f}; with non-embedding parameters: {a_ne:.3f}")
    loo = {}
    for b in sorted(sweep["budget"].unique()):
        sub = sweep[sweep["budget"] != b]
        try:
            loo[b] = sc.fit_isoflop(sub["params"], sub["budget"], sub["loss"]).a
            print(f"without C = {b:.2g}: a = {loo[b]:.3f}")
        except ValueError as e:  # fewer than two bracketed minima left
            print(f"without C = {b:.2g}: {e}")
    lo, hi = min(loo.values()), max(loo.values())
    print(
        f"leave-one-budget-out {lo:.3f}-{hi:.3f}; bootstrap 10-90 % {boot_interval[0]:.3f}-{boot_interval[1]:.3f}"
    )
    inside = boot_interval[0] <= lo and hi <= boot_interval[1]
    return {"a_all": a_all, "a_non_embedding": a_ne, "loo_range": (lo, hi), "loo_inside_bootstrap": inside}


def solution_3() -> dict:
    """For Chinchilla's own loss as the target: the N that minimises 6ND + 2NV for each served V."""
    law = sc.CHINCHILLA_TEX
    target = law.loss(70e9, 1.4e12)
    ns = np.geomspace(10e9, 200e9, 400)
    gap = target - law.E - law.A / ns**law.alpha  # what the data term may still contribute
    ds = np.where(gap > 0, (law.B / np.where(gap > 0, gap, 1.0)) ** (1 / law.beta), np.inf)
    best, tpp = {}, {}
    for v in (1e12, 1e13, 1e14):
        total = 6 * ns * ds + 2 * ns * v
        i = int(np.argmin(total))
        best[v], tpp[v] = float(ns[i]), float(ds[i] / ns[i])
        print(
            f"V = {v:.0e}: best N = {ns[i] / 1e9:.1f}B on {ds[i] / 1e12:.2f}T tokens ({tpp[v]:.0f} tokens/param)"
        )
    # The more a model serves, the smaller and longer-trained it should be.
    return {"best_n": best, "tokens_per_param": tpp}


# ---------------------------------------------------------------------------------------- the checks
def expected_1() -> dict:
    """Epoch's frontier at Llama-3 70B's compute, from the published size and token count."""
    n, d = (published.value("pretraining", k) for k in ("llama3_70b_params", "llama3_tokens"))
    c = sc.training_flops(n, d)
    n_opt, d_opt = sc.EPOCH_REFIT.n_opt(c), sc.EPOCH_REFIT.d_opt(c)
    ratio = sc.tokens_per_param(n_opt, d_opt)
    return {
        "n_opt": n_opt,
        "d_opt": d_opt,
        "tokens_per_param": ratio,
        "times_more": sc.tokens_per_param(n, d) / ratio,
    }


def _a(df: pd.DataFrame, col: str = "params", **kw) -> float:
    """The IsoFLOP exponent a fitted with N from column `col`."""
    return sc.fit_isoflop(df[col], df["budget"], df["loss"], **kw).a


def expected_2(sweep: pd.DataFrame, boot_interval: tuple[float, float]) -> dict:
    """The same fits; the leave-one-out refits over the budgets that still bracket two minima."""
    loo = []
    for b in np.unique(sweep["budget"]):
        try:
            loo.append(_a(sweep[sweep["budget"] != b]))
        except ValueError:
            continue
    lo, hi = min(loo), max(loo)
    return {
        "a_all": _a(sweep),
        "a_non_embedding": _a(sweep, "non_embedding_params", require_interior=False),
        "loo_range": (lo, hi),
        "loo_inside_bootstrap": bool(boot_interval[0] <= lo and hi <= boot_interval[1]),
    }


def _tokens_for(law: sc.ChinchillaLaw, n: float, target: float) -> float:
    """D such that law.loss(n, D) = target, found by root finding (inf when N alone cannot reach it)."""
    if law.loss(n, 1e30) >= target:
        return np.inf
    return float(
        np.exp(optimize.brentq(lambda logd: law.loss(n, np.exp(logd)) - target, np.log(1e6), np.log(1e30)))
    )


def expected_3() -> dict:
    """The continuous minimum over log N in the same range (scipy), D solved numerically for each N."""
    law = sc.CHINCHILLA_TEX
    target = law.loss(70e9, 1.4e12)
    best, tpp = {}, {}
    for v in SERVED:

        def lifetime(logn: float, v: float = v) -> float:
            """6ND + 2NV at N = exp(logn), D reaching the target."""
            n = np.exp(logn)
            return 6 * n * _tokens_for(law, n, target) + 2 * n * v

        res = optimize.minimize_scalar(
            lifetime, bounds=np.log(N_RANGE), method="bounded", options={"xatol": 1e-6}
        )
        n = float(np.exp(res.x))
        best[v], tpp[v] = n, _tokens_for(law, n, target) / n
    return {"best_n": best, "tokens_per_param": tpp}


CHECKS = {
    1: Check(
        expected_1,
        "a dict {'n_opt': params, 'd_opt': tokens, 'tokens_per_param': D/N, 'times_more': ...}",
        "1 % (two significant digits will do)",
        rtol=0.01,
    ),
    2: Check(
        expected_2,
        "a dict {'a_all': ..., 'a_non_embedding': ..., 'loo_range': (min, max), "
        "'loo_inside_bootstrap': bool}",
        "0.5 % (three decimals of a)",
        rtol=0.005,
    ),
    3: Check(
        expected_3,
        f"a dict {{'best_n': {{V: N}}, 'tokens_per_param': {{V: D/N}}}} for V in {SERVED}",
        "3 %: a grid of a few hundred sizes lands within a step of the exact minimum",
        rtol=0.03,
    ),
}
