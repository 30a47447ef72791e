"""The ``greenkfp`` command: compile pipelines, run them locally, read a carbon forecast.

Only wiring: the logic lives in ``greenkfp.components`` and ``greenkfp.pipelines``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from greenkfp.components._messages import shorten

if TYPE_CHECKING:
    from greenkfp.components.records import GateDecisionRecord
    from greenkfp.pipelines.local import CandidateRun, TrainingRun

# Tables need room: when output is piped (CI logs, `make demo | tee`), rich would assume 80 columns.
console = Console(width=None if sys.stdout.isatty() else 140)


def _add_gate_arguments(parser: argparse.ArgumentParser, *, local: bool = False) -> None:
    from greenkfp.components.parameters import GATE
    from greenkfp.pipelines.options import add_spec_options

    add_spec_options(parser, GATE, local=local)
    _add_provider_option_arguments(parser)


def _add_provider_option_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--replay-year", type=int, default=None,
                        help="embedded provider: replay this data year (in every step that prices carbon)")
    parser.add_argument("--provider-option", action="append", default=[], metavar="PROVIDER.OPTION=VALUE",
                        help="a provider option (JSON value or text), e.g. uk.base_url=http://127.0.0.1:8080; "
                             "repeatable; added to --provider-options; reaches every step that prices carbon")


def _provider_options(args: argparse.Namespace) -> dict:
    """The one shape, {provider: {option: value}}, from --provider-options, --provider-option and
    --replay-year (later ones win), checked."""
    from greenkfp.components.carbon import parse_provider_options

    options: dict = {name: dict(values) if isinstance(values, dict) else values
                     for name, values in (getattr(args, "provider_options", None) or {}).items()}
    for text in args.provider_option:
        key, value = _pair(text, "--provider-option")
        provider, dot, option = key.partition(".")
        if not dot or not option:
            raise ValueError(f"--provider-option must look like PROVIDER.OPTION=VALUE, got {text!r}")
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass  # plain text, such as a URL
        options.setdefault(provider, {})[option] = value
    if args.replay_year is not None:
        given = options.get("embedded", {}).get("replay_year")
        if given is not None and given != args.replay_year:
            raise ValueError(f"--replay-year {args.replay_year} contradicts replay_year {given!r} in the provider "
                             "options: give one")
        options.setdefault("embedded", {})["replay_year"] = args.replay_year
    return parse_provider_options(options)


def _print_decision(record: GateDecisionRecord, title: str) -> None:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for label, value in record.rows():
        table.add_row(label, value)
    console.print(table)


def _print_regions(record: GateDecisionRecord) -> None:
    if len(record.regions) < 2:
        return
    table = Table(title="candidate regions", title_justify="left")
    for column in ("region", "source", "run now", "best window (UTC)", "best average"):
        table.add_column(column)
    for row in record.region_rows():
        table.add_row(*row)
    console.print(table)
    console.print("[dim]intensities in gCO2eq/kWh, averaged over the job's duration[/dim]")


def _pair(text: str, option: str, separator: str = "=") -> tuple[str, str]:
    key, sep, value = text.partition(separator)
    if not sep or not key:
        raise ValueError(f"{option} must look like KEY{separator}VALUE, got {text!r}")
    return key, value


def _kubeflow_settings(args: argparse.Namespace):
    from greenkfp.pipelines.platform import KubeflowSettings

    options = {}
    for name in ("team", "cost_center", "carbon_tier", "credentials_secret"):
        if getattr(args, name, None):
            options[name] = getattr(args, name)
    if args.no_spot:
        options["spot"] = False
    if args.spot_node_selector:
        options["spot_node_selector"] = _pair(args.spot_node_selector, "--spot-node-selector")
    if args.spot_toleration:
        key, rest = _pair(args.spot_toleration, "--spot-toleration")
        value, _, effect = rest.rpartition(":")
        options["spot_toleration"] = (key, value, effect)
    if options and args.check:
        raise ValueError("--check compares with the default settings; drop the Kubeflow options")
    return KubeflowSettings(**options) if options else None


def cmd_compile(args: argparse.Namespace) -> int:
    if args.package_spec and not args.portable:
        raise ValueError("--package-spec goes with --portable")
    if args.package_spec:
        from greenkfp.components._runtime import check_package_spec

        check_package_spec(args.package_spec)
    out = Path(args.output_dir)
    if str(args.output_dir).strip() == "" or (out.exists() and not out.is_dir()):
        raise ValueError(f"--output-dir must be a directory, got {args.output_dir!r}")
    if args.portable:
        os.environ["GREENKFP_PORTABLE"] = "1"  # read when the components are first imported
        if args.package_spec:
            os.environ["GREENKFP_PACKAGE_SPEC"] = args.package_spec
    from greenkfp.pipelines.compile import compile_all, drift

    settings = _kubeflow_settings(args)
    if args.check:
        problems = drift(args.output_dir)
        for problem in problems:
            console.print(f"[red]drift[/red] {problem}")
        if not problems:
            console.print(f"{args.output_dir} matches a fresh compile")
        return 1 if problems else 0
    for path in compile_all(args.output_dir, settings):
        console.print(f"wrote {path}")
    return 0


def _gate_arguments(args: argparse.Namespace) -> dict:
    from greenkfp.components.parameters import GATE
    from greenkfp.pipelines.options import spec_values

    values = spec_values(args, GATE)
    values["provider_options"] = _provider_options(args)
    return values


def _print_trainings(runs: Sequence[CandidateRun]) -> None:
    table = Table(title="trained candidates (energy: CodeCarbon; emissions priced two ways)", title_justify="left")
    for column in ("candidate", "accuracy", "macro F1", "fit s", "energy Wh", "method",
                   "mg CO2eq, CodeCarbon", "mg CO2eq, hourly grid"):
        table.add_column(column, justify="left" if column in ("candidate", "method") else "right")
    trainings = sorted((run.training for run in runs), key=lambda t: t.name)
    for t in trainings:
        table.add_row(*t.row())
    console.print(table)
    if trainings:
        emissions = trainings[0].emissions
        console.print(f"[dim]CodeCarbon: {emissions.codecarbon_basis}. Hourly grid: {emissions.hourly_or_reason}.[/dim]")
        if any(t.energy.method == "modeled" for t in trainings):
            from greenkfp.components.energy import MODELED_ERROR_RANGE

            console.print("[dim]modeled energy: CodeCarbon's TDP model (no RAPL here); its documentation puts "
                          f"the error at {MODELED_ERROR_RANGE}.[/dim]")


def _print_variants(runs: Sequence[CandidateRun]) -> None:
    table = Table(title="ONNX variants: parity on the test split and SCI of their inference (median [95 % interval])",
                  title_justify="left")
    columns = ("candidate", "variant", "accuracy", "change pts", "KiB", "MACs", "p95 ms",
               "µWh/1k inf.", "SCI µg/1k inf.", "eligible / why not")
    for column in columns:
        table.add_column(column, justify="left" if column in ("candidate", "variant", "eligible / why not") else "right",
                         no_wrap=column in ("p95 ms", "µWh/1k inf.", "SCI µg/1k inf."))
    skipped, notes = [], set()
    for run in sorted(runs, key=lambda r: r.name):
        notes.update(run.sci.notes())
        for v in run.variants:
            if not v.produced:
                skipped.append(f"{run.name} {v.name}: {str(v.reason).split(':')[0]}")
                continue
            scored = run.sci.get(v.name)
            figures = ("", "", "", "")
            if scored is not None and scored.scored:
                energy, sci = scored.energy_per_inference_kwh_interval, scored.sci_interval
                macs = "-" if scored.macs is None else (f"{scored.tree_comparisons:,} cmp" if scored.tree_comparisons
                                                        and not scored.macs else f"{scored.macs:,}")
                # kWh per inference x 1e12 = µWh per 1,000 inferences; g per 1,000 x 1e6 = µg per 1,000
                p95 = scored.latency_p95_ms_interval
                figures = (macs, f"{p95.estimate:.3g} [{p95.low:.3g}-{p95.high:.3g}]" if p95 else f"{scored.latency_p95_ms:.4f}",
                           _interval_text(energy, 1e12) if energy else f"{scored.energy_per_inference_kwh * 1e12:.3g}",
                           _interval_text(sci, 1e6 * 1000 / _per(scored)) if sci else
                           f"{scored.sci * 1e6 * 1000 / _per(scored):.3g}")
            table.add_row(
                run.name, v.name, f"{v.accuracy:.4f}", f"{v.accuracy_change_points:+.2f}",
                f"{v.size_bytes / 1024:.1f}", *figures, "yes" if v.eligible else f"no: {v.eligibility_reason}",
            )
    console.print(table)
    for note in sorted(notes):
        console.print(f"[dim]{note}; modeled energy (no RAPL here) from CPU utilisation on the Teads power curve.[/dim]")
    if skipped:
        console.print("[dim]not produced (expected for tree and linear models, whose ai.onnx.ml operators the "
                      "quantizers leave alone; details in each variant_list):\n  " + "\n  ".join(skipped) + "[/dim]")


def _per(entry) -> float:
    """The size of the entry's functional unit (1,000 in 'per 1,000 inferences')."""
    if entry.report is not None:
        unit = entry.report.extra.get("R", {}).get("functional_unit", {})
        if unit.get("per"):
            return float(unit["per"])
    return 1000.0


