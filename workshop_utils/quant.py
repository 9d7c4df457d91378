"""4-bit weights for QLoRA (Dettmers et al. 2023, arXiv:2305.14314), from scratch, then bitsandbytes.

Read top to bottom:
1. NF4: 16 levels at quantiles of N(0, 1), scaled to [-1, 1] (equal to bitsandbytes' table);
   uniform int4 (15 evenly spaced levels) as the baseline.
2. Blockwise absmax quantisation: every block of 64 weights stores one fp32 scale (its absmax) and a
   4-bit index per weight; dequantise = level[index] * absmax.
3. Double quantisation: the fp32 scales are themselves quantised to 8 bits in blocks of 256
   (0.5 -> 0.127 bits per parameter: the paper's 0.373 saving).
4. bitsandbytes: load the course model in 4-bit NF4, add PEFT LoRA, and *verify* its LoRA gradients
   against an fp32 model holding the dequantised weights before training (a CPU pitfall, below).

The CPU pitfall (bitsandbytes 0.50, CPUs with AVX512-BF16): an eval / no-grad forward repacks the 4-bit
weights for a fast inference kernel that has no autograd; later training then computes wrong LoRA
gradients while the loss still falls. `disable_cpu_repack` turns the repack off on every Linear4bit,
`repacked_layers` detects it, `lora_gradient_check` proves the gradients right before training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

NF4_OFFSET = 0.9677083  # QLoRA's outermost quantile: (1 - 1/(2*15) + 1 - 1/(2*16)) / 2
BLOCK = 64  # QLoRA's block size for the first-level absmax
BLOCK2 = 256  # block size of the second level (double quantisation)


# ---------------------------------------------------------------------------------------------
# 1. The 4-bit code books
# ---------------------------------------------------------------------------------------------
def nf4_levels(offset: float = NF4_OFFSET) -> torch.Tensor:
    """The 16 NF4 levels: 8 positive and 7 negative normal quantiles plus an exact 0, scaled to [-1, 1]."""
    from scipy.stats import norm

    if not 0.5 < offset < 1:
        raise ValueError(f"offset must be in (0.5, 1), got {offset}")
    positive = norm.ppf(torch.linspace(offset, 0.5, 9)[:-1].double().numpy())  # 8 quantiles > 0
    negative = -norm.ppf(torch.linspace(offset, 0.5, 8)[:-1].double().numpy())  # 7 quantiles < 0
    levels = torch.tensor([*positive, 0.0, *negative], dtype=torch.float64).sort().values  # (16,)
    return (levels / levels.max()).float()  # asymmetric: -1 ... 0 ... +1, zero exactly representable


def int4_levels() -> torch.Tensor:
    """Uniform symmetric int4 as absmax quantisation uses it: k/7 for k = -7..7 (15 levels, 0 exact)."""
    return torch.arange(-7, 8, dtype=torch.float32) / 7  # (15,)


# ---------------------------------------------------------------------------------------------
# 2. Blockwise absmax quantisation
# ---------------------------------------------------------------------------------------------
@dataclass
class Quantized:
    """A tensor as 4-bit indices into `levels` plus one absmax scale per block."""

    codes: torch.Tensor  # (n_blocks, block) uint8 indices (unpacked: 2 per byte in storage)
    absmax: torch.Tensor  # (n_blocks,) fp32 scales
    levels: torch.Tensor  # (16,) or (15,) the code book
    shape: tuple[int, ...]
    block: int


def quantize_blockwise(w: torch.Tensor, levels: torch.Tensor, block: int = BLOCK) -> Quantized:
    """Scale each block of `block` values by its absmax, round each to the nearest level."""
    if block <= 0:
        raise ValueError(f"block must be > 0, got {block}")
    if w.numel() % block:
        raise ValueError(f"w has {w.numel()} values, not a multiple of block={block}")
    blocks = w.detach().float().reshape(-1, block)  # (n_blocks, block)
    absmax = blocks.abs().amax(dim=1)  # (n_blocks,)
    scaled = blocks / absmax.clamp(min=1e-12)[:, None]  # in [-1, 1]
    codes = (scaled[..., None] - levels).abs().argmin(dim=-1)  # (n_blocks, block) nearest level
    return Quantized(codes.to(torch.uint8), absmax, levels, tuple(w.shape), block)


def dequantize_blockwise(q: Quantized, absmax: torch.Tensor | None = None) -> torch.Tensor:
    """level[code] * absmax, reshaped back (pass `absmax` to use reconstructed double-quantised scales)."""
    scale = q.absmax if absmax is None else absmax
    return (q.levels[q.codes.long()] * scale[:, None]).reshape(q.shape)


# ---------------------------------------------------------------------------------------------
# 3. Double quantisation of the scales
# ---------------------------------------------------------------------------------------------
@dataclass
class DoubleQuantized:
    """The first-level fp32 absmax values as 8-bit codes + one fp32 scale per `block2` + a mean offset."""

    codes: torch.Tensor  # (n_blocks2, block2) int8
    scale: torch.Tensor  # (n_blocks2,) fp32
    offset: float  # the mean absmax, subtracted first (absmax values are all positive)
    n: int


def double_quantize(absmax: torch.Tensor, block2: int = BLOCK2) -> DoubleQuantized:
    """Quantise the scales: subtract their mean, then symmetric int8 absmax in blocks of `block2`."""
    if block2 <= 0:
        raise ValueError(f"block2 must be > 0, got {block2}")
    offset = absmax.float().mean().item()
    centred = absmax.float() - offset
    pad = (-centred.numel()) % block2
    blocks = torch.nn.functional.pad(centred, (0, pad)).reshape(-1, block2)  # (n_blocks2, block2)
    scale = blocks.abs().amax(dim=1).clamp(min=1e-12) / 127
    codes = torch.round(blocks / scale[:, None]).to(torch.int8)
    return DoubleQuantized(codes, scale, offset, absmax.numel())


def dequantize_scales(dq: DoubleQuantized) -> torch.Tensor:
    """The reconstructed first-level scales (n,)."""
    return (dq.codes.float() * dq.scale[:, None]).reshape(-1)[: dq.n] + dq.offset


def constant_bits_per_param(block: int = BLOCK, double: bool = False, block2: int = BLOCK2) -> float:
    """Bits per weight spent on scales: 32/block, or 8/block + 32/(block*block2) with double quantisation."""
    if block <= 0 or block2 <= 0:
        raise ValueError(f"block and block2 must be > 0, got {block}, {block2}")
    return 8 / block + 32 / (block * block2) if double else 32 / block


def storage_bytes(n_params: float, weight_bits: float = 4, double: bool = True, block: int = BLOCK) -> float:
    """Bytes to store `n_params` weights at `weight_bits` plus their blockwise scales."""
    return n_params * (weight_bits + constant_bits_per_param(block, double)) / 8


# ---------------------------------------------------------------------------------------------
# Reconstruction error on real weights
# ---------------------------------------------------------------------------------------------
def reconstruction_error(
    w: torch.Tensor, levels: torch.Tensor, block: int = BLOCK, double: bool = False
) -> dict:
    """Round-trip `w` through blockwise quantisation: RMSE, error relative to w's RMS, max |error|."""
    q = quantize_blockwise(w, levels, block)
    absmax = dequantize_scales(double_quantize(q.absmax)) if double else None
    err = dequantize_blockwise(q, absmax) - w.detach().float()
    rms = w.detach().float().pow(2).mean().sqrt()
    rmse = err.pow(2).mean().sqrt()
    return {"rmse": rmse.item(), "rel_rmse": (rmse / rms).item(), "max_abs": err.abs().max().item()}


