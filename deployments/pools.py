"""The product's work pools: their names, their Prefect types, and creating them when missing.

``prefect.yaml`` names a pool per deployment. Two belong to the product: ``auction-pipeline``
(type ``process``: `auction-pipeline worker` runs each flow run as a process on its host) and
``auction-pipeline-slurm`` (type ``auction-pipeline-slurm``, the worker of
``infra/slurm_worker.py``: each flow run its own Slurm job). ``auction-pipeline deploy``
creates both when missing, each with its worker type's base job template (as ``prefect
work-pool create`` does). A pool of any other name that a deployment names must exist
already, as ``prefect deploy`` requires.
"""

from __future__ import annotations

from typing import Any

from infra.flowjob import WORKER_TYPE as SLURM_WORKER_TYPE

PROCESS_POOL = "auction-pipeline"
SLURM_POOL = "auction-pipeline-slurm"
__all__ = ["PROCESS_POOL", "SLURM_POOL", "SLURM_WORKER_TYPE", "UnknownWorkPool", "ensure_work_pool"]
POOL_TYPES = {PROCESS_POOL: "process", SLURM_POOL: SLURM_WORKER_TYPE}


class UnknownWorkPool(ValueError):
    """A deployment names a pool the server does not have and the product cannot create."""


def default_job_template(pool_type: str) -> dict[str, Any]:
    """The base job template of the worker type, as ``prefect work-pool create`` gives it."""
    if pool_type == SLURM_WORKER_TYPE:
        from infra.slurm_worker import SlurmWorker

        return SlurmWorker.get_default_base_job_template()
    from prefect.workers.process import ProcessWorker

    return ProcessWorker.get_default_base_job_template()


def ensure_work_pool(name: str) -> None:
    """Create the product's pool ``name`` if it does not exist; another pool must exist."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    pool_type = POOL_TYPES.get(name)
    with get_client(sync_client=True) as client:
        if pool_type is None:
            try:
                client.read_work_pool(name)
            except ObjectNotFound:
                raise UnknownWorkPool(
                    f"work pool {name!r} does not exist: create it (prefect work-pool create "
                    f"{name} --type process) or use {PROCESS_POOL!r} or {SLURM_POOL!r}"
                ) from None
            return
        template = default_job_template(pool_type)
        try:
            client.create_work_pool(
                WorkPoolCreate(name=name, type=pool_type, base_job_template=template)
            )
        except ObjectAlreadyExists:  # already there: keep it as it is, if of the right type
            existing = client.read_work_pool(name).type
            if existing != pool_type:
                raise UnknownWorkPool(
                    f"work pool {name!r} is of type {existing!r}, not {pool_type!r} (made by an "
                    f"older release?): delete it (prefect work-pool delete {name}) and deploy "
                    "again"
                ) from None
