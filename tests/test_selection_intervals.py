"""Selection that respects noise: dominance beyond 95 % intervals, ties and their tie-break,
every rule on that basis, the energy guard and the significance against the baseline."""

import json
import re

import pytest
from test_records import sci_dict, variant_dict

from greenkfp.components.records import SciReport, SelectionRecord, VariantList
from greenkfp.components.sci.graph import BASIS, operations
from greenkfp.components.selection import (
    TIE_BREAK,
    Candidate,
    Objective,
    SelectionError,
    interval,
    interval_dominates,
    interval_front,
    select_model,
)
from greenkfp.components.selection.collect import accuracy_interval, candidates_from_evaluations
from greenkfp.components.selection.intervals import tie_key
from greenkfp.components.stats import Estimate, wilson_interval

OBJ = (Objective("accuracy", "max"), Objective("sci", "min"))


def m(accuracy, sci, low=None, high=None, **extra):
    figures = {"accuracy": accuracy, "sci": sci, **extra}
    if low is not None:
        figures.update(sci_low=low, sci_high=high)
    return figures


def test_dominance_holds_only_beyond_the_intervals():
    a, b = m(0.9, 1.0, 0.9, 1.1), m(0.9, 1.5, 1.4, 1.6)
    assert interval_dominates(a, b, OBJ) and not interval_dominates(b, a, OBJ)
    # overlapping SCI intervals: a tie on SCI, equal accuracy: nobody dominates
    c = m(0.9, 1.2, 1.05, 1.35)
    assert not interval_dominates(a, c, OBJ) and not interval_dominates(c, a, OBJ)
    # better beyond the noise on one objective but worse on another: no dominance either
    d = m(0.95, 1.5, 1.4, 1.6)
    assert not interval_dominates(a, d, OBJ) and not interval_dominates(d, a, OBJ)
    # exact figures (no interval): exact Pareto dominance
    assert interval_dominates(m(0.9, 1.0), m(0.9, 1.0000001), OBJ)
    front, beaten = interval_front([a, b, c, d], OBJ)
    assert front == [0, 2, 3] and beaten == {1: [0, 2, 3]}  # c beats b beyond the noise, d on accuracy


def test_ties_go_to_fewer_macs_then_smaller_model_then_higher_accuracy_then_name():
    keys = {
        "fewer-macs": tie_key("fewer-macs", {"macs": 10, "weight_bytes": 900, "accuracy": 0.80}),
        "more-macs": tie_key("more-macs", {"macs": 20, "weight_bytes": 10, "accuracy": 0.99}),
        "smaller": tie_key("smaller", {"macs": 20, "weight_bytes": 5, "accuracy": 0.70}),
        "accurate": tie_key("accurate", {"macs": 20, "weight_bytes": 5, "accuracy": 0.75}),
        "b-name": tie_key("b-name", {"macs": 20, "weight_bytes": 5, "accuracy": 0.75}),
    }
    assert sorted(keys, key=keys.get) == ["fewer-macs", "accurate", "b-name", "smaller", "more-macs"]


def test_a_noisy_difference_does_not_decide_the_tie_break_does():
    # same accuracy; SCI point estimates differ but the intervals overlap: tied, so the one
    # with fewer MACs wins whatever the noise made the point estimates say
    noisy_winner = Candidate("m/fp32", None, m(0.95, 1.00, 0.90, 1.10, macs=4000, weight_bytes=16000),
                             metadata={"variant": "fp32"})
    lean = Candidate("m/int8", None, m(0.95, 1.02, 0.92, 1.12, macs=4000, weight_bytes=4000),
                     metadata={"variant": "int8"})
    for rule, weights in (("knee", None), ("chebyshev", None), ("weighted_sum", None),
                          ("epsilon_constraint", None), ("weighted_sum", {"sci": 1})):
        decision = select_model([noisy_winner, lean], OBJ, rule=rule, weights=weights)
        assert decision.front == ("m/fp32", "m/int8"), rule
        assert decision.chosen.name == "m/int8", rule
    # without intervals the same points are exact: fp32 dominates
    exact = [Candidate("m/fp32", None, m(0.95, 1.00), metadata={"variant": "fp32"}),
             Candidate("m/int8", None, m(0.95, 1.02), metadata={"variant": "int8"})]
    assert select_model(exact, OBJ).chosen.name == "m/fp32"


