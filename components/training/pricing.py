"""Price a measured energy at the grid's hourly intensity for the region and hours it was used.

CodeCarbon's offline tracker prices energy with a yearly country average; the gate judges its
decisions by hourly intensity, so the training step reports both, each labelled. The intensity
comes from the carbon package's service (:func:`~greenkfp.components.carbon.intensity_over`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

import numpy as np

from greenkfp.components.carbon.intensity import IntensityEstimate, intensity_over


@dataclass(frozen=True)
class HourlyPricing:
    """Emissions of ``energy_kwh`` at the time-weighted intensity of the hours it was used: the
    carbon service's :class:`~greenkfp.components.carbon.intensity.IntensityEstimate` (region,
    provider, data kind, signal, interval, basis) times the energy."""

    energy_kwh: float
    intensity: IntensityEstimate

    @property
    def emissions_g(self) -> float:
        return self.energy_kwh * self.intensity.gco2_per_kwh

    def to_dict(self) -> dict:
        return {**self.intensity.to_dict(), "energy_kwh": self.energy_kwh, "emissions_g": self.emissions_g,
                "intensity_g_per_kwh": self.intensity.gco2_per_kwh,
                "units": {"energy": "kWh", "intensity": "gCO2eq/kWh", "emissions": "g CO2eq"}}


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

    Args:
        provider_options: Options per provider name, e.g. ``{"embedded": {"replay_year": 2023}}``
            (see :func:`~greenkfp.components.carbon.parse_provider_options`).

    Raises:
        ValueError: negative energy or ``end`` before ``start``.
        CarbonError: bad options, or the provider cannot serve the period (typed).
    """
    if not np.isfinite(energy_kwh) or energy_kwh < 0:
        raise ValueError(f"energy_kwh must be a finite number >= 0, got {energy_kwh!r}")
    return HourlyPricing(float(energy_kwh), intensity_over(region, start, end, provider=provider,
                                                           provider_options=provider_options))
