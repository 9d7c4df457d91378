"""Claims ledger, module 02 data mixture: LLaMA-1 Table 1's arithmetic against data/published.

Table 1 prints each source's sampling proportion, epochs at 1.4T tokens and disk size; the tokens behind
them are recomputed here by hand, independently of `mixture.llama_table1`, and checked for sense.
"""

from __future__ import annotations

import pytest
from published_helpers import expect

from workshop_utils import published
from workshop_utils.corpus import load_works, split_work
from workshop_utils.data.mixture import llama_table1, proportion_sum, proportions_sum_to_one
from workshop_utils.tokenizer import train_course_tokenizer

DP = "data_pipeline"
SOURCES = ("CommonCrawl", "C4", "Github", "Wikipedia", "Books", "ArXiv", "StackExchange")
TOKENS = published.value("planning", "llama1_65b_tokens")  # the 1.4T-token run the epochs refer to


def _row(source: str, field: str) -> float:
    return published.value(DP, f"llama_table1/{source}/{field}")


def test_table_has_every_source_in_order():
    assert tuple(llama_table1().index) == SOURCES
    assert TOKENS == pytest.approx(1.4e12)


def test_commoncrawl_sampled_tokens():
    """CommonCrawl: 67.0 % of 1.4T = 938B tokens sampled; / 1.10 epochs = 853B unique; 3.3 TB / that."""
    t = llama_table1().loc["CommonCrawl"]
    expect(DP, "llama_table1/CommonCrawl/proportion", t["sampled_tokens"] / TOKENS)
    assert t["sampled_tokens"] == pytest.approx(_row("CommonCrawl", "proportion") * TOKENS, rel=1e-12)
    assert t["sampled_tokens"] == pytest.approx(938e9, rel=1e-9)
    assert t["unique_tokens"] == pytest.approx(938e9 / _row("CommonCrawl", "epochs"), rel=1e-12)
    assert t["bytes_per_token"] == pytest.approx(_row("CommonCrawl", "disk") * 1.10 / 938e9, rel=1e-12)


@pytest.mark.parametrize("source", SOURCES)
def test_each_row_by_hand(source):
    t = llama_table1().loc[source]
    sampled = _row(source, "proportion") * TOKENS
    unique = sampled / _row(source, "epochs")
    assert t["sampled_tokens"] == pytest.approx(sampled, rel=1e-12)
    assert t["unique_tokens"] * _row(source, "epochs") == pytest.approx(sampled, rel=1e-12)
    assert t["bytes_per_token"] == pytest.approx(_row(source, "disk") / unique, rel=1e-12)
    expect(DP, f"llama_table1/{source}/epochs", t["sampled_tokens"] / t["unique_tokens"])
    expect(DP, f"llama_table1/{source}/disk", t["bytes_per_token"] * t["unique_tokens"])


def test_proportions_sum_to_one_within_rounding():
    """67.0 + 15.0 + 4.5 x 3 + 2.5 + 2.0 = 100.0 %; each printed to 0.1 %, so the sum may sit 7 x 0.05 % off."""
    total, slack = proportion_sum()
    assert total == pytest.approx(sum(_row(s, "proportion") for s in SOURCES), abs=1e-12)
    assert slack == pytest.approx(7 * 0.0005)
    assert abs(total - 1) <= slack and proportions_sum_to_one()
    assert llama_table1()["sampled_tokens"].sum() == pytest.approx(TOKENS, rel=slack)


def test_epochs_above_one_for_the_small_high_quality_sources():
    epochs = llama_table1()["epochs"]
    assert set(epochs[epochs > 2].index) == {"Wikipedia", "Books"}  # repeated: high quality, small
    assert set(epochs[epochs < 1].index) == {"Github"}  # only part of it is read


@pytest.fixture(scope="module")
def bpe_bytes_per_token() -> float:
    """Bytes per token of a byte-level BPE with Llama's vocabulary size, trained and measured on held-out text."""
    train, val = zip(*(split_work(t) for t in load_works().values()))
    tok = train_course_tokenizer(
        "\n".join(train)[:2_000_000], published.value("pretraining", "llama2_vocab_size")
    )
    held_out = "\n".join(val)[:300_000]
    return len(held_out.encode("utf-8")) / len(tok(held_out)["input_ids"])


def test_bytes_per_token_between_2_and_6(bpe_bytes_per_token):
    """Every source stores 2.8-4.0 bytes per token: what a 32k subword vocabulary makes of text.

    The reason, measured: a byte-level BPE of the same vocabulary size, trained on our corpus, encodes held-out
    English at a few bytes per token too: common words become one token (a word and its space, 4-5 bytes),
    rarer ones split in two or three. Below 2 would mean a token per character or two; above 6, disk sizes
    that cannot hold the tokens the table claims.
    """
    bpt = llama_table1()["bytes_per_token"]
    assert ((bpt > 2) & (bpt < 6)).all(), bpt
    assert 2 < bpe_bytes_per_token < 6
    assert bpt.min() / 1.5 < bpe_bytes_per_token < bpt.max() * 1.5  # the same scale as the table's


def test_llama_commoncrawl_is_a_fraction_of_what_commoncrawl_yields():
    """LLaMA's five CommonCrawl dumps gave 0.85T unique tokens; RefinedWeb extracts ~5T from all of it, FineWeb 15T."""
    unique = llama_table1().loc["CommonCrawl", "unique_tokens"]
    refinedweb = published.value(DP, "refinedweb_extractable_tokens")
    fineweb = published.value(DP, "fineweb_tokens")
    assert unique < refinedweb < fineweb
    assert fineweb / published.value(DP, "fineweb_snapshots") == pytest.approx(156.25e9)
