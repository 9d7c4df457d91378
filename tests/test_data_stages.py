"""Each cleaning stage alone: decode/extract, language ID, quality rules, dedup, PII masking."""

from __future__ import annotations

import random

import numpy as np
import pytest

from workshop_utils.data import dedup, pii, quality
from workshop_utils.data.crawl import english_paragraphs
from workshop_utils.data.extract import decode, extract
from workshop_utils.data.langid import LANG_THRESHOLD, identify_language, language_filter

PROSE = " ".join(english_paragraphs()[:6])


# ---- decode / extract ----
@pytest.mark.parametrize(
    "raw,reason",
    [
        (b"", "empty"),
        (None, "empty"),
        (b" \n\t ", "whitespace_only"),
        (b"\xff\xfe\x00abc", "invalid_utf8"),
        (b"a\x00b", "binary"),
    ],
)
def test_decode_rejects(raw, reason):
    r = decode(raw)
    assert not r.keep and r.reason == reason


def test_decode_oversize_and_ok():
    assert decode(b"x" * 101, max_bytes=100).reason == "oversize"
    assert decode("héllo".encode()).text == "héllo"
    with pytest.raises(ValueError, match="max_bytes"):
        decode(b"a", max_bytes=0)
    with pytest.raises(TypeError, match="raw"):
        decode(123)


def test_extract_main_text_and_no_body():
    html = f"<html><body><nav>Home | About</nav><article><p>{PROSE}</p></article><footer>(c) 2024</footer></body></html>"
    r = extract(html, "web")
    assert r.keep and PROSE[:200] in r.text and "Home | About" not in r.text
    r = extract("<html><head><title>x</title></head></html>", "web")
    assert not r.keep and r.reason == "no_main_text"
    assert extract("def f(): pass", "code").text == "def f(): pass"
    with pytest.raises(ValueError, match="kind"):
        extract("x", "pdf")


# ---- language ID ----
def test_identify_language():
    lang, score = identify_language(PROSE)
    assert lang == "en" and type(score) is float and score >= LANG_THRESHOLD
    lang, score = identify_language(
        "Der schnelle braune Fuchs springt über den faulen Hund und läuft weiter nach Hause."
    )
    assert lang == "de" and 0.0 <= score <= 1.0
    assert identify_language("   ") == ("unknown", 0.0)
    assert language_filter(PROSE)[0] and not language_filter(PROSE, threshold=1.0)[0]
    with pytest.raises(ValueError, match="threshold"):
        language_filter(PROSE, threshold=1.5)
    with pytest.raises(TypeError, match="text"):
        identify_language(None)


# ---- quality ----
def test_gopher_quality_rules():
    assert quality.gopher_quality_filter(PROSE)
    assert quality.gopher_quality("a few words only").rule == "gopher_min_words"
    assert quality.gopher_quality("#tag " * 60 + PROSE[:200]).rule == "gopher_hash_ratio"
    assert (
        quality.gopher_quality(("market price growth data cloud review\n") * 20).rule == "gopher_stop_words"
    )
    lines = "\n".join(f"the cat and the dog {i} went to sleep..." for i in range(20))
    assert quality.gopher_quality(lines).rule in {"gopher_ellipsis_ratio", "gopher_ellipsis_lines"}
    bullets = "\n".join(f"- the important element {i} of the longer list and that matters" for i in range(30))
    assert quality.gopher_quality(bullets).rule == "gopher_bullet_lines"
    assert (
        quality.gopher_quality("1234 4567 7890 " * 20 + "the and of " + PROSE[:200]).rule
        == "gopher_alpha_words"
    )
    with pytest.raises(TypeError, match="text"):
        quality.gopher_quality_filter(b"bytes")


def test_gopher_repetition_rules():
    assert quality.gopher_repetition(PROSE).keep
    spam = "\n".join(["Buy cheap pills now and win!"] * 10 + ["Other line here."])
    assert quality.gopher_repetition(spam).rule.startswith("gopher_dup_line")
    stuffed = " ".join(["cheap deal"] * 80)
    assert quality.gopher_repetition(stuffed).rule == "gopher_top_2gram"
    words = PROSE.split()
    assert quality.dup_ngram_char_fraction(words[:50] + words[:50], 5) == pytest.approx(1.0)
    assert quality.top_ngram_char_fraction(["a", "b"], 3) == 0.0


