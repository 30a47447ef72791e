"""`greenkfp run-local` with provider options: the options reach every step that prices carbon
(the gate, training's hourly pricing, the SCI's annual average), read from the records the run
leaves in its directory. Each run starts from a temporary directory (a component can import
from the current one) and keeps small: one candidate, a small dataset."""

import json
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from greenkfp.components.carbon import annual_average

pytestmark = pytest.mark.slow
CANDIDATES = [{"name": "logreg", "estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 300}}]


def run_local(tmp_path, *args):
    (tmp_path / "candidates.json").write_text(json.dumps(CANDIDATES))
    result = subprocess.run([sys.executable, "-m", "greenkfp.pipelines.cli", "run-local", "--pipeline-root", "root", *args],
                            cwd=tmp_path, capture_output=True, text=True, timeout=900)
    logs = list((tmp_path / "root").glob("*/run.log"))
    assert result.returncode == 0, result.stdout + result.stderr + "".join(p.read_text()[-4000:] for p in logs)
    (run_dir,) = (tmp_path / "root").glob("*/greenkfp-*")
    return run_dir


def read(path):
    return json.loads(path.read_text())


def test_gate_pipeline_with_a_replay_year(tmp_path):
    run_dir = run_local(tmp_path, "--pipeline", "gate", "--replay-year", "2023")
    record = read(run_dir / "carbon-forecast-gate" / "decision")
    assert record["inputs"]["provider_options"] == {"embedded": {"replay_year": 2023}}
    (region,) = record["regions"]
    assert region["data_kind"] == "replayed_historical" and "(same hour of the week in 2023)" in region["note"]
    assert record["should_run"] is True


def test_flagship_with_a_replay_year_prices_every_step_with_that_year(tmp_path):
    run_dir = run_local(tmp_path, "--replay-year", "2023", "--dataset", "iris", "--candidates", "candidates.json")
    decision = read(run_dir / "carbon-forecast-gate" / "decision")
    assert decision["regions"][0]["data_kind"] == "replayed_historical" and "in 2023" in decision["regions"][0]["note"]
    # training: the hourly pricing of the fit's hours replays 2023 as well
    (training_path,) = run_dir.glob("**/training_record")
    training = read(training_path)
    pricing = training["emissions"]["hourly_pricing"]
    assert pricing["provider"] == "embedded" and pricing["data_kind"] == "replayed_historical"
    assert "(same hour of the week in 2023)" in pricing["note"]
    # SCI: the annual average is 2023's, not the latest year's
    (sci_path,) = run_dir.glob("**/sci_reports")
    scored = [e for e in read(sci_path) if e["status"] == "scored"]
    assert scored
    expected = annual_average(decision["region"], year=2023)
    for entry in scored:
        assert entry["intensity_g_per_kwh"] == pytest.approx(expected.gco2_per_kwh, rel=1e-12)
        assert entry["report"]["I"]["source"]["method"] == "annual_average"
        assert "hourly values of 2023 (the replay year" in entry["intensity_basis"]
    # the report: the training step's own hourly figure as its cross-check
    (report_path,) = run_dir.glob("**/report_json")
    report = read(report_path)
    assert report["training"]["hourly_g"] == pytest.approx(training["emissions"]["hourly_g"])
    assert report["training"]["scheduled_g"] == pytest.approx(
        training["energy"]["energy_kwh"] * decision["intensity_now_gco2_per_kwh"])


def test_flagship_with_a_live_providers_base_url_reaches_the_gate_and_training(tmp_path, httpserver):
    """The UK provider on a local server: the gate's forecast and training's hourly pricing both
    come from it (the base_url option reached both); the SCI's annual average stays embedded."""
    from werkzeug import Response

    def forecast(request):
        stamp = request.path.split("/")[2]
        start = datetime.strptime(stamp, "%Y-%m-%dT%H:%MZ").replace(tzinfo=timezone.utc)
        slot = timedelta(minutes=30)
        data = [{"from": (start + i * slot).strftime("%Y-%m-%dT%H:%MZ"),
                 "to": (start + (i + 1) * slot).strftime("%Y-%m-%dT%H:%MZ"),
                 "intensity": {"forecast": 100 + 10 * (i % 7), "actual": None, "index": "low"}} for i in range(96)]
        return Response(json.dumps({"data": data}), content_type="application/json")

    httpserver.expect_request(re.compile(r"^/intensity/[^/]+/fw48h$")).respond_with_handler(forecast)
    run_dir = run_local(tmp_path, "--provider", "uk", "--provider-option", f"uk.base_url={httpserver.url_for('')}",
                        "--provider-option", "uk.retry={\"attempts\": 1}", "--dataset", "iris",
                        "--candidates", "candidates.json")
    decision = read(run_dir / "carbon-forecast-gate" / "decision")
    assert decision["attempts"] == [{"provider": "uk", "region": "GB", "ok": True, "error_kind": None, "error": None}]
    assert decision["inputs"]["provider_options"]["uk"]["retry"] == {"attempts": 1}
    (training_path,) = run_dir.glob("**/training_record")
    pricing = read(training_path)["emissions"]["hourly_pricing"]
    assert pricing["provider"] == "uk" and pricing["data_kind"] == "forecast" and 100 <= pricing["intensity_g_per_kwh"] <= 160
    paths = [request.path for request, _ in httpserver.log]
    assert len(paths) == 2 and all(p.endswith("/fw48h") for p in paths)  # the gate's and the fit's
    (sci_path,) = run_dir.glob("**/sci_reports")
    scored = [e for e in read(sci_path) if e["status"] == "scored"]
    assert scored and all(e["report"]["I"]["source"]["provider"] == "embedded" for e in scored)
