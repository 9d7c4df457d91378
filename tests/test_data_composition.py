"""Removal as composition x rates: measured rates, predictions for other mixes, checked on a real run."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from workshop_utils.data import composition as M
from workshop_utils.data.crawl import CrawlMix, build_crawl, crawl_dataset
from workshop_utils.data.pipeline import run_pipeline


@pytest.fixture(scope="module")
def small_run():
    return run_pipeline(crawl_dataset(build_crawl(600, seed=3)))


def test_every_mix_field_maps_to_a_class():
    assert set(M.MIX_CLASS) == {f.name for f in dataclasses.fields(CrawlMix)}
    assert set(M.MIX_CLASS.values()) == set(M.CLASSES)
    assert abs(M.mix_shares(CrawlMix()).sum() - 1) < 1e-9


def test_prediction_at_the_measured_mix_is_the_measured_removal(small_run):
    rates, shares = M.removal_rates(small_run), M.shares(small_run)
    assert rates["non_english"] > 0.9 and rates["keep"] < 0.1  # the stages do their jobs
    assert abs(M.predicted_removal(shares, rates) - small_run.removed_fraction) < 1e-12


def test_prediction_for_another_mix_matches_a_run_of_that_mix(small_run):
    """Rates measured on one crawl predict the removal on a crawl with a quarter as much non-English."""
    rates = M.removal_rates(small_run)
    other_mix = M.mix_with(CrawlMix(), "web_non_english", 0.12)
    other = run_pipeline(crawl_dataset(build_crawl(600, seed=4, mix=other_mix)))
    predicted = M.predicted_removal(M.shares(other), rates)
    se = (other.removed_fraction * (1 - other.removed_fraction) / other.n_input) ** 0.5
    assert abs(predicted - other.removed_fraction) < 4 * se + 0.02, (predicted, other.removed_fraction)
    assert other.removed_fraction < small_run.removed_fraction - 0.05  # the mix moved the total


def test_with_share_and_mix_with_keep_totals():
    s = M.mix_shares(CrawlMix())
    t = M.with_share(s, "non_english", 0.2)
    assert abs(t.sum() - 1) < 1e-12 and t["non_english"] == 0.2
    assert abs(t["keep"] / t["duplicate"] - s["keep"] / s["duplicate"]) < 1e-12  # others keep their ratios
    m = M.mix_with(CrawlMix(), "broken", 0.05)
    assert abs(sum(dataclasses.asdict(m).values()) - 1) < 1e-9 and m.broken == 0.05


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: M.with_share(M.mix_shares(CrawlMix()), "spam", 0.1), "cls must be one of"),
        (lambda: M.with_share(M.mix_shares(CrawlMix()), "keep", 1.0), r"value must be a share in \[0, 1\)"),
        (lambda: M.mix_with(CrawlMix(), "web_spam", 0.1), "field must be one of"),
        (lambda: M.mix_with(CrawlMix(), "broken", -0.1), "value must be a fraction"),
        (lambda: M.predicted_removal(pd.Series({"keep": 1.0}), pd.Series({"keep": 0.0})), "indexed by"),
        (lambda: M.predicted_removal(pd.Series(0.1, index=list(M.CLASSES)), pd.Series(0.5, index=list(M.CLASSES))),
         "sum to 1"),
    ],
)  # fmt: skip
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
