"""Source models and ONNX conversion: load a skops or ONNX model, convert scikit-learn to ONNX,
run an ONNX model with pinned threads.

Plain Python (no kfp import).

Opset choice
------------
:data:`OPSET` (default ONNX domain) is 17 and :data:`ML_OPSET` (``ai.onnx.ml``) is 3: the pair
released together in ONNX 1.12. Why 17:

* skl2onnx 1.20 tests its converters up to opset 22, so 17 is well inside its tested range;
  onnxruntime 1.32 runs every opset from 7 to beyond 22;
* onnxruntime's quantizer needs opset 13 or later for per-channel QDQ (``axis`` on
  QuantizeLinear/DequantizeLinear) and upgrades anything older than 11; opset 21 would only be
  needed for int4/int16 QDQ, which these variants do not use;
* it is the default opset of ``torch.onnx.export`` in PyTorch 2.0 to 2.5, so models exported
  from PyTorch (the other source this step takes) usually share it.

skl2onnx takes the two numbers as ceilings and writes the highest version the graph's
operators need (16 for an MLP, ``ai.onnx.ml`` 1 for a linear model). The default-domain import
is then raised to :data:`OPSET` when no operator in the graph has a newer schema in between
(so the meaning of the graph is unchanged); ``ai.onnx.ml`` stays as written. Reports show the
``opset_import`` actually in each file.

Model contract for ONNX sources
-------------------------------
One graph input, a rank-2 float tensor ``[batch, features]`` with a dynamic batch axis. Outputs:
either an integer or string label tensor plus a float ``[batch, classes]`` probability tensor
(what skl2onnx writes without ZipMap), or a single float ``[batch, classes]`` tensor (scores or
probabilities, as a PyTorch classifier exports), whose argmax is the predicted class index,
mapped through ``classes`` when given. ZipMap outputs (sequences of maps) are refused.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnx

#: Default-domain opset written by :func:`convert_to_onnx` (see the module docstring).
OPSET = 17
#: ``ai.onnx.ml`` opset ceiling written by :func:`convert_to_onnx`.
ML_OPSET = 3
#: Name of the graph input of converted models.
INPUT_NAME = "input"

_FLOAT_TYPES = {
    onnx.TensorProto.FLOAT: np.float32,
    onnx.TensorProto.DOUBLE: np.float64,
    onnx.TensorProto.FLOAT16: np.float16,
}
_LABEL_TYPES = {
    onnx.TensorProto.INT64, onnx.TensorProto.INT32, onnx.TensorProto.STRING,
    onnx.TensorProto.INT16, onnx.TensorProto.INT8, onnx.TensorProto.UINT8, onnx.TensorProto.BOOL,
}


class QuantizationError(ValueError):
    """A source model, a dataset or a parameter this step cannot use; the message says which."""


@dataclass(frozen=True)
class ModelSignature:
    """What running an ONNX model needs: its input and which outputs hold labels and scores.

    Attributes:
        input_name: The graph input's name.
        input_dtype: NumPy dtype the input takes (float32, float64 or float16).
        n_features: The input's feature dimension, or None when it is symbolic.
        label_output: Name of the label output, or None (labels are then the argmax of
            ``score_output``).
        score_output: Name of the float ``[batch, classes]`` output (probabilities or scores).
    """

    input_name: str
    input_dtype: Any
    n_features: int | None
    label_output: str | None
    score_output: str


@dataclass(frozen=True, eq=False)
class SourceModel:
    """A model to convert and quantize, loaded by :func:`load_source_model`.

    Attributes:
        path: The file it was loaded from.
        format: ``"skops"`` (a scikit-learn estimator) or ``"onnx"``.
        n_features: Features the model takes (None for an ONNX model with a symbolic width).
        estimator: The fitted scikit-learn classifier (skops sources), else None.
        onnx_model: The ONNX model as given (ONNX sources), else None.
        estimator_type: Import path of the estimator's class, or ``"onnx"``.
        classes: Class labels in score-column order, when known.
    """

    path: str
    format: str
    n_features: int | None
    estimator: Any = None
    onnx_model: onnx.ModelProto | None = None
    estimator_type: str = "onnx"
    classes: list | None = field(default=None)


# ---------------------------------------------------------------------------------------------
# inspecting and loading


def _dims(value_info: onnx.ValueInfoProto) -> list[int | None] | None:
    tensor = value_info.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]


def model_signature(model: onnx.ModelProto, *, where: str = "model") -> ModelSignature:
    """The input and the label/score outputs of ``model``; QuantizationError when it does not
    fit the contract in the module docstring. ``where`` names the model in messages."""
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise QuantizationError(
            f"{where}: expected one graph input (a [batch, features] float tensor), found {len(inputs)}: "
            f"{', '.join(i.name for i in inputs) or 'none'}"
        )
    graph_input = inputs[0]
    if not graph_input.type.HasField("tensor_type") or graph_input.type.tensor_type.elem_type not in _FLOAT_TYPES:
        kind = onnx.helper.printable_type(graph_input.type)
        raise QuantizationError(f"{where}: input {graph_input.name!r} must be a float tensor, got {kind}")
    dims = _dims(graph_input)
    if dims is not None and len(dims) != 2:
        raise QuantizationError(
            f"{where}: input {graph_input.name!r} must have rank 2 [batch, features], got shape {dims}"
        )
    if dims is not None and dims[0] is not None and dims[0] != 0:
        raise QuantizationError(
            f"{where}: input {graph_input.name!r} has a fixed batch size {dims[0]}; export it with a dynamic batch axis"
        )
    n_features = dims[1] if dims is not None else None

    label_output, score_output = None, None
    for output in model.graph.output:
        if not output.type.HasField("tensor_type"):
            raise QuantizationError(
                f"{where}: output {output.name!r} is {onnx.helper.printable_type(output.type)}, not a tensor "
                "(a ZipMap output?); convert the classifier with zipmap=False"
            )
        elem = output.type.tensor_type.elem_type
        out_dims = _dims(output)
        if elem in _LABEL_TYPES and label_output is None and (out_dims is None or len(out_dims) <= 2):
            label_output = output.name
        elif elem in _FLOAT_TYPES and score_output is None and (out_dims is None or len(out_dims) == 2):
            score_output = output.name
    if score_output is None:
        raise QuantizationError(
            f"{where}: no float [batch, classes] output (probabilities or scores) among "
            f"{', '.join(o.name for o in model.graph.output) or 'no outputs'}"
        )
    return ModelSignature(graph_input.name, np.dtype(_FLOAT_TYPES[graph_input.type.tensor_type.elem_type]),
                          n_features, label_output, score_output)


def opset_imports(model: onnx.ModelProto) -> dict[str, int]:
    """``{domain: version}`` of ``model``, the default domain as ``"ai.onnx"``."""
    return {(o.domain or "ai.onnx"): int(o.version) for o in model.opset_import}


def default_opset(model: onnx.ModelProto) -> int | None:
    """The model's default-domain (``ai.onnx``) opset version."""
    return opset_imports(model).get("ai.onnx")


