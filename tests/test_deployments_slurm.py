"""The deployments for real: a long-lived Prefect server from `auction-pipeline server up`,
the deployments registered with `auction-pipeline deploy` (twice: idempotent), schedules read
back from the server, a worker from `auction-pipeline worker`, and `prefect deployment run
'daily-pipeline/dev'` completing with its tasks in Slurm jobs on partition dev."""

from __future__ import annotations

import email
import email.message
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from conftest import recorded_task_runs

from deployments.register import load_deployments
from infra import prefect_server
from infra.ports import free_port
from sites.demo.catalogue import DemoConfig
from sites.demo.server import DemoSite

pytestmark = [pytest.mark.slurm, pytest.mark.prefect_server]

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """`auction-pipeline server up` in a temp state dir; `down` afterwards."""
    state = tmp_path / "server"
    port = str(free_port())
    up = subprocess.run(
        [BIN / "auction-pipeline", "server", "up", "--state-dir", state, "--port", port],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert up.returncode == 0, up.stderr
    url = up.stdout.strip().removeprefix("export PREFECT_API_URL=")
    try:
        yield url
    finally:
        down = subprocess.run(
            [BIN / "auction-pipeline", "server", "down", "--state-dir", state],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert down.returncode == 0, down.stderr
        assert prefect_server.running(state) is None


def _dev_env(server: str, data_root: Path) -> dict[str, str]:
    """The environment of a worker serving the dev deployment on the local cluster."""
    return {
        "PREFECT_API_URL": server,
        "AUCTION_PIPELINE_DEV_DATA_ROOT": str(data_root),
        "AUCTION_PIPELINE__DEV__WORKER_START_TIMEOUT": "120",
    }


@contextmanager
def _worker(env: dict[str, str], site_url: str, log: Path) -> Iterator[None]:
    """`auction-pipeline worker` against the demo site at ``site_url``; stopped on exit."""
    with open(log, "wb") as output:
        worker = subprocess.Popen(
            [BIN / "auction-pipeline", "worker"],
            env={**os.environ, **env, "DEMO_SITE_URL": site_url,
                 "PREFECT_WORKER_QUERY_SECONDS": "2"},
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            yield
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=60)


def _run_dev(env: dict[str, str], *, watch: bool = True) -> subprocess.CompletedProcess[str]:
    """`prefect deployment run 'daily-pipeline/dev'` for 2026-03-14, as a user types it."""
    argv = [BIN / "prefect", "deployment", "run", "daily-pipeline/dev", "-p", "date=2026-03-14"]
    if watch:
        argv += ["--watch", "--watch-timeout", "300"]
    return subprocess.run(
        argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=360,
        check=False,
    )  # fmt: skip


class _Inbox:
    """aiosmtpd handler keeping every message received."""

    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@contextmanager
def _smtp_server() -> Iterator[tuple[_Inbox, int]]:
    """A real SMTP server on loopback for the block: its inbox and its port."""
    inbox, port = _Inbox(), free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        yield inbox, port
    finally:
        smtp.stop()


def _mail_env(env: dict[str, str], port: int, to: str = "curator@example.org") -> dict[str, str]:
    return {
        **env,
        "AUCTION_PIPELINE_SMTP_HOST": "127.0.0.1",
        "AUCTION_PIPELINE_SMTP_PORT": str(port),
        "AUCTION_PIPELINE_MAIL_FROM": "pipeline@example.org",
        "AUCTION_PIPELINE_MAIL_TO": to,
    }


def test_deployment_run_on_the_dev_partition(
    slurm_conf: Path, server: str, cli, tmp_path: Path
) -> None:
    data_root = tmp_path / "dev-data"
    env = _dev_env(server, data_root)
    for _ in range(2):  # registering twice changes nothing
        deployed = cli("deploy", env=env, timeout=120)
        assert deployed.returncode == 0, deployed.stderr[-2000:]
    ids = [line.split()[-1] for line in deployed.stdout.splitlines() if "registered" in line]
    assert len(ids) == 2

    # The schedules as the server holds them are the ones deployments.yaml (and the README) give.
    config = load_deployments()
    readme = (REPO_ROOT / "README.md").read_text()
    with httpx.Client(base_url=server, timeout=30) as api:
        for name, spec in config.deployments.items():
            deployment = api.get(f"/deployments/name/daily-pipeline/{name}").json()
            (schedule,) = deployment["schedules"]
            assert schedule["schedule"]["cron"] == spec.cron
            assert schedule["schedule"]["timezone"] == spec.timezone
            assert deployment["parameters"]["profile"] == spec.parameters["profile"]
            assert deployment["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
            assert f"`{spec.cron}`" in readme and spec.timezone in readme
        dev = api.get("/deployments/name/daily-pipeline/dev").json()
        assert dev["parameters"] == {"profile": "dev", "data_root": str(data_root)}

    with DemoSite() as site, _worker(env, site.url, tmp_path / "worker.log"):
        run = _run_dev(env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "Completed" in run.stdout

    provenance = json.loads((data_root / "archive" / "2026-03-14" / "provenance.json").read_text())
    jobs = provenance["slurm_jobs"]
    assert jobs and {job["partition"] for job in jobs} == {"dev"}
    with httpx.Client(base_url=server, timeout=30) as api:
        flow_run = api.get(f"/flow_runs/{provenance['flow_run_id']}").json()
        assert flow_run["state_type"] == "COMPLETED"
        assert flow_run["deployment_id"] == dev["id"]
        task_runs = recorded_task_runs(server, flow_run["id"], 8)
        assert len(task_runs) == 8
        assert {t["state_type"] for t in task_runs} == {"COMPLETED"}


def test_a_failed_deployment_run_is_mailed_once_with_its_cause(
    slurm_conf: Path, server: str, cli, tmp_path: Path
) -> None:
    env = _dev_env(server, tmp_path / "dev-data")
    assert cli("deploy", env=env, timeout=120).returncode == 0
    broken = DemoSite(DemoConfig(unreachable=frozenset({"hotel-lumiere"})))
    with broken as site, _worker(env, site.url, tmp_path / "worker.log"):
        run = _run_dev(env)
    assert run.returncode != 0 and "Failed" in run.stdout, run.stdout[-2000:]

    state = ["--state-file", str(tmp_path / "notifier.json")]
    # An SMTP server that refuses: one line naming it, nothing marked as sent.
    refused = cli("notifier", "--once", *state, env=_mail_env(env, free_port()))
    assert refused.returncode == 3 and "did not take the mail" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    with _smtp_server() as (inbox, port):
        mail_env = _mail_env(env, port, to="curator@example.org, rse@example.org")
        first = cli("notifier", "--once", *state, env=mail_env)
        again = cli("notifier", "--once", *state, env=mail_env)
    assert first.returncode == 0, first.stderr
    assert again.returncode == 0 and "0 failure e-mail(s) sent" in again.stderr
    (message,) = inbox.messages  # mailed exactly once
    assert message["Subject"] == "[auction-pipeline] daily-pipeline/dev 2026-03-14: run FAILED"
    assert message["To"] == "curator@example.org, rse@example.org"
    body = message.get_payload(decode=True).decode()
    assert "scrape-hotel-lumiere (FAILED) running in Slurm job" in body
    assert "(dev) on node n" in body
    assert "HTTP 503" in body
    assert f"{server.removesuffix('/api')}/runs/flow-run/" in body
    assert "log lines:" in body and "Beginning flow run" in body


def _process_of_flow_run(flow_run_id: str) -> int | None:
    """The pid of the process executing a flow run (the worker sets PREFECT__FLOW_RUN_ID)."""
    marker = f"PREFECT__FLOW_RUN_ID={flow_run_id}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                return int(entry.name)
        except OSError:
            continue
    return None


def _wait_for(condition: Any, timeout: float, what: str) -> Any:
    """Poll ``condition()`` once a second until it returns something true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(1)
    raise AssertionError(f"{what} within {timeout:g} s")


def test_a_killed_flow_process_ends_crashed_and_is_mailed(
    slurm_conf: Path, server: str, cli, tmp_path: Path
) -> None:
    env = _dev_env(server, tmp_path / "dev-data")
    assert cli("deploy", env=env, timeout=120).returncode == 0
    api = httpx.Client(base_url=server, timeout=30)
    slow = DemoSite(DemoConfig(latency=0.3))  # slow enough to kill the run mid-way
    with slow as site, _worker(env, site.url, tmp_path / "worker.log"):
        started = _run_dev(env, watch=False)
        assert started.returncode == 0, started.stderr
        run_id = re.search(r"UUID: ([0-9a-f-]{36})", started.stdout).group(1)  # type: ignore[union-attr]

        def running_flow_process() -> int | None:
            running = api.post(
                "/task_runs/filter",
                json={"flow_runs": {"id": {"any_": [run_id]}},
                      "task_runs": {"state": {"type": {"any_": ["RUNNING"]}}}},
            ).json()  # fmt: skip
            return _process_of_flow_run(run_id) if running else None

        pid = _wait_for(running_flow_process, 180, "the flow run got to running tasks")
        os.kill(pid, signal.SIGKILL)  # the flow process dies without a word
        _wait_for(
            lambda: api.get(f"/flow_runs/{run_id}").json()["state_type"] == "CRASHED",
            120,
            "the run was marked CRASHED",
        )

    with _smtp_server() as (inbox, port):
        state = ["--state-file", str(tmp_path / "notifier.json")]
        mailed = cli("notifier", "--once", *state, env=_mail_env(env, port))
    assert mailed.returncode == 0, mailed.stderr
    (message,) = inbox.messages
    assert message["Subject"] == "[auction-pipeline] daily-pipeline/dev 2026-03-14: run CRASHED"
    assert f"/runs/flow-run/{run_id}" in message.get_payload(decode=True).decode()
