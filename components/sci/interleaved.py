"""One benchmark for many variants: interleaved rounds, estimates with 95 % intervals.

Comparing variants benchmarked at different times (or on different nodes) compares the
machine's moods as much as the models. :func:`interleaved_benchmark` measures every variant in
one process with the same thread settings, in *rounds*: each round visits every variant once,
in a fresh random order (numpy, seeded), and a visit sends ``rows_per_visit`` single-row
requests (each timed) and then the same rows as one batched request, inside the variant's
:class:`~greenkfp.components.energy.EnergyMeter` (RAPL where readable, else modeled from the
visit's CPU utilisation). Drift and neighbours' load then hit all variants alike, and round
``r`` of one variant pairs with round ``r`` of another.

Rounds repeat until ``settings.max_seconds`` (the whole benchmark's budget, warm-up and session
creation included) is spent, at least ``min_rounds`` and at most ``settings.max_repeats``.

Per variant and round: time and CPU time per inference, energy per inference (x PUE), the
carbon per inference ``(E x I + M) / n`` with ``M`` the embodied share for the visit's wall
time, and the p95 of the visit's single-row latencies (the variant's ``latency_p95_ms`` is the
median of those over rounds; p50 and p99 are over all single-row requests pooled). Each figure is reported as the median over rounds with its 95 % bootstrap interval
(:mod:`greenkfp.components.stats`), widened in quadrature by
:data:`~greenkfp.components.stats.VARIANT_RUN_TO_RUN` (what a rerun in a fresh process moves one
variant by, which one run's rounds cannot see); the interval is that of the energy model's
*inputs* (time and CPU time as measured). The energy model's own error band (modeled energy) is stated apart,
in the SCI report's ``uncertainty``. Each variant also gets a full :class:`~.sci.SciReport`
over all its rounds (ratio of the sums), for the disclosure the SCI specification asks for.

``onnxruntime`` is imported when the benchmark runs. No kfp import.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Sequence

import numpy as np

from greenkfp.components.energy import HardwareProfile, resolve_profile

from ..stats import VARIANT_RUN_TO_RUN, Estimate, bootstrap_median, widened
from .benchmark import BenchmarkResult, BenchmarkSettings, _boundary, _load_session, _percentiles, _prepare_input, \
    cpu_clock_for
from .graph import GraphFigures, graph_figures
from .sci import FunctionalUnit, SciReport

__all__ = ["VariantMeasurement", "interleaved_benchmark"]


@dataclass(frozen=True)
class VariantMeasurement:
    """One variant's rounds and estimates from :func:`interleaved_benchmark`."""

    name: str
    time_per_inference_s: tuple[float, ...]
    cpu_time_per_inference_s: tuple[float, ...]
    energy_per_inference_kwh: tuple[float, ...]
    per_inference_g: tuple[float, ...]
    round_p95_ms: tuple[float, ...]
    graph: GraphFigures
    report: SciReport
    seed: int

    def _median(self, values: Sequence[float], scale: float = 1.0, offset: int = 0) -> Estimate:
        # the rounds' interval, widened by what a rerun in a fresh process moves one variant by
        return widened(bootstrap_median(np.asarray(values) * scale, seed=self.seed + offset), VARIANT_RUN_TO_RUN)

    @property
    def time_ms(self) -> Estimate:
        return self._median(self.time_per_inference_s, 1000.0, 1)

    @property
    def cpu_time_ms(self) -> Estimate:
        return self._median(self.cpu_time_per_inference_s, 1000.0, 2)

    @property
    def energy_kwh(self) -> Estimate:
        return self._median(self.energy_per_inference_kwh, 1.0, 3)

    @property
    def carbon_g(self) -> Estimate:
        """gCO2eq per inference."""
        return self._median(self.per_inference_g, 1.0, 4)

    @property
    def latency_p95_ms(self) -> Estimate:
        return self._median(self.round_p95_ms, 1.0, 5)


