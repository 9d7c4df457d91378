"""Module 08's fine-tuning grid: the scale trend, the LoRA hyper-parameters and QLoRA, each over seeds.

The study (`finetune_study`) settles one question at one base size. This grid asks three more, on the
`cpu` profile's task and tokenizer, every run at a fixed budget (`MAX_STEPS`, early stopping on the
validation answer loss, best checkpoint kept) and over `SEEDS`:

1. **The trend.** Bases of three widths (`WIDTHS`; 128 is the course model, the others are pre-trained
   here with module 03's recipe, same data and steps) fine-tuned fully and with LoRA at `RANKS`
   (+ the chat tokens' rows): the share of full fine-tuning's gain LoRA recovers, against its trainable share.
2. **The hyper-parameters**, one factor at a time around LoRA r=4, alpha=8 at the course model: learning
   rate, target modules (q,v vs all linear), dropout, and alpha's rule at r=16 (alpha/r with alpha fixed
   at 8, vs rsLoRA's alpha/sqrt(r), which at alpha=8 equals the trend's alpha=2r run).
3. **QLoRA**: the same LoRA on a 4-bit NF4 base (bitsandbytes, repack off), same seeds and steps.

Each run stores per-example answer losses on validation (the sweep is ranked there) and test (the trend and
QLoRA are reported there). Learning rates are the study's picks at the course model (`LR_FULL`, `LR_LORA`),
not re-tuned per width: the trend says so.

    python -m workshop_utils.finetune_grid       # or: make finetune-grid  (~1 h on 2 cores)

writes `data/finetune/grid_cpu.json` with its provenance; `finetune_report.load_grid` reads it.
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from . import provenance
from .config import Profile, get_profile
from .paths import artifacts_dir, repo_root

PROFILE = "cpu"  # the task, tokenizer and pre-training recipe the grid uses
ENTRY = "workshop_utils.finetune_grid"
SEEDS = (0, 1, 2)
MAX_STEPS, EVAL_EVERY, PATIENCE = 1000, 200, 3
WIDTHS = (64, 128, 256)  # d_model of the bases; the course model (cpu profile) is 128 wide
HEAD_DIM = 32  # heads = width / 32, kv heads = heads / 2, d_ff = 3 * width: the course model's shape
RANKS = (1, 4, 16)
LR_FULL, LR_LORA = 1e-3, 3e-3  # the cpu study's picks on validation at the course model
COURSE_WIDTH = 128


@dataclass(frozen=True)
class Point:
    """One configuration of the grid (trained once per seed)."""

    name: str
    width: int = COURSE_WIDTH
    r: int | None = 4  # None: full fine-tuning
    alpha: float = 8.0
    lr: float = LR_LORA
    targets: str = "all linear"
    dropout: float = 0.0
    quantized: bool = False  # the base in 4-bit NF4 (QLoRA)


def points() -> list[Point]:
    """Every configuration: the trend (each width x full + ranks), the one-factor sweep, QLoRA."""
    out = []
    for w in WIDTHS:
        out.append(Point(f"d{w} full", w, None, 0.0, LR_FULL))
        out += [Point(f"d{w} r{r}", w, r, 2.0 * r) for r in RANKS]  # alpha = 2r: the scale stays 2
    out += [
        Point("lr 1e-3", lr=1e-3),
        Point("lr 1e-2", lr=1e-2),
        Point("targets q,v", targets="q,v"),
        Point("dropout 0.1", dropout=0.1),
        Point("r16 alpha 8 (alpha/r)", r=16, alpha=8.0),
        Point("QLoRA r4", quantized=True),
    ]
    return out


def grid_path() -> Path:
    """Where the stored grid lives (committed)."""
    return repo_root() / "data" / "finetune" / f"grid_{PROFILE}.json"


def grid_inputs(base_hashes: dict[str, str]) -> dict[str, Any]:
    """What besides code the grid's numbers depend on."""
    import bitsandbytes

    profile = get_profile(PROFILE)
    return {"profile": PROFILE, "lm": repr(dict(profile.lm)), "sft": repr(dict(profile.sft)),
            "bases": base_hashes, "bitsandbytes": bitsandbytes.__version__}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Bases of other widths: module 03's recipe, cached like the course model
