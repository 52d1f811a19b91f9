"""A Prefect worker type for Slurm: each flow run is its own sbatch job.

``prefect worker start --type auction-pipeline-slurm --pool <pool>`` (or ``auction-pipeline
worker --type slurm``) serves a work pool of type ``auction-pipeline-slurm``. The type is the
product's own: other Prefect Slurm packages on PyPI register a worker type ``slurm``, and
with two installed ``--type slurm`` would be ambiguous. For each flow run it renders the job
script (``infra/flowjob.py``) from the job variables (time, memory, cpus, extra directives;
partition, account, qos and prologue default to those of the run's ``profile`` parameter,
and the logs to its data root), writes it next to the job logs and submits it, so the flow
process and its Dask scheduler run on a compute node. The flow run's settings
(its id, the Prefect API URL and auth string) go to the job through sbatch's exported
environment, not the script.

One poller per worker watches all its jobs with one ``squeue`` call per interval, backing
off when Slurm does not answer. When a job ends, :func:`infra.jobend.job_end` says how; a
job that ended abnormally (TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, PREEMPTED, CANCELLED, FAILED)
under a flow run that is not final leaves the run Crashed with that sentence, the node and
the tail of the job's stderr: no run stays Running after its job is gone. A run cancelled
in the UI or CLI has its job scancelled, pending or running: Slurm's SIGTERM lets the engine
end the run and its task runner cancel the Dask worker jobs before ``KillWait`` is up.

A restarted worker re-adopts the live jobs of its pool's runs instead of submitting them
again; a run whose job already exists under its name (``prefect-flow-<run id>``) is adopted.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

import anyio
import anyio.abc
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    WorkPoolFilter,
    WorkPoolFilterName,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.exceptions import InfrastructureNotFound
from prefect.states import Crashed
from prefect.workers.base import BaseJobConfiguration, BaseVariables, BaseWorker, BaseWorkerResult
from pydantic import Field

from infra.atomic import write_atomic
from infra.commands import run_command
from infra.flowjob import (
    DEFAULT_SCRIPT_TEMPLATE,
    WORKER_TYPE,
    FlowJobError,
    FlowJobSpec,
    job_name,
    render_flow_job_script,
)
from infra.jobend import JobEnd, describe, job_end
from infra.profiles import SlurmProfile, load_profile
from infra.runner import render_prologue
from infra.slurm import SlurmCommandError, queued_jobs, run_slurm, sbatch_refusal
from tasks.storage import DataRoot, default_data_root

POLL_SECONDS = float(os.environ.get("AUCTION_PIPELINE_SLURM_POLL_SECONDS", "10"))
MAX_BACKOFF_SECONDS = 120.0
LIVE_STATES = [StateType.PENDING, StateType.RUNNING, StateType.CANCELLING]


class SlurmJobConfiguration(BaseJobConfiguration):
    """A flow run's job as the worker submits it (filled from the pool's job variables)."""

    partition: str | None = Field(default=None)
    time: str = Field(default="02:00:00")
    memory: str = Field(default="4G")
    cpus: int = Field(default=1)
    account: str | None = Field(default=None)
    qos: str | None = Field(default=None)
    extra_directives: list[str] = Field(default_factory=list)
    prologue: list[str] | None = Field(default=None)
    log_directory: str | None = Field(default=None)
    working_directory: str | None = Field(default=None)
    # The whole script, as a template the pool's base job template carries (editable in
    # the UI); not a job variable, so deployments cannot change it, as with Kubernetes'
    # job_manifest. Placeholders: infra/flowjob.py.
    job_script: str = Field(
        default=DEFAULT_SCRIPT_TEMPLATE,
        json_schema_extra={"template": DEFAULT_SCRIPT_TEMPLATE},
    )

    def spec(self, parameters: dict[str, Any]) -> FlowJobSpec:
        """The job's resources for :func:`render_flow_job_script`: the job variables, and
        for those not set, the run's profile (partition, account, QOS, prologue) and data
        root (logs)."""
        profile = _slurm_profile(parameters.get("profile"))
        partition = self.partition or (profile.partition if profile else None)
        if partition is None:
            raise FlowJobError(
                f"the flow run's job has no partition: its profile {parameters.get('profile')!r} "
                "is not a Slurm profile; set the job variable 'partition' or run a Slurm profile"
            )
        prologue = self.prologue
        if prologue is None:  # the API URL comes from the job's environment, not the script
            lines = profile.prologue if profile else []
            prologue = render_prologue([p for p in lines if "prefect_api_url" not in p], "")
        root = parameters.get("data_root")
        if self.log_directory:
            logs = Path(self.log_directory)
        elif isinstance(root, str) and root:
            logs = DataRoot(Path(root)).slurm_logs
        else:
            logs = default_flow_job_logs()
        return FlowJobSpec(
            partition=partition,
            time=self.time,
            memory=self.memory,
            cpus=self.cpus,
            account=self.account or (profile.account if profile else None),
            qos=self.qos or (profile.qos if profile else None),
            extra_directives=tuple(self.extra_directives),
            prologue=tuple(prologue),
            log_directory=logs,
            working_directory=Path(self.working_directory) if self.working_directory else None,
        )


def _slurm_profile(name: object) -> SlurmProfile | None:
    """The run's profile if it is a Slurm profile (a bad name fails the submission)."""
    if not isinstance(name, str):
        return None
    profile = load_profile(name)
    return profile if isinstance(profile, SlurmProfile) else None


