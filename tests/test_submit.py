"""Submitting: to a local HTTP server standing in for the KFP v2beta1 REST API, and to Vertex AI
by building the job offline (anonymous credentials) and reading the request it would send."""

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from werkzeug import Response

from greenkfp.components.carbon import GatePolicy, decide
from greenkfp.pipelines.cli import main
from greenkfp.pipelines import submit
from greenkfp.pipelines.submit import (
    SubmitError,
    build_vertex_job,
    greenest_start,
    kfp_one_off_schedule,
    submit_kfp,
    vertex_one_off_schedule,
)

ROOT = Path(__file__).resolve().parents[1]
KUBEFLOW = ROOT / "compiled" / "kubeflow" / "carbon_aware_training.yaml"
VERTEX = ROOT / "compiled" / "vertex" / "carbon_aware_training.yaml"


@pytest.fixture
def kfp_api(httpserver):
    """The KFP v2beta1 endpoints kfp.Client uses, recording what arrives."""
    seen = {}

    def record(name, payload):
        def handler(request):
            seen.setdefault(name, []).append({"args": dict(request.args), "json": request.get_json(silent=True)})
            return Response(json.dumps(payload), content_type="application/json")
        return handler

    httpserver.expect_request("/apis/v2beta1/healthz").respond_with_json({})
    httpserver.expect_request("/apis/v2beta1/experiments", method="GET").respond_with_handler(
        record("list_experiments", {"experiments": []}))
    httpserver.expect_request("/apis/v2beta1/experiments", method="POST").respond_with_handler(
        record("create_experiment", {"experiment_id": "exp-42", "display_name": "green"}))
    httpserver.expect_request("/apis/v2beta1/runs", method="POST").respond_with_handler(
        record("create_run", {"run_id": "run-7", "display_name": "r", "state": "PENDING"}))
    httpserver.expect_request("/apis/v2beta1/recurringruns", method="POST").respond_with_handler(
        record("create_recurring_run", {"recurring_run_id": "rr-9", "display_name": "r"}))
    return httpserver.url_for("").rstrip("/"), seen


