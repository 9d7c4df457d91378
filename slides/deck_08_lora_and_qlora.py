"""Deck 08 · LoRA and QLoRA: small adapters, 4-bit base weights, the memory to fine-tune, measured against full FT."""

from __future__ import annotations

import copy

import matplotlib.pyplot as plt
import numpy as np
import torch
from safetensors.torch import save

from workshop_utils import finetune_grid, finetune_grid_report, finetune_report, lora, quant, stats
from workshop_utils.config import get_profile
from workshop_utils.gpu_workloads import results_file
from workshop_utils.hardware import catalogue
from workshop_utils.models import load_course_model
from workshop_utils.params import build_on_meta, count_model_parameters

# GPT-3 175B as in Hu et al. 2021 (LoRA), §4.2/§5.1: 96 layers, d_model 12288, adapters on W_q and W_v.
GPT3_PARAMS, GPT3_LAYERS, GPT3_D = 175e9, 96, 12288
QLORA_R = 64  # Dettmers et al. 2023: LoRA r = 64 on all linear layers
QV = lora.TARGET_SETS["q,v"]
# The instructor's plan, not a measurement: minutes per notebook section, and the question to ask the room
# before running that section's checkpoint.
# fmt: off
PLAN = {  # key: (minutes, question before the checkpoint, remark for the speaker)
    "scratch": (5, "B starts at zero: what does the wrapped model output before any training?",
                "Computed on the course model while the deck builds."),
    "peft": (4, "Given the same A and B, should PEFT's logits equal ours exactly, or only closely?",
             "In fp32 the two orders of summation round differently; float64 measures the fold itself."),
    "spectrum": (4, "How much of a fine-tuning update's energy will a rank-four approximation keep?",
                 "The random matrix is the baseline; the checkpoint asserts the update beats it."),
    "count": (4, "How many trainable parameters does r = {r4} on q and v give GPT-3?",
              "The LoRA paper quotes these numbers rounded (abstract and its GPT-3 section)."),
    "memory": (3, "Which part of training memory does LoRA remove, and which does it keep?",
               "The memory calculator of the course; the notebook measures one real step and asserts equality."),
    "study": (7, "Does LoRA recover nearly all of full fine-tuning's gain on our tiny model?",
              "{study_label}"),
    "trend": (4, "As the base gets wider, should LoRA's share of the gain rise or fall?",
              "A share can rise because LoRA closes in, or because full FT gains less on that base. {grid_label}"),
    "hyper": (4, "Which matters most here: rank, learning rate, target modules or dropout?",
              "Chosen on validation, never on test: choosing on test would overstate the result."),
    "merge": (3, "Merged, how much slower than the base is the adapted model?",
              "The timings come from benchmarks/results/lora_ci.json: compare rows within that run only."),
    "nf4": (5, "Why put the sixteen levels at quantiles of a normal rather than evenly spaced?",
            "The notebook checks our NF4 table and round trip equal bitsandbytes', on every layer."),
    "bnb": (4, "The loss falls: are the LoRA gradients on the 4-bit model right?",
            "bitsandbytes dequantises every 4-bit weight in each forward, hence the time on a CPU."),
    "scale": (4, "Which method fits a 65B model on a single GPU, and which GPU?",
              "LoRA rank {qlora_r} on all linear layers (QLoRA's setting); embeddings and LM head stay 16-bit."),
    "errors": (2, "What should `apply_lora` say when asked for rank zero?",
               "Each message names the argument and the valid choices."),
    "recap": (5, "Which default would you change first for your own fine-tune?",
              "Then the exercises. The module is planned at {min_total}."),
}
# fmt: on


def _notes(d, key: str) -> str:
    """Speaker notes from PLAN: the planned minutes, the question to ask before the checkpoint, the remark."""
    minutes, question, remark = PLAN[key]
    ask = "Recap, then ask" if key == "recap" else "Ask before the checkpoint"
    return f"{d.value(f'min_{key}', minutes, '{} min')}. {ask}: {question} {remark}".strip()


