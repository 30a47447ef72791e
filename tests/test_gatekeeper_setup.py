"""Setting the gatekeeper up: its tokens, its command line, its Kubernetes manifests, its benchmark."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from conftest import free_port, serve_gatekeeper
from greenkfp.components.governance.tokens import Identity, TokenError, Tokens, bearer
from greenkfp.pipelines.cli import main

ROOT = Path(__file__).resolve().parents[1]
TEAM_A, TEAM_B, ADMIN = "a-team-token-0123456789", "b-team-token-0123456789", "the-admin-token-01234567"


# --------------------------------------------------------------------------- tokens


def test_tokens_from_variables_files_and_a_mounted_secret_folder(tmp_path):
    folder = tmp_path / "teams"  # as Kubernetes mounts a secret: one file per key, and ..data links
    (folder / "..2026_01_01").mkdir(parents=True)
    (folder / "..2026_01_01" / "beta").write_text(TEAM_B + "\n")
    (folder / "..data").symlink_to(folder / "..2026_01_01")
    (folder / "beta").symlink_to(folder / "..data" / "beta")
    (tmp_path / "admin").write_text(ADMIN)
    (tmp_path / "board").write_text("# members\ncarol=carol-board-token-0123\n\n")
    tokens = Tokens.from_env({"GREENKFP_GATEKEEPER_TOKENS": f"alpha={TEAM_A}",
                              "GREENKFP_GATEKEEPER_TOKENS_FILE": str(folder),
                              "GREENKFP_GATEKEEPER_ADMIN_TOKEN_FILE": str(tmp_path / "admin"),
                              "GREENKFP_GATEKEEPER_BOARD_TOKENS_FILE": str(tmp_path / "board"),
                              "GREENKFP_KFP_TOKEN": "upstream-token-0123456789"})
    assert tokens.team_names == ("alpha", "beta") and tokens.upstream == "upstream-token-0123456789"
    assert tokens.identify(TEAM_A) == Identity("team", "alpha") and tokens.identify(TEAM_B) == Identity("team", "beta")
    assert tokens.identify(ADMIN) == Identity("admin", "admin")
    assert tokens.identify("carol-board-token-0123") == Identity("board", "carol")
    for wrong in (None, "", TEAM_A[:-1], TEAM_A + "x", TEAM_A.upper()):
        assert tokens.identify(wrong) is None
    shown = repr(tokens)
    assert "alpha" in shown and not any(t in shown for t in (TEAM_A, TEAM_B, ADMIN, "upstream-token"))


@pytest.mark.parametrize("environ, message", [
    ({"GREENKFP_GATEKEEPER_TOKENS": "alpha=short"}, "the token of team 'alpha' must be 16 to 4,096"),
    ({"GREENKFP_GATEKEEPER_TOKENS": f"alpha={TEAM_A},beta={TEAM_A}"}, "one token is given to two identities"),
    ({"GREENKFP_GATEKEEPER_TOKENS": f"alpha={TEAM_A},alpha={TEAM_B}"}, "team 'alpha' is given twice"),
    ({"GREENKFP_GATEKEEPER_TOKENS": TEAM_A}, "entry 1 must look like team=token"),
    ({"GREENKFP_GATEKEEPER_TOKENS": f"al pha={TEAM_A}"}, "team name 'al pha' must be"),
    ({"GREENKFP_GATEKEEPER_TOKENS": f"alpha={TEAM_A}", "GREENKFP_GATEKEEPER_ADMIN_TOKEN": TEAM_A},
     "one token is given to two identities"),
    ({"GREENKFP_GATEKEEPER_TOKENS_FILE": "/nonexistent/teams"}, "no such file or folder"),
    ({"GREENKFP_GATEKEEPER_ADMIN_TOKEN": ADMIN, "GREENKFP_GATEKEEPER_ADMIN_TOKEN_FILE": "/x"}, "not both"),
])
def test_unusable_tokens_are_refused_without_showing_them(environ, message):
    with pytest.raises(TokenError, match=message) as raised:
        Tokens.from_env(environ)
    assert not any(token in str(raised.value) for token in (TEAM_A, TEAM_B, ADMIN, "short"))


def test_bearer_reads_only_a_bearer_header():
    assert bearer(f"Bearer {TEAM_A}") == TEAM_A and bearer(f"bearer  {TEAM_A} ") == TEAM_A
    assert bearer(None) is None and bearer("Basic dXNlcjpwYXNz") is None and bearer("Bearer ") is None


# --------------------------------------------------------------------------- the command line


@pytest.mark.parametrize("argv, environ, message", [
    ([], {}, "no team tokens: set GREENKFP_GATEKEEPER_TOKENS"),
    (["--kfp-url", "ftp://kfp"], {"GREENKFP_GATEKEEPER_TOKENS": f"a={TEAM_A}"}, "--kfp-url must be an http(s)://"),
    (["--port", "0"], {"GREENKFP_GATEKEEPER_TOKENS": f"a={TEAM_A}"}, "--port must be a whole number from 1 to 65535"),
    (["--reservation-ttl", "soon"], {"GREENKFP_GATEKEEPER_TOKENS": f"a={TEAM_A}"}, "--reservation-ttl must be"),
    (["--policy-file", "/nonexistent.rego"], {"GREENKFP_GATEKEEPER_TOKENS": f"a={TEAM_A}"},
     "error: --policy-file: cannot read policy file /nonexistent.rego"),
    (["--policy-url", "ftp://x"], {"GREENKFP_GATEKEEPER_TOKENS": f"a={TEAM_A}"},
     "error: --policy-url: the OPA URL must be an http(s):// URL"),
    (["--ledger", "mysql://x/y"], {"GREENKFP_GATEKEEPER_TOKENS": f"a={TEAM_A}"}, "ledger must be a sqlite:///"),
])
def test_serve_refuses_bad_settings_in_one_line(argv, environ, message, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("GREENKFP_")]:
        monkeypatch.delenv(name)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    argv = ["gatekeeper", "serve", "--kfp-url", "http://127.0.0.1:9", "--ledger", f"sqlite:///{tmp_path / 'l.db'}",
            "--port", str(free_port()), *argv]
    assert main(argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert message in err and "Traceback" not in err and TEAM_A not in err


def test_serve_refuses_to_start_on_a_file_that_is_not_a_ledger(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("GREENKFP_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GREENKFP_GATEKEEPER_TOKENS", f"a={TEAM_A}")
    (tmp_path / "notes.db").write_text("my notes\n" * 100)
    assert main(["gatekeeper", "serve", "--kfp-url", "http://127.0.0.1:9", "--ledger", "sqlite:///notes.db",
                 "--port", str(free_port())]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert err == "error: --ledger sqlite:///notes.db is not a greenkfp ledger (not a SQLite database: file is not a " \
                  "database)"


def test_serve_does_not_create_a_ledger_that_is_not_there(monkeypatch, capsys, tmp_path):
    """A --ledger typo is one line at start-up, not a new empty ledger that refuses every team."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("GREENKFP_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GREENKFP_GATEKEEPER_TOKENS", f"a={TEAM_A}")
    assert main(["gatekeeper", "serve", "--kfp-url", "http://127.0.0.1:9", "--ledger", "sqlite:///nonexist.db",
                 "--port", str(free_port())]) == 2
    assert capsys.readouterr().err == "error: --ledger sqlite:///nonexist.db does not exist\n"
    assert not (tmp_path / "nonexist.db").exists()


