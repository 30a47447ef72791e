"""KFP adapter for loading a dataset. Standard-library imports only at module top level besides
kfp; everything the body needs is imported inside it (only the body is serialized)."""

# No `from __future__ import annotations`: kfp reads the real annotation objects.

from typing import NamedTuple

from kfp.dsl import Dataset, Output

from .._runtime import component


@component("pandas", "pyarrow", "scikit-learn")
def load_dataset(
    train: Output[Dataset],
    test: Output[Dataset],
    dataset: str = "digits",
    label_column: str = "",
    test_size: float = 0.25,
    seed: int = 0,
) -> NamedTuple("DatasetOutputs", [("rows", int), ("features", int), ("classes", int)]):
    """Load a classification dataset, validate it, and split it into train and test Parquet files.

    Everything is validated before anything is written: the label column exists, features are
    numeric and finite, there are enough rows and at least two classes, and the stratified split
    puts every class in both splits. Each split's Parquet schema carries its label column's name,
    and the artifact metadata describes it (rows, columns, feature_names, label, classes, source).

    Args:
        dataset: A builtin scikit-learn dataset (digits, breast_cancer, wine, iris), or the path or
            URI of a .csv, .parquet or .pq file. gs://, s3:// and az:// URIs need the gcs, s3 or
            azure extra of greenkfp in the image.
        label_column: The label column of a file; empty for a builtin dataset (target).
        test_size: Fraction of the rows in the test split, strictly between 0 and 1.
        seed: Random seed of the stratified split; the same seed gives the same split.

    Returns:
        train: Training split (greenkfp Parquet dataset; features, label and classes in its metadata).
        test: Test split, same format.
        rows: Rows in the whole dataset (train plus test).
        features: Number of feature columns.
        classes: Number of classes.
    """
    from collections import namedtuple

    from greenkfp.components.data import prepare_dataset

    train_info, test_info = prepare_dataset(
        dataset, label_column or None, train.path, test.path, test_size=test_size, seed=seed
    )
    train.metadata.update(train_info.to_metadata())
    test.metadata.update(test_info.to_metadata())
    print(f"{dataset}: {train_info.rows} train and {test_info.rows} test rows, {train_info.columns} features, "
          f"label {train_info.label!r}, classes {train_info.classes}")
    outputs = namedtuple("DatasetOutputs", ["rows", "features", "classes"])
    return outputs(train_info.rows + test_info.rows, train_info.columns, len(train_info.classes))
