"""A flow run's task results kept on the data root while the run lasts, so a task that
completed is never run again because the Slurm job holding its result was lost.

Dask keeps a finished task's result only in the memory of the worker that computed it, until
the flow has read it (``flows/stages.py``: ``outcome`` then releases it). A worker job lost in
between (pre-empted, walltime, a node failing) makes Dask run the task again elsewhere: a
site crawled for an hour would be crawled again (prefect #15442). Prefect 3 orchestrates task
runs in the client, so its server-side rule against leaving a Completed state never applies;
what does stop a re-run is a committed cache record under the run's own key. :func:`held`
gives a task exactly that: its result is persisted under the data root, keyed by its task run
id. The re-run Dask starts carries the same task run id, finds the record and ends *Cached*
with the stored result, without running the task's code.

The key is the task run id and nothing else, so nothing is shared between task runs: a new
run of the day (or a flow retry, whose task runs are new) runs every task as before. The
records live in ``.task-results/<flow run id>/`` (``DataRoot.task_results``), on the
filesystem the compute nodes share, and are removed when the run ends; a killed run's are
removed by the next run once they are a week old.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from prefect import Task
from prefect.context import TaskRunContext

P = ParamSpec("P")
R = TypeVar("R")

# A killed flow run leaves its records behind; they are a few KB of reports. The next run
# removes those older than this: far past any run of the day (a day's crawl, hours).
STALE_AFTER = dt.timedelta(days=7)


def own_task_run(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """The cache key of a task run: its own id (a re-run by Dask carries the same one)."""
    return str(context.task_run.id)


def held(task: Task[P, R], directory: Path) -> Task[P, R]:
    """``task`` with its result persisted in ``directory`` under its task run's id, so a
    re-run of the same task run returns the stored result instead of running again."""
    return task.with_options(
        persist_result=True, cache_key_fn=own_task_run, result_storage=directory
    )


def remove_stale(parent: Path, keep: Path, now: float | None = None) -> list[Path]:
    """Remove the runs' record directories in ``parent`` older than :data:`STALE_AFTER`
    (never ``keep``, the current run's); returns those removed."""
    cutoff = (time.time() if now is None else now) - STALE_AFTER.total_seconds()
    removed = []
    for directory in sorted(parent.glob("*")):
        if directory == keep or not directory.is_dir():
            continue
        if directory.stat().st_mtime < cutoff:
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
    return removed


@contextmanager
def holding(results: Path, note: Callable[[str], None]) -> Iterator[None]:
    """Keep a run's task results in ``results`` for the block, then remove them; the
    records killed runs left beside it go once stale (``note`` is told of each)."""
    results.mkdir(parents=True, exist_ok=True)
    for stale in remove_stale(results.parent, keep=results):
        note(f"removed the task results a killed run left: {stale}")
    try:
        yield
    finally:
        shutil.rmtree(results, ignore_errors=True)
