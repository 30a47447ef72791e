"""Argument checks shared by the cores: each error names the argument and the bad value."""

from __future__ import annotations

import math
import numbers
import sys
from datetime import datetime, timezone
from typing import Any


def shown(value: Any) -> str:
    """``repr(value)`` for an error message: an integer too long to print whole (Python limits
    int -> str) by its size, and any other long repr cut at 200 characters."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and abs(int(value)).bit_length() > 200:
        return f"an integer of about {int(abs(int(value)).bit_length() * math.log10(2)) + 1} digits"
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


def number(name: str, value: Any) -> float:
    """``value`` as a float; an error naming ``name`` unless it is a finite real number (an
    integer too large for a float is not)."""
    try:
        result = math.nan if isinstance(value, bool) or not isinstance(value, numbers.Real) else float(value)
    except OverflowError:
        result = math.nan
    if not math.isfinite(result):
        raise ValueError(f"{name} must be a finite number, got {shown(value)}")
    return result


def non_negative(name: str, value: Any) -> float:
    """``value`` as a float; an error naming ``name`` unless it is a finite number >= 0."""
    result = number(name, value)
    if result < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return result


def positive(name: str, value: Any) -> float:
    """``value`` as a float; an error naming ``name`` unless it is a finite number > 0."""
    result = number(name, value)
    if result <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return result


def positive_int(name: str, value: Any) -> int:
    """``value`` as an int; an error naming ``name`` unless it is a whole number > 0."""
    if (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
            and float(value).is_integer() and value > 0):
        return int(value)
    raise ValueError(f"{name} must be a whole number > 0, got {value!r}")


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix."""
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"a number too large for a float: {text}")
    return value


def _float_sized_int(text: str) -> int:
    """A JSON integer, if a float can hold it (every number checker converts to float: ``10**400`` overflowed there)."""
    if len(text.lstrip("-")) > 4000:  # int() itself refuses past 4,300 digits, telling of sys.set_int_max_str_digits()
        raise ValueError(f"a number with too many digits: {text[:20]}... ({len(text):,} digits)")
    value = int(text)
    if abs(value) > sys.float_info.max:
        raise ValueError(f"a number too large for a float: {text[:20]}... ({len(text):,} digits)")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    """A JSON object whose keys are each given once (else which value counts depends on the reader)."""
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ValueError(f"the key {twice!r} is given twice in one object")
    return found


def _no_constant(text: str) -> float:
    raise ValueError(f"{text} is not a number JSON allows")


def strict_json(text: str, name: str) -> Any:
    """JSON as the standard says it: no NaN or Infinity (``1e400`` overflows to one), no integer
    beyond a float's range (``10**400``), and not nested beyond Python's recursion limit; an error naming ``name`` otherwise. A value that
    passes can travel through KFP's protobuf parameters and into JSON records."""
    import json

    try:
        return json.loads(text, parse_float=_finite_float, parse_int=_float_sized_int, parse_constant=_no_constant,
                          object_pairs_hook=_unique_keys)
    except RecursionError:
        raise ValueError(f"{name} is JSON nested too deeply to read") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except ValueError as exc:
        raise ValueError(f"{name} is not valid JSON: {exc}") from None
