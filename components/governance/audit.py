"""The baseline audit of all ML pipelines (``greenkfp audit``): inventory, reconciliation with the
cloud's own carbon accounting, the quadrants, and the baseline the reduction target is measured
against.

Core code (no kfp import): the CLI (:mod:`greenkfp.pipelines.audit_cli`) asks the KFP API with
``kfp.Client`` and hands the runs over as the v2beta1 JSON (``V2beta1Run.to_dict()``).

Sources, and what each gives:

* **the ledger**: every settled run (team, pipeline, month, actual grams, estimate) and its
  :class:`~greenkfp.components.records.RunFacts` (energy per run and its method, inference
  volume); the teams' budget tiers;
* **the KFP API** (optional): every run, settled or not: its pipeline (``pipelineInfo.name``),
  the pod labels all its steps carry (kfp-kubernetes config), its parameters (``energy_kwh``
  declares an energy when the ledger has none), its state, when it was created and which
  steps ran (``run_details.task_details``). KFP's v2beta1 run answers name the artifacts a
  step wrote by id only: the metric values themselves live in ML Metadata, so a run's figures
  come from its settlement in the ledger (joined by run id);
* **cloud exports** (optional, :mod:`.cloud_footprint`): GCP Carbon Footprint and AWS CCFT rows.

Months: the audited months are ``first`` to ``last`` (default: every month with settled runs);
a run counts in the month its budget was charged (the ledger's period) or, for a KFP run the
ledger does not know, the month it was created.

**Mapping pipelines to cloud projects** (for the reconciliation), first found wins:

1. the pod label ``greenkfp.io/cloud-project`` on the pipeline's runs (``--project-label``);
2. the project map's ``pipelines`` entry ``"<team>/<pipeline>"``, then ``"<pipeline>"``;
3. the project map's ``teams`` entry for the pipeline's team;

else the pipeline is unmapped (its grams are listed apart). The project map is a JSON file
``{"teams": {"research": "acme-research"}, "pipelines": {"production/recsys-nightly": "acme-prod"}}``
whose values are GCP ``project.id`` or AWS ``usage_account_id`` values.

**Reconciliation**, per cloud project and month: the cloud's location-based figure (GCP scope 2
location-based; AWS location-based total) against the settled grams of the pipelines mapped to
it; the unexplained remainder (cloud - pipelines) is the rest of the project's usage (other
workloads, idle capacity, storage, networking) and the error of both estimates. A negative
remainder says the pipelines' figures exceed the cloud's: the mapping or the estimates are off.

**Quadrants** (the budgets are built on them):

* *business criticality*: **critical** when the pipeline's ``greenkfp.io/priority`` label is one
  of ``critical_priorities`` (default ``production-critical``, the label the budget policy
  knows); **non-critical** when it has another value; without the label, from its team's
  budget tier: soft (production-critical budgets) is critical, hard is non-critical, no budget
  non-critical;
* *resource intensity*: energy per month = mean energy per run x runs per month. **Intensive**
  when the pipeline is among those that, largest first, make ``intensive_share`` % (default 80)
  of the audited energy, or (when ``intensive_kwh_per_month`` is given) at or above that; or
  when its model serves at least ``high_inference_volume`` inferences (default 1e8: the
  inference it drives outweighs its training); **light** otherwise; **unknown** without an
  energy figure (the quadrant is then ``unclassified``).

The quadrants read ``critical / intensive`` (soft budget, levers first), ``critical / light``
(soft budget, monitor), ``non-critical / intensive`` (hard budget, the largest cuts),
``non-critical / light`` (hard budget, low priority).

**The baseline**: each team's settled grams per audited month, their mean, its runs and tier;
the target: ``reduction_percent`` (default 30) below that mean by ``target_by`` (default 12
months after the last audited month).
"""

from __future__ import annotations

import io
import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .._checks import iso
from .._files import SafeCsvWriter
from .._messages import markdown_text as _md
from ..records import AuditBaseline
from .cloud_footprint import CloudFootprintRow
from .errors import BudgetError
from .kfp_api import KfpApiError, parse_submission
from .ledger import check_period

__all__ = ["AUDIT_FILES", "AuditError", "AuditResult", "AuditSettings", "KfpRun", "PipelineInventory",
           "ProjectMap", "Reconciliation", "kfp_runs_from_api", "run_audit", "write_audit"]

