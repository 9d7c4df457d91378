"""Mixed precision: what fp32, fp16 and bf16 can hold, where fp16 breaks, and how loss scaling rescues it.

Sources (../shared/reference_figures.md §7.3, §7.4): IEEE 754 binary16 / bfloat16 layouts; Micikevicius et al.,
"Mixed Precision Training", arXiv:1710.03740 (fp32 master weights, loss scaling, fp32 accumulation).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

# Published layouts: (sign, exponent, fraction) bits. reference_figures §7.3.
LAYOUTS = {"fp32": (1, 8, 23), "fp16": (1, 5, 10), "bf16": (1, 8, 7)}
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class FormatInfo:
    """Bit layout and range of one floating-point format."""

    name: str
    sign_bits: int
    exponent_bits: int
    fraction_bits: int
    max: float
    min_normal: float
    min_subnormal: float
    eps: float


def format_from_bits(name: str, exponent_bits: int, fraction_bits: int) -> FormatInfo:
    """Range of an IEEE-style binary format from its bit counts (bias = 2^(e-1) - 1)."""
    bias = 2 ** (exponent_bits - 1) - 1
    return FormatInfo(
        name=name,
        sign_bits=1,
        exponent_bits=exponent_bits,
        fraction_bits=fraction_bits,
        max=(2 - 2.0**-fraction_bits) * 2.0**bias,  # largest exponent is reserved for inf/NaN
        min_normal=2.0 ** (1 - bias),
        min_subnormal=2.0 ** (1 - bias - fraction_bits),
        eps=2.0**-fraction_bits,
    )


def format_info(name: str) -> FormatInfo:
    """Layout and range of fp32/fp16/bf16 as torch reports them (torch.finfo, bit counts from the dtype)."""
    if name not in DTYPES:
        raise ValueError(f"format: unknown name {name!r}; valid: {', '.join(DTYPES)}")
    fi = torch.finfo(DTYPES[name])
    bits = torch.tensor([], dtype=DTYPES[name]).element_size() * 8
    fraction = -round(torch.log2(torch.tensor(fi.eps, dtype=torch.float64)).item())  # eps = 2^-fraction
    return FormatInfo(
        name, 1, bits - 1 - fraction, fraction, fi.max, fi.tiny, fi.smallest_normal * fi.eps, fi.eps
    )


def bit_string(x: float, name: str) -> str:
    """The bits of `x` stored in format `name`, as 'sign exponent fraction'."""
    if name not in DTYPES:
        raise ValueError(f"format: unknown name {name!r}; valid: {', '.join(DTYPES)}")
    t = torch.tensor([x], dtype=DTYPES[name])
    int_dtype = {"fp32": torch.int32, "fp16": torch.int16, "bf16": torch.int16}[name]
    raw = t.view(int_dtype).item() & (2 ** (8 * t.element_size()) - 1)
    s, e, f = LAYOUTS[name]
    bits = format(raw, f"0{s + e + f}b")
    return f"{bits[0]} {bits[1 : 1 + e]} {bits[1 + e :]}"


# ---------------------------------------------------------------------------------------------
# Demonstrations that run
# ---------------------------------------------------------------------------------------------
def overflow_demo() -> dict[str, float]:
    """65504 is fp16's largest value: 65520 rounds to inf, and inf - inf gives NaN. bf16 holds 1e5 fine."""
    x = torch.tensor([60000.0, 65519.0, 65520.0, 1e5])
    h = x.to(torch.float16)
    return {
        "fp16(65519)": h[1].item(),
        "fp16(65520)": h[2].item(),
        "fp16(60000)*2": (h[0] * 2).item(),
        "fp16 inf-inf": (h[2] - h[2]).item(),
        "bf16(1e5)": x[3].to(torch.bfloat16).item(),
    }


def underflow_fraction(grads: torch.Tensor, dtype: torch.dtype, scale: float = 1.0) -> float:
    """Fraction of non-zero fp32 values that become exactly zero when `grads * scale` is cast to `dtype`."""
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    nonzero = grads != 0
    cast = (grads * scale).to(dtype)
    return ((cast == 0) & nonzero).sum().item() / max(nonzero.sum().item(), 1)


