"""The carbon-intensity service: the one place outside the gate that opens providers.

Everyone who prices carbon asks here, never a provider directly:

* :func:`parse_provider_options` reads provider options in their one shape, a mapping per
  provider name (``{"embedded": {"replay_year": 2023}, "uk": {"base_url": "..."}}``), checks
  every provider and option name against what that provider's constructor accepts, and
  restores the integers kfp widened to floats on the way in (a dict parameter travels as a
  protobuf Struct, so ``2023`` arrives as ``2023.0``);
* :func:`intensity_over`: the time-weighted intensity of a region over ``[start, end)`` from a
  provider (training prices its fit's hours with it);
* :func:`annual_average`: the mean intensity of a region over a full year of the embedded data
  (the SCI's ``I`` for inference that runs around the clock).

Both answer with an :class:`IntensityEstimate` that says what the number is and where it came
from. :func:`intensity_series` returns a provider's whole answer, for callers that show it.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import functools
import inspect
import json
import math
import types
import typing
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, Mapping

import numpy as np

from .errors import ProviderConfigError, ProviderOptionError, ProviderResponseError
from .providers import PROVIDER_NAMES, CarbonProvider, ProviderForecast, provider_class
from .providers.base import DataKind
from .series import to_epoch_seconds
from .windows import cumulative_intensity

#: Options refused in ``provider_options``: options end up in compiled pipeline YAML and in
#: records, so credentials travel only through environment variables (or Kubernetes secrets).
CREDENTIAL_OPTIONS = frozenset({"api_key", "password", "username", "token", "auth_token"})
UNITS = "gCO2eq/kWh"
#: The world's average grid intensity in 2023, 480 gCO2/kWh (Ember, Global Electricity Review
#: 2024): the stated default when a region has no data and the gate chose no window.
WORLD_AVERAGE_G_PER_KWH = 480.0
WORLD_AVERAGE_SOURCE = "world average 2023, Ember Global Electricity Review 2024"


@dataclass(frozen=True)
class IntensityEstimate:
    """A grid carbon intensity and what it stands for.

    Attributes:
        gco2_per_kwh: The intensity, gCO2eq/kWh.
        region: The region as the provider names it (``GB``, ``region:13``, ``DE-LU``).
        provider: The provider that served the data (``embedded``, ``uk``, ...).
        data_kind: ``forecast``, ``historical`` or ``replayed_historical`` (recorded data of
            another period mapped onto this one; never a forecast).
        signal: What the provider measures (``lifecycle average (Electricity Maps, embedded)``).
        basis: How the number was worked out, in words.
        start: Start of the interval the number stands for (UTC).
        end: End of that interval, exclusive.
        note: The provider's note on its data (replay mapping, estimated zone), if any.
    """

    gco2_per_kwh: float
    region: str
    provider: str
    data_kind: DataKind
    signal: str
    basis: str
    start: datetime
    end: datetime
    note: str = ""

    def to_dict(self) -> dict:
        """JSON-ready, times in ISO 8601."""
        data = dataclasses.asdict(self)
        data["start"], data["end"] = self.start.isoformat(), self.end.isoformat()
        data["units"] = {"intensity": UNITS}
        return data


# --------------------------------------------------------------------------- provider options


@functools.lru_cache(maxsize=None)
def provider_option_types(name: str) -> dict[str, Any]:
    """The options provider ``name`` takes through ``provider_options``, with their types: its
    constructor's parameters less credentials and callables (a clock cannot travel as JSON)."""
    cls = provider_class(name)
    hints = typing.get_type_hints(cls.__init__)
    accepted = {}
    for parameter in _init_parameters(cls):
        hint = hints.get(parameter, Any)
        if parameter in CREDENTIAL_OPTIONS or _is_callable(hint):
            continue
        accepted[parameter] = hint
    return accepted


