"""Where generated things live: `artifacts/` (checkpoints, caches) and `build/` (executed notebooks, site)."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def repo_root() -> Path:
    """The repository root when installed editable (the usual case), else the current directory."""
    candidate = PACKAGE_DIR.parent
    if (candidate / "pyproject.toml").exists():
        return candidate
    return Path.cwd()


def artifacts_dir(*parts: str) -> Path:
    """A (created) folder under the git-ignored artifacts dir; `WORKSHOP_ARTIFACTS` overrides the root."""
    root = Path(os.environ.get("WORKSHOP_ARTIFACTS", repo_root() / "artifacts"))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_dir(*parts: str) -> Path:
    """A (created) folder under the git-ignored build dir."""
    path = repo_root().joinpath("build", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
