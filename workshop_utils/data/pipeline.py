"""The whole cleaning pipeline on a `datasets.Dataset`, with accounting: nothing is ever dropped silently.

Stages, in FineWeb's order: input (decode) -> extract (trafilatura) -> langid (LID-176 >= 0.65) ->
quality (Gopher repetition, Gopher quality, C4; code filters) -> exact_dedup -> near_dedup (MinHash) ->
pii (masking; transforms, drops nothing). Every dropped document goes to the rejects table with its stage
and reason; `kept + rejected == input` is asserted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache

import pandas as pd

from .dedup import exact_dedup, minhash_near_dedup
from .extract import MAX_DOC_BYTES, decode, extract
from .langid import LANG_THRESHOLD, identify_language
from .pii import TOKENS, detect_pii_values, mask_pii
from .quality import quality_stage

STAGES = ("input", "extract", "langid", "quality", "exact_dedup", "near_dedup")

# Which ground-truth classes each stage is meant to remove (used to score precision and recall).
STAGE_TARGETS = {
    "input": {"broken"},
    "extract": {"broken", "low_quality"},
    "langid": {"non_english"},
    "quality": {"low_quality"},
    "exact_dedup": {"duplicate"},
    "near_dedup": {"duplicate"},
}

# Published stage figures (reference_figures.md §5). Only the overall RefinedWeb figure is verified.
PUBLISHED = {
    "langid": ("RefinedWeb Fig. 2: ~50 % of documents discarded as not English", 50.0, "unverified"),
    "quality": ("RefinedWeb Fig. 2: 24 % of the remaining for insufficient quality", 24.0, "unverified"),
    "dedup": ("RefinedWeb Fig. 2: 12 % (of the remaining) for being duplicates", 12.0, "unverified"),
    "overall": ('RefinedWeb: "nearly 90 % of the documents" removed', 90.0, "verified-secondary"),
}


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of every stage (published defaults)."""

    lang_threshold: float = LANG_THRESHOLD  # RefinedWeb / FineWeb
    max_doc_bytes: int = MAX_DOC_BYTES
    num_hashes: int = 112  # FineWeb: 14 bands x 8 rows over word 5-grams
    num_bands: int = 14
    ngrams: int = 5
    jaccard_threshold: float = 0.8  # confirmation of a candidate pair by true Jaccard
    num_proc: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.lang_threshold <= 1:
            raise ValueError(f"lang_threshold must be in [0, 1], got {self.lang_threshold}")
        if self.num_hashes % self.num_bands:
            raise ValueError(f"num_bands ({self.num_bands}) must divide num_hashes ({self.num_hashes})")
        if not isinstance(self.num_proc, int) or self.num_proc < 1:
            raise ValueError(f"num_proc must be a positive int, got {self.num_proc!r}")


def _words(text: str) -> int:
    return len(text.split())


# ---- per-document stage functions (each a datasets.map function: row -> new columns) ----
def input_stage(row: dict, max_doc_bytes: int = MAX_DOC_BYTES) -> dict:
    """Decode raw bytes; drop empty, whitespace, invalid UTF-8 / binary and oversize documents."""
    r = decode(row["raw"], max_doc_bytes)
    return {"text": r.text, "drop_reason": "" if r.keep else r.reason}


def extract_stage(row: dict) -> dict:
    """Main text of HTML pages; books and code pass unchanged."""
    r = extract(row["text"], row["kind"])
    return {"text": r.text, "drop_reason": "" if r.keep else r.reason}


def langid_stage(row: dict, threshold: float = LANG_THRESHOLD) -> dict:
    """Keep English with score >= threshold; code files are not prose and skip language ID."""
    if row["kind"] == "code":
        return {"pred_lang": "code", "lang_score": 1.0, "drop_reason": ""}
    lang, score = identify_language(row["text"])
    ok = lang == "en" and score >= threshold
    reason = "" if ok else (f"not_english:{lang}" if lang != "en" else "low_lang_score")
    return {"pred_lang": lang, "lang_score": score, "drop_reason": reason}


