"""Supervised fine-tuning (module 07): from a next-token predictor to an instruction follower.

Read top to bottom: instruction data (generated, split without leakage) -> chat formatting ->
`tokenize_prompt_and_output` (labels -100 on the prompt) -> masked loss -> padding vs packing ->
the transparent SFT loop -> generation and exact match -> TRL's `SFTTrainer` -> imitation helpers.

API that module 08 (LoRA) reuses:
    splits = make_sft_splits(profile, seed)               # SFTSplits(train, val, test, pool): SFTExample lists
    cfg = sft_train_config(profile)                       # a training.TrainConfig (context = max_length)
    result = sft_train(model, tokenizer, splits.train, cfg, device)   # SFTResult(history, seconds, ...)
    em = evaluate_exact_match(model, tokenizer, splits.test, device)  # float in [0, 1]
`sft_train` trains whatever parameters have `requires_grad=True`, so a PEFT-wrapped model works as is.

Conventions: `labels` are aligned with `input_ids` (the Hugging Face convention: the model shifts them),
and -100 marks positions without a loss. Everything is seeded and deterministic.
"""

from __future__ import annotations

import copy
import math
import random
import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F

from .config import Profile
from .device import DeviceInfo, generator, torch_threads  # noqa: F401 - torch_threads: notebooks use sft.torch_threads
from .training import TrainConfig, train_loop

IGNORE_INDEX = -100
SYSTEM_PROMPT = "Answer briefly."
# Byte-level BPE tokens carry their leading space: " livelong" in the prompt and "livelong" after
# `<|assistant|>` are different token sequences, so copying a word would need a learned mapping. The
# assistant's answer is therefore written with a leading space (exact match strips it again).
ANSWER_PREFIX = " "
VALID_ROLES = ("system", "user", "assistant")
# The default mix: four families a ~0.2M-parameter, 2-layer model can learn in a few hundred steps (each
# answer is a word *copied* from the prompt, which attention can do: pick the right position, copy it),
# plus one it cannot (two-digit addition: digits must be combined, not copied), kept to show the limit.
FAMILIES = ("repeat", "first_word", "last_word", "alphabetical", "add")
# More families, available through `generate_examples(families=...)`: max (compare digits) and genre
# (comedy or tragedy from one line: needs world knowledge; a tiny model stays at chance).
ALL_FAMILIES = (*FAMILIES, "max", "reverse", "genre")

# First Folio classification (1623); histories, Pericles and Troilus (placed between the sections) left out.
COMEDIES = (
    "alls_well_that_ends_well", "as_you_like_it", "comedy_of_errors", "loves_labours_lost",
    "measure_for_measure", "merchant_of_venice", "merry_wives_of_windsor", "midsummer_nights_dream",
    "much_ado_about_nothing", "taming_of_the_shrew", "tempest", "twelfth_night", "two_gentlemen_of_verona",
    "winters_tale",
)  # fmt: skip
TRAGEDIES = (
    "antony_and_cleopatra", "coriolanus", "cymbeline", "hamlet", "julius_caesar", "lear", "macbeth",
    "othello", "romeo_and_juliet", "timon_of_athens", "tragedy_of_titus_andronicus",
)  # fmt: skip

# FLAN-style: several instruction templates per task. The T5 prefix is the same task, one fixed prefix.
TEMPLATES = {
    "repeat": ("Repeat this word: {x}", "Say the word {x} again."),
    "first_word": ("What is the first word of this line? {x}", "First word of: {x}"),
    "alphabetical": ("Which word comes first in the alphabet: {x}?", "Alphabetically first: {x}?"),
    "add": ("What is {x}?", "Compute {x}.", "Add: {x}"),
    "max": ("Which number is largest: {x}?", "Give the largest of {x}."),
    "reverse": ("Reverse the letters: {x}", "Write these letters backwards: {x}"),
    "last_word": ("What is the last word of this line? {x}", "Last word of: {x}"),
    "genre": ("Is this line from a comedy or a tragedy? {x}", "Comedy or tragedy? {x}"),
}
T5_PREFIX = {
    "repeat": "repeat",
    "first_word": "first word",
    "alphabetical": "alphabetical",
    "add": "add",
    "max": "max",
    "reverse": "reverse",
    "last_word": "last word",
    "genre": "genre",
}


# ---------------------------------------------------------------------------------------------
# 1. Instruction data
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SFTExample:
    """One task instance: the raw input `x`, its instruction (user turn) and the gold answer."""

    family: str
    x: str
    instruction: str
    answer: str

    @property
    def key(self) -> str:
        """What must never appear in two splits: the task and its raw input (not the wording)."""
        return f"{self.family}|{self.x}"

    def messages(self, system: str | None = SYSTEM_PROMPT, answer: str | None = None) -> list[dict]:
        """The example as a chat: optional system turn, user instruction, assistant answer."""
        turns = [{"role": "system", "content": system}] if system else []
        return [*turns, {"role": "user", "content": self.instruction},
                {"role": "assistant", "content": ANSWER_PREFIX + (self.answer if answer is None else answer)}]  # fmt: skip

    def prompt_messages(self, system: str | None = SYSTEM_PROMPT) -> list[dict]:
        """The chat without the assistant turn (what a model sees at inference)."""
        return self.messages(system)[:-1]

    def t5_format(self) -> tuple[str, str]:
        """The same example in T5's text-to-text format: (`"<prefix>: <input>"`, target)."""
        return f"{T5_PREFIX[self.family]}: {self.x}", self.answer


