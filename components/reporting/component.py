"""KFP adapter for the sustainability report. Everything the body needs is imported inside it."""

# No `from __future__ import annotations`: kfp reads the real annotation objects.
from typing import List, NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Input, Metrics, Output

from .._runtime import component_options


@dsl.component(**component_options("matplotlib", subpackages=("reporting", "energy")))
def sustainability_report(
    decision: Input[Artifact],
    training_records: Input[List[Artifact]],
    sci_reports: Input[List[Artifact]],
    selection_record: Input[Artifact],
    report_json: Output[Artifact],
    metrics: Output[Metrics],
    report: Output[HTML],
    expected_lifetime_inferences: float = 100000000.0,
) -> NamedTuple("ReportOutputs", [("saved_g", float), ("saved_percent", float)]):
    """Compare the run as scheduled against as optimized: training emissions at submission time
    against in the gate's window, and inference carbon over the expected volume for the baseline
    (the most accurate candidate, fp32) against the selected variant; the total saved and the
    accuracy given up.

    Args:
        decision: The carbon gate's record.
        training_records: Every candidate's training record, collected over the loop.
        sci_reports: Every candidate's SCI entries, same order.
        selection_record: The selection step's record.
        expected_lifetime_inferences: Inferences over the model's service life.

    Returns:
        saved_g: Estimated grams CO2eq saved (-1 when a part is unavailable).
        saved_percent: The same as a percentage of the scheduled total (-1 when unavailable).
    """
    import json
    from collections import namedtuple

    from greenkfp.components._files import write_atomic
    from greenkfp.components.reporting import build_sustainability_report, sustainability_html, sustainability_metrics

    def load(path):
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)

    built = build_sustainability_report(
        load(decision.path), [load(a.path) for a in training_records],
        [entry for a in sci_reports for entry in load(a.path)], load(selection_record.path),
        expected_lifetime_inferences=expected_lifetime_inferences,
    )
    write_atomic(report_json.path, json.dumps(built, indent=2, sort_keys=True))
    write_atomic(report.path, sustainability_html(built))
    for name, value in sustainability_metrics(built).items():
        metrics.log_metric(name, value)
    total = built["total"]
    outputs = namedtuple("ReportOutputs", ["saved_g", "saved_percent"])
    return outputs(total["saved_g"] if total["saved_g"] is not None else -1.0,
                   total["saved_percent"] if total["saved_percent"] is not None else -1.0)