def _init_parameters(cls: type) -> list[str]:
    return [p.name for p in inspect.signature(cls.__init__).parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _is_callable(hint: Any) -> bool:
    return typing.get_origin(hint) is collections.abc.Callable or hint is collections.abc.Callable


def _members(hint: Any) -> tuple:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _describe(hint: Any) -> str:
    words = []
    for member in _members(hint):
        if member is type(None):
            words.append("null")
        elif typing.get_origin(member) is Literal:
            words.append("one of " + ", ".join(repr(v) for v in typing.get_args(member)))
        elif member is int:
            words.append("a whole number")
        elif member is float:
            words.append("a number")
        elif member is str:
            words.append("a string")
        elif dataclasses.is_dataclass(member):
            words.append(f"a mapping of {', '.join(f.name for f in dataclasses.fields(member))}")
        else:
            words.append(getattr(member, "__name__", str(member)))
    return " or ".join(words)


def _coerce(value: Any, hint: Any, provider: str, option: str) -> Any:
    """``value`` checked against ``hint``; a whole float for an int comes back as an int."""
    if hint is Any:
        return value
    for member in _members(hint):
        if member is type(None):
            if value is None:
                return None
        elif typing.get_origin(member) is Literal:
            if not isinstance(value, bool) and value in typing.get_args(member):
                return value
        elif member is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, float) and math.isfinite(value) and value.is_integer():
                return int(value)  # kfp passes a dict parameter as a protobuf Struct: 2023 -> 2023.0
        elif member is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return value
        elif member is str:
            if isinstance(value, str):
                return value
        elif dataclasses.is_dataclass(member) and isinstance(value, Mapping):
            fields = typing.get_type_hints(member)
            known = [f.name for f in dataclasses.fields(member)]
            result = {}
            for key, item in value.items():
                if key not in known:
                    raise ProviderOptionError(
                        f"provider_options[{provider!r}][{option!r}] has an unknown key {key!r} (value {item!r}); "
                        f"known: {', '.join(known)}", provider, f"{option}.{key}", item)
                result[key] = _coerce(item, fields[key], provider, f"{option}.{key}")
            return result  # stays JSON: the provider builds the policy from it
        elif isinstance(member, type) and isinstance(value, member) and not isinstance(value, bool):
            return value  # a Python caller's object (an httpx.Timeout, a RetryPolicy)
    path = "][".join(repr(p) for p in option.split("."))
    extra = ""
    if isinstance(value, float) and any(m is int for m in _members(hint)) and not value.is_integer():
        extra = " (a whole number is needed; kfp's 2023.0 is read as 2023)"
    raise ProviderOptionError(
        f"provider_options[{provider!r}][{path}] must be {_describe(hint)}, got {value!r}{extra}", provider, option, value)


def parse_provider_options(options: Mapping[str, Any] | str | None) -> dict[str, dict[str, Any]]:
    """Provider options in their one shape, validated: ``{provider name: {option: value}}``.

    Args:
        options: A mapping per provider name, e.g. ``{"embedded": {"replay_year": 2023},
            "uk": {"base_url": "http://127.0.0.1:8080"}}``; JSON text of one; or None/empty.

    Returns:
        A new dict of dicts, integers restored (``2023.0`` -> ``2023``), safe to pass again.

    Raises:
        ProviderOptionError: not a mapping; an unknown provider (a flat option such as
            ``{"replay_year": 2023}`` is reported as such); an option the provider's constructor
            does not take; a credential (they come from environment variables); a value of the
            wrong type, such as a non-integral float for an integer option. The message names
            the provider, the option and the value.
    """
    if options is None:
        return {}
    if isinstance(options, str):
        if not options.strip():
            return {}
        try:
            options = json.loads(options)
        except json.JSONDecodeError as exc:
            raise ProviderOptionError(f"provider_options must be a JSON object, got {options!r} ({exc.msg})") from None
    if not isinstance(options, Mapping):
        raise ProviderOptionError(
            "provider_options must be a mapping of provider name to its options, such as "
            f"{{'embedded': {{'replay_year': 2023}}}}; got {options!r}", value=options)
    parsed: dict[str, dict[str, Any]] = {}
    for name, settings in options.items():
        if name not in PROVIDER_NAMES:
            owners = [p for p in PROVIDER_NAMES if name in provider_option_types(p)]
            hint = (f"; {name!r} is an option of {', '.join(owners)}, not a provider: nest it, as in "
                    f"{{{owners[0]!r}: {{{name!r}: {settings!r}}}}}") if owners else ""
            raise ProviderOptionError(
                f"provider_options has an unknown provider {name!r}; known: {', '.join(PROVIDER_NAMES)}{hint}",
                name, None, settings)
        if settings is None:
            settings = {}
        if not isinstance(settings, Mapping):
            raise ProviderOptionError(
                f"provider_options[{name!r}] must be a mapping of option to value, got {settings!r}", name, None, settings)
        secret = sorted(CREDENTIAL_OPTIONS.intersection(settings))
        if secret:
            raise ProviderOptionError(
                f"provider_options[{name!r}] must not carry credentials ({', '.join(secret)}); "
                "set them as environment variables (on Kubeflow, from a Kubernetes secret)", name, secret[0])
        accepted = provider_option_types(name)
        parsed[name] = {}
        for option, value in settings.items():
            if option not in accepted:
                raise ProviderOptionError(
                    f"provider_options[{name!r}] has an unknown option {option!r} (value {value!r}); "
                    f"{name} takes: {', '.join(accepted) or 'no options'}", name, option, value)
            parsed[name][option] = _coerce(value, accepted[option], name, option)
        _check_values(name, parsed[name])
    return parsed


