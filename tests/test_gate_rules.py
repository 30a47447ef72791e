"""The gate's decision rules on forecasts chosen for each rule (issue 17): which region and window,
run now / wait / refuse, the threshold and minimum-savings boundaries, the percentile's period,
fail-open and fail-closed records, fallbacks, the fetch period and budget, waiting.

The forecasts come from ``TableSource``, a stand-in for a provider's service (the gate takes
its providers as an argument for this): it serves fixed hourly values per region through the
public ``CarbonProvider`` interface and remembers what it was asked. Everything else is the real
gate.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo

import pytest

from greenkfp.components.carbon import (
    CarbonProvider,
    CarbonSeries,
    GateError,
    GatePolicy,
    ProviderForecast,
    ProviderUnavailableError,
    UnknownRegionError,
    decide,
)
from greenkfp.components.carbon import gate as gate_module
from greenkfp.components.carbon.gate import DEFAULT_HORIZON, MAX_ENERGY_KWH, MAX_HORIZON, MIN_DURATION

UTC = timezone.utc
H = timedelta(hours=1)
NOW = datetime(2023, 6, 14, 9, tzinfo=UTC)


class TableSource(CarbonProvider):
    """Fixed hourly intensities per region from ``start``; ``failures`` maps a region to the
    exception the service raises for it."""

    def __init__(self, name: str, table: dict[str, list[float]], start: datetime = NOW,
                 failures: dict[str, Exception] | None = None, granularity: timedelta = H):
        self.name = name
        self.table = table
        self.start = start
        self.failures = failures or {}
        self.granularity = granularity
        self.asked: list[tuple[str, datetime, datetime]] = []
        self.closed = False

    def forecast(self, region, start, end):
        self.asked.append((region, start, end))
        if region in self.failures:
            raise self.failures[region]
        if region not in self.table:
            raise UnknownRegionError(f"{self.name} does not serve {region!r}")
        points = [(self.start + i * self.granularity, v) for i, v in enumerate(self.table[region])]
        return ProviderForecast(CarbonSeries.from_points(points, granularity=self.granularity), region, self.name,
                                "forecast", "marginal", NOW)

    def current(self, region):  # not used by the gate
        raise NotImplementedError

    def close(self):
        self.closed = True


def run(table, *, failures=None, start=NOW, clock_at=NOW, sleep=None, fallback=None, **policy):
    """The gate's decision over ``table`` served as the ``uk`` provider (and ``fallback`` as
    ``watttime``, when given)."""
    providers = {"uk": TableSource("uk", table, start, failures)}
    if fallback is not None:
        providers["watttime"] = fallback
        policy.setdefault("fallback_providers", ("watttime",))
    policy.setdefault("duration", H)
    policy.setdefault("regions", tuple(table) or ("A",))
    decision_policy = GatePolicy(provider="uk", **policy)
    kwargs = {} if sleep is None else {"sleep": sleep}
    return decide(decision_policy, providers=providers, clock=lambda: clock_at, **kwargs)


# --------------------------------------------------------------------------- where and when


def test_the_greenest_region_wins_and_run_now_is_priced_at_home():
    d = run({"A": [200, 180, 160], "B": [150, 90, 120]}, max_delay=2 * H, energy_kwh=2.0)
    assert d.region == "B" and d.chosen.average == 90 and d.start_at == NOW + H
    assert d.run_now.average == 200 and d.home_region == "A"
    assert d.action == "wait" and d.should_run and d.delay == H
    assert d.savings_percent == pytest.approx(55.0)
    assert d.savings_g == pytest.approx(2.0 * (200 - 90))
    record = d.to_record()
    assert record.emissions_now_g == pytest.approx(400.0) and record.emissions_window_g == pytest.approx(180.0)
    assert record.intensity_now_gco2_per_kwh == 200 and record.intensity_window_gco2_per_kwh == 90
    assert record.delay_seconds == 3600.0 and record.region == "B"
    assert "greenest window in B starts 2023-06-14T10:00:00+00:00 at 90.0 gCO2eq/kWh, 55.0% below running now in A" \
        == record.reason


def test_equal_regions_keep_the_first_listed():
    d = run({"A": [100, 50], "B": [100, 50], "C": [100, 50]}, regions=("B", "A", "C"), max_delay=H)
    assert d.region == "B"


def test_the_best_window_now_is_run_now_not_wait():
    d = run({"A": [80, 90, 100]}, max_delay=2 * H)
    assert d.action == "run_now" and d.delay == timedelta(0) and d.start_at == NOW and d.should_run


def test_moving_region_at_the_same_time_is_not_waiting_and_min_savings_does_not_hold_it():
    # the saving comes from another region now, not from a delay: min_savings_percent governs
    # waiting only
    d = run({"A": [200, 200], "B": [150, 150]}, max_delay=H, min_savings_percent=90)
    assert d.region == "B" and d.action == "run_now" and d.start_at == NOW
    assert d.savings_percent == pytest.approx(25.0)


def test_a_zero_home_run_now_claims_no_percentage():
    d = run({"A": [0, 0, 5]}, max_delay=H)
    assert d.run_now.average == 0 and d.savings_percent is None
    assert "0.0% below running now in A" in d.reason
    assert d.to_record().savings_percent is None


def test_savings_are_none_without_an_energy_estimate():
    d = run({"A": [200, 100]}, max_delay=H)
    record = d.to_record()
    assert d.savings_g is None and record.emissions_now_g is None and record.emissions_window_g is None


# --------------------------------------------------------------------------- minimum savings


def test_a_saving_exactly_at_min_savings_waits():
    d = run({"A": [200, 100]}, max_delay=H, min_savings_percent=50)
    assert d.action == "wait" and d.start_at == NOW + H


def test_a_saving_just_under_min_savings_runs_now_at_home():
    d = run({"A": [200, 100], "B": [300, 100.5]}, max_delay=H, min_savings_percent=50.1)
    assert d.action == "run_now" and d.region == "A" and d.start_at == NOW and d.delay == timedelta(0)
    assert d.chosen == d.run_now
    assert d.reason == "best window saves 50.0%, under min_savings_percent 50.1: running now"


def test_without_a_baseline_min_savings_zero_still_waits_for_the_window():
    down = ProviderUnavailableError("uk", "A", "down")
    d = run({"A": [1, 1], "B": [200, 100]}, failures={"A": down}, max_delay=H)
    assert d.region == "B" and d.action == "wait" and d.start_at == NOW + H
    assert d.run_now is None and d.home_region == "A" and d.savings_percent is None
    assert "no baseline: the home region A did not answer, so no saving is claimed" in d.reason


def test_without_a_baseline_a_min_savings_runs_now_in_the_region_that_answered():
    down = ProviderUnavailableError("uk", "A", "down")
    d = run({"A": [1, 1], "B": [200, 100]}, failures={"A": down}, max_delay=H, min_savings_percent=1)
    assert d.region == "B" and d.action == "run_now" and d.start_at == NOW and d.chosen.average == 200
    assert d.reason == "best window saves unknown (no baseline), under min_savings_percent 1: running now"


# --------------------------------------------------------------------------- thresholds


def test_a_best_window_exactly_at_the_threshold_runs():
    d = run({"A": [300, 120]}, max_delay=H, threshold_gco2_per_kwh=120)
    assert d.should_run and d.action == "wait" and d.threshold_gco2_per_kwh == 120


def test_a_best_window_above_the_threshold_refuses_and_records_the_window():
    d = run({"A": [300, 120]}, max_delay=H, threshold_gco2_per_kwh=119.9, energy_kwh=1.0)
    assert not d.should_run and d.action == "refuse"
    assert d.start_at == NOW + H and d.delay == H and d.chosen.average == 120
    assert d.reason == ("the greenest window (120.0 gCO2eq/kWh in A) is above the threshold 119.9 gCO2eq/kWh: "
                        "not running")
    record = d.to_record()
    assert record.threshold_gco2_per_kwh == 119.9 and record.savings_g == pytest.approx(180.0)


def test_a_zero_threshold_refuses_any_emitting_window_and_runs_a_zero_one():
    assert run({"A": [3, 1]}, max_delay=H, threshold_gco2_per_kwh=0).action == "refuse"
    assert run({"A": [3, 0]}, max_delay=H, threshold_gco2_per_kwh=0).action == "wait"


def test_the_percentile_covers_the_slots_overlapping_the_search_period():
    # the forecast starts an hour before now and runs two hours past the latest end (12:00):
    # only the 09:00, 10:00 and 11:00 slots are in the search period
    table = {"A": [5, 300, 200, 100, 400, 6]}
    start = NOW - H
    low = run(table, start=start, max_delay=2 * H, threshold_percentile=0)
    assert low.threshold_gco2_per_kwh == 100 and low.should_run
    high = run(table, start=start, max_delay=2 * H, threshold_percentile=100)
    assert high.threshold_gco2_per_kwh == 300
    mid = run(table, start=start, max_delay=2 * H, threshold_percentile=50)
    assert mid.threshold_gco2_per_kwh == 200


def test_the_percentile_includes_the_slot_holding_an_unaligned_earliest_start():
    table = {"A": [5, 300, 200, 100, 400, 6]}
    d = run(table, start=NOW - H, earliest_start=NOW - timedelta(minutes=30), duration=timedelta(minutes=30),
            max_delay=timedelta(hours=1), threshold_percentile=0)
    # 08:30 to 10:00 overlaps the 08:00 and 09:00 slots
    assert d.threshold_gco2_per_kwh == 5


def test_the_percentile_without_bounds_runs_to_the_end_of_the_data():
    d = run({"A": [50, 40, 30, 900]}, threshold_percentile=100)
    assert d.threshold_gco2_per_kwh == 900


def test_the_percentile_is_of_the_chosen_region():
    d = run({"A": [500, 600, 700], "B": [10, 20, 30]}, max_delay=2 * H, threshold_percentile=100)
    assert d.region == "B" and d.threshold_gco2_per_kwh == 30


# --------------------------------------------------------------------------- the search period


def test_the_tighter_of_deadline_and_max_delay_bounds_the_search():
    source_end = NOW + 6 * H
    policy = GatePolicy(regions=("A",), duration=H, deadline=source_end, max_delay=H)
    assert policy.latest_end(NOW) == NOW + 2 * H
    policy = GatePolicy(regions=("A",), duration=H, deadline=NOW + 2 * H, max_delay=4 * H)
    assert policy.latest_end(NOW) == NOW + 2 * H
    assert GatePolicy(regions=("A",), duration=H).latest_end(NOW) is None
    # a deadline exactly at earliest + duration leaves one window
    policy = GatePolicy(regions=("A",), duration=H, deadline=NOW + H, earliest_start=NOW)
    assert policy.latest_end(NOW) == NOW + H
    with pytest.raises(ValueError, match="is before earliest_start"):
        GatePolicy(regions=("A",), duration=H, deadline=NOW + H - timedelta(seconds=1), earliest_start=NOW)


def test_the_window_search_keeps_within_the_deadline():
    d = run({"A": [300, 200, 100, 5]}, deadline=NOW + 3 * H)
    assert d.chosen.average == 100 and d.chosen.end == NOW + 3 * H


def test_the_provider_is_asked_for_the_search_period():
    source = TableSource("uk", {"A": [100] * 60})
    decide(GatePolicy(regions=("A",), duration=H, provider="uk", max_delay=2 * H),
           providers={"uk": source}, clock=lambda: NOW)
    assert source.asked == [("A", NOW, NOW + 3 * H)]
    source.asked.clear()
    decide(GatePolicy(regions=("A",), duration=2 * H, provider="uk"), providers={"uk": source}, clock=lambda: NOW)
    assert source.asked == [("A", NOW, NOW + 2 * H + DEFAULT_HORIZON)]
    assert not source.closed  # the caller's providers stay open


def test_now_is_the_clock_floored_to_the_minute_and_plan_mode_keeps_a_past_earliest_start():
    d = run({"A": [100, 50, 70]}, clock_at=NOW + timedelta(minutes=30, seconds=59, microseconds=1), max_delay=H)
    assert d.run_now.start == NOW + timedelta(minutes=30)
    assert d.decided_at == NOW + timedelta(minutes=30, seconds=59, microseconds=1)
    past = run({"A": [100, 50, 70]}, clock_at=NOW + 2 * H, earliest_start=NOW, max_delay=H)
    assert past.run_now.start == NOW and past.start_at == NOW + H  # a plan over the given period


def test_a_forecast_starting_within_a_slot_after_now_runs_now_at_its_first_slot():
    late = NOW + timedelta(minutes=30)
    d = run({"A": [100, 50]}, start=late, max_delay=2 * H)
    assert d.run_now.start == late and d.start_at == late + H and d.delay == H


def test_a_forecast_starting_a_whole_slot_after_now_is_insufficient_data():
    d = run({"A": [100, 50]}, start=NOW + H, max_delay=H)
    assert d.failure_policy_applied == "fail_open" and d.action == "run_now"
    attempt = d.attempts[0]
    assert attempt["error_kind"] == "insufficient_data" and "after the earliest start" in attempt["error"]


def test_a_forecast_too_short_for_the_job_is_insufficient_data():
    d = run({"A": [100, 50]}, duration=3 * H)
    assert d.attempts[0]["error_kind"] == "insufficient_data" and "end of the data" in d.attempts[0]["error"]


# --------------------------------------------------------------------------- providers failing


def test_fail_open_runs_now_at_home_and_records_every_failure():
    failures = {"A": ProviderUnavailableError("uk", "A", "503"), "B": RuntimeError("bad json")}
    d = run({"A": [1], "B": [1]}, failures=failures, max_delay=H, energy_kwh=1.0)
    assert d.should_run and d.action == "run_now" and d.failure_policy_applied == "fail_open"
    assert d.region == "A" and d.start_at == NOW and d.delay == timedelta(0)
    assert d.chosen is None and d.run_now is None and d.savings_percent is None and d.savings_g is None
    assert [(a["region"], a["ok"], a["error_kind"]) for a in d.attempts] == [("A", False, "unavailable"),
                                                                            ("B", False, "unexpected")]
    assert d.reason == ("no provider answered (uk (region 'A'): 503; uk (B): RuntimeError: bad json); "
                        "fail_open policy: running now")
    record = d.to_record()
    assert record.failure_policy_applied == "fail_open" and record.chosen_window is None


def test_fail_closed_refuses_with_the_record():
    failures = {"A": ProviderUnavailableError("uk", "A", "503")}
    with pytest.raises(GateError, match=r"no provider answered \(uk \(region 'A'\): 503\); fail_closed policy: not running") as caught:
        run({"A": [1]}, failures=failures, on_provider_failure="fail_closed")
    record = caught.value.record
    assert record.action == "refuse" and not record.should_run and record.failure_policy_applied == "fail_closed"
    assert record.region == "A" and record.delay_seconds == 0 and record.start_at == NOW.isoformat()


def test_fail_closed_is_not_applied_when_one_region_answered():
    failures = {"A": ProviderUnavailableError("uk", "A", "503")}
    d = run({"A": [1, 1], "B": [9, 9]}, failures=failures, on_provider_failure="fail_closed", max_delay=H)
    assert d.should_run and d.region == "B" and d.failure_policy_applied is None


def test_the_fallback_answers_when_the_primary_fails_and_says_so():
    fallback = TableSource("watttime", {"A": [100, 50]})
    failures = {"A": ProviderUnavailableError("uk", "A", "503")}
    d = run({"A": [1, 1], "B": [70, 60]}, failures=failures, fallback=fallback, max_delay=H)
    assert d.region == "A" and d.chosen.average == 50  # the fallback's data, not the failed primary's
    assert d.fallback_used and [o.fallback_used for o in d.outcomes] == [True, False]
    assert [(a["provider"], a["region"], a["ok"]) for a in d.attempts] == [
        ("uk", "A", False), ("watttime", "A", True), ("uk", "B", True)]
    assert fallback.asked == [("A", NOW, NOW + 2 * H)]
    assert d.to_record().fallback_used


def test_no_fallback_is_asked_when_the_primary_answers():
    fallback = TableSource("watttime", {"A": [1, 1]})
    d = run({"A": [100, 50]}, fallback=fallback, max_delay=H)
    assert fallback.asked == [] and not d.fallback_used and d.chosen.average == 50


def test_an_unknown_region_is_an_error_for_the_primary_and_an_outage_for_a_fallback():
    with pytest.raises(UnknownRegionError, match="does not serve 'Z'"):
        run({"A": [1]}, regions=("A", "Z"))
    fallback = TableSource("watttime", {})
    d = run({"A": [1, 1]}, failures={"A": ProviderUnavailableError("uk", "A", "503")}, fallback=fallback)
    assert [a["error_kind"] for a in d.attempts] == ["unavailable", "unknown_region"]
    assert d.failure_policy_applied == "fail_open"


def test_once_the_fetch_budget_is_spent_providers_are_not_asked(monkeypatch):
    monkeypatch.setattr(gate_module, "FETCH_BUDGET_S", -1.0)
    source = TableSource("uk", {"A": [1, 1]})
    d = decide(GatePolicy(regions=("A",), duration=H, provider="uk"), providers={"uk": source}, clock=lambda: NOW)
    assert source.asked == [] and d.failure_policy_applied == "fail_open"
    assert d.attempts[0]["error_kind"] == "unavailable" and "not asked" in d.attempts[0]["error"]


def test_within_the_fetch_budget_providers_are_asked(monkeypatch):
    monkeypatch.setattr(gate_module, "FETCH_BUDGET_S", 60.0)
    d = run({"A": [100, 50]}, max_delay=H)
    assert d.failure_policy_applied is None and d.attempts[0]["ok"]


# --------------------------------------------------------------------------- waiting


class SteppingClock:
    def __init__(self, now, early_by=0.0):
        self.now = now
        self.early_by = early_by
        self.slept: list[float] = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        woken = seconds - self.early_by if len(self.slept) == 1 else seconds
        self.now += timedelta(seconds=woken)


def test_wait_mode_sleeps_again_at_least_a_second_when_woken_just_short():
    clock = SteppingClock(NOW, early_by=0.5)
    policy = GatePolicy(regions=("A",), duration=H, provider="uk", max_delay=H, mode="wait")
    d = decide(policy, providers={"uk": TableSource("uk", {"A": [100, 50]})}, clock=clock, sleep=clock.sleep)
    assert clock.slept == [3600.0, 1.0]
    assert d.waited_seconds == 3600.5 and d.start_at == NOW + H and clock.now >= d.start_at


def test_wait_mode_with_the_window_now_does_not_sleep():
    clock = SteppingClock(NOW)
    policy = GatePolicy(regions=("A",), duration=H, provider="uk", max_delay=H, mode="wait")
    d = decide(policy, providers={"uk": TableSource("uk", {"A": [50, 100]})}, clock=clock, sleep=clock.sleep)
    assert clock.slept == [] and d.waited_seconds == 0.0 and d.action == "run_now"


def test_wait_mode_gives_up_when_the_clock_never_reaches_the_window():
    policy = GatePolicy(regions=("A",), duration=H, provider="uk", max_delay=H, mode="wait")
    sleeps = []
    with pytest.raises(GateError, match="never reached start_at 2023-06-14T10:00:00"):
        decide(policy, providers={"uk": TableSource("uk", {"A": [100, 50]})}, clock=lambda: NOW,
               sleep=sleeps.append)
    assert len(sleeps) == 10_000 and set(sleeps) == {3600.0}  # a bounded number of tries


def test_wait_mode_refusal_does_not_sleep():
    clock = SteppingClock(NOW)
    policy = GatePolicy(regions=("A",), duration=H, provider="uk", max_delay=H, mode="wait", threshold_gco2_per_kwh=10)
    d = decide(policy, providers={"uk": TableSource("uk", {"A": [100, 50]})}, clock=clock, sleep=clock.sleep)
    assert d.action == "refuse" and clock.slept == [] and d.waited_seconds == 0.0


def test_wait_mode_moves_a_past_earliest_start_to_now():
    d = run({"A": [900, 100, 200, 300]}, start=NOW, clock_at=NOW + H, earliest_start=NOW, max_delay=H,
            mode="wait", sleep=lambda s: None)
    assert d.run_now.start == NOW + H and d.start_at == NOW + H and d.action == "run_now"


# --------------------------------------------------------------------------- policy bounds


@pytest.mark.parametrize("kwargs", [
    {"duration": MIN_DURATION},
    {"duration": MAX_HORIZON},
    {"max_delay": MAX_HORIZON},
    {"max_delay": timedelta(0)},
    {"earliest_start": datetime(1970, 1, 1, tzinfo=UTC)},
    {"deadline": datetime(2100, 12, 31, tzinfo=UTC)},
    {"threshold_gco2_per_kwh": 0.0},
    {"threshold_percentile": 0},
    {"threshold_percentile": 100},
    {"min_savings_percent": 0},
    {"min_savings_percent": 100},
    {"energy_kwh": 0.0},
    {"energy_kwh": MAX_ENERGY_KWH},
])
def test_policy_bounds_are_inclusive(kwargs):
    policy = GatePolicy(**{"regions": ("A",), "duration": H, **kwargs})
    for key, value in kwargs.items():
        assert getattr(policy, key) == value


@pytest.mark.parametrize("kwargs, message", [
    ({"duration": MIN_DURATION - timedelta(seconds=1)}, "duration must be between 0:01:00 and 366 days"),
    ({"duration": MAX_HORIZON + timedelta(seconds=1)}, "duration must be between"),
    ({"duration": 3600}, "duration must be a positive timedelta"),
    ({"max_delay": MAX_HORIZON + timedelta(seconds=1)}, "max_delay must be at most 366 days"),
    ({"max_delay": 3600}, "max_delay must be a timedelta >= 0"),
    ({"earliest_start": datetime(1969, 12, 31, 23, tzinfo=UTC)}, "earliest_start must be between 1970 and 2100"),
    ({"deadline": datetime(2101, 1, 1, tzinfo=UTC)}, "deadline must be between 1970 and 2100"),
    ({"threshold_gco2_per_kwh": 100, "threshold_percentile": 50}, "not both"),
    ({"threshold_gco2_per_kwh": float("inf")}, "threshold_gco2_per_kwh must be a finite number >= 0"),
    ({"threshold_gco2_per_kwh": float("nan")}, "threshold_gco2_per_kwh must be a finite number >= 0"),
    ({"threshold_percentile": -0.1}, "threshold_percentile must be between 0 and 100"),
    ({"min_savings_percent": -0.1}, "min_savings_percent must be between 0 and 100"),
    ({"min_savings_percent": 100.1}, "min_savings_percent must be between 0 and 100"),
    ({"min_savings_percent": float("nan")}, "min_savings_percent must be between 0 and 100"),
    ({"energy_kwh": -0.1}, "energy_kwh must be a number from 0 to 1e\\+06 kWh"),
    ({"energy_kwh": MAX_ENERGY_KWH * 1.01}, "energy_kwh must be a number from 0"),
    ({"energy_kwh": float("nan")}, "energy_kwh must be a number from 0"),
    ({"regions": ("A", "B", "A")}, "regions must be unique; repeated: A"),
    ({"regions": ("A", " ")}, "regions must be a non-empty list of region names"),
    ({"regions": ()}, r"^regions must be a non-empty list of region names, got \[\]$"),
    ({"threshold_gco2_per_kwh": 1, "threshold_percentile": 1}, "^give threshold_gco2_per_kwh or threshold_percentile, not both$"),
])
def test_policy_values_out_of_bounds_are_refused(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        GatePolicy(**{"regions": ("A",), "duration": H, **kwargs})


def test_times_must_be_aware_datetimes():
    with pytest.raises(TypeError, match=r"^earliest_start must be a datetime, got str: '2024-01-01T00:00:00Z'$"):
        GatePolicy(regions=("A",), duration=H, earliest_start="2024-01-01T00:00:00Z")
    with pytest.raises(ValueError, match=r"^deadline must be timezone-aware \(UTC\), got the naive datetime 2024-01-01T00:00:00$"):
        GatePolicy(regions=("A",), duration=H, deadline=datetime(2024, 1, 1, tzinfo=NoOffset()))


class NoOffset(tzinfo):
    """A zone that does not know its offset: a datetime in it is naive by Python's rule."""

    def utcoffset(self, dt):
        return None

    def dst(self, dt):
        return None


