"""From a cluster profile to the flow's Dask task runner, with the guardrails Slurm needs.

:func:`dask_task_runner` is the one place a profile becomes a prefect-dask ``DaskTaskRunner``
(built from strings and dicts, so Prefect can copy and compare it). :class:`ProfileTaskRunner`
is what the flow declares: it reads the run's ``profile`` parameter at the first submit, so
one flow definition serves every profile and deployment, and then enforces the guardrails:

* workers retire before their walltime (``--lifetime``) and adapt replaces them;
* the scheduler and its workers talk TLS with certificates made for the run: another user
  of the cluster who finds the scheduler's port cannot connect, submit code or read data;
* adapt never goes below one job, so a flow never waits on zero workers;
* if no worker connects in time, the run fails naming the partition and Slurm's pending
  reason, instead of hanging;
* the rendered job script is logged to the flow run and written next to the Slurm job logs;
* what the worker jobs write to stderr beyond task logs (Dask warnings, tracebacks, Slurm's
  verdicts) is forwarded to the flow run's log while it runs (``infra/joblogs.py``);
* a worker job lost under its tasks is named in the flow run's log with how Slurm ended it
  (TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, ...) while Dask redoes its work (``infra/lostworkers.py``);
* worker jobs are never requeued by Slurm (``--no-requeue``): adapt submits fresh ones.
"""

from __future__ import annotations

import shlex
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

import dask
from distributed.security import Security
from prefect.artifacts import create_markdown_artifact
from prefect.context import FlowRunContext
from prefect.exceptions import TerminationSignal
from prefect.futures import PrefectFuture
from prefect.logging import get_run_logger
from prefect.settings import PREFECT_API_URL
from prefect.task_runners import TaskRunner
from prefect_dask.task_runners import DaskTaskRunner, PrefectDaskFuture

from infra.atomic import write_atomic
from infra.joblogs import JobLogForwarder
from infra.lostworkers import LostWorkerPlugin, LostWorkerReporter
from infra.profiles import LocalProfile, Profile, SlurmProfile, load_profile, profiles_file
from infra.slurm import SlurmCommandError, queued_jobs, sbatch_refusal, wait_until_gone
from infra.tls import run_security
from infra.watchdog import job_comment
from tasks.storage import DataRoot, default_data_root

VENV = Path(sys.prefix)
REPO_ROOT = Path(__file__).resolve().parents[1]
ADAPT_INTERVAL_SECONDS = 1.0
RETIRE_TIMEOUT_SECONDS = 10.0  # for retired workers' jobs to end before the cluster closes
WORKER_JOB_NAME = "auction-pipeline-worker"  # squeue's NAME; job logs are <name>-<jobid>.err
TERMINATIONS = (TerminationSignal, KeyboardInterrupt, SystemExit)


class WorkersUnavailable(RuntimeError):
    """No Dask worker connected in time; the message names the partition and Slurm's reason."""


def lifetime_args(walltime_seconds: int) -> list[str]:
    """Dask worker flags that retire a worker before Slurm kills it at walltime.

    The margin is 10% of the walltime, between 30 s and 10 min; workers are staggered by a
    third of it so they do not all retire at once. A task still running on a retiring worker
    is restarted from scratch on another worker (dask-jobqueue #416): choose a walltime well
    above a site's scrape time. Restarts are safe: a site's pages are staged and only renamed
    into place when its scrape completes.
    """
    margin = min(max(walltime_seconds * 0.1, 30.0), 600.0)
    lifetime = max(walltime_seconds - margin, 10.0)
    return ["--lifetime", f"{int(lifetime)}s", "--lifetime-stagger", f"{int(margin / 3)}s"]


