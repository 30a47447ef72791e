"""Datasets for classification: builtin scikit-learn sets and user CSV / Parquet files.

Plain Python (no kfp import): the KFP adapter lives in ``component.py``.

The flow is load -> validate -> split -> write, and :func:`prepare_dataset` runs all of it,
validating everything (parameters, columns, values, classes, split feasibility) before it writes
anything. Each split is one Parquet file whose schema metadata carries the label column's name
(``greenkfp.label``) and a :class:`DatasetInfo` as JSON (``greenkfp.info``), so a later step
needs nothing but the file: :func:`read_dataset` gives back ``X``, ``y`` and the names.

Sources:

* ``digits`` (the default), ``breast_cancer``, ``wine``, ``iris``: the datasets that ship with
  scikit-learn, label column ``target``, features named as scikit-learn names them;
* ``wide``: scikit-learn's ``make_classification`` with :data:`WIDE_DATASET` (2,000 rows, 300
  float32 features ``x000``..., 5 classes, seeded): a task whose models' inference costs differ
  by far more than measurement noise (the demo's workload);
* a ``.csv``, ``.parquet`` or ``.pq`` file, by local path or ``file://`` URI (always), or by an
  fsspec URI such as ``gs://bucket/data.parquet`` when the matching extra is installed
  (``greenkfp[gcs]``, ``greenkfp[s3]``, ``greenkfp[azure]``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import numbers
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd

from .._files import atomic_path
from .._messages import listing

#: Largest local dataset file read, bytes: a classifier's table, not an accident such as /dev/zero.
MAX_FILE_BYTES = 2_000_000_000
BUILTIN_DATASETS: tuple[str, ...] = ("digits", "breast_cancer", "wine", "iris", "wide")
#: The ``wide`` builtin: a seeded synthetic classification task with a few hundred features, so
#: that models' inference costs (and quantization's effect) clearly exceed measurement noise.
WIDE_DATASET = {"n_samples": 2000, "n_features": 300, "n_informative": 60, "n_redundant": 40, "n_classes": 5,
                "class_sep": 1.5, "random_state": 0}
#: Label column of the builtin datasets.
BUILTIN_LABEL = "target"
#: Fewest rows a dataset may have in all (before the split).
MIN_ROWS = 10
CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")
#: Parquet schema-metadata keys.
LABEL_KEY = b"greenkfp.label"
INFO_KEY = b"greenkfp.info"

# URI scheme -> (greenkfp extra, fsspec implementation module)
_REMOTE_SCHEMES = {
    "gs": ("gcs", "gcsfs"),
    "gcs": ("gcs", "gcsfs"),
    "s3": ("s3", "s3fs"),
    "s3a": ("s3", "s3fs"),
    "az": ("azure", "adlfs"),
    "abfs": ("azure", "adlfs"),
    "abfss": ("azure", "adlfs"),
    "adl": ("azure", "adlfs"),
}


class DatasetError(ValueError):
    """A dataset or a dataset parameter is unusable; the message says what and why."""


class MissingExtraError(DatasetError, ImportError):
    """Reading a URI needs an optional dependency (a greenkfp extra) that is not installed."""


@dataclass(frozen=True)
class DatasetInfo:
    """Describes one written split.

    Attributes:
        rows: Number of rows in the split.
        columns: Number of feature columns (the label not counted).
        feature_names: Feature column names, in order.
        label: Name of the label column.
        classes: The classes of the whole dataset, sorted (ints, bools or strs).
        source: The source the dataset was loaded from, as given.
        split: ``"train"`` or ``"test"``.
    """

    rows: int
    columns: int
    feature_names: list[str]
    label: str
    classes: list
    source: str
    split: str

    def to_metadata(self) -> dict[str, Any]:
        """JSON-ready metadata, for ``artifact.metadata.update(...)``."""
        return {**asdict(self), "format": "parquet"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetInfo:
        """The inverse of :meth:`to_metadata` (unknown keys ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True, eq=False)
