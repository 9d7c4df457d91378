"""Module 09's arithmetic: FLOPs and GPU-hours, fine-tuning memory, the optimal pre-training size, serving.

Memory comes from module 04 (`memory`), adapters and NF4 from module 08 (`lora`, `quant`), compute from 6ND
(module 03, `scale`), the compute-optimal size from module 06's law (`scaling`). Whatever is neither a
published figure nor the user's input is an `Assumptions` field whose default says where it comes from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..hardware import GPU, gpu
from ..lora import TARGET_SETS, lora_parameter_count
from ..memory import estimate_memory, kv_cache_bytes
from ..quant import LORA_STATE_BYTES, storage_bytes
from ..scale import SECONDS_PER_HOUR, llama2_runs
from ..scaling import CHINCHILLA_TEX, ChinchillaLaw
from .inputs import Scenario, base_model, fig

SECONDS_PER_DAY = 86400.0
MAX_TENSOR_PARALLEL = 8  # one node: a replica that needs more GPUs than this "does not fit"
ADAM_BYTES = 8  # fp32 Adam m and v per adapter parameter (the last 4 + 4 of quant.LORA_STATE_BYTES)
ACT = "hf-llama"  # module 04's activation model of HF LLaMA with SDPA (no s x s scores kept)


def llama2_7b_mfu() -> float:
    """MFU implied by Llama-2-7B's pre-training: 6ND over 184,320 A100-hours at 312 TFLOPS (module 03)."""
    return llama2_runs()[0].mfu


def alpaca_mfu() -> float:
    """MFU implied by Alpaca's full fine-tune (52K x 3 epochs x 512 tokens, 8 A100 x 3 h): an upper bound,
    since examples shorter than the 512-token maximum do less work in the same hours."""
    tokens = fig("alpaca_examples") * fig("alpaca_epochs") * fig("alpaca_max_length")
    flops = training_flops_per_token(fig("alpaca_params"), "full") * tokens
    return flops / (fig("alpaca_gpus") * fig("alpaca_hours") * SECONDS_PER_HOUR * gpu("a100-80gb").peak_flops)


@dataclass(frozen=True)
class Assumptions:
    """Numbers that are neither published nor the user's scenario; each default says where it comes from."""

    pretrain_mfu: float = field(default_factory=llama2_7b_mfu)  # CPT, scratch, prefill: Llama-2-7B's
    # SFT jobs: Alpaca's (short sequences, small batches)
    finetune_mfu: float = field(default_factory=alpaca_mfu)
    bandwidth_efficiency: float = 0.6  # share of peak memory bandwidth a decode step reads at (an assumption)
    headroom: float = 0.9  # share of GPU memory a plan may fill (CUDA context, fragmentation)
    peak_to_mean: float = 2.0  # busiest-hour traffic over the day's mean
    lora_r: int = 16
    lora_targets: str = "all linear"
    law: ChinchillaLaw = CHINCHILLA_TEX  # module 06

    def __post_init__(self) -> None:
        for f in ("pretrain_mfu", "finetune_mfu", "bandwidth_efficiency", "headroom"):
            if not 0 < getattr(self, f) <= 1:
                raise ValueError(f"{f} must be in (0, 1], got {getattr(self, f)!r}")
        if self.lora_r <= 0 or self.lora_targets not in TARGET_SETS:
            raise ValueError(f"lora_r must be > 0 and lora_targets one of {list(TARGET_SETS)}")


def adapter_params(model: str, r: int, targets: str) -> int:
    """LoRA parameters on `targets` at rank r (module 08's counter on the meta model)."""
    return lora_parameter_count(base_model(model)[1], r, TARGET_SETS[targets])


def training_flops_per_token(n_params: float, method: str, adapter: float = 0.0) -> float:
    """Model FLOPs per trained token: forward 2N, backward 2N for activation gradients, 2N for weight gradients.

    Full training needs all three (6N, module 03). LoRA freezes W, so no weight gradients: 4N plus 6 per
    adapter parameter. Recomputation under checkpointing is not model FLOPs: it shows up as a lower MFU.
    """
    if method == "full":
        return 6.0 * n_params
    if method == "lora":
        return 4.0 * n_params + 6.0 * adapter
    raise ValueError(f"method must be 'full' or 'lora', got {method!r}")


