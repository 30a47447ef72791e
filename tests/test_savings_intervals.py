"""Savings with 95 % intervals: 'no significant difference' where the interval includes zero,
and a total that noise alone cannot make negative."""

import re

import numpy as np
import pytest

from greenkfp.components.records import (
    GateDecisionRecord,
    SciEntry,
    SelectionRecord,
    SustainabilityReport,
    TrainingRecord,
)
from greenkfp.components.reporting import build_sustainability_report, sustainability_html
from greenkfp.components.stats import bootstrap_median


def _entry(candidate, variant, accuracy, rounds_g, group="interleaved-0"):
    g = np.asarray(rounds_g)
    median = bootstrap_median(g)
    return SciEntry.from_dict({
        "candidate": candidate, "variant": variant, "status": "scored", "accuracy": accuracy,
        "sci": median.estimate * 1000, "sci_unit": "gCO2eq per 1,000 inferences", "energy_method": "modeled",
        "report": {"sci": {"value": median.estimate * 1000, "unit": "gCO2eq per 1,000 inferences",
                           "per_item_g": float(g.mean())},
                   "E": {"kwh": 1.0, "method": "modeled", "per_item_kwh": 1e-6}, "methodology": "by hand"},
        "per_inference_g_interval": median.to_dict(),
        "rounds": {"group": group, "per_inference_g": g.tolist(), "energy_per_inference_kwh": (g / 100).tolist(),
                   "time_per_inference_s": (g * 1e3).tolist(), "cpu_time_per_inference_s": (g * 1e3).tolist()}})


def _decision(now=300.0, window=100.0):
    return GateDecisionRecord.from_dict({
        "schema": GateDecisionRecord.SCHEMA, "decided_at": "2026-01-01T00:00:00+00:00", "should_run": True,
        "action": "wait", "reason": "by hand", "region": "GB", "start_at": "2026-01-01T03:00:00+00:00",
        "delay_seconds": 10800.0, "inputs": {"regions": ["GB"], "duration_seconds": 3600.0, "provider": "embedded"},
        "intensity_now_gco2_per_kwh": now, "intensity_window_gco2_per_kwh": window, "home_region": "GB"})


def _training(name, energy_kwh):
    return TrainingRecord.from_dict({
        "schema": TrainingRecord.SCHEMA, "candidate": {"name": name, "estimator": "sklearn.dummy.DummyClassifier"},
        "accuracy": 0.9, "macro_f1": 0.9, "fit_seconds": 1.0,
        "energy": {"available": True, "energy_kwh": energy_kwh, "method": "modeled", "method_detail": "by hand"},
        "emissions": {"codecarbon_g": None, "codecarbon_basis": "by hand"}})


def _report(baseline_g, selected_g, *, now=300.0, window=100.0, volume=1e6, **options):
    entries = [_entry("m", "fp32", 0.95, baseline_g), _entry("m", "int8_dynamic", 0.95, selected_g)]
    selection = SelectionRecord(promote=True, chosen="m/int8_dynamic", reason="by hand", rule="knee")
    return build_sustainability_report(_decision(now, window), [_training("m", 1e-3)], entries, selection,
                                       expected_lifetime_inferences=volume, **options)


def test_a_difference_within_the_noise_is_reported_as_no_significant_difference():
    rng = np.random.default_rng(1)
    shared = rng.normal(1e-6, 1e-7, 200)  # the same machine state in both series (paired rounds)
    baseline, selected = shared + rng.normal(0, 2e-8, 200), shared + rng.normal(0, 2e-8, 200)
    # no training difference either: the gate found nothing greener
    report = _report(baseline, selected, now=200.0, window=200.0)
    inference, total = report.saving("inference"), report.saving("total")
    assert inference.g.low < 0 < inference.g.high and not inference.significant
    assert not total.significant
    assert "no significant difference" in report.saved_text
    assert "no significant difference" in report.markdown() and "no significant difference" in sustainability_html(report)
    assert SustainabilityReport.from_json(report.to_json()) == report


