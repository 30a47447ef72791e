"""Quantized and half-precision variants of an fp32 ONNX model.

Plain Python (no kfp import). Each function takes the fp32 model and returns a
:class:`VariantModel`: the new model's bytes, or the reason it was not produced. Nothing here
writes outside a work folder the caller gives; :func:`~greenkfp.components.quantization.build_variants`
writes the files.

* ``int8_dynamic``: ``onnxruntime.quantization.quantize_dynamic``, int8 weights, activations
  quantized at run time (``DynamicQuantizeLinear`` + ``MatMulInteger``), per-tensor or
  per-channel.
* ``int8_static``: ``quantize_static`` in QDQ format (onnxruntime's recommended format on CPU
  since 1.11) with min/max calibration over sampled rows of the train split; weights int8,
  activations uint8 by default (onnxruntime's guidance for x86-64 CPUs, with or without VNNI)
  or int8 (its guidance for ARM).
* ``fp16``: ``onnxconverter_common.float16.convert_float_to_float16(keep_io_types=True)``:
  weights and activations in float16, input and outputs still float32.

Both int8 variants start from ``quant_pre_process`` (ONNX shape inference and onnxruntime's
basic graph optimisation, which for instance fuses MatMul+Add into Gemm), as onnxruntime asks.
Symbolic shape inference, which needs sympy and mostly helps transformer models, runs only
when sympy is installed; the method text says whether it ran.

Nothing to quantize is an expected outcome, not an error: tree ensembles and linear models
convert to ``ai.onnx.ml`` operators (TreeEnsembleClassifier, LinearClassifier) that the
quantizer leaves alone, and the float16 converter keeps them in float32. The check is made on
the graph, not on the model type: before quantizing, does the graph hold any default-domain
operator the quantizer handles; after, does the result hold any quantized node (or, for fp16,
any float16 weight).
"""

from __future__ import annotations

import importlib.util
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from .convert import QuantizationError, model_signature

#: Variant names, in the order they are built.
VARIANTS: tuple[str, ...] = ("fp32", "int8_dynamic", "int8_static", "fp16")
#: Activation types for ``int8_static``.
STATIC_ACTIVATION_TYPES: tuple[str, ...] = ("uint8", "int8")

#: Node types whose presence shows that a graph was quantized.
QUANTIZED_OP_TYPES = frozenset({
    "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger",
    "QLinearMatMul", "QLinearConv", "QGemm", "DynamicQuantizeMatMul", "MatMulIntegerToFloat",
    "QAttention", "DynamicQuantizeLSTM", "QEmbedLayerNormalization", "QLinearAdd", "QLinearMul",
})
# Operators the quantizers act on without touching weights; their presence alone does not make
# a model worth quantizing.
_WEIGHTLESS = frozenset({"Relu", "Clip", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Slice",
                         "Split", "Pad", "MaxPool", "AveragePool", "Resize", "TopK", "Where", "CumSum", "ArgMax",
                         "Softmax", "Sigmoid", "LeakyRelu", "Concat", "GlobalAveragePool", "Add", "Mul"})


@dataclass(frozen=True)
class VariantModel:
    """The outcome of building one variant.

    Attributes:
        name: The variant name (one of :data:`VARIANTS`).
        precision: ``"float32"``, ``"int8"`` or ``"float16"``.
        method: How it was made (tool, function, settings).
        data: The serialised ONNX model, or None when not produced.
        reason: Why it was not produced (None when it was).
    """

    name: str
    precision: str
    method: str
    data: bytes | None = None
    reason: str | None = None

    @property
    def produced(self) -> bool:
        return self.data is not None


