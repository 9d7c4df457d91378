"""Reading the per-rank reports: measured model states and traffic next to the ZeRO paper's formulas.

The paper (§5, mixed-precision Adam) counts P=2 bytes of fp16 parameters, G=2 of gradients and K=12 of
optimizer state (fp32 master copy + m + v) per parameter. What our runs hold, adapted honestly:
- fp32 training (CPU): P=4, G=4, K=8 (AdamW's m and v; no master copy: the fp32 weights are the master).
- ZeRO-2 via FSDP2: besides the all-gathered full parameters, each rank keeps its fp32 *shard*, the
  tensor the optimizer updates: exactly the role of the paper's fp32 master copy, so K=8+4=12 there.
- ZeRO-3 via FSDP2: the formula 16Ψ/N counts states at rest; while computing, a rank also holds the
  unit being computed all-gathered (plus the root's few parameters), which we add as measured working set.
- bf16 (`+bf16`): FSDP2 gathers bf16 parameters (P=2) and reduces gradients in fp32 (G=4).
"""

from __future__ import annotations

from ..memory import zero_model_states_bytes
from .comm import paper_volume, zero_comm_volume_elements

ADAM_K = 8  # AdamW: m and v, fp32


def measured_model_state_bytes(report: dict) -> int:
    """Parameters at their forward peak + gradients + optimizer states held by this rank."""
    return report["peak_forward_param_bytes"] + report["grad_bytes"] + report["optim_bytes"]


def formula_model_state_bytes(report: dict) -> float:
    """The ZeRO §5 per-rank model states for the strategy and dtypes this report's run actually used."""
    psi, n, stage = report["psi"], report["world_size"], report["zero_stage"]
    gathered = 2 if (report["bf16"] and stage >= 2) else 4  # bytes per all-gathered parameter element
    if report["strategy"] == "zero2":
        return zero_model_states_bytes(psi, 2, n, k=ADAM_K + 4, param_bytes=gathered, grad_bytes=4)
    if report["strategy"] == "zero3":
        units = dict(report["shard_units"])
        root = units.pop("root")
        working = (root + max(units.values())) * gathered  # one unit gathered at a time, inside the root
        return zero_model_states_bytes(psi, 3, n, k=ADAM_K, param_bytes=4, grad_bytes=4) + working
    return zero_model_states_bytes(psi, stage, n, k=ADAM_K, param_bytes=4, grad_bytes=4)


def comm_volume_elements(report: dict) -> float:
    """Measured ZeRO-§7 volume per step (all-reduce counted twice), elements, averaged over the steps."""
    steps = report["comm_elements_per_step"]
    return sum(paper_volume(step) for step in steps) / len(steps)


def paper_comm_elements(report: dict) -> int:
    """ZeRO §7: 2Ψ for DP, ZeRO-1 and ZeRO-2, 3Ψ for ZeRO-3."""
    return zero_comm_volume_elements(report["psi"], report["zero_stage"])


def mean_losses(reports: list[dict]) -> dict[str, list[float]]:
    """Per strategy label, the loss of each step averaged over ranks (= the full-batch loss)."""
    by_label: dict[str, list[list[float]]] = {}
    for r in reports:
        by_label.setdefault(r["label"], []).append(r["losses"])
    return {label: [sum(s) / len(s) for s in zip(*runs)] for label, runs in by_label.items()}


def summary_rows(reports: list[dict]) -> list[dict]:
    """One row per (strategy, rank): measured and formula bytes, traffic, time."""
    rows = []
    for r in reports:
        steps = r["step_seconds"][1:] or r["step_seconds"]  # the first step pays one-time set-up
        rows.append(
            {
                "strategy": r["label"],
                "rank": r["rank"],
                "params": r["peak_forward_param_bytes"],
                "params_at_rest": r["param_bytes"],
                "grads": r["grad_bytes"],
                "optimizer": r["optim_bytes"],
                "model_states": measured_model_state_bytes(r),
                "formula": formula_model_state_bytes(r),
                "comm_volume_psi": comm_volume_elements(r) / r["psi"],
                "paper_volume_psi": paper_comm_elements(r) / r["psi"],
                "bytes_per_step": sum(r["comm_bytes_per_step"][-1].values()),
                "step_ms": 1000 * sorted(steps)[len(steps) // 2],
            }
        )
    return rows
