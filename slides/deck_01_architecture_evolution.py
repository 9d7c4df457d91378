"""Deck 01 · Architecture evolution: masks, objectives, GPT-2 -> LLaMA one change at a time, parameter counts.

One slide per notebook section. The tiny models are built (not trained) at the `ci` sizes, exactly as the
notebook builds them; the attention masks, norms, RoPE scores and gradients are computed live, in well
under a second. Training happens in the notebook only.
"""

from __future__ import annotations

import inspect
import math
from collections import Counter

import matplotlib.pyplot as plt
import torch
from transformers.models.llama.modeling_llama import LlamaRMSNorm

from workshop_utils import architectures as A
from workshop_utils.config import get_profile
from workshop_utils.gpu_workloads import results_file
from workshop_utils.params import (
    CATEGORIES,
    build_on_meta,
    count_model_parameters,
    count_parameters,
    known_config,
)

MODELS = ("bert-base", "t5-base", "gpt2", "llama-2-7b", "llama-2-70b", "llama-3-8b")
PROFILE = get_profile("ci")  # the sizes the deck builds its tiny models at
SEED = 0
# The instructor's plan for the live session, minutes per slide (a plan, not a measurement).
MINUTES = {"families": 4, "masks": 5, "objectives": 4, "training": 6, "swaps": 2, "rmsnorm": 3, "rope": 4,
           "swiglu": 3, "gqa": 4, "prenorm": 4, "params": 5, "recap": 1}  # fmt: skip


def _notes(d, key: str, say: str, ask: str) -> str:
    """Speaker notes: the planned minutes, what to say, and the question to ask before the checkpoint."""
    minutes = d.value(f"min_{key}", MINUTES[key], "{} min")
    return f"{minutes}. {say} Ask before running the checkpoint: {ask}"


def build(d) -> None:
    """Slides of module 01."""
    train_text, val_text = A.arch_text(PROFILE)
    vocab = A.CharVocab(train_text + val_text)
    models = {f: A.build_tiny(f, vocab, PROFILE.arch, PROFILE.arch.context, seed=SEED) for f in A.FAMILIES}
    _families_slide(d, models, vocab, train_text)
    _masks_slide(d, models, vocab, val_text)
    _objectives_slide(d, vocab, val_text)
    _training_slide(d, vocab, train_text)
    _swaps_slide(d)
    _rmsnorm_slide(d)
    _rope_slide(d)
    _swiglu_slide(d)
    _gqa_slide(d, models["llama"])
    _prenorm_slide(d)
    _params_slides(d)
    total = d.value("min_total", sum(MINUTES.values()), "{} min")
    minutes = d.value("min_recap", MINUTES["recap"], "{} min")
    d.run_table_slide(f"{minutes} ({total} for the deck). The run table of the course site has the same number. "
                      "Ask: which of today's numbers would change if we trained for longer?")  # fmt: skip


def _families_slide(d, models: dict, vocab: A.CharVocab, train_text: str) -> None:
    """Section 1: three families, four tiny models."""
    closed = {f: count_parameters(m.config).total for f, m in models.items()}
    built = {f: count_model_parameters(m) for f, m in models.items()}
    d.value("n_families", len(models))
    d.value("tiny_d", PROFILE.arch.d_model)
    d.value("tiny_layers", PROFILE.arch.n_layers)
    d.value("char_vocab", len(vocab))
    d.value("train_chars", len(train_text), "{:,}")
    d.value("tiny_min", min(built.values()), "{:,}")
    d.value("tiny_max", max(built.values()), "{:,}")
    d.value("n_match", sum(closed[f] == built[f] for f in models))
    rows = [[f, type(m).__name__, A.OBJECTIVES[f], f"{built[f]:,}"] for f, m in models.items()]
    d.slide(
        "Three families, four tiny models",
        [
            "encoder (BERT), encoder-decoder (T5), decoder (GPT-2, LLaMA): {n_families} models, {tiny_d} wide, "
            "{tiny_layers} layers (`ci` sizes)",
            "one character vocabulary of {char_vocab} symbols with `[MASK]` and sentinels; {train_chars} "
            "training characters of Shakespeare",
            "{tiny_min} to {tiny_max} parameters; the closed-form count equals the built model for all {n_match}",
        ],
        _notes(d, "families", "Same width and depth for every family: only masks and objectives differ.",
               "at equal width and depth, which family has the most parameters, and why?"),
        table=(["family", "class", "objective", "parameters"], rows),
    )  # fmt: skip


