"""Benchmark the SCI step: accuracy, latency, energy and SCI of every variant of the default candidates.

What it measures
----------------
The pipeline's cores in one process, on scikit-learn's digits (1,797 rows x 64 features, 10
classes; stratified 75/25 split, seed 0):

1. ``prepare_dataset("digits")``;
2. ``train_candidate`` for each of the four default candidates (``DEFAULT_CANDIDATES``:
   logistic regression, random forest, small and wide MLP), region GB, CodeCarbon offline;
3. ``convert_and_quantize`` of each into fp32, int8_dynamic, int8_static (200 calibration rows
   from the train split) and fp16 ONNX variants, listed by ``write_component_outputs``;
4. ``evaluate_variants`` for each candidate: every eligible variant is benchmarked with ONNX
   Runtime and scored; the rest are skipped with the quantization step's reason.

The table gives, per variant: test accuracy (and its change against the scikit-learn model, in
points), single-row p95 latency (ms, measured), energy per 1,000 inferences (Wh, with its method:
``modeled`` on machines without readable RAPL counters, ``measured`` with them) and the SCI per
1,000 inferences (gCO2eq, derived: SCI = (E x I + M) / R). The wall time of step 4 (all
candidates) is reported, with the budget it had (scored variants x ``--max-seconds``).

Settings of the SCI step
------------------------
Hardware profile ``n2-standard-4`` (TDP and RAM for the energy model, embodied emissions for M);
I = ``annual_average``: the mean of the embedded hourly GB intensities of 2024 (the region comes
given to the SCI step directly, no gate decision); R = per 1,000 inferences; one ONNX Runtime
intra-op thread (BLAS/OpenMP pools pinned to 1 as well, before numpy is imported); each variant's
benchmark gets ``--max-seconds`` (session creation and warm-up included) under the library's
stability rule (single-row p95 of the last two rounds within 5 %, at least 1 s measured).

Repeatability
-------------
The same variant (the wide MLP's int8_dynamic, or the first scored variant when it is not
scored) is then evaluated twice more, in the same way, and the two SCI figures are compared:
relative difference = |a - b| / mean(a, b). Goal: at most 10 % on this (shared, noisy) machine.
To explain a difference the script splits it exactly into its two causes. Per inference,

    SCI / 1000 = (E x I + M) / n = (P x I + m) x (wall / n)

with P = E / wall the average modeled power (W; from the CPU utilisation through the Teads
curve), m = M / wall the embodied rate (g/s, fixed by the profile) and wall / n the benchmark's
time per inference. So SCI_b / SCI_a = (time per inference ratio) x (power term ratio): the first
is the machine's speed during the run (and the mix of single-row and batched inferences the run
ended with), the second the utilisation. The single-row p95 and the utilisation of both runs are
shown beside it.

Usage: python scripts/bench_sci.py [--max-seconds S] [--quick] [--json PATH]
Exit code 0 when the benchmark ran (whether or not the goal is met), 1 when no variant could be
scored, a core step failed, or the report's terms do not add up.
"""

from __future__ import annotations

import time

_BEGAN = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

from _bench import (  # noqa: E402
    BenchError,
    add_json_option,
    cpu_model,
    fmt,
    load_average,
    pin_threads,
    print_error,
    thread_env,
    wide_console,
    write_figures,
)

