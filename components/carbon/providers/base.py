"""The provider interface and the HTTP plumbing every online provider shares.

A provider answers two questions for a region: the intensity forecast over a period
(:meth:`CarbonProvider.forecast`) and the current value (:meth:`CarbonProvider.current`).
HTTP providers go through :class:`HttpProvider`: an httpx client with timeouts always set,
bounded retries with exponential backoff on 5xx, 429 (honouring ``Retry-After``), timeouts and
connection errors, and typed errors that never carry a credential.
"""

from __future__ import annotations

import abc
import base64
import json
import logging
import math
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx
import tenacity

from ..._messages import redact_urls, shorten

from ..errors import (
    InvalidSeriesError,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimitedError,
    ProviderResponseError,
    ProviderUnavailableError,
    UnknownRegionError,
)
from ..series import CarbonSeries, to_epoch_seconds

logger = logging.getLogger("greenkfp.carbon")

DataKind = Literal["forecast", "historical", "replayed_historical"]


@dataclass(frozen=True, eq=False)
class ProviderForecast:
    """A provider's answer: the series plus where it came from and what kind of data it is.

    ``data_kind`` is ``forecast`` for a live forecast, ``historical`` for recorded data of the
    requested period, and ``replayed_historical`` for recorded data of another period mapped
    onto the requested one (never to be presented as a forecast).
    """

    series: CarbonSeries
    region: str
    provider: str
    data_kind: DataKind
    signal: str
    retrieved_at: datetime
    note: str = ""

    def describe(self) -> dict:
        return {
            "provider": self.provider,
            "region": self.region,
            "data_kind": self.data_kind,
            "signal": self.signal,
            "retrieved_at": self.retrieved_at.isoformat(),
            "granularity_seconds": self.series.granularity_s,
            "points": len(self.series),
            "first_point": self.series.start.isoformat(),
            "data_end": self.series.end.isoformat(),
            "note": self.note,
        }


@dataclass(frozen=True)
class IntensityReading:
    """One intensity value in gCO2eq/kWh for the slot starting at ``at``."""

    region: str
    at: datetime
    gco2_per_kwh: float
    provider: str
    data_kind: DataKind
    signal: str
    note: str = ""


class CarbonProvider(abc.ABC):
    """A source of grid carbon intensity for named regions."""

    #: The name used in configuration and records (``embedded``, ``uk``, ...).
    name: str = ""

    @abc.abstractmethod
    def forecast(self, region: str, start: datetime, end: datetime) -> ProviderForecast:
        """Intensity for ``region`` covering as much of ``[start, end)`` as the source has."""

    @abc.abstractmethod
    def current(self, region: str) -> IntensityReading:
        """The intensity of the slot that contains now."""

    def close(self) -> None:
        """Release network resources (no-op for offline providers)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: ``attempts`` tries in all, exponential backoff between them.

    A ``Retry-After`` header (seconds or an HTTP date) replaces the backoff, capped at
    ``max_retry_after_s`` so a provider cannot stall a pipeline for an unbounded time.
    """

    attempts: int = 4
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0
    max_retry_after_s: float = 60.0
    #: Longest one request may take in all, seconds: a server dripping a byte at a time within
    #: the read timeout must not hold a request for minutes.
    request_deadline_s: float = 30.0

    def __post_init__(self) -> None:
        # bounded, so that no option can hold a pipeline for hours
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int) or not 1 <= self.attempts <= 10:
            raise ValueError(f"retry.attempts must be a whole number from 1 to 10, got {self.attempts!r}")
        for name, top in (("backoff_initial_s", 60.0), ("backoff_max_s", 300.0), ("max_retry_after_s", 600.0),
                          ("request_deadline_s", 300.0)):
            value = getattr(self, name)
            low_ok = value > 0 if name == "request_deadline_s" else value >= 0
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not low_ok or value > top:
                raise ValueError(f"retry.{name} must be a number of seconds {'> 0' if name == 'request_deadline_s' else '>= 0'} "
                                 f"and at most {top:g}, got {value!r}")


DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
#: A forecast is kilobytes; a larger answer is a broken or hostile server.
MAX_RESPONSE_BYTES = 20_000_000


class _Retryable(Exception):
    """Internal: a failure worth another try, with the typed error to raise if tries run out."""

    def __init__(self, error: ProviderError, retry_after_s: float | None = None):
        super().__init__(str(error))
        self.error = error
        self.retry_after_s = retry_after_s


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


class HttpProvider(CarbonProvider):
    """Base of the online providers: one httpx client, retries, typed errors, no leaked keys.

    Args:
        base_url: The API root (overridable so tests and proxies can point elsewhere).
        timeout: httpx timeout; always set, never ``None``.
        retry: The retry policy.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | dict | None = None,
    ):
        check_timeout(timeout)
        # http://user:secret@host (from an environment variable): the credentials become httpx's
        # basic auth, so the URL that httpx logs and we print never carries them
        self.base_url, auth = split_userinfo(check_base_url(base_url))
        # A dict is accepted so the policy can travel as JSON (component provider_options).
        self.retry = RetryPolicy(**retry) if isinstance(retry, dict) else (retry or RetryPolicy())
        self._client_options = dict(base_url=self.base_url, timeout=timeout, follow_redirects=False, auth=auth)
        self._client = httpx.Client(**self._client_options)
        self._secrets: list[str] = []
        if auth is not None:  # and what basic auth sends, should a server echo the header back
            user, password = auth
            for secret in (password, user, base64.b64encode(f"{user}:{password}".encode()).decode()):
                self._register_secret(secret)

    def close(self) -> None:
        self._client.close()

    # Secret values registered here are scrubbed from every message we build.
    def _register_secret(self, value: str | None, replaces: str | None = None) -> None:
        if replaces in self._secrets:
            self._secrets.remove(replaces)
        if value and value not in self._secrets:
            self._secrets.append(value)
            self._secrets.sort(key=len, reverse=True)  # scrub longer secrets before their substrings

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return redact_urls(text)

    def _error(self, cls: type[ProviderError], region: str | None, detail: str) -> ProviderError:
        return cls(self.name, region, self._scrub(detail))

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after_s is not None:
            return min(exc.retry_after_s, self.retry.max_retry_after_s)
        backoff = self.retry.backoff_initial_s * 2 ** (state.attempt_number - 1)
        return min(backoff, self.retry.backoff_max_s)

    def request(
        self,
        method: str,
        path: str,
        *,
        region: str | None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        on_auth_failure=None,
    ) -> httpx.Response:
        """Send one request with the retry policy; return the 2xx response or raise typed.

        ``on_auth_failure``, when given, is called once after a 401 (for example to fetch a new
        token) and must return the headers for the retry; a second 401 is an auth error.
        """
        state = {"headers": dict(headers or {}), "reauthenticated": False}

        def attempt() -> httpx.Response:
            try:
                response = self._send(method, path, params=params, headers=state["headers"],
                                      # auth=None would switch off the client's own (URL) basic auth
                                      **({} if auth is None else {"auth": auth}))
            except httpx.TimeoutException:
                raise _Retryable(self._error(ProviderUnavailableError, region, f"timed out calling {path}")) from None
            except httpx.DecodingError as exc:
                raise self._error(ProviderResponseError, region, f"unusable answer from {path}: {exc}") from None
            except httpx.RequestError as exc:
                raise _Retryable(
                    self._error(ProviderUnavailableError, region, f"cannot reach {self.base_url}: {type(exc).__name__}")
                ) from None
            status = response.status_code
            if status == 401 and on_auth_failure is not None and not state["reauthenticated"]:
                state["reauthenticated"] = True
                state["headers"] = {**state["headers"], **on_auth_failure()}
                return attempt()
            if status in (401, 403):
                raise self._error(ProviderAuthError, region, f"HTTP {status} from {path}: credentials rejected")
            if status == 429:
                raise _Retryable(
                    self._error(ProviderRateLimitedError, region, f"HTTP 429 from {path}: rate limited"),
                    parse_retry_after(response.headers.get("Retry-After")),
                )
            if status >= 500:
                raise _Retryable(
                    self._error(ProviderUnavailableError, region, f"HTTP {status} from {path}"),
                    parse_retry_after(response.headers.get("Retry-After")),  # 503 may say when
                )
            if status == 404 or status == 400:
                raise self._error(
                    ProviderResponseError, region, f"HTTP {status} from {path}: {self._short_body(response)}"
                )
            if not 200 <= status < 300:
                raise self._error(ProviderResponseError, region, f"unexpected HTTP {status} from {path}")
            return response

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retry.attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_Retryable),
            before_sleep=lambda s: logger.warning(
                "%s: %s; retry %d of %d", self.name, s.outcome.exception(), s.attempt_number, self.retry.attempts - 1
            ),
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Retryable as exc:
            error = exc.error
        except ProviderError as exc:
            error = exc
        # Drop the chain: the httpx exception behind it holds the request and its auth headers.
        error.__context__ = error.__cause__ = None
        raise error

    def _send(self, method: str, path: str, **kwargs) -> httpx.Response:
        """One request under a total deadline, slow headers included: it runs in a daemon thread,
        and when the deadline passes the client is closed (which ends the stuck read) and
        replaced."""
        deadline_s = self.retry.request_deadline_s
        outcome: dict = {}

        def work() -> None:
            try:
                outcome["response"] = self._read(method, path, time.monotonic() + deadline_s, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                outcome["error"] = exc

        worker = threading.Thread(target=work, daemon=True, name=f"greenkfp-{self.name}-request")
        worker.start()
        worker.join(deadline_s)
        if worker.is_alive():
            stuck, self._client = self._client, httpx.Client(**self._client_options)
            stuck.close()
            raise httpx.ReadTimeout(f"no complete answer within {deadline_s:g} s")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["response"]

    def _read(self, method: str, path: str, deadline: float, **kwargs) -> httpx.Response:
        """The response read in chunks, checking the deadline and a size cap."""
        with self._client.stream(method, path, **kwargs) as streamed:
            body, size = [], 0
            for chunk in streamed.iter_bytes():
                body.append(chunk)
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise httpx.DecodingError(f"response larger than {MAX_RESPONSE_BYTES:,} bytes")
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout(f"no complete answer within {self.retry.request_deadline_s:g} s")
            return httpx.Response(streamed.status_code, headers=streamed.headers, content=b"".join(body),
                                  request=streamed.request)

    # --- helpers shared by the provider modules ----------------------------------------------
    def intensity(self, value: Any, field: str, region: str | None) -> float:
        """A payload's intensity as a float; anything but a finite number >= 0 is a response error."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise self._error(ProviderResponseError, region, f"{field} is not a valid intensity: {value!r}")
        return float(value)

    def trimmed(self, series: CarbonSeries, start: datetime, end: datetime, region: str | None) -> CarbonSeries:
        """The slots of ``series`` that overlap ``[start, end)``; none is a response error."""
        try:
            return series.between(start, end)
        except InvalidSeriesError as exc:
            raise self._error(ProviderResponseError, region, str(exc)) from None

    def _short_body(self, response: httpx.Response, limit: int = 200) -> str:
        text = self._scrub(response.text.strip().replace("\n", " "))  # scrub before cutting
        return text[:limit] or "(empty body)"

    def get_json(self, path: str, *, region: str | None, **kwargs) -> Any:
        """GET ``path`` and parse JSON; garbage is a :class:`ProviderResponseError`."""
        response = self.request("GET", path, region=region, **kwargs)
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise self._error(
                ProviderResponseError, region, f"malformed JSON from {path}: {self._short_body(response, 80)!r}"
            ) from None


