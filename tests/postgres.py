"""A real PostgreSQL server for the replica tests, started by the tests themselves.

``postgres_url()`` gives a database URL: ``FINOUT_MCP_TEST_DATABASE_URL`` when set (a server
someone else runs), else a throw-away cluster this module starts (``initdb`` + ``pg_ctl``, on
a free loopback port, data in a temporary directory, as the ``postgres`` user when we are
root, since PostgreSQL refuses to run as root). When no server can be had the tests that need
one are skipped, with the reason — unless ``FINOUT_MCP_REQUIRE_POSTGRES=1`` (set by ``.ci/run``,
which installs PostgreSQL), where they fail instead.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port


def _bin_dir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


class PostgresServer:
    """A PostgreSQL cluster in a temporary directory, stopped (and removed) by :meth:`stop`."""

    def __init__(self) -> None:
        self.bin = _bin_dir()
        if self.bin is None:
            raise RuntimeError("PostgreSQL is not installed (no pg_ctl; apt-get install postgresql)")
        self.root = Path(tempfile.mkdtemp(prefix="finout-mcp-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                raise RuntimeError("running as root and no runuser to start PostgreSQL as another user")
            import pwd

            try:
                user = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise RuntimeError("running as root and there is no 'postgres' user") from exc
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            "start",
        )
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        assert self.bin is not None
        result = subprocess.run(
            [*self._as, str(self.bin / tool), *args], capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stderr.strip()[-500:]}")

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def unavailable(reason: str) -> None:
    if os.environ.get("FINOUT_MCP_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required here (FINOUT_MCP_REQUIRE_POSTGRES=1) but: {reason}")
    pytest.skip(f"no PostgreSQL server could be started: {reason}")


def reset_database(url: str) -> None:
    """Drop everything finout-mcp created, so each test starts from an empty database."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL for this test module (see the module doc for where it comes from)."""
    given = os.environ.get("FINOUT_MCP_TEST_DATABASE_URL")
    if given:
        yield given
        return
    try:
        server = PostgresServer()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        unavailable(str(exc))
        return
    try:
        yield server.url
    finally:
        server.stop()
