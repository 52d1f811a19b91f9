"""The Prefect server commands under hostile conditions (issue 12, defects 12 and 13).

An open bind without an auth string is refused, and an explicit ``--no-auth`` one prints a
name compute nodes can use; ``server down`` with a pid file whose pid now belongs to another
state dir's server stops nothing; ``kill -9`` of a run takes its temporary server with it,
and the next run marks the orphaned flow run Crashed; status commands exit 1 when nothing
runs or answers; ``demo-site`` on a bad or busy port gives one line, not a traceback.
Every server here lives in a state dir of its own (never the checkout's ``.state/``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from conftest import CLI, REPO_ROOT, Cli, wait_for

from infra import localslurm
from infra.ports import free_port
from infra.prefect_api import temporary_server
from infra.slurm import SlurmCommandError
from sites.demo.catalogue import DemoConfig
from sites.demo.server import DemoSite

NO_AUTH = {"PREFECT_API_AUTH_STRING": ""}


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def _exported_url(stdout: str) -> str:
    match = re.search(r"^export PREFECT_API_URL=(\S+)$", stdout, re.MULTILINE)
    assert match, stdout
    return match.group(1)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def servers(cli: Cli) -> Iterator[list[Path]]:
    """State dirs the test starts servers in; each is brought down afterwards."""
    started: list[Path] = []
    yield started
    for state_dir in started:
        cli("server", "down", "--state-dir", str(state_dir), timeout=60)


def test_open_bind_without_auth_string_is_refused(
    cli: Cli, tmp_path: Path, servers: list[Path]
) -> None:
    state_dir = tmp_path / "open"
    servers.append(state_dir)
    port = free_port()
    result = cli(
        "server", "up", "--state-dir", str(state_dir), "--host", "0.0.0.0", "--port", str(port),
        env=NO_AUTH, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    line = _one_line(result.stderr)
    assert "0.0.0.0" in line and "PREFECT_API_AUTH_STRING" in line and "--no-auth" in line
    assert "export PREFECT_API_AUTH_STRING=" in line  # how to set it
    assert result.stdout == ""
    assert not _healthy(f"http://127.0.0.1:{port}/api")
    assert not (state_dir / "server.pid").exists()


def test_no_auth_open_bind_warns_and_prints_a_name_compute_nodes_can_use(
    cli: Cli, tmp_path: Path, servers: list[Path]
) -> None:
    state_dir = tmp_path / "open"
    servers.append(state_dir)
    port = free_port()
    result = cli(
        "server", "up", "--state-dir", str(state_dir), "--host", "0.0.0.0", "--port", str(port),
        "--no-auth", env=NO_AUTH, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "WARNING" in result.stderr and "no password" in result.stderr
    assert "PREFECT_API_AUTH_STRING" in result.stderr
    url = _exported_url(result.stdout)
    host = httpx.URL(url).host
    assert host not in {"0.0.0.0", "localhost", "127.0.0.1", "::"}, url
    assert host in {socket.getfqdn(), socket.gethostname()}, url
    assert url == f"http://{host}:{port}/api"
    assert _healthy(url)
    # It binds to what --host says: every interface, this host's non-loopback ones included.
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET:
                assert _healthy(f"http://{address.address}:{port}/api"), address.address
    record = json.loads((state_dir / "server.pid").read_text())
    assert record["url"] == url


def test_down_of_a_stale_pid_file_stops_nothing(
    cli: Cli, tmp_path: Path, servers: list[Path]
) -> None:
    """A pid file of state dir A naming a pid that is now B's server (a reused pid)."""
    a, b = tmp_path / "a", tmp_path / "b"
    servers.append(b)
    port = free_port()
    up = cli("server", "up", "--state-dir", str(b), "--port", str(port), env=NO_AUTH, timeout=120)
    assert up.returncode == 0, up.stderr
    url = _exported_url(up.stdout)
    b_pid = int(re.search(r"pid (\d+)", up.stderr).group(1))  # type: ignore[union-attr]
    b_process = psutil.Process(b_pid)
    assert json.loads((b / "server.pid").read_text())["pid"] == b_pid
    a.mkdir()
    record = json.loads((b / "server.pid").read_text())
    mine = {**record, "state_dir": str(a.resolve())}
    forged = [
        (b_pid, f"{b_pid}\n"),  # as the code before this fix wrote it
        # B's process exactly (start time, command line), recorded for A: PREFECT_HOME differs
        (b_pid, json.dumps(mine)),
        # A's server, started earlier with the same command: its start time differs
        (b_pid, json.dumps({**mine, "start_time": 1})),
        # the pid is now some other program's (this test's)
        (os.getpid(), json.dumps({**mine, "pid": os.getpid()})),
    ]
    for pid, content in forged:
        (a / "server.pid").write_text(content)
        (a / "server.url").write_text(f"{url}\n")  # the code before this fix kept it here
        down = cli("server", "down", "--state-dir", str(a), timeout=60)
        assert down.returncode == 0, down.stderr
        line = _one_line(down.stderr)
        assert "stale" in line and str(pid) in line and "nothing was stopped" in line, line
        assert not (a / "server.pid").exists()
        assert b_process.is_running() and _healthy(url), content
    status = cli("server", "status", "--state-dir", str(b), timeout=60)
    assert status.returncode == 0 and f"pid {b_pid}" in status.stdout, status.stdout


