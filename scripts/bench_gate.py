"""Benchmark the carbon gate's window choice on real data: savings, forecast error, latency.

What it measures
----------------
For every embedded zone (Electricity Maps, hourly, life-cycle signal) and every start hour of
2023, a job of 1, 2 or 4 hours must end within 6, 12 or 24 hours. The gate picks the start with
the lowest forecast average intensity among hourly steps from the start hour (the earliest among
equal averages, the Carbon Aware SDK's rule). One decision's savings are

    (actual avg of the run-now window - actual avg of the chosen window)
        / actual avg of the run-now window x 100

so savings are always *realised* on the recorded data, whatever forecast made the decision.
They are modeled savings in average grid intensity (gCO2eq/kWh) of the job's window, not
measured emissions: a job's energy is assumed the same whenever it runs.

Forecasts
---------
* ``perfect``: the forecast is the actual data. Its choice must be the best possible one (the
  oracle), which a plain numpy brute force computes independently of the library and the
  script asserts per decision.
* ``persistence-24h`` / ``persistence-168h``: the forecast for each hour is the actual value of
  the same hour one day / one week earlier, the usual naive baselines of load and carbon
  forecasting. Every forecast hour lies at most 24 hours after the decision, so the value a
  persistence forecast repeats was already recorded when the decision was made: the forecast
  is realistic (no peeking) and the same for every decision, so one forecast series per zone
  serves the whole year. Each is reported as mean realised savings, as the share of the best
  possible savings it captures (sum of realised / sum of oracle savings) and as the share of
  decisions that did worse than running at once.

How the library is exercised
----------------------------
Per zone and forecast, one ``CarbonSeries`` covers the first start hour to the last deadline
(which reaches into 2024). ``rolling_average`` (the library's window math) is called once per
series and job length, giving the average of every hourly candidate window; the per-start,
per-deadline choice is then a vectorised earliest-minimum over a sliding view of those
averages. A random sample of decisions is recomputed with ``best_window`` itself and must agree
on start and average. Decision latency is timed on a 72-hour, 5-minute forecast.

Usage: python scripts/bench_gate.py [--zones Z1 Z2 ...] [--json PATH]
Exit code 0 on success, 1 when a cross-check fails.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from rich.console import Console
from rich.table import Table

from greenkfp.components.carbon.providers.embedded import ATTRIBUTION, HOUR, EmbeddedData, load_embedded_data
from greenkfp.components.carbon.series import CarbonSeries, from_epoch_seconds
from greenkfp.components.carbon.windows import TIE_RTOL, best_window, rolling_average

from _bench import add_json_option, print_error, wide_console, write_figures

YEAR = 2023
JOB_HOURS = (1, 2, 4)
DEADLINE_HOURS = (6, 12, 24)
# Forecast name -> how many hours earlier the actual value it repeats was recorded (0 = actual).
FORECAST_LAGS = {"perfect": 0, "persistence-24h": 24, "persistence-168h": 168}
IMPERFECT = ("persistence-24h", "persistence-168h")

# The library's tie rule (windows.WindowScores.best_index), shared rather than copied. Equal
# averages do occur (about 0.1% of decisions have tied best windows) and the running integral
# may leave round-off in their last bits, where a bare argmin would pick a later start.
# A realised saving below this (percentage points) is a loss, not round-off.
LOSS_EPS_PP = 1e-9
# Perfect-forecast savings and oracle savings may differ by round-off only.
ORACLE_ATOL_PP = 1e-6

CROSS_CHECK_SAMPLES = 300
CROSS_CHECK_TIES = 30  # extra cases whose best windows tie, to check the earliest-start rule
LATENCY_CALLS = 2000
LATENCY_WARMUP = 100
LATENCY_GOAL_US = 1000.0
SWEEP_GOAL_S = 60.0
SEED = 2023


class CrossCheckError(AssertionError):
    """The vectorised sweep disagrees with the oracle or with ``best_window``."""


# --- the sweep ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Period:
    """The data the sweep needs: columns of the embedded array and their epoch seconds."""

    first_column: int  # column of the first start hour (YEAR-01-01T00:00Z)
    n_starts: int  # start hours in YEAR
    n_hours: int  # hours from the first start to the latest deadline

    def start_epoch(self, data: EmbeddedData) -> int:
        return data.start_epoch_s + self.first_column * HOUR


def sweep_period(data: EmbeddedData) -> Period:
    begin = int(datetime(YEAR, 1, 1, tzinfo=timezone.utc).timestamp())
    end = int(datetime(YEAR + 1, 1, 1, tzinfo=timezone.utc).timestamp())
    first_column = (begin - data.start_epoch_s) // HOUR
    n_starts = (end - begin) // HOUR
    # The last start hour's longest deadline ends max(DEADLINE_HOURS) hours later, in YEAR + 1.
    n_hours = n_starts - 1 + max(DEADLINE_HOURS)
    if first_column - max(FORECAST_LAGS.values()) < 0 or first_column + n_hours > data.hours:
        raise ValueError(f"the embedded data does not cover {YEAR} with its forecast history and deadlines")
    return Period(first_column, n_starts, n_hours)


def build_series(data: EmbeddedData, row: int, period: Period) -> dict[str, CarbonSeries]:
    """One series per forecast over the sweep period; a persistence forecast is the actual data
    shifted by its lag, stamped with the hours it forecasts."""
    actual = data.intensities["lifecycle"][row]
    starts = period.start_epoch(data) + HOUR * np.arange(period.n_hours, dtype=np.int64)
    series = {}
    for name, lag in FORECAST_LAGS.items():
        first = period.first_column - lag
        series[name] = CarbonSeries.from_arrays(starts, actual[first : first + period.n_hours], HOUR)
    return series


def window_averages(series: CarbonSeries, job_h: int) -> np.ndarray:
    """Average of every hourly candidate window of ``job_h`` hours, index = start hour offset
    into the series. This is the library's window math (``rolling_average``)."""
    scores = rolling_average(series, timedelta(hours=job_h))
    expected = series.starts[: len(scores)]
    if len(scores) != len(series) - job_h + 1 or not np.array_equal(scores.starts, expected):
        raise CrossCheckError(f"rolling_average did not return one window per hour for a {job_h} h job")
    return scores.averages