def render_prologue(lines: Iterable[str], prefect_api_url: str) -> list[str]:
    """Fill ``{venv}``, ``{repo}`` and ``{prefect_api_url}`` into the profile's prologue.

    Only these three placeholders are replaced, each shell-quoted; other braces (``${HOME}``,
    ``awk '{print}'``) are left for the shell.
    """
    values = {"venv": str(VENV), "repo": str(REPO_ROOT), "prefect_api_url": prefect_api_url}
    rendered = []
    for line in lines:
        for key, value in values.items():
            line = line.replace("{" + key + "}", shlex.quote(value))
        rendered.append(line)
    return rendered


def slurm_directives(profile: SlurmProfile) -> list[str]:
    """Extra ``#SBATCH`` flags for the profile (account and partition go via dask-jobqueue)."""
    # A requeued worker job would start a second worker under the same job id, one
    # dask-jobqueue already counts as gone; adapt replaces lost workers itself.
    flags = ["--no-requeue"]
    if profile.qos:
        flags.append(f"--qos={profile.qos}")
    flags.extend(profile.extra_directives)
    return flags


def local_cluster_kwargs(profile: LocalProfile) -> dict[str, Any]:
    """``distributed.LocalCluster`` arguments for a local profile."""
    return {
        "n_workers": profile.workers,
        "threads_per_worker": profile.threads_per_worker,
        "memory_limit": profile.memory,
        "processes": True,
        "dashboard_address": None,
    }


def slurm_cluster_kwargs(
    profile: SlurmProfile,
    *,
    log_directory: Path,
    prefect_api_url: str,
    security: Security,
    flow_run_id: str | None = None,
) -> dict[str, Any]:
    """``dask_jobqueue.SLURMCluster`` arguments for a Slurm profile (the flow's and a
    notebook's cluster are built from the same ones); ``security`` from
    :func:`infra.tls.run_security`. A flow run's worker jobs carry its id as their comment,
    so its watchdog (``infra/watchdog.py``) can find them."""
    directives = slurm_directives(profile)
    if flow_run_id:
        directives.append(f"--comment={job_comment(flow_run_id)}")
    cluster_kwargs: dict[str, Any] = {
        "queue": profile.partition,
        "cores": profile.cores,
        "memory": profile.memory,
        "processes": profile.processes,
        "walltime": profile.walltime,
        "job_extra_directives": directives,
        "job_script_prologue": render_prologue(profile.prologue, prefect_api_url),
        "worker_extra_args": lifetime_args(profile.walltime_seconds),
        "local_directory": profile.local_directory,
        "log_directory": str(log_directory),
        "job_name": WORKER_JOB_NAME,
        "python": sys.executable,
        # No dashboard; the scheduler's HTTP endpoints (health, metrics) on loopback only:
        # by default they listen on every interface, unencrypted.
        "scheduler_options": {"dashboard": False, "dashboard_address": "127.0.0.1:0"},
        "security": security,
    }
    if profile.account:
        cluster_kwargs["account"] = profile.account
    if profile.interface:
        cluster_kwargs["interface"] = profile.interface
        cluster_kwargs["scheduler_options"]["interface"] = profile.interface
    return cluster_kwargs


def dask_task_runner(
    profile: Profile,
    *,
    log_directory: Path,
    tls_directory: Path,
    prefect_api_url: str | None,
    flow_run_id: str | None = None,
) -> DaskTaskRunner:
    """Turn a profile into the DaskTaskRunner that runs the flow's tasks."""
    if isinstance(profile, LocalProfile):
        return DaskTaskRunner(
            cluster_class="distributed.LocalCluster", cluster_kwargs=local_cluster_kwargs(profile)
        )
    if not prefect_api_url:
        raise WorkersUnavailable(
            "PREFECT_API_URL is not set: tasks on Slurm workers would report to a throw-away "
            "server of their own and vanish from the UI. Run through `auction-pipeline run`, "
            "which starts a Prefect server when needed, or export PREFECT_API_URL."
        )
    return DaskTaskRunner(
        cluster_class="dask_jobqueue.SLURMCluster",
        cluster_kwargs=slurm_cluster_kwargs(
            profile,
            log_directory=log_directory,
            prefect_api_url=prefect_api_url,
            security=run_security(tls_directory),
            flow_run_id=flow_run_id,
        ),
        adapt_kwargs={
            "minimum_jobs": profile.adapt.minimum_jobs,
            "maximum_jobs": profile.adapt.maximum_jobs,
            "interval": f"{ADAPT_INTERVAL_SECONDS}s",
            "wait_count": max(1, int(profile.adapt.idle_seconds / ADAPT_INTERVAL_SECONDS)),
        },
    )