class LoadedDataset:
    """A split read back by :func:`read_dataset`.

    Attributes:
        X: Features, float64, shape (rows, columns).
        y: Labels, shape (rows,).
        feature_names: Feature column names, in the order of ``X``'s columns.
        label: Name of the label column.
        info: The split's :class:`DatasetInfo`, or None when the file carries none.
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    label: str
    info: DatasetInfo | None


# ---------------------------------------------------------------------------------------------
# loading


def _builtin(name: str) -> pd.DataFrame:
    from sklearn import datasets

    if name == "wide":
        X, y = datasets.make_classification(**WIDE_DATASET)
        frame = pd.DataFrame(X.astype(np.float32), columns=[f"x{i:03d}" for i in range(X.shape[1])])
        frame[BUILTIN_LABEL] = y
        return frame
    frame = getattr(datasets, f"load_{name}")(as_frame=True).frame
    return frame.rename(columns=str)


def _local_path(source: str) -> str | None:
    """The local path ``source`` names, or None when it is a remote URI."""
    if "://" not in source:
        return source
    parsed = urlparse(source)
    if parsed.scheme.lower() != "file":
        return None
    if parsed.netloc not in ("", "localhost"):
        raise DatasetError(
            f"source {source!r}: a file:// URI must name a local absolute path (file:///data/x.csv), "
            f"got host {parsed.netloc!r}"
        )
    return unquote(parsed.path)


def _suffix(path: str) -> str:
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return Path(name).suffix.lower()


def _require_fsspec(source: str) -> None:
    scheme = source.split("://", 1)[0].lower()
    extra, module = _REMOTE_SCHEMES.get(scheme, (None, None))
    if extra is not None:
        missing = [m for m in ("fsspec", module) if importlib.util.find_spec(m) is None]
        if missing:
            raise MissingExtraError(
                f"reading {scheme}:// URIs needs the {extra} extra: pip install 'greenkfp[{extra}]' "
                f"({' and '.join(missing)} not installed); source {source!r}"
            )
    elif importlib.util.find_spec("fsspec") is None:
        raise MissingExtraError(
            f"reading {scheme}:// URIs needs fsspec and its {scheme} implementation: pip install fsspec "
            f"(or a greenkfp extra: gcs, s3, azure); source {source!r}"
        )


def _read_file(source: str) -> pd.DataFrame:
    import pyarrow as pa

    local = _local_path(source)
    location = local if local is not None else source
    suffix = _suffix(urlparse(source).path if local is None else local)
    if suffix not in CSV_SUFFIXES + PARQUET_SUFFIXES:
        raise DatasetError(
            f"source {source!r} is neither a builtin dataset ({', '.join(BUILTIN_DATASETS)}) nor a file with an "
            f"accepted suffix ({', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)}); got suffix {suffix or '(none)'!r}"
        )
    kind = "CSV" if suffix in CSV_SUFFIXES else "Parquet"
    if local is None:
        _require_fsspec(source)
    else:
        path = Path(local)
        if not path.exists():
            raise DatasetError(f"cannot read dataset file {local!r}: no such file")
        if path.is_dir() and kind == "CSV":
            raise DatasetError(f"cannot read dataset file {local!r}: it is a directory")
        if not path.is_dir() and not path.is_file():  # a FIFO or a device would hang or never end
            raise DatasetError(f"cannot read dataset file {local!r}: not a regular file")
        if path.is_file() and path.stat().st_size > MAX_FILE_BYTES:
            raise DatasetError(f"dataset file {local!r} is {path.stat().st_size:,} bytes; at most "
                               f"{MAX_FILE_BYTES:,} are read (train on a sample, or split it)")
    try:
        if kind == "Parquet":
            return pd.read_parquet(location, engine="pyarrow")
        # pandas renames a repeated header silently (f0, f0 -> f0, f0.1): a label given twice would
        # leak into the features, so read the header as written and refuse repeats
        header = [str(c) for c in pd.read_csv(location, header=None, nrows=1, dtype=str).iloc[0]]
        repeated = sorted({c for c in header if header.count(c) > 1})
        if repeated:
            raise DatasetError(f"{location!r}: column names must be unique; repeated in the header: {listing(repeated)}")
        return pd.read_csv(location)
    except (OSError, ValueError, pa.ArrowException, pd.errors.ParserError) as exc:
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(f"cannot read {location!r} as {kind}: {type(exc).__name__}: {exc}") from exc


def _columns_text(frame: pd.DataFrame) -> str:
    return listing(frame.columns)


def _check_label_present(frame: pd.DataFrame, label_column: str) -> None:
    if label_column not in frame.columns:
        raise DatasetError(f"label column {label_column!r} not found; columns: {_columns_text(frame)}")


def load_source(source: str | os.PathLike, label_column: str | None = None) -> tuple[pd.DataFrame, str]:
    """Load a builtin dataset or a CSV / Parquet file into a DataFrame.

    Args:
        source: A builtin name (``digits``, ``breast_cancer``, ``wine``, ``iris``), a local path,
            a ``file://`` URI, or an fsspec URI (``gs://``, ``s3://``, ``az://``, ``abfs://``)
            when the matching greenkfp extra is installed.
        label_column: Name of the label column. Builtins: empty or ``target``. Files: required.

    Returns:
        The frame (features and label) and the label column's name.

    Raises:
        DatasetError: The source is unknown, unreadable or lacks the label column.
        MissingExtraError: A remote URI whose fsspec implementation is not installed (also a
            DatasetError).
    """
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str) or not source.strip():
        raise DatasetError(
            f"source must be a builtin dataset ({', '.join(BUILTIN_DATASETS)}) or a path or URI of a "
            f"CSV or Parquet file, got {source!r}"
        )
    if label_column is not None and not isinstance(label_column, str):
        raise DatasetError(f"label_column must be a string column name, got {label_column!r}")
    label_column = label_column.strip() if label_column else None
    source = source.strip()
    if source.lower() in BUILTIN_DATASETS:
        if label_column not in (None, BUILTIN_LABEL):
            raise DatasetError(
                f"label_column must be empty or {BUILTIN_LABEL!r} for the builtin dataset {source!r}, "
                f"got {label_column!r}"
            )
        return _builtin(source.lower()), BUILTIN_LABEL
    frame = _read_file(source)
    if label_column is None:
        raise DatasetError(
            f"label_column is required for a file source ({source!r}); columns: {_columns_text(frame)}"
        )
    _check_label_present(frame, label_column)
    return frame, label_column


# ---------------------------------------------------------------------------------------------
# validation


def _is_numeric_feature(series: pd.Series) -> bool:
    dtype = series.dtype
    return (
        pd.api.types.is_numeric_dtype(dtype)
        and not pd.api.types.is_bool_dtype(dtype)
        and not pd.api.types.is_complex_dtype(dtype)
    )


def _clean_labels(series: pd.Series, label_column: str) -> pd.Series:
    """Labels as int64, bool or str values; raise when they cannot be classes."""
    missing = int(series.isna().sum())
    if missing:
        raise DatasetError(f"label column {label_column!r} has {missing} missing value(s)")
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(series.cat.categories.dtype)
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return series.astype(bool)
    if pd.api.types.is_integer_dtype(dtype):
        return series.astype(np.int64)
    if pd.api.types.is_float_dtype(dtype):
        values = series.to_numpy(dtype=np.float64)
        bad = values[~np.isfinite(values) | (values != np.round(values))]
        if bad.size:
            raise DatasetError(
                f"label column {label_column!r} holds non-integer numbers (e.g. {float(bad[0])!r}); a classifier needs "
                "discrete classes (integers or strings). Is it a regression target?"
            )
        return series.astype(np.int64)
    if pd.api.types.is_string_dtype(dtype) or dtype == object:
        inferred = pd.api.types.infer_dtype(series, skipna=False)
        if inferred == "string":
            return series
        if inferred in ("integer", "boolean", "floating"):  # an object column of plain numbers
            return _clean_labels(pd.Series(series.tolist(), index=series.index, name=series.name), label_column)
        kinds = sorted({"str" if isinstance(v, str) else type(v).__name__ for v in series})
        raise DatasetError(
            f"label column {label_column!r} must hold integers or strings, not a mix; found {', '.join(kinds)}"
        )
    raise DatasetError(f"label column {label_column!r} has dtype {dtype}; a classifier needs integers or strings")


def _json_class(value: Any) -> int | bool | str:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    return str(value)


def validate_classification_frame(frame: pd.DataFrame, label_column: str, *, min_rows_per_class: int = 2) -> None:
    """Check that a frame is usable to train and test a classifier.

    Checks, in order: the label column exists; column names are unique strings; there is at
    least one feature; every feature is numeric (bools are not); no feature holds NaN or
    infinity; labels are present and discrete; there are at least ``MIN_ROWS`` rows, at least
    two classes, and ``min_rows_per_class`` rows of every class.

    Args:
        frame: Features and label.
        label_column: Name of the label column.
        min_rows_per_class: Fewest rows any class may have (>= 1).

    Raises:
        DatasetError: On the first problem found, naming the columns, counts or classes at fault.
    """
    if isinstance(min_rows_per_class, bool) or not isinstance(min_rows_per_class, numbers.Integral) \
            or min_rows_per_class < 1:
        raise DatasetError(f"min_rows_per_class must be an integer >= 1, got {min_rows_per_class!r}")
    if not isinstance(frame, pd.DataFrame):
        raise DatasetError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    not_str = [c for c in frame.columns if not isinstance(c, str)]
    if not_str:
        raise DatasetError(f"column names must be strings; these are not: {listing(repr(c) for c in not_str)}")
    duplicated = sorted(set(frame.columns[frame.columns.duplicated()]))
    if duplicated:
        raise DatasetError(f"column names must be unique; duplicated: {listing(duplicated)}")
    _check_label_present(frame, label_column)
    features = [c for c in frame.columns if c != label_column]
    if not features:
        raise DatasetError(f"no feature columns: the frame holds only the label column {label_column!r}")
    non_numeric = [f"{c} ({frame[c].dtype})" for c in features if not _is_numeric_feature(frame[c])]
    if non_numeric:
        raise DatasetError(
            f"feature columns must be numeric; non-numeric: {listing(non_numeric)} "
            "(encode or drop them before loading)"
        )
    values = frame[features].to_numpy(dtype=np.float64, na_value=np.nan)
    bad_counts = (~np.isfinite(values)).sum(axis=0)
    if bad_counts.any():
        listed = listing(f"{c} ({int(n)})" for c, n in zip(features, bad_counts) if n)
        raise DatasetError(f"feature columns contain NaN or infinite values: {listed}")
    labels = _clean_labels(frame[label_column], label_column)
    if len(frame) < MIN_ROWS:
        raise DatasetError(f"need at least {MIN_ROWS} rows to split into train and test, got {len(frame)}")
    counts = labels.value_counts()
    if len(counts) < 2:
        raise DatasetError(
            f"label column {label_column!r} has only one class ({_json_class(counts.index[0])!r}); "
            "a classifier needs at least two"
        )
    too_few = counts[counts < min_rows_per_class].sort_index()
    if len(too_few):
        listed = listing(f"{_json_class(c)!r} ({int(n)} row{'s' if n != 1 else ''})" for c, n in too_few.items())
        raise DatasetError(f"every class needs at least {min_rows_per_class} rows; too few: {listed}")


# ---------------------------------------------------------------------------------------------
# split


def _check_split_params(test_size: float, seed: int) -> None:
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real) \
            or not math.isfinite(test_size) or not 0 < test_size < 1:
        raise DatasetError(f"test_size must be a fraction strictly between 0 and 1, got {test_size!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**32:
        raise DatasetError(f"seed must be an integer in [0, 2**32), got {seed!r}")


def split_frame(
    frame: pd.DataFrame, label_column: str, *, test_size: float = 0.25, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded, stratified train/test split (``sklearn.model_selection.train_test_split``).

    Args:
        frame: Features and label, e.g. validated by :func:`validate_classification_frame`.
        label_column: Name of the label column (the stratification key).
        test_size: Fraction of the rows in the test split, in (0, 1).
        seed: Random seed; the same seed gives the same split.

    Returns:
        The train and test frames, each with a fresh 0..n-1 index.

    Raises:
        DatasetError: Bad parameters, or a split that would leave a class out of either side.
    """
    from sklearn.model_selection import train_test_split

    _check_split_params(test_size, seed)
    _check_label_present(frame, label_column)
    labels = frame[label_column]
    classes = sorted(labels.unique().tolist())
    rows = len(frame)
    n_test = math.ceil(test_size * rows)
    n_train = rows - n_test
    if min(n_test, n_train) < len(classes):
        raise DatasetError(
            f"test_size={test_size!r} on {rows} rows gives {n_train} train and {n_test} test rows for "
            f"{len(classes)} classes; every class must land in both splits: adjust test_size or add rows"
        )
    try:
        train, test = train_test_split(frame, test_size=test_size, random_state=int(seed), shuffle=True,
                                       stratify=labels)
    except ValueError as exc:  # e.g. a class with a single row
        raise DatasetError(f"cannot split stratified with test_size={test_size!r}: {exc}") from exc
    for name, part in (("train", train), ("test", test)):
        absent = [c for c in classes if c not in set(part[label_column].tolist())]
        if absent:
            raise DatasetError(
                f"with test_size={test_size!r} the {name} split ({len(part)} rows) gets no rows of class(es) "
                f"{', '.join(repr(_json_class(c)) for c in absent)}; every class must land in both splits: "
                "adjust test_size or add rows of those classes"
            )
    return train.reset_index(drop=True), test.reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# write and read


