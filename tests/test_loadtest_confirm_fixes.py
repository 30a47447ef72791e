"""Regressions from the hostile test of issue 15: a confirmed capacity passed all its probes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from greenkfp.components.serving.loadtest import Probe, search_capacity

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "loadtest_serving.py"


def test_a_capacity_that_no_step_down_confirms_is_none_not_a_rate_probed_once():
    calls: dict[float, int] = {}

    def lucky_once(rate: float) -> Probe:  # every rate above 100 passes only its first probe
        calls[rate] = calls.get(rate, 0) + 1
        good = rate <= 100 or calls[rate] == 1
        return Probe(rate, rate, 0.010 if good else 0.090, 0.0, int(rate * 5))

    found = search_capacity(lucky_once, sla_s=0.050, start_rps=50, max_rps=5000, tolerance=0.05, confirm=2)
    if found.capacity_rps is not None:
        assert found.confirmed
        assert all(p.passed for p in found.probes if p.offered_rps == found.capacity_rps)
        assert sum(p.offered_rps == found.capacity_rps for p in found.probes) >= 3
    else:
        assert not found.confirmed and "not confirmed" in found.reason
    assert found.to_dict()["confirmed"] == found.confirmed
    single = search_capacity(lucky_once, sla_s=0.050, start_rps=50, max_rps=400, tolerance=0.05)
    assert single.capacity_rps is not None and single.to_dict()["confirmed"] is False


def test_confirm_without_a_capacity_search_is_refused():
    result = subprocess.run([sys.executable, str(SCRIPT), "--confirm", "2", "--max-probes", "0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--confirm" in result.stderr and "--max-probes 0" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