def test_a_real_saving_has_an_interval_excluding_zero_and_the_parts_add_up():
    rng = np.random.default_rng(2)
    shared = rng.normal(1e-6, 1e-7, 200)
    baseline, selected = shared + rng.normal(0, 1e-8, 200), 0.5 * shared + rng.normal(0, 1e-8, 200)
    report = _report(baseline, selected)
    training, inference, total = report.saving("training"), report.saving("inference"), report.saving("total")
    # training: 1 Wh x (300 - 100) g/kWh = 0.2 g, measured once: the run-to-run factor on the fits' energy
    # (lognormal, sigma 0.4) gives it about 0.42x to 2x; its percentage is the intensities' ratio, which the
    # energy cancels from
    assert training.g.estimate == pytest.approx(0.2)
    assert 0.35 < training.g.low / training.g.estimate < 0.5 and 1.8 < training.g.high / training.g.estimate < 2.3
    assert training.percent.estimate == pytest.approx(200 / 3) == training.percent.high == training.percent.low
    assert inference.significant and 0 < inference.g.low <= inference.g.estimate <= inference.g.high
    assert inference.percent.low > 40 and inference.percent.high < 60  # about half
    assert total.g.estimate == pytest.approx(training.g.estimate + inference.g.estimate)
    assert total.g.low > 0 and total.g.high - total.g.low > inference.g.high - inference.g.low  # both parts vary
    assert report.total.saved_g == pytest.approx(total.g.estimate)
    # the common run-to-run factor (5 %) scales both variants alike: grams get about +-10 %; the variants' own
    # factors (3 % each) move the ratio: about +-4 points on a 50 % saving
    assert 0.15 < (inference.g.high - inference.g.low) / inference.g.estimate < 0.35
    assert 5.0 < inference.percent.high - inference.percent.low < 11.0
    only_common = _report(baseline, selected, variant_run_to_run_uncertainty=0.0).saving("inference")
    assert only_common.percent.high - only_common.percent.low < 2.0
    # the run's own noise alone: pairing the rounds is tighter than separate intervals would make it
    own = _report(baseline, selected, run_to_run_uncertainty=0.0, variant_run_to_run_uncertainty=0.0,
                  training_run_to_run_uncertainty=0.0).saving("inference")
    separate = sum(bootstrap_median(x).high - bootstrap_median(x).low for x in (baseline, selected)) * 1e6
    assert own.g.high - own.g.low < 0.6 * separate


def test_a_noisy_negative_estimate_is_not_reported_as_a_loss():
    rng = np.random.default_rng(3)
    shared = rng.normal(1e-6, 1e-7, 40)
    baseline = shared + rng.normal(0, 5e-8, 40)
    selected = shared + 1e-8 + rng.normal(0, 5e-8, 40)  # a hair dirtier, well within the noise
    report = _report(baseline, selected, now=200.0, window=200.0)
    total = report.saving("total")
    assert total.g.estimate < 0 and not total.significant
    assert report.saved_text.startswith("no significant difference")


def test_entries_without_rounds_use_point_estimates_with_the_run_to_run_factors():
    base = _entry("m", "fp32", 0.95, [2e-6] * 3)
    chosen = _entry("m", "int8_dynamic", 0.95, [1e-6] * 3, group="another-benchmark")  # not paired
    selection = SelectionRecord(promote=True, chosen="m/int8_dynamic", reason="by hand", rule="knee")
    report = build_sustainability_report(_decision(), [_training("m", 1e-3)], [base, chosen], selection,
                                         expected_lifetime_inferences=1e6)
    inference = report.saving("inference")
    assert inference.g.estimate == pytest.approx(1.0) and inference.g.low < 1.0 < inference.g.high
    assert "point estimates" in report.savings.inference.basis and "run-to-run" in report.savings.inference.basis
    # a variant 1 % dirtier than the baseline, measured apart: inside the run-to-run noise, so inference and
    # total agree that there is no significant difference (not a zero-width, "significant" loss)
    dirtier = _entry("m", "int8_dynamic", 0.95, [2.02e-6] * 3, group="another-benchmark")
    report = build_sustainability_report(_decision(now=200.0, window=200.0), [_training("m", 1e-3)], [base, dirtier],
                                         selection, expected_lifetime_inferences=1e6)
    assert not report.saving("inference").significant and not report.saving("total").significant


