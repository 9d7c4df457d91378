"""Memory math for training and inference: how many bytes a model needs, predicted and measured.

Sources (see ../shared/reference_figures.md):
- ZeRO, Rajbhandari et al., arXiv:1910.02054, §3.1 and §5 (reference_figures §1): model states.
"""

from __future__ import annotations

import math

# ---------------------------------------------------------------------------------------------
# Validation helpers: bad input raises, naming the argument and what is valid. Never a silent number.
# ---------------------------------------------------------------------------------------------


def _positive_int(name: str, value: object) -> int:
    """Return `value` if it is a positive int, else raise a ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _non_negative(name: str, value: object) -> float:
    """Return `value` if it is a finite number >= 0, else raise a ValueError naming `name`."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


# ---------------------------------------------------------------------------------------------
# ZeRO §3.1 / §5: per-device bytes of model states (parameters, gradients, optimizer states)
# ---------------------------------------------------------------------------------------------
ZERO_STAGES = (0, 1, 2, 3)


def zero_model_states_bytes(
    psi: int, stage: int, n_d: int, k: int = 12, param_bytes: int = 2, grad_bytes: int = 2
) -> float:
    """Per-device model-state bytes under ZeRO stage 0-3 (ZeRO §5, generalised to any byte widths).

    stage 0 (plain DP):  (P + G + K)·Ψ
    stage 1 (P_os):      P·Ψ + G·Ψ + K·Ψ/N_d
    stage 2 (P_os+g):    P·Ψ + (G + K)·Ψ/N_d
    stage 3 (P_os+g+p):  (P + G + K)·Ψ/N_d
    with P = param_bytes, G = grad_bytes (2 and 2 in the paper), K = optimizer bytes per parameter
    (12 for mixed-precision Adam: fp32 master + momentum + variance).
    """
    _positive_int("psi", psi)
    _positive_int("n_d", n_d)
    if isinstance(stage, bool) or stage not in ZERO_STAGES:
        raise ValueError(f"stage must be one of {ZERO_STAGES} (ZeRO stage), got {stage!r}")
    _non_negative("k", k)
    _non_negative("param_bytes", param_bytes)
    _non_negative("grad_bytes", grad_bytes)
    p, g = param_bytes * psi, grad_bytes * psi
    opt = k * psi
    if stage == 0:
        return float(p + g + opt)
    if stage == 1:
        return p + g + opt / n_d
    if stage == 2:
        return p + (g + opt) / n_d
    return (p + g + opt) / n_d
