"""The budget ledger's rules the mutation run (``make mutation MODULES=ledger``) found untested:
the bounds of its inputs (entry ids, times ahead, months, quarters, names, grams, tiers), and the
arithmetic and decisions of budgets, reservations, settlements, exceptions and transfers. Each
test fails on at least one mutant that survived the rest of the suite."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from conftest import FixedClock

from greenkfp.components.governance import BudgetError, Ledger
from greenkfp.components.governance.bounds import MAX_AHEAD, MAX_ENTRY_ID, check_ahead, check_entry_id
from greenkfp.components.governance.errors import MAX_GRAMS, MAX_NAME_CHARS, MAX_PIPELINE_CHARS, MAX_REASON_CHARS
from greenkfp.components.governance.ledger import (
    check_grams,
    check_limit,
    check_name,
    check_period,
    check_quarter,
    quarter_months,
    shift_month,
)

UTC = timezone.utc
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
P = "2026-12"


def refused(call, field: str) -> str:
    """The message of the BudgetError ``call()`` raises, which must name ``field``."""
    with pytest.raises(BudgetError) as error:
        call()
    assert error.value.field == field, str(error.value)
    return str(error.value)


# --------------------------------------------------------------------------- bounds.py

@pytest.mark.parametrize("given, taken", [(1, 1), (MAX_ENTRY_ID, MAX_ENTRY_ID), ("7", 7), ("0042", 42),
                                          (str(MAX_ENTRY_ID), MAX_ENTRY_ID)])
def test_an_entry_id_is_a_whole_number_from_1_to_the_largest_stored(given, taken):
    assert check_entry_id("id", given) == taken and type(check_entry_id("id", given)) is int


@pytest.mark.parametrize("given", [0, -1, MAX_ENTRY_ID + 1, True, 1.0, "1e3", "٣", " 7", "7 ", "-7", "",
                                   "9" * 20, str(MAX_ENTRY_ID + 1), None])
def test_anything_else_is_no_entry_id(given):
    message = refused(lambda: check_entry_id("--id", given, "an exception's id"), "--id")
    assert message.startswith(f"--id must be an exception's id, a whole number from 1 to {MAX_ENTRY_ID}, got ")


def test_an_entry_id_message_says_what_it_is_by_default():
    assert refused(lambda: check_entry_id("id", 0), "id").startswith(
        "id must be an entry's id, a whole number from 1 to 9223372036854775807, got 0")


def test_a_time_ahead_reaches_a_year_and_no_further():
    assert MAX_AHEAD == timedelta(days=366)
    assert check_ahead("ttl", NOW + MAX_AHEAD, NOW) == NOW + MAX_AHEAD
    assert check_ahead("ttl", NOW - timedelta(days=999), NOW) == NOW - timedelta(days=999)
    late = NOW + MAX_AHEAD + timedelta(microseconds=1)
    message = refused(lambda: check_ahead("expires_at", late, NOW), "expires_at")
    assert message == f"expires_at must be at most 366 days from now, got '{late.isoformat()}'"
    # the value as typed, when given
    assert refused(lambda: check_ahead("--ttl", late, NOW, "400d"), "--ttl").endswith("got '400d'")


# --------------------------------------------------------------------------- months, quarters, names

@pytest.mark.parametrize("period", ["1970-01", "2026-12", "9999-12", "2026-01"])
def test_a_period_is_a_calendar_month_from_1970(period):
    assert check_period(period) == period


@pytest.mark.parametrize("period", ["1969-12", "2026-00", "2026-13", "2026-1", "26-12", "2026-12-01", 202612, None])
def test_anything_else_is_no_period(period):
    assert refused(lambda: check_period(period), "period").startswith("period must be a calendar month YYYY-MM (UTC)")


def test_quarters_and_their_months():
    assert check_quarter("1970Q1") == (1970, 1) and check_quarter("2026Q4") == (2026, 4)
    for bad in ("1969Q4", "2026Q0", "2026Q5", "2026q1", "2026-Q1", 2026):
        assert refused(lambda: check_quarter(bad), "quarter").startswith("quarter must be a calendar quarter YYYYQn")
    assert quarter_months("2026Q4") == ["2026-10", "2026-11", "2026-12"]
    assert quarter_months("2026Q1") == ["2026-01", "2026-02", "2026-03"]
    assert quarter_months("2026Q2", 1) == ["2026-03", "2026-04", "2026-05", "2026-06"]
    assert quarter_months("2026Q1", 3) == ["2025-10", "2025-11", "2025-12", "2026-01", "2026-02", "2026-03"]
    assert [shift_month(2026, 12, 1), shift_month(2026, 1, -1), shift_month(2026, 3), shift_month(2026, 3, -14)] == \
        [(2027, 1), (2025, 12), (2026, 3), (2025, 1)]


def test_a_name_may_hold_a_no_break_space_but_no_control_or_format_character():
    """A character that is not printable is refused only when it hides: a no-break space shows."""
    assert check_name("team", "data\u00a0science") == "data\u00a0science"
    assert check_name("team", "é" * MAX_NAME_CHARS) == "é" * MAX_NAME_CHARS
    for bad in ("a\tb", "a\u202eb", "a\u200bb", "a\u2028b"):
        assert refused(lambda: check_name("team", bad), "team").startswith(
            f"team must be a name of 1 to {MAX_NAME_CHARS} characters, without control characters or spaces around it")
    for bad in ("", "  ", " a", "a ", 7, None, "x" * (MAX_NAME_CHARS + 1)):
        refused(lambda: check_name("actor", bad), "actor")
    assert check_name("run_id", "r" * 200, 200) == "r" * 200
    refused(lambda: check_name("run_id", "r" * 201, 200), "run_id")


# --------------------------------------------------------------------------- grams and limits

def test_grams_are_finite_from_0_or_above_0_up_to_the_maximum():
    assert check_grams("g", MAX_GRAMS) == MAX_GRAMS and check_grams("g", 0.5) == 0.5
    assert check_grams("g", 0, zero=True) == 0 and str(check_grams("g", -0.0, zero=True)) == "0.0"
    assert type(check_grams("g", 3)) is float
    assert refused(lambda: check_grams("g", 0), "g") == "g must be a finite number of grams > 0, at most 1e15 g (1 Gt), got 0"
    assert refused(lambda: check_grams("g", -1, zero=True), "g").startswith("g must be a finite number of grams >= 0")
    for bad in (MAX_GRAMS * 1.0000001, float("inf"), float("nan"), True, "5", None):
        refused(lambda: check_grams("g", bad, zero=True), "g")


def test_a_limit_is_checked_whole():
    assert check_limit("t", P, 100, "soft", 100, "lead") == ("t", P, 100.0, "soft", 100.0, "lead")
    assert check_limit("t", P, 0, "soft", 0, "lead") == ("t", P, 0.0, "soft", 0.0, "lead")
    assert check_limit("t", P, 100, "hard", 0.0, "lead")[3:5] == ("hard", 0.0)
    assert type(check_limit("t", P, 100, "soft", 5, "lead")[4]) is float
    assert refused(lambda: check_limit("t", P, 100, "medium", 0, "lead"), "tier") == \
        "tier must be hard or soft, got 'medium'"
    for bad in (-0.001, 100.001, True, "5", None, float("nan")):
        assert refused(lambda: check_limit("t", P, 100, "soft", bad, "lead"), "overdraft_percent").startswith(
            "overdraft_percent must be a number from 0 to 100")
    assert refused(lambda: check_limit("t", P, 100, "hard", 5, "lead"), "overdraft_percent").startswith(
        "overdraft_percent must be 0 for a hard budget (a hard budget has no overdraft), got 5")
    refused(lambda: check_limit("t", P, -1, "hard", 0, "lead"), "limit_g")
    refused(lambda: check_limit("t", P, 1, "hard", 0, " lead"), "actor")
    refused(lambda: check_limit(" t", P, 1, "hard", 0, "lead"), "team")
    refused(lambda: check_limit("t", "2026-13", 1, "hard", 0, "lead"), "period")


# --------------------------------------------------------------------------- the ledger's own checks

@pytest.fixture
def clock():
    return FixedClock(NOW)


@pytest.fixture
def ledger(ledger_url, clock):
    with Ledger(ledger_url, clock=clock) as opened:
        yield opened


def test_reserve_checks_its_flags_ttl_reasons_and_pipeline_before_writing(ledger):
    ledger.set_limit("t", P, 100, "hard", actor="lead")
    before = ledger.entries()
    assert refused(lambda: ledger.reserve("t", P, 1, "r", actor="gk", allow="yes"), "allow") == \
        "allow must be true or false, got 'yes'"
    assert refused(lambda: ledger.reserve("t", P, 1, "r", actor="gk", review_required=1), "review_required") == \
        "review_required must be true or false, got 1"
    assert refused(lambda: ledger.reserve("t", P, 1, "r", actor="gk", reasons="one reason"), "reasons") == \
        "reasons must be a list of texts, got 'one reason'"
    refused(lambda: ledger.reserve("t", P, 1, "r", actor="gk", reasons=["ok", 3]), "reasons")
    for ttl in (0, -1, float("inf"), True):
        assert refused(lambda: ledger.reserve("t", P, 1, "r", actor="gk", ttl_seconds=ttl), "ttl_seconds").startswith(
            "ttl_seconds must be a finite number of seconds > 0, got ")
    refused(lambda: ledger.reserve("t", P, 1, "r", actor="gk", pipeline="p" * (MAX_PIPELINE_CHARS + 1)), "pipeline")
    assert refused(lambda: ledger.reserve("t", P, 1, "r", actor="gk", pipeline="a\nb"), "pipeline").startswith(
        f"pipeline must be a text of at most {MAX_PIPELINE_CHARS} characters, without control characters")
    refused(lambda: ledger.reserve("t", P, 1, "r", actor="gk", pipeline=7), "pipeline")
    refused(lambda: ledger.reserve("t", P, 1, "r", actor="gk", overdraft_allowed_g=-1), "overdraft_allowed_g")
    assert ledger.entries() == before
    # the reasons kept: blank ones dropped, each on one line
    answer = ledger.reserve("t", P, 1, "r", actor="gk", allow=False, reasons=["  too\nmuch  ", " ", "late"])
    assert answer.reasons == ("too much", "late")
    # a pipeline at its limit, and empty, are taken
    assert ledger.reserve("t", P, 1, "r2", actor="gk", pipeline="p" * MAX_PIPELINE_CHARS).pipeline == \
        "p" * MAX_PIPELINE_CHARS


def test_an_exception_request_is_checked(ledger, clock):
    ledger.set_limit("t", P, 100, "hard", actor="lead")
    later = NOW + timedelta(days=3)
    assert refused(lambda: ledger.request_exception("t", P, 10, requester="dev", reason=" ", expires_at=later),
                   "reason") == f"reason must be a text of 1 to {MAX_REASON_CHARS} characters, got ' '"
    refused(lambda: ledger.request_exception("t", P, 10, requester="dev", reason="x" * (MAX_REASON_CHARS + 1),
                                             expires_at=later), "reason")
    assert refused(lambda: ledger.request_exception("t", P, 10, requester="dev", reason="r",
                                                    expires_at="next week"), "expires_at") == \
        "expires_at must be an ISO 8601 time such as 2026-12-31T23:59:00Z, got 'next week'"
    assert refused(lambda: ledger.request_exception("t", P, 10, requester="dev", reason="r",
                                                    expires_at=datetime(2026, 12, 9)), "expires_at").startswith(
        "expires_at must be a timezone-aware time (such as 2026-12-31T23:59:00Z)")
    assert refused(lambda: ledger.request_exception("t", P, 10, requester="dev", reason="r", expires_at=NOW),
                   "expires_at") == f"expires_at must be later than now (2026-12-03T09:00:00Z), got '2026-12-03T09:00:00Z'"
    refused(lambda: ledger.request_exception("t", P, 0, requester="dev", reason="r", expires_at=later), "amount_g")
    # "Z" and offsets are the same moment; the reason is kept stripped
    first = ledger.request_exception("t", P, 10, requester="dev", reason="  a launch ", expires_at="2026-12-09T12:00:00Z")
    second = ledger.request_exception("t", P, 10, requester="dev", reason="r", expires_at="2026-12-09T14:00:00+02:00")
    one, two = ledger.exception(first), ledger.exception(second)
    assert one.expires_at == two.expires_at == "2026-12-09T12:00:00Z" and one.reason == "a launch"
    for bad in (0, -3, True, "1"):
        assert refused(lambda: ledger.exception(bad), "exception_id").startswith(
            "exception_id must be an entry id (a whole number > 0)")


# --------------------------------------------------------------------------- transfers

def test_a_transfer_names_the_field_of_each_bad_argument(ledger):
    ledger.set_limit("a", P, 100, "hard", actor="lead")
    ledger.set_limit("b", P, 100, "hard", actor="lead")
    ledger.add_board_member("carol", actor="lead")
    for kwargs, field in (({"from_team": " a"}, "from_team"), ({"to_team": "b\n"}, "to_team"),
                          ({"approver": ""}, "approver"), ({"reason": " "}, "reason"),
                          ({"period": "2026-13"}, "period"), ({"amount_g": 0}, "amount_g")):
        args = {"from_team": "a", "to_team": "b", "period": P, "amount_g": 10, "approver": "carol", "reason": "r",
                **kwargs}
        with pytest.raises(BudgetError) as error:
            ledger.transfer(args.pop("from_team"), args.pop("to_team"), args.pop("period"), args.pop("amount_g"),
                            **args)
        assert error.value.field == field and error.value.value == kwargs[field]
    with pytest.raises(BudgetError) as error:
        ledger.transfer("a", "a", P, 10, approver="carol", reason="r")
    assert (error.value.field, error.value.value) == ("to_team", "a")
    assert [e.kind for e in ledger.entries()] == ["limit", "limit", "board"]


def test_transfers_lock_the_two_budgets_in_name_order(ledger):
    """Two opposite transfers must not wait on each other: both lock the budgets in name order,
    so the first budget found missing is the one whose team's name comes first."""
    ledger.add_board_member("carol", actor="lead")
    with pytest.raises(BudgetError) as error:
        ledger.transfer("zeta", "alpha", P, 10, approver="carol", reason="r")
    assert (error.value.field, error.value.value) == ("to_team", "alpha")
    with pytest.raises(BudgetError) as error:
        ledger.transfer("alpha", "zeta", P, 10, approver="carol", reason="r")
    assert (error.value.field, error.value.value) == ("from_team", "alpha")


