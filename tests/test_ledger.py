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
    RunIdTakenError,
    UnknownRunError,
    check_grams,
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


def test_a_run_id_decided_for_another_month_of_the_team_is_an_error(ledger):
    hard(ledger)
    ledger.set_limit("research", "2027-01", 1000, "hard", actor="lead")
    ledger.reserve("research", P, 10, "run-1", actor="gk")
    with pytest.raises(RunIdTakenError, match=r"run_id was decided for team research in 2026-12, not 2027-01.*"
                                               r"got 'run-1'"):
        ledger.reserve("research", "2027-01", 10, "run-1", actor="gk")
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
    entry = ledger.settle("research", "run-1", 240, actor="gk")
    assert isinstance(entry, LedgerEntry)
    assert (entry.kind, entry.team, entry.period, entry.amount_g, entry.pipeline) == \
        ("settlement", "research", P, 240, "training")
    assert entry.detail["released_g"] == 60 and entry.detail["reserved_g"] == 300
    status = ledger.status("research", P)
    assert (status.reserved_g, status.settled_g, status.remaining_g) == (0, 240, 760)
    assert ledger.settle("research", "run-1", 240, actor="someone") == entry  # the same figure: the first entry
    with pytest.raises(BudgetError, match=r"actual_g differs from the 240 g already settled for run 'run-1'.*got 250"):
        ledger.settle("research", "run-1", 250, actor="gk")
    ledger.reserve("research", P, 100, "run-2", actor="gk")
    assert ledger.settle("research", "run-2", 130, actor="gk").detail["beyond_reservation_g"] == 30  # the run overran
    assert ledger.status("research", P).remaining_g == 630


def test_a_run_settles_after_its_reservation_expired(ledger, clock):
    hard(ledger)
    ledger.reserve("research", P, 100, "run-1", actor="gk", ttl_seconds=60)
    clock.sleep(3600)
    assert ledger.expire() == 1
    assert ledger.settle("research", "run-1", 90, actor="gk").detail["after_expiry"] is True
    assert ledger.status("research", P).settled_g == 90


def test_settling_a_refused_or_unknown_run_is_an_error(ledger):
    hard(ledger, limit=10)
    ledger.reserve("research", P, 20, "run-1", actor="gk")
    with pytest.raises(BudgetError, match="run_id was refused: it has no reservation, got 'run-1'"):
        ledger.settle("research", "run-1", 5, actor="gk")
    with pytest.raises(UnknownRunError, match="run_id has no reservation of team research in the ledger, got 'run-9'"):
        ledger.settle("research", "run-9", 5, actor="gk")


def test_release_gives_the_reservation_back(ledger):
    hard(ledger, limit=100)
    ledger.reserve("research", P, 80, "run-1", actor="gk")
    entry = ledger.release("research", "run-1", actor="gk")
    assert (entry.kind, entry.action, entry.amount_g) == ("release", "released", 80)
    assert ledger.release("research", "run-1", actor="gk") == entry
    assert ledger.status("research", P).remaining_g == 100
    with pytest.raises(BudgetError, match="run_id was released .* nothing to settle"):
        ledger.settle("research", "run-1", 10, actor="gk")
    ledger.reserve("research", P, 10, "run-2", actor="gk")
    ledger.settle("research", "run-2", 10, actor="gk")
    with pytest.raises(BudgetError, match="run_id was settled: a settled run cannot be released"):
        ledger.release("research", "run-2", actor="gk")


def test_settled_history_lists_actual_grams_newest_first(ledger, clock):
    hard(ledger, limit=10_000)
    ledger.set_limit("research", "2027-01", 10_000, "hard", actor="lead")
    for i, (pipeline, period, actual) in enumerate([("training", P, 50), ("training", P, 70), ("other", P, 9),
                                                    ("training", "2027-01", 60)]):
        ledger.reserve("research", period, 100, f"run-{i}", actor="gk", pipeline=pipeline)
        clock.sleep(60)
        ledger.settle("research", f"run-{i}", actual, actor="gk")
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
    assert answer.granted and not answer.review_required and answer.remaining_g == 0  # the exception covers it
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