def model_reconstruction_table(model: nn.Module, block: int = BLOCK, min_in_features: int = 64) -> list[dict]:
    """NF4 vs uniform int4 (and NF4 + double quantisation) on every nn.Linear weight of a model."""
    rows = []
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear) and m.in_features >= min_in_features and m.weight.numel() % block == 0:
            w = m.weight
            rows.append({"layer": name, "numel": w.numel(),
                         "nf4": reconstruction_error(w, nf4_levels(), block)["rel_rmse"],
                         "nf4+dq": reconstruction_error(w, nf4_levels(), block, double=True)["rel_rmse"],
                         "int4": reconstruction_error(w, int4_levels(), block)["rel_rmse"]})  # fmt: skip
    if not rows:
        raise ValueError(
            f"model has no nn.Linear with in_features >= {min_in_features} and numel % {block} == 0"
        )
    return rows


# ---------------------------------------------------------------------------------------------
# 4. bitsandbytes: the library path, with the CPU gradient check
# ---------------------------------------------------------------------------------------------
def bnb_nf4_levels() -> torch.Tensor:
    """bitsandbytes' own NF4 table (to compare ours with)."""
    import bitsandbytes.functional as bnbf

    return bnbf.get_4bit_type("nf4", device="cpu")[:16].float()