def test_the_record_says_per_objective_whether_the_choice_beats_the_baseline():
    baseline = Candidate("m/fp32", None, m(0.95, 2.0, 1.9, 2.1, energy_per_inference_kwh=2e-9,
                                           energy_per_inference_kwh_low=1.9e-9, energy_per_inference_kwh_high=2.1e-9),
                         metadata={"variant": "fp32"})
    quantized = Candidate("m/int8", None, m(0.95, 1.0, 0.9, 1.1, energy_per_inference_kwh=1e-9,
                                            energy_per_inference_kwh_low=0.9e-9, energy_per_inference_kwh_high=1.1e-9),
                          metadata={"variant": "int8_dynamic"})
    record = select_model([baseline, quantized], OBJ).to_record()
    assert record.chosen == "m/int8" and record.baseline == "m/fp32"
    assert record.significance["sci"]["verdict"] == "better" and record.significance["sci"]["significantly_better"]
    assert record.significance["accuracy"]["verdict"] == "no significant difference"
    assert record.significance["energy_per_inference_kwh"]["verdict"] == "better"
    assert record.significance["sci"]["chosen"] == {"estimate": 1.0, "low": 0.9, "high": 1.1}


def test_never_significantly_worse_than_the_baseline_on_energy_unless_the_weights_ask():
    # a faster but dirtier variant: the latency-heavy rule would pick it
    objectives = (Objective("accuracy", "max"), Objective("latency_p95_ms", "min"), Objective("sci", "min"))
    baseline = Candidate("m/fp32", None, {"accuracy": 0.95, "latency_p95_ms": 10.0, "sci": 1.0,
                                          "sci_low": 0.95, "sci_high": 1.05}, metadata={"variant": "fp32"})
    dirty = Candidate("m/fast", None, {"accuracy": 0.95, "latency_p95_ms": 2.0, "sci": 3.0,
                                       "sci_low": 2.9, "sci_high": 3.1}, metadata={"variant": "fast"})
    guarded = select_model([baseline, dirty], objectives, rule="weighted_sum",
                           weights={"latency_p95_ms": 0.9, "sci": 0.1})
    assert guarded.chosen.name == "m/fp32"
    assert "significantly worse than the baseline" in guarded.reason
    assert guarded.to_record().energy_guard
    # weights that put nothing on SCI ask for it
    asked = select_model([baseline, dirty], objectives, rule="weighted_sum", weights={"latency_p95_ms": 1.0})
    assert asked.chosen.name == "m/fast" and asked.to_record().energy_guard is None


def test_exact_candidates_keep_the_exact_rules():
    # zero-width intervals: the interval layer is the exact Pareto rule (the old tests' data)
    cands = [Candidate("a", None, {"accuracy": 0.9, "sci": 2.0}), Candidate("b", None, {"accuracy": 0.8, "sci": 1.0}),
             Candidate("c", None, {"accuracy": 0.8, "sci": 1.5})]
    decision = select_model(cands, OBJ)
    assert decision.front == ("a", "b")
    assert decision.assessment("c").dominated_by == ("b",)
    with pytest.raises(KeyError):
        decision.assessment("zzz")


