from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from greenkfp.components.carbon import CarbonSeries, InvalidSeriesError

from conftest import T0, hourly


def test_from_points_infers_granularity_and_keeps_utc_values():
    series = CarbonSeries.from_points([(T0 + timedelta(minutes=30 * i), 100 + i) for i in range(4)])
    assert series.granularity == timedelta(minutes=30)
    assert len(series) == 4
    assert series.start == T0
    assert series.end == T0 + timedelta(hours=2)
    assert [v for _, v in series] == [100.0, 101.0, 102.0, 103.0]
    assert all(moment.tzinfo is not None and moment.utcoffset() == timedelta(0) for moment, _ in series)


def test_non_utc_offsets_are_normalised_to_the_same_instant():
    plus_two = timezone(timedelta(hours=2))
    series = CarbonSeries.from_points([(datetime(2024, 1, 1, 2, tzinfo=plus_two), 5.0)], timedelta(hours=1))
    assert series.start == T0


def test_single_point_needs_a_granularity():
    with pytest.raises(InvalidSeriesError, match="granularity must be given"):
        CarbonSeries.from_points([(T0, 1.0)])
    assert CarbonSeries.from_points([(T0, 1.0)], timedelta(minutes=5)).end == T0 + timedelta(minutes=5)


def test_gap_names_the_first_bad_timestamp():
    points = [(T0, 1), (T0 + timedelta(hours=1), 2), (T0 + timedelta(hours=3), 3), (T0 + timedelta(hours=5), 4)]
    with pytest.raises(InvalidSeriesError, match=r"not contiguous at 2024-01-01T03:00:00Z \(gap"):
        CarbonSeries.from_points(points, timedelta(hours=1))


def test_overlap_and_unsorted_are_errors():
    overlap = [(T0, 1), (T0 + timedelta(minutes=30), 2), (T0 + timedelta(hours=1), 3)]
    with pytest.raises(InvalidSeriesError, match=r"at 2024-01-01T00:30:00Z \(overlap"):
        CarbonSeries.from_points(overlap, timedelta(hours=1))
    unsorted = [(T0 + timedelta(hours=1), 1), (T0, 2)]
    with pytest.raises(InvalidSeriesError, match="not sorted"):
        CarbonSeries.from_points(unsorted, timedelta(hours=1))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
def test_values_must_be_finite_and_non_negative(bad):
    with pytest.raises(InvalidSeriesError, match="2024-01-01T01:00:00Z"):
        hourly([10.0, bad, 3.0])


def test_naive_datetime_is_rejected_with_its_position():
    with pytest.raises(ValueError, match=r"points\[1\] start must be timezone-aware"):
        CarbonSeries.from_points([(T0, 1.0), (datetime(2024, 1, 1, 1), 2.0)])


def test_between_keeps_overlapping_slots_and_value_at_reads_a_slot():
    series = hourly([10, 20, 30, 40])
    part = series.between(T0 + timedelta(minutes=90), T0 + timedelta(hours=3))
    assert [v for _, v in part] == [20.0, 30.0]
    assert series.value_at(T0 + timedelta(minutes=179)) == 30.0
    with pytest.raises(InvalidSeriesError):
        series.value_at(T0 + timedelta(hours=4))


def test_arrays_are_read_only():
    series = hourly([1, 2])
    with pytest.raises(ValueError):
        series.values[0] = 5
    assert isinstance(series.starts, np.ndarray)
