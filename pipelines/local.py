"""Run greenkfp pipelines with kfp's local runner (subprocesses in the current environment)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any


def run_carbon_gate_locally(arguments: dict[str, Any], pipeline_root: str | Path) -> dict:
    """Run the carbon-gate pipeline locally; return ``{"branch", "record", "decision_path"}``.

    Uses ``SubprocessRunner(use_venv=False)``: components run in this Python environment,
    which must have greenkfp installed (the image's role on a cluster).
    """
    from kfp import local

    from .carbon_gate import build_carbon_gate_pipeline

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(Path(pipeline_root).resolve()))
    pipeline = build_carbon_gate_pipeline("vertex")
    with warnings.catch_warnings():
        # Expected here: the components name the greenkfp image, and this environment plays
        # its part (greenkfp installed); display names are UI-only.
        warnings.filterwarnings("ignore", message=".*non-Python base image", category=RuntimeWarning)
        warnings.filterwarnings("ignore", message=".*have no effect in the current local runner", category=UserWarning)
        task = pipeline(**arguments)
    decision = task.outputs["decision"]
    with open(decision.path, encoding="utf-8") as handle:
        record = json.load(handle)
    return {"branch": task.outputs["branch"], "record": record, "decision_path": decision.path}
