"""Trace-driven simulation of autoscaling policies over a day or a week of traffic
(``greenkfp serving simulate``).

Three policies serve the same trace: (a) :func:`~.autoscaling.aggressive_default`, (b)
:func:`~.autoscaling.greenkfp_policy`, both through the HPA model (:mod:`.hpa`), and (c) the
oracle, exactly ``ceil(rate / capacity_rps)`` Ready pods every minute (at least one, and within the
policies' minimum and maximum replicas, so a capped (b) meets a capped oracle). Every figure
is **modeled**: the per-replica capacity and latency come from a Locust measurement (the
:class:`~.autoscaling.ReplicaProfile`), everything else from the model below.

The trace
---------
Requests per minute, either from a CSV (:func:`read_trace`: header ``minute,requests``; ``minute``
0, 1, 2, ... consecutive; ``requests`` the requests in that minute, a finite number >= 0; at most
:data:`MAX_TRACE_MINUTES` rows and :data:`MAX_TRACE_BYTES` bytes) or the built-in day shape
(:func:`builtin_trace`), a fraction of ``peak_rps`` per minute, linear between these points:

==========  ======  ==========================================
time        share   what
==========  ======  ==========================================
00:00       0.10    night, off-peak (0.08 at 05:00)
06:00-09:00 0.10 -> 0.55  morning ramp
09:00-17:00 0.55    daytime, a lunch bump to 0.65 at 12:30
17:00-20:00 0.55 -> 1.00  evening ramp to the evening spike
20:00-21:00 1.00    the evening spike
21:00-24:00 1.00 -> 0.10  late evening down to the night
==========  ======  ==========================================

plus short spikes (a step up for a few minutes, as a push notification or a batch client
makes): +0.30 at 08:50 for 5 min, +0.35 at 13:10 for 3 min, +0.25 at 16:30 for 10 min, +0.30 at
22:05 for 4 min. A week is seven such days from ``start``; Saturdays and Sundays carry 60 % of a
weekday's traffic (:data:`WEEKEND_SHARE`). The default ``peak_rps`` is
:data:`DEFAULT_PEAK_CAPACITIES` x the profile's SLA capacity, so the oracle needs that many pods at
the evening peak (and policy (b), at 80 % headroom, about 7).

The cluster model (one step = one HPA sync, 15 s)
-------------------------------------------------
* The load of a minute is its requests / 60, constant over the minute, spread evenly over the
  Ready pods.
* The HPA reads the metrics of the previous step (metrics-server reports a window that ended
  before the sync), then sets the replica count; a new pod is Ready ``profile.startup_s`` after
  the HPA created it and is Running but not Ready until then (its container runs, loading the
  model; nodes have room, so no pod is Pending). The controller's ``groupPods`` sets such a pod
  aside for the CPU metric only: memory and the power metric count its value (memory in use,
  power 0). A pod Ready for less than a metric window (:data:`METRIC_WINDOW_S`) within the CPU
  initialization period (5 min from its start) has its CPU sample set aside too. A new HPA
  records the count it finds as its first recommendation (it holds it through its scale-down
  window). A scale-down removes the newest pods first (the ReplicaSet removes not-ready pods
  before Ready ones).
* Per Ready pod: CPU utilisation = ``profile.cpu_utilisation(load per pod)``, capped at the CPU
  limit when the profile has one; memory utilisation a constant :data:`MEMORY_UTILISATION` % of
  the request (an ONNX server's memory is its model and buffers, not its load); the power metric
  the HPA reads is ``profile.power_metric_w`` (the server's energy counter's rate, as
  ``greenkfp_policy`` sets its target from); the energy charged is the energy model of the
  hardware profile (``model_energy`` at that utilisation over the pod's CPU request, idle power
  included). A pod not yet Ready is charged at idle power.
* A policy's ``peak`` is its hardest minute that meets the SLA (the highest load per Ready
  replica; ``scripts/validate_autoscaling.py`` replays it on the real server); ``hardest_breach``
  the hardest minute that does not.
* A minute breaches the SLA when, at any of its four steps, the load per Ready pod exceeds
  ``profile.capacity_rps`` (or no pod is Ready). The p95 latency at a load is estimated from
  ``profile.latency_points`` by linear interpolation on their monotone envelope (running maximum);
  above the highest measured rate there is no estimate.
* Compute-hours: pod-hours (every pod that exists, Ready or not, holds its request) and
  vCPU-hours at the CPU request. Energy: modeled kWh. Carbon: energy x the hourly grid intensity
  of ``region`` from the embedded data (Electricity Maps, ODbL) over the simulated dates.
* Spot: policy (b) prefers spot capacity (its manifests' node affinity); at most
  ``spot_available`` of its pods run on spot at a time, the rest on demand; the oracle is placed
  likewise; policy (a) has no spot preference (share 0). The spot share is spot pod-hours /
  pod-hours.
* The capacity is a measurement with the load test's search tolerance (10 %): (b)'s reduction
  against (a) is also given with the capacity at -10 % and +10 %; a difference inside that range
  is not claimed beyond it.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Sequence

import numpy as np

from .._checks import shown
from .autoscaling import (HPA_SYNC_PERIOD_S, HPA_TOLERANCE, AutoscalingError, AutoscalingPolicy, ReplicaProfile,
                          aggressive_default, greenkfp_policy)
from .hpa import HorizontalPodAutoscaler, MetricSample

__all__ = ["SCHEMA", "SimulationError", "Trace", "builtin_trace", "read_trace", "parse_trace", "simulate",
           "render_csv", "render_html", "simulation_files", "write_simulation", "summary_rows"]

SCHEMA = "greenkfp.autoscaling_simulation/v1"
#: The default first day: a Monday inside the embedded carbon data (2021-2024).
DEFAULT_START = date(2024, 3, 4)
DEFAULT_REGION = "GB"
DEFAULT_SPOT_AVAILABLE = 4
#: Default peak of the built-in shape, in SLA capacities of one replica.
DEFAULT_PEAK_CAPACITIES = 5.0
WEEKEND_SHARE = 0.6
#: The issue's goals, as a reader sees them (the JSON keys -> a sentence; each value is a percent).
GOAL_LABELS = {
    "greenkfp_30_percent_fewer_compute_hours_than_aggressive": "(b) uses at least 30 % fewer pod-hours than (a)",
    "greenkfp_sla_met_in_99_percent_of_minutes": "(b) meets the SLA in at least 99 % of minutes",
    "greenkfp_within_15_percent_of_oracle": "(b) uses at most 15 % more pod-hours than the oracle (c)",
}
#: metrics-server's metric window (its default --metric-resolution), seconds: a pod's CPU sample
#: taken within one window of its becoming Ready is ignored while it is in the CPU
#: initialization period (kube-controller-manager's --horizontal-pod-autoscaler-cpu-initialization-period).
METRIC_WINDOW_S = 15.0
CPU_INITIALIZATION_PERIOD_S = 300.0
#: The issue's SLA goal for (b): the share of minutes meeting the SLA, percent. The other two goals
#: are judged only when (b) meets it (fewer pod-hours with breaches are no saving).
SLA_GOAL_PERCENT = 99.0
#: Memory used by a serving pod, percent of its request, whatever the load.
MEMORY_UTILISATION = 40.0
#: The load test's capacity search tolerance: the capacity is known to +-10 %.
CAPACITY_UNCERTAINTY = 0.10
MAX_TRACE_MINUTES = 7 * 1440
MAX_TRACE_BYTES = 2_000_000
#: A bound on the load (requests per second) a trace may ask for.
MAX_RPS = 1e7
STEPS_PER_MINUTE = 60 // HPA_SYNC_PERIOD_S
POLICY_KEYS = ("aggressive_default", "greenkfp", "oracle")
POLICY_LABELS = {"aggressive_default": "(a) aggressive default", "greenkfp": "(b) greenkfp", "oracle": "(c) oracle"}

# the built-in day: (hour, share of the peak), linear in between
_DAY_POINTS = ((0.0, 0.10), (5.0, 0.08), (6.0, 0.10), (9.0, 0.55), (11.0, 0.55), (12.5, 0.65), (14.0, 0.55),
               (17.0, 0.55), (20.0, 1.00), (21.0, 1.00), (24.0, 0.10))
# short spikes: (start "HH:MM", minutes, share added)
_SPIKES = (("08:50", 5, 0.30), ("13:10", 3, 0.35), ("16:30", 10, 0.25), ("22:05", 4, 0.30))


class SimulationError(ValueError):
    """A bad simulation input; the message starts with the input's name (``peak_rps``, ``trace``)."""


