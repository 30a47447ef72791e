"""Run greenkfp pipelines with kfp's local runner (subprocesses in the current environment).

``SubprocessRunner(use_venv=False)`` runs each component in this Python environment, which
must have greenkfp installed: it plays the part the greenkfp image plays on a cluster.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import re
import time
import uuid
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from greenkfp.components.records import (
    GateDecisionRecord,
    SciReport,
    SelectionRecord,
    SustainabilityReport,
    TrainingRecord,
    VariantList,
    read_record,
)


@dataclass(frozen=True)
class GateRun:
    """What a local run of the carbon-gate pipeline decided, and which branch ran."""

    branch: str
    decision: GateDecisionRecord
    decision_path: str


@dataclass(frozen=True)
class CandidateRun:
    """One candidate's records from a local training run (one ParallelFor iteration)."""

    training: TrainingRecord
    variants: VariantList
    sci: SciReport
    artifact_dir: str

    @property
    def name(self) -> str:
        return self.training.name


@dataclass(frozen=True)
class TrainingRun:
    """The records of a local run of the carbon-aware training pipeline."""

    decision: GateDecisionRecord
    candidates: tuple[CandidateRun, ...]
    selection: SelectionRecord | None
    report: SustainabilityReport | None
    report_html: str | None
    selection_html: str | None
    run_dir: str
    #: the deploy-model step's folder (Kubernetes manifests, or NOT_DEPLOYED.md), when it ran
    serving_manifests: str | None = None

    @property
    def sci(self) -> SciReport:
        """Every variant's SCI entry, all candidates (one interleaved benchmark)."""
        return SciReport(tuple(e for c in self.candidates for e in c.sci))


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STARTED = re.compile(r"Executing task '([^']+)'")
_FINISHED = re.compile(r"Task '([^']+)' finished with status (\w+)")
_WAITING = re.compile(r"waiting (\S+) for the green window")
_ERROR_LINE = re.compile(r"^\s*((?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt)): (.*)$")


@dataclass
class TaskEvent:
    """A task starting or ending in a local run; ``error`` is the last exception line a failed
    task printed (its own error, not the runner's)."""

    task: str
    kind: str  # "started", "waiting" (status: how long) or "finished"
    status: str = ""
    seconds: float = 0.0
    error: str = ""


class ProgressLog(io.TextIOBase):
    """Where a local run's output goes (redirect stdout here): every line is written to the
    run's log, and kfp's task lines become :class:`TaskEvent` calls to ``on_event``, so a
    person sees each task start and end, and a failed task's own error, not 60 silent seconds."""

    def __init__(self, log: io.TextIOBase, on_event: Callable[[TaskEvent], None], clock=time.monotonic):
        self._log, self._on_event, self._clock = log, on_event, clock
        self._pending = ""
        self._started: dict[str, list[float]] = {}  # a ParallelFor runs tasks of one name side by side
        self._last_error: str = ""
        self.failed: TaskEvent | None = None

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._log.write(text)
        lines = (self._pending + text).split("\n")
        self._pending = lines.pop()
        for line in lines:
            self._line(_ANSI.sub("", line))
        return len(text)

    def flush(self) -> None:
        self._log.flush()

    def _line(self, line: str) -> None:
        error = _ERROR_LINE.match(line)
        if error:
            self._last_error = f"{error.group(1).rsplit('.', 1)[-1]}: {error.group(2).strip()}"
        if match := _WAITING.search(line):
            running = [name for name, starts in self._started.items() if starts]
            self._on_event(TaskEvent(running[-1] if running else "", "waiting", match.group(1)))
        elif match := _STARTED.search(line):
            self._started.setdefault(match.group(1), []).append(self._clock())
            self._last_error = ""
            self._on_event(TaskEvent(match.group(1), "started"))
        elif match := _FINISHED.search(line):
            task, status = match.groups()
            began = (self._started.get(task) or [self._clock()]).pop(0)
            event = TaskEvent(task, "finished", status, self._clock() - began,
                              self._last_error if status != "SUCCESS" else "")
            if status != "SUCCESS" and self.failed is None:
                self.failed = event
            self._on_event(event)


