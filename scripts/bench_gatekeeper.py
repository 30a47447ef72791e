"""Benchmark the carbon-budget gatekeeper's admission endpoint: admissions per second, latency,
and whether concurrent admissions ever overspend a budget.

What it measures
----------------
``greenkfp gatekeeper serve`` runs in its own process(es) on 127.0.0.1 (``--workers``, ``--threads``), on a
budget ledger in SQLite (a file in a temporary folder) and in PostgreSQL (a throwaway server
started with initdb and pg_ctl, see ``_postgres.py``). The policy is the bundled Rego file,
evaluated in-process. The client is this process: ``--clients`` (50) concurrent httpx async
clients on loopback, each posting ``POST /apis/greenkfp/v1/admissions`` with a new run id and an
``energy_kwh`` between 0.005 and 0.02 kWh, for ten teams. Two phases per ledger:

* **saturation** (closed loop): every client sends its next request as soon as the last one is
  answered, for ``--seconds``: the most admissions per second the service sustains. With 50
  clients always waiting, latency here is mostly queueing (Little's law: 50 / throughput);
* **offered load** (open loop): requests are sent on a fixed schedule of ``--rate`` (200) per
  second, spread over the 50 clients; latency is counted from each request's *scheduled* time,
  so a server that falls behind is charged for the queue it builds (no coordinated omission).

Half of the teams have a hard budget, half a soft one with a 10 % overdraft. Each phase spends
its own teams' budgets for this month (a run is charged to the month it starts), sized so that
about half of that phase's requests are refused by its end: both answers are exercised in both
phases. After each ledger, the **overspend count** is the number of (team, month) budgets whose
granted grams (as answered to the clients, and as the ledger's own status says) exceed the limit
plus the overdraft: it must be 0.

The goal (issue 12): at least 200 admissions/s and p99 under 50 ms with PostgreSQL on a 2-core
machine. Both phases are reported; the goal is checked on the offered-load phase (at the goal's
rate) and on the saturation throughput.

Usage: python scripts/bench_gatekeeper.py [--seconds 15] [--clients 50] [--rate 200]
       [--workers 2] [--threads 0] [--ledgers sqlite postgresql] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack, contextmanager
from pathlib import Path

from _bench import (add_json_option, cpu_model, load_average, print_error, stop_process_group, wide_console,
                    write_figures)
from _postgres import PostgresUnavailable, free_port, postgres_server

TEAMS = [f"team-{i}" for i in range(10)]
#: Each phase spends its own teams' budgets of this month (a run is charged to the month it starts).
PHASES = ("warm", "saturation", "offered")


def teams_of(phase: str) -> list[str]:
    return [f"{phase}-{team}" for team in TEAMS]


ADMIN_TOKEN = "bench-admin-" + uuid.uuid4().hex
PERIOD = time.strftime("%Y-%m", time.gmtime())
ADMISSIONS = "/apis/greenkfp/v1/admissions"
#: The goal of issue 12, with PostgreSQL on this machine.
GOAL_RATE, GOAL_P99_MS = 200.0, 50.0


def team_tokens() -> dict[str, str]:
    return {team: f"bench-{team}-{uuid.uuid4().hex}" for phase in PHASES for team in teams_of(phase)}


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of process ``pid`` and its children (0 when unknown)."""
    import psutil

    if pid is None:
        return 0.0
    try:
        root = psutil.Process(pid)
        total = 0.0
        for process in (root, *root.children(recursive=True)):
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
        return total
    except psutil.Error:
        return 0.0


