"""The check of the autoscaling simulation against the real server (``scripts/validate_autoscaling.py``)
and the CPU limit it runs replicas under (``scripts/_cgroup.py``).

Tiny runs: 2 replicas of a small model at a few tens of requests per second for a few seconds,
through the round-robin proxy, on loopback. They need a writable cpu cgroup (root, as here and
in CI); without one they are skipped, and the scripts refuse (tested where it applies).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
SCRIPT = SCRIPTS / "validate_autoscaling.py"
sys.path.insert(0, str(SCRIPTS))
from _cgroup import CgroupError, locate  # noqa: E402

try:
    CGROUP_VERSION, CGROUP_PARENT = locate()
except CgroupError:
    CGROUP_VERSION, CGROUP_PARENT = None, None
needs_cgroup = pytest.mark.skipif(CGROUP_PARENT is None, reason="no writable cpu cgroup on this machine")


def _leftovers(pid: int) -> list[Path]:
    return sorted(CGROUP_PARENT.glob(f"greenkfp-{pid}-*")) if CGROUP_PARENT else []


def _simulation(path: Path, *, replicas=2, rps=40.0, sla_s=0.05, limit=200, capacity=100.0, schema=None) -> Path:
    """A simulation's JSON with only the keys the check reads (the shape ``greenkfp serving simulate`` writes)."""
    path.write_text(json.dumps({
        "schema": schema or "greenkfp.autoscaling_simulation/v1",
        "profile": {"capacity_rps": capacity, "sla_p95_s": sla_s, "cpu_limit_m": limit},
        "policies": {"greenkfp": {"peak": {"rps": rps, "ready_replicas": replicas}}}}))
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    from _serving import build_model

    built = build_model(tmp_path_factory.mktemp("model"), candidate="mlp-small", max_iter=50)
    return str(Path(built["dir"]) / built["files"]["int8_dynamic"])


