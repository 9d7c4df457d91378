"""ZeRO-1 by hand: each rank keeps AdamW's moments for one slice of the flattened parameters only.

Gradients arrive already averaged (DDP all-reduce). Rank r updates its slice of the parameters with its
slice of m and v, then every rank broadcasts the slice it owns, so all ranks end with the same weights.
Optimizer state per rank: 2 x Ψ/N floats instead of 2 x Ψ. Tested equal to `torch.optim.AdamW`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.distributed as dist
import torch.nn.functional as F


class ShardedAdamW:
    """AdamW whose moments are sharded over the ranks (ZeRO stage 1, P_os); one flat slice per rank."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-3, betas=(0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01) -> None:  # fmt: skip
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError("params must contain at least one tensor that requires grad")
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.numel = sum(p.numel() for p in self.params)  # Ψ
        self.shard = math.ceil(self.numel / self.world)  # S: slice length, the last one padded
        like = self.params[0]
        self.m = torch.zeros(self.shard, dtype=like.dtype, device=like.device)  # (S,) first moment
        self.v = torch.zeros(self.shard, dtype=like.dtype, device=like.device)  # (S,) second moment
        self.t = 0

    def _flat(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        flat = torch.cat([t.reshape(-1) for t in tensors])  # (Ψ,)
        return F.pad(flat, (0, self.world * self.shard - self.numel))  # (N·S,)

    @torch.no_grad()
    def step(self) -> None:
        """One AdamW step on this rank's slice, then an exchange of slices (N broadcasts of S)."""
        self.t += 1
        b1, b2 = self.betas
        flat_p = self._flat(self.params)  # (N·S,) every rank's copy of the weights
        flat_g = self._flat([p.grad for p in self.params])  # (N·S,) averaged gradients
        lo, hi = self.rank * self.shard, (self.rank + 1) * self.shard
        p, g = flat_p[lo:hi], flat_g[lo:hi]  # (S,) the slice this rank owns
        p.mul_(1 - self.lr * self.weight_decay)  # decoupled weight decay
        self.m.lerp_(g, 1 - b1)
        self.v.mul_(b2).addcmul_(g, g, value=1 - b2)
        denom = (self.v.sqrt() / math.sqrt(1 - b2**self.t)).add_(self.eps)
        p.addcdiv_(self.m, denom, value=-self.lr / (1 - b1**self.t))
        for r in range(self.world):  # rank r sends its updated slice to everyone
            dist.broadcast(flat_p[r * self.shard : (r + 1) * self.shard], src=r)
        offset = 0
        for param in self.params:  # copy the full, updated vector back into the parameters
            param.copy_(flat_p[offset : offset + param.numel()].view_as(param))
            offset += param.numel()

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop (or zero) every parameter's gradient."""
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    def state_bytes(self) -> int:
        """Bytes of optimizer state this rank holds (its m and v slices)."""
        return self.m.nbytes + self.v.nbytes
