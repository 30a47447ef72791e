"""The carbon-budget ledger, on SQLite and on a real PostgreSQL server (the ``ledger_url`` fixture)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from conftest import FixedClock

from greenkfp.components.governance import (
    BudgetError,
    BudgetStatus,
    ExceptionGrant,
    Ledger,
    LedgerEntry,
    LedgerUnavailableError,
    Reservation,
    period_of,
)
from greenkfp.components.governance.ledger import alembic_config

UTC = timezone.utc
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
P = "2026-12"


@pytest.fixture
def clock():
    return FixedClock(NOW)


@pytest.fixture
def ledger(ledger_url, clock):
    with Ledger(ledger_url, clock=clock) as opened:
        yield opened


def hard(ledger, team="research", limit=1000.0):
    ledger.set_limit(team, P, limit, "hard", actor="lead")


def soft(ledger, team="search", limit=1000.0, percent=10.0):
    ledger.set_limit(team, P, limit, "soft", overdraft_percent=percent, actor="lead")


def decisions(ledger, run_id):
    return [e for e in ledger.entries() if e.kind == "decision" and e.run_id == run_id]


# --------------------------------------------------------------------------- limits and status

def test_a_new_limit_gives_the_whole_budget_and_a_later_one_replaces_it(ledger):
    entry = ledger.set_limit("research", P, 1000, "hard", actor="lead")
    status = ledger.status("research", P)
    assert isinstance(status, BudgetStatus) and isinstance(entry, int)
    assert (status.tier, status.limit_g, status.reserved_g, status.settled_g, status.remaining_g) == \
        ("hard", 1000, 0, 0, 1000)
    assert status.exceptions == () and status.as_of == "2026-12-03T09:00:00Z"
    ledger.set_limit("research", P, 800, "soft", overdraft_percent=5, actor="lead")
    status = ledger.status("research", P)
    assert (status.tier, status.limit_g, status.overdraft_percent, status.overdraft_g) == ("soft", 800, 5, 40)
    assert BudgetStatus.from_json(status.to_json()) == status


def test_unknown_team_is_an_error_naming_the_team(ledger):
    hard(ledger)
    with pytest.raises(BudgetError, match=r"team has no budget for 2026-11 .*got 'research'"):
        ledger.status("research", "2026-11")
    with pytest.raises(BudgetError, match="got 'nobody'") as error:
        ledger.reserve("nobody", P, 10, "run-1", actor="gk")
    assert error.value.field == "team" and error.value.value == "nobody"
    assert [e.kind for e in ledger.entries()] == ["limit"]


# --------------------------------------------------------------------------- reservations

def test_reserve_grants_within_the_remaining_budget_and_refuses_beyond_it(ledger):
    hard(ledger)
    first = ledger.reserve("research", P, 600, "run-1", actor="gk", pipeline="training")
    assert isinstance(first, Reservation)
    assert (first.granted, first.amount_g, first.remaining_g, first.replayed, first.review_required) == \
        (True, 600, 400, False, False)
    assert first.decided_at == "2026-12-03T09:00:00Z" and first.expires_at == "2026-12-04T09:00:00Z"
    assert "within budget: 600 g of 1,000 g remaining" in first.reasons[0]
    second = ledger.reserve("research", P, 400.5, "run-2", actor="gk")
    assert not second.granted and second.remaining_g == 400
    assert "estimate 400.5 g exceeds what team research may still spend in 2026-12: 400 g remaining" \
        in second.reasons[0]
    exact = ledger.reserve("research", P, 400, "run-3", actor="gk")
    assert exact.granted and exact.remaining_g == 0
    status = ledger.status("research", P)
    assert (status.reserved_g, status.remaining_g) == (1000, 0)
    assert Reservation.from_json(first.to_json()) == first


def test_a_retried_run_id_replays_the_first_answer_without_a_second_entry(ledger, clock):
    hard(ledger, limit=100)
    granted = ledger.reserve("research", P, 60, "run-1", actor="gk")
    refused = ledger.reserve("research", P, 60, "run-2", actor="gk", reasons=["policy: ok"])
    count = len(ledger.entries())
    clock.sleep(60)
    for first, estimate in ((granted, 60), (refused, 60), (granted, 5)):  # even a new estimate gets the first answer
        again = ledger.reserve("research", P, estimate, first.run_id, actor="someone-else")
        assert again.replayed and again.to_dict() == {**first.to_dict(), "replayed": True}
    assert len(ledger.entries()) == count
    assert len(decisions(ledger, "run-1")) == len(decisions(ledger, "run-2")) == 1
    assert ledger.status("research", P).reserved_g == 60


def test_a_run_id_decided_for_another_team_is_an_error(ledger):
    hard(ledger)
    hard(ledger, team="search")
    ledger.reserve("research", P, 10, "run-1", actor="gk")
    with pytest.raises(BudgetError, match=r"run_id was decided for team 'research' in 2026-12.*got 'run-1'"):
        ledger.reserve("search", P, 10, "run-1", actor="gk")
    assert len(decisions(ledger, "run-1")) == 1


def test_a_policy_refusal_is_recorded_with_its_reasons(ledger):
    hard(ledger)
    answer = ledger.reserve("research", P, 10, "run-1", actor="gk", allow=False,
                            reasons=["pipeline not on the allow list", "  label  missing "])
    assert not answer.granted and answer.reasons == ("pipeline not on the allow list", "label missing")
    (decision,) = decisions(ledger, "run-1")
    assert decision.action == "refused" and decision.detail["reasons"] == list(answer.reasons)
    assert ledger.reserve("research", P, 5, "run-2", actor="gk", allow=False).reasons == ("refused by the policy",)
    assert ledger.status("research", P).reserved_g == 0


def test_the_hard_tier_allows_no_overdraft_whatever_the_policy_says(ledger):
    hard(ledger, limit=100)
    answer = ledger.reserve("research", P, 150, "run-1", actor="gk", overdraft_allowed_g=80)
    assert not answer.granted
    assert "overdraft_allowed_g 80 g capped at 0 g (hard tier, overdraft_percent 0)" in answer.reasons
    with pytest.raises(BudgetError, match="overdraft_percent must be 0 for a hard budget"):
        ledger.set_limit("research", P, 100, "hard", overdraft_percent=5, actor="lead")


def test_the_soft_tier_overdraws_up_to_its_percent_and_flags_the_run_for_review(ledger):
    soft(ledger, limit=1000, percent=10)
    within = ledger.reserve("search", P, 950, "run-1", actor="gk", overdraft_allowed_g=None)
    assert within.granted and not within.review_required and within.overdraft_used_g == 0
    over = ledger.reserve("search", P, 120, "run-2", actor="gk", overdraft_allowed_g=None)
    assert over.granted and over.review_required and over.overdraft_used_g == pytest.approx(70)
    assert over.remaining_g == pytest.approx(-70) and "flagged for review" in over.reasons[-1]
    too_far = ledger.reserve("search", P, 31, "run-3", actor="gk", overdraft_allowed_g=None)
    assert not too_far.granted  # 30 g of overdraft left
    capped = ledger.reserve("search", P, 30, "run-4", actor="gk", overdraft_allowed_g=10)
    assert not capped.granted  # the policy allowed less than the tier
    assert ledger.reserve("search", P, 30, "run-5", actor="gk", overdraft_allowed_g=500).granted  # capped at 100
    assert ledger.status("search", P).remaining_g == pytest.approx(-100)


def test_no_overdraft_unless_the_policy_allows_one(ledger):
    soft(ledger, limit=100, percent=50)
    assert not ledger.reserve("search", P, 101, "run-1", actor="gk").granted  # overdraft_allowed_g defaults to 0


def test_the_policy_can_ask_for_review_of_a_run_within_budget(ledger):
    hard(ledger)
    answer = ledger.reserve("research", P, 10, "run-1", actor="gk", review_required=True, reasons=["new pipeline"])
    assert answer.granted and answer.review_required and answer.reasons[0] == "new pipeline"


def test_unsettled_reservations_expire_after_their_ttl(ledger, clock):
    hard(ledger, limit=100)
    ledger.reserve("research", P, 70, "run-1", actor="gk", ttl_seconds=3600)
    ledger.reserve("research", P, 20, "run-2", actor="gk", ttl_seconds=7200)
    assert ledger.status("research", P).reserved_g == 90
    clock.sleep(3600)  # run-1 expires at this very moment
    assert ledger.status("research", P).reserved_g == 20
    assert ledger.reserve("research", P, 80, "run-3", actor="gk").granted
    assert ledger.expire() == 1
    assert ledger.expire() == 0
    (release,) = [e for e in ledger.entries() if e.kind == "release"]
    assert (release.action, release.run_id, release.amount_g, release.actor) == ("expired", "run-1", 70, "ledger")
    assert ledger.expire(now=NOW + timedelta(days=2)) == 2  # run-2 and run-3
    assert ledger.status("research", P).reserved_g == 0


# --------------------------------------------------------------------------- settlement and release

def test_settlement_records_the_actual_and_releases_the_difference(ledger):
    hard(ledger, limit=1000)
    ledger.reserve("research", P, 300, "run-1", actor="gk", pipeline="training")
    entry = ledger.settle("run-1", 240, actor="gk")
    assert isinstance(entry, LedgerEntry)
    assert (entry.kind, entry.team, entry.period, entry.amount_g, entry.pipeline) == \
        ("settlement", "research", P, 240, "training")
    assert entry.detail["released_g"] == 60 and entry.detail["reserved_g"] == 300
    status = ledger.status("research", P)
    assert (status.reserved_g, status.settled_g, status.remaining_g) == (0, 240, 760)
    assert ledger.settle("run-1", 240, actor="someone") == entry  # the same figure: the first entry
    with pytest.raises(BudgetError, match=r"actual_g differs from the 240 g already settled for run 'run-1'.*got 250"):
        ledger.settle("run-1", 250, actor="gk")
    ledger.reserve("research", P, 100, "run-2", actor="gk")
    assert ledger.settle("run-2", 130, actor="gk").detail["beyond_reservation_g"] == 30  # the run overran
    assert ledger.status("research", P).remaining_g == 630


def test_a_run_settles_after_its_reservation_expired(ledger, clock):
    hard(ledger)
    ledger.reserve("research", P, 100, "run-1", actor="gk", ttl_seconds=60)
    clock.sleep(3600)
    assert ledger.expire() == 1
    assert ledger.settle("run-1", 90, actor="gk").detail["after_expiry"] is True
    assert ledger.status("research", P).settled_g == 90


def test_settling_a_refused_or_unknown_run_is_an_error(ledger):
    hard(ledger, limit=10)
    ledger.reserve("research", P, 20, "run-1", actor="gk")
    with pytest.raises(BudgetError, match="run_id was refused: it has no reservation, got 'run-1'"):
        ledger.settle("run-1", 5, actor="gk")
    with pytest.raises(BudgetError, match="run_id has no reservation in the ledger, got 'run-9'"):
        ledger.settle("run-9", 5, actor="gk")


def test_release_gives_the_reservation_back(ledger):
    hard(ledger, limit=100)
    ledger.reserve("research", P, 80, "run-1", actor="gk")
    entry = ledger.release("run-1", actor="gk")
    assert (entry.kind, entry.action, entry.amount_g) == ("release", "released", 80)
    assert ledger.release("run-1", actor="gk") == entry
    assert ledger.status("research", P).remaining_g == 100
    with pytest.raises(BudgetError, match="run_id was released .* nothing to settle"):
        ledger.settle("run-1", 10, actor="gk")
    ledger.reserve("research", P, 10, "run-2", actor="gk")
    ledger.settle("run-2", 10, actor="gk")
    with pytest.raises(BudgetError, match="run_id was settled: a settled run cannot be released"):
        ledger.release("run-2", actor="gk")


def test_settled_history_lists_actual_grams_newest_first(ledger, clock):
    hard(ledger, limit=10_000)
    ledger.set_limit("research", "2027-01", 10_000, "hard", actor="lead")
    for i, (pipeline, period, actual) in enumerate([("training", P, 50), ("training", P, 70), ("other", P, 9),
                                                    ("training", "2027-01", 60)]):
        ledger.reserve("research", period, 100, f"run-{i}", actor="gk", pipeline=pipeline)
        clock.sleep(60)
        ledger.settle(f"run-{i}", actual, actor="gk")
    ledger.reserve("research", P, 100, "unsettled", actor="gk", pipeline="training")
    assert ledger.settled_history("research", "training") == [60, 70, 50]
    assert ledger.settled_history("research", "training", limit=2) == [60, 70]
    assert ledger.settled_history("research", "nothing") == []


# --------------------------------------------------------------------------- the review board

def test_board_members_are_added_and_removed(ledger):
    assert ledger.board_members() == []
    first = ledger.add_board_member("carol", actor="lead")
    assert ledger.add_board_member("carol", actor="lead") == first  # already a member: no new entry
    ledger.add_board_member("dan", actor="lead")
    assert ledger.board_members() == ["carol", "dan"]
    ledger.remove_board_member("dan", actor="lead")
    assert ledger.board_members() == ["carol"]
    with pytest.raises(BudgetError, match="name is not a member of the review board, got 'erin'"):
        ledger.remove_board_member("erin", actor="lead")
    board = [e for e in ledger.entries() if e.kind == "board"]
    assert [(e.action, e.detail["member"], e.actor) for e in board] == \
        [("added", "carol", "lead"), ("added", "dan", "lead"), ("removed", "dan", "lead")]


def test_an_approved_exception_lets_the_team_spend_beyond_its_budget_until_it_expires(ledger, clock):
    hard(ledger, limit=100)
    ledger.add_board_member("carol", actor="lead")
    ledger.reserve("research", P, 100, "run-1", actor="gk")
    expiry = NOW + timedelta(days=2)
    grant_id = ledger.request_exception("research", P, 50, requester="bob", reason="paper deadline",
                                        expires_at=expiry)
    pending = ledger.status("research", P).exceptions
    assert [(e.id, e.status, e.requester) for e in pending] == [(grant_id, "pending", "bob")]
    assert not ledger.reserve("research", P, 40, "run-2", actor="gk").granted  # pending does not count
    grant = ledger.approve_exception(grant_id, approver="carol")
    assert isinstance(grant, ExceptionGrant)
    assert (grant.status, grant.approver, grant.decided_at, grant.expires_at) == \
        ("approved", "carol", "2026-12-03T09:00:00Z", "2026-12-05T09:00:00Z")
    assert ledger.status("research", P).exception_g == 50
    answer = ledger.reserve("research", P, 40, "run-3", actor="gk")
    assert answer.granted and not answer.review_required and answer.remaining_g == -40
    assert answer.reasons[0].startswith("within budget with 40 g of approved exceptions: 40 g of 0 g remaining")
    assert not ledger.reserve("research", P, 11, "run-4", actor="gk").granted
    clock.sleep(2 * 86400)
    assert ledger.exception(grant_id).status == "expired"
    status = ledger.status("research", P)
    assert status.exceptions == () and status.exception_g == 0
    assert ExceptionGrant.from_json(grant.to_json()) == grant


def test_an_exception_for_one_run_counts_for_that_run_only(ledger):
    hard(ledger, limit=100)
    ledger.add_board_member("carol", actor="lead")
    grant_id = ledger.request_exception("research", P, 200, requester="bob", reason="one big run",
                                        expires_at="2026-12-31T00:00:00Z", run_id="big")
    ledger.approve_exception(grant_id, approver="carol")
    assert ledger.status("research", P).exception_g == 0  # not the team's
    assert not ledger.reserve("research", P, 150, "small", actor="gk").granted
    assert ledger.reserve("research", P, 250, "big", actor="gk").granted


def test_the_approver_must_be_on_the_board_and_not_the_requester(ledger):
    hard(ledger)
    ledger.add_board_member("carol", actor="lead")
    grant_id = ledger.request_exception("research", P, 10, requester="carol", reason="mine",
                                        expires_at=NOW + timedelta(days=1))
    with pytest.raises(BudgetError, match="approver is not a member of the review board, got 'mallory'"):
        ledger.approve_exception(grant_id, approver="mallory")
    with pytest.raises(BudgetError, match=f"approver requested exception {grant_id} and cannot decide on it"):
        ledger.approve_exception(grant_id, approver="carol")
    assert ledger.exception(grant_id).status == "pending"
    ledger.add_board_member("dan", actor="lead")
    rejected = ledger.reject_exception(grant_id, approver="dan", reason="not needed")
    assert (rejected.status, rejected.approver, rejected.decision_reason) == ("rejected", "dan", "not needed")
    with pytest.raises(BudgetError, match="exception_id is rejected, not pending: nothing to decide"):
        ledger.approve_exception(grant_id, approver="dan")
    assert ledger.status("research", P).exceptions == ()
    kinds = [(e.kind, e.action, e.actor) for e in ledger.entries() if e.kind == "exception"]
    assert kinds == [("exception", "requested", "carol"), ("exception", "rejected", "dan")]


def test_an_expired_exception_cannot_be_approved(ledger, clock):
    hard(ledger)
    ledger.add_board_member("carol", actor="lead")
    grant_id = ledger.request_exception("research", P, 10, requester="bob", reason="late",
                                        expires_at=NOW + timedelta(hours=1))
    clock.sleep(7200)
    with pytest.raises(BudgetError, match="exception_id is expired, not pending"):
        ledger.approve_exception(grant_id, approver="carol")
    with pytest.raises(BudgetError, match=r"expires_at must be later than now \(2026-12-03T11:00:00Z\)"):
        ledger.request_exception("research", P, 10, requester="bob", reason="x", expires_at=NOW)


def test_a_transfer_moves_limit_between_teams(ledger):
    hard(ledger, "research", 1000)
    soft(ledger, "search", 5000, 10)
    ledger.add_board_member("carol", actor="lead")
    ledger.reserve("search", P, 4000, "run-1", actor="gk")
    entry = ledger.transfer("search", "research", P, 600, approver="carol", reason="search under-used")
    assert isinstance(entry, int)
    research, search = ledger.status("research", P), ledger.status("search", P)
    assert (research.limit_g, research.transferred_g, research.remaining_g) == (1600, 600, 1600)
    assert (search.limit_g, search.transferred_g, search.remaining_g) == (4400, -600, 400)
    assert search.overdraft_g == pytest.approx(440)
    with pytest.raises(BudgetError, match="amount_g exceeds the 400 g search has remaining in 2026-12, got 401"):
        ledger.transfer("search", "research", P, 401, approver="carol", reason="more")
    with pytest.raises(BudgetError, match="approver is not a member of the review board"):
        ledger.transfer("research", "search", P, 1, approver="bob", reason="x")
    with pytest.raises(BudgetError, match="to_team has no budget for 2026-12 .*got 'nobody'"):
        ledger.transfer("research", "nobody", P, 1, approver="carol", reason="x")
    with pytest.raises(BudgetError, match="to_team must differ from from_team"):
        ledger.transfer("research", "research", P, 1, approver="carol", reason="x")
    moved = [e for e in ledger.entries(team="research") if e.kind == "transfer"]
    assert [(e.team, e.to_team, e.amount_g, e.actor, e.detail["reason"]) for e in moved] == \
        [("search", "research", 600, "carol", "search under-used")]


# --------------------------------------------------------------------------- the record and bad input

def test_entries_are_append_only_with_who_and_when(ledger, clock):
    hard(ledger)
    hard(ledger, team="search")
    ledger.reserve("research", P, 10, "run-1", actor="gk")
    clock.sleep(1.5)
    ledger.settle("run-1", 8, actor="reporter")
    entries = ledger.entries()
    assert [e.id for e in entries] == sorted(e.id for e in entries)
    assert [(e.kind, e.actor, e.at) for e in entries] == [
        ("limit", "lead", "2026-12-03T09:00:00Z"), ("limit", "lead", "2026-12-03T09:00:00Z"),
        ("decision", "gk", "2026-12-03T09:00:00Z"), ("reservation", "gk", "2026-12-03T09:00:00Z"),
        ("settlement", "reporter", "2026-12-03T09:00:01.500000Z")]
    assert [e.kind for e in ledger.entries(team="search")] == ["limit"]
    assert ledger.entries(period="2027-01") == []
    for entry in entries:
        assert LedgerEntry.from_json(entry.to_json()) == entry
        assert json.loads(entry.to_json())["schema"] == "greenkfp.ledger_entry/v1"


BAD = [
    (lambda l: l.set_limit("research", "2026-13", 10, "hard", actor="a"), "period", "2026-13"),
    (lambda l: l.set_limit("research", "26-12", 10, "hard", actor="a"), "period", "26-12"),
    (lambda l: l.set_limit("research", P, -1, "hard", actor="a"), "limit_g", -1),
    (lambda l: l.set_limit("research", P, float("nan"), "hard", actor="a"), "limit_g", "nan"),
    (lambda l: l.set_limit("research", P, 10, "medium", actor="a"), "tier", "medium"),
    (lambda l: l.set_limit("research", P, 10, "soft", overdraft_percent=150, actor="a"), "overdraft_percent", 150),
    (lambda l: l.set_limit(" research", P, 10, "hard", actor="a"), "team", " research"),
    (lambda l: l.set_limit("research", P, 10, "hard", actor=""), "actor", ""),
    (lambda l: l.reserve("research", P, 0, "r", actor="a"), "estimate_g", 0),
    (lambda l: l.reserve("research", P, float("inf"), "r", actor="a"), "estimate_g", "inf"),
    (lambda l: l.reserve("research", P, True, "r", actor="a"), "estimate_g", True),
    (lambda l: l.reserve("research", P, 1, "", actor="a"), "run_id", ""),
    (lambda l: l.reserve("research", P, 1, "r", actor="a", overdraft_allowed_g=-1), "overdraft_allowed_g", -1),
    (lambda l: l.reserve("research", P, 1, "r", actor="a", reasons="text"), "reasons", "text"),
    (lambda l: l.reserve("research", P, 1, "r", actor="a", ttl_seconds=0), "ttl_seconds", 0),
    (lambda l: l.reserve("research", P, 1, "r", actor="a", allow="yes"), "allow", "yes"),
    (lambda l: l.settle("r", -5, actor="a"), "actual_g", -5),
    (lambda l: l.request_exception("research", P, 5, requester="b", reason=" ", expires_at=NOW), "reason", " "),
    (lambda l: l.request_exception("research", P, 5, requester="b", reason="x", expires_at="2026-12-31"),
     "expires_at", "2026-12-31"),
    (lambda l: l.approve_exception(0, approver="c"), "exception_id", 0),
    (lambda l: l.transfer("research", "search", P, -1, approver="c", reason="x"), "amount_g", -1),
    (lambda l: l.settled_history("research", "training", limit=0), "limit", 0),
]


@pytest.mark.parametrize("call, field, value", BAD, ids=[f"{f}={v}" for _, f, v in BAD])
def test_bad_input_names_the_field_and_the_value_and_writes_nothing(ledger, call, field, value):
    hard(ledger)
    before = ledger.entries()
    with pytest.raises(BudgetError) as error:
        call(ledger)
    assert error.value.field == field
    message = str(error.value)
    assert message.startswith(f"{field} ") and str(value) in message and "\n" not in message
    assert ledger.entries() == before


def test_period_of_a_moment_is_its_utc_month():
    assert period_of(datetime(2026, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-2)))) == "2027-01"


# --------------------------------------------------------------------------- the database

def test_a_ledger_that_cannot_be_reached_is_one_line_naming_the_url_without_password(tmp_path):
    url = "postgresql+psycopg://admin:s3cret@127.0.0.1:1/ledger"
    with pytest.raises(LedgerUnavailableError) as error:
        Ledger(url)
    message = str(error.value)
    assert message.startswith("ledger postgresql+psycopg://***@127.0.0.1:1/ledger cannot be used")
    assert "s3cret" not in message and "\n" not in message
    with pytest.raises(LedgerUnavailableError, match="unable to open database file"):
        Ledger(f"sqlite:///{tmp_path}/missing/folder/ledger.db")
    for bad in ("mysql://root:pw@db/x", "not a url", "sqlite://", "sqlite:///:memory:"):
        with pytest.raises(BudgetError, match="^ledger ") as error:
            Ledger(bad)
        assert "pw" not in str(error.value)


def test_opening_migrates_to_head_once_and_the_migration_downgrades(ledger_url):
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    Ledger(ledger_url).close()
    with Ledger(ledger_url) as ledger:  # opening again: nothing to do
        ledger.set_limit("research", P, 10, "hard", actor="lead")
    engine = sa.create_engine(ledger_url)
    try:
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": "greenkfp_ledger_version"})
            assert context.get_current_revision() == head == "0002"
            assert {"budget_entries", "budget_periods"} <= set(sa.inspect(connection).get_table_names())
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "base")
        with engine.connect() as connection:
            assert not {"budget_entries", "budget_periods"} & set(sa.inspect(connection).get_table_names())
    finally:
        engine.dispose()
    with Ledger(ledger_url) as ledger:  # and up again
        assert ledger.entries() == []
