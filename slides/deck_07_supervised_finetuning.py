"""Deck 07 · Supervised fine-tuning: from next-token predictor to instruction follower."""

from __future__ import annotations

from workshop_utils.config import get_profile
from workshop_utils.sft import FAMILIES, IGNORE_INDEX, check_no_leakage, make_sft_splits


def build(d) -> None:
    """Slides of module 07."""
    splits = make_sft_splits(get_profile("ci"), seed=0)
    leaks = check_no_leakage(splits)
    d.value("n_families", len(FAMILIES))
    d.value("families", ", ".join(FAMILIES))
    d.value("n_train", len(splits.train), "{:,}")
    d.value("n_test", len(splits.test), "{:,}")
    d.value("n_overlap", sum(leaks.values()))
    ex = splits.train[0]
    d.value("example", f"{ex.instruction} -> {ex.answer}")
    d.slide(
        "Instruction data, generated",
        [
            "{n_families} task families: {families}",
            "`ci` profile: {n_train} training and {n_test} test examples, {n_overlap} shared between splits",
            "e.g. {example}",
        ],
        "Generated from the course corpus and simple rules, so exact match is a fair metric.",
    )
    d.value("ignore", IGNORE_INDEX)
    d.slide(
        "Train on the answer only",
        [
            "chat template: system, user, assistant turns with role tokens",
            "labels = input ids, with {ignore} on every prompt token: no loss there",
            "padding vs packing: packing wastes no compute but needs care at sequence boundaries",
        ],
        "The notebook shows the masked loss equals TRL's completion-only loss.",
    )
    d.run_table_slide()
