"""Demo and benchmark data: a realistic quarter of carbon budgets for three teams, written into a
ledger through its public API (limits, the review board, an exception, a transfer, reservations
that are refused or go into overdraft) and its bulk path for the runs themselves
(:meth:`~greenkfp.components.governance.ledger.Ledger.import_settled_runs`)::

    with Ledger("sqlite:///demo-ledger.db") as ledger:
        summary = seed_quarter(ledger, "2026Q3", runs_per_month=300, seed=0)

The teams (the quadrants the budgets are built on):

* ``research``: experimental pipelines on a **hard** budget (a transformer fine-tune and a
  hyper-parameter sweep); some of its late-month submissions are refused;
* ``production``: production-critical pipelines on a **soft** budget with a 10 % overdraft (a
  nightly recommender and a fraud model); a few runs go into the overdraft and are flagged for
  review; its serving reports an autoscaling saving;
* ``growth``: a team whose budget does not cover its plans: it asks the review board for an
  exception (approved, with its reason) and gets one transfer from ``research``.

Each team also has, every month of the quarter, one run that never reported back: its 1 g
reservation expires unsettled an hour later, as real ledgers have them.

The ``baseline_months`` before the quarter hold the runs from before greenkfp (no gate, no
selection: no savings, the energy only) under generous monitoring limits: the audit measures the
reduction target against them. In the quarter, emissions fall month by month as the levers
(time shifting, model selection, quantization, autoscaling) take effect; every settled run
carries :class:`~greenkfp.components.records.RunFacts` with savings by lever (95 % intervals),
accuracy and p95 latency of the promoted model against its baseline, and the gate's delay.

Everything is drawn from ``random.Random(seed)``: the same seed writes the same ledger (entry
times included). 100,000 runs take seconds: the runs' facts come from a small pool per pipeline
(drawn once, shared by the runs, written out once per pool entry).

Demo data, not measurements: every fact's basis says so.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ..records import RunFacts
from .errors import BudgetError
from .ledger import check_quarter, quarter_months, shift_month

__all__ = ["DEMO_PIPELINES", "DEMO_PROJECTS", "DEMO_TEAMS", "MAX_RUNS_PER_MONTH", "MIN_RUNS_PER_MONTH", "DemoPipeline",
           "DemoSummary", "check_demo_options", "last_ended_quarter", "seed_quarter", "write_demo_exports"]

UTC = timezone.utc
#: How many facts each pipeline's pool holds (the runs draw from it).
_POOL = 64
_DEMO = "demo data (greenkfp.components.governance.demo), not a measurement"


@dataclass(frozen=True)
class DemoPipeline:
    """A demo pipeline: its team, its share of the team's runs, grams per run in the baseline
    (median), the grid intensity its runs see (g/kWh), whether its energy is measured, and the
    inferences its model serves a month (0: none known)."""

    team: str
    name: str
    share: float
    grams: float
    intensity: float
    measured: bool
    inferences: float
    labels: tuple[tuple[str, str], ...]


#: team -> (tier, overdraft %, share of all runs)
DEMO_TEAMS = {"research": ("hard", 0.0, 0.5), "production": ("soft", 10.0, 0.3), "growth": ("hard", 0.0, 0.2)}

DEMO_PIPELINES = (
    DemoPipeline("research", "llm-finetune", 0.35, 420.0, 260.0, False, 0.0,
                 (("greenkfp.io/priority", "experimental"), ("greenkfp.io/cloud-project", "acme-research"))),
    DemoPipeline("research", "hparam-sweep", 0.65, 95.0, 260.0, False, 0.0,
                 (("greenkfp.io/priority", "experimental"), ("greenkfp.io/cloud-project", "acme-research"))),
    DemoPipeline("production", "recsys-nightly", 0.6, 380.0, 210.0, True, 4.0e8,
                 (("greenkfp.io/priority", "production-critical"), ("greenkfp.io/cloud-project", "acme-prod"))),
    DemoPipeline("production", "fraud-retrain", 0.4, 60.0, 210.0, True, 1.5e8,
                 (("greenkfp.io/priority", "production-critical"), ("greenkfp.io/cloud-project", "acme-prod"))),
    DemoPipeline("growth", "churn-model", 0.7, 140.0, 330.0, False, 2.0e7,
                 (("greenkfp.io/priority", "business"), ("greenkfp.io/cloud-project", "123456789012"))),
    DemoPipeline("growth", "ltv-forecast", 0.3, 55.0, 330.0, False, 5.0e6,
                 (("greenkfp.io/priority", "business"), ("greenkfp.io/cloud-project", "123456789012"))),
)

#: Emissions of the quarter's months against the baseline (the levers taking effect), per team.
_TREND = {"research": (0.9, 0.8, 0.7), "production": (0.95, 0.88, 0.8), "growth": (1.05, 1.1, 0.95)}


@dataclass(frozen=True)
class DemoSummary:
    """What :func:`seed_quarter` wrote: the months, the runs settled, the reservations refused
    and those flagged for review, the exception and the transfer (entry ids)."""

    quarter: str
    months: tuple[str, ...]
    baseline_months: tuple[str, ...]
    runs: int
    refused: int
    reviewed: int
    exception_id: int
    transfer_id: int


def _interval(rng: random.Random, estimate: float, spread: float) -> dict:
    low = estimate * (1 - spread * rng.uniform(0.6, 1.4))
    high = estimate * (1 + spread * rng.uniform(0.6, 1.4))
    return {"estimate": round(estimate, 4), "low": round(min(low, estimate), 4), "high": round(max(high, estimate), 4)}


def _facts(rng: random.Random, pipeline: DemoPipeline, baseline: bool) -> RunFacts:
    """One run's facts for the pool: before greenkfp (``baseline``) only the energy; then the
    savings by lever, the promoted model against its baseline and the gate's delay."""
    energy = pipeline.grams / pipeline.intensity * rng.lognormvariate(0, 0.15)
    method = "measured" if pipeline.measured else "modeled"
    data: dict[str, Any] = {"schema": RunFacts.SCHEMA, "pipeline": pipeline.name, "variant": None, "savings": [],
                            "promoted": None, "gate_action": None, "gate_refused": False, "gate_delay_hours": 0.0,
                            "energy_kwh": round(energy, 5), "energy_method": method,
                            "expected_inferences": pipeline.inferences or None, "demo": True}
    if baseline:
        return RunFacts.from_dict(data)
    waited = rng.random() < (0.45 if pipeline.team == "research" else 0.25)
    grams = pipeline.grams
    savings = []
    if waited:
        savings.append({"lever": "time_shifting", "saved_g": _interval(rng, grams * rng.uniform(0.12, 0.35), 0.3),
                        "method": method, "basis": f"training energy at run-now minus at the gate's window; {_DEMO}"})
    else:
        savings.append({"lever": "time_shifting", "saved_g": {"estimate": 0.0, "low": 0.0, "high": 0.0},
                        "method": method, "basis": f"the gate found no greener window: ran at once; {_DEMO}"})
    quantized = rng.random() < (0.7 if pipeline.team == "production" else 0.4)
    baseline_name = f"{pipeline.name}-large/fp32"
    if pipeline.inferences:
        per_run = pipeline.inferences / 30.0 * rng.uniform(2e-6, 6e-6)
        lever, variant = ("quantization", f"{pipeline.name}-large/int8_dynamic") if quantized else \
            ("model_selection", f"{pipeline.name}-small/fp32")
        savings.append({"lever": lever, "saved_g": _interval(rng, per_run, 0.25), "method": "modeled",
                        "basis": f"baseline {baseline_name} against the selected {variant} over the expected "
                                 f"inferences; {_DEMO}"})
    else:
        variant = f"{pipeline.name}-small/fp32"
    if pipeline.name == "recsys-nightly":
        savings.append({"lever": "autoscaling", "saved_g": _interval(rng, grams * rng.uniform(0.05, 0.15), 0.4),
                        "method": "modeled", "basis": f"serving replicas scaled to load instead of a fixed pool; {_DEMO}"})
    accuracy = rng.uniform(0.86, 0.95)
    drop = rng.uniform(-0.002, 0.008)
    rows = 5000

    def wilson(share: float) -> dict:
        z = 1.96
        centre = (share + z * z / (2 * rows)) / (1 + z * z / rows)
        half = z * math.sqrt(share * (1 - share) / rows + z * z / (4 * rows * rows)) / (1 + z * z / rows)
        return {"estimate": round(share, 5), "low": round(centre - half, 5), "high": round(centre + half, 5)}

    latency = rng.uniform(3.0, 9.0)
    data.update({
        "variant": variant, "savings": savings, "promoted": rng.random() < 0.92,
        "gate_action": "wait" if waited else "run_now",
        "gate_delay_hours": round(rng.uniform(1.0, 9.0), 2) if waited else 0.0,
        "selected": {"name": variant, "accuracy": round(accuracy - drop, 5), "accuracy_interval": wilson(accuracy - drop),
                     "latency_p95_ms": round(latency * (0.45 if quantized else 0.7), 3)},
        "baseline": {"name": baseline_name, "accuracy": round(accuracy, 5), "accuracy_interval": wilson(accuracy),
                     "latency_p95_ms": round(latency, 3)},
    })
    return RunFacts.from_dict(data)