def _masks_slide(d, models: dict, vocab: A.CharVocab, val_text: str) -> None:
    """Section 2: attention masks, drawn and measured from the models."""
    n_src, n_tgt = 12, 8
    src, tgt = vocab.encode(val_text[:n_src])[None], vocab.encode(val_text[n_src : n_src + n_tgt])[None]
    drawn = {f: A.attention_masks(f, n_src, n_tgt) for f in A.FAMILIES}
    measured = {f: A.measured_masks(f, models[f], src, tgt if f == "t5" else None) for f in A.FAMILIES}
    same = sum(torch.equal(measured[f][k], m) for f in A.FAMILIES for k, m in drawn[f].items())
    panels = [("bert", "encoder self-attention"), ("gpt2", "decoder self-attention")]
    panels += [("llama", "decoder self-attention")] + [("t5", k) for k in drawn["t5"]]
    fig, axes = plt.subplots(1, len(panels), figsize=(12, 2.4))
    for ax, (family, name) in zip(axes, panels):
        A.draw_masks({name: measured[family][name]}, title=f"{family} (measured)", axes=[ax])
    d.value("n_same", same)
    d.value("n_attn", sum(len(m) for m in drawn.values()))
    d.value("gpt2_deps", int(measured["gpt2"]["decoder self-attention"].sum()))
    d.value("n_src", n_src)
    d.value("bert_deps", int(measured["bert"]["encoder self-attention"].sum()))
    d.slide(
        "Attention masks: who may look at whom",
        [
            "measured: replace input j, mark every output i that moves; equal to the drawn mask in "
            "{n_same} of {n_attn} attentions",
            "GPT-2 and LLaMA: {gpt2_deps} dependencies over {n_src} positions, `n(n+1)/2`: only the left",
            "BERT: all {bert_deps}; T5's decoder sees its own past and, through cross-attention, the whole source",
        ],
        _notes(d, "masks", "The masks are read off the untrained models: structure, not learning.",
               "change the last input token: which outputs of GPT-2 move? Of BERT?"),
        figure=fig,
    )  # fmt: skip


def _objectives_slide(d, vocab: A.CharVocab, val_text: str) -> None:
    """Section 3: three objectives on the same text."""
    gen = torch.Generator().manual_seed(SEED)
    example = vocab.encode(val_text[:48])[None]  # (1, 48)
    _, mlm_labels = A.mask_tokens(example, vocab, gen)
    t5_in, t5_target = A.span_corrupt(example, vocab, gen)
    d.value("mlm_p", inspect.signature(A.mask_tokens).parameters["p"].default, "{:.0%}")
    d.value("mlm_targets", int((mlm_labels != A.IGNORE).sum()))
    d.value("n_example", example.shape[1])
    d.value("t5_in", t5_in.shape[1])
    d.value("t5_tgt", t5_target.shape[1])
    d.value("t5_target_text", repr(vocab.decode(t5_target[0])))
    d.value("n_next", example.shape[1] - 1)
    d.slide(
        "Three objectives on the same text",
        [
            "masked LM (BERT): hide {mlm_p} of the tokens; here {mlm_targets} of {n_example} positions are targets",
            "span corruption (T5): input of {t5_in} tokens with sentinels, target of {t5_tgt}: {t5_target_text}",
            "next token (GPT-2, LLaMA): {n_next} targets, the input shifted by one",
        ],
        _notes(d, "objectives", "Per step BERT learns from the masked positions only; a decoder from every "
               "position.", "which objective gives the most training signal per sequence?"),
    )  # fmt: skip


