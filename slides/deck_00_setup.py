"""Deck 00 · Setup: the course map, the three profiles, and this machine's matmul speed."""

from __future__ import annotations

from workshop_utils.config import PROFILE_NAMES, get_profile
from workshop_utils.course import MODULES


def build(d) -> None:
    """Slides of module 00."""
    rows = [[f"{m.number:02d}", m.title, m.summary] for m in MODULES]
    n = d.value("n_modules", len(MODULES))
    d.slide(
        "The course in one map",
        [f"{n} notebooks, one topic each, all running on a laptop CPU"],
        "Walk the map left to right: architectures, data, tokens, memory, many GPUs, scaling, then fine-tuning.",
        table=(["#", "module", "what you will see"], rows),
    )
    budgets = {name: get_profile(name).budget_seconds for name in PROFILE_NAMES}
    ci, cpu, gpu = (d.value(f"budget_{k}", v, "{} s") for k, v in budgets.items())
    d.slide(
        "One notebook, three scales",
        [
            f"`ci`: smallest sizes that still show the effect, {ci} per notebook",
            f"`cpu`: the live-demo scale on a laptop, {cpu} per notebook",
            f"`gpu`: Colab T4 and newer, {gpu} per notebook",
            '`PROFILE = "auto"` picks `gpu` with CUDA, else `cpu`',
        ],
        "Every size a notebook uses comes from workshop_utils/config.py; nothing is hard-coded in a notebook.",
    )
    d.slide(
        "Before the session",
        [
            "`make course` on the presenting machine: executed notebooks + offline site as fallback",
            "long cells can load what the same code produced earlier: set `FAST_PATH = True`",
            'the site\'s "where the time goes" table lists the slowest cells: start them first',
        ],
        "The fast path prints 'loaded precomputed result from <date>, produced by <notebook>' so learners see it.",
    )
    d.run_table_slide(
        "The setup notebook measures a large fp32 matmul: the machine's speed for later modules."
    )
