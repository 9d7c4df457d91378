"""Deck 07 · Supervised fine-tuning: from next-token predictor to instruction follower."""

from __future__ import annotations

import matplotlib.pyplot as plt

from workshop_utils import chat, finetune_report, sft, sft_lessons, sft_lessons_report, stats
from workshop_utils.config import get_profile
from workshop_utils.device import generator, pick_device
from workshop_utils.models import load_course_model
from workshop_utils.tokenizer import load_course_tokenizer

# The instructor's plan, not a measurement: minutes per notebook section, and the question to ask the room
# before running that section's checkpoint.
# fmt: off
PLAN = {  # key: (minutes, question before the checkpoint, remark for the speaker)
    "data": (4, "How could the same task sit in train and test without the same wording?",
             "Splits are disjoint by family and input, not by wording. Generated from the course corpus and simple rules, so exact match is a fair metric."),
    "template": (6, "Which tokens of this chat should the loss see, and why the end token too?",
                 "The template's generation block is what Hugging Face and TRL read the mask from; the end token is trained so the model learns to stop."),
    "base": (3, "What will a model that has only read Shakespeare answer to a question?",
             "Greedy decoding of the `ci` course model, computed while the deck builds."),
    "sft": (5, "How much exact match do you expect after a few minutes of SFT, and on which families?",
            "{study_label}. The notebook trains live and prints exact match per family."),
    "pretrain": (4, "Does a random initialisation learn these tasks as well, given the same data and steps?",
                 "The tasks are built from the plays, so a model that read them knows every token involved."),
    "mask": (4, "Will a loss on the prompt too help or hurt exact match, by more than the noise?",
             "With {per_family} test examples per family, a few points of exact match are noise."),
    "pack": (4, "In one packed row, what stops example two from attending to example one?",
             "No attention mask and no KV cache: that is when transformers derives the mask from the positions."),
    "trl": (4, "Same data, same schedule: should TRL's loss curve equal ours to the last digit?",
            "Close, not equal: the two shuffle differently, so the checkpoint's margin is loose."),
    "history": (5, "Does a model tuned on four tasks answer the fifth, never trained, better than the base?",
                "Stored lessons, {seeds} seeds, loss on the answer's words: {lessons_label}. FLAN measured transfer at 137B; we measure it on a tiny model."),
    "cpt": (5, "Will reading more Python docs make the model follow instructions?",
            "CPT changes what the model knows, not what it does with an instruction: the notebook's short live CPT leaves exact match near zero."),
    "imitation": (5, "Can a student trained on a teacher's answers beat the teacher?",
                  "Gudibande et al.: students copy the style far better than the capability."),
    "gpu": (2, "What changes when the base is a real hub model of a hundred million parameters?",
            "Skip it in a CPU session; the same loader opens any local `save_pretrained` folder."),
    "recap": (5, "Which of these lessons would change how your team fine-tunes?",
              "Then the exercises. The module is planned at {min_total}."),
}
# fmt: on


def _notes(d, key: str) -> str:
    """Speaker notes from PLAN: the planned minutes, the question to ask before the checkpoint, the remark."""
    minutes, question, remark = PLAN[key]
    ask = "Recap, then ask" if key == "recap" else "Ask before the checkpoint"
    return f"{d.value(f'min_{key}', minutes, '{} min')}. {ask}: {question} {remark}".strip()


