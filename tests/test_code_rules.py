"""workshop_utils.data.code_rules: licences, BigCode's basic filters, exact and near dedup, the waterfall.

Line lengths, alphanumeric shares, Jaccards and LSH bands are recomputed here in plain Python / numpy.
"""

from __future__ import annotations

import inspect
import random
import re

import numpy as np
import pytest

from workshop_utils import published
from workshop_utils.data import code_rules as cr
from workshop_utils.data import crawl, dedup, quality

DP = "data_pipeline"
FILTER = {k: f.value for k, f in published.group(DP, "bigcode_filter").items()}
STACK = {k: f.value for k, f in published.group(DP, "stack_near_dedup").items()}


@pytest.fixture(scope="module")
def chunks() -> list[str]:
    return [t for _, t in crawl.code_chunks()]


def _mit(text: str) -> str:
    return crawl._LICENCES[0] + "\n\n" + text


MIT_FULL = (
    "# Copyright (c) 2020 Example\n#\n# Permission is hereby granted, free of charge, to any person obtaining\n"
    '# a copy of this software and associated documentation files (the "Software"), to deal\n'
)
BSD = (
    "# Copyright (c) 2011, Example\n# All rights reserved.\n#\n# Redistribution and use in source and binary"
    " forms, with or without\n# modification, are permitted provided that the following conditions are met:\n"
)
BSD3 = (
    BSD
    + "# 3. Neither the name of the copyright holder nor the names of its\n#    contributors may be used to endorse\n"
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("# SPDX-License-Identifier: MIT", "mit"),
        ("// SPDX-License-Identifier: Apache-2.0", "apache-2.0"),
        ("/* SPDX-License-Identifier: BSD-2-Clause */", "bsd-2-clause"),
        ("# SPDX-License-Identifier: BSD-3-Clause", "bsd-3-clause"),
        ("# SPDX-License-Identifier: GPL-2.0-only", "gpl-2.0"),
        ("# SPDX-License-Identifier: GPL-3.0-or-later", "gpl-3.0"),
        ("# SPDX-License-Identifier: LGPL-2.1+", "lgpl-2.1"),
        ("# SPDX-License-Identifier: AGPL-3.0-only", "agpl-3.0"),
        ("# SPDX-License-Identifier: MPL-2.0", "mpl-2.0"),
        ("# SPDX-License-Identifier: GPL-2.0-only OR MIT", "mit"),
        ("# SPDX-License-Identifier: MIT AND GPL-3.0-only", "gpl-3.0"),
        ("# SPDX-License-Identifier: Apache-2.0 WITH LLVM-exception", "apache-2.0"),
        (crawl._LICENCES[0], "mit"),
        (crawl._LICENCES[1], "apache-2.0"),
        (crawl._LICENCES[2], "bsd-3-clause"),
        (MIT_FULL, "mit"),
        (BSD, "bsd-2-clause"),
        (BSD3, "bsd-3-clause"),
        ("# under the terms of the GNU Lesser General Public License as published by\n# the FSF; either"
         " version 2.1 of the License", "lgpl-2.1"),
        ("# under the terms of the GNU Lesser General Public License, version 3", "lgpl-3.0"),
        ("# under the terms of the GNU Affero General Public License as published", "agpl-3.0"),
        ("# This Source Code Form is subject to the terms of the Mozilla Public\n# License, v. 2.0.", "mpl-2.0"),
        ("# A module without any licence.", "unknown"),
    ],
)  # fmt: skip
def test_each_licence_is_recognised(header, expected):
    text = header + "\n\nimport os\n\n\ndef f(x):\n    return os.path.join(x, 'y')\n"
    assert cr.licence_of(text) == expected
    assert cr.licence_rule(text) == ("" if expected in cr.PERMISSIVE else f"licence:{expected}")


def test_gpl_generator_and_stdlib_have_their_licences(chunks):
    for seed in range(20):
        for version in (2, 3):
            g = cr.gpl_file(chunks[seed], random.Random(seed), version)
            assert cr.licence_of(g) == f"gpl-{version}.0" and cr.licence_rule(g) == f"licence:gpl-{version}.0"
    assert {cr.licence_of(t) for t in chunks[::10]} == {"unknown"}  # stdlib files carry no header
    assert cr.licence_of("\n" * cr.HEADER_LINES + crawl._LICENCES[0]) == "unknown"  # only the header counts


def test_permissive_is_llamas_three_families():
    """Every id kept belongs to one of LLaMA's families, and every family has an id kept."""
    fig = published.figure(DP, "llama_github_licences")
    families = [f.lower() for f in fig.value]
    assert fig.agrees(["Apache", "BSD", "MIT"]) and len(families) == 3
    assert all(any(i.startswith(f) for f in families) for i in cr.PERMISSIVE)
    assert all(any(i.startswith(f) for i in cr.PERMISSIVE) for f in families)
    assert not any(i.startswith(("gpl", "lgpl", "agpl", "mpl")) for i in cr.PERMISSIVE)


