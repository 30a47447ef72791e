"""ONNX conversion, int8/fp16 variants and their parity, on digits with the default candidate types.

Real models, real converters, real onnxruntime sessions: nothing of ours is mocked. The
candidates are the default ones with fewer iterations/trees so the module runs in seconds.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from greenkfp.components.quantization import (
    ML_OPSET,
    OPSET,
    VARIANTS,
    QuantizationError,
    build_variants,
    check_variants,
    convert_and_quantize,
    convert_to_onnx,
    load_source_model,
    quantized_node_count,
    run_onnx,
    sample_calibration_rows,
    variant_list,
    write_variants_json,
)
from greenkfp.components.records import VariantList, read_record
from greenkfp.components.quantization.parity import check_conversion, compare, eligibility
from greenkfp.components.training.estimators import DEFAULT_CANDIDATES, EstimatorSpec, build_estimator
from greenkfp.components.models import save_model

# the default candidates, made quick: fewer trees and epochs (same estimator types)
QUICK = {
    "logistic-regression": {"max_iter": 300},
    "random-forest": {"n_estimators": 30},
    "mlp-small": {"max_iter": 60},
    "mlp-wide": {"max_iter": 15},
}
CANDIDATES = {c["name"]: EstimatorSpec(c["name"], c["estimator"], {**c["params"], **QUICK[c["name"]]})
              for c in DEFAULT_CANDIDATES}
MLPS = ("mlp-small", "mlp-wide")
NO_WEIGHT_OPS = ("logistic-regression", "random-forest")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    return X_train, X_test, y_train, y_test


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory):
    """name -> (fitted estimator, skops path) for every default candidate type."""
    X_train, _, y_train, _ = digits
    folder = tmp_path_factory.mktemp("models")
    models = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, spec in CANDIDATES.items():
            estimator = build_estimator(spec).fit(X_train, y_train)
            models[name] = (estimator, save_model(estimator, folder / f"{name}.skops"))
    return models


@pytest.fixture(scope="module")
def built(digits, trained, tmp_path_factory):
    """name -> (reports by variant, output folder): every variant of every candidate."""
    X_train, X_test, _, y_test = digits
    out = {}
    for name, (_, path) in trained.items():
        folder = tmp_path_factory.mktemp(name)
        reports = build_variants(path, X_test, y_test, X_train, folder)
        out[name] = ({r.name: r for r in reports}, folder)
    return out


# ---------------------------------------------------------------------------------------------
# fp32 conversion


@pytest.mark.parametrize("name", list(CANDIDATES))
def test_fp32_conversion_reproduces_each_default_candidate(name, digits, trained, built):
    _, X_test, _, y_test = digits
    estimator, _ = trained[name]
    report = built[name][0]["fp32"]
    assert report.produced and report.eligible
    assert report.agreement_rate == 1.0
    assert report.max_probability_diff < 1e-4
    assert report.accuracy == pytest.approx(float((estimator.predict(X_test) == y_test).mean()))
    assert report.accuracy_change_points == 0.0
    assert report.opset == OPSET and report.opset_imports["ai.onnx"] == OPSET
    assert report.opset_imports.get("ai.onnx.ml", 0) <= ML_OPSET
    # the file itself: plain tensors out, one float input named "input", same labels as sklearn
    model = onnx.load(report.path)
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["input"]
    assert all(o.type.HasField("tensor_type") for o in model.graph.output)  # no ZipMap
    labels, probabilities = run_onnx(report.path, X_test)
    np.testing.assert_array_equal(labels, estimator.predict(X_test))
    np.testing.assert_allclose(probabilities, estimator.predict_proba(X_test), atol=1e-4)


def test_convert_to_onnx_has_one_default_domain_entry(trained):
    # skl2onnx lists the default domain twice for ai.onnx.ml models; the quantizer refuses that
    estimator, _ = trained["logistic-regression"]
    model = convert_to_onnx(estimator, 64)
    domains = [o.domain for o in model.opset_import]
    assert sorted(domains) == sorted(set(domains))


# ---------------------------------------------------------------------------------------------
# quantized MLPs


@pytest.mark.parametrize("name", MLPS)
def test_mlp_variants_load_are_smaller_and_within_tolerance(name, digits, built):
    _, X_test, _, y_test = digits
    reports, folder = built[name]
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{v}.onnx" for v in VARIANTS)  # no temp files left
    fp32 = reports["fp32"]
    for variant in ("int8_dynamic", "int8_static", "fp16"):
        report = reports[variant]
        assert report.produced, report.reason
        assert report.size_bytes < fp32.size_bytes
        assert report.size_ratio_vs_fp32 == pytest.approx(fp32.size_bytes / report.size_bytes)
        assert report.accuracy_change_points >= -1.0 and report.eligible, report.eligibility_reason
        labels, probabilities = run_onnx(report.path, X_test)  # loads and runs in onnxruntime
        assert report.accuracy == pytest.approx(float((labels == y_test).mean()))
        assert probabilities.shape == (len(X_test), 10)
    for variant in ("int8_dynamic", "int8_static"):
        report = reports[variant]
        assert report.precision == "int8" and report.per_channel is False
        assert quantized_node_count(onnx.load(report.path)) > 0
    assert reports["int8_static"].calibration_rows == 200
    assert "QDQ" in reports["int8_static"].method
    fp16 = onnx.load(reports["fp16"].path)
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in fp16.graph.initializer)
    if name == "mlp-wide":  # weights dominate the file: int8 is close to 4x smaller, fp16 2x
        assert reports["int8_dynamic"].size_ratio_vs_fp32 > 3.5
        assert reports["fp16"].size_ratio_vs_fp32 > 1.9


def test_per_channel_dynamic_variant(digits, trained, tmp_path):
    X_train, X_test, _, y_test = digits
    reports = build_variants(trained["mlp-small"][1], X_test, y_test, None, tmp_path,
                             variants=["int8_dynamic"], per_channel=True)
    (report,) = reports
    assert report.produced and report.per_channel is True and "per-channel=True" in report.method
    assert sorted(p.name for p in tmp_path.iterdir()) == ["int8_dynamic.onnx"]


# ---------------------------------------------------------------------------------------------
# models with nothing to quantize


@pytest.mark.parametrize("name,operator", [("random-forest", "TreeEnsembleClassifier"),
                                           ("logistic-regression", "LinearClassifier")])
def test_tree_and_linear_models_pass_through_as_fp32_with_reason(name, operator, built):
    reports, folder = built[name]
    assert reports["fp32"].produced and reports["fp32"].eligible
    for variant in ("int8_dynamic", "int8_static", "fp16"):
        report = reports[variant]
        assert not report.produced and not report.eligible
        assert report.path is None and report.size_bytes is None
        assert "nothing to" in report.reason and f"ai.onnx.ml.{operator}" in report.reason
        assert report.eligibility_reason.startswith("not produced")
    assert sorted(p.name for p in folder.iterdir()) == ["fp32.onnx"]


def test_stale_variant_file_is_removed_when_not_produced(digits, trained, tmp_path):
    X_train, X_test, _, y_test = digits
    stale = tmp_path / "int8_dynamic.onnx"
    stale.write_bytes(b"from an earlier run")
    build_variants(trained["random-forest"][1], X_test, y_test, X_train, tmp_path, variants=["fp32", "int8_dynamic"])
    assert not stale.exists()


# ---------------------------------------------------------------------------------------------
# ONNX models given directly


def test_onnx_model_given_directly(digits, trained, tmp_path):
    from skl2onnx import to_onnx

    X_train, X_test, _, y_test = digits
    estimator, _ = trained["mlp-small"]
    exported = to_onnx(estimator, X_train[:1].astype(np.float32), target_opset=15,
                       options={id(estimator): {"zipmap": False}})
    path = tmp_path / "exported.onnx"
    path.write_bytes(exported.SerializeToString())
    source = load_source_model(path)
    assert source.format == "onnx" and source.n_features == 64 and source.estimator is None

    reports = {r.name: r for r in build_variants(path, X_test, y_test, X_train, tmp_path / "out")}
    fp32 = reports["fp32"]
    assert "as given" in fp32.method and fp32.source_format == "onnx" and fp32.opset == 15
    given_labels, _ = run_onnx(path, X_test)
    assert fp32.original_accuracy == pytest.approx(float((given_labels == y_test).mean()))
    assert fp32.agreement_rate == 1.0 and fp32.max_probability_diff == 0.0
    for variant in ("int8_dynamic", "int8_static", "fp16"):
        assert reports[variant].produced and reports[variant].eligible, reports[variant].reason


def test_onnx_model_with_only_a_score_output(digits, trained, tmp_path):
    """A PyTorch-style export: one input, one [batch, classes] logits output, no label output."""
    from onnx import TensorProto, helper, numpy_helper

    X_train, X_test, _, y_test = digits
    estimator, _ = trained["mlp-small"]
    (w1, w2), (b1, b2) = estimator.coefs_, estimator.intercepts_
    weights = [numpy_helper.from_array(a.astype(np.float32), n) for a, n in
               ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h0"]), helper.make_node("Add", ["h0", "b1"], ["h1"]),
             helper.make_node("Relu", ["h1"], ["h2"]), helper.make_node("MatMul", ["h2", "w2"], ["h3"]),
             helper.make_node("Add", ["h3", "b2"], ["logits"])]
    graph = helper.make_graph(nodes, "torch_like", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    path = tmp_path / "logits.onnx"
    onnx.save(model, path)

    source = load_source_model(path, classes=list(estimator.classes_))
    reports = {r.name: r for r in build_variants(source, X_test, y_test, X_train, tmp_path / "out")}
    assert reports["fp32"].original_accuracy == pytest.approx(estimator.score(X_test, y_test))
    assert reports["int8_dynamic"].produced and reports["int8_dynamic"].eligible


# ---------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("content", [b"", b"definitely not a model\n", b'{"model": "json"}', "truncated"])
def test_corrupt_or_non_onnx_file_is_a_clear_error(content, trained, tmp_path):
    estimator, _ = trained["logistic-regression"]
    if content == "truncated":
        whole = convert_to_onnx(estimator, 64).SerializeToString()
        content = whole[: len(whole) // 2]
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    with pytest.raises(QuantizationError, match="model.onnx") as error:
        load_source_model(path)
    assert "ONNX" in str(error.value)


def test_corrupt_skops_file_and_missing_file(tmp_path):
    import zipfile

    broken = tmp_path / "broken.skops"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("schema.json", "{not json")
    with pytest.raises(QuantizationError, match="broken.skops"):
        load_source_model(broken)
    with pytest.raises(QuantizationError, match="no such file"):
        load_source_model(tmp_path / "absent.onnx")


def test_feature_count_mismatch_is_an_error_before_any_work(digits, trained, tmp_path):
    X_train, X_test, _, y_test = digits
    out = tmp_path / "out"
    with pytest.raises(QuantizationError, match=r"takes 64 features, test_X has 63"):
        build_variants(trained["mlp-small"][1], X_test[:, :63], y_test, X_train, out)
    assert not out.exists()  # nothing converted, nothing written

    onnx_path = tmp_path / "m.onnx"
    onnx_path.write_bytes(convert_to_onnx(trained["mlp-small"][0], 64).SerializeToString())
    with pytest.raises(QuantizationError, match=r"takes 64 features, test_X has 70"):
        build_variants(onnx_path, np.hstack([X_test, X_test[:, :6]]), y_test, None, out, variants=["fp32"])
    with pytest.raises(QuantizationError, match=r"calibration_X has 10 features, test_X has 64"):
        build_variants(onnx_path, X_test, y_test, X_train[:, :10], out)
    with pytest.raises(QuantizationError, match="fitted on 64 features"):
        convert_to_onnx(trained["mlp-small"][0], 32)


def test_unknown_variant_name_lists_the_valid_ones(digits, tmp_path):
    _, X_test, _, y_test = digits
    with pytest.raises(QuantizationError, match="'int4'.*valid names: fp32, int8_dynamic, int8_static, fp16"):
        build_variants(tmp_path / "never-loaded.skops", X_test, y_test, None, tmp_path, variants=["fp32", "int4"])
    with pytest.raises(QuantizationError, match="more than once"):
        check_variants(["fp32", "fp32"])
    assert check_variants("fp16, fp32") == ("fp32", "fp16")  # build order, comma-separated text accepted


@pytest.mark.parametrize("option,value,message", [
    ("tolerance_points", -1, "tolerance_points"),
    ("calibration_rows", 0, "calibration_rows"),
    ("per_channel", "yes", "per_channel"),
    ("static_activation", "int4", "static_activation"),
])
def test_bad_parameters_name_field_and_value(option, value, message, digits, trained, tmp_path):
    X_train, X_test, _, y_test = digits
    with pytest.raises(QuantizationError, match=message) as error:
        build_variants(trained["mlp-small"][1], X_test, y_test, X_train, tmp_path, **{option: value})
    assert repr(value) in str(error.value)


def test_static_variant_needs_calibration_rows(digits, trained, tmp_path):
    _, X_test, _, y_test = digits
    with pytest.raises(QuantizationError, match="calibration_X is required"):
        build_variants(trained["mlp-small"][1], X_test, y_test, None, tmp_path)


# ---------------------------------------------------------------------------------------------
# parity rules, calibration sampling, outputs


def test_near_tie_flips_are_excused_other_disagreements_are_not():
    reference_p = np.array([[0.5, 0.5 - 1e-8, 0.0], [0.9, 0.05, 0.05]])
    reference_labels = np.array([0, 0])
    converted_p = reference_p + np.array([[-1e-7, 1e-7, 0.0], [0.0, 0.0, 0.0]])
    flipped = np.array([1, 0])
    parity = compare(flipped, converted_p, reference_labels, reference_p, np.array([0, 0]))
    assert parity.agreement_rate == 0.5
    note = check_conversion(parity, flipped, reference_labels, reference_p, what="test")
    assert "near ties" in note
    wrong = np.array([0, 1])  # row 1 has a clear winner: not a rounding flip
    parity = compare(wrong, converted_p, reference_labels, reference_p, np.array([0, 0]))
    with pytest.raises(QuantizationError, match="agreement rate 0.500000"):
        check_conversion(parity, wrong, reference_labels, reference_p, what="test")


def test_eligibility_marks_drops_beyond_the_tolerance():
    assert eligibility(-0.99, 1.0)[0] is True
    assert eligibility(-1.0, 1.0)[0] is True
    eligible, reason = eligibility(-1.34, 1.0)
    assert eligible is False and "1.34 points" in reason and "1-point tolerance" in reason


def test_variant_beyond_the_tolerance_is_kept_but_not_eligible(digits, trained, tmp_path):
    # calibrating on one row clips most activations: a large, deterministic accuracy drop
    X_train, X_test, _, y_test = digits
    (report,) = build_variants(trained["mlp-small"][1], X_test, y_test, X_train, tmp_path,
                               variants=["int8_static"], calibration_rows=1)
    assert report.calibration_rows == 1
    assert report.accuracy_change_points < -1.0
    assert report.produced and Path(report.path).is_file()  # kept
    assert not report.eligible and "more than the 1-point tolerance" in report.eligibility_reason
    assert "**no**" in variant_list([report]).markdown()


def test_calibration_sample_is_seeded_and_limited():
    X = np.arange(1000, dtype=float).reshape(500, 2)
    a, b = sample_calibration_rows(X, 200, seed=3), sample_calibration_rows(X, 200, seed=3)
    assert a.shape == (200, 2) and np.array_equal(a, b)
    assert not np.array_equal(a, sample_calibration_rows(X, 200, seed=4))
    assert np.all(np.diff(a[:, 0]) > 0)  # original order kept
    assert sample_calibration_rows(X[:50], 200, seed=3).shape == (50, 2)


def test_json_list_markdown_and_metrics(built, tmp_path):
    reports = list(built["mlp-small"][0].values()) + [built["random-forest"][0]["int8_dynamic"]]
    path = write_variants_json(reports, tmp_path / "variants.json")
    record = read_record(VariantList, path)
    assert [v.name for v in record] == ["fp32", "int8_dynamic", "int8_static", "fp16", "int8_dynamic"]
    first = json.loads(path.read_text())[1]
    for key in ("source_path", "precision", "method", "opset", "size_bytes", "accuracy", "accuracy_change_points",
                "agreement_rate", "max_probability_diff", "eligible", "eligibility_reason", "sha256"):
        assert key in first
    assert record[-1].produced is False and "nothing to quantize" in record[-1].reason
    json.dumps(record.to_list(), allow_nan=False)  # strict JSON
    assert record == variant_list(reports)

    text = record.markdown()
    assert "| int8_static | int8 |" in text and "not produced" in text
    metrics = record.metrics()
    assert metrics["fp32_agreement_rate"] == 1.0 and "int8_dynamic_size_bytes" in metrics


def test_convert_and_quantize_from_dataset_files(trained, tmp_path):
    from greenkfp.components.data.datasets import prepare_dataset

    train, test = tmp_path / "train.parquet", tmp_path / "test.parquet"
    prepare_dataset("digits", None, train, test)  # the project's data step, same split as the fixture
    reports = convert_and_quantize(trained["mlp-small"][1], test, train, tmp_path / "out",
                                   variants=["fp32", "int8_static"], calibration_rows=50)
    assert [r.name for r in reports] == ["fp32", "int8_static"]
    assert reports[0].agreement_rate == 1.0
    assert reports[1].produced and reports[1].calibration_rows == 50
    assert Path(reports[1].path).is_file()
