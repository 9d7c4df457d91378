"""Computational scale: FLOPs per token, throughput, utilisation (MFU), and what real pre-training runs cost.

- Training FLOPs per token: 6N (forward 2N + backward 4N multiply-adds of the weight matmuls) plus the
  attention scores and values, 12 * L * d_model * T (PaLM, Chowdhery et al. 2022, App. B; the form coded
  in nanoGPT's `estimate_mfu`). N counts the weights that take part in matmuls: the input embedding
  table is a lookup, not a matmul, so it is left out; the (untied) LM head is a matmul and counts.
- Model FLOPs utilisation: achieved FLOP/s (tokens/s x FLOPs per token) over the hardware's peak. Here the
  peak is *measured* in the same run with a large matmul, so the ratio is honest on a shared machine.
- Real runs: total compute C = 6 N D (N parameters, D tokens); over the published GPU-hours this gives
  the FLOP/s each GPU sustained, and its MFU against the A100's 312 TFLOPS bf16 dense peak. The runs'
  figures live in data/published/pretraining.json, read through `published`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from transformers import LlamaConfig

from . import published
from .hardware import gpu
from .params import count_parameters, known_config
from .scaling import training_flops_with_attention

A100_BF16_PEAK = gpu("a100-80gb").peak_flops  # FLOP/s, dense bf16 (data/published/hardware.json)
SECONDS_PER_HOUR = 3600.0
PF_DAY = 1e15 * 86_400.0  # FLOPs in a petaflop/s-day (Kaplan et al. §1.3; Brown et al. Table D.1)


def llama_param_count(
    d_model: int, n_layers: int, d_ff: int, vocab: int, n_heads: int, n_kv_heads: int
) -> int:
    """Parameters of a LLaMA (untied embeddings, no biases, RMSNorm), by module 01's closed-form counter."""
    config = LlamaConfig(
        hidden_size=d_model,
        num_hidden_layers=n_layers,
        intermediate_size=d_ff,
        vocab_size=vocab,
        num_attention_heads=n_heads,
        num_key_value_heads=n_kv_heads,
        tie_word_embeddings=False,
    )
    return count_parameters(config).total


def matmul_params(model: torch.nn.Module) -> int:
    """Parameters counted in 6N: all but the input embedding table (a lookup), unless it is tied to the head."""
    embedding = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    tied = head is not None and head.weight is embedding
    return sum(p.numel() for p in model.parameters() if tied or p is not embedding)


def flops_per_token(n_params: int, n_layers: int, d_model: int, context: int) -> float:
    """Training FLOPs per token: 6N + 12 * L * d_model * T (PaLM App. B / nanoGPT)."""
    for name, value in (
        ("n_params", n_params),
        ("n_layers", n_layers),
        ("d_model", d_model),
        ("context", context),
    ):
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    return float(
        training_flops_with_attention(n_params, 1, n_layers, d_model, context)
    )  # one home: module 06


def model_flops_per_token(model: torch.nn.Module, context: int) -> float:
    """Training FLOPs per token of a `transformers` causal LM at a given context length."""
    cfg = model.config
    return flops_per_token(matmul_params(model), cfg.num_hidden_layers, cfg.hidden_size, context)


def measure_matmul_peak(
    dtype: torch.dtype = torch.float32, n: int = 1024, repeats: int = 5, device: str | torch.device = "cpu"
) -> float:
    """Best FLOP/s of an (n x n) @ (n x n) matmul (2 n^3 FLOPs) over `repeats` timed runs."""
    if dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise ValueError(f"dtype must be torch.float32, torch.bfloat16 or torch.float16, got {dtype}")
    if not isinstance(n, int) or n < 64 or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"need n >= 64 and repeats >= 1, got n={n!r}, repeats={repeats!r}")
    device = torch.device(device)
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device, dtype)
    b = torch.randn(n, n, generator=gen).to(device, dtype)
    torch.mm(a, b)  # warm-up (thread pool, kernel choice)
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best


def mfu(tokens_per_s: float, flops_per_tok: float, peak_flops: float) -> float:
    """Model FLOPs utilisation: achieved FLOP/s over peak FLOP/s (a fraction, not a percentage)."""
    for name, value in (
        ("tokens_per_s", tokens_per_s),
        ("flops_per_tok", flops_per_tok),
        ("peak_flops", peak_flops),
    ):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")
    return tokens_per_s * flops_per_tok / peak_flops


