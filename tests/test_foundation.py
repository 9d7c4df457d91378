"""The foundation: profiles, the device rule, seeding, pins, notebook hygiene, badges, the conda file."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path
from unittest import mock

import nbformat
import numpy as np
import pytest
import tomllib
import torch
import yaml
from packaging.requirements import Requirement

from workshop_utils import config, course, device, notebook
from workshop_utils.config import PROFILE_NAMES, get_profile, resolve_profile_name

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def _notebooks() -> list[Path]:
    return sorted(p for p in (ROOT / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def _pins(path: Path) -> dict[str, str]:
    """{normalized name: version} of the `name==version` lines of a constraints file."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[re.sub(r"[-_.]+", "-", name.strip().lower())] = version.strip()
    return pins


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.lower())


# ---------------------------------------------------------------------------------------------- profiles
@pytest.mark.parametrize("section", config.sections())
def test_every_section_defines_every_profile_with_the_same_sizes(section: str) -> None:
    """A notebook reading profile.<section>.<size> must work in ci, cpu and gpu alike."""
    keys = {p: set(getattr(get_profile(p), section)) for p in PROFILE_NAMES}
    assert keys["ci"], f"section {section!r} is empty"
    assert keys["ci"] == keys["cpu"] == keys["gpu"], f"section {section!r} sizes differ by profile: {keys}"


@pytest.mark.parametrize("bad", ["laptop", "", "CI-fast", None, 3])
def test_unknown_profile_is_an_error_naming_the_valid_ones(bad) -> None:
    with pytest.raises(ValueError) as err:
        get_profile(bad)
    for name in ("ci", "cpu", "gpu", "auto"):
        assert name in str(err.value)


def test_profile_names_resolve_case_insensitively_and_auto_follows_cuda() -> None:
    assert get_profile("CI").name == "ci"
    with mock.patch("torch.cuda.is_available", return_value=True):
        assert resolve_profile_name("auto") == "gpu"
    with mock.patch("torch.cuda.is_available", return_value=False):
        profile = get_profile("auto")
    assert (profile.name, profile.requested) == ("cpu", "auto")
    assert get_profile("ci").budget_seconds == 90 and get_profile("gpu").budget_seconds == 600


def test_missing_section_or_size_names_the_valid_ones() -> None:
    profile = get_profile("ci")
    with pytest.raises(AttributeError, match="valid"):
        profile.no_such_section  # noqa: B018
    with pytest.raises(AttributeError, match="matmul_n"):
        profile.setup.no_such_size  # noqa: B018


# ------------------------------------------------------------------------------------------ device rule
def _fake_cuda(capability: tuple[int, int], name: str):
    return (
        mock.patch("torch.cuda.is_available", return_value=True),
        mock.patch("torch.cuda.get_device_capability", return_value=capability),
        mock.patch("torch.cuda.get_device_name", return_value=name),
    )


def test_device_rule_t4_is_fp16_with_grad_scaler() -> None:
    a, b, c = _fake_cuda((7, 5), "Tesla T4")
    with a, b, c:
        info = device.pick_device()
    assert info.device.type == "cuda"
    assert (info.precision, info.autocast_dtype, info.use_grad_scaler) == ("fp16", torch.float16, True)


@pytest.mark.parametrize("capability", [(8, 0), (9, 0)])
def test_device_rule_ampere_and_newer_is_bf16_without_scaler(capability) -> None:
    a, b, c = _fake_cuda(capability, "A100")
    with a, b, c:
        info = device.pick_device()
    assert (info.precision, info.use_grad_scaler) == ("bf16", False)


def test_device_rule_cpu_is_fp32_and_bf16_only_on_request() -> None:
    with mock.patch("torch.cuda.is_available", return_value=False):
        plain, fast = device.pick_device(), device.pick_device(cpu_bf16=True)
    assert (plain.device.type, plain.precision, plain.use_grad_scaler) == ("cpu", "fp32", False)
    assert fast.precision == "bf16"
    assert not plain.grad_scaler().is_enabled()
    with plain.autocast():  # fp32: a no-op context
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    with fast.autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16


def test_force_cpu_overrides_cuda() -> None:
    a, b, c = _fake_cuda((8, 0), "A100")
    with a, b, c:
        assert device.pick_device(force_cpu=True).device.type == "cpu"


# ------------------------------------------------------------------------------------------------ seeding
def _draw() -> tuple[float, float, list[float]]:
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


