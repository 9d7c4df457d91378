"""Deck 09 · Build, adapt or buy: the planner's rules, its checks against published runs, five scenarios, the flips."""

from __future__ import annotations

from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np

from workshop_utils import finetune_grid_report, planner, published, scaling
from workshop_utils.config import get_profile
from workshop_utils.hardware import catalogue, gpu
from workshop_utils.scale import llama2_runs, starcoder_run

# The instructor's plan, not a measurement: minutes per notebook section, and the question to ask the room
# before running that section's checkpoint.
# fmt: off
PLAN = {  # key: (minutes, question before the checkpoint, remark for the speaker)
    "tree": (5, "Which of these rules would your own team trip first?",
             "Quality is measured on your eval, not guessed: the planner cannot judge it."),
    "assume": (4, "Why should fine-tuning use a GPU less well than pre-training?",
               "Hardware rows are data/published/hardware.json; the prices are labelled examples, not quotes."),
    "checked": (6, "One MFU from one run: how far off will it be on another run?",
                "One MFU carries from one run to another only as far as runs agree: that is the planner's error bar."),
    "scenarios": (8, "Before the table: which option do you expect for each scenario?",
                  "Walk one row: which rule removed the API, which hardware fact removed 16-bit LoRA?"),
    "tco": (3, "Over the horizon, which decides: the one-off training bill or the monthly serving bill?",
            "One-off training plus monthly serving; a log scale, so parallel lines differ by a factor."),
    "flips": (5, "Halve the API price: does the traffic flip move left or right?",
              "Halving the API price is the notebook's first exercise."),
    "quality": (4, "The table ranks by cost: who decides whether LoRA is good enough?",
                "Read the LoRA rows of the scenarios with these numbers in mind."),
    "overtrain": (4, "At the ticket classifier's volume, does an over-trained small model pay back?",
                  "Module six's law, priced with this module's traffic."),
    "yours": (6, "What single input of your own scenario would change the answer?",
              "Same data, same rules: only memory changed. Take one scenario from the room."),
    "recap": (5, "Which scenario is closest to yours, and what would you measure first?",
              "Then the exercises. The module is planned at {min_total}."),
}
# fmt: on


def _notes(d, key: str) -> str:
    """Speaker notes from PLAN: the planned minutes, the question to ask before the checkpoint, the remark."""
    minutes, question, remark = PLAN[key]
    ask = "Recap, then ask" if key == "recap" else "Ask before the checkpoint"
    return f"{d.value(f'min_{key}', minutes, '{} min')}. {ask}: {question} {remark}".strip()


def build(d) -> None:
    """Slides of module 09, one per notebook section."""
    plans = {name: (s, *planner.plan(s)) for name, s in planner.scenarios().items()}
    sweep_points = get_profile("ci").planner.sweep_points
    _tree_slide(d, plans)
    _assumptions_slide(d)
    _checked_slide(d)
    _scenarios_slide(d, plans)
    _tco_slide(d, plans)
    _flips_slide(d, plans, sweep_points)
    _quality_slide(d)
    _overtraining_slide(d, plans)
    _yours_slide(d, plans)
    d.value("min_total", sum(m for m, _, _ in PLAN.values()), "{} min")
    d.run_table_slide(_notes(d, "recap"))


def _tree_slide(d, plans: dict) -> None:
    """§1: the rules that rule options out, before any cost."""
    pairs = [o for _, options, _ in plans.values() for o in options]
    d.value("n_options", len(planner.OPTIONS))
    d.value("n_scen", len(plans))
    d.value("n_excluded", sum(bool(o.excluded) for o in pairs))
    d.value("n_pairs", len(pairs))
    fig, ax = plt.subplots(figsize=(9, 4.2))
    planner.plot_decision_tree(ax)
    d.slide(
        "Build, adapt or buy: rules first, then cost",
        [
            "privacy rules out an external API; no labelled examples rules out SFT; a domain an open base never saw needs CPT",
            "what fits the GPUs on hand stays; the cheapest total cost of ownership wins",
            "{n_options} options x {n_scen} scenarios: {n_excluded} of {n_pairs} pairs are ruled out before any cost",
        ],
        _notes(d, "tree"),
        figure=fig,
    )


