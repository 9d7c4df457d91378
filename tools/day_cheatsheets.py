"""The cheat sheets, cheatsheets/NN_*.md: each module's formulas and the numbers worth remembering.

Every number is computed when the page is generated, by the package's calculators or read from
data/published (a published figure cites its source); the run tables add each module's measured headline.
It is built from tools/build_day.py's prose helpers (`t` records every template for the digit lint), so it
is imported through build_day, which re-exports `Fact`, `cheat_facts` and `cheat_sheet`.
"""

from __future__ import annotations

from dataclasses import dataclass

from day_text import GENERATED, TITLES, RunTable, count, nb_link, num, t

from workshop_utils import day, published
from workshop_utils.config import BUDGET_SECONDS


def digits(fig: published.Figure) -> int:
    """Significant digits a published number carries (its `printed` text, else its stored value)."""
    mantissa = (fig.printed or f"{fig.value:.15g}").lower().split("e")[0].lstrip("+-")
    sig = mantissa.replace(".", "").lstrip("0")
    return max(len(sig if "." in mantissa else sig.rstrip("0")), 1)


def as_printed(fig: published.Figure) -> str:
    """A published number to the digits its source prints."""
    return count(fig.value) if isinstance(fig.value, int) else num(fig.value, digits(fig))


def cite(fig: published.Figure) -> str:
    """Where a published figure comes from: its source, status and key in data/published."""
    return f"{fig.source} [{fig.status}; `{fig.file}/{fig.key}`]"


@dataclass(frozen=True)
class Fact:
    """A number worth remembering: what it is, its value, how it reads, the call that computed it, its source."""

    key: str
    what: str
    value: float
    shown: str
    how: str
    source: str = ""


def fact(key: str, what: str, value: float, how: str, shown: str | None = None, source: str = "") -> Fact:
    """A computed number (shown with `num` unless `shown` is given)."""
    return Fact(key, t(what), float(value), num(value) if shown is None else shown, t(how), source)


def vs(
    key: str, what: str, value: float, how: str, file: str, fkey: str, scale: float = 1.0, fmt=num
) -> Fact:
    """A computed number beside the published figure it reproduces (`scale` divides the figure into `value`'s unit)."""
    fig = published.figure(file, fkey)
    shown = (num(value, max(3, digits(fig))) if fmt is num else fmt(value)) + t(
        " (published: {p})", p=as_printed(fig) if scale == 1 else num(fig.value / scale)
    )
    return Fact(key, t(what), float(value), shown, t(how), cite(fig))


def pub(key: str, what: str, file: str, fkey: str, unit: str = "") -> Fact:
    """A published figure, read through `published`."""
    fig = published.figure(file, fkey)
    how = t("`published.value({file}, {fkey})`", file=f'"{file}"', fkey=f'"{fkey}"')
    return Fact(key, t(what), float(fig.value), f"{as_printed(fig)}{unit}", how, cite(fig))


def headline(n: int, cpu: RunTable, ci: RunTable) -> list[Fact]:
    """The module's headline metric from each run table (measured; its row's date)."""
    out = []
    for table in (cpu, ci):
        row = table.rows.get(day.NOTEBOOKS[n])
        if row and row["metric"]:
            m = row["metric"]
            what = t(
                "{name}, {profile} run (measured {date})",
                name=m["name"],
                profile=table.profile,
                date=row["date"],
            )
            out.append(Fact(f"headline_{table.profile}", what, float(m["value"]), f"{num(m['value'])} {m['unit']}".strip(),
                            t("`{path}`", path=table.path), t("measured: the run table")))  # fmt: skip
    return out