THREADS = 1
DATASET = "digits"
REGION = "GB"
PROFILE = "n2-standard-4"
INTENSITY_BASIS = "annual_average"
UNIT = 1000  # inferences per functional unit
MAX_SECONDS, QUICK_MAX_SECONDS = 3.0, 1.0
VARIANTS = ("fp32", "int8_dynamic", "int8_static", "fp16")
QUICK_CANDIDATES = ("logistic-regression", "mlp-small")
QUICK_VARIANTS = ("fp32", "int8_dynamic")
REPEAT_PREFERRED = ("mlp-wide", "int8_dynamic")
REPEAT_GOAL_PERCENT = 10.0
IDENTITY_RTOL = 1e-9  # the split of the SCI ratio must hold to round-off


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--max-seconds", type=float, metavar="S",
                        help=f"time budget of each variant's benchmark, s (default {MAX_SECONDS:g}, "
                             f"--quick {QUICK_MAX_SECONDS:g}; at least 1, the benchmark's measured-time floor)")
    parser.add_argument("--quick", action="store_true",
                        help=f"only {', '.join(QUICK_CANDIDATES)} and the {', '.join(QUICK_VARIANTS)} variants: "
                             "a smoke test")
    add_json_option(parser)
    args = parser.parse_args(argv)
    if args.max_seconds is None:
        args.max_seconds = QUICK_MAX_SECONDS if args.quick else MAX_SECONDS
    # evaluate_variants keeps the benchmark's min_seconds at 1.0, which must not exceed the budget
    if not (math.isfinite(args.max_seconds) and args.max_seconds >= 1.0):
        parser.error(f"--max-seconds must be a number >= 1, got {args.max_seconds}")
    return args


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


# --- building: the pipeline's cores up to the variant lists ------------------------------------
def build(tmp: Path, quick: bool, console) -> dict:
    """Split digits, train the candidates, build and list their variants."""
    from sklearn.exceptions import ConvergenceWarning

    from greenkfp.components.data.datasets import prepare_dataset
    from greenkfp.components.quantization import QuantizationError
    from greenkfp.components.quantization.variants import convert_and_quantize, write_component_outputs
    from greenkfp.components.training.estimators import DEFAULT_CANDIDATES
    from greenkfp.components.training.train import train_candidate

    train, test = tmp / "train.parquet", tmp / "test.parquet"
    train_info, test_info = prepare_dataset(DATASET, None, train, test)
    specs = [c for c in DEFAULT_CANDIDATES if not quick or c["name"] in QUICK_CANDIDATES]
    variants = QUICK_VARIANTS if quick else VARIANTS
    candidates = []
    for spec in specs:
        name = spec["name"]
        console.print(f"Training {name} and building its variants ...")
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # reported by the record, not fatal
            result = train_candidate(str(train), str(test), spec, str(tmp / f"{name}.skops"), region=REGION,
                                     output_dir=str(tmp))
        train_s = time.perf_counter() - t0
        record = result.to_record()
        record_path = write_json(tmp / f"{name}.training.json", record.to_dict())
        variants_dir = tmp / name
        t0 = time.perf_counter()
        try:
            reports = convert_and_quantize(tmp / f"{name}.skops", test, train, variants_dir, variants=variants,
                                           calibration_rows=200, seed=0, threads=THREADS)
        except QuantizationError as exc:
            raise BenchError(f"{name}: {exc}") from exc
        quantize_s = time.perf_counter() - t0
        list_path = tmp / f"{name}.variants.json"
        write_component_outputs(reports, variants_dir=variants_dir, json_path=list_path,
                                summary_path=tmp / f"{name}.variants.md")
        emissions = record.emissions
        candidates.append({
            "name": name, "estimator": spec["estimator"], "params": spec["params"],
            "accuracy": result.accuracy, "fit_s": result.fit_seconds, "train_step_s": train_s,
            "quantize_step_s": quantize_s,
            "training_energy_kwh": record.energy.energy_kwh,
            "training_energy_method": record.energy.method,  # measured / modeled / unavailable
            "training_emissions_hourly_g": emissions.hourly_g, "training_emissions_codecarbon_g": emissions.codecarbon_g,
            "record_path": str(record_path), "variants_dir": str(variants_dir), "list_path": str(list_path),
        })
    return {"train": str(train), "test": str(test), "train_rows": train_info.rows, "test_rows": test_info.rows,
            "variants": list(variants), "candidates": candidates}


