"""The crawl on disk as Common Crawl ships it: WARC files of HTTP responses, and their WET text form.

A Common Crawl snapshot is ~90,000 gzipped WARC files. Each holds records: a `warcinfo` header, then per
fetched page a `response` record (WARC headers, the raw HTTP status line and headers, then the HTML as
fetched). The WET files hold the same pages as extracted plain text (`conversion` records). Here the web
part of the generated crawl is written with `warcio` (the maintained reader/writer, also behind
datatrove's `WarcReader`), books and code as JSON lines from their own sources (bytes base64-encoded: some are broken on purpose), and the generator's answer
key in a separate labels file: the pipeline reads the bytes, never the labels.

A real WARC stream also holds records a pipeline cannot use. `write_crawl(..., faults=n)` adds `n` such
records, cycling through `FAULTS`: an HTTP 404, a redirect (301, no body), a PDF, a response whose HTTP
head does not parse, and a truncated last record (a cut-off download). `read_crawl` turns each into a row
with `read_error` set, so the input stage rejects it with that reason and kept + rejected = responses.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import uuid
from dataclasses import dataclass
from pathlib import Path

from .crawl import Doc, crawl_dataset

FAULTS = ("http_404", "http_301", "not_html", "bad_http", "truncated")
_NS = uuid.UUID("6f1c2a52-8d0e-4f5e-9a53-3c2f5a0b7e11")  # record ids: uuid5 of the document id
_DATE = "2026-01-15T{:02d}:{:02d}:{:02d}Z"
_HTML = "text/html; charset=utf-8"


def record_id(doc_id: str) -> str:
    """The WARC-Record-ID of a document (deterministic, so the same crawl writes the same bytes)."""
    return f"<urn:uuid:{uuid.uuid5(_NS, doc_id)}>"


def _date(i: int) -> str:
    """A fetch time for the i-th record (one per second)."""
    return _DATE.format(i // 3600 % 24, i // 60 % 60, i % 60)


def fault_docs(n: int) -> list[Doc]:
    """`n` documents whose WARC records are faulty, cycling through FAULTS (the last one, if any, truncated)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"faults must be a non-negative int, got {n!r}")
    kinds = [FAULTS[k % (len(FAULTS) - 1)] for k in range(n - 1)] + (["truncated"] if n else [])
    body = b"<html><body><p>A page that was fetched but cannot be used.</p></body></html>"
    return [
        Doc(f"warc-fault-{k:04d}", f"https://faults.example/{k}", "web", body, "broken", f"warc:{f}", "")
        for k, f in enumerate(kinds)
    ]


def _http_head(fault: str, body: bytes) -> tuple[str, list[tuple[str, str]]]:
    """HTTP status line and headers of a response record carrying `body`."""
    if fault == "http_404":
        return "404 Not Found", [("Content-Type", _HTML), ("Content-Length", str(len(body)))]
    if fault == "http_301":
        return "301 Moved Permanently", [("Location", "https://elsewhere.example/"), ("Content-Length", "0")]
    kind = "application/pdf" if fault == "not_html" else _HTML
    return "200 OK", [("Content-Type", kind), ("Content-Length", str(len(body)))]