def test_a_transfer_may_take_the_whole_remaining_budget_within_round_off(ledger):
    ledger.set_limit("a", P, 100, "hard", actor="lead")
    ledger.set_limit("b", P, 100, "hard", actor="lead")
    ledger.add_board_member("carol", actor="lead")
    ledger.reserve("a", P, 60, "r", actor="gk")
    ledger.transfer("a", "b", P, 40 + 4e-10, approver="carol", reason="all of it, give or take round-off")
    assert ledger.status("a", P).remaining_g == pytest.approx(0, abs=1e-9)
    assert ledger.status("b", P).limit_g == pytest.approx(140)
    with pytest.raises(BudgetError, match=r"^amount_g exceeds the 0 g a has remaining in 2026-12, got 1e-06$"):
        ledger.transfer("a", "b", P, 1e-6, approver="carol", reason="more")


def test_a_transfer_from_an_overdrawn_budget_says_nothing_remains(ledger):
    ledger.set_limit("a", P, 100, "soft", overdraft_percent=50, actor="lead")
    ledger.set_limit("b", P, 100, "hard", actor="lead")
    ledger.add_board_member("carol", actor="lead")
    assert ledger.reserve("a", P, 130, "r", actor="gk", overdraft_allowed_g=None).granted
    with pytest.raises(BudgetError, match=r"^amount_g exceeds the 0 g a has remaining in 2026-12, got 5.0$"):
        ledger.transfer("a", "b", P, 5, approver="carol", reason="r")


