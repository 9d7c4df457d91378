"""The course's training loop, in plain PyTorch: AdamW, warmup + cosine, clipping, autocast, evaluation.

Readable top to bottom; used by module 03 (pre-training), 04 (mixed precision), 06 (the scaling sweep)
and, with a different batch source, by 07/08 (fine-tuning).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .device import DeviceInfo, generator
from .notebook import progress


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one run (sizes usually come from `profile.lm`)."""

    steps: int
    lr: float
    batch_size: int
    context: int
    warmup: int = 0
    eval_every: int = 0  # 0 = evaluate only at the end
    eval_batches: int = 10
    grad_clip: float = 1.0
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)  # LLaMA's AdamW betas
    min_lr_ratio: float = 0.1  # cosine decays to 10 % of peak, as in LLaMA
    seed: int = 0
    sample_steps: tuple[int, ...] = ()
    sample_prompt: str = ""
    sample_tokens: int = 60
    patience: int = 0  # stop after this many evaluations without a new best validation loss (0: never)
    keep_best: bool = False  # restore the trainable weights of the best evaluation at the end

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "context"):
            if getattr(self, name) <= 0:
                raise ValueError(f"TrainConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr}")
        if self.patience < 0:
            raise ValueError(f"TrainConfig.patience must be >= 0, got {self.patience}")
        if not 0 <= self.warmup <= self.steps:
            raise ValueError(f"TrainConfig.warmup must be in [0, steps={self.steps}], got {self.warmup}")


@dataclass
class TrainResult:
    """What a run produced: per-step history, text samples by step, wall time and throughput."""

    history: list[dict] = field(default_factory=list)
    samples: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0
    tokens_per_s: float = 0.0
    best_val_loss: float = math.inf
    best_step: int = 0
    stopped_early: bool = False

    def evals(self) -> list[dict]:
        """History rows that carry a validation loss."""
        return [h for h in self.history if "val_loss" in h]

    @property
    def final_val_loss(self) -> float:
        """Validation loss at the last evaluation."""
        return self.evals()[-1]["val_loss"]

    def to_json(self) -> dict:
        """A JSON-ready dict (sample steps become string keys)."""
        return {
            "history": self.history,
            "samples": {str(k): v for k, v in self.samples.items()},
            "seconds": self.seconds,
            "tokens_per_s": self.tokens_per_s,
        }

    @classmethod
    def from_json(cls, data: dict) -> TrainResult:
        """The inverse of `to_json`."""
        samples = {int(k): v for k, v in data["samples"].items()}
        return cls(data["history"], samples, data["seconds"], data["tokens_per_s"])


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate at `step`: linear warmup, then cosine decay to `min_lr_ratio * lr`."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress_frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress_frac)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def encode_text(tokenizer, text: str) -> torch.Tensor:
    """Token ids of a long text, encoded in one piece (identical to what `tokenizer(text)` gives)."""
    if not text:
        raise ValueError("cannot encode an empty text")
    encoded = tokenizer.backend_tokenizer.encode(text, add_special_tokens=False)
    return torch.tensor(encoded.ids, dtype=torch.long)  # (N,)


def lm_batch(
    ids: torch.Tensor, batch_size: int, context: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows of `ids`: inputs x and next-token targets y, both (B, T)."""
    if ids.numel() <= context + 1:
        raise ValueError(f"need more than context+1={context + 1} tokens, got {ids.numel()}")
    starts = torch.randint(0, ids.numel() - context - 1, (batch_size,), generator=gen)
    x = torch.stack([ids[s : s + context] for s in starts.tolist()])  # (B, T)
    y = torch.stack([ids[s + 1 : s + 1 + context] for s in starts.tolist()])  # (B, T), shifted by one
    return x, y


def causal_lm_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy of a causal LM on inputs x and targets y."""
    logits = model(input_ids=x).logits  # (B, T, V)
    return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))


@torch.no_grad()
def evaluate_loss(model: torch.nn.Module, ids: torch.Tensor, cfg: TrainConfig, device: DeviceInfo) -> float:
    """Mean loss on `cfg.eval_batches` fixed, evenly spaced windows of `ids` (same windows every call)."""
    was_training = model.training
    model.eval()
    n_windows = cfg.eval_batches * cfg.batch_size
    last = ids.numel() - cfg.context - 1
    if last <= 0:
        raise ValueError(f"validation set too short for context {cfg.context}")
    starts = torch.linspace(0, last, n_windows).long().tolist()
    total = 0.0
    for b in range(cfg.eval_batches):
        chunk = starts[b * cfg.batch_size : (b + 1) * cfg.batch_size]
        x = torch.stack([ids[s : s + cfg.context] for s in chunk]).to(device.device)
        y = torch.stack([ids[s + 1 : s + 1 + cfg.context] for s in chunk]).to(device.device)
        with device.autocast():
            total += causal_lm_loss(model, x, y).item()
    model.train(was_training)
    return total / cfg.eval_batches