# --- evaluation --------------------------------------------------------------------------------
def evaluate(candidate: dict, list_path: str, test: str, decision: Path | None, max_seconds: float) -> list[dict]:
    from greenkfp.components.sci.evaluate import evaluate_variants

    return evaluate_variants(
        candidate["variants_dir"], list_path, test, training_record_path=candidate["record_path"],
        decision_path=decision, region=REGION, hardware_profile=PROFILE, intensity_basis=INTENSITY_BASIS, functional_unit_size=UNIT,
        expected_lifetime_inferences=None, max_seconds=max_seconds, threads=THREADS,
    ).to_list()


def check_terms(entry: dict) -> None:
    """The score must be (E x I + M) / R from the report's own terms, training left out."""
    report = entry["report"]
    E, I, M, R = report["E"]["kwh"], report["I"]["g_per_kwh"], report["M"]["g"], report["R"]["count"]
    if not math.isclose(entry["sci"], (E * I + M) / R, rel_tol=1e-12):
        raise BenchError(f"{entry['candidate']}/{entry['variant']}: SCI {entry['sci']!r} is not (E x I + M) / R")


def run_figures(entry: dict) -> dict:
    """The figures of one scored variant this script shows (units in the names)."""
    report = entry["report"]
    bench = report["benchmark"]
    wall = bench["wall_time_s"]
    n = bench["n_inferences"]
    energy_kwh = report["E"]["kwh"]
    return {
        "sci_g_per_1000": entry["sci"],
        "sci_unit": entry["sci_unit"],
        "energy_wh_per_1000": entry["energy_per_inference_kwh"] * 1000 * 1000,
        "energy_method": entry["energy_method"],
        "latency_p50_ms": entry["latency_p50_ms"],
        "latency_p95_ms": entry["latency_p95_ms"],
        "cpu_utilisation_percent": bench["cpu_utilisation_percent"],
        "n_inferences": n,
        "n_single_requests": bench["n_single_requests"],
        "n_batch_rows": bench["n_batch_rows"],
        "n_rounds": bench["n_rounds"],
        "converged": bench["converged"],
        "stop_reason": bench["stop_reason"],
        "benchmark_wall_s": wall,
        "time_per_inference_us": 1e6 * wall / n,
        "average_power_w": energy_kwh * 3.6e6 / wall if wall > 0 else None,
        "embodied_rate_g_per_s": report["M"]["g"] / wall if wall > 0 else None,
        "operational_g": report["O"]["g"],
        "embodied_g": report["M"]["g"],
        "embodied_share_percent": 100.0 * report["M"]["g"] / report["C"]["g"] if report["C"]["g"] > 0 else None,
        "intensity_g_per_kwh": report["I"]["g_per_kwh"],
    }


def evaluate_all(built: dict, decision: Path | None, max_seconds: float, console) -> dict:
    rows, per_candidate = [], {}
    t_all = time.perf_counter()
    for candidate in built["candidates"]:
        console.print(f"Evaluating the SCI of {candidate['name']}'s variants ...")
        t0 = time.perf_counter()
        entries = evaluate(candidate, candidate["list_path"], built["test"], decision, max_seconds)
        per_candidate[candidate["name"]] = time.perf_counter() - t0
        variants = {v["name"]: v for v in json.loads(Path(candidate["list_path"]).read_text())}
        for entry in entries:
            row = {"candidate": entry["candidate"], "variant": entry["variant"], "precision": entry["precision"],
                   "status": entry["status"], "accuracy": entry["accuracy"],
                   "accuracy_change_points": entry["accuracy_change_points"], "size_bytes": entry["size_bytes"],
                   "produced": variants[entry["variant"]]["produced"],
                   "training_emissions_g": entry["training_emissions_g"]}
            if entry["status"] == "scored":
                check_terms(entry)
                row.update(run_figures(entry))
                row["report"] = entry["report"]
            else:
                row["reason"] = entry["reason"]
            rows.append(row)
    wall = time.perf_counter() - t_all
    scored = [r for r in rows if r["status"] == "scored"]
    if not scored:
        raise BenchError("no variant was scored: " + "; ".join(f"{r['candidate']}/{r['variant']}: {r['reason']}"
                                                                 for r in rows))
    return {"rows": rows, "wall_s": wall, "per_candidate_wall_s": per_candidate, "scored": len(scored),
            "budget_s": len(scored) * max_seconds}


