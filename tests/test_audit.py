"""`greenkfp audit`: the baseline audit on the demo ledger, a local stand-in for the KFP v2beta1
API (kfp.Client lists its runs, paged) and the clouds' exports. Every rule it documents: the
baseline's arithmetic, the quadrants, the project mapping, the reconciliation, the one-line
errors, and nothing half-written."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import stat
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import free_port
from kfp_standin import KfpStandIn

from greenkfp.components.governance import Ledger
from greenkfp.components.governance.audit import (
    AUDIT_FILES,
    AuditError,
    AuditSettings,
    KfpRun,
    ProjectMap,
    kfp_runs_from_api,
    run_audit,
    write_audit,
)
from greenkfp.components.governance.cloud_footprint import read_aws_export, read_gcp_export
from greenkfp.components.governance.demo import seed_quarter, write_demo_exports
from greenkfp.components.records import AuditBaseline, read_record
from greenkfp.pipelines.cli import main

UTC = timezone.utc
BASELINE = ["2026-07", "2026-08", "2026-09"]

#: A time after the demo quarter has ended (a quarter under way is refused).
AFTER_2026Q4 = datetime(2027, 2, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A demo ledger (3 baseline months and 2026Q4) and its cloud exports, read-only for the tests."""
    folder = tmp_path_factory.mktemp("demo")
    url = f"sqlite:///{folder / 'ledger.db'}"
    with Ledger(url) as ledger:
        seed_quarter(ledger, "2026Q4", now=AFTER_2026Q4, runs_per_month=120, seed=3)
        exports = write_demo_exports(ledger, folder / "exports", BASELINE, seed=3)
    return url, exports


def audit(url, settings=None, **kwargs):
    with Ledger(url) as ledger:
        return run_audit(ledger, settings or AuditSettings(first="2026-07", last="2026-09"), **kwargs)


# --------------------------------------------------------------------------- the baseline


def test_the_baseline_is_each_teams_settled_grams_per_month(demo):
    url, _ = demo
    result = audit(url, now=datetime(2026, 10, 2, tzinfo=UTC))
    baseline = result.baseline
    with Ledger(url) as ledger:
        runs = [r for r in ledger.settled_runs() if r.period in BASELINE]
    assert baseline.months == tuple(BASELINE) and set(baseline.teams) == {"research", "production", "growth"}
    for team, figures in baseline.teams.items():
        for month in BASELINE:
            assert figures.monthly_g[month] == pytest.approx(sum(r.actual_g for r in runs
                                                                 if r.team == team and r.period == month))
        assert figures.mean_monthly_g == pytest.approx(sum(figures.monthly_g.values()) / 3)
        assert figures.runs == sum(1 for r in runs if r.team == team)
    assert {t: f.tier for t, f in baseline.teams.items()} == {"research": "hard", "production": "soft",
                                                             "growth": "hard"}
    assert (baseline.target.reduction_percent, baseline.target.by) == (30.0, "2027-09")
    assert baseline.generated_at == "2026-10-02T00:00:00Z" and baseline.sources.ledger == url
    assert baseline.target_monthly_g() == pytest.approx(0.7 * baseline.mean_monthly_g)
    # the quarter's months are outside the baseline: another window, other figures
    later = audit(url, AuditSettings(first="2026-10", last="2026-12", reduction_percent=25, target_by="2027-06"))
    assert later.baseline.months == ("2026-10", "2026-11", "2026-12") and later.baseline.target.by == "2027-06"
    assert later.baseline.mean_monthly_g < baseline.mean_monthly_g


def test_default_months_are_every_month_with_settled_runs(demo):
    url, _ = demo
    assert audit(url, AuditSettings()).baseline.months == tuple(BASELINE + ["2026-10", "2026-11", "2026-12"])


def test_an_empty_ledger_or_window_has_nothing_to_audit(tmp_path, demo):
    with Ledger(f"sqlite:///{tmp_path / 'empty.db'}") as ledger:
        with pytest.raises(AuditError, match="^no runs in the ledger: nothing to audit$"):
            run_audit(ledger)
    with pytest.raises(AuditError, match=r"no settled runs in the ledger in 2025-01 to 2025-03: nothing to audit "
                                         r"\(its runs are from 2026-07 to 2026-12\)"):
        audit(demo[0], AuditSettings(first="2025-01", last="2025-03"))


