"""The inference server's Prometheus metrics, on the app's own registry.

Named after Prometheus's conventions (base units: seconds, joules, grams; ``_total`` counters)
and to sit beside Kepler's ``kepler_container_joules_total``: the energy counter is
``greenkfp_inference_energy_joules_total``, so ``rate()`` of either is watts. Every series has
the ``model`` label. The README's "Serving" section lists them with units and methods.

Energy (:class:`EnergyAccount`) is charged per ``session.run``:

* ``method="measured"`` when RAPL counters are readable (:class:`~..energy.meters.RaplReader`):
  the package (and DRAM) energy over the run, times the run's share of the machine (its CPU
  seconds over wall seconds x logical CPUs, at most 1);
* ``method="modeled"`` otherwise: the run's CPU seconds x the hardware profile's modeled power
  of one busy vCPU (:func:`~..energy.model.model_energy` at 100 % utilisation of one core: TDP x
  the Teads curve at 100 % / vCPUs, plus that core's share of RAM power), in joules.

CPU seconds are the calling thread's (``time.thread_time``) when ONNX Runtime runs on that
thread alone (``--threads 1``), else the process's (``time.process_time``) over the run, which
also counts whatever else the process did meanwhile (an upper bound).

Carbon (:class:`GridIntensity`): the grid intensity of ``region`` now, from the carbon service
(:func:`~..carbon.intensity.intensity_over`, embedded data by default), fetched in a worker
thread every ``refresh_s``, never on a request's path; a failed refresh keeps the last value, and
the gauges say how old it is and how many refreshes failed. Emissions are charged per run at
the intensity known then.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["EnergyAccount", "GridIntensity", "RunReport", "ServingMetrics", "LATENCY_BUCKETS_S"]

logger = logging.getLogger("greenkfp.serving")

#: Request latency buckets, seconds: fine around a 50 ms SLA.
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.045, 0.05,
                     0.055, 0.06, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)
#: Batch size buckets (requests or rows per session.run).
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128, 256, 512, 1024)
J_PER_KWH = 3.6e6


@dataclass(frozen=True)
class RunReport:
    """One ``session.run``: its CPU seconds, wall seconds and energy (joules, and how obtained)."""

    cpu_s: float
    wall_s: float
    energy_j: float
    method: str


class EnergyAccount:
    """Charges each ``session.run`` its energy: RAPL-measured when readable, else modeled.

    Args:
        profile: The hardware profile (name or :class:`~..energy.profiles.HardwareProfile`).
        threads: ONNX Runtime's intra-op threads (1: the calling thread's CPU time is exact).
        rapl: The RAPL reader (default ``/sys/class/powercap``).
    """

    def __init__(self, profile="n2-standard-4", *, threads: int = 1, rapl=None):
        from ..energy.meters import RaplReader
        from ..energy.model import busy_core_watts, model_energy
        from ..energy.profiles import resolve_profile

        self.profile = resolve_profile(profile)
        self.rapl = rapl if rapl is not None else RaplReader()
        self.method = "measured" if self.rapl.available() else "modeled"
        self._domains = self.rapl.domains() if self.method == "measured" else []
        #: The modeled power of one busy vCPU (its CPU and RAM share), watts = joules per CPU-second.
        one_core = model_energy(self.profile, 100.0, 1.0, 1)
        self.watts_per_busy_core = busy_core_watts(self.profile)
        self.model_detail = f"{one_core.cpu_detail()}; {one_core.ram_detail()}"
        self._cpu_clock = time.thread_time if threads == 1 else time.process_time
        self._cpus = os.cpu_count() or 1

    def measure(self, work):
        """``(work(), RunReport)``: ``work`` run and charged."""
        before = self.rapl.snapshot(self._domains) if self.method == "measured" else None
        c0, t0 = self._cpu_clock(), time.perf_counter()
        result = work()
        cpu_s, wall_s = max(0.0, self._cpu_clock() - c0), max(0.0, time.perf_counter() - t0)
        if before is not None:
            parts = self.rapl.energy_kwh(before, self.rapl.snapshot(self._domains))
            share = min(1.0, cpu_s / (wall_s * self._cpus)) if wall_s > 0 else 0.0
            energy_j = sum(parts.values()) * share * J_PER_KWH
        else:
            energy_j = cpu_s * self.watts_per_busy_core
        return result, RunReport(cpu_s, wall_s, energy_j, self.method)


class GridIntensity:
    """The current grid intensity of ``region`` (gCO2eq/kWh), refreshed off the request path.

    ``value`` is NaN until the first successful fetch; a failed fetch keeps the last value.
    """

    def __init__(self, region: str, *, provider: str = "embedded", provider_options=None, refresh_s: float = 300.0):
        self.region, self.provider, self.provider_options = region, provider, provider_options
        self.refresh_s = refresh_s
        self.value = math.nan
        self.source = ""
        self.updated_at = math.nan  # unix seconds of the last successful fetch
        self.failures = 0
        self.last_error = ""
        self.on_failure = None  # called after each failed fetch (the metrics count them)
        self._lock = threading.Lock()

    def fetch(self) -> bool:
        """Ask the carbon service once (blocking: call from a worker thread). True on success."""
        from ..carbon.intensity import intensity_over

        now = datetime.now(timezone.utc)
        try:
            estimate = intensity_over(self.region, now, now, provider=self.provider,
                                      provider_options=self.provider_options)
        except Exception as exc:  # any provider failure: keep the last value
            with self._lock:
                self.failures += 1
                self.last_error = " ".join(str(exc).split())[:300]
            logger.warning("grid intensity of %s from %s failed (keeping the last value): %s",
                           self.region, self.provider, self.last_error)
            if self.on_failure is not None:
                self.on_failure()
            return False
        source = f"{estimate.provider} {estimate.data_kind.replace('_', ' ')}: {estimate.basis}"
        with self._lock:
            first = self.value != self.value
            self.value = float(estimate.gco2_per_kwh)
            self.source, changed = source, source.split(":")[0] != self.source.split(":")[0]
            self.updated_at = time.time()
        if first or changed:
            logger.info("grid intensity of %s: %.1f gCO2eq/kWh (%s)", self.region, self.value, source)
        return True


class ServingMetrics:
    """The server's metrics for one model, on ``registry``."""

    def __init__(self, registry: CollectorRegistry, model: str, energy: EnergyAccount, grid: GridIntensity):
        self.model, self.energy, self.grid = model, energy, grid
        self._totals = (0, 0.0)  # inferences and joules so far (replaced whole: read by the scrape's thread)
        labels = ("model",)
        self.requests = Counter("greenkfp_inference_requests", "Inference requests answered, by outcome "
                                "(success, client_error: 4xx, server_error: 5xx)", ("model", "outcome"),
                                registry=registry)
        self.errors = Counter("greenkfp_inference_errors", "Inference requests answered with an error, by kind",
                              ("model", "kind"), registry=registry)
        self.latency = Histogram("greenkfp_inference_request_duration_seconds",
                                 "Time from a request's arrival to its answer (successful inference requests), "
                                 "seconds", labels, buckets=LATENCY_BUCKETS_S, registry=registry)
        self.batch_requests = Histogram("greenkfp_inference_batch_requests",
                                        "Requests run together in one session.run", labels, buckets=BATCH_BUCKETS,
                                        registry=registry)
        self.batch_rows = Histogram("greenkfp_inference_batch_rows", "Rows (inferences) in one session.run",
                                    labels, buckets=BATCH_BUCKETS, registry=registry)
        self.inferences = Counter("greenkfp_inferences", "Inferences (input rows) run successfully", labels,
                                  registry=registry)
        self.cpu = Counter("greenkfp_inference_cpu_seconds", "CPU time spent in session.run, seconds", labels,
                           registry=registry)
        self.joules = Counter("greenkfp_inference_energy_joules",
                              "Energy of session.run, joules; method: measured (RAPL) or modeled (CPU seconds x "
                              "the hardware profile's power of a busy vCPU)", ("model", "method"), registry=registry)
        self.carbon = Counter("greenkfp_inference_carbon_grams",
                              "Emissions of session.run, grams CO2eq (energy x the grid intensity known then)",
                              ("model", "method"), registry=registry)
        self.per_1000 = Gauge("greenkfp_inference_carbon_grams_per_1000_inferences",
                              "Emissions per 1,000 inferences at the current grid intensity, grams CO2eq (energy "
                              "per inference so far x current intensity)", ("model", "method"), registry=registry)
        self.per_1000.labels(model, energy.method).set_function(self._per_1000)
        self.batch_splits = Counter("greenkfp_inference_batch_splits",
                                    "Batches of several requests that failed and whose requests ran again one by "
                                    "one (only a request failing alone gets the error)", labels, registry=registry)
        self.batching = Gauge("greenkfp_batching_enabled",
                              "1 when requests may run together in one session.run, 0 when each runs alone "
                              "(--max-batch-size 1, or a model whose declared shapes cannot be batched)", labels,
                              registry=registry)
        self.ready = Gauge("greenkfp_model_ready", "1 when the model is loaded and serving, else 0", labels,
                           registry=registry)
        self.intensity = Gauge("greenkfp_grid_intensity_grams_per_kilowatt_hour",
                               "Grid carbon intensity of the serving region now, gCO2eq/kWh (NaN until known)",
                               ("region", "provider"), registry=registry)
        self.intensity.labels(grid.region, grid.provider).set_function(lambda: grid.value)
        self.intensity_age = Gauge("greenkfp_grid_intensity_age_seconds",
                                   "Seconds since the grid intensity was last fetched successfully (NaN: never)",
                                   ("region", "provider"), registry=registry)
        self.intensity_age.labels(grid.region, grid.provider).set_function(
            lambda: time.time() - grid.updated_at if grid.updated_at == grid.updated_at else math.nan)
        self.intensity_failures = Counter("greenkfp_grid_intensity_refresh_failures",
                                          "Failed fetches of the grid intensity (the last value is kept)",
                                          ("region", "provider"), registry=registry)
        grid.on_failure = self.intensity_failures.labels(grid.region, grid.provider).inc
        self.power_model = Gauge("greenkfp_modeled_busy_core_watts",
                                 "The hardware profile's modeled power of one busy vCPU (CPU and RAM share), watts",
                                 ("model", "profile"), registry=registry)
        self.power_model.labels(model, energy.profile.name).set(energy.watts_per_busy_core)
        # every series exists from the start (a rate() over a missing series is empty, not 0)
        for outcome in ("success", "client_error", "server_error"):
            self.requests.labels(model, outcome)
        for metric in (self.latency, self.batch_requests, self.batch_rows, self.inferences, self.cpu, self.ready,
                       self.batch_splits, self.batching):
            metric.labels(model)
        self.joules.labels(model, energy.method)
        self.carbon.labels(model, energy.method)
        # the labelled children the request path uses, looked up once (``.labels()`` per request costs)
        self._outcomes = {outcome: self.requests.labels(model, outcome)
                          for outcome in ("success", "client_error", "server_error")}
        self._kinds: dict[str, Counter] = {}
        self._latency = self.latency.labels(model)
        self._batch_requests, self._batch_rows = self.batch_requests.labels(model), self.batch_rows.labels(model)
        self._inferences, self._cpu = self.inferences.labels(model), self.cpu.labels(model)
        self._joules = {energy.method: self.joules.labels(model, energy.method)}
        self._carbon = {energy.method: self.carbon.labels(model, energy.method)}

    def _per_1000(self) -> float:
        rows, joules = self._totals
        if rows == 0:
            return math.nan
        return joules / rows * 1000 / J_PER_KWH * self.grid.value

    def record_batch(self, requests: int, rows: int, report: RunReport) -> None:
        rows_so_far, joules_so_far = self._totals
        self._totals = (rows_so_far + rows, joules_so_far + report.energy_j)
        self._batch_requests.observe(requests)
        self._batch_rows.observe(rows)
        self._inferences.inc(rows)
        self._cpu.inc(report.cpu_s)
        method = report.method
        joules = self._joules.get(method)
        if joules is None:
            joules = self._joules[method] = self.joules.labels(self.model, method)
        joules.inc(report.energy_j)
        if self.grid.value == self.grid.value:  # known
            carbon = self._carbon.get(method)
            if carbon is None:
                carbon = self._carbon[method] = self.carbon.labels(self.model, method)
            carbon.inc(report.energy_j / J_PER_KWH * self.grid.value)

    def record_answer(self, status: int, kind: str | None = None, seconds: float | None = None) -> None:
        outcome = "success" if status < 400 else "client_error" if status < 500 else "server_error"
        self._outcomes[outcome].inc()
        if kind is not None:
            errors = self._kinds.get(kind)
            if errors is None:
                errors = self._kinds[kind] = self.errors.labels(self.model, kind)
            errors.inc()
        if seconds is not None:
            self._latency.observe(seconds)
