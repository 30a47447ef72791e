"""The gate and its providers under hostile answers: no credential in any message or record, no
crash past the failure policy, no silent time shift, no request held for minutes."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from werkzeug import Response

from greenkfp.components.carbon import GatePolicy, decide
from greenkfp.components.carbon.errors import ProviderAuthError, ProviderResponseError, ProviderUnavailableError
from greenkfp.components.carbon.providers.base import RetryPolicy
from greenkfp.components.carbon.providers.carbon_aware_sdk import CarbonAwareSdkProvider
from greenkfp.components.carbon.providers.uk import UKCarbonIntensityProvider
from greenkfp.components.carbon.providers.watttime import WattTimeProvider

START = datetime(2023, 6, 14, 9, tzinfo=timezone.utc)
RETRY = RetryPolicy(attempts=2, backoff_initial_s=0.01, backoff_max_s=0.02, max_retry_after_s=0.05)


def _uk(values, *, stamp=lambda t: t.strftime("%Y-%m-%dT%H:%MZ")):
    slot = timedelta(minutes=30)
    return {"data": [{"from": stamp(START + i * slot), "to": stamp(START + (i + 1) * slot),
                      "intensity": {"forecast": v, "actual": None, "index": "moderate"}} for i, v in enumerate(values)]}


def test_credentials_in_a_base_url_never_reach_errors_or_the_record(httpserver, monkeypatch):
    secret = f"canary-{uuid.uuid4().hex}"
    url = httpserver.url_for("/").replace("http://", f"http://alice:{secret}@")
    monkeypatch.setenv("CARBON_AWARE_SDK_URL", url)
    httpserver.expect_request("/emissions/forecasts/current").respond_with_data(f"boom {url}", status=500)
    policy = GatePolicy(regions=("eastus",), duration=timedelta(hours=1), provider="carbon_aware_sdk",
                        on_provider_failure="fail_open", provider_options={"carbon_aware_sdk": {"retry": {"attempts": 1}}})
    record = decide(policy, clock=lambda: START).to_record()
    text = record.to_json()
    assert record.failure_policy_applied == "fail_open" and "unavailable" in text
    assert secret not in text and "alice" not in text
    unreachable = CarbonAwareSdkProvider(base_url=f"http://alice:{secret}@127.0.0.1:9", retry=RETRY)
    with unreachable, pytest.raises(ProviderUnavailableError) as info:  # "cannot reach <base URL>"
        unreachable.forecast("eastus", START, START + timedelta(hours=1))
    assert secret not in str(info.value) and "alice" not in str(info.value)
    assert "cannot reach http://127.0.0.1:9" in str(info.value)  # the URL without its credentials


def test_a_login_that_echoes_the_basic_auth_header_leaks_nothing(httpserver):
    password = f"canary-{uuid.uuid4().hex}"

    def echo(request):
        return Response(f"denied: {request.headers.get('Authorization')}", status=401)

    httpserver.expect_request("/login").respond_with_handler(echo)
    provider = WattTimeProvider("user", password, base_url=httpserver.url_for(""), retry=RETRY)
    with provider, pytest.raises(ProviderAuthError) as info:
        provider.forecast("CAISO_NORTH", START, START + timedelta(hours=1))
    encoded = base64.b64encode(f"user:{password}".encode()).decode()
    assert encoded not in str(info.value) and password not in str(info.value)


@pytest.mark.parametrize("policy", ["fail_open", "fail_closed"])
def test_an_absurd_value_is_a_bad_response_under_either_policy(httpserver, policy):
    httpserver.expect_request("/intensity/2023-06-14T09:00Z/fw48h").respond_with_json(_uk([120, 1e308, 130, 90]))
    gate = GatePolicy(regions=("GB",), duration=timedelta(hours=1), provider="uk", on_provider_failure=policy,
                      earliest_start=START, max_delay=timedelta(hours=1),
                      provider_options={"uk": {"base_url": httpserver.url_for(""), "retry": {"attempts": 1}}})
    if policy == "fail_closed":
        with pytest.raises(Exception) as info:
            decide(gate, clock=lambda: START)
        assert type(info.value).__name__ == "GateError" and "above any real grid" in info.value.record.to_json()
        return
    record = decide(gate, clock=lambda: START).to_record()
    assert record.failure_policy_applied == "fail_open"
    assert "above any real grid" in record.attempts[0].error


def test_a_naive_timestamp_is_refused_not_read_as_utc(httpserver):
    httpserver.expect_request("/intensity/2023-06-14T09:00Z/fw48h").respond_with_json(
        _uk([120, 110], stamp=lambda t: t.strftime("%Y-%m-%dT%H:%M")))
    provider = UKCarbonIntensityProvider(base_url=httpserver.url_for(""), retry=RETRY)
    with provider, pytest.raises(ProviderResponseError, match="has no time zone"):
        provider.forecast("GB", START, START + timedelta(hours=1))


def test_a_dripping_server_is_cut_off_at_the_request_deadline(httpserver):
    body = json.dumps(_uk([120, 110, 100, 90])).encode()

    def drip(request):
        def chunks():
            for i in range(0, len(body), 8):
                time.sleep(0.1)
                yield body[i:i + 8]
        return Response(chunks(), content_type="application/json")

    httpserver.expect_request("/intensity/2023-06-14T09:00Z/fw48h").respond_with_handler(drip)
    retry = RetryPolicy(attempts=1, request_deadline_s=0.5)
    provider = UKCarbonIntensityProvider(base_url=httpserver.url_for(""), retry=retry, timeout=httpx.Timeout(2.0))
    started = time.monotonic()
    with provider, pytest.raises(ProviderUnavailableError, match="timed out"):
        provider.forecast("GB", START, START + timedelta(hours=1))
    assert time.monotonic() - started < 1.5  # one read every 0.1 s never trips the 2 s read timeout


def test_wait_mode_never_reports_should_run_before_start_at(clock):
    """earliest_start two days ahead: the window is within max_delay of it, so the gate sleeps
    until the window, not max_delay from now."""
    clock.now = START
    policy = GatePolicy(regions=("GB",), duration=timedelta(hours=2), earliest_start=START + timedelta(days=2),
                        max_delay=timedelta(hours=12), mode="wait")
    decision = decide(policy, clock=clock, sleep=clock.sleep)
    assert decision.should_run and clock.now >= decision.start_at >= START + timedelta(days=2)
    assert decision.waited_seconds == pytest.approx((decision.start_at - START).total_seconds())


def test_wait_mode_sleeps_again_when_a_sleep_returns_early(clock):
    clock.now = START
    early = []

    def short_sleep(seconds):  # a signal wakes the process half way
        early.append(seconds)
        clock.sleep(seconds / 2)

    decision = decide(GatePolicy(regions=("GB",), duration=timedelta(hours=3), max_delay=timedelta(hours=12),
                                 mode="wait"), clock=clock, sleep=short_sleep)
    assert decision.delay > timedelta(0) and len(early) > 1 and clock.now >= decision.start_at


def test_a_past_earliest_start_means_now_when_waiting(clock):
    clock.now = START
    decision = decide(GatePolicy(regions=("GB",), duration=timedelta(hours=1), earliest_start=START - timedelta(days=3),
                                 max_delay=timedelta(hours=6), mode="wait"), clock=clock, sleep=clock.sleep)
    assert decision.start_at >= START


def test_the_baseline_stays_the_home_region_when_its_provider_fails(httpserver):
    """GB (home) fails, region 13 answers: the decision may run in region 13, but claims no
    saving against region 13's own run-now, and says there is no baseline."""
    httpserver.expect_request("/intensity/2023-06-14T09:00Z/fw48h").respond_with_data("down", status=503)
    regional = _uk([300, 250, 100, 90, 280, 300])
    regional = {"data": {"regionid": 13, "shortname": "London", "data": regional["data"]}}
    httpserver.expect_request("/regional/intensity/2023-06-14T09:00Z/fw48h/regionid/13").respond_with_json(regional)
    policy = GatePolicy(regions=("GB", "13"), duration=timedelta(hours=1), provider="uk", earliest_start=START,
                        max_delay=timedelta(hours=2), energy_kwh=1.0,
                        provider_options={"uk": {"base_url": httpserver.url_for(""), "retry": {"attempts": 1}}})
    decision = decide(policy, clock=lambda: START)
    record = decision.to_record()
    assert record.home_region == "GB" and record.should_run
    assert record.savings_percent is None and record.savings_g is None
    assert record.intensity_now_gco2_per_kwh is None
    assert "no baseline: the home region GB did not answer" in record.reason