def check_variants(variants) -> tuple[str, ...]:
    """``variants`` as a tuple in build order; QuantizationError for unknown or repeated names."""
    if isinstance(variants, str):
        variants = [v.strip() for v in variants.split(",") if v.strip()]
    try:
        names = list(variants)
    except TypeError:
        raise QuantizationError(f"variants must be a list of names from {', '.join(VARIANTS)}, got {variants!r}") from None
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        raise QuantizationError(
            f"unknown variant name(s) {', '.join(map(repr, unknown))}; valid names: {', '.join(VARIANTS)}"
        )
    repeated = sorted({v for v in names if names.count(v) > 1})
    if repeated:
        raise QuantizationError(f"variants lists {', '.join(repeated)} more than once")
    if not names:
        raise QuantizationError(f"variants is empty; choose from {', '.join(VARIANTS)}")
    return tuple(v for v in VARIANTS if v in names)


# ---------------------------------------------------------------------------------------------
# calibration


def sample_calibration_rows(X: np.ndarray, rows: int, seed: int) -> np.ndarray:
    """At most ``rows`` rows of ``X`` drawn without replacement with ``seed``, kept in their
    original order (all of them when ``X`` has no more)."""
    X = np.asarray(X)
    if X.shape[0] <= rows:
        return X
    index = np.sort(np.random.default_rng(seed).choice(X.shape[0], size=rows, replace=False))
    return X[index]


