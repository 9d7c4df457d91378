"""Module 05's exercises: ZeRO's worked example, bytes on the wire, where ZeRO-3 stops scaling."""

from __future__ import annotations

from collections.abc import Sequence

from .. import published
from ..distributed import analysis
from ..distributed.comm import ring_bytes_sent
from ..memory import zero_model_states_bytes
from . import Check

SIZES = (2, 4, 8, 16, 64)  # the rank counts exercise 3 asks about
N_GPUS, BANDWIDTH, PSI_7B = 8, 100e9, 7e9  # exercise 2's 7B model on 8 GPUs at 100 GB/s per GPU


def solution_1() -> dict[int, float]:
    """Per-GPU model states (GB) of a 7.5B model on 64 GPUs in mixed-precision Adam, ZeRO stages 0-3."""
    psi = 7_500_000_000
    gb = {stage: zero_model_states_bytes(psi, stage, 64) / 1e9 for stage in range(4)}
    print({f"stage {s}": round(v, 3) for s, v in gb.items()})
    # Paper: 120 / 31.4 / 16.6 / 1.88 (Table 1 rounds 31.40625 and 16.640625, truncates 1.875 to 1.88).
    assert abs(gb[0] - 120) < 0.01 and abs(gb[1] - 31.4) < 0.05 and abs(gb[2] - 16.6) < 0.05
    assert abs(gb[3] - 1.88) < 0.01
    return gb


def _rank0(reports: Sequence[dict], label: str) -> dict:
    """Rank 0's report of one strategy."""
    return next(r for r in reports if r["label"] == label and r["rank"] == 0)


def solution_2(reports: Sequence[dict], labels: Sequence[str], world: int) -> dict:
    """Bytes rank 0 sends per step under a ring, per strategy; DDP and ZeRO-3 for a 7B bf16 model on 8 GPUs."""
    sent = {}
    for label in labels:
        r = _rank0(reports, label)
        sent[label] = sum(ring_bytes_sent(op, b, world) for op, b in r["comm_bytes_per_step"][-1].items())
        print(
            f"{label:<11} rank 0 sends {sent[label] / 1e6:6.3f} MB per step ({sent[label] / r['psi']:.2f} B/param)"
        )
    n, bw, psi_7b_bf16 = 8, 100e9, 7e9 * 2
    ddp_s = ring_bytes_sent("all_reduce", psi_7b_bf16, n) / bw
    zero3_s = (
        2 * ring_bytes_sent("all_gather", psi_7b_bf16, n) + ring_bytes_sent("reduce_scatter", psi_7b_bf16, n)
    ) / bw
    print(
        f"7B bf16 on {n} GPUs at 100 GB/s: DDP {ddp_s:.3f} s, ZeRO-3 {zero3_s:.3f} s per step of communication"
    )
    assert abs(zero3_s / ddp_s - 1.5) < 1e-9  # ZeRO §7: 3Ψ vs 2Ψ
    return {"sent": sent, "ddp_s": ddp_s, "zero3_s": zero3_s}


def solution_3(reports: Sequence[dict]) -> dict:
    """ZeRO-3 per-rank model states as N grows: shards shrink as 1/N, the gathered working set does not."""
    z3 = _rank0(reports, "zero3")
    units = dict(z3["shard_units"])
    working = (units.pop("root") + max(units.values())) * 4  # fp32 bytes of the gathered block + the root
    share = {}
    for n in (2, 4, 8, 16, 64):
        total = zero_model_states_bytes(z3["psi"], 3, n, k=8, param_bytes=4, grad_bytes=4) + working
        share[n] = working / total
        print(f"N = {n:3d}: {total / 1e6:6.3f} MB per rank, working set {share[n]:5.1%}")
    first = next(n for n in range(1, 1 << 20) if working > zero_model_states_bytes(z3["psi"], 3, n, 8, 4, 4))
    print(f"the working set is more than half of a rank's model states from N = {first}: wrap smaller units")
    assert analysis.formula_model_state_bytes(z3) == analysis.measured_model_state_bytes(
        z3
    )  # what we extrapolate
    return {"working_share": share, "first_n": first}


# ---------------------------------------------------------------------------------------- the checks
def expected_1() -> dict[int, float]:
    """ZeRO's formula with the worked example's Ψ and N_d as published (data/published/memory.json)."""
    psi, n_d = (int(published.value("memory", f"zero_worked/{k}")) for k in ("psi", "n_d"))
    return {stage: zero_model_states_bytes(psi, stage, n_d) / 1e9 for stage in range(4)}


def expected_2(reports: Sequence[dict], labels: Sequence[str], world: int) -> dict:
    """Ring bytes from each report's own world size; the 7B times from the bf16 payload."""
    sent = {}
    for label in labels:
        r = _rank0(reports, label)
        ops = r["comm_bytes_per_step"][-1]
        sent[label] = sum(ring_bytes_sent(op, ops[op], r["world_size"]) for op in ops)
    payload = 2 * PSI_7B  # bf16
    ddp = ring_bytes_sent("all_reduce", payload, N_GPUS) / BANDWIDTH
    gathers = 2 * ring_bytes_sent("all_gather", payload, N_GPUS)  # forward and backward
    return {
        "sent": sent,
        "ddp_s": ddp,
        "zero3_s": (gathers + ring_bytes_sent("reduce_scatter", payload, N_GPUS)) / BANDWIDTH,
    }


def expected_3(reports: Sequence[dict]) -> dict:
    """The working set from the package's formula for the measured run; the first N in closed form."""
    z3 = _rank0(reports, "zero3")

    def at_rest(n: int) -> float:
        """ZeRO-3's sharded fp32 parameters, gradients and AdamW states per rank at N = n."""
        return zero_model_states_bytes(z3["psi"], 3, n, analysis.ADAM_K, 4, 4)

    working = analysis.formula_model_state_bytes(z3) - at_rest(z3["world_size"])
    return {
        "working_share": {n: working / (at_rest(n) + working) for n in SIZES},
        "first_n": int(at_rest(1) // working) + 1,
    }


CHECKS = {
    1: Check(
        expected_1,
        "a dict {stage: GB per GPU} for stages 0, 1, 2, 3",
        "0.6 % (the paper's rounding will do)",
        rtol=0.006,
    ),
    2: Check(
        expected_2,
        "a dict {'sent': {strategy: bytes rank 0 sends per step}, 'ddp_s': s, 'zero3_s': s}",
        "0.1 %",
        rtol=0.001,
    ),
    3: Check(
        expected_3,
        f"a dict {{'working_share': {{N: working set / rank's model states}} for N in {SIZES}, "
        "'first_n': int}",
        "0.1 % on the shares, the first N exact",
        rtol=0.001,
    ),
}
