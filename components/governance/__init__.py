"""Carbon governance: team budgets in an atomic ledger, the review board, the carbon estimate of a
submission (:mod:`.estimate`), the budget policy in Rego (:mod:`.policy`) and the gatekeeper
service in front of the KFP API (:mod:`.gatekeeper`, with :mod:`.tokens`, :mod:`.kfp_api` and
its client :mod:`.client`).

Core code, no kfp import. :class:`Ledger` keeps the budgets (SQLite or PostgreSQL, see
:mod:`greenkfp.components.governance.ledger` for the API and the rules it enforces); its answers
are the records :class:`~greenkfp.components.records.Reservation`,
:class:`~greenkfp.components.records.BudgetStatus`,
:class:`~greenkfp.components.records.ExceptionGrant` and
:class:`~greenkfp.components.records.LedgerEntry`; its errors are :class:`BudgetError`.
"""

from ..records import BudgetStatus, ExceptionGrant, LedgerEntry, Reservation
from .errors import MAX_GRAMS, BudgetError, LedgerUnavailableError, RunIdTakenError, UnknownRunError
from .ledger import DEFAULT_LEDGER_URL, TIERS, Ledger, check_grams, check_period, period_of

__all__ = [
    "DEFAULT_LEDGER_URL",
    "MAX_GRAMS",
    "TIERS",
    "BudgetError",
    "BudgetStatus",
    "ExceptionGrant",
    "Ledger",
    "LedgerEntry",
    "LedgerUnavailableError",
    "Reservation",
    "RunIdTakenError",
    "UnknownRunError",
    "check_grams",
    "check_period",
    "period_of",
]
