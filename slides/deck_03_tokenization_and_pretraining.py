"""Deck 03 · Tokenization and next-token prediction: BPE, the training tensors, a tiny LLaMA, real runs.

One slide per notebook section. BPE is trained live on the `ci` slice (under a second, as in the notebook);
the course model is built, never trained, here: training numbers come from the stored run table and
benchmark files under benchmarks/results/ and say "stored" on the slide.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from workshop_utils.bpe import (
    Tokenizer,
    first_difference,
    gpt2_bytes_to_unicode,
    merges_from_hf,
    train_bpe,
    train_hf_bpe,
)
from workshop_utils.config import get_profile
from workshop_utils.corpus import load_corpus
from workshop_utils.device import generator
from workshop_utils.gpu_workloads import results_file
from workshop_utils.models import build_course_model, course_train_config
from workshop_utils.params import count_parameters, known_config
from workshop_utils.scale import (
    A100_BF16_PEAK,
    flops_per_token,
    matmul_params,
    model_flops_per_token,
    published_runs,
    runs_table,
    time_at_our_speed,
)
from workshop_utils.tokenizer import SPECIAL_TOKENS, train_course_tokenizer
from workshop_utils.training import encode_text, lm_batch, lr_at

PROFILE = get_profile("ci")  # the sizes the deck computes at
SEED = 0
YEAR_S = 365.25 * 86_400
# The instructor's plan for the live session, minutes per slide (a plan, not a measurement).
MINUTES = {"bpe": 6, "hf": 5, "tensors": 6, "training": 8, "flops": 4, "runs": 4, "compute": 3,
           "exercises": 6, "recap": 1}  # fmt: skip


def _notes(d, key: str, say: str, ask: str) -> str:
    """Speaker notes: the planned minutes, what to say, and the question to ask before the checkpoint."""
    minutes = d.value(f"min_{key}", MINUTES[key], "{} min")
    return f"{minutes}. {say} Ask before running the checkpoint: {ask}"


def _stored_run(notebook: str, profile: str) -> dict:
    """A notebook's row in the stored run table of a profile (benchmarks/results/notebook_times_*)."""
    return next(r for r in results_file(f"notebook_times_{profile}")["rows"] if r["notebook"] == notebook)


def build(d) -> None:
    """Slides of module 03."""
    corpus = load_corpus(PROFILE)
    bpe_text = corpus.train[: PROFILE.bpe.train_chars]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train_slice.txt"
        path.write_text(bpe_text, encoding="utf-8")
        vocab, merges = train_bpe(path, PROFILE.bpe.vocab_size, SPECIAL_TOKENS)
        hf_rule = train_bpe(path, PROFILE.bpe.vocab_size, SPECIAL_TOKENS, tie_break="hf")[1]
    ours = Tokenizer(vocab, merges, SPECIAL_TOKENS)
    _bpe_slide(d, ours, merges, bpe_text)
    _hf_slide(d, ours, merges, hf_rule, bpe_text, corpus.val)
    model, fpt = _tensors_slide(d, corpus.train)
    _training_slide(d, model)
    bench = next(r for r in results_file("training_cpu")["results"] if r["precision"] == "fp32")  # stored
    _flops_slide(d, model, fpt, bench)
    _runs_slides(d, bench, fpt)
    _exercises_slide(d, model)
    total = d.value("min_total", sum(MINUTES.values()), "{} min")
    minutes = d.value("min_recap", MINUTES["recap"], "{} min")
    d.run_table_slide(f"{minutes} ({total} for the deck). The run table of the course site has the same number. "
                      "Ask: what would a bigger vocabulary do to this loss per token, and to the loss per character?")  # fmt: skip


def _bpe_slide(d, ours: Tokenizer, merges: list, text: str) -> None:
    """Section 1: byte-level BPE from scratch."""
    line = "ROMEO. But soft, what light through yonder window breaks?"
    first = [(a + b).decode("utf-8", "replace") for a, b in merges[:6]]
    d.value("n_merges", len(merges))
    d.value("bpe_chars", len(text), "{:,}")
    d.value("bpe_vocab", len(ours))
    d.value("n_bytes", len(gpt2_bytes_to_unicode()))
    d.value("n_specials", len(SPECIAL_TOKENS))
    d.value("first_merges", " | ".join(repr(t) for t in first))
    d.value("line_bytes", len(line.encode()))
    d.value("line_tokens", len(ours.encode(line)))
    d.value("line_pieces", " | ".join(ours.decode([i]) for i in ours.encode(line)))
    d.slide(
        "Byte-level BPE from scratch",
        [
            "{n_merges} merges on {bpe_chars} characters (`ci`): vocab {bpe_vocab} = {n_bytes} bytes + "
            "{n_specials} specials + merges",
            "the first merges, most frequent pair first: {first_merges}",
            "Romeo's line: {line_bytes} bytes become {line_tokens} tokens: {line_pieces}",
        ],
        _notes(d, "bpe", "Pre-tokenise with GPT-2's regex, count adjacent pairs, merge the most frequent, repeat.",
               "which pair of bytes will be merged first in Shakespeare?"),
    )  # fmt: skip