def test_sci_intensity_follows_the_gates_fail_open_for_a_region_without_embedded_data():
    """The gate failed open for a live provider's region: the SCI step still scores, on the
    stated default, and records which."""
    from greenkfp.components.carbon.intensity import WORLD_AVERAGE_G_PER_KWH
    from greenkfp.components.sci.evaluate import inference_intensity

    policy = GatePolicy(regions=("eastus",), duration=timedelta(hours=1), provider="carbon_aware_sdk",
                        on_provider_failure="fail_open")  # no CARBON_AWARE_SDK_URL: the provider is unconfigured
    failed_open = decide(policy, clock=lambda: START).to_record()
    assert failed_open.failure_policy_applied == "fail_open" and failed_open.intensity_window_gco2_per_kwh is None
    value, source = inference_intensity("annual_average", failed_open)
    assert value == WORLD_AVERAGE_G_PER_KWH
    assert source["method"] == "default" and source["fallback_from"] == "annual_average"
    assert "Ember" in source["basis"] and "eastus" in source["basis"]


def test_url_credentials_become_basic_auth_and_never_reach_logs_or_echoes(httpserver, caplog):
    """From an environment variable, http://user:secret@host: httpx gets them as basic auth, so
    neither its log of the URL nor a server echoing the Authorization header leaks them."""
    import logging

    for name in (None, "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    secret = f"canary-{uuid.uuid4().hex}"

    def echo(request):
        return Response(json.dumps({"echo": dict(request.headers)}), status=400, content_type="application/json")

    httpserver.expect_request("/emissions/forecasts/current").respond_with_handler(echo)
    url = httpserver.url_for("/").replace("http://", f"http://sdk:{secret}@")
    with CarbonAwareSdkProvider(base_url=url, retry=RETRY) as provider, pytest.raises(ProviderResponseError) as info:
        provider.forecast("eastus", START, START + timedelta(hours=1))
    encoded = base64.b64encode(f"sdk:{secret}".encode()).decode()
    (request, _), = httpserver.log
    assert request.headers["Authorization"] == f"Basic {encoded}"  # the credentials were used
    for text in (str(info.value), caplog.text):
        assert secret not in text and encoded not in text


@pytest.mark.parametrize("options, message", [
    ({"uk": {"base_url": "http://user:pw@127.0.0.1:8080"}}, "must not carry credentials"),
    ({"uk": {"base_url": "ftp://127.0.0.1"}}, "base_url must be an http(s):// URL"),
    ({"uk": {"retry": {"attempts": 1000000}}}, "retry.attempts must be a whole number from 1 to 10"),
    ({"uk": {"retry": {"attempts": 0}}}, "retry.attempts must be a whole number from 1 to 10"),
    ({"uk": {"retry": {"request_deadline_s": float("inf")}}}, "request_deadline_s must be a number of seconds"),
    ({"uk": {"timeout": 1e6}}, "timeout must be a number of seconds > 0 and at most 300"),
    ({"uk": {"timeout": float("nan")}}, "timeout must be a number of seconds"),
    ({"embedded": {"replay_year": 1999}}, "replay_year must be one of"),
])
def test_provider_options_are_checked_when_read_even_for_a_provider_not_used(options, message):
    """A mistake in an option is bad input, named at once: not an outage the gate fails open on."""
    from greenkfp.components.carbon import ProviderOptionError

    with pytest.raises(ProviderOptionError, match=message.replace("(", "\\(").replace(")", "\\)")):
        GatePolicy(regions=("GB",), duration=timedelta(hours=1), provider="embedded", provider_options=options)


def test_a_server_sending_its_headers_slowly_is_cut_off_at_the_deadline():
    """One header line every 0.3 s, each within the read timeout: the total deadline still holds."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()

    def serve():
        conn, _ = listener.accept()
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        while not stop.wait(0.3):
            try:
                conn.sendall(b"X-Slow: 1\r\n")
            except OSError:
                break
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    provider = UKCarbonIntensityProvider(base_url=f"http://127.0.0.1:{port}", timeout=httpx.Timeout(2.0),
                                         retry=RetryPolicy(attempts=1, request_deadline_s=1.0))
    started = time.monotonic()
    try:
        with provider, pytest.raises(ProviderUnavailableError, match="timed out"):
            provider.forecast("GB", START, START + timedelta(hours=1))
        assert time.monotonic() - started < 2.5
    finally:
        stop.set()
        listener.close()


@pytest.mark.parametrize("kwargs, message", [
    ({"duration": timedelta(seconds=0.36)}, "duration must be between 0:01:00"),
    ({"regions": ("GB", "GB")}, "regions must be unique; repeated: GB"),
    ({"energy_kwh": 1e308}, "energy_kwh must be a number from 0 to"),
    ({"max_delay": timedelta(days=400)}, "max_delay must be at most 366 days"),
])
def test_values_that_would_break_the_arithmetic_are_refused(kwargs, message):
    base = {"regions": ("GB",), "duration": timedelta(hours=1)}
    with pytest.raises(ValueError, match=message):
        GatePolicy(**{**base, **kwargs})


def test_a_fallback_that_repeats_the_chain_is_asked_once():
    policy = GatePolicy(regions=("GB",), duration=timedelta(hours=1), provider="embedded",
                        fallback_providers=("embedded", "uk", "uk"))
    assert policy.fallback_providers == ("uk",)
