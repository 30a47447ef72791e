"""The selection rules at their edges: what each input form means, where each limit holds
(equality, the interval touching the limit, round-off), ties and their tie-break, the energy
guard, and the decision record's exact content.

Written against the mutants `make mutation MODULES=select` left alive (issue 17): each test
states a behaviour a user relies on and fails when that behaviour breaks.
"""

from __future__ import annotations

import json
import math
import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenkfp.components.selection import (
    Candidate,
    Constraints,
    NoEligibleCandidateError,
    Objective,
    SelectionError,
    select_model,
)
from greenkfp.components.selection.select import as_candidates, as_objectives

OBJ = (Objective("accuracy", "max"), Objective("sci", "min"))
OBJ3 = (Objective("accuracy", "max"), Objective("latency_p95_ms", "min"), Objective("sci", "min"))


def raises(message: str, exc=SelectionError):
    return pytest.raises(exc, match=re.escape(message))


# --- objectives ----------------------------------------------------------------------------------
def test_objective_forms_parse_to_the_same_objective():
    expected = Objective("sci", "min")
    assert Objective.parse("sci:min") == Objective.parse(" sci : min ") == expected
    assert Objective.parse({"name": "sci", "direction": "min"}) == expected
    assert Objective.parse(("sci", "min")) == Objective.parse(["sci", "min"]) == expected
    assert Objective.parse(expected) is expected
    # the direction follows the last colon: a metric name may hold colons
    assert Objective.parse("model:accuracy:max") == Objective("model:accuracy", "max")
    assert as_objectives("sci:min") == (expected,)
    assert as_objectives(expected) == (expected,)
    assert as_objectives({"name": "sci", "direction": "min"}) == (expected,)


@pytest.mark.parametrize(("value", "message"), [
    ("sci", "objective must look like 'name:max' or 'name:min'; got 'sci'"),
    ({"name": "sci"}, "objective must have exactly the keys 'name' and 'direction'; got {'name': 'sci'}"),
    ({"direction": "min"}, "objective must have exactly the keys 'name' and 'direction'; got {'direction': 'min'}"),
    ({"name": "sci", "direction": "min", "unit": "g"},
     "objective must have exactly the keys 'name' and 'direction'; got {'name': 'sci', 'direction': 'min', 'unit': 'g'}"),
    (("sci", "min", "g"), "objective must be an Objective, 'name:direction', a mapping or a pair; got ('sci', 'min', 'g')"),
    (5, "objective must be an Objective, 'name:direction', a mapping or a pair; got 5"),
    (":min", "Objective name must be a non-empty string; got ''"),
    ((" ", "min"), "Objective name must be a non-empty string; got ' '"),
    ((5, "min"), "Objective name must be a non-empty string; got 5"),
])
def test_malformed_objectives_are_named(value, message):
    with raises(message):
        Objective.parse(value)


def test_objective_lists_name_every_repeated_name_and_refuse_none():
    with pytest.raises(SelectionError) as info:
        as_objectives([])
    assert str(info.value) == "objectives must name at least one objective; got none"
    with raises("objectives must have distinct names; 'a', 'b' repeated"):
        as_objectives(["b:max", "a:max", "b:min", "a:min"])


# --- constraints ---------------------------------------------------------------------------------
def test_constraint_limits_are_plain_floats_and_the_bounds_are_inclusive():
    limits = Constraints(min_accuracy=1, max_accuracy_drop_points=np.float64(100), max_latency_ms=0, max_sci=1)
    assert limits.to_dict() == {"min_accuracy": 1.0, "max_accuracy_drop_points": 100.0, "max_latency_ms": 0.0,
                                "max_sci": 1.0}
    assert all(type(v) is float for v in limits.to_dict().values())
    assert [type(getattr(limits, k)) for k in limits.to_dict()] == [float] * 4
    assert Constraints(min_accuracy=0.0, max_accuracy_drop_points=0.0).to_dict()["max_accuracy_drop_points"] == 0.0
    assert Constraints(max_accuracy_drop_points=0.5).max_accuracy_drop_points == 0.5
    assert Constraints().to_dict() == dict.fromkeys(["min_accuracy", "max_accuracy_drop_points", "max_latency_ms",
                                                     "max_sci"])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"min_accuracy": 1.01}, "min_accuracy must be between 0 and 1; got 1.01"),
    ({"min_accuracy": -0.01}, "min_accuracy must be between 0 and 1; got -0.01"),
    ({"max_accuracy_drop_points": 100.5}, "max_accuracy_drop_points must be between 0 and 100; got 100.5"),
    ({"max_accuracy_drop_points": -1}, "max_accuracy_drop_points must be between 0 and 100; got -1"),
    ({"max_accuracy_drop_points": "1"}, "max_accuracy_drop_points must be a finite number or None; got '1'"),
    ({"max_latency_ms": -1}, "max_latency_ms must be >= 0; got -1"),
    ({"max_latency_ms": "10"}, "max_latency_ms must be a finite number or None; got '10'"),
    ({"max_latency_ms": math.inf}, "max_latency_ms must be a finite number or None; got inf"),
    ({"max_sci": True}, "max_sci must be a finite number or None; got True"),
    ({"max_sci": -0.5}, "max_sci must be >= 0; got -0.5"),
])
def test_bad_limits_are_named_with_their_bounds(kwargs, message):
    with raises(message):
        Constraints(**kwargs)


def test_constraints_of_the_wrong_type_are_named():
    with raises("constraints must be a Constraints, a mapping or None; got 5"):
        select_model([Candidate("a", None, {"accuracy": 0.9, "sci": 1.0})], OBJ, constraints=5)


# --- candidates ----------------------------------------------------------------------------------
def test_candidate_figures_are_copied_and_converted():
    given = {"accuracy": 1, "sci": np.float32(0.5), "latency_p95_ms": None}
    meta = {"variant": "int8"}
    c = Candidate("a", None, given, eligible=np.bool_(False), metadata=meta)
    assert c.metrics == {"accuracy": 1.0, "sci": 0.5, "latency_p95_ms": None} and c.metrics is not given
    assert type(c.metrics["accuracy"]) is float and type(c.metrics["sci"]) is float
    assert c.eligible is False
    assert c.metadata == meta and c.metadata is not meta and type(c.metadata) is dict
    assert Candidate("b", None, {"x": math.nan}).value("x") is None
    assert Candidate("b", None, {"x": math.inf}).value("x") == math.inf


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"name": ""}, "candidate name must be a non-empty string; got ''"),
    ({"name": "  "}, "candidate name must be a non-empty string; got '  '"),
    ({"name": 5}, "candidate name must be a non-empty string; got 5"),
    ({"name": "a", "model_uri": 5}, "candidate 'a': model_uri must be a string or None; got 5"),
    ({"name": "a", "eligible": "yes"}, "candidate 'a': eligible must be True or False; got 'yes'"),
    ({"name": "a", "metrics": [("sci", 1.0)]}, "candidate 'a': metrics must be a mapping; got list"),
    ({"name": "a", "metrics": {1: 1.0}}, "candidate 'a': metric names must be strings; got 1"),
    ({"name": "a", "metrics": {"sci": True}}, "candidate 'a': metrics['sci'] must be a number or None; got True (bool)"),
])
def test_malformed_candidates_are_named(kwargs, message):
    with raises(message):
        Candidate(**kwargs)


