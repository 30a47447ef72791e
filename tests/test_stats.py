"""Estimates with bootstrap intervals, and comparisons that respect them."""

import numpy as np
import pytest

from greenkfp.components.stats import Estimate, bootstrap_median, compare, paired_bootstrap


def test_bootstrap_median_interval_covers_the_true_median_about_95_percent_of_the_time():
    # a skewed, known distribution: lognormal(0, 0.5) has median exactly 1
    rng = np.random.default_rng(42)
    trials, hits, widths = 300, 0, []
    for trial in range(trials):
        sample = rng.lognormal(0.0, 0.5, size=80)
        estimate = bootstrap_median(sample, resamples=1000, seed=trial)
        hits += estimate.contains(1.0)
        widths.append(estimate.high - estimate.low)
        assert estimate.low <= estimate.estimate <= estimate.high
    coverage = hits / trials
    # nominal 95 %; the percentile bootstrap of a median runs close to it at n = 80
    assert 0.89 <= coverage <= 0.99, coverage
    # and the interval shrinks with more rounds
    wide = bootstrap_median(rng.lognormal(0, 0.5, 20), seed=1)
    narrow = bootstrap_median(rng.lognormal(0, 0.5, 2000), seed=1)
    assert narrow.high - narrow.low < (wide.high - wide.low) / 3


def test_bootstrap_is_seeded_and_one_value_has_no_width():
    data = np.arange(50.0)
    assert bootstrap_median(data, seed=3) == bootstrap_median(data, seed=3)
    assert bootstrap_median([2.5]) == Estimate(2.5, 2.5, 2.5)
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_median([])
    with pytest.raises(ValueError, match="finite"):
        bootstrap_median([1.0, float("nan")])


def test_paired_bootstrap_keeps_the_pairing_and_is_far_tighter_than_separate_intervals():
    # two variants measured in the same 100 rounds: a shared drift dominates each series,
    # their true difference is 0.1
    rng = np.random.default_rng(0)
    drift = rng.normal(10.0, 1.0, 100)
    a, b = drift + rng.normal(0, 0.01, 100), drift + 0.1 + rng.normal(0, 0.01, 100)
    separate_a, separate_b = bootstrap_median(a), bootstrap_median(b)
    assert compare(separate_a, separate_b, "min") == 0  # separately, the drift hides the difference
    diff = paired_bootstrap({"a": a, "b": b}, lambda s: np.median(s["b"] - s["a"], axis=1))
    assert diff.significant and diff.contains(0.1)
    assert diff.high - diff.low < 0.05 * (separate_a.high - separate_a.low)


def test_compare_counts_only_differences_beyond_both_intervals():
    low, high, overlapping = Estimate(1, 0.9, 1.1), Estimate(2, 1.9, 2.1), Estimate(1.5, 1.05, 1.95)
    assert compare(low, high, "min") == 1 and compare(high, low, "min") == -1
    assert compare(low, high, "max") == -1 and compare(high, low, "max") == 1
    assert compare(low, overlapping, "min") == 0 and compare(overlapping, high, "max") == 0
    assert compare(Estimate.exact(1.0), Estimate.exact(1.0 + 1e-12), "min") == 1  # exact figures: exact comparison
    with pytest.raises(ValueError, match="direction"):
        compare(low, high, "up")


def test_an_estimate_is_significant_only_when_its_interval_excludes_zero():
    assert Estimate(3.0, 1.0, 5.0).significant
    assert Estimate(-3.0, -5.0, -1.0).significant
    assert not Estimate(3.0, -1.0, 5.0).significant
    assert not Estimate.exact(0.0).significant
    with pytest.raises(ValueError, match="low must be <= high"):
        Estimate(1.0, 2.0, 0.5)


def test_blocks_of_consecutive_rounds_keep_slow_drift_in_the_interval():
    # rounds close in time share the machine's state: a slow drift (a neighbour's load for a while)
    # makes them correlated, and resampling single rounds would understate the uncertainty
    rng = np.random.default_rng(5)
    drift = np.repeat(rng.normal(0, 1.0, 20), 25)  # 20 periods of 25 rounds each
    series = 10 + drift + rng.normal(0, 0.2, drift.size)
    single = bootstrap_median(series, block=1)
    blocks = bootstrap_median(series)  # default block: sqrt(500) ~ 22 rounds
    assert blocks.high - blocks.low > 2 * (single.high - single.low)
