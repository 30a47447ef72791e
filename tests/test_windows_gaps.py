"""The window search's gaps that issue 17's mutation run found: each test fails on the named
mutant of components/carbon/windows.py and passes on the code as it is."""

from datetime import timedelta

import pytest

from datetime import datetime

import numpy as np

from greenkfp.components.carbon import WindowSearchError, best_window, rolling_average
from greenkfp.components.carbon.windows import TIE_RTOL, Window, WindowScores, cumulative_intensity

from conftest import T0, hourly

H = timedelta(hours=1)


def test_run_now_window_at_zero_intensity_reports_no_saving():
    # a zone on the direct signal can sit at 0 g/kWh: the saving against a zero run-now window is
    # 0 %, not a ZeroDivisionError (mutant: the `run_now.average == 0` guard dropped)
    choice = best_window(hourly([0, 0, 0, 5]), 2 * H)
    assert choice.run_now.average == 0.0 and choice.best.average == 0.0
    assert choice.best.start == T0
    assert choice.savings_percent == 0.0
    assert choice.to_dict()["savings_percent"] == 0.0


def test_a_single_window_exactly_filling_the_data_is_the_one_candidate():
    # a 3 h job over 3 hourly points: the one window ends exactly at the end of the data
    # (mutant: `s0 + w > limit` made `>=`, which rejects it)
    choice = best_window(hourly([100, 200, 300]), 3 * H)
    assert choice.candidates == 1
    assert choice.best.start == T0 and choice.best.end == T0 + 3 * H
    assert choice.best.average == pytest.approx(200.0)
    assert choice.run_now == choice.best
    # the same with a deadline exactly at the window's end
    assert best_window(hourly([100, 200, 300, 400]), 3 * H, deadline=T0 + 3 * H).candidates == 1


def test_round_off_ties_go_to_the_earliest_start():
    # Period-2 series, 2 h windows: every window's true average is (2.9 + 131.2) / 2 = 67.05, but
    # the running integral gives the later windows 67.04999999999998: a round-off tie, not a
    # bit-identical one (mutant: TIE_RTOL = 0 picks the later window)
    series = hourly([2.9, 131.2] * 4)
    scores = rolling_average(series, 2 * H)
    averages = [w.average for w in scores]
    assert averages[0] != min(averages)  # the tie really is round-off: the first is not the lowest float
    assert max(averages) - min(averages) < 1e-12 * max(averages)
    choice = best_window(series, 2 * H)
    assert choice.best.start == T0
    assert choice.delay == timedelta(0)


def test_a_real_difference_above_round_off_is_not_a_tie():
    # the tolerance is round-off only: 1e-7 relative lower later is a better window
    series = hourly([100.0, 100.0, 100.0 * (1 - 1e-7), 100.0])
    assert best_window(series, H).best.start == T0 + 2 * H


@pytest.mark.parametrize("bad", [3600, 2.0, "2h", None])
def test_duration_must_be_a_timedelta(bad):
    # mutant: the isinstance check dropped (an AttributeError on .total_seconds() instead)
    with pytest.raises(TypeError, match=rf"^window must be a timedelta, got {type(bad).__name__}: {bad!r}$"):
        rolling_average(hourly([1, 2, 3]), bad)
    with pytest.raises(TypeError, match="window must be a timedelta"):
        best_window(hourly([1, 2, 3]), bad)


def test_window_rounds_to_whole_seconds():
    # 1.4 s rounds to 1 s: one window per start up to the end of the data
    scores = rolling_average(hourly([10, 20]), timedelta(seconds=1.4))
    assert scores.duration == timedelta(seconds=1)
    assert len(scores) == 2
    with pytest.raises(WindowSearchError, match="at least one second"):
        rolling_average(hourly([10, 20]), timedelta(seconds=0.999))


def test_a_one_second_window_is_the_shortest():
    scores = rolling_average(hourly([10, 20]), timedelta(seconds=1))
    assert scores.duration == timedelta(seconds=1) and len(scores) == 2
    assert [w.average for w in scores] == [10.0, 20.0]
    assert scores[1].end == T0 + H + timedelta(seconds=1)


