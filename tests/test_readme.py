"""The README's examples run as written."""

import json
import re
import runpy
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(marker: str) -> str:
    """The code block that follows ``<!-- readme-example: marker -->`` in the README."""
    match = re.search(rf"<!-- readme-example: {re.escape(marker)} -->\s*```python\n(.*?)```", README.read_text(), re.S)
    assert match, f"no README example {marker!r}"
    return match.group(1)


@pytest.mark.slow
def test_the_gate_example_runs_the_gated_step_under_the_local_runner(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the local runner writes ./local_outputs; components must not import from here
    script = tmp_path / "readme_example.py"  # a file: kfp reads a component's source with inspect
    script.write_text(readme_block("gate") + "\n" + readme_block("gate-local"))
    runpy.run_path(str(script), run_name="__main__")
    (run,) = (tmp_path / "local_outputs").glob("my-team-training-*")
    trained = run / "my-training-step" / "executor_output.json"
    assert trained.exists(), f"the gated step did not run; tasks: {sorted(p.name for p in run.iterdir())}"
    start_at = json.loads(trained.read_text())["parameterValues"]["Output"]
    gate = json.loads((run / "carbon-forecast-gate" / "executor_output.json").read_text())["parameterValues"]
    assert start_at == gate["start_at"] and gate["should_run"] is True
    assert not (run / "gate-outcome").exists()


def test_the_ledger_example_prints_what_its_comments_say(tmp_path):
    """In a process of its own, as a reader runs it (its SQLite file goes in a temporary folder)."""
    import subprocess
    import sys

    block = readme_block("ledger")
    result = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    said = [line.split("#", 1)[1].strip() for line in block.splitlines() if "print(" in line and "#" in line]
    assert result.stdout.splitlines() == said
