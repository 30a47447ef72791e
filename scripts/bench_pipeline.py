"""Benchmark the demo pipeline: its wall time, and what each task spends outside its own work.

Goal (from the issue): ``make demo`` (``greenkfp run-local --pipeline training --regions GB
DE-LU US-CAL-CISO --duration 1h --max-delay 12h``, mode ``plan``) takes under 3 minutes on this
2-core machine. Besides that figure, report the local runner's overhead: the time each task
spends outside its own work.

What is run
-----------
1. The demo itself, end to end, as ``make demo`` runs it: the ``greenkfp`` command in a fresh
   process from a temporary directory, nothing instrumented. Its wall time (``time.perf_counter``
   around the process) is the figure for the goal. It runs first, so it is not flattered by a
   page cache this script's other runs warmed. ``--skip-cli`` leaves it out; the goal is then
   judged on run 2's wall time, which lacks the command's own start-up (said in the output).
2. The same pipeline with the same arguments (built by the CLI's own parser, so they cannot
   drift from ``make demo``) once more through ``run_training_locally`` in this process, in a
   temporary directory, instrumented as below. Its wall time covers the whole call (importing
   and compiling the pipeline, the local run, reading the records).
3. The runner's fixed per-task floor: a no-op lightweight component with the same settings as
   ours (``component_options()``: the greenkfp image name, ``install_kfp_package=False``) run
   ``--floor-runs`` times through the same ``SubprocessRunner(use_venv=False)`` without the
   probe, alternating with as many runs with it: the difference is the probe's own cost.

How a task is timed (run 2)
---------------------------
kfp's local runner runs each task as ``sh -ec '... python3 -m kfp.dsl.executor_main ...'`` in a
subprocess, two ``ParallelFor`` iterations at a time in threads. Timestamps are wall-clock
``time.time()`` in both processes (the same clock); differences in seconds.

* Task wall, measured in the runner: kfp's ``task_dispatcher.run_single_task_implementation``
  (the runner's whole handling of one task: executor input, placeholders, the subprocess,
  reading the outputs, its log lines) and ``subprocess_task_handler.run_local_subprocess``
  (the task's process, from before ``Popen`` to after ``wait``) are wrapped to take
  timestamps; the second wrapper also adds two environment variables for the probe. Nothing
  else changes. (The runner's own log records "Executing task" / "finished with status" are
  not used: under ``ParallelFor`` they go missing, because each task thread sets the root
  logger's level to INFO and restores it when it ends, while the other lane is still logging.)
* Inside the task process, measured: the child's ``PYTHONPATH`` starts with a temporary
  directory holding a ``sitecustomize`` probe. It stamps: the interpreter ready (when
  ``sitecustomize`` runs), the component function's call and return (it wraps the function,
  with its signature, for the one call kfp's ``Executor.execute`` makes), the end of
  ``Executor.execute`` (outputs written) and the last ``atexit`` handler; it also times every
  import executed while the function runs (``import`` statements through ``builtins.__import__``
  and ``importlib.import_module`` calls, in the body or in code it calls, such as skops loading a
  model; a nested import is charged to the outermost). The body imports the greenkfp core,
  which imports numpy, pandas, scikit-learn, onnxruntime, CodeCarbon ... Nothing in greenkfp is
  changed.

Each task's wall splits into segments, each measured between two stamps:

* runner: the runner's work in this process before the subprocess starts and after it ends
  (executor input, placeholders, reading the outputs, logging);
* start-up: ``Popen`` to the interpreter ready (``sh``, ``mktemp``, interpreter, ``site``);
* kfp boot: to the function's call (kfp's executor import, arguments, loading the ephemeral
  component module, building the artifact objects and keyword arguments);
* imports: the imports executed while the function runs (as above);
* work: the function's own time minus those imports (derived by that one subtraction);
* write: function return to the end of ``execute`` (``executor_output.json``, metadata);
* exit: to the runner seeing the process end (non-daemon threads, ``atexit`` handlers,
  interpreter teardown, ``sh`` exiting, the runner reaping it).

Overhead = wall - work = runner + start-up + kfp boot + imports + write + exit. Imports are
counted as overhead because a process per task pays them again for every task, where an
in-process or warm worker would pay them once per run (a cluster pod pays them too: real
cost, but not the task's own work); overhead without imports is shown too. Pipeline level:
time before the first task (importing and compiling the pipeline, init), time with no task
running between tasks (orchestration), after the last; task-seconds / busy time gives the
concurrency. On 2 cores with 2 tasks at a time, tasks compete for CPU: every segment, work
included, stretches while the other lane is busy. The probe's own cost is measured by the
floor runs (with and without it).

Usage: python scripts/bench_pipeline.py [--floor-runs N] [--skip-cli] [--keep] [--json PATH]
Exit code 0 when the benchmark ran (whether or not the goal is met), 1 when a run failed.
"""

