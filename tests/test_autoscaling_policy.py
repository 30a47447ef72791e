"""The autoscaling policies and the replica profile (components/serving/autoscaling.py): the one
definition the manifests and the simulation share."""

from __future__ import annotations

import copy
import json
from importlib import resources

import pytest

from greenkfp.components.serving.autoscaling import (
    DEFAULT_SCALE_DOWN, DEFAULT_SCALE_UP, POWER_METRIC, AutoscalingError, AutoscalingPolicy, MetricTarget,
    ReplicaProfile, ScalingPolicy, ScalingRules, aggressive_default, builtin_profile, greenkfp_policy,
    profile_from_loadtest)


def _loadtest() -> dict:
    return json.loads(resources.files("greenkfp.components.serving.data").joinpath("replica_loadtest.json").read_text())


def test_the_default_behavior_is_kubernetes_documented_default():
    # HPA docs, "Default Behavior": scaleDown 300 s window, 100 % per 15 s; scaleUp no window,
    # max(100 % per 15 s, 4 pods per 15 s).
    assert DEFAULT_SCALE_DOWN.to_k8s() == {"stabilizationWindowSeconds": 300, "selectPolicy": "Max",
                                           "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}
    assert DEFAULT_SCALE_UP.to_k8s() == {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
        {"type": "Percent", "value": 100, "periodSeconds": 15}, {"type": "Pods", "value": 4, "periodSeconds": 15}]}


def test_builtin_profile_is_the_shipped_measurement():
    data = _loadtest()
    profile = builtin_profile()
    assert profile.capacity_rps == data["capacity"]["capacity_rps"]
    # the cost per request at the capacity: the mean of the capacity's probes (the load test
    # confirmed it with repeats and recorded each one's CPU)
    at_capacity = [p["requests_per_cpu_s"] for p in data["capacity"]["probes"]
                   if p["passed"] and p["offered_rps"] == profile.capacity_rps]
    assert len(at_capacity) == 1 + data["settings"]["confirm"]
    assert profile.requests_per_cpu_s == pytest.approx(sum(at_capacity) / len(at_capacity))
    assert profile.cpu_limit_m == data["settings"].get("cpu_limit_m")
    assert "measured" in profile.source
    passed = [p for p in data["capacity"]["probes"] if p["passed"]]
    assert {p["offered_rps"] for p in passed} <= {rate for rate, _ in profile.latency_points}


def test_cpu_request_is_the_cpu_used_at_the_sla_capacity():
    profile = ReplicaProfile(capacity_rps=100.0, sla_p95_s=0.05, latency_points=((50.0, 0.01),),
                             requests_per_cpu_s=1000.0)
    assert profile.cpu_request_m == 100  # 100 req/s / 1000 req per CPU-second = 0.1 CPU
    assert profile.cpu_utilisation(100.0) == pytest.approx(100.0)
    assert profile.cpu_utilisation(50.0) == pytest.approx(50.0)
    assert profile.rps_at_utilisation(80.0) == pytest.approx(80.0)
    odd = ReplicaProfile(capacity_rps=100.5, sla_p95_s=0.05, latency_points=(), requests_per_cpu_s=1000.0)
    assert odd.cpu_request_m == 101  # rounded up to 1 m (Kubernetes' CPU precision), never below the use


def test_policy_b_targets_its_headroom_of_the_capacity():
    profile = builtin_profile()
    b = greenkfp_policy(profile, headroom=0.8)
    per_pod = profile.rps_at_utilisation(b.target("cpu"))
    assert per_pod == pytest.approx(0.8 * profile.capacity_rps)
    assert b.target("power") > 0
    # a higher headroom draws more power per pod at its target
    assert greenkfp_policy(profile, headroom=0.9).target("power") > b.target("power")
    a = aggressive_default(profile)
    assert a.target("cpu") == 50.0 and a.scale_down == DEFAULT_SCALE_DOWN and a.scale_up == DEFAULT_SCALE_UP


