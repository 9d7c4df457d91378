"""Live-session fast path: store, checked load, hash mismatch, provenance, bad input."""

from __future__ import annotations

import json

import pytest
import torch

from workshop_utils import fastpath
from workshop_utils.config import get_profile
from workshop_utils.fastpath import FastPathError, artifact_paths, cached_result

NB = "06_scaling_laws.ipynb"


@pytest.fixture(autouse=True)
def _artifacts(tmp_path, monkeypatch):
    """Every test stores under its own artifacts root."""
    monkeypatch.setenv("WORKSHOP_ARTIFACTS", str(tmp_path))


class Counter:
    """A compute function that counts its calls."""

    def __init__(self, value):
        self.value, self.calls = value, 0

    def __call__(self):
        self.calls += 1
        return self.value


def _run(fn, fast_path, key="sweep", budget_s=60.0, produced_by=NB, profile="ci", inputs=None):
    return cached_result(
        key,
        fn,
        profile=profile,
        budget_s=budget_s,
        produced_by=produced_by,
        fast_path=fast_path,
        inputs=inputs,
    )


def test_compute_store_then_load_with_visible_note(capsys, tmp_path) -> None:
    payload = {"losses": [3.25, 2.5, 1.125], "n_opt": 40.3e9, "label": "ok", "nested": {"k": None, "b": True}}
    fn = Counter(payload)
    assert _run(fn, fast_path=False) == payload and fn.calls == 1
    paths = artifact_paths("sweep", "ci")
    assert paths["json"].parent == tmp_path / "ci" / "fastpath"
    meta = json.loads(paths["meta"].read_text())
    prov = meta["provenance"]
    assert prov["command"] == NB and meta["format"] == "json" and meta["profile"] == "ci"
    assert meta["sha256"] == fastpath._sha256(paths["json"]) and meta["seconds"] >= 0
    assert prov["created"].endswith("UTC") and prov["commit"] and prov["entry_module"].endswith("Counter")
    from workshop_utils import provenance  # one provenance format for every stored result

    assert set(prov) == set(provenance.record("workshop_utils.stats", {}, "test"))

    capsys.readouterr()
    loaded = _run(fn, fast_path=True)
    assert loaded == payload and fn.calls == 1  # loaded, not recomputed
    assert list(loaded) == list(payload)  # key order too (a DataFrame built from it keeps its columns)
    out = capsys.readouterr().out
    assert f"loaded precomputed result [sweep] from {prov['created']}, produced by {NB}" in out


def test_fast_path_off_always_recomputes_and_refreshes(capsys) -> None:
    fn = Counter([1, 2])
    _run(fn, fast_path=False)
    _run(fn, fast_path=False)
    assert fn.calls == 2 and "loaded precomputed" not in capsys.readouterr().out


def test_fast_path_on_without_artifact_computes_and_says_so(capsys) -> None:
    fn = Counter({"a": 1})
    assert _run(fn, fast_path=True) == {"a": 1} and fn.calls == 1
    assert "no precomputed result for 'sweep'" in capsys.readouterr().out
    assert artifact_paths("sweep", "ci")["meta"].exists()


def test_over_budget_prints_a_warning(capsys) -> None:
    def slow():
        import time

        time.sleep(0.05)
        return 1

    _run(slow, fast_path=False, budget_s=0.001)
    assert "WARNING: 'sweep' took" in capsys.readouterr().out


def test_tampered_payload_is_an_error_not_a_recompute() -> None:
    fn = Counter({"loss": 1.5})
    _run(fn, fast_path=False)
    path = artifact_paths("sweep", "ci")["json"]
    path.write_text(path.read_text().replace("1.5", "1.4"))
    with pytest.raises(FastPathError, match="sha256 mismatch"):
        _run(fn, fast_path=True)
    assert fn.calls == 1


def test_missing_payload_or_broken_sidecar_is_an_error() -> None:
    fn = Counter([1])
    _run(fn, fast_path=False)
    paths = artifact_paths("sweep", "ci")
    paths["meta"].write_text("{not json")
    with pytest.raises(FastPathError, match="unreadable sidecar"):
        _run(fn, fast_path=True)
    _run(fn, fast_path=False)
    paths["json"].unlink()
    with pytest.raises(FastPathError, match="is missing"):
        _run(fn, fast_path=True)


