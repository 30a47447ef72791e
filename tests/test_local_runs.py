"""The gate component and the carbon-gate pipeline through kfp's local runner.

Each test runs from a temporary directory (a component can import from the current one), and
asserts which dsl.If branch ran: a condition that fails to evaluate silently reads as False.
"""

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from greenkfp.components.carbon import GatePolicy, decide
from greenkfp.components.records import GateDecisionRecord, read_record
from greenkfp.pipelines.local import run_carbon_gate_locally

ROOT = Path(__file__).resolve().parents[1]

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
    task = carbon_forecast_gate(regions=["CA-ON", "GB"], duration_hours=2.0, earliest_start=START, max_delay_hours=6.0,
                                mode="plan")  # a plan for a fixed earliest start: no run_id needed
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


def test_a_gate_that_could_hand_out_a_stale_decision_fails_at_once_naming_run_id(in_tmp, capfd):
    """Loaded from its YAML, as a user without greenkfp installed would: with no earliest_start
    (or in wait mode) the gate refuses to decide without the run's id, so KFP's cache can never
    serve one run's decision to the next; with the placeholder, each run's id is recorded."""
    from kfp import components, dsl, local

    gate = components.load_component_from_file(str(ROOT / "compiled" / "components" / "carbon_forecast_gate.yaml"))
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(in_tmp / "root"))
    with pytest.raises(RuntimeError):
        gate(regions=["GB"], duration_hours=1.0, mode="plan")  # earliest_start empty: "now" is not in the cache key
    assert "run_id is empty: pass run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER" in capfd.readouterr().out
    assert not list((in_tmp / "root").rglob("decision"))  # nothing was decided, nothing can be cached

    @dsl.pipeline(name="fresh-gate")
    def fresh():
        task = gate(regions=["GB"], duration_hours=1.0, mode="plan", run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER)
        task.set_caching_options(False)

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(in_tmp / "root2"))
    fresh()
    (path,) = (in_tmp / "root2").rglob("decision")
    record = read_record(GateDecisionRecord, path)
    assert record.run_id and "{{" not in record.run_id


def test_a_local_session_gives_back_the_print_kfps_runner_swapped(tmp_path):
    """kfp's local runner swaps builtins.print per task from several threads; interleaved swaps
    could leave every later print() of the process indented (it happened to the test suite)."""
    import builtins

    from greenkfp.pipelines.local import _local_session

    original = builtins.print
    with _local_session(tmp_path):
        builtins.print = lambda *args, **kwargs: original("    ", *args, **kwargs)  # what a lost restore leaves
    assert builtins.print is original