def test_thresholds_are_the_published_bigcode_defaults():
    assert cr.bigcode_thresholds() == {
        "max_line_length": FILTER["max_line_length"],
        "max_mean_line_length": FILTER["mean_line_length"],
        "min_alnum": FILTER["alpha_num_threshold"],
    }
    sig = inspect.signature(quality.code_filter).parameters  # the rule it wraps takes exactly these names
    assert set(cr.bigcode_thresholds()) <= set(sig)


def _lines(text: str) -> list[int]:
    return [len(ln) for ln in text.split("\n")]


def _alnum(text: str) -> float:
    return sum(c.isalnum() for c in text) / len(text)


def test_each_rule_fires_on_its_generator():
    for seed in range(10):
        rng = random.Random(seed)
        mini = cr.minified_file(rng)
        assert max(_lines(mini)) > FILTER["max_line_length"] and cr.generated_rule(mini) == "max_line_length"
        wrapped = cr.minified_file(rng, wrap=rng.randint(300, 900))
        lens = _lines(wrapped)
        assert max(lens) <= FILTER["max_line_length"] < max(len(ln) for ln in mini.split("\n"))
        assert (
            np.mean([len(ln) for ln in wrapped.splitlines()]) > FILTER["mean_line_length"]
        )  # BigCode's mean
        assert cr.generated_rule(wrapped) == "mean_line_length"
        data = cr.data_file(rng)
        assert max(_lines(data)) <= FILTER["mean_line_length"]  # no line rule can fire
        assert _alnum(data) < FILTER["alpha_num_threshold"] and any(c.isdigit() for c in data)
        assert cr.generated_rule(data) == "alnum_share"
        assert cr.generated_rule(crawl.autogen_file(rng)) == "autogenerated"
        for text in (mini, wrapped, data):
            assert cr.licence_rule(text) == ""  # permissive: only the generated rule can remove them


def test_generated_rules_spare_real_code(chunks):
    """On real standard-library code only the files that say they are generated are caught."""
    fired = {i: cr.generated_rule(t) for i, t in enumerate(chunks)}
    said = {i for i, t in enumerate(chunks) if "generated" in "\n".join(t.split("\n")[:5]).lower()}
    caught = {i for i, r in fired.items() if r}
    assert caught <= said and {fired[i] for i in caught} == {"autogenerated"}
    assert len(caught) < 0.01 * len(chunks)


def test_line_length_boundary():
    ok = "x = 1\n" * 20 + "y" * FILTER["max_line_length"] + "\n" + "z = 2\n" * 20
    assert cr.generated_rule(ok) == ""
    assert cr.generated_rule(ok.replace("y" * 10, "y" * 11, 1)) == "max_line_length"


def test_exact_file_dedup(chunks):
    a = next(t for t in chunks if "\nimport" in t)
    b = next(t for t in chunks if t != a)
    variants = [
        a,
        b,
        a.replace("\n", "\r\n"),  # CRLF
        "\n".join(ln + "  " for ln in a.split("\n")),  # trailing spaces
        a + "\n\n\n",  # trailing blank lines
        a.upper(),  # case: different code
        a.replace("\nimport", "\n import", 1),  # indentation: different code
        b,
    ]
    assert cr.exact_file_dedup(variants) == [2, 3, 4, 7]
    normal = [
        "\n".join(ln.rstrip() for ln in v.replace("\r\n", "\n").split("\n")).rstrip("\n") for v in variants
    ]
    assert cr.exact_file_dedup(variants) == [i for i, v in enumerate(normal) if v in normal[:i]]
    assert cr.exact_file_dedup([]) == []


def _grams(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + 5]) for i in range(len(words) - 4)} if len(words) > 5 else {tuple(words)}


def _jaccard(x: str, y: str) -> float:
    a, b = _grams(x), _grams(y)
    return len(a & b) / len(a | b)


def test_lsh_bands_are_bigcodes_optimal_param():
    """(bands, rows) minimise the equal-weight false-positive + false-negative area (datasketch's rule)."""
    num_perm, bands, rows, threshold = cr.stack_lsh()
    assert (num_perm, threshold) == (STACK["num_perm"], STACK["jaccard_threshold"])
    s = np.linspace(0, 1, 20001)
    best, best_err = None, np.inf
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            p = 1 - (1 - s**r) ** b
            err = 0.5 * np.trapezoid(np.where(s <= threshold, p, 0), s) + 0.5 * np.trapezoid(
                np.where(s >= threshold, 1 - p, 0), s
            )
            if err < best_err - 1e-12:
                best, best_err = (b, r), err
    assert (bands, rows) == best and bands * rows <= num_perm