def test_server_status_exit_codes_and_port_conflict(
    cli: Cli, tmp_path: Path, servers: list[Path]
) -> None:
    """status: 0 running and healthy, 1 not running or not answering; up on another port: 2."""
    state_dir = tmp_path / "s"
    servers.append(state_dir)
    none = cli("server", "status", "--state-dir", str(state_dir), timeout=60)
    assert none.returncode == 1 and "no Prefect server running" in none.stdout
    port = free_port()
    up = cli(
        "server", "up", "--state-dir", str(state_dir), "--host", "127.0.0.2", "--port", str(port),
        env=NO_AUTH, timeout=120,
    )  # fmt: skip
    assert up.returncode == 0, up.stderr
    assert _exported_url(up.stdout) == f"http://127.0.0.2:{port}/api"  # a specific address: as is
    pid = json.loads((state_dir / "server.pid").read_text())["pid"]
    healthy = cli("server", "status", "--state-dir", str(state_dir), timeout=60)
    assert healthy.returncode == 0 and "healthy" in healthy.stdout, healthy.stdout

    other = free_port()
    again = cli(
        "server", "up", "--state-dir", str(state_dir), "--host", "127.0.0.2", "--port", str(other),
        env=NO_AUTH, timeout=120,
    )  # fmt: skip
    assert again.returncode == 2, again.stdout + again.stderr
    line = _one_line(again.stderr)
    assert f"port {port}" in line and str(other) in line and "server down" in line, line
    assert not _healthy(f"http://127.0.0.2:{other}/api")
    same = cli(
        "server", "up", "--state-dir", str(state_dir), "--host", "127.0.0.2", "--port", str(port),
        env=NO_AUTH, timeout=120,
    )  # fmt: skip
    assert same.returncode == 0 and _exported_url(same.stdout) == f"http://127.0.0.2:{port}/api"

    os.kill(pid, signal.SIGSTOP)  # alive, but not answering
    try:
        stuck = cli("server", "status", "--state-dir", str(state_dir), timeout=60)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert stuck.returncode == 1 and "NOT answering" in stuck.stdout, stuck.stdout

    down = cli("server", "down", "--state-dir", str(state_dir), timeout=60)
    assert down.returncode == 0 and f"pid {pid}" in down.stderr
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    gone = cli("server", "status", "--state-dir", str(state_dir), timeout=60)
    assert gone.returncode == 1, gone.stdout