def earliest_minimum(candidates: np.ndarray) -> np.ndarray:
    """Per row, the index of the lowest value, earliest among ties (see TIE_RTOL)."""
    lowest = candidates.min(axis=1)
    tolerance = TIE_RTOL * np.maximum(1.0, np.abs(lowest))
    return (candidates <= (lowest + tolerance)[:, None]).argmax(axis=1)


def choose_offsets(averages: np.ndarray, job_h: int, deadline_h: int, n_starts: int) -> np.ndarray:
    """For each start hour, hours from it to the chosen start. The candidates of start ``i`` are
    the windows starting at ``i .. i + deadline_h - job_h`` (the job must end by the deadline)."""
    candidates = sliding_window_view(averages, deadline_h - job_h + 1)[:n_starts]
    return earliest_minimum(candidates)


def savings_percent(run_now: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    if np.any(run_now <= 0):
        raise ValueError("a run-now window has a non-positive average intensity; savings % is undefined")
    return 100.0 * (run_now - chosen) / run_now


def oracle_savings(actual: np.ndarray, job_h: int, deadline_h: int, n_starts: int) -> np.ndarray:
    """Best possible savings per start hour by brute force on the raw hourly values: the plain
    mean of every window, then the minimum over each start's candidates. Shares no code with
    the library, so it checks it."""
    means = sliding_window_view(actual, job_h).mean(axis=1)
    best = sliding_window_view(means, deadline_h - job_h + 1)[:n_starts].min(axis=1)
    return savings_percent(means[:n_starts], best)


@dataclass
class SweepResult:
    zones: tuple[str, ...]
    savings: dict[str, np.ndarray]  # forecast -> (zone, job, deadline, start) realised savings %
    offsets: dict[str, np.ndarray]  # forecast -> (zone, job, deadline, start) chosen delay, hours
    oracle: np.ndarray  # (zone, job, deadline, start) best possible savings %
    series: dict[str, dict[str, CarbonSeries]]  # zone -> forecast -> series, for the cross-check


def run_sweep(data: EmbeddedData, zones: tuple[str, ...], period: Period) -> SweepResult:
    shape = (len(zones), len(JOB_HOURS), len(DEADLINE_HOURS), period.n_starts)
    savings = {name: np.empty(shape) for name in FORECAST_LAGS}
    offsets = {name: np.empty(shape, dtype=np.int16) for name in FORECAST_LAGS}
    oracle = np.empty(shape)
    all_series = {}
    for z, zone in enumerate(zones):
        series = build_series(data, data.zones.index(zone), period)
        all_series[zone] = series
        start_hours = np.arange(period.n_starts)
        for j, job_h in enumerate(JOB_HOURS):
            forecast_avg = {name: window_averages(s, job_h) for name, s in series.items()}
            actual_avg = forecast_avg["perfect"]  # the perfect forecast is the actual data
            run_now = actual_avg[: period.n_starts]
            for d, deadline_h in enumerate(DEADLINE_HOURS):
                oracle[z, j, d] = oracle_savings(series["perfect"].values, job_h, deadline_h, period.n_starts)
                for name, averages in forecast_avg.items():
                    delay = choose_offsets(averages, job_h, deadline_h, period.n_starts)
                    offsets[name][z, j, d] = delay
                    # Realised: the decision came from the forecast, the savings from the actual data.
                    savings[name][z, j, d] = savings_percent(run_now, actual_avg[start_hours + delay])
    return SweepResult(zones, savings, offsets, oracle, all_series)


# --- checks ------------------------------------------------------------------------------------
def check_oracle(result: SweepResult) -> dict:
    """A perfect forecast must get the best possible savings in every single decision."""
    diff = np.abs(result.savings["perfect"] - result.oracle)
    worst = float(diff.max())
    if worst > ORACLE_ATOL_PP:
        z, j, d, i = np.unravel_index(int(diff.argmax()), diff.shape)
        raise CrossCheckError(
            f"perfect-forecast savings differ from the brute-force oracle by {worst:.3g} pp "
            f"(zone {result.zones[z]}, {JOB_HOURS[j]} h job, {DEADLINE_HOURS[d]} h deadline, start hour {i})"
        )
    return {
        "decisions": int(diff.size),
        "perfect_mean_savings_percent": float(result.savings["perfect"].mean()),
        "oracle_mean_savings_percent": float(result.oracle.mean()),
        "max_abs_diff_pp": worst,
        "tolerance_pp": ORACLE_ATOL_PP,
    }


def sample_cases(result: SweepResult, samples: int, ties: int, rng: np.random.Generator) -> dict[str, list]:
    """Decisions to recompute, as (zone, forecast, job, deadline, start) indices.

    ``random``: uniform over all of them. ``year_edges``: the first and last start hour of the
    year (whose deadlines reach into the next year) for every job and deadline. ``ties``:
    decisions whose best windows tie, drawn from randomly visited groups, so the earliest-start
    rule is checked too (a uniform sample would hold only a few)."""
    names = tuple(FORECAST_LAGS)
    n_zones, n_jobs, n_deadlines, n_starts = result.oracle.shape
    shape = (n_zones, len(names), n_jobs, n_deadlines, n_starts)
    cases: dict[str, list] = {"random": [], "year_edges": [], "ties": []}
    for flat in rng.integers(int(np.prod(shape)), size=samples):
        cases["random"].append(tuple(int(x) for x in np.unravel_index(flat, shape)))
    for j in range(n_jobs):
        for d in range(n_deadlines):
            for i in (0, n_starts - 1):
                cases["year_edges"].append((int(rng.integers(n_zones)), int(rng.integers(len(names))), j, d, i))
    for flat in rng.permutation(int(np.prod(shape[:4]))):
        if len(cases["ties"]) >= ties:
            break
        z, f, j, d = (int(x) for x in np.unravel_index(flat, shape[:4]))
        averages = window_averages(result.series[result.zones[z]][names[f]], JOB_HOURS[j])
        candidates = sliding_window_view(averages, DEADLINE_HOURS[d] - JOB_HOURS[j] + 1)[:n_starts]
        lowest = candidates.min(axis=1, keepdims=True)
        tied = np.flatnonzero((candidates <= lowest * (1 + TIE_RTOL)).sum(axis=1) > 1)
        if tied.size:
            cases["ties"].append((z, f, j, d, int(rng.choice(tied))))
    return cases


def cross_check_best_window(result: SweepResult, samples: int, ties: int, rng: np.random.Generator) -> dict:
    """Recompute sampled decisions with ``best_window`` itself: same start, same average."""
    names = tuple(FORECAST_LAGS)
    cases = sample_cases(result, samples, ties, rng)
    for z, f, j, d, i in (case for group in cases.values() for case in group):
        zone, name, job_h, deadline_h = result.zones[z], names[f], JOB_HOURS[j], DEADLINE_HOURS[d]
        series = result.series[zone][name]
        start = from_epoch_seconds(series.starts[i])
        choice = best_window(series, timedelta(hours=job_h), start, start + timedelta(hours=deadline_h))
        chosen = i + int(result.offsets[name][z, j, d, i])
        expected_start = from_epoch_seconds(series.starts[chosen])
        expected_avg = float(series.values[chosen : chosen + job_h].mean())
        case = f"{zone} {name} {job_h} h job {deadline_h} h deadline from {start.isoformat()}"
        if choice.best.start != expected_start:
            raise CrossCheckError(
                f"{case}: best_window starts {choice.best.start.isoformat()}, the sweep {expected_start.isoformat()}"
            )
        if not np.isclose(choice.best.average, expected_avg, rtol=1e-9, atol=0.0):
            raise CrossCheckError(f"{case}: best_window average {choice.best.average}, the sweep {expected_avg}")
    counts = {group: len(found) for group, found in cases.items()}
    return {"cases": sum(counts.values()), **counts}


# --- figures -----------------------------------------------------------------------------------
def figures_for(savings: np.ndarray, oracle: np.ndarray, offsets: np.ndarray) -> dict:
    """Mean realised savings, share of the oracle's savings captured, share of losing decisions."""
    return {
        "mean_savings_percent": float(savings.mean()),
        "captured_percent_of_best": float(100.0 * savings.sum() / oracle.sum()),
        "worse_than_now_percent": float(100.0 * np.mean(savings < -LOSS_EPS_PP)),
        "mean_delay_hours": float(offsets.mean()),
        "decisions": int(savings.size),
    }


def summarise(result: SweepResult) -> dict:
    def group(index) -> dict:
        out = {name: figures_for(result.savings[name][index], result.oracle[index], result.offsets[name][index])
               for name in FORECAST_LAGS}
        out["oracle_mean_savings_percent"] = float(result.oracle[index].mean())
        return out

    return {
        "overall": group(np.s_[...]),
        "by_zone": {zone: group(np.s_[z]) for z, zone in enumerate(result.zones)},
        "by_job_deadline": [
            {"job_hours": job_h, "deadline_hours": deadline_h, **group(np.s_[:, j, d])}
            for j, job_h in enumerate(JOB_HOURS)
            for d, deadline_h in enumerate(DEADLINE_HOURS)
        ],
        "by_zone_job_deadline": [
            {"zone": zone, "job_hours": job_h, "deadline_hours": deadline_h, **group(np.s_[z, j, d])}
            for z, zone in enumerate(result.zones)
            for j, job_h in enumerate(JOB_HOURS)
            for d, deadline_h in enumerate(DEADLINE_HOURS)
        ],
    }


# --- latency -----------------------------------------------------------------------------------
def latency_series(data: EmbeddedData, zone: str, period: Period, rng: np.random.Generator) -> CarbonSeries:
    """A 72-hour forecast at 5-minute granularity: a real zone's first 72 hours of YEAR repeated
    to 5-minute points, with 2% seeded noise so neighbouring points differ as in a real one."""
    hourly = data.intensities["lifecycle"][data.zones.index(zone), period.first_column : period.first_column + 72]
    values = np.repeat(hourly, 12) * (1.0 + 0.02 * rng.standard_normal(72 * 12))
    starts = period.start_epoch(data) + 300 * np.arange(values.size, dtype=np.int64)
    return CarbonSeries.from_arrays(starts, np.clip(values, 0.0, None), 300)


def measure_latency(series: CarbonSeries, calls: int) -> dict:
    """Time one ``best_window`` decision (4-hour job, deadline 72 h ahead) ``calls`` times."""
    start, deadline, duration = series.start, series.start + timedelta(hours=72), timedelta(hours=4)
    for _ in range(LATENCY_WARMUP):  # first calls pay for imports and caches, not the search
        best_window(series, duration, start, deadline)
    timings = np.empty(calls)
    for k in range(calls):
        t0 = time.perf_counter()
        choice = best_window(series, duration, start, deadline)
        timings[k] = time.perf_counter() - t0
    micros = timings * 1e6
    median, p95 = float(np.median(micros)), float(np.percentile(micros, 95))
    return {
        "calls": calls,
        "points": len(series),
        "granularity_minutes": series.granularity_s // 60,
        "candidates_per_decision": choice.candidates,
        "median_us": median,
        "p95_us": p95,
        "goal_us": LATENCY_GOAL_US,
        "goal_met": p95 <= LATENCY_GOAL_US,
    }


# --- output ------------------------------------------------------------------------------------
def pct(value: float) -> str:
    return f"{value:.2f}"


def savings_columns(table: Table) -> None:
    table.add_column("perfect\nsaved %", justify="right")
    for name in IMPERFECT:
        short = name.replace("persistence-", "p")
        table.add_column(f"{short}\nsaved %", justify="right")
        table.add_column(f"{short}\ncapt. %", justify="right")
        table.add_column(f"{short}\nworse %", justify="right")


def savings_cells(group: dict) -> list[str]:
    cells = [pct(group["perfect"]["mean_savings_percent"])]
    for name in IMPERFECT:
        f = group[name]
        cells += [pct(f["mean_savings_percent"]), pct(f["captured_percent_of_best"]), pct(f["worse_than_now_percent"])]
    return cells


def render(console: Console, report: dict, estimated: dict[str, bool]) -> None:
    console.rule(f"[bold]greenkfp carbon gate benchmark: {YEAR}, {len(report['zones'])} zones")
    console.print(
        f"Every start hour of {YEAR}, jobs of {', '.join(map(str, JOB_HOURS))} h that must end within "
        f"{', '.join(map(str, DEADLINE_HOURS))} h; candidate starts step hourly, earliest among equal averages wins.\n"
        "[bold]Savings[/] = (actual avg intensity of the run-now window - actual avg of the chosen window) / "
        "actual avg of the run-now window x 100, in % of gCO2eq/kWh, REALISED on the recorded data whatever "
        "forecast made the choice. Means are over all decisions in the group.\n"
        "[bold]capt. %[/] = sum of realised savings / sum of best possible (oracle) savings x 100. "
        "[bold]worse %[/] = share of decisions whose chosen window was dirtier than running at once.\n"
        "Forecasts: perfect = the actual data; p24h / p168h = persistence, each hour forecast as the actual value "
        "one day / one week earlier.\n"
        "[italic]These are modeled savings in average grid intensity (gCO2eq/kWh) of the job's window, "
        "not measured emissions.[/]\n"
        f"{ATTRIBUTION} Signal: life-cycle (LCA)."
    )
    oracle = report["checks"]["oracle"]
    cross = report["checks"]["best_window"]
    console.print(
        f"[green]Oracle check passed[/]: perfect-forecast mean savings {oracle['perfect_mean_savings_percent']:.4f} % "
        f"= brute-force oracle {oracle['oracle_mean_savings_percent']:.4f} %; equal in all {oracle['decisions']:,} "
        f"decisions (max |diff| {oracle['max_abs_diff_pp']:.1e} pp).\n"
        f"[green]Cross-check passed[/]: best_window agrees with the vectorised sweep on start and average in "
        f"{cross['cases']} cases ({cross['random']} random, {cross['year_edges']} first/last start hours, "
        f"{cross['ties']} with tied best windows)."
    )

    overall = Table(title="Overall (all zones, jobs and deadlines)")
    for header in ("forecast", "mean saved %", "capt. % of best", "worse than now %", "mean delay h"):
        overall.add_column(header, justify="left" if header == "forecast" else "right", no_wrap=header == "forecast")
    for name in FORECAST_LAGS:
        f = report["overall"][name]
        overall.add_row(name, pct(f["mean_savings_percent"]), pct(f["captured_percent_of_best"]),
                        pct(f["worse_than_now_percent"]), f"{f['mean_delay_hours']:.2f}")
    console.print(overall)

    by_zone = Table(title="Mean savings % by zone (averaged over jobs and deadlines)")
    by_zone.add_column("zone", no_wrap=True)
    savings_columns(by_zone)
    for zone in report["zones"]:
        by_zone.add_row(zone + (" *" if estimated[zone] else ""), *savings_cells(report["by_zone"][zone]))
    if any(estimated[z] for z in report["zones"]):
        by_zone.caption = "* data entirely estimated by Electricity Maps"
    console.print(by_zone)

    by_job = Table(title="Mean savings % by job and deadline (averaged over zones)")
    by_job.add_column("job h", justify="right")
    by_job.add_column("deadline h", justify="right")
    savings_columns(by_job)
    for row in report["by_job_deadline"]:
        by_job.add_row(str(row["job_hours"]), str(row["deadline_hours"]), *savings_cells(row))
    console.print(by_job)

    latency, timing = report["latency"], report["timing"]
    verdict = lambda met: "[green]met[/]" if met else "[red]NOT met[/]"  # noqa: E731
    console.print(
        f"Decision latency (best_window, {latency['points']}-point {latency['granularity_minutes']}-minute 72 h "
        f"forecast, 4 h job, {latency['candidates_per_decision']} candidates, {latency['calls']} calls): "
        f"median {latency['median_us']:.0f} us, p95 {latency['p95_us']:.0f} us; goal p95 <= "
        f"{latency['goal_us']:.0f} us: {verdict(latency['goal_met'])}.\n"
        f"Sweep wall time: {timing['sweep_s']:.2f} s for {report['overall']['perfect']['decisions']:,} decisions "
        f"x {len(FORECAST_LAGS)} forecasts; goal < {SWEEP_GOAL_S:.0f} s: {verdict(timing['sweep_goal_met'])}. "
        f"Cross-check {timing['cross_check_s']:.2f} s, latency {timing['latency_s']:.2f} s."
    )


# --- entry point -------------------------------------------------------------------------------
def parse_args(argv: list[str] | None, zones: tuple[str, ...]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--zones", nargs="+", metavar="ZONE", help=f"zones to sweep (default all: {' '.join(zones)})")
    add_json_option(parser)
    args = parser.parse_args(argv)
    if args.zones:
        args.zones = [z.strip().upper() for z in args.zones]
        unknown = [z for z in args.zones if z not in zones]
        if unknown:
            parser.error(f"--zones: unknown zone(s) {', '.join(unknown)}; choose from {', '.join(zones)}")
    return args


def main(argv: list[str] | None = None) -> int:
    began = time.perf_counter()
    data = load_embedded_data()
    args = parse_args(argv, data.zones)
    zones = tuple(dict.fromkeys(args.zones)) if args.zones else data.zones
    console = wide_console(112)
    rng = np.random.default_rng(SEED)

    period = sweep_period(data)
    try:
        result = run_sweep(data, zones, period)
        sweep_s = time.perf_counter() - began  # includes loading the data and building the series
        t0 = time.perf_counter()
        checks = {
            "oracle": check_oracle(result),
            "best_window": cross_check_best_window(result, CROSS_CHECK_SAMPLES, CROSS_CHECK_TIES, rng),
        }
        cross_check_s = time.perf_counter() - t0
    except CrossCheckError as exc:
        print_error("CROSS-CHECK FAILED", exc)
        return 1

    t0 = time.perf_counter()
    latency = measure_latency(latency_series(data, zones[0], period, rng), LATENCY_CALLS)
    latency_s = time.perf_counter() - t0

    report = {
        "year": YEAR,
        "zones": list(zones),
        "job_hours": list(JOB_HOURS),
        "deadline_hours": list(DEADLINE_HOURS),
        "forecasts": {
            name: f"actual value {lag} h earlier" if lag else "actual data" for name, lag in FORECAST_LAGS.items()
        },
        "signal": "lifecycle",
        "units": "savings in % of the run-now window's average intensity (gCO2eq/kWh); delays in hours",
        "note": "modeled savings in average grid intensity of the job's window, not measured emissions",
        "attribution": ATTRIBUTION,
        "checks": checks,
        **summarise(result),
        "latency": latency,
        "timing": {
            "sweep_s": sweep_s,
            "sweep_goal_s": SWEEP_GOAL_S,
            "sweep_goal_met": sweep_s < SWEEP_GOAL_S,
            "cross_check_s": cross_check_s,
            "latency_s": latency_s,
        },
    }
    render(console, report, data.fully_estimated)
    report["timing"]["total_s"] = time.perf_counter() - began
    console.print(f"Total wall time: {report['timing']['total_s']:.2f} s.")
    write_figures(args.json, report, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
