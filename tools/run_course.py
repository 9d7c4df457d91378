"""Execute every course notebook in a fresh kernel, print the run table and build the site.

    python tools/run_course.py --profile ci --guard --out build/ci    # what `make test` runs
    python tools/run_course.py --profile auto --record                # what `make course` runs

Each notebook runs through papermill with `PROFILE` injected. Its headline metric (written by
`workshop_utils.notebook.record_headline`) and its wall time go into the run table
(`<out>/run_table.json` and `.md`); with --record the times are also saved under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from workshop_utils.config import BUDGET_SECONDS, resolve_profile_name  # noqa: E402
from workshop_utils.course import MODULES, kernel_config  # noqa: E402
from workshop_utils.fastpath import LIVE_BUDGET_S, loaded_keys, slow_cells  # noqa: E402

# The run table's predicted column: workshop_utils.gpu_predict's prediction from counted FLOPs, never measured.
PREDICTED_LABEL = "predicted T4 s (gpu profile, alone)"


def predicted_t4() -> tuple[dict[str, float], str]:
    """Predicted T4 seconds of each notebook's gpu profile (workshop_utils.gpu_predict), and an error text if none."""
    try:
        from workshop_utils.gpu_predict import predict

        return predict("t4-16gb", alone=True), ""
    except Exception as e:  # noqa: BLE001 - the run goes on; the table says why the column is empty
        err = f"no prediction: {type(e).__name__}: {e}"
        print(f"warning: {PREDICTED_LABEL}: {err}", flush=True)
        return {}, err


def run_notebook(
    src: Path, dst: Path, profile: str, env: dict[str, str], timeout: int
) -> tuple[str, float, str]:
    """Run one notebook; return (status, seconds, error text)."""
    import papermill as pm

    old = dict(os.environ)
    os.environ.update(env)
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(
            str(src),
            str(dst),
            parameters={"PROFILE": profile},
            kernel_name="python3",
            cwd=str(src.parent),
            progress_bar=False,
            execution_timeout=timeout,
            log_output=False,
            config=kernel_config(),
        )
        status, err = "ok", ""
    except Exception as e:  # noqa: BLE001 - report every failure in the table
        status, err = "FAILED", f"{type(e).__name__}: {str(e)[-2000:]}"
    finally:
        os.environ.clear()
        os.environ.update(old)
    return status, time.perf_counter() - t0, err


def merge_recorded(path: Path, table: dict) -> dict:
    """A --only run replaces its notebooks' rows in the recorded table of the same profile, keeps the rest."""
    if not path.exists():
        return table
    old = json.loads(path.read_text())
    if old.get("profile") != table["profile"]:
        return table
    new = {r["notebook"]: r for r in table["rows"]}
    rows = {r["notebook"]: {"date": old.get("date", ""), **r} for r in old["rows"]}
    rows.update(new)
    order = [m.notebook for m in MODULES]
    merged = sorted(rows.values(), key=lambda r: order.index(r["notebook"]) if r["notebook"] in order else 99)
    dates = sorted({r["date"] for r in merged})
    return {
        **table,
        "rows": merged,
        "total_s": round(sum(r["seconds"] for r in merged), 1),
        "note": f"rows from {len(dates)} runs ({dates[0]} to {dates[-1]}); each row has its own date",
    }


