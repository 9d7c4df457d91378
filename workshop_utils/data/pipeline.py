"""The whole cleaning pipeline on a `datasets.Dataset`, with accounting: nothing is ever dropped silently.

Stages, in FineWeb's order: input (read, decode) -> url_filter (block list, URL words) -> extract (trafilatura) -> langid (LID-176 >= 0.65) ->
quality (code licence; Gopher repetition, Gopher quality, C4; code filters) -> book_dedup (LLaMA's 90 %) ->
exact_dedup -> near_dedup (MinHash, per source) ->
pii (masking; transforms, drops nothing). Every dropped document goes to the rejects table with its stage
and reason; `kept + rejected == input` is asserted.
The five per-document stages run as one `datasets.map` pass (`stages.document_pass`) in `num_proc` worker
processes that read a memory-mapped copy of the crawl; dedup and PII then run on the survivors.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd

from .books import book_dup_of
from .code_rules import stack_lsh
from .dedup import first_occurrences, near_duplicates
from .extract import MAX_DOC_BYTES
from .langid import LANG_THRESHOLD
from .pii import TOKENS, detect_pii_values
from .stages import DOC_STAGES, document_pass, pii_batch

STAGES = ("input", "url_filter", "extract", "langid", "quality", "book_dedup", "exact_dedup", "near_dedup")

# Which ground-truth classes each stage is meant to remove (used to score precision and recall).
STAGE_TARGETS = {
    "input": {"broken"},
    "url_filter": {"low_quality"},
    "extract": {"broken", "low_quality"},
    "langid": {"non_english"},
    "quality": {"low_quality", "licence"},
    "book_dedup": {"duplicate"},
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


_BATCH = 256  # documents per `datasets` batch
# Fewer documents per worker process and starting it costs more than it saves. PII masking (under a
# millisecond a document) ran slower in 2 processes than in 1 on the cpu crawl's ~3k survivors (2 cores).
_MIN_DOCS_PER_PROC = 200
_MIN_DOCS_PER_PROC_PII = 2500
_HELPERS = [
    "drop_stage",
    "seconds_exact_dedup",
    *(f"{p}_{s}" for p in ("words", "seconds") for s in DOC_STAGES),
]
_DEDUP_INPUTS = ["normalised", "dedup_key"]  # made in the worker processes, used by dedup, then dropped
_META = ["id", "kind", "truth", "subtype"]


def _workers(n_docs: int, num_proc: int, per_proc: int | None = None) -> int | None:
    """`num_proc` for `datasets.map`: None (in this process) unless every worker gets enough documents."""
    enough = n_docs >= (per_proc or _MIN_DOCS_PER_PROC) * num_proc
    return num_proc if num_proc > 1 and enough else None


def _column(ds, name: str) -> list:
    """One column as a list, read in bulk (`ds[name]` on a selection would read row by row)."""
    return ds.select_columns([name]).to_dict()[name]


def _rejects(ds, rows: list[int], stage: str, reasons: list[str]) -> pd.DataFrame:
    """The rejects table of `rows` of `ds` (metadata, stage, reason), in crawl order."""
    df = pd.DataFrame(ds.select(rows).select_columns(_META).to_dict())
    df["stage"], df["reason"] = stage, reasons
    return df


@dataclass
class _Books:
    """What a run records as it goes: rejects tables, waterfall rows, stage seconds, its scratch folder."""

    work: Path
    tables: list = field(default_factory=list)
    waterfall: list = field(default_factory=list)
    seconds: dict = field(default_factory=dict)


def _memory_mapped(ds, path: Path):
    """`ds` written to an Arrow file and opened memory-mapped: worker processes then read the file
    instead of receiving the whole table pickled (the crawl's raw bytes are most of its size)."""
    import datasets
    import pyarrow as pa

    table = ds.with_format("arrow")[:]  # (selected) rows in order
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return datasets.Dataset.from_file(str(path), info=datasets.DatasetInfo(features=ds.features))


def _document_stages(crawl, config: PipelineConfig, books: _Books):
    """Decode, extract, langid, quality in one `datasets.map` pass; returns the surviving documents.

    Each stage is timed inside the workers (its seconds summed over them / the number of workers);
    `arrow_io` is the rest of the pass' wall time: writing the crawl to the scratch file the workers read,
    starting them, and their Arrow output.
    """
    nproc = _workers(len(crawl), config.num_proc)
    t = time.perf_counter()
    ds = _memory_mapped(crawl, books.work / "crawl.arrow").map(
        document_pass,
        input_columns=["raw", "kind", "url"] + (["read_error"] if "read_error" in crawl.column_names else []),
        fn_kwargs={"max_doc_bytes": config.max_doc_bytes, "lang_threshold": config.lang_threshold},
        batched=True,
        batch_size=_BATCH,
        num_proc=nproc,
        remove_columns=["raw"],
        cache_file_name=str(books.work / "documents.arrow"),
    )
    wall = time.perf_counter() - t
    cols = ds.select_columns(_HELPERS + ["drop_reason"]).to_dict()
    for stage in (*DOC_STAGES, "exact_dedup"):
        books.seconds[stage] = sum(cols[f"seconds_{stage}"]) / (nproc or 1)
    books.seconds["arrow_io"] = max(wall - sum(books.seconds.values()), 0.0)
    books.seconds["exact_dedup_workers"] = books.seconds.pop("exact_dedup")
    alive = [True] * len(ds)
    for stage in DOC_STAGES:
        rows = [i for i, s in enumerate(cols["drop_stage"]) if s == stage]
        if rows:
            books.tables.append(_rejects(ds, rows, stage, [cols["drop_reason"][i] for i in rows]))
        for i in rows:
            alive[i] = False
        words = sum(w for w, a in zip(cols[f"words_{stage}"], alive) if a)
        books.waterfall.append({"stage": stage, "docs": sum(alive), "words": words})
    return ds.select([i for i, a in enumerate(alive) if a]).remove_columns(_HELPERS)


def _drop_duplicates(ds, dup_of: list[int], stage: str, prefix: str, books: _Books):
    """Move the rows with dup_of >= 0 to the rejects table (reason: `<prefix><kept id>`); return the rest."""
    ids = _column(ds, "id")
    rows = [i for i, d in enumerate(dup_of) if d >= 0]
    if rows:
        books.tables.append(_rejects(ds, rows, stage, [f"{prefix}{ids[dup_of[i]]}" for i in rows]))
    kept = ds.select([i for i, d in enumerate(dup_of) if d < 0])
    words = sum(len(t.split()) for t in _column(kept, "text"))
    books.waterfall.append({"stage": stage, "docs": len(kept), "words": words})
    return kept


def near_dup_of(normalised: list[str], kinds: list[str], config: PipelineConfig) -> list[int]:
    """MinHash near dedup per source, each at its published settings: code at The Stack's (256
    permutations as 25 bands x 10, Jaccard >= 0.7), web pages and books at FineWeb's (`config`). Per
    document the index of the one it duplicates, or -1."""
    out = [-1] * len(normalised)
    _, bands, rows, threshold = stack_lsh()
    c = config
    groups = (
        ([i for i, k in enumerate(kinds) if k == "code"], (bands * rows, bands, c.ngrams, threshold)),
        ([i for i, k in enumerate(kinds) if k != "code"], (c.num_hashes, c.num_bands, c.ngrams, c.jaccard_threshold)),
    )  # fmt: skip
    for idx, params in groups:
        res = near_duplicates([normalised[i] for i in idx], *params, validate=False)
        for k, dup in enumerate(res.duplicate_of):
            if dup >= 0:
                out[idx[k]] = idx[dup]
    return out


def _global_stages(ds, config: PipelineConfig, books: _Books):
    """Book dedup, exact dedup, MinHash near dedup (over all survivors, crawl order), PII masking."""
    t = time.perf_counter()
    ds = _drop_duplicates(
        ds, book_dup_of(_column(ds, "text"), _column(ds, "kind")), "book_dedup", "book_dup_of:", books
    )
    books.seconds["book_dedup"] = time.perf_counter() - t

    t = time.perf_counter()  # keys hashed in the workers: their time counts here too
    first = first_occurrences(_column(ds, "dedup_key"))
    ds = _drop_duplicates(ds, first, "exact_dedup", "exact_dup_of:", books)
    books.seconds["exact_dedup"] = books.seconds.pop("exact_dedup_workers") + time.perf_counter() - t

    t = time.perf_counter()
    dup_of = near_dup_of(_column(ds, "normalised"), _column(ds, "kind"), config)
    ds = _drop_duplicates(ds, dup_of, "near_dedup", "near_dup_of:", books)
    ds = ds.remove_columns(_DEDUP_INPUTS)
    books.seconds["near_dedup"] = time.perf_counter() - t

    t = time.perf_counter()
    kept = ds.map(
        pii_batch,
        input_columns=["text"],
        batched=True,
        batch_size=_BATCH,
        num_proc=_workers(len(ds), config.num_proc, _MIN_DOCS_PER_PROC_PII),
        keep_in_memory=True,  # the result outlives the scratch folder
    ).remove_columns("drop_reason")
    books.seconds["pii"] = time.perf_counter() - t
    words = sum(len(x.split()) for x in _column(kept, "text"))
    books.waterfall.append({"stage": "pii", "docs": len(kept), "words": words})
    return kept


def run_pipeline(crawl, config: PipelineConfig | None = None):
    """Run every stage on a crawl `datasets.Dataset` (see `crawl.crawl_dataset`)."""
    import datasets

    config = config or PipelineConfig()
    if not isinstance(crawl, datasets.Dataset):
        raise TypeError(f"crawl must be a datasets.Dataset, got {type(crawl).__name__}")
    missing = {"id", "url", "kind", "raw", "truth"} - set(crawl.column_names)
    if missing:
        raise ValueError(f"crawl is missing columns {sorted(missing)}")
    datasets.disable_progress_bars()
    n_input = len(crawl)
    with tempfile.TemporaryDirectory(prefix="pipeline_") as work:
        books = _Books(Path(work), waterfall=[{"stage": "raw crawl", "docs": n_input, "words": None}])
        kept = _global_stages(_document_stages(crawl, config, books), config, books)
    rej = (
        pd.concat(books.tables, ignore_index=True)
        if books.tables
        else pd.DataFrame(columns=[*_META, "stage", "reason"])
    )
    assert len(kept) + len(rej) == n_input, "accounting: kept + rejected must equal input"
    assert set(_column(kept, "id")).isdisjoint(rej["id"]), "a document is both kept and rejected"
    return PipelineResult(kept, rej, pd.DataFrame(books.waterfall), books.seconds, n_input)


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
    for truth in ("broken", "non_english", "low_quality", "licence", "duplicate"):
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
