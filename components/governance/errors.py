"""Typed errors of the governance module.

Every error names the field and the value that caused it (``period must be a calendar month
YYYY-MM (UTC), got '2026-13'``), in one line, and never carries a secret: a database URL is shown
with its password hidden. ``field`` and ``value`` are kept as attributes, so the CLI can say
``--period`` where the library says ``period``.
"""

from __future__ import annotations

from typing import Any

from .._messages import redact_urls, shorten

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