def test_a_run_exceptions_spending_does_not_use_up_the_teams_exceptions(ledger):
    hard(ledger)
    ledger.add_board_member("carol", actor="lead")
    assert ledger.reserve("research", P, 1000, "a", actor="gk").granted
    run_only = ledger.request_exception("research", P, 300, requester="bob", reason="x",
                                        expires_at=NOW + timedelta(days=2), run_id="x")
    ledger.approve_exception(run_only, approver="carol")
    answer = ledger.reserve("research", P, 300, "x", actor="gk")
    assert answer.granted and answer.remaining_g == 0  # covered by its own exception, not by the team's budget
    team_wide = ledger.request_exception("research", P, 300, requester="bob", reason="y",
                                         expires_at=NOW + timedelta(days=2))
    ledger.approve_exception(team_wide, approver="carol")
    status = ledger.status("research", P)
    assert (status.remaining_g, status.exception_g, status.excepted_g) == (0, 300, 300)
    assert ledger.reserve("research", P, 300, "z", actor="gk").granted  # 1000 + 300 team-wide, 1000 spent
    assert not ledger.reserve("research", P, 1, "w", actor="gk").granted


def test_an_expired_exception_lapses_only_its_unused_part(ledger, clock):
    hard(ledger)
    ledger.add_board_member("carol", actor="lead")
    grant_id = ledger.request_exception("research", P, 300, requester="bob", reason="x",
                                        expires_at=NOW + timedelta(seconds=25))
    ledger.approve_exception(grant_id, approver="carol")
    assert ledger.reserve("research", P, 1200, "big", actor="gk").granted
    ledger.settle("research", "big", 1200, actor="gk")
    assert ledger.status("research", P).remaining_g == 0
    clock.sleep(30)
    status = ledger.status("research", P)
    assert (status.remaining_g, status.excepted_g, status.exception_g) == (0, 200, 0)
    assert ledger.reserve("research", P, 0, "zero", actor="gk").granted  # the team is not locked out
    assert not ledger.reserve("research", P, 1, "one", actor="gk").granted


def test_a_released_or_expired_runs_draw_on_an_exception_is_given_back(ledger, clock):
    hard(ledger, limit=100)
    ledger.add_board_member("carol", actor="lead")
    grant_id = ledger.request_exception("research", P, 300, requester="bob", reason="x",
                                        expires_at=NOW + timedelta(days=5))
    ledger.approve_exception(grant_id, approver="carol")
    assert ledger.reserve("research", P, 300, "a", actor="gk").granted  # 100 budget + 200 drawn
    assert ledger.status("research", P).exception_g == 100
    ledger.release("research", "a", actor="gk")
    assert (ledger.status("research", P).remaining_g, ledger.status("research", P).exception_g) == (100, 300)
    assert ledger.reserve("research", P, 250, "b", actor="gk", ttl_seconds=60).granted
    clock.sleep(61)
    assert (ledger.status("research", P).remaining_g, ledger.status("research", P).exception_g) == (100, 300)
    assert ledger.reserve("research", P, 400, "c", actor="gk").granted
    ledger.settle("research", "c", 150, actor="gk")  # spent less: the budget first, then 50 g of the exception
    status = ledger.status("research", P)
    assert (status.remaining_g, status.excepted_g, status.exception_g) == (0, 50, 250)


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
    ledger.settle("research", "run-1", 8, actor="reporter")
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
    (lambda l: l.reserve("research", P, -1, "r", actor="a"), "estimate_g", -1),
    (lambda l: l.reserve("research", P, float("inf"), "r", actor="a"), "estimate_g", "inf"),
    (lambda l: l.reserve("research", P, True, "r", actor="a"), "estimate_g", True),
    (lambda l: l.reserve("research", P, 1, "", actor="a"), "run_id", ""),
    (lambda l: l.reserve("research", P, 1, "r", actor="a", overdraft_allowed_g=-1), "overdraft_allowed_g", -1),
    (lambda l: l.reserve("research", P, 1, "r", actor="a", reasons="text"), "reasons", "text"),
    (lambda l: l.reserve("research", P, 1, "r", actor="a", ttl_seconds=0), "ttl_seconds", 0),
    (lambda l: l.reserve("research", P, 1, "r", actor="a", allow="yes"), "allow", "yes"),
    (lambda l: l.settle("research", "r", -5, actor="a"), "actual_g", -5),
    (lambda l: l.request_exception("research", P, 5, requester="b", reason=" ", expires_at=NOW), "reason", " "),
    (lambda l: l.request_exception("research", P, 5, requester="b", reason="x", expires_at="2026-12-31"),
     "expires_at", "2026-12-31"),
    (lambda l: l.approve_exception(0, approver="c"), "exception_id", 0),
    (lambda l: l.transfer("research", "search", P, -1, approver="c", reason="x"), "amount_g", -1),
    (lambda l: l.settled_history("research", "training", limit=0), "limit", 0),
    # one upper bound on every gram quantity (MAX_GRAMS, 1e15 g): sums of them stay finite
    (lambda l: l.set_limit("research", P, 1.7e308, "hard", actor="a"), "limit_g", "1.7e+308"),
    (lambda l: l.reserve("research", P, 1.7e308, "r", actor="a"), "estimate_g", "1.7e+308"),
    (lambda l: l.reserve("research", P, 1, "r", actor="a", overdraft_allowed_g=1e16), "overdraft_allowed_g", "1e+16"),
    (lambda l: l.settle("research", "r", 1.7e308, actor="a"), "actual_g", "1.7e+308"),
    (lambda l: l.transfer("research", "search", P, 1e15 + 1, approver="c", reason="x"), "amount_g", "1000000000000001"),
    (lambda l: l.request_exception("research", P, 1.7e308, requester="b", reason="x", expires_at=NOW),
     "amount_g", "1.7e+308"),
    # one length limit per kind of text (errors.MAX_*_CHARS), the message stating the number checked
    (lambda l: l.set_limit("t" * 129, P, 10, "hard", actor="a"), "team", "(129 characters)"),
    (lambda l: l.reserve("research", P, 1, "r" * 257, actor="a"), "run_id", "(257 characters)"),
    (lambda l: l.reserve("research", P, 1, "r", actor="a", pipeline="p" * 257), "pipeline", "(257 characters)"),
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