@pytest.mark.parametrize("settings, message", [
    ({"first": "2026-7"}, "--from must be a calendar month YYYY-MM (UTC), got '2026-7'"),
    ({"first": "2026-09", "last": "2026-07"}, "--to must not be before --from (2026-09), got '2026-07'"),
    ({"reduction_percent": 0}, "--reduction-percent must be a number > 0 and <= 100, got 0"),
    ({"intensive_share": 120}, "--intensive-share must be a number > 0 and <= 100, got 120"),
    ({"intensive_kwh_per_month": -1.0}, "--intensive-kwh-per-month must be a number > 0, got -1.0"),
    ({"critical_priorities": ()}, "--critical-priorities must name at least one label value"),
    ({"target_by": "soon"}, "--target-by must be a calendar month"),
])
def test_bad_settings_name_the_option(settings, message):
    with pytest.raises(AuditError) as caught:
        AuditSettings(**settings)
    assert str(caught.value).startswith(message)


# --------------------------------------------------------------------------- the quadrants


def test_quadrants_follow_the_documented_rules(demo):
    url, _ = demo
    result = audit(url)
    rows = {f"{p.team}/{p.pipeline}": p for p in result.inventory}
    assert set(rows) == {"research/llm-finetune", "research/hparam-sweep", "production/recsys-nightly",
                         "production/fraud-retrain", "growth/churn-model", "growth/ltv-forecast"}
    # criticality without labels: the team's tier (soft: critical)
    assert {k: p.criticality for k, p in rows.items()} == {
        "research/llm-finetune": "non-critical", "research/hparam-sweep": "non-critical",
        "production/recsys-nightly": "critical", "production/fraud-retrain": "critical",
        "growth/churn-model": "non-critical", "growth/ltv-forecast": "non-critical"}
    # intensity: energy per run (run facts) x runs per month; intensive = largest first up to 80 % of the energy
    with Ledger(url) as ledger:
        runs = [r for r in ledger.settled_runs() if r.period in BASELINE]
    for key, p in rows.items():
        mine = [r for r in runs if f"{r.team}/{r.pipeline}" == key]
        assert p.runs_per_month == pytest.approx(len(mine) / 3)
        assert p.energy_per_run_kwh == pytest.approx(sum(r.facts.energy_kwh for r in mine) / len(mine))
        assert p.kwh_per_month == pytest.approx(p.energy_per_run_kwh * len(mine) / 3)
        assert p.g_per_run == pytest.approx(sum(r.actual_g for r in mine) / len(mine))
    ordered = sorted(rows.values(), key=lambda p: -p.kwh_per_month)
    total, before, by_energy = sum(p.kwh_per_month for p in ordered), 0.0, set()
    for p in ordered:
        if before < 0.8 * total:
            by_energy.add(f"{p.team}/{p.pipeline}")
        before += p.kwh_per_month
    by_volume = {k for k, p in rows.items() if (p.inference_volume or 0) >= 1e8}
    assert by_volume == {"production/recsys-nightly", "production/fraud-retrain"}
    assert {k for k, p in rows.items() if p.intensity == "intensive"} == by_energy | by_volume
    assert "production/fraud-retrain" not in by_energy  # intensive by the inference it drives, not its energy
    assert "serves 1.5e+08 inferences" in rows["production/fraud-retrain"].intensity_basis
    assert rows["production/recsys-nightly"].quadrant == "critical / intensive"
    assert rows["growth/ltv-forecast"].quadrant == "non-critical / light"
    assert rows["production/recsys-nightly"].energy_method == "measured"
    assert rows["research/llm-finetune"].energy_method == "modeled"


def test_the_thresholds_are_configurable(demo):
    url, _ = demo
    rows = {p.pipeline: p for p in audit(url, AuditSettings(first="2026-07", last="2026-09",
                                                             intensive_kwh_per_month=30.0,
                                                             high_inference_volume=1e9)).inventory}
    assert {name for name, p in rows.items() if p.intensity == "intensive"} == \
        {name for name, p in rows.items() if p.kwh_per_month >= 30.0}
    assert "kWh a month >= 30" in next(p for p in rows.values() if p.intensity == "intensive").intensity_basis
    critical = {p.pipeline for p in audit(url, AuditSettings(first="2026-07", last="2026-09",
                                                             critical_priorities=("business",)),
                                          kfp_runs=_labelled_runs(url)).inventory if p.criticality == "critical"}
    assert critical == {"churn-model", "ltv-forecast"}  # labelled business; production's label is not listed


def test_a_pipeline_without_an_energy_figure_is_unclassified(tmp_path):
    url = f"sqlite:///{tmp_path / 'l.db'}"
    with Ledger(url) as ledger:
        ledger.set_limit("ml", "2026-08", 1e6, "hard", actor="lead")
        ledger.reserve("ml", "2026-08", 10, "r1", actor="gk", pipeline="old")
        ledger.settle("ml", "r1", 9, actor="gk")  # settled before run facts existed
        result = run_audit(ledger)
    (row,) = result.inventory
    assert (row.intensity, row.quadrant, row.energy_per_run_kwh) == ("unknown", "unclassified", None)
    assert "no energy figure" in row.intensity_basis and "unclassified" in result.markdown()


