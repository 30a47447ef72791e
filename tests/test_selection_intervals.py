"""Selection that respects noise: dominance beyond 95 % intervals, ties and their tie-break,
every rule on that basis, the energy guard and the significance against the baseline."""

import pytest

from greenkfp.components.selection import Candidate, Objective, interval_dominates, interval_front, select_model
from greenkfp.components.selection.intervals import tie_key

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