def test_the_limits_are_stated_as_checked(ledger):
    from greenkfp.components.governance.errors import MAX_GRAMS, MAX_NAME_CHARS, MAX_RUN_ID_CHARS

    with pytest.raises(BudgetError, match=r"^estimate_g must be a finite number of grams >= 0, at most 1e15 g "
                                          r"\(1 Gt\), got 1.7e\+308$"):
        check_grams("estimate_g", 1.7e308, zero=True)
    assert check_grams("limit_g", MAX_GRAMS) == 1e15
    with pytest.raises(BudgetError, match=f"team must be a name of 1 to {MAX_NAME_CHARS} characters"):
        ledger.status("t" * (MAX_NAME_CHARS + 1), P)
    with pytest.raises(BudgetError, match=rf"run_id must be a name of 1 to {MAX_RUN_ID_CHARS} characters.*"
                                          rf"\({MAX_RUN_ID_CHARS + 1} characters\)$"):
        ledger.release("research", "é" * (MAX_RUN_ID_CHARS + 1), actor="a")


def test_names_at_the_limits_are_taken(ledger):
    from greenkfp.components.governance.errors import MAX_NAME_CHARS, MAX_PIPELINE_CHARS, MAX_RUN_ID_CHARS

    team = "t" * MAX_NAME_CHARS
    ledger.set_limit(team, P, 100, "hard", actor="a" * MAX_NAME_CHARS)
    answer = ledger.reserve(team, P, 1, "é" * MAX_RUN_ID_CHARS, actor="gk", pipeline="p" * MAX_PIPELINE_CHARS)
    assert answer.granted and ledger.settle(team, "é" * MAX_RUN_ID_CHARS, 1, actor="gk").amount_g == 1


# --------------------------------------------------------------------------- review fixes: run ids per team

def test_run_ids_are_per_team(ledger):
    hard(ledger)
    hard(ledger, team="search")
    mine = ledger.reserve("research", P, 10, "run-1", actor="gk")
    theirs = ledger.reserve("search", P, 20, "run-1", actor="gk")  # not a replay of research's, not an error
    assert mine.granted and theirs.granted and not theirs.replayed and theirs.decision_id != mine.decision_id
    assert ledger.reserve("search", P, 99, "run-1", actor="gk").replayed  # idempotent per team
    # a run id the team did not reserve is unknown, whether another team has it or nobody does
    with pytest.raises(UnknownRunError) as other:
        ledger.settle("search", "run-2", 1, actor="gk")
    ledger.reserve("research", P, 5, "run-2", actor="gk")
    with pytest.raises(UnknownRunError) as taken:
        ledger.settle("search", "run-2", 1, actor="gk")
    assert str(taken.value) == str(other.value) == "run_id has no reservation of team search in the ledger, got 'run-2'"
    with pytest.raises(UnknownRunError):
        ledger.release("search", "run-2", actor="gk")
    assert ledger.settle("search", "run-1", 15, actor="gk").team == "search"
    assert ledger.release("research", "run-1", actor="gk").team == "research"
    research, search = ledger.status("research", P), ledger.status("search", P)
    assert (research.reserved_g, research.settled_g, search.reserved_g, search.settled_g) == (5, 0, 0, 15)