def _put(d, fmt: str = "{}", **raw) -> None:
    """Record several values that share one format."""
    for key, value in raw.items():
        d.value(key, value, fmt)


def build(d) -> None:
    """Slides of module 08, one per notebook section."""
    base = load_course_model(get_profile("ci")).eval()
    ids = torch.arange(1, 33).unsqueeze(0)  # (1, T): any token ids will do for equality checks
    study = finetune_report.load_study(get_profile("cpu"), allow_other_base=True)
    grid = finetune_grid_report.load_grid(allow_other_base=True)
    d.value("study_label", finetune_report.stored_label(study))
    d.value("grid_label", finetune_report.stored_label(grid, "grid"))
    _scratch_slide(d, base, ids)
    _peft_slide(d, base, ids)
    _spectrum_slide(d, base)
    _count_slide(d)
    _memory_slide(d, base)
    _study_slide(d, study)
    _trend_slide(d, grid)
    _hyper_slide(d, grid)
    _merge_slide(d, base)
    _nf4_slide(d, base)
    _bnb_slide(d, grid)
    _scale_slide(d)
    _errors_slide(d, base)
    d.value("min_total", sum(m for m, _, _ in PLAN.values()), "{} min")
    d.run_table_slide(_notes(d, "recap"))


def _scratch_slide(d, base, ids: torch.Tensor) -> None:
    """§1: LoRALinear wraps a frozen linear; B = 0 makes it a no-op at step zero."""
    with torch.no_grad():
        ours = lora.apply_lora(copy.deepcopy(base), r=4, alpha=8, target_modules=QV)
        d.value("step0", (ours(input_ids=ids).logits - base(input_ids=ids).logits).abs().max().item(), "{:g}")
    trainable, total = lora.trainable_parameters(ours)
    d.value("s1_r", 4)
    _put(d, "{:,}", s1_trainable=trainable, s1_total=total)
    d.value("s1_pct", 100 * trainable / total, "{:.2f} %")
    d.slide(
        "LoRA from scratch",
        [
            "`W x + (alpha/r) B A x`: A random, B zero, W frozen; the scale alpha/r keeps updates stable across r",
            "max logit difference from the base at step zero: {step0}",
            "r = {s1_r} on q and v of the `ci` course model: {s1_trainable} of {s1_total} parameters train ({s1_pct})",
        ],
        _notes(d, "scratch"),
    )


def _peft_slide(d, base, ids: torch.Tensor) -> None:
    """§2: merging is exact algebra; an adapter is a small file (PEFT equality is checked in the notebook)."""
    torch.manual_seed(0)
    ours = lora.apply_lora(copy.deepcopy(base).double(), r=4, alpha=8, target_modules=QV)
    for m in ours.modules():
        if isinstance(m, lora.LoRALinear):
            torch.nn.init.normal_(m.lora_B, std=0.02)  # B != 0, so the adapter does something
    with torch.no_grad():
        before = ours(input_ids=ids).logits
        adapters = {n: p.float().contiguous() for n, p in ours.named_parameters() if "lora_" in n}
        merged = lora.merge_lora(ours)
        d.value("merge64", (merged(input_ids=ids).logits - before).abs().max().item(), "{:.1g}")
    d.value("adapter_kb", len(save(adapters)) / 1e3, "{:.1f} KB")
    d.value("base_kb", len(save({k: v.contiguous() for k, v in base.state_dict().items()})) / 1e3, "{:,.0f} KB")  # fmt: skip
    d.slide(
        "The same thing with PEFT; merged and as files",
        [
            "folding `W + (alpha/r) B A` into W changes the logits by {merge64} in float64: the merge is exact",
            "the r = {s1_r} adapter as safetensors: {adapter_kb}, against {base_kb} for the whole base",
            "the notebook gives PEFT the same A and B and checks equal logits, equal merges, two adapters on one base",
        ],
        _notes(d, "peft"),
    )


