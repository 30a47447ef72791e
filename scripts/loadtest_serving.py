"""Load test the inference server through a day compressed into minutes, and find one replica's
capacity at the SLA.

Locust drives the server as a library (``locust.env.Environment``, a local runner, a
``LoadTestShape``), headless, loopback only, bounded in users (``--max-users``), time
(``--duration``, ``--probe-seconds`` x ``--max-probes``) and requests (``--max-requests``). The
stages, statistics and capacity search are ``greenkfp.components.serving.loadtest`` (its
docstring has the stage table); this script only wires them to Locust and the server.

1. The day: off-peak, morning ramp, midday, evening spike, ramp down, peaking at ``--peak-rps``
   offered requests per second (each user offers ``--user-rps``, Locust's ``constant_pacing``).
   Per stage: p50/p95/p99 latency (ms), error rate, throughput (req/s), the server's CPU seconds
   (psutil on the server's process and its children, sampled every 0.25 s) and requests per
   CPU-second. All measured.
2. Capacity: fixed-rate probes (each ``--probe-seconds`` after a 1 s warm-up), the rate doubling
   from ``--start-rps`` then bisected, until the highest rate with p95 under ``--sla-ms`` (default
   50), under 1 % errors and 95 % of the offered rate answered is known within 10 %.

The server: by default the script builds the flagship's default model (``mlp-wide`` on digits,
``int8_dynamic`` through the library's quantizer; cached in build/serving-model) and starts
``greenkfp serve`` on a free loopback port (``--model`` for another ONNX file, ``--serve-option``
to pass options on); ``--url`` tests a server already running on loopback instead
(``--server-pid`` to count its CPU). ``--cpu-limit-m N`` runs the server under a CPU limit of N
millicores, a CFS quota on its own cgroup as the kubelet sets a pod's ``limits.cpu``
(``scripts/_cgroup.py``; needs a writable cpu cgroup, else the script refuses); the limit is
recorded in the JSON's settings (``cpu_limit_m``), which the autoscaling replica profile reads,
with the throttling the server saw (``totals.cpu_throttling``).

Locust itself runs on the same machine and its CPU time is reported too (``client_cpu_s``): on a
small machine the client can be what limits the rate, which the capacity's "answered" criterion
then shows.

Usage:
    python scripts/loadtest_serving.py [--duration 180] [--peak-rps 200] [--json build/loadtest_serving.json]
    python scripts/loadtest_serving.py --duration 20 --probe-seconds 2 --max-probes 4   # under a minute
Exit codes: 0 done, 2 a bad option (one line on stderr), 1 the server did not start or answered nothing.
"""

from __future__ import annotations

# Locust patches the standard library with gevent when imported: first, before anything else.
from locust import LoadTestShape, events  # noqa: E402,I001
from locust.env import Environment  # noqa: E402
from locust.runners import STATE_STOPPED  # noqa: E402

import argparse  # noqa: E402
import contextlib  # noqa: E402
import ipaddress  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import gevent  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import UsageError, check_json_path, make_json_folder, parse_number  # noqa: E402
from _cgroup import CgroupError  # noqa: E402
from _locust import CpuSampler, Recorder, interrupt_on_signals, make_user, run_fixed_rate  # noqa: E402
from _serving import (  # noqa: E402
    REPO, RunningServer, ServingError, build_model, greenkfp_server, infer_payload, process_cpu_s,
    wait_ready)

SCHEMA = "greenkfp.loadtest/v1"



