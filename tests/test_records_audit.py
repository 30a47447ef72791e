"""The records of issue 13: RunFacts (what a settlement carries beside the grams, made from the
sustainability report by ``run_facts``) and AuditBaseline (what the reduction target is measured
against). Round trips, strict reading, and the rules a type cannot say."""

import copy
import json

import pytest

from greenkfp.components.governance.client import run_facts
from greenkfp.components.records import (
    AuditBaseline,
    GateDecisionRecord,
    RecordError,
    RunFacts,
    SciEntry,
    SelectionRecord,
    SustainabilityReport,
    TrainingRecord,
    read_record,
    write_record,
)
from greenkfp.components.reporting import build_sustainability_report


def facts_dict(**changes) -> dict:
    data = {
        "schema": "greenkfp.run_facts/v1", "pipeline": "greenkfp-carbon-aware-training", "variant": "b/int8_dynamic",
        "savings": [
            {"lever": "time_shifting", "saved_g": {"estimate": 400.0, "low": 310.0, "high": 490.0},
             "method": "modeled", "basis": "gate window"},
            {"lever": "quantization", "saved_g": {"estimate": 3.0, "low": 2.5, "high": 3.5}, "method": "modeled",
             "basis": "b/fp32 vs b/int8_dynamic"},
        ],
        "promoted": True, "gate_action": "wait", "gate_refused": False, "gate_delay_hours": 3.0,
        "selected": {"name": "b/int8_dynamic", "accuracy": 0.965, "accuracy_interval": {"estimate": 0.965, "low": 0.94,
                                                                                        "high": 0.98},
                     "latency_p95_ms": 0.8},
        "baseline": {"name": "b/fp32", "accuracy": 0.97, "accuracy_interval": None, "latency_p95_ms": 1.2},
        "energy_kwh": 2.0, "energy_method": "modeled", "expected_inferences": 1e6,
    }
    data.update(changes)
    return data


def baseline_dict(**changes) -> dict:
    data = {
        "schema": "greenkfp.audit_baseline/v1", "generated_at": "2026-10-01T00:00:00Z",
        "months": ["2026-07", "2026-08", "2026-09"],
        "teams": {
            "research": {"tier": "hard", "monthly_g": {"2026-07": 100.0, "2026-08": 200.0, "2026-09": 300.0},
                         "mean_monthly_g": 200.0, "runs": 30},
            "growth": {"tier": None, "monthly_g": {"2026-07": 0.0, "2026-08": 0.0, "2026-09": 60.0},
                       "mean_monthly_g": 20.0, "runs": 2},
        },
        "target": {"reduction_percent": 30.0, "by": "2027-09"},
        "sources": {"ledger": "sqlite:///ledger.db", "kfp_host": "http://127.0.0.1:8888",
                    "cloud_exports": [{"kind": "gcp_carbon_footprint", "path": "gcp.jsonl", "rows": 12}]},
    }
    data.update(changes)
    return data


# --------------------------------------------------------------------------- RunFacts


def test_run_facts_round_trip_through_json_and_a_file(tmp_path):
    facts = RunFacts.from_dict(facts_dict())
    assert RunFacts.from_json(facts.to_json()) == facts
    write_record(facts, tmp_path / "facts.json")
    assert read_record(RunFacts, tmp_path / "facts.json") == facts
    assert facts.saving("quantization").saved_g.estimate == 3.0 and facts.saving("autoscaling") is None
    assert facts.saved_g == pytest.approx(403.0)
    assert json.loads(facts.to_json())["schema"] == "greenkfp.run_facts/v1"


