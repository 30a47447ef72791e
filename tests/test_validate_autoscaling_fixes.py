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
    sys.path.insert(0, str(SCRIPTS))
    try:
        from _bench import UsageError
        from validate_autoscaling import read_simulation
    finally:
        sys.path.remove(str(SCRIPTS))
    with pytest.raises(UsageError, match=".".join(path)):
        read_simulation(_simulation(tmp_path, path, value))