# No `from __future__ import annotations`: kfp reads the no-op component's real annotations.
import argparse
import builtins
import contextlib
import itertools
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

DEMO_CLI_ARGS = ["run-local", "--pipeline", "training", "--regions", "GB", "DE-LU", "US-CAL-CISO",
                 "--duration", "1h", "--max-delay", "12h"]
GOAL_S = 180.0
FLOOR_RUNS = 10
PROBE_ENV = "GREENKFP_BENCH_PROBE_OUT"
SEGMENTS = ("runner", "startup", "boot", "imports", "work", "write", "exit")

# The probe runs as ``sitecustomize`` in each task process (and only there: the runner's wrapper
# sets PROBE_ENV for the task's own process, and the probe removes it, so the task's children
# do not inherit it). Any failure in the probe is recorded, never raised into the task.
PROBE_SOURCE = r'''
"""scripts/bench_pipeline.py probe: timestamps one kfp task process. Temporary, not greenkfp."""
import os

_OUT = os.environ.pop("GREENKFP_BENCH_PROBE_OUT", None)
if _OUT:
    import time

    _MARKS = {"ready": (time.time(), time.process_time())}

    def _install():
        import atexit
        import builtins
        import importlib
        import inspect
        import json
        import threading

        main_thread = threading.get_ident()
        imports = {}  # statement's module name -> [count, wall s, cpu s]
        state = {"in_func": False, "depth": 0, "function": None, "error": None}

        def mark(name):
            _MARKS[name] = (time.time(), time.process_time())

        def dump():  # registered first, so it runs last of all atexit handlers
            mark("atexit_last")
            record = {"pid": os.getpid(), "function": state["function"], "marks": _MARKS,
                      "imports": imports, "error": state["error"]}
            with open(_OUT, "w", encoding="utf-8") as handle:
                json.dump(record, handle)

        atexit.register(dump)

        def timed(real):
            def wrapper(*args, **kwargs):
                if not state["in_func"] or threading.get_ident() != main_thread:
                    return real(*args, **kwargs)
                if state["depth"]:  # nested: the outermost statement is charged
                    state["depth"] += 1
                    try:
                        return real(*args, **kwargs)
                    finally:
                        state["depth"] -= 1
                name = str(args[0] if args else kwargs.get("name", "?"))
                state["depth"] = 1
                t0, c0 = time.perf_counter(), time.process_time()
                try:
                    return real(*args, **kwargs)
                finally:
                    state["depth"] = 0
                    entry = imports.setdefault(name, [0, 0.0, 0.0])
                    entry[0] += 1
                    entry[1] += time.perf_counter() - t0
                    entry[2] += time.process_time() - c0
            return wrapper

        builtins.__import__ = timed(builtins.__import__)
        importlib.import_module = timed(importlib.import_module)

        from kfp.dsl import executor as kfp_executor

        class TimedFunction:
            """Calls the component function between two stamps; looks like it to kfp."""

            def __init__(self, func):
                self._func = func
                self.__signature__ = inspect.signature(func)
                self.__annotations__ = func.__annotations__
                self.__globals__ = func.__globals__
                self.__name__ = func.__name__
                self.__doc__ = func.__doc__

            def __call__(self, *args, **kwargs):
                mark("func_start")
                state["in_func"] = True
                try:
                    return self._func(*args, **kwargs)
                finally:
                    state["in_func"] = False
                    mark("func_end")

        original_execute = kfp_executor.Executor.execute

        def execute(self):
            func = self.func
            state["function"] = func.__name__
            mark("execute_start")
            self.func = TimedFunction(func)
            try:
                return original_execute(self)
            finally:
                self.func = func
                mark("execute_end")

        kfp_executor.Executor.execute = execute

    try:
        _install()
    except Exception as exc:  # never break the task
        _MARKS["probe_error"] = repr(exc)
'''

