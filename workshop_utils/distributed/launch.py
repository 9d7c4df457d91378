"""Launch `torchrun` from a notebook cell, reliably.

- Free port, no race: the rendezvous endpoint is `127.0.0.1:0`, so torchrun's agent binds a port the OS
  hands out and passes it to its workers; two launches at once cannot pick the same one.
- Errors surface in seconds: torchrun checks its workers every 0.1 s and, when one exits non-zero, stops
  the others; we then raise `LaunchError` carrying the failing rank's traceback.
- Nothing is left behind: every process is tagged with an environment variable; on failure, timeout or
  Ctrl-C (KeyboardInterrupt) we terminate torchrun's process group and every tagged process (torchrun
  puts each worker in a session of its own, so a process-group kill alone would miss them).
- Collectives time out inside the script (`init_process_group(timeout=...)`), the whole launch here.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

TAG = "WORKSHOP_LAUNCH_TAG"
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding workshop_utils/


class LaunchError(RuntimeError):
    """A launch failed: a rank raised, the launch timed out, or it was interrupted."""


@dataclass
class LaunchResult:
    """What one launch produced: exit code, wall time, its full output."""

    returncode: int
    seconds: float
    output: str
    command: list[str] = field(default_factory=list)


def torchrun_command(nproc: int, target: list[str], rdzv_endpoint: str = "127.0.0.1:0") -> list[str]:
    """The torchrun command line for one node with `nproc` ranks; `target` is `['-m', mod, ...]` or a script."""
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"nproc must be a positive int, got {nproc!r}")
    return [
        sys.executable, "-m", "torch.distributed.run",
        "--nproc-per-node", str(nproc),
        "--rdzv-backend", "c10d", "--rdzv-endpoint", rdzv_endpoint,  # port 0: the OS picks a free one
        "--max-restarts", "0", "--monitor-interval", "0.1",
        *target,
    ]  # fmt: skip


def tagged_processes(tag: str) -> list:
    """Every live process of this user whose environment carries our launch tag."""
    import psutil  # a dependency of accelerate

    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.environ().get(TAG) == tag:
                found.append(proc)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess, OSError):
            continue
    return found


def cleanup(proc: subprocess.Popen, tag: str, grace_s: float = 3.0) -> int:
    """Terminate torchrun's process group and every tagged process; SIGKILL what outlives `grace_s`."""
    import psutil

    victims = {p.pid: p for p in tagged_processes(tag)}
    if proc.poll() is None:
        try:
            victims.update({c.pid: c for c in psutil.Process(proc.pid).children(recursive=True)})
            os.killpg(proc.pid, signal.SIGTERM)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    for p in victims.values():
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(list(victims.values()), timeout=grace_s)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return len(victims)


def _reader(stream, lines: queue.Queue) -> None:
    for line in iter(stream.readline, ""):
        lines.put(line)
    lines.put(None)


# A rank that dies takes its peers' collectives down with it; their errors are echoes, not the cause.
PEER_ERRORS = (
    "Connection closed by peer",
    "Connection reset by peer",
    "remote worker crashing",
    "Broken pipe",
)
RANK_LINE = re.compile(r"^\[rank(\d+)\]: ?(.*)$")


def rank_tracebacks(output: str) -> dict[int, list[str]]:
    """Each rank's traceback lines (torchrun prefixes worker stderr with `[rankN]:`), in order of appearance."""
    tracebacks: dict[int, list[str]] = {}
    for line in output.splitlines():
        match = RANK_LINE.match(line)
        if not match:
            continue
        rank, text = int(match.group(1)), match.group(2)
        if text.startswith("Traceback (most recent call last)"):
            tracebacks[rank] = [text]
        elif rank in tracebacks:
            tracebacks[rank].append(text)
    return tracebacks


def failure_summary(output: str, max_lines: int = 40) -> str:
    """One line per failed rank, then the traceback of the root cause (a rank not just losing its peer)."""
    tracebacks = rank_tracebacks(output)
    if not tracebacks:
        return "\n".join(output.splitlines()[-max_lines:])
    cause = next((r for r, tb in tracebacks.items() if not any(e in tb[-1] for e in PEER_ERRORS)), None)
    cause = next(iter(tracebacks)) if cause is None else cause
    heads = "\n".join(f"  rank {r}: {tb[-1][:300]}" for r, tb in tracebacks.items())
    body = "\n".join(tracebacks[cause][-max_lines:])
    return f"failed ranks:\n{heads}\nroot cause, rank {cause}:\n{body}"


def launch(
    nproc: int,
    args: list[str] = (),
    module: str | None = None,
    script: str | os.PathLike | None = None,
    timeout_s: float = 300.0,
    echo: bool = True,
    env: dict[str, str] | None = None,
) -> LaunchResult:
    """Run `torchrun` with `nproc` ranks on this machine; raise `LaunchError` with the rank's traceback.

    `module` (default: the course training script) or `script` is what each rank runs, with `args`.
    """
    if module is not None and script is not None:
        raise ValueError("give at most one of module= or script= (default: the course training script)")
    target = [str(script)] if script is not None else ["-m", module or "workshop_utils.distributed.train"]
    if not isinstance(timeout_s, (int, float)) or timeout_s <= 0:
        raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
    cmd = torchrun_command(nproc, [*target, *map(str, args)])
    tag = uuid.uuid4().hex
    child_env = {**os.environ, **(env or {}), TAG: tag, "PYTHONUNBUFFERED": "1"}
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), child_env.get("PYTHONPATH")]))
    if sys.platform.startswith("linux") and "GLOO_SOCKET_IFNAME" not in child_env:
        child_env["GLOO_SOCKET_IFNAME"] = "lo"  # one machine: gloo talks over loopback only
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=child_env,
        start_new_session=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
    output: list[str] = []
    try:
        while True:
            remaining = t0 + timeout_s - time.perf_counter()
            if remaining <= 0:
                raise LaunchError(
                    f"launch timed out after {timeout_s:.0f} s; output tail:\n{failure_summary(''.join(output))}"
                )
            try:
                line = lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if line is None:
                break
            output.append(line)
            if echo and not line.startswith(("*****", "Setting OMP_NUM_THREADS")):
                print(line, end="", flush=True)
        returncode = proc.wait()
    except BaseException:  # timeout, Ctrl-C: nothing may outlive the cell
        cleanup(proc, tag)
        raise
    cleanup(proc, tag)  # normally a no-op; catches a straggler that closed its pipe but lives on
    text = "".join(output)
    if returncode != 0:
        raise LaunchError(f"torchrun exited with code {returncode}\n{failure_summary(text)}")
    return LaunchResult(returncode, time.perf_counter() - t0, text, cmd)


def load_reports(out_dir: str | os.PathLike) -> list[dict]:
    """Every per-rank JSON report under `out_dir`, sorted by (label, rank)."""
    paths = sorted(Path(out_dir).glob("*_rank*.json"))
    if not paths:
        raise FileNotFoundError(f"no *_rank*.json reports in {out_dir}")
    reports = [json.loads(p.read_text()) for p in paths]
    return sorted(reports, key=lambda r: (r["label"], r["rank"]))
