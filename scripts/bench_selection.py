"""Benchmark ``pareto_front`` against paretoset on random 3-objective points, in the same run.

What it measures
----------------
For each size (default 10,000 and 100,000 points), seeded uniform random points in 3
objectives (maximise the first, minimise the others, as accuracy, latency p95 and SCI) are
given to:

* ``greenkfp``: ``greenkfp.components.selection.pareto_front`` (public function, validation
  included);
* ``paretoset (numba)``: ``paretoset.paretoset(..., distinct=False)`` with its numba
  block-nested-loops algorithm, compiled before timing (the compile time is reported apart);
* ``paretoset (numpy)``: the same with ``use_numba=False`` (its vectorised numpy algorithm).

``distinct=False`` keeps every copy of a non-dominated point, greenkfp's rule. Every reference
must return exactly greenkfp's index set, on the uniform points and on a second set of the same
size with integer values 0-9 (many ties and duplicates); a difference fails the run.

Times are the best of ``--repeats`` runs (wall clock, ``time.perf_counter``). The ratio is the
reference's time / greenkfp's time (above 1: greenkfp is faster). The goal is 100,000 points
in at most 0.2 s.

Usage: python scripts/bench_selection.py [--sizes N ...] [--repeats R] [--json PATH]
Exit code 0 on success, 1 when an answer differs.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from greenkfp.components.selection import pareto_front

from _bench import add_json_option, print_error, wide_console, write_figures

SEED = 2024
OBJECTIVES = 3
DIRECTIONS = ["max", "min", "min"]
GOAL_SIZE = 100_000
GOAL_S = 0.2


class CrossCheckError(AssertionError):
    """A reference disagrees with greenkfp."""


def best_time(fn, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def references(use_numba: bool):
    """name -> function(points) returning front indices; plus numba compile seconds (or None)."""
    from paretoset import paretoset

    refs = {}
    compile_s = None
    if use_numba:
        t0 = time.perf_counter()
        paretoset(np.random.default_rng(0).random((50, OBJECTIVES)), sense=DIRECTIONS, distinct=False, use_numba=True)
        compile_s = time.perf_counter() - t0
        refs["paretoset (numba)"] = lambda x: np.flatnonzero(paretoset(x, sense=DIRECTIONS, distinct=False, use_numba=True))
    refs["paretoset (numpy)"] = lambda x: np.flatnonzero(paretoset(x, sense=DIRECTIONS, distinct=False, use_numba=False))
    return refs, compile_s


def datasets(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "uniform": rng.random((n, OBJECTIVES)),
        "integers 0-9": rng.integers(0, 10, size=(n, OBJECTIVES)).astype(np.float64),
    }


def run(sizes: list[int], repeats: int, use_numba: bool) -> dict:
    rng = np.random.default_rng(SEED)
    refs, compile_s = references(use_numba)
    pareto_front(rng.random((100, OBJECTIVES)), DIRECTIONS)  # first call pays for imports
    rows = []
    for n in sizes:
        for kind, points in datasets(n, rng).items():
            ours_s, ours = best_time(lambda x=points: pareto_front(x, DIRECTIONS), repeats)
            row = {"points": n, "data": kind, "front_size": len(ours), "greenkfp_s": ours_s, "references": {}}
            for name, fn in refs.items():
                ref_s, ref = best_time(lambda f=fn, x=points: f(x.copy()), repeats)
                same = bool(np.array_equal(np.sort(ref), ours))
                row["references"][name] = {"seconds": ref_s, "ratio": ref_s / ours_s, "same_answer": same}
                if not same:
                    missing, extra = np.setdiff1d(ref, ours), np.setdiff1d(ours, ref)
                    raise CrossCheckError(
                        f"{name} disagrees on {n} {kind} points: greenkfp lacks {missing[:10].tolist()}, "
                        f"has extra {extra[:10].tolist()}"
                    )
            rows.append(row)
    goal_rows = [r for r in rows if r["points"] == GOAL_SIZE and r["data"] == "uniform"]
    goal = None
    if goal_rows:
        goal = {"points": GOAL_SIZE, "goal_s": GOAL_S, "seconds": goal_rows[0]["greenkfp_s"],
                "met": goal_rows[0]["greenkfp_s"] <= GOAL_S}
    return {
        "objectives": OBJECTIVES,
        "directions": DIRECTIONS,
        "seed": SEED,
        "repeats": repeats,
        "timing": "best of repeats, wall clock seconds; ratio = reference seconds / greenkfp seconds",
        "numba_compile_s": compile_s,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "rows": rows,
        "goal": goal,
    }


def render(console: Console, report: dict) -> None:
    console.rule(f"[bold]pareto_front benchmark: {report['objectives']} objectives ({', '.join(report['directions'])})")
    console.print(f"Best of {report['repeats']} runs; ratio = reference time / greenkfp time (> 1: greenkfp faster). "
                  f"Seed {report['seed']}, {report['machine']['cpus']} CPUs, Python {report['machine']['python']}.")
    if report["numba_compile_s"] is not None:
        console.print(f"paretoset's numba compile (excluded from its times): {report['numba_compile_s']:.2f} s.")
    names = list(report["rows"][0]["references"]) if report["rows"] else []
    table = Table(title="Front of random points")
    for header in ("points", "data", "front", "greenkfp ms"):
        table.add_column(header, justify="left" if header == "data" else "right")
    for name in names:
        table.add_column(f"{name}\nms", justify="right")
        table.add_column("ratio", justify="right")
    table.add_column("same answer", justify="center")
    for row in report["rows"]:
        cells = [f"{row['points']:,}", row["data"], f"{row['front_size']:,}", f"{1e3 * row['greenkfp_s']:.1f}"]
        for name in names:
            ref = row["references"][name]
            cells += [f"{1e3 * ref['seconds']:.1f}", f"{ref['ratio']:.1f}x"]
        same = all(r["same_answer"] for r in row["references"].values())
        cells.append("[green]yes[/]" if same else "[red]NO[/]")
        table.add_row(*cells)
    console.print(table)
    goal = report["goal"]
    if goal:
        verdict = "[green]met[/]" if goal["met"] else "[red]NOT met[/]"
        console.print(f"Goal: {goal['points']:,} points in <= {goal['goal_s']} s: {1e3 * goal['seconds']:.1f} ms, {verdict}.")
    console.print("[green]Cross-check passed[/]: every reference returned greenkfp's index set.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], metavar="N",
                        help="numbers of points (default 10000 100000)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement, best kept (default 5)")
    parser.add_argument("--no-numba", action="store_true", help="skip paretoset's numba algorithm (no compile)")
    add_json_option(parser, "also write the figures as JSON to PATH")
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.sizes):
        parser.error(f"--sizes must be positive; got {args.sizes}")
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1; got {args.repeats}")
    console = wide_console(120)
    try:
        report = run(args.sizes, args.repeats, use_numba=not args.no_numba)
    except CrossCheckError as exc:
        print_error("CROSS-CHECK FAILED", exc)
        return 1
    render(console, report)
    write_figures(args.json, report, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
