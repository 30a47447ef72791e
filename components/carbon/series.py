"""`CarbonSeries`: a contiguous, evenly spaced series of grid carbon intensities.

Values are in gCO2eq/kWh; each point covers ``[start, start + granularity)``. Start times are
timezone-aware and held as integer seconds since the Unix epoch (UTC), so the window search can
work on plain numpy arrays.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterable, Iterator, Sequence

import numpy as np

from .errors import InvalidSeriesError


#: Larger values are a broken payload, not a grid: coal plants emit about 1,000 gCO2eq/kWh.
MAX_PLAUSIBLE_G_PER_KWH = 5000.0


def to_epoch_seconds(moment: datetime, *, field: str = "datetime") -> int:
    """Seconds since the epoch of a timezone-aware datetime; a naive one is an error."""
    if not isinstance(moment, datetime):
        raise TypeError(f"{field} must be a datetime, got {type(moment).__name__}: {moment!r}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            f"{field} must be timezone-aware (UTC), got the naive datetime {moment.isoformat()}"
        )
    return int(round(moment.timestamp()))


def from_epoch_seconds(seconds: int | float) -> datetime:
    return datetime.fromtimestamp(int(seconds), tz=timezone.utc)


def _iso(seconds: int | float) -> str:
    return from_epoch_seconds(seconds).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, eq=False)
class CarbonSeries:
    """Grid carbon intensity over contiguous slots of one granularity.

    Build it with :meth:`from_points` (or :meth:`from_arrays` for numpy data); both validate.

    Attributes:
        starts: int64 array of slot start times, seconds since the epoch (UTC).
        values: float64 array of intensities, gCO2eq/kWh.
        granularity: length of every slot.
    """

    starts: np.ndarray
    values: np.ndarray
    granularity: timedelta

    @classmethod
    def from_points(
        cls,
        points: Iterable[tuple[datetime, float]],
        granularity: timedelta | None = None,
    ) -> "CarbonSeries":
        """Build a series from ``(start, gCO2eq/kWh)`` pairs.

        Args:
            points: Slot start times (timezone-aware) with their intensity, in time order.
            granularity: Length of each slot. Inferred as the most common step when omitted;
                required for a single point.

        Raises:
            InvalidSeriesError: unsorted, gap, overlap, non-finite or negative value.
            ValueError: a naive datetime.
        """
        points = list(points)
        starts = np.array(
            [to_epoch_seconds(p[0], field=f"points[{i}] start") for i, p in enumerate(points)],
            dtype=np.int64,
        )
        try:
            values = np.array([float(p[1]) for p in points], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidSeriesError(f"every point needs a numeric intensity: {exc}") from None
        step = None if granularity is None else _granularity_seconds(granularity)
        return cls.from_arrays(starts, values, step)

    @classmethod
    def from_arrays(
        cls, starts: Sequence[int] | np.ndarray, values: Sequence[float] | np.ndarray, granularity_s: int | None = None
    ) -> "CarbonSeries":
        """Build a series from epoch-second starts and gCO2eq/kWh values (validated, vectorised)."""
        starts = np.asarray(starts, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        if starts.ndim != 1 or starts.shape != values.shape:
            raise InvalidSeriesError(
                f"starts and values must be 1-D and of one length, got {starts.shape} and {values.shape}"
            )
        if starts.size == 0:
            raise InvalidSeriesError("a carbon series needs at least one point, got none")
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            i = int(bad[0])
            raise InvalidSeriesError(f"intensity at {_iso(starts[i])} is not finite: {values[i]}")
        bad = np.flatnonzero(values < 0)
        if bad.size:
            i = int(bad[0])
            raise InvalidSeriesError(f"intensity at {_iso(starts[i])} is negative: {values[i]} gCO2eq/kWh")
        bad = np.flatnonzero(values > MAX_PLAUSIBLE_G_PER_KWH)
        if bad.size:  # also keeps the window integrals far from float overflow
            i = int(bad[0])
            raise InvalidSeriesError(
                f"intensity at {_iso(starts[i])} is {values[i]:g} gCO2eq/kWh, above any real grid "
                f"(at most {MAX_PLAUSIBLE_G_PER_KWH:g}; the dirtiest grids are about 1,200)"
            )
        steps = np.diff(starts)
        if granularity_s is None:
            if steps.size == 0:
                raise InvalidSeriesError("granularity must be given for a series of one point")
            positive = steps[steps > 0]
            if positive.size == 0:
                raise InvalidSeriesError(f"all points start at {_iso(starts[0])}; cannot infer a granularity")
            granularity_s = Counter(positive.tolist()).most_common(1)[0][0]
        granularity_s = int(granularity_s)
        if granularity_s <= 0:
            raise InvalidSeriesError(f"granularity must be positive, got {granularity_s} s")
        bad = np.flatnonzero(steps != granularity_s)
        if bad.size:
            i = int(bad[0])
            prev, cur = int(starts[i]), int(starts[i + 1])
            if cur <= prev:
                problem = f"not sorted: {_iso(cur)} follows {_iso(prev)}"
            elif cur < prev + granularity_s:
                problem = f"overlap: {_iso(cur)} starts before the slot from {_iso(prev)} ends"
            else:
                problem = f"gap: {_iso(cur)} follows {_iso(prev)}, expected {_iso(prev + granularity_s)}"
            raise InvalidSeriesError(f"carbon series is not contiguous at {_iso(cur)} ({problem})")
        starts.setflags(write=False)
        values.setflags(write=False)
        return cls(starts, values, timedelta(seconds=granularity_s))

    # --- views ---------------------------------------------------------------------------
    @property
    def granularity_s(self) -> int:
        return int(self.granularity.total_seconds())

    @property
    def start(self) -> datetime:
        return from_epoch_seconds(self.starts[0])

    @property
    def end(self) -> datetime:
        """End of the last slot (exclusive)."""
        return from_epoch_seconds(self.starts[-1] + self.granularity_s)

    def __len__(self) -> int:
        return int(self.starts.size)

    def __iter__(self) -> Iterator[tuple[datetime, float]]:
        for start, value in zip(self.starts.tolist(), self.values.tolist()):
            yield from_epoch_seconds(start), value

    def __repr__(self) -> str:
        return (
            f"CarbonSeries({len(self)} points of {self.granularity}, "
            f"{self.start.isoformat()} to {self.end.isoformat()})"
        )

    def value_at(self, moment: datetime) -> float:
        """Intensity of the slot that contains ``moment``."""
        t = to_epoch_seconds(moment, field="moment")
        index = (t - int(self.starts[0])) // self.granularity_s
        if index < 0 or index >= len(self):
            raise InvalidSeriesError(f"{moment.isoformat()} is outside the series {self.start} to {self.end}")
        return float(self.values[index])

    def between(self, start: datetime | None = None, end: datetime | None = None) -> "CarbonSeries":
        """The slots that overlap ``[start, end)`` (unchanged series when both are None)."""
        lo = 0
        hi = len(self)
        if start is not None:
            t = to_epoch_seconds(start, field="start")
            lo = max(0, int(np.searchsorted(self.starts + self.granularity_s, t, side="right")))
        if end is not None:
            t = to_epoch_seconds(end, field="end")
            hi = int(np.searchsorted(self.starts, t, side="left"))
        if lo >= hi:
            raise InvalidSeriesError(
                f"no slot of the series ({self.start.isoformat()} to {self.end.isoformat()}) "
                f"overlaps {start} to {end}"
            )
        return CarbonSeries(self.starts[lo:hi], self.values[lo:hi], self.granularity)

    def to_records(self) -> list[dict]:
        """JSON-ready points: ``{"start": ISO 8601, "gco2_per_kwh": value}``."""
        return [{"start": _iso(s), "gco2_per_kwh": v} for s, v in zip(self.starts.tolist(), self.values.tolist())]


def _granularity_seconds(granularity: timedelta) -> int:
    if not isinstance(granularity, timedelta):
        raise TypeError(f"granularity must be a timedelta, got {granularity!r}")
    seconds = granularity.total_seconds()
    if seconds <= 0 or seconds != int(seconds):
        raise InvalidSeriesError(f"granularity must be a positive whole number of seconds, got {granularity}")
    return int(seconds)