# --- malformed intervals are errors ------------------------------------------------------------
@pytest.mark.parametrize(("figures", "message"), [
    ({"sci_low": 0.9}, "sci_high is missing (sci=1.0, sci_low=0.9, sci_high=None)"),
    ({"sci_high": 1.1}, "sci_low is missing (sci=1.0, sci_low=None, sci_high=1.1)"),
    ({"sci_low": float("nan"), "sci_high": 1.1}, "the ends must be finite (sci=1.0, sci_low=nan, sci_high=1.1)"),
    ({"sci_low": 0.9, "sci_high": float("inf")}, "the ends must be finite"),
    ({"sci_low": 1.2, "sci_high": 0.8}, "sci_low > sci_high (sci=1.0, sci_low=1.2, sci_high=0.8)"),
    ({"sci_low": 1.05, "sci_high": 1.2}, "it does not hold the figure (sci=1.0, sci_low=1.05, sci_high=1.2)"),
    ({"sci_low": 0.8, "sci_high": 0.95}, "it does not hold the figure (sci=1.0, sci_low=0.8, sci_high=0.95)"),
])
def test_a_malformed_interval_is_an_error_naming_the_candidate_the_metric_and_the_values(figures, message):
    bad = Candidate("m/int8", None, {"accuracy": 0.9, "sci": 1.0, **figures})
    good = Candidate("m/fp32", None, m(0.9, 1.5))
    with pytest.raises(SelectionError, match=re.escape(f"candidate 'm/int8': sci has a malformed interval: {message}")):
        select_model([good, bad], OBJ)
    with pytest.raises(ValueError):  # a ValueError: the CLI prints it as one line
        interval(bad.metrics, "sci")


def test_an_interval_within_round_off_of_its_figure_is_accepted_and_none_is_exact():
    assert interval({"sci": 1.0, "sci_low": 1.0 + 1e-13, "sci_high": 1.2}, "sci") == Estimate(1.0, 1.0, 1.2)
    assert interval({"sci": 1e-9, "sci_low": 0.5e-9, "sci_high": 1e-9 * (1 - 1e-12)}, "sci").high == 1e-9
    assert interval({"sci": 1.0}, "sci") == Estimate.exact(1.0)
    assert interval({"sci": 1.0, "sci_low": None, "sci_high": None}, "sci") == Estimate.exact(1.0)


# --- accuracy has a Wilson interval from the test rows ----------------------------------------
def _evaluation(candidate, accuracies, test_rows, **figures):
    """(SciReport, variants dir, VariantList) of one candidate; ``figures`` per variant name."""
    entries, variants = [], []
    for variant, accuracy in accuracies.items():
        entry = {**sci_dict(variant), "candidate": candidate, "accuracy": accuracy, **figures.get(variant, {})}
        entries.append(entry)
        variants.append({**variant_dict(variant), "accuracy": accuracy, "test_rows": test_rows})
    return SciReport.from_list(entries), "/variants", VariantList.from_list(variants)


def test_accuracy_carries_its_wilson_interval_from_the_test_rows():
    # 475 and 474 correct out of 500: a difference of one row
    (fp32, int8) = candidates_from_evaluations([_evaluation("m", {"fp32": 0.95, "int8_dynamic": 0.948}, 500)])
    expected = wilson_interval(475, 500)
    assert (fp32.metrics["accuracy_low"], fp32.metrics["accuracy_high"]) == (expected.low, expected.high)
    assert interval(int8.metrics, "accuracy", int8.name) == Estimate(0.948, *[
        getattr(wilson_interval(474, 500), k) for k in ("low", "high")])
    assert accuracy_interval(0.95, None) is None and accuracy_interval(None, 500) is None
    with pytest.raises(ValueError, match=re.escape("accuracy 0.3333 is not a share of correct rows out of test_rows 10")):
        accuracy_interval(0.3333, 10)


def test_a_difference_of_two_test_rows_is_not_significant():
    # fp32 475/500 correct, int8 473/500; same SCI within the noise; int8 is smaller
    sci = {"fp32": {"sci": 0.002, "sci_interval": {"estimate": 0.002, "low": 0.0019, "high": 0.0021}, "weight_bytes": 4000},
           "int8_dynamic": {"sci": 0.00201, "sci_interval": {"estimate": 0.00201, "low": 0.0019, "high": 0.0022},
                            "weight_bytes": 1000}}
    candidates = candidates_from_evaluations([_evaluation("m", {"fp32": 0.95, "int8_dynamic": 0.946}, 500, **sci)])
    decision = select_model(candidates, OBJ)
    assert decision.front == ("m/fp32", "m/int8_dynamic")  # exact accuracy made fp32 dominate int8
    assert decision.chosen.name == "m/int8_dynamic"
    assert decision.significance()["accuracy"]["verdict"] == "no significant difference"
    # far more rows: the same two-point gap is now beyond the noise
    many = candidates_from_evaluations([_evaluation("m", {"fp32": 0.95, "int8_dynamic": 0.946}, 100_000, **sci)])
    assert select_model(many, OBJ).chosen.name == "m/fp32"


