"""The load test's core (``components/serving/loadtest.py``) and the PromQL templates
(``components/serving/promql.py``); ``scripts/loadtest_serving.py``'s options."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from greenkfp.components.serving import promql
from greenkfp.components.serving.loadtest import (
    DAY_STAGES, LoadTestError, Probe, Sample, cpu_between, plan_day, search_capacity, stage_at, stage_stats)

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "loadtest_serving.py"


# --------------------------------------------------------------------------- the day
def test_day_stages_cover_the_run_and_peak_at_the_evening_spike():
    plan = plan_day(100, 200, 5, max_users=100)
    assert [s.name for s in plan] == ["off-peak", "morning ramp", "midday", "evening spike", "ramp down"]
    assert plan[0].start_s == 0 and plan[-1].end_s == pytest.approx(100)
    assert all(a.end_s == pytest.approx(b.start_s) for a, b in zip(plan, plan[1:]))
    peak = max(plan, key=lambda s: s.users)
    assert peak.name == "evening spike" and peak.users == 40 and peak.offered_rps == 200
    assert plan[0].users == 4 and plan[0].offered_rps == 20  # 10 % of the peak
    # a ramp offers the mean of its two levels and moves over its whole length
    ramp = plan[1]
    assert ramp.offered_rps == pytest.approx((4 + 24) / 2 * 5)
    assert ramp.spawn_rate == pytest.approx(20 / 15)
    # the shape: which stage runs when, and nothing past the end
    assert stage_at(plan, 0).name == "off-peak" and stage_at(plan, 65).name == "evening spike"
    assert stage_at(plan, 100.01) is None


def test_day_is_bounded_in_users_and_refuses_bad_settings():
    with pytest.raises(LoadTestError, match="needs 41 users, more than max users 40"):
        plan_day(60, 205, 5, max_users=40)
    for kwargs, message in [({"duration_s": 0}, "duration must be a number above 0, got 0"),
                            ({"peak_rps": float("nan")}, "peak rate must be"),
                            ({"user_rps": "x"}, "user rate must be a number above 0, got 'x'")]:
        settings = {"duration_s": 60, "peak_rps": 100, "user_rps": 5, **kwargs}
        with pytest.raises(LoadTestError, match=message):
            plan_day(settings["duration_s"], settings["peak_rps"], settings["user_rps"])
    with pytest.raises(LoadTestError, match="add up to 1"):
        plan_day(60, 100, 5, stages=DAY_STAGES[:-1])


# --------------------------------------------------------------------------- statistics
def test_stage_stats_put_requests_in_their_stage_with_exact_percentiles_and_cpu():
    plan = plan_day(10, 20, 5)  # stages end at 2, 3.5, 6, 7.5, 10 s
    rng = np.random.default_rng(0)
    samples = [Sample(t, lat, True) for t, lat in zip(rng.uniform(0, 1.99, 200), rng.uniform(0.001, 0.003, 200))]
    samples += [Sample(6.5, 0.040, True)] * 95 + [Sample(6.6, 0.090, True)] * 5 + [Sample(7.0, 0.5, False)] * 10
    samples += [Sample(10.4, 0.010, True)]  # completed after the end: the last stage's
    cpu = [(t, 0.5 * t) for t in np.arange(0, 10.5, 0.25)]  # half a core busy throughout
    stats = {s["stage"]: s for s in stage_stats(plan, samples, cpu)}
    off = stats["off-peak"]
    assert off["requests"] == 200 and off["errors"] == 0 and off["throughput_rps"] == pytest.approx(100)
    latencies_ms = np.array([s.latency_s for s in samples[:200]]) * 1000
    assert off["p95_ms"] == pytest.approx(np.percentile(latencies_ms, 95))
    assert off["server_cpu_s"] == pytest.approx(1.0) and off["requests_per_cpu_s"] == pytest.approx(200)
    spike = stats["evening spike"]
    assert spike["requests"] == 110 and spike["errors"] == 10 and spike["error_rate"] == pytest.approx(10 / 110)
    assert spike["p50_ms"] == pytest.approx(40) and spike["p99_ms"] == pytest.approx(90)  # errors excluded
    assert stats["morning ramp"]["requests"] == 0 and stats["morning ramp"]["p95_ms"] is None
    assert stats["ramp down"]["requests"] == 1


def test_cpu_between_interpolates_and_refuses_spans_it_does_not_cover():
    samples = [(0.0, 0.0), (1.0, 0.2), (2.0, 1.2)]
    assert cpu_between(samples, 0.5, 1.5) == pytest.approx(0.6)
    assert cpu_between(samples, 0.0, 3.0) is None and cpu_between(samples[:1], 0, 0) is None
    assert cpu_between(samples, -0.2, 2.2) == pytest.approx(1.2)  # within the slack: nearest samples


# --------------------------------------------------------------------------- capacity
def knee(capacity_rps: float, base_s: float = 0.005):
    """A server whose p95 grows with the load like an M/M/1 queue, saturating at ``capacity_rps``."""
    offered = []

    def measure(rate: float) -> Probe:
        offered.append(rate)
        utilisation = min(rate / capacity_rps, 0.999)
        return Probe(rate, min(rate, capacity_rps), base_s / (1 - utilisation), 0.0, int(rate * 5))

    return measure, offered


def test_capacity_search_finds_the_highest_rate_under_the_sla_within_tolerance():
    measure, offered = knee(410.0)  # p95 = 5 ms / (1 - rate/410): 50 ms at 369 req/s
    capacity = search_capacity(measure, sla_s=0.050, start_rps=20, max_rps=5000, tolerance=0.05)
    assert capacity.capacity_rps <= 369 < capacity.failed_above_rps
    assert capacity.failed_above_rps - capacity.capacity_rps <= 0.05 * capacity.capacity_rps
    assert offered[:5] == [20, 40, 80, 160, 320] and offered[5] == 640  # doubling, then bisecting
    assert [p.passed for p in capacity.probes[:5]] == [True] * 5 and "SLA 50 ms" in capacity.probes[5].reason
    # a tighter SLA gives a lower capacity
    tight = search_capacity(knee(410.0)[0], sla_s=0.010, start_rps=20, max_rps=5000, tolerance=0.05)
    assert tight.capacity_rps <= 205 < tight.failed_above_rps and tight.capacity_rps < capacity.capacity_rps


def test_a_confirmed_capacity_passed_every_probe_of_it_or_steps_down():
    """A rate at the knee that passed once by luck is not the capacity when confirmation fails."""
    calls: dict[float, int] = {}

    def flaky(rate: float) -> Probe:  # passes up to 300 req/s; 300-400 passes only its first probe
        calls[rate] = calls.get(rate, 0) + 1
        good = rate <= 300 or (rate <= 400 and calls[rate] == 1)
        return Probe(rate, rate, 0.010 if good else 0.090, 0.0, int(rate * 5))

    once = search_capacity(flaky, sla_s=0.050, start_rps=50, max_rps=5000, tolerance=0.05)
    assert 300 < once.capacity_rps <= 400  # one probe each: the lucky rate counts
    calls.clear()
    confirmed = search_capacity(flaky, sla_s=0.050, start_rps=50, max_rps=5000, tolerance=0.05, confirm=2)
    assert confirmed.capacity_rps <= 300
    assert all(p.passed for p in confirmed.probes if p.offered_rps == confirmed.capacity_rps)
    assert sum(p.offered_rps == confirmed.capacity_rps for p in confirmed.probes) >= 3
    assert confirmed.criteria["confirm"] == 2 and confirmed.failed_above_rps > confirmed.capacity_rps
    with pytest.raises(LoadTestError, match="confirm must be a whole number"):
        search_capacity(flaky, confirm=-1)


def test_capacity_search_fails_a_server_that_falls_behind_or_errs_and_stays_bounded():
    def behind(rate):  # fast answers, but never more than 100 req/s of them
        return Probe(rate, min(rate, 100.0), 0.002, 0.0, 1000)

    capacity = search_capacity(behind, start_rps=25, max_rps=1000, tolerance=0.1)
    assert capacity.capacity_rps == 100 and capacity.failed_above_rps == pytest.approx(106.25)
    assert all(p.reason.startswith("answered 100.0 of") for p in capacity.probes if not p.passed)
    erring = search_capacity(lambda rate: Probe(rate, rate, 0.002, 0.05, 1000), start_rps=10)
    assert erring.capacity_rps is None and erring.failed_above_rps == 10 and "error rate" in erring.probes[0].reason
    capped = search_capacity(lambda rate: Probe(rate, rate, 0.001, 0.0, 1000), start_rps=10, max_rps=70, max_probes=3)
    assert [p.offered_rps for p in capped.probes] == [10, 20, 40] and capped.capacity_rps == 40
    at_max = search_capacity(lambda rate: Probe(rate, rate, 0.001, 0.0, 1000), start_rps=10, max_rps=70)
    assert at_max.capacity_rps == 70 and at_max.failed_above_rps is None
    with pytest.raises(LoadTestError, match="start rate 100 must not exceed max rate 50"):
        search_capacity(behind, start_rps=100, max_rps=50)


# --------------------------------------------------------------------------- PromQL
def test_promql_templates_fill_their_selector_and_window():
    assert promql.query(promql.REQUEST_RATE, window="30s", model="digits") == \
        'sum(rate(greenkfp_inference_requests_total{model="digits"}[30s]))'
    assert promql.query(promql.ERROR_RATE) == \
        'sum(rate(greenkfp_inference_requests_total{outcome!="success"}[1m]))'
    assert promql.query(promql.P95_LATENCY, model='a"b', selector='namespace="p,q"') == (
        'histogram_quantile(0.95, sum by (le) (rate(greenkfp_inference_request_duration_seconds_bucket'
        '{model="a\\"b",namespace="p,q"}[1m])))')
    assert promql.query(promql.POWER_PER_POD, window="2m") == \
        'sum by (instance, method) (rate(greenkfp_inference_energy_joules_total{}[2m]))'
    for bad in ("30", "1 m", "-5s", ""):
        with pytest.raises(ValueError, match="window must be a Prometheus duration"):
            promql.query(promql.REQUEST_RATE, window=bad)
    with pytest.raises(ValueError, match="selector must be label matchers"):
        promql.query(promql.REQUEST_RATE, selector='namespace=prod')


# --------------------------------------------------------------------------- the script's options
@pytest.mark.parametrize("argv, message", [
    (["--duration", "2"], "--duration must be a number from 5 to 3600, got '2'"),
    (["--peak-rps", "abc"], "--peak-rps must be a number from 0.1 to 10000, got 'abc'"),
    (["--peak-rps", "1000", "--user-rps", "1", "--max-users", "10"], "needs 1000 users, more than --max-users 10"),
    (["--url", "http://example.com:80"], "--url must be http://127.0.0.1:PORT (load goes to loopback only)"),
    (["--url", "http://127.0.0.1:1", "--model", "x.onnx"], "--url tests a running server"),
    (["--server-pid", "1"], "--server-pid goes with --url"),
    (["--model", "/no/such.onnx"], "--model '/no/such.onnx': no such file"),
    (["--max-probes", "1.5"], "--max-probes must be a whole number from 0 to 50, got '1.5'"),
    (["--start-rps", "500", "--max-rps", "100"], "--start-rps 500 must not exceed --max-rps 100"),
])
def test_bad_options_are_one_line_and_exit_2(argv, message, tmp_path):
    out = tmp_path / "out.json"
    done = subprocess.run([sys.executable, str(SCRIPT), *argv, "--json", str(out)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == f"loadtest_serving.py: {done.stderr.strip().split(': ', 1)[1]}"
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not out.exists()


@pytest.mark.parametrize("argv, option", [(["--bogus"], "--bogus"), (["--rows"], "--rows")])
def test_usage_errors_are_one_line_not_the_usage(argv, option, tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and option in done.stderr, done.stderr
    assert "usage:" not in done.stderr and "Traceback" not in done.stderr


def test_a_short_day_against_greenkfp_serve_writes_every_stage_and_the_capacity(tmp_path):
    """The whole script, bounded (a 10 s day at 40 req/s peak, two 2 s probes), as a user runs it."""
    import json

    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from _serving import build_model
    finally:
        sys.path.pop(0)
    model = build_model(tmp_path / "model", candidate="mlp-small", max_iter=50)
    out = tmp_path / "loadtest.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--model", str(Path(model["dir"]) / model["files"]["int8_dynamic"]),
         "--duration", "10", "--peak-rps", "40", "--user-rps", "5", "--probe-seconds", "2", "--max-probes", "2",
         "--start-rps", "20", "--sla-ms", "500", "--json", str(out)],
        capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["schema"] == "greenkfp.loadtest/v1" and report["server"]["kind"] == "greenkfp serve"
    stages = report["stages"]
    assert [s["stage"] for s in stages] == [s.name for s in DAY_STAGES]
    assert all(s["requests"] > 0 and s["errors"] == 0 for s in stages), stages
    spike = next(s for s in stages if s["stage"] == "evening spike")
    assert spike["throughput_rps"] == pytest.approx(40, rel=0.35)  # 1.5 s of a 40 req/s stage
    assert all(s["p50_ms"] <= s["p95_ms"] <= s["p99_ms"] for s in stages)
    assert all(s["server_cpu_s"] is not None and s["server_cpu_s"] > 0 for s in stages)
    totals = report["totals"]
    assert totals["requests"] == sum(s["requests"] for s in stages) and totals["requests_per_cpu_s"] > 0
    capacity = report["capacity"]
    assert [p["offered_rps"] for p in capacity["probes"]] == [20, 40]
    assert capacity["capacity_rps"] == 40 and all(p["passed"] for p in capacity["probes"])  # a 500 ms SLA
