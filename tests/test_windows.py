"""Window search against hand-computed cases (Carbon Aware SDK semantics)."""

from datetime import timedelta

import numpy as np
import pytest

from greenkfp.components.carbon import WindowSearchError, best_window, rolling_average

from conftest import T0, hourly

H = timedelta(hours=1)


def test_rolling_average_two_hour_windows_step_by_granularity():
    scores = rolling_average(hourly([100, 200, 50, 50, 300]), 2 * H)
    assert [w.start for w in scores] == [T0 + i * H for i in range(4)]
    assert [w.average for w in scores] == [150.0, 125.0, 50.0, 175.0]
    assert all(w.end - w.start == 2 * H for w in scores)


def test_unaligned_window_is_time_weighted():
    # Start at 00:30 for 90 minutes: 30 min of 100, 60 min of 200 -> (50 + 200) / 1.5
    scores = rolling_average(hourly([100, 200, 400]), timedelta(minutes=90), start=T0 + timedelta(minutes=30))
    assert scores[0].average == pytest.approx((100 * 0.5 + 200 * 1.0) / 1.5)
    # next candidate one granularity later: 01:30-03:00 -> 30 min of 200, 60 min of 400
    assert scores[1].average == pytest.approx((200 * 0.5 + 400 * 1.0) / 1.5)
    assert len(scores) == 2


def test_window_shorter_than_granularity():
    series = hourly([100, 200, 400])
    scores = rolling_average(series, timedelta(minutes=20), start=T0 + timedelta(minutes=50))
    # 00:50-01:10 straddles two slots: 10 min of 100, 10 min of 200
    assert scores[0].average == pytest.approx(150.0)
    assert scores[1].average == pytest.approx(300.0)
    assert len(scores) == 2  # 02:50-03:10 would end past the data


def test_best_window_and_run_now_counterfactual():
    choice = best_window(hourly([300, 250, 80, 60, 90, 400]), 2 * H)
    assert choice.best.start == T0 + 2 * H
    assert choice.best.average == pytest.approx(70.0)
    assert choice.run_now.start == T0 and choice.run_now.average == pytest.approx(275.0)
    assert choice.delay == 2 * H
    assert choice.savings_percent == pytest.approx(100 * (275 - 70) / 275)
    assert choice.candidates == 5


def test_ties_go_to_the_earliest_start():
    choice = best_window(hourly([5, 1, 1, 9, 1, 1]), 2 * H)
    assert choice.best.start == T0 + H
    flat = best_window(hourly([7.3] * 48), timedelta(hours=3, minutes=10))
    assert flat.best.start == T0  # float round-off must not break the tie


def test_deadline_bounds_the_candidates():
    series = hourly([300, 250, 80, 60, 90, 400])
    choice = best_window(series, 2 * H, deadline=T0 + 3 * H)
    assert choice.candidates == 2  # 00-02 and 01-03; 02-04 ends past the deadline
    assert choice.best.start == T0 + H
    assert choice.best.end <= T0 + 3 * H


def test_earliest_start_skips_earlier_windows():
    choice = best_window(hourly([1, 500, 500, 500]), H, earliest_start=T0 + H)
    assert choice.run_now.start == T0 + H
    assert choice.best.average == 500.0


def test_impossible_deadline_and_data_bounds_are_errors():
    series = hourly([1, 2, 3])
    with pytest.raises(WindowSearchError, match="deadline"):
        best_window(series, 2 * H, deadline=T0 + H)
    with pytest.raises(WindowSearchError, match="end of the data"):
        best_window(series, 4 * H)
    with pytest.raises(WindowSearchError, match="before the first data point"):
        best_window(series, H, earliest_start=T0 - H)
    for tiny in (timedelta(0), timedelta(seconds=0.36)):  # 0.0001 h would round to an empty window
        with pytest.raises(WindowSearchError, match="window must be at least one second"):
            rolling_average(series, tiny)


def test_vectorised_search_matches_a_direct_integral():
    rng = np.random.default_rng(7)
    values = rng.uniform(20, 600, 300)
    series = hourly(values)
    duration = timedelta(hours=5, minutes=17)
    start = T0 + timedelta(minutes=23)
    scores = rolling_average(series, duration, start=start)
    for i in (0, 17, len(scores) - 1):
        w = scores[i]
        # brute force: integrate minute by minute
        minutes = int(duration.total_seconds() // 60)
        first = int((w.start - T0).total_seconds() // 60)
        per_minute = np.repeat(values, 60)[first : first + minutes]
        assert w.average == pytest.approx(per_minute.mean(), rel=1e-9)
