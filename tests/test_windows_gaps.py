"""The window search's gaps that issue 17's mutation run found: each test fails on the named
mutant of components/carbon/windows.py and passes on the code as it is."""

from datetime import timedelta

import pytest

from greenkfp.components.carbon import WindowSearchError, best_window, rolling_average

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
    with pytest.raises(TypeError, match=r"window must be a timedelta, got \w+"):
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
