"""The gate over real HTTP providers (a local pytest-httpserver): success, fail-open,
fail-closed and fallback for each provider, and no credential in any record, error or log."""

import logging
import re
from datetime import datetime, timedelta, timezone

import pytest

from greenkfp.components.carbon import GateError, GatePolicy, decide
from greenkfp.components.carbon.providers import get_provider

UTC = timezone.utc
NOW = datetime(2023, 6, 14, 9, tzinfo=UTC)  # inside the embedded data, so embedded fallbacks are historical
FAST = {"retry": {"attempts": 2, "backoff_initial_s": 0.0, "backoff_max_s": 0.0}, "timeout": 0.5}
CANARY = "CANARY-d3f1c5e0-secret"

# provider -> (a region it and the embedded data both serve, environment it needs)
PROVIDERS = {
    "uk": ("GB", {}),
    "electricitymaps": ("GB", {"ELECTRICITYMAPS_API_KEY": CANARY}),
    "watttime": ("GB", {"WATTTIME_USERNAME": "wt-user-x", "WATTTIME_PASSWORD": CANARY}),
    "carbon_aware_sdk": ("GB", {}),
}


@pytest.fixture
def make_provider(httpserver, monkeypatch):
    made = []

    def build(name):
        for key, value in PROVIDERS[name][1].items():
            monkeypatch.setenv(key, value)
        url = httpserver.url_for("")
        provider = get_provider(name, base_url=url, **FAST)
        made.append(provider)
        return provider

    yield build
    for provider in made:
        provider.close()


def serve_outage(httpserver, status=500):
    # WattTime logs in first: let the login through so the outage is the data endpoint's.
    httpserver.expect_request("/login").respond_with_json({"token": "tok-" + CANARY})
    httpserver.expect_request(re.compile(".*")).respond_with_data("down", status=status)


def clock():
    return NOW


@pytest.mark.parametrize("name", list(PROVIDERS))
def test_fail_open_runs_now_and_records_the_outage(name, httpserver, make_provider):
    serve_outage(httpserver)
    region = PROVIDERS[name][0]
    policy = GatePolicy(regions=(region,), duration=timedelta(hours=1), provider=name, max_delay=timedelta(hours=6))
    decision = decide(policy, providers={name: make_provider(name)}, clock=clock)
    assert decision.should_run and decision.action == "run_now" and decision.start_at == NOW
    record = decision.to_record()
    assert record.failure_policy_applied == "fail_open"
    assert [a.to_dict() for a in record.attempts] == [
        {"provider": name, "region": region, "ok": False, "error_kind": "unavailable", "error": record.attempts[0].error}
    ]
    assert f"{name} (region" in record.attempts[0].error and "HTTP 500" in record.attempts[0].error
    assert "fail_open policy: running now" in record.reason


@pytest.mark.parametrize("name", list(PROVIDERS))
def test_fail_closed_raises_with_the_record(name, httpserver, make_provider):
    serve_outage(httpserver, status=503)
    region = PROVIDERS[name][0]
    policy = GatePolicy(regions=(region,), duration=timedelta(hours=1), provider=name, on_provider_failure="fail_closed")
    with pytest.raises(GateError, match=f"no provider answered .*{name}.*fail_closed policy: not running") as info:
        decide(policy, providers={name: make_provider(name)}, clock=clock)
    assert info.value.record.failure_policy_applied == "fail_closed"
    assert info.value.record.should_run is False


@pytest.mark.parametrize("name", list(PROVIDERS))
def test_fallback_to_the_embedded_data(name, httpserver, make_provider):
    serve_outage(httpserver)
    region = PROVIDERS[name][0]
    policy = GatePolicy(
        regions=(region,), duration=timedelta(hours=2), provider=name, fallback_providers=("embedded",),
        max_delay=timedelta(hours=10), on_provider_failure="fail_closed",
    )
    decision = decide(policy, providers={name: make_provider(name)}, clock=clock)
    record = decision.to_record()
    assert record.fallback_used is True and record.failure_policy_applied is None
    assert [(a.provider, a.ok) for a in record.attempts] == [(name, False), ("embedded", True)]
    assert record.regions[0].provider == "embedded" and record.regions[0].data_kind == "historical"
    embedded_only = decide(GatePolicy(regions=("GB",), duration=timedelta(hours=2), max_delay=timedelta(hours=10)), clock=clock)
    assert decision.start_at == embedded_only.start_at


def test_uk_forecast_drives_the_decision(httpserver, make_provider):
    values = [300, 280, 120, 100, 110, 260, 270, 290]  # 30-minute slots from NOW
    rows = [
        {"from": (NOW + timedelta(minutes=30 * i)).strftime("%Y-%m-%dT%H:%MZ"),
         "to": (NOW + timedelta(minutes=30 * (i + 1))).strftime("%Y-%m-%dT%H:%MZ"),
         "intensity": {"forecast": v, "actual": None, "index": "moderate"}}
        for i, v in enumerate(values)
    ]
    httpserver.expect_request("/intensity/2023-06-14T09:00Z/fw48h").respond_with_json({"data": rows})
    policy = GatePolicy(regions=("GB",), duration=timedelta(hours=1), provider="uk", deadline=NOW + timedelta(hours=4),
                        energy_kwh=10.0)
    decision = decide(policy, providers={"uk": make_provider("uk")}, clock=clock)
    assert decision.start_at == NOW + timedelta(hours=1, minutes=30)  # slots 3-4: (100 + 110) / 2
    assert decision.chosen.average == 105.0 and decision.run_now.average == 290.0
    assert decision.savings_g == pytest.approx(10.0 * (290 - 105))
    assert decision.to_record().regions[0].data_kind == "forecast"


def test_no_credential_in_records_errors_or_logs(httpserver, make_provider, caplog):
    caplog.set_level(logging.DEBUG)
    httpserver.expect_request("/v3/carbon-intensity/forecast").respond_with_data(f"bad key {CANARY}", status=401)
    httpserver.expect_request("/login").respond_with_json({"token": "tok-" + CANARY})
    httpserver.expect_request("/v3/forecast").respond_with_data(f"<html>{CANARY}", status=200)
    policy = GatePolicy(regions=("GB",), duration=timedelta(hours=1), provider="electricitymaps",
                        fallback_providers=("watttime",), on_provider_failure="fail_closed")
    providers = {"electricitymaps": make_provider("electricitymaps"), "watttime": make_provider("watttime")}
    with pytest.raises(GateError) as info:
        decide(policy, providers=providers, clock=clock)
    kinds = [a.error_kind for a in info.value.record.attempts]
    assert kinds == ["auth", "bad_response"]
    texts = [str(info.value), repr(info.value), info.value.record.to_json(), caplog.text]
    assert all(CANARY not in text for text in texts)
    # the secrets were really in play: the server saw them
    sent = [str(request.headers) for request, _ in httpserver.log]
    assert any(CANARY in s for s in sent)