#: Longest connect or read timeout a provider option may set, seconds.
MAX_TIMEOUT_S = 300.0


def check_timeout(timeout: Any) -> None:
    """An httpx timeout that is set, positive and at most :data:`MAX_TIMEOUT_S`."""
    if timeout is None:
        raise ValueError("timeout must be set for an HTTP provider, got None")
    if isinstance(timeout, httpx.Timeout):
        return
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) \
            or not 0 < timeout <= MAX_TIMEOUT_S:
        raise ValueError(f"timeout must be a number of seconds > 0 and at most {MAX_TIMEOUT_S:g}, got {timeout!r}")


def check_base_url(url: Any) -> str:
    """An http(s) URL with a host; anything else (ftp://, javascript:, empty) is refused up front."""
    text = url.strip() if isinstance(url, str) else ""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (a bad port raises)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        shown = redact_urls(str(url)).split("?", 1)[0].split("#", 1)[0]  # a query may hold a token
        raise ValueError(f"base_url must be an http(s):// URL with a host and no query or fragment, "
                         f"got {shown[:120]!r}{' with a query' if '?' in str(url) else ''}")
    return text


def split_userinfo(url: str) -> tuple[str, tuple[str, str] | None]:
    """``url`` without ``user:password@``, and those credentials (or None)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url.rstrip("/"), None
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    if ":" in parts.hostname:  # an IPv6 literal
        netloc = f"[{parts.hostname}]" + (f":{parts.port}" if parts.port else "")
    clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)).rstrip("/")
    return clean, (unquote(parts.username or ""), unquote(parts.password or ""))


def parse_timestamp(value: Any, *, provider: str, region: str | None, field: str) -> datetime:
    """An ISO 8601 timestamp from a payload as an aware UTC datetime, or a response error."""
    if not isinstance(value, str):
        raise ProviderResponseError(provider, region, f"{field} is not a timestamp string: {value!r}")
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ProviderResponseError(provider, region, f"{field} is not ISO 8601: {value!r}") from None
    if moment.tzinfo is None:
        # every provider we read documents zoned timestamps; guessing UTC would shift a local-time
        # payload by hours and put the "green" window at the wrong time
        raise ProviderResponseError(provider, region, f"{field} has no time zone: {value!r}")
    return moment.astimezone(timezone.utc)


def check_period(start: datetime, end: datetime) -> None:
    """``start`` and ``end`` are aware datetimes with ``end`` after ``start``."""
    if to_epoch_seconds(end, field="end") <= to_epoch_seconds(start, field="start"):
        raise ValueError(f"end must be after start, got start={start.isoformat()} end={end.isoformat()}")


def region_matching(region: Any, pattern: re.Pattern, *, provider: str, expected: str) -> str:
    """``region`` stripped and upper-cased when it fully matches ``pattern``, else an
    :class:`UnknownRegionError` that says what ``provider`` expects."""
    text = region.strip().upper() if isinstance(region, str) else ""
    if not pattern.fullmatch(text):
        raise UnknownRegionError(f"{provider}: unknown region {shorten(region)}; expected {expected}")
    return text


def series_from_payload_points(
    points: list[tuple[datetime, Any]],
    *,
    provider: str,
    region: str | None,
    granularity: timedelta | None = None,
) -> CarbonSeries:
    """Build a validated series from parsed payload points; every failure is a response error."""
    if not points:
        raise ProviderResponseError(provider, region, "the forecast holds no data points")
    try:
        values = [float(v) for _, v in points]
    except (TypeError, ValueError):
        raise ProviderResponseError(provider, region, "a forecast value is missing or not a number") from None
    try:
        return CarbonSeries.from_points(list(zip((p[0] for p in points), values)), granularity)
    except InvalidSeriesError as exc:
        raise ProviderResponseError(provider, region, f"unusable forecast: {exc}") from None


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


__all__ = [
    "CarbonProvider",
    "DataKind",
    "HttpProvider",
    "IntensityReading",
    "ProviderForecast",
    "RetryPolicy",
    "DEFAULT_TIMEOUT",
    "check_period",
    "region_matching",
    "parse_retry_after",
    "parse_timestamp",
    "series_from_payload_points",
    "utc_now",
]