# ---------------------------------------------------------------------------------------------
def base_dir(width: int) -> Path:
    """Cache folder of a grid base (the course model's own folder at its width)."""
    name = "course_model" if width == COURSE_WIDTH else f"grid_base_d{width}"
    return artifacts_dir(PROFILE, name)


def file_sha256(path: Path) -> str:
    """sha256 of a file (a base's weights)."""
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def base_config(profile: Profile, width: int, vocab_size: int):
    """The course model's config at another width (same depth, head size and d_ff ratio)."""
    from .models import course_model_config

    if width % (2 * HEAD_DIM):
        raise ValueError(f"width {width} must be a multiple of {2 * HEAD_DIM} (heads of {HEAD_DIM}, GQA 2:1)")
    config = course_model_config(profile, vocab_size)
    heads = width // HEAD_DIM
    config.hidden_size, config.intermediate_size = width, 3 * width
    config.num_attention_heads, config.num_key_value_heads = heads, heads // 2
    config.head_dim = HEAD_DIM
    return config


def ensure_base(width: int) -> str:
    """Pre-train (once) the base of a width with module 03's recipe; return its weights' sha256."""
    from transformers import LlamaForCausalLM

    from .device import pick_device, seed_everything, torch_threads
    from .models import course_token_ids, course_train_config, load_course_model
    from .tokenizer import load_course_tokenizer
    from .training import train_lm

    profile, path = get_profile(PROFILE), base_dir(width)
    if width == COURSE_WIDTH:
        load_course_model(profile, show_progress=False)  # trains and caches it if absent
    elif not (path / "model.safetensors").is_file():
        tokenizer = load_course_tokenizer(profile)
        train_ids, val_ids = course_token_ids(profile, tokenizer)
        seed_everything(0)
        model = LlamaForCausalLM(base_config(profile, width, len(tokenizer)))
        with torch_threads(profile.setup.torch_threads):
            result = train_lm(model, train_ids, val_ids, course_train_config(profile),
                              pick_device(cpu_bf16=profile.lm.cpu_bf16), tokenizer, show_progress=False)  # fmt: skip
        model.save_pretrained(path, safe_serialization=True)
        (path / "train_result.json").write_text(json.dumps(result.to_json()))
    return file_sha256(path / "model.safetensors")


# ---------------------------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------------------------
def build_model(point: Point, seed: int, special_ids: list[int]) -> torch.nn.Module:
    """The model a point trains: its base (4-bit for QLoRA) with the point's trainable parameters."""
    from transformers import LlamaForCausalLM

    from . import lora

    if point.quantized:
        from .quant import load_course_model_4bit

        model = load_course_model_4bit(str(base_dir(point.width)))
    else:
        model = LlamaForCausalLM.from_pretrained(base_dir(point.width))
    if point.r is None:
        return model.requires_grad_(True)
    model.requires_grad_(False)
    torch.manual_seed(seed)  # LoRA's A matrices
    lora.apply_lora(model, point.r, point.alpha, lora.TARGET_SETS[point.targets], point.dropout)
    lora.train_token_rows(model, special_ids)
    return model


def _rounded(losses: dict[str, torch.Tensor]) -> dict[str, list[float]]:
    return {k: [round(x, 5) for x in v.tolist()] for k, v in losses.items()}


