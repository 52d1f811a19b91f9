"""Say why a Dask worker job was lost, in the flow run's log, while Dask redoes its work.

When a worker's Slurm job ends under it (walltime, memory, a lost node, preemption, an
``scancel``), Dask's scheduler notices the broken connection and sends the tasks the worker
was running to other workers; after ``distributed.scheduler.allowed-failures`` such losses
for one task it gives up with ``KilledWorker``. Neither says what Slurm did. Here:

* :class:`LostWorkerPlugin` runs in the scheduler (which lives in the flow process) and
  records each worker removed *unexpectedly* — not retired by its ``--lifetime``, by adapt or
  at the end of the run — with the tasks it was running;
* :class:`LostWorkerReporter` maps the worker to its Slurm job, waits until the job has left
  the queue (Slurm takes up to ``SlurmdTimeout`` to declare a node dead), judges how it ended
  (``infra/jobend.py``) and logs one warning per job, naming the state, node and the tail of
  its stderr. :meth:`LostWorkerReporter.report` is the text a ``KilledWorker`` failure gets.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

from infra.jobend import JobEnd, describe, job_end
from infra.slurm import SlurmCommandError, queued_jobs

QUEUE_EXIT_TIMEOUT = 90.0  # > the local cluster's node-failure detection (~30 s)
POLL_SECONDS = 2.0


@dataclass(frozen=True)
class LostWorker:
    """A worker the scheduler lost, and the tasks it was running then."""

    address: str
    name: str
    tasks: tuple[str, ...]
    when: float


class LostWorkerPlugin(SchedulerPlugin):
    """Records workers removed without being retired (runs inside the scheduler)."""

    name = "auction-pipeline-lost-workers"

    def __init__(self) -> None:
        self.lost: queue.SimpleQueue[LostWorker] = queue.SimpleQueue()
        self._names: dict[str, str] = {}

    def add_worker(self, scheduler: Any, worker: str) -> None:
        self._names[worker] = str(scheduler.workers[worker].name)

    def remove_worker(
        self, scheduler: Any, worker: str, *, stimulus_id: str, **kwargs: Any
    ) -> None:
        # The scheduler logs the removal as an event just before calling plugins.
        events = [msg for _, msg in scheduler.get_events(worker) if isinstance(msg, dict)]
        removal = next((m for m in reversed(events) if m.get("action") == "remove-worker"), {})
        if removal.get("expected", True):
            return  # retired (lifetime, adapt, end of run): nothing was lost
        tasks = tuple(sorted(str(key) for key in removal.get("processing-tasks", ())))
        self.lost.put(LostWorker(worker, self._names.get(worker, ""), tasks, time.time()))


def job_of(worker_name: str, jobs: dict[str, str]) -> str | None:
    """The Slurm job id of a worker named ``worker_name``, from the cluster's spec names →
    job ids (a job with several processes names its workers ``<spec>-0``, ``<spec>-1``)."""
    for spec, job_id in jobs.items():
        if worker_name == spec or worker_name.startswith(f"{spec}-"):
            return job_id
    return None


def _task_label(key: str) -> str:
    """``scrape_with_progress-3f2a...`` → ``scrape_with_progress``."""
    return key.rsplit("-", 1)[0] if "-" in key else key


class LostWorkerReporter:
    """Turns the plugin's records into one warning per lost worker job, in a thread."""

    def __init__(
        self,
        plugin: LostWorkerPlugin,
        jobs: Callable[[], dict[str, str]],
        stderr_file: Callable[[str], Path],
        emit: Callable[[int, str], None],
        allowed_failures: int,
    ) -> None:
        self.plugin = plugin
        self.jobs = jobs
        self.stderr_file = stderr_file
        self.emit = emit
        self.allowed_failures = allowed_failures
        self.ends: list[JobEnd] = []
        self._pending = 0  # losses taken from the plugin, not yet reported
        self._lock = threading.Lock()
        self._known: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lost-workers", daemon=True)

    def start(self) -> None:
        """Start watching in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop watching; losses whose job Slurm still lists are reported as they stand."""
        self._stop.set()
        self._thread.join(timeout=10)

    def report(self, wait: float = QUEUE_EXIT_TIMEOUT) -> str:
        """What Slurm said of every lost worker job, for a failure message; waits up to
        ``wait`` s for losses still being judged (a task given up on a lost worker fails the
        moment Dask notices, before Slurm has said why)."""
        deadline = time.monotonic() + wait
        while self._busy() and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        if not self.ends:
            return ""
        return "Dask worker jobs lost: " + "; ".join(describe(e, "job") for e in self.ends)

    def _busy(self) -> bool:
        with self._lock:
            return bool(self._pending) or not self.plugin.lost.empty()

    def _run(self) -> None:
        pending: list[tuple[LostWorker, str | None]] = []
        while not self._stop.is_set():
            self._known.update(self.jobs())  # a lost job may leave the cluster's table soon
            with self._lock:
                while True:
                    try:
                        lost = self.plugin.lost.get_nowait()
                    except queue.Empty:
                        break
                    pending.append((lost, job_of(lost.name, self._known)))
                self._pending = len(pending)
            queued = self._queued([job for _, job in pending if job is not None])
            pending = [item for item in pending if not self._settle(*item, queued=queued)]
            with self._lock:
                self._pending = len(pending)
            self._stop.wait(POLL_SECONDS)
        for item in pending:
            self._settle(*item, queued=set(), final=True)

    @staticmethod
    def _queued(job_ids: list[str]) -> set[str]:
        """Which of the lost workers' jobs Slurm still lists (one squeue for all)."""
        try:
            return {job.job_id for job in queued_jobs(job_ids)}
        except SlurmCommandError:
            return set()  # judge them now with what Slurm keeps

    def _settle(
        self, lost: LostWorker, job_id: str | None, queued: set[str], final: bool = False
    ) -> bool:
        """Report the loss once its job has left the queue (or waited long enough, or the
        run is ending)."""
        tasks = ", ".join(sorted({_task_label(t) for t in lost.tasks})) or "no task"
        redo = (
            f"it was running {tasks}; Dask runs that again on another worker (a task is "
            f"given up after {self.allowed_failures} such losses)"
        )
        if job_id is None:
            self.emit(logging.WARNING, f"lost Dask worker {lost.name} ({lost.address}); {redo}")
            return True
        if job_id in queued and time.time() - lost.when < QUEUE_EXIT_TIMEOUT and not final:
            return False
        try:
            end = job_end(job_id, self.stderr_file(job_id))
        except SlurmCommandError as exc:
            self.emit(
                logging.WARNING, f"lost the Dask worker of Slurm job {job_id} ({exc}); {redo}"
            )
            return True
        self.ends.append(end)
        if end.state in ("RUNNING", "COMPLETING"):  # Slurm has not noticed yet
            self.emit(
                logging.WARNING,
                f"lost the Dask worker of Slurm job {job_id} on {end.node or 'its node'}, which "
                f"Slurm still lists as {end.state} (a failing node is declared after "
                f"SlurmdTimeout). {redo}",
            )
            return True
        self.emit(logging.WARNING, f"{describe(end, 'Dask worker job')}. {redo}")
        return True
