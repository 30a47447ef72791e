"""Hardware and energy: one profile type, one power curve, one set of meters, one caveat.

* :mod:`.profiles`: :class:`HardwareProfile`, the cloud :data:`PRESETS` (sourced) and
  :func:`resolve_profile` (a preset name plus ``hardware_overrides``);
* :mod:`.model`: the Teads power curve and RAM coefficient, :func:`model_energy`, and the
  modeled-energy error band (:data:`MODELED_ERROR_RANGE`, :func:`modeled_caveat`);
* :mod:`.meters`: RAPL (with wraparound) and NVML readers, and :class:`EnergyMeter` (measured
  where counters are readable, else modeled, and says which);
* :mod:`.codecarbon`: :class:`EnergyTracker`, CodeCarbon's tracker fed with the same profile.

Used by training, SCI and the estimates alike. Plain Python (no kfp import); CodeCarbon and
``pynvml`` are imported only when a tracker starts or an NVML reader is asked.
"""

from .codecarbon import ZONE_COUNTRY, EnergyMeasurement, EnergyTracker, codecarbon_location
from .meters import EnergyMeter, EnergyReading, NvmlReader, RaplError, RaplReader
from .model import (
    CCF_RAM_W_PER_GB,
    MODELED_ERROR_RANGE,
    TEADS_CURVE,
    TEADS_RAM_W_PER_GB,
    ModeledEnergy,
    model_energy,
    modeled_caveat,
    modeled_energy_kwh,
    power_curve_factor,
)
from .profiles import DEFAULT_PROFILE, PRESETS, HardwareProfile, UnknownProfileError, resolve_profile

__all__ = [
    "CCF_RAM_W_PER_GB",
    "DEFAULT_PROFILE",
    "MODELED_ERROR_RANGE",
    "PRESETS",
    "TEADS_CURVE",
    "TEADS_RAM_W_PER_GB",
    "ZONE_COUNTRY",
    "EnergyMeasurement",
    "EnergyMeter",
    "EnergyReading",
    "EnergyTracker",
    "HardwareProfile",
    "ModeledEnergy",
    "NvmlReader",
    "RaplError",
    "RaplReader",
    "UnknownProfileError",
    "codecarbon_location",
    "model_energy",
    "modeled_caveat",
    "modeled_energy_kwh",
    "power_curve_factor",
    "resolve_profile",
]
