"""Module 02's exercises: the language threshold, MinHash banding, a PII kind the masker does not cover."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from ..data import dedup as D
from ..data import pii as P
from ..data.extract import extract
from ..data.langid import identify_language
from . import Check, Passes

THRESHOLDS = np.linspace(0.3, 0.95, 14)  # the sweep the exercise asks for
NUM_HASHES = 128


def solution_1(docs: Sequence) -> dict:
    """English pages lost and foreign pages passed as the language threshold sweeps."""
    import pandas as pd
    from IPython.display import display

    sample = [d for d in docs if d.kind == "web" and d.truth in ("keep", "non_english")][:300]
    scored = [(d.truth, *identify_language(extract(d.raw.decode(), "web").text)) for d in sample]
    lost, passed = [], []
    for thr in np.linspace(0.3, 0.95, 14):
        lost.append(sum(t == "keep" and not (lang == "en" and sc >= thr) for t, lang, sc in scored))
        passed.append(sum(t == "non_english" and lang == "en" and sc >= thr for t, lang, sc in scored))
    table = {"English pages lost": lost, "foreign pages passed": passed}
    display(pd.DataFrame(table, index=pd.Index(np.linspace(0.3, 0.95, 14).round(2), name="threshold")))
    return {"lost": lost, "passed": passed}


def solution_2(pairs: Sequence[tuple[str, str]]) -> dict:
    """The (bands, rows) of 128 hashes whose S-curve threshold is closest to 0.7, and its candidate rate."""
    import matplotlib.pyplot as plt

    options = [(b, 128 // b) for b in (2, 4, 8, 16, 32, 64)]
    bands, rows = min(options, key=lambda br: abs((1 / br[0]) ** (1 / br[1]) - 0.7))
    print(f"closest to 0.7: {bands} x {rows}, threshold {(1 / bands) ** (1 / rows):.3f}")
    sims, cand = D.pair_candidates(pairs, num_hashes=128, num_bands=bands, ngrams=5)
    s = np.linspace(0, 1, 201)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(s, D.s_curve(s, 14, 8), label="14 x 8 (FineWeb)")
    ax.plot(s, D.s_curve(s, bands, rows), label=f"{bands} x {rows}")
    jitter = np.random.default_rng(0).normal(0, 0.02, len(cand))
    ax.plot(sims, cand + jitter, ".", alpha=0.3, label="pairs (jittered)")
    ax.set(xlabel="Jaccard similarity", ylabel="P(candidate)")
    ax.legend()
    plt.show()
    print(f"measured candidates {cand.sum()}, predicted {D.s_curve(sims, bands, rows).sum():.1f}")
    return {"bands": bands, "rows": rows, "candidate_rate": float(cand.mean())}


def solution_3() -> Callable[[str], tuple[str, int]]:
    """mask_pii leaves an SSN alone (3-2-4 digits are no phone grouping); a masker that runs first."""
    ssn = "Employee 123-45-6789 joined in May."
    before = P.mask_pii(ssn)
    print(before, "<- the SSN stays")
    assert sum(before[1].values()) == 0

    def mask_ssn(text: str) -> tuple[str, int]:
        """Replace US social-security numbers by <SSN>; returns (text, how many)."""
        return re.subn(r"\b\d{3}-\d{2}-\d{4}\b", "<SSN>", text)

    masked, n = mask_ssn(ssn)
    print(P.mask_pii(masked), n)
    assert n == 1 and P.mask_pii(masked)[1]["phone"] == 0
    return mask_ssn


# ---------------------------------------------------------------------------------------- the checks
def expected_1(docs: Sequence) -> dict:
    """The same counts, vectorised over the thresholds."""
    sample = [d for d in docs if d.kind == "web" and d.truth in ("keep", "non_english")][:300]
    langs = [identify_language(extract(d.raw.decode(), "web").text) for d in sample]
    english = np.array([lang == "en" for lang, _ in langs])
    score = np.array([sc for _, sc in langs])
    keep = np.array([d.truth == "keep" for d in sample])
    passes = english[None, :] & (score[None, :] >= THRESHOLDS[:, None])  # (thresholds, pages)
    return {"lost": (keep & ~passes).sum(1).tolist(), "passed": (~keep & passes).sum(1).tolist()}


def expected_2(pairs: Sequence[tuple[str, str]]) -> dict:
    """Every split of the hashes into bands x rows, the closest threshold, its measured candidate rate."""
    splits = [(b, NUM_HASHES // b) for b in range(1, NUM_HASHES + 1) if NUM_HASHES % b == 0]
    bands, rows = min(splits, key=lambda br: abs(br[0] ** (-1 / br[1]) - 0.7))
    _, cand = D.pair_candidates(pairs, num_hashes=NUM_HASHES, num_bands=bands, ngrams=5)
    return {"bands": bands, "rows": rows, "candidate_rate": float(np.mean(cand))}


SSNS = ("123-45-6789", "987-65-4321")
NOT_SSNS = ("555-123-4567", "2023-01-15", "1234-56-7890", "123-45-67890", "12-345-6789")  # phone, date, ...


def mask_ssn_problem(mask_ssn) -> str | None:
    """None if `mask_ssn` masks every SSN, leaves look-alikes and composes with mask_pii, else the problem."""
    if not callable(mask_ssn):
        return f"expected your function mask_ssn, got {type(mask_ssn).__name__}"
    for ssn in SSNS:
        text = f"Employee {ssn} joined; ref {ssn}."
        out = mask_ssn(text)
        if not (isinstance(out, tuple) and len(out) == 2):
            return "mask_ssn(text) must return (masked text, how many were masked), like re.subn"
        if out != (text.replace(ssn, "<SSN>"), 2):
            return f"the SSN {ssn!r} in {text!r} is not replaced by <SSN> (or the count is off)"
        if P.mask_pii(out[0])[0] != out[0]:
            return "mask_pii changes your masked text: the <SSN> marker must survive the other maskers"
    for other in NOT_SSNS:
        text = f"Call {other} today."
        if mask_ssn(text) != (text, 0):
            return f"{other!r} is not an SSN (3-2-4 digits standing alone) but was masked"
    return None


def expected_3() -> Passes:
    """A test of the learner's function, not a value."""
    return Passes(mask_ssn_problem)


CHECKS = {
    1: Check(
        expected_1,
        "a dict {'lost': [14 ints], 'passed': [14 ints]}, one per threshold",
        "exact (counts of pages)",
    ),
    2: Check(
        expected_2,
        "a dict {'bands': int, 'rows': int, 'candidate_rate': share of pairs}",
        "exact bands and rows; the rate to 1e-9",
        rtol=1e-9,
    ),
    3: Check(
        expected_3,
        "your function mask_ssn(text) -> (masked text, how many), like re.subn",
        "exact, on SSNs and look-alikes (phones, dates, longer digit runs)",
    ),
}
