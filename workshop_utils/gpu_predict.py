"""Predicted wall time of every notebook's `gpu` profile on a T4, an A100 and an H100: counted FLOPs, published peaks.

    python -m workshop_utils.gpu_predict              # the table (seconds per notebook, alone and in course order)
    python -m workshop_utils.gpu_predict --parts      # ... with every part of every notebook

A part of a notebook (`gpu_workloads.workloads`) takes, on a GPU,

    max(FLOPs / (peak x utilisation), host round trips x step floor)      or its measured CPU seconds,

and a notebook takes the sum of its parts; "alone" includes re-building what it needs from module 03,
"in course order" finds it cached. Every GPU time here is a *prediction*, not a measurement (until
`tools/run_gpu_profile.py` has run on a GPU). The assumptions, each computed from a stored figure:

- Peaks: dense 16-bit tensor-core FLOP/s from data/published/hardware.json (T4 fp16, A100/H100 bf16) and
  fp32 CUDA-core FLOP/s from data/published/gpu_throughput.json (runs without autocast: module 04's fp32 run).
- 16-bit utilisation (`mfu_16bit`): nanoGPT's character-level Shakespeare GPT (6 layers, d 384, context 256,
  batch 64: the course model's shape) trains 5000 steps and evaluates 21 x 400 batches in "about 3 minutes"
  on one A100 (its README), which the course counter turns into an MFU; the course loop runs eager, so that
  MFU is scaled by nanoGPT's measured eager/compiled iteration times (250 -> 135 ms). The same share of the
  peak is assumed on every GPU: on a T4 the longer kernels hide launch overhead better (conservative there),
  on an H100 small models are more overhead-bound, which the step floor below catches.
- fp32 utilisation (`mfu_fp32`): the share of the fp32 matmul peak the course model's fp32 training reached on
  the course CPU (benchmarks/results/training_cpu.json), an in-house ratio for the same model and loop.
- Step floor (`step_floor_s`): a training step cannot take less than the host's Python and dispatch work;
  the fastest step of the stored cpu sweep (data/scaling/sweep_cpu.json: 1-layer models, one CPU thread,
  compute included) bounds it from above.
- The CPU side is the course machine's (2 cores, as a Colab T4 runtime); see `gpu_workloads` for its rates.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from functools import cache

from . import published
from .config import BUDGET_SECONDS
from .course import MODULES
from .gpu_workloads import FORWARD_SHARE, Work, results_file, workloads
from .hardware import catalogue, gpu
from .params import build_on_meta
from .paths import repo_root
from .scale import model_flops_per_token

GPUS = ("t4-16gb", "a100-80gb", "h100-80gb")  # the three: Colab's T4, an A100 and an H100
T4 = "t4-16gb"
BUDGET_S = BUDGET_SECONDS["gpu"]  # per notebook on a T4 (the tests check the predictions against it)


@dataclass(frozen=True)
class Assumptions:
    """The stated utilisations and step floor every prediction uses (see the module docstring)."""

    mfu_16bit: float
    mfu_fp32: float
    step_floor_s: float


def fp32_peak(key: str) -> float:
    """fp32 (CUDA-core) peak FLOP/s of GPU `key`; a clear error naming the GPUs that have one."""
    rows = published.group("gpu_throughput", "fp32_peak")
    if not isinstance(key, str) or key not in rows:
        raise ValueError(
            f"gpu: no fp32 peak for {key!r} in data/published/gpu_throughput.json; valid: {', '.join(rows)}"
        )
    return rows[key].value * 1e12


def check_gpu(key: str) -> str:
    """`key` if it can be predicted for (16-bit and fp32 peaks known), else a clear error naming the valid keys."""
    valid = [k for k in catalogue() if k in published.group("gpu_throughput", "fp32_peak")]
    if not isinstance(key, str) or key not in valid:
        raise ValueError(f"gpu: unknown or unpriced GPU {key!r}; valid: {', '.join(valid)}")
    return key


def nanogpt_mfu() -> float:
    """MFU of nanoGPT's Shakespeare-char run on one A100 (README: about 3 minutes), by the course counter."""
    from transformers import GPT2Config

    n = {k: f.value for k, f in published.group("gpu_throughput", "nanogpt_char").items()}
    config = GPT2Config(vocab_size=n["vocab_size"], n_positions=n["block_size"], n_embd=n["n_embd"],
                        n_layer=n["n_layer"], n_head=n["n_head"], bos_token_id=None, eos_token_id=None)  # fmt: skip
    fpt = model_flops_per_token(build_on_meta(config), n["block_size"])
    tokens = n["batch_size"] * n["block_size"]
    n_evals = n["max_iters"] // n["eval_interval"] + 1  # at iterations 0, 250, ..., 5000
    eval_batches = n_evals * 2 * n["eval_iters"]  # each evaluation runs the train and the val split
    flops = fpt * tokens * (n["max_iters"] + FORWARD_SHARE * eval_batches)
    return flops / (60.0 * n["minutes"]) / gpu(n["gpu"]).peak_flops