def _training_slide(d, vocab: A.CharVocab, train_text: str) -> None:
    """Section 4: the lines a few seconds of training must cross (the training runs in the notebook)."""
    counts = Counter(train_text)
    unigram = -sum(c / len(train_text) * math.log(c / len(train_text)) for c in counts.values())
    char, top = counts.most_common(1)[0]
    slow = next(c for r in results_file("notebook_times_cpu")["rows"] if r["notebook"].startswith("01_")
                for c in r["slow_cells"])  # stored: the cpu run table's slow training cell  # fmt: skip
    arch = PROFILE.arch
    d.value("tiny_steps", arch.train_steps)
    d.value("tiny_batch", arch.batch_size)
    d.value("tiny_ctx", arch.context)
    d.value("unigram", unigram, "{:.2f}")
    d.value("ln_v", math.log(len(vocab)), "{:.2f}")
    d.value("top_char", repr(char))
    d.value("top_share", top / len(train_text), "{:.3f}")
    d.value("cpu_train_s", slow["seconds"], "{:.0f} s")
    d.slide(
        "A few seconds of training each, and what each model can do",
        [
            "{tiny_steps} steps each, batch {tiny_batch} x {tiny_ctx} characters, the same optimizer (`ci`)",
            "the line to cross: unigram entropy {unigram} nats; an untrained model starts near `ln(V)` = {ln_v}",
            "the accuracy bar: always guessing {top_char} scores {top_share}",
            "the `cpu` profile's training cell took {cpu_train_s} in the stored run table: `FAST_PATH` loads it",
        ],
        _notes(d, "training", "Expect the form (spaces, letter pairs, line breaks), not words, at `ci` scale.",
               "which family ends furthest below the unigram line, and why might BERT lag?"),
    )  # fmt: skip


def _swaps_slide(d) -> None:
    """Section 5: GPT-2 -> LLaMA, the five swaps."""
    swaps = [["LayerNorm", "RMSNorm", "no mean, no bias"],
             ["learned absolute positions", "RoPE", "scores depend on relative position only"],
             ["GELU MLP (4d)", "SwiGLU (about 8d/3, three matrices)", "better quality at equal parameters"],
             ["multi-head attention", "grouped-query attention", "smaller KV cache"],
             ["pre-norm (BERT: post-norm)", "pre-norm", "stable deep training without long warmup"]]  # fmt: skip
    gpt2 = known_config("gpt2")
    d.value("n_swaps", len(swaps))
    d.value("gpt2_total", count_parameters(gpt2).total, "{:,}")
    d.value("gpt2_pos", gpt2.n_positions * gpt2.n_embd, "{:,}")
    d.slide(
        "From GPT-2 to LLaMA, one change at a time",
        [
            "{n_swaps} component swaps, each checked numerically on the next slides",
            "GPT-2 small: {gpt2_total} parameters, {gpt2_pos} of them a learned position table; RoPE has none",
        ],
        _notes(d, "swaps", "The table is the roadmap of the next five slides.",
               "which of the swaps changes the parameter count the most?"),
        table=(["GPT-2 (2019)", "LLaMA (2023)", "why"], swaps),
    )  # fmt: skip


def _rmsnorm_slide(d) -> None:
    """Section 5.1: LayerNorm -> RMSNorm."""
    torch.manual_seed(SEED)
    x = torch.randn(4, 64) * 2 + 3  # (B, d): activations with a non-zero mean
    w = torch.ones(64)
    ln, rms = A.layer_norm(x, w, torch.zeros(64)), A.rms_norm(x, w, 1e-6)
    d.value("ln_mean", float(ln.mean()), "{:+.3f}")
    d.value("ln_rms", float(ln.pow(2).mean().sqrt()), "{:.3f}")
    d.value("rms_mean", float(rms.mean()), "{:+.3f}")
    d.value("rms_rms", float(rms.pow(2).mean().sqrt()), "{:.3f}")
    with torch.no_grad():
        d.value("rms_vs_hf", float((rms - LlamaRMSNorm(64, eps=1e-6)(x)).abs().max()), "{:.1e}")
    d.value("norm_d", 4096)
    d.value("ln_params", sum(p.numel() for p in torch.nn.LayerNorm(4096).parameters()), "{:,}")
    d.value("rms_params", sum(p.numel() for p in LlamaRMSNorm(4096).parameters()), "{:,}")
    d.slide(
        "LayerNorm → RMSNorm",
        [
            "LayerNorm output: mean {ln_mean}, rms {ln_rms}; RMSNorm keeps the mean ({rms_mean}), rms {rms_rms}",
            "ours equals transformers' `LlamaRMSNorm` (largest difference {rms_vs_hf})",
            "parameters per norm at d = {norm_d}: LayerNorm {ln_params}, RMSNorm {rms_params}",
        ],
        _notes(d, "rmsnorm", "No mean, no bias: cheaper, and as good in practice.",
               "what does RMSNorm do to a vector whose mean is far from zero?"),
    )  # fmt: skip