def test_the_ui_metrics_carry_each_savings_interval_and_whether_it_is_significant():
    rng = np.random.default_rng(4)
    shared = rng.normal(1e-6, 1e-7, 200)
    noise = _report(shared + rng.normal(0, 2e-8, 200), shared + rng.normal(0, 2e-8, 200), now=200.0, window=200.0)
    metrics = noise.metrics()
    assert metrics["inference_saved_significant"] == 0.0 and metrics["total_saved_significant"] == 0.0
    assert metrics["total_saved_g_low"] < 0 < metrics["total_saved_g_high"]
    real = _report(shared, 0.5 * shared).metrics()
    assert real["total_saved_significant"] == 1.0
    assert real["total_saved_percent_low"] <= real["total_saved_percent"] <= real["total_saved_percent_high"]
    # plan mode (the run did not wait): training's saving is what waiting would have saved, named so
    assert real["training_saved_if_waited_g_low"] < real["training_saved_if_waited_g"] < (
        real["training_saved_if_waited_g_high"])
    assert "training_saved_g" not in real


def test_accuracy_given_up_reads_as_a_person_would_say_it():
    report = _report(np.full(5, 2e-6), np.full(5, 1e-6))
    for points, text in ((0.4, "0.40 points"), (0.0, "none (same accuracy)"),
                         (-0.4, "none (the selected variant is 0.40 points more accurate)")):
        total = report.total.__class__(**{**report.total.__dict__, "accuracy_given_up_points": points})
        assert report.__class__(**{**report.__dict__, "total": total}).accuracy_given_up_text == text
    total = report.total.__class__(**{**report.total.__dict__, "accuracy_given_up_points": -0.4,
                                      "accuracy_verdict": "no significant difference"})
    assert report.__class__(**{**report.__dict__, "total": total}).accuracy_given_up_text == \
        "none (the selected variant is 0.40 points more accurate; no significant difference)"


def test_widened_adds_a_relative_uncertainty_in_quadrature_and_names_a_bad_argument():
    from greenkfp.components.stats import Estimate, widened

    wide = widened(Estimate(100.0, 97.0, 104.0), 0.02)
    extra = 1.959963984540054 * 2.0
    assert wide.low == pytest.approx(100 - np.hypot(3.0, extra)) and wide.high == pytest.approx(100 + np.hypot(4.0, extra))
    assert widened(Estimate.exact(5.0), 0.0) == Estimate.exact(5.0)
    for bad in (-0.1, 1.0, float("nan"), True, "0.1"):
        with pytest.raises(ValueError, match=f"relative_sd must be a number within \\[0, 1\\), got {bad!r}"):
            widened(Estimate.exact(1.0), bad)


# --- strict arguments ------------------------------------------------------------------------
def _arguments(**changes):
    rng = np.random.default_rng(3)
    entries = [_entry("m", "fp32", 0.95, rng.normal(2e-6, 1e-8, 20)),
               _entry("m", "int8_dynamic", 0.95, rng.normal(1e-6, 1e-8, 20))]
    arguments = {"decision": _decision(), "training_records": [_training("m", 1e-3)], "sci_entries": entries,
                 "selection": SelectionRecord(promote=True, chosen="m/int8_dynamic", reason="by hand", rule="knee"),
                 "expected_lifetime_inferences": 1e6}
    arguments.update(changes)
    return arguments


