"""Regressions from the hostile test of issue 15: scripts/validate_autoscaling.py and its helpers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _run(script: str, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPTS / script), *argv], capture_output=True, text=True,
                          timeout=timeout)


def _one_line(result: subprocess.CompletedProcess, *words: str) -> None:
    said = result.stderr.strip()
    assert "Traceback" not in said and len(said.splitlines()) == 1, said
    assert all(w in said for w in words), said


@pytest.mark.parametrize("script", ["validate_autoscaling.py", "loadtest_serving.py"])
def test_a_json_path_that_cannot_be_written_is_refused_before_the_run(tmp_path, script):
    a_file = tmp_path / "f"
    a_file.write_text("x")
    options = ["--replicas", "1", "--rps", "10", "--sla-ms", "50", "--cpu-limit-m", "50"] \
        if script == "validate_autoscaling.py" else ["--duration", "5", "--max-probes", "0"]
    for bad, word in ((tmp_path, "folder"), (a_file / "x.json", "is a file")):
        result = _run(script, *options, "--json", str(bad))
        assert result.returncode == 2
        _one_line(result, "--json", word)


def test_the_shared_check_accepts_a_new_file_in_a_new_folder(tmp_path):
    sys.path.insert(0, str(SCRIPTS))
    try:
        from _bench import UsageError, check_json_path, make_json_folder
    finally:
        sys.path.remove(str(SCRIPTS))
    target = tmp_path / "new" / "deeper" / "x.json"
    assert check_json_path(str(target)) == target
    assert "created" in make_json_folder(target) and target.parent.is_dir()
    with pytest.raises(UsageError, match="folder"):
        check_json_path(str(tmp_path))


def _simulation(tmp_path: Path, path: tuple[str, ...], value) -> Path:
    data = {"schema": "greenkfp.autoscaling_simulation/v1",
            "policies": {"greenkfp": {"peak": {"rps": 1000.0, "ready_replicas": 4}}},
            "profile": {"sla_p95_s": 0.05, "cpu_limit_m": 50, "capacity_rps": 250.0}}
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    out = tmp_path / "simulation.json"
    out.write_text(json.dumps(data))
    return out


@pytest.mark.parametrize("path,value", [
    (("policies", "greenkfp", "peak", "rps"), None), (("profile", "sla_p95_s"), {}),
    (("profile", "capacity_rps"), [250]), (("profile", "cpu_limit_m"), "40"),
    (("policies", "greenkfp", "peak", "ready_replicas"), True)])
def test_a_simulation_value_that_is_not_a_json_number_is_one_line_naming_it(tmp_path, path, value):
    # a subprocess: importing the script here would let Locust monkey-patch the test process
    result = _run("validate_autoscaling.py", "--simulation", str(_simulation(tmp_path, path, value)), timeout=60)
    assert result.returncode == 2
    _one_line(result, ".".join(path), "JSON number")


def _alive(pid: int) -> bool:
    import os

    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_gone(pid: int, seconds: float = 10) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


# A parent that starts a child the way the scripts start servers, prints the child's pid (and its
# cgroup when limited), then waits to be SIGKILLed.
_PARENT = r"""
import subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from _cgroup import cpu_limit, die_with_parent
limited = sys.argv[2] == "limited"
guard = sys.argv[3] == "guard"
stack = cpu_limit(100) if limited else None
limit = stack.__enter__() if limited else None
command = ["sleep", "1000"]
child = subprocess.Popen(limit.wrap(command) if limit else command, start_new_session=True,
                         preexec_fn=die_with_parent() if guard else None)
time.sleep(0.3)
print(child.pid, limit.path if limit else "", flush=True)
time.sleep(1000)
"""


def _sigkilled_parent(limited: bool, guard: bool) -> tuple[int, str]:
    import signal

    parent = subprocess.Popen([sys.executable, "-c", _PARENT, str(SCRIPTS), "limited" if limited else "plain",
                               "guard" if guard else "none"], stdout=subprocess.PIPE, text=True)
    pid, _, cgroup = parent.stdout.readline().strip().partition(" ")
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    return int(pid), cgroup


def test_a_server_dies_with_its_sigkilled_parent():
    child, _ = _sigkilled_parent(limited=False, guard=True)
    assert _wait_gone(child), "the child outlived its SIGKILLed parent"


def test_the_next_run_kills_and_removes_what_a_sigkilled_run_left_in_its_cgroups():
    import os
    import signal

    sys.path.insert(0, str(SCRIPTS))
    try:
        from _cgroup import CgroupError, cpu_limit, locate
    finally:
        sys.path.remove(str(SCRIPTS))
    try:
        locate()
    except CgroupError:
        pytest.skip("no writable cpu cgroup here")
    child, cgroup = _sigkilled_parent(limited=True, guard=False)  # no guard: the child survives the parent
    try:
        assert _alive(child) and Path(cgroup).is_dir()
        with cpu_limit(100):  # the next run
            pass
        assert _wait_gone(child), "a process left in a stale greenkfp cgroup still runs"
        assert not Path(cgroup).exists(), "the stale cgroup is still there"
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)


def test_the_proxy_on_a_taken_or_impossible_port_says_so_in_one_line():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for bad in (str(port), "99999"):
            result = _run("_roundrobin.py", "--port", bad, "--backend", "127.0.0.1:1", timeout=20)
            assert result.returncode == 2
            _one_line(result, "--port", bad)


def test_a_machine_failure_has_its_own_exit_code_and_one_line():
    # 64 cores per replica fit on no machine this runs on: a machine failure, not 'SLA not held'
    result = _run("validate_autoscaling.py", "--replicas", "1", "--rps", "20", "--sla-ms", "50",
                  "--cpu-limit-m", "64000", "--seconds", "2", "--warmup-s", "0", timeout=60)
    assert result.returncode == 3, result.stderr
    _one_line(result, "validate_autoscaling.py")
    assert "^^^" not in result.stderr and 'File "' not in result.stderr


def test_a_run_too_short_to_judge_is_refused_up_front():
    result = _run("validate_autoscaling.py", "--replicas", "1", "--rps", "0.5", "--sla-ms", "50", "--cpu-limit-m", "50",
                  "--seconds", "2", timeout=30)
    assert result.returncode == 2
    _one_line(result, "--seconds", "--rps")
