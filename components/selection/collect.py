"""Turn the pipeline's per-candidate SCI evaluations into selection candidates, and write the
selection step's outputs. Kept apart from the selection core, which knows no file layout."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .._files import write_atomic
from ..records import SciReport, VariantList, write_record
from ..stats import Estimate, wilson_interval
from .report import selection_html
from .select import Candidate, SelectionDecision


def candidates_from_evaluations(evaluations: Sequence[tuple[SciReport, str, VariantList]]) -> list[Candidate]:
    """Candidates from ``(sci entries, variants directory, variant list)`` per trained model.

    Each variant becomes ``<candidate>/<variant>``; a variant that was not scored (not
    produced, or not eligible after quantization) stays in, marked ineligible with its reason,
    so the selection record accounts for every variant.

    Intervals: SCI, latency and energy carry the benchmark's (``<name>_low``/``<name>_high``);
    accuracy carries its 95 % Wilson interval from the variant's test rows
    (:func:`accuracy_interval`; exact when the row count is unknown). ``macs`` and
    ``tree_comparisons`` go in for the tie-break's operation count.
    """
    candidates = []
    for entries, variants_dir, variant_list in evaluations:
        for entry in entries:
            variant = variant_list.get(entry.variant)
            file = variant.file if variant else None
            metrics = {key: getattr(entry, key) for key in ("accuracy", "latency_p95_ms", "sci", "energy_per_inference_kwh",
                                                           "training_emissions_g", "accuracy_change_points", "size_bytes",
                                                           "macs", "tree_comparisons", "weight_bytes")}
            accuracy = accuracy_interval(entry.accuracy, variant.test_rows if variant else None)
            for key, figure in (("sci", entry.sci_interval), ("latency_p95_ms", entry.latency_p95_ms_interval),
                                ("energy_per_inference_kwh", entry.energy_per_inference_kwh_interval),
                                ("accuracy", accuracy)):
                if figure is not None:
                    metrics[f"{key}_low"], metrics[f"{key}_high"] = figure.low, figure.high
            candidates.append(Candidate(
                name=entry.name,
                model_uri=str(Path(variants_dir) / file) if file else None,
                metrics={k: v for k, v in metrics.items() if v is not None},
                eligible=entry.scored,
                eligibility_reason=None if entry.scored else f"not scored: {entry.reason}",
                metadata={"candidate": entry.candidate, "variant": entry.variant,
                          "precision": entry.precision, "sci_unit": entry.sci_unit},
            ))
    return candidates


def accuracy_interval(accuracy: float | None, test_rows: int | None) -> Estimate | None:
    """The 95 % Wilson interval of an accuracy measured on ``test_rows`` rows (correct rows =
    ``round(accuracy x test_rows)``), or None (an exact figure) when either is unknown.

    Raises:
        ValueError: ``accuracy`` is not a fraction that ``test_rows`` rows can give (the message
            names both).
    """
    if accuracy is None or test_rows is None or test_rows == 0:
        return None
    correct = accuracy * test_rows
    if not (0.0 <= accuracy <= 1.0) or abs(correct - round(correct)) > 1e-6 * max(1.0, test_rows):
        raise ValueError(f"accuracy {accuracy!r} is not a share of correct rows out of test_rows {test_rows!r}")
    return wilson_interval(int(round(correct)), int(test_rows))


def evaluations_from_report(report: SciReport, variant_dirs: Sequence[str],
                            variant_lists: Sequence[VariantList]) -> list[tuple[SciReport, str, VariantList]]:
    """Split one report of all candidates (the interleaved benchmark's) into the per-candidate
    evaluations :func:`candidates_from_evaluations` takes, in the pipeline's order: the
    report's candidates appear in the order of the collected variant directories and lists."""
    parts = report.by_candidate()
    if len(parts) != len(variant_dirs) or len(parts) != len(variant_lists):
        raise ValueError(f"the SCI report holds {len(parts)} candidate(s) but {len(variant_dirs)} variant "
                         f"directories and {len(variant_lists)} variant lists were given")
    return list(zip(parts, variant_dirs, variant_lists))


def write_selection_outputs(decision: SelectionDecision, *, record_path: str, html_path: str, model_path: str) -> dict:
    """Write the record (JSON) and the HTML report; copy the chosen model (when promoted) to
    ``model_path``. Return the model artifact's metadata."""
    record = decision.to_record()
    write_record(record, record_path)
    write_atomic(html_path, selection_html(record))
    if decision.promote and decision.chosen is not None and decision.chosen.model_uri:
        write_atomic(model_path, Path(decision.chosen.model_uri).read_bytes())
        return {**decision.artifact_metadata(), "framework": "onnx", "format": "onnx", "promoted": True}
    write_atomic(model_path, b"")  # nothing promoted: an empty artifact, marked so
    return {"promoted": False, "reason": record.reason}