def test_other_producer_or_changed_code_is_an_error() -> None:
    _run(Counter([1]), fast_path=False)
    with pytest.raises(FastPathError, match="produced by '06_scaling_laws.ipynb'"):
        _run(Counter([1]), fast_path=True, produced_by="bench_other.py")

    _run(lambda: [1], fast_path=False, key="k2")
    with pytest.raises(FastPathError, match="computing code changed"):
        _run(lambda: [2], fast_path=True, key="k2")


def test_result_of_other_inputs_is_an_error_naming_them() -> None:
    fn = Counter([1.5])
    _run(fn, fast_path=False, inputs={"seed": 0, "base": "abc"})
    assert json.loads(artifact_paths("sweep", "ci")["meta"].read_text())["provenance"]["inputs"] == {
        "seed": 0,
        "base": "abc",
    }
    assert _run(fn, fast_path=True, inputs={"seed": 0, "base": "abc"}) == [1.5] and fn.calls == 1
    with pytest.raises(FastPathError, match=r"other inputs \(seed: stored \[0\], now \[1\]\)"):
        _run(fn, fast_path=True, inputs={"seed": 1, "base": "abc"})
    with pytest.raises(FastPathError, match="other inputs"):
        _run(fn, fast_path=True)  # no inputs now: differs from the stored ones
    assert fn.calls == 1


def test_sidecar_without_inputs_is_malformed() -> None:
    _run(Counter([1]), fast_path=False)
    meta_path = artifact_paths("sweep", "ci")["meta"]
    meta = json.loads(meta_path.read_text())
    del meta["provenance"]["inputs"]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(FastPathError, match=r"malformed \(missing \['provenance.inputs'\]\)"):
        _run(Counter([1]), fast_path=True)


def test_weights_round_trip_with_hash_check(tmp_path) -> None:
    model = torch.nn.Linear(3, 2)
    path = tmp_path / "w" / "model.safetensors"
    sha = fastpath.save_weights(model.state_dict(), path)
    assert sha == fastpath._sha256(path)
    loaded = fastpath.load_weights(path, sha)
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())
    with pytest.raises(FastPathError, match="differs from the stored run's"):
        fastpath.load_weights(path, "0" * 64)
    with pytest.raises(FastPathError, match="are missing"):
        fastpath.load_weights(tmp_path / "nope.safetensors", sha)
    with pytest.raises(TypeError, match="state must be a non-empty dict of tensors"):
        fastpath.save_weights({}, path)


def test_weights_of_a_model_with_tied_embeddings_round_trip(tmp_path) -> None:
    emb = torch.nn.Embedding(5, 3)
    head = torch.nn.Linear(3, 5, bias=False)
    head.weight = emb.weight  # tied, as in GPT-2, BERT and T5
    model = torch.nn.ModuleDict({"emb": emb, "head": head})
    sha = fastpath.save_weights(model.state_dict(), tmp_path / "tied.safetensors")
    fresh = torch.nn.ModuleDict({"emb": torch.nn.Embedding(5, 3), "head": torch.nn.Linear(3, 5, bias=False)})
    fresh.head.weight = fresh.emb.weight
    fresh.load_state_dict(fastpath.load_weights(tmp_path / "tied.safetensors", sha))
    assert torch.equal(fresh.head.weight, emb.weight) and fresh.head.weight is fresh.emb.weight


def test_tensor_dict_round_trips_through_safetensors() -> None:
    gen = torch.Generator().manual_seed(0)
    tensors = {"w": torch.randn(4, 3, generator=gen), "ids": torch.arange(5)}
    fn = Counter(tensors)
    _run(fn, fast_path=False, key="weights")
    paths = artifact_paths("weights", "ci")
    assert paths["safetensors"].exists() and not paths["json"].exists()
    loaded = _run(Counter(tensors), fast_path=True, key="weights")  # same class: same code
    assert set(loaded) == {"w", "ids"} and all(torch.equal(loaded[k], tensors[k]) for k in tensors)


