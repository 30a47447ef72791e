"""Model persistence in skops format: no pickle, so loading a file runs no code from it.

:func:`load_model` trusts only types from scikit-learn, NumPy and SciPy (and Python builtins that
skops lists); anything else in the file is refused with its type names.
"""

from __future__ import annotations

import os
from pathlib import Path

import skops.io

from .._files import atomic_path

_TRUSTED_ROOTS = ("sklearn.", "numpy.", "scipy.", "builtins.")


class UntrustedModelError(ValueError):
    """The file holds types outside scikit-learn, NumPy and SciPy."""


def save_model(estimator, path: str | os.PathLike) -> Path:
    """Write ``estimator`` to ``path`` atomically (temp file, then rename)."""
    with atomic_path(path) as tmp:
        skops.io.dump(estimator, tmp)
    return Path(path)


def load_model(path: str | os.PathLike):
    """Load a skops file, trusting only scikit-learn, NumPy and SciPy types."""
    untrusted = skops.io.get_untrusted_types(file=path)
    foreign = sorted(t for t in untrusted if not t.startswith(_TRUSTED_ROOTS))
    if foreign:
        raise UntrustedModelError(f"{path}: refusing to load types outside scikit-learn/NumPy/SciPy: {', '.join(foreign)}")
    return skops.io.load(path, trusted=untrusted)
