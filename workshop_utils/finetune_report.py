"""Reading the stored fine-tuning study (modules 07 and 08): estimates with error bars and the LoRA verdict.

`load_study(profile)` refuses a study that other code, inputs or library versions produced. Everything
else turns its per-example test losses into `stats.Estimate`s:

    summarize(study, "lora")        # ArmSummary: test answer loss (all / content / format), exact match, ...
    gain_recovered(study, "lora")   # (base - LoRA) / (base - full FT) on the answer's content tokens, ± SE
    lora_verdict(study)             # "holds" / "does not hold" / "underpowered" for the 95 % claim

The grid (`finetune_grid`) is read the same way by `finetune_grid_report`.

    python -m workshop_utils.finetune_report --profile cpu     # the tables, in a terminal
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import finetune_study, provenance, stats
from .config import Profile, get_profile
from .paths import artifacts_dir

CLAIM_SHARE = 5.0  # "... with <= 5 % trainable parameters"
CLAIM_RECOVERED = 0.95  # "... recovers >= 95 % of full fine-tuning's gain"
LABELS = {
    "full": "full FT",
    "lora": "LoRA + token rows",
    "lora_plain": "LoRA only",
    "random": "random init, full FT",
}
LABELS_ORDER = tuple(LABELS)  # the arms in the order tables and plots show them


class StaleStudyError(RuntimeError):
    """The stored study was produced by other code, inputs or library versions than the ones here now."""


def read_stored(path: Path, what: str, command: str) -> dict[str, Any]:
    """A stored result's JSON; a clear error naming the command that makes it when there is none."""
    if not path.is_file():
        raise StaleStudyError(f"no stored {what} at {path}: run `{command}`")
    return json.loads(path.read_text())


def base_hash(weights: Path, stored_sha: str | None, allow_other_base: bool) -> tuple[str | None, bool]:
    """(hash to check, checked?): this machine's base when built here (and, with allow_other_base, only when
    its bits are the stored ones), else the stored hash, not re-checked."""
    from .finetune_grid import file_sha256

    if not weights.is_file():
        return stored_sha, False
    sha = file_sha256(weights)
    if allow_other_base and sha != stored_sha:
        return stored_sha, False
    return sha, True


def refuse_stale(
    data: dict[str, Any], path: Path, entry: str, inputs: dict[str, Any], what: str, command: str
) -> None:
    """Raise StaleStudyError unless `provenance.check` finds the code, inputs and versions unchanged."""
    stored = data.get("provenance", {})
    problems = provenance.check(stored, entry, inputs)
    if problems:
        raise StaleStudyError(
            f"the stored {what} {path.name} is stale: {'; '.join(problems)}. Re-run it once: `{command}` "
            f"(it took {stored.get('seconds', '?')} s when stored)"
        )


def load_study(profile: Profile, path: Path | None = None, allow_other_base: bool = False) -> dict[str, Any]:
    """The stored study of a profile, checked against the code, inputs and versions of now.

    The base model's hash is checked when that base is built on this machine. Where it is not (the `cpu`
    study read in a `ci` run), or where `allow_other_base` accepts a base trained elsewhere (a learner's
    laptop may produce other bits), code, settings and versions are still checked, `study["base_checked"]`
    is False, and `stored_label` says so.
    """
    path = path or finetune_study.study_path(profile)
    command = f"make finetune-study PROFILE={profile.name}"
    data = read_stored(path, "study", command)
    stored_sha = data.get("provenance", {}).get("inputs", {}).get("base_sha256")
    weights = artifacts_dir(profile.name, "course_model") / "model.safetensors"
    sha, checked = base_hash(weights, stored_sha, allow_other_base)
    refuse_stale(
        data, path, finetune_study.ENTRY, finetune_study.study_inputs(profile, sha), "study", command
    )
    return {**data, "base_checked": checked}