def test_kfp_run_carries_spec_parameters_experiment_and_labels(kfp_api):
    host, seen = kfp_api
    run_id = submit_kfp(KUBEFLOW, host=host, params={"dataset": "iris", "regions": ["GB", "DE-LU"]},
                        experiment="green", namespace="team-a", run_name="nightly")
    assert run_id == "run-7"
    assert seen["create_experiment"][0]["json"] == {"display_name": "green", "namespace": "team-a"}
    body = seen["create_run"][0]["json"]
    assert body["experiment_id"] == "exp-42" and body["display_name"] == "nightly"
    assert body["runtime_config"]["parameters"] == {"dataset": "iris", "regions": ["GB", "DE-LU"]}
    spec = body["pipeline_spec"]
    assert spec["pipeline_spec"]["pipelineInfo"]["name"] == "greenkfp-carbon-aware-training"
    executors = spec["platform_spec"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    train = next(v for k, v in executors.items() if "train-with-emissions" in k)
    assert {"team", "cost-center", "pipeline", "carbon-tier"} <= set(train["podMetadata"]["labels"])
    assert train["podMetadata"]["labels"]["pipeline"] == "greenkfp-carbon-aware-training"
    assert train["nodeSelector"]["labels"] == {"cloud.google.com/gke-spot": "true"}


def test_kfp_unknown_parameter_is_refused_before_any_request(kfp_api):
    host, seen = kfp_api
    with pytest.raises(SubmitError, match="unknown pipeline parameter\\(s\\) datset; the pipeline takes: .*dataset"):
        submit_kfp(KUBEFLOW, host=host, params={"datset": "iris"})
    assert seen == {}


def _cron_matches(fields: list[str], moment: datetime) -> bool:
    values = [moment.minute, moment.hour, moment.day, moment.month, (moment.weekday() + 1) % 7]
    return all(f == "*" or int(f) == v for f, v in zip(fields, values))


def first_fire(cron: str, start_time: datetime, seconds_field: bool) -> datetime | None:
    """The first time a schedule fires: the first cron match strictly after start_time, as
    robfig/cron's Next (KFP's controller, six fields, seconds first) and Vertex AI compute it."""
    fields = cron.split()
    if fields[0].startswith(("TZ=", "CRON_TZ=")):
        assert fields.pop(0) in ("TZ=UTC", "CRON_TZ=UTC")
    if seconds_field:
        assert fields.pop(0) == "0"  # fires at second 0 of a matching minute
    moment = start_time.replace(second=0, microsecond=0) + timedelta(minutes=1)
    for _ in range(400 * 24 * 60):
        if _cron_matches(fields, moment):
            return moment
        moment += timedelta(minutes=1)
    return None


@pytest.mark.parametrize("start", [datetime(2026, 11, 27, 3, 15, tzinfo=timezone.utc),
                                   datetime(2026, 12, 31, 23, 59, 30, tzinfo=timezone.utc)])
def test_kfp_one_off_schedule_fires_once_in_the_window(kfp_api, start):
    host, seen = kfp_api
    assert kfp_one_off_schedule(KUBEFLOW, host=host, params={}, start_at=start, experiment="green") == "rr-9"
    body = seen["create_recurring_run"][0]["json"]
    trigger = body["trigger"]["cron_schedule"]
    opens = datetime.fromisoformat(trigger["start_time"].replace("Z", "+00:00"))
    closes = datetime.fromisoformat(trigger["end_time"].replace("Z", "+00:00"))
    fire = first_fire(trigger["cron"], opens, seconds_field=True)
    assert fire is not None and start - timedelta(minutes=1) < fire <= start and fire < closes
    assert first_fire(trigger["cron"], fire, seconds_field=True) > closes  # and never again
    assert str(body["max_concurrency"]) == "1"


def test_vertex_one_off_schedule_fires_once_in_the_window():
    class RecordingJob:  # stands in for aiplatform.PipelineJob, whose create_schedule needs the network
        display_name = "greenkfp-carbon-aware-training"

        def create_schedule(self, **kwargs):
            self.kwargs = kwargs
            return kwargs

    start = datetime(2026, 11, 27, 3, 15, tzinfo=timezone.utc)
    job = RecordingJob()
    vertex_one_off_schedule(job, start)
    opens = datetime.fromisoformat(job.kwargs["start_time"])
    fire = first_fire(job.kwargs["cron"], opens, seconds_field=False)
    assert fire == start and job.kwargs["max_run_count"] == 1
    assert datetime.fromisoformat(job.kwargs["end_time"]) > fire


def test_cli_submit_kfp_carbon_aware_now(kfp_api, capsys):
    host, seen = kfp_api
    code = main(["submit", "kfp", "--host", host, "--param", "dataset=iris", "--carbon-aware", "--max-delay", "0h",
                 "--duration", "1h"])
    assert code == 0
    assert seen["create_run"][0]["json"]["runtime_config"]["parameters"] == {"dataset": "iris"}
    assert "submitted run run-7" in capsys.readouterr().out


def test_vertex_job_request_offline():
    job = build_vertex_job(VERTEX, project="my-project", location="europe-west2", pipeline_root="gs://bucket/root",
                           params={"dataset": "wine", "max_delay_hours": 6.0}, labels={"team": "ml", "carbon-tier": "flexible"},
                           credentials=AnonymousCredentials())
    request = job._gca_resource
    assert dict(request.labels) == {"team": "ml", "carbon-tier": "flexible"}
    assert dict(request.runtime_config.parameter_values) == {"dataset": "wine", "max_delay_hours": 6.0}
    assert request.runtime_config.gcs_output_directory == "gs://bucket/root"
    assert request.pipeline_spec["pipelineInfo"]["name"] == "greenkfp-carbon-aware-training"
    assert job.project == "my-project" and job.location == "europe-west2"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"labels": {"Team": "ml"}}, "label key 'Team' breaks Vertex AI's rule"),
        ({"labels": {"team": "ML Platform"}}, "values are at most 63 lower-case letters"),
        ({"labels": {f"k{i}": "v" for i in range(65)}}, "at most 64 labels"),
        ({"pipeline_root": "/tmp/root"}, "pipeline_root must be a gs:// URI"),
        ({"template": KUBEFLOW}, "has 2 YAML documents; Vertex AI takes one"),
        ({"params": {"nope": 1}}, "unknown pipeline parameter"),
    ],
)
def test_vertex_rules_are_checked_before_submitting(kwargs, message):
    base = {"template": VERTEX, "project": "my-project", "location": "europe-west2", "pipeline_root": "gs://bucket/r", "params": {},
            "labels": {}, "credentials": AnonymousCredentials()}
    args = {**base, **kwargs}
    template = args.pop("template")
    with pytest.raises(SubmitError, match=message):
        build_vertex_job(template, **args)


def test_greenest_start_is_the_gates_plan():
    now = datetime(2023, 6, 14, 9, tzinfo=timezone.utc)
    green = greenest_start(regions=["GB"], duration=timedelta(hours=2), provider="embedded",
                           max_delay=timedelta(hours=12), deadline=None, clock=lambda: now)
    plan = decide(GatePolicy(regions=("GB",), duration=timedelta(hours=2), max_delay=timedelta(hours=12)), clock=lambda: now)
    assert green.start_at == plan.start_at and green.should_run
    assert green.record.inputs.mode == "plan"


