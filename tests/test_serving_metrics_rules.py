"""The serving metrics' rules (components/serving/metrics.py), on a real Prometheus registry:
which series exist and how they are named and labelled (the README's table is the contract), how
answers are classed by status, what one ``session.run`` adds to the counters, the energy per
1,000 inferences, the grid intensity's gauges, its refresh's failures, and how the energy
account picks its clock and its method. The mutation run (``make mutation MODULES=metrics``)
found these rules untested."""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from conftest import free_port

from greenkfp.components.carbon.intensity import intensity_over
from greenkfp.components.energy.meters import RaplReader
from greenkfp.components.energy.model import busy_core_watts, model_energy
from greenkfp.components.energy.profiles import resolve_profile
from greenkfp.components.serving.metrics import (
    J_PER_KWH,
    LATENCY_BUCKETS_S,
    EnergyAccount,
    GridIntensity,
    RunReport,
    ServingMetrics,
)

README = Path(__file__).resolve().parents[1] / "README.md"


def _metrics(tmp_path, *, model: str = "iris", region: str = "GB", profile: str = "c5.2xlarge"):
    """ServingMetrics on a fresh registry, with a modeled energy account (no RAPL under tmp_path)."""
    registry = CollectorRegistry()
    energy = EnergyAccount(profile, rapl=RaplReader(tmp_path / "no-powercap"))
    grid = GridIntensity(region)
    return registry, ServingMetrics(registry, model, energy, grid)


def _value(registry, name: str, **labels) -> float | None:
    return registry.get_sample_value(name, labels)


def _documented_metrics() -> dict[str, tuple[str, frozenset[str]]]:
    """The README's table of the server's metrics: sample name -> (type, label names)."""
    rows = re.findall(r"^\| `(greenkfp_[a-z0-9_]+)(?:\{([^}]*)\})?` \| (counter|gauge|histogram) \|",
                      README.read_text(), flags=re.M)
    documented = {}
    for name, labels, kind in rows:
        names = {label.strip() for label in labels.split(",") if label.strip()}
        if "region" not in names:  # every series has the model label, but the grid's (region, provider)
            names.add("model")
        documented[name] = (kind, frozenset(names))
    return documented


