"""From BERT to GPT-2 and LLaMA: tiny models of each family, their masks and objectives, and the
component changes from GPT-2 to LLaMA, each small enough to check by hand.

Families (all built from `transformers` configs, sized by `profile.arch`):

| family | shape           | attention                                  | objective                  |
|--------|-----------------|--------------------------------------------|----------------------------|
| bert   | encoder         | bidirectional                              | masked LM (fill a blank)   |
| t5     | encoder-decoder | bidirectional + causal + cross-attention   | span corruption            |
| gpt2   | decoder         | causal                                     | next token (continue text) |
| llama  | decoder         | causal                                     | next token (continue text) |

The toy models use a character vocabulary (`CharVocab`) so they stay independent of the course tokenizer.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
import transformers as tf
from torch import nn

FAMILIES = ("bert", "t5", "gpt2", "llama")
OBJECTIVES = {"bert": "masked LM", "t5": "span corruption", "gpt2": "next token", "llama": "next token"}
IGNORE = -100  # label value the HF losses skip


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one thread, then restore: tiny matmuls lose more to thread sync than they gain
    (on a busy 2-core machine, 2 threads made these loops 10x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _single_threaded(fn: Callable) -> Callable:
    """Decorator form of `_one_thread`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _one_thread():
            return fn(*args, **kwargs)

    return wrapper


def _check_family(family: str) -> str:
    """Return `family` or raise naming the valid ones."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; valid families: {', '.join(FAMILIES)}")
    return family


# --- text and a character vocabulary ----------------------------------------------------------


def arch_text(profile: Any) -> tuple[str, str]:
    """(train, val) text for module 01: the first `profile.arch.text_chars` of the course corpus splits."""
    from .corpus import load_corpus

    corpus = load_corpus(profile)
    n = profile.arch.text_chars
    return corpus.train[:n], corpus.val[: max(n // 10, 4_000)]


class CharVocab:
    """Characters of a text plus the special tokens the four objectives need."""

    def __init__(self, text: str, n_sentinels: int = 8) -> None:
        self.specials = ["<pad>", "<mask>", "<eos>"] + [f"<s{i}>" for i in range(n_sentinels)]
        self.itos = self.specials + sorted(set(text) - set(self.specials))
        self.stoi = {s: i for i, s in enumerate(self.itos)}
        self.pad, self.mask, self.eos = 0, 1, 2
        self.n_sentinels = n_sentinels
        self.n_special = len(self.specials)

    def __len__(self) -> int:
        return len(self.itos)

    def sentinel(self, i: int) -> int:
        """Id of the i-th T5 sentinel (`<s0>`, `<s1>`, ...)."""
        if not 0 <= i < self.n_sentinels:
            raise ValueError(f"sentinel index must be in [0, {self.n_sentinels}), got {i}")
        return 3 + i

    def encode(self, text: str) -> torch.Tensor:
        """Character ids, shape (len(text),); a character not in the vocabulary is an error."""
        missing = sorted(set(text) - set(self.stoi))
        if missing:
            raise ValueError(f"text has characters outside the vocabulary: {missing[:10]}")
        return torch.tensor([self.stoi[c] for c in text], dtype=torch.long)

    def decode(self, ids: Sequence[int] | torch.Tensor, show_special: bool = True) -> str:
        """Text for ids; special tokens shown as `[MASK]`, `<s0>`, ... (or dropped)."""
        out = []
        for i in torch.as_tensor(ids).tolist():
            s = self.itos[i]
            if i < self.n_special:
                s = ("[MASK]" if i == self.mask else s) if show_special else ""
            out.append(s)
        return "".join(out)


# --- the four tiny models ---------------------------------------------------------------------


def swiglu_hidden(d_model: int, multiple_of: int = 256, ffn_dim_multiplier: float | None = None) -> int:
    """LLaMA's MLP width: 2/3 of 4*d (same params as a GELU MLP of 4*d), rounded up to `multiple_of`.

    The rule of Meta's reference code (`llama/model.py`, FeedForward.__init__)."""
    hidden = int(2 * (4 * d_model) / 3)
    if ffn_dim_multiplier is not None:
        hidden = int(ffn_dim_multiplier * hidden)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


