"""Decks 00, 01, 03, 04, 05: a slide per notebook section, notes with minutes and a question, and key numbers
recomputed here independently (from the config tables, published rows or first principles).

The decks are built as `tests/test_slides.py` builds them (`build_slides.build_deck`), against an empty run
table, so the headline slide says "not run yet". Published values are from ../shared/reference_figures.md.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from workshop_utils import published
from workshop_utils.config import BUDGET_SECONDS, get_profile
from workshop_utils.gpu_workloads import results_file
from workshop_utils.tokenizer import SPECIAL_TOKENS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "slides"))
sys.path.insert(0, str(ROOT / "tools"))
import build_slides  # noqa: E402

DECKS = ("00_setup", "01_architecture_evolution", "03_tokenization_and_pretraining",
         "04_memory_and_mixed_precision", "05_distributed_training")  # fmt: skip


@pytest.fixture(scope="module")
def decks(tmp_path_factory) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    run = tmp_path_factory.mktemp("run")
    (run / "run_table.json").write_text('{"profile": "ci", "date": "-", "rows": []}')
    return {stem: build_slides.build_deck(ROOT / "slides" / f"deck_{stem}.py", run) for stem in DECKS}


@pytest.mark.parametrize("stem", DECKS)
def test_a_slide_per_section_with_minutes_and_a_question(decks, stem) -> None:
    deck = decks[stem]
    assert 8 <= len(deck.slides) <= 15, (stem, len(deck.slides))
    *content, closing = deck.slides
    assert closing.title == "In the notebook"
    for s in content:
        assert 2 <= len(s.bullets) <= 4, (stem, s.title, len(s.bullets))
    for s in deck.slides:
        minutes = re.findall(r"\{(min_[a-z0-9_]+)\}", s.notes)
        assert minutes and deck.values[minutes[0]].text.endswith(" min"), (stem, s.title)
        assert "Ask" in s.notes and s.notes.rstrip().endswith("?"), (stem, s.title)
    planned = sum(v.raw for k, v in deck.values.items() if k.startswith("min_") and k != "min_total")
    assert deck.values["min_total"].raw == planned
    titles = [deck.render_text(s.title) for s in content]
    missing = [h for h in _sections(stem) if RETITLED.get(h, h) not in titles]
    assert not missing, f"{stem}: notebook sections without a slide: {missing}"


# A heading whose section number cannot be a value on the slide (the digit check) is retitled.
RETITLED = {"What each rank sends: ZeRO §7": "What each rank sends: the ZeRO paper's traffic count"}


def _sections(stem: str) -> list[str]:
    """The notebook's numbered ## and ### headings, without their numbers (recap and exercises excluded)."""
    cells = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text(encoding="utf-8"))["cells"]
    lines = [ln for c in cells if c["cell_type"] == "markdown" for ln in "".join(c["source"]).splitlines()]
    return [m.group(1) for ln in lines if (m := re.match(r"^#{2,3} \d+(?:\.\d+)*\.? (.+)$", ln))]


