"""Module 02 pipeline throughput, and our MinHash + LSH vs datasketch's MinHashLSH on the same documents.

    .venv/bin/python benchmarks/bench_data.py --profile cpu     # writes benchmarks/results/data_cpu.{json,md}

1. Builds the profile's crawl, runs the whole pipeline once and reports documents/s per stage (documents
   entering the stage / stage seconds) and for the whole pipeline.
2. On the documents that reach near-dedup: our `minhash_near_dedup` vs datasketch (`MinHash` with
   `update_batch`, `MinHashLSH(params=(14, 8))`, then the same true-Jaccard confirmation), both with
   112 permutations over word 5-grams, best of `--repeats`, in the same run. Recall is measured on the
   generator's labelled near-duplicates; the goal is >= 1.0x datasketch's throughput at equal recall.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.timing import best_time, write_results  # noqa: E402
from workshop_utils.config import PROFILE_NAMES, get_profile  # noqa: E402
from workshop_utils.data.crawl import build_crawl, crawl_dataset  # noqa: E402
from workshop_utils.data.dedup import jaccard, minhash_near_dedup, shingles  # noqa: E402
from workshop_utils.data.pipeline import STAGES, PipelineConfig, run_pipeline  # noqa: E402


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


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark for one profile and write the results files."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="cpu", choices=PROFILE_NAMES)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)

    t0 = time.perf_counter()
    docs = build_crawl(profile.crawl.n_docs, seed=0)
    build_s = time.perf_counter() - t0
    cfg = PipelineConfig(num_proc=profile.crawl.num_proc)
    t0 = time.perf_counter()
    res = run_pipeline(crawl_dataset(docs), cfg)
    total_s = time.perf_counter() - t0
    docs_in = dict(zip(STAGES, res.waterfall["docs"].iloc[:-2].tolist()))  # documents entering each stage
    docs_in["pii"] = len(res.kept)
    stages = {
        s: {"docs_in": int(docs_in[s]), "seconds": res.seconds[s], "docs_per_s": docs_in[s] / res.seconds[s]}
        for s in res.seconds
    }

    # Same documents for both near-dedup implementations: what reached the near-dedup stage.
    by_id = {d.id: d for d in docs}
    near_ids = sorted(set(res.kept["id"]) | set(res.rejects.loc[res.rejects.stage == "near_dedup", "id"]))
    text_of = dict(zip(res.kept["id"], res.kept["text_before_pii"]))
    # rejected-at-near-dedup texts are the extracted, C4-filtered texts: rebuild them through the stages
    from workshop_utils.data.pipeline import extract_stage, input_stage, quality_map

    texts = []
    for i in near_ids:
        if i in text_of:
            texts.append(text_of[i])
        else:
            d = by_id[i]
            row = {"text": input_stage({"raw": d.raw})["text"], "kind": d.kind}
            row["text"] = extract_stage(row)["text"]
            texts.append(quality_map(row)["text"])
    labelled = [by_id[i].truth == "duplicate" for i in near_ids]
    n_hash, bands, ngrams, thr = cfg.num_hashes, cfg.num_bands, cfg.ngrams, cfg.jaccard_threshold
    ours_s, ours = best_time(
        lambda: minhash_near_dedup(texts, n_hash, bands, ngrams, thr).duplicate_of, args.repeats
    )
    ds_s, theirs = best_time(lambda: datasketch_near_dedup(texts, n_hash, bands, ngrams, thr), args.repeats)

    def recall(dup_of: list[int]) -> float:
        hits = sum(1 for flag, d in zip(labelled, dup_of) if flag and d >= 0)
        return hits / max(sum(labelled), 1)

    out = {
        "benchmark": "data",
        "profile": profile.name,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}",
        "load_average_1min": os.getloadavg()[0],
        "note": "shared machine during development: absolute timings are noisy, the ratio was measured in one run",
        "n_docs": len(docs),
        "crawl_build_seconds": build_s,
        "pipeline_seconds": total_s,
        "pipeline_docs_per_s": len(docs) / total_s,
        "removed_fraction": res.removed_fraction,
        "stages": stages,
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
    m = out["minhash"]
    lines = [
        f"# Data pipeline benchmark ({profile.name})",
        "",
        f"{out['date']} · {out['machine']} · 1-min load average {out['load_average_1min']:.1f} · {out['note']}",
        "",
        f"Crawl {len(docs):,} docs built in {build_s:.1f} s; whole pipeline {total_s:.1f} s = "
        f"{out['pipeline_docs_per_s']:.0f} docs/s; {100 * res.removed_fraction:.1f} % removed.",
        "",
        "| stage | docs in | seconds | docs/s |",
        "|---|---|---|---|",
        *[
            f"| {s} | {v['docs_in']:,} | {v['seconds']:.2f} | {v['docs_per_s']:.0f} |"
            for s, v in stages.items()
        ],
        "",
        f"MinHash + LSH on the {m['docs']:,} documents that reach near-dedup ({m['labelled_duplicates']} labelled "
        f"duplicates; 112 hashes = 14 x 8, word 5-grams, Jaccard >= 0.8):",
        "",
        f"| implementation | seconds (best of {args.repeats}) | docs/s | recall |",
        "|---|---|---|---|",
        f"| ours (numpy) | {m['ours_seconds']:.2f} | {m['ours_docs_per_s']:.0f} | {m['ours_recall']:.3f} |",
        f"| datasketch MinHashLSH | {m['datasketch_seconds']:.2f} | {m['datasketch_docs_per_s']:.0f} | {m['datasketch_recall']:.3f} |",
        "",
        f"Throughput ratio ours / datasketch: **{m['throughput_ratio_ours_over_datasketch']:.2f}x**; "
        f"same kept set: {m['same_kept_set']}.",
    ]
    write_results(args.out, f"data_{profile.name}", out, lines)
    return out


if __name__ == "__main__":
    main()