# --- the tie-break counts a tree's comparisons ---------------------------------------------------
def test_the_tie_key_counts_operations_across_model_families():
    assert operations(0, 900) == 900 and operations(31, None) == 31 and operations(None, None) is None
    tree = {"macs": 0, "tree_comparisons": 900, "weight_bytes": 100, "accuracy": 0.95}
    linear = {"macs": 31, "tree_comparisons": 0, "weight_bytes": 1000, "accuracy": 0.95}
    assert tie_key("linear", linear) < tie_key("tree", tree)
    assert tie_key("unknown", {"weight_bytes": 1}) > tie_key("tree", tree)  # nothing known sorts last
    assert "macs + tree_comparisons" in TIE_BREAK and "operations" in BASIS and "macs + tree_comparisons" in BASIS


def test_a_tree_ensemble_does_not_win_every_tie_and_the_reason_states_the_rule_applied():
    forest = Candidate("forest/fp32", None, m(0.95, 1.00, 0.90, 1.10, macs=0, tree_comparisons=900, weight_bytes=100),
                       metadata={"variant": "fp32"})
    linear = Candidate("logreg/fp32", None, m(0.95, 1.02, 0.92, 1.12, macs=31, tree_comparisons=0, weight_bytes=1000),
                       metadata={"variant": "fp32"})
    decision = select_model([forest, linear], OBJ)
    assert decision.chosen.name == "logreg/fp32"
    reason = decision.reason
    # the rule picked the forest on the point estimates; the tie-break chose the linear model
    assert reason.startswith("knee: 'forest/fp32' is the knee")
    assert "'logreg/fp32' is the knee" not in reason
    assert ("'logreg/fp32' is tied with 'forest/fp32' (95 % intervals overlap on accuracy, sci) and wins the "
            "tie-break on fewer operations per inference (macs + tree_comparisons): 31 against 900 for "
            "'forest/fp32', so 'logreg/fp32' is chosen") in reason
    assert "operations per inference (macs + tree_comparisons" in decision.to_record().tie_break
    assert "MAC count" not in decision.to_record().tie_break
    # the pick keeps the tie: the reason says who was tied and what decided
    kept = select_model([forest, Candidate("logreg/fp32", None, m(0.95, 1.02, 0.92, 1.12, macs=5000))], OBJ)
    assert kept.chosen.name == "forest/fp32"
    assert ("'logreg/fp32' tied with 'forest/fp32' (95 % intervals overlap on accuracy, sci), and 'forest/fp32' "
            "wins the tie-break on fewer operations per inference (macs + tree_comparisons): 900 against 5,000 for "
            "'logreg/fp32'") in kept.reason
    # nobody tied: no tie text
    assert "tie-break" not in select_model([forest], OBJ).reason


def test_the_collected_candidates_carry_tree_comparisons():
    figures = {"fp32": {"macs": 0, "tree_comparisons": 640, "weight_bytes": 2000}}
    (candidate,) = candidates_from_evaluations([_evaluation("forest", {"fp32": 0.9}, 100, **figures)])
    assert candidate.metrics["tree_comparisons"] == 640 and candidate.metrics["macs"] == 0
    assert tie_key(candidate.name, candidate.metrics)[0] == 640


