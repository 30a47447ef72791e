"""The gate policy on the embedded data: validation, decisions, thresholds, waiting."""

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from greenkfp.components.carbon import (
    EmbeddedProvider,
    GatePolicy,
    UnknownRegionError,
    decide,
    policy_from_params,
)

UTC = timezone.utc
H = timedelta(hours=1)
START = datetime(2023, 6, 14, 9, tzinfo=UTC)


def hourly_values(zone, start, hours):
    data = EmbeddedProvider().data
    row = data.zones.index(zone)
    first = int((start.timestamp() - data.start_epoch_s) // 3600)
    return data.intensities["lifecycle"][row, first : first + hours]


def brute_force_best(values, job_hours, max_start):
    averages = [values[s : s + job_hours].mean() for s in range(max_start + 1)]
    best = int(np.argmin(averages))
    return best, averages[best], averages[0]


def test_decision_matches_a_brute_force_search_on_real_data(clock):
    policy = GatePolicy(regions=("GB",), duration=3 * H, earliest_start=START, max_delay=12 * H)
    decision = decide(policy, clock=clock)
    best, best_avg, now_avg = brute_force_best(hourly_values("GB", START, 15), 3, 12)
    assert decision.start_at == START + best * H
    assert decision.chosen.average == pytest.approx(best_avg)
    assert decision.run_now.average == pytest.approx(now_avg)
    assert decision.should_run and decision.action == ("wait" if best else "run_now")
    assert decision.delay == best * H
    record = decision.to_record()
    assert record.regions[0].data_kind == "historical"
    assert record.savings_percent == pytest.approx(100 * (now_avg - best_avg) / now_avg)
    assert type(record).from_json(record.to_json()) == record  # JSON-ready, round trip


def test_several_regions_pick_the_greenest_and_price_run_now_at_home(clock):
    regions = ("DE-LU", "GB", "CA-ON")
    policy = GatePolicy(regions=regions, duration=2 * H, earliest_start=START, max_delay=6 * H, energy_kwh=2.0)
    decision = decide(policy, clock=clock)
    bests = {z: brute_force_best(hourly_values(z, START, 8), 2, 6) for z in regions}
    greenest = min(regions, key=lambda z: bests[z][1])
    assert decision.region == greenest
    assert decision.run_now.average == pytest.approx(bests["DE-LU"][2])  # home is the first region
    assert decision.savings_g == pytest.approx(2.0 * (bests["DE-LU"][2] - bests[greenest][1]))
    assert [r.region for r in decision.to_record().regions] == list(regions)


def test_absolute_threshold_refuses_when_even_the_best_window_is_dirty(clock):
    policy = GatePolicy(regions=("DE-LU",), duration=2 * H, earliest_start=START, max_delay=6 * H, threshold_gco2_per_kwh=1.0)
    decision = decide(policy, clock=clock)
    assert not decision.should_run and decision.action == "refuse"
    assert "above the threshold 1.0" in decision.reason


def test_percentile_threshold_uses_the_forecast_over_the_search_period(clock):
    values = hourly_values("GB", START, 14)
    policy = GatePolicy(regions=("GB",), duration=H, earliest_start=START, max_delay=13 * H, threshold_percentile=0)
    decision = decide(policy, clock=clock)
    # a one-hour job's best window is the minimum hour, which equals the 0th percentile: runs
    assert decision.threshold_gco2_per_kwh == pytest.approx(values.min())
    assert decision.should_run
    policy2 = GatePolicy(regions=("GB",), duration=3 * H, earliest_start=START, max_delay=11 * H, threshold_percentile=0)
    assert decide(policy2, clock=clock).action == "refuse"  # a 3-hour average is above the single lowest hour


def test_min_savings_keeps_the_job_at_run_now(clock):
    policy = GatePolicy(regions=("GB",), duration=3 * H, earliest_start=START, max_delay=12 * H, min_savings_percent=99)
    decision = decide(policy, clock=clock)
    assert decision.action == "run_now" and decision.delay == timedelta(0)
    assert "under min_savings_percent 99" in decision.reason


def test_wait_mode_sleeps_until_the_window(clock):
    clock.now = START
    policy = GatePolicy(regions=("GB",), duration=3 * H, max_delay=12 * H, mode="wait")
    decision = decide(policy, clock=clock, sleep=clock.sleep)
    assert decision.delay > timedelta(0)  # this June morning has a greener window later
    assert clock.slept == [decision.delay.total_seconds()]
    assert decision.waited_seconds == decision.delay.total_seconds() <= 12 * 3600


def test_plan_mode_never_sleeps(clock):
    clock.now = START
    decide(GatePolicy(regions=("GB",), duration=3 * H, max_delay=12 * H), clock=clock, sleep=clock.sleep)
    assert clock.slept == []


def test_now_defaults_to_the_clock_floored_to_the_minute(clock):
    clock.now = START + timedelta(minutes=7, seconds=42, microseconds=5)
    decision = decide(GatePolicy(regions=("GB",), duration=H, max_delay=0 * H), clock=clock)
    assert decision.start_at == START + timedelta(minutes=7)
    assert decision.action == "run_now"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"duration": timedelta(0)}, "duration must be a positive timedelta"),
        ({"duration": -H}, "duration must be a positive timedelta"),
        ({"threshold_gco2_per_kwh": -5.0}, "threshold_gco2_per_kwh must be a finite number >= 0, got -5.0"),
        ({"threshold_percentile": 101}, "threshold_percentile must be between 0 and 100, got 101"),
        ({"earliest_start": datetime(2023, 1, 1)}, "earliest_start must be timezone-aware"),
        ({"deadline": datetime(2023, 1, 1)}, "deadline must be timezone-aware"),
        ({"regions": ()}, "regions must be a non-empty list"),
        ({"provider": "nope"}, "provider must be one of embedded, uk, electricitymaps, watttime, carbon_aware_sdk; got 'nope'"),
        ({"on_provider_failure": "shrug"}, "on_provider_failure must be 'fail_open' or 'fail_closed', got 'shrug'"),
        ({"mode": "later"}, "mode must be 'plan' or 'wait', got 'later'"),
        ({"max_delay": -H}, "max_delay must be a timedelta >= 0"),
        ({"provider_options": {"electricitymaps": {"api_key": "x"}}}, "must not carry credentials"),
        (
            {"earliest_start": START, "deadline": START + H},
            "deadline 2023-06-14T10:00:00\\+00:00 is before earliest_start 2023-06-14T09:00:00\\+00:00 plus duration 2:00:00",
        ),
    ],
)
def test_bad_policy_input_names_the_field_and_value(kwargs, message):
    base = {"regions": ("GB",), "duration": 2 * H}
    with pytest.raises(ValueError, match=message):
        GatePolicy(**{**base, **kwargs})


