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
    text = json.dumps(record)
    assert record["failure_policy_applied"] == "fail_open" and "unavailable" in text
    assert secret not in text and "alice" not in text
    unreachable = CarbonAwareSdkProvider(base_url=f"http://alice:{secret}@127.0.0.1:9", retry=RETRY)
    with unreachable, pytest.raises(ProviderUnavailableError) as info:  # "cannot reach <base URL>"
        unreachable.forecast("eastus", START, START + timedelta(hours=1))
    assert secret not in str(info.value) and "http://***@127.0.0.1:9" in str(info.value)


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
        assert type(info.value).__name__ == "GateError" and "above any real grid" in str(info.value.record)
        return
    record = decide(gate, clock=lambda: START).to_record()
    assert record["failure_policy_applied"] == "fail_open"
    assert "above any real grid" in record["attempts"][0]["error"]


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
