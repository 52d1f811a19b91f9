"""Shared fixtures: the real local Slurm cluster, a real Prefect server and the demo site.

Each is started once per session through the product's own code (the same code a user runs
with ``auction-pipeline cluster up``), in a temporary state directory, and stopped at the end.
Nothing is skipped for lack of Slurm: the fixture installs it when absent.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra import localslurm
from infra.postgres import LocalPostgres
from infra.prefect_api import temporary_server
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


@pytest.fixture(scope="session")
def prefect_api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prefect server (SQLite in a temp dir) for the session; yields its API URL."""
    with temporary_server(tmp_path_factory.mktemp("prefect"), log=lambda line: None) as url:
        yield url


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