def test_seed_everything_is_deterministic_and_seed_dependent() -> None:
    device.seed_everything(7)
    first = _draw()
    device.seed_everything(7)
    assert _draw() == first
    device.seed_everything(8)
    assert _draw() != first
    g1, g2 = device.generator(5), device.generator(5)
    assert torch.equal(torch.randint(0, 100, (10,), generator=g1), torch.randint(0, 100, (10,), generator=g2))


@pytest.mark.parametrize("bad", [-1, 1.5, "0", None])
def test_seed_rejects_bad_values(bad) -> None:
    with pytest.raises(ValueError, match="seed"):
        device.seed_everything(bad)


# ------------------------------------------------------------------------------------------ environment
def test_constraints_pin_cpu_torch_and_colab_keeps_its_own() -> None:
    pins = _pins(ROOT / "constraints.txt")
    assert pins.get("torch") == "2.13.0"
    colab = _pins(ROOT / "constraints-colab.txt")
    assert "torch" not in colab and "bitsandbytes" not in colab
    assert not any(n.startswith(("nvidia-", "triton")) for n in colab)
    assert {k: v for k, v in pins.items() if k in colab} == colab, "Colab pins must equal the tested pins"


def test_lock_check_passes() -> None:
    result = subprocess.run([PY, "tools/lock.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    """pyproject's ranges (core + extras) each have a tested pin in constraints.txt that satisfies them."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _pins(ROOT / "constraints.txt")
    declared = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared += extra
    problems = []
    for spec in declared:
        req = Requirement(spec)
        version = pins.get(_norm(req.name))
        if version is None:
            problems.append(f"{req.name}: not pinned in constraints.txt")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name}: pin {version} outside {req.specifier}")
    assert not problems, problems


def test_environment_yml_agrees_with_pyproject_and_constraints() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    conda_deps = [d for d in env["dependencies"] if isinstance(d, str)]
    pip_lines = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    python = next(d for d in conda_deps if d.startswith("python"))
    version = python.split("=")[-1]
    assert version == "3.11", "the pins in constraints.txt were tested on Python 3.11"
    assert Requirement(f"x{project['requires-python']}").specifier.contains(version + ".0")
    assert "Python 3.11" in (ROOT / "constraints.txt").read_text().splitlines()[0]
    assert "pip" in conda_deps
    # Everything the package needs comes from pyproject through `-e .[extras]`, pinned by constraints.txt.
    assert "-c constraints.txt" in pip_lines and (ROOT / "constraints.txt").is_file()
    editable = [ln for ln in pip_lines if ln.startswith("-e")]
    assert len(editable) == 1
    extras = re.search(r"\.\[([^\]]*)\]", editable[0])
    assert extras, f"no extras in {editable[0]!r}"
    for extra in extras.group(1).split(","):
        assert extra.strip() in project["optional-dependencies"], f"unknown extra {extra!r}"
    # Any package listed by name (conda or pip) must be one pyproject declares, with the tested pin.
    declared = {_norm(Requirement(s).name) for s in project["dependencies"]}
    pins = _pins(ROOT / "constraints.txt")
    for line in pip_lines:
        if line.startswith("-"):
            continue
        req = Requirement(line)
        assert _norm(req.name) in declared, (
            f"environment.yml installs {req.name}, pyproject does not declare it"
        )
        assert req.specifier.contains(pins[_norm(req.name)]), f"{line} disagrees with constraints.txt"
    for dep in conda_deps:
        name = re.split(r"[=<>!]", dep)[0]
        assert name in ("python", "pip"), f"conda package {name!r} bypasses pyproject/constraints"


def test_dev_extra_includes_the_test_tools() -> None:
    dev = {
        _norm(Requirement(s).name)
        for s in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"][
            "dev"
        ]
    }
    assert {"pytest", "papermill", "nbconvert", "nbstripout", "ruff", "jupytext"} <= dev


def test_ci_entry_point_runs_exactly_the_readme_test_command() -> None:
    commands = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if ln and not ln.startswith("#")]
    assert commands[-1].strip() == "make test"
    assert (
        "make test" in (ROOT / "README.md").read_text() and "make course" in (ROOT / "README.md").read_text()
    )


# ------------------------------------------------------------------------------------- notebook hygiene
def test_there_are_notebooks() -> None:
    assert (ROOT / "notebooks" / "00_setup.ipynb").is_file()
    listed = {m.notebook for m in course.MODULES}
    for path in _notebooks():
        if "solutions" not in path.parts:
            assert path.name in listed, f"{path.name} is not in workshop_utils.course.MODULES"


