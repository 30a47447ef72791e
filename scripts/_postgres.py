"""A throwaway PostgreSQL server (initdb and pg_ctl in a temporary folder, 127.0.0.1, a free
port), for the benchmarks in this folder and the tests (``tests/conftest.py`` imports it).

PostgreSQL refuses to run as root: as root it runs as ``nobody`` (runuser), in a folder that
user can enter. Imported as ``from _postgres import ...`` (a script's own folder is on
``sys.path``). Standard library only; psycopg where a schema is made.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

#: Server settings for a throwaway database: nothing needs to survive a crash.
FAST_OPTIONS = "-c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries here (``initdb`` neither on the PATH nor in /usr/lib/postgresql/*/bin)."""


class PostgresServer:
    """A running throwaway server (trust authentication, user ``postgres``)."""

    def __init__(self, port: int, data_dir: Path | None = None):
        self.port, self.data_dir = port, data_dir

    @property
    def pid(self) -> int | None:
        """The postmaster's process id (its backends are its children), None when unknown."""
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError, TypeError):
            return None

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        auth = "postgres" if password is None else f"postgres:{password}"
        return f"postgresql+psycopg://{auth}@127.0.0.1:{self.port}/{database}"

    def fresh_url(self) -> str:
        """The URL of a new, empty schema of the ``postgres`` database (its search_path set in the
        URL): as isolated as a new database for the ledger, and a thousand times faster to make."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as connection:
            connection.execute(f'CREATE SCHEMA "{name}"')
        return f"{self.url()}?options=-csearch_path%3D{name}"


def postgres_bindir() -> Path | None:
    """The folder of initdb and pg_ctl: from the PATH, else the newest /usr/lib/postgresql/*/bin; None without."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent  # Debian links /usr/local/bin/initdb into /usr/lib/postgresql/N/bin
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0)
    return Path(versions[-1]).parent if versions else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def postgres_server(options: str = FAST_OPTIONS) -> Iterator[PostgresServer]:
    """Start a server, yield it, stop it (``-m immediate``) and delete its folder, also on error.

    Raises:
        PostgresUnavailable: PostgreSQL is not installed.
        RuntimeError: the server did not start (the message has the end of its log).
    """
    bindir = postgres_bindir()
    if bindir is None:
        raise PostgresUnavailable("PostgreSQL is not installed: no initdb on the PATH nor in "
                                  "/usr/lib/postgresql/*/bin (.ci/run installs Debian's postgresql)")
    base = Path(tempfile.mkdtemp(prefix="greenkfp-pg-"))
    base.chmod(0o755)
    as_user: list[str] = []
    if os.geteuid() == 0:
        import pwd

        nobody = pwd.getpwnam("nobody")
        os.chown(base, nobody.pw_uid, nobody.pw_gid)
        as_user = ["runuser", "-u", "nobody", "--"]
    data, port = base / "data", free_port()
    try:
        subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                        "-E", "UTF8", "--no-sync"], check=True, capture_output=True, text=True, timeout=120)
        started = subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log"), "-o",
             f"-p {port} -k {base} -c listen_addresses=127.0.0.1 {options}", "-w", "-t", "60", "start"],
            capture_output=True, text=True, timeout=90)
        if started.returncode:
            log = (base / "server.log").read_text() if (base / "server.log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {started.stderr.strip()} {log[-2000:]}")
        yield PostgresServer(port, data)
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)
