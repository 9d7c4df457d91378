"""The per-document stages as functions over a batch of documents: one home for each rule and reason.

decode -> url_filter -> extract -> langid -> quality, and after dedup PII masking (`pii_batch`). Each takes lists (one
item per document) and returns the new texts and a drop reason per document ("" = kept). `document_pass`
chains the first five over one batch, each stage on the survivors of the previous one, and times each
stage; the `datasets` pipeline (`pipeline.py`) maps it over the crawl (in `num_proc` worker processes) and
the datatrove blocks (`datatrove_blocks.py`) call the single stages: the same code, the same kept set.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

from .code_rules import licence_rule
from .dedup import normalize
from .extract import MAX_DOC_BYTES, decode, extract
from .langid import LANG_THRESHOLD, identify_language
from .pii import MASKERS, mask_pii
from .quality import quality_stage
from .urls import url_batch

DOC_STAGES = ("input", "url_filter", "extract", "langid", "quality")
_SAME_WORDS = {"url_filter": "input", "langid": "extract"}  # stages that keep the text: same word count


def decode_batch(
    raws: Sequence[bytes | str | None],
    max_doc_bytes: int = MAX_DOC_BYTES,
    read_errors: Sequence[str] | None = None,
):
    """Stage input: (texts, reasons) of raw documents; a record the WARC reader could not use (its
    `read_error`, e.g. "warc:http_404"), empty, whitespace, invalid UTF-8, binary, oversize."""
    results = [decode(raw, max_doc_bytes) for raw in raws]
    reasons = [r.reason for r in results]
    if read_errors is not None:
        reasons = [err or reason for err, reason in zip(read_errors, reasons)]
    return [r.text for r in results], reasons


def extract_batch(texts: Sequence[str], kinds: Sequence[str]):
    """Stage extract: (main texts, reasons); web pages through trafilatura, books and code unchanged."""
    results = [extract(t, k) for t, k in zip(texts, kinds)]
    return [r.text for r in results], [r.reason for r in results]


def langid_batch(texts: Sequence[str], kinds: Sequence[str], threshold: float = LANG_THRESHOLD):
    """Stage langid: (languages, scores, reasons); English with score >= threshold is kept, code skips it.

    fastText is called once per document: `fasttext-predict`'s list call returns labels without scores.
    """
    langs, scores, reasons = [], [], []
    for text, kind in zip(texts, kinds):
        lang, score = ("code", 1.0) if kind == "code" else identify_language(text)
        ok = kind == "code" or (lang == "en" and score >= threshold)
        langs.append(lang)
        scores.append(score)
        reasons.append("" if ok else (f"not_english:{lang}" if lang != "en" else "low_lang_score"))
    return langs, scores, reasons


def quality_batch(texts: Sequence[str], kinds: Sequence[str]):
    """Stage quality: (texts, reasons); code first needs a permissive licence (LLaMA kept Apache, BSD and
    MIT), then the heuristic rules by kind; C4 rewrites a kept web text (bad lines removed)."""
    texts_out, reasons = [], []
    for text, kind in zip(texts, kinds):
        licence = licence_rule(text) if kind == "code" else ""
        if licence:
            texts_out.append(text)
            reasons.append(licence)
            continue
        new, verdict = quality_stage(text, kind)
        texts_out.append(new if verdict.keep else text)
        reasons.append("" if verdict.keep else verdict.rule)
    return texts_out, reasons


def document_pass(
    raw: list,
    kind: list[str],
    url: list[str],
    read_error: list[str] | None = None,
    max_doc_bytes: int = MAX_DOC_BYTES,
    lang_threshold: float = LANG_THRESHOLD,
) -> dict[str, list]:
    """Every per-document stage over one batch (a `datasets` batched map function on columns raw, kind,
    url and, for a crawl read from WARC files, read_error).

    Returns per document: its text after the last stage ("" when dropped), the stage that dropped it ("" = kept)
    and why, the language and its score, its word count after each stage it passed (for the waterfall),
    and `seconds_<stage>`: this batch's time in each stage, shared out over the batch's documents. For
    the survivors also the normalised text and its SHA-1 (`dedup.text_hash`), which dedup needs next.
    """
    n = len(raw)
    out: dict[str, list] = {"text": [""] * n, "drop_stage": [""] * n, "drop_reason": [""] * n}
    out |= {"pred_lang": [""] * n, "lang_score": [0.0] * n}
    out |= {f"words_{s}": [0] * n for s in DOC_STAGES} | {f"seconds_{s}": [0.0] * n for s in DOC_STAGES}
    alive = list(range(n))

    def run(stage: str, texts: list[str], reasons: list[str]) -> None:
        """Record the stage's texts and drops; keep the survivors alive."""
        nonlocal alive
        survivors = []
        for i, text, reason in zip(alive, texts, reasons):
            if reason:  # its text is no longer needed: not carried back to the parent process
                out["text"][i], out["drop_stage"][i], out["drop_reason"][i] = "", stage, reason
            else:
                same = _SAME_WORDS.get(stage)
                out["text"][i] = text
                out[f"words_{stage}"][i] = out[f"words_{same}"][i] if same else len(text.split())
                survivors.append(i)
        alive = survivors

    for stage in DOC_STAGES:
        t0 = time.perf_counter()
        texts, kinds = [out["text"][i] for i in alive], [kind[i] for i in alive]
        if stage == "input":
            run(stage, *decode_batch(raw, max_doc_bytes, read_error))
        elif stage == "url_filter":
            run(stage, texts, url_batch([url[i] for i in alive], kinds))
        elif stage == "extract":
            run(stage, *extract_batch(texts, kinds))
        elif stage == "langid":
            langs, scores, reasons = langid_batch(texts, kinds, lang_threshold)
            for i, lang, score in zip(alive, langs, scores):
                out["pred_lang"][i], out["lang_score"][i] = lang, score
            run(stage, texts, reasons)
        else:
            run(stage, *quality_batch(texts, kinds))
        share = (time.perf_counter() - t0) / max(n, 1)
        out[f"seconds_{stage}"] = [share] * n
    t0 = time.perf_counter()  # dedup's per-document half, here in parallel: normalised text and its SHA-1
    out["normalised"], out["dedup_key"] = [""] * n, [""] * n
    for i in alive:
        norm = out["normalised"][i] = normalize(out["text"][i])
        out["dedup_key"][i] = hashlib.sha1(norm.encode()).hexdigest()  # = dedup.text_hash(text)
    out["seconds_exact_dedup"] = [(time.perf_counter() - t0) / max(n, 1)] * n
    return out


def pii_batch(text: list[str]) -> dict[str, list]:
    """PII masking over a batch: the text before masking (for scoring), the masked text, counts per kind."""
    masked = [mask_pii(t) for t in text]
    out = {"text_before_pii": list(text), "text": [m for m, _ in masked]}
    return out | {f"pii_{k}": [c[k] for _, c in masked] for k, _ in MASKERS}  # in `mask_pii`'s order
