"""Module 00's exercises: the profiles' token budgets, CPU bf16 autocast, the precision rule on a T4."""

from __future__ import annotations

from unittest import mock

import torch
from torch.utils import benchmark

from ..config import get_profile
from ..device import pick_device
from ..models import course_train_config
from . import Check, Passes


def solution_1() -> float:
    """Training tokens (steps x batch_size x context) of the gpu profile's course model over the cpu one's."""
    import pandas as pd

    lm = {p: get_profile(p).lm for p in ("cpu", "gpu")}
    tokens = {p: s.steps * s.batch_size * s.context for p, s in lm.items()}
    print(pd.DataFrame({p: dict(s) for p, s in lm.items()}))
    factor = tokens["gpu"] / tokens["cpu"]
    assert tokens["gpu"] > tokens["cpu"]
    print(f"training tokens: cpu {tokens['cpu']:,} -> gpu {tokens['gpu']:,} ({factor:.1f}x)")
    return factor


def solution_2(a: torch.Tensor, b: torch.Tensor, min_run_time: float) -> dict:
    """Median time of the same matmul in fp32 and under CPU bf16 autocast, measured in one run."""
    cpu_bf16 = pick_device(cpu_bf16=True, force_cpu=True)
    ac, bc = a[:1024, :1024].cpu(), b[:1024, :1024].cpu()  # at most 1024: CPUs are slow at 4096
    with cpu_bf16.autocast():
        t_bf16 = benchmark.Timer(stmt="a @ b", globals={"a": ac, "b": bc}).blocked_autorange(
            min_run_time=min_run_time
        )
    t_fp32 = benchmark.Timer(stmt="a @ b", globals={"a": ac, "b": bc}).blocked_autorange(
        min_run_time=min_run_time
    )
    speedup = t_fp32.median / t_bf16.median
    print(f"fp32 {t_fp32.median * 1e3:.2f} ms, bf16 autocast {t_bf16.median * 1e3:.2f} ms")
    print(f"bf16 speed-up on this CPU: {speedup:.2f}x (noisy on a shared machine)")
    return {
        "fp32_ms": t_fp32.median * 1e3,
        "bf16_ms": t_bf16.median * 1e3,
        "speedup": speedup,
        "faster": speedup > 1,
    }


def solution_3() -> dict:
    """Pretend to be a T4 by patching what pick_device asks CUDA, and read its choice."""
    with (
        mock.patch("torch.cuda.is_available", return_value=True),
        mock.patch("torch.cuda.get_device_capability", return_value=(7, 5)),
        mock.patch("torch.cuda.get_device_name", return_value="Tesla T4"),
    ):
        t4 = pick_device()
    print(f"T4 -> {t4.precision}, GradScaler {t4.use_grad_scaler}: {t4.reason}")
    # fp16 has 5 exponent bits: small gradients underflow to 0 unless the loss is scaled up first.
    return {"precision": t4.precision, "grad_scaler": t4.use_grad_scaler}


# ---------------------------------------------------------------------------------------- the checks
def expected_1() -> float:
    """The same ratio from the course model's training configs."""
    cfg = {p: course_train_config(get_profile(p)) for p in ("cpu", "gpu")}
    tokens = {p: c.steps * c.batch_size * c.context for p, c in cfg.items()}
    return tokens["gpu"] / tokens["cpu"]


TIMING_FACTOR = 3.0  # timings on a shared machine vary run to run; a ratio within 3x of ours is a measurement


def _timing_test(a: torch.Tensor, b: torch.Tensor, min_run_time: float):
    """A test of a timing answer: consistent in itself and within TIMING_FACTOR of the checker's own timing."""

    def test(answer) -> str | None:
        keys = ("fp32_ms", "bf16_ms", "speedup", "faster")
        if not isinstance(answer, dict) or any(k not in answer for k in keys):
            return f"expected a dict with keys {keys}"
        if not all(isinstance(answer[k], (int, float)) and answer[k] > 0 for k in keys[:3]):
            return "times and speed-up must be positive numbers"
        if abs(answer["speedup"] - answer["fp32_ms"] / answer["bf16_ms"]) > 0.02 * answer["speedup"]:
            return "'speedup' must be fp32_ms / bf16_ms (time without over time with autocast)"
        if answer["faster"] is not (answer["speedup"] > 1):
            return "'faster' must say whether your own speed-up is above 1"
        ours = _measure_quietly(a, b, min_run_time)
        if not 1 / TIMING_FACTOR < answer["speedup"] / ours < TIMING_FACTOR:
            return (
                f"the checker measured a speed-up of another order here (more than {TIMING_FACTOR:g}x apart)"
            )
        return None

    return test


def _measure_quietly(a: torch.Tensor, b: torch.Tensor, min_run_time: float) -> float:
    """The checker's own fp32 / bf16-autocast time ratio of the same matmul."""
    ac, bc = a[:1024, :1024].cpu(), b[:1024, :1024].cpu()
    timer = benchmark.Timer(stmt="a @ b", globals={"a": ac, "b": bc})
    fp32 = timer.blocked_autorange(min_run_time=min_run_time).median
    with pick_device(cpu_bf16=True, force_cpu=True).autocast():
        bf16 = timer.blocked_autorange(min_run_time=min_run_time).median
    return fp32 / bf16


def expected_2(a: torch.Tensor, b: torch.Tensor, min_run_time: float) -> Passes:
    """A test, not a value: a timing cannot be recomputed exactly."""
    return Passes(_timing_test(a, b, min_run_time))


def expected_3() -> dict:
    """What pick_device chooses when CUDA reports a pre-Ampere capability (7, 5)."""
    with (
        mock.patch.object(torch.cuda, "is_available", lambda: True),
        mock.patch.object(torch.cuda, "get_device_capability", lambda *_: (7, 5)),
        mock.patch.object(torch.cuda, "get_device_name", lambda *_: "T4"),
    ):
        d = pick_device()
    return {"precision": d.precision, "grad_scaler": d.use_grad_scaler}


CHECKS = {
    1: Check(
        expected_1,
        "a number: gpu training tokens / cpu training tokens",
        "1 % (one decimal will do)",
        rtol=0.01,
    ),
    2: Check(
        expected_2,
        "a dict {'fp32_ms': ..., 'bf16_ms': ..., 'speedup': fp32_ms / bf16_ms, 'faster': bool}",
        f"the speed-up within {TIMING_FACTOR:g}x of the checker's own timing (a shared machine is noisy)",
    ),
    3: Check(expected_3, "a dict {'precision': 'fp32' | 'bf16' | 'fp16', 'grad_scaler': bool}", "exact"),
}