def explain_missing_workers(
    profile: SlurmProfile, job_ids: list[str], scheduler_address: str, log_directory: Path
) -> str:
    """Why no worker connected: the partition and what squeue says of each job."""
    head = (
        f"no Dask worker connected within {profile.worker_start_timeout:g} s on Slurm "
        f"partition {profile.partition!r} (profile {profile.name!r})."
    )
    if not job_ids:
        return f"{head} No worker job was submitted; see the flow run log for sbatch errors."
    try:
        jobs = queued_jobs(job_ids)
    except SlurmCommandError as exc:
        return f"{head} Jobs {', '.join(job_ids)}; squeue failed: {exc}"
    pending = [j for j in jobs if j.state == "PENDING"]
    running = [j for j in jobs if j.state == "RUNNING"]
    parts = [head]
    if pending:
        reasons = sorted({j.reason for j in pending})
        parts.append(
            f"Slurm reason: {', '.join(reasons)} "
            f"(jobs {', '.join(j.job_id for j in pending)} PENDING)."
        )
        parts.append(
            f"Check `sinfo -p {profile.partition}` and `squeue -j {pending[0].job_id}`; pick "
            f"another partition (AUCTION_PIPELINE__{profile.name.upper()}__PARTITION) or "
            f"raise worker_start_timeout."
        )
    if running:
        parts.append(
            f"Jobs {', '.join(j.job_id for j in running)} are RUNNING on "
            f"{', '.join(sorted({j.nodes for j in running}))} but their workers never reached "
            f"the scheduler at {scheduler_address}: see the job logs in {log_directory} and "
            "set the profile's `interface` to a network the compute nodes share."
        )
    if not jobs:
        parts.append(
            f"Jobs {', '.join(job_ids)} already left the queue: see their logs in {log_directory}."
        )
    return " ".join(parts)


def worker_jobs(cluster: Any) -> dict[str, str]:
    """The cluster's worker jobs: spec name -> Slurm job id (none for a LocalCluster, and
    none for a job not yet submitted)."""
    return {
        name: str(job.job_id)
        for name, job in list(cluster.workers.items())
        if getattr(job, "job_id", None)
    }


def retire_all_workers(client: Any, job_ids: list[str]) -> None:
    """Let every worker leave cleanly and its job end before the cluster closes, so closing
    logs no broken connection per worker (over TLS, a traceback each) and cancels nothing
    still running.

    The workers are named: without names the scheduler retires only those adaptive scaling
    would pick (``workers_to_close``), not all. Jobs still queued after the wait are left to
    the cluster's close, which cancels them.
    """
    workers = list(client.scheduler_info(n_workers=-1)["workers"])
    if workers:
        client.retire_workers(workers=workers, close_workers=True)
    wait_until_gone(job_ids, RETIRE_TIMEOUT_SECONDS)