@torch.no_grad()
def generate_text(
    model: torch.nn.Module,
    tokenizer,
    prompt: str,
    max_new_tokens: int = 60,
    temperature: float = 0.8,
    top_k: int | None = 50,
    seed: int = 0,
) -> str:
    """Sample a continuation of `prompt` (seeded, so the same call gives the same text)."""
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"] if prompt else []
    ids = [tokenizer.bos_token_id, *ids] if not ids else ids
    x = torch.tensor([ids], device=dev)  # (1, T)
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        out = model.generate(
            x,
            attention_mask=torch.ones_like(x),
            max_new_tokens=max_new_tokens,
            do_sample=temperature > 0,
            temperature=temperature if temperature > 0 else None,
            top_k=top_k if temperature > 0 else None,
            top_p=None,
            pad_token_id=tokenizer.pad_token_id,
        )
    model.train(was_training)
    return tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on norms and biases), as LLaMA does."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=False)


Batch = dict[str, torch.Tensor]  # input_ids (B, T) plus what the loss needs: targets or labels, masks


def lm_loss(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """Pre-training loss of a batch {input_ids, targets}: next-token cross-entropy on every position."""
    return causal_lm_loss(model, batch["input_ids"], batch["targets"])


def train_loop(
    model: torch.nn.Module,
    next_batch: Callable[[int, torch.Generator], Batch],
    loss_fn: Callable[[torch.nn.Module, Batch], torch.Tensor],
    cfg: TrainConfig,
    device: DeviceInfo,
    evaluate: Callable[[], dict[str, float]] | None = None,
    on_step: Callable[[int, TrainResult], None] | None = None,
    show_progress: bool = True,
    desc: str = "train",
    stop_at: int | None = None,
) -> TrainResult:
    """The course's one training loop: AdamW, warmup + cosine, clipping, autocast, periodic evaluation.

    `next_batch(step, gen)` gives each step's batch, `loss_fn(model, batch)` its loss (pre-training: every
    token; fine-tuning: the answer tokens), `evaluate()` a dict with "val_loss" at step 0, every
    `cfg.eval_every` steps and at the end. With `cfg.patience` the run stops after that many evaluations
    without a new best, and with `cfg.keep_best` the trainable weights of the best evaluation are restored.
    `stop_at` ends the run early on the same schedule (to replay the start of a stored run).
    Only parameters with `requires_grad` train, so a LoRA-wrapped model works as is.
    """
    model.to(device.device).train()
    opt = make_optimizer(model, cfg)
    scaler = device.grad_scaler()
    gen = generator(cfg.seed)
    result = TrainResult()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    best: dict[str, torch.Tensor] = {}
    since_best = 0

    def log_eval(row: dict) -> None:
        nonlocal since_best
        if evaluate is None:
            return
        row.update(evaluate())
        if row["val_loss"] < result.best_val_loss:
            result.best_val_loss, result.best_step, since_best = row["val_loss"], row["step"], 0
            if cfg.keep_best:
                best.update({n: p.detach().clone() for n, p in trainable})
        else:
            since_best += 1

    result.history.append({"step": 0, "tokens": 0, "seconds": 0.0})
    log_eval(result.history[-1])
    if on_step:
        on_step(0, result)
    t0 = time.perf_counter()
    tokens = 0
    bar = progress(range(1, cfg.steps + 1), desc=desc, disable=not show_progress)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = lr_at(step - 1, cfg)
        batch = {k: v.to(device.device) for k, v in next_batch(step, gen).items()}
        with device.autocast():
            loss = loss_fn(model, batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {step}: lower the learning rate")
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(opt)
        scaler.update()
        tokens += batch["input_ids"].numel()
        row = {
            "step": step,
            "train_loss": loss.item(),
            "lr": opt.param_groups[0]["lr"],
            "grad_norm": float(grad_norm),
            "tokens": tokens,
            "seconds": time.perf_counter() - t0,
        }
        if (cfg.eval_every and step % cfg.eval_every == 0) or step == cfg.steps:
            log_eval(row)
            if "val_loss" in row:
                bar.set_postfix(train=f"{row['train_loss']:.3f}", val=f"{row['val_loss']:.3f}")
        result.history.append(row)
        if on_step:
            on_step(step, result)
        if cfg.patience and since_best >= cfg.patience:
            result.stopped_early = True
            break
        if stop_at is not None and step >= stop_at:
            break
    result.seconds = time.perf_counter() - t0
    result.tokens_per_s = tokens / result.seconds
    if best:
        with torch.no_grad():
            for n, p in trainable:
                p.copy_(best[n])
    return result


def train_lm(
    model: torch.nn.Module,
    train_ids: torch.Tensor,
    val_ids: torch.Tensor,
    cfg: TrainConfig,
    device: DeviceInfo,
    tokenizer=None,
    show_progress: bool = True,
) -> TrainResult:
    """Pre-train a causal LM on random windows of `train_ids`; evaluate on `val_ids`; sample at `cfg.sample_steps`."""

    def next_batch(step: int, gen: torch.Generator) -> Batch:
        x, y = lm_batch(train_ids, cfg.batch_size, cfg.context, gen)  # (B, T) each
        return {"input_ids": x, "targets": y}

    def evaluate() -> dict[str, float]:
        val_loss = evaluate_loss(model, val_ids, cfg, device)
        return {"val_loss": val_loss, "val_ppl": math.exp(val_loss)}

    def sample(step: int, result: TrainResult) -> None:
        if tokenizer is not None and step in cfg.sample_steps:
            result.samples[step] = generate_text(
                model, tokenizer, cfg.sample_prompt, cfg.sample_tokens, seed=cfg.seed
            )

    return train_loop(model, next_batch, lm_loss, cfg, device, evaluate, sample, show_progress)