def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from greenkfp.pipelines.cli import _Parser  # greenkfp's parser: a usage error is one line

    p = _Parser(prog="loadtest_serving.py", description=__doc__.split("\n\n")[0],
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="test a server already running on loopback (http://127.0.0.1:PORT) "
                                 "instead of starting greenkfp serve")
    p.add_argument("--server-pid", help="with --url: the server's process id, to count its CPU seconds")
    p.add_argument("--model", help="the ONNX model greenkfp serve serves (default: the flagship's default model, "
                                   "int8, built and cached in build/serving-model)")
    p.add_argument("--name", default="digits", help="the model's name in the URLs (default: digits)")
    p.add_argument("--serve-option", action="append", default=[], metavar="OPTION",
                   help="an option passed on to greenkfp serve, e.g. --serve-option=--max-batch-size=1 (repeatable)")
    p.add_argument("--rows", default="1", help="rows per request (default: 1)")
    p.add_argument("--duration", default="180", help="seconds of the compressed day (default: 180; 5 to 3600)")
    p.add_argument("--peak-rps", default="200", help="offered requests per second at the evening spike (default: 200)")
    p.add_argument("--user-rps", default="5", help="requests per second each simulated user offers (default: 5)")
    p.add_argument("--max-users", default="200", help="most simulated users (default: 200; at most 1000)")
    p.add_argument("--max-requests", default="200000",
                   help="stop the day after this many requests (default: 200000)")
    p.add_argument("--sla-ms", default="50", help="the p95 latency SLA, milliseconds (default: 50)")
    p.add_argument("--start-rps", default="50", help="the capacity search's first rate, req/s (default: 50)")
    p.add_argument("--max-rps", default="3000", help="the capacity search's highest rate, req/s (default: 3000)")
    p.add_argument("--probe-seconds", default="6", help="seconds each capacity probe measures (default: 6)")
    p.add_argument("--max-probes", default="10", help="most capacity probes (default: 10; 0: no capacity search)")
    p.add_argument("--confirm", default="0",
                   help="further probes the capacity found must pass, each, or the next lower passing rate is "
                        "tried (default: 0; the built-in replica profile was measured with 2)")
    p.add_argument("--cpu-limit-m", metavar="N",
                   help="run the server under a CPU limit of N millicores (a CFS quota, as a pod's limits.cpu)")
    p.add_argument("--json", metavar="PATH", help="write the figures as JSON to PATH")
    args = p.parse_args(argv)
    if args.json is not None:  # checked now, not after the run
        args.json = check_json_path(args.json)
    args.rows = parse_number(args.rows, "--rows", 1, 1024, whole=True)
    args.duration = parse_number(args.duration, "--duration", 5, 3600)
    args.peak_rps = parse_number(args.peak_rps, "--peak-rps", 0.1, 10000)
    args.user_rps = parse_number(args.user_rps, "--user-rps", 0.1, 100)
    args.max_users = parse_number(args.max_users, "--max-users", 1, 1000, whole=True)
    args.max_requests = parse_number(args.max_requests, "--max-requests", 1, 10_000_000, whole=True)
    args.sla_ms = parse_number(args.sla_ms, "--sla-ms", 0.1, 60000)
    args.start_rps = parse_number(args.start_rps, "--start-rps", 0.1, 10000)
    args.max_rps = parse_number(args.max_rps, "--max-rps", 0.1, 10000)
    args.probe_seconds = parse_number(args.probe_seconds, "--probe-seconds", 1, 600)
    args.max_probes = parse_number(args.max_probes, "--max-probes", 0, 50, whole=True)
    args.confirm = parse_number(args.confirm, "--confirm", 0, 10, whole=True)
    if args.confirm and not args.max_probes:
        raise UsageError(f"--confirm {args.confirm:g} confirms a capacity search, but --max-probes 0 runs none")
    if args.start_rps > args.max_rps:
        raise UsageError(f"--start-rps {args.start_rps:g} must not exceed --max-rps {args.max_rps:g}")
    if math.ceil(args.peak_rps / args.user_rps - 1e-9) > args.max_users:
        raise UsageError(f"--peak-rps {args.peak_rps:g} at --user-rps {args.user_rps:g} needs "
                         f"{math.ceil(args.peak_rps / args.user_rps)} users, more than --max-users {args.max_users}")
    if args.url is not None:
        parts = urlsplit(args.url)
        try:
            loopback = parts.scheme == "http" and ipaddress.ip_address(parts.hostname or "").is_loopback
        except ValueError:
            loopback = parts.hostname == "localhost"
        if not loopback or not parts.port:
            raise UsageError(f"--url must be http://127.0.0.1:PORT (load goes to loopback only), got {args.url!r}")
        if args.model is not None or args.serve_option:
            raise UsageError("--url tests a running server: --model and --serve-option start one, give one or the other")
    if args.server_pid is not None:
        if args.url is None:
            raise UsageError("--server-pid goes with --url (the script knows the pid of a server it starts)")
        args.server_pid = parse_number(args.server_pid, "--server-pid", 1, 2 ** 31, whole=True)
        import psutil

        if not psutil.pid_exists(args.server_pid):
            raise UsageError(f"--server-pid {args.server_pid}: no such process")
    if args.model is not None and not Path(args.model).is_file():
        raise UsageError(f"--model {args.model!r}: no such file")
    if args.cpu_limit_m is not None:
        args.cpu_limit_m = parse_number(args.cpu_limit_m, "--cpu-limit-m", 10, 64000, whole=True)
        if args.url is not None:
            raise UsageError("--cpu-limit-m limits a server the script starts: not with --url")
        from _cgroup import CgroupError, locate

        try:
            locate()
        except CgroupError as exc:
            raise UsageError(f"--cpu-limit-m {args.cpu_limit_m}: {exc}") from None
    return args