@dataclass(frozen=True)
class SFTSplits:
    """Disjoint (by `SFTExample.key`) train / validation / test sets and an unlabelled-prompt pool."""

    train: list[SFTExample]
    val: list[SFTExample]
    test: list[SFTExample]
    pool: list[SFTExample]  # prompts for imitation learning (module 07) - their gold answers stay hidden


def _corpus_lines() -> dict[str, list[str]]:
    """Clean spoken lines (4-10 words, 20-60 characters) of every comedy and tragedy, by play."""
    from .corpus import load_works

    works = load_works()
    missing = [p for p in (*COMEDIES, *TRAGEDIES) if p not in works]
    if missing:
        raise KeyError(f"plays missing from the corpus: {missing}")
    ok = re.compile(r"^[A-Z][A-Za-z ,;:'!?.-]+$")
    out = {}
    for play in (*COMEDIES, *TRAGEDIES):
        lines = [ln.strip() for ln in works[play].split("\n")]
        out[play] = [ln for ln in lines if ok.match(ln) and 20 <= len(ln) <= 60 and 4 <= len(ln.split()) <= 10
                     and not ln.isupper() and "Gutenberg" not in ln]  # fmt: skip
    return out


@lru_cache(maxsize=1)
def _genre_lines() -> tuple[list[str], list[str], int]:
    """Sorted unique comedy lines and tragedy lines; lines found in both genres are left out (counted)."""
    lines = _corpus_lines()
    comedy = {ln for p in COMEDIES for ln in lines[p]}
    tragedy = {ln for p in TRAGEDIES for ln in lines[p]}
    both = comedy & tragedy
    return sorted(comedy - both), sorted(tragedy - both), len(both)


N_WORDS = 200  # first/last word and alphabetical use lines/words from the 200 most frequent: ~70 % are one BPE token
N_REPEAT_WORDS = 8000  # `repeat` needs one distinct word per example (gpu: ~6k), more than 200 words give


@lru_cache(maxsize=4)
def frequent_words(n: int = N_WORDS) -> list[str]:
    """The `n` most frequent lower-case words (3+ letters) of the comedy and tragedy lines, by rank."""
    comedy, tragedy, _ = _genre_lines()
    counts = Counter(
        w.lower() for ln in comedy + tragedy for w in re.findall(r"[A-Za-z]+", ln) if len(w) >= 3
    )
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


@lru_cache(maxsize=1)
def _lines_by_edge_word() -> dict[int, list[str]]:
    """Lines whose first (key 0) or last (key -1) word is one of the frequent words."""
    comedy, tragedy, _ = _genre_lines()
    top = set(frequent_words())
    return {i: [ln for ln in comedy + tragedy if _word_of(ln, i).lower() in top] for i in (0, -1)}


def _word_of(line: str, index: int) -> str:
    """The `index`-th word of a line without its punctuation."""
    return re.sub(r"[^A-Za-z']", "", line.split()[index])


def _sample_input(family: str, rng: random.Random, genre: tuple[list[str], list[str]]) -> tuple[str, str]:
    """One raw input and its gold answer for a task family."""
    if family == "repeat":
        word = rng.choice(frequent_words(N_REPEAT_WORDS))
        return word, word
    if family in ("first_word", "last_word"):
        index = 0 if family == "first_word" else -1
        line = rng.choice(_lines_by_edge_word()[index])
        return line, _word_of(line, index)
    if family == "alphabetical":
        a, b = rng.sample(frequent_words(), 2)
        while a[0] == b[0]:  # different first letters: the first letter decides
            b = rng.choice(frequent_words())
        return f"{a} or {b}", min(a, b)
    if family == "add":
        a, b = rng.randrange(100), rng.randrange(100)
        return f"{a} + {b}", str(a + b)
    if family == "max":
        xs = [rng.randrange(10) for _ in range(rng.randint(3, 5))]
        return ", ".join(map(str, xs)), str(max(xs))
    if family == "reverse":
        letters = [chr(ord("a") + rng.randrange(26)) for _ in range(rng.randint(3, 4))]
        return " ".join(letters), " ".join(reversed(letters))
    if family == "genre":
        label = "comedy" if rng.random() < 0.5 else "tragedy"
        return rng.choice(genre[0] if label == "comedy" else genre[1]), label
    raise ValueError(f"unknown task family {family!r}; valid: {ALL_FAMILIES}")


def generate_examples(n: int, seed: int = 0, families: Sequence[str] = FAMILIES) -> list[SFTExample]:
    """`n` examples with distinct keys, families in round-robin order, deterministic for a seed."""
    if n <= 0:
        raise ValueError(f"n must be > 0, got {n}")
    bad = [f for f in families if f not in ALL_FAMILIES]
    if bad or not families:
        raise ValueError(f"unknown task families {bad or families}; valid: {ALL_FAMILIES}")
    rng = random.Random(seed)
    comedy, tragedy, _ = _genre_lines() if set(families) - {"add", "max", "reverse"} else ([], [], 0)
    seen: set[str] = set()
    out: list[SFTExample] = []
    for i in range(n):
        family = families[i % len(families)]
        for _ in range(10_000):
            x, answer = _sample_input(family, rng, (comedy, tragedy))
            if f"{family}|{x}" not in seen and answer:
                break
        else:
            raise RuntimeError(
                f"could not draw a new {family!r} input: the family's input space is exhausted"
            )
        seen.add(f"{family}|{x}")
        instruction = rng.choice(TEMPLATES[family]).format(x=x)
        out.append(SFTExample(family, x, instruction, answer))
    return out


