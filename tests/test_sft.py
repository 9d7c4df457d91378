"""Unit tests of workshop_utils.sft: data splits, templating, masking, packing, loss, generation, bad input."""

from __future__ import annotations

import copy
from functools import lru_cache

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from workshop_utils import sft
from workshop_utils.config import get_profile
from workshop_utils.device import pick_device
from workshop_utils.tokenizer import train_course_tokenizer

TEXT = (
    "What is the largest number? Reverse the letters, and say the last word of this line.\n\n"
    "Is this line from a comedy or a tragedy? Answer briefly, my lord, for I am sick at heart.\n\n"
    "0 1 2 3 4 5 6 7 8 9 + , a b c d e f g h i j k l m n o p q r s t u v w x y z comedy tragedy\n\n"
) * 20


@lru_cache(maxsize=1)
def _tok():
    return train_course_tokenizer(TEXT, 320)


@pytest.fixture
def tok():
    t = _tok()
    t.padding_side = "right"
    return t


def tiny_model(vocab: int, seed: int = 0, layers: int = 2) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
                      pad_token_id=0, bos_token_id=1, eos_token_id=2)  # fmt: skip
    cfg._attn_implementation = "sdpa"
    return LlamaForCausalLM(cfg).eval()


# ---------------------------------------------------------------- data
def test_examples_deterministic_and_answers_correct():
    a, b = (
        sft.generate_examples(80, seed=3, families=sft.ALL_FAMILIES),
        sft.generate_examples(80, seed=3, families=sft.ALL_FAMILIES),
    )
    assert a == b and a != sft.generate_examples(80, seed=4, families=sft.ALL_FAMILIES)
    assert [e.family for e in a[:8]] == list(sft.ALL_FAMILIES)
    top = set(sft.frequent_words())
    for e in a:
        if e.family == "repeat":
            assert e.answer == e.x and e.x in sft.frequent_words(sft.N_REPEAT_WORDS)
        elif e.family in ("first_word", "last_word"):
            word = e.x.split()[0 if e.family == "first_word" else -1]
            assert e.answer and e.answer in word and e.answer.lower() in top
        elif e.family == "alphabetical":
            x, y = e.x.split(" or ")
            assert e.answer == min(x, y) and x[0] != y[0] and {x, y} <= top
        elif e.family == "add":
            x, y = e.x.split(" + ")
            assert int(e.answer) == int(x) + int(y)
        elif e.family == "max":
            assert e.answer == str(max(int(v) for v in e.x.split(", ")))
        elif e.family == "reverse":
            assert e.answer.split() == e.x.split()[::-1]
        else:
            assert e.answer in ("comedy", "tragedy")
        assert e.x in e.instruction
    assert len({e.key for e in a}) == len(a)


def test_genre_labels_come_from_the_play():
    from workshop_utils.corpus import load_works

    works = load_works()
    for e in [e for e in sft.generate_examples(50, seed=1) if e.family == "genre"]:
        plays = sft.COMEDIES if e.answer == "comedy" else sft.TRAGEDIES
        assert any(e.x in works[p] for p in plays)


def test_splits_have_no_leakage():
    splits = sft.make_sft_splits(get_profile("ci"), seed=0)
    s = get_profile("ci").sft
    assert (len(splits.train), len(splits.val), len(splits.test), len(splits.pool)) == (
        s.n_train, s.n_eval, s.n_eval, s.n_pool)  # fmt: skip
    counts = sft.check_no_leakage(splits)
    assert counts and all(v == 0 for v in counts.values())
    keys = [e.key for part in (splits.train, splits.val, splits.test, splits.pool) for e in part]
    assert len(keys) == len(set(keys))
    assert {e.family for e in splits.test} == set(sft.FAMILIES)