def _record_bytes(doc: Doc, i: int, fault: str) -> bytes:
    """One uncompressed WARC response record for `doc`, with `fault` written into it."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    body = b"" if fault == "http_301" else doc.raw
    status, headers = _http_head(fault, body)
    http = StatusAndHeaders(status, headers, protocol="HTTP/1.1")
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=False)
    mime = headers[0][1].split(";")[0] if headers[0][0] == "Content-Type" else "text/html"
    warc_headers = {"WARC-Record-ID": record_id(doc.id), "WARC-Date": _date(i)}
    warc_headers["WARC-Identified-Payload-Type"] = mime  # Common Crawl's own sniffed MIME type
    rec = writer.create_warc_record(
        doc.url, "response", payload=io.BytesIO(body), http_headers=http, warc_headers_dict=warc_headers
    )
    writer.write_record(rec)
    out = buf.getvalue()
    if fault == "bad_http":  # the same record with its status line garbled (lengths unchanged)
        out = out.replace(b"HTTP/1.1 200 OK", b"GARBAGE-NOT-OK!", 1)
    if fault == "truncated":  # the download stopped halfway through the page
        out = out[: len(out) - len(body) // 2 - 4]
    return out


@dataclass(frozen=True)
class CrawlFiles:
    """Where `write_crawl` put the crawl: WARC, books + code, labels."""

    folder: Path
    warc: Path
    sources: Path
    labels: Path


def write_crawl(docs: list[Doc], folder: str | Path, faults: int = 0) -> CrawlFiles:
    """Web documents (+ `faults` faulty records) to one gzipped WARC file, books and code to JSON lines,
    the ground truth of every record to a labels file."""
    from warcio.warcwriter import WARCWriter

    if not isinstance(docs, list) or not all(isinstance(d, Doc) for d in docs):
        raise TypeError("docs must be a list of crawl.Doc (from build_crawl)")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = CrawlFiles(folder, folder / "crawl.warc.gz", folder / "sources.jsonl", folder / "labels.jsonl")
    extra = fault_docs(faults)
    web = [d for d in docs if d.kind == "web"] + extra
    with files.warc.open("wb") as fh:  # one gzip member per record, as Common Crawl writes them
        writer = WARCWriter(fh, gzip=True)
        info = writer.create_warcinfo_record(files.warc.name, {"software": "workshop_utils.data.warc"})
        info.rec_headers.replace_header("WARC-Record-ID", record_id("warcinfo"))
        info.rec_headers.replace_header("WARC-Date", _date(0))
        writer.write_record(info)
        for i, d in enumerate(web):
            fault = d.subtype.removeprefix("warc:") if d.subtype.startswith("warc:") else ""
            fh.write(gzip.compress(_record_bytes(d, i, fault), mtime=0))
    with files.sources.open("w", encoding="utf-8") as fh:
        for d in docs:
            if d.kind != "web":
                fh.write(
                    json.dumps(
                        {
                            "id": d.id,
                            "url": d.url,
                            "kind": d.kind,
                            "raw_b64": base64.b64encode(d.raw).decode(),
                        }
                    )
                    + "\n"
                )
    with files.labels.open("w", encoding="utf-8") as fh:
        for d in docs + extra:
            meta = {k: v for k, v in d.as_record().items() if k not in ("raw", "url", "kind")}
            fh.write(json.dumps({"record_id": record_id(d.id), **meta}) + "\n")
    return files


def read_error(rec, body: bytes) -> str:
    """Why a response record cannot be a document ("" = it can)."""
    head = rec.http_headers
    if head is None or not head.protocol.startswith("HTTP/"):
        return "warc:bad_http"
    status = head.get_statuscode()
    if status != "200":
        return f"warc:http_{status}"
    declared = head.get_header("Content-Length")
    if declared is not None and declared.isdigit() and len(body) < int(declared):
        return "warc:truncated"
    kind = (head.get_header("Content-Type") or "").split(";")[0].strip()
    return "" if kind == "text/html" else "warc:not_html"


@dataclass(frozen=True)
class ReadReport:
    """What the reader saw: records by type, and the responses it could not use (by reason)."""

    records: int
    warcinfo: int
    responses: int
    unusable: dict[str, int]
    sources: int


def iter_responses(path: str | Path):
    """(record id, URL, body bytes, read error) of every response record of a WARC file, via warcio."""
    from warcio.archiveiterator import ArchiveIterator

    with Path(path).open("rb") as fh:
        for rec in ArchiveIterator(fh):
            if rec.rec_type != "response":
                yield rec.rec_type, None
                continue
            body = rec.content_stream().read()
            rid = rec.rec_headers.get_header("WARC-Record-ID")
            url = rec.rec_headers.get_header("WARC-Target-URI")
            yield "response", (rid, url, body, read_error(rec, body))


def _labelled(doc_id: str, url: str, kind: str, raw: bytes, meta: dict) -> Doc:
    """A document read back, with its ground truth from the labels file."""
    fields = ("truth", "subtype", "lang", "dup_of", "pii_types", "pii_values")
    return Doc(doc_id, url, kind, raw, *(meta[f] for f in fields))


def read_crawl(files: CrawlFiles | str | Path):
    """The crawl back as a `datasets.Dataset` (columns of `crawl.crawl_dataset` + `read_error`), read
    from the WARC file with warcio and from the sources file; ground truth joined from the labels."""

    folder = files.folder if isinstance(files, CrawlFiles) else Path(files)
    labels = {}
    for line in (folder / "labels.jsonl").open(encoding="utf-8"):
        row = json.loads(line)
        labels[row.pop("record_id")] = row
    docs, errors, types = [], [], {"warcinfo": 0, "response": 0}
    for rtype, rec in iter_responses(folder / "crawl.warc.gz"):
        types[rtype] = types.get(rtype, 0) + 1
        if rec is None:
            continue
        rid, url, body, error = rec
        meta = labels[rid]
        docs.append(_labelled(meta["id"], url, "web", b"" if error else body, meta))
        errors.append(error)
    n_web = len(docs)
    for line in (folder / "sources.jsonl").open(encoding="utf-8"):
        row = json.loads(line)
        meta = labels[record_id(row["id"])]
        docs.append(_labelled(row["id"], row["url"], row["kind"], base64.b64decode(row["raw_b64"]), meta))
        errors.append("")
    order = sorted(range(len(docs)), key=lambda k: docs[k].id)  # crawl order (ids are positions)
    ds = crawl_dataset([docs[k] for k in order]).add_column("read_error", [errors[k] for k in order])
    unusable: dict[str, int] = {}
    for e in errors:
        if e:
            unusable[e] = unusable.get(e, 0) + 1
    report = ReadReport(
        sum(types.values()), types["warcinfo"], types["response"], unusable, len(docs) - n_web
    )
    return ds, report


def write_wet(files: CrawlFiles, max_pages: int | None = None) -> Path:
    """The WET form of the WARC file: one `conversion` record of extracted plain text per usable HTML
    response, for the first `max_pages` of them (None: all). Common Crawl extracts with its own tool;
    ours is the pipeline's decode + trafilatura, so a WET file costs a full extraction pass."""
    from warcio.warcwriter import WARCWriter

    from .extract import decode, extract

    if max_pages is not None and (not isinstance(max_pages, int) or max_pages < 1):
        raise ValueError(f"max_pages must be a positive int or None, got {max_pages!r}")
    path = files.folder / "crawl.warc.wet.gz"
    written = 0
    with path.open("wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for i, (_, rec) in enumerate(iter_responses(files.warc)):
            if max_pages is not None and written >= max_pages:
                break
            if rec is None or rec[3]:
                continue
            rid, url, body, _ = rec
            text = decode(body).text
            main = extract(text, "web").text if text else ""
            if not main:
                continue
            headers = {
                "WARC-Record-ID": f"<urn:uuid:{uuid.uuid5(_NS, 'wet' + rid)}>",
                "WARC-Refers-To": rid,
                "WARC-Date": _date(i),
            }
            out = writer.create_warc_record(
                url,
                "conversion",
                payload=io.BytesIO(main.encode()),
                warc_content_type="text/plain",
                warc_headers_dict=headers,
            )
            writer.write_record(out)
            written += 1
    return path


def first_record(path: str | Path, rec_type: str = "response", max_bytes: int = 600) -> str:
    """The head of the first `rec_type` record of a WARC/WET file as text, to look at."""
    from warcio.archiveiterator import ArchiveIterator

    with Path(path).open("rb") as fh:
        for rec in ArchiveIterator(fh):
            if rec.rec_type == rec_type:
                head = rec.rec_headers.to_str()
                http = rec.http_headers.to_str() if rec.http_headers else ""
                return (head + "\n" + http + "\n" + rec.content_stream().read().decode("utf-8", "replace"))[
                    :max_bytes
                ]
    raise ValueError(f"no {rec_type!r} record in {path}")
