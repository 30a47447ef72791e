"""A real Prometheus scraping a real ``greenkfp serve`` on loopback: the PromQL queries the
autoscaling policy will use (``greenkfp.components.serving.promql``) return the series it needs,
with values that agree with what the client sent and measured.

The load is bounded: one client thread paced at RATE requests per second for LOAD_S seconds.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from _serving import build_model, greenkfp_server, infer_payload  # noqa: E402

from greenkfp.components.serving import promql  # noqa: E402

RATE = 25.0  # requests per second offered
LOAD_S = 16.0  # seconds of load
WINDOW_S = 10  # the queries' rate window, seconds, inside the load


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``greenkfp serve`` with a small candidate of the flagship (mlp-small, int8), on a free loopback port."""
    model = build_model(tmp_path_factory.mktemp("model"), candidate="mlp-small", max_iter=50)
    path = Path(model["dir"]) / model["files"]["int8_dynamic"]
    with greenkfp_server(path, "digits") as server:
        yield server, model


def _send(server, body: bytes, rate: float, seconds: float) -> list[tuple[float, float, bool]]:
    """Paced requests (one client, a keep-alive connection): ``(wall time at completion, latency
    seconds, success)`` of each."""
    import httpx

    done = []
    with httpx.Client(base_url=server.url, timeout=5.0, headers={"content-type": "application/json"}) as client:
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            due = start + i / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            t0 = time.perf_counter()
            answer = client.post(server.infer_path, content=body)
            done.append((time.time(), time.perf_counter() - t0, answer.status_code == 200))
    return done


def _value(result: list[dict]) -> float:
    assert len(result) == 1, result
    return float(result[0]["value"][1])


def test_promql_of_the_autoscaling_policy_against_a_real_prometheus(prometheus_server, served):
    server, model = served
    prometheus_server.scrape("greenkfp-serve", [server.url.split("//", 1)[1]])
    body = infer_payload(model["rows"][:1], server.input_name)
    sent: list = []
    thread = threading.Thread(target=lambda: sent.extend(_send(server, body, RATE, LOAD_S)))
    thread.start()
    thread.join(timeout=LOAD_S + 60)
    assert not thread.is_alive()
    assert sent and all(ok for _, _, ok in sent), "every request must succeed"
    at = sent[-1][0] - 1.0  # the window [at - WINDOW_S, at] lies inside the load
    time.sleep(3 * prometheus_server.interval_s)  # the scrapes after `at` have landed
    window = f"{WINDOW_S}s"
    # the Prometheus is the session's: other tests' servers may have left series of a model named
    # "digits" in it, so every query keeps this server's series only
    instance = server.url.split("//", 1)[1]
    only = f'instance="{instance}"'

    # request rate: what the client completed over the same window
    in_window = [t for t, _, _ in sent if at - WINDOW_S < t <= at]
    client_rate = len(in_window) / WINDOW_S
    rate = _value(prometheus_server.query(promql.query(promql.REQUEST_RATE, window=window, model="digits", selector=only), at))
    assert rate > 0
    assert abs(rate - client_rate) <= 0.2 * client_rate, (rate, client_rate)
    assert _value(prometheus_server.query(promql.query(promql.ERROR_RATE, window=window, model="digits", selector=only), at)) == 0

    # p95 latency: finite, and no more than the top of the histogram bucket holding the client's p95
    # (the server's latency of a request is part of the client's)
    p95 = _value(prometheus_server.query(promql.query(promql.P95_LATENCY, window=window, model="digits", selector=only), at))
    assert math.isfinite(p95) and p95 > 0
    latencies = sorted(latency for t, latency, _ in sent if at - WINDOW_S < t <= at)
    client_p95 = latencies[math.ceil(0.95 * len(latencies)) - 1]
    from greenkfp.components.serving.metrics import LATENCY_BUCKETS_S

    bucket_top = next((b for b in LATENCY_BUCKETS_S if b >= client_p95), math.inf)
    assert p95 <= bucket_top, (p95, client_p95, bucket_top)

    # power per pod: one series, modeled here (no RAPL), watts = CPU seconds per second x the
    # profile's power of a busy vCPU
    power = prometheus_server.query(promql.query(promql.POWER_PER_POD, window=window, model="digits", selector=only), at)
    assert len(power) == 1 and power[0]["metric"]["method"] == "modeled", power
    assert power[0]["metric"]["instance"] == server.url.split("//", 1)[1]
    watts = float(power[0]["value"][1])
    cpu = _value(prometheus_server.query(
        f'sum(rate(greenkfp_inference_cpu_seconds_total{{model="digits",{only}}}[{window}]))', at))
    busy_core = _value(prometheus_server.query(f'greenkfp_modeled_busy_core_watts{{model="digits",{only}}}', at))
    assert watts > 0 and cpu > 0
    assert watts == pytest.approx(cpu * busy_core, rel=1e-6)
    assert watts < busy_core  # one paced client keeps well under one busy core


def test_every_query_is_valid_promql_for_prometheus(prometheus_server):
    """Prometheus parses each query (with a model, a further selector, or neither)."""
    for template in promql.QUERIES.values():
        for filled in (promql.query(template), promql.query(template, window="30s", model="digits"),
                       promql.query(template, window="5m", model="a", selector='namespace="prod",pod=~"d-.*"')):
            prometheus_server.query(filled)  # raises RuntimeError when Prometheus refuses it
