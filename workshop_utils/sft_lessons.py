"""Module 07's lessons beyond "SFT works", each measured over seeds: FLAN's unseen tasks, T5 prefixes,
continued pre-training's forgetting, and imitation of a teacher.

Every arm fine-tunes (all weights, LR `LR`: the cpu study's pick) a copy of the `cpu` course model on
module 07's task families, `MAX_STEPS` at most with early stopping on its own validation examples, for each
of `SEEDS`. Every arm trains on the same number of examples per family it sees (`PER_FAMILY`), so the arms
differ only in *which* data, not how much:

| arm              | trains on                                               | question |
|------------------|---------------------------------------------------------|----------|
| `nl all`         | all five families, natural-language instructions        | reference |
| `t5 all`         | the same examples with T5's fixed task prefixes         | prefix vs instruction on seen tasks |
| `nl multi`       | four families (not `HELD_OUT`), instructions            | FLAN: does multi-task tuning transfer to an unseen task? |
| `t5 multi`       | the same four with prefixes                             | ... and with a prefix it never saw? |
| `nl single`      | `SINGLE` only, as many examples as `nl multi`           | single-task tuning, same data size |
| `cpt sft`        | `CPT_STEPS` of raw Python docs, then as `nl all`        | what continued pre-training costs on the original corpus |
| `gold pool`      | the pool prompts the teacher answered, gold answers     | imitation: gold labels ... |
| `teacher pool`   | the same prompts answered by the teacher (`nl all`, seed 0) | ... vs a teacher's labels, same count |

Stored per run: per-example test answer losses (all families, in the arm's own format; `families` says
which family each test example is), exact match, and for the language-model side the loss on fixed windows
of the Shakespeare validation text and of the domain (Python docs) validation text.

    python -m workshop_utils.sft_lessons        # or: make sft-lessons   (~25 min on 2 cores)

writes `data/finetune/lessons_cpu.json` with its provenance; `finetune_report.load_lessons` reads it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from . import provenance
from .config import get_profile
from .paths import repo_root

PROFILE = "cpu"
ENTRY = "workshop_utils.sft_lessons"
SEEDS = (0, 1, 2)
MAX_STEPS, EVAL_EVERY, PATIENCE, LR = 1000, 200, 3, 1e-3
PER_FAMILY = 375  # training examples per family an arm sees (the smallest family has 1584 in train)
HELD_OUT, SINGLE = "last_word", "first_word"  # the unseen task; the single task closest to it
CPT_STEPS = 600
N_IMITATE = 1600
LM_WINDOWS = 256  # fixed validation windows of the LM losses (Shakespeare, Python docs)
ARMS = ("nl all", "t5 all", "nl multi", "t5 multi", "nl single", "cpt sft", "gold pool", "teacher pool")


def lessons_path() -> Path:
    """Where the stored lessons live (committed)."""
    return repo_root() / "data" / "finetune" / f"lessons_{PROFILE}.json"


def lessons_inputs(base_sha256: str) -> dict[str, Any]:
    """What besides code the numbers depend on."""
    profile = get_profile(PROFILE)
    return {
        "profile": PROFILE,
        "lm": repr(dict(profile.lm)),
        "sft": repr(dict(profile.sft)),
        "base_sha256": base_sha256,
    }


# ---------------------------------------------------------------------------------------------
# Data of each arm
# ---------------------------------------------------------------------------------------------
def as_t5(examples: list) -> list:
    """The same examples with T5's fixed prefix (`"last word: <line>"`) as the instruction."""
    return [dataclasses.replace(e, instruction="{}: {}".format(*e.t5_format())) for e in examples]


def per_family(examples: list, families: tuple[str, ...], n: int) -> list:
    """The first `n` examples of each family in `families` (in split order); too few is an error."""
    out = []
    for fam in families:
        got = [e for e in examples if e.family == fam][:n]
        if len(got) < n:
            raise ValueError(f"only {len(got)} examples of family {fam!r}, {n} requested")
        out += got
    return out


