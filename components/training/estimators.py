"""Estimator specs: a scikit-learn classifier named by import path, with JSON hyperparameters,
validated against the estimator's own parameters before anything is fitted."""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from sklearn.base import is_classifier

_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,62}$")
_SPEC_KEYS = ("name", "estimator", "params")

#: The default candidates: a linear model, a tree ensemble, a small and a wide MLP.
DEFAULT_CANDIDATES: list[dict] = [
    {"name": "logistic-regression", "estimator": "sklearn.linear_model.LogisticRegression",
     "params": {"max_iter": 2000}},
    {"name": "random-forest", "estimator": "sklearn.ensemble.RandomForestClassifier",
     "params": {"n_estimators": 200, "random_state": 0, "n_jobs": 1}},
    {"name": "mlp-small", "estimator": "sklearn.neural_network.MLPClassifier",
     "params": {"hidden_layer_sizes": [64], "max_iter": 300, "random_state": 0}},
    {"name": "mlp-wide", "estimator": "sklearn.neural_network.MLPClassifier",
     "params": {"hidden_layer_sizes": [512, 256], "max_iter": 200, "random_state": 0}},
]


class EstimatorSpecError(ValueError):
    """An estimator spec that cannot be built: bad path, not a classifier, unknown parameter."""


@dataclass(frozen=True)
class EstimatorSpec:
    """A candidate model: ``name`` (a short id), ``estimator`` (import path), ``params``."""

    name: str
    estimator: str
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise EstimatorSpecError(
                f"name must be 1-63 lower-case letters, digits, '-' or '_' (it names artifacts), got {self.name!r}"
            )
        if not isinstance(self.estimator, str) or "." not in self.estimator:
            raise EstimatorSpecError(
                f"estimator must be an import path such as sklearn.linear_model.LogisticRegression, got {self.estimator!r}"
            )
        if not isinstance(self.params, dict):
            raise EstimatorSpecError(f"params must be a JSON object of hyperparameters, got {self.params!r}")
        try:
            json.dumps(self.params)
        except (TypeError, ValueError):
            raise EstimatorSpecError(f"params must be JSON-serialisable, got {self.params!r}") from None

    @classmethod
    def from_dict(cls, data: dict) -> "EstimatorSpec":
        if not isinstance(data, dict):
            raise EstimatorSpecError(f"a candidate spec must be an object with keys {_SPEC_KEYS}, got {data!r}")
        unknown = sorted(set(data) - set(_SPEC_KEYS))
        if unknown:
            raise EstimatorSpecError(f"unknown candidate spec keys {unknown}; valid keys: {', '.join(_SPEC_KEYS)}")
        missing = [k for k in ("name", "estimator") if k not in data]
        if missing:
            raise EstimatorSpecError(f"candidate spec {data!r} is missing {', '.join(missing)}")
        return cls(data["name"], data["estimator"], dict(data.get("params") or {}))

    def to_dict(self) -> dict:
        return {"name": self.name, "estimator": self.estimator, "params": dict(self.params)}


def resolve_estimator_class(path: str, *, allow_non_sklearn: bool = False) -> type:
    """The classifier class at ``path``; only ``sklearn.`` classes unless ``allow_non_sklearn``."""
    if not allow_non_sklearn and not path.startswith("sklearn."):
        raise EstimatorSpecError(
            f"estimator {path!r} is not a scikit-learn class; only sklearn.* is allowed unless "
            "allow_non_sklearn is set (importing a path runs its module's code)"
        )
    module_name, _, class_name = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EstimatorSpecError(f"estimator {path!r}: cannot import module {module_name!r} ({exc})") from None
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise EstimatorSpecError(f"estimator {path!r}: module {module_name!r} has no class {class_name!r}")
    if not (hasattr(cls, "fit") and hasattr(cls, "get_params")):
        raise EstimatorSpecError(f"estimator {path!r} is not a scikit-learn estimator (no fit/get_params)")
    return cls


def _integral(value: Any) -> Any:
    """``value`` with integral floats made ints (inside lists too); others unchanged."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_integral(v) for v in value)
    return value


def _accepts(cls: type, key: str, value: Any) -> bool:
    try:
        probe = cls()
        probe.set_params(**{key: value})
        validate = getattr(probe, "_validate_params", None)
        if validate is not None:
            validate()
        return True
    except (TypeError, ValueError):
        return False


def restore_integers(cls: type, params: dict[str, Any]) -> dict[str, Any]:
    """Undo JSON-through-protobuf number widening: KFP passes dict parameters as protobuf
    Structs, so ``200`` arrives as ``200.0``. An integral float becomes an int where the
    estimator's default is an int (or a sequence of ints), or where the float is rejected;
    a float the estimator accepts with another meaning (``max_features=1.0``) stays a float."""
    defaults = cls().get_params(deep=False)
    restored = dict(params)
    for key, value in params.items():
        as_int = _integral(value)
        if repr(as_int) == repr(value):  # no integral float inside
            continue
        default = defaults.get(key)
        int_default = isinstance(default, int) and not isinstance(default, bool)
        int_sequence = isinstance(default, (list, tuple)) and all(isinstance(d, int) for d in default)
        if int_default or int_sequence or not _accepts(cls, key, value):
            restored[key] = as_int
    return restored


def build_estimator(spec: EstimatorSpec, *, allow_non_sklearn: bool = False):
    """An unfitted classifier from ``spec``; unknown parameters are an error listing valid ones."""
    cls = resolve_estimator_class(spec.estimator, allow_non_sklearn=allow_non_sklearn)
    estimator = cls()
    if not is_classifier(estimator):
        raise EstimatorSpecError(f"estimator {spec.estimator!r} is not a classifier")
    valid = sorted(estimator.get_params(deep=False))
    unknown = sorted(set(spec.params) - set(valid))
    if unknown:
        raise EstimatorSpecError(
            f"unknown hyperparameter(s) {', '.join(unknown)} for {spec.estimator}; valid: {', '.join(valid)}"
        )
    try:
        estimator.set_params(**restore_integers(cls, spec.params))
        # scikit-learn validates values at fit; ask early where the estimator supports it
        validate = getattr(estimator, "_validate_params", None)
        if validate is not None:
            validate()
    except (TypeError, ValueError) as exc:
        raise EstimatorSpecError(f"invalid hyperparameters for {spec.estimator}: {exc}") from None
    return estimator


def parse_candidates(candidates: list | str | None) -> list[EstimatorSpec]:
    """Specs from a list of dicts (or its JSON text); None or empty means the defaults."""
    if isinstance(candidates, str):
        try:
            candidates = json.loads(candidates)
        except json.JSONDecodeError as exc:
            raise EstimatorSpecError(f"candidates is not valid JSON: {exc}") from None
    specs = [EstimatorSpec.from_dict(c) for c in (candidates or DEFAULT_CANDIDATES)]
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise EstimatorSpecError(f"candidate names must be unique; repeated: {', '.join(duplicates)}")
    return specs