# --- every rule works on the interval basis ------------------------------------------------------
@pytest.mark.parametrize("rule", ["knee", "chebyshev", "weighted_sum", "epsilon_constraint"])
def test_every_rule_breaks_ties_within_the_intervals_by_the_tie_key(rule):
    # on the point estimates every rule picks "heavy" (best on both objectives); "lean" overlaps it
    # on both; "green" is far cleaner and far less accurate (on the front, tied with nobody)
    heavy = Candidate("heavy", None, {"accuracy": 0.95, "accuracy_low": 0.93, "accuracy_high": 0.97,
                                      "sci": 1.0, "sci_low": 0.9, "sci_high": 1.1, "macs": 5000})
    lean = Candidate("lean", None, {"accuracy": 0.94, "accuracy_low": 0.92, "accuracy_high": 0.96,
                                    "sci": 1.05, "sci_low": 0.95, "sci_high": 1.15, "macs": 100})
    green = Candidate("green", None, {"accuracy": 0.80, "accuracy_low": 0.78, "accuracy_high": 0.82,
                                      "sci": 0.5, "sci_low": 0.45, "sci_high": 0.55, "macs": 100})
    decision = select_model([heavy, lean, green], OBJ, rule=rule)
    assert decision.front == ("heavy", "lean", "green")
    scores = {a.name: a.score for a in decision.assessments}
    best = min(scores, key=scores.get) if rule in ("knee", "chebyshev") else max(scores, key=scores.get)
    assert best == "heavy", scores  # the rule's own pick
    assert decision.chosen.name == "lean"  # tied within the noise, fewer operations
    assert f"{rule}: 'heavy'" in decision.reason and "'lean' is tied with 'heavy'" in decision.reason
    # exact figures: the same points, no ties, the rule's pick stands
    exact = [Candidate(c.name, None, {k: v for k, v in c.metrics.items() if not k.endswith(("_low", "_high"))})
             for c in (heavy, lean, green)]
    exact_decision = select_model(exact, OBJ, rule=rule)
    assert exact_decision.chosen.name == "heavy" and "tie-break" not in exact_decision.reason


# --- constraints: point estimates, marked when within the noise --------------------------------
def test_constraint_decisions_within_the_noise_are_marked():
    objectives = (Objective("accuracy", "max"), Objective("sci", "min"))
    cands = [
        Candidate("meets-noisy", None, m(0.90, 0.98, 0.90, 1.05, macs=10)),   # meets max_sci 1, interval crosses it
        Candidate("breaks-noisy", None, m(0.91, 1.02, 0.95, 1.10, macs=10)),  # breaks it, interval reaches inside
        Candidate("breaks-clearly", None, m(0.99, 2.0, 1.9, 2.1)),           # breaks it beyond the noise
        Candidate("meets-exactly", None, m(0.70, 0.5)),                      # exact figure, well within
    ]
    decision = select_model(cands, objectives, constraints={"max_sci": 1.0})
    checks = {a.name: a.constraint_checks for a in decision.assessments}
    assert [(c["constraint"], c["met"], c["within_noise"]) for c in checks["meets-noisy"]] == [("max_sci", True, True)]
    assert [(c["met"], c["within_noise"]) for c in checks["breaks-noisy"]] == [(False, True)]
    assert [(c["met"], c["within_noise"]) for c in checks["breaks-clearly"]] == [(False, False)]
    assert [(c["met"], c["within_noise"]) for c in checks["meets-exactly"]] == [(True, False)]
    assert checks["meets-noisy"][0]["low"] == 0.90 and checks["meets-noisy"][0]["high"] == 1.05
    noisy = decision.assessment("breaks-noisy")
    assert noisy.status == "violates_constraints" and noisy.violations[0]["within_noise"] is True
    assert noisy.reasons == ("sci 1.02 > max_sci 1 (within the noise: the 95 % interval [0.95, 1.1] reaches the limit)",)
    assert decision.chosen.name == "meets-noisy"
    assert "constraints are judged on point estimates" in decision.reason
    assert "'meets-noisy' meets max_sci 1 on the point estimate but its interval crosses it" in decision.reason
    assert "'breaks-noisy' breaks max_sci 1 on the point estimate but its interval reaches inside" in decision.reason
    assert "breaks-clearly" not in decision.reason.split("within the noise:")[1]
    record = decision.to_record()
    assert SelectionRecord.from_json(record.to_json()) == record
    by_name = {c.name: c for c in record.candidates}
    assert by_name["breaks-noisy"].constraint_checks[0]["within_noise"] is True
    assert json.loads(record.to_json())["candidates"][0]["constraint_checks"][0]["met"] is True
    # no constraint: no checks in the record, the JSON shape as before
    plain = select_model(cands, objectives).to_record()
    assert all("constraint_checks" not in c for c in json.loads(plain.to_json())["candidates"])
    assert "point estimates" not in plain.reason


