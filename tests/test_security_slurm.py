"""A Slurm run's Dask scheduler admits only peers holding the run's own TLS certificate.

Other users of the cluster can reach the login and compute nodes. On the real local Slurm
cluster: a worker job with the run's certificate connects and computes; a Dask client with
a certificate of its own, a plain-TCP client and a bare TLS client without a certificate are
all refused, and the scheduler never registers them. The certificate files exist only while
the cluster does, readable by the owner alone. A Prefect server started with an auth string
refuses requests without it, while the run's Slurm jobs (which inherit it) report as usual and
the string is written nowhere.
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
from distributed import Client
from distributed.comm import parse_address, parse_host_port
from distributed.security import Security

from infra.interactive import cluster_client
from infra.ports import free_port
from sites.demo.server import DemoSite
from tasks.storage import DataRoot

pytestmark = [pytest.mark.slurm, pytest.mark.prefect_server]


def auth_headers_for(secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(secret.encode()).decode()}


def _client_ids(client: Client) -> set[str]:
    def ids(dask_scheduler: Any) -> list[str]:
        return list(dask_scheduler.clients)

    return set(client.run_on_scheduler(ids))  # type: ignore[no-untyped-call]


def _bare_tls_without_certificate(address: str) -> bytes:
    """Open TLS to ``address`` without a client certificate and read; b"" if closed."""
    host, port = parse_host_port(parse_address(address)[1])
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((host, port), timeout=10) as raw,
        context.wrap_socket(raw) as tls,
    ):
        tls.sendall(b"\x00" * 64)
        return tls.recv(1024)


def test_scheduler_refuses_clients_without_the_runs_certificate(
    slurm_conf: Path, tmp_path: Path
) -> None:
    root = DataRoot(tmp_path / "data")
    with cluster_client("dev", jobs=1, data_root=root.path, log=lambda line: None) as client:
        address = client.scheduler.address
        assert address.startswith("tls://")
        # The run's worker job holds the certificate: it connected and computes.
        assert client.submit(sum, [1, 2, 3]).result(timeout=60) == 6
        assert len(client.scheduler_info()["workers"]) == 1
        before = _client_ids(client)

        # The certificate files: owner-only, in an owner-only directory on the data root.
        tls_root = root.path / ".dask-tls"
        files = [p for p in tls_root.rglob("*") if p.is_file()]
        assert sorted(p.name for p in files) == ["cert.pem", "key.pem"]
        assert all(p.stat().st_mode & 0o777 == 0o600 for p in files)
        assert tls_root.stat().st_mode & 0o777 == 0o700

        # A client with a certificate of its own (another user's cluster) is refused.
        with pytest.raises(OSError):
            Client(address, security=Security.temporary(), timeout=10)  # type: ignore[no-untyped-call]
        # So is one that speaks plain TCP to the same port...
        plain = address.replace("tls://", "tcp://")
        with pytest.raises(OSError):
            Client(plain, timeout=10)  # type: ignore[no-untyped-call]
        # ...and a TLS client without any certificate: the scheduler closes the connection.
        with pytest.raises((ssl.SSLError, ConnectionError)):
            if not _bare_tls_without_certificate(address):
                raise ConnectionError("closed by the scheduler")

        # None of them was registered, and the run's own worker is still there and computing.
        assert _client_ids(client) == before
        assert len(client.scheduler_info()["workers"]) == 1
        assert client.submit(sum, [4, 5]).result(timeout=60) == 9
    assert not [p for p in (root.path / ".dask-tls").rglob("*") if p.is_file()]


def test_an_auth_string_guards_the_server_reaches_slurm_jobs_and_is_written_nowhere(
    slurm_conf: Path, demo_site: DemoSite, cli: Any, tmp_path: Path
) -> None:
    secret = f"researcher:{secrets.token_hex(16)}"
    env = {"PREFECT_API_AUTH_STRING": secret}
    state_dir, data_root = tmp_path / "server", tmp_path / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    up = cli("server", "up", "--state-dir", str(state_dir), "--port", str(port), env=env)
    assert up.returncode == 0, up.stderr
    try:
        assert "requires the auth string" in up.stderr
        # Without the string the API refuses; the health check stays open for probes.
        assert httpx.post(f"{url}/flow_runs/filter", json={}, timeout=30).status_code == 401
        assert httpx.get(f"{url}/health", timeout=30).status_code == 200

        result = cli(
            "run",
            "--profile",
            "dev",
            "--site",
            "harrow-finch",
            "--date",
            "2026-03-14",
            "--data-root",
            str(data_root),
            "--json",
            env={
                **env,
                "PREFECT_API_URL": url,
                "DEMO_SITE_URL": demo_site.url,
                "AUCTION_PIPELINE__DEV__WORKER_START_TIMEOUT": "120",
            },
        )
        assert result.returncode == 0, result.stderr[-3000:]
        summary = json.loads(result.stdout)
        assert summary["state"] == "COMPLETED" and summary["slurm_jobs"]

        # The tasks ran in Slurm jobs, which reported to the guarded API: they inherited the
        # string from the environment.
        with httpx.Client(base_url=url, headers=auth_headers_for(secret), timeout=30) as api:
            runs = api.post(
                "/task_runs/filter",
                json={"flow_runs": {"id": {"any_": [summary["flow_run_id"]]}}},
            ).json()
            logs = api.post(
                "/logs/filter",
                json={"logs": {"flow_run_id": {"any_": [summary["flow_run_id"]]}}},
            ).json()
        assert len(runs) == 4 and {r["state_type"] for r in runs} == {"COMPLETED"}
        assert logs and not [m for m in logs if secret in m["message"]]

        # Not in a job script, a job log, a data file or the command's output.
        leaked = [
            p
            for p in [*data_root.rglob("*"), *state_dir.rglob("*.log")]
            if p.is_file() and secret.encode() in p.read_bytes()
        ]
        assert not leaked
        assert list((data_root / "logs" / "slurm").glob("worker-job-*.sh"))
        assert secret not in result.stdout + result.stderr
    finally:
        cli("server", "down", "--state-dir", str(state_dir), env=env)
