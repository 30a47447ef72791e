"""Load testing the inference server against its SLA: the day-shaped load curve, per-stage
statistics and the search for one replica's capacity. Plain Python and numpy: the Locust wiring
is ``scripts/loadtest_serving.py``.

The day, compressed
-------------------
:data:`DAY_STAGES` is a service's day squeezed into a run of a few minutes. Each stage has a share
of the run's duration and an offered load as a share of the peak rate; a ramp stage moves to its
level over its whole length (Locust's spawn rate), the others reach it within a second:

=================  ===========  ========  ===========  =====
stage              day (UTC)    of run    peak share   ramp
=================  ===========  ========  ===========  =====
off-peak           00:00-06:00  20 %      10 %         no
morning ramp       06:00-09:00  15 %      60 %         yes
midday             09:00-17:00  25 %      60 %         no
evening spike      17:00-21:00  15 %      100 %        no
ramp down          21:00-24:00  25 %      20 %         yes
=================  ===========  ========  ===========  =====

Every user offers a fixed rate (Locust's ``constant_pacing``), so a stage's offered rate is its
users x the per-user rate: :func:`plan_day` turns the table, the run's duration and the peak rate
into users and spawn rates (bounded by ``max_users``).

Statistics
----------
:func:`stage_stats` groups the requests by the stage in which they completed and gives each
stage's count, errors, error rate, throughput (requests per second), p50/p95/p99 latency
(milliseconds, numpy's linear interpolation over every request: exact, not Locust's rounded
histogram) and the server's CPU seconds over the stage (from samples of its CPU time, linearly
interpolated at the stage's bounds). All of these are measured.

Capacity at the SLA
-------------------
:func:`search_capacity` finds the highest offered rate one replica serves with p95 latency under
the SLA, at most ``max_error_rate`` errors, and at least ``min_delivered`` of the offered rate
actually answered (a server that falls behind is not serving the rate): the rate doubles from
``start_rps`` until a probe fails, then the bound is bisected until it is known within
``tolerance``. A measurement, so it moves with the machine's load; the autoscaling policy divides
the expected rate by it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np

__all__ = ["Stage", "DAY_STAGES", "PlannedStage", "plan_day", "stage_at", "Sample", "stage_stats",
           "cpu_between", "latency_summary", "Probe", "Capacity", "search_capacity", "LoadTestError"]


class LoadTestError(ValueError):
    """A bad load-test setting (the message names it and its value)."""


@dataclass(frozen=True)
class Stage:
    """One part of the day: its share of the run, its load as a share of the peak, whether it ramps."""

    name: str
    hours: str
    share: float
    load: float
    ramp: bool = False


#: A service's day, compressed (see the module's table).
DAY_STAGES: tuple[Stage, ...] = (
    Stage("off-peak", "00:00-06:00", 0.20, 0.10),
    Stage("morning ramp", "06:00-09:00", 0.15, 0.60, ramp=True),
    Stage("midday", "09:00-17:00", 0.25, 0.60),
    Stage("evening spike", "17:00-21:00", 0.15, 1.00),
    Stage("ramp down", "21:00-24:00", 0.25, 0.20, ramp=True),
)


@dataclass(frozen=True)
class PlannedStage:
    """A stage of a run: its bounds (seconds from the start), users at its end, spawn rate and
    offered rate (requests per second; a ramp's is the mean of the levels it moves between)."""

    name: str
    hours: str
    start_s: float
    end_s: float
    users: int
    spawn_rate: float
    offered_rps: float


def _positive(name: str, value, *, whole: bool = False, lowest: float = 0.0) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number <= lowest or (whole and number != int(number)):
        kind = "a whole number" if whole else "a number"
        raise LoadTestError(f"{name} must be {kind} above {lowest:g}, got {value!r}")
    return number


def plan_day(duration_s: float, peak_rps: float, user_rps: float, *, max_users: int = 200,
             stages: Sequence[Stage] = DAY_STAGES) -> list[PlannedStage]:
    """The stages of a run of ``duration_s`` seconds peaking at ``peak_rps`` requests per second.

    Args:
        duration_s: The whole run, seconds.
        peak_rps: The offered rate at the peak (the evening spike), requests per second.
        user_rps: The rate each simulated user offers (requests per second).
        max_users: The most users ever: a peak that needs more is refused, not silently cut.
        stages: The day's stages; their shares must add up to 1.

    Raises:
        LoadTestError: a bad number, shares that do not add up to 1, or too many users.
    """
    duration_s = _positive("duration", duration_s)
    peak_rps = _positive("peak rate", peak_rps)
    user_rps = _positive("user rate", user_rps)
    max_users = int(_positive("max users", max_users, whole=True))
    if not stages:
        raise LoadTestError("stages must not be empty")
    total = sum(s.share for s in stages)
    if abs(total - 1.0) > 1e-6 or any(not (0 < s.share <= 1) or not (0 <= s.load <= 1) for s in stages):
        raise LoadTestError(f"stage shares must be in (0, 1] and add up to 1, loads in [0, 1]; shares add up to {total:g}")
    peak_users = math.ceil(peak_rps / user_rps - 1e-9)
    if peak_users > max_users:
        raise LoadTestError(f"peak rate {peak_rps:g} req/s at {user_rps:g} req/s per user needs {peak_users} users, "
                            f"more than max users {max_users}")
    planned, start, users_before = [], 0.0, 0
    for stage in stages:
        length = stage.share * duration_s
        users = max(1, round(stage.load * peak_rps / user_rps)) if stage.load > 0 else 0
        change = abs(users - users_before)
        if stage.ramp:
            spawn_rate = max(change / length, 0.1) if change else 1.0
        else:
            spawn_rate = float(max(change, 1))  # within a second
        # a ramp offers, on average, the mean of the levels it moves between
        offered = (users + users_before) / 2 * user_rps if stage.ramp else users * user_rps
        planned.append(PlannedStage(stage.name, stage.hours, start, start + length, users, spawn_rate, offered))
        start, users_before = start + length, users
    return planned


def stage_at(plan: Sequence[PlannedStage], seconds: float) -> PlannedStage | None:
    """The stage running ``seconds`` after the start, None past the end."""
    for stage in plan:
        if seconds < stage.end_s:
            return stage
    return None


@dataclass(frozen=True)
class Sample:
    """One request: when it completed (seconds from the start), its latency (seconds), success."""

    t: float
    latency_s: float
    ok: bool


def latency_summary(latencies_s: Sequence[float]) -> dict:
    """p50, p95, p99 and max of ``latencies_s`` in milliseconds (None for an empty list)."""
    if len(latencies_s) == 0:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    values = np.asarray(latencies_s, dtype=float) * 1000.0
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99), "max_ms": float(values.max())}


