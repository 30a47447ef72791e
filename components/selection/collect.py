"""Turn the pipeline's per-candidate SCI evaluations into selection candidates, and write the
selection step's outputs. Kept apart from the selection core, which knows no file layout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Sequence

from .report import selection_html
from .select import Candidate, SelectionDecision


def candidates_from_evaluations(evaluations: Sequence[tuple[list[dict], str, list[dict]]]) -> list[Candidate]:
    """Candidates from ``(sci entries, variants directory, variant list)`` per trained model.

    Each variant becomes ``<candidate>/<variant>``; a variant that was not scored (not
    produced, or not eligible after quantization) stays in, marked ineligible with its reason,
    so the selection record accounts for every variant.
    """
    candidates = []
    for entries, variants_dir, variant_list in evaluations:
        files = {v["name"]: v.get("file") for v in variant_list}
        for entry in entries:
            name = f"{entry['candidate']}/{entry['variant']}"
            scored = entry["status"] == "scored"
            file = files.get(entry["variant"])
            metrics = {key: entry.get(key) for key in ("accuracy", "latency_p95_ms", "sci", "energy_per_inference_kwh",
                                                      "training_emissions_g", "accuracy_change_points", "size_bytes")}
            candidates.append(Candidate(
                name=name,
                model_uri=str(Path(variants_dir) / file) if file else None,
                metrics={k: v for k, v in metrics.items() if v is not None},
                eligible=scored,
                eligibility_reason=None if scored else f"not scored: {entry.get('reason')}",
                metadata={"candidate": entry["candidate"], "variant": entry["variant"],
                          "precision": entry.get("precision"), "sci_unit": entry.get("sci_unit")},
            ))
    return candidates


def write_selection_outputs(decision: SelectionDecision, *, record_path: str, html_path: str, model_path: str) -> dict:
    """Write the record (JSON) and the HTML report; copy the chosen model (when promoted) to
    ``model_path``. Return the model artifact's metadata."""
    record = decision.to_record()
    Path(record_path).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    Path(html_path).write_text(selection_html(record), encoding="utf-8")
    if decision.promote and decision.chosen is not None and decision.chosen.model_uri:
        shutil.copyfile(decision.chosen.model_uri, model_path)
        return {**decision.artifact_metadata(), "framework": "onnx", "format": "onnx", "promoted": True}
    Path(model_path).write_bytes(b"")  # nothing promoted: an empty artifact, marked so
    return {"promoted": False, "reason": record.get("reason")}


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))