def test_candidate_records_name_uri_and_eligibility_fields():
    c = Candidate.from_record({"variant": "int8", "path": "/m/int8.onnx", "eligible": False,
                               "eligibility_reason": "parity failed", "schema": "greenkfp.variant/v1",
                               "accuracy": 0.9, "notes": "x"})
    assert (c.name, c.model_uri, c.eligible, c.eligibility_reason) == ("int8", "/m/int8.onnx", False, "parity failed")
    assert c.metrics == {"accuracy": 0.9} and c.metadata == {"notes": "x"}
    # the first of model_uri, uri, path that is set; the others are dropped, not metadata
    d = Candidate.from_record({"name": "b", "model_uri": None, "uri": "/m/b.onnx", "path": "/elsewhere"})
    assert d.model_uri == "/m/b.onnx" and d.metadata == {} and d.eligible is True and d.eligibility_reason is None
    e = Candidate.from_record({"name": "c", "model_uri": "/m/c.onnx", "uri": None})
    assert e.model_uri == "/m/c.onnx" and e.metadata == {}
    # a name beside a variant: the variant is metadata
    f = Candidate.from_record({"name": "m/fp32", "variant": "fp32"})
    assert f.name == "m/fp32" and f.metadata == {"variant": "fp32"}
    with raises("candidate name must be a non-empty string; got None"):
        Candidate.from_record({"accuracy": 0.9})
    with raises("a candidate record must be a mapping; got list: ['a']"):
        Candidate.from_record(["a"])


def test_candidate_lists_name_the_problem():
    with raises("candidates must be a list of candidates; got a single Candidate"):
        as_candidates(Candidate("a"))
    with raises("candidates must be a list of candidates; got a single dict"):
        as_candidates({"name": "a"})
    with raises("candidate names must be distinct; 'a', 'b' repeated"):
        as_candidates([Candidate("b"), Candidate("a"), Candidate("b"), Candidate("a")])


# --- weights -------------------------------------------------------------------------------------
def _three():
    return [Candidate("m/fp32", None, {"accuracy": 0.95, "latency_p95_ms": 10.0, "sci": 1.0},
                      metadata={"variant": "fp32"}),
            Candidate("m/fp16", None, {"accuracy": 0.94, "latency_p95_ms": 6.0, "sci": 1.5}),
            Candidate("m/int8", None, {"accuracy": 0.90, "latency_p95_ms": 4.0, "sci": 0.8})]


@pytest.mark.parametrize("rule", ["chebyshev", "weighted_sum"])
def test_weighted_rules_default_to_equal_weights(rule):
    decision = select_model(_three(), OBJ3, rule=rule)
    assert decision.weights == {"accuracy": 1 / 3, "latency_p95_ms": 1 / 3, "sci": 1 / 3}
    assert decision.to_record().weights == decision.weights


@pytest.mark.parametrize(("weights", "message"), [
    ("abc", "weights must be a mapping of objective name to weight, or a list; got 'abc'"),
    (5, "weights must be a mapping of objective name to weight, or a list; got 5"),
    ({"sci": math.nan}, "weights['sci'] must be a finite number >= 0; got nan"),
    ({"sci": True}, "weights['sci'] must be a finite number >= 0; got True"),
    ({"sci": "1"}, "weights['sci'] must be a finite number >= 0; got '1'"),
])
def test_bad_weights_are_named(weights, message):
    with raises(message):
        select_model(_three(), OBJ3, rule="weighted_sum", weights=weights)


# --- constraints: where a limit holds ------------------------------------------------------------
def _checks(decision, name):
    return {c["constraint"]: c for c in decision.assessment(name).constraint_checks}


def noisy(value, low, high, name="sci", **extra):
    return {name: value, f"{name}_low": low, f"{name}_high": high, **extra}


def test_a_figure_equal_to_its_limit_meets_it():
    cands = [Candidate("at", None, {"accuracy": 0.9, "latency_p95_ms": 4.0, "sci": 1.0}),
             Candidate("over", None, {"accuracy": 0.95, "latency_p95_ms": 4.5, "sci": 1.0}),
             Candidate("under", None, {"accuracy": 0.85, "latency_p95_ms": 3.0, "sci": 0.5})]
    decision = select_model(cands, OBJ3, constraints={"min_accuracy": 0.9, "max_latency_ms": 4.0, "max_sci": 1.0})
    assert decision.front == ("at",)
    assert {k: (c["met"], c["within_noise"]) for k, c in _checks(decision, "at").items()} == {
        "min_accuracy": (True, False), "max_latency_ms": (True, False), "max_sci": (True, False)}
    assert decision.assessment("over").reasons == ("latency_p95_ms 4.5 > max_latency_ms 4",)
    assert decision.assessment("under").reasons == ("accuracy 0.85 < min_accuracy 0.9",)


def test_an_interval_touching_the_limit_is_within_the_noise_only_when_the_limit_is_broken():
    cands = [
        # met, the interval ends exactly at the limit: not within the noise
        Candidate("met-touching", None, {"accuracy": 0.95, "accuracy_low": 0.9, "accuracy_high": 0.97,
                                         **noisy(8.0, 7.0, 10.0, "latency_p95_ms"), "sci": 1.0}),
        # broken, the interval reaches back exactly to the limit: within the noise
        Candidate("broken-touching", None, {"accuracy": 0.85, "accuracy_low": 0.8, "accuracy_high": 0.9,
                                            **noisy(12.0, 10.0, 13.0, "latency_p95_ms"), "sci": 0.5}),
        # met on the point estimate, the interval crosses: within the noise
        Candidate("met-crossing", None, {"accuracy": 0.92, "accuracy_low": 0.89, "accuracy_high": 0.95,
                                         **noisy(9.0, 8.0, 10.5, "latency_p95_ms"), "sci": 0.9}),
    ]
    decision = select_model(cands, OBJ3, constraints={"min_accuracy": 0.9, "max_latency_ms": 10.0}, on_none="block")
    summary = {n: {k: (c["met"], c["within_noise"], c["low"], c["high"]) for k, c in _checks(decision, n).items()}
               for n in ("met-touching", "broken-touching", "met-crossing")}
    assert summary == {
        "met-touching": {"min_accuracy": (True, False, 0.9, 0.97), "max_latency_ms": (True, False, 7.0, 10.0)},
        "broken-touching": {"min_accuracy": (False, True, 0.8, 0.9), "max_latency_ms": (False, True, 10.0, 13.0)},
        "met-crossing": {"min_accuracy": (True, True, 0.89, 0.95), "max_latency_ms": (True, True, 8.0, 10.5)},
    }


def test_an_exact_figure_is_never_within_the_noise():
    cands = [Candidate("a", None, {"accuracy": 0.95, "latency_p95_ms": 5.0, "sci": 1.0}),
             Candidate("b", None, {"accuracy": 0.85, "latency_p95_ms": 12.0, "sci": 0.5})]
    decision = select_model(cands, OBJ3, constraints={"min_accuracy": 0.9, "max_latency_ms": 10.0})
    assert [(c["met"], c["within_noise"]) for c in decision.assessment("a").constraint_checks] == [(True, False)] * 2
    assert [(c["met"], c["within_noise"]) for c in decision.assessment("b").constraint_checks] == [(False, False)] * 2
    assert "point estimates" not in decision.reason


def test_the_accuracy_drop_interval_and_its_round_off_tolerance():
    top = Candidate("top", None, {"accuracy": 0.95, "sci": 1.0})
    # drop 3 points, interval [1, 5] against the top's 0.95; 100 * (0.95 - 0.90) = 5.000000000000004
    # is the limit 5 up to round-off: met, and the interval does not cross it
    inside = Candidate("inside", None, {"accuracy": 0.92, "accuracy_low": 0.90, "accuracy_high": 0.94, "sci": 0.5})
    # drop 2 points > 1, interval [1.0000000000000009, 3]: its low end is the limit up to round-off,
    # so the break is within the noise
    outside = Candidate("outside", None, {"accuracy": 0.93, "accuracy_low": 0.92, "accuracy_high": 0.94, "sci": 0.4})
    five = select_model([top, inside], OBJ, constraints={"max_accuracy_drop_points": 5})
    check = _checks(five, "inside")["max_accuracy_drop_points"]
    assert check["metric"] == "accuracy" and check["limit"] == 5.0
    assert (check["met"], check["within_noise"]) == (True, False)
    assert check["value"] == pytest.approx(3.0) and check["low"] == pytest.approx(1.0)
    assert check["high"] == pytest.approx(5.0)
    one = select_model([top, outside], OBJ, constraints={"max_accuracy_drop_points": 1})
    check = _checks(one, "outside")["max_accuracy_drop_points"]
    assert (check["met"], check["within_noise"]) == (False, True)
    assert check["low"] == pytest.approx(1.0) and check["high"] == pytest.approx(3.0)
    assert one.assessment("outside").reasons == (
        "accuracy drop 2 points against the most accurate variant (95 %) > max_accuracy_drop_points 1 (within the "
        "noise: the 95 % interval [1, 3] reaches the limit)",)