@pytest.mark.parametrize("change, field, problem", [
    ({"savings": [{"lever": "cheaper_gpu", "saved_g": None, "method": "modeled", "basis": "x"}]},
     "savings[0].lever", "must be one of"),
    ({"savings": [{"lever": "quantization", "saved_g": None, "method": "guessed", "basis": "x"}]},
     "savings[0].method", "must be one of"),
    ({"savings": [{"lever": "quantization", "saved_g": None, "method": "modeled", "basis": "x"},
                  {"lever": "quantization", "saved_g": None, "method": "modeled", "basis": "y"}]},
     "savings[1].lever", "one saving per lever"),
    ({"savings": [{"lever": "quantization", "saved_g": {"estimate": 1.0, "low": 2.0, "high": 0.5},
                   "method": "modeled", "basis": "x"}]}, "savings[0].saved_g", "low <= high"),
    ({"savings": [{"lever": "quantization", "method": "modeled", "basis": "x"}]}, "savings[0].saved_g", "is missing"),
    ({"savings": [{"lever": "quantization", "saved_g": {"estimate": 5.0, "low": 1.0, "high": 2.0},
                   "method": "modeled", "basis": "x"}]}, "savings[0].saved_g.estimate", "must lie in its interval [1, 2]"),
    ({"savings": [{"lever": "quantization", "saved_g": {"estimate": 2e15, "low": 1.0, "high": 3e15},
                   "method": "modeled", "basis": "x"}]}, "savings[0].saved_g.estimate", "must be from -1e+15 to 1e+15 g"),
    ({"savings": [{"lever": "autoscaling", "saved_g": {"estimate": 0.0, "low": -2e15, "high": 1.0},
                   "method": "modeled", "basis": "x"}]}, "savings[0].saved_g.low", "must be from -1e+15 to 1e+15 g"),
    ({"selected": {"name": "x", "accuracy": 0.9, "accuracy_interval": {"estimate": 0.99, "low": 0.8, "high": 0.95}}},
     "selected.accuracy_interval.estimate", "must lie in its interval"),
    ({"gate_delay_hours": -1.0}, "gate_delay_hours", "must be >= 0"),
    ({"gate_action": "run_now", "gate_delay_hours": 2.0}, "gate_delay_hours", "must be 0 when the gate did not wait"),
    ({"gate_action": "refuse", "gate_refused": False}, "gate_refused", "exactly when gate_action is 'refuse'"),
    ({"gate_action": "wait", "gate_refused": True}, "gate_refused", "exactly when gate_action is 'refuse'"),
    ({"gate_action": "later"}, "gate_action", "must be one of"),
    ({"selected": {"name": "x", "accuracy": 97.0}}, "selected.accuracy", "fraction from 0 to 1"),
    ({"baseline": {"name": "x", "accuracy": 0.9, "latency_p95_ms": -3.0}}, "baseline.latency_p95_ms", ">= 0"),
    ({"energy_kwh": -0.1}, "energy_kwh", ">= 0"),
    ({"energy_method": "estimated"}, "energy_method", "must be one of"),
    ({"pipeline": "x" * 300}, "pipeline", "at most 256"),
    ({"pipeline": None}, "pipeline", "must be a string"),
    ({"schema": "greenkfp.run_facts/v2"}, "schema", "this version reads that schema only"),
])
def test_malformed_run_facts_name_the_field(change, field, problem):
    with pytest.raises(RecordError) as caught:
        RunFacts.from_dict(facts_dict(**change))
    assert caught.value.field == field and problem in str(caught.value)


def test_run_facts_keep_unknown_keys():
    facts = RunFacts.from_dict(facts_dict(serving={"replicas": 3}))
    assert json.loads(facts.to_json())["serving"] == {"replicas": 3}


# --------------------------------------------------------------------------- run_facts(report)


def _entry(candidate, variant, accuracy, per_item_g, latency=None):
    return SciEntry.from_dict({
        "candidate": candidate, "variant": variant, "status": "scored", "accuracy": accuracy,
        "sci": per_item_g * 1000, "sci_unit": "gCO2eq per 1,000 inferences", "energy_method": "modeled",
        "latency_p95_ms": latency,
        "report": {"sci": {"value": per_item_g * 1000, "unit": "gCO2eq per 1,000 inferences", "per_item_g": per_item_g},
                   "E": {"kwh": 1.0, "method": "modeled", "per_item_kwh": 1e-6}, "methodology": "by hand"}})


def _decision(**fields):
    data = {"schema": GateDecisionRecord.SCHEMA, "decided_at": "2026-01-01T00:00:00+00:00", "should_run": True,
            "action": "wait", "reason": "by hand", "region": "GB", "start_at": "2026-01-01T03:00:00+00:00",
            "delay_seconds": 10800.0, "intensity_now_gco2_per_kwh": 300.0, "intensity_window_gco2_per_kwh": 100.0,
            "inputs": {"regions": ["GB"], "duration_seconds": 3600.0, "provider": "embedded", "mode": "wait"}}
    data.update(fields)
    return GateDecisionRecord.from_dict(data)


