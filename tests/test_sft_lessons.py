"""Module 07's lessons: multi-turn masks equal to Hugging Face's, each lesson arm's data, the LM window
losses, the report's comparisons on lessons whose truth is known, stale refusal, and the stored file."""

from __future__ import annotations

import json

import pytest
import torch
from stored_helpers import assert_refuses_other_code
from test_sft import TEXT, tiny_model

from workshop_utils import chat, sft, sft_lessons, sft_lessons_report
from workshop_utils.config import get_profile
from workshop_utils.tokenizer import train_course_tokenizer
from workshop_utils.training import causal_lm_loss


@pytest.fixture(scope="module")
def tok():
    return train_course_tokenizer(TEXT, 320)


# ---------------------------------------------------------------- multi-turn chats
def test_multi_turn_labels_equal_hugging_face_assistant_mask(tok):
    a, b, c = sft.generate_examples(3, seed=0)
    msgs = [
        *a.messages(),
        *b.messages(system=None),
        *c.messages(system=None),
    ]  # system + 3 user/assistant turns
    ours, hf = chat.multi_turn_features(msgs, tok), chat.hf_assistant_mask(msgs, tok)
    assert torch.equal(ours["input_ids"], hf["input_ids"])  # turn-by-turn tokenising = the whole chat at once
    assert torch.equal(ours["labels"] != chat.IGNORE_INDEX, hf["mask"])
    trained = tok.decode(ours["input_ids"][ours["labels"] != chat.IGNORE_INDEX])
    assert trained == "".join(m["content"] + "<|end|>" for m in msgs if m["role"] == "assistant")


@pytest.mark.parametrize("bad", [[], [{"role": "user", "content": "hi"}],
                                 [{"role": "assistant", "content": "hi"}],
                                 [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
                                 [{"role": "user", "content": "a"}, {"role": "assistant", "content": 3}]])  # fmt: skip
def test_bad_chats_are_named(tok, bad):
    with pytest.raises(ValueError, match="chat|turn"):
        chat.multi_turn_features(bad, tok)


# ---------------------------------------------------------------- the arms' data
def test_each_arm_sees_the_families_it_should():
    splits = sft.make_sft_splits(get_profile("cpu"), 0)
    labels = [sft.SFTExample(e.family, e.x, e.instruction, "x") for e in splits.pool[:100]]
    sizes = {}
    for arm in sft_lessons.ARMS:
        train, val, test = sft_lessons.arm_data(arm, splits, labels)
        fams = {e.family for e in train}
        sizes[arm] = len(train)
        assert len(test) == len(splits.test)
        if arm in ("nl multi", "t5 multi", "nl single"):
            assert sft_lessons.HELD_OUT not in fams and sft_lessons.HELD_OUT not in {e.family for e in val}
        if arm.startswith("t5"):
            assert all(e.instruction.startswith(sft.T5_PREFIX[e.family] + ": ") for e in train + test)
    assert sizes["nl multi"] == sizes["nl single"] == sizes["t5 multi"]  # same data size, other diversity
    assert sizes["gold pool"] == sizes["teacher pool"] == 100
    with pytest.raises(ValueError, match="unknown arm"):
        sft_lessons.arm_data("rlhf", splits)
    with pytest.raises(ValueError, match="only .* examples of family"):
        sft_lessons.per_family(splits.val, ("add",), 10_000)


def test_window_losses_are_the_causal_lm_loss_of_each_window():
    model = tiny_model(100, seed=0)
    ids = torch.randint(0, 100, (500,), generator=torch.Generator().manual_seed(0))
    w = sft_lessons.window_losses(model, ids, 16, 8)
    starts = torch.linspace(0, 500 - 17, 8).long().tolist()
    x = torch.stack([ids[s : s + 16] for s in starts])
    y = torch.stack([ids[s + 1 : s + 17] for s in starts])
    with torch.no_grad():
        assert sum(w) / 8 == pytest.approx(causal_lm_loss(model, x, y).item(), abs=1e-4)


# ---------------------------------------------------------------- the report, on lessons whose truth is known
def _synthetic(n: int = 120) -> dict:
    gen = torch.Generator().manual_seed(0)
    fams = [sft.FAMILIES[i % len(sft.FAMILIES)] for i in range(n)]
    shift = {"nl multi": 0.0, "nl single": 0.5, "t5 multi": 0.3, "nl all": -1.0, "cpt sft": -0.9}

    def losses(level: float) -> dict:
        x = (level + torch.rand(n, generator=gen)).tolist()
        return {"all": x, "content": x, "format": x}

    runs = [{"arm": a, "seed": s, "test": losses(2 + shift.get(a, 0.0)), "correct": [1] * n,
             "lm": {"shakespeare": [3.5 + (a == "cpt sft")] * 8, "domain": [5.0] * 8},
             "lm_after_cpt": {"shakespeare": [4.8] * 8, "domain": [3.0] * 8} if a == "cpt sft" else None}
            for a in sft_lessons.ARMS for s in sft_lessons.SEEDS]  # fmt: skip
    base = {
        "families": fams,
        "nl": losses(8),
        "t5": losses(8),
        "lm": {"shakespeare": [3.6] * 8, "domain": [7.0] * 8},
    }
    return {"base": base, "teacher": {"n": 10, "empty": 0, "correct": 5}, "runs": runs}


def test_compare_arms_and_the_forgetting_table():
    les = _synthetic()
    held = (sft_lessons.HELD_OUT,)
    d, words = sft_lessons_report.compare_arms(les, "nl multi", "nl single", families=held)
    assert d.mean == pytest.approx(-0.5, abs=0.15) and words.startswith("nl multi is better")
    assert d.n_examples == sum(f == sft_lessons.HELD_OUT for f in les["base"]["families"])
    assert sft_lessons_report.compare_arms(les, "nl multi", "base-nl", families=held)[0].mean < -5
    rows = {r["stage"]: r for r in sft_lessons_report.lm_losses(les)}
    assert rows["after continued pre-training"]["shakespeare"].mean == pytest.approx(4.8)
    assert rows["after continued pre-training"]["domain"].mean == pytest.approx(3.0)
    assert rows["after CPT, then SFT"]["shakespeare"].mean == pytest.approx(4.5)
    with pytest.raises(ValueError, match="unknown task families"):
        sft_lessons_report.answer_matrix(les, "nl all", families=("poetry",))
    with pytest.raises(ValueError, match="unknown metric"):
        sft_lessons_report.answer_matrix(les, "nl all", "bleu")
    with pytest.raises(ValueError, match="text must be"):
        sft_lessons_report.lm_matrix(les, "nl all", "wiki")


def test_lessons_from_other_code_are_refused(tmp_path):
    inputs = sft_lessons.lessons_inputs("b" * 64)
    les = assert_refuses_other_code(tmp_path, sft_lessons.ENTRY, inputs, _synthetic(),
                                    sft_lessons_report.load_lessons, "no stored lessons")  # fmt: skip
    assert les["runs"]


def test_stored_lessons_are_current():
    les = sft_lessons_report.load_lessons(allow_other_base=True)
    for arm in sft_lessons.ARMS:
        assert len(sft_lessons_report.arm_runs(les, arm)) == len(sft_lessons.SEEDS)


def test_base_parameters_match_the_grids_course_model():
    grid = json.loads((sft_lessons.lessons_path().parent / "grid_cpu.json").read_text())
    full = next(r for r in grid["runs"] if r["point"] == "d128 full")
    assert sft_lessons_report.base_parameters() == full["total"]
