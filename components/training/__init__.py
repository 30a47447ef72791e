"""Training: CodeCarbon-instrumented fits, estimator specs, model persistence.

Plain Python (no kfp import): the KFP adapter lives in ``component.py``.
"""

from .energy import (
    MODELED_ERROR_RANGE,
    ZONE_COUNTRY,
    EnergyMeasurement,
    EnergyTracker,
    HardwareProfile,
    codecarbon_location,
)

__all__ = [
    "MODELED_ERROR_RANGE",
    "ZONE_COUNTRY",
    "EnergyMeasurement",
    "EnergyTracker",
    "HardwareProfile",
    "codecarbon_location",
]