def test_every_documented_series_exists_from_the_start_with_its_type_and_labels(tmp_path):
    """A rate() over a series that does not exist yet is empty, not 0: each of the README's
    metrics is exposed before the first request, with the type and labels the table gives."""
    registry, _ = _metrics(tmp_path)
    exposed: dict[str, tuple[str, frozenset[str]]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        name = family.name + "_total" if family.type == "counter" else family.name
        if name.endswith("_created"):
            continue
        labels = frozenset(label for sample in family.samples for label in sample.labels if label != "le")
        exposed[name] = (family.type, labels)
    documented = _documented_metrics()
    assert len(documented) == 17
    # errors by kind have no series until the first error (its kinds are open-ended)
    assert exposed.pop("greenkfp_inference_errors_total") == ("counter", frozenset())
    assert documented.pop("greenkfp_inference_errors_total") == ("counter", frozenset({"model", "kind"}))
    assert exposed == documented


def test_the_series_start_at_zero_and_the_unknowns_at_nan(tmp_path):
    registry, metrics = _metrics(tmp_path, model="digits")
    for outcome in ("success", "client_error", "server_error"):
        assert _value(registry, "greenkfp_inference_requests_total", model="digits", outcome=outcome) == 0
    for name in ("greenkfp_inferences_total", "greenkfp_inference_cpu_seconds_total",
                 "greenkfp_inference_batch_splits_total", "greenkfp_batching_enabled", "greenkfp_model_ready",
                 "greenkfp_inference_request_duration_seconds_count", "greenkfp_inference_batch_requests_count",
                 "greenkfp_inference_batch_rows_count"):
        assert _value(registry, name, model="digits") == 0, name
    for name in ("greenkfp_inference_energy_joules_total", "greenkfp_inference_carbon_grams_total"):
        assert _value(registry, name, model="digits", method="modeled") == 0, name
    # unknown until the first inference / the first fetch
    assert math.isnan(_value(registry, "greenkfp_inference_carbon_grams_per_1000_inferences", model="digits",
                             method="modeled"))
    for name in ("greenkfp_grid_intensity_grams_per_kilowatt_hour", "greenkfp_grid_intensity_age_seconds"):
        assert math.isnan(_value(registry, name, region="GB", provider="embedded")), name
    assert _value(registry, "greenkfp_grid_intensity_refresh_failures_total", region="GB", provider="embedded") == 0
    # the power the modeled energy charges per CPU-second, by profile
    assert _value(registry, "greenkfp_modeled_busy_core_watts", model="digits", profile="c5.2xlarge") == \
        pytest.approx(busy_core_watts(resolve_profile("c5.2xlarge")))
    assert metrics.energy.watts_per_busy_core == busy_core_watts(resolve_profile("c5.2xlarge"))


@pytest.mark.parametrize("status, outcome", [(200, "success"), (399, "success"), (400, "client_error"),
                                             (429, "client_error"), (499, "client_error"), (500, "server_error"),
                                             (503, "server_error")])
def test_an_answer_is_classed_by_its_status(tmp_path, status, outcome):
    registry, metrics = _metrics(tmp_path)
    metrics.record_answer(status)
    counts = {o: _value(registry, "greenkfp_inference_requests_total", model="iris", outcome=o)
              for o in ("success", "client_error", "server_error")}
    assert counts == {o: (1.0 if o == outcome else 0.0) for o in counts}


def test_errors_are_counted_by_kind_and_only_successes_time_their_latency(tmp_path):
    registry, metrics = _metrics(tmp_path)
    metrics.record_answer(400, "bad_request")
    metrics.record_answer(400, "bad_request")
    metrics.record_answer(503, "not_ready")
    metrics.record_answer(200, seconds=0.012)
    metrics.record_answer(200, seconds=0.3)
    errors = "greenkfp_inference_errors_total"
    assert _value(registry, errors, model="iris", kind="bad_request") == 2
    assert _value(registry, errors, model="iris", kind="not_ready") == 1
    latency = "greenkfp_inference_request_duration_seconds"
    assert _value(registry, latency + "_count", model="iris") == 2
    assert _value(registry, latency + "_sum", model="iris") == pytest.approx(0.312)
    assert _value(registry, latency + "_bucket", model="iris", le="0.015") == 1  # 12 ms
    assert _value(registry, latency + "_bucket", model="iris", le="0.25") == 1
    assert _value(registry, latency + "_bucket", model="iris", le="0.5") == 2  # 300 ms


def test_a_run_adds_its_rows_requests_cpu_energy_and_carbon(tmp_path):
    registry, metrics = _metrics(tmp_path)
    metrics.grid.value = 200.0  # gCO2eq/kWh, as a fetch sets it
    metrics.record_batch(3, 7, RunReport(cpu_s=0.02, wall_s=0.03, energy_j=0.36, method="modeled"))
    metrics.record_batch(1, 5, RunReport(cpu_s=0.01, wall_s=0.01, energy_j=0.18, method="modeled"))
    assert _value(registry, "greenkfp_inferences_total", model="iris") == 12
    assert _value(registry, "greenkfp_inference_cpu_seconds_total", model="iris") == pytest.approx(0.03)
    assert _value(registry, "greenkfp_inference_batch_requests_sum", model="iris") == 4
    assert _value(registry, "greenkfp_inference_batch_requests_count", model="iris") == 2
    assert _value(registry, "greenkfp_inference_batch_requests_bucket", model="iris", le="1.0") == 1
    assert _value(registry, "greenkfp_inference_batch_rows_sum", model="iris") == 12
    assert _value(registry, "greenkfp_inference_batch_rows_bucket", model="iris", le="6.0") == 1
    assert _value(registry, "greenkfp_inference_batch_rows_bucket", model="iris", le="8.0") == 2
    assert _value(registry, "greenkfp_inference_energy_joules_total", model="iris", method="modeled") == \
        pytest.approx(0.54)
    # grams = kWh x gCO2eq/kWh
    assert _value(registry, "greenkfp_inference_carbon_grams_total", model="iris", method="modeled") == \
        pytest.approx(0.54 / 3.6e6 * 200.0)
    # per 1,000 inferences: the energy per inference so far x 1,000 x the intensity now
    per_1000 = "greenkfp_inference_carbon_grams_per_1000_inferences"
    assert _value(registry, per_1000, model="iris", method="modeled") == pytest.approx(0.54 / 12 * 1000 / 3.6e6 * 200)
    metrics.grid.value = 100.0  # at the current intensity, not the one of the runs
    assert _value(registry, per_1000, model="iris", method="modeled") == pytest.approx(0.54 / 12 * 1000 / 3.6e6 * 100)
    assert J_PER_KWH == 3.6e6


def test_no_carbon_is_charged_while_the_intensity_is_unknown(tmp_path):
    registry, metrics = _metrics(tmp_path)
    metrics.record_batch(1, 1, RunReport(cpu_s=0.01, wall_s=0.01, energy_j=1.0, method="modeled"))
    assert _value(registry, "greenkfp_inference_energy_joules_total", model="iris", method="modeled") == 1.0
    assert _value(registry, "greenkfp_inference_carbon_grams_total", model="iris", method="modeled") == 0
    assert math.isnan(_value(registry, "greenkfp_inference_carbon_grams_per_1000_inferences", model="iris",
                             method="modeled"))
    metrics.grid.value = 360.0
    metrics.record_batch(1, 1, RunReport(cpu_s=0.01, wall_s=0.01, energy_j=1.0, method="modeled"))
    # the first run's energy is not charged after the fact
    assert _value(registry, "greenkfp_inference_carbon_grams_total", model="iris", method="modeled") == \
        pytest.approx(1.0 / 3.6e6 * 360.0)


def test_a_run_measured_another_way_gets_its_own_method_series(tmp_path):
    """A report of another method than the account's (RAPL became readable, or not) is counted
    under its own method label, and the account's series keep theirs."""
    registry, metrics = _metrics(tmp_path)
    metrics.grid.value = 100.0
    metrics.record_batch(1, 2, RunReport(cpu_s=0.01, wall_s=0.01, energy_j=2.0, method="measured"))
    metrics.record_batch(1, 2, RunReport(cpu_s=0.01, wall_s=0.01, energy_j=4.0, method="measured"))
    metrics.record_batch(1, 2, RunReport(cpu_s=0.01, wall_s=0.01, energy_j=1.0, method="modeled"))
    joules = "greenkfp_inference_energy_joules_total"
    carbon = "greenkfp_inference_carbon_grams_total"
    assert _value(registry, joules, model="iris", method="measured") == 6.0
    assert _value(registry, joules, model="iris", method="modeled") == 1.0
    assert _value(registry, carbon, model="iris", method="measured") == pytest.approx(6.0 / 3.6e6 * 100)
    assert _value(registry, carbon, model="iris", method="modeled") == pytest.approx(1.0 / 3.6e6 * 100)


def test_the_grid_gauges_follow_the_last_successful_fetch(tmp_path):
    """The intensity gauge is the embedded data's value for now; its age counts from the fetch."""
    registry, metrics = _metrics(tmp_path, region="DE-LU")
    before = time.time()
    assert metrics.grid.fetch() is True
    moment = datetime.now(timezone.utc)
    estimate = intensity_over("DE-LU", moment, moment)  # the same hour's value (unless the hour just turned)
    value = _value(registry, "greenkfp_grid_intensity_grams_per_kilowatt_hour", region="DE-LU", provider="embedded")
    assert value == metrics.grid.value
    assert value == pytest.approx(estimate.gco2_per_kwh) or moment.minute == 0
    # "<provider> <kind of data>: <basis>"
    assert metrics.grid.source.startswith("embedded replayed historical: embedded replayed historical intensity of "
                                          "the 1:00:00 slot containing ")
    assert before <= metrics.grid.updated_at <= time.time()
    age = _value(registry, "greenkfp_grid_intensity_age_seconds", region="DE-LU", provider="embedded")
    assert 0 <= age <= time.time() - before + 1
    metrics.grid.updated_at -= 120  # two minutes later
    age = _value(registry, "greenkfp_grid_intensity_age_seconds", region="DE-LU", provider="embedded")
    assert 120 <= age <= 121 + time.time() - before


def test_a_failed_refresh_is_counted_and_keeps_the_last_value(tmp_path, caplog):
    """The refresh failures counter is the grid's on_failure; the value and its time stay."""
    region = "ZZ  nowhere\n  at all"  # spaces and a line break: the error kept is on one line
    registry, metrics = _metrics(tmp_path, region=region)
    metrics.grid.value = 123.0  # an earlier value
    with caplog.at_level(logging.WARNING, logger="greenkfp.serving"):
        assert metrics.grid.fetch() is False
        assert metrics.grid.fetch() is False
    assert metrics.grid.failures == 2 and metrics.grid.value == 123.0 and math.isnan(metrics.grid.updated_at)
    assert _value(registry, "greenkfp_grid_intensity_refresh_failures_total", region=region,
                  provider="embedded") == 2
    assert metrics.grid.last_error.startswith("region 'ZZ nowhere\\n at all' is not in the embedded data")
    warned = [r.getMessage() for r in caplog.records if "failed (keeping the last value)" in r.getMessage()]
    assert len(warned) == 2 and warned[0].startswith(f"grid intensity of {region} from embedded failed")
    assert warned[0].endswith(metrics.grid.last_error)


def test_the_error_kept_is_at_most_300_characters():
    grid = GridIntensity("GB", provider="uk", provider_options={
        "uk": {"base_url": f"http://127.0.0.1:{free_port()}/" + "p" * 400, "retry": {"attempts": 1}}})
    assert grid.fetch() is False
    assert len(grid.last_error) == 300 and grid.last_error.startswith("uk (region 'GB'): cannot reach http://")


def test_the_intensity_is_logged_when_first_known_and_when_its_kind_changes(tmp_path, caplog):
    grid = GridIntensity("GB")
    assert (grid.region, grid.provider, grid.provider_options, grid.refresh_s) == ("GB", "embedded", None, 300.0)
    assert grid.failures == 0 and grid.last_error == "" and grid.source == "" and grid.on_failure is None
    with caplog.at_level(logging.INFO, logger="greenkfp.serving"):
        assert grid.fetch() is True
        assert grid.fetch() is True  # the same kind of data: not logged again
    logged = [r.getMessage() for r in caplog.records if r.name == "greenkfp.serving"]
    assert len(logged) == 1 and logged[0].startswith("grid intensity of GB: ") and "gCO2eq/kWh (embedded" in logged[0]
    caplog.clear()
    grid.source = "uk forecast: an earlier provider"
    with caplog.at_level(logging.INFO, logger="greenkfp.serving"):
        assert grid.fetch() is True
    assert len([r for r in caplog.records if r.name == "greenkfp.serving"]) == 1


def test_the_modeled_account_charges_one_busy_vcpu_per_cpu_second(tmp_path):
    account = EnergyAccount("n2-standard-4", rapl=RaplReader(tmp_path / "none"))
    assert account.method == "modeled" and account.profile.name == "n2-standard-4"
    assert EnergyAccount(rapl=RaplReader(tmp_path / "none")).profile.name == "n2-standard-4"  # the default
    one = model_energy(resolve_profile("n2-standard-4"), 100.0, 1.0, 1)
    assert account.model_detail == f"{one.cpu_detail()}; {one.ram_detail()}"
    assert "at 100.0 %" in account.model_detail and "over 1 s" in account.model_detail
    result, report = account.measure(lambda: sum(range(100_000)))
    assert result == sum(range(100_000)) and report.method == "modeled" and report.cpu_s > 0
    assert report.wall_s > 0 and report.energy_j == pytest.approx(report.cpu_s * account.watts_per_busy_core)


def _burn_in_another_thread() -> float:
    """Work done by another thread while the calling one waits: that thread's CPU seconds."""
    spent = []

    def burn():
        t0 = time.thread_time()
        sum(i * i for i in range(4_000_000))
        spent.append(time.thread_time() - t0)

    worker = threading.Thread(target=burn)
    worker.start()
    worker.join()
    return spent[0]


def test_one_thread_counts_the_calling_thread_and_more_count_the_process(tmp_path):
    """With --threads 1 ONNX Runtime runs on the calling thread: its CPU time is exact and other
    threads' work is not charged; with more, the process's CPU time is (an upper bound)."""
    for single in (EnergyAccount("c5.2xlarge", threads=1, rapl=RaplReader(tmp_path / "none")),
                   EnergyAccount("c5.2xlarge", rapl=RaplReader(tmp_path / "none"))):  # one thread by default
        burned, report = single.measure(_burn_in_another_thread)
        assert burned > 0.05 and report.cpu_s < burned / 4
    several = EnergyAccount("c5.2xlarge", threads=4, rapl=RaplReader(tmp_path / "none"))
    burned, report = several.measure(_burn_in_another_thread)
    assert report.cpu_s >= burned * 0.9


def test_measured_energy_is_the_machine_s_energy_times_the_run_s_share(tmp_path, monkeypatch):
    """RAPL counts the whole machine: the run is charged its CPU seconds over wall seconds x
    logical CPUs of it, at most all of it; no CPU count known counts as one CPU."""
    from test_sci import fake_powercap, set_energy

    root = fake_powercap(tmp_path, package_uj=1_000_000, dram_uj=0)
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    account = EnergyAccount("c5.2xlarge", threads=1, rapl=RaplReader(root))
    assert account.method == "measured"

    def work():
        set_energy(root, "intel-rapl:0", 1_000_000 + 3_600_000)  # 3.6 J
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 0.05:  # busy: its CPU seconds close to its wall seconds
            pass

    _, report = account.measure(work)
    share = min(1.0, report.cpu_s / report.wall_s)  # one CPU
    assert report.method == "measured" and 0 < share <= 1
    assert report.energy_j == pytest.approx(3.6 * share)

    def sleep():  # no CPU: a share of 0
        set_energy(root, "intel-rapl:0", 10_000_000)
        time.sleep(0.05)

    _, report = account.measure(sleep)
    assert report.energy_j < 0.1 * 5.4


class _SteppingClock:
    """A CPU clock (stands in for time.process_time) that advances ``step`` seconds per reading."""

    def __init__(self, step: float):
        self.now, self.step = 1000.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_measured_share_is_capped_at_the_whole_machine(tmp_path, monkeypatch):
    """CPU seconds beyond wall seconds x CPUs (the process's other threads, with --threads > 1)
    never charge more than the machine's energy."""
    from test_sci import fake_powercap, set_energy

    root = fake_powercap(tmp_path, package_uj=0, dram_uj=0)
    monkeypatch.setattr(time, "process_time", _SteppingClock(10.0))  # 10 CPU-seconds per run
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    account = EnergyAccount("c5.2xlarge", threads=4, rapl=RaplReader(root))
    _, report = account.measure(lambda: set_energy(root, "intel-rapl:0", 7_200_000))  # 7.2 J
    assert report.cpu_s == pytest.approx(10.0) and report.wall_s < 1
    assert report.energy_j == pytest.approx(7.2)


def test_a_cpu_clock_going_back_charges_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(time, "process_time", _SteppingClock(-1.0))
    account = EnergyAccount("c5.2xlarge", threads=2, rapl=RaplReader(tmp_path / "none"))
    _, report = account.measure(lambda: None)
    assert report.cpu_s == 0.0 and report.energy_j == 0.0


#: The description Prometheus and Grafana show beside each series (its HELP line): the unit, and
#: how the figure is obtained. Changed together with the README's table of the metrics.
HELP = {
    "greenkfp_inference_requests": "Inference requests answered, by outcome (success, client_error: 4xx, "
                                   "server_error: 5xx)",
    "greenkfp_inference_errors": "Inference requests answered with an error, by kind",
    "greenkfp_inference_request_duration_seconds": "Time from a request's arrival to its answer (successful "
                                                   "inference requests), seconds",
    "greenkfp_inference_batch_requests": "Requests run together in one session.run",
    "greenkfp_inference_batch_rows": "Rows (inferences) in one session.run",
    "greenkfp_inferences": "Inferences (input rows) run successfully",
    "greenkfp_inference_cpu_seconds": "CPU time spent in session.run, seconds",
    "greenkfp_inference_energy_joules": "Energy of session.run, joules; method: measured (RAPL) or modeled (CPU "
                                        "seconds x the hardware profile's power of a busy vCPU)",
    "greenkfp_inference_carbon_grams": "Emissions of session.run, grams CO2eq (energy x the grid intensity known "
                                       "then)",
    "greenkfp_inference_carbon_grams_per_1000_inferences": "Emissions per 1,000 inferences at the current grid "
                                                           "intensity, grams CO2eq (energy per inference so far x "
                                                           "current intensity)",
    "greenkfp_inference_batch_splits": "Batches of several requests that failed and whose requests ran again one "
                                       "by one (only a request failing alone gets the error)",
    "greenkfp_batching_enabled": "1 when requests may run together in one session.run, 0 when each runs alone "
                                 "(--max-batch-size 1, or a model whose declared shapes cannot be batched)",
    "greenkfp_model_ready": "1 when the model is loaded and serving, else 0",
    "greenkfp_grid_intensity_grams_per_kilowatt_hour": "Grid carbon intensity of the serving region now, "
                                                       "gCO2eq/kWh (NaN until known)",
    "greenkfp_grid_intensity_age_seconds": "Seconds since the grid intensity was last fetched successfully (NaN: "
                                           "never)",
    "greenkfp_grid_intensity_refresh_failures": "Failed fetches of the grid intensity (the last value is kept)",
    "greenkfp_modeled_busy_core_watts": "The hardware profile's modeled power of one busy vCPU (CPU and RAM "
                                        "share), watts",
}


def test_each_series_is_described_with_its_unit_and_method(tmp_path):
    registry, _ = _metrics(tmp_path)
    described = {family.name: family.documentation
                 for family in text_string_to_metric_families(generate_latest(registry).decode())
                 if not family.name.endswith("_created")}
    assert described == HELP


def test_the_histograms_have_their_own_buckets(tmp_path):
    """Latency: fine around the 50 ms SLA (every 5 ms from 25 to 60 ms); batch sizes: powers of
    two with the steps between them, up to 1024."""
    registry, _ = _metrics(tmp_path)
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}

    def bounds(name):
        return [float(s.labels["le"]) for s in families[name].samples if s.name.endswith("_bucket")]

    latency = bounds("greenkfp_inference_request_duration_seconds")
    assert latency[-1] == math.inf and [round(b, 4) for b in latency if 0.025 <= b <= 0.06] == \
        [0.025, 0.03, 0.035, 0.04, 0.045, 0.05, 0.055, 0.06]
    assert latency[:-1] == list(LATENCY_BUCKETS_S) and latency[0] == 0.001 and latency[-2] == 2.5
    for name in ("greenkfp_inference_batch_requests", "greenkfp_inference_batch_rows"):
        assert bounds(name)[:-1] == [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128, 256, 512, 1024]


def test_the_series_made_at_the_start_are_the_model_s_own(tmp_path):
    """No series for another model or an outcome nobody answers: each label takes only its values."""
    registry, _ = _metrics(tmp_path, model="digits")
    values: dict[str, set] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            for label, value in sample.labels.items():
                if label != "le":
                    values.setdefault(label, set()).add(value)
    assert values == {"model": {"digits"}, "outcome": {"success", "client_error", "server_error"},
                      "method": {"modeled"}, "region": {"GB"}, "provider": {"embedded"},
                      "profile": {"c5.2xlarge"}}


def test_a_run_too_short_for_the_wall_clock_is_charged_no_measured_energy(tmp_path, monkeypatch):
    """RAPL's energy over a run the wall clock did not see pass is not the run's (no share of it)."""
    from test_sci import fake_powercap, set_energy

    root = fake_powercap(tmp_path, package_uj=0, dram_uj=0)
    account = EnergyAccount("c5.2xlarge", threads=1, rapl=RaplReader(root))
    monkeypatch.setattr(time, "perf_counter", lambda: 5.0)  # a clock that does not move
    _, report = account.measure(lambda: set_energy(root, "intel-rapl:0", 3_600_000))
    assert report.wall_s == 0.0 and report.energy_j == 0.0