def run_point(point: Point, seed: int) -> dict[str, Any]:
    """Train one point at one seed (one CPU thread); score validation and test per example."""
    from transformers import LlamaForCausalLM

    from . import sft
    from .device import pick_device
    from .lora import trainable_parameters
    from .memory import measure_training_step
    from .quant import repacked_layers
    from .tokenizer import SPECIAL_TOKENS, load_course_tokenizer

    torch.set_num_threads(1)
    profile, device = get_profile(PROFILE), pick_device()
    tokenizer = load_course_tokenizer(profile)
    splits = sft.make_sft_splits(profile, 0)
    model = build_model(point, seed, tokenizer.convert_tokens_to_ids(SPECIAL_TOKENS))
    cfg = sft.sft_train_config(profile, seed, MAX_STEPS, point.lr, EVAL_EVERY, PATIENCE)
    peak = None  # 4-bit layers do not deep-copy: their memory is module 08's calculator's, not measured here
    if not point.quantized:
        feats = sft.prepare_features(splits.train[: cfg.batch_size], tokenizer, cfg.context).features
        x = sft.collate_padded(feats, tokenizer.pad_token_id)["input_ids"]  # (B, T): one real batch
        peak = measure_training_step(copy.deepcopy(model), x, x, "adamw").peak  # a throw-away copy
    result = sft.sft_train(model, tokenizer, splits.train, cfg, device, show_progress=False,
                           val_examples=splits.val)  # fmt: skip
    if point.quantized and repacked_layers(model):
        raise RuntimeError("4-bit layers were repacked during training: LoRA gradients were wrong")
    val = sft.answer_loss(model, tokenizer, splits.val, device, profile.sft.max_length)
    test = sft.answer_loss(model, tokenizer, splits.test, device, profile.sft.max_length)
    preds = sft.evaluate_sft(model, tokenizer, splits.test, device, profile.sft.max_new_tokens).predictions
    trainable, total = trainable_parameters(model)
    if point.quantized:  # 4-bit weights are packed two per byte: count the base's parameters, not its storage
        n_base = sum(p.numel() for p in LlamaForCausalLM.from_pretrained(base_dir(point.width)).parameters())
        total = (
            n_base + trainable
        )  # as trainable_parameters counts an fp32 LoRA model: base + adapters + rows
    steps, vals = result.curve("val_loss")
    return {
        "point": point.name, "seed": seed, "best_step": result.best_step, "steps_run": result.history[-1]["step"],
        "val_curve": [[s, round(v, 5)] for s, v in zip(steps, vals)], "val": _rounded(val), "test": _rounded(test),
        "exact_match": sum(p.strip() == e.answer.strip() for p, e in zip(preds, splits.test)) / len(preds),
        "trainable": trainable, "total": total, "percent": 100 * trainable / total,
        "seconds": round(result.seconds, 2), "peak_bytes": peak,
    }  # fmt: skip


def base_scores(width: int) -> dict[str, list[float]]:
    """Per-example test answer losses of a base before fine-tuning."""
    from transformers import LlamaForCausalLM

    from . import sft
    from .device import pick_device
    from .tokenizer import load_course_tokenizer

    profile = get_profile(PROFILE)
    model = LlamaForCausalLM.from_pretrained(base_dir(width)).eval()
    test = sft.answer_loss(model, load_course_tokenizer(profile), sft.make_sft_splits(profile, 0).test,
                           pick_device(), profile.sft.max_length)  # fmt: skip
    return _rounded(test)


# ---------------------------------------------------------------------------------------------
# The whole grid
# ---------------------------------------------------------------------------------------------
def _cost(point: Point) -> float:
    """Relative run time (the widest bases first, so two workers finish together)."""
    return (point.width / COURSE_WIDTH) ** 1.5 * (1.2 if point.quantized else 1.0)


def run_grid(workers: int = 2) -> tuple[dict[str, str], dict[str, Any]]:
    """Pre-train the bases, then every point at every seed; returns (base hashes, grid dict)."""
    hashes = {str(w): ensure_base(w) for w in WIDTHS}
    base = {str(w): base_scores(w) for w in WIDTHS}
    jobs = sorted(((p, s) for p in points() for s in SEEDS), key=lambda j: -_cost(j[0]))
    if workers <= 1:
        runs = [run_point(*j) for j in jobs]
    else:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            runs = list(pool.map(run_point, *zip(*jobs)))  # fresh interpreters: no OpenMP state inherited
    return hashes, {"points": [asdict(p) for p in points()], "base": base, "runs": runs}


def main(argv: list[str] | None = None) -> int:
    """CLI: run the grid and store it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="runs side by side, one thread each")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    code = provenance.record(ENTRY, {}, "make finetune-grid")  # the code that runs, recorded at the start
    hashes, grid = run_grid(args.workers)
    prov = {**code, "inputs": grid_inputs(hashes), "seconds": round(time.perf_counter() - t0, 1)}
    path = grid_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"provenance": prov, **grid}, separators=(",", ":")) + "\n")
    print(f"wrote {path} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
