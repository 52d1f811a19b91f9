"""Register the daily deployments (``deployments/deployments.yaml``) with the Prefect server.

``auction-pipeline deploy`` runs this. It is idempotent: the work pool is created when
missing, and each deployment is created or updated in place under the same name. Every
deployment gets a cron schedule in an explicit time zone, its parameters, and a concurrency
limit of one run with ``CANCEL_NEW``: a run that would overlap an active one (a slow day, or
late runs after an outage) is cancelled instead of queued behind it. Runs heartbeat, and the
crash-detection automation (``deployments/crash_detection.py``) marks a run whose heartbeats
stop Crashed.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from deployments.crash_detection import AUTOMATION_NAME, ensure_crash_detection
from infra.envrefs import UnsetVariable, expand_env_refs
from infra.yamlfiles import ConfigFileError, load_config_file

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILE = Path(__file__).resolve().parent / "deployments.yaml"
ENTRYPOINT = "flows/daily.py:daily_pipeline"
FLOW_NAME = "daily-pipeline"


class DeploymentConfigError(ValueError):
    """The deployments file is unreadable or invalid; the message names file and field."""


class FlowJob(BaseModel):
    """The Slurm job a flow run becomes with ``runs_on: slurm`` (partition, account, QOS and
    prologue come from the deployment's profile)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    time: str = "04:00:00"
    memory: str = "4G"
    cpus: int = Field(default=1, ge=1)
    extra_directives: list[str] = Field(default_factory=list)


class DeploymentSpec(BaseModel):
    """One deployment of the daily flow."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str
    branch: str
    source: str = Field(description="a checkout directory, or a git URL (then `branch` is used)")
    cron: str
    timezone: str
    parameters: dict[str, Any]
    tags: list[str] = Field(default_factory=list)
    runs_on: Literal["process", "slurm"] = "process"
    flow_job: FlowJob = Field(default_factory=FlowJob)


class CrashDetection(BaseModel):
    """Heartbeats of the flow process, and how long their absence takes to mean Crashed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    heartbeat_seconds: int = Field(default=60, ge=30)  # Prefect's minimum is 30
    crashed_after_seconds: int = Field(default=240, gt=0)

    @model_validator(mode="after")
    def _window_exceeds_heartbeat(self) -> CrashDetection:
        """A window shorter than the heartbeat would crash every healthy run."""
        if self.crashed_after_seconds <= self.heartbeat_seconds:
            raise ValueError(
                f"crashed_after_seconds ({self.crashed_after_seconds}) must exceed "
                f"heartbeat_seconds ({self.heartbeat_seconds}); allow a few heartbeats"
            )
        return self


class DeploymentsFile(BaseModel):
    """The whole file: the work pool, crash detection and the deployments by name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    work_pool: str
    slurm_work_pool: str = "auction-pipeline-slurm"
    crash_detection: CrashDetection = Field(default_factory=CrashDetection)
    deployments: dict[str, DeploymentSpec]


def load_deployments(path: Path = DEFAULT_FILE) -> DeploymentsFile:
    """Read and validate the deployments file, with ``${VAR}`` expanded.

    Read within the bounds of infra/yamlfiles.py (size cap, duplicate keys and alias bombs
    refused), like site files and the profiles file.
    """
    try:
        raw = load_config_file(path, "deployments file")
        return DeploymentsFile.model_validate(expand_env_refs(raw))
    except ConfigFileError as exc:
        raise DeploymentConfigError(str(exc)) from exc
    except (ValidationError, UnsetVariable) as exc:
        raise DeploymentConfigError(f"{path}: {exc}") from exc


def _is_git_url(source: str) -> bool:
    return source.startswith(("https://", "http://", "git@", "ssh://", "file://"))


def _absolute(value: str) -> str:
    """Relative paths in the file are relative to this checkout."""
    return value if os.path.isabs(value) else str((REPO_ROOT / value).resolve())


@dataclass(frozen=True)
class Registered:
    """A deployment as registered: its full name and id."""

    name: str
    deployment_id: str


def check_profiles(config: DeploymentsFile) -> None:
    """Every deployment's profile must exist: a typo fails here, not at 06:00."""
    from infra.profiles import load_profile

    for name, spec in config.deployments.items():
        profile = spec.parameters.get("profile")
        if not isinstance(profile, str):
            raise DeploymentConfigError(f"deployment {name!r}: parameters.profile is missing")
        try:
            load_profile(profile)
        except ValueError as exc:
            raise DeploymentConfigError(f"deployment {name!r}: {exc}") from exc


def ensure_work_pool(name: str, pool_type: str = "process") -> None:
    """Create the work pool (``process`` or ``slurm``) if it does not exist; a slurm pool
    gets the Slurm worker's job template (its variables appear in the UI's pool form)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    template: dict[str, Any] = {}
    if pool_type == "slurm":
        from infra.slurm_worker import SlurmWorker

        template = SlurmWorker.get_default_base_job_template()
    # Already there: keep it as it is.
    with get_client(sync_client=True) as client, contextlib.suppress(ObjectAlreadyExists):
        client.create_work_pool(
            WorkPoolCreate(name=name, type=pool_type, base_job_template=template)
        )


def job_variables(
    spec: DeploymentSpec, parameters: dict[str, Any], heartbeat: str
) -> dict[str, Any]:
    """The deployment's job variables: heartbeat for every run; for ``runs_on: slurm`` the
    flow-run job's resources, with partition, account, QOS and prologue from its profile."""
    from infra.profiles import SlurmProfile, load_profile
    from infra.runner import render_prologue
    from tasks.storage import DataRoot, default_data_root

    variables: dict[str, Any] = {"env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": heartbeat}}
    if spec.runs_on != "slurm":
        return variables
    profile = load_profile(str(parameters["profile"]))
    if not isinstance(profile, SlurmProfile):
        raise DeploymentConfigError(
            f"runs_on: slurm needs a Slurm profile, and {profile.name!r} is not one"
        )
    root = parameters.get("data_root")
    logs = DataRoot(Path(root) if root else default_data_root()).slurm_logs
    variables.update(
        partition=profile.partition,
        account=profile.account,
        qos=profile.qos,
        time=spec.flow_job.time,
        memory=spec.flow_job.memory,
        cpus=spec.flow_job.cpus,
        extra_directives=list(spec.flow_job.extra_directives),
        # The API URL comes from the job's environment, not from the script.
        prologue=render_prologue([p for p in profile.prologue if "prefect_api_url" not in p], ""),
        log_directory=str(logs),
        working_directory=str(REPO_ROOT),
    )
    return variables


