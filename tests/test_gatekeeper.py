"""The carbon-budget gatekeeper end to end: kfp.Client -> the gatekeeper (uvicorn on a free
loopback port) -> a local stand-in for the KFP v2beta1 API (a real HTTP server), on a real
ledger (SQLite, and PostgreSQL where marked) and the bundled Rego policy. No mocks."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import kfp
import pytest
from conftest import ADMIN, BOARD, TOKENS, LiveGatekeeper, free_port
from kfp_server_api.exceptions import ApiException
from kfp_standin import KfpStandIn

from greenkfp.components.governance.tokens import Tokens

ROOT = Path(__file__).resolve().parents[1]
GATE_PIPELINE = ROOT / "compiled" / "kubeflow" / "carbon_gate.yaml"
NOW = datetime.now(timezone.utc)
PERIOD = NOW.strftime("%Y-%m")


@pytest.fixture
def kfp_api(httpserver):
    return KfpStandIn(httpserver)


@pytest.fixture
def gatekeeper(start_gatekeeper, kfp_api):
    live = start_gatekeeper(kfp_api.url)
    live.core.ledger.set_limit("ml", PERIOD, 10_000.0, "hard", actor="lead")
    live.core.ledger.set_limit("search", PERIOD, 5.0, "hard", actor="lead")
    return live


def _client(gatekeeper: LiveGatekeeper, team: str = "ml") -> kfp.Client:
    return kfp.Client(host=gatekeeper.url, existing_token=TOKENS[team])


def _error(exc: ApiException) -> dict:
    return json.loads(exc.body)


# --------------------------------------------------------------------------- kfp.Client through the gatekeeper


def test_kfp_client_run_is_estimated_reserved_and_forwarded_unchanged(gatekeeper, kfp_api):
    client = _client(gatekeeper)
    result = client.create_run_from_pipeline_package(str(GATE_PIPELINE), arguments={"energy_kwh": 2.0},
                                                     experiment_name="green", run_name="budgeted")
    (run,) = kfp_api.runs.values()
    assert result.run_id == run["run_id"]  # KFP's own answer came back
    assert run["display_name"] == "budgeted" and run["runtime_config"]["parameters"]["energy_kwh"] == 2.0
    assert run["pipeline_spec"]["pipeline_spec"]["pipelineInfo"]["name"] == "greenkfp-carbon-gate"
    # the gatekeeper's token stays with the gatekeeper; KFP gets the upstream's own
    assert kfp_api.authorizations == ["Bearer upstream-kfp-token-0123456"]
    status = gatekeeper.core.ledger.status("ml", PERIOD)
    # reserved under a provisional id, then moved to KFP's run id (one open reservation)
    provisional, entry = [e for e in gatekeeper.core.ledger.entries(team="ml") if e.kind == "reservation"]
    assert entry.run_id == run["run_id"] != provisional.run_id and entry.amount_g == provisional.amount_g
    # priced from energy_kwh: 2 kWh at GB's intensity over the gate's run-now window
    assert entry.pipeline == "greenkfp-carbon-gate" and status.reserved_g == pytest.approx(entry.amount_g)
    assert 2 * 20 < entry.amount_g < 2 * 600
    assert list(kfp_api.experiments.values())[0]["display_name"] == "green"


def test_kfp_client_refusal_is_403_in_kfps_error_format_with_the_reasons(gatekeeper, kfp_api):
    client = _client(gatekeeper, "search")  # a 5 g budget
    with pytest.raises(ApiException) as raised:
        client.create_run_from_pipeline_package(str(GATE_PIPELINE), arguments={"energy_kwh": 2.0})
    assert raised.value.status == 403
    body = _error(raised.value)
    assert body["code"] == 7 and body["error"] == body["message"]
    assert "exceeds" in body["message"] and "team search" in body["message"]
    quota = next(d for d in body["details"] if d["@type"].endswith("QuotaFailure"))
    assert any("exceeds" in v["description"] for v in quota["violations"])
    info = next(d for d in body["details"] if d["@type"].endswith("ErrorInfo"))
    assert info["reason"] == "CARBON_BUDGET_REFUSED" and info["metadata"]["team"] == "search"
    assert kfp_api.runs == {}  # nothing reached KFP
    (decision,) = [e for e in gatekeeper.core.ledger.entries(team="search") if e.kind == "decision"]
    assert decision.action == "refused"


def test_recurring_run_is_admitted_and_forwarded(gatekeeper, kfp_api):
    client = _client(gatekeeper)
    experiment = client.create_experiment("nightly")
    created = client.create_recurring_run(experiment.experiment_id, "nightly-gate", cron_expression="0 0 3 * * *",
                                          pipeline_package_path=str(GATE_PIPELINE), params={"energy_kwh": 1.0})
    assert created.recurring_run_id in kfp_api.recurring
    assert [e.kind for e in gatekeeper.core.ledger.entries(team="ml")
            if e.kind in ("decision", "reservation")] == ["decision", "reservation"]


def test_a_stored_pipeline_version_is_read_from_kfp_to_estimate_it(gatekeeper, kfp_api):
    import yaml

    spec = yaml.safe_load(GATE_PIPELINE.read_text().split("\n---\n")[0])
    kfp_api.versions["v1"] = {"pipeline_id": "p1", "pipeline_version_id": "v1", "pipeline_spec": spec}
    body = {"display_name": "from-version", "pipeline_version_reference": {"pipeline_id": "p1",
                                                                           "pipeline_version_id": "v1"},
            "runtime_config": {"parameters": {"energy_kwh": 1.0}}}
    reply = gatekeeper.call("POST", "/apis/v2beta1/runs", TOKENS["ml"], json=body)
    assert reply.status_code == 200, reply.text
    entry = [e for e in gatekeeper.core.ledger.entries(team="ml") if e.kind == "reservation"][-1]
    assert entry.pipeline == "greenkfp-carbon-gate" and reply.headers["X-Greenkfp-Run-Id"] == entry.run_id
    assert entry.run_id == reply.json()["run_id"]
    missing = {**body, "pipeline_version_reference": {"pipeline_id": "p1", "pipeline_version_id": "nope"}}
    reply = gatekeeper.call("POST", "/apis/v2beta1/runs", TOKENS["ml"], json=missing)
    assert reply.status_code == 404 and reply.json()["message"] == "pipeline version not found"  # KFP's answer


def test_upstream_failure_releases_the_reservation_and_returns_kfps_answer(gatekeeper, kfp_api):
    kfp_api.fail_creates = True
    with pytest.raises(ApiException) as raised:
        _client(gatekeeper).create_run_from_pipeline_package(str(GATE_PIPELINE), arguments={"energy_kwh": 1.0})
    assert raised.value.status == 500 and "the database is down" in _error(raised.value)["message"]
    kinds = [e.kind for e in gatekeeper.core.ledger.entries(team="ml")]
    assert kinds.count("reservation") == 1 and kinds.count("release") == 1
    assert gatekeeper.core.ledger.status("ml", PERIOD).reserved_g == 0


def test_unreachable_upstream_is_503_unavailable_and_releases(start_gatekeeper):
    live = start_gatekeeper(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    live.core.ledger.set_limit("ml", PERIOD, 10_000.0, "hard", actor="lead")
    body = json.loads(json.dumps({"display_name": "r", "pipeline_spec": {"pipelineInfo": {"name": "p"}},
                                  "runtime_config": {"parameters": {"energy_kwh": 1.0}}}))
    reply = live.call("POST", "/apis/v2beta1/runs", TOKENS["ml"], json=body)
    assert reply.status_code == 503 and reply.json()["code"] == 14 and "cannot reach the KFP API" in reply.text
    assert live.core.ledger.status("ml", PERIOD).reserved_g == 0
    assert [e.kind for e in live.core.ledger.entries(team="ml")].count("release") == 1


def test_a_bad_token_is_401_and_healthz_needs_none(gatekeeper, kfp_api):
    client = kfp.Client(host=gatekeeper.url, existing_token="not-a-valid-token-at-all")  # healthz answers
    with pytest.raises(ApiException) as raised:
        client.list_experiments()
    assert raised.value.status == 401 and _error(raised.value)["code"] == 16
    assert raised.value.headers["WWW-Authenticate"].startswith("Bearer")
    for headers in ({}, {"Authorization": "Basic bWw6bWw="}, {"Authorization": f"Bearer {TOKENS['ml']}x"}):
        reply = httpx.post(gatekeeper.url + "/apis/greenkfp/v1/admissions", headers=headers,
                           json={"pipeline": "p", "run_id": "r"})
        assert reply.status_code == 401
    assert kfp_api.runs == {}


def test_paths_outside_the_subset_are_404_in_kfps_format(gatekeeper):
    for method, path in (("GET", "/apis/v2beta1/pipelines"), ("DELETE", "/apis/v2beta1/runs/r1"),
                         ("POST", "/apis/v2beta1/runs/r1:terminate"), ("GET", "/nothing")):
        reply = gatekeeper.call(method, path, TOKENS["ml"])
        assert reply.status_code == 404 and reply.json()["code"] == 5, (method, path)
        assert "not served by the greenkfp gatekeeper" in reply.json()["message"]


def test_reads_are_forwarded_with_the_query(gatekeeper, kfp_api):
    client = _client(gatekeeper)
    client.create_run_from_pipeline_package(str(GATE_PIPELINE), arguments={"energy_kwh": 1.0}, experiment_name="e")
    (run_id,) = kfp_api.runs
    assert client.get_run(run_id).run_id == run_id
    assert client.list_runs(page_size=5).total_size == 1
    assert client.get_experiment(experiment_name="e").display_name == "e"  # a filtered list
    reply = gatekeeper.call("GET", "/apis/v2beta1/runs/missing", TOKENS["ml"])
    assert reply.status_code == 404 and reply.json()["message"] == "run not found"


def test_an_idempotency_key_replays_instead_of_creating_twice(gatekeeper, kfp_api):
    body = {"display_name": "r", "pipeline_spec": {"pipelineInfo": {"name": "p"}},
            "runtime_config": {"parameters": {"energy_kwh": 1.0}}}
    headers = {"Authorization": f"Bearer {TOKENS['ml']}", "Idempotency-Key": "nightly-42"}
    first = httpx.post(gatekeeper.url + "/apis/v2beta1/runs", json=body, timeout=30, headers=headers)
    assert first.status_code == 200 and first.headers["X-Greenkfp-Run-Id"] == first.json()["run_id"]
    again = httpx.post(gatekeeper.url + "/apis/v2beta1/runs", json=body, timeout=30, headers=headers)
    assert again.status_code == 409 and again.json()["code"] == 10 and len(kfp_api.runs) == 1


def test_a_team_without_a_budget_is_refused(gatekeeper, start_gatekeeper, kfp_api):
    tokens = Tokens(teams={**TOKENS, "new": "new-team-token-0123456789"})
    live = start_gatekeeper(kfp_api.url, ledger_url=gatekeeper.core.settings.ledger_url, tokens=tokens)
    reply = live.call("POST", "/apis/greenkfp/v1/admissions", "new-team-token-0123456789",
                      json={"pipeline": "p", "run_id": "r-new", "energy_kwh": 1.0})
    assert reply.status_code == 403 and "team new has no carbon budget" in reply.json()["message"]
    reply = live.call("GET", f"/apis/greenkfp/v1/budgets/new/{PERIOD}", "new-team-token-0123456789")
    assert reply.status_code == 404


# --------------------------------------------------------------------------- the admission API


@pytest.mark.parametrize(("backend", "threads"), [("sqlite", 8), ("postgresql", 8), ("postgresql", 0)])
def test_admission_settlement_and_budget_endpoints(backend, threads, start_gatekeeper, kfp_api, request):
    url = None if backend == "sqlite" else request.getfixturevalue("postgres_server").fresh_url()
    live = start_gatekeeper(kfp_api.url, ledger_url=url, threads=threads)  # 0: the calls on the event loop
    live.core.ledger.set_limit("ml", PERIOD, 1000.0, "soft", overdraft_percent=10.0, actor="lead")
    ml = TOKENS["ml"]
    ask = {"pipeline": "training", "run_id": "run-1", "energy_kwh": 1.0, "region": "DE-LU"}
    first = live.call("POST", "/apis/greenkfp/v1/admissions", ml, json=ask)
    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["granted"] and not answer["replayed"] and answer["team"] == "ml" and answer["period"] == PERIOD
    assert answer["estimate"]["method"] == "energy_kwh" and answer["region"] == "DE-LU"
    assert "annual average" in answer["estimate"]["intensity_basis"]  # no planned window given
    assert answer["reserved_g"] == pytest.approx(answer["estimate"]["estimate_g"])
    assert answer["policy"]["engine"] == "regorus" and answer["policy"]["allow"]
    # the same run id again: the first answer, nothing new written
    again = live.call("POST", "/apis/greenkfp/v1/admissions", ml, json=ask).json()
    assert again["replayed"] and again["reservation"]["decided_at"] == answer["reservation"]["decided_at"]
    budget = live.call("GET", f"/apis/greenkfp/v1/budgets/ml/{PERIOD}", ml).json()
    assert budget["reserved_g"] == pytest.approx(answer["reserved_g"])
    # settle: the difference goes back
    settled = live.call("POST", "/apis/greenkfp/v1/settlements", ml, json={"run_id": "run-1", "actual_g": 100.0})
    assert settled.status_code == 200 and settled.json()["entry"]["detail"]["reserved_g"] == pytest.approx(
        answer["reserved_g"])
    budget = live.call("GET", f"/apis/greenkfp/v1/budgets/ml/{PERIOD}", ml).json()
    assert budget["reserved_g"] == 0 and budget["settled_g"] == 100.0 and budget["remaining_g"] == 900.0
    # into the soft tier's overdraft: granted, flagged for review; beyond it: refused with 403
    over = live.call("POST", "/apis/greenkfp/v1/admissions", ml,
                     json={"pipeline": "training", "run_id": "run-2", "energy_kwh": 6.0, "region": "GB"})
    assert over.status_code == 200 and over.json()["review_required"], over.text
    refused = live.call("POST", "/apis/greenkfp/v1/admissions", ml,
                        json={"pipeline": "training", "run_id": "run-3", "energy_kwh": 50.0, "period": PERIOD})
    assert refused.status_code == 403 and refused.json()["granted"] is False and refused.json()["reasons"]


def test_a_team_cannot_reserve_settle_or_read_for_another(gatekeeper):
    ml, search = TOKENS["ml"], TOKENS["search"]
    assert gatekeeper.call("POST", "/apis/greenkfp/v1/admissions", ml,
                           json={"pipeline": "p", "run_id": "ml-run", "energy_kwh": 0.5}).status_code == 200
    reply = gatekeeper.call("GET", f"/apis/greenkfp/v1/budgets/ml/{PERIOD}", search)
    assert reply.status_code == 403 and reply.json()["code"] == 7
    # another team's run is as unknown as a run id nobody used: the same status, the same message
    theirs = gatekeeper.call("POST", "/apis/greenkfp/v1/settlements", search, json={"run_id": "ml-run", "actual_g": 1})
    unknown = gatekeeper.call("POST", "/apis/greenkfp/v1/settlements", search, json={"run_id": "no-run", "actual_g": 1})
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json() == json.loads(unknown.text.replace("no-run", "ml-run"))
    assert theirs.json()["message"] == "run_id has no reservation of team search in the ledger, got 'ml-run'"
    assert "ml" not in theirs.json()["message"].replace("ml-run", "")
    assert gatekeeper.core.ledger.status("ml", PERIOD).settled_g == 0
    # run ids are per team: the same id from another team is its own run, not a replay of ml's nor a 409
    reply = gatekeeper.call("POST", "/apis/greenkfp/v1/admissions", search,
                            json={"pipeline": "p", "run_id": "ml-run", "energy_kwh": 0.001})
    assert reply.status_code == 200 and reply.json()["team"] == "search" and not reply.json()["replayed"], reply.text
    assert gatekeeper.call("POST", "/apis/greenkfp/v1/settlements", search,
                           json={"run_id": "ml-run", "actual_g": 0.2}).status_code == 200
    assert gatekeeper.core.ledger.status("ml", PERIOD).reserved_g > 0  # ml's run untouched
    assert gatekeeper.call("GET", f"/apis/greenkfp/v1/budgets/ml/{PERIOD}", ADMIN).status_code == 200
    assert gatekeeper.call("POST", "/apis/greenkfp/v1/settlements", ml,
                           json={"run_id": "nope", "actual_g": 1}).status_code == 404
    # the admin's token is not a team's
    reply = gatekeeper.call("POST", "/apis/greenkfp/v1/admissions", ADMIN, json={"pipeline": "p", "run_id": "a"})
    assert reply.status_code == 403


@pytest.mark.parametrize("body, message", [
    ({"run_id": "r"}, "pipeline must be a non-empty text"),
    ({"pipeline": "p", "run_id": "r", "energy_kwh": -1}, "energy_kwh must be a number from 0 to 1e+09"),
    ({"pipeline": "p", "run_id": "r", "period": "2026-13"}, "period must be a calendar month"),
    ({"pipeline": "p", "run_id": "r", "steps": 0}, "steps must be a whole number"),
    ({"pipeline": "p", "run_id": "r", "estimate_g": 1}, "unknown field 'estimate_g'"),
    ({"pipeline": "p", "run_id": "r", "window_start": "2026-01-01T00:00:00"}, "window_start must be an ISO 8601"),
    ({"pipeline": "p", "run_id": "r", "region": "Atlantis"}, "Atlantis"),
    ([1, 2], "must be a JSON object"),
])
def test_bad_admission_requests_are_400_naming_the_field(gatekeeper, body, message):
    reply = gatekeeper.call("POST", "/apis/greenkfp/v1/admissions", TOKENS["ml"], json=body)
    assert reply.status_code == 400 and reply.json()["code"] == 3, reply.text
    assert message in reply.json()["message"]
    reply = gatekeeper.call("POST", "/apis/greenkfp/v1/admissions", TOKENS["ml"], content=b'{"pipeline": NaN}')
    assert reply.status_code == 400


def test_admin_and_board_actions_need_their_own_tokens(gatekeeper):
    ml = TOKENS["ml"]
    assert gatekeeper.call("PUT", f"/apis/greenkfp/v1/budgets/ml/{PERIOD}", ml,
                           json={"limit_g": 1e9, "tier": "hard"}).status_code == 403
    reply = gatekeeper.call("PUT", f"/apis/greenkfp/v1/budgets/ml/{PERIOD}", ADMIN, json={"limit_g": 50, "tier": "hard"})
    assert reply.status_code == 200 and reply.json()["budget"]["limit_g"] == 50
    assert gatekeeper.call("POST", "/apis/greenkfp/v1/board/members", ADMIN, json={"name": "carol"}).status_code == 200
    expires = (NOW + timedelta(days=3)).isoformat()
    grant = gatekeeper.call("POST", "/apis/greenkfp/v1/exceptions", ml,
                            json={"period": PERIOD, "amount_g": 500, "reason": "paper deadline", "expires_at": expires})
    assert grant.status_code == 200 and grant.json()["status"] == "pending" and grant.json()["requester"] == "ml"
    path = f"/apis/greenkfp/v1/exceptions/{grant.json()['id']}:approve"
    assert gatekeeper.call("POST", path, ml, json={}).status_code == 403  # a team cannot approve
    approved = gatekeeper.call("POST", path, BOARD["carol"], json={})
    assert approved.status_code == 200 and approved.json()["approver"] == "carol"
    # the exception widens ml's budget at once (the kept status is dropped)
    reply = gatekeeper.call("POST", "/apis/greenkfp/v1/admissions", ml,
                            json={"pipeline": "p", "run_id": "with-exception", "energy_kwh": 2.0})
    assert reply.status_code == 200, reply.text
    moved = gatekeeper.call("POST", "/apis/greenkfp/v1/transfers", BOARD["carol"],
                            json={"from_team": "search", "to_team": "ml", "period": PERIOD, "amount_g": 1.0,
                                  "reason": "rebalance"})
    assert moved.status_code == 200
    assert gatekeeper.call("GET", f"/apis/greenkfp/v1/budgets/search/{PERIOD}", ADMIN).json()["limit_g"] == 4.0


def test_no_token_reaches_a_log_or_an_answer(gatekeeper, kfp_api, caplog):
    caplog.set_level(logging.DEBUG)
    client = _client(gatekeeper)
    client.create_run_from_pipeline_package(str(GATE_PIPELINE), arguments={"energy_kwh": 1.0})
    with pytest.raises(ApiException) as raised:
        _client(gatekeeper, "search").create_run_from_pipeline_package(str(GATE_PIPELINE),
                                                                       arguments={"energy_kwh": 9.0})
    secrets = [*TOKENS.values(), ADMIN, "upstream-kfp-token-0123456"]
    seen = caplog.text + str(raised.value) + json.dumps([dict(r) for r in kfp_api.runs.values()])
    assert not any(secret in seen for secret in secrets)
    assert "upstream-kfp-token" not in repr(gatekeeper.core.settings)


def test_a_kept_status_never_decides_a_refusal(gatekeeper):
    """A grant may use a status kept for a second; a refusal is decided on a fresh one."""
    ml = TOKENS["ml"]
    gatekeeper.core.ledger.set_limit("ml", PERIOD, 300.0, "hard", actor="lead")
    assert gatekeeper.call("POST", "/apis/greenkfp/v1/admissions", ml,
                           json={"pipeline": "p", "run_id": "a", "energy_kwh": 1.0}).status_code == 200  # kept
    gatekeeper.core.ledger.set_limit("ml", PERIOD, 1000.0, "hard", actor="lead")  # behind the gatekeeper's back
    reply = gatekeeper.call("POST", "/apis/greenkfp/v1/admissions", ml,
                            json={"pipeline": "p", "run_id": "b", "energy_kwh": 3.0})
    assert reply.status_code == 200, reply.text  # the kept 300 g limit would have refused it


# --------------------------------------------------------------------------- the components' core


def test_the_budget_components_reserve_then_settle_through_the_gatekeeper(gatekeeper, tmp_path, monkeypatch):
    from kfp.dsl import Artifact, Markdown

    from greenkfp.components import carbon_budget_gate, settle_carbon_budget
    from greenkfp.components.records import Reservation, SustainabilityReport, read_record

    monkeypatch.setenv("GREENKFP_GATEKEEPER_TOKEN", TOKENS["ml"])
    reservation, summary = Artifact(uri=str(tmp_path / "reservation")), Markdown(uri=str(tmp_path / "summary.md"))
    outputs = carbon_budget_gate.python_func(reservation=reservation, summary=summary, gatekeeper_url=gatekeeper.url,
                                             pipeline="flagship", run_id="kfp-run-1", energy_kwh=1.5,
                                             regions=["DE-LU", "GB"])
    record = read_record(Reservation, reservation.path)
    assert record.granted and record.run_id == "kfp-run-1" and outputs.reserved_g == pytest.approx(record.amount_g)
    assert reservation.metadata["schema"] == Reservation.SCHEMA and not outputs.review_required
    assert "# Carbon budget: granted" in Path(summary.path).read_text()
    # the report's training emissions at the hours the fits ran are what is settled
    report = tmp_path / "report.json"
    report.write_text(json.dumps(_report(hourly_g=42.5)))
    grams = settle_carbon_budget.python_func(report_json=Artifact(uri=str(report)),
                                             summary=Markdown(uri=str(tmp_path / "settled.md")),
                                             gatekeeper_url=gatekeeper.url, run_id="kfp-run-1")
    assert grams == 42.5 and gatekeeper.core.ledger.status("ml", PERIOD).settled_g == 42.5
    assert "42.5 g CO2eq" in (tmp_path / "settled.md").read_text()
    assert read_record(SustainabilityReport, report).training.hourly_g == 42.5


def test_a_refused_budget_fails_the_gate_step_with_the_reasons(gatekeeper, tmp_path, monkeypatch):
    from kfp.dsl import Artifact, Markdown

    from greenkfp.components import carbon_budget_gate
    from greenkfp.components.governance.client import AdmissionRefused, GatekeeperError

    monkeypatch.setenv("GREENKFP_GATEKEEPER_TOKEN", TOKENS["search"])  # a 5 g budget
    arguments = dict(reservation=Artifact(uri=str(tmp_path / "r")), summary=Markdown(uri=str(tmp_path / "s")),
                     gatekeeper_url=gatekeeper.url, pipeline="flagship", run_id="kfp-run-2", energy_kwh=3.0)
    with pytest.raises(AdmissionRefused, match=r"carbon budget refused run kfp-run-2 of team search .*exceeds") as e:
        carbon_budget_gate.python_func(**arguments)
    assert e.value.answer["granted"] is False and e.value.reasons
    monkeypatch.delenv("GREENKFP_GATEKEEPER_TOKEN")
    with pytest.raises(GatekeeperError, match="GREENKFP_GATEKEEPER_TOKEN holds no gatekeeper token"):
        carbon_budget_gate.python_func(**arguments)
    monkeypatch.setenv("GREENKFP_GATEKEEPER_TOKEN", "a-wrong-token-0123456789")
    with pytest.raises(GatekeeperError, match="HTTP 401") as e:
        carbon_budget_gate.python_func(**arguments)
    assert "a-wrong-token" not in str(e.value)


def test_the_client_retries_a_gatekeeper_that_is_down_then_says_so(monkeypatch):
    from greenkfp.components.governance.client import GatekeeperClient, GatekeeperError

    url = f"http://127.0.0.1:{free_port()}"
    with GatekeeperClient(url, "some-token-0123456789", timeout_s=1, retries=1) as client:
        with pytest.raises(GatekeeperError, match=r"cannot reach http://127\.0\.0\.1:\d+ \(ConnectError\)"):
            client.admit(pipeline="p", run_id="r")
    with pytest.raises(GatekeeperError, match="gatekeeper_url must be an http"):
        GatekeeperClient("ftp://example.org", "t")


def _report(hourly_g=None, optimized_g=10.0, scheduled_g=20.0, realized=True) -> dict:
    """A sustainability report's JSON with the training part the settlement reads."""
    from greenkfp.components.records import SustainabilityReport

    return {"schema": SustainabilityReport.SCHEMA,
            "training": {"energy_kwh": 0.1, "scheduled_g": scheduled_g, "optimized_g": optimized_g, "basis": "by hand",
                         "hourly_g": hourly_g, "realized": realized},
            "inference": {"expected_inferences": 1.0, "scheduled_g": None, "optimized_g": None, "basis": "by hand"},
            "total": {"scheduled_g": None, "optimized_g": None, "saved_g": None},
            "promoted": True, "gate": {"action": "run_now", "region": "GB"}}


