"""The gatekeeper's HTTP plumbing under hostile requests: the request body's cap (413 without
reading the rest), the token before the path's parameters, bounds on the API's fields, unexpected
errors, token files re-read when a secret rotates, and the log of ``greenkfp gatekeeper serve``
(read from the running command's output). Real servers on loopback, no mocks."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import ADMIN, BOARD, TOKENS, free_port, serve_gatekeeper

from greenkfp.components.governance.tokens import Identity, Tokens

ROOT = Path(__file__).resolve().parents[1]
PERIOD = datetime.now(timezone.utc).strftime("%Y-%m")
ADMISSIONS = "/apis/greenkfp/v1/admissions"


@pytest.fixture
def gatekeeper(start_gatekeeper):
    live = start_gatekeeper(f"http://127.0.0.1:{free_port()}", max_body_bytes=64 * 1024)
    live.core.ledger.set_limit("ml", PERIOD, 10_000.0, "hard", actor="lead")
    return live


def _raw_request(url: str, head: str, body_parts: list[bytes], timeout: float = 10.0) -> tuple[int, dict]:
    """Send ``head`` and ``body_parts`` on a raw socket, never finishing a chunked body; read the
    answer. A server that waits for the whole body never answers: the read times out."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as connection:
        connection.sendall(head.encode())
        for part in body_parts:
            try:
                connection.sendall(part)
            except OSError:  # the server answered and closed while we were still sending
                break
        received = b""
        try:
            while b"\r\n\r\n" not in received or not _complete(received):
                chunk = connection.recv(65536)
                if not chunk:
                    break
                received += chunk
        except (socket.timeout, ConnectionResetError):
            pass
    assert received, "no answer: the server is still reading the body"
    head_text, _, payload = received.partition(b"\r\n\r\n")
    status = int(head_text.split(b" ", 2)[1])
    return status, json.loads(payload) if payload else {}


def _complete(received: bytes) -> bool:
    head, _, payload = received.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(payload) >= int(line.split(b":")[1])
    return False


# --------------------------------------------------------------------------- the body's cap


def test_a_body_declared_too_large_is_413_before_any_of_it_is_read(gatekeeper):
    head = (f"POST {ADMISSIONS} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKENS['ml']}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n")
    status, body = _raw_request(gatekeeper.url, head, [])  # not one byte of the 100 MB is sent
    assert status == 413 and body["code"] == 8
    assert "larger than the gatekeeper's limit of 65,536 bytes" in body["message"]
    assert body["details"][0]["reason"] == "REQUEST_TOO_LARGE"


