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
        details = pareto_front_details(rows, directions)
    assert got.dtype == np.int64
    assert got.tolist() == expected
    # every row finite: nothing excluded, the rest dominated
    assert details.indices.tolist() == expected and details.excluded == {} and details.n_points == len(rows)
    assert details.dominated.tolist() == [i for i in range(len(rows)) if i not in expected]


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


# --- the pre-filter: what makes it fast, and when it stops ------------------------------------------
def _cols(rows, directions):
    return pareto._cost_columns(np.asarray(rows, dtype=float), directions)


def test_pre_filter_first_pass_drops_most_random_rows_whatever_the_column_scales():
    # the docstring's promise: on random data the first pass alone drops well over 90 % of the rows;
    # each column is scaled to [0, 1] first, so a column in the thousands does not decide the pick
    rng = np.random.default_rng(1)
    x = rng.random((10_000, 3)) * [1.0, 1e3, 1e-3] + [0.0, 5e3, -2e-3]
    directions = ["max", "min", "min"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pareto, "_PREFILTER_MAX_PASSES", 1)
        groups, remaining = pareto._prefilter(_cols(x, directions))
    (group,) = groups
    assert remaining.size < 1_000
    # the pick is on the front, and every row it weakly dominates is gone
    front = set(pareto_front(x, directions).tolist())
    assert set(group.tolist()) <= front
    costs = np.column_stack(_cols(x, directions))
    weakly = np.flatnonzero(np.all(costs[group[0]] <= costs, axis=1))
    assert not set(weakly.tolist()) & set(remaining.tolist())


def test_pre_filter_drops_every_row_its_pick_weakly_dominates_and_keeps_the_picks_copies_on_the_front():
    # the pick (0, 0, 0) ties some rows on one or two columns; all of them go in one pass
    rows = [[0, 0, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0], [0, 0, 0], [5, -1, 9], [-1, 5, 9]]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pareto, "_PREFILTER_MAX_PASSES", 1)
        groups, remaining = pareto._prefilter(_cols(rows, ["min"] * 3))
    assert [g.tolist() for g in groups] == [[0, 4]]
    assert remaining.tolist() == [5, 6]


def test_pre_filter_pick_among_equal_sums_is_the_lexicographically_smallest():
    # rows 0 and 1 have the same scaled sum once rounded (0.5 + 1e-17 == 0.5) and row 1 dominates
    # row 0: the pick must be row 1, or row 0 would join the front although dominated
    rows = [[0.5, 1e-17], [0.5, 0.0], [0.0, 1.0], [1.0, 0.0]]
    assert pareto_front(rows, ["min", "min"]).tolist() == [1, 2]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pareto, "_PREFILTER_MAX_PASSES", 1)
        groups, _ = pareto._prefilter(_cols(rows, ["min", "min"]))
    assert [g.tolist() for g in groups] == [[1]]


def test_pre_filter_stops_when_a_pass_drops_less_than_one_percent_of_the_rows_left():
    line = lambda n: [[i, n - i] for i in range(n)]  # noqa: E731 - every row on the front
    # 100 rows: each pass drops one row, exactly 1 %: it goes on until nothing is left
    assert pareto._prefilter(_cols(line(100), ["min", "min"]))[1].size == 0
    # 1,000 rows: the first pass drops 1 row (< 1 % of 1,000): it stops, the sweep gets 999
    groups, remaining = pareto._prefilter(_cols(line(1000), ["min", "min"]))
    assert len(groups) == 1 and remaining.size == 999
    # 10,000 rows, a knee point K dominating 98 of them: the pass drops 99 (< 100 = 1 % of the
    # 10,000 rows before the pass, though >= 1 % of the 9,901 left): it stops there
    rows = line(9999) + [[5000, 9999 - 97 - 5000]]
    groups, remaining = pareto._prefilter(_cols(rows, ["min", "min"]))
    assert [g.tolist() for g in groups] == [[9999]] and remaining.size == 9901


def test_values_near_the_float_maximum_keep_the_pre_filter_finite():
    # the pre-filter scales by 0.25 so that ``high - low`` of a column stays finite
    big = 1.7e308
    rows = [[big, -big], [-big, big], [0.0, 0.0], [big, big], [-big, -big], [-big, -big]]
    assert pareto_front(rows, ["min", "min"]).tolist() == [4, 5]
    assert pareto_front(rows, ["max", "min"]).tolist() == brute_front(rows, ["max", "min"]) == [0]
    assert pareto_front_details(rows, ["min", "max"]).indices.tolist() == brute_front(rows, ["min", "max"])


def test_dominates_with_a_missing_value_is_false_both_ways():
    from greenkfp.components.selection.pareto import dominates

    assert not dominates([None, 0.0], [1.0, 1.0], ["min", "min"])
    assert not dominates([0.0, 0.0], [None, 1.0], ["min", "min"])
    assert dominates([0, 0], [1, 0], ["min", "min"]) and not dominates([0, 0], [1, 0], ["max", "min"])