# --------------------------------------------------------------------------- admission and its reasons

def _board(ledger):
    ledger.add_board_member("carol", actor="lead")


def _approved(ledger, team, amount, *, days=5, run_id=None):
    grant = ledger.request_exception(team, P, amount, requester="bob", reason="needed",
                                     expires_at=NOW + timedelta(days=days), run_id=run_id)
    ledger.approve_exception(grant, approver="carol")
    return grant


def test_a_refusal_states_all_the_team_may_still_spend(ledger):
    """remaining (limit) + approved exceptions + the overdraft the policy and tier allow."""
    ledger.set_limit("s", P, 1000, "soft", overdraft_percent=10, actor="lead")
    _board(ledger)
    _approved(ledger, "s", 300)
    assert ledger.reserve("s", P, 900, "a", actor="gk").granted
    refused = ledger.reserve("s", P, 500, "b", actor="gk", overdraft_allowed_g=20)
    assert not refused.granted
    assert refused.reasons == ("estimate 500 g exceeds what team s may still spend in 2026-12: 100 g remaining "
                               "(limit 1,000 g) + 300 g of approved exceptions + 20 g of overdraft",)
    (decision,) = [e for e in ledger.entries() if e.kind == "decision" and e.run_id == "b"]
    assert decision.detail["overdraft_allowed_g"] == 20 and decision.detail["exceptions_g"] == 300
    assert decision.detail["allow"] is True and "drawn" not in decision.detail
    assert decision.detail["remaining_g"] == 100 and decision.detail["tier"] == "soft"
    plain = ledger.reserve("s", P, 5000, "c", actor="gk")
    assert plain.reasons == ("estimate 5,000 g exceeds what team s may still spend in 2026-12: 100 g remaining "
                             "(limit 1,000 g) + 300 g of approved exceptions",)


