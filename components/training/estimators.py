"""Estimator specs: a scikit-learn classifier named by import path, with JSON hyperparameters,
validated against the estimator's own parameters before anything is fitted."""

from __future__ import annotations

import importlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sklearn.base import is_classifier

from .._checks import strict_json
from .._messages import listing

_NAME = re.compile(r"[a-z0-9][a-z0-9_\-]{0,62}")  # used with fullmatch: "$" would accept a trailing newline
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
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
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
            json.dumps(self.params, allow_nan=False)  # NaN or inf cannot travel through KFP's protobuf parameters
        except (TypeError, ValueError):
            raise EstimatorSpecError(f"candidate {self.name!r}: params must be JSON with finite numbers, "
                                     f"got {self.params!r}") from None

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
        params = data.get("params") or {}
        if not isinstance(params, dict):
            raise EstimatorSpecError(f"candidate {data.get('name')!r}: params must be a JSON object of "
                                     f"hyperparameters, got {params!r}")
        return cls(data["name"], data["estimator"], dict(params))

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


def _instantiate(cls: type, path: str):
    try:
        return cls()
    except TypeError as exc:
        # meta-estimators (Pipeline, OneVsRestClassifier, StackingClassifier) need other estimators
        # as constructor arguments, which a JSON spec cannot hold
        raise EstimatorSpecError(
            f"estimator {path!r} cannot be built from JSON hyperparameters alone ({exc}); meta-estimators that "
            "take other estimators are not supported as candidates"
        ) from None


def build_estimator(spec: EstimatorSpec, *, allow_non_sklearn: bool = False):
    """An unfitted classifier from ``spec``; unknown parameters are an error listing valid ones."""
    cls = resolve_estimator_class(spec.estimator, allow_non_sklearn=allow_non_sklearn)
    estimator = _instantiate(cls, spec.estimator)
    if not is_classifier(estimator):
        raise EstimatorSpecError(f"estimator {spec.estimator!r} is not a classifier")
    valid = sorted(estimator.get_params(deep=False))
    unknown = sorted(set(spec.params) - set(valid))
    if unknown:
        raise EstimatorSpecError(
            f"unknown hyperparameter(s) {listing(unknown)} for {spec.estimator}; valid: {listing(valid, 40)}"
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


#: Largest candidates document accepted, characters, and most candidates in one run.
MAX_CANDIDATES_CHARS = 1_000_000
MAX_CANDIDATES = 200


def parse_candidates(candidates: list | str | None) -> list[EstimatorSpec]:
    """Specs from a list of dicts (or its JSON text); None or empty means the defaults."""
    if isinstance(candidates, str):
        if len(candidates) > MAX_CANDIDATES_CHARS:
            raise EstimatorSpecError(f"candidates is {len(candidates):,} characters of JSON; at most "
                                     f"{MAX_CANDIDATES_CHARS:,} are accepted")
        try:
            candidates = strict_json(candidates, "candidates")
        except ValueError as exc:
            raise EstimatorSpecError(str(exc)) from None
    if candidates is not None and not isinstance(candidates, list):
        raise EstimatorSpecError(f"candidates must be a JSON list of specs, got a {type(candidates).__name__}")
    if candidates and len(candidates) > MAX_CANDIDATES:
        raise EstimatorSpecError(f"at most {MAX_CANDIDATES} candidates in one run, got {len(candidates):,}")
    specs = [EstimatorSpec.from_dict(c) for c in (candidates or DEFAULT_CANDIDATES)]
    counts = Counter(s.name for s in specs)  # linear: a large file must not take minutes
    duplicates = sorted(n for n, c in counts.items() if c > 1)
    if duplicates:
        raise EstimatorSpecError(f"candidate names must be unique; repeated: {listing(duplicates)}")
    return specs


def trial_fit(spec: EstimatorSpec, *, allow_non_sklearn: bool = False) -> None:
    """Fit the candidate once on a tiny synthetic problem (40 rows, 4 non-negative features, two
    classes), so that a value its constructor accepts but its fit refuses
    (``hidden_layer_sizes=[-3]``) fails now, before the gate waits, not after."""
    import warnings

    import numpy as np

    estimator = build_estimator(spec, allow_non_sklearn=allow_non_sklearn)
    # the size knobs were validated above; the trial needs only a few iterations or trees
    params = estimator.get_params(deep=False)
    estimator.set_params(**{key: min(params[key], cap) for key, cap in (("max_iter", 5), ("n_estimators", 2))
                            if isinstance(params.get(key), int) and not isinstance(params.get(key), bool)})
    rng = np.random.default_rng(0)
    X = np.abs(rng.normal(size=(40, 4)))
    y = np.repeat([0, 1], 20)
    X[y == 1] += 1.0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence on 40 rows is not the point
            estimator.fit(X, y)
    except (TypeError, ValueError) as exc:
        raise EstimatorSpecError(f"candidate {spec.name!r} ({spec.estimator}) cannot be fitted with "
                                 f"params {json.dumps(spec.params)}: {exc}") from None


def validate_candidates(candidates: list | str | None, *, allow_non_sklearn: bool = False) -> list[EstimatorSpec]:
    """Parse, build and trial-fit every candidate: what ``resolve_candidates`` runs before the gate."""
    specs = parse_candidates(candidates)
    for spec in specs:
        trial_fit(spec, allow_non_sklearn=allow_non_sklearn)
    return specs
