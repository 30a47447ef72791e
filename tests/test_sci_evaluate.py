"""``evaluate_variants`` end to end, on a small real setup.

iris is split, two candidates are trained by the training core (under CodeCarbon, priced
hourly for GB), turned into ONNX variants by the quantization core and listed by its
``write_component_outputs``; the SCI step then benchmarks the variants for real. On this setup
the small MLP's int8 variants are produced but lose more than the 1-point tolerance (not
eligible) and the logistic regression has nothing to quantize or convert to float16 (not
produced), so both kinds of skipped variant occur.

Every expected figure is recomputed here from the report's own terms or from the embedded data
read through the public provider, not copied from the code under test. No mocks.
"""

from __future__ import annotations

import json
import math
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from greenkfp.components.carbon import EmbeddedProvider, GatePolicy, decide
from greenkfp.components.data.datasets import prepare_dataset
from greenkfp.components.quantization.variants import convert_and_quantize, write_component_outputs
from greenkfp.components.records import GateDecisionRecord, GateInputs, GateRegion, SciReport, WindowRecord, write_record
from greenkfp.components.sci.evaluate import SCHEMA, evaluate_variants
from greenkfp.components.training.train import train_candidate

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# the benchmark's floor is min_seconds = 1.0, which evaluate_variants does not lower: a smaller
# budget is refused (see test_time_budget_under_one_second)
MAX_SECONDS = 1.0
EXPECTED_INFERENCES = 5e7
CANDIDATES = [
    {"name": "mlp-tiny", "estimator": "sklearn.neural_network.MLPClassifier",
     "params": {"hidden_layer_sizes": [16], "max_iter": 50, "random_state": 0}},
    {"name": "logreg-short", "estimator": "sklearn.linear_model.LogisticRegression",
     "params": {"max_iter": 20}},
]


