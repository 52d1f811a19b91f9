"""How a Slurm job ended, in words a researcher can act on.

Slurm's own final state is not always the cause. Without cgroups, a job killed for going
over its ``--mem`` ends FAILED (signal 9, ``Reason=JobLaunchFailure``) or CANCELLED; a job
requeued after its node died is PENDING again. The lines slurmstepd writes into the job's
stderr say what happened (``exceeded memory limit``, ``CANCELLED AT ... DUE TO TIME LIMIT``).
:func:`judge` (pure) combines Slurm's record with those lines into one :class:`JobEnd`;
:func:`describe` says it in a sentence with the fix; :func:`job_end` looks a job up
(accounting when the cluster has slurmdbd, ``scontrol`` otherwise: it keeps an ended job
for ``MinJobAge`` seconds) with the state of its node.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from infra.slurm import JobRecord, accounted_jobs, job_records, node_states

# States in which a job ended without finishing its work.
ABNORMAL = frozenset(
    {"TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "CANCELLED", "FAILED", "BOOT_FAIL",
     "DEADLINE"}
)  # fmt: skip
ENDED = ABNORMAL | {"COMPLETED"}
STDERR_TAIL_LINES = 5

_STEPD_CANCEL = re.compile(
    r"\*\*\* JOB (?P<job>\d+) ON (?P<node>\S+) CANCELLED AT (?P<at>\S+)"
    r"(?: DUE TO (?P<why>[A-Z ]+?))? \*\*\*"
)
_DUE_TO = {"TIME LIMIT": "TIMEOUT", "PREEMPTION": "PREEMPTED", "NODE FAILURE": "NODE_FAIL"}
_UNEXPLAINED = frozenset({"CANCELLED", "FAILED", "UNKNOWN", "RUNNING", "COMPLETING"})
_OUT_OF_MEMORY = re.compile(r"exceeded (?:job )?memory limit|oom[-_ ]kill", re.IGNORECASE)


@dataclass(frozen=True)
class JobEnd:
    """A Slurm job's end as this product reports it."""

    job_id: str
    state: str  # TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, PREEMPTED, CANCELLED, FAILED, COMPLETED, ...
    node: str
    exit_code: int | None
    signal: int | None
    cancelled_by: str | None
    stderr_tail: tuple[str, ...]

    @property
    def abnormal(self) -> bool:
        """The job ended without finishing its work."""
        return self.state in ABNORMAL


def _exit_status(value: str) -> tuple[int | None, int | None]:
    code, _, signal = value.partition(":")
    try:
        return int(code), int(signal or 0)
    except ValueError:
        return None, None


def node_is_lost(node_state: str | None) -> bool:
    """sinfo's state says the node is down or not responding (``down``, ``idle*``, ...)."""
    if not node_state:
        return False
    return node_state.startswith(("down", "fail")) or node_state.endswith("*")


def judge(
    job_id: str, record: JobRecord | None, stderr: list[str], node_state: str | None = None
) -> JobEnd:
    """The job's end from Slurm's record (None if Slurm forgot it), its stderr lines and the
    state sinfo gives its node now.

    A job whose node died is often cancelled by its owner before Slurm declares the node
    down (dask-jobqueue cancels the job of a worker it lost), so Slurm records CANCELLED:
    when the node is down or not responding, and nothing else explains the end, the job is
    judged NODE_FAIL.
    """
    state = record.state if record else "UNKNOWN"
    node = record.nodes if record else ""
    exit_code, signal = _exit_status(record.exit_code) if record else (None, None)
    by = record.reason.removeprefix("by ") if record and record.reason.startswith("by ") else None
    for line in stderr:
        if match := _STEPD_CANCEL.search(line):
            node = node or match["node"]
            verdict = _DUE_TO.get(match["why"] or "", "CANCELLED")
            if state not in {"TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY"}:
                state = verdict
    if any(_OUT_OF_MEMORY.search(line) for line in stderr):
        state = "OUT_OF_MEMORY"  # slurmstepd's memory kill shows as FAILED or CANCELLED
    elif state in _UNEXPLAINED and node_is_lost(node_state):
        state = "NODE_FAIL"
    return JobEnd(
        job_id=job_id,
        state=state,
        node=node,
        exit_code=exit_code,
        signal=signal,
        cancelled_by=by if state == "CANCELLED" else None,
        stderr_tail=_tail(stderr),
    )


def _tail(stderr: list[str]) -> tuple[str, ...]:
    """The last lines worth showing: Slurm's own, if it wrote any, else the last lines."""
    lines = [line for line in stderr if line.strip()]
    slurm = [line for line in lines if line.startswith("slurmstepd")]
    return tuple((slurm or lines)[-STDERR_TAIL_LINES:])


def describe(end: JobEnd, what: str = "Slurm job") -> str:
    """One sentence: which job, where, what happened and what to change."""
    where = f" on {end.node}" if end.node else ""
    head = f"{what} {end.job_id}{where}"
    if end.state == "TIMEOUT":
        text = f"{head} reached its walltime (TIMEOUT); raise the profile's walltime"
    elif end.state == "OUT_OF_MEMORY":
        text = f"{head} ran out of memory (OUT_OF_MEMORY: over its --mem); raise its memory"
    elif end.state == "NODE_FAIL":
        text = f"{head} lost its node (NODE_FAIL)"
    elif end.state == "PREEMPTED":
        text = f"{head} was preempted by a higher-priority job (PREEMPTED)"
    elif end.state == "CANCELLED":
        by = f" by user {end.cancelled_by}" if end.cancelled_by else ""
        text = f"{head} was cancelled{by} (CANCELLED)"
    elif end.state == "FAILED" and end.signal:
        text = f"{head} was killed by signal {end.signal} (FAILED)"
    elif end.state == "FAILED":
        text = f"{head} failed with exit code {end.exit_code} (FAILED)"
    elif end.state == "UNKNOWN":
        text = f"{head} is gone and Slurm no longer knows how it ended"
    else:
        text = f"{head} ended {end.state}"
    if end.stderr_tail:
        text += "; last lines of its stderr: " + " | ".join(end.stderr_tail)
    return text


def stderr_lines(path: Path | None, limit: int = 200) -> list[str]:
    """The last ``limit`` lines of a job's stderr file ([] if it cannot be read)."""
    if path is None:
        return []
    try:
        with open(path, errors="replace") as handle:
            return [line.rstrip("\n") for line in deque(handle, maxlen=limit)]
    except OSError:
        return []


def job_end(job_id: str, stderr: Path | None = None) -> JobEnd:
    """Look up how ``job_id`` ended: accounting's record when the cluster has slurmdbd (it
    says who cancelled), else scontrol's; ``stderr`` defaults to the path scontrol knows."""
    live = next((r for r in job_records([job_id]) if r.job_id == job_id), None)
    accounted = accounted_jobs([job_id]) or []
    record = next((r for r in accounted if r.job_id == job_id), None) or live
    if stderr is None and live is not None and live.stderr:
        stderr = Path(live.stderr.replace("%J", job_id).replace("%j", job_id))
    node_state = None
    if record is not None and record.nodes:
        states = {row.node: row.state for row in node_states()}
        node_state = states.get(record.nodes)
    return judge(job_id, record, stderr_lines(stderr), node_state)
