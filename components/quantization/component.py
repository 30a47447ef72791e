"""KFP adapter for ONNX conversion and quantization. Everything the body needs is imported in it."""

# No `from __future__ import annotations`: kfp reads the real annotation objects.
from typing import NamedTuple

from kfp.dsl import Artifact, Dataset, Input, Markdown, Metrics, Model, Output

from .._runtime import component


@component("pandas", "pyarrow", "scikit-learn", "skops",
           "onnx", "onnxruntime", "skl2onnx", "onnxconverter-common")
def convert_and_quantize(
    model: Input[Model],
    test: Input[Dataset],
    calibration: Input[Dataset],
    variants: Output[Model],
    variant_list: Output[Artifact],
    metrics: Output[Metrics],
    summary: Output[Markdown],
    variant_names: list = ["fp32", "int8_dynamic", "int8_static", "fp16"],
    per_channel: bool = False,
    tolerance_points: float = 1.0,
    calibration_rows: int = 200,
    seed: int = 0,
) -> NamedTuple("QuantizationOutputs", [("produced", int), ("eligible", int)]):
    """Convert a trained model to ONNX and build smaller, faster variants, each parity-checked.

    Variants: fp32 (skl2onnx, pinned opset, no ZipMap), int8_dynamic (onnxruntime
    quantize_dynamic), int8_static (QDQ, calibrated on train rows), fp16 (onnxconverter-common).
    Models with nothing to quantize (tree ensembles, linear models) pass through as fp32 with
    the reason recorded. A variant losing more than tolerance_points of accuracy is kept but
    marked not eligible.

    Args:
        model: A scikit-learn model (skops, from train_with_emissions) or an ONNX model.
        test: Test split: parity (accuracy, agreement, probability difference).
        calibration: Train split: calibration rows for int8_static.
        variant_names: Which variants to build.
        per_channel: Per-channel int8 weight quantization.
        tolerance_points: Largest accuracy drop, percentage points, for a variant to be eligible.
        calibration_rows: Rows sampled (seeded) from the calibration split.
        seed: Seed of that sample.

    Returns:
        variants: Directory of the ONNX variant files (metadata: each variant's precision, opset, size,
            parity and eligibility).
        variant_list: The variant list (JSON, schema greenkfp.quantization/v1): every requested
            variant, produced or not, with its parity figures and eligibility.
        metrics: Per-variant accuracy, change (points), agreement, size and eligibility.
        summary: The variants as a Markdown table, with methods and remarks.
        produced: Number of variant files written.
        eligible: Number of variants eligible for selection.
    """
    import os
    from collections import namedtuple

    from greenkfp.components.quantization.variants import (
        convert_and_quantize as build,
        variant_list as variant_record,
        write_component_outputs,
    )

    os.makedirs(variants.path, exist_ok=True)
    reports = build(model.path, test.path, calibration.path, variants.path, variants=variant_names,
                    per_channel=per_channel, tolerance_points=tolerance_points, calibration_rows=calibration_rows,
                    seed=seed, classes=model.metadata.get("classes"))
    variants.metadata.update(write_component_outputs(
        reports, variants_dir=variants.path, json_path=variant_list.path, summary_path=summary.path))
    variants.metadata["candidate"] = model.metadata.get("candidate")
    record = variant_record(reports)
    variant_list.metadata["schema"] = record.SCHEMA
    for name, value in record.metrics().items():
        metrics.log_metric(name, value)
    outputs = namedtuple("QuantizationOutputs", ["produced", "eligible"])
    return outputs(sum(r.produced for r in reports), sum(r.eligible for r in reports))