def test_an_impossible_deadline_names_the_times():
    with pytest.raises(ValueError, match=r"^deadline 2023-06-14T09:30:00\+00:00 is before earliest_start "
                                         r"2023-06-14T09:00:00\+00:00 plus duration 1:00:00 \(= 2023-06-14T10:00:00\+00:00\)$"):
        GatePolicy(regions=("A",), duration=H, earliest_start=NOW, deadline=NOW + timedelta(minutes=30))


def test_fallbacks_may_come_as_any_iterable():
    policy = GatePolicy(regions=("A",), duration=H, provider="uk", fallback_providers=(p for p in ["watttime", "uk"]))
    assert policy.fallback_providers == ("watttime",)


def test_provider_options_are_parsed_once_into_their_one_shape():
    policy = GatePolicy(regions=("A",), duration=H, provider_options='{"embedded": {"replay_year": 2023.0}}')
    assert policy.provider_options == {"embedded": {"replay_year": 2023}}
    assert isinstance(policy.provider_options["embedded"]["replay_year"], int)


def test_policy_normalises_regions_and_fallbacks():
    policy = GatePolicy(regions="GB", duration=H, provider="uk", fallback_providers=["uk", "watttime", "embedded", "watttime"])
    assert policy.regions == ("GB",)
    assert policy.fallback_providers == ("watttime", "embedded")
    assert policy.to_dict()["fallback_providers"] == ["watttime", "embedded"]


