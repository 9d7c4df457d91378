"""The cost of cleaning one Common Crawl snapshot: published sizes x OUR measured throughput.

Every input carries where it came from: a published figure (data/published), a measurement made here
(benchmarks/results/data_cpu.json: our pipeline on our *synthetic* crawl, 2 cores), or an assumption stated
plainly. The chain:

    kept tokens per snapshot = FineWeb's 15T tokens / 96 snapshots            (published)
    documents per snapshot   = kept tokens / kept tokens per document / kept share
    documents into a stage   = documents per snapshot x share of the crawl that reaches it (measured here)
    core-hours of a stage    = documents into it / (documents/s per core) / 3600
    wall hours               = total core-hours / cores  (perfect scaling: an assumption)

Per core: the benchmark ran `num_proc=2` on a 2-core machine, so each stage's docs/s is what 2 cores did
together, and per core = docs/s / 2. The stages that ran in one process (the global dedup) left a core idle,
so for them this charges the whole machine: an upper bound, at most 2x.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..paths import repo_root
from ..published import figure

FILE = "data_pipeline"
KINDS = ("published", "measured here", "assumption")
BENCHMARK = Path("benchmarks") / "results" / "data_cpu.json"
NOT_IN_A_WEB_SNAPSHOT = (
    "book_dedup",
)  # a Common Crawl snapshot holds web pages only: no book stage to pay for
GLOBAL_STAGES = ("exact_dedup", "near_dedup", "pii")  # need every survivor at once (one datatrove task)


@dataclass(frozen=True)
class Input:
    """One input of the estimate: its value and where it came from (kind: published/measured here/assumption)."""

    value: float
    kind: str
    detail: str

    def __post_init__(self) -> None:
        if (
            isinstance(self.value, bool)
            or not isinstance(self.value, int | float)
            or not math.isfinite(self.value)
        ):
            raise TypeError(f"value must be a finite number, got {self.value!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if not isinstance(self.detail, str) or not self.detail.strip():
            raise ValueError("detail must say where the number comes from (a key, a file, an assumption)")

    @classmethod
    def published(cls, key: str, file: str = FILE) -> Input:
        """A published figure, read through `workshop_utils.published`."""
        fig = figure(file, key)
        return cls(float(fig.value), "published", f"{file}/{key}: {fig.cite()}")

    @classmethod
    def assumption(cls, value: float, statement: str) -> Input:
        """An assumption, stated plainly (it is not measured and not published)."""
        return cls(value, "assumption", statement)


@dataclass(frozen=True)
class MeasuredRates:
    """Our benchmark's throughput: per stage docs in, seconds, docs/s, docs/s per core, share of the crawl."""

    stages: pd.DataFrame
    pipeline_docs_per_s: float
    cores: int
    n_docs: int
    removed_fraction: float
    label: str  # 'measured: <file> <date> (<machine>), synthetic crawl'


def measured_rates(path: str | Path | None = None) -> MeasuredRates:
    """Read the measured docs/s per stage of benchmarks/results/data_cpu.json (per core = docs/s / num_proc)."""
    path = Path(path) if path is not None else repo_root() / BENCHMARK
    if not path.exists():
        raise ValueError(f"path: no benchmark results at {path}; run benchmarks/bench_data.py --profile cpu")
    raw = json.loads(path.read_text())
    need = {"stages", "num_proc", "n_docs", "pipeline_docs_per_s", "date", "machine", "removed_fraction"}
    if not isinstance(raw, dict) or need - set(raw):
        raise ValueError(f"path: {path} lacks {sorted(need - set(raw or {}))}")
    cores, n = int(raw["num_proc"]), int(raw["n_docs"])
    if cores < 1 or n < 1:
        raise ValueError(f"path: num_proc and n_docs must be >= 1, got {cores}, {n}")
    df = pd.DataFrame.from_dict(raw["stages"], orient="index")[["docs_in", "seconds"]]
    if (df["seconds"] <= 0).any() or (df["docs_in"] <= 0).any():
        raise ValueError(f"path: every stage needs docs_in > 0 and seconds > 0 in {path}")
    df["docs_per_s"] = df["docs_in"] / df["seconds"]
    df["docs_per_s_per_core"] = df["docs_per_s"] / cores
    df["share_of_crawl"] = df["docs_in"] / n
    df.index.name = "stage"
    name = path.relative_to(repo_root()) if path.is_relative_to(repo_root()) else path
    label = f"measured: {name} {raw['date']} ({raw['machine']}, num_proc={cores}), synthetic crawl"
    return MeasuredRates(
        df, float(raw["pipeline_docs_per_s"]), cores, n, float(raw["removed_fraction"]), label
    )