def _spectrum_slide(d, base) -> None:
    """§3: the baseline the notebook's fine-tuning update is compared with: a random matrix's energy by rank."""
    shape = base.model.layers[0].self_attn.q_proj.weight.shape
    s = lora.update_spectrum(torch.randn(*shape, generator=torch.Generator().manual_seed(0)))
    ranks = sorted({1, *get_profile("ci").lora.ranks})
    d.value("q_shape", " x ".join(str(n) for n in shape))
    d.value("rand_energy", ", ".join(f"{lora.energy_captured(s, r):.0%} at r = {r}" for r in ranks))
    d.value("full_rank", min(shape))
    d.slide(
        "Why a low rank should be enough: the spectrum of an update",
        [
            "the best rank-r approximation of `ΔW` keeps the top r squared singular values (Eckart–Young)",
            "a random {q_shape} matrix (full rank {full_rank}), share of its energy kept: {rand_energy}",
            "the notebook takes `ΔW` of a full fine-tuning run: far more concentrated, at every rank",
        ],
        _notes(d, "spectrum"),
    )


def _count_slide(d) -> None:
    """§4: trainable parameters: the LoRA paper's GPT-3 numbers and Llama-2-7B, recomputed."""
    counts = {r: lora.lora_paper_count(r, GPT3_LAYERS, GPT3_D) for r in (1, 4, 8)}
    for r, n in counts.items():
        d.value(f"r{r}", r)
        d.value(f"gpt3_r{r}", n, "{:,}")
    d.value("gpt3_ratio", GPT3_PARAMS / counts[4], "{:,.0f}")
    d.value("gpt3_mb", 2 * counts[4] / 2**20, "{:.1f} MiB")
    llama = build_on_meta("llama-2-7b")
    n_lora = lora.lora_parameter_count(llama, 8, QV)
    d.value("llama_lora", n_lora, "{:,}")
    d.value("llama_r", 8)
    d.value("llama_pct", 100 * n_lora / count_model_parameters(llama), "{:.3f} %")
    d.slide(
        "How many parameters",
        [
            "`r (d_in + d_out)` per adapted matrix; GPT-3 175B on W_q and W_v: r = {r1} -> {gpt3_r1}, "
            "r = {r4} -> {gpt3_r4}, r = {r8} -> {gpt3_r8}",
            "r = {r4}: {gpt3_ratio} x fewer trainable parameters, a {gpt3_mb} fp16 checkpoint",
            "Llama-2-7B, r = {llama_r} on q and v: {llama_lora} trainable parameters ({llama_pct} of the model)",
        ],
        _notes(d, "count"),
    )


def _memory_slide(d, base) -> None:
    """§4 (continued): gradients + AdamW states predicted for what trains (the notebook also measures them)."""
    kb, rank = {}, 8
    d.value("mem_r", rank)
    for key, r, targets in (("full", None, None), ("qv", rank, "q,v"), ("all", rank, "all linear")):
        m = copy.deepcopy(base).requires_grad_(True)
        if r:
            lora.apply_lora(m, r, 2 * r, lora.TARGET_SETS[targets])
        pred = lora.predicted_training_bytes(m, "fp32", "adamw")
        kb[key] = (pred["gradients"] + pred["optimizer_states"]) / 1e3
        d.value(f"mem_{key}", kb[key], "{:,.1f} KB")
    d.value("mem_share", kb["qv"] / kb["full"], "{:.1%}")
    d.slide(
        "Memory during training",
        [
            "frozen weights need no gradient and no optimizer state",
            "gradients + AdamW states, fp32, `ci` model: full {mem_full}, LoRA r = {mem_r} on q, v {mem_qv}, on all linear {mem_all}",
            "LoRA on q, v keeps {mem_share} of full fine-tuning's; the weights and activations stay",
        ],
        _notes(d, "memory"),
    )