def test_accuracy_limits_within_the_noise_use_the_accuracy_interval():
    top = Candidate("top", None, {**m(0.95, 1.0), "accuracy_low": 0.93, "accuracy_high": 0.97})
    close = Candidate("close", None, {**m(0.935, 0.5), "accuracy_low": 0.915, "accuracy_high": 0.955})
    decision = select_model([top, close], OBJ, constraints={"max_accuracy_drop_points": 1.0, "min_accuracy": 0.94},
                            on_none="block")
    checks = {c["constraint"]: c for c in decision.assessment("close").constraint_checks}
    # drop 1.5 points (interval -0.5 .. 3.5 against top's 0.95): broken within the noise
    assert checks["max_accuracy_drop_points"]["met"] is False and checks["max_accuracy_drop_points"]["within_noise"]
    assert checks["max_accuracy_drop_points"]["low"] == pytest.approx(-0.5)
    assert checks["min_accuracy"]["met"] is False and checks["min_accuracy"]["within_noise"]
    top_checks = {c["constraint"]: c for c in decision.assessment("top").constraint_checks}
    assert top_checks["min_accuracy"]["met"] and top_checks["min_accuracy"]["within_noise"]  # 0.93 < 0.94
    assert decision.chosen.name == "top"
    # nothing left: the blocked message says the limits were judged on point estimates
    blocked = select_model([close], OBJ, constraints={"min_accuracy": 0.94}, on_none="block")
    assert "judged on point estimates" in blocked.reason and "within the noise" in blocked.reason


# --- hostile inputs --------------------------------------------------------------------------
OBJ3 = (Objective("accuracy", "max"), Objective("latency_p95_ms", "min"), Objective("sci", "min"))


def _three():
    return [Candidate("m/fp32", None, {"accuracy": 0.95, "latency_p95_ms": 10.0, "sci": 1.0},
                      metadata={"variant": "fp32"}),
            Candidate("m/fp16", None, {"accuracy": 0.94, "latency_p95_ms": 6.0, "sci": 1.5}),
            Candidate("m/int8", None, {"accuracy": 0.90, "latency_p95_ms": 4.0, "sci": 0.8})]


@pytest.mark.parametrize("rule", ["weighted_sum", "chebyshev"])
def test_weights_near_the_float_maximum_select_as_their_ratios_do(rule):
    huge = select_model(_three(), OBJ3, rule=rule, weights={"sci": 1e308, "latency_p95_ms": 1e308})
    plain = select_model(_three(), OBJ3, rule=rule, weights={"sci": 1, "latency_p95_ms": 1})
    assert huge.weights == plain.weights == {"accuracy": 0.0, "latency_p95_ms": 0.5, "sci": 0.5}
    assert huge.chosen.name == plain.chosen.name and huge.reason == plain.reason
    assert huge.energy_guard == plain.energy_guard
    assert "overlap on )" not in huge.reason
    # a weight too small to register beside a huge one is zero, never NaN
    tiny = select_model(_three(), OBJ3, rule=rule, weights={"sci": 1e308, "latency_p95_ms": 5e-324})
    assert tiny.weights == {"accuracy": 0.0, "latency_p95_ms": 0.0, "sci": 1.0}


def test_the_tie_text_reads_well_without_scored_objectives():
    from greenkfp.components.selection.select import _tie_facts, _tie_text

    front = [Candidate("a", None, {"accuracy": 0.9, "sci": 1.0}), Candidate("b", None, {"accuracy": 0.8, "sci": 1.0})]
    text = _tie_text(_tie_facts(front, 0, 0, [0, 1], []))
    assert "overlap on )" not in text and "on every scored objective" in text