def test_a_figure_the_objectives_do_not_carry_is_checked_when_a_limit_names_it():
    # objectives without accuracy or latency: a limit on them still applies; a missing or
    # infinite figure meets no limit
    objectives = [Objective("sci", "min")]
    cands = [Candidate("ok", None, {"accuracy": 0.95, "latency_p95_ms": 5.0, "sci": 2.0}),
             Candidate("no-figures", None, {"sci": 1.0}),
             Candidate("infinite", None, {"accuracy": math.inf, "latency_p95_ms": math.inf, "sci": 0.5})]
    decision = select_model(cands, objectives, primary="sci",
                            constraints={"min_accuracy": 0.9, "max_accuracy_drop_points": 1, "max_latency_ms": 10})
    assert decision.chosen.name == "ok" and decision.to_record().accuracy_reference == {"name": "ok", "accuracy": 0.95}
    for name in ("no-figures", "infinite"):
        a = decision.assessment(name)
        assert a.status == "violates_constraints"
        assert a.reasons == ("accuracy missing < min_accuracy 0.9",
                             "accuracy drop missing points against the most accurate variant (95 %) > "
                             "max_accuracy_drop_points 1",
                             "latency_p95_ms missing > max_latency_ms 10")
        assert [(v["metric"], v["value"], v["low"], v["high"], v["met"], v["within_noise"]) for v in a.violations] == [
            ("accuracy", None, None, None, False, False), ("accuracy", None, None, None, False, False),
            ("latency_p95_ms", None, None, None, False, False)]


def test_a_malformed_interval_on_a_limited_figure_names_the_candidate():
    objectives = [Objective("sci", "min")]
    bad_accuracy = Candidate("a", None, {"accuracy": 0.9, "accuracy_low": 0.8, "sci": 1.0})
    with raises("candidate 'a': accuracy has a malformed interval: accuracy_high is missing"):
        select_model([bad_accuracy], objectives, primary="sci", constraints={"min_accuracy": 0.5})
    bad_latency = Candidate("b", None, {"latency_p95_ms": 3.0, "latency_p95_ms_high": 4.0, "sci": 1.0})
    with raises("candidate 'b': latency_p95_ms has a malformed interval: latency_p95_ms_low is missing"):
        select_model([bad_latency], objectives, primary="sci", constraints={"max_latency_ms": 5})


def test_accuracy_for_the_accuracy_limits_is_a_fraction_including_0_and_1():
    cands = [Candidate("perfect", None, {"accuracy": 1.0, "sci": 2.0}),
             Candidate("zero", None, {"accuracy": 0.0, "sci": 0.1})]
    decision = select_model(cands, OBJ, constraints={"min_accuracy": 0.5})
    assert decision.chosen.name == "perfect" and decision.assessment("zero").status == "violates_constraints"
    with raises("candidate 'pct': accuracy must be a fraction between 0 and 1 for the accuracy constraints; got 1.5"):
        select_model([Candidate("pct", None, {"accuracy": 1.5, "sci": 1.0})], OBJ, constraints={"min_accuracy": 0.5})


# --- the rules: reasons, score directions, the primary, ties of scores -------------------------------
def metrics(accuracy, latency, sci, **extra):
    return {"accuracy": accuracy, "latency_p95_ms": latency, "sci": sci, **extra}


def variants() -> list[Candidate]:
    """test_selection.py's hand-made set: fp16 is dominated by fp32; the front is fp32,
    int8_dynamic, int8_static, tiny."""
    return [
        Candidate("fp32", "gs://models/fp32.onnx", metrics(0.95, 10.0, 4.0, training_emissions_g=30.0)),
        Candidate("int8_dynamic", "gs://models/int8_dynamic.onnx", metrics(0.94, 4.0, 1.5)),
        Candidate("int8_static", "gs://models/int8_static.onnx", metrics(0.90, 3.0, 1.0)),
        Candidate("fp16", "gs://models/fp16.onnx", metrics(0.95, 12.0, 4.5)),
        Candidate("tiny", "gs://models/tiny.onnx", metrics(0.80, 2.0, 0.8)),
    ]


WHERE = "among 4 front members of 5 candidates (1 excluded or dominated)"


@pytest.mark.parametrize(("rule", "weights", "reason", "direction"), [
    ("knee", None, "knee: 'int8_dynamic' is the knee: closest to the ideal point (distance 0.3388 in normalised "
     f"objectives) {WHERE}", "lower is better"),
    ("chebyshev", {"accuracy": 1, "latency_p95_ms": 4.5, "sci": 4.5}, "chebyshev: 'int8_static' has the smallest "
     f"weighted worst shortfall (0.05625; weights accuracy 0.1, latency_p95_ms 0.45, sci 0.45) {WHERE}",
     "lower is better"),
    ("weighted_sum", [0.2, 0.4, 0.4], "weighted_sum: 'int8_static' has the largest weighted sum of normalised "
     f"objectives (0.8583; weights accuracy 0.2, latency_p95_ms 0.4, sci 0.4) {WHERE}", "higher is better"),
    ("epsilon_constraint", None, f"epsilon_constraint: 'fp32' has the best accuracy (0.95) within the constraints "
     f"{WHERE}", "the accuracy value, higher is better"),
])
def test_each_rule_explains_its_pick_and_its_score_direction(rule, weights, reason, direction):
    decision = select_model(variants(), rule=rule, weights=weights)
    assert decision.reason == reason
    record = decision.to_record()
    assert record.score_direction == direction and record.reason == reason
    assert record.rule_definition.startswith({"knee": "front member closest to the ideal point",
                                              "chebyshev": "min max_i w_i (1 - n_i)",
                                              "weighted_sum": "max sum_i w_i n_i",
                                              "epsilon_constraint": "best primary objective"}[rule])


def test_epsilon_constraint_on_a_primary_to_minimise_picks_the_smallest():
    decision = select_model(variants(), rule="epsilon_constraint", primary="latency_p95_ms")
    assert decision.chosen.name == "tiny"
    assert decision.reason == f"epsilon_constraint: 'tiny' has the best latency_p95_ms (2) within the constraints {WHERE}"
    assert decision.to_record().score_direction == "the latency_p95_ms value, lower is better"
    assert decision.assessment("tiny").score == 2.0


def test_equal_scores_go_to_the_better_primary_also_when_it_is_minimised():
    # normalised (1, 0) and (0, 1): equal knee distances; the primary (latency, minimised) decides,
    # not the name
    pair = [Candidate("alpha", None, {"latency_p95_ms": 2.0, "sci": 1.0}),
            Candidate("zeta", None, {"latency_p95_ms": 1.0, "sci": 2.0})]
    objectives = ["latency_p95_ms:min", "sci:min"]
    assert select_model(pair, objectives, primary="latency_p95_ms").chosen.name == "zeta"
    assert select_model(pair, objectives, primary="sci").chosen.name == "alpha"