def make_sft_splits(profile: Profile, seed: int = 0) -> SFTSplits:
    """Train/val/test/pool of sizes `profile.sft.{n_train, n_eval, n_eval, n_pool}`, disjoint by key."""
    s = profile.sft
    sizes = (s.n_train, s.n_eval, s.n_eval, s.n_pool)
    examples = generate_examples(sum(sizes), seed)
    random.Random(seed + 1).shuffle(examples)
    cuts = [0, *torch.tensor(sizes).cumsum(0).tolist()]
    parts = [examples[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
    splits = SFTSplits(*parts)
    check_no_leakage(splits)
    return splits


def check_no_leakage(splits: SFTSplits) -> dict[str, int]:
    """Overlap counts between every pair of splits (by key and by instruction); raise if any is non-zero."""
    named = {"train": splits.train, "val": splits.val, "test": splits.test, "pool": splits.pool}
    counts = {}
    names = list(named)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            for what in ("key", "instruction"):
                sa = {getattr(e, what) for e in named[a]}
                counts[f"{a}/{b} {what}"] = len(sa & {getattr(e, what) for e in named[b]})
    leaks = {k: v for k, v in counts.items() if v}
    if leaks:
        raise ValueError(f"data leakage between splits: {leaks}")
    return counts


# ---------------------------------------------------------------------------------------------
# 2. Chat formatting and tokenisation
# ---------------------------------------------------------------------------------------------
def validate_conversation(messages: list[dict]) -> None:
    """Raise a clear ValueError unless `messages` is a chat ending in a non-empty assistant turn."""
    if not isinstance(messages, list) or not messages:
        raise ValueError("a conversation must be a non-empty list of {'role', 'content'} dicts")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise ValueError(f"message {i} needs keys 'role' and 'content', got {m!r}")
        if m["role"] not in VALID_ROLES:
            raise ValueError(f"message {i} has unknown role {m['role']!r}; valid roles: {VALID_ROLES}")
        if not isinstance(m["content"], str):
            raise ValueError(f"message {i} content must be a string, got {type(m['content']).__name__}")
    if messages[-1]["role"] != "assistant":
        raise ValueError(
            f"the last message must be the assistant's (the SFT target), got {messages[-1]['role']!r}"
        )
    if not messages[-1]["content"].strip():
        raise ValueError("the assistant turn is empty: there is nothing to train on")


def chat_prompt_and_response(messages: list[dict], tokenizer) -> tuple[str, str]:
    """Split a rendered chat into the prompt (ending in the generation prompt) and the assistant response."""
    validate_conversation(messages)
    prompt = tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    if not full.startswith(prompt):
        raise ValueError("the chat template renders the prompt differently with and without the answer")
    response = full[len(prompt) :].rstrip()  # content + end-of-turn token; a trailing newline is no target
    return prompt, response


def tokenize_prompt_and_output(
    prompts: Sequence[str], outputs: Sequence[str], tokenizer, max_length: int | None = None
) -> dict[str, torch.Tensor]:
    """Tokenise prompt and output separately, concatenate, right-pad: input_ids, labels, response_mask (B, T).

    labels == input_ids on output positions and -100 on prompt and padding; response_mask is True on
    output positions. A response cut away entirely by `max_length` raises (use `prepare_features` to drop
    such examples with a report instead).
    """
    if len(prompts) != len(outputs) or not prompts:
        raise ValueError(f"need equally many prompts and outputs (>0), got {len(prompts)} and {len(outputs)}")
    feats = [_encode_pair(p, o, tokenizer, max_length) for p, o in zip(prompts, outputs)]
    empty = [i for i, f in enumerate(feats) if not f.n_response]
    if empty:
        raise ValueError(f"examples {empty[:10]} have no response tokens left after max_length={max_length}")
    batch = collate_padded(feats, tokenizer.pad_token_id)
    batch["response_mask"] = batch["labels"] != IGNORE_INDEX
    return batch


@dataclass(frozen=True)
class Feature:
    """One tokenised example: ids, labels with -100 on the prompt, and bookkeeping."""

    input_ids: list[int]
    labels: list[int]
    n_prompt: int
    n_response: int  # response tokens kept (after truncation)
    truncated: bool


def _encode_pair(prompt: str, output: str, tokenizer, max_length: int | None) -> Feature:
    """Token ids of prompt + output (truncated to max_length from the right) and their labels."""
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    o = tokenizer(output, add_special_tokens=False)["input_ids"]
    ids = p + o
    truncated = max_length is not None and len(ids) > max_length
    ids = ids[:max_length] if truncated else ids
    n_resp = max(0, len(ids) - len(p))
    labels = [IGNORE_INDEX] * min(len(p), len(ids)) + ids[len(p) :]
    return Feature(ids, labels, len(p), n_resp, truncated)


def unmask_prompt(feature: Feature) -> Feature:
    """The same example with a loss on every token (prompt included) except the first, as in pre-training."""
    return Feature(feature.input_ids, [IGNORE_INDEX, *feature.input_ids[1:]], feature.n_prompt,
                   feature.n_response, feature.truncated)  # fmt: skip


@dataclass
class PreparedData:
    """Features ready for training plus the report of what happened to every input example."""

    features: list[Feature]
    report: dict[str, int]


def prepare_features(
    examples: Sequence[SFTExample | list[dict]],
    tokenizer,
    max_length: int,
    system: str | None = SYSTEM_PROMPT,
    on_truncated: str = "drop",
) -> PreparedData:
    """Tokenise chats; examples whose response is cut away entirely are dropped and counted, or raise.

    on_truncated: "drop" (count them in the report) or "error".
    """
    if on_truncated not in ("drop", "error"):
        raise ValueError(f"on_truncated must be 'drop' or 'error', got {on_truncated!r}")
    if max_length <= 0:
        raise ValueError(f"max_length must be > 0, got {max_length}")
    feats, report = [], Counter(n_examples=len(examples))
    for i, ex in enumerate(examples):
        messages = ex.messages(system) if isinstance(ex, SFTExample) else ex
        prompt, output = chat_prompt_and_response(messages, tokenizer)
        f = _encode_pair(prompt, output, tokenizer, max_length)
        report["n_response_truncated"] += f.truncated and f.n_response > 0
        if not f.n_response:
            if on_truncated == "error":
                raise ValueError(f"example {i}: prompt of {f.n_prompt} tokens leaves no room for the response "
                                 f"within max_length={max_length}")  # fmt: skip
            report["n_dropped_no_response"] += 1
            continue
        feats.append(f)
    report["n_kept"] = len(feats)
    report.setdefault("n_response_truncated", 0)
    report.setdefault("n_dropped_no_response", 0)
    return PreparedData(feats, dict(report))


# ---------------------------------------------------------------------------------------------
# 3. Masked loss, padding and packing
# ---------------------------------------------------------------------------------------------
def masked_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over positions whose label is not -100 (labels aligned with inputs)."""
    logits = logits[:, :-1]  # (B, T-1, V): position t predicts token t+1
    targets = labels[:, 1:]  # (B, T-1)
    if not (targets != IGNORE_INDEX).any():
        raise ValueError("no position carries a label: every label is -100")
    return F.cross_entropy(
        logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE_INDEX
    )


def collate_padded(features: Sequence[Feature], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest example: input_ids, labels (-100 on pads), attention_mask, all (B, T)."""
    T = max(len(f.input_ids) for f in features)
    ids = torch.full((len(features), T), pad_id, dtype=torch.long)
    labels = torch.full((len(features), T), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(features), T), dtype=torch.long)
    for i, f in enumerate(features):
        n = len(f.input_ids)
        ids[i, :n], labels[i, :n], mask[i, :n] = torch.tensor(f.input_ids), torch.tensor(f.labels), 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def pack_features(features: Sequence[Feature], max_length: int, pad_id: int) -> dict[str, torch.Tensor]:
    """Pack whole examples greedily into rows of `max_length`; position_ids restart at 0 for each example.

    Restarting positions is what isolates the examples: given position_ids and no attention_mask,
    transformers builds a block-diagonal causal mask (`masking_utils.find_packed_sequence_indices`),
    so no token attends to another example. Each example's first label is -100 (nothing predicts it).
    Returns input_ids, labels, position_ids (R, max_length) and seq_ids (-1 on padding).
    """
    rows: list[list[Feature]] = [[]]
    for f in features:
        if len(f.input_ids) > max_length:
            raise ValueError(f"an example of {len(f.input_ids)} tokens does not fit max_length={max_length}")
        if sum(len(g.input_ids) for g in rows[-1]) + len(f.input_ids) > max_length:
            rows.append([])
        rows[-1].append(f)
    R = len(rows)
    ids = torch.full((R, max_length), pad_id, dtype=torch.long)
    labels = torch.full((R, max_length), IGNORE_INDEX, dtype=torch.long)
    pos = torch.zeros((R, max_length), dtype=torch.long)
    seq = torch.full((R, max_length), -1, dtype=torch.long)
    k = 0
    for r, row in enumerate(rows):
        t = 0
        for f in row:
            n = len(f.input_ids)
            ids[r, t : t + n] = torch.tensor(f.input_ids)
            labels[r, t : t + n] = torch.tensor([IGNORE_INDEX, *f.labels[1:]])
            pos[r, t : t + n] = torch.arange(n)
            seq[r, t : t + n] = k
            t, k = t + n, k + 1
        pos[r, t:] = torch.arange(max_length - t)  # the padding tail is one more (label-free) segment
    return {"input_ids": ids, "labels": labels, "position_ids": pos, "seq_ids": seq}


def model_inputs(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Forward-pass kwargs: attention_mask for padded batches, position_ids for packed ones, and no KV cache.

    use_cache=False matters for packing: transformers only derives the block-diagonal mask from
    position_ids when there is no attention_mask *and no cache*.
    """
    keys = ("input_ids", "attention_mask", "position_ids")
    return {**{k: batch[k].to(device) for k in keys if k in batch}, "use_cache": False}


@torch.no_grad()
def packing_contamination(
    model: torch.nn.Module, features: Sequence[Feature], pad_id: int
) -> dict[str, float]:
    """Max |logit difference| of packed examples vs each example alone: with restarted positions and without."""
    model.eval()
    alone = [model(input_ids=torch.tensor([f.input_ids])).logits[0] for f in features]  # each (T_i, V)
    T = sum(len(f.input_ids) for f in features)
    packed = pack_features(features, T, pad_id)
    out = {}
    for name, pos in (("positions restarted", packed["position_ids"]), ("one long sequence", None)):
        kwargs = {"position_ids": pos} if pos is not None else {}
        logits = model(input_ids=packed["input_ids"], use_cache=False, **kwargs).logits[0]  # (T, V)
        t, diffs = 0, []
        for a in alone:
            diffs.append((logits[t : t + len(a)] - a).abs().max().item())
            t += len(a)
        out[name] = max(diffs)
    return out


def epoch_batches(
    features: Sequence[Feature],
    batch_size: int,
    max_length: int,
    pad_id: int,
    gen: torch.Generator,
    packing: bool,
) -> Iterator[dict[str, torch.Tensor]]:
    """One shuffled pass: padded batches of `batch_size` examples, or packed batches of `batch_size` rows."""
    order = torch.randperm(len(features), generator=gen).tolist()
    shuffled = [features[i] for i in order]
    if not packing:
        for i in range(0, len(shuffled), batch_size):
            yield collate_padded(shuffled[i : i + batch_size], pad_id)
        return
    packed = pack_features(shuffled, max_length, pad_id)
    for i in range(0, packed["input_ids"].size(0), batch_size):
        yield {k: v[i : i + batch_size] for k, v in packed.items()}


def measure_throughput(
    model: torch.nn.Module, features: Sequence[Feature], batch_size: int, max_length: int, pad_id: int,
    device: DeviceInfo, packing: bool,
) -> dict[str, float]:  # fmt: skip
    """Forward+backward over the same examples, padded or packed: seconds, real tokens/s, padding share."""
    model.to(device.device).train()
    batches = list(epoch_batches(features, batch_size, max_length, pad_id, generator(0), packing))
    t0 = time.perf_counter()
    slots = real = 0
    for b in batches:
        with device.autocast():
            loss = masked_nll(model(**model_inputs(b, device.device)).logits, b["labels"].to(device.device))
        loss.backward()
        slots += b["input_ids"].numel()
        real += int((b["seq_ids"] >= 0).sum()) if packing else int(b["attention_mask"].sum())
    seconds = time.perf_counter() - t0
    model.zero_grad(set_to_none=True)
    return {"seconds": seconds, "batches": len(batches), "real_tokens": real, "slots": slots,
            "padding_share": 1 - real / slots, "real_tokens_per_s": real / seconds}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# 4. The transparent SFT loop
# ---------------------------------------------------------------------------------------------
def sft_train_config(
    profile: Profile, seed: int = 0, steps: int | None = None, lr: float | None = None,
    eval_every: int = 0, patience: int = 0,
) -> TrainConfig:  # fmt: skip
    """The SFT hyper-parameters of a profile as a `training.TrainConfig` (context = max length of an example).

    eval_every > 0 evaluates the validation answer loss that often; patience > 0 adds early stopping with
    the best checkpoint restored (pass `val_examples` to `sft_train`).
    """
    s = profile.sft
    steps = steps or s.steps
    return TrainConfig(steps=steps, lr=lr or s.lr, batch_size=s.batch_size, context=s.max_length,
                       warmup=max(1, steps // 10), weight_decay=0.0, seed=seed, eval_every=eval_every,
                       patience=patience, keep_best=patience > 0)  # fmt: skip


@dataclass
class SFTResult:
    """Per-step history (loss, lr, tokens), wall time, examples seen and the data report."""

    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    examples_seen: int = 0
    real_tokens: int = 0
    report: dict[str, int] = field(default_factory=dict)
    best_step: int = 0  # the step of the best validation answer loss (0 without validation)
    stopped_early: bool = False

    def to_json(self) -> dict:
        """A JSON-able dict (for the live fast path)."""
        return {"history": self.history, "seconds": self.seconds, "examples_seen": self.examples_seen,
                "real_tokens": self.real_tokens, "report": self.report, "best_step": self.best_step,
                "stopped_early": self.stopped_early}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict) -> SFTResult:
        """The inverse of `to_json` (other keys stored beside it, e.g. a weights hash, are ignored)."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def curve(self, key: str = "train_loss") -> tuple[list[int], list[float]]:
        """Steps and values of one history column ("train_loss" or "val_loss")."""
        rows = [h for h in self.history if key in h]
        return [h["step"] for h in rows], [h[key] for h in rows]

    @property
    def final_loss(self) -> float:
        """Mean training loss over the last 10 % of steps."""
        losses = self.curve("train_loss")[1]
        tail = losses[-max(1, len(losses) // 10) :]
        return sum(tail) / len(tail)


def sft_train(
    model: torch.nn.Module,
    tokenizer,
    examples: Sequence[SFTExample | list[dict]],
    cfg: TrainConfig,
    device: DeviceInfo,
    mask_prompt: bool = True,
    packing: bool = False,
    system: str | None = SYSTEM_PROMPT,
    show_progress: bool = True,
    val_examples: Sequence[SFTExample] | None = None,
    stop_at: int | None = None,
) -> SFTResult:
    """Fine-tune on chats with the course loop (`training.train_loop`); loss on assistant tokens unless mask_prompt=False.

    With `val_examples`, the validation answer loss (`answer_losses`) is evaluated every `cfg.eval_every`
    steps, which `cfg.patience` / `cfg.keep_best` use for early stopping and the best checkpoint.
    `stop_at` stops after that many steps of the same schedule (to replay the start of a stored run).
    """
    data = prepare_features(examples, tokenizer, cfg.context, system)
    feats = data.features if mask_prompt else [unmask_prompt(f) for f in data.features]
    result = SFTResult(report=data.report)
    stream: Iterator[dict[str, torch.Tensor]] | None = None

    def next_batch(step: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        nonlocal stream
        while True:
            if stream is None:
                stream = epoch_batches(
                    feats, cfg.batch_size, cfg.context, tokenizer.pad_token_id, gen, packing
                )
            batch = next(stream, None)
            if batch is not None:
                break
            stream = None  # epoch done: reshuffle
        if packing:
            seq = batch["seq_ids"]  # (R, T): which example each slot holds, -1 on padding
            result.examples_seen += int((seq.amax(1) - seq.clamp(min=0).amin(1) + 1).sum())
            result.real_tokens += int((seq >= 0).sum())
        else:
            result.examples_seen += len(batch["input_ids"])
            result.real_tokens += int(batch["attention_mask"].sum())
        return {k: v for k, v in batch.items() if k != "seq_ids"}

    def loss_fn(m: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return masked_nll(m(**model_inputs(batch, device.device)).logits, batch["labels"])

    val_batches = (
        None if val_examples is None else answer_batches(val_examples, tokenizer, cfg.context, system)
    )

    def evaluate() -> dict[str, float]:
        return {"val_loss": float(answer_losses(model, val_batches, device)["all"].mean())}

    run = train_loop(model, next_batch, loss_fn, cfg, device, None if val_batches is None else evaluate,
                     show_progress=show_progress, desc="sft", stop_at=stop_at)  # fmt: skip
    result.history = [h for h in run.history if "train_loss" in h or "val_loss" in h]
    result.seconds, result.best_step, result.stopped_early = run.seconds, run.best_step, run.stopped_early
    model.eval()
    return result


# ---------------------------------------------------------------------------------------------
# 4b. The low-noise metric: mean loss on the answer tokens of held-out examples
# ---------------------------------------------------------------------------------------------
def answer_batches(
    examples: Sequence[SFTExample], tokenizer, max_length: int, system: str | None = SYSTEM_PROMPT,
    batch_size: int = 64,
) -> list[dict[str, torch.Tensor]]:  # fmt: skip
    """Padded evaluation batches of `examples` (every example kept: a truncated answer is an error)."""
    if not examples:
        raise ValueError("need at least one example to evaluate")
    feats = prepare_features(examples, tokenizer, max_length, system, on_truncated="error").features
    end_id = tokenizer.convert_tokens_to_ids("<|end|>")
    out = []
    for i in range(0, len(feats), batch_size):
        batch = collate_padded(feats[i : i + batch_size], tokenizer.pad_token_id)
        batch["is_format"] = batch["labels"] == end_id  # (B, T): the end-of-turn token, learned as format
        out.append(batch)
    return out


@torch.no_grad()
def answer_losses(
    model: torch.nn.Module, batches: list[dict[str, torch.Tensor]], device: DeviceInfo
) -> dict[str, torch.Tensor]:
    """Per example, the mean NLL (nats/token) of its answer tokens: "all", "content" (the words), "format" (<|end|>).

    One number per example (its tokens averaged), so examples are the independent units of a standard error.
    """
    was_training = model.training
    model.eval()
    parts: dict[str, list[torch.Tensor]] = {"all": [], "content": [], "format": []}
    for batch in batches:
        with device.autocast():
            logits = model(**model_inputs(batch, device.device)).logits[:, :-1]  # (B, T-1, V)
        targets = batch["labels"][:, 1:].to(logits.device)  # (B, T-1)
        nll = F.cross_entropy(
            logits.float().transpose(1, 2), targets.clamp(min=0), reduction="none"
        )  # (B, T-1)
        answer = targets != IGNORE_INDEX
        fmt = batch["is_format"][:, 1:].to(logits.device) & answer
        for name, mask in (("all", answer), ("content", answer & ~fmt), ("format", fmt)):
            parts[name].append((nll * mask).sum(1) / mask.sum(1).clamp(min=1))  # (B,)
    model.train(was_training)
    return {k: torch.cat(v).cpu() for k, v in parts.items()}


def answer_loss(model: torch.nn.Module, tokenizer, examples: Sequence[SFTExample], device: DeviceInfo,
                max_length: int = 128) -> dict[str, torch.Tensor]:  # fmt: skip
    """`answer_losses` of `examples` (tokenised here): per-example answer NLL, all / content / format."""
    return answer_losses(model, answer_batches(examples, tokenizer, max_length), device)


# ---------------------------------------------------------------------------------------------
# 5. Generation and exact match
# ---------------------------------------------------------------------------------------------
def stop_token_ids(tokenizer) -> list[int]:
    """Token ids that end a generated answer: the end-of-turn token (if any) and EOS."""
    ids = [tokenizer.convert_tokens_to_ids(t) for t in ("<|end|>",) if t in tokenizer.get_vocab()]
    return [*ids, tokenizer.eos_token_id]


@torch.no_grad()
def generate_responses(
    model: torch.nn.Module,
    tokenizer,
    prompts: Sequence[str | list[dict]],
    device: DeviceInfo,
    max_new_tokens: int = 8,
    batch_size: int = 64,
) -> list[str]:
    """Greedy answers to chat prompts (message lists, rendered with the generation prompt) or raw strings."""
    if max_new_tokens <= 0:
        raise ValueError(f"max_new_tokens must be > 0, got {max_new_tokens}")
    texts = [p if isinstance(p, str) else tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False)
             for p in prompts]  # fmt: skip
    was_training, side = model.training, tokenizer.padding_side
    model.eval().to(device.device)
    tokenizer.padding_side = "left"  # generation appends on the right, so pad on the left
    out: list[str] = []
    try:
        for i in range(0, len(texts), batch_size):
            enc = tokenizer(
                texts[i : i + batch_size], add_special_tokens=False, padding=True, return_tensors="pt"
            )
            enc = {k: v.to(device.device) for k, v in enc.items()}  # (B, T)
            with device.autocast():
                gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, top_k=None, top_p=None,
                                     temperature=None, eos_token_id=stop_token_ids(tokenizer),
                                     pad_token_id=tokenizer.pad_token_id)  # fmt: skip
            new = gen[:, enc["input_ids"].size(1) :]  # (B, <= max_new_tokens)
            out += [tokenizer.decode(row, skip_special_tokens=True).strip() for row in new]
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return out


def exact_match(predictions: Sequence[str], answers: Sequence[str]) -> float:
    """Share of predictions equal to the answer after stripping surrounding whitespace."""
    if len(predictions) != len(answers) or not answers:
        raise ValueError(
            f"need equally many predictions and answers (>0), got {len(predictions)}, {len(answers)}"
        )
    return sum(p.strip() == a.strip() for p, a in zip(predictions, answers)) / len(answers)


def format_ok(example: SFTExample, prediction: str) -> bool:
    """Does the prediction have the right *shape* for its task (a number, a label, letters...), right or wrong?"""
    p = prediction.strip()
    if example.family == "repeat":
        return bool(re.fullmatch(r"[a-z]+", p))
    if example.family == "alphabetical":
        return p in example.x.split(" or ")
    if example.family == "first_word":
        return p in re.sub(r"[^A-Za-z' ]", "", example.x).split()
    if example.family == "add":
        return p.isdigit()
    if example.family == "max":
        return p in example.x.split(", ")
    if example.family == "reverse":
        return sorted(p.split(" ")) == sorted(example.x.split(" "))
    if example.family == "last_word":
        return p in re.sub(r"[^A-Za-z' ]", "", example.x).split()
    return p in ("comedy", "tragedy")


@dataclass
class EvalResult:
    """Exact match overall and per family, share of well-formed answers, and the predictions."""

    exact_match: float
    by_family: dict[str, float]
    format_ok: float
    predictions: list[str]


def evaluate_sft(
    model: torch.nn.Module,
    tokenizer,
    examples: Sequence[SFTExample],
    device: DeviceInfo,
    max_new_tokens: int = 8,
    system: str | None = SYSTEM_PROMPT,
    prompt_format: str = "chat",
) -> EvalResult:
    """Generate greedily for every example and score it; prompt_format "chat" or "t5" (raw prefix text)."""
    if prompt_format not in ("chat", "t5"):
        raise ValueError(f"prompt_format must be 'chat' or 't5', got {prompt_format!r}")
    prompts = [
        e.prompt_messages(system) if prompt_format == "chat" else _t5_prompt(e, tokenizer) for e in examples
    ]
    preds = generate_responses(model, tokenizer, prompts, device, max_new_tokens)
    fams = sorted({e.family for e in examples})
    by_family = {f: exact_match([p for p, e in zip(preds, examples) if e.family == f],
                                [e.answer for e in examples if e.family == f]) for f in fams}  # fmt: skip
    ok = sum(format_ok(e, p) for e, p in zip(examples, preds)) / len(examples)
    return EvalResult(exact_match(preds, [e.answer for e in examples]), by_family, ok, preds)


def evaluate_exact_match(
    model: torch.nn.Module,
    tokenizer,
    examples: Sequence[SFTExample],
    device: DeviceInfo,
    max_new_tokens: int = 8,
) -> float:
    """Exact match of greedy chat answers on `examples` (the metric modules 07 and 08 report)."""
    return evaluate_sft(model, tokenizer, examples, device, max_new_tokens).exact_match


# ---------------------------------------------------------------------------------------------
# 6. The same examples in T5 text-to-text format
# ---------------------------------------------------------------------------------------------
def _t5_prompt(example: SFTExample, tokenizer) -> str:
    """BOS + `"<prefix>: <input>"` + " =>" : the decoder-only version of T5's input (target follows)."""
    return f"{tokenizer.bos_token}{example.t5_format()[0]} =>"


def t5_pairs(examples: Sequence[SFTExample], tokenizer) -> tuple[list[str], list[str]]:
    """Prompts and outputs (target + EOS) in T5 prefix format, ready for `tokenize_prompt_and_output`."""
    return [_t5_prompt(e, tokenizer) for e in examples], [
        f" {e.answer}{tokenizer.eos_token}" for e in examples
    ]


def evaluate_t5(
    model, tokenizer, examples: Sequence[SFTExample], device: DeviceInfo, max_new_tokens: int = 8
) -> float:
    """Exact match when prompting in T5 prefix format (greedy, stops at EOS)."""
    return evaluate_sft(model, tokenizer, examples, device, max_new_tokens, prompt_format="t5").exact_match


# ---------------------------------------------------------------------------------------------
# 7. The library way: TRL's SFTTrainer with assistant-only loss
# ---------------------------------------------------------------------------------------------
def trl_sft_train(
    model: torch.nn.Module,
    tokenizer,
    examples: Sequence[SFTExample],
    cfg: TrainConfig,
    device: DeviceInfo,
    output_dir: str | Path,
    system: str | None = SYSTEM_PROMPT,
) -> SFTResult:
    """Train with `trl.SFTTrainer` (assistant_only_loss=True) on the same chats and schedule as `sft_train`."""
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    data = prepare_features(examples, tokenizer, cfg.context, system)  # the same filter as our loop
    ds = Dataset.from_list([{"messages": e.messages(system)} for e in examples])
    args = SFTConfig(
        output_dir=str(output_dir), max_steps=cfg.steps, per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.lr, lr_scheduler_type="cosine_with_min_lr",
        lr_scheduler_kwargs={"min_lr_rate": cfg.min_lr_ratio}, warmup_steps=cfg.warmup,
        weight_decay=cfg.weight_decay, adam_beta1=cfg.betas[0], adam_beta2=cfg.betas[1],
        max_grad_norm=cfg.grad_clip, seed=cfg.seed, data_seed=cfg.seed, max_length=cfg.context,
        assistant_only_loss=True, packing=False, report_to="none", save_strategy="no",
        logging_steps=max(1, cfg.steps // 20), disable_tqdm=True, dataloader_num_workers=0,
        use_cpu=device.device.type == "cpu", bf16=device.autocast_dtype == torch.bfloat16,
        fp16=device.autocast_dtype == torch.float16,
    )  # fmt: skip
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tokenizer)
    trainer.remove_callback(PrinterCallback)  # keep the notebook quiet: the history is returned instead
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    history = [{"step": h["step"], "train_loss": h["loss"]} for h in trainer.state.log_history if "loss" in h]
    model.eval()
    return SFTResult(
        history=history, seconds=seconds, examples_seen=cfg.steps * cfg.batch_size, report=data.report
    )


# ---------------------------------------------------------------------------------------------
# 8. Imitation learning, continued pre-training, and loading other models
# ---------------------------------------------------------------------------------------------
def label_with_model(
    model: torch.nn.Module,
    tokenizer,
    examples: Sequence[SFTExample],
    device: DeviceInfo,
    max_new_tokens: int = 8,
) -> tuple[list[SFTExample], int]:
    """The same prompts answered by `model` (a teacher); empty answers are dropped and counted."""
    preds = generate_responses(
        model, tokenizer, [e.prompt_messages() for e in examples], device, max_new_tokens
    )
    kept = [SFTExample(e.family, e.x, e.instruction, p) for e, p in zip(examples, preds) if p.strip()]
    return kept, len(examples) - len(kept)


def truncated_copy(model: torch.nn.Module, keep_layers: Sequence[int]) -> torch.nn.Module:
    """A smaller student: the same model with only `keep_layers` of its blocks (DistilBERT-style initialisation)."""
    n = model.config.num_hidden_layers
    if not keep_layers or any(not 0 <= i < n for i in keep_layers):
        raise ValueError(f"keep_layers must be a non-empty subset of 0..{n - 1}, got {list(keep_layers)}")
    config = copy.deepcopy(model.config)
    config.num_hidden_layers = len(keep_layers)
    if getattr(config, "layer_types", None):
        config.layer_types = [config.layer_types[i] for i in keep_layers]
    student = type(model)(config)
    state = {}
    for k, v in model.state_dict().items():
        m = re.match(r"model\.layers\.(\d+)\.(.*)", k)
        if m is None:
            state[k] = v
        elif int(m.group(1)) in keep_layers:
            state[f"model.layers.{list(keep_layers).index(int(m.group(1)))}.{m.group(2)}"] = v
    student.load_state_dict(state, strict=True)
    return student.eval()


def count_parameters(model: torch.nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in model.parameters())


def domain_corpus(val_fraction: float = 0.1) -> tuple[str, str]:
    """A domain unlike Shakespeare for continued pre-training: Python's own documentation (train, val)."""
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[k].strip() for k in sorted(topics))
    cut = text.find("\n", int(len(text) * (1 - val_fraction)))
    return text[:cut], text[cut + 1 :]


def load_causal_lm(name_or_path: str | Path, allow_hub: bool = False):
    """(model, tokenizer) from a local `save_pretrained` folder; a hub id only with allow_hub=True and network.

    Safetensors only, never remote code. This is the optional `gpu`-profile path for a real small base model.
    """
    import os

    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(name_or_path)
    if not path.is_dir():
        if not allow_hub:
            raise ValueError(f"{str(name_or_path)!r} is not a local model folder, and hub downloads are off "
                             "(pass allow_hub=True when online, e.g. in the gpu profile)")  # fmt: skip
        if os.environ.get("HF_HUB_OFFLINE") == "1":
            raise RuntimeError(
                f"cannot download {name_or_path!r}: HF_HUB_OFFLINE=1 (this course runs offline)"
            )
    model = AutoModelForCausalLM.from_pretrained(name_or_path, use_safetensors=True, trust_remote_code=False)
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=False)
    return model.eval(), tokenizer


def perplexity(loss: float) -> float:
    """exp(loss), the perplexity of a mean cross-entropy in nats."""
    return math.exp(loss)
