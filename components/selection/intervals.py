"""The interval-aware layer of the selection: dominance and ties that respect measurement noise.

A candidate's objective may carry a 95 % interval: metrics ``<name>_low`` and ``<name>_high``
beside ``<name>`` (as the interleaved benchmark reports SCI, energy and latency, and the
selection's collector gives accuracy its Wilson interval from the test rows). Without them the
interval has zero width (an exact figure), and every rule below reduces to the exact one of
:mod:`.pareto`. A malformed interval (only one end, an end not finite, ``low > high``, or an end
on the wrong side of the figure beyond float round-off) is an error (:class:`SelectionError`),
never quietly an exact figure.

* On one objective, ``a`` is *better* than ``b`` only beyond both intervals (``a.high < b.low``
  for a ``min`` objective); overlapping intervals are a *tie*.
* ``a`` *dominates* ``b`` when it is better on at least one objective and worse on none.
* Ties between candidates (:data:`TIE_BREAK`, :func:`tie_key`) go to fewer operations per
  inference (``macs + tree_comparisons``, :func:`greenkfp.components.records.operations`: a
  tree ensemble has 0 MACs, so MACs alone would hand it every tie), then the smaller model
  (``weight_bytes``, else ``size_bytes``), then the higher accuracy, then the name.

Plain Python; no kfp import.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from ..records import operations
from ..stats import Estimate, compare

__all__ = ["TIE_BREAK", "SelectionError", "interval", "interval_dominates", "interval_front", "tie_key", "verdict"]

TIE_BREAK = ("front members whose 95 % intervals overlap the rule's pick on every objective the rule scores are "
             "tied with it; ties go to fewer operations per inference (macs + tree_comparisons, so a tree "
             "ensemble's comparisons count like a network's multiply-accumulates), then the smaller model (weight "
             "bytes, else size bytes), then the higher accuracy, then the name")

#: Relative slack for an interval end on the wrong side of its figure (float round-off).
_ROUND_OFF = 1e-9


class SelectionError(ValueError):
    """Bad input to the selection (kept a ValueError for scikit-learn-style callers)."""


def interval(metrics: Mapping[str, float | None], name: str, candidate: str | None = None) -> Estimate:
    """The objective ``name`` of a candidate's metrics as an :class:`Estimate`.

    Without ``<name>_low`` and ``<name>_high`` the figure is exact (a zero-width interval).

    Raises:
        SelectionError: the figure is not finite, only one end is given, an end is not finite,
            ``low > high``, or ``low > value`` / ``high < value`` beyond float round-off; the
            message names the candidate (when given), the metric and the values.
    """
    value = metrics[name]
    low, high = metrics.get(f"{name}_low"), metrics.get(f"{name}_high")
    where = f"candidate {candidate!r}: " if candidate is not None else ""
    if value is None or not math.isfinite(value):
        raise SelectionError(f"{where}{name} must be a finite number to compare, got {value!r}")
    if low is None and high is None:
        return Estimate.exact(value)
    figures = f"{name}={value!r}, {name}_low={low!r}, {name}_high={high!r}"
    if low is None or high is None:
        missing = f"{name}_low" if low is None else f"{name}_high"
        raise SelectionError(f"{where}{name} has a malformed interval: {missing} is missing ({figures}); give both "
                             "ends or neither")
    if not (math.isfinite(low) and math.isfinite(high)):
        raise SelectionError(f"{where}{name} has a malformed interval: the ends must be finite ({figures})")
    if low > high:
        raise SelectionError(f"{where}{name} has a malformed interval: {name}_low > {name}_high ({figures})")
    slack = _ROUND_OFF * max(abs(value), abs(low), abs(high))
    if low > value + slack or high < value - slack:
        raise SelectionError(f"{where}{name} has a malformed interval: it does not hold the figure ({figures})")
    return Estimate(value, min(low, value), max(high, value))


def interval_dominates(a: Mapping, b: Mapping, objectives: Sequence) -> bool:
    """Whether metrics ``a`` dominate ``b`` beyond the intervals (objectives: ``.name``, ``.direction``)."""
    outcomes = [compare(interval(a, o.name), interval(b, o.name), o.direction) for o in objectives]
    return any(x > 0 for x in outcomes) and not any(x < 0 for x in outcomes)


def interval_front(table: Sequence[Mapping], objectives: Sequence) -> tuple[list[int], dict[int, list[int]]]:
    """Indices of the rows no other row dominates beyond the intervals, and for each dominated
    row the rows that dominate it (O(n^2): selection tables are small)."""
    beaten: dict[int, list[int]] = {}
    for i, b in enumerate(table):
        by = [j for j, a in enumerate(table) if j != i and interval_dominates(a, b, objectives)]
        if by:
            beaten[i] = by
    return [i for i in range(len(table)) if i not in beaten], beaten


def tied(a: Mapping, b: Mapping, objectives: Sequence) -> bool:
    """Whether two candidates' intervals overlap on every objective."""
    return all(compare(interval(a, o.name), interval(b, o.name), o.direction) == 0 for o in objectives)


def tie_key(name: str, metrics: Mapping[str, float | None], accuracy: str = "accuracy") -> tuple:
    """Sort key of the tie-break (:data:`TIE_BREAK`): fewer operations per inference (``macs +
    tree_comparisons``; unknown sorts last), smaller model, higher accuracy, name."""
    def number(key: str, default: float | None = math.inf) -> float | None:
        value = metrics.get(key)
        return default if value is None or not math.isfinite(value) else float(value)

    ops = operations(number("macs", None), number("tree_comparisons", None))
    size = number("weight_bytes")
    if size == math.inf:
        size = number("size_bytes")
    return math.inf if ops is None else float(ops), size, -number(accuracy, -math.inf), name


#: What each element of :func:`tie_key` compares, in order (for the reason text).
TIE_KEY_PARTS = ("operations per inference (macs + tree_comparisons)", "model size (weight bytes, else size bytes)",
                 "accuracy", "name")


def verdict(chosen: Estimate, baseline: Estimate, direction: str) -> str:
    """``better``, ``worse`` or ``no significant difference`` (chosen against the baseline)."""
    outcome = compare(chosen, baseline, direction)
    return "better" if outcome > 0 else "worse" if outcome < 0 else "no significant difference"