@contextmanager
def gatekeeper_process(ledger_url: str, tokens: dict[str, str], workers: int, log_path: Path, threads: int = 0):
    """``greenkfp gatekeeper serve`` in a subprocess on a free port; yields its base URL and pid."""
    import httpx

    from greenkfp.components.governance.ledger import Ledger

    Ledger(ledger_url).close()  # serve opens an existing ledger only (the platform lead creates it)
    port = free_port()
    env = {**os.environ, "GREENKFP_GATEKEEPER_TOKENS": ",".join(f"{t}={k}" for t, k in tokens.items()),
           "GREENKFP_GATEKEEPER_ADMIN_TOKEN": ADMIN_TOKEN}
    command = [sys.executable, "-m", "greenkfp.pipelines.cli", "gatekeeper", "serve", "--ledger", ledger_url,
               "--kfp-url", "http://127.0.0.1:9", "--port", str(port), "--workers", str(workers),
               "--threads", str(threads),
               "--log-level", "warning", "--no-access-log"]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"the gatekeeper exited with {process.returncode}: {log_path.read_text()[-2000:]}")
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the gatekeeper did not start within 60 s: {log_path.read_text()[-2000:]}")
                time.sleep(0.1)
            yield url, process.pid
        finally:
            stop_process_group(process, timeout_s=20)


def set_budgets(url: str, expected_requests: int, phase: str) -> dict[str, dict]:
    """This month's limits of ``phase``'s teams, sized so that about half of ``expected_requests`` are granted."""
    period = PERIOD
    import httpx

    mean_g = 0.0125 * 162.7  # the mean energy_kwh x GB's annual average (the embedded data's)
    limit = max(expected_requests / len(TEAMS) / 2, 5) * mean_g
    budgets = {}
    for i, team in enumerate(teams_of(phase)):
        soft = i % 2 == 1
        body = {"limit_g": round(limit, 3), "tier": "soft" if soft else "hard", "overdraft_percent": 10.0 if soft else 0.0}
        response = httpx.put(f"{url}/apis/greenkfp/v1/budgets/{team}/{period}", json=body,
                             headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)
        response.raise_for_status()
        budgets[team] = response.json()["budget"]
    return budgets


async def _admit(client, url: str, token: str, rng: random.Random) -> tuple[float, dict]:
    body = {"pipeline": "bench", "run_id": uuid.uuid4().hex, "energy_kwh": round(rng.uniform(0.005, 0.02), 6)}
    response = await client.post(url + ADMISSIONS, json=body, headers={"Authorization": f"Bearer {token}"})
    if response.status_code not in (200, 403) or "granted" not in response.json():
        raise RuntimeError(f"admission answered HTTP {response.status_code}: {response.text[:300]}")
    return time.perf_counter(), response.json()


async def run_phase(url: str, tokens: dict[str, str], clients: int, seconds: float, rate: float | None,
                    seed: int, pids: dict[str, int | None] | None = None, phase: str = "warm") -> dict:
    """One phase: closed loop (``rate`` None) or open loop at ``rate`` per second; with ``pids``
    (``{"gatekeeper": pid, "postgresql": pid}``), the CPU each spent per admission."""
    import httpx

    latencies: list[float] = []
    answers: list[dict] = []
    # one client (and connection) each, as 50 separate clients would be; one shared AsyncClient
    # with a 50-connection pool costs httpx several times the CPU per request
    async with contextlib.AsyncExitStack() as stack:
        pool = [await stack.enter_async_context(httpx.AsyncClient(timeout=httpx.Timeout(60.0))) for _ in range(clients)]
        cpu_before = {name: cpu_seconds(pid) for name, pid in (pids or {}).items()}
        client_before = time.process_time()
        start = time.perf_counter()
        stop = start + seconds

        async def closed(i: int) -> None:
            client, rng, token = pool[i], random.Random(seed + i), tokens[teams_of(phase)[i % len(TEAMS)]]
            while time.perf_counter() < stop:
                sent = time.perf_counter()
                done, answer = await _admit(client, url, token, rng)
                latencies.append(done - sent)
                answers.append(answer)

        async def opened(i: int) -> None:
            client, rng, token = pool[i], random.Random(seed + i), tokens[teams_of(phase)[i % len(TEAMS)]]
            k = 0
            while True:
                scheduled = start + (k * clients + i) / rate
                if scheduled >= stop:
                    return
                k += 1
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                done, answer = await _admit(client, url, token, rng)
                latencies.append(done - scheduled)
                answers.append(answer)

        await asyncio.gather(*((closed if rate is None else opened)(i) for i in range(clients)))
        elapsed = time.perf_counter() - start
        cpu_ms = {name: 1e3 * (cpu_seconds(pid) - cpu_before[name]) / len(latencies) for name, pid in (pids or {}).items()}
        cpu_ms["client"] = 1e3 * (time.process_time() - client_before) / len(latencies)
    latencies.sort()

    def pct(q: float) -> float:
        return 1e3 * latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    return {"mode": "closed loop" if rate is None else f"open loop at {rate:g}/s", "clients": clients,
            "seconds": round(elapsed, 2), "admissions": len(latencies), "per_second": len(latencies) / elapsed,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": 1e3 * latencies[-1],
            "mean_ms": 1e3 * sum(latencies) / len(latencies),
            "granted": sum(a["granted"] for a in answers), "refused": sum(not a["granted"] for a in answers),
            "cpu_ms_per_admission": cpu_ms, "_answers": answers}


