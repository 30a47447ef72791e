"""The carbon estimate of a submission: each method, its inputs, bad input, and the planned
intensity from the carbon service (a forecast for the window, else the annual average)."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone

import pytest

from greenkfp.components.carbon import annual_average, intensity_over
from greenkfp.components.carbon.errors import UnknownRegionError
from greenkfp.components.energy import HardwareProfile, UnknownProfileError
from greenkfp.components.governance.estimate import (
    DEFAULT_STEP_HOURS,
    MIN_HISTORY_RUNS,
    estimate_submission,
    planned_intensity,
)

# 100 W TDP x Teads 1.02 at full load + 8 GB x 0.375 W/GB = 105 W for the whole machine
DEMO = HardwareProfile("demo", cpu_tdp_w=100, vcpus=4, ram_gb=8, embodied_kgco2eq=0)


def estimate(**changes):
    arguments = dict(history_g=[], energy_kwh=None, steps=2, hardware_profile=DEMO, intensity_g_per_kwh=300.0,
                     intensity_basis="test intensity")
    arguments.update(changes)
    return estimate_submission(**arguments)


def test_history_gives_the_p90_and_the_median():
    result = estimate(history_g=[10, 20, 30, 40, 50], energy_kwh=2.0)
    assert result.method == "history" and MIN_HISTORY_RUNS == 3
    assert result.estimate_g == pytest.approx(46.0) and result.p90_g == pytest.approx(46.0)  # numpy's linear p90
    assert result.median_g == 30.0 and result.energy_kwh is None
    assert result.inputs["history_runs"] == 5 and result.inputs["energy_kwh"] == 2.0


def test_three_runs_are_enough_history():
    result = estimate(history_g=[100, 100, 130])
    assert result.method == "history" and result.estimate_g == pytest.approx(124.0) and result.median_g == 100


def test_too_little_history_falls_back_to_energy_kwh():
    result = estimate(history_g=[500, 600], energy_kwh=0.5)
    assert result.method == "energy_kwh" and result.estimate_g == pytest.approx(150.0)
    assert result.energy_kwh == 0.5 and result.median_g is None and result.p90_g is None
    assert result.inputs["history_runs"] == 2 and result.caveat == ""


def test_zero_energy_is_an_estimate_of_zero():
    assert estimate(energy_kwh=0).estimate_g == 0 and estimate(energy_kwh=0).method == "energy_kwh"


def test_hardware_default_models_full_load_per_step():
    result = estimate(steps=2, default_step_hours=0.5)  # 105 W for 2 x 0.5 h = 0.105 kWh
    assert result.method == "hardware_default"
    assert result.energy_kwh == pytest.approx(0.105) and result.estimate_g == pytest.approx(0.105 * 300)
    assert result.inputs["modeled_power_w"] == pytest.approx(105.0) and result.inputs["hardware_profile"] == "demo"
    assert "Modeled, not measured" in result.caveat


def test_hardware_default_from_a_preset_name():
    result = estimate(hardware_profile="n2-standard-4", steps=1)
    # CCF's 14.57 W x 1.02 + 16 GB x 0.375 W/GB, for DEFAULT_STEP_HOURS
    assert result.energy_kwh == pytest.approx((14.57 * 1.02 + 6.0) * DEFAULT_STEP_HOURS / 1000)
    assert result.inputs["hardware_profile"] == "n2-standard-4"


def test_to_dict_is_json_with_inputs_and_basis():
    data = json.loads(json.dumps(estimate(history_g=[1.5]).to_dict()))
    assert data["method"] == "hardware_default" and data["intensity_basis"] == "test intensity"
    assert data["inputs"]["history_g"] == [1.5] and data["units"]["estimate_g"] == "gCO2eq"


@pytest.mark.parametrize("changes, words", [
    ({"history_g": [1, -2]}, "history_g[1] must be a finite number >= 0, got -2"),
    ({"history_g": [math.nan]}, "history_g[0] must be a finite number >= 0, got nan"),
    ({"history_g": [1, "2"]}, "history_g[1] must be a finite number >= 0, got '2'"),
    ({"history_g": "123"}, "history_g must be a sequence of grams, got '123'"),
    ({"history_g": None}, "history_g must be a sequence"),
    ({"energy_kwh": -1}, "energy_kwh must be >= 0, got -1"),
    ({"energy_kwh": math.inf}, "energy_kwh must be a finite number, got inf"),
    ({"steps": 0}, "steps must be a whole number > 0, got 0"),
    ({"steps": 1.5}, "steps must be a whole number > 0, got 1.5"),
    ({"steps": True}, "steps must be a whole number > 0, got True"),
    ({"intensity_g_per_kwh": -5}, "intensity_g_per_kwh must be >= 0, got -5"),
    ({"intensity_g_per_kwh": math.nan}, "intensity_g_per_kwh must be a finite number, got nan"),
    ({"intensity_basis": " "}, "intensity_basis must be a non-empty string, got ' '"),
    ({"default_step_hours": 0}, "default_step_hours must be > 0, got 0"),
])
def test_bad_input_names_the_argument_and_value(changes, words):
    with pytest.raises(ValueError) as caught:
        estimate(**changes)
    assert str(caught.value).startswith(words)


def test_unknown_hardware_profile():
    with pytest.raises(UnknownProfileError, match="unknown hardware profile 'tpu-v9'"):
        estimate(hardware_profile="tpu-v9")


# --------------------------------------------------------------------------- planned intensity

START = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)


def test_no_window_gives_the_annual_average():
    result = planned_intensity("DE-LU")
    assert result.gco2_per_kwh == annual_average("DE-LU").gco2_per_kwh
    assert result.basis.endswith("annual average because no planned window given")


def test_a_window_is_priced_by_the_carbon_service():
    result = planned_intensity("DE-LU", START, START + timedelta(hours=3))
    assert result == intensity_over("DE-LU", START, START + timedelta(hours=3))
    assert result.data_kind == "replayed_historical"  # the embedded provider replays past years


def _uk_payload(values, start):
    def stamp(moment):
        return moment.strftime("%Y-%m-%dT%H:%MZ")
    return {"data": [{"from": stamp(start + i * timedelta(minutes=30)), "to": stamp(start + (i + 1) * timedelta(minutes=30)),
                      "intensity": {"forecast": v, "actual": None, "index": "moderate"}} for i, v in enumerate(values)]}


def test_a_forecast_for_the_window_is_used_when_the_provider_has_one(httpserver):
    httpserver.expect_request("/intensity/2026-12-01T12:00Z/fw48h").respond_with_json(
        _uk_payload([100, 200, 300, 400], START))
    result = planned_intensity("GB", START, START + timedelta(hours=1), provider="uk",
                               provider_options={"uk": {"base_url": httpserver.url_for("")}})
    assert result.data_kind == "forecast" and result.provider == "uk" and result.gco2_per_kwh == pytest.approx(150.0)


def test_a_failing_forecast_falls_back_to_the_annual_average(httpserver):
    httpserver.expect_request("/intensity/2026-12-01T12:00Z/fw48h").respond_with_data("down", status=500)
    result = planned_intensity("GB", START, START + timedelta(hours=1), provider="uk",
                               provider_options={"uk": {"base_url": httpserver.url_for(""), "retry": {"attempts": 1}}})
    assert result.gco2_per_kwh == annual_average("GB").gco2_per_kwh
    assert "annual average because the planned window's intensity is unavailable: uk (region 'GB'): HTTP 500" in result.basis


def test_planned_intensity_bad_input():
    with pytest.raises(ValueError, match="give both start and end"):
        planned_intensity("GB", START)
    with pytest.raises(UnknownRegionError, match="'Atlantis' is not in the embedded data"):
        planned_intensity("Atlantis")


def test_the_estimate_prices_with_the_planned_intensity():
    intensity = planned_intensity("DE-LU")
    result = estimate(energy_kwh=2.0, intensity_g_per_kwh=intensity.gco2_per_kwh, intensity_basis=intensity.basis)
    assert result.estimate_g == pytest.approx(2.0 * intensity.gco2_per_kwh) and result.intensity_basis == intensity.basis
