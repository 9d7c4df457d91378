"""Module 04's exercises: Llama-2-13B's model states, SGD instead of AdamW measured, activations vs states."""

from __future__ import annotations

from typing import Any

import torch

from .. import memory as M
from ..models import build_course_model
from . import Check

GB = 1e9  # decimal GB, as ZeRO uses
TOLERANCE = 0.10  # section 4's: every component within 10 % of the prediction
COMPONENTS = ("weights", "gradients", "optimizer states", "autocast copies", "activations", "peak")


def solution_1() -> dict:
    """Llama-2-13B: model states with plain fp32 AdamW, and per GPU with ZeRO-2 (mixed precision) on 16 GPUs."""
    l13 = M.Architecture.from_name("llama-2-13b")
    fp32_states = M.estimate_memory(l13, "fp32", "adamw").model_states / GB
    zero2 = M.zero_model_states_bytes(l13.n_params, 2, 16) / GB
    print(
        f"Llama-2-13B: fp32 AdamW model states {fp32_states:.0f} GB; ZeRO-2 over 16 GPUs {zero2:.1f} GB per GPU"
    )
    assert fp32_states > 200 and zero2 < 40
    return {"fp32_adamw_gb": fp32_states, "zero2_per_gpu_gb": zero2}


def _pairs(pred: M.MemoryBreakdown, meas: M.MeasuredStep) -> dict[str, tuple[float, float]]:
    """(predicted, measured) bytes per component, as in section 4's table."""
    return {
        "weights": (pred.weights, meas.weights),
        "gradients": (pred.gradients, meas.gradients),
        "optimizer states": (pred.optimizer_states + pred.master_weights, meas.optimizer_states),
        "autocast copies": (pred.autocast_copies, meas.autocast_copies),
        "activations": (pred.activations, meas.activations),
        "peak": (pred.peak, meas.peak),
    }


def solution_2(profile: Any, x: torch.Tensor, y: torch.Tensor, device: Any, adamw: M.MeasuredStep) -> dict:
    """A training step of the course model with SGD + momentum, measured, against AdamW's and the prediction."""
    import pandas as pd

    model = build_course_model(profile).to(device.device)
    sgd = M.measure_training_step(model, x.to(device.device), y.to(device.device), "sgd_momentum")
    arch = M.Architecture.from_config(model.config, "course model")
    pred = M.estimate_memory(arch, "fp32", "sgd_momentum", *x.shape, activation_model="hf-llama")
    pairs = _pairs(pred, sgd)
    print(pd.DataFrame(pairs, index=["pred", "meas"]).T / 2**20, "(MiB)")
    changed = [
        c for c in COMPONENTS if getattr(sgd, c.replace(" ", "_")) != getattr(adamw, c.replace(" ", "_"))
    ]
    within = all(abs(m - p) <= TOLERANCE * p if p else m == 0 for p, m in pairs.values())
    print(
        f"changed vs AdamW: {changed}; optimizer states x{sgd.optimizer_states / adamw.optimizer_states:.2f}"
    )
    assert sgd.optimizer_states == 4 * arch.n_params  # one fp32 momentum buffer instead of AdamW's two
    return {
        "changed": changed,
        "optimizer_states_ratio": sgd.optimizer_states / adamw.optimizer_states,
        "within_tolerance": within,
    }


def solution_3() -> dict:
    """Llama-2-7B at 4k context: micro-batch at which activations equal model states, without and with checkpointing."""
    llama = M.Architecture.from_name("llama-2-7b")
    states = M.estimate_memory(llama, "mixed", "adamw", batch=1, seq=4096).model_states
    per_sample = M.activation_bytes(llama, 1, 4096, "mixed")
    per_sample_full = M.activation_bytes(llama, 1, 4096, "mixed", "full")
    print(
        f"activations equal model states at micro-batch ≈ {states / per_sample:.1f} (no recomputation), "
        f"≈ {states / per_sample_full:.0f} with full checkpointing"
    )
    assert 1 < states / per_sample < 2 and states / per_sample_full > 50
    return {"no_recomputation": states / per_sample, "full_checkpointing": states / per_sample_full}


# ---------------------------------------------------------------------------------------- the checks
def expected_1() -> dict:
    """The same calculators (there is one home for each formula)."""
    l13 = M.Architecture.from_name("llama-2-13b")
    return {
        "fp32_adamw_gb": M.estimate_memory(l13, "fp32", "adamw").model_states / GB,
        "zero2_per_gpu_gb": M.zero_model_states_bytes(l13.n_params, 2, 16) / GB,
    }


def expected_2(profile: Any, x: torch.Tensor, y: torch.Tensor, device: Any, adamw: M.MeasuredStep) -> dict:
    """A second measurement (byte counts of tensors are exact) and the same 10 % rule."""
    model = build_course_model(profile).to(device.device)
    sgd = M.measure_training_step(model, x.to(device.device), y.to(device.device), "sgd_momentum")
    pred = M.estimate_memory(
        M.Architecture.from_config(model.config),
        "fp32",
        "sgd_momentum",
        *x.shape,
        activation_model="hf-llama",
    )
    fields = {c: c.replace(" ", "_") for c in COMPONENTS}
    return {
        "changed": {c for c, f in fields.items() if getattr(sgd, f) != getattr(adamw, f)},
        "optimizer_states_ratio": sgd.optimizer_states / adamw.optimizer_states,
        "within_tolerance": all(
            abs(m - p) <= TOLERANCE * p if p else m == 0 for p, m in _pairs(pred, sgd).values()
        ),
    }


def expected_3() -> dict:
    """Model states over the activations of one sample, both from the breakdown of `estimate_memory`."""
    llama = M.Architecture.from_name("llama-2-7b")
    plain = M.estimate_memory(llama, "mixed", "adamw", batch=1, seq=4096)
    full = M.estimate_memory(llama, "mixed", "adamw", batch=1, seq=4096, checkpointing="full")
    return {
        "no_recomputation": plain.model_states / plain.activations,
        "full_checkpointing": plain.model_states / full.activations,
    }


CHECKS = {
    1: Check(
        expected_1,
        "a dict {'fp32_adamw_gb': ..., 'zero2_per_gpu_gb': ...} in GB (1e9 bytes)",
        "1 % (whole GB and one decimal will do)",
        rtol=0.01,
    ),
    2: Check(
        expected_2,
        f"a dict {{'changed': [components whose measured bytes differ from AdamW's, among {COMPONENTS}], "
        "'optimizer_states_ratio': SGD / AdamW measured, 'within_tolerance': bool}",
        "exact component names; the ratio to 1e-9 (byte counts are exact)",
        rtol=1e-9,
    ),
    3: Check(
        expected_3,
        "a dict {'no_recomputation': micro-batch, 'full_checkpointing': micro-batch}",
        "2 % (one decimal will do)",
        rtol=0.02,
    ),
}
