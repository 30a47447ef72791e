"""The embedded provider: real Electricity Maps data packaged with greenkfp."""

import csv
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from greenkfp.components.carbon import EmbeddedProvider, UnknownRegionError, embedded_zones

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "carbon_intensity"
UTC = timezone.utc


def test_sixteen_zones_four_years_hourly():
    provider = EmbeddedProvider()
    assert len(embedded_zones()) == 16 and "GB" in embedded_zones()
    assert provider.data.years == (2021, 2022, 2023, 2024)
    assert provider.data.hours == 35064


def test_known_values_from_the_source_csv():
    start = datetime(2021, 1, 1, tzinfo=UTC)
    lifecycle = EmbeddedProvider().forecast("GB", start, start + timedelta(hours=2))
    direct = EmbeddedProvider(signal="direct").forecast("gb", start, start + timedelta(hours=2))
    assert [v for _, v in lifecycle.series] == [233.76, 229.73]
    assert [v for _, v in direct.series] == [156.03, 152.52]
    assert lifecycle.data_kind == "historical" and lifecycle.region == "GB"


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared source data is not beside this checkout")
@pytest.mark.parametrize("zone", ["DE-LU", "US-CAL-CISO", "ZA"])
def test_compaction_is_exact_against_the_source(zone):
    path = SHARED / zone / f"{zone}_2023_hourly.csv"
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    start = datetime(2023, 1, 1, tzinfo=UTC)
    answer = EmbeddedProvider().forecast(zone, start, start + timedelta(hours=len(rows)))
    expected = np.array([float(r["Carbon Intensity gCO\u2082eq/kWh (LCA)"]) for r in rows])
    np.testing.assert_array_equal(answer.series.values, expected)


def test_period_outside_the_data_is_replayed_and_labelled():
    now = datetime(2026, 11, 26, 15, 7, tzinfo=UTC)  # a Thursday
    answer = EmbeddedProvider().forecast("GB", now, now + timedelta(hours=12))
    assert answer.data_kind == "replayed_historical"
    assert "not a forecast" in answer.note
    assert answer.series.start == datetime(2026, 11, 26, 15, tzinfo=UTC)
    assert answer.series.end >= now + timedelta(hours=12)
    # the source hours are the same hour of the week in 2024
    source = datetime.fromisoformat(answer.note.split("recorded hours from ")[1].split(" ")[0])
    assert source.year == 2024 and source.weekday() == now.weekday() and source.hour == 15
    recorded = EmbeddedProvider().forecast("GB", source, source + timedelta(hours=len(answer.series)))
    np.testing.assert_array_equal(recorded.series.values, answer.series.values)


def test_replay_year_is_explicit_and_validated():
    start = datetime(2022, 3, 2, 6, tzinfo=UTC)
    answer = EmbeddedProvider(replay_year=2023).forecast("SG", start, start + timedelta(hours=3))
    assert answer.data_kind == "replayed_historical" and "in 2023" in answer.note
    with pytest.raises(ValueError, match="replay_year must be one of"):
        EmbeddedProvider(replay_year=2019)


def test_replay_near_the_end_of_the_year_stays_inside_the_data():
    start = datetime(2026, 12, 31, 20, tzinfo=UTC)
    answer = EmbeddedProvider().forecast("KR", start, start + timedelta(hours=48))
    assert len(answer.series) == 48


def test_unknown_region_lists_the_supported_zones():
    with pytest.raises(UnknownRegionError, match="supported zones: AU-NSW, AU-VIC, .*ZA"):
        EmbeddedProvider().forecast("Atlantis", datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 1, 2, tzinfo=UTC))


def test_current_reads_the_slot_of_now(clock):
    reading = EmbeddedProvider(clock=clock).current("GB")
    assert reading.at == clock.now.replace(minute=0)
    assert reading.data_kind == "historical"
    assert reading.gco2_per_kwh == EmbeddedProvider().forecast("GB", clock.now, clock.now + timedelta(hours=1)).series.values[0]


def test_fully_estimated_zones_say_so():
    start = datetime(2023, 1, 1, tzinfo=UTC)
    assert "entirely estimated" in EmbeddedProvider().forecast("IN-WE", start, start + timedelta(hours=1)).note
    assert "estimated" not in EmbeddedProvider().forecast("GB", start, start + timedelta(hours=1)).note


def test_a_replayed_now_does_not_depend_on_how_far_the_deadline_is():
    """The hostile case: the same hour replayed as 231.9, 166.6 or 126.0 gCO2eq/kWh depending on
    the deadline. Now the mapping depends on the start alone; hours past the data's end wrap back
    52 weeks (same weekday and hour), and the note says so."""
    from datetime import datetime, timedelta, timezone

    provider = EmbeddedProvider()
    start = datetime(2026, 11, 30, 19, tzinfo=timezone.utc)
    firsts = set()
    for days in (0.5, 31, 183):
        answer = provider.forecast("GB", start, start + timedelta(days=days))
        firsts.add(float(answer.series.values[0]))
        assert len(answer.series) == int(days * 24)
    assert len(firsts) == 1
    long = provider.forecast("GB", start, start + timedelta(days=183))
    assert "read 52 weeks earlier" in long.note