def test_the_score_tie_tolerance_is_relative_to_the_score():
    # three front members at the corners (knee distance sqrt(2) each); m2's distance is 1.06e-9
    # shorter: within 1e-9 x sqrt(2), a tie, which goes to the most accurate (m1)
    objectives = [Objective("accuracy", "max"), Objective("a", "min"), Objective("b", "min")]
    corners = [Candidate("m1", None, {"accuracy": 0.95, "a": 1.0, "b": 1.0}),
               Candidate("m2", None, {"accuracy": 0.80, "a": 0.0, "b": 1.0 - 1.5e-9}),
               Candidate("m3", None, {"accuracy": 0.80, "a": 1.0, "b": 0.0})]
    decision = select_model(corners, objectives)
    scores = {a.name: a.score for a in decision.assessments}
    assert 1e-9 < scores["m1"] - scores["m2"] < 1e-9 * math.sqrt(2)
    assert decision.chosen.name == "m1"
    # scores below 1 are tied within 1e-9 absolute: 1.5e-9 apart is no tie
    pair = [Candidate("p", None, {"accuracy": 0.80, "sci": 0.0}),
            Candidate("q", None, {"accuracy": 0.95, "sci": 1.5e-9}),
            Candidate("r", None, {"accuracy": 0.99, "sci": 1.0})]
    decision = select_model(pair, OBJ, rule="weighted_sum", weights={"sci": 1})
    assert decision.chosen.name == "p"
    assert decision.assessment("p").score - decision.assessment("q").score == pytest.approx(1.5e-9)
    within = [Candidate("p", None, {"accuracy": 0.80, "sci": 0.0}),
              Candidate("q", None, {"accuracy": 0.95, "sci": 0.5e-9}),
              Candidate("r", None, {"accuracy": 0.99, "sci": 1.0})]
    assert select_model(within, OBJ, rule="weighted_sum", weights={"sci": 1}).chosen.name == "q"


def test_a_score_exactly_the_tolerance_away_is_a_tie():
    # chebyshev with the weight on "a" exactly 1e-9 x 2^29: q's shortfall on a is 2^-29, so its
    # score is exactly 1e-9 above t's 0 (TIE_RTOL x max(1, 0)): a tie, which the primary (c)
    # gives to q; twice as far is no tie
    objectives = [Objective("a", "max"), Objective("b", "max"), Objective("c", "max")]
    share = 1e-9 * 2**29
    for gap, chosen in ((2**-29, "q"), (2**-28, "t")):
        cands = [Candidate("t", None, {"a": 1.0, "b": 1.0, "c": 0.0}),
                 Candidate("q", None, {"a": 1.0 - gap, "b": 1.0, "c": 0.5}),
                 Candidate("w", None, {"a": 0.0, "b": 0.0, "c": 1.0})]
        decision = select_model(cands, objectives, rule="chebyshev", weights={"a": share, "b": 1 - share}, primary="c")
        assert decision.weights["a"] == share
        assert decision.assessment("q").score == gap / 2**-29 * 1e-9
        assert decision.chosen.name == chosen


def test_normalised_values_are_never_negative_zero():
    # the worst member of a minimised objective: (x - worst) / (best - worst) = 0 / negative = -0.0
    decision = select_model(variants())
    normalized = decision.assessment("fp32").normalized
    assert normalized["latency_p95_ms"] == 0.0 and math.copysign(1.0, normalized["latency_p95_ms"]) == 1.0
    assert math.copysign(1.0, normalized["sci"]) == 1.0
    assert '"latency_p95_ms": -0.0' not in json.dumps(decision.to_record().to_dict())


# --- dominance: who is named ------------------------------------------------------------------------
def test_a_dominated_candidate_is_named_with_its_front_dominators_and_keeps_its_checks():
    # d dominates every other; a dominates b and c; b dominates c: each names d alone (the front)
    chain = [Candidate("a", None, {"accuracy": 0.9, "sci": 1.0}), Candidate("b", None, {"accuracy": 0.8, "sci": 2.0}),
             Candidate("c", None, {"accuracy": 0.7, "sci": 3.0}), Candidate("d", None, {"accuracy": 0.95, "sci": 0.5})]
    decision = select_model(chain, OBJ, constraints={"max_sci": 5})
    assert decision.front == ("d",)
    for name in "abc":
        a = decision.assessment(name)
        assert a.dominated_by == ("d",) and a.reasons == ("dominated by d",)
        assert [(c["constraint"], c["met"]) for c in a.constraint_checks] == [("max_sci", True)]
    two = [Candidate("a", None, {"accuracy": 0.9, "sci": 1.0}), Candidate("b", None, {"accuracy": 0.95, "sci": 1.5}),
           Candidate("c", None, {"accuracy": 0.85, "sci": 2.0})]
    decision = select_model(two, OBJ)
    assert decision.assessment("c").dominated_by == ("a", "b")
    assert decision.assessment("c").reasons == ("dominated by a, b",)


def test_a_candidate_dominated_only_off_the_front_names_its_dominators():
    # beyond the intervals dominance is not transitive: a dominates b, b dominates c, but a does
    # not dominate c (c is more accurate beyond the noise); c is still dominated, by b
    a = Candidate("a", None, {**noisy(0.80, 0.79, 0.81, "accuracy"), **noisy(1.0, 0.95, 1.05)})
    b = Candidate("b", None, {**noisy(0.85, 0.78, 0.92, "accuracy"), **noisy(2.0, 1.9, 2.1)})
    c = Candidate("c", None, {**noisy(0.90, 0.89, 0.91, "accuracy"), **noisy(3.0, 2.9, 3.1)})
    decision = select_model([a, b, c], OBJ)
    assert decision.front == ("a",)
    assert decision.assessment("b").dominated_by == ("a",)
    assert decision.assessment("c").dominated_by == ("b",) and decision.assessment("c").reasons == ("dominated by b",)


# --- ties within the noise: on what the rule scores -------------------------------------------------
def test_epsilon_constraint_ties_on_the_primary_alone():
    heavy = Candidate("heavy", None, {**noisy(0.95, 0.93, 0.97, "accuracy"), "latency_p95_ms": 10.0,
                                      **noisy(1.0, 0.9, 1.1), "macs": 5000})
    lean = Candidate("lean", None, {**noisy(0.94, 0.92, 0.96, "accuracy"), "latency_p95_ms": 5.0,
                                    **noisy(3.0, 2.9, 3.1), "macs": 100})
    decision = select_model([heavy, lean], OBJ3, rule="epsilon_constraint")
    assert decision.front == ("heavy", "lean") and decision.chosen.name == "lean"
    assert "(95 % intervals overlap on accuracy)" in decision.reason
    # knee scores every objective: the two differ beyond the noise on latency and SCI, no tie
    assert "tie-break" not in select_model([heavy, lean], OBJ3).reason


@pytest.mark.parametrize("rule", ["weighted_sum", "chebyshev"])
def test_weighted_rules_tie_on_the_weighted_objectives_alone(rule):
    heavy = Candidate("heavy", None, {"accuracy": 0.95, "latency_p95_ms": 10.0, **noisy(1.0, 0.9, 1.1), "macs": 5000})
    lean = Candidate("lean", None, {"accuracy": 0.80, "latency_p95_ms": 5.0, **noisy(1.05, 0.95, 1.15), "macs": 100})
    decision = select_model([heavy, lean], OBJ3, rule=rule, weights={"sci": 1})
    assert decision.front == ("heavy", "lean") and decision.chosen.name == "lean"
    assert "(95 % intervals overlap on sci)" in decision.reason
    assert select_model([heavy, lean], OBJ3, rule=rule, weights={"sci": 1, "accuracy": 1}).chosen.name == "heavy"


# --- the tie-break as the reason states it -----------------------------------------------------------
ACC = noisy(0.95, 0.93, 0.97, "accuracy")
HEAD = "knee: 'a' is the knee: closest to the ideal point (distance 0 in normalised objectives) among {n} front " \
       "members of {n} candidates (0 excluded or dominated)"