def _rope_slide(d) -> None:
    """Section 5.2: learned positions -> RoPE."""
    torch.manual_seed(SEED)
    q, k = torch.randn(64), torch.randn(64)
    wpe = torch.randn(1024, 64) * 0.3  # a GPT-2-style learned position table (random here)
    pairs = [(7, 3), (107, 103), (507, 503)]
    rope = [A.rope_score(q, k, m, n) for m, n in pairs]
    learned = [float((q + wpe[m]) @ (k + wpe[n])) for m, n in pairs]
    d.value("rope_dist", pairs[0][0] - pairs[0][1])
    d.value("n_pairs", len(pairs))
    d.value("rope_spread", max(rope) - min(rope), "{:.1e}")
    d.value("abs_spread", max(learned) - min(learned), "{:.2f}")
    rows = [[f"({m}, {n})", f"{r:.4f}", f"{a:.4f}"] for (m, n), r, a in zip(pairs, rope, learned)]
    d.slide(
        "Learned positions → RoPE",
        [
            "{n_pairs} query-key pairs, all at distance {rope_dist}: RoPE scores spread by {rope_spread}",
            "learned absolute positions: the same pairs spread by {abs_spread}",
        ],
        _notes(d, "rope", "RoPE rotates q and k by angles proportional to position: the score sees only m - n.",
               "shift both tokens a hundred positions right: which score stays the same?"),
        table=(["(m, n)", "RoPE score", "learned-position score"], rows),
    )  # fmt: skip


def _swiglu_slide(d) -> None:
    """Section 5.3: GELU MLP -> SwiGLU."""
    dm = 4096
    gelu, swi4 = A.mlp_params(dm, 4 * dm, "gelu"), A.mlp_params(dm, 4 * dm, "swiglu")
    hidden = A.swiglu_hidden(dm)
    d.value("mlp_d", dm)
    d.value("gelu_params", gelu, "{:,}")
    d.value("swi4_ratio", swi4 / gelu, "{:.2f}x")
    d.value("swi_hidden", hidden, "{:,}")
    d.value("l7_ff", known_config("llama-2-7b").intermediate_size, "{:,}")
    d.value("swi_ratio", A.mlp_params(dm, hidden, "swiglu") / gelu, "{:.3f}x")
    d.slide(
        "GELU MLP → SwiGLU",
        [
            "a GELU MLP at 4d (d = {mlp_d}): {gelu_params} parameters; SwiGLU at the same width costs {swi4_ratio}",
            "LLaMA's width `2/3 · 4d`, rounded up: {swi_hidden}, Llama-2-7B's intermediate size {l7_ff}",
            "at that width SwiGLU costs {swi_ratio} a GELU MLP",
        ],
        _notes(d, "swiglu", "Three matrices instead of two: LLaMA shrinks the width to keep the budget.",
               "why is Llama-2-7B's MLP width such an odd number?"),
    )  # fmt: skip


def _gqa_slide(d, tiny) -> None:
    """Section 5.4: multi-head -> grouped-query attention, the KV cache."""
    seq, gib = 4096, 2**30
    kv = {}
    for name in ("llama-2-7b", "llama-2-70b", "llama-3-8b"):
        cfg = known_config(name)
        heads = (cfg.num_attention_heads, cfg.num_key_value_heads)
        gqa = A.kv_cache_bytes(cfg, seq_len=seq) / gib  # bf16, one sequence
        cfg.num_key_value_heads = cfg.num_attention_heads
        kv[name] = (gqa, A.kv_cache_bytes(cfg, seq_len=seq) / gib, heads)
    fig, ax = plt.subplots(figsize=(6, 2.6))
    ax.barh([f"{n} as built" for n in kv] + [f"{n} as MHA" for n in kv], [v[0] for v in kv.values()] +
            [v[1] for v in kv.values()], color=["C0"] * len(kv) + ["C3"] * len(kv))  # fmt: skip
    ax.set_xlabel(f"KV cache (GiB), bf16, {seq} tokens")
    ax.invert_yaxis()
    g70, m70, (h70, k70) = kv["llama-2-70b"]
    d.value("kv_seq", seq, "{:,}")
    d.value("kv70", g70, "{:.2f} GiB")
    d.value("kv70_mha", m70, "{:.2f} GiB")
    d.value("h70", h70)
    d.value("k70", k70)
    d.value("kv7", kv["llama-2-7b"][0], "{:.2f} GiB")
    d.value("kv_meas", A.measured_kv_cache_bytes(tiny, seq_len=PROFILE.arch.context), "{:,}")
    d.value("kv_formula", A.kv_cache_bytes(tiny.config, PROFILE.arch.context, bytes_per_value=4), "{:,}")
    d.slide(
        "Multi-head → grouped-query attention: the KV cache",
        [
            "Llama-2-70B, {kv_seq} tokens: {h70} query heads share {k70} kv heads, {kv70} instead of {kv70_mha}",
            "Llama-2-7B is multi-head: {kv7} either way",
            "the tiny LLaMA's own cache: {kv_meas} bytes measured, {kv_formula} by formula",
        ],
        _notes(d, "gqa", "The cache is what limits batch size when serving long contexts.",
               "by what factor does Llama-2-70B's cache shrink, from its head counts alone?"),
        figure=fig,
    )  # fmt: skip


