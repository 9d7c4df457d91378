"""Accelerators the course prices work on: memory, 16-bit peak, memory bandwidth, each with its source.

The figures live in `data/published/hardware.json` (one group of rows per GPU: name, memory_gb, peak_tflops,
bandwidth_gbs, bf16, each with its source and status), read through `published`, not typed in code, so a test
can check each one against its source and a reader sees where it came from. Peaks are dense tensor-core FLOP/s in the
card's 16-bit training precision (bf16, or fp16 on a T4): the 2:4-sparsity headline is half-real.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from . import published

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
    return {key: _gpu(key, rows) for key, rows in published.groups("hardware").items()}


def _gpu(key: str, rows: dict[str, published.Figure]) -> GPU:
    """One GPU from its group of published rows (TFLOP/s and GB/s converted to FLOP/s and bytes/s)."""
    sources = dict.fromkeys(f.source for f in rows.values())  # distinct, in file order
    return GPU(
        key,
        rows["name"].value,
        float(rows["memory_gb"].value),
        rows["peak_tflops"].value * 1e12,
        rows["bandwidth_gbs"].value * GB,
        bool(rows["bf16"].value),
        "; ".join(sources),
    )


def gpu(key: str) -> GPU:
    """The GPU called `key`; a clear error naming the valid keys otherwise."""
    known = catalogue()
    if not isinstance(key, str) or key not in known:
        raise ValueError(f"unknown GPU type {key!r}; valid types: {', '.join(known)}")
    return known[key]