def test_the_reason_names_the_tie_break_part_that_decided():
    size = [Candidate("a", None, {**ACC, **noisy(1.0, 0.9, 1.1), "macs": 100, "weight_bytes": 4000}),
            Candidate("b", None, {**ACC, **noisy(1.02, 0.92, 1.12), "macs": 100, "weight_bytes": 1000})]
    assert select_model(size, OBJ).reason == HEAD.format(n=2) + (
        "; 'b' is tied with 'a' (95 % intervals overlap on accuracy, sci) and wins the tie-break on smaller model size "
        "(weight bytes, else size bytes): 1,000 against 4,000 for 'a', so 'b' is chosen")
    accuracy = [Candidate("a", None, {**ACC, **noisy(1.0, 0.9, 1.1), "macs": 100}),
                Candidate("b", None, {**noisy(0.94, 0.92, 0.96, "accuracy"), **noisy(1.02, 0.92, 1.12), "macs": 100})]
    assert select_model(accuracy, OBJ).reason == HEAD.format(n=2) + (
        "; 'b' tied with 'a' (95 % intervals overlap on accuracy, sci), and 'a' wins the tie-break on higher "
        "accuracy: 0.95 against 0.94 for 'b'")
    name = [Candidate("b", None, {**ACC, **noisy(1.0, 0.9, 1.1)}), Candidate("a", None, {**ACC, **noisy(1.0, 0.9, 1.1)})]
    decision = select_model(name, OBJ)
    assert decision.chosen.name == "a"
    assert decision.reason == HEAD.format(n=2) + (
        "; 'b' tied with 'a' (95 % intervals overlap on accuracy, sci), and 'a' wins the tie-break on first by name "
        "(ascending), the other figures being equal")
    unknown = [Candidate("a", None, {**ACC, **noisy(1.0, 0.9, 1.1)}),
               Candidate("b", None, {**ACC, **noisy(1.01, 0.9, 1.1), "macs": 100})]
    assert select_model(unknown, OBJ).reason == HEAD.format(n=2) + (
        "; 'b' is tied with 'a' (95 % intervals overlap on accuracy, sci) and wins the tie-break on fewer operations "
        "per inference (macs + tree_comparisons): 100 against unknown for 'a', so 'b' is chosen")


def test_with_several_tied_the_reason_compares_the_winner_with_the_runner_up():
    cands = [Candidate("a", None, {**ACC, **noisy(1.0, 0.9, 1.1), "macs": 10}),
             Candidate("b", None, {**ACC, **noisy(1.01, 0.9, 1.1), "macs": 300}),
             Candidate("c", None, {**ACC, **noisy(1.02, 0.9, 1.1), "macs": 200})]
    assert select_model(cands, OBJ).reason == HEAD.format(n=3) + (
        "; 'b', 'c' tied with 'a' (95 % intervals overlap on accuracy, sci), and 'a' wins the tie-break on fewer "
        "operations per inference (macs + tree_comparisons): 10 against 200 for 'c'")


def test_the_tie_break_choice_is_recorded_only_when_the_tie_break_overrode_the_rule():
    # b wins the tie-break over the rule's pick a: the record says so, for the report's headlines
    size = [Candidate("a", None, {**ACC, **noisy(1.0, 0.9, 1.1), "macs": 100, "weight_bytes": 4000}),
            Candidate("b", None, {**ACC, **noisy(1.02, 0.92, 1.12), "macs": 100, "weight_bytes": 1000})]
    overridden = select_model(size, OBJ)
    expected = {"rule_pick": "a", "chosen": "b", "tied": ["b"], "on": ["accuracy", "sci"],
                "decided": "smaller model size (weight bytes, else size bytes): 1,000 against 4,000 for 'a'"}
    assert overridden.tie_break_choice == expected
    assert overridden.to_record().to_dict()["tie_break_choice"] == expected
    # a tie the rule's pick wins is in the reason but is no override
    name = [Candidate("b", None, {**ACC, **noisy(1.0, 0.9, 1.1)}), Candidate("a", None, {**ACC, **noisy(1.0, 0.9, 1.1)})]
    kept = select_model(name, OBJ)
    assert "tied with 'a'" in kept.reason and kept.tie_break_choice is None
    assert "tie_break_choice" not in kept.to_record().to_dict()  # omitted when None


# --- the energy guard ------------------------------------------------------------------------------
def _guarded():
    """fast scores best under latency-heavy weights but is significantly dirtier than the baseline;
    mid2 and mid1 are equal (the name decides between them) and score better than the baseline."""
    return [Candidate("m/fp32", None, {"accuracy": 0.95, "latency_p95_ms": 10.0, **noisy(1.0, 0.95, 1.05)},
                      metadata={"variant": "fp32"}),
            Candidate("m/fast", None, {"accuracy": 0.95, "latency_p95_ms": 2.0, **noisy(3.0, 2.9, 3.1)}),
            Candidate("m/mid2", None, {"accuracy": 0.94, "latency_p95_ms": 5.0, **noisy(1.02, 0.97, 1.07)}),
            Candidate("m/mid1", None, {"accuracy": 0.94, "latency_p95_ms": 5.0, **noisy(1.02, 0.97, 1.07)})]


@pytest.mark.parametrize("rule", ["chebyshev", "weighted_sum"])
def test_the_energy_guard_picks_the_best_scoring_member_not_significantly_worse(rule):
    decision = select_model(_guarded(), OBJ3, rule=rule, weights={"latency_p95_ms": 0.9, "sci": 0.1})
    guard = ("'m/fast' scored best but is significantly worse than the baseline 'm/fp32' on sci, so 'm/mid1' (the "
             "best not significantly worse) is chosen")
    assert decision.chosen.name == "m/mid1" and decision.energy_guard == guard
    assert decision.reason.startswith(f"{rule}: 'm/fast' has the ") and decision.reason.endswith(f"; {guard}")
    assert decision.to_record().energy_guard == guard


@pytest.mark.parametrize("rule", ["chebyshev", "weighted_sum"])
def test_no_weight_on_energy_or_sci_turns_the_guard_off(rule):
    # weights name neither sci nor energy: the fastest is chosen, dirtier or not
    decision = select_model(_guarded(), OBJ3, rule=rule, weights={"latency_p95_ms": 1})
    assert decision.chosen.name == "m/fast" and decision.energy_guard is None
    # sci is not even an objective: no weight can be on it
    objectives = [Objective("accuracy", "max"), Objective("latency_p95_ms", "min")]
    decision = select_model(_guarded(), objectives, rule=rule, weights={"latency_p95_ms": 1})
    assert decision.chosen.name == "m/fast" and decision.energy_guard is None


def test_weight_on_energy_keeps_the_guard_on():
    energy = {"energy_per_inference_kwh": 1e-9, "energy_per_inference_kwh_low": 0.95e-9,
              "energy_per_inference_kwh_high": 1.05e-9}
    # (the baseline needs an accuracy, objective or not)
    base = Candidate("m/fp32", None, {"accuracy": 0.95, "latency_p95_ms": 10.0, **energy}, metadata={"variant": "fp32"})
    fast = Candidate("m/fast", None, {"accuracy": 0.95, "latency_p95_ms": 2.0, **{k: 3 * v for k, v in energy.items()}})
    objectives = [Objective("latency_p95_ms", "min"), Objective("energy_per_inference_kwh", "min")]
    decision = select_model([base, fast], objectives, rule="weighted_sum", primary="latency_p95_ms",
                            weights={"latency_p95_ms": 0.9, "energy_per_inference_kwh": 0.1})
    assert decision.chosen.name == "m/fp32"
    assert decision.energy_guard == ("'m/fast' scored best but is significantly worse than the baseline 'm/fp32' on "
                                     "energy_per_inference_kwh, so 'm/fp32' (the best not significantly worse) is "
                                     "chosen")