def test_c4_uses_the_papers_numbers():
    s = "This line has exactly five words."
    four = "This has four words."
    text = "\n".join([s, s.replace("five", "5"), four, "No terminal punctuation here at all"])
    new, v = quality.c4_filter(text)
    assert not v and v.rule == "c4_min_sentences"  # 2 sentences kept < 3
    assert four not in new and "No terminal" not in new
    new, v = quality.c4_filter("\n".join([s] * 3))
    assert v.keep and new.count("\n") == 2  # 3 sentences: kept
    assert quality.c4_filter("Lorem ipsum dolor sit amet.\n" + s * 3)[1].rule == "c4_lorem_ipsum"
    assert quality.c4_filter("x = {1: 2}\n" + s * 3)[1].rule == "c4_curly_bracket"
    new, _ = quality.c4_filter(
        "\n".join(
            [s] * 3
            + ["Please enable JavaScript to view the comments.", "Read our privacy policy before you go on."]
        )
    )
    assert "JavaScript" not in new and "privacy" not in new


def test_code_filter_and_routing():
    code = "def add(a, b):\n    return a + b\n" * 10
    assert quality.code_filter(code).keep
    assert quality.code_filter("# Generated by protoc. DO NOT EDIT!\n" + code).rule == "code_autogenerated"
    assert quality.code_filter("x = [" + "1," * 600 + "]\n").rule == "code_max_line_length"
    assert quality.code_filter("#" * 50 + "\n" + "= " * 20).rule in {"code_alnum_fraction"}
    assert quality.quality_stage("O Romeo, Romeo", "book")[1].keep
    with pytest.raises(ValueError, match="kind"):
        quality.quality_stage("x", "html")


# ---- dedup ----
def test_exact_dedup_normalises():
    texts = ["Hello,  World!", "hello world", "Other text", "HELLO world."]
    assert dedup.exact_dedup(texts) == [-1, 0, -1, 0]


