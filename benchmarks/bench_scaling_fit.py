"""Approach 3 (module 06's parametric fit) on the stored cpu sweep: seconds per L-BFGS start, on this CPU.

    .venv/bin/python benchmarks/bench_scaling_fit.py --profile cpu   # writes benchmarks/results/scaling_fit_cpu.{json,md}

Module 06 fits E + A/N^alpha + B/D^beta from every start of a grid (`profile.scaling.grid`: the paper's
4500 starts in the `gpu` profile, 243 in `cpu`, 32 in `ci`). The fit runs on the CPU whatever the
accelerator, so `workshop_utils.gpu_predict` prices the `gpu` profile's grid at the seconds per start
measured here (on the profile's grid, best of `--repeats`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.timing import best_time, machine, write_results  # noqa: E402
from workshop_utils import scaling as sc  # noqa: E402
from workshop_utils.config import PROFILE_NAMES, get_profile  # noqa: E402
from workshop_utils.sweep import load_sweep  # noqa: E402

SWEEP = ROOT / "data" / "scaling" / "sweep_cpu.json"  # the stored sweep module 06 fits


def main(argv: list[str] | None = None) -> dict:
    """Time one Approach-3 fit of the profile's grid on the stored sweep and write the results files."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="cpu", choices=PROFILE_NAMES)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    grid = get_profile(args.profile).scaling.grid
    records = load_sweep(SWEEP)["records"]  # refused if stale, as in module 06
    cols = [[r[k] for r in records] for k in ("params", "tokens", "loss")]
    seconds, fit = best_time(lambda: sc.fit_parametric(*cols, grid=grid), args.repeats)
    report = {
        "benchmark": "Approach-3 parametric fit (L-BFGS from every grid start) on the stored cpu sweep",
        "profile": args.profile,
        "grid": grid,
        "n_starts": fit.n_starts,
        "n_points": len(records),
        "machine": machine(),
        "seconds": seconds,
        "seconds_per_start": seconds / fit.n_starts,
    }
    load = report["machine"]["load_average_1_5_15"][0]
    lines = [
        f"# Approach-3 fit, profile `{args.profile}` grid `{grid}` ({fit.n_starts} starts, {len(records)} points)",
        "",
        f"{report['machine']['date']} · 1-min load average {load:.1f} (shared machine: absolute times are noisy)",
        "",
        f"Best of {args.repeats}: {seconds:.1f} s = {1e3 * report['seconds_per_start']:.1f} ms per start.",
    ]
    write_results(args.out, f"scaling_fit_{args.profile}", report, lines)
    return report


if __name__ == "__main__":
    main()
