"""Small torchrun workloads that check the machinery without a model (fast: torch only).

torchrun --nproc-per-node 2 -m workshop_utils.distributed.selfcheck zero1 --out OUT
    ShardedAdamW vs torch.optim.AdamW for --steps steps; each rank writes OUT/zero1-check.r<r>.json
... selfcheck fail --out OUT     rank 1 raises while rank 0 waits in an all-reduce (launcher tests)
... selfcheck hang --out OUT     every rank sleeps (timeout / interrupt tests)
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

import torch
import torch.distributed as dist

from .zero1 import ShardedAdamW

SHAPES = ((7, 5), (13,), (3, 4, 2), (1,))  # 73 elements: not divisible by 2 or 4, so padding is exercised


def rank_gradients(step: int, rank: int, shapes=SHAPES) -> list[torch.Tensor]:
    """The gradients rank `rank` computes at `step` (seeded, different on every rank)."""
    gen = torch.Generator().manual_seed(1000 * step + rank)
    return [torch.randn(s, generator=gen) for s in shapes]


def zero1_check(steps: int, hyper: dict, device: torch.device | None = None) -> dict:
    """Train the same tensors with ShardedAdamW (sharded) and AdamW (full); report the largest difference."""
    rank, world = dist.get_rank(), dist.get_world_size()
    device = device or torch.device("cpu")  # NCCL needs CUDA tensors
    gen = torch.Generator().manual_seed(0)
    init = [torch.randn(s, generator=gen).to(device) for s in SHAPES]
    sharded = [t.clone().requires_grad_() for t in init]
    full = [t.clone().requires_grad_() for t in init]
    opt_sharded = ShardedAdamW(sharded, **hyper)
    opt_full = torch.optim.AdamW(full, **hyper)
    for step in range(steps):
        for p, g in zip(sharded, rank_gradients(step, rank)):
            p.grad = g.to(device) / world
            dist.all_reduce(p.grad)  # the averaged gradient, as DDP would leave it
        mean = [torch.stack(gs).mean(0) for gs in zip(*(rank_gradients(step, r) for r in range(world)))]
        for p, g in zip(full, mean):
            p.grad = g.to(device)
        opt_sharded.step()
        opt_full.step()
    diff = max((a - b).abs().max().item() for a, b in zip(sharded, full))
    full_state = sum(t.nbytes for s in opt_full.state.values() for k, t in s.items() if k != "step")
    return {"rank": rank, "world_size": world, "steps": steps, "max_abs_diff": diff,
            "sharded_state_bytes": opt_sharded.state_bytes(), "full_state_bytes": full_state}  # fmt: skip


def write_zero1_check(out: str | Path, steps: int, device: torch.device | None = None) -> dict:
    """Run `zero1_check` on this rank and write its report to `<out>/zero1-check.r<rank>.json`."""
    report = zero1_check(steps, {"lr": 1e-2, "weight_decay": 0.1}, device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"zero1-check.r{report['rank']}.json").write_text(json.dumps(report))
    return report


def main(argv: list[str] | None = None) -> None:
    """Entry point for torchrun."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=("zero1", "fail", "hang"))
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--marker", default="", help="(tests) a unique string to find leftover processes by")
    args = parser.parse_args(argv)
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
    try:
        if args.mode == "zero1":
            write_zero1_check(args.out, args.steps)
        elif args.mode == "fail":
            if dist.get_rank() == 1:
                time.sleep(0.5)  # let rank 0 enter its all-reduce first
                raise RuntimeError("rank 1 failed on purpose (selfcheck fail)")
            dist.all_reduce(torch.ones(1))  # rank 0 waits here for a peer that never comes
        else:
            time.sleep(600)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    from torch.distributed.elastic.multiprocessing.errors import record

    record(main)()