def test_leakage_is_detected():
    splits = sft.make_sft_splits(get_profile("ci"), seed=0)
    leaky = sft.SFTSplits(splits.train, splits.val, [*splits.test, splits.train[0]], splits.pool)
    with pytest.raises(ValueError, match="leakage"):
        sft.check_no_leakage(leaky)
    # the same task input under a different wording is still a leak (keys compare inputs, not templates)
    e = splits.train[1]
    reworded = sft.SFTExample(e.family, e.x, "Please: " + e.instruction, e.answer)
    with pytest.raises(ValueError, match="test key"):
        sft.check_no_leakage(sft.SFTSplits(splits.train, splits.val, [reworded], []))


def test_generate_examples_bad_input():
    with pytest.raises(ValueError, match="families"):
        sft.generate_examples(5, families=("add", "poetry"))
    with pytest.raises(ValueError, match="n must be"):
        sft.torch_threads(0).__enter__()
    with pytest.raises(ValueError, match="n must be"):
        sft.generate_examples(0)


def test_t5_format_of_the_same_example():
    e = sft.SFTExample("add", "3 + 4", "What is 3 + 4?", "7")
    assert e.t5_format() == ("add: 3 + 4", "7")
    assert e.messages()[-1] == {"role": "assistant", "content": sft.ANSWER_PREFIX + "7"}
    assert [m["role"] for m in e.messages()] == ["system", "user", "assistant"]
    assert [m["role"] for m in e.messages(system=None)] == ["user", "assistant"]


# ---------------------------------------------------------------- templating and masking
def test_prompt_and_response_split(tok):
    e = sft.SFTExample("max", "3, 8, 5", "Which number is largest: 3, 8, 5?", "8")
    prompt, response = sft.chat_prompt_and_response(e.messages(), tok)
    assert prompt.startswith(tok.bos_token) and prompt.endswith("<|assistant|>")
    assert "<|system|>Answer briefly.<|end|>" in prompt and "<|user|>" in prompt
    assert response == " 8<|end|>"  # answers start with ANSWER_PREFIX (a space)


def test_labels_are_exactly_minus_100_on_prompt(tok):
    prompts = [
        "<|bos|><|user|>What is 3 + 4?<|end|>\n<|assistant|>",
        "<|bos|><|user|>a b<|end|>\n<|assistant|>",
    ]
    outputs = ["7<|end|>", "b a<|end|>"]
    batch = sft.tokenize_prompt_and_output(prompts, outputs, tok)
    for i, (p, o) in enumerate(zip(prompts, outputs)):
        n_p = len(tok(p, add_special_tokens=False)["input_ids"])
        n_o = len(tok(o, add_special_tokens=False)["input_ids"])
        labels, ids = batch["labels"][i], batch["input_ids"][i]
        assert (labels[:n_p] == -100).all()
        assert torch.equal(labels[n_p : n_p + n_o], ids[n_p : n_p + n_o])
        assert (labels[n_p + n_o :] == -100).all()  # padding
        assert batch["response_mask"][i].sum() == n_o
        assert torch.equal(batch["response_mask"][i], labels != -100)
        assert (ids[n_p + n_o :] == tok.pad_token_id).all()
    assert tok.decode(batch["input_ids"][1][batch["response_mask"][1]]) == "b a<|end|>"


def test_response_mask_equals_chat_template_assistant_mask(tok):
    for e in sft.generate_examples(10, seed=2):
        prompt, output = sft.chat_prompt_and_response(e.messages(), tok)
        ours = sft.tokenize_prompt_and_output([prompt], [output], tok)
        hf = tok.apply_chat_template(e.messages(), return_assistant_tokens_mask=True, return_dict=True)
        n = ours["input_ids"].size(1)
        assert ours["input_ids"][0].tolist() == hf["input_ids"][:n]
        assert ours["response_mask"][0].int().tolist() == hf["assistant_masks"][:n]
        assert sum(hf["assistant_masks"][n:]) == 0  # only the trailing newline after <|end|> is left