def new_run_directory(pipeline_root: str | Path) -> Path:
    """A directory of its own for one local run under ``pipeline_root``, named by the run's id
    (time and a random suffix): two runs at once never share a directory or a log."""
    run_id = f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    directory = Path(pipeline_root).resolve() / run_id
    directory.mkdir(parents=True)
    return directory


@contextlib.contextmanager
def _local_session(pipeline_root: str | Path):
    from kfp import local

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(Path(pipeline_root).resolve()))
    # kfp's runner indents output by swapping builtins.print per task, from several threads at
    # once: the swaps can interleave and leave every later print() in the process indented
    original_print = builtins.print
    try:
        with warnings.catch_warnings():
            # Expected here: the components name the greenkfp image, and this environment plays
            # its part; display names are UI-only.
            warnings.filterwarnings("ignore", message=".*non-Python base image", category=RuntimeWarning)
            warnings.filterwarnings("ignore", message=".*have no effect in the current local runner",
                                    category=UserWarning)
            yield
    finally:
        builtins.print = original_print


def run_carbon_gate_locally(arguments: dict[str, Any], pipeline_root: str | Path) -> GateRun:
    """Run the carbon-gate pipeline; return which branch ran and the gate's decision."""
    from .carbon_gate import build_carbon_gate_pipeline

    with _local_session(pipeline_root):
        task = build_carbon_gate_pipeline("vertex")(**arguments)
    decision = task.outputs["decision"]
    return GateRun(task.outputs["branch"], read_record(GateDecisionRecord, decision.path), decision.path)


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


def html_copy(artifact: str | Path) -> str | None:
    """A copy of a KFP ``HTML`` artifact named ``<artifact>.html`` beside it, its path (``None``
    when the artifact was not written). KFP writes the artifact without an extension, which the
    KFP UI shows as HTML; a browser opening the local file by its name would show the source."""
    import shutil

    artifact = Path(artifact)
    if not artifact.is_file():
        return None
    copy = artifact.with_name(artifact.name + ".html")
    shutil.copyfile(artifact, copy)
    return str(copy)


def _merged(cls, paths: list[Path]):
    return cls(tuple(entry for path in paths for entry in read_record(cls, path)))


def run_training_locally(arguments: dict[str, Any], pipeline_root: str | Path) -> TrainingRun:
    """Run the carbon-aware training pipeline; return the gate's decision and every candidate's,
    the selection's and the report's records, read from the run's directory."""
    from .training import PIPELINE_NAME, build_training_pipeline

    if isinstance(arguments.get("candidates"), list):  # the pipeline takes them as JSON text
        arguments = {**arguments, "candidates": json.dumps(arguments["candidates"])}
    run_dir = _run_and_find(build_training_pipeline, PIPELINE_NAME, arguments, pipeline_root)
    (decision,) = run_dir.glob("*/decision")
    # one interleaved benchmark of all candidates' variants (after the loop)
    merged = _merged(SciReport, sorted(run_dir.glob("**/sci_reports")))
    candidates = []
    for path in sorted(run_dir.glob("**/training_record")):
        iteration = path.parent.parent  # the candidate's later steps ran in the same ParallelFor iteration
        training = read_record(TrainingRecord, path)
        candidates.append(CandidateRun(
            training=training,
            variants=_merged(VariantList, sorted(iteration.glob("*/variant_list"))),
            sci=SciReport(tuple(e for e in merged if e.candidate == training.name)),
            artifact_dir=str(path.parent),
        ))
    selection = next(iter(run_dir.glob("**/selection_record")), None)
    report = next(iter(run_dir.glob("**/report_json")), None)
    manifests = next(iter(run_dir.glob("**/deploy-model/manifests")), None)
    return TrainingRun(
        decision=read_record(GateDecisionRecord, decision),
        candidates=tuple(candidates),
        selection=read_record(SelectionRecord, selection) if selection else None,
        report=read_record(SustainabilityReport, report) if report else None,
        report_html=html_copy(report.parent / "report") if report else None,
        selection_html=html_copy(selection.parent / "report") if selection else None,
        run_dir=str(run_dir),
        serving_manifests=str(manifests) if manifests else None,
    )