def test_exact_line_dedup(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("shared line\nonly in a\nshared line\n")
    b.write_text("only in b\nshared line\n")
    stats = dedup.exact_line_dedup([a, b], tmp_path / "out")
    assert (tmp_path / "out" / "a.txt").read_text() == "only in a\n"
    assert (tmp_path / "out" / "b.txt").read_text() == "only in b\n"
    assert stats == {"lines_in": 5, "lines_out": 2}
    with pytest.raises(ValueError, match="input_paths"):
        dedup.exact_line_dedup([], tmp_path / "o")
    with pytest.raises(FileNotFoundError):
        dedup.exact_line_dedup([tmp_path / "missing.txt"], tmp_path / "o")


def test_minhash_estimates_jaccard_like_datasketch():
    from datasketch import MinHash

    rng = random.Random(0)
    words = PROSE.split()
    a, b = dedup.shingles(PROSE), dedup.shingles(" ".join(w if rng.random() > 0.1 else "zzz" for w in words))
    true = dedup.jaccard(a, b)
    pa, pb = dedup.permutations(512, seed=0)
    ours = float(np.mean(dedup.minhash_signature(a, pa, pb) == dedup.minhash_signature(b, pa, pb)))
    ma, mb = MinHash(num_perm=512, seed=0), MinHash(num_perm=512, seed=0)
    ma.update_batch([s.encode() for s in a])
    mb.update_batch([s.encode() for s in b])
    theirs = ma.jaccard(mb)
    # Standard error of a 512-permutation estimate is about sqrt(J(1-J)/512) ~ 0.022: allow 4.5 sigma.
    assert abs(ours - true) < 0.1 and abs(theirs - true) < 0.1


def test_minhash_near_dedup_and_s_curve():
    base = list(english_paragraphs()[:20])
    rng = random.Random(1)
    near = [" ".join(w if rng.random() > 0.01 else "zzz" for w in base[3].split())]
    texts = base + near + [base[5]]
    res = dedup.minhash_near_dedup(texts, num_hashes=112, num_bands=14, ngrams=5, jaccard_threshold=0.8)
    assert res.duplicate_of[20] == 3 and res.duplicate_of[21] == 5
    assert sum(d >= 0 for d in res.duplicate_of) == 2
    assert dedup.s_curve(0.0, 14, 8) == 0.0 and dedup.s_curve(1.0, 14, 8) == 1.0
    with pytest.raises(ValueError, match="num_bands"):
        dedup.minhash_near_dedup(texts, num_hashes=100, num_bands=14)
    with pytest.raises(ValueError, match="jaccard_threshold"):
        dedup.minhash_near_dedup(texts, jaccard_threshold=0)


def test_minhash_dedup_files_byte_identical(tmp_path):
    paras = english_paragraphs()
    src = tmp_path / "in"
    src.mkdir()
    contents = {
        "a.txt": (paras[0] + "\r\n").encode(),
        "b.txt": (paras[0] + "\n").encode(),
        "c.txt": "caf\u00e9 ".encode() + paras[1].encode(),
    }
    for name, data in contents.items():
        (src / name).write_bytes(data)
    removed = dedup.minhash_dedup(
        sorted(src.iterdir()), tmp_path / "out", num_hashes=112, num_bands=14, ngrams=5, jaccard_threshold=0.8
    )
    assert removed == {"b.txt": "a.txt"}
    for name in ("a.txt", "c.txt"):
        assert (tmp_path / "out" / name).read_bytes() == contents[name]
    assert not (tmp_path / "out" / "b.txt").exists()


# ---- PII ----
@pytest.mark.parametrize(
    "phone",
    [
        "(415) 555-0132",
        "415-555-0132",
        "415.555.0132",
        "+1 415 555 0132",
        "+1-415-555-0132",
        "+44 20 7946 0958",
        "+49 30 12345678",
        "+33 1 23 45 67 89",
    ],
)
def test_mask_phone_formats(phone):
    masked, n = pii.mask_phone_numbers(f"Call {phone} today.")
    assert (masked, n) == ("Call <PHONE> today.", 1)


def test_mask_emails_ips_secrets():
    assert pii.mask_emails("mail jane.doe+x@mail.example.co.uk, or a@b.org.") == (
        "mail <EMAIL>, or <EMAIL>.",
        2,
    )
    assert pii.mask_emails("@property and user@localhost")[1] == 0
    assert (
        pii.mask_ips("from 192.168.0.1 and 2001:db8::ff00:42:8329 and fe80:0:0:0:202:b3ff:fe1e:8329")[1] == 3
    )
    assert pii.mask_ips("version 3.11.2, 999.1.1.1, a[::2], 12:30:45")[1] == 0
    text = 'AWS = "AKIAIOSFODNN7EXAMPLE"\napi_key = "9f86d081884c7d659a2feaa0c55ad015"\npassword = "changeme_please"\n'
    masked, n = pii.mask_secrets(text)
    assert n == 2 and "AKIA" not in masked and 'api_key = "<KEY>"' in masked and "changeme_please" in masked
    assert pii.mask_phone_numbers("IP 156.196.118.40, date 2019-03-04, 3.14159")[1] == 0


def test_tokens_are_not_recounted():
    text = "Write to a@b.org or call (415) 555-0132 from 10.0.0.1, key AKIAIOSFODNN7EXAMPLE."
    once, counts = pii.mask_pii(text)
    assert counts == {"key": 1, "email": 1, "ip": 1, "phone": 1}
    twice, counts2 = pii.mask_pii(once)
    assert twice == once and sum(counts2.values()) == 0
    for tok in pii.TOKENS.values():
        assert tok in once
    with pytest.raises(ValueError, match="kind"):
        pii.find_pii("x", "ssn")
    with pytest.raises(TypeError, match="text"):
        pii.mask_emails(None)