FORMULAS: dict[int, tuple[str, ...]] = {
    0: ("Matmul work: $2n^3$ FLOPs for an $n \\times n$ by $n \\times n$ product; speed = FLOPs / seconds.",
        "Precision rule (`workshop_utils.device`): CUDA Ampere or newer → bf16 autocast; older CUDA (T4) → fp16 "
        "autocast + `GradScaler`; CPU → fp32."),
    1: ("LLaMA layer: attention $2d^2 + 2d \\, n_{kv} d_{head}$ (q, o and the k, v of the kv heads), SwiGLU MLP "
        "$3 d \\, d_{ff}$, two RMSNorm scales $2d$; embeddings $Vd$, untied LM head another $Vd$.",
        "KV cache per token: $2 \\cdot L \\cdot n_{kv} \\cdot d_{head} \\cdot$ bytes per value.",
        "Masks: BERT sees both sides, GPT and LLaMA are causal, T5 encodes both sides and decodes causally."),
    2: ("Jaccard: $J(A, B) = |A \\cap B| \\, / \\, |A \\cup B|$ over word shingles.",
        "MinHash + LSH, $b$ bands of $r$ rows: $P(\\text{candidate} \\mid s) = 1 - (1 - s^r)^b$ (the S-curve).",
        "Every record is accounted for: in = kept + removed by each stage."),
    3: ("Next-token loss: $\\mathcal{L} = -\\frac{1}{T}\\sum_t \\log p(x_t \\mid x_{<t})$; perplexity "
        "$= e^{\\mathcal{L}}$.",
        "Training FLOPs per token: $6N + 12 L d T$ (PaLM App. B); whole run: $C \\approx 6ND$.",
        "MFU = tokens/s × FLOPs per token / peak FLOP/s."),
    4: ("Model states with mixed-precision AdamW: $(2 + 2 + 12)\\Psi$ bytes (fp16 weights and grads, fp32 master, "
        "m and v).",
        "Activations per layer (Korthikanti et al. 2022): $sbh(34 + 5as/h)$ bytes; full recomputation keeps "
        "$2sbh$.",
        "fp16 needs loss scaling (small gradients underflow); bf16 has fp32's range."),
    5: ("Per-device model states, $K$ optimizer bytes per parameter over $N_d$ ranks: DDP $(2+2+K)\\Psi$; "
        "ZeRO-1 $4\\Psi + K\\Psi/N_d$; ZeRO-2 $2\\Psi + (2+K)\\Psi/N_d$; ZeRO-3 $(2+2+K)\\Psi/N_d$.",
        "Traffic per step (ZeRO §7): $2\\Psi$ for DDP, ZeRO-1 and ZeRO-2; $3\\Psi$ for ZeRO-3."),
    6: ("Loss law: $L(N, D) = E + A/N^\\alpha + B/D^\\beta$; compute $C \\approx 6ND$.",
        "Frontier: $N_{opt} = G (C/6)^a$, $D_{opt} = G^{-1} (C/6)^b$ with $a = \\beta/(\\alpha+\\beta)$, "
        "$b = \\alpha/(\\alpha+\\beta)$, $G = (\\alpha A / \\beta B)^{1/(\\alpha+\\beta)}$."),
    7: ("SFT loss on the response tokens $R$ only: $\\mathcal{L} = -\\frac{1}{|R|}\\sum_{t \\in R} "
        "\\log p(x_t \\mid x_{<t})$; prompt labels are `IGNORE_INDEX`.",
        "Packing without cross-attention masks lets examples see each other: contamination."),
    8: ("LoRA: $h = W_0 x + \\frac{\\alpha}{r} B A x$, $r (d_{in} + d_{out})$ trainable parameters per matrix; "
        "merged: $W = W_0 + \\frac{\\alpha}{r} BA$.",
        "NF4 storage: $N (4 + 32/B_1)/8$ bytes; with double quantisation $N (4 + 8/B_1 + 32/(B_1 B_2))/8$."),
    9: ("GPU-hours $= D \\cdot F / (\\text{peak} \\cdot \\text{MFU} \\cdot 3600)$ with $F = 6N$ per token for full "
        "training, $4N + 6N_{adapter}$ for LoRA.",
        "Compute-optimal tokens for $N$: the $C$ with $N_{opt}(C) = N$, then $D = C / 6N$ (module 06's law)."),
}  # fmt: skip