# --------------------------------------------------------------------------- KFP runs


def v2beta1_run(run_id, pipeline, *, labels=None, created="2026-08-03T10:00:00Z", parameters=None,
                steps=("carbon-budget-gate", "train", "sustainability-report", "settle-carbon-budget")):
    """A run as KFP's v2beta1 API answers ``GET /apis/v2beta1/runs`` (created from a package
    with kfp-kubernetes pod labels: the spec and the platform spec together)."""
    executors = {f"exec-{i}": {"container": {"image": "greenkfp:0.1.0"}} for i in range(2)}
    return {
        "experiment_id": "5b0ce9a3-6c2e-4e3f-9f7a-1c2d3e4f5a6b", "run_id": run_id, "display_name": f"{pipeline} run",
        "storage_state": "AVAILABLE", "service_account": "pipeline-runner",
        "pipeline_spec": {
            "pipeline_spec": {"pipelineInfo": {"name": pipeline}, "deploymentSpec": {"executors": executors},
                              "schemaVersion": "2.1.0", "sdkVersion": "kfp-2.17.3"},
            "platform_spec": {"platforms": {"kubernetes": {"deploymentSpec": {"executors": {
                name: {"podMetadata": {"labels": dict(labels or {})}} for name in executors}}}}}},
        "runtime_config": {"parameters": dict(parameters or {}), "pipeline_root": "gs://acme/pipeline-root"},
        "created_at": created, "scheduled_at": created, "finished_at": created.replace("10:00", "11:30"),
        "state": "SUCCEEDED",
        "run_details": {"pipeline_context_id": "101", "pipeline_run_context_id": "102", "task_details": [
            {"run_id": run_id, "task_id": f"{run_id}-{i}", "display_name": step, "create_time": created,
             "start_time": created, "end_time": created, "state": "SUCCEEDED", "execution_id": str(200 + i),
             "outputs": {"summary": {"artifact_ids": [str(300 + i)]}}} for i, step in enumerate(steps)]},
    }


def _labelled_runs(url, limit=40):
    """KFP runs of the demo ledger's baseline runs, each with its pipeline's demo labels."""
    from greenkfp.components.governance.demo import DEMO_PIPELINES

    labels = {p.name: dict(p.labels) for p in DEMO_PIPELINES}
    with Ledger(url) as ledger:
        runs = [r for r in ledger.settled_runs() if r.period in BASELINE]
    chosen = {}
    for run in runs:  # a few of every pipeline
        chosen.setdefault(run.pipeline, [])
        if len(chosen[run.pipeline]) < limit // 6:
            chosen[run.pipeline].append(run)
    return kfp_runs_from_api(v2beta1_run(r.run_id, r.pipeline, labels=labels[r.pipeline],
                                         created=r.settled_at.strftime("%Y-%m-%dT%H:%M:%SZ"))
                             for rs in chosen.values() for r in rs)


def test_kfp_runs_are_read_from_v2beta1_payloads():
    (run,) = kfp_runs_from_api([v2beta1_run("r1", "churn-model", labels={"greenkfp.io/priority": "business"},
                                            parameters={"energy_kwh": "2.5"})])
    assert isinstance(run, KfpRun) and (run.pipeline, run.month, run.state) == ("churn-model", "2026-08", "SUCCEEDED")
    assert run.labels == {"greenkfp.io/priority": "business"} and run.energy_kwh() == 2.5
    assert run.steps[-1] == "settle-carbon-budget"
    with pytest.raises(AuditError, match="without a run_id"):
        kfp_runs_from_api([{"display_name": "x"}])


def test_kfp_labels_decide_criticality_and_project_and_unsettled_runs_count(demo):
    url, _ = demo
    extra = kfp_runs_from_api([
        v2beta1_run("kfp-only-1", "churn-model", parameters={"energy_kwh": 3.0},
                    labels={"greenkfp.io/team": "growth", "greenkfp.io/priority": "business"}),
        v2beta1_run("kfp-only-2", "nightly-etl", created="2026-09-10T10:00:00Z", labels={"greenkfp.io/team": "data"}),
        v2beta1_run("kfp-outside", "churn-model", created="2026-05-10T10:00:00Z"),
    ])
    result = audit(url, kfp_runs=_labelled_runs(url) + extra)
    rows = {f"{p.team}/{p.pipeline}": p for p in result.inventory}
    churn = rows["growth/churn-model"]
    assert churn.labels["greenkfp.io/priority"] == "business" and churn.criticality == "non-critical"
    assert (churn.project, churn.project_basis) == ("123456789012", "label greenkfp.io/cloud-project")
    assert churn.unsettled_kfp_runs == 1 and churn.runs == churn.settled_runs + 1
    assert "declared" not in (churn.energy_method or "")  # run facts and a declared figure: modeled
    assert rows["production/recsys-nightly"].criticality_basis == "label greenkfp.io/priority=production-critical"
    etl = rows["data/nightly-etl"]  # a KFP run the ledger never saw: counted, no energy, unclassified
    assert (etl.runs, etl.settled_runs, etl.quadrant) == (1, 0, "unclassified")
    assert "settle-carbon-budget" in churn.steps
    assert result.kfp_runs == len(_labelled_runs(url)) + 3 and result.kfp_unknown_to_ledger == 3
    assert any("ML Metadata" in note for note in result.notes)


