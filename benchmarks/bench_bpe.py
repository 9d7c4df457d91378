"""From-scratch BPE trainer (`workshop_utils.bpe`) vs Hugging Face `tokenizers` on the same corpus slice.

    .venv/bin/python benchmarks/bench_bpe.py --profile ci           # writes benchmarks/results/bpe_ci.{json,md}

Same text (`profile.bpe.train_chars` of the course training split), same vocabulary size and special
tokens. Reports training time (best of `--repeats`), encoding time and bytes/token on the validation
split, and whether the merges are identical (with the library's tie rule) or where they first differ.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.timing import best_time, machine, write_results  # noqa: E402
from workshop_utils.bpe import Tokenizer, first_difference, train_bpe, train_hf_bpe  # noqa: E402
from workshop_utils.config import PROFILE_NAMES, get_profile  # noqa: E402
from workshop_utils.corpus import load_corpus  # noqa: E402
from workshop_utils.tokenizer import SPECIAL_TOKENS, train_course_tokenizer  # noqa: E402
from workshop_utils.training import encode_text  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    """Run the comparison for one profile and write the results files."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="ci", choices=PROFILE_NAMES)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    corpus = load_corpus(get_profile("cpu"))  # the whole corpus; the BPE slice is profile.bpe.train_chars
    text, vocab_size = corpus.train[: profile.bpe.train_chars], profile.bpe.vocab_size
    val = corpus.val
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "slice.txt"
        path.write_text(text, encoding="utf-8")
        ours_s, (vocab, merges) = best_time(lambda: train_bpe(path, vocab_size, SPECIAL_TOKENS), args.repeats)
        hf_rule = train_bpe(path, vocab_size, SPECIAL_TOKENS, tie_break="hf")[1]
    hf_s, hf_merges = best_time(lambda: train_hf_bpe(text, vocab_size, SPECIAL_TOKENS), args.repeats)
    course_s, course_tok = best_time(lambda: train_course_tokenizer(text, vocab_size), args.repeats)
    ours_tok = Tokenizer(vocab, merges, SPECIAL_TOKENS)
    ours_enc_s, ours_ids = best_time(lambda: ours_tok.encode(val), 1)
    hf_enc_s, hf_ids = best_time(lambda: encode_text(course_tok, val), 1)
    n_bytes = len(val.encode("utf-8"))
    report = {
        "benchmark": "BPE training: from scratch (Python) vs HF tokenizers (Rust)",
        "profile": args.profile,
        "train_chars": len(text),
        "vocab_size": vocab_size,
        "machine": machine(),
        "train_seconds": {"ours": ours_s, "hf_tokenizers": hf_s, "course_tokenizer": course_s},
        "slowdown_ours_vs_hf": ours_s / hf_s,
        "merges_identical_with_hf_tie_rule": hf_rule == hf_merges,
        "first_difference_default_rule": first_difference(merges, hf_merges),
        "merges_in_common_default_rule": len(set(merges) & set(hf_merges)),
        "n_merges": len(merges),
        "validation": {
            "bytes": n_bytes,
            "bytes_per_token_ours": n_bytes / len(ours_ids),
            "bytes_per_token_course": n_bytes / len(hf_ids),
            "encode_seconds_ours": ours_enc_s,
            "encode_seconds_course": hf_enc_s,
        },
    }
    v = report["validation"]
    lines = [
        f"# BPE training, profile `{args.profile}`: {len(text):,} characters, vocab {vocab_size}",
        "",
        f"Machine {report['machine']['platform']}, load average {report['machine']['load_average_1_5_15']} "
        f"(shared: read ratios), {report['machine']['date']}. Best of {args.repeats}.",
        "",
        "| trainer | train (s) | bytes/token (validation) | encode validation (s) |",
        "|---|---|---|---|",
        f"| from scratch (`workshop_utils.bpe`) | {ours_s:.2f} | {v['bytes_per_token_ours']:.3f} | {ours_enc_s:.2f} |",
        f"| HF `tokenizers`, whole text | {hf_s:.2f} | | |",
        f"| course tokenizer (`train_course_tokenizer`) | {course_s:.2f} | {v['bytes_per_token_course']:.3f} | {hf_enc_s:.2f} |",
        "",
        f"From scratch is {report['slowdown_ours_vs_hf']:.1f}x slower than `tokenizers` on the same text. "
        f"Merges identical with the library's tie rule: {report['merges_identical_with_hf_tie_rule']}; with ours "
        f"(greatest pair wins ties) the first difference is merge {report['first_difference_default_rule']}, "
        f"{report['merges_in_common_default_rule']}/{len(merges)} merges in common.",
    ]
    write_results(args.out, f"bpe_{args.profile}", report, lines)
    return report


if __name__ == "__main__":
    main()
