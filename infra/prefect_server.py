"""``auction-pipeline server up|down|status``: the long-lived Prefect server the deployments need.

The schedules, the UI and the failure reports live in a Prefect server that must outlive any
single run. This runs ``prefect server start`` in the background with its state (SQLite by
default) under a state directory, or with PostgreSQL when a database URL is given.

It binds to loopback unless told otherwise, and refuses any other address without
``PREFECT_API_AUTH_STRING`` (``allow_open`` overrides that): an open API lets anyone who can
reach the host read every run and start flows. For a wildcard bind (0.0.0.0, ::) the URL it
hands out names this host, so compute nodes can use it.

The pid file records the server's pid, its start time (``/proc/<pid>/stat`` field 22), its
command line and its state dir, written atomically; ``down`` signals the pid only when the
live process matches all of them, so a stale file whose pid was reused (by another state
dir's server or anything else) stops nothing.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from infra.atomic import write_atomic
from infra.prefect_api import (
    START_TIMEOUT,
    PrefectApiError,
    api_is_healthy,
    api_url,
    auth_string,
    probe_url,
    start_server,
    stop_server,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STATE_DIR = REPO_ROOT / ".state" / "prefect-server"
DEFAULT_PORT = 4200
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::"})
LOCAL_NAMES = ("localhost", "ip6-localhost", "ip6-loopback")


class ServerUsageError(ValueError):
    """A ``server`` request that must not be carried out as asked (exit code 2)."""


@dataclass(frozen=True)
class ServerInfo:
    """A running server: the process the pid file names and how to reach it.

    ``start_time`` (clock ticks since boot), ``cmdline`` and ``state_dir`` identify the
    process; ``url`` is the API URL other hosts use, ``host``/``port`` what it binds.
    """

    pid: int
    start_time: int
    cmdline: tuple[str, ...]
    state_dir: Path
    url: str
    host: str
    port: int

    @property
    def local_url(self) -> str:
        """The API URL this host checks the server's health at."""
        return probe_url(self.host, self.port)


@dataclass(frozen=True)
class StalePidFile:
    """A pid file that names no live server of its state dir; why, in words."""

    path: Path
    reason: str


def _pid_file(state_dir: Path) -> Path:
    return state_dir / "server.pid"


def _legacy_url_file(state_dir: Path) -> Path:
    return state_dir / "server.url"


def _start_time(pid: int) -> int | None:
    """Field 22 of ``/proc/<pid>/stat`` (start time in clock ticks since boot), if it exists.

    The fields after the command name, which is in parentheses and may hold anything, are
    counted from the last ``)``: field 3 is the first of them.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return int(stat[stat.rindex(b")") + 2 :].split()[22 - 3])


def _cmdline(pid: int) -> tuple[str, ...]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ()
    return tuple(part.decode(errors="replace") for part in raw.split(b"\0") if part)


def _prefect_home(pid: int) -> str | None:
    """``PREFECT_HOME`` in the process's environment; None when unset or not readable (a
    process of another user)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    for entry in raw.split(b"\0"):
        if entry.startswith(b"PREFECT_HOME="):
            return entry.removeprefix(b"PREFECT_HOME=").decode(errors="replace")
    return None


def _mismatch(info: ServerInfo) -> str | None:
    """Why the live process with ``info.pid`` is not the server ``info`` records; None if it is."""
    started = _start_time(info.pid)
    if started is None:
        return f"no process has pid {info.pid} any more"
    cmdline = _cmdline(info.pid)
    if started != info.start_time or cmdline != info.cmdline:
        command = " ".join(cmdline)[:200] or "(no command line)"
        return f"pid {info.pid} is now another process ({command}), not the recorded server"
    home = _prefect_home(info.pid)
    if home != str(info.state_dir):
        return (
            f"pid {info.pid} is the Prefect server of another state dir "
            f"(PREFECT_HOME={home or 'unknown'}), not of {info.state_dir}"
        )
    return None


