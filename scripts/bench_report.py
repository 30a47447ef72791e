"""Benchmark the quarterly report on a 100,000-run ledger: how long ``greenkfp report quarterly``
takes to read the ledger, compute the figures and write the four files.

What it measures
----------------
A SQLite ledger in a temporary folder is seeded with the demo quarter
(``greenkfp.components.governance.demo.seed_quarter``: three teams, 2026Q4 and baseline months
before it, every run settled with its RunFacts, refusals, an exception and a transfer), in two
scenarios of ``--runs`` runs (default 100,000):

* **ledger**: ``--runs`` runs in the ledger, over three baseline months and the quarter (half of
  them in the quarter);
* **quarter**: ``--runs`` runs in the quarter itself (and a third as many in one baseline month
  before it): the report reads every one of them.

Each team has an expired, never-settled reservation every month of the quarter (the demo's "runs
that never reported back"), and the report is built as of 2027-01-15 whatever today's date, so the
figures do not depend on when the benchmark runs.

The baseline is the audit's (each team's settled grams per baseline month). Then, ``--repeats``
times, in this process:

* **figures**: ``quarterly_report`` on a freshly opened ledger: the budgets, refusals,
  exceptions and transfers, and one pass over the quarter's settled runs and their facts;
* **render and write**: the HTML page (three matplotlib SVG plots), JSON, CSV and Markdown,
  written atomically into a temporary folder;
* **total**: both, what the command does after parsing its options (goal: under 10 s).

Times are wall-clock seconds (``time.perf_counter``), the best and the median of the repeats; the
first repeat pays for imports (matplotlib) and is reported apart. Seeding the ledger is timed
too but is not part of the goal. The load average is printed before and after (a busy machine
slows everything).

Usage: python scripts/bench_report.py [--runs 100000] [--repeats 3] [--scenarios ledger quarter] [--json PATH]
Exit code 0 when the goal is met, 1 when not.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from _bench import add_json_option, cpu_model, load_average, print_error, wide_console, write_figures

QUARTER = "2026Q4"
#: The report's time, whatever today's date: after the quarter, so every reservation the demo left
#: unsettled (one run a team a month never reported back) has expired and the report reads them,
#: as it does on a real ledger.
AS_OF = datetime(2027, 1, 15, tzinfo=timezone.utc)
GOAL_RUNS, GOAL_S = 100_000, 10.0
BASELINE_MONTHS = 3


def baseline_of(ledger, summary):
    """The audit's baseline of the seeded ledger: each team's settled grams per baseline month."""
    from greenkfp.components.governance.demo import DEMO_TEAMS
    from greenkfp.components.records import AuditBaseline

    months = list(summary.baseline_months)
    monthly = {team: dict.fromkeys(months, 0.0) for team in DEMO_TEAMS}
    runs = dict.fromkeys(DEMO_TEAMS, 0)
    for run in ledger.settled_runs(since=months[0], until=months[-1]):
        monthly[run.team][run.period] += run.actual_g
        runs[run.team] += 1
    last = months[-1]
    by = f"{int(last[:4]) + 1}-{last[5:]}"
    return AuditBaseline.from_dict({
        "schema": AuditBaseline.SCHEMA, "generated_at": "2026-10-01T00:00:00+00:00", "months": months,
        "teams": {team: {"tier": DEMO_TEAMS[team][0], "monthly_g": monthly[team],
                         "mean_monthly_g": sum(monthly[team].values()) / len(months), "runs": runs[team]}
                  for team in DEMO_TEAMS},
        "target": {"reduction_percent": 30.0, "by": by}, "sources": {"ledger": ledger.url}})


#: scenario -> (months of baseline, runs a month for --runs runs; the demo's floor is applied in run())
SCENARIOS = {"ledger": (BASELINE_MONTHS, lambda runs: runs // (BASELINE_MONTHS + 3)),
             "quarter": (1, lambda runs: -(-runs // 3))}


def run(scenario: str, runs: int, repeats: int) -> dict:
    from greenkfp.components.governance import Ledger
    from greenkfp.components.governance.demo import MIN_RUNS_PER_MONTH, seed_quarter

    baseline_months = SCENARIOS[scenario][0]
    per_month = max(MIN_RUNS_PER_MONTH, SCENARIOS[scenario][1](runs))
    load_before = load_average(2)
    with tempfile.TemporaryDirectory(prefix="greenkfp-bench-report-") as folder:
        url = f"sqlite:///{Path(folder) / 'ledger.db'}"
        t0 = time.perf_counter()
        with Ledger(url) as ledger:
            summary = seed_quarter(ledger, QUARTER, runs_per_month=per_month, seed=0, baseline_months=baseline_months,
                                   now=AS_OF)
            baseline = baseline_of(ledger, summary)
        seed_s = time.perf_counter() - t0
        figures_s, render_s, total_s, sizes, report = [], [], [], {}, None
        for repeat in range(repeats):
            from greenkfp.components.governance.quarterly import quarterly_report
            from greenkfp.components.governance.quarterly_render import write_report

            out = Path(folder) / f"report-{repeat}"
            t0 = time.perf_counter()
            with Ledger(url, clock=lambda: AS_OF) as ledger:
                report = quarterly_report(ledger, QUARTER, baseline, baseline_source="(computed from the ledger)",
                                          now=AS_OF)
            t1 = time.perf_counter()
            paths = write_report(report, out)
            t2 = time.perf_counter()
            figures_s.append(t1 - t0)
            render_s.append(t2 - t1)
            total_s.append(t2 - t0)
            sizes = {kind: path.stat().st_size for kind, path in paths.items()}
    warm = total_s[1:] or total_s
    best = min(warm)
    in_goal = summary.runs if scenario == "ledger" else report.sources.settled_runs
    return {
        "scenario": scenario, "runs_settled": summary.runs, "runs_in_quarter": report.sources.settled_runs,
        "runs_with_facts": report.sources.runs_with_facts, "refused": summary.refused, "seed_s": seed_s,
        "repeats": repeats,
        "first_total_s": total_s[0], "figures_s": {"best": min(figures_s[1:] or figures_s),
                                                   "median": statistics.median(figures_s[1:] or figures_s)},
        "render_s": {"best": min(render_s[1:] or render_s), "median": statistics.median(render_s[1:] or render_s)},
        "total_s": {"best": best, "median": statistics.median(warm)},
        "file_bytes": sizes, "emissions_kg": report.emissions_g / 1000,
        # A run smaller than the goal's size says nothing about the goal: "not measured", not "not met".
        "goal": {"runs": GOAL_RUNS, "seconds": GOAL_S, "measured": in_goal >= GOAL_RUNS * 0.99,
                 "met": in_goal >= GOAL_RUNS * 0.99 and max(total_s) <= GOAL_S},
        "load_average_before": load_before, "load_average_after": load_average(2), "cpu": cpu_model(),
    }


def verdict(goal: dict, figures: dict, scenario: str) -> str:
    if not goal["measured"]:
        runs = figures["runs_settled"] if scenario == "ledger" else figures["runs_in_quarter"]
        return f"not measured ({runs:,} runs, fewer than the goal's)"
    return "met" if goal["met"] else "NOT met"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=GOAL_RUNS, help="settled runs in the ledger, all months (100000)")
    parser.add_argument("--repeats", type=int, default=3, help="report builds to time (3; the first pays for imports)")
    parser.add_argument("--scenarios", nargs="+", choices=tuple(SCENARIOS), default=list(SCENARIOS),
                        help="ledger: --runs in the ledger; quarter: --runs in the quarter (default: both)")
    add_json_option(parser)
    args = parser.parse_args(argv)
    if args.runs < 6 or args.repeats < 1:
        parser.error("--runs must be >= 6 and --repeats >= 1")
    console = wide_console(100)
    from rich.table import Table

    results = {}
    for scenario in args.scenarios:
        try:
            figures = results[scenario] = run(scenario, args.runs, args.repeats)
        except Exception as exc:  # noqa: BLE001 - a benchmark says what failed and exits 1
            print_error(f"bench_report ({scenario}) failed", exc)
            return 1
        table = Table(title=f"{scenario}: {figures['runs_settled']:,} settled runs in the ledger, "
                            f"{figures['runs_in_quarter']:,} of them in {QUARTER}", title_justify="left")
        table.add_column("phase")
        table.add_column("best", justify="right")
        table.add_column("median", justify="right")
        for label, key in (("figures (read the ledger, compute)", "figures_s"),
                           ("render and write 4 files", "render_s"), ("total", "total_s")):
            table.add_row(label, f"{figures[key]['best']:.2f} s", f"{figures[key]['median']:.2f} s")
        console.print(table)
        console.print(f"first build (imports included): {figures['first_total_s']:.2f} s; seeding the ledger: "
                      f"{figures['seed_s']:.1f} s (not part of the goal)")
        console.print("files: " + ", ".join(f"{kind} {size / 1024:,.0f} KiB"
                                            for kind, size in figures["file_bytes"].items()))
        console.print(f"load average before {figures['load_average_before']}, after "
                      f"{figures['load_average_after']} ({figures['cpu']})")
        goal = figures["goal"]
        console.print(f"goal: {goal['runs']:,} runs in the {scenario} in under {goal['seconds']:g} s (every build, "
                      f"the first included): [bold]{verdict(goal, figures, scenario)}[/]\n")
    write_figures(args.json, results, console)
    return 0 if all(f["goal"]["met"] for f in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