def test_a_grant_drawing_on_exceptions_says_so_and_records_the_draw(ledger):
    ledger.set_limit("t", P, 100, "hard", actor="lead")
    _board(ledger)
    first = _approved(ledger, "t", 50, days=5)
    second = _approved(ledger, "t", 80, days=2)  # expires first: drawn first
    answer = ledger.reserve("t", P, 200, "big", actor="gk")
    assert answer.granted and not answer.review_required and answer.overdraft_used_g == 0
    assert answer.reasons == ("within budget with 100 g of approved exceptions: 200 g of 100 g remaining "
                              "(limit 100 g) + 130 g of approved exceptions",)
    (decision,) = [e for e in ledger.entries() if e.kind == "decision"]
    assert decision.detail["drawn"] == {str(second): 80, str(first): 20}
    assert answer.remaining_g == 0
    status = ledger.status("t", P)
    assert (status.remaining_g, status.excepted_g, status.exception_g) == (0, 100, 30)


def test_a_run_s_own_exception_is_drawn_before_the_team_s(ledger):
    ledger.set_limit("t", P, 100, "hard", actor="lead")
    _board(ledger)
    team_wide = _approved(ledger, "t", 50, days=1)
    own = _approved(ledger, "t", 50, days=9, run_id="r")
    assert ledger.reserve("t", P, 130, "r", actor="gk").granted
    (decision,) = [e for e in ledger.entries() if e.kind == "decision"]
    assert decision.detail["drawn"] == {str(own): 30}
    assert ledger.status("t", P).exception_g == 50 and team_wide


def test_an_exception_used_up_is_not_drawn_again(ledger):
    ledger.set_limit("t", P, 0, "hard", actor="lead")
    _board(ledger)
    grant = _approved(ledger, "t", 50)
    assert ledger.reserve("t", P, 50, "a", actor="gk").granted
    assert ledger.exception(grant).status == "approved"
    zero = ledger.reserve("t", P, 0, "b", actor="gk")
    assert zero.granted and zero.reasons == ("within budget: 0 g of 0 g remaining (limit 0 g)",)
    (decision,) = [e for e in ledger.entries() if e.kind == "decision" and e.run_id == "b"]
    assert "drawn" not in decision.detail and decision.detail["exceptions_g"] == 0


