"""Deck 04 · Memory math and mixed precision: why 7B needs 140 GB+ to train, and what fp16 and bf16 hold.

One slide per notebook section. The calculator (`workshop_utils.memory`) and the precision demos run live;
the measured training step and the fp32-vs-mixed runs happen in the notebook, so their slides show the
prediction and the stored benchmark (benchmarks/results/, labelled "stored").
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from workshop_utils import published
from workshop_utils.config import get_profile
from workshop_utils.gpu_workloads import results_file
from workshop_utils.hardware import catalogue
from workshop_utils.memory import Architecture, estimate_memory, hf_llama_layer_terms, zero_model_states_bytes
from workshop_utils.models import course_model_config
from workshop_utils.precision import (
    format_info,
    grad_scaler_demo,
    overflow_demo,
    small_gradients,
    underflow_fraction,
)

GB, MIB = 1e9, 2**20
SEQ = 4096  # Llama-2's context (Touvron et al. 2023, Table 1)
PROFILE = get_profile("ci")  # the course model's sizes for the prediction slides
# The instructor's plan for the live session, minutes per slide (a plan, not a measurement).
MINUTES = {"bill": 6, "levers": 5, "zero": 4, "acts": 5, "measured": 6, "formats": 5, "underflow": 6,
           "mixed": 5, "calculator": 4, "recap": 1}  # fmt: skip


def _notes(d, key: str, say: str, ask: str) -> str:
    """Speaker notes: the planned minutes, what to say, and the question to ask before the checkpoint."""
    minutes = d.value(f"min_{key}", MINUTES[key], "{} min")
    return f"{minutes}. {say} Ask before running the checkpoint: {ask}"


def build(d) -> None:
    """Slides of module 04."""
    llama = Architecture.from_name("llama-2-7b")  # built on the meta device once, as in the notebook
    _bill_slide(d, llama)
    _levers_slide(d, llama)
    _zero_slide(d)
    arch = Architecture.from_config(course_model_config(PROFILE), "course model")
    _activations_slide(d, arch)
    _measured_slide(d, arch)
    _formats_slide(d)
    _underflow_slide(d)
    _mixed_slide(d)
    _calculator_slide(d)
    total = d.value("min_total", sum(MINUTES.values()), "{} min")
    minutes = d.value("min_recap", MINUTES["recap"], "{} min")
    d.run_table_slide(f"{minutes} ({total} for the deck). The run table of the course site has the same number. "
                      "Ask: which lever would you pull first for a 13B model on one node?")  # fmt: skip


def _bill_slide(d, llama: Architecture) -> None:
    """Section 1: the 7B bill, model states plus activations."""
    b = estimate_memory(llama, "mixed", "adamw", batch=1, seq=SEQ, activation_model="korthikanti")
    full = estimate_memory(llama, "mixed", "adamw", batch=1, seq=SEQ, checkpointing="full",
                           activation_model="korthikanti")  # fmt: skip
    psi = b.settings["params"]
    biggest = max(catalogue().values(), key=lambda g: (g.memory_gb, g.peak_flops))  # largest, then fastest
    d.value("params", psi, "{:,}")
    d.value("seq", SEQ, "{:,}")
    d.value("bytes_per_param", b.model_states / psi, "{:.0f}")
    d.value("weights", b.weights / GB, "{:.1f} GB")
    d.value("grads", b.gradients / GB, "{:.1f} GB")
    d.value("adam", (b.optimizer_states + b.master_weights) / GB, "{:.1f} GB")
    d.value("states", b.model_states / GB, "{:.0f} GB")
    d.value("acts", b.activations / GB, "{:.0f} GB")
    d.value("total", b.total / GB, "{:.0f} GB")
    d.value("acts_ckpt", full.activations / GB, "{:.1f} GB")
    d.value("gpu_name", biggest.name)
    d.value("gpu_mem", biggest.memory_gb, "{:.0f} GB")
    fig, ax = plt.subplots(figsize=(6, 2.9))
    b.plot(ax=ax, x=0)
    full.plot(ax=ax, x=1)
    ax.set_xticks([0, 1], ["no checkpointing", "full checkpointing"])
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title("Llama-2-7B, mixed precision AdamW, one sequence")
    d.slide(
        "The 7B bill: model states",
        [
            "{params} parameters x {bytes_per_param} bytes (fp16 weights + grads, fp32 master + Adam m, v)",
            "weights {weights} + gradients {grads} + Adam and master {adam} = {states} of model states",
            "activations for one {seq}-token sequence: {acts}; total {total}",
            "full activation checkpointing: {acts_ckpt} of activations",
        ],
        _notes(d, "bill", "Model states alone ({states}) exceed an {gpu_name} ({gpu_mem}, the largest card in the "
               "course's hardware table); states plus activations come to {total}.",
               "how many bytes per parameter does mixed-precision Adam cost before any activation?"),
        figure=fig,
    )  # fmt: skip


def _levers_slide(d, llama: Architecture) -> None:
    """Section 1, continued: each lever as a stacked bar (the notebook's scenarios)."""
    scenarios = {
        "fp32\nAdamW": dict(precision="fp32"), "mixed\nAdamW": dict(),
        "mixed\n8-bit AdamW": dict(optimizer="adamw8bit"),
        "+ full\ncheckpoint": dict(optimizer="adamw8bit", checkpointing="full"),
        "+ ZeRO-3\nN_d=8": dict(optimizer="adamw8bit", checkpointing="full", zero_stage=3, n_d=8),
        "SDPA model\n(no scores)": dict(activation_model="hf-llama"),
        "inference\nbf16 + KV": dict(precision="bf16", inference=True),
    }  # fmt: skip
    bills = {k: estimate_memory(llama, **{"batch": 1, "seq": SEQ, **v}) for k, v in scenarios.items()}
    fig, ax = plt.subplots(figsize=(9, 3.0))
    for i, b in enumerate(bills.values()):
        b.plot(ax=ax, x=i)
    ax.set_xticks(range(len(bills)), list(bills), fontsize=7)
    ax.legend(fontsize=6, ncol=2)
    sdpa2 = estimate_memory(llama, batch=2, seq=SEQ, activation_model="hf-llama")
    z3 = bills["+ ZeRO-3\nN_d=8"]
    d.value("states_8bit", bills["mixed\n8-bit AdamW"].model_states / GB, "{:.0f} GB")
    d.value("z3_nd", z3.settings["n_d"])
    d.value("z3_total", z3.total / GB, "{:.1f} GB")
    d.value("sdpa1", bills["SDPA model\n(no scores)"].total / GB, "{:.0f} GB")
    d.value("sdpa2", sdpa2.total / GB, "{:.0f} GB")
    d.value("infer", bills["inference\nbf16 + KV"].total / GB, "{:.1f} GB")
    d.slide(
        "The levers, one bar each",
        [
            "8-bit AdamW: {states_8bit} of model states instead of {states}",
            "+ full checkpointing + ZeRO-3 over {z3_nd} GPUs: {z3_total} per GPU",
            "an SDPA model stores no attention scores: {sdpa1} at micro-batch one, {sdpa2} at two",
            "inference in bf16 with a KV cache: {infer}",
        ],
        _notes(d, "levers", "The same calculator runs from the command line: `python -m workshop_utils.memory`.",
               "which lever saves the most on this model, and which costs compute?"),
        figure=fig,
    )  # fmt: skip


def _zero_slide(d) -> None:
    """Section 2: ZeRO's Table 1, recomputed against the published cells."""
    cells = published.group("memory", "zero_table1")
    stages = {"P_os": 1, "P_os+g": 2, "P_os+g+p": 3}
    ours = {}
    for key in cells:
        psi, n_d, stage = key.split("/")
        ours[key] = zero_model_states_bytes(int(float(psi)), stages[stage], int(n_d)) / GB
    worst = max(abs(ours[k] - f.value) / f.value for k, f in cells.items())
    d.value("zero_where", cells["7.5e9/64/P_os+g+p"].location.split(" (")[0])  # the paper's table, cited
    d.value("n_cells", len(cells))
    d.value("n_agree", sum(f.agrees(ours[k]) for k, f in cells.items()))
    d.value("zero_worst", worst, "{:.2%}")
    d.value("t1_key", "7.5e9/64/P_os+g+p")
    d.value("t1_ours", ours["7.5e9/64/P_os+g+p"], "{:.3f} GB")
    d.value("t1_paper", cells["7.5e9/64/P_os+g+p"].value, "{} GB")
    psi = "7.5e9"  # one model's rows (the slide holds six, not all of them)
    n_ds = sorted({k.split("/")[1] for k in cells if k.startswith(psi + "/")}, key=int)
    rows = [[n_d, *(f"{cells[f'{psi}/{n_d}/{st}'].value:g} / {ours[f'{psi}/{n_d}/{st}']:.2f}" for st in stages)]
            for n_d in n_ds]  # fmt: skip
    d.slide(
        "ZeRO's {zero_where}, recomputed",
        [
            "{n_cells} published cells recomputed from `16Ψ` and the stage formulas: {n_agree} within the printed digits (table: the smallest model)",
            "worst relative difference {zero_worst}: the paper truncates some cells and rounds others",
            "`{t1_key}`: ours {t1_ours}, the paper {t1_paper}",
        ],
        _notes(d, "zero", "Sharding over N_d ranks: optimizer states first, then gradients, then parameters.",
               "which stage gives the biggest drop per device, and why does the last one scale with N_d?"),
        table=(["N_d", *(f"{st}: paper / ours GB" for st in stages)], rows),
    )  # fmt: skip


def _activations_slide(d, arch: Architecture) -> None:
    """Section 3: the activation terms of the architecture we run."""
    per_sbh = {m: sum(hf_llama_layer_terms(arch, m).values()) / arch.hidden for m in ("fp32", "amp", "bf16")}
    T = PROFILE.memory.context
    d.value("c_h", arch.hidden)
    d.value("c_layers", arch.n_layers)
    d.value("c_heads", arch.n_heads)
    d.value("c_kv", arch.n_kv_heads)
    d.value("c_ff", arch.ffn)
    d.value("sbh_fp32", per_sbh["fp32"], "{:.1f}")
    d.value("sbh_amp", per_sbh["amp"], "{:.1f}")
    d.value("sbh_bf16", per_sbh["bf16"], "{:.1f}")
    d.value("korth", 34 + 5 * arch.n_heads * T / arch.hidden, "{:.1f}")
    d.value("c_t", T)
    d.slide(
        "Activations: model the architecture you run",
        [
            "course model (`ci`): d = {c_h}, {c_layers} layers, {c_heads} heads / {c_kv} kv, d_ff {c_ff}",
            "bytes per token per unit width per layer, read off what autograd saves: fp32 {sbh_fp32}, "
            "autocast {sbh_amp}, bf16 {sbh_bf16}",
            "Korthikanti's `34 + 5as/h` for a GPT layer (16-bit, scores stored) at s = {c_t}: {korth}",
        ],
        _notes(d, "acts", "RMSNorm upcasts to fp32, SDPA keeps a log-sum-exp instead of the scores, GQA shrinks "
               "k and v, SwiGLU keeps four wide tensors.", "which term does SDPA remove, and what does it keep?"),
    )  # fmt: skip


def _measured_slide(d, arch: Architecture) -> None:
    """Section 4: the predicted step of the course model (the notebook measures the same step)."""
    B, T = PROFILE.memory.batch_size, PROFILE.memory.context
    levers = {"baseline fp32 AdamW": ("fp32", "adamw", B, "none"), "full checkpointing": ("fp32", "adamw", B, "full"),
              "half the batch": ("fp32", "adamw", B // 2, "none"), "8-bit AdamW": ("fp32", "adamw8bit", B, "none"),
              "bf16 autocast": ("amp", "adamw", B, "none"), "pure bf16": ("bf16", "adamw", B, "none")}  # fmt: skip
    pred = {
        k: estimate_memory(arch, p, o, b, T, c, activation_model="hf-llama")
        for k, (p, o, b, c) in levers.items()
    }
    fig, ax = plt.subplots(figsize=(8, 2.6))
    ax.bar(range(len(pred)), [p.peak / MIB for p in pred.values()], color="C0")
    ax.set_xticks(range(len(pred)), list(pred), fontsize=7)
    ax.set(ylabel="predicted peak (MiB)", title="course model (ci), one training step")
    base = pred["baseline fp32 AdamW"]
    d.value("m_b", B)
    d.value("m_t", T)
    d.value("m_peak", base.peak / MIB, "{:.2f} MiB")
    d.value("m_acts", base.activations / MIB, "{:.2f} MiB")
    d.value("m_ckpt", pred["full checkpointing"].activations / MIB, "{:.2f} MiB")
    d.value("m_half", pred["half the batch"].activations / MIB, "{:.2f} MiB")
    d.value("m_opt8", pred["8-bit AdamW"].optimizer_states / MIB, "{:.3f} MiB")
    d.value("m_opt32", base.optimizer_states / MIB, "{:.3f} MiB")
    d.slide(
        "Predicted vs measured on the course model",
        [
            "baseline fp32 AdamW at {m_b} x {m_t} tokens: predicted peak {m_peak}, activations {m_acts}",
            "full checkpointing: activations {m_ckpt}; half the batch: {m_half}",
            "8-bit AdamW: optimizer states {m_opt8} instead of {m_opt32}",
            "the notebook measures the same step tensor by tensor (saved-tensor hooks, a live-tensor tracker)",
        ],
        _notes(d, "measured", "On a model this small the (B, T, V) logits dominate; on a 7B model the states and "
               "activations do.", "which component will sit furthest from its prediction?"),
        figure=fig,
    )  # fmt: skip


def _formats_slide(d) -> None:
    """Section 5: what fp32, fp16 and bf16 can hold."""
    fmts = {n: format_info(n) for n in ("fp32", "fp16", "bf16")}
    rows = [[n, f"{f.exponent_bits}", f"{f.fraction_bits}", f"{f.max:.4g}", f"{f.min_normal:.3g}", f"{f.eps:.3g}"]
            for n, f in fmts.items()]  # fmt: skip
    demo = overflow_demo()
    d.value("fp16_max", fmts["fp16"].max, "{:,.0f}")
    d.value("bf16_max", fmts["bf16"].max, "{:.2e}")
    d.value("bf16_eps", fmts["bf16"].eps, "{:.2e}")
    d.value("ovf_last", demo["fp16(65519)"], "{:,.0f}")
    d.value("ovf_inf", demo["fp16(65520)"])
    d.value("bf16_round", demo["bf16(1e5)"], "{:,.0f}")
    d.slide(
        "What fp32, fp16 and bf16 can hold",
        [
            "fp16 overflows above {fp16_max}: `fp16(65519)` = {ovf_last}, `fp16(65520)` = {ovf_inf}",
            "bf16 keeps fp32's range (max {bf16_max}) with a coarse step (eps {bf16_eps}): `bf16(1e5)` = {bf16_round}",
        ],
        _notes(d, "formats", "More exponent bits buy range, more fraction bits buy precision.",
               "what does fp16 make of sixty thousand times two? And bf16 of a hundred thousand?"),
        table=(["format", "exponent bits", "fraction bits", "max", "min normal", "eps"], rows),
    )  # fmt: skip


def _underflow_slide(d) -> None:
    """Section 6: underflow, and loss scaling."""
    grads = small_gradients(100_000, seed=0)
    scale = 2.0**15  # Micikevicius et al. 2018
    lost = {"fp16": underflow_fraction(grads, torch.float16), "scaled": underflow_fraction(grads, torch.float16, scale),
            "bf16": underflow_fraction(grads, torch.bfloat16)}  # fmt: skip
    steps = grad_scaler_demo()
    fig, ax = plt.subplots(figsize=(6, 2.5))
    ax.hist(grads.abs().log10().numpy(), bins=80, color="C7")
    ax.axvline(torch.log10(torch.tensor(2.0**-25)).item(), color="C3", label="fp16 rounds to 0 below 2^-25")
    ax.axvline(
        torch.log10(torch.tensor(2.0**-25 / scale)).item(), color="C2", label="... with loss scale 2^15"
    )
    ax.set_xlabel("log10 |gradient|")
    ax.legend(fontsize=7)
    d.value("n_grads", grads.numel(), "{:,}")
    d.value("lost16", lost["fp16"], "{:.1%}")
    d.value("scale", scale, "{:,.0f}")
    d.value("lost_scaled", lost["scaled"], "{:.1%}")
    d.value("lost_bf16", lost["bf16"], "{:.1%}")
    d.value("gs0", steps[0]["scale"], "{:,.0f}")
    d.value("gs1", steps[1]["scale"], "{:,.0f}")
    d.value("gs_grad", steps[-1]["fp16 grad with GradScaler"], "{:.3g}")
    d.slide(
        "Underflow, and loss scaling",
        [
            "{n_grads} small gradients cast to fp16: {lost16} become zero; with a loss scale of {scale}: {lost_scaled}",
            "in bf16: {lost_bf16}, no scaling needed",
            "GradScaler: the first step overflows at scale {gs0} and is skipped, the scale halves to {gs1}, "
            "then the tiny gradient survives as {gs_grad}",
        ],
        _notes(d, "underflow", "Scale the loss before backward, unscale in fp32 before the step.",
               "what share of these gradients will fp16 flush to zero?"),
        figure=fig,
    )  # fmt: skip


def _mixed_slide(d) -> None:
    """Section 7: fp32 vs mixed precision, from the stored training benchmarks."""
    rows = {}
    for profile in ("ci", "cpu"):
        stored = results_file(f"training_{profile}")
        rows[profile] = {r["precision"]: r for r in stored["results"]}
    cpu = rows["cpu"]
    d.value("mp_date", results_file("training_cpu")["machine"]["date"][:10])
    d.value("mp_fp32", cpu["fp32"]["tokens_per_s"], "{:,.0f}")
    d.value("mp_bf16", cpu["bf16"]["tokens_per_s"], "{:,.0f}")
    d.value("mp_ratio", cpu["bf16"]["tokens_per_s"] / cpu["fp32"]["tokens_per_s"], "{:.2f}x")
    d.value("mp_peak32", cpu["fp32"]["matmul_peak_gflops"], "{:.0f}")
    d.value("mp_peak16", cpu["bf16"]["matmul_peak_gflops"], "{:.0f}")
    d.value("mp_ci_ratio", rows["ci"]["bf16"]["tokens_per_s"] / rows["ci"]["fp32"]["tokens_per_s"], "{:.2f}x")
    d.value("mp_steps", PROFILE.memory.mp_steps)
    d.slide(
        "The same model, trained in fp32 and in mixed precision",
        [
            "stored benchmark, `cpu` sizes ({mp_date}): fp32 {mp_fp32} tokens/s, bf16 autocast {mp_bf16} ({mp_ratio})",
            "the bf16 matmul peak is {mp_peak16} GFLOP/s against fp32's {mp_peak32}, yet a tiny model gains nothing",
            "at `ci` sizes bf16 autocast ran at {mp_ci_ratio} fp32's tokens/s",
            "the notebook trains both for {mp_steps} steps from the same weights and compares the loss curves",
        ],
        _notes(d, "mixed", "On a GPU the picture flips: Ampere's bf16 tensor cores are many times its fp32 peak.",
               "will the two loss curves stay within a tenth of a nat of each other?"),
    )  # fmt: skip


def _calculator_slide(d) -> None:
    """Section 8: the calculator's static table (the widget needs a live kernel)."""
    combos = [
        (m, o, b) for m in ("llama-2-7b", "llama-2-13b") for o in ("adamw", "adamw8bit") for b in (1, 4)
    ]
    archs = {m: Architecture.from_name(m) for m in {c[0] for c in combos}}
    bills = {c: estimate_memory(archs[c[0]], "mixed", c[1], c[2], SEQ) for c in combos}
    rows = [[m, o, str(b), f"{x.model_states / GB:.1f}", f"{x.activations / GB:.1f}", f"{x.total / GB:.1f}"]
            for (m, o, b), x in bills.items()]  # fmt: skip
    d.value("c13", bills[("llama-2-13b", "adamw", 1)].total / GB, "{:.0f} GB")
    d.value("c13_8bit", bills[("llama-2-13b", "adamw8bit", 1)].total / GB, "{:.0f} GB")
    d.value("c_b4", combos[-1][2])
    d.value("c13_b4", bills[("llama-2-13b", "adamw", combos[-1][2])].total / GB, "{:.0f} GB")
    d.slide(
        "Try it: the calculator",
        [
            "Llama-2-13B, mixed AdamW, one {seq}-token sequence: {c13}; with 8-bit AdamW {c13_8bit}",
            "{c_b4} sequences per micro-batch: {c13_b4}; activations grow with the batch, states do not",
        ],
        _notes(d, "calculator", "Sliders in Jupyter or Colab; the exported page shows this static table.",
               "what micro-batch makes Llama-2-7B's activations equal its model states?"),
        table=(["model", "optimizer", "batch", "states GB", "activations GB", "total GB"], rows),
    )  # fmt: skip
