"""Module 09's exercises: cheaper API prices, a bigger GPU for the regulated team, no labelled examples."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .. import planner
from . import Check, Passes

MAX_BRACKET = 2.0  # exercise 1: a bracket (low, high) of the flip is an answer when high / low <= 2


def solution_1() -> tuple[float, float]:
    """Halve the example API prices: between which traffic values does the support bot move off the API?"""
    bot, prices = planner.scenarios()["support-bot"], planner.EXAMPLE_PRICES
    cheap_api = replace(prices, api_input=prices.api_input / 2, api_output=prices.api_output / 2)
    traffic = np.logspace(3, 6.5, 36)  # requests per day
    before = planner.flips(planner.sensitivity(bot, "requests_per_day", traffic))[0]
    v0, v1, c0, c1 = planner.flips(planner.sensitivity(bot, "requests_per_day", traffic, cheap_api))[0]
    print(
        f"halved API prices: {planner.LABELS[c0]} -> {planner.LABELS[c1]} between {v0:,.0f} and {v1:,.0f} "
        f"requests/day (at full prices: between {before[0]:,.0f} and {before[1]:,.0f})"
    )
    assert (c0, c1) == ("api", "self-host") and v0 > before[0]  # cheaper tokens: the API pays longer
    return float(v0), float(v1)


def solution_2() -> dict:
    """The regulated-records team on one A100 80 GB instead of the L4: which option wins, which rule changed."""
    rr = replace(planner.scenarios()["regulated-records"], gpu="a100-80gb")
    options, rec = planner.plan(rr)
    lora_fits = {o.key: o for o in options}["lora"].fits
    print(planner.LABELS[rec.choice], "|", rec.reasons[-1], f"| 16-bit LoRA fits: {lora_fits}")
    assert rec.choice == "lora" and lora_fits  # 16-bit LoRA fits 80 GB, costs the same, wins the tie
    return {"choice": rec.choice, "lora_fits": lora_fits}


def solution_3() -> dict:
    """The new-language team without labelled examples: the recommendation and the rule behind it."""
    no_labels = replace(planner.scenarios()["new-language"], labelled_examples=0)
    options, rec = planner.plan(no_labels)
    print(rec.choice, "|", " | ".join(rec.reasons))
    assert rec.choice is None and "no labelled examples" in {o.key: o for o in options}["cpt"].excluded
    return {"choice": rec.choice, "rule": {o.key: o for o in options}["cpt"].excluded}


# ---------------------------------------------------------------------------------------- the checks
def _choice(s: planner.Scenario, prices: planner.Prices, traffic: float) -> str | None:
    """The recommended option at one traffic value."""
    return planner.plan(replace(s, requests_per_day=traffic), prices)[1].choice


def flip_traffic() -> float:
    """The traffic at which the choice first leaves the API under halved API prices, by bisection."""
    bot, p = planner.scenarios()["support-bot"], planner.EXAMPLE_PRICES
    cheap = replace(p, api_input=p.api_input / 2, api_output=p.api_output / 2)
    grid = np.logspace(3, 6.5, 200)
    i = next(i for i, v in enumerate(grid) if _choice(bot, cheap, v) != "api")
    lo, hi = np.log(grid[i - 1]), np.log(grid[i])
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _choice(bot, cheap, np.exp(mid)) == "api" else (lo, mid)
    return float(np.exp(hi))


def expected_1() -> Passes:
    """A bracket (low, high) around the flip, no wider than MAX_BRACKET, or one value within 10 %."""
    flip = flip_traffic()

    def test(answer) -> str | None:
        if isinstance(answer, (int, float)) and not isinstance(answer, bool):
            return (
                None if abs(answer - flip) <= 0.1 * flip else "not within 10 % of the traffic where it flips"
            )
        if not (isinstance(answer, (list, tuple)) and len(answer) == 2):
            return "expected (low, high) requests per day, or one value"
        low, high = answer
        if not low <= flip <= high:
            return f"the choice flips {'above' if flip > high else 'below'} your bracket"
        return None if high <= MAX_BRACKET * low else f"bracket wider than {MAX_BRACKET:g}x: narrow it down"

    return Passes(test)


def expected_2() -> dict:
    """The planner's choice and whether 16-bit LoRA fits the A100."""
    options, rec = planner.plan(replace(planner.scenarios()["regulated-records"], gpu="a100-80gb"))
    return {"choice": rec.choice, "lora_fits": next(o.fits for o in options if o.key == "lora")}


def expected_3() -> dict:
    """No choice; the rule is any telling part (five characters or more) of CPT's exclusion."""
    options, rec = planner.plan(replace(planner.scenarios()["new-language"], labelled_examples=0))
    rule = next(o.excluded for o in options if o.key == "cpt").lower()

    def test(answer) -> str | None:
        ok = isinstance(answer, str) and len(answer.strip()) >= 5 and answer.strip().lower() in rule
        return (
            None
            if ok
            else "not the words of the rule that excludes CPT (copy them from the planner's reasons)"
        )

    return {"choice": rec.choice, "rule": Passes(test)}


CHECKS = {
    1: Check(
        expected_1,
        "(low, high) requests per day around the flip, or one value",
        f"the flip inside a bracket no wider than {MAX_BRACKET:g}x, or one value within 10 %",
    ),
    2: Check(expected_2, "a dict {'choice': option key, 'lora_fits': bool}", "exact"),
    3: Check(
        expected_3,
        "a dict {'choice': option key or None, 'rule': the rule's words (from the planner)}",
        "exact choice; the rule as a part of the planner's words",
    ),
}
