"""Estimates with bootstrap intervals, and comparisons that respect them."""

import re

import numpy as np
import pytest

from greenkfp.components.stats import Estimate, bootstrap_median, compare, paired_bootstrap, wilson_interval


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


# --- strict arguments ------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"resamples": 0}, "resamples must be an integer >= 1, got 0"),
    ({"resamples": -5}, "resamples must be an integer >= 1, got -5"),
    ({"resamples": 100.0}, "resamples must be an integer >= 1, got 100.0"),
    ({"resamples": True}, "resamples must be an integer >= 1, got True"),
    ({"block": 0}, "block must be None or an integer between 1 and the number of rounds, got 0 for 5 rounds"),
    ({"block": -1}, "got -1 for 5 rounds"),
    ({"block": 6}, "got 6 for 5 rounds"),
    ({"block": 2.0}, "got 2.0 for 5 rounds"),
    ({"block": True}, "got True for 5 rounds"),
])
def test_bootstrap_arguments_are_strict_and_the_message_names_the_value(kwargs, message):
    data = [1.0, 2.0, 3.0, 4.0, 5.0]
    with pytest.raises(ValueError, match=re.escape(message)):
        bootstrap_median(data, **kwargs)
    with pytest.raises(ValueError, match=re.escape(message)):
        paired_bootstrap({"a": data}, lambda s: np.median(s["a"], axis=1), **kwargs)
    # even where nothing is resampled (one value), a bad argument is refused
    if "resamples" in kwargs:
        with pytest.raises(ValueError, match=re.escape(message.split(", got")[0])):
            bootstrap_median([2.0], **kwargs)


def test_block_may_be_one_to_n_and_each_paired_series_is_checked():
    data = np.arange(5.0)
    assert bootstrap_median(data, block=5, resamples=50).contains(2.0)
    assert bootstrap_median(data, block=1, resamples=50).contains(2.0)
    assert bootstrap_median([3.0], block=1) == Estimate.exact(3.0)
    with pytest.raises(ValueError, match=re.escape("got 4 for 3 rounds (samples['b'])")):
        paired_bootstrap({"a": np.arange(5.0), "b": np.arange(3.0)}, lambda s: np.median(s["a"], axis=1), block=4)


def test_non_finite_samples_and_statistics_are_named():
    with pytest.raises(ValueError, match=re.escape("values must hold finite numbers only, got nan at index 2")):
        bootstrap_median([1.0, 2.0, float("nan")])
    with pytest.raises(ValueError, match=re.escape("samples['b'] must hold finite numbers only, got inf at index 0")):
        paired_bootstrap({"a": [1.0, 2.0], "b": [float("inf"), 1.0]}, lambda s: s["a"][:, 0])
    with pytest.raises(ValueError, match="non-empty 1-D sequence of numbers"):
        bootstrap_median(["x", "y"])
    # a statistic that turns finite data into NaN or inf (a median of zero as a divisor) is named
    with np.errstate(divide="ignore", invalid="ignore"):
        with pytest.raises(ValueError, match="statistic must return finite numbers, got inf on the data"):
            paired_bootstrap({"a": [0.0, 0.0, 1.0]}, lambda s: 1.0 / np.median(s["a"], axis=1))
        with pytest.raises(ValueError, match="statistic must return finite numbers, got .* on the resamples"):
            paired_bootstrap({"a": [0.0, 1.0, 2.0]}, lambda s: 1.0 / np.min(s["a"], axis=1) if s["a"].shape[0] > 1
                             else np.ones(1))
    with pytest.raises(ValueError, match=re.escape("statistic must return one number per row (20), got 1")):
        paired_bootstrap({"a": [0.0, 1.0, 2.0]}, lambda s: np.ones(1), resamples=20)


# --- Wilson score interval -------------------------------------------------------------------
def test_wilson_interval_matches_the_formula_and_stays_inside_zero_and_one():
    half = wilson_interval(5, 10)
    assert (half.estimate, half.low, half.high) == pytest.approx((0.5, 0.236593, 0.763407), abs=1e-6)
    assert wilson_interval(0, 10).low == 0.0 and wilson_interval(0, 10).high == pytest.approx(0.277533, abs=1e-6)
    assert wilson_interval(10, 10).high == 1.0 and wilson_interval(10, 10).low == pytest.approx(0.722467, abs=1e-6)
    # two test rows out of 1,000 are well within the noise
    assert compare(wilson_interval(950, 1000), wilson_interval(948, 1000), "max") == 0
    assert compare(wilson_interval(950, 1000), wilson_interval(900, 1000), "max") == 1
    for k in (0, 1, 37, 99, 100):
        w = wilson_interval(k, 100)
        assert 0.0 <= w.low <= w.estimate <= w.high <= 1.0


def test_wilson_interval_covers_the_true_share_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    for p, n in ((0.9, 200), (0.97, 100), (0.5, 30)):
        hits = sum(wilson_interval(int(k), n).contains(p) for k in rng.binomial(n, p, size=2000))
        assert 0.92 <= hits / 2000 <= 0.98, (p, n, hits / 2000)