def pii_map(row: dict) -> dict:
    """Mask PII; keep the text before masking (for scoring) and the count per kind."""
    masked, counts = mask_pii(row["text"])
    return {"text_before_pii": row["text"], "text": masked, **{f"pii_{k}": v for k, v in counts.items()}}


def quality_map(row: dict) -> dict:
    """Heuristic quality rules by source kind (C4 also rewrites the text: bad lines removed)."""
    text, verdict = quality_stage(row["text"], row["kind"])
    return {
        "text": text if verdict.keep else row["text"],
        "drop_reason": "" if verdict.keep else verdict.rule,
    }


def apply_rows(batch: dict[str, list], fn, **kw) -> dict[str, list]:
    """Run a per-document stage function over a `datasets` batch (fewer Arrow round trips than row maps)."""
    rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
    outs = [fn(r, **kw) for r in rows]
    return {k: [o[k] for o in outs] for k in outs[0]} if outs else {}


@dataclass
class PipelineResult:
    """Kept documents, the rejects table, the waterfall, and stage timings."""

    kept: object  # datasets.Dataset
    rejects: pd.DataFrame
    waterfall: pd.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)
    n_input: int = 0

    @property
    def removed_fraction(self) -> float:
        """Fraction of input documents removed."""
        return len(self.rejects) / self.n_input

    def to_json(self) -> dict:
        """Everything as JSON values (for the live fast path); `from_json` rebuilds an equal result."""

        def frame(df: pd.DataFrame) -> dict:
            cols = {c: [None if pd.isna(v) else v for v in df[c].tolist()] for c in df.columns}
            return {"columns": list(df.columns), "dtypes": [str(t) for t in df.dtypes], "data": cols}

        return {
            "kept": {"features": self.kept.features.to_dict(), "data": self.kept.to_dict()},
            "rejects": frame(self.rejects),
            "waterfall": frame(self.waterfall),
            "seconds": dict(self.seconds),
            "n_input": self.n_input,
        }

    @classmethod
    def from_json(cls, d: dict) -> PipelineResult:
        """Rebuild a result stored with `to_json`."""
        import datasets

        def frame(f: dict) -> pd.DataFrame:
            df = pd.DataFrame({c: f["data"][c] for c in f["columns"]}, columns=f["columns"])
            return df.astype(dict(zip(f["columns"], f["dtypes"])))

        missing = {"kept", "rejects", "waterfall", "seconds", "n_input"} - set(d)
        if missing:
            raise ValueError(f"not a stored PipelineResult: missing {sorted(missing)}")
        features = datasets.Features.from_dict(d["kept"]["features"])
        kept = datasets.Dataset.from_dict(d["kept"]["data"], features=features)
        return cls(kept, frame(d["rejects"]), frame(d["waterfall"]), dict(d["seconds"]), int(d["n_input"]))


