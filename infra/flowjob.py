"""The sbatch script that runs one Prefect flow run as its own Slurm job (pure).

With the Slurm worker type (``infra/slurm_worker.py``) the flow process, and with it the
Dask scheduler of the run, lives on a compute node for the length of the run instead of on
the login node. The script carries only resources, the profile's prologue and the engine
command; the flow run id and every other variable (the Prefect API URL and its auth string,
database URLs) reach the job through the environment sbatch exports, never through the
script, which is kept on the shared filesystem for the user to read.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

# The Prefect worker type of infra/slurm_worker.py: the product's own name, since other
# Prefect Slurm packages on PyPI register "slurm".
WORKER_TYPE = "auction-pipeline-slurm"
JOB_NAME_PREFIX = "prefect-flow-"  # + the flow run id: how a restarted worker finds its jobs
_TIME = re.compile(r"^(\d+-)?\d{1,2}(:\d\d){0,2}$")


class FlowJobError(ValueError):
    """A job variable that Slurm would refuse; the message names it."""


@dataclass(frozen=True)
class FlowJobSpec:
    """Resources and setup of a flow-run job (the work pool's job variables)."""

    partition: str
    time: str  # walltime, Slurm's [D-]HH:MM:SS
    memory: str  # Slurm's --mem, e.g. 4G
    cpus: int = 1
    account: str | None = None
    qos: str | None = None
    extra_directives: tuple[str, ...] = ()
    prologue: tuple[str, ...] = ()
    log_directory: Path = Path(".")
    working_directory: Path | None = None
    job_name: str = field(default="")


def job_name(flow_run_id: str) -> str:
    """The Slurm job name of a flow run's job."""
    return f"{JOB_NAME_PREFIX}{flow_run_id}"


def validate(spec: FlowJobSpec) -> None:
    """Refuse values that would make a broken script, naming the variable."""
    if not spec.partition or any(c.isspace() for c in spec.partition):
        raise FlowJobError(f"job variable 'partition' must be one word, got {spec.partition!r}")
    if not _TIME.match(spec.time):
        raise FlowJobError(f"job variable 'time' must be Slurm's [D-]HH:MM:SS, got {spec.time!r}")
    if not re.fullmatch(r"\d+[KMGT]?", spec.memory):
        raise FlowJobError(f"job variable 'memory' must look like 4G or 4096M, got {spec.memory!r}")
    if spec.cpus < 1:
        raise FlowJobError(f"job variable 'cpus' must be at least 1, got {spec.cpus}")
    for directive in spec.extra_directives:
        if not directive.startswith("--") or "\n" in directive:
            raise FlowJobError(
                f"job variable 'extra_directives': each must be one sbatch flag like "
                f"--constraint=x, got {directive!r}"
            )


def render_flow_job_script(spec: FlowJobSpec, flow_run_id: str, command: list[str]) -> str:
    """The job script for ``flow_run_id`` running ``command`` (the Prefect engine)."""
    validate(spec)
    name = spec.job_name or job_name(flow_run_id)
    logs = spec.log_directory
    directives = [
        f"--job-name={name}",
        f"--partition={spec.partition}",
        f"--time={spec.time}",
        f"--mem={spec.memory}",
        "--nodes=1",
        "--ntasks=1",
        f"--cpus-per-task={spec.cpus}",
        f"--output={logs}/{name}-%j.out",
        f"--error={logs}/{name}-%j.err",
        # Requeued, the run would start again under the same job id; the worker reports the
        # node failure instead and the next run (or a retry) starts afresh.
        "--no-requeue",
    ]
    if spec.account:
        directives.append(f"--account={spec.account}")
    if spec.qos:
        directives.append(f"--qos={spec.qos}")
    if spec.working_directory:
        directives.append(f"--chdir={spec.working_directory}")
    directives.extend(spec.extra_directives)
    lines = ["#!/usr/bin/env bash", *(f"#SBATCH {d}" for d in directives)]
    lines.append(
        f"# Prefect flow run {flow_run_id} (its id and settings come from the environment)"
    )
    lines.extend(spec.prologue)
    # exec: the engine is the job's main process, so the SIGTERM Slurm sends at walltime
    # (KillWait seconds before SIGKILL) reaches it and the run closes its Dask workers.
    lines.append("exec " + " ".join(shlex.quote(part) for part in command))
    return "\n".join(lines) + "\n"
