"""Shared fixtures. No mocks of our own code: real series, real providers, real local servers."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta, timezone

import pytest

from greenkfp.components.carbon import CarbonSeries


@pytest.fixture(autouse=True)
def _print_given_back():
    """Tests that drive kfp's local runner themselves (``local.init``) can be left with its
    per-task builtins.print swap (it swaps from several threads): later tests' output would be
    indented. The library's own local runs give it back (pipelines/local.py)."""
    import builtins

    original = builtins.print
    yield
    builtins.print = original


T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def hourly(values, start: datetime = T0) -> CarbonSeries:
    return CarbonSeries.from_points([(start + timedelta(hours=i), v) for i, v in enumerate(values)])


class FixedClock:
    """A clock for code that asks for "now": returns a set time, advanced by sleeps."""

    def __init__(self, now: datetime):
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock():
    return FixedClock(datetime(2023, 6, 14, 9, 0, tzinfo=timezone.utc))


# --------------------------------------------------------------------------- PostgreSQL

@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server for the session, started with initdb and pg_ctl in a temporary folder,
    on 127.0.0.1 and a free port, stopped (``-m immediate``) and deleted at the end, also when a
    test fails; as root it runs as ``nobody``. The same code starts the benchmarks' server
    (``scripts/_postgres.py``)."""
    yield from _script_server("_postgres", "postgres_server", "PostgresUnavailable")


# --------------------------------------------------------------------------- Prometheus

@pytest.fixture(scope="session")
def prometheus_server():
    """Debian's Prometheus for the session (``scripts/_prometheus.py``): its own config file and a
    TSDB in a temporary folder, 127.0.0.1 on a free port, scraping every second; ``scrape(job,
    targets)`` points it at loopback targets, ``query(promql)`` asks its HTTP API. Stopped and
    deleted at the end, also when a test fails. Skips only when no prometheus binary is installed
    (``.ci/run`` installs one)."""
    yield from _script_server("_prometheus", "prometheus_server", "PrometheusUnavailable")


# --------------------------------------------------------------------------- Chromium

# Module scope, not session: Playwright's sync API keeps an asyncio loop running in the main
# thread while it is open, and asyncio.run() in any later test would then fail.
@pytest.fixture(scope="module")
def chromium():
    """Debian's headless Chromium for a test module, driven by Playwright (``scripts/_chromium.py``):
    ``chromium.load(path, screenshot=..., probe=...)`` gives a page's console errors, exceptions,
    failed requests (any external request is one) and a full-page screenshot. Skips only when no
    Chromium binary is installed (``.ci/run`` installs one)."""
    yield from _script_server("_chromium", "chromium", "ChromiumUnavailable")


def _script_server(module: str, start: str, unavailable: str):
    """Yield what ``scripts/<module>.py``'s context manager ``start()`` runs (the benchmarks start
    the same servers); skip the tests when it raises ``unavailable`` on entering."""
    import importlib
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    try:
        scripts = importlib.import_module(module)
    finally:
        sys.path.pop(0)
    try:
        with getattr(scripts, start)() as running:
            yield running
    except getattr(scripts, unavailable) as exc:  # raised on entering only: nothing was yielded
        pytest.skip(str(exc))


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request, tmp_path):
    """The URL of an empty budget ledger: a SQLite file, or a new schema on the session's PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("postgres_server").fresh_url()


# --------------------------------------------------------------------------- the gatekeeper


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServedGatekeeper:
    """A ``greenkfp gatekeeper serve`` process: its ``url``; its ``output`` once stopped."""

    def __init__(self, url: str):
        self.url, self.output = url, ""


@contextlib.contextmanager
def serve_gatekeeper(argv: list[str], env: dict, cwd, start_timeout_s: float = 90.0):
    """``greenkfp gatekeeper serve ARGV --port P`` as a user runs it (its own process group), on a
    free loopback port, ready when /healthz answers; stopped with SIGTERM at the end (its output
    kept), also when the test fails."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import httpx

    port = free_port()
    command = [sys.executable, "-m", "greenkfp.pipelines.cli", "gatekeeper", "serve", *argv, "--port", str(port)]
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    served = ServedGatekeeper(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            assert process.poll() is None, process.stdout.read()
            try:
                if httpx.get(served.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the gatekeeper did not start"
            time.sleep(0.2)
        yield served
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        served.output = process.communicate(timeout=60)[0]


class LiveGatekeeper:
    """A gatekeeper app served by uvicorn in a thread on 127.0.0.1 and a free port."""

    def __init__(self, app):
        import threading
        import time

        import uvicorn

        self.app, self.core = app, app.state.gatekeeper
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the gatekeeper did not start")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self.server.config.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)

    def call(self, method: str, path: str, token: str | None = None, **kwargs):
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)


#: The tokens of the test gatekeepers (two teams, the admin, one board member).
TOKENS = {"ml": "ml-team-token-0123456789", "search": "search-team-token-012345"}
ADMIN = "admin-token-0123456789abcdef"
BOARD = {"carol": "board-carol-token-0123456"}


@pytest.fixture
def start_gatekeeper(tmp_path):
    """``start(kfp_url, ledger_url=None, **settings)``: a live gatekeeper; stopped at the end."""
    started = []

    def start(kfp_url: str, ledger_url: str | None = None, **settings) -> LiveGatekeeper:
        from greenkfp.components.governance.gatekeeper import GatekeeperSettings, create_app
        from greenkfp.components.governance.tokens import Tokens

        tokens = settings.pop("tokens", None) or Tokens(teams=TOKENS, admin=ADMIN, board=BOARD,
                                                        upstream="upstream-kfp-token-0123456")
        app = create_app(GatekeeperSettings(ledger_url=ledger_url or f"sqlite:///{tmp_path / 'ledger.db'}",
                                            kfp_url=kfp_url, tokens=tokens, **settings))
        started.append(LiveGatekeeper(app))
        return started[-1]

    yield start
    for gatekeeper in started:
        gatekeeper.stop()
