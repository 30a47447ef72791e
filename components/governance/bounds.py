"""Upper bounds of what a person gives the budget's command line and the gatekeeper's API, checked
before anything is opened or written, each error naming the field (the CLI renames it to its
option) and the value as given:

* an entry's id (an exception's ``--id``, the API's ``exceptions/{id}``) is a whole number from 1
  to :data:`MAX_ENTRY_ID`, written in ASCII digits: the largest id either database stores (a
  larger one used to reach SQLite and fail there as an internal error);
* a time ahead (an exception's expiry, a reservation's time to live) is at most
  :data:`MAX_AHEAD` from now: a year, as the command line's longest duration
  (``greenkfp.pipelines.options.MAX_HOURS``). Beyond it, ``now + ttl`` used to overflow
  Python's dates (``--ttl 3000000d``) or its C integers (``--ttl 9999999999d``).

Standard library only.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from .errors import BudgetError

__all__ = ["MAX_AHEAD", "MAX_ENTRY_ID", "check_ahead", "check_entry_id"]

#: The largest entry id: PostgreSQL's BIGINT and SQLite's INTEGER hold at most 2**63 - 1.
MAX_ENTRY_ID = 2**63 - 1
#: How far ahead an expiry or a time to live may reach: a year (366 days).
MAX_AHEAD = timedelta(days=366)

_DIGITS = re.compile(r"[0-9]{1,19}")


def check_entry_id(field: str, value: Any, what: str = "an entry's id") -> int:
    """``value`` (an int, or a text of ASCII digits) as an entry id from 1 to :data:`MAX_ENTRY_ID`
    (``what``: what the message calls it).

    Raises:
        BudgetError: anything else (``٣``, ``1e3``, ``-1``, 20 digits), naming ``field``.
    """
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        number: Any = int(value)
    else:
        number = value
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_ENTRY_ID:
        raise BudgetError(field, f"must be {what}, a whole number from 1 to {MAX_ENTRY_ID}", value)
    return number


def check_ahead(field: str, moment: datetime, now: datetime, given: Any = None) -> datetime:
    """``moment`` if it is at most :data:`MAX_AHEAD` after ``now`` (``given``: the value as
    typed, for the message).

    Raises:
        BudgetError: a later moment, naming ``field``.
    """
    if moment - now > MAX_AHEAD:
        raise BudgetError(field, f"must be at most {MAX_AHEAD.days} days from now",
                          moment.isoformat() if given is None else given)
    return moment
