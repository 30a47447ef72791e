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

A share measured on ``n`` independent items (accuracy: correct test rows out of ``n``) gets
the 95 % Wilson score interval (:func:`wilson_interval`): unlike the normal approximation it
stays inside [0, 1] and keeps its coverage near 0 and 1 and for small ``n``.

Arguments are checked up front; a bad one raises ValueError naming the argument and the value
(``resamples`` an integer >= 1, ``seed`` an integer >= 0, ``block`` an integer from 1 to the
number of rounds, samples of finite real numbers (not strings or booleans), a statistic that
returns one finite value per resample; a statistic that raises is wrapped in a ValueError that
keeps its exception as the cause). Numbers may be Python's or numpy's real scalars; booleans are
never numbers here, and an integer too large for a float is refused.

Comparison rules (:func:`compare`): ``a`` is better than ``b`` on a ``"min"`` objective only
when ``a.high < b.low`` (and conversely for ``"max"``); overlapping intervals are a tie. A saving
is *significant* when its interval excludes zero (:attr:`Estimate.significant`).

Plain Python and numpy; no kfp import.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from statistics import NormalDist
from typing import Callable, Mapping, Sequence

import numpy as np

from ._checks import shown as _show

__all__ = ["CONFIDENCE", "DEFAULT_RESAMPLES", "Estimate", "block_length", "bootstrap_median", "compare",
           "paired_bootstrap", "wilson_interval"]

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
            object.__setattr__(self, name, _finite_real(name, getattr(self, name)))
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
        """From ``{"estimate": ..., "low": ..., "high": ...}``; ValueError naming a missing key."""
        if not isinstance(data, Mapping):
            raise ValueError(f"data must be a mapping with keys 'estimate', 'low' and 'high', "
                             f"got {type(data).__name__}: {_show(data)}")
        missing = [key for key in ("estimate", "low", "high") if key not in data]
        if missing:
            raise ValueError(f"data is missing key(s) {', '.join(map(repr, missing))}, got keys "
                             f"{sorted(map(str, data))!r}")
        return cls(data["estimate"], data["low"], data["high"])

    def text(self, fmt: str = ".4g", unit: str = "") -> str:
        return f"{self.estimate:{fmt}}{unit} [{self.low:{fmt}}, {self.high:{fmt}}]"