def _hf_slide(d, ours: Tokenizer, merges: list, hf_rule: list, text: str, val: str) -> None:
    """Section 2: the same thing with Hugging Face `tokenizers`."""
    course = train_course_tokenizer(text, PROFILE.bpe.vocab_size)
    hf_merges = merges_from_hf(course)
    k = first_difference(merges, hf_merges)
    sample = val[:50_000]
    stored = results_file("bpe_ci")
    d.value("hf_equal", hf_rule == train_hf_bpe(text, PROFILE.bpe.vocab_size, SPECIAL_TOKENS))
    d.value("first_diff", k)
    d.value("in_common", len(set(merges) & set(hf_merges)))
    d.value("val_chars", len(sample), "{:,}")
    d.value("bpt_ours", len(sample.encode()) / len(ours.encode(sample)), "{:.3f}")
    d.value("bpt_course", len(sample.encode()) / len(encode_text(course, sample)), "{:.3f}")
    d.value("bpe_slowdown", stored["slowdown_ours_vs_hf"], "{:.1f}x")
    d.value("bpe_date", stored["machine"]["date"][:10])
    d.slide(
        "The same thing with Hugging Face `tokenizers`",
        [
            "with the library's tie rule our merges equal `tokenizers`' on the same text: {hf_equal}",
            "with our tie rule the lists part at merge {first_diff}, a tie; {in_common} of {n_merges} merges in common",
            "bytes per token on {val_chars} validation characters: ours {bpt_ours}, course tokenizer {bpt_course}",
            "stored benchmark ({bpe_date}): training from scratch in Python is {bpe_slowdown} slower than Rust",
        ],
        _notes(d, "hf", "After one tie goes the other way the lists drift a little; compression barely moves.",
               "two pairs tie: which should win, and does it matter for compression?"),
    )  # fmt: skip


def _tensors_slide(d, train: str) -> tuple[torch.nn.Module, float]:
    """Section 3: inputs, labels shifted by one, the causal mask, the loss by hand."""
    tok = train_course_tokenizer(train, PROFILE.lm.vocab_size)  # in memory: the notebook caches it
    ids = encode_text(tok, train[: PROFILE.bpe.train_chars])  # a slice is enough for one batch
    x, y = lm_batch(ids, batch_size=2, context=8, gen=generator(SEED))  # (B, T) each
    model = build_course_model(PROFILE, len(tok), seed=SEED).eval()
    with torch.no_grad():
        logits = model(input_ids=x).logits  # (B, T, V)
        changed = x.clone()
        changed[:, -1] = (x[:, -1] + 1) % len(tok)
        moved = (model(input_ids=changed).logits - logits).abs().amax(dim=(0, 2))  # (T,)
        window = torch.cat([x, y[:, -1:]], dim=1)  # (B, T+1): the model shifts labels itself
        model_loss = float(model(input_ids=window, labels=window).loss)
    by_hand = float(-torch.log_softmax(logits.float(), -1).gather(-1, y.unsqueeze(-1)).mean())
    d.value("shift_ok", bool(torch.equal(x[:, 1:], y[:, :-1])))
    d.value("course_vocab", len(tok), "{:,}")
    d.value("past_moved", float(moved[:-1].max()), "{:.1e}")
    d.value("last_moved", float(moved[-1]), "{:.3f}")
    d.value("ce_hand", by_hand, "{:.4f}")
    d.value("ce_lib", float(F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))), "{:.4f}")
    d.value("ce_model", model_loss, "{:.4f}")
    d.value("ln_vocab", math.log(len(tok)), "{:.4f}")
    rows = [[tok.decode([int(i)]) for i in x[0]], [tok.decode([int(i)]) for i in y[0]]]
    d.slide(
        "Next-token prediction, with the real tensors",
        [
            "labels are the inputs shifted by one: {shift_ok} (course tokenizer, vocab {course_vocab})",
            "change the last input: the last position moves by {last_moved}, every earlier one by at most {past_moved}",
            "cross-entropy by hand {ce_hand} = `F.cross_entropy` {ce_lib} = the model's own loss {ce_model}",
            "a fresh model is nearly uniform: `ln(V)` = {ln_vocab}",
        ],
        _notes(d, "tensors", "The causal mask is checked the empirical way: only the last position may see the "
               "last token.", "before any training, what loss do you expect, and why that number?"),
        table=(["", *(f"t{i}" for i in range(x.shape[1]))], [["input", *rows[0]], ["label", *rows[1]]]),
    )  # fmt: skip
    return model, model_flops_per_token(model, PROFILE.lm.context)


