"""A Carbon Aware SDK WebAPI that you run (https://github.com/Green-Software-Foundation/carbon-aware-sdk).

The base URL comes from ``base_url`` or ``CARBON_AWARE_SDK_URL``. A missing URL is reported
when the provider is used, not when it is built, so a fallback chain can skip it. The SDK
serves gCO2eq/kWh from whichever data source it is configured with; its forecast points
carry their own ``duration`` in minutes.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

from ..._messages import shorten
from ..errors import ProviderConfigError, ProviderResponseError, UnknownRegionError
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

URL_ENV = "CARBON_AWARE_SDK_URL"
SIGNAL = "as served by the Carbon Aware SDK"
# Stands in for the base URL until one is configured; never contacted (see _check_configured).
_UNCONFIGURED_URL = "http://carbon-aware-sdk.invalid"
_LOCATION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


def parse_location(region: str) -> str:
    """The SDK location name of ``region``, e.g. ``eastus`` or ``westeurope``.

    Raises:
        UnknownRegionError: empty or not shaped like a location name.
    """
    location = region.strip() if isinstance(region, str) else ""
    if not _LOCATION.fullmatch(location):
        raise UnknownRegionError(
            f"carbon_aware_sdk: unknown region {shorten(region)}; expected a location the SDK knows, such as 'eastus'"
        )
    return location


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class CarbonAwareSdkProvider(HttpProvider):
    """Forecasts and current values from a Carbon Aware SDK WebAPI.

    Args:
        base_url: The WebAPI root; defaults to the ``CARBON_AWARE_SDK_URL`` environment variable.
        timeout: httpx timeout (always set).
        retry: The retry policy.
    """

    name = "carbon_aware_sdk"

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
    ):
        base_url = base_url if base_url is not None else os.environ.get(URL_ENV)
        self._configured = bool(base_url and base_url.strip())
        super().__init__(base_url.strip() if self._configured else _UNCONFIGURED_URL, timeout=timeout, retry=retry)

    def forecast(self, region: str, start: datetime, end: datetime) -> ProviderForecast:
        """The SDK's current forecast for ``[start, end)``."""
        location = parse_location(region)
        check_period(start, end)
        self._check_configured(location)
        params = {"location": location, "dataStartAt": _iso(start), "dataEndAt": _iso(end)}
        payload = self.get_json("/emissions/forecasts/current", region=location, params=params)
        forecast = self._pick(payload, location)
        rows = forecast.get("forecastData")
        if not isinstance(rows, list):
            raise self._error(ProviderResponseError, location, "the forecast has no 'forecastData' list")
        points, durations = [], set()
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise self._error(ProviderResponseError, location, f"forecastData[{i}] is not an object")
            field = f"forecastData[{i}]"
            at = parse_timestamp(row.get("timestamp"), provider=self.name, region=location, field=f"{field}.timestamp")
            points.append((at, self.intensity(row.get("value"), f"{field}.value", location)))
            duration = row.get("duration")
            if isinstance(duration, bool) or not isinstance(duration, int) or duration <= 0:
                raise self._error(ProviderResponseError, location, f"{field}.duration is invalid: {duration!r}")
            durations.add(duration)
        if len(durations) > 1:
            detail = f"forecast points have mixed durations: {sorted(durations)} min"
            raise self._error(ProviderResponseError, location, detail)
        granularity = timedelta(minutes=durations.pop()) if durations else None
        series = series_from_payload_points(points, provider=self.name, region=location, granularity=granularity)
        series = self.trimmed(series, start, end, location)
        return ProviderForecast(series, location, self.name, "forecast", SIGNAL, utc_now())

    def current(self, region: str) -> IntensityReading:
        """The latest value the SDK reports for ``region`` (``/emissions/bylocation``)."""
        location = parse_location(region)
        self._check_configured(location)
        payload = self.get_json("/emissions/bylocation", region=location, params={"location": location})
        if not isinstance(payload, list) or not payload:
            raise self._error(ProviderResponseError, location, "/emissions/bylocation returned no emissions data")
        readings = []
        for i, row in enumerate(payload):
            if not isinstance(row, dict):
                raise self._error(ProviderResponseError, location, f"emissions data [{i}] is not an object")
            at = parse_timestamp(row.get("time"), provider=self.name, region=location, field=f"[{i}].time")
            readings.append((at, self.intensity(row.get("rating"), f"[{i}].rating", location)))
        at, value = max(readings, key=lambda reading: reading[0])
        return IntensityReading(location, at, value, self.name, "historical", SIGNAL, "latest emissions data point")

    def _check_configured(self, location: str) -> None:
        if not self._configured:
            raise self._error(ProviderConfigError, location, f"no base URL: pass base_url or set {URL_ENV}")

    def _pick(self, payload: Any, location: str) -> dict:
        """The forecast object for ``location`` from the SDK's list of forecasts."""
        if not isinstance(payload, list) or not payload:
            raise self._error(ProviderResponseError, location, "expected a non-empty list of forecasts")
        for forecast in payload:
            if isinstance(forecast, dict) and str(forecast.get("location", "")).lower() == location.lower():
                return forecast
        if len(payload) == 1 and isinstance(payload[0], dict):
            return payload[0]
        raise self._error(ProviderResponseError, location, "no forecast for this location in the answer")