def test_an_existing_ledger_is_upgraded_to_run_ids_per_team(ledger_url, clock):
    """A ledger at revision 0002 (run ids unique across teams) with open and closed runs: opening
    it migrates to 0003 and keeps every run; then another team may use the same ids."""
    from alembic import command

    with Ledger(ledger_url, clock=clock) as ledger:
        hard(ledger)
        hard(ledger, team="search")
        ledger.reserve("research", P, 10, "run-1", actor="gk")
        ledger.reserve("research", P, 20, "run-2", actor="gk")
        ledger.settle("research", "run-2", 15, actor="gk")
        ledger.reserve("search", P, 50, "run-3", actor="gk")
    engine = sa.create_engine(ledger_url)
    try:
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0002")
        with engine.connect() as connection:
            uniques = sa.inspect(connection).get_unique_constraints("budget_entries")
            assert [u["column_names"] for u in uniques] == [["unique_key"]]  # the 0002 schema
    finally:
        engine.dispose()
    with Ledger(ledger_url, clock=clock) as ledger:  # opening upgrades it
        assert ledger.reserve("research", P, 99, "run-1", actor="gk").replayed
        assert ledger.settle("research", "run-2", 15, actor="gk").amount_g == 15  # the first settlement
        assert ledger.reserve("search", P, 7, "run-1", actor="gk").granted  # the same id, another team
        ledger.settle("research", "run-1", 8, actor="gk")
        with pytest.raises(UnknownRunError):
            ledger.settle("research", "run-3", 1, actor="gk")
        research, search = ledger.status("research", P), ledger.status("search", P)
        assert (research.reserved_g, research.settled_g, search.reserved_g) == (0, 23, 57)


def test_settling_an_unknown_run_is_an_index_lookup_not_a_scan(ledger, ledger_url):
    """Unknown, another team's and refused run ids are found by the (team, unique key) index: a
    few statements whatever the ledger's size, none of which scans the entries."""
    hard(ledger, limit=1e6)
    hard(ledger, team="search")
    for i in range(150):
        ledger.reserve("research", P, 1, f"run-{i}", actor="gk")
    ledger.reserve("search", P, 1e6, "refused", actor="gk")
    statements = []

    def seen(_connection, _cursor, statement, parameters, _context, _many):
        statements.append((statement, parameters))

    sa.event.listen(ledger._engine, "before_cursor_execute", seen)
    try:
        for call in (lambda: ledger.settle("search", "run-7", 1, actor="gk"),
                     lambda: ledger.settle("search", "nothing", 1, actor="gk"),
                     lambda: ledger.release("search", "refused", actor="gk")):
            before = len(statements)
            with pytest.raises(BudgetError, match="run_id"):
                call()
            assert len(statements) - before <= 3
    finally:
        sa.event.remove(ledger._engine, "before_cursor_execute", seen)
    queries = [(q, p) for q, p in statements if q.lstrip().upper().startswith("SELECT") and "budget_entries" in q]
    assert queries
    engine = sa.create_engine(ledger_url)
    try:
        with engine.connect() as connection:
            for query, parameters in queries:
                if connection.dialect.name == "sqlite":
                    plan = " ".join(str(row[-1]) for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}",
                                                                                      parameters))
                    assert "SCAN budget_entries" not in plan and "USING INDEX" in plan, (query, plan)
                else:  # with sequential scans priced out, only an index can avoid one
                    connection.exec_driver_sql("SET enable_seqscan = off")
                    plan = " ".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {query}", parameters))
                    assert "Seq Scan on budget_entries" not in plan and "Index" in plan, (query, plan)
    finally:
        engine.dispose()


