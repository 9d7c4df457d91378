"""Profiles: the one place that maps `ci` / `cpu` / `gpu` / `auto` to every size the notebooks use.

A notebook never hard-codes a scale. It asks `get_profile(PROFILE)` and reads its section, e.g.
`profile.lm.d_model`. Each value that was shrunk for small machines carries a short "why".

| profile | where                          | budget per notebook |
|---------|--------------------------------|---------------------|
| ci      | 2 CPU cores, CI                | <= 90 s             |
| cpu     | a laptop, the default w/o GPU  | <= 5 min            |
| gpu     | Colab T4 / A100 / H100         | <= 10 min on a T4   |

`auto` resolves to `gpu` when CUDA is available, else `cpu`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

PROFILE_NAMES = ("ci", "cpu", "gpu")
VALID_PROFILES = (*PROFILE_NAMES, "auto")

# Budgets in seconds per notebook (checked by the run table, not by unit tests).
BUDGET_SECONDS = {"ci": 90, "cpu": 300, "gpu": 600}

# ---------------------------------------------------------------------------------------------
# Every size the course uses, by section (one section per topic) and profile.
# Model dimensions are multiples of 64: bitsandbytes' CPU 4-bit path needs it (module 08).
# ---------------------------------------------------------------------------------------------
# A table: one row per profile reads better than ruff's one value per line.
# fmt: off
_SECTIONS: dict[str, dict[str, dict[str, Any]]] = {
    # Module 00: the environment check's matmul speed probe (n x n fp32 matmul, timed by torch.utils.benchmark).
    "setup": {
        # torch_threads: ci models are tiny; one thread loses <30 % on a quiet machine but avoids the 10x+
        # slow-downs two spinning OpenMP threads suffer when anything else shares the 2 cores.
        "ci": {"matmul_n": 512, "min_run_time": 0.5, "torch_threads": 1},  # ci: a probe, not a benchmark
        "cpu": {"matmul_n": 1024, "min_run_time": 1.0, "torch_threads": None},  # None: torch's default
        "gpu": {"matmul_n": 4096, "min_run_time": 1.0, "torch_threads": None},
    },
    # Module 01: tiny BERT / T5 / GPT-2 / LLaMA built from transformers configs.
    # Character-level vocabulary; context 64, batch 16 (field notes: short context wins on a budget).
    "arch": {
        # ci: ~3-5 s of training per family on 2 quiet cores; every loss still falls below the unigram entropy.
        "ci": {
            "d_model": 64,
            "n_layers": 2,
            "n_heads": 2,
            "train_steps": 150,
            "text_chars": 20_000,
            "context": 64,
            "batch_size": 16,
            "lr": 3e-3,
            "prenorm_depths": (2, 8, 24),
        },
        "cpu": {
            "d_model": 128,
            "n_layers": 2,
            "n_heads": 4,
            "train_steps": 600,
            "text_chars": 200_000,
            "context": 64,
            "batch_size": 16,
            "lr": 3e-3,
            "prenorm_depths": (2, 8, 32, 64),
        },
        # gpu: the cpu sizes. The tiny models train on the CPU even on a GPU machine (architectures.train_tiny),
        # and the 2000-step, 256-wide version was predicted at hours on a T4 (workshop_utils.gpu_predict).
        "gpu": {
            "d_model": 128,
            "n_layers": 2,
            "n_heads": 4,
            "train_steps": 600,
            "text_chars": 200_000,
            "context": 64,
            "batch_size": 16,
            "lr": 3e-3,
            "prenorm_depths": (2, 8, 32, 64),
        },
    },
    # Module 02: the raw mini crawl and its cleaning pipeline.
    "crawl": {
        "ci": {"n_docs": 2_000, "num_proc": 1},
        "cpu": {"n_docs": 20_000, "num_proc": 2},
        "gpu": {"n_docs": 200_000, "num_proc": 4},
    },
    # Modules 03 (trains it), 04, 07, 08 (reuse it): the course tokenizer and course model.
    "lm": {
        # ci: smallest model whose validation loss still falls clearly in ~20 s of training.
        "ci": {
            "corpus_chars": 1_000_000,  # a 1 MB slice: tokenizer + 300 steps stay under 30 s
            "vocab_size": 1024,
            "d_model": 64,
            "n_layers": 2,
            "n_heads": 2,
            "n_kv_heads": 1,
            "d_ff": 192,
            "context": 64,
            "batch_size": 16,
            "steps": 300,
            "lr": 3e-3,
            "warmup": 30,
            "eval_every": 50,
            "eval_batches": 8,
            "sample_steps": (0, 50, 150, 300),
            "cpu_bf16": False,
        },
        # cpu: the field-notes recipe (d128, 4 layers, vocab 2048, ctx 64, batch 16) in ~3 min on 2 cores.
        "cpu": {
            "corpus_chars": None,  # the whole corpus: 3 minutes on a 1 MB slice overfits
            "vocab_size": 2048,
            "d_model": 128,
            "n_layers": 4,
            "n_heads": 4,
            "n_kv_heads": 2,
            "d_ff": 384,
            "context": 64,
            "batch_size": 16,
            "steps": 2400,
            "lr": 2e-3,
            "warmup": 100,
            "eval_every": 200,
            "eval_batches": 20,
            "sample_steps": (0, 100, 400, 1200, 2400),
            "cpu_bf16": True,
        },
        "gpu": {
            "corpus_chars": None,
            "vocab_size": 4096,
            "d_model": 384,
            "n_layers": 6,
            "n_heads": 6,
            "n_kv_heads": 2,
            "d_ff": 1024,
            "context": 256,
            "batch_size": 64,
            "steps": 1200,  # 3000 was predicted at 13 min on a T4 (gpu_predict); 1200 fits 07/08 opened alone
            "lr": 1e-3,
            "warmup": 200,
            "eval_every": 250,
            "eval_batches": 20,
            "sample_steps": (0, 100, 400, 1200),
            "cpu_bf16": False,
        },
    },
    # Module 03: the from-scratch BPE trainer (slow by design, so it sees a slice).
    "bpe": {
        "ci": {"train_chars": 100_000, "vocab_size": 512},
        "cpu": {"train_chars": 1_000_000, "vocab_size": 1024},
        "gpu": {"train_chars": 2_000_000, "vocab_size": 2048},
    },
    # Module 04: memory measurement and mixed-precision runs on the course model.
    "memory": {
        "ci": {"batch_size": 8, "context": 64, "mp_steps": 60},
        "cpu": {"batch_size": 16, "context": 64, "mp_steps": 300},
        "gpu": {"batch_size": 32, "context": 256, "mp_steps": 500},
    },
    # Module 05: torch.distributed runs.
    # One torchrun launch runs every strategy in turn (rank start-up costs ~3-5 s per launch on 2 cores).
    "distributed": {
        "ci": {
            "world_size": 2,  # 2 ranks on 2 cores: the smallest world where sharding halves anything
            "steps": 3,  # enough to compare losses step by step; the mechanics, not convergence
            "batch_size": 8,  # global batch, split over the ranks
            "context": 32,
            "strategies": ("ddp", "zero1", "zero1_hand", "zero2", "zero3", "zero3+bf16"),
            "timeout_s": 240,  # the whole launch; collectives time out after 60 s inside the script
        },
        "cpu": {
            "world_size": 4,
            "steps": 10,
            "batch_size": 16,
            "context": 64,
            "strategies": ("ddp", "zero1", "zero1_hand", "zero2", "zero3", "zero2+bf16", "zero3+bf16"),
            "timeout_s": 600,
        },
        "gpu": {
            "world_size": 0,  # 0 = every visible GPU (a single GPU runs 1 rank: sharding then has no peer)
            "steps": 20,
            "batch_size": 32,
            "context": 256,
            "strategies": (
                *("ddp", "zero1", "zero1_hand", "zero2", "zero3"),
                *("ddp+bf16", "zero2+bf16", "zero3+bf16"),
            ),
            "timeout_s": 600,
        },
    },
    # Module 06: our own Chinchilla sweep.
    "scaling": {
        # Sweep = budgets (FLOPs, C = 6ND, N = all parameters) x sizes (d_model, n_layers); steps = C/(6N*B*T).
        # ci: 3 x 4 one-layer models on the 1 MB slice, ~4k steps of 1024 tokens in all; the smallest budget
        # sits near the smallest model's optimum (at 2e10 the optimum fell below d_model = 8).
        "ci": {
            "budgets": (3e10, 6e10, 1.2e11),
            "sizes": ((8, 1), (16, 1), (24, 1), (32, 1)),
            "batch_size": 16,  # step time is overhead-bound at these sizes: a bigger batch is nearly free
            "context": 64,
            "lr": 1e-2,  # tiny models take a high rate; one rate for all sizes (a stated simplification)
            "warmup_frac": 0.05,
            "eval_batches": 8,
            "cpu_bf16": False,
            "grid": "small",  # Approach-3 starts: 32 of the paper's 4500 (time)
            "n_boot": 300,
            "max_epochs": 0.0,  # no cap: the live sweep's biggest run sees its slice ~3 times
            "live_profile": "ci",  # the sweep the notebook trains live
        },
        # cpu: the stored sweep (data/scaling/sweep_cpu.json, `make scaling-sweep`, ~16k steps on the whole
        # corpus): too long for a live notebook, so the cpu notebook trains the ci sweep live and shows this.
        # Budgets span 33x in compute so that the IsoFLOP exponent a is constrained, not just fitted; the
        # smallest sits where d_model = 8 is already past its optimum (below 3e11 the minimum is d_model 8).
        "cpu": {
            "budgets": (3e11, 1e12, 3e12, 1e13),
            "sizes": ((8, 1), (16, 1), (24, 1), (32, 1), (48, 1), (64, 1), (96, 1), (128, 1), (192, 1)),
            # Runs that would repeat the corpus more than 4 times are skipped (the law is for fresh tokens;
            # Muennighoff et al. 2023 found up to ~4 epochs about as good as unique data): small models
            # drop out of the big budgets, as in Chinchilla's per-budget size ranges.
            "max_epochs": 4.0,
            "live_profile": "ci",
            "batch_size": 16,
            "context": 64,
            "lr": 1e-2,
            "warmup_frac": 0.05,
            "eval_batches": 16,
            "cpu_bf16": False,  # tiny matmuls: bf16 casts cost more than they save
            "grid": "coarse",  # 243 of the paper's 4500 starts
            "n_boot": 1000,
        },
        # gpu: 4 budgets x 5 sizes, bigger models and batches (not yet timed on a GPU).
        "gpu": {
            "budgets": (2e12, 4e12, 8e12, 1.6e13),
            "sizes": ((32, 2), (64, 2), (96, 3), (128, 4), (192, 4)),
            "batch_size": 32,
            "context": 128,
            "lr": 3e-3,
            "warmup_frac": 0.05,
            "eval_batches": 40,
            "cpu_bf16": False,
            "grid": "paper",  # all 4500 starts, as Hoffmann et al.
            "n_boot": 1000,
            "max_epochs": 4.0,
            "live_profile": "gpu",
        },
    },
    # Module 07: supervised fine-tuning.
    # n_eval is the size of validation and of test each; n_pool: prompts the teacher labels (imitation);
    # max_length: the longest chat in tokens (prompts run ~30-50 tokens on the course tokenizer).
    "sft": {
        # ci: copying a word from the prompt emerges late (measured: 600 steps ~5 %, 1500 steps ~30 % EM at
        # lr 1e-2, batch 16); n_eval 150 = 30 per family (overall EM +-4 points, one family +-9, 1 s.e.);
        # side runs (masked vs unmasked, TRL, students) are short; threads 1: robust under load (sft.torch_threads).
        # cpu: 3000 main steps keep >= 3 families above 10 % EM; the side runs were cut (trl/cpt 200 -> 150,
        # students 500 -> 300) after the notebook took 301.9 s against its 300 s budget.
        "ci": {"n_train": 2_000, "n_eval": 150, "n_pool": 300, "steps": 1500, "batch_size": 16, "lr": 1e-2,
               "max_length": 96, "max_new_tokens": 8, "trl_steps": 150, "cpt_steps": 30, "student_steps": 150,
               "threads": 1},
        "cpu": {"n_train": 8_000, "n_eval": 300, "n_pool": 3_000, "steps": 3000, "batch_size": 16, "lr": 1e-2,
                "max_length": 96, "max_new_tokens": 8, "trl_steps": 150, "cpt_steps": 150, "student_steps": 300, "threads": None},
        # gpu: sized to a T4's 10 minutes with module 03's model re-trained first (gpu_predict)
        "gpu": {"n_train": 20_000, "n_eval": 500, "n_pool": 3_000, "steps": 1000, "batch_size": 32, "lr": 1e-3,
                "max_length": 128, "max_new_tokens": 8, "trl_steps": 300, "cpt_steps": 200, "student_steps": 500, "threads": None},
    },
    # Module 08: LoRA and QLoRA.
    # steps: every run of the FT-vs-LoRA table (full FT and each rank) takes this many. Module 07 measured that
    # copying emerges late (ci: ~5 % EM at 600 steps, ~30 % at 1500), so ci's 200 steps show the mechanics with
    # noisy metrics (the notebook prints the standard error); cpu runs 800 (a 5-minute budget). lr_full: module 07's
    # SFT LR; lr_lora: the same (r=16 at 2e-2 diverged in ci). The hyper-parameter sweep is the stored grid's
    # (`workshop_utils.finetune_grid`, 3 seeds), not a live one.
    "lora": {
        "ci": {
            "steps": 200,  # ci: 5 runs of 200 steps fit the budget; 1500 would not
            "ranks": (1, 4, 16),
            "lr_full": 1e-2,
            "lr_lora": 1e-2,
            "bench_batch": 8,
            "bench_seconds": 0.3,
        },
        "cpu": {  # cpu: 800 steps x 5 runs + an 11-point sweep of 300 steps took > 600 s; this fits 300 s
            "steps": 400,
            "ranks": (1, 4, 16),
            "lr_full": 1e-2,
            "lr_lora": 1e-2,
            "bench_batch": 16,
            "bench_seconds": 1.0,
        },
        "gpu": {  # sized to a T4's 10 minutes with module 03's model re-trained first (gpu_predict)
            "steps": 500,
            "ranks": (1, 4, 16, 64),
            "lr_full": 1e-3,
            "lr_lora": 5e-3,
            "bench_batch": 32,
            "bench_seconds": 1.0,
        },
    },
    # Modules 07 and 08: the fine-tuning study (`workshop_utils.finetune_study`), stored under data/finetune/.
    # Every arm trains on module 07's task until its validation answer loss stops improving (eval_every,
    # patience; the best checkpoint is kept), at most max_steps; its LR is the best of its grid on validation
    # at the first seed, then the other seeds run at that LR. lora_r / lora_alpha: the LoRA arms' adapter.
    "study": {
        "ci": {"seeds": (0, 1), "max_steps": 2000, "eval_every": 100, "patience": 3, "lora_r": 4, "lora_alpha": 8,
               "lr_full": (1e-3, 3e-3, 1e-2), "lr_lora": (3e-3, 1e-2, 3e-2)},
        "cpu": {"seeds": (0, 1, 2), "max_steps": 2400, "eval_every": 200, "patience": 3, "lora_r": 4, "lora_alpha": 8,
                "lr_full": (3e-4, 1e-3, 3e-3), "lr_lora": (1e-3, 3e-3, 1e-2)},
        "gpu": {"seeds": (0, 1, 2), "max_steps": 3000, "eval_every": 250, "patience": 3, "lora_r": 8, "lora_alpha": 16,
                "lr_full": (1e-4, 3e-4, 1e-3), "lr_lora": (1e-3, 3e-3, 1e-2)},
    },
    # Module 09: the build-adapt-or-buy planner is arithmetic (no training): only its sweeps differ.
    # sweep_points: values per sensitivity sweep (traffic, GPU price, domain data); tco_months: the chart's horizon.
    "planner": {
        "ci": {"sweep_points": 9, "tco_months": 24},
        "cpu": {"sweep_points": 25, "tco_months": 24},
        "gpu": {"sweep_points": 25, "tco_months": 24},
    },
}
# fmt: on


class Section(Mapping):
    """A read-only bag of sizes with attribute access; a missing key names the valid ones."""

    def __init__(self, section: str, profile: str, values: dict[str, Any]) -> None:
        self._section, self._profile, self._values = section, profile, dict(values)

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(
                f"profile {self._profile!r} section {self._section!r} has no size {key!r}; "
                f"valid: {sorted(self._values)}"
            ) from None

    def __getitem__(self, key: str) -> Any:
        return self.__getattr__(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Section({self._section}@{self._profile}: {self._values})"


@dataclass(frozen=True)
class Profile:
    """Sizes for one scale. `requested` is what the user asked for (`auto` stays visible)."""

    name: str
    requested: str

    def __getattr__(self, section: str) -> Section:
        if section.startswith("_"):
            raise AttributeError(section)
        if section not in _SECTIONS:
            raise AttributeError(f"no profile section {section!r}; valid: {sorted(_SECTIONS)}")
        return Section(section, self.name, _SECTIONS[section][self.name])

    @property
    def budget_seconds(self) -> int:
        """Wall-time budget of one notebook in this profile."""
        return BUDGET_SECONDS[self.name]

    def __repr__(self) -> str:
        extra = f" (from {self.requested!r})" if self.requested != self.name else ""
        return f"Profile({self.name!r}{extra})"


def resolve_profile_name(name: str) -> str:
    """Map `auto` to `gpu`/`cpu` by CUDA availability; reject unknown names."""
    if not isinstance(name, str) or name.lower() not in VALID_PROFILES:
        raise ValueError(f"unknown profile {name!r}; valid profiles: {', '.join(VALID_PROFILES)}")
    name = name.lower()
    if name != "auto":
        return name
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def get_profile(name: str = "auto") -> Profile:
    """The sizes for `name` (`ci`, `cpu`, `gpu` or `auto`)."""
    return Profile(name=resolve_profile_name(name), requested=str(name).lower())


def sections() -> list[str]:
    """Names of all profile sections."""
    return sorted(_SECTIONS)
