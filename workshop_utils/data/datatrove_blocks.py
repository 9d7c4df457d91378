"""The same stages as `datatrove` pipeline blocks, for crawls that outgrow one machine (optional extra).

`pip install datatrove` (tested with 0.10.1). Locally the blocks run under `LocalPipelineExecutor`; on a
cluster the same list runs under `SlurmPipelineExecutor`. Two steps:
1. per-document stages, sharded over tasks/workers: decode -> url_filter (datatrove's own `URLFilter`,
   given our lists) -> extract -> langid -> quality;
2. global stages in one task: book, exact and MinHash dedup over all survivors (crawl order), then PII masking.
(At web scale step 2 becomes datatrove's own 4-stage MinHash pipeline: signatures, buckets, clusters,
filter. We keep ours so the kept set can be compared with the notebook's pipeline document for document.)
Every dropped document is written by an exclusion writer with its stage and reason: nothing is lost.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

try:
    from datatrove.data import Document, DocumentsPipeline
    from datatrove.pipeline.base import PipelineStep
    from datatrove.pipeline.filters.base_filter import BaseFilter
    from datatrove.pipeline.filters.url_filter import URLFilter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    HAVE_DATATROVE = True
except ImportError:  # the optional extra is not installed
    HAVE_DATATROVE = False
    BaseFilter = PipelineStep = URLFilter = object  # type: ignore[misc,assignment]

from .books import book_dup_of
from .dedup import exact_dedup, normalize
from .extract import MAX_DOC_BYTES
from .langid import LANG_THRESHOLD
from .pii import mask_pii
from .pipeline import PipelineConfig, near_dup_of
from .stages import decode_batch, extract_batch, langid_batch, quality_batch
from .urls import BANNED_WORDS, SOFT_BANNED_WORDS, SOFT_WORD_THRESHOLD, blocked_domains

_B64 = "b64:"  # prefix, so an empty document is never an empty field (datatrove's reader skips those)


def _require() -> None:
    if not HAVE_DATATROVE:
        raise ImportError("datatrove is not installed: pip install 'datatrove==0.10.1' orjson")


def write_crawl_jsonl(docs: list, folder: str | Path, n_shards: int = 2) -> list[Path]:
    """Write crawl documents (`crawl.Doc`) to `n_shards` JSONL files, raw bytes base64-encoded."""
    if not isinstance(n_shards, int) or n_shards < 1:
        raise ValueError(f"n_shards must be a positive int, got {n_shards!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"crawl_{k:03d}.jsonl" for k in range(n_shards)]
    files = [p.open("w", encoding="utf-8") for p in paths]
    try:
        for i, d in enumerate(docs):
            rec = {k: v for k, v in d.as_record().items() if k != "raw"}
            rec["text"] = _B64 + base64.b64encode(d.raw).decode("ascii")
            files[i * n_shards // len(docs)].write(json.dumps(rec) + "\n")
    finally:
        for f in files:
            f.close()
    return paths


_BATCH = 256  # documents per filter_batch call, as the `datasets` pipeline's batches


def _verdicts(batch: list, texts: list[str], reasons: list[str], stage: str) -> list[bool | tuple[bool, str]]:
    """datatrove filter results of a stage's (texts, reasons): kept documents take their new text."""
    out: list[bool | tuple[bool, str]] = []
    for doc, text, reason in zip(batch, texts, reasons):
        if reason:
            out.append((False, f"{stage}:{reason}"))
        else:
            doc.text = text
            out.append(True)
    return out


class _BatchFilter(BaseFilter):
    """A filter that runs one of `stages.py`'s batch functions on `_BATCH` documents at a time."""

    def __init__(self, exclusion_writer=None) -> None:
        super().__init__(exclusion_writer, batch_size=_BATCH)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return self.filter_batch([doc])[0]


class DecodeFilter(_BatchFilter):
    """Stage input: base64 raw bytes -> text; drops empty, whitespace, binary and oversize documents."""

    name = "decode"

    def __init__(self, max_doc_bytes: int = MAX_DOC_BYTES, exclusion_writer=None) -> None:
        super().__init__(exclusion_writer)
        self.max_doc_bytes = max_doc_bytes

    def filter_batch(self, batch: list[Document]) -> list[bool | tuple[bool, str]]:
        raws = [base64.b64decode(doc.text.removeprefix(_B64)) for doc in batch]
        return _verdicts(batch, *decode_batch(raws, self.max_doc_bytes), "input")


class UrlFilter(URLFilter):
    """Stage url_filter: datatrove's `URLFilter` with our generated lists instead of its bundled ones."""

    name = "url_filter"

    def __init__(self, exclusion_writer=None) -> None:
        from tldextract import TLDExtract

        super().__init__(
            soft_word_threshold=SOFT_WORD_THRESHOLD,
            extra_domains=blocked_domains(),
            banned_words=BANNED_WORDS,
            soft_banned_words=SOFT_BANNED_WORDS,
            use_integrated_lists=False,
            exclusion_writer=exclusion_writer,
        )
        self.tldextractor = TLDExtract(suffix_list_urls=())  # the bundled suffix list: no download

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if doc.metadata["kind"] != "web":  # books and code come from their own sources
            return True
        verdict = super().filter(doc)
        return True if verdict is True else (False, f"url_filter:{verdict[1]}")


class ExtractFilter(_BatchFilter):
    """Stage extract: trafilatura on web pages."""

    name = "extract"

    def filter_batch(self, batch: list[Document]) -> list[bool | tuple[bool, str]]:
        kinds = [doc.metadata["kind"] for doc in batch]
        return _verdicts(batch, *extract_batch([doc.text for doc in batch], kinds), "extract")


