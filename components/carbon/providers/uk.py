"""The UK Carbon Intensity API (National Grid ESO), https://carbonintensity.org.uk.

No key is needed. A region is one of:

* ``GB`` or ``national``: Great Britain as a whole (``/intensity/...``);
* a region id 1-17, as ``13`` or ``region:13`` (``/regional/.../regionid/13``);
* a postcode outward code, as ``RG10`` or ``postcode:RG10`` (``/regional/.../postcode/RG10``).

Slots are 30 minutes long; the forecast comes from ``intensity.forecast`` (gCO2eq/kWh).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import httpx

from ..._messages import shorten
from ..errors import ProviderResponseError, UnknownRegionError
from ..series import from_epoch_seconds, to_epoch_seconds
from .base import (
    DEFAULT_TIMEOUT,
    HttpProvider,
    IntensityReading,
    ProviderForecast,
    RetryPolicy,
    check_period,
    parse_timestamp,
    series_from_payload_points,
    utc_now,
)

SLOT = timedelta(minutes=30)
SIGNAL = "average (UK Carbon Intensity forecast)"
REGION_IDS = range(1, 18)
# An outward code: area letters, district digit, optional digit or letter (RG10, W1A, EC1A, M1).
_OUTWARD_CODE = re.compile(r"[A-Z]{1,2}[0-9][A-Z0-9]?")
ACCEPTED_FORMS = (
    "'GB' or 'national'; a region id 1-17 as '13' or 'region:13'; "
    "a postcode outward code as 'RG10' or 'postcode:RG10'"
)


def parse_region(region: str) -> tuple[str, str | None]:
    """Split a region into ``(kind, value)``: ``("national", None)``, ``("regionid", "13")``
    or ``("postcode", "RG10")``.

    Raises:
        UnknownRegionError: the region is none of the accepted forms (the message lists them).
    """
    text = region.strip() if isinstance(region, str) else ""
    if text.lower() in ("gb", "national"):
        return "national", None
    prefix, colon, rest = text.partition(":")
    prefix, rest = (prefix.strip().lower(), rest.strip()) if colon else (None, text)
    if prefix in (None, "region") and rest.isascii() and rest.isdigit() and int(rest) in REGION_IDS:
        return "regionid", str(int(rest))
    if prefix in (None, "postcode") and _OUTWARD_CODE.fullmatch(rest.upper()):
        return "postcode", rest.upper()
    raise UnknownRegionError(f"uk: unknown region {shorten(region)}; accepted forms: {ACCEPTED_FORMS}")


def _label(kind: str, value: str | None) -> str:
    return "GB" if kind == "national" else f"{'region' if kind == 'regionid' else 'postcode'}:{value}"


class UKCarbonIntensityProvider(HttpProvider):
    """Forecasts and current values from the UK Carbon Intensity API (no key).

    Args:
        base_url: The API root.
        timeout: httpx timeout (always set).
        retry: The retry policy.
    """

    name = "uk"

    def __init__(
        self,
        *,
        base_url: str = "https://api.carbonintensity.org.uk",
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
    ):
        super().__init__(base_url, timeout=timeout, retry=retry)

    def forecast(self, region: str, start: datetime, end: datetime) -> ProviderForecast:
        """The 48-hour forecast from the slot containing ``start``, trimmed to ``[start, end)``."""
        kind, value = parse_region(region)
        label = _label(kind, value)
        check_period(start, end)
        slot_s = int(SLOT.total_seconds())
        stamp = from_epoch_seconds(to_epoch_seconds(start) // slot_s * slot_s).strftime("%Y-%m-%dT%H:%MZ")
        if kind == "national":
            path = f"/intensity/{stamp}/fw48h"
        else:
            path = f"/regional/intensity/{stamp}/fw48h/{kind}/{value}"
        slots = self._slots(self.get_json(path, region=label), kind, label)
        points = [(at, self._number(slot, "forecast", label)) for at, slot in slots]
        series = series_from_payload_points(points, provider=self.name, region=label, granularity=SLOT)
        series = self.trimmed(series, start, end, label)
        return ProviderForecast(series, label, self.name, "forecast", SIGNAL, utc_now())

    def current(self, region: str) -> IntensityReading:
        """The current slot: the ``actual`` value when published, else the ``forecast``."""
        kind, value = parse_region(region)
        label = _label(kind, value)
        path = "/intensity" if kind == "national" else f"/regional/{kind}/{value}"
        slots = self._slots(self.get_json(path, region=label), kind, label)
        at, slot = slots[0]
        if slot["intensity"].get("actual") is not None:
            value, data_kind, note = self._number(slot, "actual", label), "historical", "actual (measured) value"
        else:
            value, data_kind = self._number(slot, "forecast", label), "forecast"
            note = "forecast value; no actual published yet"
        return IntensityReading(label, at, value, self.name, data_kind, SIGNAL, note)

    # --- payload parsing -----------------------------------------------------------------
    def _slots(self, payload: Any, kind: str, label: str) -> list[tuple[datetime, dict]]:
        """``(start, slot)`` pairs from a national or regional payload, each slot checked."""
        data = payload.get("data") if isinstance(payload, dict) else None
        if kind != "national":
            if isinstance(data, list) and len(data) == 1:
                data = data[0]
            data = data.get("data") if isinstance(data, dict) else None
        if not isinstance(data, list):
            raise self._error(ProviderResponseError, label, "the payload has no 'data' list of slots")
        if not data:
            raise self._error(ProviderResponseError, label, "the forecast holds no data points")
        slots = []
        for i, slot in enumerate(data):
            if not isinstance(slot, dict) or not isinstance(slot.get("intensity"), dict):
                raise self._error(ProviderResponseError, label, f"data[{i}] has no 'intensity' object")
            begin = parse_timestamp(slot.get("from"), provider=self.name, region=label, field=f"data[{i}].from")
            finish = parse_timestamp(slot.get("to"), provider=self.name, region=label, field=f"data[{i}].to")
            if finish - begin != SLOT:
                raise self._error(
                    ProviderResponseError, label, f"data[{i}] spans {finish - begin}, expected a {SLOT} slot"
                )
            slots.append((begin, slot))
        return slots

    def _number(self, slot: dict, field: str, label: str) -> float:
        return self.intensity(slot["intensity"].get(field), f"intensity.{field}", label)
