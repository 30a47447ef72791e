"""The quarterly report (``greenkfp report quarterly``): its figures from a real ledger (SQLite
and PostgreSQL) and an audit baseline, its four files, its one-line errors, and the HTML page as
headless Chromium renders it."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from greenkfp.components.energy import PRESETS, resolve_profile
from greenkfp.components.energy.model import model_energy
from greenkfp.components.governance import Ledger
from greenkfp.components.governance.quarterly import (CARBON_PRICE_SOURCE, DEFAULT_CARBON_PRICE_EUR_PER_T,
                                                      ReportError, load_baseline, parse_quarter, quarterly_report)
from greenkfp.components.governance.quarterly_render import (PLOTS, render_csv, render_html, render_markdown,
                                                             report_files, write_report)
from greenkfp.components.records import AuditBaseline, QuarterlyReport, RunFacts
from greenkfp.pipelines.cli import main

NOW = datetime(2027, 1, 5, tzinfo=timezone.utc)
MONTHS = ("2026-10", "2026-11", "2026-12")
BASELINE_MONTHS = ("2026-07", "2026-08", "2026-09")
#: Each team's baseline month, grams (the mean of its three baseline months).
BASE = {"alpha": 1500.0, "beta": 2000.0}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def saving(lever: str, estimate: float | None, low: float = 0.0, high: float = 0.0, method: str = "modeled") -> dict:
    figure = None if estimate is None else {"estimate": estimate, "low": low, "high": high}
    return {"lever": lever, "saved_g": figure, "method": method, "basis": f"{lever} basis"}


def facts(*savings: dict, energy_kwh: float | None = 0.5, promoted: bool = True, selected_accuracy: float = 0.90,
          selected_interval: tuple[float, float] = (0.88, 0.92), baseline_accuracy: float = 0.91,
          baseline_interval: tuple[float, float] = (0.89, 0.93), selected_ms: float = 4.0, baseline_ms: float = 5.0,
          delay_hours: float = 0.0, gate_action: str | None = None) -> dict:
    action = gate_action or ("wait" if delay_hours else "run_now")
    data = {"schema": RunFacts.SCHEMA, "pipeline": "training", "variant": "mlp/int8", "savings": list(savings),
            "promoted": promoted, "gate_action": action, "gate_refused": action == "refuse",
            "gate_delay_hours": delay_hours,
            "selected": {"name": "mlp/int8", "accuracy": selected_accuracy,
                         "accuracy_interval": {"estimate": selected_accuracy, "low": selected_interval[0],
                                               "high": selected_interval[1]}, "latency_p95_ms": selected_ms},
            "baseline": {"name": "mlp/fp32", "accuracy": baseline_accuracy,
                         "accuracy_interval": {"estimate": baseline_accuracy, "low": baseline_interval[0],
                                               "high": baseline_interval[1]}, "latency_p95_ms": baseline_ms},
            "energy_kwh": energy_kwh, "energy_method": None if energy_kwh is None else "modeled"}
    RunFacts.from_dict(data)  # a valid record, as a settlement would carry
    return data


def run(run_id: str, team: str, month: str, actual_g: float, run_facts: dict | None) -> dict:
    day = f"{month}-10T12:00:00"
    return {"run_id": run_id, "team": team, "period": month, "pipeline": "training", "estimate_g": actual_g + 10,
            "actual_g": actual_g, "decided_at": utc(day), "settled_at": utc(f"{month}-10T15:00:00"),
            **({} if run_facts is None else {"facts": run_facts})}


#: The runs of the quarter: (run id, team, month, grams, facts).
RUNS = [
    # alpha (hard 1,000 g a month; 2026-11: +200 g transferred from beta and an approved 300 g exception)
    run("a1", "alpha", "2026-10", 400.0, facts(saving("time_shifting", 10, 5, 15), saving("quantization", 5, -10, 20),
                                                 energy_kwh=1.0, delay_hours=3.0)),
    run("a2", "alpha", "2026-10", 300.0, facts(saving("time_shifting", 10, 5, 15), energy_kwh=0.5, delay_hours=5.0)),
    run("a3", "alpha", "2026-11", 1350.0, facts(saving("time_shifting", None), saving("quantization", 5, -10, 20),
                                                  energy_kwh=None, selected_accuracy=0.80,
                                                  selected_interval=(0.78, 0.82))),
    run("a4", "alpha", "2026-12", 1100.0, None),
    # beta (soft 2,000 g a month, 10 % overdraft)
    run("b1", "beta", "2026-10", 900.0, facts(saving("time_shifting", 10, 5, 15, method="measured"),
                                                energy_kwh=2.0, promoted=False)),
    run("b2", "beta", "2026-11", 1000.0, facts(saving("model_selection", 40, 30, 50, method="measured"),
                                                 energy_kwh=1.5, selected_ms=6.0, baseline_ms=4.0, delay_hours=7.0)),
    run("b3", "beta", "2026-12", 2150.0, facts(saving("model_selection", 40, 30, 50, method="measured"),
                                                 energy_kwh=1.5)),
]


def baseline_data(**changes) -> dict:
    data = {"schema": AuditBaseline.SCHEMA, "generated_at": "2026-10-01T00:00:00Z", "months": list(BASELINE_MONTHS),
            "teams": {team: {"tier": tier, "monthly_g": {m: grams for m in BASELINE_MONTHS}, "mean_monthly_g": grams,
                             "runs": 30} for (team, grams), tier in zip(BASE.items(), ("hard", "soft"))},
            "target": {"reduction_percent": 30.0, "by": "2027-09"},
            "sources": {"ledger": "sqlite:///ledger.db", "kfp_host": None, "cloud_exports": []}}
    data.update(changes)
    return data


def seed(url: str) -> None:
    """A quarter of two teams: limits, a transfer, exceptions (approved, rejected, pending), two
    refusals (the hard budget, the policy) and the runs above."""
    clock = [utc("2026-10-01T00:00:00")]
    with Ledger(url, clock=lambda: clock[0]) as ledger:
        for month in MONTHS:
            ledger.set_limit("alpha", month, 1000, "hard", actor="lead")
            ledger.set_limit("beta", month, 2000, "soft", overdraft_percent=10, actor="lead")
        ledger.add_board_member("carol", actor="lead")
        ledger.add_board_member("dave", actor="lead")
        clock[0] = utc("2026-11-02T09:00:00")
        ledger.transfer("beta", "alpha", "2026-11", 200, approver="carol", reason="beta's sweep moved to December")
        granted = ledger.request_exception("alpha", "2026-11", 300, requester="ann", reason="paper deadline",
                                           expires_at=utc("2026-11-30T23:00:00"))
        ledger.approve_exception(granted, approver="carol")
        rejected = ledger.request_exception("alpha", "2026-12", 100, requester="ann", reason="one more sweep",
                                            expires_at=utc("2026-12-31T23:00:00"))
        ledger.reject_exception(rejected, approver="dave", reason="use the gate's windows instead")
        ledger.request_exception("beta", "2026-12", 500, requester="bob", reason="launch", expires_at=utc("2027-02-01T00:00:00"))
        ledger.request_exception("beta", "2026-12", 50, requester="bob", reason="never decided",
                                 expires_at=utc("2026-12-20T00:00:00"))
        clock[0] = utc("2026-12-05T09:00:00")
        assert not ledger.reserve("alpha", "2026-12", 5000, "too-big", actor="gk").granted
        assert not ledger.reserve("beta", "2026-12", 10, "vetoed", actor="gk", allow=False,
                                  reasons=["a GPU pipeline outside its window"]).granted
        assert ledger.import_settled_runs(RUNS, actor="test") == len(RUNS)


@pytest.fixture
def seeded(ledger_url):
    seed(ledger_url)
    return ledger_url


@pytest.fixture
def baseline_file(tmp_path) -> Path:
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(baseline_data()), encoding="utf-8")
    return path


def report_of(url: str, **options) -> QuarterlyReport:
    with Ledger(url) as ledger:
        return quarterly_report(ledger, "2026Q4", AuditBaseline.from_dict(baseline_data()), baseline_source="b.json",
                                now=NOW, **options)


# --------------------------------------------------------------------------- quarters


@pytest.mark.parametrize("text, months", [("2026Q4", ("2026-10", "2026-11", "2026-12")),
                                          ("2027Q1", ("2027-01", "2027-02", "2027-03"))])
def test_a_quarter_is_its_three_months(text, months):
    assert parse_quarter(text).months == months


@pytest.mark.parametrize("text", ["2026Q5", "2026Q0", "26Q4", "2026q4", "2026-Q4", " 2026Q4", "", "1969Q4", None])
def test_a_malformed_or_unknown_quarter_is_one_line_naming_it(text):
    with pytest.raises(ReportError) as caught:
        parse_quarter(text)
    assert str(caught.value) == f"quarter must be a calendar quarter YYYYQn such as 2026Q4 (n from 1 to 4), got {text!r}"


# --------------------------------------------------------------------------- figures


def test_emissions_per_team_and_month_against_budget_and_baseline(seeded):
    report = report_of(seeded)
    months = {(m.team, m.month): m for m in report.team_months}
    assert [months["alpha", m].emissions_g for m in MONTHS] == [700.0, 1350.0, 1100.0]
    assert [months["alpha", m].runs for m in MONTHS] == [2, 1, 1]
    # 2026-11: limit 1,000 + 200 transferred; + the approved 300 g exception = 1,500 allowed; 1,350 used
    november = months["alpha", "2026-11"]
    assert (november.limit_g, november.transferred_g, november.exceptions_g, november.allowed_g) == (1200, 200, 300, 1500)
    assert november.status == "in overdraft or exception"
    assert months["alpha", "2026-10"].status == "within limit"
    assert months["alpha", "2026-12"].status == "over allowance"  # the rejected exception gives nothing
    assert months["alpha", "2026-12"].exceptions_g == 0
    # beta: soft, 10 % overdraft of the limit after transfers
    assert months["beta", "2026-11"].limit_g == 1800 and months["beta", "2026-11"].overdraft_g == pytest.approx(180)
    assert months["beta", "2026-12"].status == "in overdraft or exception"  # 2,150 <= 2,000 + 200
    assert months["beta", "2026-12"].used_percent == pytest.approx(107.5)
    # the baseline month and the target path: 30 % below by 2027-09, a straight path from 2026-09
    assert months["alpha", "2026-10"].baseline_g == 1500
    assert [months["alpha", m].trajectory_g for m in MONTHS] == pytest.approx(
        [1500 * (1 - 0.3 * k / 12) for k in (1, 2, 3)])
    teams = {t.team: t for t in report.teams}
    assert teams["alpha"].emissions_g == 3150 and teams["alpha"].monthly_mean_g == 1050
    assert teams["alpha"].change_percent == pytest.approx(-30.0)
    assert teams["beta"].change_percent == pytest.approx((4050 / 3 - 2000) / 2000 * 100)
    assert teams["alpha"].required_percent == pytest.approx(7.5) and teams["alpha"].on_track
    assert report.sources.settled_runs == 7 and report.sources.runs_with_facts == 6


def test_progress_toward_the_target_all_teams(seeded):
    progress = report_of(seeded).progress
    assert progress.baseline_monthly_g == 3500 and progress.target_monthly_g == pytest.approx(2450)
    assert progress.quarter_monthly_g == pytest.approx(7200 / 3)
    assert progress.achieved_percent == pytest.approx((1 - 2400 / 3500) * 100)
    assert progress.required_percent == pytest.approx(7.5) and progress.on_track
    points = {p.month: p for p in progress.trajectory}
    assert [p.month for p in progress.trajectory][0] == "2026-07" and progress.trajectory[-1].month == "2027-09"
    assert points["2026-08"].kind == "baseline" and points["2026-08"].actual_g == 3500
    assert points["2026-11"].kind == "quarter" and points["2026-11"].actual_g == 2350
    assert points["2027-03"].kind == "path" and points["2027-03"].actual_g is None
    assert points["2027-09"].path_g == pytest.approx(2450) and points["2026-09"].path_g == 3500


def test_savings_by_lever_sum_estimates_and_bounds_and_say_when_zero_is_inside(seeded):
    report = report_of(seeded)
    time_shifting = report.lever("time_shifting")
    assert (time_shifting.runs, time_shifting.runs_without_figure) == (3, 1)  # a3 did not wait: no figure, not 0
    assert (time_shifting.estimate_g, time_shifting.low_g, time_shifting.high_g) == (30, 15, 45)
    assert time_shifting.significant and time_shifting.method == "mixed"
    assert (time_shifting.measured_runs, time_shifting.modeled_runs) == (1, 2)
    quantization = report.lever("quantization")
    assert (quantization.estimate_g, quantization.low_g, quantization.high_g) == (10, -20, 40)
    assert quantization.significant is False and quantization.verdict.startswith("no significant difference")
    selection = report.lever("model_selection")
    assert selection.significant and selection.method == "measured" and selection.estimate_g == 80
    autoscaling = report.lever("autoscaling")
    assert autoscaling.runs == 0 and autoscaling.significant is None and autoscaling.estimate_g is None
    by_team = {(s.team, s.lever): s for s in report.savings_by_team}
    assert by_team["alpha", "time_shifting"].estimate_g == 20 and by_team["beta", "time_shifting"].estimate_g == 10
    assert ("beta", "quantization") not in by_team


def test_business_impact_models_refusals_and_delays(seeded):
    impact = {i.team: i for i in report_of(seeded).impact}
    alpha, beta = impact["alpha"], impact["beta"]
    assert alpha.promoted_runs == 3  # a4 has no facts
    assert alpha.accuracy_change_pp_mean == pytest.approx((-1 - 1 - 11) / 3)
    assert alpha.accuracy_change_pp_min == pytest.approx(-11)
    assert alpha.accuracy_worse_runs == 1  # a3: [0.78, 0.82] wholly below [0.89, 0.93]
    assert alpha.latency_change_ms_mean == pytest.approx(-1) and alpha.latency_change_percent_mean == pytest.approx(-20)
    assert beta.promoted_runs == 2 and beta.latency_change_ms_mean == pytest.approx(0.5)  # (+2 - 1) / 2
    assert (alpha.delayed_runs, alpha.delay_hours_total, alpha.delay_hours_max) == (2, 8.0, 5.0)
    assert alpha.delay_hours_p95 == pytest.approx(4.9)
    assert (alpha.budget_refused, beta.budget_refused) == (1, 1)
    assert alpha.refusal_reasons == {"estimate beyond the remaining budget (hard tier)": 1}
    assert beta.refusal_reasons == {"refused by the policy: a GPU pipeline outside its window": 1}


def test_the_boards_exceptions_and_transfers_with_reasons(seeded):
    report = report_of(seeded)
    exceptions = {x.reason: x for x in report.exceptions}
    assert exceptions["paper deadline"].status == "approved" and exceptions["paper deadline"].approver == "carol"
    rejected = exceptions["one more sweep"]
    assert (rejected.status, rejected.approver, rejected.decision_reason) == (
        "rejected", "dave", "use the gate's windows instead")
    assert exceptions["launch"].status == "pending" and exceptions["never decided"].status == "expired"
    (transfer,) = report.transfers
    assert (transfer.from_team, transfer.to_team, transfer.amount_g, transfer.approver, transfer.reason) == (
        "beta", "alpha", 200, "carol", "beta's sweep moved to December")


@pytest.fixture
def sqlite_seeded(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    seed(url)
    return url


def test_total_cost_of_ownership(sqlite_seeded):
    report = report_of(sqlite_seeded, hardware={"*": "n2-standard-4", "beta": "c5.2xlarge"}, usd_per_eur=1.25)
    costs = {c.team: c for c in report.costs}
    n2, c5 = PRESETS["n2-standard-4"], PRESETS["c5.2xlarge"]
    full_n2 = model_energy(n2, 100, 3600, n2.vcpus).total_kwh
    alpha = costs["alpha"]
    assert (alpha.runs_priced, alpha.runs_unpriced) == (2, 2)  # a3: no energy figure; a4: no facts
    assert alpha.machine_hours == pytest.approx(1.5 / full_n2)
    assert alpha.cloud_cost_usd == pytest.approx(1.5 / full_n2 * 0.194236)
    assert alpha.hourly_price_usd == n2.hourly_price_usd == 0.194236
    assert alpha.emissions_t == pytest.approx(3150e-6)
    assert alpha.carbon_exposure_eur == pytest.approx(3150e-6 * 75)
    assert alpha.saved_t == pytest.approx(30e-6)  # 10 + 5 + 10 + 5 g of point estimates
    assert alpha.total_eur == pytest.approx(alpha.cloud_cost_usd / 1.25 + alpha.carbon_exposure_eur)
    beta = costs["beta"]
    assert beta.hardware_profile == "c5.2xlarge" and beta.hourly_price_usd == 0.34
    assert beta.machine_hours == pytest.approx(5.0 / model_energy(c5, 100, 3600, c5.vcpus).total_kwh)
    assumptions = report.assumptions
    assert assumptions.carbon_price_eur_per_t == DEFAULT_CARBON_PRICE_EUR_PER_T == 75
    assert assumptions.carbon_price_source == CARBON_PRICE_SOURCE and "2025" in CARBON_PRICE_SOURCE
    assert "us-central1" in assumptions.hardware["alpha"]["hourly_price_source"]
    priced = report_of(sqlite_seeded, carbon_price_eur_per_t=100)
    assert {c.team: c.carbon_exposure_eur for c in priced.costs}["alpha"] == pytest.approx(3150e-6 * 100)
    assert priced.assumptions.carbon_price_source == "given with --carbon-price-eur-per-t"
    assert all(c.total_eur is None for c in priced.costs)  # no rate: the currencies are not added


def test_every_preset_has_an_hourly_price_with_its_source_and_it_can_be_overridden():
    for profile in PRESETS.values():
        assert profile.hourly_price_usd > 0 and "$" in profile.sources["hourly_price_usd"]
    negotiated = resolve_profile("m5.xlarge", {"hourly_price_usd": 0.12})
    assert negotiated.hourly_price_usd == 0.12 and negotiated.sources["hourly_price_usd"] == "hardware_overrides"
    with pytest.raises(ValueError, match="hourly_price_usd must be >= 0, got -1"):
        resolve_profile("m5.xlarge", {"hourly_price_usd": -1})


# --------------------------------------------------------------------------- the files


def test_the_json_reads_back_and_the_csv_holds_the_same_figures(sqlite_seeded, tmp_path):
    report = report_of(sqlite_seeded)
    paths = write_report(report, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths.values())
    again = QuarterlyReport.from_json(paths["json"].read_text())
    assert again == report
    rows = list(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    figures = {(r["section"], r["team"], r["month"], r["item"], r["figure"]): r["value"] for r in rows}
    for m in report.team_months:
        assert float(figures["emissions", m.team, m.month, "", "emissions_g"]) == m.emissions_g
        assert figures["emissions", m.team, m.month, "", "status"] == m.status
    for s in report.savings:
        value = figures["savings", "", "", s.lever, "estimate_g"]
        assert (value == "" if s.estimate_g is None else float(value) == s.estimate_g)
    for c in report.costs:
        assert float(figures["costs", c.team, "", "", "cloud_cost_usd"]) == pytest.approx(c.cloud_cost_usd)
    assert float(figures["progress", "", "", "", "achieved_percent"]) == report.progress.achieved_percent
    markdown = paths["markdown"].read_text()
    assert len(markdown.splitlines()) < 60  # one page
    assert "| alpha | hard |" in markdown and "no significant difference" in markdown and "behind" not in markdown


def test_texts_from_the_ledger_are_escaped_everywhere(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    team = "<img src=x onerror=alert(1)>$x$|"
    with Ledger(url, clock=lambda: utc("2026-10-01T00:00:00")) as ledger:
        ledger.set_limit(team, "2026-10", 100, "hard", actor="lead")
        ledger.import_settled_runs([run("r1", team, "2026-10", 50, facts(saving("quantization", 1, 0.5, 2)))],
                                   actor="t")
        report = quarterly_report(ledger, "2026Q4", AuditBaseline.from_dict(baseline_data()), now=NOW)
    page = render_html(report)
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    markdown = render_markdown(report)  # a pipe in a name does not break a Markdown table, nor a tag render
    assert "\\<img src=x onerror=alert(1)\\>$x$\\|" in markdown and "<img" not in markdown.replace("\\<img", "")
    assert any(row.startswith("emissions,<img src=x onerror=alert(1)>$x$|,2026-10") for row in
               render_csv(report).splitlines())


def test_csv_texts_a_spreadsheet_would_run_as_formulas_get_a_quote_and_numbers_stay_numeric(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with Ledger(url, clock=lambda: utc("2026-10-01T00:00:00")) as ledger:
        for team in ("=cmd", "+x", "-y", "@z"):
            ledger.set_limit(team, "2026-10", 100, "hard", actor="lead")
            ledger.import_settled_runs([run(f"r-{team}", team, "2026-10", 50, facts(saving("quantization", -1, -2, 0)))],
                                       actor="t")
        report = quarterly_report(ledger, "2026Q4", AuditBaseline.from_dict(baseline_data()), now=NOW)
    rows = list(csv.reader(io.StringIO(render_csv(report))))
    teams = {row[1] for row in rows[1:]}
    assert {"'=cmd", "'+x", "'-y", "'@z"} <= teams and not teams & {"=cmd", "+x", "-y", "@z"}
    values = [row[5] for row in rows[1:] if row[5].startswith(("-", "'-"))]
    assert values and all(value.startswith("-") and float(value) < 0 for value in values)  # numbers stay numbers
    for row in rows:
        assert not any(cell.startswith(("=", "+", "@", "\t", "\r")) for cell in row), row


def test_nothing_is_written_when_the_output_is_a_file(sqlite_seeded, tmp_path):
    report = report_of(sqlite_seeded)
    blocker = tmp_path / "out"
    blocker.write_text("not a folder")
    from greenkfp.components._files import OutputError

    with pytest.raises(OutputError, match=f"^--output '{blocker}': is a file, not a folder$"):
        write_report(report, blocker)
    assert blocker.read_text() == "not a folder"


# --------------------------------------------------------------------------- bad input


def test_an_empty_ledger_and_a_quarter_without_data_are_one_line_errors(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    baseline = AuditBaseline.from_dict(baseline_data())
    with Ledger(url) as ledger:
        with pytest.raises(ReportError, match=r"^ledger holds no budgets: nothing to report"):
            quarterly_report(ledger, "2026Q4", baseline)
        ledger.set_limit("alpha", "2026-10", 100, "hard", actor="lead")
        with pytest.raises(ReportError) as caught:
            quarterly_report(ledger, "2027Q1", baseline, now=NOW)
    assert str(caught.value) == ("quarter has no data in the ledger: no budget, settled run or refusal in 2027-01 to "
                                 "2027-03, got '2027Q1'")


def test_a_quarter_not_after_the_baseline_is_refused(sqlite_seeded):
    with Ledger(sqlite_seeded) as ledger, pytest.raises(ReportError, match=r"quarter must come after the baseline's "
                                                                           r"months \(2026-07 to 2026-09\)"):
        quarterly_report(ledger, "2026Q3", AuditBaseline.from_dict(baseline_data()))


@pytest.mark.parametrize("option, value, message", [
    ("carbon_price_eur_per_t", 0, "carbon_price_eur_per_t must be a number above 0 to 100,000 EUR per tonne CO2eq, got 0"),
    ("carbon_price_eur_per_t", math.nan, "carbon_price_eur_per_t must be a number above 0 to 100,000 EUR per tonne "
                                         "CO2eq, got nan"),
    ("carbon_price_eur_per_t", 1e308, "carbon_price_eur_per_t must be a number above 0 to 100,000 EUR per tonne "
                                      "CO2eq, got 1e+308"),
    ("usd_per_eur", -1.0, "usd_per_eur must be a number from 0.01 to 100 US dollars per euro, got -1.0"),
    ("usd_per_eur", 1e-310, "usd_per_eur must be a number from 0.01 to 100 US dollars per euro, got 1e-310"),
    ("hardware", {"alpha": "n9-huge"}, "hardware_profile must name a preset"),
])
def test_bad_prices_and_profiles_name_the_option(sqlite_seeded, option, value, message):
    with pytest.raises(ReportError, match="^" + re.escape(message)):
        report_of(sqlite_seeded, **{option: value})


@pytest.mark.parametrize("content, problem", [
    (None, "no such file"),
    ("{not json", "is not JSON"),
    (json.dumps({"schema": "greenkfp.other/v1"}), "field 'schema' must be 'greenkfp.audit_baseline/v1'"),
    (json.dumps(baseline_data(months=[])), "field 'months' must name at least one month"),
])
def test_a_missing_or_malformed_baseline_is_one_line(tmp_path, content, problem):
    path = tmp_path / "baseline.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ReportError) as caught:
        load_baseline(path)
    message = str(caught.value)
    assert message.startswith("baseline ") and problem in message and str(path) in message and "\n" not in message


def test_a_baseline_that_is_a_folder_or_a_device_says_so_and_a_bad_value_is_shown_as_given(tmp_path):
    """A folder or a device as the baseline was "no such file"; a bad field showed the file's path
    where the bad value belongs."""
    for path, reason in ((tmp_path, "is a folder, not a file"),
                         ("/dev/zero", "is not a regular file (a device, pipe or socket)")):
        with pytest.raises(ReportError) as caught:
            load_baseline(path)
        assert str(caught.value) == f"baseline {path}: {reason}"
    bad = tmp_path / "b.json"
    data = baseline_data()
    data["target"]["reduction_percent"] = 150
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ReportError) as caught:
        load_baseline(bad)
    message = str(caught.value)
    assert message.startswith(f"baseline {bad}: is not a valid audit baseline")
    assert re.search(r", got 150(\.0)?$", message), message
    assert "field 'target.reduction_percent' must" in message


# --------------------------------------------------------------------------- the command


def cli(*args: str) -> int:
    return main(["report", "quarterly", *args])


@pytest.mark.parametrize("quarter", ["2026Q5", "26Q4"])
def test_cli_bad_quarter_one_line_nothing_written(sqlite_seeded, baseline_file, tmp_path, capsys, quarter):
    out = tmp_path / "report"
    assert cli("--quarter", quarter, "--ledger", sqlite_seeded, "--baseline", str(baseline_file),
               "--output", str(out)) == 2
    err = capsys.readouterr().err
    assert err == f"error: --quarter must be a calendar quarter YYYYQn such as 2026Q4 (n from 1 to 4), got '{quarter}'\n"
    assert not out.exists()


def test_cli_errors_name_the_option(sqlite_seeded, baseline_file, tmp_path, capsys):
    out = tmp_path / "report"
    common = ("--quarter", "2026Q4", "--output", str(out))
    cases = [
        (("--ledger", f"sqlite:///{tmp_path / 'typo.db'}", "--baseline", str(baseline_file)),
         f"error: --ledger sqlite:///{tmp_path / 'typo.db'} does not exist"),
        (("--ledger", sqlite_seeded, "--baseline", str(tmp_path / "missing.json")),
         f"error: --baseline {tmp_path / 'missing.json'}: no such file (greenkfp audit writes the baseline.json)"),
        (("--ledger", sqlite_seeded, "--baseline", str(tmp_path)), f"error: --baseline {tmp_path}: is a folder"),
        (("--ledger", sqlite_seeded, "--baseline", str(baseline_file), "--carbon-price-eur-per-t", "1e308"),
         "error: --carbon-price-eur-per-t must be a number above 0 to 100,000 EUR per tonne CO2eq, got 1e+308"),
        (("--ledger", sqlite_seeded, "--baseline", str(baseline_file), "--usd-per-eur", "1e-310"),
         "error: --usd-per-eur must be a number from 0.01 to 100 US dollars per euro, got 1e-310"),
        (("--ledger", sqlite_seeded, "--baseline", str(baseline_file), "--carbon-price-eur-per-t", "cheap"),
         "error: --carbon-price-eur-per-t must be a number, got 'cheap'"),
        (("--ledger", sqlite_seeded, "--baseline", str(baseline_file), "--hardware-profile", "alpha=n9"),
         "error: --hardware-profile must name a preset"),
        (("--ledger", "postgresql+psycopg://u:s3cret@127.0.0.1:1/db", "--baseline", str(baseline_file)),
         "error: --ledger "),
    ]
    for args, start in cases:
        assert cli(*common, *args) == 2
        captured = capsys.readouterr()
        assert captured.err.startswith(start) and captured.err.count("\n") == 1, captured.err
        assert "s3cret" not in captured.err and "Traceback" not in captured.err
        assert not out.exists()
    assert not (tmp_path / "typo.db").exists()  # reading never creates a ledger


def test_cli_empty_ledger(tmp_path, baseline_file, capsys):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    Ledger(url).close()
    assert cli("--quarter", "2026Q4", "--ledger", url, "--baseline", str(baseline_file), "--output",
               str(tmp_path / "r")) == 2
    assert capsys.readouterr().err.startswith("error: --ledger holds no budgets: nothing to report")
    assert not (tmp_path / "r").exists()


def test_cli_writes_the_four_files(sqlite_seeded, baseline_file, tmp_path, capsys):
    out = tmp_path / "report"
    assert cli("--quarter", "2026Q4", "--ledger", sqlite_seeded, "--baseline", str(baseline_file), "--output", str(out),
               "--usd-per-eur", "1.2") == 0
    printed = capsys.readouterr().out
    assert printed.startswith("2026Q4: 7 settled runs, 7.20 kg CO2eq;")
    files = report_files("2026Q4", out)
    assert all(path.is_file() and str(path) in printed for path in files.values())
    report = QuarterlyReport.from_json(files["json"].read_text())
    assert report.assumptions.usd_per_eur == 1.2 and report.sources.baseline == str(baseline_file)


def test_cli_a_failed_rerun_leaves_every_earlier_file_as_it_was(sqlite_seeded, baseline_file, tmp_path, capsys):
    out = tmp_path / "report"
    args = ("--quarter", "2026Q4", "--ledger", sqlite_seeded, "--baseline", str(baseline_file), "--output", str(out))
    assert cli(*args) == 0
    files = report_files("2026Q4", out)
    files["markdown"].unlink()
    files["markdown"].mkdir()  # the rerun cannot write its last file
    before = {p.name: p.read_text() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()
    assert cli(*args, "--carbon-price-eur-per-t", "150") == 2
    captured = capsys.readouterr()
    assert {p.name: p.read_text() for p in out.iterdir() if p.is_file()} == before
    assert captured.out == ""
    assert captured.err == f"error: --output '{out}': {files['markdown']} is a folder, not a file\n"
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in files.values())  # no temporary file


def test_cli_bad_output_folders_are_one_line(sqlite_seeded, baseline_file, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    for value, reason in (("", "must name a folder (it is empty)"),
                          (f"{blocker}/out", f"{blocker} is a file, not a folder")):
        assert cli("--quarter", "2026Q4", "--ledger", sqlite_seeded, "--baseline", str(baseline_file),
                   "--output", value) == 2
        assert capsys.readouterr().err == f"error: --output {value!r}: {reason}\n"
    assert not list(tmp_path.glob("quarterly-*"))  # nothing written in the current folder


# --------------------------------------------------------------------------- the page in a browser

#: What the test reads in the rendered page: the plots, their alt texts and captions, and the ids.
PROBE = """() => {
  const figures = [...document.querySelectorAll('figure')].map(f => {
    const svg = f.querySelector('svg');
    return {id: f.id, role: svg && svg.getAttribute('role'),
            title: svg && svg.querySelector(':scope > title') && svg.querySelector(':scope > title').textContent,
            desc: svg && svg.querySelector(':scope > desc') ? svg.querySelector(':scope > desc').textContent : '',
            caption: f.querySelector('figcaption') ? f.querySelector('figcaption').textContent : '',
            marks: svg ? svg.querySelectorAll('path, use, rect').length : 0,
            height: svg ? svg.getBoundingClientRect().height : 0};
  });
  const ids = [...document.querySelectorAll('[id]')].map(e => e.id);
  return {figures, duplicateIds: ids.filter((id, i) => ids.indexOf(id) !== i), scripts: document.scripts.length,
          width: document.documentElement.scrollWidth, text: document.body.innerText};
}"""


def test_the_page_loads_cleanly_in_chromium_with_every_plot(chromium, sqlite_seeded, tmp_path):
    report = report_of(sqlite_seeded)
    page = write_report(report, tmp_path / "report")["html"]
    text = re.sub(r'xmlns(:\w+)?="[^"]*"', "", page.read_text())  # namespace names are not addresses
    assert "http:" not in text and "https:" not in text and "<script" not in text
    screen = chromium.load(page, screenshot=tmp_path / "screenshots" / "report.png", probe=PROBE)
    assert screen.problems == [] and screen.requests == []
    found = screen.probe
    assert [f["id"] for f in found["figures"]] == [f"figure-{name}" for name in ("emissions", "trajectory", "savings")]
    for figure in found["figures"]:
        name = figure["id"].removeprefix("figure-")
        assert figure["role"] == "img" and figure["title"] == PLOTS[name]
        assert len(figure["desc"]) > 100 and figure["caption"].startswith(PLOTS[name])
        assert figure["marks"] > 20 and figure["height"] > 150  # drawn, and drawn at a readable size
    assert found["duplicateIds"] == [] and found["scripts"] == 0
    assert found["width"] <= 1280  # nothing wider than the window
    for text in ("alpha", "paper deadline", "use the gate's windows instead", "no significant difference",
                 "beta's sweep moved to December"):
        assert text in found["text"]
    printed = chromium.load(page, screenshot=tmp_path / "screenshots" / "print.png", media="print", width=794,
                            pdf=tmp_path / "screenshots" / "report.pdf", probe=PROBE)
    assert printed.problems == [] and printed.probe["width"] <= 794
    assert (tmp_path / "screenshots" / "report.pdf").stat().st_size > 10_000


def test_hostile_names_do_not_run_or_fetch_anything_in_the_page(chromium, tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    team = "<img src=x onerror=console.error(1)>"
    with Ledger(url, clock=lambda: utc("2026-10-01T00:00:00")) as ledger:
        ledger.set_limit(team, "2026-10", 100, "hard", actor="lead")
        ledger.import_settled_runs([run("r1", team, "2026-10", 50, facts(saving("quantization", 1, 0.5, 2)))],
                                   actor="t")
        report = quarterly_report(ledger, "2026Q4", AuditBaseline.from_dict(baseline_data()), now=NOW)
    page = write_report(report, tmp_path / "report")["html"]
    loaded = chromium.load(page, probe="() => document.body.innerText")
    assert loaded.problems == [] and loaded.requests == []
    assert team in loaded.probe  # shown as text


def test_cli_seed_demo_then_report(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert main(["report", "seed-demo", "--ledger", url, "--runs-per-month", "60", "--quarter", "2026Q3"]) == 0
    assert capsys.readouterr().out.startswith("seeded 36")  # 6 months x 60 runs (+ the overdrafts settled)
    months = ("2026-04", "2026-05", "2026-06")
    with Ledger(url) as ledger:
        runs = list(ledger.settled_runs(since=months[0], until=months[-1]))
    monthly = {team: {m: sum(r.actual_g for r in runs if r.team == team and r.period == m) for m in months}
               for team in ("research", "production", "growth")}
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(baseline_data(months=list(months), teams={
        team: {"tier": "soft" if team == "production" else "hard", "monthly_g": values,
               "mean_monthly_g": sum(values.values()) / 3, "runs": 30} for team, values in monthly.items()})))
    assert cli("--quarter", "2026Q3", "--ledger", url, "--baseline", str(baseline), "--output", str(tmp_path / "r")) == 0
    report = QuarterlyReport.from_json((tmp_path / "r" / "quarterly-2026Q3.json").read_text())
    assert {t.team for t in report.teams} == {"research", "production", "growth"}
    assert [x.status for x in report.exceptions] == ["approved"] and len(report.transfers) == 1
    assert all(s.runs > 0 for s in report.savings)  # every lever has figures in the demo


@pytest.mark.parametrize("args, message", [
    (("--runs-per-month", "0"), "error: --runs-per-month must be a whole number from 9 to 1,000,000 (fewer leave a "
                                "demo pipeline without runs), got '0'"),
    (("--runs-per-month", "1"), "error: --runs-per-month must be a whole number from 9 to 1,000,000 (fewer leave a "
                                "demo pipeline without runs), got '1'"),
    (("--quarter", "9999Q4"), "error: --quarter must be a quarter whose 3 baseline months start in 1970 or later and "
                              "that ends before 9999-12, got '9999Q4'"),
    (("--exports", "FILE"), "error: --exports 'FILE': is a file, not a folder"),
    (("--exports", ""), "error: --exports '': must name a folder (it is empty)"),
    (("--exports", "DANGLING"), "error: --exports 'DANGLING': is a symlink to a missing path"),
    (("--quarter", "2999Q1"), "error: --quarter has not ended yet (it ends on 2999-04-01; now is "),
    (("--exports", "FILE/sub"), "error: --exports 'FILE/sub': FILE is a file, not a folder"),
    (("--quarter", "2026Q5"), "error: --quarter must be a calendar quarter YYYYQn such as 2026Q4 (n from 1 to 4), got "
                              "'2026Q5'"),
])
def test_cli_seed_demo_bad_options_create_no_ledger(tmp_path, capsys, args, message):
    path = tmp_path / "demo.db"
    blocker = tmp_path / "hostname"
    blocker.write_text("x")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "missing")
    args = [a.replace("FILE", str(blocker)).replace("DANGLING", str(dangling)) for a in args]
    assert main(["report", "seed-demo", "--ledger", f"sqlite:///{path}", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith(message.replace("FILE", str(blocker)).replace("DANGLING", str(dangling)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling", "hostname"]


def test_cli_seed_demo_that_fails_late_leaves_the_ledger_as_it_was(tmp_path, capsys):
    """The exports are written after the runs: a failure there leaves no new ledger, and an
    existing one without the new quarter."""
    exports = tmp_path / "exports"
    (exports / "project-map.json").mkdir(parents=True)  # the last export cannot be written
    new = tmp_path / "new.db"
    assert main(["report", "seed-demo", "--ledger", f"sqlite:///{new}", "--runs-per-month", "9",
                 "--exports", str(exports)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"error: --exports '{exports}': {exports / 'project-map.json'} is a folder, not a file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exports"]
    assert sorted(p.name for p in exports.iterdir()) == ["project-map.json"]

    from greenkfp.components.records import LEDGER_KINDS

    kept = tmp_path / "kept.db"
    assert main(["report", "seed-demo", "--ledger", f"sqlite:///{kept}", "--runs-per-month", "9",
                 "--quarter", "2026Q2"]) == 0
    with Ledger(f"sqlite:///{kept}") as ledger:
        before = len(ledger.entries_of(LEDGER_KINDS))
    assert main(["report", "seed-demo", "--ledger", f"sqlite:///{kept}", "--runs-per-month", "9",
                 "--quarter", "2025Q4", "--exports", str(exports)]) == 2
    with Ledger(f"sqlite:///{kept}") as ledger:
        assert len(ledger.entries_of(LEDGER_KINDS)) == before
        assert ledger.entries(team="research", period="2025-10") == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exports", "kept.db"]


def test_make_demo_governance_commands_run_as_written_within_a_minute(tmp_path, capsys):
    """The Makefile's demo-governance recipe (seed, audit, report), each greenkfp line run as written
    with the output folder moved into a temporary one."""
    import shlex
    import time

    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    recipe = makefile.split("\ndemo-governance:", 1)[1].split("\n\n", 1)[0].replace("\\\n", " ")
    commands = [shlex.split(line.strip().replace("$(GOVERNANCE)", str(tmp_path / "governance")))
                for line in recipe.splitlines()[1:] if "$(BIN)/greenkfp" in line]
    assert [c[0:2] for c in commands] == [["$(BIN)/greenkfp", "report"], ["$(BIN)/greenkfp", "audit"],
                                          ["$(BIN)/greenkfp", "report"]]
    start = time.perf_counter()
    for command in commands:
        assert main(command[1:]) == 0, capsys.readouterr().err
    assert time.perf_counter() - start < 60
    report = QuarterlyReport.from_json((tmp_path / "governance" / "quarterly-2026Q3.json").read_text())
    baseline = load_baseline(tmp_path / "governance" / "audit" / "baseline.json")
    assert report.progress.baseline_months == baseline.months == ("2026-04", "2026-05", "2026-06")
    # The demo shows a finished quarter, not one still under way.
    assert report.progress.state == "complete", report.progress
    assert {t.team for t in report.teams} == set(baseline.teams) == {"research", "production", "growth"}
    assert {t.tier for t in report.teams} == {"hard", "soft"}
    assert report.sources.settled_runs == report.sources.runs_with_facts > 800


def test_ledger_entries_of_reads_only_the_kinds_and_months_asked(sqlite_seeded):
    from greenkfp.components.governance import BudgetError

    with Ledger(sqlite_seeded) as ledger:
        refused = ledger.entries_of(["decision"], actions=["refused"], since="2026-12", until="2026-12")
        assert sorted(e.run_id for e in refused) == ["too-big", "vetoed"]
        assert [e.period for e in ledger.entries_of(["limit"], since="2026-11", until="2026-11")] == ["2026-11"] * 2
        assert ledger.entries_of(["transfer"], until="2026-10") == []
        for kinds, field in ((["nope"], "kinds"), ("limit", "kinds"), ([], "kinds")):
            with pytest.raises(BudgetError, match=f"^{field} must be a list of entry kinds"):
                ledger.entries_of(kinds)
        with pytest.raises(BudgetError, match="^period must be a calendar month"):
            ledger.entries_of(["limit"], since="2026-13")


# --------------------------------------------------------------------------- review fixes (issue 13)


def test_a_quarter_in_progress_says_so_and_a_future_quarter_is_refused(seeded, baseline_file, tmp_path, capsys):
    with Ledger(seeded) as ledger:
        baseline = AuditBaseline.from_dict(baseline_data())
        report = quarterly_report(ledger, "2026Q4", baseline, now=utc("2026-12-15T08:00:00"))
        with pytest.raises(ReportError) as caught:
            quarterly_report(ledger, "2026Q4", baseline, now=utc("2026-09-20T08:00:00"))
    assert str(caught.value).startswith("quarter has not begun (it starts on 2026-10-01; today is 2026-09-20 UTC)")
    progress = report.progress
    # "data to": the latest settled run (2026-12-10 15:00), not today's date
    assert (progress.state, progress.months_with_data, progress.data_to) == ("in progress", 3, "2026-12-10")
    assert progress.status == "in progress (3 of 3 months, data to 2026-12-10)"
    assert json.loads(report.to_json())["progress"]["status"] == progress.status
    for text in (render_markdown(report), render_html(report)):
        assert "in progress (3 of 3 months, data to 2026-12-10)" in text
        assert "on track" not in text.replace("on track so far", "")  # no verdict on an unfinished quarter
    with Ledger(seeded) as ledger:  # a run settled after now (a clock ahead): data to now, not later
        early = quarterly_report(ledger, "2026Q4", baseline, now=utc("2026-12-05T08:00:00"))
    assert early.progress.data_to == "2026-12-05"
    complete = report_of(seeded)
    assert (complete.progress.state, complete.progress.status) == ("complete", "on track" if complete.progress.on_track
                                                                   else "behind")
    out = tmp_path / "r"
    assert cli("--quarter", "2099Q1", "--ledger", seeded, "--baseline", str(baseline_file), "--output", str(out)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --quarter has not begun (it starts on 2099-01-01") and err.endswith(", got '2099Q1'\n")
    assert not out.exists()


def test_teams_missing_from_the_baseline_or_the_ledger_are_reported(seeded):
    data = baseline_data()
    data["teams"] = {"alpha": data["teams"]["alpha"], "gamma": {**data["teams"]["beta"]}}
    with Ledger(seeded) as ledger:
        report = quarterly_report(ledger, "2026Q4", AuditBaseline.from_dict(data), now=NOW)
    notes = "\n".join(report.notes)
    assert "team beta has no baseline: excluded from the target" in notes
    assert "team gamma in the baseline has no settled runs this quarter" in notes
    alpha = sum(r["actual_g"] for r in RUNS if r["team"] == "alpha")
    assert report.progress.quarter_monthly_g == pytest.approx(alpha / 3)  # beta's runs are not against the target
    assert report.progress.baseline_monthly_g == pytest.approx(1500 + 2000)
    assert "team beta has no baseline" in render_markdown(report) and "team beta has no baseline" in render_html(report)
    assert "team beta has no baseline" in render_csv(report)


def test_refusals_by_the_real_policy_show_their_reason(seeded):
    from greenkfp.components.governance.policy import RegoPolicy, budget_input

    with Ledger(seeded) as ledger, RegoPolicy() as policy:
        for team, run_id, grams, labels in (("alpha", "rego-hard", 4000.0, {}),
                                            ("beta", "rego-soft", 9000.0, {"greenkfp.io/priority": "production-critical"})):
            status = ledger.status(team, "2026-12")
            decision = policy.decide(budget_input(status, estimate_g=grams, pipeline="training", labels=labels,
                                                  run_id=run_id, now=utc("2026-12-06T09:00:00")))
            assert not decision.allow
            assert not ledger.reserve(team, "2026-12", grams, run_id, actor="gatekeeper", allow=False,
                                      reasons=decision.reasons, overdraft_allowed_g=decision.overdraft_allowed_g,
                                      review_required=decision.review_required).granted
        bad = policy.decide({"team": "alpha"})  # a malformed submission: the policy's input checks
        assert not ledger.reserve("alpha", "2026-12", 1.0, "rego-bad", actor="gatekeeper", allow=False,
                                  reasons=bad.reasons).granted
        report = quarterly_report(ledger, "2026Q4", AuditBaseline.from_dict(baseline_data()), now=NOW)
    impact = {i.team: i for i in report.impact}
    assert impact["alpha"].refusal_reasons == {"estimate beyond the remaining budget (hard tier)": 2,
                                               "malformed submission (the policy's input checks)": 1}
    assert impact["beta"].refusal_reasons == {
        "estimate beyond the remaining budget and the soft tier's overdraft": 1,
        "refused by the policy: a GPU pipeline outside its window": 1}


def test_every_mass_in_the_emissions_table_is_in_its_own_unit(seeded):
    from dataclasses import replace

    report = report_of(seeded)
    small = replace(report.team_months[0], emissions_g=5.0, limit_g=4.0, allowed_g=4.0, baseline_g=250.0,
                    status="over allowance")
    html_page = render_html(replace(report, team_months=(small, *report.team_months[1:])))
    table = html_page.split('<section id="emissions">', 1)[1].split("</table>", 1)[0]
    first_row = table.split("<tbody><tr>", 1)[1].split("</tr>", 1)[0]
    assert ">5.00 g<" in first_row and ">4.00 g<" in first_row and ">250 g<" in first_row
    assert "over allowance" in first_row and ">0.0<" not in first_row
    assert ">1.50 kg<" in table  # alpha's baseline month, beside it


def test_an_empty_or_zero_baseline_is_refused(seeded, tmp_path, capsys):
    zero = baseline_data()
    for team in zero["teams"].values():
        team["monthly_g"] = {m: 0.0 for m in BASELINE_MONTHS}
        team["mean_monthly_g"] = 0.0
    for data, what in ((zero, "every team's mean_monthly_g is 0"), (baseline_data(teams={}), "no team")):
        path = tmp_path / "baseline.json"
        path.write_text(json.dumps(data), encoding="utf-8")
        out = tmp_path / "r"
        assert cli("--quarter", "2026Q4", "--ledger", seeded, "--baseline", str(path), "--output", str(out)) == 2
        err = capsys.readouterr().err
        assert err == (f"error: --baseline holds no baseline emissions (field teams: {what}): progress toward the "
                       f"target cannot be measured against it, got '{path}'\n")
        assert not out.exists()


def test_a_significant_negative_saving_is_worded_as_a_cost_and_no_negative_zero(seeded):
    with Ledger(seeded) as ledger:
        ledger.set_limit("gamma", "2026-10", 1000, "hard", actor="lead")
        ledger.import_settled_runs([run("g9", "gamma", "2026-10", 10.0, facts(saving("autoscaling", -5, -8, -2)))],
                                   actor="test")
        report = quarterly_report(ledger, "2026Q4", AuditBaseline.from_dict(baseline_data()), now=NOW)
    (autoscaling,) = [s for s in report.savings if s.lever == "autoscaling"]
    assert autoscaling.verdict == "cost 5.00 g more [2.00 g, 8.00 g]"
    costs = {c.team: c for c in report.costs}
    assert -0.005 < costs["gamma"].avoided_exposure_eur < 0  # a tiny negative figure...
    for text in (render_html(report), render_markdown(report)):
        assert "-0.00" not in text and "-0.0 " not in text and "cost -" not in text  # ...never shown as -0.00


def test_a_hardware_profile_for_a_team_not_in_the_report_is_refused(seeded, baseline_file, tmp_path, capsys):
    out = tmp_path / "r"
    assert cli("--quarter", "2026Q4", "--ledger", seeded, "--baseline", str(baseline_file), "--output", str(out),
               "--hardware-profile", "zzz=m5.xlarge") == 2
    assert capsys.readouterr().err == ("error: --hardware-profile names team 'zzz', which is not in the report (its "
                                       "teams: alpha, beta), got 'zzz=m5.xlarge'\n")
    assert not out.exists()


def test_page_wraps_long_texts_keeps_cjk_as_text_and_draws_no_limit_line_without_a_budget(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    team = "研究チーム" + "x" * 100
    with Ledger(url, clock=lambda: utc("2026-10-01T00:00:00")) as ledger:
        ledger.set_limit(team, "2026-10", 100, "hard", actor="lead")  # October only
        ledger.import_settled_runs([run("r1", team, "2026-10", 50, facts(saving("quantization", 1, 0.5, 2)))],
                                   actor="t")
        report = quarterly_report(ledger, "2026Q4", AuditBaseline.from_dict(baseline_data()), now=NOW)
    page = render_html(report)
    (tmp_path / "page.html").write_text(page)
    assert "overflow-wrap: anywhere" in page
    svg = page.split('id="figure-emissions"', 1)[1].split("</svg>", 1)[0]
    assert "研究チーム" in svg  # text kept as text: the browser draws it with its own fonts
    spines = {float(y) for y in re.findall(r'<path d="M [\d.]+ ([\d.]+) \s*L [\d.]+ \1 \s*"[^>]*stroke-width: 0.8', svg)}
    limits = re.findall(r'<path d="([^"]*)"[^>]*style="fill: none; stroke: #000000; stroke-width: 1.6', svg)
    assert spines and limits
    for path in limits:  # the limit covers October only: it does not drop to 0 for November and December
        assert not {float(y) for y in re.findall(r"[ML] [\d.]+ ([\d.]+)", path)} & spines, path


def test_the_markdown_counts_months_by_the_html_statuses(sqlite_seeded):
    """The Markdown's "months over limit" counted months in overdraft or under an exception (which
    the HTML marks allowed) as over the limit."""
    report = report_of(sqlite_seeded)
    markdown = render_markdown(report)
    assert "months over limit" not in markdown
    assert "| months in overdraft or exception (allowed) | months over allowance |" in markdown
    for t in report.teams:
        statuses = [m.status for m in report.team_months if m.team == t.team]
        row = next(line for line in markdown.splitlines() if line.startswith(f"| {t.team} |"))
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[4:6] == [str(statuses.count("in overdraft or exception")), str(statuses.count("over allowance"))]
