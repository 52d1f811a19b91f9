"""Register the deployments of ``prefect.yaml`` and the automations they need.

``auction-pipeline deploy`` runs this. It is the checked front door to ``prefect deploy``:

1. the file is read and checked (``deployments/config.py``): profiles, time zones,
   environment references, absolute data roots, heartbeat; and the automations file with it
   (``deployments/automations.py``) — bad input is refused before the server is asked;
2. the product's two work pools are created when missing (``deployments/pools.py``);
3. Prefect's own ``prefect deploy`` registers the chosen deployments from the same file, so
   both ways register exactly the same deployments (``tests/test_prefect_yaml.py`` compares
   them on a server);
4. the automations are created, or updated in place by name.

Idempotent: every object is updated in place under its name.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path

from deployments.automations import (
    AUTOMATIONS_FILE,
    check_windows,
    ensure_automations,
    load_automations,
)
from deployments.config import (
    PREFECT_FILE,
    REPO_ROOT,
    Deployment,
    DeploymentConfigError,
    load_prefect_file,
)
from deployments.pools import POOL_TYPES, ensure_work_pool
from infra.commands import CommandError, run_command

DEPLOY_TIMEOUT_SECONDS = 600  # `prefect deploy` imports the flow once per deployment


class PrefectDeployError(RuntimeError):
    """``prefect deploy`` refused the file; the message carries its own words."""


@dataclass(frozen=True)
class Registered:
    """An object as registered: what it is and its id."""

    name: str
    object_id: str


@dataclass(frozen=True)
class Plan:
    """What a registration will do, checked: the deployments and the automations."""

    prefect_file: Path
    deployments: list[Deployment]
    automations_file: Path
    automations: list[object]


def plan(
    prefect_file: Path = PREFECT_FILE,
    automations_file: Path = AUTOMATIONS_FILE,
    names: list[str] | None = None,
) -> Plan:
    """Read and check both files; raises :class:`DeploymentConfigError` naming the field."""
    deployments = load_prefect_file(prefect_file, names)
    automations = load_automations(automations_file)
    check_windows(automations, deployments, automations_file)
    return Plan(prefect_file, deployments, automations_file, automations)


def prefect_deploy_argv(prefect_file: Path, names: list[str] | None) -> list[str]:
    """The ``prefect deploy`` command that registers ``names`` (all without)."""
    prefect = Path(sys.executable).with_name("prefect")
    argv = [str(prefect), "--no-prompt", "deploy", "--prefect-file", str(prefect_file.resolve())]
    if not names:
        return [*argv, "--all"]
    for name in names:
        argv += ["--name", name]
    return argv


@functools.cache  # one import of the flow file for all its deployments
def _flow_name(entrypoint: str) -> str:
    """The name of the flow an entrypoint (``path.py:function``) defines."""
    from prefect.flows import load_flow_from_entrypoint

    path, function = entrypoint.rsplit(":", 1)
    return str(load_flow_from_entrypoint(f"{REPO_ROOT / path}:{function}").name)


def register(checked: Plan, names: list[str] | None = None) -> list[Registered]:
    """Create the pools, run ``prefect deploy`` from the repository, apply the automations."""
    from prefect.client.orchestration import get_client

    for pool in sorted({*POOL_TYPES, *(d.work_pool for d in checked.deployments)}):
        ensure_work_pool(pool)
    argv = prefect_deploy_argv(checked.prefect_file, names)
    # From the repository: entrypoints are relative to it, and Prefect's default pull step
    # makes it the runs' working directory.
    try:
        done = run_command(argv, cwd=REPO_ROOT, timeout=DEPLOY_TIMEOUT_SECONDS, check=False)
    except CommandError as exc:  # missing, or past its timeout
        raise PrefectDeployError(str(exc)) from exc
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip()).splitlines()[-12:]
        raise PrefectDeployError(
            f"`prefect deploy` refused {checked.prefect_file} (exit {done.returncode}): "
            + " | ".join(line.strip() for line in said if line.strip())
        )
    registered = []
    with get_client(sync_client=True) as client:
        for deployment in checked.deployments:
            full = f"{_flow_name(deployment.entrypoint)}/{deployment.name}"
            registered.append(Registered(full, str(client.read_deployment_by_name(full).id)))
    for name, automation_id in ensure_automations(checked.automations):
        registered.append(Registered(f"automation {name!r}", str(automation_id)))
    return registered


__all__ = [
    "AUTOMATIONS_FILE",
    "PREFECT_FILE",
    "DeploymentConfigError",
    "PrefectDeployError",
    "Registered",
    "plan",
    "register",
]
