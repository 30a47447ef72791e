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
from greenkfp.pipelines.submit import SubmitError, build_vertex_job, greenest_start, kfp_one_off_schedule, submit_kfp

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


def test_kfp_one_off_schedule_fires_once_in_the_window(kfp_api):
    host, seen = kfp_api
    start = datetime(2026, 11, 27, 3, 15, tzinfo=timezone.utc)
    assert kfp_one_off_schedule(KUBEFLOW, host=host, params={}, start_at=start, experiment="green") == "rr-9"
    body = seen["create_recurring_run"][0]["json"]
    trigger = body["trigger"]["cron_schedule"]
    assert trigger["cron"] == "0 15 3 27 11 *"
    assert trigger["start_time"].startswith("2026-11-27T03:15:00") and trigger["end_time"].startswith("2026-11-27T04:15:00")
    assert body["max_concurrency"] == "1" or body["max_concurrency"] == 1


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
    base = {"template": VERTEX, "project": "p", "location": "europe-west2", "pipeline_root": "gs://b/r", "params": {},
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
