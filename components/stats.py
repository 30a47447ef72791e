"""Estimates with 95 % intervals, and comparisons that respect them.

Every measured figure that gets compared (time, CPU time, energy and SCI per inference, the
savings of a run) is an :class:`Estimate`: a point estimate with the low and high ends of a
95 % interval. Intervals come from the percentile bootstrap over *rounds* of an interleaved
benchmark (numpy, seeded, so the same data give the same interval):

* :func:`bootstrap_median` resamples the rounds of one variant with replacement, in blocks of
  consecutive rounds (the moving-block bootstrap: rounds close in time are not independent),
  and takes the median of each resample; the 2.5 and 97.5 percentiles of those medians bound
  the interval.
* :func:`paired_bootstrap` resamples round *indices* shared by two or more variants (an
  interleaved benchmark visits every variant in every round, so round ``r`` of one variant and
  round ``r`` of another saw the same machine state) and applies a statistic to each resample;
  differences between variants then keep the pairing and are far tighter than two separate
  intervals would suggest.

Comparison rules (:func:`compare`): ``a`` is better than ``b`` on a ``"min"`` objective only
when ``a.high < b.low`` (and conversely for ``"max"``); overlapping intervals are a tie. A saving
is *significant* when its interval excludes zero (:attr:`Estimate.significant`).

Plain Python and numpy; no kfp import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

__all__ = ["CONFIDENCE", "DEFAULT_RESAMPLES", "Estimate", "block_length", "bootstrap_median", "compare",
           "paired_bootstrap"]

#: The confidence level of every interval.
CONFIDENCE = 0.95
#: Bootstrap resamples per interval: enough for stable 2.5/97.5 percentiles at this size.
DEFAULT_RESAMPLES = 2000


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its 95 % interval (``low <= estimate <= high`` is not required:
    a percentile interval of a skewed statistic may sit beside it, rarely)."""

    estimate: float
    low: float
    high: float

    def __post_init__(self) -> None:
        for name in ("estimate", "low", "high"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.low > self.high:
            raise ValueError(f"low must be <= high, got low={self.low!r} high={self.high!r}")

    @classmethod
    def exact(cls, value: float) -> Estimate:
        """A figure without noise (a count, a given intensity): a zero-width interval."""
        return cls(value, value, value)

    @property
    def significant(self) -> bool:
        """Whether the interval excludes zero (for a difference or a saving)."""
        return self.low > 0 or self.high < 0

    def scaled(self, factor: float) -> Estimate:
        values = sorted((self.low * factor, self.high * factor))
        return Estimate(self.estimate * factor, values[0], values[1])

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def to_dict(self) -> dict:
        return {"estimate": self.estimate, "low": self.low, "high": self.high}

    @classmethod
    def from_dict(cls, data: Mapping) -> Estimate:
        return cls(data["estimate"], data["low"], data["high"])

    def text(self, fmt: str = ".4g", unit: str = "") -> str:
        return f"{self.estimate:{fmt}}{unit} [{self.low:{fmt}}, {self.high:{fmt}}]"


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _check_samples(name: str, values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of numbers, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must hold finite numbers only")
    return array


def block_length(n: int) -> int:
    """The default block of consecutive rounds resampled together: ``round(sqrt(n))``."""
    return max(1, int(round(math.sqrt(n))))


def _indices(n: int, resamples: int, rng: np.random.Generator, block: int | None) -> np.ndarray:
    """Resampled round indices, shape (resamples, n): circular blocks of ``block`` consecutive
    rounds (the moving-block bootstrap; ``block=1`` is the ordinary bootstrap)."""
    size = block_length(n) if block is None else max(1, min(int(block), n))
    blocks = -(-n // size)
    starts = rng.integers(0, n, size=(int(resamples), blocks))
    return ((starts[:, :, None] + np.arange(size)) % n).reshape(int(resamples), blocks * size)[:, :n]


def _interval(statistics: np.ndarray) -> tuple[float, float]:
    tail = 100.0 * (1.0 - CONFIDENCE) / 2.0
    low, high = np.percentile(statistics, [tail, 100.0 - tail])
    return float(low), float(high)


def bootstrap_median(values: Sequence[float], *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                     block: int | None = None) -> Estimate:
    """The median of ``values`` (one per round, in time order) with its 95 % percentile-bootstrap
    interval. Rounds are resampled in circular blocks of ``block`` consecutive rounds (default
    ``round(sqrt(n))``): rounds close in time share the machine's state (a neighbour's load for a
    few seconds, a frequency step), so they are not independent, and blocks keep that drift in
    each resample instead of averaging it away. ``block=1``: the ordinary bootstrap.

    One value gives a zero-width interval (nothing to resample).
    """
    array = _check_samples("values", values)
    median = float(np.median(array))
    if array.size == 1:
        return Estimate.exact(median)
    index = _indices(array.size, resamples, _rng(seed), block)
    low, high = _interval(np.median(array[index], axis=1))
    return Estimate(median, min(low, median), max(high, median))


def paired_bootstrap(
    samples: Mapping[str, Sequence[float]],
    statistic: Callable[[Mapping[str, np.ndarray]], np.ndarray],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    block: int | None = None,
) -> Estimate:
    """A statistic of several paired series, with its 95 % interval (blocks as in
    :func:`bootstrap_median`).

    Args:
        samples: Name -> one value per round. Series of the same length are resampled with the
            same round indices (paired); a series of another length is resampled on its own.
        statistic: Takes name -> a 2-D array (resamples x rounds; the point estimate is computed
            with one row holding the data as measured) and returns one value per row.
        resamples, seed: The bootstrap's size and seed.
    """
    arrays = {name: _check_samples(f"samples[{name!r}]", values) for name, values in samples.items()}
    if not arrays:
        raise ValueError("samples must name at least one series")
    point = float(np.asarray(statistic({k: v[None, :] for k, v in arrays.items()}))[0])
    rng = _rng(seed)
    by_length: dict[int, np.ndarray] = {}
    drawn = {}
    for name, array in arrays.items():
        if array.size not in by_length:
            by_length[array.size] = _indices(array.size, resamples, rng, block)
        drawn[name] = array[by_length[array.size]]
    low, high = _interval(np.asarray(statistic(drawn), dtype=np.float64))
    return Estimate(point, min(low, point), max(high, point))


def compare(a: Estimate, b: Estimate, direction: str) -> int:
    """+1 when ``a`` is better than ``b`` beyond both intervals, -1 when worse, 0 for a tie
    (the intervals overlap). ``direction`` is ``"min"`` (smaller is better) or ``"max"``."""
    if direction not in ("min", "max"):
        raise ValueError(f"direction must be 'min' or 'max', got {direction!r}")
    if a.high < b.low:
        return 1 if direction == "min" else -1
    if a.low > b.high:
        return -1 if direction == "min" else 1
    return 0


#: Relative standard uncertainties from one run to another, which one run's rounds cannot see.
#: Measured with ``scripts/bench_selection_stability.py --processes`` (the whole flagship, each
#: run in its own process) on the project's shared 2-core machine, and rounded up:
#:
#: * ``COMMON_RUN_TO_RUN``: the machine's state (neighbours' load, frequency, caches) scales every
#:   variant's absolute figures alike; it cancels in the variants' ratio, not in grams.
#: * ``VARIANT_RUN_TO_RUN``: each variant's own share, independent between variants (a fresh
#:   process lays out memory and threads anew): it moves the variants' ratio, so it widens every
#:   benchmark interval (and selection then ties what a rerun could reverse).
#: * ``TRAINING_RUN_TO_RUN``: the fits' total energy, measured once per run.
COMMON_RUN_TO_RUN = 0.05
VARIANT_RUN_TO_RUN = 0.02
TRAINING_RUN_TO_RUN = 0.05

_Z95 = 1.959963984540054


def widened(estimate: Estimate, relative_sd: float) -> Estimate:
    """``estimate`` with a relative standard uncertainty added to each side of its interval in
    quadrature: half-width ``sqrt(h**2 + (1.96 x relative_sd x |estimate|)**2)``."""
    if isinstance(relative_sd, bool) or not isinstance(relative_sd, (int, float)) or not (
            math.isfinite(relative_sd) and 0 <= relative_sd < 1):
        raise ValueError(f"relative_sd must be a number within [0, 1), got {relative_sd!r}")
    extra = _Z95 * relative_sd * abs(estimate.estimate)
    low = estimate.estimate - math.hypot(estimate.estimate - estimate.low, extra)
    high = estimate.estimate + math.hypot(estimate.high - estimate.estimate, extra)
    return Estimate(estimate.estimate, low, high)
