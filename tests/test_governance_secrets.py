"""A ledger password given as a query parameter (``...?password=...``) or a KFP token in the
host's query is never printed, nor written into the audit's or the report's files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from greenkfp.components.records import AuditBaseline
from greenkfp.pipelines.cli import main

SECRET = "S3cretQ"


def _files_text(folder: Path) -> str:
    return "".join(path.read_text(errors="replace") for path in sorted(folder.rglob("*")) if path.is_file())


def test_a_password_query_parameter_of_the_ledger_is_in_no_output(postgres_server, tmp_path, capsys):
    url = f"{postgres_server.fresh_url()}&password={SECRET}"
    assert main(["report", "seed-demo", "--ledger", url, "--runs-per-month", "60", "--quarter", "2026Q3",
                 "--exports", str(tmp_path / "exports")]) == 0
    assert main(["audit", "--ledger", url, "--output", str(tmp_path / "audit"), "--from", "2026-04", "--to", "2026-06",
                 "--gcp-export", str(tmp_path / "exports" / "gcp-carbon-footprint.jsonl"),
                 "--aws-export", str(tmp_path / "exports" / "aws-carbon-emissions.csv"),
                 "--project-map", str(tmp_path / "exports" / "project-map.json")]) == 0
    assert main(["report", "quarterly", "--quarter", "2026Q3", "--ledger", url,
                 "--baseline", str(tmp_path / "audit" / "baseline.json"), "--output", str(tmp_path / "report")]) == 0
    out, err = capsys.readouterr()
    assert "password=***" in _files_text(tmp_path / "audit")
    for text in (out, err, _files_text(tmp_path / "audit"), _files_text(tmp_path / "report")):
        assert SECRET not in text


@pytest.mark.parametrize("command", [
    ["report", "quarterly", "--quarter", "2026Q4", "--baseline", "{baseline}", "--output", "{out}"],
    ["audit", "--output", "{out}"],
    ["report", "seed-demo"],
])
def test_an_unreachable_ledgers_password_parameter_is_not_printed(command, tmp_path, capsys):
    url = f"postgresql+psycopg://postgres@127.0.0.1:1/budgets?password={SECRET}"
    baseline = tmp_path / "baseline.json"
    months = ["2026-07", "2026-08", "2026-09"]
    baseline.write_text(json.dumps({
        "schema": AuditBaseline.SCHEMA, "generated_at": "2026-10-01T00:00:00Z", "months": months,
        "teams": {"research": {"tier": "hard", "monthly_g": dict.fromkeys(months, 100.0), "mean_monthly_g": 100.0,
                               "runs": 3}},
        "target": {"reduction_percent": 30.0, "by": "2027-09"},
        "sources": {"ledger": "sqlite:///ledger.db", "kfp_host": None, "cloud_exports": []}}))
    args = [part.format(baseline=baseline, out=tmp_path / "out") for part in command] + ["--ledger", url]
    assert main(args) != 0
    out, err = capsys.readouterr()
    assert SECRET not in out + err and "password=***" in err


def test_a_token_in_the_kfp_hosts_query_is_not_printed(tmp_path, capsys):
    assert main(["audit", "--ledger", f"sqlite:///{tmp_path / 'none.db'}", "--output", str(tmp_path / "out"),
                 "--kfp-host", f"http://127.0.0.1:1/?token={SECRET}"]) != 0
    out, err = capsys.readouterr()
    assert SECRET not in out + err and err
