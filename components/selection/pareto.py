"""Exact Pareto fronts of numeric tables: which rows no other row dominates.

Definitions (per column, "better" means larger for ``"max"`` and smaller for ``"min"``):

* Row ``a`` *dominates* row ``b`` when ``a`` is at least as good as ``b`` in every column and
  strictly better in at least one.
* The *front* is the set of rows that no row dominates. Identical rows do not dominate each
  other, so every copy of a non-dominated row is on the front.
* A row with a missing (``None``/NaN) or infinite value in any column takes no part: it is
  neither on the front nor allowed to dominate anything, and
  :func:`pareto_front_details` reports it, with the offending columns, in ``excluded``.

:func:`pareto_front` returns only the sorted indices of the front; :func:`pareto_front_details`
also returns the excluded rows with their reasons; :func:`dominators` says which front rows
dominate each other row (for decision records).

Algorithm (exact, no tolerance; values are compared as given)
--------------------------------------------------------------
Columns are first turned so that smaller is better (``"max"`` columns negated).

1. *Pre-filter.* Each column is scaled to [0, 1] and each row gets the sum of its scaled values.
   The row with the smallest sum (the lexicographically smallest among equal sums) cannot be
   dominated: a dominator would have a sum at most as large (scaling and rounding are
   monotone) and would come first lexicographically. It joins the front with its copies, and
   every row it weakly dominates is dropped in one vectorised pass. This repeats on the rows
   left while a pass still drops at least 1% of them. On random data the first pass alone
   drops well over 90% of the rows.
2. *Sweep.* The remaining rows are sorted lexicographically and copies are merged; a row can
   then only be dominated by a row earlier in that order, and (by transitivity) only by one
   that is itself non-dominated. With two columns the sweep is a running minimum of the second
   column (O(n log n) overall). With three or more, rows are taken in blocks: each block is
   compared against the front found so far, then its survivors against each other, all in
   numpy.

Cost: O(n log n + n·h·d) for ``n`` rows, ``h`` front rows and ``d`` columns. That is fast when
the front is small against ``n`` (100,000 random rows of 3 columns, front ~100: under 10 ms on
two cores) and quadratic in the worst case of three or more columns with most rows on the front
(20,000 rows on a plane, all on the front: about 0.5 s).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

Direction = Literal["max", "min"]
DIRECTIONS = ("max", "min")

# Tuning only: the front does not depend on these. Tests shrink them (monkeypatch) so that the
# sweep does all the work on small tables (``_PREFILTER_MAX_PASSES = 0`` skips the pre-filter,
# which otherwise removes every row of a table of 100 rows or fewer) and runs over many blocks.
# Pre-filter: stop when a pass drops less than this share of the rows left.
_PREFILTER_MIN_DROP = 0.01
_PREFILTER_MAX_PASSES = 256
# Sweep: elements of one block-against-front comparison (front rows x block rows), and the
# bounds of a block's row count.
_BLOCK_CELLS = 1 << 20
_BLOCK_MIN = 64
_BLOCK_MAX = 1024


@dataclass(frozen=True)
class ParetoFront:
    """A front with its bookkeeping.

    Attributes:
        indices: Row indices of the non-dominated rows, ascending (``int64``).
        excluded: Row index -> why the row took no part (a missing or infinite value).
        n_points: Rows given.
    """

    indices: np.ndarray
    excluded: dict[int, str] = field(default_factory=dict)
    n_points: int = 0

    @property
    def dominated(self) -> np.ndarray:
        """Indices of the rows that took part and are dominated, ascending."""
        mask = np.ones(self.n_points, dtype=bool)
        mask[self.indices] = False
        mask[list(self.excluded)] = False
        return np.flatnonzero(mask)


def validate_points(
    points, directions: Sequence[str], names: Sequence[str] | None = None
) -> tuple[np.ndarray, tuple[str, ...], tuple[str, ...]]:
    """Check and convert the inputs of the front functions.

    Returns:
        ``(values, directions, names)``: a float64 array of shape ``(n, d)`` (``None`` becomes
        NaN), the directions as a tuple, and the column names (``"column 0"``... by default).

    Raises:
        ValueError / TypeError naming the argument and the bad value.
    """
    if isinstance(directions, str) or not isinstance(directions, Sequence):
        raise TypeError(f"directions must be a sequence of 'max'/'min', one per column; got {directions!r}")
    directions = tuple(directions)
    for i, direction in enumerate(directions):
        if direction not in DIRECTIONS:
            raise ValueError(f"directions[{i}] must be 'max' or 'min'; got {direction!r}")
    try:
        values = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"points must be a 2-D table of numbers (None for missing); could not convert it: {exc}") from None
    if values.ndim == 1 and values.size == 0:
        values = values.reshape(0, len(directions))
    if values.ndim != 2:
        raise ValueError(f"points must be 2-D, shape (n_points, n_objectives); got an array of shape {values.shape}")
    if values.shape[1] == 0:
        raise ValueError(f"points must have at least one column; got shape {values.shape}")
    if len(directions) != values.shape[1]:
        raise ValueError(
            f"directions must have one entry per column of points ({values.shape[1]}); got {len(directions)}: "
            f"{list(directions)!r}"
        )
    if names is None:
        names = tuple(f"column {i}" for i in range(values.shape[1]))
    else:
        names = tuple(names)
        if len(names) != values.shape[1]:
            raise ValueError(f"names must have one entry per column of points ({values.shape[1]}); got {len(names)}")
    return values, directions, names


def _finite_rows(values: np.ndarray) -> np.ndarray:
    """Mask of the rows without NaN or infinity (column by column: faster than all(axis=1))."""
    ok = np.isfinite(values[:, 0])
    for col in range(1, values.shape[1]):
        ok &= np.isfinite(values[:, col])
    return ok


def _exclusions(values: np.ndarray, finite: np.ndarray, names: Sequence[str]) -> dict[int, str]:
    reasons = {}
    for row in np.flatnonzero(~finite):
        parts = []
        for col in np.flatnonzero(~np.isfinite(values[row])):
            kind = "missing (NaN)" if np.isnan(values[row, col]) else f"infinite ({values[row, col]})"
            parts.append(f"{names[col]} is {kind}")
        reasons[int(row)] = "; ".join(parts)
    return reasons


def _cost_columns(values: np.ndarray, directions: Sequence[str]) -> list[np.ndarray]:
    """One contiguous array per column, each to be minimised (``"max"`` columns negated)."""
    return [-values[:, c] if d == "max" else np.ascontiguousarray(values[:, c]) for c, d in enumerate(directions)]


def _lex_order(costs: np.ndarray) -> np.ndarray:
    """Row order sorting by column 0, then 1, ... (np.lexsort's primary key is the last)."""
    return np.lexsort(costs.T[::-1])


def _prefilter(cols: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """Step 1: front rows found by smallest scaled sum (with their copies), and the rows left.

    Returns ``(front_groups, remaining)``: arrays of row indices.
    """
    n = len(cols[0])
    sums = np.zeros(n)
    for col in cols:
        scaled = col * 0.25  # a power of two: exact, and keeps ``high - low`` finite
        low, high = scaled.min(), scaled.max()
        sums += (scaled - low) / (high - low if high > low else 1.0)

    remaining = np.arange(n)
    groups: list[np.ndarray] = []
    for _ in range(_PREFILTER_MAX_PASSES):
        if remaining.size == 0:
            break
        ties = np.flatnonzero(sums == sums.min())
        if ties.size > 1:  # the lexicographically smallest among equal sums
            ties = ties[np.lexsort([col[ties] for col in reversed(cols)])]
        best = [col[ties[0]] for col in cols]
        drop = cols[0] >= best[0]  # rows at least as bad as ``best`` everywhere (copies included)
        for col, b in zip(cols[1:], best[1:]):
            drop &= col >= b
        copies = drop & (cols[0] == best[0])
        for col, b in zip(cols[1:], best[1:]):
            copies &= col == b
        groups.append(remaining[copies])
        dropped = int(np.count_nonzero(drop))
        keep = ~drop
        remaining, sums, cols = remaining[keep], sums[keep], [col[keep] for col in cols]
        if dropped < _PREFILTER_MIN_DROP * (remaining.size + dropped):
            break
    return groups, remaining


def _front_of_sorted_unique(rows: np.ndarray) -> np.ndarray:
    """Step 2: non-dominated mask of distinct rows already in lexicographic order."""
    n, d = rows.shape
    if n == 0:
        return np.zeros(0, dtype=bool)
    if d == 1:
        keep = np.zeros(n, dtype=bool)
        keep[0] = True
        return keep
    if d == 2:
        # Earlier rows are no worse in column 0, so row i is dominated exactly when an earlier
        # row is no worse in column 1 (distinct rows: "no worse in both" means dominates).
        running_min = np.minimum.accumulate(rows[:, 1])
        return np.concatenate(([True], rows[1:, 1] < running_min[:-1]))

    keep = np.zeros(n, dtype=bool)
    front = np.empty((0, d))
    start = 0
    while start < n:
        size = int(min(_BLOCK_MAX, max(_BLOCK_MIN, _BLOCK_CELLS // max(1, len(front)))))
        block = rows[start : start + size]
        alive = np.ones(len(block), dtype=bool)
        if len(front):
            # front row f dominates block row b when f <= b in every column (rows are distinct)
            hit = front[:, None, 0] <= block[None, :, 0]
            for col in range(1, d):
                hit &= front[:, None, col] <= block[None, :, col]
            alive = ~hit.any(axis=0)
        survivors = np.flatnonzero(alive)
        if survivors.size > 1:
            s = block[survivors]
            hit = s[:, None, 0] <= s[None, :, 0]
            for col in range(1, d):
                hit &= s[:, None, col] <= s[None, :, col]
            np.fill_diagonal(hit, False)
            survivors = survivors[~hit.any(axis=0)]
        keep[start + survivors] = True
        front = np.concatenate((front, block[survivors]))
        start += len(block)
    return keep


def _front_indices(cols: list[np.ndarray]) -> np.ndarray:
    """Indices (ascending) of the non-dominated rows of an all-finite table given as cost columns."""
    if len(cols[0]) == 0:
        return np.zeros(0, dtype=np.int64)
    groups, remaining = _prefilter(cols)
    if remaining.size:
        rows = np.column_stack([col[remaining] for col in cols])
        order = _lex_order(rows)
        ordered = rows[order]
        new = np.concatenate(([True], np.any(ordered[1:] != ordered[:-1], axis=1)))
        group_of = np.cumsum(new) - 1  # sorted position -> distinct row
        keep = _front_of_sorted_unique(ordered[new])
        groups.append(remaining[order[keep[group_of]]])
    return np.sort(np.concatenate(groups)).astype(np.int64)


def pareto_front_details(points, directions: Sequence[str], names: Sequence[str] | None = None) -> ParetoFront:
    """The front of ``points`` and the rows left out with their reasons.

    Args:
        points: Table of numbers, shape ``(n_points, n_objectives)`` (numpy array, nested
            lists, DataFrame); ``None`` or NaN marks a missing value.
        directions: ``"max"`` or ``"min"`` per column.
        names: Column names for the reasons (``"column 0"``... by default).

    Returns:
        A :class:`ParetoFront`.
    """
    values, directions, names = validate_points(points, directions, names)
    finite = _finite_rows(values)
    if finite.all():
        indices = _front_indices(_cost_columns(values, directions))
        return ParetoFront(indices=indices, excluded={}, n_points=len(values))
    valid = np.flatnonzero(finite)
    local = _front_indices(_cost_columns(values[valid], directions))
    return ParetoFront(indices=valid[local].astype(np.int64), excluded=_exclusions(values, finite, names),
                       n_points=len(values))


def pareto_front(points, directions: Sequence[str]) -> np.ndarray:
    """Indices of the non-dominated rows of ``points``, ascending.

    Args:
        points: Table of numbers, shape ``(n_points, n_objectives)``. A row with a missing
            (None/NaN) or infinite value is left out (see :func:`pareto_front_details` for the
            reasons).
        directions: ``"max"`` or ``"min"`` per column.

    Returns:
        ``int64`` array of row indices. Every copy of a non-dominated row is included.

    Example:
        >>> pareto_front([[0.9, 12.0], [0.8, 5.0], [0.8, 6.0], [0.9, 12.0]], ["max", "min"]).tolist()
        [0, 1, 3]
    """
    return pareto_front_details(points, directions).indices


def dominates(a, b, directions: Sequence[str]) -> bool:
    """Whether row ``a`` dominates row ``b`` (no worse everywhere, better somewhere)."""
    costs = np.column_stack(_cost_columns(np.asarray([a, b], dtype=np.float64), directions))
    return bool(np.all(costs[0] <= costs[1]) and np.any(costs[0] < costs[1]))


def dominators(points, directions: Sequence[str], among: Sequence[int] | None = None) -> dict[int, list[int]]:
    """For every finite row, the rows of ``among`` that dominate it (rows nobody dominates are
    left out). ``among`` defaults to the front, which holds a dominator of every dominated row.

    Meant for explanations over small tables: it costs O(n x len(among)).
    """
    values, directions, _ = validate_points(points, directions)
    costs = np.column_stack(_cost_columns(values, directions))
    finite = _finite_rows(values)
    if among is None:
        among = np.flatnonzero(finite)[_front_indices(_cost_columns(values[finite], directions))]
    found: dict[int, list[int]] = {}
    for j in np.asarray(among, dtype=np.int64):
        if not finite[j]:
            continue
        hit = np.all(costs[j] <= costs, axis=1) & np.any(costs[j] < costs, axis=1) & finite
        for i in np.flatnonzero(hit):
            found.setdefault(int(i), []).append(int(j))
    return dict(sorted(found.items()))