def test_an_overdraft_grant_is_flagged_and_states_the_overdraft_used(ledger):
    ledger.set_limit("s", P, 1000, "soft", overdraft_percent=10, actor="lead")
    assert ledger.reserve("s", P, 980, "a", actor="gk").granted
    over = ledger.reserve("s", P, 50, "b", actor="gk", overdraft_allowed_g=None)
    assert over.granted and over.review_required and over.overdraft_used_g == pytest.approx(30)
    assert over.reasons == ("uses 30 g of the soft tier's overdraft (20 g remaining (limit 1,000 g) + 100 g of "
                            "overdraft): flagged for review",)
    (decision,) = [e for e in ledger.entries() if e.kind == "decision" and e.run_id == "b"]
    assert decision.detail["overdraft_allowed_g"] == 100 and decision.detail["overdraft_used_g"] == pytest.approx(30)
    assert decision.detail["review_required"] is True


def test_a_policy_asking_for_more_overdraft_than_the_tier_is_capped_and_told(ledger):
    ledger.set_limit("s", P, 1000, "soft", overdraft_percent=10, actor="lead")
    answer = ledger.reserve("s", P, 10, "a", actor="gk", overdraft_allowed_g=100 + 1e-9)  # round-off: no note
    assert answer.reasons == ("within budget: 10 g of 1,000 g remaining (limit 1,000 g)",)
    answer = ledger.reserve("s", P, 10, "b", actor="gk", overdraft_allowed_g=150, reasons=["ok"])
    assert answer.reasons == ("ok", "overdraft_allowed_g 150 g capped at 100 g (soft tier, overdraft_percent 10)",
                              "within budget: 10 g of 990 g remaining (limit 1,000 g)")


def test_a_refusal_by_the_policy_keeps_its_reasons_and_counts_nothing(ledger):
    ledger.set_limit("t", P, 100, "hard", actor="lead")
    answer = ledger.reserve("t", P, 10, "a", actor="gk", allow=False, reasons=["not on the list"])
    assert answer.reasons == ("not on the list",) and not answer.granted and answer.expires_at is None
    (decision,) = [e for e in ledger.entries() if e.kind == "decision"]
    assert decision.action == "refused" and decision.detail["allow"] is False
    assert decision.detail["remaining_g"] == 100 and decision.detail["overdraft_used_g"] == 0
    assert [e.kind for e in ledger.entries()] == ["limit", "decision"]


def test_an_overdrawn_soft_budget_grants_within_what_overdraft_is_left(ledger):
    """Past its limit a soft budget's remaining is negative: the run may use only what is left of
    the overdraft, all of its estimate counting as overdraft."""
    ledger.set_limit("s", P, 100, "soft", overdraft_percent=50, actor="lead")
    assert ledger.reserve("s", P, 120, "a", actor="gk", overdraft_allowed_g=None).granted
    b = ledger.reserve("s", P, 30, "b", actor="gk", overdraft_allowed_g=None)
    assert b.granted and b.overdraft_used_g == pytest.approx(30) and b.remaining_g == pytest.approx(-50)
    assert not ledger.reserve("s", P, 0.5, "c", actor="gk", overdraft_allowed_g=None).granted


def test_a_soft_budget_given_away_below_zero_has_no_overdraft(ledger):
    ledger.set_limit("s", P, 100, "soft", overdraft_percent=50, actor="lead")
    ledger.set_limit("t", P, 100, "hard", actor="lead")
    _board(ledger)
    ledger.transfer("s", "t", P, 100, approver="carol", reason="r")
    ledger.set_limit("s", P, 40, "soft", overdraft_percent=50, actor="lead")  # 40 - 100 transferred
    status = ledger.status("s", P)
    assert (status.limit_g, status.overdraft_g, status.remaining_g) == (-60, 0, -60)


# --------------------------------------------------------------------------- settlement, release, exceptions

def test_settling_again_with_the_figure_give_or_take_round_off_returns_the_first_entry(ledger):
    ledger.set_limit("t", P, 1e6, "hard", actor="lead")
    ledger.reserve("t", P, 5e5, "r", actor="gk")
    first = ledger.settle("t", "r", 2e5, actor="gk")
    assert ledger.settle("t", "r", 2e5 + 1e-5, actor="gk") == first  # within 1e-9 relative of 200 kg
    with pytest.raises(BudgetError, match=r"^actual_g differs from the 200,000 g already settled for run 'r'"):
        ledger.settle("t", "r", 2e5 + 1e-3, actor="gk")
    ledger.reserve("t", P, 5, "small", actor="gk")
    small = ledger.settle("t", "small", 0.5, actor="gk")
    assert ledger.settle("t", "small", 0.5 + 5e-10, actor="gk") == small  # 1e-9 g absolute below 1 g
    with pytest.raises(BudgetError):
        ledger.settle("t", "small", 0.5 + 5e-9, actor="gk")


