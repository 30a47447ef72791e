"""Error messages a person can read: lists in them are capped, so a 10,000-class label or a
100,000-column file gives one line, not a page.

Standard library only: embedded as-is in portable component builds.
"""

from __future__ import annotations

from typing import Iterable

#: How many items a message lists before it says how many more there are.
LIST_LIMIT = 8


def listing(items: Iterable[object], limit: int = LIST_LIMIT) -> str:
    """``a, b, c`` or ``a, b, ... and 9,992 more (10,000 in all)``; ``(none)`` when empty."""
    shown, total = [], 0
    for item in items:
        if total < limit:
            shown.append(str(item))
        total += 1
    if not total:
        return "(none)"
    if total <= limit:
        return ", ".join(shown)
    return f"{', '.join(shown)}, ... and {total - limit:,} more ({total:,} in all)"
