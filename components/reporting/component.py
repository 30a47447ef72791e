"""KFP adapter for the sustainability report. Everything the body needs is imported inside it."""

# No `from __future__ import annotations`: kfp reads the real annotation objects.
from typing import List, NamedTuple

from kfp.dsl import HTML, Artifact, Input, Metrics, Output

from .._runtime import component


@component("matplotlib")
def sustainability_report(
    decision: Input[Artifact],
    training_records: Input[List[Artifact]],
    sci_reports: Input[Artifact],
    selection_record: Input[Artifact],
    report_json: Output[Artifact],
    metrics: Output[Metrics],
    report: Output[HTML],
    expected_lifetime_inferences: float = 100000000.0,
) -> NamedTuple("ReportOutputs", [("saved_g", float), ("saved_percent", float), ("saving_status", str),
                                 ("saved_percent_available", bool), ("unrealized_training_saved_g", float),
                                 ("unrealized_training_status", str)]):
    """Compare the run as scheduled against as optimized: training emissions at submission time
    against in the gate's window, and inference carbon over the expected volume for the baseline
    (the most accurate candidate, fp32) against the selected variant; the total saved and the
    accuracy given up.

    Args:
        decision: The carbon gate's record.
        training_records: Every candidate's training record, collected over the loop.
        sci_reports: Every candidate's SCI entries with intervals (from benchmark_variants).
        selection_record: The selection step's record.
        expected_lifetime_inferences: Inferences over the model's service life.

    Returns:
        report_json: The report record (JSON, schema greenkfp.sustainability_report/v1), with each
            saving as an estimate and its 95 % interval.
        metrics: Training, inference and total grams CO2eq, scheduled and optimized; saved; accuracy given up.
        report: The report as a self-contained HTML page: a headline (the chosen model and why, where
            and when training ran, the saving with its 95 % interval and as distance driven by an
            average new car), the savings by lever with their intervals, the table and the caveats.
        saved_g: Estimated grams CO2eq the run saved, as realised (what the headline says; negative:
            it emitted more): the total when training waited for the window (or ran at once because
            now was best); in plan mode (training did not wait) the model choice's saving only; a
            blocked promotion, training's saving. 0 unless saving_status is saved or increase.
        saved_percent: The same as a percentage of the run as scheduled (0 unless saving_status is
            saved or increase and saved_percent_available).
        saving_status: What saved_g is: saved, increase, no_significant_difference (its 95 % interval
            includes zero), unavailable (a part's figures are missing) or nothing_changed (a blocked
            promotion in plan mode).
        saved_percent_available: False when the run's carbon as scheduled is unknown.
        unrealized_training_saved_g: Plan mode: what waiting for the window would have saved on
            training, which did not happen and is not in saved_g (0 unless
            unrealized_training_status is saved or increase).
        unrealized_training_status: As saving_status for unrealized_training_saved_g; not_applicable
            outside plan mode.
    """
    from collections import namedtuple

    from greenkfp.components._files import write_atomic
    from greenkfp.components.records import (
        GateDecisionRecord,
        SciReport,
        SelectionRecord,
        TrainingRecord,
        read_record,
        write_record,
    )
    from greenkfp.components.reporting import build_sustainability_report, sustainability_html
    from greenkfp.components.reporting.sustainability import component_outputs

    built = build_sustainability_report(
        read_record(GateDecisionRecord, decision.path), [read_record(TrainingRecord, a.path) for a in training_records],
        list(read_record(SciReport, sci_reports.path)),
        read_record(SelectionRecord, selection_record.path),
        expected_lifetime_inferences=expected_lifetime_inferences,
    )
    write_record(built, report_json.path)
    report_json.metadata["schema"] = built.SCHEMA
    write_atomic(report.path, sustainability_html(built))
    for name, value in built.metrics().items():
        metrics.log_metric(name, value)
    figures = component_outputs(built)
    return namedtuple("ReportOutputs", list(figures))(**figures)
