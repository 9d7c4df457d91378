"""Module 07's exercises: the hidden system prompt, where the SFT model fails, less data for the same steps."""

from __future__ import annotations

import copy
from typing import Any

from .. import sft
from . import AnyOf, Check


def solution_1(
    model: Any, tokenizer: Any, splits: Any, device: Any, max_new_tokens: int, sft_eval: Any
) -> dict:
    """Exact match of the SFT model with and without the system turn it was trained with."""
    no_system = sft.evaluate_sft(model, tokenizer, splits.test, device, max_new_tokens, system=None)
    print(f"with system prompt {sft_eval.exact_match:.1%}, without {no_system.exact_match:.1%}")
    return {"with_system": sft_eval.exact_match, "without_system": no_system.exact_match}


def solution_2(splits: Any, sft_eval: Any) -> dict:
    """The SFT model's wrong test answers per family, how many are well-formed, and the hardest family."""
    wrong, shaped, rate = {}, {}, {}
    for fam in sft.FAMILIES:
        cases = [(e, p) for e, p in zip(splits.test, sft_eval.predictions) if e.family == fam]
        bad = [(e, p) for e, p in cases if p.strip() != e.answer.strip()]
        wrong[fam], shaped[fam] = len(bad), sum(sft.format_ok(e, p) for e, p in bad)
        rate[fam] = 1 - len(bad) / len(cases)
        print(
            f"{fam:12s} {len(bad):3d} wrong, {shaped[fam]} of them well-formed; e.g.",
            [(e.x, e.answer, p) for e, p in bad[:2]],
        )
    hardest = min(rate, key=rate.get)
    print(f"hardest: {hardest} (exact match {rate[hardest]:.0%})")
    return {"wrong": wrong, "well_formed": shaped, "hardest": hardest}


def solution_3(
    base: Any, tokenizer: Any, splits: Any, short: Any, device: Any, max_new_tokens: int, em_ours_short: float
) -> dict:
    """A fresh copy of the base model trained on a quarter of the chats for section 7's short schedule."""
    quarter = copy.deepcopy(base)
    n_chats = len(splits.train) // 4
    sft.sft_train(quarter, tokenizer, splits.train[:n_chats], short, device, show_progress=False)
    em_quarter = sft.evaluate_exact_match(quarter, tokenizer, splits.test, device, max_new_tokens)
    print(
        f"{short.steps} steps: {len(splits.train)} chats {em_ours_short:.1%}; {n_chats} chats {em_quarter:.1%}"
    )
    return {"n_chats": n_chats, "steps": short.steps, "em_all_chats": em_ours_short, "em_quarter": em_quarter}


# ---------------------------------------------------------------------------------------- the checks
def quick_1(sft_eval: Any) -> dict:
    """The part known without a new evaluation."""
    return {"with_system": sft_eval.exact_match}


def expected_1(
    model: Any, tokenizer: Any, splits: Any, device: Any, max_new_tokens: int, sft_eval: Any
) -> dict:
    """A second evaluation without the system turn (greedy decoding: deterministic)."""
    answers = [e.answer for e in splits.test]
    preds = sft.evaluate_sft(model, tokenizer, splits.test, device, max_new_tokens, system=None).predictions
    return {**quick_1(sft_eval), "without_system": sft.exact_match(preds, answers)}


def expected_2(splits: Any, sft_eval: Any) -> dict:
    """Wrong answers from the per-family exact match; the hardest family (or any tied with it)."""
    size = {f: sum(e.family == f for e in splits.test) for f in sft.FAMILIES}
    wrong = {f: round(size[f] * (1 - sft_eval.by_family[f])) for f in sft.FAMILIES}
    pairs = list(zip(splits.test, sft_eval.predictions))
    shaped = {
        f: sum(
            sft.format_ok(e, p) for e, p in pairs if e.family == f and not sft.exact_match([p], [e.answer])
        )
        for f in sft.FAMILIES
    }
    low = min(sft_eval.by_family.values())
    return {
        "wrong": wrong,
        "well_formed": shaped,
        "hardest": AnyOf(tuple(f for f, v in sft_eval.by_family.items() if v == low)),
    }


def quick_3(splits: Any, short: Any, em_ours_short: float) -> dict:
    """The parts known without training again."""
    return {"n_chats": len(splits.train) // 4, "steps": short.steps, "em_all_chats": em_ours_short}


def expected_3(
    base: Any, tokenizer: Any, splits: Any, short: Any, device: Any, max_new_tokens: int, em_ours_short: float
) -> dict:
    """The same seeded run again (it takes as long as yours)."""
    model = copy.deepcopy(base)
    sft.sft_train(
        model, tokenizer, splits.train[: len(splits.train) // 4], short, device, show_progress=False
    )
    em = sft.evaluate_exact_match(model, tokenizer, splits.test, device, max_new_tokens)
    return {**quick_3(splits, short, em_ours_short), "em_quarter": em}


CHECKS = {
    1: Check(
        expected_1,
        "a dict {'with_system': exact match, 'without_system': exact match}",
        "exact match ±0.01 (one test answer in ci): greedy decoding gives the same answers again",
        atol=0.01,
        quick=quick_1,
    ),
    2: Check(
        expected_2,
        "a dict {'wrong': {family: int}, 'well_formed': {family: int}, 'hardest': family}",
        "exact counts; any family tied for the lowest exact match is the hardest",
    ),
    3: Check(
        expected_3,
        "a dict {'n_chats': int, 'steps': int, 'em_all_chats': float, 'em_quarter': float}",
        "exact counts; exact match ±0.014 (two test answers in ci): seeded, but thread counts change sums",
        atol=0.014,
        quick=quick_3,
    ),
}
