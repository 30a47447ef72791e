"""Carbon-intensity providers behind one interface, looked up by name.

========================  ==========================================================  =========
name                      source                                                      key
========================  ==========================================================  =========
``embedded``              real hourly Electricity Maps data 2021-2024 in the package  none
``uk``                    UK Carbon Intensity API (national, region id or postcode)   none
``electricitymaps``       Electricity Maps v3 forecast                                ``ELECTRICITYMAPS_API_KEY``
``watttime``              WattTime v3 forecast (MOER, lbs/MWh converted to g/kWh)     ``WATTTIME_USERNAME``, ``WATTTIME_PASSWORD``
``carbon_aware_sdk``      a Carbon Aware SDK WebAPI you run                           ``CARBON_AWARE_SDK_URL`` (base URL)
========================  ==========================================================  =========
"""

from __future__ import annotations

import importlib

from .base import (
    CarbonProvider,
    HttpProvider,
    IntensityReading,
    ProviderForecast,
    RetryPolicy,
)

# name -> (module, class); imported lazily so the offline default never loads HTTP code paths.
_REGISTRY: dict[str, tuple[str, str]] = {
    "embedded": (".embedded", "EmbeddedProvider"),
    "uk": (".uk", "UKCarbonIntensityProvider"),
    "electricitymaps": (".electricitymaps", "ElectricityMapsProvider"),
    "watttime": (".watttime", "WattTimeProvider"),
    "carbon_aware_sdk": (".carbon_aware_sdk", "CarbonAwareSdkProvider"),
}

PROVIDER_NAMES: tuple[str, ...] = tuple(_REGISTRY)


def provider_class(name: str) -> type[CarbonProvider]:
    """The provider class registered under ``name``."""
    try:
        module_name, class_name = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"provider must be one of {', '.join(PROVIDER_NAMES)}; got {name!r}") from None
    return getattr(importlib.import_module(module_name, __name__), class_name)


def get_provider(name: str, **options) -> CarbonProvider:
    """A provider instance by name; ``options`` go to its constructor (credentials default to
    the environment variables in the table above)."""
    return provider_class(name)(**options)


def check_regions(provider: str, regions) -> None:
    """Every region in a form ``provider`` serves, checked offline where the provider can (the
    embedded zones; the shape of a UK or WattTime region): an unknown region is bad input, named
    now, not an error in the middle of a run or a crash-looping server. The one region check of
    the gate's options, ``greenkfp serve --region`` and the serving manifests' region.

    Raises:
        ValueError: the first region the provider does not serve (UnknownRegionError for the
            embedded data, naming the supported zones).
    """
    for region in regions:
        if provider == "embedded":
            from .embedded import EmbeddedProvider

            EmbeddedProvider().zone_index(region)
        else:
            parse = getattr(importlib.import_module(_REGISTRY[provider][0], __name__), "parse_region", None) \
                if provider in _REGISTRY else None
            if parse is not None:
                parse(region)


__all__ = [
    "CarbonProvider",
    "check_regions",
    "HttpProvider",
    "IntensityReading",
    "PROVIDER_NAMES",
    "ProviderForecast",
    "RetryPolicy",
    "get_provider",
    "provider_class",
]
