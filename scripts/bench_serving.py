"""Benchmark serving: requests per CPU-second and p95 latency at a fixed offered load, for
``greenkfp serve`` (int8, batching), the same without batching, and MLServer.

Goal (from the issue)
---------------------
(a) ``greenkfp serve`` with the int8 variant and micro-batching serves at least 2x the requests
per CPU-second of (c) MLServer at the same SLA (p95 under ``--sla-ms``, default 50 ms).

Configurations (all on 127.0.0.1, one process each, started once and measured in turn)
-------------------------------------------------------------------------------------
(a) ``greenkfp serve --model int8_dynamic.onnx --max-batch-size 32 --max-batch-delay-ms 5 --threads 1``
(b) the same with ``--max-batch-size 1`` (no batching)
(c) MLServer 1.7.1 with mlserver-sklearn 1.7.1 (``mlserver_sklearn.SKLearnModel``) serving the
    same scikit-learn estimator (joblib), in its own virtual environment that this script creates
    (``.venv-mlserver/``: ``mlserver==1.7.1 mlserver-sklearn==1.7.1 uvloop<0.22`` and our
    scikit-learn version), ``parallel_workers`` from ``--mlserver-workers`` (default 0: inference
    in the server's process, MLServer's cheapest setting in CPU; N adds N worker processes, whose
    CPU is counted too), HTTP, gRPC and metrics ports on loopback; BLAS pinned to one thread.

The model: the flagship's default candidate ``mlp-wide`` (``MLPClassifier(512, 256)``) trained on
the embedded digits dataset (64 features, 10 classes), converted by the library
(``build_variants``: skl2onnx, then onnxruntime's dynamic int8 quantizer) and cached in
``build/serving-model``. Every request carries the same ``--rows`` test rows (default 1) as one
FP32 input of the Open Inference Protocol v2, to all three servers.

Load generator: open loop
-------------------------
An asyncio client (httpx, keep-alive connections) sends request i at t0 + i / rate whatever the
answers do (an open loop, as independent users arrive): a closed loop (Locust users waiting for
their answer) would slow down with a slow server and hide its queueing ("coordinated
omission"), and then the servers would not see the same offered load. Latency is measured from
the request's scheduled time to its answer, so a late client counts against the latency too,
alike for all. At most ``--max-in-flight`` requests are outstanding; one that cannot be sent is
an error. The client is a separate process from the servers: its CPU is not counted.

Measurement
-----------
Server CPU = user + system CPU seconds of the server's process and its children (psutil),
measured over each window; requests per CPU-second = successful requests / that. Each
configuration is measured ``--repeats`` times, interleaved (the order rotates each round, so
drift in the shared machine's speed hits all alike), each after ``--warmup`` seconds of the same
load. Reported per configuration: the median and the range (min-max) over the repeats; a
configuration meets the SLA when its median p95 is under it with at most 1 % errors. Ratios
are given as the median ratio and the range [min(a)/max(c), max(a)/min(c)]: when that range
holds 1, the difference is inside the noise and is called no difference.

Usage: python scripts/bench_serving.py [--rate 150] [--seconds 8] [--repeats 3] [--rows 1] [--json PATH]
Exit codes: 0 the benchmark ran (whether or not the goal is met), 2 a bad option, 1 a server did not start.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import UsageError, cpu_model, load_average, json_path, parse_number, wide_console, write_figures  # noqa: E402
from _serving import (  # noqa: E402
    REPO, MLSERVER_PINS, ServingError, build_model, ensure_mlserver_venv, greenkfp_server, infer_payload,
    mlserver_server, process_cpu_s)

CONFIGS = {
    "a": "greenkfp serve, int8, batching (max 32 rows, 5 ms)",
    "b": "greenkfp serve, int8, no batching (max 1 row)",
    "c": "MLServer 1.7.1 + mlserver-sklearn (scikit-learn model)",
}
GREENKFP_OPTIONS = {"a": ["--max-batch-size", "32", "--max-batch-delay-ms", "5", "--threads", "1"],
                    "b": ["--max-batch-size", "1", "--threads", "1"]}



def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", default="150", help="offered requests per second, open loop (default: 150)")
    p.add_argument("--seconds", default="8", help="seconds measured per repeat (default: 8)")
    p.add_argument("--warmup", default="2", help="seconds of the same load before each measurement (default: 2)")
    p.add_argument("--repeats", default="3", help="measurements per configuration, interleaved (default: 3)")
    p.add_argument("--rows", default="1", help="rows per request (default: 1)")
    p.add_argument("--sla-ms", default="50", help="the p95 latency SLA, milliseconds (default: 50)")
    p.add_argument("--max-in-flight", default="256", help="most outstanding requests (default: 256)")
    p.add_argument("--mlserver-workers", default="0",
                   help="MLServer's parallel_workers (default: 0, inference in its main process)")
    p.add_argument("--configs", default="abc", help="which configurations to run, letters of a, b, c (default: abc)")
    p.add_argument("--json", type=json_path, metavar="PATH", help="also write every figure as JSON to PATH")
    args = p.parse_args(argv)
    args.rate = parse_number(args.rate, "--rate", 1, 5000)
    args.seconds = parse_number(args.seconds, "--seconds", 1, 600)
    args.warmup = parse_number(args.warmup, "--warmup", 0, 120)
    args.repeats = parse_number(args.repeats, "--repeats", 1, 20, whole=True)
    args.rows = parse_number(args.rows, "--rows", 1, 1024, whole=True)
    args.sla_ms = parse_number(args.sla_ms, "--sla-ms", 0.1, 60000)
    args.max_in_flight = parse_number(args.max_in_flight, "--max-in-flight", 1, 4096, whole=True)
    args.mlserver_workers = parse_number(args.mlserver_workers, "--mlserver-workers", 0, 16, whole=True)
    if not args.configs or set(args.configs) - set(CONFIGS) or len(set(args.configs)) != len(args.configs):
        raise UsageError(f"--configs must be distinct letters of a, b, c, got {args.configs!r}")
    if args.rate * (args.seconds + args.warmup) * args.repeats * len(args.configs) > 2_000_000:
        raise UsageError(f"--rate {args.rate:g} x (--seconds + --warmup) x --repeats x configurations is over "
                         "2,000,000 requests: lower one of them")
    return args


# --------------------------------------------------------------------------- the load
async def open_loop(url: str, body: bytes, rate: float, seconds: float, max_in_flight: int) -> list[tuple[float, bool]]:
    """Send ``rate x seconds`` requests at their scheduled times; ``(latency from the scheduled
    time, success)`` of each (a request that could not be sent: ``(nan, False)``)."""
    import httpx

    results: list[tuple[float, bool]] = []
    in_flight = 0
    limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(10.0),
                                 headers={"content-type": "application/json"}) as client:

        async def one(due: float) -> None:
            nonlocal in_flight
            try:
                answer = await client.post(url, content=body)
                results.append((time.perf_counter() - due, answer.status_code == 200))
            except httpx.HTTPError:
                results.append((time.perf_counter() - due, False))
            finally:
                in_flight -= 1

        tasks = []
        start = time.perf_counter() + 0.05
        for i in range(int(round(rate * seconds))):
            due = start + i / rate
            pause = due - time.perf_counter()
            if pause > 0:
                await asyncio.sleep(pause)
            if in_flight >= max_in_flight:
                results.append((math.nan, False))
                continue
            in_flight += 1
            tasks.append(asyncio.create_task(one(due)))
        await asyncio.gather(*tasks)
    return results


def measure(server, body: bytes, args) -> dict:
    """Warm up, then one measured window of the offered load on ``server``."""
    import numpy as np

    url = server.url + server.infer_path
    if args.warmup:
        asyncio.run(open_loop(url, body, args.rate, args.warmup, args.max_in_flight))
    cpu0, t0 = process_cpu_s(server.pid), time.perf_counter()
    results = asyncio.run(open_loop(url, body, args.rate, args.seconds, args.max_in_flight))
    wall, cpu = time.perf_counter() - t0, process_cpu_s(server.pid) - cpu0
    ok = [latency for latency, success in results if success]
    p50, p95, p99 = (float(x) * 1000 for x in np.percentile(ok, [50, 95, 99])) if ok else (None,) * 3
    return {"requests": len(results), "ok": len(ok), "errors": len(results) - len(ok), "wall_s": wall,
            "achieved_rps": len(ok) / wall, "server_cpu_s": cpu, "requests_per_cpu_s": len(ok) / cpu if cpu > 0 else None,
            "p50_ms": p50, "p95_ms": p95, "p99_ms": p99}


def summarize(runs: list[dict], sla_ms: float) -> dict:
    per_cpu = [r["requests_per_cpu_s"] for r in runs if r["requests_per_cpu_s"] is not None]
    p95 = [r["p95_ms"] for r in runs if r["p95_ms"] is not None]
    return {"requests_per_cpu_s": {"median": statistics.median(per_cpu), "min": min(per_cpu), "max": max(per_cpu)}
            if per_cpu else None,
            "p95_ms": {"median": statistics.median(p95), "min": min(p95), "max": max(p95)} if p95 else None,
            "error_rate": sum(r["errors"] for r in runs) / max(1, sum(r["requests"] for r in runs)),
            # the median over the repeats: one window disturbed by another job on the shared machine
            # does not decide it (the max is in p95_ms)
            "meets_sla": bool(p95) and statistics.median(p95) <= sla_ms
            and sum(r["errors"] for r in runs) <= 0.01 * max(1, sum(r["requests"] for r in runs))}


def ratio(top: dict, bottom: dict) -> dict | None:
    """top / bottom requests per CPU-second: median ratio and the range over the repeats."""
    if not top.get("requests_per_cpu_s") or not bottom.get("requests_per_cpu_s"):
        return None
    t, b = top["requests_per_cpu_s"], bottom["requests_per_cpu_s"]
    low, high = t["min"] / b["max"], t["max"] / b["min"]
    verdict = "no difference (inside the noise)" if low <= 1 <= high else ("higher" if low > 1 else "lower")
    return {"median": t["median"] / b["median"], "low": low, "high": high, "verdict": verdict}


def main(argv=None) -> int:
    try:
        args = parse_args(argv)
    except UsageError as exc:
        print(f"bench_serving.py: {exc}", file=sys.stderr)
        return 2
    console = wide_console(120)
    began = time.perf_counter()
    load_before = load_average(2)
    try:
        model = build_model(REPO / "build" / "serving-model")
        folder = Path(model["dir"])
        servers = {}
        import contextlib

        with contextlib.ExitStack() as stack:
            for key in args.configs:
                if key in GREENKFP_OPTIONS:
                    servers[key] = stack.enter_context(greenkfp_server(
                        folder / model["files"]["int8_dynamic"], "digits", options=GREENKFP_OPTIONS[key]))
                else:
                    executable = ensure_mlserver_venv()
                    servers[key] = stack.enter_context(mlserver_server(
                        folder / model["files"]["joblib"], "digits", executable=executable,
                        parallel_workers=args.mlserver_workers))
            rows = [model["rows"][i % len(model["rows"])] for i in range(args.rows)]
            runs: dict[str, list[dict]] = {key: [] for key in args.configs}
            order = list(args.configs)
            for round_ in range(args.repeats):
                for key in order[round_ % len(order):] + order[:round_ % len(order)]:
                    body = infer_payload(rows, servers[key].input_name)
                    result = measure(servers[key], body, args)
                    runs[key].append({"round": round_, **result})
                    console.print(f"round {round_ + 1}/{args.repeats} ({key}) {CONFIGS[key]}: "
                                  f"{result['requests_per_cpu_s'] or 0:.0f} req/CPU-s, p95 {result['p95_ms'] or 0:.1f} ms, "
                                  f"{result['errors']} errors")
    except ServingError as exc:
        print(f"bench_serving.py: {' '.join(str(exc).split())[:800]}", file=sys.stderr)
        return 1
    summary = {key: summarize(runs[key], args.sla_ms) for key in args.configs}
    ratios = {}
    for top, bottom in (("a", "c"), ("b", "c"), ("a", "b")):
        if top in summary and bottom in summary:
            ratios[f"{top}/{bottom}"] = ratio(summary[top], summary[bottom])
    goal = None
    if "a/c" in ratios and ratios["a/c"]:
        met = ratios["a/c"]["low"] >= 2 and summary["a"]["meets_sla"] and summary["c"]["meets_sla"]
        goal = {"text": "(a) serves >= 2x the requests per CPU-second of (c), both within the SLA", "met": met,
                "ratio_a_over_c": ratios["a/c"]}
    report = {
        "schema": "greenkfp.bench_serving/v1", "measured": True,
        "units": {"requests_per_cpu_s": "successful requests per server CPU-second (user + system, psutil)",
                  "latency": "ms, from each request's scheduled send time to its answer (open loop)"},
        "settings": {"offered_rps": args.rate, "seconds": args.seconds, "warmup_s": args.warmup, "repeats": args.repeats,
                     "rows_per_request": args.rows, "sla_p95_ms": args.sla_ms, "max_in_flight": args.max_in_flight,
                     "mlserver_parallel_workers": args.mlserver_workers, "mlserver_pins": list(MLSERVER_PINS)},
        "model": {k: model[k] for k in ("candidate", "estimator", "params", "dataset", "features", "parity", "sklearn")},
        "configs": {key: {"describe": CONFIGS[key], "command": servers[key].command, "runs": runs[key],
                          "summary": summary[key]} for key in args.configs},
        "ratios": ratios, "goal": goal,
        "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(), "load_average_before": load_before,
                    "load_average_after": load_average(2)},
        "wall_s": time.perf_counter() - began,
    }
    print_table(console, report)
    write_figures(args.json, report, console)
    return 0


def print_table(console, report: dict) -> None:
    from rich.table import Table

    s = report["settings"]
    table = Table(title=f"Serving at {s['offered_rps']:g} req/s offered (open loop), {s['rows_per_request']} row(s) "
                        f"per request, {s['repeats']} x {s['seconds']:g} s each, interleaved (measured)")
    for column in ("config", "req per CPU-s median", "min-max", "p95 ms median", "min-max", "errors", "SLA"):
        table.add_column(column, justify="left" if column == "config" else "right")
    for key, config in report["configs"].items():
        m = config["summary"]
        r, p = m["requests_per_cpu_s"], m["p95_ms"]
        table.add_row(f"({key}) {config['describe']}", f"{r['median']:.0f}" if r else "-",
                      f"{r['min']:.0f}-{r['max']:.0f}" if r else "-", f"{p['median']:.1f}" if p else "-",
                      f"{p['min']:.1f}-{p['max']:.1f}" if p else "-", f"{m['error_rate']:.2%}",
                      "met" if m["meets_sla"] else "missed")
    console.print(table)
    for name, value in report["ratios"].items():
        if value:
            console.print(f"{name} requests per CPU-second: {value['median']:.2f}x (range {value['low']:.2f}-"
                          f"{value['high']:.2f}): {value['verdict']}")
    if report["goal"]:
        console.print(f"Goal {report['goal']['text']}: {'MET' if report['goal']['met'] else 'NOT MET'}")
    console.print(f"Load average before/after: {report['machine']['load_average_before']} / "
                  f"{report['machine']['load_average_after']} ({report['machine']['cpus']} CPUs, shared)")


if __name__ == "__main__":
    sys.exit(main())