def tokens_per_doc(texts: list[str], what: str, count_tokens=None) -> Input:
    """Mean tokens per document of `texts`, measured here (default count: whitespace words, not BPE tokens)."""
    texts = list(texts)
    if not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError("texts must be a non-empty list of str")
    count = count_tokens or (lambda t: len(t.split()))
    unit = "whitespace words" if count_tokens is None else "tokens of the given counter"
    mean = sum(count(t) for t in texts) / len(texts)
    return Input(mean, "measured here", f"mean {unit} of {len(texts):,} {what}")


@dataclass(frozen=True)
class CleaningCost:
    """Documents and core-hours to clean one snapshot, every input labelled with its origin."""

    fineweb_tokens: Input
    fineweb_snapshots: Input
    kept_tokens_per_doc: Input
    kept_share: Input
    stage_share: dict[str, Input]  # share of a snapshot's documents that reaches each stage
    stage_rate: dict[str, Input]  # documents/s per core of each stage
    cores_per_machine: Input
    workers: Input
    whole_pipeline_rate: Input | None = field(default=None)  # docs/s per core end to end (a cross-check)

    def __post_init__(self) -> None:
        if set(self.stage_share) != set(self.stage_rate) or not self.stage_rate:
            raise ValueError("stage_share and stage_rate must name the same, non-empty set of stages")
        positive = {"fineweb_tokens": self.fineweb_tokens, "fineweb_snapshots": self.fineweb_snapshots,
                    "kept_tokens_per_doc": self.kept_tokens_per_doc, "cores_per_machine": self.cores_per_machine,
                    "workers": self.workers, **{f"stage_rate[{s!r}]": r for s, r in self.stage_rate.items()}}  # fmt: skip
        for name, inp in positive.items():
            if not isinstance(inp, Input):
                raise TypeError(f"{name} must be an Input (value + where it came from), got {inp!r}")
            if inp.value <= 0:
                raise ValueError(f"{name} must be > 0, got {inp.value}")
        for name, inp in {"kept_share": self.kept_share, **self.stage_share}.items():
            if not isinstance(inp, Input) or not 0 < inp.value <= 1:
                raise ValueError(f"{name} must be an Input with a share in (0, 1], got {inp!r}")

    @property
    def kept_tokens_per_snapshot(self) -> float:
        """FineWeb's tokens / snapshots: what cleaning keeps of one snapshot."""
        return self.fineweb_tokens.value / self.fineweb_snapshots.value

    @property
    def docs_per_snapshot(self) -> float:
        """Documents entering the pipeline: kept tokens / kept tokens per document / kept share."""
        return self.kept_tokens_per_snapshot / self.kept_tokens_per_doc.value / self.kept_share.value

    def stage_docs(self, stage: str) -> float:
        """Documents of one snapshot that reach `stage`."""
        return self.docs_per_snapshot * self.stage_share[stage].value

    def stage_core_hours(self, stage: str) -> float:
        """Core-hours of `stage`: documents into it / (documents/s per core) / 3600."""
        return self.stage_docs(stage) / self.stage_rate[stage].value / 3600

    @property
    def core_hours(self) -> float:
        """Core-hours of the whole snapshot: the sum over stages."""
        return math.fsum(self.stage_core_hours(s) for s in self.stage_rate)

    def wall_hours(self, cores: int | float) -> float:
        """Wall hours on `cores` cores working at once, assuming perfect scaling (no stragglers, no I/O limit)."""
        if isinstance(cores, bool) or not isinstance(cores, int | float) or cores <= 0:
            raise ValueError(f"cores must be a number > 0, got {cores!r}")
        return self.core_hours / cores

    @property
    def global_core_hours(self) -> float:
        """Core-hours of the global stages (exact + near dedup, PII), which need every survivor in one task."""
        return math.fsum(self.stage_core_hours(s) for s in self.stage_rate if s in GLOBAL_STAGES)

    def wall_hours_one_global_task(self, workers: int) -> float:
        """Wall hours when the per-document stages spread over `workers` and the global ones run in one task."""
        self.wall_hours(workers)  # validates `workers`
        return (self.core_hours - self.global_core_hours) / workers + self.global_core_hours

    def stage_table(self) -> pd.DataFrame:
        """Per stage: documents in, documents/s per core, core-hours and share of the total."""
        names = list(self.stage_rate)
        df = pd.DataFrame(
            {"documents_in": [self.stage_docs(s) for s in names],
             "docs_per_s_per_core": [self.stage_rate[s].value for s in names],
             "core_hours": [self.stage_core_hours(s) for s in names]},
            index=pd.Index(names, name="stage"),
        )  # fmt: skip
        df["share_of_core_hours"] = df["core_hours"] / self.core_hours
        return df

    def table(self) -> pd.DataFrame:
        """The estimate as a printable table: quantity, value, source of this number, where it comes from."""
        rows = [
            ("FineWeb tokens", self.fineweb_tokens), ("FineWeb snapshots", self.fineweb_snapshots),
            ("kept tokens per document", self.kept_tokens_per_doc), ("kept share of documents", self.kept_share),
            *((f"share of the crawl reaching {s}", i) for s, i in self.stage_share.items()),
            *((f"{s}: documents/s per core", i) for s, i in self.stage_rate.items()),
            ("cores per machine", self.cores_per_machine), ("workers", self.workers),
        ]  # fmt: skip
        out = [(q, i.value, i.kind, i.detail) for q, i in rows]
        c, n = self.cores_per_machine.value, self.workers.value
        out += [
            ("kept tokens per snapshot", self.kept_tokens_per_snapshot, "computed", "FineWeb tokens / snapshots"),
            ("documents per snapshot", self.docs_per_snapshot, "computed",
             "kept tokens per snapshot / kept tokens per document / kept share"),
            *((f"{s}: core-hours", self.stage_core_hours(s), "computed",
               "documents into the stage / (documents/s per core) / 3600") for s in self.stage_rate),
            ("core-hours, all stages", self.core_hours, "computed", "sum of the stages"),
            (f"wall hours, 1 machine of {c:g} cores", self.wall_hours(c), "computed", "core-hours / cores"),
            (f"wall hours, {n:g} workers (1 core each)", self.wall_hours(n), "computed", "core-hours / workers"),
            (f"wall hours, {n:g} workers, global stages in 1 task", self.wall_hours_one_global_task(int(n)),
             "computed", "per-document core-hours / workers + global core-hours (as datatrove_blocks runs them)"),
        ]  # fmt: skip
        if self.whole_pipeline_rate is not None:
            whole = self.docs_per_snapshot / self.whole_pipeline_rate.value / 3600
            out.append(("core-hours, whole pipeline timed end to end", whole, "computed",
                        "documents per snapshot / whole-pipeline documents/s per core / 3600 (cross-check)"))  # fmt: skip
        return pd.DataFrame(out, columns=["quantity", "value", "source of this number", "where from"])


