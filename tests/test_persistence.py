"""Loading a model file runs no code from it: crafted skops files naming callables are refused
before anything is constructed."""

import functools
import json
import zipfile
from pathlib import Path

import pytest
import skops.io
from sklearn.datasets import load_iris
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from greenkfp.components.models import UntrustedModelError, load_model, save_model


def _rewrite_schema(path: Path, edit) -> None:
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(members["schema.json"])
    edit(schema)
    members["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _find(node, predicate):
    if isinstance(node, dict):
        if predicate(node):
            return node
        children = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        found = _find(child, predicate)
        if found is not None:
            return found
    return None


def _code(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').write('pwned')"


@pytest.mark.parametrize("module, name", [
    ("builtins", "exec"), ("builtins", "eval"), ("os", "system"), ("subprocess", "Popen"),
    ("numpy.testing._private.utils", "runstring"),
])
def test_a_reduce_node_naming_a_callable_runs_nothing_and_is_refused(tmp_path, module, name):
    """A decision tree's Tree node is a skops reduce node: its constructor is called with its
    args on load. Point it at a callable with code as the argument."""
    from sklearn.tree import DecisionTreeClassifier

    marker = tmp_path / "marker"
    path = tmp_path / "evil.skops"
    X, y = load_iris(return_X_y=True)
    save_model(DecisionTreeClassifier(max_depth=2).fit(X, y), path)

    def edit(schema):
        tree = _find(schema, lambda n: n.get("__class__") == "Tree")
        tree["__class__"], tree["__module__"] = name, module
        tree["__reduce__"]["args"] = {
            "__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode", "__id__": 1,
            "content": [{"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode",
                         "content": json.dumps(_code(marker)), "is_json": True, "__id__": 2}],
        }

    _rewrite_schema(path, edit)
    with pytest.raises(UntrustedModelError, match=f"untrusted types: .*{module}.{name}"):
        load_model(path)
    assert not marker.exists()


def test_a_partial_of_a_trusted_looking_builtin_is_refused(tmp_path):
    path = tmp_path / "partial.skops"
    skops.io.dump({"payload": functools.partial(max, 1)}, path)
    with pytest.raises(UntrustedModelError, match="builtins.max, functools.partial"):
        load_model(path)


def test_garbage_is_a_clear_error(tmp_path):
    path = tmp_path / "random.skops"
    path.write_bytes(b"\x00\x01 not a zip")
    with pytest.raises(UntrustedModelError, match="not a readable skops model file"):
        load_model(path)


@pytest.mark.parametrize("estimator", [
    LogisticRegression(max_iter=300), RandomForestClassifier(n_estimators=3, random_state=0),
    HistGradientBoostingClassifier(max_iter=3), MLPClassifier(max_iter=5, random_state=0),
    MLPClassifier(max_iter=5, solver="sgd", random_state=0),
])
def test_the_estimators_training_offers_still_load(tmp_path, estimator):
    import warnings

    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(X, y)
    loaded = load_model(save_model(estimator, tmp_path / "m.skops"))
    assert (loaded.predict(X) == estimator.predict(X)).all()