@pytest.mark.parametrize(("args", "message"), [
    ((5, 0), "n must be an integer >= 1, got 0"),
    ((5, -10), "n must be an integer >= 1, got -10"),
    ((5, 10.0), "n must be an integer >= 1, got 10.0"),
    ((1, True), "n must be an integer >= 1, got True"),
    ((11, 10), "successes must be an integer between 0 and n (10), got 11"),
    ((-1, 10), "successes must be an integer between 0 and n (10), got -1"),
    ((2.5, 10), "successes must be an integer between 0 and n (10), got 2.5"),
    ((5, 10, 1.0), "confidence must be a number strictly between 0 and 1, got 1.0"),
])
def test_wilson_interval_is_strict_about_its_arguments(args, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        wilson_interval(*args)


# --- hostile inputs --------------------------------------------------------------------------
def test_estimate_from_dict_names_missing_keys_and_refuses_non_mappings():
    with pytest.raises(ValueError, match=re.escape("data is missing key(s) 'low', 'high'")):
        Estimate.from_dict({"estimate": 1})
    with pytest.raises(ValueError, match=re.escape("data must be a mapping with keys 'estimate', 'low' and 'high', "
                                                   "got list")):
        Estimate.from_dict([1, 0, 2])
    assert Estimate.from_dict({"estimate": 1, "low": 0, "high": 2}) == Estimate(1.0, 0.0, 2.0)


def test_estimate_accepts_numpy_real_scalars_but_not_bools_or_huge_ints():
    e = Estimate(np.int64(1), np.float32(0.5), np.uint8(2))
    assert e == Estimate(1.0, 0.5, 2.0) and all(type(v) is float for v in (e.estimate, e.low, e.high))
    for bad in (np.bool_(True), True, "1", None):
        with pytest.raises(ValueError, match="estimate must be a finite number, got"):
            Estimate(bad, 0, 2)
    with pytest.raises(ValueError, match="high must be a finite number, got an integer of about 401 digits"):
        Estimate(1, 0, 10 ** 400)


@pytest.mark.parametrize("seed", [-1, "x", 1.5, True, None])
def test_the_seed_is_checked_and_named(seed):
    message = f"seed must be an integer >= 0, got {seed!r}"
    with pytest.raises(ValueError, match=re.escape(message)):
        bootstrap_median([1.0, 2.0, 3.0], seed=seed)
    with pytest.raises(ValueError, match=re.escape(message)):
        paired_bootstrap({"a": [1.0, 2.0, 3.0]}, lambda s: np.median(s["a"], axis=1), seed=seed)
    assert bootstrap_median([1.0, 2.0, 3.0], seed=np.int64(3)) == bootstrap_median([1.0, 2.0, 3.0], seed=3)


@pytest.mark.parametrize(("values", "shown"), [
    (["1", "2"], "'1' (str) at index 0"),
    ([True, False], "True (bool) at index 0"),
    ([1.0, True], "True (bool) at index 1"),
    (np.array([True, False]), "an array of bool"),
    ([1.0, 10 ** 400], "at index 1"),
])
def test_non_numeric_samples_are_refused_naming_the_argument(values, shown):
    with pytest.raises(ValueError, match=r"^values must be a non-empty 1-D sequence of numbers, got .*" + re.escape(shown)):
        bootstrap_median(values)
    with pytest.raises(ValueError, match=re.escape("samples['a'] must be a non-empty 1-D sequence of numbers")):
        paired_bootstrap({"a": values}, lambda s: np.median(s["a"], axis=1))
    # numbers of any numpy or Python real type are fine
    assert bootstrap_median([np.int64(1), 2, np.float32(3.0)]).estimate == 2.0


@pytest.mark.parametrize(("statistic", "shown"), [
    (lambda s: s["missing"], "KeyError: 'missing'"),
    (lambda s: 1 / 0, "ZeroDivisionError: division by zero"),
    (lambda s: (_ for _ in ()).throw(RuntimeError("boom\nsecond line")), "RuntimeError: boom second line"),
])
def test_a_statistic_that_raises_is_wrapped_with_its_cause(statistic, shown):
    with pytest.raises(ValueError, match=re.escape(f"statistic failed on the data: {shown}")) as info:
        paired_bootstrap({"a": [1.0, 2.0, 3.0]}, statistic)
    assert "\n" not in str(info.value) and info.value.__cause__ is not None


def test_a_statistic_that_fails_only_on_the_resamples_is_named_so():
    def statistic(s):
        if s["a"].shape[0] > 1:
            raise KeyError("late")
        return np.ones(1)
    with pytest.raises(ValueError, match=re.escape("statistic failed on the resamples: KeyError: 'late'")):
        paired_bootstrap({"a": [1.0, 2.0, 3.0]}, statistic, resamples=10)


def test_wilson_interval_refuses_integers_too_large_for_a_float():
    with pytest.raises(ValueError, match=r"^n must be an integer >= 1 that a float can hold, got an integer of about "
                                         r"401 digits$"):
        wilson_interval(10 ** 400, 10 ** 400)
    with pytest.raises(ValueError, match=r"^successes must be an integer between 0 and n \(10\), got an integer"):
        wilson_interval(10 ** 400, 10)
    assert wilson_interval(np.int64(5), np.int64(10)) == wilson_interval(5, 10)


def test_widened_requires_an_estimate_and_never_widens_the_far_side_of_an_estimate_outside_it():
    from greenkfp.components.stats import widened

    with pytest.raises(ValueError, match=re.escape("estimate must be an Estimate, got tuple: (1, 0, 2)")):
        widened((1, 0, 2), 0.1)
    # the estimate lies above its interval: the high side has no half-width, the low side keeps its own
    assert widened(Estimate(5, 0, 1), 0) == Estimate(5.0, 0.0, 5.0)
    wide = widened(Estimate(5, 0, 1), 0.1)
    extra = 1.959963984540054 * 0.1 * 5
    assert wide.high == pytest.approx(5 + extra) and wide.low == pytest.approx(5 - np.hypot(5, extra))
    below = widened(Estimate(-1, 0, 3), 0)
    assert below == Estimate(-1.0, -1.0, 3.0)
    # an ordinary interval: quadrature on each side, as before
    assert widened(Estimate(10, 9, 12), 0) == Estimate(10.0, 9.0, 12.0)