def cpu_between(cpu_samples: Sequence[tuple[float, float]], start: float, end: float,
                slack_s: float = 0.5) -> float | None:
    """The CPU seconds used between ``start`` and ``end`` from ``(t, cumulative CPU seconds)``
    samples (sorted by t), linearly interpolated; None when the samples miss either bound by more
    than ``slack_s`` (within it, the nearest sample stands for the bound)."""
    if len(cpu_samples) < 2 or start < cpu_samples[0][0] - slack_s or end > cpu_samples[-1][0] + slack_s:
        return None
    times = np.array([t for t, _ in cpu_samples], dtype=float)
    cpu = np.array([c for _, c in cpu_samples], dtype=float)
    return float(np.interp(end, times, cpu) - np.interp(start, times, cpu))


def stage_stats(plan: Sequence[PlannedStage], samples: Sequence[Sample],
                cpu_samples: Sequence[tuple[float, float]] = ()) -> list[dict]:
    """Per stage: requests, errors, error rate, throughput (req/s), latency percentiles (ms, of
    successful requests), server CPU seconds and requests per CPU-second (None when unknown).

    A request belongs to the stage in which it completed; one completed after the last stage's
    end counts in the last stage.
    """
    ends = np.array([s.end_s for s in plan], dtype=float)
    buckets: list[list[Sample]] = [[] for _ in plan]
    for sample in samples:
        index = min(int(np.searchsorted(ends, sample.t, side="right")), len(plan) - 1)
        buckets[index].append(sample)
    out = []
    for stage, bucket in zip(plan, buckets):
        length = stage.end_s - stage.start_s
        errors = sum(1 for s in bucket if not s.ok)
        cpu_s = cpu_between(cpu_samples, stage.start_s, stage.end_s) if cpu_samples else None
        ok = len(bucket) - errors
        out.append({
            "stage": stage.name, "hours": stage.hours, "start_s": round(stage.start_s, 3), "end_s": round(stage.end_s, 3),
            "users": stage.users, "offered_rps": stage.offered_rps,
            "requests": len(bucket), "errors": errors, "error_rate": errors / len(bucket) if bucket else 0.0,
            "throughput_rps": len(bucket) / length if length > 0 else 0.0,
            **latency_summary([s.latency_s for s in bucket if s.ok]),
            "server_cpu_s": cpu_s,
            "requests_per_cpu_s": ok / cpu_s if cpu_s else None,
        })
    return out


@dataclass(frozen=True)
class Probe:
    """One fixed-rate measurement: offered and answered rate, p95 latency (s), error rate, requests."""

    offered_rps: float
    achieved_rps: float
    p95_s: float | None
    error_rate: float
    requests: int
    passed: bool = False
    reason: str = ""


