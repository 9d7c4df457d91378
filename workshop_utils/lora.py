"""LoRA from scratch (Hu et al. 2021, arXiv:2106.09685): a frozen W plus a trainable low-rank update.

    h = W x + (alpha / r) * B A x        A: (r, d_in) random,  B: (d_out, r) zeros  ->  no-op at step 0

`apply_lora` swaps the targeted `nn.Linear`s of a model for `LoRALinear`s and freezes everything else;
`merge_lora` folds W + (alpha/r) B A back into plain `nn.Linear`s, so inference costs what the base did.
Tests check it equal to PEFT's LoRA (same weights -> same logits, same merged weights).
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn


class LoRALinear(nn.Module):
    """y = base(x) + (alpha/r) * dropout(x) A^T B^T, with `base` frozen."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):  # bitsandbytes' Linear4bit is an nn.Linear too: QLoRA
            raise TypeError(f"LoRALinear wraps nn.Linear, got {type(base).__name__} (dequantize first)")
        if r <= 0:
            raise ValueError(f"LoRA rank r must be > 0, got {r}")
        if alpha <= 0:
            raise ValueError(f"LoRA alpha must be > 0, got {alpha}")
        self.base, self.r, self.alpha, self.scale = base, r, alpha, alpha / r
        self.base.requires_grad_(False)
        dtype = torch.float32 if is_quantized(base) else base.weight.dtype  # 4-bit base: adapters in fp32
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, dtype=dtype))  # (r, d_in)
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, dtype=dtype))  # (d_out, r)
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
        if is_quantized(self.base):
            raise TypeError(
                f"cannot merge into a quantised {type(self.base).__name__}: its weight is packed 4-bit codes; "
                "dequantize first (merge_lora(model, dequantize=True))"
            )
        out = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None)
        out = out.to(device=self.base.weight.device, dtype=self.base.weight.dtype)
        with torch.no_grad():
            out.weight.copy_(self.base.weight + self.delta_weight().to(self.base.weight.dtype))
            if self.base.bias is not None:
                out.bias.copy_(self.base.bias)
        return out


def is_quantized(layer: nn.Module) -> bool:
    """True for a layer whose weight is stored quantised (e.g. bitsandbytes Linear4bit: uint8 codes)."""
    weight = getattr(layer, "weight", None)
    return weight is not None and (not weight.dtype.is_floating_point or hasattr(weight, "quant_state"))


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


class TokenRows(nn.Module):
    """A frozen embedding (or output) layer whose rows for a few token ids train: PEFT's `trainable_token_indices`.

    New special tokens (a chat template's) were never seen in pre-training; their embedding and output
    rows are random. LoRA's low-rank update of the attention/MLP matrices cannot move them, so they are
    trained directly: `values` (k, d) starts as the base rows and replaces them in the forward pass.
    """

    def __init__(self, base: nn.Embedding | nn.Linear, token_ids: list[int]) -> None:
        super().__init__()
        if not isinstance(base, nn.Embedding | nn.Linear):
            raise TypeError(f"TokenRows wraps nn.Embedding or nn.Linear, got {type(base).__name__}")
        n_rows = base.weight.shape[0]
        bad = [t for t in token_ids if not 0 <= t < n_rows]
        if not token_ids or bad or len(set(token_ids)) != len(token_ids):
            raise ValueError(f"token_ids must be distinct ids in [0, {n_rows}), got {token_ids}")
        self.base = base
        self.base.requires_grad_(False)
        self.register_buffer("token_ids", torch.tensor(token_ids), persistent=False)
        self.values = nn.Parameter(base.weight.detach()[self.token_ids].clone())  # (k, d)

    def weight(self) -> torch.Tensor:
        """The base weight with the trained rows in place, (V, d)."""
        return self.base.weight.index_copy(0, self.token_ids, self.values.to(self.base.weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.base, nn.Embedding):  # x: (B, T) ids -> (B, T, d)
            return F.embedding(x, self.weight(), self.base.padding_idx)
        return F.linear(x, self.weight(), self.base.bias)  # x: (B, T, d) -> (B, T, V)

    def merged(self) -> nn.Module:
        """The plain layer with the trained rows written into its weight."""
        out = copy.deepcopy(self.base)
        with torch.no_grad():
            out.weight.copy_(self.weight())
        return out


def train_token_rows(model: nn.Module, token_ids: list[int]) -> int:
    """Make the input-embedding and output rows of `token_ids` trainable (in place); returns the added count."""
    added = 0
    for layer, setter in ((model.get_input_embeddings(), model.set_input_embeddings),
                          (model.get_output_embeddings(), model.set_output_embeddings)):  # fmt: skip
        if isinstance(layer, TokenRows):
            raise ValueError("model already has trainable token rows")
        wrapped = TokenRows(layer, token_ids)
        setter(wrapped)
        added += wrapped.values.numel()
    if model.get_input_embeddings().base.weight is model.get_output_embeddings().base.weight:
        raise ValueError("tied input/output embeddings: train the rows once (PEFT ties the adapters)")
    return added


def merge_lora(model: nn.Module, dequantize: bool = False) -> nn.Module:
    """Replace every LoRALinear by a plain nn.Linear holding W + (alpha/r) B A (in place).

    A quantised base (4-bit) cannot absorb B A: with `dequantize=True` it is first dequantised to a float
    nn.Linear (the merged model is then full precision); otherwise merging it raises.
    """
    names = [n for n, m in model.named_modules() if isinstance(m, LoRALinear)]
    if not names:
        raise ValueError("model has no LoRA layers to merge (already merged?)")
    if hasattr(model, "get_input_embeddings") and isinstance(model.get_input_embeddings(), TokenRows):
        model.set_input_embeddings(model.get_input_embeddings().merged())
        model.set_output_embeddings(model.get_output_embeddings().merged())
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        layer = getattr(parent, child)
        if dequantize and is_quantized(layer.base):
            from .quant import dequantize_linear

            layer.base = dequantize_linear(layer.base)
        setattr(parent, child, layer.merged())
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


# ---------------------------------------------------------------------------------------------
# Counting and predicting: what LoRA trains and what it saves
# ---------------------------------------------------------------------------------------------
# Target sets by the module names of LLaMA-style models (transformers' LlamaForCausalLM).
TARGET_SETS: dict[str, list[str]] = {
    "q,v": ["q_proj", "v_proj"],  # the LoRA paper's choice
    "attention": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "all linear": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],  # QLoRA's
}