def test_near_dedup_at_the_published_settings(chunks):
    rng = random.Random(3)
    originals = chunks[::40][:30]
    copies, edits = [], []
    for i, text in enumerate(originals[:20]):
        lines = text.split("\n")
        k = (1, 2, 40, 60)[i % 4]  # a line or two (J >= 0.85), or most of the file
        for j in rng.sample(range(len(lines)), min(k, len(lines))):
            lines[j] = f"# edited {j}"
        copies.append("\n".join(lines))
        edits.append(k)
    files = originals + copies
    res = cr.near_dedup_code(files)
    _, bands, rows, threshold = cr.stack_lsh()
    again = dedup.minhash_near_dedup(files, bands * rows, bands, STACK["ngrams"], threshold)
    assert res.duplicate_of == again.duplicate_of
    for c, (text, k) in enumerate(zip(copies, edits)):
        i = len(originals) + c
        j = _jaccard(originals[c], text)
        if j >= 0.85:
            assert res.duplicate_of[i] == c, (k, j)  # P(candidate) > 0.999 at s = 0.85
        if j < threshold:
            assert res.duplicate_of[i] == -1, (k, j)
    for i, j in res.confirmed:
        assert _jaccard(files[i], files[j]) >= threshold
    assert sum(d >= 0 for d in res.duplicate_of) >= 10
    assert cr.near_dedup_code([]).duplicate_of == []
    distinct = cr.near_dedup_code(originals[:5])  # no candidate pair at all (dedup.py raised IndexError)
    assert distinct.duplicate_of == [-1] * 5 and not distinct.candidates


def test_waterfall_accounts_for_every_file(chunks):
    rng = random.Random(7)
    kept = [_mit(t) for t in chunks[5:200:20]]  # 10 permissive files
    files, expect = list(kept), [("kept", "")] * len(kept)

    def add(text: str, stage: str, reason: str) -> None:
        files.append(text)
        expect.append((stage, reason))

    add(cr.gpl_file(chunks[300], rng, 3), "licence", "licence:gpl-3.0")
    add(
        cr.gpl_file(kept[0], rng, 2), "licence", "licence:gpl-2.0"
    )  # a near copy of kept[0] (J 0.97): the licence rule runs first
    add(chunks[400], "licence", "licence:unknown")
    add(cr.minified_file(rng), "generated", "max_line_length")
    add(cr.minified_file(rng, wrap=500), "generated", "mean_line_length")
    add(cr.data_file(rng), "generated", "alnum_share")
    add(cr.add_spdx(crawl.autogen_file(rng), "MIT"), "generated", "autogenerated")
    add(kept[1].replace("\n", "  \n"), "exact", "exact_duplicate")
    add(kept[2], "exact", "exact_duplicate")
    add(kept[3].replace("\n", "\n# fork: minor fixes\n", 1), "near", "near_duplicate")
    decisions = cr.code_decisions(files)
    assert list(zip(decisions["stage"], decisions["reason"])) == expect
    assert decisions["dup_of"].tolist()[-3:] == [1, 2, 3] and (decisions["dup_of"][:-3] == -1).all()
    table = cr.code_waterfall(files)
    assert table["files"].sum() == len(files) and list(table["stage"].drop_duplicates()) == [
        *cr.STAGES,
        "kept",
    ]
    assert table.iloc[-1].tolist() == ["kept", "", 10, 10]
    by_reason = dict(zip(table["reason"], table["files"]))
    assert by_reason["exact_duplicate"] == 2 and by_reason["licence:gpl-3.0"] == 1
    assert table["left"].tolist() == [len(files) - n for n in table["files"].cumsum().tolist()[:-1]] + [10]


def test_bad_inputs():
    rng = random.Random(0)
    for call in (cr.licence_of, cr.licence_rule, cr.generated_rule, cr.file_key):
        with pytest.raises(TypeError, match="text"):
            call(b"x")
    for call in (cr.exact_file_dedup, cr.near_dedup_code, cr.code_decisions, cr.code_waterfall):
        with pytest.raises(TypeError, match="files"):
            call("one file")
        with pytest.raises(TypeError, match=r"files\[1\]"):
            call(["a", None])
    with pytest.raises(ValueError, match="files"):
        cr.code_waterfall([])
    with pytest.raises(ValueError, match="version"):
        cr.gpl_file("x = 1\n", rng, 1)
    with pytest.raises(TypeError, match="rng"):
        cr.minified_file(42)
    with pytest.raises(ValueError, match="wrap"):
        cr.minified_file(rng, wrap=0)
    with pytest.raises(ValueError, match="rows"):
        cr.data_file(rng, rows=0)
    with pytest.raises(ValueError, match="spdx_id"):
        cr.add_spdx("x = 1\n", "MIT License")
