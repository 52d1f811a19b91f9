"""Benchmark 6, scale-out: one day's pipeline (the ``daily-pipeline`` flow, profile ``dev``,
the three demo sites) on 1, 2 and 3 virtual nodes, and where its wall time goes.

Each worker job takes a whole node (``--exclusive``) and the others are excluded
(``--exclude``), so "n nodes" means at most n Dask workers; both are ordinary sbatch options,
so this runs on any cluster without an administrator creating partitions. The wall time is
cut into contiguous parts on one clock (they add up to it):

- to the first worker: flow run created and started (Prefect API), scheduler up, first job
  submitted, queued and started, its Python up (the first time-stamped line of its log);
  Slurm's own queue wait for that job is given beside it (second resolution);
- worker start: that worker's Python up → the first task started (Dask and Prefect
  imports, registration, the task run created through the Prefect API);
- work: first task started → last task ended (sites in parallel as workers allow);
- flow end: last task ended → the flow call returned (final state sent to the API, workers
  retired, scheduler closed).

The figure's ratio is wall time over the work: what orchestration adds around it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock
from uuid import UUID

from benchmarks.common import Figure
from infra.profiles import SlurmProfile, load_profile
from infra.runner import WORKER_JOB_NAME
from infra.slurm import job_records, node_states
from sites.demo.catalogue import HOUSES, DemoConfig
from sites.demo.server import DemoSite
from tasks.storage import DataRoot

DAY = dt.date(2026, 3, 14)
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@dataclass(frozen=True)
class Breakdown:
    """One run's wall time and its contiguous parts, in seconds."""

    nodes: int
    wall: float
    to_first_worker: float
    queue_wait: float  # Slurm's, for the first job: part of to_first_worker
    worker_start: float
    work: float
    flow_end: float
    workers: int


# "2026-11-21 19:35:59,670 - distributed.nanny - INFO - ...": Dask's log line time stamp.
_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) - ", re.MULTILINE)


def python_up_at(log_file: Path) -> float | None:
    """Epoch time of the first time-stamped Dask line in a worker job's log, if any."""
    match = _LOG_TIME.search(log_file.read_text(encoding="utf-8", errors="replace"))
    if match is None:
        return None
    stamp = dt.datetime.fromisoformat(match.group(1)).timestamp()
    return stamp + int(match.group(2)) / 1000


def _task_span(flow_run_id: UUID, expected: int, timeout: float = 60.0) -> tuple[float, float]:
    """First task start and last task end (epoch seconds), once the server recorded every
    task run in a final state (task states arrive as events, a moment after the flow ends)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            runs: list[Any] = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
            settled = [
                r for r in runs if r.state_type and r.state_type.value in TERMINAL and r.end_time
            ]
            if len(settled) >= expected:
                return (
                    min(r.start_time.timestamp() for r in settled),
                    max(r.end_time.timestamp() for r in settled),
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"flow run {flow_run_id}: {len(settled)} of {expected} task runs recorded "
                    f"as finished after {timeout:g} s"
                )
            time.sleep(0.5)


def run_on_nodes(nodes: list[str], all_nodes: list[str], site_url: str, root: Path) -> Breakdown:
    """One day's pipeline with worker jobs confined to ``nodes``; its breakdown."""
    from flows.daily import daily_pipeline

    excluded = [node for node in all_nodes if node not in nodes]
    directives = ["--exclusive"] + ([f"--exclude={','.join(excluded)}"] if excluded else [])
    overrides = {
        "DEMO_SITE_URL": site_url,
        "AUCTION_PIPELINE__DEV__EXTRA_DIRECTIVES": json.dumps(directives),  # YAML flow list
        "AUCTION_PIPELINE__DEV__WORKER_START_TIMEOUT": "120",
        "AUCTION_PIPELINE__DEV__ADAPT__MAXIMUM_JOBS": str(len(nodes)),
    }
    with mock.patch.dict(os.environ, overrides):
        start = time.time()
        # The three houses: the figures stay comparable with earlier runs' (the marketplaces'
        # many small requests would measure the demo server, not the scale-out).
        state: Any = daily_pipeline(
            date=DAY, sites=list(HOUSES), profile="dev", data_root=str(root), return_state=True
        )
        end = time.time()
    if not state.is_completed():
        raise RuntimeError(f"the pipeline on {len(nodes)} node(s) ended {state.name}: {state}")
    # A scrape and a process task per site, then one load and one archive task.
    tasks = 2 * len(HOUSES) + 2
    first_task, last_task = _task_span(state.state_details.flow_run_id, expected=tasks)
    logs = {
        p.stem.rsplit("-", 1)[-1]: p
        for p in DataRoot(root).slurm_logs.glob(f"{WORKER_JOB_NAME}-*.err")
    }
    up = {job: at for job, log in logs.items() if (at := python_up_at(log)) is not None}
    if not up:
        raise RuntimeError(f"no worker of the {len(nodes)}-node run wrote its log")
    first_job = min(up, key=up.__getitem__)
    times = [
        (r.start - r.submit).total_seconds()
        for r in job_records([first_job])
        if r.start and r.submit
    ]
    queue_wait = times[0] if times else float("nan")  # the controller forgot the job
    return Breakdown(
        nodes=len(nodes),
        wall=end - start,
        to_first_worker=up[first_job] - start,
        queue_wait=queue_wait,
        worker_start=first_task - up[first_job],
        work=last_task - first_task,
        flow_end=end - last_task,
        workers=len(logs),
    )


def bench_scale_out(quick: bool, log: Callable[[str], None] = print) -> list[Figure]:
    """The pipeline on 1, 2, 3 nodes (1 with ``quick``), each with a fresh data root."""
    profile = load_profile("dev")
    assert isinstance(profile, SlurmProfile), "the dev profile must be a Slurm profile"
    all_nodes = sorted({n.node for n in node_states(profile.partition)})
    counts = [1] if quick else [n for n in (1, 2, 3) if n <= len(all_nodes)]
    config = DemoConfig(lots_per_sale=8 if quick else 40, latency=0.02)
    results: list[Breakdown] = []
    with (
        DemoSite(config) as site,
        tempfile.TemporaryDirectory(prefix="bench-scale-", dir=Path.cwd()) as tmp,
    ):
        for count in counts:
            log(f"scale-out: one day's pipeline on {count} node(s)")
            results.append(
                run_on_nodes(all_nodes[:count], all_nodes, site.url, Path(tmp) / f"{count}")
            )
    one = results[0].wall
    sites = len(HOUSES)
    return [
        Figure(
            benchmark="scale-out",
            case=f"{b.nodes} node(s), {sites} sites x {config.lots_per_sale} lots: wall time",
            value=b.wall,
            unit="s",
            baseline="work (first task start → last task end)",
            baseline_value=b.work,
            note=(
                f"to the first worker {b.to_first_worker:.1f} s (Slurm queue wait "
                f"{b.queue_wait:.0f} s), worker start {b.worker_start:.1f} s, work "
                f"{b.work:.1f} s, flow end {b.flow_end:.1f} s; {b.workers} worker job(s); "
                f"speed-up over 1 node {one / b.wall:.2f}x"
            ),
        )
        for b in results
    ]