@dataclass(frozen=True)
class Capacity:
    """The highest offered rate that passed (None: not even the first, or none confirmed), and
    every probe in order. ``confirmed``: the capacity passed ``confirm`` further probes (False
    when none were asked for); ``reason`` says why there is no capacity."""

    sla_p95_s: float
    capacity_rps: float | None
    failed_above_rps: float | None
    probes: list[Probe] = field(default_factory=list)
    criteria: dict = field(default_factory=dict)
    confirmed: bool = False
    reason: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def judge(probe: Probe, sla_s: float, max_error_rate: float, min_delivered: float, min_requests: int) -> Probe:
    """``probe`` with ``passed`` and, when it failed, the first reason."""
    reasons = []
    if probe.requests < min_requests:
        reasons.append(f"only {probe.requests} requests (< {min_requests})")
    if probe.p95_s is None or probe.p95_s > sla_s:
        reasons.append("p95 " + ("unknown" if probe.p95_s is None else f"{probe.p95_s * 1000:.1f} ms")
                       + f" > SLA {sla_s * 1000:g} ms")
    if probe.error_rate > max_error_rate:
        reasons.append(f"error rate {probe.error_rate:.2%} > {max_error_rate:.2%}")
    if probe.achieved_rps < min_delivered * probe.offered_rps:
        reasons.append(f"answered {probe.achieved_rps:.1f} of {probe.offered_rps:.1f} req/s offered")
    return Probe(probe.offered_rps, probe.achieved_rps, probe.p95_s, probe.error_rate, probe.requests,
                 not reasons, "; ".join(reasons))


def search_capacity(measure: Callable[[float], Probe], *, sla_s: float = 0.050, start_rps: float = 20.0,
                    max_rps: float = 2000.0, tolerance: float = 0.10, max_probes: int = 12,
                    max_error_rate: float = 0.01, min_delivered: float = 0.95, min_requests: int = 20,
                    confirm: int = 0) -> Capacity:
    """The highest offered rate at which ``measure(rate)`` meets the SLA.

    A rate near the knee passes one probe and fails the next (the machine's other load moves it),
    so with ``confirm`` the capacity found is probed ``confirm`` more times; if any of those fails,
    it is not the capacity: the next lower rate that passed takes its place and is confirmed in
    turn (at most three steps down). The capacity is then a rate that passed every probe of it,
    or None (with ``reason``) when no rate tried was confirmed.

    Args:
        measure: Runs a fixed offered rate against the server and returns what it saw.
        sla_s: The p95 latency to stay under, seconds.
        start_rps: The first rate tried; it doubles while probes pass.
        max_rps: The highest rate ever offered (a bound on the load).
        tolerance: Stop bisecting once the failing rate is within this share above the passing one.
        max_probes: The most probes (a bound on time).
        max_error_rate: The largest share of errors a passing probe may have.
        min_delivered: The least share of the offered rate a passing probe must answer.
        min_requests: The fewest requests a passing probe must have answered (fewer say nothing).
        confirm: Further probes the capacity must pass (0: one probe is enough); not counted in
            ``max_probes``.

    Raises:
        LoadTestError: a bad setting.
    """
    sla_s = _positive("sla", sla_s)
    start_rps = _positive("start rate", start_rps)
    max_rps = _positive("max rate", max_rps)
    tolerance = _positive("tolerance", tolerance)
    max_probes = int(_positive("max probes", max_probes, whole=True))
    if start_rps > max_rps:
        raise LoadTestError(f"start rate {start_rps:g} must not exceed max rate {max_rps:g}")
    if not 0 <= max_error_rate < 1 or not 0 < min_delivered <= 1:
        raise LoadTestError(f"max error rate must be in [0, 1) and min delivered in (0, 1], got "
                            f"{max_error_rate!r} and {min_delivered!r}")
    if isinstance(confirm, bool) or not isinstance(confirm, int) or not 0 <= confirm <= 10:
        raise LoadTestError(f"confirm must be a whole number from 0 to 10, got {confirm!r}")
    criteria = {"sla_p95_ms": sla_s * 1000, "max_error_rate": max_error_rate, "min_delivered": min_delivered,
                "min_requests": min_requests, "tolerance": tolerance, "max_rps": max_rps, "confirm": confirm}
    probes: list[Probe] = []

    def run(rate: float) -> bool:
        probe = judge(measure(rate), sla_s, max_error_rate, min_delivered, min_requests)
        probes.append(probe)
        return probe.passed

    low: float | None = None
    high: float | None = None
    rate = start_rps
    while len(probes) < max_probes:
        if run(rate):
            low = rate
            if rate >= max_rps:
                break
            rate = min(rate * 2, max_rps)
        else:
            high = rate
            break
    while low is not None and high is not None and len(probes) < max_probes and (high - low) > tolerance * low:
        middle = (low + high) / 2
        if run(middle):
            low = middle
        else:
            high = middle
    confirmed = False
    reason = "" if low is not None else "no probe passed"
    if confirm and low is not None:
        for _ in range(3):
            if all(run(low) for _ in range(confirm)):
                confirmed = True
                break
            high = low
            lower = [p.offered_rps for p in probes if p.passed and p.offered_rps < low]
            low = max(lower) if lower else None
            if low is None:
                break
        if not confirmed:
            # a rate probed once is not a confirmed capacity: say so rather than return it
            reason = (f"not confirmed: no rate passed {confirm} further probes within three steps down"
                      + ("" if low is None else f" (next lower passing rate {low:g} req/s not tried again)"))
            low = None
    return Capacity(sla_s, low, high, probes, criteria, confirmed, reason)