class LangIdFilter(_BatchFilter):
    """Stage langid: LID-176 (bundled), English with score >= threshold; code skips it."""

    name = "langid"

    def __init__(self, threshold: float = LANG_THRESHOLD, exclusion_writer=None) -> None:
        super().__init__(exclusion_writer)
        self.threshold = threshold

    def filter_batch(self, batch: list[Document]) -> list[bool | tuple[bool, str]]:
        texts, kinds = [doc.text for doc in batch], [doc.metadata["kind"] for doc in batch]
        _, _, reasons = langid_batch(texts, kinds, self.threshold)
        return _verdicts(batch, texts, reasons, "langid")


class QualityFilter(_BatchFilter):
    """Stage quality: Gopher repetition + quality, C4 (rewrites lines), code filters."""

    name = "quality"

    def filter_batch(self, batch: list[Document]) -> list[bool | tuple[bool, str]]:
        kinds = [doc.metadata["kind"] for doc in batch]
        return _verdicts(batch, *quality_batch([doc.text for doc in batch], kinds), "quality")


class GlobalDedupPII(PipelineStep):
    """Exact + MinHash dedup over every surviving document (in crawl order), then PII masking.

    Needs a global view: run it with tasks=1. Removed documents go to `exclusion_writer`.
    """

    name = "dedup+pii"
    type = "global"

    def __init__(self, config: PipelineConfig | None = None, exclusion_writer=None) -> None:
        super().__init__()
        self.config = config or PipelineConfig()
        self.exclusion_writer = exclusion_writer

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if world_size != 1:
            raise ValueError(f"GlobalDedupPII needs one task (a global view), got world_size={world_size}")
        docs = sorted(data, key=lambda d: d.id)  # ids are crawl order
        dropped: dict[int, str] = {}
        rest = list(range(len(docs)))

        def drop(dup_of: list[int], reason: str) -> None:
            """Record the documents of `rest` that `dup_of` marks, then keep the others in `rest`."""
            nonlocal rest
            for k, dup in enumerate(dup_of):
                if dup >= 0:
                    dropped[rest[k]] = f"{reason}{docs[rest[dup]].id}"
            rest = [i for k, i in enumerate(rest) if dup_of[k] < 0]

        kinds = [d.metadata["kind"] for d in docs]
        drop(book_dup_of([d.text for d in docs], kinds), "book_dedup:book_dup_of:")
        drop(exact_dedup([docs[i].text for i in rest]), "exact_dedup:exact_dup_of:")
        normalised = [normalize(docs[i].text) for i in rest]
        drop(near_dup_of(normalised, [kinds[i] for i in rest], self.config), "near_dedup:near_dup_of:")
        if self.exclusion_writer:
            with self.exclusion_writer as w:
                for i, reason in sorted(dropped.items()):
                    docs[i].metadata["filter_reason"] = reason
                    w.write(docs[i], rank)
        for i, doc in enumerate(docs):
            if i in dropped:
                continue
            doc.text, counts = mask_pii(doc.text)
            doc.metadata.update({f"pii_{k}": v for k, v in counts.items()})
            self.stat_update("kept")
            yield doc


def document_steps(config: PipelineConfig, excl) -> list:
    """The per-document blocks, in the pipeline's order; `excl(stage)` gives each its exclusion writer.
    One list for every executor (local here, Slurm in `scale_out`)."""
    return [
        DecodeFilter(config.max_doc_bytes, exclusion_writer=excl("input")),
        UrlFilter(exclusion_writer=excl("url_filter")),
        ExtractFilter(exclusion_writer=excl("extract")),
        LangIdFilter(config.lang_threshold, exclusion_writer=excl("langid")),
        QualityFilter(exclusion_writer=excl("quality")),
    ]


def run_datatrove(
    docs: list, work_dir: str | Path, workers: int = 2, config: PipelineConfig | None = None
) -> tuple[list[dict], list[dict]]:
    """Run the crawl through datatrove's LocalPipelineExecutor; returns (kept records, rejected records)."""
    _require()
    from datatrove.executor import LocalPipelineExecutor

    config = config or PipelineConfig()
    work = Path(work_dir)
    write_crawl_jsonl(docs, work / "input", n_shards=max(2, workers))
    rej = work / "rejects"

    def excl(stage: str):
        return JsonlWriter(str(rej / stage), compression=None)

    stage1 = LocalPipelineExecutor(
        pipeline=[
            JsonlReader(str(work / "input"), compression=None),
            *document_steps(config, excl),
            JsonlWriter(str(work / "filtered"), compression=None),
        ],
        tasks=max(2, workers),
        workers=workers,
        logging_dir=str(work / "logs1"),
        start_method="spawn",
    )
    stage2 = LocalPipelineExecutor(
        pipeline=[
            JsonlReader(str(work / "filtered"), compression=None),
            GlobalDedupPII(config, exclusion_writer=excl("dedup")),
            JsonlWriter(str(work / "kept"), compression=None),
        ],
        tasks=1,
        logging_dir=str(work / "logs2"),
        depends=stage1,
    )
    stage2.run()
    kept = [json.loads(line) for p in sorted((work / "kept").glob("*.jsonl")) for line in p.open()]
    rejected = [json.loads(line) for p in sorted(rej.rglob("*.jsonl")) for line in p.open()]
    return kept, rejected
