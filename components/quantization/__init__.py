"""Quantization: ONNX export of scikit-learn classifiers, int8 (dynamic and static) and fp16
variants, and their parity against the original model on held-out data.

Plain Python (no kfp import): the KFP adapter lives in ``component.py``.

Typical use::

    from greenkfp.components.quantization import convert_and_quantize, write_variants_json

    reports = convert_and_quantize("model.skops", "test.parquet", "train.parquet", "variants/")
    write_variants_json(reports, "variants.json")
"""

from .convert import (
    INPUT_NAME,
    ML_OPSET,
    OPSET,
    ModelSignature,
    QuantizationError,
    SourceModel,
    convert_to_onnx,
    load_source_model,
    make_session,
    model_signature,
    predict_session,
    run_onnx,
)
from .parity import FP32_PROBABILITY_ATOL, Parity, compare
from .quantize import (
    QUANTIZED_OP_TYPES,
    STATIC_ACTIVATION_TYPES,
    VARIANTS,
    RowCalibrationReader,
    VariantModel,
    check_variants,
    float16_variant,
    quantize_dynamic_variant,
    quantize_static_variant,
    quantized_node_count,
    sample_calibration_rows,
)
from .variants import (
    SCHEMA,
    VariantReport,
    build_variants,
    convert_and_quantize,
    variant_list,
    write_variants_json,
)

__all__ = [
    "FP32_PROBABILITY_ATOL",
    "INPUT_NAME",
    "ML_OPSET",
    "OPSET",
    "QUANTIZED_OP_TYPES",
    "SCHEMA",
    "STATIC_ACTIVATION_TYPES",
    "VARIANTS",
    "ModelSignature",
    "Parity",
    "QuantizationError",
    "RowCalibrationReader",
    "SourceModel",
    "VariantModel",
    "VariantReport",
    "build_variants",
    "check_variants",
    "compare",
    "convert_and_quantize",
    "convert_to_onnx",
    "float16_variant",
    "load_source_model",
    "make_session",
    "model_signature",
    "predict_session",
    "quantize_dynamic_variant",
    "quantize_static_variant",
    "quantized_node_count",
    "run_onnx",
    "sample_calibration_rows",
    "variant_list",
    "write_variants_json",
]
