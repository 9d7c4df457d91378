"""Inference latency of LoRA: base model vs unmerged adapters (ours and PEFT) vs merged, in one run.

    .venv/bin/python benchmarks/bench_lora.py --profile ci      # writes benchmarks/results/lora_ci.{json,md}

The model is the profile's course-model architecture (random weights: latency does not depend on them)
plus LoRA r in {8, 64} on all linear layers. Forward passes without gradients on (batch, seq) token ids,
timed with torch.utils.benchmark (median of blocked runs). Expectation: merged == base (same matmuls);
unmerged pays two extra small matmuls per targeted layer. PEFT's unmerged LoRA is measured in the same run.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch
from torch.utils import benchmark

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.timing import machine, write_results  # noqa: E402
from workshop_utils.config import PROFILE_NAMES, get_profile  # noqa: E402
from workshop_utils.lora import TARGET_SETS, apply_lora, merge_lora  # noqa: E402
from workshop_utils.models import build_course_model  # noqa: E402

SHAPES = {"ci": (8, 64), "cpu": (16, 64), "gpu": (32, 256)}  # (batch, seq) per profile


def latency_ms(model: torch.nn.Module, x: torch.Tensor, min_run_time: float) -> float:
    """Median forward latency in ms (no grad)."""
    t = benchmark.Timer(
        "with torch.no_grad(): m(input_ids=x)", globals={"m": model.eval(), "x": x, "torch": torch}
    )
    return t.blocked_autorange(min_run_time=min_run_time).median * 1e3


def main(argv: list[str] | None = None) -> dict:
    """Measure every variant, write JSON + Markdown, return the results."""
    from peft import LoraConfig, get_peft_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="ci", choices=PROFILE_NAMES)
    ap.add_argument("--min-run-time", type=float, default=1.0)
    args = ap.parse_args(argv)
    profile = get_profile(args.profile)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    base = build_course_model(profile, seed=0).to(dev).eval()
    batch, seq = SHAPES[profile.name]
    x = torch.randint(0, profile.lm.vocab_size, (batch, seq), generator=torch.Generator().manual_seed(0)).to(
        dev
    )
    rows = {"base": latency_ms(base, x, args.min_run_time)}
    for r in (8, 64):
        ours = apply_lora(copy.deepcopy(base), r, 2 * r, TARGET_SETS["all linear"])
        peft_model = get_peft_model(copy.deepcopy(base), LoraConfig(r=r, lora_alpha=2 * r,
                                    target_modules=TARGET_SETS["all linear"], lora_dropout=0.0))  # fmt: skip
        rows[f"ours unmerged r={r}"] = latency_ms(ours, x, args.min_run_time)
        rows[f"PEFT unmerged r={r}"] = latency_ms(peft_model, x, args.min_run_time)
        rows[f"ours merged r={r}"] = latency_ms(merge_lora(ours), x, args.min_run_time)
        rows[f"PEFT merged r={r}"] = latency_ms(peft_model.merge_and_unload(), x, args.min_run_time)
    result = {"profile": profile.name, "batch": batch, "seq": seq, "device": dev, "machine": machine(),
              "latency_ms": rows, "ratio_to_base": {k: v / rows["base"] for k, v in rows.items()}}  # fmt: skip
    lines = [f"# LoRA inference latency ({profile.name}: batch {batch}, seq {seq}, {dev})", "",
             f"Measured {result['machine']['date']}, load average {result['machine']['load_average_1_5_15']} "
             "(a shared machine: compare rows within this run only).", "",
             "| variant | ms / forward | x base |", "|---|---|---|"]  # fmt: skip
    lines += [f"| {k} | {v:.3f} | {v / rows['base']:.2f} |" for k, v in rows.items()]
    write_results(ROOT / "benchmarks" / "results", f"lora_{profile.name}", result, lines)
    return result


if __name__ == "__main__":
    main()
