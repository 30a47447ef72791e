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
