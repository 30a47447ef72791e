"""A throwaway Prometheus server (Debian's ``prometheus`` binary, its own config file and a TSDB in
a temporary folder, 127.0.0.1 on a free port, scraping every second), for the scripts in this
folder and the tests (``tests/conftest.py`` imports it).

    with prometheus_server() as prom:
        prom.scrape("greenkfp", ["127.0.0.1:8080"])   # rewrites the config and reloads it
        prom.query('sum(rate(greenkfp_inference_requests_total[30s]))')

Imported as ``from _prometheus import ...`` (a script's own folder is on ``sys.path``).
Standard library and httpx only.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

from _bench import stop_process_group

#: Where Debian's package puts the binary (also looked up on the PATH).
DEBIAN_BINARY = "/usr/bin/prometheus"


class PrometheusUnavailable(RuntimeError):
    """No ``prometheus`` binary here (``.ci/run`` installs Debian's package)."""


def prometheus_binary() -> str | None:
    found = shutil.which("prometheus")
    if found:
        return found
    return DEBIAN_BINARY if os.access(DEBIAN_BINARY, os.X_OK) else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _config(jobs: dict[str, list[str]], interval_s: float, labels: dict[str, dict[str, str]] | None = None) -> str:
    """A prometheus.yml (YAML is a superset of JSON: written as JSON, no YAML library needed);
    ``labels``: target -> the labels its series get (as Kubernetes discovery's relabeling gives
    ``namespace`` and ``pod``)."""
    interval = f"{int(interval_s * 1000)}ms"
    labels = labels or {}
    return json.dumps({
        "global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval},
        "scrape_configs": [{"job_name": job, "metrics_path": "/metrics",
                            "static_configs": [{"targets": [t], **({"labels": labels[t]} if t in labels else {})}
                                               for t in targets]}
                           for job, targets in jobs.items()],
    }, indent=2)


class PrometheusServer:
    """A running server: its ``url``, ``scrape()`` to set its targets, ``query()`` its HTTP API."""

    def __init__(self, url: str, config: Path, process: subprocess.Popen, interval_s: float):
        self.url, self.config, self.process, self.interval_s = url, config, process, interval_s

    def scrape(self, job: str, targets: list[str], *, wait_s: float = 30.0,
               labels: dict[str, dict[str, str]] | None = None) -> None:
        """Scrape ``targets`` (``host:port``, loopback) as ``job``: the config is rewritten and
        reloaded (``/-/reload``), and this waits until every target has been scraped up.
        ``labels``: target -> labels added to its series (``{"namespace": "prod", "pod": "a"}``)."""
        import httpx

        for target in targets:
            host = target.rsplit(":", 1)[0]
            if host not in ("127.0.0.1", "localhost", "[::1]"):
                raise ValueError(f"scrape targets must be on loopback, got {target!r}")
        self.config.write_text(_config({job: list(targets)}, self.interval_s, labels))
        httpx.post(f"{self.url}/-/reload", timeout=10).raise_for_status()
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            active = httpx.get(f"{self.url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
            mine = [t for t in active if t["labels"].get("job") == job]
            if len(mine) == len(targets) and all(t["health"] == "up" for t in mine):
                return
            time.sleep(0.2)
        raise RuntimeError(f"Prometheus did not scrape {targets} up within {wait_s:g} s: "
                           f"{[(t['scrapeUrl'], t['health'], t.get('lastError')) for t in mine]}")

    def query(self, promql: str, at: float | None = None) -> list[dict]:
        """The result of an instant query (``[{"metric": {...}, "value": [t, "v"]}]``).

        Raises:
            RuntimeError: Prometheus refused the query (its error type and message).
        """
        import httpx

        params = {"query": promql, **({"time": f"{at:.3f}"} if at is not None else {})}
        answer = httpx.get(f"{self.url}/api/v1/query", params=params, timeout=10).json()
        if answer.get("status") != "success":
            raise RuntimeError(f"Prometheus refused {promql!r}: {answer.get('errorType')}: {answer.get('error')}")
        return answer["data"]["result"]


@contextlib.contextmanager
def prometheus_server(interval_s: float = 1.0, start_timeout_s: float = 60.0) -> Iterator[PrometheusServer]:
    """Start Prometheus (no targets yet), wait until ``/-/ready``, yield it; stop it (SIGTERM, then
    SIGKILL) and delete its folder at the end, also on error.

    Raises:
        PrometheusUnavailable: no ``prometheus`` binary.
        RuntimeError: it did not become ready (the message has the end of its log).
    """
    import httpx

    binary = prometheus_binary()
    if binary is None:
        raise PrometheusUnavailable("Prometheus is not installed: no prometheus on the PATH nor at "
                                    f"{DEBIAN_BINARY} (.ci/run installs Debian's prometheus)")
    base = Path(tempfile.mkdtemp(prefix="greenkfp-prometheus-"))
    config, log, port = base / "prometheus.yml", base / "prometheus.log", free_port()
    config.write_text(_config({}, interval_s))
    command = [binary, f"--config.file={config}", f"--storage.tsdb.path={base / 'data'}",
               f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle",
               "--storage.tsdb.retention.time=1h", "--log.level=warn"]
    process = None
    try:
        with open(log, "w") as sink:
            process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + start_timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"prometheus exited with code {process.returncode}: {log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"prometheus was not ready within {start_timeout_s:g} s: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield PrometheusServer(url, config, process, interval_s)
    finally:
        if process is not None:
            stop_process_group(process, timeout_s=20)
        shutil.rmtree(base, ignore_errors=True)
