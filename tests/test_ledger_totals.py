"""The budget row's running totals always equal the aggregate of the entries (which stay the
record): random operations, on SQLite and PostgreSQL; and migration 0002 backfills them."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from conftest import FixedClock

from greenkfp.components.governance import BudgetError, Ledger
from greenkfp.components.governance.ledger import alembic_config

UTC = timezone.utc
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
P = "2026-12"
TEAMS = ("alpha", "beta", "gamma")


def aggregate(ledger: Ledger, team: str, now: datetime) -> dict:
    """A budget as the entries alone say it (the definition the totals must match)."""
    entries = ledger.entries(period=P)
    closed = {(e.team, e.run_id) for e in entries if e.kind in ("settlement", "release")}  # run ids are per team
    limit = [e for e in entries if e.kind == "limit" and e.team == team][-1]
    transferred = (sum(e.amount_g for e in entries if e.kind == "transfer" and e.to_team == team)
                   - sum(e.amount_g for e in entries if e.kind == "transfer" and e.team == team))
    open_ = [e for e in entries if e.kind == "reservation" and e.team == team and (team, e.run_id) not in closed]
    reserved = sum(e.amount_g for e in open_ if datetime.fromisoformat(e.expires_at.replace("Z", "+00:00")) > now)
    settled = sum(e.amount_g for e in entries if e.kind == "settlement" and e.team == team)
    limit_g = limit.amount_g + transferred
    return {"limit_g": limit_g, "reserved_g": reserved, "settled_g": settled, "transferred_g": transferred,
            "remaining_g": limit_g - reserved - settled, "tier": limit.detail["tier"],
            "open_g": sum(e.amount_g for e in open_),
            "first_expiry": min((datetime.fromisoformat(e.expires_at.replace("Z", "+00:00")) for e in open_),
                                default=None)}


def check(ledger: Ledger, url: str, now: datetime, teams: tuple[str, ...] = TEAMS) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = {r.team: r for r in connection.execute(sa.text(
                "SELECT team, reserved_g, next_expiry FROM budget_periods WHERE period = :p"), {"p": P})}
    finally:
        engine.dispose()
    for team in teams:
        want, status = aggregate(ledger, team, now), ledger.status(team, P)
        for name in ("limit_g", "reserved_g", "settled_g", "transferred_g", "remaining_g"):
            assert getattr(status, name) == pytest.approx(want[name], abs=1e-6), (team, name)
        assert status.tier == want["tier"]
        assert float(rows[team].reserved_g) == pytest.approx(want["open_g"], abs=1e-6)
        stored = rows[team].next_expiry
        if isinstance(stored, str):  # SQLite, read as text: naive UTC
            stored = datetime.fromisoformat(stored)
        if stored is not None and stored.tzinfo is None:
            stored = stored.replace(tzinfo=UTC)
        if want["first_expiry"] is not None:  # a lower bound of the open reservations' expiries
            assert stored is not None and stored <= want["first_expiry"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_running_totals_equal_the_aggregate_of_the_entries_after_random_operations(ledger_url, seed):
    rng, clock = random.Random(seed), FixedClock(NOW)
    with Ledger(ledger_url, clock=clock) as ledger:
        ledger.add_board_member("carol", actor="lead")
        for i, team in enumerate(TEAMS):
            ledger.set_limit(team, P, 500.0, "soft" if i % 2 else "hard", overdraft_percent=10.0 if i % 2 else 0.0,
                             actor="lead")
        runs: list[tuple[str, str]] = []
        for step in range(60):
            team, op = rng.choice(TEAMS), rng.random()
            try:
                if op < 0.45:
                    run = f"run-{seed}-{step % 20}"  # run ids are per team: the same id for other teams too
                    ledger.reserve(team, P, round(rng.uniform(1, 80), 3), run, actor="gk",
                                   ttl_seconds=rng.choice([60, 600, 86400]), allow=rng.random() > 0.1,
                                   overdraft_allowed_g=None)
                    runs.append((team, run))
                    if rng.random() < 0.1:  # a retried request: the same answer, nothing written
                        ledger.reserve(team, P, 1.0, run, actor="gk")
                elif op < 0.6 and runs:
                    ledger.settle(*rng.choice(runs), round(rng.uniform(0, 90), 3), actor="gk")
                elif op < 0.66 and runs:
                    ledger.release(*rng.choice(runs), actor="gk")
                elif op < 0.7 and runs:  # the gatekeeper's move to KFP's run id
                    owner, run = rng.choice(runs)
                    ledger.rekey(owner, run, f"kfp-{run}", actor="gk")
                    runs.append((owner, f"kfp-{run}"))
                elif op < 0.78:
                    clock.sleep(rng.choice([30, 120, 900]))
                elif op < 0.84:
                    ledger.expire()
                elif op < 0.9:
                    giver, taker = rng.sample(TEAMS, 2)
                    ledger.transfer(giver, taker, P, round(rng.uniform(1, 50), 3), approver="carol", reason="move")
                elif op < 0.95:
                    grant = ledger.request_exception(team, P, round(rng.uniform(1, 50), 3), requester="bob",
                                                     reason="deadline", expires_at=clock.now + timedelta(hours=1))
                    ledger.approve_exception(grant, approver="carol")
                else:
                    ledger.set_limit(team, P, round(rng.uniform(100, 900), 3), "hard", actor="lead")
            except BudgetError:
                pass  # refused on purpose (settling a released run, a transfer beyond remaining, ...)
            check(ledger, ledger_url, clock.now)


def test_migration_0002_backfills_the_totals_from_the_entries(ledger_url):
    from alembic import command

    clock = FixedClock(NOW)
    with Ledger(ledger_url, clock=clock) as ledger:
        ledger.add_board_member("carol", actor="lead")
        ledger.set_limit("alpha", P, 1000, "hard", actor="lead")
        ledger.set_limit("beta", P, 800, "soft", overdraft_percent=10, actor="lead")
        for i in range(6):
            ledger.reserve("alpha", P, 50 + i, f"r{i}", actor="gk", ttl_seconds=600 if i % 2 else 86400)
        ledger.settle("alpha", "r0", 40, actor="gk")
        ledger.release("alpha", "r1", actor="gk")
        ledger.transfer("alpha", "beta", P, 100, approver="carol", reason="move")
        ledger.request_exception("beta", P, 30, requester="bob", reason="x", expires_at=NOW + timedelta(days=1))
        clock.sleep(3600)  # r3 and r5 expired, not released
        before = {team: ledger.status(team, P) for team in ("alpha", "beta")}
    engine = sa.create_engine(ledger_url)
    try:
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0001")
    finally:
        engine.dispose()
    with Ledger(ledger_url, clock=clock) as ledger:  # up again: the totals from the entries
        for team, status in before.items():
            assert ledger.status(team, P) == status
        check(ledger, ledger_url, clock.now, ("alpha", "beta"))
        assert ledger.expire() == 2
        check(ledger, ledger_url, clock.now, ("alpha", "beta"))