def lora_count_table(
    model: nn.Module, ranks: list[int], target_sets: dict[str, list[str]] | None = None
) -> list[dict]:
    """Rows (targets, r, trainable, % of the base) for every rank and target set; `model` may live on meta."""
    total = sum(p.numel() for p in model.parameters())
    rows = []
    for label, targets in (target_sets or TARGET_SETS).items():
        for r in ranks:
            n = lora_parameter_count(model, r, targets)
            rows.append({"targets": label, "r": r, "trainable": n, "percent": 100 * n / total})
    return rows


def lora_paper_count(r: int, n_layers: int, d_model: int, matrices_per_layer: int = 2) -> int:
    """Hu et al. §5.1: |Theta| = 2 * L_hat * d_model * r with L_hat = adapted matrices (square d x d)."""
    if min(r, n_layers, d_model, matrices_per_layer) <= 0:
        raise ValueError(
            f"r, n_layers, d_model, matrices_per_layer must be > 0, got {r, n_layers, d_model, matrices_per_layer}"
        )
    return 2 * n_layers * matrices_per_layer * d_model * r


def update_spectrum(delta_w: torch.Tensor) -> torch.Tensor:
    """Singular values (descending) of a weight update Delta W = W_finetuned - W_base, shape (min(d_out, d_in),)."""
    if delta_w.dim() != 2:
        raise ValueError(f"delta_w must be a matrix (d_out, d_in), got shape {tuple(delta_w.shape)}")
    return torch.linalg.svdvals(delta_w.detach().double()).float()


def energy_captured(singular_values: torch.Tensor, r: int) -> float:
    """Share of ||Delta W||_F^2 kept by the best rank-r approximation (Eckart-Young): sum_{i<r} s_i^2 / sum s_i^2."""
    if r <= 0:
        raise ValueError(f"rank r must be > 0, got {r}")
    energy = singular_values.double().pow(2)
    return (energy[:r].sum() / energy.sum()).item()


def predicted_training_bytes(
    model: nn.Module, precision: str = "fp32", optimizer: str = "adamw"
) -> dict[str, float]:
    """Gradients + optimizer states for the parameters that train now (module 04's calculator, trainable only).

    Frozen weights get neither: that is where LoRA's training memory goes.
    """
    from dataclasses import replace

    from .memory import PRECISIONS, Architecture, optimizer_state_bytes

    numels = tuple(p.numel() for p in model.parameters() if p.requires_grad)
    if not numels:
        raise ValueError("model has no trainable parameters")
    arch = replace(Architecture.from_numbers(10**6, 64, 1, 1, vocab=64), param_numels=numels)
    grads = PRECISIONS[precision].grads * sum(numels)
    return {"gradients": float(grads), "optimizer_states": optimizer_state_bytes(arch, optimizer, precision)}