def small_gradients(n: int = 100_000, seed: int = 0) -> torch.Tensor:
    """Log-uniform gradient magnitudes from 1e-10 to 1e-2 with random signs (like late-layer activations' grads)."""
    if n <= 0:
        raise ValueError(f"n must be > 0, got {n}")
    g = torch.Generator().manual_seed(seed)
    mags = 10 ** (torch.rand(n, generator=g, dtype=torch.float64) * 8 - 10)
    signs = torch.randint(0, 2, (n,), generator=g) * 2 - 1
    return (mags * signs).float()


def grad_scaler_demo(steps: int = 3, init_scale: float = 2.0**16) -> list[dict]:
    """A one-weight model, loss = (w·1e-4)·1e-4, whose true gradient 1e-8 underflows fp16 but not bf16.

    Each step runs the forward in fp16 and backpropagates `scaler.scale(loss)`; the scaler unscales into the
    fp32 master weight's grad, skips steps with inf/NaN and halves the scale. At 2^16 the scaled d loss
    (65536) is itself above fp16's max 65504: the first step overflows and is skipped; at 2^15 it works. Runs on CPU.
    """
    w = torch.nn.Parameter(torch.tensor(1.0))  # fp32 master weight
    opt = torch.optim.SGD([w], lr=0.0)  # lr 0: we only look at the gradients
    scaler = torch.amp.GradScaler("cpu", init_scale=init_scale)  # default: grow only after 2000 good steps

    def loss_in(dtype: torch.dtype) -> torch.Tensor:
        a = torch.tensor(1e-4, dtype=dtype)
        return (w.to(dtype) * a) * a  # forward in `dtype`; d loss / d w = 1e-8

    rows = []
    for step in range(steps):
        opt.zero_grad()
        plain = torch.autograd.grad(loss_in(torch.float16), w)[0].item()  # fp16 backward, no scaling
        bf16 = torch.autograd.grad(loss_in(torch.bfloat16), w)[0].item()  # bf16 backward, no scaling
        scale = scaler.get_scale()
        scaler.scale(loss_in(torch.float16)).backward()
        scaler.step(opt)
        scaler.update()
        rows.append({"step": step, "scale": scale, "fp16 grad": plain, "fp16 grad with GradScaler": w.grad.item(),
                     "bf16 grad": bf16})  # fmt: skip
    return rows


# ---------------------------------------------------------------------------------------------
# Train the same model in two precisions
# ---------------------------------------------------------------------------------------------
@dataclass
class PrecisionRun:
    """Loss curve, speed and memory of one training run."""

    name: str
    losses: list[float]
    seconds: float
    tokens_per_s: float
    peak_bytes: int


def train_in_precision(
    model: torch.nn.Module,
    ids: torch.Tensor,
    steps: int,
    batch_size: int,
    context: int,
    autocast_dtype: torch.dtype | None,
    lr: float = 3e-3,
    seed: int = 0,
    name: str = "",
) -> PrecisionRun:
    """Train `model` for `steps` AdamW steps on random windows of `ids`, with optional autocast.

    fp16 gets a GradScaler (as on a T4); the data order is seeded so two precisions see the same batches.
    Peak memory: `cuda.max_memory_allocated` on GPU, the memory module's live-tensor tracker on CPU
    (measured on the last step only, so the tracker's overhead does not slow the timed steps).
    """
    from .memory import LiveMemoryTracker, optimizer_tensors
    from .training import lm_batch

    for arg, v in (("steps", steps), ("batch_size", batch_size), ("context", context)):
        if not isinstance(v, int) or v <= 0:
            raise ValueError(f"{arg} must be a positive int, got {v!r}")
    dev = next(model.parameters()).device
    opt = torch.optim.AdamW(model.parameters(), lr=lr, foreach=False)
    scaler = torch.amp.GradScaler(dev.type, enabled=autocast_dtype == torch.float16)
    gen = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    model.train()

    def step() -> float:
        x, y = (t.to(dev) for t in lm_batch(ids, batch_size, context, gen))
        with torch.autocast(dev.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            logits = model(input_ids=x).logits  # (B, T, V)
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss.item()

    t0 = time.perf_counter()
    for _ in range(steps - 1):
        losses.append(step())
    seconds = time.perf_counter() - t0
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        losses.append(step())
        peak = torch.cuda.max_memory_allocated()
    else:
        with LiveMemoryTracker([*model.parameters(), *model.buffers(), *optimizer_tensors(opt)]) as tracker:
            losses.append(step())
        peak = tracker.peak
    timed = max(steps - 1, 1)
    return PrecisionRun(name, losses, seconds, timed * batch_size * context / max(seconds, 1e-9), peak)
