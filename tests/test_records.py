"""The records that cross step boundaries: round trips, strict reading, renderings."""

import json
from datetime import datetime, timedelta, timezone

import pytest

from greenkfp.components.carbon import EmbeddedProvider, GatePolicy, decide
from greenkfp.components.records import (
    GateDecisionRecord,
    RecordError,
    SciEntry,
    SciReport,
    SelectionRecord,
    SustainabilityReport,
    TrainingRecord,
    VariantList,
    read_record,
    write_record,
)

WINDOW = {"start": "2023-06-14T12:00:00+00:00", "end": "2023-06-14T14:00:00+00:00", "average_gco2_per_kwh": 90.0}


def gate_record() -> GateDecisionRecord:
    earliest = datetime(2023, 6, 14, 9, tzinfo=timezone.utc)
    policy = GatePolicy(regions=("GB", "DE-LU"), duration=timedelta(hours=2), max_delay=timedelta(hours=12),
                        earliest_start=earliest, energy_kwh=2.0)
    return decide(policy, providers={"embedded": EmbeddedProvider()}, clock=lambda: earliest).to_record()


def training_dict() -> dict:
    return {
        "schema": "greenkfp.training/v1",
        "candidate": {"name": "logreg", "estimator": "sklearn.linear_model.LogisticRegression", "params": {"C": 1.0}},
        "model": {"framework": "scikit-learn", "classes": [0, 1]},
        "accuracy": 0.95, "macro_f1": 0.94, "fit_seconds": 1.5, "train_rows": 100, "test_rows": 50,
        "energy": {"available": True, "reason": None, "method": "modeled", "method_detail": "TDP model",
                   "energy_kwh": 1e-5, "uncertainty": "Modeled energy: the error band of the TDP model",
                   "cpu_energy_kwh": 8e-6, "units": {"energy": "kWh"}},
        "emissions": {"codecarbon_g": 0.002, "codecarbon_basis": "yearly average", "hourly_g": 0.0015,
                      "hourly_basis": "embedded historical intensity of GB over the fit's hours",
                      "hourly_pricing": {"region": "GB"}, "hourly_unavailable_reason": None},
        "units": {"energy": "kWh"},
    }


def variant_dict(name: str, produced: bool = True) -> dict:
    return {
        "schema": "greenkfp.quantization/v1", "name": name, "produced": produced,
        "reason": None if produced else "nothing to quantize", "path": f"/x/{name}.onnx" if produced else None,
        "file": f"{name}.onnx" if produced else None, "precision": "float32", "method": "skl2onnx",
        "opset": 17 if produced else None, "opset_imports": {"ai.onnx": 17} if produced else None,
        "size_bytes": 2048 if produced else None, "size_ratio_vs_fp32": 1.0 if produced else None,
        "accuracy": 0.95 if produced else None, "original_accuracy": 0.95,
        "accuracy_change_points": 0.0 if produced else None, "agreement_rate": 1.0 if produced else None,
        "max_probability_diff": 1e-7 if produced else None, "eligible": produced,
        "eligibility_reason": "within tolerance" if produced else "not produced", "tolerance_points": 1.0,
        "source_path": "/x/logreg.skops", "source_format": "skops", "source_estimator": "LogisticRegression",
        "test_rows": 50, "calibration_rows": None, "per_channel": None, "sha256": "ab" if produced else None,
        "build_seconds": 0.1, "notes": [],
    }


def sci_dict(variant: str, scored: bool = True) -> dict:
    entry = {"schema": "greenkfp.sci_evaluation/v1", "candidate": "logreg", "variant": variant,
             "precision": "float32", "accuracy": 0.95, "accuracy_change_points": 0.0, "size_bytes": 2048,
             "training_emissions_g": 0.0015, "training_emissions_basis": "hourly grid"}
    if not scored:
        return {**entry, "status": "skipped", "reason": "nothing to quantize"}
    report = {"schema": "greenkfp.sci_report/v1", "subject": f"logreg/{variant}",
              "sci": {"value": 0.002, "unit": "gCO2eq per 1,000 inferences", "per_item_g": 2e-6},
              "E": {"kwh": 1e-6, "method": "modeled", "per_item_kwh": 1e-9, "pue": 1.0},
              "I": {"g_per_kwh": 200.0}, "M": {"g": 1e-4}, "R": {"count": 1.0},
              "software_boundary": {"included": ["cpu"], "excluded": ["network"]}, "methodology": "SCI",
              "hardware_profile": {"name": "n2-standard-4"}, "uncertainty": None,
              "benchmark": {"latency_ms": {"p50": 0.1, "p95": 0.2, "p99": 0.3}, "batch_rows_per_s": 1e5},
              "lifecycle": None}
    return {**entry, "status": "scored", "sci": 0.002, "sci_unit": "gCO2eq per 1,000 inferences",
            "energy_per_inference_kwh": 1e-9, "energy_method": "modeled", "latency_p50_ms": 0.1,
            "latency_p95_ms": 0.2, "latency_p99_ms": 0.3, "throughput_rows_per_s": 1e5, "intensity_g_per_kwh": 200.0,
            "intensity_basis": "given", "lifecycle": None, "report": report}


