"""The sbatch script that runs one Prefect flow run as its own Slurm job (pure).

With the Slurm worker type (``infra/slurm_worker.py``) the flow process, and with it the
Dask scheduler of the run, lives on a compute node for the length of the run instead of on
the login node. The script carries only resources, the profile's prologue and the engine
command; the flow run id and every other variable (the Prefect API URL and its auth string,
database URLs) reach the job through the environment sbatch exports, never through the
script, which is kept on the shared filesystem for the user to read.

The script is rendered from a template, :data:`DEFAULT_SCRIPT_TEMPLATE`, which the work pool's
base job template holds as ``job_script`` (as prefect-kubernetes holds its job manifest): an
administrator edits it in the UI (*Work Pools*, the pool, *Edit*, the base job template) to
add a ``module load`` line or wrap the engine in ``apptainer exec``, without a release. The
worker fills only these placeholders, so the shell's own braces (``${HOME}``) stay as written:

- ``{directives}``: the ``#SBATCH`` lines from the job variables (required: the job's name
  and log files are how the worker follows it);
- ``{prologue}``: the prologue lines;
- ``{command}``: the engine command (required);
- ``{flow_run_id}``: the flow run's id.
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


DEFAULT_SCRIPT_TEMPLATE = """#!/usr/bin/env bash
{directives}
# Prefect flow run {flow_run_id} (its id and settings come from the environment)
{prologue}
# exec: the engine is the job's main process, so the SIGTERM Slurm sends at walltime
# (KillWait seconds before SIGKILL) reaches it and the run closes its Dask workers.
exec {command}
"""
PLACEHOLDERS = ("directives", "prologue", "command", "flow_run_id")
REQUIRED_PLACEHOLDERS = ("directives", "command")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


def check_template(template: str) -> None:
    """Refuse a script template the worker could not follow a job of, naming what is missing."""
    if not template.startswith("#!"):
        raise FlowJobError(
            "the work pool's job_script must start with a '#!' line (sbatch runs it as a script)"
        )
    missing = [name for name in REQUIRED_PLACEHOLDERS if "{" + name + "}" not in template]
    if missing:
        raise FlowJobError(
            f"the work pool's job_script lacks {', '.join('{' + m + '}' for m in missing)}: "
            "without the directives the worker cannot find the job again, without the command "
            "the job would not run the flow"
        )


def render_flow_job_script(
    spec: FlowJobSpec,
    flow_run_id: str,
    command: list[str],
    template: str = DEFAULT_SCRIPT_TEMPLATE,
) -> str:
    """The job script for ``flow_run_id`` running ``command`` (the Prefect engine), from
    ``template`` (the work pool's ``job_script``)."""
    validate(spec)
    check_template(template)
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
    values = {
        "directives": "\n".join(f"#SBATCH {d}" for d in directives),
        "prologue": "\n".join(spec.prologue),
        "command": " ".join(shlex.quote(part) for part in command),
        "flow_run_id": flow_run_id,
    }
    # One pass: a value holding a placeholder's text (a prologue line) is not filled again.
    script = _PLACEHOLDER.sub(lambda match: values[match[1]], template)
    return script if script.endswith("\n") else script + "\n"