def _table(frame: pd.DataFrame, info: DatasetInfo):
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata[LABEL_KEY] = info.label.encode("utf-8")
    metadata[INFO_KEY] = json.dumps(asdict(info), sort_keys=True).encode("utf-8")
    return table.replace_schema_metadata(metadata)


def _write_tables(targets: list[tuple[Any, Path]]) -> None:
    """Write every table to a temp file beside its target, then rename them all into place."""
    import pyarrow.parquet as pq

    # All temp files are written before any is renamed: a failure leaves neither split behind.
    with contextlib.ExitStack() as stack:
        for table, target in targets:
            pq.write_table(table, stack.enter_context(atomic_path(target)))


def prepare_dataset(
    source: str | os.PathLike,
    label_column: str | None,
    train_path: str | os.PathLike,
    test_path: str | os.PathLike,
    *,
    test_size: float = 0.25,
    seed: int = 0,
) -> tuple[DatasetInfo, DatasetInfo]:
    """Load, validate, split and write a dataset as two Parquet files.

    Everything is validated (parameters, the frame, the split) before anything is written;
    both files are written atomically (temp file, then rename).

    Args:
        source: A builtin name or a CSV / Parquet path or URI (see :func:`load_source`).
        label_column: Name of the label column; None or empty for a builtin's ``target``.
        train_path: Where to write the train split (Parquet).
        test_path: Where to write the test split (Parquet).
        test_size: Fraction of the rows in the test split, in (0, 1).
        seed: Random seed of the stratified split.

    Returns:
        The train and test splits' :class:`DatasetInfo`.

    Raises:
        DatasetError: Any validation failure; nothing is written then.
    """
    _check_split_params(test_size, seed)
    train_target, test_target = Path(os.fspath(train_path)), Path(os.fspath(test_path))
    if train_target.resolve() == test_target.resolve():
        raise DatasetError(f"train_path and test_path must differ, both are {os.fspath(train_path)!r}")
    frame, label = load_source(source, label_column or None)
    validate_classification_frame(frame, label)
    frame = frame.copy()
    frame[label] = _clean_labels(frame[label], label)
    train, test = split_frame(frame, label, test_size=test_size, seed=seed)
    features = [c for c in frame.columns if c != label]
    classes = [_json_class(c) for c in sorted(frame[label].unique().tolist())]
    source_text = os.fspath(source).strip()
    infos = tuple(
        DatasetInfo(rows=len(part), columns=len(features), feature_names=features, label=label,
                    classes=classes, source=source_text, split=name)
        for name, part in (("train", train), ("test", test))
    )
    _write_tables([(_table(train, infos[0]), train_target), (_table(test, infos[1]), test_target)])
    return infos