# --------------------------------------------------------------------------- the day and the probes
def run_day(server: RunningServer, body: bytes, args) -> dict:
    from greenkfp.components.serving.loadtest import cpu_between, latency_summary, plan_day, stage_at, stage_stats

    plan = plan_day(args.duration, args.peak_rps, args.user_rps, max_users=args.max_users)

    class DayShape(LoadTestShape):
        def tick(self):
            stage = stage_at(plan, self.get_run_time())
            return None if stage is None else (stage.users, stage.spawn_rate)

    environment = Environment(user_classes=[make_user(server, body, args.user_rps)], shape_class=DayShape(),
                              events=events)
    runner = environment.create_local_runner()
    recorder = Recorder(environment, args.max_requests)
    try:
        with CpuSampler(server.pid, recorder.t0) as cpu:
            runner.start_shape()
            # the shape stops the runner at the duration (or the recorder at --max-requests); bounded
            # in time whatever happens, with a margin for the stop
            deadline = time.monotonic() + args.duration + 30
            gevent.sleep(1.0)
            while runner.state != STATE_STOPPED and time.monotonic() < deadline:
                gevent.sleep(0.1)
            runner.quit()
    finally:
        environment.events.request.remove_listener(recorder.on_request)
    samples = recorder.samples
    ok = [s for s in samples if s.ok]
    end = max(plan[-1].end_s, samples[-1].t if samples else 0.0)
    server_cpu = cpu_between(cpu.server, 0.0, min(end, cpu.server[-1][0])) if len(cpu.server) >= 2 else None
    return {
        "plan": [stage.__dict__ for stage in plan],
        "stages": stage_stats(plan, samples, cpu.server),
        "totals": {"requests": len(samples), "errors": len(samples) - len(ok),
                   "error_rate": (len(samples) - len(ok)) / len(samples) if samples else 0.0,
                   "throughput_rps": len(samples) / end if end else 0.0, **latency_summary([s.latency_s for s in ok]),
                   "server_cpu_s": server_cpu, "requests_per_cpu_s": len(ok) / server_cpu if server_cpu else None,
                   "client_cpu_s": cpu.client[-1][1] - cpu.client[0][1] if len(cpu.client) >= 2 else None,
                   "stopped_at_max_requests": recorder.capped},
    }