class ProfileTaskRunner(TaskRunner[PrefectFuture[Any]]):
    """The flow's task runner: a DaskTaskRunner for the run's ``profile`` parameter.

    Built lazily at the first submit, when the flow run's parameters are known.

    ``expected_durations`` maps task function names to typical run times (Dask duration
    strings). Dask's adaptive scaling sizes the cluster from expected work, and assumes 0.5 s
    for a task it has not seen finish; telling it that a site's scrape takes minutes makes it
    start a worker per site at once instead of queueing every site on the first worker.
    """

    def __init__(
        self,
        profile_parameter: str = "profile",
        data_root_parameter: str = "data_root",
        expected_durations: dict[str, str] | None = None,
    ):
        super().__init__()  # type: ignore[no-untyped-call]
        self.profile_parameter = profile_parameter
        self.data_root_parameter = data_root_parameter
        self.expected_durations = dict(expected_durations or {})
        self._inner: DaskTaskRunner | None = None
        self._config: Any = None
        self._job_logs: JobLogForwarder | None = None
        self._tls: tempfile.TemporaryDirectory[str] | None = None
        self._lost_workers: LostWorkerReporter | None = None

    def duplicate(self) -> ProfileTaskRunner:
        """A fresh, unstarted runner with the same configuration (Prefect calls this per run)."""
        return type(self)(self.profile_parameter, self.data_root_parameter, self.expected_durations)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ProfileTaskRunner)
            and other.profile_parameter == self.profile_parameter
            and other.data_root_parameter == self.data_root_parameter
            and other.expected_durations == self.expected_durations
        )

    __hash__ = None  # type: ignore[assignment]

    def submit(
        self,
        task: Any,
        parameters: dict[str, Any],
        wait_for: Iterable[PrefectFuture[Any]] | None = None,
        dependencies: dict[str, Any] | None = None,
    ) -> PrefectFuture[Any]:
        """Submit a task to the profile's Dask cluster, starting the cluster on first use."""
        if not self._started:
            raise RuntimeError("The task runner must be started before submitting work.")
        dask_wait_for = cast("Iterable[PrefectDaskFuture[Any]] | None", wait_for)
        return self._runner().submit(task, parameters, dask_wait_for, dependencies)

    def _runner(self) -> DaskTaskRunner:
        if self._inner is not None:
            return self._inner
        context = FlowRunContext.get()
        if context is None or context.flow_run is None:
            raise RuntimeError("ProfileTaskRunner can only submit from inside a flow run")
        params = context.parameters or {}
        profile = load_profile(str(params.get(self.profile_parameter, "local")))
        root_parameter = params.get(self.data_root_parameter)
        data_root = DataRoot(Path(root_parameter) if root_parameter else default_data_root())
        log_directory = data_root.slurm_logs
        log_directory.mkdir(parents=True, exist_ok=True)
        # This run's certificate files, removed when the run ends.
        self._tls = tempfile.TemporaryDirectory(prefix="run-", dir=data_root.dask_tls())
        inner = dask_task_runner(
            profile,
            log_directory=log_directory,
            tls_directory=Path(self._tls.name),
            prefect_api_url=PREFECT_API_URL.value() or None,
            flow_run_id=str(context.flow_run.id),
        )
        # Read by the scheduler (in this process) whenever it first sees a task kind.
        self._config = dask.config.set(
            {"distributed.scheduler.default-task-durations": self.expected_durations}
        )
        # Adapt starts only once Slurm has accepted the job script (_start_slurm_workers):
        # started with the cluster, it would submit a refused job while the run fails.
        adapt_kwargs, inner.adapt_kwargs = inner.adapt_kwargs, {}
        inner.__enter__()  # type: ignore[no-untyped-call]
        self._inner = inner
        client = inner.client  # starts the cluster
        if isinstance(profile, SlurmProfile):
            self._start_slurm_workers(profile, inner, client, log_directory, context, adapt_kwargs)
        return inner

    def _start_slurm_workers(
        self,
        profile: SlurmProfile,
        inner: DaskTaskRunner,
        client: Any,
        log_directory: Path,
        context: FlowRunContext,
        adapt_kwargs: dict[str, Any],
    ) -> None:
        logger = get_run_logger()
        cluster: Any = inner._cluster
        job_script: str = cluster.job_script()
        assert context.flow_run is not None
        script_path = log_directory / f"worker-job-{context.flow_run.id}.sh"
        write_atomic(script_path, job_script.encode())
        # A job Slurm will never take (unknown partition, more memory than any node, no
        # reachable controller) fails the run now with sbatch's reason, instead of after
        # worker_start_timeout with adapt's failed submissions only in the log.
        refusal = sbatch_refusal(script_path)
        if refusal is not None:
            raise WorkersUnavailable(
                f"Slurm refuses the Dask worker job of profile {profile.name!r} "
                f"(partition {profile.partition!r}): {refusal}. Job script: {script_path}. "
                f"Fix the profile in {profiles_file()} or override a key with "
                f"AUCTION_PIPELINE__{profile.name.upper()}__<KEY>=value."
            )
        # Submit the first worker jobs now: adapt's first decision comes only after its
        # interval, and the flow would wait that long before Slurm even sees a job.
        cluster.scale(jobs=profile.adapt.minimum_jobs)
        cluster.adapt(**adapt_kwargs)
        logger.info(
            "Dask workers run as Slurm jobs on partition %r with this job script "
            "(also saved as %s):\n%s",
            profile.partition,
            script_path,
            job_script,
        )
        self._job_logs = JobLogForwarder(
            log_directory,
            WORKER_JOB_NAME,
            job_ids=lambda: list(worker_jobs(cluster).values()),
            emit=logger.log,
        )
        self._job_logs.start()
        self._lost_workers = self._watch_lost_workers(cluster, log_directory, logger)
        create_markdown_artifact(
            f"Dask workers on partition `{profile.partition}` (profile `{profile.name}`), "
            f"saved as `{script_path}`:\n\n```bash\n{job_script}\n```\n",
            key="slurm-job-script",
            description="the sbatch script of this run's Dask workers",
        )
        try:
            client.wait_for_workers(1, timeout=profile.worker_start_timeout)
        except TimeoutError:
            job_ids = list(worker_jobs(cluster).values())
            raise WorkersUnavailable(
                explain_missing_workers(profile, job_ids, cluster.scheduler_address, log_directory)
            ) from None

    @staticmethod
    def _watch_lost_workers(cluster: Any, log_directory: Path, logger: Any) -> LostWorkerReporter:
        plugin = LostWorkerPlugin()

        async def add_plugin() -> None:  # on the scheduler's own event loop
            cluster.scheduler.add_plugin(plugin)

        cluster.sync(add_plugin)
        reporter = LostWorkerReporter(
            plugin,
            jobs=lambda: worker_jobs(cluster),
            stderr_file=lambda job_id: log_directory / f"{WORKER_JOB_NAME}-{job_id}.err",
            emit=logger.log,
            allowed_failures=int(dask.config.get("distributed.scheduler.allowed-failures")),
        )
        reporter.start()
        return reporter

    def lost_workers_report(self) -> str:
        """What Slurm said of the worker jobs lost so far ("" if none), for failure messages."""
        return self._lost_workers.report() if self._lost_workers is not None else ""

    def _retire_workers(self) -> None:
        client: Any = self._inner._client if self._inner is not None else None
        if client is None or client.status != "running":
            return
        cluster: Any = self._inner._cluster if self._inner is not None else None
        try:
            retire_all_workers(client, list(worker_jobs(cluster).values()))
        except Exception as exc:  # closing goes on regardless; say why it was not graceful
            self.logger.debug("could not retire workers before closing: %s", exc)

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        try:
            if self._inner is not None:
                if self._job_logs is not None:
                    self._job_logs.stop()  # before the workers retire: no closing noise
                if self._lost_workers is not None:
                    self._lost_workers.stop()
                # Signalled (cancel, walltime, SIGTERM) there are only Slurm's KillWait
                # seconds left: cancel the worker jobs at once instead of retiring them.
                if not (exc_type and issubclass(exc_type, TERMINATIONS)):
                    self._retire_workers()
                self._inner.__exit__(exc_type, exc_value, traceback)
        finally:
            if self._config is not None:
                self._config.__exit__(None, None, None)
            if self._tls is not None:
                self._tls.cleanup()
            self._inner = self._config = self._job_logs = self._tls = None
            self._lost_workers = None
            super().__exit__(exc_type, exc_value, traceback)
