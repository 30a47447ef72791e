"""KFP adapter for Pareto model selection. Everything the body needs is imported inside it."""

# No `from __future__ import annotations`: kfp reads the real annotation objects.
from typing import List, NamedTuple

from kfp.dsl import HTML, Artifact, Input, Metrics, Model, Output

from .._runtime import component


@component("matplotlib")
def select_pareto_model(
    sci_reports: Input[Artifact],
    variant_lists: Input[List[Artifact]],
    variants: Input[List[Model]],
    selected: Output[Model],
    selection_record: Output[Artifact],
    metrics: Output[Metrics],
    report: Output[HTML],
    selection_rule: str = "knee",
    selection_weights: dict = {},
    selection_objectives: list = [],
    selection_constraints: dict = {"max_accuracy_drop_points": 1.0},
    on_no_candidate: str = "fail",
) -> NamedTuple("SelectionOutputs", [("promote", bool), ("chosen", str)]):
    """Pick the model variant that balances accuracy, latency and SCI on the Pareto front, respecting noise.

    Every scored variant of every candidate is a point; dominance holds only beyond the 95 %
    intervals (accuracy's is the Wilson interval from the test rows), ties go to fewer
    operations per inference (MACs + tree comparisons), a smaller model, higher accuracy; the
    choice is never significantly worse on energy than the baseline (most accurate fp32) unless
    the weights ask; ineligible variants and those breaking a constraint (judged on point
    estimates; the record marks decisions within the noise) are excluded with the reason, the
    non-dominated rest form the front, and the rule picks one. If nothing qualifies, promotion is blocked: the task fails with the reason
    (on_no_candidate="fail"), or returns promote=False (on_no_candidate="block").

    Args:
        sci_reports: Every candidate's SCI entries with their intervals, from benchmark_variants
            (one interleaved benchmark of all variants), candidates in the loop's order.
        variant_lists: Each candidate's variant list (from convert_and_quantize), same order.
        variants: Each candidate's variants directory, same order.
        selection_rule: knee (default), chebyshev, weighted_sum or epsilon_constraint.
        selection_weights: Objective weights for chebyshev and weighted_sum, e.g. {"sci": 2, "accuracy": 1}.
        selection_objectives: "name:max|min" strings; empty means accuracy:max, latency_p95_ms:min, sci:min.
        selection_constraints: Any of min_accuracy (0-1), max_accuracy_drop_points, max_latency_ms, max_sci.
        on_no_candidate: fail or block, when no candidate qualifies.

    Returns:
        selected: The promoted ONNX model (empty, with promoted=False in its metadata, when none).
        selection_record: The selection record (JSON, schema greenkfp.selection/v1): the choice,
            the front, every exclusion and why.
        metrics: promote, candidate and front counts, and the chosen model's objectives.
        report: The selection as an HTML page with the trade-off plots and the candidates' table.
        promote: Whether a model was selected for promotion.
        chosen: "<candidate>/<variant>" of the selected model ("" when none).
    """
    from collections import namedtuple

    from greenkfp.components.records import SciReport, VariantList, read_record
    from greenkfp.components.selection import DEFAULT_OBJECTIVES, Constraints, select_model
    from greenkfp.components.selection.collect import (
        candidates_from_evaluations,
        evaluations_from_report,
        write_selection_outputs,
    )

    evaluations = evaluations_from_report(read_record(SciReport, sci_reports.path), [v.path for v in variants],
                                          [read_record(VariantList, vl.path) for vl in variant_lists])
    decision = select_model(candidates_from_evaluations(evaluations), objectives=selection_objectives or DEFAULT_OBJECTIVES,
                            constraints=Constraints(**selection_constraints), rule=selection_rule,
                            weights=selection_weights or None, on_none=on_no_candidate)
    selected.metadata.update(write_selection_outputs(decision, record_path=selection_record.path,
                                                     html_path=report.path, model_path=selected.path))
    selection_record.metadata["schema"] = "greenkfp.selection/v1"
    for name, value in decision.metrics().items():
        metrics.log_metric(name, value)
    outputs = namedtuple("SelectionOutputs", ["promote", "chosen"])
    return outputs(decision.promote, decision.chosen.name if decision.chosen else "")