def test_deck_00_profiles_map_and_matmul(decks) -> None:
    v = decks["00_setup"].values
    assert [v[f"budget_{p}"].raw for p in ("ci", "cpu", "gpu")] == [
        BUDGET_SECONDS[p] for p in ("ci", "cpu", "gpu")
    ]
    assert v["n_modules"].raw == len(list((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    lm = {p: get_profile(p).lm for p in ("cpu", "gpu")}
    tokens = {p: lm[p]["steps"] * lm[p]["batch_size"] * lm[p]["context"] for p in lm}
    assert v["tok_factor"].raw == pytest.approx(tokens["gpu"] / tokens["cpu"])
    assert v["cube_ratio"].raw == 8 and v["ratio_lo"].raw == 4 and v["ratio_hi"].raw == 16  # (2n)^3 / n^3
    assert v["t4_bf16"].raw is published.value("hardware", "t4-16gb/bf16") is False
    assert v["fp16_exp"].raw == 5 and v["bf16_exp"].raw == v["fp32_exp"].raw == 8  # IEEE 754, bfloat16
    assert v["ci_total"].raw == results_file("notebook_times_ci")["total_s"]


def test_deck_01_counts_masks_and_widths(decks) -> None:
    v = decks["01_architecture_evolution"].values
    assert v["llama7b_total"].raw == published.value("pretraining", "llama2_7b_params")
    assert v["gpt2_total"].raw == published.value("pretraining", "gpt2_params")
    n = v["n_src"].raw
    assert v["gpt2_deps"].raw == n * (n + 1) // 2 and v["bert_deps"].raw == n * n
    assert v["n_same"].raw == v["n_attn"].raw == 6 and v["n_match"].raw == 4
    mlp_per_layer = published.value("pretraining", "llama2_7b_count/mlp_per_layer")  # 3 x 4096 x d_ff
    assert v["swi_hidden"].raw == v["l7_ff"].raw == mlp_per_layer // (3 * 4096)
    assert (
        v["kv70_mha"].raw / v["kv70"].raw == pytest.approx(v["h70"].raw / v["k70"].raw) == 8
    )  # 64 / 8 heads
    assert v["kv70"].raw == pytest.approx(
        2 * 80 * 8 * 128 * 4096 * 2 / 2**30
    )  # k, v x layers x kv heads x dim
    assert v["pre_hi"].raw < v["pre_lo"].raw and v["post_hi"].raw > 0.85 * v["post_lo"].raw


def test_deck_03_bpe_loss_and_compute(decks) -> None:
    v = decks["03_tokenization_and_pretraining"].values
    bpe = get_profile("ci").bpe
    assert v["n_merges"].raw == bpe["vocab_size"] - 256 - len(SPECIAL_TOKENS)
    assert (
        v["hf_equal"].raw is True
        and v["first_diff"].raw == results_file("bpe_ci")["first_difference_default_rule"]
    )
    assert v["ce_hand"].raw == pytest.approx(v["ce_model"].raw, abs=1e-4)
    assert v["ln_vocab"].raw == pytest.approx(math.log(get_profile("ci").lm["vocab_size"]))
    assert abs(v["ce_hand"].raw - v["ln_vocab"].raw) < 0.5 and v["past_moved"].raw == 0
    l7 = published.figure("pretraining", "llama2_6nd/7B/flops")
    assert v["l7_flops"].raw == pytest.approx(l7.value, rel=0.005)  # 6 x 6.74e9 x 2e12, printed to 3 digits
    # exercise 2: 6N + 12 L d T with N = parameters less the input embedding (32 layers, d = 4096)
    n = (
        published.value("pretraining", "llama2_7b_params")
        - published.value("pretraining", "llama2_vocab_size") * 4096
    )
    attention = 12 * 32 * 4096 * 4096
    assert v["ex_attn"].raw == pytest.approx(attention / (6 * n + attention))


def test_deck_04_zero_table_and_underflow(decks) -> None:
    v = decks["04_memory_and_mixed_precision"].values
    assert v["n_agree"].raw == v["n_cells"].raw == len(published.group("memory", "zero_table1"))
    assert v["t1_ours"].raw == pytest.approx(16 * 7.5e9 / 64 / 1e9)  # ZeRO-3: 16 Ψ / N_d
    assert v["t1_paper"].raw == published.value("memory", "zero_table1/7.5e9/64/P_os+g+p")
    assert v["sdpa1"].raw < 140 < v["sdpa2"].raw  # "140 GB+" needs micro-batch 2 without stored scores
    assert v["lost16"].raw > 0.25 and v["lost_scaled"].raw < v["lost16"].raw / 10 and v["lost_bf16"].raw == 0
    assert v["ovf_last"].raw == np.finfo(np.float16).max and v["ovf_inf"].raw == math.inf
    assert v["gs1"].raw == v["gs0"].raw / 2 and v["scale"].raw == 2**15
    assert v["m_half"].raw < 0.55 * v["m_acts"].raw and v["m_ckpt"].raw < v["m_acts"].raw / 2


def test_deck_05_formulas_match_the_stored_launch(decks) -> None:
    v = decks["05_distributed_training"].values
    psi, world = v["psi_ci"].raw, v["world"].raw
    assert v["ddp_b"].raw == 16 * psi  # fp32: 4 + 4 + 8 bytes per parameter
    assert v["z3_ratio"].raw == pytest.approx(v["z3_stored"].raw, rel=1e-3)  # formula vs the measured launch
    assert v["l_ranks"].raw == pytest.approx(v["l_full"].raw, abs=1e-5) and v["g_diff"].raw < 1e-6
    assert v["v_ratio"].raw == 1.5 and v["v_ddp"].raw == 2 * psi and v["v_z1"].raw == v["v_z3"].raw
    assert v["state_rank"].raw == 8 * math.ceil(psi / world)
    big = published.value("pretraining", "llama2_7b_params")
    assert v["t_ddp"].raw == pytest.approx(2 * (8 - 1) / 8 * 2 * big / 100e9)  # ring all-reduce of bf16 grads
    assert v["t_z3"].raw == pytest.approx(1.5 * v["t_ddp"].raw)