# --- repeatability -----------------------------------------------------------------------------
def spread(a: float, b: float) -> float | None:
    """|a - b| / mean(a, b), percent."""
    mean = (a + b) / 2
    return None if mean == 0 else 100.0 * abs(a - b) / mean


def repeat(built: dict, evaluated: dict, decision: Path | None, max_seconds: float, tmp: Path, console) -> dict:
    scored = [r for r in evaluated["rows"] if r["status"] == "scored"]
    chosen = next((r for r in scored if (r["candidate"], r["variant"]) == REPEAT_PREFERRED), scored[0])
    why = ("the wide MLP's int8_dynamic" if (chosen["candidate"], chosen["variant"]) == REPEAT_PREFERRED
           else f"the first scored variant: {'/'.join(REPEAT_PREFERRED)} was not evaluated or not scored")
    candidate = next(c for c in built["candidates"] if c["name"] == chosen["candidate"])
    entry = next(v for v in json.loads(Path(candidate["list_path"]).read_text()) if v["name"] == chosen["variant"])
    only = write_json(tmp / f"{chosen['candidate']}.{chosen['variant']}.repeat.json", [entry])
    runs = []
    for i in range(2):
        console.print(f"Repeating {chosen['candidate']}/{chosen['variant']} (run {i + 1} of 2) ...")
        (result,) = evaluate(candidate, str(only), built["test"], decision, max_seconds)
        if result["status"] != "scored":
            raise BenchError(f"the repeat of {chosen['candidate']}/{chosen['variant']} was not scored: {result['reason']}")
        check_terms(result)
        runs.append(run_figures(result))
    a, b = runs
    ratio = b["sci_g_per_1000"] / a["sci_g_per_1000"]
    speed = b["time_per_inference_us"] / a["time_per_inference_us"]
    power = ((b["average_power_w"] / 3.6e6 * b["intensity_g_per_kwh"] + b["embodied_rate_g_per_s"])
             / (a["average_power_w"] / 3.6e6 * a["intensity_g_per_kwh"] + a["embodied_rate_g_per_s"]))
    if not math.isclose(ratio, speed * power, rel_tol=IDENTITY_RTOL):
        raise BenchError(f"the SCI ratio {ratio!r} is not (time per inference ratio) x (power term ratio) "
                         f"{speed * power!r}: the report's terms do not add up")
    difference = spread(a["sci_g_per_1000"], b["sci_g_per_1000"])
    return {
        "candidate": chosen["candidate"], "variant": chosen["variant"], "why_this_variant": why,
        "runs": runs, "first_table_run": {k: chosen[k] for k in run_figures_keys()},
        "sci_difference_percent": difference,
        "goal_percent": REPEAT_GOAL_PERCENT,
        "met": difference is not None and difference <= REPEAT_GOAL_PERCENT,
        "sci_ratio_b_over_a": ratio,
        "time_per_inference_ratio": speed,
        "power_term_ratio": power,
        "p95_difference_percent": spread(a["latency_p95_ms"], b["latency_p95_ms"]),
        "p50_difference_percent": spread(a["latency_p50_ms"], b["latency_p50_ms"]),
        "utilisation_difference_points": b["cpu_utilisation_percent"] - a["cpu_utilisation_percent"],
        "time_per_inference_difference_percent": spread(a["time_per_inference_us"], b["time_per_inference_us"]),
        "batched_share_percent": [100.0 * r["n_batch_rows"] / r["n_inferences"] for r in runs],
    }


def run_figures_keys() -> tuple[str, ...]:
    return ("sci_g_per_1000", "energy_wh_per_1000", "latency_p50_ms", "latency_p95_ms", "cpu_utilisation_percent",
            "n_inferences", "time_per_inference_us", "average_power_w", "stop_reason")


