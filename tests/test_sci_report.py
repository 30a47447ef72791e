"""The SCI record in full (issue 17): every field of ``SciReport.to_dict`` and ``to_markdown``,
the lifecycle cases, the functional unit, and the input checks' messages (each names the argument
and the bad value, as the module promises).

Expected numbers are written as the specification's formulas over the inputs, in the order the
module computes them, so that the record's figures are compared exactly.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo

import pytest

from greenkfp.components.sci import (
    FunctionalUnit,
    SciReport,
    embodied_share,
    operational_emissions,
    sci_score,
)
from greenkfp.components.sci.sci import UNITS, duration_seconds

HOUR = timedelta(hours=1)
FOUR_YEARS = timedelta(days=4 * 365)
CREATED = datetime(2024, 6, 1, 12, tzinfo=timezone.utc)
BOUNDARY = {"included": ["model server"], "excluded": ["client"]}


def minimal(**overrides) -> SciReport:
    kwargs = dict(energy_kwh=0.25, energy_method="measured", intensity_g_per_kwh=400.0,
                  intensity_source={"provider": "embedded"}, total_embodied_g=2_000_000.0, time_reserved=HOUR,
                  expected_lifespan=FOUR_YEARS, resources_reserved=2, total_resources=8, items=500,
                  software_boundary=BOUNDARY, methodology="measured by RAPL", created_at=CREATED)
    kwargs.update(overrides)
    return SciReport.compute(**kwargs)


def full() -> SciReport:
    return SciReport.compute(
        energy_kwh=0.5, energy_method="mixed", uncertainty="CPU by RAPL; RAM modeled, +-20 %",
        intensity_g_per_kwh=200.0,
        intensity_source={"provider": "uk", "region": "GB", "data_kind": "forecast", "signal": "average",
                          "time": "2024-06-01T13:00:00+01:00", "fetched": datetime(2024, 6, 1, 12, 5, tzinfo=timezone.utc)},
        total_embodied_g=1_000_000.0, time_reserved=HOUR, expected_lifespan=FOUR_YEARS,
        resources_reserved=1, total_resources=4, items=1_234_567, functional_unit=FunctionalUnit("inference", 1000),
        software_boundary={"included": ("model server", "ONNX runtime"), "excluded": ["client", "network"]},
        methodology="RAPL and the Teads curve", energy_detail="RAPL package + modeled RAM",
        energy_parts=[{"part": "cpu", "kwh": 0.4, "method": "measured"}], hardware_profile={"name": "m5.xlarge"},
        benchmark={"p50_ms": 1.2}, training_emissions_g=5000.0, expected_lifetime_items=1e6, notes=["first note"],
        pue=1.2, subject="digits-int8", created_at=CREATED,
    )


def test_the_full_record():
    m = 1_000_000.0 * (3600.0 / 126_144_000.0) * (1.0 / 4.0)
    o = 0.5 * 200.0
    per_item = (o + m) / 1_234_567
    assert full().to_dict() == {
        "schema": "greenkfp.sci_report/v1",
        "subject": "digits-int8",
        "created_at": "2024-06-01T12:00:00Z",
        "sci": {"value": (o + m) / 1234.567, "unit": "gCO2eq per 1,000 inferences", "per_item_g": per_item,
                "formula": "SCI = (E x I + M) / R",
                "method": "derived from E (mixed), I, M (modeled) and R (counted)"},
        "R": {"count": 1234.567, "unit": "per 1,000 inferences", "items": 1234567.0,
              "functional_unit": {"name": "inference", "per": 1000, "plural": "inferences",
                                  "label": "per 1,000 inferences"},
              "conversion": "R = 1,234,567 inferences / 1,000 = 1234.57 functional units", "method": "counted"},
        "E": {"kwh": 0.5, "method": "mixed", "detail": "RAPL package + modeled RAM",
              "parts": [{"part": "cpu", "kwh": 0.4, "method": "measured"}], "pue": 1.2,
              "per_item_kwh": 0.5 / 1_234_567},
        "I": {"g_per_kwh": 200.0,
              "source": {"provider": "uk", "region": "GB", "data_kind": "forecast", "signal": "average",
                         "time": "2024-06-01T12:00:00Z", "fetched": "2024-06-01T12:05:00Z"},
              "method": "as given by the source (see source.data_kind)"},
        "O": {"g": o, "formula": "O = E x I"},
        "M": {"g": m, "formula": "M = TE x (TiR / EL) x (RR / ToR)",
              "method": "modeled: TE is an estimate from the hardware profile",
              "TE_g": 1_000_000.0, "TiR_s": 3600.0, "EL_s": 126_144_000.0, "RR": 1.0, "ToR": 4.0,
              "time_share": 3600.0 / 126_144_000.0, "resource_share": 0.25},
        "C": {"g": o + m, "formula": "C = O + M, over the measured period"},
        "software_boundary": {"included": ["model server", "ONNX runtime"], "excluded": ["client", "network"]},
        "methodology": "RAPL and the Teads curve",
        "hardware_profile": {"name": "m5.xlarge"},
        "uncertainty": "CPU by RAPL; RAM modeled, +-20 %",
        "benchmark": {"p50_ms": 1.2},
        "lifecycle": {
            "training_emissions_g": 5000.0, "expected_lifetime_items": 1e6, "item": "inference",
            "per_item_g": per_item, "inference_emissions_g": 1e6 * per_item, "total_g": 5000.0 + 1e6 * per_item,
            "note": "reported apart from the SCI score: training is a one-off cost, not a per-inference rate, "
                    "and is never folded into the score",
            "formula": "total = training emissions + expected lifetime items x per-item carbon (E x I + M per item)",
        },
        "notes": ["first note"],
        "units": {"sci": "gCO2eq per functional unit", "energy": "kWh", "intensity": "gCO2eq/kWh",
                  "emissions": "gCO2eq", "embodied_total": "gCO2eq (TE)", "duration": "s", "power": "W",
                  "time": "ISO 8601, UTC"},
    }


def test_the_minimal_record_and_its_defaults():
    r = minimal()
    record = r.to_dict()
    m = 2_000_000.0 * (3600.0 / 126_144_000.0) * (2.0 / 8.0)
    assert record["subject"] is None
    assert record["sci"]["value"] == (0.25 * 400.0 + m) / 500.0 and record["sci"]["unit"] == "gCO2eq per inference"
    assert record["R"]["conversion"] == "R = 500 inferences / 1 = 500 functional units"
    assert record["E"] == {"kwh": 0.25, "method": "measured", "detail": "", "parts": [], "pue": 1.0,
                           "per_item_kwh": 0.25 / 500}
    assert record["I"]["source"] == {"provider": "embedded", "time": None, "region": None, "data_kind": None,
                                     "signal": None}
    assert record["hardware_profile"] is None and record["benchmark"] is None and record["lifecycle"] is None
    assert record["uncertainty"] is None
    assert record["notes"] == ["the intensity's time was not given: the score cannot be tied to a time of use"]
    assert record["units"] == UNITS and record["units"] is not UNITS
    assert r.pue == 1.0 and r.functional_unit == FunctionalUnit("inference", 1)


def test_created_at_defaults_to_now_in_utc():
    before = datetime.now(timezone.utc)
    r = minimal(created_at=None)
    assert before <= r.created_at <= datetime.now(timezone.utc)
    assert r.to_dict()["created_at"].endswith("Z")


def test_the_notes_keep_the_callers_first_then_the_sources():
    assert minimal(notes=("a", "b")).notes == ("a", "b", "the intensity's time was not given: the score cannot be "
                                                         "tied to a time of use")


def test_the_record_copies_its_inputs():
    parts = [{"part": "cpu", "kwh": 0.1}]
    profile = {"name": "x"}
    r = minimal(energy_parts=parts, hardware_profile=profile, benchmark={"n": 1})
    parts[0]["kwh"] = 9.0
    profile["name"] = "y"
    assert r.energy_parts == ({"part": "cpu", "kwh": 0.1},) and r.hardware_profile == {"name": "x"}
    record = r.to_dict()
    record["E"]["parts"][0]["kwh"] = 7.0
    record["hardware_profile"]["name"] = "z"
    assert r.to_dict()["E"]["parts"] == [{"part": "cpu", "kwh": 0.1}] and r.to_dict()["hardware_profile"] == {"name": "x"}


def test_the_markdown_summary_in_full():
    assert full().to_markdown() == """# SCI: digits-int8