def build(d) -> None:
    """Slides of module 07, one per notebook section."""
    profile = get_profile("ci")
    splits = sft.make_sft_splits(profile, seed=0)
    tokenizer = load_course_tokenizer(profile)
    study = finetune_report.load_study(get_profile("cpu"), allow_other_base=True)
    lessons = sft_lessons_report.load_lessons(allow_other_base=True)
    d.value("study_label", finetune_report.stored_label(study))
    d.value("lessons_label", finetune_report.stored_label(lessons, "lessons"))
    d.value("seeds", len(sft_lessons.SEEDS))
    _data_slide(d, splits)
    _template_slide(d, splits, tokenizer)
    _base_slide(d, profile, splits, tokenizer, study)
    _sft_slide(d, profile, study)
    _pretrain_slide(d, study)
    _mask_slide(d, profile, splits, tokenizer)
    _packing_slide(d, profile, splits, tokenizer)
    _trl_slide(d, profile, splits, tokenizer)
    _history_slide(d, splits, tokenizer, lessons)
    _cpt_slide(d, lessons)
    _imitation_slide(d, lessons)
    _gpu_slide(d, profile)
    d.value("min_total", sum(m for m, _, _ in PLAN.values()), "{} min")
    d.run_table_slide(_notes(d, "recap"))


def _data_slide(d, splits: sft.SFTSplits) -> None:
    """§1: generated instruction data, split without leakage."""
    d.value("n_families", len(sft.FAMILIES))
    d.value("families", ", ".join(sft.FAMILIES))
    d.value("n_train", len(splits.train), "{:,}")
    d.value("n_test", len(splits.test), "{:,}")
    d.value("n_overlap", sum(sft.check_no_leakage(splits).values()))
    ex = splits.train[0]
    d.value("example", f"{ex.instruction} -> {ex.answer}")
    d.slide(
        "Instruction data, generated",
        [
            "{n_families} task families: {families}",
            "`ci` profile: {n_train} training and {n_test} test examples, {n_overlap} shared between splits",
            "e.g. {example}",
        ],
        _notes(d, "data"),  # fmt: skip
    )


def _template_slide(d, splits: sft.SFTSplits, tokenizer) -> None:
    """§2: the chat template, and which tokens carry the loss (one turn and several)."""
    prompt, response = sft.chat_prompt_and_response(splits.train[0].messages(), tokenizer)
    labels = sft.tokenize_prompt_and_output([prompt], [response], tokenizer)["labels"][0]
    conversation = [*splits.train[0].messages(), *splits.train[1].messages(system=None),
                    *splits.train[2].messages(system=None)]  # fmt: skip
    mt, hf = (
        chat.multi_turn_features(conversation, tokenizer),
        chat.hf_assistant_mask(conversation, tokenizer),
    )
    trained = mt["labels"] != chat.IGNORE_INDEX
    d.value("ignore", sft.IGNORE_INDEX)
    d.value("n_prompt", int((labels == sft.IGNORE_INDEX).sum()))
    d.value("n_resp", int((labels != sft.IGNORE_INDEX).sum()))
    d.value("n_msgs", len(conversation))
    d.value("n_turns", sum(m["role"] == "assistant" for m in conversation))
    d.value("mt_loss", int(trained.sum()))
    d.value("mt_tokens", len(mt["input_ids"]))
    d.value("mt_same", "equal" if bool((trained == hf["mask"]).all()) else "different")
    d.slide(
        "The chat template: which tokens carry the loss",
        [
            "chat template: system, user, assistant turns with role tokens; the prompt ends in `<|assistant|>`",
            "one chat: {n_prompt} prompt tokens get the label {ignore}; {n_resp} answer tokens, `<|end|>` included, carry the loss",
            "{n_msgs} messages, {n_turns} assistant turns: {mt_loss} of {mt_tokens} tokens trained; mask {mt_same} to the template's own",
        ],
        _notes(d, "template"),  # fmt: skip
    )


