"""``greenkfp report quarterly``: the quarterly sustainability report from the budget ledger and
the audit's baseline.

Only wiring: :mod:`greenkfp.components.governance.quarterly` computes the figures and
:mod:`greenkfp.components.governance.quarterly_render` writes them (HTML, JSON, CSV, Markdown).
Exit codes: 0 written, 2 bad input (one line on stderr naming the option and the value; nothing
written) or a ledger that cannot be reached.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

#: The library's argument names that a command-line option spells differently.
_OPTION_OF = {"ledger": "--ledger", "baseline": "--baseline", "quarter": "--quarter", "output": "--output",
              "hardware_profile": "--hardware-profile", "carbon_price_eur_per_t": "--carbon-price-eur-per-t",
              "usd_per_eur": "--usd-per-eur"}


def _number(option: str, text: str) -> float:
    from greenkfp.components.governance.quarterly import ReportError

    try:
        return float(text)
    except ValueError:
        raise ReportError(option, "must be a number", text) from None


def _hardware(values: list[str]) -> dict[str, str]:
    """``--hardware-profile [TEAM=]PRESET`` (repeatable) as {team or "*": preset}."""
    from greenkfp.components.governance.quarterly import ReportError

    chosen: dict[str, str] = {}
    for text in values:
        team, sep, preset = text.rpartition("=")
        key = team if sep else "*"
        if (sep and not team) or not preset:
            raise ReportError("--hardware-profile", "must be PRESET or TEAM=PRESET", text)
        if key in chosen:
            raise ReportError("--hardware-profile", f"gives {'team ' + key if sep else 'the default'} twice", text)
        chosen[key] = preset
    return chosen


def cmd_quarterly(args: argparse.Namespace) -> int:
    from greenkfp.components._files import OutputError, check_output_folder, os_reason
    from greenkfp.components._messages import redact_urls
    from greenkfp.components.governance import BudgetError, Ledger
    from greenkfp.components.governance.quarterly import (ReportError, load_baseline, mass, parse_quarter,
                                                          quarterly_report)
    from greenkfp.components.governance.quarterly_render import write_report

    try:
        quarter = parse_quarter(args.quarter)
        check_output_folder("--output", args.output)  # before the report's work: a bad folder is said at once
        price = _number("--carbon-price-eur-per-t", args.carbon_price_eur_per_t)
        rate = None if args.usd_per_eur is None else _number("--usd-per-eur", args.usd_per_eur)
        hardware = _hardware(args.hardware_profile)
        baseline = load_baseline(args.baseline)
        with Ledger(args.ledger, read_only=True) as ledger:  # a report reads: a typo is not a new ledger
            report = quarterly_report(ledger, quarter, baseline, baseline_source=args.baseline,
                                      carbon_price_eur_per_t=price, usd_per_eur=rate, hardware=hardware or None)
        paths = write_report(report, args.output)
    except BudgetError as exc:  # ReportError too
        message = str(exc.renamed(_OPTION_OF.get(exc.field, exc.field)))
    except OutputError as exc:  # the output folder (named, with what the OS said)
        message = str(exc)
    except OSError as exc:  # another file: its path and what the OS said
        message = os_reason(exc)
    else:
        from greenkfp.components.governance.quarterly_render import progress_line

        print(f"{report.quarter}: {report.sources.settled_runs:,} settled runs, {mass(report.emissions_g, 'CO2eq')}; "
              f"{progress_line(report)}")
        for note in report.notes:
            print(f"note: {note}")
        for kind, path in paths.items():
            print(f"{kind:<8} {path}")
        return 0
    print(f"error: {' '.join(redact_urls(message).split())}", file=sys.stderr)
    return 2


def cmd_seed_demo(args: argparse.Namespace) -> int:
    from greenkfp.components._files import OutputError, check_output_folder, os_reason
    from greenkfp.components._messages import redact_urls
    from greenkfp.components.governance import BudgetError, Ledger
    from greenkfp.components.governance.demo import (check_demo_options, last_ended_quarter, seed_quarter,
                                                     write_demo_exports)

    option_of = {"runs_per_month": "--runs-per-month", "quarter": "--quarter", "ledger": "--ledger", "seed": "--seed"}
    if args.quarter is None:
        args.quarter = last_ended_quarter()
    try:  # every option first: a bad one writes nothing (no ledger, no folder)
        runs = int(args.runs_per_month) if args.runs_per_month.isascii() and args.runs_per_month.isdigit() \
            else args.runs_per_month
        try:
            check_demo_options(args.quarter, runs_per_month=runs, seed=args.seed)
        except BudgetError as exc:  # the value as it was typed
            raise BudgetError(exc.field, exc.problem, args.runs_per_month) if exc.field == "runs_per_month" else exc
        if args.exports is not None:  # "" is refused like --output "", not taken for "no exports"
            check_output_folder("--exports", args.exports)
        path = _sqlite_file(args.ledger)
        if path:
            check_output_folder("--ledger", os.path.dirname(os.path.abspath(path)))
        with _staged_ledger(args.ledger) as url:  # a SQLite ledger: seeded in a copy, moved into place at the end
            with Ledger(url) as ledger:
                summary = seed_quarter(ledger, args.quarter, runs_per_month=runs, seed=args.seed)
                exports = {} if args.exports is None else write_demo_exports(ledger, args.exports, summary.baseline_months,
                                                                         seed=args.seed, option="--exports")
    except BudgetError as exc:  # about the ledger: its URL as given, not the copy's
        message = str(BudgetError("--ledger", exc.problem, args.ledger) if exc.field == "ledger"
                      else exc.renamed(option_of.get(exc.field, exc.field)))
    except OutputError as exc:
        message = str(exc)
    except OSError as exc:  # the ledger's file: its path and what the OS said
        message = f"--ledger: {os_reason(exc)}"
    else:
        print(f"seeded {summary.runs:,} settled runs ({', '.join(summary.baseline_months)} baseline, "
              f"{', '.join(summary.months)} quarter), {summary.refused} refused, {summary.reviewed} flagged for "
              f"review, exception #{summary.exception_id}, transfer #{summary.transfer_id} into "
              f"{redact_urls(args.ledger)}")
        for kind, path in exports.items():
            print(f"{kind:<12} {path}")
        return 0
    print(f"error: {' '.join(redact_urls(message).split())}", file=sys.stderr)
    return 2


@contextlib.contextmanager
def _staged_ledger(url: str):
    """The URL to seed: for a SQLite file, a copy beside it (of the file, when there is one) that
    replaces it only when the block succeeds (removed when it fails), so a failed seed leaves the
    ledger as it was; another database is seeded in place (its options are checked first)."""
    import shutil
    import sqlite3
    import tempfile

    import sqlalchemy as sa

    from greenkfp.components._files import _umask

    path = _sqlite_file(url)
    if not path:
        yield url
        return
    target = os.path.abspath(path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    fd, name = tempfile.mkstemp(dir=os.path.dirname(target), prefix=f".{os.path.basename(target)}.", suffix=".tmp")
    os.close(fd)
    try:
        if os.path.exists(target):
            with contextlib.closing(sqlite3.connect(target)) as source, contextlib.closing(sqlite3.connect(name)) as copy:
                source.backup(copy)
            shutil.copymode(target, name)
        else:
            os.chmod(name, 0o666 & ~_umask())
        yield sa.make_url(url).set(database=name).render_as_string(hide_password=False)
        os.replace(name, target)
    finally:
        for leftover in (name, name + "-wal", name + "-shm", name + "-journal"):
            if os.path.exists(leftover):
                os.unlink(leftover)


def _sqlite_file(url: str) -> str | None:
    """The file of a ``sqlite:///`` URL (None for another database or a URL that does not parse)."""
    import sqlalchemy as sa

    try:
        parsed = sa.make_url(url)
    except Exception:  # noqa: BLE001 - the ledger names a URL it cannot parse
        return None
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        return parsed.database
    return None


