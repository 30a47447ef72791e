"""SciReport's gaps that issue 17's mutation run found: each test fails on the named mutant of
components/sci/sci.py and passes on the code as it is."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from greenkfp.components.sci import SciReport, embodied_share

HOUR = timedelta(hours=1)
FOUR_YEARS = timedelta(days=4 * 365)
NOON_UTC = "2024-06-01T12:00:00Z"


def report(**overrides) -> SciReport:
    kwargs = dict(
        energy_kwh=0.5, energy_method="measured", intensity_g_per_kwh=200.0,
        intensity_source={"provider": "embedded", "region": "GB"},
        total_embodied_g=1_000_000.0, time_reserved=HOUR, expected_lifespan=FOUR_YEARS,
        resources_reserved=1, total_resources=4, items=1000,
        software_boundary={"included": ["model server"], "excluded": ["client"]}, methodology="m",
    )
    kwargs.update(overrides)
    return SciReport.compute(**kwargs)


@pytest.fixture
def berlin(monkeypatch):
    """The process's local time zone set to Europe/Berlin (UTC+2 in June), restored afterwards."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    # the machine's zone really is Berlin now: a naive time read as local moves by two hours
    assert datetime(2024, 6, 1, 12).astimezone(timezone.utc).hour == 10
    yield
    monkeypatch.undo()
    time.tzset()


def source_time(when) -> str | None:
    return report(intensity_source={"provider": "embedded", "time": when}).to_dict()["I"]["source"]["time"]


@pytest.mark.usefixtures("berlin")
def test_a_naive_intensity_time_is_refused():
    # mutant: the naive-datetime check dropped; the time is then read in the machine's zone
    # (12:00 naive under Berlin would be recorded as 10:00Z)
    with pytest.raises(ValueError, match=r"intensity_source\['time'\] must be timezone-aware, got 2024-06-01T12:00:00"):
        source_time(datetime(2024, 6, 1, 12))


@pytest.mark.usefixtures("berlin")
def test_an_intensity_time_string_without_offset_is_refused():
    # mutant: the offset check dropped; "12:00" would become 10:00Z under Berlin time
    with pytest.raises(ValueError, match=r"intensity_source\['time'\] must carry a UTC offset, got '2024-06-01T12:00:00'"):
        source_time("2024-06-01T12:00:00")


@pytest.mark.usefixtures("berlin")
def test_intensity_times_with_an_offset_are_not_shifted_by_the_machine_zone():
    for when in ("2024-06-01T12:00:00+00:00", "2024-06-01T12:00:00Z", "2024-06-01T14:00:00+02:00",
                 datetime(2024, 6, 1, 12, tzinfo=timezone.utc),
                 datetime(2024, 6, 1, 14, tzinfo=ZoneInfo("Europe/Berlin"))):
        assert source_time(when) == NOON_UTC, when


def test_intensity_time_absent_is_recorded_as_none_with_a_note():
    r = report()
    assert r.intensity_source["time"] is None
    assert any("time was not given" in n for n in r.notes)
    with pytest.raises(ValueError, match="must be an ISO 8601 time, got 'noon'"):
        source_time("noon")
    with pytest.raises(ValueError, match="must be a datetime or ISO 8601 string, got 1717243200"):
        source_time(1717243200)


@pytest.mark.parametrize("uncertainty", [None, "", "   "])
def test_mixed_energy_needs_an_uncertainty(uncertainty):
    # mutant: the rule applied to "modeled" only (`energy_method == "modeled"`)
    with pytest.raises(ValueError, match="uncertainty must describe the error of mixed energy"):
        report(energy_method="mixed", uncertainty=uncertainty)
    assert report(energy_method="mixed", uncertainty="RAPL for CPU, modeled RAM: +-20 %").energy_method == "mixed"


def test_measured_energy_needs_no_uncertainty():
    assert report(energy_method="measured", uncertainty=None).uncertainty is None


def test_zero_time_reserved_is_accepted_with_no_embodied_share():
    # mutant: time_reserved checked strictly positive
    assert embodied_share(1_000_000, timedelta(0), FOUR_YEARS, 1, 1) == 0.0
    r = report(time_reserved=timedelta(0))
    assert r.embodied_g == 0.0
    assert r.embodied_terms["TiR_s"] == 0.0 and r.embodied_terms["time_share"] == 0.0
    assert r.sci == pytest.approx(0.5 * 200.0 / 1000)
    with pytest.raises(ValueError, match="time_reserved must be >= 0"):
        report(time_reserved=timedelta(seconds=-1))
    with pytest.raises(ValueError, match="expected_lifespan must be > 0"):
        report(expected_lifespan=timedelta(0))


def test_the_recorded_time_share_is_time_reserved_over_lifespan():
    # mutant: the share recorded inverted (EL / TiR)
    terms = report().embodied_terms
    assert terms["time_share"] == pytest.approx(3600 / (4 * 365 * 86400))
    assert terms["time_share"] == terms["TiR_s"] / terms["EL_s"]
    assert terms["resource_share"] == 0.25
    # the recorded terms reproduce M
    assert terms["TE_g"] * terms["time_share"] * terms["resource_share"] == pytest.approx(report().embodied_g)


@pytest.mark.parametrize("key", ["included", "excluded"])
def test_an_empty_boundary_list_is_refused(key):
    # mutant: the `not items` test dropped
    boundary = {"included": ["model server"], "excluded": ["client"], key: []}
    with pytest.raises(ValueError, match=rf"software_boundary\['{key}'\] must be a non-empty list of strings, got \[\]"):
        report(software_boundary=boundary)
