"""Module 09's views of a plan: the table, the cost-of-ownership chart, a sensitivity sweep, the decision tree, a form."""

from __future__ import annotations

from dataclasses import fields, replace

from .calculators import Assumptions
from .inputs import EXAMPLE_PRICES, Prices, Scenario
from .options import LABELS, OPTIONS, Option, plan


def options_table(options: list[Option], months: int) -> list[dict]:
    """One row per option, for a DataFrame: fit, memory, GPU-hours, costs, data, risk, and the rule that excludes it."""
    return [{"option": o.label, "fits": {None: "n/a", True: "yes", False: "no"}[o.fits],
             "GB per GPU": o.memory_gb, "GPU-hours": o.gpu_hours, "wall days": o.wall_days,
             "one-off $": o.one_off, "serving GPUs": o.serving_gpus or "-", "monthly $": o.monthly,
             f"TCO {months} mo $": o.tco(months), "data needed": o.data_needed, "main risk": o.risk,
             "excluded by": o.excluded or "-"} for o in options]  # fmt: skip


def _sweep(values, variants, months: int, a: Assumptions | None):
    """[(value, choice, {option: TCO over `months`})] for each (scenario, prices) variant."""
    out = []
    for v, (s, p) in zip(values, variants):
        options, rec = plan(s, p, a)
        out.append((v, rec.choice, {o.key: o.tco(months) for o in options if not o.excluded}))
    return out


def sensitivity(
    s: Scenario, name: str, values, prices: Prices = EXAMPLE_PRICES, a: Assumptions | None = None
):
    """[(value, choice, {option: TCO over the horizon})] as one scenario field sweeps `values`."""
    if name not in {f.name for f in fields(Scenario)}:
        raise ValueError(f"{name!r} is not a Scenario field; valid: {[f.name for f in fields(Scenario)]}")
    return _sweep(values, [(replace(s, **{name: v}), prices) for v in values], s.months, a)


def price_sensitivity(s: Scenario, gpu_prices, prices: Prices = EXAMPLE_PRICES, a: Assumptions | None = None):
    """The same sweep over the GPU-hour price of the scenario's GPU type."""
    variants = [(s, replace(prices, gpu_hour={**prices.gpu_hour, s.gpu: p})) for p in gpu_prices]
    return _sweep(gpu_prices, variants, s.months, a)


def flips(sweep) -> list[tuple]:
    """(value before, value after, choice before, choice after) wherever the recommended option changes."""
    return [(v0, v1, c0, c1) for (v0, c0, _), (v1, c1, _) in zip(sweep, sweep[1:]) if c0 != c1]


def plot_tco(options: list[Option], months: int = 24, ax=None, title: str = ""):
    """Total cost of ownership over 1..months for every option no rule excludes (log scale)."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    xs = list(range(1, months + 1))
    for o in options:
        if not o.excluded:
            ax.plot(xs, [o.tco(m) for m in xs], label=o.label, color=f"C{OPTIONS.index(o.key)}")
    ax.set(xlabel="months", ylabel="USD (example prices)", yscale="log", title=title)
    ax.legend(fontsize=7)
    return ax


def plot_sensitivity(sweep, xlabel: str, ax=None, logx: bool = True, title: str = ""):
    """TCO per option along a sweep, with the recommended option marked at each point."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    xs = [v for v, _, _ in sweep]
    for key in OPTIONS:
        ys = [t.get(key) for _, _, t in sweep]
        if any(y is not None for y in ys):
            ax.plot(xs, [y if y is not None else float("nan") for y in ys], label=LABELS[key],
                    color=f"C{OPTIONS.index(key)}")  # fmt: skip
    for v, choice, t in sweep:
        if choice:
            ax.scatter([v], [t[choice]], color="k", s=12, zorder=3)
    ax.set(xlabel=xlabel, ylabel="TCO, USD (example prices)", yscale="log", title=title)
    if logx:
        ax.set_xscale("log")
    ax.legend(fontsize=7)
    return ax