def _prenorm_slide(d) -> None:
    """Section 5.5: pre-norm vs post-norm, the last layer's gradient at initialisation."""
    depths = list(PROFILE.arch.prenorm_depths)
    grads = {name: [A.last_layer_grad_norm(n, pre_norm=pre, seed=SEED) for n in depths]
             for name, pre in (("pre-norm", True), ("post-norm", False))}  # fmt: skip
    fig, ax = plt.subplots(figsize=(5, 2.6))
    for name, values in grads.items():
        ax.plot(depths, values, marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.set(xlabel="number of blocks", ylabel="grad norm, last MLP weight")
    ax.legend()
    d.value("depth_lo", depths[0])
    d.value("depth_hi", depths[-1])
    d.value("pre_lo", grads["pre-norm"][0], "{:.3f}")
    d.value("pre_hi", grads["pre-norm"][-1], "{:.3f}")
    d.value("post_lo", grads["post-norm"][0], "{:.3f}")
    d.value("post_hi", grads["post-norm"][-1], "{:.3f}")
    d.slide(
        "Pre-norm",
        [
            "pre-norm, {depth_lo} to {depth_hi} blocks: the last layer's gradient falls from {pre_lo} to {pre_hi}",
            "post-norm: {post_lo} to {post_hi}, it stays large: training needs a careful warmup (Xiong et al.)",
        ],
        _notes(d, "prenorm", "Pre-norm leaves an identity path from the loss to every layer.",
               "which curve falls with depth, pre-norm's or post-norm's?"),
        figure=fig,
    )  # fmt: skip


def _params_slides(d) -> None:
    """Section 6: where the parameters live."""
    counts = {name: count_parameters(known_config(name)) for name in MODELS}
    meta = {name: count_model_parameters(build_on_meta(name)) for name in MODELS}
    fig, ax = plt.subplots(figsize=(9, 2.6))  # the figure is the table: every model's shares
    left = [0.0] * len(MODELS)
    for i, cat in enumerate(CATEGORIES[:5]):
        shares = [100 * counts[m].fractions()[cat] for m in MODELS]
        ax.barh(MODELS, shares, left=left, color=f"C{i}", label=cat)
        left = [a + b for a, b in zip(left, shares)]
    ax.set_xlabel("share of parameters (%)")
    ax.invert_yaxis()
    ax.legend(ncol=5, fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    gpt2, c = counts["gpt2"], known_config("gpt2")
    d.value("n_models", sum(counts[n].total == meta[n] for n in MODELS))
    d.value("llama7b_total", counts["llama-2-7b"].total, "{:,}")
    d.value("llama7b_meta", meta["llama-2-7b"], "{:,}")
    d.value("gpt2_emb_share", 100 * gpt2.fractions()["embeddings"], "{:.0f} %")
    d.value("llama7b_emb_share", 100 * counts["llama-2-7b"].fractions()["embeddings"], "{:.1f} %")
    d.value("l7_mlp", 100 * counts["llama-2-7b"].fractions()["mlp"], "{:.0f} %")
    d.value("kaplan_ratio", (gpt2.attention + gpt2.mlp) / (12 * c.n_layer * c.n_embd**2), "{:.3f}")
    d.slide(
        "Where the parameters live",
        [
            "Llama-2-7B: {llama7b_total} by formula, {llama7b_meta} on the meta device (equal for all {n_models} configs)",
            "embeddings are {gpt2_emb_share} of GPT-2 small but {llama7b_emb_share} of Llama-2-7B; its MLPs {l7_mlp}",
            "Kaplan's `12·L·d²` covers GPT-2's blocks: ratio {kaplan_ratio}",
        ],
        _notes(d, "params", "Closed-form counts from hand-written configs (the published config.json files), "
               "checked against models built on the meta device: nothing downloaded.",
               "how many parameters would Llama-2-7B save by tying its embeddings to the LM head?"),
        figure=fig,
    )  # fmt: skip