class SlurmVariables(BaseVariables):
    """The job variables a deployment may set (shown in the UI's work pool form)."""

    partition: str | None = Field(
        default=None, description="Slurm partition of the flow-run job (default: the profile's)"
    )
    time: str = Field(default="02:00:00", description="walltime, [D-]HH:MM:SS")
    memory: str = Field(default="4G", description="--mem of the flow-run job")
    cpus: int = Field(default=1, description="--cpus-per-task of the flow-run job")
    account: str | None = Field(default=None, description="--account (default: the profile's)")
    qos: str | None = Field(default=None, description="--qos (default: the profile's)")
    extra_directives: list[str] = Field(default_factory=list, description="more sbatch flags")
    prologue: list[str] | None = Field(
        default=None,
        description="shell lines before the engine, e.g. module load (default: the profile's)",
    )
    log_directory: str | None = Field(
        default=None, description="where job scripts and logs go (default <data root>/logs/slurm)"
    )
    working_directory: str | None = Field(default=None, description="the job's --chdir")


class SlurmWorkerResult(BaseWorkerResult):
    """How the flow run's job ended."""


def default_flow_job_logs() -> Path:
    """``<data root>/logs/slurm``: on the shared filesystem, next to the worker job logs."""
    return default_data_root() / "logs" / "slurm"


def engine_command() -> list[str]:
    """The command that runs a flow run (its id from ``PREFECT__FLOW_RUN_ID``)."""
    return [sys.executable, "-m", "prefect.engine"]


def refuse_invalid(script: Path, env: dict[str, str]) -> None:
    """Refuse, in bash's or sbatch's own words, a script that would not run: its shell
    syntax (``bash -n``), then its directives (``sbatch --test-only``: nothing submitted)."""
    syntax = run_command(["bash", "-n", str(script)], check=False)
    if syntax.returncode != 0:
        raise FlowJobError(
            f"the job script {script} (from the work pool's job_script) is not valid bash: "
            + "; ".join(line.strip() for line in syntax.stderr.splitlines() if line.strip())
        )
    refusal = sbatch_refusal(script, env=env)
    if refusal is not None:
        raise FlowJobError(
            f"sbatch refuses the job script {script} (from the work pool's job_script and "
            f"job variables): {refusal}"
        )


def submit(script: Path, env: dict[str, str]) -> str:
    """sbatch the script with ``env`` exported to the job; its job id."""
    proc = run_slurm(["sbatch", "--parsable", "--export=ALL", str(script)], env=env)
    return proc.stdout.strip().split(";")[0]


