"""Many processes reserve against one team's budget at once, on SQLite and on PostgreSQL: the
ledger never grants more than the budget (plus the allowed overdraft), records exactly one
decision per run id, and answers a retried run id with its first answer."""

from __future__ import annotations

import multiprocessing
from collections import defaultdict

import pytest

from greenkfp.components.governance import Ledger

PROCESSES, REQUESTS, SHARED = 8, 20, 3  # each process: 17 runs of its own and 3 run ids other processes ask too
PERIOD = "2026-12"
LIMIT_G = 300.0


def _jobs(worker: int) -> list[tuple[str, float]]:
    own = [(f"run-{worker}-{i}", 3.0 + (7 * i + worker) % 9) for i in range(REQUESTS - SHARED)]
    shared = [(f"shared-{(worker + k) % PROCESSES}", 5.0) for k in range(SHARED)]  # each asked by 3 processes
    return shared[:1] + own[:8] + shared[1:2] + own[8:] + shared[2:]


def _reserve_all(url: str, worker: int, start, results) -> None:
    """One process: open the ledger, wait for the others, then reserve one job after another."""
    try:
        with Ledger(url) as ledger:
            start.wait(timeout=60)
            answers = [ledger.reserve("research", PERIOD, estimate, run_id, actor=f"worker-{worker}",
                                      overdraft_allowed_g=None).to_dict() for run_id, estimate in _jobs(worker)]
        results.put((worker, answers))
    except BaseException as exc:  # the parent reports it: a child's traceback would be lost
        results.put((worker, f"{type(exc).__name__}: {exc}"))


def _run_processes(url: str, target=None) -> list:
    """``target(url, worker, start, results)`` in PROCESSES forked processes started together
    (``_reserve_all`` by default); each process's answers, in worker order."""
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(PROCESSES), context.Queue()
    processes = [context.Process(target=target or _reserve_all, args=(url, w, start, results))
                 for w in range(PROCESSES)]
    for process in processes:
        process.start()
    try:
        outcomes = dict(results.get(timeout=120) for _ in processes)
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    failed = {w: outcome for w, outcome in outcomes.items() if isinstance(outcome, str)}
    assert not failed, failed
    return [answer for w in sorted(outcomes) for answer in outcomes[w]]


@pytest.mark.parametrize("tier, overdraft_percent", [("hard", 0.0), ("soft", 10.0)])
def test_concurrent_reservations_never_spend_more_than_the_budget(ledger_url, tier, overdraft_percent):
    with Ledger(ledger_url) as ledger:
        ledger.set_limit("research", PERIOD, LIMIT_G, tier, overdraft_percent=overdraft_percent, actor="lead")
    answers = _run_processes(ledger_url)  # the parent's ledger is closed: no connection crosses a fork

    assert len(answers) == PROCESSES * REQUESTS
    by_run = defaultdict(list)
    for answer in answers:
        by_run[answer["run_id"]].append(answer)
    assert len(by_run) == PROCESSES * (REQUESTS - SHARED) + PROCESSES
    for run_id, same in by_run.items():  # a run id asked by 3 processes: one decision, the others replay it
        assert sum(not a["replayed"] for a in same) == 1, run_id
        assert {(a["granted"], a["decided_at"], a["decision_id"]) for a in same} == \
            {(same[0]["granted"], same[0]["decided_at"], same[0]["decision_id"])}
    first = [next(a for a in same if not a["replayed"]) for same in by_run.values()]
    granted = [a for a in first if a["granted"]]
    spent = sum(a["amount_g"] for a in granted)
    assert spent <= LIMIT_G * (1 + overdraft_percent / 100) + 1e-6
    assert all(a["review_required"] == (a["overdraft_used_g"] > 0) for a in granted)
    assert (tier == "soft") == any(a["review_required"] for a in granted)

    with Ledger(ledger_url) as ledger:
        status = ledger.status("research", PERIOD)
        entries = ledger.entries()
        decided = [e.run_id for e in entries if e.kind == "decision"]
        reserved = [e.run_id for e in entries if e.kind == "reservation"]
        assert sorted(decided) == sorted(by_run)  # every run id: exactly one recorded decision
        assert sorted(reserved) == sorted(a["run_id"] for a in granted)
        assert status.reserved_g == pytest.approx(spent)
        # nothing refused needlessly: each refusal asked for more than was left when it came, and
        # what is left only shrinks
        assert all(a["amount_g"] > status.remaining_g + status.overdraft_g for a in first if not a["granted"])
        retried = ledger.reserve("research", PERIOD, 1.0, "shared-0", actor="retry")
        assert retried.replayed and retried.decision_id == by_run["shared-0"][0]["decision_id"]


# --------------------------------------------------------------------------- settling and releasing at once

RUNS = 6  # runs every process settles or releases at the same moment


def _close_all(url: str, worker: int, start, results) -> None:
    """One process: open the ledger, wait for the others, then settle (even workers, each with its
    own figure) or release (odd workers) every run, all processes on the same runs at once."""
    from greenkfp.components.governance import BudgetError

    try:
        answers = []
        with Ledger(url) as ledger:
            start.wait(timeout=60)
            for i in range(RUNS):
                try:
                    if worker % 2 == 0:
                        entry = ledger.settle("research", f"run-{i}", 10.0 + worker, actor=f"worker-{worker}")
                    else:
                        entry = ledger.release("research", f"run-{i}", actor=f"worker-{worker}")
                    answers.append((f"run-{i}", entry.id, entry.kind, entry.amount_g))
                except BudgetError as exc:  # the other kind won, or another figure was settled first
                    answers.append((f"run-{i}", None, exc.field, str(exc)))
        results.put((worker, answers))
    except BaseException as exc:  # the parent reports it
        results.put((worker, f"{type(exc).__name__}: {exc}"))


def test_concurrent_settlements_and_releases_of_a_run_act_exactly_once(ledger_url):
    with Ledger(ledger_url) as ledger:
        ledger.set_limit("research", PERIOD, LIMIT_G, "hard", actor="lead")
        for i in range(RUNS):
            ledger.reserve("research", PERIOD, 40.0, f"run-{i}", actor="gk")
    every_answer = _run_processes(ledger_url, _close_all)

    with Ledger(ledger_url) as ledger:
        entries = ledger.entries(team="research")
        status = ledger.status("research", PERIOD)
    settled = 0.0
    for i in range(RUNS):
        run = f"run-{i}"
        closing = [e for e in entries if e.run_id == run and e.kind in ("settlement", "release")]
        assert len(closing) == 1, closing  # exactly one winner, of one kind
        (winner,) = closing
        answers = [a for a in every_answer if a[0] == run]
        assert len(answers) == PROCESSES
        # every process that succeeded got the winner's entry back (a release again, or the same figure)
        assert {a[1] for a in answers if a[1] is not None} == {winner.id}
        for answer in answers:
            if answer[1] is None:  # refused: the loser says why
                assert answer[2] in ("run_id", "actual_g") and (
                    "was settled" in answer[3] or "was released" in answer[3] or "already settled" in answer[3])
        if winner.kind == "settlement":
            settled += winner.amount_g
    assert status.reserved_g == pytest.approx(0.0)
    assert status.settled_g == pytest.approx(settled)
    assert status.remaining_g == pytest.approx(LIMIT_G - settled)