def _facts_0() -> list[Fact]:
    """Module 00: budgets and the matmul probe."""
    from workshop_utils.config import get_profile

    n = get_profile("cpu").setup.matmul_n
    budgets = " · ".join(f"{p} {s} s" for p, s in BUDGET_SECONDS.items())
    return [fact("budgets", "Budget per notebook by profile", BUDGET_SECONDS["cpu"], "`config.BUDGET_SECONDS`", budgets),
            fact("probe_n", "Matmul probe size, cpu profile", n, "`get_profile(\"cpu\").setup.matmul_n`"),
            fact("probe_flops", "FLOPs of one probe", 2 * n**3, "`2 * n**3`")]  # fmt: skip


def _facts_1() -> list[Fact]:
    """Module 01: parameter counts and the KV cache."""
    from workshop_utils.memory import kv_cache_bytes, resolve_model
    from workshop_utils.params import count_parameters, known_config

    c7, how = count_parameters(known_config("llama-2-7b")), "`count_parameters(known_config({m})).total`"
    out = [vs("llama2_7b_params", "Llama-2-7B parameters", c7.total, t(how, m='"llama-2-7b"'), "pretraining", "llama2_7b_params", fmt=count),
           fact("llama2_7b_mlp_share", "Share of Llama-2-7B in its MLPs", 100 * c7.mlp / c7.total, "`ParamBreakdown.mlp / total`", f"{num(100 * c7.mlp / c7.total)} %")]  # fmt: skip
    for name, label, key in (
        ("llama-2-70b", "Llama-2-70B", "llama2_70b_params"),
        ("gpt2", "GPT-2 small", "gpt2_params"),
        ("bert-base", "BERT-base", "bert_base_params"),
    ):
        out.append(vs(key, t("{name} parameters", name=label), count_parameters(known_config(name)).total,
                      t(how, m=f'"{name}"'), "pretraining", key, fmt=count))  # fmt: skip
    for name in ("llama-2-7b", "llama-2-70b"):
        b = kv_cache_bytes(resolve_model(name), 1, 1)
        out.append(fact(f"kv_{name}", t("KV cache per token, {name}, 16-bit", name=name), b,
                        "`kv_cache_bytes(resolve_model(name), 1, 1)`", f"{count(b)} B ({num(b / 2**10)} KiB)"))  # fmt: skip
    ctx = known_config("llama-2-7b").max_position_embeddings
    b = kv_cache_bytes(resolve_model("llama-2-7b"), 1, ctx)
    out.append(fact("kv_7b_context", t("KV cache of one full {ctx}-token context, llama-2-7b", ctx=count(ctx)), b / 1e9,
                    "`kv_cache_bytes(arch, 1, max_position_embeddings)`", f"{num(b / 1e9)} GB"))  # fmt: skip
    return out


def _facts_2() -> list[Fact]:
    """Module 02: the S-curve at FineWeb's settings, the mixture, the filters."""
    from scipy.optimize import brentq

    from workshop_utils.data.dedup import s_curve

    mh = published.group("data_pipeline", "fineweb_minhash")
    b, r = mh["bands"].value, mh["rows"].value
    out = [fact("fineweb_bands_rows", "FineWeb MinHash: bands × rows (hashes)", b * r, "`published.group(\"data_pipeline\", \"fineweb_minhash\")`",
                f"{b} × {r} = {b * r}, word {mh['ngrams'].value}-grams", cite(mh["bands"]))]  # fmt: skip
    for s in published.group("data_pipeline", "fineweb_match"):
        out.append(vs(f"s_curve_{s}", t("Candidate probability at Jaccard {s}", s=s), s_curve(float(s), b, r),
                      "`dedup.s_curve(s, bands, rows)`", "data_pipeline", f"fineweb_match/{s}"))  # fmt: skip
    half = brentq(lambda s: s_curve(s, b, r) - 0.5, 0.01, 0.99)
    what = "Jaccard at which the candidate probability is one half"
    out.append(fact("s_curve_half", what, half, "`brentq(s_curve - 0.5)`"))
    mix = published.group("data_pipeline", "llama_table1")
    shares = " · ".join(
        f"{k.split('/')[0]} {num(100 * f.value, 2)} %" for k, f in mix.items() if k.endswith("/proportion")
    )
    out.append(Fact("llama_mix", t("LLaMA's sampling proportions"), 1.0, shares, t("`published.group(\"data_pipeline\", \"llama_table1\")`"),
                    cite(mix["CommonCrawl/proportion"])))  # fmt: skip
    out += [pub("lang_threshold", "fastText language score to keep a page", "data_pipeline", "language_threshold"),
            pub("refinedweb_removed", "Share of documents RefinedWeb removes", "data_pipeline", "refinedweb_removed")]  # fmt: skip
    return out


