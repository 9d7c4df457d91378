"""Deck 05 · Distributed training: DDP, ZeRO stages and FSDP, per-rank memory and traffic.

One slide per notebook section. Nothing is launched here: the per-rank formulas of
`workshop_utils.distributed.analysis` are evaluated for the `ci` launch (its model, world and strategies),
the equal-training argument is checked on one process, and the measured ratio comes from the stored
run table (benchmarks/results/, labelled "stored").
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from workshop_utils.config import get_profile
from workshop_utils.distributed import analysis, train
from workshop_utils.distributed.comm import ring_bytes_sent, zero_comm_volume_elements
from workshop_utils.distributed.launch import cleanup, torchrun_command
from workshop_utils.distributed.selfcheck import SHAPES
from workshop_utils.gpu_workloads import results_file
from workshop_utils.memory import ZERO_STAGES, Architecture, estimate_memory, zero_model_states_bytes
from workshop_utils.params import count_parameters, known_config
from workshop_utils.precision import format_info

GB = 1e9
PSI, N_D = 7_500_000_000, 64  # the ZeRO paper's worked example (Rajbhandari et al. 2020, Fig. 1)
GPUS = 8  # one 8-GPU node
BW = 100e9  # bytes/s per GPU: exercise 2's assumed link bandwidth (an input, not a measurement)
SIZES = get_profile("ci").distributed  # the launch the ci notebook runs
# The instructor's plan for the live session, minutes per slide (a plan, not a measurement).
MINUTES = {"script": 5, "same": 5, "holds": 6, "worked": 3, "node": 3, "sends": 5, "zero1": 4, "fails": 4,
           "exercises": 5, "recap": 1}  # fmt: skip


def _notes(d, key: str, say: str, ask: str) -> str:
    """Speaker notes: the planned minutes, what to say, and the question to ask before the checkpoint."""
    minutes = d.value(f"min_{key}", MINUTES[key], "{} min")
    return f"{minutes}. {say} Ask before running the checkpoint: {ask}"


def _report(strategy: str, psi: int, units: dict, world: int, bf16: bool = False) -> dict:
    """The fields of a rank's report that the formulas read, for a launch that has not run."""
    return {"psi": psi, "world_size": world, "zero_stage": train.ZERO_STAGE[strategy], "strategy": strategy,
            "bf16": bf16, "shard_units": units}  # fmt: skip


def build(d) -> None:
    """Slides of module 05."""
    spec = train.RunSpec(profile="ci", steps=SIZES.steps, batch_size=SIZES.batch_size, context=SIZES.context)
    model = train.build_model(spec)
    psi, units = sum(p.numel() for p in model.parameters()), train.shard_units(model)
    _script_slide(d, psi)
    _same_training_slide(d, spec, model)
    _holds_slide(d, psi, units)
    _paper_slides(d)
    _sends_slide(d, psi)
    _zero1_slide(d, psi)
    _fails_slide(d)
    _exercises_slide(d, psi, units)
    total = d.value("min_total", sum(MINUTES.values()), "{} min")
    minutes = d.value("min_recap", MINUTES["recap"], "{} min")
    d.run_table_slide(f"{minutes} ({total} for the deck). The run table of the course site has the same number. "
                      "Ask: with twice the ranks, would this ratio halve?")  # fmt: skip


def _script_slide(d, psi: int) -> None:
    """Section 1: one script, any scale."""
    configs = sorted((Path(train.__file__).parent / "accelerate_configs").glob("*.yaml"))
    d.value("psi_ci", psi, "{:,}")
    d.value("world", SIZES.world_size)
    d.value("n_strat", len(SIZES.strategies))
    d.value("strategies", ", ".join(SIZES.strategies))
    d.value("d_steps", SIZES.steps)
    d.value("n_acc", len(configs))
    d.value("acc_names", ", ".join(p.stem for p in configs))
    d.slide(
        "One script, any scale",
        [
            "`python -m workshop_utils.distributed.train`: every rank builds the same course model "
            "(Ψ = {psi_ci} in `ci`) and takes its share of each global batch",
            "`ci`: {world} ranks on CPU (gloo), {n_strat} strategies in one launch ({strategies}), {d_steps} steps each",
            "rendezvous on `127.0.0.1:0`: the OS picks a free port; the same line runs on a GPU node (NCCL)",
            "{n_acc} `accelerate` configs ship for the same designs: {acc_names}",
        ],
        _notes(d, "script", "The whole parallelism is one function, `train.wrap`.",
               "what changes on the command line between this laptop and a GPU node?"),
    )  # fmt: skip