def _is_real(value) -> bool:
    """A Python or numpy real scalar (np.integer, np.floating), never a bool or np.bool_."""
    return isinstance(value, (numbers.Real, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _finite_real(name: str, value) -> float:
    """``value`` as a float; ValueError naming ``name`` unless it is a finite real number (an
    integer too large for a float is not)."""
    try:
        result = float(value) if _is_real(value) else math.nan
    except OverflowError:
        result = math.nan
    if not math.isfinite(result):
        raise ValueError(f"{name} must be a finite number, got {_show(value)}")
    return result


def _rng(seed) -> np.random.Generator:
    return np.random.default_rng(_check_seed(seed))


def _check_seed(seed) -> int:
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {_show(seed)}")
    return int(seed)


def _check_samples(name: str, values: Sequence[float]) -> np.ndarray:
    """``values`` as a 1-D float array; ValueError naming ``name`` unless they are finite real
    numbers (strings, booleans and integers too large for a float are refused)."""
    problem = f"{name} must be a non-empty 1-D sequence of numbers, got"
    try:
        raw = np.asarray(values)
    except (TypeError, ValueError):
        raise ValueError(f"{problem} {_show(values)}") from None
    if raw.ndim != 1 or raw.size == 0:
        raise ValueError(f"{problem} shape {raw.shape}")
    if isinstance(values, np.ndarray):
        if values.dtype.kind not in "iufO":
            raise ValueError(f"{problem} an array of {values.dtype}")
        items = raw if values.dtype.kind == "O" else ()
    else:
        items = values
    # np.asarray would take "1" or True for a number: each item must be a real number itself
    for i, value in enumerate(items):
        if not _is_real(value):
            raise ValueError(f"{problem} {_show(value)} ({type(value).__name__}) at index {i}")
        if _not_float(value):
            raise ValueError(f"{problem} {_show(value)} at index {i}, which a float cannot hold")
    array = raw.astype(np.float64)
    _require_finite(array, f"{name} must hold finite numbers only", lambda i: f"at index {i}")
    return array


def _not_float(value) -> bool:
    """Whether a real number overflows a float (an int beyond about 1.8e308)."""
    try:
        float(value)
    except OverflowError:
        return True
    return False


def _require_finite(array: np.ndarray, problem: str, where) -> None:
    """Raise ``problem`` with the first non-finite value, ``where(index)`` it is, and how many."""
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(f"{problem}, got {float(array[bad[0]])!r} {where(int(bad[0]))} "
                         f"({bad.size} non-finite of {array.size})")


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _check_resamples(resamples) -> int:
    if not _is_int(resamples) or resamples < 1:
        raise ValueError(f"resamples must be an integer >= 1, got {_show(resamples)}")
    return int(resamples)


def _check_block(block, n: int, where: str = "") -> int:
    """The block length: ``block`` (an integer from 1 to ``n``) or the default for ``n`` rounds."""
    if block is None:
        return block_length(n)
    if not _is_int(block) or not 1 <= block <= n:
        raise ValueError(f"block must be None or an integer between 1 and the number of rounds, got {_show(block)} "
                         f"for {n} round{'s' if n != 1 else ''}{where}")
    return int(block)


def block_length(n: int) -> int:
    """The default block of consecutive rounds resampled together: ``round(sqrt(n))``."""
    return max(1, int(round(math.sqrt(n))))


def _indices(n: int, resamples: int, rng: np.random.Generator, block: int | None) -> np.ndarray:
    """Resampled round indices, shape (resamples, n): circular blocks of ``block`` consecutive
    rounds (the moving-block bootstrap; ``block=1`` is the ordinary bootstrap)."""
    resamples = _check_resamples(resamples)
    size = _check_block(block, n)
    blocks = -(-n // size)
    starts = rng.integers(0, n, size=(resamples, blocks))
    return ((starts[:, :, None] + np.arange(size)) % n).reshape(resamples, blocks * size)[:, :n]


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

    Raises:
        ValueError: ``values`` empty, not real numbers (strings and booleans are not) or not
            finite, ``resamples`` not an integer >= 1, ``seed`` not an integer >= 0, ``block`` not
            None or an integer from 1 to ``len(values)`` (the message names the value).
    """
    array = _check_samples("values", values)
    _check_resamples(resamples)
    _check_seed(seed)
    _check_block(block, array.size)
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
        resamples, seed: The bootstrap's size (an integer >= 1) and seed (an integer >= 0).
        block: Rounds per block, an integer from 1 to the shortest series' length (default
            ``round(sqrt(n))`` per length).

    Raises:
        ValueError: a bad argument, a statistic that does not return one finite value per row
            (the message names the argument and the value), or a statistic that raises
            ("statistic failed on ...: <type>: <message>", its exception chained as the cause).
    """
    if not isinstance(samples, Mapping):
        raise ValueError(f"samples must be a mapping of name to values, got {type(samples).__name__}")
    arrays = {name: _check_samples(f"samples[{name!r}]", values) for name, values in samples.items()}
    if not arrays:
        raise ValueError("samples must name at least one series, got none")
    _check_resamples(resamples)
    _check_seed(seed)
    for name, array in arrays.items():
        _check_block(block, array.size, f" (samples[{name!r}])")
    point = float(_statistic_values(statistic, {k: v[None, :] for k, v in arrays.items()}, 1, "the data")[0])
    rng = _rng(seed)
    by_length: dict[int, np.ndarray] = {}
    drawn = {}
    for name, array in arrays.items():
        if array.size not in by_length:
            by_length[array.size] = _indices(array.size, resamples, rng, block)
        drawn[name] = array[by_length[array.size]]
    low, high = _interval(_statistic_values(statistic, drawn, int(resamples), "the resamples"))
    return Estimate(point, min(low, point), max(high, point))


def _statistic_values(statistic, arrays: Mapping[str, np.ndarray], rows: int, what: str) -> np.ndarray:
    """The statistic's values, checked: one finite number per row. A statistic that raises is
    wrapped in a ValueError (one line; the exception is its cause)."""
    try:
        result = statistic(arrays)
    except Exception as exc:
        detail = " ".join(str(exc).split())
        raise ValueError(f"statistic failed on {what}: {type(exc).__name__}"
                         f"{': ' + detail if detail else ''}") from exc
    try:
        values = np.asarray(result, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"statistic must return one number per row, got {type(result).__name__} on {what}: "
                         f"{' '.join(str(exc).split())}") from None
    if values.size != rows:
        raise ValueError(f"statistic must return one number per row ({rows}), got {values.size} on {what}")
    _require_finite(values, "statistic must return finite numbers", lambda i: f"on {what}")
    return values


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> Estimate:
    """The share ``successes / n`` with its Wilson score interval (95 % by default).

    For accuracy: ``successes`` correct test rows out of ``n``. The interval
    ``(p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)`` always holds ``p`` and stays
    inside [0, 1]; ``z`` is the standard normal quantile of ``(1 + confidence) / 2``.

    Raises:
        ValueError: ``n`` not an integer >= 1 that a float can hold, ``successes`` not an integer
            from 0 to ``n``, or ``confidence`` not strictly between 0 and 1 (the message names the
            value).
    """
    if not _is_int(n) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {_show(n)}")
    if _not_float(n):
        raise ValueError(f"n must be an integer >= 1 that a float can hold, got {_show(n)}")
    if not _is_int(successes) or not 0 <= successes <= n:
        raise ValueError(f"successes must be an integer between 0 and n ({n}), got {_show(successes)}")
    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be a number strictly between 0 and 1, got {confidence!r}")
    n, p = int(n), int(successes) / int(n)
    z = NormalDist().inv_cdf(0.5 + float(confidence) / 2.0)
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n))
    denominator = 1.0 + z * z / n
    low, high = (centre - spread) / denominator, (centre + spread) / denominator
    # the interval holds p exactly; clip float round-off at p and at 0 and 1
    return Estimate(p, max(0.0, min(low, p)), min(1.0, max(high, p)))


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
#: Measured with ``scripts/bench_selection_stability.py --processes --runs 10`` (the whole
#: flagship, each run in its own process) on the project's shared 2-core machine, twice: quiet,
#: and under neighbours' load (two test suites running beside it); set at or above the larger:
#:
#: * ``COMMON_RUN_TO_RUN``: the machine's state (neighbours' load, frequency, caches) scales every
#:   variant's absolute figures alike; it cancels in the variants' ratio, not in grams. Measured:
#:   the baseline's energy per inference moved 1.7 % (quiet) and 2.7 % (loaded).
#: * ``VARIANT_RUN_TO_RUN``: each variant's own share, independent between variants (a fresh
#:   process lays out memory and threads anew): it moves the variants' ratio, so it widens every
#:   benchmark interval (and selection then ties what a rerun could reverse). Measured: the
#:   inference saving (about 45 %) moved by 0.76 points (quiet) and 1.6 points (loaded), about
#:   1 % and 2 % per variant.
#: * ``TRAINING_RUN_TO_RUN``: the fits' total energy, measured once per run; a lognormal factor
#:   (its sigma), since the spread is large and energy is never negative. Measured: 5.4 % (quiet)
#:   and 39 % (loaded): a modeled fit is charged the profile's RAM power for its wall time, and a
#:   neighbour stretches the wall time.
COMMON_RUN_TO_RUN = 0.05
VARIANT_RUN_TO_RUN = 0.03
TRAINING_RUN_TO_RUN = 0.40

_Z95 = 1.959963984540054


def widened(estimate: Estimate, relative_sd: float) -> Estimate:
    """``estimate`` with a relative standard uncertainty added to each side of its interval in
    quadrature: half-width ``sqrt(h**2 + (1.96 x relative_sd x |estimate|)**2)``.

    ``h`` is each side's own half-width, ``max(0, estimate - low)`` below and ``max(0, high -
    estimate)`` above: an estimate outside its interval (a percentile interval beside a skewed
    statistic) has no half-width on the side it lies beyond, so that side only gets the added
    uncertainty and the result always holds the estimate (never a far side pushed out by the gap).

    Raises:
        ValueError: ``estimate`` not an :class:`Estimate`, or ``relative_sd`` not a number
            within [0, 1) (the message names the argument and the value).
    """
    if not isinstance(estimate, Estimate):
        raise ValueError(f"estimate must be an Estimate, got {type(estimate).__name__}: {_show(estimate)}")
    if isinstance(relative_sd, bool) or not isinstance(relative_sd, (int, float)) or not (
            math.isfinite(relative_sd) and 0 <= relative_sd < 1):
        raise ValueError(f"relative_sd must be a number within [0, 1), got {relative_sd!r}")
    extra = _Z95 * relative_sd * abs(estimate.estimate)
    low = estimate.estimate - math.hypot(max(0.0, estimate.estimate - estimate.low), extra)
    high = estimate.estimate + math.hypot(max(0.0, estimate.high - estimate.estimate), extra)
    return Estimate(estimate.estimate, low, high)