def read_dataset(path: str | os.PathLike) -> LoadedDataset:
    """Read a split written by :func:`prepare_dataset`.

    Args:
        path: Local path (or ``file://`` URI) of the Parquet file.

    Returns:
        The features (float64), labels, feature names, label name and DatasetInfo.

    Raises:
        DatasetError: The file is missing, unreadable, or not a greenkfp dataset.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    text = os.fspath(path)
    local = _local_path(text)
    if local is None:
        raise DatasetError(f"read_dataset reads local files; got the URI {text!r}")
    if not Path(local).is_file():
        raise DatasetError(f"cannot read dataset {local!r}: no such file")
    try:
        table = pq.read_table(local)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise DatasetError(f"cannot read {local!r} as Parquet: {type(exc).__name__}: {exc}") from exc
    metadata = table.schema.metadata or {}
    if LABEL_KEY not in metadata:
        raise DatasetError(
            f"{local!r} is not a greenkfp dataset: its Parquet metadata has no {LABEL_KEY.decode()!r} key "
            "(write it with prepare_dataset or the load_dataset component)"
        )
    label = metadata[LABEL_KEY].decode("utf-8")
    frame = table.to_pandas()
    _check_label_present(frame, label)
    info = None
    if INFO_KEY in metadata:
        try:
            info = DatasetInfo.from_dict(json.loads(metadata[INFO_KEY]))
        except (ValueError, TypeError) as exc:
            raise DatasetError(f"{local!r} has a malformed {INFO_KEY.decode()!r} entry: {exc}") from exc
    features = [c for c in frame.columns if c != label]
    return LoadedDataset(
        X=frame[features].to_numpy(dtype=np.float64),
        y=frame[label].to_numpy(),
        feature_names=features,
        label=label,
        info=info,
    )
