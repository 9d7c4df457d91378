"""Deck 00 · Setup: the device rule, the three profiles, the course map, how to run it, one matmul.

One slide per notebook section. Live numbers come from the package; measured ones are read from the
stored benchmark and run-table files under benchmarks/results/ and say "stored" on the slide.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from workshop_utils.config import PROFILE_NAMES, VALID_PROFILES, get_profile, sections
from workshop_utils.course import MODULES
from workshop_utils.device import pick_device
from workshop_utils.fastpath import LIVE_BUDGET_S
from workshop_utils.gpu_workloads import results_file
from workshop_utils.hardware import gpu
from workshop_utils.precision import format_info

# The instructor's plan for the live session, minutes per slide (a plan, not a measurement).
MINUTES = {"device": 3, "profiles": 3, "map": 2, "run": 2, "session": 2, "matmul": 4, "checkpoint": 2,
           "exercises": 6, "recap": 1}  # fmt: skip


def _notes(d, key: str, say: str, ask: str, before: str = "the checkpoint") -> str:
    """Speaker notes: the planned minutes, what to say, and the question to ask before running `before`."""
    minutes = d.value(f"min_{key}", MINUTES[key], "{} min")
    return f"{minutes}. {say} Ask before running {before}: {ask}"


def _cost(n: int) -> float:
    """FLOPs of an (n x n) @ (n x n) matmul."""
    return 2.0 * n**3


def _tokens(name: str) -> int:
    """Training tokens of the course model in a profile: steps x batch x context."""
    lm = get_profile(name).lm
    return lm.steps * lm.batch_size * lm.context


def build(d) -> None:
    """Slides of module 00."""
    bench = results_file("training_cpu")  # stored: course-model training, fp32 vs bf16, cpu sizes
    ci_run, cpu_run = results_file("notebook_times_ci"), results_file("notebook_times_cpu")  # stored
    _device_slide(d, bench)
    _profiles_slide(d)
    _map_slide(d, ci_run)
    _run_slides(d, cpu_run)
    _matmul_slide(d, ci_run, cpu_run, bench)
    _checkpoint_slide(d)
    _exercises_slide(d, bench)
    total = d.value("min_total", sum(MINUTES.values()), "{} min")
    minutes = d.value("min_recap", MINUTES["recap"], "{} min")
    d.run_table_slide(
        f"{minutes} ({total} for the deck). The setup notebook measures a large fp32 matmul: the machine's "
        "speed for later modules. Ask: would you compare this number across two machines, or within one run?"
    )


def _device_slide(d, bench: dict) -> None:
    """Section 1: one device and precision rule."""
    speed = {r["precision"]: r["tokens_per_s"] for r in bench["results"]}
    d.value("bf16_exp", format_info("bf16").exponent_bits)
    d.value("fp32_exp", format_info("fp32").exponent_bits)
    d.value("fp16_exp", format_info("fp16").exponent_bits)
    d.value("t4_bf16", gpu("t4-16gb").bf16)
    d.value("bench_date", bench["machine"]["date"][:10])
    d.value("bf16_speed", speed["bf16"] / speed["fp32"], "{:.2f}x")
    d.value("this_device", pick_device().reason)
    d.slide(
        "Device and precision: one rule for the whole course",
        [
            "CUDA Ampere or newer: bf16 autocast, {bf16_exp} exponent bits like fp32's {fp32_exp}",
            "older CUDA (a T4, bf16 support: {t4_bf16}): fp16 autocast + GradScaler, "
            "fp16's {fp16_exp} exponent bits underflow small gradients",
            "CPU: fp32; bf16 autocast is opt-in: the stored CPU benchmark ({bench_date}) trained the course "
            "model at {bf16_speed} fp32's tokens/s",
            "this deck was built on: {this_device}",
        ],
        _notes(d, "device", "Show `pick_device`'s source: the rule lives in one helper.",
               "which precision does a Colab T4 get, and why does it need a GradScaler?", "section one"),
    )  # fmt: skip


def _profiles_slide(d) -> None:
    """Section 2: the profiles and their budgets."""
    ci, cpu, gpu_s = (d.value(f"budget_{p}", get_profile(p).budget_seconds, "{} s") for p in PROFILE_NAMES)
    d.value("n_sizes", sum(len(getattr(get_profile("ci"), s)) for s in sections()))
    d.value("n_sections", len(sections()))
    d.value("auto", get_profile("auto").name)
    keys = [("setup", "matmul_n"), ("lm", "d_model"), ("lm", "n_layers"), ("lm", "steps"), ("lm", "context")]
    rows = [[f"{s}.{k}", *(str(getattr(get_profile(p), s)[k]) for p in PROFILE_NAMES)] for s, k in keys]
    d.slide(
        "Profiles: one notebook, three scales",
        [
            f"budget per notebook: `ci` {ci} (CI, two cores), `cpu` {cpu} (a laptop), `gpu` {gpu_s} (Colab T4+)",
            "{n_sizes} sizes in {n_sections} sections of `workshop_utils/config.py`: no notebook hard-codes a scale",
            '`PROFILE = "auto"` picks `gpu` with CUDA, else `cpu`; on this machine it resolved to `{auto}`',
        ],
        _notes(d, "profiles", 'The course runner injects `PROFILE="ci"` for the tests.',
               "which column of the sizes table will this run use?", "section two"),
        table=(["size", *PROFILE_NAMES], rows),
    )  # fmt: skip


def _map_slide(d, ci_run: dict) -> None:
    """Section 3: the course map, with the stored ci run's times."""
    ok = [r for r in ci_run["rows"] if r["status"] == "ok"]
    slowest = max(ok, key=lambda r: r["seconds"])
    d.value("n_modules", len(MODULES))
    d.value("ci_date", ci_run["date"])
    d.value("n_ok", len(ok))
    d.value("ci_total", ci_run["total_s"], "{:.0f} s")
    d.value("ci_machine", ci_run["machine"])
    d.value("ci_slowest", slowest["notebook"])
    d.value("ci_slowest_s", slowest["seconds"], "{:.0f} s")
    d.slide(
        "The course map",
        [
            "{n_modules} notebooks, one topic each; every one opens in Colab from its badge",
            "stored `ci` run table ({ci_date}): {n_ok} notebooks ok in {ci_total} on {ci_machine}",
            "the longest in `ci`: `{ci_slowest}` at {ci_slowest_s}",
        ],
        _notes(d, "map", "Walk the map left to right: architectures, data, tokens, memory, many GPUs, "
               "scaling, then fine-tuning.", "which module do you expect to be slowest, and why?", "the map cell"),
        table=(["#", "module", "what you will see"], [[f"{m.number:02d}", m.title, m.summary] for m in MODULES]),
    )  # fmt: skip