# --- output ------------------------------------------------------------------------------------
def render(console, report: dict) -> None:
    from rich.table import Table

    cfg = report["config"]
    scored = [r for r in report["evaluation"]["rows"] if r["status"] == "scored"]
    first = scored[0]["report"]
    profile = first["hardware_profile"]
    console.rule("[bold]greenkfp SCI benchmark: default candidates on digits" + (" [QUICK]" if cfg["quick"] else ""))
    console.print(
        f"CPU: {cfg['cpu_model']} ({cfg['cpu_count']} logical CPUs). ONNX Runtime {cfg['onnxruntime']}, "
        f"{THREADS} intra-op x 1 inter-op thread (BLAS/OpenMP pinned to {THREADS}). Dataset {DATASET}: "
        f"{cfg['train_rows']} train / {cfg['test_rows']} test rows. Variants: {', '.join(cfg['variants'])}.\n"
        f"Each variant's benchmark: budget {cfg['max_seconds']:g} s; {first['benchmark']['stability_rule']}.\n"
        f"Hardware profile [bold]{profile['name']}[/] (TDP {profile['cpu_tdp_w']:g} W over {profile['vcpus']} vCPUs, "
        f"{profile['ram_gb']:g} GB RAM, embodied {profile['embodied_kgco2eq']:g} kgCO2eq over {profile['host_vcpus']} "
        f"host vCPUs, {profile['lifespan_years']:g} years). "
        f"I = {first['I']['g_per_kwh']:.2f} gCO2eq/kWh ({INTENSITY_BASIS}: {first['I']['source']['region']}, "
        f"{first['I']['source'].get('signal')}; "
        f"{report['intensity_basis_text']}). R: per {UNIT:,} inferences (counted)."
    )

    t0 = Table(title="Candidates (training step; emissions reported apart, never in the SCI)")
    for header in ("candidate", "estimator", "accuracy", "fit s (measured)", "training kWh, CodeCarbon (method)",
                   "training gCO2eq (derived, GB hourly I)", "variants built s"):
        t0.add_column(header, justify="left" if header in ("candidate", "estimator") else "right")
    for c in report["candidates"]:
        t0.add_row(c["name"], c["estimator"].rsplit(".", 1)[-1], f"{c['accuracy']:.4f}", f"{c['fit_s']:.2f}",
                   f"{fmt(c['training_energy_kwh'], '.3e')} ({c['training_energy_method']})",
                   fmt(c["training_emissions_hourly_g"], ".3e"),
                   f"{c['quantize_step_s']:.2f}")
    console.print(t0)

    ev = report["evaluation"]
    t1 = Table(title=f"SCI per variant (evaluation wall time {ev['wall_s']:.1f} s, measured, for {ev['scored']} scored "
                     f"variants; budget {ev['scored']} x {cfg['max_seconds']:g} s = {ev['budget_s']:.0f} s)")
    for header in ("candidate", "variant", "status", "accuracy", "change pts", "p95 ms (measured)",
                   "inferences", "stop", "CPU util %", "energy Wh / 1,000 inf. (method)",
                   "SCI gCO2eq / 1,000 inf. (derived)", "M share %"):
        t1.add_column(header, justify="left" if header in ("candidate", "variant", "status", "stop") else "right",
                      no_wrap=header in ("candidate", "variant"))
    for r in ev["rows"]:
        if r["status"] != "scored":
            t1.add_row(r["candidate"], r["variant"], "[yellow]skipped[/]", fmt(r["accuracy"], ".4f"),
                       fmt(r["accuracy_change_points"], "+.2f"), *["-"] * 7)
            continue
        t1.add_row(r["candidate"], r["variant"], "scored", f"{r['accuracy']:.4f}", f"{r['accuracy_change_points']:+.2f}",
                   f"{r['latency_p95_ms']:.4f}", f"{r['n_inferences']:,}",
                   "converged" if r["converged"] else r["stop_reason"], f"{r['cpu_utilisation_percent']:.1f}",
                   f"{r['energy_wh_per_1000']:.3e} ({r['energy_method']})", f"{r['sci_g_per_1000']:.3e}",
                   fmt(r["embodied_share_percent"], ".1f"))
    t1.caption = ("energy: E / inferences x 1,000 (Wh); SCI = (E x I + M) / R, checked against the report's own "
                  "terms; M share = M / (E x I + M). Latency: single-row requests; 'inferences' counts single-row "
                  "and batched rows.")
    powers = [r["average_power_w"] for r in scored]
    if max(powers) <= 1.01 * min(powers):
        t1.caption += (f" Per inference, SCI = (P x I + m) x time per inference, with P the modeled power "
                       f"({min(powers):.3f}-{max(powers):.3f} W here, from the utilisation) and m the embodied rate, the "
                       "same for every variant: so M's share is the same in every row and the SCI ranks the variants "
                       "exactly as their time per inference does.")
    console.print(t1)
    skipped = [r for r in ev["rows"] if r["status"] != "scored"]
    for r in skipped:
        kind = "not eligible" if r["produced"] else "not produced"
        console.print(f"[yellow]skipped[/] {r['candidate']}/{r['variant']} ({kind}): {r['reason']}")
    if first.get("uncertainty"):
        console.print(f"Energy method: {first['E']['method']}. {first['uncertainty']}")

    rep = report["repeat"]
    a, b = rep["runs"]
    t2 = Table(title=f"Repeatability: {rep['candidate']}/{rep['variant']} evaluated twice more ({rep['why_this_variant']})")
    for header in ("run", "SCI gCO2eq / 1,000 (derived)", "energy Wh / 1,000 (modeled)", "p50 ms", "p95 ms",
                   "CPU util %", "inferences", "batched share %", "us / inference", "avg power W (modeled)", "stop"):
        t2.add_column(header, justify="left" if header in ("run", "stop") else "right")
    ft = rep["first_table_run"]
    t2.add_row("table run (context)", f"{ft['sci_g_per_1000']:.4e}", f"{ft['energy_wh_per_1000']:.4e}",
               f"{ft['latency_p50_ms']:.4f}", f"{ft['latency_p95_ms']:.4f}", f"{ft['cpu_utilisation_percent']:.1f}",
               f"{ft['n_inferences']:,}", "-", f"{ft['time_per_inference_us']:.2f}", f"{ft['average_power_w']:.3f}",
               ft["stop_reason"])
    for label, run, share in (("a", a, rep["batched_share_percent"][0]), ("b", b, rep["batched_share_percent"][1])):
        t2.add_row(label, f"{run['sci_g_per_1000']:.4e}", f"{run['energy_wh_per_1000']:.4e}",
                   f"{run['latency_p50_ms']:.4f}", f"{run['latency_p95_ms']:.4f}", f"{run['cpu_utilisation_percent']:.1f}",
                   f"{run['n_inferences']:,}", f"{share:.1f}", f"{run['time_per_inference_us']:.2f}",
                   f"{run['average_power_w']:.3f}", run["stop_reason"])
    console.print(t2)
    console.print(
        f"Spread between runs a and b: SCI {rep['sci_difference_percent']:.2f} % (|a - b| / mean); single-row p95 "
        f"{rep['p95_difference_percent']:.2f} %, p50 {rep['p50_difference_percent']:.2f} %; CPU utilisation "
        f"{rep['utilisation_difference_points']:+.2f} points (b - a); time per inference "
        f"{rep['time_per_inference_difference_percent']:.2f} %.\n"
        f"SCI_b / SCI_a = {rep['sci_ratio_b_over_a']:.4f} = time per inference ratio {rep['time_per_inference_ratio']:.4f} "
        f"x power term ratio {rep['power_term_ratio']:.4f} (P x I + m; P from utilisation, m the fixed embodied rate)."
    )
    goals = Table(title="Goals")
    for header in ("goal", "measured", "verdict"):
        goals.add_column(header)
    goals.add_row(f"same variant twice: SCI within {rep['goal_percent']:g} % (|a - b| / mean)",
                  f"{rep['sci_difference_percent']:.2f} %", "[green]met[/]" if rep["met"] else "[red]NOT met[/]")
    console.print(goals)
    if not rep["met"]:
        console.print(f"[red]Goal missed[/]: {report['repeat_explanation']}")
    else:
        console.print(f"Why the runs differ: {report['repeat_explanation']}")


