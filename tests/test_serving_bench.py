"""``scripts/bench_serving.py``: bad options are one line and exit 2, before any server starts or
any virtual environment is made; the ratio's verdict respects the repeats' range."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_serving.py"


@pytest.mark.parametrize("argv, message", [
    (["--rate", "0"], "--rate must be a number from 1 to 5000, got '0'"),
    (["--rate", "1_000"], "--rate must be a number from 1 to 5000, got '1_000'"),
    (["--repeats", "2.5"], "--repeats must be a whole number from 1 to 20, got '2.5'"),
    (["--configs", "ax"], "--configs must be distinct letters of a, b, c, got 'ax'"),
    (["--configs", "aa"], "--configs must be distinct letters of a, b, c, got 'aa'"),
    (["--rate", "5000", "--seconds", "600", "--repeats", "20"], "over 2,000,000 requests"),
    (["--mlserver-workers", "-1"], "--mlserver-workers must be a whole number from 0 to 16, got '-1'"),
])
def test_bad_options_are_one_line_and_exit_2(argv, message, tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, str(SCRIPT), *argv, "--json", str(out)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("bench_serving.py: ") and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not out.exists()


def test_a_ratio_whose_range_holds_one_is_no_difference():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from bench_serving import ratio, summarize
    finally:
        sys.path.pop(0)

    def runs(*per_cpu):
        return [{"requests_per_cpu_s": v, "p95_ms": 5.0, "errors": 0, "requests": 100} for v in per_cpu]

    a, c = summarize(runs(2000, 2100, 2400), 50), summarize(runs(900, 1000, 1100), 50)
    assert ratio(a, c) == pytest.approx({"median": 2.1, "low": 2000 / 1100, "high": 2400 / 900, "verdict": "higher"})
    same = ratio(summarize(runs(1000, 1200), 50), summarize(runs(1100, 1150), 50))
    assert same["verdict"] == "no difference (inside the noise)"
    slow = summarize([{"requests_per_cpu_s": 1.0, "p95_ms": p, "errors": 0, "requests": 10} for p in (10, 60, 70)], 50)
    assert slow["meets_sla"] is False and slow["p95_ms"]["median"] == 60