def test_sync_notebooks_check_passes() -> None:
    result = subprocess.run(
        [PY, "tools/sync_notebooks.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.name)
def test_badge_points_at_the_notebook_itself(path: Path) -> None:
    rel = path.relative_to(ROOT).as_posix()
    md = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
    urls = re.findall(r"\]\((https://colab\.research\.google\.com/github/[^)]+)\)", md.source)
    assert urls == [course.colab_url(rel)], f"{rel}: badge URLs {urls}"
    assert course.GITHUB_SLUG in urls[0] and urls[0].endswith(rel)


def test_github_slug_is_defined_in_one_place() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    holders = [f for f in tracked if course.GITHUB_SLUG in (ROOT / f).read_text(errors="replace")]
    assert holders == ["workshop_utils/course.py"], holders


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.name)
def test_parameters_cell_and_no_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    assert re.search(r'^PROFILE = "auto"', params[0].source, re.M), (
        "the parameters cell sets PROFILE = 'auto'"
    )
    assert code[0].source.strip() == course.colab_setup_source().strip(), "first code cell = Colab setup cell"
    for cell in code:
        assert not cell.get("outputs") and cell.get("execution_count") is None, (
            "outputs must not be committed"
        )
    assert "papermill" not in nb.metadata


def test_committed_notebooks_have_no_outputs() -> None:
    """What is in git (HEAD), not just the working tree, is free of outputs."""
    tracked = subprocess.run(
        ["git", "ls-files", "notebooks/*.ipynb", "notebooks/**/*.ipynb"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.split()
    committed = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", "HEAD", "notebooks"], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    for rel in sorted(set(tracked) & set(committed)):
        text = subprocess.run(["git", "show", f"HEAD:{rel}"], cwd=ROOT, capture_output=True, text=True).stdout
        nb = nbformat.reads(text, as_version=4)
        dirty = [
            i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)
        ]
        assert not dirty, f"{rel}: committed with outputs in cells {dirty}"


def test_colab_setup_cell_is_lint_clean_and_a_noop_outside_colab() -> None:
    source = course.colab_setup_source()
    formatted = subprocess.run(
        [str(Path(PY).parent / "ruff"), "format", "--stdin-filename", "notebooks/cell.py", "-"],
        cwd=ROOT,
        input=source + "\n",
        capture_output=True,
        text=True,
    )
    assert formatted.returncode == 0 and formatted.stdout == source + "\n", (
        "ruff format would change the cell"
    )
    assert "constraints-colab.txt" in source and "torch" not in source.replace("Colab's own torch", "")
    with mock.patch("subprocess.run") as run, mock.patch.dict(sys.modules):
        sys.modules.pop("google.colab", None)
        exec(compile(source, "setup-cell", "exec"), {})  # noqa: S102 - our own generated cell
    run.assert_not_called()


# ------------------------------------------------------------------------------------ notebook helpers
def test_record_headline_writes_json_for_the_run_table(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("WORKSHOP_METRICS_DIR", str(tmp_path / "metrics"))
    notebook.record_headline("99_test", "val loss", 1.234567, "nats")
    data = json.loads((tmp_path / "metrics" / "99_test.json").read_text())
    assert data == {"notebook": "99_test", "name": "val loss", "value": 1.234567, "unit": "nats"}
    assert "HEADLINE 99_test: val loss = 1.23457 nats" in capsys.readouterr().out
    with pytest.raises(TypeError, match="number"):
        notebook.record_headline("99_test", "val loss", "1.2")


def test_record_headline_without_runner_writes_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("WORKSHOP_METRICS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    notebook.record_headline("99_test", "x", 1.0)
    assert not list(tmp_path.rglob("*.json"))


def test_show_source_renders_the_package_source() -> None:
    shown = []
    with mock.patch("IPython.display.display", side_effect=shown.append):
        notebook.show_source(device.seed_everything)
    text = shown[0].data
    assert "workshop_utils.device.seed_everything" in text
    assert "def seed_everything(seed: int) -> None:" in text and "torch.manual_seed(seed)" in text


def test_progress_is_plain_text() -> None:
    bar = notebook.progress(range(3), desc="x")
    assert type(bar).__module__ == "tqdm.std" and bar.ascii is True
    assert list(bar) == [0, 1, 2]
