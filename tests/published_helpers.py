"""Test helper: compare a value the package computes with a published figure, at the figure's own tolerance."""

from __future__ import annotations

from typing import Any

from workshop_utils import published


def expect(file: str, key: str, computed: Any) -> None:
    """Assert `computed` agrees with figure `key` of data/published/<file>.json within its stated tolerance."""
    fig = published.figure(file, key)
    assert fig.agrees(computed), fig.describe(computed)


def expect_figure(fig: published.Figure, computed: Any) -> None:
    """Assert `computed` agrees with `fig` within its stated tolerance."""
    assert fig.agrees(computed), fig.describe(computed)
