"""The HPA model against the worked examples of the Kubernetes documentation.

Cited: kubernetes.io/docs/concepts/workloads/autoscaling/horizontal-pod-autoscale/ ("Algorithm
details", "Configurable scaling behavior": "Scaling policies", "Stabilization window", "Default
behavior", "Example: change downscale stabilization window", "Example: limit scale down rate",
"Example: disable scale down"), and the controller code it describes
(kubernetes/kubernetes pkg/controller/podautoscaler).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from greenkfp.components.serving.autoscaling import (DEFAULT_SCALE_DOWN, DEFAULT_SCALE_UP, HPA_SYNC_PERIOD_S,
                                                     AutoscalingPolicy, MetricTarget, ScalingPolicy, ScalingRules)
from greenkfp.components.serving.hpa import HorizontalPodAutoscaler, MetricSample, metric_replicas

NO_WINDOW_DOWN = ScalingRules(0, (ScalingPolicy("Percent", 100, 15),), "Max")


def cpu_policy(target=50.0, low=1, high=100, up=DEFAULT_SCALE_UP, down=DEFAULT_SCALE_DOWN) -> AutoscalingPolicy:
    return AutoscalingPolicy("t", low, high, (MetricTarget("cpu", target),), up, down)


def run(hpa: HorizontalPodAutoscaler, utilisation_of, syncs: int, start_s: float = 0.0) -> list[int]:
    """Sync ``syncs`` times, every 15 s; ``utilisation_of(replicas)`` gives the CPU % each pod reports."""
    counts = []
    for i in range(syncs):
        replicas = hpa.replicas
        counts.append(hpa.sync(start_s + i * HPA_SYNC_PERIOD_S, {"cpu": MetricSample.uniform(utilisation_of(replicas),
                                                                                           replicas)}))
    return counts


# --------------------------------------------------------------------------- Algorithm details

def test_current_200m_desired_100m_doubles_the_replicas():
    # "if the current metric value is 200m, and the desired value is 100m, the number of replicas will be doubled"
    assert metric_replicas(3, MetricSample.uniform(200, 3), 100, utilisation=False) == 6
    policy = AutoscalingPolicy("t", 1, 20, (MetricTarget("power", 0.1),), DEFAULT_SCALE_UP, NO_WINDOW_DOWN)
    hpa = HorizontalPodAutoscaler(policy, replicas=3)
    assert hpa.sync(0, {"power": MetricSample.uniform(200, 3)}) == 6


def test_current_50m_desired_100m_halves_the_replicas():
    # "If the current value is instead 50m, you'll halve the number of replicas"
    assert metric_replicas(6, MetricSample.uniform(50, 6), 100, utilisation=False) == 3
    policy = AutoscalingPolicy("t", 1, 20, (MetricTarget("power", 0.1),), DEFAULT_SCALE_UP, NO_WINDOW_DOWN)
    assert HorizontalPodAutoscaler(policy, replicas=6).sync(0, {"power": MetricSample.uniform(50, 6)}) == 3


def test_no_scaling_within_the_tolerance():
    # "The control plane skips any scaling action if the ratio is sufficiently close to 1.0 (within a
    # configurable tolerance, 0.1 by default)"
    for value in (90, 95, 105, 110):  # ratio 0.9 .. 1.1: inside (the bounds included, as isWithin)
        assert metric_replicas(10, MetricSample.uniform(value, 10), 100) == 10
    assert metric_replicas(10, MetricSample.uniform(111, 10), 100) == 12  # ceil(1.11 x 10)
    assert metric_replicas(10, MetricSample.uniform(89, 10), 100) == 9    # ceil(0.89 x 10)
    # utilisation is a whole percent (integer arithmetic): 110.9 % reads as 110 %, inside
    assert metric_replicas(10, MetricSample.uniform(110.9, 10), 100) == 10


def test_not_yet_ready_pods_count_at_zero_on_a_scale_up():
    # "if any not-yet-ready pods were present, and the workload would have scaled up without factoring in
    # missing metrics or not-yet-ready pods, the controller conservatively assumes that the not-yet-ready
    # pods are consuming 0% of the desired metric"
    # 3 ready pods at 150 % of a 100 % target, 1 not ready: (3 x 150 + 0) / 4 = 112 % -> ceil(1.12 x 4) = 5
    assert metric_replicas(4, MetricSample.uniform(150, 3, not_ready=1), 100) == 5
    # without the not-ready pod it would have been ceil(1.5 x 3) = 5 too; with two not ready the
    # ratio (2 x 120) / 4 = 60 % reverses the direction: "the controller doesn't take any scaling action"
    assert metric_replicas(4, MetricSample.uniform(120, 2, not_ready=2), 100) == 4
    # on a scale-down, not-ready pods are only set aside: ceil(0.5 x 3) = 2
    assert metric_replicas(4, MetricSample.uniform(50, 3, not_ready=1), 100) == 2


def test_missing_metrics_count_at_100_percent_on_a_scale_down_and_0_on_a_scale_up():
    # "assuming those pods were consuming 100% of the desired value in case of a scale down, and 0% in
    # case of a scale up"
    # 9 pods at 10 % of a 50 % target, 1 without a metric: (90 + 100) / 10 = 19 % -> ceil(0.38 x 10) = 4
    assert metric_replicas(10, MetricSample.uniform(10, 9, missing=1), 50) == 4
    # a Pods metric: the missing pod counts at the target: (9 x 10 + 50) / 10 = 14 -> ceil(0.28 x 10) = 3
    assert metric_replicas(10, MetricSample.uniform(10, 9, missing=1), 50, utilisation=False) == 3
    # scale-up: 3 pods at 200 %, 1 missing at 0: 150 % -> ceil(1.5 x 4) = 6
    assert metric_replicas(4, MetricSample.uniform(200, 3, missing=1), 100) == 6
    # 3 at 40 % of 50 % (ratio 0.8), the missing pod at 100 %: 55 % -> ratio 1.1, reversed: no change
    assert metric_replicas(4, MetricSample.uniform(40, 3, missing=1), 50) == 4


def test_largest_proposal_over_the_metrics_and_no_scale_down_with_an_invalid_metric():
    # "this calculation is done for each metric, and then the largest of the desired replica counts is chosen.
    # If any of these metrics cannot be converted ... and a scale down is suggested ..., scaling is skipped"
    policy = AutoscalingPolicy("t", 1, 50, (MetricTarget("cpu", 50), MetricTarget("memory", 80)),
                               DEFAULT_SCALE_UP, NO_WINDOW_DOWN)
    hpa = HorizontalPodAutoscaler(policy, replicas=4)
    assert hpa.sync(0, {"cpu": MetricSample.uniform(100, 4), "memory": MetricSample.uniform(40, 4)}) == 8
    hpa = HorizontalPodAutoscaler(policy, replicas=4)
    assert hpa.sync(0, {"cpu": MetricSample.uniform(10, 4), "memory": MetricSample((), 4)}) == 4  # skipped
    assert hpa.sync(15, {"cpu": MetricSample.uniform(100, 4), "memory": MetricSample((), 4)}) == 8  # up still allowed


# --------------------------------------------------------------------------- Configurable scaling behavior

def test_scaling_policies_example_80_replicas():
    # "if there are 80 replicas and the target has to be scaled down to 10 replicas then during the first step
    # 8 replicas will be reduced. In the next iteration when the number of replicas is 72, 10% of the pods is
    # 7.2 but the number is rounded up to 8 ... When the number of replicas falls below 40 the first policy
    # (Pods) is applied and 4 replicas will be reduced at a time."
    down = ScalingRules(0, (ScalingPolicy("Pods", 4, 60), ScalingPolicy("Percent", 10, 60)), "Max")
    hpa = HorizontalPodAutoscaler(cpu_policy(50, 1, 100, down=down), replicas=80)
    # the load needs 10 pods at 50 %: 500 %-pods spread over the current replicas
    counts = run(hpa, lambda r: 500 / r, 60)
    changes = [(i, counts[i - 1] - counts[i]) for i in range(1, len(counts)) if counts[i] != counts[i - 1]]
    assert 80 - counts[0] == 8 and counts[0] == 72
    assert changes[0] == (4, 8)  # 72 -> 64 one minute (4 syncs) later: 8 removed, not 7
    assert all(i % 4 == 0 for i, _ in changes)  # at most one change per 60 s period
    below_40 = [removed for i, removed in changes if counts[i - 1] <= 40]
    assert below_40 and all(removed == 4 for removed in below_40[:-1])
    assert counts[-1] == 10


def test_stabilization_window_uses_the_highest_recommendation_of_the_window():
    # "When the metrics indicate that the target should be scaled down the algorithm looks into previously
    # computed desired states, and uses the highest value from the specified interval" (300 s)
    # a new HPA's first sync records the current count as a recommendation (reconcileAutoscaler's
    # recordInitialRecommendation): a fresh HPA at 10 replicas under low load holds 10 for the window
    hpa = HorizontalPodAutoscaler(cpu_policy(50, 1, 100), replicas=10)
    counts = run(hpa, lambda r: 250 / r, 21)
    assert counts[:20] == [10] * 20 and counts[20] == 5  # t = 0 .. 285 held; at t = 300 the record is out
    hpa = HorizontalPodAutoscaler(cpu_policy(50, 1, 100), replicas=10)
    hpa.sync(0, {"cpu": MetricSample.uniform(50, 10)})  # a recommendation of 10 at t = 0
    counts = run(hpa, lambda r: 250 / r, 25, start_s=15)
    # t = 15 .. 285: the t = 0 recommendation (10) is inside (time > now - 300, strictly); at t = 300 it is out
    assert counts[:19] == [10] * 19 and counts[19] == 5


def test_change_downscale_stabilization_window_to_60_s():
    # "To provide a custom downscale stabilization window of 1 minute"
    down = ScalingRules(60, DEFAULT_SCALE_DOWN.policies, "Max")
    hpa = HorizontalPodAutoscaler(cpu_policy(50, 1, 100, down=down), replicas=10)
    hpa.sync(0, {"cpu": MetricSample.uniform(50, 10)})
    counts = run(hpa, lambda r: 250 / r, 6, start_s=15)
    assert counts == [10, 10, 10, 5, 5, 5]  # t = 60: the t = 0 recommendation is out


def test_limit_scale_down_rate_to_10_percent_per_minute():
    # "To limit the rate at which pods are removed by the HPA to 10% per minute"
    down = ScalingRules(0, (ScalingPolicy("Percent", 10, 60),), "Max")
    hpa = HorizontalPodAutoscaler(cpu_policy(50, 1, 100, down=down), replicas=50)
    counts = run(hpa, lambda r: 50, 1) + run(hpa, lambda r: 50 * 5 / r, 13, start_s=15)  # needs 5 pods
    # every 60 s at most 10 % of the replicas at the period's start leave (rounded up): 50 -> 45 -> 40
    assert counts[1:] == [45, 45, 45, 45, 40, 40, 40, 40, 36, 36, 36, 36, 32]


def test_no_more_than_5_pods_per_minute_with_select_policy_min():
    # "To ensure that no more than 5 Pods are removed per minute, ... set selectPolicy to minimum"
    down = ScalingRules(0, (ScalingPolicy("Percent", 10, 60), ScalingPolicy("Pods", 5, 60)), "Min")
    hpa = HorizontalPodAutoscaler(cpu_policy(50, 1, 200, down=down), replicas=100)
    counts = run(hpa, lambda r: 50 * 10 / r, 9)
    assert counts == [95, 95, 95, 95, 90, 90, 90, 90, 85]  # 5, the smaller of 10 % (10) and 5 pods
    hpa = HorizontalPodAutoscaler(cpu_policy(50, 1, 200, down=down), replicas=30)
    assert run(hpa, lambda r: 50 * 10 / r, 1) == [27]  # 10 % of 30 = 3 < 5: the smaller change


def test_disable_scale_down():
    # "The selectPolicy value of Disabled turns off scaling the given direction"
    down = ScalingRules(0, (), "Disabled")
    hpa = HorizontalPodAutoscaler(cpu_policy(50, 1, 100, down=down), replicas=10)
    assert run(hpa, lambda r: 1, 40) == [10] * 40
    assert run(hpa, lambda r: 100, 1, start_s=900) == [20]  # scale-up still works


def test_default_scale_up_4_pods_or_100_percent_per_15_s():
    # "4 pods or a 100% of the currently running replicas may at most be added every 15 seconds"
    hpa = HorizontalPodAutoscaler(cpu_policy(50, 1, 1000), replicas=1)
    counts = run(hpa, lambda r: 50 * 100 / r, 6)  # needs 100 pods
    assert counts == [5, 10, 20, 40, 80, 100]


def test_scale_up_policies_count_the_period_history():
    # a 60 s Pods policy: the pods added in the last 60 s count against it
    up = ScalingRules(0, (ScalingPolicy("Pods", 2, 60),), "Max")
    hpa = HorizontalPodAutoscaler(cpu_policy(50, 1, 100, up=up), replicas=2)
    assert run(hpa, lambda r: 50 * 20 / r, 9) == [4, 4, 4, 4, 6, 6, 6, 6, 8]


def test_min_and_max_clamp_and_a_count_set_outside_goes_to_the_bound():
    hpa = HorizontalPodAutoscaler(cpu_policy(50, 2, 6, down=NO_WINDOW_DOWN), replicas=4)
    assert run(hpa, lambda r: 500, 3) == [6, 6, 6]
    assert run(hpa, lambda r: 1, 2, start_s=100) == [2, 2]
    hpa.replicas = 9  # set by hand
    assert hpa.sync(1000, {"cpu": MetricSample.uniform(50, 9)}) == 6


# --------------------------------------------------------------------------- properties

rules = st.builds(
    ScalingRules,
    st.sampled_from([0, 15, 60, 300]),
    st.lists(st.builds(ScalingPolicy, st.sampled_from(["Pods", "Percent"]), st.integers(1, 200),
                       st.sampled_from([15, 30, 60, 120])), min_size=1, max_size=3).map(tuple),
    st.sampled_from(["Max", "Min", "Disabled"]))


@st.composite
def policies(draw):
    low = draw(st.integers(1, 10))
    high = draw(st.integers(low, 40))
    target = draw(st.integers(10, 150))
    return AutoscalingPolicy("p", low, high, (MetricTarget("cpu", float(target)),), draw(rules), draw(rules))


@settings(max_examples=150, deadline=None)
@given(policies(), st.lists(st.tuples(st.floats(0, 1000), st.integers(0, 3), st.integers(0, 2)),
                            min_size=1, max_size=40), st.data())
def test_replicas_never_leave_min_max(policy, loads, data):
    hpa = HorizontalPodAutoscaler(policy, replicas=data.draw(st.integers(policy.min_replicas, policy.max_replicas)))
    for i, (load, not_ready, missing) in enumerate(loads):
        ready = max(0, hpa.replicas - not_ready - missing)
        sample = MetricSample.uniform(load, ready, min(not_ready, hpa.replicas), missing if ready else 0)
        count = hpa.sync(i * HPA_SYNC_PERIOD_S, {"cpu": sample})
        assert policy.min_replicas <= count <= policy.max_replicas


@settings(max_examples=100, deadline=None)
@given(policies(), st.integers(1, 40), st.integers(1, 60))
def test_a_steady_metric_at_target_never_changes_the_count(policy, start, syncs):
    start = min(max(start, policy.min_replicas), policy.max_replicas)
    target = policy.metrics[0].target
    hpa = HorizontalPodAutoscaler(policy, replicas=start)
    for i in range(syncs):
        assert hpa.sync(i * HPA_SYNC_PERIOD_S, {"cpu": MetricSample.uniform(target, hpa.replicas)}) == start
