"""Submitting against hostile input and hostile endpoints: credentials in the host, kfp.Client's
own output, endpoints that drip or stall (every call has a total deadline), Vertex AI targets
and credentials checked before the job is built, parameter values checked as a local run checks
them, and one-line messages that name the option and cap what they echo.

Endpoints are local servers on 127.0.0.1: pytest-httpserver for well-behaved answers, a small
raw HTTP server for answers that drip or never come."""

import json
import sys
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from werkzeug import Response

from greenkfp.pipelines import submit
from greenkfp.pipelines.cli import main
from greenkfp.pipelines.submit import SubmitError, kfp_one_off_schedule, preflight_kfp, submit_kfp

ROOT = Path(__file__).resolve().parents[1]
KUBEFLOW = ROOT / "compiled" / "kubeflow" / "carbon_aware_training.yaml"
VERTEX = ROOT / "compiled" / "vertex" / "carbon_aware_training.yaml"
DRIP_S = 0.1  # one byte (or header line) every DRIP_S: each read is quick, the whole is not


def one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def kfp_api(httpserver):
    """The KFP v2beta1 endpoints kfp.Client uses, recording which paths were called."""
    seen = []

    def answer(name, payload):
        def handler(request):
            seen.append(name)
            return Response(json.dumps(payload), content_type="application/json")
        return handler

    httpserver.expect_request("/apis/v2beta1/healthz").respond_with_json({})
    httpserver.expect_request("/apis/v2beta1/experiments", method="GET").respond_with_handler(
        answer("list_experiments", {"experiments": []}))
    httpserver.expect_request("/apis/v2beta1/experiments", method="POST").respond_with_handler(
        answer("create_experiment", {"experiment_id": "exp-42", "display_name": "green"}))
    httpserver.expect_request("/apis/v2beta1/runs", method="POST").respond_with_handler(
        answer("create_run", {"run_id": "run-7", "display_name": "r", "state": "PENDING"}))
    return httpserver, seen


# --- 1. credentials in the host; kfp.Client's own output --------------------------------------

@pytest.mark.parametrize("userinfo", ["kuser:CANARYPW@", "CANARYPW@", "kuser:CANARYPW:x@"])
def test_credentials_in_the_host_are_refused_before_any_request(kfp_api, userinfo, capsys):
    server, seen = kfp_api
    host = server.url_for("/").replace("://", f"://{userinfo}")
    code = main(["submit", "kfp", "--host", host, "--param", "dataset=iris"])
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert code == 2 and "--host must not carry credentials" in out and "KF_PIPELINES_TOKEN" in out
    assert "CANARYPW" not in out and "kuser" not in out and len(captured.out.strip().splitlines()) == 1
    assert list(server.log) == [] and seen == []  # nothing was sent, not even the health check


def test_kfp_clients_own_output_does_not_reach_the_user(kfp_api, capsys):
    server, seen = kfp_api
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(["submit", "kfp", "--host", server.url_for("/"), "--param", "dataset=iris"])
    captured = capsys.readouterr()
    assert code == 0 and seen == ["list_experiments", "create_experiment", "create_run"]
    assert captured.out.strip() == "submitted run run-7"
    assert "details" not in captured.out + captured.err and "FutureWarning" not in captured.err
    assert not [w for w in caught if issubclass(w.category, FutureWarning)]


def test_a_run_without_an_id_is_our_one_line_only(httpserver, capsys):
    httpserver.expect_request("/apis/v2beta1/healthz").respond_with_json({})
    httpserver.expect_request("/apis/v2beta1/experiments", method="GET").respond_with_json({"experiments": []})
    httpserver.expect_request("/apis/v2beta1/experiments", method="POST").respond_with_json({"experiment_id": "e"})
    httpserver.expect_request("/apis/v2beta1/runs", method="POST").respond_with_json({})
    code = main(["submit", "kfp", "--host", httpserver.url_for("/")])
    captured = capsys.readouterr()
    assert code == 2 and "answered create_run without a run id" in captured.out
    assert "details/None" not in captured.out + captured.err and "Experiment details" not in captured.out
    assert len(captured.out.strip().splitlines()) == 1