def _write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def _decision(region: str, **fields) -> GateDecisionRecord:
    """A gate decision that ran with no forecast (fail open): a region, no chosen window."""
    return GateDecisionRecord(
        decided_at="2026-01-01T00:00:00+00:00", should_run=True, action="run_now", reason="no provider answered",
        region=region, start_at="2026-01-01T00:00:00+00:00", delay_seconds=0.0, failure_policy_applied="fail_open",
        inputs=GateInputs(regions=(region,), duration_seconds=3600.0, provider="embedded"), **fields)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("sci-evaluate")
    train, test = root / "train.parquet", root / "test.parquet"
    prepare_dataset("iris", None, train, test)
    decision = write_record(_decision("GB"), root / "decision.json")
    candidates = {}
    for spec in CANDIDATES:
        name = spec["name"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # few iterations on purpose
            result = train_candidate(str(train), str(test), spec, str(root / f"{name}.skops"), region="GB",
                                     output_dir=str(root))
        record = result.to_record()
        record_path = write_record(record, root / f"{name}.training.json")
        variants_dir = root / name
        reports = convert_and_quantize(root / f"{name}.skops", test, train, variants_dir)
        list_path = root / f"{name}.variants.json"
        write_component_outputs(reports, variants_dir=variants_dir, json_path=list_path,
                                summary_path=root / f"{name}.variants.md")
        sci = evaluate_variants(
            variants_dir, list_path, test, training_record_path=record_path, decision_path=decision,
            hardware_profile="n2-standard-4", intensity_basis="annual_average", functional_unit_size=1000,
            expected_lifetime_inferences=EXPECTED_INFERENCES, max_seconds=MAX_SECONDS, threads=1,
        )
        assert SciReport.from_json(sci.to_json()) == sci  # the record round-trips
        # the SCI arithmetic below checks the JSON the step writes (the SCI report's E, I, M, R)
        candidates[name] = {"record": record, "record_path": record_path, "variants_dir": variants_dir,
                            "list_path": list_path, "variants": json.loads(list_path.read_text()),
                            "sci": sci, "results": json.loads(sci.to_json())}
    return {"root": root, "train": train, "test": test, "decision": decision, "candidates": candidates}


def _scored(setup):
    return [r for c in setup["candidates"].values() for r in c["results"] if r["status"] == "scored"]


def _single_variant_list(setup, candidate: str, variant: str) -> Path:
    """A variant list holding one entry of a candidate's list (a short evaluation)."""
    c = setup["candidates"][candidate]
    entry = next(v for v in c["variants"] if v["name"] == variant)
    return _write_json(setup["root"] / f"{candidate}.{variant}.only.json", [entry])


# --------------------------------------------------------------------------- which variants


def test_eligible_variants_are_scored_and_the_rest_skipped_with_reasons(setup):
    kinds = set()
    for name, c in setup["candidates"].items():
        results = c["results"]
        assert [r["variant"] for r in results] == [v["name"] for v in c["variants"]]  # one entry each, in order
        for variant, entry in zip(c["variants"], results):
            assert entry["schema"] == SCHEMA
            assert entry["candidate"] == name  # from the training record
            assert entry["accuracy"] == variant["accuracy"]
            if variant["eligible"] and variant["file"]:
                assert entry["status"] == "scored", entry
                assert entry["sci"] > 0 and entry["energy_per_inference_kwh"] > 0
                assert 0 < entry["latency_p50_ms"] <= entry["latency_p95_ms"] <= entry["latency_p99_ms"]
                assert entry["report"]["subject"] == f"{name}/{variant['name']}"
                kinds.add("scored")
            else:
                assert entry["status"] == "skipped", entry
                assert "sci" not in entry and "report" not in entry
                assert isinstance(entry["reason"], str) and entry["reason"].strip()
                if variant["produced"]:  # produced but lost too much accuracy
                    assert entry["reason"] == variant["eligibility_reason"]
                    assert "tolerance" in entry["reason"]
                    kinds.add("ineligible")
                else:
                    assert entry["reason"] == variant["reason"]
                    assert variant["file"] is None
                    kinds.add("not produced")
    # the setup must exercise every path (see the module docstring)
    assert kinds == {"scored", "ineligible", "not produced"}, kinds


def test_markdown_and_metrics_cover_scored_variants_only(setup):
    sci = setup["candidates"]["logreg-short"]["sci"]
    metrics = sci.metrics()
    assert metrics["fp32_sci"] == sci[0].sci == sci.get("fp32").sci
    assert not any(k.startswith(("int8", "fp16")) for k in metrics)  # not produced: no figures
    text = sci.markdown()
    assert "| int8_dynamic | | | | | | | skipped: nothing to quantize" in text and "Training emissions, reported apart from the SCI" in text


# --------------------------------------------------------------------------- the score


def test_training_emissions_are_carried_but_not_in_the_score(setup):
    for c in setup["candidates"].values():
        emissions = c["record"].emissions
        expected = emissions.hourly_g if emissions.hourly_g is not None else emissions.codecarbon_g
        assert expected is not None and expected > 0
        for entry in c["results"]:
            assert entry["training_emissions_g"] == pytest.approx(expected, rel=1e-12)
            assert entry["training_emissions_basis"]
            if entry["status"] != "scored":
                continue
            report = entry["report"]
            E, I, M, R = report["E"]["kwh"], report["I"]["g_per_kwh"], report["M"]["g"], report["R"]["count"]
            recomputed = (E * I + M) / R
            assert entry["sci"] == report["sci"]["value"]
            assert entry["sci"] == pytest.approx(recomputed, rel=1e-12)
            # folding the training emissions in would give a very different figure
            assert not math.isclose(entry["sci"], (E * I + M + expected) / R, rel_tol=1e-6)
            assert report["lifecycle"]["training_emissions_g"] == pytest.approx(expected, rel=1e-12)
            # R: inferences counted per 1,000
            assert R == pytest.approx(report["benchmark"]["n_inferences"] / 1000)
            assert entry["energy_per_inference_kwh"] == pytest.approx(E / report["benchmark"]["n_inferences"])


def test_lifecycle_total_is_training_plus_expected_inferences_times_per_inference_carbon(setup):
    for entry in _scored(setup):
        report = entry["report"]
        items = report["R"]["items"]
        per_item = (report["E"]["kwh"] * report["I"]["g_per_kwh"] + report["M"]["g"]) / items
        assert report["sci"]["per_item_g"] == pytest.approx(per_item, rel=1e-12)
        lifecycle = entry["lifecycle"]
        assert lifecycle == report["lifecycle"]
        assert lifecycle["expected_lifetime_items"] == EXPECTED_INFERENCES
        assert lifecycle["inference_emissions_g"] == pytest.approx(EXPECTED_INFERENCES * per_item, rel=1e-12)
        assert lifecycle["total_g"] == pytest.approx(entry["training_emissions_g"] + EXPECTED_INFERENCES * per_item,
                                                     rel=1e-12)


# --------------------------------------------------------------------------- the intensity I


def test_annual_average_is_the_mean_of_the_embedded_gb_2024_hours(setup):
    start, end = datetime(2024, 1, 1, tzinfo=timezone.utc), datetime(2025, 1, 1, tzinfo=timezone.utc)
    answer = EmbeddedProvider().forecast("GB", start, end)
    assert answer.data_kind == "historical" and len(answer.series) == 366 * 24  # 2024 is a leap year
    expected = float(np.mean(answer.series.values))
    scored = _scored(setup)
    assert scored
    for entry in scored:
        assert entry["intensity_g_per_kwh"] == pytest.approx(expected, rel=1e-12)
        assert entry["report"]["I"]["g_per_kwh"] == pytest.approx(expected, rel=1e-12)
        source = entry["report"]["I"]["source"]
        assert source["region"] == "GB" and source["provider"] == "embedded"
        assert "8784" in entry["intensity_basis"] and "2024" in entry["intensity_basis"]


def test_gate_window_takes_the_gate_decisions_window_intensity(setup):
    provider = EmbeddedProvider()
    earliest = datetime(2024, 3, 5, 6, 0, tzinfo=timezone.utc)
    policy = GatePolicy(regions=("GB",), duration=timedelta(hours=2), provider="embedded",
                        earliest_start=earliest, deadline=earliest + timedelta(hours=24))
    record = decide(policy, providers={"embedded": provider}, clock=lambda: earliest).to_record()
    window = record.intensity_window_gco2_per_kwh
    assert window is not None
    # independently: the chosen 2-hour window's mean of the embedded hourly values
    start_at = datetime.fromisoformat(record.start_at)
    hours = provider.forecast("GB", start_at, start_at + timedelta(hours=2)).series.values
    assert window == pytest.approx(float(np.mean(hours)), rel=1e-9)
    decision = write_record(record, setup["root"] / "gate-decision.json")
    c = setup["candidates"]["logreg-short"]
    results = evaluate_variants(
        c["variants_dir"], _single_variant_list(setup, "logreg-short", "fp32"), setup["test"],
        training_record_path=c["record_path"], decision_path=decision, intensity_basis="gate_window",
        max_seconds=MAX_SECONDS,
    )
    (entry,) = results.to_list()
    assert entry["status"] == "scored"
    assert entry["intensity_g_per_kwh"] == window
    report = entry["report"]
    assert report["I"]["g_per_kwh"] == window
    assert report["I"]["source"]["region"] == "GB"
    assert datetime.fromisoformat(report["I"]["source"]["time"].replace("Z", "+00:00")) == start_at
    assert entry["sci"] == pytest.approx((report["E"]["kwh"] * window + report["M"]["g"]) / report["R"]["count"],
                                         rel=1e-12)
    annual = setup["candidates"]["logreg-short"]["results"][0]["intensity_g_per_kwh"]
    assert window != pytest.approx(annual)  # a different basis, a different I


# --------------------------------------------------------------------------- errors


def _evaluate_one(setup, **options):
    c = setup["candidates"]["logreg-short"]
    kwargs = {"training_record_path": c["record_path"], "decision_path": setup["decision"],
              "max_seconds": MAX_SECONDS, **options}
    return evaluate_variants(c["variants_dir"], _single_variant_list(setup, "logreg-short", "fp32"), setup["test"],
                             **kwargs)


def test_bad_intensity_basis_is_refused_by_name(setup):
    with pytest.raises(ValueError, match=r"intensity_basis must be one of annual_average, gate_window or a number of gCO2eq/kWh >= 0, got 'hourly'"):
        _evaluate_one(setup, intensity_basis="hourly")


@pytest.mark.parametrize("bad", [-1, -0.5, float("nan"), float("inf"), "many", True])
def test_bad_expected_lifetime_inferences_is_refused_by_name(setup, bad):
    with pytest.raises(ValueError, match=r"expected_lifetime_inferences must be a number >= 0, got"):
        _evaluate_one(setup, expected_lifetime_inferences=bad)


def test_gate_window_without_a_chosen_window_is_refused(setup):
    with pytest.raises(ValueError, match=r"intensity_basis 'gate_window' needs a gate decision with a chosen window"):
        _evaluate_one(setup, intensity_basis="gate_window")  # the decision file holds only a region


def test_annual_average_without_a_region_is_refused(setup):
    with pytest.raises(ValueError, match=r"a region is needed for intensity_basis 'annual_average'"):
        _evaluate_one(setup, decision_path=None)


def test_time_budget_under_one_second(setup):
    (entry,) = _evaluate_one(setup, max_seconds=0.5).to_list()
    assert entry["status"] == "scored"
    assert entry["report"]["benchmark"]["max_seconds"] == 0.5


# --------------------------------------------------------------------------- the benchmark script


def test_bench_sci_quick_runs_and_its_figures_add_up(tmp_path):
    """scripts/bench_sci.py builds on the same cores; its quick mode must keep running."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, str(root / "scripts" / "bench_sci.py"), "--quick", "--json", str(out)],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr + result.stdout
    figures = json.loads(out.read_text())
    scored = [r for r in figures["evaluation"]["rows"] if r["status"] == "scored"]
    assert scored and any(r["status"] == "skipped" and r["reason"] for r in figures["evaluation"]["rows"])
    for row in scored:
        assert row["energy_method"] in ("modeled", "measured", "mixed")
        assert row["energy_wh_per_1000"] > 0 and row["sci_g_per_1000"] > 0
    repeat = figures["repeat"]
    a, b = (run["sci_g_per_1000"] for run in repeat["runs"])
    assert repeat["sci_difference_percent"] == pytest.approx(100 * abs(a - b) / ((a + b) / 2))
    assert repeat["met"] == (repeat["sci_difference_percent"] <= 10)
    assert "same variant twice" in result.stdout


def test_annual_average_falls_back_to_the_gate_window_for_a_live_region():
    from greenkfp.components.sci.evaluate import inference_intensity

    window = WindowRecord("2026-01-01T00:00:00+00:00", "2026-01-01T01:00:00+00:00", 123.0)
    decision = _decision("region:13", intensity_window_gco2_per_kwh=123.0, chosen_window=window, regions=(
        GateRegion(region="region:13", provider="uk", data_kind="forecast", signal="average", best_window=window,
                   run_now_window=window, candidates=1),))
    value, source = inference_intensity("annual_average", decision)
    assert value == 123.0 and source["provider"] == "uk" and "annual_average unavailable" in source["basis"]
    value, source = inference_intensity("annual_average", _decision("region:13"))  # no window: the stated default
    assert source["method"] == "default" and "not in the embedded data" in source["basis"]


def test_a_given_intensity_is_used_and_labelled():
    from greenkfp.components.sci.evaluate import inference_intensity

    value, source = inference_intensity("250", _decision("GB"))
    assert value == 250.0 and source["provider"] == "user" and source["basis"] == "given: 250 gCO2eq/kWh"
    with pytest.raises(ValueError, match="a number of gCO2eq/kWh >= 0, got '-3'"):
        inference_intensity("-3", None)


def test_random_bytes_or_a_model_of_another_width_is_a_clear_error(tmp_path):
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    from greenkfp.components.sci.benchmark import BenchmarkSettings, benchmark_inference

    X = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    settings = BenchmarkSettings(max_seconds=0.2, min_seconds=0.05)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(np.random.default_rng(1).bytes(4096))
    with pytest.raises(ValueError, match="is not a loadable ONNX model"):
        benchmark_inference(str(garbage), X, settings)
    wide = LogisticRegression().fit(np.hstack([X, X]), np.arange(20) % 2)
    model = to_onnx(wide, np.hstack([X, X])[:1], options={"zipmap": False})
    with pytest.raises(ValueError, match="takes 8 features per row, but the test data has 4"):
        benchmark_inference(model.SerializeToString(), X, settings)


# --------------------------------------------------------------------------- one interleaved benchmark


def test_one_interleaved_benchmark_scores_every_candidate_with_paired_rounds_and_graph_figures(setup):
    from greenkfp.components.sci.evaluate import benchmark_all_variants

    groups = [(c["variants_dir"], c["list_path"], c["record_path"]) for c in setup["candidates"].values()]
    report = benchmark_all_variants(groups, setup["test"], decision_path=setup["decision"], max_seconds=2.0,
                                    expected_lifetime_inferences=EXPECTED_INFERENCES, seed=7, rows_per_visit=16)
    assert SciReport.from_json(report.to_json()) == report
    # every variant of every candidate, in the pipeline's order, skipped ones with their reason
    expected = [(name, v["name"]) for name, c in setup["candidates"].items() for v in c["variants"]]
    assert [(e.candidate, e.variant) for e in report] == expected
    assert report.candidates == list(setup["candidates"])
    scored = report.scored
    assert {e.name for e in scored} == {f"{r['candidate']}/{r['variant']}" for r in _scored(setup)}
    # one benchmark: the same rounds for every variant, so they pair
    assert len({e.rounds.group for e in scored}) == 1
    (rounds,) = {len(e.rounds.per_inference_g) for e in scored}
    assert rounds >= 20
    for e in scored:
        for figure in (e.sci_interval, e.per_inference_g_interval, e.energy_per_inference_kwh_interval,
                       e.time_per_inference_ms, e.cpu_time_per_inference_ms, e.latency_p95_ms_interval):
            assert figure.low <= figure.estimate <= figure.high
        assert e.sci == e.sci_interval.estimate
        assert e.sci == pytest.approx(1000 * float(np.median(e.rounds.per_inference_g)))
        assert e.per_inference_g == e.per_inference_g_interval.estimate
    # graph figures, exact: iris has 4 features and 3 classes
    assert report.named("logreg-short/fp32").macs == 4 * 3
    assert report.named("mlp-tiny/fp32").macs == 4 * 16 + 16 * 3
    assert report.named("mlp-tiny/fp32").weight_bytes >= (4 * 16 + 16 + 16 * 3 + 3) * 4
    # the Markdown names candidate and variant, with intervals
    text = report.markdown()
    assert "logreg-short/fp32" in text and "interleaved benchmark" in text and "[" in text
    assert "logreg-short_fp32_sci_low" in report.metrics()