def test_the_guard_needs_the_same_energy_figure_on_both_sides():
    # the chosen has energy per inference, the baseline only SCI: nothing to compare, no guard
    base = Candidate("m/fp32", None, {"accuracy": 0.95, "latency_p95_ms": 10.0, "sci": 1.0},
                     metadata={"variant": "fp32"})
    fast = Candidate("m/fast", None, {"accuracy": 0.95, "latency_p95_ms": 2.0, "sci": 3.0,
                                      "energy_per_inference_kwh": 1e-9})
    decision = select_model([base, fast], [Objective("accuracy", "max"), Objective("latency_p95_ms", "min")])
    assert decision.chosen.name == "m/fast" and decision.energy_guard is None
    assert set(decision.significance()) == {"accuracy", "latency_p95_ms"}
    # the chosen has no energy figure at all: no guard either
    bare = Candidate("m/fast", None, {"accuracy": 0.95, "latency_p95_ms": 2.0})
    decision = select_model([base, bare], [Objective("accuracy", "max"), Objective("latency_p95_ms", "min")])
    assert decision.chosen.name == "m/fast" and decision.energy_guard is None


def test_the_guard_text_says_why_the_baseline_is_off_the_front():
    base = Candidate("m/fp32", None, {"accuracy": 0.85, "latency_p95_ms": 12.0, **noisy(1.0, 0.95, 1.05)},
                     metadata={"variant": "fp32"})
    dirty = Candidate("m/fp16", None, {"accuracy": 0.95, "latency_p95_ms": 5.0, **noisy(2.0, 1.9, 2.1)})
    decision = select_model([base, dirty], OBJ3, {"max_latency_ms": 10, "min_accuracy": 0.9})
    assert decision.chosen.name == "m/fp16"
    assert decision.energy_guard == (
        "the baseline 'm/fp32' was excluded by constraints (accuracy 0.85 < min_accuracy 0.9; latency_p95_ms 12 > "
        "max_latency_ms 10); the chosen 'm/fp16' is significantly worse on sci than it, as is every front member")
    # dominated on the objectives by two front members, both dirtier on energy (not an objective)
    energy = {"energy_per_inference_kwh": 1e-9, "energy_per_inference_kwh_low": 0.9e-9,
              "energy_per_inference_kwh_high": 1.1e-9}
    dirtier = {k: 3 * v for k, v in energy.items()}
    cands = [Candidate("m/fp32", None, {"accuracy": 0.90, "latency_p95_ms": 12.0, "sci": 1.0, **energy},
                       metadata={"variant": "fp32"}),
             Candidate("m/a", None, {"accuracy": 0.95, "latency_p95_ms": 5.0, "sci": 1.0, **dirtier}),
             Candidate("m/b", None, {"accuracy": 0.92, "latency_p95_ms": 4.0, "sci": 1.0, **dirtier})]
    decision = select_model(cands, OBJ3)
    assert decision.assessment("m/fp32").dominated_by == ("m/a", "m/b")
    assert decision.energy_guard.startswith("the baseline 'm/fp32' was dominated by 'm/a', 'm/b'; the chosen ")


# --- the baseline ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "metadata", "is_baseline"), [
    ("fp32", {}, True),
    ("model-a/fp32", {}, True),
    ("reference", {"variant": "fp32"}, True),
    ("fp32-lite", {}, False),
    ("model-a/fp32x", {}, False),
    ("model-a/FP32", {"variant": "int8"}, False),
])
def test_the_baseline_is_an_fp32_variant_by_name_or_metadata(name, metadata, is_baseline):
    cands = [Candidate(name, None, {"accuracy": 0.95, "sci": 1.0}, metadata=metadata),
             Candidate("other", None, {"accuracy": 0.90, "sci": 0.5})]
    decision = select_model(cands, OBJ)
    assert (decision.baseline is not None and decision.baseline.name == name) is is_baseline
    assert (decision.to_record().baseline == name) is is_baseline


def test_the_baseline_is_the_most_accurate_fp32_then_the_first_name():
    cands = [Candidate("b/fp32", None, {"accuracy": 0.90, "sci": 1.0}),
             Candidate("c/fp32", None, {"accuracy": 0.95, "sci": 2.0}),
             Candidate("a/fp32", None, {"accuracy": 0.80, "sci": 0.5})]
    assert select_model(cands, OBJ).baseline.name == "c/fp32"
    tied = [Candidate("b/fp32", None, {"accuracy": 0.95, "sci": 1.0}), Candidate("a/fp32", None, {"accuracy": 0.95, "sci": 1.0})]
    assert select_model(tied, OBJ).baseline.name == "a/fp32"


# --- the record: what a promotion leaves behind --------------------------------------------------------
ENERGY = {"energy_per_inference_kwh": 2e-9, "energy_per_inference_kwh_low": 1.9e-9,
          "energy_per_inference_kwh_high": 2.1e-9}


def _recorded():
    return [
        Candidate("m/fp32", "/m/fp32.onnx", {"accuracy": 0.95, "latency_p95_ms": 10.0, **noisy(1.0, 0.95, 1.05),
                                              **ENERGY}, metadata={"variant": "fp32"}),
        Candidate("m/int8", "/m/int8.onnx", {"accuracy": 0.94, "latency_p95_ms": 4.0, **noisy(0.5, 0.45, 0.55),
                                              **{k: v / 2 for k, v in ENERGY.items()}, "training_emissions_g": math.inf},
                  metadata={"variant": "int8_dynamic", "tags": ["b"], "opset": 17, "note": None}),
        Candidate("m/fp16", "/m/fp16.onnx", {"accuracy": 0.95, "latency_p95_ms": 12.0, **noisy(1.2, 1.1, 1.3)}),
        Candidate("m/bad", None, {"accuracy": 0.5, "latency_p95_ms": 1.0, "sci": 0.1}),
        Candidate("m/off", None, {"accuracy": 0.9, "latency_p95_ms": 1.0, "sci": math.inf}),
        Candidate("m/no", None, {"accuracy": 0.99, "latency_p95_ms": 1.0, "sci": 0.1}, eligible=False),
    ]


def _check(value, **extra):
    return {"constraint": "min_accuracy", "metric": "accuracy", "limit": 0.9, "value": value, "low": value,
            "high": value, "met": value >= 0.9, "within_noise": False, **extra}


def test_every_candidate_is_recorded_with_its_status_figures_and_why():
    decision = select_model(_recorded(), OBJ3, constraints={"min_accuracy": 0.9})
    assert decision.chosen.name == "m/int8"
    rows = {a.name: a.to_dict() for a in decision.assessments}
    assert rows["m/int8"] == {
        "name": "m/int8", "model_uri": "/m/int8.onnx", "status": "chosen", "on_front": True, "eligible": True,
        "eligibility_reason": None, "reasons": [], "violations": [], "constraint_checks": [_check(0.94)],
        "dominated_by": [],
        "metrics": {"accuracy": 0.94, "latency_p95_ms": 4.0, "sci": 0.5, "sci_low": 0.45, "sci_high": 0.55,
                    "energy_per_inference_kwh": 1e-9, "energy_per_inference_kwh_low": 0.95e-9,
                    "energy_per_inference_kwh_high": 1.05e-9, "training_emissions_g": None},
        "normalized": {"accuracy": 0.0, "latency_p95_ms": 1.0, "sci": 1.0}, "score": 1.0,
        "metadata": {"variant": "int8_dynamic", "tags": ["b"], "opset": 17, "note": None},
    }
    assert rows["m/fp32"]["status"] == "front" and rows["m/fp32"]["on_front"] is True
    assert rows["m/fp32"]["normalized"] == {"accuracy": 1.0, "latency_p95_ms": 0.0, "sci": 0.0}
    assert rows["m/fp32"]["score"] == pytest.approx(math.sqrt(2))
    assert rows["m/fp16"] == {
        "name": "m/fp16", "model_uri": "/m/fp16.onnx", "status": "dominated", "on_front": False, "eligible": True,
        "eligibility_reason": None, "reasons": ["dominated by m/fp32"], "violations": [],
        "constraint_checks": [_check(0.95)], "dominated_by": ["m/fp32"],
        "metrics": {"accuracy": 0.95, "latency_p95_ms": 12.0, "sci": 1.2, "sci_low": 1.1, "sci_high": 1.3},
        "normalized": None, "score": None, "metadata": {},
    }
    broken = _check(0.5, message="accuracy 0.5 < min_accuracy 0.9")
    assert rows["m/bad"]["status"] == "violates_constraints" and rows["m/bad"]["on_front"] is False
    assert rows["m/bad"]["violations"] == rows["m/bad"]["constraint_checks"] == [broken]
    assert rows["m/off"]["reasons"] == ["objective 'sci' is infinite (inf)"]
    assert rows["m/off"]["metrics"]["sci"] is None and rows["m/off"]["constraint_checks"] is None
    assert rows["m/no"]["reasons"] == ["not eligible: marked ineligible"] and rows["m/no"]["eligible"] is False
    with pytest.raises(KeyError, match="m/none"):
        decision.assessment("m/none")