@pytest.mark.parametrize("respond, message", [
    (lambda server: server.expect_request("/apis/v2beta1/healthz").respond_with_data(
        "<html>login</html>", content_type="text/html"), "answered text/html, not JSON: --host is not a KFP API"),
    (lambda server: server.expect_request("/apis/v2beta1/healthz").respond_with_data("no", status=401),
     "refused the credentials (HTTP 401); set KF_PIPELINES_TOKEN"),
    (lambda server: server.expect_request("/apis/v2beta1/healthz").respond_with_data("boom", status=500),
     "answered HTTP 500"),
])
def test_a_host_that_is_not_a_healthy_kfp_api_is_one_line_before_submitting(httpserver, respond, message, capsys):
    respond(httpserver)
    code = main(["submit", "kfp", "--host", httpserver.url_for("/"), "--param", "dataset=iris"])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 2 and message in out and "Traceback" not in out
    assert [r.path for r, _ in httpserver.log] == ["/apis/v2beta1/healthz"]  # nothing was created


def test_a_hanging_host_is_bounded_in_time(httpserver, monkeypatch):
    import time

    def hang(request):
        time.sleep(2)
        return Response("{}", content_type="application/json")

    httpserver.expect_request("/apis/v2beta1/healthz").respond_with_handler(hang)
    monkeypatch.setattr(submit, "REQUEST_TIMEOUT_S", 0.3)
    started = time.monotonic()
    with pytest.raises(SubmitError, match="did not answer within 0.3 s"):
        submit_kfp(KUBEFLOW, host=httpserver.url_for("/"), params={})
    assert time.monotonic() - started < 1.5


def test_a_run_without_an_id_is_an_error_not_a_success(httpserver):
    httpserver.expect_request("/apis/v2beta1/healthz").respond_with_json({})
    httpserver.expect_request("/apis/v2beta1/experiments", method="GET").respond_with_json({"experiments": []})
    httpserver.expect_request("/apis/v2beta1/experiments", method="POST").respond_with_json({"experiment_id": "e"})
    httpserver.expect_request("/apis/v2beta1/runs", method="POST").respond_with_json({})
    with pytest.raises(SubmitError, match="answered create_run without a run id"):
        submit_kfp(KUBEFLOW, host=httpserver.url_for("/"), params={})


def test_a_refused_create_run_names_the_status(httpserver):
    httpserver.expect_request("/apis/v2beta1/healthz").respond_with_json({})
    httpserver.expect_request("/apis/v2beta1/experiments", method="GET").respond_with_json({"experiments": []})
    httpserver.expect_request("/apis/v2beta1/experiments", method="POST").respond_with_json({"experiment_id": "e"})
    httpserver.expect_request("/apis/v2beta1/runs", method="POST").respond_with_data("denied", status=403)
    with pytest.raises(SubmitError, match="refused create_run: HTTP 403"):
        submit_kfp(KUBEFLOW, host=httpserver.url_for("/"), params={})


@pytest.mark.parametrize("host", ["kfp.example.com", "ftp://kfp.example.com", "http://", "http://h:99999"])
def test_a_host_that_is_not_an_http_url_is_one_line(host, capsys):
    assert main(["submit", "kfp", "--host", host]) == 2
    out = " ".join(capsys.readouterr().out.split())
    assert "--host must be an http(s):// URL" in out


def test_credentials_in_the_host_never_reach_a_message(capsys):
    assert main(["submit", "kfp", "--host", "http://alice:s3cret@127.0.0.1:9"]) == 2
    out = capsys.readouterr().out
    assert "s3cret" not in out and "alice" not in out and "--host must not carry credentials" in out


@pytest.mark.parametrize("param, message", [
    ('regions=["GB"', "--param regions='[\"GB\"': regions takes a JSON list"),
    ("duration_hours=abc", "--param duration_hours='abc': duration_hours takes a number"),
    ("seed=1.5", "--param seed='1.5': seed takes a whole number"),
    ("selection_weights=[1]", "selection_weights takes a JSON object"),
    ("max_delay_hours=NaN", "max_delay_hours takes a finite number"),
])
def test_parameters_are_checked_against_the_declared_types_before_anything_is_sent(param, message, capsys):
    assert main(["submit", "kfp", "--host", "http://127.0.0.1:9", "--param", param]) == 2
    assert message in " ".join(capsys.readouterr().out.split())


def test_typed_parameters_keep_strings_as_text():
    spec = submit.read_package(KUBEFLOW)
    typed = submit.typed_params(spec, submit.parse_params(["threshold=250", "seed=3", "regions=[\"GB\"]",
                                                           "duration_hours=2"]))
    assert typed == {"threshold": "250", "seed": 3, "regions": ["GB"], "duration_hours": 2.0}


def test_carbon_aware_submission_checks_the_host_before_waiting(capsys):
    import time

    started = time.monotonic()
    code = main(["submit", "kfp", "--host", "http://127.0.0.1:9", "--carbon-aware", "--max-delay", "12h"])
    assert code == 2 and time.monotonic() - started < 10
    out = capsys.readouterr().out
    assert "cannot reach --host" in out and "carbon-aware submission" not in out