def bnb_roundtrip(w: torch.Tensor, quant_type: str = "nf4", double: bool = False) -> torch.Tensor:
    """Quantise with bitsandbytes (block 64) and dequantise again: the library's reconstruction of w."""
    import bitsandbytes.functional as bnbf

    if quant_type not in ("nf4", "fp4"):
        raise ValueError(f"quant_type must be 'nf4' or 'fp4', got {quant_type!r}")
    packed, state = bnbf.quantize_4bit(w.detach().float(), blocksize=BLOCK, compress_statistics=double,
                                       quant_type=quant_type)  # fmt: skip
    return bnbf.dequantize_4bit(packed, state)


def bnb_available() -> tuple[bool, str]:
    """(works, why): can bitsandbytes quantise and matmul in 4 bit on this machine?"""
    try:
        import bitsandbytes as bnb

        layer = bnb.nn.Linear4bit(64, 64, bias=False, quant_type="nf4")
        layer.support_avx512bf16_for_cpu = False
        dev = "cuda" if torch.cuda.is_available() else "cpu"
        layer = layer.to(dev)
        layer(torch.randn(2, 64, device=dev))
    except Exception as e:  # noqa: BLE001 - any failure means "this path cannot run here"
        return False, f"{type(e).__name__}: {e}"
    return True, f"bitsandbytes {bnb.__version__} on {dev}"


