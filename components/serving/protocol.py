"""The Open Inference Protocol (KServe's "V2 inference protocol", spoken by KServe, Triton and
MLServer) over HTTP/REST: its JSON payloads as pydantic models, and tensors to and from numpy.

What follows the spec (https://kserve.github.io/website/docs/reference/oip/rest-api):

* an inference request is ``{"id"?, "parameters"?, "inputs": [{"name", "shape", "datatype",
  "parameters"?, "data"}], "outputs"?: [{"name", "parameters"?}]}``; ``data`` is row-major,
  flat or nested as the shape; ``outputs`` names the outputs wanted (absent: all of them);
* a response is ``{"model_name", "model_version"?, "id"?, "parameters"?, "outputs": [{"name",
  "shape", "datatype", "parameters"?, "data"}]}`` with flat (row-major) ``data``;
* datatypes ``BOOL``, ``UINT8``..``UINT64``, ``INT8``..``INT64``, ``FP16``, ``FP32``, ``FP64``,
  ``BYTES`` (:data:`DATATYPES`);
* an error is ``{"error": "<message>"}`` with a non-2xx status: 400 for a request the server
  cannot accept (malformed JSON, unknown input, wrong shape or datatype, too many rows), 404 for
  a model (or version) the server does not have. Beyond the spec's two, this server answers 413
  for a body over its cap and 503 while the model is not ready (loading, or failed to load).

Conversion is strict: data whose values do not fit the datatype (``1.5`` for ``INT64``, ``300``
for ``UINT8``, text for ``FP32``, a ragged nested list) is a 400 naming the input, never a
silent cast. No kfp import.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["DATATYPES", "InferenceRequest", "InferenceResponse", "MetadataTensor", "ModelMetadata",
           "ProtocolError", "RequestInput", "RequestOutput", "ResponseOutput", "ServerMetadata",
           "datatype_of", "error_body", "parse_request", "tensor_from_input", "to_response_output"]

#: The protocol's datatypes and the numpy dtype of each (``BYTES``: an object array of ``str``/``bytes``).
DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_), "UINT8": np.dtype(np.uint8), "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32), "UINT64": np.dtype(np.uint64), "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16), "INT32": np.dtype(np.int32), "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16), "FP32": np.dtype(np.float32), "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
_BY_DTYPE = {dtype: name for name, dtype in DATATYPES.items() if name != "BYTES"}
#: The most dimensions a tensor may have (ONNX Runtime's own limit is far above any real model).
MAX_RANK = 16


class ProtocolError(Exception):
    """A request the server answers with ``{"error": message}`` and ``status``."""

    def __init__(self, status: int, message: str, kind: str = "bad_request"):
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


def error_body(message: str) -> bytes:
    """The protocol's error response body."""
    return orjson.dumps({"error": message})


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class RequestInput(_Model):
    name: str
    shape: list[int] = Field(max_length=MAX_RANK)
    datatype: str
    parameters: dict[str, Any] | None = None
    data: Any


class RequestOutput(_Model):
    name: str
    parameters: dict[str, Any] | None = None


class InferenceRequest(_Model):
    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = None


class ResponseOutput(_Model):
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: Any


class InferenceResponse(_Model):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[ResponseOutput]


class MetadataTensor(_Model):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(_Model):
    name: str
    versions: list[str] = []
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]
    parameters: dict[str, Any] | None = None


class ServerMetadata(_Model):
    name: str
    version: str
    extensions: list[str] = []


def _where(loc) -> str:
    return ".".join(str(part) for part in loc) or "body"


def parse_request(body: bytes) -> InferenceRequest:
    """An inference request from its JSON body.

    Raises:
        ProtocolError: 400, the body is not JSON or not an inference request (the message names
            the first field at fault).
    """
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(400, f"malformed JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ProtocolError(400, f"an inference request is a JSON object, got {type(payload).__name__}")
    try:
        return InferenceRequest.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ProtocolError(400, f"invalid inference request: {_where(first['loc'])}: {first['msg']}") from None


def _fits(values: np.ndarray, dtype: np.dtype) -> bool:
    """That the whole numbers ``values`` lie within integer ``dtype``'s range."""
    if values.size == 0:
        return True
    info = np.iinfo(dtype)
    return int(values.min()) >= info.min and int(values.max()) <= info.max


def _whole_numbers(data: Any, dtype: np.dtype, item: RequestInput) -> np.ndarray:
    """Integer data that numpy's own guess could not hold: Python ints beside ones past int64
    (``[18446744073709551615, 0]`` guesses float64), or numbers past the datatype's range. Exact
    (each value checked as a Python number), or the 400 that says what is wrong.

    Raises:
        ProtocolError: 400 naming the input: fractions, floats, or values out of the datatype's range.
    """
    where = f"input {item.name!r}"
    info = np.iinfo(dtype)
    flat = np.asarray(data, dtype=object).reshape(-1).tolist()
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in flat):
        raise ProtocolError(400, f"{where}: data is not {item.datatype} (got values that are not numbers)")
    if any(isinstance(v, float) and not (math.isfinite(v) and v.is_integer()) for v in flat):
        raise ProtocolError(400, f"{where}: data is not {item.datatype} (got numbers with fractions)")
    if any(not info.min <= v <= info.max for v in flat):
        raise ProtocolError(400, f"{where}: values out of range for {item.datatype} ({info.min}..{info.max})")
    if any(isinstance(v, float) for v in flat):
        raise ProtocolError(400, f"{where}: data is not {item.datatype} (got floating-point numbers: write whole "
                                 "numbers without a decimal point or exponent)")
    return np.array(flat, dtype=dtype)