def overspend(url: str, budgets: dict[str, dict], answers: list[dict], phase: str) -> dict:
    """``phase``'s teams whose granted grams exceed limit + overdraft: by the clients' answers and by the ledger."""
    import httpx

    period = PERIOD
    granted: dict[str, float] = {team: 0.0 for team in teams_of(phase)}
    for answer in answers:
        if answer["granted"] and not answer["replayed"]:
            granted[answer["team"]] += answer["reserved_g"]
    teams = {}
    for team, budget in budgets.items():
        status = httpx.get(f"{url}/apis/greenkfp/v1/budgets/{team}/{period}",
                           headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30).json()
        cap = budget["limit_g"] + budget["overdraft_g"]
        teams[team] = {"tier": budget["tier"], "cap_g": cap, "granted_g": granted[team],
                       "ledger_spent_g": status["reserved_g"] + status["settled_g"]}
    tolerance = 1e-6
    over = [t for t, v in teams.items() if max(v["granted_g"], v["ledger_spent_g"]) > v["cap_g"] + tolerance]
    return {"count": len(over), "teams": teams, "consistent": all(
        abs(v["granted_g"] - v["ledger_spent_g"]) <= 1e-6 * max(1.0, v["cap_g"]) for v in teams.values())}


def bench_ledger(name: str, ledger_url: str, args, folder: Path, postgres_pid: int | None = None) -> dict:
    tokens = team_tokens()
    with gatekeeper_process(ledger_url, tokens, args.workers, folder / f"gatekeeper-{name}.log",
                            args.threads) as (url, pid):
        pids = {"gatekeeper": pid, **({"postgresql": postgres_pid} if postgres_pid else {})}
        # each phase on its own teams' budgets, sized so that about half of its requests are granted
        # (the saturation phase's guessed at 1.5 x the offered rate, its warm-up included)
        budgets = {"warm": set_budgets(url, int(2.0 * args.rate * 1.5), "warm"),
                   "saturation": set_budgets(url, int(args.seconds * args.rate * 1.5), "saturation"),
                   "offered": set_budgets(url, int(args.seconds * args.rate), "offered")}
        warm_up = asyncio.run(run_phase(url, tokens, args.clients, 2.0, None, seed=1))  # connections, pools, caches
        gc.collect()  # the client's own collector pauses would be counted as the gatekeeper's latency
        gc.freeze()
        saturation = asyncio.run(run_phase(url, tokens, args.clients, args.seconds, None, seed=100, pids=pids,
                                           phase="saturation"))
        offered = asyncio.run(run_phase(url, tokens, args.clients, args.seconds, args.rate, seed=200, pids=pids,
                                        phase="offered"))
        checks = [overspend(url, budgets[phase], result.pop("_answers"), phase)
                  for phase, result in (("warm", warm_up), ("saturation", saturation), ("offered", offered))]
        check = {"count": sum(c["count"] for c in checks), "consistent": all(c["consistent"] for c in checks),
                 "teams": {phase: c["teams"] for phase, c in zip(budgets, checks)}}
    return {"ledger": name, "saturation": saturation, "offered": offered, "overspend": check}