def linear4bit_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, layer) of every bitsandbytes Linear4bit in a model."""
    import bitsandbytes as bnb

    return [(n, m) for n, m in model.named_modules() if isinstance(m, bnb.nn.Linear4bit)]


def disable_cpu_repack(model: nn.Module) -> int:
    """Turn off the AVX512-BF16 inference repack on every Linear4bit (keeps autograd exact); returns the count."""
    layers = linear4bit_layers(model)
    for _, m in layers:
        m.support_avx512bf16_for_cpu = False
    return len(layers)


def repacked_layers(model: nn.Module) -> list[str]:
    """Names of Linear4bit layers whose weights were repacked for the CPU inference kernel (unsafe to train)."""
    return [n for n, m in linear4bit_layers(model)
            if getattr(getattr(m.weight, "quant_state", None), "packing_format_for_cpu", False)]  # fmt: skip


def load_course_model_4bit(
    path: str, double: bool = True, compute_dtype: torch.dtype = torch.float32
) -> nn.Module:
    """A saved course model (local folder) loaded by transformers in 4-bit NF4, repack disabled."""
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=double,
                                bnb_4bit_compute_dtype=compute_dtype)  # fmt: skip
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(path, quantization_config=config, device_map={"": dev},
                                                 dtype=torch.float32)  # fmt: skip
    disable_cpu_repack(model)
    return model


def dequantized_reference(model4: nn.Module, reference: nn.Module) -> nn.Module:
    """Copy every 4-bit weight of `model4`, dequantised to fp32, and every other tensor into `reference`.

    `reference` is a plain fp32 model of the same architecture (with the same LoRA adapters attached, if any).
    """
    import bitsandbytes.functional as bnbf

    if repacked_layers(model4):
        raise RuntimeError("model4 has repacked CPU weights; reload it (and call disable_cpu_repack) first")
    ref_params = dict(reference.named_parameters())
    with torch.no_grad():
        for name, p in model4.named_parameters():
            if name not in ref_params:
                raise KeyError(
                    f"reference has no parameter {name!r}: build it with the same architecture and adapters"
                )
            value = bnbf.dequantize_4bit(p.data, p.quant_state) if hasattr(p, "quant_state") else p
            ref_params[name].copy_(value.reshape(ref_params[name].shape).float())
    return reference


@dataclass
class GradCheck:
    """LoRA gradients of a 4-bit model vs the fp32 dequantised reference on the same batch."""

    n_tensors: int
    max_abs_diff: float
    max_rel_diff: float  # max over tensors of |g4 - gref| / |gref| (norms)
    loss_4bit: float
    loss_ref: float
    ok: bool


def lora_gradient_check(
    model4: nn.Module, reference: nn.Module, input_ids: torch.Tensor, rtol: float = 1e-3
) -> GradCheck:
    """Backward one batch through both models; their LoRA gradients must agree to `rtol` (relative, per tensor)."""
    grads = []
    losses = []
    for m in (model4, reference):
        m.train()
        m.zero_grad(set_to_none=True)
        ids = input_ids.to(next(m.parameters()).device)
        loss = m(input_ids=ids, labels=ids).loss
        loss.backward()
        losses.append(loss.item())
        grads.append(
            {n: p.grad.detach().float().cpu() for n, p in m.named_parameters() if p.grad is not None}
        )
    g4, gref = grads
    if set(g4) != set(gref) or not g4:
        raise ValueError(f"the models train different parameters: {sorted(set(g4) ^ set(gref))[:5]}")
    abs_diff = max((g4[n] - gref[n]).abs().max().item() for n in g4)
    rel = max(((g4[n] - gref[n]).norm() / gref[n].norm().clamp(min=1e-30)).item() for n in g4)
    for m in (model4, reference):
        m.zero_grad(set_to_none=True)
    return GradCheck(len(g4), abs_diff, rel, losses[0], losses[1], ok=math.isfinite(rel) and rel <= rtol)


def assert_safe_to_train(model4: nn.Module, check: GradCheck | None = None) -> None:
    """Raise unless no layer is repacked and (if given) the gradient check passed."""
    bad = repacked_layers(model4)
    if bad:
        raise RuntimeError(f"{len(bad)} Linear4bit layers were repacked for CPU inference (e.g. {bad[0]}): "
                           "their LoRA gradients would be wrong. Reload the model and call disable_cpu_repack.")  # fmt: skip
    if check is not None and not check.ok:
        raise RuntimeError(
            f"LoRA gradients differ from the fp32 reference (max rel {check.max_rel_diff:.2e})"
        )


def dequantize_linear(layer: nn.Module) -> nn.Linear:
    """A float nn.Linear holding a bitsandbytes Linear4bit's dequantised weight (what a merge needs)."""
    import bitsandbytes.functional as bnbf

    state = getattr(layer.weight, "quant_state", None)
    if state is None:
        raise TypeError(f"{type(layer).__name__} has no 4-bit quant_state to dequantize")
    if getattr(state, "packing_format_for_cpu", False):
        raise RuntimeError(
            "layer was repacked for CPU inference; reload the model and call disable_cpu_repack"
        )
    out = nn.Linear(
        layer.in_features, layer.out_features, bias=layer.bias is not None, device=layer.weight.device
    )
    with torch.no_grad():
        out.weight.copy_(bnbf.dequantize_4bit(layer.weight.data, state).float())
        if layer.bias is not None:
            out.bias.copy_(layer.bias.float())
    return out


