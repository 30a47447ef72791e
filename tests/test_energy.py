"""EnergyTracker against the real CodeCarbon (offline): real work, real CSV, real failures.

No mocks: CodeCarbon runs for real on this machine (no RAPL here, so energy is modeled), and
its failures are provoked through the file system.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import math
import os
import subprocess
import sys
import textwrap
import time
from datetime import timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from greenkfp.components.energy import (
    TEADS_RAM_W_PER_GB,
    ZONE_COUNTRY,
    EnergyMeasurement,
    EnergyTracker,
    HardwareProfile,
    UnknownProfileError,
    codecarbon_location,
    resolve_profile,
)

FAST = 0.25  # measure_power_secs: several CodeCarbon samples within a short block


def busy(seconds: float) -> int:
    """CPU-bound work (matrix products) for about ``seconds``; returns how many products ran."""
    a = np.random.default_rng(0).random((300, 300))
    end, n = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        a = a @ a
        a /= np.abs(a).max()
        n += 1
    return n


def codecarbon_threads() -> int:
    from codecarbon.core.util import count_cpus

    return int(count_cpus())


# --------------------------------------------------------------------------- a real run


def test_tracked_block_gives_modeled_energy_csv_and_json(tmp_path, monkeypatch, capfd):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    out = tmp_path / "codecarbon" / "run"  # does not exist yet: created
    other = logging.getLogger("greenkfp.test.other")
    other_level, root_level = other.level, logging.getLogger().level

    tracker = EnergyTracker(country_iso_code="GBR", output_dir=out, measure_power_secs=FAST)
    with tracker as entered:
        t0 = time.perf_counter()
        products = busy(1.2)
        block_s = time.perf_counter() - t0
    result = tracker.result

    assert entered is tracker and products > 0
    assert isinstance(result, EnergyMeasurement)
    assert result.available and result.reason is None
    assert result.tracker == "offline"
    # No RAPL on these machines: CodeCarbon models the CPU, and says with which mode.
    assert result.method == "modeled"
    assert "cpu_load" in result.method_detail and "TDP" in result.method_detail
    assert "RAM: modeled" in result.method_detail and "no GPU" in result.method_detail
    assert "-60% to +190%" in result.method_detail
    assert result.energy_kwh > 0 and result.cpu_energy_kwh > 0 and result.ram_energy_kwh > 0
    assert math.isclose(result.energy_kwh, result.cpu_energy_kwh + result.ram_energy_kwh, rel_tol=1e-9)
    assert result.gpu_energy_kwh is None and result.gpu_power_w is None
    assert result.cpu_power_w > 0 and result.ram_power_w > 0
    # Average power x time is the energy (CodeCarbon's own bookkeeping, within sampling slack).
    assert result.energy_kwh * 3.6e6 == pytest.approx(
        (result.cpu_power_w + result.ram_power_w) * result.duration_s, rel=0.5
    )
    assert result.started_at.tzinfo == timezone.utc and result.started_at < result.ended_at
    assert result.duration_s == pytest.approx((result.ended_at - result.started_at).total_seconds(), abs=0.05)
    assert result.duration_s == pytest.approx(block_s, abs=0.05)
    assert result.codecarbon_emissions_g > 0
    from codecarbon.input import DataSource

    gbr = DataSource().get_global_energy_mix_data()["GBR"]["carbon_intensity"]
    assert result.codecarbon_intensity_g_per_kwh == pytest.approx(gbr, rel=1e-6)
    assert result.country_iso_code == "GBR" and result.codecarbon_region is None
    assert result.codecarbon_version == importlib.metadata.version("codecarbon")
    assert result.hardware_profile is None

    # CodeCarbon's CSV, written where asked and nowhere else.
    assert result.csv_path == str(out.absolute() / "emissions.csv")
    frame = pd.read_csv(result.csv_path)
    row = frame.loc[frame["run_id"] == result.codecarbon_run_id].iloc[0]
    assert row["energy_consumed"] == pytest.approx(result.energy_kwh, rel=1e-6)
    assert row["emissions"] * 1000 == pytest.approx(result.codecarbon_emissions_g, rel=1e-6)
    assert row["country_iso_code"] == "GBR" and row["project_name"] == "greenkfp"
    assert list(cwd.iterdir()) == []

    data = result.to_dict()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text)["started_at"] == result.started_at.isoformat()
    assert data["units"]["energy"] == "kWh" and data["units"]["emissions"] == "g CO2eq"
    assert data["units"]["power"] == "W" and data["uncertainty"].startswith("modeled")

    # CodeCarbon's chatter silenced to log_level ("error"), other loggers untouched.
    captured = capfd.readouterr()
    assert "[codecarbon" not in captured.err and "[codecarbon" not in captured.out
    cc_logger = logging.getLogger("codecarbon")
    assert cc_logger.level == logging.ERROR and cc_logger.filters == []
    assert other.level == other_level and logging.getLogger().level == root_level


def test_default_output_dir_is_a_temporary_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with EnergyTracker(measure_power_secs=FAST) as tracker:
        busy(0.2)
    result = tracker.result
    assert result.available and result.csv_path is not None
    csv = Path(result.csv_path)
    assert csv.is_file() and csv.parent.name.startswith("greenkfp-codecarbon-")
    assert tmp_path not in csv.parents and list(tmp_path.iterdir()) == []
    assert len(pd.read_csv(csv)) == 1


def test_hardware_profile_reaches_codecarbon(tmp_path):
    big = resolve_profile("n2-standard-4", {"cpu_tdp_w": 200, "ram_gb": 256})
    small = resolve_profile("n2-standard-4", {"cpu_tdp_w": 20, "ram_gb": 2})
    results = {}
    for name, profile in (("big", big), ("small", small)):
        with EnergyTracker(output_dir=tmp_path / name, hardware=profile, measure_power_secs=FAST) as tracker:
            busy(0.8)  # the same CPU-bound work in both runs
        results[name] = tracker.result
    big_r, small_r = results["big"], results["small"]
    assert big_r.available and small_r.available
    assert big_r.method == small_r.method == "modeled"

    # CPU: the profile's TDP is CodeCarbon's force_cpu_power, used by its load model.
    assert big_r.codecarbon_settings["force_cpu_power"] == 200
    assert small_r.codecarbon_settings["force_cpu_power"] == 20
    assert "TDP = 200 W" in big_r.method_detail and "force_cpu_power" in big_r.method_detail
    assert "TDP = 20 W" in small_r.method_detail
    # process tracking: TDP x the process's share of the CPUs (its CPU time over wall time and CPU
    # count; sampling two clocks can push that share a little past 1 on a busy machine) ...
    assert 0 < big_r.cpu_power_w <= 200 * 2
    assert 0 < small_r.cpu_power_w <= 20 * 2
    # ... so the same work gives clearly different CPU power and energy (about 10x).
    assert big_r.cpu_power_w > 3 * small_r.cpu_power_w
    assert big_r.cpu_energy_kwh > 3 * small_r.cpu_energy_kwh

    # RAM: the RAM model SCI uses (W per GB) at the profile's size, passed as force_ram_power.
    assert big_r.ram_power_w == pytest.approx(256 * TEADS_RAM_W_PER_GB)
    assert small_r.ram_power_w == pytest.approx(2 * TEADS_RAM_W_PER_GB)
    assert "ram_gb=256 GB" in big_r.method_detail

    assert big_r.hardware_profile == big.to_dict()
    assert json.loads(json.dumps(small_r.to_dict()))["hardware_profile"]["ram_gb"] == 2.0


def test_the_profiles_tdp_is_the_machines_and_a_cpu_count_mismatch_is_noted(tmp_path):
    threads = codecarbon_threads()
    notes = {}
    for vcpus in (threads, threads + 1):
        profile = resolve_profile("n2-standard-4", {"cpu_tdp_w": 20, "vcpus": vcpus})
        with EnergyTracker(output_dir=tmp_path / str(vcpus), hardware=profile, measure_power_secs=FAST) as tracker:
            busy(0.1)
        result = tracker.result
        assert result.available
        # the profile is the machine the job runs on: its TDP is not scaled by cores
        assert result.codecarbon_settings["force_cpu_power"] == 20
        # process tracking: TDP x the process's CPU share; over a 0.1 s block CodeCarbon's two clocks (CPU
        # time and wall time, sampled apart) can put that share well past 1, so only the order is checked
        assert 0 < result.cpu_power_w <= 20 * 2
        notes[vcpus] = [n for n in result.notes if "CPU threads" in n]
    assert notes[threads] == []
    assert f"this machine's ({threads} CPU threads)" in notes[threads + 1][0]
    assert f"for {threads + 1} vCPUs" in notes[threads + 1][0]


def test_without_a_profile_codecarbon_keeps_its_own_tdp(tmp_path):
    with EnergyTracker(output_dir=tmp_path, measure_power_secs=FAST) as tracker:
        busy(0.1)
    result = tracker.result
    assert result.available and result.hardware_profile is None
    assert result.codecarbon_settings["force_cpu_power"] is None
    assert result.codecarbon_settings["force_ram_power"] is None
    assert "CodeCarbon's" in result.method_detail and "force_cpu_power" not in result.method_detail


# --------------------------------------------------------------------------- CodeCarbon failing


def test_output_dir_that_cannot_be_created_leaves_the_work_done(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    done = []
    with EnergyTracker(output_dir=blocker / "codecarbon", measure_power_secs=FAST) as tracker:
        done.append(busy(0.1))
    result = tracker.result
    assert done and done[0] > 0
    assert not result.available and result.method == "unavailable"
    assert result.reason.startswith("CodeCarbon could not start")
    assert "NotADirectoryError" in result.reason and "a-file" in result.reason
    assert result.energy_kwh is None and result.codecarbon_emissions_g is None and result.csv_path is None
    assert result.duration_s > 0 and result.started_at < result.ended_at
    json.dumps(result.to_dict(), allow_nan=False)


def test_codecarbon_failing_to_write_its_csv_leaves_the_work_done(tmp_path):
    # CodeCarbon's stop() swallows its own exceptions and returns None: here it cannot write
    # emissions.csv because a directory has that name.
    out = tmp_path / "out"
    (out / "emissions.csv").mkdir(parents=True)
    done = []
    with EnergyTracker(output_dir=out, measure_power_secs=FAST) as tracker:
        done.append(busy(0.2))
    result = tracker.result
    assert done and done[0] > 0
    assert not result.available and result.method == "unavailable"
    assert "stop()" in result.reason and "IsADirectoryError" in result.reason
    assert result.energy_kwh is None and result.cpu_power_w is None
    assert result.duration_s > 0


def test_an_exception_in_the_block_propagates_after_a_quiet_stop(tmp_path):
    class FitFailed(RuntimeError):
        pass

    tracker = EnergyTracker(output_dir=tmp_path, measure_power_secs=FAST)
    with pytest.raises(FitFailed, match="diverged"):
        with tracker:
            busy(0.1)
            raise FitFailed("diverged")
    result = tracker.result
    assert not result.available and "FitFailed" in result.reason
    # CodeCarbon was stopped (its stop() writes the CSV row) and its logger restored.
    assert (tmp_path / "emissions.csv").is_file()
    assert logging.getLogger("codecarbon").filters == []
    # The tracker can be used again.
    with tracker:
        busy(0.05)
    assert tracker.result.available


def test_result_before_the_block_ends_is_an_error():
    tracker = EnergyTracker()
    with pytest.raises(RuntimeError, match="with block"):
        _ = tracker.result


# --------------------------------------------------------------------------- caller errors


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "cloud"}, r"mode .*'cloud'"),
        ({"country_iso_code": "GB"}, r"country_iso_code .*'GB'"),
        ({"country_iso_code": "G8R"}, r"country_iso_code .*'G8R'"),
        ({"country_iso_code": 826}, r"country_iso_code .*826"),
        ({"country_iso_code": "XYZ"}, r"country_iso_code 'XYZ' is not in CodeCarbon's offline data"),
        ({"measure_power_secs": 0}, r"measure_power_secs .*got 0"),
        ({"measure_power_secs": -1.5}, r"measure_power_secs .*-1.5"),
        ({"measure_power_secs": float("nan")}, r"measure_power_secs .*nan"),
        ({"measure_power_secs": True}, r"measure_power_secs .*True"),
        ({"log_level": "loud"}, r"log_level .*'loud'"),
        ({"region": ""}, r"region .*''"),
        ({"country_iso_code": "GBR", "region": "scotland"}, r"region 'scotland' cannot be used for .*'GBR'"),
        ({"country_iso_code": "USA", "region": "atlantis"}, r"region 'atlantis' is not in CodeCarbon's .*USA.*california"),
        ({"country_iso_code": "CAN", "region": "texas"}, r"region 'texas' .*CAN.*ontario"),
        ({"project_name": ""}, r"project_name .*''"),
        ({"hardware": [65]}, r"hardware .*\[65\]"),
        ({"hardware": {"cpu_tdp_w": 65}}, r"hardware must be a HardwareProfile .*'cpu_tdp_w': 65"),
    ],
)
def test_caller_errors_name_the_field_and_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EnergyTracker(**kwargs)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"cpu_tdp_w": 0}, r"cpu_tdp_w .*got 0"),
        ({"cpu_tdp_w": float("inf")}, r"cpu_tdp_w .*inf"),
        ({"cpu_tdp_w": "65"}, r"cpu_tdp_w .*'65'"),
        ({"vcpus": 2.5}, r"vcpus .*2.5"),
        ({"vcpus": 0}, r"vcpus .*got 0"),
        ({"vcpus": True}, r"vcpus .*True"),
        ({"vcpus": 256}, r"host_vcpus must be >= vcpus \(256\), got 128"),
        ({"ram_gb": -8}, r"ram_gb .*-8"),
        ({"ram_gb": float("nan")}, r"ram_gb .*nan"),
        ({"lifespan_years": 0}, r"lifespan_years must be > 0, got 0"),
        ({"tdp": 65}, r"hardware_overrides: unknown field\(s\) 'tdp'; fields: name, cpu_tdp_w, vcpus, ram_gb"),
        ({"cores": 2, "tdp": 1}, r"unknown field\(s\) 'cores', 'tdp'"),
        ({"sources": {"watts": "x"}}, r"sources names unknown figure\(s\) 'watts'"),
        ([("cpu_tdp_w", 65)], r"hardware_overrides must be a dict"),
    ],
)
def test_overrides_are_validated_naming_the_field_and_the_value(overrides, match):
    with pytest.raises(ValueError, match=match):
        resolve_profile("n2-standard-4", overrides)


def test_unknown_preset_lists_the_presets():
    with pytest.raises(UnknownProfileError, match=r"unknown hardware profile 'n9-mega-96'; presets: n2-standard-4, "
                                                  r"e2-standard-4, m5.xlarge, c5.2xlarge, Standard_D4s_v5"):
        resolve_profile("n9-mega-96")


def test_overrides_replace_figures_and_record_their_source():
    preset = resolve_profile("m5.xlarge")
    assert resolve_profile("m5.xlarge", {}) is preset and resolve_profile("m5.xlarge", None) is preset
    profile = resolve_profile("m5.xlarge", {"cpu_tdp_w": 65, "vcpus": 4.0, "ram_gb": 32,
                                            "sources": {"cpu_tdp_w": "vendor TDP"}})
    assert (profile.cpu_tdp_w, profile.vcpus, profile.ram_gb) == (65.0, 4, 32.0) and isinstance(profile.vcpus, int)
    assert profile.embodied_kgco2eq == preset.embodied_kgco2eq and profile.host_vcpus == preset.host_vcpus
    assert profile.name == "m5.xlarge (overrides: cpu_tdp_w, ram_gb, vcpus)"
    assert profile.sources["cpu_tdp_w"] == "vendor TDP" and profile.sources["ram_gb"] == "hardware_overrides"
    assert profile.sources["embodied_kgco2eq"] == preset.sources["embodied_kgco2eq"]
    assert resolve_profile("m5.xlarge", {"name": "my box", "ram_gb": 8}).name == "my box"
    assert HardwareProfile(**profile.to_dict()) == profile
    assert json.loads(json.dumps(profile.to_dict()))["sources"]["vcpus"] == "hardware_overrides"


def test_offline_regions_are_spelled_as_codecarbon_expects():
    assert EnergyTracker(country_iso_code="usa", region="New York").region == "new york"
    assert EnergyTracker(country_iso_code="SWE", region="se3").region == "SE3"
    assert EnergyTracker(country_iso_code="USA").country_iso_code == "USA"


# --------------------------------------------------------------------------- zones


def test_codecarbon_location_for_every_embedded_zone():
    from greenkfp.components.carbon import embedded_zones

    expected = {
        "AU-NSW": ("AUS", None), "AU-VIC": ("AUS", None), "BR-SP": ("BRA", None),
        "CA-ON": ("CAN", "ontario"), "CL-SIC": ("CHL", None), "DE-LU": ("DEU", None),
        "GB": ("GBR", None), "IN-WE": ("IND", None), "JP-TK": ("JPN", None), "KR": ("KOR", None),
        "SG": ("SGP", None), "US-CAL-CISO": ("USA", "california"), "US-MIDA-PJM": ("USA", None),
        "US-NY-NYIS": ("USA", "new york"), "US-TEX-ERCO": ("USA", "texas"), "ZA": ("ZAF", None),
    }
    assert set(ZONE_COUNTRY) == set(expected) == set(embedded_zones())
    for zone, location in expected.items():
        assert codecarbon_location(zone) == location
        country, region = location
        # CodeCarbon's offline data knows every country and region (validated by the tracker).
        tracker = EnergyTracker(country_iso_code=country, region=region)
        assert (tracker.country_iso_code, tracker.region) == location
    with pytest.raises(ValueError, match=r"zone 'FR' has no CodeCarbon location; known zones: AU-NSW, .*ZA"):
        codecarbon_location("FR")


def test_a_zone_region_prices_at_codecarbons_regional_intensity(tmp_path):
    country, region = codecarbon_location("US-CAL-CISO")
    with EnergyTracker(country_iso_code=country, region=region, output_dir=tmp_path, measure_power_secs=FAST) as tracker:
        busy(0.1)
    result = tracker.result
    assert result.available and result.codecarbon_region == "california" and result.notes == ()
    from codecarbon.input import DataSource

    lbs_per_mwh = DataSource().get_country_emissions_data("usa")["california"]["emissions"]
    assert result.codecarbon_intensity_g_per_kwh == pytest.approx(lbs_per_mwh * 0.45359237, rel=1e-6)


# --------------------------------------------------------------------------- fresh process, network


FRESH_PROCESS = textwrap.dedent(
    """
    import json, os, sys, time
    network = []

    def audit(event, args):
        if event in ("socket.connect", "socket.getaddrinfo", "socket.sendto", "socket.sendmsg"):
            network.append([event, repr(args)[:200]])

    sys.addaudithook(audit)
    from greenkfp.components.energy import EnergyTracker

    timings = []
    for _ in range(2):
        tracker = EnergyTracker(output_dir=sys.argv[1], measure_power_secs=0.5)
        t0 = time.perf_counter()
        with tracker:
            t1 = time.perf_counter()
        t2 = time.perf_counter()
        timings.append({"start_s": t1 - t0, "stop_s": t2 - t1})
    print(json.dumps({"timings": timings, "network": network, "available": tracker.result.available,
                      "cwd_files": os.listdir(".")}))
    """
)


def test_offline_tracker_in_a_fresh_process_opens_no_connection_and_writes_nothing_in_cwd(tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith("codecarbon_")}
    proc = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(tmp_path / "out")],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["available"] is True
    assert report["network"] == []
    assert report["cwd_files"] == []
    assert "[codecarbon" not in proc.stderr
    first, second = report["timings"]
    # Reported, not asserted tightly: the first start detects the hardware (cpuinfo, TDP registry).
    print("start+stop, first in process:", first, "second:", second)
    assert second["start_s"] + second["stop_s"] < first["start_s"] + first["stop_s"] + 1.0


# Online mode is not exercised here: CodeCarbon's online tracker looks the machine up on public
# geolocation services and a cloud metadata address, and no test may reach beyond localhost.


def test_one_caveat_for_modeled_energy():
    from greenkfp.components.energy import MODELED_ERROR_RANGE, modeled_caveat

    assert modeled_caveat("measured") is None and modeled_caveat("unavailable", "codecarbon") is None
    for model in ("codecarbon", "teads"):
        assert MODELED_ERROR_RANGE in modeled_caveat("modeled", model)
        assert MODELED_ERROR_RANGE in modeled_caveat("mixed", model)
    assert modeled_caveat("modeled", "codecarbon").startswith("modeled, not measured")
    assert modeled_caveat("mixed", "codecarbon").startswith("partly modeled")
