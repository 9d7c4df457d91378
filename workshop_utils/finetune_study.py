"""The fine-tuning study of modules 07 and 08: each method trained to its plateau, several seeds, error bars.

One question per arm, all on module 07's instruction task, the same train / validation / test split:

| arm          | start from            | trains                                                     |
|--------------|-----------------------|------------------------------------------------------------|
| `full`       | the course model (03) | every weight                                               |
| `lora`       | the course model      | LoRA on all linear layers + the chat tokens' embedding/output rows |
| `lora_plain` | the course model      | LoRA only (the new tokens' rows stay random: the trap)     |
| `random`     | a random init         | every weight (what pre-training is worth)                  |

Each arm's learning rate is the best of its grid on the *validation* answer loss at the first seed; the
other seeds run at that LR (`lora_plain` reuses `lora`'s: it is the same method minus the rows). Every run
stops when the validation answer loss has not improved for `patience` evaluations (the best checkpoint is
kept), at most `max_steps`. The test split is scored once per run: per-example answer loss (all tokens,
content tokens, the `<|end|>` format token) and exact match.

    python -m workshop_utils.finetune_study --profile cpu     # or: make finetune-study PROFILE=cpu

writes `data/finetune/study_<profile>.json` with its provenance (`workshop_utils.provenance`: the code of
this module and of everything it imports, the inputs, the versions). `workshop_utils.finetune_report`
loads it (refusing a stale file) and turns it into estimates with error bars and the LoRA verdict; it is a
separate module so that reading a study can evolve without invalidating it.
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from . import provenance
from .config import Profile, get_profile
from .paths import repo_root

ARMS = ("full", "lora", "lora_plain", "random")
ENTRY = "workshop_utils.finetune_study"  # this module's import name (also when run as __main__)
METRICS = ("all", "content", "format")  # answer tokens: all of them, the words only, the <|end|> token


def study_path(profile: Profile | str) -> Path:
    """Where the stored study of a profile lives (committed to the repository)."""
    return repo_root() / "data" / "finetune" / f"study_{getattr(profile, 'name', profile)}.json"


def study_inputs(profile: Profile, base_sha256: str | None = None) -> dict[str, Any]:
    """Everything besides code that the study's numbers depend on (the base's hash: of the cached model)."""
    from .models import course_model_sha256

    return {
        "profile": profile.name,
        "study": repr(dict(profile.study)),
        "sft": repr(dict(profile.sft)),
        "base_sha256": base_sha256 or course_model_sha256(profile),
    }


# ---------------------------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------------------------
def build_arm(
    base: torch.nn.Module, profile: Profile, arm: str, seed: int, special_ids: list[int]
) -> torch.nn.Module:
    """The model an arm trains: a copy of the base (or a random init) with the arm's trainable parameters."""
    from . import lora
    from .models import build_course_model

    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; valid: {ARMS}")
    S = profile.study
    if arm == "random":
        return build_course_model(profile, base.config.vocab_size, seed).requires_grad_(True)
    model = copy.deepcopy(base)
    if arm == "full":
        return model.requires_grad_(True)
    torch.manual_seed(seed)  # LoRA's A matrices
    lora.apply_lora(model, S.lora_r, S.lora_alpha, lora.TARGET_SETS["all linear"])
    if arm == "lora":
        lora.train_token_rows(model, special_ids)
    return model


def run_one(profile_name: str, arm: str, lr: float, seed: int) -> dict[str, Any]:
    """Train one arm at one LR and seed; score it on the test split. Runs on one CPU thread."""
    from . import sft
    from .device import pick_device
    from .lora import trainable_parameters
    from .memory import measure_training_step
    from .models import load_course_model
    from .tokenizer import SPECIAL_TOKENS, load_course_tokenizer

    torch.set_num_threads(1)  # two runs side by side on 2 cores beat one run on both (field notes)
    profile = get_profile(profile_name)
    S, device = profile.study, pick_device()
    tokenizer = load_course_tokenizer(profile)
    base = load_course_model(profile, show_progress=False)
    splits = sft.make_sft_splits(profile, 0)
    special = tokenizer.convert_tokens_to_ids(SPECIAL_TOKENS)
    model = build_arm(base, profile, arm, seed, special)
    cfg = sft.sft_train_config(profile, seed, S.max_steps, lr, S.eval_every, S.patience)
    feats = sft.prepare_features(splits.train[: cfg.batch_size], tokenizer, cfg.context).features
    x = sft.collate_padded(feats, tokenizer.pad_token_id)["input_ids"]  # (B, T): one real batch
    step = measure_training_step(copy.deepcopy(model), x, x, "adamw")  # a throw-away copy: 2 real steps
    result = sft.sft_train(model, tokenizer, splits.train, cfg, device, show_progress=False,
                           val_examples=splits.val)  # fmt: skip
    test = sft.answer_loss(model, tokenizer, splits.test, device, profile.sft.max_length)
    preds = sft.evaluate_sft(model, tokenizer, splits.test, device, profile.sft.max_new_tokens).predictions
    correct = [int(p.strip() == e.answer.strip()) for p, e in zip(preds, splits.test)]  # per example, 0/1
    trainable, total = trainable_parameters(model)
    steps, val = result.curve("val_loss")
    return {
        "arm": arm, "lr": lr, "seed": seed, "best_step": result.best_step,
        "steps_run": result.history[-1]["step"], "stopped_early": result.stopped_early,
        "val_curve": [[s, round(v, 5)] for s, v in zip(steps, val)], "best_val": round(min(val), 5),
        "test": {k: [round(x, 5) for x in v.tolist()] for k, v in test.items()},
        "exact_match": sum(correct) / len(correct), "correct": correct, "trainable": trainable, "percent": 100 * trainable / total,
        "seconds": round(result.seconds, 2), "peak_bytes": step.peak,
        "state_bytes": step.gradients + step.optimizer_states,
    }  # fmt: skip