@dataclass(frozen=True)
class Trace:
    """Requests per second, one value per minute (the minute's requests / 60)."""

    rates: tuple[float, ...]
    source: str

    @property
    def minutes(self) -> int:
        return len(self.rates)

    @property
    def peak_rps(self) -> float:
        return max(self.rates)


def builtin_day_shape() -> np.ndarray:
    """The built-in day: the share of the peak for each of its 1,440 minutes."""
    hours, shares = zip(*_DAY_POINTS)
    minutes = np.arange(1440) / 60.0
    shape = np.interp(minutes, hours, shares)
    for start, length, extra in _SPIKES:
        first = int(start[:2]) * 60 + int(start[3:])
        shape[first:first + length] += extra
    return np.minimum(shape, 1.0)


def builtin_trace(peak_rps: float, days: int = 1, start: date = DEFAULT_START) -> Trace:
    """``days`` (1 or 7) of the built-in shape at ``peak_rps``, weekends at :data:`WEEKEND_SHARE`."""
    if isinstance(peak_rps, bool) or not isinstance(peak_rps, (int, float)) or not math.isfinite(peak_rps) \
            or not 0 < peak_rps <= MAX_RPS:
        raise SimulationError(f"peak_rps must be a number in (0, {MAX_RPS:g}] requests per second, got {shown(peak_rps)}")
    if days not in (1, 7):
        raise SimulationError(f"days must be 1 or 7, got {shown(days)}")
    day = builtin_day_shape()
    rates = []
    for i in range(days):
        share = WEEKEND_SHARE if (start + timedelta(days=i)).weekday() >= 5 else 1.0
        rates.extend(float(x) for x in day * share * peak_rps)
    weekend = f", weekends at {WEEKEND_SHARE:.0%}" if days == 7 else ""
    return Trace(tuple(rates), f"built-in day shape, {days} day{'s' if days > 1 else ''} from {start.isoformat()}, "
                               f"peak {peak_rps:g} req/s{weekend}")


