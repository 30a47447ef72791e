"""Property tests of the window search (issue 17): the vectorised search against a plain
brute-force reference written here, over series with exact ties, round-off ties, zeros and windows
that exactly fill the data.

The reference follows the Carbon Aware SDK semantics the module documents, with exact rational
arithmetic (``fractions.Fraction``) so that it has no round-off of its own: candidate starts are
``earliest + k x granularity``; a window ending past the data or the deadline is not a candidate;
each scores the time-weighted average of the slots it overlaps; the best is the earliest start
whose average is within the tie tolerance of the lowest.
"""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from greenkfp.components.carbon import CarbonSeries, WindowSearchError, best_window, rolling_average
from greenkfp.components.carbon.windows import WindowScores

from conftest import T0

PROPERTY = settings(max_examples=150, deadline=None)

# The reference's own tie tolerance (the module documents 1e-9 relative, float round-off only): kept
# apart from windows.TIE_RTOL so that a change there shows up here.
REFERENCE_RTOL = Fraction(1, 10**9)

# few distinct levels, so that equal windows (exact ties) are common; 0 for zones on the direct signal
LEVELS = [0.0, 0.0, 0.5, 2.9, 7.3, 67.1, 131.2, 138.2, 450.0]
# a level times (1 + e): windows then differ by ~1e-12 relative, far inside the tie tolerance
ROUND_OFF = [0.0, 0.0, 0.0, 1e-12, -1e-12, 3e-12, -2e-12]