def test_an_estimate_of_zero_grams_is_a_valid_reservation(ledger):
    hard(ledger, limit=10)
    answer = ledger.reserve("research", P, 0, "free", actor="gk")
    assert answer.granted and answer.amount_g == 0 and answer.remaining_g == 10
    ledger.reserve("research", P, 10, "all", actor="gk")
    assert ledger.reserve("research", P, 0, "free-2", actor="gk").granted  # nothing left, nothing asked
    assert ledger.settle("research", "free", 0, actor="gk").amount_g == 0
    ledger.settle("research", "all", 12, actor="gk")  # overdrawn: even 0 g more is refused
    assert not ledger.reserve("research", P, 0, "free-3", actor="gk").granted


def test_rekey_moves_an_open_reservation_to_a_new_run_id_atomically(ledger):
    hard(ledger, limit=100)
    hard(ledger, team="search")
    first = ledger.reserve("research", P, 30, "provisional", actor="gk", pipeline="training")
    moved = ledger.rekey("research", "provisional", "kfp-1", actor="gk")
    assert (moved.granted, moved.run_id, moved.amount_g, moved.reasons, moved.expires_at, moved.replayed) == \
        (True, "kfp-1", 30, first.reasons, first.expires_at, False)
    assert ledger.status("research", P).reserved_g == 30  # moved, not added
    again = ledger.reserve("research", P, 55, "kfp-1", actor="step")  # the run's own gate step
    assert again.replayed and again.granted and again.amount_g == 30 and again.decision_id == moved.decision_id
    assert ledger.rekey("research", "provisional", "kfp-1", actor="gk").replayed  # again: the same answer
    with pytest.raises(BudgetError, match="run_id was re-keyed to run 'kfp-1' already"):
        ledger.rekey("research", "provisional", "kfp-2", actor="gk")
    with pytest.raises(BudgetError, match="re-keyed to run 'kfp-1'.*settle that run id"):
        ledger.settle("research", "provisional", 1, actor="gk")
    with pytest.raises(UnknownRunError):
        ledger.rekey("search", "provisional", "kfp-9", actor="gk")  # another team's run is unknown
    ledger.reserve("research", P, 5, "other", actor="gk")
    with pytest.raises(RunIdTakenError, match="new_run_id was decided already for team research"):
        ledger.rekey("research", "other", "kfp-1", actor="gk")
    assert ledger.settle("research", "kfp-1", 20, actor="gk").detail["reserved_g"] == 30
    status = ledger.status("research", P)
    assert (status.reserved_g, status.settled_g) == (5, 20)


# --------------------------------------------------------------------------- review fixes: opening a database

def test_a_file_that_is_not_a_ledger_is_one_error_naming_it(tmp_path):
    text = tmp_path / "notes.db"
    text.write_text("these are my notes, not a database\n" * 50)
    with pytest.raises(LedgerUnavailableError) as error:
        Ledger(f"sqlite:///{text}")
    assert str(error.value) == f"ledger sqlite:///{text} is not a greenkfp ledger (not a SQLite database: file is " \
                               "not a database)"
    other = tmp_path / "other.db"
    engine = sa.create_engine(f"sqlite:///{other}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE customers (id INTEGER)")
    engine.dispose()
    with pytest.raises(LedgerUnavailableError, match=r"other.db is not a greenkfp ledger \(it holds other tables: "
                                                     r"customers\)$"):
        Ledger(f"sqlite:///{other}")
    with sa.create_engine(f"sqlite:///{other}").connect() as connection:  # nothing was added to it
        assert sa.inspect(connection).get_table_names() == ["customers"]