# --- tracing the local runner ------------------------------------------------------------------
class RunnerTrace:
    """Times each task the runner dispatches and pairs it with its subprocess and probe file.

    Wraps two kfp functions (timing and pairing only): ``task_dispatcher.
    run_single_task_implementation`` (the runner's whole handling of one task, called by the
    pipeline orchestrator and by single-task runs) and ``subprocess_task_handler.
    run_local_subprocess`` (the task's process), which it also gives the probe's environment.
    """

    def __init__(self, probe_dir: Path, out_dir: Path):
        self.probe_dir, self.out_dir = probe_dir, out_dir
        self.probe_enabled = True
        self.tasks: list[dict] = []
        self._open: dict[int, dict] = {}
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._originals: dict = {}

    def _dispatch(self, *args, **kwargs):
        from kfp.local import executor_input_utils

        component = kwargs.get("component_name", args[1] if len(args) > 1 else "?")
        task = {"task": executor_input_utils.get_local_task_resource_name(component), "thread": threading.get_ident(),
                "start": time.time(), "end": None, "status": None, "probe_file": None}
        with self._lock:
            self._open[task["thread"]] = task
            self.tasks.append(task)
        try:
            outputs, status = self._originals["dispatch"](*args, **kwargs)
            task["status"] = getattr(status, "name", str(status))
            return outputs, status
        finally:
            task["end"] = time.time()
            with self._lock:
                self._open.pop(task["thread"], None)

    def _subprocess(self, full_command, env_vars=None):
        env = dict(env_vars or {})
        with self._lock:
            task = self._open.get(threading.get_ident())
        if task is not None:
            task.update(describe_command(full_command))
            if self.probe_enabled:
                task["probe_file"] = str(self.out_dir / f"{next(self._seq)}.json")
                env[PROBE_ENV] = task["probe_file"]
                env["PYTHONPATH"] = os.pathsep.join(
                    p for p in (str(self.probe_dir), env.get("PYTHONPATH") or os.environ.get("PYTHONPATH", "")) if p)
            task["process_start"] = time.time()
        try:
            return self._originals["subprocess"](full_command=full_command, env_vars=env)
        finally:
            if task is not None:
                task["process_end"] = time.time()

    def install(self) -> None:
        from kfp.local import subprocess_task_handler, task_dispatcher

        self.probe_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.probe_dir / "sitecustomize.py").write_text(PROBE_SOURCE, encoding="utf-8")
        self._originals = {"dispatch": task_dispatcher.run_single_task_implementation,
                           "subprocess": subprocess_task_handler.run_local_subprocess}
        task_dispatcher.run_single_task_implementation = self._dispatch
        subprocess_task_handler.run_local_subprocess = self._subprocess

    def uninstall(self) -> None:
        from kfp.local import subprocess_task_handler, task_dispatcher

        if self._originals:
            task_dispatcher.run_single_task_implementation = self._originals["dispatch"]
            subprocess_task_handler.run_local_subprocess = self._originals["subprocess"]

    def take(self) -> list[dict]:
        with self._lock:
            tasks, self.tasks = self.tasks, []
            return tasks


def describe_command(full_command: list[str]) -> dict:
    """The function a task runs, its directory under the run, and (for a training task) the
    candidate, read from the runner's own command line."""
    info: dict = {}
    args = list(full_command)
    if "--function_to_execute" in args:
        info["function"] = args[args.index("--function_to_execute") + 1]
    if "--executor_input" in args:
        try:
            executor_input = json.loads(args[args.index("--executor_input") + 1])
            task_dir = Path(executor_input["outputs"]["outputFile"]).parent
            info["task_dir"] = f"{task_dir.parent.name}/{task_dir.name}"
            iteration = re.search(r"iteration-(\d+)$", task_dir.parent.name)
            info["iteration"] = int(iteration.group(1)) if iteration else None
            candidate = executor_input.get("inputs", {}).get("parameterValues", {}).get("candidate")
            if isinstance(candidate, dict):
                info["candidate"] = candidate.get("name")
        except (ValueError, KeyError, IndexError):
            pass
    return info