def scores_of(averages):
    return WindowScores(int(T0.timestamp()) + 3600 * np.arange(len(averages), dtype=np.int64),
                        np.array(averages, dtype=float), H)


def test_the_tie_tolerance_is_relative_with_an_absolute_floor():
    assert TIE_RTOL == 1e-9
    # near zero the tolerance is 1e-9 gCO2eq/kWh absolute
    assert scores_of([0.9e-9, 0.0]).best_index() == 0
    assert scores_of([1.5e-9, 0.0]).best_index() == 1
    assert scores_of([0.5 + 1.5e-9, 0.5]).best_index() == 1
    # at 1,000 gCO2eq/kWh it is 1e-6 gCO2eq/kWh
    assert scores_of([1000 + 0.9e-6, 1000.0]).best_index() == 0
    assert scores_of([1000 + 1.1e-6, 1000.0]).best_index() == 1
    # a difference of exactly the tolerance is still a tie
    assert scores_of([1.0 + 1e-9, 1.0]).best_index() == 0
    # the earliest of the tied windows, not the first lowest
    assert scores_of([5.0, 1.0 + 1e-12, 3.0, 1.0]).best_index() == 1


def test_window_records_name_their_fields():
    window = Window(T0, T0 + H, 42.5)
    assert window.to_dict() == {"start": "2024-01-01T00:00:00+00:00", "end": "2024-01-01T01:00:00+00:00",
                                "average_gco2_per_kwh": 42.5}
    choice = best_window(hourly([300, 100, 200]), H)
    assert choice.to_dict() == {
        "best": {"start": "2024-01-01T01:00:00+00:00", "end": "2024-01-01T02:00:00+00:00", "average_gco2_per_kwh": 100.0},
        "run_now": {"start": "2024-01-01T00:00:00+00:00", "end": "2024-01-01T01:00:00+00:00",
                    "average_gco2_per_kwh": 300.0},
        "candidates": 3,
        "delay_seconds": 3600.0,
        "savings_percent": pytest.approx(100 * 200 / 300),
    }


def test_naive_start_and_end_are_refused_by_name():
    naive = datetime(2024, 1, 1)
    with pytest.raises(ValueError, match="^start must be timezone-aware"):
        rolling_average(hourly([1, 2, 3]), H, start=naive)
    with pytest.raises(ValueError, match="^end must be timezone-aware"):
        rolling_average(hourly([1, 2, 3]), H, end=naive)


def test_no_window_error_says_which_bound_was_hit():
    series = hourly([1, 2, 3])
    # the deadline exactly at the end of the data: the data is the bound
    with pytest.raises(WindowSearchError, match=r"ends by 2024-01-01T03:00:00\+00:00 \(the end of the data\)$"):
        best_window(series, 4 * H, deadline=T0 + 3 * H)
    with pytest.raises(WindowSearchError, match=r"ends by 2024-01-01T03:00:00\+00:00 \(the end of the data\)$"):
        best_window(series, 4 * H, deadline=T0 + 5 * H)
    with pytest.raises(WindowSearchError, match=r"^no window of 2:00:00 starting at or after 2024-01-01T00:00:00\+00:00 "
                                                r"ends by 2024-01-01T01:00:00\+00:00 \(the deadline\)$"):
        best_window(series, 2 * H, deadline=T0 + H)


def test_cumulative_intensity_takes_whole_epoch_seconds_as_floats_too():
    series = hourly([100, 200])
    t0 = int(T0.timestamp())
    ints = cumulative_intensity(series, np.array([t0, t0 + 1800, t0 + 5400], dtype=np.int64))
    assert list(ints) == [0.0, 100 * 1800.0, 100 * 3600.0 + 200 * 1800.0]
    assert list(cumulative_intensity(series, [float(t0), t0 + 1800.0, t0 + 5400.0])) == list(ints)