def selection_dict() -> dict:
    return {
        "schema": "greenkfp.selection/v1", "promote": True, "chosen": "logreg/fp32", "chosen_model_uri": "/x/fp32.onnx",
        "chosen_metrics": {"accuracy": 0.95}, "reason": "knee", "rule": "knee", "rule_definition": "closest",
        "score_direction": "lower is better", "tie_break": "name", "weights": None, "primary": "accuracy",
        "objectives": [{"name": "accuracy", "direction": "max"}], "constraints": {"min_accuracy": None},
        "accuracy_reference": None, "normalization": {}, "front": ["logreg/fp32"], "scores": {"logreg/fp32": 0.0},
        "excluded": [{"name": "logreg/fp16", "status": "ineligible", "reasons": ["not scored"]}],
        "counts": {"candidates": 2, "chosen": 1, "ineligible": 1},
        "candidates": [{"name": "logreg/fp32", "model_uri": "/x/fp32.onnx", "status": "chosen", "on_front": True,
                        "eligible": True, "eligibility_reason": None, "reasons": [], "violations": [],
                        "dominated_by": [], "metrics": {"accuracy": 0.95}, "normalized": {"accuracy": 1.0},
                        "score": 0.0, "metadata": {"variant": "fp32"}}],
        "units": {"sci": "g CO2eq per functional unit"},
    }


RECORDS = {
    "gate": lambda: gate_record(),
    "training": lambda: TrainingRecord.from_dict(training_dict()),
    "variants": lambda: VariantList.from_list([variant_dict("fp32"), variant_dict("int8_dynamic", produced=False)]),
    "sci": lambda: SciReport.from_list([sci_dict("fp32"), sci_dict("int8_dynamic", scored=False)]),
    "selection": lambda: SelectionRecord.from_dict(selection_dict()),
}


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_every_record_round_trips_through_json_and_a_file(name, tmp_path):
    record = RECORDS[name]()
    again = type(record).from_json(record.to_json())
    assert again == record
    assert again.to_json() == record.to_json()  # byte-identical, unknown keys included
    assert read_record(type(record), write_record(record, tmp_path / "record.json")) == record


def test_the_json_shape_is_today_s():
    """Key for key the dicts the steps wrote before the records (existing outputs stay readable)."""
    assert json.loads(TrainingRecord.from_dict(training_dict()).to_json()) == training_dict()
    assert json.loads(SelectionRecord.from_dict(selection_dict()).to_json()) == selection_dict()
    entries = [sci_dict("fp32"), sci_dict("int8_dynamic", scored=False)]
    assert json.loads(SciReport.from_list(entries).to_json()) == entries
    variants = [variant_dict("fp32"), variant_dict("fp16", produced=False)]
    assert json.loads(VariantList.from_list(variants).to_json()) == variants


def test_sustainability_report_round_trips():
    from test_flagship import _decision, _entry, _selection, _training

    from greenkfp.components.reporting import build_sustainability_report

    report = build_sustainability_report(
        _decision(intensity_now_gco2_per_kwh=300.0, intensity_window_gco2_per_kwh=100.0),
        [_training("a", 1.0)], [_entry("a", "fp32", 0.9, 1e-6)], _selection("a/fp32"),
        expected_lifetime_inferences=10)
    assert SustainabilityReport.from_json(report.to_json()) == report
    assert "unavailable_reason" not in json.loads(report.to_json())["training"]  # only when unavailable


def test_unknown_keys_are_kept():
    data = training_dict()
    data["energy"]["gpu_model"] = "none"
    data["added_elsewhere"] = {"x": 1}
    record = TrainingRecord.from_dict(data)
    assert record.energy.extra["gpu_model"] == "none"
    assert json.loads(record.to_json()) == data


@pytest.mark.parametrize(("change", "field", "problem"), [
    (lambda d: d.pop("accuracy"), "accuracy", "is missing"),
    (lambda d: d["energy"].pop("method"), "energy.method", "is missing"),
    (lambda d: d.update(accuracy="high"), "accuracy", "must be a number, got 'high'"),
    (lambda d: d.update(accuracy=True), "accuracy", "must be a number, got True"),
    (lambda d: d["candidate"].update(name=3), "candidate.name", "must be a string, got 3"),
    (lambda d: d["energy"].update(energy_kwh="1"), "energy.energy_kwh", "must be a number or null, got '1'"),
    (lambda d: d.update(emissions=[]), "emissions", "must be an object (TrainingEmissions), got []"),
    (lambda d: d.update(schema="greenkfp.training/v0"), "schema", "this version reads that schema only"),
    (lambda d: d.pop("schema"), "schema", "is missing"),
])
def test_a_malformed_training_record_names_the_field_and_the_value(change, field, problem):
    data = training_dict()
    change(data)
    with pytest.raises(RecordError, match="TrainingRecord") as info:
        TrainingRecord.from_dict(data)
    assert info.value.field == field
    assert f"field {field!r}" in str(info.value) and problem in str(info.value)