def test_bad_conversations_raise_clear_errors(tok):
    ok = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yes"}]
    sft.validate_conversation(ok)
    cases = {
        "unknown role": [{"role": "narrator", "content": "x"}, ok[1]],
        "needs keys": [{"content": "x"}, ok[1]],
        "empty": [ok[0], {"role": "assistant", "content": "  "}],
        "last message": [ok[1], ok[0]],
        "non-empty list": [],
        "string": [ok[0], {"role": "assistant", "content": 7}],
    }
    for match, conv in cases.items():
        with pytest.raises(ValueError, match=match):
            sft.chat_prompt_and_response(conv, tok)
    with pytest.raises(ValueError, match="equally many"):
        sft.tokenize_prompt_and_output(["a"], ["b", "c"], tok)


def test_truncated_responses_are_counted_or_raise(tok):
    long = sft.SFTExample("last_word", "x", "word " * 40, "tail")
    short = sft.generate_examples(3, seed=0)
    n_long_prompt = len(
        tok(sft.chat_prompt_and_response(long.messages(), tok)[0], add_special_tokens=False).input_ids
    )
    data = sft.prepare_features([*short, long], tok, max_length=n_long_prompt)
    assert data.report == {
        "n_examples": 4,
        "n_response_truncated": 0,
        "n_kept": 3,
        "n_dropped_no_response": 1,
    }
    data = sft.prepare_features([*short, long], tok, max_length=n_long_prompt + 1)  # keeps 1 response token
    assert data.report["n_response_truncated"] == 1 and data.report["n_kept"] == 4
    with pytest.raises(ValueError, match="no room for the response"):
        sft.prepare_features([long], tok, max_length=n_long_prompt, on_truncated="error")
    with pytest.raises(ValueError, match="no response tokens left"):
        sft.tokenize_prompt_and_output(["<|bos|>" + "word " * 40], ["tail"], tok, max_length=10)
    with pytest.raises(ValueError, match="on_truncated"):
        sft.prepare_features(short, tok, 64, on_truncated="ignore")


# ---------------------------------------------------------------- loss
def test_masked_nll_equals_transformers_loss(tok):
    model = tiny_model(len(tok))
    e = sft.generate_examples(4, seed=5)
    pairs = [sft.chat_prompt_and_response(x.messages(), tok) for x in e]
    batch = sft.tokenize_prompt_and_output([p for p, _ in pairs], [o for _, o in pairs], tok)
    with torch.no_grad():
        out = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]
        )
        ours = sft.masked_nll(out.logits, batch["labels"])
    torch.testing.assert_close(ours, out.loss, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="every label is -100"):
        sft.masked_nll(out.logits, torch.full_like(batch["labels"], -100))


def test_unmasked_labels_cover_the_prompt(tok):
    f = sft.prepare_features(sft.generate_examples(1), tok, 96).features[0]
    u = sft.unmask_prompt(f)
    assert u.labels[0] == -100 and u.labels[1:] == f.input_ids[1:]
    assert sum(v != -100 for v in f.labels) == f.n_response


# ---------------------------------------------------------------- packing
def test_pack_boundaries_positions_and_labels(tok):
    feats = sft.prepare_features(sft.generate_examples(7, seed=1), tok, 96).features
    packed = sft.pack_features(feats, 96, tok.pad_token_id)
    seq, pos, ids, labels = packed["seq_ids"], packed["position_ids"], packed["input_ids"], packed["labels"]
    assert sorted(set(seq[seq >= 0].tolist())) == list(range(len(feats)))  # every example, none split
    for k, f in enumerate(feats):
        r, cols = (seq == k).nonzero(as_tuple=True)
        assert len(set(r.tolist())) == 1 and cols.tolist() == list(range(cols[0], cols[0] + len(f.input_ids)))
        assert ids[r[0], cols].tolist() == f.input_ids
        assert pos[r[0], cols].tolist() == list(range(len(f.input_ids)))
        assert labels[r[0], cols[0]] == -100 and labels[r[0], cols[1:]].tolist() == f.labels[1:]
    assert (labels[seq < 0] == -100).all() and (ids[seq < 0] == tok.pad_token_id).all()
    assert int((seq >= 0).sum()) == sum(len(f.input_ids) for f in feats)
    with pytest.raises(ValueError, match="does not fit"):
        sft.pack_features(feats, 5, tok.pad_token_id)