def _study_slide(d, study: dict) -> None:
    """§5: the stored study: each method at its own LR, to its plateau, over seeds."""
    v = finetune_report.lora_verdict(study)
    pre, _ = stats.compare(finetune_report.arm_matrix(study, "random", "content"),
                           finetune_report.arm_matrix(study, "full", "content"))  # fmt: skip
    d.value("seeds", len(finetune_report.seed_runs(study, "full")))
    d.value("claim", 100 * finetune_report.CLAIM_RECOVERED, "{:.0f} %")
    d.value("share", v["percent"], "{:.2f} %")
    plain = finetune_report.gain_recovered(study, "lora_plain").mean
    _put(d, "{:.1%}", recovered=v["recovered"].mean, recovered_se=v["recovered"].se, plain=plain)
    d.value("verdict", v["verdict"])
    d.value("pretrain", pre.mean, "{:.2f}")
    d.value("pretrain_z", pre.mean / pre.se, "{:.0f}")
    arms = finetune_report.LABELS_ORDER
    est = [finetune_report.summarize(study, a).loss["content"] for a in arms]
    fig, ax = plt.subplots(figsize=(7, 2.4))
    ax.bar(range(len(arms)), [e.mean for e in est], yerr=[2 * e.se for e in est], capsize=3)
    ax.set_xticks(range(len(arms)), [finetune_report.LABELS[a] for a in arms], fontsize=7)
    ax.set(ylabel="test loss, answer's words", title="stored study: mean ± 2 SE over seeds and examples")
    d.slide(
        "Does LoRA match full fine-tuning? Measured",
        [
            "each method at its own learning rate, trained to its plateau, {seeds} seeds, error bars",
            "LoRA + the chat tokens' rows ({share} trainable) recovers {recovered} ± {recovered_se} of full "
            "fine-tuning's gain on the answer's words: the {claim} claim {verdict} at this scale",
            "LoRA without the new tokens' rows: {plain}, the new-token trap",
            "pre-training is worth {pretrain} nats per answer token over a random init ({pretrain_z} standard errors)",
        ],
        _notes(d, "study"),
        figure=fig,
    )


def _trend_slide(d, grid: dict) -> None:
    """§5b: LoRA's share of the gain across three base widths (stored grid), with the GPT-3 point."""
    trend = finetune_grid_report.trend_table(grid)
    r4 = {r["width"]: r["recovered"] for r in trend if r["r"] == 4}
    d.value("trend_r", 4)
    d.value("widths", ", ".join(str(w) for w in r4))
    d.value("r4_shares", ", ".join(f"{v.mean:.0%}" for v in r4.values()))
    d.value("trend_words", finetune_grid_report.trend_direction(grid, trend, 4)[1])
    gpt3 = finetune_grid_report.gpt3_point()
    d.value("gpt3_wikisql", gpt3["wikisql"], "{:.3f}")
    fig, ax = plt.subplots(figsize=(7, 2.8))
    for w in finetune_grid.WIDTHS:
        rows = [r for r in trend if r["width"] == w and r["r"]]
        ax.errorbar([r["trainable %"] for r in rows], [r["recovered"].mean for r in rows],
                    yerr=[2 * r["recovered"].se for r in rows], marker="o", capsize=3, label=f"d_model {w}")  # fmt: skip
    ax.scatter([gpt3["trainable %"]], [gpt3["wikisql"]], marker="*", s=120, color="k", label="GPT-3, published score ratio")  # fmt: skip
    ax.axhline(finetune_report.CLAIM_RECOVERED, ls="--", color="grey", lw=1)
    ax.set(xscale="log", ylim=(0, 1.1), xlabel="trainable share (%)", ylabel="share of full FT's gain")
    ax.legend(fontsize=7)
    d.slide(
        "Across base sizes (stored grid)",
        [
            "LoRA r={trend_r} (+ token rows) recovers {r4_shares} of full FT's content gain at d_model {widths}: {trend_words}",
            "GPT-3 175B at r = {r1}: LoRA over full FT accuracy {gpt3_wikisql} (WikiSQL), a score ratio, not a gain ratio",
        ],
        _notes(d, "trend"),
        figure=fig,
    )


