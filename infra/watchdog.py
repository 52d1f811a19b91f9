"""A watchdog that outlives the flow process: a run killed with SIGKILL leaves nothing behind.

A flow process killed outright (``kill -9``, the kernel's out-of-memory killer) cannot end
its run: the flow run and its task runs would stay Running for ever in the UI, and its Dask
worker jobs would keep their Slurm allocations until they notice the scheduler is gone (a
minute, and a task already running goes on writing). So each run starts this small process
(:func:`start`), in a session of its own, holding the read end of a pipe whose write end
only the flow process has. The pipe reaches end-of-file when the flow process is gone, for
whatever reason; the watchdog then:

- marks the flow run Crashed, if it is not final yet (a worker may have done so already);
- ends its task runs that are not final: Crashed, or Cancelled when the run was cancelled;
- scancels the run's Dask worker jobs, found by their comment
  (:func:`job_comment`, set on every worker job of the run).

After a run that ended normally it finds nothing to do and writes nothing (it must not touch
a data root a sandbox reads as a source).

While the flow process lives, the watchdog checks the flow run every ``POLL_SECONDS`` and
leaves once it is final (a notebook's kernel outlives its runs). What it does is written to
``<data root>/logs/watchdog-<flow run id>.log``.
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State

POLL_SECONDS = 30.0
COMMENT_PREFIX = "auction-pipeline/flow-run/"
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}
NOT_FINAL_TASKS = ["PENDING", "RUNNING", "SCHEDULED", "PAUSED", "CANCELLING"]
_held: list[int] = []  # write ends of the watchdogs' pipes, open for this process's life


def job_comment(flow_run_id: str) -> str:
    """The ``--comment`` of the run's worker jobs: how the watchdog finds them."""
    return f"{COMMENT_PREFIX}{flow_run_id}"


def jobs_of_run(squeue_output: str, flow_run_id: str) -> list[str]:
    """Job ids whose comment names the flow run, from ``squeue -h -o "%i %k"`` (pure)."""
    wanted = job_comment(flow_run_id)
    found = []
    for line in squeue_output.splitlines():
        job, _, comment = line.strip().partition(" ")
        if job and comment.strip() == wanted:
            found.append(job)
    return found


def start(flow_run_id: str, log_file: Path) -> subprocess.Popen[bytes] | None:
    """Start the watchdog of this process's flow run; it lives until the run ends.

    It reports to the server this process reports to; with none (Prefect's in-process API,
    which dies with the process) there is nothing for it to end, and none is started.
    """
    from prefect.settings import PREFECT_API_URL

    api_url = PREFECT_API_URL.value()
    if not api_url:
        return None
    read_end, write_end = os.pipe()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        watchdog = subprocess.Popen(
            [sys.executable, "-m", "infra.watchdog", "--flow-run", flow_run_id,
             "--pid", str(os.getpid()), "--host", socket.gethostname()],
            stdin=read_end, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            # Not PREFECT__FLOW_RUN_ID: the watchdog is not the run's process.
            env={**_without(os.environ, "PREFECT__FLOW_RUN_ID"), "PREFECT_API_URL": api_url},
        )  # fmt: skip
    os.close(read_end)
    # Kept open, never inherited (os.pipe's ends are not), until this process ends.
    _held.append(write_end)
    return watchdog


def _without(environ: Mapping[str, str], name: str) -> dict[str, str]:
    return {key: value for key, value in environ.items() if key != name}


def _say(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}", flush=True)


def _flow_run_state(client: Any, flow_run_id: str) -> str | None:
    """The run's state type, or None when the server does not answer (an ad hoc run's own
    server is stopped as its command ends: nothing is said then, nothing can be done)."""
    import httpx

    try:
        run = client.read_flow_run(flow_run_id)
    except (httpx.HTTPError, OSError, RuntimeError):
        return None
    return run.state.type.value if run.state else None


def clean_up(client: Any, flow_run_id: str, pid: int, host: str) -> None:
    """The flow process is gone: end the run, its task runs and its worker jobs."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        TaskRunFilter,
        TaskRunFilterState,
        TaskRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Cancelled, Crashed

    state = _flow_run_state(client, flow_run_id)
    how = (
        f"the flow process (pid {pid} on {host}) ended without finishing its run: killed "
        "(SIGKILL, the out-of-memory killer) or lost; its watchdog ended what it left"
    )
    cancelled = state in ("CANCELLED", "CANCELLING")
    if state is not None and state not in FINAL:
        client.set_flow_run_state(flow_run_id, Crashed(message=how), force=True)
        _say(f"flow process {pid} is gone; flow run {flow_run_id} was {state}: now CRASHED")
    if state is not None:
        left = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)])),
            task_run_filter=TaskRunFilter(
                state=TaskRunFilterState(
                    type=TaskRunFilterStateType(any_=[StateType(s) for s in NOT_FINAL_TASKS])
                )
            ),
        )
        for task_run in left:
            end: State[Any] = Cancelled(message=how) if cancelled else Crashed(message=how)
            client.set_task_run_state(task_run.id, end, force=True)
            _say(f"task run {task_run.name} was {task_run.state_type}: now {end.type.value}")
    cancel_worker_jobs(flow_run_id)


def cancel_worker_jobs(flow_run_id: str) -> None:
    """scancel the run's Dask worker jobs still in the queue (none on a machine without Slurm)."""
    from infra.slurm import SlurmCommandError, run_slurm

    try:
        listed = run_slurm(["squeue", "-h", "-o", "%i %k"]).stdout
    except SlurmCommandError:
        return  # no Slurm here (a local run), or no answer: nothing it could cancel
    jobs = jobs_of_run(listed, flow_run_id)
    if jobs:
        run_slurm(["scancel", *jobs], check=False)
        _say(f"scancelled worker jobs {', '.join(jobs)}")


def watch(flow_run_id: str, pid: int, host: str, poll: float = POLL_SECONDS) -> None:
    """Wait for the end of the flow process (end-of-file on stdin) or of its run."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        while True:
            ready, _, _ = select.select([sys.stdin.fileno()], [], [], poll)
            if ready and not os.read(sys.stdin.fileno(), 1):  # the flow process is gone
                clean_up(client, flow_run_id, pid, host)
                return
            if _flow_run_state(client, flow_run_id) in FINAL:
                return  # the run ended and its process lives on (a notebook's kernel)


def main(argv: list[str] | None = None) -> int:
    """``python -m infra.watchdog --flow-run ID --pid PID --host HOST`` (see :func:`start`)."""
    parser = argparse.ArgumentParser(prog="python -m infra.watchdog")
    parser.add_argument("--flow-run", required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--host", default=socket.gethostname())
    args = parser.parse_args(argv)
    watch(args.flow_run, args.pid, args.host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