def tiny_config(family: str, vocab: CharVocab, arch: Mapping[str, Any], context: int) -> Any:
    """A transformers config of `family` with the sizes of `arch` (d_model, n_layers, n_heads)."""
    d, layers, heads = arch["d_model"], arch["n_layers"], arch["n_heads"]
    v = len(vocab)
    if _check_family(family) == "bert":
        return tf.BertConfig(
            vocab_size=v, hidden_size=d, num_hidden_layers=layers, num_attention_heads=heads,
            intermediate_size=4 * d, max_position_embeddings=context, type_vocab_size=1,
            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, pad_token_id=vocab.pad,
        )  # fmt: skip
    if family == "t5":
        return tf.T5Config(
            vocab_size=v, d_model=d, d_kv=d // heads, d_ff=4 * d, num_layers=layers,
            num_decoder_layers=layers, num_heads=heads, dropout_rate=0.0, feed_forward_proj="relu",
            pad_token_id=vocab.pad, eos_token_id=vocab.eos, decoder_start_token_id=vocab.pad,
        )  # fmt: skip
    if family == "gpt2":
        return tf.GPT2Config(
            vocab_size=v, n_positions=context, n_embd=d, n_layer=layers, n_head=heads,
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=vocab.eos, eos_token_id=vocab.eos,
        )  # fmt: skip
    return tf.LlamaConfig(
        vocab_size=v, hidden_size=d, intermediate_size=swiglu_hidden(d, multiple_of=32),
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=max(1, heads // 2),
        max_position_embeddings=context, pad_token_id=vocab.pad, bos_token_id=vocab.eos,
        eos_token_id=vocab.eos, tie_word_embeddings=False,
    )  # fmt: skip


_MODEL_CLASSES = {
    "bert": tf.BertForMaskedLM,
    "t5": tf.T5ForConditionalGeneration,
    "gpt2": tf.GPT2LMHeadModel,
    "llama": tf.LlamaForCausalLM,
}


def build_tiny(
    family: str, vocab: CharVocab, arch: Mapping[str, Any], context: int, seed: int = 0
) -> nn.Module:
    """A randomly initialised tiny model of `family` (seeded)."""
    config = tiny_config(family, vocab, arch, context)
    torch.manual_seed(seed)
    return _MODEL_CLASSES[family](config)


# --- attention masks: drawn, and measured from the model --------------------------------------


def attention_masks(family: str, n_src: int, n_tgt: int | None = None) -> dict[str, torch.Tensor]:
    """Which position may attend to which (True = allowed), per attention of the family."""
    n_tgt = n_src if n_tgt is None else n_tgt
    full = torch.ones(n_src, n_src, dtype=torch.bool)  # (query, key)
    causal = torch.tril(torch.ones(n_tgt, n_tgt, dtype=torch.bool))
    if _check_family(family) == "bert":
        return {"encoder self-attention": full}
    if family == "t5":
        return {
            "encoder self-attention": full,
            "decoder self-attention": causal,
            "cross-attention": torch.ones(n_tgt, n_src, dtype=torch.bool),  # every target sees every source
        }
    return {"decoder self-attention": torch.tril(torch.ones(n_src, n_src, dtype=torch.bool))}


@torch.no_grad()
def _influence(fn: Any, ids: torch.Tensor, n_vocab: int) -> torch.Tensor:
    """(T_out, T_in) bool: output i changes when input token j is replaced."""
    base = fn(ids)  # (T_out, ...)
    cols = []
    for j in range(ids.shape[-1]):
        changed = ids.clone()
        changed[0, j] = (changed[0, j] + 1) % n_vocab
        diff = (fn(changed) - base).abs().flatten(1).amax(1)  # (T_out,)
        cols.append(diff > 1e-5 * (1 + base.abs().max()))
    return torch.stack(cols, dim=1)


@_single_threaded
def measured_masks(
    family: str, model: nn.Module, ids: torch.Tensor, dec_ids: torch.Tensor | None = None
) -> dict:
    """The same matrices as `attention_masks`, read off the model: which inputs change which outputs."""
    model.eval()
    v = model.config.vocab_size
    if _check_family(family) == "bert":
        return {"encoder self-attention": _influence(lambda x: model(input_ids=x).logits[0], ids, v)}
    if family == "t5":
        if dec_ids is None:
            raise ValueError("measured_masks('t5', ...) needs dec_ids (decoder input ids, shape (1, T_tgt))")
        enc = model.get_encoder()
        return {
            "encoder self-attention": _influence(lambda x: enc(input_ids=x).last_hidden_state[0], ids, v),
            "decoder self-attention": _influence(
                lambda y: model(input_ids=ids, decoder_input_ids=y).logits[0], dec_ids, v
            ),
            "cross-attention": _influence(
                lambda x: model(input_ids=x, decoder_input_ids=dec_ids).logits[0], ids, v
            ),
        }
    return {"decoder self-attention": _influence(lambda x: model(input_ids=x).logits[0], ids, v)}


def draw_masks(masks: Mapping[str, torch.Tensor], title: str = "", axes: Any = None) -> Any:
    """Draw mask matrices side by side (query rows, key columns; dark = may attend)."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, len(masks), figsize=(2.6 * len(masks), 2.6), squeeze=False)
        axes = axes[0]
    for ax, (name, m) in zip(axes, masks.items()):
        ax.imshow(m.float().numpy(), cmap="Greys", vmin=0, vmax=1)
        ax.set_title(f"{title}\n{name}" if title else name, fontsize=8)
        ax.set_xlabel("key position", fontsize=7)
        ax.set_ylabel("query position", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    return axes


# --- the three objectives on the same text ----------------------------------------------------


def windows(ids: torch.Tensor, batch_size: int, context: int, gen: torch.Generator) -> torch.Tensor:
    """Random windows of a 1-D id tensor, shape (B, T)."""
    if ids.numel() <= context:
        raise ValueError(f"text of {ids.numel()} tokens is too short for context {context}")
    starts = torch.randint(0, ids.numel() - context, (batch_size,), generator=gen)
    return torch.stack([ids[s : s + context] for s in starts.tolist()])


def mask_tokens(
    x: torch.Tensor, vocab: CharVocab, gen: torch.Generator, p: float = 0.15
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: pick p of the tokens; of those 80 % -> [MASK], 10 % random, 10 % kept."""
    chosen = torch.rand(x.shape, generator=gen) < p  # (B, T)
    labels = torch.where(chosen, x, IGNORE)
    roll = torch.rand(x.shape, generator=gen)
    random_ids = torch.randint(vocab.n_special, len(vocab), x.shape, generator=gen)
    inputs = torch.where(chosen & (roll < 0.8), vocab.mask, x)
    inputs = torch.where(chosen & (roll >= 0.8) & (roll < 0.9), random_ids, inputs)
    return inputs, labels


def span_corrupt(
    x: torch.Tensor, vocab: CharVocab, gen: torch.Generator, noise: float = 0.15, span_len: int = 3
) -> tuple[torch.Tensor, torch.Tensor]:
    """T5's span corruption with fixed-length spans: each span becomes one sentinel in the input;
    the target lists `<s_i> span_i` for every span and ends with <eos>. Shapes stay rectangular."""
    b, t = x.shape
    n_spans = max(1, round(t * noise / span_len))
    seg = t // n_spans
    if seg <= span_len or n_spans > vocab.n_sentinels:
        raise ValueError(
            f"context {t} cannot hold {n_spans} spans of {span_len} with {vocab.n_sentinels} sentinels"
        )
    inputs, targets = [], []
    for row in x:
        offsets = torch.randint(0, seg - span_len + 1, (n_spans,), generator=gen)
        inp, tgt, pos = [], [], 0
        for i, off in enumerate(offsets.tolist()):
            start = i * seg + off
            inp += row[pos:start].tolist() + [vocab.sentinel(i)]
            tgt += [vocab.sentinel(i)] + row[start : start + span_len].tolist()
            pos = start + span_len
        inputs.append(inp + row[pos:].tolist())
        targets.append(tgt + [vocab.eos])
    return torch.tensor(inputs), torch.tensor(targets)  # (B, T - n*(span-1)), (B, n*(span+1)+1)


def make_batch(
    family: str, ids: torch.Tensor, vocab: CharVocab, batch_size: int, context: int, gen: torch.Generator
) -> dict[str, torch.Tensor]:
    """Model keyword arguments (input_ids, labels, ...) for the family's objective on random windows."""
    _check_family(family)
    x = windows(ids, batch_size, context, gen)  # (B, T)
    if family == "bert":
        inputs, labels = mask_tokens(x, vocab, gen)
        return {"input_ids": inputs, "labels": labels}
    if family == "t5":
        inputs, labels = span_corrupt(x, vocab, gen)
        return {"input_ids": inputs, "labels": labels.contiguous()}  # T5 needs contiguous labels
    return {"input_ids": x, "labels": x}  # the model shifts labels by one inside its loss


@dataclass
class TinyRun:
    """Loss history of one tiny model: train losses per step, validation before/after."""

    family: str
    losses: list[float]
    val_before: float
    val_after: float
    seconds: float


@torch.no_grad()
def eval_objective(
    family: str,
    model: nn.Module,
    ids: torch.Tensor,
    vocab: CharVocab,
    context: int,
    batches: int = 4,
    seed: int = 1,
) -> float:
    """Mean objective loss on `batches` fixed random batches of `ids`."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    return (
        sum(model(**make_batch(family, ids, vocab, 16, context, gen)).loss.item() for _ in range(batches))
        / batches
    )


@_single_threaded
def train_tiny(
    family: str,
    model: nn.Module,
    train_ids: torch.Tensor,
    val_ids: torch.Tensor,
    vocab: CharVocab,
    steps: int,
    context: int,
    batch_size: int = 16,
    lr: float = 3e-3,
    seed: int = 0,
) -> TinyRun:
    """A short AdamW run of the family's own objective (seeded, fixed batches)."""
    import time

    t0 = time.perf_counter()
    val_before = eval_objective(family, model, val_ids, vocab, context)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    losses = []
    model.train()
    for step in range(steps):
        for group in opt.param_groups:  # linear warmup over the first 10 % of steps
            group["lr"] = lr * min(1.0, (step + 1) / max(1, steps // 10))
        loss = model(**make_batch(family, train_ids, vocab, batch_size, context, gen)).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    val_after = eval_objective(family, model, val_ids, vocab, context)
    return TinyRun(family, losses, val_before, val_after, time.perf_counter() - t0)


# --- what each model can do -------------------------------------------------------------------


@_single_threaded
@torch.no_grad()
def fill_blanks(model: nn.Module, vocab: CharVocab, text: str, positions: Sequence[int]) -> str:
    """BERT: replace the characters at `positions` by [MASK] and fill each with the top prediction."""
    ids = vocab.encode(text)[None]  # (1, T)
    masked = ids.clone()
    masked[0, list(positions)] = vocab.mask
    model.eval()
    logits = model(input_ids=masked).logits[0]  # (T, V)
    logits[:, : vocab.n_special] = -math.inf  # predict characters only
    filled = ids[0].clone()
    filled[list(positions)] = logits[list(positions)].argmax(-1)
    return vocab.decode(filled)


@_single_threaded
@torch.no_grad()
def fill_span(model: nn.Module, vocab: CharVocab, text: str, start: int, length: int) -> str:
    """T5: replace text[start:start+length] by one sentinel and generate what it hides."""
    ids = vocab.encode(text)
    inp = torch.cat([ids[:start], torch.tensor([vocab.sentinel(0)]), ids[start + length :]])[None]
    model.eval()
    out = model.generate(input_ids=inp, max_new_tokens=length + 2, do_sample=False)[0]  # (T_gen,)
    span = [i for i in out.tolist() if i >= vocab.n_special]  # drop start, sentinels, eos
    return vocab.decode(span[:length])


@_single_threaded
@torch.no_grad()
def continue_text(
    model: nn.Module, vocab: CharVocab, prompt: str, n_new: int, seed: int = 0, temperature: float = 0.8
) -> str:
    """GPT-2 / LLaMA: sample `n_new` characters after `prompt` (seeded)."""
    model.eval()
    ids = vocab.encode(prompt)[None]  # (1, T)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n_new):
        logits = model(input_ids=ids[:, -model.config.max_position_embeddings :]).logits[0, -1]  # (V,)
        logits[: vocab.n_special] = -math.inf
        nxt = torch.multinomial(F.softmax(logits / temperature, -1), 1, generator=gen)
        ids = torch.cat([ids, nxt[None]], dim=1)
    return vocab.decode(ids[0, -n_new:])


@_single_threaded
@torch.no_grad()
def char_accuracy(
    family: str,
    model: nn.Module,
    ids: torch.Tensor,
    vocab: CharVocab,
    context: int,
    n: int = 256,
    seed: int = 2,
) -> float:
    """Accuracy of predicting one held-out character in the middle of a window.

    bert sees both sides (the character is [MASK]ed); gpt2 / llama see only the left side."""
    gen = torch.Generator().manual_seed(seed)
    x = windows(ids, n, context, gen)  # (n, T)
    mid = context // 2
    model.eval()
    if _check_family(family) == "bert":
        inp = x.clone()
        inp[:, mid] = vocab.mask
        logits = model(input_ids=inp).logits[:, mid]  # (n, V)
    elif family in ("gpt2", "llama"):
        logits = model(input_ids=x[:, :mid]).logits[:, -1]  # (n, V): predicts position `mid`
    else:
        raise ValueError("char_accuracy supports bert, gpt2 and llama")
    logits[:, : vocab.n_special] = -math.inf
    return (logits.argmax(-1) == x[:, mid]).float().mean().item()


# --- GPT-2 -> LLaMA, one change at a time ------------------------------------------------------


def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """GPT-2's LayerNorm: subtract the mean, divide by the std, scale and shift."""
    mean = x.mean(-1, keepdim=True)
    var = x.var(-1, keepdim=True, unbiased=False)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """LLaMA's RMSNorm: no mean, no bias; divide by the root-mean-square (computed in fp32)."""
    x32 = x.float()
    x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
    return weight * x32.to(x.dtype)


def rope_cos_sin(
    positions: torch.Tensor, head_dim: int, theta: float = 10_000.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables for RoPE, shape (T, head_dim): pair i rotates at frequency theta^(-2i/d)."""
    inv_freq = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)  # (d/2,)
    angles = positions.float()[:, None] * inv_freq[None]  # (T, d/2)
    angles = torch.cat([angles, angles], dim=-1)  # (T, d): the "rotate_half" layout of HF Llama
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, positions: torch.Tensor, theta: float = 10_000.0) -> torch.Tensor:
    """Rotate queries or keys (..., T, head_dim) by their positions."""
    cos, sin = rope_cos_sin(positions, x.shape[-1], theta)
    half = x.shape[-1] // 2
    rotated_half = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated_half * sin


def rope_score(q: torch.Tensor, k: torch.Tensor, m: int, n: int, theta: float = 10_000.0) -> float:
    """Attention score of query q at position m with key k at position n, after RoPE."""
    qm = apply_rope(q[None], torch.tensor([m]), theta)[0]
    kn = apply_rope(k[None], torch.tensor([n]), theta)[0]
    return float(qm @ kn)


def mlp_params(d_model: int, hidden: int, kind: str, bias: bool = False) -> int:
    """Parameters of one MLP: "gelu" (up, down) or "swiglu" (gate, up, down)."""
    if kind not in ("gelu", "swiglu"):
        raise ValueError(f"unknown MLP kind {kind!r}; valid: 'gelu', 'swiglu'")
    n_in = 2 if kind == "swiglu" else 1
    weights = (n_in + 1) * d_model * hidden
    return weights + (n_in * hidden + d_model if bias else 0)


def kv_cache_bytes(config: Any, seq_len: int, batch_size: int = 1, bytes_per_value: int = 2) -> int:
    """KV-cache size of a Llama/Mistral config: 2 (k, v) x layers x kv_heads x head_dim x tokens x bytes."""
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    values = 2 * config.num_hidden_layers * config.num_key_value_heads * head_dim * seq_len * batch_size
    return values * bytes_per_value


@torch.no_grad()
def measured_kv_cache_bytes(model: nn.Module, seq_len: int, batch_size: int = 1) -> int:
    """Bytes the model's own cache holds after a forward pass over seq_len tokens."""
    model.eval()
    ids = torch.zeros(batch_size, seq_len, dtype=torch.long)
    cache = model(input_ids=ids, use_cache=True).cache
    return sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))


class NormBlock(nn.Module):
    """A transformer block (attention + GELU MLP) with the LayerNorm before (pre) or after (post) the residual add."""

    def __init__(self, d: int, n_heads: int, pre_norm: bool) -> None:
        super().__init__()
        self.pre_norm = pre_norm
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, n_heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, d) -> (B, T, d)
        if self.pre_norm:  # GPT-2 / LLaMA: x + f(norm(x)), the residual path stays an identity
            h = self.norm1(x)
            x = x + self.attn(h, h, h, need_weights=False)[0]
            return x + self.mlp(self.norm2(x))
        x = self.norm1(x + self.attn(x, x, x, need_weights=False)[0])  # original Transformer / BERT
        return self.norm2(x + self.mlp(x))


@_single_threaded
def last_layer_grad_norm(depth: int, pre_norm: bool, d: int = 32, seed: int = 0) -> float:
    """Gradient norm of the last block's output projection at initialisation, for a stack of `depth` blocks.

    Xiong et al. 2020 (arXiv:2002.04745, Thm. 1): it stays O(1) with depth for post-norm and shrinks
    like 1/sqrt(depth) for pre-norm, which is why post-norm needs a learning-rate warmup."""
    torch.manual_seed(seed)
    blocks = nn.Sequential(*[NormBlock(d, 4, pre_norm) for _ in range(depth)])
    final = nn.LayerNorm(d) if pre_norm else nn.Identity()
    head = nn.Linear(d, 64)
    x = torch.randn(8, 16, d, generator=torch.Generator().manual_seed(seed))  # (B, T, d)
    y = torch.randint(0, 64, (8, 16), generator=torch.Generator().manual_seed(seed))
    loss = F.cross_entropy(head(final(blocks(x))).flatten(0, 1), y.flatten())
    loss.backward()
    return blocks[-1].mlp[2].weight.grad.norm().item()
