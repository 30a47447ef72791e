"""The governance command lines under hostile input: `greenkfp budget`, `greenkfp gatekeeper
serve`, `python -m greenkfp.pipelines.deploy`, and the redaction of credentials in their
messages. Every bad value is one line naming the option and the value, a non-zero exit, no
traceback and nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from conftest import free_port

from greenkfp.components._messages import redact_urls
from greenkfp.components.governance import Ledger
from greenkfp.pipelines.cli import main

NOW = datetime.now(timezone.utc)
P = NOW.strftime("%Y-%m")
TEAM_TOKEN = "a-team-token-0123456789"
GATEKEEPER_TOKENS = "GREENKFP_GATEKEEPER_TOKENS"


def budget(capsys, url, *argv):
    code = main(["budget", *argv, "--ledger", url, "--actor", "lead"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def reserve(*extra, run_id="r"):
    return ["reserve", "--team", "t", "--period", P, "--estimate-g", "1", "--run-id", run_id, *extra]


def request(expires_at):
    return ["exception", "request", "--team", "t", "--period", P, "--amount-g", "5", "--reason", "x",
            "--expires-at", expires_at]


@pytest.mark.parametrize("argv, message", [
    (reserve("--ttl", "9999999999d"), "--ttl must be between 0 and 366 days, got '9999999999d'"),
    (reserve("--ttl", "3000000d"), "--ttl must be between 0 and 366 days, got '3000000d'"),
    (reserve("--ttl", "1e300"), "--ttl must be between 0 and 366 days, got '1e300'"),
    (reserve("--ttl", "367d"), "--ttl must be between 0 and 366 days, got '367d'"),
    (reserve("--ttl", "0"), "--ttl must be longer than 0, got '0'"),
    (reserve("--ttl", "nan"), "--ttl must be finite, got 'nan'"),
    (reserve("--pipeline", ""), "--pipeline must be a name of 1 to 256 printable characters"),
    (reserve("--pipeline", "p" * 257), "--pipeline must be a name of 1 to 256 printable characters"),
    (reserve("--pipeline", "a\nb"), "--pipeline must be a name of 1 to 256 printable characters"),
    (["reserve", "--team", "t", "--period", P, "--estimate-g", "\u0661", "--run-id", "r"],
     "--estimate-g must be a finite number of grams"),
    (["set-limit", "--team", "t", "--period", P, "--limit-g", "\u0661\u0660", "--tier", "hard"],
     "--limit-g must be a finite number of grams"),
    (["exception", "approve", "--id", "99999999999999999999"],
     "--id must be an exception's id, a whole number from 1 to 9223372036854775807, got '99999999999999999999'"),
    (["exception", "approve", "--id", "9223372036854775808"], "--id must be an exception's id, a whole number from 1 to"),
    (["exception", "approve", "--id", "\u0663"], "--id must be an exception's id, a whole number from 1 to"),
    (["exception", "reject", "--id", "", "--reason", "no"], "--id must be an exception's id, a whole number from 1 to"),
    (["exception", "approve", "--id", "9223372036854775807"],
     "--id names no exception request in the ledger, got 9223372036854775807"),
    (request("9999999999d"), "--expires-at must be between 0 and 366 days, got '9999999999d'"),
    (request("3000000d"), "--expires-at must be between 0 and 366 days, got '3000000d'"),
    (request("9999-12-31T23:59:59+00:00"),
     "--expires-at must be at most 366 days from now, got '9999-12-31T23:59:59+00:00'"),
    (["transfer", "--from-team", "t", "--to-team", "t", "--period", P, "--amount-g", "1", "--reason", "r"],
     "--to-team must be another team than --from-team, got 't'"),
])
def test_budget_options_are_bounded_up_front(tmp_path, capsys, argv, message):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with Ledger(url) as ledger:
        ledger.set_limit("t", P, 100, "hard", actor="lead")
        before = ledger.entries()
    code, out, err = budget(capsys, url, *argv)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith(f"error: {message}") and "Traceback" not in err
    with Ledger(url) as ledger:
        assert ledger.entries() == before


def test_an_expiry_within_the_year_still_works(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with Ledger(url) as ledger:
        ledger.set_limit("t", P, 100, "hard", actor="lead")
    code, out, err = budget(capsys, url, *request((NOW + timedelta(days=365)).isoformat()))
    assert code == 0, err
    code, out, err = budget(capsys, url, *reserve("--ttl", "366d"))
    assert code == 0 and out.startswith("granted"), err


# --------------------------------------------------------------------------- credentials in messages


@pytest.mark.parametrize("text, secrets, shown", [
    ("postgresql+psycopg://u@h/db?password=s1", ["s1"], "postgresql+psycopg://***@h/db?password=***"),
    ("postgresql+psycopg://u@h/db?sslmode=require&PassWord=s1&x=1", ["s1"],
     "postgresql+psycopg://***@h/db?sslmode=require&PassWord=***&x=1"),
    ("sqlite:///x.db?passwd=s1&pwd=s2", ["s1", "s2"], "sqlite:///x.db?passwd=***&pwd=***"),
    ("http://h/p?api_key=s1#top", ["s1"], "http://h/p?api_key=***#top"),
    ("got 'http://h/?access_token=s1' with a query", ["s1"], "got 'http://h/?access_token=***' with a query"),
    ("http://h/?client_secret=s1&region=GB&key=s2", ["s1", "s2"], "http://h/?client_secret=***&region=GB&key=***"),
    ("postgresql://user:p@s1@host:5432/db", ["p@s1"], "postgresql://***@host:5432/db"),
    ("http://user:s1@host/ and http://other/?token=s2", ["s1", "s2"], "http://***@host/ and http://other/?token=***"),
    ("http://h/?region=GB&page=2", [], "http://h/?region=GB&page=2"),
])
def test_redact_urls_masks_userinfo_and_secret_query_parameters(text, secrets, shown):
    assert redact_urls(text) == shown
    assert not any(secret in redact_urls(text) for secret in secrets)


def test_a_password_in_the_ledger_urls_query_is_never_printed(tmp_path):
    url = "postgresql+psycopg://admin@127.0.0.1:1/ledger?password=s3cret-in-query&sslpassword=s3cret-ssl"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), GATEKEEPER_TOKENS: f"a={TEAM_TOKEN}"}
    for argv in (["budget", "status", "--team", "t", "--period", P, "--ledger", url],
                 ["gatekeeper", "serve", "--kfp-url", "http://127.0.0.1:9", "--ledger", url,
                  "--port", str(free_port())]):
        result = subprocess.run([sys.executable, "-m", "greenkfp.pipelines.cli", *argv], capture_output=True,
                                text=True, cwd=tmp_path, env=env, timeout=120)
        assert result.returncode == 2 and result.stdout == "", result.stderr
        assert result.stderr.startswith("error: --ledger postgresql+psycopg://***@127.0.0.1:1/ledger?password=***")
        assert "s3cret" not in result.stderr and "Traceback" not in result.stderr
        assert result.stderr.count("\n") == 1, result.stderr


# --------------------------------------------------------------------------- gatekeeper serve


@pytest.mark.parametrize("argv, message", [
    (["--upstream-timeout", "1e308"], "--upstream-timeout must be a number of seconds from 0 (excluded) to 3600, "
                                      "got '1e308'"),
    (["--upstream-timeout", "nan"], "--upstream-timeout must be a number of seconds"),
    (["--status-cache", "-1"], "--status-cache must be a number of seconds from 0 (included) to 3600, got '-1'"),
    (["--history-cache", "inf"], "--history-cache must be a number of seconds"),
    (["--threads", "x"], "--threads must be a whole number from 0 to 256, got 'x'"),
    (["--threads", "100000"], "--threads must be a whole number from 0 to 256, got '100000'"),
    (["--workers", "99999999999999999999"], "--workers must be a whole number from 1 to 64"),
    (["--port", "\u0668\u0660\u0668\u0660"], "--port must be a whole number from 1 to 65535"),
    (["--max-body-mib", "0"], "--max-body-mib must be a whole number from 1 to 256, got '0'"),
    (["--max-body-mib", "1e9"], "--max-body-mib must be a whole number from 1 to 256, got '1e9'"),
    (["--reservation-ttl", "9999999999d"], "--reservation-ttl must be between 0 and 366 days"),
    (["--reservation-ttl", "0"], "--reservation-ttl must be longer than 0"),
    (["--region", ""], "--region: region '' is not in the embedded data"),
    (["--region", "Atlantis"], "--region: region 'Atlantis' is not in the embedded data"),
    (["--provider", "nope"], "--provider must be one of embedded"),
    (["--hardware-profile", "nope"], "--hardware-profile: unknown hardware profile 'nope'"),
    (["--host", ""], "--host must be an address to listen on"),
    (["--host", "nonexistent.invalid"], "--host 'nonexistent.invalid' is not an address to listen on"),
    (["--kfp-url", ""], "--kfp-url must be an http(s):// URL"),
    (["--kfp-url", "http://u:pw@h/?token=t0k3n"], "--kfp-url must be an http(s):// URL"),
])
def test_serve_options_are_checked_before_anything_opens(argv, message, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("GREENKFP_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv(GATEKEEPER_TOKENS, f"a={TEAM_TOKEN}")
    ledger = tmp_path / "l.db"
    code = main(["gatekeeper", "serve", "--kfp-url", "http://127.0.0.1:9", "--ledger", f"sqlite:///{ledger}",
                 "--port", str(free_port()), *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: {message}") and err.count("\n") == 1, err
    assert "Traceback" not in err and TEAM_TOKEN not in err and "t0k3n" not in err and "pw@" not in err
    assert not ledger.exists()  # nothing opened, nothing written


def test_serve_says_when_its_address_is_taken(monkeypatch, capsys, tmp_path):
    import socket

    monkeypatch.setenv(GATEKEEPER_TOKENS, f"a={TEAM_TOKEN}")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["gatekeeper", "serve", "--kfp-url", "http://127.0.0.1:9", "--ledger",
                     f"sqlite:///{tmp_path / 'l.db'}", "--port", str(port)])
    err = capsys.readouterr().err
    assert code == 2 and err == f"error: --host/--port: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    assert not (tmp_path / "l.db").exists()


# --------------------------------------------------------------------------- the manifests' generator


def test_the_manifest_generator_has_a_real_command_line(tmp_path):
    def deploy(*argv):
        return subprocess.run([sys.executable, "-m", "greenkfp.pipelines.deploy", *argv], capture_output=True,
                              text=True, cwd=tmp_path, timeout=120)

    shown = deploy("--help")
    assert shown.returncode == 0 and shown.stdout.startswith("usage: python -m greenkfp.pipelines.deploy")
    assert "DIR" in shown.stdout and list(tmp_path.iterdir()) == []  # no folder named --help
    for argv in (["--bogus"], ["out", "extra"], [""]):
        refused = deploy(*argv)
        assert refused.returncode == 2 and "error:" in refused.stderr and "Traceback" not in refused.stderr, argv
        assert list(tmp_path.iterdir()) == [], argv
    (tmp_path / "file").write_text("")
    refused = deploy("file")
    assert refused.returncode == 2 and refused.stderr == "error: DIR 'file' is a file, not a folder\n"
    written = deploy("out")
    assert written.returncode == 0, written.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["deployment.yaml", "kustomization.yaml",
                                                                     "service.yaml"]


@pytest.mark.parametrize("argv, message", [
    (["set-limit", "--team", " padded", "--period", P, "--limit-g", "5", "--tier", "hard"], "--team must be a name"),
    (["set-limit", "--team", "t", "--period", P, "--limit-g", "5", "--tier", "medium"], "--tier must be hard or soft"),
    (["set-limit", "--team", "t", "--period", P, "--limit-g", "5", "--tier", "hard", "--overdraft-percent", "5"],
     "--overdraft-percent must be 0 for a hard budget"),
    (["set-limit", "--team", "t", "--period", P, "--limit-g", "5", "--tier", "soft", "--overdraft-percent", "101"],
     "--overdraft-percent must be a number from 0 to 100"),
    (["board", "add", "x" * 200], "NAME must be a name of 1 to 128 characters"),
])
def test_a_command_that_may_create_the_ledger_creates_none_for_a_bad_value(tmp_path, capsys, argv, message):
    path = tmp_path / "new.db"
    code, _, err = budget(capsys, f"sqlite:///{path}", *argv)
    assert code == 2 and err.startswith(f"error: {message}") and err.count("\n") == 1, err
    assert not path.exists()


@pytest.mark.parametrize("url, env, message", [
    ("ftp://gatekeeper", {"GREENKFP_GATEKEEPER_TOKEN": "t0123456789"}, "--gatekeeper-url: gatekeeper_url must be an"),
    ("http://u:secret@gatekeeper:8888", {"GREENKFP_GATEKEEPER_TOKEN": "t0123456789"},
     "--gatekeeper-url: gatekeeper_url must not hold credentials"),
    ("http://gatekeeper:8888", {"GREENKFP_GATEKEEPER_TOKEN": ""}, "environment variable GREENKFP_GATEKEEPER_TOKEN"),
])
def test_run_local_checks_the_gatekeeper_before_the_run_starts(tmp_path, monkeypatch, capfd, url, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    code = main(["run-local", "--pipeline", "training", "--gatekeeper-url", url, "--duration", "1h"])
    captured = capfd.readouterr()
    shown = captured.out + captured.err
    assert code == 2 and message in " ".join(shown.split()) and ":secret@" not in shown, shown
    assert shown.count("\n") == 1, shown  # one line, also at 80 columns
    assert not (tmp_path / "local_outputs").exists()  # no run directory: it stopped before the run


@pytest.mark.parametrize("token, message", [
    ("wrong-token-0123456789", "--gatekeeper-url: gatekeeper_url: {url} does not take the token in "
                               "GREENKFP_GATEKEEPER_TOKEN (HTTP 401)"),
    ("admin", "--gatekeeper-url: gatekeeper_url: the token in GREENKFP_GATEKEEPER_TOKEN is the admin's, not a team's"),
    (None, "cannot reach"),
])
def test_run_local_asks_the_gatekeeper_once_before_the_run_starts(start_gatekeeper, tmp_path, monkeypatch, capfd,
                                                                  token, message):
    from conftest import ADMIN

    live = start_gatekeeper("http://127.0.0.1:9")
    url = live.url if token else f"http://127.0.0.1:{free_port()}"  # None: nobody listens there
    monkeypatch.setenv("GREENKFP_GATEKEEPER_TOKEN", ADMIN if token == "admin" else token or "t0123456789abcdef")
    monkeypatch.chdir(tmp_path)
    code = main(["run-local", "--pipeline", "training", "--gatekeeper-url", url, "--duration", "1h"])
    captured = capfd.readouterr()
    shown = " ".join((captured.out + captured.err).split())
    assert code == 2 and message.format(url=url) in shown, shown
    assert not (tmp_path / "local_outputs").exists()
