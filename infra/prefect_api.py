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
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from infra.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STATE_DIR = REPO_ROOT / ".state" / "prefect"
START_TIMEOUT = 90.0


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


def server_command(host: str, port: int) -> list[str]:
    """The command that runs a Prefect server from this installation."""
    prefect = Path(sys.executable).with_name("prefect")
    return [str(prefect), "server", "start", "--host", host, "--port", str(port)]


def start_server(
    state_dir: Path,
    host: str,
    port: int,
    database_url: str | None = None,
    timeout: float = START_TIMEOUT,
) -> subprocess.Popen[bytes]:
    """Start ``prefect server start`` in its own session with its state under ``state_dir``
    (SQLite there, or ``database_url``) and return once its API answers.

    Raises PrefectApiError, with the log's path, when it exits or stays silent; the process
    is stopped then.
    """
    url = f"http://{host}:{port}/api"
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
    log_path = state_dir / "server.log"
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(
            server_command(host, port),
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopped as one, outlives a shell
        )
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
    return proc


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
def temporary_server(
    state_dir: Path = DEFAULT_STATE_DIR,
    host: str = "127.0.0.1",
    log: Callable[[str], None] = print,
) -> Iterator[str]:
    """Run a Prefect server (SQLite under ``state_dir``) for the block; yield its API URL."""
    state_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = start_server(state_dir, host, port)
    url = f"http://{host}:{port}/api"
    try:
        log(
            f"started a Prefect server for this run at {url.removesuffix('/api')} "
            f"(history kept in {state_dir})"
        )
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
def prefect_api(
    state_dir: Path = DEFAULT_STATE_DIR, log: Callable[[str], None] = print
) -> Iterator[str]:
    """Yield the API URL this run reports to, starting a server when none is configured.

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