def finetune_bytes(model: str, method: str, batch: int, seq: int, a: Assumptions, n_gpus: int = 1,
                   zero_stage: int = 0, paged: bool = False) -> float:  # fmt: skip
    """Peak bytes per GPU to fine-tune: 'full' (module 04, mixed AdamW, ZeRO), 'lora' or 'qlora' (module 08).

    `paged=True`: the adapters' Adam states live in CPU memory under pressure (QLoRA's paged optimizers).
    """
    arch, meta = base_model(model)
    if method == "full":
        return estimate_memory(
            arch, "mixed", "adamw", batch, seq, "full", zero_stage, n_gpus, activation_model=ACT
        ).peak
    if method not in ("lora", "qlora"):
        raise ValueError(f"method must be 'full', 'lora' or 'qlora', got {method!r}")
    n = arch.n_params
    adapters = adapter_params(model, a.lora_r, a.lora_targets) * (
        LORA_STATE_BYTES - (ADAM_BYTES if paged else 0)
    )
    if method == "lora":
        weights = 2.0 * n
    else:  # NF4 + double quantisation on the matmul weights; embeddings, norms and LM head stay 16-bit
        n_linear = arch.matmul_params - arch.lm_head_params
        weights = storage_bytes(n_linear, double=True) + 2.0 * (n - n_linear)
    frozen = estimate_memory(
        arch, "bf16", "none", batch, seq, "full", activation_model=ACT
    )  # no grads, no states
    return weights + adapters + frozen.activations + frozen.transient


def chinchilla_tokens(n_params: float, law: ChinchillaLaw = CHINCHILLA_TEX) -> float:
    """Tokens at which N is the compute-optimal size: C with N_opt(C) = N, then D = C / 6N (module 06)."""
    compute = 6.0 * (n_params / law.G) ** (1.0 / law.a)
    return compute / (6.0 * n_params)


def gpu_hours(
    n_params: float, tokens: float, method: str, device: GPU, mfu: float, adapter: float = 0.0
) -> float:
    """GPU-hours to train `tokens` by `method` ('full' or 'lora') at utilisation `mfu` of `device`'s peak."""
    if not 0 < mfu <= 1 or tokens < 0:
        raise ValueError(f"mfu must be in (0, 1] and tokens >= 0, got mfu={mfu!r}, tokens={tokens!r}")
    return (
        tokens
        * training_flops_per_token(n_params, method, adapter)
        / (device.peak_flops * mfu * SECONDS_PER_HOUR)
    )


# --------------------------------------------------------------------------------------------- serving
@dataclass(frozen=True)
class ServingPlan:
    """Replicas of the model that carry the busiest hour within the latency target."""

    gpus_per_replica: int  # tensor-parallel degree
    batch: int  # concurrent sequences per replica
    step_s: float  # one decode step: weights + cache read once from memory
    requests_per_s: float  # one replica's capacity
    replicas: int
    memory_per_gpu: float  # bytes

    @property
    def gpus(self) -> int:
        """GPUs running all the time."""
        return self.replicas * self.gpus_per_replica


def serving_plan(s: Scenario, a: Assumptions, device: GPU | None = None) -> ServingPlan | None:
    """Decode is bound by memory bandwidth: each step reads all weights plus the KV cache (None: no fit)."""
    device = device or gpu(s.gpu)
    arch = base_model(s.model)[0]
    seq, mean_ctx = s.input_tokens + s.output_tokens, s.input_tokens + s.output_tokens // 2
    weights = 2.0 * arch.n_params
    prefill_flops = 2.0 * arch.n_params * s.input_tokens  # per request
    needed = s.requests_per_day / SECONDS_PER_DAY * a.peak_to_mean
    tp = 1
    while tp <= MAX_TENSOR_PARALLEL:
        budget, best, b = device.memory_bytes * a.headroom * tp, None, 1
        while (
            mem := estimate_memory(arch, "bf16", batch=b, seq=seq, inference=True, activation_model=ACT).total
        ) <= budget:
            step = (weights + kv_cache_bytes(arch, b, mean_ctx)) / (
                tp * device.bandwidth * a.bandwidth_efficiency
            )
            if step * 1e3 > s.latency_ms:
                break
            prefill = b * prefill_flops / (tp * device.peak_flops * a.pretrain_mfu)
            best = (b, step, b / (s.output_tokens * step + prefill), mem / tp)
            b *= 2
        if best:
            b, step, rps, per_gpu = best
            return ServingPlan(tp, b, step, rps, max(1, math.ceil(needed / rps)), per_gpu)
        tp *= 2
    return None
