"""Autoscaling policies and the replica they scale, defined once.

The manifests (``greenkfp serving manifests``: HPA, KEDA, placement) and the trace-driven
simulation (``greenkfp serving simulate``) both take their numbers from here, so the policy that
is simulated is the policy that is deployed.

A replica (:class:`ReplicaProfile`)
-----------------------------------
One ``greenkfp serve`` pod, as a Locust load test measured it (``scripts/loadtest_serving.py``,
JSON ``greenkfp.loadtest/v1``): its capacity at the latency SLA (the highest offered rate with
p95 under the SLA), the p95 latency at the rates it was offered, and its CPU cost (requests per
CPU-second). From these:

* its CPU request is right-sized to the CPU it uses at its SLA capacity (capacity / requests per
  CPU-second at that rate — the capacity probe's own figure when the load test recorded it, else
  the run's mean — rounded up to 1 millicore, Kubernetes' precision), as a VPA recommendation
  would; HPA utilisation is measured against the request, so 100 % utilisation means "at the SLA capacity";
* its CPU limit is the limit it was measured under (the load test's ``--cpu-limit-m``, a CFS
  quota as the kubelet sets one), or none when it was measured without one.

The built-in profile (:func:`builtin_profile`) is such a measurement, shipped in
``components/serving/data/``; pass your own load test's JSON to measure your own server.

Policies (:class:`AutoscalingPolicy`)
-------------------------------------
An ``autoscaling/v2`` HorizontalPodAutoscaler's ``minReplicas``, ``maxReplicas``, ``metrics``
and ``behavior``. Two are named:

* :func:`aggressive_default`: CPU at 50 % of the request and Kubernetes' default ``behavior``
  (:data:`DEFAULT_SCALE_UP`, :data:`DEFAULT_SCALE_DOWN`), the common configuration that keeps
  half of every pod idle and holds the spike's replicas five minutes after it;
* :func:`greenkfp_policy`: CPU at ``headroom`` of the SLA capacity (default 80 %), memory and
  power per pod as guards (power at 1.25 x the modeled power metric at that load);
  scale-down after a 60 s
  stabilization by at most half the pods a minute (fast off-peak), scale-up without
  stabilization but bounded (double, or +4 pods, per 15 s).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any, Literal, Mapping, Sequence

from .._checks import positive, positive_int, shown

__all__ = ["AutoscalingError", "ScalingPolicy", "ScalingRules", "MetricTarget", "AutoscalingPolicy",
           "ReplicaProfile", "DEFAULT_SCALE_UP", "DEFAULT_SCALE_DOWN", "HPA_TOLERANCE", "HPA_SYNC_PERIOD_S",
           "aggressive_default", "greenkfp_policy", "builtin_profile", "profile_from_loadtest",
           "POWER_METRIC", "POWER_GUARD", "MAX_REPLICAS"]

#: The kube-controller-manager's ``--horizontal-pod-autoscaler-tolerance`` default: no scaling while
#: the metric is within 10 % of its target.
HPA_TOLERANCE = 0.1
#: ``--horizontal-pod-autoscaler-sync-period`` default: the HPA recomputes every 15 s.
HPA_SYNC_PERIOD_S = 15
#: The per-pod power metric prometheus-adapter exposes to the HPA (watts).
POWER_METRIC = "greenkfp_pod_power_watts"
#: The power target of policy (b), in multiples of a pod's modeled power metric at its CPU target: a
#: guard (see :func:`greenkfp_policy`).
POWER_GUARD = 1.25
MAX_REPLICAS = 1000
BUILTIN_PROFILE = "replica_loadtest.json"


class AutoscalingError(ValueError):
    """A bad autoscaling setting (the message names it and its value)."""


@dataclass(frozen=True)
class ScalingPolicy:
    """One ``HPAScalingPolicy``: change by at most ``value`` pods (``Pods``) or percent of the
    current replicas (``Percent``) per ``period_seconds``."""

    type: Literal["Pods", "Percent"]
    value: int
    period_seconds: int

    def __post_init__(self) -> None:
        if self.type not in ("Pods", "Percent"):
            raise AutoscalingError(f"scaling policy type must be Pods or Percent, got {shown(self.type)}")
        positive_int("scaling policy value", self.value)
        period = positive_int("scaling policy periodSeconds", self.period_seconds)
        if period > 1800:  # the API server's bound
            raise AutoscalingError(f"scaling policy periodSeconds must be <= 1800, got {period}")

    def to_k8s(self) -> dict:
        return {"type": self.type, "value": self.value, "periodSeconds": self.period_seconds}


@dataclass(frozen=True)
class ScalingRules:
    """One direction of ``behavior`` (``HPAScalingRules``)."""

    stabilization_window_seconds: int
    policies: tuple[ScalingPolicy, ...]
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"

    def __post_init__(self) -> None:
        window = self.stabilization_window_seconds
        if isinstance(window, bool) or not isinstance(window, int) or not 0 <= window <= 3600:
            raise AutoscalingError(f"stabilizationWindowSeconds must be a whole number in [0, 3600], got {shown(window)}")
        if self.select_policy not in ("Max", "Min", "Disabled"):
            raise AutoscalingError(f"selectPolicy must be Max, Min or Disabled, got {shown(self.select_policy)}")
        if not self.policies and self.select_policy != "Disabled":
            raise AutoscalingError("scaling rules need at least one policy unless selectPolicy is Disabled")

    def to_k8s(self) -> dict:
        return {"stabilizationWindowSeconds": self.stabilization_window_seconds, "selectPolicy": self.select_policy,
                "policies": [p.to_k8s() for p in self.policies]}


#: Kubernetes' default scale-up (HPA documentation, "Default Behavior").
DEFAULT_SCALE_UP = ScalingRules(0, (ScalingPolicy("Percent", 100, 15), ScalingPolicy("Pods", 4, 15)), "Max")
#: Kubernetes' default scale-down: a 300 s stabilization window, then any number of pods.
DEFAULT_SCALE_DOWN = ScalingRules(300, (ScalingPolicy("Percent", 100, 15),), "Max")


@dataclass(frozen=True)
class MetricTarget:
    """One metric of the HPA and its target.

    ``cpu`` and ``memory``: average utilisation of the pods' requests, percent (a ``Resource``
    metric). ``power``: average watts per pod (a ``Pods`` metric, :data:`POWER_METRIC`).
    """

    metric: Literal["cpu", "memory", "power"]
    target: float

    def __post_init__(self) -> None:
        if self.metric not in ("cpu", "memory", "power"):
            raise AutoscalingError(f"metric must be cpu, memory or power, got {shown(self.metric)}")
        value = positive(f"{self.metric} target", self.target)
        if self.metric != "power" and value > 1000:
            raise AutoscalingError(f"{self.metric} target must be a utilisation in (0, 1000] %, got {self.target!r}")

    def to_k8s(self) -> dict:
        if self.metric == "power":
            milliwatts = max(1, math.ceil(self.target * 1000))
            return {"type": "Pods", "pods": {"metric": {"name": POWER_METRIC},
                                             "target": {"type": "AverageValue", "averageValue": f"{milliwatts}m"}}}
        return {"type": "Resource", "resource": {"name": self.metric, "target": {
            # rounded down (never above the target), as KEDA's threshold is
            "type": "Utilization", "averageUtilization": max(1, math.floor(self.target + 1e-9))}}}


@dataclass(frozen=True)
class AutoscalingPolicy:
    """A HorizontalPodAutoscaler's scaling settings (everything but ``scaleTargetRef``)."""

    name: str
    min_replicas: int
    max_replicas: int
    metrics: tuple[MetricTarget, ...]
    scale_up: ScalingRules = DEFAULT_SCALE_UP
    scale_down: ScalingRules = DEFAULT_SCALE_DOWN
    description: str = ""

    def __post_init__(self) -> None:
        low = positive_int("min_replicas", self.min_replicas)
        high = positive_int("max_replicas", self.max_replicas)
        if high > MAX_REPLICAS:
            raise AutoscalingError(f"max_replicas must be <= {MAX_REPLICAS}, got {high}")
        if low > high:
            raise AutoscalingError(f"min_replicas ({low}) must be <= max_replicas ({high})")
        if not self.metrics:
            raise AutoscalingError("a policy needs at least one metric")
        if len({m.metric for m in self.metrics}) != len(self.metrics):
            raise AutoscalingError(f"each metric at most once, got {[m.metric for m in self.metrics]}")

    def target(self, metric: str) -> float | None:
        return next((m.target for m in self.metrics if m.metric == metric), None)

    def hpa_spec(self) -> dict:
        """``minReplicas``, ``maxReplicas``, ``metrics`` and ``behavior`` of an ``autoscaling/v2`` HPA spec."""
        return {"minReplicas": self.min_replicas, "maxReplicas": self.max_replicas,
                "metrics": [m.to_k8s() for m in self.metrics],
                "behavior": {"scaleUp": self.scale_up.to_k8s(), "scaleDown": self.scale_down.to_k8s()}}

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, **self.hpa_spec()}