@pytest.mark.parametrize("training, grams, basis", [
    ({"hourly_g": 3.0}, 3.0, "at the hours they ran"),
    ({"realized": True}, 10.0, "window the run waited for"),
    ({"realized": False}, 20.0, "run-now"),
])
def test_a_runs_emissions_come_from_its_report(training, grams, basis):
    from greenkfp.components.governance.client import run_emissions
    from greenkfp.components.records import SustainabilityReport

    emitted = run_emissions(SustainabilityReport.from_dict(_report(**training)))
    assert emitted.grams == grams and basis in emitted.basis
    with pytest.raises(ValueError, match="no training emissions"):
        run_emissions(SustainabilityReport.from_dict(_report(optimized_g=None)))


def test_settled_runs_become_the_estimate_of_the_next(gatekeeper):
    ml = TOKENS["ml"]
    for i, actual in enumerate((100.0, 120.0, 200.0)):
        ask = {"pipeline": "nightly", "run_id": f"n{i}", "energy_kwh": 1.0}
        assert gatekeeper.call("POST", "/apis/greenkfp/v1/admissions", ml, json=ask).status_code == 200
        assert gatekeeper.call("POST", "/apis/greenkfp/v1/settlements", ml,
                               json={"run_id": f"n{i}", "actual_g": actual}).status_code == 200
    answer = gatekeeper.call("POST", "/apis/greenkfp/v1/admissions", ml,
                             json={"pipeline": "nightly", "run_id": "n3", "energy_kwh": 1.0}).json()
    # the p90 of the three settled runs (numpy's linear interpolation), not the energy_kwh figure
    assert answer["estimate"]["method"] == "history" and answer["reserved_g"] == pytest.approx(184.0)
    assert answer["estimate"]["median_g"] == 120.0


