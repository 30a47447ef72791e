"""Error messages a person can read, and that never carry a secret: lists in them are capped, so
a 10,000-class label or a 100,000-column file gives one line, not a page; the credentials of any
URL, its userinfo (``http://user:secret@host``) and its secret query parameters
(``?password=secret``, ``&api_key=...``), are redacted from messages and records.

Standard library only: embedded as-is in portable component builds.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

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


#: ``scheme://userinfo@``: what a URL carries credentials in (up to the authority's last ``@``:
#: a password may hold one).
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)[^\s/?#]+@")
#: A query parameter that carries a credential: a name holding password, passwd, pwd, token,
#: secret, key, signature or credential (``password``, ``sslpassword``, ``api_key``,
#: ``access_token``, ``X-Amz-Signature``), or one of ``pass``, ``sig``, ``auth``; its value is
#: redacted up to the next ``&``, ``#``, space or quote.
_SECRET_PARAMETER = re.compile(
    r"(?P<name>[?&;](?:[^=&#\s'\"]*(?:password|passwd|pwd|token|secret|key|signature|credential)[^=&#\s'\"]*"
    r"|pass|sig|auth)=)[^&#\s'\"]*", re.IGNORECASE)


def redact_urls(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced by ``***``: the userinfo
    (``postgresql://***@host/db``) and the values of secret query parameters
    (``...?password=***``, ``&token=***``)."""
    return _SECRET_PARAMETER.sub(r"\g<name>***", _USERINFO.sub(r"\g<scheme>***@", text))


def redact(value: Any) -> Any:
    """``value`` (a record: dicts, lists, strings) with :func:`redact_urls` applied to every string."""
    if isinstance(value, str):
        return redact_urls(value)
    if isinstance(value, dict):
        return {key: redact(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(item) for item in value)
    return value


def shorten(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters with the length said: a 100,000-character
    region name is one line in a message, not 700. A string's length is its own (the number a
    length check counts), not its repr's with the quotes and escapes."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(value) if isinstance(value, str) else len(text):,} characters)"


def markdown_text(text: Any) -> str:
    """``text`` for a Markdown table cell or line, shown as it is: on one line, its pipes (which
    would split a table cell), HTML tags and markup (``**``, backticks, links, headings)
    backslash-escaped. The one escaping of the audit's and the quarterly report's Markdown."""
    text = " ".join(str(text).split())
    return re.sub(r"([\\`*_{}\[\]<>#|])", r"\\\1", text)
