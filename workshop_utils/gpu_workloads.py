"""What each notebook does in the `gpu` profile, declared from the config: GPU FLOPs, host round trips, CPU seconds.

`workloads()` lists, per notebook, the parts of one run. A GPU part carries its FLOPs, counted with the
course's own counter (`scale.model_flops_per_token`: 6N + 12 L d T per trained token, on models built on
the meta device from the profile's sizes), and its host round trips in training-step units (a training step
is 1, a forward-only call 1/3: the backward pass is twice the forward; a generation step 1: `generate` runs
its logits processors and cache bookkeeping on the host every token). A CPU part carries seconds at a rate
measured on the course's 2-core machine (`benchmarks/results/`), since Colab gives a T4 two CPU cores too.
`workshop_utils.gpu_predict` turns the parts into seconds per GPU. Assumptions, each an upper bound unless said:

- Forward FLOPs per token are a third of the training counter (2N + 4 L d T); evaluation and generation
  count a prompt as `max_length` tokens (SFT rows are padded to the batch's longest example, not to it).
- LoRA and QLoRA steps are priced as full training steps (they skip the weight gradients: about 4N, not 6N).
- Module 06's sweep is planned without its epoch cap (`max_epochs` needs the tokenized corpus): the cap only
  removes runs.
- "Rest of the notebook" (kernel start, imports, figures, checks, stored results, small computations) is the
  notebook's whole `ci` run-table time: its modelled work is the smallest of the three profiles, so this
  double-counts at most the ci-sized work.
- `rebuild` parts run only when a notebook is opened alone: 04 and 06 train the course tokenizer, 07 and 08
  re-train module 03's course model (`models.load_course_model`); in course order they find them cached.
"""

from __future__ import annotations

import inspect
import itertools
import json
import math
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import torch
from transformers import LlamaForCausalLM

from . import architectures as A
from . import sft
from .config import Profile, get_profile
from .corpus import load_corpus
from .course import MODULES
from .models import course_model_config, course_train_config
from .params import build_on_meta
from .paths import repo_root
from .scale import model_flops_per_token
from .scaling import GRIDS
from .sweep import plan_sweep, sweep_model_config, sweep_spec

FORWARD_SHARE = 1 / 3  # a forward pass is a third of a training step's FLOPs (backward = 2 x forward)
GEN_BATCH = inspect.signature(sft.generate_responses).parameters["batch_size"].default  # prompts per generate
LOSS_BATCH = (
    inspect.signature(sft.answer_batches).parameters["batch_size"].default
)  # examples per answer-loss batch
ARCH_EVAL = (2, 4, 16)  # architectures.train_tiny: eval_objective before and after, 4 batches of 16


@dataclass(frozen=True)
class Work:
    """One part of a notebook's run: GPU FLOPs and host round trips, or CPU seconds."""

    part: str
    flops: float = 0.0  # GPU FLOPs (course counter)
    steps: float = 0.0  # host round trips in training-step units (forward call 1/3, generation step 1)
    fp32: bool = False  # no autocast: the CUDA cores' fp32 peak, not the 16-bit tensor cores
    cpu_s: float = 0.0  # seconds on the CPU at a measured rate
    rebuild: bool = False  # only when the notebook is opened alone (an upstream output is re-made)


def results_file(name: str) -> dict[str, Any]:
    """A measured result, benchmarks/results/<name>.json; a clear error naming the command that makes it."""
    path = repo_root() / "benchmarks" / "results" / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"name: no {path}; make it with `make bench` or tools/run_course.py --record")
    return json.loads(path.read_text())


def run_seconds(profile: str, notebook: str) -> float:
    """Seconds of `notebook` in the recorded run table of `profile` (benchmarks/results/notebook_times_*)."""
    rows = {r["notebook"]: r for r in results_file(f"notebook_times_{profile}")["rows"]}
    if notebook not in rows:
        raise ValueError(
            f"notebook: {notebook!r} not in the recorded {profile} run table; has {sorted(rows)}"
        )
    return float(rows[notebook]["seconds"])