def stored_label(study: dict[str, Any], kind: str = "study") -> str:
    """How a stored study (or grid: `kind`) is labelled wherever it is shown."""
    p = study["provenance"]
    base = (
        ""
        if study["base_checked"]
        else "; made on a base model that is not this machine's, hash not re-checked"
    )
    return (
        f"stored {kind} of {p['created']}, commit {p['commit']}, {p['machine']}, {p['seconds']:.0f} s{base}"
    )


def replay_start(profile: Profile, study: dict[str, Any], arm: str) -> dict[str, float]:
    """Re-run live the first evaluation interval of an arm's first-seed run: stored vs live validation loss there.

    The same code, settings and base reproduce the stored number to float precision: evidence that the
    stored study is what this code computes, at the cost of a few seconds.
    """
    from . import sft
    from .device import pick_device, torch_threads
    from .models import load_course_model
    from .tokenizer import SPECIAL_TOKENS, load_course_tokenizer

    S = profile.study
    run = next(r for r in seed_runs(study, arm) if r["seed"] == S.seeds[0])
    tokenizer, base = load_course_tokenizer(profile), load_course_model(profile, show_progress=False)
    splits = sft.make_sft_splits(profile, 0)
    special = tokenizer.convert_tokens_to_ids(SPECIAL_TOKENS)
    with torch_threads(1):  # as the study ran: one thread per run (the thread count changes the bits)
        model = finetune_study.build_arm(base, profile, arm, run["seed"], special)
        cfg = sft.sft_train_config(profile, run["seed"], S.max_steps, run["lr"], S.eval_every, S.patience)
        result = sft.sft_train(model, tokenizer, splits.train, cfg, pick_device(), show_progress=False,
                               val_examples=splits.val, stop_at=S.eval_every)  # fmt: skip
    steps, vals = result.curve("val_loss")
    stored = dict((int(s), v) for s, v in run["val_curve"])
    return {"step": steps[-1], "stored": stored[steps[-1]], "live": vals[-1], "seconds": result.seconds}


@dataclass(frozen=True)
class ArmSummary:
    """One arm at its chosen LR, over its seeds."""

    arm: str
    lr: float
    seeds: int
    percent: float  # trainable share of the parameters
    loss: dict[str, stats.Estimate]  # test answer loss by metric (all / content / format)
    exact_match: stats.Estimate
    best_steps: list[int]
    plateaued: int  # seeds whose validation loss stopped improving before max_steps
    seconds: float  # mean training time of one run
    peak_bytes: int  # measured peak of one training step


def seed_runs(study: dict[str, Any], arm: str) -> list[dict]:
    """The runs of an arm at its chosen LR (one per seed)."""
    if arm not in study["best_lr"]:
        raise ValueError(f"unknown arm {arm!r}; the study has {sorted(study['best_lr'])}")
    return [r for r in study["runs"] if r["arm"] == arm and r["lr"] == study["best_lr"][arm]]


def arm_matrix(study: dict[str, Any], arm: str, metric: str = "all") -> torch.Tensor:
    """(seeds, examples) test answer losses of an arm at its chosen LR ("correct": 0/1 exact match)."""
    if metric not in (*finetune_study.METRICS, "correct"):
        raise ValueError(f"unknown metric {metric!r}; valid: {(*finetune_study.METRICS, 'correct')}")
    runs = seed_runs(study, arm)
    rows = [r["correct"] if metric == "correct" else r["test"][metric] for r in runs]
    return torch.tensor(rows, dtype=torch.float64)  # (S, N)


def summarize(study: dict[str, Any], arm: str) -> ArmSummary:
    """Mean ± SE of an arm's test losses and exact match over its seeds."""
    runs = seed_runs(study, arm)
    loss = {m: stats.estimate(arm_matrix(study, arm, m)) for m in finetune_study.METRICS}
    return ArmSummary(arm, study["best_lr"][arm], len(runs), runs[0]["percent"], loss,
                      stats.estimate(arm_matrix(study, arm, "correct")), [r["best_step"] for r in runs],
                      sum(r["stopped_early"] for r in runs), sum(r["seconds"] for r in runs) / len(runs),
                      runs[0]["peak_bytes"])  # fmt: skip


