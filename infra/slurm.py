"""Slurm helpers: the one function that runs Slurm commands, and pure parsers of their output.

Every Slurm command this product runs itself (sinfo, squeue, scontrol, scancel, and the
local cluster's daemons) goes through :func:`run_slurm`, which takes an argument list (no
shell), applies a timeout and raises an error carrying the command, exit code, stdout and
stderr. (dask-jobqueue submits and cancels the Dask worker jobs through its own ``_call``.)
Parsing is kept in pure functions so it can be tested against saved real output.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from infra.commands import CommandError, run_command


class SlurmCommandError(CommandError):
    """A Slurm command failed or could not be run."""


def run_slurm(
    argv: Sequence[str],
    *,
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run one Slurm (or Slurm-daemon) command and return its completed process.

    Raises :class:`SlurmCommandError` when the program is missing, times out, or (with
    ``check``) exits non-zero. ``SLURM_CONF`` from the environment is honoured, which is how
    the local cluster started by ``auction-pipeline cluster up`` is addressed.
    """
    return run_command(
        argv,
        timeout=timeout,
        env=env,
        check=check,
        error=SlurmCommandError,
        missing_hint="run this on a Slurm login node, or start the local test cluster with "
        "`auction-pipeline cluster up`",
    )


def sbatch_refusal(script: Path, env: dict[str, str] | None = None) -> str | None:
    """Why ``sbatch`` would refuse this job script, or ``None`` if it would take it.

    Asks ``sbatch --test-only`` (nothing is submitted): it catches an unknown partition,
    account or QOS, more resources than any node has, and an unreachable controller. A job
    Slurm accepts but cannot start yet (a DOWN partition, a walltime over the partition's
    limit) passes; the wait for workers names that one from squeue.
    """
    proc = run_slurm(["sbatch", "--test-only", str(script)], env=env, check=False)
    if proc.returncode == 0:
        return None
    lines = [line.strip() for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
    return "; ".join(lines) or f"sbatch --test-only exited {proc.returncode}"


@dataclass(frozen=True)
class QueuedJob:
    """One line of ``squeue``: what Slurm says about a job that is still in the queue."""

    job_id: str
    partition: str
    state: str
    reason: str
    nodes: str


SQUEUE_FORMAT = "%i|%P|%T|%r|%N"


def split_rows(text: str, fields: int, command: str) -> list[list[str]]:
    """Split ``|``-separated Slurm output into rows of ``fields`` stripped values.

    Blank lines are skipped; any other line with the wrong field count raises, naming the
    command, because it means the output format is not the one we asked for.
    """
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = [part.strip() for part in line.split("|")]
        if len(parts) != fields:
            raise ValueError(
                f"unexpected {command} line (want {fields} '|'-separated fields): {line!r}"
            )
        rows.append(parts)
    return rows


def parse_squeue(text: str) -> list[QueuedJob]:
    """Parse ``squeue --noheader -o '%i|%P|%T|%r|%N'`` output (blank lines ignored)."""
    return [QueuedJob(*row) for row in split_rows(text, 5, "squeue")]


def queued_jobs(job_ids: Sequence[str]) -> list[QueuedJob]:
    """The queue entries of the given jobs (jobs that already left the queue are absent)."""
    if not job_ids:
        return []
    proc = run_slurm(
        ["squeue", "--noheader", "-o", SQUEUE_FORMAT, "-j", ",".join(job_ids)], check=False
    )
    # squeue exits 1 with "Invalid job id specified" when every listed job has left.
    if proc.returncode != 0 and "Invalid job id" not in proc.stderr:
        raise SlurmCommandError(proc.args, proc.returncode, proc.stdout, proc.stderr)
    return parse_squeue(proc.stdout)


def wait_until_gone(job_ids: Sequence[str], timeout: float) -> list[str]:
    """Wait up to ``timeout`` s for the jobs to leave squeue; the ids still there."""
    deadline = time.monotonic() + timeout
    left = list(job_ids)
    while left:
        left = [job.job_id for job in queued_jobs(left)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return left


@dataclass(frozen=True)
class JobRecord:
    """What ``scontrol show job`` says of a job: state, node list and Slurm's timestamps
    (second resolution, the controller's local time; ``None`` where Slurm says Unknown)."""

    job_id: str
    name: str
    state: str
    nodes: str
    submit: dt.datetime | None
    start: dt.datetime | None
    end: dt.datetime | None
    exit_code: str = ""  # "<code>:<signal>", e.g. "3:0", or "0:9" for killed by SIGKILL
    reason: str = ""  # Slurm's Reason= (e.g. NonZeroExitCode, JobLaunchFailure)
    stderr: str = ""  # the job's StdErr= path


def _slurm_time(value: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:  # Unknown, None, N/A
        return None


def parse_scontrol_jobs(text: str) -> list[JobRecord]:
    """Parse ``scontrol show job -o`` output: one job per line of ``Key=Value`` pairs.

    Only single-word values are read (the ones used here never hold spaces); a line
    without a JobId raises, naming the line.
    """
    records = []
    for line in text.splitlines():
        if not line.strip() or line.strip() == "No jobs in the system":
            continue
        fields = dict(token.split("=", 1) for token in line.split() if "=" in token)
        if "JobId" not in fields:
            raise ValueError(f"unexpected scontrol show job line (no JobId=): {line!r}")
        records.append(
            JobRecord(
                job_id=fields["JobId"],
                name=fields.get("JobName", ""),
                state=fields.get("JobState", ""),
                nodes=fields.get("NodeList", ""),
                submit=_slurm_time(fields.get("SubmitTime", "")),
                start=_slurm_time(fields.get("StartTime", "")),
                end=_slurm_time(fields.get("EndTime", "")),
                exit_code=fields.get("ExitCode", ""),
                reason=fields.get("Reason", ""),
                stderr=fields.get("StdErr", ""),
            )
        )
    return records


SACCT_FIELDS = "JobID,JobName,State,ExitCode,NodeList,Submit,Start,End"


def parse_sacct(text: str) -> list[JobRecord]:
    """Parse ``sacct -X -n -P -o SACCT_FIELDS`` output (one allocation per line).

    sacct writes "CANCELLED by <uid>" where scontrol writes CANCELLED; the uid is kept in
    ``reason`` as ``by <uid>``.
    """
    records = []
    for row in split_rows(text, 8, "sacct"):
        job_id, name, state, exit_code, nodes, submit, start, end = row
        state, _, by = state.partition(" by ")
        records.append(
            JobRecord(
                job_id=job_id,
                name=name,
                state=state,
                nodes=nodes,
                submit=_slurm_time(submit),
                start=_slurm_time(start),
                end=_slurm_time(end),
                exit_code=exit_code,
                reason=f"by {by}" if by else "",
            )
        )
    return records


def accounted_jobs(job_ids: Sequence[str]) -> list[JobRecord] | None:
    """What Slurm's accounting (slurmdbd) keeps of the jobs, or None when the cluster has
    no accounting (sacct then says "accounting storage is disabled")."""
    if not job_ids:
        return []
    proc = run_slurm(
        ["sacct", "-X", "-n", "-P", "-o", SACCT_FIELDS, "-j", ",".join(job_ids)], check=False
    )
    if proc.returncode != 0:
        if "disabled" in proc.stderr or "not running" in proc.stderr.lower():
            return None
        raise SlurmCommandError(proc.args, proc.returncode, proc.stdout, proc.stderr)
    return parse_sacct(proc.stdout)


def job_records(job_ids: Sequence[str]) -> list[JobRecord]:
    """``scontrol show job`` records of the given jobs; jobs the controller has forgotten
    (finished longer ago than its MinJobAge) are absent."""
    records = []
    for job_id in job_ids:
        proc = run_slurm(["scontrol", "show", "job", "-o", job_id], check=False)
        if proc.returncode != 0 and "Invalid job id" not in proc.stderr:
            raise SlurmCommandError(proc.args, proc.returncode, proc.stdout, proc.stderr)
        records += parse_scontrol_jobs(proc.stdout)
    return records


@dataclass(frozen=True)
class NodeState:
    """One line of ``sinfo -N``: a node in a partition, its state and size."""

    node: str
    partition: str
    state: str
    cpus: int
    memory_mb: int


SINFO_FORMAT = "%N|%P|%T|%c|%m"


def parse_sinfo_nodes(text: str) -> list[NodeState]:
    """Parse ``sinfo -N --noheader -o '%N|%P|%T|%c|%m'`` output; the default partition's ``*``
    is stripped."""
    return [
        NodeState(node, partition.rstrip("*"), state, int(cpus), int(memory))
        for node, partition, state, cpus, memory in split_rows(text, 5, "sinfo")
    ]


def node_states(partition: str | None = None, env: dict[str, str] | None = None) -> list[NodeState]:
    """Per-node state as sinfo reports it, optionally for one partition."""
    argv = ["sinfo", "-N", "--noheader", "-o", SINFO_FORMAT]
    if partition:
        argv += ["-p", partition]
    return parse_sinfo_nodes(run_slurm(argv, env=env).stdout)