# --------------------------------------------------------------------------- projects and reconciliation


def test_the_project_map_and_its_precedence(tmp_path):
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"teams": {"research": "acme-research"},
                                "pipelines": {"research/sweep": "acme-sweeps", "llm": "acme-llm"}}))
    projects = ProjectMap.from_file(path)
    assert projects.project("research", "sweep") == ("acme-sweeps", "project map: pipelines['research/sweep']")
    assert projects.project("research", "llm") == ("acme-llm", "project map: pipelines['llm']")
    assert projects.project("research", "other") == ("acme-research", "project map: teams['research']")
    assert projects.project("growth", "other") == (None, "unmapped")
    for content, message in (("{", "is not JSON"), ("[]", "must be a JSON object"),
                             ('{"teams": {"a": 3}}', "teams['a'] must be a project id"),
                             ('{"projects": {}}', "must be a JSON object with \"teams\" and/or \"pipelines\"")):
        path.write_text(content)
        with pytest.raises(AuditError, match=f"--project-map {path}: .*{message}".replace("[", r"\[").replace("(", r"\(")):
            ProjectMap.from_file(path)


def test_reconciliation_per_project_and_month(demo):
    url, exports = demo
    gcp, aws = read_gcp_export(exports["gcp"]), read_aws_export(exports["aws"])
    result = audit(url, cloud_rows=gcp + aws, project_map=ProjectMap.from_file(exports["project_map"]),
                   cloud_sources=[("gcp", str(exports["gcp"]), len(gcp)), ("aws", str(exports["aws"]), len(aws))])
    with Ledger(url) as ledger:
        runs = [r for r in ledger.settled_runs() if r.period in BASELINE]
    rows = {(r.project, r.month): r for r in result.reconciliation}
    assert len(rows) == 9 and all(r.cloud_location_kg is not None for r in rows.values())
    prod = rows["acme-prod", "2026-08"]
    assert prod.provider == "gcp" and prod.cloud_rows == 4
    assert prod.cloud_location_kg == pytest.approx(sum(r.location_based_kg for r in gcp
                                                       if r.project == "acme-prod" and r.month == "2026-08"))
    assert prod.pipeline_kg == pytest.approx(sum(r.actual_g for r in runs
                                                 if r.team == "production" and r.period == "2026-08") / 1000)
    assert prod.unexplained_kg == pytest.approx(prod.cloud_location_kg - prod.pipeline_kg)
    assert prod.unexplained_percent == pytest.approx(100 * prod.unexplained_kg / prod.cloud_location_kg)
    growth = rows["123456789012", "2026-09"]
    assert growth.provider == "aws" and growth.cloud_location_kg == pytest.approx(
        1000 * sum(float(line["total_lbm_emissions_value"]) for line in csv.DictReader(io.StringIO(
            Path(exports["aws"]).read_text())) if line["usage_period_start"].startswith("2026-09")))
    assert [e.rows for e in result.baseline.sources.cloud_exports] == [len(gcp), len(aws)]
    # without a map: the pipelines' grams are unmapped, the cloud's rows stand alone
    unmapped = audit(url, cloud_rows=gcp)
    kinds = {r.project: r for r in unmapped.reconciliation}
    assert kinds["(unmapped)"].cloud_location_kg is None and "without a cloud project" in kinds["(unmapped)"].note
    assert kinds["acme-prod"].pipeline_kg == 0 and kinds["acme-prod"].note == "no pipeline mapped to this project"


def test_pipelines_exceeding_the_cloud_are_flagged(demo, tmp_path):
    url, _ = demo
    path = tmp_path / "small.jsonl"
    path.write_text(json.dumps({"usage_month": "2026-08-01", "project": {"id": "acme-prod"},
                                "carbon_footprint_kgCO2e": {"scope2": {"location_based": 1.0}}}) + "\n")
    result = audit(url, cloud_rows=read_gcp_export(path), project_map=ProjectMap(teams={"production": "acme-prod"}))
    (row,) = [r for r in result.reconciliation if r.project == "acme-prod" and r.month == "2026-08"]
    assert row.unexplained_kg < 0 and "exceed the cloud's" in row.note


