"""How stable is the flagship's verdict? New (interleaved, interval-aware) against old behaviour.

What it measures
----------------
The flagship pipeline runs once through kfp's local runner (``--dataset``, default the demo's
``wide``; the default candidates): that trains every candidate and builds its ONNX variants.
Then, ``--runs`` times (default 10) in this one process, the flagship's measuring and deciding
cores run again on those artifacts, re-measuring each time:

* **new**: ``benchmark_all_variants`` (one interleaved benchmark of every variant of every
  candidate, intervals over rounds), ``select_model`` (dominance beyond the intervals, ties to
  fewer MACs, the energy guard) and ``build_sustainability_report`` (savings with a paired
  bootstrap interval);
* **old** (today's main): ``evaluate_variants`` once per candidate, the candidates in parallel
  processes as the ``ParallelFor`` runs them, each variant benchmarked on its own; selection on
  point estimates; savings as point estimates (zero-width "intervals").

Per behaviour it reports: how often the most frequent selection was made (goal 10/10 for new),
the spread of the total-savings estimate (min, max, standard deviation, in % of the scheduled
total), and how often the run's 95 % interval for the total savings contains the mean of the
runs' estimates (goal >= 9/10 for new; the old behaviour has no interval, so it scores only when
its estimate equals the mean exactly).

With ``--processes``, the whole flagship instead runs ``--runs`` times, each in a separate
process (``greenkfp run-local ... --summary-json``, exactly as ``make demo`` runs it): training,
conversion, benchmark, selection and report all redone, so the figures see what one process
cannot (training time and energy moving with the neighbours' load, the machine's state from one
run to the next). It reports the same figures for the total saving in grams and in percent (the
interval of each run against the mean of the runs' estimates), and the relative standard
deviation between runs of the fits' total energy and of the baseline's carbon per inference:
the run-to-run uncertainties the report's intervals assume (``TRAINING_RUN_TO_RUN_UNCERTAINTY``,
``RUN_TO_RUN_UNCERTAINTY`` in ``greenkfp.components.reporting.sustainability``).

Usage: python scripts/bench_selection_stability.py [--runs N] [--dataset NAME] [--sci-seconds S] [--processes]
       [--json PATH]
Exit code 0 when the new behaviour meets both goals (or fewer than 10 runs, not judged), 1 when it does not.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from rich.table import Table

from _bench import add_json_option, load_average, print_error, wide_console, write_figures

GOAL_SAME = 10
GOAL_COVERAGE = 9


def _prepare(dataset: str, root: Path):
    from greenkfp.pipelines.local import run_training_locally

    root.mkdir(parents=True)
    with open(root / "run.log", "w", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        result = run_training_locally(
            {"dataset": dataset, "mode": "plan", "regions": ["GB", "DE-LU", "US-CAL-CISO"], "duration_hours": 1.0,
             "max_delay_hours": 12.0, "earliest_start": "2024-06-14T09:00:00Z"}, root)
    run_dir = Path(result.run_dir)
    decision = next(run_dir.glob("*/decision"))
    test = next(run_dir.glob("load-dataset/test"))
    groups = []
    for run in result.candidates:
        iteration = Path(run.artifact_dir).parent
        groups.append((str(next(iteration.glob("convert-and-quantize/variants"))),
                       str(next(iteration.glob("convert-and-quantize/variant_list"))),
                       str(next(iteration.glob("train-with-emissions/training_record")))))
    return result, groups, str(test), str(decision)


def _old_one(args):
    from greenkfp.components.sci.evaluate import evaluate_variants

    variants_dir, variant_list, training, test, decision, seconds = args
    return evaluate_variants(variants_dir, variant_list, test, training_record_path=training, decision_path=decision,
                             max_seconds=seconds, expected_lifetime_inferences=1e8).to_list()


def _decide(report, groups, decision_path, training_records, *, old: bool = False):
    from greenkfp.components.records import GateDecisionRecord, VariantList, read_record
    from greenkfp.components.reporting import build_sustainability_report
    from greenkfp.components.selection import Constraints, select_model
    from greenkfp.components.selection.collect import candidates_from_evaluations, evaluations_from_report

    lists = [read_record(VariantList, g[1]) for g in groups]
    candidates = candidates_from_evaluations(evaluations_from_report(report, [g[0] for g in groups], lists))
    decision = select_model(candidates, constraints=Constraints(max_accuracy_drop_points=1.0), on_none="block")
    # the old behaviour had point estimates only: no run-to-run factors, so zero-width intervals
    uncertainties = {"run_to_run_uncertainty": 0.0, "training_run_to_run_uncertainty": 0.0,
                     "variant_run_to_run_uncertainty": 0.0} if old else {}
    built = build_sustainability_report(read_record(GateDecisionRecord, decision_path), training_records,
                                        list(report), decision.to_record(), expected_lifetime_inferences=1e8,
                                        **uncertainties)
    total = built.saving("total")
    return decision.chosen.name if decision.chosen else None, total, built.total.scheduled_g


def _summary(rows: list[dict]) -> dict:
    chosen = Counter(r["selected"] for r in rows)
    top, count = chosen.most_common(1)[0]
    percents = [r["saved_percent"] for r in rows]
    grams = [r["saved_g"] for r in rows]
    mean_g = statistics.fmean(grams)
    covered = sum(1 for r in rows if r["low_g"] <= mean_g <= r["high_g"])
    significant = sum(1 for r in rows if r["significant"])
    return {"selections": dict(chosen), "most_frequent": top, "same_selection": count, "runs": len(rows),
            "saved_percent_min": min(percents), "saved_percent_max": max(percents),
            "saved_percent_sd": statistics.stdev(percents) if len(percents) > 1 else 0.0,
            "saved_g_mean": mean_g, "interval_contains_mean": covered, "significant_runs": significant,
            "mean_interval_width_percent": statistics.fmean(r["width_percent"] for r in rows),
            "seconds_per_run": statistics.fmean(r["seconds"] for r in rows)}


def _row(selected, total, scheduled, seconds) -> dict:
    return {"selected": selected, "saved_g": total.g.estimate, "low_g": total.g.low, "high_g": total.g.high,
            "saved_percent": total.percent.estimate if total.percent else float("nan"),
            "width_percent": 100.0 * (total.g.high - total.g.low) / scheduled if scheduled else 0.0,
            "significant": total.significant, "seconds": seconds}


def _one_process(dataset: str, sci_seconds: float, folder: Path, index: int) -> dict:
    """One whole ``greenkfp run-local`` in its own process; the row from its summary and records."""
    import json
    import subprocess

    summary = folder / f"summary-{index}.json"
    command = [str(Path(sys.executable).with_name("greenkfp")), "run-local", "--pipeline", "training",
               "--dataset", dataset, "--regions", "GB", "DE-LU", "US-CAL-CISO", "--duration", "1h", "--max-delay",
               "12h", "--sci-seconds", f"{sci_seconds:g}", "--pipeline-root", str(folder / f"run-{index}"),
               "--summary-json", str(summary)]
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"run {index} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    data = json.loads(summary.read_text(encoding="utf-8"))
    (report_path,) = Path(data["run_dir"]).glob("sustainability-report/report_json")
    report = json.loads(report_path.read_text(encoding="utf-8"))
    total = data["savings"]["total"]
    baseline = next(v for v in data["variants"] if v["name"] == data["baseline"])
    return {"selected": data["selected"], "saved_g": total["g"]["estimate"], "low_g": total["g"]["low"],
            "high_g": total["g"]["high"], "saved_percent": total["percent"]["estimate"],
            "low_percent": total["percent"]["low"], "high_percent": total["percent"]["high"],
            "width_percent": total["percent"]["high"] - total["percent"]["low"], "significant": total["significant"],
            "seconds": seconds, "training_energy_kwh": report["training"]["energy_kwh"],
            "baseline_energy_per_inference_kwh": baseline["energy_per_inference_kwh"]["estimate"],
            "inference_saved_percent": data["savings"]["inference"]["percent"]["estimate"]}


def _relative_sd(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.fmean(values) if len(values) > 1 and statistics.fmean(values) else 0.0


def main_processes(args, console) -> int:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            try:
                rows.append(_one_process(args.dataset, args.sci_seconds, Path(tmp), i))
            except (RuntimeError, OSError, ValueError, KeyError, StopIteration) as exc:
                print_error(f"flagship run {i + 1}", exc)
                return 1
            r = rows[-1]
            console.print(f"run {i + 1}/{args.runs}: {r['selected']} total {r['saved_percent']:.1f} % "
                          f"[{r['low_percent']:.1f}, {r['high_percent']:.1f}], training "
                          f"{r['training_energy_kwh'] * 1000:.3g} Wh, {r['seconds']:.0f} s")
    figures = _summary(rows)
    mean_percent = statistics.fmean(r["saved_percent"] for r in rows)
    figures.update(
        saved_percent_mean=mean_percent,
        percent_interval_contains_mean=sum(1 for r in rows if r["low_percent"] <= mean_percent <= r["high_percent"]),
        training_energy_relative_sd=_relative_sd([r["training_energy_kwh"] for r in rows]),
        baseline_energy_relative_sd=_relative_sd([r["baseline_energy_per_inference_kwh"] for r in rows]),
        inference_saved_percent_sd=statistics.stdev(r["inference_saved_percent"] for r in rows))
    table = Table(title=f"the whole flagship, {args.runs} runs in separate processes ({args.dataset}, "
                        f"{args.sci_seconds:g} s per variant)", title_justify="left")
    for column in ("same selection", "most frequent", "total saved % min..max", "sd (points)",
                   "interval width (points)", "% interval contains mean", "g interval contains mean",
                   "training energy rel. sd", "baseline energy rel. sd", "s per run"):
        table.add_column(column, justify="left" if column == "most frequent" else "right")
    f = figures
    table.add_row(f"{f['same_selection']}/{f['runs']}", str(f["most_frequent"]),
                  f"{f['saved_percent_min']:.1f} .. {f['saved_percent_max']:.1f}", f"{f['saved_percent_sd']:.2f}",
                  f"{f['mean_interval_width_percent']:.2f}", f"{f['percent_interval_contains_mean']}/{f['runs']}",
                  f"{f['interval_contains_mean']}/{f['runs']}", f"{f['training_energy_relative_sd']:.1%}",
                  f"{f['baseline_energy_relative_sd']:.1%}", f"{f['seconds_per_run']:.0f}")
    console.print(table)
    goal = round(GOAL_COVERAGE * args.runs / 10)
    ok = args.runs >= 10 and f["same_selection"] == args.runs and f["percent_interval_contains_mean"] >= goal \
        and f["interval_contains_mean"] >= goal
    console.print(f"goals (same selection {GOAL_SAME}/10; each run's interval, in % and in g, contains the mean of "
                  f"the runs' estimates >= {GOAL_COVERAGE}/10): " + (
                      "[green]met[/green]" if ok else "[red]not met[/red]" if args.runs >= 10 else
                      "[yellow]not judged (fewer than 10 runs)[/yellow]"))
    write_figures(args.json, {"runs": args.runs, "dataset": args.dataset, "sci_seconds": args.sci_seconds,
                              "mode": "processes", "load_average": load_average(2), "summary": figures,
                              "rows": rows, "goals_met": ok}, console)
    return 0 if ok or args.runs < 10 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=10, help="re-measurements per behaviour (default 10)")
    parser.add_argument("--dataset", default="wide", help="the flagship's dataset (default wide, the demo's)")
    parser.add_argument("--sci-seconds", type=float, default=3.0,
                        help="benchmark budget per variant, seconds, both behaviours (default 3, the pipeline's)")
    parser.add_argument("--processes", action="store_true",
                        help="run the whole flagship (training included) in a separate process each time")
    add_json_option(parser)
    args = parser.parse_args(argv)
    if args.runs < 2:
        parser.error("--runs must be at least 2")
    if not (args.sci_seconds > 0):
        parser.error(f"--sci-seconds must be > 0, got {args.sci_seconds!r}")
    console = wide_console(150)
    if args.processes:
        return main_processes(args, console)
    from greenkfp.components.records import SciReport, TrainingRecord, VariantList, read_record
    from greenkfp.components.sci.evaluate import benchmark_all_variants

    with tempfile.TemporaryDirectory() as tmp:
        console.print(f"training the flagship's candidates on {args.dataset!r} once (kfp local runner)...")
        try:
            _, groups, test, decision = _prepare(args.dataset, Path(tmp) / "root")
        except Exception as exc:  # the bench cannot run without the artifacts
            print_error("flagship run failed", exc)
            return 1
        trainings = [read_record(TrainingRecord, g[2]) for g in groups]
        rows = {"new": [], "old": []}
        eligible = sum(1 for g in groups for v in read_record(VariantList, g[1]) if v.eligible and v.file)
        for i in range(args.runs):
            t0 = time.perf_counter()
            report = benchmark_all_variants(groups, test, decision_path=decision,
                                            max_seconds=args.sci_seconds * eligible,  # as benchmark_variants does
                                            expected_lifetime_inferences=1e8, seed=i)
            selected, total, scheduled = _decide(report, groups, decision, trainings)
            rows["new"].append(_row(selected, total, scheduled, time.perf_counter() - t0))
            t0 = time.perf_counter()
            with ProcessPoolExecutor(max_workers=len(groups)) as pool:  # the ParallelFor's tasks, side by side
                parts = list(pool.map(_old_one, [(*g[:2], g[2], test, decision, args.sci_seconds) for g in groups]))
            old = SciReport.from_list([entry for part in parts for entry in part])
            selected, total, scheduled = _decide(old, groups, decision, trainings, old=True)
            rows["old"].append(_row(selected, total, scheduled, time.perf_counter() - t0))
            console.print(f"run {i + 1}/{args.runs}: new {rows['new'][-1]['selected']} "
                          f"{rows['new'][-1]['saved_percent']:.1f} %, old {rows['old'][-1]['selected']} "
                          f"{rows['old'][-1]['saved_percent']:.1f} %")
    figures = {name: _summary(r) for name, r in rows.items()}
    table = Table(title=f"selection stability over {args.runs} re-measurements ({args.dataset}, "
                        f"{args.sci_seconds:g} s per variant)", title_justify="left")
    for column in ("behaviour", "same selection", "most frequent", "total saved % min..max", "sd (points)",
                   "interval width (% of scheduled)", "interval contains mean", "significant", "s per run"):
        table.add_column(column, justify="left" if column in ("behaviour", "most frequent") else "right")
    for name, f in figures.items():
        table.add_row(name, f"{f['same_selection']}/{f['runs']}", str(f["most_frequent"]),
                      f"{f['saved_percent_min']:.1f} .. {f['saved_percent_max']:.1f}", f"{f['saved_percent_sd']:.2f}",
                      f"{f['mean_interval_width_percent']:.2f}", f"{f['interval_contains_mean']}/{f['runs']}",
                      f"{f['significant_runs']}/{f['runs']}", f"{f['seconds_per_run']:.1f}")
    console.print(table)
    console.print("[dim]old: per-candidate benchmarks in parallel processes, point estimates (an interval of zero "
                  "width); new: one interleaved benchmark, intervals over rounds, paired savings.[/dim]")
    ok = args.runs >= 10 and figures["new"]["same_selection"] == args.runs and \
        figures["new"]["interval_contains_mean"] >= round(GOAL_COVERAGE * args.runs / 10)
    console.print(f"goals (new: same selection {GOAL_SAME}/10, interval contains the mean >= {GOAL_COVERAGE}/10): "
                  + ("[green]met[/green]" if ok else "[red]not met[/red]" if args.runs >= 10 else
                     "[yellow]not judged (fewer than 10 runs)[/yellow]"))
    write_figures(args.json, {"runs": args.runs, "dataset": args.dataset, "sci_seconds": args.sci_seconds,
                              "load_average": load_average(2), "summary": figures, "rows": rows,
                              "goals_met": ok}, console)
    return 0 if ok or args.runs < 10 else 1


if __name__ == "__main__":
    sys.exit(main())