def test_packing_isolates_examples_only_with_restarted_positions(tok):
    model = tiny_model(len(tok))
    feats = sft.prepare_features(sft.generate_examples(3, seed=1), tok, 96).features
    diffs = sft.packing_contamination(model, feats, tok.pad_token_id)
    assert diffs["positions restarted"] < 1e-4  # identical to running each example alone
    assert diffs["one long sequence"] > 1e-2  # later examples attend to earlier ones


def test_packed_and_padded_losses_agree(tok):
    model = tiny_model(len(tok))
    feats = sft.prepare_features(sft.generate_examples(6, seed=2), tok, 96).features
    padded = sft.collate_padded(feats, tok.pad_token_id)
    packed = sft.pack_features(feats, 200, tok.pad_token_id)
    with torch.no_grad():
        a = sft.masked_nll(model(**sft.model_inputs(padded, torch.device("cpu"))).logits, padded["labels"])
        b = sft.masked_nll(model(**sft.model_inputs(packed, torch.device("cpu"))).logits, packed["labels"])
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_throughput_report_counts_padding(tok):
    model = tiny_model(len(tok))
    feats = sft.prepare_features(sft.generate_examples(10, seed=2), tok, 96).features
    dev = pick_device(force_cpu=True)
    pad = sft.measure_throughput(model, feats, 4, 96, tok.pad_token_id, dev, packing=False)
    pack = sft.measure_throughput(model, feats, 4, 96, tok.pad_token_id, dev, packing=True)
    assert pad["real_tokens"] == pack["real_tokens"] == sum(len(f.input_ids) for f in feats)
    assert pack["batches"] < pad["batches"] and 0 <= pack["padding_share"] < 1
    assert all(p.grad is None for p in model.parameters())


# ---------------------------------------------------------------- training, generation, metric
def test_sft_train_learns_and_is_deterministic(tok):
    dev = pick_device(force_cpu=True)
    ex = [sft.SFTExample("max", "1, 2", "Largest: 1, 2", "2")] * 8
    cfg = sft.TrainConfig(steps=30, lr=3e-3, batch_size=4, context=64, warmup=3, weight_decay=0.0)
    runs = []
    for packing in (False, False, True):
        model = tiny_model(len(tok), layers=1)
        res = sft.sft_train(model, tok, ex, cfg, dev, packing=packing, show_progress=False)
        runs.append(res)
        assert res.history[-1]["train_loss"] < 0.2 * res.history[0]["train_loss"]
    assert [h["train_loss"] for h in runs[0].history] == [h["train_loss"] for h in runs[1].history]
    assert runs[2].examples_seen > runs[0].examples_seen  # a packed step carries more examples
    assert sft.generate_responses(model, tok, [ex[0].prompt_messages()], dev) == ["2"]
    assert sft.evaluate_exact_match(model, tok, ex[:2], dev) == 1.0


def test_batched_generation_equals_one_by_one(tok):
    dev = pick_device(force_cpu=True)
    model = tiny_model(len(tok), seed=3)
    ex = sft.generate_examples(5, seed=0)
    prompts = [e.prompt_messages() for e in ex]
    batched = sft.generate_responses(model, tok, prompts, dev, max_new_tokens=6, batch_size=5)
    single = [sft.generate_responses(model, tok, [p], dev, max_new_tokens=6)[0] for p in prompts]
    assert batched == single
    assert tok.padding_side == "right"  # restored


