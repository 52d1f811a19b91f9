"""Where a task ran: the Slurm job, partition and node, or this host when outside Slurm.

Each task returns this with its result, so a run's summary can say which Slurm jobs did the
work without asking Slurm afterwards.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class RunPlace:
    """The Slurm job id, partition and node a task ran on (job fields None outside Slurm)."""

    slurm_job_id: str | None
    partition: str | None
    node: str
    pid: int


def where_am_i() -> RunPlace:
    """Describe the current process's place from the environment Slurm gives a job."""
    return RunPlace(
        slurm_job_id=os.environ.get("SLURM_JOB_ID"),
        partition=os.environ.get("SLURM_JOB_PARTITION"),
        node=os.environ.get("SLURMD_NODENAME") or socket.gethostname(),
        pid=os.getpid(),
    )


def slurm_jobs(places: Iterable[RunPlace]) -> list[dict[str, str | None]]:
    """The distinct Slurm jobs among ``places`` (job id, partition, node), by job id."""
    jobs = {(p.slurm_job_id, p.partition, p.node) for p in places if p.slurm_job_id}
    return [
        {"job_id": job_id, "partition": partition, "node": node}
        for job_id, partition, node in sorted(jobs, key=lambda job: int(job[0] or 0))
    ]
