"""KFP adapter for SCI evaluation. Everything the body needs is imported inside it."""

# No `from __future__ import annotations`: kfp reads the real annotation objects.
from typing import List, NamedTuple

from kfp.dsl import Artifact, Dataset, Input, Markdown, Metrics, Model, Output

from .._runtime import component


@component("pandas", "pyarrow", "scikit-learn", "onnx", "onnxruntime", "psutil")
def evaluate_sci(
    variants: Input[Model],
    variant_list: Input[Artifact],
    test: Input[Dataset],
    training_record: Input[Artifact],
    decision: Input[Artifact],
    sci_reports: Output[Artifact],
    metrics: Output[Metrics],
    summary: Output[Markdown],
    hardware_profile: str = "n2-standard-4",
    hardware_overrides: dict = {},
    functional_unit_size: int = 1000,
    expected_lifetime_inferences: float = 100000000.0,
    intensity_basis: str = "annual_average",
    provider_options: dict = {},
    max_seconds_per_variant: float = 3.0,
    threads: int = 1,
) -> NamedTuple("SciOutputs", [("scored", int), ("best_sci", float)]):
    """Score the Software Carbon Intensity (GSF SCI, ISO/IEC 21031:2024) of each eligible variant.

    Runs an ONNX Runtime inference benchmark per variant (fixed threads, warm-up, single-row and
    batched requests, repeated until p95 is stable or the time budget is spent), meters its
    energy (RAPL where readable, else modeled from CPU utilisation with the Teads power curve;
    the method is recorded), and computes SCI = (E x I + M) per R. Training emissions are carried
    alongside, never folded into the score; a lifecycle total is reported apart.

    Args:
        variants: Directory of ONNX variants (from convert_and_quantize).
        variant_list: The variants' JSON list (eligibility, accuracy, files).
        test: Test split: the benchmark's requests.
        training_record: The training step's record (training emissions, candidate name).
        decision: The carbon gate's record (region; intensity for the gate_window basis).
        hardware_profile: The machine, a preset (n2-standard-4, e2-standard-4, m5.xlarge,
            c5.2xlarge, Standard_D4s_v5): TDP and RAM for the energy model, embodied emissions for M.
        hardware_overrides: Figures replacing the preset's, e.g. {"cpu_tdp_w": 65, "vcpus": 8,
            "embodied_kgco2eq": 1200, "lifespan_years": 5} (fields of
            greenkfp.components.energy.HardwareProfile).
        functional_unit_size: Inferences per functional unit R (default: per 1,000).
        expected_lifetime_inferences: Inferences over the model's service life (lifecycle total).
        intensity_basis: annual_average (the region's embedded yearly mean), gate_window, or a
            number of gCO2eq/kWh you give.
        provider_options: The run's provider options, e.g. {"embedded": {"replay_year": 2023}}:
            annual_average uses the embedded replay year (and signal) when set.
        max_seconds_per_variant: Time budget of each variant's benchmark, seconds.
        threads: ONNX Runtime intra-op threads (stated in the report).

    Returns:
        sci_reports: The SCI entries (JSON list, schema greenkfp.sci_evaluation/v1), one per
            variant: its SCI report, or why it was not scored.
        metrics: Per-variant SCI, energy per inference, latency percentiles, throughput and accuracy.
        summary: The SCI per variant as a Markdown table, with the method disclosure.
        scored: Number of variants scored.
        best_sci: Lowest SCI among them, gCO2eq per functional unit (-1 when none).
    """
    from collections import namedtuple

    from greenkfp.components._files import write_atomic
    from greenkfp.components.records import write_record
    from greenkfp.components.sci.evaluate import evaluate_variants

    results = evaluate_variants(
        variants.path, variant_list.path, test.path, training_record_path=training_record.path,
        decision_path=decision.path, hardware_profile=hardware_profile, hardware_overrides=hardware_overrides,
        intensity_basis=intensity_basis,
        functional_unit_size=functional_unit_size, expected_lifetime_inferences=expected_lifetime_inferences,
        max_seconds=max_seconds_per_variant, threads=threads, provider_options=provider_options,
    )
    write_record(results, sci_reports.path)
    sci_reports.metadata["schema"] = results.SCHEMA
    write_atomic(summary.path, results.markdown())
    for name, value in results.metrics().items():
        metrics.log_metric(name, value)
    best = results.best_sci()
    outputs = namedtuple("SciOutputs", ["scored", "best_sci"])
    return outputs(len(results.scored), best if best is not None else -1.0)


