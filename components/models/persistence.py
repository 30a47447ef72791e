"""Model persistence in skops format: no pickle, so loading a file runs no code from it.

:func:`load_model` trusts skops' own safe defaults, scikit-learn's estimator classes, and an
explicit list of exact type names the allowed estimators produce; anything else in the file (a
function such as ``builtins.exec`` above all) is refused with its type names.
"""

from __future__ import annotations

import os
from pathlib import Path

import skops.io

from .._files import atomic_path
from .._messages import listing

#: Exact type names, beyond skops' own defaults and scikit-learn's estimator classes, that the
#: allowed estimators put in a file (collected by saving every estimator family the training step
#: offers: trees, forests, boosting, MLPs with adam and sgd). Never a function or a builtin: skops
#: calls a trusted name while loading, so trusting ``builtins.exec`` would run the file's code.
TRUSTED_TYPES = frozenset({
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
})


class UntrustedModelError(ValueError):
    """The file holds types outside the trusted scikit-learn estimator types."""


def _is_estimator_class(name: str) -> bool:
    """``name`` is a scikit-learn estimator class (a class, not a function, defined in sklearn)."""
    import importlib

    from sklearn.base import BaseEstimator

    module, _, attribute = name.rpartition(".")
    if not module.startswith("sklearn.") and module != "sklearn":
        return False  # never import anything else named by a file
    try:
        obj = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError):
        return False
    return isinstance(obj, type) and issubclass(obj, BaseEstimator) and obj.__module__.startswith("sklearn")


def save_model(estimator, path: str | os.PathLike) -> Path:
    """Write ``estimator`` to ``path`` atomically (temp file, then rename)."""
    with atomic_path(path) as tmp:
        skops.io.dump(estimator, tmp)
    return Path(path)


def load_model(path: str | os.PathLike):
    """Load a skops file, trusting only scikit-learn estimator classes and :data:`TRUSTED_TYPES`;
    any other type named in the file is refused, listed, before anything is constructed."""
    try:
        untrusted = skops.io.get_untrusted_types(file=path)
    except Exception as exc:  # a zip or schema skops cannot read: not a model file
        raise UntrustedModelError(f"{path}: not a readable skops model file ({type(exc).__name__}: {exc})") from None
    refused = sorted(t for t in untrusted if t not in TRUSTED_TYPES and not _is_estimator_class(t))
    if refused:
        raise UntrustedModelError(f"{path}: refusing to load untrusted types: {listing(refused)}")
    return skops.io.load(path, trusted=untrusted)
