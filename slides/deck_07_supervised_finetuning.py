"""Deck 07 · Supervised fine-tuning: from next-token predictor to instruction follower."""

from __future__ import annotations

from workshop_utils import finetune_report, sft_lessons, sft_lessons_report
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
        "The notebook trains the same data with TRL's `SFTTrainer` (assistant-only loss, the same mask) and "
        "compares the two runs: close, not equal (different shuffling), within the checkpoint's loose margin.",
    )
    lessons = sft_lessons_report.load_lessons(allow_other_base=True)
    held = (sft_lessons.HELD_OUT,)
    d.value("held", sft_lessons.HELD_OUT)
    d.value("seeds", len(sft_lessons.SEEDS))
    for key, (a, b, fams) in {"multi_base": ("nl multi", "base-nl", held), "multi_single": ("nl multi", "nl single", held),
                              "t5_nl": ("t5 all", "nl all", None), "imitation": ("teacher pool", "gold pool", None)}.items():  # fmt: skip
        d.value(key, str(sft_lessons_report.compare_arms(lessons, a, b, families=fams)[0]))
    rows = {r["stage"]: r for r in sft_lessons_report.lm_losses(lessons)}
    d.value("shake_base", str(rows["base model"]["shakespeare"]))
    d.value("shake_cpt", str(rows["after continued pre-training"]["shakespeare"]))
    d.value("shake_sft", str(rows["after SFT only"]["shakespeare"]))
    d.slide(
        "What else instruction tuning does, measured ({seeds} seeds, loss on the answer's words)",
        [
            "unseen task ({held}): multi-task tuning minus the untuned base {multi_base}, minus single-task {multi_single} nats/token",
            "T5 prefixes minus natural-language instructions, seen tasks: {t5_nl}",
            "forgetting, Shakespeare loss: base {shake_base}, after continued pre-training {shake_cpt}, after SFT only {shake_sft}",
            "student on a teacher's answers minus student on gold: {imitation}",
        ],
        d.value("lessons_label", finetune_report.stored_label(lessons, "lessons")),
    )
    d.run_table_slide()