@component("pandas", "pyarrow", "scikit-learn", "onnx", "onnxruntime", "psutil")
def benchmark_variants(
    variants: Input[List[Model]],
    variant_lists: Input[List[Artifact]],
    training_records: Input[List[Artifact]],
    test: Input[Dataset],
    decision: Input[Artifact],
    sci_reports: Output[Artifact],
    metrics: Output[Metrics],
    summary: Output[Markdown],
    hardware_profile: str = "n2-standard-4",
    hardware_overrides: dict = {},
    functional_unit_size: int = 1000,
    expected_lifetime_inferences: float = 100000000.0,
    intensity_basis: str = "annual_average",
    provider_options: dict = {},
    max_seconds_per_variant: float = 3.0,
    threads: int = 1,
    seed: int = 0,
) -> NamedTuple("BenchmarkOutputs", [("scored", int), ("best_sci", float)]):
    """Measure every eligible variant of every candidate in one interleaved benchmark, with intervals.

    One process, the same thread settings, many short rounds, each visiting all variants in a
    fresh seeded random order, so drift and neighbours' load hit all variants alike. Per variant:
    median time, CPU time, energy and SCI per inference over rounds with 95 % bootstrap
    intervals (the energy model's own error band is stated apart), plus MACs per inference and
    weight bytes read from the ONNX graph. Give the task whole CPUs with requests equal to limits
    (task.set_cpu_request / set_cpu_limit), so its CPU share is fixed while it measures: the
    flagship pipeline does so on Kubeflow; this component alone sets no resources.

    Args:
        variants: Each candidate's directory of ONNX variants, collected over the loop.
        variant_lists: Each candidate's variant list, same order.
        training_records: Each candidate's training record, same order (names, training emissions).
        test: Test split: the benchmark's requests.
        decision: The carbon gate's record (region; intensity for the gate_window basis).
        hardware_profile: The machine preset: TDP and RAM for the energy model, embodied emissions for M.
        hardware_overrides: Figures replacing the preset's (fields of greenkfp.components.energy.HardwareProfile).
        functional_unit_size: Inferences per functional unit R (default: per 1,000).
        expected_lifetime_inferences: Inferences over the model's service life (lifecycle total).
        intensity_basis: annual_average, gate_window, or a number of gCO2eq/kWh.
        provider_options: The run's provider options (embedded replay year for annual_average).
        max_seconds_per_variant: Benchmark budget per eligible variant, seconds; the rounds share
            the total.
        threads: ONNX Runtime intra-op threads for every variant.
        seed: Seeds the visiting order and the bootstrap.

    Returns:
        sci_reports: The SCI entries of every variant of every candidate (JSON list, schema
            greenkfp.sci_evaluation/v1) with intervals, per-round series and graph figures.
        metrics: Per-variant SCI, energy per inference, latency and accuracy.
        summary: The SCI per variant as a Markdown table, with the method disclosure.
        scored: Number of variants scored.
        best_sci: Lowest SCI estimate among them, gCO2eq per functional unit (-1 when none).
    """
    from collections import namedtuple

    from greenkfp.components._files import write_atomic
    from greenkfp.components.records import VariantList, read_record, write_record
    from greenkfp.components.sci.evaluate import benchmark_all_variants

    groups = list(zip([v.path for v in variants], [v.path for v in variant_lists],
                      [t.path for t in training_records], strict=True))
    eligible = sum(1 for _, path, _ in groups for v in read_record(VariantList, path) if v.eligible and v.file)
    results = benchmark_all_variants(
        groups, test.path, decision_path=decision.path, hardware_profile=hardware_profile,
        hardware_overrides=hardware_overrides, intensity_basis=intensity_basis,
        functional_unit_size=functional_unit_size, expected_lifetime_inferences=expected_lifetime_inferences,
        max_seconds=max(1.0, max_seconds_per_variant * eligible), threads=threads,
        provider_options=provider_options, seed=seed,
    )
    write_record(results, sci_reports.path)
    sci_reports.metadata["schema"] = results.SCHEMA
    write_atomic(summary.path, results.markdown())
    for name, value in results.metrics().items():
        metrics.log_metric(name, value)
    best = results.best_sci()
    outputs = namedtuple("BenchmarkOutputs", ["scored", "best_sci"])
    return outputs(len(results.scored), best if best is not None else -1.0)
