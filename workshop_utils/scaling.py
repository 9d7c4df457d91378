"""Scaling laws (module 06): compute counts, Chinchilla's loss law and frontier, and the fits that find them.

Read top to bottom:
1. Compute: C ~ 6ND (training), the count with the attention term, tokens per parameter, 2N inference.
2. Laws: Chinchilla's L(N, D) = E + A/N^alpha + B/D^beta in three sets of constants (rounded as printed,
   TeX precision, Epoch AI's refit), its closed-form compute-optimal frontier, and Kaplan's exponents.
3. Fits: a power law in log-log, the IsoFLOP fit (Hoffmann et al.'s Approach 2) with a bootstrap, and
   the parametric fit (Approach 3: Huber loss on log-loss, L-BFGS from a grid of starts).

Sources: Hoffmann et al. arXiv:2203.15556; Besiroglu et al. arXiv:2404.10102; Kaplan et al. arXiv:2001.08361.
Their figures (constants, Table 3, the models' sizes and tokens) live in data/published/scaling.json and
pretraining.json, read through `published`; this module holds the formulas.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from .published import figure, group, rounding_bound

ArrayLike = float | Sequence[float] | np.ndarray

# ---------------------------------------------------------------------------------------------
# 1. Compute
# ---------------------------------------------------------------------------------------------


def _positive(name: str, value: ArrayLike) -> np.ndarray:
    """`value` as a float array; raise naming `name` unless every entry is finite and > 0."""
    arr = np.asarray(value, dtype=float)
    if arr.size == 0:
        raise ValueError(f"{name} is empty; give at least one positive number")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf; every value must be a finite number > 0")
    if np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0 (got min {arr.min():g}); valid: finite numbers > 0")
    return arr


def _out(arr: np.ndarray) -> float | np.ndarray:
    """A plain float for scalar results, else the array."""
    return float(arr) if arr.ndim == 0 else arr


def training_flops(n_params: ArrayLike, n_tokens: ArrayLike) -> float | np.ndarray:
    """C ~ 6ND: 2 FLOPs per parameter per token forward, 4 backward (Kaplan §2.1, Chinchilla App. F)."""
    return _out(6.0 * _positive("n_params", n_params) * _positive("n_tokens", n_tokens))


def training_flops_with_attention(
    n_params: ArrayLike, n_tokens: ArrayLike, n_layers: int, d_attn: int, context: int
) -> float | np.ndarray:
    """C = D (6N + 12 L d_attn T): adds the attention scores QK^T and AV (PaLM App. B, nanoGPT's MFU)."""
    for name, v in (("n_layers", n_layers), ("d_attn", d_attn), ("context", context)):
        _positive(name, v)
    per_token = 6.0 * _positive("n_params", n_params) + 12.0 * n_layers * d_attn * context
    return _out(per_token * _positive("n_tokens", n_tokens))


def inference_flops(n_params: ArrayLike, n_tokens: ArrayLike) -> float | np.ndarray:
    """Forward pass only: ~2N FLOPs per generated or scored token."""
    return _out(2.0 * _positive("n_params", n_params) * _positive("n_tokens", n_tokens))


def tokens_per_param(n_params: ArrayLike, n_tokens: ArrayLike) -> float | np.ndarray:
    """D / N: Chinchilla-optimal training lands near 20."""
    return _out(_positive("n_tokens", n_tokens) / _positive("n_params", n_params))


def tokens_for_budget(compute: ArrayLike, n_params: ArrayLike) -> float | np.ndarray:
    """D = C / (6N): how many tokens a model of N parameters sees on budget C."""
    return _out(_positive("compute", compute) / (6.0 * _positive("n_params", n_params)))


# ---------------------------------------------------------------------------------------------
# 2. Laws
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChinchillaLaw:
    """L(N, D) = E + A / N^alpha + B / D^beta, and its compute-optimal frontier under C = 6ND."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    name: str = ""

    def loss(self, n_params: ArrayLike, n_tokens: ArrayLike) -> float | np.ndarray:
        """Predicted final loss (nats/token on the law's own data) of N params trained on D tokens."""
        n, d = _positive("n_params", n_params), _positive("n_tokens", n_tokens)
        return _out(self.E + self.A / n**self.alpha + self.B / d**self.beta)

    @property
    def a(self) -> float:
        """Exponent of N_opt proportional to C^a: beta / (alpha + beta)."""
        return self.beta / (self.alpha + self.beta)

    @property
    def b(self) -> float:
        """Exponent of D_opt proportional to C^b: alpha / (alpha + beta)."""
        return self.alpha / (self.alpha + self.beta)

    @property
    def G(self) -> float:
        """G = (alpha A / (beta B))^(1 / (alpha + beta)) (Chinchilla §3.3)."""
        return (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / (self.alpha + self.beta))

    def n_opt(self, compute: ArrayLike) -> float | np.ndarray:
        """N_opt(C) = G (C/6)^a: set dL/dN = 0 along D = C/(6N)."""
        return _out(self.G * (_positive("compute", compute) / 6.0) ** self.a)

    def d_opt(self, compute: ArrayLike) -> float | np.ndarray:
        """D_opt(C) = G^-1 (C/6)^b, so that 6 N_opt D_opt = C exactly."""
        return _out((_positive("compute", compute) / 6.0) ** self.b / self.G)

    def loss_opt(self, compute: ArrayLike) -> float | np.ndarray:
        """The lowest loss reachable with budget C (the frontier's loss)."""
        return self.loss(self.n_opt(compute), self.d_opt(compute))

    def compute_for_loss(self, target: float) -> float:
        """The smallest budget C whose compute-optimal model reaches `target` loss (bisection in log C)."""
        if not np.isfinite(target) or target <= self.E:
            raise ValueError(f"target loss must be a finite number > E = {self.E} (got {target})")
        lo, hi = 1.0, 1e40
        for _ in range(200):
            mid = np.sqrt(lo * hi)
            lo, hi = (mid, hi) if self.loss_opt(mid) > target else (lo, mid)
        return float(np.sqrt(lo * hi))


def published_law(name: str, label: str) -> ChinchillaLaw:
    """The law whose constants E, A, B, alpha, beta are group `name` of data/published/scaling.json."""
    c = {k: f.value for k, f in group("scaling", name).items()}
    return ChinchillaLaw(c["E"], c["A"], c["B"], c["alpha"], c["beta"], label)


# Hoffmann et al. App. D.2, as printed: "E + A/N^0.34 + B/D^0.28 with E = 1.69, A = 406.4, B = 410.7".
CHINCHILLA_ROUNDED = published_law("chinchilla_rounded", "Chinchilla (printed, rounded)")
# The same fit at the precision of the paper's TeX source (quoted by Besiroglu et al. 2024).
CHINCHILLA_TEX = published_law("chinchilla_tex", "Chinchilla (TeX precision)")
# Epoch AI's refit of Hoffmann's own Fig. 4 data (Besiroglu et al., arXiv:2404.10102).
EPOCH_REFIT = published_law("epoch_refit", "Epoch AI refit")
LAWS = (CHINCHILLA_ROUNDED, CHINCHILLA_TEX, EPOCH_REFIT)


@dataclass(frozen=True)
class KaplanLaw:
    """Kaplan et al. 2020: L(N) = (N_c/N)^alpha_N, L(D) = (D_c/D)^alpha_D, N_opt ~ C^a, D_opt ~ C^b (§1.2-1.3)."""

    alpha_N: float
    N_c: float  # non-embedding parameters
    alpha_D: float
    D_c: float  # tokens
    a: float  # N_opt proportional to C^a
    b: float  # D_opt proportional to C^b

    def loss_n(self, n_params: ArrayLike) -> float | np.ndarray:
        """Loss of a model of N non-embedding parameters trained to convergence."""
        return _out((self.N_c / _positive("n_params", n_params)) ** self.alpha_N)

    def allocation(self, compute_factor: float) -> tuple[float, float]:
        """(model-size factor, token factor) when compute grows by `compute_factor`: (k^a, k^b)."""
        k = float(_positive("compute_factor", compute_factor))
        return k**self.a, k**self.b


KAPLAN = KaplanLaw(**{k: f.value for k, f in group("scaling", "kaplan").items()})
# Chinchilla's Approach 2 (IsoFLOP profiles) exponent with its 10-90 % interval, Table 2: what our sweep
# is compared with in module 06.
APPROACH2_A = tuple(
    figure("scaling", key).value
    for key in (
        "chinchilla_table2/approach2_a",
        "chinchilla_table2/approach2_a_p10",
        "chinchilla_table2/approach2_a_p90",
    )
)  # (a, 10th percentile, 90th percentile)


def kaplan_param_count(n_layers: int, d_model: int) -> float:
    """Kaplan §2.1: N ~ 12 n_layer d_model^2 non-embedding parameters (d_attn = d_ff/4 = d_model, no biases)."""
    return 12.0 * float(_positive("n_layers", n_layers)) * float(_positive("d_model", d_model)) ** 2


def _table3() -> tuple[tuple[str, float, str, str], ...]:
    """Chinchilla Table 3 rows from data/published/scaling.json: (label, parameters, printed FLOPs, printed tokens)."""
    t3 = group("scaling", "chinchilla_table3")
    labels = dict.fromkeys(item.split("/")[0] for item in t3)  # row labels in file order
    return tuple(
        (lb, t3[f"{lb}/params"].value, t3[f"{lb}/flops"].printed, t3[f"{lb}/tokens"].printed) for lb in labels
    )


# Chinchilla Table 3 (Approach 1 projections) as printed: parameters (the chosen inputs), FLOPs, tokens.
CHINCHILLA_TABLE3 = _table3()


def table3_check() -> list[dict]:
    """Recompute Table 3 with C = 6ND: ratio to the printed FLOPs, the bound rounding allows, tokens/param."""
    rows = []
    for label, n, c_str, d_str in CHINCHILLA_TABLE3:
        c, d = float(c_str), float(d_str)
        bound = (1 + rounding_bound(c_str)) * (1 + rounding_bound(d_str)) - 1
        ratio = training_flops(n, d) / c
        rows.append(
            {
                "params": label,
                "FLOPs (printed)": c,
                "tokens (printed)": d,
                "6ND": training_flops(n, d),
                "6ND / FLOPs": ratio,
                "rounding allows": bound,
                "consistent": bool(abs(ratio - 1) <= bound),
                "tokens/param": d / n,
                "tokens if 6ND = C": tokens_for_budget(c, n),
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------
# 2b. Real models against the frontier, and why newer ones train past it
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainedModel:
    """A published model: parameters, training tokens, and where the two numbers come from."""

    name: str
    params: float
    tokens: float
    source: str


def published_model(name: str, params: tuple[str, str], tokens: tuple[str, str]) -> TrainedModel:
    """A model from two published figures, each named by (file, key) in data/published."""
    n, d = figure(*params), figure(*tokens)
    where = f"{n.location} (parameters); {d.location} (tokens)"
    source = f"{n.source}: {where}" if n.source == d.source else f"{n.cite()}; {d.cite()}"
    return TrainedModel(name, float(n.value), float(d.value), source)


_PT, _SC, _PL = "pretraining", "scaling", "planning"
REAL_MODELS = (  # each figure's home: data/published/<file>.json
    published_model("GPT-3", (_PT, "gpt3_params"), (_PT, "gpt3_tokens")),
    published_model("Gopher", (_SC, "chinchilla_table1/Gopher/params"), (_SC, "chinchilla_table1/Gopher/tokens")),
    published_model("MT-NLG", (_SC, "chinchilla_table1/MT-NLG/params"), (_SC, "chinchilla_table1/MT-NLG/tokens")),
    published_model("Chinchilla", (_SC, "chinchilla_table1/Chinchilla/params"), (_SC, "chinchilla_table1/Chinchilla/tokens")),
    published_model("LLaMA-1 7B", (_PL, "alpaca_params"), (_PL, "llama1_7b_tokens")),  # Alpaca's base is LLaMA-1 7B
    published_model("LLaMA-1 13B", (_PT, "llama1_13b_params"), (_PT, "llama1_13b_tokens")),
    published_model("LLaMA-1 33B", (_PT, "llama1_33b_params"), (_PT, "llama1_33b_tokens")),
    published_model("LLaMA-1 65B", (_PT, "llama1_65b_params"), (_PL, "llama1_65b_tokens")),
    published_model("Llama-2 7B", (_PT, "llama2_7b_params"), (_PT, "llama2_tokens")),
    published_model("Llama-2 13B", (_PT, "llama2_13b_params"), (_PT, "llama2_tokens")),
    published_model("Llama-2 70B", (_PT, "llama2_70b_params"), (_PT, "llama2_tokens")),
    published_model("Llama-3 8B", (_PT, "llama3_8b_params"), (_PT, "llama3_tokens")),
    published_model("Llama-3 70B", (_PT, "llama3_70b_params"), (_PT, "llama3_tokens")),
    published_model("Llama-3.1 405B", (_PT, "llama31_405b_params"), (_PT, "llama31_405b_tokens")),
    published_model("StarCoderBase", (_PT, "starcoder_params"), (_PT, "starcoder_tokens")),
)  # fmt: skip


def size_vs_optimal(law: ChinchillaLaw, n_params: ArrayLike, n_tokens: ArrayLike) -> float | np.ndarray:
    """N / N_opt(6ND): > 1 means more parameters (fewer tokens) than compute-optimal, i.e. undertrained."""
    return _out(np.asarray(n_params, dtype=float) / law.n_opt(training_flops(n_params, n_tokens)))


@dataclass(frozen=True)
class OvertrainingTradeoff:
    """A small model trained long vs the compute-optimal model that reaches the same predicted loss."""

    loss: float  # predicted loss both models reach
    small_params: float
    small_tokens: float
    optimal_params: float
    optimal_tokens: float
    extra_training_flops: float  # what over-training costs up front
    saved_flops_per_token: float  # 2 (N_opt - N_small) at inference
    breakeven_tokens: float  # served tokens after which the small model is cheaper in total
    serving_tokens: float
    net_flops_saved: float  # at `serving_tokens`: inference saved minus the extra training


def overtraining_tradeoff(
    law: ChinchillaLaw, n_params: float, n_tokens: float, serving_tokens: float
) -> OvertrainingTradeoff:
    """Compare (N, D) with the compute-optimal model of equal predicted loss, over a serving volume."""
    _positive("serving_tokens", serving_tokens)
    target = float(law.loss(n_params, n_tokens))
    c_opt = law.compute_for_loss(target)
    n_opt, d_opt = float(law.n_opt(c_opt)), float(law.d_opt(c_opt))
    extra = float(training_flops(n_params, n_tokens)) - c_opt
    saved = 2.0 * (n_opt - n_params)
    breakeven = extra / saved if saved > 0 else float("inf")
    net = saved * serving_tokens - extra
    return OvertrainingTradeoff(
        target, n_params, n_tokens, n_opt, d_opt, extra, saved, breakeven, serving_tokens, net
    )


# ---------------------------------------------------------------------------------------------
# 3. Fits
# ---------------------------------------------------------------------------------------------


def _check_points(n_points: int, n_params: int, what: str) -> None:
    """A fit with fewer points than parameters is underdetermined: refuse it."""
    if n_points < n_params:
        raise ValueError(
            f"{what} has {n_params} parameters and needs at least {n_params} points; got {n_points}"
        )


@dataclass(frozen=True)
class PowerLaw:
    """y = coef * x^exponent, fitted by least squares in log-log space."""

    coef: float
    exponent: float

    def __call__(self, x: ArrayLike) -> float | np.ndarray:
        """Evaluate at x > 0."""
        return _out(self.coef * _positive("x", x) ** self.exponent)


def fit_power_law(x: ArrayLike, y: ArrayLike) -> PowerLaw:
    """Fit y = k x^p: a straight line log y = log k + p log x (needs 2+ points with distinct x)."""
    x, y = _positive("x", x).ravel(), _positive("y", y).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    _check_points(x.size, 2, "a power law")
    if np.ptp(np.log(x)) == 0:
        raise ValueError("x must contain at least two distinct values to fit an exponent")
    p, log_k = np.polyfit(np.log(x), np.log(y), 1)
    return PowerLaw(coef=float(np.exp(log_k)), exponent=float(p))


def _records(
    params: ArrayLike, compute: ArrayLike, loss: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate three parallel arrays of (parameters, compute budget, final loss)."""
    n, c = _positive("params", params).ravel(), _positive("compute", compute).ravel()
    loss = np.asarray(loss, dtype=float).ravel()
    if np.any(~np.isfinite(loss)):
        bad = np.flatnonzero(~np.isfinite(loss)).tolist()
        raise ValueError(f"loss contains NaN or inf at positions {bad}; a diverged run must be removed")
    if not (n.size == c.size == loss.size):
        raise ValueError(
            f"params, compute, loss must have equal lengths, got {n.size}, {c.size}, {loss.size}"
        )
    return n, c, loss


@dataclass(frozen=True)
class IsoFLOPProfile:
    """One compute budget: the parabola loss = p0 (log N)^2 + p1 log N + p2 and its minimum."""

    compute: float
    params: np.ndarray  # (k,) model sizes trained at this budget
    losses: np.ndarray  # (k,) their final losses
    coeffs: tuple[float, float, float]
    n_opt: float  # argmin of the parabola
    loss_min: float
    interior: bool  # the minimum lies inside the sizes that were trained (else it is an extrapolation)


@dataclass(frozen=True)
class IsoFLOPFit:
    """Approach 2: minima per budget, then N_opt = k C^a and D_opt = k' C^b across budgets."""

    profiles: list[IsoFLOPProfile]
    n_law: PowerLaw
    d_law: PowerLaw
    used: list[float] = field(default_factory=list)  # budgets whose minimum entered the power laws

    @property
    def a(self) -> float:
        """Fitted exponent of N_opt proportional to C^a."""
        return self.n_law.exponent

    @property
    def b(self) -> float:
        """Fitted exponent of D_opt proportional to C^b."""
        return self.d_law.exponent


def isoflop_profile(compute: float, params: np.ndarray, losses: np.ndarray) -> IsoFLOPProfile:
    """Fit a parabola in log N to one budget's final losses and find its minimum."""
    _check_points(params.size, 3, f"the IsoFLOP parabola at C={compute:.3g}")
    logn = np.log(params)
    if np.unique(logn).size < 3:
        raise ValueError(f"budget C={compute:.3g} needs at least 3 distinct model sizes for a parabola")
    p0, p1, p2 = np.polyfit(logn, losses, 2)
    if p0 <= 0:  # opens downwards: no minimum, the sizes do not bracket the optimum
        return IsoFLOPProfile(compute, params, losses, (p0, p1, p2), float("nan"), float("nan"), False)
    x_min = -p1 / (2 * p0)
    interior = bool(logn.min() <= x_min <= logn.max())
    loss_min = p2 - p1**2 / (4 * p0)
    with np.errstate(over="ignore"):  # a nearly flat parabola puts its vertex at e^(huge): inf, not usable
        n_opt = float(np.exp(x_min))
    return IsoFLOPProfile(compute, params, losses, (p0, p1, p2), n_opt, loss_min, interior)


def fit_isoflop(
    params: ArrayLike, compute: ArrayLike, loss: ArrayLike, require_interior: bool = True
) -> IsoFLOPFit:
    """Approach 2 from records (N, C, final loss): per-budget parabola minima, then power laws in C."""
    n, c, loss = _records(params, compute, loss)
    budgets = np.unique(c)
    profiles = [isoflop_profile(float(b), n[c == b], loss[c == b]) for b in budgets]
    good = [p for p in profiles if np.isfinite(p.n_opt) and (p.interior or not require_interior)]
    if len(good) < 2:
        raise ValueError(
            f"only {len(good)} of {len(profiles)} budgets have a usable minimum (need 2 to fit N_opt ~ C^a); "
            "widen the range of model sizes so each budget's losses curve upwards on both sides"
        )
    cs = np.array([p.compute for p in good])
    n_opt = np.array([p.n_opt for p in good])
    return IsoFLOPFit(profiles, fit_power_law(cs, n_opt), fit_power_law(cs, cs / (6 * n_opt)), list(cs))


def bootstrap_isoflop(
    params: ArrayLike, compute: ArrayLike, loss: ArrayLike, n_boot: int = 1000, seed: int = 0
) -> np.ndarray:
    """Residual bootstrap of the exponent a: resample parabola residuals, refit everything; returns (n_boot',).

    Residuals are pooled over budgets and inflated by sqrt(n / (n - 3k)) for the k parabolas' degrees of
    freedom. Resamples whose minima fall outside the trained sizes are dropped, and their count is
    not hidden: the caller sees fewer than n_boot values.
    """
    n, c, loss = _records(params, compute, loss)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    base = fit_isoflop(n, c, loss)
    fitted, resid = np.empty_like(loss), np.empty_like(loss)
    for p in base.profiles:
        mask = c == p.compute
        fitted[mask] = np.polyval(p.coeffs, np.log(n[mask]))
        resid[mask] = loss[mask] - fitted[mask]
    dof = loss.size - 3 * len(base.profiles)
    if dof <= 0:
        raise ValueError("no residual degrees of freedom: train at least 4 sizes per budget to bootstrap")
    resid = (resid - resid.mean()) * np.sqrt(loss.size / dof)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_boot):
        try:
            out.append(fit_isoflop(n, c, fitted + rng.choice(resid, size=resid.size)).a)
        except ValueError:  # a resample without two bracketed minima: no exponent
            continue
    return np.array(out)


# --- Approach 3: the parametric fit -----------------------------------------------------------

PAPER_GRID = {  # Hoffmann et al. §3.3 / App. D.2: 5 x 5 x 5 x 6 x 6 = 4500 starts
    "alpha": np.arange(0.0, 2.01, 0.5),
    "beta": np.arange(0.0, 2.01, 0.5),
    "e": np.arange(-1.0, 1.01, 0.5),
    "a": np.arange(0.0, 25.1, 5.0),
    "b": np.arange(0.0, 25.1, 5.0),
}
COARSE_GRID = {  # every other value of the paper's grid: 3^5 = 243 starts (~8 s on a quiet 2-core CPU)
    "alpha": np.array([0.0, 1.0, 2.0]),
    "beta": np.array([0.0, 1.0, 2.0]),
    "e": np.array([-1.0, 0.0, 1.0]),
    "a": np.array([0.0, 10.0, 20.0]),
    "b": np.array([0.0, 10.0, 20.0]),
}
SMALL_GRID = {  # a 2^5 = 32-start subset of the paper's grid (~1 s): the ci profile and the unit tests
    "alpha": np.array([0.5, 1.0]),
    "beta": np.array([0.5, 1.0]),
    "e": np.array([-0.5, 0.5]),
    "a": np.array([5.0, 15.0]),
    "b": np.array([5.0, 15.0]),
}
GRIDS = {"paper": PAPER_GRID, "coarse": COARSE_GRID, "small": SMALL_GRID}


def _huber_objective(theta: np.ndarray, logn: np.ndarray, logd: np.ndarray, logl: np.ndarray, delta: float):
    """Sum of Huber(log L_hat - log L) and its gradient; theta = (a, b, e, alpha, beta), A = e^a, ..."""
    a, b, e, alpha, beta = theta
    terms = np.stack([a - alpha * logn, b - beta * logd, np.full_like(logn, e)])  # (3, n)
    top = terms.max(axis=0)  # (n,) log-sum-exp by hand: scipy's is ~10x slower on small arrays
    expd = np.exp(terms - top)  # (3, n)
    total = expd.sum(axis=0)  # (n,)
    pred = top + np.log(total)  # (n,) log(A/N^alpha + B/D^beta + E)
    r = pred - logl
    absr = np.abs(r)
    value = np.where(absr <= delta, 0.5 * r**2, delta * (absr - 0.5 * delta)).sum()
    g = np.clip(r, -delta, delta)  # dHuber/dr
    w = expd / total  # (3, n) softmax = d pred / d terms
    grad = np.array(
        [
            (g * w[0]).sum(),
            (g * w[1]).sum(),
            (g * w[2]).sum(),
            -(g * w[0] * logn).sum(),
            -(g * w[1] * logd).sum(),
        ]
    )
    return value, grad


@dataclass(frozen=True)
class ParametricFit:
    """Approach 3's result: the fitted law, the objective value and how many starts were tried."""

    law: ChinchillaLaw
    objective: float
    n_starts: int


def fit_parametric(
    params: ArrayLike,
    tokens: ArrayLike,
    loss: ArrayLike,
    grid: dict[str, np.ndarray] | str = "paper",
    delta: float = 1e-3,
) -> ParametricFit:
    """Approach 3: minimise Huber_delta(log L_hat(N, D) - log L) with L-BFGS from every grid start; keep the best."""
    n, d = _positive("params", params).ravel(), _positive("tokens", tokens).ravel()
    loss = _positive("loss", loss).ravel()
    if not (n.size == d.size == loss.size):
        raise ValueError(f"params, tokens, loss must have equal lengths, got {n.size}, {d.size}, {loss.size}")
    _check_points(n.size, 5, "the parametric law E + A/N^alpha + B/D^beta")
    if isinstance(grid, str):
        if grid not in GRIDS:
            raise ValueError(f"grid must be one of {sorted(GRIDS)} or a dict of start values, got {grid!r}")
        grid = GRIDS[grid]
    keys = ("a", "b", "e", "alpha", "beta")
    if set(grid) != set(keys):
        raise ValueError(f"a custom grid needs exactly the keys {keys}, got {sorted(grid)}")
    if delta <= 0:
        raise ValueError(f"delta must be > 0, got {delta}")
    logn, logd, logl = np.log(n), np.log(d), np.log(loss)
    best = None
    starts = list(itertools.product(*(grid[k] for k in keys)))
    for start in starts:
        res = minimize(
            _huber_objective,
            np.array(start, dtype=float),
            args=(logn, logd, logl, delta),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-12},
        )
        if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
            best = res
    a, b, e, alpha, beta = best.x
    law = ChinchillaLaw(
        float(np.exp(e)), float(np.exp(a)), float(np.exp(b)), float(alpha), float(beta), "fit"
    )
    return ParametricFit(law, float(best.fun), len(starts))