def _load_onnx(path: str) -> onnx.ModelProto:
    try:
        model = onnx.load(path)
    except Exception as exc:  # protobuf's DecodeError, onnx's own errors for external data ...
        raise QuantizationError(f"source model {path!r} is neither a skops file nor a readable ONNX model: "
                                f"{type(exc).__name__}: {exc}") from exc
    if not model.graph.node:
        raise QuantizationError(f"source model {path!r} is neither a skops file nor an ONNX model (no graph nodes in it)")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise QuantizationError(f"source model {path!r} is not a valid ONNX model: {first}") from exc
    return model


def _load_skops(path: str, classes) -> SourceModel:
    from sklearn.base import is_classifier

    from greenkfp.components.models import load_model

    try:
        estimator = load_model(path)
    except Exception as exc:  # skops raises many types for a damaged or foreign zip
        raise QuantizationError(f"source model {path!r}: cannot load it as a skops model: {type(exc).__name__}: {exc}") from exc
    kind = f"{type(estimator).__module__}.{type(estimator).__qualname__}"
    if not is_classifier(estimator):
        raise QuantizationError(f"source model {path!r} holds a {kind}, not a scikit-learn classifier")
    n_features = getattr(estimator, "n_features_in_", None)
    if n_features is None or not hasattr(estimator, "classes_"):
        raise QuantizationError(f"source model {path!r} holds an unfitted {kind} (no n_features_in_/classes_)")
    fitted_classes = [c.item() if isinstance(c, np.generic) else c for c in estimator.classes_]
    if classes is not None and list(classes) != fitted_classes:
        raise QuantizationError(f"classes {list(classes)!r} differ from the estimator's classes_ {fitted_classes!r}")
    return SourceModel(path=path, format="skops", n_features=int(n_features), estimator=estimator,
                       estimator_type=kind, classes=fitted_classes)


