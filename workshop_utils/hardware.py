"""Accelerators the course prices work on: memory, 16-bit peak, memory bandwidth, each with its source.

The figures live in `data/published/hardware.json` (value, source, status), not in code, so a test can check
each one against its source and a reader sees where it came from. Peaks are dense tensor-core FLOP/s in the
card's 16-bit training precision (bf16, or fp16 on a T4): the 2:4-sparsity headline is half-real.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from .paths import repo_root

GB = 1e9  # vendor gigabytes are decimal


@dataclass(frozen=True)
class GPU:
    """One accelerator: what it holds, how fast it multiplies, how fast it reads its memory."""

    key: str  # e.g. "a100-80gb"
    name: str
    memory_gb: float  # nominal GB (1e9 bytes)
    peak_flops: float  # FLOP/s, dense 16-bit tensor core
    bandwidth: float  # bytes/s of GPU memory
    bf16: bool
    source: str

    @property
    def memory_bytes(self) -> float:
        """Memory in bytes."""
        return self.memory_gb * GB


@lru_cache(maxsize=1)
def catalogue() -> dict[str, GPU]:
    """Every GPU in data/published/hardware.json, by key."""
    raw = json.loads((repo_root() / "data" / "published" / "hardware.json").read_text())["gpus"]
    return {
        key: GPU(
            key,
            g["name"],
            float(g["memory_gb"]),
            g["peak_tflops"] * 1e12,
            g["bandwidth_gbs"] * GB,
            bool(g["bf16"]),
            g["source"],
        )  # fmt: skip
        for key, g in raw.items()
    }


def gpu(key: str) -> GPU:
    """The GPU called `key`; a clear error naming the valid keys otherwise."""
    known = catalogue()
    if not isinstance(key, str) or key not in known:
        raise ValueError(f"unknown GPU type {key!r}; valid types: {', '.join(known)}")
    return known[key]
