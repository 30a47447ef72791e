"""Parity of a variant against the original model on held-out rows.

Plain Python (no kfp import). Figures and their units:

* ``accuracy``: share of test rows whose predicted label equals the true label (0 to 1);
* ``accuracy_change_points``: (variant accuracy - original accuracy) x 100, in percentage
  points; negative means the variant is worse;
* ``agreement_rate``: share of test rows where the variant predicts the same label as the
  original (0 to 1);
* ``max_probability_diff``: the largest absolute difference between the variant's and the
  original's class probabilities over all rows and classes (scores, when the model outputs
  scores rather than probabilities).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .convert import QuantizationError

#: A float32 conversion whose probabilities stray further than this from the original's is not
#: a rounding difference, so no label disagreement is excused by near ties.
FP32_PROBABILITY_ATOL = 1e-3
# accuracy changes within this many points of the tolerance count as within it (float round-off)
_POINTS_EPS = 1e-9


@dataclass(frozen=True)
class Parity:
    """Agreement of one model's predictions with a reference model's and with the truth."""

    rows: int
    accuracy: float
    agreement_rate: float
    disagreements: int
    max_probability_diff: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def _as_objects(values) -> np.ndarray:
    array = np.asarray(values).reshape(-1)
    return np.array([v.item() if isinstance(v, np.generic) else v for v in array], dtype=object)


def labels_equal(a, b) -> np.ndarray:
    """Elementwise label equality that does not trip on dtypes (int64 vs int, str vs object)."""
    left, right = _as_objects(a), _as_objects(b)
    if left.shape != right.shape:
        raise QuantizationError(f"label arrays differ in length: {left.shape[0]} vs {right.shape[0]}")
    return np.array([x == y for x, y in zip(left, right)], dtype=bool)


def accuracy(labels, y) -> float:
    """Share of ``labels`` equal to ``y``."""
    equal = labels_equal(labels, y)
    return float(equal.mean()) if equal.size else math.nan


def max_abs_diff(probabilities, reference) -> float | None:
    """Largest absolute difference, or None when either is missing or their shapes differ."""
    if probabilities is None or reference is None:
        return None
    a, b = np.asarray(probabilities, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape or a.size == 0:
        return None
    return float(np.max(np.abs(a - b)))


def compare(labels, probabilities, reference_labels, reference_probabilities, y) -> Parity:
    """Parity of (``labels``, ``probabilities``) with the reference model's and with ``y``."""
    agree = labels_equal(labels, reference_labels)
    return Parity(
        rows=int(agree.size),
        accuracy=accuracy(labels, y),
        agreement_rate=float(agree.mean()) if agree.size else math.nan,
        disagreements=int((~agree).sum()),
        max_probability_diff=max_abs_diff(probabilities, reference_probabilities),
    )


def top_two_margin(probabilities) -> np.ndarray:
    """Per row, the highest probability minus the second highest (inf with one column)."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        return np.full(p.shape[0], np.inf)
    top = np.partition(p, -2, axis=1)
    return top[:, -1] - top[:, -2]


def check_conversion(parity: Parity, labels, reference_labels, reference_probabilities, *, what: str) -> str | None:
    """Raise unless the fp32 conversion reproduces the original's predicted labels.

    Float32 arithmetic may flip a row whose two best classes are (nearly) tied in the original:
    such a flip is excused when the original's top-two margin on that row is at most twice the
    largest probability difference seen (a difference that small can reorder the two) and that
    difference is itself a rounding-size one (at most :data:`FP32_PROBABILITY_ATOL`). Any other
    disagreement is a conversion error.

    Returns:
        A note on excused near-tie rows, or None when every label agrees.

    Raises:
        QuantizationError: naming the agreement rate and the rows that disagree.
    """
    if parity.disagreements == 0:
        return None
    differ = ~labels_equal(labels, reference_labels)
    rows = np.flatnonzero(differ)
    diff = parity.max_probability_diff
    excusable = np.zeros(rows.size, dtype=bool)
    if reference_probabilities is not None and diff is not None and diff <= FP32_PROBABILITY_ATOL:
        excusable = top_two_margin(reference_probabilities)[rows] <= 2.0 * diff
    if not excusable.all():
        shown = ", ".join(map(str, rows[~excusable][:10]))
        raise QuantizationError(
            f"{what} does not reproduce the original's predictions: agreement rate {parity.agreement_rate:.6f} "
            f"({parity.disagreements} of {parity.rows} test rows differ, e.g. rows {shown}); "
            f"largest probability difference {diff if diff is not None else 'unavailable'}"
        )
    return (f"{rows.size} test row(s) ({', '.join(map(str, rows[:10]))}) predicted differently: near ties in the "
            f"original (top-two probability margin <= 2 x {diff:.3g}), flipped by float32 rounding")


def accuracy_change_points(value: float, reference: float) -> float:
    """``(value - reference) x 100``: the change in accuracy in percentage points."""
    return 100.0 * (value - reference)


def eligibility(change_points: float, tolerance_points: float) -> tuple[bool, str]:
    """A variant is eligible unless its accuracy dropped more than ``tolerance_points``."""
    if change_points >= -tolerance_points - _POINTS_EPS:
        return True, f"accuracy change {change_points:+.2f} points, within the {tolerance_points:g}-point tolerance"
    return False, (f"accuracy dropped {-change_points:.2f} points against the original, more than the "
                   f"{tolerance_points:g}-point tolerance")
