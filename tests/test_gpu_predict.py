"""Predicted GPU times (workshop_utils.gpu_predict / gpu_workloads) and the prepared GPU run (tools/run_gpu_profile.py)."""

from __future__ import annotations

import inspect
import math
import sys
from pathlib import Path

import pytest

from workshop_utils import gpu_predict as G
from workshop_utils import gpu_workloads as W
from workshop_utils.config import BUDGET_SECONDS, get_profile
from workshop_utils.course import MODULES
from workshop_utils.hardware import gpu
from workshop_utils.models import build_course_model
from workshop_utils.scale import model_flops_per_token

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import run_gpu_profile as R  # noqa: E402

NOTEBOOKS = [m.notebook for m in MODULES]
# Predicted over 10 minutes on a T4 with today's gpu profile (config.py is the lead's to change; the report
# names the change). strict: once a notebook fits, its entry must go, and any other notebook over budget fails.
# Notebooks predicted over 10 min on a T4 (strict xfail: a notebook that comes back within budget fails this
# list). Empty since the cleaning speed-up of issue 20 (02: 2,605 s -> 253 s at the recorded docs/s).
OVER_ON_T4: dict[str, str] = {}


@pytest.fixture(scope="module")
def t4() -> dict[str, float]:
    return G.predict(G.T4, alone=True)


def test_the_counter_is_the_package_s():
    """The course model's FLOPs per token are scale.model_flops_per_token of the real model, at every context."""
    p = get_profile("gpu")
    model = build_course_model(p)
    for context in (p.lm.context, p.sft.max_length):
        assert W.lm_fpt(p, context) == model_flops_per_token(model, context)
    part = next(w for w in W.pretraining(p, rebuild=False) if w.part.startswith("pre-training"))
    assert (
        part.flops == model_flops_per_token(model, p.lm.context) * p.lm.steps * p.lm.batch_size * p.lm.context
    )


def test_no_second_copy_of_a_flops_formula():
    """Neither module writes 6N or 12 L d T itself: both go through workshop_utils.scale."""
    for module in (G, W):
        code = inspect.getsource(module)
        for pattern in ("6 *", "6.0 *", "12 *", "12.0 *", "* 6", "* 12"):
            assert pattern not in code, (module.__name__, pattern)


def test_bad_gpu_keys_are_clear_errors():
    with pytest.raises(ValueError, match="gpu: unknown or unpriced GPU 'v100'.*t4-16gb"):
        G.predict("v100")
    with pytest.raises(ValueError, match="gpu: unknown or unpriced GPU 'l4-24gb'"):
        G.table(("l4-24gb",))  # in hardware.json, but no fp32 peak: refused, not guessed
    with pytest.raises(ValueError, match="gpu: no fp32 peak for 'x'"):
        G.fp32_peak("x")
    with pytest.raises(ValueError, match="notebook: 'nope.ipynb'"):
        G.parts_table("nope.ipynb")
    with pytest.raises(ValueError, match="notebook: 'nope.ipynb' not in the recorded ci run table"):
        W.run_seconds("ci", "nope.ipynb")


def test_every_notebook_has_a_prediction_on_every_gpu():
    rows = {r["notebook"]: r for r in G.table()}
    assert list(rows) == NOTEBOOKS
    for nb, row in rows.items():
        for key in G.GPUS:
            alone, in_course = row[f"{key} alone s"], row[f"{key} in course s"]
            assert math.isfinite(alone) and alone >= in_course > 0, (nb, key)
        t4, a100, h100 = (row[f"{k} alone s"] for k in G.GPUS)
        assert t4 >= a100 >= h100, nb  # faster peaks never predict a slower notebook


@pytest.mark.parametrize("nb", NOTEBOOKS)
def test_gpu_profile_fits_ten_minutes_on_a_t4(nb, t4, request):
    """The issue's requirement: every notebook, opened alone (re-building what it needs), <= 10 min on a T4."""
    if nb in OVER_ON_T4:
        request.applymarker(
            pytest.mark.xfail(strict=True, reason=f"predicted over on a T4: {OVER_ON_T4[nb]}")
        )
    assert G.BUDGET_S == BUDGET_SECONDS["gpu"]
    assert t4[nb] <= G.BUDGET_S, f"{nb}: predicted {t4[nb]:.0f} s on a T4"


def test_the_stated_assumptions_are_fractions_and_seconds():
    a = G.assumptions()
    assert 0 < a.mfu_16bit < G.nanogpt_mfu() < 1  # eager is slower than nanoGPT's compiled run
    assert 0 < a.mfu_fp32 < 1 and 0 < a.step_floor_s < 1


def test_part_seconds_is_the_stated_formula():
    a = G.Assumptions(mfu_16bit=0.1, mfu_fp32=0.5, step_floor_s=0.02)
    t4 = gpu("t4-16gb").peak_flops
    assert G.part_seconds(W.Work("x", flops=10 * 0.1 * t4, steps=1), "t4-16gb", a) == pytest.approx(10)
    assert G.part_seconds(W.Work("x", flops=1.0, steps=100), "t4-16gb", a) == pytest.approx(
        2.0
    )  # floor-bound
    fp32 = W.Work("x", flops=10 * 0.5 * G.fp32_peak("t4-16gb"), fp32=True)
    assert G.part_seconds(fp32, "t4-16gb", a) == pytest.approx(10)
    assert G.part_seconds(W.cpu("x", 7.5), "h100-80gb", a) == 7.5  # CPU work does not speed up on a GPU