@dataclass(frozen=True)
class ReplicaProfile:
    """One replica of ``greenkfp serve``, as a load test measured it.

    Attributes:
        capacity_rps: The highest offered rate (requests per second) with p95 under the SLA.
        sla_p95_s: The latency SLA the capacity was searched against, seconds (p95).
        latency_points: ``(offered req/s, p95 seconds)`` pairs the load test's fixed-rate probes
            measured (the highest p95 of a rate probed more than once), by rate.
        requests_per_cpu_s: Requests answered per CPU-second of the server (measured over the run).
        cpu_limit_m: The CPU limit (millicores, a CFS quota) it was measured under; None: none.
        memory_mib: The memory request per replica, MiB.
        startup_s: Seconds from a new pod's creation to Ready (scheduling, model load, readiness
            probe); not measured by the load test: an assumption the user can change.
        hardware_profile: The hardware profile the energy model charges (name of a preset).
        source: Where the figures come from (the load test's file and date).
    """

    capacity_rps: float
    sla_p95_s: float
    latency_points: tuple[tuple[float, float], ...]
    requests_per_cpu_s: float
    cpu_limit_m: int | None = None
    memory_mib: int = 512
    startup_s: float = 30.0
    hardware_profile: str = "n2-standard-4"
    source: str = ""

    def __post_init__(self) -> None:
        positive("capacity_rps", self.capacity_rps)
        positive("sla_p95_s", self.sla_p95_s)
        positive("requests_per_cpu_s", self.requests_per_cpu_s)
        if self.cpu_limit_m is not None:
            positive_int("cpu_limit_m", self.cpu_limit_m)
        positive_int("memory_mib", self.memory_mib)
        startup = positive("startup_s", self.startup_s)
        if startup > 3600:
            raise AutoscalingError(f"startup_s must be <= 3600, got {self.startup_s!r}")
        rates = [positive("latency point rate", r) for r, _ in self.latency_points]
        for _, p95 in self.latency_points:
            positive("latency point p95", p95)
        if rates != sorted(rates):
            raise AutoscalingError("latency_points must be sorted by rate")

    @property
    def cpu_request_m(self) -> int:
        """The CPU request, millicores: the CPU used at the SLA capacity, rounded up to 1 m
        (Kubernetes' precision; a coarser step would lower the HPA's CPU target by up to a step's
        share of a small request: 5 m is 10 % of a 45 m one)."""
        return max(1, math.ceil(self.capacity_rps / self.requests_per_cpu_s * 1000 - 1e-9))

    def cpu_utilisation(self, rps_per_pod: float) -> float:
        """HPA CPU utilisation (percent of the request) of a pod serving ``rps_per_pod``."""
        return rps_per_pod / self.requests_per_cpu_s * 1000 / self.cpu_request_m * 100

    def rps_at_utilisation(self, percent: float) -> float:
        """The per-pod rate at which CPU utilisation is ``percent`` of the request."""
        return percent / 100 * self.cpu_request_m / 1000 * self.requests_per_cpu_s

    def cpu_used_m(self, rps_per_pod: float) -> float:
        """CPU a pod serving ``rps_per_pod`` uses, millicores (at most its limit, when it has one)."""
        used = rps_per_pod / self.requests_per_cpu_s * 1000
        return used if self.cpu_limit_m is None else min(used, float(self.cpu_limit_m))

    def power_metric_w(self, rps_per_pod: float) -> float:
        """The per-pod power metric (:data:`POWER_METRIC`) where power is modeled, watts: the rate of
        ``greenkfp serve``'s energy counter, CPU-seconds per second x the modeled power of a busy
        vCPU. It is proportional to the load (the counter charges inference, not idle time)."""
        from ..energy.model import busy_core_watts
        from ..energy.profiles import resolve_profile

        return self.cpu_used_m(rps_per_pod) / 1000 * busy_core_watts(resolve_profile(self.hardware_profile))

    def to_dict(self) -> dict:
        return {**asdict(self), "cpu_request_m": self.cpu_request_m}


