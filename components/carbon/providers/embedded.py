"""The embedded provider: real hourly grid intensity for 16 zones, 2021-2024, no key, no network.

The data is Electricity Maps data (ODbL 1.0; attribution in ``data/NOTICE.md``, shipped in the
wheel). It serves any period it covers as ``historical`` data. For a period it does not cover
(today, for instance) it *replays* a data year: the period is mapped to the same hour of the
week in that year, and the result is labelled ``replayed_historical``, never a forecast.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from importlib import resources
from typing import Callable, Literal

import numpy as np

from ..._messages import shorten
from ..errors import ProviderConfigError, ProviderResponseError, UnknownRegionError
from ..series import CarbonSeries, from_epoch_seconds, to_epoch_seconds
from .base import CarbonProvider, IntensityReading, ProviderForecast, utc_now

ATTRIBUTION = (
    "Carbon intensity data: Electricity Maps (https://www.electricitymaps.com), hourly 2021-2024, "
    "licensed under the Open Database License (ODbL 1.0)."
)
HOUR = 3600
WEEK = 7 * 24 * HOUR
Signal = Literal["lifecycle", "direct"]


@dataclass(frozen=True, eq=False)
class EmbeddedData:
    zones: tuple[str, ...]
    start_epoch_s: int
    hours: int
    fully_estimated: dict[str, bool]
    intensities: dict[str, np.ndarray]  # signal -> (zones x hours) float64 gCO2eq/kWh

    @property
    def end_epoch_s(self) -> int:
        return self.start_epoch_s + self.hours * HOUR

    @property
    def years(self) -> tuple[int, ...]:
        first = from_epoch_seconds(self.start_epoch_s).year
        last = from_epoch_seconds(self.end_epoch_s - 1).year
        return tuple(range(first, last + 1))


@functools.lru_cache(maxsize=1)
def load_embedded_data() -> EmbeddedData:
    """Load the packaged data once per process (about 2.6 MB, compressed numpy, no pickle)."""
    ref = resources.files("greenkfp.components.carbon") / "data" / "intensity_hourly.npz"
    if not ref.is_file():
        raise ProviderConfigError(
            "embedded", None,
            "the embedded data is not in this build (portable components leave it out); "
            "use the greenkfp image, compile with --package-spec, or choose a live provider",
        )
    with resources.as_file(ref) as path, np.load(path, allow_pickle=False) as npz:
        zones = tuple(str(z) for z in npz["zones"])
        intensities = {name: npz[name].astype(np.float64) / 100.0 for name in ("lifecycle", "direct")}
        estimated = dict(zip(zones, (bool(x) for x in npz["fully_estimated"])))
        return EmbeddedData(zones, int(npz["start_epoch_s"]), intensities["lifecycle"].shape[1], estimated, intensities)


def embedded_zones() -> tuple[str, ...]:
    return load_embedded_data().zones


#: Hours that run past the end of the data are read 52 weeks earlier (same weekday and hour).
_REPLAY_WRAP_HOURS = 52 * 7 * 24


def _same_hour_of_week(t: int, year: int, data: EmbeddedData) -> int:
    """Epoch second in ``year`` (inside the data) with the same weekday and hour as ``t``. It
    depends on ``t`` alone, never on how long a period is asked for: "now" replays the same
    recorded hour whatever the deadline."""
    moment = from_epoch_seconds(t)
    day = date(year, moment.month, min(moment.day, 28 if moment.month == 2 else moment.day))
    anchor = datetime(day.year, day.month, day.day, moment.hour, tzinfo=timezone.utc)
    shift_days = (moment.weekday() - anchor.weekday() + 3) % 7 - 3  # nearest same weekday
    candidate = to_epoch_seconds(anchor + timedelta(days=shift_days))
    while candidate < data.start_epoch_s:
        candidate += WEEK
    while candidate >= data.end_epoch_s:
        candidate -= WEEK
    return candidate


def _replayed_rows(begin: int, hours: int, total: int) -> np.ndarray:
    """Row indices for ``hours`` hours from ``begin``; those past the data's end wrap back 52
    weeks at a time, keeping weekday and hour."""
    if hours > total:
        raise ProviderResponseError("embedded", None, f"a period of {hours:,} hours is longer than the data")
    rows = begin + np.arange(hours, dtype=np.int64)
    while (rows >= total).any():
        rows = np.where(rows >= total, rows - _REPLAY_WRAP_HOURS, rows)
    return rows


class EmbeddedProvider(CarbonProvider):
    """Hourly intensities packaged with greenkfp.

    Args:
        replay_year: ``None`` serves periods inside 2021-2024 as historical data and replays
            the latest data year for any other period; a year replays that year always.
        signal: ``lifecycle`` (Electricity Maps' default, life-cycle emission factors) or
            ``direct`` (combustion only).
        clock: Source of "now" for :meth:`current` (injectable for tests).
    """

    name = "embedded"

    def __init__(self, replay_year: int | None = None, signal: Signal = "lifecycle", clock: Callable[[], datetime] = utc_now):
        self.data = load_embedded_data()
        if replay_year is not None and replay_year not in self.data.years:
            raise ValueError(f"replay_year must be one of {list(self.data.years)}, got {replay_year!r}")
        if signal not in self.data.intensities:
            raise ValueError(f"signal must be one of {sorted(self.data.intensities)}, got {signal!r}")
        self.replay_year = replay_year
        self.signal = signal
        self.clock = clock

    def zone_index(self, region: str) -> int:
        key = str(region).strip().upper()
        try:
            return self.data.zones.index(key)
        except ValueError:
            raise UnknownRegionError(
                f"region {shorten(region)} is not in the embedded data; supported zones: {', '.join(self.data.zones)}"
            ) from None

    def forecast(self, region: str, start: datetime, end: datetime) -> ProviderForecast:
        row = self.zone_index(region)
        t0 = to_epoch_seconds(start, field="start")
        t1 = to_epoch_seconds(end, field="end")
        if t1 <= t0:
            raise ValueError(f"end must be after start, got start={start.isoformat()} end={end.isoformat()}")
        first = t0 - (t0 - self.data.start_epoch_s) % HOUR  # the slot containing start
        span = -(-(t1 - first) // HOUR) * HOUR
        inside = self.data.start_epoch_s <= first and first + span <= self.data.end_epoch_s
        if self.replay_year is None and inside:
            source, kind, note = first, "historical", "recorded hourly data of the requested period"
        else:
            year = self.replay_year or self.data.years[-1]
            source = _same_hour_of_week(first, year, self.data)
            kind = "replayed_historical"
            note = (
                f"replayed historical data: recorded hours from {from_epoch_seconds(source).isoformat()} "
                f"(same hour of the week in {year}) mapped onto the requested period; not a forecast"
            )
        begin = (source - self.data.start_epoch_s) // HOUR
        total = (self.data.end_epoch_s - self.data.start_epoch_s) // HOUR
        if begin + span // HOUR > total:
            note += "; hours past the end of the data are read 52 weeks earlier"
        values = self.data.intensities[self.signal][row, _replayed_rows(begin, span // HOUR, total)]
        starts = first + HOUR * np.arange(values.size, dtype=np.int64)
        zone = self.data.zones[row]
        if self.data.fully_estimated[zone]:
            note += "; this zone's data is entirely estimated by Electricity Maps"
        return ProviderForecast(
            series=CarbonSeries.from_arrays(starts, values, HOUR),
            region=zone,
            provider=self.name,
            data_kind=kind,
            signal=f"{self.signal} average (Electricity Maps, embedded)",
            retrieved_at=self.clock(),
            note=note,
        )

    def current(self, region: str) -> IntensityReading:
        now = self.clock()
        answer = self.forecast(region, now, now + timedelta(seconds=1))
        at, value = next(iter(answer.series))
        return IntensityReading(answer.region, at, value, self.name, answer.data_kind, answer.signal, answer.note)
