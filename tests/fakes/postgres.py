"""A throwaway PostgreSQL cluster on 127.0.0.1 for the test session, run as an unprivileged user.

Why a real server: the parts the shared store depends on (row locks with SKIP LOCKED, the
advisory lock around migrations, the database clock, transactional DDL, password auth) are
PostgreSQL's behaviour, not ours; an imitation would only test the imitation. `scripts/test.sh`
installs Debian's `postgresql` package when it is missing, so these fixtures always run.

PostgreSQL refuses to run as root; under root (CI) the cluster belongs to `nobody`, with its
data directory in a temporary folder owned by that user. It listens on a free port of
127.0.0.1 only (no Unix socket in a shared place), authenticates by password (scram), has
fsync off (nothing here must survive a crash of the machine), and is stopped and deleted when
the session ends.

    postgres.url()                  -> "postgresql://relaycheck:PASSWORD@127.0.0.1:PORT/postgres"
    postgres.create_database()      -> the URL of a new, empty database
    state_where                     -> a fresh sqlite path or PostgreSQL URL (parametrised)
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

USER = "relaycheck"


def _binaries() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError(
        "PostgreSQL's server binaries are missing: run `bash scripts/test.sh` (it installs "
        "Debian's postgresql package) or apt-get install postgresql"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(slots=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    _count: int = 0

    def url(self, database: str = "postgres", *, password: bool = True) -> str:
        secret = f":{self.password}" if password else ""
        return f"postgresql://{self.user}{secret}@{self.host}:{self.port}/{database}"

    def create_database(self, prefix: str = "t") -> str:
        """A new, empty database; returns its URL (with the password)."""
        self._count += 1
        name = f"{prefix}{os.getpid()}_{self._count}_{secrets.token_hex(3)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """initdb + pg_ctl start in a temporary folder; stop and delete it afterwards."""
    bindir = _binaries()
    as_root = os.geteuid() == 0
    account = pwd.getpwnam("nobody") if as_root else None
    top = Path(tempfile.mkdtemp(prefix="relaycheck-pg-"))
    data = top / "data"
    password = secrets.token_urlsafe(16)
    pwfile = top / "pw"
    pwfile.write_text(password + "\n", encoding="utf-8")
    if account is not None:
        for path in (top, pwfile):
            os.chown(path, account.pw_uid, account.pw_gid)
    user = {"user": account.pw_uid, "group": account.pw_gid} if account else {}

    def run(*args: str) -> None:
        subprocess.run(
            [str(bindir / args[0]), *args[1:]],
            check=True,
            capture_output=True,
            cwd=top,
            timeout=120,
            env={**os.environ, "LC_ALL": "C"},
            **user,  # type: ignore[arg-type]
        )

    run(
        "initdb",
        "-D",
        str(data),
        "-U",
        USER,
        "--pwfile",
        str(pwfile),
        "--auth",
        "scram-sha-256",
        "-E",
        "UTF8",
        "--no-sync",
    )
    port = 0
    for _attempt in range(5):
        port = _free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=100 -c shared_buffers=16MB"
        )
        try:
            run(
                "pg_ctl",
                "-D",
                str(data),
                "-l",
                str(top / "log"),
                "-w",
                "-t",
                "60",
                "-o",
                options,
                "start",
            )
            break
        except subprocess.CalledProcessError:
            time.sleep(0.2)  # the port was taken in between: another one
    else:
        log = (top / "log").read_text(errors="replace") if (top / "log").exists() else ""
        raise RuntimeError(f"PostgreSQL did not start:\n{log[-2000:]}")
    try:
        yield PostgresServer(host="127.0.0.1", port=port, user=USER, password=password)
    finally:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL cluster for the whole session (tests each take a database of their own)."""
    with running_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def state_where(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where a fresh store lives: an sqlite file, or a new PostgreSQL database (its URL)."""
    if request.param == "sqlite":
        return tmp_path / "state.sqlite3"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()