# ---------------------------------------------------------------------------------------------
# Full fine-tuning vs LoRA on the module-07 SFT task
# ---------------------------------------------------------------------------------------------
@dataclass
class FinetuneRun:
    """One fine-tuning run on the SFT task: settings, size, exact match, memory and time."""

    method: str  # "full" or "lora"
    r: int | None
    alpha: float | None
    lr: float
    targets: str | None
    trainable: int
    percent: float  # trainable share of the model's parameters
    exact_match: float
    answer_loss: float  # mean answer-token NLL on the evaluation examples (nats/token): the low-noise metric
    content_loss: float  # the same on the answer's words only (without the <|end|> format token)
    token_rows: bool  # were the chat tokens' embedding/output rows trained too
    state_bytes: int  # measured gradients + optimizer states of one training step
    peak_bytes: int  # measured peak of one training step (live tensors)
    seconds: float
    final_loss: float

    def row(self) -> dict:
        """The run as a flat dict (for a DataFrame)."""
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict) -> FinetuneRun:
        """Rebuild a run from its `row()` (e.g. one loaded by the live fast path)."""
        names = {f.name for f in fields(cls)}
        if not isinstance(row, dict) or set(row) != names:
            got = set(row) if isinstance(row, dict) else type(row).__name__
            raise ValueError(f"not a FinetuneRun row: expected keys {sorted(names)}, got {got}")
        return cls(**row)


def _is_adapter(name: str) -> bool:
    return name.rsplit(".", 1)[-1] in ("lora_A", "lora_B", "values")


def trained_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """What fine-tuning changed: the LoRA A and B matrices (and trained token rows), else every weight."""
    adapters = {n: p.detach() for n, p in model.named_parameters() if _is_adapter(n)}
    return adapters or {n: t.detach() for n, t in model.state_dict().items()}


def rebuild_finetuned(base: nn.Module, run: FinetuneRun, weights: dict[str, torch.Tensor]) -> nn.Module:
    """The model of `run` from a copy of `base` and its `trained_weights` (LoRA: same adapters, then A and B)."""
    model = copy.deepcopy(base)
    if run.method == "full":
        model.load_state_dict(weights)  # strict: every weight
        return model
    if run.method != "lora" or run.r is None or run.targets not in TARGET_SETS:
        raise ValueError(
            f"cannot rebuild a run with method={run.method!r}, r={run.r!r}, targets={run.targets!r}"
        )
    apply_lora(model, run.r, run.alpha, TARGET_SETS[run.targets])
    if run.token_rows:
        from .tokenizer import SPECIAL_TOKENS

        train_token_rows(model, list(range(len(SPECIAL_TOKENS))))  # the course tokenizer's ids 0..6
    expected = {n: p.shape for n, p in model.named_parameters() if _is_adapter(n)}
    wrong = sorted(n for n in set(weights) & set(expected) if weights[n].shape != expected[n])
    if set(weights) != set(expected) or wrong:
        raise ValueError(
            f"weights do not match the adapters of r={run.r} on {run.targets!r}: missing "
            f"{sorted(set(expected) - set(weights))[:3]}, unexpected {sorted(set(weights) - set(expected))[:3]}, "
            f"other shape {wrong[:3]}"
        )
    model.load_state_dict(weights, strict=False)  # the frozen base weights are base's own
    return model