def test_a_chunked_body_is_cut_off_at_the_cap_without_waiting_for_its_end(gatekeeper):
    head = (f"POST {ADMISSIONS} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKENS['ml']}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (16 * 1024, b" " * 16 * 1024)
    status, body = _raw_request(gatekeeper.url, head, [chunk] * 5)  # 80 KiB, and the body never ends
    assert status == 413 and body["code"] == 8 and "65,536 bytes" in body["message"]


def test_bodies_read_at_once_share_one_allowance_and_small_ones_still_pass(gatekeeper):
    """Slow clients each holding a big unfinished body cannot make the process hold more than
    READING_BODIES x the cap: the next big body is 503 (retry), an admission still passes."""
    import time

    from greenkfp.components.governance.gatekeeper import READING_BODIES

    head = (f"POST {ADMISSIONS} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKENS['ml']}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    size = 60 * 1024  # under the 64 KiB cap
    chunk = b"%x\r\n%s\r\n" % (size, b" " * size)
    host, port = gatekeeper.url.removeprefix("http://").split(":")
    held = []
    try:
        for _ in range(READING_BODIES):  # each within the cap, none finished
            connection = socket.create_connection((host, int(port)), timeout=10)
            connection.sendall(head.encode() + chunk)
            held.append(connection)
        time.sleep(1.0)  # the server has read what they sent
        status, body = _raw_request(gatekeeper.url, head, [chunk])  # within the cap, past the allowance
        assert status == 503 and body["details"][0]["reason"] == "BUSY", body
        assert "retry" in body["message"]
        reply = gatekeeper.call("POST", ADMISSIONS, TOKENS["ml"], json={"pipeline": "p", "run_id": "small"})
        assert reply.status_code == 200, reply.text
    finally:
        for connection in held:
            connection.close()


def test_a_body_within_the_cap_is_read_and_a_bad_one_is_400(gatekeeper):
    padded = json.dumps({"pipeline": "p", "run_id": "within", "energy_kwh": 0.1}) + " " * 60_000
    reply = gatekeeper.call("POST", ADMISSIONS, TOKENS["ml"], content=padded.encode())
    assert reply.status_code == 200, reply.text
    # a JSON integer no float holds: 400 naming the body, not an internal error
    for field in ("energy_kwh", "steps"):
        reply = gatekeeper.call("POST", ADMISSIONS, TOKENS["ml"],
                                content=f'{{"pipeline": "p", "run_id": "big", "{field}": {"9" * 400}}}'.encode())
        assert reply.status_code == 400 and "a number too large for a float" in reply.json()["message"], reply.text
    reply = gatekeeper.call("PUT", f"/apis/greenkfp/v1/budgets/ml/{PERIOD}", ADMIN,
                            content=f'{{"limit_g": {"9" * 400}, "tier": "hard"}}'.encode())
    assert reply.status_code == 400 and reply.json()["code"] == 3


def test_the_deployments_memory_limit_holds_every_threads_body_at_the_cap():
    """Each worker process handles up to ``threads`` requests at once, each holding its body about
    6 times (bytes, text, parsed JSON; measured on the compiled pipeline's run request), and reads
    further bodies within an allowance of ``READING_BODIES`` at the cap; uvicorn's parent and each
    worker use ~125 MiB of their own (measured)."""
    from greenkfp.components.governance.gatekeeper import MAX_BODY_BYTES
    from greenkfp.pipelines.cli import build_parser
    from greenkfp.pipelines.gatekeeper_cli import check_options

    deployment = yaml.safe_load((ROOT / "deploy" / "gatekeeper" / "deployment.yaml").read_text())
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    options = check_options(build_parser().parse_args(container["command"][1:]))
    limit = container["resources"]["limits"]["memory"]
    assert limit.endswith("Gi")
    limit_bytes = float(limit[:-2]) * 1024**3
    cap = options["max_body_mib"] * 1024 * 1024
    assert cap == MAX_BODY_BYTES  # the manifests run the default
    from greenkfp.components.governance.gatekeeper import READING_BODIES

    # handled bodies (threads at once), and the bodies being read meanwhile (the byte allowance)
    worst = ((options["workers"] + 1) * 125 * 1024**2
             + options["workers"] * (options["threads"] * 6 + READING_BODIES) * cap)
    assert worst <= limit_bytes, f"{worst / 1024**2:.0f} MiB at worst against a {limit} limit"
    # and the default cap leaves room for the largest compiled pipeline's run request
    largest = max(p.stat().st_size for p in (ROOT / "compiled").rglob("*.yaml"))
    assert 10 * largest < MAX_BODY_BYTES


# --------------------------------------------------------------------------- the token first


@pytest.mark.parametrize("exception_id", ["abc", "99999999999999999999", "-1", "1.5", "%D9%A3"])
def test_the_token_is_checked_before_the_paths_parameters(gatekeeper, exception_id):
    path = f"/apis/greenkfp/v1/exceptions/{exception_id}:approve"
    for token in (None, "not-a-valid-token-at-all"):
        reply = gatekeeper.call("POST", path, token, json={})
        assert reply.status_code == 401 and reply.json()["code"] == 16, reply.text
        assert "exception_id" not in reply.text and "loc" not in reply.text  # nothing about the route
    assert gatekeeper.call("POST", path, TOKENS["ml"], json={}).status_code == 403  # a team cannot decide
    reply = gatekeeper.call("POST", path, BOARD["carol"], json={})
    assert reply.status_code == 400 and reply.json()["code"] == 3, reply.text
    assert reply.json()["message"].startswith("exception_id must be an exception's id, a whole number from 1 to "
                                              "9223372036854775807, got ")


def test_an_unknown_exception_id_within_bounds_is_the_ledgers_answer(gatekeeper):
    reply = gatekeeper.call("POST", "/apis/greenkfp/v1/exceptions/9223372036854775807:approve", BOARD["carol"],
                            json={})
    assert reply.status_code == 400 and "names no exception request" in reply.json()["message"]


# --------------------------------------------------------------------------- bounds on the API's fields


@pytest.mark.parametrize("body, message", [
    ({"period": PERIOD, "amount_g": 5, "reason": "r", "expires_at": "9999-12-31T00:00:00Z"},
     "expires_at must be at most 366 days from now, got '9999-12-31T00:00:00Z'"),
    ({"period": PERIOD, "amount_g": 5, "reason": "r", "expires_at": "soon"},
     "expires_at must be an ISO 8601 time with a time zone, got 'soon'"),
])
def test_an_exceptions_expiry_is_bounded(gatekeeper, body, message):
    reply = gatekeeper.call("POST", "/apis/greenkfp/v1/exceptions", TOKENS["ml"], json=body)
    assert reply.status_code == 400 and reply.json()["message"] == message
    assert not [e for e in gatekeeper.core.ledger.entries(team="ml") if e.kind == "exception"]


def test_a_declared_energy_is_bounded(gatekeeper):
    reply = gatekeeper.call("POST", ADMISSIONS, TOKENS["ml"], json={"pipeline": "p", "run_id": "e", "energy_kwh": 1e300})
    assert reply.status_code == 400
    assert reply.json()["message"] == "energy_kwh must be a number from 0 to 1e+09, got 1e+300"


def test_bad_settings_are_refused_naming_them(tmp_path):
    from greenkfp.components.governance.gatekeeper import GatekeeperSettings, create_app

    base = dict(ledger_url=f"sqlite:///{tmp_path / 'l.db'}", kfp_url="http://127.0.0.1:9")
    for name, value, message in [("reservation_ttl_s", 1e300, "reservation_ttl_s must be a number of seconds"),
                                 ("upstream_timeout_s", 1e308, "upstream_timeout_s must be a number of seconds"),
                                 ("max_body_bytes", 0, "max_body_bytes must be a whole number from 1024"),
                                 ("max_body_bytes", 2**40, "max_body_bytes must be a whole number from 1024")]:
        with pytest.raises(ValueError, match=message):
            GatekeeperSettings(**base, **{name: value})
    for name, value in [("region", "Atlantis"), ("provider", "nope"), ("hardware_profile", "nope")]:
        with pytest.raises(ValueError, match=f"^{name}"):
            create_app(GatekeeperSettings(**base, **{name: value}))
    assert not (tmp_path / "l.db").exists()  # refused before the ledger opened


# --------------------------------------------------------------------------- tokens from rotating files


def _mount(folder: Path, version: int, tokens: dict[str, str]) -> None:
    """Write ``tokens`` as the kubelet updates a mounted secret: a new timestamped folder, the
    ``..data`` link swapped to it at once, one link per key."""
    data = folder / f"..{version}"
    data.mkdir(parents=True)
    for name, token in tokens.items():
        (data / name).write_text(token + "\n")
    (folder / "..data_tmp").symlink_to(data.name)
    os.replace(folder / "..data_tmp", folder / "..data")
    for item in folder.iterdir():
        if not item.name.startswith(".") and item.name not in tokens:
            item.unlink()
    for name in tokens:
        if not (folder / name).is_symlink():
            (folder / name).symlink_to(Path("..data") / name)


A1, A2, B1 = "alpha-token-one-0123456789", "alpha-token-two-0123456789", "beta-token-one-01234567890"


def test_token_files_are_read_again_when_a_mounted_secret_rotates(tmp_path, caplog):
    folder = tmp_path / "teams"
    _mount(folder, 1, {"alpha": A1, "beta": B1})
    board = tmp_path / "board"
    board.write_text("carol=carol-board-token-0123\n")
    tokens = Tokens.from_env({"GREENKFP_GATEKEEPER_TOKENS_FILE": str(folder),
                              "GREENKFP_GATEKEEPER_BOARD_TOKENS_FILE": str(board),
                              "GREENKFP_GATEKEEPER_ADMIN_TOKEN": ADMIN}, reload_s=0)
    assert tokens.identify(A1) == Identity("team", "alpha") and tokens.identify(B1) == Identity("team", "beta")
    # alpha's token rotated, beta's removed
    _mount(folder, 2, {"alpha": A2})
    assert tokens.identify(A2) == Identity("team", "alpha")
    assert tokens.identify(A1) is None and tokens.identify(B1) is None
    assert tokens.team_names == ("alpha",) and tokens.identify(ADMIN) == Identity("admin", "admin")
    # a file of lines rewritten in place (another inode or size or time) is read again too
    board.write_text("carol=carol-board-token-4567\ndave=dave-board-token-0123456\n")
    assert tokens.identify("carol-board-token-0123") is None
    assert tokens.identify("dave-board-token-0123456") == Identity("board", "dave")
    # files that make no valid set: the last valid set stays, and the log says why without a token
    caplog.set_level(logging.INFO, logger="greenkfp")
    _mount(folder, 3, {"alpha": "short", "beta": B1})
    assert tokens.identify(A2) == Identity("team", "alpha") and tokens.identify(B1) is None
    assert "cannot be used; the previous tokens stay in force" in caplog.text and "alpha" in caplog.text
    assert not any(token in caplog.text for token in ("short", A1, A2, B1))
    _mount(folder, 4, {"beta": B1})
    assert tokens.identify(B1) == Identity("team", "beta") and tokens.identify(A2) is None


def test_token_files_are_looked_at_no_more_often_than_asked(tmp_path):
    folder = tmp_path / "teams"
    _mount(folder, 1, {"alpha": A1})
    tokens = Tokens.from_env({"GREENKFP_GATEKEEPER_TOKENS_FILE": str(folder)}, reload_s=3600)
    _mount(folder, 2, {"alpha": A2})
    assert tokens.identify(A1) == Identity("team", "alpha")  # not looked at again within the hour
    fixed = Tokens.from_env({"GREENKFP_GATEKEEPER_TOKENS": f"alpha={A1}"}, reload_s=0)
    assert fixed.identify(A1) == Identity("team", "alpha")  # variables: nothing to re-read


def test_a_live_gatekeeper_takes_a_rotated_token_without_a_restart(start_gatekeeper, tmp_path):
    folder = tmp_path / "teams"
    _mount(folder, 1, {"ml": A1})
    tokens = Tokens.from_env({"GREENKFP_GATEKEEPER_TOKENS_FILE": str(folder)}, reload_s=0)
    live = start_gatekeeper(f"http://127.0.0.1:{free_port()}", tokens=tokens)
    live.core.ledger.set_limit("ml", PERIOD, 1000.0, "hard", actor="lead")
    ask = {"pipeline": "p", "energy_kwh": 0.1}
    assert live.call("POST", ADMISSIONS, A1, json={**ask, "run_id": "before"}).status_code == 200
    _mount(folder, 2, {"ml": A2})
    assert live.call("POST", ADMISSIONS, A1, json={**ask, "run_id": "old"}).status_code == 401
    assert live.call("POST", ADMISSIONS, A2, json={**ask, "run_id": "after"}).status_code == 200


# --------------------------------------------------------------------------- the log of `gatekeeper serve`


def test_serve_logs_one_line_per_admission_and_never_a_secret(postgres_server, tmp_path):
    """The command as deployed (two worker processes) on PostgreSQL, its ledger URL carrying a
    password in its query: the start-up line masks it, and each worker logs its admissions."""
    secret = "pg-query-password-0123"
    ledger = postgres_server.fresh_url() + f"&password={secret}"
    from greenkfp.components.governance.ledger import Ledger

    Ledger(ledger).close()  # serve opens an existing ledger only (the platform lead creates it)
    team = "team-token-for-the-log-0123"
    env = {**os.environ, "GREENKFP_GATEKEEPER_TOKENS": f"ml={team}", "GREENKFP_GATEKEEPER_ADMIN_TOKEN": ADMIN,
           "GREENKFP_LEDGER": ledger}
    with serve_gatekeeper(["--kfp-url", "http://127.0.0.1:9", "--workers", "2", "--no-access-log"], env,
                          tmp_path) as served:
        url = served.url
        assert httpx.put(f"{url}/apis/greenkfp/v1/budgets/ml/{PERIOD}", json={"limit_g": 80, "tier": "hard"},
                         headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 200
        headers = {"Authorization": f"Bearer {team}"}
        forged = httpx.post(url + ADMISSIONS, headers=headers, timeout=30,  # a line break in a name: refused
                            json={"pipeline": "nightly\nINFO forged line", "run_id": "log-x", "energy_kwh": 0.2})
        assert forged.status_code == 400 and "pipeline" in forged.text
        answers = [httpx.post(url + ADMISSIONS, headers=headers, timeout=30,
                              json={"pipeline": "nightly", "run_id": f"log-{i}",
                                    "energy_kwh": 0.2}).status_code for i in range(3)]
        assert answers == [200, 200, 403]  # 32.5 g each against 80 g
    output = served.output
    lines = output.splitlines()
    admissions = [line for line in lines if "greenkfp.gatekeeper: admission" in line]
    assert len(admissions) == 3, output
    for i, line in enumerate(admissions):
        assert f"team=ml run=log-{i}" in line and "estimate_g=32.5" in line
        assert f"granted={i < 2}" in line and "pipeline=nightly" in line
    assert not any(line.startswith("INFO forged line") for line in lines)
    start = next(line for line in lines if line.startswith("greenkfp gatekeeper on"))
    assert "password=***" in start and "request bodies up to 4 MiB" in start
    assert secret not in output and team not in output and ADMIN not in output


def test_an_unexpected_error_is_one_log_line_and_a_500_in_kfps_format(caplog):
    """The gatekeeper's last line of defence, around a stand-in app that fails: Starlette's own
    handler for ``Exception`` answers too, but then raises the error again for uvicorn to log with
    its traceback (and whatever the error's text carries)."""
    from starlette.testclient import TestClient

    from greenkfp.components.governance.gatekeeper import _Unexpected

    async def failing(scope, receive, send):  # an ASGI app (as FastAPI's routes are, inside the middleware)
        raise RuntimeError("lost postgresql+psycopg://gk:pw-in-userinfo@db/ledger?password=pw-in-query")

    caplog.set_level(logging.INFO, logger="greenkfp")
    client = TestClient(_Unexpected(failing), raise_server_exceptions=True)  # no lifespan: not a context
    reply = client.get("/fail")  # raise_server_exceptions: anything escaping the middleware fails here
    assert reply.status_code == 500 and reply.json()["code"] == 13
    assert reply.json()["message"] == "internal error of the gatekeeper (see its log)"
    (record,) = [r for r in caplog.records if r.name == "greenkfp.gatekeeper"]
    assert record.levelname == "ERROR" and "\n" not in record.getMessage() and record.exc_info is None
    assert "RuntimeError: lost postgresql+psycopg://***@db/ledger?password=***" in record.getMessage()
    assert "pw-in" not in caplog.text


@pytest.mark.parametrize("content, message", [
    (b'{"pipeline": "p", "run_id": "a", "run_id": "b"}', "the key 'run_id' is given twice in one object"),
    (b'{"pipeline": "p", "run_id": "r", "labels": {"k": "1", "k": "2"}}', "the key 'k' is given twice"),
    (b'{"pipeline": "p", "run_id": "r", "steps": ' + b"9" * 5000 + b"}", "a number with too many digits"),
])
def test_duplicate_keys_and_endless_numbers_are_400(gatekeeper, content, message):
    reply = gatekeeper.call("POST", ADMISSIONS, TOKENS["ml"], content=content)
    assert reply.status_code == 400 and message in reply.json()["message"], reply.text
    assert "set_int_max_str_digits" not in reply.text