class _Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _start(month: str) -> datetime:
    return datetime(int(month[:4]), int(month[5:]), 1, tzinfo=UTC)


def _month_seconds(month: str) -> float:
    year, number = shift_month(int(month[:4]), int(month[5:]), 1)
    return (datetime(year, number, 1, tzinfo=UTC) - _start(month)).total_seconds()


def _fewest_runs() -> int:
    """The fewest runs a month that give every demo pipeline at least one run a month (with
    fewer, a team spends nothing in a month and its budget would be 0 g)."""
    runs = 1
    while any(round(runs * DEMO_TEAMS[p.team][2] * p.share) < 1 for p in DEMO_PIPELINES):
        runs += 1
    return runs


#: The fewest runs a month :func:`seed_quarter` takes, the most it takes.
MIN_RUNS_PER_MONTH, MAX_RUNS_PER_MONTH = _fewest_runs(), 1_000_000


def last_ended_quarter(now: datetime | None = None) -> str:
    """The latest calendar quarter that has ended at ``now`` (default: the real clock), ``YYYYQn``."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    index = now.year * 4 + (now.month - 1) // 3 - 1  # the quarter before the current one
    return f"{index // 4:04d}Q{index % 4 + 1}"


def check_demo_options(quarter: Any, *, runs_per_month: Any = 300, seed: Any = 0, baseline_months: Any = 3,
                       now: datetime | None = None) -> None:
    """The arguments of :func:`seed_quarter`, checked before anything is written: a BudgetError
    naming the first bad one (``quarter``, ``runs_per_month``, ``seed``, ``baseline_months``).
    A quarter that has not ended at ``now`` (default: the real clock) is refused: the demo writes
    settled runs, and runs are not settled in the future."""
    check_quarter(quarter)
    if (isinstance(runs_per_month, bool) or not isinstance(runs_per_month, int)
            or not MIN_RUNS_PER_MONTH <= runs_per_month <= MAX_RUNS_PER_MONTH):
        raise BudgetError("runs_per_month", f"must be a whole number from {MIN_RUNS_PER_MONTH} to "
                                            f"{MAX_RUNS_PER_MONTH:,} (fewer leave a demo pipeline without runs)",
                          runs_per_month)
    if isinstance(baseline_months, bool) or not isinstance(baseline_months, int) or not 1 <= baseline_months <= 12:
        raise BudgetError("baseline_months", "must be a whole number from 1 to 12", baseline_months)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise BudgetError("seed", "must be a whole number", seed)
    months = quarter_months(quarter, baseline_months)
    if months[0] < "1970-01" or months[-1] > "9999-11":  # the ledger's months; the demo's runs end a month later
        raise BudgetError("quarter", f"must be a quarter whose {baseline_months} baseline months start in 1970 or "
                                     "later and that ends before 9999-12", quarter)
    now = (now or datetime.now(UTC)).astimezone(UTC)
    year, month = shift_month(int(months[-1][:4]), int(months[-1][5:]), 1)
    if now < datetime(year, month, 1, tzinfo=UTC):
        raise BudgetError("quarter", f"has not ended yet (it ends on {year:04d}-{month:02d}-01; now is "
                                     f"{now:%Y-%m-%d %H:%M} UTC): the demo writes settled runs, not future ones; "
                                     f"the latest ended quarter is {last_ended_quarter(now)}", quarter)


def seed_quarter(ledger, quarter: str = "2026Q3", *, runs_per_month: int = 300, seed: int = 0,
                 baseline_months: int = 3, actor: str = "demo", now: datetime | None = None) -> DemoSummary:
    """Write a demo quarter (and the ``baseline_months`` before it) into ``ledger`` (a
    :class:`~greenkfp.components.governance.ledger.Ledger`, empty of these teams' months).

    Args:
        ledger: The ledger to write to.
        quarter: The quarter, ``YYYYQn``.
        runs_per_month: Settled runs per month, all teams together (:data:`MIN_RUNS_PER_MONTH` to
            1,000,000): 16,667 with
            the default 3 baseline months makes 100,000 runs.
        seed: The random seed: the same seed writes the same entries.
        baseline_months: Months before the quarter holding the pre-greenkfp baseline (1 to 12).
        actor: Who the entries say wrote them.
        now: The time the quarter must have ended by (default: the real clock).

    Returns:
        What was written.

    Raises:
        BudgetError: a bad argument (named), or the ledger already holds entries of a demo team in
            one of the months (nothing is written then).
    """
    check_demo_options(quarter, runs_per_month=runs_per_month, seed=seed, baseline_months=baseline_months, now=now)
    rng = random.Random(seed)
    months = quarter_months(quarter, baseline_months)
    for team in DEMO_TEAMS:
        for month in months:
            if ledger.entries(team=team, period=month):
                raise BudgetError("ledger", f"already holds entries of team {team} in {month}: seed the demo into a "
                                            "ledger without them", ledger.url)
    baseline, quarter_only = months[:baseline_months], months[baseline_months:]
    pools = {(p.name, base): [_facts(rng, p, base) for _ in range(_POOL)]
             for p in DEMO_PIPELINES for base in (True, False)}
    clock = _Clock(_start(months[0]))
    kept_clock = ledger._clock  # the entries carry the demo's times, not today's
    ledger._clock = clock
    try:
        return _seed(ledger, rng, quarter, baseline, quarter_only, runs_per_month, pools, clock, actor)
    finally:
        ledger._clock = kept_clock


def _runs_of_month(rng: random.Random, month: str, runs_per_month: int, factor: dict, pools: dict, base: bool,
                   counter: list) -> list[dict]:
    runs = []
    start, span = _start(month), _month_seconds(month)
    for pipeline in DEMO_PIPELINES:
        count = round(runs_per_month * DEMO_TEAMS[pipeline.team][2] * pipeline.share)
        pool = pools[pipeline.name, base]
        for _ in range(count):
            counter[0] += 1
            facts = pool[rng.randrange(_POOL)]
            actual = pipeline.grams * factor[pipeline.team] * rng.lognormvariate(0, 0.35)
            estimate = actual * rng.uniform(0.85, 1.35)
            decided = start + timedelta(seconds=rng.uniform(0, span - 7200))
            settled = decided + timedelta(hours=facts.gate_delay_hours + rng.uniform(0.3, 1.5))
            runs.append({"run_id": f"demo-{month}-{counter[0]:07d}", "team": pipeline.team, "period": month,
                         "pipeline": pipeline.name, "estimate_g": round(estimate, 3), "actual_g": round(actual, 3),
                         "decided_at": decided, "settled_at": settled, "facts": facts})
    runs.sort(key=lambda run: run["settled_at"])
    return runs


def _seed(ledger, rng, quarter, baseline, quarter_only, runs_per_month, pools, clock, actor) -> DemoSummary:
    counter, total, refused, reviewed = [0], 0, 0, 0
    clock.now = _start(baseline[0])
    ledger.add_board_member("carol", actor="lead")
    ledger.add_board_member("dmitri", actor="lead")
    expected = {team: sum(p.grams * p.share * math.exp(0.35 ** 2 / 2) for p in DEMO_PIPELINES if p.team == team)
                * runs_per_month * share for team, (_, _, share) in DEMO_TEAMS.items()}
    for month in baseline:  # before greenkfp: generous monitoring limits, the runs as they were
        clock.now = _start(month)
        for team, (tier, percent, _) in DEMO_TEAMS.items():
            ledger.set_limit(team, month, round(expected[team] * 3, 1), tier, overdraft_percent=percent, actor="lead")
        runs = _runs_of_month(rng, month, runs_per_month, dict.fromkeys(DEMO_TEAMS, 1.0), pools, True, counter)
        total += ledger.import_settled_runs(runs, actor=actor)
    exception_id = transfer_id = 0
    for index, month in enumerate(quarter_only):
        clock.now = _start(month)
        factor = {team: trend[index] for team, trend in _TREND.items()}
        runs = _runs_of_month(rng, month, runs_per_month, factor, pools, False, counter)
        spent = {team: sum(r["actual_g"] for r in runs if r["team"] == team) for team in DEMO_TEAMS}
        # limits: research's a little above what it will spend (so its last submissions are refused),
        # production's close enough for a few overdrafts, growth's below its plans in the second month
        gap = spent["growth"] * 0.2 if index == 1 else 0.0
        given = round(gap * 0.4, 1)  # research's transfer to growth
        limits = {"research": spent["research"] * 1.02 + given, "production": spent["production"] * 1.01,
                  "growth": spent["growth"] * 1.05 - gap}
        for team, (tier, percent, _) in DEMO_TEAMS.items():
            ledger.set_limit(team, month, round(limits[team], 1), tier, overdraft_percent=percent, actor="lead")
        clock.now = _start(month) + timedelta(hours=12)
        for team in DEMO_TEAMS:  # a run that never reported back: its reservation expires unsettled (real
            # ledgers hold them; reading a budget then looks up which of its reservations are still open)
            ledger.reserve(team, month, 1.0, f"demo-{month}-lost-{team}", actor="gatekeeper", ttl_seconds=3600.0,
                           pipeline=next(p.name for p in DEMO_PIPELINES if p.team == team))
        if index == 1:  # growth asks the board; research gives some of its budget
            clock.now = _start(month) + timedelta(days=2)
            transfer_id = ledger.transfer("research", "growth", month, given, approver="carol",
                                          reason="growth's churn model launch; research's sweep moved to next month")
            clock.now += timedelta(hours=3)
            exception_id = ledger.request_exception(
                "growth", month, round(gap * 0.7, 1), requester="gina", reason="quarterly churn campaign retrains "
                "the churn model daily for two weeks", expires_at=_start(month) + timedelta(days=27))
            clock.now += timedelta(hours=20)
            ledger.approve_exception(exception_id, approver="dmitri")
        total += ledger.import_settled_runs(runs, actor=actor)
        clock.now = _start(month) + timedelta(days=26)
        for attempt in range(3):  # research's late submissions: beyond its hard budget
            remaining = ledger.status("research", month).remaining_g
            answer = ledger.reserve("research", month, max(remaining, 0.0) + 50.0 + 40.0 * attempt,
                                    f"demo-{month}-refused-{attempt}", actor="gatekeeper", pipeline="llm-finetune")
            refused += not answer.granted
            clock.now += timedelta(hours=5)
        for attempt in range(2):  # production's: into the soft tier's overdraft, flagged for review
            status = ledger.status("production", month)
            run_id = f"demo-{month}-overdraft-{attempt}"
            grams = max(status.remaining_g, 0.0) + status.overdraft_g * 0.3
            answer = ledger.reserve("production", month, round(grams, 3), run_id, actor="gatekeeper",
                                    overdraft_allowed_g=None, pipeline="recsys-nightly")
            if answer.granted:
                reviewed += answer.review_required
                clock.now += timedelta(hours=2)
                ledger.settle("production", run_id, round(grams * 0.95, 3), actor="gatekeeper",
                              facts=pools["recsys-nightly", False][attempt])
                total += 1
            clock.now += timedelta(hours=4)
    return DemoSummary(quarter, tuple(quarter_only), tuple(baseline), total, refused, reviewed, exception_id,
                       transfer_id)


#: team -> (cloud, project): research and production on GCP projects, growth on an AWS account.
DEMO_PROJECTS = {"research": ("gcp", "acme-research"), "production": ("gcp", "acme-prod"),
                 "growth": ("aws", "123456789012")}
_GCP_SERVICES = (("Compute Engine", "6E18-756A-64DB", 1.25, 0.0), ("Kubernetes Engine", "CCD8-9BF1-090E", 0.15, 4.0),
                 ("Cloud Storage", "95FF-2EF5-5EA1", 0.0, 1.8), ("BigQuery", "24E6-581D-38E5", 0.0, 2.5))
_AWS_PRODUCTS = (("AmazonEC2", 1.3, 0.0), ("AmazonS3", 0.0, 1.2), ("AmazonSageMaker", 0.1, 2.0))


def write_demo_exports(ledger, directory, months, *, seed: int = 0, option: str = "directory") -> dict[str, Any]:
    """Cloud exports that go with a demo ledger, for the audit's reconciliation, into
    ``directory``: ``gcp-carbon-footprint.jsonl`` (BigQuery's JSON export of the Carbon
    Footprint table, nested records), ``aws-carbon-emissions.csv`` (the Data Exports carbon
    emissions table) and ``project-map.json`` (team -> project). Each project's month is its
    pipelines' settled kg times a data-centre overhead, plus the rest of the project's usage
    (storage, analytics), as a cloud's own accounting would show it. The three are written as one
    set (:func:`~greenkfp.components._files.write_files`; an
    :class:`~greenkfp.components._files.OutputError` names ``option``). Returns the paths."""
    import csv
    import io
    import json
    from pathlib import Path

    from .._files import check_output_folder, write_files

    rng = random.Random(seed)
    folder = Path(directory)
    check_output_folder(option, folder)
    kg: dict[tuple[str, str], float] = {}
    for run in ledger.settled_runs():
        if run.period in months and run.team in DEMO_PROJECTS:
            key = (run.team, run.period)
            kg[key] = kg.get(key, 0.0) + run.actual_g / 1000.0
    gcp_lines, aws_rows = [], []
    for team, (cloud, project) in DEMO_PROJECTS.items():
        for month in months:
            pipelines = kg.get((team, month), 0.0)
            if cloud == "gcp":
                for service, service_id, share, other in _GCP_SERVICES:
                    location = round(pipelines * share * rng.uniform(0.95, 1.1) + other * rng.uniform(0.8, 1.2), 3)
                    scope1, scope3 = round(location * 0.01, 3), round(location * 0.45, 3)
                    market = round(location * 0.3, 3)
                    gcp_lines.append(json.dumps({
                        "usage_month": f"{month}-01", "billing_account_id": "01A2B3-C4D5E6-F7A8B9",
                        "project": {"id": project, "number": str(800000000000 + len(project))},
                        "service": {"id": service_id, "description": service},
                        "location": {"location": "europe-west1-b", "region": "europe-west1"},
                        "carbon_model_version": "12",
                        "carbon_footprint_kgCO2e": {"scope1": scope1, "scope2": {"location_based": location,
                                                                                 "market_based": market},
                                                    "scope3": scope3},
                        "carbon_footprint_total_kgCO2e": {"location_based": round(scope1 + location + scope3, 3),
                                                          "market_based": round(scope1 + market + scope3, 3)}}))
            else:
                for product, share, other in _AWS_PRODUCTS:
                    tons = (pipelines * share * rng.uniform(0.95, 1.1) + other * rng.uniform(0.8, 1.2)) / 1000.0
                    aws_rows.append({
                        "last_refresh_timestamp": f"{month}-28 06:00:00Z", "location": "Europe (Ireland)",
                        "model_version": "v3.0.0", "payer_account_id": "210987654321", "product_code": product,
                        "region_code": "eu-west-1", "total_lbm_emissions_unit": "MTCO2e",
                        "total_lbm_emissions_value": f"{tons:.6f}", "total_mbm_emissions_unit": "MTCO2e",
                        "total_mbm_emissions_value": f"{tons * 0.2:.6f}", "usage_account_id": project,
                        "usage_period_end": f"{shift_month(int(month[:4]), int(month[5:]), 1)[0]:04d}-"
                                            f"{shift_month(int(month[:4]), int(month[5:]), 1)[1]:02d}-01 00:00:00Z",
                        "usage_period_start": f"{month}-01 00:00:00Z"})
    paths = {"gcp": folder / "gcp-carbon-footprint.jsonl", "aws": folder / "aws-carbon-emissions.csv",
             "project_map": folder / "project-map.json"}
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(aws_rows[0]) if aws_rows else ["usage_account_id"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(aws_rows)
    project_map = json.dumps({"teams": {team: project for team, (_, project) in DEMO_PROJECTS.items()}}, indent=2)
    write_files(folder, {paths["gcp"].name: "\n".join(gcp_lines) + "\n", paths["aws"].name: buffer.getvalue(),
                         paths["project_map"].name: project_map + "\n"}, option=option)
    return paths
