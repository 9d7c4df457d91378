"""Deck 09 · Build, adapt or buy: the planner's rules, its checks against published runs, five scenarios."""

from __future__ import annotations

from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np

from workshop_utils import planner
from workshop_utils.hardware import gpu
from workshop_utils.scale import starcoder_run


def build(d) -> None:
    """Slides of module 09."""
    fig, ax = plt.subplots(figsize=(9, 4.2))
    planner.plot_decision_tree(ax)
    d.slide(
        "Build, adapt or buy: rules first, then cost",
        [
            "privacy rules out an external API; no labelled examples rules out SFT",
            "a domain an open base never saw (new language, in-house code) needs continued pre-training first",
            "what fits the GPUs on hand stays; the cheapest total cost of ownership wins",
        ],
        "Ask first: which of these rules would your own team trip? Quality is measured on your eval, not guessed.",
        figure=fig,
    )
    a = planner.Assumptions()
    star = starcoder_run()
    star_h = planner.gpu_hours(star.params, star.tokens, "full", gpu("a100-80gb"), a.pretrain_mfu)
    d.value("mfu_pre", a.pretrain_mfu, "{:.1%}")
    d.value("mfu_ft", a.finetune_mfu, "{:.1%}")
    d.value("star_err", star_h / star.gpu_hours - 1, "{:+.0%}")
    d.value("lora_flops", planner.training_flops_per_token(1.0, "lora"), "{:.0f}N")
    mb, seq = (int(planner.published()[k]["value"]) for k in ("guanaco_65b_micro_batch", "guanaco_65b_seq"))
    a64 = planner.Assumptions(lora_r=64)
    d.value(
        "guanaco_paged",
        planner.finetune_bytes("llama-1-65b", "qlora", mb, seq, a64, paged=True) / 1e9,
        "{:.1f} GB",
    )
    d.value("guanaco_lora", planner.finetune_bytes("llama-1-65b", "lora", mb, seq, a64) / 1e9, "{:.0f} GB")
    d.value("guanaco_gpu", planner.published()["guanaco_65b_gpu_memory"]["value"], "{:.0f} GB")
    d.slide(
        "Checked against published runs",
        [
            "pre-training at Llama-2-7B's implied MFU ({mfu_pre}); StarCoder predicted {star_err}",
            "fine-tuning at Alpaca's ({mfu_ft}): short sequences use a GPU far less well",
            "LoRA costs {lora_flops} per token: no weight gradients, but backward still runs through W",
            "QLoRA 65B: {guanaco_paged} with paged optimizer states, one {guanaco_gpu} GPU; 16-bit LoRA {guanaco_lora}",
        ],
        "One MFU carries from one run to another only as far as runs agree: that is the planner's error bar.",
    )
    rows = []
    for name, s in planner.scenarios().items():
        options, rec = planner.plan(s)
        best = {o.key: o for o in options}[rec.choice]
        rows.append([name, planner.LABELS[rec.choice], f"${best.one_off:,.0f}", f"${best.monthly:,.0f}"])
    d.slide(
        "Five scenarios, example prices",
        [
            "adapting is cheap once; serving is paid every month",
            "pre-training from scratch passes in none of them",
        ],
        "Walk one row: which rule removed the API, which hardware fact removed 16-bit LoRA?",
        table=(["scenario", "recommended", "one-off", "monthly"], rows),
    )
    bot = planner.scenarios()["support-bot"]
    sweep = planner.sensitivity(bot, "requests_per_day", np.logspace(3, 6.5, 15))
    v0, v1, _, _ = planner.flips(sweep)[0]
    d.value("flip_lo", v0, "{:,.0f}")
    d.value("flip_hi", v1, "{:,.0f}")
    fig, ax = plt.subplots(figsize=(7, 3.6))
    planner.plot_sensitivity(sweep, "requests per day", ax, title="support-bot")
    d.slide(
        "Where the choice flips: traffic",
        ["the API is cheaper until {flip_lo} to {flip_hi} requests per day; then one self-hosted GPU wins"],
        "Halve the API price and the flip moves right: the notebook's first exercise.",
        figure=fig,
    )
    rr = planner.scenarios()["regulated-records"]
    on_a100 = planner.plan(replace(rr, gpu="a100-80gb"))[1].choice
    d.value("rr_gpu", gpu(rr.gpu).name, "{}")
    d.value("a100", gpu("a100-80gb").name, "{}")
    d.value("rr_l4", planner.LABELS[planner.plan(rr)[1].choice], "{}")
    d.value("rr_a100", planner.LABELS[on_a100], "{}")
    d.slide(
        "Hardware decides between LoRA and QLoRA",
        [
            "clinical notes, data stays in: on one {rr_gpu} the plan is {rr_l4}",
            "on one {a100} it is {rr_a100}",
        ],
        "Same data, same rules: only memory changed.",
    )
    d.run_table_slide()
