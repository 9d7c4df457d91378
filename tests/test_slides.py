"""Slide decks: every number comes from a workshop_utils call, every deck is offline and self-contained.

The decks are built into a temporary folder against a fake run table, so the headline-metric slide is
tested both ways (measured and "not run yet"). Published values are from ../shared/reference_figures.md.
"""

from __future__ import annotations

import html
import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from workshop_utils.config import get_profile
from workshop_utils.course import MODULES
from workshop_utils.data.dedup import s_curve
from workshop_utils.memory import zero_model_states_bytes
from workshop_utils.params import build_on_meta, count_model_parameters
from workshop_utils.scale import starcoder_run
from workshop_utils.scaling import CHINCHILLA_TEX

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "slides"))
sys.path.insert(0, str(ROOT / "tools"))
import build_site  # noqa: E402
import build_slides  # noqa: E402
from vendor_assets import REVEAL  # noqa: E402

# A bare number: digits not glued to a letter, '-', '/', '.', '_' or a placeholder brace (so "GPT-2",
# "fp16", "7B", "6ND", "ZeRO-3", "4-bit" are names, not claims). Code spans (`...`) are formulas and are skipped.
BARE_NUMBER = re.compile(r"(?<![A-Za-z0-9_.\-/{])\d+(?:[.,]\d+)*(?![A-Za-z0-9_}\-])")
FAKE_METRIC = {"notebook": "01_architecture_evolution", "name": "char accuracy", "value": 0.8125, "unit": ""}