def parse_trace(text: str, source: str = "trace") -> Trace:
    """A trace from CSV text: header ``minute,requests``, one row per minute from 0, consecutive;
    ``requests`` is the requests in that minute (finite, >= 0). Errors name the line."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_TRACE_BYTES:
        raise SimulationError(f"trace {source}: larger than {MAX_TRACE_BYTES:,} bytes")
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise SimulationError(f"trace {source}: empty; expected the header 'minute,requests'") from None
    except csv.Error as exc:
        raise SimulationError(f"trace {source} line 1: not CSV ({exc})") from None
    if [h.strip().lstrip("\ufeff").lower() for h in header] != ["minute", "requests"]:
        raise SimulationError(f"trace {source} line 1: the header must be 'minute,requests', got {shown(','.join(header))}")
    rates: list[float] = []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise SimulationError(f"trace {source} line {reader.line_num}: not CSV ({exc})") from None
        line = reader.line_num  # the physical line the row ends on
        if not row or all(not cell.strip() for cell in row):
            continue  # a blank line
        if len(row) != 2:
            raise SimulationError(f"trace {source} line {line}: expected 2 fields (minute,requests), got {len(row)}")
        if len(rates) >= MAX_TRACE_MINUTES:
            raise SimulationError(f"trace {source} line {line}: more than {MAX_TRACE_MINUTES} minutes (7 days)")
        minute_text, requests_text = (cell.strip() for cell in row)
        if minute_text != str(len(rates)):
            raise SimulationError(f"trace {source} line {line}: minute must be {len(rates)} (consecutive from 0), "
                                  f"got {shown(minute_text)}")
        try:
            requests = float(requests_text)
        except ValueError:
            raise SimulationError(f"trace {source} line {line}: requests must be a number, got {shown(requests_text)}") \
                from None
        if not math.isfinite(requests) or requests < 0:
            raise SimulationError(f"trace {source} line {line}: requests must be a finite number >= 0, "
                                  f"got {shown(requests_text)}")
        if requests / 60 > MAX_RPS:
            raise SimulationError(f"trace {source} line {line}: requests {requests_text} is above {MAX_RPS * 60:g} a minute")
        rates.append(requests / 60)
    if not rates:
        raise SimulationError(f"trace {source}: no minutes after the header")
    if max(rates) <= 0:
        raise SimulationError(f"trace {source}: every minute has 0 requests")
    return Trace(tuple(rates), f"CSV {source}, {len(rates)} minute{'' if len(rates) == 1 else 's'}")


def read_trace(path: str | Path) -> Trace:
    """:func:`parse_trace` of a file (read at most :data:`MAX_TRACE_BYTES` + 1 bytes)."""
    target = Path(path)
    if target.is_dir():
        raise SimulationError(f"trace {path}: a folder, not a CSV file")
    try:
        with open(target, "rb") as stream:
            data = stream.read(MAX_TRACE_BYTES + 1)
    except FileNotFoundError:
        raise SimulationError(f"trace {path}: no such file") from None
    except OSError as exc:
        raise SimulationError(f"trace {path}: {(exc.strerror or str(exc)).lower()}") from None
    if len(data) > MAX_TRACE_BYTES:
        raise SimulationError(f"trace {path}: larger than {MAX_TRACE_BYTES:,} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SimulationError(f"trace {path}: not UTF-8 text") from None
    return parse_trace(text, str(path))


# --------------------------------------------------------------------------- the replica model

class _Replica:
    """Per-pod figures of one profile: CPU utilisation, power, latency."""

    def __init__(self, profile: ReplicaProfile):
        from ..energy.profiles import resolve_profile

        self.profile = profile
        self.machine = resolve_profile(profile.hardware_profile)
        self.request_m = profile.cpu_request_m
        rates = [r for r, _ in profile.latency_points]
        self.latency_rates = np.array(rates, dtype=float)
        self.latency_envelope = np.maximum.accumulate(np.array([p for _, p in profile.latency_points], dtype=float))

    def cpu_percent(self, rps_per_pod: float) -> float:
        """HPA CPU utilisation (percent of the request), capped at the CPU limit."""
        return self.profile.cpu_used_m(rps_per_pod) / self.request_m * 100

    @functools.lru_cache(maxsize=65536)
    def watts(self, cpu_percent: float) -> float:
        """Modeled power of one pod at ``cpu_percent`` of its request (the energy model)."""
        from ..energy.model import model_energy

        used = max(self.request_m, cpu_percent / 100 * self.request_m) / 1000  # cores held
        utilisation = min(100.0, cpu_percent / 100 * self.request_m / 1000 / used * 100)
        return model_energy(self.machine, utilisation, 3600.0, min(used, self.machine.vcpus)).total_kwh * 1000

    def p95_s(self, rps_per_pod: float) -> float | None:
        """Estimated p95 at a per-pod load, or None above the highest measured rate."""
        if not len(self.latency_rates) or rps_per_pod > self.latency_rates[-1]:
            return None
        return float(np.interp(rps_per_pod, self.latency_rates, self.latency_envelope))


@dataclass
class _Run:
    """One policy over the trace."""

    key: str
    replicas: list[int] = field(default_factory=list)  # pods at the end of each minute (spec)
    ready: list[int] = field(default_factory=list)  # fewest Ready pods in each minute
    minute_pod_s: list[float] = field(default_factory=list)  # pod-seconds of each minute (its four steps)
    breach: list[bool] = field(default_factory=list)
    pod_seconds: float = 0.0
    spot_pod_seconds: float = 0.0
    energy_kwh: float = 0.0
    carbon_g: float = 0.0
    policy: AutoscalingPolicy | None = None


def _account(run: _Run, replica: _Replica, pods: int, ready: int, rate: float, intensity: float,
             spot_available: int | None) -> None:
    """One step's compute, spot, energy and carbon."""
    step_s = HPA_SYNC_PERIOD_S
    run.pod_seconds += pods * step_s
    if spot_available is not None:
        run.spot_pod_seconds += min(pods, spot_available) * step_s
    busy = replica.watts(round(replica.cpu_percent(rate / ready), 2)) * ready if ready else 0.0
    idle = replica.watts(0.0) * (pods - ready)
    kwh = (busy + idle) * step_s / 3.6e6
    run.energy_kwh += kwh
    run.carbon_g += kwh * float(intensity)