# --------------------------------------------------------------------------- the command and its files


def run_cli(capsys, *argv):
    code = main(["audit", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def kfp_api(httpserver):
    return KfpStandIn(httpserver)


def test_the_audit_command_end_to_end_with_kfp_and_cloud_exports(demo, kfp_api, tmp_path, capsys, monkeypatch):
    from greenkfp.pipelines import audit_cli

    url, exports = demo
    monkeypatch.setattr(audit_cli, "KFP_PAGE_SIZE", 7)  # several pages
    for run in _labelled_runs(url):
        kfp_api.add_run(v2beta1_run(run.run_id, run.pipeline, labels=run.labels,
                                    created=run.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")))
    out = tmp_path / "audit"
    code, stdout, stderr = run_cli(capsys, "--ledger", url, "--output", str(out), "--from", "2026-07", "--to",
                                   "2026-09", "--kfp-host", kfp_api.url, "--gcp-export", str(exports["gcp"]),
                                   "--aws-export", str(exports["aws"]), "--project-map", str(exports["project_map"]))
    assert code == 0, stderr
    assert stdout.startswith("audited ") and stderr == ""
    assert sorted(p.name for p in out.iterdir()) == sorted(AUDIT_FILES)  # and no staging folder left beside it
    assert [p.name for p in tmp_path.iterdir()] == ["audit"]
    assert kfp_api.page_requests >= 5
    baseline = read_record(AuditBaseline, out / "baseline.json")
    assert baseline.sources.kfp_host == kfp_api.url and len(baseline.sources.cloud_exports) == 2
    inventory = json.loads((out / "inventory.json").read_text())
    assert inventory["schema"] == "greenkfp.audit_inventory/v1" and len(inventory["pipelines"]) == 6
    recsys = next(p for p in inventory["pipelines"] if p["pipeline"] == "recsys-nightly")
    assert recsys["labels"]["greenkfp.io/priority"] == "production-critical" and recsys["kfp_runs"] > 0
    assert recsys["project"] == "acme-prod" and recsys["quadrant"] == "critical / intensive"
    rows = list(csv.DictReader(io.StringIO((out / "inventory.csv").read_text())))
    assert {r["quadrant"] for r in rows} >= {"critical / intensive", "non-critical / light"}
    reconciliation = list(csv.DictReader(io.StringIO((out / "reconciliation.csv").read_text())))
    assert len(reconciliation) == 9 and all(r["unexplained_kg"] for r in reconciliation)
    page = (out / "audit.md").read_text()
    assert page.startswith("# Baseline audit: 2026-07 to 2026-09") and "## Reconciliation" in page
    assert len(page.splitlines()) < 60  # one page
    # again into the same folder: the files are replaced
    assert run_cli(capsys, "--ledger", url, "--output", str(out), "--from", "2026-08", "--to", "2026-09")[0] == 0
    assert read_record(AuditBaseline, out / "baseline.json").months == ("2026-08", "2026-09")


@pytest.mark.parametrize("case", ["empty ledger", "missing ledger", "unreachable kfp", "kfp host with credentials",
                                  "malformed row",
                                  "unknown month", "bad month option", "bad number option", "output is a file"])
def test_bad_input_is_one_line_and_nothing_is_written(demo, tmp_path, capsys, case):
    url, exports = demo
    out = tmp_path / "out"
    argv = ["--ledger", url, "--output", str(out)]
    expected_code = 2
    if case == "empty ledger":
        with Ledger(f"sqlite:///{tmp_path / 'empty.db'}"):
            pass
        argv[1] = f"sqlite:///{tmp_path / 'empty.db'}"
        message = "error: no runs in the ledger: nothing to audit"
    elif case == "missing ledger":
        argv[1] = f"sqlite:///{tmp_path / 'nope.db'}"
        message = f"error: --ledger sqlite:///{tmp_path / 'nope.db'} does not exist"
    elif case == "unreachable kfp":
        argv += ["--kfp-host", f"http://127.0.0.1:{free_port()}"]
        message, expected_code = "error: cannot reach --kfp-host http://127.0.0.1:", 1
    elif case == "kfp host with credentials":
        argv += ["--kfp-host", "http://admin:s3cret@127.0.0.1:8888"]
        message = "error: --kfp-host must not carry credentials (user:password@), got 'http://127.0.0.1:8888'"
    elif case == "malformed row":
        bad = tmp_path / "gcp.jsonl"
        lines = Path(exports["gcp"]).read_text().splitlines()
        lines[2] = lines[2].replace('"location_based": ', '"location_based": "x', 1).replace(
            ', "market_based"', '", "market_based"', 1)
        bad.write_text("\n".join(lines) + "\n")
        argv += ["--gcp-export", str(bad)]
        message = f"error: {bad}: line 3: field carbon_footprint_kgCO2e.scope2.location_based must be a number"
    elif case == "unknown month":
        bad = tmp_path / "aws.csv"
        bad.write_text(Path(exports["aws"]).read_text().replace(",2026-08-01 00:00:00Z\n", ",August 2026\n", 1))
        argv += ["--aws-export", str(bad)]
        message = f"error: {bad}: line "
    elif case == "bad month option":
        argv += ["--from", "July"]
        message = "error: --from must be a calendar month YYYY-MM (UTC), got 'July'"
    elif case == "bad number option":
        argv += ["--reduction-percent", "lots"]
        message = "error: --reduction-percent must be a number, got 'lots'"
    else:
        out.write_text("not a folder")
        message = f"error: --output '{out}': is a file, not a folder"
    code, stdout, stderr = run_cli(capsys, *argv)
    assert code == expected_code and stdout == ""
    assert stderr.startswith(message) and stderr.count("\n") == 1 and "s3cret" not in stderr, stderr
    if case == "unknown month":
        assert "field usage_period_start has an unknown month format" in stderr
    if case == "output is a file":
        assert out.read_text() == "not a folder"
    else:
        assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []  # no staging folder left


def test_a_failed_audit_leaves_an_earlier_one_whole(demo, tmp_path, capsys):
    url, _ = demo
    out = tmp_path / "out"
    assert run_cli(capsys, "--ledger", url, "--output", str(out))[0] == 0
    before = {p.name: p.read_text() for p in out.iterdir()}
    assert run_cli(capsys, "--ledger", url, "--output", str(out), "--from", "2020-01", "--to", "2020-02")[0] == 2
    assert {p.name: p.read_text() for p in out.iterdir()} == before


def test_a_failed_rerun_leaves_every_earlier_file_as_it_was(demo, tmp_path, capsys):
    url, _ = demo
    out = tmp_path / "out"
    assert run_cli(capsys, "--ledger", url, "--output", str(out))[0] == 0
    (out / "audit.md").unlink()
    (out / "audit.md").mkdir()  # the rerun cannot write its last file
    before = {p.name: p.read_text() for p in out.iterdir() if p.is_file()}
    code, stdout, stderr = run_cli(capsys, "--ledger", url, "--output", str(out), "--reduction-percent", "50")
    assert code == 2 and stdout == ""
    assert {p.name: p.read_text() for p in out.iterdir() if p.is_file()} == before  # the 30 % target kept
    assert stderr == f"error: --output '{out}': {out / 'audit.md'} is a folder, not a file\n"
    assert sorted(p.name for p in out.iterdir()) == sorted(AUDIT_FILES)  # no temporary file left


def test_output_folders_follow_the_umask_and_bad_folders_are_one_line(demo, tmp_path, capsys, monkeypatch):
    url, _ = demo
    monkeypatch.chdir(tmp_path)
    previous = os.umask(0o002)
    try:
        assert run_cli(capsys, "--ledger", url, "--output", str(tmp_path / "new" / "out"))[0] == 0
    finally:
        os.umask(previous)
    assert [stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "new", tmp_path / "new" / "out")] == [0o775, 0o775]
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    for value, reason in (("", "must name a folder (it is empty)"),
                          (f"{blocker}/out", f"{blocker} is a file, not a folder")):
        assert run_cli(capsys, "--ledger", url, "--output", value) == (2, "", f"error: --output {value!r}: {reason}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "new"]  # nothing written in the current folder


def test_write_audit_stages_then_moves(demo, tmp_path):
    url, _ = demo
    result = audit(url)
    written = write_audit(result, tmp_path / "nested" / "out")
    assert [p.name for p in written] == list(AUDIT_FILES) and all(p.is_file() for p in written)
    assert sorted(p.name for p in (tmp_path / "nested").iterdir()) == ["out"]


def test_a_token_in_the_kfp_hosts_query_is_in_no_output(demo, kfp_api, tmp_path, capsys):
    url, _exports = demo
    out = tmp_path / "audit"
    code, stdout, stderr = run_cli(capsys, "--ledger", url, "--output", str(out), "--from", "2026-07", "--to",
                                   "2026-09", "--kfp-host", f"{kfp_api.url}/?token=S3cretPW")
    written = "".join(path.read_text() for path in out.iterdir()) if out.exists() else ""
    assert "S3cretPW" not in stdout + stderr + written
    assert code == 2 and "--kfp-host" in stderr and "token=***" in stderr


def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_text(tmp_path):
    url = f"sqlite:///{tmp_path / 'l.db'}"
    with Ledger(url) as ledger:
        ledger.set_limit("=1+2", "2026-08", 1e6, "hard", actor="lead")
        ledger.reserve("=1+2", "2026-08", 10, "r1", actor="gk", pipeline="@SUM(A1)")
        ledger.settle("=1+2", "r1", 9, actor="gk")
        result = run_audit(ledger)
    (row,) = list(csv.DictReader(io.StringIO(result.inventory_csv())))
    assert (row["team"], row["pipeline"]) == ("'=1+2", "'@SUM(A1)")
    assert row["settled_runs"] == "1"
    for line in result.reconciliation_csv().splitlines()[1:]:
        assert not line.startswith(("=", "+", "-", "@"))


def test_texts_in_audit_md_are_escaped_as_in_the_quarterly_report(tmp_path):
    url = f"sqlite:///{tmp_path / 'l.db'}"
    team = "<script>x</script>a|b**bold**"
    with Ledger(url) as ledger:
        ledger.set_limit(team, "2026-08", 1e6, "hard", actor="lead")
        ledger.reserve(team, "2026-08", 10, "r1", actor="gk", pipeline="p|q")
        ledger.settle(team, "r1", 9, actor="gk")
        result = run_audit(ledger)
    markdown = result.markdown()
    assert "<script>" not in markdown and "**bold**" not in markdown
    row = next(line for line in markdown.splitlines() if "script" in line and line.startswith("| "))
    assert row.count("|") - row.count("\\|") == 4 + len(result.baseline.months) + 2  # cells intact
    assert "\\<script\\>x\\</script\\>a\\|b\\*\\*bold\\*\\*" in markdown


# --------------------------------------------------------------------------- the hostile review's cases


def _kfp_answering(httpserver, pages):
    """A KFP API whose ``GET /runs`` answers ``pages(n)`` (body, content type) for its n-th call
    (from 1); after 30 calls the last page, so code that would page on forever ends."""
    from werkzeug import Response

    calls = []

    def runs(request):
        calls.append(request.args.get("page_token"))
        if len(calls) > 30:
            return Response(json.dumps({"runs": []}), content_type="application/json")
        body, kind = pages(len(calls))
        return Response(body, content_type=kind)

    httpserver.expect_request("/apis/v2beta1/healthz").respond_with_json({"multi_user": False})
    httpserver.expect_request("/apis/v2beta1/runs", method="GET").respond_with_handler(runs)
    return httpserver.url_for("").rstrip("/"), calls


_RUN = v2beta1_run("run-x", "churn-model")


@pytest.mark.parametrize("case, message", [
    ("html", "answered page 1 of the runs with an HTML page, not a KFP v2beta1 run list"),
    ("cut json", "answered page 1 of the runs with cut or malformed JSON, not a KFP v2beta1 run list"),
    ("repeated token", "answered page 3 of the runs with a page token it gave before: its paging loops; stopped"),
    ("endless pages", "listed more than 5 pages of 200 runs without an end; stopped"),
    ("bad created_at", "the KFP API answered run 'run-x' with field created_at 'last tuesday', not an RFC 3339 "
                       "timestamp"),
])
def test_a_kfp_api_answering_nonsense_is_one_line_and_nothing_is_written(demo, httpserver, tmp_path, capsys,
                                                                         monkeypatch, case, message):
    from greenkfp.pipelines import audit_cli

    monkeypatch.setattr(audit_cli, "KFP_MAX_PAGES", 5)
    page = json.dumps({"runs": [_RUN], "total_size": 1})
    pages = {
        "html": lambda n: ("<!doctype html><html><body>Sign in</body></html>", "text/html"),
        "cut json": lambda n: (page[:len(page) // 2], "application/json"),
        "repeated token": lambda n: (json.dumps({"runs": [_RUN], "next_page_token": "t1" if n == 1 else "t2"}),
                                     "application/json"),
        "endless pages": lambda n: (json.dumps({"runs": [], "next_page_token": f"t{n}"}), "application/json"),
        "bad created_at": lambda n: (json.dumps({"runs": [{**_RUN, "created_at": "last tuesday"}]}),
                                     "application/json"),
    }[case]
    host, calls = _kfp_answering(httpserver, pages)
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(capsys, "--ledger", demo[0], "--output", str(out), "--kfp-host", host)
    assert code == 2 and stdout == "" and stderr.count("\n") == 1, stderr
    assert message in stderr
    if case != "bad created_at":
        assert stderr.startswith(f"error: --kfp-host {host} {message}"), stderr
    assert not out.exists() and len(calls) <= 5


def test_a_number_option_is_a_plain_decimal(demo, tmp_path, capsys):
    code, _, stderr = run_cli(capsys, "--ledger", demo[0], "--output", str(tmp_path / "out"), "--reduction-percent",
                              "2_5")
    assert code == 2 and stderr == "error: --reduction-percent must be a number, got '2_5'\n"


def test_a_target_before_the_audited_months_names_the_option(demo, tmp_path, capsys):
    code, stdout, stderr = run_cli(capsys, "--ledger", demo[0], "--output", str(tmp_path / "out"), "--from",
                                   "2026-07", "--to", "2026-09", "--target-by", "2026-09")
    assert code == 2 and stderr == ("error: --target-by must be a month after the last audited month 2026-09, "
                                    "got '2026-09'\n")
    assert not (tmp_path / "out").exists()


def test_the_same_export_given_twice_is_refused(demo, tmp_path, capsys):
    url, exports = demo
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(Path(exports["gcp"]).read_bytes())
    for again in (exports["gcp"], copy):
        code, _, stderr = run_cli(capsys, "--ledger", url, "--output", str(tmp_path / "out"), "--gcp-export",
                                  str(exports["gcp"]), "--gcp-export", str(again))
        assert code == 2 and stderr.startswith(f"error: --gcp-export {again}: is the same ") \
            and "counted twice" in stderr, stderr
        assert not (tmp_path / "out").exists()


def test_export_rows_outside_the_audited_months_are_counted_in_audit_md(demo, tmp_path, capsys):
    url, exports = demo
    out = tmp_path / "out"
    assert run_cli(capsys, "--ledger", url, "--output", str(out), "--from", "2026-08", "--to", "2026-09",
                   "--gcp-export", str(exports["gcp"]))[0] == 0
    july = sum(1 for line in Path(exports["gcp"]).read_text().splitlines() if '"2026-07-01"' in line)
    assert july > 0
    page = (out / "audit.md").read_text()
    assert (f"{july:,} cloud export row(s) are of months outside 2026-08 to 2026-09 and are not reconciled: "
            f"{exports['gcp']} ({july:,})") in page
    assert json.loads((out / "inventory.json").read_text())["notes"][0].startswith(f"{july:,} cloud export row(s)")


def test_an_audit_never_writes_to_the_ledger(demo, tmp_path, capsys):
    empty = tmp_path / "z2.db"
    empty.write_bytes(b"")  # not a ledger: refused, and left as it was (0 bytes, no journal beside it)
    code, _, err = run_cli(capsys, "--ledger", f"sqlite:///{empty}", "--output", str(tmp_path / "x2"))
    assert code == 2 and "is not a greenkfp ledger" in err and err.count("\n") == 1
    assert empty.stat().st_size == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["z2.db"]
    other = tmp_path / "other.db"  # a SQLite file of other tables, in rollback-journal mode
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE notes (x)")
    connection.close()
    before = other.read_bytes()
    code, _, err = run_cli(capsys, "--ledger", f"sqlite:///{other}", "--output", str(tmp_path / "x3"))
    assert code == 2 and other.read_bytes() == before  # journal_mode=WAL would rewrite its header
    url, _ = demo  # a ledger audited: its file's bytes unchanged
    path = Path(url.removeprefix("sqlite:///"))
    before = path.read_bytes()
    code, _, err = run_cli(capsys, "--ledger", url, "--output", str(tmp_path / "x4"), "--from", "2026-07",
                           "--to", "2026-09")
    assert code == 0, err
    assert path.read_bytes() == before


def test_months_after_now_are_refused_and_runs_dated_after_now_are_noted(tmp_path, capsys):
    """The audit took --to in the future, and a ledger's runs dated after now, without a word."""
    from datetime import timedelta

    now = datetime.now(timezone.utc)
    month = f"{now:%Y-%m}"
    later = f"{now.year + (now.month == 12):04d}-{now.month % 12 + 1:02d}"
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with Ledger(url) as ledger:
        ledger.set_limit("research", month, 10_000, "hard", actor="lead")
        ledger.import_settled_runs([
            {"run_id": f"r{i}", "team": "research", "period": month, "pipeline": "training", "estimate_g": 100.0,
             "actual_g": 90.0, "decided_at": now - timedelta(minutes=10),
             "settled_at": now + timedelta(days=2) if i == 0 else now - timedelta(minutes=5)} for i in range(3)],
            actor="test")
    out = tmp_path / "audit"
    for option in ("--from", "--to"):
        code, stdout, err = run_cli(capsys, "--ledger", url, "--output", str(out), option, later)
        assert code == 2 and stdout == ""
        assert err == (f"error: {option} must not be after the current month ({month}): runs are settled after they "
                       f"ran, got {later!r}\n")
        assert not out.exists()
    code, stdout, err = run_cli(capsys, "--ledger", url, "--output", str(out))
    assert code == 0, err
    assert "note: the ledger holds 1 settled run dated after now (the latest " in stdout
