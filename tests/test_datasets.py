"""Datasets: builtin and file sources, validation messages, the stratified split, Parquet round
trips, and the load_dataset component through kfp's local runner."""

import importlib.util
import json
import math

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from greenkfp.components.data import (
    BUILTIN_DATASETS,
    DatasetError,
    DatasetInfo,
    MissingExtraError,
    load_source,
    prepare_dataset,
    read_dataset,
    split_frame,
    validate_classification_frame,
)

BUILTIN_SHAPES = {"digits": (1797, 64, 10), "breast_cancer": (569, 30, 2), "wine": (178, 13, 3), "iris": (150, 4, 3),
                  "wide": (2000, 300, 5)}


def make_frame(rows: int = 40, classes=(0, 1, 2), seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = [classes[i % len(classes)] for i in range(rows)]
    return pd.DataFrame({
        "age": rng.integers(18, 90, rows),
        "income": rng.normal(50_000, 10_000, rows),
        "score": rng.random(rows),
        "y": labels,
    })


def write_csv(tmp_path, frame, name="data.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def paths(tmp_path):
    return tmp_path / "out" / "train.parquet", tmp_path / "out" / "test.parquet"


def assert_nothing_written(tmp_path):
    out = tmp_path / "out"
    assert not out.exists() or list(out.iterdir()) == []


# --- sources ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILTIN_DATASETS)
def test_each_builtin_loads_with_target_label_and_sklearn_feature_names(name):
    frame, label = load_source(name)
    rows, features, classes = BUILTIN_SHAPES[name]
    assert label == "target"
    assert frame.shape == (rows, features + 1)
    assert frame[label].nunique() == classes
    validate_classification_frame(frame, label)
    if name == "digits":
        assert list(frame.columns[:2]) == ["pixel_0_0", "pixel_0_1"]
    if name == "iris":
        assert "sepal length (cm)" in frame.columns
    if name == "wide":  # seeded: the same frame every time
        assert list(frame.columns[:2]) == ["x000", "x001"]
        assert frame.equals(load_source("wide")[0])


def test_builtin_rejects_another_label_column():
    with pytest.raises(DatasetError, match=r"label_column must be empty or 'target'.*'digits', got 'label'"):
        load_source("digits", "label")
    assert load_source("digits", "target")[1] == "target"


def test_unknown_source_names_the_builtins_and_accepted_suffixes():
    with pytest.raises(DatasetError, match=r"'mnist' is neither a builtin dataset \(digits, breast_cancer, wine, iris, wide\)"):
        load_source("mnist")


def test_unsupported_suffix_names_the_accepted_ones(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DatasetError, match=r"accepted suffix \(\.csv, \.parquet, \.pq\); got suffix '\.txt'"):
        load_source(str(path), "b")


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(DatasetError, match=rf"cannot read dataset file '{path}': no such file"):
        load_source(str(path), "y")


@pytest.mark.parametrize("name, content, kind", [
    ("garbage.parquet", b"PK\x03\x04 this is not parquet \xff\xfe\x00", "Parquet"),
    ("garbage.pq", b"", "Parquet"),
    ("garbage.csv", b"\xff\xfe\x00\x81\x89PNG\r\n\x1a\n\xc3\x28", "CSV"),
    ("ragged.csv", b"a,b\n1,2\n1,2,3,4\n", "CSV"),
    ("empty.csv", b"", "CSV"),
])
def test_unreadable_file_names_the_path(tmp_path, name, content, kind):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=rf"cannot read '{path}' as {kind}"):
        load_source(str(path), "y")
    with pytest.raises(DatasetError, match="cannot read"):
        prepare_dataset(str(path), "y", *paths(tmp_path))
    assert_nothing_written(tmp_path)


def test_missing_label_column_lists_the_columns(tmp_path):
    path = write_csv(tmp_path, make_frame())
    with pytest.raises(DatasetError, match=r"label column 'label' not found; columns: age, income, score, y"):
        load_source(str(path), "label")
    with pytest.raises(DatasetError, match=r"label_column is required for a file source.*columns: age, income"):
        load_source(str(path))


def test_csv_and_parquet_and_file_uri_load_the_same_frame(tmp_path):
    frame = make_frame()
    csv = write_csv(tmp_path, frame)
    parquet = tmp_path / "data.parquet"
    frame.to_parquet(parquet, index=False)
    for source in (str(csv), csv, csv.as_uri(), str(parquet), parquet.as_uri()):
        loaded, label = load_source(source, "y")
        assert label == "y"
        pd.testing.assert_frame_equal(loaded, frame, check_dtype=False)
    train, test = paths(tmp_path)
    info, _ = prepare_dataset(csv.as_uri(), "y", train, test)
    assert info.source == csv.as_uri() and train.exists() and test.exists()


@pytest.mark.parametrize("uri, extra", [
    ("gs://bucket/data.csv", "gcs"),
    ("s3://bucket/data.parquet", "s3"),
    ("az://container/data.csv", "azure"),
    ("abfs://container/data.pq", "azure"),
])
def test_remote_uri_without_its_extra_names_the_extra(tmp_path, uri, extra):
    module = {"gcs": "gcsfs", "s3": "s3fs", "azure": "adlfs"}[extra]
    if importlib.util.find_spec("fsspec") and importlib.util.find_spec(module):
        pytest.skip(f"fsspec and {module} are installed here: the missing-extra error cannot occur")
    scheme = uri.split("://")[0]
    message = rf"reading {scheme}:// URIs needs the {extra} extra: pip install 'greenkfp\[{extra}\]'"
    with pytest.raises(MissingExtraError, match=message) as caught:
        load_source(uri, "y")
    assert isinstance(caught.value, DatasetError) and isinstance(caught.value, ImportError)
    with pytest.raises(DatasetError, match=message):
        prepare_dataset(uri, "y", *paths(tmp_path))
    assert_nothing_written(tmp_path)


# --- validation -----------------------------------------------------------------------------


def test_non_numeric_feature_columns_are_named():
    frame = make_frame().assign(city="Paris", member=True)
    with pytest.raises(DatasetError, match=r"feature columns must be numeric; non-numeric: city \(\w+\), member \(bool\)"):
        validate_classification_frame(frame, "y")


def test_nan_and_infinite_values_are_counted_per_column():
    frame = make_frame()
    frame.loc[[1, 4, 7], "age"] = np.nan
    frame.loc[2, "income"] = np.inf
    frame.loc[3, "income"] = -np.inf
    frame.loc[5, "income"] = np.nan
    with pytest.raises(DatasetError, match=r"feature columns contain NaN or infinite values: age \(3\), income \(3\)$"):
        validate_classification_frame(frame, "y")
    nullable = make_frame().astype({"age": "Int64"})
    nullable.loc[0, "age"] = pd.NA
    with pytest.raises(DatasetError, match=r"NaN or infinite values: age \(1\)$"):
        validate_classification_frame(nullable, "y")


def test_too_few_rows_says_how_many():
    with pytest.raises(DatasetError, match=r"need at least 10 rows to split into train and test, got 6"):
        validate_classification_frame(make_frame(rows=6), "y")


def test_one_class_is_refused():
    with pytest.raises(DatasetError, match=r"label column 'y' has only one class \('yes'\); a classifier needs at least two"):
        validate_classification_frame(make_frame(classes=("yes",)), "y")


def test_a_class_with_too_few_rows_is_named():
    frame = make_frame(rows=20, classes=(0, 1))
    frame.loc[0, "y"] = 7
    with pytest.raises(DatasetError, match=r"every class needs at least 2 rows; too few: 7 \(1 row\)"):
        validate_classification_frame(frame, "y")
    with pytest.raises(DatasetError, match=r"at least 5 rows; too few: 7 \(1 row\)"):
        validate_classification_frame(frame.assign(y=[0] * 10 + [1] * 9 + [7]), "y", min_rows_per_class=5)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_min_rows_per_class_is_validated(bad):
    with pytest.raises(DatasetError, match=rf"min_rows_per_class must be an integer >= 1, got {bad!r}"):
        validate_classification_frame(make_frame(), "y", min_rows_per_class=bad)


def test_label_problems_are_named():
    missing = make_frame().astype({"y": float})
    missing.loc[[0, 5], "y"] = np.nan
    with pytest.raises(DatasetError, match=r"label column 'y' has 2 missing value"):
        validate_classification_frame(missing, "y")
    with pytest.raises(DatasetError, match=r"label column 'y' holds non-integer numbers \(e\.g\. 0\.5\)"):
        validate_classification_frame(make_frame(classes=(0.5, 1.0)), "y")
    with pytest.raises(DatasetError, match=r"integers or strings, not a mix; found int, str"):
        validate_classification_frame(make_frame(classes=(1, "a")).astype({"y": object}), "y")
    with pytest.raises(DatasetError, match=r"no feature columns"):
        validate_classification_frame(make_frame()[["y"]], "y")
    with pytest.raises(DatasetError, match=r"label column 'label' not found; columns: age, income, score, y"):
        validate_classification_frame(make_frame(), "label")


# --- split ----------------------------------------------------------------------------------


def test_split_is_stratified_and_reproducible_by_seed():
    frame, label = load_source("digits")
    train, test = split_frame(frame, label, test_size=0.25, seed=3)
    assert len(test) == math.ceil(0.25 * len(frame)) and len(train) + len(test) == len(frame)
    whole = frame[label].value_counts(normalize=True).sort_index()
    for part in (train, test):
        share = part[label].value_counts(normalize=True).sort_index()
        assert list(share.index) == list(whole.index)
        assert np.abs(share - whole).max() < 0.01
    again = split_frame(frame, label, test_size=0.25, seed=3)
    pd.testing.assert_frame_equal(again[1], test)
    other = split_frame(frame, label, test_size=0.25, seed=4)
    assert not other[1].equals(test)


@pytest.mark.parametrize("test_size", [0, 1, -0.1, 1.5, True, float("nan"), "0.2"])
def test_test_size_must_be_a_fraction(tmp_path, test_size):
    with pytest.raises(DatasetError, match=rf"test_size must be a fraction strictly between 0 and 1, got {test_size!r}"):
        prepare_dataset("iris", "", *paths(tmp_path), test_size=test_size)
    assert_nothing_written(tmp_path)


@pytest.mark.parametrize("seed", [-1, 2**32, 1.0, "0"])
def test_seed_must_be_an_integer(tmp_path, seed):
    with pytest.raises(DatasetError, match=rf"seed must be an integer in \[0, 2\*\*32\), got {seed!r}"):
        prepare_dataset("iris", "", *paths(tmp_path), seed=seed)


def test_a_split_that_leaves_a_class_out_is_refused_before_writing(tmp_path):
    frame = make_frame(rows=30)
    csv = write_csv(tmp_path, frame)
    with pytest.raises(DatasetError, match=r"test_size=0\.05 on 30 rows gives 28 train and 2 test rows for 3 classes"):
        prepare_dataset(str(csv), "y", *paths(tmp_path), test_size=0.05)
    assert_nothing_written(tmp_path)
    # enough test rows in all, but the rare class gets none of them
    skewed = make_frame(rows=40, classes=(0,)).assign(y=[0] * 38 + [1] * 2)
    with pytest.raises(DatasetError, match=r"the test split \(2 rows\) gets no rows of class\(es\) 1"):
        split_frame(skewed, "y", test_size=0.05)


@pytest.mark.parametrize("mutate, message", [
    (lambda f: f.assign(city="Paris"), "non-numeric: city"),
    (lambda f: f.assign(age=[np.nan] + [1] * (len(f) - 1)), r"NaN or infinite values: age \(1\)"),
    (lambda f: f.iloc[:6], "got 6"),
    (lambda f: f.assign(y=1), "only one class"),
    (lambda f: f.drop(columns="y"), "label column 'y' not found"),
])
def test_nothing_is_written_when_validation_fails(tmp_path, mutate, message):
    csv = write_csv(tmp_path, mutate(make_frame()))
    with pytest.raises(DatasetError, match=message):
        prepare_dataset(str(csv), "y", *paths(tmp_path))
    assert_nothing_written(tmp_path)


# --- write and read -------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_round_trip_gives_identical_X_y_and_feature_names(tmp_path, suffix):
    frame = make_frame(rows=50)
    source = tmp_path / f"data{suffix}"
    frame.to_csv(source, index=False) if suffix == ".csv" else frame.to_parquet(source, index=False)
    train_path, test_path = paths(tmp_path)
    train_info, test_info = prepare_dataset(str(source), "y", train_path, test_path, test_size=0.2, seed=7)
    expected = split_frame(frame, "y", test_size=0.2, seed=7)
    for path, info, part in ((train_path, train_info, expected[0]), (test_path, test_info, expected[1])):
        loaded = read_dataset(path)
        features = ["age", "income", "score"]
        assert loaded.feature_names == features and loaded.label == "y"
        assert loaded.X.dtype == np.float64
        np.testing.assert_array_equal(loaded.X, part[features].to_numpy(dtype=np.float64))
        np.testing.assert_array_equal(loaded.y, part["y"].to_numpy())
        assert loaded.y.dtype == np.int64
        assert loaded.info == info
        metadata = pq.read_schema(path).metadata
        assert metadata[b"greenkfp.label"] == b"y"
        assert json.loads(metadata[b"greenkfp.info"])["split"] == info.split
    assert (train_info.rows, test_info.rows) == (40, 10)
    assert train_info.classes == [0, 1, 2] and train_info.columns == 3
    assert [p.name for p in sorted(train_path.parent.iterdir())] == ["test.parquet", "train.parquet"]  # no temp files


def test_string_labels_and_integral_float_labels(tmp_path):
    words = write_csv(tmp_path, make_frame(classes=("pear", "apple", "fig")), "words.csv")
    info, _ = prepare_dataset(str(words), "y", *paths(tmp_path))
    assert info.classes == ["apple", "fig", "pear"]
    assert set(read_dataset(paths(tmp_path)[1]).y) == {"apple", "fig", "pear"}
    floats = write_csv(tmp_path, make_frame(classes=(0.0, 1.0)), "floats.csv")
    info, _ = prepare_dataset(str(floats), "y", *paths(tmp_path))
    assert info.classes == [0, 1] and all(type(c) is int for c in info.classes)
    assert read_dataset(paths(tmp_path)[0]).y.dtype == np.int64


def test_metadata_is_json_ready(tmp_path):
    info, _ = prepare_dataset("wine", "", *paths(tmp_path))
    metadata = info.to_metadata()
    assert json.loads(json.dumps(metadata)) == metadata
    assert metadata["label"] == "target" and metadata["source"] == "wine" and metadata["split"] == "train"
    assert metadata["classes"] == [0, 1, 2] and metadata["columns"] == len(metadata["feature_names"]) == 13
    assert DatasetInfo.from_dict(metadata) == info


def test_read_dataset_refuses_what_is_not_a_greenkfp_dataset(tmp_path):
    plain = tmp_path / "plain.parquet"
    make_frame().to_parquet(plain)
    with pytest.raises(DatasetError, match=rf"'{plain}' is not a greenkfp dataset"):
        read_dataset(plain)
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet")
    with pytest.raises(DatasetError, match=rf"cannot read '{garbage}' as Parquet"):
        read_dataset(garbage)
    with pytest.raises(DatasetError, match="no such file"):
        read_dataset(tmp_path / "missing.parquet")


def test_train_and_test_paths_must_differ(tmp_path):
    path = tmp_path / "out" / "same.parquet"
    with pytest.raises(DatasetError, match="train_path and test_path must differ"):
        prepare_dataset("iris", "", path, path)


# --- the component through kfp's local runner ---------------------------------------------


@pytest.mark.slow
def test_component_writes_both_splits_with_metadata(tmp_path, monkeypatch):
    from kfp import local

    from greenkfp.components import load_dataset

    monkeypatch.chdir(tmp_path)  # a component can import from the current directory
    csv = write_csv(tmp_path, make_frame(rows=60, classes=("cat", "dog", "eel")))
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
    task = load_dataset(dataset=csv.as_uri(), label_column="y", test_size=0.2, seed=5)
    assert (task.outputs["rows"], task.outputs["features"], task.outputs["classes"]) == (60, 3, 3)
    expected = split_frame(make_frame(rows=60, classes=("cat", "dog", "eel")), "y", test_size=0.2, seed=5)
    for name, part in (("train", expected[0]), ("test", expected[1])):
        artifact = task.outputs[name]
        metadata = artifact.metadata
        assert metadata["split"] == name and metadata["rows"] == len(part)
        assert metadata["label"] == "y" and metadata["classes"] == ["cat", "dog", "eel"]
        assert metadata["feature_names"] == ["age", "income", "score"] and metadata["columns"] == 3
        assert metadata["source"] == csv.as_uri()
        loaded = read_dataset(artifact.path)
        np.testing.assert_array_equal(loaded.X, part[["age", "income", "score"]].to_numpy(dtype=np.float64))
        np.testing.assert_array_equal(loaded.y, part["y"].to_numpy())


@pytest.mark.slow
def test_component_fails_the_task_on_invalid_data(tmp_path, monkeypatch):
    from kfp import local

    from greenkfp.components import load_dataset

    monkeypatch.chdir(tmp_path)
    csv = write_csv(tmp_path, make_frame().assign(city="Paris"))
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
    with pytest.raises(RuntimeError, match="load-dataset"):
        load_dataset(dataset=str(csv), label_column="y")
    assert not list((tmp_path / "root").rglob("train")) and not list((tmp_path / "root").rglob("test"))


def test_a_repeated_header_is_refused_not_renamed(tmp_path):
    """pandas would rename the second `y` to `y.1`, leaking the label into the features."""
    from greenkfp.components.data.datasets import DatasetError, load_source

    rng = np.random.default_rng(0)
    csv = tmp_path / "leak.csv"
    rows = "\n".join(f"{rng.normal():.3f},{label},{label}" for label in rng.integers(0, 2, 40))
    csv.write_text("f0,y,y\n" + rows + "\n")
    with pytest.raises(DatasetError, match="column names must be unique; repeated in the header: y"):
        load_source(str(csv), "y")
    (tmp_path / "f.csv").write_text("f0,f0,y\n1,2,0\n")
    with pytest.raises(DatasetError, match="repeated in the header: f0"):
        load_source(str(tmp_path / "f.csv"), "y")


def test_an_error_about_ten_thousand_classes_stays_one_short_line(tmp_path):
    from greenkfp.components.data.datasets import DatasetError, validate_classification_frame

    frame = pd.DataFrame({"x": np.arange(20_000, dtype=float), "y": np.repeat(np.arange(10_000), 2)})
    frame.loc[0, "y"] = 10_001  # one class with a single row, and 9,999 with two
    with pytest.raises(DatasetError) as info:
        validate_classification_frame(frame, "y", min_rows_per_class=3)
    message = str(info.value)
    assert len(message) < 400 and "more (10,001 in all)" in message
