"""The cost of cleaning a snapshot: core-hours equal a hand computation from the same inputs (the published
rows and benchmarks/results/data_cpu.json read here directly), bad inputs are refused, and the datatrove
Slurm configuration built from the estimate validates without submitting anything."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from workshop_utils import published
from workshop_utils.data import cleaning_cost as CC
from workshop_utils.data.scale_out import slurm_time, step_hours

ROOT = Path(__file__).resolve().parents[1]
RAW = json.loads((ROOT / "benchmarks" / "results" / "data_cpu.json").read_text())
WEB_STAGES = {s: r for s, r in RAW["stages"].items() if s not in CC.NOT_IN_A_WEB_SNAPSHOT}
TOKENS_PER_DOC = CC.Input.assumption(800.0, "800 tokens per kept document (a round number for the test)")


@pytest.fixture(scope="module")
def cost() -> CC.CleaningCost:
    return CC.snapshot_cost(TOKENS_PER_DOC, cores_per_machine=32, workers=100)


def _hand_docs() -> float:
    """Documents per snapshot by hand: 15T / 96 / 800 / (1 - 0.9)."""
    fw = published.value("data_pipeline", "fineweb_tokens") / published.value(
        "data_pipeline", "fineweb_snapshots"
    )
    return fw / 800.0 / (1 - published.value("data_pipeline", "refinedweb_removed"))


def test_measured_rates_read_the_benchmark():
    m = CC.measured_rates()
    assert m.cores == RAW["num_proc"] == 2 and m.n_docs == RAW["n_docs"]
    for stage, row in RAW["stages"].items():
        assert m.stages.loc[stage, "docs_per_s"] == pytest.approx(row["docs_per_s"], rel=1e-9)
        assert m.stages.loc[stage, "docs_per_s_per_core"] == pytest.approx(row["docs_per_s"] / 2, rel=1e-9)
    assert RAW["date"] in m.label and "synthetic crawl" in m.label


def test_core_hours_equal_a_hand_computation(cost):
    docs = _hand_docs()
    assert cost.docs_per_snapshot == pytest.approx(docs, rel=1e-12)
    by_hand = {
        s: docs * (r["docs_in"] / RAW["n_docs"]) / (r["docs_in"] / r["seconds"] / RAW["num_proc"]) / 3600
        for s, r in WEB_STAGES.items()
    }
    assert "book_dedup" in RAW["stages"] and "book_dedup" not in by_hand  # a web snapshot has no books
    for s, hours in by_hand.items():
        assert cost.stage_core_hours(s) == pytest.approx(hours, rel=1e-12), s
    assert cost.core_hours == pytest.approx(sum(by_hand.values()), rel=1e-12)
    # the same total another way: the stages' seconds x cores, per crawl document, scaled to the snapshot
    seconds = sum(r["seconds"] for r in WEB_STAGES.values())
    assert cost.core_hours == pytest.approx(docs * seconds * RAW["num_proc"] / RAW["n_docs"] / 3600, rel=1e-9)
    assert cost.wall_hours(32) == pytest.approx(cost.core_hours / 32)
    glob = sum(by_hand[s] for s in ("exact_dedup", "near_dedup", "pii"))
    assert cost.wall_hours_one_global_task(100) == pytest.approx((cost.core_hours - glob) / 100 + glob)


def test_sum_of_stages_is_close_to_the_end_to_end_timing(cost):
    """The stage timings add up to within 10 % of the whole pipeline timed end to end (same run)."""
    whole = cost.docs_per_snapshot / (RAW["pipeline_docs_per_s"] / RAW["num_proc"]) / 3600
    assert cost.table().set_index("quantity").loc["core-hours, whole pipeline timed end to end", "value"] == (
        pytest.approx(whole)
    )
    book = RAW["stages"]["book_dedup"]  # timed end to end too, but not a cost of a web snapshot
    book_hours = cost.docs_per_snapshot * book["seconds"] * RAW["num_proc"] / RAW["n_docs"] / 3600
    assert cost.core_hours + book_hours == pytest.approx(whole, rel=0.10)


def test_table_says_where_every_number_comes_from(cost):
    table = cost.table()
    assert list(table.columns) == ["quantity", "value", "source of this number", "where from"]
    assert set(table["source of this number"]) == {"published", "measured here", "assumption", "computed"}
    assert table["where from"].str.strip().str.len().min() > 0
    rows = table.set_index("quantity")
    assert rows.loc["FineWeb tokens", "source of this number"] == "published"
    assert "fineweb_tokens" in rows.loc["FineWeb tokens", "where from"]
    assert rows.loc["kept tokens per document", "source of this number"] == "assumption"
    assert rows.loc["near_dedup: documents/s per core", "source of this number"] == "measured here"
    assert rows.loc["core-hours, all stages", "value"] == pytest.approx(cost.core_hours)
    assert cost.stage_table()["share_of_core_hours"].sum() == pytest.approx(1.0)


def test_tokens_per_doc_is_measured():
    inp = CC.tokens_per_doc(["a b c", "d e f g h"], "kept documents of a toy crawl")
    assert inp.value == 4 and inp.kind == "measured here" and "2 kept documents" in inp.detail
    assert CC.tokens_per_doc(["abcd"], "x", count_tokens=len).value == 4


def test_bad_inputs(cost, tmp_path):
    with pytest.raises(ValueError, match="kind must be one of"):
        CC.Input(1.0, "guess", "x")
    with pytest.raises(ValueError, match="detail must say where"):
        CC.Input(1.0, "assumption", " ")
    with pytest.raises(TypeError, match="value must be a finite number"):
        CC.Input(float("nan"), "assumption", "x")
    with pytest.raises(ValueError, match="kept_tokens_per_doc must be > 0"):
        replace(cost, kept_tokens_per_doc=CC.Input.assumption(0, "none"))
    with pytest.raises(ValueError, match="kept_share must be an Input with a share in"):
        replace(cost, kept_share=CC.Input.assumption(1.5, "too much"))
    with pytest.raises(ValueError, match="same, non-empty set of stages"):
        replace(cost, stage_rate={})
    with pytest.raises(TypeError, match="kept_tokens_per_doc must be an Input"):
        CC.snapshot_cost(800)
    with pytest.raises(ValueError, match="workers must be a positive int"):
        CC.snapshot_cost(TOKENS_PER_DOC, workers=0)
    with pytest.raises(ValueError, match="cores must be a number > 0"):
        cost.wall_hours(0)
    with pytest.raises(ValueError, match="path: no benchmark results"):
        CC.measured_rates(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text(json.dumps({"stages": {}}))
    with pytest.raises(ValueError, match="lacks"):
        CC.measured_rates(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="texts must be a non-empty list"):
        CC.tokens_per_doc([], "nothing")


def test_slurm_time():
    assert slurm_time(0.5) == "00:30:00"
    assert slurm_time(1 / 60) == "00:01:00"
    assert slurm_time(0.001) == "00:01:00"  # rounded up to a minute
    assert slurm_time(25 + 1 / 60) == "1-01:01:00"
    for bad in (0, -1, float("inf"), "1"):
        with pytest.raises(ValueError, match="hours must be"):
            slurm_time(bad)


def test_slurm_executors_validate_without_submitting(cost, tmp_path, monkeypatch):
    pytest.importorskip("datatrove")
    import subprocess

    import datatrove.executor.slurm as slurm

    from workshop_utils.data import datatrove_blocks as B
    from workshop_utils.data.scale_out import slurm_executors

    def refuse(*args, **kwargs):
        raise AssertionError("building the executors must not call sbatch")

    monkeypatch.setattr(slurm, "launch_slurm_job", refuse)
    monkeypatch.setattr(subprocess, "run", refuse)
    step1, step2 = slurm_executors(
        cost, tmp_path / "in", tmp_path / "out", tmp_path / "logs", "cpu", tasks=400
    )
    assert isinstance(step1, slurm.SlurmPipelineExecutor) and isinstance(step2, slurm.SlurmPipelineExecutor)
    assert (step1.tasks, step1.workers, step1.partition) == (400, 100, "cpu")
    assert (step2.tasks, step2.workers) == (1, 1) and step2.depends is step1
    glob = sum(cost.stage_core_hours(s) for s in ("exact_dedup", "near_dedup", "pii"))
    local = cost.core_hours - glob
    assert step_hours(cost, 400) == pytest.approx((local / 400, glob))
    assert step1.time == slurm_time(2 * local / 400) and step2.time == slurm_time(2 * glob)
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    kinds = [
        JsonlReader,
        B.DecodeFilter,
        B.UrlFilter,
        B.ExtractFilter,
        B.LangIdFilter,
        B.QualityFilter,
        JsonlWriter,
    ]
    assert [type(p) for p in step1.pipeline] == kinds
    assert [type(p) for p in step2.pipeline] == [JsonlReader, B.GlobalDedupPII, JsonlWriter]
    args = step1.get_sbatch_args(max_array=400)
    assert args["array"] == "0-399%100" and args["time"] == step1.time and args["cpus-per-task"] == 1
    script = step1.get_launch_file_contents(args, "echo validated")
    assert f"#SBATCH --time={step1.time}" in script and "#SBATCH --partition=cpu" in script
    with pytest.raises(ValueError, match="partition must be"):
        slurm_executors(cost, tmp_path, tmp_path, tmp_path, " ")
    with pytest.raises(ValueError, match="safety must be"):
        slurm_executors(cost, tmp_path, tmp_path, tmp_path, "cpu", safety=0.5)