# --- 2. total deadlines -----------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    """Answers by route: ("json", payload), ("drip_body", payload), ("drip_headers", None) or
    ("stall", None); each drip or stall ends when the server stops."""

    def _serve(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?")[0]
        self.server.log.append((self.command, path))
        kind, payload = self.server.routes.get((self.command, path), ("json", {}))
        stop = self.server.stop
        body = json.dumps(payload).encode()
        try:
            if kind == "stall":
                stop.wait(60)
                return
            if kind == "drip_headers":
                self.wfile.write(b"HTTP/1.0 200 OK\r\n")
                for i in range(300):
                    self.wfile.flush()
                    if stop.wait(DRIP_S):
                        return
                    self.wfile.write(f"X-Drip-{i}: x\r\n".encode())
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if kind == "drip_body":
                for byte in body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    if stop.wait(DRIP_S):
                        return
            else:
                self.wfile.write(body)
        except OSError:  # the client gave up
            pass

    do_GET = do_POST = _serve

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_api():
    """A KFP stand-in on 127.0.0.1 whose routes can drip or stall; stopped after the test."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.log, server.stop = [], threading.Event()
    server.routes = {
        ("GET", "/apis/v2beta1/healthz"): ("json", {"multi_user": False}),
        ("GET", "/apis/v2beta1/experiments"): ("json", {"experiments": []}),
        ("POST", "/apis/v2beta1/experiments"): ("json", {"experiment_id": "exp-1"}),
        ("POST", "/apis/v2beta1/runs"): ("json", {"run_id": "run-1"}),
        ("POST", "/apis/v2beta1/recurringruns"): ("json", {"recurring_run_id": "rr-1"}),
    }
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}"
    server.stop.set()
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("kind", ["drip_body", "drip_headers", "stall"])
def test_the_health_check_has_a_total_deadline(slow_api, monkeypatch, kind):
    server, host = slow_api
    server.routes[("GET", "/apis/v2beta1/healthz")] = ("drip_body", {"status": "x" * 200}) if kind == "drip_body" \
        else (kind, None)
    monkeypatch.setattr(submit, "REQUEST_TIMEOUT_S", 0.5)  # more than each drip: per-read timeouts never fire
    started = time.monotonic()
    with pytest.raises(SubmitError, match="did not answer within 0.5 s"):
        preflight_kfp(host)
    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize("route, kind", [
    (("POST", "/apis/v2beta1/runs"), "drip_headers"),
    (("POST", "/apis/v2beta1/runs"), "drip_body"),
    (("POST", "/apis/v2beta1/experiments"), "drip_headers"),
])
def test_create_run_has_a_total_deadline(slow_api, monkeypatch, capsys, route, kind):
    server, host = slow_api
    server.routes[route] = (kind, {"run_id": "run-1", "experiment_id": "e", "pad": "x" * 200})
    monkeypatch.setattr(submit, "REQUEST_TIMEOUT_S", 0.5)
    monkeypatch.setattr(submit, "CALL_DEADLINE_S", 1.5)
    started = time.monotonic()
    code = main(["submit", "kfp", "--host", host])
    elapsed = time.monotonic() - started
    out = one_line(capsys.readouterr().out)
    assert code == 2 and "create_run at http://127.0.0.1" in out and "did not finish within 1.5 s" in out, out
    assert elapsed < 4.5


@pytest.mark.parametrize("route, call", [
    (("POST", "/apis/v2beta1/experiments"), "create_experiment"),
    (("POST", "/apis/v2beta1/recurringruns"), "create_recurring_run"),
])
def test_a_one_off_schedule_has_a_total_deadline_per_call(slow_api, monkeypatch, route, call):
    from datetime import datetime, timezone

    server, host = slow_api
    server.routes[route] = ("drip_headers", None)
    monkeypatch.setattr(submit, "REQUEST_TIMEOUT_S", 0.5)
    monkeypatch.setattr(submit, "CALL_DEADLINE_S", 1.0)
    started = time.monotonic()
    with pytest.raises(SubmitError, match=f"^{call} at .* did not finish within 1 s"):
        kfp_one_off_schedule(KUBEFLOW, host=host, params={}, start_at=datetime(2030, 1, 1, 3, tzinfo=timezone.utc))
    assert time.monotonic() - started < 4


