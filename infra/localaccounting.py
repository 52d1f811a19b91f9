"""Slurm accounting for the local cluster: a private MariaDB and ``slurmdbd``.

``auction-pipeline cluster up --accounting`` gives the local cluster what most university
clusters have: ``sacct`` answers about ended jobs (who cancelled, exit codes, states) long
after ``scontrol`` has forgotten them. Debian's ``mariadb-server`` and ``slurmdbd`` are
installed with apt when absent; MariaDB runs as a private instance with its data, socket and
log under the cluster's state directory on a free loopback port (the system's own database,
if any, is left alone), with a ``slurm`` user whose random password is kept only in
``slurmdbd.conf`` (mode 0600, next to ``slurm.conf``, where ``slurmdbd`` looks for it).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from infra.apt import install_packages
from infra.atomic import write_atomic
from infra.commands import CommandError, find_program, run_command

PACKAGES = {"mariadbd": "mariadb-server", "slurmdbd": "slurmdbd"}
DATABASE = "slurm_acct_db"
START_TIMEOUT = 60.0


class AccountingError(RuntimeError):
    """The accounting daemons could not be installed or started; the message says why."""


@dataclass(frozen=True)
class AccountingSpec:
    """Ports and paths of the local accounting daemons."""

    state_dir: Path
    munge_socket: Path
    database_port: int
    dbd_port: int
    password: str

    @property
    def data_dir(self) -> Path:
        """MariaDB's data directory."""
        return self.state_dir / "mysql"

    @property
    def socket(self) -> Path:
        """MariaDB's unix socket."""
        return self.state_dir / "run" / "mariadb.sock"


def new_spec(
    state_dir: Path, munge_socket: Path, database_port: int, dbd_port: int
) -> AccountingSpec:
    """A spec with a fresh random database password."""
    return AccountingSpec(state_dir, munge_socket, database_port, dbd_port, secrets.token_hex(16))


def render_slurmdbd_conf(spec: AccountingSpec) -> str:
    """``slurmdbd.conf`` (pure); it holds the database password, so it is written 0600."""
    s = spec.state_dir
    return "\n".join(
        [
            "# Written by `auction-pipeline cluster up --accounting`; rewritten on every start.",
            "AuthType=auth/munge",
            f"AuthInfo=socket={spec.munge_socket}",
            "DbdHost=localhost",
            "DbdAddr=127.0.0.1",
            f"DbdPort={spec.dbd_port}",
            "SlurmUser=root",
            "StorageType=accounting_storage/mysql",
            "StorageHost=127.0.0.1",
            f"StoragePort={spec.database_port}",
            "StorageUser=slurm",
            f"StoragePass={spec.password}",
            f"StorageLoc={DATABASE}",
            f"PidFile={s}/run/slurmdbd.pid",
            f"LogFile={s}/log/slurmdbd.log",
            "",
        ]
    )


def slurm_conf_lines(spec: AccountingSpec) -> list[str]:
    """What slurm.conf needs to send job records to this slurmdbd."""
    return [
        "AccountingStorageType=accounting_storage/slurmdbd",
        "AccountingStorageHost=127.0.0.1",
        f"AccountingStoragePort={spec.dbd_port}",
        # With slurmdbd this names the munge socket used to reach it (AuthInfo is not read
        # for these connections); clients would otherwise look for the system's socket.
        f"AccountingStoragePass={spec.munge_socket}",
    ]


def _which(program: str) -> str:
    return find_program(program) or program


def ensure_packages(log: Callable[[str], None] = print) -> None:
    """Install mariadb-server and slurmdbd with apt if absent."""
    missing = [pkg for prog, pkg in PACKAGES.items() if find_program(prog) is None]
    install_packages(missing, why="Slurm accounting (sacct)", error=CommandError, log=log)


def _sql(spec: AccountingSpec, statement: str) -> None:
    run_command(
        ["mariadb", "--no-defaults", f"--socket={spec.socket}", "-u", "root", "-e", statement],
        timeout=30,
        error=CommandError,
    )


def start(spec: AccountingSpec, slurm_conf: Path) -> None:
    """Start MariaDB (initialising it on first use) and slurmdbd; return once both answer."""
    first_start = not (spec.data_dir / "mysql").is_dir()
    if first_start:
        spec.data_dir.mkdir(parents=True, exist_ok=True)
        run_command(
            [_which("mariadb-install-db"), "--no-defaults", f"--datadir={spec.data_dir}",
             "--user=root", "--auth-root-authentication-method=socket", "--skip-test-db"],
            timeout=120, error=CommandError,
        )  # fmt: skip
    log = open(spec.state_dir / "log" / "mariadb.log", "ab")  # noqa: SIM115 - given to Popen
    with log:
        subprocess.Popen(
            [_which("mariadbd"), "--no-defaults", f"--datadir={spec.data_dir}",
             f"--socket={spec.socket}", f"--port={spec.database_port}", "--bind-address=127.0.0.1",
             f"--pid-file={spec.state_dir}/run/mariadb.pid", "--user=root"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    _wait(lambda: _answers(spec), "MariaDB", spec.state_dir / "log" / "mariadb.log")
    _sql(
        spec,
        f"CREATE DATABASE IF NOT EXISTS {DATABASE}; "
        f"CREATE OR REPLACE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{spec.password}'; "
        f"GRANT ALL ON {DATABASE}.* TO 'slurm'@'127.0.0.1';",
    )
    conf = slurm_conf.parent / "slurmdbd.conf"
    write_atomic(conf, render_slurmdbd_conf(spec).encode(), mode=0o600)
    # slurmdbd reads slurmdbd.conf from slurm.conf's directory.
    env = {**os.environ, "SLURM_CONF": str(slurm_conf)}
    run_command([_which("slurmdbd")], env=env, timeout=30, error=CommandError)
    _wait(lambda: _sacctmgr_answers(env), "slurmdbd", spec.state_dir / "log" / "slurmdbd.log")


def register_cluster(slurm_conf: Path, cluster: str) -> None:
    """Add the cluster to the accounting database (once; slurmctld then sends its jobs)."""
    env = {**os.environ, "SLURM_CONF": str(slurm_conf)}
    listed = run_command(
        ["sacctmgr", "-n", "-P", "list", "cluster", "format=cluster"], env=env, error=CommandError
    ).stdout.split()
    if cluster not in listed:
        run_command(["sacctmgr", "-i", "add", "cluster", cluster], env=env, error=CommandError)


def _sacctmgr_answers(env: dict[str, str]) -> bool:
    listing = ["sacctmgr", "-n", "list", "cluster"]
    proc = run_command(listing, env=env, check=False, timeout=10, error=CommandError)
    return proc.returncode == 0


def _answers(spec: AccountingSpec) -> bool:
    try:
        _sql(spec, "SELECT 1")
    except CommandError:
        return False
    return True


def _wait(ready: Callable[[], bool], what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.5)
    raise AccountingError(f"{what} did not start within {START_TIMEOUT:g} s; see {log}")