def test_a_ledger_of_a_newer_greenkfp_is_one_error_naming_its_revision(ledger_url):
    Ledger(ledger_url).close()
    engine = sa.create_engine(ledger_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("UPDATE greenkfp_ledger_version SET version_num = '0099'")
    finally:
        engine.dispose()
    with pytest.raises(LedgerUnavailableError) as error:
        Ledger(ledger_url)
    message = str(error.value)
    assert message.startswith("ledger ") and "\n" not in message
    assert message.endswith("was created by a newer greenkfp (revision 0099; this greenkfp knows revisions up to "
                            "0003): upgrade greenkfp")


def test_read_only_use_does_not_create_a_sqlite_file(tmp_path):
    typo = tmp_path / "typo.db"
    with pytest.raises(BudgetError) as error:
        Ledger(f"sqlite:///{typo}", create=False)
    assert str(error.value) == f"ledger sqlite:///{typo} does not exist" and not typo.exists()
    typo.touch()  # an empty file: no ledger in it
    with pytest.raises(LedgerUnavailableError, match="is not a greenkfp ledger .*set a limit to create one"):
        Ledger(f"sqlite:///{typo}", create=False)
    with Ledger(f"sqlite:///{typo}") as ledger:  # a writer may create it
        hard(ledger)
    with Ledger(f"sqlite:///{typo}", create=False) as ledger:
        assert ledger.status("research", P).limit_g == 1000



def test_read_only_use_writes_nothing_and_migrates_nothing(tmp_path):
    from alembic import command

    path = tmp_path / "old.db"
    with Ledger(f"sqlite:///{path}") as ledger:
        hard(ledger)
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0002")
    finally:
        engine.dispose()
    before = path.read_bytes()
    with pytest.raises(LedgerUnavailableError) as error:  # an older ledger is not migrated by a reader
        Ledger(f"sqlite:///{path}", read_only=True)
    assert str(error.value) == (f"ledger sqlite:///{path} is at revision 0002, older than this greenkfp's 0003: open "
                                "it for writing once (any greenkfp budget command) to migrate it; read-only use "
                                "does not")
    assert path.read_bytes() == before
    with pytest.raises(LedgerUnavailableError, match="attempt to write a readonly database"):
        with Ledger(f"sqlite:///{path}", create=False) as writer:  # migrates; then a reader may not write
            writer.reserve("research", P, 10, "r-1", actor="gk")
            with Ledger(f"sqlite:///{path}", read_only=True) as reader:
                reader.reserve("research", P, 10, "r-2", actor="gk")
    with Ledger(f"sqlite:///{path}", read_only=True) as reader:
        assert reader.status("research", P).reserved_g == 10


def test_a_writer_that_must_not_create_still_writes_to_an_existing_ledger(tmp_path):
    """create=False (budget settle, reserve on an existing ledger) is not read-only: it writes."""
    path = tmp_path / "ledger.db"
    with Ledger(f"sqlite:///{path}") as ledger:
        hard(ledger)
    with Ledger(f"sqlite:///{path}", create=False) as ledger:
        ledger.reserve("research", P, 10, "r-1", actor="gk")
        assert ledger.status("research", P).reserved_g == 10


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
            assert context.get_current_revision() == head == "0003"
            assert {"budget_entries", "budget_periods"} <= set(sa.inspect(connection).get_table_names())
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "base")
        with engine.connect() as connection:
            assert not {"budget_entries", "budget_periods"} & set(sa.inspect(connection).get_table_names())
    finally:
        engine.dispose()
    with Ledger(ledger_url) as ledger:  # and up again
        assert ledger.entries() == []


@pytest.mark.parametrize("bad", ["nel\u0085x", "rtl\u202eevil", "zero\u200bwidth", "line\u2028sep", "para\u2029sep",
                                 "sur\ud800rogate", "tab\tx", "del\x7fx"])
def test_names_run_ids_and_pipelines_refuse_unicode_controls_and_format_characters(ledger, bad):
    hard(ledger)
    with pytest.raises(BudgetError, match="team must be a name"):
        ledger.set_limit(bad, P, 10, "hard", actor="lead")
    with pytest.raises(BudgetError, match="run_id must be a name"):
        ledger.reserve("research", P, 10, bad, actor="gk")
    with pytest.raises(BudgetError, match="pipeline must be a text"):
        ledger.reserve("research", P, 10, "run-1", actor="gk", pipeline=bad)
    with pytest.raises(BudgetError, match="actor must be a name"):
        ledger.add_board_member("carol", actor=bad)
    assert [e.kind for e in ledger.entries()] == ["limit"]
    assert ledger.reserve("research", P, 10, "caf\u00e9-\u65e5\u672c", actor="gk", pipeline="p\u00e9").granted


