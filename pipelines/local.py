"""Run greenkfp pipelines with kfp's local runner (subprocesses in the current environment).

``SubprocessRunner(use_venv=False)`` runs each component in this Python environment, which
must have greenkfp installed: it plays the part the greenkfp image plays on a cluster.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path
from typing import Any, Callable


@contextlib.contextmanager
def _local_session(pipeline_root: str | Path):
    from kfp import local

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(Path(pipeline_root).resolve()))
    with warnings.catch_warnings():
        # Expected here: the components name the greenkfp image, and this environment plays
        # its part; display names are UI-only.
        warnings.filterwarnings("ignore", message=".*non-Python base image", category=RuntimeWarning)
        warnings.filterwarnings("ignore", message=".*have no effect in the current local runner", category=UserWarning)
        yield


def _read_json(path: Path) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def run_carbon_gate_locally(arguments: dict[str, Any], pipeline_root: str | Path) -> dict:
    """Run the carbon-gate pipeline; return ``{"branch", "record", "decision_path"}``."""
    from .carbon_gate import build_carbon_gate_pipeline

    with _local_session(pipeline_root):
        task = build_carbon_gate_pipeline("vertex")(**arguments)
    decision = task.outputs["decision"]
    return {"branch": task.outputs["branch"], "record": _read_json(decision.path), "decision_path": decision.path}


def _new_run_dir(pipeline_root: Path, before: set[Path], name: str) -> Path:
    created = [p for p in pipeline_root.glob(f"{name}-*") if p.is_dir() and p not in before]
    if len(created) != 1:
        raise RuntimeError(f"expected one new run directory for {name} under {pipeline_root}, found {created}")
    return created[0]


def _run_and_find(build: Callable, name: str, arguments: dict, pipeline_root: str | Path) -> Path:
    root = Path(pipeline_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    before = set(root.glob(f"{name}-*"))
    with _local_session(root):
        build("vertex")(**arguments)
    return _new_run_dir(root, before, name)


def run_training_locally(arguments: dict[str, Any], pipeline_root: str | Path) -> dict:
    """Run the carbon-aware training pipeline; return the gate's record and every training
    record, read from the run's directory: ``{"record", "trainings", "run_dir"}``."""
    from .training import PIPELINE_NAME, build_training_pipeline

    if isinstance(arguments.get("candidates"), list):  # the pipeline takes them as JSON text
        arguments = {**arguments, "candidates": json.dumps(arguments["candidates"])}
    run_dir = _run_and_find(build_training_pipeline, PIPELINE_NAME, arguments, pipeline_root)
    (decision,) = run_dir.glob("*/decision")
    trainings = []
    for path in sorted(run_dir.glob("**/training_record")):
        record = _read_json(path)
        record["artifact_dir"] = str(path.parent)
        # the candidate's later steps ran in the same ParallelFor iteration
        record["variants"] = [v for p in sorted(path.parent.parent.glob("*/variant_list")) for v in _read_json(p)]
        record["sci"] = [r for p in sorted(path.parent.parent.glob("*/sci_reports")) for r in _read_json(p)]
        trainings.append(record)
    selection = next(iter(run_dir.glob("**/selection_record")), None)
    report = next(iter(run_dir.glob("**/report_json")), None)
    return {
        "record": _read_json(decision),
        "trainings": trainings,
        "selection": _read_json(selection) if selection else None,
        "report": _read_json(report) if report else None,
        "report_html": str(report.parent / "report") if report else None,
        "selection_html": str(selection.parent / "report") if selection else None,
        "run_dir": str(run_dir),
    }
