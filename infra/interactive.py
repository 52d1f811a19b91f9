"""A Dask client on a profile's cluster, for notebooks and scripts doing ad hoc work.

``with cluster_client("dev", jobs=2) as client:`` starts worker jobs exactly as the flow's
task runner would (same profile, same job script, same guardrails), waits for the first
worker (failing with the partition and Slurm's pending reason if none comes), and on exit
retires the workers, closes the cluster and makes sure none of its jobs is left in the queue
(cancelling stragglers itself). Plain Dask, no Prefect: for exploring data, not for runs
that should appear in the UI.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from distributed import Client, LocalCluster

from infra import localslurm
from infra.prefect_api import configured_api_url
from infra.profiles import LocalProfile, SlurmProfile, load_profile
from infra.runner import (
    WorkersUnavailable,
    explain_missing_workers,
    local_cluster_kwargs,
    retire_all_workers,
    slurm_cluster_kwargs,
    worker_jobs,
)
from infra.slurm import SlurmCommandError, run_slurm, wait_until_gone
from infra.tls import run_security
from tasks.storage import DataRoot, default_data_root

QUEUE_DRAIN_SECONDS = 60.0


@contextlib.contextmanager
def cluster_client(
    profile_name: str = "dev",
    *,
    jobs: int = 1,
    data_root: Path | None = None,
    log: Callable[[str], None] = print,
) -> Iterator[Client]:
    """A connected Dask client on ``jobs`` worker jobs of the profile, cleaned up on exit.

    Worker job logs go to ``<data_root>/logs/slurm/``. The local profile gives a
    ``LocalCluster`` instead, so the same notebook runs on a laptop.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    profile = load_profile(profile_name)
    if isinstance(profile, LocalProfile):
        local: Any = LocalCluster(**local_cluster_kwargs(profile))  # type: ignore[no-untyped-call]
        with local, _connect(local) as local_client:
            yield local_client
        return
    assert isinstance(profile, SlurmProfile)
    localslurm.use_running_cluster(log=log)
    root = DataRoot(data_root or default_data_root())
    root.slurm_logs.mkdir(parents=True, exist_ok=True)
    # The cluster's TLS certificate files, removed when the notebook's cluster closes.
    with (
        tempfile.TemporaryDirectory(prefix="notebook-", dir=root.dask_tls()) as tls,
        _slurm_client(profile, jobs, root, Path(tls), log) as client,
    ):
        yield client


@contextlib.contextmanager
def _slurm_client(
    profile: SlurmProfile,
    jobs: int,
    root: DataRoot,
    tls_directory: Path,
    log: Callable[[str], None],
) -> Iterator[Client]:
    from dask_jobqueue.slurm import SLURMCluster

    log_directory = root.slurm_logs
    cluster: Any = SLURMCluster(
        **slurm_cluster_kwargs(
            profile,
            log_directory=log_directory,
            prefect_api_url=configured_api_url() or "",
            security=run_security(tls_directory),
        )
    )
    client: Client | None = None
    job_ids: set[str] = set()
    try:
        cluster.scale(jobs=jobs)
        client = _connect(cluster)
        job_ids |= _job_ids(cluster)
        log(
            f"waiting for {jobs} Dask worker job(s) on partition {profile.partition!r} "
            f"(jobs {', '.join(sorted(job_ids)) or 'being submitted'})"
        )
        try:
            client.wait_for_workers(1, timeout=profile.worker_start_timeout)
        except TimeoutError:
            raise WorkersUnavailable(
                explain_missing_workers(
                    profile, sorted(_job_ids(cluster)), cluster.scheduler_address, log_directory
                )
            ) from None
        yield client
    finally:
        job_ids |= _job_ids(cluster)
        if client is not None:
            with contextlib.suppress(Exception):  # closing goes on regardless
                retire_all_workers(client, sorted(_job_ids(cluster)))
            client.close()  # type: ignore[no-untyped-call]
        cluster.close()
        _drain_queue(sorted(job_ids), log)


def _connect(cluster: Any) -> Client:
    return Client(cluster)  # type: ignore[no-untyped-call]


def _job_ids(cluster: Any) -> set[str]:
    return set(worker_jobs(cluster).values())


def _drain_queue(job_ids: list[str], log: Callable[[str], None]) -> None:
    """Wait until the jobs left squeue; cancel any still there after the wait."""
    if not job_ids:
        return
    try:
        left = wait_until_gone(job_ids, QUEUE_DRAIN_SECONDS)
    except SlurmCommandError as exc:
        log(f"could not check that worker jobs {', '.join(job_ids)} ended: {exc}")
        return
    if not left:
        log(f"worker jobs {', '.join(job_ids)} ended; none left in the queue")
        return
    log(f"cancelling worker jobs still queued after close: {', '.join(left)}")
    run_slurm(["scancel", *left], check=False)
