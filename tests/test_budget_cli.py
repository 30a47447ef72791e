"""`greenkfp budget`: the ledger from the command line (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from greenkfp.components.governance import Ledger
from greenkfp.pipelines.cli import main

P = "2026-12"


def budget(capsys, url, *argv, actor="lead"):
    """Run `greenkfp budget ...`; (exit code, stdout, stderr)."""
    command, *rest = argv
    if command in ("exception", "board"):
        command, action, *rest = argv
        command = [command, action]
    else:
        command = [command]
    code = main(["budget", *command, "--ledger", url, "--actor", actor, *rest])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_budget_commands_end_to_end(ledger_url, capsys):
    run = lambda *argv, **kw: budget(capsys, ledger_url, *argv, **kw)  # noqa: E731
    code, out, _ = run("set-limit", "--team", "research", "--period", P, "--limit-g", "1000", "--tier", "hard")
    assert code == 0 and "limit_g  1,000 g" in out
    assert run("set-limit", "--team", "search", "--period", P, "--limit-g", "5000", "--tier", "soft",
               "--overdraft-percent", "10")[0] == 0

    code, out, _ = run("reserve", "--team", "research", "--period", P, "--estimate-g", "600", "--run-id", "run-1",
                       "--pipeline", "training", actor="gatekeeper")
    assert code == 0 and out.startswith("granted 600 g for run run-1 (team research, 2026-12); remaining 400 g")
    code, out, _ = run("reserve", "--team", "research", "--period", P, "--estimate-g", "500", "--run-id", "run-2")
    assert code == 3 and out.startswith("refused 500 g for run run-2")
    assert '  - hard budget of team "research" for 2026-12: estimate 500 g exceeds remaining 400 g' in out
    code, out, _ = run("reserve", "--team", "research", "--period", P, "--estimate-g", "500", "--run-id", "run-2",
                       "--json")
    answer = json.loads(out)
    assert code == 3 and answer["replayed"] and not answer["granted"]
    assert answer["schema"] == "greenkfp.budget_decision/v1"
    code, out, _ = run("reserve", "--team", "search", "--period", P, "--estimate-g", "5200", "--run-id", "run-3")
    assert code == 0 and "review required" in out and "soft tier's overdraft" in out

    code, out, _ = run("settle", "--team", "research", "--run-id", "run-1", "--actual-g", "480")
    assert code == 0 and out.startswith("settled run run-1: 480 g (reserved 600 g, released 120 g)")
    assert run("settle", "--team", "research", "--run-id", "run-1", "--actual-g", "480")[0] == 0  # the same figure again

    assert "review board: carol" in run("board", "add", "carol")[1]
    code, out, _ = run("exception", "request", "--team", "research", "--period", P, "--amount-g", "300",
                       "--reason", "paper deadline", "--expires-at", "72h", actor="bob")
    assert code == 0 and "pending: 300 g for team research in 2026-12" in out
    grant_id = out.split()[0].lstrip("#")
    code, out, _ = run("exception", "approve", "--id", grant_id, actor="carol")
    assert code == 0 and f"#{grant_id} approved, by carol: 300 g" in out
    code, _, err = run("transfer", "--from-team", "search", "--to-team", "research", "--period", P,
                       "--amount-g", "1", "--reason", "thanks", actor="carol")  # search is in overdraft
    assert code == 2 and err == "error: --amount-g exceeds the 0 g search has remaining in 2026-12, got 1.0\n"
    code, out, _ = run("transfer", "--from-team", "research", "--to-team", "search", "--period", P,
                       "--amount-g", "20", "--reason", "cover the overdraft", actor="carol")
    assert code == 0 and out.startswith("moved 20 g of 2026-12 from research to search; entry #")

    code, out, _ = run("status", "--team", "research", "--period", P, "--json")
    status = json.loads(out)
    assert code == 0
    assert (status["limit_g"], status["reserved_g"], status["settled_g"], status["remaining_g"]) == (980, 0, 480, 500)
    assert [(e["id"], e["status"], e["approver"]) for e in status["exceptions"]] == \
        [(int(grant_id), "approved", "carol")]
    code, out, _ = run("status", "--team", "research", "--period", P)
    assert "remaining_g 500 g" in " ".join(out.split()) and f"#{grant_id} approved" in out

    code, out, _ = run("entries", "--team", "research", "--json")
    kinds = [(e["kind"], e["action"], e["actor"]) for e in json.loads(out)]
    assert kinds[:3] == [("limit", "set", "lead"), ("decision", "granted", "gatekeeper"),
                         ("reservation", "reserved", "gatekeeper")]
    assert ("exception", "approved", "carol") in kinds


def test_reject_release_and_expire(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    run = lambda *argv, **kw: budget(capsys, url, *argv, **kw)  # noqa: E731
    run("set-limit", "--team", "research", "--period", P, "--limit-g", "100", "--tier", "hard")
    run("board", "add", "carol")
    in_300_days = (datetime.now(timezone.utc) + timedelta(days=300)).replace(microsecond=0).isoformat()  # <= 366
    _, out, _ = run("exception", "request", "--team", "research", "--period", P, "--amount-g", "5", "--reason", "x",
                    "--expires-at", in_300_days, "--run-id", "run-9", actor="bob")
    code, out, _ = run("exception", "reject", "--id", out.split()[0][1:], "--reason", "no", actor="carol")
    assert code == 0 and "rejected, by carol: 5 g for run run-9" in out
    run("reserve", "--team", "research", "--period", P, "--estimate-g", "40", "--run-id", "run-1", "--ttl", "1m")
    run("reserve", "--team", "research", "--period", P, "--estimate-g", "40", "--run-id", "run-2")
    code, out, _ = run("release", "--team", "research", "--run-id", "run-2")
    assert code == 0 and out.startswith("released run run-2: 40 g back to team research (2026-12)")
    code, out, _ = run("board", "remove", "carol")
    assert code == 0 and out.strip() == "review board: (nobody)"
    assert run("expire")[1].strip() == "0 reservation(s) expired"


def set_limit(period=P, limit="10", tier="hard", *extra):
    return ["set-limit", "--team", "t", "--period", period, "--limit-g", limit, "--tier", tier, *extra]


def reserve(team="research", estimate="1", *extra):
    return ["reserve", "--team", team, "--period", P, "--estimate-g", estimate, "--run-id", "r", *extra]


@pytest.mark.parametrize("argv, message", [
    (set_limit("2026-13"), "--period must be a calendar month YYYY-MM (UTC), got '2026-13'"),
    (set_limit(P, "-5"), "--limit-g must be a finite number of grams >= 0, at most 1e15 g (1 Gt), got '-5'"),
    (set_limit(P, "1e400"), "--limit-g must be a finite number of grams >= 0, at most 1e15 g (1 Gt), got '1e400'"),
    (set_limit(P, "1.7e308"), "--limit-g must be a finite number of grams >= 0, at most 1e15 g (1 Gt), got '1.7e308'"),
    (set_limit(P, "10", "medium"), "--tier must be hard or soft, got 'medium'"),
    (set_limit(P, "10", "soft", "--overdraft-percent", "x"),
     "--overdraft-percent must be a number from 0 to 100, got 'x'"),
    (reserve("nobody"), "--team has no budget for 2026-12 (set a limit for it first), got 'nobody'"),
    (reserve("research", "-1"), "--estimate-g must be a finite number of grams >= 0, at most 1e15 g (1 Gt), got '-1'"),
    (reserve("research", "abc"),
     "--estimate-g must be a finite number of grams >= 0, at most 1e15 g (1 Gt), got 'abc'"),
    (reserve("research", "1", "--ttl", "soon"), "--ttl must be a duration such as 2h"),
    (["settle", "--team", "research", "--run-id", "unknown", "--actual-g", "5"],
     "--run-id has no reservation of team research in the ledger, got 'unknown'"),
    (["settle", "--team", "research", "--run-id", "r", "--actual-g", "nan"],
     "--actual-g must be a finite number of grams >= 0, at most 1e15 g (1 Gt), got 'nan'"),
    (["exception", "approve", "--id", "12x"],
     "--id must be an exception's id, a whole number from 1 to 9223372036854775807, got '12x'"),
    (["exception", "request", "--team", "research", "--period", P, "--amount-g", "5", "--reason", "r",
      "--expires-at", "2026-12-31T00:00:00"], "--expires-at must be timezone-aware"),
    (["transfer", "--from-team", "research", "--to-team", "x", "--period", P, "--amount-g", "5", "--reason", "r"],
     "--to-team has no budget for 2026-12 (set a limit for it first), got 'x'"),
    (["board", "remove", "erin"], "NAME is not a member of the review board, got 'erin'"),
])
def test_bad_input_is_one_line_naming_the_option_exit_2_and_nothing_written(tmp_path, capsys, argv, message):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with Ledger(url) as ledger:
        ledger.set_limit("research", P, 100, "hard", actor="lead")
        before = ledger.entries()
    code, out, err = budget(capsys, url, *argv)
    assert code == 2 and out == ""
    assert err.startswith(f"error: {message}") and err.count("\n") == 1
    with Ledger(url) as ledger:
        assert ledger.entries() == before


def test_bad_input_writes_no_ledger_file(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    assert budget(capsys, url, "status", "--team", "t", "--period", "2026-13")[0] == 2
    assert not (tmp_path / "new.db").exists()


def test_an_unreachable_ledger_is_one_line_without_traceback_or_password(tmp_path):
    """Through the console script: what a person sees, exit code and all."""
    env_url = "postgresql+psycopg://admin:s3cret@127.0.0.1:1/ledger"
    result = subprocess.run([sys.executable, "-m", "greenkfp.pipelines.cli", "budget", "status", "--team", "t",
                             "--period", P], capture_output=True, text=True, cwd=tmp_path,
                            env={"GREENKFP_LEDGER": env_url, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: --ledger postgresql+psycopg://***@127.0.0.1:1/ledger cannot be used: ")
    assert result.stderr.count("\n") == 1 and "s3cret" not in result.stderr and "Traceback" not in result.stderr


def test_the_ledger_and_actor_default_to_the_environment(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GREENKFP_LEDGER", f"sqlite:///{tmp_path / 'env.db'}")
    monkeypatch.setenv("USER", "dana")
    assert main(["budget", "set-limit", "--team", "t", "--period", P, "--limit-g", "5", "--tier", "hard"]) == 0
    with Ledger(f"sqlite:///{tmp_path / 'env.db'}") as ledger:
        assert [(e.kind, e.actor) for e in ledger.entries()] == [("limit", "dana")]
    monkeypatch.delenv("GREENKFP_LEDGER")
    monkeypatch.delenv("USER")
    monkeypatch.chdir(tmp_path)
    assert main(["budget", "set-limit", "--team", "t", "--period", P, "--limit-g", "5", "--tier", "hard"]) == 0
    with Ledger("sqlite:///greenkfp-ledger.db") as ledger:
        assert [(e.kind, e.actor) for e in ledger.entries()] == [("limit", "cli")]
    capsys.readouterr()


def test_reserve_asks_the_policy_and_a_replaced_or_broken_policy_is_used_or_named(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    run = lambda *argv: budget(capsys, url, *argv)  # noqa: E731
    assert run("set-limit", "--team", "lab", "--period", P, "--limit-g", "100", "--tier", "soft",
               "--overdraft-percent", "10")[0] == 0
    # the bundled policy: 5 g into the soft tier's 10 g overdraft is allowed and flagged for review
    code, out, _ = run("reserve", "--team", "lab", "--period", P, "--estimate-g", "105", "--run-id", "a")
    assert code == 0 and "review required" in out and "overdraft" in out
    # a replaced policy decides instead (here: refuse everything, with its own reason)
    strict = tmp_path / "strict.rego"
    strict.write_text('package greenkfp.budget\n\ndecision := {"allow": false, "reasons": ["frozen by the board"], '
                      '"review_required": false, "overdraft_allowed_g": 0}\n')
    code, out, _ = run("reserve", "--team", "lab", "--period", P, "--estimate-g", "1", "--run-id", "b",
                       "--policy-file", str(strict))
    assert code == 3 and "frozen by the board" in out
    # a policy that does not parse: one line naming the option, exit 2, no decision recorded for the run
    broken = tmp_path / "broken.rego"
    broken.write_text("package greenkfp.budget\ndecision := {\n")
    code, out, err = run("reserve", "--team", "lab", "--period", P, "--estimate-g", "1", "--run-id", "c",
                         "--policy-file", str(broken))
    assert code == 2 and err.startswith("error: --policy-file: ") and "does not parse" in err and len(err.splitlines()) == 1
    with Ledger(url) as ledger:
        assert not [e for e in ledger.entries(team="lab") if e.run_id == "c"]


def test_read_only_commands_do_not_create_a_ledger_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for argv in (["status", "--team", "t", "--period", P], ["entries"], ["board", "list"],
                 ["settle", "--team", "t", "--run-id", "r", "--actual-g", "1"], ["expire"]):
        code, out, err = budget(capsys, "sqlite:///typo.db", *argv)
        assert (code, out, err) == (2, "", "error: --ledger sqlite:///typo.db does not exist\n"), argv
        assert not (tmp_path / "typo.db").exists()
    assert budget(capsys, "sqlite:///typo.db", *set_limit())[0] == 0  # a command that writes creates it
    code, out, _ = budget(capsys, "sqlite:///typo.db", "status", "--team", "t", "--period", P)
    assert code == 0 and "limit_g" in out


def test_settle_and_release_need_the_runs_team(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    run = lambda *argv: budget(capsys, url, *argv)  # noqa: E731
    for team in ("research", "search"):  # run ids are per team: the same id in two teams
        run("set-limit", "--team", team, "--period", P, "--limit-g", "100", "--tier", "hard")
        assert run("reserve", "--team", team, "--period", P, "--estimate-g", "10", "--run-id", "r1")[0] == 0
    code, _, err = run("settle", "--run-id", "r1", "--actual-g", "5")
    assert code == 2 and "--team" in err
    code, out, _ = run("settle", "--team", "search", "--run-id", "r1", "--actual-g", "5")
    assert code == 0 and out.startswith("settled run r1: 5 g (reserved 10 g, released 5 g)")
    code, out, _ = run("release", "--team", "research", "--run-id", "r1")
    assert code == 0 and out.startswith("released run r1: 10 g back to team research")


@pytest.mark.parametrize("damage, message", [
    ("text", "is not a greenkfp ledger (not a SQLite database: file is not a database)"),
    ("newer", "was created by a newer greenkfp (revision 0099; this greenkfp knows revisions up to 0003): "
              "upgrade greenkfp"),
])
def test_a_corrupt_or_newer_ledger_is_one_line_exit_2(tmp_path, damage, message):
    import sqlalchemy as sa

    path = tmp_path / "ledger.db"
    if damage == "text":
        path.write_text("not a database at all\n" * 100)
    else:
        Ledger(f"sqlite:///{path}").close()
        engine = sa.create_engine(f"sqlite:///{path}")
        with engine.begin() as connection:
            connection.exec_driver_sql("UPDATE greenkfp_ledger_version SET version_num = '0099'")
        engine.dispose()
    result = subprocess.run([sys.executable, "-m", "greenkfp.pipelines.cli", "budget", "status", "--team", "t",
                             "--period", P, "--ledger", f"sqlite:///{path}"], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr == f"error: --ledger sqlite:///{path} {message}\n"


def test_settling_and_releasing_after_expiry_say_what_happened(tmp_path, capsys):
    import time

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    run = lambda *argv, **kw: budget(capsys, url, *argv, **kw)  # noqa: E731
    run("set-limit", "--team", "research", "--period", P, "--limit-g", "1000", "--tier", "hard")
    def reserve_expiring(run_id, grams):  # --ttl in hours: 0.36 s
        run("reserve", "--team", "research", "--period", P, "--estimate-g", grams, "--run-id", run_id,
            "--ttl", "0.0001")
        time.sleep(0.5)

    reserve_expiring("a", "600")
    code, out, _ = run("settle", "--team", "research", "--run-id", "a", "--actual-g", "550")
    assert code == 0 and "550 g charged anew" in out and "released 50 g" not in out
    reserve_expiring("d", "10")
    code, out, _ = run("release", "--team", "research", "--run-id", "d")
    assert code == 0 and "had expired" in out and "nothing changed" in out and "back to team" not in out
    code, out, _ = run("reserve", "--team", "research", "--period", P, "--estimate-g", "400", "--run-id", "c")
    code, out, _ = run("settle", "--team", "research", "--run-id", "c", "--actual-g", "400")
    reserve_expiring("b", "50")
    code, out, _ = run("settle", "--team", "research", "--run-id", "b", "--actual-g", "600")
    assert code == 0 and "600 g charged anew" in out
    assert "takes the hard budget of team research for 2026-12 to -550 g: flagged for review" in out
    with Ledger(url) as ledger:
        assert ledger.status("research", P).remaining_g == -550
        settled = [e for e in ledger.entries() if e.kind == "settlement" and e.run_id == "b"][0]
        assert settled.detail["review_required"] is True and settled.detail["released_g"] == 0


def test_an_estimate_of_minus_zero_is_zero_and_underscores_are_refused(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    budget(capsys, url, "set-limit", "--team", "research", "--period", P, "--limit-g", "1000", "--tier", "hard")
    code, out, _ = budget(capsys, url, "reserve", "--team", "research", "--period", P, "--estimate-g", "-0",
                          "--run-id", "z")
    assert code == 0 and "-0" not in out
    code, out, err = budget(capsys, url, "reserve", "--team", "research", "--period", P, "--estimate-g", "1_000",
                            "--run-id", "u")
    assert code != 0 and "1_000" in err and out == ""


@pytest.mark.parametrize("argv, shown", [
    (["budget", "reserve", "--run-id", b"bad\xff", "--team", "t", "--period", "2026-12", "--estimate-g", "1"],
     "--run-id is not valid text (bytes that are not UTF-8): 'bad\\xff'"),
    (["budget", "set-limit", "--team", b"t\xff", "--period", "2026-12", "--limit-g", "1", "--tier", "hard"],
     "--team is not valid text (bytes that are not UTF-8): 't\\xff'"),
    (["budget", "set-limit", b"--ledger=sqlite:///c\xff.db", "--team", "t", "--period", "2026-12", "--limit-g", "1",
      "--tier", "hard"], "--ledger is not valid text (bytes that are not UTF-8): 'sqlite:///c\\xff.db'"),
])
def test_an_argument_that_is_not_utf8_is_named_by_its_option(tmp_path, argv, shown):
    """As a shell passes them: bytes that are not UTF-8 (Python sees lone surrogates)."""
    result = subprocess.run([sys.executable, "-m", "greenkfp.pipelines.cli", *argv], capture_output=True,
                            cwd=tmp_path, timeout=120)
    err = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 2 and err == f"error: {shown}\n", err
    assert list(tmp_path.iterdir()) == []  # nothing opened, nothing written


@pytest.mark.parametrize("argv, option", [
    (["budget", "reserve", "--team", "t", "--period", "2026-12", "--run-id", "r", "--estimate-g", "-inf"],
     "--estimate-g"),
    (["budget", "status", "--team", "t", "--period", "-2026-12"], "--period"),
])
def test_a_value_starting_with_a_dash_is_one_line_saying_how_to_write_it(tmp_path, monkeypatch, capsys, argv, option):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err == (f"error: {option} needs a value; one that starts with '-' is written {option}=VALUE "
                            f"(such as {option}=-1)\n"), captured.err
    assert "usage:" not in captured.out + captured.err and list(tmp_path.iterdir()) == []