def _simulate_hpa(key: str, policy: AutoscalingPolicy, replica: _Replica, rates: Sequence[float],
                  intensity: np.ndarray, spot_available: int | None) -> _Run:
    profile = replica.profile
    run = _Run(key, policy=policy)
    per_pod = replica.profile.rps_at_utilisation(policy.target("cpu") or 50.0)
    start = min(max(policy.min_replicas, math.ceil(rates[0] / per_pod)), policy.max_replicas)
    hpa = HorizontalPodAutoscaler(policy, replicas=start)
    ready_at = [-math.inf] * start  # when each pod is (was) Ready, oldest first
    previous_load = rates[0]
    for minute, rate in enumerate(rates):
        fewest = math.inf
        before = run.pod_seconds
        for step in range(STEPS_PER_MINUTE):
            now = (minute * STEPS_PER_MINUTE + step) * HPA_SYNC_PERIOD_S
            ready = sum(1 for t in ready_at if t <= now)
            # Ready for less than a metric window, within the CPU initialization period since start
            fresh = sum(1 for t in ready_at if t <= now < t + METRIC_WINDOW_S
                        and t - profile.startup_s + CPU_INITIALIZATION_PERIOD_S > now)
            samples = _samples(replica, previous_load, ready, len(ready_at) - ready, fresh)
            wanted = hpa.sync(now, samples)
            if wanted > len(ready_at):
                ready_at += [now + profile.startup_s] * (wanted - len(ready_at))
            else:
                del ready_at[wanted:]  # the newest (not yet Ready first) go
            ready = sum(1 for t in ready_at if t <= now)
            fewest = min(fewest, ready)
            _account(run, replica, len(ready_at), ready, rate, intensity[minute], spot_available)
            previous_load = rate
        run.replicas.append(len(ready_at))
        run.ready.append(int(fewest))
        run.minute_pod_s.append(run.pod_seconds - before)
        run.breach.append(_breaches(rate, int(fewest), profile.capacity_rps))
    return run


def _samples(replica: _Replica, load: float, ready: int, not_ready: int, fresh: int = 0) -> dict[str, MetricSample]:
    """The metrics at a sync, as the controller's ``groupPods`` sorts the pods: a starting pod is
    Running but not Ready (its container runs, loading the model), so it is set aside for CPU
    only; memory and the Pods power metric count its value (memory in use; power 0, the energy
    counter charging inference only). ``fresh``
    of the ``ready`` pods became Ready less than a metric window ago, within the CPU
    initialization period: their CPU samples are set aside too."""
    idle_mw = replica.profile.power_metric_w(0.0) * 1000
    if not ready:
        return {"cpu": MetricSample((), not_ready),
                "memory": MetricSample.uniform(MEMORY_UTILISATION, not_ready),
                "power": MetricSample.uniform(idle_mw, not_ready)}
    cpu = replica.cpu_percent(load / ready)
    busy_mw = replica.profile.power_metric_w(load / ready) * 1000
    return {"cpu": MetricSample.uniform(cpu, ready - fresh, not_ready + fresh),
            "memory": MetricSample.uniform(MEMORY_UTILISATION, ready + not_ready),
            # the Pods metric (the server's energy counter's rate) in milli-watts, as
            # prometheus-adapter serves it to the HPA
            "power": MetricSample((busy_mw,) * ready + (idle_mw,) * not_ready)}


def _breaches(rate: float, ready: int, capacity: float) -> bool:
    # a relative 1e-9: the oracle's ceil(rate / capacity) pods are exactly at capacity, not over by a rounding
    return rate > 0 and (ready == 0 or rate / ready > capacity * (1 + 1e-9))


def _oracle_pods(rate: float, capacity: float, min_replicas: int = 1, max_replicas: int | None = None) -> int:
    # a rate at capacity up to float rounding (0.2 x 937.5 = 187.50000000000003) needs no extra pod;
    # the oracle keeps the policies' bounds, so a capped (b) is compared with an oracle capped alike
    pods = max(1, min_replicas, math.ceil(rate / capacity * (1 - 1e-9)))
    return pods if max_replicas is None else min(pods, max_replicas)


def _simulate_oracle(replica: _Replica, rates: Sequence[float], intensity: np.ndarray,
                     spot_available: int | None, min_replicas: int = 1, max_replicas: int | None = None) -> _Run:
    run = _Run("oracle")
    for minute, rate in enumerate(rates):
        pods = _oracle_pods(rate, replica.profile.capacity_rps, min_replicas, max_replicas)
        for _ in range(STEPS_PER_MINUTE):
            _account(run, replica, pods, pods, rate, intensity[minute], spot_available)
        run.replicas.append(pods)
        run.ready.append(pods)
        run.minute_pod_s.append(pods * 60.0)
        run.breach.append(_breaches(rate, pods, replica.profile.capacity_rps))
    return run