def _interval_text(figure, scale: float = 1.0) -> str:
    """``9.55 [9.50-9.59]e-06``: the estimate and its 95 % interval sharing one exponent."""
    import math

    value, low, high = figure.estimate * scale, figure.low * scale, figure.high * scale
    exponent = math.floor(math.log10(abs(value))) if value else 0
    if -2 <= exponent <= 3:
        return f"{value:.3g} [{low:.3g}-{high:.3g}]"  # e.g. 8.33 [8.29-8.36]
    factor = 10.0 ** exponent
    return f"{value / factor:.2f} [{low / factor:.2f}-{high / factor:.2f}]e{exponent:+03d}"


def _print_report(result: TrainingRun) -> None:
    report, selection = result.report, result.selection
    if selection:
        console.print(f"[bold]{selection.verdict}[/bold]: {selection.reason}")
    if not report:
        return
    from greenkfp.components.reporting.sustainability import mass_text, saving_cells

    table = Table(title="sustainability report: as scheduled vs as optimized (CO2eq, estimated; 3 significant "
                        "figures)", title_justify="left")
    for column in ("", "scheduled", "optimized", "saved [95 % interval]", "saved % [95 % interval]"):
        table.add_column(column, justify="left" if not column else "right")

    def g(value):
        return mass_text(value).removesuffix(" CO2eq")

    waited = report.training.realized is not False
    labels = {"training": "training (fit energy: run-now vs the gate's window"
                          + (")" if waited else "; plan mode: not waited)"),
              "inference": f"inference ({report.inference.expected_inferences:,.0f} inferences)",
              "total": "total" if waited else "total, had training waited (plan mode: not realized)"}
    for part, scheduled, optimized, saved, _ in report.rows():
        saving = report.saving(part)
        if saving is None:
            table.add_row(labels[part], g(scheduled), g(optimized), g(saved), "")
            continue
        table.add_row(labels[part], g(scheduled), g(optimized), *saving_cells(saving))
    console.print(table)
    if selection and selection.significance:  # None or {} without a baseline
        verdicts = "; ".join(f"{name}: {item['verdict']}" for name, item in selection.significance.items())
        console.print(f"selected {selection.chosen} against the baseline {selection.baseline}: {verdicts}")
    if report.comparison_text:
        console.print(report.comparison_text)
    console.print("[dim]" + " ".join(report.caveats) + "[/dim]")
    console.print(f"HTML report: {result.report_html}\nselection report: {result.selection_html}")
    if result.serving_manifests:
        console.print(f"serving manifests (kubectl apply -f; a local run's storage URI is a file:// path on this "
                      f"machine, see greenkfp serving deploy-manifests --storage-uri): {result.serving_manifests}")


