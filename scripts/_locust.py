"""Locust as a library, for the serving scripts (``loadtest_serving.py``, ``validate_autoscaling.py``).

A user class offering a fixed rate of one request body (``make_user``), a recorder of every
request (``Recorder``: completion time, latency, success), CPU sampling of the server and the
client (``CpuSampler``), a fixed-rate run with a warm-up and a measured window
(``run_fixed_rate``), and signal handling that unwinds the main greenlet (``interrupt_on_signals``).
The statistics are ``greenkfp.components.serving.loadtest``.

Importing this module imports Locust, which patches the standard library with gevent: import it
first in a script, and never from a process that must not be patched (pytest, bench_serving.py),
hence its own module rather than ``_serving.py``.
"""

from __future__ import annotations

# Locust patches the standard library with gevent when imported: first, before anything else.
from locust import FastHttpUser, constant_pacing, events, task  # noqa: E402,I001
from locust.env import Environment  # noqa: E402

import contextlib  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402

from _serving import RunningServer, process_cpu_s  # noqa: E402

def interrupt_on_signals() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt in the main greenlet, so that every server,
    proxy and cgroup is stopped on the way out. (A plain Python handler runs in whichever
    greenlet is current, often a Locust user's, where the interrupt is lost.)"""
    import signal

    import greenlet

    main = greenlet.getcurrent()

    def interrupt() -> None:
        if not main.dead:
            gevent.get_hub().loop.run_callback(main.throw, KeyboardInterrupt)

    for number in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(number, interrupt)


def make_user(server: RunningServer, body: bytes, rate: float):
    """A Locust user offering ``rate`` requests per second of ``body`` to the server."""

    class InferUser(FastHttpUser):
        host = server.url
        wait_time = constant_pacing(1.0 / rate)
        network_timeout = 10.0
        connection_timeout = 5.0

        @task
        def infer(self):
            with self.client.post(server.infer_path, data=body, headers={"content-type": "application/json"},
                                  name="infer", catch_response=True) as response:
                if response.status_code != 200:
                    response.failure(f"HTTP {response.status_code}")

    return InferUser


class Recorder:
    """Every request's completion time, latency and success (from Locust's request event); stops
    the runner at ``max_requests``."""

    def __init__(self, environment: Environment, max_requests: int):
        self.environment, self.max_requests = environment, max_requests
        self.t0 = time.monotonic()
        self.samples: list = []
        self.capped = False
        environment.events.request.add_listener(self.on_request)

    def on_request(self, response_time, exception, **_):
        from greenkfp.components.serving.loadtest import Sample

        self.samples.append(Sample(time.monotonic() - self.t0, response_time / 1000.0, exception is None))
        if len(self.samples) >= self.max_requests and not self.capped:
            self.capped = True
            gevent.spawn(self.environment.runner.quit)


class CpuSampler:
    """``(seconds from t0, CPU seconds)`` of the server process (and children) and of this process
    (``client``); ``others`` (name: pid) are sampled too, into ``series[name]``."""

    def __init__(self, pid: int | None, t0: float, every_s: float = 0.25, others: dict[str, int] | None = None):
        import psutil

        self.pid, self.t0, self.every_s = pid, t0, every_s
        self.server: list[tuple[float, float]] = []
        self.client: list[tuple[float, float]] = []
        self.others = dict(others or {})
        self.series: dict[str, list[tuple[float, float]]] = {name: [] for name in self.others}
        self._me = psutil.Process()
        self._greenlet = None

    def sample(self) -> None:
        now = time.monotonic() - self.t0
        if self.pid is not None:
            with contextlib.suppress(Exception):
                self.server.append((now, process_cpu_s(self.pid)))
        for name, pid in self.others.items():
            with contextlib.suppress(Exception):
                self.series[name].append((now, process_cpu_s(pid)))
        times = self._me.cpu_times()
        self.client.append((now, times.user + times.system))

    def _loop(self) -> None:
        while True:
            self.sample()
            gevent.sleep(self.every_s)

    def __enter__(self):
        self._greenlet = gevent.spawn(self._loop)
        return self

    def __exit__(self, *exc):
        self._greenlet.kill()
        self.sample()


def locust_users(rate: float, user_rps: float, max_users: int, multiple: int = 1) -> int:
    """Users offering ``rate`` at about ``user_rps`` each, a multiple of ``multiple``, at most ``max_users``."""
    users = max(1, math.ceil(rate / user_rps - 1e-9))
    return min(max_users, multiple * math.ceil(users / multiple))


def run_fixed_rate(server: RunningServer, body: bytes, rate: float, *, seconds: float, warmup_s: float,
                   user_rps: float, max_users: int, max_requests: int, users_multiple: int = 1,
                   on_window=None) -> list:
    """``rate`` requests per second offered for ``warmup_s`` + ``seconds``; returns the requests
    (``Sample``) that completed in the measured window (after the warm-up), times from its start.

    Users offer about ``user_rps`` each; their count is rounded up to a multiple of
    ``users_multiple`` (each user holds one keep-alive connection, so behind a connection
    round-robin over N replicas a multiple of N spreads the load evenly). ``on_window(start)``
    and ``on_window(end)`` are called at the window's bounds (e.g. to read counters)."""
    from greenkfp.components.serving.loadtest import Sample

    users = locust_users(rate, user_rps, max_users, users_multiple)
    environment = Environment(user_classes=[make_user(server, body, rate / users)], events=events)
    runner = environment.create_local_runner()
    recorder = Recorder(environment, max_requests)
    try:
        runner.start(users, spawn_rate=min(100.0, max(users / max(warmup_s / 2, 0.1), 1)))
        gevent.sleep(max(0.0, recorder.t0 + warmup_s - time.monotonic()))
        if on_window:
            on_window("start")
        gevent.sleep(max(0.0, recorder.t0 + warmup_s + seconds - time.monotonic()))
        if on_window:
            on_window("end")
        runner.quit()
    finally:
        environment.events.request.remove_listener(recorder.on_request)
    return [Sample(s.t - warmup_s, s.latency_s, s.ok) for s in recorder.samples if warmup_s <= s.t < warmup_s + seconds]
