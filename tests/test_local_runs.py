"""The gate component and the carbon-gate pipeline through kfp's local runner.

Each test runs from a temporary directory (a component can import from the current one), and
asserts which dsl.If branch ran: a condition that fails to evaluate silently reads as False.
"""

from datetime import datetime, timedelta, timezone

import pytest

from greenkfp.components.carbon import GatePolicy, decide
from greenkfp.components.records import GateDecisionRecord, read_record
from greenkfp.pipelines.local import run_carbon_gate_locally

pytestmark = pytest.mark.slow
START = "2023-06-14T09:00:00Z"


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_pipeline_runs_the_gated_branch_in_the_greenest_window(in_tmp):
    result = run_carbon_gate_locally(
        {"regions": ["GB"], "duration_hours": 3.0, "earliest_start": START, "max_delay_hours": 12.0, "mode": "plan",
         "energy_kwh": 2.0},
        in_tmp / "root",
    )
    assert result.branch == "run"
    record = result.decision
    expected = decide(
        GatePolicy(regions=("GB",), duration=timedelta(hours=3), max_delay=timedelta(hours=12), energy_kwh=2.0,
                   earliest_start=datetime(2023, 6, 14, 9, tzinfo=timezone.utc))
    ).to_record()
    for key in ("should_run", "action", "start_at", "intensity_window_gco2_per_kwh", "savings_g", "region"):
        assert getattr(record, key) == getattr(expected, key)
    assert record.should_run is True and record.inputs.mode == "plan"


def test_pipeline_takes_the_else_branch_when_the_gate_refuses(in_tmp):
    result = run_carbon_gate_locally(
        {"regions": ["DE-LU"], "duration_hours": 1.0, "earliest_start": START, "threshold": "1", "mode": "plan"},
        in_tmp / "root",
    )
    assert result.branch == "refused"
    assert result.decision.action == "refuse" and result.decision.should_run is False


def test_fail_open_is_recorded_and_fail_closed_fails_the_run(in_tmp, monkeypatch):
    monkeypatch.delenv("CARBON_AWARE_SDK_URL", raising=False)
    args = {"regions": ["eastus"], "duration_hours": 1.0, "provider": "carbon_aware_sdk", "mode": "plan"}
    opened = run_carbon_gate_locally({**args, "on_provider_failure": "fail_open"}, in_tmp / "open")
    assert opened.branch == "run"
    assert opened.decision.failure_policy_applied == "fail_open"
    assert opened.decision.attempts[0].error_kind == "config"
    with pytest.raises(RuntimeError, match="carbon-forecast-gate"):
        run_carbon_gate_locally({**args, "on_provider_failure": "fail_closed"}, in_tmp / "closed")


def test_the_component_alone_returns_typed_outputs(in_tmp):
    from kfp import local

    from greenkfp.components import carbon_forecast_gate

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(in_tmp / "root"))
    task = carbon_forecast_gate(regions=["CA-ON", "GB"], duration_hours=2.0, earliest_start=START, max_delay_hours=6.0)
    assert task.outputs["should_run"] is True
    assert task.outputs["region"] in {"CA-ON", "GB"}
    start_at = datetime.fromisoformat(task.outputs["start_at"])
    assert timedelta(0) <= start_at - datetime(2023, 6, 14, 9, tzinfo=timezone.utc) <= timedelta(hours=6)
    assert task.outputs["delay_seconds"] == (start_at - datetime(2023, 6, 14, 9, tzinfo=timezone.utc)).total_seconds()
    record = read_record(GateDecisionRecord, task.outputs["decision"].path)
    assert record.start_at == task.outputs["start_at"]
    assert task.outputs["decision"].metadata["schema"] == GateDecisionRecord.SCHEMA
    metrics = task.outputs["metrics"].metadata
    assert metrics["should_run"] == 1.0 and metrics["savings_percent"] == pytest.approx(record.savings_percent)
    with open(task.outputs["summary"].path, encoding="utf-8") as handle:
        assert "# Carbon-forecast gate" in handle.read()
