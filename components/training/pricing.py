"""Price a measured energy at the grid's hourly intensity for the region and hours it was used.

CodeCarbon's offline tracker prices energy with a yearly country average; the gate judges its
decisions by hourly intensity, so the training step reports both, each labelled.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping

import numpy as np

from greenkfp.components.carbon.providers import get_provider
from greenkfp.components.carbon.series import to_epoch_seconds
from greenkfp.components.carbon.windows import cumulative_intensity


@dataclass(frozen=True)
class HourlyPricing:
    """Emissions of ``energy_kwh`` at the time-weighted intensity of ``[start, end)``."""

    energy_kwh: float
    intensity_g_per_kwh: float
    emissions_g: float
    region: str
    provider: str
    data_kind: str
    signal: str
    start: datetime
    end: datetime
    note: str

    def to_dict(self) -> dict:
        data = asdict(self)
        data["start"], data["end"] = self.start.isoformat(), self.end.isoformat()
        data["units"] = {"energy": "kWh", "intensity": "gCO2eq/kWh", "emissions": "g CO2eq"}
        return data


def average_intensity(series, start: datetime, end: datetime) -> float:
    """Time-weighted average of ``series`` over ``[start, end)`` (inside the series)."""
    t0, t1 = to_epoch_seconds(start, field="start"), to_epoch_seconds(end, field="end")
    if t1 <= t0:
        return float(series.values[(t0 - int(series.starts[0])) // series.granularity_s])
    integral = cumulative_intensity(series, np.array([t0, t1]))
    return float((integral[1] - integral[0]) / (t1 - t0))


def price_energy(
    energy_kwh: float,
    start: datetime,
    end: datetime,
    region: str,
    provider: str = "embedded",
    provider_options: Mapping[str, Any] | None = None,
) -> HourlyPricing:
    """Price ``energy_kwh`` used over ``[start, end)`` in ``region`` at the provider's hourly
    intensity, assuming constant power over the interval.

    Raises:
        ValueError: negative energy or ``end`` before ``start``.
        CarbonError: the provider cannot serve the period (typed, from the carbon module).
    """
    if not np.isfinite(energy_kwh) or energy_kwh < 0:
        raise ValueError(f"energy_kwh must be a finite number >= 0, got {energy_kwh!r}")
    if end < start:
        raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
    # Providers serve whole seconds; a sub-second interval still needs one to read its slot.
    fetch_end = max(end, start + timedelta(seconds=1))
    with get_provider(provider, **dict(provider_options or {})) as source:
        answer = source.forecast(region, start, fetch_end)
    intensity = average_intensity(answer.series, start, end)
    return HourlyPricing(
        energy_kwh=float(energy_kwh),
        intensity_g_per_kwh=intensity,
        emissions_g=float(energy_kwh) * intensity,
        region=answer.region,
        provider=answer.provider,
        data_kind=answer.data_kind,
        signal=answer.signal,
        start=start,
        end=end,
        note=answer.note,
    )