def _assumptions_slide(d) -> None:
    """§2: hardware from data/published, two MFUs computed from published runs, the stated assumptions."""
    a = planner.Assumptions()
    d.value("mfu_pre", a.pretrain_mfu, "{:.1%}")
    d.value("mfu_ft", a.finetune_mfu, "{:.1%}")
    d.value("bw_eff", a.bandwidth_efficiency, "{:.0%}")
    d.value("headroom", a.headroom, "{:.0%}")
    d.value("peak", a.peak_to_mean, "{:g}")
    d.value("lora_flops", planner.training_flops_per_token(1.0, "lora"), "{:.0f}N")
    d.value("full_flops", planner.training_flops_per_token(1.0, "full"), "{:.0f}N")
    rows = [[g.name, f"{g.memory_gb:.0f}", f"{g.peak_flops / 1e12:.0f}", f"{g.bandwidth / 1e9:,.0f}",
             f"${planner.EXAMPLE_PRICES.gpu_hour.get(k, float('nan')):.2f}"] for k, g in catalogue().items()]  # fmt: skip
    d.slide(
        "What the planner assumes",
        [
            "pre-training at Llama-2-7B's implied MFU ({mfu_pre}); fine-tuning at Alpaca's ({mfu_ft})",
            "LoRA costs {lora_flops} per token, full training {full_flops}: no weight gradients, but backward still runs through W",
            "assumptions: decode at {bw_eff} of peak bandwidth, plans fill at most {headroom} of a GPU, busiest hour {peak} x the mean",
        ],
        _notes(d, "assume"),
        table=(["GPU", "GB", "16-bit TFLOPS", "GB/s", "example $/h"], rows),
    )


def _checked_slide(d) -> None:
    """§3: the planner against published runs: pre-training GPU-hours and the fine-tuning anchors."""
    fig_ = {k: v["value"] for k, v in planner.published().items()}
    a100, mfu = gpu("a100-80gb"), planner.llama2_7b_mfu()
    runs = [(r.name, r.params, r.tokens, r.gpu_hours) for r in (*llama2_runs(), starcoder_run())]
    runs += [("LLaMA-1 7B", fig_["alpaca_params"], fig_["llama1_7b_tokens"], fig_["llama1_7b_gpu_hours"]),
             ("LLaMA-1 65B", published.value("pretraining", "llama1_65b_params"), fig_["llama1_65b_tokens"],
              fig_["llama1_65b_gpu_hours"])]  # fmt: skip
    errors = {
        name: planner.gpu_hours(n, t, "full", a100, mfu) / hours - 1
        for name, n, t, hours in runs
        if name != llama2_runs()[0].name
    }
    worst = max(errors, key=lambda k: abs(errors[k]))
    alpaca = planner.Scenario("alpaca", "Alpaca", "llama-1-7b", "a100-80gb", int(fig_["alpaca_gpus"]), 1, 1, 1,
                              labelled_examples=int(fig_["alpaca_examples"]),
                              tokens_per_example=int(fig_["alpaca_max_length"]), epochs=int(fig_["alpaca_epochs"]))  # fmt: skip
    full_ft = {o.key: o for o in planner.price_options(alpaca)}["full"]
    d.value("alpaca_h", 24 * full_ft.wall_days, "{:.2f} h")
    d.value("alpaca_gpus", fig_["alpaca_gpus"], "{:.0f}")
    d.value("alpaca_pub", fig_["alpaca_hours"], "{:g} h")
    d.value("n_other", len(errors))
    d.value("worst_err", errors[worst], "{:+.0%}")
    d.value("worst_abs", abs(errors[worst]), "{:.0%}")
    d.value("worst_run", worst)
    mb, seq = int(fig_["guanaco_65b_micro_batch"]), int(fig_["guanaco_65b_seq"])
    a64 = planner.Assumptions(lora_r=64)
    d.value(
        "guanaco_paged",
        planner.finetune_bytes("llama-1-65b", "qlora", mb, seq, a64, paged=True) / 1e9,
        "{:.1f} GB",
    )
    d.value("guanaco_lora", planner.finetune_bytes("llama-1-65b", "lora", mb, seq, a64) / 1e9, "{:.0f} GB")
    d.value("guanaco_gpu", fig_["guanaco_65b_gpu_memory"], "{:.0f} GB")
    v_tokens = fig_["vicuna_conversations"] * fig_["vicuna_epochs"] * fig_["vicuna_max_length"]
    v_hours = planner.gpu_hours(
        fig_["vicuna_params"], v_tokens, "full", a100, planner.Assumptions().finetune_mfu
    )
    d.value("vicuna_hours", v_hours, "{:.0f}")
    d.value("vicuna_price", fig_["vicuna_cost"] / v_hours, "${:.2f}")
    d.slide(
        "Checked against published runs",
        [
            "one MFU from Llama-2-7B predicts the other {n_other} runs' GPU-hours within {worst_abs} ({worst_run}: {worst_err})",
            "Alpaca at its own MFU: {alpaca_h} on {alpaca_gpus} A100s, published {alpaca_pub} (the round trip)",
            "QLoRA 65B: {guanaco_paged} with paged optimizer states, one {guanaco_gpu} GPU; 16-bit LoRA {guanaco_lora}",
            "Vicuna-13B at Alpaca's MFU: {vicuna_hours} A100-hours, so its published cost implies {vicuna_price} per hour",
        ],
        _notes(d, "checked"),
    )


