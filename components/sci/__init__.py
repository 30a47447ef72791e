"""Software Carbon Intensity: the SCI arithmetic, the inference benchmark, the SCI of a variant.

* :mod:`.sci`: ``sci_score`` (SCI = (E x I + M) / R), ``embodied_share``
  (M = TE x TiR/EL x RR/ToR), ``FunctionalUnit`` and the ``SciReport`` record;
* :mod:`.benchmark`: the ONNX Runtime inference benchmark, its ``BenchmarkSettings``, and
  ``evaluate_variant_sci``;
* :mod:`.interleaved`: one interleaved benchmark of many variants, medians with 95 % intervals;
* :mod:`.graph`: hardware-free figures of an ONNX graph (MACs, tree comparisons, weight bytes).

Hardware profiles, the power curve and the energy meters are ``greenkfp.components.energy``.
Plain Python (no kfp import); ``onnxruntime`` is imported only when a benchmark runs.
"""

from .benchmark import (
    BenchmarkResult,
    BenchmarkSettings,
    benchmark_inference,
    cpu_clock_for,
    evaluate_variant_sci,
    stability_rule,
)
from .graph import GraphFigures, graph_figures
from .interleaved import VariantMeasurement, interleaved_benchmark
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
    "ENERGY_METHODS",
    "SCHEMA",
    "BenchmarkResult",
    "BenchmarkSettings",
    "FunctionalUnit",
    "GraphFigures",
    "VariantMeasurement",
    "SciReport",
    "benchmark_inference",
    "cpu_clock_for",
    "embodied_share",
    "evaluate_variant_sci",
    "graph_figures",
    "interleaved_benchmark",
    "operational_emissions",
    "sci_score",
    "stability_rule",
]