def test_profile_object_and_profiles_are_separate(tmp_path) -> None:
    _run(Counter([1]), fast_path=False, profile=get_profile("cpu"))
    assert (tmp_path / "cpu" / "fastpath" / "sweep.json").exists()
    assert not (tmp_path / "ci" / "fastpath" / "sweep.json").exists()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"key": ""}, ValueError, "key must be"),
        ({"key": "../escape"}, ValueError, "key must be"),
        ({"compute_fn": 3}, TypeError, "compute_fn must be a callable"),
        ({"profile": "tpu"}, ValueError, r"profile must be one of \('ci', 'cpu', 'gpu'\)"),
        ({"profile": "auto"}, ValueError, "profile must be one of"),
        ({"budget_s": 0}, ValueError, "budget_s must be"),
        ({"budget_s": float("nan")}, ValueError, "budget_s must be"),
        ({"budget_s": True}, ValueError, "budget_s must be"),
        ({"produced_by": " "}, ValueError, "produced_by must name"),
        ({"fast_path": "yes"}, TypeError, "fast_path must be True or False"),
        ({"inputs": [0]}, TypeError, "inputs must be a dict"),
        ({"inputs": {"seed": (0,)}}, TypeError, r"inputs\['seed'\] has type tuple"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, match) -> None:
    args = {"key": "k", "compute_fn": lambda: 1, "profile": "ci", "budget_s": 1.0, "produced_by": NB}
    args.update({"fast_path": False} | kwargs)
    key, fn = args.pop("key"), args.pop("compute_fn")
    with pytest.raises(error, match=match):
        cached_result(key, fn, **args)


@pytest.mark.parametrize(
    ("result", "match"),
    [
        ((1, 2), "type tuple"),
        ({1: "a"}, "non-string key"),
        ([float("nan")], "NaN/inf"),
        ({"x": object()}, r"result\['x'\] has type object"),
    ],
)
def test_non_json_results_are_refused_and_nothing_is_stored(result, match) -> None:
    with pytest.raises((TypeError, ValueError), match=match):
        _run(lambda: result, fast_path=False, key="bad")
    assert not artifact_paths("bad", "ci")["meta"].exists()


def test_a_change_in_any_package_function_refuses_the_stored_result(tmp_path, monkeypatch) -> None:
    """Issue 16: the key covers the whole package, not just the wrapping function's source."""
    import shutil

    from workshop_utils import provenance

    def compute() -> dict:
        return {"loss": 1.5}

    _run(compute, fast_path=False)
    assert _run(compute, fast_path=True) == {"loss": 1.5}  # unchanged code: loads
    copy = tmp_path / "pkg" / "workshop_utils"
    shutil.copytree(provenance._module_file("workshop_utils").parent, copy)
    training = copy / "training.py"
    training.write_text(
        training.read_text().replace("min_lr_ratio: float = 0.1", "min_lr_ratio: float = 0.2")
    )
    real = provenance._module_file
    monkeypatch.setattr(
        provenance, "_module_file", lambda n: copy / "__init__.py" if n == "workshop_utils" else real(n)
    )
    with pytest.raises(FastPathError, match="computing code changed"):
        _run(compute, fast_path=True)


def test_no_fallback_fingerprint_without_source() -> None:
    with pytest.raises(FastPathError, match="cannot read the source"):
        fastpath.fingerprint(eval("lambda: 1"))  # noqa: S307 - a function whose source cannot be read


def test_a_loaded_result_is_labelled_stored_and_a_computed_one_live(capsys) -> None:
    """Outputs can say where a result came from; the runner finds the loads in an executed notebook."""
    fn = Counter({"a": 1})
    _run(fn, fast_path=False)
    assert fastpath.origin("sweep") is None and fastpath.origin_label("sweep") == "live run"
    _run(fn, fast_path=True)
    meta = json.loads(artifact_paths("sweep", "ci")["meta"].read_text())
    assert fastpath.origin("sweep") == meta
    prov = meta["provenance"]
    assert fastpath.origin_label("sweep") == f"stored run of {prov['created']}, commit {prov['commit']}"
    printed = capsys.readouterr().out
    nb = {"cells": [{"cell_type": "code", "outputs": [{"name": "stdout", "text": printed.splitlines(True)}]},
                    {"cell_type": "markdown"}]}  # fmt: skip
    assert fastpath.loaded_keys(nb) == ["sweep"]
    _run(fn, fast_path=False)  # computed again: live again
    assert fastpath.origin_label("sweep") == "live run"
    assert fastpath.loaded_keys({"cells": []}) == []
    with pytest.raises(TypeError, match="executed_nb"):
        fastpath.loaded_keys([])
