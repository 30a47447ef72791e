"""Grid carbon intensity: series, forecast providers, greenest-window search, the gate policy,
and the intensity service everyone else prices carbon with (:mod:`.intensity`).

Plain Python (no kfp import): the KFP adapter lives in ``component.py``.
"""

from .errors import (
    CarbonError,
    GateError,
    InvalidSeriesError,
    ProviderAuthError,
    ProviderConfigError,
    ProviderError,
    ProviderOptionError,
    ProviderRateLimitedError,
    ProviderResponseError,
    ProviderUnavailableError,
    UnknownRegionError,
    WindowSearchError,
)
from .gate import GateDecision, GatePolicy, decide
from .intensity import (
    IntensityEstimate,
    annual_average,
    intensity_over,
    intensity_series,
    parse_provider_options,
)
from .params import policy_from_params, write_decision_outputs
from .providers import PROVIDER_NAMES, CarbonProvider, ProviderForecast, RetryPolicy, get_provider
from .providers.embedded import ATTRIBUTION, EmbeddedProvider, embedded_zones
from .series import CarbonSeries
from .windows import Window, WindowChoice, WindowScores, best_window, rolling_average

__all__ = [
    "ATTRIBUTION",
    "CarbonError",
    "CarbonProvider",
    "CarbonSeries",
    "EmbeddedProvider",
    "GateDecision",
    "GateError",
    "GatePolicy",
    "IntensityEstimate",
    "InvalidSeriesError",
    "PROVIDER_NAMES",
    "ProviderAuthError",
    "ProviderConfigError",
    "ProviderError",
    "ProviderOptionError",
    "ProviderForecast",
    "ProviderRateLimitedError",
    "ProviderResponseError",
    "ProviderUnavailableError",
    "RetryPolicy",
    "UnknownRegionError",
    "Window",
    "WindowChoice",
    "WindowScores",
    "WindowSearchError",
    "annual_average",
    "best_window",
    "decide",
    "embedded_zones",
    "get_provider",
    "intensity_over",
    "intensity_series",
    "parse_provider_options",
    "policy_from_params",
    "rolling_average",
    "write_decision_outputs",
]
