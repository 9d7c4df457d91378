"""The digit lint (tools/lint_digits.py): typed numbers in notebook markdown and slide text are flagged
unless the allow-list explains them (a citation in the sentence, a year, a reference, a name).

The repository tests fail, by notebook, while a notebook's markdown types a number the lint cannot explain:
fix the sentence (render the number from code, reword it, or give a published figure its source), or, if it
is a new kind of name or reference, extend the allow-list in the tool, with its reason.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import lint_digits  # noqa: E402
from lint_digits import flagged  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize(
    "text, numbers",
    [
        ("The course model has 229,696 parameters.", ["229,696"]),
        ("a 2-layer model, 64-wide", ["2", "64"]),
        ("training is 10x longer and 1.5× slower, at 90 %", ["10", "1.5", "90"]),
        ("a tolerance of 1e-5 nats; a context of 2048 tokens", ["1e-5", "2048"]),
        ("Alpaca cost $300.", ["300"]),
        ("Chinchilla trained 70B parameters on 1,400 billion tokens.", ["1,400"]),
        (
            "Hoffmann et al. 2022 fit a law. Ours has 229,696 parameters.",
            ["229,696"],
        ),  # the source is one sentence away
        (
            "the width `64` again; the width $229{,}696$",
            ["`64`", "$229{,}696$"],
        ),  # a bare number in code is a number
    ],
)
def test_typed_numbers_are_flagged(text: str, numbers: list[str]) -> None:
    assert flagged(text) == numbers


@pytest.mark.parametrize(
    "text",
    [
        "GPT-2, GPT-3 175B, Llama-2-7B, Llama 3, T5, H100, A100 80 GB, bf16, fp32, int4, NF4, 7B, ZeRO-3, 4-bit, 6ND",
        "GPT-2 (2019) and LLaMA (2023); Xiong et al. (2020, arXiv:2002.04745); (Raffel et al., 2020)",
        "Chinchilla trained 70B parameters on 1.4T tokens, 20 tokens per parameter (Hoffmann et al. 2022).",
        "ZeRO §3.1 counts 16 bytes per parameter; Table 3 and Fig. 1 and App. D.2 say 120 GB.",
        "module 03, modules 07 and 08, notebook 06, section 5's run, exercise 2, rank 0 and seed 0",
        "## 3. Results\n### 5.1 LayerNorm\n1. first item\n2) second item",
        "`d_model=64`, `steps × batch_size`, $2n^3$ FLOPs, `python -m x --seq 4096`, `{% generation %}`",
        "```\nx = 64\n```\nSee [the paper](https://arxiv.org/abs/2203.15556) ![figure](img/fig_3.png) <br>",
        "each figure with its source in `data/published/planning.json`: 52K examples, 3 epochs",
        "bitsandbytes 0.50 on CPU; fp16's 5 exponent bits overflow at 65504 (IEEE 754 binary16)",
    ],
)
def test_names_references_and_sourced_figures_are_allowed(text: str) -> None:
    assert flagged(text) == []


def test_findings_name_file_cell_sentence_and_number(tmp_path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("x = 64"),
        nbformat.v4.new_markdown_cell("# Title\n\nA 64-wide model."),
    ]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    (finding,) = [n for n in lint_digits.scan_notebook(path) if n.rule is None]
    assert (finding.where, finding.sentence, finding.number) == ("cell 1", "A 64-wide model.", "64")
    assert "cell 1" in str(finding) and "A 64-wide model." in str(finding)


def test_every_allow_rule_says_why() -> None:
    rules = lint_digits.SOURCES + lint_digits.ALLOWED
    assert all(name and pattern and why for name, pattern, why in rules)


def test_cli_lists_and_exits_clean_on_a_clean_notebook(capsys) -> None:
    assert lint_digits.main(["--no-slides", "--only", "00_setup", "--list"]) == 0
    assert "00_setup.ipynb" in capsys.readouterr().out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_markdown_types_no_unexplained_number(path: Path) -> None:
    bad = [str(n) for n in lint_digits.scan_notebook(path) if n.rule is None]
    assert not bad, "numbers typed in markdown (render them from code, reword, or cite):\n" + "\n".join(bad)


def test_slide_text_types_no_unexplained_number() -> None:
    bad = [str(n) for n in lint_digits.scan_decks() if n.rule is None]
    assert not bad, "numbers typed in slide text:\n" + "\n".join(bad)