def test_hpa_spec_is_the_autoscaling_v2_shape():
    spec = greenkfp_policy(builtin_profile(), max_replicas=12).hpa_spec()
    assert spec["minReplicas"] == 1 and spec["maxReplicas"] == 12
    kinds = {m["type"]: m for m in spec["metrics"]}
    assert kinds["Pods"]["pods"]["metric"]["name"] == POWER_METRIC
    assert kinds["Pods"]["pods"]["target"]["averageValue"].endswith("m")
    assert {m["resource"]["name"] for m in spec["metrics"] if m["type"] == "Resource"} == {"cpu", "memory"}
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 60


@pytest.mark.parametrize("build, field", [
    (lambda: AutoscalingPolicy("x", 5, 2, (MetricTarget("cpu", 50),)), "min_replicas"),
    (lambda: AutoscalingPolicy("x", 0, 2, (MetricTarget("cpu", 50),)), "min_replicas"),
    (lambda: AutoscalingPolicy("x", 1, 2, ()), "metric"),
    (lambda: AutoscalingPolicy("x", 1, 2, (MetricTarget("cpu", 50), MetricTarget("cpu", 60))), "each metric"),
    (lambda: MetricTarget("gpu", 50), "metric must be"),
    (lambda: MetricTarget("cpu", float("nan")), "cpu target"),
    (lambda: MetricTarget("cpu", 5000), "cpu target"),
    (lambda: ScalingPolicy("Replicas", 1, 15), "type"),
    (lambda: ScalingPolicy("Pods", 1, 1801), "periodSeconds"),
    (lambda: ScalingRules(-1, (ScalingPolicy("Pods", 1, 15),)), "stabilizationWindowSeconds"),
    (lambda: ScalingRules(0, ()), "at least one policy"),
    (lambda: greenkfp_policy(builtin_profile(), headroom=1.5), "headroom"),
])
def test_bad_settings_name_the_field(build, field):
    with pytest.raises(ValueError, match=field):
        build()


def test_a_disabled_direction_needs_no_policy():
    assert ScalingRules(0, (), "Disabled").to_k8s()["selectPolicy"] == "Disabled"


def test_profile_from_loadtest_refuses_what_is_not_a_load_test():
    with pytest.raises(AutoscalingError, match="not a load test"):
        profile_from_loadtest({"schema": "something/v1"}, source="x.json")
    data = _loadtest()
    data["capacity"]["capacity_rps"] = None
    with pytest.raises(AutoscalingError, match="found no capacity"):
        profile_from_loadtest(data, source="x.json")
    broken = copy.deepcopy(_loadtest())
    del broken["totals"]
    with pytest.raises(AutoscalingError, match="lacks 'totals'"):
        profile_from_loadtest(broken, source="x.json")
    negative = copy.deepcopy(_loadtest())
    negative["totals"]["requests_per_cpu_s"] = -3
    for probe in negative["capacity"]["probes"]:  # the capacity probe's own figure, used where recorded
        if "requests_per_cpu_s" in probe:
            probe["requests_per_cpu_s"] = -3
    with pytest.raises(ValueError, match="requests_per_cpu_s"):
        profile_from_loadtest(negative)


def test_profile_from_loadtest_names_a_field_that_is_not_a_number():
    data = _loadtest()
    data["capacity"]["probes"][0]["p95_s"] = "fast"
    with pytest.raises(AutoscalingError, match=r"capacity.probes\[0\].p95_s must be a number, got 'fast'"):
        profile_from_loadtest(data, source="x.json")


def test_the_power_target_is_in_the_units_of_the_servers_energy_counter():
    """The HPA's power target and the metric prometheus-adapter serves from greenkfp serve's
    energy counter are one quantity: CPU-seconds per second x the modeled power of a busy vCPU."""
    from greenkfp.components.energy.profiles import resolve_profile
    from greenkfp.components.serving.autoscaling import POWER_GUARD
    from greenkfp.components.serving.metrics import EnergyAccount

    profile = builtin_profile()
    account = EnergyAccount(profile.hardware_profile)
    load = 0.8 * profile.capacity_rps
    counter_rate_w = load / profile.requests_per_cpu_s * account.watts_per_busy_core  # J/s the counter grows by
    assert profile.power_metric_w(load) == pytest.approx(counter_rate_w)
    assert greenkfp_policy(profile).target("power") == pytest.approx(POWER_GUARD * counter_rate_w)
    # proportional to the load: no idle floor (the counter charges inference only)
    assert profile.power_metric_w(load / 4) == pytest.approx(counter_rate_w / 4)
    assert resolve_profile(profile.hardware_profile).name == account.profile.name


