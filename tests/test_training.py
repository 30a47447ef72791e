"""Instrumented training: spec validation, a real fit under a real CodeCarbon tracker, hourly
pricing checked against the embedded data, CodeCarbon failures, and the pipeline locally."""

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io

from greenkfp.components.carbon import EmbeddedProvider
from greenkfp.components.data.datasets import prepare_dataset, read_dataset
from greenkfp.components.records import TrainingRecord, read_record
from greenkfp.components.training.estimators import (
    DEFAULT_CANDIDATES,
    EstimatorSpec,
    EstimatorSpecError,
    build_estimator,
    parse_candidates,
)
from greenkfp.components.models import UntrustedModelError, load_model, save_model
from greenkfp.components.training.train import train_candidate, write_training_outputs

LOGREG = {"name": "logreg", "estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 500}}


@pytest.fixture(scope="module")
def iris(tmp_path_factory):
    root = tmp_path_factory.mktemp("iris")
    prepare_dataset("iris", None, root / "train.parquet", root / "test.parquet", seed=1)
    return root / "train.parquet", root / "test.parquet"


# ------------------------------------------------------------------ spec validation
@pytest.mark.parametrize(
    "spec, message",
    [
        ({**LOGREG, "params": {"max_iter": 10, "colour": "red"}},
         "unknown hyperparameter\\(s\\) colour for sklearn.linear_model.LogisticRegression; valid: C, class_weight"),
        ({**LOGREG, "estimator": "os.system"}, "'os.system' is not a scikit-learn class; only sklearn.\\* is allowed"),
        ({**LOGREG, "estimator": "sklearn.linear_model.Nope"}, "module 'sklearn.linear_model' has no class 'Nope'"),
        ({**LOGREG, "estimator": "sklearn.nope.Thing"}, "cannot import module 'sklearn.nope'"),
        ({**LOGREG, "estimator": "sklearn.linear_model.LinearRegression", "params": {}}, "is not a classifier"),
        ({**LOGREG, "params": {"C": -1}}, "The 'C' parameter of LogisticRegression must be a float in the range"),
        ({**LOGREG, "name": "Has Spaces"}, "name must be 1-63 lower-case letters"),
        ({**LOGREG, "extra": 1}, "unknown candidate spec keys \\['extra'\\]"),
    ],
)
def test_bad_specs_are_refused_before_fitting(spec, message):
    with pytest.raises(EstimatorSpecError, match=message):
        build_estimator(EstimatorSpec.from_dict(spec))


def test_non_sklearn_classes_need_an_explicit_opt_in():
    spec = EstimatorSpec("dummy", "tests_helpers_that_do_not_exist.Model", {})
    with pytest.raises(EstimatorSpecError, match="cannot import module"):
        build_estimator(spec, allow_non_sklearn=True)  # opted in: now it is only a missing module


def test_numbers_widened_by_kfp_come_back_as_ints():
    # KFP passes dicts as protobuf Structs: 200 arrives as 200.0
    spec = EstimatorSpec("rf", "sklearn.ensemble.RandomForestClassifier",
                         {"n_estimators": 20.0, "max_depth": 3.0, "max_features": 1.0})
    forest = build_estimator(spec)
    assert forest.n_estimators == 20 and isinstance(forest.n_estimators, int)
    assert forest.max_depth == 3 and isinstance(forest.max_depth, int)
    assert forest.max_features == 1.0 and isinstance(forest.max_features, float)  # a fraction: stays a float
    mlp = build_estimator(EstimatorSpec("m", "sklearn.neural_network.MLPClassifier", {"hidden_layer_sizes": [8.0, 4.0]}))
    assert mlp.hidden_layer_sizes == [8, 4]


def test_default_candidates_build_and_names_are_unique():
    specs = parse_candidates(None)
    assert [s.name for s in specs] == [c["name"] for c in DEFAULT_CANDIDATES]
    assert all(build_estimator(s) is not None for s in specs)
    with pytest.raises(EstimatorSpecError, match="repeated: logreg"):
        parse_candidates([LOGREG, LOGREG])


# ------------------------------------------------------------------ a real fit
def hourly_emissions_by_hand(energy_kwh, start, end, region):
    """Energy x the embedded intensity of the hours [start, end), weighted by overlap."""
    answer = EmbeddedProvider().forecast(region, start, end + timedelta(seconds=1))
    total, weight = 0.0, 0.0
    for slot_start, value in answer.series:
        slot_end = slot_start + answer.series.granularity
        overlap = (min(end, slot_end) - max(start, slot_start)).total_seconds()
        if overlap > 0:
            total += value * overlap
            weight += overlap
    return energy_kwh * total / weight


def test_real_fit_under_a_real_tracker(iris, tmp_path):
    train, test = iris
    result = train_candidate(str(train), str(test), LOGREG, str(tmp_path / "model.skops"), region="DE-LU",
                             output_dir=str(tmp_path / "cc"))
    energy = result.energy
    assert energy.available and energy.energy_kwh > 0 and energy.method == "modeled"
    assert "CodeCarbon" in energy.method_detail
    assert energy.country_iso_code == "DEU"
    assert result.accuracy > 0.8 and 0 < result.macro_f1 <= 1
    # hourly pricing = energy x the embedded intensity of the hours the fit ran
    expected = hourly_emissions_by_hand(energy.energy_kwh, energy.started_at, energy.ended_at, "DE-LU")
    assert result.pricing.emissions_g == pytest.approx(expected, rel=1e-9)
    assert result.pricing.intensity.region == "DE-LU" and result.pricing.intensity.data_kind in ("historical", "replayed_historical")
    # skops round trip: identical predictions
    loaded = load_model(result.model_path)
    data = read_dataset(test)
    np.testing.assert_array_equal(loaded.predict(data.X), build_and_fit_predictions(train, data.X))
    # the artifacts are readable
    paths = {k: tmp_path / k for k in ("record.json", "summary.md", "emissions.csv")}
    meta = write_training_outputs(result, record_path=str(paths["record.json"]), summary_path=str(paths["summary.md"]),
                                  csv_path=str(paths["emissions.csv"]))
    record = read_record(TrainingRecord, paths["record.json"])
    assert record == result.to_record()
    assert record.emissions.hourly_g == result.pricing.emissions_g
    assert record.emissions.codecarbon_g == pytest.approx(energy.codecarbon_emissions_g)
    assert "yearly average" in record.emissions.codecarbon_basis
    csv = pd.read_csv(paths["emissions.csv"])
    assert meta["available"] and len(csv) >= 1 and "energy_consumed" in csv.columns
    summary = paths["summary.md"].read_text()
    assert "(modeled)" in summary and "-60% to +190%" in summary


def build_and_fit_predictions(train_path, X):
    data = read_dataset(train_path)
    model = build_estimator(EstimatorSpec.from_dict(LOGREG)).fit(data.X, data.y)
    return model.predict(X)


def test_codecarbon_failure_still_trains_and_saves(iris, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    train, test = iris
    result = train_candidate(str(train), str(test), LOGREG, str(tmp_path / "model.skops"),
                             output_dir=str(blocker / "codecarbon"))
    assert not result.energy.available and result.energy.method == "unavailable"
    assert "NotADirectoryError" in result.energy.reason
    assert result.pricing is None and "energy unavailable" in result.pricing_error
    assert Path(result.model_path).is_file() and result.accuracy > 0.8
    assert "energy_kwh" not in result.metrics() and result.metrics()["energy_available"] == 0.0
    paths = [tmp_path / n for n in ("r.json", "s.md", "e.csv")]
    meta = write_training_outputs(result, record_path=str(paths[0]), summary_path=str(paths[1]), csv_path=str(paths[2]))
    assert meta["available"] is False and "NotADirectoryError" in meta["reason"]
    assert "Energy unavailable" in paths[1].read_text()


def test_bad_region_is_refused_before_any_fit(iris, tmp_path):
    train, test = iris
    with pytest.raises(ValueError, match="Atlantis"):
        train_candidate(str(train), str(test), LOGREG, str(tmp_path / "m.skops"), region="Atlantis")
    assert not (tmp_path / "m.skops").exists()


class NotSklearn:
    def __init__(self):
        self.value = 1


def test_skops_refuses_types_outside_sklearn(tmp_path):
    path = tmp_path / "evil.skops"
    skops.io.dump({"payload": NotSklearn()}, path)
    with pytest.raises(UntrustedModelError, match="NotSklearn"):
        load_model(path)
    save_model(build_estimator(EstimatorSpec.from_dict(LOGREG)), tmp_path / "ok.skops")
    assert load_model(tmp_path / "ok.skops").max_iter == 500


# ------------------------------------------------------------------ the pipeline locally
@pytest.mark.slow
def test_pipeline_trains_one_model_per_candidate(tmp_path, monkeypatch):
    from greenkfp.pipelines.local import run_training_locally

    monkeypatch.chdir(tmp_path)
    candidates = [LOGREG, {"name": "tree", "estimator": "sklearn.tree.DecisionTreeClassifier",
                           "params": {"max_depth": 4, "random_state": 0}}]
    result = run_training_locally(
        {"dataset": "iris", "candidates": candidates, "mode": "plan", "earliest_start": "2023-06-14T09:00:00Z",
         "regions": ["GB"]},
        tmp_path / "root",
    )
    assert result.decision.should_run is True
    trainings = {run.name: run for run in result.candidates}
    assert sorted(trainings) == ["logreg", "tree"]
    for run in trainings.values():
        record = run.training
        assert record.energy.available and record.emissions.hourly_pricing["region"] == "GB"
        model_files = list(Path(run.artifact_dir).glob("model"))
        assert len(model_files) == 1 and load_model(model_files[0]).predict(np.zeros((1, 4))).shape == (1,)
    assert trainings["tree"].training.model["parameters"]["max_depth"] == 4


@pytest.mark.slow
def test_pipeline_refusal_trains_nothing(tmp_path, monkeypatch):
    from greenkfp.pipelines.local import run_training_locally

    monkeypatch.chdir(tmp_path)
    result = run_training_locally(
        {"dataset": "iris", "candidates": [LOGREG], "mode": "plan", "threshold": "1", "regions": ["DE-LU"],
         "earliest_start": "2023-06-14T09:00:00Z"},
        tmp_path / "root",
    )
    assert result.decision.action == "refuse" and result.candidates == ()


def test_a_region_outside_the_embedded_zones_needs_a_country(iris, tmp_path):
    train, test = iris
    with pytest.raises(ValueError, match="pass country_iso_code"):
        train_candidate(str(train), str(test), LOGREG, str(tmp_path / "m.skops"), region="DE")
    # with the country given, CodeCarbon runs; the embedded data has no 'DE', so the hourly
    # pricing says why it is unavailable instead of failing the fit
    result = train_candidate(str(train), str(test), LOGREG, str(tmp_path / "m.skops"), region="DE",
                             country_iso_code="DEU", output_dir=str(tmp_path / "cc"))
    assert result.energy.available and result.energy.country_iso_code == "DEU"
    assert result.pricing is None and "not in the embedded data" in result.pricing_error


@pytest.mark.parametrize("candidate, message", [
    ({"name": "ovr", "estimator": "sklearn.multiclass.OneVsRestClassifier"}, "meta-estimators that take other"),
    ({"name": "stack", "estimator": "sklearn.ensemble.StackingClassifier"}, "meta-estimators that take other"),
    ({"name": "pipe", "estimator": "sklearn.pipeline.Pipeline"}, "meta-estimators that take other"),
    ({"name": "p", "estimator": "sklearn.linear_model.LogisticRegression", "params": [1]},
     "params must be a JSON object of hyperparameters, got \\[1\\]"),
    ({"name": "neg", "estimator": "sklearn.neural_network.MLPClassifier", "params": {"hidden_layer_sizes": [-3]}},
     "candidate 'neg' .* cannot be fitted with params"),
    ({"name": "nl\n", "estimator": "sklearn.linear_model.LogisticRegression"}, "name must be 1-63"),
])
def test_candidates_are_refused_before_the_gate_with_a_clear_error(candidate, message):
    from greenkfp.components.training.estimators import validate_candidates

    with pytest.raises(EstimatorSpecError, match=message):
        validate_candidates([candidate])


def test_a_huge_candidates_file_is_refused_fast():
    import time

    from greenkfp.components.training.estimators import parse_candidates

    many = json.dumps([{"name": f"c{i}", "estimator": "sklearn.linear_model.LogisticRegression"}
                       for i in range(300_000)])
    started = time.monotonic()
    with pytest.raises(EstimatorSpecError, match="characters of JSON; at most 1,000,000"):
        parse_candidates(many)
    with pytest.raises(EstimatorSpecError, match="at most 200 candidates in one run, got 5,000"):
        parse_candidates(json.loads(many)[:5000])
    assert time.monotonic() - started < 5


from sklearn.base import BaseEstimator, ClassifierMixin  # noqa: E402


class _ThreadRecordingClassifier(ClassifierMixin, BaseEstimator):
    """A classifier that records the BLAS threads it was given while fitting (allow_non_sklearn)."""

    seen: list = []
    _parameter_constraints: dict = {}

    def fit(self, X, y):
        from threadpoolctl import threadpool_info

        type(self).seen.append(max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"))
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


def test_a_fit_runs_on_the_threads_it_is_given_and_its_record_says_so(iris, tmp_path, monkeypatch):
    import sys
    import types

    from threadpoolctl import threadpool_limits

    module = types.ModuleType("greenkfp_test_threads")
    module.Recorder = _ThreadRecordingClassifier
    monkeypatch.setitem(sys.modules, "greenkfp_test_threads", module)
    spec = {"name": "recorder", "estimator": "greenkfp_test_threads.Recorder", "params": {}}
    train, test = iris
    _ThreadRecordingClassifier.seen.clear()
    with threadpool_limits(limits=2):  # the machine's pools may be wider than the fit is allowed
        default = train_candidate(str(train), str(test), spec, str(tmp_path / "a.skops"), allow_non_sklearn=True,
                                  output_dir=str(tmp_path / "cc"))
    assert _ThreadRecordingClassifier.seen == [1] and default.to_record().fit_threads == 1
    two = train_candidate(str(train), str(test), spec, str(tmp_path / "b.skops"), fit_threads=2,
                          allow_non_sklearn=True, output_dir=str(tmp_path / "cc"))
    assert _ThreadRecordingClassifier.seen[-1] == 2 and two.to_record().fit_threads == 2


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "2", 1025, 10**20])
def test_fit_threads_must_be_a_whole_number_of_at_least_one(iris, tmp_path, value):
    train, test = iris
    with pytest.raises(ValueError, match=f"fit_threads must be a whole number from 1 to 1024, got {value!r}"):
        train_candidate(str(train), str(test), LOGREG, str(tmp_path / "m.skops"), fit_threads=value)
    assert not (tmp_path / "m.skops").exists()
