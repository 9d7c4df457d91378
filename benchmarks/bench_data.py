"""Module 02 cleaning throughput: our pipeline vs the same stages as datatrove blocks, and our MinHash + LSH
vs datasketch's MinHashLSH, each pair measured in the same run on the same documents.

    .venv/bin/python benchmarks/bench_data.py --profile cpu     # writes benchmarks/results/data_cpu.{json,md}

1. Builds the profile's crawl and runs the whole pipeline (`run_pipeline`, `num_proc` of the profile):
   documents/s per stage (documents entering the stage / stage seconds) and for the whole pipeline.
2. Runs the same crawl through `datatrove_blocks.run_datatrove` (datatrove's LocalPipelineExecutor, as many
   workers as our `num_proc`): the kept set, kept texts and rejection reasons must be identical; the
   throughput ratio is datatrove's seconds / ours. The two alternate `--pipeline-repeats` times (best of each).
3. On the documents that reach near-dedup: our `minhash_near_dedup` vs datasketch (`MinHash` with
   `update_batch`, `MinHashLSH(params=(14, 8))`, then the same true-Jaccard confirmation), both with 112
   permutations over word 5-grams, alternating, best of `--repeats`. Recall is measured on the labelled
   near-duplicates of the generator.
The 1-minute load average is recorded before and after every measurement: on a shared machine the
absolute numbers move with it, the ratios much less.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.timing import best_time, write_results  # noqa: E402
from workshop_utils.config import PROFILE_NAMES, get_profile  # noqa: E402
from workshop_utils.data.crawl import build_crawl, crawl_dataset  # noqa: E402
from workshop_utils.data.dedup import jaccard, minhash_near_dedup, shingles  # noqa: E402
from workshop_utils.data.pipeline import STAGES, PipelineConfig, run_pipeline  # noqa: E402
from workshop_utils.data.stages import decode_batch, extract_batch, quality_batch  # noqa: E402
from workshop_utils.data.warc import FAULTS, read_crawl, write_crawl  # noqa: E402


def datasketch_near_dedup(
    texts: list[str], num_perm: int, bands: int, ngrams: int, threshold: float
) -> list[int]:
    """The same near-dedup with datasketch: index[i] of the kept duplicate, -1 when kept."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(num_perm=num_perm, params=(bands, num_perm // bands))
    sets = [shingles(t, ngrams) for t in texts]
    parent = list(range(len(texts)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, s in enumerate(sets):
        m = MinHash(num_perm=num_perm, seed=1)
        m.update_batch([x.encode() for x in s])
        for j in lsh.query(m):
            if jaccard(s, sets[j]) >= threshold:
                ri, rj = find(i), find(j)
                if ri != rj:
                    parent[max(ri, rj)] = min(ri, rj)
        lsh.insert(i, m)
    roots = [find(i) for i in range(len(texts))]
    return [r if r != i else -1 for i, r in enumerate(roots)]


def load() -> float:
    """The 1-minute load average now."""
    return round(os.getloadavg()[0], 2)


def run_ours(docs: list, cfg: PipelineConfig) -> dict:
    """Our pipeline once: wall seconds (from the list of documents), stage seconds, the result."""
    before = load()
    t0 = time.perf_counter()
    res = run_pipeline(crawl_dataset(docs), cfg)
    return {"seconds": time.perf_counter() - t0, "result": res, "load": [before, load()]}


def run_theirs(docs: list, cfg: PipelineConfig) -> dict:
    """The datatrove blocks once on the same documents (input JSONL written and kept JSONL read included)."""
    from workshop_utils.data.datatrove_blocks import run_datatrove

    before = load()
    with tempfile.TemporaryDirectory(prefix="bench_datatrove_") as work:
        t0 = time.perf_counter()
        kept, rejected = run_datatrove(docs, work, workers=cfg.num_proc, config=cfg)
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "kept": kept, "rejected": rejected, "load": [before, load()]}


def same_work(res, kept: list[dict], rejected: list[dict]) -> dict[str, bool]:
    """Whether datatrove kept the same documents with the same texts and rejected the rest for the same reasons."""
    ours_text = dict(zip(res.kept["id"], res.kept["text"]))
    ours_reason = {
        i: f"{s}:{r}" for i, s, r in zip(res.rejects["id"], res.rejects["stage"], res.rejects["reason"])
    }
    return {
        "same_kept_ids": {r["id"] for r in kept} == set(ours_text),
        "same_kept_texts": all(ours_text.get(r["id"]) == r["text"] for r in kept),
        "same_rejection_reasons": {r["id"]: r["metadata"]["filter_reason"] for r in rejected} == ours_reason,
    }


def near_dedup_texts(docs: list, res) -> tuple[list[str], list[bool]]:
    """The texts that reached near-dedup (crawl order) and whether each is a labelled duplicate."""
    by_id = {d.id: d for d in docs}
    rejected = res.rejects.loc[res.rejects.stage == "near_dedup", "id"]
    ids = sorted(set(res.kept["id"]) | set(rejected))
    text_of = dict(zip(res.kept["id"], res.kept["text_before_pii"]))
    redo = [by_id[i] for i in ids if i not in text_of]  # removed there: rebuild their text through the stages
    texts, _ = decode_batch([d.raw for d in redo])
    texts, _ = extract_batch(texts, [d.kind for d in redo])
    texts, _ = quality_batch(texts, [d.kind for d in redo])
    text_of |= {d.id: t for d, t in zip(redo, texts)}
    return [text_of[i] for i in ids], [by_id[i].truth == "duplicate" for i in ids]


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark for one profile and write the results files."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="cpu", choices=PROFILE_NAMES)
    parser.add_argument("--repeats", type=int, default=3, help="MinHash runs per implementation (best of)")
    parser.add_argument("--pipeline-repeats", type=int, default=3, help="pipeline runs per implementation")
    parser.add_argument("--no-datatrove", action="store_true", help="skip the datatrove comparison")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    load_start = load()

    t0 = time.perf_counter()
    docs = build_crawl(profile.crawl.n_docs, seed=0)
    build_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(
        prefix="bench_warc_"
    ) as work:  # the crawl on disk, as notebook 02 reads it
        t0 = time.perf_counter()
        files = write_crawl(docs, work, faults=max(len(FAULTS), len(docs) // 200))
        warc_write_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        read_crawl(files)
        warc_read_s = time.perf_counter() - t0
    cfg = PipelineConfig(num_proc=profile.crawl.num_proc)
    ours_runs, theirs_runs = [], []
    for _ in range(args.pipeline_repeats):
        ours_runs.append(run_ours(docs, cfg))
        if not args.no_datatrove:
            theirs_runs.append(run_theirs(docs, cfg))
    best = min(ours_runs, key=lambda r: r["seconds"])
    res, total_s = best["result"], best["seconds"]
    docs_in = dict(zip(STAGES, res.waterfall["docs"].iloc[:-2].tolist()))  # documents entering each stage
    docs_in |= {"arrow_io": len(docs), "pii": len(res.kept)}
    stages = {
        s: {"docs_in": int(docs_in[s]), "seconds": sec, "docs_per_s": docs_in[s] / sec if sec else None}
        for s, sec in res.seconds.items()
    }
    datatrove = None
    if theirs_runs:
        fastest = min(theirs_runs, key=lambda r: r["seconds"])
        datatrove = {
            "workers": cfg.num_proc,
            "seconds": fastest["seconds"],
            "docs_per_s": len(docs) / fastest["seconds"],
            "runs_seconds": [r["seconds"] for r in theirs_runs],
            "runs_load_1min": [r["load"] for r in theirs_runs],
            **same_work(res, fastest["kept"], fastest["rejected"]),
            "throughput_ratio_ours_over_datatrove": fastest["seconds"] / total_s,
        }

    texts, labelled = near_dedup_texts(docs, res)
    n_hash, bands, ngrams, thr = cfg.num_hashes, cfg.num_bands, cfg.ngrams, cfg.jaccard_threshold
    load_mh = load()
    ours_s, ours, ds_s, theirs = float("inf"), None, float("inf"), None
    for _ in range(args.repeats):  # alternate, so a change of load hits both
        sec, ours = best_time(lambda: minhash_near_dedup(texts, n_hash, bands, ngrams, thr).duplicate_of, 1)
        ours_s = min(ours_s, sec)
        sec, theirs = best_time(lambda: datasketch_near_dedup(texts, n_hash, bands, ngrams, thr), 1)
        ds_s = min(ds_s, sec)

    def recall(dup_of: list[int]) -> float:
        hits = sum(1 for flag, d in zip(labelled, dup_of) if flag and d >= 0)
        return hits / max(sum(labelled), 1)

    out = {
        "benchmark": "data",
        "profile": profile.name,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}",
        "load_average_1min": {"start": load_start, "end": load()},
        "note": "shared machine during development: absolute timings move with the load, each ratio was measured in one run",
        "n_docs": len(docs),
        "num_proc": cfg.num_proc,
        "crawl_build_seconds": build_s,
        "warc_write_seconds": warc_write_s,
        "warc_read_seconds": warc_read_s,
        "pipeline_seconds": total_s,
        "pipeline_docs_per_s": len(docs) / total_s,
        "pipeline_runs_seconds": [r["seconds"] for r in ours_runs],
        "pipeline_runs_load_1min": [r["load"] for r in ours_runs],
        "removed_fraction": res.removed_fraction,
        "stages": stages,
        "datatrove": datatrove,
        "minhash": {
            "docs": len(texts),
            "labelled_duplicates": int(sum(labelled)),
            "settings": {
                "num_hashes": n_hash,
                "bands": bands,
                "rows": n_hash // bands,
                "ngrams": ngrams,
                "jaccard": thr,
            },
            "load_1min": [load_mh, load()],
            "ours_seconds": ours_s,
            "datasketch_seconds": ds_s,
            "ours_docs_per_s": len(texts) / ours_s,
            "datasketch_docs_per_s": len(texts) / ds_s,
            "throughput_ratio_ours_over_datasketch": ds_s / ours_s,
            "ours_recall": recall(ours),
            "datasketch_recall": recall(theirs),
            "same_kept_set": [d < 0 for d in ours] == [d < 0 for d in theirs],
        },
    }
    write_results(args.out, f"data_{profile.name}", out, report_lines(out, args))
    return out


def report_lines(out: dict, args) -> list[str]:
    """The Markdown summary of a report."""
    m, d, la = out["minhash"], out["datatrove"], out["load_average_1min"]
    lines = [
        f"# Data pipeline benchmark ({out['profile']})",
        "",
        f"{out['date']} · {out['machine']} · 1-min load average {la['start']:.1f} at the start, "
        f"{la['end']:.1f} at the end · {out['note']}",
        "",
        f"Crawl {out['n_docs']:,} docs built in {out['crawl_build_seconds']:.1f} s, written as WARC + sources in "
        f"{out['warc_write_seconds']:.1f} s and read back (warcio) in {out['warc_read_seconds']:.1f} s; whole pipeline (num_proc="
        f"{out['num_proc']}, best of {args.pipeline_repeats}: {', '.join(f'{s:.1f}' for s in out['pipeline_runs_seconds'])} s "
        f"at load {out['pipeline_runs_load_1min']}) {out['pipeline_seconds']:.1f} s = "
        f"**{out['pipeline_docs_per_s']:.0f} docs/s**; {100 * out['removed_fraction']:.1f} % removed.",
        "",
        "| stage | docs in | seconds | docs/s |",
        "|---|---|---|---|",
        *[
            f"| {s} | {v['docs_in']:,} | {v['seconds']:.2f} | {v['docs_per_s'] or 0:.0f} |"
            for s, v in out["stages"].items()
        ],
        "",
        "input, url_filter, extract, langid, quality run in one `datasets.map` pass: each one's seconds are its time in the "
        "workers / num_proc; arrow_io is the rest of that pass (crawl into the workers, Arrow output back).",
        "",
    ]
    if d:
        lines += [
            f"The same stages as datatrove blocks (LocalPipelineExecutor, {d['workers']} workers; runs "
            f"{', '.join(f'{s:.1f}' for s in d['runs_seconds'])} s at load {d['runs_load_1min']}): best "
            f"{d['seconds']:.1f} s = {d['docs_per_s']:.0f} docs/s. Same kept ids: {d['same_kept_ids']}, same kept "
            f"texts: {d['same_kept_texts']}, same rejection reasons: {d['same_rejection_reasons']}. "
            f"Throughput ratio ours / datatrove: **{d['throughput_ratio_ours_over_datatrove']:.2f}x**.",
            "",
        ]
    lines += [
        f"MinHash + LSH on the {m['docs']:,} documents that reach near-dedup ({m['labelled_duplicates']} labelled "
        f"duplicates; 112 hashes = 14 x 8, word 5-grams, Jaccard >= 0.8; load {m['load_1min']}):",
        "",
        f"| implementation | seconds (best of {args.repeats}) | docs/s | recall |",
        "|---|---|---|---|",
        f"| ours (numpy) | {m['ours_seconds']:.2f} | {m['ours_docs_per_s']:.0f} | {m['ours_recall']:.3f} |",
        f"| datasketch MinHashLSH | {m['datasketch_seconds']:.2f} | {m['datasketch_docs_per_s']:.0f} | {m['datasketch_recall']:.3f} |",
        "",
        f"Throughput ratio ours / datasketch: **{m['throughput_ratio_ours_over_datasketch']:.2f}x**; "
        f"same kept set: {m['same_kept_set']}.",
    ]
    return lines


if __name__ == "__main__":
    main()
