"""``greenkfp budget``: the carbon-budget ledger from the command line.

Only wiring: the ledger (:mod:`greenkfp.components.governance.ledger`) checks and decides. Every
command takes ``--ledger URL`` (default: ``$GREENKFP_LEDGER``, else
``sqlite:///greenkfp-ledger.db``) and ``--actor NAME`` (default: ``$USER``, else ``cli``), who is
recorded as having done it. Exit codes: 0 done (a reservation granted), 3 a reservation refused,
2 bad input or a ledger that cannot be reached: one line on stderr that names the option and the
value, nothing written, never a password. Only ``set-limit`` and ``board add|remove`` create a
ledger; the other commands need one (``--ledger sqlite:///typo.db does not exist``). Run ids are
per team: ``settle`` and ``release`` take the run's ``--team``. Every option is checked before the
ledger opens, with a bound: an id from 1 to 2**63 - 1, a duration or an expiry at most 366 days
ahead, numbers in ASCII digits.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

#: Exit code of a refused reservation (as `greenkfp submit --carbon-aware` when the gate refuses).
REFUSED = 3

#: The ledger's argument names that a command-line option spells differently.
_OPTION_OF = {"requester": "--actor", "approver": "--actor", "exception_id": "--id", "name": "NAME",
              "ttl_seconds": "--ttl"}


def _option(field: str) -> str:
    if field.startswith("facts."):  # a field of the run facts the ledger checks against the run
        return f"--facts-json field {field[len('facts.'):]}"
    return _OPTION_OF.get(field) or "--" + field.replace("_", "-")


def _number(text: str) -> float | str:
    """``text`` as a float if it is one in ASCII (``float`` also reads other scripts' digits, ``١٠``)."""
    try:
        return float(text) if text.isascii() and "_" not in text else text  # ASCII digits: no 1_000
    except ValueError:
        return text  # the check names it as typed


def _check_values(args: argparse.Namespace) -> None:
    """The options that need no database, checked (and converted) before the ledger opens."""
    from greenkfp.components.governance import BudgetError, check_grams, check_period
    from greenkfp.components.governance.bounds import check_entry_id
    from greenkfp.components.governance.errors import MAX_PIPELINE_CHARS
    from greenkfp.components.governance.ledger import check_limit, check_name
    from greenkfp.pipelines.options import duration_hours

    for name in ("limit_g", "estimate_g", "amount_g", "actual_g"):
        text = getattr(args, name, None)
        if text is not None:
            try:
                setattr(args, name, check_grams(name, _number(text), zero=name != "amount_g"))
            except BudgetError as exc:
                raise BudgetError(name, exc.problem, text) from None  # the value as typed
    if getattr(args, "overdraft_percent", None) is not None:
        args.overdraft_percent = _number(args.overdraft_percent)  # the ledger checks the range
    if getattr(args, "period", None) is not None:
        args.period = check_period(args.period)
    if getattr(args, "id", None) is not None:
        args.id = check_entry_id("exception_id", args.id, "an exception's id")
    if getattr(args, "ttl", None) is not None:  # at most 366 days (a larger one overflowed the ledger's dates)
        hours = duration_hours(args.ttl, "--ttl")
        if hours <= 0:
            raise ValueError(f"--ttl must be longer than 0, got {args.ttl!r}")
        args.ttl = hours * 3600.0
    if getattr(args, "expires_at", None) is not None:
        args.expires_at = _moment(args.expires_at, "--expires-at")
    pipeline = getattr(args, "pipeline", None)
    if pipeline is not None and (not pipeline.strip() or pipeline != pipeline.strip()
                                 or len(pipeline) > MAX_PIPELINE_CHARS or not pipeline.isprintable()):
        raise BudgetError("pipeline", f"must be a name of 1 to {MAX_PIPELINE_CHARS} printable characters without "
                                      "spaces around it", pipeline)
    if getattr(args, "from_team", None) is not None and args.from_team == args.to_team:
        raise BudgetError("to_team", "must be another team than --from-team", args.to_team)
    for name in ("team", "from_team", "to_team", "actor", "name"):  # a new ledger is not created for a bad name
        if isinstance(getattr(args, name, None), str):
            check_name(name, getattr(args, name))
    if getattr(args, "tier", None) is not None:
        check_limit(args.team, args.period, args.limit_g, args.tier, args.overdraft_percent, args.actor)
    if getattr(args, "facts_json", None) is not None:
        from greenkfp.components._files import FileReadError
        from greenkfp.components.records import MAX_FACTS_BYTES, RecordError, RunFacts, read_record

        try:
            args.facts_json = read_record(RunFacts, args.facts_json, max_bytes=MAX_FACTS_BYTES)
        except FileReadError as exc:  # a folder, a device, a pipe, a file too large: refused before it is read
            raise BudgetError("facts_json", f"{exc.path}: {exc.reason}") from None
        except RecordError as exc:
            raise BudgetError("facts_json", f"is not a run-facts file: {exc}") from None


def _moment(text: str, option: str) -> datetime:
    """An ISO 8601 time (``2026-12-31T23:59:00Z``) or a duration from now (``72h``, ``7d``), at
    most 366 days ahead."""
    from greenkfp.components.carbon.params import parse_datetime
    from greenkfp.components.governance.bounds import check_ahead
    from greenkfp.pipelines.options import duration_hours

    now = datetime.now(timezone.utc)
    if "T" in text or text.count("-") >= 2:
        moment = parse_datetime(text, option)
    else:
        moment = now + timedelta(hours=duration_hours(text, option))
    return check_ahead("expires_at", moment, now, text)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def _print_rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        lines = str(value).splitlines() or [""]
        print(f"{label:<{width}}  {lines[0]}")
        for line in lines[1:]:
            print(f"{'':<{width}}  {line}")


# --------------------------------------------------------------------------- commands

def cmd_set_limit(args, ledger) -> int:
    entry = ledger.set_limit(args.team, args.period, args.limit_g, args.tier,
                             overdraft_percent=args.overdraft_percent, actor=args.actor)
    _print_rows(ledger.status(args.team, args.period).rows()[:4])
    print(f"entry #{entry}")
    return 0


def cmd_reserve(args, ledger) -> int:
    from greenkfp.components.governance.policy import budget_input, policy_from

    # the policy decides (the bundled Rego file, a replacement, or an OPA server); the ledger enforces
    with policy_from(args.policy_url or None, args.policy_file or None) as policy:
        decision = policy.decide(budget_input(ledger.status(args.team, args.period), estimate_g=args.estimate_g,
                                              pipeline=args.pipeline, run_id=args.run_id))
    answer = ledger.reserve(args.team, args.period, args.estimate_g, args.run_id, actor=args.actor,
                            allow=decision.allow, overdraft_allowed_g=decision.overdraft_allowed_g,
                            review_required=decision.review_required, reasons=decision.reasons,
                            pipeline=args.pipeline, ttl_seconds=args.ttl)
    if args.json:
        _print_json(answer.to_dict())
    else:
        print(answer.text())
        for reason in answer.reasons:
            print(f"  - {reason}")
    return 0 if answer.granted else REFUSED


def cmd_settle(args, ledger) -> int:
    entry = ledger.settle(args.team, args.run_id, args.actual_g, actor=args.actor, facts=args.facts_json)
    detail = entry.detail
    if detail.get("after_expiry"):
        print(f"settled run {entry.run_id}: {_g(entry.amount_g)} g charged anew (its reservation of "
              f"{_g(detail['reserved_g'])} g had expired: nothing was given back); entry #{entry.id}")
    else:
        print(f"settled run {entry.run_id}: {_g(entry.amount_g)} g (reserved {_g(detail['reserved_g'])} g, released "
              f"{_g(detail['released_g'])} g)" + (f", {_g(detail['charged_g'])} g charged beyond the reservation"
                                                 if detail.get("charged_g") else "") + f"; entry #{entry.id}")
    for reason in detail.get("reasons", ()):
        print(f"  - {reason}")
    return 0


def _g(grams: float) -> str:
    return f"{grams:g}"


def cmd_release(args, ledger) -> int:
    entry = ledger.release(args.team, args.run_id, actor=args.actor)
    if entry.action == "expired" or entry.detail.get("after_expiry"):
        print(f"released run {entry.run_id}: its reservation of {entry.amount_g:g} g had expired "
              f"({entry.detail.get('expires_at', 'earlier')}) and stopped counting then: nothing changed for team "
              f"{entry.team} ({entry.period}); entry #{entry.id}")
    else:
        print(f"released run {entry.run_id}: {entry.amount_g:g} g back to team {entry.team} ({entry.period}); "
              f"entry #{entry.id}")
    return 0


def cmd_expire(args, ledger) -> int:
    print(f"{ledger.expire(actor=args.actor)} reservation(s) expired")
    return 0


def cmd_status(args, ledger) -> int:
    status = ledger.status(args.team, args.period)
    if args.json:
        _print_json(status.to_dict())
    else:
        _print_rows(status.rows())
    return 0


def cmd_exception_request(args, ledger) -> int:
    exception_id = ledger.request_exception(args.team, args.period, args.amount_g, requester=args.actor,
                                            reason=args.reason, expires_at=args.expires_at, run_id=args.run_id)
    print(ledger.exception(exception_id).text())
    return 0


def cmd_exception_approve(args, ledger) -> int:
    print(ledger.approve_exception(args.id, approver=args.actor).text())
    return 0


def cmd_exception_reject(args, ledger) -> int:
    print(ledger.reject_exception(args.id, approver=args.actor, reason=args.reason).text())
    return 0


def cmd_transfer(args, ledger) -> int:
    entry = ledger.transfer(args.from_team, args.to_team, args.period, args.amount_g, approver=args.actor,
                            reason=args.reason)
    print(f"moved {args.amount_g:g} g of {args.period} from {args.from_team} to {args.to_team}; entry #{entry}")
    return 0


def cmd_board(args, ledger) -> int:
    if args.board_action == "add":
        ledger.add_board_member(args.name, actor=args.actor)
    elif args.board_action == "remove":
        ledger.remove_board_member(args.name, actor=args.actor)
    print("review board: " + (", ".join(ledger.board_members()) or "(nobody)"))
    return 0


def cmd_entries(args, ledger) -> int:
    entries = ledger.entries(team=args.team, period=args.period)
    if args.json:
        _print_json([entry.to_dict() for entry in entries])
    else:
        for entry in entries:
            print(entry.text())
    return 0


#: The commands that may create the ledger (a SQLite file that does not exist): those that start one.
#: The others need an existing ledger (``--ledger sqlite:///typo.db does not exist``, exit 2): a
#: read-only command never creates a file, and one that needs a budget or a run has none in a new ledger.
_CREATING = {cmd_set_limit, cmd_board}


def _run(command: Callable[[argparse.Namespace, Any], int]) -> Callable[[argparse.Namespace], int]:
    """``command(args, ledger)`` with the ledger opened and closed; a BudgetError (or a bad value)
    is one line on stderr naming the option, exit 2."""

    def run(args: argparse.Namespace) -> int:
        from greenkfp.components._messages import redact_urls
        from greenkfp.components.governance import BudgetError, Ledger
        from greenkfp.components.governance.policy import PolicyError

        try:
            _check_values(args)
            creating = command in _CREATING and getattr(args, "board_action", "add") != "list"
            with Ledger(args.ledger, create=creating) as ledger:
                return command(args, ledger)
        except BudgetError as exc:
            message = str(exc.renamed(_option(exc.field)))
        except (ValueError, OverflowError) as exc:  # a bad duration or time, named by its parser
            message = str(exc)
        except PolicyError as exc:  # a policy file that does not parse, an OPA server that fails
            option = "--policy-url" if getattr(args, "policy_url", "") else "--policy-file"
            message = f"{option}: {exc}"
        print(f"error: {' '.join(redact_urls(message).split())}", file=sys.stderr)
        return 2

    return run


# --------------------------------------------------------------------------- the parser

def add_budget_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``greenkfp budget ...`` on the ``greenkfp`` command's subparsers."""
    from greenkfp.components.governance import DEFAULT_LEDGER_URL

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--ledger", default=os.environ.get("GREENKFP_LEDGER") or DEFAULT_LEDGER_URL, metavar="URL",
                        help="the ledger's database: sqlite:///FILE or postgresql+psycopg://USER:PASSWORD@HOST/DB "
                             f"(default: $GREENKFP_LEDGER, else {DEFAULT_LEDGER_URL})")
    common.add_argument("--actor", default=os.environ.get("USER") or "cli",
                        help="who does this, as recorded in the ledger (default: $USER, else cli)")
    budget = sub.add_parser("budget", help="team carbon budgets: limits, reservations, settlements, the review board",
                            description="The carbon-budget ledger: monthly (UTC) team budgets in grams of CO2eq, "
                                        "atomic reservations by run id, settlements, exceptions and transfers.")
    commands = budget.add_subparsers(dest="budget_command", required=True)

    def command(name: str, func, help: str, parent=commands) -> argparse.ArgumentParser:
        parser = parent.add_parser(name, parents=[common], help=help, description=help)
        parser.set_defaults(func=_run(func))
        return parser

    def team_period(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--team", required=True)
        parser.add_argument("--period", required=True, help="a calendar month, YYYY-MM (UTC)")

    p = command("set-limit", cmd_set_limit, "set a team's limit for a month (replaces an earlier one)")
    team_period(p)
    p.add_argument("--limit-g", required=True, help="grams of CO2eq (>= 0)")
    p.add_argument("--tier", required=True, help="hard: refuse beyond the remaining budget; soft: allow an "
                                                  "overdraft up to --overdraft-percent, flagged for review")
    p.add_argument("--overdraft-percent", default="0", help="soft tier: the overdraft allowed, in %% of the limit")

    p = command("reserve", cmd_reserve, "reserve a run's estimated emissions (exit 0 granted, 3 refused)")
    team_period(p)
    p.add_argument("--estimate-g", required=True, help="the run's estimated emissions, grams (>= 0)")
    p.add_argument("--run-id", required=True, help="the run; a retried run id gets the first answer back")
    p.add_argument("--pipeline", default="manual", help="the pipeline's name (settled history is kept by it; "
                                                          "default: manual)")
    p.add_argument("--ttl", default="24h", help="an unsettled reservation expires after this long (default: 24h; "
                                                "at most 366 days)")
    p.add_argument("--json", action="store_true", help="print the decision record as JSON")
    p.add_argument("--policy-url", default="", help="an OPA server to ask (its REST Data API); default: the "
                                                     "bundled Rego policy, evaluated in-process")
    p.add_argument("--policy-file", default="", help="a Rego policy to evaluate in-process instead of the bundled one")

    p = command("settle", cmd_settle, "record a finished run's actual emissions (releases the difference)")
    p.add_argument("--team", required=True, help="the run's team (run ids are per team)")
    p.add_argument("--run-id", required=True)
    p.add_argument("--actual-g", required=True, help="the run's actual emissions, grams (>= 0)")
    p.add_argument("--facts-json", default=None, metavar="PATH",
                   help="the run's facts (a greenkfp.run_facts/v1 JSON file: savings by lever, promoted model "
                        "against its baseline, gate delay), kept with the settlement for the audit and the report")

    p = command("release", cmd_release, "give a run's reservation back (the run will not happen)")
    p.add_argument("--team", required=True, help="the run's team (run ids are per team)")
    p.add_argument("--run-id", required=True)

    command("expire", cmd_expire, "write a release entry for every reservation past its expiry")

    p = command("status", cmd_status, "a team's budget for a month: limit, reserved, settled, remaining, exceptions")
    team_period(p)
    p.add_argument("--json", action="store_true", help="print the status record as JSON")

    exception = commands.add_parser("exception", help="exceptions: request, approve or reject (review board)",
                                    description="A one-off allowance for a team or one run to spend beyond its "
                                                "remaining budget, approved by a board member other than the "
                                                "requester (--actor).")
    actions = exception.add_subparsers(dest="exception_command", required=True)
    p = command("request", cmd_exception_request, "ask for an exception (--actor is the requester)", actions)
    team_period(p)
    p.add_argument("--amount-g", required=True, help="grams beyond the remaining budget (> 0)")
    p.add_argument("--reason", required=True)
    p.add_argument("--expires-at", required=True, help="an ISO 8601 time (2026-12-31T23:59:00Z) or a duration from "
                                                       "now (72h, 7d); at most 366 days ahead")
    p.add_argument("--run-id", default=None, help="only for this run (default: the whole team)")
    p = command("approve", cmd_exception_approve, "approve an exception (--actor: a board member)", actions)
    p.add_argument("--id", type=str, required=True, help="the exception's id (a whole number)")
    p = command("reject", cmd_exception_reject, "reject an exception (--actor: a board member)", actions)
    p.add_argument("--id", type=str, required=True, help="the exception's id")
    p.add_argument("--reason", required=True)

    p = command("transfer", cmd_transfer, "move budget between teams (--actor: a board member)")
    p.add_argument("--from-team", required=True)
    p.add_argument("--to-team", required=True)
    p.add_argument("--period", required=True, help="a calendar month, YYYY-MM (UTC)")
    p.add_argument("--amount-g", required=True, help="grams (> 0, at most the giving team's remaining budget)")
    p.add_argument("--reason", required=True)

    board = commands.add_parser("board", help="the review board: add, remove, list members")
    members = board.add_subparsers(dest="board_action", required=True)
    for action in ("add", "remove"):
        p = command(action, cmd_board, f"{action} a member of the review board", members)
        p.add_argument("name", metavar="NAME")
    command("list", cmd_board, "list the review board's members", members)

    p = command("entries", cmd_entries, "the ledger's entries (append-only), optionally of a team and a month")
    p.add_argument("--team", default=None)
    p.add_argument("--period", default=None)
    p.add_argument("--json", action="store_true", help="print the entries as JSON")
