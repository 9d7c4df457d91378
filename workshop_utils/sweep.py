"""Our own Chinchilla sweep (module 06): tiny LLaMAs on the course corpus at a few fixed compute budgets.

For every budget C and model size N we train on D = C / (6N) tokens (a cosine schedule as long as the
run, the lesson Hoffmann et al. drew from Kaplan et al.) and record the final validation loss. The
IsoFLOP fit in `workshop_utils.scaling` turns these records into N_opt proportional to C^a.

    python -m workshop_utils.sweep --profile cpu --out data/scaling/sweep_cpu.json

N counts all parameters, embeddings included, as Hoffmann et al. do (Kaplan et al. counted only
non-embedding parameters; Pearce & Song 2024 trace part of the two papers' disagreement to that choice).
At our sizes the embedding tables hold most of the parameters, and the output head does most of the
FLOPs, so the choice matters: the records carry the non-embedding count too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from . import provenance
from .config import Profile, get_profile
from .corpus import load_corpus
from .device import DeviceInfo, pick_device, seed_everything
from .models import course_model_config
from .notebook import progress
from .tokenizer import load_course_tokenizer
from .training import TrainConfig, encode_text, train_lm

HEAD_DIM = 8  # small heads so that even d_model = 8 has one and d_model = 24 divides
FORMAT_VERSION = 2  # 2: the course's provenance block (provenance.record)
ENTRY = "workshop_utils.sweep"  # this module's import name (also when run as __main__)


@dataclass(frozen=True)
class SweepSpec:
    """What one sweep trains: budgets (FLOPs) x sizes (d_model, n_layers), and the shared recipe."""

    budgets: tuple[float, ...]
    sizes: tuple[tuple[int, int], ...]
    batch_size: int
    context: int
    lr: float
    warmup_frac: float
    eval_batches: int
    cpu_bf16: bool
    seed: int = 0
    max_epochs: float = 0.0  # skip runs that would see the corpus more often than this (0: no cap)


def sweep_spec(profile: Profile) -> SweepSpec:
    """The sweep of a profile, from `profile.scaling`."""
    s = profile.scaling
    return SweepSpec(
        budgets=tuple(float(b) for b in s.budgets),
        sizes=tuple(tuple(x) for x in s.sizes),
        batch_size=s.batch_size,
        context=s.context,
        lr=s.lr,
        warmup_frac=s.warmup_frac,
        eval_batches=s.eval_batches,
        cpu_bf16=s.cpu_bf16,
        max_epochs=float(s.max_epochs),
    )


def sweep_model_config(profile: Profile, vocab_size: int, d_model: int, n_layers: int) -> LlamaConfig:
    """The course LLaMA config with another width and depth (d_ff = 3 d_model, heads of HEAD_DIM, MHA)."""
    if d_model <= 0 or d_model % HEAD_DIM:
        raise ValueError(f"d_model must be a positive multiple of {HEAD_DIM}, got {d_model}")
    if n_layers <= 0:
        raise ValueError(f"n_layers must be >= 1, got {n_layers}")
    cfg = course_model_config(profile, vocab_size).to_dict()
    cfg.update(
        hidden_size=d_model,
        intermediate_size=3 * d_model,
        num_hidden_layers=n_layers,
        num_attention_heads=d_model // HEAD_DIM,
        num_key_value_heads=d_model // HEAD_DIM,
        head_dim=HEAD_DIM,
    )
    return LlamaConfig(**cfg)


def non_embedding_params(model: torch.nn.Module) -> int:
    """Parameters outside the input embedding and the output head (Kaplan's N)."""
    skip = ("embed_tokens", "lm_head")
    return sum(p.numel() for name, p in model.named_parameters() if not any(s in name for s in skip))


def plan_sweep(spec: SweepSpec, profile: Profile, vocab_size: int, train_tokens: int = 0) -> list[dict]:
    """One row per run: budget, size, N, the steps that spend the budget (D = C / 6N), and any skip reason.

    With `spec.max_epochs` and the corpus size `train_tokens`, a run that would repeat the corpus more
    often than that gets `skipped` = the reason (kept in the plan, so nothing disappears silently).
    """
    if spec.max_epochs and train_tokens <= 0:
        raise ValueError(f"max_epochs = {spec.max_epochs} needs the corpus size: pass train_tokens > 0")
    rows = []
    tokens_per_step = spec.batch_size * spec.context
    for budget in spec.budgets:
        for d_model, n_layers in spec.sizes:
            with torch.device("meta"):
                model = LlamaForCausalLM(sweep_model_config(profile, vocab_size, d_model, n_layers))
            n = sum(p.numel() for p in model.parameters())
            steps = max(1, round(budget / (6 * n * tokens_per_step)))
            tokens = steps * tokens_per_step
            row = {
                "budget": budget,
                "d_model": d_model,
                "n_layers": n_layers,
                "params": n,
                "non_embedding_params": non_embedding_params(model),
                "steps": steps,
                "tokens": tokens,
                "compute": 6.0 * n * tokens,  # the budget actually spent after rounding the steps
            }
            if spec.max_epochs and tokens > spec.max_epochs * train_tokens:
                row["skipped"] = (
                    f"{tokens / train_tokens:.1f} epochs of the corpus > max_epochs {spec.max_epochs:g}"
                )
            rows.append(row)
    return rows


def run_sweep(
    profile: Profile,
    device: DeviceInfo | None = None,
    show_progress: bool = True,
    spec: SweepSpec | None = None,
) -> dict:
    """Train every (budget, size) of the profile's sweep; return records + metadata (see `save_sweep`)."""
    spec = spec or sweep_spec(profile)
    device = device or pick_device(cpu_bf16=spec.cpu_bf16)
    t_start = time.perf_counter()
    corpus = load_corpus(profile)
    tokenizer = load_course_tokenizer(profile)
    train_ids, val_ids = encode_text(tokenizer, corpus.train), encode_text(tokenizer, corpus.val)  # (N,)
    planned = plan_sweep(spec, profile, len(tokenizer), int(train_ids.numel()))
    rows = [r for r in planned if "skipped" not in r]
    threads = torch.get_num_threads()
    if device.type == "cpu":  # tiny models: 1 thread is about as fast, and far faster on a busy CPU
        torch.set_num_threads(1)
    try:
        _train_rows(rows, spec, profile, tokenizer, train_ids, val_ids, device, show_progress)
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - t_start
    return {
        "format": FORMAT_VERSION,
        "profile": profile.name,
        "spec": asdict(spec),
        "corpus": {"name": corpus.name, "sha256": corpus.sha256, "train_tokens": int(train_ids.numel())},
        "tokenizer_vocab": len(tokenizer),
        "device": f"{device.device} ({device.precision}, {1 if device.type == 'cpu' else threads} CPU threads)",
        "seconds": round(seconds, 1),
        "records": rows,
        "skipped": [r for r in planned if "skipped" in r],  # planned but not trained, each with its reason
    }


def _train_rows(
    rows: list[dict],
    spec: SweepSpec,
    profile: Profile,
    tokenizer,
    train_ids: torch.Tensor,
    val_ids: torch.Tensor,
    device: DeviceInfo,
    show_progress: bool,
) -> None:
    """Train one model per planned row and write its final validation loss and timing into the row."""
    for row in progress(rows, desc="sweep", disable=not show_progress):
        seed_everything(spec.seed)
        model = LlamaForCausalLM(sweep_model_config(profile, len(tokenizer), row["d_model"], row["n_layers"]))
        cfg = TrainConfig(
            steps=row["steps"],
            lr=spec.lr,
            batch_size=spec.batch_size,
            context=spec.context,
            warmup=max(1, round(spec.warmup_frac * row["steps"])),
            eval_batches=spec.eval_batches,
            seed=spec.seed,
        )
        result = train_lm(model, train_ids, val_ids, cfg, device, show_progress=False)
        row["loss"] = result.final_val_loss
        row["train_loss_last"] = result.history[-1]["train_loss"]
        row["seconds"] = round(result.seconds, 3)
        row["epochs"] = row["tokens"] / train_ids.numel()


def records_sha256(records: list[dict]) -> str:
    """A fingerprint of the records (canonical JSON), stored with them and checked on load."""
    return hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()


def sweep_inputs(profile: Profile, spec: SweepSpec | None = None) -> dict:
    """Everything besides code that a profile's sweep depends on: spec, corpus, tokenizer, base config."""
    spec = spec or sweep_spec(profile)
    corpus = load_corpus(profile)
    tokenizer = load_course_tokenizer(profile)
    base = sweep_model_config(profile, len(tokenizer), *spec.sizes[0]).to_dict()
    base.pop("transformers_version", None)  # the version is checked with the others
    vocab = json.dumps(tokenizer.get_vocab(), sort_keys=True).encode()
    return {
        "profile": profile.name,
        "spec": json.loads(json.dumps(asdict(spec))),  # tuples -> lists, as stored
        "corpus_sha256": corpus.sha256,
        "tokenizer": {"vocab_size": len(tokenizer), "vocab_sha256": hashlib.sha256(vocab).hexdigest()[:16]},
        "model_config": json.dumps(base, sort_keys=True),
    }


def save_sweep(result: dict, path: str | Path, command: str, spec: SweepSpec | None = None) -> Path:
    """Write a sweep with the course's provenance block and the hash of its records."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = get_profile(result["profile"])
    prov = provenance.record(ENTRY, sweep_inputs(profile, spec), command)
    prov["records_sha256"] = records_sha256(result["records"])
    path.write_text(json.dumps({"provenance": prov, **result}, indent=1) + "\n")
    return path


def load_sweep(path: str | Path, spec: SweepSpec | None = None) -> dict:
    """Read a stored sweep; refuse it if edited, or if the code, spec, corpus, tokenizer or libraries changed."""
    path = Path(path)
    redo = f"re-run it: make scaling-sweep (python -m workshop_utils.sweep --profile cpu --out {path})"
    if not path.exists():
        raise FileNotFoundError(f"no stored sweep at {path}; produce it with: python -m workshop_utils.sweep")
    data = json.loads(path.read_text())
    if data.get("format") != FORMAT_VERSION or "provenance" not in data:
        raise ValueError(f"{path}: format {data.get('format')!r}, expected {FORMAT_VERSION}; {redo}")
    want, got = data["provenance"].get("records_sha256"), records_sha256(data["records"])
    if want != got:
        raise ValueError(
            f"{path}: records hash {got[:12]} does not match the stored {str(want)[:12]}; file was edited"
        )
    stale = provenance.check(data["provenance"], ENTRY, sweep_inputs(get_profile(data["profile"]), spec))
    if stale:
        raise ValueError(f"{path} is stale: " + "; ".join(stale) + f"; {redo}")
    return data


def stored_label(data: dict) -> str:
    """How a notebook names a stored sweep: 'stored run of <date>, commit <sha>'."""
    prov = data["provenance"]
    return f"stored run of {prov['created']}, commit {prov['commit']}"


def main(argv: list[str] | None = None) -> int:
    """CLI: run a profile's sweep and store it."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="cpu", help="ci, cpu, gpu or auto (sizes from config.scaling)")
    parser.add_argument(
        "--out", required=True, help="where to write the JSON, e.g. data/scaling/sweep_cpu.json"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    profile = get_profile(args.profile)
    result = run_sweep(profile)
    command = "python -m workshop_utils.sweep " + " ".join(sys.argv[1:] if argv is None else argv)
    out = save_sweep(result, args.out, command)
    print(f"{len(result['records'])} runs in {result['seconds']:.0f} s -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
