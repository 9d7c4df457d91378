"""Memory math for training and inference: how many bytes a model needs, predicted and measured.

Sources (see ../shared/reference_figures.md):
- ZeRO, Rajbhandari et al., arXiv:1910.02054, §3.1 and §5 (reference_figures §1): model states.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

# ---------------------------------------------------------------------------------------------
# Validation helpers: bad input raises, naming the argument and what is valid. Never a silent number.
# ---------------------------------------------------------------------------------------------


def _positive_int(name: str, value: object) -> int:
    """Return `value` if it is a positive int, else raise a ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _non_negative(name: str, value: object) -> float:
    """Return `value` if it is a finite number >= 0, else raise a ValueError naming `name`."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


# ---------------------------------------------------------------------------------------------
# ZeRO §3.1 / §5: per-device bytes of model states (parameters, gradients, optimizer states)
# ---------------------------------------------------------------------------------------------
ZERO_STAGES = (0, 1, 2, 3)


def zero_model_states_bytes(
    psi: int, stage: int, n_d: int, k: int = 12, param_bytes: int = 2, grad_bytes: int = 2
) -> float:
    """Per-device model-state bytes under ZeRO stage 0-3 (ZeRO §5, generalised to any byte widths).

    stage 0 (plain DP):  (P + G + K)·Ψ
    stage 1 (P_os):      P·Ψ + G·Ψ + K·Ψ/N_d
    stage 2 (P_os+g):    P·Ψ + (G + K)·Ψ/N_d
    stage 3 (P_os+g+p):  (P + G + K)·Ψ/N_d
    with P = param_bytes, G = grad_bytes (2 and 2 in the paper), K = optimizer bytes per parameter
    (12 for mixed-precision Adam: fp32 master + momentum + variance).
    """
    _positive_int("psi", psi)
    _positive_int("n_d", n_d)
    if isinstance(stage, bool) or stage not in ZERO_STAGES:
        raise ValueError(f"stage must be one of {ZERO_STAGES} (ZeRO stage), got {stage!r}")
    _non_negative("k", k)
    _non_negative("param_bytes", param_bytes)
    _non_negative("grad_bytes", grad_bytes)
    p, g = param_bytes * psi, grad_bytes * psi
    opt = k * psi
    if stage == 0:
        return float(p + g + opt)
    if stage == 1:
        return p + g + opt / n_d
    if stage == 2:
        return p + (g + opt) / n_d
    return (p + g + opt) / n_d


# ---------------------------------------------------------------------------------------------
# What we compute for: an architecture described by a handful of numbers
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Architecture:
    """The numbers memory depends on: parameter tensors, width, depth, heads, FFN size, vocabulary."""

    name: str
    param_numels: tuple[int, ...]  # one entry per parameter tensor (8-bit optimizers treat small ones apart)
    hidden: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    ffn: int
    vocab: int
    matmul_params: int  # weights of nn.Linear layers (what autocast casts to 16 bit), LM head included
    lm_head_params: int

    @property
    def n_params(self) -> int:
        """Total parameter count Ψ."""
        return sum(self.param_numels)

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.hidden // self.n_heads

    @property
    def kv_width(self) -> int:
        """Width of the key (or value) projection: n_kv_heads · head_dim (GQA makes it smaller)."""
        return self.n_kv_heads * self.head_dim

    @classmethod
    def from_config(cls, config: Any, name: str | None = None) -> Architecture:
        """Read a transformers config; the parameter tensors come from the model built on the meta device."""
        from .params import build_on_meta

        model = build_on_meta(config)
        numels = tuple(p.numel() for p in model.parameters())
        linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
        head = model.get_output_embeddings()
        get = lambda *keys: next(getattr(config, k) for k in keys if getattr(config, k, None) is not None)  # noqa: E731
        hidden = get("hidden_size", "n_embd", "d_model")
        heads = get("num_attention_heads", "n_head", "num_heads")
        kv = getattr(config, "num_key_value_heads", None) or heads
        ffn = getattr(config, "intermediate_size", None) or getattr(config, "n_inner", None) or 4 * hidden
        return cls(
            name=name or type(config).__name__,
            param_numels=numels,
            hidden=hidden,
            n_layers=get("num_hidden_layers", "n_layer", "num_layers"),
            n_heads=heads,
            n_kv_heads=kv,
            ffn=ffn,
            vocab=config.vocab_size,
            matmul_params=sum(m.weight.numel() for m in linears),
            lm_head_params=head.weight.numel() if head is not None else 0,
        )

    @classmethod
    def from_name(cls, name: str) -> Architecture:
        """A known model by name (see `workshop_utils.params.KNOWN_CONFIGS`), counted exactly on meta."""
        from .params import KNOWN_CONFIGS, known_config

        if not isinstance(name, str) or name not in KNOWN_CONFIGS:
            raise ValueError(f"model: unknown model name {name!r}; valid names: {', '.join(KNOWN_CONFIGS)}")
        return cls.from_config(known_config(name), name=name)

    @classmethod
    def from_numbers(
        cls,
        n_params: int,
        hidden: int,
        n_layers: int,
        n_heads: int,
        n_kv_heads: int | None = None,
        ffn: int | None = None,
        vocab: int = 32000,
        name: str = "custom",
    ) -> Architecture:
        """A raw parameter count plus the architecture numbers activations need (one big parameter tensor)."""
        for arg, value in (
            ("n_params", n_params),
            ("hidden", hidden),
            ("n_layers", n_layers),
            ("n_heads", n_heads),
            ("vocab", vocab),
        ):
            _positive_int(arg, value)
        n_kv_heads = _positive_int("n_kv_heads", n_kv_heads or n_heads)
        if hidden % n_heads or n_heads % n_kv_heads:
            raise ValueError(
                f"hidden ({hidden}) must divide by n_heads ({n_heads}), n_heads by n_kv_heads ({n_kv_heads})"
            )
        ffn = _positive_int("ffn", ffn or 4 * hidden)
        matmul = (
            n_params - vocab * hidden - (2 * n_layers + 1) * hidden
        )  # LLaMA-style: minus embeddings, norms
        if matmul <= 0:
            raise ValueError(
                f"n_params ({n_params}) is too small for vocab {vocab} × hidden {hidden} embeddings"
            )
        return cls(
            name, (n_params,), hidden, n_layers, n_heads, n_kv_heads, ffn, vocab, matmul, vocab * hidden
        )


def resolve_model(model: Any) -> Architecture:
    """Accept an Architecture, a known name, or a transformers config."""
    if isinstance(model, Architecture):
        return model
    if isinstance(model, str):
        return Architecture.from_name(model)
    if hasattr(model, "to_dict") and hasattr(model, "vocab_size"):
        return Architecture.from_config(model)
    raise ValueError(
        f"model must be an Architecture, a transformers config or a known name, got {type(model).__name__}"
    )


# ---------------------------------------------------------------------------------------------
# Precisions and optimizers: bytes per parameter (reference_figures §1.1 and §7.1)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Precision:
    """Bytes per parameter of weights, gradients, fp32 master copy and each optimizer state."""

    weights: int
    grads: int
    master: int  # fp32 copy kept by the optimizer in mixed precision (ZeRO §3.1)
    state: int  # bytes of one fp32/bf16 optimizer state element (Adam m or v, SGD momentum)
    activations: str  # which activation layout: "fp32", "bf16" (pure 16-bit) or "amp" (autocast)
    cast_copies: bool  # autocast keeps a 16-bit copy of every matmul weight for backward


PRECISIONS: dict[str, Precision] = {
    # everything in fp32: 4 + 4 + 8 (Adam) = 16 bytes/param, no master copy needed
    "fp32": Precision(weights=4, grads=4, master=0, state=4, activations="fp32", cast_copies=False),
    # ZeRO §3.1 / Megatron: fp16/bf16 weights and grads, fp32 master + fp32 Adam states: 2 + 2 + 12 = 16
    "mixed": Precision(weights=2, grads=2, master=4, state=4, activations="bf16", cast_copies=False),
    # pure bf16 (weights, grads and optimizer states in bf16; torch keeps states in the param dtype)
    "bf16": Precision(weights=2, grads=2, master=0, state=2, activations="bf16", cast_copies=False),
    # torch.autocast: fp32 weights/grads/states, 16-bit matmuls; 16-bit weight copies live until backward
    "amp": Precision(weights=4, grads=4, master=0, state=4, activations="amp", cast_copies=True),
}

# Optimizer states per parameter: (number of full-precision states, bytes of one 8-bit state)
OPTIMIZERS = ("adamw", "adamw8bit", "sgd_momentum", "none")
BNB_MIN_8BIT_SIZE = 4096  # bitsandbytes keeps fp32 states for tensors smaller than this
BNB_BLOCK = 256  # bitsandbytes 8-bit optimizer: one fp32 absmax per 256-element block, per state
TORCH_STEP_BYTES = 4  # torch.optim.AdamW keeps a scalar fp32 `step` tensor per parameter tensor


def _check_choice(name: str, value: object, valid: tuple[str, ...] | dict) -> None:
    """Raise a ValueError naming `name` and the valid values if `value` is not one of them."""
    if not isinstance(value, str) or value not in valid:
        raise ValueError(f"{name}: unknown value {value!r}; valid: {', '.join(valid)}")


def optimizer_state_bytes(arch: Architecture, optimizer: str, precision: str) -> float:
    """Bytes of optimizer states (without the master copy), tensor by tensor as the library allocates."""
    _check_choice("optimizer", optimizer, OPTIMIZERS)
    _check_choice("precision", precision, PRECISIONS)
    s = PRECISIONS[precision].state
    total = 0.0
    for n in arch.param_numels:
        if optimizer == "adamw":  # exp_avg + exp_avg_sq + step
            total += 2 * s * n + TORCH_STEP_BYTES
        elif optimizer == "sgd_momentum":  # momentum_buffer
            total += s * n
        elif optimizer == "adamw8bit":
            if n < BNB_MIN_8BIT_SIZE:  # small tensors (norm scales) keep two fp32 states
                total += 2 * 4 * n
            else:  # two uint8 states + one fp32 absmax per block per state
                total += 2 * n + 2 * 4 * math.ceil(n / BNB_BLOCK)
    if optimizer == "adamw8bit" and any(n >= BNB_MIN_8BIT_SIZE for n in arch.param_numels):
        total += 2 * 256 * 4  # the two shared 256-entry fp32 quantization maps (signed, unsigned)
    return total


# ---------------------------------------------------------------------------------------------
# Activations (reference_figures §7.2): bytes saved for backward
# ---------------------------------------------------------------------------------------------
CHECKPOINTING = ("none", "selective", "full")
ACTIVATION_MODELS = ("korthikanti", "hf-llama")


def korthikanti_layer_bytes(s: int, b: int, h: int, a: int, checkpointing: str = "none") -> float:
    """Korthikanti et al. (arXiv:2205.05198) bytes per layer, 16-bit activations, no tensor parallelism.

    none: s·b·h·(34 + 5·a·s/h)   [attention 11sbh + 5as²b, MLP 19sbh, 2 LayerNorms 4sbh]
    selective (recompute attention core): 34·s·b·h;  full (keep layer inputs only): 2·s·b·h
    """
    _check_choice("checkpointing", checkpointing, CHECKPOINTING)
    if checkpointing == "full":
        return 2.0 * s * b * h
    if checkpointing == "selective":
        return 34.0 * s * b * h
    return s * b * h * (34 + 5 * a * s / h)


def hf_llama_layer_terms(arch: Architecture, mode: str) -> dict[str, float]:
    """Bytes per token that one HF `LlamaDecoderLayer` (SDPA attention) saves for backward, term by term.

    Modelled on what transformers 5 / torch 2.13 actually store (checked with saved_tensors_hooks):
    - RMSNorm upcasts to fp32: saves its fp32 input and 1/rms (fp32), then the normalised x (before the
      scale) and the scaled output that the next matmul reads.
    - SDPA (flash-style kernel) saves q, k, v, the output and a log-sum-exp per head, never the s×s scores.
    - GQA: k and v are n_kv_heads·head_dim wide.
    - SwiGLU saves gate, silu(gate), up and their product (four d_ff-wide tensors, not GELU's two).
    - autocast ("amp"): the residual stream and norms stay fp32; every matmul saves its own bf16 cast of
      its input (q, k, v each cast the same input: three copies; gate and up: two).
    """
    _check_choice("mode", mode, ("fp32", "bf16", "amp"))
    h, kv, f, nh = arch.hidden, arch.kv_width, arch.ffn, arch.n_heads
    e = 4 if mode == "fp32" else 2  # bytes of a matmul output
    if mode == "fp32":
        norm = {"norm input": 4 * h, "norm 1/rms": 4, "norm x̂": 4 * h, "norm output": 4 * h}
    elif mode == "bf16":  # fp32 upcast of the input, bf16 x̂ and output
        norm = {"norm input": 4 * h, "norm 1/rms": 4, "norm x̂": 2 * h, "norm output": 2 * h}
    else:  # amp: fp32 norms; the output is saved as each matmul's bf16 cast instead
        norm = {"norm input": 4 * h, "norm 1/rms": 4, "norm x̂": 4 * h, "norm output": 0}
    terms = {f"attn {k}": v for k, v in norm.items()}
    if mode == "amp":
        terms["attn q/k/v input casts"] = 3 * 2 * h
    terms.update({"q": e * h, "k": e * kv, "v": e * kv, "attn output": e * h, "attn logsumexp": 4 * nh})
    terms.update({f"mlp {k}": v for k, v in norm.items()})
    if mode == "amp":
        terms["mlp gate/up input casts"] = 2 * 2 * h
    terms.update({"gate": e * f, "silu(gate)": e * f, "up": e * f, "silu(gate)·up": e * f})
    return terms


def hf_llama_head_bytes(arch: Architecture, b: int, s: int, mode: str) -> dict[str, float]:
    """Bytes outside the layers: token ids, RoPE cos/sin, final norm, fp32 log-softmax of the loss, targets."""
    _check_choice("mode", mode, ("fp32", "bf16", "amp"))
    h, t = arch.hidden, b * s
    norm = hf_llama_layer_terms(arch, mode)
    final_norm = sum(v for k, v in norm.items() if k.startswith("attn norm"))
    if mode == "amp":
        final_norm += 2 * h  # lm_head's bf16 cast of its input
    rope = 2 * s * arch.head_dim * (2 if mode == "bf16" else 4)  # cos and sin, shared by all layers and rows
    return {
        "input ids (int64)": 8 * t,
        "RoPE cos/sin": rope,
        "final norm": final_norm * t,
        "log-softmax (fp32)": 4 * arch.vocab * t,  # the loss upcasts logits to fp32
        "targets (int64)": 8 * t + 4,  # + the loss's scalar total weight
    }


def activation_bytes(
    arch: Architecture,
    batch: int,
    seq: int,
    precision: str = "mixed",
    checkpointing: str = "none",
    model: str = "korthikanti",
) -> float:
    """Bytes of activations held for backward by the whole model (layers + head for `hf-llama`)."""
    _positive_int("batch", batch)
    _positive_int("seq", seq)
    _check_choice("precision", precision, PRECISIONS)
    _check_choice("checkpointing", checkpointing, CHECKPOINTING)
    _check_choice("activation model", model, ACTIVATION_MODELS)
    act = PRECISIONS[precision].activations
    if model == "korthikanti":  # published for 16-bit activations; fp32 doubles every tensor
        scale = 2.0 if act == "fp32" else 1.0
        return (
            scale
            * arch.n_layers
            * korthikanti_layer_bytes(seq, batch, arch.hidden, arch.n_heads, checkpointing)
        )
    head = sum(hf_llama_head_bytes(arch, batch, seq, act).values())
    if checkpointing == "full":  # the checkpoint keeps each layer's input (the residual stream)
        per_layer = (2 if act == "bf16" else 4) * arch.hidden * batch * seq
    else:  # SDPA stores no s×s scores, so "selective" (recompute the attention core) saves nothing more
        per_layer = sum(hf_llama_layer_terms(arch, act).values()) * batch * seq
    return arch.n_layers * per_layer + head


def kv_cache_bytes(arch: Architecture, batch: int, seq: int, bytes_per_value: int = 2) -> float:
    """Inference KV cache: 2 (k and v) · layers · batch · seq · n_kv_heads · head_dim · bytes."""
    _positive_int("batch", batch)
    _positive_int("seq", seq)
    _positive_int("bytes_per_value", bytes_per_value)
    return 2.0 * arch.n_layers * batch * seq * arch.kv_width * bytes_per_value


def autocast_copy_bytes(arch: Architecture, precision: str, checkpointing: str = "none") -> float:
    """Autocast's 16-bit copies of matmul weights, kept for backward (only the LM head's under full checkpointing)."""
    if not PRECISIONS[precision].cast_copies:
        return 0.0
    return 2.0 * (arch.lm_head_params if checkpointing == "full" else arch.matmul_params)


def loss_gradient_bytes(arch: Architecture, batch: int, seq: int) -> float:
    """The two fp32 (B, T, V) buffers alive at the start of backward: d(log-softmax) and d(logits)."""
    return 2.0 * 4 * batch * seq * arch.vocab


# ---------------------------------------------------------------------------------------------
# The calculator
# ---------------------------------------------------------------------------------------------
COMPONENTS = (
    "weights",
    "gradients",
    "optimizer_states",
    "master_weights",
    "autocast_copies",
    "activations",
    "kv_cache",
)
UNITS = {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}


@dataclass(frozen=True)
class MemoryBreakdown:
    """Per-device bytes by component, plus the settings that produced them."""

    weights: float
    gradients: float
    optimizer_states: float
    master_weights: float
    autocast_copies: float
    activations: float
    kv_cache: float
    # Short-lived buffers, not in `total`: at the start of backward (loss gradients, a recomputed layer)
    # and in the optimizer step (AdamW's temporaries for its largest tensor).
    transient: float = 0.0
    step_transient: float = 0.0
    settings: dict = field(default_factory=dict, compare=False)

    @property
    def model_states(self) -> float:
        """Weights + gradients + optimizer states + master weights (ZeRO's "model states")."""
        return self.weights + self.gradients + self.optimizer_states + self.master_weights

    @property
    def total(self) -> float:
        """Sum of all components."""
        return sum(getattr(self, c) for c in COMPONENTS)

    @property
    def peak(self) -> float:
        """Predicted peak of a training step (grads freed by `zero_grad(set_to_none=True)`, torch's default).

        Either at the start of backward (activations + loss gradients, no parameter gradients yet) or at
        the optimizer step (all model states); the first wins unless activations are tiny.
        """
        if self.settings.get("inference"):
            return self.total
        at_backward = self.total - self.gradients + self.transient
        return max(at_backward, self.model_states + self.step_transient)

    def as_dict(self, unit: str = "GB") -> dict[str, float]:
        """Components and total in `unit` (B, KB, MB, GB decimal; KiB, MiB, GiB binary)."""
        _check_choice("unit", unit, UNITS)
        d = {c: getattr(self, c) / UNITS[unit] for c in COMPONENTS}
        d["total"] = self.total / UNITS[unit]
        return d

    def table(self, unit: str = "GB") -> str:
        """A plain-text table of the breakdown."""
        rows = [f"{'component':<18}{unit:>12}", "-" * 30]
        rows += [f"{k:<18}{v:>12.3f}" for k, v in self.as_dict(unit).items() if v or k == "total"]
        return "\n".join(rows)

    def __str__(self) -> str:
        head = ", ".join(f"{k}={v}" for k, v in self.settings.items())
        return f"{head}\n{self.table()}"

    def plot(self, ax=None, label: str | None = None, unit: str = "GB", x: float = 0.0):
        """Draw one stacked bar (component by component) on a matplotlib axis; returns the axis."""
        import matplotlib.pyplot as plt

        ax = ax or plt.subplots(figsize=(4, 4))[1]
        bottom = 0.0
        for i, c in enumerate(COMPONENTS):
            v = getattr(self, c) / UNITS[unit]
            ax.bar(x, v, bottom=bottom, color=f"C{i}", label=c.replace("_", " ") if x == 0 else None)
            bottom += v
        ax.set_ylabel(unit)
        if label is not None:
            ax.set_xticks([*ax.get_xticks(), x], [*[t.get_text() for t in ax.get_xticklabels()], label])
        return ax


def estimate_memory(
    model: Any,
    precision: str = "mixed",
    optimizer: str = "adamw",
    batch: int = 1,
    seq: int = 2048,
    checkpointing: str = "none",
    zero_stage: int = 0,
    n_d: int = 1,
    inference: bool = False,
    activation_model: str = "korthikanti",
) -> MemoryBreakdown:
    """Per-device memory to train (or, with `inference=True`, to generate from) a model.

    model: an `Architecture`, a transformers config, or a known name such as "llama-2-7b".
    Training: weights, gradients, optimizer states and master weights per `precision`/`optimizer`,
    sharded by ZeRO `zero_stage` over `n_d` data-parallel ranks (ZeRO §5); activations for one
    micro-batch of `batch` × `seq` tokens (Korthikanti et al., or `activation_model="hf-llama"`).
    Inference: weights plus a KV cache for `batch` × `seq` tokens at the weights' precision, and the
    transient activations of one layer.
    """
    arch = resolve_model(model)
    _check_choice("precision", precision, PRECISIONS)
    _check_choice("optimizer", optimizer, OPTIMIZERS)
    _check_choice("checkpointing", checkpointing, CHECKPOINTING)
    _check_choice("activation_model", activation_model, ACTIVATION_MODELS)
    _positive_int("batch", batch)
    _positive_int("seq", seq)
    _positive_int("n_d", n_d)
    if isinstance(zero_stage, bool) or zero_stage not in ZERO_STAGES:
        raise ValueError(f"zero_stage must be one of {ZERO_STAGES}, got {zero_stage!r}")
    p = PRECISIONS[precision]
    psi = arch.n_params
    settings = dict(
        model=arch.name,
        params=psi,
        precision=precision,
        optimizer=optimizer,
        batch=batch,
        seq=seq,
        checkpointing=checkpointing,
        zero_stage=zero_stage,
        n_d=n_d,
        inference=inference,
    )
    if inference:
        one_layer = activation_bytes(arch, batch, seq, precision, "none", activation_model) / arch.n_layers
        return MemoryBreakdown(
            p.weights * psi,
            0,
            0,
            0,
            0,
            one_layer,
            kv_cache_bytes(arch, batch, seq, p.weights),
            settings=settings,
        )
    opt = optimizer_state_bytes(arch, optimizer, precision)
    master = p.master * psi if optimizer != "none" else 0
    shard = lambda x, from_stage: x / n_d if zero_stage >= from_stage else x  # noqa: E731
    cast = autocast_copy_bytes(arch, precision, checkpointing)
    # At the start of backward the loss's fp32 (B, T, V) gradients join everything held; under full
    # checkpointing backward also recomputes one layer at a time: whichever is larger sets the peak.
    transient = loss_gradient_bytes(arch, batch, seq)
    if checkpointing == "full":
        one_layer = activation_bytes(arch, batch, seq, precision, "none", activation_model) / arch.n_layers
        transient = max(transient, one_layer)
    return MemoryBreakdown(
        weights=shard(p.weights * psi, 3),
        gradients=shard(p.grads * psi, 2),
        optimizer_states=shard(opt, 1),
        master_weights=shard(master, 1),
        autocast_copies=cast,
        activations=activation_bytes(arch, batch, seq, precision, checkpointing, activation_model),
        kv_cache=0.0,
        transient=transient,
        step_transient=2.0 * p.state * max(arch.param_numels) if optimizer == "adamw" else 0.0,
        settings=settings,
    )


# ---------------------------------------------------------------------------------------------
# Measuring: what a real training step actually holds
# ---------------------------------------------------------------------------------------------
def tensor_bytes(tensors: Any) -> int:
    """Bytes of the distinct storages behind some tensors (views and shared tensors counted once)."""
    seen: dict[int, int] = {}
    for t in tensors:
        if isinstance(t, torch.Tensor) and t.device.type != "meta":
            st = t.untyped_storage()
            seen[st.data_ptr()] = st.nbytes()
    return sum(seen.values())


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """Every tensor an optimizer keeps in its state (Adam m/v/step, 8-bit states, absmax, qmaps)."""
    return [v for state in optimizer.state.values() for v in state.values() if isinstance(v, torch.Tensor)]


def _is_weight_cast(t: torch.Tensor) -> bool:
    """True for autocast's 16-bit copy of a parameter (or a view of it): its graph leads to AccumulateGrad."""
    fn = t.grad_fn
    while fn is not None and type(fn).__name__ in ("TBackward0", "TransposeBackward0", "ViewBackward0"):
        fn = fn.next_functions[0][0]  # a view (linear saves weight.t()) of the cast
    if fn is None or type(fn).__name__ != "ToCopyBackward0":
        return False
    return any(nxt is not None and type(nxt).__name__ == "AccumulateGrad" for nxt, _ in fn.next_functions)


class SavedTensorMeter:
    """Context manager: exact bytes autograd saves for backward, by distinct storage (parameters excluded).

    `saved_tensors_hooks` sees every tensor an op keeps for its backward. Views share a storage, so we
    count storages, not tensors. Parameters are not activations; autocast's weight copies are counted
    apart (`cast_bytes`). With activation checkpointing the checkpoint keeps each layer's inputs outside
    autograd, so `watch_inputs` (forward pre-hooks on the checkpointed layers) records those.
    """

    def __init__(self, model: torch.nn.Module, watch_inputs: bool = False) -> None:
        self.model, self.watch_inputs = model, watch_inputs
        self._params = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self.storages: dict[int, int] = {}
        self.casts: dict[int, int] = {}
        self._handles: list = []

    def _record(self, t: torch.Tensor) -> None:
        st = t.untyped_storage()
        key = st.data_ptr()
        if key in self._params or t.device.type == "meta":
            return
        (self.casts if _is_weight_cast(t) else self.storages)[key] = st.nbytes()

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        self._record(t)
        return t

    def _pre_hook(self, module, args, kwargs) -> None:
        for v in [*args, *kwargs.values(), *kwargs.get("position_embeddings", ())]:
            if isinstance(v, torch.Tensor) and v.is_floating_point():
                self._record(v)

    def __enter__(self) -> SavedTensorMeter:
        if self.watch_inputs:
            for m in self.model.modules():
                if getattr(m, "gradient_checkpointing", False) and not isinstance(m, type(self.model)):
                    self._handles.append(m.register_forward_pre_hook(self._pre_hook, with_kwargs=True))
        self._ctx = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._ctx.__exit__(*exc)
        for h in self._handles:
            h.remove()

    @property
    def bytes(self) -> int:
        """Activation bytes saved for backward."""
        return sum(self.storages.values())

    @property
    def cast_bytes(self) -> int:
        """Bytes of autocast's 16-bit weight copies saved for backward."""
        return sum(self.casts.values())


class LiveMemoryTracker(TorchDispatchMode):
    """A CPU stand-in for `torch.cuda.max_memory_allocated`: live bytes of tensor storages and their peak.

    Every op's output storage is counted when it first appears and uncounted when Python frees it (a weak
    reference callback). Tensors alive before entering are passed in `existing` so the baseline is right.
    """

    def __init__(self, existing: Any = ()) -> None:
        super().__init__()
        self._live: dict[int, int] = {}
        self._refs: dict[int, weakref.ref] = {}
        for t in existing:
            self._add(t)
        self.peak = self.current

    @property
    def current(self) -> int:
        """Bytes alive now."""
        return sum(self._live.values())

    def _add(self, t: torch.Tensor) -> None:
        st = t.untyped_storage()
        key = st.data_ptr()
        if key in self._live or st.nbytes() == 0 or t.device.type == "meta":
            return
        self._live[key] = st.nbytes()

        def gone(_ref, key=key) -> None:
            self._live.pop(key, None)
            self._refs.pop(key, None)

        self._refs[key] = weakref.ref(st, gone)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self._add(t)
        self.peak = max(self.peak, self.current)
        return out


@dataclass
class MeasuredStep:
    """Bytes actually held in one training step, from the tensors themselves."""

    weights: int
    gradients: int
    optimizer_states: int
    autocast_copies: int
    activations: int
    peak: int
    peak_source: str  # "cuda.max_memory_allocated" or "live-tensor tracker (CPU)"

    def as_dict(self) -> dict[str, int]:
        """The numbers as a dict."""
        return {k: v for k, v in asdict(self).items() if k != "peak_source"}


def make_optimizer(model: torch.nn.Module, optimizer: str, lr: float = 1e-3) -> torch.optim.Optimizer | None:
    """The optimizer the calculator names: torch AdamW, bitsandbytes AdamW8bit, SGD with momentum, or none."""
    _check_choice("optimizer", optimizer, OPTIMIZERS)
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, foreach=False)
    if optimizer == "sgd_momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, foreach=False)
    if optimizer == "adamw8bit":
        import bitsandbytes as bnb

        return bnb.optim.AdamW8bit(params, lr=lr)
    return None


