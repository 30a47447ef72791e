"""HTTP providers against a local pytest-httpserver: payload parsing, retries, typed errors,
token handling and secret scrubbing. No request leaves localhost."""

from __future__ import annotations

import base64
import logging
import threading
import time
import types
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import httpx
import pytest
import tenacity
from werkzeug import Response

from greenkfp.components.carbon.errors import (
    ProviderAuthError,
    ProviderConfigError,
    ProviderError,
    ProviderRateLimitedError,
    ProviderResponseError,
    ProviderUnavailableError,
    UnknownRegionError,
)
from greenkfp.components.carbon.providers import get_provider
from greenkfp.components.carbon.providers.base import HttpProvider, RetryPolicy, parse_retry_after
from greenkfp.components.carbon.providers.carbon_aware_sdk import CarbonAwareSdkProvider
from greenkfp.components.carbon.providers.electricitymaps import ElectricityMapsProvider
from greenkfp.components.carbon.providers.uk import UKCarbonIntensityProvider
from greenkfp.components.carbon.providers.watttime import (
    LBS_PER_MWH_TO_G_PER_KWH,
    WattTimeProvider,
)

UTC = timezone.utc
START = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
RETRY = RetryPolicy(attempts=3, backoff_initial_s=0.01, backoff_max_s=0.02, max_retry_after_s=0.05)
TIMEOUT = httpx.Timeout(0.5)
SHORT_TIMEOUT = httpx.Timeout(0.1)
EM_KEY = "em-test-key"
WT_USER, WT_PASS, WT_TOKEN = "wt-user", "wt-pass", "wt-token-1"