def test_serve_runs_the_gatekeeper_until_stopped(tmp_path):
    """The command as a user types it (two worker processes), on a fresh SQLite ledger."""
    from greenkfp.components.governance.ledger import Ledger

    Ledger(f"sqlite:///{tmp_path / 'ledger.db'}").close()  # serve opens an existing ledger only
    env = {**os.environ, "GREENKFP_GATEKEEPER_TOKENS": f"a={TEAM_A}", "GREENKFP_GATEKEEPER_ADMIN_TOKEN": ADMIN}
    with serve_gatekeeper(["--ledger", f"sqlite:///{tmp_path / 'ledger.db'}", "--kfp-url", "http://127.0.0.1:9",
                           "--workers", "2"], env, tmp_path, start_timeout_s=60) as served:
        url = served.url
        period = time.strftime("%Y-%m", time.gmtime())
        put = httpx.put(f"{url}/apis/greenkfp/v1/budgets/a/{period}", json={"limit_g": 100, "tier": "hard"},
                        headers={"Authorization": f"Bearer {ADMIN}"})
        assert put.status_code == 200, put.text
        answers = [httpx.post(url + "/apis/greenkfp/v1/admissions", headers={"Authorization": f"Bearer {TEAM_A}"},
                              json={"pipeline": "p", "run_id": f"r{i}", "energy_kwh": 0.2}).json() for i in range(4)]
        assert [a["granted"] for a in answers] == [True, True, True, False]  # 32.5 g each against 100 g
    output = served.output
    assert "greenkfp gatekeeper on http://127.0.0.1" in " ".join(output.split()) and TEAM_A not in output