def register(path: Path = DEFAULT_FILE) -> list[Registered]:
    """Create or update the work pool and every deployment in ``path``."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.flows import Flow
    from prefect.runner.storage import GitRepository
    from prefect.schedules import Cron

    config = load_deployments(path)
    check_profiles(config)
    pools = {"process": config.work_pool, "slurm": config.slurm_work_pool}
    for pool_type in sorted({spec.runs_on for spec in config.deployments.values()}):
        ensure_work_pool(pools[pool_type], pool_type)
    heartbeat = str(config.crash_detection.heartbeat_seconds)
    registered = []
    for name, spec in config.deployments.items():
        source: Any = (
            GitRepository(url=spec.source, branch=spec.branch)
            if _is_git_url(spec.source)
            else _absolute(spec.source)
        )
        parameters = dict(spec.parameters)
        if isinstance(parameters.get("data_root"), str):
            parameters["data_root"] = _absolute(parameters["data_root"])
        flow: Any = Flow.from_source(source=source, entrypoint=ENTRYPOINT)
        deployment_id = flow.deploy(
            name=name,
            work_pool_name=pools[spec.runs_on],
            build=False,
            push=False,
            schedules=[Cron(spec.cron, timezone=spec.timezone)],
            parameters=parameters,
            job_variables=job_variables(spec, parameters, heartbeat),
            concurrency_limit=ConcurrencyLimitConfig(
                limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
            ),
            description=spec.description,
            tags=[*spec.tags, f"branch:{spec.branch}"],
            print_next_steps=False,
        )
        registered.append(Registered(f"{FLOW_NAME}/{name}", str(deployment_id)))
    automation_id = ensure_crash_detection(FLOW_NAME, config.crash_detection.crashed_after_seconds)
    registered.append(Registered(f"automation {AUTOMATION_NAME!r}", str(automation_id)))
    return registered