def _same_training_slide(d, spec: train.RunSpec, model: torch.nn.Module) -> None:
    """Section 2: the mean over ranks of their shard's loss and gradient is the full-batch one."""
    x, y = train.synthetic_batch(spec, 0, model.config.vocab_size)  # (B, T) the global batch
    world, rows = SIZES.world_size, spec.batch_size // SIZES.world_size

    def loss_and_grad(xb: torch.Tensor, yb: torch.Tensor) -> tuple[float, torch.Tensor]:
        model.zero_grad(set_to_none=True)
        loss = train.lm_loss(model, xb, yb)
        loss.backward()
        return loss.item(), torch.cat([p.grad.flatten() for p in model.parameters()])

    full_loss, full_grad = loss_and_grad(x, y)
    per_rank = [
        loss_and_grad(x[r * rows : (r + 1) * rows], y[r * rows : (r + 1) * rows]) for r in range(world)
    ]
    model.zero_grad(set_to_none=True)
    rank_loss = sum(loss for loss, _ in per_rank) / world
    rank_grad = sum(g for _, g in per_rank) / world
    d.value("gb", spec.batch_size)
    d.value("rows", rows)
    d.value("l_full", full_loss, "{:.6f}")
    d.value("l_ranks", rank_loss, "{:.6f}")
    d.value("g_diff", float((full_grad - rank_grad).abs().max()), "{:.1e}")
    d.value("g_norm", float(full_grad.norm()), "{:.3f}")
    d.value("bf16_eps_d", format_info("bf16").eps, "{:.1e}")
    d.slide(
        "Every strategy computes the same training",
        [
            "one global batch of {gb} rows: loss {l_full}; the mean of {world} ranks' losses on {rows} rows each: {l_ranks}",
            "averaged rank gradients vs the full-batch gradient (norm {g_norm}): largest difference {g_diff}",
            "in fp32 only the order of the sums differs; bf16 compute (eps {bf16_eps_d}) needs a looser bound",
        ],
        _notes(d, "same", "Computed here in one process, untrained; the notebook compares every strategy's "
               "losses with a single-process run step by step.",
               "why must the mean over ranks equal the full-batch loss, and when would it not?"),
    )  # fmt: skip


def _holds_slide(d, psi: int, units: dict) -> None:
    """Section 3: what each rank holds, by the formulas adapted to what the ci launch runs (fp32, FSDP2)."""
    world = SIZES.world_size
    formula = {s: analysis.formula_model_state_bytes(_report(s, psi, units, world)) for s in train.ZERO_STAGE}
    paper = {s: zero_model_states_bytes(psi, train.ZERO_STAGE[s], world) for s in formula}
    labels = list(formula)
    fig, ax = plt.subplots(figsize=(7, 2.8))
    ax.bar(
        [i - 0.2 for i in range(len(labels))], [formula[s] / 1e6 for s in labels], 0.4, label="as run (fp32)"
    )
    ax.bar(
        [i + 0.2 for i in range(len(labels))],
        [paper[s] / 1e6 for s in labels],
        0.4,
        label="paper (P=2, G=2, K=12)",
    )
    ax.set_xticks(range(len(labels)), labels)
    ax.set(ylabel="MB per rank", title=f"model states per rank, ci launch, N = {world}")
    ax.legend(fontsize=7)
    stored = next(r for r in results_file("notebook_times_ci")["rows"] if r["notebook"].startswith("05_"))
    working = formula["zero3"] - zero_model_states_bytes(
        psi, 3, world, k=analysis.ADAM_K, param_bytes=4, grad_bytes=4
    )
    d.value("ddp_b", formula["ddp"], "{:,.0f}")
    d.value("ddp_per", formula["ddp"] / psi, "{:.0f}")
    d.value("z1_b", formula["zero1"], "{:,.0f}")
    d.value("z2_b", formula["zero2"], "{:,.0f}")
    d.value("z3_b", formula["zero3"], "{:,.0f}")
    d.value("z3_ws", working, "{:,.0f}")
    d.value("z3_ratio", formula["zero3"] / formula["ddp"], "{:.3f}")
    d.value("z3_stored", stored["metric"]["value"], "{:.3f}")
    d.value("stored_date", stored["date"])
    d.slide(
        "What each rank holds: measured vs the ZeRO formulas",
        [
            "DDP in fp32: {ddp_b} bytes per rank, {ddp_per} per parameter (weights, gradients, Adam's m and v)",
            "ZeRO-1 {z1_b}, ZeRO-2 {z2_b} (FSDP keeps the fp32 shard: the master copy), ZeRO-3 {z3_b} "
            "with a gathered working set of {z3_ws}",
            "formula ZeRO-3 / DDP = {z3_ratio}; measured in the stored `ci` run table ({stored_date}): {z3_stored}",
        ],
        _notes(d, "holds", "Each rank reports its local shards (`DTensor.to_local()`) and the parameter peak "
               "during forward.", "will the measured bytes equal the adapted formulas exactly, or only nearly?"),
        figure=fig,
    )  # fmt: skip