# --- the parts, built from sizes ---------------------------------------------------------------------
def train(part: str, fpt: float, steps: int, tokens: int, fp32: bool = False, rebuild: bool = False) -> Work:
    """`steps` training steps of `tokens` tokens each at `fpt` training FLOPs per token."""
    return Work(part, fpt * steps * tokens, steps, fp32, rebuild=rebuild)


def forward(part: str, fpt: float, calls: int, tokens: int, rebuild: bool = False) -> Work:
    """`calls` forward passes of `tokens` tokens each (a third of the training FLOPs and round trip)."""
    return Work(part, FORWARD_SHARE * fpt * calls * tokens, FORWARD_SHARE * calls, rebuild=rebuild)


def generate(part: str, fpt: float, prompts: int, prompt_len: int, new: int, rebuild: bool = False) -> Work:
    """Greedy answers to `prompts` in batches of GEN_BATCH: one forward per prompt token, one round trip per step."""
    batches = math.ceil(prompts / GEN_BATCH)
    return Work(part, FORWARD_SHARE * fpt * prompts * (prompt_len + new), batches * new, rebuild=rebuild)


def cpu(part: str, seconds: float, rebuild: bool = False) -> Work:
    """CPU seconds at a measured rate."""
    return Work(part, cpu_s=seconds, rebuild=rebuild)


