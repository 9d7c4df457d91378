"""Module 09's options and choice: price each way to get the model, rule options out, pick the cheapest.

Options: an existing model used as is (through an API, or self-hosted), LoRA and QLoRA or full fine-tuning
of an open base, continued pre-training on domain text (then LoRA), and pre-training from scratch at the
Chinchilla-optimal size. The rules that exclude an option are the list in `exclusion`, in words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..hardware import gpu
from .calculators import (
    Assumptions,
    adapter_params,
    chinchilla_tokens,
    finetune_bytes,
    gpu_hours,
    serving_plan,
)
from .inputs import EXAMPLE_PRICES, Prices, Scenario, base_model

HOURS_PER_MONTH = 730.0  # 365 days x 24 h / 12
OPTIONS = ("api", "self-host", "lora", "qlora", "full", "cpt", "scratch")
LABELS = {"api": "existing model, API", "self-host": "existing model, self-hosted", "lora": "LoRA fine-tune",
          "qlora": "QLoRA fine-tune", "full": "full fine-tune", "cpt": "continued pre-training + LoRA",
          "scratch": "pre-train from scratch"}  # fmt: skip


# --------------------------------------------------------------------------------------------- options
@dataclass(frozen=True)
class Option:
    """One way to get the model: can it run here, what it costs once and per month, what it needs."""

    key: str
    excluded: str  # the rule that rules it out ("" when allowed)
    fits: bool | None  # None: not on your hardware (API)
    memory_gb: float | None  # per GPU: training for trained options, serving otherwise
    gpu_hours: float  # one-off training
    wall_days: float  # one-off training on the scenario's GPUs
    one_off: float  # USD
    monthly: float  # USD, serving
    serving_gpus: int | None  # GPUs serving around the clock (None: the API's)
    data_needed: str
    risk: str

    @property
    def label(self) -> str:
        """Readable name."""
        return LABELS[self.key]

    def tco(self, months: float) -> float:
        """Total cost of ownership after `months`."""
        return self.one_off + months * self.monthly


def exclusion(s: Scenario, key: str, fits: bool | None, wall_days: float, tokens_needed: float = 0) -> str:
    """The first rule that rules option `key` out for scenario `s`, in words ("" when none does)."""
    sft = key in ("lora", "qlora", "full", "cpt")
    rules = (
        (key == "api" and s.privacy, "privacy: data may not leave the company, so no external API"),
        (key in ("api", "self-host") and not s.existing_model_passes,
         "no existing model meets the quality bar on your eval"),
        (sft and s.labelled_examples == 0, "no labelled examples, so no supervised fine-tuning"),
        (key in ("lora", "qlora", "full") and s.domain_shift,
         "domain shift: SFT alone cannot teach the domain's text (module 07: continue pre-training first)"),
        (key == "cpt" and not s.domain_shift, "no domain shift: an open base already knows this kind of text"),
        (key == "cpt" and s.domain_tokens == 0, "no domain text to continue pre-training on"),
        (key == "scratch" and s.domain_tokens < tokens_needed,
         f"needs {tokens_needed:.2g} tokens at the Chinchilla-optimal size, you have {s.domain_tokens:.2g}"),
        (fits is False, f"does not fit {s.n_gpus} x {s.gpu}"),
        (wall_days > s.max_train_days, f"{wall_days:.0f} days of training > the {s.max_train_days:g} allowed"),
    )  # fmt: skip
    return next((why for fired, why in rules if fired), "")


def _train(s: Scenario, method: str, tokens: float, mfu: float, adapter: float = 0.0) -> tuple[float, float]:
    """(GPU-hours, wall-clock days on the scenario's GPUs) to train `tokens` by `method`."""
    hours = gpu_hours(base_model(s.model)[0].n_params, tokens, method, gpu(s.gpu), mfu, adapter)
    return hours, hours / s.n_gpus / 24.0


def _full_stage(s: Scenario, a: Assumptions, seq: int) -> tuple[int | None, float]:
    """The lowest ZeRO stage at which full training fits the scenario's GPUs, and its bytes per GPU."""
    budget = gpu(s.gpu).memory_bytes * a.headroom
    for stage in (0, 1, 2, 3):
        need = finetune_bytes(s.model, "full", 1, seq, a, s.n_gpus, stage)
        if need <= budget:
            return stage, need
    return None, need


def price_options(s: Scenario, prices: Prices = EXAMPLE_PRICES, a: Assumptions | None = None) -> list[Option]:
    """Every option of `OPTIONS`, priced for scenario `s`, with the rule that excludes it if any."""
    a = a or Assumptions()
    price, budget, n = (
        prices.hour(s.gpu),
        gpu(s.gpu).memory_bytes * a.headroom,
        base_model(s.model)[0].n_params,
    )
    plan = serving_plan(s, a)
    serve = plan.gpus * HOURS_PER_MONTH * price if plan else math.inf
    serve_gb = plan.memory_per_gpu / 1e9 if plan else None
    sft_tokens = s.labelled_examples * s.tokens_per_example * s.epochs
    adapter = adapter_params(s.model, a.lora_r, a.lora_targets)
    rows: list[Option] = []

    def add(key, fits, mem, hours, days, data, risk, tokens_needed=0.0):
        why = exclusion(s, key, fits, days, tokens_needed)
        if key == "api":  # requests per month x tokens x price per million
            per_request = s.input_tokens * prices.api_input + s.output_tokens * prices.api_output
            monthly = s.requests_per_day * HOURS_PER_MONTH / 24.0 * per_request / 1e6
        else:
            monthly, why = serve, why or ("" if plan else "cannot be served on this hardware")
        gpus = None if key == "api" else (plan.gpus if plan else None)
        rows.append(Option(key, why, fits, mem, hours, days, hours * price, monthly, gpus, data, risk))

    add(
        "api",
        None,
        None,
        0.0,
        0.0,
        "none: prompts only",
        "data leaves the company; vendor prices and models change",
    )
    add(
        "self-host",
        plan is not None,
        serve_gb,
        0.0,
        0.0,
        "none: prompts only",
        f"you run serving: {plan.gpus if plan else '-'} x {s.gpu} around the clock",
    )
    hl, dl = _train(s, "lora", sft_tokens, a.finetune_mfu, adapter)  # also the SFT after CPT
    for key in ("lora", "qlora"):
        mem = finetune_bytes(s.model, key, 1, s.tokens_per_example, a)
        risk = (
            "module 08: LoRA recovers part of full FT's gain on tiny bases; QLoRA ~ LoRA"
            if key == "lora"
            else "NF4 dequantisation slows each step (not priced); quality ~ LoRA (module 08, QLoRA paper)"
        )
        add(key, mem <= budget, mem / 1e9, hl, dl, f"{s.labelled_examples:,} labelled examples", risk)
    stage, mem = _full_stage(s, a, s.tokens_per_example)
    h, d = _train(s, "full", sft_tokens, a.finetune_mfu)
    add(
        "full",
        stage is not None,
        mem / 1e9,
        h,
        d,
        f"{s.labelled_examples:,} labelled examples",
        f"ZeRO-{stage} over {s.n_gpus} GPUs; forgets most (module 07)"
        if stage is not None
        else "needs more GPUs",
    )
    stage, mem = _full_stage(s, a, 2048)
    hc, dc = _train(s, "full", s.domain_tokens, a.pretrain_mfu)
    add(
        "cpt",
        stage is not None,
        mem / 1e9,
        hc + hl,
        dc + dl,
        f"{s.domain_tokens:.2g} domain tokens + labels",
        "forgetting of general ability (module 07 measured it); a data pipeline (module 02)",
    )
    d_opt = chinchilla_tokens(n, a.law)
    hs, ds = _train(s, "full", d_opt, a.pretrain_mfu)
    add(
        "scratch",
        stage is not None,
        mem / 1e9,
        hs,
        ds,
        f"{d_opt:.2g} tokens ({d_opt / n:.0f} per parameter)",
        f"{ds:,.0f} days on your GPUs; the whole pre-training stack is yours",
        d_opt,
    )
    return rows


# --------------------------------------------------------------------------------------------- the choice
@dataclass(frozen=True)
class Recommendation:
    """The chosen option (None when nothing passes) and the reasons, in words."""

    choice: str | None
    reasons: tuple[str, ...]


def recommend(s: Scenario, options: list[Option]) -> Recommendation:
    """Cheapest total cost over the scenario's horizon among the options no rule excludes (ties: list order)."""
    reasons = [f"{o.label}: {o.excluded}" for o in options if o.excluded]
    ok = sorted(
        (o for o in options if not o.excluded),
        key=lambda o: (round(o.tco(s.months), 2), OPTIONS.index(o.key)),
    )
    by_key = {o.key: o for o in options}
    if not by_key["lora"].fits and by_key["qlora"].fits and not by_key["qlora"].excluded:
        reasons.append(f"LoRA on a 16-bit base does not fit one {s.gpu}; QLoRA does")
    if not ok:
        return Recommendation(
            None, (*reasons, "no option passes the rules: relax a constraint or add hardware")
        )
    best = ok[0]
    line = f"cheapest over {s.months} months: {best.label} (${best.tco(s.months):,.0f})"
    if len(ok) > 1:
        line += f" vs {ok[1].label} (${ok[1].tco(s.months):,.0f})"
    return Recommendation(best.key, (*reasons, line))


def plan(s: Scenario, prices: Prices = EXAMPLE_PRICES, a: Assumptions | None = None):
    """(options, recommendation) for scenario `s`."""
    options = price_options(s, prices, a)
    return options, recommend(s, options)
