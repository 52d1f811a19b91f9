"""Prefect #15442 at its root: a task that completed on a Dask worker which is then lost is
run again by Dask, unless its result is held (``flows/held.py``).

A real Prefect server and a real Dask cluster of worker processes: the worker holding the
completed task's result is killed (SIGKILL, as a pre-empted Slurm job dies) before the flow
reads the result. The Slurm end-to-end case is ``tests/test_faults_slurm.py``.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
from prefect import flow, task
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect_dask import DaskTaskRunner, get_dask_client

from flows.held import STALE_AFTER, held, holding, remove_stale


@task(task_run_name="count-{name}")
def count_run(ledger: str, name: str) -> str:
    """Append this process's id to ``ledger`` (one line per time the code really ran)."""
    with open(ledger, "a") as out:
        out.write(f"{os.getpid()}\n")
    return f"result of {name}"


def _lose_the_holder_then_read(ledger: Path, results: Path | None) -> tuple[str, str]:
    """Run ``count_run`` on a two-worker Dask cluster, kill the worker that holds its
    result, then read the result: (the result, the task run id)."""

    @flow(
        task_runner=DaskTaskRunner(
            cluster_kwargs={"n_workers": 2, "processes": True, "threads_per_worker": 1}
        )
    )
    def lose_the_holder() -> tuple[str, str]:
        step = held(count_run, results) if results else count_run
        future = step.submit(str(ledger), ledger.stem)
        dask_future = future.wrapped_future  # type: ignore[attr-defined]
        dask_future.result()  # done, its result in one worker's memory only
        with get_dask_client() as client:
            (holder,) = [w for w, keys in client.has_what().items() if dask_future.key in keys]
            pid = client.run(os.getpid, workers=[holder])[holder]
        os.kill(pid, signal.SIGKILL)
        time.sleep(2)  # the scheduler notices, and Dask recomputes the lost key on reading
        return future.result(), str(future.task_run_id)

    return lose_the_holder()


def test_a_held_task_whose_worker_is_lost_after_it_completed_is_not_run_again(
    prefect_api_url: str, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    with temporary_settings({PREFECT_API_URL: prefect_api_url}):
        plain, _ = _lose_the_holder_then_read(tmp_path / "plain.ledger", None)
        kept, task_run_id = _lose_the_holder_then_read(tmp_path / "held.ledger", results)

    # The hazard is real: without holding, Dask ran the completed task's code again.
    assert plain == "result of plain"
    assert len((tmp_path / "plain.ledger").read_text().split()) == 2
    # Held: the same result, the code ran once, the re-run ended Cached from the record.
    assert kept == "result of held"
    assert len((tmp_path / "held.ledger").read_text().split()) == 1
    assert [p.name for p in results.iterdir()] == [task_run_id]
    api = httpx.Client(base_url=prefect_api_url, timeout=30)
    task_run = api.get(f"/task_runs/{task_run_id}").json()
    assert task_run["state_type"] == "COMPLETED" and task_run["run_count"] == 1, task_run


def test_a_runs_held_results_go_with_it_and_a_killed_runs_once_stale(tmp_path: Path) -> None:
    parent = tmp_path / ".task-results"
    killed, recent = parent / "killed-run", parent / "recent-run"
    for directory in (killed, recent):
        directory.mkdir(parents=True)
        (directory / "record").write_text("{}")
    week_and_a_minute = time.time() - STALE_AFTER.total_seconds() - 60
    os.utime(killed, (week_and_a_minute, week_and_a_minute))
    # The current run's own directory is never taken for stale, however old.
    os.utime(parent, (week_and_a_minute, week_and_a_minute))
    assert remove_stale(parent.parent, keep=parent) == []

    notes: list[str] = []
    this_run = parent / "this-run"
    with holding(this_run, notes.append):
        (this_run / "record").write_text("{}")
        assert sorted(p.name for p in parent.iterdir()) == ["recent-run", "this-run"]
    assert sorted(p.name for p in parent.iterdir()) == ["recent-run"]  # its own went with it
    assert (recent / "record").exists()
    assert notes == [f"removed the task results a killed run left: {killed}"]