def test_exact_match_and_format():
    assert sft.exact_match([" 7", "8", "x"], ["7", "9", "x "]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="equally many"):
        sft.exact_match(["1"], [])
    e = sft.SFTExample("max", "3, 8, 5", "", "8")
    assert sft.format_ok(e, "5") and not sft.format_ok(e, "9")
    r = sft.SFTExample("reverse", "a b c", "", "c b a")
    assert sft.format_ok(r, "b a c") and not sft.format_ok(r, "abc")
    w = sft.SFTExample("alphabetical", "lord or king", "", "king")
    assert sft.format_ok(w, "lord") and not sft.format_ok(w, "queen")
    f = sft.SFTExample("first_word", "Good my lord,", "", "Good")
    assert sft.format_ok(f, "lord") and not sft.format_ok(f, "king")
    g = sft.SFTExample("genre", "x", "", "comedy")
    assert sft.format_ok(g, "tragedy") and not sft.format_ok(g, "history")


# ---------------------------------------------------------------- imitation, loading
def test_truncated_copy_keeps_the_chosen_layers():
    model = tiny_model(300, layers=4)
    student = sft.truncated_copy(model, [0, 2])
    assert student.config.num_hidden_layers == 2
    torch.testing.assert_close(
        student.model.layers[1].mlp.up_proj.weight, model.model.layers[2].mlp.up_proj.weight
    )
    assert sft.count_parameters(student) < sft.count_parameters(model)
    x = torch.tensor([[1, 5, 6, 7]])
    with torch.no_grad():
        assert student(input_ids=x).logits.shape == model(input_ids=x).logits.shape
    with pytest.raises(ValueError, match="keep_layers"):
        sft.truncated_copy(model, [4])


def test_load_causal_lm_from_a_local_folder(tok, tmp_path, monkeypatch):
    model = tiny_model(len(tok))
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    loaded, loaded_tok = sft.load_causal_lm(tmp_path / "m")
    x = torch.tensor([[1, 5, 6]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=x).logits, model(input_ids=x).logits)
    assert loaded_tok("a b")["input_ids"] == tok("a b")["input_ids"]
    assert (tmp_path / "m" / "model.safetensors").exists()
    with pytest.raises(ValueError, match="not a local model folder"):
        sft.load_causal_lm("HuggingFaceTB/SmolLM2-135M")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="HF_HUB_OFFLINE"):
        sft.load_causal_lm("HuggingFaceTB/SmolLM2-135M", allow_hub=True)


def test_label_with_model_and_domain_corpus(tok):
    dev = pick_device(force_cpu=True)
    model = tiny_model(len(tok))
    ex = sft.generate_examples(4)
    labelled, dropped = sft.label_with_model(model, tok, ex, dev, max_new_tokens=3)
    assert len(labelled) + dropped == 4
    assert all(a.x == b.x for a, b in zip(labelled, [e for e in ex]) if a.answer)
    train, val = sft.domain_corpus()
    assert len(train) > 9 * len(val) > 0 and "def" in train


def test_answer_tokens_equal_the_prompt_tokens_of_the_copied_word():
    from workshop_utils.tokenizer import load_course_tokenizer

    tok = load_course_tokenizer(get_profile("ci"))
    e = sft.SFTExample("repeat", "death", "Repeat this word: death", "death")
    prompt, response = sft.chat_prompt_and_response(e.messages(), tok)
    word = tok(" death", add_special_tokens=False)["input_ids"]
    assert tok(response, add_special_tokens=False)["input_ids"][: len(word)] == word
    assert word == tok(prompt, add_special_tokens=False)["input_ids"][-len(word) - 3 : -3]


def test_torch_threads_restores_the_count():
    before = torch.get_num_threads()
    with sft.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_sft_result_json_round_trip():
    r = sft.SFTResult([{"step": 1, "loss": 2.0, "lr": 0.1, "seconds": 0.5}], 0.5, 16, 400, {"n_kept": 16})
    assert sft.SFTResult.from_json(r.to_json()) == r


def test_sft_train_config_from_profile():
    cfg = sft.sft_train_config(get_profile("ci"))
    s = get_profile("ci").sft
    assert (cfg.steps, cfg.lr, cfg.batch_size, cfg.context) == (s.steps, s.lr, s.batch_size, s.max_length)
    assert copy.copy(cfg) == cfg