def test_a_stalled_create_run_leaves_no_output_behind(slow_api, monkeypatch, capsys):
    """The call given up on keeps running in its daemon thread: when it ends later, what kfp
    prints then still does not reach the user."""
    server, host = slow_api
    server.routes[("POST", "/apis/v2beta1/runs")] = ("stall", None)
    monkeypatch.setattr(submit, "REQUEST_TIMEOUT_S", 5.0)
    monkeypatch.setattr(submit, "CALL_DEADLINE_S", 0.5)
    with pytest.raises(SubmitError, match="create_run at .* did not finish within 0.5 s"):
        submit_kfp(KUBEFLOW, host=host, params={})
    sys.stdout.write("after\n")  # not print(): kfp's local runner may leave builtins.print patched
    server.stop.set()  # the stalled request ends now; kfp fails and may print or log
    time.sleep(0.5)
    captured = capsys.readouterr()
    assert captured.out == "after\n" and "details" not in captured.err


# --- 3. Vertex AI: target and credentials before the job --------------------------------------

@pytest.fixture
def no_google_credentials(monkeypatch, tmp_path):
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))  # no gcloud application-default file
    monkeypatch.setenv("NO_GCE_CHECK", "True")  # not on Google Compute Engine: no metadata server


@pytest.fixture
def user_credentials(monkeypatch, tmp_path):
    path = tmp_path / "adc.json"
    path.write_text(json.dumps({"type": "authorized_user", "client_id": "c", "client_secret": "s",
                                "refresh_token": "r"}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    monkeypatch.setenv("NO_GCE_CHECK", "True")


VERTEX_ARGS = ["submit", "vertex", "--project", "my-project", "--location", "europe-west2",
               "--pipeline-root", "gs://my-bucket/root"]


def test_missing_google_credentials_are_one_line(no_google_credentials, capsys):
    code = main(VERTEX_ARGS)
    out = capsys.readouterr().out
    assert code == 2 and "no usable Google application-default credentials" in out
    assert "Traceback" not in out and len(out.strip().splitlines()) == 1


@pytest.mark.parametrize("option, value, message", [
    ("--project", "", "--project must be a Google Cloud project id"),
    ("--project", "My-Project", "--project must be a Google Cloud project id"),
    ("--project", "proj", "--project must be a Google Cloud project id"),
    ("--project", "my-project-", "--project must be a Google Cloud project id"),
    ("--project", "1project", "--project must be a Google Cloud project id"),
    ("--project", "p" * 31, "--project must be a Google Cloud project id"),
    ("--location", "", "--location must be a Google Cloud region"),
    ("--location", "Europe West 2", "--location must be a Google Cloud region"),
    ("--pipeline-root", "gs://", "--pipeline-root: pipeline_root must be a gs:// URI of a valid bucket"),
    ("--pipeline-root", "gs:///root", "--pipeline-root: pipeline_root must be a gs:// URI of a valid bucket"),
    ("--pipeline-root", "gs://B/root", "bucket names are 3-63"),
    ("--pipeline-root", "gs://ab", "bucket names are 3-63"),
    ("--pipeline-root", "gs://-bucket", "bucket names are 3-63"),
    ("--pipeline-root", "gs://" + "b" * 64, "bucket names are 3-63"),
    ("--pipeline-root", "/tmp/root", "--pipeline-root: pipeline_root must be a gs:// URI"),
])
def test_the_vertex_target_is_checked_before_credentials_and_the_job(no_google_credentials, option, value,
                                                                     message, capsys):
    args = list(VERTEX_ARGS)
    args[args.index(option) + 1] = value
    assert main(args) == 2
    out = one_line(capsys.readouterr().out)
    assert message in out and "Traceback" not in out and "credentials" not in out


def test_check_vertex_target_accepts_valid_targets_and_returns_the_credentials(user_credentials):
    for project, location, root in [("my-project", "europe-west2", "gs://my-bucket"),
                                    ("a12345", "us-central1", "gs://my.bucket.example/x/y"),
                                    ("northern-lights-30-chars-abcde", "northamerica-northeast1", "gs://b_1-2/r")]:
        credentials = submit.check_vertex_target(project, location, root)
        assert credentials is not None
    job = submit.build_vertex_job(VERTEX, project="my-project", location="europe-west2",
                                  pipeline_root="gs://my-bucket/root", params={}, labels={})
    assert job.project == "my-project" and job._gca_resource.runtime_config.gcs_output_directory == "gs://my-bucket/root"


# --- 4. parameter values, as a local run checks them ------------------------------------------

@pytest.mark.parametrize("param, message", [
    ("duration_hours=-1", "--param duration_hours='-1': duration_hours must be"),
    ("duration_hours=0", "--param duration_hours='0': duration_hours must be positive"),
    ("duration_hours=1e300", "--param duration_hours='1e300': duration_hours must be between 0 and"),
    ("max_delay_hours=-1", "--param max_delay_hours='-1': max_delay_hours must be"),
    ("threshold=p200", "--param threshold='p200': threshold_percentile must be between 0 and 100"),
    ("threshold=abc", "--param threshold='abc': threshold must be empty, a number"),
    ("min_savings_percent=101", "--param min_savings_percent='101': min_savings_percent must be between 0 and 100"),
    ("on_provider_failure=maybe", "--param on_provider_failure='maybe': on_provider_failure must be"),
    ("mode=later", "--param mode='later': mode must be"),
    ("energy_kwh=-1", "--param energy_kwh='-1': energy_kwh must be a number from 0"),
    ("provider=nope", "--param provider='nope': provider must be one of"),
    ("regions=[]", "--param regions='[]': regions must be a non-empty list"),
    ('provider_options={"x": {}}', "provider_options has an unknown provider 'x'"),
    ("deadline=yesterday", "--param deadline='yesterday': deadline must be an ISO 8601 datetime"),
    ("tracker=cloud", "--param tracker='cloud': tracker must be one of offline, online"),
    ("test_size=2", "--param test_size='2': test_size must be a fraction"),
    ("functional_unit_size=0", "--param functional_unit_size='0': functional_unit_size must be a whole number > 0"),
    ('variant_names=["fp8"]', "--param variant_names='[\"fp8\"]': variant_names: unknown variant name(s) 'fp8'"),
    ("selection_rule=best", "--param selection_rule='best': selection_rule must be one of"),
])
def test_parameter_values_are_checked_as_a_local_run_checks_them(kfp_api, param, message, capsys):
    server, seen = kfp_api
    assert main(["submit", "kfp", "--host", server.url_for("/"), "--param", param]) == 2
    out = one_line(capsys.readouterr().out)
    assert message in out, out
    assert list(server.log) == []  # refused before the health check


def test_parameters_that_fail_only_together_are_named_together():
    spec = submit.read_package(KUBEFLOW)
    with pytest.raises(SubmitError, match="--param earliest_start='2030-01-01T00:00:00Z', "
                                          "deadline='2029-01-01T00:00:00Z' together: deadline .* is before"):
        submit.typed_params(spec, {"earliest_start": "2030-01-01T00:00:00Z", "deadline": "2029-01-01T00:00:00Z"})


def test_energy_zero_and_the_declared_defaults_pass(kfp_api, capsys):
    server, seen = kfp_api
    assert main(["submit", "kfp", "--host", server.url_for("/"), "--param", "energy_kwh=0",
                 "--param", "duration_hours=2", "--param", "seed=4"]) == 0
    assert "submitted run run-7" in capsys.readouterr().out


def test_a_pipeline_that_is_not_greenkfps_is_checked_by_type_only(tmp_path):
    package = tmp_path / "other.yaml"
    package.write_text(json.dumps({
        "pipelineInfo": {"name": "other"},
        "root": {"inputDefinitions": {"parameters": {
            "duration_hours": {"parameterType": "NUMBER_DOUBLE", "defaultValue": 1.0},
            "something_else": {"parameterType": "STRING"}}}},
    }))
    spec = submit.read_package(package)
    assert submit.typed_params(spec, {"duration_hours": "-1"}) == {"duration_hours": -1.0}


# --- 5. messages ------------------------------------------------------------------------------

@pytest.mark.parametrize("host, message", [
    ("http://[::1", "--host must be an http(s):// URL, got 'http://[::1' (Invalid IPv6 URL)"),
    ("http://u:CANARYPW@[::1", "--host must be an http(s):// URL, got 'http://***@[::1'"),
    ("http://127.0.0.1:9/?token=x", "--host must be the API endpoint URL without ?query or #fragment"),
])
def test_a_host_that_does_not_parse_is_one_line_naming_host(host, message, capsys):
    assert main(["submit", "kfp", "--host", host]) == 2
    out = capsys.readouterr().out
    assert message in one_line(out) and "CANARYPW" not in out and len(out.strip().splitlines()) == 1


@pytest.mark.parametrize("content, message", [
    (bytes(range(256)) * 4, "is not a readable YAML pipeline: it is not UTF-8 text"),
    (b"a: [1, 2\n", "is not a readable YAML pipeline: expected ',' or ']'"),
    (b"- 1\n- 2\n", "is not a compiled KFP pipeline (no pipelineInfo)"),
    (b"pipelineInfo\n", "is not a compiled KFP pipeline (no pipelineInfo)"),
    (b"pipelineInfo: {}\n", "is not a compiled KFP pipeline (pipelineInfo has no name)"),
])
@pytest.mark.parametrize("backend", [["kfp", "--host", "http://127.0.0.1:9"], VERTEX_ARGS[1:]])
def test_a_package_that_is_not_a_yaml_pipeline_is_one_line_naming_package(tmp_path, content, message, backend,
                                                                           capsys):
    package = tmp_path / "package.bin"
    package.write_bytes(content)
    assert main(["submit", *backend, "--package", str(package)]) == 2
    out = one_line(capsys.readouterr().out)
    assert f"--package '{package}' " in out and message in out and "codec" not in out


@pytest.mark.parametrize("body, content_type, message", [
    ("{not json", "application/json", "answered malformed JSON: --host is not a KFP API endpoint"),
    ("{not json", "application/json; charset=utf-8", "answered malformed JSON"),
    ("[1, 2]", "application/json", "answered JSON that is not an object"),
    ("<html>", "text/" + "x" * 5000, "... (5,005 characters), not JSON"),
])
def test_a_health_check_answer_that_is_not_kfps_is_named(httpserver, body, content_type, message, capsys):
    httpserver.expect_request("/apis/v2beta1/healthz").respond_with_data(body, content_type=content_type)
    assert main(["submit", "kfp", "--host", httpserver.url_for("/")]) == 2
    out = one_line(capsys.readouterr().out)
    assert message in out and len(out) < 300


@pytest.mark.parametrize("argv", [
    ["submit", "kfp", "--host", "http://127.0.0.1:9", "--param", "x" * 10_000],
    ["submit", "kfp", "--host", "http://127.0.0.1:9", "--param", "x" * 10_000 + "=1"],
    ["submit", "kfp", "--host", "http://127.0.0.1:9", "--param", "seed=" + "1" * 10_000 + ".5"],
    ["submit", "kfp", "--host", "http://127.0.0.1:9", "--param", "deadline=" + "x" * 10_000],
    ["submit", "kfp", "--host", "ftp://" + "h" * 10_000],
    ["submit", "kfp", "--host", "http://127.0.0.1:9", "--package", "/nonexistent/" + "p" * 5_000],
    ["submit", "vertex", "--project", "p" * 10_000, "--location", "europe-west2", "--pipeline-root", "gs://bucket"],
    ["submit", "vertex", "--project", "my-project", "--location", "europe-west2", "--pipeline-root",
     "gs://" + "b" * 10_000],
    ["submit", "vertex", "--project", "my-project", "--location", "europe-west2", "--pipeline-root", "gs://bucket",
     "--label", "team=" + "X" * 10_000],
])
def test_long_values_are_capped_in_messages(argv, capsys, user_credentials):
    assert main(argv) == 2
    out = one_line(capsys.readouterr().out)
    assert "characters)" in out and len(out) < 800, out[:300]


def test_a_bad_gatekeeper_url_is_named_by_its_option(user_credentials, capsys):
    from greenkfp.pipelines.cli import main

    assert main([*VERTEX_ARGS, "--gatekeeper-url", "ftp://x"]) == 2
    out = capsys.readouterr().out
    assert out.startswith("error: --gatekeeper-url must be an http(s):// URL") and out.count("\n") == 1, out