def _base_slide(d, profile, splits: sft.SFTSplits, tokenizer, study: dict) -> None:
    """§3: the base model, asked a question, continues the text."""
    ex = splits.test[0]
    chat_out, plain_out = sft.generate_responses(load_course_model(profile), tokenizer, [ex.messages(), ex.instruction],
                                                 pick_device(force_cpu=True), 12)  # fmt: skip
    base = finetune_report.base_losses(study)
    d.value("q", ex.instruction)
    d.value("gold", ex.answer)
    d.value("base_chat", chat_out)
    d.value("base_plain", plain_out)
    d.value("base_end", base["format"].mean, "{:.1f}")
    d.value("base_content", base["content"].mean, "{:.2f}")
    d.slide(
        "The base model, asked a question, continues the text",
        [
            "asked '{q}' (gold: '{gold}')",
            "with the chat prompt it writes '{base_chat}'; as plain text '{base_plain}'",
            "stored `cpu` study: the base's loss on `<|end|>` is {base_end} nats (a token never seen in pre-training), "
            "on the answer's words {base_content}",
        ],
        _notes(d, "base"),
    )


def _sft_slide(d, profile, study: dict) -> None:
    """§4: SFT with the transparent loop; the stored study's full fine-tuning arm."""
    cfg = sft.sft_train_config(profile, 0)
    full = finetune_report.summarize(study, "full")
    d.value("sft_steps", cfg.steps, "{:,}")
    d.value("sft_lr", cfg.lr, "{:g}")
    d.value("sft_batch", cfg.batch_size)
    d.value("full_content", str(full.loss["content"]))
    d.value("full_em", str(full.exact_match))
    d.value("full_seeds", full.seeds)
    d.slide(
        "Supervised fine-tuning with the transparent loop",
        [
            "the pre-training loop of the course (AdamW, warmup + cosine, clipping) on padded chats, masked loss",
            "`ci` profile: {sft_steps} steps, learning rate {sft_lr}, {sft_batch} chats per batch",
            "stored `cpu` study, full fine-tuning, {full_seeds} seeds: answer-word loss {base_content} -> {full_content} "
            "nats/token, exact match {full_em}",
        ],
        _notes(d, "sft"),
    )


def _pretrain_slide(d, study: dict) -> None:
    """§4b: the same fine-tuning from a random initialisation (stored study), with learning curves."""
    diff, words = stats.compare(finetune_report.arm_matrix(study, "random", "content"),
                                finetune_report.arm_matrix(study, "full", "content"))  # fmt: skip
    d.value("pretrain", diff.mean, "{:.2f}")
    d.value("pretrain_se", diff.se, "{:.2f}")
    d.value(
        "pretrain_words",
        words.split(" by ")[0].replace("second", "pre-trained").replace("first", "random init"),
    )
    for arm in ("full", "random"):
        s = finetune_report.summarize(study, arm)
        d.value(f"{arm}_plateau", f"{s.plateaued} of {s.seeds}")
    d.value("random_lr", study["best_lr"]["random"], "{:g}")
    d.value("full_lr", study["best_lr"]["full"], "{:g}")
    fig, ax = plt.subplots(figsize=(7, 2.5))
    for arm, style in (("full", "-"), ("random", "--")):
        for k, run in enumerate(finetune_report.seed_runs(study, arm)):
            steps, vals = zip(*run["val_curve"])
            ax.plot(steps, vals, style, color="C0" if arm == "full" else "C3",
                    label=finetune_report.LABELS[arm] if k == 0 else None)  # fmt: skip
    ax.set(xlabel="step", ylabel="validation answer loss", title="every seed (stored study)", ylim=(0, 6))
    ax.legend(fontsize=7)
    d.slide(
        "Does pre-training matter? The same fine-tuning from random weights",
        [
            "each arm at its own learning rate, chosen on validation: pre-trained {full_lr}, random {random_lr}",
            "random init minus pre-trained, answer's words: {pretrain} ± {pretrain_se} nats/token: {pretrain_words}",
            "best validation checkpoint within the step budget; seeds on a plateau: pre-trained {full_plateau}, random {random_plateau}",
        ],
        _notes(d, "pretrain"),
        figure=fig,
    )


