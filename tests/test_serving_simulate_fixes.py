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