| | |
|---|---|
| SCI | 0.0867792 gCO2eq per 1,000 inferences |
| E (energy) | 0.5 kWh, mixed |
| I (grid intensity) | 200 gCO2eq/kWh from uk (GB, forecast, 2024-06-01T12:00:00Z) |
| M (embodied share) | 7.1347 gCO2eq |
| R (functional units) | 1234.57 (1,234,567 inferences) |
| lifecycle total (apart from SCI) | 5086.78 gCO2eq |

**Included:** model server; ONNX runtime

**Excluded:** client; network

**Uncertainty:** CPU by RAPL; RAM modeled, +-20 %
"""


def test_the_markdown_summary_minimal():
    assert minimal(software_boundary={"included": ["a", "b"], "excluded": ["c"]}).to_markdown() == """# SCI

| | |
|---|---|
| SCI | 0.228539 gCO2eq per inference |
| E (energy) | 0.25 kWh, measured |
| I (grid intensity) | 400 gCO2eq/kWh from embedded |
| M (embodied share) | 14.2694 gCO2eq |
| R (functional units) | 500 (500 inferences) |

**Included:** a; b

**Excluded:** c
"""


def test_the_markdown_keeps_the_table_intact_and_names_only_the_given_source_fields():
    text = minimal(intensity_source={"provider": "a|b", "data_kind": "yearly average"},
                   training_emissions_g=10.0).to_markdown()
    assert "| I (grid intensity) | 400 gCO2eq/kWh from a/b (yearly average) |" in text
    assert "lifecycle total" not in text  # no expected volume: no total to show


# --------------------------------------------------------------------------- lifecycle


def test_lifecycle_with_training_only_has_no_total():
    lifecycle = minimal(training_emissions_g=1500.0).lifecycle
    per_item = (0.25 * 400.0 + 2_000_000.0 * (3600.0 / 126_144_000.0) * 0.25) / 500
    assert lifecycle == {
        "training_emissions_g": 1500.0, "expected_lifetime_items": None, "item": "inference", "per_item_g": per_item,
        "inference_emissions_g": None, "total_g": None,
        "note": "reported apart from the SCI score: training is a one-off cost, not a per-inference rate, and is "
                "never folded into the score; no expected lifetime volume was given, so no lifecycle total is computed",
    }


def test_lifecycle_with_expected_volume_only_totals_inference():
    lifecycle = minimal(expected_lifetime_items=2000, functional_unit=FunctionalUnit("request", 10)).lifecycle
    per_item = (0.25 * 400.0 + 2_000_000.0 * (3600.0 / 126_144_000.0) * 0.25) / 500
    assert lifecycle == {
        "training_emissions_g": None, "expected_lifetime_items": 2000.0, "item": "request", "per_item_g": per_item,
        "inference_emissions_g": 2000 * per_item, "total_g": 2000 * per_item,
        "note": "reported apart from the SCI score: training is a one-off cost, not a per-request rate, and is "
                "never folded into the score; no training emissions were given, so the total holds inference only",
        "formula": "total = training emissions + expected lifetime items x per-item carbon (E x I + M per item)",
    }


def test_lifecycle_zero_training_is_given_not_missing():
    lifecycle = minimal(training_emissions_g=0, expected_lifetime_items=10).lifecycle
    assert lifecycle["training_emissions_g"] == 0.0 and "no training emissions were given" not in lifecycle["note"]
    assert lifecycle["total_g"] == lifecycle["inference_emissions_g"]


@pytest.mark.parametrize("kwargs, message", [
    ({"training_emissions_g": -1.0}, "training_emissions_g must be >= 0, got -1.0"),
    ({"expected_lifetime_items": float("nan")}, "expected_lifetime_items must be a finite number, got nan"),
])
def test_lifecycle_inputs_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        minimal(**kwargs)


# --------------------------------------------------------------------------- the intensity's source


class NoOffset(tzinfo):
    """A time zone that does not know its offset: such a datetime is naive by Python's rule."""

    def utcoffset(self, dt):
        return None

    def dst(self, dt):
        return None


