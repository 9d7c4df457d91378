"""Training throughput of the course model, as a fraction of a matmul peak measured in the same run.

    .venv/bin/python benchmarks/bench_training.py --profile ci      # writes benchmarks/results/training_ci.{json,md}

For each precision (fp32, and bf16 autocast) it measures the large-matmul peak of this machine, then trains
the course model of the profile (`profile.lm` sizes, random token ids: throughput does not depend on the
text) with the course loop `train_lm`, and reports tokens/s, achieved FLOP/s (6N + 12 L d T per token)
and MFU = achieved / peak of the same precision. Goal from issue 3: >= 60 % fp32 on a quiet machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from workshop_utils.config import PROFILE_NAMES, get_profile  # noqa: E402
from workshop_utils.device import DeviceInfo, pick_device  # noqa: E402
from workshop_utils.models import build_course_model  # noqa: E402
from workshop_utils.scale import matmul_params, measure_matmul_peak, mfu, model_flops_per_token  # noqa: E402
from workshop_utils.training import TrainConfig, train_lm  # noqa: E402

TOKENS_PER_RUN = 150_000  # enough steps to amortise warm-up, few enough for a shared 2-core machine


def machine() -> dict:
    """Where the numbers were measured, including how busy the machine was."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "load_average_1_5_15": list(os.getloadavg()),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def bench_precision(profile_name: str, device: DeviceInfo, peak_n: int) -> dict:
    """Matmul peak and training throughput of the profile's course model in one precision."""
    lm = get_profile(profile_name).lm
    dtype = device.autocast_dtype or torch.float32
    peak = max(measure_matmul_peak(dtype, n=n, repeats=5, device=device.device) for n in (peak_n, 2 * peak_n))
    model = build_course_model(get_profile(profile_name), lm.vocab_size, seed=0)
    steps = max(3, min(60, TOKENS_PER_RUN // (lm.batch_size * lm.context)))
    ids = torch.randint(0, lm.vocab_size, (200_000,), generator=torch.Generator().manual_seed(0))
    cfg = TrainConfig(
        steps=steps, lr=lm.lr, batch_size=lm.batch_size, context=lm.context, warmup=1, eval_batches=1
    )
    train_lm(
        model,
        ids,
        ids,
        TrainConfig(steps=2, lr=lm.lr, batch_size=lm.batch_size, context=lm.context, eval_batches=1),
        device,
        show_progress=False,
    )  # warm-up
    result = train_lm(model, ids, ids, cfg, device, show_progress=False)
    fpt = model_flops_per_token(model, lm.context)
    return {
        "precision": device.precision,
        "matmul_peak_gflops": peak / 1e9,
        "steps": steps,
        "tokens_per_s": result.tokens_per_s,
        "flops_per_token": fpt,
        "achieved_gflops": result.tokens_per_s * fpt / 1e9,
        "mfu": mfu(result.tokens_per_s, fpt, peak),
        "matmul_params": matmul_params(model),
    }


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark for one profile's model sizes and write the results files."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="ci", choices=PROFILE_NAMES)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args(argv)
    lm = get_profile(args.profile).lm
    peak_n = 4096 if torch.cuda.is_available() else 1024
    rows = [bench_precision(args.profile, pick_device(cpu_bf16=False), peak_n)]
    if not torch.cuda.is_available():
        rows.append(bench_precision(args.profile, pick_device(cpu_bf16=True), peak_n))
    report = {
        "benchmark": "course-model training throughput vs same-run matmul peak",
        "profile": args.profile,
        "model": {
            k: lm[k]
            for k in (
                "d_model",
                "n_layers",
                "n_heads",
                "n_kv_heads",
                "d_ff",
                "vocab_size",
                "context",
                "batch_size",
            )
        },
        "machine": machine(),
        "goal": "MFU >= 0.60 in fp32 on a quiet machine (issue 3)",
        "results": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"training_{args.profile}.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"# Training throughput, profile `{args.profile}` sizes",
        "",
        f"Model: {report['model']}; machine: {report['machine']['processor']}, {report['machine']['threads']} threads, "
        f"load average {report['machine']['load_average_1_5_15']} (shared machine: absolute numbers are noisy, "
        f"the ratio to the same-run peak is the number to read); {report['machine']['date']}.",
        "",
        "| precision | matmul peak (GFLOP/s) | tokens/s | FLOPs/token | achieved (GFLOP/s) | MFU |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['precision']} | {r['matmul_peak_gflops']:.1f} | {r['tokens_per_s']:,.0f} | {r['flops_per_token']:,.0f} "
            f"| {r['achieved_gflops']:.2f} | {r['mfu']:.1%} |"
        )
    (out / f"training_{args.profile}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return report


if __name__ == "__main__":
    main()