def test_latency_points_come_from_the_steady_probes_and_the_worst_repeat():
    data = _loadtest()
    probes = data["capacity"]["probes"]
    profile = profile_from_loadtest(data)
    rates = {p["offered_rps"] for p in probes if p.get("p95_s") is not None}
    assert {rate for rate, _ in profile.latency_points} == rates  # no day stage among them
    at_capacity = [p["p95_s"] for p in probes if p["offered_rps"] == data["capacity"]["capacity_rps"]]
    assert dict(profile.latency_points)[data["capacity"]["capacity_rps"]] == max(at_capacity)
    # a load test without probes still gives points, from its stages
    data["capacity"]["probes"] = []
    data["settings"]["cpu_limit_m"] = None  # the day's mean cost sizes the request above the probes' limit
    staged = profile_from_loadtest(data)
    assert {rate for rate, _ in staged.latency_points} == {s["offered_rps"] for s in data["stages"]}


# --------------------------------------------------------------------------- hostile load tests


@pytest.mark.parametrize("path, value, says", [
    (("capacity", "capacity_rps"), True, "capacity.capacity_rps must be a number, got True"),
    (("capacity", "capacity_rps"), "250", "capacity.capacity_rps must be a number, got '250'"),
    (("capacity", "capacity_rps"), 5e6, "capacity.capacity_rps must be"),
    (("totals", "requests_per_cpu_s"), 1e300, "requests_per_cpu_s must be"),
    (("capacity", "sla_p95_s"), float("nan"), "capacity.sla_p95_s must be"),
    (("settings", "cpu_limit_m"), 1, "settings.cpu_limit_m"),
    (("settings", "cpu_limit_m"), True, "settings.cpu_limit_m must be"),
    (("capacity", "probes"), [[1, 2]], "capacity.probes[0] must be an object"),
])
def test_a_hostile_load_test_is_refused_naming_its_field(path, value, says):
    data = _loadtest()
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    if path[-1] == "requests_per_cpu_s":
        for probe in data["capacity"]["probes"]:
            if "requests_per_cpu_s" in probe:
                probe["requests_per_cpu_s"] = value
    with pytest.raises(AutoscalingError) as caught:
        profile_from_loadtest(data, source="x.json")
    assert says in str(caught.value), str(caught.value)
    assert "lacks" not in str(caught.value) and "indices" not in str(caught.value)


@pytest.mark.parametrize("bad", [-1, float("nan")])
def test_a_bad_p95_is_shown_as_it_is(bad):
    data = _loadtest()
    data["capacity"]["probes"][0]["p95_s"] = bad
    with pytest.raises(AutoscalingError) as caught:
        profile_from_loadtest(data, source="x.json")
    assert "capacity.probes[0].p95_s" in str(caught.value) and f"got {bad!r}" in str(caught.value), str(caught.value)


def test_the_request_must_fit_under_the_limit():
    data = _loadtest()
    data["settings"]["cpu_limit_m"] = 10  # a request of 28 m cannot sit under a 10 m limit
    with pytest.raises(AutoscalingError, match=r"settings.cpu_limit_m \(10\)"):
        profile_from_loadtest(data, source="x.json")


def test_the_hpa_cpu_target_is_rounded_down():
    profile = builtin_profile()
    for headroom in (0.5, 0.55, 0.8, 0.87, 0.93):
        policy = greenkfp_policy(profile, headroom=headroom)
        written = policy.hpa_spec()["metrics"][0]["resource"]["target"]["averageUtilization"]
        assert written <= policy.target("cpu") < written + 1


def test_the_power_metric_can_be_left_out():
    policy = greenkfp_policy(builtin_profile(), power_metric=False)
    assert policy.target("power") is None and {m.metric for m in policy.metrics} == {"cpu", "memory"}
