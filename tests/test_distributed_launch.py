"""Module 05 on real torchrun, 2 CPU ranks (gloo): every strategy, the hand-written ZeRO-1, failure cleanup.

One launch trains every strategy in turn (rank start-up is the expensive part), then the tests read
the per-rank JSON reports.
"""

from __future__ import annotations

import json
import uuid

import pytest

from workshop_utils.distributed.analysis import (
    comm_volume_elements,
    formula_model_state_bytes,
    mean_losses,
    measured_model_state_bytes,
    paper_comm_elements,
)
from workshop_utils.distributed.launch import LaunchError, launch, load_reports
from workshop_utils.distributed.train import RunSpec, reference_losses

LABELS = ("ddp", "zero1", "zero1_hand", "zero2", "zero3", "zero3+bf16")
SPEC = RunSpec(profile="ci", steps=3, batch_size=8, context=32)
FP32_LOSS_TOL = 1e-5  # only the summation order differs from one process
BF16_LOSS_TOL = 1e-2  # bf16 keeps 8 significant bits (~2-3 decimal digits)
SELFCHECK = "workshop_utils.distributed.selfcheck"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    args = [
        "--profile",
        "ci",
        "--strategies",
        ",".join(LABELS),
        "--steps",
        SPEC.steps,
        "--zero1-check-steps",
        10,
    ]
    launch(2, [*args, "--batch-size", SPEC.batch_size, "--context", SPEC.context, "--out", out], echo=False)
    return out


@pytest.fixture(scope="module")
def reports(run_dir) -> list[dict]:
    return load_reports(run_dir)


def by(reports, label):
    return [r for r in reports if r["label"] == label]


def test_every_strategy_reports_from_both_ranks(reports):
    assert sorted({r["label"] for r in reports}) == sorted(LABELS)
    for label in LABELS:
        assert [r["rank"] for r in by(reports, label)] == [0, 1]
        assert all(r["backend"] == "gloo" and r["world_size"] == 2 for r in by(reports, label))


def test_losses_equal_single_process_full_batch_training(reports):
    reference = reference_losses(SPEC)
    for label, losses in mean_losses(reports).items():
        tol = BF16_LOSS_TOL if label.endswith("bf16") else FP32_LOSS_TOL
        assert losses == pytest.approx(reference, abs=tol), label


def test_memory_matches_the_adapted_zero_formulas(reports):
    for r in reports:
        measured, formula = measured_model_state_bytes(r), formula_model_state_bytes(r)
        # torch's ZeroRedundancyOptimizer assigns whole parameters to ranks: near, not exactly, Ψ/N.
        rel = 0.01 if r["strategy"] == "zero1" else 0.0
        assert measured == pytest.approx(formula, rel=rel, abs=0), (r["label"], r["rank"])


def test_sharding_halves_what_it_should(reports):
    psi = reports[0]["psi"]
    ddp, zero1, hand, zero3 = (by(reports, s)[0] for s in ("ddp", "zero1", "zero1_hand", "zero3"))
    assert ddp["optim_bytes"] == 8 * psi and ddp["grad_bytes"] == 4 * psi
    assert hand["optim_bytes"] == 8 * psi // 2 and hand["grad_bytes"] == 4 * psi  # P_os only
    assert sum(r["optim_bytes"] for r in by(reports, "zero1")) == 8 * psi  # shards tile the state
    assert zero1["grad_bytes"] == 4 * psi
    assert zero3["param_bytes"] == zero3["grad_bytes"] == 4 * psi // 2  # P_os+g+p, at rest
    assert zero3["peak_forward_param_bytes"] < by(reports, "zero2")[0]["peak_forward_param_bytes"]


def test_communication_volume_against_zero_section_7(reports):
    for r in reports:
        per_step = r["comm_elements_per_step"]
        assert all(step == per_step[0] for step in per_step), r["label"]  # same traffic every step
        measured, paper = comm_volume_elements(r), paper_comm_elements(r)
        if r["strategy"] in ("zero1", "zero1_hand"):
            # all-reduce (2Ψ) + broadcast of the updated slices (Ψ): 1.5x the paper's reduce-scatter design
            assert measured == pytest.approx(1.5 * paper, rel=1e-3)
        else:
            assert measured == paper, r["label"]
    bf16 = by(reports, "zero3+bf16")[0]["comm_bytes_per_step"][-1]
    fp32 = by(reports, "zero3")[0]["comm_bytes_per_step"][-1]
    assert bf16["all_gather"] * 2 == fp32["all_gather"]  # bf16 parameters travel at half the bytes
    assert bf16["reduce_scatter"] == fp32["reduce_scatter"]  # gradients reduced in fp32


def test_hand_written_zero1_matches_adamw_over_10_steps(run_dir):
    for rank in (0, 1):  # ran in the same launch, after the strategies (--zero1-check-steps 10)
        report = json.loads((run_dir / f"zero1-check.r{rank}.json").read_text())
        assert report["steps"] == 10 and report["world_size"] == 2
        assert report["max_abs_diff"] < 1e-6
        assert report["sharded_state_bytes"] < report["full_state_bytes"]


def _leftovers(marker: str) -> list:
    import psutil

    found = []
    for p in psutil.process_iter(["cmdline"]):
        if marker in " ".join(p.info["cmdline"] or []):
            found.append(p)
    return found


def test_a_failing_rank_surfaces_fast_and_leaves_nothing_behind(tmp_path):
    marker = uuid.uuid4().hex
    # Rank 0 waits in an all-reduce whose own timeout is 60 s; the launch gives up after 30 s. So the
    # rank's error (not "timed out") proves the failure surfaced without waiting for any timeout.
    with pytest.raises(LaunchError) as err:
        launch(2, ["fail", "--out", tmp_path, "--marker", marker], module=SELFCHECK, echo=False, timeout_s=30)
    assert "rank 1 failed on purpose" in str(err.value) and "root cause, rank 1" in str(err.value)
    assert _leftovers(marker) == []


def test_a_timeout_kills_every_rank(tmp_path):
    marker = uuid.uuid4().hex
    with pytest.raises(LaunchError, match="timed out"):
        launch(2, ["hang", "--out", tmp_path, "--marker", marker], module=SELFCHECK, echo=False, timeout_s=8)
    assert _leftovers(marker) == []
