"""The `greenkfp` console script."""

import io
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from greenkfp.components.carbon import EmbeddedProvider, best_window
from greenkfp.pipelines.cli import main

UTC = timezone.utc


@pytest.mark.parametrize(
    "command, expected",
    [
        ([], ["compile", "run-local", "forecast"]),
        (["compile"], ["--output-dir", "--portable", "--check"]),
        (["run-local"], ["--pipeline", "--dataset", "--candidates", "--regions", "--provider", "--fallback", "--threshold",
                         "--on-provider-failure", "--mode"]),
        (["forecast"], ["--region", "--provider", "--duration", "--deadline"]),
        (["budget"], ["set-limit", "reserve", "settle", "release", "status", "exception", "transfer", "board"]),
        (["budget", "reserve"], ["--ledger", "--actor", "--team", "--period", "--estimate-g", "--run-id", "--json"]),
    ],
)
def test_help_for_every_command(command, expected):
    result = subprocess.run([sys.executable, "-m", "greenkfp.pipelines.cli", *command, "--help"],
                            capture_output=True, text=True, check=True)
    for option in expected:
        assert option in result.stdout


def test_forecast_json_reports_the_library_best_window(capsys):
    code = main(["forecast", "--region", "GB", "--provider", "embedded", "--duration", "2h", "--deadline", "12h",
                 "--start", "2023-06-14T09:00:00Z", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    start = datetime(2023, 6, 14, 9, tzinfo=UTC)
    series = EmbeddedProvider().forecast("GB", start, start + timedelta(hours=12)).series
    expected = best_window(series, timedelta(hours=2), start, start + timedelta(hours=12))
    assert out["best"]["start"] == expected.best.start.isoformat()
    assert out["best"]["average_gco2_per_kwh"] == pytest.approx(expected.best.average)
    assert out["source"]["data_kind"] == "historical" and len(out["points"]) == 12


def test_forecast_table_marks_replayed_data(capsys):
    assert main(["forecast", "--region", "DE-LU", "--duration", "90m", "--deadline", "6h"]) == 0
    out = capsys.readouterr().out
    assert "replayed historical" in out and "not a forecast" in out and "best 1:30:00 window" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["forecast", "--region", "Narnia"], "supported zones: AU-NSW"),
        (["forecast", "--duration", "soon"], "--duration must be a duration such as 2h"),
        (["forecast", "--start", "2023-01-01T00:00:00"], "--start must be timezone-aware"),
    ],
)
def test_bad_input_is_a_clear_error_with_exit_code_2(argv, message, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in " ".join((captured.out + captured.err).split())


def test_run_local_prints_the_decision(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = main(["run-local", "--pipeline", "gate", "--regions", "GB", "DE-LU", "--earliest-start", "2023-06-14T09:00:00Z",
                 "--duration", "2h", "--max-delay", "12h", "--energy-kwh", "1.5"])
    assert code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "branch 'run' ran" in out and "savings (modeled)" in out and "candidate regions" in out
    (log,) = (tmp_path / "local_outputs").glob("*/run.log")  # each run has its own directory and log
    assert log.stat().st_size > 0
    assert "started carbon-forecast-gate" in out and "done carbon-forecast-gate (" in out


def test_compile_check_detects_drift(tmp_path, capsys):
    assert main(["compile", "--output-dir", str(tmp_path)]) == 0
    assert main(["compile", "--check", "--output-dir", str(tmp_path)]) == 0
    target = tmp_path / "vertex" / "carbon_gate.yaml"
    target.write_text(target.read_text().replace("greenkfp-carbon-gate", "edited-by-hand", 1))
    assert main(["compile", "--check", "--output-dir", str(tmp_path)]) == 1
    assert "vertex/carbon_gate.yaml: differs" in capsys.readouterr().out


@pytest.mark.slow
def test_run_local_training_prints_both_pricings(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    candidates = tmp_path / "candidates.json"
    candidates.write_text(json.dumps([{"name": "logreg", "estimator": "sklearn.linear_model.LogisticRegression",
                                       "params": {"max_iter": 500}}]))
    code = main(["run-local", "--dataset", "iris", "--candidates", str(candidates), "--regions", "GB",
                 "--earliest-start", "2023-06-14T09:00:00Z", "--duration", "1h", "--sci-seconds", "0.5",
                 "--summary-json", "summary.json"])
    assert code == 0
    # no --gatekeeper-url: the budget steps' other branch ran, at the start and at the end
    assert {p.name for p in tmp_path.rglob("carbon-budget-off*") if p.is_dir()} == {"carbon-budget-off",
                                                                                      "carbon-budget-off-2"}
    assert not list(tmp_path.rglob("carbon-budget-gate")) and not list(tmp_path.rglob("settle-carbon-budget"))
    out = " ".join(capsys.readouterr().out.split())
    assert "trained candidates" in out and "logreg" in out and "modeled" in out
    assert "mg CO2eq, CodeCarbon" in out and "historical intensity of GB" in out
    assert "saved [95 % interval]" in out
    # the machine-readable outcome: one candidate, so the baseline is the selection and nothing is saved
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["schema"] == "greenkfp.run_summary/v1"
    assert summary["selected"] == summary["baseline"] == "logreg/fp32"
    for part in ("training", "inference", "total"):
        saving = summary["savings"][part]
        assert set(saving) >= {"g", "percent", "significant", "basis"}
        assert set(saving["g"]) == {"estimate", "low", "high"} and saving["g"]["low"] <= saving["g"]["high"]
        assert isinstance(saving["significant"], bool)
    assert summary["savings"]["inference"]["g"] == {"estimate": 0.0, "low": 0.0, "high": 0.0}
    assert summary["savings"]["inference"]["significant"] is False
    (variant,) = [v for v in summary["variants"] if v["status"] == "scored"]
    assert variant["name"] == "logreg/fp32" and variant["macs"] == 4 * 3  # 4 features x 3 classes
    assert variant["weight_bytes"] > 0
    for figure in ("energy_per_inference_kwh", "sci", "latency_p95_ms", "time_per_inference_ms",
                   "cpu_time_per_inference_ms"):
        assert variant[figure]["low"] < variant[figure]["estimate"] < variant[figure]["high"], figure
    assert variant["energy_method"] in ("measured", "modeled", "mixed")
    assert summary["savings"]["training"]["realized"] is False  # run-local plans: the run did not wait
    assert {"sci", "latency_p95_ms", "macs", "weight_bytes"} <= set(summary["units"])


@pytest.mark.parametrize("argv, message", [
    (["forecast", "--duration", "1e12"], "--duration must be between 0 and 366 days"),
    (["forecast", "--deadline", "100000000"], "--deadline must be between 0 and 366 days"),
    (["forecast", "--start", "9999-12-31T22:00Z"], "--start must be between 1970 and 2100"),
    (["run-local", "--pipeline", "gate", "--threshold", "p150"], "threshold"),
    (["run-local", "--pipeline", "gate", "--threshold", "abc"], "threshold must be empty, a number"),
    (["run-local", "--pipeline", "gate", "--threshold", "-5"], "threshold"),
    (["run-local", "--pipeline", "gate", "--energy-kwh", "inf"], "--energy-kwh must be a finite number"),
    (["run-local", "--pipeline", "gate", "--min-savings", "nan"], "--min-savings must be a finite number"),
    (["run-local", "--candidates", "no-such-file.json"], "--candidates must be a JSON file, 'no-such-file.json' does not exist"),
    (["run-local", "--candidates", "."], "--candidates must be a JSON file, '.' is a directory"),
    (["run-local", "--pipeline", "gate", "--pipeline-root", "/dev/null"], "--pipeline-root must be a directory"),
    (["run-local", "--summary-json", "no-such-dir/summary.json"], "--summary-json: no such directory 'no-such-dir'"),
    (["run-local", "--summary-json", "."], "--summary-json must be a file path, got the directory '.'"),
    (["run-local", "--pipeline", "gate", "--summary-json", "s.json"], "--summary-json goes with --pipeline training"),
])
def test_bad_options_are_one_line_naming_the_option(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    captured = capsys.readouterr()
    text = " ".join((captured.out + captured.err).split())
    assert message in text and "Traceback" not in text
    assert not (tmp_path / "local_outputs").exists()  # nothing started, nothing written


def test_forecast_piped_into_head_ends_quietly_and_marks_the_best_window_in_words():
    result = subprocess.run(f"{sys.executable} -m greenkfp.pipelines.cli forecast --region GB --deadline 48h | head -3",
                            shell=True, capture_output=True, text=True)
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
    full = subprocess.run([sys.executable, "-m", "greenkfp.pipelines.cli", "forecast", "--region", "GB"],
                          capture_output=True, text=True, check=True)
    assert "<- best" in full.stdout


@pytest.mark.slow
def test_a_task_that_fails_inside_run_local_is_one_line_with_its_own_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.csv").write_text("size,colour,y\n" + "\n".join(f"{i},red,{i % 2}" for i in range(40)) + "\n")
    # a URI is read by the pipeline's first step (a local path would be checked before the run starts)
    code = main(["run-local", "--dataset", (tmp_path / "bad.csv").as_uri(), "--label-column", "y",
                 "--earliest-start", "2023-06-14T09:00:00Z"])
    out = capsys.readouterr().out
    assert code == 1 and "Traceback" not in out and "RuntimeError" not in out
    assert "task load-dataset failed: DatasetError: feature columns must be numeric; non-numeric: colour" in \
        " ".join(out.split())
    (log,) = (tmp_path / "local_outputs").glob("*/run.log")
    assert f"full log: {log}" in out.replace("\n", "")


def test_two_local_runs_at_once_keep_their_own_directories_and_logs(tmp_path):
    args = [sys.executable, "-m", "greenkfp.pipelines.cli", "run-local", "--pipeline", "gate",
            "--earliest-start", "2023-06-14T09:00:00Z", "--pipeline-root", str(tmp_path)]
    runs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    directories = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert len(directories) == 2 and all((d / "run.log").stat().st_size > 0 for d in directories)
    assert all(len(list(d.glob("greenkfp-carbon-gate-*"))) == 1 for d in directories)


@pytest.mark.parametrize("argv, message", [
    (["--selection-constraints", '{"min_accuracy": 2}'], "min_accuracy"),
    (["--selection-constraints", '{"bogus": 1}'], "selection_constraints has unknown field(s) bogus"),
    (["--selection-weights", '{"sci": 1}'], "weights apply to the 'chebyshev' and 'weighted_sum' rules only"),
    (["--hardware-profile", "bogus"], "bogus"),
    (["--hardware-overrides", '{"cpu_tdp_w": -5}'], "cpu_tdp_w"),
    (["--variants", "fp32", "fp32"], "variant_names must be unique; repeated: fp32"),
    (["--variants", "bogus"], "bogus"),
    (["--tolerance-points=-1"], "tolerance_points must be a finite number >= 0"),
    (["--functional-unit", "0"], "functional_unit_size must be a whole number > 0"),
    (["--expected-inferences=-1"], "expected_lifetime_inferences must be a finite number >= 0"),
    (["--sci-seconds", "0"], "max_seconds_per_variant must be a finite number > 0"),
    (["--intensity-basis", "bogus"], "intensity_basis must be one of annual_average, gate_window"),
    (["--country-iso-code", "XXXX"], "country_iso_code must be an ISO 3166-1 alpha-3 code"),
    (["--test-size", "0"], "test_size must be a fraction strictly between 0 and 1"),
    (["--dataset", "missing.csv", "--label-column", "y"], "no such file"),
    (["--dataset", "iris", "--label-column", "nope"], "nope"),
    (["--deadline", "2023-06-14T09:30:00Z", "--earliest-start", "2023-06-14T09:00:00Z"], "deadline"),
    (["--pipeline", "gate", "--dataset", "wine"], "--dataset applies to --pipeline training only"),
    (["--pipeline-root", ""], "--pipeline-root must name a directory"),
])
def test_every_training_option_is_checked_before_the_run_starts(argv, message, capsys, tmp_path, monkeypatch):
    """Exit 2, one line, and no run directory: the options are checked by the same rules the
    pipeline's check-training-options step applies before the gate waits."""
    monkeypatch.chdir(tmp_path)
    assert main(["run-local", *argv]) == 2
    captured = capsys.readouterr()
    text = " ".join((captured.out + captured.err).split())
    assert message in text and "Traceback" not in text
    assert not (tmp_path / "local_outputs").exists()


def test_the_pipeline_checks_its_options_before_the_gate():
    from greenkfp.pipelines.training import build_training_pipeline

    spec = build_training_pipeline("vertex").pipeline_spec
    tasks = spec.root.dag.tasks
    assert "check-training-options" in tasks
    assert "check-training-options" in tasks["carbon-forecast-gate"].dependent_tasks


@pytest.mark.parametrize("argv, message", [
    (["compile", "--portable", "--package-spec", "x'$(touch /tmp/PWNED)"], "without shell characters"),
    (["compile", "--portable", "--package-spec", "requests==2.0"], "must install greenkfp"),
    (["compile", "--spot-node-selector", "a b=c"], "spot_node_selector's label must be a Kubernetes label key"),
])
def test_compile_refuses_what_would_break_or_inject_into_pods(argv, message, capsys, tmp_path):
    assert main([*argv, "--output-dir", str(tmp_path / "out")]) == 2
    assert message in " ".join(capsys.readouterr().out.split())
    assert not (tmp_path / "out").exists()


def test_an_output_dir_that_is_a_file_is_one_line(tmp_path, capsys):
    target = tmp_path / "afile"
    target.write_text("x")
    assert main(["compile", "--output-dir", str(target)]) == 2
    assert "--output-dir must be a directory" in capsys.readouterr().out


def test_a_huge_region_name_is_echoed_in_one_short_line(capsys):
    assert main(["forecast", "--region", "X" * 100_000]) == 2
    out = capsys.readouterr().out
    assert len(out) < 1000 and "(100,000 characters)" in out


def test_a_long_wait_is_announced_on_the_screen_not_silent():
    from greenkfp.pipelines.local import ProgressLog

    events, log = [], io.StringIO()
    progress = ProgressLog(log, events.append, clock=lambda: 0.0)
    progress.write("12:00:00.000 - INFO - Executing task \x1b[96m'carbon-forecast-gate'\x1b[0m\n")
    progress.write("    waiting 3:59:00 for the green window\n")
    assert [(e.kind, e.task, e.status) for e in events] == [
        ("started", "carbon-forecast-gate", ""), ("waiting", "carbon-forecast-gate", "3:59:00")]
    assert "waiting 3:59:00" in log.getvalue()


@pytest.mark.parametrize("argv, message, code", [
    (["compile", "--portable", "--package-spec", "greenkfp @ https://user:PW123@pypi.example.com/g-0.1.0-py3-none-any.whl",
      "--output-dir", "OUT"], "--package-spec must not carry credentials", 2),
    (["forecast", "--duration", "0.0001h"], "at least one second", 2),
    (["run-local", "--pipeline", "gate", "--earliest-start", "9999-12-31T23:59Z"], "earliest_start must be between 1970", 2),
    (["run-local", "--pipeline", "gate", "--regions", "XX"], "'XX' is not in the embedded data", 2),
    (["run-local", "--pipeline", "gate", "--provider", "uk", "--regions", "DE-LU"], "uk: unknown region", 2),
    (["run-local", "--pipeline", "gate", "--pipeline-root", "gs://bucket/x"], "--pipeline-root must be a local directory", 2),
    (["run-local", "--pipeline", "gate", "--provider-option", "uk.base_url=http://127.0.0.1:9/?token=PW123"],
     "no query or fragment", 2),
    (["forecast", "--region", "[link=http://evil]GB[/link]"], "'[link=http://evil]GB[/link]' is not in the embedded", 2),
    (["submit", "kfp", "--host", "http://127.0.0.1:9", "--schedule"], "--schedule goes with --carbon-aware", 2),
    (["compile", "--credentials-secret", "UPPER_bad", "--output-dir", "OUT"], "credentials_secret must be a Kubernetes", 2),
])
def test_second_hostile_pass(argv, message, code, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == code
    out = " ".join(capsys.readouterr().out.split())
    assert message in out and "PW123" not in out and "Traceback" not in out
    assert not (tmp_path / "OUT").exists() and not (tmp_path / "local_outputs").exists()


def test_an_outage_is_exit_1_and_bad_input_exit_2(httpserver, capsys):
    httpserver.expect_request("/intensity/2023-06-14T09:00Z/fw48h").respond_with_data("down", status=503)
    code = main(["forecast", "--provider", "uk", "--start", "2023-06-14T09:00:00Z", "--provider-option",
                 f"uk.base_url={httpserver.url_for('')}", "--provider-option", 'uk.retry={"attempts": 1}'])
    assert code == 1 and "HTTP 503" in capsys.readouterr().out


def test_a_fifo_is_not_read_as_a_dataset(tmp_path):
    import os

    from greenkfp.components.data.datasets import DatasetError, load_source

    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    with pytest.raises(DatasetError, match="not a regular file"):
        load_source(str(fifo), "y")


def test_the_gates_asking_of_providers_is_bounded_in_all(monkeypatch):
    """Many regions x fallbacks x retries: once the gate's budget is spent, the rest are recorded
    as not asked (here the budget is zero), and the failure policy decides."""
    from greenkfp.components.carbon import GatePolicy, decide, gate

    monkeypatch.setattr(gate, "FETCH_BUDGET_S", -1.0)
    start = datetime(2023, 6, 14, 9, tzinfo=UTC)
    record = decide(GatePolicy(regions=("GB", "DE-LU"), duration=timedelta(hours=1)), clock=lambda: start).to_record()
    assert record.failure_policy_applied == "fail_open"
    assert all("not asked" in a.error for a in record.attempts)


@pytest.mark.parametrize("make, message", [
    (lambda d: (d / "link.json").symlink_to(d / "target.json") or "link.json", "must be a regular file or a new path"),
    (lambda d: __import__("os").mkfifo(d / "fifo.json") or "fifo.json", "must be a regular file or a new path"),
    (lambda d: "", "must name a file"),
    (lambda d: "newdir/", "must name a file"),
    (lambda d: "/proc/x.json", "not under /proc, /sys or /dev"),
    (lambda d: "~nouser-greenkfp/x.json", "--summary-json"),
])
def test_summary_json_never_replaces_a_special_file(make, message, capsys, tmp_path, monkeypatch):
    """The summary is written by renaming a new file over the path: a device, FIFO or link given
    as the path would be replaced (as root, /dev/null itself), so they are refused before the run."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "target.json").write_text("keep")
    path = make(tmp_path)
    assert main(["run-local", "--summary-json", path]) == 2
    assert message in " ".join(capsys.readouterr().out.split())
    assert (tmp_path / "target.json").read_text() == "keep" and not (tmp_path / "local_outputs").exists()
