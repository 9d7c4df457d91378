"""Module 08's fine-tuning grid: the runner's pieces, the report's arithmetic on a grid whose truth is known,
stale-grid refusal, the published defaults it compares with, and the stored grid itself."""

from __future__ import annotations

import math

import pytest
import torch
from peft import LoraConfig, get_peft_model
from stored_helpers import assert_refuses_other_code
from test_sft import tiny_model
from transformers import LlamaConfig, LlamaForCausalLM

from workshop_utils import finetune_grid, finetune_grid_report, lora
from workshop_utils.config import get_profile
from workshop_utils.lora import lora_paper_count

N = 200  # test examples of the synthetic grid


def test_points_cover_the_trend_the_sweep_and_qlora():
    names = [p.name for p in finetune_grid.points()]
    assert len(names) == len(set(names))
    for w in finetune_grid.WIDTHS:
        assert f"d{w} full" in names and all(f"d{w} r{r}" in names for r in finetune_grid.RANKS)
    for factor_points in finetune_grid_report.SWEEP_FACTORS.values():
        assert set(factor_points) <= set(names)
    assert finetune_grid_report.SWEEP_BASELINE in names and "QLoRA r4" in names
    assert len(finetune_grid.WIDTHS) >= 3  # the "at least three base sizes"


def test_base_config_keeps_the_course_models_shape_and_rejects_odd_widths():
    profile = get_profile("cpu")
    c = finetune_grid.base_config(profile, 256, 2048)
    assert (c.hidden_size, c.intermediate_size, c.num_attention_heads, c.num_key_value_heads) == (
        256,
        768,
        8,
        4,
    )
    assert c.num_hidden_layers == profile.lm.n_layers and c.head_dim == finetune_grid.HEAD_DIM
    c128 = finetune_grid.base_config(profile, 128, 2048)
    assert c128.hidden_size == profile.lm.d_model and c128.intermediate_size == profile.lm.d_ff
    with pytest.raises(ValueError, match="multiple of 64"):
        finetune_grid.base_config(profile, 96, 2048)


def test_build_model_trains_only_adapters_and_rows(tmp_path, monkeypatch):
    tiny_model(300, seed=0).save_pretrained(tmp_path, safe_serialization=True)
    monkeypatch.setattr(finetune_grid, "base_dir", lambda width: tmp_path)
    full = finetune_grid.build_model(finetune_grid.Point("f", r=None, alpha=0.0), 0, [1, 2])
    assert all(p.requires_grad for p in full.parameters())
    model = finetune_grid.build_model(finetune_grid.Point("l", r=2, alpha=4.0, targets="q,v"), 0, [1, 2])
    trainable = {n.rsplit(".", 1)[-1] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"lora_A", "lora_B", "values"}  # adapters + the token rows, nothing else
    scales = {m.scale for m in model.modules() if isinstance(m, lora.LoRALinear)}
    assert scales == {2.0}


def test_alpha_2r_is_rslora_at_alpha_8():
    """The grid's r=16, alpha=32 run has the scale PEFT's rsLoRA (alpha/sqrt(r)) gives at alpha=8."""
    cfg = LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1)  # fmt: skip
    peft_model = get_peft_model(LlamaForCausalLM(cfg), LoraConfig(r=16, lora_alpha=8, use_rslora=True,
                                                                  target_modules=["q_proj"]))  # fmt: skip
    q = peft_model.base_model.model.model.layers[0].self_attn.q_proj
    ours = lora.LoRALinear(torch.nn.Linear(64, 64), r=16, alpha=32)
    assert q.scaling["default"] == ours.scale == 8 / math.sqrt(16)


# ---------------------------------------------------------------- the report, on a grid whose truth is known
def _synthetic_grid(recovered: float = 0.8) -> dict:
    """Per-example losses: base 5, full FT 1 (gain 4), LoRA at each rank recovering `recovered` of it."""
    gen = torch.Generator().manual_seed(0)
    difficulty = torch.rand(N, generator=gen)
    runs, base = [], {}
    for w in finetune_grid.WIDTHS:
        base[str(w)] = {m: (5 + difficulty).tolist() for m in ("all", "content", "format")}
    for p in finetune_grid.points():
        loss = 1.0 if p.r is None else 5 - 4 * recovered
        loss += {"lr 1e-2": 0.5, "targets q,v": 0.3, "r16 alpha 8 (alpha/r)": 0.2}.get(p.name, 0.0)
        for seed in finetune_grid.SEEDS:
            x = (loss + difficulty + 0.01 * torch.randn(N, generator=gen)).tolist()
            runs.append({"point": p.name, "seed": seed, "val": {"all": x, "content": x, "format": x},
                         "test": {"all": x, "content": x, "format": x}, "exact_match": 0.5, "total": 1000,
                         "percent": 100.0 if p.r is None else 0.5 * (p.r or 1), "seconds": 2.0 if p.quantized else 1.0,
                         "peak_bytes": 1e6})  # fmt: skip
    return {"points": [vars(p) for p in finetune_grid.points()], "base": base, "runs": runs}


