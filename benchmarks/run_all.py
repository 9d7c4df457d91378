"""Run every benchmark (`benchmarks/bench_*.py`) in its own process, for one profile.

    python -m benchmarks.run_all --profile cpu      # what `make bench` runs (PROFILE=cpu by default)

Each benchmark writes its own results under benchmarks/results/. Benchmarks measure ratios inside one run
(ours vs the library, fp32 vs bf16) because absolute numbers move 3-5x with machine load.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    """Run each bench_*.py with --profile and report which ones failed."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="cpu", choices=["ci", "cpu", "gpu"])
    parser.add_argument("--only", nargs="*", help="benchmark names, e.g. bench_bpe")
    args = parser.parse_args()
    failed = []
    for path in sorted(HERE.glob("bench_*.py")):
        if args.only and path.stem not in args.only:
            continue
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(path), "--profile", args.profile], cwd=HERE.parent)
        print(f"{path.stem}: {'ok' if rc == 0 else f'FAILED ({rc})'} in {time.perf_counter() - t0:.0f} s")
        if rc:
            failed.append(path.stem)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