def _facts_3(cpu: RunTable) -> list[Fact]:
    """Module 03: bytes, 6ND of Llama-2-7B, MFU, PF-days."""
    from workshop_utils.bpe import gpt2_bytes_to_unicode
    from workshop_utils.config import get_profile
    from workshop_utils.scale import llama2_runs, pf_days

    run = llama2_runs()[0]
    out = [fact("byte_alphabet", "Byte-level BPE's base alphabet (tokens)", len(gpt2_bytes_to_unicode()), "`len(gpt2_bytes_to_unicode())`"),
           fact("vocab_cpu", "Course tokenizer vocabulary, cpu profile", get_profile("cpu").lm.vocab_size, "`get_profile(\"cpu\").lm.vocab_size`"),
           vs("llama2_7b_6nd", "Llama-2-7B pre-training compute, 6ND (FLOPs)", run.train_flops, "`scale.llama2_runs()[0].train_flops`", "pretraining", "llama2_6nd/7B/flops"),
           vs("llama2_7b_tflops", "… sustained per A100 (TFLOP/s)", run.flops_per_gpu / 1e12, "`run.flops_per_gpu / 1e12`", "pretraining", "llama2_6nd/7B/tflops_per_gpu"),
           vs("llama2_7b_mfu", "… its MFU", run.mfu, "`run.mfu`", "pretraining", "llama2_6nd/7B/mfu"),
           pub("a100_peak", "A100 bf16 dense peak (TFLOP/s)", "hardware", "a100-80gb/peak_tflops"),
           vs("gpt3_pf_days", "GPT-3's compute in PF-days", pf_days(published.value("pretraining", "gpt3_train_flops")), "`scale.pf_days(gpt3_train_flops)`", "pretraining", "gpt3_pf_days")]  # fmt: skip
    row = cpu.rows.get(day.NOTEBOOKS[3])
    if row and row["metric"]:
        from workshop_utils.sft import perplexity

        out.append(fact("perplexity_cpu", "Perplexity of the cpu run's validation loss", perplexity(row["metric"]["value"]), "`sft.perplexity(loss)`"))  # fmt: skip
    return out


def _facts_4() -> list[Fact]:
    """Module 04: bytes per parameter, the 7B bill, number formats."""
    from workshop_utils.memory import estimate_memory, korthikanti_layer_bytes, zero_model_states_bytes
    from workshop_utils.params import known_config
    from workshop_utils.precision import format_info

    seq = known_config("llama-2-7b").max_position_embeddings
    full = estimate_memory("llama-2-7b", batch=1, seq=seq)
    ckpt = estimate_memory("llama-2-7b", batch=1, seq=seq, checkpointing="full")
    s, h, a = (published.value("pretraining", k) for k in ("gpt3_context", "gpt3_d_model", "gpt3_heads"))
    f16, b16 = format_info("fp16"), format_info("bf16")
    return [vs("bytes_per_param", "Model-state bytes per parameter, mixed-precision AdamW", zero_model_states_bytes(1, 0, 1), "`zero_model_states_bytes(1, 0, 1)`", "memory", "zero_bytes_per_param"),
            fact("llama2_7b_states", "Llama-2-7B model states (GB)", full.model_states / 1e9, "`estimate_memory(\"llama-2-7b\").model_states`"),
            fact("llama2_7b_total", t("Llama-2-7B training, batch one × {seq} tokens, no checkpointing (GB)", seq=count(seq)), full.total / 1e9, "`estimate_memory(\"llama-2-7b\", batch=1, seq=seq).total`"),
            fact("llama2_7b_ckpt", "… with full activation checkpointing (GB)", ckpt.total / 1e9, "`estimate_memory(..., checkpointing=\"full\").total`"),
            vs("gpt3_layer_act", "GPT-3 activations per layer, one sequence (GB)", korthikanti_layer_bytes(s, 1, h, a) / 1e9, "`korthikanti_layer_bytes(s, 1, h, a)`", "memory", "korthikanti_gpt3_layer/none", 1e9),
            fact("fp16_range", "fp16: largest value · smallest normal", f16.max, "`format_info(\"fp16\")`", f"{num(f16.max, 5)} · {num(f16.min_normal)}"),
            fact("bf16_range", "bf16: largest value · machine epsilon", b16.max, "`format_info(\"bf16\")`", f"{num(b16.max)} · {num(b16.eps)}")]  # fmt: skip


