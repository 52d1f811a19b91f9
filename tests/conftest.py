"""Shared fixtures: the real local Slurm cluster, a real Prefect server and the demo site.

Each is started once per session through the product's own code (the same code a user runs
with ``auction-pipeline cluster up``), in a temporary state directory, and stopped at the end.
Nothing is skipped for lack of Slurm: the fixture installs it when absent.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from infra import localslurm
from infra.postgres import LocalPostgres
from infra.prefect_api import temporary_server
from infra.slurm import run_slurm
from sites.demo.server import DemoSite

REPO_ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).with_name("auction-pipeline"))


@pytest.fixture(scope="session")
def slurm_conf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A running 3-node local Slurm cluster; SLURM_CONF points at it for the session."""
    state_dir = tmp_path_factory.mktemp("slurm")
    conf = localslurm.up(state_dir, nodes=3, log=lambda line: None)
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)
    try:
        yield conf
    finally:
        localslurm.down(state_dir, log=lambda line: None)
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous


@pytest.fixture(autouse=True)
def _slurm_nodes_to_itself(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test on the session's cluster starts on an empty queue and leaves none behind.

    The cluster is one per test process, shared by the tests it runs in turn, and its nodes
    hold one job each. A job an earlier test left (a killed run's Dask workers wait out their
    death timeout) would hold this one's jobs pending, and tests time their runs: a walltime
    counts from the job's start, a crash window from the run's."""
    if "slurm_conf" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("slurm_conf")
    run_slurm(["scancel", "--user", str(os.getuid())], check=False)
    wait_for(
        lambda: not run_slurm(["squeue", "-h", "-o", "%i"]).stdout.split(),
        60,
        "the earlier tests' jobs left the queue",
        explain=lambda: run_slurm(["squeue", "-o", "%i %j %T %R"]).stdout,
    )
    yield
    run_slurm(["scancel", "--user", str(os.getuid())], check=False)


@pytest.fixture(scope="session")
def prefect_api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prefect server (SQLite in a temp dir) for the session; yields its API URL."""
    with temporary_server(tmp_path_factory.mktemp("prefect"), log=lambda line: None) as url:
        yield url


@pytest.fixture(scope="module")
def long_lived_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`auction-pipeline server up` in a temp state dir, for one module's tests, as a user
    starts the long-lived server; `down` afterwards (and nothing may be left running)."""
    from infra import prefect_server
    from infra.ports import free_port

    state = tmp_path_factory.mktemp("server")
    port = str(free_port())
    up = subprocess.run(
        [CLI, "server", "up", "--state-dir", state, "--port", port],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert up.returncode == 0, up.stderr
    url = up.stdout.strip().removeprefix("export PREFECT_API_URL=")
    try:
        yield url
    finally:
        down = subprocess.run(
            [CLI, "server", "down", "--state-dir", state],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert down.returncode == 0, down.stderr
        assert prefect_server.running(state) is None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throw-away real PostgreSQL server for the session (installed with apt when absent)."""
    with LocalPostgres(log=lambda line: None) as server:
        yield server.url


@pytest.fixture(scope="session")
def demo_site() -> Iterator[DemoSite]:
    """The demo auction site on a loopback port, default configuration."""
    with DemoSite() as site:
        yield site


class Cli:
    """Runs the installed ``auction-pipeline`` console script as a user would."""

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CLI, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
            cwd=REPO_ROOT,
            check=False,
        )


@pytest.fixture
def cli() -> Cli:
    """The console script, run in a subprocess."""
    return Cli()


TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
T = TypeVar("T")


def wait_for(
    condition: Callable[[], T],
    timeout: float,
    what: str,
    interval: float = 0.5,
    explain: Callable[[], str] | None = None,
) -> T:
    """Poll ``condition()`` until it returns something true, and return that; fail naming
    ``what`` after ``timeout`` seconds, with what ``explain()`` says of the state it saw."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    seen = f"; {explain()}" if explain is not None else ""
    raise AssertionError(f"{what} within {timeout:g} s{seen}")


def recorded_task_runs(
    api_url: str, flow_run_id: str, count: int, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """The flow run's task runs once the server has recorded ``count`` of them in a final
    state (task-run states arrive as events the server writes a moment later); whatever it
    holds at the timeout otherwise, for the caller's assertions to report."""
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.post(
            f"{api_url}/task_runs/filter",
            json={"flow_runs": {"id": {"any_": [flow_run_id]}}},
            timeout=30,
        )
        response.raise_for_status()
        runs: list[dict[str, Any]] = response.json()
        settled = len(runs) == count and all(r["state_type"] in TERMINAL for r in runs)
        if settled or time.monotonic() > deadline:
            return runs
        time.sleep(0.5)


@contextmanager
def tmpfs(where: Path, *options: str, size: str = "64k") -> Iterator[Path]:
    """A real tmpfs of ``size`` mounted at ``where`` (the tests run as root), unmounted
    after: a full or read-only filesystem, for the tests of what a run leaves behind."""
    where.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join([f"size={size}", *options]), "tmpfs", str(where)],
        check=True,
    )
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)