def test_errors_name_nested_list_fields_and_the_file(tmp_path):
    entries = [sci_dict("fp32"), sci_dict("int8_dynamic")]
    entries[1]["report"]["sci"]["per_item_g"] = None
    path = tmp_path / "sci.json"
    path.write_text(json.dumps(entries))
    with pytest.raises(RecordError, match=r"SciReport \(in .*sci.json\): field '\[1\].report.sci.per_item_g' "
                                          r"must be a number, got None"):
        read_record(SciReport, path)
    record = gate_record().to_dict()
    record["regions"][1]["best_window"].pop("start")
    with pytest.raises(RecordError, match=r"field 'regions\[1\].best_window.start' is missing"):
        GateDecisionRecord.from_dict(record)


def test_an_older_schema_version_in_a_list_is_refused_by_position():
    entries = [variant_dict("fp32"), {**variant_dict("fp16"), "schema": "greenkfp.quantization/v0"}]
    with pytest.raises(RecordError, match=r"field '\[1\].schema' must be 'greenkfp.quantization/v1'.*got "
                                          r"'greenkfp.quantization/v0'"):
        VariantList.from_list(entries)
    with pytest.raises(RecordError, match="must be a JSON list"):
        VariantList.from_json('{"schema": "greenkfp.quantization/v1"}')
    with pytest.raises(RecordError, match="is not JSON"):
        SciReport.from_json("not json")


def test_records_are_frozen():
    record = RECORDS["training"]()
    with pytest.raises(AttributeError):
        record.accuracy = 1.0


def test_renderings():
    gate = gate_record()
    assert gate.markdown().startswith("# Carbon-forecast gate") and "## Regions" in gate.markdown()
    assert dict(gate.rows())["region"] == gate.region and gate.metrics()["should_run"] == 1.0
    assert [row[0] for row in gate.region_rows()] == ["GB", "DE-LU"]
    training = RECORDS["training"]()
    assert "# Training: logreg" in training.markdown() and "Modeled energy" in training.markdown()
    assert training.row()[0] == "logreg" and training.emissions_g == (0.0015, training.emissions_g[1])
    variants = RECORDS["variants"]()
    assert "| fp32 | float32 |" in variants.markdown() and variants.metrics()["fp32_eligible"] == 1.0
    assert variants.get("int8_dynamic").why_not == "nothing to quantize"
    sci = RECORDS["sci"]()
    assert sci.metrics() == {"fp32_sci": 0.002, "fp32_energy_per_inference_kwh": 1e-9, "fp32_latency_p50_ms": 0.1,
                             "fp32_latency_p95_ms": 0.2, "fp32_latency_p99_ms": 0.3,
                             "fp32_throughput_rows_per_s": 1e5, "fp32_accuracy": 0.95}
    assert "skipped: nothing to quantize" in sci.markdown() and sci.best_sci() == 0.002
    assert sci.get("fp32").per_inference_g == 2e-6 and sci.get("fp32").report.hardware_name == "n2-standard-4"
    assert "n2-standard-4" in sci.notes()[0]
    selection = RECORDS["selection"]()
    assert selection.verdict == "selected logreg/fp32" and "logreg/fp16 (ineligible)" in selection.markdown()


def test_sci_entry_omits_the_fields_of_the_other_state():
    skipped = SciEntry.from_dict(sci_dict("fp16", scored=False))
    assert "sci" not in skipped.to_dict() and "report" not in skipped.to_dict()
    assert skipped.reason == "nothing to quantize" and not skipped.scored


@pytest.mark.parametrize("change, field", [
    ({"start_at": "garbage"}, "start_at"),
    ({"start_at": "2026-01-01T00:00:00"}, "start_at"),
    ({"delay_seconds": -5}, "delay_seconds"),
    ({"action": "explode"}, "action"),
])
def test_a_gate_record_that_makes_no_sense_is_refused_naming_the_field(tmp_path, change, field):
    from greenkfp.components.carbon import GatePolicy, decide
    from datetime import datetime, timedelta, timezone

    start = datetime(2023, 6, 14, 9, tzinfo=timezone.utc)
    record = decide(GatePolicy(regions=("GB",), duration=timedelta(hours=1)), clock=lambda: start).to_record()
    data = {**record.to_dict(), **change}
    with pytest.raises(RecordError, match=field):
        GateDecisionRecord.from_dict(data)


def test_nan_deep_nesting_and_binary_files_are_record_errors(tmp_path):
    from greenkfp.components.records import read_record

    nested = tmp_path / "nested.json"
    nested.write_text("[" * 100_000)
    binary = tmp_path / "binary.json"
    binary.write_bytes(bytes(range(256)))
    for path in (nested, binary):
        with pytest.raises(RecordError):
            read_record(GateDecisionRecord, path)
    start = datetime(2023, 6, 14, 9, tzinfo=timezone.utc)
    data = decide(GatePolicy(regions=("GB",), duration=timedelta(hours=1)), clock=lambda: start).to_record().to_dict()
    with pytest.raises(RecordError, match="delay_seconds"):
        GateDecisionRecord.from_json(json.dumps({**data, "delay_seconds": float("nan")}))  # the JSON holds NaN