def _run_slides(d, cpu_run: dict) -> None:
    """Section 4: the commands, and what to prepare before a live session (the stored cpu run's slow cells)."""
    d.slide(
        "How to run things",
        [
            "`make course`: the whole course, executed notebooks + offline site in `build/site/index.html`",
            "`make test`: lint, unit tests, every notebook in `ci`, site and badge checks",
            "one notebook: `python tools/run_course.py --profile ci --guard --only 00_setup.ipynb`",
            "offline: `HF_HUB_OFFLINE=1`, and under `make test` a network guard fails any connection at once",
        ],
        _notes(d, "run", "Both commands create or update the pinned `.venv` first.",
               "what should happen if a notebook tries to reach the Hugging Face hub?", "the guard cell"),
    )  # fmt: skip
    slow = [(r["notebook"], c) for r in cpu_run["rows"] for c in r.get("slow_cells", [])]
    worst_nb, worst = max(slow, key=lambda nc: nc[1]["seconds"])
    d.value("live_budget", LIVE_BUDGET_S, "{:.0f} s")
    d.value("cpu_date", cpu_run["date"])
    d.value("n_slow", len(slow))
    d.value("n_slow_fast", sum(c["fast_path"] for _, c in slow))
    d.value("slow_nb", worst_nb)
    d.value("slow_s", worst["seconds"], "{:.0f} s")
    d.slide(
        "Before the session",
        [
            "`make course` on the presenting machine: executed notebooks + offline site as the fallback",
            "a cell slower than {live_budget} needs a fast path: `FAST_PATH = True` loads what the same code made",
            "stored `cpu` run ({cpu_date}): {n_slow} such cells, {n_slow_fast} on the fast path; the slowest in "
            "`{slow_nb}` at {slow_s}",
        ],
        _notes(d, "session", "The fast path prints 'loaded precomputed result from <date>, produced by "
               "<notebook>' so learners see it.", "which cells would you start first in a live session?",
               "the course"),
    )  # fmt: skip