# ---------------------------------------------------------------------------------------------
# 5. Memory to fine-tune 7B-65B: 16-bit vs 4-bit (+ LoRA, + double quantisation)
# ---------------------------------------------------------------------------------------------
# LLaMA-1 (the models QLoRA fine-tuned): Touvron et al. 2023, arXiv:2302.13971, Table 2 (d_model, heads,
# layers); FFN widths 11008 / 13824 / 17920 / 22016 and vocab 32000 from the released configs.
LLAMA1 = {"7B": (4096, 32, 32, 11008), "13B": (5120, 40, 40, 13824),
          "33B": (6656, 52, 60, 17920), "65B": (8192, 64, 80, 22016)}  # fmt: skip
LORA_STATE_BYTES = 2 + 2 + 4 + 4  # per LoRA parameter: bf16 weight + bf16 grad + fp32 Adam m and v


def llama1_config(size: str):
    """A transformers LlamaConfig for LLaMA-1 `size` (7B, 13B, 33B, 65B)."""
    from transformers import LlamaConfig

    if size not in LLAMA1:
        raise ValueError(f"size must be one of {list(LLAMA1)}, got {size!r}")
    d, heads, layers, ffn = LLAMA1[size]
    return LlamaConfig(vocab_size=32000, hidden_size=d, intermediate_size=ffn, num_hidden_layers=layers,
                       num_attention_heads=heads, num_key_value_heads=heads, tie_word_embeddings=False)  # fmt: skip


def finetune_memory_rows(r: int = 64, targets: str = "all linear") -> list[dict]:
    """GB (1e9 bytes) of model states to fine-tune LLaMA-1 7B-65B: full 16-bit FT, LoRA, QLoRA (weights + adapters).

    full FT: module 04's calculator (mixed precision AdamW: 16 bytes/param). LoRA: 16-bit frozen weights plus
    `LORA_STATE_BYTES` per adapter parameter. QLoRA: NF4 weights with and without double quantisation (embeddings
    and LM head stay 16-bit, as in bitsandbytes) plus the same adapter states. Activations come on top.
    """
    from .lora import TARGET_SETS, lora_parameter_count
    from .memory import estimate_memory
    from .params import build_on_meta

    rows = []
    for size in LLAMA1:
        config = llama1_config(size)
        model = build_on_meta(config)
        n = sum(p.numel() for p in model.parameters())
        n_linear = sum(m.weight.numel() for name, m in model.named_modules()
                       if isinstance(m, nn.Linear) and name != "lm_head")  # fmt: skip
        n_lora = lora_parameter_count(model, r, TARGET_SETS[targets])
        adapters = n_lora * LORA_STATE_BYTES
        full = estimate_memory(config, precision="mixed", optimizer="adamw", batch=1, seq=1).model_states
        rest16 = 2 * (n - n_linear)  # embeddings, norms, LM head in 16 bit
        rows.append({"model": f"LLaMA-{size}", "params_B": n / 1e9, "lora_params_M": n_lora / 1e6,
                     "full_ft_16bit": full / 1e9,
                     "weights_16bit": 2 * n / 1e9,
                     "lora_16bit": (2 * n + adapters) / 1e9,
                     "weights_nf4": (storage_bytes(n_linear, double=False) + rest16) / 1e9,
                     "weights_nf4_dq": (storage_bytes(n_linear, double=True) + rest16) / 1e9,
                     "qlora": (storage_bytes(n_linear, double=True) + rest16 + adapters) / 1e9})  # fmt: skip
    return rows


def bnb_cpu_repack_default() -> bool:
    """What bitsandbytes sets `support_avx512bf16_for_cpu` to on this machine (True: the repack trap exists)."""
    import bitsandbytes.functional as bnbf

    return bool(bnbf.has_avx512bf16())
