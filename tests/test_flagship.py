"""The flagship pipeline end to end through the local runner (kept small), and the
sustainability report's arithmetic."""

from pathlib import Path

import pytest

from greenkfp.components.records import (
    GateDecisionRecord,
    SciEntry,
    SelectionRecord,
    SustainabilityReport,
    TrainingRecord,
    read_record,
)
from greenkfp.components.reporting import build_sustainability_report, sustainability_html

CANDIDATES = [
    {"name": "logreg", "estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 300}},
    {"name": "mlp", "estimator": "sklearn.neural_network.MLPClassifier",
     "params": {"hidden_layer_sizes": [32], "max_iter": 300, "random_state": 0}},
]


@pytest.mark.slow
def test_flagship_pipeline_end_to_end_and_the_report_adds_up(tmp_path, monkeypatch, start_gatekeeper):
    """With a gatekeeper_url: the run reserves its estimate first and settles what it emitted at the end."""
    from conftest import TOKENS

    from greenkfp.components.governance.client import run_emissions
    from greenkfp.pipelines.local import run_training_locally
    from greenkfp.pipelines.training import PIPELINE_NAME

    monkeypatch.chdir(tmp_path)
    gatekeeper = start_gatekeeper("http://127.0.0.1:9")  # the admission API only: no KFP behind it here
    period = __import__("datetime").datetime.now(__import__("datetime").timezone.utc).strftime("%Y-%m")
    gatekeeper.core.ledger.set_limit("ml", period, 1e6, "hard", actor="lead")
    monkeypatch.setenv("GREENKFP_GATEKEEPER_TOKEN", TOKENS["ml"])  # the budget steps' token (a secret on Kubeflow)
    result = run_training_locally(
        {"dataset": "breast_cancer", "candidates": CANDIDATES, "mode": "plan", "regions": ["GB", "DE-LU"],
         "earliest_start": "2023-06-14T09:00:00Z", "max_seconds_per_variant": 1.0,
         "expected_lifetime_inferences": 1e6, "selection_constraints": {"max_accuracy_drop_points": 5.0},
         "gatekeeper_url": gatekeeper.url},
        tmp_path / "root",
    )
    decision, report, selection = result.decision, result.report, result.selection
    # the budget's branch ran, not the other: one reservation first, its settlement at the end
    run = Path(result.run_dir)
    assert (run / "carbon-budget-gate").is_dir() and (run / "settle-carbon-budget").is_dir()
    assert not list(run.rglob("carbon-budget-off*"))
    entries = {e.kind: e for e in gatekeeper.core.ledger.entries(team="ml")}
    assert entries["decision"].action == "granted" and entries["decision"].pipeline == PIPELINE_NAME
    assert entries["settlement"].run_id == entries["reservation"].run_id
    assert entries["settlement"].amount_g == pytest.approx(run_emissions(report).grams)
    assert gatekeeper.core.ledger.status("ml", period).reserved_g == 0
    assert selection.promote is True and selection.chosen in selection.front
    # every variant of every candidate is accounted for in the selection record
    variants = [f"{run.name}/{v.name}" for run in result.candidates for v in run.variants]
    assert sorted(c.name for c in selection.candidates) == sorted(variants)
    # training: all fits' energy at the gate's run-now intensity, against the same energy at the window's
    # (one forecast); the fits' own hourly figures are kept beside it as a cross-check
    energy = sum(run.training.energy.energy_kwh for run in result.candidates)
    assert report.training.energy_kwh == pytest.approx(energy)
    assert report.training.scheduled_g == pytest.approx(energy * decision.intensity_now_gco2_per_kwh)
    hourly = sum(run.training.emissions.hourly_g for run in result.candidates)
    assert report.training.optimized_g == pytest.approx(energy * decision.intensity_window_gco2_per_kwh)
    assert report.training.hourly_g == pytest.approx(hourly)
    assert report.training.realized is (decision.inputs.mode == "wait" or decision.action == "run_now")
    # inference: the most accurate candidate's fp32 against the selected variant
    entries = {e.name: e for run in result.candidates for e in run.sci}
    fp32 = [e for e in entries.values() if e.variant == "fp32"]
    baseline = max(fp32, key=lambda e: (e.accuracy, [-ord(c) for c in e.candidate]))
    assert report.inference.baseline.name == f"{baseline.candidate}/fp32"
    chosen = entries[selection.chosen]
    assert report.inference.optimized_g == pytest.approx(chosen.per_inference_g * 1e6)
    assert report.inference.scheduled_g == pytest.approx(baseline.per_inference_g * 1e6)
    total = report.total
    assert total.scheduled_g == pytest.approx(report.training.scheduled_g + report.inference.scheduled_g)
    assert total.optimized_g == pytest.approx(report.training.optimized_g + report.inference.optimized_g)
    assert total.saved_g == pytest.approx(total.scheduled_g - total.optimized_g)
    assert total.saved_percent == pytest.approx(100 * total.saved_g / total.scheduled_g)
    assert total.accuracy_given_up_points == pytest.approx(100 * (baseline.accuracy - chosen.accuracy))
    # one interleaved benchmark measured every variant: paired rounds, intervals, graph figures
    scored = [e for e in entries.values() if e.scored]
    assert len({e.rounds.group for e in scored}) == 1 and len({len(e.rounds.per_inference_g) for e in scored}) == 1
    for e in scored:
        assert e.sci_interval.low <= e.sci == e.sci_interval.estimate <= e.sci_interval.high
        assert e.macs > 0 and e.weight_bytes > 0
    assert entries["mlp/fp32"].macs == 30 * 32 + 32 * 1  # breast_cancer: 30 features; binary: one output unit
    assert report.saving("total").g.estimate == pytest.approx(total.saved_g)
    assert selection.baseline == f"{baseline.candidate}/fp32"
    html = Path(result.report_html).read_text()
    assert "<svg" in html and "Sustainability report" in html
    assert "<svg" in Path(result.selection_html).read_text()


def _entry(candidate, variant, accuracy, per_item_g):
    return SciEntry.from_dict({
        "candidate": candidate, "variant": variant, "status": "scored", "accuracy": accuracy,
        "sci": per_item_g * 1000, "sci_unit": "gCO2eq per 1,000 inferences", "energy_method": "modeled",
        "report": {"sci": {"value": per_item_g * 1000, "unit": "gCO2eq per 1,000 inferences", "per_item_g": per_item_g},
                   "E": {"kwh": 1.0, "method": "modeled", "per_item_kwh": 1e-6}, "methodology": "by hand"}})


def _decision(**fields):
    return GateDecisionRecord.from_dict({
        "schema": GateDecisionRecord.SCHEMA, "decided_at": "2026-01-01T00:00:00+00:00", "should_run": True,
        "action": "wait", "reason": "by hand", "region": "GB", "start_at": "2026-01-01T03:00:00+00:00",
        "delay_seconds": 10800.0, "inputs": {"regions": ["GB"], "duration_seconds": 3600.0, "provider": "embedded"},
        **fields})


def _training(name, energy_kwh):
    return TrainingRecord.from_dict({
        "schema": TrainingRecord.SCHEMA, "candidate": {"name": name, "estimator": "sklearn.dummy.DummyClassifier"},
        "accuracy": 0.9, "macro_f1": 0.9, "fit_seconds": 1.0,
        "energy": {"available": True, "energy_kwh": energy_kwh, "method": "modeled", "method_detail": "by hand"},
        "emissions": {"codecarbon_g": None, "codecarbon_basis": "by hand"}})


def _selection(chosen):
    return SelectionRecord(promote=True, chosen=chosen, reason="by hand", rule="knee")


def test_report_by_hand():
    decision = _decision(intensity_now_gco2_per_kwh=300.0, intensity_window_gco2_per_kwh=100.0, home_region="GB")
    trainings = [_training("a", 0.5), _training("b", 1.5)]
    entries = [_entry("a", "fp32", 0.95, 2e-6), _entry("b", "fp32", 0.97, 4e-6), _entry("b", "int8_dynamic", 0.965, 1e-6)]
    report = build_sustainability_report(decision, trainings, entries, _selection("b/int8_dynamic"),
                                         expected_lifetime_inferences=1e6)
    assert SustainabilityReport.from_json(report.to_json()) == report
    # training: 2 kWh x 300 = 600 g scheduled, x 100 = 200 g optimized
    assert report.training.scheduled_g == 600 and report.training.optimized_g == 200
    # inference: baseline b/fp32 4 g per 1e6, selected b/int8 1 g
    assert report.inference.scheduled_g == pytest.approx(4.0) and report.inference.optimized_g == pytest.approx(1.0)
    assert report.total.saved_g == pytest.approx(403.0)
    assert report.total.saved_percent == pytest.approx(100 * 403 / 604)
    assert report.total.accuracy_given_up_points == pytest.approx(0.5)
    # plan mode (the run did not wait): the UI's saving is what happened, the model choice's 3 g;
    # the 403 g had training waited under a name of its own
    assert report.training.realized is False
    assert report.metrics()["total_saved_g"] == pytest.approx(3.0)
    assert report.metrics()["total_saved_if_waited_g"] == pytest.approx(403.0)
    assert "403 g" in sustainability_html(report)
    assert "403 g" in report.markdown()


def test_report_without_a_forecast_says_so():
    decision = _decision(failure_policy_applied="fail_open")
    trainings = [_training("a", 1.0)]
    report = build_sustainability_report(decision, trainings, [_entry("a", "fp32", 0.9, 1e-6)],
                                         _selection("a/fp32"), expected_lifetime_inferences=10)
    assert report.training.scheduled_g is None and "no gate forecast" in report.training.unavailable_reason
    assert report.total.saved_g is None and report.total.unavailable_reason
    with pytest.raises(ValueError, match="expected_lifetime_inferences must be >= 0, got -1"):
        build_sustainability_report(decision, trainings, [], None, expected_lifetime_inferences=-1)


@pytest.mark.slow
def test_portable_flagship_runs_from_its_compiled_yaml(tmp_path, monkeypatch):
    """The portable build (greenkfp's code embedded, no carbon data) end to end through the
    local runner: the gate fails open without the embedded data, and is recorded so; the SCI
    uses an intensity the user gives. Its packages_to_install are already satisfied here."""
    import json
    import subprocess
    import sys

    from kfp import components, local

    out = tmp_path / "portable"
    subprocess.run([sys.executable, "-m", "greenkfp.pipelines.cli", "compile", "--portable", "--output-dir", str(out)],
                   check=True, capture_output=True, cwd=tmp_path)
    monkeypatch.chdir(tmp_path)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
    pipeline = components.load_component_from_file(str(out / "vertex" / "carbon_aware_training.yaml"))
    pipeline(dataset="iris", candidates=json.dumps(CANDIDATES), mode="plan", max_seconds_per_variant=1.0,
             intensity_basis="250", selection_constraints={"max_accuracy_drop_points": 50.0})
    (decision,) = (tmp_path / "root").glob("*/carbon-forecast-gate/decision")
    record = read_record(GateDecisionRecord, decision)
    assert record.failure_policy_applied == "fail_open"
    assert "the embedded data is not in this build" in record.attempts[0].error
    (selection,) = (tmp_path / "root").glob("*/select-pareto-model/selection_record")
    assert read_record(SelectionRecord, selection).promote is True
    (report,) = (tmp_path / "root").glob("*/sustainability-report/report_json")
    assert "no gate forecast" in read_record(SustainabilityReport, report).training.unavailable_reason
