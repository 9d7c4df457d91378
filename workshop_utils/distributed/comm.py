"""Counting the bytes each rank hands to every collective, and the ZeRO paper's volume formulas.

How the count is made (honestly, and what it does not see):
- `CommCounter` patches the Python entry points of `torch.distributed` (`all_reduce`, `reduce_scatter_*`,
  `all_gather_*`, `broadcast`) for the duration of a `with` block. FSDP2 (`fully_shard`) calls
  `dist.all_gather_single` / `dist.reduce_scatter_single` through the module attribute, and
  `ZeroRedundancyOptimizer` calls `dist.broadcast`, so both are seen. DDP's reducer calls the process
  group from C++, out of Python's sight: the training script therefore registers DDP's own
  `allreduce_hook` comm hook (same arithmetic: divide by N, all-reduce sum), which goes through
  `dist.all_reduce` and is counted.
- The count is the *payload* each rank passes to the API: the tensor of an all-reduce or broadcast, the
  full (unsharded) input of a reduce-scatter, the full output of an all-gather. This is the unit of the
  ZeRO paper §7 ("an all-reduce moves 2Ψ", "a reduce-scatter or all-gather moves Ψ", per rank, with the
  (N-1)/N factor of a ring rounded to 1). `ring_bytes_sent` converts payloads to the bytes one rank sends
  under a ring algorithm; what goes on the wire depends on the backend's algorithm choice (gloo picks
  ring/bcube/... by size), which no Python hook can see.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from typing import Any

import torch
import torch.distributed as dist

# API name -> (counted as, index/keyword of the tensor whose size is the payload)
_PATCHED: dict[str, tuple[str, int, str]] = {
    "all_reduce": ("all_reduce", 0, "tensor"),
    "reduce_scatter_single": ("reduce_scatter", 1, "input"),
    "reduce_scatter_tensor": ("reduce_scatter", 1, "input"),
    "_reduce_scatter_base": ("reduce_scatter", 1, "input"),
    "all_gather_single": ("all_gather", 0, "output_tensor"),
    "all_gather_into_tensor": ("all_gather", 0, "output_tensor"),
    "_all_gather_base": ("all_gather", 0, "output_tensor"),
    "broadcast": ("broadcast", 0, "tensor"),
}
OPS = ("all_reduce", "reduce_scatter", "all_gather", "broadcast")
# Elements moved per payload element in the ZeRO paper's §7 accounting.
PAPER_VOLUME_FACTOR = {"all_reduce": 2, "reduce_scatter": 1, "all_gather": 1, "broadcast": 1}


class CommCounter:
    """`with CommCounter() as c:` counts payload bytes and calls per collective; `c.bytes`, `c.calls`."""

    def __init__(self) -> None:
        self.bytes: dict[str, int] = defaultdict(int)
        self.calls: dict[str, int] = defaultdict(int)
        self.elements: dict[str, int] = defaultdict(int)
        self._saved: dict[str, Any] = {}
        self._depth = 0  # an API that calls another patched API is counted once (outermost)

    def _wrap(self, name: str, fn):
        op, index, keyword = _PATCHED[name]

        @functools.wraps(fn)
        def counted(*args, **kwargs):
            tensor = kwargs.get(keyword, args[index] if len(args) > index else None)
            if self._depth == 0 and isinstance(tensor, torch.Tensor):
                self.bytes[op] += tensor.numel() * tensor.element_size()
                self.elements[op] += tensor.numel()
                self.calls[op] += 1
            self._depth += 1
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth -= 1

        return counted

    def __enter__(self) -> CommCounter:
        for name in _PATCHED:
            if hasattr(dist, name):
                self._saved[name] = getattr(dist, name)
                setattr(dist, name, self._wrap(name, self._saved[name]))
        return self

    def __exit__(self, *exc) -> None:
        for name, fn in self._saved.items():
            setattr(dist, name, fn)
        self._saved.clear()

    def snapshot(self, what: str = "bytes") -> dict[str, int]:
        """Bytes (or `what="elements"`, `"calls"`) per op so far, every op present, zeros included."""
        if what not in ("bytes", "elements", "calls"):
            raise ValueError(f"what must be 'bytes', 'elements' or 'calls', got {what!r}")
        counts = getattr(self, what)
        return {op: int(counts.get(op, 0)) for op in OPS}

    def reset(self) -> None:
        """Forget everything counted so far."""
        self.bytes.clear()
        self.calls.clear()
        self.elements.clear()


def ring_bytes_sent(op: str, payload_bytes: float, world_size: int) -> float:
    """Bytes one rank sends for a payload under a ring algorithm (all-reduce = reduce-scatter + all-gather)."""
    if op not in OPS:
        raise ValueError(f"op must be one of {OPS}, got {op!r}")
    if not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive int, got {world_size!r}")
    # a pipelined-ring broadcast: every rank but the last forwards the whole payload, (N-1)/N on average
    share = (world_size - 1) / world_size
    return payload_bytes * share * (2 if op == "all_reduce" else 1)


def paper_volume(bytes_per_op: dict[str, float]) -> float:
    """Communication volume in the ZeRO §7 sense (all-reduce counts twice), in the payload's units."""
    unknown = set(bytes_per_op) - set(OPS)
    if unknown:
        raise ValueError(f"unknown ops {sorted(unknown)}; valid: {OPS}")
    return float(sum(PAPER_VOLUME_FACTOR[op] * b for op, b in bytes_per_op.items()))


def zero_comm_volume_elements(psi: int, stage: int) -> int:
    """ZeRO §7 volume per step and rank, in elements: 2Ψ for DP, ZeRO-1 and ZeRO-2, 3Ψ for ZeRO-3."""
    if isinstance(stage, bool) or stage not in (0, 1, 2, 3):
        raise ValueError(f"stage must be one of (0, 1, 2, 3), got {stage!r}")
    if not isinstance(psi, int) or psi <= 0:
        raise ValueError(f"psi must be a positive int, got {psi!r}")
    return 3 * psi if stage == 3 else 2 * psi
