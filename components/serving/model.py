"""The served model: an ONNX file, or the flagship's selection, in an ONNX Runtime session.

:func:`resolve_model_path` turns what ``--model`` names into the ``.onnx`` file to load: the file
itself, or a selection record (``greenkfp.selection/v1`` JSON, :class:`~..records.SelectionRecord`)
whose ``chosen_model_uri`` points at the chosen variant (as given, else beside the record: a
record copied with its variant). :class:`ServedModel` loads it with explicit thread settings,
describes its inputs and outputs in the protocol's terms (``-1`` for a dynamic dimension), and
checks a request against them before anything runs.

scikit-learn classifiers converted by skl2onnx with ``zipmap=False`` have two outputs, ``label``
(INT64, ``[N]``) and ``probabilities`` (FP32, ``[N, classes]``); with ZipMap the second is a
sequence of maps, which the protocol has no datatype for: such a model is refused at load with a
message saying to convert with ``zipmap=False``. No kfp import.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._messages import listing, redact_urls
from .protocol import DATATYPES, ProtocolError, RequestInput, tensor_from_input

__all__ = ["ModelLoadError", "ServedModel", "TensorSpec", "resolve_model_path"]

#: ONNX tensor element types (as ONNX Runtime names them) and the protocol's datatypes.
ONNX_TYPES = {
    "tensor(bool)": "BOOL", "tensor(uint8)": "UINT8", "tensor(uint16)": "UINT16", "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64", "tensor(int8)": "INT8", "tensor(int16)": "INT16", "tensor(int32)": "INT32",
    "tensor(int64)": "INT64", "tensor(float16)": "FP16", "tensor(float)": "FP32", "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}


class ModelLoadError(RuntimeError):
    """The model could not be found or loaded (the message says which file and why).

    The message is shown in ``/v2/models/{name}/ready``, in 503 bodies and in the log: the
    credentials of any URL in it (a record's ``chosen_model_uri`` of ``s3://key:secret@...``,
    a presigned URL's signature) are redacted by the project's one redaction,
    :func:`~greenkfp.components._messages.redact_urls`."""

    def __init__(self, message: str):
        super().__init__(redact_urls(message))


@dataclass(frozen=True)
class TensorSpec:
    """An input or output of the model: its name, datatype and shape (``-1``: any size)."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


def _is_selection_record(path: Path) -> bool:
    """Whether ``path`` is a selection record (``greenkfp.selection/v1`` JSON, at most 1 MiB),
    not some other JSON (a Hugging Face repository's ``config.json``)."""
    from ..records import SelectionRecord

    try:
        if path.stat().st_size > 1 << 20:
            return False
        SelectionRecord.from_json(path.read_bytes())
    except (OSError, ValueError, TypeError, KeyError):
        return False
    return True


def _file_in_folder(folder: Path) -> Path:
    """The model in a folder (what KServe's storage initializer makes of a prefix URI): its one
    selection record (which names the variant among the folder's ``.onnx`` files), else its one
    ``.onnx`` file.

    Raises:
        ModelLoadError: naming the folder and what it holds, when that is not exactly one of either.
    """
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise ModelLoadError(f"model folder {str(folder)!r} cannot be read: {exc.strerror or exc}") from None
    files = [p for p in entries if p.is_file()]
    onnx = [p for p in files if p.suffix.lower() == ".onnx"]
    records = [p for p in files if p.suffix.lower() == ".json" and _is_selection_record(p)]
    if len(records) == 1:
        return records[0]
    if not records and len(onnx) == 1:
        return onnx[0]
    if records:
        holds = f"{len(records)} selection records ({listing(p.name for p in records)})"
    elif onnx:
        holds = f"{len(onnx)} .onnx files ({listing(p.name for p in onnx)}) and no selection record"
    elif entries:
        holds = (f"no .onnx file and no selection record (it holds: "
                 f"{listing(p.name + ('/' if p.is_dir() else '') for p in entries)})")
    else:
        holds = "nothing (it is empty)"
    raise ModelLoadError(f"model folder {str(folder)!r} holds {holds}; a folder must hold exactly one .onnx file "
                         "or one selection record: give the file itself")


def resolve_model_path(model: str | os.PathLike) -> Path:
    """The ``.onnx`` file that ``model`` names: an ONNX file, a selection record's chosen variant,
    or a folder holding exactly one of either (:func:`_file_in_folder`).

    Raises:
        ModelLoadError: no such file, a folder without exactly one model, a record that chose no
            variant, or a chosen file not found.
    """
    path = Path(model)
    if path.is_dir():
        path = _file_in_folder(path)
    elif not path.is_file():
        raise ModelLoadError(f"model file {str(path)!r} not found")
    if path.suffix.lower() != ".json":
        return path
    from ..records import SelectionRecord

    try:
        record = SelectionRecord.from_json(path.read_bytes())
    except (ValueError, TypeError, KeyError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{str(path)!r} is not a selection record (greenkfp.selection/v1): {exc}") from None
    if not record.promote or not record.chosen_model_uri:
        raise ModelLoadError(f"selection {str(path)!r} chose no variant to serve: {record.reason}")
    chosen = Path(record.chosen_model_uri)
    for candidate in (chosen, path.parent / chosen.name):
        if candidate.is_file():
            return candidate
    raise ModelLoadError(f"selection {str(path)!r} chose {record.chosen!r} at {record.chosen_model_uri!r}, "
                         f"which is neither there nor beside the record")


def _spec(arg) -> TensorSpec:
    datatype = ONNX_TYPES.get(arg.type)
    if datatype is None:
        raise ModelLoadError(f"{arg.name!r} is a {arg.type}, which the Open Inference Protocol cannot carry "
                             "(a scikit-learn classifier converted with ZipMap: convert with "
                             "options={id(model): {'zipmap': False}})")
    return TensorSpec(arg.name, datatype, tuple(d if isinstance(d, int) and d >= 0 else -1 for d in arg.shape))


def _batching_off_reason(inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...]) -> str | None:
    """Why the model's requests cannot run together (``None``: they can), from its declared shapes.
    An output of unknown shape is given the benefit of the doubt: a batch whose outputs turn out
    not to have one row per input row runs its requests one by one (:mod:`.batching`)."""
    for i in inputs:
        if not i.shape or i.shape[0] != -1:
            return f"input {i.name!r} has shape {list(i.shape)}: its first dimension is not a free batch dimension"
    for o in outputs:
        if o.shape and o.shape[0] != -1:
            return (f"output {o.name!r} has shape {list(o.shape)}: a fixed first dimension, so its rows are not "
                    "the requests' rows")
    return None


class ServedModel:
    """An ONNX model in an ONNX Runtime session, with its protocol metadata.

    Args:
        path: The ``.onnx`` file or a selection record (:func:`resolve_model_path`).
        name: The model's name in the URLs (``/v2/models/{name}``).
        threads: ONNX Runtime's intra-op threads for one ``session.run`` (inter-op: 1, sequential).

    Raises:
        ModelLoadError: the file is missing, not ONNX, or has inputs or outputs the protocol cannot carry.
    """

    platform = "onnxruntime_onnx"

    def __init__(self, path: str | os.PathLike, name: str, *, threads: int = 1):
        import onnxruntime as ort

        self.name = name
        self.path = resolve_model_path(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf/... types
            raise ModelLoadError(f"cannot load {str(self.path)!r} with ONNX Runtime: "
                                 f"{' '.join(str(exc).split())[:300]}") from None
        self.inputs = tuple(_spec(i) for i in self.session.get_inputs())
        self.outputs = tuple(_spec(o) for o in self.session.get_outputs())
        self.output_names = [o.name for o in self.outputs]
        self._inputs = {i.name: i for i in self.inputs}
        #: Why requests cannot be stacked along axis 0 (``None``: they can): an input whose first
        #: dimension is fixed (or a scalar), or an output whose declared first dimension is a fixed
        #: number (``[1, 4]``: its rows are not the requests' rows, a batch could not be split back).
        self.batching_off_reason = _batching_off_reason(self.inputs, self.outputs)
        self.batchable = self.batching_off_reason is None

    def metadata(self, version: str) -> dict:
        """``/v2/models/{name}``'s answer."""
        parameters: dict = {"batchable": self.batchable}
        if not self.batchable:
            parameters["batching_off_reason"] = self.batching_off_reason
        return {"name": self.name, "versions": [version], "platform": self.platform,
                "inputs": [i.to_dict() for i in self.inputs], "outputs": [o.to_dict() for o in self.outputs],
                "parameters": parameters}

    def check_inputs(self, inputs: list[RequestInput], max_rows: int) -> tuple[dict[str, np.ndarray], int]:
        """A request's inputs as arrays keyed by name, and its row count (the first dimension).

        Raises:
            ProtocolError: 400 naming the input: unknown or missing, repeated, another datatype
                than the model's, a shape the model does not take, inputs with different row
                counts, or more rows than ``max_rows``.
        """
        arrays: dict[str, np.ndarray] = {}
        for item in inputs:
            spec = self._inputs.get(item.name)
            if spec is None:
                raise ProtocolError(400, f"unknown input {item.name!r}; model {self.name!r} takes "
                                         f"{', '.join(repr(n) for n in self._inputs)}")
            if item.name in arrays:
                raise ProtocolError(400, f"input {item.name!r} given twice")
            if item.datatype != spec.datatype:
                raise ProtocolError(400, f"input {item.name!r}: datatype {item.datatype!r}, the model takes "
                                         f"{spec.datatype}")
            if len(item.shape) != len(spec.shape) or any(
                    want != -1 and got != want for got, want in zip(item.shape, spec.shape)):
                raise ProtocolError(400, f"input {item.name!r}: shape {item.shape}, the model takes "
                                         f"{list(spec.shape)} (-1: any size)")
            arrays[item.name] = tensor_from_input(item)
        missing = [n for n in self._inputs if n not in arrays]
        if missing:
            raise ProtocolError(400, f"missing input(s) {', '.join(repr(n) for n in missing)}")
        rows = {a.shape[0] for a in arrays.values() if a.ndim}
        if len(rows) > 1:
            raise ProtocolError(400, f"inputs have different numbers of rows: {sorted(rows)}")
        count = rows.pop() if rows else 1
        if count == 0:  # refused here: run in a batch, an empty request could fail its neighbours
            raise ProtocolError(400, "the request has no rows (a first dimension of 0)")
        if count > max_rows:
            raise ProtocolError(400, f"batch of {count} rows is larger than this server takes "
                                     f"({max_rows} rows per request)", kind="too_many_rows")
        return arrays, count

    def run(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        """All outputs for ``inputs``, in :attr:`output_names` order."""
        return self.session.run(self.output_names, inputs)


assert set(ONNX_TYPES.values()) == set(DATATYPES)
