"""Make sure a run has a real Prefect API that its workers can report to.

Tasks on Dask workers report to ``PREFECT_API_URL``. Without it each worker process would
start a throw-away server of its own and its task runs would never reach the UI. So a run
either uses the server ``PREFECT_API_URL`` names (checked first, with a clear error when it
cannot be reached) or starts a real ``prefect server`` for the duration of the run, with its
database under a state directory so the run history stays browsable afterwards.

Every Prefect server this product starts binds to loopback unless told otherwise and, when
``PREFECT_API_AUTH_STRING`` is set (environment or Prefect profile), requires it: the same
setting makes Prefect's clients, the notifier and every Slurm job (which inherits the
environment; nothing is written into job scripts) send it.

A temporary server must not outlive the command that started it, however that command ends:
it runs under a small supervisor (``python -m infra.prefect_api --watch-parent PID -- ...``)
that ends the server's whole process group as soon as its parent is gone, ``kill -9``
included. The flow runs such a killed command left Running or Pending are marked Crashed by
the next temporary server started from the same state directory, when no other live one uses
it (a lock file there tells).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import NoReturn

import httpx

from infra.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STATE_DIR = REPO_ROOT / ".state" / "prefect"
START_TIMEOUT = 90.0
STATE_DIR_VARIABLE = "AUCTION_PIPELINE_PREFECT_STATE_DIR"
PARENT_POLL_SECONDS = 0.5
GRACE_SECONDS = 10.0
ORPHAN_MESSAGE = (
    "the process running this flow run ended without reporting its end (killed? e.g. kill -9, "
    "out of memory or a closed login session); marked Crashed when the next temporary Prefect "
    "server started from {state_dir}"
)


class PrefectApiError(RuntimeError):
    """The Prefect API is unreachable or a server could not be started."""


def auth_string() -> str | None:
    """The API auth string Prefect clients send (``PREFECT_API_AUTH_STRING``), if any."""
    from prefect.settings import PREFECT_API_AUTH_STRING

    return PREFECT_API_AUTH_STRING.value() or None


def auth_headers() -> dict[str, str]:
    """The ``Authorization`` header Prefect's own client sends with the auth string."""
    secret = auth_string()
    if secret is None:
        return {}
    return {"Authorization": "Basic " + base64.b64encode(secret.encode()).decode()}


