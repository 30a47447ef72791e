"""Build every ONNX variant of one trained model and check each against the original.

Plain Python (no kfp import). :func:`build_variants` is the core; :func:`convert_and_quantize`
reads the model and the greenkfp dataset files first (what the KFP component calls).

Order of work: validate every parameter and the data against the model (no conversion yet),
then convert to fp32 ONNX and require it to reproduce the original's predicted labels, then
build each requested variant, check its parity and write it to ``out_dir/<variant>.onnx``
(temporary file, then rename). A variant that cannot be produced (nothing to quantize, or a
converter failure) gets a report with the reason and no file; a stale file of that name from
an earlier run is removed so the folder matches the reports.
"""

from __future__ import annotations

import hashlib
import logging
import math
import numbers
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx

from .._files import write_atomic
from ..records import VariantList, write_record
from .convert import (
    ML_OPSET,
    OPSET,
    QuantizationError,
    SourceModel,
    convert_to_onnx,
    default_opset,
    load_source_model,
    make_session,
    opset_imports,
    predict_session,
)
from .parity import accuracy, accuracy_change_points, check_conversion, compare, eligibility
from .quantize import (
    STATIC_ACTIVATION_TYPES,
    VARIANTS,
    VariantModel,
    check_variants,
    float16_variant,
    quantize_dynamic_variant,
    quantize_static_variant,
    sample_calibration_rows,
)

logger = logging.getLogger(__name__)

#: Schema id of the JSON list :func:`write_variants_json` writes (one per entry).
SCHEMA = VariantList.SCHEMA
_PRECISION = {"fp32": "float32", "int8_dynamic": "int8", "int8_static": "int8", "fp16": "float16"}


