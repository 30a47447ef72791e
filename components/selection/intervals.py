"""The interval-aware layer of the selection: dominance and ties that respect measurement noise.

A candidate's objective may carry a 95 % interval: metrics ``<name>_low`` and ``<name>_high``
beside ``<name>`` (as the interleaved benchmark reports SCI, energy and latency). Without them
the interval has zero width (an exact figure such as accuracy on the test split), and every
rule below reduces to the exact one of :mod:`.pareto`.

* On one objective, ``a`` is *better* than ``b`` only beyond both intervals (``a.high < b.low``
  for a ``min`` objective); overlapping intervals are a *tie*.
* ``a`` *dominates* ``b`` when it is better on at least one objective and worse on none.
* Ties between candidates go to the smaller MAC count (``macs``), then the smaller model
  (``weight_bytes``, else ``size_bytes``), then the higher accuracy, then the name.

Plain Python; no kfp import.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from ..stats import Estimate, compare

__all__ = ["TIE_BREAK", "interval", "interval_dominates", "interval_front", "tie_key", "verdict"]

TIE_BREAK = ("ties (overlapping 95 % intervals on every objective, or equal scores) go to the smaller MAC count, "
             "then the smaller model (weight bytes), then the higher accuracy, then the name")


def interval(metrics: Mapping[str, float | None], name: str) -> Estimate:
    """The objective ``name`` of a candidate's metrics as an :class:`Estimate`."""
    value = metrics[name]
    low, high = metrics.get(f"{name}_low"), metrics.get(f"{name}_high")
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)) or low > high:
        return Estimate.exact(value)
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
    """Sort key of the tie-break: smaller MACs, smaller model, higher accuracy, name."""
    def number(key: str, default: float = math.inf) -> float:
        value = metrics.get(key)
        return default if value is None or not math.isfinite(value) else float(value)

    size = number("weight_bytes")
    if size == math.inf:
        size = number("size_bytes")
    return number("macs"), size, -number(accuracy, -math.inf), name


def verdict(chosen: Estimate, baseline: Estimate, direction: str) -> str:
    """``better``, ``worse`` or ``no significant difference`` (chosen against the baseline)."""
    outcome = compare(chosen, baseline, direction)
    return "better" if outcome > 0 else "worse" if outcome < 0 else "no significant difference"