def load_source_model(path: str | os.PathLike, *, classes: Sequence | None = None) -> SourceModel:
    """Load a scikit-learn classifier (skops file) or an ONNX classifier.

    The format is detected from the content, not the file name: a skops file is a zip archive,
    anything else must parse as ONNX and pass ``onnx.checker``. A skops file is loaded with
    :func:`greenkfp.components.models.load_model`, which trusts only
    scikit-learn, NumPy and SciPy types.

    Args:
        path: The model file.
        classes: For an ONNX model whose only output is a ``[batch, classes]`` score tensor, the
            class label of each column (default: the column index). For a skops model, when
            given, it must equal the estimator's ``classes_``.

    Raises:
        QuantizationError: missing file, corrupt or non-ONNX content, untrusted skops types, a
            model that is not a fitted classifier or does not fit the ONNX model contract.
    """
    text = os.fspath(path)
    if not Path(text).is_file():
        raise QuantizationError(f"source model {text!r}: no such file")
    if zipfile.is_zipfile(text):
        return _load_skops(text, classes)
    model = _load_onnx(text)
    signature = model_signature(model, where=f"source model {text!r}")
    return SourceModel(path=text, format="onnx", n_features=signature.n_features, onnx_model=model,
                       estimator_type="onnx", classes=None if classes is None else list(classes))


# ---------------------------------------------------------------------------------------------
# conversion


def _dedupe_opset_imports(model: onnx.ModelProto) -> None:
    """skl2onnx may list the default domain twice; onnxruntime's quantizer then refuses the model
    ("Failed to find proper ai.onnx domain"). Keep one entry per domain, the highest version."""
    versions: dict[str, int] = {}
    for entry in model.opset_import:
        versions[entry.domain] = max(versions.get(entry.domain, 0), entry.version)
    del model.opset_import[:]
    for domain, version in versions.items():
        model.opset_import.append(onnx.helper.make_opsetid(domain, version))


