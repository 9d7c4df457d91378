"""The course model: a tiny LLaMA (`LlamaForCausalLM`) sized by the profile, trained by module 03.

`load_course_model(profile)` returns the cached trained model (safetensors under `artifacts/<profile>/`)
or trains it deterministically if it is absent or stale, so every later notebook (04, 07, 08) runs on
its own, e.g. on Colab.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

import torch
from safetensors.torch import load_file, save_file
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.utils import logging as hf_logging

from .config import Profile
from .corpus import load_corpus
from .device import DeviceInfo, pick_device, seed_everything, torch_threads
from .paths import artifacts_dir
from .tokenizer import TOKENIZER_VERSION, load_course_tokenizer
from .training import TrainConfig, TrainResult, encode_text, train_lm

SAMPLE_PROMPT = "ROMEO.\n"
hf_logging.disable_progress_bar()  # weight-loading bars clutter notebook outputs and exported HTML


def course_model_config(profile: Profile, vocab_size: int | None = None) -> LlamaConfig:
    """A LlamaConfig with the profile's sizes (RMSNorm, RoPE, SwiGLU, GQA: the real architecture, tiny)."""
    lm = profile.lm
    vocab_size = vocab_size or lm.vocab_size
    if lm.d_model % lm.n_heads or lm.n_heads % lm.n_kv_heads:
        raise ValueError(
            f"d_model {lm.d_model} / n_heads {lm.n_heads} / n_kv_heads {lm.n_kv_heads} do not divide"
        )
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=lm.d_model,
        intermediate_size=lm.d_ff,
        num_hidden_layers=lm.n_layers,
        num_attention_heads=lm.n_heads,
        num_key_value_heads=lm.n_kv_heads,
        max_position_embeddings=4 * lm.context,  # SFT prompts run longer than the pre-training context
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,  # as in LLaMA
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )


def build_course_model(profile: Profile, vocab_size: int | None = None, seed: int = 0) -> LlamaForCausalLM:
    """A randomly initialised course model (deterministic for a seed)."""
    torch.manual_seed(seed)
    config = course_model_config(profile, vocab_size)
    config._attn_implementation = "sdpa"
    return LlamaForCausalLM(config)


def course_train_config(profile: Profile, seed: int = 0) -> TrainConfig:
    """The pre-training hyper-parameters of the course model for a profile."""
    lm = profile.lm
    return TrainConfig(
        steps=lm.steps,
        lr=lm.lr,
        batch_size=lm.batch_size,
        context=lm.context,
        warmup=lm.warmup,
        eval_every=lm.eval_every,
        eval_batches=lm.eval_batches,
        seed=seed,
        sample_steps=tuple(lm.sample_steps),
        sample_prompt=SAMPLE_PROMPT,
    )


def course_token_ids(profile: Profile, tokenizer=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Train and validation token ids of the course corpus (cached: encoding 5 MB takes seconds)."""
    corpus = load_corpus(profile)
    tokenizer = tokenizer or load_course_tokenizer(profile)
    key = {
        "corpus": corpus.sha256,
        "tokenizer_version": TOKENIZER_VERSION,
        "vocab": len(tokenizer),
        "vocab_sha": hashlib.sha256(json.dumps(tokenizer.get_vocab(), sort_keys=True).encode()).hexdigest(),
    }
    path = artifacts_dir(profile.name, "course_tokens")
    if (path / "meta.json").exists() and json.loads((path / "meta.json").read_text()) == key:
        ids = load_file(path / "ids.safetensors")
        return ids["train"], ids["val"]
    train, val = encode_text(tokenizer, corpus.train), encode_text(tokenizer, corpus.val)
    save_file({"train": train, "val": val}, path / "ids.safetensors")
    (path / "meta.json").write_text(json.dumps(key))
    return train, val


def _cache_meta(profile: Profile, seed: int) -> dict:
    """What a cached model must match to be reused."""
    return {
        "profile": profile.name,
        "lm": dict(profile.lm),
        "corpus": load_corpus(profile).sha256,
        "tokenizer_version": TOKENIZER_VERSION,
        "seed": seed,
        "train": asdict(course_train_config(profile, seed)),
    }


def train_course_model(
    profile: Profile, seed: int = 0, device: DeviceInfo | None = None, show_progress: bool = True
) -> tuple[LlamaForCausalLM, TrainResult]:
    """Train the course model from scratch on the course corpus and save it to the cache."""
    device = device or pick_device(cpu_bf16=profile.lm.cpu_bf16)
    seed_everything(seed)
    tokenizer = load_course_tokenizer(profile)
    train_ids, val_ids = course_token_ids(profile, tokenizer)
    model = build_course_model(profile, len(tokenizer), seed)
    with torch_threads(profile.setup.torch_threads):  # as module 03's notebook: the same bits either way
        result = train_lm(
            model, train_ids, val_ids, course_train_config(profile, seed), device, tokenizer, show_progress
        )
    save_course_model(profile, model, result, seed)
    return model, result


def save_course_model(profile: Profile, model: LlamaForCausalLM, result: TrainResult, seed: int = 0) -> None:
    """Save weights (safetensors), config, training history and cache metadata."""
    path = artifacts_dir(profile.name, "course_model")
    model.save_pretrained(path, safe_serialization=True)
    (path / "train_result.json").write_text(json.dumps(result.to_json()))
    (path / "course_meta.json").write_text(json.dumps(_cache_meta(profile, seed)))


def load_course_train_result(profile: Profile) -> TrainResult:
    """The history and samples saved with the cached course model."""
    path = artifacts_dir(profile.name, "course_model") / "train_result.json"
    return TrainResult.from_json(json.loads(path.read_text()))


def course_model_sha256(profile: Profile) -> str:
    """sha256 of the cached course model's weights file (the live fast path checks it before loading)."""
    path = artifacts_dir(profile.name, "course_model") / "model.safetensors"
    if not path.exists():
        raise FileNotFoundError(f"no cached course model for profile {profile.name!r} at {path}")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_course_model(profile: Profile, seed: int = 0, show_progress: bool = True) -> LlamaForCausalLM:
    """The trained course model: from the cache when it matches the profile, else trained now (and cached)."""
    path = artifacts_dir(profile.name, "course_model")
    meta_file = path / "course_meta.json"
    if meta_file.exists() and json.loads(meta_file.read_text()) == json.loads(
        json.dumps(_cache_meta(profile, seed))
    ):
        model = LlamaForCausalLM.from_pretrained(path)
        model.eval()
        return model
    print(f"no cached course model for profile {profile.name!r}: training it now (module 03's recipe)")
    model, _ = train_course_model(profile, seed, show_progress=show_progress)
    model.eval()
    return model
