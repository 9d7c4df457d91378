"""Training throughput of the course model, as a fraction of a matmul peak measured in the same run.

    .venv/bin/python benchmarks/bench_training.py --profile ci      # writes benchmarks/results/training_ci.{json,md}

For each precision (fp32, and bf16 autocast) it measures the large-matmul peak of this machine, then trains
the course model of the profile (`profile.lm` sizes, random token ids: throughput does not depend on the
text) with the course loop `train_lm`, and reports tokens/s, achieved FLOP/s (6N + 12 L d T per token)
and MFU = achieved / peak of the same precision. Goal from issue 3: >= 60 % fp32 on a quiet machine.

    .venv/bin/python benchmarks/bench_training.py --profile cpu --compile   # the same through torch.compile

`--compile` trains `torch.compile(model)` (inductor, C++ on CPU) after a warm-up that pays the compile time,
and writes `training_<profile>_compiled.{json,md}`: how much of the gap to the peak is Python/eager overhead
(the course notebooks stay eager: compiling costs tens of seconds per notebook and hides the code).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.timing import machine, write_results  # noqa: E402
from workshop_utils.config import PROFILE_NAMES, get_profile  # noqa: E402
from workshop_utils.device import DeviceInfo, pick_device  # noqa: E402
from workshop_utils.models import build_course_model  # noqa: E402
from workshop_utils.scale import matmul_params, measure_matmul_peak, mfu, model_flops_per_token  # noqa: E402
from workshop_utils.training import TrainConfig, train_lm  # noqa: E402

TOKENS_PER_RUN = 150_000  # enough steps to amortise warm-up, few enough for a shared 2-core machine


def bench_precision(profile_name: str, device: DeviceInfo, peak_n: int, compile_model: bool = False) -> dict:
    """Matmul peak and training throughput of the profile's course model in one precision."""
    lm = get_profile(profile_name).lm
    dtype = device.autocast_dtype or torch.float32
    peak = max(measure_matmul_peak(dtype, n=n, repeats=5, device=device.device) for n in (peak_n, 2 * peak_n))
    model = build_course_model(get_profile(profile_name), lm.vocab_size, seed=0)
    trained = torch.compile(model) if compile_model else model
    steps = max(3, min(60, TOKENS_PER_RUN // (lm.batch_size * lm.context)))
    ids = torch.randint(0, lm.vocab_size, (200_000,), generator=torch.Generator().manual_seed(0))
    cfg = TrainConfig(
        steps=steps, lr=lm.lr, batch_size=lm.batch_size, context=lm.context, warmup=1, eval_batches=1
    )
    t0 = time.perf_counter()
    train_lm(
        trained,
        ids,
        ids,
        TrainConfig(steps=2, lr=lm.lr, batch_size=lm.batch_size, context=lm.context, eval_batches=1),
        device,
        show_progress=False,
    )  # warm-up (and the compile, with --compile)
    warmup_s = time.perf_counter() - t0
    result = train_lm(trained, ids, ids, cfg, device, show_progress=False)
    fpt = model_flops_per_token(model, lm.context)
    return {
        "precision": device.precision,
        "matmul_peak_gflops": peak / 1e9,
        "steps": steps,
        "tokens_per_s": result.tokens_per_s,
        "flops_per_token": fpt,
        "achieved_gflops": result.tokens_per_s * fpt / 1e9,
        "mfu": mfu(result.tokens_per_s, fpt, peak),
        "warmup_s": round(warmup_s, 1),
        "matmul_params": matmul_params(model),
    }


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark for one profile's model sizes and write the results files."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="ci", choices=PROFILE_NAMES)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--compile", action="store_true", help="train torch.compile(model) instead")
    args = parser.parse_args(argv)
    name = f"training_{args.profile}" + ("_compiled" if args.compile else "")
    lm = get_profile(args.profile).lm
    peak_n = 4096 if torch.cuda.is_available() else 1024
    rows = [bench_precision(args.profile, pick_device(cpu_bf16=False), peak_n, args.compile)]
    if not torch.cuda.is_available():
        rows.append(bench_precision(args.profile, pick_device(cpu_bf16=True), peak_n, args.compile))
    fp32 = rows[0]["mfu"] if rows[0]["precision"] == "fp32" else None
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
        "compiled": args.compile,
        "goal": "MFU >= 0.60 in fp32 on a quiet machine (issue 3)",
        "goal_met": None if fp32 is None else fp32 >= 0.60,
        "results": rows,
    }
    lines = [
        f"# Training throughput, profile `{args.profile}` sizes"
        + (", torch.compile" if args.compile else ""),
        "",
        f"Model: {report['model']}; machine: {report['machine']['processor']}, {report['machine']['threads']} threads, "
        f"load average {report['machine']['load_average_1_5_15']} (shared machine: absolute numbers are noisy, "
        f"the ratio to the same-run peak is the number to read); {report['machine']['date']}.",
        "",
        "| precision | matmul peak (GFLOP/s) | tokens/s | FLOPs/token | achieved (GFLOP/s) | MFU | warm-up s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['precision']} | {r['matmul_peak_gflops']:.1f} | {r['tokens_per_s']:,.0f} | {r['flops_per_token']:,.0f} "
            f"| {r['achieved_gflops']:.2f} | {r['mfu']:.1%} | {r['warmup_s']} |"
        )
    if report["goal_met"] is not None:
        lines += [
            "",
            f"Goal (fp32 MFU >= 60 % on a quiet machine): {'met' if report['goal_met'] else 'NOT met'}.",
        ]
    write_results(args.out, name, report, lines)
    return report


if __name__ == "__main__":
    main()