#: What ``greenkfp audit`` writes into its output folder.
AUDIT_FILES = ("baseline.json", "inventory.json", "inventory.csv", "reconciliation.csv", "audit.md")
PRIORITY_LABEL = "greenkfp.io/priority"  # the label the bundled budget policy reads
PROJECT_LABEL = "greenkfp.io/cloud-project"
TEAM_LABEL = "greenkfp.io/team"
QUADRANT_ADVICE = {
    "critical / intensive": "soft budget; the levers (time shifting, quantization, autoscaling) first",
    "critical / light": "soft budget; monitor",
    "non-critical / intensive": "hard budget; where the largest cuts are",
    "non-critical / light": "hard budget; low priority",
    "unclassified": "no energy figure: settle its runs with run facts, or declare energy_kwh",
}
#: The greenkfp steps a KFP run's task details may show (the pipelines' task names).
GREENKFP_STEPS = ("carbon-budget-gate", "carbon-forecast-gate", "sustainability-report", "settle-carbon-budget",
                  "select-pareto-model", "evaluate-sci", "benchmark-variants")


class AuditError(ValueError):
    """Audit input that cannot be used (one line naming the option, file or field)."""


def _month_shift(month: str, months: int) -> str:
    index = int(month[:4]) * 12 + int(month[5:]) - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _months(first: str, last: str) -> list[str]:
    out, month = [], first
    while month <= last:
        out.append(month)
        month = _month_shift(month, 1)
    return out


def _period(option: str, value: Any) -> str:
    try:
        return check_period(value)
    except BudgetError as exc:
        raise AuditError(f"{option} {exc.problem}, got {value!r}") from None


@dataclass(frozen=True)
class AuditSettings:
    """The audit's choices (see the module's docstring), checked up front."""

    first: str | None = None
    last: str | None = None
    reduction_percent: float = 30.0
    target_by: str | None = None
    intensive_share: float = 80.0
    intensive_kwh_per_month: float | None = None
    high_inference_volume: float = 1e8
    critical_priorities: tuple[str, ...] = ("production-critical",)
    project_label: str = PROJECT_LABEL

    def __post_init__(self):
        for option, value in (("--from", self.first), ("--to", self.last), ("--target-by", self.target_by)):
            if value is not None:
                _period(option, value)
        if self.first and self.last and self.first > self.last:
            raise AuditError(f"--to must not be before --from ({self.first}), got {self.last!r}")
        for option, value, low, high in (("--reduction-percent", self.reduction_percent, 0, 100),
                                         ("--intensive-share", self.intensive_share, 0, 100)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low < value <= high):
                raise AuditError(f"{option} must be a number > {low} and <= {high}, got {value!r}")
        for option, value in (("--intensive-kwh-per-month", self.intensive_kwh_per_month),
                              ("--high-inference-volume", self.high_inference_volume)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value) or value <= 0):
                raise AuditError(f"{option} must be a number > 0, got {value!r}")
        if not self.critical_priorities or not all(isinstance(p, str) and p.strip() for p in self.critical_priorities):
            raise AuditError(f"--critical-priorities must name at least one label value, got "
                             f"{','.join(self.critical_priorities)!r}")


@dataclass(frozen=True)
class ProjectMap:
    """Which cloud project (GCP ``project.id``, AWS ``usage_account_id``) a team's or a
    pipeline's runs use (see the module's docstring)."""

    teams: Mapping[str, str] = field(default_factory=dict)
    pipelines: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> ProjectMap:
        """The map in a JSON file ``{"teams": {...}, "pipelines": {...}}``; errors name the file and the key."""
        shown = os.fspath(path)
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise AuditError(f"--project-map {shown}: cannot be read: {exc.strerror or exc}") from None
        except (ValueError, RecursionError) as exc:
            raise AuditError(f"--project-map {shown}: is not JSON ({str(exc)[:80]})") from None
        if not isinstance(data, dict) or set(data) - {"teams", "pipelines"}:
            raise AuditError(f"--project-map {shown}: must be a JSON object with \"teams\" and/or \"pipelines\", got "
                             f"keys {sorted(data) if isinstance(data, dict) else type(data).__name__}")
        parts = {}
        for key in ("teams", "pipelines"):
            part = data.get(key, {})
            if not isinstance(part, dict):
                raise AuditError(f"--project-map {shown}: {key} must be an object of names to projects")
            for name, project in part.items():
                if not isinstance(project, str) or not project.strip() or len(project) > 256:
                    raise AuditError(f"--project-map {shown}: {key}[{name!r}] must be a project id (a text of 1 to "
                                     f"256 characters), got {project!r}")
            parts[key] = {str(k): v.strip() for k, v in part.items()}
        return cls(**parts)

    def project(self, team: str, pipeline: str) -> tuple[str | None, str]:
        """(project, how it was found) of a team's pipeline from the map."""
        for key in (f"{team}/{pipeline}", pipeline):
            if key in self.pipelines:
                return self.pipelines[key], f"project map: pipelines[{key!r}]"
        if team in self.teams:
            return self.teams[team], f"project map: teams[{team!r}]"
        return None, "unmapped"


