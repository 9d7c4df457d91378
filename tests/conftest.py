"""Shared pytest setup: the `course` marker and the repository root."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """Register the course marker (tests that need the executed notebooks of `make notebooks`)."""
    config.addinivalue_line(
        "markers", "course: needs build/ci from `make notebooks`; runs after the notebooks in `make test`"
    )


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root."""
    return ROOT
