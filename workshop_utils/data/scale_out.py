"""A ready datatrove Slurm configuration for module 02's stages, sized from the snapshot cost estimate.

Two `SlurmPipelineExecutor`s, the same steps as `datatrove_blocks.run_datatrove`:
1. per-document stages sharded over `tasks` (at most `workers` at once, 1 core each): read -> decode ->
   extract -> langid -> quality -> write; its time limit is one task's share of those stages' core-hours;
2. the global stages in one task (exact + MinHash dedup, PII), after step 1: its time limit is their
   core-hours. At web scale one task cannot hold a snapshot's survivors: swap step 2 for datatrove's own
   4-stage MinHash pipeline (signatures, buckets, clusters, filter) before running this on a real crawl.
Each time limit is the estimate x `safety` (a margin, stated as an assumption), rounded up to a minute.
Building the executors only configures them: nothing is submitted until `.run()` is called on a cluster.
"""

from __future__ import annotations

import math
from pathlib import Path

from .cleaning_cost import GLOBAL_STAGES, CleaningCost


def slurm_time(hours: float) -> str:
    """A Slurm time limit ('D-HH:MM:SS' or 'HH:MM:SS') for `hours`, rounded up to a whole minute."""
    if (
        isinstance(hours, bool)
        or not isinstance(hours, int | float)
        or not math.isfinite(hours)
        or hours <= 0
    ):
        raise ValueError(f"hours must be a finite number > 0, got {hours!r}")
    minutes = math.ceil(round(hours * 60, 9))
    days, rest = divmod(minutes, 24 * 60)
    clock = f"{rest // 60:02d}:{rest % 60:02d}:00"
    return f"{days}-{clock}" if days else clock


def step_hours(cost: CleaningCost, tasks: int) -> tuple[float, float]:
    """(hours of one step-1 task, hours of the single step-2 task): core-hours split over the tasks."""
    if isinstance(tasks, bool) or not isinstance(tasks, int) or tasks < 1:
        raise ValueError(f"tasks must be a positive int, got {tasks!r}")
    local = [s for s in cost.stage_rate if s not in GLOBAL_STAGES]
    glob = [s for s in cost.stage_rate if s in GLOBAL_STAGES]
    if not local or not glob:
        raise ValueError(f"cost must have per-document stages and global stages {GLOBAL_STAGES}")
    return (
        math.fsum(cost.stage_core_hours(s) for s in local) / tasks,
        math.fsum(cost.stage_core_hours(s) for s in glob),
    )


def slurm_executors(
    cost: CleaningCost,
    input_dir: str | Path,
    output_dir: str | Path,
    logging_dir: str | Path,
    partition: str,
    tasks: int | None = None,
    safety: float = 2.0,
    venv_path: str | None = None,
):
    """(step 1, step 2) `SlurmPipelineExecutor`s for the cleaning stages, sized from `cost` (not submitted).

    `tasks` defaults to 4 per worker (short tasks balance better); `workers` is `cost.workers`. The time
    limits are `step_hours` x `safety`. Input is the JSONL that `datatrove_blocks.write_crawl_jsonl` writes.
    """
    from datatrove.executor import SlurmPipelineExecutor
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    from .datatrove_blocks import GlobalDedupPII, document_steps
    from .pipeline import PipelineConfig

    if not isinstance(partition, str) or not partition.strip():
        raise ValueError(f"partition must be a non-empty str, got {partition!r}")
    if isinstance(safety, bool) or not isinstance(safety, int | float) or not safety >= 1:
        raise ValueError(f"safety must be a number >= 1 (a margin on the estimate), got {safety!r}")
    workers = int(cost.workers.value)
    tasks = 4 * workers if tasks is None else tasks
    local_h, global_h = step_hours(cost, tasks)
    out, logs = Path(output_dir), Path(logging_dir)

    def excl(stage: str):
        return JsonlWriter(str(out / "rejects" / stage))

    step1 = SlurmPipelineExecutor(
        pipeline=[
            JsonlReader(str(input_dir), compression=None),
            *document_steps(PipelineConfig(), excl),
            JsonlWriter(str(out / "filtered")),
        ],
        tasks=tasks,
        workers=workers,
        time=slurm_time(local_h * safety),
        partition=partition,
        cpus_per_task=1,
        job_name="clean_documents",
        venv_path=venv_path,
        logging_dir=str(logs / "documents"),
    )
    step2 = SlurmPipelineExecutor(
        pipeline=[
            JsonlReader(str(out / "filtered")),
            GlobalDedupPII(exclusion_writer=excl("dedup")),
            JsonlWriter(str(out / "kept")),
        ],
        tasks=1,
        workers=1,
        time=slurm_time(global_h * safety),
        partition=partition,
        cpus_per_task=1,
        job_name="clean_global",
        venv_path=venv_path,
        logging_dir=str(logs / "global"),
        depends=step1,
    )
    return step1, step2