@dataclass
class VariantReport:
    """One variant of a source model: how it was made, where it is, how it compares.

    Attributes:
        name: Variant name (``fp32``, ``int8_dynamic``, ``int8_static``, ``fp16``).
        produced: Whether a file was written.
        reason: Why it was not produced (None when it was).
        path: The ``.onnx`` file, or None.
        precision: ``float32``, ``int8`` or ``float16`` (int8: the weights; see ``method``).
        method: Tool, function and settings that made it.
        opset: Default-domain ONNX opset of the file (None when not produced).
        opset_imports: Every domain's opset of the file, e.g. ``{"ai.onnx": 17, "ai.onnx.ml": 1}``.
        size_bytes: File size in bytes.
        size_ratio_vs_fp32: fp32 size / this size (how many times smaller than fp32).
        accuracy: Test accuracy (0 to 1).
        original_accuracy: Test accuracy of the original model: the scikit-learn estimator for
            a skops source, the ONNX model as given for an ONNX source.
        accuracy_change_points: (accuracy - original_accuracy) x 100, percentage points.
        agreement_rate: Share of test rows predicted the same as the original (0 to 1).
        max_probability_diff: Largest absolute probability difference against the original,
            over all rows and classes (scores, for a model that outputs scores).
        eligible: False when not produced or when accuracy dropped more than the tolerance.
        eligibility_reason: Why (in words, with the figures).
        tolerance_points: The accuracy-drop tolerance applied, percentage points.
        source_path, source_format, source_estimator: The source model file, its format
            (``skops`` or ``onnx``) and the estimator's class (``onnx`` for ONNX sources).
        test_rows: Rows the parity figures are computed on.
        calibration_rows: Rows calibration used (``int8_static`` only).
        per_channel: Per-channel weight quantization (int8 variants only).
        sha256: Hex SHA-256 of the file.
        build_seconds: Wall time to build this variant (conversion or quantization), seconds.
        notes: Anything else worth knowing (near-tie label flips, for instance).
    """

    name: str
    produced: bool
    reason: str | None
    path: str | None
    precision: str
    method: str
    opset: int | None
    opset_imports: dict[str, int] | None
    size_bytes: int | None
    size_ratio_vs_fp32: float | None
    accuracy: float | None
    original_accuracy: float
    accuracy_change_points: float | None
    agreement_rate: float | None
    max_probability_diff: float | None
    eligible: bool
    eligibility_reason: str
    tolerance_points: float
    source_path: str
    source_format: str
    source_estimator: str
    test_rows: int
    calibration_rows: int | None = None
    per_channel: bool | None = None
    sha256: str | None = None
    build_seconds: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready; non-finite floats become None."""
        data = asdict(self)
        return {"schema": SCHEMA, **{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                                     for k, v in data.items()}}

    def artifact_metadata(self) -> dict:
        """Metadata for a KFP Model artifact holding this variant."""
        return {
            "framework": "onnx",
            "format": "onnx",
            "variant": self.name,
            "precision": self.precision,
            "quantization": self.method,
            "opset": self.opset,
            "opset_imports": self.opset_imports,
            "size_bytes": self.size_bytes,
            "accuracy": self.accuracy,
            "accuracy_change_points": self.accuracy_change_points,
            "agreement_rate": self.agreement_rate,
            "max_probability_diff": self.max_probability_diff,
            "eligible": self.eligible,
            "source_model": self.source_path,
            "source_estimator": self.source_estimator,
        }


# ---------------------------------------------------------------------------------------------
# validation


def _matrix(X, name: str) -> np.ndarray:
    try:
        array = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise QuantizationError(f"{name} must be a numeric 2-D array: {exc}") from None
    if array.ndim != 2:
        raise QuantizationError(f"{name} must be 2-D (rows, features), got shape {array.shape}")
    if array.shape[0] == 0:
        raise QuantizationError(f"{name} has no rows")
    if not np.isfinite(array).all():
        raise QuantizationError(f"{name} holds NaN or infinite values")
    return array


def _check_parameters(per_channel, tolerance_points, calibration_rows, seed, static_activation, threads) -> None:
    if not isinstance(per_channel, bool):
        raise QuantizationError(f"per_channel must be True or False, got {per_channel!r}")
    if (isinstance(tolerance_points, bool) or not isinstance(tolerance_points, numbers.Real)
            or not math.isfinite(tolerance_points) or tolerance_points < 0):
        raise QuantizationError(f"tolerance_points must be a finite number >= 0, got {tolerance_points!r}")
    for name, value, least in (("calibration_rows", calibration_rows, 1), ("seed", seed, 0), ("threads", threads, 1)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
            raise QuantizationError(f"{name} must be an integer >= {least}, got {value!r}")
    if static_activation not in STATIC_ACTIVATION_TYPES:
        raise QuantizationError(
            f"static_activation must be one of {', '.join(STATIC_ACTIVATION_TYPES)}, got {static_activation!r}"
        )


# ---------------------------------------------------------------------------------------------
# building


def _fp32_from_sklearn(source: SourceModel) -> tuple[onnx.ModelProto, str]:
    import skl2onnx

    model = convert_to_onnx(source.estimator, source.n_features)
    return model, (f"skl2onnx {skl2onnx.__version__} conversion (opset {OPSET}, ai.onnx.ml <= {ML_OPSET}, "
                   "no ZipMap, float32 input)")


def _file_fields(data: bytes, path: Path) -> dict:
    model = onnx.load_model_from_string(data)
    return {
        "path": str(path),
        "opset": default_opset(model),
        "opset_imports": opset_imports(model),
        "size_bytes": path.stat().st_size,
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def build_variants(
    source: SourceModel | str | os.PathLike,
    test_X,
    test_y,
    calibration_X,
    out_dir: str | os.PathLike,
    *,
    variants: Sequence[str] = VARIANTS,
    per_channel: bool = False,
    tolerance_points: float = 1.0,
    calibration_rows: int = 200,
    seed: int = 0,
    static_activation: str = "uint8",
    threads: int = 1,
) -> list[VariantReport]:
    """Convert ``source`` to ONNX variants and check each on the test rows.

    Args:
        source: A :class:`SourceModel` or the path of a skops or ONNX model.
        test_X, test_y: Held-out rows and their true labels: every parity figure comes from them.
        calibration_X: Rows to calibrate ``int8_static`` with (the train split's features); only
            needed when ``int8_static`` is requested.
        out_dir: Folder for ``<variant>.onnx`` files (created if missing).
        variants: Which of ``fp32``, ``int8_dynamic``, ``int8_static``, ``fp16`` to build.
        per_channel: Per-channel (rather than per-tensor) int8 weight scales.
        tolerance_points: Largest accuracy drop, in percentage points against the original,
            that leaves a variant eligible.
        calibration_rows: Most calibration rows to use, a seeded sample when there are more.
        seed: Seed of the calibration sample.
        static_activation: ``uint8`` (onnxruntime's advice for x86-64) or ``int8`` (for ARM)
            activations in ``int8_static``.
        threads: onnxruntime intra-op threads for the parity runs.

    Returns:
        One :class:`VariantReport` per requested variant, in build order, including the ones
        not produced (with their reason).

    Raises:
        QuantizationError: a bad parameter, unusable data, a model/data feature-count mismatch
            (all before any conversion), or an fp32 conversion that does not reproduce the
            original's predicted labels.
    """
    names = check_variants(variants)
    _check_parameters(per_channel, tolerance_points, calibration_rows, seed, static_activation, threads)
    if not isinstance(source, SourceModel):
        source = load_source_model(source)
    X = _matrix(test_X, "test_X")
    y = np.asarray(test_y).reshape(-1) if np.ndim(test_y) <= 1 else np.asarray(test_y)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise QuantizationError(f"test_y must hold one label per test_X row ({X.shape[0]}), got shape {np.shape(test_y)}")
    if source.n_features is not None and X.shape[1] != source.n_features:
        raise QuantizationError(
            f"feature count mismatch: the model {source.path!r} takes {source.n_features} features, "
            f"test_X has {X.shape[1]}"
        )
    calibration = None
    if "int8_static" in names:
        if calibration_X is None:
            raise QuantizationError("calibration_X is required for the int8_static variant (rows of the train split)")
        calibration = _matrix(calibration_X, "calibration_X")
        if calibration.shape[1] != X.shape[1]:
            raise QuantizationError(
                f"feature count mismatch: calibration_X has {calibration.shape[1]} features, test_X has {X.shape[1]}"
            )
        calibration = sample_calibration_rows(calibration, int(calibration_rows), int(seed))

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tolerance = float(tolerance_points)

    # the original's predictions and the fp32 ONNX model
    started = time.perf_counter()
    if source.format == "skops":
        estimator = source.estimator
        reference_labels = estimator.predict(X)
        reference_probabilities = estimator.predict_proba(X) if hasattr(estimator, "predict_proba") else None
        fp32_model, fp32_method = _fp32_from_sklearn(source)
    else:
        fp32_model, fp32_method = source.onnx_model, "as given (ONNX source model, not re-converted)"
        reference_labels = reference_probabilities = None
    fp32_seconds = time.perf_counter() - started
    fp32_data = fp32_model.SerializeToString()
    try:
        fp32_labels, fp32_probabilities = predict_session(make_session(fp32_data, threads), X, classes=source.classes)
    except QuantizationError:
        raise
    except Exception as exc:  # onnxruntime's Fail/InvalidArgument/RuntimeException
        raise QuantizationError(
            f"onnxruntime cannot run the fp32 model of {source.path!r} on test_X ({X.shape[1]} features): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if source.format == "onnx":
        reference_labels, reference_probabilities = fp32_labels, fp32_probabilities
    original_accuracy = accuracy(reference_labels, y)
    fp32_parity = compare(fp32_labels, fp32_probabilities, reference_labels, reference_probabilities, y)
    fp32_note = None
    if source.format == "skops":
        fp32_note = check_conversion(fp32_parity, fp32_labels, reference_labels, reference_probabilities,
                                     what=f"the fp32 ONNX conversion of {source.estimator_type}")

    common = {
        "original_accuracy": original_accuracy,
        "tolerance_points": tolerance,
        "source_path": source.path,
        "source_format": source.format,
        "source_estimator": source.estimator_type,
        "test_rows": int(X.shape[0]),
    }
    reports: list[VariantReport] = []
    for name in names:
        started = time.perf_counter()
        notes: list[str] = []
        if name == "fp32":
            variant = VariantModel("fp32", "float32", fp32_method, data=fp32_data)
            seconds = fp32_seconds
            if fp32_note:
                notes.append(fp32_note)
        else:
            variant = _build_one(name, fp32_model, calibration, per_channel, static_activation)
            seconds = time.perf_counter() - started
        extra = {
            "calibration_rows": int(calibration.shape[0]) if name == "int8_static" and calibration is not None else None,
            "per_channel": per_channel if name.startswith("int8") else None,
        }
        target = out / f"{name}.onnx"
        if variant.produced:
            if name == "fp32":
                parity = fp32_parity
            else:
                try:
                    labels, probabilities = predict_session(make_session(variant.data, threads), X, classes=source.classes)
                except Exception as exc:  # onnxruntime rejects the model: a converter bug, not the user's
                    variant = VariantModel(name, variant.precision, variant.method,
                                           reason=f"onnxruntime cannot run the {name} model: {type(exc).__name__}: {exc}")
                else:
                    parity = compare(labels, probabilities, reference_labels, reference_probabilities, y)
        if not variant.produced:
            target.unlink(missing_ok=True)
            logger.info("variant %s not produced: %s", name, variant.reason)
            reports.append(VariantReport(
                name=name, produced=False, reason=variant.reason, path=None, precision=variant.precision,
                method=variant.method, opset=None, opset_imports=None, size_bytes=None, size_ratio_vs_fp32=None,
                accuracy=None, accuracy_change_points=None, agreement_rate=None, max_probability_diff=None,
                eligible=False, eligibility_reason=f"not produced: {variant.reason}", build_seconds=seconds,
                notes=notes, **common, **extra,
            ))
            continue
        write_atomic(target, variant.data)
        files = _file_fields(variant.data, target)
        change = accuracy_change_points(parity.accuracy, original_accuracy)
        eligible, why = eligibility(change, tolerance)
        reports.append(VariantReport(
            name=name, produced=True, reason=None, precision=variant.precision, method=variant.method,
            size_ratio_vs_fp32=len(fp32_data) / len(variant.data), accuracy=parity.accuracy,
            accuracy_change_points=change, agreement_rate=parity.agreement_rate,
            max_probability_diff=parity.max_probability_diff, eligible=eligible, eligibility_reason=why,
            build_seconds=seconds, notes=notes, **files, **common, **extra,
        ))
    return reports


def _build_one(name: str, fp32_model: onnx.ModelProto, calibration, per_channel: bool,
               static_activation: str) -> VariantModel:
    """Run one quantizer; its failures become a not-produced variant with the reason."""
    try:
        if name == "int8_dynamic":
            return quantize_dynamic_variant(fp32_model, per_channel=per_channel)
        if name == "int8_static":
            return quantize_static_variant(fp32_model, calibration, per_channel=per_channel,
                                           activation_type=static_activation)
        return float16_variant(fp32_model)
    except QuantizationError:
        raise
    except Exception as exc:  # onnxruntime's quantizer raises many types on graphs it cannot handle
        logger.warning("variant %s failed", name, exc_info=True)
        tool = {"int8_dynamic": "quantize_dynamic", "int8_static": "quantize_static"}.get(name, "float16 conversion")
        return VariantModel(name, _PRECISION[name], tool, reason=f"{tool} failed: {type(exc).__name__}: {exc}")


# ---------------------------------------------------------------------------------------------
# from dataset files, and outputs


def convert_and_quantize(
    model_path: str | os.PathLike,
    test_path: str | os.PathLike,
    calibration_path: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    *,
    classes: Sequence | None = None,
    **options,
) -> list[VariantReport]:
    """:func:`build_variants` from files: a skops or ONNX model, the greenkfp test split and
    the train split for calibration (Parquet files from ``load_dataset``).

    ``options`` are :func:`build_variants`'s keyword arguments. The model is loaded and the
    splits are checked against each other before any conversion.
    """
    from greenkfp.components.data.datasets import read_dataset

    names = check_variants(options.pop("variants", VARIANTS))
    source = load_source_model(model_path, classes=classes)
    test = read_dataset(test_path)
    calibration_X = None
    if "int8_static" in names:
        if calibration_path is None:
            raise QuantizationError("calibration_path (the train split) is required for the int8_static variant")
        calibration = read_dataset(calibration_path)
        if list(calibration.feature_names) != list(test.feature_names):
            raise QuantizationError(
                f"the calibration split's features ({len(calibration.feature_names)}) differ from the test split's "
                f"({len(test.feature_names)})"
            )
        calibration_X = calibration.X
    return build_variants(source, test.X, test.y, calibration_X, out_dir, variants=names, **options)


def variant_list(reports: Sequence[VariantReport], variants_dir: str | os.PathLike | None = None) -> VariantList:
    """The variant list record of ``reports``; with ``variants_dir``, each entry's ``file`` is its
    path relative to that directory (so the list stays valid wherever the directory is mounted)."""
    entries = []
    for report in reports:
        entry = report.to_dict()
        if variants_dir is not None:
            entry["file"] = None if report.path is None else os.path.relpath(report.path, variants_dir)
        entries.append(entry)
    return VariantList.from_list(entries)


def write_variants_json(reports: Sequence[VariantReport], path: str | os.PathLike) -> Path:
    """Write the reports as a variant list (JSON, atomically) for the next pipeline steps."""
    return write_record(variant_list(reports), path)


def write_component_outputs(
    reports: Sequence[VariantReport], *, variants_dir: str | os.PathLike, json_path: str | os.PathLike,
    summary_path: str | os.PathLike,
) -> dict:
    """Write the variant list (JSON, each entry's ``file`` relative to ``variants_dir``) and its
    Markdown table; return the directory artifact's metadata."""
    record = variant_list(reports, variants_dir)
    write_record(record, json_path)
    write_atomic(summary_path, record.markdown())
    return {
        "framework": "onnx",
        "format": "directory of .onnx files",
        "variants": {r.name: r.artifact_metadata() for r in reports if r.produced},
        "not_produced": {r.name: r.reason for r in reports if not r.produced},
        "eligible": [r.name for r in reports if r.eligible],
    }