def base_matrix(study: dict[str, Any], metric: str = "all") -> torch.Tensor:
    """(1, examples) test answer losses of the base model before fine-tuning."""
    return torch.tensor([study["base"][metric]], dtype=torch.float64)


def base_losses(study: dict[str, Any]) -> dict[str, stats.Estimate]:
    """The base model's test answer loss by metric (all / content / format), mean ± SE over examples."""
    return {m: stats.estimate(base_matrix(study, m)) for m in finetune_study.METRICS}


def reference_study(profile: Profile, study: dict[str, Any]) -> dict[str, Any]:
    """The `cpu` study, which a smaller profile's verdicts must not contradict (`study` itself in `cpu`)."""
    return study if profile.name == "cpu" else load_study(get_profile("cpu"), allow_other_base=True)


def gain(study: dict[str, Any], arm: str, metric: str = "content") -> torch.Tensor:
    """(seeds, examples) gain of an arm over the base: base answer loss - fine-tuned answer loss."""
    return base_matrix(study, metric) - arm_matrix(study, arm, metric)


def gain_recovered(study: dict[str, Any], arm: str = "lora", metric: str = "content") -> stats.Estimate:
    """Share of full fine-tuning's gain that `arm` recovers, mean ± SE."""
    return stats.ratio(gain(study, arm, metric), gain(study, "full", metric))


def lora_verdict(study: dict[str, Any], metric: str = "content") -> dict[str, Any]:
    """The claim "LoRA recovers >= 95 % of full FT's gain with <= 5 % trainable parameters", decided with its SE."""
    share = summarize(study, "lora").percent
    est = gain_recovered(study, "lora", metric)
    word = stats.verdict(est, CLAIM_RECOVERED) if share <= CLAIM_SHARE else "not applicable (> 5 % trainable)"
    return {"metric": metric, "recovered": est, "percent": share, "verdict": word}


def verdicts_agree(small: str, large: str) -> bool:
    """A smaller profile may be underpowered, never the opposite verdict of the larger one."""
    return small == large or "underpowered" in (small, large)


def table(study: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per arm: LR, seeds, trainable %, test answer loss by metric and exact match (mean ± SE)."""
    rows = []
    for arm in finetune_study.ARMS:
        s = summarize(study, arm)
        rows.append({"arm": LABELS[arm], "lr": s.lr, "seeds": s.seeds, "trainable %": round(s.percent, 2),
                     "answer loss": str(s.loss["all"]), "content loss": str(s.loss["content"]),
                     "<|end|> loss": str(s.loss["format"]), "exact match": str(s.exact_match),
                     "best steps": s.best_steps, "plateaued": f"{s.plateaued}/{s.seeds}",
                     "s / run": round(s.seconds, 1), "peak MB": round(s.peak_bytes / 1e6, 2)})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    """CLI: print the tables and verdicts of a stored study."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="cpu", choices=("ci", "cpu", "gpu"))
    profile = get_profile(parser.parse_args(argv).profile)
    study = load_study(profile)
    print(stored_label(study))
    base = base_losses(study)
    print(f"base model: answer loss {base['all']}, content {base['content']}, <|end|> {base['format']}")
    for row in table(study):
        print(row)
    d, words = stats.compare(arm_matrix(study, "full", "content"), arm_matrix(study, "random", "content"))
    print(f"pre-trained vs random init (content loss): {words}")
    for metric in ("content", "all"):
        v = lora_verdict(study, metric)
        print(
            f"LoRA recovers {v['recovered']} of full FT's {metric} gain at {v['percent']:.2f} %: {v['verdict']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