def _hourly_intensity(region: str, start: date, minutes: int) -> tuple[np.ndarray, dict]:
    """gCO2eq/kWh for each minute of the trace (the hour's value), and the data's provenance."""
    from ..carbon.intensity import intensity_series
    from ..carbon.providers.embedded import ATTRIBUTION

    begin = datetime(start.year, start.month, start.day, tzinfo=timezone.utc)
    end = begin + timedelta(minutes=minutes)
    end = end + timedelta(hours=1) if end.minute or end.second else end
    answer = intensity_series(region, begin, end, provider="embedded")
    series = answer.series
    first = int(series.starts[0])
    moments = int(begin.timestamp()) + np.arange(minutes) * 60
    index = np.clip((moments - first) // series.granularity_s, 0, len(series.values) - 1)
    return series.values[index], {**answer.describe(), "units": "gCO2eq/kWh", "attribution": ATTRIBUTION}


def _check_settings(region: str, start: date, spot_available: int) -> None:
    from ..carbon.providers.embedded import embedded_zones

    zones = embedded_zones()
    if region not in zones:
        raise SimulationError(f"region {shown(region)} is not a zone of the embedded data; zones: {', '.join(zones)}")
    if not isinstance(start, date):
        raise SimulationError(f"start must be a date, got {shown(start)}")
    if isinstance(spot_available, bool) or not isinstance(spot_available, int) or not 0 <= spot_available <= 1000:
        raise SimulationError(f"spot_available must be a whole number in [0, 1000] of replicas, got {shown(spot_available)}")


def _figures(run: _Run, replica: _Replica, rates: Sequence[float]) -> dict:
    profile = replica.profile
    minutes = len(rates)
    breaches = sum(run.breach)
    loads = [rate / ready if ready else math.inf for rate, ready in zip(rates, run.ready)]
    # the hardest minute the model says meets the SLA (what scripts/validate_autoscaling.py replays on
    # the real server), and the hardest of those that breach it
    met = [i for i in range(minutes) if not run.breach[i]] or list(range(minutes))
    peak = max(met, key=lambda i: (loads[i], rates[i]))
    p95 = replica.p95_s(loads[peak]) if math.isfinite(loads[peak]) else None
    breached = [i for i in range(minutes) if run.breach[i]]
    worst = max(breached, key=lambda i: (loads[i], rates[i])) if breached else None
    pod_hours = run.pod_seconds / 3600
    return {
        "pod_hours": pod_hours,
        "vcpu_hours": pod_hours * profile.cpu_request_m / 1000,
        "energy_kwh": run.energy_kwh,
        "carbon_g": float(run.carbon_g),
        "spot_share_percent": 100 * run.spot_pod_seconds / run.pod_seconds if run.pod_seconds else 0.0,
        "sla_breach_minutes": breaches,
        "sla_met_percent": 100 * (minutes - breaches) / minutes,
        "max_replicas": max(run.replicas),
        "mean_replicas": pod_hours * 60 / minutes,
        "peak": {"minute": peak, "rps": rates[peak], "ready_replicas": run.ready[peak],
                 "rps_per_ready_replica": loads[peak] if math.isfinite(loads[peak]) else None,
                 "p95_estimate_s": p95},
        "hardest_breach": None if worst is None else {
            "minute": worst, "rps": rates[worst], "ready_replicas": run.ready[worst],
            "rps_per_ready_replica": loads[worst] if math.isfinite(loads[worst]) else None},
        "hpa": run.policy.to_dict() if run.policy is not None else None,
    }


def _percent_less(value: float, baseline: float) -> float:
    return 100 * (baseline - value) / baseline


def _run_all(trace: Trace, profile: ReplicaProfile, *, headroom: float, min_replicas: int, max_replicas: int,
             intensity: np.ndarray, spot_available: int) -> dict[str, tuple[_Run, _Replica]]:
    replica = _Replica(profile)
    try:
        a = aggressive_default(profile, min_replicas=min_replicas, max_replicas=max_replicas)
        b = greenkfp_policy(profile, headroom=headroom, min_replicas=min_replicas, max_replicas=max_replicas)
    except AutoscalingError as exc:
        raise SimulationError(str(exc)) from None
    return {"aggressive_default": (_simulate_hpa("aggressive_default", a, replica, trace.rates, intensity, None), replica),
            "greenkfp": (_simulate_hpa("greenkfp", b, replica, trace.rates, intensity, spot_available), replica),
            "oracle": (_simulate_oracle(replica, trace.rates, intensity, spot_available, min_replicas, max_replicas),
                       replica)}


def simulate(trace: Trace, profile: ReplicaProfile, *, headroom: float = 0.8, min_replicas: int = 1,
             max_replicas: int = 20, region: str = DEFAULT_REGION, start: date = DEFAULT_START,
             spot_available: int = DEFAULT_SPOT_AVAILABLE) -> dict:
    """Simulate the three policies over ``trace``; the result as the ``simulation.json`` document,
    with the per-minute series under ``series`` (left out of the JSON, written as the CSV)."""
    _check_settings(region, start, spot_available)
    intensity, carbon = _hourly_intensity(region, start, trace.minutes)
    options = dict(headroom=headroom, min_replicas=min_replicas, max_replicas=max_replicas, intensity=intensity,
                   spot_available=spot_available)
    runs = _run_all(trace, profile, **options)
    policies = {key: _figures(run, replica, trace.rates) for key, (run, replica) in runs.items()}
    a, b, c = (policies[k]["pod_hours"] for k in POLICY_KEYS)
    for key in POLICY_KEYS:
        policies[key]["compute_reduction_vs_aggressive_percent"] = _percent_less(policies[key]["pod_hours"], a)
    policies["greenkfp"]["compute_above_oracle_percent"] = 100 * (b - c) / c
    # the capacity is known to +-10 %. Two questions: (1) had the load test measured 10 % less or
    # more, what would the policies (derived from it) and the figures be; (2) the policies as
    # derived from the measured capacity, on a replica whose true capacity is 10 % less or more:
    # the SLA and the oracle against the true capacity (the HPA sees the same CPU either way)
    sensitivity = {}
    for label, factor in (("capacity_minus_10_percent", 1 - CAPACITY_UNCERTAINTY),
                          ("capacity_plus_10_percent", 1 + CAPACITY_UNCERTAINTY)):
        shifted = replace(profile, capacity_rps=profile.capacity_rps * factor)
        other = {key: _figures(run, replica, trace.rates) for key, (run, replica) in
                 _run_all(trace, shifted, **options).items()}
        true_oracle = _simulate_oracle(_Replica(shifted), trace.rates, intensity, spot_available,
                                       min_replicas, max_replicas).pod_seconds / 3600
        breaches = sum(_breaches(rate, ready, shifted.capacity_rps)
                       for rate, ready in zip(trace.rates, runs["greenkfp"][0].ready))
        sensitivity[label] = {
            "capacity_rps": shifted.capacity_rps,
            "policies_from_this_capacity": {
                "greenkfp_reduction_vs_aggressive_percent": _percent_less(other["greenkfp"]["pod_hours"],
                                                                          other["aggressive_default"]["pod_hours"]),
                "greenkfp_above_oracle_percent": 100 * (other["greenkfp"]["pod_hours"] - other["oracle"]["pod_hours"])
                / other["oracle"]["pod_hours"],
                "greenkfp_sla_met_percent": other["greenkfp"]["sla_met_percent"]},
            "policies_as_measured_true_capacity_this": {
                "greenkfp_reduction_vs_aggressive_percent": policies["greenkfp"]["compute_reduction_vs_aggressive_percent"],
                "greenkfp_above_oracle_percent": 100 * (b - true_oracle) / true_oracle,
                "greenkfp_sla_breach_minutes": breaches,
                "greenkfp_sla_met_percent": 100 * (trace.minutes - breaches) / trace.minutes}}
    views = [v for s in sensitivity.values() for v in s.values() if isinstance(v, dict)]

    sla_ok = policies["greenkfp"]["sla_met_percent"] >= SLA_GOAL_PERCENT

    def goal(value: float, field_: str, ok, needs_sla: bool = True) -> dict:
        values = [value] + [v[field_] for v in views]
        if needs_sla and not sla_ok:
            # fewer pod-hours bought with breaches is under-provisioning, not a saving: not judged
            return {"value": value, "range": [min(values), max(values)], "met": None, "met_across_range": None,
                    "verdict": "not judged: (b) misses the SLA"}
        met = ok(value)
        across = all(ok(v) for v in values) and (not needs_sla or all(
            v["greenkfp_sla_met_percent"] >= SLA_GOAL_PERCENT for v in views))
        return {"value": value, "range": [min(values), max(values)], "met": met, "met_across_range": across,
                "verdict": ("met" if met else "missed") + ("" if across == met else
                                                            " as measured, not across the capacity's +-10 %")}

    comparison = {
        "greenkfp_reduction_vs_aggressive_percent": policies["greenkfp"]["compute_reduction_vs_aggressive_percent"],
        "greenkfp_above_oracle_percent": policies["greenkfp"]["compute_above_oracle_percent"],
        "capacity_sensitivity": sensitivity,
        "note": ("the capacity is measured to +-10 % (the load test's search tolerance); each range holds the figure as "
                 "measured and with the capacity at -10 % and +10 % (policies derived from that capacity, and the "
                 "policies as measured on a replica of that true capacity): a difference inside a range is not "
                 "claimed beyond it"),
        "goals": {
            "greenkfp_30_percent_fewer_compute_hours_than_aggressive": goal(
                policies["greenkfp"]["compute_reduction_vs_aggressive_percent"],
                "greenkfp_reduction_vs_aggressive_percent", lambda v: v >= 30.0),
            "greenkfp_sla_met_in_99_percent_of_minutes": goal(
                policies["greenkfp"]["sla_met_percent"], "greenkfp_sla_met_percent", lambda v: v >= SLA_GOAL_PERCENT,
                needs_sla=False),
            "greenkfp_within_15_percent_of_oracle": goal(
                policies["greenkfp"]["compute_above_oracle_percent"], "greenkfp_above_oracle_percent",
                lambda v: v <= 15.0),
        },
    }
    series = {"rps": list(trace.rates)}
    for key, (run, _) in runs.items():
        series[key] = {"replicas": run.replicas, "ready": run.ready, "breach": run.breach,
                       "pod_seconds": run.minute_pod_s}
    return {
        "schema": SCHEMA,
        "modeled": True,
        "what": ("modeled, not measured: the replica's capacity and latency come from a load test; compute, energy, "
                 "carbon and the SLA figures from the cluster model of greenkfp.components.serving.simulate"),
        "units": {"pod_hours": "pod-hours", "vcpu_hours": "vCPU-hours at the CPU request",
                  "energy_kwh": "kWh (modeled: the hardware profile's energy model)", "carbon_g": "gCO2eq",
                  "rps": "requests per second", "p95_estimate_s": "seconds (interpolated on the load test's points)"},
        "profile": profile.to_dict(),
        "trace": {"source": trace.source, "minutes": trace.minutes, "peak_rps": trace.peak_rps,
                  "mean_rps": sum(trace.rates) / trace.minutes},
        "settings": {"headroom": headroom, "min_replicas": min_replicas, "max_replicas": max_replicas,
                     "region": region, "start": start.isoformat(), "spot_available": spot_available,
                     "sync_period_s": HPA_SYNC_PERIOD_S, "tolerance": HPA_TOLERANCE,
                     "startup_s": profile.startup_s, "memory_utilisation_percent": MEMORY_UTILISATION},
        "carbon_intensity": carbon,
        "policies": policies,
        "comparison": comparison,
        "series": series,
    }


# --------------------------------------------------------------------------- renderings

def render_json(result: dict) -> str:
    return json.dumps({k: v for k, v in result.items() if k != "series"}, indent=2, allow_nan=False) + "\n"


def render_csv(result: dict) -> str:
    """One row per minute: the load, and each policy's pods at the minute's end (``_replicas``),
    fewest Ready pods in the minute (``_ready``), SLA breach and pod-seconds (its four 15 s steps:
    their sum / 3600 is the pod-hours)."""
    from .._files import SafeCsvWriter

    out = io.StringIO()
    writer = SafeCsvWriter(out, lineterminator="\n")
    series = result["series"]
    header = ["minute", "rps"]
    for key in POLICY_KEYS:
        name = key.replace("-", "_")
        header += [f"{name}_replicas", f"{name}_ready", f"{name}_breach", f"{name}_pod_seconds"]
    writer.writerow(header)
    for i, rate in enumerate(series["rps"]):
        row: list = [i, round(rate, 4)]
        for key in POLICY_KEYS:
            row += [series[key]["replicas"][i], series[key]["ready"][i], int(series[key]["breach"][i]),
                    round(series[key]["pod_seconds"][i], 3)]
        writer.writerow(row)
    return out.getvalue()


def summary_rows(result: dict) -> list[tuple[str, ...]]:
    """The summary table: policy, pod-hours, vCPU-hours, kWh, gCO2eq, spot %, SLA %, reduction."""
    rows = []
    for key in POLICY_KEYS:
        p = result["policies"][key]
        rows.append((POLICY_LABELS[key], f"{p['pod_hours']:.2f}", f"{p['vcpu_hours']:.3f}", f"{p['energy_kwh']:.4f}",
                     f"{p['carbon_g']:.1f}", f"{p['spot_share_percent']:.0f} %", f"{p['sla_met_percent']:.2f} %",
                     f"{p['sla_breach_minutes']}", f"{p['compute_reduction_vs_aggressive_percent']:.1f} %",
                     f"{p['max_replicas']}"))
    return rows


SUMMARY_HEADERS = ("policy", "pod-hours", "vCPU-hours", "energy kWh", "carbon gCO2eq", "spot", "SLA met",
                   "breach min", "compute vs (a)", "max replicas")

_COLOURS = {"aggressive_default": "#D55E00", "greenkfp": "#009E73", "oracle": "#0072B2"}


def _plots(result: dict) -> dict[str, tuple[str, str, str]]:
    from ..reporting.svg import new_figure, svg_figure

    series, policies = result["series"], result["policies"]
    minutes = len(series["rps"])
    hours = np.arange(minutes) / 60
    figure, axes = new_figure(9.5, 5.6, 2, 1)
    top, bottom = axes[0][0], axes[1][0]
    top.plot(hours, series["rps"], color="#333333", linewidth=0.9)
    top.set_ylabel("requests / s", fontsize=9)
    top.set_title("Traffic (the trace)", fontsize=10, loc="left")
    for key in POLICY_KEYS:
        bottom.step(hours, series[key]["replicas"], where="post", color=_COLOURS[key], linewidth=1.1,
                    label=POLICY_LABELS[key], linestyle="--" if key == "oracle" else "-")
    bottom.set_ylabel("replicas", fontsize=9)
    bottom.set_xlabel("hours from the start", fontsize=9)
    bottom.set_title("Replicas per policy", fontsize=10, loc="left")
    # below the plot: inside it would cover (a)'s spikes over a week
    bottom.legend(fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.32), ncol=3)
    for ax in (top, bottom):
        ax.set_xlim(0, minutes / 60)
    peak = result["trace"]["peak_rps"]
    over_time = (f"Traffic over {minutes / 60:.0f} hours peaking at {peak:.0f} requests per second; replicas: "
                 + "; ".join(f"{POLICY_LABELS[k]} up to {policies[k]['max_replicas']}, mean "
                             f"{policies[k]['mean_replicas']:.2f}" for k in POLICY_KEYS) + ".")
    timeline = svg_figure(figure, "timeline", "Traffic and replicas over time", over_time)

    figure, axes = new_figure(9.5, 3.0, 1, 2)
    labels = [POLICY_LABELS[k] for k in POLICY_KEYS]
    colours = [_COLOURS[k] for k in POLICY_KEYS]
    for ax, metric, unit in ((axes[0][0], "pod_hours", "pod-hours"), (axes[0][1], "carbon_g", "gCO2eq")):
        values = [policies[k][metric] for k in POLICY_KEYS]
        bars = ax.bar(labels, values, color=colours)
        ax.bar_label(bars, labels=[f"{v:.1f}" for v in values], fontsize=8)
        ax.set_ylabel(unit, fontsize=9)
        ax.set_title(f"{'Compute' if metric == 'pod_hours' else 'Carbon (modeled)'}", fontsize=10, loc="left")
        ax.tick_params(axis="x", labelsize=8)
    bars_text = ("Compute: " + ", ".join(f"{POLICY_LABELS[k]} {policies[k]['pod_hours']:.1f} pod-hours"
                                         for k in POLICY_KEYS)
                 + ". Carbon: " + ", ".join(f"{POLICY_LABELS[k]} {policies[k]['carbon_g']:.1f} gCO2eq"
                                            for k in POLICY_KEYS) + ".")
    bars = svg_figure(figure, "bars", "Compute-hours and carbon per policy", bars_text)
    return {"timeline": (timeline, "Traffic and replicas over time", over_time),
            "bars": (bars, "Compute-hours and carbon per policy", bars_text)}