def test_cluster_status_exits_1_when_no_cluster_runs(cli: Cli, tmp_path: Path) -> None:
    result = cli("cluster", "status", "--state-dir", str(tmp_path / "none"), timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no local cluster running" in result.stdout


def test_cluster_status_is_not_ok_when_slurmctld_does_not_answer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def refuse(**_: Any) -> list[Any]:
        raise SlurmCommandError(
            ["sinfo"], 1, "", "sinfo: error: Unable to contact slurm controller"
        )

    monkeypatch.setattr(localslurm, "running_daemons", lambda state_dir: {"slurmctld": 4242})
    monkeypatch.setattr(localslurm, "node_states", refuse)
    ok, text = localslurm.status(tmp_path)
    assert not ok
    assert "slurmctld (pid 4242)" in text and "Unable to contact slurm controller" in text


@pytest.mark.parametrize(
    ("port", "code", "named"),
    [("70000", 2, "invalid port 70000"), ("-1", 2, "invalid port -1"), ("busy", 3, "in use")],
)
def test_demo_site_on_a_bad_or_busy_port_gives_one_line(
    cli: Cli, port: str, code: int, named: str
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        if port == "busy":
            port = str(holder.getsockname()[1])
        result = cli("demo-site", "--port", port, timeout=60)
    assert result.returncode == code, result.stdout + result.stderr
    line = _one_line(result.stderr)
    assert named in line and port in line and "--port" in line, line


def _server_processes(state_dir: Path) -> dict[int, int]:
    """pid -> process group of every process serving a Prefect API from ``state_dir``."""
    found = {}
    for process in psutil.process_iter():
        try:
            if process.environ().get("PREFECT_HOME") == str(state_dir):
                found[process.pid] = os.getpgid(process.pid)
        except (psutil.Error, ProcessLookupError):
            continue
    return found


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def _running_flow_run(url: str) -> str | None:
    try:
        response = httpx.post(
            f"{url}/api/flow_runs/filter",
            json={"flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}}},
            timeout=10,
        )
    except httpx.HTTPError:
        return None
    runs = response.json() if response.status_code == 200 else []
    return str(runs[0]["id"]) if runs else None


def test_kill_9_of_a_run_takes_its_temporary_server_and_the_next_run_marks_it_crashed(
    cli: Cli, tmp_path: Path
) -> None:
    state_dir = tmp_path / "prefect"
    env = {
        **os.environ, "PREFECT_API_URL": "", **NO_AUTH,
        "AUCTION_PIPELINE_PREFECT_STATE_DIR": str(state_dir),
    }  # fmt: skip
    argv = [CLI, "run", "--profile", "local", "--date", "2026-03-14", "--site", "harrow-finch"]
    stderr_path = tmp_path / "killed.err"
    groups: dict[int, int] = {}
    with DemoSite(DemoConfig(latency=0.3)) as slow, open(stderr_path, "w") as stderr:
        proc = subprocess.Popen(
            [*argv, "--data-root", str(tmp_path / "killed")],
            env={**env, "DEMO_SITE_URL": slow.url}, cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
            stderr=stderr, start_new_session=True,
        )  # fmt: skip
        try:
            url = wait_for(
                lambda: re.search(r"started a Prefect server for this run at (\S+)",
                                  stderr_path.read_text()),
                120, "the run said it started a Prefect server",
            ).group(1)  # fmt: skip
            orphan = wait_for(lambda: _running_flow_run(url), 120, "a flow run was Running")
            groups = _server_processes(state_dir)
            assert groups, "no process serves the temporary server's state dir"
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            started = time.monotonic()
            wait_for(
                lambda: all(_group_gone(g) for g in groups.values()), 30,
                f"the temporary server's process groups {sorted(set(groups.values()))} ended",
            )  # fmt: skip
            assert time.monotonic() - started < 30
        finally:
            for pgid in {*groups.values(), proc.pid}:  # leave nothing behind, fixed or not
                if not _group_gone(pgid):
                    os.killpg(pgid, signal.SIGKILL)
            proc.wait(timeout=10)

    with DemoSite() as site:
        after = subprocess.run(
            [*argv, "--data-root", str(tmp_path / "next"), "--json"],
            env={**env, "DEMO_SITE_URL": site.url}, cwd=REPO_ROOT, capture_output=True,
            text=True, timeout=300, check=False,
        )  # fmt: skip
    assert after.returncode == 0, after.stderr[-3000:]
    assert "marked 1 flow run(s) Crashed" in after.stderr and orphan in after.stderr
    assert json.loads(after.stdout)["state"] == "COMPLETED"
    assert not _server_processes(state_dir)
    with temporary_server(state_dir, log=lambda line: None) as api:
        run = httpx.get(f"{api}/flow_runs/{orphan}", timeout=30).json()
    assert run["state_type"] == "CRASHED", run["state"]
    assert "ended without reporting" in run["state"]["message"]
    assert "killed" in run["state"]["message"]
    assert date.fromisoformat(run["parameters"]["date"]) == date(2026, 3, 14)
