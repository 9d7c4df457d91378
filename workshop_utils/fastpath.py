"""Live-session fast path: load what the same code computed earlier instead of stalling a live session.

A long notebook cell wraps its computation:

    FAST_PATH = False  # in the `parameters` cell; the instructor sets True for a live session
    sweep = cached_result("06_sweep", lambda: run_sweep(profile), profile=profile, budget_s=LIVE_BUDGET_S,
                          produced_by="06_scaling_laws.ipynb", fast_path=FAST_PATH, inputs={"seed": SEED})

- `fast_path=False` (the default in every notebook): always compute, time it against `budget_s` (a warning
  when over), and store the result under `artifacts/<profile>/fastpath/<key>.json` with a sidecar
  `<key>.meta.json`: sha256 of the stored bytes, seconds taken, and the course's one provenance block (as
  `provenance.record` writes for every stored result): date, git commit, producing notebook/script, the
  cell's function, a fingerprint of its source + every package source file + the library versions, inputs.
- `fast_path=True`: if an artifact exists, check it (sha256 of the payload, same producer, same fingerprint:
  no code changed) and load it with a visible note "loaded precomputed result [<key>] from <date>, produced
  by <script>"; `origin_label(key)` then says "stored run of <date>, commit <sha>" for the cell's outputs.
  A failed check is an error (`FastPathError`), never a silent recompute or a silent trust.
  Without an artifact it computes and stores, as above.

Payloads: JSON values (dict with str keys, list, str, int, float, bool, None; tuples and numpy scalars are
refused so a round trip returns exactly what was computed), or a dict of torch tensors (stored as
safetensors). A cell that also produces model weights saves them with `save_weights` (which returns their
sha256), puts that hash in its JSON result, and on the fast path reloads them with `load_weights`, which
checks the hash.

The live budget: `LIVE_BUDGET_S` is how long a live audience waits for one cell. Every cell that runs longer
than that in the profile an instructor presents (`cpu` on a laptop) is wrapped in `cached_result`;
`tests/test_fastpath_coverage.py` checks this against the recorded cell times.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import math
import os
import platform
import re
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .config import PROFILE_NAMES
from .paths import artifacts_dir
from .provenance import code_version, package_fingerprint, versions

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}$")
SIDECAR_FIELDS = ("key", "format", "sha256", "seconds", "budget_s", "profile", "provenance")
# The course's one provenance block (the keys of `provenance.record`, shared with every stored result):
# `command` is the producing notebook or script, `entry_module` the cell's function, `code` its fingerprint.
PROVENANCE_FIELDS = ("created", "commit", "command", "entry_module", "code", "inputs", "versions", "machine")
LIVE_BUDGET_S = 60.0  # seconds one cell may take in a live session before it needs a fast path
LOADED_NOTE = "loaded precomputed result"  # printed on every load; the course runner looks for it
_LOADED: dict[str, dict[str, Any]] = {}  # key -> sidecar of the stored run loaded in this session


class FastPathError(RuntimeError):
    """A stored fast-path artifact failed its check (hash, producer or code); nothing was loaded."""


# ---------------------------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------------------------
def _check_args(
    key: Any, compute_fn: Any, profile: Any, budget_s: Any, produced_by: Any, fast_path: Any, inputs: Any
) -> str:
    """Validate the arguments of `cached_result`; return the profile name."""
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError(
            f"key must be a non-empty name of letters, digits, '_', '.', '-' (max 121 chars), got {key!r}"
        )
    if not callable(compute_fn):
        raise TypeError(f"compute_fn must be a callable taking no arguments, got {type(compute_fn).__name__}")
    name = getattr(profile, "name", profile)
    if name not in PROFILE_NAMES:
        raise ValueError(f"profile must be one of {PROFILE_NAMES} (or a Profile), got {profile!r}")
    if isinstance(budget_s, bool) or not isinstance(budget_s, (int, float)) or not math.isfinite(budget_s):
        raise ValueError(f"budget_s must be a finite number of seconds > 0, got {budget_s!r}")
    if budget_s <= 0:
        raise ValueError(f"budget_s must be a finite number of seconds > 0, got {budget_s!r}")
    if not isinstance(produced_by, str) or not produced_by.strip():
        raise ValueError(f"produced_by must name the producing notebook or script, got {produced_by!r}")
    if not isinstance(fast_path, bool):
        raise TypeError(f"fast_path must be True or False, got {fast_path!r}")
    if not isinstance(inputs, dict):
        raise TypeError(
            f"inputs must be a dict of JSON values (e.g. {{'seed': 0}}), got {type(inputs).__name__}"
        )
    _check_json(inputs, "inputs")
    return name


def _check_json(value: Any, where: str = "result") -> None:
    """Raise unless `value` is made of JSON types that round-trip unchanged."""
    if value is None or isinstance(value, (bool, str, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value!r}: NaN/inf cannot be stored as JSON")
        return
    if isinstance(value, list):
        for i, v in enumerate(value):
            _check_json(v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where} has a non-string key {k!r}: JSON keys are strings")
            _check_json(v, f"{where}[{k!r}]")
        return
    raise TypeError(
        f"{where} has type {type(value).__name__}: store dict/list/str/int/float/bool/None "
        "(tuple -> list, numpy -> .tolist() or float()), or a dict of torch tensors"
    )


def _is_tensor_dict(value: Any) -> bool:
    """True for a non-empty dict whose values are all torch tensors."""
    if not isinstance(value, dict) or not value:
        return False
    import torch

    return all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())


# ---------------------------------------------------------------------------------------------
# Provenance
# ---------------------------------------------------------------------------------------------
def _qualname(compute_fn: Callable[[], Any]) -> str:
    """module.qualname of the function a cell wraps (through functools.partial)."""
    while isinstance(compute_fn, functools.partial):
        compute_fn = compute_fn.func
    return f"{getattr(compute_fn, '__module__', '?')}.{getattr(compute_fn, '__qualname__', type(compute_fn).__name__)}"


def fingerprint(compute_fn: Callable[[], Any]) -> str:
    """sha256 (16 hex digits) of the function's source, every source file of the package, and library versions.

    Any change of code the cell may call (a training loop, a quality rule, `lora.finetune`) or of the
    pinned libraries changes the fingerprint, so a stored result computed by other code is refused.
    """
    target: Any = compute_fn
    while isinstance(target, functools.partial):
        target = target.func
    if not (inspect.isfunction(target) or inspect.ismethod(target)):
        target = type(target)  # a callable object: its class's source
    try:
        text = inspect.getsource(target)
    except (OSError, TypeError) as e:
        raise FastPathError(
            f"cannot read the source of {getattr(target, '__qualname__', target)!r} to fingerprint it ({e}); "
            "wrap the computation in a function defined in a notebook cell or a module"
        ) from e
    h = hashlib.sha256(text.encode())
    h.update(package_fingerprint().encode())
    h.update(json.dumps(versions(), sort_keys=True).encode())
    return h.hexdigest()[:16]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Store and load
# ---------------------------------------------------------------------------------------------
def artifact_paths(key: str, profile: Any) -> dict[str, Path]:
    """Where `key` lives for `profile`: {'json', 'safetensors', 'meta'} paths (not all exist)."""
    name = getattr(profile, "name", profile)
    root = artifacts_dir(str(name), "fastpath")
    return {
        "json": root / f"{key}.json",
        "safetensors": root / f"{key}.safetensors",
        "meta": root / f"{key}.meta.json",
    }


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _save(key: str, result: Any, paths: dict[str, Path], meta: dict[str, Any]) -> dict[str, Any]:
    """Store `result` and its sidecar; return the sidecar."""
    if _is_tensor_dict(result):
        from safetensors.torch import save

        fmt = "safetensors"
        data = save({k: v.detach().contiguous().cpu() for k, v in result.items()})
    else:
        _check_json(result)
        fmt = "json"
        data = json.dumps(result, indent=1).encode()  # key order kept: a round trip returns what was computed
    paths["meta"].unlink(missing_ok=True)  # a half-written artifact must never look valid
    for other in ("json", "safetensors"):
        paths[other].unlink(missing_ok=True)
    _write_atomic(paths[fmt], data)
    meta = {**meta, "key": key, "format": fmt, "sha256": hashlib.sha256(data).hexdigest()}
    _write_atomic(paths["meta"], json.dumps(meta, indent=1).encode())
    return meta


def _load(
    key: str, paths: dict[str, Path], produced_by: str, fp: str, inputs: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """Check and load a stored artifact; raise FastPathError on any mismatch."""
    try:
        meta = json.loads(paths["meta"].read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise FastPathError(f"fast path {key!r}: unreadable sidecar {paths['meta']} ({e})") from e
    missing = [f for f in SIDECAR_FIELDS if f not in meta]
    missing += [f"provenance.{f}" for f in PROVENANCE_FIELDS if f not in meta.get("provenance", {})]
    if missing or meta.get("format") not in ("json", "safetensors") or meta.get("key") != key:
        raise FastPathError(f"fast path {key!r}: sidecar {paths['meta']} is malformed (missing {missing})")
    payload, prov = paths[meta["format"]], meta["provenance"]
    fix = f"recompute it once with fast_path=False (or delete {payload.name} and {paths['meta'].name})"
    if not payload.is_file():
        raise FastPathError(f"fast path {key!r}: sidecar exists but {payload} is missing; {fix}")
    got = _sha256(payload)
    if got != meta["sha256"]:
        raise FastPathError(
            f"fast path {key!r}: sha256 mismatch for {payload} (stored {meta['sha256'][:16]}..., "
            f"file {got[:16]}...): the artifact changed after it was produced; {fix}"
        )
    if prov["command"] != produced_by:
        raise FastPathError(
            f"fast path {key!r}: stored artifact was produced by {prov['command']!r}, not {produced_by!r}; {fix}"
        )
    if prov["code"] != fp:
        raise FastPathError(
            f"fast path {key!r}: the computing code changed since the artifact was produced "
            f"(fingerprint of the cell's function, the package and the library versions: {prov['code']} "
            f"stored vs {fp} now; stored at commit {prov['commit']}); {fix}"
        )
    if prov["inputs"] != inputs:
        changed = sorted(k for k in {*prov["inputs"], *inputs} if prov["inputs"].get(k) != inputs.get(k))
        raise FastPathError(
            f"fast path {key!r}: the stored result was computed from other inputs ({', '.join(changed)}: "
            f"stored {[prov['inputs'].get(k) for k in changed]}, now {[inputs.get(k) for k in changed]}); {fix}"
        )
    if meta["format"] == "safetensors":
        from safetensors.torch import load_file

        return load_file(payload), meta
    return json.loads(payload.read_text()), meta


def cached_result(
    key: str,
    compute_fn: Callable[[], Any],
    *,
    profile: Any,
    budget_s: float,
    produced_by: str,
    fast_path: bool,
    inputs: dict[str, Any] | None = None,
) -> Any:
    """Load the checked result of `compute_fn` produced earlier (fast path on), else compute, time and store it."""
    inputs = {} if inputs is None else inputs
    name = _check_args(key, compute_fn, profile, budget_s, produced_by, fast_path, inputs)
    paths = artifact_paths(key, name)
    fp = fingerprint(compute_fn)
    if fast_path and paths["meta"].exists():
        result, meta = _load(key, paths, produced_by, fp, inputs)
        print(
            f"{LOADED_NOTE} [{key}] from {meta['provenance']['created']}, produced by "
            f"{meta['provenance']['command']} (commit {meta['provenance']['commit']}, took {meta['seconds']:.1f} s)"
        )
        _LOADED[key] = meta
        return result
    _LOADED.pop(key, None)
    if fast_path:
        print(f"fast path: no precomputed result for {key!r} in {paths['meta'].parent}; computing it now")
    start = time.perf_counter()
    result = compute_fn()
    seconds = time.perf_counter() - start
    if seconds > budget_s:
        print(
            f"WARNING: {key!r} took {seconds:.1f} s, over its live budget of {budget_s:g} s; "
            f"before a live session run it once, then set FAST_PATH = True"
        )
    prov = {
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),  # noqa: UP017 - py3.10
        "commit": code_version(),
        "command": produced_by,
        "entry_module": _qualname(compute_fn),
        "code": fp,
        "inputs": inputs,
        "versions": versions(),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.system()}",
    }
    meta = {"seconds": round(seconds, 3), "budget_s": float(budget_s), "profile": name, "provenance": prov}
    _save(key, result, paths, meta)
    return result


def origin(key: str) -> dict[str, Any] | None:
    """The sidecar of the stored run `cached_result(key, ...)` loaded in this session; None if it computed live."""
    return _LOADED.get(key)


def origin_label(key: str) -> str:
    """How outputs name where a result came from: "live run" or "stored run of <date>, commit <sha>"."""
    meta = origin(key)
    if meta is None:
        return "live run"
    return f"stored run of {meta['provenance']['created']}, commit {meta['provenance']['commit']}"


def loaded_keys(executed_nb: dict) -> list[str]:
    """The fast-path keys an executed notebook loaded from storage (from the note each load prints)."""
    if not isinstance(executed_nb, dict) or not isinstance(executed_nb.get("cells"), list):
        raise TypeError("executed_nb must be a notebook as a dict (nbformat JSON) with a 'cells' list")
    found = []
    for cell in executed_nb["cells"]:
        for out in cell.get("outputs", []):
            text = out.get("text", "")
            text = text if isinstance(text, str) else "".join(text)
            found += re.findall(re.escape(LOADED_NOTE) + r" \[([A-Za-z0-9_.-]+)\]", text)
    return found


# ---------------------------------------------------------------------------------------------
# Model weights next to a cached result
# ---------------------------------------------------------------------------------------------
def save_weights(state: dict[str, Any], path: str | Path) -> str:
    """Save a state dict as safetensors at `path`; return the file's sha256 (to put in the cached result)."""
    import torch
    from safetensors.torch import save

    if (
        not isinstance(state, dict)
        or not state
        or not all(isinstance(v, torch.Tensor) for v in state.values())
    ):
        raise TypeError("state must be a non-empty dict of tensors, e.g. model.state_dict()")
    seen: set[int] = set()
    tensors = {}
    for k, v in state.items():  # tied weights (an embedding shared with the LM head) are saved once per name
        v = v.detach().cpu().contiguous()
        tensors[k] = v.clone() if v.untyped_storage().data_ptr() in seen else v
        seen.add(v.untyped_storage().data_ptr())
    data = save(tensors)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, data)
    return hashlib.sha256(data).hexdigest()