def _facts_5() -> list[Fact]:
    """Module 05: ZeRO's worked example and traffic."""
    from workshop_utils.distributed.comm import zero_comm_volume_elements
    from workshop_utils.memory import zero_model_states_bytes

    w = published.group("memory", "zero_worked")
    psi, n_d = int(w["psi"].value), int(w["n_d"].value)
    out = [vs(f"zero_stage{k}", t("ZeRO stage {k}, {psi} parameters on {n} ranks (GB per device)", k=k, psi=as_printed(w["psi"]), n=n_d),
              zero_model_states_bytes(psi, k, n_d) / 1e9, t("`zero_model_states_bytes(psi, {k}, n_d)`", k=k), "memory", f"zero_worked/stage{k}")
           for k in range(4)]  # fmt: skip
    ratio = zero_comm_volume_elements(psi, 3) / zero_comm_volume_elements(psi, 0)
    traffic = fact(
        "zero3_traffic", "ZeRO-3 traffic over DDP's", ratio, "`zero_comm_volume_elements`", f"{num(ratio)}×"
    )
    return [*out, traffic]


def _facts_6() -> list[Fact]:
    """Module 06: the law's constants, the frontier, Table 3's tokens per parameter."""
    from workshop_utils.scale import LLAMA2_PARAMS
    from workshop_utils.scaling import (
        CHINCHILLA_ROUNDED,
        CHINCHILLA_TABLE3,
        CHINCHILLA_TEX,
        table3_check,
        tokens_per_param,
        training_flops,
    )

    law, tex = CHINCHILLA_ROUNDED, CHINCHILLA_TEX
    consts = ", ".join(
        f"{k} = {as_printed(f)}" for k, f in published.group("scaling", "chinchilla_rounded").items()
    )
    tpp = [r["tokens if 6ND = C"] / n if not r["consistent"] else r["tokens/param"]
           for r, (_, n, _, _) in zip(table3_check(), CHINCHILLA_TABLE3)]  # fmt: skip
    t1 = published.group("scaling", "chinchilla_table1")
    budget = published.value("scaling", "gopher_budget")
    n_opt = tex.n_opt(budget)
    return [Fact("law", t("Chinchilla's fitted constants (printed)"), law.E, consts, t("`scaling.CHINCHILLA_ROUNDED`"), cite(published.figure("scaling", "chinchilla_rounded/E"))),
            vs("exponent_a", "Exponent a of N_opt ∝ C^a (printed constants)", law.a, "`CHINCHILLA_ROUNDED.a`", "scaling", "frontier/rounded/a"),
            vs("table3_min", "Table 3 tokens per parameter, smallest", min(tpp), "`table3_check()`: D/N, the inconsistent 67B row at 6ND = C", "scaling", "table3_tokens_per_param/min"),
            vs("table3_max", "Table 3 tokens per parameter, largest", max(tpp), "`max(...)`", "scaling", "table3_tokens_per_param/max"),
            vs("chinchilla_6nd", "Chinchilla's compute, 6ND (FLOPs)", training_flops(t1["Chinchilla/params"].value, t1["Chinchilla/tokens"].value), "`training_flops(N, D)`", "scaling", "chinchilla_6nd"),
            vs("n_opt_gopher", "N_opt at Gopher's budget, TeX-precision law (parameters)", n_opt, "`CHINCHILLA_TEX.n_opt(gopher_budget)`", "scaling", "frontier/tex/n_opt"),
            vs("tpp_gopher", "… its tokens per parameter", tex.d_opt(budget) / n_opt, "`d_opt / n_opt`", "scaling", "frontier/tex/tokens_per_param"),
            fact("llama2_7b_tpp", "Llama-2-7B's tokens per parameter (over-trained)", tokens_per_param(LLAMA2_PARAMS["7B"], published.value("pretraining", "llama2_tokens")), "`tokens_per_param(N, D)`")]  # fmt: skip