def test_a_settlement_records_what_it_gave_back_and_charged(ledger, clock):
    ledger.set_limit("t", P, 1000, "hard", actor="lead")
    ledger.reserve("t", P, 300, "under", actor="gk")
    under = ledger.settle("t", "under", 200, actor="gk")
    assert under.detail == {"reserved_g": 300, "released_g": 100, "beyond_reservation_g": 0, "charged_g": 0,
                            "after_expiry": False, "remaining_g": 800}
    ledger.reserve("t", P, 100, "over", actor="gk")
    over = ledger.settle("t", "over", 150, actor="gk")
    assert over.detail == {"reserved_g": 100, "released_g": 0, "beyond_reservation_g": 50, "charged_g": 50,
                           "after_expiry": False, "remaining_g": 650}
    assert over.ref_id is not None and over.pipeline == "" and over.actor == "gk"
    ledger.reserve("t", P, 100, "late", actor="gk", ttl_seconds=60)
    clock.sleep(60)  # at its expiry: no longer counting
    late = ledger.settle("t", "late", 40, actor="gk")
    assert late.detail == {"reserved_g": 100, "released_g": 0, "beyond_reservation_g": 0, "charged_g": 40,
                           "after_expiry": True, "remaining_g": 610}
    status = ledger.status("t", P)
    assert (status.reserved_g, status.settled_g, status.remaining_g) == (0, 390, 610)


def test_a_hard_budget_is_flagged_only_when_a_settlement_takes_it_further_below_zero(ledger, clock):
    ledger.set_limit("t", P, 100, "hard", actor="lead")
    ledger.reserve("t", P, 100, "a", actor="gk")
    exact = ledger.settle("t", "a", 100, actor="gk")
    assert "review_required" not in exact.detail and exact.detail["remaining_g"] == 0
    ledger.reserve("t", P, 0, "b", actor="gk")
    over = ledger.settle("t", "b", 1e-10, actor="gk")  # round-off below zero: not flagged
    assert "review_required" not in over.detail
    ledger.reserve("t", P, 0, "c", actor="gk")
    flagged = ledger.settle("t", "c", 5, actor="gk")
    assert flagged.detail["review_required"] is True and flagged.detail["reasons"] == [
        "takes the hard budget of team t for 2026-12 to -5 g: flagged for review"]
    ledger.set_limit("s", P, 100, "soft", overdraft_percent=10, actor="lead")
    ledger.reserve("s", P, 0, "d", actor="gk")
    assert "review_required" not in ledger.settle("s", "d", 150, actor="gk").detail  # soft: no flag here


def test_a_release_past_the_expiry_gives_nothing_back_and_says_so(ledger, clock):
    ledger.set_limit("t", P, 100, "hard", actor="lead")
    ledger.reserve("t", P, 30, "on-time", actor="gk", ttl_seconds=600)
    ledger.reserve("t", P, 50, "late", actor="gk", ttl_seconds=60, pipeline="train")
    clock.sleep(60)
    assert ledger.status("t", P).remaining_g == 70
    late = ledger.release("t", "late", actor="someone")
    assert late.detail == {"after_expiry": True, "expires_at": "2026-12-03T09:01:00Z"}
    assert (late.amount_g, late.pipeline, late.actor, late.period) == (50, "train", "someone", P)
    on_time = ledger.release("t", "on-time", actor="gk")
    assert on_time.detail == {} and on_time.amount_g == 30
    status = ledger.status("t", P)
    assert (status.reserved_g, status.remaining_g) == (0, 100)


def test_an_approved_exception_expires_but_a_rejected_one_stays_rejected(ledger, clock):
    ledger.set_limit("t", P, 100, "hard", actor="lead")
    _board(ledger)
    approved = _approved(ledger, "t", 10, days=1)
    rejected = ledger.request_exception("t", P, 10, requester="bob", reason="x", expires_at=NOW + timedelta(days=1))
    ledger.reject_exception(rejected, approver="carol", reason="no")
    pending = ledger.request_exception("t", P, 10, requester="bob", reason="y", expires_at=NOW + timedelta(days=1))
    clock.sleep(86400 - 1)
    assert [ledger.exception(i).status for i in (approved, rejected, pending)] == ["approved", "rejected", "pending"]
    clock.sleep(1)  # at the expiry
    assert [ledger.exception(i).status for i in (approved, rejected, pending)] == ["expired", "rejected", "expired"]
    grant = ledger.exception(approved)
    assert (grant.approver, grant.requester, grant.reason, grant.decision_reason) == ("carol", "bob", "needed", None)
    assert ledger.exception(rejected).decision_reason == "no"
    assert ledger.exception(pending).approver is None and ledger.exception(pending).decided_at is None


def test_settle_and_release_name_their_bad_arguments(ledger):
    ledger.set_limit("t", P, 100, "hard", actor="lead")
    ledger.reserve("t", P, 10, "r", actor="gk")
    for call in (ledger.settle, ledger.release):
        extra = (1,) if call == ledger.settle else ()
        for args, kwargs, field in (((" t", "r", *extra), {"actor": "gk"}, "team"),
                                    (("t", "r\t", *extra), {"actor": "gk"}, "run_id"),
                                    (("t", "r", *extra), {"actor": ""}, "actor")):
            with pytest.raises(BudgetError) as error:
                call(*args, **kwargs)
            assert error.value.field == field, (call, field)
    ledger.settle("t", "r", 5, actor="gk")
    with pytest.raises(BudgetError) as error:
        ledger.release("t", "r", actor="gk")
    assert (error.value.field, error.value.value) == ("run_id", "r")