def _scenarios_slide(d, plans: dict) -> None:
    """§4: five worked scenarios, priced, with the recommendation."""
    rows, one_offs = [], []
    for name, (_, options, rec) in plans.items():
        best = {o.key: o for o in options}[rec.choice]
        one_offs.append(best.one_off)
        rows.append([name, planner.LABELS[rec.choice], f"${best.one_off:,.0f}", f"${best.monthly:,.0f}"])
    scratch = sum(rec.choice == "scratch" for _, _, rec in plans.values())
    d.value("max_one_off", max(one_offs), "${:,.0f}")
    d.value("n_scratch", scratch)
    d.slide(
        "Five scenarios, example prices",
        [
            "adapting is cheap once, at most {max_one_off} among the recommendations; serving is paid every month",
            "pre-training from scratch is recommended in {n_scratch} of the {n_scen}",
        ],
        _notes(d, "scenarios"),
        table=(["scenario", "recommended", "one-off", "monthly"], rows),
    )


def _tco_slide(d, plans: dict) -> None:
    """§5: total cost of ownership over time for the support bot and the ticket classifier."""
    months = get_profile("ci").planner.tco_months
    allowed = {
        n: {o.key: o for o in plans[n][1] if not o.excluded} for n in ("support-bot", "ticket-classifier")
    }
    for short, name in (("bot", "support-bot"), ("clf", "ticket-classifier")):
        d.value(f"{short}_api", allowed[name]["api"].monthly, "${:,.0f}")
        d.value(f"{short}_self", allowed[name]["self-host"].monthly, "${:,.0f}")
    d.value("bot_gpus", allowed["support-bot"]["self-host"].serving_gpus)
    trained = [o for opts in allowed.values() for o in opts.values() if o.key not in ("api", "self-host")]
    d.value("max_train", max(o.one_off for o in trained), "${:,.0f}")
    d.value("tco_months", months)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, name in zip(axes, allowed):
        planner.plot_tco(plans[name][1], months, ax=ax, title=name)
    d.slide(
        "Total cost of ownership over time",
        [
            "support bot, per month: API {bot_api}, self-hosted on {bot_gpus} GPU {bot_self}",
            "ticket classifier, per month: API {clf_api}, self-hosted {clf_self}",
            "the fine-tunes they allow cost at most {max_train} once: over {tco_months} months the serving bill decides",
        ],
        _notes(d, "tco"),
        figure=fig,
    )


def _flips_slide(d, plans: dict, points: int) -> None:
    """§6: where the choice flips: traffic, GPU price, domain text."""
    bot, clf, lang = (plans[n][0] for n in ("support-bot", "ticket-classifier", "new-language"))
    traffic = planner.sensitivity(bot, "requests_per_day", np.logspace(3, 6.5, points))
    v0, v1, _, _ = planner.flips(traffic)[0]
    d.value("flip_lo", v0, "{:,.0f}")
    d.value("flip_hi", v1, "{:,.0f}")
    price = planner.price_sensitivity(clf, np.linspace(0.5, 12.0, points))
    p0, p1, c0, c1 = planner.flips(price)[0]
    d.value("price_lo", p0, "${:.2f}")
    d.value("price_hi", p1, "${:.2f}")
    d.value("price_from", planner.LABELS[c0])
    d.value("price_to", planner.LABELS[c1])
    d.value("lang_model", lang.model)
    d.value("d_opt", planner.chinchilla_tokens(planner.base_model(lang.model)[0].n_params), "{:.2g}")
    fig, ax = plt.subplots(figsize=(7, 3.4))
    planner.plot_sensitivity(traffic, "requests per day", ax, title="support-bot")
    d.slide(
        "Where the choice flips",
        [
            "traffic: the API is cheaper until {flip_lo} to {flip_hi} requests per day; then one self-hosted GPU wins",
            "ticket classifier: {price_from} -> {price_to} between {price_lo} and {price_hi} per GPU-hour",
            "new language: scratch is allowed only past {d_opt} domain tokens, Chinchilla-optimal for {lang_model}",
        ],
        _notes(d, "flips"),
        figure=fig,
    )