def _facts_7() -> list[Fact]:
    """Module 07: the loss mask, the roles, the task families, Alpaca's scale."""
    from workshop_utils import sft
    from workshop_utils.planner.inputs import fig

    tokens = fig("alpaca_examples") * fig("alpaca_epochs") * fig("alpaca_max_length")
    return [fact("ignore_index", "Label of a masked (prompt or padding) token", sft.IGNORE_INDEX, "`sft.IGNORE_INDEX`", str(sft.IGNORE_INDEX)),
            fact("roles", "Chat roles", len(sft.VALID_ROLES), "`sft.VALID_ROLES`", ", ".join(sft.VALID_ROLES)),
            fact("families", "Instruction task families (training)", len(sft.FAMILIES), "`sft.FAMILIES`", ", ".join(sft.FAMILIES)),
            fact("alpaca_tokens", "Alpaca's fine-tuning tokens, examples × epochs × max length (an upper bound)", tokens, "`planner.inputs.fig(...)` product",
                 source=cite(published.figure("planning", "alpaca_examples")))]  # fmt: skip


def _facts_8() -> list[Fact]:
    """Module 08: LoRA counts, QLoRA's constants and storage, fine-tuning memory."""
    from workshop_utils.lora import TARGET_SETS, lora_paper_count, lora_parameter_count
    from workshop_utils.params import build_on_meta
    from workshop_utils.quant import constant_bits_per_param, finetune_memory_rows, storage_bytes

    # the ranks of fine_tuning.json lora_llama2_7b_r8_qv / lora_gpt3_r4
    model, r7, r3 = build_on_meta("llama-2-7b"), 8, 4
    n7 = sum(p.numel() for p in model.parameters())
    lora7 = lora_parameter_count(model, r7, TARGET_SETS["q,v"])
    gpt3 = [published.value("pretraining", k) for k in ("gpt3_layers", "gpt3_d_model")]
    n65, rows = published.value("fine_tuning", "qlora_model_params"), finetune_memory_rows()
    r, alpha = published.value("fine_tuning", "qlora_r"), published.value("fine_tuning", "qlora_alpha")
    return [vs("lora_7b_r8", t("LoRA r = {r} on q, v of Llama-2-7B (parameters)", r=r7), lora7, "`lora_parameter_count(model, r, TARGET_SETS[\"q,v\"])`", "fine_tuning", "lora_llama2_7b_r8_qv_trainable", fmt=count),
            fact("lora_7b_share", "… share of the model", 100 * lora7 / n7, "`lora7 / n_params`", f"{num(100 * lora7 / n7)} %"),
            vs("lora_gpt3_r4", t("LoRA r = {r} on q, v of GPT-3 (parameters)", r=r3), lora_paper_count(r3, *gpt3), "`lora_paper_count(r, layers, d_model)`", "fine_tuning", "lora_gpt3_r4_trainable", fmt=count),
            fact("qlora_scale", "QLoRA's adapter scale alpha / r", alpha / r, "`qlora_alpha / qlora_r`", source=cite(published.figure("fine_tuning", "qlora_r"))),
            vs("nf4_const", "NF4 scale overhead (bits per parameter)", constant_bits_per_param(), "`constant_bits_per_param()`", "fine_tuning", "qlora_constant_bits"),
            vs("nf4_dq_const", "… with double quantisation", constant_bits_per_param(double=True), "`constant_bits_per_param(double=True)`", "fine_tuning", "qlora_dq_constant_bits"),
            vs("nf4_65b", "A 65B model in NF4 (GB)", storage_bytes(n65, double=False) / 1e9, "`storage_bytes(n, double=False)`", "fine_tuning", "qlora_65b_nf4_storage"),
            vs("nf4_dq_65b", "… with double quantisation (GB)", storage_bytes(n65, double=True) / 1e9, "`storage_bytes(n, double=True)`", "fine_tuning", "qlora_65b_nf4_dq_storage"),
            fact("ft_7b", "LLaMA-7B full fine-tune vs QLoRA, model states (GB)", rows[0]["qlora"], "`quant.finetune_memory_rows()[0]`",
                 f"{num(rows[0]['full_ft_16bit'])} vs {num(rows[0]['qlora'])}")]  # fmt: skip


