"""The demo quarter: three teams (hard, soft, and one that needs the board), a baseline before
the programme, runs settled with RunFacts, refusals, overdrafts, an exception and a transfer;
deterministic by seed, and 100,000 runs fast."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from collections import Counter

import pytest

from greenkfp.components.governance import BudgetError, Ledger
from greenkfp.components.governance.demo import seed_quarter
from greenkfp.components.governance.ledger import quarter_months

#: A time after the demo quarter has ended (a quarter under way is refused).
AFTER_2026Q4 = datetime(2027, 2, 1, tzinfo=timezone.utc)


@pytest.fixture
def seeded(tmp_path):
    with Ledger(f"sqlite:///{tmp_path / 'demo.db'}") as ledger:
        summary = seed_quarter(ledger, "2026Q4", now=AFTER_2026Q4, runs_per_month=300, seed=7)
        yield ledger, summary


def test_the_demo_quarter_tells_the_programmes_story(seeded):
    ledger, summary = seeded
    assert summary.months == ("2026-10", "2026-11", "2026-12")
    assert summary.baseline_months == ("2026-07", "2026-08", "2026-09")
    runs = list(ledger.settled_runs(read_facts=True))
    assert len(runs) == summary.runs >= 6 * 290
    tiers = {team: ledger.status(team, "2026-11").tier for team in ("research", "production", "growth")}
    assert tiers == {"research": "hard", "production": "soft", "growth": "hard"}
    assert ledger.status("production", "2026-11").overdraft_percent == 10
    # before greenkfp: energy only, no savings, no gate; in the quarter: savings by lever with intervals
    baseline = [r for r in runs if r.period in summary.baseline_months]
    quarter = [r for r in runs if r.period in summary.months]
    assert all(r.facts.savings == () and r.facts.gate_action is None and r.facts.energy_kwh > 0 for r in baseline)
    levers = Counter(s.lever for r in quarter for s in r.facts.savings if s.saved_g is not None)
    assert set(levers) == {"time_shifting", "model_selection", "quantization", "autoscaling"}
    assert all(s.saved_g.low <= s.saved_g.estimate <= s.saved_g.high for r in quarter for s in r.facts.savings)
    assert any(r.facts.gate_delay_hours > 0 for r in quarter) and any(r.facts.gate_action == "run_now" for r in quarter)
    promoted = [r.facts for r in quarter if r.facts.promoted]
    assert promoted and all(f.selected.accuracy_interval.low < f.selected.accuracy < f.selected.accuracy_interval.high
                            for f in promoted)
    assert all(f.selected.latency_p95_ms < f.baseline.latency_p95_ms for f in promoted)
    # emissions fall against the baseline as the levers take effect (research and production)
    def monthly(team, months):
        return sum(r.actual_g for r in runs if r.team == team and r.period in months) / len(months)
    for team in ("research", "production"):
        assert monthly(team, summary.months[-1:]) < 0.9 * monthly(team, summary.baseline_months)
    # refusals on the hard budget, overdrafts on the soft one, the board's exception and transfer
    decisions = [e for e in ledger.entries() if e.kind == "decision"]
    refused = [e for e in decisions if e.action == "refused"]
    assert len(refused) == summary.refused >= 3 and {e.team for e in refused} == {"research"}
    assert any("exceeds what team research may still spend" in reason for e in refused for reason in e.detail["reasons"])
    reviewed = [e for e in decisions if e.detail["review_required"]]
    assert len(reviewed) == summary.reviewed >= 2 and {e.team for e in reviewed} == {"production"}
    grant = ledger.exception(summary.exception_id)
    assert (grant.team, grant.status in ("approved", "expired"), grant.approver) == ("growth", True, "dmitri")
    assert grant.decided_at is not None and "churn" in grant.reason
    (transfer,) = [e for e in ledger.entries() if e.kind == "transfer"]
    assert (transfer.id, transfer.team, transfer.to_team, transfer.actor) == \
        (summary.transfer_id, "research", "growth", "carol")
    # every entry carries the demo's time, in its month (not today's)
    for entry in ledger.entries():
        if entry.kind in ("decision", "reservation") and entry.period:
            assert entry.at[:7] == entry.period, entry.text()


def test_the_same_seed_writes_the_same_ledger(tmp_path, seeded):
    ledger, _ = seeded
    with Ledger(f"sqlite:///{tmp_path / 'again.db'}") as again:
        seed_quarter(again, "2026Q4", now=AFTER_2026Q4, runs_per_month=300, seed=7)
        assert [e.to_dict() for e in again.entries()] == [e.to_dict() for e in ledger.entries()]
    with Ledger(f"sqlite:///{tmp_path / 'other.db'}") as other:
        seed_quarter(other, "2026Q4", now=AFTER_2026Q4, runs_per_month=300, seed=8)
        assert [r.actual_g for r in other.settled_runs()][:20] != [r.actual_g for r in ledger.settled_runs()][:20]


@pytest.mark.parametrize("arguments, field", [
    ({"quarter": "2026Q5"}, "quarter"), ({"quarter": "Q4 2026"}, "quarter"), ({"quarter": 2026}, "quarter"),
    ({"runs_per_month": 0}, "runs_per_month"), ({"runs_per_month": 2_000_000}, "runs_per_month"),
    ({"runs_per_month": 10.5}, "runs_per_month"), ({"baseline_months": 0}, "baseline_months"),
    ({"seed": "x"}, "seed"),
])
def test_bad_arguments_are_named_and_nothing_is_written(tmp_path, arguments, field):
    with Ledger(f"sqlite:///{tmp_path / 'demo.db'}") as ledger:
        with pytest.raises(BudgetError) as caught:
            seed_quarter(ledger, **arguments)
        assert caught.value.field == field
        assert ledger.entries() == []


def test_seeding_twice_is_refused_before_anything_is_written(seeded):
    ledger, _ = seeded
    before = len(ledger.entries())
    with pytest.raises(BudgetError, match=r"ledger already holds entries of team research in 2026-07"):
        seed_quarter(ledger, "2026Q4", now=AFTER_2026Q4, runs_per_month=300, seed=7)
    assert len(ledger.entries()) == before


def test_quarter_months():
    assert quarter_months("2027Q1", 2) == ["2026-11", "2026-12", "2027-01", "2027-02", "2027-03"]


def test_100k_runs_in_well_under_a_minute(tmp_path):
    with Ledger(f"sqlite:///{tmp_path / 'big.db'}") as ledger:
        started = time.perf_counter()
        summary = seed_quarter(ledger, "2026Q4", now=AFTER_2026Q4, runs_per_month=16_667)
        took = time.perf_counter() - started
    assert summary.runs >= 100_000 and took < 40, took  # about 9 s here, on two shared cores


def test_a_quarter_that_has_not_ended_is_refused_and_nothing_is_written(tmp_path):
    """The demo once wrote runs settled in the future (2026Q4 seeded on 2026-12-01)."""
    with Ledger(f"sqlite:///{tmp_path / 'demo.db'}") as ledger:
        for now in (datetime(2026, 12, 1, tzinfo=timezone.utc), datetime(2026, 12, 31, 23, 59, tzinfo=timezone.utc),
                    datetime(2026, 8, 1, tzinfo=timezone.utc)):
            with pytest.raises(BudgetError) as caught:
                seed_quarter(ledger, "2026Q4", runs_per_month=9, now=now)
            assert caught.value.field == "quarter" and caught.value.value == "2026Q4"
            assert "has not ended yet (it ends on 2027-01-01" in str(caught.value)
        assert ledger.entries() == []
        summary = seed_quarter(ledger, "2026Q4", runs_per_month=9, now=datetime(2027, 1, 1, tzinfo=timezone.utc))
        assert summary.months == ("2026-10", "2026-11", "2026-12")