def test_a_corrupt_entry_detail_is_a_ledger_unavailable_error_naming_the_entry(ledger, ledger_url):
    hard(ledger)
    ledger.add_board_member("carol", actor="lead")
    engine = sa.create_engine(ledger_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as connection:
        entry_id = connection.execute(sa.text("SELECT max(id) FROM budget_entries")).scalar_one()
        connection.execute(sa.text("UPDATE budget_entries SET detail = '{not json' WHERE id = :id"), {"id": entry_id})
    engine.dispose()
    with pytest.raises(LedgerUnavailableError, match=f"entry #{entry_id}'s detail is not a JSON object: the ledger "
                                                     "is corrupt"):
        ledger.board_members()


def test_a_corrupt_budget_row_is_a_ledger_unavailable_error_naming_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'corrupt.db'}"
    with Ledger(url, clock=FixedClock(NOW)) as ledger:
        hard(ledger)
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE budget_periods SET reserved_g = 'abc'"))
    engine.dispose()
    with Ledger(url, clock=FixedClock(NOW)) as ledger:
        with pytest.raises(LedgerUnavailableError, match="budget_periods row of team 'research' for 2026-12: "
                                                         "reserved_g is not a number .*'abc'.*the ledger is corrupt"):
            ledger.status("research", P)
        with pytest.raises(LedgerUnavailableError):
            ledger.reserve("research", P, 1, "r", actor="gk")


def test_a_settlement_after_expiry_charges_the_actual_and_flags_a_hard_overdraft(ledger, clock):
    hard(ledger)
    ledger.reserve("research", P, 600, "a", actor="gk", ttl_seconds=60)
    ledger.reserve("research", P, 100, "b", actor="gk", ttl_seconds=60)
    clock.sleep(61)
    ledger.expire()  # b's release is written; a's reservation merely stopped counting
    released = ledger.release("research", "b", actor="gk")
    assert released.action == "expired"
    settled = ledger.settle("research", "a", 550, actor="gk")
    assert (settled.detail["after_expiry"], settled.detail["released_g"], settled.detail["charged_g"]) == \
        (True, 0, 550)
    assert "review_required" not in settled.detail and ledger.status("research", P).remaining_g == 450
    ledger.reserve("research", P, 10, "c", actor="gk", ttl_seconds=60)
    clock.sleep(61)
    assert ledger.release("research", "c", actor="gk").detail["after_expiry"] is True
    ledger.reserve("research", P, 400, "d", actor="gk", ttl_seconds=60)
    clock.sleep(61)
    late = ledger.settle("research", "d", 900, actor="gk")
    assert late.detail["review_required"] is True and late.detail["remaining_g"] == -450
    assert late.detail["reasons"] == ["takes the hard budget of team research for 2026-12 to -450 g: flagged for review"]
    assert ledger.status("research", P).remaining_g == -450


def test_the_status_of_a_budget_with_expired_reservations_looks_each_up_by_index(ledger, ledger_url, clock):
    """A budget holding reservations past their expiry (runs that never reported back) reads
    which are still open by each run's settlement/release key: one index lookup per reservation,
    not a walk over the team's entries for each (quadratic: 160 s for a 100,000-run report)."""
    hard(ledger, limit=1e6)
    for i in range(40):
        ledger.reserve("research", P, 2, f"run-{i}", actor="gk", ttl_seconds=60)
    for i in range(0, 40, 2):
        ledger.settle("research", f"run-{i}", 1, actor="gk")
    ledger.release("research", "run-1", actor="gk")
    clock.sleep(120)
    statements = []

    def seen(_connection, _cursor, statement, parameters, _context, _many):
        statements.append((statement, parameters))

    sa.event.listen(ledger._engine, "before_cursor_execute", seen)
    try:
        status = ledger.status("research", P)
    finally:
        sa.event.remove(ledger._engine, "before_cursor_execute", seen)
    assert (status.reserved_g, status.settled_g) == (0, 20)
    queries = [(q, p) for q, p in statements if "EXISTS" in q.upper() and "budget_entries" in q]
    assert queries
    engine = sa.create_engine(ledger_url)
    try:
        with engine.connect() as connection:
            for query, parameters in queries:
                if connection.dialect.name == "sqlite":
                    plan = [str(row[-1]) for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}",
                                                                              parameters)]
                    closed = [line for line in plan if "closed" in line]
                    assert closed and all("unique_key=?" in line for line in closed), plan
                else:
                    connection.exec_driver_sql("SET enable_seqscan = off")
                    plan = "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {query}", parameters))
                    assert "Seq Scan" not in plan and "unique_key" in plan, plan
    finally:
        engine.dispose()