def _paper_slides(d) -> None:
    """Section 3, continued: the paper's worked example, and Llama-2-7B on one node."""
    d.value("psi", PSI / 1e9, "{:.1f}B")
    d.value("n_d", N_D)
    for s in ZERO_STAGES:
        v = zero_model_states_bytes(PSI, s, N_D) / GB
        d.value(f"zero{s}", v, "{:.1f} GB" if v >= 10 else "{:.2f} GB")
    d.slide(
        "ZeRO's worked example",
        [
            "a {psi}-parameter model on {n_d} GPUs, mixed-precision Adam:",
            "plain data parallel {zero0} per GPU",
            "ZeRO-1 {zero1}, ZeRO-2 {zero2}, ZeRO-3 {zero3}",
        ],
        _notes(d, "worked", "Recomputed with the paper's formulas; the claims tests compare with the paper's "
               "table cell by cell.", "which stage first fits on a single consumer GPU?"),
    )  # fmt: skip
    d.value("gpus", GPUS)
    arch = Architecture.from_name("llama-2-7b")  # built on the meta device once
    llama = {s: estimate_memory(arch, "mixed", "adamw", batch=1, seq=4096, zero_stage=s, n_d=GPUS)
             for s in ZERO_STAGES}  # fmt: skip
    for s, b in llama.items():
        d.value(f"l7_zero{s}", b.model_states / GB, "{:.1f} GB")
    fig, ax = plt.subplots(figsize=(6.5, 3.0))
    ax.bar(
        [f"ZeRO-{s}" if s else "DDP" for s in ZERO_STAGES], [llama[s].model_states / GB for s in ZERO_STAGES]
    )
    ax.set_ylabel("model states per GPU (GB)")
    ax.set_title(f"Llama-2-7B on {GPUS} GPUs")
    d.slide(
        "Llama-2-7B on one node of {gpus} GPUs",
        [
            "model states per GPU: DDP {l7_zero0}, ZeRO-1 {l7_zero1}",
            "ZeRO-2 {l7_zero2}, ZeRO-3 {l7_zero3}",
        ],
        _notes(d, "node", "ZeRO-3 pays with an all-gather of parameters in forward and backward: the next "
               "section counts the bytes.", "on which stage do the states of a 7B model fit beside its activations?"),
        figure=fig,
    )  # fmt: skip


def _sends_slide(d, psi: int) -> None:
    """Section 4: what each rank sends (ZeRO §7), and what that costs for a 7B model on one node."""
    vol = {s: zero_comm_volume_elements(psi, s) for s in ZERO_STAGES}
    big = count_parameters(known_config("llama-2-7b")).total  # closed form, no model built
    payload = 2 * big  # bf16 bytes of every parameter (or gradient)
    ddp_s = ring_bytes_sent("all_reduce", payload, GPUS) / BW
    z3_s = (
        2 * ring_bytes_sent("all_gather", payload, GPUS) + ring_bytes_sent("reduce_scatter", payload, GPUS)
    ) / BW
    d.value("v_ddp", vol[0], "{:,}")
    d.value("v_z3", vol[3], "{:,}")
    d.value("v_ratio", vol[3] / vol[0], "{:.1f}")
    d.value("v_z1", 3 * psi, "{:,}")
    d.value("bw", BW / 1e9, "{:.0f} GB/s")
    d.value("t_ddp", ddp_s, "{:.2f} s")
    d.value("t_z3", z3_s, "{:.2f} s")
    d.slide(
        "What each rank sends: the ZeRO paper's traffic count",
        [
            "per step and rank, in elements (`ci` model): DDP and ZeRO-2 {v_ddp} (`2Ψ`), ZeRO-3 {v_z3} (`3Ψ`), {v_ratio}x",
            "our ZeRO-1s all-reduce the gradient, then broadcast slices: {v_z1} (`3Ψ`); the paper's reduce-scatters",
            "Llama-2-7B in bf16 on {gpus} GPUs at {bw} each, nothing overlapped: DDP {t_ddp}, ZeRO-3 {t_z3} per step",
        ],
        _notes(d, "sends", "Counted at the `torch.distributed` API; an all-reduce moves twice its payload.",
               "ZeRO-3 shards everything: why does it send more than DDP, and by how much?"),
    )  # fmt: skip


