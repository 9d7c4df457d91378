"""Provenance of a stored result: which code, inputs and library versions produced it, and a check on load.

A stored result (a committed study, a cached run) is only as good as the claim that *this* code produced
it from *these* inputs. `record(entry_module, inputs)` writes that claim down:

- `code`: sha256 over the source of `entry_module` and every `workshop_utils` module it imports,
  transitively (function-level imports included), so changing any function the result depends on
  changes the fingerprint. `config.py` is left out on purpose: the profile values a result uses are
  listed in `inputs`, so editing an unrelated profile section does not invalidate it.
- `inputs`: whatever else it depends on (config sections, hashes of upstream weights, seeds).
- `versions`: the libraries whose numerics matter. Also kept for the reader: date, git commit, machine.

`check(stored, entry_module, inputs)` returns the list of what changed (empty: the result is current).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .paths import repo_root

PACKAGE = "workshop_utils"
VERSIONED = ("torch", "transformers", "peft", "tokenizers")
NOT_CODE = {f"{PACKAGE}.config"}  # its values enter through `inputs`


def _module_file(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"no module {name!r}")
    return Path(spec.origin)


def _imports(name: str, path: Path) -> set[str]:
    """workshop_utils modules imported anywhere in the file (absolute or relative, top level or in a function)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = (
                importlib.util.resolve_name("." * node.level + (node.module or ""), package)
                if node.level
                else node.module
            )
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # `from . import sft` names a module
    return {m for m in found if m == PACKAGE or m.startswith(PACKAGE + ".")}


def module_closure(entry_module: str) -> list[str]:
    """`entry_module` and every workshop_utils module it imports, transitively, sorted."""
    seen: set[str] = set()
    todo = [entry_module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        try:
            path = _module_file(name)
        except ModuleNotFoundError:
            continue  # `from .x import function`: the name is not a module
        seen.add(name)
        todo.extend(_imports(name, path) - seen)
    return sorted(seen)


def code_fingerprint(entry_module: str) -> str:
    """sha256 (16 hex digits) over the sources of `module_closure(entry_module)` minus `NOT_CODE`."""
    h = hashlib.sha256()
    for name in module_closure(entry_module):
        if name in NOT_CODE:
            continue
        h.update(name.encode() + b"\0" + _module_file(name).read_bytes() + b"\0")
    return h.hexdigest()[:16]


def package_fingerprint() -> str:
    """sha256 (16 hex digits) over every source file of the package, config included (the fast path's key)."""
    root = _module_file(PACKAGE).parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def versions() -> dict[str, str]:
    """Installed versions of the libraries whose numerics a result depends on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in VERSIONED:
        try:
            out[name] = version(name).split("+")[0]
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def code_version() -> str:
    """The git commit of the repository (with `+dirty` when tracked files changed), or "unknown"."""
    try:
        run = lambda *a: subprocess.run(  # noqa: E731
            ["git", *a], cwd=repo_root(), capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        commit = run("rev-parse", "--short=12", "HEAD")
        dirty = run("status", "--porcelain", "--untracked-files=no")
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def record(entry_module: str, inputs: dict[str, Any], command: str) -> dict[str, Any]:
    """The provenance block to store next to a result produced now by `entry_module` from `inputs`."""
    return {
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),  # noqa: UP017 - py3.10
        "commit": code_version(),
        "command": command,
        "entry_module": entry_module,
        "code": code_fingerprint(entry_module),
        "inputs": inputs,
        "versions": versions(),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.system()}",
    }


def check(stored: dict[str, Any], entry_module: str, inputs: dict[str, Any]) -> list[str]:
    """What differs between a stored provenance block and the code, inputs and versions of now."""
    problems = []
    for key in ("code", "inputs", "versions", "entry_module"):
        if key not in stored:
            problems.append(f"provenance has no {key!r}")
    if problems:
        return problems
    if stored["entry_module"] != entry_module:
        problems.append(f"produced by {stored['entry_module']}, not {entry_module}")
    now = code_fingerprint(entry_module)
    if stored["code"] != now:
        problems.append(f"code changed (fingerprint {stored['code']} stored, {now} now)")
    for k in sorted({*stored["inputs"], *inputs}):
        if stored["inputs"].get(k) != inputs.get(k):
            problems.append(f"input {k!r} changed ({stored['inputs'].get(k)!r} -> {inputs.get(k)!r})")
    for k, v in versions().items():
        if stored["versions"].get(k) != v:
            problems.append(f"{k} {stored['versions'].get(k)} stored, {v} installed")
    return problems