def _print_task_event(event, screen) -> None:
    try:
        _show_task_event(event, Console(file=screen, width=console.width))
    except (BrokenPipeError, OSError, ValueError):  # the screen went away (`| head`): the log keeps it all
        pass


def _show_task_event(event, out: Console) -> None:
    if event.kind == "started":
        out.print(f"[dim]  started  {event.task}[/dim]")
    elif event.kind == "waiting":
        out.print(f"  waiting  {event.task}: {event.status} until the green window (Ctrl-C stops the run)")
    elif event.status == "SUCCESS":
        out.print(f"  [green]done[/green]     {event.task} ({event.seconds:.1f} s)")
    else:
        out.print(f"  [red]{event.status.lower()}[/red]   {event.task} ({event.seconds:.1f} s)")


class _Tee:
    """--verbose: the log and the screen both get the tasks' full output; a screen that went
    away (`| head`) is dropped, the log keeps everything."""

    def __init__(self, *streams):
        self._streams = list(streams)

    def write(self, text: str) -> int:
        for stream in list(self._streams):
            try:
                stream.write(text)
            except (BrokenPipeError, ValueError):  # a closed pipe or file
                self._streams.remove(stream)
        return len(text)

    def flush(self) -> None:
        for stream in list(self._streams):
            try:
                stream.flush()
            except (BrokenPipeError, ValueError):
                self._streams.remove(stream)