def _matmul_slide(d, ci_run: dict, cpu_run: dict, bench: dict) -> None:
    """Section 5: the `2n^3` cost model and the stored matmul speeds."""
    n = {p: get_profile(p).setup.matmul_n for p in PROFILE_NAMES}
    head = {p: next(r for r in run["rows"] if r["notebook"] == "00_setup.ipynb")["metric"]["value"]
            for p, run in (("ci", ci_run), ("cpu", cpu_run))}  # fmt: skip
    peaks = {f"benchmark {r['precision']} peak": r["matmul_peak_gflops"] for r in bench["results"]}
    bars = {"ci run table": head["ci"], "cpu run table": head["cpu"], **peaks}
    fig, ax = plt.subplots(figsize=(6.5, 2.6))
    ax.barh(list(bars), list(bars.values()), color=[f"C{i // 2}" for i in range(len(bars))])
    ax.set_xlabel("stored matmul speed (GFLOP/s)")
    ax.invert_yaxis()
    d.value("gflop_ci", _cost(n["ci"]) / 1e9, "{:.2f}")
    d.value("n_ci", n["ci"])
    d.value("gflop_gpu", _cost(n["gpu"]) / 1e9, "{:.0f}")
    d.value("n_gpu", n["gpu"])
    d.value("cube_ratio", _cost(n["ci"]) / _cost(n["ci"] // 2), "{:.0f}")
    d.value("gf_ci", head["ci"], "{:.0f}")
    d.value("gf_cpu", head["cpu"], "{:.0f}")
    d.value("n_cpu", n["cpu"])
    d.value("gf_peak", peaks["benchmark fp32 peak"], "{:.0f}")
    d.slide(
        "One measurement: how fast does this machine multiply matrices?",
        [
            "an n x n matmul costs `2n³` FLOPs: {gflop_ci} GFLOP at n = {n_ci} (`ci`), {gflop_gpu} at n = {n_gpu} (`gpu`)",
            "halving n should cut the time {cube_ratio}x: the notebook times both sizes",
            "stored run tables: {gf_ci} GFLOP/s (`ci`, n = {n_ci}), {gf_cpu} (`cpu`, n = {n_cpu}); "
            "stored benchmark fp32 peak {gf_peak}",
        ],
        _notes(d, "matmul", "A busy shared machine can drop this several-fold: later modules compare speeds "
               "within one run, never across runs.", "if `2n³` is right, what time ratio will the two sizes show?"),
        figure=fig,
    )  # fmt: skip


def _checkpoint_slide(d) -> None:
    """The checkpoint: what it asserts, with the numbers it asserts on."""
    try:
        get_profile("laptop")
        refused = "accepted"
    except ValueError as err:
        refused = str(err)
    small = torch.randn(64, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    diff = float(np.abs((small @ small).numpy() - small.numpy() @ small.numpy()).max())
    n = get_profile("ci").setup.matmul_n
    predicted = _cost(n) / _cost(n // 2)  # the cost model: doubling n multiplies the time by this
    d.value("n_valid", len(VALID_PROFILES))
    d.value("refused", refused)
    d.value("np_diff", diff, "{:.1e}")
    d.value("small_n", small.shape[0])
    d.value("ratio_lo", predicted / 2, "{:.0f}")
    d.value("ratio_hi", predicted * 2, "{:.0f}")
    d.value("ratio_pred", predicted, "{:.0f}")
    d.slide(
        "Checkpoint",
        [
            "`auto` must pick `gpu` exactly when CUDA is available",
            "an unknown profile is refused with the {n_valid} valid names: {refused}",
            "torch's float64 matmul equals NumPy's (largest difference {np_diff}) on a {small_n} x {small_n} matrix",
            "doubling n costs between {ratio_lo}x and {ratio_hi}x the time (`2n³` predicts {ratio_pred}x)",
        ],
        _notes(d, "checkpoint", "Small sizes and a busy machine add noise to the ratio: the bounds are loose on "
               "purpose.", "on a busy machine, which assertion fails first?"),
    )  # fmt: skip


def _exercises_slide(d, bench: dict) -> None:
    """The exercises, with the numbers their answers rest on."""
    tok_cpu, tok_gpu = _tokens("cpu"), _tokens("gpu")
    peak = {r["precision"]: r["matmul_peak_gflops"] for r in bench["results"]}
    d.value("tok_cpu", tok_cpu, "{:,}")
    d.value("tok_gpu", tok_gpu, "{:,}")
    d.value("tok_factor", tok_gpu / tok_cpu, "{:.0f}x")
    d.value("peak_ratio", peak["bf16"] / peak["fp32"], "{:.1f}x")
    d.slide(
        "Exercises",
        [
            "training tokens (steps x batch x context): `cpu` {tok_cpu}, `gpu` {tok_gpu}, a factor {tok_factor}",
            "bf16 autocast on a CPU: the stored benchmark's bf16 matmul peak was {peak_ratio} fp32's, yet the "
            "course model trained at {bf16_speed}: measure yours within one run",
            "a T4 reports capability `(7, 5)`: pre-Ampere, so fp16 + GradScaler",
        ],
        _notes(d, "exercises", "Each answer cell checks the number, never prose; `show_solution` folds the "
               "worked answer.", "why can a faster matmul leave training no faster?", "the answer cells"),
    )  # fmt: skip
