"""Fine-tuning measured above the noise: error bars (stats), answer-token loss, token rows, early stopping,
provenance that refuses stale results, and the stored studies of modules 07/08."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from peft import LoraConfig, get_peft_model
from test_sft import TEXT, tiny_model
from transformers import LlamaConfig, LlamaForCausalLM

from workshop_utils import finetune_report, finetune_study, lora, provenance, sft, stats
from workshop_utils.config import get_profile
from workshop_utils.device import pick_device
from workshop_utils.tokenizer import SPECIAL_TOKENS, train_course_tokenizer


@pytest.fixture(scope="module")
def tok():
    t = train_course_tokenizer(TEXT, 320)
    t.padding_side = "right"
    return t


# ---------------------------------------------------------------- stats
def test_estimate_combines_seed_and_example_noise():
    v = torch.tensor([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]])  # seed means 2 and 4; example means 2, 3, 4
    est = stats.estimate(v)
    seed_se = math.sqrt(2.0) / math.sqrt(2)  # std of (2, 4) = sqrt(2)
    example_se = 1.0 / math.sqrt(3)  # std of (2, 3, 4) = 1
    assert est.mean == pytest.approx(3.0)
    assert est.se == pytest.approx(math.hypot(seed_se, example_se))
    assert (est.n_seeds, est.n_examples) == (2, 3)


def test_difference_is_paired_by_example():
    gen = torch.Generator().manual_seed(0)
    difficulty = torch.rand(400, generator=gen) * 10  # examples differ a lot...
    a = difficulty + 0.1 + 0.01 * torch.randn(3, 400, generator=gen)  # ...but a is always 0.1 worse
    b = difficulty + 0.01 * torch.randn(3, 400, generator=gen)
    d = stats.difference(a, b)
    assert d.mean == pytest.approx(0.1, abs=0.01)
    assert d.se < 0.01  # the shared difficulty cancels; unpaired, the SE would be ~0.2
    assert stats.estimate(a).se > 0.1
    _, words = stats.compare(a, b)
    assert words.startswith("second is better")


def test_ratio_delta_method_matches_resampling():
    gen = torch.Generator().manual_seed(1)
    den = 2.0 + torch.randn(3, 300, generator=gen)
    num = 0.8 * den + 0.3 * torch.randn(3, 300, generator=gen)
    r = stats.ratio(num, den)
    assert r.mean == pytest.approx(float(num.mean() / den.mean()))
    boots = []
    for _ in range(300):  # resample examples and seeds
        ex = torch.randint(0, 300, (300,), generator=gen)
        sd = torch.randint(0, 3, (3,), generator=gen)
        boots.append(float(num[sd][:, ex].mean() / den[sd][:, ex].mean()))
    assert r.se == pytest.approx(torch.tensor(boots).std().item(), rel=0.5)


def test_verdict_has_three_outcomes_and_bad_input_is_named():
    assert stats.verdict(stats.Estimate(0.99, 0.01, 3, 100), 0.95) == "holds"
    assert stats.verdict(stats.Estimate(0.80, 0.05, 3, 100), 0.95) == "does not hold"
    assert stats.verdict(stats.Estimate(0.93, 0.05, 3, 100), 0.95) == "underpowered"
    with pytest.raises(ValueError, match="non-finite"):
        stats.estimate([[1.0, float("nan")]])
    with pytest.raises(ValueError, match="same examples"):
        stats.difference(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="denominator"):
        stats.ratio(torch.ones(1, 3), torch.zeros(1, 3))
    assert finetune_report.verdicts_agree("underpowered", "holds")
    assert not finetune_report.verdicts_agree("holds", "does not hold")


# ---------------------------------------------------------------- answer-token loss
def test_answer_losses_split_content_and_format(tok):
    model, dev = tiny_model(len(tok)), pick_device(force_cpu=True)
    examples = sft.generate_examples(12, seed=0, families=("add", "max", "reverse"))
    batches = sft.answer_batches(examples, tok, 128, batch_size=5)
    losses = sft.answer_losses(model, batches, dev)
    assert all(v.shape == (12,) for v in losses.values())
    # per example: the training loss of that example alone (masked_nll) is its "all" value
    for i in (0, 7):
        feat = sft.prepare_features([examples[i]], tok, 128).features[0]
        one = sft.collate_padded([feat], tok.pad_token_id)
        with torch.no_grad():
            ref = sft.masked_nll(model(input_ids=one["input_ids"]).logits, one["labels"])
        assert losses["all"][i] == pytest.approx(float(ref), abs=1e-5)
        n = feat.n_response  # content tokens + one <|end|>
        mixed = ((n - 1) * losses["content"][i] + losses["format"][i]) / n
        assert losses["all"][i] == pytest.approx(float(mixed), abs=1e-5)
    with pytest.raises(ValueError, match="at least one example"):
        sft.answer_batches([], tok, 128)


# ---------------------------------------------------------------- token rows (PEFT's trainable_token_indices)
def test_token_rows_equal_peft_and_merge(tok):
    base = tiny_model(len(tok), seed=2)
    ids = list(range(len(SPECIAL_TOKENS)))
    ours = copy.deepcopy(base)
    lora.apply_lora(ours, 2, 4, lora.TARGET_SETS["q,v"])
    added = lora.train_token_rows(ours, ids)
    assert added == 2 * len(ids) * base.config.hidden_size
    cfg = LoraConfig(r=2, lora_alpha=4, target_modules=lora.TARGET_SETS["q,v"], lora_dropout=0.0,
                     trainable_token_indices={"embed_tokens": ids, "lm_head": ids})  # fmt: skip
    theirs = get_peft_model(copy.deepcopy(base), cfg)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for layer, name in (
            (ours.get_input_embeddings(), "embed_tokens"),
            (ours.get_output_embeddings(), "lm_head"),
        ):
            layer.values.add_(torch.randn(layer.values.shape, generator=gen))
            peft_layer = theirs.base_model.model.get_submodule(name if name == "lm_head" else f"model.{name}")
            peft_layer.token_adapter.trainable_tokens_delta["default"].copy_(layer.values)
        for m in ours.modules():
            if isinstance(m, lora.LoRALinear):
                m.lora_B.normal_(generator=gen)
    lora.copy_adapters_to_peft(ours, theirs)
    x = torch.tensor([[1, 3, 40, 50, 60, 6, 4, 70, 6]])  # special tokens in the input
    with torch.no_grad():
        a, b = ours(input_ids=x).logits, theirs(input_ids=x).logits
        merged = lora.merge_lora(copy.deepcopy(ours))(input_ids=x).logits
    assert torch.allclose(a, b, atol=1e-5)
    assert torch.allclose(a, merged, atol=1e-4)
    assert not (a - base(input_ids=x).logits).abs().max() < 1e-3  # the rows changed the output
    with pytest.raises(ValueError, match="token_ids"):
        lora.train_token_rows(copy.deepcopy(base), [10**6])
    with pytest.raises(ValueError, match="already"):
        lora.train_token_rows(ours, ids)


# ---------------------------------------------------------------- the one loop: early stopping, best checkpoint
def test_train_loop_early_stopping_restores_the_best(tok):
    dev = pick_device(force_cpu=True)
    model = tiny_model(len(tok))
    train = sft.generate_examples(64, seed=0, families=("add",))
    val = sft.generate_examples(16, seed=9, families=("max",))  # another task: val loss rises soon
    cfg = sft.sft_train_config(get_profile("ci"), 0, steps=60, lr=3e-2, eval_every=5, patience=2)
    result = sft.sft_train(model, tok, train, cfg, dev, show_progress=False, val_examples=val)
    steps, vals = result.curve("val_loss")
    assert result.stopped_early and steps[-1] < 60
    best = min(vals)
    assert result.best_step == steps[vals.index(best)]
    after = float(sft.answer_losses(model, sft.answer_batches(val, tok, cfg.context), dev)["all"].mean())
    assert after == pytest.approx(best, abs=1e-5)  # the best checkpoint was restored
    with pytest.raises(ValueError, match="patience"):
        sft.sft_train_config(get_profile("ci"), 0, steps=10, patience=-1)


# ---------------------------------------------------------------- provenance
def test_code_fingerprint_changes_with_any_imported_module(monkeypatch, tmp_path):
    closure = provenance.module_closure("workshop_utils.finetune_study")
    for name in (
        "workshop_utils.sft",
        "workshop_utils.lora",
        "workshop_utils.training",
        "workshop_utils.models",
    ):
        assert name in closure
    assert "workshop_utils.stats" not in closure  # reading a study is not part of producing it
    before = provenance.code_fingerprint("workshop_utils.finetune_study")
    real = provenance._module_file
    edited = tmp_path / "training.py"
    edited.write_text(real("workshop_utils.training").read_text().replace("lr_at", "lr_at_", 1))
    monkeypatch.setattr(provenance, "_module_file",
                        lambda n: edited if n == "workshop_utils.training" else real(n))  # fmt: skip
    assert provenance.code_fingerprint("workshop_utils.finetune_study") != before


def test_stored_studies_are_current_and_a_changed_input_is_refused(tmp_path):
    for name in ("ci", "cpu"):
        profile = get_profile(name)
        # raises StaleStudyError when code or settings changed; a base built on this machine may have other
        # bits than the study's (float rounding differs between CPUs), so it is not what this test checks
        study = finetune_report.load_study(profile, allow_other_base=True)
        assert set(study["best_lr"]) == set(finetune_study.ARMS)
        for arm in finetune_study.ARMS:
            assert len(finetune_report.seed_runs(study, arm)) == len(profile.study.seeds)
        assert "stored study of" in finetune_report.stored_label(study)
    data = json.loads(finetune_study.study_path("ci").read_text())
    data["provenance"]["inputs"]["sft"] = data["provenance"]["inputs"]["sft"].replace("1500", "1501")
    (tmp_path / "s.json").write_text(json.dumps(data))
    with pytest.raises(finetune_report.StaleStudyError, match="input 'sft' changed"):
        finetune_report.load_study(get_profile("ci"), tmp_path / "s.json")
    with pytest.raises(finetune_report.StaleStudyError, match="no stored study"):
        finetune_report.load_study(get_profile("ci"), tmp_path / "missing.json")


def test_bad_arm_and_metric_are_named():
    cfg = LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1)  # fmt: skip
    with pytest.raises(ValueError, match="unknown arm"):
        finetune_study.build_arm(LlamaForCausalLM(cfg), get_profile("ci"), "qlora", 0, [0])
    study = finetune_report.load_study(get_profile("ci"), allow_other_base=True)
    with pytest.raises(ValueError, match="unknown metric"):
        finetune_report.arm_matrix(study, "full", "bleu")
    with pytest.raises(ValueError, match="unknown arm"):
        finetune_report.summarize(study, "adapter")


def test_finetune_with_token_rows_rebuilds_the_same_model(tok):
    """lora.finetune(token_rows=True) stores A, B and the rows; rebuild_finetuned gives the same logits."""
    dev = pick_device(force_cpu=True)
    base = tiny_model(len(tok), seed=1)
    train = sft.generate_examples(32, seed=0, families=("max",))
    cfg = sft.sft_train_config(get_profile("ci"), 0, steps=6, lr=1e-2)
    model, run = lora.finetune(
        base, tok, train, train[:8], cfg, dev, r=2, alpha=4, token_rows=True, measure=False
    )
    assert run.token_rows and math.isfinite(run.answer_loss) and run.content_loss > 0
    weights = lora.trained_weights(model)
    assert any(n.endswith("values") for n in weights)
    rebuilt = lora.rebuild_finetuned(base, lora.FinetuneRun.from_row(run.row()), weights)
    x = torch.tensor([[1, 4, 40, 50, 6, 5]])
    with torch.no_grad():
        assert torch.equal(rebuilt(input_ids=x).logits, model(input_ids=x).logits)
    with pytest.raises(ValueError, match="token_rows"):
        lora.finetune(base, tok, train, train[:8], cfg, dev, token_rows=True, measure=False)