def _calibration_reader_class():
    from onnxruntime.quantization import CalibrationDataReader

    class RowCalibrationReader(CalibrationDataReader):
        """Feeds calibration rows to ``quantize_static`` in batches of ``batch_size``."""

        def __init__(self, rows: np.ndarray, input_name: str, dtype=np.float32, batch_size: int = 64):
            self.rows = np.ascontiguousarray(rows, dtype=dtype)
            self.input_name = input_name
            self.batch_size = int(batch_size)
            self._start = 0

        def get_next(self):
            if self._start >= self.rows.shape[0]:
                return None
            batch = self.rows[self._start : self._start + self.batch_size]
            self._start += self.batch_size
            return {self.input_name: batch}

        def rewind(self) -> None:
            self._start = 0

        def __len__(self) -> int:
            return -(-self.rows.shape[0] // self.batch_size)

    return RowCalibrationReader


def RowCalibrationReader(rows: np.ndarray, input_name: str, dtype=np.float32, batch_size: int = 64):  # noqa: N802
    """A ``CalibrationDataReader`` over ``rows`` (cast to ``dtype``), ``batch_size`` rows a batch.

    (A factory, so importing this module does not import onnxruntime's quantization package.)
    """
    return _calibration_reader_class()(rows, input_name, dtype, batch_size)


# ---------------------------------------------------------------------------------------------
# graph inspection


def operator_names(model: onnx.ModelProto) -> list[str]:
    """Sorted distinct operators of the main graph, ``domain.op`` outside the default domain."""
    return sorted({f"{n.domain}.{n.op_type}" if n.domain not in ("", "ai.onnx") else n.op_type
                   for n in model.graph.node})


def _default_domain_ops(model: onnx.ModelProto) -> set[str]:
    return {n.op_type for n in model.graph.node if n.domain in ("", "ai.onnx")}


def quantizable_operators(model: onnx.ModelProto, mode: str) -> list[str]:
    """Default-domain operators with weights that onnxruntime's ``mode`` (``"dynamic"`` or
    ``"static"``) quantizer handles, as its registries list them."""
    from onnxruntime.quantization.registry import IntegerOpsRegistry, QDQRegistry

    handled = (set(IntegerOpsRegistry) | {"Gemm"}) if mode == "dynamic" else set(QDQRegistry)
    # quantize_dynamic rewrites Gemm as MatMul + Add before quantizing, hence Gemm above
    return sorted((_default_domain_ops(model) & handled) - _WEIGHTLESS)


def quantized_node_count(model: onnx.ModelProto) -> int:
    """How many nodes of ``model`` are quantization nodes (:data:`QUANTIZED_OP_TYPES`)."""
    return sum(1 for n in model.graph.node if n.op_type in QUANTIZED_OP_TYPES)


def _nothing_to_quantize(model: onnx.ModelProto, mode: str) -> str:
    tool = "quantize_dynamic" if mode == "dynamic" else "quantize_static"
    return (f"nothing to quantize: the graph has no operator with weights that onnxruntime's {tool} handles "
            f"(MatMul, Gemm, Conv, Gather, ... in the default ONNX domain); its operators are "
            f"{', '.join(operator_names(model))}; the model stays fp32 (the fp32 variant)")


# ---------------------------------------------------------------------------------------------
# int8


def _has_sympy() -> bool:
    return importlib.util.find_spec("sympy") is not None


def preprocess(model: onnx.ModelProto, work_dir: str | Path) -> tuple[Path, str]:
    """Run ``quant_pre_process`` on ``model`` into ``work_dir``; the path and a note on what ran."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source, target = Path(work_dir) / "fp32.onnx", Path(work_dir) / "preprocessed.onnx"
    # a path, not the ModelProto: given a ModelProto, onnxruntime 1.32's pre-processing skips its
    # optimisation step (it fails to extract the weights and only logs the error)
    source.write_bytes(model.SerializeToString())
    symbolic = _has_sympy()
    _quietly(quant_pre_process, source, target, skip_symbolic_shape=not symbolic)
    note = "quant_pre_process (ONNX shape inference, basic optimisation" + (
        ", symbolic shape inference)" if symbolic else "; symbolic shape inference skipped: sympy not installed)")
    return target, note


def _quantized_or_reason(name: str, path: Path, model: onnx.ModelProto, mode: str, method: str) -> VariantModel:
    quantized = onnx.load(str(path))
    if quantized_node_count(quantized) == 0:
        return VariantModel(name, "int8", method, reason=_nothing_to_quantize(model, mode)
                            + " (the quantizer ran and changed nothing)")
    return VariantModel(name, "int8", method, data=quantized.SerializeToString())


def _quietly(function, *args, **kwargs):
    """Call an onnxruntime quantization function with its root-logger chatter held back."""
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return function(*args, **kwargs)
    finally:
        root.setLevel(level)


def quantize_dynamic_variant(model: onnx.ModelProto, *, per_channel: bool = False,
                             work_dir: str | Path | None = None) -> VariantModel:
    """``int8_dynamic``: int8 weights, activations quantized at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    method = f"onnxruntime quantize_dynamic (QInt8 weights, per-channel={per_channel})"
    if not quantizable_operators(model, "dynamic"):
        return VariantModel("int8_dynamic", "int8", method, reason=_nothing_to_quantize(model, "dynamic"))
    with tempfile.TemporaryDirectory(prefix="greenkfp-quant-", dir=work_dir) as tmp:
        source, note = preprocess(model, tmp)
        method = f"onnxruntime quantize_dynamic after {note} (QInt8 weights, per-channel={per_channel})"
        output = Path(tmp) / "int8_dynamic.onnx"
        _quietly(quantize_dynamic, source, output, weight_type=QuantType.QInt8, per_channel=per_channel)
        return _quantized_or_reason("int8_dynamic", output, model, "dynamic", method)


def quantize_static_variant(model: onnx.ModelProto, calibration_rows: np.ndarray, *, per_channel: bool = False,
                            activation_type: str = "uint8", work_dir: str | Path | None = None) -> VariantModel:
    """``int8_static``: QDQ format, int8 weights, ``activation_type`` activations whose ranges
    come from min/max calibration over ``calibration_rows``."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if activation_type not in STATIC_ACTIVATION_TYPES:
        raise QuantizationError(
            f"static_activation must be one of {', '.join(STATIC_ACTIVATION_TYPES)}, got {activation_type!r}"
        )
    activation = QuantType.QUInt8 if activation_type == "uint8" else QuantType.QInt8
    rows = int(np.asarray(calibration_rows).shape[0])
    settings = (f"QDQ format, QInt8 weights, {activation.name} activations, per-channel={per_channel}, "
                f"MinMax calibration on {rows} rows")
    method = f"onnxruntime quantize_static ({settings})"
    if not quantizable_operators(model, "static"):
        return VariantModel("int8_static", "int8", method, reason=_nothing_to_quantize(model, "static"))
    signature = model_signature(model)
    with tempfile.TemporaryDirectory(prefix="greenkfp-quant-", dir=work_dir) as tmp:
        source, note = preprocess(model, tmp)
        method = f"onnxruntime quantize_static after {note} ({settings})"
        output = Path(tmp) / "int8_static.onnx"
        reader = RowCalibrationReader(calibration_rows, signature.input_name, signature.input_dtype)
        _quietly(quantize_static, source, output, reader, quant_format=QuantFormat.QDQ,
                 activation_type=activation, weight_type=QuantType.QInt8, per_channel=per_channel,
                 calibrate_method=CalibrationMethod.MinMax)
        return _quantized_or_reason("int8_static", output, model, "static", method)


# ---------------------------------------------------------------------------------------------
# fp16


def _prepare_for_float16(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` that onnxconverter-common converts correctly.

    Two things trip its converter on skl2onnx graphs: nodes without names (it keys nodes by
    name, so unnamed Cast nodes collide), and no-op Casts such as skl2onnx's float-to-float Cast
    on the input, which the converter pairs with its own input Cast and removes, wiring the
    float32 input straight into float16 weights. Such Casts are dropped and every node named.
    """
    model = onnx.shape_inference.infer_shapes(model)
    graph = model.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.input, *graph.value_info, *graph.output]}
    types.update({i.name: i.data_type for i in graph.initializer})
    outputs = {o.name for o in graph.output}
    renamed: dict[str, str] = {}
    kept = []
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]
        if node.op_type == "Cast" and node.domain in ("", "ai.onnx") and node.output[0] not in outputs:
            to = next((a.i for a in node.attribute if a.name == "to"), None)
            if to is not None and types.get(node.input[0]) == to:
                renamed[node.output[0]] = node.input[0]
                continue
        kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    used = {n.name for n in graph.node if n.name}
    for index, node in enumerate(graph.node):
        if not node.name:
            candidate = f"{node.op_type}_{index}"
            while candidate in used:
                candidate += "_"
            node.name = candidate
            used.add(candidate)
    return model