def test_a_re_keyed_run_is_settled_under_its_new_id(ledger):
    ledger.set_limit("t", P, 100, "hard", actor="lead")
    ledger.reserve("t", P, 10, "provisional", actor="gk")
    ledger.rekey("t", "provisional", "kfp-run", actor="gk")
    with pytest.raises(BudgetError) as error:
        ledger.settle("t", "provisional", 5, actor="gk")
    assert (error.value.field, error.value.value) == ("run_id", "provisional")
    assert str(error.value) == ("run_id was re-keyed to run 'kfp-run' (the id KFP gave it): settle that run id, "
                                "got 'provisional'")
    assert ledger.settle("t", "kfp-run", 5, actor="gk").amount_g == 5


def test_a_release_points_at_the_reservation_it_gives_back(ledger):
    ledger.set_limit("t", P, 100, "hard", actor="lead")
    ledger.reserve("t", P, 10, "r", actor="gk", pipeline="p")
    release = ledger.release("t", "r", actor="gk")
    (reservation,) = [e for e in ledger.entries() if e.kind == "reservation"]
    assert release.ref_id == reservation.id and release.pipeline == "p" and release.run_id == "r"


def test_what_each_run_draws_from_an_exception_counts_by_how_the_run_ended(ledger, clock, monkeypatch):
    """A settled run's draw counts for the part of its actual beyond its own share of the budget;
    an open run's counts whole; a released or lapsed run's not at all. With the lookup of the
    runs' settlements and releases split in one query per run (two keys each), so every run's
    fate is found whatever the lookup's size."""
    from greenkfp.components.governance import ledger as ledger_module

    monkeypatch.setattr(ledger_module, "_KEYS_PER_QUERY", 2)
    ledger.set_limit("t", P, 100, "hard", actor="lead")
    _board(ledger)
    _approved(ledger, "t", 500)
    assert ledger.reserve("t", P, 150, "a", actor="gk").granted  # 100 of the budget, 50 drawn
    ledger.settle("t", "a", 120, actor="gk")  # 20 of the 50 drawn count
    assert ledger.reserve("t", P, 100, "b", actor="gk").granted  # all drawn, open
    assert ledger.reserve("t", P, 50, "c", actor="gk").granted
    ledger.release("t", "c", actor="gk")  # gives its draw back
    assert ledger.reserve("t", P, 30, "d", actor="gk", ttl_seconds=60).granted
    clock.sleep(60)  # lapsed at its expiry: its draw too
    status = ledger.status("t", P)
    assert (status.excepted_g, status.exception_g, status.remaining_g) == (120, 380, 0)
    (grant,) = status.exceptions
    assert grant.drawn_g == 120


def test_a_settled_run_s_draw_counts_after_its_overdraft(ledger):
    """A soft budget's run that took exceptions and overdraft: its own share is its estimate less
    both. Settled for less, the budget is spent first, then the exceptions, then the overdraft:
    140 g of a 170 g estimate is the 100 g budget and the whole 40 g exception, no overdraft."""
    ledger.set_limit("s", P, 100, "soft", overdraft_percent=50, actor="lead")
    _board(ledger)
    _approved(ledger, "s", 40)
    run = ledger.reserve("s", P, 170, "a", actor="gk", overdraft_allowed_g=None)
    assert run.granted and run.overdraft_used_g == pytest.approx(30)
    ledger.settle("s", "a", 140, actor="gk")
    status = ledger.status("s", P)
    assert (status.excepted_g, status.exception_g, status.remaining_g) == (40, 0, 0)


def test_a_run_settled_within_its_own_share_gives_its_whole_draw_back(ledger):
    ledger.set_limit("t", P, 100, "hard", actor="lead")
    _board(ledger)
    _approved(ledger, "t", 50)
    assert ledger.reserve("t", P, 150, "a", actor="gk").granted  # 50 drawn
    ledger.settle("t", "a", 99.5, actor="gk")  # within the budget's 100 g
    status = ledger.status("t", P)
    assert (status.excepted_g, status.exception_g, status.remaining_g) == (0, 50, 0.5)


def test_a_draw_of_less_than_a_gram_counts_once_settled(ledger):
    ledger.set_limit("t", P, 100, "hard", actor="lead")
    _board(ledger)
    _approved(ledger, "t", 50)
    assert ledger.reserve("t", P, 100.5, "a", actor="gk").granted  # 0.5 g drawn
    ledger.settle("t", "a", 100.5, actor="gk")
    status = ledger.status("t", P)
    assert (status.excepted_g, status.exception_g, status.remaining_g) == (0.5, 49.5, 0)


# --------------------------------------------------------------------------- what the entries say