def test_submit_vertex_asks_the_gatekeeper_first_and_a_refusal_stops_it(gatekeeper, monkeypatch):
    from greenkfp.components.governance.client import AdmissionRefused, GatekeeperError
    from greenkfp.pipelines import submit

    monkeypatch.setenv("TEAM_TOKEN", TOKENS["ml"])
    run_id = submit.budget_run_id()
    answer = submit.ask_gatekeeper(gatekeeper.url, run_id=run_id, pipeline="greenkfp-carbon-aware-training",
                                   params={"energy_kwh": 2.0}, labels={"team": "ml"}, token_env="TEAM_TOKEN")
    assert answer["granted"] and answer["run_id"] == run_id and answer["reserved_g"] > 0
    assert gatekeeper.core.ledger.status("ml", PERIOD).reserved_g == pytest.approx(answer["reserved_g"])
    # a team over its budget (5 g) is refused with the reasons, and nothing is submitted by the caller
    monkeypatch.setenv("TEAM_TOKEN", TOKENS["search"])
    with pytest.raises(AdmissionRefused) as refused:
        submit.ask_gatekeeper(gatekeeper.url, run_id=submit.budget_run_id(), pipeline="greenkfp-carbon-aware-training",
                              params={"energy_kwh": 50.0}, labels={}, token_env="TEAM_TOKEN")
    assert refused.value.reasons and "exceeds" in " ".join(refused.value.reasons)
    # no token in the environment: a one-line GatekeeperError naming the variable, not a traceback
    monkeypatch.delenv("TEAM_TOKEN")
    with pytest.raises(GatekeeperError, match="TEAM_TOKEN"):
        submit.ask_gatekeeper(gatekeeper.url, run_id=submit.budget_run_id(), pipeline="p", params={}, labels={},
                              token_env="TEAM_TOKEN")


