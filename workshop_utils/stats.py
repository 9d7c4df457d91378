"""Effects with error bars: one way for every comparison of the course to say "A beats B" or not.

A fine-tuning result on a tiny model has two sources of noise: the training run (seed: data order and
initialisation) and the finite test set (which examples happened to be drawn). Every estimate here comes
from a matrix of per-example values, one row per seed, all rows on the *same* test examples:

    values: (S seeds, N examples), e.g. each example's mean answer-token loss after one training run

and its standard error combines both sources: the spread of the S per-seed means (seed noise) and the
spread over the N per-example means (test-set noise), added in quadrature. A difference between two arms
is paired by example (the same examples cancel their difficulty) and unpaired by seed (independent runs).
A difference is *stated* only when it exceeds `Z` standard errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

Z = 2.0  # a difference is called only beyond 2 standard errors (about 95 % two-sided)


@dataclass(frozen=True)
class Estimate:
    """A mean with its standard error, and how many seeds and examples it rests on."""

    mean: float
    se: float
    n_seeds: int
    n_examples: int

    def __str__(self) -> str:
        return f"{self.mean:.3f} ± {self.se:.3f}"

    def exceeds(self, threshold: float = 0.0, z: float = Z) -> bool:
        """Is the estimate above `threshold` by more than z standard errors?"""
        return self.mean - z * self.se > threshold

    def below(self, threshold: float = 0.0, z: float = Z) -> bool:
        """Is the estimate below `threshold` by more than z standard errors?"""
        return self.mean + z * self.se < threshold


def _as_matrix(values, name: str) -> torch.Tensor:
    """values as a float64 (S, N) tensor; a 1-D input is one seed."""
    t = torch.as_tensor(values, dtype=torch.float64)
    t = t.unsqueeze(0) if t.dim() == 1 else t
    if t.dim() != 2 or t.numel() == 0:
        raise ValueError(f"{name} must be a non-empty (seeds, examples) matrix, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} has non-finite values")
    return t


def _sem(x: torch.Tensor) -> float:
    """Standard error of the mean of a 1-D tensor (0 for a single value)."""
    return float(x.std(unbiased=True) / math.sqrt(x.numel())) if x.numel() > 1 else 0.0


def _paired(a, b, names: tuple[str, str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Two (S, N) matrices on the same N examples (seed counts may differ)."""
    a, b = _as_matrix(a, names[0]), _as_matrix(b, names[1])
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{names[0]} and {names[1]} must be on the same examples: {a.shape[1]} vs {b.shape[1]} columns"
        )
    return a, b


def estimate(values) -> Estimate:
    """Mean over seeds and examples; SE from seed spread and example spread combined."""
    v = _as_matrix(values, "values")
    seed_se, example_se = _sem(v.mean(1)), _sem(v.mean(0))
    return Estimate(float(v.mean()), math.hypot(seed_se, example_se), v.shape[0], v.shape[1])


def difference(a, b) -> Estimate:
    """a - b, paired by example (same test examples), independent by seed (separate runs)."""
    a, b = _paired(a, b, ("a", "b"))
    seed_se = math.hypot(_sem(a.mean(1)), _sem(b.mean(1)))
    example_se = _sem(a.mean(0) - b.mean(0))
    n_seeds = min(a.shape[0], b.shape[0])
    return Estimate(float(a.mean() - b.mean()), math.hypot(seed_se, example_se), n_seeds, a.shape[1])


def ratio(num, den) -> Estimate:
    """mean(num) / mean(den) with a delta-method SE (paired examples, independent seeds), e.g. gain recovered."""
    num, den = _paired(num, den, ("num", "den"))
    d = float(den.mean())
    if abs(d) < 1e-12:
        raise ValueError("the denominator's mean is zero: no ratio")
    r = float(num.mean()) / d
    example_se = _sem((num.mean(0) - r * den.mean(0)) / d)  # linearised per-example contribution
    seed_se = math.hypot(_sem(num.mean(1)), r * _sem(den.mean(1))) / abs(d)
    n_seeds = min(num.shape[0], den.shape[0])
    return Estimate(r, math.hypot(seed_se, example_se), n_seeds, num.shape[1])


def verdict(est: Estimate, threshold: float, z: float = Z) -> str:
    """ "holds" (above threshold by > z SE), "does not hold" (below by > z SE), else "underpowered"."""
    if est.exceeds(threshold, z):
        return "holds"
    if est.below(threshold, z):
        return "does not hold"
    return "underpowered"


def compare(a, b, lower_is_better: bool = True, z: float = Z) -> tuple[Estimate, str]:
    """a - b with a sentence: which arm is better, or that the difference is within the noise."""
    d = difference(a, b)
    if abs(d.mean) <= z * d.se:
        return d, f"no difference beyond {z:g} standard errors ({d})"
    a_better = (d.mean < 0) == lower_is_better
    return (
        d,
        f"{'first' if a_better else 'second'} is better by {abs(d.mean):.3f} ± {d.se:.3f} ({abs(d.mean) / d.se:.1f} SE)",
    )
