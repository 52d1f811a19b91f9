"""``auction-pipeline server up|down|status``: the long-lived Prefect server the deployments need.

The schedules, the UI and the failure reports live in a Prefect server that must outlive any
single run. This runs ``prefect server start`` in the background with its state (SQLite by
default) under a state directory, or with PostgreSQL when a database URL is given, and keeps
its pid so ``down`` stops exactly that process. It binds to loopback unless told otherwise:
compute nodes reach it only when ``--host`` names an interface they can route to.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from infra.prefect_api import (
    START_TIMEOUT,
    PrefectApiError,
    api_is_healthy,
    start_server,
    stop_server,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STATE_DIR = REPO_ROOT / ".state" / "prefect-server"
DEFAULT_PORT = 4200


@dataclass(frozen=True)
class ServerInfo:
    """Where a running server is and how to reach it."""

    pid: int
    url: str
    state_dir: Path


def _pid_file(state_dir: Path) -> Path:
    return state_dir / "server.pid"


def _url_file(state_dir: Path) -> Path:
    return state_dir / "server.url"


def _alive(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"prefect" in cmdline and b"server" in cmdline


def running(state_dir: Path = DEFAULT_STATE_DIR) -> ServerInfo | None:
    """The server started from ``state_dir``, if it is still running."""
    try:
        pid = int(_pid_file(state_dir).read_text().strip())
        url = _url_file(state_dir).read_text().strip()
    except (OSError, ValueError):
        return None
    return ServerInfo(pid, url, state_dir) if _alive(pid) else None


def up(
    state_dir: Path = DEFAULT_STATE_DIR,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    database_url: str | None = None,
    timeout: float = START_TIMEOUT,
) -> ServerInfo:
    """Start the server in the background (or confirm it runs) and wait until it answers."""
    state_dir = state_dir.resolve()
    current = running(state_dir)
    if current is not None:
        return current
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o700)  # its database holds every run's parameters and logs
    url = f"http://{host}:{port}/api"
    if api_is_healthy(url, timeout=2.0):
        raise PrefectApiError(
            f"another Prefect server already answers at {url}; stop it or choose --port"
        )
    proc = start_server(state_dir, host, port, database_url, timeout)
    _pid_file(state_dir).write_text(f"{proc.pid}\n")
    _url_file(state_dir).write_text(f"{url}\n")
    return ServerInfo(proc.pid, url, state_dir)


def down(state_dir: Path = DEFAULT_STATE_DIR, timeout: float = 20.0) -> ServerInfo | None:
    """Stop the server started from ``state_dir`` (its whole process group); None if none."""
    state_dir = state_dir.resolve()
    current = running(state_dir)
    if current is not None:
        stop_server(current.pid, timeout)
    _pid_file(state_dir).unlink(missing_ok=True)
    return current


def status(state_dir: Path = DEFAULT_STATE_DIR) -> str:
    """One line: where the server runs and whether it answers."""
    current = running(state_dir.resolve())
    if current is None:
        return f"no Prefect server running from {state_dir} (start one: auction-pipeline server up)"
    health = "healthy" if api_is_healthy(current.url) else "NOT answering"
    return (
        f"Prefect server pid {current.pid} at {current.url.removesuffix('/api')} ({health}); "
        f"export PREFECT_API_URL={current.url}"
    )