TREE = (  # (question, yes -> next node or leaf, no -> next node or leaf): the rules of costs.exclusion, in order
    ("existing model passes your eval?", "data may leave the company?", "labelled examples?"),
    ("data may leave the company?", "API or self-host:\ncheaper at your traffic", "self-host the existing model"),
    ("labelled examples?", "domain shift (new language, in-house code)?", "collect labels first"),
    ("domain shift (new language, in-house code)?", "continued pre-training + LoRA\n(scratch: only with the\nChinchilla-optimal token count)",
     "LoRA fits your GPU?"),
    ("LoRA fits your GPU?", "LoRA", "QLoRA fits?"),
    ("QLoRA fits?", "QLoRA", "full FT with ZeRO on more GPUs,\nor a smaller base"),
)  # fmt: skip


def plot_decision_tree(ax=None):
    """The decision tree of `TREE` as boxes and arrows (questions blue, answers green)."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(11, 6))[1]
    questions = {q: i for i, (q, _, _) in enumerate(TREE)}
    pos, leaf_x = {}, iter(range(20))

    def place(node: str, depth: int) -> float:
        if node in questions:
            _, yes, no = TREE[questions[node]]
            x = (place(yes, depth + 1) + place(no, depth + 1)) / 2
        else:
            x = next(leaf_x) * 2.0
        pos[node] = (x, -depth)
        return x

    place(TREE[0][0], 0)
    for q, yes, no in TREE:
        for child, word in ((yes, "yes"), (no, "no")):
            (x0, y0), (x1, y1) = pos[q], pos[child]
            ax.annotate("", (x1, y1 + 0.18), (x0, y0 - 0.18), arrowprops=dict(arrowstyle="->", color="0.4"))
            ax.text((x0 + x1) / 2, (y0 + y1) / 2, word, fontsize=7, color="0.3", ha="center")
    for node, (x, y) in pos.items():
        color = "#dbe9f6" if node in questions else "#d9f0d3"
        ax.text(
            x, y, node, ha="center", va="center", fontsize=7, bbox=dict(boxstyle="round", fc=color, ec="0.5")
        )
    ax.set_xlim(-1, max(x for x, _ in pos.values()) + 1)
    ax.set_ylim(min(y for _, y in pos.values()) - 0.6, 0.6)
    ax.axis("off")
    return ax


def form(s: Scenario, prices: Prices = EXAMPLE_PRICES):
    """An ipywidgets form over traffic, GPU price and horizon; prints the static plan of `s` first (CI, HTML)."""
    import pandas as pd

    def show(requests_per_day: float, gpu_price: float, months: int) -> None:
        p = replace(prices, gpu_hour={**prices.gpu_hour, s.gpu: gpu_price})
        t = replace(s, requests_per_day=requests_per_day, months=months)
        options, rec = plan(t, p)
        cols = ["option", "fits", "GPU-hours", "one-off $", "monthly $", f"TCO {months} mo $", "excluded by"]
        print(
            pd.DataFrame(options_table(options, months))[cols].to_string(
                index=False, float_format="{:,.0f}".format
            )
        )
        print("recommended:", LABELS.get(rec.choice, "none"), "|", rec.reasons[-1])

    show(s.requests_per_day, prices.hour(s.gpu), s.months)  # the static fallback
    try:
        import ipywidgets as w
    except ImportError:
        return None
    return w.interactive(
        show,
        requests_per_day=w.FloatLogSlider(
            value=s.requests_per_day, base=10, min=2, max=8, description="requests/day"
        ),
        gpu_price=w.FloatSlider(value=prices.hour(s.gpu), min=0.2, max=8.0, step=0.1, description="$/GPU-h"),
        months=w.IntSlider(value=s.months, min=1, max=36, description="months"),
    )