def api_is_healthy(url: str, timeout: float = 5.0) -> bool:
    """True when ``url`` (…/api) answers Prefect's health check."""
    try:
        response = httpx.get(url.rstrip("/") + "/health", timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def api_url(host: str, port: int) -> str:
    """``http://HOST:PORT/api``, with an IPv6 address in brackets."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/api"


def probe_url(host: str, port: int) -> str:
    """The API URL this host itself checks a server bound to ``host`` at: a wildcard bind
    (0.0.0.0, ::) is asked on loopback, any other address or name as it is."""
    return api_url({"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host), port)


def server_command(host: str, port: int) -> list[str]:
    """The command that runs a Prefect server from this installation."""
    prefect = Path(sys.executable).with_name("prefect")
    return [str(prefect), "server", "start", "--host", host, "--port", str(port)]


def supervised_command(argv: Sequence[str], parent: int) -> list[str]:
    """``argv`` run under this module's supervisor, which ends it when ``parent`` dies."""
    supervisor = [sys.executable, "-m", "infra.prefect_api", "--watch-parent", str(parent)]
    return [*supervisor, "--", *argv]


def _server_env(state_dir: Path, url: str, database_url: str | None) -> dict[str, str]:
    """The server's environment: its home, its public API URL (the UI's too), auth, database."""
    env = {
        **os.environ,
        "PREFECT_HOME": str(state_dir),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_URL": url,
    }
    if database_url:
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url
    secret = auth_string()
    if secret is not None:  # passed in the environment: never on a command line or in a file
        env["PREFECT_SERVER_API_AUTH_STRING"] = secret
    return env


def start_server(
    state_dir: Path,
    host: str,
    port: int,
    database_url: str | None = None,
    timeout: float = START_TIMEOUT,
    *,
    public_url: str | None = None,
    supervised: bool = False,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """Start ``prefect server start`` in its own session with its state under ``state_dir``
    (SQLite there, or ``database_url``) and return once its API answers.

    ``public_url`` is the API URL other hosts use (default: the bind address's). With
    ``supervised`` the server runs under the supervisor that ends it when this process dies
    (the returned process is then the supervisor, leader of the same process group), which
    also inherits ``pass_fds``. Raises PrefectApiError, with the log's path, when it exits or
    stays silent; the process is stopped then.
    """
    url = probe_url(host, port)
    argv = server_command(host, port)
    if supervised:
        argv = supervised_command(argv, os.getpid())
    log_path = state_dir / "server.log"
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(
            argv,
            env=_server_env(state_dir, public_url or url, database_url),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopped as one, outlives a shell
            pass_fds=tuple(pass_fds),
        )
    _wait_until_healthy(proc, url, log_path, timeout)
    return proc


def _wait_until_healthy(
    proc: subprocess.Popen[bytes], url: str, log_path: Path, timeout: float
) -> None:
    """Return once ``url`` answers; raise PrefectApiError (server stopped) if it never does."""
    deadline = time.monotonic() + timeout
    while not api_is_healthy(url, timeout=2.0):
        if proc.poll() is not None:
            raise PrefectApiError(
                f"the Prefect server exited with code {proc.returncode} while starting; "
                f"see {log_path}"
            )
        if time.monotonic() > deadline:
            stop_server(proc.pid)
            raise PrefectApiError(
                f"the Prefect server did not answer within {timeout:g} s; see {log_path}"
            )
        time.sleep(0.5)


def stop_server(pid: int, timeout: float = 20.0) -> None:
    """Stop a server started by :func:`start_server` (its whole process group)."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # Reap the leader if this process started it: an unreaped zombie still counts as a
        # member of the group, and waiting on it cost 20 s per stop.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


@contextmanager
def _session_lock(state_dir: Path) -> Iterator[tuple[int, bool]]:
    """Hold a lock on ``state_dir/temporary-server.lock`` for the block: exclusive (True) when
    no other live temporary server uses the state dir, shared (False) otherwise. Yields the
    lock's file descriptor (a supervisor inheriting it keeps the lock while it lives)."""
    fd = os.open(state_dir / "temporary-server.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            exclusive = True
        except BlockingIOError:
            fcntl.flock(fd, fcntl.LOCK_SH)
            exclusive = False
        yield fd, exclusive
    finally:
        os.close(fd)


def mark_orphaned_runs_crashed(url: str, state_dir: Path) -> list[str]:
    """Mark every Running or Pending flow run of the server at ``url`` Crashed; return their
    ids. Only for a server on a state dir no live session uses: nobody can still be running
    those runs, the process that ran them ended without reporting (killed)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Crashed

    unfinished = FlowRunFilter(
        state=FlowRunFilterState(
            type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING])
        )
    )
    message = ORPHAN_MESSAGE.format(state_dir=state_dir)
    marked: list[str] = []
    with temporary_settings(updates={PREFECT_API_URL: url}), get_client(sync_client=True) as api:
        while batch := api.read_flow_runs(flow_run_filter=unfinished, limit=200):
            ids = [str(run.id) for run in batch]
            if set(ids) & set(marked):  # the server kept a state: do not loop for ever
                raise PrefectApiError(f"could not mark flow runs {ids} Crashed at {url}")
            for run in batch:
                api.set_flow_run_state(run.id, Crashed(message=message), force=True)
            marked += ids
    return marked


def _recover_orphans(url: str, state_dir: Path, log: Callable[[str], None]) -> None:
    """Mark the runs an earlier, killed session left unfinished Crashed, and say which."""
    marked = mark_orphaned_runs_crashed(url, state_dir)
    if marked:
        log(
            f"marked {len(marked)} flow run(s) Crashed that an earlier run, killed before it "
            f"could report, left Running or Pending in {state_dir}: {', '.join(marked)}"
        )


@contextmanager
def temporary_server(
    state_dir: Path = DEFAULT_STATE_DIR,
    host: str = "127.0.0.1",
    log: Callable[[str], None] = print,
) -> Iterator[str]:
    """Run a Prefect server (SQLite under ``state_dir``) for the block; yield its API URL.

    The server ends with this process however it ends (its supervisor watches this pid).
    When no other live temporary server uses ``state_dir``, flow runs an earlier killed
    session left Running or Pending are marked Crashed first.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = api_url(host, port)
    with _session_lock(state_dir) as (lock_fd, alone):
        proc = start_server(state_dir, host, port, supervised=True, pass_fds=[lock_fd])
        try:
            log(
                f"started a Prefect server for this run at {url.removesuffix('/api')} "
                f"(history kept in {state_dir})"
            )
            if alone:
                _recover_orphans(url, state_dir, log)
                fcntl.flock(lock_fd, fcntl.LOCK_SH)  # let other runs share the state dir now
            yield url
        finally:
            stop_server(proc.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


def configured_api_url() -> str | None:
    """The API URL from Prefect's settings (environment or ``prefect config set``), if any."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


@contextmanager
def prefect_api(state_dir: Path | None = None, log: Callable[[str], None] = print) -> Iterator[str]:
    """Yield the API URL this run reports to, starting a server when none is configured.

    The started server keeps its history in ``state_dir``, else in the directory
    ``AUCTION_PIPELINE_PREFECT_STATE_DIR`` names, else in the checkout's ``.state/prefect``.
    Sets ``PREFECT_API_URL`` in the environment (Slurm jobs and worker processes inherit it)
    and in Prefect's settings for this process.
    """
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    configured = configured_api_url()
    if configured:
        if not api_is_healthy(configured):
            raise PrefectApiError(
                f"the Prefect API at {configured} (from PREFECT_API_URL) is not reachable; "
                "start that server, or unset PREFECT_API_URL to let this run start its own"
            )
        os.environ["PREFECT_API_URL"] = configured  # Slurm jobs inherit the environment
        with temporary_settings(updates={PREFECT_API_URL: configured}):
            yield configured
        return
    state_dir = state_dir or Path(os.environ.get(STATE_DIR_VARIABLE) or DEFAULT_STATE_DIR)
    with temporary_server(state_dir, log=log) as url:
        os.environ["PREFECT_API_URL"] = url
        try:
            with temporary_settings(updates={PREFECT_API_URL: url}):
                try:
                    yield url
                finally:
                    # Ship the run's last log lines before the server goes away.
                    APILogWorker.drain_all(timeout=10)
        finally:
            os.environ.pop("PREFECT_API_URL", None)


class _Stop(Exception):
    """SIGTERM reached the supervisor (with its group: the server got it too)."""


def _raise_stop(signum: int, frame: FrameType | None) -> NoReturn:
    raise _Stop


def _end_group(server: subprocess.Popen[bytes]) -> NoReturn:
    """The parent is gone: SIGTERM the process group, give the server its grace period,
    then SIGKILL whatever is left of the group, this supervisor included."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.killpg(0, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.wait(timeout=GRACE_SECONDS)
    os.killpg(0, signal.SIGKILL)
    raise SystemExit(128 + signal.SIGKILL)  # not reached


def supervise(parent: int, argv: Sequence[str], poll: float = PARENT_POLL_SECONDS) -> int:
    """Run ``argv`` as a child in this process group until it exits (return its code), or
    until ``parent`` is no longer this process's parent (it died, even by SIGKILL): then end
    the whole group. A SIGTERM (``stop_server``) is passed on and the server reaped, so no
    zombie keeps the group alive.

    Polling the parent pid covers what ``PR_SET_PDEATHSIG`` would not: it fires for the
    thread that forked, not the process, and reaches only the direct child.
    """
    signal.signal(signal.SIGTERM, _raise_stop)
    server = subprocess.Popen(list(argv))
    try:
        while os.getppid() == parent:
            with contextlib.suppress(subprocess.TimeoutExpired):
                return server.wait(timeout=poll)
    except _Stop:
        with contextlib.suppress(ProcessLookupError):
            server.terminate()
        return server.wait()
    _end_group(server)


def _supervisor_main(argv: Sequence[str] | None = None) -> int:
    """``python -m infra.prefect_api --watch-parent PID -- COMMAND...``."""
    parser = argparse.ArgumentParser(prog="python -m infra.prefect_api")
    parser.add_argument("--watch-parent", type=int, required=True, metavar="PID")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to supervise after --")
    return supervise(args.watch_parent, command)


if __name__ == "__main__":
    sys.exit(_supervisor_main())
