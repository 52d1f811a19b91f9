"""A throw-away PostgreSQL server on this machine, for the tests and for trying the PostgreSQL path.

``with LocalPostgres() as pg:`` installs Debian's ``postgresql`` if no server binaries are
found, creates a cluster with ``initdb`` in a fresh directory, starts ``postgres`` on a free
loopback port with its socket inside that directory, creates a role with a random password and
a database, and yields; ``pg.url`` is a ``postgresql+psycopg://`` URL for it. On exit the
server is stopped (``pg_ctl stop -m fast``) and the directory removed. The system's own
clusters, if any, are left alone.

PostgreSQL refuses to run as root. When this process is root (as on CI and in containers),
every server command runs as the ``postgres`` system user through ``runuser``, and the cluster
directory is made under ``/tmp``, owned by that user, because the pytest temporary directories
are private to root and postgres could not reach them.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from infra.apt import PackagesMissing, install_packages
from infra.commands import CommandError
from infra.commands import run_command as _run
from infra.ports import free_port

SERVER_USER = "postgres"  # the system user Debian's package creates
PACKAGE = "postgresql"
START_TIMEOUT_S = 60.0


class PostgresCommandError(CommandError):
    """A command of the local PostgreSQL server failed."""


class LocalPostgresError(RuntimeError):
    """The local server could not be installed, started or reached; the message says why."""


def run_command(
    argv: Sequence[str],
    *,
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run one command through :func:`infra.commands.run_command`, failing with
    :class:`PostgresCommandError`."""
    return _run(argv, timeout=timeout, env=env, cwd=cwd, check=check, error=PostgresCommandError)


