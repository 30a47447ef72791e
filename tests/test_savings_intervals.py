"""Savings with 95 % intervals: 'no significant difference' where the interval includes zero,
and a total that noise alone cannot make negative."""

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
    # training: 1 Wh x (300 - 100) g/kWh = 0.2 g, one measurement: zero width
    assert training.g.estimate == pytest.approx(0.2) and training.g.low == training.g.high
    assert inference.significant and 0 < inference.g.low <= inference.g.estimate <= inference.g.high
    assert inference.percent.low > 40 and inference.percent.high < 60  # about half
    assert total.g.estimate == pytest.approx(training.g.estimate + inference.g.estimate)
    assert total.g.low == pytest.approx(training.g.estimate + inference.g.low, rel=1e-6)
    assert report.total.saved_g == pytest.approx(total.g.estimate)
    # the run-to-run factor (5 %) scales both variants alike: grams get +-10 %, the ratio stays tight
    assert 0.15 < (inference.g.high - inference.g.low) / inference.g.estimate < 0.25
    assert inference.percent.high - inference.percent.low < 2.0
    # the run's own noise alone: pairing the rounds is tighter than separate intervals would make it
    own = _report(baseline, selected, run_to_run_uncertainty=0.0).saving("inference")
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


def test_entries_without_rounds_fall_back_to_point_estimates_with_zero_width():
    base = _entry("m", "fp32", 0.95, [2e-6] * 3)
    chosen = _entry("m", "int8_dynamic", 0.95, [1e-6] * 3, group="another-benchmark")  # not paired
    selection = SelectionRecord(promote=True, chosen="m/int8_dynamic", reason="by hand", rule="knee")
    report = build_sustainability_report(_decision(), [_training("m", 1e-3)], [base, chosen], selection,
                                         expected_lifetime_inferences=1e6)
    inference = report.saving("inference")
    assert inference.g.estimate == pytest.approx(1.0) and inference.g.low == inference.g.high
    assert "point estimates" in report.savings.inference.basis
