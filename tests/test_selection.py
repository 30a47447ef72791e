"""Selection: the Pareto front against brute force, constraints, every rule, the blocked path,
the decision record and the HTML report."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from greenkfp.components.selection import (
    Candidate,
    Constraints,
    NoEligibleCandidateError,
    Objective,
    SelectionError,
    dominates,
    dominators,
    pareto_front,
    pareto_front_details,
    select_model,
    selection_html,
)

ROOT = Path(__file__).resolve().parents[1]


# --- the front ---------------------------------------------------------------------------------
def brute_force_front(points, directions) -> np.ndarray:
    """O(n^2) by the definition: rows with NaN/inf take no part; a row is on the front unless
    another row is no worse everywhere and better somewhere."""
    x = np.asarray(points, dtype=float)
    costs = np.where(np.array(directions) == "max", -x, x)
    finite = np.isfinite(costs).all(axis=1)
    front = []
    for j in range(len(costs)):
        if not finite[j]:
            continue
        beaten = any(
            finite[i] and np.all(costs[i] <= costs[j]) and np.any(costs[i] < costs[j]) for i in range(len(costs))
        )
        if not beaten:
            front.append(j)
    return np.array(front, dtype=np.int64)


def vector_brute_force(x, directions) -> np.ndarray:
    """The same definition, vectorised, for larger tables (all finite)."""
    costs = np.where(np.array(directions) == "max", -x, x)
    le = np.all(costs[:, None, :] <= costs[None, :, :], axis=2)
    lt = np.any(costs[:, None, :] < costs[None, :, :], axis=2)
    return np.flatnonzero(~(le & lt).any(axis=0))


SMALL_INTEGERS = st.integers(0, 3)


@st.composite
def tables(draw, values=SMALL_INTEGERS):
    d = draw(st.integers(2, 5))
    n = draw(st.integers(0, 40))
    points = draw(hnp.arrays(np.float64, (n, d), elements=values))
    directions = draw(st.lists(st.sampled_from(["max", "min"]), min_size=d, max_size=d))
    return points, directions


@settings(max_examples=300, deadline=None)
@given(tables())
def test_front_matches_brute_force_on_tied_integer_data(case):
    points, directions = case
    assert pareto_front(points, directions).tolist() == brute_force_front(points, directions).tolist()


@settings(max_examples=150, deadline=None)
@given(tables(values=st.sampled_from([0.0, 1.0, 2.0, -0.0, math.nan, math.inf, -math.inf])))
def test_front_matches_brute_force_with_missing_and_infinite_values(case):
    points, directions = case
    details = pareto_front_details(points, directions)
    assert details.indices.tolist() == brute_force_front(points, directions).tolist()
    assert sorted(details.excluded) == np.flatnonzero(~np.isfinite(points).all(axis=1)).tolist()


@pytest.mark.parametrize("d", [2, 3, 4, 5])
@pytest.mark.parametrize("kind", ["few values", "continuous"])
def test_front_matches_brute_force_on_larger_random_tables(d, kind):
    rng = np.random.default_rng(100 * d + len(kind))
    n = 1500
    x = rng.integers(0, 6, size=(n, d)).astype(float) if kind == "few values" else rng.random((n, d))
    directions = list(rng.choice(["max", "min"], size=d))
    assert pareto_front(x, directions).tolist() == vector_brute_force(x, directions).tolist()


def test_front_when_most_points_are_on_it_spans_many_blocks():
    # 3 objectives on the plane x + y + z = 1: every point is on the front (the sweep's worst case),
    # plus dominated copies shifted up and exact duplicates.
    rng = np.random.default_rng(7)
    xy = rng.random((2500, 2))
    plane = np.column_stack([xy, 1.0 - xy.sum(axis=1)])
    x = np.concatenate([plane, plane[:300] + 0.01, plane[:50]])
    front = pareto_front(x, ["min", "min", "min"])
    assert front.tolist() == vector_brute_force(x, ["min", "min", "min"]).tolist()
    assert len(front) == 2500 + 50


def test_duplicates_of_a_front_point_are_all_on_it_and_dominated_duplicates_are_not():
    points = [[0.9, 12.0], [0.8, 5.0], [0.8, 6.0], [0.9, 12.0], [0.8, 6.0]]
    assert pareto_front(points, ["max", "min"]).tolist() == [0, 1, 3]
    assert pareto_front([[1, 1]] * 4, ["min", "min"]).tolist() == [0, 1, 2, 3]


def test_one_objective_and_empty_input():
    assert pareto_front([[3.0], [1.0], [1.0], [2.0]], ["min"]).tolist() == [1, 2]
    assert pareto_front([[3.0], [1.0], [3.0]], ["max"]).tolist() == [0, 2]
    assert pareto_front(np.empty((0, 3)), ["min"] * 3).tolist() == []
    assert pareto_front([], ["min", "max"]).tolist() == []


def test_missing_values_are_excluded_with_the_column_named():
    points = [[0.9, 3.0, None], [0.8, float("nan"), float("nan")], [0.7, float("inf"), 1.0], [0.6, 1.0, 1.0]]
    details = pareto_front_details(points, ["max", "min", "min"], names=["accuracy", "latency", "sci"])
    assert details.indices.tolist() == [3]  # the only complete row
    assert details.excluded == {
        0: "sci is missing (NaN)",
        1: "latency is missing (NaN); sci is missing (NaN)",
        2: "latency is infinite (inf)",
    }
    assert details.dominated.tolist() == []
    # a row with a missing value dominates nothing: row 0 alone would beat row 1 here
    assert pareto_front([[None, 0.0], [1.0, 1.0]], ["min", "min"]).tolist() == [1]


def test_dominates_and_dominators():
    assert dominates([0.9, 5], [0.8, 5], ["max", "min"])
    assert not dominates([0.9, 5], [0.9, 5], ["max", "min"])  # equal rows do not dominate
    assert not dominates([0.9, 6], [0.8, 5], ["max", "min"])
    points = [[0.9, 5], [0.8, 6], [0.95, 7], [0.7, 8]]
    assert dominators(points, ["max", "min"]) == {1: [0], 3: [0, 2]}


@pytest.mark.parametrize(
    ("points", "directions", "message"),
    [
        ([1, 2, 3], ["min"], "points must be 2-D"),
        ([[1, 2]], ["min"], "directions must have one entry per column of points (2); got 1"),
        ([[1, 2]], ["min", "maximize"], "directions[1] must be 'max' or 'min'; got 'maximize'"),
        ([[1, 2]], "min", "directions must be a sequence"),
        ([["a", 2]], ["min", "min"], "points must be a 2-D table of numbers"),
        (np.empty((3, 0)), [], "points must have at least one column"),
    ],
)
def test_invalid_inputs_name_the_argument_and_value(points, directions, message):
    with pytest.raises((ValueError, TypeError)) as info:
        pareto_front(points, directions)
    assert message in str(info.value)


def test_front_of_100k_points_is_fast():
    # Regression guard, loose for shared CI machines; scripts/bench_selection.py checks the 0.2 s goal.
    x = np.random.default_rng(3).random((100_000, 3))
    best = min(_timed(lambda: pareto_front(x, ["max", "min", "min"])) for _ in range(3))
    assert best < 1.0


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# --- selection ---------------------------------------------------------------------------------
def metrics(accuracy, latency, sci, **extra):
    return {"accuracy": accuracy, "latency_p95_ms": latency, "sci": sci, **extra}


def variants() -> list[Candidate]:
    """A hand-made set (accuracy max, latency p95 min, SCI min).

    fp16 is dominated by fp32 (same accuracy, slower, dirtier); the front is fp32, int8_dynamic,
    int8_static, tiny. Normalised over the front (1 = front's best; accuracy 0.80..0.95,
    latency 10..2 ms, SCI 4.0..0.8):

        fp32          acc 1       lat 0      sci 0
        int8_dynamic  acc 0.9333  lat 0.75   sci 0.78125
        int8_static   acc 0.6667  lat 0.875  sci 0.9375
        tiny          acc 0       lat 1      sci 1
    """
    return [
        Candidate("fp32", "gs://models/fp32.onnx", metrics(0.95, 10.0, 4.0, training_emissions_g=30.0)),
        Candidate("int8_dynamic", "gs://models/int8_dynamic.onnx", metrics(0.94, 4.0, 1.5)),
        Candidate("int8_static", "gs://models/int8_static.onnx", metrics(0.90, 3.0, 1.0)),
        Candidate("fp16", "gs://models/fp16.onnx", metrics(0.95, 12.0, 4.5)),
        Candidate("tiny", "gs://models/tiny.onnx", metrics(0.80, 2.0, 0.8)),
    ]


def test_knee_is_the_front_member_closest_to_the_ideal_point():
    # distances sqrt(sum (1 - n_i)^2): fp32 sqrt(2) = 1.414; int8_dynamic
    # sqrt(0.0667^2 + 0.25^2 + 0.21875^2) = 0.3388; int8_static sqrt(0.3333^2 + 0.125^2 + 0.0625^2)
    # = 0.3614; tiny sqrt(1) = 1  ->  int8_dynamic
    decision = select_model(variants())
    assert decision.rule == "knee" and decision.promote
    assert decision.chosen.name == "int8_dynamic"
    assert decision.front == ("fp32", "int8_dynamic", "int8_static", "tiny")
    assert decision.assessment("int8_dynamic").score == pytest.approx(0.33882, abs=1e-5)
    assert decision.assessment("int8_static").score == pytest.approx(0.36144, abs=1e-5)
    assert decision.assessment("fp16").status == "dominated"
    assert decision.assessment("fp16").dominated_by == ("fp32",)


def test_chebyshev_minimises_the_weighted_worst_shortfall():
    # weights 0.1 / 0.45 / 0.45: max_i w_i (1 - n_i) = fp32 max(0, .45, .45) = .45;
    # int8_dynamic max(.0067, .1125, .0984) = .1125; int8_static max(.0333, .05625, .0281) = .05625;
    # tiny max(.1, 0, 0) = .1  ->  int8_static
    weights = {"accuracy": 1, "latency_p95_ms": 4.5, "sci": 4.5}  # normalised to sum 1
    decision = select_model(variants(), rule="chebyshev", weights=weights)
    assert decision.chosen.name == "int8_static"
    assert decision.assessment("int8_static").score == pytest.approx(0.05625)
    assert decision.weights == pytest.approx({"accuracy": 0.1, "latency_p95_ms": 0.45, "sci": 0.45})


def test_weighted_sum_maximises_the_weighted_normalised_sum():
    # weights 0.2 / 0.4 / 0.4: fp32 .2; int8_dynamic .18667 + .3 + .3125 = .79917;
    # int8_static .13333 + .35 + .375 = .85833; tiny .8  ->  int8_static
    decision = select_model(variants(), rule="weighted_sum", weights=[0.2, 0.4, 0.4])
    assert decision.chosen.name == "int8_static"
    assert decision.assessment("int8_static").score == pytest.approx(0.858333, abs=1e-6)
    # all the weight on accuracy -> the most accurate front member
    assert select_model(variants(), rule="weighted_sum", weights={"accuracy": 1}).chosen.name == "fp32"


def test_epsilon_constraint_is_the_most_accurate_within_the_limits():
    # latency <= 5 and SCI <= 2 leave int8_dynamic (0.94), int8_static (0.90), tiny (0.80)
    limits = Constraints(max_latency_ms=5, max_sci=2)
    assert select_model(variants(), rule="epsilon_constraint", constraints=limits).chosen.name == "int8_dynamic"
    tighter = Constraints(max_latency_ms=5, max_sci=1.2)
    assert select_model(variants(), rule="epsilon_constraint", constraints=tighter).chosen.name == "int8_static"
    # without limits: the most accurate (fp32; fp16 ties on accuracy but is dominated)
    assert select_model(variants(), rule="epsilon_constraint").chosen.name == "fp32"


def test_ties_go_to_the_better_primary_then_the_name():
    # two objectives, two front members: normalised (1, 0) and (0, 1), equal knee distances;
    # the more accurate wins although its name sorts last
    pair = [Candidate("alpha", None, {"accuracy": 0.8, "sci": 1.0}),
            Candidate("zeta", None, {"accuracy": 0.9, "sci": 2.0})]
    objectives = ["accuracy:max", "sci:min"]
    assert select_model(pair, objectives).chosen.name == "zeta"
    # identical figures: both on the front, the name decides, whatever the input order
    same = [Candidate(n, None, metrics(0.9, 3.0, 1.0)) for n in ("b", "a", "c")]
    decision = select_model(same)
    assert decision.front == ("b", "a", "c") and decision.chosen.name == "a"
    assert select_model(list(reversed(same))).chosen.name == "a"


def test_one_front_member_is_chosen_and_constant_objectives_score_one():
    decision = select_model([Candidate("only", None, metrics(0.9, 3.0, 1.0))], rule="chebyshev")
    assert decision.chosen.name == "only"
    assert decision.assessment("only").normalized == {"accuracy": 1.0, "latency_p95_ms": 1.0, "sci": 1.0}
    assert decision.assessment("only").score == 0.0


@pytest.mark.parametrize(
    ("constraints", "excluded", "message"),
    [
        (Constraints(min_accuracy=0.85), "tiny", "accuracy 0.8 < min_accuracy 0.85"),
        (Constraints(max_latency_ms=11), "fp16", "latency_p95_ms 12 > max_latency_ms 11"),
        (Constraints(max_sci=0.9), "int8_static", "sci 1 > max_sci 0.9"),
        (Constraints(max_accuracy_drop_points=2), "int8_static",
         "accuracy drop 5 points against the most accurate variant (95 %) > max_accuracy_drop_points 2"),
    ],
)
def test_each_constraint_excludes_with_its_reason(constraints, excluded, message):
    decision = select_model(variants(), constraints=constraints)
    a = decision.assessment(excluded)
    assert a.status == "violates_constraints"
    assert message in a.reasons
    (violation,) = [v for v in a.violations if v["message"] == message]
    assert violation["limit"] is not None and violation["value"] is not None
    record = decision.to_record()
    assert (excluded, "violates_constraints", a.reasons) in [(e.name, e.status, e.reasons) for e in record.excluded]


def test_accuracy_drop_counts_from_the_most_accurate_and_tolerates_round_off():
    # 100 * (0.95 - 0.94) = 1.0000000000000009 points: within a 1-point limit
    decision = select_model(variants(), constraints=Constraints(max_accuracy_drop_points=1))
    assert decision.to_record().accuracy_reference == {"name": "fp16", "accuracy": 0.95}  # tie: by name
    assert decision.assessment("int8_dynamic").status in ("front", "chosen")
    assert decision.assessment("int8_static").status == "violates_constraints"
    assert decision.front == ("fp32", "int8_dynamic")


def test_ineligible_and_missing_objective_candidates_are_excluded_first():
    candidates = variants() + [
        Candidate("int8_bad", None, metrics(0.99, 1.0, 0.1), eligible=False,
                  eligibility_reason="accuracy dropped 3.00 points against the original"),
        Candidate("no_sci", None, {"accuracy": 0.99, "latency_p95_ms": 1.0}),
        Candidate("nan_latency", None, metrics(0.99, float("nan"), 0.1)),
    ]
    # only int8_bad meets min_accuracy 0.995, and it is ineligible: nothing may be promoted
    decision = select_model(candidates, constraints=Constraints(min_accuracy=0.995), on_none="block")
    assert decision.chosen is None and not decision.promote
    assert decision.assessment("int8_bad").status == "ineligible"
    assert decision.assessment("int8_bad").reasons == ("not eligible: accuracy dropped 3.00 points against the original",)
    assert decision.assessment("no_sci").reasons == ("objective 'sci' is missing",)
    assert decision.assessment("nan_latency").reasons == ("objective 'latency_p95_ms' is NaN",)
    assert decision.assessment("tiny").status == "violates_constraints"


def test_nothing_eligible_fails_plainly_or_blocks_promotion():
    too_strict = Constraints(min_accuracy=0.99)
    with pytest.raises(NoEligibleCandidateError) as info:
        select_model(variants(), constraints=too_strict)
    message = str(info.value)
    assert message.startswith("No candidate can be promoted")
    assert "fp32: accuracy 0.95 < min_accuracy 0.99" in message
    assert info.value.record.promote is False and info.value.record.chosen is None

    decision = select_model(variants(), constraints=too_strict, on_none="block")
    assert decision.chosen is None and decision.promote is False
    assert decision.reason == message
    record = decision.to_record()
    assert record.promote is False and record.front == () and record.counts["violates_constraints"] == 5
    assert decision.metrics()["promote"] == 0.0

    ineligible = [Candidate("x", None, metrics(0.9, 1, 1), eligible=False, eligibility_reason="not produced")]
    with pytest.raises(NoEligibleCandidateError, match="x: not eligible: not produced"):
        select_model(ineligible)
    assert select_model([], on_none="block").reason == "No candidate can be promoted: no candidates were given."


def test_record_is_json_ready_and_explains_the_choice():
    decision = select_model(variants() + [Candidate("nan", None, metrics(0.9, float("nan"), 1.0))],
                            constraints=Constraints(max_latency_ms=11))
    record = json.loads(json.dumps(decision.to_record().to_dict(), allow_nan=False))  # the JSON shape
    assert record["schema"] == "greenkfp.selection/v1"
    assert record["chosen"] == "int8_dynamic" and record["chosen_model_uri"] == "gs://models/int8_dynamic.onnx"
    assert record["rule"] == "knee" and record["weights"] is None
    assert record["front"] == ["fp32", "int8_dynamic", "int8_static", "tiny"]
    assert set(record["scores"]) == set(record["front"])
    assert record["normalization"]["latency_p95_ms"] == {"best": 2.0, "worst": 10.0}
    statuses = {c["name"]: c["status"] for c in record["candidates"]}
    assert statuses == {"fp32": "front", "int8_dynamic": "chosen", "int8_static": "front", "fp16": "violates_constraints",
                        "tiny": "front", "nan": "missing_objective"}
    nan = next(c for c in record["candidates"] if c["name"] == "nan")
    assert nan["metrics"]["latency_p95_ms"] is None
    assert record["candidates"][0]["metrics"]["training_emissions_g"] == 30.0
    assert "int8_dynamic" in record["reason"] and "knee" in record["reason"]
    assert decision.metrics()["chosen_accuracy"] == 0.94
    assert decision.artifact_metadata()["selected"] == "int8_dynamic"


def test_candidates_from_records_and_configurable_objectives():
    records = [
        {"name": "a", "uri": "/m/a.onnx", "accuracy": 0.9, "training_emissions_g": 5.0, "variant": "fp32",
         "eligible": True},
        {"name": "b", "model_uri": "/m/b.onnx", "metrics": {"accuracy": 0.85}, "training_emissions_g": 1.0},
    ]
    decision = select_model(records, objectives=[Objective("accuracy", "max"), ("training_emissions_g", "min")],
                            rule="weighted_sum", weights={"training_emissions_g": 1})
    assert decision.chosen.name == "b" and decision.chosen.model_uri == "/m/b.onnx"
    assert decision.assessment("a").candidate.metadata == {"variant": "fp32"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rule": "best"}, "rule must be one of knee, chebyshev, weighted_sum, epsilon_constraint; got 'best'"),
        ({"on_none": "ignore"}, "on_none must be 'fail' or 'block'; got 'ignore'"),
        ({"weights": {"accuracy": 1}}, "weights apply to the 'chebyshev' and 'weighted_sum' rules only"),
        ({"rule": "chebyshev", "weights": {"speed": 1}}, "weights name unknown objective(s) ['speed']"),
        ({"rule": "chebyshev", "weights": [1, 2]}, "weights must have one entry per objective (3"),
        ({"rule": "weighted_sum", "weights": {"accuracy": -1}}, "weights['accuracy'] must be a finite number >= 0; got -1"),
        ({"rule": "weighted_sum", "weights": [0, 0, 0]}, "weights must not all be zero"),
        ({"objectives": ["accuracy:best"]}, "Objective 'accuracy': direction must be 'max' or 'min'; got 'best'"),
        ({"objectives": ["accuracy:max", "accuracy:min"]}, "objectives must have distinct names; 'accuracy' repeated"),
        ({"primary": "f1"}, "primary must be one of the objectives"),
        ({"constraints": {"min_acc": 0.9}}, "constraints has unknown field(s) ['min_acc']"),
        ({"constraints": {"min_accuracy": 90}}, "min_accuracy must be between 0 and 1; got 90"),
        ({"constraints": {"max_sci": float("nan")}}, "max_sci must be a finite number or None; got nan"),
    ],
)
def test_invalid_selection_arguments_name_the_argument_and_value(kwargs, message):
    with pytest.raises(SelectionError) as info:
        select_model(variants(), **kwargs)
    assert message in str(info.value)


def test_invalid_candidates_are_refused():
    with pytest.raises(SelectionError, match="candidate names must be distinct; 'a' repeated"):
        select_model([Candidate("a", None, metrics(1, 1, 1)), Candidate("a", None, metrics(1, 1, 1))])
    with pytest.raises(SelectionError, match=r"candidate 'a': metrics\['accuracy'\] must be a number or None; got '0.9'"):
        Candidate("a", None, {"accuracy": "0.9"})
    with pytest.raises(SelectionError, match="accuracy must be a fraction between 0 and 1"):
        select_model([Candidate("a", None, metrics(93.0, 1, 1))], constraints=Constraints(min_accuracy=0.9))


# --- the report --------------------------------------------------------------------------------
def test_html_report_has_both_plots_the_chosen_model_and_escaped_names():
    candidates = variants() + [Candidate("<script>alert(1)</script>", None, metrics(0.5, 50.0, 9.0))]
    record = select_model(candidates, constraints=Constraints(min_accuracy=0.6, max_sci=8)).to_record()
    page = selection_html(record)
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 2
    assert 'data-x="sci" data-y="accuracy"' in page and 'data-x="latency_p95_ms" data-y="accuracy"' in page
    assert "Promote int8_dynamic" in page and "min_accuracy = 0.6" in page
    assert '<tr class="chosen"><td>int8_dynamic</td>' in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert not any(tag in page for tag in ("<img", "<link", "<script", 'src="', 'href="http'))  # nothing to fetch


def test_html_report_of_a_blocked_selection_says_so():
    record = select_model(variants(), constraints=Constraints(min_accuracy=0.99), on_none="block").to_record()
    page = selection_html(record)
    assert "Promotion blocked: no model selected." in page and "No candidate can be promoted" in page
    assert page.count("<svg") == 2  # the candidates are still plotted


# --- the benchmark script ----------------------------------------------------------------------
def test_bench_script_agrees_with_paretoset(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_selection.py"), "--sizes", "3000", "--repeats", "1",
         "--no-numba", "--json", str(out)],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Cross-check passed" in result.stdout
    figures = json.loads(out.read_text())
    assert [r["data"] for r in figures["rows"]] == ["uniform", "integers 0-9"]
    assert all(ref["same_answer"] for r in figures["rows"] for ref in r["references"].values())