SUMMARY_SCHEMA = "greenkfp.run_summary/v1"


def _figure(value) -> dict | None:
    return None if value is None else {"estimate": value.estimate, "low": value.low, "high": value.high}


def _point(value: float | None) -> dict | None:
    return None if value is None else {"estimate": value, "low": value, "high": value}


def _accuracy_interval(accuracy: float | None, metrics: dict) -> dict | None:
    """The selection's Wilson interval of the accuracy (from the test rows), else the point."""
    low, high = metrics.get("accuracy_low"), metrics.get("accuracy_high")
    if accuracy is None:
        return None
    return {"estimate": accuracy, "low": low, "high": high} if low is not None and high is not None else \
        _point(accuracy)


def failed_summary(task: str, error: str | None, run_dir) -> dict:
    """The summary of a run that failed: ``status`` failed, the task and its error, no outcome."""
    return {"schema": SUMMARY_SCHEMA, "status": "failed", "failed_task": task, "error": error or "see the run's log",
            "selected": None, "baseline": None, "savings": None, "variants": [], "run_dir": str(run_dir)}


def run_summary(result: TrainingRun) -> dict:
    """The run's outcome for machines (``greenkfp run-local --summary-json``): the selected and
    baseline variants, the savings with 95 % intervals, and every variant's energy and SCI with
    intervals, MACs and weight bytes. The README explains each field."""
    report, selection = result.report, result.selection
    savings = {}
    for part in ("training", "inference", "total"):
        saving = report.saving(part) if report else None
        savings[part] = None if saving is None else {
            "g": _figure(saving.g), "percent": _figure(saving.percent), "significant": saving.significant,
            "basis": saving.basis}
    if savings["training"] is not None:
        savings["training"]["realized"] = report.training.realized
    metrics = {c.name: c.metrics for c in selection.candidates} if selection else {}
    variants = []
    for entry in result.sci:
        scored = entry.scored
        variants.append({
            "name": entry.name, "candidate": entry.candidate, "variant": entry.variant, "status": entry.status,
            "accuracy": entry.accuracy,
            "accuracy_interval": _accuracy_interval(entry.accuracy, metrics.get(entry.name, {})),
            "energy_per_inference_kwh": (_figure(entry.energy_per_inference_kwh_interval)
                                         or _point(entry.energy_per_inference_kwh)) if scored else None,
            "sci": (_figure(entry.sci_interval) or _point(entry.sci)) if scored else None,
            "sci_unit": entry.sci_unit, "energy_method": entry.energy_method if scored else None,
            "latency_p95_ms": (_figure(entry.latency_p95_ms_interval) or _point(entry.latency_p95_ms))
            if scored else None,
            "time_per_inference_ms": _figure(entry.time_per_inference_ms) if scored else None,
            "cpu_time_per_inference_ms": _figure(entry.cpu_time_per_inference_ms) if scored else None,
            "macs": entry.macs, "tree_comparisons": entry.tree_comparisons,
            "weight_bytes": entry.weight_bytes, "reason": None if scored else entry.reason,
        })
    baseline = report.inference.baseline.name if report and report.inference.baseline else (
        selection.baseline if selection else None)
    return {
        "schema": SUMMARY_SCHEMA,
        "status": "succeeded",
        "selected": selection.chosen if selection and selection.promote else None,
        "baseline": baseline,
        "savings": savings,
        "significance": dict(selection.significance or {}) if selection else {},
        "variants": variants,
        "units": {"savings_g": "g CO2eq over the expected inferences (inference) or the fits (training)",
                  "savings_percent": "% of the scheduled figure", "energy_per_inference_kwh": "kWh per inference",
                  "sci": "g CO2eq per functional unit (sci_unit)", "latency_p95_ms": "ms, single-row requests",
                  "time_per_inference_ms": "ms wall time per inference",
                  "cpu_time_per_inference_ms": "ms CPU time per inference",
                  "macs": "multiply-accumulates per row", "tree_comparisons": "most comparisons per row",
                  "weight_bytes": "bytes of weights", "accuracy": "fraction of the test split"},
        "intervals": "95 %: [low, high]; estimate == low == high marks a figure without an interval",
        "run_dir": result.run_dir,
    }
