"""Derive constraints-colab.txt from constraints.txt (or check it is up to date with --check).

Colab already has a CUDA build of torch and its CUDA libraries: the Colab file drops them so the setup
cell never reinstalls torch; every other tested pin is kept.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DROP_PREFIXES = ("torch==", "nvidia-", "triton==", "bitsandbytes==")
HEADER = "# Derived from constraints.txt by tools/lock.py: Colab keeps its own torch/CUDA/bitsandbytes.\n"


def colab_constraints(text: str) -> str:
    """The Colab constraints derived from the full constraints text."""
    keep = [
        ln for ln in text.splitlines() if ln and not ln.startswith("#") and not ln.startswith(DROP_PREFIXES)
    ]
    return HEADER + "\n".join(keep) + "\n"


def main() -> int:
    """Write (or with --check, verify) constraints-colab.txt."""
    want = colab_constraints((ROOT / "constraints.txt").read_text())
    target = ROOT / "constraints-colab.txt"
    if "--check" in sys.argv:
        if not target.exists() or target.read_text() != want:
            print("constraints-colab.txt is stale: run `python tools/lock.py`")
            return 1
        return 0
    target.write_text(want)
    return 0


if __name__ == "__main__":
    sys.exit(main())