def explain(rep: dict) -> str:
    """Which factor carries the difference, in words."""
    speed = abs(math.log(rep["time_per_inference_ratio"]))
    power = abs(math.log(rep["power_term_ratio"]))
    main = "time per inference (the machine's speed during the run)" if speed >= power else \
        "the power term (CPU utilisation through the Teads curve)"
    shares = rep["batched_share_percent"]
    mix = ("" if abs(shares[0] - shares[1]) < 1 else
           f"; the runs also ended with different mixes of single-row and batched inferences "
           f"({shares[0]:.1f} % vs {shares[1]:.1f} % batched), and batched rows cost far less time each")
    return (f"the SCI moved by {rep['sci_difference_percent']:.2f} %, mostly through {main}: time per inference "
            f"x{rep['time_per_inference_ratio']:.4f}, power term x{rep['power_term_ratio']:.4f}; single-row p95 moved "
            f"{rep['p95_difference_percent']:.2f} % and utilisation {rep['utilisation_difference_points']:+.2f} points"
            f"{mix}")


# --- entry point -------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pin_threads(THREADS)

    from threadpoolctl import threadpool_limits

    console = wide_console(180)
    load_before = load_average()
    try:
        with threadpool_limits(limits=THREADS), tempfile.TemporaryDirectory(prefix="bench-sci-") as tmp_name:
            import onnxruntime
            import sklearn

            tmp = Path(tmp_name)
            t0 = time.perf_counter()
            built = build(tmp, args.quick, console)
            build_s = time.perf_counter() - t0
            decision = None  # no gate ran: evaluate_variants takes the region itself
            evaluated = evaluate_all(built, decision, args.max_seconds, console)
            repeated = repeat(built, evaluated, decision, args.max_seconds, tmp, console)
    except BenchError as exc:
        print_error("BENCHMARK ERROR", exc)
        return 1

    first = next(r for r in evaluated["rows"] if r["status"] == "scored")["report"]
    report = {
        "config": {
            "quick": args.quick, "max_seconds": args.max_seconds, "threads": THREADS, "dataset": DATASET,
            "region": REGION, "profile": PROFILE, "intensity_basis": INTENSITY_BASIS, "functional_unit": UNIT,
            "variants": built["variants"], "train_rows": built["train_rows"], "test_rows": built["test_rows"],
            "thread_env": thread_env(),
            "cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "sklearn": sklearn.__version__, "onnxruntime": onnxruntime.__version__,
        },
        "units": {"latency": "ms (measured, wall clock)", "energy": "Wh per 1,000 inferences (method per row)",
                  "sci": "gCO2eq per 1,000 inferences (derived)", "intensity": "gCO2eq/kWh", "time": "s (measured)"},
        # the intensity basis in words (e.g. "mean of the 8784 hourly values of 2024")
        "intensity_basis_text": first["I"]["source"].get("basis"),
        "candidates": built["candidates"],
        "build_wall_s": build_s,
        "evaluation": evaluated,
        "repeat": repeated,
        "load_average": {"before": load_before, "after": load_average()},
    }
    report["repeat_explanation"] = explain(repeated)
    render(console, report)
    report["total_wall_s"] = time.perf_counter() - _BEGAN
    console.print(f"Build (split, training, variants) {build_s:.1f} s; evaluation {evaluated['wall_s']:.1f} s; "
                  f"load average before / after: {report['load_average']['before']} / {report['load_average']['after']}. "
                  f"Total wall time: {report['total_wall_s']:.1f} s.")
    write_figures(args.json, report, console, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