def server_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has ``initdb``, if any."""
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")

    def version(initdb: str) -> tuple[int, str]:
        number = Path(initdb).parents[1].name
        return (int(number) if number.isdigit() else 0, number)

    return Path(max(found, key=version)).parent if found else None


def ensure_server(log: Callable[[str], None] = print) -> Path:
    """The server's bin directory, installing Debian's ``postgresql`` with apt-get if absent."""
    found = server_bin_dir()
    if found is not None:
        return found
    try:
        install_packages([PACKAGE], why="the test PostgreSQL", error=PostgresCommandError, log=log)
    except PackagesMissing as exc:
        raise LocalPostgresError(f"no PostgreSQL server found (no initdb): {exc}") from None
    found = server_bin_dir()
    if found is None:
        raise LocalPostgresError(f"apt-get installed {PACKAGE} but no initdb appeared")
    return found


class LocalPostgres:
    """A private PostgreSQL cluster for the duration of a ``with`` block.

    ``directory`` (default: a new one under /tmp) must not exist yet or be empty, and when
    running as root every directory above it must be traversable by the ``postgres`` user.
    It holds the cluster (``data/``), the server's socket (``run/``) and its log
    (``server.log``), and is removed on exit.
    """

    def __init__(
        self,
        directory: Path | None = None,
        *,
        database: str = "auction",
        user: str = "auction",
        log: Callable[[str], None] = print,
    ) -> None:
        """Describe the server; nothing starts before ``__enter__``."""
        self._requested = directory
        self.database = database
        self.user = user
        self.password = secrets.token_hex(16)
        self.port = 0
        self.directory = Path()
        self._log = log
        self._bin = Path()
        self._server: subprocess.Popen[bytes] | None = None
        self._as_server_user: list[str] = []

    @property
    def url(self) -> str:
        """``postgresql+psycopg://user:password@127.0.0.1:port/database`` of the running server."""
        return f"postgresql+psycopg://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    @property
    def data_dir(self) -> Path:
        """The cluster directory (initdb's ``-D``)."""
        return self.directory / "data"

    @property
    def socket_dir(self) -> Path:
        """Where the server puts its Unix socket; only the server user can reach it."""
        return self.directory / "run"

    def _run(self, program: str, *args: str, timeout: float = 60.0) -> str:
        """Run a server program as the server user; return its stdout."""
        argv = [*self._as_server_user, str(self._bin / program), *args]
        return run_command(argv, timeout=timeout, cwd=self.directory).stdout

    def _prepare_directory(self) -> None:
        root = os.geteuid() == 0
        if self._requested is None:
            self.directory = Path(tempfile.mkdtemp(prefix="auction-pipeline-pg-", dir="/tmp"))
        else:
            self.directory = self._requested.resolve()
            self.directory.mkdir(parents=True, exist_ok=True)
            if any(self.directory.iterdir()):
                raise LocalPostgresError(f"{self.directory} is not empty")
            if root:
                closed = [str(p) for p in self.directory.parents if not os.stat(p).st_mode & 0o001]
                if closed:
                    raise LocalPostgresError(
                        f"the {SERVER_USER} user cannot reach {self.directory}: "
                        f"{', '.join(closed)} not traversable by others (chmod o+x, or pass "
                        "no directory to use one under /tmp)"
                    )
        if root:
            try:
                account = pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise LocalPostgresError(
                    f"no {SERVER_USER!r} system user; PostgreSQL will not run as root "
                    f"(reinstall Debian's {PACKAGE} package, which creates it)"
                ) from None
            self._as_server_user = ["runuser", "-u", SERVER_USER, "--"]
            os.chown(self.directory, account.pw_uid, account.pw_gid)
        self.directory.chmod(0o700)

    def __enter__(self) -> LocalPostgres:
        """Install if needed, create the cluster, start the server, create role and database."""
        self._bin = ensure_server(self._log)
        self._prepare_directory()
        try:
            self._start()
            self._create_role_and_database()
        except BaseException:
            self._stop_and_remove()
            raise
        return self

    def _start(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "--username=postgres",
            "--auth-local=trust",  # the socket directory is private to the server user
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            timeout=120,
        )
        self._make_socket_dir()
        self.port = free_port()
        log_file = open(self.directory / "server.log", "wb")  # noqa: SIM115 - given to Popen
        try:
            self._server = subprocess.Popen(
                [
                    *self._as_server_user,
                    str(self._bin / "postgres"),
                    "-D",
                    str(self.data_dir),
                    "-k",
                    str(self.socket_dir),
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=off",  # throw-away data: durability buys nothing here
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.directory,
                start_new_session=True,
            )
        finally:
            log_file.close()
        self._wait_until_ready()

    def _make_socket_dir(self) -> None:
        self.socket_dir.mkdir(mode=0o700)
        if self._as_server_user:
            account = pwd.getpwnam(SERVER_USER)
            os.chown(self.socket_dir, account.pw_uid, account.pw_gid)

    def _server_log(self) -> str:
        try:
            return (self.directory / "server.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        ready = [
            str(self._bin / "pg_isready"),
            "-h",
            str(self.socket_dir),
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
        ]
        while True:
            if self._server is not None and self._server.poll() is not None:
                raise LocalPostgresError(
                    f"postgres exited with code {self._server.returncode} while starting on "
                    f"port {self.port}; its log:\n{self._server_log()}"
                )
            argv = [*self._as_server_user, *ready]
            if run_command(argv, timeout=10, cwd=self.directory, check=False).returncode == 0:
                return
            if time.monotonic() > deadline:
                raise LocalPostgresError(
                    f"postgres did not accept connections within {START_TIMEOUT_S:g} s; "
                    f"its log:\n{self._server_log()}"
                )
            time.sleep(0.1)

    def _psql(self, sql: str) -> str:
        return self._run(
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.socket_dir),
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
            sql,
        )

    def _create_role_and_database(self) -> None:
        # Names are checked and the password is hex, so plain quoting is safe here.
        for name in (self.user, self.database):
            if not name.isidentifier() or name.lower() != name:
                raise LocalPostgresError(f"{name!r}: use a lower-case identifier")
        self._psql(f"CREATE ROLE {self.user} LOGIN PASSWORD '{self.password}'")
        self._psql(f"CREATE DATABASE {self.database} OWNER {self.user}")

    def _stop_and_remove(self) -> None:
        try:
            if self._server is not None and self._server.poll() is None:
                try:
                    self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w")
                    self._server.wait(timeout=30)
                except (PostgresCommandError, subprocess.TimeoutExpired) as error:
                    self._log(f"pg_ctl stop failed ({error}); killing the server")
                    # The server runs in its own session, led by the process we started.
                    os.killpg(self._server.pid, signal.SIGKILL)
                    self._server.wait(timeout=30)
        finally:
            self._server = None
            shutil.rmtree(self.directory, ignore_errors=True)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the server and remove its directory."""
        self._stop_and_remove()
