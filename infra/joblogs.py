"""Forward what the Slurm worker jobs write to stderr/stdout into the flow run's log (the UI).

Prefect shows a task's own log lines, but not what happens around it on the worker: Dask
warnings (memory, unresponsive event loop, lost connections), tracebacks outside tasks and
Slurm's own verdicts (``slurmstepd: error: *** JOB 12 ON n2 CANCELLED AT ... DUE TO TIME
LIMIT ***``) end up only in the job's output files on the shared filesystem (prefect #17750).
:class:`JobLogForwarder` tails the files of the run's own worker jobs while the run is going
and logs each line that matters to the flow run, prefixed with the job id.

What is forwarded (:func:`choose_lines`): Dask log records at WARNING or above with their
tracebacks, Slurm's messages, and output before the first log record (the job's prologue).
Dask's INFO chatter is left in the files, and Prefect's console records are skipped: they
reach the UI already.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

# "2026-11-21 16:05:39,649 - distributed.worker - WARNING - message"
_DASK_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - \S+ - (DEBUG|INFO|WARNING|ERROR|CRITICAL) - "
)
# "16:05:42.317 | INFO    | Task run 'scrape-x' - ..." (Prefect's console handler)
_PREFECT_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \| [A-Z]+ +\| ")
_SLURM_ERROR = re.compile(r"^slurmstepd(-\S+)?: error:")

MAX_LINES_PER_POLL = 200  # per file; the rest is summarised, so a chatty job cannot flood the API


def choose_lines(
    lines: Iterable[str], carry: int | None
) -> tuple[list[tuple[int, str]], int | None]:
    """The lines worth forwarding, each with its level, and the ``carry`` for the next call.

    A line that starts no log record (a traceback, a wrapped message) belongs to the record
    before it and shares its fate, so a Prefect task's traceback (already in the UI) is not
    forwarded twice. ``carry`` is the level of the current record, or None when it is not
    forwarded; a file starts with WARNING, so output before the first record (the job's
    prologue, a failing ``module load``) is forwarded.
    """
    chosen = []
    for line in lines:
        if not line.strip():
            continue
        if _SLURM_ERROR.match(line):  # Slurm's verdict on the job, wherever it lands
            chosen.append((logging.ERROR, line))
            continue
        if _PREFECT_LINE.match(line):
            carry = None
            continue
        dask = _DASK_LINE.match(line)
        if dask:
            level = logging.getLevelName(dask.group(1))
            carry = level if isinstance(level, int) and level >= logging.WARNING else None
        if carry is not None:
            chosen.append((carry, line))
    return chosen, carry


def complete_lines(data: bytes) -> tuple[list[str], int]:
    """The complete lines in ``data`` and how many bytes they take (a partial last line waits
    for the next poll)."""
    end = data.rfind(b"\n") + 1
    if end == 0:
        return [], 0
    return data[:end].decode("utf-8", errors="replace").splitlines(), end


@dataclass
class JobLogForwarder:
    """Poll the output files of the run's worker jobs every ``interval`` seconds and
    ``emit(level, message)`` each line worth forwarding.

    ``job_ids()`` returns the jobs the cluster has now; jobs seen once stay followed after
    they leave, so the last words of a job Slurm killed are still read.
    """

    log_directory: Path
    job_name: str
    job_ids: Callable[[], Iterable[str]]
    emit: Callable[[int, str], None]
    interval: float = 2.0
    _seen: set[str] = field(default_factory=set)
    _offsets: dict[Path, int] = field(default_factory=dict)
    _carry: dict[Path, int | None] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Begin following in a daemon thread."""
        self._thread = threading.Thread(target=self._loop, name="slurm-job-logs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop following, after one last read of every file."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.poll()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def poll(self) -> None:
        """Read what every followed job wrote since the last poll and forward it."""
        # RuntimeError: the cluster's job table changed while read; the next poll gets it.
        with contextlib.suppress(RuntimeError):
            self._seen.update(str(job) for job in self.job_ids())
        for job_id in sorted(self._seen):
            for suffix in (".err", ".out"):
                self._forward(job_id, self.log_directory / f"{self.job_name}-{job_id}{suffix}")

    def _forward(self, job_id: str, path: Path) -> None:
        offset = self._offsets.get(path, 0)
        try:
            with open(path, "rb") as stream:
                stream.seek(offset)
                data = stream.read()
        except FileNotFoundError:  # the job has not started yet
            return
        except OSError as exc:
            self.emit(logging.WARNING, f"[Slurm job {job_id}] cannot read {path}: {exc}")
            return
        lines, used = complete_lines(data)
        self._offsets[path] = offset + used
        chosen, self._carry[path] = choose_lines(lines, self._carry.get(path, logging.WARNING))
        for level, line in chosen[:MAX_LINES_PER_POLL]:
            self.emit(level, f"[Slurm job {job_id}] {line}")
        if len(chosen) > MAX_LINES_PER_POLL:
            self.emit(
                logging.WARNING,
                f"[Slurm job {job_id}] {len(chosen) - MAX_LINES_PER_POLL} more lines in {path}",
            )