def test_a_team_cannot_charge_a_run_to_another_month(gatekeeper):
    future = (NOW.replace(day=1) + timedelta(days=40)).strftime("%Y-%m")
    gatekeeper.core.ledger.set_limit("ml", future, 10_000.0, "hard", actor="lead")
    headers = {"Authorization": f"Bearer {TOKENS['ml']}"}
    answer = httpx.post(f"{gatekeeper.url}/apis/greenkfp/v1/admissions", headers=headers, timeout=10,
                        json={"pipeline": "p", "run_id": "future-1", "energy_kwh": 1.0, "period": future})
    assert answer.status_code == 400 and f"period must be the month the run starts ({PERIOD})" in answer.text
    far, after = (NOW + timedelta(days=400)).isoformat(), (NOW + timedelta(days=400, hours=1)).isoformat()
    answer = httpx.post(f"{gatekeeper.url}/apis/greenkfp/v1/admissions", headers=headers, timeout=10,
                        json={"pipeline": "p", "run_id": "future-2", "energy_kwh": 1.0, "window_start": far,
                              "window_end": after})
    assert answer.status_code == 400 and "window_start must be within 31 days" in answer.text
    assert gatekeeper.core.ledger.status("ml", future).reserved_g == 0


def test_submit_vertex_sends_a_planned_window_the_gatekeeper_accepts(gatekeeper, monkeypatch):
    from greenkfp.pipelines import submit

    monkeypatch.setenv("TEAM_TOKEN", TOKENS["ml"])
    answer = submit.ask_gatekeeper(gatekeeper.url, run_id=submit.budget_run_id(), pipeline="p", params={},
                                   labels={}, token_env="TEAM_TOKEN", window_start=NOW + timedelta(hours=3),
                                   duration_hours=2.0)
    assert answer["granted"]