def _check_summary_path(text: str, pipeline: str) -> Path:
    """--summary-json's path, checked before anything runs: a file in an existing, writable folder."""
    if pipeline != "training":
        raise ValueError("--summary-json goes with --pipeline training")
    if not str(text).strip() or str(text).endswith(("/", os.sep)):
        raise ValueError(f"--summary-json must name a file, got {text!r}")
    try:
        path = Path(text).expanduser()
    except RuntimeError as exc:  # ~nouser
        raise ValueError(f"--summary-json {text!r}: {exc}") from None
    try:
        return _check_summary_file(path, text)
    except OSError as exc:  # a name too long, a loop of links...
        raise ValueError(f"--summary-json {shorten(text)}: {exc.strerror or exc}") from None


def _check_summary_file(path: Path, text: str) -> Path:
    if path.is_dir():
        raise ValueError(f"--summary-json must be a file path, got the directory {text!r}")
    if path.is_symlink() or (path.exists() and not path.is_file()):
        # the summary is written by renaming a new file over the path: that would replace a device,
        # a FIFO or a link (and, as root, even /dev/null) instead of writing to it
        raise ValueError(f"--summary-json must be a regular file or a new path, got {text!r}")
    if str(path.resolve().parent).startswith(("/proc", "/sys", "/dev")):
        raise ValueError(f"--summary-json must be an ordinary file, not under /proc, /sys or /dev: {text!r}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"--summary-json: no such directory {str(folder)!r} for {text!r}")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f"--summary-json: cannot write {text!r} (permission denied)")
    return path


def cmd_run_local(args: argparse.Namespace) -> int:
    from greenkfp.components.parameters import GATE
    from greenkfp.pipelines.options import (
        check_gate_only,
        check_gate_values,
        check_local_training,
        prepare_pipeline_root,
        read_candidates,
    )
    from greenkfp.pipelines.local import ProgressLog, new_run_directory, run_carbon_gate_locally, run_training_locally

    arguments = _gate_arguments(args)
    if args.pipeline == "training":
        from greenkfp.components.parameters import TRAINING
        from greenkfp.pipelines.options import spec_values

        arguments.update(spec_values(args, TRAINING))
        if args.candidates:
            arguments["candidates"] = read_candidates(args.candidates)
        check_local_training(arguments)
    else:
        check_gate_only(args)
    check_gate_values({name: arguments[name] for name in GATE})
    summary_path = _check_summary_path(args.summary_json, args.pipeline) if args.summary_json is not None else None
    run_dir = new_run_directory(prepare_pipeline_root(args.pipeline_root))
    log_path = run_dir / "run.log"
    console.print(f"running the {args.pipeline} pipeline with kfp's local runner: run {run_dir.name} "
                  f"(outputs and log under {run_dir})")
    screen = console.file  # the terminal, while stdout goes to the log
    with open(log_path, "w", encoding="utf-8") as log:
        progress = ProgressLog(log, lambda event: _print_task_event(event, screen))
        try:
            with contextlib.redirect_stdout(progress if not args.verbose else _Tee(progress, screen)):
                if args.pipeline == "gate":
                    result = run_carbon_gate_locally(arguments, run_dir)
                else:
                    result = run_training_locally(arguments, run_dir)
        except RuntimeError:
            if progress.failed is None:
                raise
            failed = progress.failed
            console.print(f"[red]error:[/red] task {failed.task} failed: {failed.error or 'see the log'}", soft_wrap=True)
            console.print(f"full log: {log_path}")
            if summary_path is not None:  # never leave an earlier run's outcome where this run's belongs
                from greenkfp.components._files import write_atomic
                from greenkfp.pipelines.local import failed_summary

                write_atomic(summary_path, json.dumps(failed_summary(failed.task, failed.error, run_dir),
                                                      indent=2, sort_keys=True) + "\n")
                console.print(f"summary (failed run): {summary_path}")
            return 1
    if args.pipeline == "gate":
        title = f"carbon-forecast gate: branch '{result.branch}' ran"
    else:
        title = "carbon-forecast gate"
    _print_decision(result.decision, title)
    _print_regions(result.decision)
    if args.pipeline == "training":
        if args.mode == "plan" and result.decision.action == "wait":
            console.print("[dim]mode plan: the gate decided without sleeping and the candidates trained at once; "
                          "with --mode wait (the pipeline's default on a cluster) they start in the window.[/dim]")
        _print_trainings(result.candidates)
        _print_variants(result.candidates)
        _print_report(result)
        if summary_path is not None:
            from greenkfp.components._files import write_atomic
            from greenkfp.pipelines.local import run_summary

            write_atomic(summary_path, json.dumps(run_summary(result), indent=2, sort_keys=True) + "\n")
            console.print(f"summary: {summary_path}")
        console.print(f"run outputs: {result.run_dir}")
    else:
        console.print(f"decision record: {result.decision_path}")
    return 0


def cmd_forecast(args: argparse.Namespace) -> int:
    from greenkfp.components.carbon import best_window, intensity_series
    from greenkfp.components.carbon.params import parse_datetime
    from greenkfp.pipelines.options import duration_hours

    start = parse_datetime(args.start, "--start") or datetime.now(timezone.utc)
    if not 1970 <= start.year <= 2100:
        raise ValueError(f"--start must be between 1970 and 2100, got {args.start!r}")
    duration = timedelta(hours=args.duration_hours)
    deadline = parse_datetime(args.deadline, "--deadline") if "T" in args.deadline else start + timedelta(
        hours=duration_hours(args.deadline, "--deadline"))
    answer = intensity_series(args.region, start, deadline, provider=args.provider,
                              provider_options=_provider_options(args))
    choice = best_window(answer.series, duration, max(start, answer.series.start), deadline)
    if args.json:
        print(json.dumps({"source": answer.describe(), "points": answer.series.to_records(), **choice.to_dict()}, indent=2))
        return 0
    table = Table(title=f"{answer.region}: {answer.provider}, {answer.data_kind.replace('_', ' ')} ({answer.signal})",
                  title_justify="left")
    table.add_column("slot start (UTC)")
    table.add_column("gCO2eq/kWh", justify="right")
    table.add_column("")
    table.add_column("best window")
    top = max(answer.series.values.max(), 1.0)
    for (moment, value) in answer.series:
        in_best = choice.best.start < moment + answer.series.granularity and moment < choice.best.end
        bar = "#" * max(1, round(30 * value / top))
        # marked in words as well as colour: a pipe or a screen reader loses the colour
        table.add_row(moment.strftime("%a %d %b %H:%M"), f"{value:.1f}", f"[green]{bar}[/green]" if in_best else bar,
                      "<- best" if in_best else "")
    console.print(table)
    if answer.note:
        console.print(f"[dim]{answer.note}[/dim]")
    console.print(
        f"best {duration} window: {choice.best.start:%Y-%m-%d %H:%M} to {choice.best.end:%H:%M} UTC at "
        f"{choice.best.average:.1f} gCO2eq/kWh; running now: {choice.run_now.average:.1f}; "
        f"delay {choice.delay}, savings {choice.savings_percent:.1f}% ({choice.candidates} candidate windows)"
    )
    return 0


def _countdown(until: datetime, sleep=None) -> None:
    """Wait in the terminal until ``until``, showing the time left (Ctrl-C aborts)."""
    import time

    sleep = sleep or time.sleep
    with console.status("") as status:
        while True:
            left = (until - datetime.now(timezone.utc)).total_seconds()
            if left <= 0:
                return
            status.update(f"waiting for the green window: {timedelta(seconds=int(left))} left (until {until:%H:%M} UTC)")
            sleep(min(left, 1.0))


def cmd_submit(args: argparse.Namespace) -> int:
    from greenkfp.components.carbon.params import parse_datetime
    from greenkfp.pipelines import submit

    if args.schedule and not args.carbon_aware:
        raise ValueError("--schedule goes with --carbon-aware (it schedules the run for the green window)")
    labels = submit.parse_labels(getattr(args, "label", []))
    package = args.package or f"compiled/{'kubeflow' if args.backend == 'kfp' else 'vertex'}/carbon_aware_training.yaml"
    # everything that can be checked is checked before any waiting: package, parameters, host, credentials
    params = submit.typed_params(submit.read_package(package), submit.parse_params(args.param))
    job = None
    budget_run = None
    if args.backend == "vertex" and args.gatekeeper_url:
        from greenkfp.components.governance.client import GatekeeperError, check_gatekeeper_url

        try:
            check_gatekeeper_url(args.gatekeeper_url)
        except GatekeeperError as exc:  # the person's input (exit 2), named by its option
            raise ValueError(str(exc).replace("gatekeeper_url", "--gatekeeper-url", 1)) from None
        budget_run = submit.budget_run_id()
        labels = {**labels, submit.BUDGET_RUN_LABEL: budget_run}
    if args.backend == "vertex":
        job = submit.build_vertex_job(package, project=args.project, location=args.location,
                                      pipeline_root=args.pipeline_root, params=params, labels=labels,
                                      display_name=args.run_name)  # checks the target and credentials first
    else:
        submit.preflight_kfp(args.host)
    start_at = None
    if args.carbon_aware:
        green = submit.greenest_start(
            regions=args.regions, duration=timedelta(hours=args.duration_hours), provider=args.provider,
            max_delay=timedelta(hours=args.max_delay_hours), deadline=parse_datetime(args.deadline, "--deadline"))
        _print_decision(green.record, "carbon-aware submission")
        if not green.should_run:
            console.print("[red]the gate refuses: not submitting[/red]")
            return 3
        if green.start_at > datetime.now(timezone.utc) + timedelta(minutes=1):
            start_at = green.start_at
    if budget_run is not None:  # the team's carbon budget, asked before anything is sent
        from greenkfp.components.governance.client import AdmissionRefused

        try:
            admission = submit.ask_gatekeeper(
                args.gatekeeper_url, run_id=budget_run, pipeline=job._gca_resource.pipeline_spec["pipelineInfo"]["name"],
                params=params, labels=labels, token_env=args.gatekeeper_token_env, window_start=start_at,
                duration_hours=args.duration_hours)
        except AdmissionRefused as refused:
            console.print("[red]the carbon budget refuses: not submitting[/red]")
            for reason in refused.reasons:
                console.print(Text(f"  - {reason}"))
            return 3
        console.print(f"carbon budget: reserved {admission.get('reserved_g', 0):.4g} g for run {budget_run} "
                      f"(label {submit.BUDGET_RUN_LABEL}; settle it with greenkfp budget settle --team "
                      f"{admission.get('team', '<team>')} --run-id {budget_run})")
    if budget_run is None:
        return _send(args, package, params, job, start_at)
    try:
        return _send(args, package, params, job, start_at)
    except BaseException as exc:  # the job did not go: the reservation is given back, then the error stands
        note = submit.release_reservation(args.gatekeeper_url, budget_run, token_env=args.gatekeeper_token_env)
        if isinstance(exc, submit.VertexError):
            raise submit.VertexError(f"{exc}; {note}") from None
        console.print(Text(note), soft_wrap=True)
        raise


def _send(args: argparse.Namespace, package: str, params: dict, job, start_at: datetime | None) -> int:
    """Schedule or submit the checked (and, with a gatekeeper, admitted) run."""
    from greenkfp.pipelines import submit

    if start_at is not None and args.schedule:
        if args.backend == "kfp":
            schedule_id = submit.kfp_one_off_schedule(package, host=args.host, params=params, start_at=start_at,
                                                      experiment=args.experiment or "Default", namespace=args.namespace)
        else:
            schedule_id = submit.vertex_call("take the one-off schedule",
                                             lambda: submit.vertex_one_off_schedule(job, start_at)).resource_name
        console.print(f"scheduled once at {start_at:%Y-%m-%d %H:%M} UTC: {schedule_id}")
        return 0
    if start_at is not None:
        _countdown(start_at)
    if args.backend == "kfp":
        run_id = submit.submit_kfp(package, host=args.host, params=params, experiment=args.experiment,
                                   namespace=args.namespace, run_name=args.run_name)
        console.print(f"submitted run {run_id}")
    else:
        submit.vertex_call("take the job", lambda: job.submit(service_account=args.service_account or None))
        console.print(f"submitted {job.resource_name}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, but every usage error is one line on stderr (``error: argument --cpu: invalid
    int value: '1.5' (greenkfp serving deploy-manifests --help)``), not the whole usage; an
    option whose value starts with '-' (``--estimate-g -inf``, ``--expires-at -1d``: argparse
    reads it as another option) is one line saying how to write it. The subcommands' parsers are
    of this class too, and scripts under scripts/ use it."""

    def error(self, message: str):
        import re

        missing = re.fullmatch(r"argument ([^:]+): expected one argument", message)
        if missing:
            option = missing.group(1).split("/")[-1]
            self.exit(2, f"error: {option} needs a value; one that starts with '-' is written {option}=VALUE "
                         f"(such as {option}=-1)\n")
        self.exit(2, f"error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from greenkfp.components import __version__
    from greenkfp.components.carbon.providers import PROVIDER_NAMES
    from greenkfp.components.parameters import TRAINING
    from greenkfp.pipelines.options import add_spec_options

    parser = _Parser(prog="greenkfp", description="Carbon-aware Kubeflow Pipelines components.")
    parser.add_argument("--version", action="version", version=f"greenkfp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("compile", help="compile pipelines and components to YAML",
                       description="Compile every pipeline (Kubeflow and Vertex flavours) and component to YAML.")
    p.add_argument("--output-dir", default="compiled", help="where to write (default: compiled)")
    p.add_argument("--portable", action="store_true",
                   help="embed the package in each component and pip-install dependencies at start-up, "
                        "for clusters without the greenkfp image (default output: build/portable)")
    p.add_argument("--package-spec", default="",
                   help="with --portable: pip-install greenkfp from this requirement (a wheel URL, or "
                        "greenkfp==VERSION on your index) instead of embedding its code")
    p.add_argument("--check", action="store_true", help="compare OUTPUT_DIR with a fresh compile; exit 1 on drift")
    kubeflow = p.add_argument_group("Kubeflow flavour", "pod labels, spot nodes and the credentials secret")
    kubeflow.add_argument("--team", help="pod label team (default: ml-platform)")
    kubeflow.add_argument("--cost-center", dest="cost_center", help="pod label cost-center (default: unassigned)")
    kubeflow.add_argument("--carbon-tier", dest="carbon_tier", help="pod label carbon-tier (default: flexible)")
    kubeflow.add_argument("--no-spot", action="store_true", help="keep training and benchmark pods off spot nodes")
    kubeflow.add_argument("--spot-node-selector", help="LABEL=VALUE of spot nodes (default: cloud.google.com/gke-spot=true)")
    kubeflow.add_argument("--spot-toleration", help="KEY=VALUE:EFFECT of the spot taint "
                                                    "(default: cloud.google.com/gke-spot=true:NoSchedule)")
    kubeflow.add_argument("--credentials-secret", dest="credentials_secret",
                          help="Kubernetes secret with the provider keys (default: greenkfp-carbon-credentials)")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("run-local", help="run a pipeline with kfp's local runner",
                       description="Run a greenkfp pipeline locally (kfp SubprocessRunner) and print what it decided "
                                   "and measured.")
    p.add_argument("--pipeline", default="training", choices=("training", "gate"),
                   help="training: load, gate, train every candidate (default); gate: the gate alone")
    _add_gate_arguments(p.add_argument_group("carbon-forecast gate"), local=True)
    add_spec_options(p.add_argument_group("training pipeline (--pipeline training)"), TRAINING)
    p.add_argument("--pipeline-root", default="local_outputs", help="where task outputs go (default: local_outputs)")
    p.add_argument("--verbose", action="store_true", help="show the tasks' full output")
    p.add_argument("--summary-json", default=None, metavar="PATH",
                   help="training pipeline: write the run's outcome as JSON here (selected and baseline variants, "
                        "savings with 95 %% intervals, every variant's energy and SCI with intervals, MACs, bytes)")
    p.set_defaults(func=cmd_run_local)

    p = sub.add_parser("forecast", help="print a region's forecast and its greenest window",
                       description="Print a carbon-intensity forecast and the best window for a job.")
    p.add_argument("--region", default="GB")
    add_spec_options(p, ("provider", "duration_hours"))
    p.add_argument("--deadline", default="12h", help="a duration from the start (12h) or an ISO 8601 time")
    p.add_argument("--start", default="", help="ISO 8601 start (default: now)")
    _add_provider_option_arguments(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_forecast)
    from greenkfp.pipelines.gatekeeper_cli import add_gatekeeper_commands  # greenkfp gatekeeper serve
    add_gatekeeper_commands(sub)
    from greenkfp.pipelines.serve_cli import add_serve_command  # greenkfp serve
    add_serve_command(sub)

    p = sub.add_parser("submit", help="submit a compiled pipeline to Kubeflow Pipelines or Vertex AI",
                       description="Submit a compiled pipeline, optionally at the greenest time before a deadline.")
    backends = p.add_subparsers(dest="backend", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--package", default="", help="compiled pipeline YAML (default: the flagship for the backend)")
    common.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="pipeline parameter (JSON values allowed), repeatable")
    common.add_argument("--run-name", default=None, help="run / job display name")
    green = common.add_argument_group("carbon-aware submission")
    green.add_argument("--carbon-aware", action="store_true",
                       help="ask the gate's core for the greenest start and submit then, not now")
    green.add_argument("--schedule", action="store_true",
                       help="with --carbon-aware: create a one-off schedule on the backend instead of waiting here")
    add_spec_options(green, ("regions", "provider", "duration_hours", "max_delay_hours", "deadline"))
    kfp_parser = backends.add_parser("kfp", parents=[common], help="Kubeflow Pipelines (kfp.Client)",
                                     description="Submit with kfp.Client.create_run_from_pipeline_package. "
                                                 "A bearer token, if needed, comes from KF_PIPELINES_TOKEN.")
    kfp_parser.add_argument("--host", required=True, help="KFP API endpoint URL")
    kfp_parser.add_argument("--experiment", default=None)
    kfp_parser.add_argument("--namespace", default=None)
    kfp_parser.set_defaults(func=cmd_submit)
    vertex = backends.add_parser("vertex", parents=[common], help="Vertex AI Pipelines (aiplatform.PipelineJob)",
                                 description="Submit with aiplatform.PipelineJob (application-default credentials).")
    vertex.add_argument("--project", required=True)
    vertex.add_argument("--location", required=True, help="e.g. europe-west2")
    vertex.add_argument("--pipeline-root", required=True, help="gs:// URI for the run's artifacts")
    vertex.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="job label, repeatable")
    vertex.add_argument("--service-account", default="", help="service account the job runs as")
    vertex.add_argument("--gatekeeper-url", default=os.environ.get("GREENKFP_GATEKEEPER_URL", ""),
                        help="ask this greenkfp gatekeeper to reserve the run's carbon before submitting (exit 3 "
                             "when the team's budget refuses; default: $GREENKFP_GATEKEEPER_URL, empty = off)")
    vertex.add_argument("--gatekeeper-token-env", default="GREENKFP_GATEKEEPER_TOKEN",
                        help="the environment variable holding the team's gatekeeper token")
    vertex.set_defaults(func=cmd_submit)
    from greenkfp.pipelines.budget_cli import add_budget_commands  # greenkfp budget ...
    add_budget_commands(sub)
    from greenkfp.pipelines.report_cli import add_report_commands  # greenkfp report quarterly
    add_report_commands(sub)
    from greenkfp.pipelines.audit_cli import add_audit_commands  # greenkfp audit
    add_audit_commands(sub)
    from greenkfp.pipelines.serving_cli import add_serving_commands  # greenkfp serving deploy-manifests
    add_serving_commands(sub)
    return parser


def not_text_argument(argv: list[str]) -> str | None:
    """A line naming the first argument that is not text (bytes that are not UTF-8 arrive as
    lone surrogates, ``$'t\\xff'``) and its option, or None when every argument is text."""
    for i, token in enumerate(argv):
        if not any("\udc80" <= c <= "\udcff" or "\ud800" <= c <= "\udfff" for c in token):
            continue
        shown = token.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") \
            if all(not "\ud800" <= c <= "\udc7f" for c in token) else token.encode("utf-8", "backslashreplace").decode()
        if token.startswith("--") and "=" in token:
            option = token.split("=", 1)[0]
            shown = shown.split("=", 1)[1]
        elif i > 0 and argv[i - 1].startswith("-") and not token.startswith("-"):
            option = argv[i - 1]
        else:
            option = f"argument {i + 1}"
        if option.startswith("-") and any("\ud800" <= c <= "\udfff" for c in option):
            option = f"argument {i + 1}"
        return f"{option} is not valid text (bytes that are not UTF-8): '{shown}'"
    return None


def main(argv: list[str] | None = None) -> int:
    from rich.text import Text

    from greenkfp.components._messages import redact_urls
    from greenkfp.components.carbon.errors import CarbonError, ProviderConfigError, ProviderError
    from greenkfp.components.governance.client import GatekeeperError
    from greenkfp.pipelines.submit import VertexError

    problem = not_text_argument(sys.argv[1:] if argv is None else argv)
    if problem:  # before anything else reads it: a later message would name another option, or none
        print(f"error: {problem}", file=sys.stderr)
        return 2
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse's own usage errors and --help: a code, not an exception
        return exit_.code
    if args.command == "compile" and args.portable and args.output_dir == "compiled":
        args.output_dir = "build/portable"
    try:
        return args.func(args)
    except ProviderError as exc:  # the provider failed (not the person's input): exit 1
        console.print("[red]error:[/red]", Text(redact_urls(str(exc))), soft_wrap=True)
        return 2 if isinstance(exc, ProviderConfigError) else 1
    except (GatekeeperError, VertexError) as exc:  # the gatekeeper could not be asked, Vertex failed: exit 1
        console.print("[red]error:[/red]", Text(redact_urls(str(exc))), soft_wrap=True)
        return 1
    except (CarbonError, ValueError) as exc:
        # a user's value is shown as typed: never read as rich markup, never with URL credentials
        console.print("[red]error:[/red]", Text(redact_urls(str(exc))), soft_wrap=True)
        return 2
    except BrokenPipeError:  # `greenkfp forecast | head`: the reader left; no traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:  # Ctrl-C: the person knows why it stopped
        console.print("[red]interrupted[/red]")
        return 130
    except OSError as exc:  # a path that cannot be read or written: name it, no traceback
        where = f" {exc.filename!r}" if exc.filename else ""
        console.print("[red]error:[/red]", Text(f"{exc.strerror or exc}{where}"), soft_wrap=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
