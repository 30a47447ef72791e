"""Typed errors of the carbon module.

Provider errors say which provider, which region and what went wrong, and never carry a key:
messages are built from our own words and the provider's status code, not from request headers.
"""

from __future__ import annotations

from .._messages import redact_urls, shorten
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the record module imports nothing from here
    from ..records import GateDecisionRecord


class CarbonError(Exception):
    """Base class of every error raised by ``greenkfp.components.carbon``."""


class InvalidSeriesError(CarbonError, ValueError):
    """A carbon-intensity series is unsorted, has a gap or an overlap, or holds a bad value."""


class WindowSearchError(CarbonError, ValueError):
    """No candidate window fits the requested period (for example a deadline too early)."""


class UnknownRegionError(CarbonError, ValueError):
    """A region is not served by a provider; the message lists the supported ones."""


class ProviderOptionError(CarbonError, ValueError):
    """``provider_options`` names an unknown provider or option, or gives an option a bad value.

    ``provider``, ``option`` and ``value`` say which (``option`` is None for a bad provider name
    or a provider's options that are not a mapping).
    """

    def __init__(self, message: str, provider: str | None = None, option: str | None = None, value=None):
        super().__init__(message)
        self.provider = provider
        self.option = option
        self.value = value


class ProviderError(CarbonError):
    """A forecast provider failed. ``provider`` and ``region`` say which call failed."""

    kind = "provider_error"

    def __init__(self, provider: str, region: str | None, detail: str):
        self.provider = provider
        self.region = region
        self.detail = redact_urls(detail)  # a base URL may carry user:secret@
        where = f"region {shorten(region)}" if region else "no region"
        super().__init__(f"{provider} ({where}): {self.detail}")


class ProviderConfigError(ProviderError):
    """The provider is not configured: a missing credential or base URL."""

    kind = "config"


class ProviderAuthError(ProviderError):
    """The provider rejected the credentials (HTTP 401 or 403)."""

    kind = "auth"


class ProviderRateLimitedError(ProviderError):
    """The provider kept answering HTTP 429 after the bounded retries."""

    kind = "rate_limited"


class ProviderUnavailableError(ProviderError):
    """Server errors, timeouts or connection failures after the bounded retries."""

    kind = "unavailable"


class ProviderResponseError(ProviderError):
    """The provider answered, but with something unusable: bad JSON, no points, a gap."""

    kind = "bad_response"


class GateError(CarbonError):
    """The gate cannot decide and its policy is ``fail_closed``.

    ``record`` is the decision record built so far, so a caller can still log it.
    """

    def __init__(self, message: str, record: GateDecisionRecord | None = None):
        super().__init__(message)
        self.record = record