# --------------------------------------------------------------------------- review fixes


def test_a_history_of_zero_gram_runs_is_a_valid_estimate_not_a_lockout(gatekeeper):
    ml = TOKENS["ml"]
    for i in range(3):
        assert gatekeeper.call("POST", "/apis/greenkfp/v1/admissions", ml,
                               json={"pipeline": "idle", "run_id": f"z{i}", "energy_kwh": 1.0}).status_code == 200
        assert gatekeeper.call("POST", "/apis/greenkfp/v1/settlements", ml,
                               json={"run_id": f"z{i}", "actual_g": 0}).status_code == 200
    reply = gatekeeper.call("POST", "/apis/greenkfp/v1/admissions", ml,
                            json={"pipeline": "idle", "run_id": "z3", "energy_kwh": 1.0})
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["granted"] and answer["estimate"]["method"] == "history" and answer["reserved_g"] == 0
    assert gatekeeper.call("POST", "/apis/greenkfp/v1/settlements", ml,
                           json={"run_id": "z3", "actual_g": 2.5}).status_code == 200


def test_a_huge_gram_figure_is_400_naming_the_field(gatekeeper):
    ml = TOKENS["ml"]
    assert gatekeeper.call("POST", "/apis/greenkfp/v1/admissions", ml,
                           json={"pipeline": "p", "run_id": "big", "energy_kwh": 1.0}).status_code == 200
    reply = gatekeeper.call("POST", "/apis/greenkfp/v1/settlements", ml, json={"run_id": "big", "actual_g": 1.7e308})
    assert reply.status_code == 400
    assert reply.json()["message"] == \
        "actual_g must be a finite number of grams >= 0, at most 1e15 g (1 Gt), got 1.7e+308"
    reply = gatekeeper.call("PUT", f"/apis/greenkfp/v1/budgets/ml/{PERIOD}", ADMIN,
                            json={"limit_g": 1.7e308, "tier": "hard"})
    assert reply.status_code == 400 and reply.json()["message"].startswith("limit_g must be a finite number of grams")
    budget = gatekeeper.call("GET", f"/apis/greenkfp/v1/budgets/ml/{PERIOD}", ml).json()
    assert budget["limit_g"] == 10_000 and budget["settled_g"] == 0  # a JSON number, not null


def test_names_up_to_the_ledgers_limits_pass_the_gatekeeper_the_policy_and_the_ledger(gatekeeper, kfp_api):
    MAX_PIPELINE_CHARS = MAX_RUN_ID_CHARS = 256  # noqa: N806 - errors.MAX_*_CHARS, as the API documents them
    ml = TOKENS["ml"]
    longest = {"pipeline": "p" * MAX_PIPELINE_CHARS, "run_id": "r" * MAX_RUN_ID_CHARS, "energy_kwh": 0.1}
    reply = gatekeeper.call("POST", "/apis/greenkfp/v1/admissions", ml, json=longest)
    assert reply.status_code == 200 and reply.json()["granted"], reply.text  # the policy does not refuse them
    for field, limit in (("pipeline", MAX_PIPELINE_CHARS), ("run_id", MAX_RUN_ID_CHARS)):
        reply = gatekeeper.call("POST", "/apis/greenkfp/v1/admissions", ml, json={**longest, field: "x" * (limit + 1)})
        assert reply.status_code == 400 and f"{field} must be a non-empty text of at most {limit} characters" \
            in reply.json()["message"]
    # the Idempotency-Key: the run id ml/<key>~<try> may have MAX_RUN_ID_CHARS characters, and the message says so
    body = {"display_name": "r", "pipeline_spec": {"pipelineInfo": {"name": "p"}},
            "runtime_config": {"parameters": {"energy_kwh": 0.1}}}
    key = "k" * (MAX_RUN_ID_CHARS - len("ml/") - len("~10"))  # room for a retry's ~n after a failed forward
    headers = {"Authorization": f"Bearer {ml}", "Idempotency-Key": key}
    assert httpx.post(gatekeeper.url + "/apis/v2beta1/runs", json=body, timeout=30, headers=headers).status_code == 200
    reply = httpx.post(gatekeeper.url + "/apis/v2beta1/runs", json=body, timeout=30,
                       headers={**headers, "Idempotency-Key": key + "k"})
    assert reply.status_code == 400 and reply.json()["message"] == (
        f"Idempotency-Key must be 1 to {len(key)} printable characters (the run id ml/<key>~<try> is at most "
        f"{MAX_RUN_ID_CHARS}), got {len(key) + 1} characters")


