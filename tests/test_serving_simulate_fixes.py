"""Regressions from the hostile test of issue 15: the simulation's oracle and goals."""

from __future__ import annotations

from greenkfp.components.serving.autoscaling import builtin_profile
from greenkfp.components.serving.simulate import Trace, simulate

GOAL_ORACLE = "greenkfp_within_15_percent_of_oracle"
GOAL_FEWER = "greenkfp_30_percent_fewer_compute_hours_than_aggressive"
GOAL_SLA = "greenkfp_sla_met_in_99_percent_of_minutes"


def _trace(capacity: float) -> Trace:
    # two hours: an hour at half a replica's capacity, then an hour at 3.2 capacities
    return Trace(tuple(capacity * (0.5 if m < 60 else 3.2) for m in range(120)), "test")


def test_the_oracle_keeps_the_policies_bounds_and_an_under_provisioned_b_meets_no_goal():
    profile = builtin_profile()
    capped = simulate(_trace(profile.capacity_rps), profile, max_replicas=1, spot_available=0)
    oracle = capped["series"]["oracle"]["replicas"]
    assert max(oracle) == 1  # bounded by --max-replicas as the policies are
    assert capped["settings"]["max_replicas"] == 1
    goals = capped["comparison"]["goals"]
    assert not goals[GOAL_SLA]["met"]
    for name in (GOAL_ORACLE, GOAL_FEWER):  # (b) breaches the SLA: neither figure is 'met'
        assert goals[name]["met"] is not True and goals[name]["met_across_range"] is not True
        assert "not judged" in goals[name]["verdict"] and "SLA" in goals[name]["verdict"]
    floor = simulate(_trace(profile.capacity_rps), profile, min_replicas=6, max_replicas=20, spot_available=0)
    assert min(floor["series"]["oracle"]["replicas"]) == 6


def test_a_b_that_misses_the_sla_through_headroom_is_not_judged_against_the_oracle():
    profile = builtin_profile()
    loose = simulate(_trace(profile.capacity_rps), profile, headroom=1.0, spot_available=0)
    goals = loose["comparison"]["goals"]
    if not goals[GOAL_SLA]["met"]:
        assert goals[GOAL_ORACLE]["met"] is None and goals[GOAL_ORACLE]["verdict"].startswith("not judged")
    else:  # judged: the verdict matches the figure
        assert goals[GOAL_ORACLE]["met"] == (goals[GOAL_ORACLE]["value"] <= 15)


def _builtin_loadtest() -> dict:
    import json
    from importlib import resources

    return json.loads(resources.files("greenkfp.components.serving.data").joinpath("replica_loadtest.json").read_text())


def test_a_capacity_below_what_a_probe_can_measure_is_refused_naming_the_field(tmp_path, capsys):
    import json

    import pytest

    from greenkfp.components.serving.autoscaling import AutoscalingError, profile_from_loadtest
    from greenkfp.pipelines.cli import main

    data = _builtin_loadtest()
    data["capacity"]["capacity_rps"] = 0.002  # HPA would never scale on it
    data["totals"]["requests_per_cpu_s"] = 0.002
    data["capacity"]["probes"] = []
    with pytest.raises(AutoscalingError, match=r"capacity\.capacity_rps"):
        profile_from_loadtest(data)
    data["capacity"]["capacity_rps"] = 1.0  # 1 req/s x 15 s probes cannot give 20 requests
    data["totals"]["requests_per_cpu_s"] = 1.0
    with pytest.raises(AutoscalingError, match=r"min_requests"):
        profile_from_loadtest(data)
    path = tmp_path / "lt.json"
    path.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["serving", "simulate", "--loadtest", str(path), "--output", str(tmp_path / "out")]) == 2
    said = capsys.readouterr()
    assert "--loadtest" in said.err + said.out and "capacity.capacity_rps" in said.err + said.out
    assert not (tmp_path / "out").exists()


def test_simulate_loadtest_fifo_is_refused_not_waited_on(tmp_path):
    import os
    import subprocess
    import sys

    fifo = tmp_path / "lt.fifo"
    os.mkfifo(fifo)
    done = subprocess.run([sys.executable, "-m", "greenkfp.pipelines.cli", "serving", "simulate", "--loadtest",
                           str(fifo), "--output", str(tmp_path / "out")], capture_output=True, text=True, timeout=30)
    said = (done.stderr + done.stdout).strip()
    assert done.returncode == 2 and "--loadtest" in said and "regular file" in said and "Traceback" not in said
    assert len(said.splitlines()) == 1


def test_starting_pods_count_for_memory_and_power_but_not_cpu_and_fresh_ready_pods_not_for_cpu():
    """groupPods: a Running-not-Ready pod is set aside only for CPU; a pod Ready for less than a
    metric window within the CPU initialization period has its CPU sample ignored too."""
    from greenkfp.components.serving.simulate import METRIC_WINDOW_S, _Replica, _samples

    replica = _Replica(builtin_profile())
    samples = _samples(replica, 200.0, ready=3, not_ready=2, fresh=1)
    assert len(samples["cpu"].values) == 2 and samples["cpu"].not_ready == 3  # 1 fresh + 2 starting aside
    assert len(samples["memory"].values) == 5 and samples["memory"].not_ready == 0
    assert len(samples["power"].values) == 5 and samples["power"].not_ready == 0
    assert min(samples["power"].values) < max(samples["power"].values)  # the starting pods report idle power
    assert 0 < METRIC_WINDOW_S <= 60