def add_report_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``greenkfp report quarterly`` on the ``greenkfp`` command's subparsers."""
    from greenkfp.components.energy import DEFAULT_PROFILE, PRESETS
    from greenkfp.components.governance import DEFAULT_LEDGER_URL
    from greenkfp.components.governance.demo import MAX_RUNS_PER_MONTH, MIN_RUNS_PER_MONTH
    from greenkfp.components.governance.quarterly import CARBON_PRICE_SOURCE, DEFAULT_CARBON_PRICE_EUR_PER_T

    report = sub.add_parser("report", help="reports for leadership: the quarterly sustainability report",
                            description="Reports built from the budget ledger and the audit's baseline.")
    kinds = report.add_subparsers(dest="report_command", required=True)
    p = kinds.add_parser("quarterly", help="the quarterly sustainability report (HTML, JSON, CSV, Markdown)",
                         description="Emissions per team and month against budget, baseline and target; savings by "
                                     "lever with intervals; business impact; the review board's exceptions and "
                                     "transfers; total cost of ownership. Writes quarterly-QUARTER.html, .json, .csv "
                                     "and .md into --output.")
    p.add_argument("--quarter", required=True, help="a calendar quarter, YYYYQn (2026Q4)")
    p.add_argument("--ledger", default=os.environ.get("GREENKFP_LEDGER") or DEFAULT_LEDGER_URL, metavar="URL",
                   help=f"the budget ledger (default: $GREENKFP_LEDGER, else {DEFAULT_LEDGER_URL})")
    p.add_argument("--baseline", required=True, metavar="PATH", help="the audit's baseline.json (greenkfp audit)")
    p.add_argument("--output", required=True, metavar="DIR", help="the folder to write the report into")
    p.add_argument("--carbon-price-eur-per-t", default=str(DEFAULT_CARBON_PRICE_EUR_PER_T), metavar="EUR",
                   help=f"carbon price per tonne CO2eq (default {DEFAULT_CARBON_PRICE_EUR_PER_T:g}: "
                        f"{CARBON_PRICE_SOURCE})".replace("%", "%%"))
    p.add_argument("--usd-per-eur", default=None, metavar="RATE",
                   help="US dollars per euro: adds cloud cost and carbon exposure into one EUR total "
                        "(default: none, each stays in its currency)")
    p.add_argument("--hardware-profile", action="append", default=[], metavar="[TEAM=]PRESET",
                   help=f"the machine the runs use, for cloud cost: a preset ({', '.join(PRESETS)}) for all teams "
                        f"or TEAM=PRESET; repeatable (default {DEFAULT_PROFILE})")
    p.set_defaults(func=cmd_quarterly)

    p = kinds.add_parser("seed-demo", help="write a demo quarter of three teams into a ledger (to try the report)",
                         description="Write the demo quarter (greenkfp.components.governance.demo): three teams "
                                     "(research on a hard budget, production on a soft one, growth with an "
                                     "exception and a transfer), the baseline months before it, every run settled "
                                     "with its run facts. Demo data, not measurements.")
    p.add_argument("--ledger", required=True, metavar="URL", help="the ledger to write into (created if missing)")
    p.add_argument("--quarter", default=None, help="the quarter, YYYYQn, one that has ended (default: the latest "
                                                   "that has ended)")
    p.add_argument("--runs-per-month", default="300", help=f"settled runs a month, all teams together: {MIN_RUNS_PER_MONTH} to "
                        f"{MAX_RUNS_PER_MONTH:,} (default 300)")
    p.add_argument("--seed", type=int, default=0, help="the random seed (default 0): the same seed, the same ledger")
    p.add_argument("--exports", default=None, metavar="DIR",
                   help="also write the demo's cloud carbon exports of the baseline months (GCP Carbon Footprint "
                        "JSON, AWS CCFT CSV) and its project map into DIR, for greenkfp audit")
    p.set_defaults(func=cmd_seed_demo)
