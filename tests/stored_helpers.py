"""Shared check for the readers of stored results: a file from other code (or no file) is refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from workshop_utils import provenance
from workshop_utils.finetune_report import StaleStudyError


def assert_refuses_other_code(tmp_path: Path, entry: str, inputs: dict, payload: dict,
                              load: Callable[..., dict], missing: str) -> dict:  # fmt: skip
    """Write `payload` with current provenance (loads), then with another code fingerprint (refused)."""
    prov = {**provenance.record(entry, {}, "test"), "inputs": inputs, "seconds": 1.0}
    path = tmp_path / "stored.json"
    path.write_text(json.dumps({"provenance": prov, **payload}))
    loaded = load(path, allow_other_base=True)
    path.write_text(json.dumps({"provenance": {**prov, "code": "0" * 16}, **payload}))
    with pytest.raises(StaleStudyError, match="code changed"):
        load(path, allow_other_base=True)
    with pytest.raises(StaleStudyError, match=missing):
        load(tmp_path / "missing.json")
    return loaded