def finetune(
    base: nn.Module,
    tokenizer,
    train: list,
    eval_examples: list,
    cfg,
    device,
    r: int | None = None,
    alpha: float | None = None,
    targets: str = "all linear",
    dropout: float = 0.0,
    measure: bool = True,
    threads: int | None = 1,
    token_rows: bool = False,
    val_examples: list | None = None,
) -> tuple[nn.Module, FinetuneRun]:
    """Fine-tune a copy of `base` (all weights if r is None, else LoRA on TARGET_SETS[targets]) with module 07's loop.

    token_rows=True also trains the chat special tokens' embedding and output rows (LoRA only); with
    `val_examples` and `cfg.patience`, training stops early on the validation answer loss.
    """
    from .memory import measure_training_step
    from .sft import answer_loss, evaluate_exact_match, prepare_features, sft_train, torch_threads
    from .tokenizer import SPECIAL_TOKENS

    if r is not None and targets not in TARGET_SETS:
        raise ValueError(f"targets must be one of {list(TARGET_SETS)}, got {targets!r}")
    if token_rows and r is None:
        raise ValueError("token_rows=True is for LoRA (full fine-tuning trains every row already)")
    model = copy.deepcopy(base)
    total = sum(p.numel() for p in model.parameters())
    alpha = None if r is None else (alpha if alpha is not None else r)  # alpha = r: the paper's default
    if r is not None:
        apply_lora(model, r, alpha, TARGET_SETS[targets], dropout)
        if token_rows:
            train_token_rows(model, tokenizer.convert_tokens_to_ids(SPECIAL_TOKENS))
    else:
        model.requires_grad_(True)
    state_bytes = peak_bytes = 0  # 0 = not measured (measure=False, e.g. in a sweep)
    if measure:
        feats = prepare_features(train[: cfg.batch_size], tokenizer, cfg.context).features
        width = max(len(f.input_ids) for f in feats)
        pad = tokenizer.pad_token_id
        x = torch.tensor([f.input_ids + [pad] * (width - len(f.input_ids)) for f in feats])  # (B, T)
        step = measure_training_step(copy.deepcopy(model), x, x, "adamw")  # a throw-away copy: 2 real steps
        state_bytes, peak_bytes = step.gradients + step.optimizer_states, step.peak
    with torch_threads(threads):  # module 07: one thread is far faster for tiny models on a busy CPU
        result = sft_train(
            model, tokenizer, train, cfg, device, show_progress=False, val_examples=val_examples
        )
        em = evaluate_exact_match(model, tokenizer, eval_examples, device)
        losses = answer_loss(model, tokenizer, eval_examples, device, cfg.context)
    trainable = trainable_parameters(model)[0]
    run = FinetuneRun("full" if r is None else "lora", r, alpha, cfg.lr,
                      None if r is None else targets, trainable, 100 * trainable / total, em,
                      float(losses["all"].mean()), float(losses["content"].mean()), token_rows,
                      state_bytes, peak_bytes, result.seconds, result.final_loss)  # fmt: skip
    return model, run


def update_spectra(before: nn.Module, after: nn.Module, targets: list[str]) -> dict[str, torch.Tensor]:
    """Singular values of Delta W = W_after - W_before for every targeted nn.Linear, by module name."""
    after_weights = {n: m.weight for n, m in after.named_modules() if isinstance(m, nn.Linear)}
    out = {}
    for name, m in before.named_modules():
        if isinstance(m, nn.Linear) and _matches(name, targets):
            out[name] = update_spectrum(after_weights[name] - m.weight)  # (min(d_out, d_in),)
    if not out:
        raise ValueError(f"targets {targets!r} match no nn.Linear")
    return out


# ---------------------------------------------------------------------------------------------
# Interop with PEFT: our adapters as PEFT adapters (same A and B), saved as safetensors
# ---------------------------------------------------------------------------------------------
def copy_adapters_to_peft(model: nn.Module, peft_model: nn.Module, adapter_name: str = "default") -> int:
    """Copy every LoRALinear's A and B into the PEFT model's matching LoRA layer; returns how many."""
    peft_modules = dict(peft_model.base_model.model.named_modules())
    n = 0
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, LoRALinear):
                target = peft_modules.get(name)
                if target is None or adapter_name not in getattr(target, "lora_A", {}):
                    raise KeyError(f"PEFT model has no LoRA adapter {adapter_name!r} on {name!r}")
                if target.scaling[adapter_name] != m.scale:
                    raise ValueError(f"{name}: PEFT scale {target.scaling[adapter_name]} != ours {m.scale}")
                target.lora_A[adapter_name].weight.copy_(m.lora_A)  # (r, d_in)
                target.lora_B[adapter_name].weight.copy_(m.lora_B)  # (d_out, r)
                n += 1
    if n == 0:
        raise ValueError("model has no LoRA layers to copy")
    return n


def save_as_peft_adapter(
    model: nn.Module, base: nn.Module, path, r: int, alpha: float, targets: str = "all linear"
) -> None:
    """Save our trained adapters as a PEFT adapter folder (adapter_config.json + adapter_model.safetensors)."""
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(base, LoraConfig(r=r, lora_alpha=alpha, target_modules=TARGET_SETS[targets],
                                                  lora_dropout=0.0))  # fmt: skip
    copy_adapters_to_peft(model, peft_model)
    peft_model.save_pretrained(path, safe_serialization=True)
