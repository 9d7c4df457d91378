"""The network guard and offline mode: a hub call in the ci/cpu profiles fails loudly and at once, never hangs.

Elapsed-time bounds here are hang detectors (a blocked call returns in milliseconds; an unguarded hub call
retries for ~48 s), not performance assertions.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

from workshop_utils.course import kernel_config
from workshop_utils.offline import (
    NetworkBlockedError,
    guard_installed,
    install_network_guard,
    remove_network_guard,
)

ROOT = Path(__file__).resolve().parents[1]
HANG_LIMIT_S = 5.0
# Notebooks whose headline metric must be identical when run twice in the same profile (00's matmul speed is
# a timing, so it is not here). Add each module whose headline is a seeded computation.
DETERMINISTIC = ["01_architecture_evolution.ipynb"]


@pytest.fixture
def guard():
    """The guard installed in this process for one test."""
    install_network_guard()
    try:
        yield
    finally:
        remove_network_guard()
    assert not guard_installed()


def _guard_env() -> dict[str, str]:
    """The environment the course runner gives guarded kernels."""
    path = os.pathsep.join(filter(None, [str(ROOT / "tools" / "guard"), os.environ.get("PYTHONPATH", "")]))
    return {
        "PYTHONPATH": path,
        "WORKSHOP_NETWORK_GUARD": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }


@pytest.mark.parametrize("address", [("93.184.216.34", 443), ("2606:4700::6810:84e5", 443)])
def test_guard_blocks_outbound_connect_at_once(guard, address) -> None:
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    t0 = time.perf_counter()
    with socket.socket(family, socket.SOCK_STREAM) as s, pytest.raises(NetworkBlockedError, match=address[0]):
        s.connect(address)
    with socket.socket(family, socket.SOCK_STREAM) as s, pytest.raises(NetworkBlockedError):
        s.connect_ex(address)
    assert time.perf_counter() - t0 < HANG_LIMIT_S


def test_guard_blocks_name_lookup(guard) -> None:
    assert guard_installed()
    with pytest.raises(NetworkBlockedError, match="huggingface.co"):
        socket.getaddrinfo("huggingface.co", 443)
    with pytest.raises(NetworkBlockedError):
        socket.create_connection(("huggingface.co", 443), timeout=5)


def test_guard_allows_loopback(guard) -> None:
    """torchrun ranks and the Jupyter kernel talk over 127.0.0.1: that must keep working."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()[0]))
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(b"ok")
        thread.join(timeout=5)
        assert accepted and accepted[0].recv(2) == b"ok"
        assert socket.getaddrinfo("localhost", port)  # loopback names resolve
    finally:
        for conn in accepted:
            conn.close()
        server.close()


def test_guard_is_off_unless_installed() -> None:
    assert not guard_installed()


def _tiny_notebook(path: Path, source: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_notebook_under_the_guard_fails_loudly_and_fast(tmp_path, monkeypatch) -> None:
    """A notebook kernel started like the course runner starts it cannot reach the hub."""
    import papermill as pm

    for key, value in _guard_env().items():
        monkeypatch.setenv(key, value)
    src = tmp_path / "reach_hub.ipynb"
    _tiny_notebook(
        src,
        "import socket, time\n"
        "t0 = time.perf_counter()\n"
        "try:\n"
        '    socket.create_connection(("huggingface.co", 443), timeout=5)\n'
        "finally:\n"
        '    print(f"failed after {time.perf_counter() - t0:.3f} s")',
    )
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(
            str(src),
            str(tmp_path / "out.ipynb"),
            kernel_name="python3",
            progress_bar=False,
            cwd=str(tmp_path),
            config=kernel_config(),
        )
    assert err.value.ename == "NetworkBlockedError", err.value
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    text = "".join(o.get("text", "") for o in out.cells[-1].outputs if o.output_type == "stream")
    seconds = float(text.split("failed after ")[1].split()[0])
    assert seconds < HANG_LIMIT_S


def test_hub_load_with_offline_flag_fails_at_once(tmp_path) -> None:
    """With HF_HUB_OFFLINE=1 and an empty cache, from_pretrained raises before it opens any socket.

    The guard is on as well: if offline mode ever regressed, the error would be NetworkBlockedError (and the
    test would say so) instead of a 48 s retry loop.
    """
    env = {**os.environ, **_guard_env(), "HF_HOME": str(tmp_path / "hf"), "TRANSFORMERS_VERBOSITY": "error"}
    code = (
        "import time, json\n"
        "from transformers import AutoConfig\n"
        "t0 = time.perf_counter()\n"
        "try:\n"
        '    AutoConfig.from_pretrained("gpt2")\n'
        '    r = {"error": None}\n'
        "except Exception as e:\n"
        '    r = {"error": type(e).__name__, "msg": str(e)[:300]}\n'
        'r["seconds"] = time.perf_counter() - t0\n'
        "print(json.dumps(r))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["error"] is not None, "loading gpt2 offline from an empty cache must fail"
    assert result["error"] != "NetworkBlockedError", f"offline mode did not stop the hub call: {result}"
    assert result["error"] in ("OSError", "LocalEntryNotFoundError", "EnvironmentError"), result
    assert result["seconds"] < HANG_LIMIT_S, result


# ---------------------------------------------------------------------------------- determinism (course)
@pytest.mark.course
@pytest.mark.parametrize("name", DETERMINISTIC)
def test_notebook_headline_is_identical_on_a_second_run(name, tmp_path, monkeypatch) -> None:
    """Same profile, same seed -> the same headline metric as the course run in build/ci."""
    import papermill as pm

    src = ROOT / "notebooks" / name
    first = ROOT / "build" / "ci" / "metrics" / f"{Path(name).stem}.json"
    if not src.exists():
        pytest.skip(f"{name} does not exist yet")
    if not first.exists():
        pytest.fail(f"{first} missing: run `make notebooks` (the ci course run) first")
    for key, value in _guard_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("WORKSHOP_METRICS_DIR", str(tmp_path / "metrics"))
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    pm.execute_notebook(
        str(src),
        str(tmp_path / name),
        parameters={"PROFILE": "ci"},
        kernel_name="python3",
        cwd=str(src.parent),
        progress_bar=False,
        config=kernel_config(),
    )
    again = json.loads((tmp_path / "metrics" / first.name).read_text())
    before = json.loads(first.read_text())
    assert (again["name"], again["unit"]) == (before["name"], before["unit"])
    # Seeded CPU runs with the same thread count are bit-identical; 1e-9 only absorbs JSON float printing.
    assert math.isclose(again["value"], before["value"], rel_tol=1e-9), (before, again)
