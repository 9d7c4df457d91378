"""The mixture sampler: each source's token share lands within a document of its proportion, epochs are
sampled / available, the order is seeded, and every bad input is refused naming the argument."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from workshop_utils.data.mixture import sample_mixture, table1_proportions

ROOT = Path(__file__).resolve().parents[1]


def _source(name: str, n_docs: int, rng: np.random.Generator) -> list[str]:
    """`n_docs` distinct documents of 5..80 words (each text names its source and index, so it is unique)."""
    return [" ".join([f"{name}{i}"] + ["w"] * int(rng.integers(4, 80))) for i in range(n_docs)]


@pytest.fixture(scope="module")
def sources() -> dict[str, list[str]]:
    rng = np.random.default_rng(7)
    return {
        "web": _source("web", 400, rng),
        "books": _source("books", 12, rng),
        "code": _source("code", 40, rng),
    }


PROPORTIONS = {"web": 0.7, "books": 0.2, "code": 0.1}
TOTAL = 6000


def _words(t: str) -> int:
    return len(t.split())


def test_shares_within_one_document_of_target(sources):
    mix = sample_mixture(sources, PROPORTIONS, TOTAL, seed=3)
    got = Counter()
    for name, text in mix.docs:  # recount from the documents themselves
        got[name] += _words(text)
    table = mix.table()
    for name, p in PROPORTIONS.items():
        largest = max(_words(t) for t in sources[name])
        assert abs(got[name] - p * TOTAL) <= largest / 2, name
        assert table.loc[name, "sampled_tokens"] == got[name]
    assert table["share"].sum() == pytest.approx(1.0)
    assert abs(sum(got.values()) - TOTAL) <= sum(max(_words(t) for t in s) / 2 for s in sources.values())


@pytest.mark.parametrize("total", [13, 26, 44, 100])
def test_equal_documents_give_the_nearest_whole_number(total):
    """Documents of 10 words: each source gets round(target / 10) of them, the closest the target allows."""
    src = {"a": [" ".join(["w"] * 10)] * 3, "b": [" ".join(["v"] * 10)] * 7}
    table = sample_mixture(src, {"a": 0.3, "b": 0.7}, total).table()
    for name, p in (("a", 0.3), ("b", 0.7)):
        assert table.loc[name, "sampled_tokens"] == 10 * round(p * total / 10), name


def test_epochs_are_sampled_over_available(sources):
    table = sample_mixture(sources, PROPORTIONS, TOTAL, seed=3).table()
    for name, texts in sources.items():
        available = sum(_words(t) for t in texts)
        assert table.loc[name, "available_tokens"] == available
        assert table.loc[name, "epochs"] == pytest.approx(table.loc[name, "sampled_tokens"] / available)
    assert table.loc["books", "epochs"] > 1 > table.loc["web", "epochs"]  # small source repeated, big subset


def test_repeats_are_whole_passes_and_a_subset_has_no_repeats(sources):
    mix = sample_mixture(sources, PROPORTIONS, TOTAL, seed=3)
    books = Counter(t for name, t in mix.docs if name == "books")
    assert set(books) == set(sources["books"])  # every book drawn: at least one full pass
    assert max(books.values()) - min(books.values()) <= 1  # fresh passes, none skipped
    web = Counter(t for name, t in mix.docs if name == "web")
    assert max(web.values()) == 1 and len(web) < len(sources["web"])


def test_seeded_and_shuffled(sources):
    a = sample_mixture(sources, PROPORTIONS, TOTAL, seed=1)
    assert a.docs == sample_mixture(sources, PROPORTIONS, TOTAL, seed=1).docs
    assert a.docs != sample_mixture(sources, PROPORTIONS, TOTAL, seed=2).docs
    names = [n for n, _ in a.docs]
    runs = sum(1 for x, y in zip(names, names[1:]) if x != y)
    assert runs > 20  # interleaved, not one block per source
    reordered = {k: sources[k] for k in reversed(list(sources))}
    assert sorted(a.docs) == sorted(sample_mixture(reordered, PROPORTIONS, TOTAL, seed=1).docs)


def test_same_mix_under_another_hash_seed():
    code = (
        "from workshop_utils.data.mixture import sample_mixture as s;"
        "m = s({'a': ['x y', 'z w q'], 'b': ['u v w', 'k']}, {'a': 0.5, 'b': 0.5}, 40, seed=5);"
        "print(m.docs)"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONHASHSEED": h},
        ).stdout
        for h in ("0", "123")
    }  # fmt: skip
    assert len(runs) == 1


def test_custom_token_counter(sources):
    mix = sample_mixture(sources, PROPORTIONS, 50_000, count_tokens=len, seed=0)  # characters
    table = mix.table()
    for name, p in PROPORTIONS.items():
        assert abs(table.loc[name, "sampled_tokens"] - p * 50_000) <= max(map(len, sources[name])) / 2


def test_zero_proportion_takes_nothing(sources):
    table = sample_mixture(sources, {"web": 0.9, "books": 0.1, "code": 0.0}, TOTAL).table()
    assert table.loc["code", "sampled_tokens"] == 0 and table.loc["code", "epochs"] == 0


def test_table1_proportions_for_our_kinds():
    p = table1_proportions()
    assert sum(p.values()) == pytest.approx(1.0)
    assert p["web"] == pytest.approx((0.670 + 0.150) / (0.670 + 0.150 + 0.045 + 0.045))
    with pytest.raises(ValueError, match="kinds: unknown Table 1 sources"):
        table1_proportions({"web": ("Reddit",)})


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"proportions": {"a": 0.5, "b": 0.4}}, ValueError, "proportions must sum to 1"),
        ({"proportions": {"a": 0.5, "b": 0.5, "c": 0.0}}, ValueError, r"unknown sources \['c'\]"),
        ({"proportions": {"a": 1.0}}, ValueError, r"missing sources \['b'\]"),
        ({"proportions": {"a": 1.5, "b": -0.5}}, ValueError, r"proportions\['b'\] must be >= 0"),
        ({"proportions": {"a": "half", "b": 0.5}}, TypeError, r"proportions\['a'\] must be a finite number"),
        ({"sources": {"a": ["x y"], "b": []}}, ValueError, r"sources\['b'\] is empty"),
        ({"sources": {"a": ["x y"], "b": ["   "]}}, ValueError, r"sources\['b'\] has no tokens"),
        ({"sources": {"a": ["x y"], "b": "x y"}}, TypeError, r"sources\['b'\] must be a list of str"),
        ({"sources": {}}, TypeError, "sources must be a non-empty dict"),
        ({"total_tokens": 0}, ValueError, "total_tokens must be > 0"),
        ({"total_tokens": -5}, ValueError, "total_tokens must be > 0"),
        ({"total_tokens": 10.0}, TypeError, "total_tokens must be an int"),
        ({"seed": "0"}, TypeError, "seed must be an int"),
        ({"count_tokens": lambda t: -1}, ValueError, "count_tokens must return ints >= 0"),
        ({"count_tokens": 3}, TypeError, "count_tokens must be callable"),
    ],
)
def test_errors(kwargs, error, message):
    args = {
        "sources": {"a": ["x y", "z"], "b": ["u v w"]},
        "proportions": {"a": 0.5, "b": 0.5},
        "total_tokens": 10,
    }
    with pytest.raises(error, match=message):
        sample_mixture(**(args | kwargs))


def test_sum_tolerance_is_one_in_a_million():
    src = {"a": ["x y"], "b": ["u v"]}
    sample_mixture(src, {"a": 0.5, "b": 0.5 + 9e-7}, 10)
    with pytest.raises(ValueError, match="must sum to 1"):
        sample_mixture(src, {"a": 0.5, "b": 0.5 + 2e-6}, 10)