def _mask_slide(d, profile, splits: sft.SFTSplits, tokenizer) -> None:
    """§5: masking the prompt; what share of the training tokens each choice puts in the loss."""
    feats = sft.prepare_features(splits.train, tokenizer, profile.sft.max_length).features
    total = sum(len(f.input_ids) for f in feats)
    d.value("resp_share", sum(f.n_response for f in feats) / total, "{:.0%}")
    d.value("prompt_share", sum(f.n_prompt for f in feats) / total, "{:.0%}")
    d.value("trl_steps", profile.sft.trl_steps, "{:,}")
    d.value("per_family", len(splits.test) // len(sft.FAMILIES))
    d.slide(
        "Does masking the prompt matter?",
        [
            "masked: the loss sees {resp_share} of the training tokens, the answers",
            "unmasked, as in pre-training: also the other {prompt_share}, instructions and lines it never has to write",
            "the notebook trains both from the same base for {trl_steps} steps and compares exact match per family",
        ],
        _notes(d, "mask"),
    )


def _packing_slide(d, profile, splits: sft.SFTSplits, tokenizer) -> None:
    """§6: padding vs packing: the padding share of the same examples both ways."""
    s = profile.sft
    feats = sft.prepare_features(splits.train[: 16 * s.batch_size], tokenizer, s.max_length).features
    pad_id, share = tokenizer.pad_token_id, {}
    for name, packing in (("padded", False), ("packed", True)):
        slots = real = 0
        for b in sft.epoch_batches(feats, s.batch_size, 4 * s.max_length, pad_id, generator(0), packing):
            slots += b["input_ids"].numel()
            real += int((b["seq_ids"] >= 0).sum()) if packing else int(b["attention_mask"].sum())
        share[name] = 1 - real / slots
    d.value("n_pack", len(feats))
    d.value("pad_padded", share["padded"], "{:.0%}")
    d.value("pad_packed", share["packed"], "{:.0%}")
    d.slide(
        "Padding vs packing, and cross-contamination",
        [
            "{n_pack} training chats: padding fills {pad_padded} of the slots with `<|pad|>`, packing {pad_packed}",
            "packing concatenates whole examples; restarting `position_ids` at each one gives a block-diagonal mask",
            "the notebook measures the logits: isolated with restarted positions, contaminated as one long sequence",
        ],
        _notes(d, "pack"),
    )


def _trl_slide(d, profile, splits: sft.SFTSplits, tokenizer) -> None:
    """§7: TRL's SFTTrainer reads the same mask from the chat template."""
    sample = splits.train[: 4 * profile.sft.batch_size]
    same = sum(bool(((chat.multi_turn_features(e.messages(), tokenizer)["labels"] != chat.IGNORE_INDEX)
                     == chat.hf_assistant_mask(e.messages(), tokenizer)["mask"]).all()) for e in sample)  # fmt: skip
    d.value("trl_same", same)
    d.value("trl_checked", len(sample))
    d.slide(
        "The same fine-tuning with TRL's `SFTTrainer`",
        [
            "a `messages` dataset with `assistant_only_loss=True`: TRL asks the template for the mask",
            "that mask equals ours on {trl_same} of {trl_checked} training chats",
            "same data, schedule and optimizer as the masked run, {trl_steps} steps each",
        ],
        _notes(d, "trl"),
    )


def _history_slide(d, splits: sft.SFTSplits, tokenizer, lessons: dict) -> None:
    """§8: T5's prefixes and FLAN's instructions; the stored lessons on an unseen task."""
    t5 = sum(len(tokenizer(" ".join(e.t5_format()))["input_ids"]) for e in splits.test)
    chats = [tokenizer.apply_chat_template(e.messages(), tokenize=False) for e in splits.test]
    chat_tokens = sum(len(tokenizer(c, add_special_tokens=False)["input_ids"]) for c in chats)
    d.value("overhead", chat_tokens / t5, "{:.1f}")
    held = (sft_lessons.HELD_OUT,)
    d.value("held", sft_lessons.HELD_OUT)
    for key, (a, b, fams) in {"multi_base": ("nl multi", "base-nl", held), "multi_single": ("nl multi", "nl single", held),
                              "t5_nl": ("t5 all", "nl all", None)}.items():  # fmt: skip
        d.value(key, str(sft_lessons_report.compare_arms(lessons, a, b, families=fams)[0]))
    d.slide(
        "History: T5's task prefixes and FLAN's instructions",
        [
            "the same examples as chats take {overhead}x the tokens of T5's prefix format (test set)",
            "unseen task ({held}): multi-task tuning minus the untuned base {multi_base}, minus single-task {multi_single} nats/token",
            "T5 prefixes minus natural-language instructions, seen tasks: {t5_nl}",
        ],
        _notes(d, "history"),  # fmt: skip
    )


def _cpt_slide(d, lessons: dict) -> None:
    """§9: continued pre-training on Python docs vs instruction tuning (stored lessons)."""
    rows = {r["stage"]: r for r in sft_lessons_report.lm_losses(lessons)}
    for key, stage in (
        ("base", "base model"),
        ("cpt", "after continued pre-training"),
        ("sft", "after SFT only"),
    ):
        d.value(f"shake_{key}", str(rows[stage]["shakespeare"]))
    d.value("dom_base", str(rows["base model"]["domain"]))
    d.value("dom_cpt", str(rows["after continued pre-training"]["domain"]))
    d.value("cpt_steps", sft_lessons.CPT_STEPS, "{:,}")
    words = sft_lessons_report.compare_arms(lessons, "cpt sft", "nl all")[1]
    d.value("cpt_words", words)
    d.slide(
        "Continued pre-training on a domain vs instruction tuning",
        [
            "{cpt_steps} steps of Python docs: their loss {dom_base} -> {dom_cpt} nats/token",
            "forgetting, Shakespeare loss: base {shake_base}, after continued pre-training {shake_cpt}, after SFT only {shake_sft}",
            "the task after CPT then SFT vs SFT alone, answer's words: {cpt_words}",
        ],
        _notes(d, "cpt"),
    )


def _imitation_slide(d, lessons: dict) -> None:
    """§10: a student on a teacher's answers (stored lessons over seeds)."""
    t = lessons["teacher"]
    d.value("teacher_acc", t["correct"] / t["n"], "{:.1%}")
    d.value("teacher_n", t["n"], "{:,}")
    d.value("teacher_empty", t["empty"])
    d.value("imitation", str(sft_lessons_report.compare_arms(lessons, "teacher pool", "gold pool")[0]))
    d.value("em_teacher", str(sft_lessons_report.estimate(lessons, "teacher pool", "correct")))
    d.value("em_gold", str(sft_lessons_report.estimate(lessons, "gold pool", "correct")))
    d.slide(
        "Imitation learning: a student trained on a teacher's answers",
        [
            "the teacher labels {teacher_n} pool prompts: {teacher_acc} correct, {teacher_empty} empty (dropped, counted)",
            "student on the teacher's answers minus student on gold, answer's words: {imitation} nats/token",
            "exact match: on teacher labels {em_teacher}, on gold {em_gold}",
        ],
        _notes(d, "imitation"),
    )


def _gpu_slide(d, profile) -> None:
    """§11: the optional GPU path with a real small base model."""
    gpu = get_profile("gpu").sft
    d.value("ci_params", sft.count_parameters(load_course_model(profile)), "{:,}")
    d.value("cpu_params", sft_lessons_report.base_parameters(), "{:,}")
    d.value("gpu_train", gpu.n_train, "{:,}")
    d.value("gpu_steps", gpu.steps, "{:,}")
    d.slide(
        "GPU path: a real small base model (optional, online only)",
        [
            "the course models here: {ci_params} parameters (`ci`), {cpu_params} (`cpu`, the stored lessons)",
            "`gpu` profile: {gpu_train} training chats, {gpu_steps} SFT steps",
            "with network, `HUB_MODEL` loads a hub base through `sft.load_causal_lm`; offline the cell does nothing",
        ],
        _notes(d, "gpu"),
    )
