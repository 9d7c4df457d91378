"""Reading module 08's stored fine-tuning grid: the scale trend, the hyper-parameter sweep, QLoRA's cost.

`load_grid()` refuses a grid that other code, settings or library versions produced (as
`finetune_report.load_study` does for the study). The rest turns per-example losses into `stats.Estimate`s:

    trend_table(grid)           # per base width and rank: trainable %, share of full FT's gain recovered ± SE
    sweep_effects(grid)         # each swept LoRA setting against the default, on validation, ± SE
    qlora_cost(grid)            # QLoRA - LoRA test loss (± SE) and its time ratio
    recommended_defaults(grid)  # this run's settings next to the published ones (LoRA, QLoRA, rsLoRA)

    python -m workshop_utils.finetune_grid_report      # the same, in a terminal
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from . import finetune_grid, finetune_study, stats
from .finetune_report import (
    CLAIM_RECOVERED,
    base_hash,
    read_stored,
    refuse_stale,
    stored_label,
)
from .paths import repo_root


def load_grid(path: Path | None = None, allow_other_base: bool = False) -> dict[str, Any]:
    """The stored grid, checked against the code, settings and versions of now.

    A base built on this machine must have the bits the grid trained on, unless `allow_other_base` (another
    machine's float rounding gives other bits); bases not built here are not re-checked. `grid["base_checked"]`
    says whether every base was.
    """
    path = path or finetune_grid.grid_path()
    data = read_stored(path, "grid", "make finetune-grid")
    stored = data.get("provenance", {}).get("inputs", {}).get("bases", {})
    checks = {w: base_hash(finetune_grid.base_dir(int(w)) / "model.safetensors", sha, allow_other_base)
              for w, sha in stored.items()}  # fmt: skip
    hashes = {w: sha for w, (sha, _) in checks.items()}
    refuse_stale(
        data, path, finetune_grid.ENTRY, finetune_grid.grid_inputs(hashes), "grid", "make finetune-grid"
    )
    return {**data, "base_checked": bool(checks) and all(ok for _, ok in checks.values())}


def grid_runs(grid: dict[str, Any], point: str) -> list[dict]:
    """The runs of one grid point, by seed."""
    runs = sorted((r for r in grid["runs"] if r["point"] == point), key=lambda r: r["seed"])
    if not runs:
        raise ValueError(f"unknown grid point {point!r}; valid: {[p['name'] for p in grid['points']]}")
    return runs


def grid_matrix(
    grid: dict[str, Any], point: str, split: str = "test", metric: str = "content"
) -> torch.Tensor:
    """(seeds, examples) answer losses of a grid point on `split` (val / test)."""
    if split not in ("val", "test") or metric not in finetune_study.METRICS:
        raise ValueError(
            f"split must be val or test and metric one of {finetune_study.METRICS}: {split!r}, {metric!r}"
        )
    return torch.tensor([r[split][metric] for r in grid_runs(grid, point)], dtype=torch.float64)  # (S, N)


def _point(grid: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in grid["points"] if p["name"] == name)


def grid_base(grid: dict[str, Any], width: int, metric: str = "content") -> torch.Tensor:
    """(1, examples) test answer losses of the base of a width before fine-tuning."""
    if str(width) not in grid["base"]:
        raise ValueError(f"no base of width {width}; the grid has {sorted(grid['base'], key=int)}")
    return torch.tensor([grid["base"][str(width)][metric]], dtype=torch.float64)


def trend_table(grid: dict[str, Any], metric: str = "content") -> list[dict[str, Any]]:
    """Per base width and LoRA rank: trainable %, share of full FT's gain recovered (± SE), loss, time, memory."""
    rows = []
    for w in finetune_grid.WIDTHS:
        base = grid_base(grid, w, metric)  # (1, N)
        full = base - grid_matrix(grid, f"d{w} full", "test", metric)
        for name in [f"d{w} full", *(f"d{w} r{r}" for r in finetune_grid.RANKS)]:
            runs, test = grid_runs(grid, name), grid_matrix(grid, name, "test", metric)
            rec = stats.ratio(base - test, full)
            rows.append({"width": w, "params": runs[0]["total"], "point": name, "r": _point(grid, name)["r"],
                         "trainable %": runs[0]["percent"], "recovered": rec,
                         "test loss": stats.estimate(test),
                         "exact match": sum(r["exact_match"] for r in runs) / len(runs),
                         "s / run": sum(r["seconds"] for r in runs) / len(runs),
                         "peak MB": runs[0]["peak_bytes"] / 1e6, "verdict": stats.verdict(rec, CLAIM_RECOVERED)})  # fmt: skip
    return rows


def share_for_claim(rows: list[dict[str, Any]]) -> dict[int, float | None]:
    """Per width, the smallest LoRA trainable % whose recovered gain is not below 95 % (None: none reached it)."""
    out = {}
    for w in finetune_grid.WIDTHS:
        ok = [
            r["trainable %"] for r in rows if r["width"] == w and r["r"] and r["verdict"] != "does not hold"
        ]
        out[w] = min(ok) if ok else None
    return out


def trend_direction(grid: dict[str, Any], rows: list[dict[str, Any]], r: int) -> tuple[stats.Estimate, str]:
    """Recovered share at rank r, widest base minus narrowest (independent runs, SEs in quadrature), in words.

    A share can rise because LoRA gets closer to full fine-tuning or because full fine-tuning itself does
    worse on the wider base (a smaller denominator): the words say which, from full FT's own test loss.
    """
    narrow, wide = min(finetune_grid.WIDTHS), max(finetune_grid.WIDTHS)
    lo, hi = (next(x["recovered"] for x in rows if x["width"] == w and x["r"] == r) for w in (narrow, wide))
    d = stats.Estimate(
        hi.mean - lo.mean, math.hypot(hi.se, lo.se), min(hi.n_seeds, lo.n_seeds), hi.n_examples
    )
    ref = stats.difference(grid_matrix(grid, f"d{wide} full"), grid_matrix(grid, f"d{narrow} full"))  # paired
    if not (d.exceeds(0) or d.below(0)):
        return d, "no change beyond 2 SE"
    words = "rises with width" if d.exceeds(0) else "falls with width"
    if d.exceeds(0) and not ref.below(0):
        words += (f", but full FT on the widest base is no better than on the narrowest (test content loss "
                  f"{ref.mean:+.3f} ± {ref.se:.3f} nats/token): the rise comes with a weaker reference, not evidence that LoRA catches up")  # fmt: skip
    return d, words


SWEEP_BASELINE = f"d{finetune_grid.COURSE_WIDTH} r4"
SWEEP_FACTORS = {  # factor -> the points that vary it (the baseline is the other value)
    "rank (alpha = 2r)": ("d128 r1", "d128 r16"),
    "learning rate": ("lr 1e-3", "lr 1e-2"),
    "target modules": ("targets q,v",),
    "dropout": ("dropout 0.1",),
    "alpha rule at r=16": ("r16 alpha 8 (alpha/r)",),
}


def _effect_words(effect: stats.Estimate) -> str:
    """A validation-loss difference in words: worse / better than the reference, or within 2 SE."""
    if effect.exceeds(0):
        return f"worse by {effect} ({effect.mean / effect.se:.1f} SE)"
    if effect.below(0):
        return f"better by {-effect.mean:.3f} ± {effect.se:.3f} ({-effect.mean / effect.se:.1f} SE)"
    return f"within noise ({effect})"


def sweep_effects(grid: dict[str, Any], metric: str = "all") -> list[dict[str, Any]]:
    """Each swept point minus its reference on validation answer loss (paired by example), ± SE, largest first.

    The reference is the default (r=4, alpha=8, all linear, LR 3e-3); for alpha's rule it is r=16 at alpha=32,
    which is rsLoRA's alpha/sqrt(r) at alpha=8.
    """
    rows = []
    for factor, names in SWEEP_FACTORS.items():
        versus = "d128 r16" if factor.startswith("alpha") else SWEEP_BASELINE
        for name in names:
            effect = stats.difference(
                grid_matrix(grid, name, "val", metric), grid_matrix(grid, versus, "val", metric)
            )
            rows.append({"factor": factor, "point": name, "versus": versus, "effect": effect,
                         "words": _effect_words(effect)})  # fmt: skip
    return sorted(rows, key=lambda r: -abs(r["effect"].mean))


def factor_ranking(grid: dict[str, Any], metric: str = "all") -> list[tuple[str, float]]:
    """Factors ranked by their largest |effect| on validation loss (nats/token)."""
    best: dict[str, float] = {}
    for row in sweep_effects(grid, metric):
        best[row["factor"]] = max(best.get(row["factor"], 0.0), abs(row["effect"].mean))
    return sorted(best.items(), key=lambda kv: -kv[1])


def qlora_cost(grid: dict[str, Any]) -> dict[str, Any]:
    """QLoRA (NF4 base) minus LoRA (fp32 base), same r, seeds and steps: test loss (± SE) and time ratio."""
    q, ref = "QLoRA r4", SWEEP_BASELINE
    loss = {
        m: stats.compare(grid_matrix(grid, q, "test", m), grid_matrix(grid, ref, "test", m))
        for m in ("all", "content")
    }
    secs = [
        sum(r["seconds"] for r in runs) / len(runs) for runs in (grid_runs(grid, q), grid_runs(grid, ref))
    ]
    return {"loss": loss, "time_ratio": secs[0] / secs[1], "seconds": secs}  # fmt: skip


def published() -> dict[str, dict[str, Any]]:
    """The published fine-tuning figures (data/published/fine_tuning.json), by key."""
    return json.loads((repo_root() / "data" / "published" / "fine_tuning.json").read_text())["figures"]


def gpt3_point() -> dict[str, float]:
    """LoRA paper, GPT-3 175B, r=1 on q,v: trainable % and LoRA/FT accuracy (a score ratio, not a gain ratio)."""
    f = {k: v["value"] for k, v in published().items()}
    return {"trainable %": 100 * f["lora_gpt3_r1_trainable"] / f["lora_gpt3_ft_trainable"],
            "wikisql": f["lora_gpt3_r1_wikisql"] / f["lora_gpt3_ft_wikisql"],
            "mnli": f["lora_gpt3_r1_mnli"] / f["lora_gpt3_ft_mnli"]}  # fmt: skip


def _smallest_sufficient_rank(grid: dict[str, Any], metric: str = "all") -> int:
    """The smallest rank (course-model width) whose validation loss is not worse than the best rank's by 2 SE."""
    names = {r: f"d{finetune_grid.COURSE_WIDTH} r{r}" for r in finetune_grid.RANKS}
    best = min(names, key=lambda r: grid_matrix(grid, names[r], "val", metric).mean().item())
    return min(r for r in names if not stats.difference(grid_matrix(grid, names[r], "val", metric),
                                                        grid_matrix(grid, names[best], "val", metric)).exceeds(0))  # fmt: skip


def recommended_defaults(grid: dict[str, Any], metric: str = "all") -> list[dict[str, str]]:
    """This grid's recommended LoRA settings (validation, 2-SE rule) next to the published defaults."""
    pub = {k: v["value"] for k, v in published().items()}
    fx = {r["point"]: r["effect"] for r in sweep_effects(grid, metric)}
    r_min = _smallest_sufficient_rank(grid, metric)
    lrs = {1e-3: "lr 1e-3", 3e-3: SWEEP_BASELINE, 1e-2: "lr 1e-2"}
    best_lr = min(lrs, key=lambda lr: grid_matrix(grid, lrs[lr], "val", metric).mean().item())
    qv_worse, drop_worse = fx["targets q,v"].exceeds(0), fx["dropout 0.1"].exceeds(0)
    small_scale_worse = fx["r16 alpha 8 (alpha/r)"].exceeds(0)
    return [
        {"setting": "rank r", "this run": f"r = {r_min} (smallest within 2 SE of the best of {finetune_grid.RANKS})",
         "published": f"LoRA: r = 1 on q,v within noise of r = 8 on GPT-3 (WikiSQL {pub['lora_gpt3_r1_wikisql']} vs "
                      f"{pub['lora_gpt3_r8_wikisql']}, {pub['lora_gpt3_r8_trainable'] / 1e6:.1f}M trainable at r = 8); QLoRA: r = {pub['qlora_r']}",
         "agrees": "yes: a small rank suffices" if r_min == 1 else f"no: r = 1 is worse here, r = {r_min} is needed"},
        {"setting": "target modules", "this run": "all linear" if qv_worse else "q,v is as good (within 2 SE)",
         "published": f"LoRA: {pub['lora_targets']}; QLoRA: {pub['qlora_targets']}",
         "agrees": "with QLoRA (all linear beats q,v by > 2 SE)" if qv_worse else "with the LoRA paper (q,v suffices)"},
        {"setting": "alpha at a larger r", "this run": f"r=16: alpha/sqrt(r) (scale 2) {'beats' if small_scale_worse else 'does not beat'} alpha/r at alpha 8 (scale 0.5)",
         "published": f"LoRA: {pub['lora_alpha_rule']}; QLoRA: alpha = {pub['qlora_alpha']} at r = {pub['qlora_r']}; rsLoRA: {pub['rslora_scale']}",
         "agrees": "with rsLoRA" if small_scale_worse else "no measurable difference at this scale"},
        {"setting": "dropout", "this run": "0 (0.1 is worse by > 2 SE)" if drop_worse else "0 or 0.1 (within 2 SE)",
         "published": f"QLoRA: {pub['qlora_dropout_7b']} (7B), {pub['qlora_dropout_65b']} (65B)",
         "agrees": "no: dropout hurts here" if drop_worse else "yes: dropout 0.1 costs nothing measurable"},
        {"setting": "learning rate", "this run": f"{best_lr:g} (best of 1e-3, 3e-3, 1e-2 on validation)",
         "published": f"QLoRA: {pub['qlora_lr_7b']:g} (7B), {pub['qlora_lr_65b']:g} (65B)",
         "agrees": f"not comparable: QLoRA's LR is {pub['qlora_lr_7b'] / pub['qlora_lr_65b']:g}x lower at 65B than at 7B; "
                   "the best LR depends on model size"},
    ]  # fmt: skip


def main() -> int:
    """CLI: the stored grid's trend, sweep, QLoRA cost and recommended defaults."""
    grid = load_grid(allow_other_base=True)
    print(stored_label(grid, "grid"))
    trend = trend_table(grid)
    for row in trend:
        print({k: (str(v) if isinstance(v, stats.Estimate) else v) for k, v in row.items()})
    print("share for 95 %:", share_for_claim(trend))
    for row in sweep_effects(grid):
        print(f"{row['point']} vs {row['versus']}: {row['words']}")
    q = qlora_cost(grid)
    print("QLoRA - LoRA:", {m: w for m, (_, w) in q["loss"].items()}, f"time x{q['time_ratio']:.2f}")
    for row in recommended_defaults(grid):
        print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
