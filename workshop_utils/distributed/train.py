"""One training script, any scale: DDP, ZeRO-1/2/3 (FSDP2) on real `torch.distributed`.

One CPU machine, 2 ranks (gloo; what the notebook runs through `launch.py`):
    torchrun --nproc-per-node 2 --rdzv-backend c10d --rdzv-endpoint 127.0.0.1:0 \\
        -m workshop_utils.distributed.train --profile ci --strategies ddp,zero1,zero2,zero3 --out runs/05
One GPU node, every GPU (NCCL, the same code):
    torchrun --nproc-per-node gpu --rdzv-backend c10d --rdzv-endpoint 127.0.0.1:0 \\
        -m workshop_utils.distributed.train --profile gpu --out runs/05
Several nodes (run the same line on every node; HOST0 = the first node's address, reachable by all):
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST0:29500 --rdzv-id run05 \\
        -m workshop_utils.distributed.train --profile gpu --out runs/05

Every strategy runs in turn on the same process group; each rank writes `<out>/<label>_rank<r>.json`.
Strategies: `ddp` (DistributedDataParallel), `zero1` (DDP + torch's `ZeroRedundancyOptimizer`),
`zero1_hand` (DDP + our `ShardedAdamW`), `zero2` (FSDP2 `fully_shard(reshard_after_forward=False)`),
`zero3` (FSDP2 `fully_shard`). Append `+bf16` for bf16 compute: autocast for the DDP family, a
`MixedPrecisionPolicy(param_dtype=bf16, reduce_dtype=fp32)` for FSDP2.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ..config import get_profile
from .comm import CommCounter
from .zero1 import ShardedAdamW

STRATEGIES = ("ddp", "zero1", "zero1_hand", "zero2", "zero3")
ZERO_STAGE = {"ddp": 0, "zero1": 1, "zero1_hand": 1, "zero2": 2, "zero3": 3}


@dataclass(frozen=True)
class RunSpec:
    """What every rank trains: the course model of `profile`, `steps` AdamW steps on a global batch."""

    profile: str = "ci"
    steps: int = 3
    batch_size: int = 8  # global batch; each of N ranks takes batch_size / N rows
    context: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.1
    seed: int = 0


def parse_strategy(label: str) -> tuple[str, bool]:
    """'zero3+bf16' -> ('zero3', True); unknown names raise naming the valid ones."""
    name, _, suffix = label.partition("+")
    if name not in STRATEGIES or suffix not in ("", "bf16"):
        raise ValueError(f"unknown strategy {label!r}; valid: {STRATEGIES}, each optionally with '+bf16'")
    return name, suffix == "bf16"


def build_model(spec: RunSpec) -> nn.Module:
    """The course model (a small LlamaForCausalLM), identical on every rank for the same seed."""
    from ..models import build_course_model

    return build_course_model(get_profile(spec.profile), seed=spec.seed)


def synthetic_batch(spec: RunSpec, step: int, vocab_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded global batch from a fixed random 'bigram language' (90 % follow a table, 10 % noise)."""
    table = torch.randperm(vocab_size, generator=torch.Generator().manual_seed(spec.seed))  # (V,)
    gen = torch.Generator().manual_seed(spec.seed * 100_003 + step + 1)
    B, T = spec.batch_size, spec.context
    tokens = torch.empty(B, T + 1, dtype=torch.long)
    tokens[:, 0] = torch.randint(vocab_size, (B,), generator=gen)
    noise = torch.rand(B, T, generator=gen) < 0.1
    random_tokens = torch.randint(vocab_size, (B, T), generator=gen)
    for t in range(T):
        tokens[:, t + 1] = torch.where(noise[:, t], random_tokens[:, t], table[tokens[:, t]])
    return tokens[:, :-1], tokens[:, 1:]  # (B, T) inputs, (B, T) next-token targets


