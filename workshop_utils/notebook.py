"""Helpers every notebook uses: the environment report, rendering package source, headline metrics."""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import json
import os
import platform
import shutil
import sys
from pathlib import Path
from typing import Any

from .config import Profile, get_profile
from .device import DeviceInfo, pick_device, seed_everything

KEY_PACKAGES = (
    "torch",
    "transformers",
    "tokenizers",
    "datasets",
    "peft",
    "trl",
    "accelerate",
    "bitsandbytes",
)


def is_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def package_versions(names: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str]:
    """Installed version of each package, read from its metadata (importing them all costs seconds)."""
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def offline_status() -> str:
    """How the hub is configured: offline flags, and whether the network guard is on."""
    flags = [f"{k}={os.environ[k]}" for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE") if k in os.environ]
    from .offline import guard_installed

    guard = "network guard ON" if guard_installed() else "network guard off"
    return ", ".join(flags + [guard]) if flags else f"online allowed ({guard})"


def environment_report(device: DeviceInfo | None = None) -> dict[str, Any]:
    """Versions, device, dtype, offline status, RAM and disk as a dict."""
    import torch

    device = device or pick_device()
    report: dict[str, Any] = {"python": platform.python_version(), **package_versions()}
    report["device"] = str(device.device)
    report["precision"] = f"{device.precision} ({device.reason})"
    report["cpu threads"] = torch.get_num_threads()
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        report["RAM"] = f"{pages * size / 2**30:.1f} GiB"
    except (ValueError, OSError, AttributeError):
        report["RAM"] = "?"
    report["disk free"] = f"{shutil.disk_usage(Path.cwd()).free / 2**30:.1f} GiB"
    report["offline"] = offline_status()
    report["colab"] = is_colab()
    return report


def start(profile_name: str, seed: int = 0, cpu_bf16: bool = False) -> tuple[Profile, DeviceInfo]:
    """The environment cell: resolve the profile, set CPU threads, seed, pick the device, print the report."""
    import torch

    profile = get_profile(profile_name)
    if profile.setup.torch_threads:
        torch.set_num_threads(profile.setup.torch_threads)
    seed_everything(seed)
    device = pick_device(cpu_bf16=cpu_bf16)
    print(f"profile: {profile}  seed: {seed}")
    for key, value in environment_report(device).items():
        print(f"  {key:<13} {value}")
    return profile, device


def show_source(obj: Any, title: str | None = None) -> None:
    """Render the package's own source of a function or class (never a second copy in the notebook)."""
    source = inspect.getsource(obj)
    where = f"{inspect.getmodule(obj).__name__}.{getattr(obj, '__qualname__', '')}"
    try:
        from IPython.display import Markdown, display

        display(Markdown(f"**{title or where}**\n\n```python\n{source}```"))
    except ImportError:  # plain Python
        print(f"# {title or where}\n{source}")


def record_headline(notebook: str, name: str, value: float, unit: str = "") -> None:
    """Print the notebook's headline metric and, under the course runner, save it for the run table."""
    if not isinstance(value, (int, float)):
        raise TypeError(f"headline value must be a number, got {type(value).__name__}")
    print(f"HEADLINE {notebook}: {name} = {value:.6g} {unit}".rstrip())
    out_dir = os.environ.get("WORKSHOP_METRICS_DIR")
    if out_dir:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        with open(Path(out_dir) / f"{notebook}.json", "w") as f:
            json.dump({"notebook": notebook, "name": name, "value": float(value), "unit": unit}, f)


def progress(iterable=None, total: int | None = None, desc: str = "", **kw):
    """A plain-text progress bar that stays readable in exported HTML (no widgets)."""
    from tqdm.std import tqdm

    return tqdm(
        iterable, total=total, desc=desc, file=sys.stdout, mininterval=5.0, ascii=True, ncols=90, **kw
    )
