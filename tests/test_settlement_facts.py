"""A settlement carries the run's RunFacts: the ledger keeps them (checked, the pipeline filled in
from the reservation), the gatekeeper's settlement API and ``greenkfp budget settle --facts-json``
accept them, ``settle_carbon_budget`` sends them; ``Ledger.settled_runs`` reads the settled runs
back and ``Ledger.import_settled_runs`` writes history in bulk. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from conftest import TOKENS, FixedClock
from test_ledger_totals import aggregate
from test_records_audit import facts_dict

from greenkfp.components.governance import BudgetError, Ledger
from greenkfp.components.governance.ledger import SettledRun
from greenkfp.components.records import RunFacts
from greenkfp.pipelines.cli import main

UTC = timezone.utc
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
P = "2026-12"


@pytest.fixture
def ledger(ledger_url):
    with Ledger(ledger_url, clock=FixedClock(NOW)) as opened:
        opened.set_limit("research", P, 10_000, "hard", actor="lead")
        yield opened


def test_a_settlement_keeps_the_run_facts_with_the_reservations_pipeline(ledger):
    ledger.reserve("research", P, 300, "run-1", actor="gk", pipeline="training")
    facts = facts_dict(pipeline="")
    entry = ledger.settle("research", "run-1", 240, actor="gk", facts=facts)
    kept = RunFacts.from_dict(entry.detail["facts"])
    assert kept.pipeline == "training"  # the step did not know it: the reservation's
    assert kept == RunFacts.from_dict({**facts, "pipeline": "training"})
    (run,) = ledger.settled_runs()
    assert run.facts == kept and run.facts_data == entry.detail["facts"]
    # a record is as good as its JSON; without facts a settlement is as before
    ledger.reserve("research", P, 100, "run-2", actor="gk", pipeline="training")
    assert "facts" not in ledger.settle("research", "run-2", 90, actor="gk").detail
    ledger.reserve("research", P, 100, "run-3", actor="gk", pipeline="training")
    assert ledger.settle("research", "run-3", 90, actor="gk", facts=RunFacts.from_dict(facts_dict(pipeline="training"))
                         ).detail["facts"]["pipeline"] == "training"


@pytest.mark.parametrize("facts, field, problem", [
    (facts_dict(pipeline="nightly"), "facts.pipeline", "differs from the pipeline of the run's reservation"),
    (facts_dict(gate_action="later"), "facts.gate_action", "must be one of"),
    ({k: v for k, v in facts_dict().items() if k != "schema"}, "facts.schema", "is missing"),
    (facts_dict(savings=[{"lever": "x", "saved_g": None, "method": "modeled", "basis": "b"}]),
     "facts.savings[0].lever", "must be one of"),
    ("not an object", "facts", "must be a JSON object"),
])
def test_bad_facts_are_refused_naming_the_field_and_nothing_is_settled(ledger, facts, field, problem):
    ledger.reserve("research", P, 300, "run-1", actor="gk", pipeline="greenkfp-carbon-aware-training"
                   if field != "facts.pipeline" else "training")
    with pytest.raises(BudgetError) as caught:
        ledger.settle("research", "run-1", 240, actor="gk", facts=facts)
    assert caught.value.field == field and problem in str(caught.value)
    assert ledger.status("research", P).settled_g == 0 and list(ledger.settled_runs()) == []


def test_settled_runs_by_team_and_months(ledger, ledger_url):
    clock = FixedClock(datetime(2026, 10, 5, tzinfo=UTC))
    with Ledger(ledger_url, clock=clock) as other:
        for period in ("2026-10", "2026-11"):
            other.set_limit("research", period, 10_000, "hard", actor="lead")
        other.set_limit("search", "2026-11", 10_000, "soft", overdraft_percent=5, actor="lead")
        for i, (team, period, estimate, actual) in enumerate([("research", "2026-10", 50, 40), ("search", "2026-11", 70, 80),
                                                              ("research", "2026-11", 10, 9), ("research", P, 5, 5)]):
            other.reserve(team, period, estimate, f"r{i}", actor="gk", pipeline="p")
            clock.sleep(60)
            other.settle(team, f"r{i}", actual, actor="gk")
    runs = list(ledger.settled_runs())
    assert [r.run_id for r in runs] == ["r0", "r1", "r2", "r3"] and all(isinstance(r, SettledRun) for r in runs)
    first = runs[0]
    assert (first.team, first.pipeline, first.period, first.estimate_g, first.actual_g, first.facts) == \
        ("research", "p", "2026-10", 50, 40, None)
    assert first.settled_at == datetime(2026, 10, 5, 0, 1, tzinfo=UTC)
    assert [r.run_id for r in ledger.settled_runs(team="research")] == ["r0", "r2", "r3"]
    assert [r.run_id for r in ledger.settled_runs(since="2026-11", until="2026-11")] == ["r1", "r2"]
    assert [r.run_id for r in ledger.settled_runs(team="research", since="2026-11")] == ["r2", "r3"]
    with pytest.raises(BudgetError, match="until must not be before since"):
        ledger.settled_runs(since="2026-12", until="2026-11")
    with pytest.raises(BudgetError, match="since must be a calendar month"):
        ledger.settled_runs(since="2026-13")


# --------------------------------------------------------------------------- bulk import


def _runs(n, team="research", period=P, start=datetime(2026, 12, 1, tzinfo=UTC), facts=None, step_s=60):
    return [{"run_id": f"{team}-{i}", "team": team, "period": period, "pipeline": "training",
             "estimate_g": 10.0 + i, "actual_g": 8.0 + i, "decided_at": start + timedelta(seconds=i * step_s),
             "settled_at": start + timedelta(seconds=i * step_s + 30), "facts": facts} for i in range(n)]


def test_imported_runs_are_runs_like_any_other(ledger, ledger_url):
    facts = facts_dict(pipeline="")
    assert ledger.import_settled_runs(_runs(50, facts=facts), actor="demo") == 50
    status = ledger.status("research", P)
    assert status.settled_g == pytest.approx(sum(8.0 + i for i in range(50))) and status.reserved_g == 0
    want = aggregate(ledger, "research", NOW)  # the running totals equal the entries' aggregate
    assert status.remaining_g == pytest.approx(want["remaining_g"]) and status.settled_g == pytest.approx(want["settled_g"])
    runs = list(ledger.settled_runs())
    assert len(runs) == 50 and runs[3].estimate_g == 13.0 and runs[3].actual_g == 11.0
    assert runs[3].settled_at == datetime(2026, 12, 1, 0, 3, 30, tzinfo=UTC)
    assert runs[3].facts.pipeline == "training"  # filled in from the run's pipeline
    # the API finds them by run id: settling again with the same figure is the first entry, another is an error
    assert ledger.settle("research", "research-3", 11.0, actor="gk").amount_g == 11.0
    with pytest.raises(BudgetError, match="already settled"):
        ledger.settle("research", "research-3", 12.0, actor="gk")
    replay = ledger.reserve("research", P, 99, "research-3", actor="gk")
    assert replay.replayed and replay.granted and replay.amount_g == 13.0 and replay.tier == "hard"
    with pytest.raises(BudgetError, match="settled run cannot be released"):
        ledger.release("research", "research-3", actor="gk")
    assert ledger.settled_history("research", "training", limit=1) == [57.0]


@pytest.mark.parametrize("change, field, problem", [
    ({"team": "nobody"}, "runs[1].team", "has no budget for 2026-12"),
    ({"estimate_g": 0}, "runs[1].estimate_g", "> 0"),
    ({"actual_g": -1}, "runs[1].actual_g", ">= 0"),
    ({"decided_at": datetime(2026, 11, 30, tzinfo=UTC)}, "runs[1].decided_at", "in the run's period 2026-12"),
    ({"decided_at": "2026-12-02T00:00:00"}, "runs[1].decided_at", "timezone-aware"),
    ({"settled_at": datetime(2026, 11, 30, tzinfo=UTC)}, "runs[1].settled_at", "not be before decided_at"),
    ({"run_id": "research-0"}, "runs[1].run_id", "also the run id of runs[0]"),
    ({"facts": {"schema": "greenkfp.run_facts/v1"}}, "runs[1].facts.pipeline", "is missing"),
    ({"colour": "green"}, "runs[1]", "keys the ledger does not know"),
])
def test_a_bad_imported_run_is_named_by_position_and_nothing_is_written(ledger, change, field, problem):
    runs = _runs(3)
    runs[1].update(change)
    with pytest.raises(BudgetError) as caught:
        ledger.import_settled_runs(runs, actor="demo")
    assert caught.value.field == field and problem in str(caught.value)
    assert list(ledger.settled_runs()) == [] and ledger.status("research", P).settled_g == 0


def test_an_imported_run_id_already_in_the_ledger_is_refused(ledger):
    ledger.reserve("research", P, 10, "research-2", actor="gk")
    with pytest.raises(BudgetError, match=r"runs\[2\]\.run_id is already in the ledger"):
        ledger.import_settled_runs(_runs(3), actor="demo")
    assert list(ledger.settled_runs()) == []


def test_importing_100k_runs_takes_seconds(tmp_path):
    import time

    with Ledger(f"sqlite:///{tmp_path / 'big.db'}", clock=FixedClock(NOW)) as ledger:
        ledger.set_limit("research", P, 1e9, "hard", actor="lead")
        shared = [RunFacts.from_dict(facts_dict(pipeline="", gate_delay_hours=h)) for h in range(50)]
        runs = _runs(100_000, step_s=20)
        for i, run in enumerate(runs):
            run["facts"] = shared[i % 50]  # a RunFacts object shared by many runs is written out once
        started = time.perf_counter()
        assert ledger.import_settled_runs(runs, actor="bench") == 100_000
        took = time.perf_counter() - started
        started = time.perf_counter()
        read = list(ledger.settled_runs(read_facts=True))
        reading = time.perf_counter() - started
    assert len(read) == 100_000 and read[-1].facts.gate_delay_hours == 49 and read[-1].pipeline == "training"
    assert took < 30 and reading < 20, (took, reading)  # about 7 s and 5 s here, on two shared cores


# --------------------------------------------------------------------------- the gatekeeper and the component


def test_the_settlement_api_takes_facts_and_refuses_bad_ones_in_one_line(start_gatekeeper, tmp_path):
    live = start_gatekeeper("http://127.0.0.1:9")
    period = datetime.now(UTC).strftime("%Y-%m")
    live.core.ledger.set_limit("ml", period, 1e6, "hard", actor="lead")
    ml = TOKENS["ml"]
    answer = live.call("POST", "/apis/greenkfp/v1/admissions", ml, json={"pipeline": "nightly", "run_id": "n1",
                                                                         "energy_kwh": 1.0})
    assert answer.status_code == 200
    bad = live.call("POST", "/apis/greenkfp/v1/settlements", ml,
                    json={"run_id": "n1", "actual_g": 5.0, "facts": facts_dict(gate_delay_hours=-2)})
    assert bad.status_code == 400 and bad.json()["message"] == "facts.gate_delay_hours must be >= 0, got -2.0"
    other = live.call("POST", "/apis/greenkfp/v1/settlements", ml,
                      json={"run_id": "n1", "actual_g": 5.0, "facts": facts_dict()})
    assert other.status_code == 400 and "facts.pipeline differs from the pipeline of the run's reservation" \
        in other.json()["message"]
    assert live.core.ledger.status("ml", period).settled_g == 0
    good = live.call("POST", "/apis/greenkfp/v1/settlements", ml,
                     json={"run_id": "n1", "actual_g": 5.0, "facts": facts_dict(pipeline="")})
    assert good.status_code == 200 and good.json()["entry"]["detail"]["facts"]["pipeline"] == "nightly"
    (run,) = live.core.ledger.settled_runs(team="ml")
    assert run.facts.saving("time_shifting").saved_g.estimate == 400.0


def test_settle_carbon_budget_sends_the_run_facts(start_gatekeeper, tmp_path, monkeypatch):
    from kfp.dsl import Artifact, Markdown
    from test_records_audit import _report

    from greenkfp.components import settle_carbon_budget

    live = start_gatekeeper("http://127.0.0.1:9")
    period = datetime.now(UTC).strftime("%Y-%m")
    live.core.ledger.set_limit("ml", period, 1e6, "hard", actor="lead")
    assert live.call("POST", "/apis/greenkfp/v1/admissions", TOKENS["ml"],
                     json={"pipeline": "greenkfp-carbon-aware-training", "run_id": "k1", "energy_kwh": 1.0}
                     ).status_code == 200
    monkeypatch.setenv("GREENKFP_GATEKEEPER_TOKEN", TOKENS["ml"])
    report = _report()
    path = tmp_path / "report.json"
    path.write_text(report.to_json())
    settle_carbon_budget.python_func(report_json=Artifact(uri=str(path)), summary=Markdown(uri=str(tmp_path / "s.md")),
                                     gatekeeper_url=live.url, run_id="k1", pipeline="greenkfp-carbon-aware-training")
    (run,) = live.core.ledger.settled_runs(team="ml")
    assert run.pipeline == "greenkfp-carbon-aware-training" and run.facts.variant == "b/int8_dynamic"
    assert run.facts.saving("quantization").saved_g.estimate == pytest.approx(3.0)
    assert run.actual_g == pytest.approx(200.0)  # 2 kWh at the window's 100 g/kWh


# --------------------------------------------------------------------------- greenkfp budget settle --facts-json


def test_budget_settle_takes_a_facts_file(ledger_url, tmp_path, capsys):
    with Ledger(ledger_url) as ledger:
        ledger.set_limit("research", P, 1000, "hard", actor="lead")
        ledger.reserve("research", P, 100, "r1", actor="gk", pipeline="training")
        ledger.reserve("research", P, 100, "r2", actor="gk", pipeline="training")
    good = tmp_path / "facts.json"
    good.write_text(RunFacts.from_dict(facts_dict(pipeline="training")).to_json())
    assert main(["budget", "settle", "--ledger", ledger_url, "--team", "research", "--run-id", "r1", "--actual-g", "80",
                 "--facts-json", str(good)]) == 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(facts_dict(gate_action="later")))
    other = tmp_path / "other.json"
    other.write_text(json.dumps(facts_dict(pipeline="nightly")))
    outside = tmp_path / "outside.json"  # an estimate outside its interval
    outside.write_text(json.dumps(facts_dict(pipeline="training", savings=[
        {"lever": "quantization", "saved_g": {"estimate": 9.0, "low": 2.5, "high": 3.5}, "method": "modeled",
         "basis": "x"}])))
    huge = tmp_path / "huge.json"  # grams beyond the ledger's bound
    huge.write_text(json.dumps(facts_dict(pipeline="training", savings=[
        {"lever": "quantization", "saved_g": {"estimate": 1e16, "low": 1e16, "high": 1e16}, "method": "modeled",
         "basis": "x"}])))
    capsys.readouterr()
    for path, message in ((bad, f"error: --facts-json is not a run-facts file: RunFacts (in {bad}): field "
                                "'gate_action' must be one of run_now, wait, refuse, got 'later'"),
                          (outside, f"error: --facts-json is not a run-facts file: RunFacts (in {outside}): field "
                                    "'savings[0].saved_g.estimate' must lie in its interval [2.5, 3.5], got 9.0"),
                          (huge, f"error: --facts-json is not a run-facts file: RunFacts (in {huge}): field "
                                 "'savings[0].saved_g.estimate' must be from -1e+15 to 1e+15 g (the ledger's bound), "
                                 "got 1e+16"),
                          (other, "error: --facts-json field pipeline differs from the pipeline of the run's "
                                  "reservation ('training'), got 'nightly'"),
                          (tmp_path / "missing.json", f"error: --facts-json {tmp_path / 'missing.json'}: no such file")):
        assert main(["budget", "settle", "--ledger", ledger_url, "--team", "research", "--run-id", "r2",
                     "--actual-g", "80", "--facts-json", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(message) and err.count("\n") == 1, err
    with Ledger(ledger_url) as ledger:
        (run,) = ledger.settled_runs()
    assert run.run_id == "r1" and run.facts.pipeline == "training"


def test_budget_settle_refuses_a_facts_path_that_is_no_regular_file_before_reading_it(ledger_url, tmp_path, capsys):
    """``--facts-json /dev/zero`` once read until memory ran out; a FIFO would wait for a writer."""
    import os

    from greenkfp.components.records import MAX_FACTS_BYTES

    with Ledger(ledger_url) as ledger:
        ledger.set_limit("research", P, 1000, "hard", actor="lead")
        ledger.reserve("research", P, 100, "r1", actor="gk", pipeline="training")
    fifo = tmp_path / "facts.fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (MAX_FACTS_BYTES + 1))
    capsys.readouterr()
    for path, reason in (("/dev/zero", "is not a regular file (a device, pipe or socket)"),
                         (fifo, "is not a regular file (a device, pipe or socket)"),
                         (tmp_path, "is a folder, not a file"), (big, "is larger than 1 MiB")):
        assert main(["budget", "settle", "--ledger", ledger_url, "--team", "research", "--run-id", "r1",
                     "--actual-g", "80", "--facts-json", str(path)]) == 2
        err = capsys.readouterr().err
        assert err == f"error: --facts-json {path}: {reason}\n", err
    with Ledger(ledger_url) as ledger:
        assert list(ledger.settled_runs()) == []