def measure_training_step(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    optimizer: str = "adamw",
    autocast_dtype: torch.dtype | None = None,
    checkpointing: str = "none",
) -> MeasuredStep:
    """Run two real training steps (the first creates optimizer states) and measure the second.

    x, y: (B, T) token ids and targets on the model's device. `checkpointing="full"` turns on
    transformers' `activation_checkpointing_enable()` for the step (and off again afterwards).
    """
    _check_choice("checkpointing", checkpointing, ("none", "full"))
    dev = x.device
    opt = make_optimizer(model, optimizer)
    model.train()
    if checkpointing == "full":
        model.activation_checkpointing_enable()
    autocast = (
        torch.autocast(device_type=dev.type, dtype=autocast_dtype)
        if autocast_dtype
        else contextlib.nullcontext()
    )

    def loss_fn() -> torch.Tensor:
        with autocast:
            logits = model(input_ids=x).logits  # (B, T, V)
        return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))

    try:
        loss_fn().backward()  # step 1: creates gradients and optimizer states
        if opt is not None:
            opt.step()
        model.zero_grad(set_to_none=True)
        existing = [*model.parameters(), *model.buffers(), *(optimizer_tensors(opt) if opt else [])]
        if dev.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        meter = SavedTensorMeter(model, watch_inputs=checkpointing == "full")
        with LiveMemoryTracker(existing) as tracker:
            with meter:
                loss = loss_fn()
            loss.backward()
            grads = tensor_bytes(p.grad for p in model.parameters())
            if opt is not None:
                opt.step()
        peak, source = tracker.peak, "live-tensor tracker (CPU)"
        if dev.type == "cuda":
            torch.cuda.synchronize()
            peak, source = torch.cuda.max_memory_allocated(), "cuda.max_memory_allocated"
    finally:
        if checkpointing == "full":
            model.activation_checkpointing_disable()
    return MeasuredStep(
        weights=tensor_bytes(model.parameters()),
        gradients=grads,
        optimizer_states=tensor_bytes(optimizer_tensors(opt)) if opt else 0,
        autocast_copies=meter.cast_bytes,
        activations=meter.bytes,
        peak=peak,
        peak_source=source,
    )