def evals(steps: int, every: int) -> int:
    """Evaluations of `training.train_loop`: step 0, every `every` steps, and the last step."""
    return 1 + (steps // every if every else 0) + (1 if not every or steps % every else 0)


# --- FLOPs per token of the course's models (meta device: shapes only) ---------------------------------
def lm_fpt(profile: Profile, context: int, n_layers: int | None = None) -> float:
    """Training FLOPs per token of the course model (optionally with fewer layers: module 07's students)."""
    config = course_model_config(profile)
    if n_layers is not None:
        config.num_hidden_layers = n_layers
    with torch.device("meta"):
        return model_flops_per_token(LlamaForCausalLM(config), context)


class _Vocab:
    """The size and special ids `architectures.tiny_config` reads from a CharVocab."""

    pad, eos = 0, 2

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n


@cache
def tiny_flops(profile_name: str) -> float:
    """Training + evaluation FLOPs of module 01's four tiny models (train_tiny) at a profile's sizes."""
    profile = get_profile(profile_name)
    arch = profile.arch
    train_text, val_text = A.arch_text(profile)
    vocab = _Vocab(len(A.CharVocab(train_text + val_text)))
    total = 0.0
    for family in A.FAMILIES:
        fpt = model_flops_per_token(
            build_on_meta(A.tiny_config(family, vocab, arch, arch.context)), arch.context
        )
        total += fpt * arch.train_steps * arch.batch_size * arch.context
        total += FORWARD_SHARE * fpt * math.prod(ARCH_EVAL) * arch.context
    return total


# --- CPU rates measured on the course machine -----------------------------------------------------------
def tokenizer_parts(profile: Profile, rebuild: bool) -> list[Work]:
    """The course tokenizer trained on the profile's corpus and the corpus encoded (`models.course_token_ids`)."""
    bpe, corpus = results_file("bpe_cpu"), load_corpus(profile)
    chars = len(corpus.train)
    train_s = bpe["train_seconds"]["course_tokenizer"] * chars / bpe["train_chars"]
    val = bpe["validation"]
    enc_s = val["encode_seconds_course"] * len((corpus.train + corpus.val).encode()) / val["bytes"]
    return [cpu(f"course tokenizer on {chars:,} characters", train_s, rebuild),
            cpu("encode the corpus", enc_s, rebuild)]  # fmt: skip


def bpe_seconds(chars: int, vocab: int) -> float:
    """From-scratch BPE training time: a power law in chars x vocab through the ci and cpu benchmark points."""
    (x0, t0), (x1, t1) = (
        (b["train_chars"] * b["vocab_size"], b["train_seconds"]["ours"])
        for b in (results_file("bpe_ci"), results_file("bpe_cpu"))
    )
    exponent = math.log(t1 / t0) / math.log(x1 / x0)
    return t1 * (chars * vocab / x1) ** exponent


def pretraining(profile: Profile, rebuild: bool) -> list[Work]:
    """Module 03's course model: tokenizer, token ids, pre-training, its evaluations and text samples."""
    lm, cfg = profile.lm, course_train_config(profile)
    fpt, tokens = lm_fpt(profile, lm.context), lm.batch_size * lm.context
    return [
        *tokenizer_parts(profile, rebuild),
        train(f"pre-training: {lm.steps} steps x {lm.batch_size} x {lm.context}", fpt, lm.steps, tokens, rebuild=rebuild),
        forward("its validation", fpt, evals(lm.steps, lm.eval_every) * lm.eval_batches, tokens, rebuild),
        generate("its text samples", fpt, len(lm.sample_steps), len(cfg.sample_prompt), cfg.sample_tokens, rebuild),
    ]  # fmt: skip


def sft_run(profile: Profile, part: str, steps: int, fpt: float | None = None) -> Work:
    """One SFT run (`sft.sft_train` or TRL) of `steps` steps at the profile's batch and max_length."""
    s = profile.sft
    return train(part, fpt or lm_fpt(profile, s.max_length), steps, s.batch_size * s.max_length)


def answers(profile: Profile, part: str, prompts: int | None = None) -> Work:
    """Greedy answers (`sft.evaluate_sft`) to `prompts` (default: the test split)."""
    s = profile.sft
    fpt = lm_fpt(profile, s.max_length)
    return generate(part, fpt, prompts or s.n_eval, s.max_length, s.max_new_tokens)


def answer_loss(profile: Profile, part: str, n: int | None = None) -> Work:
    """Mean answer loss (`sft.answer_loss`) over `n` examples (default: the test split), batches of LOSS_BATCH."""
    s = profile.sft
    n = n or s.n_eval
    return forward(part, lm_fpt(profile, s.max_length), math.ceil(n / LOSS_BATCH), LOSS_BATCH * s.max_length)


# --- the notebooks ------------------------------------------------------------------------------------
def _rest(notebook: str) -> Work:
    """Everything not modelled: the notebook's whole ci run (measured)."""
    return cpu("rest of the notebook (its whole ci run, measured)", run_seconds("ci", notebook))


def _measured(notebook: str, why: str) -> list[Work]:
    """A notebook with no GPU-bound work: its cpu run-table time (measured on the course's 2 cores)."""
    return [cpu(f"whole notebook at its cpu-run time: {why}", run_seconds("cpu", notebook))]


def nb01(p: Profile) -> list[Work]:
    """Four tiny models trained on the CPU (architectures.train_tiny never moves them to a device)."""
    nb = "01_architecture_evolution.ipynb"
    rate = (tiny_flops("cpu") - tiny_flops("ci")) / (run_seconds("cpu", nb) - run_seconds("ci", nb))
    part = f"4 tiny models on the CPU at {rate / 1e9:.1f} GFLOP/s (from the ci and cpu run tables)"
    return [_rest(nb), cpu(part, tiny_flops(p.name) / rate)]


def nb02(p: Profile) -> list[Work]:
    """The crawl built and cleaned on the CPU at the docs/s of benchmarks/results/data_cpu.json."""
    data, n = results_file("data_cpu"), p.crawl.n_docs
    rate = data["pipeline_docs_per_s"]
    per_doc_io = (data["warc_write_seconds"] + data["warc_read_seconds"]) / data["n_docs"]
    return [
        _rest("02_data_pipeline.ipynb"),
        cpu(f"build the crawl: {n:,} documents", n * data["crawl_build_seconds"] / data["n_docs"]),
        cpu(f"write it as WARC and read it back: {n:,} documents", n * per_doc_io),
        cpu(f"clean it: {n:,} documents at {rate:.0f} docs/s", n / rate),
    ]


def nb03(p: Profile) -> list[Work]:
    """From-scratch BPE (4 trainings) and HF BPE on the CPU, then the course model on the GPU."""
    b, bpe = results_file("bpe_cpu"), p.bpe
    seconds = b["train_seconds"]
    per_char = (seconds["course_tokenizer"] + seconds["hf_tokenizers"]) / b["train_chars"]
    v = bpe.vocab_size
    sizes = (v, v, 3 * v // 4, 2 * v)  # ours, ours with HF's tie rule, the two of solution 3
    return [
        _rest("03_tokenization_and_pretraining.ipynb"),
        cpu(f"from-scratch BPE on {bpe.train_chars:,} characters, vocabularies {sizes}",
            sum(bpe_seconds(bpe.train_chars, size) for size in sizes)),
        cpu("HF BPE and the course tokenizer on the same slice", per_char * bpe.train_chars),
        *pretraining(p, rebuild=False),
    ]  # fmt: skip


def nb04(p: Profile) -> list[Work]:
    """Seven two-step memory measurements and two precision runs of the (untrained) course model."""
    m = p.memory
    fpt, tokens = lm_fpt(p, m.context), m.batch_size * m.context
    return [
        _rest("04_memory_and_mixed_precision.ipynb"),
        *tokenizer_parts(p, rebuild=True),
        train(
            "memory levers + SGD solution: 7 x 2 steps (all fp32: an upper bound)", fpt, 14, tokens, fp32=True
        ),
        train(f"fp32 run: {m.mp_steps} steps", fpt, m.mp_steps, tokens, fp32=True),
        train(f"autocast run: {m.mp_steps} steps", fpt, m.mp_steps, tokens),
    ]


def nb06(p: Profile) -> list[Work]:
    """The live IsoFLOP sweep on the GPU, Approach 3 on the stored sweep on the CPU."""
    live = get_profile(p.scaling.live_profile)
    spec = replace(sweep_spec(live), max_epochs=0.0)  # uncapped plan: an upper bound
    tokens, vocab = spec.batch_size * spec.context, live.lm.vocab_size
    train_tok, encode = tokenizer_parts(live, rebuild=True)
    parts = [
        _rest("06_scaling_laws.ipynb"),
        train_tok,
        replace(encode, rebuild=False),
    ]  # run_sweep encodes anew
    for r in plan_sweep(spec, live, vocab):
        with torch.device("meta"):
            model = LlamaForCausalLM(sweep_model_config(live, vocab, r["d_model"], r["n_layers"]))
        fpt = model_flops_per_token(model, spec.context)
        part = f"sweep C={r['budget']:.0e} d={r['d_model']}: {r['steps']} steps"
        parts += [
            train(part, fpt, r["steps"], tokens),
            forward("its validation", fpt, 2 * spec.eval_batches, tokens),
        ]
    starts = grid_starts(p.scaling.grid)
    per_start = results_file("scaling_fit_cpu")["seconds_per_start"]
    return [*parts, cpu(f"Approach 3, grid {p.scaling.grid!r}: {starts} starts", starts * per_start)]


def nb07(p: Profile) -> list[Work]:
    """Five SFT runs (main, masked, unmasked, TRL, a quarter of the data), CPT, two students, eleven generations."""
    s, lm = p.sft, p.lm
    half = lm_fpt(p, s.max_length, n_layers=lm.n_layers // 2 or 1)  # the students keep half the layers
    cpt_fpt, cpt_tokens = lm_fpt(p, lm.context), lm.batch_size * lm.context
    short = ("masked", "unmasked", "TRL SFTTrainer", "a quarter of the data (solution 3)")
    evaluated = ("base", "SFT", "masked", "unmasked", "TRL", "CPT", "gold student", "imitating student",
                 "no system prompt", "a quarter of the data")  # fmt: skip
    return [
        _rest("07_supervised_finetuning.ipynb"),
        *pretraining(p, rebuild=True),
        sft_run(p, f"SFT: {s.steps} steps", s.steps),
        *(sft_run(p, f"{what}: {s.trl_steps} steps", s.trl_steps) for what in short),
        train(f"continued pre-training: {s.cpt_steps} steps", cpt_fpt, s.cpt_steps, cpt_tokens),
        forward("its validation: before, step 0, end x 4 batches", cpt_fpt, 3 * 4, cpt_tokens),
        *(
            sft_run(p, f"{who}: {s.student_steps} steps", s.student_steps, half)
            for who in ("gold", "imitating")
        ),
        sft_run(p, "packing throughput: 2 x 16 forward+backward", 2 * 16),
        *(answers(p, f"answers: {what}") for what in evaluated),
        answers(p, f"the teacher labels the pool ({s.n_pool:,} prompts)", s.n_pool),
    ]


def nb08(p: Profile) -> list[Work]:
    """Full FT and one LoRA run per rank (each measured and evaluated), QLoRA, replays, adapter switching."""
    lo, st = p.lora, p.study
    runs = ["full FT", *(f"LoRA r={r}" for r in lo.ranks), f"QLoRA r={lo.ranks[1]}"]
    parts = [_rest("08_lora_and_qlora.ipynb"), *pretraining(p, rebuild=True)]
    parts.append(cpu("latency benchmark: 3 models x bench_seconds", 3 * lo.bench_seconds))
    for run in runs:
        parts += [sft_run(p, f"{run}: {lo.steps} steps + 2 measured", lo.steps + 2),
                  answers(p, f"{run}: answers"), answer_loss(p, f"{run}: answer loss")]  # fmt: skip
    parts += [answers(p, "base: answers"), answer_loss(p, "base: answer loss")]
    for arm in ("full", "lora"):  # finetune_report.replay_start: the first evaluation interval, live
        parts += [sft_run(p, f"replay of the study's {arm} run: {st.eval_every} steps", st.eval_every),
                  answer_loss(p, "its validation at steps 0 and eval_every", 2 * p.sft.n_eval)]  # fmt: skip
    return [*parts, *(answers(p, f"PEFT adapter {i}: answers") for i in (1, 2))]


def workloads(profile: Profile | None = None) -> dict[str, list[Work]]:
    """Every notebook's parts in the `gpu` profile (or another profile's sizes), in course order."""
    p = profile or get_profile("gpu")
    single_gpu = "one GPU: torch.distributed runs the cpu profile's ranks on the CPU (gloo)"
    build = {
        "00_setup.ipynb": lambda: _measured("00_setup.ipynb", "environment checks, the matmul probe is faster on a GPU"),
        "01_architecture_evolution.ipynb": lambda: nb01(p),
        "02_data_pipeline.ipynb": lambda: nb02(p),
        "03_tokenization_and_pretraining.ipynb": lambda: nb03(p),
        "04_memory_and_mixed_precision.ipynb": lambda: nb04(p),
        "05_distributed_training.ipynb": lambda: _measured("05_distributed_training.ipynb", single_gpu),
        "06_scaling_laws.ipynb": lambda: nb06(p),
        "07_supervised_finetuning.ipynb": lambda: nb07(p),
        "08_lora_and_qlora.ipynb": lambda: nb08(p),
        "09_build_adapt_or_buy.ipynb": lambda: _measured("09_build_adapt_or_buy.ipynb", "arithmetic, no training"),
    }  # fmt: skip
    missing = [m.notebook for m in MODULES if m.notebook not in build]
    if missing:
        raise ValueError(f"no declared workload for {missing}: add one to gpu_workloads.workloads")
    return {m.notebook: build[m.notebook]() for m in MODULES}


def grid_starts(grid: str) -> int:
    """Starts of an Approach-3 grid (`scaling.GRIDS`)."""
    return len(list(itertools.product(*GRIDS[grid].values())))
