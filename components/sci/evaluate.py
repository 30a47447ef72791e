"""Evaluate the SCI of every eligible ONNX variant of one trained candidate.

Glue between the pipeline's records and :func:`~.benchmark.evaluate_variant_sci`: which
variants to score (the quantization step's list), the grid intensity ``I`` for the time of use
(from the embedded data or the gate's record), and the training emissions carried alongside
(never folded into the score).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from greenkfp.components.records import (
    GateDecisionRecord,
    SciDetail,
    SciReport,
    TrainingRecord,
    VariantList,
    read_record,
)

from greenkfp.components.energy import DEFAULT_PROFILE, resolve_profile

from greenkfp.components.parameters import INTENSITY_BASES, parse_intensity_basis

from .benchmark import BenchmarkSettings, evaluate_variant_sci
from .sci import FunctionalUnit

SCHEMA = SciReport.SCHEMA


def inference_intensity(
    basis: str,
    decision: GateDecisionRecord | None,
    region: str | None = None,
    provider_options: Mapping[str, Any] | None = None,
) -> tuple[float, dict]:
    """``I`` for inference and where it came from.

    ``annual_average``: the region's annual average from the carbon package's intensity
    service (the mean hourly intensity over a full year of the embedded data: the replay year
    of ``provider_options["embedded"]`` when set, so a replayed run prices everything with one
    year's data, else the latest full year; inference runs around the clock, so no single hour
    stands for it); when the region has no embedded data (a live provider's region, or a
    portable build), the gate's window, or, when the gate chose none (it failed open), the world
    average (:data:`~greenkfp.components.carbon.intensity.WORLD_AVERAGE_G_PER_KWH`), and the
    source says which. ``gate_window``: the average
    over the window the carbon gate chose. A number: that intensity in gCO2eq/kWh, given by the
    user (a contract's or a region's published figure).
    """
    fixed = parse_intensity_basis(basis)  # one definition of the knob's values
    if fixed is not None:
        return fixed, {"provider": "user", "region": region or (decision.region if decision else None),
                       "data_kind": "given", "signal": "given by the user", "time": None,
                       "basis": f"given: {fixed:g} gCO2eq/kWh", "method": "given"}
    region = region or (decision.region if decision else None)
    if basis == "gate_window":
        value = decision.intensity_window_gco2_per_kwh if decision else None
        if value is None:
            raise ValueError("intensity_basis 'gate_window' needs a gate decision with a chosen window")
        chosen = decision.chosen_region
        return float(value), {
            "provider": chosen.provider if chosen else "unknown", "region": decision.region,
            "data_kind": chosen.data_kind if chosen else None, "signal": chosen.signal if chosen else None,
            "time": decision.start_at, "basis": "average over the carbon gate's chosen window",
            "method": "gate_window",
        }
    from greenkfp.components.carbon import annual_average
    from greenkfp.components.carbon.errors import ProviderConfigError, UnknownRegionError

    if not region:
        raise ValueError("a region is needed for intensity_basis 'annual_average' (none given, no gate decision)")
    try:
        estimate = annual_average(region, provider_options=provider_options)
    except (UnknownRegionError, ProviderConfigError) as exc:
        if decision is None or decision.intensity_window_gco2_per_kwh is None:
            # nothing better is known (the gate failed open, or there is no gate): the stated
            # default, so a run that trained is still scored, and the record says so
            from greenkfp.components.carbon.intensity import WORLD_AVERAGE_G_PER_KWH, WORLD_AVERAGE_SOURCE

            return WORLD_AVERAGE_G_PER_KWH, {
                "provider": "default", "region": region, "data_kind": "default", "signal": WORLD_AVERAGE_SOURCE,
                "time": None, "method": "default", "fallback_from": "annual_average",
                "basis": f"{WORLD_AVERAGE_SOURCE}: {WORLD_AVERAGE_G_PER_KWH:g} gCO2eq/kWh, because annual_average "
                         f"is unavailable ({exc}) and the gate chose no window",
            }
        # no embedded year for this region (or no embedded data in this build): the gate's window
        value, source = inference_intensity("gate_window", decision)
        source["basis"] += f" (annual_average unavailable: {exc})"
        source["fallback_from"] = "annual_average"
        return value, source
    return estimate.gco2_per_kwh, {
        "provider": estimate.provider, "region": estimate.region, "data_kind": estimate.data_kind,
        "signal": estimate.signal, "time": estimate.start.isoformat(), "end": estimate.end.isoformat(),
        "basis": estimate.basis, "method": "annual_average",
    }


def _check_lifetime(expected_lifetime_inferences: float | None) -> None:
    if expected_lifetime_inferences is not None and (
        isinstance(expected_lifetime_inferences, bool)
        or not isinstance(expected_lifetime_inferences, (int, float))
        or not (math.isfinite(expected_lifetime_inferences) and expected_lifetime_inferences >= 0)
    ):
        raise ValueError(f"expected_lifetime_inferences must be a number >= 0, got {expected_lifetime_inferences!r}")


def _candidate_entries(variant_list_path: str | Path, training_path: str | Path | None) -> list[tuple[Any, dict]]:
    """One candidate's variants, each with the start of its SCI entry (what the variant list and
    the training record say); a variant that cannot be scored is already marked skipped, with why."""
    variants = read_record(VariantList, variant_list_path)
    training = read_record(TrainingRecord, training_path) if training_path else None
    training_g, training_basis = training.emissions_g if training else (None, None)
    candidate = training.name if training else (Path(variants[0].source_path).stem if variants else None)
    pairs = []
    for variant in variants:
        entry = {"schema": SCHEMA, "candidate": candidate, "variant": variant.name,
                 "precision": variant.precision, "accuracy": variant.accuracy,
                 "accuracy_change_points": variant.accuracy_change_points,
                 "size_bytes": variant.size_bytes, "training_emissions_g": training_g,
                 "training_emissions_basis": training_basis}
        if not variant.eligible or not variant.file:
            entry.update(status="skipped", reason=variant.reason or variant.eligibility_reason)
        pairs.append((variant, entry))
    return pairs


def evaluate_variants(
    variants_dir: str | Path,
    variant_list_path: str | Path,
    test_path: str | Path,
    *,
    training_record_path: str | Path | None = None,
    decision_path: str | Path | None = None,
    hardware_profile: str = DEFAULT_PROFILE,
    hardware_overrides: Mapping[str, Any] | None = None,
    intensity_basis: str = "annual_average",
    functional_unit_size: float = 1000,
    expected_lifetime_inferences: float | None = None,
    max_seconds: float = 5.0,
    threads: int = 1,
    region: str | None = None,
    provider_options: Mapping[str, Any] | None = None,
) -> SciReport:
    """One entry per variant in the list: its SCI report, or why it was not scored.

    ``hardware_profile`` and ``hardware_overrides`` name the machine as everywhere (see
    ``greenkfp.components.energy.resolve_profile``); ``max_seconds`` and ``threads`` go into the
    benchmark's ``BenchmarkSettings``.
    """
    from greenkfp.components.data.datasets import read_dataset

    _check_lifetime(expected_lifetime_inferences)
    profile = resolve_profile(hardware_profile, hardware_overrides)
    # at least half the budget is left for session start-up and warm-up
    settings = BenchmarkSettings(intra_op_threads=threads, max_seconds=max_seconds,
                                 min_seconds=min(1.0, max_seconds / 2))
    unit = FunctionalUnit("inference", functional_unit_size)
    pairs = _candidate_entries(variant_list_path, training_record_path)
    decision = read_record(GateDecisionRecord, decision_path) if decision_path else None
    intensity, source = inference_intensity(intensity_basis, decision, region, provider_options)
    X = read_dataset(test_path).X
    results = []
    for variant, entry in pairs:
        if entry.get("status") == "skipped":
            results.append(entry)
            continue
        report = evaluate_variant_sci(
            str(Path(variants_dir) / variant.file), X, profile=profile, intensity_g_per_kwh=intensity,
            intensity_source=source, settings=settings, functional_unit=unit,
            expected_lifetime_inferences=expected_lifetime_inferences,
            training_emissions_g=entry["training_emissions_g"], subject=f"{entry['candidate']}/{variant.name}",
        ).to_dict()
        detail = SciDetail.from_dict(report)
        bench = detail.benchmark
        entry.update(
            status="scored",
            sci=detail.sci.value, sci_unit=detail.sci.unit,
            energy_per_inference_kwh=detail.E.per_item_kwh, energy_method=detail.E.method,
            latency_p50_ms=bench.latency("p50") if bench else None,
            latency_p95_ms=bench.latency("p95") if bench else None,
            latency_p99_ms=bench.latency("p99") if bench else None,
            throughput_rows_per_s=bench.batch_rows_per_s if bench else None,
            intensity_g_per_kwh=intensity, intensity_basis=source["basis"], lifecycle=detail.lifecycle,
            report=report,
        )
        results.append(entry)
    return SciReport.from_list(results)


def _interval(estimate) -> dict:
    return {"estimate": estimate.estimate, "low": estimate.low, "high": estimate.high}


def benchmark_all_variants(
    groups: "Sequence[tuple[str | Path, str | Path, str | Path | None]]",
    test_path: str | Path,
    *,
    decision_path: str | Path | None = None,
    hardware_profile: str = DEFAULT_PROFILE,
    hardware_overrides: Mapping[str, Any] | None = None,
    intensity_basis: str = "annual_average",
    functional_unit_size: float = 1000,
    expected_lifetime_inferences: float | None = None,
    max_seconds: float = 20.0,
    threads: int = 1,
    region: str | None = None,
    provider_options: Mapping[str, Any] | None = None,
    seed: int = 0,
    rows_per_visit: int = 64,
    min_rounds: int = 20,
    max_rounds: int = 1000,
) -> SciReport:
    """Every eligible variant of every candidate, measured in one interleaved benchmark.

    ``groups``: per candidate ``(variants directory, variant list path, training record path)``,
    in the pipeline's order. Returns one SCI entry per variant of every candidate (skipped
    ones with their reason), scored entries carrying medians with 95 % intervals, the per-round
    series (for paired comparisons) and the graph figures. ``max_seconds`` is the whole
    benchmark's budget.
    """
    from greenkfp.components.data.datasets import read_dataset

    from .interleaved import interleaved_benchmark

    _check_lifetime(expected_lifetime_inferences)
    profile = resolve_profile(hardware_profile, hardware_overrides)
    settings = BenchmarkSettings(intra_op_threads=threads, max_seconds=max_seconds, min_seconds=0.0,
                                 max_repeats=max_rounds)
    unit = FunctionalUnit("inference", functional_unit_size)
    decision = read_record(GateDecisionRecord, decision_path) if decision_path else None
    intensity, source = inference_intensity(intensity_basis, decision, region, provider_options)
    X = read_dataset(test_path).X
    pending, models = [], {}
    for variants_dir, variant_list_path, training_path in groups:
        for variant, entry in _candidate_entries(variant_list_path, training_path):
            if entry.get("status") != "skipped":
                name = f"{entry['candidate']}/{variant.name}"
                if name in models:
                    raise ValueError(f"two candidates are named {entry['candidate']!r}: variant names must be unique")
                models[name] = str(Path(variants_dir) / variant.file)
            pending.append(entry)
    measured = interleaved_benchmark(
        models, X, profile=profile, intensity_g_per_kwh=intensity, intensity_source=source, settings=settings,
        functional_unit=unit, rows_per_visit=rows_per_visit, min_rounds=min_rounds, seed=seed,
    ) if models else {}
    group = f"interleaved-{seed}-{len(models)}"
    results = []
    for entry in pending:
        m = measured.get(f"{entry['candidate']}/{entry['variant']}")
        if m is None:
            results.append(entry)
            continue
        report = m.report.to_dict()
        if expected_lifetime_inferences is not None:
            report["lifecycle"] = {
                "training_emissions_g": entry["training_emissions_g"],
                "expected_lifetime_items": expected_lifetime_inferences,
                "per_item_g": m.carbon_g.estimate,
                "inference_emissions_g": expected_lifetime_inferences * m.carbon_g.estimate,
                "total_g": (entry["training_emissions_g"] or 0.0) + expected_lifetime_inferences * m.carbon_g.estimate,
                "note": "reported apart from the SCI score; per-item carbon is the median over rounds",
            }
        detail = SciDetail.from_dict(report)
        sci = m.carbon_g.scaled(unit.per)
        entry.update(
            status="scored", sci=sci.estimate, sci_unit=detail.sci.unit,
            energy_per_inference_kwh=m.energy_kwh.estimate, energy_method=detail.E.method,
            latency_p50_ms=detail.benchmark.latency("p50"), latency_p95_ms=m.latency_p95_ms.estimate,
            latency_p99_ms=detail.benchmark.latency("p99"), throughput_rows_per_s=detail.benchmark.batch_rows_per_s,
            intensity_g_per_kwh=intensity, intensity_basis=source["basis"], lifecycle=report["lifecycle"],
            report=report, sci_interval=_interval(sci), per_inference_g_interval=_interval(m.carbon_g),
            energy_per_inference_kwh_interval=_interval(m.energy_kwh), time_per_inference_ms=_interval(m.time_ms),
            cpu_time_per_inference_ms=_interval(m.cpu_time_ms), latency_p95_ms_interval=_interval(m.latency_p95_ms),
            rounds={"group": group, "per_inference_g": list(m.per_inference_g),
                    "energy_per_inference_kwh": list(m.energy_per_inference_kwh),
                    "time_per_inference_s": list(m.time_per_inference_s),
                    "cpu_time_per_inference_s": list(m.cpu_time_per_inference_s)},
            macs=m.graph.macs, tree_comparisons=m.graph.tree_comparisons, weight_bytes=m.graph.weight_bytes,
            graph_basis=m.graph.to_dict()["basis"],
        )
        results.append(entry)
    return SciReport.from_list(results)