@dataclass(frozen=True)
class KfpRun:
    """What the audit reads of one KFP v2beta1 run."""

    run_id: str
    pipeline: str
    display_name: str
    created_at: datetime | None
    state: str
    labels: Mapping[str, str]
    parameters: Mapping[str, Any]
    steps: tuple[str, ...]

    @property
    def month(self) -> str | None:
        return None if self.created_at is None else self.created_at.strftime("%Y-%m")

    def energy_kwh(self) -> float | None:
        """The run's declared ``energy_kwh`` parameter (> 0), if any."""
        value = self.parameters.get("energy_kwh")
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            return None
        return float(value)


def _moment(value: Any, run_id: str) -> datetime | None:
    """When a run was created (None when the answer does not say); a value that is no timestamp
    is an error naming the run, the field and the value."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    moment = None
    if isinstance(value, str) and value.strip():
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            moment = None
    if moment is None:
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        run = repr(run_id) if len(repr(run_id)) <= 80 else repr(run_id)[:77] + "..."
        raise AuditError(f"the KFP API answered run {run} with field created_at {shown}, not an RFC 3339 timestamp "
                         "such as 2026-08-03T10:00:00Z")
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def kfp_runs_from_api(runs: Iterable[Mapping[str, Any]]) -> list[KfpRun]:
    """The runs of KFP v2beta1 answers (``V2beta1Run.to_dict()`` or the JSON): pipeline name and
    labels through :func:`~.kfp_api.parse_submission` (as the gatekeeper reads a submission).

    Raises:
        AuditError: a run without a ``run_id`` (the answer is not a v2beta1 run list), or with a
            ``created_at`` that is no timestamp.
    """
    out = []
    for index, run in enumerate(runs):
        if not isinstance(run, Mapping) or not isinstance(run.get("run_id"), str) or not run["run_id"]:
            raise AuditError(f"the KFP API answered a run without a run_id (runs[{index}]): is --kfp-host a KFP v2 "
                             "API endpoint?")
        try:
            described = parse_submission({**run, "runtime_config": run.get("runtime_config") or {}}, "run")
            pipeline, labels, parameters = described.pipeline, dict(described.labels), dict(described.parameters)
        except KfpApiError:  # neither spec nor version reference: a run the audit can still count
            pipeline, labels, parameters = "unnamed-pipeline", {}, {}
        details = run.get("run_details") or {}
        tasks = details.get("task_details") or [] if isinstance(details, Mapping) else []
        steps = tuple(str(t.get("display_name")) for t in tasks if isinstance(t, Mapping) and t.get("display_name"))
        state = run.get("state")
        out.append(KfpRun(run_id=run["run_id"], pipeline=pipeline, display_name=str(run.get("display_name") or ""),
                          created_at=_moment(run.get("created_at"), run["run_id"]), state=str(state or "UNKNOWN"), labels=labels,
                          parameters=parameters, steps=steps))
    return out


@dataclass
class PipelineInventory:
    """One pipeline of one team in the audited months (the inventory's row)."""

    team: str
    pipeline: str
    tier: str | None = None
    labels: dict = field(default_factory=dict)
    runs_by_month: dict = field(default_factory=dict)
    settled_runs: int = 0
    kfp_runs: int = 0
    unsettled_kfp_runs: int = 0
    settled_g: float = 0.0
    energy_kwh: float = 0.0
    energy_runs: int = 0
    energy_methods: set = field(default_factory=set)
    inference_sum: float = 0.0
    inference_runs: int = 0
    steps: set = field(default_factory=set)
    project: str | None = None
    project_basis: str = "unmapped"
    criticality: str = "non-critical"
    criticality_basis: str = ""
    intensity: str = "unknown"
    intensity_basis: str = ""
    months: int = 1

    @property
    def runs(self) -> int:
        return sum(self.runs_by_month.values())

    @property
    def runs_per_month(self) -> float:
        return self.runs / self.months

    @property
    def energy_per_run_kwh(self) -> float | None:
        return self.energy_kwh / self.energy_runs if self.energy_runs else None

    @property
    def energy_method(self) -> str | None:
        methods = self.energy_methods
        if not methods:
            return None
        if methods == {"measured"}:
            return "measured"
        return "modeled" if "modeled" in methods or "measured" in methods else "declared"

    @property
    def g_per_run(self) -> float | None:
        return self.settled_g / self.settled_runs if self.settled_runs else None

    @property
    def inference_volume(self) -> float | None:
        return self.inference_sum / self.inference_runs if self.inference_runs else None

    @property
    def kwh_per_month(self) -> float | None:
        per_run = self.energy_per_run_kwh
        return None if per_run is None else per_run * self.runs_per_month

    @property
    def quadrant(self) -> str:
        return "unclassified" if self.intensity == "unknown" else f"{self.criticality} / {self.intensity}"

    def to_dict(self) -> dict:
        return {
            "team": self.team, "pipeline": self.pipeline, "tier": self.tier, "labels": dict(sorted(self.labels.items())),
            "runs": self.runs, "runs_by_month": dict(sorted(self.runs_by_month.items())),
            "runs_per_month": self.runs_per_month, "settled_runs": self.settled_runs, "kfp_runs": self.kfp_runs,
            "unsettled_kfp_runs": self.unsettled_kfp_runs, "mean_energy_kwh_per_run": self.energy_per_run_kwh,
            "energy_method": self.energy_method, "mean_g_per_run": self.g_per_run,
            "inference_volume": self.inference_volume, "kwh_per_month": self.kwh_per_month,
            "project": self.project, "project_basis": self.project_basis, "criticality": self.criticality,
            "criticality_basis": self.criticality_basis, "intensity": self.intensity,
            "intensity_basis": self.intensity_basis, "quadrant": self.quadrant,
            "advice": QUADRANT_ADVICE[self.quadrant if self.quadrant in QUADRANT_ADVICE else "unclassified"],
            "greenkfp_steps": sorted(self.steps),
        }


@dataclass(frozen=True)
class Reconciliation:
    """One cloud project's month: the cloud's location-based kg against the pipelines' kg."""

    provider: str
    project: str
    month: str
    cloud_location_kg: float | None
    pipeline_kg: float
    pipelines: tuple[str, ...]
    cloud_rows: int
    note: str = ""

    @property
    def unexplained_kg(self) -> float | None:
        return None if self.cloud_location_kg is None else self.cloud_location_kg - self.pipeline_kg

    @property
    def unexplained_percent(self) -> float | None:
        if self.cloud_location_kg is None or self.cloud_location_kg == 0:
            return None
        return 100.0 * self.unexplained_kg / self.cloud_location_kg


@dataclass(frozen=True)
class AuditResult:
    """What :func:`run_audit` found: the baseline record, the inventory, the reconciliation."""

    baseline: AuditBaseline
    inventory: tuple[PipelineInventory, ...]
    reconciliation: tuple[Reconciliation, ...]
    settings: AuditSettings
    kfp_runs: int = 0
    kfp_unknown_to_ledger: int = 0
    notes: tuple[str, ...] = ()

    def inventory_json(self) -> str:
        return json.dumps({
            "schema": "greenkfp.audit_inventory/v1", "generated_at": self.baseline.generated_at,
            "months": list(self.baseline.months),
            "settings": {"intensive_share": self.settings.intensive_share,
                         "intensive_kwh_per_month": self.settings.intensive_kwh_per_month,
                         "high_inference_volume": self.settings.high_inference_volume,
                         "critical_priorities": list(self.settings.critical_priorities),
                         "priority_label": PRIORITY_LABEL, "project_label": self.settings.project_label},
            "pipelines": [p.to_dict() for p in self.inventory],
            "units": {"energy": "kWh", "emissions": "g CO2eq"}, "notes": list(self.notes),
        }, indent=2, sort_keys=False, default=str) + "\n"

    def inventory_csv(self) -> str:
        columns = ("team", "pipeline", "tier", "labels", "project", "runs", "runs_per_month", "settled_runs",
                   "kfp_runs", "mean_energy_kwh_per_run", "energy_method", "mean_g_per_run", "inference_volume",
                   "kwh_per_month", "criticality", "intensity", "quadrant")
        buffer = io.StringIO()
        writer = SafeCsvWriter(buffer, lineterminator="\n")
        writer.writerow(columns)
        for p in self.inventory:
            row = p.to_dict()
            row["labels"] = ";".join(f"{k}={v}" for k, v in sorted(p.labels.items()))
            writer.writerow([_cell(row[c]) for c in columns])
        return buffer.getvalue()

    def reconciliation_csv(self) -> str:
        buffer = io.StringIO()
        writer = SafeCsvWriter(buffer, lineterminator="\n")
        writer.writerow(("provider", "project", "month", "cloud_scope2_location_based_kg", "pipeline_kg",
                         "unexplained_kg", "unexplained_percent", "pipelines", "cloud_rows", "note"))
        for r in self.reconciliation:
            writer.writerow((r.provider, r.project, r.month, _cell(r.cloud_location_kg), _cell(r.pipeline_kg),
                             _cell(r.unexplained_kg), _cell(r.unexplained_percent), ";".join(r.pipelines),
                             r.cloud_rows, r.note))
        return buffer.getvalue()

    def markdown(self) -> str:
        return _markdown(self)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e6 else f"{value:.1f}"
    return str(value)


# --------------------------------------------------------------------------- the audit


def _tier(ledger, team: str, months: Sequence[str]) -> str | None:
    for month in reversed(months):
        try:
            return ledger.status(team, month).tier
        except BudgetError:
            continue
    return None


def run_audit(ledger, settings: AuditSettings | None = None, *, kfp_runs: Sequence[KfpRun] = (),
              kfp_host: str | None = None, cloud_rows: Sequence[CloudFootprintRow] = (),
              cloud_sources: Sequence[tuple[str, str, int]] = (), project_map: ProjectMap | None = None,
              now: datetime | None = None) -> AuditResult:
    """Audit ``ledger`` (a :class:`~greenkfp.components.governance.ledger.Ledger`) with the KFP
    runs and cloud rows given; ``cloud_sources``: ``(kind, path, rows)`` of each export read.

    Raises:
        AuditError: no settled runs to audit (the message says which months the ledger has).
    """
    settings = settings or AuditSettings()
    project_map = project_map or ProjectMap()
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    settled = list(ledger.settled_runs(read_facts=True))
    if not settled:
        raise AuditError("no runs in the ledger: nothing to audit")
    periods = sorted({run.period for run in settled})
    first, last = settings.first or periods[0], settings.last or periods[-1]
    months = _months(first, last)
    if settings.target_by is not None and settings.target_by <= last:
        raise AuditError(f"--target-by must be a month after the last audited month {last}, got "
                         f"{settings.target_by!r}")
    runs = [run for run in settled if first <= run.period <= last]
    if not runs:
        raise AuditError(f"no settled runs in the ledger in {first} to {last}: nothing to audit (its runs are from "
                         f"{periods[0]} to {periods[-1]})")
    inventory: dict[tuple[str, str], PipelineInventory] = {}

    def row(team: str, pipeline: str) -> PipelineInventory:
        key = (team, pipeline)
        if key not in inventory:
            inventory[key] = PipelineInventory(team=team, pipeline=pipeline, months=len(months))
        return inventory[key]

    settled_ids = {}
    for run in runs:
        item = row(run.team, run.pipeline or "(unnamed)")
        settled_ids[run.run_id] = (run.team, item.pipeline)
        item.runs_by_month[run.period] = item.runs_by_month.get(run.period, 0) + 1
        item.settled_runs += 1
        item.settled_g += run.actual_g
        facts = run.facts
        if facts is not None and facts.energy_kwh is not None:
            item.energy_kwh += facts.energy_kwh
            item.energy_runs += 1
            item.energy_methods.add(facts.energy_method or "modeled")
        if facts is not None and facts.expected_inferences:
            item.inference_sum += facts.expected_inferences
            item.inference_runs += 1
    known_ids = {run.run_id: run for run in settled}
    unknown_to_ledger = 0
    labels_seen: dict[tuple[str, str], dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for kfp_run in kfp_runs:
        ledgered = known_ids.get(kfp_run.run_id)
        if ledgered is not None:
            team, month, pipeline = ledgered.team, ledgered.period, ledgered.pipeline or kfp_run.pipeline
        else:
            team = kfp_run.labels.get(TEAM_LABEL) or "(no team)"  # run ids are per team: the label says whose
            month, pipeline = kfp_run.month, kfp_run.pipeline
            unknown_to_ledger += 1
        if month is None or not first <= month <= last:
            continue
        item = row(team, pipeline)
        item.kfp_runs += 1
        item.steps.update(step for step in kfp_run.steps if step in GREENKFP_STEPS)
        for key, value in kfp_run.labels.items():
            counts = labels_seen[team, pipeline][key]
            counts[value] = counts.get(value, 0) + 1
        if kfp_run.run_id not in settled_ids:
            item.unsettled_kfp_runs += 1
            item.runs_by_month[month] = item.runs_by_month.get(month, 0) + 1
            declared = kfp_run.energy_kwh()
            if declared is not None:
                item.energy_kwh += declared
                item.energy_runs += 1
                item.energy_methods.add("declared")
    for key, seen in labels_seen.items():  # the value most of its runs carry
        inventory[key].labels = {name: max(values.items(), key=lambda kv: (kv[1], kv[0]))[0]
                                 for name, values in seen.items()}
    tiers = {team: _tier(ledger, team, months) for team in sorted({team for team, _ in inventory})}
    for item in inventory.values():
        item.tier = tiers[item.team]
        _criticality(item, settings)
        label_project = item.labels.get(settings.project_label)
        if label_project:
            item.project, item.project_basis = label_project, f"label {settings.project_label}"
        else:
            item.project, item.project_basis = project_map.project(item.team, item.pipeline)
    _intensity(list(inventory.values()), settings)
    ordered = tuple(sorted(inventory.values(), key=lambda p: (p.team, p.pipeline)))
    reconciliation = _reconcile(runs, ordered, cloud_rows, months)
    baseline = _baseline(ledger, runs, months, tiers, settings, now, kfp_host, cloud_sources)
    notes = []
    outside: dict[str, int] = defaultdict(int)
    for cloud_row in cloud_rows:
        if cloud_row.month not in months:
            outside[cloud_row.source] += 1
    if outside:
        notes.append(f"{sum(outside.values()):,} cloud export row(s) are of months outside {first} to {last} and "
                     "are not reconciled: " + ", ".join(f"{path} ({count:,})" for path, count in sorted(outside.items()))
                     + ".")
    if kfp_runs:
        notes.append("KFP's v2beta1 run answers name the artifacts a step wrote by id only (the metric values live "
                     "in ML Metadata): a run's figures come from its settlement in the ledger, joined by run id.")
    return AuditResult(baseline, ordered, reconciliation, settings, len(kfp_runs), unknown_to_ledger, tuple(notes))


def _criticality(item: PipelineInventory, settings: AuditSettings) -> None:
    value = item.labels.get(PRIORITY_LABEL)
    if value is not None:
        critical = value in settings.critical_priorities
        item.criticality = "critical" if critical else "non-critical"
        item.criticality_basis = f"label {PRIORITY_LABEL}={value}"
    elif item.tier == "soft":
        item.criticality, item.criticality_basis = "critical", "no priority label; soft budget tier"
    else:
        item.criticality = "non-critical"
        item.criticality_basis = f"no priority label; {item.tier or 'no'} budget tier"


def _intensity(items: list[PipelineInventory], settings: AuditSettings) -> None:
    known = sorted((p for p in items if p.kwh_per_month is not None), key=lambda p: -p.kwh_per_month)
    total = sum(p.kwh_per_month for p in known)
    cumulative = 0.0
    for p in known:
        share_before = 100.0 * cumulative / total if total else 100.0
        cumulative += p.kwh_per_month
        if settings.intensive_kwh_per_month is not None:
            intensive = p.kwh_per_month >= settings.intensive_kwh_per_month
            basis = (f"{p.kwh_per_month:.4g} kWh a month {'>=' if intensive else '<'} "
                     f"{settings.intensive_kwh_per_month:g}")
        else:
            intensive = total > 0 and share_before < settings.intensive_share
            basis = (f"{p.kwh_per_month:.4g} kWh a month ({100.0 * p.kwh_per_month / total:.1f} % of the audited "
                     f"energy); {'among' if intensive else 'not among'} the pipelines making "
                     f"{settings.intensive_share:g} % of it" if total else "no energy")
        volume = p.inference_volume
        if not intensive and volume is not None and volume >= settings.high_inference_volume:
            intensive = True
            basis += f"; serves {volume:.3g} inferences (>= {settings.high_inference_volume:.3g})"
        p.intensity, p.intensity_basis = ("intensive" if intensive else "light"), basis
    for p in items:
        if p.kwh_per_month is None:
            p.intensity, p.intensity_basis = "unknown", "no energy figure (no run facts, no declared energy_kwh)"


def _reconcile(runs, inventory: Sequence[PipelineInventory], cloud_rows: Sequence[CloudFootprintRow],
               months: Sequence[str]) -> tuple[Reconciliation, ...]:
    projects = {(p.team, p.pipeline): p.project for p in inventory}
    pipeline_g: dict[tuple[str, str], float] = defaultdict(float)
    names: dict[tuple[str, str], set] = defaultdict(set)
    for run in runs:
        project = projects.get((run.team, run.pipeline or "(unnamed)")) or "(unmapped)"
        pipeline_g[project, run.period] += run.actual_g
        names[project, run.period].add(f"{run.team}/{run.pipeline or '(unnamed)'}")
    wanted = set(months)
    cloud: dict[tuple[str, str, str], list[CloudFootprintRow]] = defaultdict(list)
    for row in cloud_rows:
        if row.month in wanted:
            cloud[row.provider, row.project, row.month].append(row)
    out = []
    matched = set()
    for (provider, project, month), rows in sorted(cloud.items()):
        matched.add((project, month))
        grams = pipeline_g.get((project, month), 0.0)
        kg = sum(r.location_based_kg for r in rows)
        note = ""
        if grams / 1000.0 > kg:
            note = "the pipelines' figures exceed the cloud's: check the project mapping and the estimates"
        elif not grams:
            note = "no pipeline mapped to this project"
        out.append(Reconciliation(provider, project, month, kg, grams / 1000.0,
                                  tuple(sorted(names.get((project, month), ()))), len(rows), note))
    for (project, month), grams in sorted(pipeline_g.items()):
        if (project, month) in matched:
            continue
        note = ("pipelines without a cloud project (label, project map)" if project == "(unmapped)"
                else "no cloud export row for this project and month" if cloud_rows else "no cloud export given")
        out.append(Reconciliation("", project, month, None, grams / 1000.0, tuple(sorted(names[project, month])), 0,
                                  note))
    return tuple(sorted(out, key=lambda r: (r.project, r.month, r.provider)))


def _baseline(ledger, runs, months: Sequence[str], tiers: Mapping[str, str | None], settings: AuditSettings,
              now: datetime, kfp_host: str | None, cloud_sources) -> AuditBaseline:
    per_team: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(months, 0.0))
    counts: dict[str, int] = defaultdict(int)
    for run in runs:
        per_team[run.team][run.period] += run.actual_g
        counts[run.team] += 1
    teams = {team: {"tier": tiers.get(team) if tiers.get(team) is not None else _tier(ledger, team, months),
                    "monthly_g": monthly, "mean_monthly_g": sum(monthly.values()) / len(months),
                    "runs": counts[team]} for team, monthly in sorted(per_team.items())}
    return AuditBaseline.from_dict({
        "schema": AuditBaseline.SCHEMA, "generated_at": iso(now), "months": list(months), "teams": teams,
        "target": {"reduction_percent": float(settings.reduction_percent),
                   "by": settings.target_by or _month_shift(months[-1], 12)},
        "sources": {"ledger": ledger.url, "kfp_host": kfp_host,
                    "cloud_exports": [{"kind": "gcp_carbon_footprint" if kind == "gcp" else "aws_ccft", "path": path,
                                       "rows": rows} for kind, path, rows in cloud_sources]},
    })


# --------------------------------------------------------------------------- the page and the files


def _kg(grams: float) -> str:
    return f"{grams / 1000:,.1f} kg" if abs(grams) >= 1000 else f"{grams:,.0f} g"


def _markdown(result: AuditResult) -> str:
    b = result.baseline
    months = list(b.months)
    lines = [f"# Baseline audit: {months[0]} to {months[-1]}", "",
             f"Baseline: **{_kg(b.mean_monthly_g)} CO2e a month** (mean of {len(months)} month(s), settled runs of "
             f"{len(b.teams)} team(s)). Target: **-{b.target.reduction_percent:g} % by {b.target.by}**, that is "
             f"{_kg(b.target_monthly_g())} a month.", "",
             "| team | tier | " + " | ".join(months) + " | mean a month | target a month | runs |",
             "|---|---|" + "---:|" * (len(months) + 3)]
    for team, t in sorted(b.teams.items()):
        lines.append(f"| {_md(team)} | {_md(t.tier or '-')} | " + " | ".join(_kg(t.monthly_g[m]) for m in months)
                     + f" | {_kg(t.mean_monthly_g)} | {_kg(b.target_monthly_g(team))} | {t.runs:,} |")
    lines += ["", "## Pipelines by quadrant", "",
              "| quadrant | pipelines | runs a month | kWh a month | what to do |", "|---|---|---:|---:|---|"]
    by_quadrant: dict[str, list[PipelineInventory]] = defaultdict(list)
    for p in result.inventory:
        by_quadrant[p.quadrant].append(p)
    for quadrant in QUADRANT_ADVICE:
        items = by_quadrant.get(quadrant)
        if not items:
            continue
        energy = sum(p.kwh_per_month or 0.0 for p in items)
        lines.append(f"| {quadrant} | {', '.join(_md(f'{p.team}/{p.pipeline}') for p in items)} | "
                     f"{sum(p.runs_per_month for p in items):,.0f} | {energy:,.1f} | {QUADRANT_ADVICE[quadrant]} |")
    s = result.settings
    rule = (f"at least {s.intensive_kwh_per_month:g} kWh a month" if s.intensive_kwh_per_month is not None
            else f"the pipelines that, largest first, make {s.intensive_share:g} % of the audited energy")
    lines += ["", f"Critical: label `{PRIORITY_LABEL}` in {', '.join(_md(p) for p in s.critical_priorities)}, else a soft budget. "
              f"Intensive: {rule}, or serving at least {s.high_inference_volume:.3g} inferences."]
    lines += ["", "## Reconciliation with the cloud's accounting", ""]
    cloud = [r for r in result.reconciliation if r.cloud_location_kg is not None]
    if cloud:
        lines += ["| provider | project | month | cloud location-based | pipelines | unexplained |",
                  "|---|---|---|---:|---:|---:|"]
        for r in cloud:
            percent = "" if r.unexplained_percent is None else f" ({r.unexplained_percent:.0f} %)"
            lines.append(f"| {_md(r.provider)} | {_md(r.project)} | {_md(r.month)} | {r.cloud_location_kg:,.1f} kg | "
                         f"{r.pipeline_kg:,.1f} kg | {r.unexplained_kg:,.1f} kg{percent} |")
        lines += ["", "Cloud figures: GCP scope 2 location-based, AWS location-based total; the pipelines' are "
                      "energy x location-based grid intensity. The remainder is the projects' other usage and the "
                      "error of both estimates."]
    else:
        lines.append("No cloud export given (`--gcp-export`, `--aws-export`): nothing to reconcile.")
    unmapped = [r for r in result.reconciliation if r.project == "(unmapped)"]
    if unmapped:
        lines += ["", f"Unmapped to a cloud project: {sum(r.pipeline_kg for r in unmapped):,.1f} kg of "
                      f"{', '.join(_md(n) for n in sorted({n for r in unmapped for n in r.pipelines}))}."]
    sources = [f"ledger {_md(b.sources.ledger)}"]
    if b.sources.kfp_host:
        sources.append(f"KFP {_md(b.sources.kfp_host)} ({result.kfp_runs:,} runs, {result.kfp_unknown_to_ledger:,} "
                       "unknown to the ledger)")
    sources += [f"{_md(e.kind)} {_md(e.path)} ({e.rows:,} rows)" for e in b.sources.cloud_exports]
    lines += ["", "Sources: " + "; ".join(sources) + f". Generated {b.generated_at}."]
    lines += [f"> {_md(note)}" for note in result.notes]
    return "\n".join(lines) + "\n"


def write_audit(result: AuditResult, output: str | os.PathLike) -> list[Path]:
    """Write :data:`AUDIT_FILES` into the folder ``output`` (created if missing) as one set
    (:func:`~greenkfp.components._files.write_files`): a failure leaves the previous files as they
    were, and raises :class:`~greenkfp.components._files.OutputError` naming ``--output``."""
    from .._files import write_files

    contents = {"baseline.json": result.baseline.to_json(), "inventory.json": result.inventory_json(),
                "inventory.csv": result.inventory_csv(), "reconciliation.csv": result.reconciliation_csv(),
                "audit.md": result.markdown()}
    return write_files(output, {name: contents[name] for name in AUDIT_FILES}, option="--output")
