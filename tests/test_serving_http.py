"""``greenkfp serve`` over HTTP: a real uvicorn server on a free loopback port serving a model
trained and converted here (scikit-learn + skl2onnx, zipmap=False)."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import free_port

from greenkfp.components.energy.model import model_energy
from greenkfp.components.energy.profiles import resolve_profile
from greenkfp.components.records import SelectionRecord
from greenkfp.components.serving.app import ServeSettings, create_app


@pytest.fixture(scope="module")
def iris_model(tmp_path_factory):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from skl2onnx import to_onnx

    X, y = load_iris(return_X_y=True)
    X = X.astype(np.float32)
    model = LogisticRegression(max_iter=500).fit(X, y)
    onx = to_onnx(model, X[:1], options={id(model): {"zipmap": False}})
    path = tmp_path_factory.mktemp("model") / "iris.onnx"
    path.write_bytes(onx.SerializeToString())
    return path, X


class LiveServer:
    """An app served by uvicorn in a thread on 127.0.0.1 and a free port; stopped by the fixture."""

    def __init__(self, settings: ServeSettings):
        import uvicorn

        self.app = create_app(settings)
        self.core = self.app.state.serving
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=free_port(),
                                                    log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the server did not start"
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self.server.config.port}"
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def wait_until(self, predicate, what: str, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.02)

    def metrics(self) -> dict:
        """``/metrics`` parsed: ``(sample name, frozenset of labels) -> value``."""
        response = self.client.get("/metrics")
        assert response.status_code == 200
        return {(s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(response.text) for s in family.samples}

    def stop(self) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture
def serve(iris_model):
    servers = []

    def start(**overrides) -> LiveServer:
        settings = {"model": str(iris_model[0]), "name": "iris", **overrides}
        server = LiveServer(ServeSettings(**settings))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def ready(server: LiveServer) -> LiveServer:
    server.wait_until(lambda: server.client.get("/v2/health/ready").status_code == 200, "readiness")
    return server


def infer_body(rows: np.ndarray, **extra) -> dict:
    return {"inputs": [{"name": "X", "shape": list(rows.shape), "datatype": "FP32", "data": rows.tolist()}], **extra}


def direct(path, rows: np.ndarray):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["label", "probabilities"], {"X": rows})


def value(metrics: dict, name: str, **labels) -> float:
    return metrics[(name, frozenset(labels.items()))]


def test_infer_matches_onnxruntime_and_metadata(serve, iris_model, tmp_path):
    path, X = iris_model
    # served from a selection record, as the flagship hands it over (the variant beside the record)
    record = tmp_path / "selection.json"
    (tmp_path / path.name).write_bytes(path.read_bytes())
    record.write_text(SelectionRecord(promote=True, chosen="fp32", reason="chosen", rule="knee",
                                      chosen_model_uri=f"/gone/{path.name}").to_json())
    server = ready(serve(model=str(record)))
    c = server.client
    assert c.get("/v2/health/live").json() == {"live": True}
    assert c.get("/v2").json()["name"] == "greenkfp"
    meta = c.get("/v2/models/iris").json()
    assert meta["inputs"] == [{"name": "X", "datatype": "FP32", "shape": [-1, 4]}]
    assert meta["outputs"] == [{"name": "label", "datatype": "INT64", "shape": [-1]},
                               {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}]
    assert c.get("/v2/models/iris/versions/1").json() == meta
    assert c.get("/v2/models/iris/ready").json() == {"name": "iris", "ready": True}
    assert meta["parameters"] == {"batchable": True}
    # HEAD on every GET endpoint: GET's status and headers, no body (probes and load balancers use it)
    for endpoint in ("/v2/health/live", "/v2/health/ready", "/v2", "/metrics", "/v2/models/iris",
                     "/v2/models/iris/ready", "/v2/models/iris/versions/1"):
        head, get = c.head(endpoint), c.get(endpoint)
        assert (head.status_code, head.content) == (200, b""), endpoint
        assert head.headers["content-type"] == get.headers["content-type"], endpoint

    rows = X[[0, 60, 120]]
    labels, probabilities = direct(path, rows)
    answer = c.post("/v2/models/iris/infer", json=infer_body(rows, id="req-1"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_name"] == "iris" and body["id"] == "req-1"
    out = {o["name"]: o for o in body["outputs"]}
    assert out["label"]["datatype"] == "INT64" and out["label"]["shape"] == [3]
    assert out["label"]["data"] == labels.tolist()
    assert out["probabilities"]["shape"] == [3, 3] and out["probabilities"]["datatype"] == "FP32"
    np.testing.assert_array_equal(np.array(out["probabilities"]["data"], dtype=np.float32).reshape(3, 3),
                                  probabilities)
    # flat data, an output chosen, the /versions/ form
    flat = {"inputs": [{"name": "X", "shape": [3, 4], "datatype": "FP32", "data": rows.ravel().tolist()}],
            "outputs": [{"name": "label"}]}
    body = c.post("/v2/models/iris/versions/1/infer", json=flat).json()
    assert [o["name"] for o in body["outputs"]] == ["label"] and body["outputs"][0]["data"] == labels.tolist()


def test_concurrent_requests_are_batched_and_each_gets_its_rows(serve, iris_model):
    path, X = iris_model
    server = ready(serve(max_batch_size=64, max_batch_delay_ms=100))
    picks = [X[[i, i + 50, i + 100][: 1 + i % 3]] for i in range(16)]  # 1 to 3 rows each, all different
    start = threading.Barrier(len(picks))

    def ask(rows):
        with httpx.Client(base_url=server.url, timeout=30) as client:
            start.wait()
            return client.post("/v2/models/iris/infer", json=infer_body(rows))

    with ThreadPoolExecutor(len(picks)) as pool:
        answers = list(pool.map(ask, picks))
    for rows, answer in zip(picks, answers):
        assert answer.status_code == 200, answer.text
        out = {o["name"]: o for o in answer.json()["outputs"]}
        labels, probabilities = direct(path, rows)
        assert out["label"]["data"] == labels.tolist()
        np.testing.assert_allclose(np.array(out["probabilities"]["data"]).reshape(len(rows), 3), probabilities,
                                   rtol=1e-5, atol=1e-6)
    m = server.metrics()
    batches = value(m, "greenkfp_inference_batch_requests_count", model="iris")
    assert value(m, "greenkfp_inference_batch_requests_sum", model="iris") == len(picks)
    assert value(m, "greenkfp_inference_batch_rows_sum", model="iris") == sum(len(r) for r in picks)
    assert batches < len(picks), "no two requests were batched"
    assert value(m, "greenkfp_inference_batch_requests_bucket", model="iris", le="1.0") < batches
    assert value(m, "greenkfp_inferences_total", model="iris") == sum(len(r) for r in picks)


def test_bad_requests_get_protocol_errors(serve):
    server = ready(serve(max_request_rows=4, max_body_bytes=4096))
    c = server.client
    good = {"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}
    cases = [
        ("malformed JSON", {"content": b'{"inputs": ['}, 400, "malformed JSON"),
        ("not an object", {"json": [good]}, 400, "JSON object"),
        ("no inputs", {"json": {"inputs": []}}, 400, "inputs"),
        ("shape not a list", {"json": {"inputs": [{**good, "shape": "1x4"}]}}, 400, "inputs.0.shape"),
        ("unknown input", {"json": {"inputs": [{**good, "name": "Y"}]}}, 400, "unknown input 'Y'"),
        ("wrong datatype", {"json": {"inputs": [{**good, "datatype": "FP64"}]}}, 400, "datatype 'FP64'"),
        ("unknown datatype", {"json": {"inputs": [{**good, "datatype": "FLOAT"}]}}, 400, "datatype 'FLOAT'"),
        ("wrong shape", {"json": {"inputs": [{**good, "shape": [1, 3], "data": [1, 2, 3]}]}}, 400, "shape [1, 3]"),
        ("wrong rank", {"json": {"inputs": [{**good, "shape": [4]}]}}, 400, "shape [4]"),
        ("data size", {"json": {"inputs": [{**good, "data": [1, 2, 3]}]}}, 400, "holds 4 elements"),
        ("text data", {"json": {"inputs": [{**good, "data": [1, "a", 3, 4]}]}}, 400, "not FP32"),
        ("ragged data", {"json": {"inputs": [{**good, "shape": [2, 4], "data": [[1, 2, 3, 4], [1]]}]}}, 400,
         "regular array"),
        ("too many rows", {"json": {"inputs": [{**good, "shape": [5, 4], "data": [0.5] * 20}]}}, 400,
         "5 rows"),
        ("input twice", {"json": {"inputs": [good, good]}}, 400, "given twice"),
        ("no rows", {"json": {"inputs": [{**good, "shape": [0, 4], "data": []}]}}, 400, "no rows"),
        ("unknown output", {"json": {"inputs": [good], "outputs": [{"name": "scores"}]}}, 400,
         "unknown output(s) 'scores'"),
        ("oversized body", {"content": b" " * 5000}, 413, "larger than the server takes"),
    ]
    for what, request, status, fragment in cases:
        answer = c.post("/v2/models/iris/infer", **request)
        assert answer.status_code == status, (what, answer.text)
        assert answer.headers["content-type"] == "application/json"
        assert set(answer.json()) == {"error"} and fragment in answer.json()["error"], (what, answer.text)
        assert "Traceback" not in answer.text
    # an oversized body refused from its bytes alone (no Content-Length: chunked)
    answer = c.post("/v2/models/iris/infer", content=iter([b" " * 3000, b" " * 3000]))
    assert answer.status_code == 413 and "error" in answer.json()
    for path, status in (("/v2/models/other/infer", 404), ("/v2/models/iris/versions/2/infer", 404)):
        answer = c.post(path, json={"inputs": [good]})
        assert answer.status_code == status and "error" in answer.json()
    assert c.get("/v2/models/other").status_code == 404
    assert c.get("/v2/models/other/ready").status_code == 404
    assert c.get("/v2/nothing").json() == {"error": "no such endpoint: GET /v2/nothing"}
    assert c.get("/v2/models/iris/infer").status_code == 405
    # the server goes on serving, and counted every error by kind
    assert c.post("/v2/models/iris/infer", json={"inputs": [good]}).status_code == 200
    m = server.metrics()
    assert value(m, "greenkfp_inference_errors_total", model="iris", kind="bad_request") == 15
    assert value(m, "greenkfp_inference_errors_total", model="iris", kind="too_many_rows") == 1
    assert value(m, "greenkfp_inference_errors_total", model="iris", kind="body_too_large") == 2
    assert value(m, "greenkfp_inference_errors_total", model="iris", kind="unknown_model") == 2
    assert value(m, "greenkfp_inference_requests_total", model="iris", outcome="client_error") == 20
    assert value(m, "greenkfp_inference_requests_total", model="iris", outcome="success") == 1


def test_metrics_count_requests_and_model_energy_from_cpu_time(serve, iris_model):
    _, X = iris_model
    server = ready(serve(hardware_profile="c5.2xlarge", max_batch_size=1, max_batch_delay_ms=0))
    # the grid intensity arrives from the carbon service in the background
    server.wait_until(lambda: not math.isnan(value(server.metrics(), "greenkfp_grid_intensity_grams_per_kilowatt_hour",
                                                   region="GB", provider="embedded")), "the grid intensity")
    before = server.metrics()
    sizes = [1, 2, 3, 4, 2]
    for n in sizes:
        assert server.client.post("/v2/models/iris/infer", json=infer_body(X[:n])).status_code == 200
    m = server.metrics()

    def moved(name, **labels):
        return value(m, name, **labels) - value(before, name, **labels)

    assert moved("greenkfp_inference_requests_total", model="iris", outcome="success") == len(sizes)
    assert moved("greenkfp_inference_request_duration_seconds_count", model="iris") == len(sizes)
    assert moved("greenkfp_inferences_total", model="iris") == sum(sizes)
    assert moved("greenkfp_inference_batch_requests_count", model="iris") == len(sizes)  # batching off
    assert value(m, "greenkfp_inference_batch_requests_bucket", model="iris", le="1.0") == len(sizes)
    cpu = value(m, "greenkfp_inference_cpu_seconds_total", model="iris")
    assert cpu > 0
    # no RAPL on this machine: modeled, CPU seconds x the profile's power of one busy vCPU
    assert not any(name == "greenkfp_inference_energy_joules_total" and dict(labels).get("method") == "measured"
                   for name, labels in m)
    watts = model_energy(resolve_profile("c5.2xlarge"), 100.0, 1.0, 1).total_kwh * 3.6e6
    assert value(m, "greenkfp_modeled_busy_core_watts", model="iris", profile="c5.2xlarge") == pytest.approx(watts)
    joules = value(m, "greenkfp_inference_energy_joules_total", model="iris", method="modeled")
    assert joules == pytest.approx(cpu * watts, rel=1e-9)
    intensity = value(m, "greenkfp_grid_intensity_grams_per_kilowatt_hour", region="GB", provider="embedded")
    assert 0 < intensity < 2000
    assert value(m, "greenkfp_grid_intensity_refresh_failures_total", region="GB", provider="embedded") == 0
    assert value(m, "greenkfp_grid_intensity_age_seconds", region="GB", provider="embedded") >= 0
    per_1000 = value(m, "greenkfp_inference_carbon_grams_per_1000_inferences", model="iris", method="modeled")
    assert per_1000 == pytest.approx(joules / sum(sizes) * 1000 / 3.6e6 * intensity, rel=1e-9)
    assert value(m, "greenkfp_inference_carbon_grams_total", model="iris", method="modeled") == \
        pytest.approx(joules / 3.6e6 * intensity, rel=1e-6)
    assert value(m, "greenkfp_model_ready", model="iris") == 1


@pytest.mark.parametrize("content", [b"this is not an onnx model", None])
def test_a_model_that_fails_to_load_fails_readiness_not_the_process(tmp_path, content):
    if content is None:  # a selection that chose nothing
        model = tmp_path / "selection.json"
        model.write_text(SelectionRecord(promote=False, chosen=None, reason="no variant qualified",
                                         rule="knee").to_json())
    else:
        model = tmp_path / "corrupt.onnx"
        model.write_bytes(content)
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "greenkfp.pipelines.cli", "serve", "--model", str(model),
                                "--name", "broken", "--port", str(port)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read()
            try:
                if httpx.get(url + "/v2/models/broken/ready", timeout=2).status_code == 503:
                    break  # loaded, and failed
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        assert httpx.get(url + "/v2/health/live").status_code == 200
        assert httpx.get(url + "/v2/health/ready").status_code == 503
        why = httpx.get(url + "/v2/models/broken/ready").json()
        assert why["ready"] is False and ("cannot load" in why["error"] or "no variant qualified" in why["error"])
        answer = httpx.post(url + "/v2/models/broken/infer",
                            json={"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]})
        assert answer.status_code == 503 and "not available" in answer.json()["error"]
        assert process.poll() is None
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        output = process.communicate(timeout=60)[0]
    assert "failed to load" in output and "Traceback" not in output


@pytest.mark.parametrize("argv, message", [
    (["--max-batch-size", "0"], "--max-batch-size must be a whole number from 1 to 65536, got '0'"),
    (["--max-batch-delay-ms", "-1"], "--max-batch-delay-ms must be a number from 0 to 10000, got '-1'"),
    (["--threads", "two"], "--threads must be a whole number from 1 to 256, got 'two'"),
    (["--port", "70000"], "--port must be a whole number from 1 to 65535, got '70000'"),
    (["--hardware-profile", "laptop"], "--hardware-profile: unknown hardware profile 'laptop'"),
    (["--region", "Atlantis"], "--region: region 'Atlantis' is not in the embedded data"),
    (["--name", "a/b"], "--name must be 1-128 letters"),
    (["--provider-option", "uk.nope=1"], "provider_options['uk'] has an unknown option 'nope'"),
])
def test_bad_options_are_one_line_errors(iris_model, argv, message):
    result = subprocess.run([sys.executable, "-m", "greenkfp.pipelines.cli", "serve", "--model", str(iris_model[0]),
                             "--name", "iris", *argv], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
