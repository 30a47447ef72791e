"""Electricity Maps v3 (https://api.electricitymap.org): lifecycle carbon intensity by zone.

The key comes from ``api_key`` or ``ELECTRICITYMAPS_API_KEY`` and travels in the
``auth-token`` header. A missing key is reported when the provider is used, not when it is
built, so a fallback chain can skip an unconfigured provider.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta

import httpx

from ..errors import ProviderConfigError, ProviderResponseError
from .base import (
    DEFAULT_TIMEOUT,
    HttpProvider,
    IntensityReading,
    ProviderForecast,
    RetryPolicy,
    check_period,
    region_matching,
    parse_timestamp,
    series_from_payload_points,
    utc_now,
)

API_KEY_ENV = "ELECTRICITYMAPS_API_KEY"
SIGNAL = "lifecycle average (Electricity Maps)"
#: Granularity assumed for a one-point forecast (the v3 forecast is hourly by default).
DEFAULT_GRANULARITY = timedelta(hours=1)
_ZONE = re.compile(r"[A-Z]{2,3}(-[A-Z0-9]+)*")


def parse_zone(region: str) -> str:
    """The zone key of ``region`` (upper-cased), e.g. ``DE`` or ``US-CAL-CISO``.

    Raises:
        UnknownRegionError: not shaped like an Electricity Maps zone key.
    """
    return region_matching(region, _ZONE, provider="electricitymaps", expected="a zone key such as 'DE', 'FR' or 'US-CAL-CISO'")


class ElectricityMapsProvider(HttpProvider):
    """Forecasts and latest values from the Electricity Maps v3 API.

    Args:
        api_key: The API key; defaults to the ``ELECTRICITYMAPS_API_KEY`` environment variable.
        base_url: The API root.
        timeout: httpx timeout (always set).
        retry: The retry policy.
    """

    name = "electricitymaps"

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str = "https://api.electricitymap.org",
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
    ):
        super().__init__(base_url, timeout=timeout, retry=retry)
        self._api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        self._register_secret(self._api_key)

    def forecast(self, region: str, start: datetime, end: datetime) -> ProviderForecast:
        """The zone's forecast, trimmed to the slots that overlap ``[start, end)``."""
        zone = parse_zone(region)
        check_period(start, end)
        payload = self._get("/v3/carbon-intensity/forecast", zone)
        rows = payload.get("forecast")
        if not isinstance(rows, list):
            raise self._error(ProviderResponseError, zone, "the payload has no 'forecast' list")
        points = []
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise self._error(ProviderResponseError, zone, f"forecast[{i}] is not an object")
            at = parse_timestamp(row.get("datetime"), provider=self.name, region=zone, field=f"forecast[{i}].datetime")
            points.append((at, self.intensity(row.get("carbonIntensity"), f"forecast[{i}].carbonIntensity", zone)))
        granularity = DEFAULT_GRANULARITY if len(points) == 1 else None
        series = series_from_payload_points(points, provider=self.name, region=zone, granularity=granularity)
        series = self.trimmed(series, start, end, zone)
        note = f"updatedAt {payload['updatedAt']}" if isinstance(payload.get("updatedAt"), str) else ""
        return ProviderForecast(series, zone, self.name, "forecast", SIGNAL, utc_now(), note)

    def current(self, region: str) -> IntensityReading:
        """The zone's latest value (``/v3/carbon-intensity/latest``)."""
        zone = parse_zone(region)
        payload = self._get("/v3/carbon-intensity/latest", zone)
        at = parse_timestamp(payload.get("datetime"), provider=self.name, region=zone, field="datetime")
        value = self.intensity(payload.get("carbonIntensity"), "carbonIntensity", zone)
        note = "latest value" + (" (estimated)" if payload.get("isEstimated") else "")
        return IntensityReading(zone, at, value, self.name, "historical", SIGNAL, note)

    def _get(self, path: str, zone: str) -> dict:
        if not self._api_key:
            raise self._error(ProviderConfigError, zone, f"no API key: pass api_key or set {API_KEY_ENV}")
        payload = self.get_json(path, region=zone, params={"zone": zone}, headers={"auth-token": self._api_key})
        if not isinstance(payload, dict):
            raise self._error(ProviderResponseError, zone, f"expected a JSON object from {path}")
        return payload
