"""Decks 06-09: one slide per notebook section, speaker notes with minutes and a question, key values recomputed.

The decks are built (not rendered) against an empty run folder, so the closing slide says "not run yet".
Each deck's key numbers are checked against an independent computation or a published row
(data/published, through `published_helpers.expect`, at the figure's own tolerance).
"""

from __future__ import annotations

import re
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from published_helpers import expect

from workshop_utils import finetune_report, planner, published, sft_lessons_report
from workshop_utils.config import get_profile
from workshop_utils.lora import TARGET_SETS
from workshop_utils.memory import TORCH_STEP_BYTES
from workshop_utils.models import load_course_model

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "slides"))
import build_slides  # noqa: E402

STEMS = ("06_scaling_laws", "07_supervised_finetuning", "08_lora_and_qlora", "09_build_adapt_or_buy")


@pytest.fixture(scope="module")
def decks(tmp_path_factory) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    empty_run = tmp_path_factory.mktemp("no_run")
    sources = [s for s in build_slides.deck_sources() if any(s.stem.endswith(stem) for stem in STEMS)]
    built = [build_slides.build_deck(s, empty_run) for s in sources]
    return {d.stem: d for d in built}


@pytest.mark.parametrize("stem", STEMS)
def test_a_slide_per_section_with_minutes_and_a_question(decks, stem) -> None:
    d = decks[stem]
    assert 8 <= len(d.slides) <= 15, (stem, len(d.slides))
    for s in d.slides:
        assert 2 <= len(s.bullets) <= 4, (stem, s.title)
        assert re.match(r"\{min_[a-z0-9_]+\}\. (Ask before the checkpoint|Recap, then ask): \S", s.notes), (
            s.notes
        )
        assert "?" in s.notes, (stem, s.title)  # the question to ask the room
    content = d.slides[:-1]  # the last one is the run-table slide
    assert all(re.search(r"\{[a-z0-9_]+\}", " ".join([s.title, *s.bullets])) for s in content), stem
    minutes = [v.raw for k, v in d.values.items() if k.startswith("min_") and k != "min_total"]
    assert len(minutes) == len(d.slides) and all(m > 0 for m in minutes)
    assert d.values["min_total"].raw == sum(minutes)
    assert d.values["headline"].text == build_slides.NOT_RUN


def test_deck_06_against_published_rows(decks) -> None:
    v = decks["06_scaling_laws"].values
    expect("scaling", "table3_67b/ratio", 1 + v["t3_off"].raw)
    expect("scaling", "table3_tokens_per_param/min", v["tpp_min"].raw)
    expect("scaling", "table3_tokens_per_param/max", v["tpp_max"].raw)
    expect("scaling", "chinchilla_6nd", v["chin_c"].raw)
    expect("scaling", "frontier/tex/loss_chinchilla", v["loss_chin"].raw)
    # PaLM App. B: attention adds 12 L d T per token to 6N, a share of 2 L d T / N; GPT-3's published shape
    g = {k: published.value("pretraining", f"gpt3_{k}") for k in ("params", "layers", "d_model", "context")}
    assert v["attn_gpt3"].raw == pytest.approx(
        2 * g["layers"] * g["d_model"] * g["context"] / g["params"], rel=1e-9
    )
    assert v["t3_odd"].raw == "67B" and (v["t3_ok"].raw, v["t3_n"].raw) == (8, 9)


def test_deck_07_against_the_stored_runs(decks) -> None:
    v = decks["07_supervised_finetuning"].values
    study = finetune_report.load_study(get_profile("cpu"), allow_other_base=True)
    content = {
        a: torch.tensor(
            [r["test"]["content"] for r in finetune_report.seed_runs(study, a)], dtype=torch.float64
        )
        for a in ("full", "random")
    }
    assert v["pretrain"].raw == pytest.approx(float((content["random"] - content["full"]).mean()), rel=1e-9)
    lessons = sft_lessons_report.load_lessons(allow_other_base=True)
    assert v["teacher_acc"].raw == lessons["teacher"]["correct"] / lessons["teacher"]["n"]
    assert v["ignore"].raw == -100 and v["n_overlap"].raw == 0
    assert 0 < v["resp_share"].raw < 0.5 and v["resp_share"].raw + v["prompt_share"].raw == pytest.approx(1.0)
    assert v["pad_packed"].raw < v["pad_padded"].raw  # packing wastes fewer slots
    assert v["trl_same"].raw == v["trl_checked"].raw > 0
    assert v["base_chat"].raw.strip() != v["gold"].raw  # the base model continues the text


def test_deck_08_against_published_rows(decks) -> None:
    v = decks["08_lora_and_qlora"].values
    expect("fine_tuning", "qlora_constant_bits", v["bits_single"].raw)
    expect("fine_tuning", "qlora_dq_constant_bits", v["bits_double"].raw)
    assert v["step0"].raw == 0.0 and v["merge64"].raw < 1e-9
    # r (d_in + d_out) for every q and v projection of the ci course model, counted from its shapes
    base = load_course_model(get_profile("ci"))
    qv = [m for n, m in base.named_modules() if n.rsplit(".", 1)[-1] in TARGET_SETS["q,v"]]
    n_qv = sum(v["s1_r"].raw * (m.in_features + m.out_features) for m in qv)
    assert (
        v["s1_trainable"].raw == n_qv
        and v["s1_total"].raw == sum(p.numel() for p in base.parameters()) + n_qv
    )
    # fp32 grads + AdamW m and v: 12 bytes per trainable parameter, plus one step counter per tensor
    n_qv8 = sum(v["mem_r"].raw * (m.in_features + m.out_features) for m in qv)
    lora_bytes = 12 * n_qv8 + TORCH_STEP_BYTES * 2 * len(qv)  # A and B per adapted matrix
    full_bytes = sum(12 * p.numel() + TORCH_STEP_BYTES for p in base.parameters())
    assert v["mem_share"].raw == pytest.approx(lora_bytes / full_bytes, rel=1e-12)
    assert v["big_qlora"].raw < published.value("planning", "guanaco_65b_gpu_memory")  # 65B on one 48 GB GPU
    assert v["big_full"].raw > published.value("fine_tuning", "qlora_65b_full_ft_memory")  # "> 780 GB"
    assert v["err_nf4"].raw < v["err_int4"].raw


def test_deck_09_against_published_rows(decks) -> None:
    v = decks["09_build_adapt_or_buy"].values
    expect("pretraining", "llama2_6nd/7B/mfu", v["mfu_pre"].raw)
    hours = published.value("planning", "alpaca_hours")
    assert abs(v["alpaca_h"].raw - hours) / hours < 0.01  # the Alpaca round trip, as the notebook checks
    assert (
        40
        < v["guanaco_paged"].raw
        < published.value("planning", "guanaco_65b_gpu_memory")
        < v["guanaco_lora"].raw
    )
    assert v["n_pairs"].raw == len(planner.OPTIONS) * len(planner.scenarios())
    bot = planner.scenarios()["support-bot"]  # the flip: API just below, self-hosting just above
    assert planner.plan(replace(bot, requests_per_day=v["flip_lo"].raw))[1].choice == "api"
    assert planner.plan(replace(bot, requests_per_day=v["flip_hi"].raw))[1].choice == "self-host"
    assert v["lora_flops"].raw / v["full_flops"].raw == pytest.approx(4 / 6)