def tensor_from_input(item: RequestInput) -> np.ndarray:
    """The input's data as a numpy array of its datatype and shape.

    Raises:
        ProtocolError: 400 naming the input: unknown datatype, a negative dimension, data that
            is not of the datatype, or an element count other than the shape's.
    """
    where = f"input {item.name!r}"
    dtype = DATATYPES.get(item.datatype)
    if dtype is None:
        raise ProtocolError(400, f"{where}: unknown datatype {item.datatype!r} (one of {', '.join(DATATYPES)})")
    if any(d < 0 for d in item.shape):
        raise ProtocolError(400, f"{where}: shape {item.shape} has a negative dimension")
    expected = math.prod(item.shape)
    data = item.data
    if isinstance(data, (str, bytes, int, float, bool)) or data is None:
        data = [data]  # a scalar: one element
    try:
        raw = np.asarray(data) if item.datatype != "BYTES" else np.asarray(data, dtype=object)
    except (ValueError, TypeError):
        raise ProtocolError(400, f"{where}: data is not a regular array (ragged nested lists?)") from None
    if raw.dtype == object and item.datatype != "BYTES":
        raise ProtocolError(400, f"{where}: data is not a regular array of {item.datatype} values")
    if raw.size != expected:
        raise ProtocolError(400, f"{where}: shape {item.shape} holds {expected} elements, data has {raw.size}")
    kind = raw.dtype.kind
    if item.datatype == "BYTES":
        flat = raw.reshape(-1)
        if not all(isinstance(v, (str, bytes)) for v in flat):
            raise ProtocolError(400, f"{where}: BYTES data must be strings")
        return flat.reshape(item.shape)
    if item.datatype == "BOOL":
        ok = kind == "b" or raw.size == 0
    elif dtype.kind in "iu":
        ok = kind in "iu" and _fits(raw, dtype) or raw.size == 0
    else:  # floats take whole numbers too (JSON writes 1.0 as 1)
        ok = kind in "iuf" or raw.size == 0
    if not ok:
        if dtype.kind in "iu" and kind in "iuf":  # exact integers, or a 400 saying what is wrong
            return _whole_numbers(data, dtype, item).reshape(item.shape)
        got = {"b": "booleans", "i": "integers", "u": "integers", "f": "numbers with fractions", "U": "strings",
               "S": "strings"}.get(kind, raw.dtype.name)
        raise ProtocolError(400, f"{where}: data is not {item.datatype} (got {got})")
    with np.errstate(over="ignore"):  # an overflow to inf is refused just below
        array = raw.astype(dtype, copy=False).reshape(item.shape)
    if dtype.kind == "f" and kind == "f" and not np.isfinite(array).all() and np.isfinite(raw).all():
        raise ProtocolError(400, f"{where}: values overflow {item.datatype}")
    return array


def datatype_of(array: np.ndarray) -> str:
    """The protocol's datatype of a numpy array (strings and objects: ``BYTES``)."""
    return _BY_DTYPE.get(array.dtype, "BYTES")


def to_response_output(name: str, array: np.ndarray) -> dict:
    """A response output (flat row-major data); numpy arrays are serialised by orjson directly."""
    datatype = datatype_of(array)
    flat = np.ascontiguousarray(array).reshape(-1)
    if datatype == "BYTES":
        data: Any = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in flat.tolist()]
    elif datatype == "FP16":
        data = flat.astype(np.float32)
    else:
        data = flat
    return {"name": name, "shape": list(array.shape), "datatype": datatype, "data": data}


def dumps(payload: Any) -> bytes:
    """JSON of a payload holding numpy arrays (orjson's native numpy path)."""
    return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