_CSS = """
:root { color-scheme: light; }
body { margin: 0 auto; max-width: 1100px; padding: 0 24px 30px; font: 15px/1.5 system-ui, -apple-system, "Segoe UI",
       Roboto, "DejaVu Sans", sans-serif; color: #1a1a1a; background: #ffffff; }
h1 { font-size: 1.6em; border-bottom: 3px solid #0072B2; padding: 24px 0 10px; margin: 0 0 8px; }
h2 { font-size: 1.2em; margin: 28px 0 8px; border-bottom: 1px solid #cccccc; }
p.note, figcaption, caption { color: #404040; font-size: 0.9em; }
table { border-collapse: collapse; width: 100%; font-size: 0.88em; margin: 8px 0; }
th, td { border-bottom: 1px solid #d9d9d9; padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #eef2f5; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
caption { caption-side: bottom; text-align: left; }
figure { margin: 14px 0 22px; }
svg.plot { width: 100%; height: auto; display: block; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { font-size: 9.5pt; color: #000000; max-width: none; padding: 0; }
  figure, tr { break-inside: avoid; page-break-inside: avoid; }
  h2 { break-after: avoid; page-break-after: avoid; }
  svg.plot { max-width: 100% !important; }
  th { background: #eeeeee !important; print-color-adjust: exact; -webkit-print-color-adjust: exact; }
}
"""