def _hyper_slide(d, grid: dict) -> None:
    """§6: one factor at a time around the grid's default, on the validation split."""
    effects = finetune_grid_report.sweep_effects(grid)
    top_factor, top_effect = finetune_grid_report.factor_ranking(grid)[0]
    d.value("top_factor", top_factor)
    d.value("top_effect", top_effect, "{:.2f}")
    low = min(effects, key=lambda e: abs(e["effect"].mean))
    defaults = finetune_grid_report.recommended_defaults(grid)
    agree = sum(r["agrees"].startswith(("yes", "with")) for r in defaults)
    _put(d, low_factor=low["factor"], low_words=low["words"], n_defaults=len(defaults), n_agree=agree)
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.barh([f"{e['factor']}: {e['point']}" for e in effects][::-1], [e["effect"].mean for e in effects][::-1],
            xerr=[2 * e["effect"].se for e in effects][::-1], capsize=3)  # fmt: skip
    ax.axvline(0, color="k", lw=0.8)
    ax.tick_params(axis="y", labelsize=7)
    ax.set(xlabel="validation loss minus the default point (nats/token), ± 2 SE")
    d.slide(
        "Hyperparameters: what matters, measured with error bars",
        [
            "largest factor on validation loss: {top_factor} ({top_effect} nats/token)",
            "smallest: {low_factor}, {low_words}",
            "{n_agree} of {n_defaults} published defaults agree with what this grid supports",
        ],
        _notes(d, "hyper"),
        figure=fig,
    )


def _merge_slide(d, base) -> None:
    """§7: merged vs unmerged at inference: the stored benchmark, and the merged model's size."""
    bench = results_file("lora_ci")
    ratio = bench["ratio_to_base"]
    r = min(int(k.rsplit("=", 1)[1]) for k in ratio if k.startswith("ours unmerged r="))
    d.value("bench_r", r)
    d.value("unmerged", ratio[f"ours unmerged r={r}"], "{:.2f}")
    d.value("merged", ratio[f"ours merged r={r}"], "{:.2f}")
    d.value("bench_shape", f"batch {bench['batch']}, sequence {bench['seq']}")
    merged = lora.merge_lora(lora.apply_lora(copy.deepcopy(base), r=16, alpha=32, target_modules=lora.TARGET_SETS["all linear"]))  # fmt: skip
    same = sum(p.numel() for p in merged.parameters()) == sum(p.numel() for p in base.parameters())
    d.value("merged_same", "the same" if same else "not the same")
    d.slide(
        "Inference: merge the adapter, or keep it separate",
        [
            "stored benchmark, `ci`, {bench_shape}: unmerged r = {bench_r} takes {unmerged} x the base's time, merged {merged} x",
            "merged, the model has {merged_same} parameter count and shapes as the base",
            "merge for one task; keep adapters apart when many tasks share one base, switching costs nothing",
        ],
        _notes(d, "merge"),
    )


def _nf4_slide(d, base) -> None:
    """§8: NF4 from scratch: levels, blockwise absmax, double quantisation, error against int4."""
    w = base.model.layers[0].mlp.down_proj.weight.detach()
    levels = quant.nf4_levels()
    err = {name: quant.reconstruction_error(w, lv)["rel_rmse"] for name, lv in (("nf4", levels), ("int4", quant.int4_levels()))}  # fmt: skip
    single, double = quant.constant_bits_per_param(quant.BLOCK), quant.constant_bits_per_param(quant.BLOCK, True, quant.BLOCK2)  # fmt: skip
    d.value("block", quant.BLOCK)
    _put(d, "{:.3f}", bits_single=single, bits_double=double, bits_saved=single - double)
    _put(d, "{:.4f}", err_nf4=err["nf4"], err_int4=err["int4"])
    fig, ax = plt.subplots(figsize=(7, 2.8))
    ax.hist((w / w.abs().max()).flatten().numpy(), bins=80, density=True, alpha=0.5, label="down_proj / absmax")  # fmt: skip
    ax.vlines(levels.numpy(), 0, 1, colors="C3", label="NF4 levels")
    ax.vlines(quant.int4_levels().numpy(), 0, 0.5, colors="k", linestyles=":", label="int4 levels")
    ax.legend(fontsize=7)
    d.slide(
        "QLoRA: 4-bit NormalFloat from scratch",
        [
            "NF4: levels at quantiles of a normal, one absmax scale per {block} weights: {bits_single} bits per parameter",
            "double quantisation of the scales: {bits_double} bits, saving {bits_saved} bits per parameter",
            "relative RMS error on a `ci` down_proj: NF4 {err_nf4}, uniform int4 {err_int4}",
        ],
        _notes(d, "nf4"),
        figure=fig,
    )