def main() -> int:
    """Run the selected notebooks and write the run table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="auto")
    parser.add_argument("--out", default="build/course")
    parser.add_argument("--guard", action="store_true", help="block non-loopback network in every kernel")
    parser.add_argument("--record", action="store_true", help="also save times under benchmarks/results/")
    parser.add_argument("--only", nargs="*", help="notebook file names (default: every module)")
    parser.add_argument("--no-site", action="store_true")
    args = parser.parse_args()

    profile = resolve_profile_name(args.profile)
    out = (ROOT / args.out).resolve()
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    metrics_dir = out / "metrics"
    metrics_dir.mkdir(exist_ok=True)
    env = {"WORKSHOP_METRICS_DIR": str(metrics_dir), "PYTHONHASHSEED": "0"}  # inline figures stay on
    if args.guard:
        env["WORKSHOP_NETWORK_GUARD"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT / "tools" / "guard"), os.environ.get("PYTHONPATH", "")])
        )
        env.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    names = args.only or [m.notebook for m in MODULES if (ROOT / "notebooks" / m.notebook).exists()]
    budget = BUDGET_SECONDS[profile]
    predicted, predicted_err = predicted_t4()
    rows, failed = [], 0
    for name in names:
        src = ROOT / "notebooks" / name
        stem = src.stem
        (metrics_dir / f"{stem}.json").unlink(missing_ok=True)
        load_before = os.getloadavg()[0]  # machine load when it started: a busy machine explains a slow row
        status, seconds, err = run_notebook(
            src, out / "notebooks" / name, profile, env, timeout=max(600, 4 * budget)
        )
        metric = {}
        if (metrics_dir / f"{stem}.json").exists():
            metric = json.loads((metrics_dir / f"{stem}.json").read_text())
        elif status == "ok":
            status, err = "FAILED", "no headline metric recorded (record_headline was not called)"
        failed += status != "ok"
        executed = out / "notebooks" / name
        executed_nb = json.loads(executed.read_text()) if executed.exists() else {"cells": []}
        slow = slow_cells(executed_nb)
        stored = loaded_keys(executed_nb)  # results this run loaded instead of computing
        if metric:
            metric["fast_path"] = bool(stored)
        rows.append(
            {
                "notebook": name,
                "status": status,
                "seconds": round(seconds, 1),
                "over_budget": seconds > budget,
                "predicted_t4_s": None if name not in predicted else round(predicted[name], 1),
                "metric": metric,
                "error": err,
                "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),  # noqa: UP017 - py3.10
                "load_avg_1m_before": round(load_before, 2),
                "live_budget_s": LIVE_BUDGET_S,
                "slow_cells": slow,  # cells over the live budget; each should have a fast path
                "fast_path": bool(stored),  # some results were loaded from an earlier run, not computed
                "fast_path_keys": stored,
            }
        )
        head = (
            f"{metric.get('name', '-')} = {metric['value']:.4g} {metric.get('unit', '')}" if metric else "-"
        )
        head += " [fast path]" if stored else ""
        print(f"{name:<45} {status:<7} {seconds:7.1f}s  {head}", flush=True)
        if err:
            print("    " + err.replace("\n", "\n    ")[-3000:], flush=True)
        for c in slow:
            note = "has a fast path" if c["fast_path"] else "NO FAST PATH: a live session would stall here"
            print(f"    cell {c['cell']} took {c['seconds']} s > live budget {LIVE_BUDGET_S:g} s: {note}")

    total = sum(r["seconds"] for r in rows)
    table = {
        "profile": profile,
        "requested": args.profile,
        "budget_s": budget,
        "total_s": round(total, 1),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "predicted_t4": {
            "label": PREDICTED_LABEL,
            "source": "python -m workshop_utils.gpu_predict",
            "error": predicted_err,
        },
        "rows": rows,
    }
    (out / "run_table.json").write_text(json.dumps(table, indent=2))
    lines = [
        f"| notebook | status | seconds (budget {budget}) | {PREDICTED_LABEL} | cells > {LIVE_BUDGET_S:g} s (with fast path) | headline |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        m = r["metric"]
        head = f"{m['name']} = {m['value']:.4g} {m.get('unit', '')}" if m else "-"
        head += f" (fast path: {', '.join(r['fast_path_keys'])} stored)" if r["fast_path"] else ""
        flag = " (over budget)" if r["over_budget"] else ""
        live = f"{len(r['slow_cells'])} ({sum(c['fast_path'] for c in r['slow_cells'])})"
        pred = "-" if r["predicted_t4_s"] is None else f"{r['predicted_t4_s']} (predicted)"
        lines.append(f"| {r['notebook']} | {r['status']} | {r['seconds']}{flag} | {pred} | {live} | {head} |")
    lines.append(f"| **total** | {len(rows) - failed}/{len(rows)} ok | {total:.1f} | | | |")
    (out / "run_table.md").write_text("\n".join(lines) + "\n")
    print("\n" + "\n".join(lines))
    if args.record:
        res = ROOT / "benchmarks" / "results"
        res.mkdir(parents=True, exist_ok=True)
        path = res / f"notebook_times_{profile}.json"
        path.write_text(json.dumps(merge_recorded(path, table) if args.only else table, indent=2))
        import build_day  # the agenda and cheat sheets read these times: regenerate them with the table

        build_day.main([])
    if not args.no_site:
        from build_site import build_site

        print(f"site: {build_site(out)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main())