def test_policy_to_dict_records_the_inputs():
    policy = GatePolicy(regions=("A", "B"), duration=90 * timedelta(minutes=1), earliest_start=NOW, deadline=NOW + 5 * H,
                        max_delay=2 * H, threshold_percentile=25, min_savings_percent=5, energy_kwh=1.5)
    assert policy.to_dict() == {
        "regions": ["A", "B"], "duration_seconds": 5400.0, "provider": "embedded", "fallback_providers": [],
        "earliest_start": NOW.isoformat(), "deadline": (NOW + 5 * H).isoformat(), "max_delay_seconds": 7200.0,
        "threshold_gco2_per_kwh": None, "threshold_percentile": 25, "min_savings_percent": 5,
        "on_provider_failure": "fail_open", "mode": "plan", "energy_kwh": 1.5, "provider_options": {},
    }


# --------------------------------------------------------------------------- the record


def test_the_record_holds_every_figure_in_its_schema_fields():
    clock = SteppingClock(NOW)
    fallback = TableSource("watttime", {"A": [200, 100]})
    policy = GatePolicy(regions=("A", "B"), duration=H, provider="uk", fallback_providers=("watttime",), max_delay=H,
                        mode="wait", energy_kwh=1.0)
    providers = {"uk": TableSource("uk", {"B": [300, 300]}, failures={"A": ProviderUnavailableError("uk", "A", "503")}),
                 "watttime": fallback}
    record = decide(policy, providers=providers, clock=clock, sleep=clock.sleep).to_record()
    assert record.extra == {}  # nothing written under a name the schema does not know
    assert all(r.extra == {} for r in record.regions)
    assert record.waited_seconds == 3600.0
    assert (record.chosen_window.start, record.chosen_window.average_gco2_per_kwh) == ("2023-06-14T10:00:00+00:00", 100.0)
    assert (record.run_now_window.start, record.run_now_window.average_gco2_per_kwh) == ("2023-06-14T09:00:00+00:00", 200.0)
    assert [(r.region, r.fallback_used, r.provider) for r in record.regions] == [("A", True, "watttime"), ("B", False, "uk")]
    assert record.units == {"intensity": "gCO2eq/kWh", "energy": "kWh", "emissions": "g CO2eq", "delay": "s"}
    assert record.to_dict()["units"] == record.units