def run_pipeline(crawl, config: PipelineConfig | None = None):
    """Run every stage on a crawl `datasets.Dataset` (see `crawl.crawl_dataset`)."""
    import datasets

    config = config or PipelineConfig()
    if not isinstance(crawl, datasets.Dataset):
        raise TypeError(f"crawl must be a datasets.Dataset, got {type(crawl).__name__}")
    missing = {"id", "kind", "raw", "truth"} - set(crawl.column_names)
    if missing:
        raise ValueError(f"crawl is missing columns {sorted(missing)}")
    datasets.disable_progress_bars()
    n_input = len(crawl)
    nproc = config.num_proc if n_input >= 200 * config.num_proc else 1
    rejects: list[pd.DataFrame] = []
    seconds: dict[str, float] = {}
    waterfall = [{"stage": "raw crawl", "docs": n_input, "words": None}]
    meta_cols = ["id", "kind", "truth", "subtype"]

    def split(ds, stage: str):
        """Move dropped rows to the rejects table; return the rest."""
        drop_mask = [r != "" for r in ds["drop_reason"]]
        if any(drop_mask):
            idx = [i for i, d in enumerate(drop_mask) if d]
            sub = ds.select(idx)
            df = pd.DataFrame({c: sub[c] for c in meta_cols})
            df["stage"], df["reason"] = stage, sub["drop_reason"]
            rejects.append(df)
        kept = ds.select([i for i, d in enumerate(drop_mask) if not d])
        waterfall.append({"stage": stage, "docs": len(kept), "words": sum(_words(t) for t in kept["text"])})
        return kept

    t = time.perf_counter()
    batched = {"batched": True, "batch_size": 64, "num_proc": nproc}
    ds = crawl.map(
        apply_rows, fn_kwargs={"fn": input_stage, "max_doc_bytes": config.max_doc_bytes}, **batched
    )
    ds = split(ds.remove_columns("raw"), "input")
    seconds["input"] = time.perf_counter() - t

    for stage, fn, kw in (
        ("extract", extract_stage, {}),
        ("langid", langid_stage, {"threshold": config.lang_threshold}),
        ("quality", quality_map, {}),
    ):
        t = time.perf_counter()
        ds = split(ds.map(apply_rows, fn_kwargs={"fn": fn, **kw}, **batched), stage)
        seconds[stage] = time.perf_counter() - t

    t = time.perf_counter()
    first = exact_dedup(ds["text"])
    ids = ds["id"]
    ds = ds.map(
        lambda r, i: {"drop_reason": f"exact_dup_of:{ids[first[i]]}" if first[i] >= 0 else ""},
        with_indices=True,
    )
    ds = split(ds, "exact_dedup")
    seconds["exact_dedup"] = time.perf_counter() - t

    t = time.perf_counter()
    res = minhash_near_dedup(
        ds["text"], config.num_hashes, config.num_bands, config.ngrams, config.jaccard_threshold
    )
    ids = ds["id"]
    dup = res.duplicate_of
    ds = ds.map(
        lambda r, i: {"drop_reason": f"near_dup_of:{ids[dup[i]]}" if dup[i] >= 0 else ""}, with_indices=True
    )
    ds = split(ds, "near_dedup")
    seconds["near_dedup"] = time.perf_counter() - t

    t = time.perf_counter()
    kept = ds.map(apply_rows, fn_kwargs={"fn": pii_map}, **batched).remove_columns("drop_reason")
    seconds["pii"] = time.perf_counter() - t
    waterfall.append({"stage": "pii", "docs": len(kept), "words": sum(_words(x) for x in kept["text"])})

    rej = (
        pd.concat(rejects, ignore_index=True)
        if rejects
        else pd.DataFrame(columns=[*meta_cols, "stage", "reason"])
    )
    assert len(kept) + len(rej) == n_input, "accounting: kept + rejected must equal input"
    assert set(kept["id"]).isdisjoint(rej["id"]), "a document is both kept and rejected"
    return PipelineResult(kept, rej, pd.DataFrame(waterfall), seconds, n_input)


# ---------------------------------------------------------------------------------------------
# Scoring against the generator's ground truth
# ---------------------------------------------------------------------------------------------
def stage_table(result: PipelineResult) -> pd.DataFrame:
    """Per stage: docs in, removed, % of stage input, % of crawl, precision against ground truth."""
    rows = []
    n_in = result.n_input
    for stage in STAGES:
        rej = result.rejects[result.rejects["stage"] == stage]
        hit = rej["truth"].isin(STAGE_TARGETS[stage]).sum()
        rows.append(
            {
                "stage": stage,
                "docs_in": n_in,
                "removed": len(rej),
                "pct_of_stage_input": 100 * len(rej) / n_in if n_in else 0.0,
                "pct_of_crawl": 100 * len(rej) / result.n_input,
                "precision": hit / len(rej) if len(rej) else float("nan"),
            }
        )
        n_in -= len(rej)
    return pd.DataFrame(rows)


def truth_recall(result: PipelineResult) -> pd.DataFrame:
    """Per ground-truth class: how many documents, and the fraction removed by a stage meant for it."""
    kept_truth = pd.Series(result.kept["truth"])
    rows = []
    rej = result.rejects
    for truth in ("broken", "non_english", "low_quality", "duplicate"):
        n = int((rej["truth"] == truth).sum() + (kept_truth == truth).sum())
        ok = sum(
            int(((rej["truth"] == truth) & (rej["stage"] == s)).sum())
            for s in STAGES
            if truth in STAGE_TARGETS[s]
        )
        rows.append({"truth": truth, "docs": n, "recall": ok / n if n else float("nan")})
    n_keep = int((rej["truth"] == "keep").sum() + (kept_truth == "keep").sum())
    rows.append(
        {"truth": "keep", "docs": n_keep, "recall": float((kept_truth == "keep").sum()) / max(n_keep, 1)}
    )
    return pd.DataFrame(rows)