def _bnb_slide(d, grid: dict) -> None:
    """§9: QLoRA through bitsandbytes and PEFT; its cost over seeds from the stored grid."""
    cost = finetune_grid_report.qlora_cost(grid)
    q_d, _ = cost["loss"]["content"]
    d.value("qlora_cost", q_d.mean, "{:+.3f}")
    d.value("qlora_se", q_d.se, "{:.3f}")
    _put(d, "{:.2f}", time_ratio=cost["time_ratio"])
    d.value("grid_seeds", len(finetune_grid.SEEDS))
    d.slide(
        "QLoRA with bitsandbytes and PEFT, gradients checked first",
        [
            "on CPUs with AVX512-BF16 an eval forward repacks the 4-bit weights: the loss falls, the gradients are wrong",
            "so the LoRA gradients are compared with an fp32 model holding the dequantised weights before training",
            "stored grid, {grid_seeds} seeds: QLoRA minus LoRA {qlora_cost} ± {qlora_se} nats/token on the answer's words; {time_ratio} x the time",
        ],
        _notes(d, "bnb"),
    )


def _scale_slide(d) -> None:
    """§9 (continued): model states to fine-tune LLaMA 7B-65B, and which method fits which GPU."""
    rows = quant.finetune_memory_rows(r=QLORA_R, targets="all linear")
    d.value("qlora_r", QLORA_R)
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    for i, (key, name) in enumerate([("full_ft_16bit", "full fine-tune"), ("lora_16bit", "LoRA, 16-bit base"),
                                     ("qlora", "QLoRA, NF4 + double quant")]):  # fmt: skip
        ax.bar(x + (i - 1) * 0.27, [r[key] for r in rows], width=0.27, label=name)
    ax.set_xticks(x, [r["model"] for r in rows])
    ax.set(yscale="log", ylabel="GB of model states")
    ax.legend(fontsize=7)
    big = rows[-1]
    d.value("big", big["model"])
    d.value("big_full", big["full_ft_16bit"], "{:,.0f} GB")
    d.value("big_qlora", big["qlora"], "{:.1f} GB")
    smallest = min(g.memory_gb for g in catalogue().values())
    d.value("gpu_small", smallest, "{:.0f} GB")
    d.value("fit_small", ", ".join(r["model"] for r in rows if r["qlora"] <= smallest) or "none")
    d.slide(
        "Memory to fine-tune",
        [
            "{big}: full fine-tuning {big_full} of model states, QLoRA {big_qlora}",
            "QLoRA's model states within the smallest GPU of the catalogue ({gpu_small}): {fit_small}",
            "activations come on top: model states decide whether fine-tuning fits at all",
        ],
        _notes(d, "scale"),
        figure=fig,
    )


def _errors_slide(d, base) -> None:
    """§10: bad input gives clear errors (the messages, captured)."""
    cases = {"err_rank": lambda: lora.apply_lora(copy.deepcopy(base), r=0, alpha=1, target_modules=QV),
             "err_target": lambda: lora.apply_lora(copy.deepcopy(base), r=4, alpha=8, target_modules=["attn.c_attn"]),
             "err_merge": lambda: lora.merge_lora(copy.deepcopy(base))}  # fmt: skip
    for key, bad in cases.items():
        try:
            bad()
        except ValueError as e:
            d.value(key, str(e))
        else:
            raise AssertionError(f"{key}: bad input was accepted")
    d.slide(
        "Bad input gives clear errors",
        [
            "rank zero: '{err_rank}'",
            "GPT-2's module names on a LLaMA: '{err_target}'",
            "merging a model without adapters: '{err_merge}'",
        ],
        _notes(d, "errors"),
    )