@st.composite
def searches(draw):
    """(values, granularity s, earliest-start offset s, duration s, deadline offset s or None)."""
    g = draw(st.sampled_from([300, 900, 1800, 3600]))
    period = draw(st.integers(1, 6))
    base = draw(st.lists(st.sampled_from(LEVELS), min_size=period, max_size=period))
    n = draw(st.integers(1, 30))
    values = [base[i % period] * (1 + draw(st.sampled_from(ROUND_OFF))) for i in range(n)]
    span = n * g
    s0 = draw(st.sampled_from(["zero", "aligned", "unaligned", "late"]))
    if s0 == "zero":
        s0 = 0
    elif s0 == "aligned":
        s0 = g * draw(st.integers(0, (n - 1) // 2))
    elif s0 == "unaligned":
        s0 = draw(st.integers(0, max(0, span // 2 - 1)))
    else:
        s0 = draw(st.integers(0, span - 1))
    room = span - s0
    kind = draw(st.sampled_from(["fill", "slots", "slots", "slots", "short", "short", "short", "any"]))
    if kind == "fill":  # the window exactly fills the data from the earliest start
        w = room
    elif kind == "slots":  # whole slots: periodic series give exact ties
        w = g * draw(st.integers(1, max(1, min(period + 1, room // g))))
    elif kind == "short":  # shorter than a few slots, often unaligned
        w = draw(st.integers(1, 3 * g))
    else:  # anything, sometimes too long for the data
        w = draw(st.integers(1, room + g))
    deadline = draw(st.sampled_from([None, None, None, "any", "any", "exact"]))
    if deadline == "any":
        deadline = draw(st.integers(0, span + 2 * g))
    elif deadline == "exact":  # the deadline exactly at the end of the run-now window
        deadline = s0 + w
    return values, g, s0, w, deadline


def reference(values, g, s0, w, deadline):
    """Brute force: every candidate (start offset, exact average), in start order."""
    limit = len(values) * g if deadline is None else min(len(values) * g, deadline)
    out = []
    start = s0
    while start + w <= limit:
        total = Fraction(0)
        for i, v in enumerate(values):
            overlap = min(start + w, (i + 1) * g) - max(start, i * g)
            if overlap > 0:
                total += Fraction(v) * overlap
        out.append((start, total / w))
        start += g
    return out


def reference_best(candidates) -> int:
    lowest = min(a for _, a in candidates)
    tolerance = REFERENCE_RTOL * max(1, abs(lowest))
    return next(i for i, (_, a) in enumerate(candidates) if a <= lowest + tolerance)


def not_on_the_tolerance_edge(candidates) -> bool:
    """True unless some average sits within round-off of ``lowest + tolerance`` (there the float
    search may fairly fall either side, so such draws are skipped)."""
    lowest = min(a for _, a in candidates)
    edge = lowest + REFERENCE_RTOL * max(1, abs(lowest))
    scale = max(1, abs(lowest))
    return all(abs(a - edge) > Fraction(1, 10**12) * scale for _, a in candidates)


def series_of(values, g) -> CarbonSeries:
    return CarbonSeries.from_points([(T0 + timedelta(seconds=i * g), v) for i, v in enumerate(values)],
                                    granularity=timedelta(seconds=g))


def at(offset):
    return None if offset is None else T0 + timedelta(seconds=offset)


@PROPERTY
@given(searches())
def test_rolling_average_matches_brute_force(search):
    values, g, s0, w, deadline = search
    expected = reference(values, g, s0, w, deadline)
    series = series_of(values, g)
    if not expected:  # no window fits before the data's end or the deadline
        with pytest.raises(WindowSearchError, match="no window of"):
            rolling_average(series, timedelta(seconds=w), at(s0), at(deadline))
        return
    scores = rolling_average(series, timedelta(seconds=w), at(s0), at(deadline))
    assert len(scores) == len(expected)
    assert [int(s) for s in scores.starts] == [s + int(T0.timestamp()) for s, _ in expected]
    # the running integral's round-off, divided by the window: a 1-second window late in a day of
    # data carries ~eps x span / w of the level (still far inside the 1e-9 tie tolerance)
    scale = max(values) or 1.0
    round_off = 8 * np.finfo(float).eps * scale * len(values) * g / w
    for got, (_, want) in zip(scores.averages, expected):
        assert got == pytest.approx(float(want), rel=1e-12, abs=round_off)
    for window in scores:
        assert window.end - window.start == timedelta(seconds=w)
        assert window.end <= T0 + timedelta(seconds=len(values) * g)
        assert deadline is None or window.end <= at(deadline)


@PROPERTY
@given(searches())
def test_best_window_matches_brute_force(search):
    values, g, s0, w, deadline = search
    expected = reference(values, g, s0, w, deadline)
    assume(expected)
    assume(not_on_the_tolerance_edge(expected))
    choice = best_window(series_of(values, g), timedelta(seconds=w), at(s0), at(deadline))
    best = reference_best(expected)
    assert choice.best.start == at(expected[best][0])
    assert choice.run_now.start == at(s0)
    assert choice.candidates == len(expected)
    assert choice.delay == timedelta(seconds=expected[best][0] - s0)
    assert choice.best.average <= choice.run_now.average * (1 + 1e-12) + 1e-12
    now, chosen = expected[0][1], expected[best][1]
    if now == 0:
        assert choice.savings_percent == 0.0
    else:
        assert choice.savings_percent == pytest.approx(float(100 * (now - chosen) / now), abs=1e-6)


@PROPERTY
@given(st.sampled_from([300, 900, 3600]), st.lists(st.sampled_from(LEVELS), min_size=1, max_size=12),
       st.integers(0, 11))
def test_a_window_exactly_filling_the_data_is_the_only_candidate(g, values, first):
    first = min(first, len(values) - 1)
    w = (len(values) - first) * g
    choice = best_window(series_of(values, g), timedelta(seconds=w), at(first * g))
    assert choice.candidates == 1
    assert choice.best == choice.run_now
    assert choice.best.end == T0 + timedelta(seconds=len(values) * g)
    assert choice.best.average == pytest.approx(float(np.mean(values[first:])), rel=1e-12, abs=1e-12)
    with pytest.raises(WindowSearchError, match="end of the data"):
        best_window(series_of(values, g), timedelta(seconds=w + 1), at(first * g))


@st.composite
def average_arrays(draw):
    """Window averages with exact ties, ulp-level and ~1e-12 relative round-off ties, and zeros."""
    base = draw(st.lists(st.sampled_from(LEVELS), min_size=1, max_size=20))
    out = []
    for v in base:
        kind = draw(st.sampled_from(["exact", "ulp", "rel", "far"]))
        if kind == "ulp":
            v = float(np.nextafter(v, np.inf if draw(st.booleans()) else 0.0))
        elif kind == "rel":
            v = v * (1 + draw(st.sampled_from([1e-12, -1e-12, 5e-10, -5e-10])))
        elif kind == "far":
            v = v * (1 + draw(st.sampled_from([1e-6, -1e-6, 1e-3])))
        out.append(v)
    return np.array(out)


@PROPERTY
@given(average_arrays())
def test_best_index_is_the_earliest_within_the_tie_tolerance(averages):
    scores = WindowScores(T0.timestamp() + 3600 * np.arange(averages.size, dtype=np.int64), averages,
                          timedelta(hours=1))
    exact = [Fraction(float(a)) for a in averages]
    assume(not_on_the_tolerance_edge(list(enumerate(exact))))
    assert scores.best_index() == reference_best(list(enumerate(exact)))