def test_a_datetime_whose_zone_has_no_offset_is_naive_and_refused():
    when = datetime(2024, 6, 1, 12, tzinfo=NoOffset())
    with pytest.raises(ValueError, match=r"^intensity_source\['time'\] must be timezone-aware, got 2024-06-01T12:00:00$"):
        minimal(intensity_source={"provider": "x", "time": when})


def test_source_fields_other_than_time_are_kept_and_aware_datetimes_written_in_utc():
    naive = datetime(2024, 6, 1, 12)
    source = minimal(intensity_source={"provider": "x", "fetched": datetime(2024, 6, 1, 14, tzinfo=timezone(timedelta(hours=2))),
                                       "raw": naive, "region": "GB", 7: "seven"}).intensity_source
    assert source == {"provider": "x", "fetched": "2024-06-01T12:00:00Z", "raw": naive, "region": "GB", "7": "seven",
                      "time": None, "data_kind": None, "signal": None}


def test_a_lowercase_z_is_not_an_iso_offset():
    with pytest.raises(ValueError, match=r"^intensity_source\['time'\] must be an ISO 8601 time, got '2024-06-01T12:00:00z'$"):
        minimal(intensity_source={"provider": "x", "time": "2024-06-01T12:00:00z"})
    assert minimal(intensity_source={"provider": "x", "time": "2024-06-01T12:00:00Z"}).intensity_source["time"] \
        == "2024-06-01T12:00:00Z"