# ---------------------------------------------------------------------------------------------
# Command line: python -m workshop_utils.memory llama-2-7b --optimizer adamw --precision mixed --batch 1 --seq 4096
# ---------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> MemoryBreakdown:
    """Parse arguments, print the breakdown table, return it."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m workshop_utils.memory", description=main.__doc__)
    ap.add_argument("model", help="a known model name (e.g. llama-2-7b) or a parameter count such as 7e9")
    ap.add_argument("--precision", default="mixed", choices=list(PRECISIONS))
    ap.add_argument("--optimizer", default="adamw", choices=list(OPTIMIZERS))
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--checkpointing", default="none", choices=list(CHECKPOINTING))
    ap.add_argument("--activation-model", default="korthikanti", choices=list(ACTIVATION_MODELS))
    ap.add_argument("--zero", type=int, default=0, choices=list(ZERO_STAGES), help="ZeRO stage")
    ap.add_argument("--n-d", type=int, default=1, help="data-parallel degree")
    ap.add_argument("--inference", action="store_true", help="weights + KV cache instead of training")
    ap.add_argument("--hidden", type=int, help="with a raw parameter count: hidden size")
    ap.add_argument("--layers", type=int, help="with a raw parameter count: number of layers")
    ap.add_argument("--heads", type=int, help="with a raw parameter count: attention heads")
    ap.add_argument("--unit", default="GB", choices=list(UNITS))
    args = ap.parse_args(argv)
    model: Any = args.model
    try:
        n = float(args.model)
    except ValueError:
        n = None
    if n is not None:
        if None in (args.hidden, args.layers, args.heads):
            ap.error("a raw parameter count needs --hidden, --layers and --heads")
        model = Architecture.from_numbers(int(n), args.hidden, args.layers, args.heads)
    try:
        out = estimate_memory(
            model,
            args.precision,
            args.optimizer,
            args.batch,
            args.seq,
            args.checkpointing,
            args.zero,
            args.n_d,
            args.inference,
            args.activation_model,
        )
    except ValueError as err:
        ap.error(str(err))
    print(", ".join(f"{k}={v}" for k, v in out.settings.items()))
    print(out.table(args.unit))
    return out


if __name__ == "__main__":
    main()