def _training(name, energy_kwh, method="modeled"):
    return TrainingRecord.from_dict({
        "schema": TrainingRecord.SCHEMA, "candidate": {"name": name, "estimator": "sklearn.dummy.DummyClassifier"},
        "accuracy": 0.9, "macro_f1": 0.9, "fit_seconds": 1.0,
        "energy": {"available": True, "energy_kwh": energy_kwh, "method": method, "method_detail": "by hand"},
        "emissions": {"codecarbon_g": None, "codecarbon_basis": "by hand"}})


def _selection(chosen, accuracy_intervals=None):
    candidates = [{"name": name, "status": "front", "metrics": {"accuracy": low, "accuracy_low": low,
                                                               "accuracy_high": high}}
                  for name, (low, high) in (accuracy_intervals or {}).items()]
    return SelectionRecord.from_dict({"schema": SelectionRecord.SCHEMA, "promote": True, "chosen": chosen,
                                      "reason": "by hand", "rule": "knee", "candidates": candidates})


def _report(chosen="b/int8_dynamic", decision=None, trainings=None, selection=None):
    entries = [_entry("a", "fp32", 0.95, 2e-6, 0.5), _entry("b", "fp32", 0.97, 4e-6, 1.5),
               _entry("b", "int8_dynamic", 0.965, 1e-6, 0.7), _entry("a", "int8_dynamic", 0.94, 0.5e-6, 0.3)]
    return build_sustainability_report(decision or _decision(), trainings or [_training("a", 0.5), _training("b", 1.5)],
                                       entries, selection or _selection(chosen), expected_lifetime_inferences=1e6)


def test_run_facts_from_a_report_that_waited_and_quantized_its_baseline():
    report = _report(selection=_selection("b/int8_dynamic", {"b/int8_dynamic": (0.94, 0.98), "b/fp32": (0.95, 0.985)}))
    facts = run_facts(SustainabilityReport.from_json(report.to_json()), "training")
    assert facts.pipeline == "training" and facts.variant == "b/int8_dynamic" and facts.promoted is True
    # time shifting: 2 kWh x (300 - 100) = 400 g, with the report's interval
    shifting = facts.saving("time_shifting")
    assert shifting.saved_g.to_dict() == report.saving("training").g.to_dict()
    assert shifting.saved_g.estimate == pytest.approx(400.0) and shifting.method == "modeled"
    # the selected variant is the baseline's own model, quantized: the inference saving is quantization's
    quantized = facts.saving("quantization")
    assert quantized.saved_g.to_dict() == report.saving("inference").g.to_dict()
    assert quantized.saved_g.estimate == pytest.approx(3.0)
    assert facts.saving("model_selection") is None and facts.saving("autoscaling") is None
    assert facts.gate_action == "wait" and facts.gate_delay_hours == pytest.approx(3.0) and not facts.gate_refused
    assert facts.selected.accuracy == 0.965 and facts.selected.latency_p95_ms == 0.7
    assert facts.selected.accuracy_interval.low == 0.94 and facts.baseline.accuracy_interval.high == 0.985
    assert facts.baseline.name == "b/fp32" and facts.baseline.latency_p95_ms == 1.5
    assert facts.energy_kwh == pytest.approx(2.0) and facts.energy_method == "modeled"
    assert facts.expected_inferences == 1e6
    assert RunFacts.from_json(facts.to_json()) == facts


def test_another_model_quantized_is_model_selection_that_says_it_includes_quantization():
    facts = run_facts(_report("a/int8_dynamic"), "training")
    saving = facts.saving("model_selection")
    assert saving is not None and "includes quantization" in saving.basis
    assert facts.saving("quantization") is None
    assert saving.saved_g.estimate == pytest.approx(4.0 - 0.5)
    # no interval in the selection: none invented
    assert facts.selected.accuracy_interval is None


def test_another_model_in_fp32_is_model_selection_without_quantization():
    saving = run_facts(_report("a/fp32"), "training").saving("model_selection")
    assert saving.saved_g.estimate == pytest.approx(2.0) and "no quantization" in saving.basis


def test_plan_mode_records_no_time_shifting_saving():
    """The run did not wait: waiting would have saved 400 g, but nothing was saved."""
    decision = _decision(inputs={"regions": ["GB"], "duration_seconds": 3600.0, "provider": "embedded",
                                 "mode": "plan"})
    shifting = run_facts(_report(decision=decision), "training").saving("time_shifting")
    assert shifting.saved_g is None and "not realized" in shifting.basis and "400" in shifting.basis