def segments(task: dict) -> dict:
    """Split one task's wall time at the measured stamps (the runner's, then the probe's)."""
    out = {"wall": task["end"] - task["start"]}
    if "process_start" not in task or "process_end" not in task:
        out["probe"] = "no subprocess"
        return out
    out["runner"] = (task["process_start"] - task["start"]) + (task["end"] - task["process_end"])
    out["process"] = task["process_end"] - task["process_start"]
    path = task.get("probe_file")
    if not path or not Path(path).is_file():
        out["probe"] = "missing"
        return out
    probe = json.loads(Path(path).read_text(encoding="utf-8"))
    marks = {name: value[0] for name, value in probe["marks"].items() if isinstance(value, list)}
    cpu = {name: value[1] for name, value in probe["marks"].items() if isinstance(value, list)}
    needed = ("ready", "func_start", "func_end", "execute_end")
    if probe.get("error") or "probe_error" in probe["marks"] or any(m not in marks for m in needed):
        out["probe"] = f"incomplete: {probe.get('error') or probe['marks'].get('probe_error') or 'missing stamps'}"
        return out
    imports = sum(entry[1] for entry in probe["imports"].values())
    function_s = marks["func_end"] - marks["func_start"]
    last = marks.get("atexit_last", marks["execute_end"])
    out.update(
        startup=marks["ready"] - task["process_start"],
        boot=marks["func_start"] - marks["ready"],
        imports=imports,
        work=function_s - imports,
        write=marks["execute_end"] - marks["func_end"],
        exit=task["process_end"] - marks["execute_end"],
        exit_atexit=last - marks["execute_end"],
        exit_teardown=task["process_end"] - last,
        function=function_s,
        function_cpu=cpu["func_end"] - cpu["func_start"],
        imports_cpu=sum(entry[2] for entry in probe["imports"].values()),
        process_cpu=cpu.get("atexit_last", cpu["execute_end"]),
        probe="ok",
        top_imports=sorted(([name, entry[1]] for name, entry in probe["imports"].items()),
                           key=lambda item: -item[1])[:5],
    )
    out["overhead"] = out["wall"] - out["work"]
    out["overhead_no_imports"] = out["overhead"] - imports
    return out


# --- runs --------------------------------------------------------------------------------------
def demo_arguments() -> dict:
    """The pipeline arguments ``make demo`` passes, built by the CLI's own parser and helper."""
    from greenkfp.pipelines import cli

    args = cli.build_parser().parse_args(DEMO_CLI_ARGS)
    arguments = cli._gate_arguments(args)
    arguments.update(dataset=args.dataset, label_column=args.label_column)
    return arguments