def _training_slide(d, model: torch.nn.Module) -> None:
    """Section 4: the training recipe, its schedule, and the stored runs."""
    cfg = course_train_config(PROFILE, seed=SEED)
    steps = list(range(cfg.steps))
    fig, ax = plt.subplots(figsize=(6, 2.0))
    ax.plot(steps, [lr_at(s, cfg) for s in steps])
    ax.set(xlabel="step", ylabel="learning rate", title="warmup, then cosine decay (ci)")
    ci_row, cpu_row = (_stored_run("03_tokenization_and_pretraining.ipynb", p) for p in ("ci", "cpu"))
    d.value("betas", cfg.betas)
    d.value("wd", cfg.weight_decay)
    d.value("clip", cfg.grad_clip)
    d.value("warmup", cfg.warmup)
    d.value("lr_floor", cfg.min_lr_ratio, "{:.0%}")
    d.value("train_steps", cfg.steps, "{:,}")
    d.value("train_batch", cfg.batch_size)
    d.value("train_ctx", cfg.context)
    d.value("course_params", sum(p.numel() for p in model.parameters()), "{:,}")
    d.value("ci_val", ci_row["metric"]["value"], "{:.2f}")
    d.value("ci_ppl", math.exp(ci_row["metric"]["value"]), "{:.0f}")
    d.value("ci_date3", ci_row["date"])
    d.value("cpu_val", cpu_row["metric"]["value"], "{:.2f}")
    d.value("cpu_cell", cpu_row["slow_cells"][0]["seconds"], "{:.0f} s")
    d.slide(
        "Training the course model, live",
        [
            "AdamW betas {betas}, weight decay {wd}, clipping at {clip}, {warmup} warmup steps, cosine to "
            "{lr_floor} of the peak (LLaMA's recipe)",
            "`ci`: a {course_params}-parameter `LlamaForCausalLM`, {train_steps} steps of {train_batch} x {train_ctx} tokens",
            "stored run tables: validation loss {ci_val} nats/token in `ci` ({ci_date3}, perplexity {ci_ppl}), "
            "{cpu_val} in `cpu`",
            "the `cpu` training cell took {cpu_cell}: `FAST_PATH = True` loads the stored run",
        ],
        _notes(d, "training", "Read the samples top to bottom: random tokens, then frequent words and the shape "
               "of the plays, then phrases; sense drifts within a line.",
               "will the final loss beat the unigram baseline by more than a nat, and when do speaker names appear?"),
        figure=fig,
    )  # fmt: skip


def _flops_slide(d, model: torch.nn.Module, fpt: float, bench: dict) -> None:
    """Section 5: 6N plus attention, and MFU against a matmul peak of the same run."""
    c = model.config
    d.value("n_matmul", matmul_params(model), "{:,}")
    d.value("fpt", fpt, "{:,.0f}")
    d.value("attn_share", 12 * c.num_hidden_layers * c.hidden_size * PROFILE.lm.context / fpt, "{:.1%}")
    d.value("bench_tps", bench["tokens_per_s"], "{:,.0f}")
    d.value("bench_gflops", bench["achieved_gflops"], "{:.0f}")
    d.value("bench_mfu", bench["mfu"], "{:.0%}")
    d.value("bench_peak", bench["matmul_peak_gflops"], "{:.0f}")
    d.slide(
        "Computational scale: our run next to real ones",
        [
            "`6N + 12·L·d·T` per token: N = {n_matmul} matmul parameters, {fpt} FLOPs, attention {attn_share} (`ci`)",
            "stored benchmark, `cpu` sizes: {bench_tps} tokens/s = {bench_gflops} GFLOP/s, MFU {bench_mfu} of the "
            "same run's {bench_peak} GFLOP/s fp32 matmul peak",
        ],
        _notes(d, "flops", "The embedding is a lookup and does not count; `tests/test_scale.py` checks the formula "
               "against torch's FLOP counter.", "what share of the machine's peak will a model this narrow reach?"),
    )  # fmt: skip


