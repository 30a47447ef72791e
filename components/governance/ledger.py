"""The carbon-budget ledger: team budgets per month, atomic reservations, settlements, the review board.

One SQL database holds everything, as append-only entries (:class:`~greenkfp.components.records.
LedgerEntry`), the record; balances are derived from them. So that a reservation reads one row
instead of aggregating a month of entries, each budget's row in ``budget_periods`` keeps running
totals (limit, tier, transfers, open reservations, settlements, how many exceptions, the first
expiry of its open reservations), updated in the same transaction as each entry, under the row's
lock (migration 0002 adds and backfills them; ``tests/test_ledger_totals.py`` checks they always
equal the entries' aggregate). Run ids are per team: a run's entries are found by the team and
their unique keys (``decision:<run id>``, ...; unique per team since migration 0003). SQLite (a
file, the default) for one machine, PostgreSQL for a team. Opening a ledger migrates its database
to the newest schema (Alembic, no ``alembic.ini``).

API (grams of CO2eq, periods are calendar months ``YYYY-MM`` in UTC, times timezone-aware)::

    ledger = Ledger("sqlite:///greenkfp-ledger.db")          # or "postgresql+psycopg://user@host/db"
    ledger.set_limit("ml-research", "2026-12", 1000, "hard", actor="lead")          # -> entry id
    ledger.set_limit("search", "2026-12", 5000, "soft", overdraft_percent=10, actor="lead")
    answer = ledger.reserve("ml-research", "2026-12", 120.0, "run-42", actor="gatekeeper",
                            allow=True, overdraft_allowed_g=0.0, review_required=False,
                            reasons=(), pipeline="training", ttl_seconds=86400)
    answer.granted, answer.remaining_g, answer.reasons, answer.replayed    # a Reservation record
    ledger.settle("ml-research", "run-42", 97.5, actor="gatekeeper")   # -> the settlement LedgerEntry
    ledger.settle("ml-research", "run-44", 80.0, actor="gatekeeper", facts=run_facts(report))   # with RunFacts
    for run in ledger.settled_runs(since="2026-10", until="2026-12"):  # SettledRun: team, pipeline, period,
        run.actual_g, run.estimate_g, run.facts                     # settled_at, estimate, actual, facts
    ledger.import_settled_runs(runs, actor="demo")              # bulk: history, demos, benches (one transaction)
    ledger.release("ml-research", "run-43", actor="gatekeeper")        # the run did not happen
    ledger.rekey("ml-research", "provisional-id", "kfp-run-id", actor="gatekeeper")  # -> the moved Reservation
    ledger.expire()                                             # -> how many reservations expired
    ledger.status("ml-research", "2026-12")                    # -> a BudgetStatus record
    ledger.settled_history("ml-research", "training")         # -> [97.5, ...], newest first
    ledger.add_board_member("carol", actor="lead")              # -> entry id (remove_board_member too)
    ledger.board_members()                                      # -> ["carol"]
    grant = ledger.request_exception("ml-research", "2026-12", 300, requester="bob", reason="paper deadline",
                                     expires_at=datetime(...), run_id=None)   # -> the exception's id
    ledger.approve_exception(grant, approver="carol")           # -> ExceptionGrant; reject_exception(..., reason=)
    ledger.exception(grant)                                     # -> ExceptionGrant, as it stands
    ledger.transfer("search", "ml-research", "2026-12", 500, approver="carol", reason="...")   # -> entry id
    ledger.entries(team="ml-research", period="2026-12")        # -> [LedgerEntry, ...]
    ledger.close()                                              # or: with Ledger(url) as ledger: ...

Rules the ledger enforces, whatever the policy said:

- **Atomic reservations.** :meth:`Ledger.reserve` re-reads the balance and decides inside one
  transaction that holds the budget's lock (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL:
  ``SELECT ... FOR UPDATE`` on the team's row in ``budget_periods``), so concurrent requests never
  spend more than the budget. A request is granted only if ``allow`` and ``estimate_g <=
  remaining_g + open approved exceptions (the team's, and the run's own) + overdraft``.
- **Tiers.** ``hard``: no overdraft (``overdraft_allowed_g`` is capped at 0). ``soft``: the policy
  may allow an overdraft up to the limit's ``overdraft_percent``; ``overdraft_allowed_g=None``
  means all of it. A grant into overdraft sets ``review_required``.
- **Idempotent by run id, per team.** Every request, granted or refused, is recorded exactly once
  as a ``decision`` entry (with its reasons); a request with a run id the team already decided
  returns the first answer with ``replayed=True`` and writes nothing (the same run id of the same
  team for another month is an error). Run ids are per team: another team's run with the same id
  is another run, and settling, releasing or re-keying a run id the team has not reserved is the
  same error whether or not another team has (nothing tells one team about another's runs). A
  granted request also writes a ``reservation`` entry that expires after
  ``ttl_seconds``: an expired reservation no longer counts as reserved; :meth:`Ledger.expire`
  writes its ``release`` entry. A run can still be settled after its reservation expired.
- **Settlement is final.** Settling again with the same figure returns the first entry; with
  another figure it is an error. A released run cannot be settled, a settled run not released.
  Settling, releasing and re-keying lock the run's reservation row first, then its budget's row,
  and read the run's other entries only then: concurrent ones act once.
- **Bounded.** Every gram quantity is a number from 0 to :data:`~.errors.MAX_GRAMS` (1e15 g, 1 Gt)
  and every name and text has one length limit (``MAX_NAME_CHARS``, ``MAX_RUN_ID_CHARS``,
  ``MAX_PIPELINE_CHARS``, ``MAX_REASON_CHARS`` in :mod:`.errors`), which the gatekeeper and the
  bundled policy check with the same numbers.
- **Exceptions** are allowances to spend beyond the remaining budget, for a team or one run, until
  they expire; **transfers** move limit between teams (never more than the giver's remaining).
  The approver of either must be a member of the review board, and not the exception's requester.
- **Bad input writes nothing**: every argument is checked first; errors are
  :class:`~greenkfp.components.governance.errors.BudgetError` naming the argument and the value
  (an unknown team: no limit set for that month). A database that cannot be reached is a
  :class:`~greenkfp.components.governance.errors.LedgerUnavailableError` naming the URL, password
  hidden; so is a database that is not a greenkfp ledger or that a newer greenkfp migrated.
  ``Ledger(url, create=False)`` does not create a SQLite file or a ledger that does not exist
  (a command that writes to an existing ledger: a typo is not a new ledger);
  ``Ledger(url, read_only=True)`` (the audit, the report) also opens a SQLite file read-only and
  migrates nothing: it never writes to the ledger.
"""

from __future__ import annotations

import json
import math
import numbers
import random
import re
import sqlite3
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import TypeDecorator

from .._checks import iso
from .._messages import shorten
from ..records import _NO_VALUE as _RECORD_NO_VALUE
from ..records import BudgetStatus, ExceptionGrant, LedgerEntry, RecordError, Reservation, RunFacts
from ..records import grams_text as _text_g
from .errors import (
    MAX_GRAMS,
    MAX_NAME_CHARS,
    MAX_PIPELINE_CHARS,
    MAX_REASON_CHARS,
    MAX_RUN_ID_CHARS,
    BudgetError,
    LedgerUnavailableError,
    RunIdTakenError,
    UnknownRunError,
    capped_reasons,
    grams_limit_text,
)

__all__ = ["DEFAULT_LEDGER_URL", "MAX_GRAMS", "Ledger", "SettledRun", "TIERS", "alembic_config", "check_facts",
           "check_grams", "check_limit", "check_name", "check_period", "check_quarter", "period_of", "quarter_months", "shift_month"]

DEFAULT_LEDGER_URL = "sqlite:///greenkfp-ledger.db"
TIERS = ("hard", "soft")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: Alembic's version table of the ledger (its own: a PostgreSQL database may have other Alembic users).
VERSION_TABLE = "greenkfp_ledger_version"

