"""Many small items through Prefect at plain-Dask cost: one Prefect task per batch of items.

A Prefect task run costs about 0.1-0.2 s of orchestration on these clusters, a plain Dask
call about 2-5 ms (``benchmarks/``: orchestration overhead). :func:`map_in_batches` cuts the
items into at most ``max_batches`` batches of at least ``min_batch_size`` items, runs each
batch as one Prefect task (a plain loop inside it), and keeps a progress artifact in the UI
up to date as batches finish. A failing item fails its batch's task (the UI shows it with the
error and the batch's item range) and :func:`map_in_batches` raises that error.

The daily flow has this shape by construction: one task per site and step, each looping over
the site's pages or lots.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeVar

from prefect import task
from prefect.futures import PrefectFuture, as_completed

from flows.progress import ProgressArtifact

T = TypeVar("T")
R = TypeVar("R")

MIN_BATCH_SIZE = 250
MAX_BATCHES = 64


def batch_bounds(count: int, min_batch_size: int, max_batches: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each batch: as many as useful for parallelism, each big enough that
    Prefect's per-task cost is small against its items."""
    if count <= 0:
        return []
    if min_batch_size < 1 or max_batches < 1:
        raise ValueError("min_batch_size and max_batches must be at least 1")
    size = max(min_batch_size, math.ceil(count / max_batches))
    return [(start, min(start + size, count)) for start in range(0, count, size)]


@task(name="batch", task_run_name="{name}-{start}-{stop}")
def run_batch(
    fn: Callable[[T], R], items: Sequence[T], name: str, start: int, stop: int
) -> list[R]:
    """Apply ``fn`` to each item, in order (items ``start``..``stop`` of the whole)."""
    return [fn(item) for item in items]


def map_in_batches(
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    name: str = "items",
    min_batch_size: int = MIN_BATCH_SIZE,
    max_batches: int = MAX_BATCHES,
) -> list[R]:
    """``[fn(item) for item in items]`` on the flow's task runner, one task per batch, with a
    progress artifact (key ``<name>-progress``) in the UI. Call from inside a flow."""
    bounds = batch_bounds(len(items), min_batch_size, max_batches)
    progress = ProgressArtifact(
        f"{name}-progress", f"{len(items)} {name} in {len(bounds)} batches", interval=0.0
    )
    progress.report(0, len(items))
    futures: dict[PrefectFuture[list[R]], int] = {
        run_batch.submit(fn, items[start:stop], name, start, stop): index
        for index, (start, stop) in enumerate(bounds)
    }
    results: list[list[R] | None] = [None] * len(bounds)
    done_items = 0
    for future in as_completed(list(futures)):
        index = futures[future]
        results[index] = future.result()
        start, stop = bounds[index]
        done_items += stop - start
        progress.report(done_items, len(items))
    return [value for batch in results for value in (batch or [])]