# --- payload builders (the documented formats) ------------------------------------------------
def _minute(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%MZ")


def uk_national(values: list, start: datetime = START, slot: timedelta = timedelta(minutes=30)) -> dict:
    return {
        "data": [
            {
                "from": _minute(start + i * slot),
                "to": _minute(start + (i + 1) * slot),
                "intensity": {"forecast": v, "actual": None, "index": "moderate"},
            }
            for i, v in enumerate(values)
        ]
    }


def uk_regional(values: list, start: datetime = START, *, as_list: bool = False) -> dict:
    rows = uk_national(values, start)["data"]
    for row in rows:
        del row["intensity"]["actual"]
        row["generationmix"] = [{"fuel": "gas", "perc": 40.0}]
    region = {"regionid": 13, "dnoregion": "UKPN London", "shortname": "London", "data": rows}
    return {"data": [region] if as_list else region}


def em_forecast(values: list, start: datetime = START) -> dict:
    rows = [
        {"carbonIntensity": v, "datetime": (start + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z")}
        for i, v in enumerate(values)
    ]
    return {"zone": "DE", "forecast": rows, "updatedAt": "2024-03-01T11:55:00.000Z"}


def wt_forecast(
    values: list, start: datetime = START, *, period: int | None = 300, units: str = "lbs_co2_per_mwh"
) -> dict:
    step = timedelta(seconds=period or 300)
    rows = [{"point_time": (start + i * step).isoformat(), "value": v} for i, v in enumerate(values)]
    meta = {
        "region": "CAISO_NORTH",
        "signal_type": "co2_moer",
        "units": units,
        "generated_at": "2024-03-01T11:55:00+00:00",
    }
    if period is not None:
        meta["data_point_period_seconds"] = period
    return {"data": rows, "meta": meta}


def cas_forecast(values: list, start: datetime = START, *, duration: int = 5) -> list:
    rows = [
        {
            "location": "eastus",
            "timestamp": (start + timedelta(minutes=duration * i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "duration": duration,
            "value": v,
        }
        for i, v in enumerate(values)
    ]
    return [
        {
            "location": "eastus",
            "dataStartAt": "2024-03-01T12:00:00Z",
            "dataEndAt": "2024-03-01T13:00:00Z",
            "windowSize": 30,
            "optimalDataPoints": rows[:1],
            "forecastData": rows,
        }
    ]


# --- one description per provider, for the behaviour they all share -----------------------------
@dataclass
class Case:
    id: str
    make: Callable[..., HttpProvider]  # (base_url, timeout) -> provider with good credentials
    region: str
    path: str
    query: dict | None
    headers: dict | None
    payload: Callable[[list], Any]
    rows: Callable[[Any], list]  # the list of points inside a payload
    time_key: str
    step: timedelta
    factor: float = 1.0  # payload unit -> gCO2eq/kWh
    login: bool = False


CASES = [
    Case(
        "uk",
        lambda url, timeout: UKCarbonIntensityProvider(base_url=url, timeout=timeout, retry=RETRY),
        "GB",
        "/intensity/2024-03-01T12:00Z/fw48h",
        None,
        None,
        uk_national,
        lambda p: p["data"],
        "from",
        timedelta(minutes=30),
    ),
    Case(
        "electricitymaps",
        lambda url, timeout: ElectricityMapsProvider(EM_KEY, base_url=url, timeout=timeout, retry=RETRY),
        "DE",
        "/v3/carbon-intensity/forecast",
        {"zone": "DE"},
        {"auth-token": EM_KEY},
        em_forecast,
        lambda p: p["forecast"],
        "datetime",
        timedelta(hours=1),
    ),
    Case(
        "watttime",
        lambda url, timeout: WattTimeProvider(WT_USER, WT_PASS, base_url=url, timeout=timeout, retry=RETRY),
        "CAISO_NORTH",
        "/v3/forecast",
        {"region": "CAISO_NORTH", "signal_type": "co2_moer"},
        {"Authorization": f"Bearer {WT_TOKEN}"},
        wt_forecast,
        lambda p: p["data"],
        "point_time",
        timedelta(minutes=5),
        factor=LBS_PER_MWH_TO_G_PER_KWH,
        login=True,
    ),
    Case(
        "carbon_aware_sdk",
        lambda url, timeout: CarbonAwareSdkProvider(url, timeout=timeout, retry=RETRY),
        "eastus",
        "/emissions/forecasts/current",
        {"location": "eastus", "dataStartAt": "2024-03-01T12:00:00Z", "dataEndAt": "2024-03-01T14:00:00Z"},
        None,
        cas_forecast,
        lambda p: p[0]["forecastData"],
        "timestamp",
        timedelta(minutes=5),
    ),
]


@pytest.fixture(autouse=True)
def _no_unexpected_requests(httpserver):
    """Every request must have matched a handler (path, query and headers), or the test fails."""
    yield
    httpserver.check_assertions()


@pytest.fixture
def providers():
    """Collects providers built in a test and closes their clients afterwards."""
    made: list[HttpProvider] = []
    yield made
    for provider in made:
        provider.close()


@pytest.fixture(params=CASES, ids=[c.id for c in CASES])
def case(request, httpserver):
    case: Case = request.param
    if case.login:
        httpserver.expect_request("/login").respond_with_json({"token": WT_TOKEN})
    return case


@pytest.fixture
def make(case, httpserver, providers):
    def build(timeout=TIMEOUT) -> HttpProvider:
        provider = case.make(httpserver.url_for(""), timeout)
        providers.append(provider)
        return provider

    return build


def expect_data(httpserver, case: Case, **kwargs):
    return httpserver.expect_request(case.path, query_string=case.query, headers=case.headers, **kwargs)


def expect_data_once(httpserver, case: Case):
    return httpserver.expect_oneshot_request(case.path, query_string=case.query, headers=case.headers)


def hits(httpserver, path: str) -> int:
    return sum(1 for request, _ in httpserver.log if request.path == path)


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """Record every pause the retry loop takes (Retry-After or backoff), still sleeping for real."""
    recorded: list[float] = []

    def sleep(seconds: float) -> None:
        recorded.append(seconds)
        time.sleep(seconds)

    # tenacity's default sleep strategy calls ``time.sleep`` through its own module namespace
    monkeypatch.setattr(tenacity.nap, "time", types.SimpleNamespace(sleep=sleep))
    return recorded


def fetch(provider: HttpProvider, case: Case):
    return provider.forecast(case.region, START, START + timedelta(hours=2))


# --- shared behaviour, every provider ----------------------------------------------------------
def test_good_payload_is_parsed_in_utc(case, make, httpserver):
    expect_data(httpserver, case).respond_with_json(case.payload([300, 310, 320, 330]))
    result = fetch(make(), case)
    assert result.provider == case.id and result.data_kind == "forecast"
    assert result.series.granularity == case.step
    assert result.series.start == START and result.series.start.tzinfo == UTC
    assert result.series.values[:2].tolist() == pytest.approx([300 * case.factor, 310 * case.factor])
    assert result.series.end <= START + timedelta(hours=2)


def test_401_is_an_auth_error(case, make, httpserver):
    expect_data(httpserver, case).respond_with_data("nope", status=401)
    with pytest.raises(ProviderAuthError, match="401"):
        fetch(make(), case)
    # no blind retries: one call, or two around WattTime's single re-login
    assert hits(httpserver, case.path) == (2 if case.login else 1)


def test_429_then_success_honours_retry_after(case, make, httpserver, sleeps):
    expect_data_once(httpserver, case).respond_with_data("slow down", status=429, headers={"Retry-After": "0.03"})
    expect_data(httpserver, case).respond_with_json(case.payload([300, 310, 320, 330]))
    provider = make()
    began = time.monotonic()
    result = fetch(provider, case)
    assert time.monotonic() - began >= 0.03
    assert sleeps == [0.03]  # Retry-After, not the 0.01 s backoff
    assert hits(httpserver, case.path) == 2
    assert result.series.values[0] == pytest.approx(300 * case.factor)


def test_429_persisting_is_rate_limited_and_retry_after_is_capped(case, make, httpserver, sleeps):
    expect_data(httpserver, case).respond_with_data("slow down", status=429, headers={"Retry-After": "3600"})
    provider = make()
    with pytest.raises(ProviderRateLimitedError, match="429"):
        fetch(provider, case)
    assert sleeps == [RETRY.max_retry_after_s] * (RETRY.attempts - 1)
    assert hits(httpserver, case.path) == RETRY.attempts


def test_500_then_success(case, make, httpserver, sleeps):
    expect_data_once(httpserver, case).respond_with_data("oops", status=500)
    expect_data(httpserver, case).respond_with_json(case.payload([300, 310]))
    provider = make()
    assert fetch(provider, case).series.values[0] == pytest.approx(300 * case.factor)
    assert sleeps == [RETRY.backoff_initial_s]
    assert hits(httpserver, case.path) == 2


def test_500_persisting_is_unavailable(case, make, httpserver, sleeps):
    expect_data(httpserver, case).respond_with_data("oops", status=503)
    provider = make()
    with pytest.raises(ProviderUnavailableError, match="503"):
        fetch(provider, case)
    assert sleeps == [0.01, 0.02]  # exponential, capped at backoff_max_s
    assert hits(httpserver, case.path) == RETRY.attempts


def test_timeout_is_retried_then_unavailable(case, make, httpserver):
    release = threading.Event()

    def slow(request):
        release.wait(2.0)  # far longer than the 0.1 s client timeout, until the test releases it
        return Response("{}", content_type="application/json")

    expect_data(httpserver, case).respond_with_handler(slow)
    began = time.monotonic()
    try:
        with pytest.raises(ProviderUnavailableError, match="timed out"):
            fetch(make(timeout=SHORT_TIMEOUT), case)
        assert time.monotonic() - began < 1.5
    finally:
        release.set()
        deadline = time.monotonic() + 3  # let the single-threaded server drain the abandoned calls
        while hits(httpserver, case.path) < RETRY.attempts and time.monotonic() < deadline:
            time.sleep(0.01)
    assert hits(httpserver, case.path) == RETRY.attempts


def test_malformed_json_is_a_response_error(case, make, httpserver):
    expect_data(httpserver, case).respond_with_data("<html>maintenance", content_type="application/json")
    with pytest.raises(ProviderResponseError, match="malformed JSON"):
        fetch(make(), case)
    assert hits(httpserver, case.path) == 1  # a bad answer is not retried


def test_empty_forecast_is_a_response_error(case, make, httpserver):
    expect_data(httpserver, case).respond_with_json(case.payload([]))
    with pytest.raises(ProviderResponseError, match="no data points"):
        fetch(make(), case)


def test_gap_is_a_response_error(case, make, httpserver):
    payload = case.payload([300, 310, 320, 330, 340])
    del case.rows(payload)[2]
    expect_data(httpserver, case).respond_with_json(payload)
    with pytest.raises(ProviderResponseError, match="gap"):
        fetch(make(), case)


@pytest.mark.parametrize("bad", ["high", None, True, -5])
def test_non_numeric_value_is_a_response_error(case, make, httpserver, bad):
    expect_data(httpserver, case).respond_with_json(case.payload([300, bad, 320]))
    with pytest.raises(ProviderResponseError) as info:
        fetch(make(), case)
    assert info.value.provider == case.id and case.region in str(info.value)


def test_missing_timestamp_is_a_response_error(case, make, httpserver):
    payload = case.payload([300, 310])
    del case.rows(payload)[0][case.time_key]
    expect_data(httpserver, case).respond_with_json(payload)
    with pytest.raises(ProviderResponseError, match=case.time_key):
        fetch(make(), case)


def test_wrong_top_level_shape_is_a_response_error(case, make, httpserver):
    expect_data(httpserver, case).respond_with_json({"unexpected": True} if case.id == "carbon_aware_sdk" else [])
    with pytest.raises(ProviderResponseError):
        fetch(make(), case)


def test_forecast_outside_the_period_is_a_response_error(case, make, httpserver):
    expect_data(httpserver, case).respond_with_json(case.payload([300, 310], start=START - timedelta(days=1)))
    with pytest.raises(ProviderResponseError, match="overlaps"):
        fetch(make(), case)


def test_naive_or_reversed_period_is_rejected_before_any_request(case, make, httpserver):
    provider = make()
    with pytest.raises(ValueError, match="timezone-aware"):
        provider.forecast(case.region, START.replace(tzinfo=None), START + timedelta(hours=1))
    with pytest.raises(ValueError, match="after start"):
        provider.forecast(case.region, START, START)
    assert httpserver.log == []


def test_registry_builds_each_provider(case, httpserver, providers):
    options = {"base_url": httpserver.url_for(""), "timeout": TIMEOUT, "retry": RETRY}
    provider = get_provider(case.id, **options)
    providers.append(provider)
    assert provider.name == case.id and provider.retry == RETRY


# --- UK Carbon Intensity -----------------------------------------------------------------------
@pytest.fixture
def uk(httpserver, providers):
    provider = UKCarbonIntensityProvider(base_url=httpserver.url_for(""), timeout=TIMEOUT, retry=RETRY)
    providers.append(provider)
    return provider


def test_uk_national_is_requested_from_the_slot_start_and_trimmed(uk, httpserver):
    # the payload starts a slot early and runs past the end: both ends are trimmed
    payload = uk_national([250, 266, 270, 280, 290, 300], start=START - timedelta(minutes=30))
    httpserver.expect_request("/intensity/2024-03-01T12:00Z/fw48h").respond_with_json(payload)
    result = uk.forecast("national", START + timedelta(minutes=10), START + timedelta(minutes=70))
    assert result.region == "GB" and result.signal == "average (UK Carbon Intensity forecast)"
    assert result.series.granularity == timedelta(minutes=30)
    assert [t for t, _ in result.series] == [START, START + timedelta(minutes=30), START + timedelta(minutes=60)]
    assert result.series.values.tolist() == [266, 270, 280]


@pytest.mark.parametrize("region", ["13", "region:13", "Region: 13"])
@pytest.mark.parametrize("as_list", [False, True])
def test_uk_region_id(uk, httpserver, region, as_list):
    httpserver.expect_request("/regional/intensity/2024-03-01T12:00Z/fw48h/regionid/13").respond_with_json(
        uk_regional([180, 190, 200], as_list=as_list)
    )
    result = uk.forecast(region, START, START + timedelta(hours=2))
    assert result.region == "region:13"
    assert result.series.values.tolist() == [180, 190, 200]


@pytest.mark.parametrize("region", ["RG10", "rg10", "postcode:RG10"])
def test_uk_postcode(uk, httpserver, region):
    httpserver.expect_request("/regional/intensity/2024-03-01T12:00Z/fw48h/postcode/RG10").respond_with_json(
        uk_regional([150, 160])
    )
    result = uk.forecast(region, START, START + timedelta(hours=1))
    assert result.region == "postcode:RG10" and result.series.values.tolist() == [150, 160]


@pytest.mark.parametrize("region", ["0", "18", "region:abc", "postcode:12", "London", "RG10 1AA", ""])
def test_uk_unknown_region_lists_accepted_forms(uk, httpserver, region):
    with pytest.raises(UnknownRegionError) as info:
        uk.forecast(region, START, START + timedelta(hours=1))
    assert all(form in str(info.value) for form in ("'GB'", "'national'", "1-17", "'region:13'", "'postcode:RG10'"))
    assert httpserver.log == []


def test_uk_slot_of_the_wrong_length_is_a_response_error(uk, httpserver):
    httpserver.expect_request("/intensity/2024-03-01T12:00Z/fw48h").respond_with_json(
        uk_national([250, 260], slot=timedelta(hours=1))
    )
    with pytest.raises(ProviderResponseError, match="expected a 0:30:00 slot"):
        uk.forecast("GB", START, START + timedelta(hours=2))


def test_uk_current_prefers_actual(uk, httpserver):
    payload = uk_national([266])
    payload["data"][0]["intensity"]["actual"] = 263
    httpserver.expect_request("/intensity").respond_with_json(payload)
    reading = uk.current("GB")
    assert (reading.gco2_per_kwh, reading.at, reading.data_kind) == (263, START, "historical")
    assert "actual" in reading.note


def test_uk_current_falls_back_to_forecast(uk, httpserver):
    httpserver.expect_request("/regional/regionid/13").respond_with_json(uk_regional([190], as_list=True))
    reading = uk.current("region:13")
    assert (reading.gco2_per_kwh, reading.data_kind, reading.region) == (190, "forecast", "region:13")
    assert "forecast" in reading.note and "no actual" in reading.note


# --- Electricity Maps ----------------------------------------------------------------------------
def test_electricitymaps_key_from_env_and_current(httpserver, providers, monkeypatch):
    monkeypatch.setenv("ELECTRICITYMAPS_API_KEY", "key-from-env")
    provider = ElectricityMapsProvider(base_url=httpserver.url_for(""), timeout=TIMEOUT, retry=RETRY)
    providers.append(provider)
    httpserver.expect_request(
        "/v3/carbon-intensity/latest", query_string={"zone": "DE"}, headers={"auth-token": "key-from-env"}
    ).respond_with_json(
        {
            "zone": "DE",
            "carbonIntensity": 302,
            "datetime": "2022-12-29T16:00:00.000Z",
            "updatedAt": "2022-12-29T16:05:00.000Z",
        }
    )
    reading = provider.current("de")
    assert reading.gco2_per_kwh == 302 and reading.region == "DE"
    assert reading.at == datetime(2022, 12, 29, 16, tzinfo=UTC)


def test_electricitymaps_missing_key_names_the_env_variable(httpserver, providers, monkeypatch):
    monkeypatch.delenv("ELECTRICITYMAPS_API_KEY", raising=False)
    provider = ElectricityMapsProvider(base_url=httpserver.url_for(""), timeout=TIMEOUT, retry=RETRY)  # builds fine
    providers.append(provider)
    for call in (lambda: provider.forecast("DE", START, START + timedelta(hours=1)), lambda: provider.current("DE")):
        with pytest.raises(ProviderConfigError, match="ELECTRICITYMAPS_API_KEY"):
            call()
    assert httpserver.log == []


@pytest.mark.parametrize("region", ["", "Germany!", "D", "DE/FR"])
def test_electricitymaps_bad_zone(httpserver, providers, region):
    provider = ElectricityMapsProvider(EM_KEY, base_url=httpserver.url_for(""), timeout=TIMEOUT, retry=RETRY)
    providers.append(provider)
    with pytest.raises(UnknownRegionError, match="zone key"):
        provider.current(region)


# --- WattTime ----------------------------------------------------------------------------------
class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock():
    return Clock(START)


@pytest.fixture
def watttime(httpserver, providers, clock):
    provider = WattTimeProvider(
        WT_USER, WT_PASS, base_url=httpserver.url_for(""), timeout=TIMEOUT, retry=RETRY, clock=clock
    )
    providers.append(provider)
    return provider


def wt_login(httpserver, *tokens: str):
    """Logins answer the given tokens in order; the last one repeats."""
    basic = "Basic " + base64.b64encode(f"{WT_USER}:{WT_PASS}".encode()).decode()
    for token in tokens[:-1]:
        once = httpserver.expect_oneshot_request("/login", headers={"Authorization": basic})
        once.respond_with_json({"token": token})
    httpserver.expect_request("/login", headers={"Authorization": basic}).respond_with_json({"token": tokens[-1]})


def wt_data(httpserver, token: str, payload=None, **kwargs):
    return httpserver.expect_request(
        "/v3/forecast",
        query_string={"region": "CAISO_NORTH", "signal_type": "co2_moer"},
        headers={"Authorization": f"Bearer {token}"},
        **kwargs,
    )


def test_watttime_converts_lbs_per_mwh_to_grams_per_kwh(watttime, httpserver):
    wt_login(httpserver, "t1")
    payload = wt_forecast([1000, 870.0, 0])
    payload["data"][0]["point_time"] = "2024-03-01T04:00:00-08:00"  # an offset is normalised to UTC
    wt_data(httpserver, "t1").respond_with_json(payload)
    result = watttime.forecast("caiso_north", START, START + timedelta(minutes=15))
    assert result.series.values.tolist() == pytest.approx([453.59237, 870.0 * 0.45359237, 0.0])
    assert result.series.start == START and result.series.granularity == timedelta(seconds=300)
    assert result.signal == "marginal (WattTime MOER)" and "generated_at" in result.note


def test_watttime_granularity_is_inferred_without_meta_period(watttime, httpserver):
    wt_login(httpserver, "t1")
    wt_data(httpserver, "t1").respond_with_json(wt_forecast([100, 200, 300], period=None))
    assert watttime.forecast("CAISO_NORTH", START, START + timedelta(hours=1)).series.granularity_s == 300


def test_watttime_meta_period_disagreeing_with_the_points_is_an_error(watttime, httpserver):
    wt_login(httpserver, "t1")
    payload = wt_forecast([100, 200, 300])
    payload["meta"]["data_point_period_seconds"] = 900
    wt_data(httpserver, "t1").respond_with_json(payload)
    with pytest.raises(ProviderResponseError, match="overlap"):
        watttime.forecast("CAISO_NORTH", START, START + timedelta(hours=1))


def test_watttime_other_units_are_refused(watttime, httpserver):
    wt_login(httpserver, "t1")
    wt_data(httpserver, "t1").respond_with_json(wt_forecast([100, 200], units="kg_co2_per_mwh"))
    with pytest.raises(ProviderResponseError, match="kg_co2_per_mwh"):
        watttime.forecast("CAISO_NORTH", START, START + timedelta(hours=1))


def test_watttime_token_is_cached_for_30_minutes(watttime, httpserver, clock):
    wt_login(httpserver, "t1", "t2")
    wt_data(httpserver, "t1").respond_with_json(wt_forecast([100, 200]))
    wt_data(httpserver, "t2").respond_with_json(wt_forecast([300, 400]))
    assert watttime.current("CAISO_NORTH").gco2_per_kwh == pytest.approx(100 * LBS_PER_MWH_TO_G_PER_KWH)
    clock.now += timedelta(minutes=29)
    assert watttime.current("CAISO_NORTH").gco2_per_kwh == pytest.approx(100 * LBS_PER_MWH_TO_G_PER_KWH)
    assert hits(httpserver, "/login") == 1
    clock.now += timedelta(minutes=2)  # 31 minutes after the login
    assert watttime.current("CAISO_NORTH").gco2_per_kwh == pytest.approx(300 * LBS_PER_MWH_TO_G_PER_KWH)
    assert hits(httpserver, "/login") == 2


def test_watttime_current_is_the_first_forecast_point(watttime, httpserver):
    wt_login(httpserver, "t1")
    wt_data(httpserver, "t1").respond_with_json(wt_forecast([1000, 2000]))
    reading = watttime.current("CAISO_NORTH")
    assert (reading.at, reading.gco2_per_kwh, reading.data_kind) == (START, pytest.approx(453.59237), "forecast")
    assert "first point of the current forecast" in reading.note


def test_watttime_401_triggers_one_relogin_then_succeeds(watttime, httpserver):
    wt_login(httpserver, "old", "new")
    wt_data(httpserver, "old").respond_with_data("expired", status=401)
    wt_data(httpserver, "new").respond_with_json(wt_forecast([1000]))
    result = watttime.forecast("CAISO_NORTH", START, START + timedelta(minutes=5))
    assert result.series.values.tolist() == pytest.approx([453.59237])
    assert hits(httpserver, "/login") == 2 and hits(httpserver, "/v3/forecast") == 2


def test_watttime_persistent_401_fails_after_one_relogin(watttime, httpserver):
    wt_login(httpserver, "t1", "t2")
    httpserver.expect_request("/v3/forecast").respond_with_data("no", status=401)
    with pytest.raises(ProviderAuthError, match="401"):
        watttime.forecast("CAISO_NORTH", START, START + timedelta(hours=1))
    assert hits(httpserver, "/login") == 2 and hits(httpserver, "/v3/forecast") == 2


def test_watttime_rejected_login_is_an_auth_error(watttime, httpserver):
    httpserver.expect_request("/login").respond_with_data("bad credentials", status=401)
    with pytest.raises(ProviderAuthError, match="/login"):
        watttime.current("CAISO_NORTH")
    assert hits(httpserver, "/v3/forecast") == 0


def test_watttime_login_without_token_is_a_response_error(watttime, httpserver):
    httpserver.expect_request("/login").respond_with_json({"nothing": "here"})
    with pytest.raises(ProviderResponseError, match="no token"):
        watttime.current("CAISO_NORTH")


@pytest.mark.parametrize("unset", [("WATTTIME_USERNAME", "WATTTIME_PASSWORD"), ("WATTTIME_PASSWORD",)])
def test_watttime_missing_credentials_name_the_env_variables(httpserver, providers, monkeypatch, unset):
    monkeypatch.setenv("WATTTIME_USERNAME", "env-user")
    monkeypatch.setenv("WATTTIME_PASSWORD", "env-pass")
    for name in unset:
        monkeypatch.delenv(name)
    provider = WattTimeProvider(base_url=httpserver.url_for(""), timeout=TIMEOUT, retry=RETRY)
    providers.append(provider)
    with pytest.raises(ProviderConfigError) as info:
        provider.forecast("CAISO_NORTH", START, START + timedelta(hours=1))
    assert "WATTTIME_USERNAME" in str(info.value) and "WATTTIME_PASSWORD" in str(info.value)
    assert f"{' and '.join(unset)} not set" in str(info.value)
    assert httpserver.log == []


# --- Carbon Aware SDK ----------------------------------------------------------------------------
def test_carbon_aware_sdk_url_from_env_and_current_is_the_latest(httpserver, providers, monkeypatch):
    monkeypatch.setenv("CARBON_AWARE_SDK_URL", httpserver.url_for(""))
    provider = CarbonAwareSdkProvider(timeout=TIMEOUT, retry=RETRY)
    providers.append(provider)
    httpserver.expect_request("/emissions/bylocation", query_string={"location": "eastus"}).respond_with_json(
        [
            {"location": "eastus", "time": "2024-03-01T11:50:00+00:00", "rating": 410.5, "duration": "00:05:00"},
            {"location": "eastus", "time": "2024-03-01T12:55:00+01:00", "rating": 395.0, "duration": "00:05:00"},
            {"location": "eastus", "time": "2024-03-01T11:45:00+00:00", "rating": 420.0, "duration": "00:05:00"},
        ]
    )
    reading = provider.current("eastus")
    assert (reading.at, reading.gco2_per_kwh) == (datetime(2024, 3, 1, 11, 55, tzinfo=UTC), 395.0)


def test_carbon_aware_sdk_missing_url_names_the_env_variable(monkeypatch):
    monkeypatch.delenv("CARBON_AWARE_SDK_URL", raising=False)
    with CarbonAwareSdkProvider(timeout=TIMEOUT, retry=RETRY) as provider:  # builds fine
        for call in (lambda: provider.forecast("eastus", START, START + timedelta(hours=1)),
                     lambda: provider.current("eastus")):
            with pytest.raises(ProviderConfigError, match="CARBON_AWARE_SDK_URL"):
                call()


def test_carbon_aware_sdk_duration_sets_granularity(httpserver, providers):
    provider = CarbonAwareSdkProvider(httpserver.url_for(""), timeout=TIMEOUT, retry=RETRY)
    providers.append(provider)
    query = {"location": "eastus", "dataStartAt": "2024-03-01T12:00:00Z", "dataEndAt": "2024-03-01T14:00:00Z"}
    httpserver.expect_request("/emissions/forecasts/current", query_string=query).respond_with_json(
        cas_forecast([380.2, 379.0, 381.5, 390.0], duration=30)
    )
    result = provider.forecast("eastus", START, START + timedelta(hours=2))
    assert result.series.granularity == timedelta(minutes=30) and len(result.series) == 4
    assert result.series.values.tolist() == [380.2, 379.0, 381.5, 390.0]
    assert result.signal == "as served by the Carbon Aware SDK"


def test_carbon_aware_sdk_mixed_durations_are_an_error(httpserver, providers):
    provider = CarbonAwareSdkProvider(httpserver.url_for(""), timeout=TIMEOUT, retry=RETRY)
    providers.append(provider)
    payload = cas_forecast([380.2, 379.0])
    payload[0]["forecastData"][1]["duration"] = 10
    httpserver.expect_request("/emissions/forecasts/current").respond_with_json(payload)
    with pytest.raises(ProviderResponseError, match="mixed durations"):
        provider.forecast("eastus", START, START + timedelta(hours=1))


# --- secrets never leak --------------------------------------------------------------------------
def _assert_no_leak(canaries: list[str], errors: list[ProviderError], caplog) -> None:
    assert errors, "the scenarios must have raised"
    for error in errors:
        for text in (str(error), repr(error), error.detail, repr(error.args)):
            for canary in canaries:
                assert canary not in text, f"secret leaked in {type(error).__name__}: {text}"
    assert any(r.name.startswith(("httpx", "httpcore")) for r in caplog.records), "HTTP logs were not captured"
    for record in caplog.records:
        for canary in canaries:
            assert canary not in record.getMessage(), f"secret leaked in log {record.name}"
    for canary in canaries:
        assert canary not in caplog.text


@pytest.fixture
def debug_logs(caplog):
    for name in (None, "httpx", "httpcore", "greenkfp"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def test_electricitymaps_key_never_leaks(httpserver, providers, debug_logs):
    canary = f"canary-{uuid.uuid4().hex}"
    provider = ElectricityMapsProvider(canary, base_url=httpserver.url_for(""), timeout=TIMEOUT, retry=RETRY)
    providers.append(provider)
    path = "/v3/carbon-intensity/forecast"
    scenarios = [
        (401, f"invalid token {canary}", ProviderAuthError),
        (500, f"internal error for {canary}", ProviderUnavailableError),
        (200, f"not json, your key is {canary}", ProviderResponseError),
        (400, f'{{"error": "bad request for key {canary}"}}', ProviderResponseError),
    ]
    errors = []
    for status, body, expected in scenarios:
        httpserver.clear_all_handlers()
        httpserver.expect_request(path, headers={"auth-token": canary}).respond_with_data(body, status=status)
        with pytest.raises(expected) as info:
            provider.forecast("DE", START, START + timedelta(hours=1))
        errors.append(info.value)
    assert "***" in str(errors[2]) and "***" in str(errors[3])  # the echoed key was scrubbed, the rest kept
    _assert_no_leak([canary], errors, debug_logs)


def test_watttime_password_and_token_never_leak(httpserver, providers, debug_logs):
    password, token = f"canary-{uuid.uuid4().hex}", f"canary-token-{uuid.uuid4().hex}"
    provider = WattTimeProvider("user", password, base_url=httpserver.url_for(""), timeout=TIMEOUT, retry=RETRY)
    providers.append(provider)
    errors = []

    def run(expected):
        with pytest.raises(expected) as info:
            provider.forecast("CAISO_NORTH", START, START + timedelta(hours=1))
        errors.append(info.value)

    httpserver.expect_request("/login").respond_with_data(f"wrong password {password}", status=401)
    run(ProviderAuthError)
    httpserver.clear_all_handlers()
    httpserver.expect_request("/login").respond_with_data(f"<not json> {password}")
    run(ProviderResponseError)
    httpserver.clear_all_handlers()
    httpserver.expect_request("/login").respond_with_json({"token": token})
    httpserver.expect_request("/v3/forecast").respond_with_data(f"boom {token}", status=500)
    run(ProviderUnavailableError)
    httpserver.clear_all_handlers()
    httpserver.expect_request("/login").respond_with_json({"token": token})
    httpserver.expect_request("/v3/forecast").respond_with_data(f"garbage {token} {password}")
    run(ProviderResponseError)
    httpserver.clear_all_handlers()
    httpserver.expect_request("/login").respond_with_json({"token": token})
    httpserver.expect_request("/v3/forecast").respond_with_data(f"token {token} expired", status=401)
    run(ProviderAuthError)
    assert "***" in str(errors[1]) and "***" in str(errors[3])
    _assert_no_leak([password, token], errors, debug_logs)


# --- Retry-After parsing -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        ("Fri, 01 Mar 2024 12:00:30 GMT", 30.0),
        ("Fri, 01 Mar 2024 11:00:00 GMT", 0.0),  # already past
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header, expected):
    assert parse_retry_after(header, now=START) == expected


def test_a_secret_cut_by_the_body_excerpt_is_still_scrubbed(httpserver, providers):
    canary = f"canary-{uuid.uuid4().hex}"
    provider = ElectricityMapsProvider(canary, base_url=httpserver.url_for(""), timeout=TIMEOUT, retry=RETRY)
    providers.append(provider)
    # the malformed-JSON excerpt keeps 80 characters: the key starts inside it and ends outside
    httpserver.expect_request("/v3/carbon-intensity/latest").respond_with_data("x" * 70 + canary)
    with pytest.raises(ProviderResponseError) as info:
        provider.current("DE")
    assert canary[:10] not in str(info.value)