def _parse_record(text: str, path: Path) -> ServerInfo | StalePidFile:
    """The pid file's record, or why it is unusable (a bare pid from an older version)."""
    try:
        data: dict[str, Any] = json.loads(text)
        return ServerInfo(
            pid=int(data["pid"]),
            start_time=int(data["start_time"]),
            cmdline=tuple(str(part) for part in data["cmdline"]),
            state_dir=Path(data["state_dir"]),
            url=str(data["url"]),
            host=str(data["host"]),
            port=int(data["port"]),
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        shown = text.strip()[:40]
        return StalePidFile(
            path,
            f"it holds {shown!r}, not the pid, start time, command line and state dir it "
            f"needs to be checked (an older version wrote it); if that pid is still this "
            f"state dir's server, check with `ps -o args -p PID` and kill it by hand",
        )


def pid_file_state(state_dir: Path = DEFAULT_STATE_DIR) -> ServerInfo | StalePidFile | None:
    """What the pid file of ``state_dir`` says, checked against the live process: the running
    server, a stale pid file (and why), or None when there is no pid file."""
    state_dir = state_dir.resolve()
    path = _pid_file(state_dir)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    record = _parse_record(text, path)
    if isinstance(record, StalePidFile):
        return record
    if record.state_dir != state_dir:
        return StalePidFile(path, f"it records pid {record.pid} for {record.state_dir}")
    reason = _mismatch(record)
    return StalePidFile(path, reason) if reason else record


def running(state_dir: Path = DEFAULT_STATE_DIR) -> ServerInfo | None:
    """The server started from ``state_dir``, if it is still running."""
    found = pid_file_state(state_dir)
    return found if isinstance(found, ServerInfo) else None


def is_open_bind(host: str) -> bool:
    """True when ``host`` is reachable from other machines: any address that is not loopback.

    Raises ServerUsageError when it is neither an address nor a name this host resolves.
    """
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise ServerUsageError(
            f"--host {host!r} is neither an address nor a name this host can resolve ({exc}); "
            "give an interface address, e.g. --host 127.0.0.1 (the default) or the address "
            "compute nodes route to"
        ) from None
    addresses = {str(info[4][0]).split("%")[0] for info in infos}
    return not all(ipaddress.ip_address(address).is_loopback for address in addresses)


def check_bind(host: str, port: int, allow_open: bool) -> None:
    """Refuse an open bind without an auth string unless ``allow_open`` (``--no-auth``)."""
    if is_open_bind(host) and not auth_string() and not allow_open:
        raise ServerUsageError(
            f"refusing to serve the Prefect API on {host} port {port}, reachable from other "
            "machines, without a password: set PREFECT_API_AUTH_STRING first (export "
            "PREFECT_API_AUTH_STRING=researcher:$(openssl rand -hex 24), or prefect config "
            "set PREFECT_API_AUTH_STRING=...; the same wherever workers, notifier and flows "
            "run), or pass --no-auth to serve it open to anyone who can reach this host"
        )


def host_name() -> str:
    """This host's name as other hosts know it: the FQDN, or the host name when the FQDN is
    only a loopback alias (``localhost``, as when /etc/hosts maps the name to 127.0.0.1)."""
    name = socket.getfqdn()
    if not name or name.startswith(LOCAL_NAMES):
        name = socket.gethostname()
    return name


def public_url(host: str, port: int) -> str:
    """The API URL to hand out for a server bound to ``host``: a wildcard bind (0.0.0.0, ::)
    means this host's name, which compute nodes can resolve; an address or name as it is."""
    return api_url(host_name() if host in WILDCARD_HOSTS else host, port)


def _write_record(proc_pid: int, state_dir: Path, url: str, host: str, port: int) -> ServerInfo:
    """Record the started server's identity in the pid file (atomically) and return it."""
    started = _start_time(proc_pid)
    if started is None:
        raise PrefectApiError(
            f"the Prefect server (pid {proc_pid}) exited right after starting; "
            f"see {state_dir / 'server.log'}"
        )
    info = ServerInfo(proc_pid, started, _cmdline(proc_pid), state_dir, url, host, port)
    record = {**asdict(info), "state_dir": str(state_dir)}
    write_atomic(_pid_file(state_dir), (json.dumps(record) + "\n").encode(), mode=0o600)
    _legacy_url_file(state_dir).unlink(missing_ok=True)
    return info


def _confirm_running(current: ServerInfo, host: str, port: int) -> ServerInfo:
    """The running server if it is the one asked for; ServerUsageError otherwise."""
    if (current.host, current.port) != (host, port):
        raise ServerUsageError(
            f"the Prefect server of {current.state_dir} already runs on {current.host} port "
            f"{current.port} (pid {current.pid}), not on {host} port {port} as asked: stop it "
            f"first with `auction-pipeline server down --state-dir {current.state_dir}`, or "
            "ask for the one that runs"
        )
    return current


def up(
    state_dir: Path = DEFAULT_STATE_DIR,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    database_url: str | None = None,
    timeout: float = START_TIMEOUT,
    allow_open: bool = False,
) -> ServerInfo:
    """Start the server in the background (or confirm the same one runs) and wait until it
    answers. Raises ServerUsageError for an open bind without auth (unless ``allow_open``)
    or when the state dir's server runs on another host or port."""
    state_dir = state_dir.resolve()
    check_bind(host, port, allow_open)
    current = running(state_dir)
    if current is not None:
        return _confirm_running(current, host, port)
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o700)  # its database holds every run's parameters and logs
    if api_is_healthy(probe_url(host, port), timeout=2.0):
        raise PrefectApiError(
            f"another Prefect server already answers at {probe_url(host, port)}; stop it or "
            "choose --port"
        )
    url = public_url(host, port)
    proc = start_server(state_dir, host, port, database_url, timeout, public_url=url)
    return _write_record(proc.pid, state_dir, url, host, port)


def down(
    state_dir: Path = DEFAULT_STATE_DIR, timeout: float = 20.0
) -> ServerInfo | StalePidFile | None:
    """Stop the server started from ``state_dir`` (its whole process group) once the live
    process is checked to be it; a stale pid file is removed and nothing is signalled.
    Returns what was stopped, the stale file, or None when there was no pid file."""
    found = pid_file_state(state_dir)
    if isinstance(found, ServerInfo):
        stop_server(found.pid, timeout)
    _pid_file(state_dir.resolve()).unlink(missing_ok=True)
    _legacy_url_file(state_dir.resolve()).unlink(missing_ok=True)
    return found


def status(state_dir: Path = DEFAULT_STATE_DIR) -> tuple[bool, str]:
    """Whether the server runs and answers, and one line saying where (or why not)."""
    found = pid_file_state(state_dir)
    if not isinstance(found, ServerInfo):
        stale = f"; stale pid file {found.path}: {found.reason}" if found else ""
        return False, (
            f"no Prefect server running from {state_dir}{stale} "
            "(start one: auction-pipeline server up)"
        )
    healthy = api_is_healthy(found.local_url)
    return healthy, (
        f"Prefect server pid {found.pid} at {found.url.removesuffix('/api')} "
        f"({'healthy' if healthy else 'NOT answering'}); export PREFECT_API_URL={found.url}"
    )