#: Plausible ranges of a load test's figures (a hostile or corrupted file is refused, not scaled on).
LOADTEST_BOUNDS = {"rps": (1e-3, 1e6), "p95_s": (1e-6, 600.0), "requests_per_cpu_s": (1e-3, 1e7),
                   "cpu_limit_m": (1, 4000)}
#: The least capacity a load test's probe can measure, req/s (below it the HPA never scales: a
#: replica's whole capacity is a fraction of one request per second).
MIN_CAPACITY_RPS = 0.1
#: The CPU request a load test may imply, millicores: Kubernetes' precision (1 m) to a 4-core pod
#: (the Deployment's bound, :mod:`.manifests`).
CPU_REQUEST_RANGE_M = (1, 4000)


def _field(data: Any, path: str) -> Any:
    """``data``'s value at the dotted ``path`` (objects only), or an error naming the path."""
    node = data
    walked = []
    for key in path.split("."):
        if not isinstance(node, Mapping):
            raise AutoscalingError(f"{'.'.join(walked) or 'the file'} must be an object, got {shown(node)}")
        if key not in node:
            raise AutoscalingError(f"the load test's JSON lacks {'.'.join([*walked, key])!r}")
        node = node[key]
        walked.append(key)
    return node


def _figure(path: str, value: Any, bounds: tuple[float, float]) -> float:
    """A JSON number (not a boolean, not a text) within ``bounds``, else an error showing it as it is."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AutoscalingError(f"{path} must be a number, got {shown(value)}")
    low, high = bounds
    try:
        result = float(value)
    except OverflowError:
        result = math.inf
    if not (math.isfinite(result) and low <= result <= high):
        raise AutoscalingError(f"{path} must be a number from {low:g} to {high:g}, got {shown(value)}")
    return result


def _objects(path: str, value: Any) -> list[Mapping]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise AutoscalingError(f"{path} must be a list of objects, got {shown(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise AutoscalingError(f"{path}[{i}] must be an object, got {shown(item)}")
    return value


def _check_measurable(data: Mapping[str, Any], capacity_rps: float) -> None:
    """A capacity a probe of the load test could have passed: at least its ``min_requests`` in
    ``probe_seconds`` (checked when the file records both as numbers)."""
    criteria, settings = data["capacity"].get("criteria"), data.get("settings")
    least = criteria.get("min_requests") if isinstance(criteria, Mapping) else None
    seconds = settings.get("probe_seconds") if isinstance(settings, Mapping) else None
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in (least, seconds)):
        return
    if seconds > 0 and math.isfinite(least / seconds) and capacity_rps * seconds < least:
        raise AutoscalingError(f"capacity.capacity_rps ({capacity_rps:g}) is below capacity.criteria.min_requests "
                               f"({least:g}) / settings.probe_seconds ({seconds:g}) = {least / seconds:g} req/s, "
                               f"the least a probe could have passed")


def profile_from_loadtest(data: Mapping[str, Any], *, source: str = "", **overrides) -> ReplicaProfile:
    """The replica a ``greenkfp.loadtest/v1`` JSON measured (``scripts/loadtest_serving.py --json``).

    Every figure must be a JSON number (not a boolean or a text) in a plausible range
    (:data:`LOADTEST_BOUNDS`), and the CPU request they imply within :data:`CPU_REQUEST_RANGE_M`
    and under the limit the load test ran with.

    Raises:
        AutoscalingError: not a load test's JSON, one whose capacity search found no capacity, or
            a figure out of place; the message names the field's path (``capacity.probes[2].p95_s``)
            and shows its value as written.
    """
    if not isinstance(data, Mapping) or data.get("schema") != "greenkfp.loadtest/v1":
        raise AutoscalingError("not a load test's JSON (schema greenkfp.loadtest/v1)")
    rps_bounds, p95_bounds, cost_bounds = (LOADTEST_BOUNDS[k] for k in ("rps", "p95_s", "requests_per_cpu_s"))
    rps = _field(data, "capacity.capacity_rps")
    if rps is None:
        raise AutoscalingError("the load test found no capacity (even its first probe failed the SLA)")
    capacity_rps = _figure("capacity.capacity_rps", rps, rps_bounds)
    if capacity_rps < MIN_CAPACITY_RPS:
        raise AutoscalingError(f"capacity.capacity_rps must be at least {MIN_CAPACITY_RPS:g} req/s (less is below what "
                               f"a probe measures), got {shown(rps)}")
    _check_measurable(data, capacity_rps)
    sla = _figure("capacity.sla_p95_s", _field(data, "capacity.sla_p95_s"), p95_bounds)
    probes = _objects("capacity.probes", data["capacity"].get("probes"))
    points: dict[float, float] = {}
    for i, probe in enumerate(probes):
        if probe.get("p95_s") is not None:
            rate = _figure(f"capacity.probes[{i}].offered_rps", probe.get("offered_rps"), rps_bounds)
            p95 = _figure(f"capacity.probes[{i}].p95_s", probe["p95_s"], p95_bounds)
            points[rate] = max(points.get(rate, p95), p95)  # the worst repeat
    # The fixed-rate probes are the steady state the capacity is judged on; the day's stages
    # add ramps and new connections (under a CPU quota their bursts are throttled), so they
    # give the points only when the load test ran no probe.
    for i, stage in enumerate(_objects("stages", data.get("stages")) if not points else []):
        if stage.get("p95_ms") is not None and stage.get("requests"):
            rate = _figure(f"stages[{i}].offered_rps", stage.get("offered_rps"), rps_bounds)
            p95 = _figure(f"stages[{i}].p95_ms", stage["p95_ms"], (p95_bounds[0] * 1000, p95_bounds[1] * 1000)) / 1000
            points[rate] = max(points.get(rate, p95), p95)
    settings = data.get("settings") or {}
    if not isinstance(settings, Mapping):
        raise AutoscalingError(f"settings must be an object, got {shown(settings)}")
    limit = settings.get("cpu_limit_m")
    if limit is not None:
        low, high = LOADTEST_BOUNDS["cpu_limit_m"]
        if isinstance(limit, bool) or not isinstance(limit, int) or not low <= limit <= high:
            raise AutoscalingError(f"settings.cpu_limit_m must be a whole number of millicores from {low} to {high}, "
                                   f"got {shown(limit)}")
    # the cost per request at the capacity (the passing probe there, when the load test
    # recorded its CPU): batching makes requests cheaper as the rate grows, so the day's mean
    # would size the CPU request above what a replica uses at its capacity (above its limit)
    per_cpu = _figure("totals.requests_per_cpu_s", _field(data, "totals.requests_per_cpu_s"), cost_bounds)
    at_capacity = []
    for i, probe in enumerate(probes):
        if probe.get("passed") is True and probe.get("requests_per_cpu_s") is not None and \
                _figure(f"capacity.probes[{i}].offered_rps", probe.get("offered_rps"), rps_bounds) == capacity_rps:
            at_capacity.append(_figure(f"capacity.probes[{i}].requests_per_cpu_s", probe["requests_per_cpu_s"],
                                       cost_bounds))
    if at_capacity:  # the capacity confirmed by repeated probes: their mean
        per_cpu = sum(at_capacity) / len(at_capacity)
    used_m = capacity_rps / per_cpu * 1000  # the CPU request it implies, before rounding up
    low, high = CPU_REQUEST_RANGE_M
    cost_field = "capacity.probes[].requests_per_cpu_s" if at_capacity else "totals.requests_per_cpu_s"
    if not low <= used_m <= high:
        raise AutoscalingError(f"capacity.capacity_rps ({capacity_rps:g}) / {cost_field} ({per_cpu:g}) is "
                               f"{used_m:.3g} m of CPU at the capacity; a replica's CPU request must be {low} to "
                               f"{high} m")
    if limit is not None and math.ceil(used_m - 1e-9) > limit:
        raise AutoscalingError(f"settings.cpu_limit_m ({limit}) is below the {math.ceil(used_m - 1e-9)} m of CPU "
                               f"capacity.capacity_rps / {cost_field} say a replica used at the capacity")
    return ReplicaProfile(capacity_rps=capacity_rps, sla_p95_s=sla, latency_points=tuple(sorted(points.items())),
                          requests_per_cpu_s=per_cpu, cpu_limit_m=limit, source=source, **overrides)


def builtin_profile(**overrides) -> ReplicaProfile:
    """The replica measured on this project's machine (``components/serving/data/``)."""
    text = resources.files("greenkfp.components.serving.data").joinpath(BUILTIN_PROFILE).read_text()
    data = json.loads(text)
    return profile_from_loadtest(data, source=f"built-in: {BUILTIN_PROFILE}, measured by scripts/loadtest_serving.py",
                                 **overrides)


