"""Deck 02 · Pre-training data: the crawl as WARC, the cleaning stages, the MinHash S-curve, the mixture, the cost."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from workshop_utils.data import books as B
from workshop_utils.data import cleaning_cost, mixture
from workshop_utils.data.dedup import s_curve
from workshop_utils.data.pii import mask_pii
from workshop_utils.data.pipeline import PUBLISHED, STAGES, PipelineConfig

# The instructor's plan, not a measurement: minutes per part of the notebook, and the question to ask the room
# before running that part's checkpoint.
PLAN = {  # key: (minutes, question before the checkpoint)
    "crawl": (5, "Which share of a raw crawl do you expect to survive cleaning?"),
    "collect": (7, "A page not found, a PDF, a GPL file: which of them should a pipeline keep?"),
    "recipe": (8, "Language ID first or quality filters first: which order saves more compute?"),
    "minhash": (6, "At Jaccard {s_low}, how often will two pages become a candidate pair?"),
    "pii": (4, "Would you drop a page with an e-mail address in it, or mask it?"),
    "mixture": (6, "Why would anyone read Wikipedia twice and GitHub only in part?"),
    "cost": (5, "How many machines would you book to clean one snapshot in a day?"),
    "recap": (4, "Which number of this module would you quote to your team?"),
}


def _notes(d, key: str, remark: str) -> str:
    """Speaker notes: the planned minutes, the question to ask before the checkpoint, the remark."""
    minutes, question = PLAN[key]
    ask = "Recap, then ask" if key == "recap" else "Ask before the checkpoint"
    return f"{d.value(f'min_{key}', minutes, '{} min')}. {ask}: {question} {remark}".strip()


def build(d) -> None:
    """Slides of module 02."""
    cfg = PipelineConfig()
    rows = cfg.num_hashes // cfg.num_bands
    d.slide(
        "From a crawl to training text",
        [
            " -> ".join(STAGES),
            "each stage is scored against the generator's ground truth (precision, recall)",
        ],
        _notes(
            d,
            "crawl",
            "The mini crawl ships with labels: broken, non-English, low quality, licence, duplicate, keep. "
            "Its web part is read from gzipped WARC files, as Common Crawl ships them.",
        ),
    )
    rule = d.value("book_rule", 100 * B.rule_overlap(), "{:.0f} %")
    d.slide(
        "Collection as the big pipelines do it",
        [
            "web: WARC response records (HTTP head + HTML), read with warcio; unusable records rejected with a reason",
            "a URL filter first: block-listed domains and spam words, before any parsing (datatrove's URLFilter)",
            f"books: Gutenberg boilerplate cut at its markers; a book sharing {rule} of its content with another goes",
            "code: Apache, BSD or MIT only (LLaMA), generated and minified files out (BigCode), near dedup at The Stack's setting",
        ],
        _notes(
            d,
            "collect",
            "Every rule is a reason in the rejects table: kept + rejected = every record read.",
        ),
    )
    lang = d.value("lang_threshold", cfg.lang_threshold, "{:.2f}")
    overall = d.value("refinedweb_removed", PUBLISHED["overall"][1], "{:.0f} %")
    d.slide(
        "The published recipe",
        [
            f"language ID: drop a document whose top language scores below {lang} (RefinedWeb, FineWeb)",
            "quality: Gopher and C4 rules (word counts, symbol ratios, repetition, stop words)",
            "exact then near-duplicate removal (MinHash LSH), PII masked",
            f"RefinedWeb: nearly {overall} of the documents removed",
        ],
        _notes(
            d,
            "recipe",
            "Only the overall RefinedWeb figure is verified; the per-stage shares are from a figure, so we show one.",
        ),
    )
    bands = d.value("bands", cfg.num_bands)
    r = d.value("rows", rows)
    hashes = d.value("hashes", cfg.num_hashes)
    thr = d.value("jaccard", cfg.jaccard_threshold, "{:.1f}")
    p_thr = d.value("p_at_thr", float(s_curve(cfg.jaccard_threshold, cfg.num_bands, rows)), "{:.3f}")
    lo = cfg.jaccard_threshold - 0.2
    d.value("s_low", lo, "{:.1f}")
    d.value("p_low", float(s_curve(lo, cfg.num_bands, rows)), "{:.3f}")
    s = np.linspace(0, 1, 201)
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.plot(s, s_curve(s, cfg.num_bands, rows), label=f"{cfg.num_bands} bands x {rows} rows")
    ax.axvline(cfg.jaccard_threshold, color="grey", ls=":")
    ax.set_xlabel("Jaccard similarity of two documents")
    ax.set_ylabel("P(candidate pair)")
    ax.legend()
    d.slide(
        "MinHash LSH: the S-curve",
        [
            f"{hashes} hashes = {bands} bands x {r} rows (FineWeb's setting)",
            f"pairs at Jaccard {thr} become candidates with probability {p_thr}",
            "pairs at Jaccard {s_low}: only {p_low}",
        ],
        _notes(
            d,
            "minhash",
            "Candidate probability is `1 - (1 - s**r)**b`. The notebook measures the rate on real pairs and compares.",
        ),
        figure=fig,
    )
    example = "Mail jane.doe@example.org or call +44 20 7946 0958; db at 203.0.113.7"
    masked, counts = mask_pii(example)
    before, after = d.value("pii_before", example), d.value("pii_after", masked)
    found = d.value("pii_example_found", sum(counts.values()))
    d.slide(
        "PII: mask, do not drop",
        [
            "in order: keys, e-mails, IPs, phones; each a regular expression proposing and a validator deciding",
            f"'{before}' becomes '{after}'",
            f"{found} values found; the document stays in the corpus",
        ],
        _notes(
            d,
            "pii",
            "Precision matters as much as recall: a masked version number or date is damage too. "
            "The notebook scores both against the injected values.",
        ),
    )
    table1 = mixture.llama_table1()
    wiki = d.value("wiki_epochs", float(table1.loc["Wikipedia", "epochs"]), "{:.2f}")
    books = d.value("books_epochs", float(table1.loc["Books", "epochs"]), "{:.2f}")
    github = d.value("github_epochs", float(table1.loc["Github", "epochs"]), "{:.2f}")
    cc_bpt = d.value("cc_bytes_per_token", float(table1.loc["CommonCrawl", "bytes_per_token"]), "{:.1f}")
    d.slide(
        "The mixture: LLaMA's published mix, recomputed",
        [
            f"Wikipedia seen {wiki} times, Books {books}, GitHub only {github} of its subset",
            "small high-quality sources are repeated rather than drowned by the web's bulk",
            f"disk size / unique tokens: about {cc_bpt} bytes per token for CommonCrawl",
        ],
        _notes(
            d,
            "mixture",
            "Sampled tokens = proportion x training tokens; unique = sampled / epochs (LLaMA-1's published table). The notebook samples our own mix the same way.",
        ),
    )
    kept = cleaning_cost.Input.assumption(1000.0, "a kept web page of about a thousand tokens")
    cost = cleaning_cost.snapshot_cost(kept)
    docs = d.value("snapshot_docs", cost.docs_per_snapshot / 1e9, "{:.1f}")
    hours = d.value("snapshot_core_hours", cost.core_hours, "{:,.0f}")
    wall = d.value("snapshot_wall_h", cost.wall_hours(cost.cores_per_machine.value), "{:.0f}")
    cores = d.value("snapshot_cores", cost.cores_per_machine.value, "{:.0f}")
    d.slide(
        "What one Common Crawl snapshot costs to clean",
        [
            f"FineWeb's tokens per snapshot, a kept page of a thousand tokens, RefinedWeb's kept share: {docs} billion documents",
            f"at our measured docs/s per core: {hours} core-hours, {wall} h on one {cores}-core machine",
            "datatrove's Slurm executor spreads the same blocks over an array job (config built and validated, not run)",
        ],
        _notes(
            d,
            "cost",
            "Published inputs, measured rates and the one assumption (page size) are labelled in the notebook's table.",
        ),
    )
    d.run_table_slide(_notes(d, "recap", "Then the exercises."))