def _quality_slide(d) -> None:
    """§7: what the cost table cannot say: quality, from module 08's stored grid."""
    grid = finetune_grid_report.load_grid(allow_other_base=True)
    shares = [r["recovered"].mean for r in finetune_grid_report.trend_table(grid) if r["r"]]
    gpt3 = finetune_grid_report.gpt3_point()
    d.value("share_lo", min(shares), "{:.0%}")
    d.value("share_hi", max(shares), "{:.0%}")
    d.value("gpt3_wikisql", gpt3["wikisql"], "{:.3f}")
    d.value("qlora_words", finetune_grid_report.qlora_cost(grid)["loss"]["content"][1])
    d.slide(
        "What the cost table cannot say: quality",
        [
            "stored grid, tiny bases: LoRA recovers {share_lo} to {share_hi} of full fine-tuning's gain",
            "GPT-3 175B in the LoRA paper: LoRA over full FT score {gpt3_wikisql} (WikiSQL), a score ratio",
            "QLoRA minus LoRA on the answer's words: {qlora_words}",
        ],
        _notes(d, "quality"),
    )


def _overtraining_slide(d, plans: dict) -> None:
    """§8: pre-training your own, priced: an over-trained 3B against the compute-optimal model of equal loss."""
    clf = plans["ticket-classifier"][0]
    served = clf.requests_per_day * 365 * (clf.input_tokens + clf.output_tokens)
    n, tokens = 3e9, 3e12  # the notebook's example model: 3B parameters on 3T tokens
    t = scaling.overtraining_tradeoff(planner.Assumptions().law, n, tokens, served)
    d.value("ot_n", n / 1e9, "{:.0f}B")
    d.value("ot_d", tokens / 1e12, "{:.0f}T")
    d.value("ot_loss", t.loss, "{:.3f}")
    d.value("ot_opt", t.optimal_params / 1e9, "{:.1f}B")
    d.value("ot_extra", t.extra_training_flops, "{:.2g}")
    d.value("ot_break", t.breakeven_tokens, "{:.2g}")
    d.value("ot_served", served, "{:.2g}")
    d.value("ot_verdict", "pays off" if t.net_flops_saved > 0 else "does not pay off")
    d.slide(
        "Training your own, priced: the over-training trade-off",
        [
            "{ot_n} on {ot_d} tokens (predicted loss {ot_loss}) against the compute-optimal {ot_opt} of equal loss",
            "{ot_extra} extra training FLOPs; break-even after {ot_break} served tokens",
            "a year of the ticket classifier's traffic is {ot_served} tokens: over-training {ot_verdict}",
        ],
        _notes(d, "overtrain"),
    )


def _yours_slide(d, plans: dict) -> None:
    """§9: your scenario: change one input (here the GPU) and re-plan."""
    rr = plans["regulated-records"][0]
    d.value("rr_gpu", gpu(rr.gpu).name)
    d.value("a100", gpu("a100-80gb").name)
    d.value("rr_l4", planner.LABELS[plans["regulated-records"][2].choice])
    d.value("rr_a100", planner.LABELS[planner.plan(replace(rr, gpu="a100-80gb"))[1].choice])
    d.value("n_fields", len(rr.__dataclass_fields__))
    d.slide(
        "Your scenario: change one input",
        [
            "clinical notes, data stays in: on one {rr_gpu} the plan is {rr_l4}; on one {a100} it is {rr_a100}",
            "a scenario has {n_fields} inputs; sliders re-price traffic, GPU price and horizon in Jupyter",
            "everything else: `python -m workshop_utils.planner --scenario support-bot --privacy`",
        ],
        _notes(d, "yours"),
    )
