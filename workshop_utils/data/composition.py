"""How much a pipeline removes is a property of the crawl's mix: removal = sum over classes of share x rate.

A cleaning pipeline removes each ground-truth class of document (not English, low quality, duplicate,
broken, and the wanted `keep` class by mistake) at its own rate. The total a pipeline "cleans away" is
then the crawl's composition weighted by those rates, so "removes nearly 90 %" (RefinedWeb, Penedo et
al. 2023, Fig. 2) describes CommonCrawl's mix as much as the pipeline. This module measures the rates on
one run, predicts the total for any other mix, and builds crawl mixes with one class's share changed so
the prediction can be checked against a real run.
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from .crawl import TRUTHS, CrawlMix

CLASSES = TRUTHS  # the crawl's ground-truth labels
MIX_CLASS = {  # which ground-truth class each CrawlMix field generates
    "web_article": "keep", "book": "keep", "code": "keep",
    "web_non_english": "non_english",
    "web_low_quality": "low_quality", "code_autogen": "low_quality", "code_licence": "licence",
    "web_exact_dup": "duplicate", "web_near_dup": "duplicate", "book_dup": "duplicate", "code_dup": "duplicate",
    "broken": "broken",
}  # fmt: skip


def _counts(result) -> tuple[pd.Series, pd.Series]:
    """(documents per class, removed per class) of a pipeline result."""
    kept = pd.Series(result.kept["truth"]).value_counts()
    removed = result.rejects["truth"].value_counts()
    total = kept.add(removed, fill_value=0)
    unknown = set(total.index) - set(CLASSES)
    if unknown:
        raise ValueError(f"result has ground-truth labels outside {CLASSES}: {sorted(unknown)}")
    return total.reindex(CLASSES, fill_value=0), removed.reindex(CLASSES, fill_value=0)


def shares(result) -> pd.Series:
    """Share of the input documents in each ground-truth class (sums to 1)."""
    total, _ = _counts(result)
    return total / total.sum()


def removal_rates(result) -> pd.Series:
    """Fraction of each ground-truth class the pipeline removed (any stage, right or wrong)."""
    total, removed = _counts(result)
    if (total == 0).any():
        raise ValueError(f"no documents of class {list(total[total == 0].index)}: its rate is unmeasured")
    return removed / total


def predicted_removal(class_shares: pd.Series, rates: pd.Series) -> float:
    """Fraction of documents removed from a crawl with `class_shares`, at the measured `rates`."""
    if set(class_shares.index) != set(CLASSES) or set(rates.index) != set(CLASSES):
        raise ValueError(f"shares and rates must both be indexed by {CLASSES}")
    if (class_shares < 0).any() or abs(float(class_shares.sum()) - 1) > 1e-9:
        raise ValueError(f"shares must be >= 0 and sum to 1, got sum {float(class_shares.sum()):.6f}")
    return float((class_shares * rates.reindex(class_shares.index)).sum())


def with_share(class_shares: pd.Series, cls: str, value: float) -> pd.Series:
    """The same composition with class `cls` at `value`, the other classes scaled to fill the rest."""
    if cls not in CLASSES:
        raise ValueError(f"cls must be one of {CLASSES}, got {cls!r}")
    if not 0 <= value < 1:
        raise ValueError(f"value must be a share in [0, 1), got {value!r}")
    others = class_shares.drop(cls)
    out = others / others.sum() * (1 - value)
    out[cls] = value
    return out.reindex(CLASSES)


def mix_with(mix: CrawlMix, field: str, value: float) -> CrawlMix:
    """A CrawlMix with `field` at `value` and every other field scaled so the fractions still sum to 1."""
    fields = dataclasses.asdict(mix)
    if field not in fields:
        raise ValueError(f"field must be one of {sorted(fields)}, got {field!r}")
    if not 0 <= value < 1:
        raise ValueError(f"value must be a fraction in [0, 1), got {value!r}")
    rest = sum(v for k, v in fields.items() if k != field)
    scaled = {k: (value if k == field else v / rest * (1 - value)) for k, v in fields.items()}
    return CrawlMix(**scaled)


def mix_shares(mix: CrawlMix) -> pd.Series:
    """The ground-truth class shares a CrawlMix asks for (before rounding to whole documents)."""
    out = pd.Series(0.0, index=list(CLASSES))
    for field, frac in dataclasses.asdict(mix).items():
        out[MIX_CLASS[field]] += frac
    return out