def arm_data(arm: str, splits, teacher_labels: list | None = None) -> tuple[list, list, list]:
    """(train, val, test) of an arm, each in the arm's format. Test always covers every family."""
    from .sft import FAMILIES

    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; valid: {ARMS}")
    seen = {"nl multi": tuple(f for f in FAMILIES if f != HELD_OUT), "nl single": (SINGLE,)}
    seen["t5 multi"] = seen["nl multi"]
    families = seen.get(arm, FAMILIES)
    n = PER_FAMILY * (len(FAMILIES) - 1) if arm == "nl single" else PER_FAMILY
    if arm in ("gold pool", "teacher pool"):  # the prompts the teacher answered (empty answers are dropped)
        kept = {e.key for e in teacher_labels}
        train = (
            [e for e in splits.pool[:N_IMITATE] if e.key in kept] if arm == "gold pool" else teacher_labels
        )
    else:
        train = per_family(splits.train, families, n)
    val = [e for e in splits.val if e.family in families]
    fmt = as_t5 if arm.startswith("t5") else list
    return fmt(train), fmt(val), fmt(splits.test)


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def window_losses(
    model: torch.nn.Module, ids: torch.Tensor, context: int, n: int = LM_WINDOWS
) -> list[float]:
    """Next-token loss on each of `n` fixed, evenly spaced windows of `ids` (one value per window)."""
    import torch.nn.functional as F

    model.eval()
    starts = torch.linspace(0, ids.numel() - context - 1, n).long().tolist()
    x = torch.stack([ids[s : s + context] for s in starts])  # (n, T)
    y = torch.stack([ids[s + 1 : s + 1 + context] for s in starts])  # (n, T)
    out = []
    for i in range(0, n, 32):
        logits = model(input_ids=x[i : i + 32]).logits.float()  # (b, T, V)
        nll = F.cross_entropy(logits.transpose(1, 2), y[i : i + 32], reduction="none")  # (b, T)
        out += [round(v, 5) for v in nll.mean(1).tolist()]
    return out


def _lm_scores(
    model, shakespeare: torch.Tensor, domain: torch.Tensor, context: int
) -> dict[str, list[float]]:
    return {
        "shakespeare": window_losses(model, shakespeare, context),
        "domain": window_losses(model, domain, context),
    }


def _setup():
    from .models import course_token_ids, load_course_model
    from .sft import domain_corpus, make_sft_splits
    from .tokenizer import load_course_tokenizer
    from .training import encode_text

    profile = get_profile(PROFILE)
    tokenizer = load_course_tokenizer(profile)
    base = load_course_model(profile, show_progress=False)
    _, shakespeare = course_token_ids(profile, tokenizer)
    dom_train, dom_val = (encode_text(tokenizer, t) for t in domain_corpus())
    return profile, tokenizer, base, make_sft_splits(profile, 0), shakespeare, dom_train, dom_val