def render_html(result: dict) -> str:
    """The report: one self-contained HTML page (inline CSS and SVG, no script, no external asset)."""
    import html
    import warnings

    import matplotlib

    from ..reporting.svg import font_rc

    e = html.escape
    with matplotlib.rc_context(font_rc()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"Glyph \d+ .* missing from font", UserWarning)
        plots = _plots(result)
    policies, comparison, profile = result["policies"], result["comparison"], result["profile"]
    rows = [("Compute", "pod_hours", "pod-hours", "{:.2f}", "modeled"),
            ("Compute", "vcpu_hours", "vCPU-hours (at the CPU request)", "{:.3f}", "modeled"),
            ("Energy", "energy_kwh", "kWh", "{:.4f}", "modeled (energy model of the hardware profile)"),
            ("Carbon", "carbon_g", "gCO2eq", "{:.1f}", "modeled (energy x hourly grid intensity, recorded data)"),
            ("Spot share", "spot_share_percent", "% of pod-hours", "{:.1f}", "modeled (spot availability assumed)"),
            ("SLA breached", "sla_breach_minutes", "minutes", "{}", "modeled (capacity measured by a load test)"),
            ("SLA met", "sla_met_percent", "% of minutes", "{:.2f}", "modeled"),
            ("Compute vs (a)", "compute_reduction_vs_aggressive_percent", "% fewer pod-hours", "{:.1f}", "modeled"),
            ("Most replicas", "max_replicas", "pods", "{}", "modeled")]
    head = "".join(f'<th scope="col">{e(POLICY_LABELS[k])}</th>' for k in POLICY_KEYS)
    body = "".join(
        f"<tr><th scope='row'>{e(name)}</th><td>{e(unit)}</td>"
        + "".join(f"<td class='n'>{e(fmt.format(policies[k][field_]))}</td>" for k in POLICY_KEYS)
        + f"<td>{e(kind)}</td></tr>" for name, field_, unit, fmt, kind in rows)
    goals = comparison["goals"]
    low, high = goals["greenkfp_30_percent_fewer_compute_hours_than_aggressive"]["range"]
    olow, ohigh = goals["greenkfp_within_15_percent_of_oracle"]["range"]
    peak = policies["greenkfp"]["peak"]
    p95 = "beyond the measured rates" if peak["p95_estimate_s"] is None else f"{peak['p95_estimate_s'] * 1000:.1f} ms"
    goal_items = "".join(
        f"<li>{e(GOAL_LABELS[name])}: {g['value']:.2f} % (range {g['range'][0]:.2f} to {g['range'][1]:.2f} %): "
        f"<strong>{e(g['verdict'])}</strong></li>"
        for name, g in goals.items())

    def figure(name: str) -> str:
        svg, title, _ = plots[name]
        return f"<figure>{svg}<figcaption><strong>{e(title)}.</strong> Modeled.</figcaption></figure>"

    carbon = result["carbon_intensity"]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Autoscaling simulation</title><style>{_CSS}</style></head><body>