#: Two amounts closer than this (grams) are equal: sums of floats in SQL are not exact.
_TOLERANCE_G = 1e-9
#: How many unique keys one ``IN (...)`` lookup binds at most (a module constant, so that a test
#: can shrink it and see a lookup split in several).
_KEYS_PER_QUERY = 5000
#: The key of the PostgreSQL advisory lock that serializes migrations of one database.
_MIGRATION_LOCK = 0x6B66705F6C6467  # "kfp_ldg"
_SQLITE_BUSY_MS = 30_000
_PG_CONNECT_TIMEOUT_S = 5
#: The longest a ledger statement runs, and waits for a lock, on PostgreSQL (milliseconds).
_PG_STATEMENT_TIMEOUT_MS = 30000
_PG_LOCK_TIMEOUT_MS = 10000
#: Connections kept per process (a server's worker threads share them), and how many more at a peak.
_PG_POOL_SIZE, _PG_POOL_OVERFLOW = 10, 20
_ATTEMPTS = 8
#: Every column of an entry, None unless given: one insert statement, compiled once.
_COLUMNS = ("kind", "action", "team", "period", "run_id", "to_team", "pipeline", "actor", "detail", "unique_key",
            "ref_id", "amount_g", "expires_at", "at")


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on both databases (SQLite stores it naive, in UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


# The query side of the tables the migrations create (migrations/versions/ holds their definition).
BUDGETS = sa.table("budget_periods", sa.column("team", sa.String), sa.column("period", sa.String),
                   sa.column("created_at", UTCDateTime), sa.column("tier", sa.String), sa.column("exceptions", sa.Integer),
                   *(sa.column(name, sa.Double) for name in ("limit_g", "overdraft_percent", "transferred_g",
                                                              "reserved_g", "settled_g")),
                   sa.column("next_expiry", UTCDateTime))
_B = BUDGETS.c
_HERE = (_B.team == sa.bindparam("b_team")) & (_B.period == sa.bindparam("b_period"))
#: Add to a budget's running totals (the row is locked): bind b_team, b_period and the deltas.
_ADD = {name: BUDGETS.update().where(_HERE).values({name: _B[name] + sa.bindparam("delta")})
        for name in ("reserved_g", "settled_g", "transferred_g", "exceptions")}
_SETTLE = BUDGETS.update().where(_HERE).values(settled_g=_B.settled_g + sa.bindparam("settled"),
                                               reserved_g=_B.reserved_g - sa.bindparam("unreserved"))
_RESERVE = BUDGETS.update().where(_HERE).values(reserved_g=_B.reserved_g + sa.bindparam("delta"),
                                                next_expiry=sa.bindparam("next_expiry"))
ENTRIES = sa.table(
    "budget_entries",
    *(sa.column(name, sa.String) for name in ("kind", "action", "team", "period", "run_id", "to_team", "pipeline",
                                              "actor", "detail", "unique_key")),
    *(sa.column(name, sa.Integer) for name in ("id", "ref_id")),
    sa.column("amount_g", sa.Double), sa.column("expires_at", UTCDateTime), sa.column("at", UTCDateTime),
)
_E = ENTRIES.c
#: A run's entries by their unique keys, which are per team (``decision:<run id>`` of a team, ...; the
#: database's unique constraint is on (team, unique_key), migration 0003): one index lookup, no scan.
_RUN_KINDS = ("decision", "reservation", "settlement", "release")
_BY_KEYS = sa.select(ENTRIES).where(_E.team == sa.bindparam("team"),
                                    _E.unique_key.in_(sa.bindparam("keys", expanding=True)))
_BY_KEY = sa.select(ENTRIES).where(_E.team == sa.bindparam("team"), _E.unique_key == sa.bindparam("key"))
#: The same, with the row locked until the transaction ends (PostgreSQL; SQLite's BEGIN IMMEDIATE locks it all).
_BY_KEY_LOCKED = _BY_KEY.with_for_update()
_INSERT = ENTRIES.insert().returning(_E.id)
_CLOSED = ENTRIES.alias("closed")
#: The reservation of ``_E`` was settled or released (a run id is one team's): its run's
#: ``settlement:<run id>`` or ``release:<run id>`` entry, found by the (team, unique key) index, two
#: lookups per reservation (correlating on team and run id let SQLite walk all the team's entries
#: through the (team, period, kind) index for each reservation: quadratic in a big ledger).
_IS_CLOSED = sa.exists().where(_CLOSED.c.team == _E.team,
                               _CLOSED.c.unique_key.in_([sa.literal("settlement:") + _E.run_id,
                                                         sa.literal("release:") + _E.run_id]))
#: Open reservations of a budget (not settled or released): what expired of them at :now, and the first expiry.
_OPEN = (sa.select(sa.func.coalesce(sa.func.sum(sa.case((_E.expires_at <= sa.bindparam("now"), _E.amount_g),
                                                        else_=0.0)), 0.0), sa.func.min(_E.expires_at))
         .where(_E.kind == "reservation", _E.team == sa.bindparam("b_team"), _E.period == sa.bindparam("b_period"),
                ~_IS_CLOSED))
_ROW = sa.select(BUDGETS).where(_HERE)
#: The reason on the decision of a run written by Ledger.import_settled_runs.
_IMPORTED = "imported: a run that already happened (remaining_g: the budget's remaining after its actual grams)"
_ROW_LOCKED = _ROW.with_for_update()


# --------------------------------------------------------------------------- argument checks

_PERIOD = re.compile(r"([0-9]{4})-([0-9]{2})")


def check_period(period: Any) -> str:
    """``period`` if it is a calendar month ``YYYY-MM`` (UTC, years 1970 to 9999); else an error naming it."""
    match = _PERIOD.fullmatch(period) if isinstance(period, str) else None
    if not match or not 1 <= int(match[2]) <= 12 or int(match[1]) < 1970:
        raise BudgetError("period", "must be a calendar month YYYY-MM (UTC)", period)
    return period


def period_of(moment: datetime) -> str:
    """The calendar month (UTC) of an aware ``moment``: ``2026-12``."""
    return _aware("moment", moment).strftime("%Y-%m")


_QUARTER = re.compile(r"([0-9]{4})Q([1-4])")


def check_quarter(quarter: Any) -> tuple[int, int]:
    """``(year, quarter number)`` of ``YYYYQn`` (``2026Q4``); else a BudgetError naming ``quarter``."""
    match = _QUARTER.fullmatch(quarter) if isinstance(quarter, str) else None
    if not match or int(match[1]) < 1970:
        raise BudgetError("quarter", "must be a calendar quarter YYYYQn such as 2026Q4 (n from 1 to 4)", quarter)
    return int(match[1]), int(match[2])


def shift_month(year: int, month: int, shift: int = 0) -> tuple[int, int]:
    """``(year, month)`` ``shift`` months after (before, when negative) ``year``-``month``."""
    index = year * 12 + month - 1 + shift
    return index // 12, index % 12 + 1


def quarter_months(quarter: str, before: int = 0) -> list[str]:
    """The months of ``quarter`` (``YYYY-MM``), preceded by the ``before`` months before it."""
    year, number = check_quarter(quarter)
    first = 3 * (number - 1) + 1
    return [f"{y:04d}-{m:02d}" for y, m in (shift_month(year, first, shift) for shift in range(-before, 3))]


def check_name(field: str, value: Any, limit: int = MAX_NAME_CHARS) -> str:
    """``value`` if it is a name (team, actor, board member) of 1 to ``limit`` characters; else an error naming ``field``."""
    if (not isinstance(value, str) or not value.strip() or value != value.strip() or len(value) > limit
            or _invisible(value)):
        raise BudgetError(field, f"must be a name of 1 to {limit} characters, without control characters or "
                                 "spaces around it", value)
    return value


#: Unicode categories a name, run id or pipeline must not hold: controls (C0, DEL, C1 such as NEL),
#: format characters (bidi overrides, zero-width ones), line and paragraph separators, surrogates.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def _invisible(value: str) -> bool:
    """Whether ``value`` holds a character that is not shown as itself (a line break, a bidi override)."""
    import unicodedata

    return not value.isprintable() and any(unicodedata.category(c) in _INVISIBLE_CATEGORIES for c in value)


def check_limit(team: Any, period: Any, limit_g: Any, tier: Any, overdraft_percent: Any,
                actor: Any) -> tuple[str, str, float, str, float, str]:
    """The values of :meth:`Ledger.set_limit`, checked (a caller can check them before it opens a ledger)."""
    team, period, actor = check_name("team", team), check_period(period), check_name("actor", actor)
    limit_g = check_grams("limit_g", limit_g, zero=True)
    if tier not in TIERS:
        raise BudgetError("tier", "must be hard or soft", tier)
    percent = overdraft_percent
    if isinstance(percent, bool) or not isinstance(percent, numbers.Real) or not 0 <= float(percent) <= 100:
        raise BudgetError("overdraft_percent", "must be a number from 0 to 100", overdraft_percent)
    if tier == "hard" and percent:
        raise BudgetError("overdraft_percent", "must be 0 for a hard budget (a hard budget has no overdraft)",
                          overdraft_percent)
    return team, period, limit_g, tier, float(percent), actor


def _text(field: str, value: Any, limit: int = MAX_REASON_CHARS) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise BudgetError(field, f"must be a text of 1 to {limit} characters", value)
    return value.strip()


def _finite(field: str, value: Any, what: str, *, zero: bool = False) -> float:
    real = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
    if not real or float(value) < 0 or (float(value) == 0 and not zero):
        raise BudgetError(field, f"must be a finite number of {what} {'>= 0' if zero else '> 0'}", value)
    return float(value)


def check_grams(field: str, value: Any, *, zero: bool = False) -> float:
    """``value`` as a float if it is a number of grams > 0 (``zero``: >= 0) and at most
    :data:`~.errors.MAX_GRAMS`; else an error naming ``field`` and the value. Every gram quantity
    the ledger takes (a limit, an estimate, an actual, a transfer, an exception, an overdraft)
    goes through here, so no sum of them overflows."""
    real = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
    if not real or float(value) < 0 or (float(value) == 0 and not zero) or float(value) > MAX_GRAMS:
        raise BudgetError(field, f"must be a finite number of grams {'>= 0' if zero else '> 0'}, at most "
                                 f"{grams_limit_text()}", value)
    return float(value) + 0.0  # -0.0 is 0


def _pipeline(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_PIPELINE_CHARS or _invisible(value):
        raise BudgetError("pipeline", f"must be a text of at most {MAX_PIPELINE_CHARS} characters, without "
                                      "control characters", value)
    return value


def _run_id(field: str, value: Any) -> str:
    return check_name(field, value, MAX_RUN_ID_CHARS)


def _aware(field: str, value: Any) -> datetime:
    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
        except ValueError:
            raise BudgetError(field, "must be an ISO 8601 time such as 2026-12-31T23:59:00Z", value) from None
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise BudgetError(field, "must be a timezone-aware time (such as 2026-12-31T23:59:00Z)", value)
    return moment.astimezone(timezone.utc)


def _entry_id(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BudgetError(field, "must be an entry id (a whole number > 0)", value)
    return value


def check_facts(facts: Any, field: str = "facts") -> RunFacts | None:
    """``facts`` (a :class:`RunFacts`, its JSON object, or None) as a RunFacts; else an error
    naming ``field`` and what is wrong in it."""
    if facts is None or isinstance(facts, RunFacts):
        return facts
    if not isinstance(facts, Mapping):
        raise BudgetError(field, "must be a JSON object (schema greenkfp.run_facts/v1)", type(facts).__name__)
    try:
        return RunFacts.from_dict(dict(facts))
    except RecordError as exc:
        given = () if exc.value is _RECORD_NO_VALUE else (exc.value,)
        raise BudgetError(f"{field}.{exc.field}", exc.problem, *given) from None


@dataclass(frozen=True)
class SettledRun:
    """A settled run as :meth:`Ledger.settled_runs` yields it: whose, which pipeline and month,
    when it was settled, its estimate (the grams reserved) and actual grams, and the
    :class:`RunFacts` its settlement carried (None when it carried none)."""

    run_id: str
    team: str
    pipeline: str
    period: str
    settled_at: datetime
    estimate_g: float
    actual_g: float
    facts_data: dict | None = None

    @property
    def facts(self) -> RunFacts | None:
        """The run's facts as a record (checked when they were settled; read once, then kept)."""
        if self.facts_data is None:
            return None
        kept = self.__dict__.get("_facts")
        if kept is None:
            kept = RunFacts.from_dict(self.facts_data)
            object.__setattr__(self, "_facts", kept)
        return kept


# --------------------------------------------------------------------------- the database

def alembic_config(connection: sa.Connection | None = None):
    """The Alembic configuration of the ledger's migrations (no ``alembic.ini``); ``connection``
    is the one ``env.py`` migrates."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    config.attributes["version_table"] = VERSION_TABLE
    return config


def _shown_url(url: sa.URL | str) -> str:
    """``url`` as shown in messages and records: its password and secret query parameters
    (``?password=...``) masked by the one redaction of the project, ``_messages.redact_urls``."""
    return _hide_password(url.render_as_string(hide_password=True) if isinstance(url, sa.URL) else str(url))


def _create_engine(url: str, create: bool = True, read_only: bool = False) -> sa.Engine:
    if not isinstance(url, str) or not url.strip():
        raise BudgetError("ledger", "must be a database URL such as sqlite:///greenkfp-ledger.db", url)
    try:
        parsed = sa.make_url(url)
    except (sa_exc.ArgumentError, ValueError):
        raise BudgetError("ledger", "must be a database URL such as sqlite:///greenkfp-ledger.db or "
                                    "postgresql+psycopg://user@host/db", _hide_password(url)) from None
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")  # SQLAlchemy's default, psycopg2, is not installed
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise BudgetError("ledger", "must name a SQLite file (sqlite:///path.db): an in-memory database is "
                                        "not shared between connections", url)
        if not create and not Path(parsed.database).exists():  # SQLite would create it: a typo is not a ledger
            raise BudgetError("ledger", f"{_shown_url(parsed)} does not exist")
        if not read_only:
            engine = sa.create_engine(parsed)
            event.listen(engine, "connect", _sqlite_connect)
        else:  # read-only use opens the file read-only (SQLite's mode=ro): not a byte of it is written
            uri = Path(parsed.database).absolute().as_uri() + "?mode=ro"
            engine = sa.create_engine(parsed, creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False))
            event.listen(engine, "connect", _sqlite_connect_read_only)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if backend != "postgresql":
        raise BudgetError("ledger", "must be a sqlite:/// or postgresql+psycopg:// URL", _shown_url(parsed))
    try:
        # no pool_pre_ping (a round trip per transaction): a connection found dead is retried instead (_transient)
        return sa.create_engine(parsed, pool_size=_PG_POOL_SIZE, max_overflow=_PG_POOL_OVERFLOW, pool_recycle=3600,
                                connect_args={"connect_timeout": _PG_CONNECT_TIMEOUT_S,
                                              # a statement or a lock wait has a deadline: a stuck
                                              # database is an error, not a request hanging forever
                                              # (after the URL's own options, which these replace)
                                              "options": " ".join(filter(None, (
                                                  parsed.query.get("options"),
                                                  f"-c statement_timeout={_PG_STATEMENT_TIMEOUT_MS}",
                                                  f"-c lock_timeout={_PG_LOCK_TIMEOUT_MS}")))})
    except (ImportError, sa_exc.NoSuchModuleError) as exc:
        raise BudgetError("ledger", f"needs a driver that is not installed ({exc})", _shown_url(parsed)) from None


def _hide_password(url: str) -> str:
    from .._messages import redact_urls

    return redact_urls(url)


def _sqlite_connect(dbapi_connection, _record) -> None:
    # The driver's own transaction handling off: _sqlite_begin says BEGIN, IMMEDIATE for writes.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")  # readers do not wait for the writer
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def _sqlite_connect_read_only(dbapi_connection, _record) -> None:
    # no journal_mode (setting it writes the file): a read-only connection reads whichever mode it has
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_MS}")
    cursor.execute("PRAGMA query_only = ON")
    cursor.close()


def _sqlite_begin(connection: sa.Connection) -> None:
    # IMMEDIATE takes the write lock at once: two writers never both read a balance, then both write.
    connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.get_execution_options().get("greenkfp_write")
                               else "BEGIN")


def _transient(exc: BaseException) -> bool:
    """Worth another attempt: a serialization failure or deadlock, a busy SQLite, or a concurrent
    insert of a once-only entry (the next attempt finds it and answers from it)."""
    if isinstance(exc, sa_exc.IntegrityError):
        return "unique_key" in str(exc.orig)
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True  # a pooled connection the server closed (no pre-ping): a new one is taken
    if isinstance(exc, sa_exc.OperationalError):
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return code in ("40001", "40P01") or "database is locked" in str(exc.orig)
    return False


def _not_a_database(exc: BaseException) -> bool:
    """SQLite's answer to a file that is not one of its databases (a text file, a truncated copy)."""
    text = str(getattr(exc, "orig", exc))
    return "file is not a database" in text or "database disk image is malformed" in text


def _reason(exc: sa_exc.DBAPIError) -> str:
    lines = [line.strip() for line in str(exc.orig).splitlines() if line.strip()]
    return lines[0] if lines else type(exc.orig).__name__


# --------------------------------------------------------------------------- the ledger

class Ledger:
    """The carbon-budget ledger on the database at ``url`` (see the module's docstring).

    Args:
        url: ``sqlite:///path.db`` (the default file is ``greenkfp-ledger.db`` in the working
            directory) or ``postgresql+psycopg://user:password@host:port/database``.
        clock: a callable returning the current time (timezone-aware); the system's UTC clock by
            default.
        create: create the ledger when the database holds none (a SQLite file that does not
            exist is created). False for a command that uses an existing ledger: a SQLite file
            that does not exist is an error (``ledger sqlite:///typo.db does not exist``), and so
            is a database without a ledger.
        read_only: never write to the database (implies ``create=False``): a SQLite file is
            opened read-only, and a ledger at an older revision is refused rather than migrated.

    Raises:
        LedgerUnavailableError: the database cannot be reached or opened, is not a greenkfp
            ledger (a file that is not a SQLite database, a SQLite file of other tables), or was
            migrated by a newer greenkfp (an Alembic revision this code does not know). The
            message names the URL, its password hidden.
        BudgetError: a bad URL; ``create=False`` and no ledger there.
    """

    def __init__(self, url: str = DEFAULT_LEDGER_URL, *, clock: Callable[[], datetime] | None = None,
                 create: bool = True, read_only: bool = False):
        create = create and not read_only
        self._engine = _create_engine(url, create, read_only)
        self.url = _shown_url(self._engine.url)
        self.dialect = self._engine.dialect.name
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._create = create
        try:
            self._run(self._check_current if read_only else self._migrate, write=not read_only)
        except BaseException:
            self._engine.dispose()
            raise

    # ----------------------------------------------------------------- plumbing

    def close(self) -> None:
        """Close the ledger's connections."""
        self._engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({self.url!r})"

    def _now(self) -> datetime:
        return _aware("clock()", self._clock())

    def _run(self, work: Callable[[sa.Connection], Any], *, write: bool = True) -> Any:
        """``work(connection)`` in one transaction (the write lock taken first on SQLite), retried
        a few times on transient conflicts; a database that fails is a LedgerUnavailableError."""
        attempt = 0
        while True:
            attempt += 1
            try:
                with self._engine.connect() as connection:
                    if write:
                        connection.execution_options(greenkfp_write=True)
                    elif self.dialect == "postgresql":  # one snapshot for all the reads of a balance
                        connection.execution_options(isolation_level="REPEATABLE READ")
                    with connection.begin():
                        return work(connection)
            except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.IntegrityError) as exc:
                if attempt < _ATTEMPTS and _transient(exc):
                    time.sleep(random.uniform(0, min(0.2, 0.005 * 2 ** attempt)))  # random exponential backoff
                    continue
                if isinstance(exc, sa_exc.IntegrityError):
                    raise
                raise self._unusable(exc) from None
            except sa_exc.DatabaseError as exc:  # a file that is not a database, a corrupt one
                raise self._unusable(exc) from None

    def _unusable(self, exc: sa_exc.DBAPIError) -> LedgerUnavailableError:
        if _not_a_database(exc):
            return LedgerUnavailableError("ledger", f"{self.url} is not a greenkfp ledger (not a SQLite database: "
                                                    f"{_reason(exc)})")
        return LedgerUnavailableError("ledger", f"{self.url} cannot be used: {_reason(exc)}")

    def _migrate(self, connection: sa.Connection) -> None:
        import logging

        from alembic import command

        if self.dialect == "postgresql":  # one migrating process at a time; SQLite's BEGIN IMMEDIATE does it there
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        # Alembic says "Context impl SQLiteImpl." at INFO on every open: not on a CLI's stdout, where a
        # host's logging setup would put it in the middle of --json output
        quiet = logging.getLogger("alembic.runtime.migration")
        level = quiet.level
        quiet.setLevel(logging.WARNING)
        try:
            config = alembic_config(connection)
            self._check_revision(connection, config)
            command.upgrade(config, "head")
        finally:
            quiet.setLevel(level)

    def _check_current(self, connection: sa.Connection) -> None:
        """Read-only use migrates nothing: the ledger must be at this greenkfp's revision."""
        from alembic.script import ScriptDirectory

        config = alembic_config(connection)
        current = self._check_revision(connection, config)
        head = ScriptDirectory.from_config(config).get_current_head()
        if tuple(current) != (head,):
            raise LedgerUnavailableError(
                "ledger", f"{self.url} is at revision {', '.join(current)}, older than this greenkfp's {head}: open "
                          "it for writing once (any greenkfp budget command) to migrate it; read-only use does not")

    def _check_revision(self, connection: sa.Connection, config) -> tuple[str, ...]:
        """Refuse, before Alembic sees it, a database this code must not migrate: one at a revision
        it does not know (a newer greenkfp's), a SQLite file of other tables, and (``create=False``)
        a database without a ledger."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(config)
        current = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_heads()
        known = {revision.revision for revision in script.walk_revisions()}
        for revision in current:
            if revision not in known:
                raise LedgerUnavailableError(
                    "ledger", f"{self.url} was created by a newer greenkfp (revision {revision}; this greenkfp knows "
                              f"revisions up to {script.get_current_head()}): upgrade greenkfp")
        if current:
            return tuple(current)
        if not self._create:
            raise LedgerUnavailableError("ledger", f"{self.url} is not a greenkfp ledger (it has no "
                                                   f"{VERSION_TABLE} table); set a limit to create one")
        if self.dialect == "sqlite":  # a file is one ledger; on PostgreSQL other applications' tables are expected
            tables = connection.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT "
                                                "LIKE 'sqlite_%' AND name != :versions ORDER BY name"),
                                        {"versions": VERSION_TABLE}).scalars().all()
            if tables:
                shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
                raise LedgerUnavailableError("ledger", f"{self.url} is not a greenkfp ledger (it holds other tables: "
                                                       f"{shown})")
        return ()

    def _insert(self, connection: sa.Connection, kind: str, action: str, *, actor: str, at: datetime,
                detail: dict | None = None, unique_key: str | None = None, **columns: Any) -> LedgerEntry:
        values = dict.fromkeys(_COLUMNS)
        values.update(kind=kind, action=action, actor=actor, at=at, detail=json.dumps(detail or {}, sort_keys=True),
                      unique_key=unique_key, **columns)
        entry_id = connection.execute(_INSERT, values).scalar_one()
        return _entry({**values, "id": entry_id})

    def _lock(self, connection: sa.Connection, team: str, period: str, *, lock: bool = True) -> Any:
        """Lock the budget of (team, period) until the transaction ends (``lock=False``: only look)
        and return its row (with its running totals); an error naming the team when it has no
        limit for that month."""
        row = connection.execute(_ROW_LOCKED if lock else _ROW, {"b_team": team, "b_period": period}).first()
        if row is None:
            raise BudgetError("team", f"has no budget for {period} (set a limit for it first)", team)
        for name in ("limit_g", "overdraft_percent", "transferred_g", "reserved_g", "settled_g", "exceptions"):
            value = getattr(row, name, 0)
            try:
                _stored_number(value)
            except ValueError:
                raise LedgerUnavailableError(
                    "ledger", f"budget_periods row of team {team!r} for {period}: {name} is not a number "
                              f"({shorten(value)}): the ledger is corrupt") from None
        return row

    @staticmethod
    def _add(connection: sa.Connection, team: str, period: str, total: str, delta: float) -> None:
        """Add ``delta`` to the running ``total`` of the budget of (team, period), whose row is locked."""
        connection.execute(_ADD[total], {"b_team": team, "b_period": period, "delta": delta})

    def _select(self, connection: sa.Connection, *where: Any, order: Any = None, limit: int | None = None
                ) -> list[LedgerEntry]:
        query = sa.select(ENTRIES).where(*where).order_by(*(order if order is not None else (_E.id,)))
        if limit is not None:
            query = query.limit(limit)
        return [_entry(row._mapping) for row in connection.execute(query)]

    @staticmethod
    def _run_entries(connection: sa.Connection, team: str, run_id: str) -> dict[str, LedgerEntry]:
        """The entries of ``team``'s run by kind (decision, reservation, settlement, release):
        each exists once, found by its unique key."""
        rows = connection.execute(_BY_KEYS, {"team": team, "keys": [f"{kind}:{run_id}" for kind in _RUN_KINDS]})
        return {e.kind: e for e in (_entry(row._mapping) for row in rows)}

    @staticmethod
    def _once(connection: sa.Connection, team: str, key: str, *, lock: bool = False) -> LedgerEntry | None:
        """``team``'s entry with this unique key (``decision:<run id>``, ...), if any; ``lock``:
        its row locked until the transaction ends."""
        row = connection.execute(_BY_KEY_LOCKED if lock else _BY_KEY, {"team": team, "key": key}).first()
        return None if row is None else _entry(row._mapping)

    # ----------------------------------------------------------------- balances

    def _status(self, connection: sa.Connection, row: Any, now: datetime) -> tuple[BudgetStatus, list, Any]:
        """The budget of the row of (team, period) (``_lock``'s) at ``now``, all its exceptions
        (any status), and the first expiry of its open reservations (a lower bound). From the
        row's running totals; the entries are read only for what the row cannot hold:
        reservations past their expiry that no release closed yet (only when the row's
        ``next_expiry`` has passed) and the exceptions (only when the budget has any)."""
        team, period = row.team, row.period
        reserved, settled, transferred = float(row.reserved_g), float(row.settled_g), float(row.transferred_g)
        first = row.next_expiry
        if first is not None and first <= now:
            expired, first = connection.execute(_OPEN, {"now": now, "b_team": team, "b_period": period}).one()
            reserved -= float(expired)
        exceptions = self._exceptions(connection, now, _E.team == team, _E.period == period) if row.exceptions else []
        drawn: dict[int, float] = self._draws(connection, team, period, now) if exceptions else {}
        if drawn:
            exceptions = [replace(e, drawn_g=drawn.get(e.id, 0.0)) for e in exceptions]
        excepted = sum(drawn.values(), 0.0)
        tier, percent = row.tier, float(row.overdraft_percent)
        limit_g = float(row.limit_g) + transferred
        status = BudgetStatus(
            team=team, period=period, tier=tier, limit_g=limit_g, reserved_g=reserved, settled_g=settled,
            remaining_g=limit_g + excepted - reserved - settled, overdraft_percent=percent, as_of=iso(now),
            transferred_g=transferred, overdraft_g=max(limit_g, 0.0) * percent / 100 if tier == "soft" else 0.0,
            exception_g=sum((e.available_g for e in exceptions if e.run_id is None), 0.0),
            exceptions=tuple(e for e in exceptions if e.is_open), excepted_g=excepted)
        return status, exceptions, first

    def _draws(self, connection: sa.Connection, team: str, period: str, now: datetime) -> dict[int, float]:
        """The grams each exception of (team, period) covers now: every granted decision records
        what it drew from which exception (``detail["drawn"]``, fixed when granted). A draw counts
        while its reservation counts (open, unexpired) and, once settled, for the part of the
        actual beyond the run's own share of the budget (the budget is spent first, then the
        exceptions, then any overdraft); a released, re-keyed or expired unsettled run's draw is
        given back. An exception's expiry thus lapses only its undrawn part."""
        decisions = self._select(connection, _E.kind == "decision", _E.action == "granted", _E.team == team,
                                 _E.period == period, _E.detail.like('%"drawn": {%'))
        decisions = [d for d in decisions if isinstance(d.detail.get("drawn"), dict) and d.detail["drawn"]]
        if not decisions:
            return {}
        keys = [f"{kind}:{d.run_id}" for d in decisions for kind in ("settlement", "release")]
        closing = {}
        for start in range(0, len(keys), _KEYS_PER_QUERY):
            rows = connection.execute(_BY_KEYS, {"team": team, "keys": keys[start:start + _KEYS_PER_QUERY]})
            closing.update(((e.kind, e.run_id), e) for e in (_entry(row._mapping) for row in rows))
        totals: dict[int, float] = {}
        for decision in decisions:
            draws = {int(key): float(grams) for key, grams in decision.detail["drawn"].items()}
            whole = sum(draws.values(), 0.0)
            settled = closing.get(("settlement", decision.run_id))
            if settled is not None:
                own = decision.amount_g - whole - float(decision.detail.get("overdraft_used_g", 0.0))
                share = min(max(settled.amount_g - own, 0.0), whole) / whole if whole > 0 else 0.0
            elif ("release", decision.run_id) in closing or _when(decision.expires_at) <= now:
                share = 0.0
            else:
                share = 1.0
            for key, grams in draws.items():
                totals[key] = totals.get(key, 0.0) + grams * share
        return totals

    def _exceptions(self, connection: sa.Connection, now: datetime, *where: Any) -> list[ExceptionGrant]:
        """The exceptions whose requests match ``where``, each as its decision (if any) left it at ``now``."""
        requested = self._select(connection, _E.kind == "exception", _E.action == "requested", *where)
        decisions = {e.ref_id: e for e in self._select(connection, _E.kind == "exception", _E.action != "requested",
                                                       _E.ref_id.in_([e.id for e in requested]))} if requested else {}
        return [_grant(request, decisions.get(request.id), now) for request in requested]

    # ----------------------------------------------------------------- budgets

    def set_limit(self, team: str, period: str, limit_g: float, tier: str, *, overdraft_percent: float = 0.0,
                  actor: str) -> int:
        """Set the limit of ``team`` for ``period`` (replacing an earlier one); returns the entry id.

        ``tier`` is ``hard`` (no overdraft) or ``soft`` (an overdraft of up to ``overdraft_percent``
        of the limit may be allowed, each such grant flagged for review).
        """
        team, period, limit_g, tier, percent, actor = check_limit(team, period, limit_g, tier, overdraft_percent, actor)

        def work(connection):
            now = self._now()
            insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
            connection.execute(insert(BUDGETS).values(team=team, period=period, created_at=now)
                               .on_conflict_do_nothing())
            self._lock(connection, team, period)
            connection.execute(BUDGETS.update().where(_HERE).values(
                limit_g=sa.bindparam("limit_g"), tier=sa.bindparam("tier"), overdraft_percent=sa.bindparam("percent")),
                {"b_team": team, "b_period": period, "limit_g": limit_g, "tier": tier, "percent": float(percent)})
            return self._insert(connection, "limit", "set", actor=actor, at=now, team=team, period=period,
                                amount_g=limit_g, detail={"tier": tier, "overdraft_percent": float(percent)}).id

        return self._run(work)

    def status(self, team: str, period: str) -> BudgetStatus:
        """The budget of ``team`` for ``period`` now: limit, reserved, settled, remaining, open exceptions."""
        team, period = check_name("team", team), check_period(period)

        def work(connection):
            return self._status(connection, self._lock(connection, team, period, lock=False), self._now())[0]

        return self._run(work, write=False)

    # ----------------------------------------------------------------- reservations

    def reserve(self, team: str, period: str, estimate_g: float, run_id: str, *, actor: str, allow: bool = True,
                overdraft_allowed_g: float | None = 0.0, review_required: bool = False, reasons: Sequence[str] = (),
                pipeline: str = "", ttl_seconds: float = 86400.0) -> Reservation:
        """Decide, atomically, whether run ``run_id`` may spend ``estimate_g`` of the budget.

        Args:
            team, period: whose budget, which month.
            estimate_g: the run's estimated emissions (grams, >= 0: an estimate of 0 g is a valid
                reservation, granted while the budget is not overdrawn, so a team whose settled
                runs all emitted 0 g is not locked out).
            run_id: the run, one of ``team``'s (run ids are per team: another team's run with the
                same id is another run); a request with a run id already decided for the team
                gets the first answer back.
            actor: who asks (the gatekeeper, a person).
            allow: the policy's verdict; False refuses, with ``reasons``.
            overdraft_allowed_g: how far beyond the remaining budget the policy allows this run to go,
                capped by the tier (0 on hard, ``overdraft_percent`` of the limit on soft); None
                means as far as the tier allows.
            review_required: the policy asks for a review of the run (a grant into overdraft
                always does).
            reasons: the policy's reasons, recorded and returned first.
            pipeline: the pipeline's name (the estimator reads settled history by it).
            ttl_seconds: an unsettled reservation stops counting after this long.

        Returns:
            The decision, recorded (or replayed) in the ledger.
        """
        team, period, actor = check_name("team", team), check_period(period), check_name("actor", actor)
        estimate_g, run_id = check_grams("estimate_g", estimate_g, zero=True), _run_id("run_id", run_id)
        if not isinstance(allow, bool):
            raise BudgetError("allow", "must be true or false", allow)
        if not isinstance(review_required, bool):
            raise BudgetError("review_required", "must be true or false", review_required)
        asked_g = (None if overdraft_allowed_g is None
                   else check_grams("overdraft_allowed_g", overdraft_allowed_g, zero=True))
        if isinstance(reasons, str) or not all(isinstance(r, str) for r in reasons):
            raise BudgetError("reasons", "must be a list of texts", reasons)
        reasons = list(capped_reasons([" ".join(r.split()) for r in reasons if r.strip()]))
        pipeline = _pipeline(pipeline)
        ttl = _finite("ttl_seconds", ttl_seconds, "seconds")

        def work(connection):
            now = self._now()
            row = self._lock(connection, team, period)
            earlier = self._once(connection, team, f"decision:{run_id}")
            if earlier is not None:
                if earlier.period != period:
                    raise RunIdTakenError("run_id", f"was decided for team {team} in {earlier.period}, not {period}; "
                                                    "a run id names one run", run_id)
                return _reservation(earlier, replayed=True)
            status, exceptions, first = self._status(connection, row, now)
            cap = status.overdraft_g
            overdraft = cap if asked_g is None else min(asked_g, cap)
            notes = list(reasons)
            if asked_g is not None and asked_g > cap + _TOLERANCE_G:
                notes.append(f"overdraft_allowed_g {_text_g(asked_g)} capped at {_text_g(cap)} "
                             f"({status.tier} tier, overdraft_percent {status.overdraft_percent:g})")
            # the exceptions this run may draw on: its own first, then the team's, the first to expire first
            usable = sorted((e for e in exceptions if e.run_id in (None, run_id) and e.available_g > _TOLERANCE_G),
                            key=lambda e: (e.run_id is None, e.expires_at, e.id))
            excepted = sum((e.available_g for e in usable), 0.0)
            covered = status.remaining_g + excepted  # what the run may spend without overdraft
            granted = allow and estimate_g <= covered + overdraft + _TOLERANCE_G
            drawn: dict[str, float] = {}
            if granted:  # what the run takes from the exceptions, fixed now (expiry lapses only the rest)
                need = max(estimate_g - max(status.remaining_g, 0.0), 0.0)
                for grant in usable:
                    if need <= _TOLERANCE_G:
                        break
                    take = min(grant.available_g, need)
                    drawn[str(grant.id)] = take
                    need -= take
            from_exceptions = sum(drawn.values(), 0.0)
            used = max(0.0, estimate_g - max(status.remaining_g, 0.0) - from_exceptions) if granted else 0.0
            spendable = _spendable(status, excepted, overdraft)
            if not allow:
                notes = notes if reasons else ["refused by the policy", *notes]
            elif not granted:
                notes.append(f"estimate {_text_g(estimate_g)} exceeds what team {team} may still spend in {period}: "
                             f"{spendable}")
            elif used > _TOLERANCE_G:
                notes.append(f"uses {_text_g(used)} of the soft tier's overdraft ({spendable}): flagged for review")
            elif from_exceptions > _TOLERANCE_G:
                notes.append(f"within budget with {_text_g(from_exceptions)} of approved exceptions: "
                             f"{_text_g(estimate_g)} of {_spendable(status, excepted, 0.0)}")
            else:
                notes.append(f"within budget: {_text_g(estimate_g)} of {_spendable(status, excepted, 0.0)}")
            review = review_required or used > _TOLERANCE_G
            expires_at = now + timedelta(seconds=ttl) if granted else None
            remaining = status.remaining_g + from_exceptions - (estimate_g if granted else 0.0)
            decision = self._insert(
                connection, "decision", "granted" if granted else "refused", actor=actor, at=now, team=team,
                period=period, run_id=run_id, amount_g=estimate_g, pipeline=pipeline, expires_at=expires_at,
                unique_key=f"decision:{run_id}",
                detail={"granted": granted, "reasons": notes, "review_required": review, "remaining_g": remaining,
                        "tier": status.tier, "overdraft_used_g": used, "overdraft_allowed_g": overdraft,
                        "allow": allow, "exceptions_g": excepted, **({"drawn": drawn} if drawn else {})})
            if granted:
                self._insert(connection, "reservation", "reserved", actor=actor, at=now, team=team, period=period,
                             run_id=run_id, amount_g=estimate_g, pipeline=pipeline, expires_at=expires_at,
                             ref_id=decision.id, unique_key=f"reservation:{run_id}")
                connection.execute(_RESERVE, {"b_team": team, "b_period": period, "delta": estimate_g,
                                              "next_expiry": expires_at if first is None else min(first, expires_at)})
            elif first != row.next_expiry:  # the open reservations' first expiry, brought up to date
                connection.execute(_RESERVE, {"b_team": team, "b_period": period, "delta": 0.0, "next_expiry": first})
            return _reservation(decision, replayed=False)

        return self._run(work)

    def _reservation_of(self, connection: sa.Connection, team: str, run_id: str) -> tuple[LedgerEntry, dict]:
        """The granted reservation of ``team``'s run ``run_id`` and the run's entries by kind, read
        under the run's locks: the reservation's row is locked first (PostgreSQL ``SELECT ... FOR
        UPDATE``; SQLite's ``BEGIN IMMEDIATE`` already holds the database), then its budget's row,
        and only then are the run's other entries read. So of two concurrent settlements, or a
        settlement and a release, the second waits for the first and sees what it wrote.

        Raises:
            UnknownRunError: the team has no reservation under this run id (another team's run
                is as unknown as a run id never seen: run ids are per team).
        """
        reservation = self._once(connection, team, f"reservation:{run_id}", lock=True)
        if reservation is None:
            if self._once(connection, team, f"decision:{run_id}") is not None:
                raise BudgetError("run_id", "was refused: it has no reservation", run_id)
            raise UnknownRunError("run_id", f"has no reservation of team {team} in the ledger", run_id)
        self._lock(connection, team, reservation.period)
        return reservation, self._run_entries(connection, team, run_id)

    def settle(self, team: str, run_id: str, actual_g: float, *, actor: str,
               facts: RunFacts | Mapping[str, Any] | None = None) -> LedgerEntry:
        """Record the actual emissions of ``team``'s finished run ``run_id``; its reservation stops
        counting (the difference goes back to the budget). Settling again with the same figure
        returns the first entry; with another figure it is an error.

        ``facts``: the run's :class:`RunFacts` (or their JSON object), checked and kept in the
        settlement's ``detail["facts"]``; an empty ``pipeline`` in them is the reservation's, and
        another pipeline than the reservation's is an error.
        """
        team, run_id, actor = check_name("team", team), _run_id("run_id", run_id), check_name("actor", actor)
        actual_g = check_grams("actual_g", actual_g, zero=True)
        facts = check_facts(facts)

        def work(connection):
            reservation, found = self._reservation_of(connection, team, run_id)
            settled, released = found.get("settlement"), found.get("release")
            if settled is not None:
                if abs(settled.amount_g - actual_g) <= _TOLERANCE_G * max(1.0, actual_g):
                    return settled
                raise BudgetError("actual_g", f"differs from the {_text_g(settled.amount_g)} already settled for "
                                              f"run {run_id!r} (a settlement is final)", actual_g)
            if released is not None and released.action == "rekeyed":
                raise BudgetError("run_id", f"was re-keyed to run {released.detail.get('to_run_id')!r} (the id KFP "
                                            "gave it): settle that run id", run_id)
            if released is not None and released.action == "released":
                raise BudgetError("run_id", "was released (the run did not happen): there is nothing to settle",
                                  run_id)
            now = self._now()
            # expired: its reservation stopped counting (expire() wrote its release, or its time passed),
            # so nothing is given back and the whole actual is charged anew
            expired = released is not None or _when(reservation.expires_at) <= now
            budget = self._status(connection, self._lock(connection, team, reservation.period), now)[0]
            remaining = budget.remaining_g + (0.0 if expired else reservation.amount_g) - actual_g
            detail = {"reserved_g": reservation.amount_g,
                      "released_g": 0.0 if expired else max(reservation.amount_g - actual_g, 0.0),
                      "beyond_reservation_g": max(actual_g - reservation.amount_g, 0.0),
                      "charged_g": actual_g if expired else max(actual_g - reservation.amount_g, 0.0),
                      "after_expiry": expired, "remaining_g": remaining}
            if budget.tier == "hard" and remaining < -_TOLERANCE_G and remaining < budget.remaining_g - _TOLERANCE_G:
                detail["review_required"] = True  # the run emitted it: charged, and the board looks at it
                detail["reasons"] = [f"takes the hard budget of team {team} for {reservation.period} to "
                                     f"{_text_g(remaining)}: flagged for review"]
            if facts is not None:
                detail["facts"] = _facts_of(facts, reservation.pipeline or "")
            connection.execute(_SETTLE, {"b_team": team, "b_period": reservation.period, "settled": actual_g,
                                         "unreserved": 0.0 if released is not None else reservation.amount_g})
            return self._insert(
                connection, "settlement", "settled", actor=actor, at=now, team=team,
                period=reservation.period, run_id=run_id, amount_g=actual_g, pipeline=reservation.pipeline,
                ref_id=reservation.id, unique_key=f"settlement:{run_id}", detail=detail)

        return self._run(work)

    def release(self, team: str, run_id: str, *, actor: str) -> LedgerEntry:
        """Give ``team``'s reservation for ``run_id`` back (the run will not happen); releasing
        again returns the first entry."""
        team, run_id, actor = check_name("team", team), _run_id("run_id", run_id), check_name("actor", actor)

        def work(connection):
            reservation, found = self._reservation_of(connection, team, run_id)
            if "settlement" in found:
                raise BudgetError("run_id", "was settled: a settled run cannot be released", run_id)
            if "release" in found:
                return found["release"]
            now = self._now()
            self._add(connection, team, reservation.period, "reserved_g", -reservation.amount_g)
            # past its expiry the reservation stopped counting already: this gives nothing back
            expired = _when(reservation.expires_at) <= now
            return self._insert(connection, "release", "released", actor=actor, at=now, team=team,
                                period=reservation.period, run_id=run_id, amount_g=reservation.amount_g,
                                pipeline=reservation.pipeline, ref_id=reservation.id, unique_key=f"release:{run_id}",
                                detail={"after_expiry": True, "expires_at": reservation.expires_at} if expired else {})

        return self._run(work)

    def rekey(self, team: str, run_id: str, new_run_id: str, *, actor: str) -> Reservation:
        """Move ``team``'s open reservation from ``run_id`` to ``new_run_id``, atomically: the
        gatekeeper reserves a run under a provisional id before KFP gives it its own, then moves the
        reservation to KFP's id, so that a ``carbon_budget_gate`` step in the run, asking under that
        id, gets the same decision back (replayed) instead of a second reservation.

        Append-only: one transaction writes a ``release`` entry of the old run id (action
        ``rekeyed``, ``to_run_id`` in its detail) and, for the new id, a copy of the old decision
        (its amount, reasons and expiry; ``rekeyed_from`` in its detail) and of its reservation. The
        budget's totals do not change. Again with the same two ids: the first answer, replayed.

        Raises:
            UnknownRunError: the team has no reservation under ``run_id``.
            BudgetError: the run was settled or released, or moved to another id already.
            RunIdTakenError: ``new_run_id`` is decided already for the team.
        """
        team, actor = check_name("team", team), check_name("actor", actor)
        run_id, new_run_id = _run_id("run_id", run_id), _run_id("new_run_id", new_run_id)
        if new_run_id == run_id:
            raise BudgetError("new_run_id", "must differ from run_id", new_run_id)

        def work(connection):
            reservation, found = self._reservation_of(connection, team, run_id)
            released = found.get("release")
            if released is not None and released.action == "rekeyed":
                if released.detail.get("to_run_id") != new_run_id:
                    raise BudgetError("run_id", f"was re-keyed to run {released.detail.get('to_run_id')!r} already",
                                      run_id)
                return _reservation(self._once(connection, team, f"decision:{new_run_id}"), replayed=True)
            if "settlement" in found:
                raise BudgetError("run_id", "was settled: a settled run keeps its id", run_id)
            if released is not None:
                raise BudgetError("run_id", "was released: there is no reservation to move", run_id)
            if self._once(connection, team, f"decision:{new_run_id}") is not None:
                raise RunIdTakenError("new_run_id", f"was decided already for team {team}; a run id names one run",
                                      new_run_id)
            decision, now = found["decision"], self._now()
            expires_at = _when(reservation.expires_at)
            self._insert(connection, "release", "rekeyed", actor=actor, at=now, team=team, period=reservation.period,
                         run_id=run_id, amount_g=reservation.amount_g, pipeline=reservation.pipeline,
                         ref_id=reservation.id, unique_key=f"release:{run_id}", detail={"to_run_id": new_run_id})
            moved = self._insert(connection, "decision", decision.action, actor=actor, at=now, team=team,
                                 period=decision.period, run_id=new_run_id, amount_g=decision.amount_g,
                                 pipeline=decision.pipeline, expires_at=expires_at, ref_id=decision.id,
                                 unique_key=f"decision:{new_run_id}",
                                 detail={**decision.detail, "rekeyed_from": run_id})
            self._insert(connection, "reservation", "reserved", actor=actor, at=now, team=team,
                         period=reservation.period, run_id=new_run_id, amount_g=reservation.amount_g,
                         pipeline=reservation.pipeline, expires_at=expires_at, ref_id=moved.id,
                         unique_key=f"reservation:{new_run_id}")
            return _reservation(moved, replayed=False)

        return self._run(work)

    def expire(self, now: datetime | None = None, *, actor: str = "ledger") -> int:
        """Write a release entry for every reservation unsettled past its expiry; returns how many.

        (An expired reservation stops counting at its expiry whether or not this ran.)
        """
        actor = check_name("actor", actor)
        moment = None if now is None else _aware("now", now)

        def work(connection):
            at = self._now()

            def overdue():
                return self._select(connection, _E.kind == "reservation", _E.expires_at <= (moment or at),
                                    ~_IS_CLOSED)

            budgets = sorted({(e.team, e.period) for e in overdue()})
            for team, period in budgets:  # in name order, then read again: a settlement may have come first
                self._lock(connection, team, period)
            due = overdue()
            for reservation in due:
                self._add(connection, reservation.team, reservation.period, "reserved_g", -reservation.amount_g)
                self._insert(connection, "release", "expired", actor=actor, at=at, team=reservation.team,
                             period=reservation.period, run_id=reservation.run_id, amount_g=reservation.amount_g,
                             pipeline=reservation.pipeline, ref_id=reservation.id,
                             unique_key=f"release:{reservation.run_id}", detail={"expires_at": reservation.expires_at})
            for team, period in budgets:  # the first expiry of what is still open
                first = connection.execute(_OPEN, {"now": at, "b_team": team, "b_period": period}).one()[1]
                connection.execute(BUDGETS.update().where(_HERE).values(next_expiry=sa.bindparam("next_expiry")),
                                   {"b_team": team, "b_period": period, "next_expiry": first})
            return len(due)

        return self._run(work)

    def settled_history(self, team: str, pipeline: str, limit: int = 100) -> list[float]:
        """The actual grams of the settled runs of ``team``'s ``pipeline``, newest first (any month)."""
        team, pipeline = check_name("team", team), _pipeline(pipeline)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
            raise BudgetError("limit", "must be a whole number > 0", limit)

        def work(connection):
            query = (sa.select(_E.amount_g).where(_E.kind == "settlement", _E.team == team, _E.pipeline == pipeline)
                     .order_by(_E.at.desc(), _E.id.desc()).limit(limit))
            return [float(value) for value in connection.execute(query).scalars()]

        return self._run(work, write=False)

    def settled_runs(self, *, team: str | None = None, since: str | None = None, until: str | None = None,
                     read_facts: bool = False) -> Iterator[SettledRun]:
        """The settled runs, in the order they were settled, as :class:`SettledRun` (team,
        pipeline, period, settled_at, estimate, actual, facts): of one ``team`` or all, of the
        months ``since`` to ``until`` (``YYYY-MM``, both included; None: no bound). Read in one
        transaction (one consistent view), then yielded. ``read_facts``: read every run's
        :class:`RunFacts` record now (faster for many runs than one by one later)."""
        where = [_E.kind == "settlement"]
        if team is not None:
            where.append(_E.team == check_name("team", team))
        for name, bound in (("since", since), ("until", until)):
            if bound is not None:
                try:
                    check_period(bound)
                except BudgetError as exc:
                    raise exc.renamed(name) from None
                where.append(_E.period >= bound if name == "since" else _E.period <= bound)
        if since is not None and until is not None and since > until:
            raise BudgetError("until", f"must not be before since ({since})", until)
        query = (sa.select(_E.id, _E.run_id, _E.team, _E.pipeline, _E.period, _E.at, _E.amount_g, _E.detail)
                 .where(*where).order_by(_E.id))

        def work(connection):
            runs = []
            with _gc_paused():  # 100,000 runs of nested JSON: the collector's passes would cost more than the reading
                rows = connection.execute(query).all()
                for row in rows:
                    runs.append(_settled(row, self.url))
                    if read_facts:
                        runs[-1].facts  # noqa: B018 - read now, kept on the run
            return runs

        return iter(self._run(work, write=False))

    def import_settled_runs(self, runs: Iterable[Mapping[str, Any]], *, actor: str) -> int:
        """Write finished runs in bulk, each as a granted decision, its reservation and its
        settlement (the entries :meth:`reserve` and :meth:`settle` write), in one transaction: for
        importing history, seeding a demo or a benchmark ledger (100,000 runs in seconds).
        Returns how many runs were written.

        Each run is a mapping with ``run_id``, ``team``, ``period``, ``pipeline``, ``estimate_g``
        (reserved, > 0), ``actual_g`` (settled, >= 0), ``decided_at`` and ``settled_at``
        (timezone-aware, ``decided_at`` in ``period`` and not after ``settled_at``) and optionally
        ``facts`` (:class:`RunFacts` or its JSON object; one RunFacts object shared by many runs
        is checked and written out once). Every run is checked before anything is written: the team must have a budget for the period, and a run id must be new (to the
        ledger and to the batch); an error names the run by its position (``runs[12].run_id``).
        No policy is asked and no balance is checked: these runs already happened.
        """
        with _gc_paused():  # hundreds of thousands of rows made at once
            return self._import_settled_runs(runs, actor)

    def _import_settled_runs(self, runs: Iterable[Mapping[str, Any]], actor: str) -> int:
        actor = check_name("actor", actor)
        rows = []
        known: dict[tuple[int, str], tuple[Any, str]] = {}

        def facts_json(facts: Any, pipeline: str) -> str | None:
            """The facts' JSON text; a RunFacts object given for many runs is written out once."""
            if facts is None:
                return None
            key = (id(facts), pipeline)
            if isinstance(facts, RunFacts) and key in known:
                return known[key][1]
            text = json.dumps(_facts_of(check_facts(facts), pipeline), sort_keys=True)
            if isinstance(facts, RunFacts):
                known[key] = (facts, text)  # the object kept: its id stays its own
            return text

        for i, run in enumerate(runs):
            def bad(exc: BudgetError, i=i) -> BudgetError:
                return exc.renamed(f"runs[{i}].{exc.field}")

            if not isinstance(run, Mapping):
                raise BudgetError(f"runs[{i}]", "must be a mapping of run_id, team, period, pipeline, estimate_g, "
                                                "actual_g, decided_at, settled_at", type(run).__name__)
            unknown = set(run) - {"run_id", "team", "period", "pipeline", "estimate_g", "actual_g", "decided_at",
                                  "settled_at", "facts"}
            if unknown:
                raise BudgetError(f"runs[{i}]", "has keys the ledger does not know", sorted(unknown))
            try:
                row = {"run_id": _run_id("run_id", run.get("run_id")), "team": check_name("team", run.get("team")),
                       "period": check_period(run.get("period")),
                       "estimate_g": check_grams("estimate_g", run.get("estimate_g")),
                       "actual_g": check_grams("actual_g", run.get("actual_g"), zero=True),
                       "decided_at": _aware("decided_at", run.get("decided_at")),
                       "settled_at": _aware("settled_at", run.get("settled_at"))}
                pipeline = _pipeline(run.get("pipeline", ""))
                if period_of(row["decided_at"]) != row["period"]:
                    raise BudgetError("decided_at", f"must be in the run's period {row['period']}",
                                      iso(row["decided_at"]))
                if row["settled_at"] < row["decided_at"]:
                    raise BudgetError("settled_at", "must not be before decided_at", iso(row["settled_at"]))
                row["pipeline"] = pipeline
                row["facts"] = facts_json(run.get("facts"), pipeline)
            except BudgetError as exc:
                raise bad(exc) from None
            rows.append(row)
        seen: dict[tuple[str, str], int] = {}  # run ids are per team
        for i, row in enumerate(rows):
            key = (row["team"], row["run_id"])
            if key in seen:
                raise BudgetError(f"runs[{i}].run_id", f"is also the run id of runs[{seen[key]}] (team {row['team']})",
                                  row["run_id"])
            seen[key] = i

        def work(connection):
            budgets = sorted({(row["team"], row["period"]) for row in rows})
            rows_of: dict[tuple[str, str], Any] = {}
            for team, period in budgets:
                try:
                    rows_of[team, period] = self._lock(connection, team, period)
                except BudgetError as exc:
                    first = next(i for i, row in enumerate(rows) if (row["team"], row["period"]) == (team, period))
                    raise exc.renamed(f"runs[{first}].team") from None
            by_team: dict[str, list[str]] = {}
            for team, run_id in seen:
                by_team.setdefault(team, []).append(run_id)
            for team, ids in sorted(by_team.items()):
                for start in range(0, len(ids), _KEYS_PER_QUERY):
                    taken = connection.execute(sa.select(_E.run_id).where(
                        _E.team == team,
                        _E.unique_key.in_([f"decision:{run_id}" for run_id in ids[start:start + _KEYS_PER_QUERY]]))).first()
                    if taken is not None:
                        raise BudgetError(f"runs[{seen[team, taken.run_id]}].run_id",
                                          f"is already in the ledger for team {team}", taken.run_id)
            insert = ENTRIES.insert()

            def ids_of(entries: list[dict]) -> list[int]:  # the ids of the entries just written, in their order
                found: dict[tuple[str, str], int] = {}
                keys: dict[str, list[str]] = {}
                for entry in entries:
                    keys.setdefault(entry["team"], []).append(entry["unique_key"])
                for team, team_keys in keys.items():
                    for at in range(0, len(team_keys), _KEYS_PER_QUERY):
                        found.update(((team, key), entry_id) for key, entry_id in connection.execute(
                            sa.select(_E.unique_key, _E.id).where(_E.team == team,
                                                                  _E.unique_key.in_(team_keys[at:at + _KEYS_PER_QUERY]))))
                return [found[entry["team"], entry["unique_key"]] for entry in entries]
            settled: dict[tuple[str, str], float] = {}
            remaining: dict[tuple[str, str], float] = {}
            for start in range(0, len(rows), 20000):
                chunk = rows[start:start + 20000]
                base = [{**dict.fromkeys(_COLUMNS), "actor": actor, "team": r["team"], "period": r["period"],
                         "run_id": r["run_id"], "pipeline": r["pipeline"]} for r in chunk]
                decisions = []
                for b, r in zip(base, chunk):
                    budget = rows_of[r["team"], r["period"]]
                    remaining[r["team"], r["period"]] = left = remaining.get(
                        (r["team"], r["period"]), float(budget.limit_g) + float(budget.transferred_g)
                        - float(budget.reserved_g) - float(budget.settled_g)) - r["actual_g"]
                    decisions.append({**b, "kind": "decision", "action": "granted", "at": r["decided_at"],
                                      "amount_g": r["estimate_g"], "expires_at": r["settled_at"],
                                      "unique_key": f"decision:{r['run_id']}",
                                      "detail": json.dumps({"granted": True, "reasons": [_IMPORTED],
                                                            "review_required": False, "remaining_g": left,
                                                            "tier": budget.tier, "overdraft_used_g": 0.0,
                                                            "overdraft_allowed_g": 0.0, "allow": True,
                                                            "exceptions_g": 0.0, "imported": True},
                                                           sort_keys=True)})
                connection.execute(insert, decisions)
                decision_ids = ids_of(decisions)
                reservations = [{**b, "kind": "reservation", "action": "reserved", "at": r["decided_at"],
                                 "amount_g": r["estimate_g"], "expires_at": r["settled_at"], "ref_id": d,
                                 "unique_key": f"reservation:{r['run_id']}", "detail": "{}"}
                                for b, r, d in zip(base, chunk, decision_ids)]
                connection.execute(insert, reservations)
                reservation_ids = ids_of(reservations)
                settlements = []
                for b, r, ref in zip(base, chunk, reservation_ids):
                    detail = {"reserved_g": r["estimate_g"], "released_g": max(r["estimate_g"] - r["actual_g"], 0.0),
                              "beyond_reservation_g": max(r["actual_g"] - r["estimate_g"], 0.0),
                              "after_expiry": False}
                    text = json.dumps(detail, sort_keys=True)
                    if r["facts"] is not None:  # spliced in as written once (the keys' order does not matter)
                        text = f'{text[:-1]}, "facts": {r["facts"]}}}'
                    settlements.append({**b, "kind": "settlement", "action": "settled", "at": r["settled_at"],
                                        "amount_g": r["actual_g"], "ref_id": ref,
                                        "unique_key": f"settlement:{r['run_id']}", "detail": text})
                    key = (r["team"], r["period"])
                    settled[key] = settled.get(key, 0.0) + r["actual_g"]
                connection.execute(insert, settlements)
            for (team, period), grams in settled.items():
                connection.execute(_SETTLE, {"b_team": team, "b_period": period, "settled": grams, "unreserved": 0.0})
            return len(rows)

        return self._run(work)

    # ----------------------------------------------------------------- the review board

    def add_board_member(self, name: str, *, actor: str) -> int:
        """Add ``name`` to the review board (again: no new entry); returns the entry id."""
        name, actor = check_name("name", name), check_name("actor", actor)
        return self._run(lambda connection: self._board_change(connection, name, "added", actor))

    def remove_board_member(self, name: str, *, actor: str) -> int:
        """Take ``name`` off the review board; returns the entry id."""
        name, actor = check_name("name", name), check_name("actor", actor)
        return self._run(lambda connection: self._board_change(connection, name, "removed", actor))

    def _board_change(self, connection: sa.Connection, name: str, action: str, actor: str) -> int:
        changes = [e for e in self._select(connection, _E.kind == "board") if e.detail["member"] == name]
        if changes and changes[-1].action == action:
            return changes[-1].id
        if action == "removed" and not changes:
            raise BudgetError("name", "is not a member of the review board", name)
        return self._insert(connection, "board", action, actor=actor, at=self._now(), detail={"member": name}).id

    def board_members(self) -> list[str]:
        """The review board's members, sorted."""
        return self._run(self._members, write=False)

    def _members(self, connection: sa.Connection) -> list[str]:
        members: dict[str, bool] = {}
        for change in self._select(connection, _E.kind == "board"):
            members[change.detail["member"]] = change.action == "added"
        return sorted(name for name, member in members.items() if member)

    def _check_approver(self, connection: sa.Connection, approver: str) -> None:
        if approver not in self._members(connection):
            raise BudgetError("approver", "is not a member of the review board", approver)

    def request_exception(self, team: str, period: str, amount_g: float, *, requester: str, reason: str,
                          expires_at: datetime | str, run_id: str | None = None) -> int:
        """Ask the board to let ``team`` (or only run ``run_id``) spend up to ``amount_g`` beyond its
        remaining budget in ``period`` until ``expires_at``; returns the exception's id."""
        team, period, requester = check_name("team", team), check_period(period), check_name("requester", requester)
        amount_g, reason = check_grams("amount_g", amount_g), _text("reason", reason)
        expiry = _aware("expires_at", expires_at)
        run_id = None if run_id is None else _run_id("run_id", run_id)

        def work(connection):
            now = self._now()
            if expiry <= now:
                raise BudgetError("expires_at", f"must be later than now ({iso(now)})", iso(expiry))
            self._lock(connection, team, period)
            self._add(connection, team, period, "exceptions", 1)
            return self._insert(connection, "exception", "requested", actor=requester, at=now, team=team,
                                period=period, run_id=run_id, amount_g=amount_g, expires_at=expiry,
                                detail={"reason": reason}).id

        return self._run(work)

    def exception(self, exception_id: int) -> ExceptionGrant:
        """The exception with this id, as it stands now."""
        exception_id = _entry_id("exception_id", exception_id)
        return self._run(lambda connection: self._exception(connection, exception_id), write=False)

    def _exception(self, connection: sa.Connection, exception_id: int) -> ExceptionGrant:
        found = self._exceptions(connection, self._now(), _E.id == exception_id)
        if not found:
            raise BudgetError("exception_id", "names no exception request in the ledger", exception_id)
        return found[0]

    def approve_exception(self, exception_id: int, *, approver: str) -> ExceptionGrant:
        """Approve a pending exception. The approver must be on the board and not its requester."""
        return self._decide_exception(exception_id, approver, "approved", None)

    def reject_exception(self, exception_id: int, *, approver: str, reason: str) -> ExceptionGrant:
        """Reject a pending exception, saying why. The approver must be on the board and not its requester."""
        return self._decide_exception(exception_id, approver, "rejected", _text("reason", reason))

    def _decide_exception(self, exception_id: int, approver: str, action: str, reason: str | None) -> ExceptionGrant:
        exception_id, approver = _entry_id("exception_id", exception_id), check_name("approver", approver)

        def work(connection):
            grant = self._exception(connection, exception_id)
            self._lock(connection, grant.team, grant.period)
            self._check_approver(connection, approver)
            if approver == grant.requester:
                raise BudgetError("approver", f"requested exception {exception_id} and cannot decide on it", approver)
            if grant.status != "pending":
                raise BudgetError("exception_id", f"is {grant.status}, not pending: nothing to decide", exception_id)
            self._insert(connection, "exception", action, actor=approver, at=self._now(), team=grant.team,
                         period=grant.period, run_id=grant.run_id, amount_g=grant.amount_g, ref_id=exception_id,
                         unique_key=f"exception:{exception_id}", detail={"reason": reason} if reason else {})
            return self._exception(connection, exception_id)

        return self._run(work)

    def transfer(self, from_team: str, to_team: str, period: str, amount_g: float, *, approver: str,
                 reason: str) -> int:
        """Move ``amount_g`` of ``period``'s limit from one team to another (never more than the
        giver's remaining budget); the approver must be on the board. Returns the entry id."""
        from_team, to_team = check_name("from_team", from_team), check_name("to_team", to_team)
        period, approver = check_period(period), check_name("approver", approver)
        amount_g, reason = check_grams("amount_g", amount_g), _text("reason", reason)
        if from_team == to_team:
            raise BudgetError("to_team", "must differ from from_team", to_team)

        def work(connection):
            now = self._now()
            rows = {}
            for field, team in sorted((("from_team", from_team), ("to_team", to_team)), key=lambda pair: pair[1]):
                try:  # always in name order: two opposite transfers cannot deadlock
                    rows[field] = self._lock(connection, team, period)
                except BudgetError as exc:
                    raise exc.renamed(field) from None
            self._check_approver(connection, approver)
            remaining = self._status(connection, rows["from_team"], now)[0].remaining_g
            if amount_g > remaining + _TOLERANCE_G:
                raise BudgetError("amount_g", f"exceeds the {_text_g(max(remaining, 0))} {from_team} has "
                                              f"remaining in {period}", amount_g)
            self._add(connection, from_team, period, "transferred_g", -amount_g)
            self._add(connection, to_team, period, "transferred_g", amount_g)
            return self._insert(connection, "transfer", "moved", actor=approver, at=now, team=from_team,
                                to_team=to_team, period=period, amount_g=amount_g, detail={"reason": reason}).id

        return self._run(work)

    # ----------------------------------------------------------------- the record

    def entries(self, team: str | None = None, period: str | None = None) -> list[LedgerEntry]:
        """The ledger's entries in the order written, optionally of one team (transfers to it
        included) and one month."""
        where = []
        if team is not None:
            team = check_name("team", team)
            where.append(sa.or_(_E.team == team, _E.to_team == team))
        if period is not None:
            where.append(_E.period == check_period(period))
        return self._run(lambda connection: self._select(connection, *where), write=False)

    def entries_of(self, kinds: Sequence[str], *, actions: Sequence[str] | None = None, since: str | None = None,
                   until: str | None = None) -> list[LedgerEntry]:
        """The entries of these ``kinds`` (and ``actions``; None: any) of the months ``since`` to
        ``until`` (``YYYY-MM``, both included; None: no bound), in the order written: what a
        report reads (limits, refusals, exceptions, transfers) without every run's own entries."""
        from ..records import LEDGER_KINDS

        if isinstance(kinds, str) or not kinds or any(kind not in LEDGER_KINDS for kind in kinds):
            raise BudgetError("kinds", f"must be a list of entry kinds ({', '.join(LEDGER_KINDS)})", kinds)
        if actions is not None and (isinstance(actions, str) or not all(isinstance(a, str) for a in actions)):
            raise BudgetError("actions", "must be a list of actions", actions)
        where = [_E.kind.in_(list(kinds))]
        if actions is not None:
            where.append(_E.action.in_(list(actions)))
        if since is not None:
            where.append(_E.period >= check_period(since))
        if until is not None:
            where.append(_E.period <= check_period(until))
        return self._run(lambda connection: self._select(connection, *where), write=False)


# --------------------------------------------------------------------------- rows to records

def _entry(row: Any) -> LedgerEntry:
    """A row of ``budget_entries`` (a mapping; the columns left out of an insert are None); a row
    that cannot be one (a detail that is not a JSON object, an amount that is not a number) is a
    LedgerUnavailableError naming the entry: the ledger is corrupt, the request was fine."""
    try:
        detail = json.loads(row.get("detail") or "{}")
    except ValueError:
        detail = None
    if not isinstance(detail, dict):
        raise LedgerUnavailableError("ledger", f"entry #{row.get('id')}'s detail is not a JSON object: the ledger "
                                               "is corrupt")
    expires, amount = row.get("expires_at"), row.get("amount_g")
    try:
        amount = None if amount is None else _stored_number(amount)
    except ValueError:
        raise LedgerUnavailableError("ledger", f"entry #{row.get('id')}'s amount_g is not a number "
                                               f"({shorten(amount)}): the ledger is corrupt") from None
    return LedgerEntry(
        id=int(row["id"]), kind=row["kind"], action=row["action"], at=iso(row["at"]), actor=row["actor"],
        team=row.get("team"), period=row.get("period"), run_id=row.get("run_id"),
        amount_g=amount, to_team=row.get("to_team"), pipeline=row.get("pipeline"),
        ref_id=row.get("ref_id"), expires_at=None if expires is None else iso(expires), detail=detail)


def _stored_number(value: Any) -> float:
    """A number as the database holds it (SQLite keeps whatever text was written into a column):
    a finite float, else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise ValueError(value)
    return float(value)


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _grant(request: LedgerEntry, decision: LedgerEntry | None, now: datetime) -> ExceptionGrant:
    status = decision.action if decision is not None else "pending"
    if status in ("pending", "approved") and _when(request.expires_at) <= now:
        status = "expired"
    return ExceptionGrant(
        id=request.id, team=request.team, period=request.period, amount_g=request.amount_g,
        requester=request.actor, reason=request.detail.get("reason", ""), requested_at=request.at,
        expires_at=request.expires_at, status=status, run_id=request.run_id,
        approver=decision.actor if decision is not None else None,
        decided_at=decision.at if decision is not None else None,
        decision_reason=decision.detail.get("reason") if decision is not None else None)


def _reservation(decision: LedgerEntry, *, replayed: bool) -> Reservation:
    detail = decision.detail
    return Reservation(
        granted=bool(detail["granted"]), run_id=decision.run_id, team=decision.team, period=decision.period,
        amount_g=decision.amount_g, remaining_g=float(detail["remaining_g"]),
        review_required=bool(detail["review_required"]), reasons=tuple(detail["reasons"]), replayed=replayed,
        decided_at=decision.at, tier=detail["tier"], overdraft_used_g=float(detail["overdraft_used_g"]),
        expires_at=decision.expires_at, pipeline=decision.pipeline or "", decision_id=decision.id)


def _settled(row: Any, url: str) -> SettledRun:
    """A settlement's row as a :class:`SettledRun` (its estimate is the reservation it settled)."""
    detail = json.loads(row.detail or "{}")
    if not isinstance(detail, dict) or not isinstance(detail.get("reserved_g"), (int, float)):
        raise BudgetError("ledger", f"entry {row.id} (the settlement of run {row.run_id}) has no reserved_g in its "
                                    "detail: the ledger is damaged", url)
    return SettledRun(run_id=row.run_id, team=row.team, pipeline=row.pipeline or "", period=row.period,
                      settled_at=row.at, estimate_g=float(detail["reserved_g"]), actual_g=float(row.amount_g),
                      facts_data=detail.get("facts"))


class _gc_paused:
    """The cyclic garbage collector paused while many objects are made (it is restored after)."""

    def __enter__(self):
        import gc

        self._was = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc_info):
        import gc

        if self._was:
            gc.enable()


def _facts_of(facts: RunFacts, pipeline: str) -> dict:
    """The facts' JSON to keep with a settlement of a run of ``pipeline`` (the reservation's):
    an empty pipeline in them becomes that one; another one is an error."""
    data = facts.to_dict()
    if not data["pipeline"]:
        data["pipeline"] = pipeline
    elif pipeline and data["pipeline"] != pipeline:
        raise BudgetError("facts.pipeline", f"differs from the pipeline of the run's reservation ({pipeline!r})",
                          data["pipeline"])
    return data


def _spendable(status: BudgetStatus, excepted: float, overdraft: float) -> str:
    """``900 g remaining (limit 1,000 g) + 300 g of approved exceptions + 100 g of overdraft``."""
    parts = [f"{_text_g(status.remaining_g)} remaining (limit {_text_g(status.limit_g)})"]
    if excepted:
        parts.append(f"{_text_g(excepted)} of approved exceptions")
    if overdraft:
        parts.append(f"{_text_g(overdraft)} of overdraft")
    return " + ".join(parts)