def _check_values(name: str, options: dict[str, Any]) -> None:
    """The values' own rules, checked when the options are read (not when a provider is first
    used, where a mistake would look like an outage): bounded retries and timeouts, an http(s)
    base URL without credentials (options travel in compiled YAML and records), a replay year the
    embedded data has."""
    from .providers.base import RetryPolicy, check_base_url, check_timeout

    def fail(option: str, exc: Exception) -> ProviderOptionError:
        return ProviderOptionError(f"provider_options[{name!r}][{option!r}]: {exc}", name, option, options.get(option))

    try:
        if isinstance(options.get("retry"), Mapping):
            RetryPolicy(**options["retry"])
    except (TypeError, ValueError) as exc:
        raise fail("retry", exc) from None
    try:
        if "timeout" in options:
            check_timeout(options["timeout"])
    except ValueError as exc:
        raise fail("timeout", exc) from None
    if options.get("base_url") is not None:
        try:
            url = check_base_url(options["base_url"])
        except ValueError as exc:
            raise fail("base_url", exc) from None
        if "@" in url.split("//", 1)[-1].split("/", 1)[0]:
            raise ProviderOptionError(
                f"provider_options[{name!r}]['base_url'] must not carry credentials (user:password@): options "
                "travel in compiled YAML and records; set them in the provider's environment variable", name, "base_url")
    if name == "embedded" and options.get("replay_year") is not None:
        from .providers.embedded import EmbeddedProvider

        try:
            EmbeddedProvider(replay_year=options["replay_year"])
        except ValueError as exc:
            raise fail("replay_year", exc) from None
        except ProviderConfigError:
            pass  # a build without the embedded data (portable): the gate's failure policy decides


def open_provider(name: str, provider_options: Mapping[str, Any] | str | None = None) -> CarbonProvider:
    """Provider ``name`` built with its entry of ``provider_options`` (parsed and validated)."""
    options = parse_provider_options(provider_options)
    return provider_class(name)(**options.get(name, {}))


# --------------------------------------------------------------------------- intensities


def intensity_series(
    region: str,
    start: datetime,
    end: datetime,
    *,
    provider: str = "embedded",
    provider_options: Mapping[str, Any] | str | None = None,
) -> ProviderForecast:
    """The provider's answer for ``region`` over ``[start, end)``: the series and its provenance."""
    with open_provider(provider, provider_options) as source:
        return source.forecast(region, start, end)