def confusion(result: PipelineResult) -> pd.DataFrame:
    """Ground-truth class x where the document ended (a stage, or 'kept')."""
    rej = result.rejects[["truth", "stage"]]
    kept = pd.DataFrame({"truth": result.kept["truth"], "stage": "kept"})
    both = pd.concat([rej, kept], ignore_index=True)
    tab = pd.crosstab(both["truth"], both["stage"])
    return tab[[c for c in (*STAGES, "kept") if c in tab.columns]]


_PII_COUNTS = ("injected", "caught", "detections", "true_detections")


@dataclass
class PIIScore:
    """Detection quality of the PII stage on the injected (ground-truth) values, in total and per kind."""

    injected: int
    caught: int
    detections: int
    true_detections: int
    misses: list[tuple[str, str, str]]  # (doc id, type, value)
    false_positives: list[tuple[str, str, str]]  # (doc id, kind, string)
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> the four counts above

    @property
    def recall(self) -> float:
        return self.caught / self.injected if self.injected else float("nan")

    @property
    def precision(self) -> float:
        return self.true_detections / self.detections if self.detections else float("nan")

    def table(self) -> pd.DataFrame:
        """One row per kind (and 'all'): injected, caught, recall, detections, true detections, precision."""
        rows = [{"kind": k, **c} for k, c in self.by_kind.items()]
        totals = (self.injected, self.caught, self.detections, self.true_detections)
        rows.append({"kind": "all", **dict(zip(_PII_COUNTS, totals))})
        df = pd.DataFrame(rows)
        df["recall"] = df["caught"] / df["injected"].where(df["injected"] > 0)
        df["precision"] = df["true_detections"] / df["detections"].where(df["detections"] > 0)
        return df[["kind", "injected", "caught", "recall", "detections", "true_detections", "precision"]]


def score_pii(kept) -> PIIScore:
    """Score masking against the injected values present before masking (kinds must agree).

    Recall: a value is caught when one detection of its kind covers all of it and it is gone afterwards (a
    partly masked value is a miss). Precision: a detection is true when it covers or lies inside an injected
    value of its kind; anything else (a date, a price, a version masked as PII) is a false positive.
    """
    counts = {k: dict.fromkeys(_PII_COUNTS, 0) for k in TOKENS}
    misses, fps = [], []
    for row in kept:
        before, after = row["text_before_pii"], row["text"]
        values = [(t, v) for t, v in zip(row["pii_types"], row["pii_values"]) if v in before]
        found = detect_pii_values(before)
        for t, v in values:
            counts[t]["injected"] += 1
            if v not in after and any(k == t and v in s for k, s in found):
                counts[t]["caught"] += 1
            else:
                misses.append((row["id"], t, v))
        for kind, s in found:
            counts[kind]["detections"] += 1
            if any(t == kind and (v in s or s in v) for t, v in values):
                counts[kind]["true_detections"] += 1
            else:
                fps.append((row["id"], kind, s))
    total = {c: sum(k[c] for k in counts.values()) for c in _PII_COUNTS}
    return PIIScore(**total, misses=misses, false_positives=fps, by_kind=counts)


@lru_cache(maxsize=2)
def run_profile_crawl(profile_name: str, seed: int = 0) -> tuple[list, PipelineResult]:
    """Build the crawl of a profile and run the pipeline on it (cached per process: tests share it)."""
    from ..config import get_profile
    from .crawl import build_crawl, crawl_dataset

    profile = get_profile(profile_name)
    docs = build_crawl(profile.crawl.n_docs, seed=seed)
    return docs, run_pipeline(crawl_dataset(docs), PipelineConfig(num_proc=profile.crawl.num_proc))
