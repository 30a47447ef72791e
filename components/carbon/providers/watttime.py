"""WattTime v3 (https://api.watttime.org): marginal operating emissions rate (MOER) forecasts.

Credentials come from ``username``/``password`` or ``WATTTIME_USERNAME``/``WATTTIME_PASSWORD``.
``/login`` (HTTP basic auth) returns a bearer token valid for 30 minutes; the provider caches
it, logs in again when it is older than that, and once more when a data call answers 401.
Values arrive in lbs CO2/MWh and are converted to gCO2/kWh.
"""

from __future__ import annotations

import base64
import os
import re
from datetime import datetime, timedelta
from typing import Any, Callable

import httpx

from ..errors import ProviderConfigError, ProviderResponseError
from ..series import CarbonSeries
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

USERNAME_ENV = "WATTTIME_USERNAME"
PASSWORD_ENV = "WATTTIME_PASSWORD"
SIGNAL = "marginal (WattTime MOER)"
SIGNAL_TYPE = "co2_moer"
UNITS = "lbs_co2_per_mwh"
#: 1 lb/MWh = 453.59237 g / 1,000 kWh = 0.45359237 g/kWh.
LBS_PER_MWH_TO_G_PER_KWH = 0.45359237
TOKEN_MAX_AGE = timedelta(minutes=30)
_REGION = re.compile(r"[A-Z0-9_]+")


def parse_region(region: str) -> str:
    """The WattTime region code of ``region`` (upper-cased), e.g. ``CAISO_NORTH``.

    Raises:
        UnknownRegionError: not shaped like a WattTime region code.
    """
    return region_matching(region, _REGION, provider="watttime", expected="a region code such as 'CAISO_NORTH' or 'PJM_DC'")


class WattTimeProvider(HttpProvider):
    """MOER forecasts from WattTime v3, converted to gCO2eq/kWh.

    Args:
        username: Defaults to the ``WATTTIME_USERNAME`` environment variable.
        password: Defaults to the ``WATTTIME_PASSWORD`` environment variable.
        base_url: The API root.
        timeout: httpx timeout (always set).
        retry: The retry policy.
        clock: Returns the current aware UTC time; decides when the token has expired.
    """

    name = "watttime"

    def __init__(
        self,
        username: str | None = None,
        password: str | None = None,
        *,
        base_url: str = "https://api.watttime.org",
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        clock: Callable[[], datetime] = utc_now,
    ):
        super().__init__(base_url, timeout=timeout, retry=retry)
        self._username = username if username is not None else os.environ.get(USERNAME_ENV)
        self._password = password if password is not None else os.environ.get(PASSWORD_ENV)
        self._register_secret(self._username)
        self._register_secret(self._password)
        if self._username and self._password:  # what basic auth sends: a server echoing headers must not leak it
            self._register_secret(base64.b64encode(f"{self._username}:{self._password}".encode()).decode())
        self._clock = clock
        self._token: str | None = None
        self._token_fetched_at: datetime | None = None

    def forecast(self, region: str, start: datetime, end: datetime) -> ProviderForecast:
        """The current MOER forecast, trimmed to the slots that overlap ``[start, end)``."""
        code = parse_region(region)
        check_period(start, end)
        series, generated_at = self._fetch(code)
        series = self.trimmed(series, start, end, code)
        note = f"generated_at {generated_at}" if generated_at else ""
        return ProviderForecast(series, code, self.name, "forecast", SIGNAL, self._clock(), note)

    def current(self, region: str) -> IntensityReading:
        """The first point of the current forecast (WattTime's v3 forecast starts now)."""
        code = parse_region(region)
        series, _ = self._fetch(code)
        at, value = next(iter(series))
        return IntensityReading(code, at, value, self.name, "forecast", SIGNAL, "first point of the current forecast")

    # --- HTTP ------------------------------------------------------------------------------
    def _fetch(self, code: str) -> tuple[CarbonSeries, str | None]:
        """The whole current forecast for ``code`` and its ``generated_at``."""
        payload = self.get_json(
            "/v3/forecast",
            region=code,
            params={"region": code, "signal_type": SIGNAL_TYPE},
            headers=self._auth_headers(code),
            on_auth_failure=lambda: self._auth_headers(code, refresh=True),
        )
        data = payload.get("data") if isinstance(payload, dict) else None
        meta = payload.get("meta") if isinstance(payload, dict) else None
        meta = meta if isinstance(meta, dict) else {}
        if not isinstance(data, list):
            raise self._error(ProviderResponseError, code, "the payload has no 'data' list")
        if meta.get("units", UNITS) != UNITS:
            raise self._error(ProviderResponseError, code, f"expected units {UNITS!r}, got {meta['units']!r}")
        period = meta.get("data_point_period_seconds")
        if period is not None and (isinstance(period, bool) or not isinstance(period, int) or period <= 0):
            raise self._error(ProviderResponseError, code, f"meta.data_point_period_seconds is invalid: {period!r}")
        points = []
        for i, row in enumerate(data):
            if not isinstance(row, dict):
                raise self._error(ProviderResponseError, code, f"data[{i}] is not an object")
            at = parse_timestamp(row.get("point_time"), provider=self.name, region=code, field=f"data[{i}].point_time")
            points.append((at, self._lbs_to_grams(row.get("value"), i, code)))
        granularity = timedelta(seconds=period) if period else None
        series = series_from_payload_points(points, provider=self.name, region=code, granularity=granularity)
        generated_at = meta.get("generated_at")
        return series, generated_at if isinstance(generated_at, str) else None

    def _auth_headers(self, code: str, *, refresh: bool = False) -> dict[str, str]:
        """The bearer header, logging in first when there is no token, it is too old, or
        ``refresh`` asks for a new one."""
        now = self._clock()
        if refresh or self._token is None or now - self._token_fetched_at >= TOKEN_MAX_AGE:
            self._token = self._login(code)
            self._token_fetched_at = now
        return {"Authorization": f"Bearer {self._token}"}

    def _login(self, code: str) -> str:
        if not (self._username and self._password):
            given = ((USERNAME_ENV, self._username), (PASSWORD_ENV, self._password))
            unset = [env for env, value in given if not value]
            detail = f"no credentials ({' and '.join(unset)} not set): pass username and password or set "
            raise self._error(ProviderConfigError, code, detail + f"{USERNAME_ENV} and {PASSWORD_ENV}")
        payload = self.get_json("/login", region=code, auth=(self._username, self._password))
        token = payload.get("token") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token:
            raise self._error(ProviderResponseError, code, "the /login answer holds no token")
        self._register_secret(token, replaces=self._token)
        return token

    def _lbs_to_grams(self, value: Any, index: int, code: str) -> float:
        return self.intensity(value, f"data[{index}].value (MOER)", code) * LBS_PER_MWH_TO_G_PER_KWH