def test_rebuild_parts_are_what_alone_adds():
    p = get_profile("gpu")
    parts = W.workloads(p)
    assert not any(w.rebuild for w in parts["03_tokenization_and_pretraining.ipynb"])
    for nb in ("07_supervised_finetuning.ipynb", "08_lora_and_qlora.ipynb"):
        assert any(w.rebuild and w.part.startswith("pre-training") for w in parts[nb]), nb
    assert W.evals(3000, 250) == 13 and W.evals(500, 0) == 2 and W.evals(10, 3) == 5


def test_the_cli_prints_the_table_labelled_predicted(capsys):
    assert G.main(["--gpus", "t4-16gb"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PREDICTED") and all(nb in out for nb in NOTEBOOKS)


# --- tools/run_gpu_profile.py -------------------------------------------------------------------------
def test_gpu_script_arguments():
    args = R.parse_args([])
    assert args.budget_s == R.DEFAULT_BUDGET_S < 15 * 60 and args.only == NOTEBOOKS
    assert R.parse_args(["--only", NOTEBOOKS[3], NOTEBOOKS[0]]).only == [
        NOTEBOOKS[0],
        NOTEBOOKS[3],
    ]  # course order
    for bad in (["--budget-s", "900"], ["--budget-s", "0"], ["--only", "99_nope.ipynb"]):
        with pytest.raises(SystemExit):
            R.parse_args(bad)


def test_gpu_names_map_to_prediction_rows():
    assert R.gpu_key_for("Tesla T4") == "t4-16gb"
    assert R.gpu_key_for("NVIDIA A100-SXM4-40GB") == "a100-40gb"
    assert R.gpu_key_for("NVIDIA A100 80GB PCIe") == "a100-80gb"
    assert R.gpu_key_for("NVIDIA H200") == R.gpu_key_for("NVIDIA H100 80GB HBM3") == "h100-80gb"
    assert R.gpu_key_for("NVIDIA L40S") is None


def test_gpu_script_compares_a_fake_table():
    up, down, last = NOTEBOOKS[3], NOTEBOOKS[7], NOTEBOOKS[9]
    rows = [
        {
            "notebook": up,
            "status": "ok",
            "seconds": 300.0,
            "metric": {"name": "loss", "value": 3.5, "unit": "nats"},
        },
        {"notebook": down, "status": "TIMEOUT", "seconds": 120.0, "error": "stopped"},
        {"notebook": last, "status": "skipped", "seconds": None, "error": "predicted 99 s > 10 s left"},
    ]
    alone = {up: 200.0, down: 900.0, last: 99.0}
    in_course = {up: 200.0, down: 400.0, last: 99.0}
    out = {r["notebook"]: r for r in R.compare(rows, alone, in_course)}
    assert out[up]["measured_over_predicted"] == 1.5 and out[up]["predicted_as"] == "alone"
    assert out[up]["headline"] == "loss = 3.5 nats"
    assert out[down]["predicted_s"] == 400.0 and out[down]["predicted_as"] == "in course"  # 03 ran ok first
    assert out[down]["measured_over_predicted"] == 0.3
    assert out[last]["measured_s"] is None and out[last]["measured_over_predicted"] is None
    failed_up = R.compare([{**rows[0], "status": "FAILED"}, rows[1]], alone, in_course)
    assert failed_up[1]["predicted_as"] == "alone"  # 07 had to rebuild 03's model
    md = R.comparison_markdown(
        list(out.values()), {"device": "Tesla T4", "gpu_key": "t4-16gb", "budget_s": 540, "date": "d"}
    )
    assert (
        "| 03_tokenization_and_pretraining.ipynb | ok | 300.0 | 200.0 | alone | 1.5 | loss = 3.5 nats |" in md
    )


def test_gpu_script_needs_cuda(monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert R.main([]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_gpu_script_names_missing_stored_inputs():
    from workshop_utils.finetune_study import study_path

    assert R.missing_inputs(NOTEBOOKS[3]) == ""
    have = study_path("gpu").is_file()
    assert (R.missing_inputs(NOTEBOOKS[7]) == "") == have
    if not have:
        assert "make finetune-study PROFILE=gpu" in R.missing_inputs(NOTEBOOKS[8])


def test_gpu_script_main_loop_on_a_fake_gpu(monkeypatch, tmp_path):
    """With CUDA faked and each notebook run stubbed: runs what fits, skips the rest, writes the comparison."""
    import json

    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Tesla T4")
    ran = []

    def fake_run(nb, timeout_s, out):
        ran.append(nb)
        return {"notebook": nb, "status": "ok", "seconds": 5.0, "metric": {"name": "m", "value": 1.0}}

    monkeypatch.setattr(R, "run_one", fake_run)
    only = [NOTEBOOKS[0], NOTEBOOKS[2], NOTEBOOKS[9]]  # 02 is predicted over a 200 s budget on a T4
    assert G.predict("t4-16gb")[NOTEBOOKS[2]] > 200
    assert R.main(["--budget-s", "200", "--results", str(tmp_path), "--only", *only]) == 0
    assert ran == [NOTEBOOKS[0], NOTEBOOKS[9]]
    result = json.loads((tmp_path / "gpu_vs_predicted.json").read_text())
    assert result["gpu_key"] == "t4-16gb" and [r["status"] for r in result["rows"]] == ["ok", "skipped", "ok"]
    assert "predicted" in result["rows"][1]["note"] and (tmp_path / "gpu_vs_predicted.md").is_file()