def _zero1_slide(d, psi: int) -> None:
    """Section 5: ZeRO-1 by hand, one flat slice of m and v per rank."""
    world = SIZES.world_size
    n_el = sum(math.prod(s) for s in SHAPES)
    d.value("slice", math.ceil(psi / world), "{:,}")
    d.value("state_rank", 8 * math.ceil(psi / world), "{:,}")
    d.value("state_full", 8 * psi, "{:,}")
    d.value("check_el", n_el)
    d.value("check_pad", world * math.ceil(n_el / world) - n_el)
    d.slide(
        "ZeRO-1 by hand, in one screen",
        [
            "each of {world} ranks keeps m and v for one slice of {slice} elements: {state_rank} of {state_full} bytes",
            "it updates its slice, then every rank broadcasts its slice to the others",
            "the self-check trains {check_el} elements (padding {check_pad}) against `torch.optim.AdamW` on every rank",
        ],
        _notes(d, "zero1", "`ShardedAdamW` is under a hundred lines: read it top to bottom.",
               "after the check's steps, how far apart will ShardedAdamW and AdamW be?"),
    )  # fmt: skip


def _fails_slide(d) -> None:
    """Section 6: when a rank fails, the three guards."""
    cmd = torchrun_command(SIZES.world_size, ["-m", "workshop_utils.distributed.train"])
    flag = lambda name: cmd[cmd.index(name) + 1]  # noqa: E731
    d.value("monitor", float(flag("--monitor-interval")), "{} s")
    d.value("restarts", int(flag("--max-restarts")))
    d.value("coll_timeout", train._parse_args(["--out", "unused"]).timeout, "{:.0f} s")
    d.value("launch_timeout", SIZES.timeout_s, "{} s")
    d.value("grace", inspect.signature(cleanup).parameters["grace_s"].default, "{} s")
    d.slide(
        "When a rank fails",
        [
            "torchrun checks its workers every {monitor} and stops the group when one dies (restarts: {restarts})",
            "every collective gives up after {coll_timeout}; the `ci` launch as a whole after {launch_timeout}",
            "`launch` kills every process it started, found by a tag in their environment, after a grace of {grace}",
        ],
        _notes(d, "fails", "One rank raises on purpose while another waits in an all-reduce; the notebook "
               "prints the root cause.", "how long until the notebook hears of the failure, and what is left running?"),
    )  # fmt: skip


def _exercises_slide(d, psi: int, units: dict) -> None:
    """Exercise 3: where ZeRO-3 stops scaling (the gathered working set does not shrink with N)."""
    ns = (2, 4, 8, 16, 64)
    held = {n: analysis.formula_model_state_bytes(_report("zero3", psi, units, n)) for n in ns}
    rest = {n: zero_model_states_bytes(psi, 3, n, k=analysis.ADAM_K, param_bytes=4, grad_bytes=4) for n in ns}
    half = next((n for n in ns if held[n] - rest[n] > held[n] / 2), None)
    d.value("ex_ns", ", ".join(str(n) for n in ns))
    d.value("ex_held", ", ".join(f"{held[n] / 1e6:.2f}" for n in ns))
    d.value("ex_half", half)
    d.slide(
        "Exercises",
        [
            "ZeRO-3 per rank for N = {ex_ns}: {ex_held} MB (`ci` model): the shards shrink, the working set does not",
            "the working set is more than half of what a rank holds from N = {ex_half}: wrap finer units",
            "the paper's worked example and the ring's bytes per rank are the other two exercises",
        ],
        _notes(d, "exercises", "The answers are checked on numbers from the launch's own reports.",
               "at which N does the gathered block dominate a rank's memory?"),
    )  # fmt: skip