def intensity_over(
    region: str,
    start: datetime,
    end: datetime,
    *,
    provider: str = "embedded",
    provider_options: Mapping[str, Any] | str | None = None,
) -> IntensityEstimate:
    """The time-weighted average intensity of ``region`` over ``[start, end)``.

    Each slot of the provider's series counts for the part of the interval it overlaps, so a
    fit of 20 minutes across an hour boundary weighs the two hours 10:10 (say). An interval
    shorter than a second (a quick fit) gets the intensity of the slot containing ``start``.

    Raises:
        ValueError: a naive datetime, or ``end`` before ``start``.
        ProviderOptionError: bad ``provider_options``.
        UnknownRegionError: the provider does not serve ``region``.
        ProviderError: the provider failed, or its data does not cover the whole interval.
    """
    t0, t1 = to_epoch_seconds(start, field="start"), to_epoch_seconds(end, field="end")
    if end < start:
        raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
    # Providers serve whole seconds; a sub-second interval still needs one to read its slot.
    answer = intensity_series(region, start, max(end, start + timedelta(seconds=1)),
                              provider=provider, provider_options=provider_options)
    series = answer.series
    first, last = int(series.starts[0]), int(series.starts[-1]) + series.granularity_s
    if t0 < first or max(t1, t0 + 1) > last:
        raise ProviderResponseError(
            answer.provider, answer.region,
            f"the data covers {series.start.isoformat()} to {series.end.isoformat()}, "
            f"not all of {start.isoformat()} to {end.isoformat()}")
    kind = answer.data_kind.replace("_", " ")
    if t1 <= t0:
        value = series.value_at(start)
        basis = f"{answer.provider} {kind} intensity of the {series.granularity} slot containing {start.isoformat()}"
    else:
        integral = cumulative_intensity(series, np.array([t0, t1], dtype=np.int64))
        value = float((integral[1] - integral[0]) / (t1 - t0))
        slots = len(series.between(start, end))
        basis = (f"time-weighted average of {slots} {series.granularity} slot(s) of {answer.provider} {kind} "
                 f"intensity over {start.isoformat()} to {end.isoformat()}")
    return IntensityEstimate(float(value), answer.region, answer.provider, answer.data_kind, answer.signal,
                             basis, start, end, answer.note)


def _full_years(data) -> list[int]:
    return [y for y in data.years
            if to_epoch_seconds(datetime(y, 1, 1, tzinfo=timezone.utc)) >= data.start_epoch_s
            and to_epoch_seconds(datetime(y + 1, 1, 1, tzinfo=timezone.utc)) <= data.end_epoch_s]


def annual_average(
    region: str,
    *,
    year: int | None = None,
    provider_options: Mapping[str, Any] | str | None = None,
) -> IntensityEstimate:
    """The mean hourly intensity of ``region`` over one full year of the embedded data.

    The year is ``year`` when given, else the embedded provider's ``replay_year`` from
    ``provider_options`` (a run replaying 2023 prices everything with 2023's data), else the
    latest full year of the data. The embedded ``signal`` option applies too. The result is
    the recorded data of that year (``historical``), whatever period it is used for.

    Raises:
        ValueError: ``year`` is not a full year of the embedded data.
        ProviderOptionError: bad ``provider_options``.
        UnknownRegionError: ``region`` is not an embedded zone.
        ProviderConfigError: this build has no embedded data (portable components).
    """
    from .providers.embedded import EmbeddedProvider

    options = parse_provider_options(provider_options).get("embedded", {})
    source = EmbeddedProvider(signal=options.get("signal", "lifecycle"))  # recorded data, never replayed
    full = _full_years(source.data)
    if year is not None:
        if isinstance(year, float) and year.is_integer():
            year = int(year)
        chosen, why = year, "the year asked for"
    elif options.get("replay_year") is not None:
        chosen, why = options["replay_year"], "the replay year of provider_options['embedded']"
    else:
        chosen, why = full[-1], "the latest full year of the embedded data"
    if isinstance(chosen, bool) or chosen not in full:
        raise ValueError(f"year must be a full year of the embedded data ({', '.join(map(str, full))}), got {chosen!r}")
    start, end = datetime(chosen, 1, 1, tzinfo=timezone.utc), datetime(chosen + 1, 1, 1, tzinfo=timezone.utc)
    answer = source.forecast(region, start, end)
    values = answer.series.values  # one-hour slots: their mean is the time-weighted average
    return IntensityEstimate(
        float(np.mean(values)), answer.region, answer.provider, answer.data_kind, answer.signal,
        f"mean of the {values.size} hourly values of {chosen} ({why})", start, end, answer.note,
    )


__all__ = [
    "CREDENTIAL_OPTIONS",
    "IntensityEstimate",
    "WORLD_AVERAGE_G_PER_KWH",
    "WORLD_AVERAGE_SOURCE",
    "annual_average",
    "intensity_over",
    "intensity_series",
    "open_provider",
    "parse_provider_options",
    "provider_option_types",
]
