"""`prefect.yaml` is the one source of the deployments: Prefect's own `prefect deploy --all`
and `auction-pipeline deploy` register the same deployments from it, on a real server.

The Prefect way is followed as its documentation gives it, from this checkout (in CI a clean
clone): `prefect work-pool create` for the two pools, `prefect deploy --all`, `prefect
automation create --from-file`. Everything is read back from the API and deleted; then
`auction-pipeline deploy` registers the same file on the emptied server, and everything it
made is read back and compared, field by field, with what Prefect's commands made.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import REPO_ROOT

from deployments.automations import CRASH_DETECTION
from deployments.config import load_prefect_file
from deployments.pools import PROCESS_POOL, SLURM_POOL, SLURM_WORKER_TYPE

pytestmark = pytest.mark.prefect_server

BIN = Path(sys.executable).parent
NAMES = ["prod", "marketplaces", "dev"]
# Made fresh by each registration (ids, times) or derived from the ids.
_VOLATILE = {"id", "created", "updated", "deployment_id", "flow_id", "work_queue_id",
             "last_polled", "status", "labels"}  # fmt: skip
# Sets the server keeps as lists in no fixed order (an event trigger's ``expect``, ``after``).
_UNORDERED = {"expect", "after"}


def _stable(value: Any) -> Any:
    """``value`` without the fields a registration makes afresh."""
    if isinstance(value, dict):
        return {
            k: sorted(v) if k in _UNORDERED else _stable(v)
            for k, v in value.items()
            if k not in _VOLATILE
        }
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _deployments(api: httpx.Client) -> dict[str, Any]:
    """Every deployment of the server, by name, as stable fields."""
    found = api.post("/deployments/filter", json={}).json()
    by_name = {}
    for deployment in found:
        limit = deployment.get("global_concurrency_limit") or {}
        limit.pop("name", None)  # "deployment:<id>"
        by_name[deployment["name"]] = _stable(deployment)
    return by_name


def _automations(api: httpx.Client) -> list[Any]:
    return [_stable(a) for a in api.post("/automations/filter", json={}).json()]


def _pools(api: httpx.Client) -> dict[str, Any]:
    pools = api.post("/work_pools/filter", json={}).json()
    return {
        p["name"]: {"type": p["type"], "base_job_template": p["base_job_template"]}
        for p in pools
        if p["name"] in (PROCESS_POOL, SLURM_POOL)
    }


def _empty(api: httpx.Client) -> None:
    """Delete every deployment, automation and pool the registration made."""
    for deployment in api.post("/deployments/filter", json={}).json():
        assert api.delete(f"/deployments/{deployment['id']}").status_code == 204
    for automation in api.post("/automations/filter", json={}).json():
        assert api.delete(f"/automations/{automation['id']}").status_code == 204
    for pool in (PROCESS_POOL, SLURM_POOL):
        assert api.delete(f"/work_pools/{pool}").status_code in (204, 404)
    assert not api.post("/deployments/filter", json={}).json()


def _prefect(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A Prefect CLI command, from the repository root, as its documentation has it."""
    done = subprocess.run(
        [BIN / "prefect", "--no-prompt", *args], cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=300, env={**os.environ, **env}, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"prefect {' '.join(args)}: {done.stdout[-3000:]}{done.stderr}"
    return done


def _deploy_env(server: str, tmp_path: Path) -> dict[str, str]:
    """What both ways of deploying need: the server and the data roots prefect.yaml names."""
    return {
        "PREFECT_API_URL": server,
        "AUCTION_PIPELINE_PROD_DATA_ROOT": str(tmp_path / "prod"),
        "AUCTION_PIPELINE_DEV_DATA_ROOT": str(tmp_path / "dev"),
    }


def test_prefect_deploy_and_auction_pipeline_deploy_register_the_same_deployments(
    long_lived_server: str, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _deploy_env(long_lived_server, tmp_path)
    api = httpx.Client(base_url=long_lived_server, timeout=30)
    _empty(api)  # the module's other test may have run first on this server

    # Prefect's way.
    _prefect("work-pool", "create", PROCESS_POOL, "--type", "process", env=env)
    _prefect("work-pool", "create", SLURM_POOL, "--type", SLURM_WORKER_TYPE, env=env)
    _prefect("deploy", "--all", env=env)
    _prefect("automation", "create", "--from-file", "deployments/automations.yaml", env=env)
    by_prefect = _deployments(api), _automations(api), _pools(api)
    _empty(api)

    # The product's front door, on the emptied server; twice, as an operator repeats it.
    for _ in range(2):
        deployed = cli("deploy", env=env, timeout=300)
        assert deployed.returncode == 0, deployed.stderr[-3000:]
    by_product = _deployments(api), _automations(api), _pools(api)

    assert sorted(by_prefect[0]) == sorted(NAMES)
    for name in NAMES:
        assert by_product[0][name] == by_prefect[0][name], name
    assert by_product[1] == by_prefect[1]
    assert by_product[2] == by_prefect[2]

    # And what they agree on is what prefect.yaml says, with the environment's data roots.
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for spec in load_prefect_file():
        held = by_product[0][spec.name]
        assert [s["schedule"]["cron"] for s in held["schedules"]] == [
            s["cron"] for s in spec.schedules
        ]
        assert [s["schedule"]["timezone"] for s in held["schedules"]] == [
            s["timezone"] for s in spec.schedules
        ]
        assert held["parameters"] == spec.parameters
        assert held["work_pool_name"] == spec.work_pool == PROCESS_POOL
        assert held["job_variables"] == {"env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "60"}}
        assert held["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
        assert held["global_concurrency_limit"]["limit"] == 1
        # Runs execute in this checkout (Prefect's default pull step).
        assert held["pull_steps"] == [
            {"prefect.deployments.steps.set_working_directory": {"directory": str(REPO_ROOT)}}
        ]
    assert by_product[0]["dev"]["parameters"]["data_root"] == str(tmp_path / "dev")
    (automation,) = by_product[1]
    assert automation["name"] == CRASH_DETECTION and automation["trigger"]["within"] == 240
    assert by_product[2][SLURM_POOL]["type"] == SLURM_WORKER_TYPE
    variables = by_product[2][SLURM_POOL]["base_job_template"]["variables"]["properties"]
    assert {"partition", "time", "memory", "prologue"} <= set(variables)


def test_prefect_automation_create_copies_are_merged_by_deploy(
    long_lived_server: str, cli, tmp_path: Path
) -> None:
    """Prefect's command adds a copy each time; `deploy` keeps one, updated in place."""
    env = _deploy_env(long_lived_server, tmp_path)
    api = httpx.Client(base_url=long_lived_server, timeout=30)
    before = len(_automations(api))  # the module's other test may have left its one
    for _ in range(2):
        _prefect("automation", "create", "--from-file", "deployments/automations.yaml", env=env)
    assert len(_automations(api)) == before + 2
    deployed = cli("deploy", "--name", "dev", env=env, timeout=300)
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    assert [a["name"] for a in _automations(api)] == [CRASH_DETECTION]
    registered = [line for line in deployed.stdout.splitlines() if line.startswith("registered")]
    assert len(registered) == 2 and "daily-pipeline/dev (" in registered[0]