def lm_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over every position."""
    logits = model(input_ids=x).logits  # (B, T, V)
    return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))


def local_bytes(t: torch.Tensor) -> int:
    """Bytes this rank stores for a tensor: its local shard for a DTensor, the whole tensor otherwise."""
    if hasattr(t, "to_local"):
        t = t.to_local()
    return t.numel() * t.element_size()


class ForwardParamPeak:
    """Peak bytes of parameters materialised during forward, sampled before/after every leaf module.

    At each sample: bytes of the sharded (DTensor) parameters held at rest, plus every parameter
    currently registered as a plain tensor (DDP: all of them; FSDP2: the all-gathered units).
    FSDP2's transient all-gather buffers and autocast's bf16 weight cache are not parameters and are
    not counted.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model, self.peak = model, 0
        self.at_rest = sum(local_bytes(p) for p in model.parameters() if hasattr(p, "to_local"))
        leaves = [m for m in model.modules() if any(True for _ in m.parameters(recurse=False))]
        self.handles = [m.register_forward_pre_hook(self._sample) for m in leaves]
        self.handles += [m.register_forward_hook(self._sample) for m in leaves]

    def _sample(self, *_) -> None:
        plain = sum(
            p.numel() * p.element_size() for p in self.model.parameters() if not hasattr(p, "to_local")
        )
        self.peak = max(self.peak, self.at_rest + plain)

    def remove(self) -> None:
        """Detach the hooks."""
        for h in self.handles:
            h.remove()


def wrap(model: nn.Module, strategy: str, bf16: bool, spec: RunSpec, device: torch.device):
    """Parallelise `model` for `strategy`; return (model, optimizer)."""
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
    from torch.distributed.optim import ZeroRedundancyOptimizer
    from torch.nn.parallel import DistributedDataParallel as DDP

    hyper = {"lr": spec.lr, "weight_decay": spec.weight_decay}
    if strategy in ("ddp", "zero1", "zero1_hand"):
        ids = [device.index] if device.type == "cuda" else None
        # forward_sync_buffers=False: Llama's only buffer (RoPE inv_freq) is constant; a per-step C++
        # broadcast would otherwise travel outside our counter. Grads as bucket views: no second copy.
        model = DDP(model, device_ids=ids, forward_sync_buffers=False, gradient_as_bucket_view=True)
        model.register_comm_hook(None, allreduce_hook)  # same math as the C++ path, but visible to Python
        if strategy == "ddp":
            return model, torch.optim.AdamW(model.parameters(), **hyper)
        if strategy == "zero1":
            return model, ZeroRedundancyOptimizer(
                model.parameters(), optimizer_class=torch.optim.AdamW, **hyper
            )
        return model, ShardedAdamW(model.parameters(), **hyper)
    policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if bf16 else None
    kw = {"reshard_after_forward": strategy == "zero3", "mp_policy": policy or MixedPrecisionPolicy()}
    inner = model.model
    fully_shard(inner.embed_tokens, **kw)  # one unit per block, so ZeRO-3 gathers one block at a time
    for layer in inner.layers:
        fully_shard(layer, **kw)
    fully_shard(model.lm_head, **kw)
    fully_shard(model, **kw)  # the root: only the final norm is left in it
    return model, torch.optim.AdamW(model.parameters(), **hyper)


def shard_units(model: nn.Module) -> dict[str, int]:
    """Parameters per FSDP unit, as `wrap` cuts them: embedding, each layer, lm_head, the root's rest."""
    inner = model.model
    units = {"embed_tokens": sum(p.numel() for p in inner.embed_tokens.parameters())}
    units.update(
        {f"layers.{i}": sum(p.numel() for p in layer.parameters()) for i, layer in enumerate(inner.layers)}
    )
    units["lm_head"] = sum(p.numel() for p in model.lm_head.parameters())
    units["root"] = sum(p.numel() for p in model.parameters()) - sum(units.values())
    return units


def optimizer_state_bytes(opt) -> int:
    """Bytes of optimizer state tensors (Adam's m and v) this rank holds; step counters excluded."""
    if isinstance(opt, ShardedAdamW):
        return opt.state_bytes()
    inner = getattr(opt, "optim", opt)  # ZeroRedundancyOptimizer keeps its shard's optimizer in .optim
    return sum(
        local_bytes(t)
        for state in inner.state.values()
        for k, t in state.items()
        if k != "step" and torch.is_tensor(t)
    )