def test_run_now_has_no_delay_and_measured_energy_is_measured():
    decision = _decision(action="run_now", delay_seconds=0.0, intensity_window_gco2_per_kwh=300.0)
    facts = run_facts(_report(decision=decision, trainings=[_training("a", 0.5, "measured"),
                                                            _training("b", 1.5, "measured")]), "training")
    assert facts.gate_delay_hours == 0.0 and facts.gate_action == "run_now"
    assert facts.energy_method == "measured" and facts.saving("time_shifting").method == "measured"
    # the inference figures are modeled: a saving from them is modeled
    assert facts.saving("quantization").method == "modeled"


def test_a_report_without_inference_has_no_inference_lever():
    report = build_sustainability_report(_decision(), [_training("a", 1.0)], [], None, expected_lifetime_inferences=0)
    facts = run_facts(report)
    assert facts.pipeline == "" and facts.variant is None and facts.selected is None and facts.promoted is None
    assert [s.lever for s in facts.savings] == ["time_shifting"]


# --------------------------------------------------------------------------- AuditBaseline


def test_audit_baseline_round_trips_and_computes_the_target(tmp_path):
    baseline = AuditBaseline.from_dict(baseline_dict())
    assert AuditBaseline.from_json(baseline.to_json()) == baseline
    write_record(baseline, tmp_path / "baseline.json")
    assert read_record(AuditBaseline, tmp_path / "baseline.json") == baseline
    assert baseline.teams["research"].mean_monthly_g == 200.0
    assert baseline.mean_monthly_g == pytest.approx(220.0)
    assert baseline.target_monthly_g("research") == pytest.approx(140.0)
    assert baseline.target_monthly_g() == pytest.approx(154.0)
    assert baseline.rows()[0] == ("growth", "-", 0.0, 0.0, 60.0, 20.0, 2)
    assert baseline.sources.cloud_exports[0].rows == 12


def _teams(**research):
    teams = copy.deepcopy(baseline_dict()["teams"])
    teams["research"].update(research)
    return teams


@pytest.mark.parametrize("change, field, problem", [
    ({"months": []}, "months", "at least one month"),
    ({"months": ["2026-7", "2026-08", "2026-09"]}, "months[0]", "YYYY-MM"),
    ({"months": ["2026-08", "2026-07", "2026-09"]}, "months", "ascending"),
    ({"teams": _teams(monthly_g={"2026-07": 100.0, "2026-08": 200.0})}, "teams['research'].monthly_g",
     "every baseline month"),
    ({"teams": _teams(monthly_g={"2026-07": 100.0, "2026-08": -1.0, "2026-09": 300.0})},
     "teams['research'].monthly_g['2026-08']", ">= 0"),
    ({"teams": _teams(mean_monthly_g=250.0)}, "teams['research'].mean_monthly_g", "the mean of monthly_g"),
    ({"teams": _teams(tier="medium")}, "teams['research'].tier", "must be one of"),
    ({"teams": _teams(runs=-1)}, "teams['research'].runs", ">= 0"),
    ({"target": {"reduction_percent": 0, "by": "2027-09"}}, "target.reduction_percent", "> 0 and <= 100"),
    ({"target": {"reduction_percent": 130, "by": "2027-09"}}, "target.reduction_percent", "> 0 and <= 100"),
    ({"target": {"reduction_percent": 30, "by": "2026-09"}}, "target.by", "after the last baseline month"),
    ({"target": {"reduction_percent": 30, "by": "next year"}}, "target.by", "YYYY-MM"),
    ({"generated_at": "2026-10-01T00:00:00"}, "generated_at", "time zone"),
    ({"sources": {"ledger": "postgresql+psycopg://lead:s3cret@db/ledger"}}, "sources.ledger", "password"),
])
def test_malformed_baselines_name_the_field(change, field, problem):
    with pytest.raises(RecordError) as caught:
        AuditBaseline.from_dict(baseline_dict(**change))
    assert caught.value.field == field and problem in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_a_redacted_ledger_url_is_accepted():
    data = baseline_dict(sources={"ledger": "postgresql+psycopg://lead:***@db/ledger", "kfp_host": None})
    assert AuditBaseline.from_dict(data).sources.ledger.endswith("@db/ledger")