def test_trend_table_recovers_the_known_share():
    rows = finetune_grid_report.trend_table(_synthetic_grid(0.8))
    assert len(rows) == len(finetune_grid.WIDTHS) * (1 + len(finetune_grid.RANKS))
    for row in rows:
        expected = 1.0 if row["r"] is None else 0.8
        assert row["recovered"].mean == pytest.approx(expected, abs=0.01)
        assert row["verdict"] == ("holds" if row["r"] is None else "does not hold")
    d, words = finetune_grid_report.trend_direction(_synthetic_grid(0.8), rows, 4)
    assert abs(d.mean) < 0.01 and words == "no change beyond 2 SE"
    shares = finetune_grid_report.share_for_claim(rows)
    assert shares == {w: None for w in finetune_grid.WIDTHS}
    high = finetune_grid_report.share_for_claim(finetune_grid_report.trend_table(_synthetic_grid(0.99)))
    assert high == {w: 0.5 for w in finetune_grid.WIDTHS}  # the smallest share (r=1) already reaches it


def test_sweep_ranks_factors_and_defaults_follow_the_2se_rule():
    grid = _synthetic_grid()
    effects = {r["point"]: r for r in finetune_grid_report.sweep_effects(grid)}
    assert effects["lr 1e-2"]["effect"].mean == pytest.approx(0.5, abs=0.01)
    assert effects["dropout 0.1"]["words"].startswith("within noise")
    assert effects["lr 1e-2"]["words"].startswith("worse by")
    ranking = [f for f, _ in finetune_grid_report.factor_ranking(grid)]
    assert ranking[:3] == ["learning rate", "target modules", "alpha rule at r=16"]
    rows = {r["setting"]: r for r in finetune_grid_report.recommended_defaults(grid)}
    assert rows["target modules"]["agrees"].startswith("with QLoRA")
    assert rows["alpha at a larger r"]["agrees"] == "with rsLoRA"
    assert rows["dropout"]["agrees"].startswith("yes")
    assert rows["rank r"]["this run"].startswith("r = 1")
    q = finetune_grid_report.qlora_cost(grid)
    assert q["time_ratio"] == pytest.approx(2.0) and q["loss"]["all"][1].startswith("no difference")


def test_bad_point_split_and_metric_are_named():
    grid = _synthetic_grid()
    with pytest.raises(ValueError, match="unknown grid point"):
        finetune_grid_report.grid_matrix(grid, "d512 r4")
    with pytest.raises(ValueError, match="split must be"):
        finetune_grid_report.grid_matrix(grid, "d128 r4", "train")
    with pytest.raises(ValueError, match="metric"):
        finetune_grid_report.grid_matrix(grid, "d128 r4", "test", "bleu")


def test_a_grid_from_other_code_is_refused(tmp_path):
    inputs = finetune_grid.grid_inputs({"64": "a" * 64})
    grid = assert_refuses_other_code(tmp_path, finetune_grid.ENTRY, inputs, _synthetic_grid(),
                                     finetune_grid_report.load_grid, "no stored grid")  # fmt: skip
    assert len(finetune_grid_report.trend_table(grid)) == 12


# ---------------------------------------------------------------- published figures it compares with
def test_gpt3_point_from_table4():
    pub = finetune_grid_report.published()
    assert all({"value", "source", "location", "status"} <= set(v) for v in pub.values())
    # Table 4's "4.7M" is r=1 on W_q, W_v of GPT-3 (96 layers, d=12288): the count, recomputed, within its rounding
    assert lora_paper_count(1, n_layers=96, d_model=12288) == pytest.approx(pub["lora_gpt3_r1_trainable"]["value"],
                                                                            abs=0.05e6)  # fmt: skip
    g = finetune_grid_report.gpt3_point()
    assert g["trainable %"] == pytest.approx(100 * 4.7 / 175255.8, rel=1e-9)  # 0.0027 %
    assert g["wikisql"] == pytest.approx(73.4 / 73.8) and g["mnli"] > 1  # LoRA >= FT on MNLI-m (91.7 vs 89.5)


def test_stored_grid_is_current():
    grid = finetune_grid_report.load_grid(allow_other_base=True)
    assert "stored grid of" in finetune_grid_report.stored_label(grid, "grid")
    for p in finetune_grid.points():
        assert len(finetune_grid_report.grid_runs(grid, p.name)) == len(finetune_grid.SEEDS)