def test_a_metric_given_as_a_string_is_named_with_its_value_and_type():
    record = {"name": "a", "accuracy": 0.9, "latency_p95_ms": 1.0, "sci": 1.0, "sci_low": "0.5", "sci_high": 1.5}
    with pytest.raises(SelectionError, match=re.escape("candidate 'a': sci_low must be a number or None; got '0.5' "
                                                       "(str)")):
        select_model([record])
    with pytest.raises(SelectionError, match=re.escape("candidate 'a': metrics['sci_low'] must be a number or None; "
                                                       "got '0.5' (str)")):
        select_model([{"name": "a", "metrics": {k: v for k, v in record.items() if k != "name"}}])
    # a string objective is named too, not reported as missing
    with pytest.raises(SelectionError, match=re.escape("candidate 'a': sci must be a number or None; got '1' (str)")):
        select_model([{**record, "sci": "1", "sci_low": None, "sci_high": None}])


@pytest.mark.parametrize("candidates", [None, 5, 1.5])
def test_candidates_that_are_not_a_list_are_named(candidates):
    with pytest.raises(SelectionError, match=re.escape(f"candidates must be a list of candidates; got "
                                                       f"{type(candidates).__name__}: {candidates!r}")):
        select_model(candidates)


def test_the_record_says_when_the_baseline_was_excluded_and_the_choice_is_significantly_worse_than_it():
    from greenkfp.components.selection import Constraints

    baseline = Candidate("m/fp32", None, {"accuracy": 0.95, "latency_p95_ms": 12.0, "sci": 1.0, "sci_low": 0.95,
                                          "sci_high": 1.05}, metadata={"variant": "fp32"})
    fp16 = Candidate("m/fp16", None, {"accuracy": 0.95, "latency_p95_ms": 5.0, "sci": 2.0, "sci_low": 1.9,
                                      "sci_high": 2.1}, metadata={"variant": "fp16"})
    decision = select_model([baseline, fp16], OBJ3, Constraints(max_latency_ms=10))
    assert decision.chosen.name == "m/fp16"
    expected = ("the baseline 'm/fp32' was excluded by constraints (latency_p95_ms 12 > max_latency_ms 10); the "
                "chosen 'm/fp16' is significantly worse on sci than it")
    assert expected in decision.reason
    record = decision.to_record()
    assert expected in record.energy_guard and record.significance["sci"]["verdict"] == "worse"
    # not worse beyond the noise: nothing to say
    close = Candidate("m/fp16", None, {**fp16.metrics, "sci": 1.02, "sci_low": 0.97, "sci_high": 1.07})
    quiet = select_model([baseline, close], OBJ3, Constraints(max_latency_ms=10))
    assert quiet.energy_guard is None and "baseline" not in quiet.reason
    # weights that put nothing on SCI asked for it
    asked = select_model([baseline, fp16], OBJ3, Constraints(max_latency_ms=10), rule="weighted_sum",
                         weights={"latency_p95_ms": 1})
    assert asked.energy_guard is None


def test_the_record_says_when_a_dominated_baseline_is_significantly_better_on_energy():
    energy = {"energy_per_inference_kwh": 1e-9, "energy_per_inference_kwh_low": 0.9e-9,
              "energy_per_inference_kwh_high": 1.1e-9}
    baseline = Candidate("m/fp32", None, {"accuracy": 0.95, "latency_p95_ms": 12.0, "sci": 1.0, **energy},
                         metadata={"variant": "fp32"})
    faster = Candidate("m/fp16", None, {"accuracy": 0.95, "latency_p95_ms": 5.0, "sci": 1.0,
                                        **{k: 3 * v for k, v in energy.items()}})
    decision = select_model([baseline, faster], OBJ3)
    assert decision.chosen.name == "m/fp16" and decision.assessment("m/fp32").status == "dominated"
    expected = ("the baseline 'm/fp32' was dominated by 'm/fp16'; the chosen 'm/fp16' is significantly worse on "
                "energy_per_inference_kwh than it")
    assert expected in decision.reason and expected in decision.energy_guard
