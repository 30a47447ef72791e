"""Property tests of the exact Pareto front against a brute force written here, with the
pre-filter and the sweep's block sizes shrunk so that the sweep does the work.

At its defaults the pre-filter removes every row of a table of 100 rows or fewer (each pass drops
at least the best row, which is at least 1 % of the rows left), so on small tables the sweep
(:func:`pareto._front_of_sorted_unique`) and the merging of copies before it are never reached.
Here ``_PREFILTER_MAX_PASSES`` is drawn from 0 (no pre-filter: the sweep does all the work), 1 or
2 (both steps share the rows) and the default, and the block bounds are shrunk to a few rows so
one table spans many blocks, with blocks of varying size.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenkfp.components.selection import pareto
from greenkfp.components.selection.pareto import dominators, pareto_front, pareto_front_details


# --- the reference: the definitions, in plain Python ---------------------------------------------
def _costs(row, directions):
    return [-v if d == "max" else v for v, d in zip(row, directions)]


def _finite(row) -> bool:
    return all(math.isfinite(v) for v in row)


def _dominates(a, b, directions) -> bool:
    ca, cb = _costs(a, directions), _costs(b, directions)
    return all(x <= y for x, y in zip(ca, cb)) and any(x < y for x, y in zip(ca, cb))


def brute_front(rows, directions) -> list[int]:
    return [
        j for j, b in enumerate(rows)
        if _finite(b) and not any(_finite(a) and _dominates(a, b, directions) for a in rows)
    ]


def brute_dominators(rows, directions, among=None) -> dict[int, list[int]]:
    if among is None:
        among = brute_front(rows, directions)
    found: dict[int, list[int]] = {}
    for i, b in enumerate(rows):
        if not _finite(b):
            continue
        by = [j for j in among if _finite(rows[j]) and _dominates(rows[j], b, directions)]
        if by:
            found[i] = by
    return found


def brute_reason(row, names) -> str:
    parts = []
    for v, name in zip(row, names):
        if math.isnan(v):
            parts.append(f"{name} is missing (NaN)")
        elif math.isinf(v):
            parts.append(f"{name} is infinite ({v})")
    return "; ".join(parts)


# --- the seams -------------------------------------------------------------------------------------
@contextmanager
def shrunk(passes: int, block_min: int, block_max: int, block_cells: int):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pareto, "_PREFILTER_MAX_PASSES", passes)
        mp.setattr(pareto, "_BLOCK_MIN", block_min)
        mp.setattr(pareto, "_BLOCK_MAX", block_max)
        mp.setattr(pareto, "_BLOCK_CELLS", block_cells)
        yield


@st.composite
def seams(draw):
    block_max = draw(st.integers(1, 6))
    return {
        "passes": draw(st.sampled_from([0, 0, 0, 1, 2, 256])),
        "block_min": draw(st.integers(1, block_max)),
        "block_max": block_max,
        "block_cells": draw(st.integers(1, 24)),
    }


# --- the tables ------------------------------------------------------------------------------------
INTEGERS = st.integers(0, 3).map(float)  # few values: ties on one or more objectives
MIXED = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, 2.0, 0.5, 1e300, -1e300]),
    st.floats(-10, 10, allow_nan=False, allow_infinity=False),
)
NONFINITE = st.sampled_from([math.nan, math.inf, -math.inf])


@st.composite
def tables(draw, values=INTEGERS, nonfinite=False, min_d=1):
    d = draw(st.integers(min_d, 5))
    directions = draw(st.lists(st.sampled_from(["max", "min"]), min_size=d, max_size=d))
    cell = st.one_of(values, NONFINITE) if nonfinite else values
    distinct = draw(st.lists(st.lists(cell, min_size=d, max_size=d), min_size=1, max_size=14))
    # copies: rows drawn again from the distinct ones, in any order
    picks = draw(st.lists(st.integers(0, len(distinct) - 1), min_size=0, max_size=30))
    rows = [list(r) for r in distinct] + [list(distinct[i]) for i in picks]
    order = draw(st.permutations(range(len(rows))))
    return [rows[i] for i in order], directions


def _check_front(rows, directions, seam):
    expected = brute_front(rows, directions)
    with shrunk(**seam):
        got = pareto_front(rows, directions)
    assert got.dtype == np.int64
    assert got.tolist() == expected


@settings(max_examples=400, deadline=None)
@given(tables(), seams())
def test_sweep_matches_brute_force_on_tied_integers_with_copies(case, seam):
    _check_front(*case, seam)


@settings(max_examples=250, deadline=None)
@given(tables(values=MIXED), seams())
def test_sweep_matches_brute_force_on_real_values(case, seam):
    _check_front(*case, seam)


@settings(max_examples=300, deadline=None)
@given(tables(nonfinite=True, min_d=1), seams())
def test_details_match_brute_force_with_nan_and_infinity(case, seam):
    rows, directions = case
    names = [f"obj{i}" for i in range(len(directions))]
    with shrunk(**seam):
        details = pareto_front_details(rows, directions, names=names)
    front = brute_front(rows, directions)
    assert details.indices.tolist() == front
    assert details.n_points == len(rows)
    assert details.excluded == {i: brute_reason(r, names) for i, r in enumerate(rows) if not _finite(r)}
    assert details.dominated.tolist() == [i for i, r in enumerate(rows) if _finite(r) and i not in front]


@settings(max_examples=300, deadline=None)
@given(tables(nonfinite=True), seams(), st.data())
def test_dominators_match_brute_force(case, seam, data):
    rows, directions = case
    with shrunk(**seam):
        assert dominators(rows, directions) == brute_dominators(rows, directions)
    # an explicit ``among``, which may name rows with NaN or infinity: they dominate nothing
    among = data.draw(st.lists(st.integers(0, len(rows) - 1), unique=True, max_size=len(rows)))
    assert dominators(rows, directions, among=among) == brute_dominators(rows, directions, among)


def test_pre_filter_at_its_defaults_leaves_nothing_to_the_sweep_on_small_tables():
    # Why the tests above shrink it: a property test at the defaults never reaches the sweep.
    rng = np.random.default_rng(0)
    cols = [rng.integers(0, 4, 100).astype(float) for _ in range(3)]
    groups, remaining = pareto._prefilter(cols)
    assert remaining.size == 0
    with shrunk(passes=0, block_min=1, block_max=2, block_cells=1):
        groups, remaining = pareto._prefilter(cols)
        assert groups == [] and remaining.tolist() == list(range(100))


# --- the cases the sweep's comparisons turn on -----------------------------------------------------
SWEEP_ONLY = {"passes": 0, "block_min": 1, "block_max": 2, "block_cells": 1}


@pytest.mark.parametrize("seam", [SWEEP_ONLY, {**SWEEP_ONLY, "block_max": 64, "block_min": 64}])
def test_sweep_a_row_tied_on_some_objectives_and_better_on_one_dominates(seam):
    # rows 1 and 2 each tie row 0 on two objectives and are worse on the third: dominated
    # (a strict "<" in the block test would keep them); row 3 is a copy of row 0: on the front.
    rows = [[1.0, 1.0, 1.0], [1.0, 1.0, 2.0], [2.0, 1.0, 1.0], [1.0, 1.0, 1.0], [0.0, 5.0, 5.0]]
    with shrunk(**seam):
        assert pareto_front(rows, ["min"] * 3).tolist() == [0, 3, 4]
        assert dominators(rows, ["min"] * 3) == {1: [0, 3], 2: [0, 3]}


def test_sweep_compares_the_rows_of_one_block_with_each_other():
    # one block of two rows and nothing on the front yet: only the within-block test can drop row 1
    with shrunk(**SWEEP_ONLY):
        assert pareto_front([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]], ["min"] * 3).tolist() == [0]
        assert pareto_front([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], ["max"] * 3).tolist() == [0]


def test_sweep_two_objectives_tie_on_the_second_is_dominated():
    rows = [[0.0, 1.0], [1.0, 1.0], [0.0, 1.0], [2.0, 0.0]]
    with shrunk(**SWEEP_ONLY):
        assert pareto_front(rows, ["min", "min"]).tolist() == [0, 2, 3]


def test_dominators_ignore_rows_with_missing_or_infinite_values():
    rows = [[1.0, 1.0], [2.0, math.inf], [-math.inf, 0.5], [math.nan, 0.0], [2.0, 2.0]]
    # row 0 would "dominate" row 1 (inf is worse than anything) and row 2 would dominate row 0
    # (-inf is better than anything) if non-finite rows took part
    assert dominators(rows, ["min", "min"]) == {4: [0]}
    assert dominators(rows, ["min", "min"], among=[0, 1, 2, 3, 4]) == {4: [0]}


def test_names_must_have_one_entry_per_column():
    with pytest.raises(ValueError, match=r"names must have one entry per column of points \(2\); got 3"):
        pareto_front_details([[1.0, 2.0]], ["min", "min"], names=["a", "b", "c"])
    with pytest.raises(ValueError, match=r"names must have one entry per column of points \(2\); got 1"):
        pareto_front_details([[1.0, math.nan]], ["min", "min"], names=["a"])