def aggressive_default(profile: ReplicaProfile, *, min_replicas: int = 1, max_replicas: int = 20) -> AutoscalingPolicy:
    """Policy (a): CPU at 50 % of the request, Kubernetes' default behaviour."""
    del profile  # the default does not look at the replica
    return AutoscalingPolicy("aggressive-default", min_replicas, max_replicas, (MetricTarget("cpu", 50.0),),
                             DEFAULT_SCALE_UP, DEFAULT_SCALE_DOWN,
                             "CPU target 50 % of the request, Kubernetes' default behavior")


def greenkfp_policy(profile: ReplicaProfile, *, headroom: float = 0.8, min_replicas: int = 1,
                    max_replicas: int = 20, power_metric: bool = True) -> AutoscalingPolicy:
    """Policy (b): targets at ``headroom`` of the SLA capacity, fast scale-down, bounded scale-up.

    The power metric is a guard: its target is :data:`POWER_GUARD` x the power metric of a pod at
    the CPU target (:meth:`ReplicaProfile.power_metric_w`, the rate of the server's energy counter,
    which is what prometheus-adapter serves where power is modeled). Modeled, it moves with CPU and
    never asks for more pods than CPU does; where Kepler measures it, a pod drawing a quarter more
    than modeled at its target scales out before its CPU says so. ``power_metric=False`` leaves it
    out: Kubernetes skips a scale-down while any metric cannot be fetched, so without a working
    prometheus-adapter the power metric would block every scale-down.
    """
    share = positive("headroom", headroom)
    if not 0.1 <= share <= 1.0:
        raise AutoscalingError(f"headroom must be in [0.1, 1.0] of the SLA capacity, got {headroom!r}")
    cpu_target = profile.cpu_utilisation(share * profile.capacity_rps)
    watts = POWER_GUARD * profile.power_metric_w(share * profile.capacity_rps)
    metrics = (MetricTarget("cpu", cpu_target), MetricTarget("memory", 80.0))
    # the value the spec writes (milli-watts, as the HPA reads it), not the unrounded watts
    written = MetricTarget("power", watts).to_k8s()["pods"]["target"]["averageValue"] if power_metric else ""
    power = (f"power {written} (milliwatts) per pod (a guard: {POWER_GUARD:g} x the modeled power at the CPU target)"
             if power_metric else "no power metric")
    return AutoscalingPolicy(
        "greenkfp", min_replicas, max_replicas,
        metrics + ((MetricTarget("power", watts),) if power_metric else ()),
        ScalingRules(0, (ScalingPolicy("Percent", 100, 15), ScalingPolicy("Pods", 4, 15)), "Max"),
        ScalingRules(60, (ScalingPolicy("Percent", 50, 60),), "Min"),
        f"CPU target {cpu_target:.0f} % of the request ({share:.0%} of the SLA capacity), memory 80 %, "
        f"{power}; "
        "scale-down after 60 s by at most half the pods a minute; scale-up x2 or +4 per 15 s")