def _facts_9() -> list[Fact]:
    """Module 09: the planner's MFUs, GPU-hours on another GPU, LoRA's compute, Chinchilla tokens."""
    from workshop_utils.hardware import gpu
    from workshop_utils.planner import calculators as calc
    from workshop_utils.scale import LLAMA2_PARAMS

    n, d = LLAMA2_PARAMS["7B"], published.value("pretraining", "llama2_tokens")
    a = calc.Assumptions()
    mfu, adapter = a.pretrain_mfu, calc.adapter_params("llama-2-7b", a.lora_r, a.lora_targets)
    share = calc.training_flops_per_token(n, "lora", adapter) / calc.training_flops_per_token(n, "full")
    return [fact("pretrain_mfu", "Pre-training MFU the planner assumes (Llama-2-7B's)", mfu, "`Assumptions().pretrain_mfu`"),
            fact("finetune_mfu", "Fine-tuning MFU it assumes (Alpaca's, an upper bound)", a.finetune_mfu, "`Assumptions().finetune_mfu`"),
            fact("h100_hours", "Llama-2-7B's pre-training on H100s at that MFU (GPU-hours)", calc.gpu_hours(n, d, "full", gpu("h100-80gb"), mfu), "`gpu_hours(N, D, \"full\", gpu(\"h100-80gb\"), mfu)`"),
            fact("lora_flops_share", t("LoRA (r = {r}, {targets}) compute per token over full training", r=a.lora_r, targets=a.lora_targets), share, "`training_flops_per_token`"),
            fact("chinchilla_tokens_7b", "Compute-optimal tokens per parameter for Llama-2-7B (TeX-precision law)", calc.chinchilla_tokens(n) / n, "`chinchilla_tokens(N) / N`")]  # fmt: skip


def cheat_facts(cpu: RunTable, ci: RunTable) -> dict[int, list[Fact]]:
    """Every module's numbers worth remembering, computed now (the run tables' headlines last)."""
    makers = {0: _facts_0, 1: _facts_1, 2: _facts_2, 3: lambda: _facts_3(cpu), 4: _facts_4, 5: _facts_5,
              6: _facts_6, 7: _facts_7, 8: _facts_8, 9: _facts_9}  # fmt: skip
    return {n: [*make(), *headline(n, cpu, ci)] for n, make in makers.items()}


def cheat_sheet(n: int, facts: list[Fact]) -> str:
    """cheatsheets/NN_*.md: formulas and numbers of one module."""
    out = [t("# {nn} · {title}: cheat sheet", nn=f"{n:02d}", title=TITLES[n]), "", f"> {GENERATED}",
           "", t("The notebook: {link}. Every number below was computed by the call beside it when this page was "
                 "generated; a published figure cites its source.", link=nb_link(n, "../")),
           "", "## Formulas", "", *(f"- {t(f)}" for f in FORMULAS[n]),
           "", "## Numbers worth remembering", "", t("| what | value | computed by | source |"), "|---|---|---|---|"]  # fmt: skip
    out += [f"| {f.what} | {f.shown} | {f.how} | {f.source} |" for f in facts]
    return "\n".join([*out, ""])