def test_impossible_deadline_against_now_fails_before_any_fetch(clock):
    policy = GatePolicy(regions=("GB",), duration=2 * H, deadline=clock.now + H)
    with pytest.raises(ValueError, match="is before earliest_start"):
        decide(policy, clock=clock)


def test_unknown_region_for_the_primary_provider_is_an_error_not_an_outage(clock):
    policy = GatePolicy(regions=("GB", "Mars"), duration=H, on_provider_failure="fail_open")
    with pytest.raises(UnknownRegionError, match="supported zones: .*GB"):
        decide(policy, clock=clock)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"threshold": "abc"}, "threshold must be empty, a number of gCO2eq/kWh such as 250, or a percentile such as p25; got 'abc'"),
        ({"deadline": "2026-01-01T00:00:00"}, "deadline must be timezone-aware .* got the naive datetime '2026-01-01T00:00:00'"),
        ({"earliest_start": "tomorrow"}, "earliest_start must be an ISO 8601 datetime .* got 'tomorrow'"),
        ({"duration_hours": 0}, "duration_hours must be positive, got 0"),
        ({"max_delay_hours": -1.0}, "max_delay_hours must be a number of hours >= 0, got -1.0"),
    ],
)
def test_params_errors_name_the_parameter(params, message):
    base = {"regions": ["GB"], "duration_hours": 2.0}
    with pytest.raises(ValueError, match=message):
        policy_from_params(**{**base, **params})


def test_params_parse_thresholds_and_times():
    policy = policy_from_params(["GB"], 1.5, threshold="p25", deadline="2026-01-01T06:00:00Z", max_delay_hours=4)
    assert policy.threshold_percentile == 25 and policy.threshold_gco2_per_kwh is None
    assert policy.deadline == datetime(2026, 1, 1, 6, tzinfo=UTC)
    assert policy.duration == timedelta(minutes=90) and policy.max_delay == 4 * H
    assert policy_from_params(["GB"], 1, threshold="250").threshold_gco2_per_kwh == 250