@pytest.mark.parametrize(("volume", "message"), [
    ("1e8", "expected_lifetime_inferences must be a finite number, got '1e8'"),
    (None, "expected_lifetime_inferences must be a finite number, got None"),
    (True, "expected_lifetime_inferences must be a finite number, got True"),
    (float("nan"), "expected_lifetime_inferences must be a finite number, got nan"),
    (-1, "expected_lifetime_inferences must be >= 0, got -1"),
    (10 ** 400, "expected_lifetime_inferences must be a finite number, got an integer of about 401 digits"),
], ids=["string", "none", "bool", "nan", "negative", "huge"])
def test_the_expected_inferences_are_a_real_number_of_at_least_zero(volume, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        build_sustainability_report(**_arguments(expected_lifetime_inferences=volume))
    report = build_sustainability_report(**_arguments(expected_lifetime_inferences=np.int64(10)))
    assert report.inference.expected_inferences == 10


@pytest.mark.parametrize(("argument", "value", "message"), [
    ("decision", None, "decision must be a GateDecisionRecord, got NoneType"),
    ("decision", {"action": "run_now"}, "decision must be a GateDecisionRecord, got dict"),
    ("selection", {"chosen": "m/int8_dynamic"}, "selection must be a SelectionRecord or None, got dict"),
    ("training_records", [{"candidate": "m"}], "training_records[0] must be a TrainingRecord, got dict"),
    ("training_records", None, "training_records must be a list of TrainingRecord, got NoneType"),
    ("sci_entries", [None], "sci_entries[0] must be a SciEntry, got NoneType"),
])
def test_records_of_the_wrong_type_are_named(argument, value, message):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        build_sustainability_report(**_arguments(**{argument: value}))


def test_a_candidate_trained_twice_is_refused_not_counted_twice():
    with pytest.raises(ValueError, match=re.escape("training_records name candidate 'm' twice (at 0 and 1)")):
        build_sustainability_report(**_arguments(training_records=[_training("m", 1e-3), _training("m", 1e-3)]))
    # distinct candidates are summed
    report = build_sustainability_report(**_arguments(training_records=[_training("m", 1e-3), _training("n", 2e-3)]))
    assert report.training.energy_kwh == pytest.approx(3e-3)
    # no selection is allowed: the inference part is then unavailable
    assert build_sustainability_report(**_arguments(selection=None)).inference.selected is None


class _Artifact:
    def __init__(self, path):
        self.path, self.metadata = str(path), {}


class _Metrics(_Artifact):
    def __init__(self, path):
        super().__init__(path)
        self.logged = {}

    def log_metric(self, name, value):
        self.logged[name] = value


def _run_component(tmp_path, decision, entries, selection, volume=1e6):
    from greenkfp.components.records import SciReport, write_record
    from greenkfp.components.reporting.component import sustainability_report

    paths = {}
    for name, record in (("decision", decision), ("training", _training("m", 1e-3)), ("selection", selection)):
        paths[name] = tmp_path / f"{name}.json"
        write_record(record, str(paths[name]))
    paths["sci"] = tmp_path / "sci.json"
    write_record(SciReport(entries), str(paths["sci"]))
    return sustainability_report.python_func(
        decision=_Artifact(paths["decision"]), training_records=[_Artifact(paths["training"])],
        sci_reports=_Artifact(paths["sci"]), selection_record=_Artifact(paths["selection"]),
        report_json=_Artifact(tmp_path / "report.json"), metrics=_Metrics(tmp_path / "metrics"),
        report=_Artifact(tmp_path / "report.html"), expected_lifetime_inferences=volume)


def test_in_plan_mode_the_components_saved_g_is_the_realised_saving_and_the_training_one_is_apart(tmp_path):
    """Plan mode: the run did not wait, so the training saving did not happen. ``saved_g`` is what
    the headline says was saved (the model choice's), not the total had training waited; the
    training figure is its own output."""
    rng = np.random.default_rng(7)
    baseline, selected = rng.normal(2e-6, 1e-8, 200), rng.normal(1e-6, 1e-8, 200)
    entries = [_entry("m", "fp32", 0.95, baseline), _entry("m", "int8_dynamic", 0.95, selected)]
    selection = SelectionRecord(promote=True, chosen="m/int8_dynamic", reason="by hand", rule="knee")
    plan = _decision().to_dict()
    plan["inputs"]["mode"], plan["action"] = "plan", "wait"
    decision = GateDecisionRecord.from_dict(plan)
    report = build_sustainability_report(decision, [_training("m", 1e-3)], entries, selection,
                                         expected_lifetime_inferences=1e6)
    assert report.training.realized is False
    inference, training, total = report.saving("inference"), report.saving("training"), report.saving("total")
    assert inference.significant and training.significant and training.g.estimate > 0

    out = _run_component(tmp_path, decision, entries, selection)
    assert out.saved_g == pytest.approx(inference.g.estimate)
    assert out.saved_g < total.g.estimate
    assert out.saved_percent == pytest.approx(100.0 * inference.g.estimate / report.total.scheduled_g)
    assert out.unrealized_training_saved_g == pytest.approx(training.g.estimate)

    # waiting (wait mode): the training saving happened, so saved_g is the total and nothing is apart
    wait = _decision().to_dict()
    wait["inputs"]["mode"] = "wait"
    decision = GateDecisionRecord.from_dict(wait)
    report = build_sustainability_report(decision, [_training("m", 1e-3)], entries, selection,
                                         expected_lifetime_inferences=1e6)
    out = _run_component(tmp_path, decision, entries, selection)
    assert out.saved_g == pytest.approx(report.saving("total").g.estimate)
    assert out.saved_percent == pytest.approx(report.saving("total").percent.estimate)
    assert out.unrealized_training_saved_g == 0.0