def eager_mfu() -> float:
    """nanoGPT's MFU without torch.compile: scaled by its README's compiled/eager iteration times."""
    c = published.group("gpu_throughput", "nanogpt_compile")
    return nanogpt_mfu() * c["compiled_ms"].value / c["eager_ms"].value


def fp32_mfu() -> float:
    """The course model's fp32 training FLOP/s over the same run's fp32 matmul peak (benchmarks/results)."""
    rows = [r for r in results_file("training_cpu")["results"] if r["precision"] == "fp32"]
    if not rows:
        raise ValueError(
            "no fp32 row in benchmarks/results/training_cpu.json: run bench_training.py --profile cpu"
        )
    return float(rows[0]["mfu"])


def step_floor_s() -> float:
    """The fastest training step of the stored cpu sweep (seconds), an upper bound of a step's host cost."""
    records = json.loads((repo_root() / "data" / "scaling" / "sweep_cpu.json").read_text())["records"]
    return min(r["seconds"] / r["steps"] for r in records)


@cache
def assumptions() -> Assumptions:
    """The three stated assumptions, computed from the stored figures."""
    return Assumptions(eager_mfu(), fp32_mfu(), step_floor_s())


def part_seconds(work: Work, key: str, a: Assumptions | None = None) -> float:
    """Predicted seconds of one part on GPU `key`."""
    a = a or assumptions()
    if work.cpu_s:
        return work.cpu_s
    if work.fp32:
        compute = work.flops / (fp32_peak(key) * a.mfu_fp32)
    else:
        compute = work.flops / (gpu(key).peak_flops * a.mfu_16bit)
    return max(compute, work.steps * a.step_floor_s)


@cache
def _workloads() -> dict[str, list[Work]]:
    """The gpu profile's workloads (built once: they read files and build meta models)."""
    return workloads()


def predict(key: str = T4, alone: bool = True) -> dict[str, float]:
    """Predicted seconds per notebook on GPU `key` (alone: with the rebuild of module 03's outputs)."""
    check_gpu(key)
    return {
        nb: sum(part_seconds(w, key) for w in parts if alone or not w.rebuild)
        for nb, parts in _workloads().items()
    }


def table(gpus: tuple[str, ...] = GPUS) -> list[dict]:
    """One row per notebook: predicted seconds alone and in course order on each GPU, and the T4 verdict."""
    for key in gpus:
        check_gpu(key)
    alone = {k: predict(k, True) for k in gpus}
    in_course = {k: predict(k, False) for k in gpus}
    rows = []
    for m in MODULES:
        row = {"notebook": m.notebook}
        for k in gpus:
            row[f"{k} alone s"] = round(alone[k][m.notebook], 1)
            row[f"{k} in course s"] = round(in_course[k][m.notebook], 1)
        if T4 in gpus:
            row[f"T4 alone within {BUDGET_S} s"] = alone[T4][m.notebook] <= BUDGET_S
        rows.append(row)
    return rows


def parts_table(notebook: str, gpus: tuple[str, ...] = GPUS) -> list[dict]:
    """Every part of one notebook with its FLOPs and predicted seconds per GPU."""
    if notebook not in _workloads():
        raise ValueError(f"notebook: {notebook!r}; valid: {', '.join(_workloads())}")
    rows = []
    for w in _workloads()[notebook]:
        seconds = {f"{k} s": round(part_seconds(w, check_gpu(k)), 1) for k in gpus}
        rows.append({"part": w.part, "GFLOPs": round(w.flops / 1e9, 1), "rebuild": w.rebuild, **seconds})
    return rows


def markdown(rows: list[dict]) -> str:
    """A markdown table of `rows` (dicts with the same keys)."""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the predicted table (and, with --parts, every notebook's parts)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gpus", nargs="*", default=list(GPUS), help=f"GPU keys (default: {' '.join(GPUS)})")
    parser.add_argument("--parts", action="store_true", help="also list every part of every notebook")
    args = parser.parse_args(argv)
    gpus = tuple(check_gpu(k) for k in args.gpus)
    a = assumptions()
    print(f"PREDICTED seconds, gpu profile (not measured): 16-bit MFU {a.mfu_16bit:.1%}, fp32 MFU {a.mfu_fp32:.1%}, "
          f"step floor {1e3 * a.step_floor_s:.1f} ms\n")  # fmt: skip
    print(markdown(table(gpus)))
    if args.parts:
        for nb in _workloads():
            print(f"\n{nb}\n{markdown(parts_table(nb, gpus))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