def test_a_proxied_run_with_its_own_gate_step_is_reserved_once(gatekeeper, kfp_api, tmp_path, monkeypatch):
    """kfp.Client -> the gatekeeper's proxy -> KFP, then the run's carbon_budget_gate step asks under
    KFP's run id (what dsl.PIPELINE_JOB_ID_PLACEHOLDER resolves to): the same decision, replayed."""
    from kfp.dsl import Artifact, Markdown

    from greenkfp.components import carbon_budget_gate, settle_carbon_budget
    from greenkfp.components.records import Reservation, read_record

    client = _client(gatekeeper)
    client.create_run_from_pipeline_package(str(GATE_PIPELINE), arguments={"energy_kwh": 2.0}, experiment_name="e")
    (kfp_run_id,) = kfp_api.runs
    ledger = gatekeeper.core.ledger
    reserved = ledger.status("ml", PERIOD).reserved_g
    assert reserved > 0
    monkeypatch.setenv("GREENKFP_GATEKEEPER_TOKEN", TOKENS["ml"])
    reservation = Artifact(uri=str(tmp_path / "reservation"))
    outputs = carbon_budget_gate.python_func(reservation=reservation, summary=Markdown(uri=str(tmp_path / "s.md")),
                                             gatekeeper_url=gatekeeper.url, pipeline="flagship", run_id=kfp_run_id,
                                             energy_kwh=3.0)
    record = read_record(Reservation, reservation.path)
    assert record.granted and record.replayed and record.run_id == kfp_run_id
    assert outputs.reserved_g == pytest.approx(reserved)  # the proxy's estimate, not the step's own
    assert ledger.status("ml", PERIOD).reserved_g == pytest.approx(reserved)  # charged once
    open_runs = [e.run_id for e in ledger.entries(team="ml") if e.kind == "reservation"
                 and not any(c.run_id == e.run_id and c.kind in ("settlement", "release")
                             for c in ledger.entries(team="ml"))]
    assert open_runs == [kfp_run_id]
    report = tmp_path / "report.json"
    report.write_text(json.dumps(_report(hourly_g=12.5)))
    settle_carbon_budget.python_func(report_json=Artifact(uri=str(report)),
                                     summary=Markdown(uri=str(tmp_path / "d.md")), gatekeeper_url=gatekeeper.url,
                                     run_id=kfp_run_id)
    status = ledger.status("ml", PERIOD)
    assert (status.reserved_g, status.settled_g) == (0, 12.5)


def test_the_run_id_header_is_kfps_run_id_and_a_retried_key_still_replays(gatekeeper, kfp_api):
    body = {"display_name": "r", "pipeline_spec": {"pipelineInfo": {"name": "p"}},
            "runtime_config": {"parameters": {"energy_kwh": 1.0}}}
    headers = {"Authorization": f"Bearer {TOKENS['ml']}", "Idempotency-Key": "nightly-7"}
    first = httpx.post(gatekeeper.url + "/apis/v2beta1/runs", json=body, timeout=30, headers=headers)
    assert first.status_code == 200 and first.headers["X-Greenkfp-Run-Id"] == first.json()["run_id"]
    again = httpx.post(gatekeeper.url + "/apis/v2beta1/runs", json=body, timeout=30, headers=headers)
    assert again.status_code == 409 and len(kfp_api.runs) == 1
    settled = gatekeeper.call("POST", "/apis/greenkfp/v1/settlements", TOKENS["ml"],
                              json={"run_id": first.headers["X-Greenkfp-Run-Id"], "actual_g": 3.0})
    assert settled.status_code == 200 and gatekeeper.core.ledger.status("ml", PERIOD).reserved_g == 0


def test_a_gate_step_that_asks_before_the_proxy_moved_its_reservation_is_still_charged_once(gatekeeper):
    """The race the re-key can lose: the run's step reserves under KFP's run id before the proxy
    moves its provisional reservation there; the provisional one is then released."""
    ml, core = TOKENS["ml"], gatekeeper.core
    assert gatekeeper.call("POST", "/apis/greenkfp/v1/admissions", ml,
                           json={"pipeline": "p", "run_id": "provisional", "energy_kwh": 1.0}).status_code == 200
    step = gatekeeper.call("POST", "/apis/greenkfp/v1/admissions", ml,
                           json={"pipeline": "p", "run_id": "kfp-run", "energy_kwh": 2.0}).json()
    assert core.rekey("ml", "provisional", "kfp-run")
    assert core.ledger.status("ml", PERIOD).reserved_g == pytest.approx(step["reserved_g"])


# --------------------------------------------------------------------------- hostile ids, keys and parameters


