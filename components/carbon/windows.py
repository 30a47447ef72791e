"""Greenest-window search with the Carbon Aware SDK's semantics.

Candidate windows of the job's length start at the requested start and step by the series'
granularity; each is scored by the time-weighted average intensity of the slots it overlaps; a
window that ends past the data or the deadline is not a candidate; ties go to the earliest start.
The search is vectorised over a running integral of intensity, so one decision over a 72-hour,
5-minute forecast costs microseconds rather than a Python loop per window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from .errors import WindowSearchError
from .series import CarbonSeries, from_epoch_seconds, to_epoch_seconds

# Relative tolerance under which two window averages count as a tie (float round-off only).
TIE_RTOL = 1e-9


@dataclass(frozen=True)
class Window:
    """One candidate window: ``[start, end)`` and its time-weighted average in gCO2eq/kWh."""

    start: datetime
    end: datetime
    average: float

    def to_dict(self) -> dict:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "average_gco2_per_kwh": self.average,
        }


@dataclass(frozen=True, eq=False)
class WindowScores:
    """Every candidate window of one search, as arrays (epoch seconds and gCO2eq/kWh)."""

    starts: np.ndarray
    averages: np.ndarray
    duration: timedelta

    def __len__(self) -> int:
        return int(self.starts.size)

    def __getitem__(self, index: int) -> Window:
        start = int(self.starts[index])
        return Window(
            from_epoch_seconds(start),
            from_epoch_seconds(start + int(self.duration.total_seconds())),
            float(self.averages[index]),
        )

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def best_index(self) -> int:
        """Index of the lowest average; the earliest among ties."""
        lowest = float(self.averages.min())
        tolerance = TIE_RTOL * max(1.0, abs(lowest))
        return int(np.flatnonzero(self.averages <= lowest + tolerance)[0])


@dataclass(frozen=True)
class WindowChoice:
    """Result of :func:`best_window`: the greenest window and the run-now counterfactual."""

    best: Window
    run_now: Window
    candidates: int

    @property
    def delay(self) -> timedelta:
        return self.best.start - self.run_now.start

    @property
    def savings_percent(self) -> float:
        """Cut in average intensity of the best window against running now, in percent."""
        if self.run_now.average == 0:
            return 0.0
        return 100.0 * (self.run_now.average - self.best.average) / self.run_now.average

    def to_dict(self) -> dict:
        return {
            "best": self.best.to_dict(),
            "run_now": self.run_now.to_dict(),
            "candidates": self.candidates,
            "delay_seconds": self.delay.total_seconds(),
            "savings_percent": self.savings_percent,
        }


def _duration_seconds(value: timedelta, field: str) -> int:
    if not isinstance(value, timedelta):
        raise TypeError(f"{field} must be a timedelta, got {type(value).__name__}: {value!r}")
    seconds = value.total_seconds()
    if seconds < 1:  # windows are whole seconds: less would round to an empty window
        raise WindowSearchError(f"{field} must be at least one second, got {value}")
    return int(round(seconds))


def cumulative_intensity(series: CarbonSeries, times: np.ndarray) -> np.ndarray:
    """Integral of intensity (gCO2eq/kWh x seconds) from the series start to each epoch second.

    ``times`` must lie within ``[series.start, series.end]``; the integral is exact for the
    piecewise-constant series, which is what makes unaligned and short windows correct.
    """
    g = series.granularity_s
    t0 = int(series.starts[0])
    offsets = np.asarray(times, dtype=np.int64) - t0
    slot_integrals = np.concatenate(([0.0], np.cumsum(series.values * g)))
    index = np.minimum(offsets // g, len(series) - 1)
    return slot_integrals[index] + series.values[index] * (offsets - index * g)


def rolling_average(
    series: CarbonSeries,
    window: timedelta,
    start: datetime | None = None,
    end: datetime | None = None,
) -> WindowScores:
    """Every candidate window of length ``window`` with its time-weighted average intensity.

    Args:
        series: The forecast (or history) to search.
        window: The job's expected duration; may be shorter than the granularity.
        start: First candidate start (default: the series start); need not be on the grid.
        end: No window may end after this (default: the end of the data).

    Returns:
        WindowScores with starts ``start + k x granularity`` for every window that ends by
        ``min(end, series.end)``.

    Raises:
        WindowSearchError: non-positive window, start outside the data, or no window fits.
    """
    w = _duration_seconds(window, "window")
    data_start, data_end = int(series.starts[0]), int(series.starts[-1]) + series.granularity_s
    s0 = data_start if start is None else to_epoch_seconds(start, field="start")
    limit = data_end if end is None else min(data_end, to_epoch_seconds(end, field="end"))
    if s0 < data_start:
        raise WindowSearchError(
            f"start {from_epoch_seconds(s0).isoformat()} is before the first data point "
            f"{from_epoch_seconds(data_start).isoformat()}"
        )
    if s0 + w > limit:
        bound = "the end of the data" if end is None or data_end <= to_epoch_seconds(end, field="end") else "the deadline"
        raise WindowSearchError(
            f"no window of {timedelta(seconds=w)} starting at or after {from_epoch_seconds(s0).isoformat()} "
            f"ends by {from_epoch_seconds(limit).isoformat()} ({bound})"
        )
    count = (limit - w - s0) // series.granularity_s + 1
    starts = s0 + series.granularity_s * np.arange(count, dtype=np.int64)
    integrals = cumulative_intensity(series, np.concatenate((starts, starts + w)))
    averages = (integrals[count:] - integrals[:count]) / w
    return WindowScores(starts, averages, timedelta(seconds=w))


def best_window(
    series: CarbonSeries,
    duration: timedelta,
    earliest_start: datetime | None = None,
    deadline: datetime | None = None,
) -> WindowChoice:
    """The greenest window of ``duration`` that starts at or after ``earliest_start`` and ends by
    ``deadline``, with the run-now window (starting at ``earliest_start``) for comparison."""
    scores = rolling_average(series, duration, earliest_start, deadline)
    return WindowChoice(best=scores[scores.best_index()], run_now=scores[0], candidates=len(scores))