def _pin_default_opset(model: onnx.ModelProto, version: int) -> None:
    """Declare the default-domain opset as ``version`` when that changes no node's meaning.

    skl2onnx writes the highest version its operators need (16 for an MLP), not the target.
    Raising the import is exact when no operator in the graph got a newer schema between the
    written version and ``version``; otherwise the written version is kept (and reported)."""
    entry = next((o for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if entry is None or entry.version >= version:
        return
    for node in model.graph.node:
        if node.domain in ("", "ai.onnx"):
            schema = onnx.defs.get_schema(node.op_type, max_inclusive_version=version, domain="")
            if schema.since_version > entry.version:
                return
    entry.version = version


def convert_to_onnx(estimator, n_features: int) -> onnx.ModelProto:
    """Convert a fitted scikit-learn classifier with skl2onnx at the pinned opsets.

    The graph takes one float32 input named ``"input"`` of shape ``[batch, n_features]`` and
    returns plain tensors: ``label`` and ``probabilities`` (no ZipMap).

    Raises:
        QuantizationError: ``n_features`` differs from the estimator's, or skl2onnx cannot
            convert the estimator.
    """
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    fitted = getattr(estimator, "n_features_in_", None)
    if not isinstance(n_features, (int, np.integer)) or isinstance(n_features, bool) or n_features < 1:
        raise QuantizationError(f"n_features must be a positive integer, got {n_features!r}")
    if fitted is not None and int(fitted) != int(n_features):
        raise QuantizationError(f"n_features={n_features} but the estimator was fitted on {fitted} features")
    kind = type(estimator).__name__
    try:
        model = convert_sklearn(
            estimator,
            initial_types=[(INPUT_NAME, FloatTensorType([None, int(n_features)]))],
            target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
            options={id(estimator): {"zipmap": False}},
        )
    except Exception as exc:  # skl2onnx raises RuntimeError, NotImplementedError, its own types ...
        raise QuantizationError(f"skl2onnx cannot convert {kind}: {type(exc).__name__}: {exc}") from exc
    _dedupe_opset_imports(model)
    _pin_default_opset(model, OPSET)
    model.doc_string = f"{kind} converted by skl2onnx (opset {OPSET}, ai.onnx.ml <= {ML_OPSET}, no ZipMap)"
    onnx.checker.check_model(model)
    model_signature(model, where=f"the converted {kind}")  # plain-tensor outputs, as promised
    return model


# ---------------------------------------------------------------------------------------------
# running


def make_session(model: str | os.PathLike | bytes | onnx.ModelProto, threads: int = 1):
    """An onnxruntime CPU ``InferenceSession`` with ``threads`` intra-op threads, one inter-op
    thread and sequential execution, so timings and results do not depend on the machine's
    core count."""
    import onnxruntime as ort

    if not isinstance(threads, (int, np.integer)) or isinstance(threads, bool) or threads < 1:
        raise QuantizationError(f"threads must be a positive integer, got {threads!r}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: no per-session warnings in pipeline logs
    if isinstance(model, onnx.ModelProto):
        model = model.SerializeToString()
    elif not isinstance(model, bytes):
        model = os.fspath(model)
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def session_signature(session) -> ModelSignature:
    """:class:`ModelSignature` of a running session (same rules as :func:`model_signature`)."""
    dtypes = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16}
    (first, *rest) = session.get_inputs()
    label, score = None, None
    for output in session.get_outputs():
        if output.type in dtypes and score is None:
            score = output.name
        elif output.type.startswith("tensor(") and label is None and output.type not in dtypes:
            label = output.name
    if rest or first.type not in dtypes or score is None:
        raise QuantizationError("the ONNX model needs one float input and a float [batch, classes] output")
    width = first.shape[1] if len(first.shape) == 2 and isinstance(first.shape[1], int) else None
    return ModelSignature(first.name, np.dtype(dtypes[first.type]), width, label, score)


def predict_session(session, X: np.ndarray, *, classes: Sequence | None = None,
                    signature: ModelSignature | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Labels and float64 scores of ``X`` from an open session (see :func:`run_onnx`)."""
    signature = signature or session_signature(session)
    feed = {signature.input_name: np.ascontiguousarray(X, dtype=signature.input_dtype)}
    names = [signature.score_output] + ([signature.label_output] if signature.label_output else [])
    outputs = session.run(names, feed)
    scores = np.asarray(outputs[0], dtype=np.float64)
    if scores.ndim == 1:
        scores = scores[:, None]
    if signature.label_output:
        labels = np.asarray(outputs[1]).reshape(-1)
    else:
        index = scores.argmax(axis=1)
        labels = np.asarray(classes, dtype=object)[index] if classes is not None else index
        if classes is not None and len(classes) != scores.shape[1]:
            raise QuantizationError(f"classes has {len(classes)} labels but the model scores {scores.shape[1]} classes")
    return labels, scores


def run_onnx(model: str | os.PathLike | bytes | onnx.ModelProto, X: np.ndarray, threads: int = 1,
             *, classes: Sequence | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run an ONNX classifier on ``X`` with onnxruntime (CPU, ``threads`` intra-op threads).

    Returns:
        ``(labels, probabilities)``: labels from the model's label output, or the argmax of the
        score output (mapped through ``classes`` when given); the score output as float64.
    """
    session = make_session(model, threads)
    return predict_session(session, X, classes=classes)


# ---------------------------------------------------------------------------------------------
# files