def test_the_decision_record_holds_the_choice_the_rule_and_the_comparison_with_the_baseline():
    record = select_model(_recorded(), OBJ3, constraints={"min_accuracy": 0.9}).to_record()
    assert (record.promote, record.chosen, record.chosen_model_uri, record.rule) == (True, "m/int8", "/m/int8.onnx", "knee")
    assert record.chosen_metrics == {"accuracy": 0.94, "latency_p95_ms": 4.0, "sci": 0.5, "sci_low": 0.45,
                                     "sci_high": 0.55, "energy_per_inference_kwh": 1e-9,
                                     "energy_per_inference_kwh_low": 0.95e-9, "energy_per_inference_kwh_high": 1.05e-9,
                                     "training_emissions_g": None}
    assert record.rule_definition == ("front member closest to the ideal point: min sqrt(sum_i (1 - n_i)^2), n_i "
                                      "normalised so 1 = front's best")
    assert record.score_direction == "lower is better"
    assert record.dominance == ("beyond the 95 % intervals: better on at least one objective (intervals apart), worse "
                                "on none; overlapping intervals are ties (exact figures have zero-width intervals)")
    assert record.weights is None and record.primary == "accuracy"
    assert [(o.name, o.direction) for o in record.objectives] == [("accuracy", "max"), ("latency_p95_ms", "min"),
                                                                  ("sci", "min")]
    assert record.constraints == {"min_accuracy": 0.9, "max_accuracy_drop_points": None, "max_latency_ms": None,
                                  "max_sci": None}
    assert record.accuracy_reference == {"name": "m/fp16", "accuracy": 0.95}
    assert record.normalization == {"accuracy": {"best": 0.95, "worst": 0.94},
                                    "latency_p95_ms": {"best": 4.0, "worst": 10.0}, "sci": {"best": 0.5, "worst": 1.0}}
    assert record.front == ("m/fp32", "m/int8")
    assert record.scores == {"m/fp32": pytest.approx(math.sqrt(2)), "m/int8": 1.0}
    assert [(e.name, e.status) for e in record.excluded] == [("m/fp16", "dominated"), ("m/bad", "violates_constraints"),
                                                             ("m/off", "missing_objective"), ("m/no", "ineligible")]
    assert record.counts == {"candidates": 6, "chosen": 1, "front": 1, "dominated": 1, "violates_constraints": 1,
                             "missing_objective": 1, "ineligible": 1}
    assert record.units == {"accuracy": "fraction (0-1)", "accuracy_drop": "percentage points", "latency_p95_ms": "ms",
                            "sci": "g CO2eq per functional unit", "training_emissions_g": "g CO2eq"}
    assert record.baseline == "m/fp32" and record.energy_guard is None
    assert record.significance == {
        "accuracy": {"direction": "max", "chosen": {"estimate": 0.94, "low": 0.94, "high": 0.94},
                     "baseline": {"estimate": 0.95, "low": 0.95, "high": 0.95}, "verdict": "worse",
                     "significantly_better": False},
        "latency_p95_ms": {"direction": "min", "chosen": {"estimate": 4.0, "low": 4.0, "high": 4.0},
                           "baseline": {"estimate": 10.0, "low": 10.0, "high": 10.0}, "verdict": "better",
                           "significantly_better": True},
        "sci": {"direction": "min", "chosen": {"estimate": 0.5, "low": 0.45, "high": 0.55},
                "baseline": {"estimate": 1.0, "low": 0.95, "high": 1.05}, "verdict": "better",
                "significantly_better": True},
        "energy_per_inference_kwh": {"direction": "min", "chosen": {"estimate": 1e-9, "low": 0.95e-9, "high": 1.05e-9},
                                     "baseline": {"estimate": 2e-9, "low": 1.9e-9, "high": 2.1e-9},
                                     "verdict": "better", "significantly_better": True},
    }
    assert json.loads(record.to_json())["significance"]["sci"]["verdict"] == "better"


def test_the_pipeline_metrics_and_the_model_artifact_metadata():
    decision = select_model(_recorded(), OBJ3, constraints={"min_accuracy": 0.9})
    assert decision.metrics() == {"promote": 1.0, "candidates": 6.0, "front_size": 2.0, "excluded": 4.0,
                                  "chosen_accuracy": 0.94, "chosen_latency_p95_ms": 4.0, "chosen_sci": 0.5,
                                  "chosen_score": 1.0}
    # scalar metadata and None pass to the artifact; lists do not
    assert decision.artifact_metadata() == {"variant": "int8_dynamic", "opset": 17, "note": None, "promote": True,
                                            "selected": "m/int8", "source_uri": "/m/int8.onnx", "rule": "knee",
                                            "accuracy": 0.94, "latency_p95_ms": 4.0, "sci": 0.5}
    blocked = select_model(_recorded(), OBJ3, constraints={"min_accuracy": 0.999}, on_none="block")
    assert blocked.metrics() == {"promote": 0.0, "candidates": 6.0, "front_size": 0.0, "excluded": 6.0}
    assert blocked.artifact_metadata() == {"promote": False, "rule": "knee"}
    assert blocked.significance() == {} and blocked.to_record().significance is None
    record = blocked.to_record()
    assert (record.promote, record.chosen, record.chosen_model_uri, record.chosen_metrics) == (False, None, None, None)
    assert record.scores == {} and record.front == ()


def test_significance_leaves_out_an_energy_figure_the_baseline_lacks():
    cands = [Candidate("m/fp32", None, {"accuracy": 0.95, "sci": 1.0}, metadata={"variant": "fp32"}),
             Candidate("m/int8", None, {"accuracy": 0.94, "sci": 0.5, "energy_per_inference_kwh": 1e-9})]
    decision = select_model(cands, OBJ, rule="epsilon_constraint", primary="sci")
    assert decision.chosen.name == "m/int8"
    assert set(decision.significance()) == {"accuracy", "sci"}


# --- the reason when decisions are within the noise, and when nothing is left ------------------------
def test_the_reason_lists_the_noise_decisions_that_mattered():
    cands = [Candidate("chosen", None, {"accuracy": 0.95, **noisy(0.98, 0.9, 1.05)}),
             # dominated by chosen; meets max_sci within the noise: not the chosen, no note
             Candidate("other", None, {"accuracy": 0.80, **noisy(0.5, 0.45, 1.01)}),
             # min_accuracy met clearly (first check), the drop broken within the noise (second)
             Candidate("drop", None, {**noisy(0.935, 0.915, 0.955, "accuracy"), "sci": 0.3})]
    decision = select_model(cands, OBJ, constraints={"min_accuracy": 0.5, "max_sci": 1.0,
                                                     "max_accuracy_drop_points": 1.0})
    assert decision.reason == (
        "knee: 'chosen' is the knee: closest to the ideal point (distance 0 in normalised objectives) among 1 front "
        "member of 3 candidates (2 excluded or dominated); constraints are judged on point estimates, and these "
        "decisions are within the noise: 'chosen' meets max_sci 1 on the point estimate but its interval crosses it "
        "(sci 0.98 [0.9, 1.05]); 'drop' breaks max_accuracy_drop_points 1 on the point estimate but its interval "
        "reaches inside (accuracy drop 1.5 points [-0.5, 3.5])")


