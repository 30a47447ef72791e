"""Shared fixtures. No mocks of our own code: real series, real providers, real local servers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from greenkfp.components.carbon import CarbonSeries

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def hourly(values, start: datetime = T0) -> CarbonSeries:
    return CarbonSeries.from_points([(start + timedelta(hours=i), v) for i, v in enumerate(values)])


class FixedClock:
    """A clock for code that asks for "now": returns a set time, advanced by sleeps."""

    def __init__(self, now: datetime):
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock():
    return FixedClock(datetime(2023, 6, 14, 9, 0, tzinfo=timezone.utc))


# --------------------------------------------------------------------------- PostgreSQL

class PostgresServer:
    """A throwaway PostgreSQL server on 127.0.0.1 (trust authentication, user ``postgres``)."""

    def __init__(self, port: int):
        self.port = port

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        auth = "postgres" if password is None else f"postgres:{password}"
        return f"postgresql+psycopg://{auth}@127.0.0.1:{self.port}/{database}"

    def fresh_url(self) -> str:
        """The URL of a new, empty schema of the ``postgres`` database (its search_path set in the
        URL): as isolated as a new database for the ledger, and a thousand times faster to make."""
        import uuid

        import psycopg

        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as connection:
            connection.execute(f'CREATE SCHEMA "{name}"')
        return f"{self.url()}?options=-csearch_path%3D{name}"


def postgres_bindir():
    """The folder of initdb and pg_ctl: from the PATH, else the newest /usr/lib/postgresql/*/bin; None without."""
    import glob
    import shutil
    from pathlib import Path

    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent  # Debian links /usr/local/bin/initdb into /usr/lib/postgresql/N/bin
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0)
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server for the session, started with initdb and pg_ctl in a temporary folder,
    on 127.0.0.1 and a free port, stopped (``-m immediate``) and deleted at the end, also when a
    test fails. PostgreSQL refuses to run as root: as root it runs as ``nobody`` (runuser)."""
    import os
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed: no initdb on the PATH nor in /usr/lib/postgresql/*/bin "
                    "(.ci/run installs Debian's postgresql)")
    base = Path(tempfile.mkdtemp(prefix="greenkfp-pg-"))
    base.chmod(0o755)
    as_user = []
    if os.geteuid() == 0:
        import pwd

        nobody = pwd.getpwnam("nobody")
        os.chown(base, nobody.pw_uid, nobody.pw_gid)
        as_user = ["runuser", "-u", "nobody", "--"]
    data, port = base / "data", _free_port()
    options = (f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off "
               "-c synchronous_commit=off -c full_page_writes=off")
    try:
        subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                        "-E", "UTF8", "--no-sync"], check=True, capture_output=True, text=True, timeout=120)
        started = subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log"),
                                  "-o", options, "-w", "-t", "60", "start"], capture_output=True, text=True, timeout=90)
        if started.returncode:
            log = (base / "server.log").read_text() if (base / "server.log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {started.stderr.strip()} {log[-2000:]}")
        yield PostgresServer(port)
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request, tmp_path):
    """The URL of an empty budget ledger: a SQLite file, or a new schema on the session's PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("postgres_server").fresh_url()