def _methodology(rounds: int, rows: int, n_variants: int, method: str, unit: FunctionalUnit, pue: float,
                 seed: int) -> str:
    energy = ("measured from Linux RAPL counters, charged by the share of cores reserved" if method == "measured"
              else "modeled per visit from the CPU utilisation of the reserved cores with the Teads power curve over "
                   "the profile's TDP, plus RAM power per GB")
    return (
        f"SCI 'calculation' method, interleaved benchmark: {rounds} rounds, each visiting all {n_variants} variants "
        f"in a fresh random order (seed {seed}); a visit is {rows} single-row requests then the same rows as one "
        f"batched request (warm-up excluded). E: {energy}; x PUE {pue:g}. I: location-based grid intensity from the "
        "source given. M: TE x (TiR / EL) x (RR / ToR), TiR the visits' wall time. "
        f"R: inferences counted {unit.label}. The score and E here are over all rounds (ratio of sums); the entry's "
        "figures are medians over rounds with 95 % bootstrap intervals."
    )


def interleaved_benchmark(
    models: Mapping[str, Any],
    X: Any,
    *,
    profile: HardwareProfile | str,
    intensity_g_per_kwh: float,
    intensity_source: Mapping[str, Any],
    settings: BenchmarkSettings | None = None,
    functional_unit: FunctionalUnit | None = None,
    rows_per_visit: int = 64,
    min_rounds: int = 20,
    seed: int = 0,
    timer=time.perf_counter,
) -> dict[str, VariantMeasurement]:
    """Benchmark every model in ``models`` (name -> ONNX path, bytes or ModelProto) interleaved.

    Args:
        models: The variants, by name (``candidate/variant``); at least one.
        X: Test data, rows x features (the requests).
        profile: The machine (a preset's name or a profile): TDP and RAM for modeled energy,
            embodied emissions for M.
        intensity_g_per_kwh, intensity_source: ``I`` and where it came from.
        settings: Threads, batch size, warm-up, the whole benchmark's ``max_seconds`` and
            ``max_repeats`` (most rounds), metering.
        functional_unit: ``R`` (default per 1,000 inferences).
        rows_per_visit: Rows per visit (single-row requests, then one batch of them).
        min_rounds: Rounds run even past the budget (intervals need rounds).
        seed: Seeds the visiting order and the bootstrap.

    Returns:
        Name -> :class:`VariantMeasurement`, in the order given.
    """
    if not models:
        raise ValueError("models must name at least one variant")
    settings = BenchmarkSettings() if settings is None else settings
    unit = FunctionalUnit("inference", 1000) if functional_unit is None else functional_unit
    profile = resolve_profile(profile)
    if int(rows_per_visit) < 1 or int(min_rounds) < 2:
        raise ValueError(f"rows_per_visit must be >= 1 and min_rounds >= 2, got {rows_per_visit!r}, {min_rounds!r}")
    cpu_timer, cpu_clock = cpu_clock_for(settings.cores)
    t_begin = timer()
    started_at = datetime.now(timezone.utc)
    names = list(models)
    state = {}
    for name in names:
        session, mode, version = _load_session(models[name], settings.intra_op_threads, settings.inter_op_threads,
                                               settings.providers)
        input_name, data = _prepare_input(session, X)
        for i in range(settings.warmup):
            session.run(None, {input_name: data[i % len(data):i % len(data) + 1]})
        if settings.warmup:
            session.run(None, {input_name: data[:settings.batch_size]})
        state[name] = {"session": session, "input": input_name, "data": data, "mode": mode, "version": version,
                       "meter": settings.meter(profile, cpu_timer), "singles": [], "batch_s": 0.0, "batch_rows": 0,
                       "rows": [], "time": [], "cpu": [], "energy": [], "g": [], "p95": [], "wall": 0.0,
                       "kwh": 0.0, "items": 0, "methods": set(), "reading": None}
    rng = np.random.default_rng(seed)
    n_rows = len(state[names[0]]["data"])
    rows = min(int(rows_per_visit), n_rows)
    lifespan_s = profile.lifespan.total_seconds()
    resource_share = settings.cores / profile.host_vcpus
    last_round = 0.0
    n_rounds = 0
    while n_rounds < settings.max_repeats:
        now = timer()
        if n_rounds >= min_rounds and now + last_round > t_begin + settings.max_seconds:
            break
        start = (n_rounds * rows) % n_rows
        index = [(start + i) % n_rows for i in range(rows)]
        for position in rng.permutation(len(names)):
            s = state[names[position]]
            session, feed_name, data = s["session"], s["input"], s["data"]
            batch = {feed_name: data[index]}
            latencies = []
            s["meter"].start()
            for i in index:
                t0 = timer()
                session.run(None, {feed_name: data[i:i + 1]})
                latencies.append(timer() - t0)
            t0 = timer()
            session.run(None, batch)
            s["batch_s"] += timer() - t0
            reading = s["meter"].stop()
            n = 2 * rows
            kwh = reading.energy_kwh * settings.pue
            embodied = profile.embodied_g * (reading.duration_s / lifespan_s) * resource_share
            s["singles"] += latencies
            s["batch_rows"] += rows
            s["time"].append(reading.duration_s / n)
            s["cpu"].append(reading.cpu_time_s / n)
            s["energy"].append(kwh / n)
            s["g"].append((kwh * intensity_g_per_kwh + embodied) / n)
            s["p95"].append(float(np.percentile(np.asarray(latencies) * 1000.0, 95)))
            s["wall"] += reading.duration_s
            s["kwh"] += kwh
            s["items"] += n
            s["methods"].add(reading.method)
            s["reading"] = reading
        n_rounds += 1
        last_round = timer() - now
    ended_at = datetime.now(timezone.utc)
    out = {}
    for k, name in enumerate(names):
        s = state[name]
        methods = s["methods"]
        method = methods.pop() if len(methods) == 1 else "mixed"
        bench = BenchmarkResult(
            latency_ms=_percentiles(s["singles"]), batch_latency_ms={}, batch_size=rows,
            batch_rows_per_s=s["batch_rows"] / s["batch_s"] if s["batch_s"] > 0 else None,
            single_rows_per_s=len(s["singles"]) / sum(s["singles"]) if sum(s["singles"]) > 0 else None,
            n_single_requests=len(s["singles"]), n_batch_requests=n_rounds, n_batch_rows=s["batch_rows"],
            n_inferences=s["items"], n_rounds=n_rounds, round_p95_ms=tuple(s["p95"]), wall_time_s=s["wall"],
            total_time_s=timer() - t_begin, cpu_time_s=float(sum(np.asarray(s["cpu"]) * 2 * rows)),
            cpu_utilisation_percent=0.0, cpu_clock=cpu_clock, cores_reserved=settings.cores,
            intra_op_threads=settings.intra_op_threads, inter_op_threads=settings.inter_op_threads,
            execution_mode=s["mode"], providers=settings.providers, onnxruntime_version=s["version"],
            warmup_requests=settings.warmup + (1 if settings.warmup else 0), max_seconds=settings.max_seconds,
            stability_rule=f"interleaved: rounds until the {settings.max_seconds:g} s budget, at least {min_rounds}",
            converged=True, stop_reason="budget", started_at=started_at, ended_at=ended_at,
            input_name=s["input"], n_rows=int(n_rows), n_features=int(s["data"].shape[1]),
        )
        if bench.wall_time_s > 0:
            bench = replace(bench, cpu_utilisation_percent=100.0 * bench.cpu_time_s / (bench.wall_time_s * settings.cores))
        reading = s["reading"]
        report = SciReport.compute(
            energy_kwh=s["kwh"], energy_method=method, energy_detail=reading.detail if reading else "",
            energy_parts=reading.parts if reading else (), intensity_g_per_kwh=intensity_g_per_kwh,
            intensity_source=intensity_source, total_embodied_g=profile.embodied_g,
            time_reserved=timedelta(seconds=s["wall"]), expected_lifespan=profile.lifespan,
            resources_reserved=settings.cores, total_resources=profile.host_vcpus, items=s["items"],
            functional_unit=unit, software_boundary=_boundary(bench, profile, False),
            methodology=_methodology(n_rounds, rows, len(names), method, unit, settings.pue, seed),
            hardware_profile=profile.to_dict(), uncertainty=reading.uncertainty if reading else None,
            benchmark=bench.to_dict(), notes=list(reading.notes) if reading else [], pue=settings.pue, subject=name,
        )
        out[name] = VariantMeasurement(
            name=name, time_per_inference_s=tuple(s["time"]), cpu_time_per_inference_s=tuple(s["cpu"]),
            energy_per_inference_kwh=tuple(s["energy"]), per_inference_g=tuple(s["g"]),
            round_p95_ms=tuple(s["p95"]), graph=graph_figures(models[name]), report=report, seed=seed + 10 * k,
        )
    return out