def test_the_entries_of_a_run_and_a_transfer_say_what_happened(ledger):
    """The audit reads entries by kind and action: a reservation is "reserved" and points at its
    decision, a settlement is "settled", a transfer "moved"."""
    ledger.set_limit("t", P, 100, "hard", actor="lead")
    ledger.set_limit("u", P, 100, "hard", actor="lead")
    _board(ledger)
    ledger.reserve("t", P, 10, "r", actor="gk")
    ledger.settle("t", "r", 8, actor="gk")
    ledger.transfer("t", "u", P, 5, approver="carol", reason="r")
    entries = {e.kind: e for e in ledger.entries()}
    assert entries["reservation"].action == "reserved" and entries["reservation"].ref_id == entries["decision"].id
    assert entries["settlement"].action == "settled" and entries["settlement"].ref_id == entries["reservation"].id
    assert entries["transfer"].action == "moved"


def test_reserve_names_its_bad_team_and_actor(ledger):
    ledger.set_limit("t", P, 100, "hard", actor="lead")
    for args, kwargs, field in ((("t ", P, 1, "r"), {"actor": "gk"}, "team"), (("t", P, 1, "r"), {"actor": " "}, "actor")):
        with pytest.raises(BudgetError) as error:
            ledger.reserve(*args, **kwargs)
        assert error.value.field == field
    ledger.set_limit("t", "2027-01", 100, "hard", actor="lead")
    ledger.reserve("t", P, 1, "r", actor="gk")
    with pytest.raises(BudgetError) as error:
        ledger.reserve("t", "2027-01", 1, "r", actor="gk")
    assert str(error.value) == "run_id was decided for team t in 2026-12, not 2027-01; a run id names one run, got 'r'"


def test_settling_a_released_run_names_it(ledger):
    ledger.set_limit("t", P, 100, "hard", actor="lead")
    ledger.reserve("t", P, 10, "r", actor="gk")
    ledger.release("t", "r", actor="gk")
    with pytest.raises(BudgetError) as error:
        ledger.settle("t", "r", 5, actor="gk")
    assert (error.value.field, error.value.value) == ("run_id", "r")


def test_a_nanogram_of_round_off_does_not_change_a_decision(ledger):
    """Sums of floats in SQL are not exact: an estimate within 1e-9 g of what may be spent is
    granted, and a policy's overdraft within 1e-9 g of the tier's cap is not reported as capped."""
    ledger.set_limit("t", P, 0, "hard", actor="lead")
    assert ledger.reserve("t", P, 1e-9, "a", actor="gk").granted
    answer = ledger.reserve("t", P, 0, "b", actor="gk", overdraft_allowed_g=1e-9)
    assert not any("capped" in r for r in answer.reasons)


def test_a_grant_within_the_budget_mentions_the_exceptions_still_available(ledger):
    ledger.set_limit("t", P, 100, "hard", actor="lead")
    _board(ledger)
    _approved(ledger, "t", 50)
    answer = ledger.reserve("t", P, 10, "r", actor="gk")
    assert answer.reasons == ("within budget: 10 g of 100 g remaining (limit 100 g) + 50 g of approved exceptions",)


def test_a_budget_counts_only_its_own_team_s_and_month_s_exceptions(ledger):
    for team, period in (("t", P), ("t", "2027-01"), ("u", P)):
        ledger.set_limit(team, period, 100, "hard", actor="lead")
    _board(ledger)
    for team, period in (("t", "2027-01"), ("u", P)):
        grant = ledger.request_exception(team, period, 50, requester="bob", reason="x",
                                         expires_at=NOW + timedelta(days=5))
        ledger.approve_exception(grant, approver="carol")
    mine = ledger.request_exception("t", P, 7, requester="bob", reason="x", expires_at=NOW + timedelta(days=5))
    status = ledger.status("t", P)
    assert [e.id for e in status.exceptions] == [mine] and status.exception_g == 0  # pending
    assert not ledger.reserve("t", P, 101, "r", actor="gk").granted


def test_a_hard_budget_is_flagged_when_a_settlement_takes_it_below_zero_even_by_little(ledger):
    ledger.set_limit("t", P, 100, "hard", actor="lead")
    ledger.reserve("t", P, 95, "a", actor="gk")
    ledger.settle("t", "a", 95, actor="gk")
    ledger.reserve("t", P, 0, "b", actor="gk")
    within = ledger.settle("t", "b", 5 + 5e-10, actor="gk")  # 5e-10 g below zero: round-off, not flagged
    assert "review_required" not in within.detail


def test_the_first_expiry_is_brought_up_to_date_after_a_lapsed_run_is_released(ledger, clock):
    """A refusal brings the budget's first expiry up to date without changing what it holds."""
    ledger.set_limit("t", P, 100, "hard", actor="lead")
    ledger.reserve("t", P, 60, "a", actor="gk", ttl_seconds=60)
    ledger.reserve("t", P, 30, "b", actor="gk", ttl_seconds=3600)
    clock.sleep(120)
    ledger.release("t", "a", actor="gk")  # past its expiry
    assert not ledger.reserve("t", P, 95, "c", actor="gk").granted
    assert ledger.status("t", P).reserved_g == 30
    clock.sleep(3600)
    assert ledger.status("t", P).reserved_g == 0