class _Loaded(HTMLParser):
    """src/href of everything a browser would load (script bodies are not parsed as tags)."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        if tag in ("script", "img", "link", "iframe", "source", "video", "audio", "embed", "object"):
            self.refs += [v for k, v in attrs if k in ("src", "href", "data") and v]


def _loaded_refs(page: str) -> list[str]:
    parser = _Loaded()
    parser.feed(page)
    return parser.refs


def bare_numbers(template: str) -> list[str]:
    """Numbers typed into a slide template outside placeholders and code spans."""
    prose = "".join(p for i, p in enumerate(template.split("`")) if i % 2 == 0)
    return BARE_NUMBER.findall(prose)


@pytest.fixture(scope="module")
def decks(tmp_path_factory) -> dict:
    run = tmp_path_factory.mktemp("run")
    rows = [
        {"notebook": "01_architecture_evolution.ipynb", "status": "ok", "metric": FAKE_METRIC},
        {"notebook": "02_data_pipeline.ipynb", "status": "failed", "metric": {**FAKE_METRIC, "value": 9.0}},
    ]
    (run / "run_table.json").write_text(
        json.dumps({"profile": "ci", "date": "2026-01-01 00:00 UTC", "rows": rows})
    )
    built = build_slides.build_all(tmp_path_factory.mktemp("slides"), run_dir=run)
    return {d.stem: d for d in built}


def test_one_deck_per_module(decks) -> None:
    assert list(decks) == [Path(m.notebook).stem for m in MODULES]
    assert all(d.path.is_file() and d.path.name == f"{d.stem}.html" for d in decks.values())


def test_checker_catches_typed_numbers() -> None:
    assert bare_numbers("fits on one 48 GB GPU") == ["48"]
    assert bare_numbers("saves 0.373 bits, 1,045 GB") == ["0.373", "1,045"]
    assert bare_numbers("GPT-2, fp16, 7B, 6ND, ZeRO-3, 4-bit, {nopt1}, `1 - s**r`") == []


def test_no_number_is_typed_into_a_deck(decks) -> None:
    typed = {
        d.stem: [(t, n) for t in d.templates() for n in bare_numbers(t)]
        for d in decks.values()
        if any(bare_numbers(t) for t in d.templates())
    }
    assert not typed, f"numbers typed instead of computed (record them with d.value): {typed}"


def test_every_value_is_shown_and_every_placeholder_resolves(decks) -> None:
    for d in decks.values():
        page = d.path.read_text(encoding="utf-8")
        used = {k for t in d.templates() for k in re.findall(r"\{([a-z0-9_]+)\}", t)}
        assert used <= set(d.values), f"{d.stem}: placeholders without a value: {used - set(d.values)}"
        assert set(d.values) <= used, f"{d.stem}: values never shown: {set(d.values) - used}"
        for key, v in d.values.items():
            assert html.escape(v.text) in page, f"{d.stem}: {key}={v.text!r} not in the page"
        rendered = [d.render_text(t) for t in d.templates()]
        assert not any(re.search(r"\{[a-z0-9_]+\}", r) for r in rendered)


def test_decks_are_self_contained_with_speaker_notes(decks) -> None:
    for d in decks.values():
        page = d.path.read_text(encoding="utf-8")
        assert build_site.external_references(page) == [], d.stem
        assert [r for r in _loaded_refs(page) if not r.startswith("data:")] == [], d.stem
        assert f"reveal.js {REVEAL.version}" in page and "Reveal.initialize" in page and "RevealNotes" in page
        sections = page.count("<section ")
        assert sections == len(d.slides) + 1  # + the title slide
        assert page.count('<aside class="notes">') == sections, f"{d.stem}: a slide without speaker notes"
        figures = sum(s.figure is not None for s in d.slides)
        assert page.count('src="data:image/png;base64,') == figures


def test_reveal_is_pinned_by_version_and_integrity() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", REVEAL.version)
    assert REVEAL.integrity.startswith("sha512-") and len(REVEAL.integrity) == 95
    assert "dist/reveal.js" in REVEAL.files and "dist/plugin/notes.js" in REVEAL.files


# ------------------------------------------------------------- the numbers, recomputed independently
def test_deck_01_parameter_counts(decks) -> None:
    v = decks["01_architecture_evolution"].values
    # reference_figures.md §3.1: Llama-2-7B has exactly 6,738,415,616 parameters.
    assert v["llama7b_total"].raw == 6_738_415_616 == count_model_parameters(build_on_meta("llama-2-7b"))
    assert v["llama7b_total"].text == "6,738,415,616" and v["llama7b_meta"].raw == v["llama7b_total"].raw


def test_deck_02_s_curve(decks) -> None:
    v = decks["02_data_pipeline"].values
    assert (v["bands"].raw, v["rows"].raw, v["hashes"].raw) == (14, 8, 112)  # FineWeb's MinHash setting
    assert v["p_at_thr"].raw == pytest.approx(float(s_curve(0.8, 14, 8)), rel=1e-12)
    assert v["refinedweb_removed"].raw == 90.0  # RefinedWeb: "nearly 90 % of the documents"
    assert v["wiki_epochs"].raw == pytest.approx(2.45) and v["github_epochs"].raw == pytest.approx(
        0.64
    )  # Table 1
    assert v["book_rule"].raw == pytest.approx(90.0)  # LLaMA's book-level dedup
    assert len(decks["02_data_pipeline"].slides) >= 8
    assert 2 < v["cc_bytes_per_token"].raw < 6  # 3.3 TB over 0.67 x 1.4T / 1.10 tokens
    assert v["snapshot_docs"].raw == pytest.approx(
        15e12 / 96 / 1000 / 0.1 / 1e9
    )  # FineWeb / page / kept share


def test_deck_03_scale(decks) -> None:
    v = decks["03_tokenization_and_pretraining"].values
    # reference_figures.md §4: StarCoderBase 15.5B x 1T tokens -> 6ND = 9.3e22 FLOPs.
    assert v["star_flops"].raw == pytest.approx(9.3e22, rel=1e-9) == starcoder_run().train_flops


def test_deck_04_memory(decks) -> None:
    v = decks["04_memory_and_mixed_precision"].values
    assert v["bytes_per_param"].raw == pytest.approx(16, rel=1e-6)  # ZeRO §3.1: 16 bytes per parameter
    assert v["states"].raw == pytest.approx(108, rel=0.01)  # 16 x 6.74B = 107.8 GB (reference_figures §1.1)
    assert v["total"].raw > 140  # "why 7B needs 140 GB+" (Korthikanti activations at seq 4096)
    assert v["fp16_max"].raw == 65504.0


def test_deck_05_zero(decks) -> None:
    v = decks["05_distributed_training"].values
    for stage, paper in {0: 120.0, 1: 31.4, 2: 16.6, 3: 1.9}.items():  # ZeRO Fig. 1 worked example
        assert v[f"zero{stage}"].raw == pytest.approx(paper, rel=0.015 if stage == 3 else 0.01)
        assert v[f"zero{stage}"].raw == zero_model_states_bytes(7_500_000_000, stage, 64) / 1e9


def test_deck_06_chinchilla(decks) -> None:
    v = decks["06_scaling_laws"].values
    # reference_figures.md (Chinchilla frontier table): N_opt at C = 5.76e23 is 32.2B / 40.3B / 72.3B.
    assert [v[f"nopt{i}"].raw for i in range(3)] == pytest.approx([32.2, 40.3, 72.3], rel=0.005)
    assert v["nopt1"].raw == pytest.approx(CHINCHILLA_TEX.n_opt(5.76e23) / 1e9, rel=1e-12)
    assert v["tokens_per_param"].raw == pytest.approx(59.1, rel=0.005)


def test_deck_07_sft_sizes(decks) -> None:
    v = decks["07_supervised_finetuning"].values
    assert v["n_train"].raw == get_profile("ci").sft.n_train and v["n_overlap"].raw == 0
    assert v["ignore"].raw == -100


def test_deck_08_lora_and_nf4(decks) -> None:
    v = decks["08_lora_and_qlora"].values
    # reference_figures.md §8.1: GPT-3, W_q and W_v: r = 1, 4, 8 -> 4,718,592 / 18,874,368 / 37,748,736;
    # 175e9 / 18,874,368 = 9,272x; the r = 4 adapter is 36.0 MiB in fp16; Llama-2-7B r = 8 on q, v: 4,194,304.
    assert (v["gpt3_r1"].raw, v["gpt3_r4"].raw, v["gpt3_r8"].raw) == (4_718_592, 18_874_368, 37_748_736)
    assert v["gpt3_ratio"].raw == pytest.approx(9272, rel=1e-3) and v["gpt3_mb"].text == "36.0 MiB"
    assert v["llama_lora"].raw == 4_194_304
    assert v["bits_saved"].raw == pytest.approx(0.373, abs=5e-4)  # QLoRA §3: 0.373 bits per parameter


def test_headline_slide_reads_the_run_table(decks) -> None:
    v = decks["01_architecture_evolution"].values
    assert v["headline"].raw == FAKE_METRIC["value"] and v["headline_name"].raw == "char accuracy"
    assert "ci profile, 2026-01-01" in v["headline_run"].text
    failed = decks["02_data_pipeline"].values  # a failed row is not a measurement
    assert failed["headline"].text == build_slides.NOT_RUN and "headline_name" not in failed
    assert decks["08_lora_and_qlora"].values["headline"].text == "not run yet"


# ------------------------------------------------------------------------------------ bad input
def test_builder_rejects_bad_input(tmp_path) -> None:
    with pytest.raises(ValueError, match="no deck source matches 'zz'"):
        build_slides.build_all(tmp_path, only="zz")
    d = build_slides.DeckBuilder(4, tmp_path)
    d.value("x", 1)
    with pytest.raises(ValueError, match="recorded twice"):
        d.value("x", 2)
    with pytest.raises(ValueError, match="must match"):
        d.value("Bad Key", 1)
    d.slide("t", ["{missing}"])
    with pytest.raises(KeyError, match="no value 'missing'"):
        build_slides.render_html(d.deck())