def load_weights(path: str | Path, sha256: str) -> dict[str, Any]:
    """Load safetensors weights after checking their sha256 against the cached result's; FastPathError if not."""
    from safetensors.torch import load

    path = Path(path)
    if not path.is_file():
        raise FastPathError(f"weights {path} are missing; recompute with fast_path=False")
    data = path.read_bytes()
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise FastPathError(
            f"weights {path}: sha256 {got[:16]}... differs from the stored run's {str(sha256)[:16]}...: "
            "the file changed after that run saved it; recompute with fast_path=False"
        )
    return load(data)


# ---------------------------------------------------------------------------------------------
# Which cells need a fast path: executed notebooks against the live budget
# ---------------------------------------------------------------------------------------------
def cell_timings(executed_nb: dict) -> list[dict[str, Any]]:
    """Every timed code cell of an executed notebook (papermill durations): index, seconds, first line, fast path."""
    if not isinstance(executed_nb, dict) or not isinstance(executed_nb.get("cells"), list):
        raise TypeError("executed_nb must be a notebook as a dict (nbformat JSON) with a 'cells' list")
    rows = []
    for i, cell in enumerate(executed_nb["cells"]):
        seconds = cell.get("metadata", {}).get("papermill", {}).get("duration")
        if cell.get("cell_type") != "code" or seconds is None:
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        first = next((ln for ln in source.splitlines() if ln.strip()), "")
        rows.append({"cell": i, "seconds": float(seconds), "first_line": first[:90],
                     "fast_path": "cached_result(" in source})  # fmt: skip
    return rows


def slow_cells(executed_nb: dict, budget_s: float = LIVE_BUDGET_S) -> list[dict[str, Any]]:
    """The cells of `cell_timings` over `budget_s` (seconds rounded to 0.1), in notebook order."""
    return [
        {**c, "seconds": round(c["seconds"], 1)} for c in cell_timings(executed_nb) if c["seconds"] > budget_s
    ]