def job_named(name: str) -> str | None:
    """The id of a queued job with this name, if any (a submission made before a restart)."""
    listed = run_slurm(["squeue", "--noheader", "--name", name, "-o", "%i"]).stdout.split()
    return listed[0] if listed else None


class JobPoller:
    """Watches every job of the worker with one squeue call per interval."""

    def __init__(self, interval: float = POLL_SECONDS) -> None:
        self.interval = interval
        self._waiting: dict[str, asyncio.Future[None]] = {}
        self._task: asyncio.Task[None] | None = None

    async def wait(self, job_id: str) -> None:
        """Return once ``job_id`` has left the queue."""
        future = self._waiting.get(job_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._waiting[job_id] = future
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        await asyncio.shield(future)

    def tracked(self) -> list[str]:
        """The jobs being watched."""
        return [job for job, future in self._waiting.items() if not future.done()]

    async def _run(self) -> None:
        delay = self.interval
        while self.tracked():
            await asyncio.sleep(delay)
            jobs = self.tracked()
            try:
                queued = {job.job_id for job in await asyncio.to_thread(queued_jobs, jobs)}
            except SlurmCommandError:
                delay = min(delay * 2, MAX_BACKOFF_SECONDS)  # Slurm is busy or away: back off
                continue
            delay = self.interval
            for job in jobs:
                if job not in queued:
                    self._waiting.pop(job).set_result(None)


class SlurmWorker(BaseWorker[SlurmJobConfiguration, SlurmVariables, SlurmWorkerResult]):
    """Runs each flow run of its pool as a Slurm job."""

    type = WORKER_TYPE
    job_configuration = SlurmJobConfiguration
    job_configuration_variables = SlurmVariables
    _description = "Run each flow run as its own Slurm batch job (auction-pipeline)."
    _display_name = "Slurm (auction-pipeline)"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._poller = JobPoller()
        self._adopted = False
        self._cancelled: set[str] = set()

    async def get_and_submit_flow_runs(self) -> list[FlowRun]:
        """Adopt the live jobs of a previous worker once, then poll as usual."""
        if not self._adopted:
            self._adopted = True
            await self._adopt_live_jobs()
        return await super().get_and_submit_flow_runs()

    async def run(
        self,
        flow_run: FlowRun,
        configuration: SlurmJobConfiguration,
        task_status: anyio.abc.TaskStatus[int] | None = None,
    ) -> SlurmWorkerResult:
        """Submit (or adopt) the run's job and wait until it has ended."""
        logger = self.get_flow_run_logger(flow_run)
        spec = configuration.spec(flow_run.parameters)
        run_id = str(flow_run.id)
        job_id = await asyncio.to_thread(job_named, job_name(run_id))
        if job_id is not None:
            logger.info("flow run %s already has Slurm job %s; following it", run_id, job_id)
        else:
            script_text = render_flow_job_script(
                spec, run_id, engine_command(), configuration.job_script
            )
            script = spec.log_directory / f"{job_name(run_id)}.sh"
            write_atomic(script, script_text.encode())
            env = {k: v for k, v in {**os.environ, **configuration.env}.items() if v is not None}
            await asyncio.to_thread(refuse_invalid, script, env)
            job_id = await asyncio.to_thread(submit, script, env)
            logger.info(
                "flow run submitted as Slurm job %s on partition %r (script %s)",
                job_id,
                spec.partition,
                script,
            )
        if task_status is not None:
            task_status.started(int(job_id))  # the run's infrastructure_pid
        return await self._follow(flow_run.id, job_id)

    async def _follow(self, flow_run_id: UUID, job_id: str) -> SlurmWorkerResult:
        """Wait for the job's end, scancelling it if its run is cancelled; report the end."""
        waiter = asyncio.ensure_future(self._poller.wait(job_id))
        while not waiter.done():
            await asyncio.wait({waiter}, timeout=POLL_SECONDS)
            if not waiter.done():
                await self._enforce_cancel(flow_run_id, job_id)
        end = await asyncio.to_thread(job_end, job_id)
        await self._report(flow_run_id, end, cancelled=job_id in self._cancelled)
        return SlurmWorkerResult(
            status_code=0 if end.state == "COMPLETED" else 1, identifier=job_id
        )

    async def _enforce_cancel(self, flow_run_id: UUID, job_id: str) -> None:
        """A run being cancelled has its job scancelled: Slurm sends the engine SIGTERM and
        gives it ``KillWait`` seconds to close its Dask workers before SIGKILL."""
        flow_run = await self.client.read_flow_run(flow_run_id)
        state = flow_run.state
        cancelled = state is not None and state.type in (StateType.CANCELLING, StateType.CANCELLED)
        if cancelled and job_id not in self._cancelled:
            self._cancelled.add(job_id)
            self.get_flow_run_logger(flow_run).info("cancelling Slurm job %s", job_id)
            await asyncio.to_thread(run_slurm, ["scancel", job_id], check=False)

    async def _report(self, flow_run_id: UUID, end: JobEnd, cancelled: bool = False) -> None:
        """A job that ended abnormally under a run that is not final leaves it Crashed; one
        this worker scancelled because the run was being cancelled leaves it Cancelled (the
        engine, signalled, cannot tell a cancel from a kill and reports itself Crashed)."""
        flow_run = await self.client.read_flow_run(flow_run_id)
        logger = self.get_flow_run_logger(flow_run)
        state = flow_run.state
        if not end.abnormal:
            return
        message = describe(end, "the flow run's Slurm job")
        if cancelled or (state is not None and state.type == StateType.CANCELLING):
            logger.info(message)  # the cancel it was asked for
            if state is None or state.type != StateType.CANCELLED:
                await self._mark_flow_run_as_cancelled(flow_run, {"message": message})
            return
        logger.error(message)
        if state is not None and state.type in (StateType.COMPLETED, StateType.FAILED):
            return  # the run ended by itself; the job's end came after
        await self.client.set_flow_run_state(flow_run_id, Crashed(message=message), force=True)

    async def kill_infrastructure(
        self, infrastructure_pid: str, configuration: SlurmJobConfiguration, grace_seconds: int = 30
    ) -> None:
        """scancel the run's job (Prefect calls this for a run cancelled while pending)."""
        if not await asyncio.to_thread(queued_jobs, [infrastructure_pid]):
            raise InfrastructureNotFound(f"Slurm job {infrastructure_pid} is not in the queue")
        await asyncio.to_thread(run_slurm, ["scancel", infrastructure_pid])

    async def _adopt_live_jobs(self) -> None:
        """Follow the jobs of this pool's live runs that a previous worker submitted."""
        runs = await self.client.read_flow_runs(
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[self._work_pool_name])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=LIVE_STATES))
            ),
        )
        jobs = {str(run.infrastructure_pid): run for run in runs if run.infrastructure_pid}
        for run in runs:  # submitted, but the worker died before it recorded the job id
            if not run.infrastructure_pid:
                job_id = await asyncio.to_thread(job_named, job_name(str(run.id)))
                if job_id is not None:
                    await self.client.update_flow_run(run.id, infrastructure_pid=job_id)
                    jobs[job_id] = run
        try:
            queued = {job.job_id for job in await asyncio.to_thread(queued_jobs, sorted(jobs))}
        except SlurmCommandError as exc:
            self._logger.warning("could not look for earlier flow-run jobs: %s", exc)
            return
        for job_id, flow_run in jobs.items():
            if job_id in queued:
                self._logger.info("re-adopting Slurm job %s of flow run %s", job_id, flow_run.id)
                self._runs_task_group.start_soon(self._follow, flow_run.id, job_id)  # type: ignore[union-attr]
            elif flow_run.state is not None and flow_run.state.type != StateType.CANCELLING:
                # Its job ended while no worker watched: say how.
                end = await asyncio.to_thread(job_end, job_id)
                if end.state != "UNKNOWN":
                    await self._report(flow_run.id, end)