def test_plan_mode_records_no_wait():
    d = run({"A": [200, 100]}, max_delay=H)
    assert d.action == "wait" and d.waited_seconds == 0.0 and d.to_record().waited_seconds == 0.0


def test_regions_are_named_as_the_provider_knows_them(clock):
    # the embedded data's zones are upper case; "gb" is GB, and the record says GB
    d = decide(GatePolicy(regions=("gb",), duration=H, earliest_start=NOW, max_delay=2 * H), clock=clock)
    assert d.region == "GB" and d.home_region == "GB"


def test_fail_open_starts_at_the_whole_minute():
    d = run({"A": [1]}, failures={"A": ProviderUnavailableError("uk", "A", "503")},
            clock_at=NOW + timedelta(minutes=3, seconds=59, microseconds=999_999))
    assert d.start_at == NOW + timedelta(minutes=3) and d.decided_at.microsecond == 999_999


# --------------------------------------------------------------------------- the provider chain


def chain(primary_failure, second_failure=None, **policy):
    """Region A through uk (failing with ``primary_failure``), watttime (failing with
    ``second_failure``, or serving nothing) and electricitymaps, which answers."""
    second = TableSource("watttime", {}, failures={"A": second_failure} if second_failure else {})
    third = TableSource("electricitymaps", {"A": [100, 50]})
    providers = {"uk": TableSource("uk", {"A": [1, 1]}, failures={"A": primary_failure} if primary_failure else {}),
                 "watttime": second, "electricitymaps": third}
    policy = GatePolicy(regions=("A",), duration=H, provider="uk", fallback_providers=("watttime", "electricitymaps"),
                        max_delay=H, **policy)
    return decide(policy, providers=providers, clock=lambda: NOW)


