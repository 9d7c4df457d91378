"""The one prepared GPU check: every notebook's `gpu` profile on a CUDA machine, timed and compared with its prediction.

    .venv/bin/python tools/run_gpu_profile.py                  # every notebook, 540 s in all (well under 15 min)
    .venv/bin/python tools/run_gpu_profile.py --budget-s 400 --only 03_tokenization_and_pretraining.ipynb

Run it whenever a GPU machine is at hand (with the course environment installed there: `make setup`).
It checks CUDA (exit 2 without it), maps the GPU's name to its row of the predictions
(`workshop_utils.gpu_predict`: T4, A100, H100; an H200 is priced as an H100, the same dense peak), then runs
the notebooks in course order, each in its own `tools/run_course.py --profile gpu --record --no-site --only`
process so that the time limit stops only the notebook that overruns. A notebook whose prediction does not fit
the time left is skipped and recorded as such (`--no-skip` runs it anyway, until the time is up), and so is
07 or 08 while the stored gpu fine-tuning study they read (data/finetune/study_gpu.json) is missing. It writes

- `benchmarks/results/notebook_times_gpu.json` (run_course.py --record: one row per notebook, each dated), and
- `benchmarks/results/gpu_vs_predicted.json` and `.md`: measured vs predicted seconds per notebook, with the
  prediction it is compared with (in course order once module 03 ran in this session, else opened alone).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from workshop_utils.course import MODULES  # noqa: E402

MAX_BUDGET_S = 840  # 14 minutes: the "well under 15 minutes" in total
DEFAULT_BUDGET_S = 540  # fits one 10-minute command on a lent machine with room for start-up and the report
UPSTREAM = "03_tokenization_and_pretraining.ipynb"  # trains the tokenizer and course model 04/06/07/08 reuse
RESULTS = ROOT / "benchmarks" / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options, checked: a budget in (0, MAX_BUDGET_S], known notebook names."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--budget-s", type=float, default=DEFAULT_BUDGET_S, help="total seconds for all notebooks"
    )
    parser.add_argument("--only", nargs="*", help="notebook file names (default: every module)")
    parser.add_argument("--no-skip", action="store_true", help="run a notebook even if predicted not to fit")
    parser.add_argument("--out", default="build/gpu", help="run_course.py output folder")
    parser.add_argument("--results", default=str(RESULTS), help="where the comparison is written")
    args = parser.parse_args(argv)
    if not 0 < args.budget_s <= MAX_BUDGET_S:
        parser.error(
            f"--budget-s must be in (0, {MAX_BUDGET_S}] seconds (well under 15 minutes), got {args.budget_s}"
        )
    known = [m.notebook for m in MODULES]
    unknown = [n for n in args.only or [] if n not in known]
    if unknown:
        parser.error(f"--only: unknown notebooks {unknown}; valid: {', '.join(known)}")
    args.only = [n for n in known if n in (args.only or known)]  # course order
    return args


def missing_inputs(nb: str) -> str:
    """Why `nb` cannot run its gpu profile here ('' if it can): 07 and 08 read the stored gpu fine-tuning study."""
    from workshop_utils.finetune_study import study_path

    needs = {"07_supervised_finetuning.ipynb", "08_lora_and_qlora.ipynb"}
    if nb in needs and not study_path("gpu").is_file():
        return f"no {study_path('gpu').relative_to(ROOT)}: run `make finetune-study PROFILE=gpu` first"
    return ""


def gpu_key_for(device_name: str) -> str | None:
    """The predictions' GPU key for a CUDA device name (None: no prediction for that GPU)."""
    name = device_name.upper()
    if "T4" in name:
        return "t4-16gb"
    if "A100" in name:
        return "a100-40gb" if "40GB" in name.replace(" ", "") else "a100-80gb"
    if "H100" in name or "H200" in name:  # H200: the H100's compute with more memory
        return "h100-80gb"
    return None


def compare(rows: list[dict], alone: dict[str, float], in_course: dict[str, float]) -> list[dict]:
    """Measured vs predicted per notebook (rows in run order; in course order once UPSTREAM ran ok before)."""
    out, upstream_ok = [], False
    for r in rows:
        nb = r["notebook"]
        mode = "in course" if upstream_ok and nb != UPSTREAM else "alone"
        pred = (in_course if mode == "in course" else alone).get(nb)
        measured = r.get("seconds") if r["status"] in ("ok", "FAILED", "TIMEOUT") else None
        m = r.get("metric") or {}
        out.append({"notebook": nb, "status": r["status"], "measured_s": measured, "predicted_s": pred,
                    "predicted_as": mode, "measured_over_predicted": round(measured / pred, 2) if measured and pred else None,
                    "headline": f"{m['name']} = {m['value']:.4g} {m.get('unit', '')}".strip() if m else "",
                    "note": r.get("error", "")[-300:]})  # fmt: skip
        upstream_ok = upstream_ok or (nb == UPSTREAM and r["status"] == "ok")
    return out