def render(console, report: dict) -> None:
    from rich.table import Table

    console.rule(f"[bold]gatekeeper admissions: {report['clients']} clients, {report['workers']} worker process(es), "
                  f"--threads {report['threads']}, "
                 f"{report['seconds']:g} s per phase")
    console.print(f"{report['cpu']} ({report['cores']} cores), load before {report['load_before']}")
    table = Table()
    for column in ("ledger", "phase", "admissions/s", "p50 ms", "p99 ms", "max ms", "granted", "refused",
                   "CPU ms: gk + db + client"):
        table.add_column(column, justify="left" if column in ("ledger", "phase") else "right")
    for result in report["results"]:
        for phase in ("saturation", "offered"):
            p = result[phase]
            cpu = p["cpu_ms_per_admission"]
            table.add_row(result["ledger"], p["mode"], f"{p['per_second']:.1f}", f"{p['p50_ms']:.1f}",
                          f"{p['p99_ms']:.1f}", f"{p['max_ms']:.1f}", str(p["granted"]), str(p["refused"]),
                          f"{cpu['gatekeeper']:.2f} + {cpu.get('postgresql', 0.0):.2f} + {cpu['client']:.2f}")
    console.print(table)
    console.print(f"[dim]CPU milliseconds per admission of the gatekeeper's processes (gk; SQLite's work is in them), "
                  f"PostgreSQL's and this client's: at most {report['cores']} x 1,000 / their sum admissions/s fit on "
                  "this machine, less what else runs on it.[/dim]")
    for result in report["results"]:
        check = result["overspend"]
        console.print(f"{result['ledger']}: overspend count {check['count']} (teams whose granted grams exceed "
                      f"limit + overdraft); client answers and ledger agree: {check['consistent']}")
    for line in report["goal"]:
        console.print(line)


def goal_lines(report: dict) -> list[str]:
    lines = []
    for result in report["results"]:
        if result["ledger"] != "postgresql":
            continue
        sat, off = result["saturation"], result["offered"]
        met = sat["per_second"] >= GOAL_RATE and off["per_second"] >= 0.98 * GOAL_RATE and off["p99_ms"] < GOAL_P99_MS
        lines.append(f"Goal (PostgreSQL: >= {GOAL_RATE:g} admissions/s, p99 < {GOAL_P99_MS:g} ms): "
                     f"{'met' if met else 'NOT met'}: saturation {sat['per_second']:.0f}/s; at {report['rate']:g}/s "
                     f"offered, {off['per_second']:.0f}/s served with p99 {off['p99_ms']:.1f} ms.")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each phase (default: 15)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default: 50)")
    parser.add_argument("--rate", type=float, default=GOAL_RATE, help="offered admissions/s of the open-loop phase")
    parser.add_argument("--workers", type=int, default=2, help="gatekeeper worker processes (default: 2)")
    parser.add_argument("--threads", type=int, default=0,
                        help="the gatekeeper's --threads per worker (default: 0, its calls on the event loop)")
    parser.add_argument("--ledgers", nargs="+", default=["sqlite", "postgresql"], choices=("sqlite", "postgresql"))
    add_json_option(parser)
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.clients < 1 or args.rate <= 0 or args.workers < 1 or args.threads < 0:
        parser.error("--seconds, --clients, --rate and --workers must be positive")
    console = wide_console(110)
    report = {"clients": args.clients, "workers": args.workers, "threads": args.threads, "seconds": args.seconds, "rate": args.rate,
              "cpu": cpu_model(), "cores": os.cpu_count(), "load_before": load_average(2), "results": []}
    try:
        with tempfile.TemporaryDirectory(prefix="greenkfp-bench-gk-") as tmp, ExitStack() as stack:
            folder = Path(tmp)
            for name in args.ledgers:
                server = None
                if name == "sqlite":
                    url = f"sqlite:///{folder / 'ledger.db'}"
                else:
                    server = stack.enter_context(postgres_server())
                    url = server.fresh_url()
                console.print(f"[dim]{name}: benchmarking ...[/dim]")
                report["results"].append(bench_ledger(name, url, args, folder, server.pid if server else None))
    except (PostgresUnavailable, RuntimeError) as exc:
        print_error("bench_gatekeeper", exc)
        return 1
    report["goal"] = goal_lines(report)
    render(console, report)
    write_figures(args.json, report, console)
    return 1 if any(r["overspend"]["count"] for r in report["results"]) else 0


if __name__ == "__main__":
    sys.exit(main())