def continued_pretraining(
    model: torch.nn.Module, dom_train: torch.Tensor, dom_val: torch.Tensor, seed: int
) -> None:
    """Module 03's loop on the domain text: `CPT_STEPS` at half the pre-training LR (as module 07 does)."""
    from .device import pick_device
    from .training import TrainConfig, train_lm

    lm = get_profile(PROFILE).lm
    cfg = TrainConfig(steps=CPT_STEPS, lr=lm.lr / 2, batch_size=lm.batch_size, context=lm.context,
                      warmup=CPT_STEPS // 10, eval_every=CPT_STEPS, eval_batches=4, seed=seed)  # fmt: skip
    train_lm(model, dom_train, dom_val, cfg, pick_device(), show_progress=False)


def run_arm(arm: str, seed: int, teacher_labels: list | None = None) -> dict[str, Any]:
    """Train one arm at one seed on one CPU thread; score test answers and the two LM losses."""
    import copy

    from . import sft
    from .device import pick_device

    torch.set_num_threads(1)
    profile, tokenizer, base, splits, shakespeare, dom_train, dom_val = _setup()
    device, context = pick_device(), profile.lm.context
    train, val, test = arm_data(arm, splits, [sft.SFTExample(**e) for e in teacher_labels or []])
    model = copy.deepcopy(base).requires_grad_(True)
    after_cpt = None
    if arm == "cpt sft":
        continued_pretraining(model, dom_train, dom_val, seed)
        after_cpt = _lm_scores(model, shakespeare, dom_val, context)
    cfg = sft.sft_train_config(profile, seed, MAX_STEPS, LR, EVAL_EVERY, PATIENCE)
    result = sft.sft_train(model, tokenizer, train, cfg, device, show_progress=False, val_examples=val)
    losses = sft.answer_loss(model, tokenizer, test, device, profile.sft.max_length)
    preds = sft.evaluate_sft(model, tokenizer, test, device, profile.sft.max_new_tokens).predictions
    return {
        "arm": arm, "seed": seed, "n_train": len(train), "best_step": result.best_step,
        "steps_run": result.history[-1]["step"], "seconds": round(result.seconds, 2),
        "test": {k: [round(x, 5) for x in v.tolist()] for k, v in losses.items()},
        "correct": [int(p.strip() == e.answer.strip()) for p, e in zip(preds, test)],
        "lm": _lm_scores(model, shakespeare, dom_val, context), "lm_after_cpt": after_cpt,
    }  # fmt: skip


def teacher_labels() -> tuple[list[dict], dict[str, Any]]:
    """Train the teacher (`nl all`, seed 0, one thread) and let it answer the first N_IMITATE pool prompts."""
    import copy

    from . import sft
    from .device import pick_device

    torch.set_num_threads(1)
    profile, tokenizer, base, splits, *_ = _setup()
    train, val, _ = arm_data("nl all", splits)
    teacher = copy.deepcopy(base).requires_grad_(True)
    cfg = sft.sft_train_config(profile, 0, MAX_STEPS, LR, EVAL_EVERY, PATIENCE)
    sft.sft_train(teacher, tokenizer, train, cfg, pick_device(), show_progress=False, val_examples=val)
    pool = splits.pool[:N_IMITATE]
    labelled, n_empty = sft.label_with_model(
        teacher, tokenizer, pool, pick_device(), profile.sft.max_new_tokens
    )
    gold = {e.key: e.answer for e in pool}
    correct = sum(e.answer.strip() == gold[e.key].strip() for e in labelled)
    return [dataclasses.asdict(e) for e in labelled], {"n": len(pool), "empty": n_empty, "correct": correct}


def base_scores() -> dict[str, Any]:
    """The base model before any fine-tuning: test answer losses (both formats) and the LM losses."""
    from . import sft
    from .device import pick_device

    profile, tokenizer, base, splits, shakespeare, _, dom_val = _setup()
    out = {
        "families": [e.family for e in splits.test],
        "lm": _lm_scores(base, shakespeare, dom_val, profile.lm.context),
    }
    for name, test in (("nl", splits.test), ("t5", as_t5(splits.test))):
        losses = sft.answer_loss(base, tokenizer, test, pick_device(), profile.sft.max_length)
        out[name] = {k: [round(x, 5) for x in v.tolist()] for k, v in losses.items()}
    return out


def run_lessons(workers: int = 2) -> dict[str, Any]:
    """Base scores, then the teacher (beside the first arms), then every arm at every seed."""
    base = base_scores()
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        teacher = pool.submit(teacher_labels)
        first = [pool.submit(run_arm, a, s) for a in ARMS if "pool" not in a for s in SEEDS]
        labels, teacher_info = teacher.result()
        rest = [pool.submit(run_arm, a, s, labels) for a in ("gold pool", "teacher pool") for s in SEEDS]
        runs = [f.result() for f in first + rest]
    return {"base": base, "teacher": teacher_info, "runs": runs}


def main(argv: list[str] | None = None) -> int:
    """CLI: run the lessons and store them."""
    from .models import course_model_sha256

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    code = provenance.record(ENTRY, {}, "make sft-lessons")
    lessons = run_lessons(args.workers)
    inputs = lessons_inputs(course_model_sha256(get_profile(PROFILE)))
    prov = {**code, "inputs": inputs, "seconds": round(time.perf_counter() - t0, 1)}
    path = lessons_path()
    path.write_text(json.dumps({"provenance": prov, **lessons}, separators=(",", ":")) + "\n")
    print(f"wrote {path} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