def comparison_markdown(rows: list[dict], meta: dict) -> str:
    """The comparison as a short markdown page."""
    lines = [f"# gpu profile on {meta['device']}: measured vs predicted ({meta['date']})", "",
             f"Predictions for `{meta['gpu_key']}` from `python -m workshop_utils.gpu_predict`; budget {meta['budget_s']:g} s.", "",
             "| notebook | status | measured s | predicted s | predicted as | measured / predicted | headline |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        pred = "-" if r["predicted_s"] is None else f"{r['predicted_s']:.1f}"
        lines.append(f"| {r['notebook']} | {r['status']} | {r['measured_s'] if r['measured_s'] is not None else '-'} | "
                     f"{pred} | {r['predicted_as']} | {r['measured_over_predicted'] or '-'} | {r['headline']} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def run_one(nb: str, timeout_s: float, out: str) -> dict:
    """Run one notebook's gpu profile through run_course.py within `timeout_s`; its run-table row."""
    cmd = [sys.executable, str(ROOT / "tools" / "run_course.py"), "--profile", "gpu", "--record", "--no-site",
           "--out", out, "--only", nb]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONHASHSEED": "0"}
    table_path = ROOT / out / "run_table.json"
    table_path.unlink(missing_ok=True)  # a table left by the previous notebook must not stand in for this one
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, start_new_session=True
    )  # own group: the kernel dies with it
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return {"notebook": nb, "status": "TIMEOUT", "seconds": round(time.perf_counter() - t0, 1),
                "error": f"stopped after {timeout_s:.0f} s (the time left of the budget)"}  # fmt: skip
    if not table_path.is_file():
        return {"notebook": nb, "status": "FAILED", "seconds": round(time.perf_counter() - t0, 1),
                "error": f"run_course.py exited {proc.returncode} without a run table"}  # fmt: skip
    return next(r for r in json.loads(table_path.read_text())["rows"] if r["notebook"] == nb)


def main(argv: list[str] | None = None) -> int:
    """Check CUDA, run the notebooks within the budget, write the comparison."""
    args = parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device: this script times the gpu profile on a GPU; nothing was run", file=sys.stderr)
        return 2
    from workshop_utils.gpu_predict import predict

    device = torch.cuda.get_device_name(0)
    key = gpu_key_for(device)
    alone, in_course = (predict(key, True), predict(key, False)) if key else ({}, {})
    print(
        f"{device} -> predictions for {key or 'none (unknown GPU: nothing skipped)'}; budget {args.budget_s:g} s"
    )
    start, rows = time.perf_counter(), []
    for nb in args.only:
        left = args.budget_s - (time.perf_counter() - start)
        upstream = any(r["notebook"] == UPSTREAM and r["status"] == "ok" for r in rows)
        expected = (in_course if upstream else alone).get(nb)
        why = missing_inputs(nb)
        if left <= 0 or why or (expected is not None and expected > left and not args.no_skip):
            why = why or ("no time left" if left <= 0 else f"predicted {expected:.0f} s > {left:.0f} s left")
            rows.append({"notebook": nb, "status": "skipped", "seconds": None, "error": why})
            print(f"{nb}: skipped ({why})", flush=True)
            continue
        rows.append(run_one(nb, left, args.out))
    meta = {"device": device, "gpu_key": key, "budget_s": args.budget_s,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),  # noqa: UP017 - py3.10
            "total_s": round(time.perf_counter() - start, 1)}  # fmt: skip
    result = compare(rows, alone, in_course)
    res = Path(args.results)
    res.mkdir(parents=True, exist_ok=True)
    (res / "gpu_vs_predicted.json").write_text(json.dumps({**meta, "rows": result}, indent=2) + "\n")
    (res / "gpu_vs_predicted.md").write_text(comparison_markdown(result, meta))
    print(comparison_markdown(result, meta))
    return 0 if all(r["status"] in ("ok", "skipped") for r in result) else 1


if __name__ == "__main__":
    sys.exit(main())