# --------------------------------------------------------------------------- manifests


def _manifests() -> list[dict]:
    return [document for path in sorted((ROOT / "deploy" / "gatekeeper").glob("*.yaml"))
            for document in yaml.safe_load_all(path.read_text())]


def test_the_manifests_are_a_fresh_generation():
    from greenkfp.pipelines.deploy import gatekeeper_manifests

    folder = ROOT / "deploy" / "gatekeeper"
    assert {p.name for p in folder.glob("*.yaml")} == set(gatekeeper_manifests())
    for name, text in gatekeeper_manifests().items():
        assert (folder / name).read_text() == text, f"{name} differs: run python -m greenkfp.pipelines.deploy"


def test_the_manifests_parse_and_reference_secrets_only_by_name():
    from greenkfp.pipelines.cli import build_parser
    from greenkfp.pipelines.deploy import SECRETS
    from greenkfp.pipelines.gatekeeper_cli import check_options

    documents = _manifests()
    kinds = {d["kind"]: d for d in documents}
    assert {"Deployment", "Service", "Kustomization"} <= set(kinds)
    assert not any(d["kind"] == "Secret" for d in documents)  # no secret values, ever
    text = json.dumps(documents)
    assert "stringData" not in text and '"data"' not in text
    deployment, service = kinds["Deployment"], kinds["Service"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    referenced = {ref["secretKeyRef"]["name"] for ref in (e.get("valueFrom") for e in container["env"]) if ref}
    referenced |= {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert referenced == set(SECRETS.values())
    for variable in container["env"]:  # a value in plain text is a path or a URL, never a token
        assert "valueFrom" in variable or variable["value"].startswith("/var/run/secrets/"), variable
    # the command is one the CLI accepts, and the probes and the service reach its port
    args = build_parser().parse_args(container["command"][1:])
    assert args.host == "0.0.0.0" and args.kfp_url.startswith("http://ml-pipeline.")
    port = container["ports"][0]["containerPort"]
    assert check_options(args)["port"] == port and service["spec"]["ports"][0]["targetPort"] == "http"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert pod["securityContext"]["runAsNonRoot"] is True


# --------------------------------------------------------------------------- the benchmark


def test_bench_gatekeeper_runs_and_finds_no_overspend(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_gatekeeper.py"), "--seconds", "1",
                             "--clients", "5", "--rate", "20", "--ledgers", "sqlite", "--json", str(out)],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    (figures,) = json.loads(out.read_text())["results"]
    assert figures["overspend"]["count"] == 0 and figures["overspend"]["consistent"]
    assert figures["saturation"]["admissions"] > 0 and figures["offered"]["p99_ms"] > 0