def base_scores(profile: Profile) -> dict[str, list[float]]:
    """Per-example test answer losses of the base model before any fine-tuning."""
    from . import sft
    from .device import pick_device
    from .models import load_course_model
    from .tokenizer import load_course_tokenizer

    tokenizer, base = load_course_tokenizer(profile), load_course_model(profile, show_progress=False)
    splits = sft.make_sft_splits(profile, 0)
    test = sft.answer_loss(base, tokenizer, splits.test, pick_device(), profile.sft.max_length)
    return {k: [round(x, 5) for x in v.tolist()] for k, v in test.items()}


# ---------------------------------------------------------------------------------------------
# The whole study: LR grid at the first seed, then the other seeds at each arm's best LR
# ---------------------------------------------------------------------------------------------
def _run_all(profile: Profile, jobs: list[tuple[str, float, int]], workers: int) -> list[dict]:
    if workers <= 1:
        return [run_one(profile.name, *j) for j in jobs]
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no OpenMP state inherited
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        return list(pool.map(run_one, *zip(*[(profile.name, *j) for j in jobs])))


def lr_grid(profile: Profile, arm: str) -> tuple[float, ...]:
    """The learning rates an arm is tried at (the LoRA arms share one grid, random init full FT's)."""
    S = profile.study
    return tuple(S.lr_full if arm in ("full", "random") else S.lr_lora)


def run_study(profile: Profile, workers: int = 2) -> dict[str, Any]:
    """Run every arm (grid, then seeds) and return the study dict (without provenance)."""
    S = profile.study
    base = base_scores(profile)  # also trains and caches the course model if absent, before any worker starts
    first, rest = S.seeds[0], S.seeds[1:]
    grid_jobs = [(arm, lr, first) for arm in ("full", "lora", "random") for lr in lr_grid(profile, arm)]
    runs = _run_all(profile, grid_jobs, workers)
    best_lr = {arm: min((r for r in runs if r["arm"] == arm), key=lambda r: r["best_val"])["lr"]
               for arm in ("full", "lora", "random")}  # fmt: skip
    best_lr["lora_plain"] = best_lr["lora"]
    seed_jobs = [(arm, best_lr[arm], s) for arm in ARMS for s in (rest if arm != "lora_plain" else S.seeds)]
    runs += _run_all(profile, seed_jobs, workers)
    return {"base": base, "best_lr": best_lr, "runs": runs}


def save_study(
    profile: Profile, study: dict[str, Any], prov: dict[str, Any], path: Path | None = None
) -> Path:
    """Write the study with its provenance block (recorded when the run started, so it names the code that ran)."""
    path = path or study_path(profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"provenance": prov, **study}, indent=None, separators=(",", ":")) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    """CLI: run the study of a profile and store it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="cpu", choices=("ci", "cpu", "gpu"))
    parser.add_argument("--workers", type=int, default=2, help="runs side by side, one thread each")
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    t0 = time.perf_counter()
    prov = provenance.record(ENTRY, study_inputs(profile), f"make finetune-study PROFILE={profile.name}")
    study = run_study(profile, args.workers)
    prov["seconds"] = round(time.perf_counter() - t0, 1)
    path = save_study(profile, study, prov)
    print(f"wrote {path} in {time.perf_counter() - t0:.0f} s; read it with "
          f"`python -m workshop_utils.finetune_report --profile {profile.name}`")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