def run_cli_demo(workdir: Path) -> dict:
    """``make demo``'s command in a fresh process, uninstrumented; wall time of the process."""
    executable = Path(sys.executable).parent / "greenkfp"
    command = [str(executable)] if executable.exists() else [sys.executable, "-m", "greenkfp.pipelines.cli"]
    command += DEMO_CLI_ARGS + ["--pipeline-root", str(workdir / "local_outputs")]
    env = {k: v for k, v in os.environ.items() if k != PROBE_ENV}
    t0 = time.perf_counter()
    done = subprocess.run(command, check=False, cwd=workdir, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    (workdir / "cli-output.txt").write_text(done.stdout + done.stderr, encoding="utf-8")
    return {"command": " ".join(["greenkfp", *DEMO_CLI_ARGS]), "returncode": done.returncode, "wall_s": wall,
            "output_tail": (done.stdout + done.stderr).strip().splitlines()[-3:]}


@contextlib.contextmanager
def quiet_runner(log_path: Path):
    """Send the runner's streamed task output to a file, as the CLI does; undo what it leaves."""
    original_print = builtins.print  # the runner patches it per task, from several threads at once
    with open(log_path, "a", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        try:
            yield
        finally:
            builtins.print = original_print


def run_instrumented(trace: RunnerTrace, workdir: Path, arguments: dict) -> dict:
    from greenkfp.pipelines.local import run_training_locally

    cwd = os.getcwd()
    os.chdir(workdir)  # a component could import from the current directory
    try:
        with quiet_runner(workdir / "runner-output.txt"):
            t0, w0 = time.perf_counter(), time.time()
            result = run_training_locally(arguments, workdir / "pipeline_root")
            wall, w1 = time.perf_counter() - t0, time.time()
    finally:
        os.chdir(cwd)
    tasks = trace.take()
    return {"wall_s": wall, "call_start": w0, "call_end": w1, "tasks": tasks, "run_dir": result.run_dir,
            "action": result.decision.action, "trainings": len(result.candidates),
            "selection": result.selection.chosen if result.selection else None}


def noop_floor() -> int:
    """A no-op component: what a task costs when its body does nothing."""
    return 0


def run_floor(trace: RunnerTrace, workdir: Path, runs: int) -> dict:
    from greenkfp.components._runtime import component_options
    from greenkfp.pipelines.local import _local_session
    from kfp import dsl

    component = dsl.component(**component_options())(noop_floor)
    results = {"without_probe": [], "with_probe": []}
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        with quiet_runner(workdir / "floor-output.txt"), _local_session(workdir / "floor_root"):
            for k in range(2 * runs):
                trace.probe_enabled = k % 2 == 1  # alternate, so drift hits both alike
                component()
                (task,) = trace.take()
                key = "with_probe" if trace.probe_enabled else "without_probe"
                results[key].append(segments(task) if trace.probe_enabled else {"wall": task["end"] - task["start"]})
    finally:
        trace.probe_enabled = True
        os.chdir(cwd)
    return results


# --- figures -----------------------------------------------------------------------------------
def union_length(intervals: list[tuple[float, float]]) -> float:
    total, current_start, current_end = 0.0, None, None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += current_end - current_start
    return total


def lanes(tasks: list[dict]) -> dict[int, str]:
    main = tasks[0]["thread"] if tasks else None
    others = [t for t in dict.fromkeys(task["thread"] for task in tasks) if t != main]
    return {main: "main", **{thread: f"p{i + 1}" for i, thread in enumerate(others)}}


def summarise(run: dict) -> dict:
    tasks = [t for t in run["tasks"] if t["end"] is not None]
    if len(tasks) != len(run["tasks"]):
        raise RuntimeError("no 'finished' record from the runner for: " + ", ".join(f"{t['task']} (thread {t['thread']})" for t in run["tasks"] if t["end"] is None))
    lane = lanes(tasks)
    candidates = {t.get("iteration"): t.get("candidate") for t in tasks if t.get("candidate")}
    executions = []
    for t in tasks:
        figures = segments(t)
        executions.append({
            "task": t["task"], "status": t["status"], "lane": lane[t["thread"]],
            "iteration": t.get("iteration"), "candidate": candidates.get(t.get("iteration")) if t.get("iteration") is not None else None,
            "task_dir": t.get("task_dir"), "start_s": t["start"] - run["call_start"], **figures,
        })
    complete = all(e["probe"] == "ok" for e in executions)

    by_task = {}
    for name in dict.fromkeys(e["task"] for e in executions):
        group = [e for e in executions if e["task"] == name]
        entry = {"runs": len(group), "wall": sum(e["wall"] for e in group)}
        if all(e["probe"] == "ok" for e in group):
            for key in (*SEGMENTS, "overhead", "overhead_no_imports"):
                entry[key] = sum(e[key] for e in group)
            imports: dict[str, float] = {}
            for e in group:
                for module, seconds in e["top_imports"]:
                    imports[module] = imports.get(module, 0.0) + seconds
            entry["largest_import"] = max(imports.items(), key=lambda item: item[1]) if imports else None
        by_task[name] = entry

    totals = {"runs": len(executions), "wall": sum(e["wall"] for e in executions)}
    if complete:
        for key in (*SEGMENTS, "overhead", "overhead_no_imports", "exit_atexit", "exit_teardown"):
            totals[key] = sum(e[key] for e in executions)
        totals["overhead_share"] = totals["overhead"] / totals["wall"]
        totals["overhead_no_imports_share"] = totals["overhead_no_imports"] / totals["wall"]

    intervals = [(t["start"], t["end"]) for t in tasks]
    busy = union_length(intervals)
    first, last = min(s for s, _ in intervals), max(e for _, e in intervals)
    phases = {
        "wall": run["wall_s"],
        "before_first_task": first - run["call_start"],
        "tasks_running": busy,
        "between_tasks_none_running": (last - first) - busy,
        "after_last_task": run["call_end"] - last,
        "task_seconds": totals["wall"],
        "concurrency": totals["wall"] / busy if busy else 0.0,
    }
    return {"executions": executions, "by_task": by_task, "totals": totals, "phases": phases, "probe_complete": complete}


def floor_summary(floor: dict) -> dict:
    def med(rows, key):
        values = [r[key] for r in rows if key in r]
        return statistics.median(values) if values else None

    without, with_probe = floor["without_probe"], floor["with_probe"]
    out = {
        "runs_each": len(without),
        "wall_without_probe_median": med(without, "wall"),
        "wall_without_probe_min": min(r["wall"] for r in without),
        "wall_without_probe_max": max(r["wall"] for r in without),
        "wall_with_probe_median": med(with_probe, "wall"),
    }
    out["probe_cost_median"] = out["wall_with_probe_median"] - out["wall_without_probe_median"]
    for key in SEGMENTS:
        out[f"{key}_median"] = med(with_probe, key)
    out["runs"] = floor
    return out


# --- output ------------------------------------------------------------------------------------
def s(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def render(console: Console, report: dict) -> None:
    run, summary, floor, cli = report["instrumented_run"], report["summary"], report["floor"], report.get("cli_run")
    console.rule("[bold]greenkfp demo pipeline benchmark: wall time and the local runner's overhead")
    console.print(
        f"Demo: [bold]greenkfp {' '.join(DEMO_CLI_ARGS)}[/] (mode plan), kfp {report['environment']['kfp']} "
        f"SubprocessRunner(use_venv=False), {report['environment']['cpus']} CPUs, Python "
        f"{report['environment']['python']}.\n"
        "Per task, [bold]measured[/]: wall = the runner's handling of the task (kfp's run_single_task_implementation, "
        "wrapped for timestamps); inside the task process a sitecustomize probe stamps interpreter ready, component "
        "function call and return, outputs written, and times every import executed while the function runs.\n"
        "Segments: [bold]runner[/] (this process, before and after the subprocess) | [bold]start-up[/] (Popen, sh, "
        "interpreter) | [bold]kfp boot[/] (kfp executor import, component module, inputs) | [bold]imports[/] (while "
        "the function runs) | [bold]work[/] (function time - its imports: the one subtraction) | [bold]write[/] (outputs) | "
        "[bold]exit[/] (atexit handlers, interpreter teardown, reaping).\n"
        "[bold]overhead[/] = wall - work = runner + start-up + kfp boot + imports + write + exit. Imports count as "
        "overhead: a process per task pays them again for every task. Times in seconds, wall clock."
    )

    per = Table(title=f"Per task (sums over its executions; instrumented run, {run['trainings']} candidates)")
    for header in ("task", "runs", "wall", "runner", "start-up", "kfp boot", "imports", "work", "write", "exit",
                   "overhead", "overhead\n%", "overhead\nw/o imports"):
        per.add_column(header, justify="left" if header == "task" else "right", no_wrap=header == "task")
    rows = list(summary["by_task"].items()) + [("total", summary["totals"])]
    for name, e in rows:
        cells = [s(e.get(k)) for k in SEGMENTS]
        share = f"{100 * e['overhead'] / e['wall']:.0f}" if "overhead" in e else "n/a"
        per.add_row(f"[bold]{name}[/]" if name == "total" else name, str(e["runs"]), s(e["wall"]), *cells,
                    s(e.get("overhead")), share, s(e.get("overhead_no_imports")), end_section=name == rows[-2][0])
    console.print(per)
    largest = [f"{name}: {e['largest_import'][0]} {e['largest_import'][1]:.2f} s"
               for name, e in summary["by_task"].items() if e.get("largest_import")]
    if largest:
        console.print("[dim]largest import while each function ran (outermost, summed over runs): " + "; ".join(largest) + "[/dim]")

    detail = Table(title="Each execution (at: seconds after the call began; lane: the runner's thread, main or "
                         "ParallelFor pool p1/p2)")
    for header in ("task", "candidate", "lane", "at", "wall", "runner", "start-up", "kfp boot", "imports",
                   "work", "write", "exit", "overhead"):
        detail.add_column(header, justify="left" if header in ("task", "candidate", "lane") else "right", no_wrap=True)
    for e in sorted(summary["executions"], key=lambda e: e["start_s"]):
        detail.add_row(e["task"], e["candidate"] or "", e["lane"], s(e["start_s"]), s(e["wall"]),
                       *[s(e.get(k)) for k in SEGMENTS], s(e.get("overhead")))
    console.print(detail)

    p = summary["phases"]
    phases = Table(title="Where the instrumented run's wall time went (pipeline level)", show_header=False)
    phases.add_column(style="bold")
    phases.add_column(justify="right")
    phases.add_column()
    phases.add_row("run_training_locally wall", s(p["wall"]), "whole call, measured")
    phases.add_row("before the first task", s(p["before_first_task"]),
                   "importing and compiling the pipeline, local init")
    phases.add_row("some task running", s(p["tasks_running"]), "union of the task intervals")
    phases.add_row("no task running, between tasks", s(p["between_tasks_none_running"]),
                   "the runner's orchestration (reading outputs, resolving the DAG)")
    phases.add_row("after the last task", s(p["after_last_task"]), "reading the run's records")
    phases.add_row("task-seconds", s(p["task_seconds"]),
                   f"sum of task walls; concurrency {p['concurrency']:.2f} (two ParallelFor iterations at a time)")
    console.print(phases)

    t = summary["totals"]
    if "overhead" in t:
        console.print(
            f"Overhead, all tasks: [bold]{t['overhead']:.2f} of {t['wall']:.2f} task-seconds "
            f"({100 * t['overhead_share']:.0f} %)[/], of which imports while the functions ran {t['imports']:.2f} s; "
            f"without imports {t['overhead_no_imports']:.2f} s ({100 * t['overhead_no_imports_share']:.0f} %). "
            f"Work {t['work']:.2f} task-seconds. Exit {t['exit']:.2f} s = atexit handlers {t['exit_atexit']:.2f} s + "
            f"interpreter teardown and reaping {t['exit_teardown']:.2f} s. Task-seconds overlap (concurrency {p['concurrency']:.2f}), so they do "
            "not add up to the wall time; on 2 cores two busy lanes also slow each other."
        )
    else:
        console.print("[red]the probe did not report for every task: segments are incomplete[/red]")

    console.print(
        f"Runner floor (no-op component, same settings, {floor['runs_each']} runs without and {floor['runs_each']} "
        f"with the probe, alternating): median wall [bold]{floor['wall_without_probe_median']:.3f} s[/] "
        f"(min {floor['wall_without_probe_min']:.3f}, max {floor['wall_without_probe_max']:.3f}) without the probe, "
        f"{floor['wall_with_probe_median']:.3f} s with it (probe cost {1000 * floor['probe_cost_median']:+.0f} ms "
        f"per task); with the probe: runner {s(floor['runner_median'], 3)}, start-up {s(floor['startup_median'], 3)}, "
        f"kfp boot {s(floor['boot_median'], 3)}, write {s(floor['write_median'], 3)}, exit {s(floor['exit_median'], 3)} s."
    )

    goal = report["goal"]
    verdict = "[green]met[/]" if goal["met"] else "[red]NOT met[/]"
    if cli:
        console.print(
            f"Demo end to end ([bold]{cli['command']}[/], fresh process, uninstrumented, run first): "
            f"[bold]{cli['wall_s']:.1f} s[/]; instrumented in-process run {run['wall_s']:.1f} s."
        )
    console.print(f"Goal: demo under {GOAL_S:.0f} s: {goal['figure_s']:.1f} s ({goal['basis']}): {verdict}.")


# --- entry point -------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _bench import json_path, make_json_folder  # the --json check all scripts share

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--floor-runs", type=int, default=FLOOR_RUNS,
                        help=f"no-op tasks with and without the probe, each (default {FLOOR_RUNS})")
    parser.add_argument("--skip-cli", action="store_true", help="skip the uninstrumented end-to-end demo run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (runs' outputs and logs)")
    parser.add_argument("--json", type=json_path, metavar="PATH", help="also write every figure as JSON to PATH")
    args = parser.parse_args(argv)
    if args.floor_runs < 1:
        parser.error(f"--floor-runs must be at least 1, got {args.floor_runs}")

    console = Console()
    if not console.is_terminal:  # piped: rich would assume 80 columns and squeeze the tables
        console = Console(width=max(console.width, 150))
    began = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="greenkfp-bench-pipeline-"))
    load_before = os.getloadavg()
    try:
        cli_run = None
        if not args.skip_cli:
            console.print("[dim]1/3 the demo command, end to end ...[/dim]")
            (workdir / "cli").mkdir()
            cli_run = run_cli_demo(workdir / "cli")
            if cli_run["returncode"] != 0:
                Console(stderr=True).print(f"[bold red]the demo command failed[/] (exit {cli_run['returncode']}): "
                                           + "\n".join(cli_run["output_tail"]))
                return 1

        import kfp

        arguments = demo_arguments()
        trace = RunnerTrace(workdir / "probe", workdir / "probe_records")
        trace.install()
        try:
            console.print("[dim]2/3 the same pipeline, instrumented ...[/dim]")
            (workdir / "run").mkdir()
            run = run_instrumented(trace, workdir / "run", arguments)
            console.print(f"[dim]3/3 the runner's floor, {2 * args.floor_runs} no-op tasks ...[/dim]")
            (workdir / "floor").mkdir()
            floor = floor_summary(run_floor(trace, workdir / "floor", args.floor_runs))
        finally:
            trace.uninstall()
        summary = summarise(run)
    except (RuntimeError, OSError, ValueError, KeyError) as exc:  # a failed run has no figures to report
        Console(stderr=True).print(f"[bold red]benchmark failed[/]: {type(exc).__name__}: {exc}"
                                   + (f"\nlogs kept in {workdir}" if args.keep else ""))
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    figure, basis = ((cli_run["wall_s"], "the greenkfp command end to end") if cli_run else
                     (run["wall_s"], "run_training_locally in process: without the command's start-up"))
    report = {
        "demo": {"command": ["greenkfp", *DEMO_CLI_ARGS], "arguments": arguments},
        "environment": {"cpus": os.cpu_count(), "python": platform.python_version(), "kfp": kfp.__version__,
                        "platform": platform.platform(), "load_average_before": load_before,
                        "load_average_after": os.getloadavg()},
        "method": {
            "task_wall": "kfp.local task_dispatcher.run_single_task_implementation, wrapped (time.time)",
            "segments": "sitecustomize probe stamps in the task process; work = function time - body import time",
            "overhead": "wall - work = runner + startup + boot + imports + write + exit",
            "units": "seconds, wall clock",
        },
        "cli_run": cli_run,
        "instrumented_run": {k: v for k, v in run.items() if k != "tasks"},
        "summary": summary,
        "floor": floor,
        "goal": {"goal_s": GOAL_S, "figure_s": figure, "basis": basis, "met": figure < GOAL_S},
    }
    render(console, report)
    report["timing"] = {"benchmark_total_s": time.perf_counter() - began}
    console.print(f"Benchmark wall time: {report['timing']['benchmark_total_s']:.1f} s. Load average before "
                  f"{load_before[0]:.2f}, after {report['environment']['load_average_after'][0]:.2f}."
                  + (f" Outputs kept in {workdir}." if args.keep else ""))
    if args.json:
        created = make_json_folder(args.json)
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        console.print(f"Figures written to {args.json}{created}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
