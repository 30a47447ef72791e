"""Software Carbon Intensity: the SCI arithmetic, hardware profiles and energy, the inference benchmark.

* :mod:`.sci`: ``sci_score`` (SCI = (E x I + M) / R), ``embodied_share``
  (M = TE x TiR/EL x RR/ToR), ``FunctionalUnit`` and the ``SciReport`` record;
* :mod:`.hardware`: hardware profiles and presets, the Teads power-curve energy model, RAPL and
  NVML readers, and the ``EnergyMeter`` that picks measured or modeled and says which;
* :mod:`.benchmark`: the ONNX Runtime inference benchmark and ``evaluate_variant_sci``.

Plain Python (no kfp import); ``onnxruntime`` is imported only when a benchmark runs.
"""

from .benchmark import BenchmarkResult, benchmark_inference, cpu_clock_for, evaluate_variant_sci, stability_rule
from .hardware import (
    CCF_RAM_W_PER_GB,
    DEFAULT_LIFESPAN,
    MODELED_UNCERTAINTY,
    PRESETS,
    TEADS_CURVE,
    TEADS_RAM_W_PER_GB,
    EnergyMeter,
    EnergyReading,
    HardwareProfile,
    ModeledEnergy,
    NvmlReader,
    RaplError,
    RaplReader,
    UnknownProfileError,
    get_profile,
    model_energy,
    modeled_energy_kwh,
    power_curve_factor,
    resolve_profile,
)
from .sci import (
    ENERGY_METHODS,
    SCHEMA,
    FunctionalUnit,
    SciReport,
    embodied_share,
    operational_emissions,
    sci_score,
)

__all__ = [
    "CCF_RAM_W_PER_GB",
    "DEFAULT_LIFESPAN",
    "ENERGY_METHODS",
    "MODELED_UNCERTAINTY",
    "PRESETS",
    "SCHEMA",
    "TEADS_CURVE",
    "TEADS_RAM_W_PER_GB",
    "BenchmarkResult",
    "EnergyMeter",
    "EnergyReading",
    "FunctionalUnit",
    "HardwareProfile",
    "ModeledEnergy",
    "NvmlReader",
    "RaplError",
    "RaplReader",
    "SciReport",
    "UnknownProfileError",
    "benchmark_inference",
    "cpu_clock_for",
    "embodied_share",
    "evaluate_variant_sci",
    "get_profile",
    "model_energy",
    "modeled_energy_kwh",
    "operational_emissions",
    "power_curve_factor",
    "resolve_profile",
    "sci_score",
    "stability_rule",
]