@dataclass(frozen=True)
class PublishedRun:
    """A real pre-training run, from published inputs (parameters, tokens, GPU-hours) and its source."""

    name: str
    params: float  # N
    tokens: float  # D
    gpu_hours: float
    gpu: str
    peak_flops: float  # of that GPU, bf16 dense
    source: str

    @property
    def train_flops(self) -> float:
        """Total training compute by C = 6 N D."""
        return 6.0 * self.params * self.tokens

    @property
    def flops_per_gpu(self) -> float:
        """FLOP/s each GPU sustained on average over the whole run."""
        return self.train_flops / (self.gpu_hours * SECONDS_PER_HOUR)

    @property
    def mfu(self) -> float:
        """Implied model FLOPs utilisation against the GPU's bf16 dense peak."""
        return self.flops_per_gpu / self.peak_flops


# LLaMA-2 (Touvron et al. 2023, arXiv:2307.09288): 2.0T tokens (Table 1), A100-80GB GPU-hours (Table 2).
# Parameters from the released configs (hidden / layers / FFN / vocab / heads / kv heads); 34B was never
# released, so it uses its nominal size.
LLAMA2_GPU_HOURS = {size: f.value for size, f in published.group("pretraining", "llama2_gpu_hours").items()}
LLAMA2_PARAMS = {
    "7B": count_parameters(known_config("llama-2-7b")).total,
    "13B": count_parameters(known_config("llama-2-13b")).total,
    "34B": published.value("pretraining", "llama2_34b_nominal_params"),  # nominal (no released config)
    "70B": count_parameters(known_config("llama-2-70b")).total,
}


def llama2_runs() -> list[PublishedRun]:
    """The four LLaMA-2 pre-training runs (2T tokens each)."""
    tokens, hours = (
        published.figure("pretraining", "llama2_tokens"),
        published.group("pretraining", "llama2_gpu_hours"),
    )
    return [
        PublishedRun(
            f"LLaMA-2 {size}",
            LLAMA2_PARAMS[size],
            tokens.value,
            LLAMA2_GPU_HOURS[size],
            "A100-80GB",
            A100_BF16_PEAK,
            f"{tokens.source}: tokens {tokens.location}; GPU-hours {hours[size].location}",
        )
        for size in LLAMA2_GPU_HOURS
    ]


def starcoder_run() -> PublishedRun:
    """StarCoderBase: 15.5B parameters, 1T tokens, 512 A100 for 24 days (model card)."""
    keys = {
        "params": "starcoder_params",
        "tokens": "starcoder_tokens",
        "gpus": "starcoder_gpus",
        "days": "starcoder_days",
    }
    fig = {k: published.figure("pretraining", key) for k, key in keys.items()}
    return PublishedRun(
        "StarCoderBase 15.5B",
        fig["params"].value,
        fig["tokens"].value,
        fig["gpus"].value * fig["days"].value * 24.0,
        "A100",
        A100_BF16_PEAK,
        f"{fig['params'].source} ({fig['gpus'].location}, {fig['days'].location})",
    )


def published_runs() -> list[PublishedRun]:
    """All real runs the notebook compares against."""
    return [starcoder_run(), *llama2_runs()]


def runs_table(runs: list[PublishedRun]) -> list[dict]:
    """One row per run: the published inputs and what 6ND implies (for a pandas DataFrame)."""
    return [
        {
            "run": r.name,
            "params (B)": r.params / 1e9,
            "tokens (T)": r.tokens / 1e12,
            "GPU-hours (published)": r.gpu_hours,
            "6ND (FLOPs)": r.train_flops,
            "TFLOP/s per GPU (implied)": r.flops_per_gpu / 1e12,
            "MFU vs 312 TFLOPS": r.mfu,
        }
        for r in runs
    ]


def pf_days(flops: float) -> float:
    """Training compute in petaflop/s-days, the unit of GPT-3's Table D.1."""
    if not flops > 0:
        raise ValueError(f"flops must be > 0, got {flops!r}")
    return flops / PF_DAY


def time_at_our_speed(run: PublishedRun, our_flops_per_s: float) -> float:
    """Seconds our machine would need for the run's 6ND FLOPs at the FLOP/s our training achieved."""
    if not our_flops_per_s > 0:
        raise ValueError(f"our_flops_per_s must be > 0, got {our_flops_per_s!r}")
    return run.train_flops / our_flops_per_s
