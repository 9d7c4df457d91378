"""Reading module 07's stored lessons (`sft_lessons`): every comparison as a paired difference ± SE.

lessons = load_lessons(allow_other_base=True)       # refuses a file other code or settings produced
compare_arms(lessons, "nl multi", "nl single", families=(HELD_OUT,))   # (Estimate, words)
lm_losses(lessons)                                  # the forgetting table: Shakespeare / Python docs

python -m workshop_utils.sft_lessons_report         # the same, in a terminal
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from . import finetune_study, sft_lessons, stats
from .config import get_profile
from .finetune_report import base_hash, read_stored, refuse_stale, stored_label
from .paths import artifacts_dir


def load_lessons(path: Path | None = None, allow_other_base: bool = False) -> dict[str, Any]:
    """The stored lessons, checked against the code, settings and versions of now (as `load_study`)."""
    path = path or sft_lessons.lessons_path()
    data = read_stored(path, "lessons", "make sft-lessons")
    stored_sha = data.get("provenance", {}).get("inputs", {}).get("base_sha256")
    weights = artifacts_dir(sft_lessons.PROFILE, "course_model") / "model.safetensors"
    sha, checked = base_hash(weights, stored_sha, allow_other_base)
    refuse_stale(
        data, path, sft_lessons.ENTRY, sft_lessons.lessons_inputs(sha), "lessons", "make sft-lessons"
    )
    return {**data, "base_checked": checked}


def base_parameters() -> int:
    """Parameters of the model the lessons fine-tuned (the `cpu` course model), from its config: no weights needed."""
    from .models import build_course_model

    return sum(p.numel() for p in build_course_model(get_profile(sft_lessons.PROFILE)).parameters())


def _columns(lessons: dict[str, Any], families: tuple[str, ...] | None) -> list[int]:
    fams = lessons["base"]["families"]
    unknown = set(families or ()) - set(fams)
    if unknown:
        raise ValueError(f"unknown task families {sorted(unknown)}; the test set has {sorted(set(fams))}")
    return [i for i, f in enumerate(fams) if families is None or f in families]


def arm_runs(lessons: dict[str, Any], arm: str) -> list[dict]:
    """The runs of an arm, by seed."""
    if arm not in sft_lessons.ARMS:
        raise ValueError(f"unknown arm {arm!r}; valid: {sft_lessons.ARMS}")
    return sorted((r for r in lessons["runs"] if r["arm"] == arm), key=lambda r: r["seed"])


def answer_matrix(lessons: dict[str, Any], arm: str, metric: str = "content",
                families: tuple[str, ...] | None = None) -> torch.Tensor:  # fmt: skip
    """(seeds, examples) test answer losses of an arm ("base-nl" / "base-t5": the base model; "correct": 0/1)."""
    if metric not in (*finetune_study.METRICS, "correct"):
        raise ValueError(f"unknown metric {metric!r}; valid: {(*finetune_study.METRICS, 'correct')}")
    cols = _columns(lessons, families)
    if arm.startswith("base-"):
        rows = [lessons["base"][arm.removeprefix("base-")][metric]]
    else:
        rows = [r["correct"] if metric == "correct" else r["test"][metric] for r in arm_runs(lessons, arm)]
    return torch.tensor(rows, dtype=torch.float64)[:, cols]  # (S, N)


def estimate(lessons: dict[str, Any], arm: str, metric: str = "content", families=None) -> stats.Estimate:
    """Mean ± SE of an arm's test answer loss (or exact match with metric="correct")."""
    return stats.estimate(answer_matrix(lessons, arm, metric, families))


def compare_arms(lessons: dict[str, Any], a: str, b: str, metric: str = "content",
                 families: tuple[str, ...] | None = None) -> tuple[stats.Estimate, str]:  # fmt: skip
    """a - b on the same test examples (paired by example, independent by seed), with its verdict in words."""
    d, words = stats.compare(
        answer_matrix(lessons, a, metric, families), answer_matrix(lessons, b, metric, families)
    )
    return d, words.replace("first is better", f"{a} is better").replace("second is better", f"{b} is better")


def lm_matrix(lessons: dict[str, Any], arm: str, text: str, after_cpt: bool = False) -> torch.Tensor:
    """(seeds, windows) language-model loss of an arm on `text` ("shakespeare" / "domain"); "base": before any tuning."""
    if text not in ("shakespeare", "domain"):
        raise ValueError(f"text must be 'shakespeare' or 'domain', got {text!r}")
    if arm == "base":
        return torch.tensor([lessons["base"]["lm"][text]], dtype=torch.float64)
    key = "lm_after_cpt" if after_cpt else "lm"
    return torch.tensor([r[key][text] for r in arm_runs(lessons, arm)], dtype=torch.float64)


def lm_losses(lessons: dict[str, Any]) -> list[dict[str, Any]]:
    """The forgetting table: validation loss (nats/token) on Shakespeare and Python docs at each stage."""
    stages = (("base model", "base", False), ("after continued pre-training", "cpt sft", True),
              ("after CPT, then SFT", "cpt sft", False), ("after SFT only", "nl all", False))  # fmt: skip
    return [{"stage": name, **{text: stats.estimate(lm_matrix(lessons, arm, text, cpt)) for text in ("shakespeare", "domain")}}
            for name, arm, cpt in stages]  # fmt: skip


def main() -> int:
    """CLI: the stored lessons' comparisons."""
    lessons = load_lessons(allow_other_base=True)
    print(stored_label(lessons, "lessons"))
    held = (sft_lessons.HELD_OUT,)
    for a, b, fams in (("nl multi", "nl single", held), ("nl multi", "base-nl", held), ("t5 multi", "nl multi", held),
                       ("t5 all", "nl all", None), ("cpt sft", "nl all", None), ("teacher pool", "gold pool", None)):  # fmt: skip
        print(f"{a} vs {b} on {fams or 'all families'}: {compare_arms(lessons, a, b, families=fams)[1]}")
    for row in lm_losses(lessons):
        print({k: str(v) for k, v in row.items()})
    print("teacher on the pool:", lessons["teacher"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