def _runs_slides(d, bench: dict, fpt: float) -> None:
    """Section 5, continued: the published runs by C = 6ND, and how long they would take here."""
    runs = published_runs()
    star = next(r for r in runs if r.name.startswith("StarCoder"))
    l7, l70 = (next(r for r in runs if r.name == f"LLaMA-2 {s}") for s in ("7B", "70B"))
    d.value("a100_peak", A100_BF16_PEAK / 1e12, "{:.0f} TFLOP/s")
    d.value("star_flops", star.train_flops, "{:.2e}")
    d.value("star_mfu", 100 * star.mfu, "{:.0f} %")
    d.value("l7_flops", l7.train_flops, "{:.2e}")
    d.value("l70_flops", l70.train_flops, "{:.2e}")
    d.value("l70_mfu", 100 * l70.mfu, "{:.0f} %")
    table = (
        ["run", "params (B)", "tokens (T)", "GPU-hours", "6ND FLOPs", "implied MFU"],
        [[r["run"], f"{r['params (B)']:.2f}", f"{r['tokens (T)']:.1f}", f"{r['GPU-hours (published)']:,.0f}",
          f"{r['6ND (FLOPs)']:.2e}", f"{100 * r['MFU vs 312 TFLOPS']:.0f} %"] for r in runs_table(runs)],
    )  # fmt: skip
    d.slide(
        "The scale of real runs: C = 6ND",
        [
            "StarCoderBase {star_flops} FLOPs, LLaMA-2 7B {l7_flops}, LLaMA-2 70B {l70_flops}",
            "published GPU-hours imply {star_mfu} to {l70_mfu} of the A100's {a100_peak} bf16 peak",
        ],
        _notes(d, "runs", "6ND counts the matmuls; the attention term is small at these context lengths.",
               "are these utilisations plausible, and what eats the rest of the peak?"),
        table=table,
    )  # fmt: skip
    fig, ax = plt.subplots(figsize=(7, 2.8))
    ax.barh([r.name for r in runs], [r.train_flops for r in runs], color="C0")
    ax.set_xscale("log")
    ax.set_xlabel("training compute C = 6ND (FLOPs)")
    ax.invert_yaxis()
    ours = bench["achieved_gflops"] * 1e9  # FLOP/s of the stored benchmark
    d.value("l7_years", time_at_our_speed(l7, ours) / YEAR_S, "{:.1e}")
    cfg = course_train_config(PROFILE)
    our_run = fpt * cfg.steps * cfg.batch_size * cfg.context
    d.value("our_flops", our_run, "{:.2e}")
    d.value("star_x", star.train_flops / our_run, "{:.1e}")
    d.slide(
        "Training compute of real runs",
        [
            "StarCoderBase and the four LLaMA-2 sizes, log scale",
            "at the stored benchmark's {bench_gflops} GFLOP/s, LLaMA-2 7B would take {l7_years} years here",
            "our `ci` run: {our_flops} FLOPs; StarCoderBase is {star_x} times that",
        ],
        _notes(d, "compute", "Two routes give the same years: 6ND at our speed, and the GPU-hours scaled by "
               "A100 speed over ours.", "would the smallest of these runs finish here within a human lifetime?"),
        figure=fig,
    )  # fmt: skip


def _exercises_slide(d, model: torch.nn.Module) -> None:
    """The exercises, with the numbers their answers rest on."""
    cfg = known_config("llama-2-7b")
    n = count_parameters(cfg).total - cfg.vocab_size * cfg.hidden_size  # 6N leaves out the input embedding
    short, long_ = 4096, 32_768
    fpt = {t: flops_per_token(n, cfg.num_hidden_layers, cfg.hidden_size, t) for t in (short, long_)}
    attn = {t: 12 * cfg.num_hidden_layers * cfg.hidden_size * t / fpt[t] for t in fpt}
    dm, v = PROFILE.lm.d_model, PROFILE.bpe.vocab_size
    d.value("ex_ctx", short, "{:,}")
    d.value("ex_fpt", fpt[short], "{:.3g}")
    d.value("ex_attn", attn[short], "{:.1%}")
    d.value("ex_ctx_long", long_, "{:,}")
    d.value("ex_attn_long", attn[long_], "{:.1%}")
    d.value("ex_v_small", v * 3 // 4, "{:,}")
    d.value("ex_v_big", v * 2, "{:,}")
    d.value("ex_emb_small", 2 * (v * 3 // 4) * dm, "{:,}")
    d.value("ex_emb_big", 2 * v * 2 * dm, "{:,}")
    d.slide(
        "Exercises",
        [
            "LLaMA-2 7B at context {ex_ctx}: {ex_fpt} training FLOPs per token, attention {ex_attn}; "
            "at {ex_ctx_long}: {ex_attn_long}",
            "vocab {ex_v_small} vs {ex_v_big}: embedding + LM head of {ex_emb_small} vs {ex_emb_big} parameters "
            "at the course width: what does the extra compression buy?",
        ],
        _notes(d, "exercises", "Exercise one compares the two tokenizers piece by piece on one sentence.",
               "what does a bigger vocabulary cost the model, and what does it buy?"),
    )  # fmt: skip