def _raw_get(gatekeeper: LiveGatekeeper, path: str, token: str) -> tuple[int, dict]:
    """A GET sent byte for byte as given (httpx would normalise '..' away before sending)."""
    import http.client
    from urllib.parse import urlsplit

    where = urlsplit(gatekeeper.url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        reply = connection.getresponse()
        return reply.status, json.loads(reply.read())
    finally:
        connection.close()


def _decided(gatekeeper: LiveGatekeeper) -> list:
    return [e for e in gatekeeper.core.ledger.entries(team="ml") if e.kind in ("decision", "reservation")]


def _upstream_paths(httpserver) -> list[str]:
    return [request.full_path if request.query_string else request.path for request, _ in httpserver.log]


@pytest.mark.parametrize("reference, field", [
    ({"pipeline_id": "../../v2beta1/experiments?x=", "pipeline_version_id": "y"}, "pipeline_id"),
    ({"pipeline_id": "../../runs", "pipeline_version_id": "y"}, "pipeline_id"),
    ({"pipeline_id": "p1", "pipeline_version_id": "../../../experiments"}, "pipeline_version_id"),
    ({"pipeline_id": "..", "pipeline_version_id": "y"}, "pipeline_id"),
    ({"pipeline_id": "p1", "pipeline_version_id": "v1\r\nX-Injected: 1"}, "pipeline_version_id"),
    ({"pipeline_id": "p%2F..", "pipeline_version_id": "y"}, "pipeline_id"),
    ({"pipeline_id": 12, "pipeline_version_id": "y"}, "pipeline_id"),
])
def test_a_pipeline_version_reference_cannot_name_another_kfp_path(gatekeeper, kfp_api, httpserver, reference, field):
    body = {"display_name": "r", "pipeline_version_reference": reference,
            "runtime_config": {"parameters": {"energy_kwh": 1.0}}}
    reply = gatekeeper.call("POST", "/apis/v2beta1/runs", TOKENS["ml"], json=body)
    assert reply.status_code == 400 and reply.json()["code"] == 3, reply.text
    assert f"pipeline_version_reference.{field} must be a KFP id" in reply.json()["message"]
    assert _upstream_paths(httpserver) == [] and _decided(gatekeeper) == []


@pytest.mark.parametrize("path, field", [
    ("/apis/v2beta1/runs/..", "run_id"),
    ("/apis/v2beta1/runs/%2E%2E", "run_id"),
    ("/apis/v2beta1/runs/.", "run_id"),
    ("/apis/v2beta1/runs/x%0d%0aX-Injected:%201", "run_id"),
    ("/apis/v2beta1/runs/%00", "run_id"),
    ("/apis/v2beta1/experiments/%2E%2E", "experiment_id"),
    ("/apis/v2beta1/recurringruns/x%3Fy%3D1", "recurring_run_id"),
])
def test_a_path_id_cannot_reach_another_kfp_path(gatekeeper, kfp_api, httpserver, path, field):
    status, body = _raw_get(gatekeeper, path, TOKENS["ml"])
    assert status == 400 and body["code"] == 3 and body["message"].startswith(f"{field} must be a KFP id"), body
    assert _upstream_paths(httpserver) == []


def test_an_encoded_slash_in_a_path_id_is_not_a_route(gatekeeper, kfp_api, httpserver):
    status, body = _raw_get(gatekeeper, "/apis/v2beta1/runs/a%2F..%2F..%2Fexperiments", TOKENS["ml"])
    assert status == 404 and "not served by the greenkfp gatekeeper" in body["message"]
    assert _upstream_paths(httpserver) == []


def test_a_good_path_id_is_forwarded_quoted_to_its_own_path(gatekeeper, kfp_api, httpserver):
    _client(gatekeeper).create_run_from_pipeline_package(str(GATE_PIPELINE), arguments={"energy_kwh": 1.0})
    (run_id,) = kfp_api.runs
    httpserver.clear_log()
    status, body = _raw_get(gatekeeper, f"/apis/v2beta1/runs/{run_id}?view=DEFAULT", TOKENS["ml"])
    assert status == 200 and body["run_id"] == run_id
    assert _upstream_paths(httpserver) == [f"/apis/v2beta1/runs/{run_id}?view=DEFAULT"]


def test_a_failed_forward_leaves_the_idempotency_key_usable(gatekeeper, kfp_api):
    body = {"display_name": "r", "pipeline_spec": {"pipelineInfo": {"name": "p"}},
            "runtime_config": {"parameters": {"energy_kwh": 1.0}}}
    headers = {"Authorization": f"Bearer {TOKENS['ml']}", "Idempotency-Key": "retry-me"}
    kfp_api.fail_creates = True
    failed = httpx.post(gatekeeper.url + "/apis/v2beta1/runs", json=body, timeout=30, headers=headers)
    assert failed.status_code == 500 and gatekeeper.core.ledger.status("ml", PERIOD).reserved_g == 0
    failed = httpx.post(gatekeeper.url + "/apis/v2beta1/runs", json=body, timeout=30, headers=headers)
    assert failed.status_code == 500 and kfp_api.runs == {}  # a retry is forwarded again, not refused as used
    kfp_api.fail_creates = False
    created = httpx.post(gatekeeper.url + "/apis/v2beta1/runs", json=body, timeout=30, headers=headers)
    assert created.status_code == 200, created.text
    (run_id,) = kfp_api.runs
    assert created.headers["X-Greenkfp-Run-Id"] == run_id
    status = gatekeeper.core.ledger.status("ml", PERIOD)
    assert status.reserved_g > 0 and len(kfp_api.runs) == 1
    duplicate = httpx.post(gatekeeper.url + "/apis/v2beta1/runs", json=body, timeout=30, headers=headers)
    assert duplicate.status_code == 409 and len(kfp_api.runs) == 1
    assert f"KFP created run {run_id}" in duplicate.json()["message"]
    assert gatekeeper.core.ledger.status("ml", PERIOD).reserved_g == status.reserved_g  # charged once


def test_a_non_printable_idempotency_key_is_named_as_such(gatekeeper, kfp_api):
    body = {"display_name": "r", "pipeline_spec": {"pipelineInfo": {"name": "p"}}}
    reply = httpx.post(gatekeeper.url + "/apis/v2beta1/runs", json=body, timeout=30,
                       headers={"Authorization": f"Bearer {TOKENS['ml']}", "Idempotency-Key": b"a\xa0b"})
    assert reply.status_code == 400 and "Idempotency-Key must be printable" in reply.json()["message"]
    assert "position 2" in reply.json()["message"]


@pytest.mark.parametrize("energy", [1e13, "abc", -1, "1e13", "nan", True])
def test_the_proxys_energy_parameter_is_checked_as_the_admission_apis(gatekeeper, kfp_api, energy):
    body = {"display_name": "r", "pipeline_spec": {"pipelineInfo": {"name": "p"}},
            "runtime_config": {"parameters": {"energy_kwh": energy}}}
    reply = gatekeeper.call("POST", "/apis/v2beta1/runs", TOKENS["ml"], json=body)
    assert reply.status_code == 400 and reply.json()["code"] == 3, reply.text
    assert "runtime_config.parameters.energy_kwh must be a number from 0 to 1e+09 kWh" in reply.json()["message"]
    assert kfp_api.runs == {} and _decided(gatekeeper) == []
    admission = gatekeeper.call("POST", "/apis/greenkfp/v1/admissions", TOKENS["ml"],
                                json={"pipeline": "p", "run_id": "r", "energy_kwh": energy})
    assert admission.status_code == 400 and "energy_kwh must be a number" in admission.json()["message"]


@pytest.mark.parametrize("body, where", [
    ('{"pipeline": "p", "run_id": "b26\\ud800"}', "run_id"),
    ('{"pipeline": "p", "run_id": "r", "labels": {"k": "\\udfff"}}', "labels.k"),
    ('{"pipeline": "p", "run_id": "r", "labels": {"\\ud800": "v"}}', "labels.'\\ud800'"),
])
def test_a_lone_surrogate_is_400_naming_the_field(gatekeeper, body, where):
    reply = httpx.post(gatekeeper.url + "/apis/greenkfp/v1/admissions", content=body.encode(), timeout=30,
                       headers={"Authorization": f"Bearer {TOKENS['ml']}", "Content-Type": "application/json"})
    assert reply.status_code == 400 and reply.json()["code"] == 3, reply.text
    assert reply.json()["message"].startswith(f"{where} is not valid text: it has a lone surrogate")
    assert _decided(gatekeeper) == []


def test_submit_vertex_releases_its_reservation_when_vertex_fails(gatekeeper, httpserver, monkeypatch, tmp_path,
                                                                  capfd):
    """Vertex fails after the grant (credentials whose token endpoint is dead, offline): the
    reservation is given back through the gatekeeper, and the person reads one line, exit 1."""
    from greenkfp.pipelines.cli import main

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    # a service account whose token endpoint (local) refuses: Vertex's first call fails, offline
    httpserver.expect_request("/token", method="POST").respond_with_json(
        {"error": "invalid_grant", "error_description": "account disabled"}, status=400)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    adc = tmp_path / "adc.json"
    adc.write_text(json.dumps({"type": "service_account", "project_id": "proj-123456", "private_key_id": "k1",
                               "private_key": key, "client_email": "sa@proj-123456.iam.gserviceaccount.com",
                               "client_id": "1", "token_uri": httpserver.url_for("/token")}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    monkeypatch.setenv("TEAM_TOKEN", TOKENS["ml"])
    code = main(["submit", "vertex", "--project", "proj-123456", "--location", "europe-west2", "--pipeline-root",
                 "gs://bucket-x/r", "--gatekeeper-url", gatekeeper.url, "--gatekeeper-token-env", "TEAM_TOKEN",
                 "--param", "energy_kwh=0.01"])
    out, err = capfd.readouterr()
    assert code == 1, out + err
    assert "Traceback" not in out + err, out + err
    errors = [line for line in (out + err).splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "Vertex AI" in errors[0] and "released" in errors[0], out + err
    status = gatekeeper.core.ledger.status("ml", PERIOD)
    assert status.reserved_g == 0
    released = [e for e in gatekeeper.core.ledger.entries(team="ml") if e.kind == "release"]
    assert len(released) == 1 and released[0].actor == "team:ml"


def test_a_team_releases_only_its_own_reservation(gatekeeper):
    granted = gatekeeper.call("POST", "/apis/greenkfp/v1/admissions", TOKENS["ml"],
                              json={"pipeline": "p", "run_id": "r-1", "energy_kwh": 1.0})
    assert granted.status_code == 200
    other = gatekeeper.call("POST", "/apis/greenkfp/v1/releases", TOKENS["search"], json={"run_id": "r-1"})
    assert other.status_code == 404 and gatekeeper.core.ledger.status("ml", PERIOD).reserved_g > 0
    for _ in range(2):  # again: the first answer
        reply = gatekeeper.call("POST", "/apis/greenkfp/v1/releases", TOKENS["ml"], json={"run_id": "r-1"})
        assert reply.status_code == 200 and reply.json()["released"] is True
    assert gatekeeper.core.ledger.status("ml", PERIOD).reserved_g == 0
    admin = gatekeeper.call("POST", "/apis/greenkfp/v1/releases", ADMIN, json={"run_id": "r-1"})
    assert admin.status_code == 403
    bad = gatekeeper.call("POST", "/apis/greenkfp/v1/releases", TOKENS["ml"], json={"run_id": "r-1", "x": 1})
    assert bad.status_code == 400


def _server_processes(postmaster: int) -> list[int]:
    """The postmaster and its backends (its children)."""
    from pathlib import Path

    children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
    return [postmaster, *map(int, children)]


def test_a_lost_or_hung_ledger_is_a_prompt_503_that_names_no_host_and_readyz_says_so(start_gatekeeper, kfp_api,
                                                                                      postgres_server, caplog):
    """The ledger's database dropped: admissions are 503 without the database's host and port
    (they go to the log); the database stopped (SIGSTOP): an admission is answered within the
    deadline and /readyz is 503 while /healthz stays 200."""
    import os
    import signal
    import time

    import sqlalchemy as sa

    from greenkfp.components.governance import gatekeeper as module

    database = f"lost_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_server.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{database}"'))
    url = postgres_server.url(database)
    live = start_gatekeeper(kfp_api.url, url)
    live.core.ledger.set_limit("ml", PERIOD, 10_000.0, "hard", actor="lead")
    assert live.call("GET", "/readyz").status_code == 200
    admit = {"pipeline": "p", "run_id": "r-1", "energy_kwh": 1.0}
    assert live.call("POST", "/apis/greenkfp/v1/admissions", TOKENS["ml"], json=admit).status_code == 200

    # hung: the server stopped; every connection waits
    deadline, module.CALL_DEADLINE_S = module.CALL_DEADLINE_S, 3.0
    stopped = _server_processes(postgres_server.pid)
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        ready = live.call("GET", "/readyz")
        assert ready.status_code == 503 and time.monotonic() - started < 10
        assert live.call("GET", "/healthz").status_code == 200
        started = time.monotonic()
        hung = live.call("POST", "/apis/greenkfp/v1/admissions", TOKENS["ml"], json={**admit, "run_id": "r-2"})
        assert hung.status_code == 503 and time.monotonic() - started < 10, hung.text
        assert "did not answer within 3 s" in hung.json()["message"]
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
        module.CALL_DEADLINE_S = deadline

    # lost: the database is dropped under the gatekeeper
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE "{database}" WITH (FORCE)'))
    admin.dispose()
    with caplog.at_level(logging.ERROR, logger="greenkfp.gatekeeper"):
        lost = live.call("POST", "/apis/greenkfp/v1/admissions", TOKENS["ml"], json={**admit, "run_id": "r-3"})
    assert lost.status_code == 503 and lost.json()["message"].startswith("the budget ledger is unavailable")
    port = str(sa.make_url(url).port)
    assert port not in lost.text and "127.0.0.1" not in lost.text
    assert any(port in record.getMessage() for record in caplog.records)  # the operator's log says where
    assert live.call("GET", "/readyz").status_code == 503


def test_an_approval_needs_no_body_and_a_refusal_names_the_board_member(gatekeeper):
    ml = TOKENS["ml"]
    assert gatekeeper.call("POST", "/apis/greenkfp/v1/board/members", ADMIN, json={"name": "carol"}).status_code == 200
    grant = gatekeeper.call("POST", "/apis/greenkfp/v1/exceptions", ml, json={
        "period": PERIOD, "amount_g": 5, "reason": "deadline", "expires_at": (NOW + timedelta(days=3)).isoformat()})
    path = f"/apis/greenkfp/v1/exceptions/{grant.json()['id']}:approve"
    refused = gatekeeper.call("POST", path, ml)
    assert refused.status_code == 403 and refused.json()["message"] == "this call needs a board member's token"
    approved = gatekeeper.call("POST", path, BOARD["carol"])  # no body at all
    assert approved.status_code == 200 and approved.json()["status"] == "approved", approved.text


@pytest.mark.parametrize("team", ["has space", "-lead", "a/b", "é", "x" * 129])
def test_a_budget_for_a_team_no_token_can_name_is_refused(gatekeeper, team):
    from urllib.parse import quote

    reply = gatekeeper.call("PUT", f"/apis/greenkfp/v1/budgets/{quote(team, safe='')}/{PERIOD}", ADMIN,
                            json={"limit_g": 50, "tier": "hard"})
    assert reply.status_code in (400, 404), reply.text
    if reply.status_code == 400:
        assert reply.json()["message"].startswith("team must be a name a team token can carry")
    assert {e.team for e in gatekeeper.core.ledger.entries()} == {"ml", "search"}
