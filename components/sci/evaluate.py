"""Evaluate the SCI of every eligible ONNX variant of one trained candidate.

Glue between the pipeline's records and :func:`~.benchmark.evaluate_variant_sci`: which
variants to score (the quantization step's list), the grid intensity ``I`` for the time of use
(from the embedded data or the gate's record), and the training emissions carried alongside
(never folded into the score).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from greenkfp.components.energy import DEFAULT_PROFILE, resolve_profile

from .benchmark import BenchmarkSettings, evaluate_variant_sci
from .sci import FunctionalUnit

SCHEMA = "greenkfp.sci_evaluation/v1"
INTENSITY_BASES = ("annual_average", "gate_window")


def _read_json(path: str | Path | None) -> Any:
    if not path:
        return None
    text = Path(path).read_text(encoding="utf-8").strip()
    return json.loads(text) if text else None


def _fixed_intensity(basis: str) -> float | None:
    try:
        value = float(basis)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"intensity_basis as a number must be a finite gCO2eq/kWh >= 0, got {basis!r}")
    return value


def inference_intensity(basis: str, decision: Mapping[str, Any] | None, region: str | None = None) -> tuple[float, dict]:
    """``I`` for inference and where it came from.

    ``annual_average``: the mean hourly intensity of the region over the latest full year of
    the embedded data (inference runs around the clock, so no single hour stands for it);
    ``gate_window``: the average over the window the carbon gate chose; a number: that
    intensity in gCO2eq/kWh, given by the user (a contract's or a region's published figure).
    """
    fixed = _fixed_intensity(basis)
    if fixed is not None:
        return fixed, {"provider": "user", "region": region or (decision or {}).get("region"), "data_kind": "given",
                       "signal": "given by the user", "time": None, "basis": f"given: {fixed:g} gCO2eq/kWh"}
    if basis not in INTENSITY_BASES:
        raise ValueError(
            f"intensity_basis must be one of {', '.join(INTENSITY_BASES)} or a number of gCO2eq/kWh, got {basis!r}"
        )
    region = region or (decision or {}).get("region")
    if basis == "gate_window":
        value = (decision or {}).get("intensity_window_gco2_per_kwh")
        if value is None:
            raise ValueError("intensity_basis 'gate_window' needs a gate decision with a chosen window")
        chosen = next((r for r in decision.get("regions", []) if r["region"] == decision["region"]), {})
        return float(value), {
            "provider": chosen.get("provider", "unknown"), "region": decision["region"],
            "data_kind": chosen.get("data_kind"), "signal": chosen.get("signal"),
            "time": decision.get("start_at"), "basis": "average over the carbon gate's chosen window",
        }
    from greenkfp.components.carbon.errors import ProviderConfigError, UnknownRegionError
    from greenkfp.components.carbon.providers.embedded import EmbeddedProvider

    if not region:
        raise ValueError("a region is needed for intensity_basis 'annual_average' (none given, no gate decision)")
    try:
        provider = EmbeddedProvider()
        row = provider.zone_index(region)
    except (UnknownRegionError, ProviderConfigError) as exc:
        if (decision or {}).get("intensity_window_gco2_per_kwh") is None:
            raise
        # a live provider's region (a UK region id, say), or a portable build without the embedded
        # data, has no embedded year: use the gate's window
        value, source = inference_intensity("gate_window", decision)
        source["basis"] += f" (annual_average unavailable: {exc})"
        return value, source
    year = provider.data.years[-1]
    from datetime import datetime, timezone

    start = datetime(year, 1, 1, tzinfo=timezone.utc).timestamp()
    end = datetime(year + 1, 1, 1, tzinfo=timezone.utc).timestamp()
    first = int((start - provider.data.start_epoch_s) // 3600)
    last = int((end - provider.data.start_epoch_s) // 3600)
    values = provider.data.intensities[provider.signal][row, first:last]
    return float(np.mean(values)), {
        "provider": "embedded", "region": provider.data.zones[row], "data_kind": "historical",
        "signal": f"{provider.signal} average (Electricity Maps, embedded)",
        "time": datetime(year, 1, 1, tzinfo=timezone.utc).isoformat(),
        "basis": f"mean of the {values.size} hourly values of {year}",
    }


def _training_emissions(record: Mapping[str, Any] | None) -> tuple[float | None, str | None]:
    if not record:
        return None, None
    emissions = record.get("emissions", {})
    if emissions.get("hourly_g") is not None:
        return float(emissions["hourly_g"]), "hourly grid intensity over the fit (training step)"
    if emissions.get("codecarbon_g") is not None:
        return float(emissions["codecarbon_g"]), "CodeCarbon's figure (training step)"
    return None, None


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
) -> list[dict]:
    """One entry per variant in the list: its SCI report, or why it was not scored.

    ``hardware_profile`` and ``hardware_overrides`` name the machine as everywhere (see
    ``greenkfp.components.energy.resolve_profile``); ``max_seconds`` and ``threads`` go into the
    benchmark's ``BenchmarkSettings``.
    """
    from greenkfp.components.data.datasets import read_dataset

    if expected_lifetime_inferences is not None and (
        isinstance(expected_lifetime_inferences, bool)
        or not isinstance(expected_lifetime_inferences, (int, float))
        or not (math.isfinite(expected_lifetime_inferences) and expected_lifetime_inferences >= 0)
    ):
        raise ValueError(f"expected_lifetime_inferences must be a number >= 0, got {expected_lifetime_inferences!r}")
    profile = resolve_profile(hardware_profile, hardware_overrides)
    # at least half the budget is left for session start-up and warm-up
    settings = BenchmarkSettings(intra_op_threads=threads, max_seconds=max_seconds,
                                 min_seconds=min(1.0, max_seconds / 2))
    unit = FunctionalUnit("inference", functional_unit_size)
    variants = _read_json(variant_list_path) or []
    training = _read_json(training_record_path)
    decision = _read_json(decision_path)
    intensity, source = inference_intensity(intensity_basis, decision, region)
    training_g, training_basis = _training_emissions(training)
    candidate = (training or {}).get("candidate", {}).get("name")
    if candidate is None and variants:
        candidate = Path(variants[0]["source_path"]).stem
    X = read_dataset(test_path).X
    results = []
    for variant in variants:
        entry = {"schema": SCHEMA, "candidate": candidate, "variant": variant["name"],
                 "precision": variant.get("precision"), "accuracy": variant.get("accuracy"),
                 "accuracy_change_points": variant.get("accuracy_change_points"),
                 "size_bytes": variant.get("size_bytes"), "training_emissions_g": training_g,
                 "training_emissions_basis": training_basis}
        if not variant.get("eligible") or not variant.get("file"):
            entry.update(status="skipped", reason=variant.get("reason") or variant.get("eligibility_reason"))
            results.append(entry)
            continue
        report = evaluate_variant_sci(
            str(Path(variants_dir) / variant["file"]), X, profile=profile, intensity_g_per_kwh=intensity,
            intensity_source=source, settings=settings, functional_unit=unit,
            expected_lifetime_inferences=expected_lifetime_inferences, training_emissions_g=training_g,
            subject=f"{candidate}/{variant['name']}",
        ).to_dict()
        bench = report["benchmark"]
        entry.update(
            status="scored",
            sci=report["sci"]["value"], sci_unit=report["sci"]["unit"],
            energy_per_inference_kwh=report["E"]["per_item_kwh"], energy_method=report["E"]["method"],
            latency_p50_ms=bench["latency_ms"]["p50"], latency_p95_ms=bench["latency_ms"]["p95"],
            latency_p99_ms=bench["latency_ms"]["p99"], throughput_rows_per_s=bench["batch_rows_per_s"],
            intensity_g_per_kwh=intensity, intensity_basis=source["basis"], lifecycle=report.get("lifecycle"),
            report=report,
        )
        results.append(entry)
    return results


def sci_metrics(results: list[dict]) -> dict[str, float]:
    """``<variant>_<figure>`` numbers for a KFP Metrics artifact (scored variants only)."""
    figures = {}
    for r in results:
        if r["status"] != "scored":
            continue
        for key in ("sci", "energy_per_inference_kwh", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
                    "throughput_rows_per_s", "accuracy"):
            if r.get(key) is not None:
                figures[f"{r['variant']}_{key}"] = float(r[key])
    return figures


def sci_markdown(results: list[dict]) -> str:
    """A Markdown table of the SCI per variant, with the method disclosure."""
    if not results:
        return "# SCI\n\nNo variants.\n"
    lines = [f"# Software Carbon Intensity: {results[0]['candidate']}", "",
             "| variant | accuracy | p95 latency ms | energy per inference kWh | SCI | status |",
             "|---|---|---|---|---|---|"]
    for r in results:
        if r["status"] != "scored":
            reason = str(r["reason"]).replace("|", "/")
            lines.append(f"| {r['variant']} | | | | | skipped: {reason} |")
            continue
        lines.append(f"| {r['variant']} | {r['accuracy']:.4f} | {r['latency_p95_ms']:.4f} | "
                     f"{r['energy_per_inference_kwh']:.3g} ({r['energy_method']}) | {r['sci']:.3g} {r['sci_unit']} | scored |")
    scored = [r for r in results if r["status"] == "scored"]
    if scored:
        report = scored[0]["report"]
        lines += ["", f"I = {scored[0]['intensity_g_per_kwh']:.1f} gCO2eq/kWh ({scored[0]['intensity_basis']})",
                  "", f"Boundary: {report['software_boundary']}", "", f"Methodology: {report['methodology']}"]
        if report.get("uncertainty"):
            lines += ["", f"> {report['uncertainty']}"]
    if results[0].get("training_emissions_g") is not None:
        lines += ["", f"Training emissions, reported apart from the SCI: {results[0]['training_emissions_g']:.3g} g CO2eq "
                      f"({results[0]['training_emissions_basis']})."]
    return "\n".join(lines) + "\n"