@needs_cgroup
def test_cpu_limit_holds_a_busy_process_to_its_quota_and_is_removed_after():
    busy = "import time\nt=time.time()\nwhile time.time()-t<1.5: pass\nprint(time.process_time())"
    process = subprocess.Popen([sys.executable, str(SCRIPTS / "_cgroup.py"), "--cpu-limit-m", "100", "--",
                                sys.executable, "-c", busy], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    cpu_s = float(stdout.split()[-1])
    # 100 m for 1.5 s of wall time is 0.15 CPU-s (plus the interpreter's start, also throttled);
    # unlimited, the loop alone would use about 1.5 CPU-s
    assert cpu_s < 0.4, cpu_s
    assert _leftovers(process.pid) == []


@needs_cgroup
def test_sla_held_at_a_low_rate_with_the_load_spread_evenly_round_robin(model, tmp_path):
    out = tmp_path / "check.json"
    process = subprocess.Popen([sys.executable, str(SCRIPT), "--simulation", str(_simulation(tmp_path / "sim.json")),
                                "--model", model, "--seconds", "4", "--warmup-s", "1", "--json", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = process.communicate(timeout=180)
    assert process.returncode == 0, stdout + stderr
    report = json.loads(out.read_text())
    results, plan = report["results"], report["plan"]
    assert report["verdict"]["sla_held"] is True
    assert plan["local_replicas"] == 2 and not plan["scaled_down"] and plan["offered_rps"] == 40.0
    # every request the client counted reached a replica, and the two replicas got the same share
    counts = [r["requests"] for r in results["replicas"]]
    assert len(counts) == 2 and min(counts) > 0
    assert abs(sum(counts) - results["requests"]) <= 0.1 * results["requests"]
    assert results["spread"]["max_over_mean"] < 1.2, counts
    assert results["proxy_connections"] is not None and len(set(results["proxy_connections"].values())) == 1
    assert results["p95_ms"] <= 50 and results["error_rate"] < 0.01
    assert results["achieved_rps"] >= 0.95 * 40
    assert all(0 < r["cpu_of_limit"] <= 1.2 for r in results["replicas"])  # under the 200 m quota
    assert "Verdict: SLA held" in stdout
    assert _leftovers(process.pid) == []


@needs_cgroup
def test_sla_not_held_exits_1_and_a_scaled_down_run_offers_each_replica_its_share(model, tmp_path):
    out = tmp_path / "check.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--replicas", "3", "--rps", "60", "--sla-ms", "0.2",
                           "--cpu-limit-m", "200", "--max-local-replicas", "2", "--model", model,
                           "--seconds", "3", "--warmup-s", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert report["verdict"]["sla_held"] is False
    assert "> SLA 0.2 ms" in report["verdict"]["reason"]
    assert report["plan"]["local_replicas"] == 2 and report["plan"]["scaled_down"]
    assert report["plan"]["offered_rps"] == pytest.approx(40.0)  # P x N / R = 60 x 2 / 3
    assert "2 of the 3 replicas" in done.stderr and "Verdict: SLA NOT held" in done.stdout


@needs_cgroup
@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_load_stops_every_replica_and_removes_every_cgroup(model, tmp_path, signal_number):
    import psutil

    log = tmp_path / "stderr.txt"
    with open(log, "w") as sink:
        process = subprocess.Popen([sys.executable, str(SCRIPT), "--replicas", "2", "--rps", "20", "--sla-ms", "50",
                                    "--cpu-limit-m", "200", "--model", model, "--seconds", "60", "--warmup-s", "1"],
                                   stdout=subprocess.DEVNULL, stderr=sink)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "offering" not in log.read_text() and process.poll() is None:
            time.sleep(0.2)
        assert "offering" in log.read_text(), log.read_text()
        time.sleep(2)  # Locust is sending
        assert len(_leftovers(process.pid)) == 2
        children = psutil.Process(process.pid).children(recursive=True)
        assert len(children) >= 3  # two replicas and the proxy
        process.send_signal(signal_number)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, log.read_text()
    assert "interrupted" in log.read_text()
    assert _leftovers(process.pid) == []
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]


@pytest.mark.parametrize(("argv", "message"), [
    (["--cpu-limit-m", "5"], "--cpu-limit-m must be a whole number from 10 to 64000, got '5'"),
    (["--cpu-limit-m", "100", "--url", "http://127.0.0.1:9"], "--cpu-limit-m limits a server the script starts: not with --url"),
])
def test_loadtest_cpu_limit_bad_options_are_one_line_and_exit_2(argv, message):
    done = subprocess.run([sys.executable, str(SCRIPTS / "loadtest_serving.py"), *argv], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [f"loadtest_serving.py: {message}"], done.stderr


@pytest.mark.parametrize(("argv", "message"), [
    (["--replicas", "2", "--rps", "10"], "missing --sla-ms, --cpu-limit-m"),
    (["--replicas", "0", "--rps", "10", "--sla-ms", "50", "--cpu-limit-m", "50"], "--replicas must be a whole number"),
    (["--replicas", "2", "--rps", "10", "--sla-ms", "50", "--cpu-limit-m", "50", "--seconds", "x"],
     "--seconds must be a number"),
    (["SIM", "--replicas", "2"], "not with --replicas"),
    (["BAD_SCHEMA"], "not a simulation's JSON"),
    (["NO_PEAK"], "no policies.greenkfp.peak.ready_replicas"),
    (["NO_LIMIT"], "measured without a CPU limit"),
    (["--simulation", "/no/such.json"], "--simulation /no/such.json"),
])
def test_bad_options_are_one_line_and_exit_2(argv, message, tmp_path):
    files = {"SIM": _simulation(tmp_path / "sim.json"),
             "BAD_SCHEMA": _simulation(tmp_path / "bad.json", schema="greenkfp.loadtest/v1"),
             "NO_LIMIT": _simulation(tmp_path / "nolimit.json", limit=None)}
    (tmp_path / "nopeak.json").write_text(json.dumps({"schema": "greenkfp.autoscaling_simulation/v1",
                                                      "profile": {}, "policies": {"greenkfp": {}}}))
    files["NO_PEAK"] = tmp_path / "nopeak.json"
    argv = [a for name in argv for a in (["--simulation", str(files[name])] if name in files else [name])]
    out = tmp_path / "out.json"
    done = subprocess.run([sys.executable, str(SCRIPT), *argv, "--json", str(out)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert "Traceback" not in done.stderr and not out.exists()


def test_the_builtin_profile_is_cpu_limited_and_requests_no_more_than_its_limit():
    """The shipped replica was measured under a CPU limit, and the CPU request sized from it is
    within that limit (Kubernetes refuses a request above the limit)."""
    from greenkfp.components.serving.autoscaling import builtin_profile

    profile = builtin_profile()
    assert profile.cpu_limit_m is not None
    assert profile.cpu_request_m <= profile.cpu_limit_m
    # the SLA held at the capacity: its latency point is under the SLA
    assert dict(profile.latency_points)[profile.capacity_rps] <= profile.sla_p95_s


def test_profile_takes_the_cost_per_request_at_the_capacity_probe_when_recorded():
    from greenkfp.components.serving.autoscaling import profile_from_loadtest

    def loadtest(probe_cost):
        probes = [{"offered_rps": 100.0, "p95_s": 0.01, "passed": True, "requests_per_cpu_s": 3000.0},
                  {"offered_rps": 200.0, "p95_s": 0.02, "passed": True, "requests_per_cpu_s": probe_cost},
                  {"offered_rps": 400.0, "p95_s": 0.2, "passed": False, "requests_per_cpu_s": 9000.0}]
        return {"schema": "greenkfp.loadtest/v1", "settings": {"cpu_limit_m": 100},  # the mean (2000/s) implies 100 m
                "totals": {"requests_per_cpu_s": 2000.0},
                "capacity": {"capacity_rps": 200.0, "sla_p95_s": 0.05, "probes": probes}}

    assert profile_from_loadtest(loadtest(5000.0)).requests_per_cpu_s == 5000.0
    assert profile_from_loadtest(loadtest(5000.0)).cpu_request_m == 40  # 200 / 5000 = 40 m
    assert profile_from_loadtest(loadtest(None)).requests_per_cpu_s == 2000.0  # not recorded: the run's mean


@needs_cgroup
def test_loadtest_under_a_cpu_limit_records_it_for_the_replica_profile(model, tmp_path):
    from greenkfp.components.serving.autoscaling import profile_from_loadtest

    out = tmp_path / "loadtest.json"
    process = subprocess.Popen([sys.executable, str(SCRIPTS / "loadtest_serving.py"), "--model", model,
                                "--cpu-limit-m", "200", "--duration", "5", "--peak-rps", "20", "--start-rps", "20",
                                "--probe-seconds", "2", "--max-probes", "1", "--json", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = process.communicate(timeout=180)
    assert process.returncode == 0, stderr
    data = json.loads(out.read_text())
    assert data["settings"]["cpu_limit_m"] == 200 and data["settings"]["cpu_period_us"] == 100_000
    throttling = data["totals"]["cpu_throttling"]
    assert throttling["periods"] > 0 and 0 <= throttling["throttled_periods"] <= throttling["periods"]
    probe = data["capacity"]["probes"][0]
    assert probe["server_cpu_s"] is not None and probe["server_cpu_s"] <= 0.2 * (2 + 0.5)  # within the quota
    assert profile_from_loadtest(data).cpu_limit_m == 200
    assert _leftovers(process.pid) == []
