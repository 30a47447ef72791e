"""Datasets for classification: builtin scikit-learn sets and user CSV / Parquet files,
validation, a seeded stratified split, and Parquet splits that carry their own description.

Plain Python (no kfp import): the KFP adapter lives in ``component.py``.
"""

from .datasets import (
    BUILTIN_DATASETS,
    BUILTIN_LABEL,
    MIN_ROWS,
    DatasetError,
    DatasetInfo,
    LoadedDataset,
    MissingExtraError,
    load_source,
    prepare_dataset,
    read_dataset,
    split_frame,
    validate_classification_frame,
)

__all__ = [
    "BUILTIN_DATASETS",
    "BUILTIN_LABEL",
    "DatasetError",
    "DatasetInfo",
    "LoadedDataset",
    "MIN_ROWS",
    "MissingExtraError",
    "load_source",
    "prepare_dataset",
    "read_dataset",
    "split_frame",
    "validate_classification_frame",
]
