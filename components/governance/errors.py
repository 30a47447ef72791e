"""Typed errors of the governance module.

Every error names the field and the value that caused it (``period must be a calendar month
YYYY-MM (UTC), got '2026-13'``), in one line, and never carries a secret: a database URL is shown
with its password hidden. ``field`` and ``value`` are kept as attributes, so the CLI can say
``--period`` where the library says ``period``.
"""

from __future__ import annotations

from typing import Any

from .._messages import redact_urls, shorten

__all__ = ["MAX_GRAMS", "MAX_NAME_CHARS", "MAX_PIPELINE_CHARS", "MAX_REASON_CHARS", "MAX_REASONS", "MAX_RUN_ID_CHARS",
           "BudgetError", "capped_reasons", "LedgerUnavailableError", "RunIdTakenError", "UnknownRunError", "grams_limit_text"]

# The limits of what the ledger records, defined once: the ledger checks them, the gatekeeper checks
# a request's fields with them before it asks, and the bundled policy (budget.rego, which cannot
# import them) declares the same numbers (tests/test_governance_policy.py compares them).

#: The largest gram quantity anywhere (a limit, an estimate, an actual, a transfer, an exception,
#: an overdraft, a run's saving): 1e15 g = 1 Gt CO2eq; defined in the records (the run facts check
#: their savings with it).
from ..records import MAX_GRAMS  # noqa: E402
#: A team, an actor, a review-board member: characters (the database's column width).
MAX_NAME_CHARS = 128
#: A run id (the gatekeeper's ``<team>/<Idempotency-Key>`` included): characters.
MAX_RUN_ID_CHARS = 256
#: A pipeline's name: characters.
MAX_PIPELINE_CHARS = 256
#: A reason (an exception's, a rejection's, a transfer's, a policy decision's): characters.
MAX_REASON_CHARS = 1000
#: A policy decision's reasons: how many are kept (the rest are counted in a last one).
MAX_REASONS = 20


def capped_reasons(reasons: "list[str] | tuple[str, ...]") -> tuple[str, ...]:
    """``reasons`` bounded: at most :data:`MAX_REASONS` (the last one kept says how many more there
    were) of at most :data:`MAX_REASON_CHARS` characters each (a longer one ends with a marker
    saying how many characters were cut), whatever a policy answered."""
    def cut(reason: str) -> str:
        if len(reason) <= MAX_REASON_CHARS:
            return reason
        keep = MAX_REASON_CHARS - len(f" ... [{len(reason):,} characters cut]")  # the marker's longest
        return reason[:keep] + f" ... [{len(reason) - keep:,} characters cut]"

    kept = [cut(r) for r in reasons[:MAX_REASONS]]
    if len(reasons) > MAX_REASONS:
        kept[-1] = f"... and {len(reasons) - MAX_REASONS + 1:,} more reasons (cut)"
    return tuple(kept)


def grams_limit_text() -> str:
    """``1e15 g (1 Gt)``: :data:`MAX_GRAMS` as messages state it."""
    return f"{MAX_GRAMS:.0e}".replace("e+", "e") + f" g ({MAX_GRAMS / 1e15:g} Gt)"


_NO_VALUE = object()


class BudgetError(ValueError):
    """A budget request the ledger refuses to carry out: bad input, an unknown team or run, a
    conflict with what the ledger already holds, or a ledger it cannot open. Nothing was written.

    ``field`` names the argument (``team``, ``estimate_g``, ``run_id``, ``ledger``), ``value`` the
    value given (None when the error is not about one value).
    """

    def __init__(self, field: str, problem: str, value: Any = _NO_VALUE):
        self.field, self.problem, self._given = field, problem, value
        self.value = None if value is _NO_VALUE else value
        shown = "" if value is _NO_VALUE else f", got {shorten(value)}"
        super().__init__(redact_urls(" ".join(f"{field} {problem}{shown}".split())))

    def renamed(self, field: str) -> BudgetError:
        """The same error naming ``field`` instead (a command-line option for an argument)."""
        return type(self)(field, self.problem, self._given)


class LedgerUnavailableError(BudgetError):
    """The ledger's database cannot be reached or opened (the message names its URL, password hidden)."""


class UnknownRunError(BudgetError):
    """The team has no reservation under this run id: the run is unknown to the ledger, or it is
    another team's (which, for the asking team, is the same thing: run ids are per team)."""


class RunIdTakenError(BudgetError):
    """The run id was decided already for another month of the same team (a run id names one run)."""