def test_each_failure_moves_on_to_the_next_provider():
    d = chain(RuntimeError("boom"), ProviderUnavailableError("watttime", "A", "503"))
    assert [(a["provider"], a["error_kind"]) for a in d.attempts] == [
        ("uk", "unexpected"), ("watttime", "unavailable"), ("electricitymaps", None)]
    assert d.chosen.average == 50 and d.outcomes[0].forecast.provider == "electricitymaps"


def test_an_unknown_region_at_a_fallback_moves_on_and_says_why():
    d = chain(ProviderUnavailableError("uk", "A", "503"))  # watttime serves no region
    assert [(a["provider"], a["error_kind"], a["error"]) for a in d.attempts] == [
        ("uk", "unavailable", "uk (region 'A'): 503"),
        ("watttime", "unknown_region", "watttime does not serve 'A'"),
        ("electricitymaps", None, None)]
    assert d.chosen.average == 50


def test_insufficient_data_moves_on_to_the_next_provider():
    source = TableSource("uk", {"A": [1]})  # an hour of data for a job that may start within the hour
    providers = {"uk": source, "watttime": TableSource("watttime", {"A": [100, 50]})}
    d = decide(GatePolicy(regions=("A",), duration=2 * H, provider="uk", fallback_providers=("watttime",), max_delay=H),
               providers=providers, clock=lambda: NOW)
    assert [a["error_kind"] for a in d.attempts] == ["insufficient_data", None]
    assert d.chosen.average == 75


def test_a_spent_budget_records_every_provider_as_not_asked(monkeypatch):
    monkeypatch.setattr(gate_module, "FETCH_BUDGET_S", -1.0)
    d = chain(None)
    assert [(a["provider"], a["error_kind"]) for a in d.attempts] == [
        ("uk", "unavailable"), ("watttime", "unavailable"), ("electricitymaps", "unavailable")]
    assert all("not asked, the gate's -1 s for providers was spent" in a["error"] for a in d.attempts)