@pytest.mark.parametrize("source, message", [
    (["provider", "x"], r"intensity_source must be a dict, got list: \['provider', 'x'\]"),
    ({"provider": "  "}, r"intensity_source\['provider'\] must be a non-empty string, got '  '"),
    ({"provider": 5}, r"intensity_source\['provider'\] must be a non-empty string, got 5"),
    ({"provider": "x", "time": 5}, r"intensity_source\['time'\] must be a datetime or ISO 8601 string, got 5"),
    ({"provider": "x", "time": "June"}, r"intensity_source\['time'\] must be an ISO 8601 time, got 'June'"),
    ({"provider": "x", "time": "2024-06-01"}, r"intensity_source\['time'\] must carry a UTC offset, got '2024-06-01'"),
])
def test_bad_intensity_sources_are_named(source, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        minimal(intensity_source=source)


# --------------------------------------------------------------------------- the software boundary


@pytest.mark.parametrize("boundary, message", [
    (["a"], r"software_boundary must be a dict with 'included' and 'excluded', got \['a'\]"),
    ({"included": "server", "excluded": ["c"]}, r"software_boundary\['included'\] must be a non-empty list of strings, got 'server'"),
    ({"included": {"server"}, "excluded": ["c"]}, r"software_boundary\['included'\] must be a non-empty list of strings, got \{'server'\}"),
    ({"included": 5, "excluded": ["c"]}, r"software_boundary\['included'\] must be a non-empty list of strings, got 5"),
    ({"included": ["a"], "excluded": ["c", 1]}, r"software_boundary\['excluded'\] must be a non-empty list of strings, got \['c', 1\]"),
    ({"included": ["a", " "], "excluded": ["c"]}, r"software_boundary\['included'\] must be a non-empty list of strings, got \['a', ' '\]"),
    ({"included": ["a"]}, r"software_boundary\['excluded'\] must be a non-empty list of strings, got None"),
    ({"included": ["a"], "excluded": ["c"], "scope": ["x"], "also": []},
     r"unknown software_boundary key\(s\) 'also', 'scope'; valid: included, excluded"),
])
def test_bad_boundaries_are_named(boundary, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        minimal(software_boundary=boundary)


def test_a_boundary_of_tuples_is_recorded_as_lists():
    assert minimal(software_boundary={"included": ("a", "b"), "excluded": ("c",)}).software_boundary == {
        "included": ["a", "b"], "excluded": ["c"]}


# --------------------------------------------------------------------------- compute's own checks


@pytest.mark.parametrize("kwargs, error, message", [
    ({"functional_unit": "per inference"}, TypeError,
     "functional_unit must be a FunctionalUnit, got str: 'per inference'"),
    ({"energy_method": "guessed"}, ValueError, "energy_method must be one of measured, modeled, mixed, got 'guessed'"),
    ({"energy_method": "modeled", "uncertainty": " "}, ValueError,
     "uncertainty must describe the error of modeled energy, got ' '"),
    ({"pue": 0.99}, ValueError, "pue must be >= 1, got 0.99"),
    ({"pue": "1.2"}, ValueError, "pue must be a finite number, got '1.2'"),
    ({"methodology": " "}, ValueError, "methodology must be a non-empty string, got ' '"),
    ({"methodology": None}, ValueError, "methodology must be a non-empty string, got None"),
    ({"items": -1}, ValueError, "items must be > 0, got -1"),
    ({"energy_kwh": -0.5}, ValueError, "energy_kwh must be >= 0, got -0.5"),
    ({"intensity_g_per_kwh": -1}, ValueError, "intensity_g_per_kwh must be >= 0, got -1"),
])
def test_bad_report_inputs_are_named(kwargs, error, message):
    with pytest.raises(error, match=f"^{message}$".replace("(", r"\(").replace(")", r"\)")):
        minimal(**kwargs)


def test_a_pue_of_one_is_accepted():
    assert minimal(pue=1).pue == 1.0


# --------------------------------------------------------------------------- the formulas


def test_operational_emissions_is_energy_times_intensity():
    assert operational_emissions(0.5, 200) == 100.0
    assert operational_emissions(3, 0) == 0.0
    with pytest.raises(ValueError, match="^energy_kwh must be >= 0, got -1$"):
        operational_emissions(-1, 200)
    with pytest.raises(ValueError, match="^intensity_g_per_kwh must be >= 0, got -2$"):
        operational_emissions(1, -2)
    with pytest.raises(ValueError, match="^energy_kwh must be a finite number, got None$"):
        operational_emissions(None, 200)


def test_sci_score_checks_each_argument_by_name():
    assert sci_score(1.0, 100.0, 50.0, 10) == 15.0
    assert sci_score(0, 100.0, 0, 1) == 0.0
    for args, message in [((-1, 1, 1, 1), "energy_kwh must be >= 0, got -1"),
                          ((1, -1, 1, 1), "intensity_g_per_kwh must be >= 0, got -1"),
                          ((1, 1, -1, 1), "embodied_g must be >= 0, got -1"),
                          ((1, 1, 1, 0), "functional_units must be > 0, got 0")]:
        with pytest.raises(ValueError, match=f"^{message}$"):
            sci_score(*args)


def test_embodied_share_checks_each_argument_by_name():
    assert embodied_share(8760, HOUR, timedelta(days=365), 1, 2) == 0.5
    assert embodied_share(0, HOUR, timedelta(days=365), 1, 1) == 0.0
    assert embodied_share(100, timedelta(seconds=1), timedelta(seconds=1), 3, 3) == 100.0  # a one-second lifespan
    for args, error, message in [
        ((-1, HOUR, FOUR_YEARS, 1, 1), ValueError, "total_embodied_g must be >= 0, got -1"),
        ((1, 3600, FOUR_YEARS, 1, 1), TypeError, "time_reserved must be a datetime.timedelta, got int: 3600"),
        ((1, HOUR, timedelta(seconds=-1), 1, 1), ValueError,
         r"expected_lifespan must be > 0, got datetime.timedelta\(days=-1, seconds=86399\)"),
        ((1, -HOUR, FOUR_YEARS, 1, 1), ValueError,
         r"time_reserved must be >= 0, got datetime.timedelta\(days=-1, seconds=82800\)"),
        ((1, HOUR, FOUR_YEARS, 1, 0), ValueError, "total_resources must be > 0, got 0"),
        ((1, HOUR, FOUR_YEARS, 0, 4), ValueError, "resources_reserved must be > 0, got 0"),
        ((1, HOUR, FOUR_YEARS, 5, 4), ValueError, r"resources_reserved must be <= total_resources \(4\), got 5"),
    ]:
        with pytest.raises(error, match=f"^{message}$"):
            embodied_share(*args)
    assert embodied_share(10, HOUR, HOUR, 4, 4) == 10.0  # all the resources


def test_duration_seconds():
    assert duration_seconds("d", timedelta(seconds=1), strictly_positive=True) == 1.0
    assert duration_seconds("d", timedelta(0), strictly_positive=False) == 0.0
    with pytest.raises(ValueError, match=r"^d must be > 0, got datetime.timedelta\(0\)$"):
        duration_seconds("d", timedelta(0), strictly_positive=True)
    with pytest.raises(TypeError, match="^d must be a datetime.timedelta, got float: 1.5$"):
        duration_seconds("d", 1.5, strictly_positive=False)


# --------------------------------------------------------------------------- the functional unit


def test_functional_unit_labels_and_sizes():
    assert FunctionalUnit().label == "per inference" and FunctionalUnit().per == 1
    assert FunctionalUnit("inference", 1000.0).per == 1000 and isinstance(FunctionalUnit("inference", 1000.0).per, int)
    assert FunctionalUnit("inference", 1000).label == "per 1,000 inferences"
    assert FunctionalUnit("inference", 2.5).label == "per 2.5 inferences" and FunctionalUnit("inference", 2.5).per == 2.5
    assert FunctionalUnit("inference", 1_234_567).label == "per 1,234,567 inferences"
    assert FunctionalUnit("query", 100, plural="queries").label == "per 100 queries"
    assert FunctionalUnit("user").plural_name == "users"
    assert FunctionalUnit("inference", 1000).to_dict() == {"name": "inference", "per": 1000, "plural": "inferences",
                                                          "label": "per 1,000 inferences"}


def test_functional_unit_arithmetic():
    unit = FunctionalUnit("inference", 1000)
    assert unit.count(12_500) == 12.5 and unit.count(0) == 0.0
    assert unit.from_per_item(0.002) == 2.0 and unit.to_per_item(2.0) == 0.002
    assert unit.conversion_factor(FunctionalUnit("inference", 1)) == 0.001
    assert FunctionalUnit("inference", 1).convert(3.0, unit) == 3000.0
    assert unit.convert(3.0, FunctionalUnit("inference", 10)) == pytest.approx(0.03)


@pytest.mark.parametrize("call, error, message", [
    (lambda u: u.count(-1), ValueError, "items must be >= 0, got -1"),
    (lambda u: u.from_per_item("x"), ValueError, "value_per_item must be a finite number, got 'x'"),
    (lambda u: u.to_per_item(None), ValueError, "value_per_unit must be a finite number, got None"),
    (lambda u: u.convert(float("inf"), FunctionalUnit()), ValueError, "score must be a finite number, got inf"),
    (lambda u: u.conversion_factor("per user"), TypeError, "to must be a FunctionalUnit, got str: 'per user'"),
    (lambda u: u.conversion_factor(FunctionalUnit("user")), ValueError,
     r"cannot convert a score per 1,000 inferences to one per user: they count different things "
     r"\('inference' vs 'user'\)"),
])
def test_functional_unit_errors_name_the_argument(call, error, message):
    with pytest.raises(error, match=f"^{message}$"):
        call(FunctionalUnit("inference", 1000))


@pytest.mark.parametrize("kwargs, message", [
    ({"name": " "}, "name must be a non-empty string, got ' '"),
    ({"name": 5}, "name must be a non-empty string, got 5"),
    ({"per": 0}, "per must be > 0, got 0"),
    ({"per": "10"}, "per must be a finite number, got '10'"),
    ({"plural": ""}, "plural must be a non-empty string or None, got ''"),
    ({"plural": 2}, "plural must be a non-empty string or None, got 2"),
])
def test_bad_functional_units_are_named(kwargs, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        FunctionalUnit(**kwargs)


def test_functional_unit_from_dict():
    assert FunctionalUnit.from_dict({}) == FunctionalUnit("inference", 1, "inferences")
    assert FunctionalUnit.from_dict({"name": "query", "per": 100, "plural": "queries", "label": "ignored"}) \
        == FunctionalUnit("query", 100, "queries")
    unit = FunctionalUnit("request", 50)
    assert FunctionalUnit.from_dict(unit.to_dict()) == unit
    with pytest.raises(ValueError, match=r"^functional unit must be a dict, got list \['inference'\]$"):
        FunctionalUnit.from_dict(["inference"])
    with pytest.raises(ValueError, match=r"^unknown functional unit key\(s\) 'size', 'unit'; valid: name, per, plural$"):
        FunctionalUnit.from_dict({"unit": "x", "size": 2, "name": "inference"})