def run_probe(server: RunningServer, body: bytes, rate: float, args, warmup_s: float = 1.0, cpu: list | None = None):
    """One fixed-rate probe: ``rate`` offered for warm-up + ``--probe-seconds``; the window after
    the warm-up is measured. ``cpu``: the server's CPU seconds over the window are appended to it
    (None when unknown)."""
    from greenkfp.components.serving.loadtest import Probe

    marks: dict[str, float] = {}

    def mark(when: str) -> None:
        if server.pid is not None:
            with contextlib.suppress(Exception):
                marks[when] = process_cpu_s(server.pid)

    window = run_fixed_rate(server, body, rate, seconds=args.probe_seconds, warmup_s=warmup_s,
                            user_rps=args.user_rps, max_users=args.max_users, max_requests=args.max_requests,
                            on_window=mark)
    if cpu is not None:
        cpu.append(marks["end"] - marks["start"] if len(marks) == 2 else None)
    ok = [s.latency_s for s in window if s.ok]
    import numpy as np

    p95 = float(np.percentile(ok, 95)) if ok else None
    errors = len(window) - len(ok)
    return Probe(rate, len(window) / args.probe_seconds, p95, errors / len(window) if window else 0.0, len(window))


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except UsageError as exc:
        print(f"loadtest_serving.py: {exc}", file=sys.stderr)
        return 2
    logging.getLogger("locust").setLevel(logging.WARNING)
    interrupt_on_signals()
    from greenkfp.components.serving.loadtest import search_capacity

    started = time.monotonic()
    load_before = os.getloadavg()
    try:
        with contextlib.ExitStack() as stack:
            model_info = None
            if args.url:
                wait_ready(args.url.rstrip("/"), None, 10.0)
                import httpx

                try:
                    answer = httpx.get(f"{args.url.rstrip('/')}/v2/models/{args.name}", timeout=5)
                    answer.raise_for_status()
                    metadata = answer.json()
                    input_name = (metadata.get("inputs") or [{}])[0].get("name", "input-0")
                except (httpx.HTTPError, ValueError, AttributeError, IndexError, TypeError) as exc:
                    why = (f"HTTP {exc.response.status_code}" if isinstance(exc, httpx.HTTPStatusError)
                           else f"{type(exc).__name__}: {exc}")
                    raise ServingError(f"--url {args.url}: no metadata of model {args.name!r} "
                                       f"(/v2/models/{args.name}): {why}") from exc
                server = RunningServer(args.url.rstrip("/"), None, args.name, input_name, "external",
                                       pid=args.server_pid)
            else:
                model = args.model
                if model is None:
                    model_info = build_model(REPO / "build" / "serving-model")
                    model = str(Path(model_info["dir"]) / model_info["files"]["int8_dynamic"])
                server = stack.enter_context(greenkfp_server(model, args.name, options=args.serve_option,
                                                             cpu_limit_m=args.cpu_limit_m))
            rows = (model_info or {}).get("rows")
            if rows is None:
                rows = _rows_from_metadata(server)
            body = infer_payload([rows[i % len(rows)] for i in range(args.rows)], server.input_name)
            print(f"day: {args.duration:g} s peaking at {args.peak_rps:g} req/s against {server.url} "
                  f"({server.kind}" + (f", CPU limit {args.cpu_limit_m} m" if args.cpu_limit_m else "") + ")",
                  file=sys.stderr)
            day = run_day(server, body, args)
            if server.cgroup is not None:
                day["totals"]["cpu_throttling"] = server.cgroup.stats()
            if day["totals"]["requests"] == 0:
                raise ServingError("the server answered no request during the day")
            capacity = None
            if args.max_probes:
                print(f"capacity: probes from {args.start_rps:g} req/s, SLA p95 < {args.sla_ms:g} ms", file=sys.stderr)
                probe_cpu: list = []
                capacity = search_capacity(lambda rate: run_probe(server, body, rate, args, cpu=probe_cpu),
                                           sla_s=args.sla_ms / 1000, start_rps=args.start_rps, max_rps=args.max_rps,
                                           max_probes=args.max_probes, confirm=int(args.confirm)).to_dict()
                # each probe's server CPU over its window: the cost per request at that rate
                # (batching makes it fall with the rate, so the day's mean is not the cost at capacity)
                for probe, cpu_s in zip(capacity["probes"], probe_cpu):
                    probe["server_cpu_s"] = cpu_s
                    probe["requests_per_cpu_s"] = (probe["requests"] * (1 - probe["error_rate"]) / cpu_s
                                                   if cpu_s else None)
    except (ServingError, CgroupError) as exc:
        print(f"loadtest_serving.py: {' '.join(str(exc).split())[:600]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("loadtest_serving.py: interrupted; the server stopped", file=sys.stderr)
        return 130
    report = {
        "schema": SCHEMA, "measured": True,
        "units": {"latency": "ms (p50_ms, p95_ms, p99_ms, max_ms; capacity probes: p95_s in seconds)",
                  "rates": "requests per second", "cpu": "CPU seconds (user + system), psutil"},
        "server": {"url": server.url, "kind": server.kind, "pid_measured": server.pid, "command": server.command,
                   "model": model_info and {k: model_info[k] for k in ("candidate", "dataset", "parity", "sklearn")}},
        "settings": {"duration_s": args.duration, "peak_rps": args.peak_rps, "user_rps": args.user_rps,
                     "max_users": args.max_users, "max_requests": args.max_requests, "rows_per_request": args.rows,
                     "sla_p95_ms": args.sla_ms, "probe_seconds": args.probe_seconds, "max_probes": args.max_probes,
                     "confirm": args.confirm,
                     "cpu_limit_m": args.cpu_limit_m, "cpu_period_us": 100_000 if args.cpu_limit_m else None},
        "machine": {"cpus": os.cpu_count(), "load_average_before": list(load_before),
                    "load_average_after": list(os.getloadavg())},
        **day, "capacity": capacity, "wall_s": time.monotonic() - started,
    }
    print_report(report)
    if args.json:
        created = make_json_folder(args.json)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"Figures written to {args.json}{created}")
    return 0


