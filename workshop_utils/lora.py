"""LoRA from scratch (Hu et al. 2021, arXiv:2106.09685): a frozen W plus a trainable low-rank update.

    h = W x + (alpha / r) * B A x        A: (r, d_in) random,  B: (d_out, r) zeros  ->  no-op at step 0

`apply_lora` swaps the targeted `nn.Linear`s of a model for `LoRALinear`s and freezes everything else;
`merge_lora` folds W + (alpha/r) B A back into plain `nn.Linear`s, so inference costs what the base did.
Tests check it equal to PEFT's LoRA (same weights -> same logits, same merged weights).
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn


class LoRALinear(nn.Module):
    """y = base(x) + (alpha/r) * dropout(x) A^T B^T, with `base` frozen."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps nn.Linear, got {type(base).__name__} (dequantize first)")
        if r <= 0:
            raise ValueError(f"LoRA rank r must be > 0, got {r}")
        if alpha <= 0:
            raise ValueError(f"LoRA alpha must be > 0, got {alpha}")
        self.base, self.r, self.alpha, self.scale = base, r, alpha, alpha / r
        self.base.requires_grad_(False)
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, dtype=base.weight.dtype))  # (r, d_in)
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, dtype=base.weight.dtype))  # (d_out, r)
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # PEFT's default init for A
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (..., d_in)
        update = self.dropout(x) @ self.lora_A.T @ self.lora_B.T  # (..., r) -> (..., d_out)
        return self.base(x) + self.scale * update

    def delta_weight(self) -> torch.Tensor:
        """The update this adapter adds to W: (alpha/r) B A, shape (d_out, d_in)."""
        return self.scale * self.lora_B @ self.lora_A

    def merged(self) -> nn.Linear:
        """A plain nn.Linear with W + (alpha/r) B A (the adapter folded in)."""
        out = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None)
        out = out.to(device=self.base.weight.device, dtype=self.base.weight.dtype)
        with torch.no_grad():
            out.weight.copy_(self.base.weight + self.delta_weight().to(self.base.weight.dtype))
            if self.base.bias is not None:
                out.bias.copy_(self.base.bias)
        return out


def _matches(name: str, target_modules: list[str] | str) -> bool:
    """PEFT's rule: a list matches module names by suffix; a string is a full-match regex."""
    if isinstance(target_modules, str):
        return re.fullmatch(target_modules, name) is not None
    return any(name == t or name.endswith(f".{t}") for t in target_modules)


def apply_lora(
    model: nn.Module, r: int, alpha: float, target_modules: list[str] | str, dropout: float = 0.0
) -> nn.Module:
    """Freeze `model` and wrap each targeted nn.Linear in a LoRALinear (in place; returns the model)."""
    if r <= 0 or alpha <= 0:
        raise ValueError(f"need r > 0 and alpha > 0, got r={r}, alpha={alpha}")
    if any(isinstance(m, LoRALinear) for m in model.modules()):
        raise ValueError("model already has LoRA layers: merge or remove them before applying again")
    model.requires_grad_(False)
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and _matches(n, target_modules)]
    if not names:
        linears = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
        raise ValueError(
            f"target_modules {target_modules!r} match no nn.Linear; linear names here: {linears}"
        )
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, LoRALinear(getattr(parent, child), r, alpha, dropout))
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every LoRALinear by a plain nn.Linear holding W + (alpha/r) B A (in place)."""
    names = [n for n, m in model.named_modules() if isinstance(m, LoRALinear)]
    if not names:
        raise ValueError("model has no LoRA layers to merge (already merged?)")
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, getattr(parent, child).merged())
    return model


def lora_parameter_count(model: nn.Module, r: int, target_modules: list[str] | str) -> int:
    """Trainable parameters LoRA would add: r * (d_in + d_out) per targeted linear (works on meta models)."""
    if r <= 0:
        raise ValueError(f"LoRA rank r must be > 0, got {r}")
    total = sum(
        r * (m.in_features + m.out_features)
        for n, m in model.named_modules()
        if isinstance(m, nn.Linear) and _matches(n, target_modules)
    )
    if total == 0:
        raise ValueError(f"target_modules {target_modules!r} match no nn.Linear")
    return total


def trainable_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())
