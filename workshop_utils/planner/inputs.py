"""Module 09's inputs: published figures, the user's prices and scenario, and the open bases the planner knows.

Prices are the user's numbers: `EXAMPLE_PRICES` are labelled examples, never facts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache, lru_cache

from .. import published as _published
from ..hardware import gpu
from ..memory import Architecture
from ..params import KNOWN_CONFIGS, build_on_meta, known_config
from ..paths import repo_root
from ..quant import LLAMA1, llama1_config


def published() -> dict[str, dict]:
    """The published figures this module re-derives (data/published/planning.json), by key: rows with a "value"."""
    return _published.rows("planning")


def fig(key: str) -> float:
    """The value of planning figure `key` as a float; a clear error naming the closest keys for an unknown one."""
    return float(_published.value("planning", key))


# --------------------------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class Prices:
    """USD per GPU-hour by hardware key, and per million API tokens: the user's numbers."""

    gpu_hour: dict[str, float]
    api_input: float  # USD per 1M input tokens
    api_output: float  # USD per 1M output tokens
    label: str

    def hour(self, key: str) -> float:
        """GPU-hour price of `key`, or a clear error saying how to give one."""
        if key not in self.gpu_hour:
            raise ValueError(f"no GPU-hour price for {key!r}: pass one (CLI: --gpu-price {key}=USD)")
        return self.gpu_hour[key]


EXAMPLE_PRICES = Prices(
    {"t4-16gb": 0.35, "l4-24gb": 0.80, "a6000-48gb": 0.80, "a100-40gb": 1.30, "a100-80gb": 1.80, "h100-80gb": 2.50},
    api_input=0.50, api_output=1.50,
    label="EXAMPLE prices for illustration, not quotes: replace them with your own",
)  # fmt: skip


@dataclass(frozen=True)
class Scenario:
    """What the team needs, has and may do."""

    name: str
    task: str
    model: str  # the open base to use or adapt (a name in `model_names()`)
    gpu: str  # hardware on hand (a key of hardware.catalogue())
    n_gpus: int
    requests_per_day: float
    input_tokens: int  # per request
    output_tokens: int  # per request
    labelled_examples: int = 0
    tokens_per_example: int = 512
    epochs: int = 3
    domain_tokens: float = 0.0  # raw in-domain text
    domain_shift: bool = False  # the domain's text is unlike the web a base saw (new language, in-house code)
    existing_model_passes: bool = False  # an existing model meets the quality bar on *your* eval, as is
    privacy: bool = False  # data may not leave the company
    latency_ms: float = 100.0  # target time per generated token
    months: int = 12  # horizon for total cost of ownership
    max_train_days: float = 30.0

    def __post_init__(self) -> None:
        if self.model not in model_names():
            raise ValueError(f"model: unknown base {self.model!r}; valid: {', '.join(model_names())}")
        gpu(self.gpu)
        for name in ("n_gpus", "input_tokens", "output_tokens", "tokens_per_example", "epochs", "months"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("requests_per_day", "latency_ms", "max_train_days"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("labelled_examples", "domain_tokens"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")


@lru_cache(maxsize=1)
def scenarios() -> dict[str, Scenario]:
    """The worked scenarios of data/planner/scenarios.json, by name."""
    raw = json.loads((repo_root() / "data" / "planner" / "scenarios.json").read_text())["scenarios"]
    return {s["name"]: Scenario(**s) for s in raw}


# --------------------------------------------------------------------------------------------- the model
def model_names() -> tuple[str, ...]:
    """Decoder bases the planner knows (LLaMA-style projections): module 01's configs and LLaMA-1 (Alpaca's, QLoRA's)."""
    return (
        *(k for k in KNOWN_CONFIGS if k.startswith(("llama", "mistral"))),
        *(f"llama-1-{s.lower()}" for s in LLAMA1),
    )


@cache
def base_model(name: str) -> tuple[Architecture, object]:
    """(Architecture, meta-device model) of a named base."""
    if name.startswith("llama-1-"):
        config = llama1_config(name.removeprefix("llama-1-").upper())
    else:
        config = known_config(name)
    return Architecture.from_config(config, name=name), build_on_meta(config)
