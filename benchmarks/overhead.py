"""Orchestration overhead per item, on the same SLURMCluster workers, side by side:

(a) plain Dask ``client.map`` of N trivial calls: the floor;
(b) one Prefect task per item through prefect-dask's DaskTaskRunner;
(c) the product's shape: ``flows/batching.py: map_in_batches`` (a Prefect task per batch,
    progress artifact in the UI).

Per-item time and the ratio to (a). (b) costs about 0.1 s per item, so it is measured on a
smaller N (stated in the figure) and compared per item: running it on 10,000 items would
take longer than the whole benchmark budget.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.futures import wait
from prefect_dask.task_runners import DaskTaskRunner

from benchmarks.common import Figure, median_seconds, noop
from flows.batching import map_in_batches
from infra.interactive import cluster_client

TARGET_RATIO = 1.5  # (c) against (a) at N = 10,000


@dataclass
class Overhead:
    """The figures, and the per-item milliseconds of (a) and (c) by N for the peers' figures."""

    figures: list[Figure] = field(default_factory=list)
    plain_ms: dict[int, float] = field(default_factory=dict)
    ours_ms: dict[int, float] = field(default_factory=dict)


@task(name="noop")
def noop_task(item: int) -> int:
    """One Prefect task per item."""
    return item


@flow(name="bench-per-item")
def per_item(count: int) -> None:
    """(b): a Prefect task per item."""
    wait([noop_task.submit(i) for i in range(count)])


@flow(name="bench-batched")
def batched(count: int) -> int:
    """(c): the product's shape."""
    return len(map_in_batches(noop, list(range(count)), name="bench-items"))


def _plain_map(client: Any, count: int) -> Callable[[], object]:
    return lambda: client.gather(client.map(noop, range(count), pure=False))


def _call(run: Any, count: int) -> Callable[[], object]:
    return lambda: run(count)


def bench_overhead(quick: bool, log: Callable[[str], None] = print) -> Overhead:
    """Run (a), (b), (c) on two dev-partition worker jobs."""
    sizes = [1000] if quick else [1000, 10000]
    repeats = 1 if quick else 3
    per_item_count = 50 if quick else 500
    result = Overhead()
    with (
        tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp,
        cluster_client("dev", jobs=2, data_root=Path(tmp), log=log) as client,
    ):
        client.wait_for_workers(2, timeout=120)
        dask: Any = client
        runner: Any = DaskTaskRunner(address=dask.scheduler.address)
        b_flow: Any = per_item.with_options(task_runner=runner)
        c_flow: Any = batched.with_options(task_runner=runner)
        plain = result.plain_ms
        for n in sizes:
            log(f"overhead: N={n}: plain Dask, then batched Prefect tasks")
            plain[n] = median_seconds(_plain_map(dask, n), repeats) / n * 1000
            ours = result.ours_ms[n] = median_seconds(_call(c_flow, n), repeats) / n * 1000
            result.figures.append(
                Figure(
                    benchmark="overhead",
                    case=f"(c) map_in_batches, N={n:,}",
                    value=ours,
                    unit="ms/item",
                    baseline="(a) plain Dask client.map",
                    baseline_value=plain[n],
                    target=f"<= {TARGET_RATIO} at N=10,000" if n == 10000 else "",
                    met=(ours / plain[n] <= TARGET_RATIO) if n == 10000 else None,
                )
            )
        log(f"overhead: one Prefect task per item, N={per_item_count}")
        prefect_each = median_seconds(_call(b_flow, per_item_count), 1) / per_item_count
        smallest = sizes[0]
        result.figures.append(
            Figure(
                benchmark="overhead",
                case=f"(b) a Prefect task per item, N={per_item_count:,}",
                value=prefect_each * 1000,
                unit="ms/item",
                baseline=f"(a) plain Dask client.map, N={smallest:,}",
                baseline_value=plain[smallest],
                note="measured on fewer items: 10,000 would take longer than the whole run",
            )
        )
    return result
