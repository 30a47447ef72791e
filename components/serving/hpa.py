"""A model of the Kubernetes HorizontalPodAutoscaler controller (``autoscaling/v2``), pure Python.

It computes, at each sync (every :data:`~.autoscaling.HPA_SYNC_PERIOD_S` seconds), the replica
count the controller would set for an :class:`~.autoscaling.AutoscalingPolicy`, following the
documented algorithm (kubernetes.io, "Horizontal Pod Autoscaling": "Algorithm details" and
"Configurable scaling behavior") and the controller's code it describes
(kubernetes/kubernetes ``pkg/controller/podautoscaler``: ``replica_calculator.go``
``GetResourceReplicas`` / ``calcPlainMetricReplicas``, ``horizontal.go``
``reconcileAutoscaler``, ``stabilizeRecommendationWithBehaviors``,
``convertDesiredReplicasWithBehaviorRate``, ``calculateScaleUpLimitWithScalingRules``,
``calculateScaleDownLimitWithBehaviors``, ``storeScaleEvent``):

1. Per metric (:func:`metric_replicas`): the ratio of the current average to the target over the
   Ready pods that report the metric; no change within the tolerance (10 %); else
   ``ceil(ratio x ready pods)``. Pods not yet Ready are set aside; pods without a metric too. If
   some were set aside the ratio is computed again with the not-yet-Ready pods at 0 on a scale-up
   and the pods without a metric at 0 on a scale-up, at 100 % of the request (or the target if
   higher; a Pods metric: the target) on a scale-down; no change if that reverses the direction or
   falls within the tolerance. The controller's integer arithmetic is kept: utilisation is a whole
   percent (truncated), a Pods metric's average a whole milli-unit, targets are the spec's
   integers (``averageUtilization``, ``averageValue`` in milli-units).
2. The largest proposal over the metrics; a metric with no sample at all is invalid: scaling is
   skipped if every metric is, or if some are and the others would scale down.
3. Stabilization: an HPA's first sync records the current count as a recommendation
   (``recordInitialRecommendation``), so a new HPA does not scale down within its scale-down
   window; the recommendation becomes the current count raised to the lowest
   recommendation of the scale-up window and lowered to the highest of the scale-down window
   (each window including this sync's recommendation).
4. Rate: a scale-up is limited by the scale-up policies over the scale events of their
   ``periodSeconds`` (replicas at the period's start + Pods value, or x (1 + Percent/100) rounded
   up; ``selectPolicy`` Max: the largest limit, Min: the smallest, Disabled: none), a scale-down
   likewise (start - Pods value, or x (1 - Percent/100) truncated), then ``minReplicas`` /
   ``maxReplicas``.

A count outside [min, max] (set by hand) is brought to the bound directly, as the controller does.
Not modelled: scale to zero, external/object metrics, the alpha per-direction ``tolerance`` field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from .autoscaling import HPA_TOLERANCE, AutoscalingPolicy, MetricTarget, ScalingRules

__all__ = ["MetricSample", "HorizontalPodAutoscaler", "metric_replicas", "spec_target"]


@dataclass(frozen=True)
class MetricSample:
    """One metric as the metrics APIs report it at a sync.

    Attributes:
        values: One value per Ready pod that reports the metric: utilisation, percent of the
            request, for ``cpu``/``memory``; the metric's value (watts) for ``power``.
        not_ready: Pods set aside (``groupPods``): Pending pods for every metric; for ``cpu`` also
            Running pods not yet Ready, or Ready for less than a metric window within the CPU
            initialization period. The caller decides which pods these are.
        missing: Running pods without a metric sample: set aside.
    """

    values: tuple[float, ...]
    not_ready: int = 0
    missing: int = 0

    @classmethod
    def uniform(cls, value: float, ready: int, not_ready: int = 0, missing: int = 0) -> "MetricSample":
        """``ready`` pods all reporting ``value`` (the load spread evenly)."""
        return cls((float(value),) * ready, not_ready, missing)


def spec_target(metric: MetricTarget) -> int:
    """The target as the controller reads it from the spec: ``averageUtilization`` (whole percent)
    or ``averageValue`` in milli-units (the spec's quantity)."""
    spec = metric.to_k8s()
    if metric.metric == "power":
        return int(spec["pods"]["target"]["averageValue"].rstrip("m"))
    return int(spec["resource"]["target"]["averageUtilization"])


def _average(values: Sequence[float]) -> int:
    # GetResourceUtilizationRatio: (sum usage x 100) / sum requests in integers, which for equal
    # requests is the mean percent truncated; GetMetricUsageRatio: sum of milli-values / pods, truncated
    return int(math.fsum(values) / len(values))


def metric_replicas(current_replicas: int, sample: MetricSample, target: int, *, utilisation: bool = True,
                    tolerance: float = HPA_TOLERANCE) -> int | None:
    """The replica count one metric proposes (``GetResourceReplicas`` for a utilisation target,
    ``calcPlainMetricReplicas`` for a Pods metric), or None when no pod reports it.

    ``target`` and ``sample.values`` are in the spec's units: whole percent of the request for a
    utilisation, milli-units for a Pods metric's average value.
    """
    values = list(sample.values)
    if not values:
        return None  # "did not receive metrics for targeted pods (pods might be unready)"
    ready = len(values)
    ratio = _average(values) / target

    def within(r: float) -> bool:
        return 1.0 - tolerance <= r <= 1.0 + tolerance

    scale_up_with_not_ready = sample.not_ready > 0 and ratio > 1.0
    if not scale_up_with_not_ready and sample.missing == 0:
        if within(ratio):
            return current_replicas
        return math.ceil(ratio * ready)
    if sample.missing:
        if ratio < 1.0:  # scale-down: a pod without a metric counts at 100 % of its request (or the target)
            fallback = max(100, target) if utilisation else target
            values += [fallback] * sample.missing
        elif ratio > 1.0:  # scale-up: at 0
            values += [0] * sample.missing
    if scale_up_with_not_ready:
        values += [0] * sample.not_ready
    new_ratio = _average(values) / target
    if within(new_ratio) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current_replicas  # too small a change, or the direction reversed
    replicas = math.ceil(new_ratio * len(values))
    if (new_ratio < 1.0 and replicas > current_replicas) or (new_ratio > 1.0 and replicas < current_replicas):
        return current_replicas
    return replicas


@dataclass
class _Event:
    time_s: float
    change: int


def _change_in_period(period_s: int, events: list[_Event], now_s: float) -> int:
    # getReplicasChangePerPeriod: the events strictly after now - period
    return sum(e.change for e in events if e.time_s > now_s - period_s)


def _replicas_at_period_start(current: int, up: list[_Event], down: list[_Event], period_s: int, now_s: float) -> int:
    """The replicas at the start of a policy's period: today's, less the period's scale-ups, plus its scale-downs."""
    return current - _change_in_period(period_s, up, now_s) + _change_in_period(period_s, down, now_s)


def _scale_up_limit(current: int, up: list[_Event], down: list[_Event], rules: ScalingRules, now_s: float) -> int:
    if rules.select_policy == "Disabled":
        return current
    proposals = []
    for policy in rules.policies:
        start = _replicas_at_period_start(current, up, down, policy.period_seconds, now_s)
        if policy.type == "Pods":
            proposals.append(start + policy.value)
        else:  # rounded up: else a small target would never scale up
            proposals.append(math.ceil(start * (1 + policy.value / 100)))
    return min(proposals) if rules.select_policy == "Min" else max(proposals)


def _scale_down_limit(current: int, up: list[_Event], down: list[_Event], rules: ScalingRules, now_s: float) -> int:
    if rules.select_policy == "Disabled":
        return current
    proposals = []
    for policy in rules.policies:
        start = _replicas_at_period_start(current, up, down, policy.period_seconds, now_s)
        if policy.type == "Pods":
            proposals.append(start - policy.value)
        else:  # int32(float) truncates: the pods removed are rounded up
            proposals.append(math.trunc(start * (1 - policy.value / 100)))
    # the smallest change (Min) leaves the most replicas
    return max(proposals) if rules.select_policy == "Min" else min(proposals)


@dataclass
class HorizontalPodAutoscaler:
    """One HPA's controller state: the target's ``spec.replicas``, the recommendations of the
    stabilization windows and the scale events of the scaling policies' periods.

    Call :meth:`sync` every sync period with the metrics; it returns the new replica count.
    """

    policy: AutoscalingPolicy
    replicas: int = 0
    tolerance: float = HPA_TOLERANCE
    _recommendations: list[tuple[float, int]] = field(default_factory=list, repr=False)
    _up_events: list[_Event] = field(default_factory=list, repr=False)
    _down_events: list[_Event] = field(default_factory=list, repr=False)
    _synced: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if self.replicas == 0:
            self.replicas = self.policy.min_replicas

    def proposal(self, samples: Mapping[str, MetricSample]) -> int | None:
        """The largest replica count the metrics propose (``computeReplicasForMetrics``), or None
        when scaling is skipped (no metric could be read, or some could not and the rest would
        scale down)."""
        proposals, invalid = [], 0
        for metric in self.policy.metrics:
            sample = samples.get(metric.metric)
            count = None if sample is None else metric_replicas(
                self.replicas, sample, spec_target(metric), utilisation=metric.metric != "power",
                tolerance=self.tolerance)
            if count is None:
                invalid += 1
            else:
                proposals.append(count)
        best = max(proposals, default=0)
        if invalid >= len(self.policy.metrics) or (invalid and best < self.replicas):
            return None
        return best

    def sync(self, now_s: float, samples: Mapping[str, MetricSample]) -> int:
        """One reconcile at time ``now_s`` (seconds): the replica count after it."""
        policy, current = self.policy, self.replicas
        if not self._synced:  # recordInitialRecommendation: the count the HPA found, as of its first sync
            self._recommendations.append((now_s, current))
            self._synced = True
        if current > policy.max_replicas:
            desired = policy.max_replicas
        elif current < policy.min_replicas:
            desired = policy.min_replicas
        else:
            proposed = self.proposal(samples)
            if proposed is None:
                return current
            stabilized = self._stabilize(now_s, current, proposed)
            desired = self._limit_rate(now_s, current, stabilized)
        if desired != current:
            self._store_event(now_s, current, desired)
            self.replicas = desired
        return self.replicas

    def _stabilize(self, now_s: float, current: int, proposed: int) -> int:
        up_cutoff = now_s - self.policy.scale_up.stabilization_window_seconds
        down_cutoff = now_s - self.policy.scale_down.stabilization_window_seconds
        up, down = proposed, proposed
        for time_s, recommendation in self._recommendations:
            if time_s > up_cutoff:
                up = min(up, recommendation)
            if time_s > down_cutoff:
                down = max(down, recommendation)
        # a recommendation older than both windows is never read again
        self._recommendations = [(t, r) for t, r in self._recommendations if t >= min(up_cutoff, down_cutoff)]
        self._recommendations.append((now_s, proposed))
        return min(max(current, up), down)

    def _limit_rate(self, now_s: float, current: int, desired: int) -> int:
        policy = self.policy
        if desired > current:
            limit = max(current, _scale_up_limit(current, self._up_events, self._down_events, policy.scale_up, now_s))
            return min(desired, policy.max_replicas, limit)
        if desired < current:
            limit = min(current, _scale_down_limit(current, self._up_events, self._down_events, policy.scale_down,
                                                   now_s))
            return max(desired, policy.min_replicas, limit)
        return desired

    def _store_event(self, now_s: float, previous: int, new: int) -> None:
        # storeScaleEvent: an event older than its direction's longest policy period is replaced
        # (the last such one), else the event is appended
        rules, events = ((self.policy.scale_up, self._up_events) if new > previous
                         else (self.policy.scale_down, self._down_events))
        longest = max((p.period_seconds for p in rules.policies), default=0)
        event = _Event(now_s, abs(new - previous))
        old = [i for i, e in enumerate(events) if e.time_s < now_s - longest]
        if old:
            events[old[-1]] = event
        else:
            events.append(event)
