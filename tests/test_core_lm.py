"""Unit tests of the LM core: corpus, course tokenizer, course model, training loop."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from workshop_utils.config import get_profile
from workshop_utils.corpus import load_corpus, split_work
from workshop_utils.device import pick_device
from workshop_utils.models import (
    build_course_model,
    course_model_config,
    course_token_ids,
    load_course_model,
    save_course_model,
)
from workshop_utils.tokenizer import SPECIAL_TOKENS, load_course_tokenizer, train_course_tokenizer
from workshop_utils.training import (
    TrainConfig,
    TrainResult,
    causal_lm_loss,
    encode_text,
    evaluate_loss,
    generate_text,
    lm_batch,
    lr_at,
    train_lm,
)

CI = get_profile("ci")


@pytest.fixture(scope="module")
def tok():
    return load_course_tokenizer(CI)


def tiny_model(vocab: int) -> LlamaForCausalLM:
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(cfg)


def test_corpus_split_is_deterministic_and_disjoint():
    a, b = load_corpus(CI), load_corpus(CI)
    assert a.sha256 == b.sha256
    assert len(a.train) == 900_000 and len(a.val) == 100_000
    full = load_corpus(get_profile("cpu"))
    assert len(full.train) > 4_000_000 and 0.09 < len(full.val) / (len(full.train) + len(full.val)) < 0.11
    assert "Shakespeare" in full.license


def test_split_work_cuts_at_line_break():
    train, val = split_work("line one\nline two\nline three\n", 0.5)
    assert train + val == "line one\nline two\nline three\n"
    assert train.endswith("\n")
    with pytest.raises(ValueError, match="val_fraction"):
        split_work("x", 1.5)


def test_tokenizer_round_trip_and_specials(tok):
    text = "To be, or not to be: that is the question.\nÜber 日本語 🙂\t\r\n"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    assert tok.convert_tokens_to_ids(SPECIAL_TOKENS) == list(range(len(SPECIAL_TOKENS)))
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
    assert len(tok) == CI.lm.vocab_size


def test_chat_template_marks_only_assistant_tokens(tok):
    msgs = [{"role": "user", "content": "Add 2 and 3."}, {"role": "assistant", "content": "5"}]
    out = tok.apply_chat_template(msgs, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    marked = [i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert tok.decode(marked) == "5<|end|>"
    prompt = tok.apply_chat_template(msgs[:1], tokenize=False, add_generation_prompt=True)
    assert prompt == "<|bos|><|user|>Add 2 and 3.<|end|>\n<|assistant|>"
    with pytest.raises(Exception, match="unknown role"):
        tok.apply_chat_template([{"role": "robot", "content": "x"}], tokenize=False)


def test_tokenizer_bad_input():
    with pytest.raises(ValueError, match="empty"):
        train_course_tokenizer("", 512)
    with pytest.raises(ValueError, match="vocab_size"):
        train_course_tokenizer("abc", 100)


def test_encode_text_equals_tokenizer_call(tok):
    text = "First paragraph.\n\nSecond one, longer.\n\nThird."
    ids = encode_text(tok, text)
    assert ids.tolist() == tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids.tolist()) == text
    with pytest.raises(ValueError, match="empty"):
        encode_text(tok, "")


def test_course_model_config_is_a_tiny_llama():
    cfg = course_model_config(CI, 1024)
    assert cfg.hidden_size == CI.lm.d_model and cfg.num_key_value_heads == CI.lm.n_kv_heads
    assert cfg.hidden_size % 64 == 0 and cfg.intermediate_size % 64 == 0  # bitsandbytes CPU 4-bit needs it
    m1, m2 = build_course_model(CI, 1024, seed=3), build_course_model(CI, 1024, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(m1.parameters(), m2.parameters()))


def test_lr_schedule_warmup_then_cosine_to_ten_percent():
    cfg = TrainConfig(steps=100, lr=1.0, batch_size=1, context=4, warmup=10)
    assert lr_at(0, cfg) == pytest.approx(0.1) and lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(10, cfg) == pytest.approx(1.0)
    assert lr_at(100, cfg) == pytest.approx(0.1)
    assert all(lr_at(s, cfg) >= lr_at(s + 1, cfg) for s in range(10, 100))


def test_train_config_bad_input():
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(steps=0, lr=1e-3, batch_size=1, context=4)
    with pytest.raises(ValueError, match="warmup"):
        TrainConfig(steps=5, lr=1e-3, batch_size=1, context=4, warmup=6)


def test_lm_batch_targets_are_inputs_shifted_by_one():
    ids = torch.arange(100)
    x, y = lm_batch(ids, 4, 8, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 8)
    assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y[:, -1], x[:, -1] + 1)
    with pytest.raises(ValueError, match="context"):
        lm_batch(torch.arange(5), 1, 8, torch.Generator())


def test_loss_equals_hf_shifted_loss():
    model = tiny_model(50)
    ids = torch.randint(0, 50, (2, 9), generator=torch.Generator().manual_seed(1))
    ours = causal_lm_loss(model, ids[:, :-1], ids[:, 1:])
    theirs = model(input_ids=ids[:, :-1], labels=ids[:, :-1]).loss  # HF shifts internally: 7 targets
    logits = model(input_ids=ids[:, :-1]).logits
    manual = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 50), ids[:, 1:-1].reshape(-1))
    assert theirs.item() == pytest.approx(manual.item(), abs=1e-6)
    assert ours.item() > 0 and math.isfinite(ours.item())


def test_training_is_deterministic_and_loss_falls():
    ids = torch.arange(2000) % 17  # a learnable periodic sequence
    cfg = TrainConfig(steps=30, lr=1e-2, batch_size=4, context=16, warmup=3, eval_batches=2)
    dev = pick_device()
    r1 = train_lm(tiny_model(17), ids, ids, cfg, dev, show_progress=False)
    r2 = train_lm(tiny_model(17), ids, ids, cfg, dev, show_progress=False)
    assert [h.get("train_loss") for h in r1.history] == [h.get("train_loss") for h in r2.history]
    assert r1.final_val_loss < 0.5 * r1.evals()[0]["val_loss"]


def test_course_token_ids_are_cached_and_equal(tmp_path, monkeypatch, tok):
    monkeypatch.setenv("WORKSHOP_ARTIFACTS", str(tmp_path))
    train, val = course_token_ids(CI, tok)
    assert (tmp_path / "ci" / "course_tokens" / "ids.safetensors").exists()
    train2, val2 = course_token_ids(CI, tok)
    assert torch.equal(train, train2) and torch.equal(val, val2)
    assert val.tolist()[:50] == tok(load_corpus(CI).val, add_special_tokens=False)["input_ids"][:50]


def test_save_and_load_course_model_round_trip(tmp_path, monkeypatch, tok):
    monkeypatch.setenv("WORKSHOP_ARTIFACTS", str(tmp_path))
    model = build_course_model(CI, len(tok), seed=1)
    save_course_model(CI, model, TrainResult(history=[{"step": 0}], samples={0: "x"}), seed=1)
    loaded = load_course_model(CI, seed=1)
    x = torch.randint(0, len(tok), (1, 12))
    assert torch.allclose(model(input_ids=x).logits, loaded(input_ids=x).logits, atol=1e-6)
    assert list(tmp_path.glob("ci/course_model/*.safetensors"))


def test_generate_is_seeded(tok):
    model = build_course_model(CI, len(tok), seed=0)
    a = generate_text(model, tok, "ROMEO.\n", max_new_tokens=10, seed=5)
    b = generate_text(model, tok, "ROMEO.\n", max_new_tokens=10, seed=5)
    assert a == b
    dev = pick_device()
    cfg = TrainConfig(steps=1, lr=1e-3, batch_size=2, context=8, eval_batches=2)
    assert evaluate_loss(model, torch.arange(100) % len(tok), cfg, dev) > 0
