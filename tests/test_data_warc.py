"""The crawl as WARC files: written and read back exactly, faulty records accounted for, datatrove reads it."""

from __future__ import annotations

from collections import Counter

import pytest

from workshop_utils.data import warc
from workshop_utils.data.crawl import build_crawl, crawl_dataset
from workshop_utils.data.pipeline import run_pipeline


@pytest.fixture(scope="module")
def docs():
    return build_crawl(300, seed=3)


@pytest.fixture(scope="module")
def files(docs, tmp_path_factory):
    return warc.write_crawl(docs, tmp_path_factory.mktemp("warc"), faults=len(warc.FAULTS) * 2)


def test_read_back_is_the_crawl_byte_for_byte(docs, files):
    ds, report = warc.read_crawl(files)
    mine = ds.filter(lambda r: not r["id"].startswith("warc-fault")).remove_columns("read_error")
    assert mine.to_dict() == crawl_dataset(docs).to_dict()
    n_web = sum(d.kind == "web" for d in docs)
    assert report.responses == n_web + 2 * len(warc.FAULTS) and report.warcinfo == 1
    assert report.records == report.responses + 1 and report.sources == len(docs) - n_web


def test_writing_twice_gives_the_same_bytes(docs, files, tmp_path):
    again = warc.write_crawl(docs, tmp_path, faults=len(warc.FAULTS) * 2)
    assert again.warc.read_bytes() == files.warc.read_bytes()
    assert again.labels.read_bytes() == files.labels.read_bytes()


def test_each_fault_is_read_as_its_reason(files):
    ds, report = warc.read_crawl(files)
    faults = ds.filter(lambda r: r["id"].startswith("warc-fault"))
    assert list(faults["read_error"]) == [d.subtype for d in warc.fault_docs(2 * len(warc.FAULTS))]
    assert set(faults["read_error"]) == {f"warc:{f}" for f in warc.FAULTS}
    assert report.unusable == dict(Counter(faults["read_error"]))
    assert set(ds.filter(lambda r: not r["id"].startswith("warc-fault"))["read_error"]) == {""}


def test_the_pipeline_rejects_faulty_records_at_input_and_accounts_for_every_record(files):
    ds, _ = warc.read_crawl(files)
    res = run_pipeline(ds)
    assert len(res.kept) + len(res.rejects) == len(ds)
    faults = res.rejects[res.rejects["id"].str.startswith("warc-fault")]
    assert len(faults) == 2 * len(warc.FAULTS) and set(faults["stage"]) == {"input"}
    assert (faults["reason"] == faults["subtype"]).all()


def test_wet_has_the_extracted_text_of_usable_pages(files):
    from warcio.archiveiterator import ArchiveIterator

    wet = warc.write_wet(files)
    refs = {}
    with wet.open("rb") as fh:
        for rec in ArchiveIterator(fh):
            assert rec.rec_type == "conversion"
            refs[rec.rec_headers.get_header("WARC-Refers-To")] = rec.content_stream().read().decode()
    usable = {rec[0] for t, rec in warc.iter_responses(files.warc) if rec and not rec[3]}
    assert refs and set(refs) <= usable and all(refs.values())
    assert "conversion" in warc.first_record(wet, "conversion")


def test_datatrove_warc_reader_reads_the_same_pages_but_checks_less(docs, files):
    """datatrove's WarcReader skips empty pages and non-HTML payload types, but not HTTP errors or cut-off
    downloads: our reader rejects those at input; every other difference is a page our input stage drops."""
    pytest.importorskip("datatrove")
    pytest.importorskip("magic")
    from datatrove.pipeline.readers import WarcReader

    ours = Counter(rec[1] for _, rec in warc.iter_responses(files.warc) if rec and not rec[3])
    theirs = Counter(
        d.metadata["url"] for d in WarcReader(str(files.folder), glob_pattern="crawl.warc.gz").run()
    )
    broken = {d.url for d in docs if d.truth == "broken"}
    unchecked = {f.url for f in warc.fault_docs(2 * len(warc.FAULTS)) if f.subtype != "warc:not_html"}
    assert set(ours - theirs) <= broken and set(theirs - ours) <= unchecked
    assert sum((ours & theirs).values()) > 0.9 * sum(ours.values())


def test_bad_input_is_refused(tmp_path):
    with pytest.raises(ValueError, match="faults"):
        warc.fault_docs(-1)
    with pytest.raises(TypeError, match="docs"):
        warc.write_crawl(["not a doc"], tmp_path)
    with pytest.raises(ValueError, match="no 'conversion' record"):
        warc.first_record(warc.write_crawl([], tmp_path / "e").warc, "conversion")