def _rows_from_metadata(server: RunningServer) -> list[list[float]]:
    """Rows of zeros of the model's feature count (a server given by --url, a model given by --model)."""
    import httpx

    try:
        metadata = httpx.get(f"{server.url}/v2/models/{server.model}", timeout=5).json()
        shape = (metadata.get("inputs") or [{}])[0].get("shape") or [-1, 64]
        features = int(shape[-1]) if int(shape[-1]) > 0 else 64
    except (httpx.HTTPError, ValueError, AttributeError, IndexError, TypeError) as exc:
        raise ServingError(f"no input shape in the metadata of model {server.model!r}: {exc}") from exc
    return [[0.0] * features]


def print_report(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    def f(value, spec=".1f"):
        return "-" if value is None else format(value, spec)

    table = Table(title=f"Day, compressed into {report['settings']['duration_s']:g} s (measured)")
    for column in ("stage", "day", "users", "offered req/s", "req/s", "errors", "p50 ms", "p95 ms", "p99 ms",
                   "server CPU s", "req/CPU-s"):
        table.add_column(column, justify="left" if column in ("stage", "day") else "right")
    for s in report["stages"]:
        table.add_row(s["stage"], s["hours"], str(s["users"]), f(s["offered_rps"]), f(s["throughput_rps"]),
                      f"{s['error_rate']:.2%}", f(s["p50_ms"]), f(s["p95_ms"]), f(s["p99_ms"]),
                      f(s["server_cpu_s"], ".2f"), f(s["requests_per_cpu_s"], ".0f"))
    console = Console(width=max(Console().width, 130))
    console.print(table)
    capacity = report["capacity"]
    if capacity:
        for probe in capacity["probes"]:
            console.print(f"  probe {probe['offered_rps']:7.1f} req/s: answered {probe['achieved_rps']:7.1f}, "
                          f"p95 {f(probe['p95_s'] and probe['p95_s'] * 1000)} ms, errors {probe['error_rate']:.2%} "
                          f"-> {'pass' if probe['passed'] else 'fail: ' + probe['reason']}")
        cap = capacity["capacity_rps"]
        console.print(f"Capacity of one replica at p95 < {capacity['sla_p95_s'] * 1000:g} ms (measured): "
                      + (("none, " + capacity["reason"] if capacity.get("reason") else "below the first probe")
                         if cap is None else f"{cap:.0f} req/s"
                         + (f" (passed {capacity['criteria'].get('confirm', 0) + 1} probes)" if capacity.get("confirmed") else ""))
                      + ("" if capacity["failed_above_rps"] is None else
                         f" (failed at {capacity['failed_above_rps']:.0f} req/s)"))


if __name__ == "__main__":
    sys.exit(main())
