"""Benchmark 2, cold start: from calling a flow on profile ``dev`` (no cluster yet) to its first
task running on a Slurm worker, against the Slurm floor measured in the same run: an
``sbatch --wrap`` job's submit-to-start time on the same partition.

The flow uses the product's own task runner (``ProfileTaskRunner``), so the figure includes
creating the flow run on the server, rendering and submitting the worker job, Slurm's
scheduling, the worker's Python start and connection, and Prefect's task start.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from prefect import flow, task

from benchmarks.common import Figure
from infra.profiles import load_profile
from infra.runner import ProfileTaskRunner
from infra.slurm import run_slurm

MARGIN_SECONDS = 5.0  # target: cold start <= floor + this


@task(name="first-task")
def first_task() -> float:
    """The wall-clock time at which the first task started."""
    return time.time()


@flow(name="bench-cold-start", task_runner=ProfileTaskRunner())
def cold_start(profile: str = "dev", data_root: str | None = None) -> float:
    """Run one task on the profile's cluster; when it started."""
    return first_task.submit().result()


def slurm_floor(partition: str, directory: Path, timeout: float = 120.0) -> float:
    """Seconds from ``sbatch`` to the job's first command running."""
    marker = directory / f"started-{time.monotonic_ns()}"
    start = time.time()
    run_slurm(
        ["sbatch", "--parsable", "-p", partition, "-o", "/dev/null",
         "--wrap", f"date +%s.%N > {marker}"],
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker.is_file() and marker.read_text().strip():
            return float(marker.read_text()) - start
        time.sleep(0.05)
    raise TimeoutError(f"the sbatch job on partition {partition} did not start in {timeout:g} s")


def bench_cold_start(quick: bool) -> list[Figure]:
    """Median cold start and Slurm floor over the repetitions, side by side."""
    repeats = 1 if quick else 3
    partition = load_profile("dev").partition  # type: ignore[union-attr]
    colds, floors = [], []
    with tempfile.TemporaryDirectory(prefix="bench-cold-", dir=Path.cwd()) as tmp:
        for _ in range(repeats):
            floors.append(slurm_floor(partition, Path(tmp)))
            start = time.time()
            first = cold_start(profile="dev", data_root=tmp)
            colds.append(first - start)
    cold, floor = statistics.median(colds), statistics.median(floors)
    return [
        Figure(
            benchmark="cold start",
            case="flow called → first task running on a Slurm worker (profile dev)",
            value=cold,
            unit="s",
            baseline="sbatch --wrap submit → start",
            baseline_value=floor,
            target=f"<= floor + {MARGIN_SECONDS:g} s",
            met=cold <= floor + MARGIN_SECONDS,
            note=f"difference {cold - floor:.2f} s",
        )
    ]