def snapshot_cost(
    kept_tokens_per_doc: Input,
    kept_share: Input | None = None,
    measured: MeasuredRates | None = None,
    cores_per_machine: int = 64,
    workers: int = 512,
) -> CleaningCost:
    """The cost of one snapshot from FineWeb's published size, OUR measured rates and the given inputs.

    `kept_tokens_per_doc` has no published figure here: pass `tokens_per_doc(...)` (measured on our crawl)
    or `Input.assumption(...)`. `kept_share` defaults to 1 - RefinedWeb's 'nearly 90 %' removed (a
    RefinedWeb figure used for FineWeb: FineWeb's own kept share is not among the published figures).
    `cores_per_machine` and `workers` are the hardware chosen, labelled as assumptions.
    """
    if not isinstance(kept_tokens_per_doc, Input):
        raise TypeError("kept_tokens_per_doc must be an Input: tokens_per_doc(...) or Input.assumption(...)")
    for name, v in (("cores_per_machine", cores_per_machine), ("workers", workers)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    m = measured or measured_rates()
    if kept_share is None:
        removed = figure(FILE, "refinedweb_removed")
        kept_share = Input(1 - removed.value, "published",
                           f"1 - {FILE}/refinedweb_removed ({removed.cite()}); RefinedWeb's figure, used for FineWeb")  # fmt: skip
    web = m.stages.drop(index=[s for s in NOT_IN_A_WEB_SNAPSHOT if s in m.stages.index])
    share = {s: Input(float(r.share_of_crawl), "measured here", f"{m.label}: {int(r.docs_in):,} of {m.n_docs:,} documents")
             for s, r in web.iterrows()}  # fmt: skip
    rate = {s: Input(float(r.docs_per_s_per_core), "measured here",
                     f"{m.label}: {r.docs_per_s:.0f} docs/s / {m.cores} cores") for s, r in web.iterrows()}  # fmt: skip
    return CleaningCost(
        Input.published("fineweb_tokens"),
        Input.published("fineweb_snapshots"),
        kept_tokens_per_doc,
        kept_share,
        share,
        rate,
        Input.assumption(
            cores_per_machine, f"a machine of {cores_per_machine} cores (a choice, not a measurement)"
        ),
        Input.assumption(
            workers, f"{workers} concurrent 1-core datatrove tasks (a choice, not a measurement)"
        ),
        Input(
            m.pipeline_docs_per_s / m.cores, "measured here", f"{m.label}: whole pipeline / {m.cores} cores"
        ),
    )