def test_the_blocked_message_lists_every_candidate_and_says_when_the_noise_is_involved():
    drop = Candidate("drop", None, {**noisy(0.935, 0.915, 0.955, "accuracy"), "sci": 0.3})
    top = Candidate("top", None, {"accuracy": 0.95, "sci": 5.0})
    limits = {"max_sci": 1.0, "max_accuracy_drop_points": 1.0}
    expected = (
        "No candidate can be promoted: none of the 2 candidate(s) is eligible, has every objective and meets the "
        "constraints. drop: accuracy drop 1.5 points against the most accurate variant (95 %) > "
        "max_accuracy_drop_points 1 (within the noise: the 95 % interval [-0.5, 3.5] reaches the limit) | top: sci 5 > "
        "max_sci 1 | constraints are judged on point estimates; a limit broken 'within the noise' has a 95 % interval "
        "that reaches inside it")
    assert select_model([drop, top], OBJ, constraints=limits, on_none="block").reason == expected
    with raises(expected, NoEligibleCandidateError):
        select_model([drop, top], OBJ, constraints=limits)
    two = Candidate("two", None, {"accuracy": 0.5, "sci": 5.0})
    assert select_model([two], OBJ, constraints={"max_sci": 1.0, "min_accuracy": 0.9}, on_none="block").reason == (
        "No candidate can be promoted: none of the 1 candidate(s) is eligible, has every objective and meets the "
        "constraints. two: accuracy 0.5 < min_accuracy 0.9; sci 5 > max_sci 1")


# --- values near the float maximum still order by value -----------------------------------------------
@pytest.mark.parametrize("direction", ["max", "min"])
def test_equal_scores_go_to_the_better_primary_even_near_the_float_maximum(direction):
    better, worse = (1.5e308, 1.0e308) if direction == "max" else (1.0e308, 1.5e308)
    cands = [Candidate("b", None, {"x": better, "y": 0.0}), Candidate("a", None, {"x": worse, "y": 1.0})]
    decision = select_model(cands, [Objective("x", direction), Objective("y", "max")], primary="x")
    assert decision.assessment("a").score == decision.assessment("b").score == 1.0
    assert decision.chosen.name == "b"  # the better x, not the first name


@pytest.mark.parametrize("direction", ["max", "min"])
def test_the_energy_guard_orders_huge_primary_values_by_value(direction):
    # epsilon_constraint scores are the primary's values; m/dirty has the best x but is dirtier than
    # the baseline beyond the noise; of the two left, m/b has the better x (m/a the higher accuracy)
    xs = {"fp": 1.0e308, "dirty": 1.7e308, "b": 1.5e308, "a": 1.2e308} if direction == "max" else \
         {"fp": 1.7e308, "dirty": 0.95e308, "b": 1.0e308, "a": 1.5e308}
    cands = [Candidate("m/fp32", None, {"x": xs["fp"], **noisy(1.0, 0.95, 1.05), "accuracy": 0.95},
                       metadata={"variant": "fp32"}),
             Candidate("m/dirty", None, {"x": xs["dirty"], **noisy(3.0, 2.9, 3.1), "accuracy": 0.90}),
             Candidate("m/b", None, {"x": xs["b"], **noisy(1.02, 0.97, 1.07), "accuracy": 0.90}),
             Candidate("m/a", None, {"x": xs["a"], **noisy(0.5, 0.45, 0.55), "accuracy": 0.95})]
    decision = select_model(cands, [Objective("x", direction), Objective("sci", "min")], rule="epsilon_constraint",
                            primary="x")
    assert decision.front == ("m/dirty", "m/b", "m/a")
    assert decision.chosen.name == "m/b"
    assert decision.energy_guard == ("'m/dirty' scored best but is significantly worse than the baseline 'm/fp32' on "
                                     "sci, so 'm/b' (the best not significantly worse) is chosen")


# --- a front whose values span more than the float range ---------------------------------------------
@pytest.mark.parametrize("rule", ["knee", "chebyshev", "weighted_sum", "epsilon_constraint"])
def test_a_front_spanning_more_than_the_float_range_normalises_without_overflow(rule):
    # best - worst overflows to inf (1.7e308 - -1.7e308): the normalised values became nan and every
    # rule failed with "min() arg is an empty sequence"; halving first keeps them exact
    cands = [Candidate("a", None, {"x": 1.7e308, "y": 0.0}), Candidate("b", None, {"x": -1.7e308, "y": 1.0}),
             Candidate("c", None, {"x": 0.0, "y": 0.25})]
    decision = select_model(cands, ["x:max", "y:max"], rule=rule, primary="x")
    assert decision.normalization["x"] == {"best": 1.7e308, "worst": -1.7e308}
    assert decision.assessment("a").normalized == {"x": 1.0, "y": 0.0}
    assert decision.assessment("b").normalized == {"x": 0.0, "y": 1.0}
    assert decision.assessment("c").normalized == {"x": 0.5, "y": 0.25}
    # knee: a and b at distance 1, c at sqrt(0.5^2 + 0.75^2) = 0.90; chebyshev (weights 0.5): a and b
    # 0.5, c 0.375; weighted_sum: a and b 0.5 (tied, a has the better x), c 0.375; epsilon: the best x
    assert decision.chosen.name == ("c" if rule in ("knee", "chebyshev") else "a")


def test_the_worst_of_a_minimised_objective_spanning_the_float_range_normalises_to_positive_zero():
    # (worst/2 - worst/2) / (best/2 - worst/2) = 0 / negative = -0.0 for a minimised objective
    cands = [Candidate("a", None, {"x": 1.7e308, "y": 1.0}), Candidate("b", None, {"x": -1.7e308, "y": 0.0})]
    normalized = select_model(cands, ["x:min", "y:max"], primary="x").assessment("a").normalized
    assert normalized["x"] == 0.0 and math.copysign(1.0, normalized["x"]) == 1.0


# any finite float, with the extremes drawn often: fronts that span more than the float range
FINITE = st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                   st.sampled_from([1.7976931348623157e308, -1.7976931348623157e308, 1e308, -1e308, 5e-324, -0.0]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(FINITE, FINITE), min_size=1, max_size=6),
       st.sampled_from(["knee", "chebyshev", "weighted_sum", "epsilon_constraint"]))
def test_any_finite_metrics_normalise_into_the_unit_interval_and_pick_a_front_member(rows, rule):
    cands = [Candidate(f"m{i}", None, {"x": x, "y": y}) for i, (x, y) in enumerate(rows)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow or an invalid division is a defect, not noise
        decision = select_model(cands, ["x:max", "y:min"], rule=rule, primary="x")
    assert decision.chosen.name in decision.front
    for name in decision.front:
        normalized = decision.assessment(name).normalized
        assert all(0.0 <= v <= 1.0 for v in normalized.values()), (name, normalized)
    # the extremes of each objective on the front normalise to exactly 0 and 1 (or all 1 when equal)
    xs = [c.metrics["x"] for c in cands if c.name in decision.front]
    best = max(decision.front, key=lambda n: next(c.metrics["x"] for c in cands if c.name == n))
    assert decision.assessment(best).normalized["x"] == 1.0
    if min(xs) != max(xs):
        worst = min(decision.front, key=lambda n: next(c.metrics["x"] for c in cands if c.name == n))
        assert decision.assessment(worst).normalized["x"] == 0.0