<h1>Autoscaling simulation</h1>
<p class="note">{e(result['what'])}. Trace: {e(result['trace']['source'])} ({result['trace']['minutes']} minute{'' if result['trace']['minutes'] == 1 else 's'},
peak {result['trace']['peak_rps']:.1f} req/s). Replica: SLA capacity {profile['capacity_rps']:g} req/s at p95
&lt;= {profile['sla_p95_s'] * 1000:g} ms, CPU request {profile['cpu_request_m']} m, ready {profile['startup_s']:g} s
after creation ({e(profile['source'])}).</p>
<h2>Result</h2>
<p>Policy (b) uses <strong>{comparison['greenkfp_reduction_vs_aggressive_percent']:.1f} %</strong> fewer pod-hours than
(a) (range {low:.1f} to {high:.1f} % with the capacity at -10 % / +10 %, the load test's tolerance: a difference
inside this range is not claimed beyond it) and {comparison['greenkfp_above_oracle_percent']:.1f} % more than the
oracle (range {olow:.1f} to {ohigh:.1f} %); it meets the SLA in {policies['greenkfp']['sla_met_percent']:.2f} % of
minutes. Its hardest minute: minute {peak['minute']}, {peak['rps']:.1f} req/s on {peak['ready_replicas']} Ready
replicas (estimated p95 {e(p95)}).</p>
<ul>{goal_items}</ul>
{figure('timeline')}
{figure('bars')}
<h2>Figures</h2>
<div><table><caption>Every figure is modeled; the replica's capacity and latency are measured (load test).</caption>
<thead><tr><th scope="col">figure</th><th scope="col">unit</th>{head}<th scope="col">how obtained</th></tr></thead>
<tbody>{body}</tbody></table></div>
<h2>Policies</h2>
<ul>{''.join(f"<li><strong>{e(POLICY_LABELS[k])}</strong>: {e(policies[k]['hpa']['description'])}</li>"
             for k in POLICY_KEYS if policies[k]['hpa'])}
<li><strong>{e(POLICY_LABELS['oracle'])}</strong>: exactly ceil(rate / capacity) Ready pods every minute, within the
policies' minimum and maximum replicas</li></ul>
<p class="note">Carbon intensity: {e(carbon['region'])}, {e(carbon['data_kind'])} data ({e(carbon['provider'])}),
{e(carbon['first_point'])} to {e(carbon['data_end'])}. {e(carbon['attribution'])}</p>
</body></html>
"""


def simulation_files(result: dict) -> dict[str, str]:
    """The outputs: ``simulation.json``, ``simulation.csv`` (per minute) and ``simulation.html``."""
    return {"simulation.json": render_json(result), "simulation.csv": render_csv(result),
            "simulation.html": render_html(result)}


def write_simulation(result: dict, output: str | Path, *, option: str = "--output") -> list[Path]:
    """Write the three files into ``output`` as one set (all or nothing)."""
    from .._files import write_files

    return write_files(output, simulation_files(result), option=option)
