"""Device, dtype and seeding: the one helper every notebook uses to pick where and how to compute.

Rule of the course: CUDA Ampere or newer -> bf16 autocast; older CUDA (a Colab T4) -> fp16 autocast with a
GradScaler (fp16's 5 exponent bits underflow small gradients, module 04); CPU -> fp32, with bf16 autocast
optional where it helps (about 1.2-1.5x faster on recent x86 CPUs).
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class DeviceInfo:
    """Where to compute and in which precision, with the reason in words."""

    device: torch.device
    autocast_dtype: torch.dtype | None  # None = plain fp32
    use_grad_scaler: bool
    reason: str

    @property
    def type(self) -> str:
        """'cuda' or 'cpu'."""
        return self.device.type

    @property
    def precision(self) -> str:
        """Short name of the compute precision: fp32, bf16 or fp16."""
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.autocast_dtype]

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast context for forward passes (a no-op in fp32)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A GradScaler that is enabled only when fp16 needs it."""
        return torch.amp.GradScaler(self.device.type, enabled=self.use_grad_scaler)


def pick_device(cpu_bf16: bool = False, force_cpu: bool = False) -> DeviceInfo:
    """Choose device and mixed-precision mode by the course rule (see module docstring)."""
    if torch.cuda.is_available() and not force_cpu:
        major, _ = torch.cuda.get_device_capability()
        name = torch.cuda.get_device_name()
        if major >= 8:
            return DeviceInfo(
                torch.device("cuda"), torch.bfloat16, False, f"{name}: Ampere+ -> bf16 autocast"
            )
        return DeviceInfo(
            torch.device("cuda"), torch.float16, True, f"{name}: pre-Ampere -> fp16 autocast + GradScaler"
        )
    if cpu_bf16:
        return DeviceInfo(torch.device("cpu"), torch.bfloat16, False, "CPU: bf16 autocast (faster matmuls)")
    return DeviceInfo(torch.device("cpu"), None, False, "CPU: fp32")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so the same profile gives the same numbers."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def generator(seed: int) -> torch.Generator:
    """A private CPU torch.Generator, so sampling data does not disturb the global RNG."""
    g = torch.Generator()
    g.manual_seed(seed)
    return g


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with `n` intra-op CPU threads (None: unchanged), then restore the previous count.

    A 0.2M-parameter model's matmuls are too small to split well: on a 2-core machine loaded by other jobs one
    thread ran 200 ci SFT steps in ~5 s where two threads took ~57 s (two noisy runs); on a quiet machine two
    threads were ~1.1-1.4x faster. One thread trades a little speed for robustness to contention.
    """
    if n is not None and n < 1:
        raise ValueError(f"n must be a thread count >= 1 or None, got {n}")
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