def _has_float16_weights(model: onnx.ModelProto) -> bool:
    if any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer):
        return True
    return any(a.t.data_type == onnx.TensorProto.FLOAT16 for n in model.graph.node for a in n.attribute
               if a.type == onnx.AttributeProto.TENSOR)


def _pack_float16(model: onnx.ModelProto) -> None:
    """Store float16 initializers as raw bytes. The converter leaves them in ``int32_data``, a
    varint per value (up to 3 bytes for 2 bytes of data), which makes the file a fifth larger."""
    from onnx import numpy_helper

    for index, tensor in enumerate(model.graph.initializer):
        if tensor.data_type == onnx.TensorProto.FLOAT16 and not tensor.raw_data and not tensor.external_data:
            model.graph.initializer[index].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor), tensor.name))


def float16_variant(model: onnx.ModelProto) -> VariantModel:
    """``fp16``: float16 weights and activations, float32 input and outputs."""
    from onnxconverter_common.float16 import convert_float_to_float16

    method = "onnxconverter-common convert_float_to_float16 (keep_io_types=True)"
    try:
        with warnings.catch_warnings():
            # it warns for every weight below float16's range that it clamps to 1e-7
            warnings.simplefilter("ignore", UserWarning)
            converted = convert_float_to_float16(_prepare_for_float16(model), keep_io_types=True)
    except Exception as exc:  # the converter raises ValueError, KeyError ... on graphs it cannot handle
        return VariantModel("fp16", "float16", method, reason=f"float16 conversion failed: {type(exc).__name__}: {exc}")
    _pack_float16(converted)
    if not _has_float16_weights(converted):
        return VariantModel("fp16", "float16", method, reason=(
            "nothing to convert to float16: the converter keeps every operator of this graph in float32 "
            f"({', '.join(operator_names(model))}; ai.onnx.ml operators are on its block list); "
            "the model stays fp32 (the fp32 variant)"))
    return VariantModel("fp16", "float16", method, data=converted.SerializeToString())