def run_strategy(label: str, spec: RunSpec, device: torch.device) -> dict:
    """Train `spec.steps` steps with one strategy; return this rank's report."""
    strategy, bf16 = parse_strategy(label)
    rank, world = dist.get_rank(), dist.get_world_size()
    if spec.batch_size % world:
        raise ValueError(f"batch_size {spec.batch_size} must be divisible by the world size {world}")
    model = build_model(spec).to(device)
    vocab = model.config.vocab_size
    psi = sum(p.numel() for p in model.parameters())
    units = shard_units(model)
    model, opt = wrap(model, strategy, bf16, spec, device)
    params_at_rest = sum(local_bytes(p) for p in model.parameters())
    peak = ForwardParamPeak(model)
    rows = slice(rank * spec.batch_size // world, (rank + 1) * spec.batch_size // world)
    autocast = bf16 and strategy in ("ddp", "zero1", "zero1_hand")
    losses, seconds, comm, elements, calls, grad_bytes = [], [], [], [], [], 0
    for step in range(spec.steps):
        x, y = synthetic_batch(spec, step, vocab)
        x, y = x[rows].to(device), y[rows].to(device)  # (B/N, T) this rank's share of the batch
        dist.barrier()
        t0 = time.perf_counter()
        with CommCounter() as counter:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                loss = lm_loss(model, x, y)
            loss.backward()
            grad_bytes = sum(local_bytes(p.grad) for p in model.parameters() if p.grad is not None)
            opt.step()
            opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - t0)
        losses.append(loss.item())
        comm.append(counter.snapshot())
        elements.append(counter.snapshot("elements"))
        calls.append(counter.snapshot("calls"))
    peak.remove()
    report = {
        "label": label,
        "strategy": strategy,
        "bf16": bf16,
        "zero_stage": ZERO_STAGE[strategy],
        "rank": rank,
        "world_size": world,
        "backend": dist.get_backend(),
        "device": str(device),
        "psi": psi,
        "shard_units": units,
        "spec": asdict(spec),
        "param_bytes": params_at_rest,
        "grad_bytes": grad_bytes,
        "optim_bytes": optimizer_state_bytes(opt),
        "peak_forward_param_bytes": peak.peak,
        "losses": losses,
        "step_seconds": seconds,
        "comm_bytes_per_step": comm,
        "comm_elements_per_step": elements,
        "comm_calls_per_step": calls,
    }
    del model, opt
    return report


def reference_losses(spec: RunSpec) -> list[float]:
    """Single-process training on the full global batch: what every strategy must reproduce.

    Runs on one thread, like every rank (torchrun sets OMP_NUM_THREADS=1): the same kernels, and no
    thread oversubscription on a busy machine (2 threads there were ~100x slower for this tiny model).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _reference_losses(spec)
    finally:
        torch.set_num_threads(threads)


def _reference_losses(spec: RunSpec) -> list[float]:
    model = build_model(spec)
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    losses = []
    for step in range(spec.steps):
        x, y = synthetic_batch(spec, step, model.config.vocab_size)  # (B, T)
        loss = lm_loss(model, x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="ci", choices=("ci", "cpu", "gpu"))
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--steps", type=int, help="default: the profile's distributed.steps")
    parser.add_argument("--batch-size", type=int, help="global batch; default: the profile's")
    parser.add_argument("--context", type=int, help="default: the profile's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--device", default="auto", choices=("auto", "cpu", "cuda"), help="auto: cuda if available"
    )
    parser.add_argument("--out", required=True, help="folder for the per-rank JSON reports")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before any collective gives up")
    parser.add_argument("--zero1-check-steps", type=int, default=0, help="also check ShardedAdamW vs AdamW")
    parser.add_argument("--fail-rank", type=int, default=-1, help="(tests) this rank raises after init")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Entry point for `torchrun ... -m workshop_utils.distributed.train`."""
    args = _parse_args(argv)
    sizes = get_profile(args.profile).distributed
    spec = RunSpec(
        profile=args.profile,
        steps=args.steps or sizes.steps,
        batch_size=args.batch_size or sizes.batch_size,
        context=args.context or sizes.context,
        seed=args.seed,
    )
    labels = [s.strip() for s in args.strategies.split(",") if s.strip()]
    for label in labels:
        parse_strategy(label)  # fail before any process group exists
    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    if cuda and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but CUDA is not available")
    timeout = datetime.timedelta(seconds=args.timeout)
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timeout)
    try:
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(device)
        if dist.get_rank() == args.fail_rank:
            raise RuntimeError(f"rank {args.fail_rank} failed on purpose (--fail-rank)")
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for label in labels:
            report = run_strategy(label, spec, device)
            path = out / f"{label.replace('+', '-')}_rank{report['rank']}.json"
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(report, indent=1))
            tmp.replace(path)
            if report["rank"] == 0:
                print(
                    f"{label:<12} loss {report['losses'][-1]:.4f}  {sum(report['step_seconds']):.2f} s",
                    flush=True,
                )
        if args.zero1_check_steps:  # in the same launch: rank start-up is the expensive part
            from .selfcheck import write_zero1_check

            write_zero1_check(out, args.zero1_check_steps, device)
        dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    from torch.distributed.elastic.multiprocessing.errors import record

    record(main)()
