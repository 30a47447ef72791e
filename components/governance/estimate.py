"""The carbon estimate of a pipeline submission, before it runs.

The first of these that applies:

1. ``history``: at least :data:`MIN_HISTORY_RUNS` settled runs of the same pipeline and team:
   their p90 (the median is reported too). Settled grams already carry the intensity of their
   time, so the planned intensity is not applied to them;
2. ``energy_kwh``: the pipeline's ``energy_kwh`` parameter x the planned intensity;
3. ``hardware_default``: a per-step default from the hardware profile: the profile's power at
   full load on the Teads curve (all its vCPUs, its RAM) x ``default_step_hours`` x ``steps``
   x the planned intensity. A modeled figure, with the energy model's caveat.

The planned intensity comes from :func:`planned_intensity`: the carbon service's intensity over
the planned window (the gate's provider), else the region's annual average of the embedded data.
The estimate records its method, its inputs and the intensity's basis.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from .._checks import non_negative, positive, positive_int
from ..carbon import IntensityEstimate

__all__ = [
    "DEFAULT_STEP_HOURS",
    "MIN_HISTORY_RUNS",
    "SubmissionEstimate",
    "estimate_submission",
    "planned_intensity",
]

Method = Literal["history", "energy_kwh", "hardware_default"]

#: Settled runs needed before the history decides: with fewer, a p90 is one run's figure.
MIN_HISTORY_RUNS = 3
#: Hours of full load per pipeline step when nothing better is known: on purpose a generous
#: guess (a long training step), since an over-estimate only reserves more budget than needed
#: (settlement releases the difference) while an under-estimate lets a run overspend.
DEFAULT_STEP_HOURS = 1.0


@dataclass(frozen=True)
class SubmissionEstimate:
    """A submission's estimated emissions and how they were worked out.

    Attributes:
        estimate_g: The estimate, gCO2eq (what the budget reserves).
        method: ``history``, ``energy_kwh`` or ``hardware_default``.
        median_g: The median of the settled runs (``history`` only, else None).
        p90_g: Their 90th percentile, numpy's linear interpolation (``history`` only, else None).
        energy_kwh: The energy priced, kWh (None for ``history``).
        intensity_g_per_kwh: The planned intensity, gCO2eq/kWh (not applied for ``history``).
        intensity_basis: What that intensity is and where it came from.
        inputs: Every input of the estimate, JSON-ready.
        caveat: What a reader must know about a modeled energy figure, else empty.
    """

    estimate_g: float
    method: Method
    median_g: float | None
    p90_g: float | None
    energy_kwh: float | None
    intensity_g_per_kwh: float
    intensity_basis: str
    inputs: Mapping[str, Any] = field(default_factory=dict, hash=False)
    caveat: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", MappingProxyType(dict(self.inputs)))

    def to_dict(self) -> dict:
        """JSON-ready, with the units."""
        return {
            "estimate_g": self.estimate_g, "method": self.method, "median_g": self.median_g, "p90_g": self.p90_g,
            "energy_kwh": self.energy_kwh, "intensity_g_per_kwh": self.intensity_g_per_kwh,
            "intensity_basis": self.intensity_basis, "inputs": dict(self.inputs), "caveat": self.caveat,
            "units": {"estimate_g": "gCO2eq", "energy_kwh": "kWh", "intensity_g_per_kwh": "gCO2eq/kWh"},
        }


def _history(values: Sequence[float]) -> list[float]:
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Sequence):
        raise ValueError(f"history_g must be a sequence of grams, got {values!r}")
    checked = []
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
            raise ValueError(f"history_g[{i}] must be a finite number >= 0, got {value!r}")
        checked.append(float(value))
    return checked


def estimate_submission(
    *,
    history_g: Sequence[float],
    energy_kwh: float | None,
    steps: int,
    hardware_profile: Any,
    intensity_g_per_kwh: float,
    intensity_basis: str,
    default_step_hours: float = DEFAULT_STEP_HOURS,
) -> SubmissionEstimate:
    """Estimate a submission's emissions (see the module's docstring for the three methods).

    Args:
        history_g: Emissions of the settled runs of the same pipeline and team, grams.
        energy_kwh: The pipeline's ``energy_kwh`` parameter, or None when it has none.
        steps: The pipeline's steps (tasks), >= 1.
        hardware_profile: A :class:`~greenkfp.components.energy.HardwareProfile` or a preset
            name (``n2-standard-4``).
        intensity_g_per_kwh: The planned intensity (:func:`planned_intensity`), gCO2eq/kWh.
        intensity_basis: What that intensity is, in words.
        default_step_hours: Hours of full load per step for ``hardware_default``, > 0.

    Raises:
        ValueError: a negative or non-finite figure, ``steps`` < 1, an empty basis, an unknown
            profile; the message names the argument and the value.
    """
    from ..energy import model_energy, modeled_caveat, resolve_profile

    history = _history(history_g)
    energy = None if energy_kwh is None else non_negative("energy_kwh", energy_kwh)
    step_count = positive_int("steps", steps)
    intensity = non_negative("intensity_g_per_kwh", intensity_g_per_kwh)
    if not isinstance(intensity_basis, str) or not intensity_basis.strip():
        raise ValueError(f"intensity_basis must be a non-empty string, got {intensity_basis!r}")
    hours = positive("default_step_hours", default_step_hours)
    profile = resolve_profile(hardware_profile)
    inputs: dict[str, Any] = {
        "history_runs": len(history), "history_g": history, "energy_kwh": energy, "steps": step_count,
        "hardware_profile": profile.name, "intensity_g_per_kwh": intensity, "default_step_hours": hours,
    }
    common = dict(intensity_g_per_kwh=intensity, intensity_basis=intensity_basis, inputs=inputs)
    if len(history) >= MIN_HISTORY_RUNS:
        # A history of 0 g runs gives an estimate of 0 g, kept as it is: it is what the team's own
        # settlements say, and the ledger takes a reservation of 0 g (granted while the budget is not
        # overdrawn), so the team is not locked out. Not replaced by the energy_kwh or per-step
        # figure: that would price the run on a guess while its measured history says otherwise;
        # what it really emits is settled afterwards, and a settlement above 0 g moves the p90.
        median, p90 = (float(v) for v in np.percentile(history, [50, 90]))
        return SubmissionEstimate(p90, "history", median, p90, None, **common)
    if energy is not None:
        return SubmissionEstimate(energy * intensity, "energy_kwh", None, None, energy, **common)
    modeled = model_energy(profile, 100.0, hours * 3600.0 * step_count, profile.vcpus)
    inputs["modeled_power_w"] = modeled.cpu_power_w + modeled.ram_power_w
    return SubmissionEstimate(modeled.total_kwh * intensity, "hardware_default", None, None, modeled.total_kwh,
                              caveat=modeled_caveat("modeled") or "", **common)


def planned_intensity(
    region: str,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    provider: str = "embedded",
    provider_options: Mapping[str, Any] | str | None = None,
) -> IntensityEstimate:
    """The intensity to price a submission with, from the carbon service.

    Over the planned window ``[start, end)`` from ``provider`` (the gate's provider, and its
    options) when a window is given and the provider serves it; else the annual average of
    ``region`` in the embedded data, whose ``basis`` then says why the window was not used.

    Raises:
        ValueError: only one of ``start`` and ``end``, or a bad window.
        UnknownRegionError: ``region`` is not an embedded zone (annual average).
        ProviderConfigError: this build has no embedded data (annual average).
    """
    from dataclasses import replace

    from ..carbon import annual_average, intensity_over
    from ..carbon.errors import ProviderError, UnknownRegionError

    if (start is None) != (end is None):
        raise ValueError(f"give both start and end of the planned window, or neither; got start={start!r} end={end!r}")
    why = "no planned window given"
    if start is not None:
        try:
            return intensity_over(region, start, end, provider=provider, provider_options=provider_options)
        except (ProviderError, UnknownRegionError) as exc:
            why = f"the planned window's intensity is unavailable: {exc}"
    average = annual_average(region, provider_options=provider_options)
    return replace(average, basis=f"{average.basis}; annual average because {why}")
