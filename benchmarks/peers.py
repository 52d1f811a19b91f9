"""Benchmark 1 (d): the same trivial items through tools a lab might pick instead, on the same
Slurm partition and the same resources as the Dask workers of (a)-(c): two one-core jobs.

- Parsl: ``HighThroughputExecutor`` with a ``SlurmProvider`` (two blocks of one node, one
  worker each; strategy off, so the blocks stay for the whole measurement);
- submitit: ``SlurmExecutor.map_array``, a Slurm array task per item, two at a time. submitit
  is a job-per-call tool, so it runs on few items (stated in the figure) and is compared per
  item, like (b).

Installed as the ``bench`` extra (``pip install -e '.[bench]'``; the test extra includes it).
The per-item time of each is reported against (a) plain Dask from the same run, and the
target "ours is ahead" compares it with (c) at the same N.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from unittest import mock

from dask.utils import parse_bytes

from benchmarks.common import Figure, median_seconds, noop
from infra.profiles import SlurmProfile, load_profile

WORKERS = 2  # as many single-core jobs as the Dask cluster of (a)-(c)


def _dev_profile() -> SlurmProfile:
    profile = load_profile("dev")
    assert isinstance(profile, SlurmProfile), "the dev profile must be a Slurm profile"
    return profile


def bench_parsl(sizes: list[int], repeats: int, log: Callable[[str], None]) -> dict[int, float]:
    """Seconds per item through Parsl HTEX + SlurmProvider for each N, after the blocks
    connected (their start is cold start, not per-item overhead)."""
    import parsl
    from parsl.config import Config
    from parsl.executors import HighThroughputExecutor
    from parsl.launchers import SingleNodeLauncher
    from parsl.providers import SlurmProvider

    profile = _dev_profile()
    per_item: dict[int, float] = {}
    bin_dir = Path(sys.executable).parent  # first on PATH: Parsl starts its interchange by name
    with (
        tempfile.TemporaryDirectory(prefix="bench-parsl-", dir=Path.cwd()) as tmp,
        mock.patch.dict(os.environ, {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}),
    ):
        provider = SlurmProvider(
            partition=profile.partition,
            nodes_per_block=1,
            cores_per_node=1,
            mem_per_node=max(1, parse_bytes(profile.memory) // 2**30),
            init_blocks=WORKERS,
            min_blocks=WORKERS,
            max_blocks=WORKERS,
            walltime=profile.walltime,
            exclusive=False,
            worker_init=f"export PATH={bin_dir}:$PATH",
            launcher=SingleNodeLauncher(),
        )
        executor = HighThroughputExecutor(
            label="htex",
            address="127.0.0.1",  # the local cluster's nodes share this host
            max_workers_per_node=1,
            provider=provider,
        )
        config = Config(executors=[executor], run_dir=tmp, strategy="none")
        # Parsl logs every task at DEBUG to its run_dir/parsl.log; kept off the console
        # handler Prefect puts on the root logger (which would time the console, not Parsl).
        logging.getLogger("parsl").propagate = False
        dfk: Any = parsl.load(config)
        try:
            app: Any = parsl.python_app(noop, executors=["htex"])
            log("peers: Parsl: waiting for its two blocks")
            app(0).result()
            for n in sizes:
                log(f"peers: Parsl HTEX, N={n}")
                per_item[n] = median_seconds(functools.partial(_gather_parsl, app, n), repeats) / n
        finally:
            dfk.cleanup()
            parsl.clear()
    return per_item


def _gather_parsl(app: Any, count: int) -> None:
    futures = [app(i) for i in range(count)]
    for future in futures:
        future.result()


def bench_submitit(count: int, log: Callable[[str], None]) -> float:
    """Seconds per item through submitit's job arrays (``WORKERS`` array tasks at a time)."""
    import submitit

    profile = _dev_profile()
    # The local cluster has no accounting: submitit's sacct polls fail (it logs each one) and
    # it reads the results from its folder on the shared filesystem instead.
    logging.getLogger("submitit").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="bench-submitit-", dir=Path.cwd()) as tmp:
        executor: Any = submitit.SlurmExecutor(folder=Path(tmp) / "%j", python=sys.executable)
        executor.update_parameters(
            partition=profile.partition,
            time=10,
            cpus_per_task=1,
            mem=f"{parse_bytes(profile.memory) // 2**20}M",
            array_parallelism=WORKERS,
            job_name="bench-submitit",
        )
        log(f"peers: submitit job array, N={count}")

        def run() -> None:
            jobs = executor.map_array(noop, range(count))
            results = [job.result() for job in jobs]
            if results != list(range(count)):
                raise RuntimeError(f"submitit returned {results[:5]}... for 0..{count - 1}")

        return median_seconds(run, 1) / count


def bench_peers(
    quick: bool,
    plain_ms: Mapping[int, float],
    ours_ms: Mapping[int, float],
    log: Callable[[str], None] = print,
) -> list[Figure]:
    """Parsl and submitit per item, against (a) plain Dask of the same run; each target is
    "(c) is faster per item" at the same N (the largest N of the run for submitit)."""
    sizes = sorted(plain_ms)
    largest = sizes[-1]
    figures: list[Figure] = []
    parsl_s = bench_parsl(sizes, 1 if quick else 3, log)
    for n in sizes:
        value = parsl_s[n] * 1000
        figures.append(
            Figure(
                benchmark="overhead",
                case=f"(d) Parsl HTEX + SlurmProvider, N={n:,}",
                value=value,
                unit="ms/item",
                baseline="(a) plain Dask client.map",
                baseline_value=plain_ms[n],
                target="(c) faster per item",
                met=ours_ms[n] < value,
                note=f"(c) {ours_ms[n]:.3g} ms/item",
            )
        )
    count = 4 if quick else 20
    value = bench_submitit(count, log) * 1000
    figures.append(
        Figure(
            benchmark="overhead",
            case=f"(d) submitit job array, N={count}",
            value=value,
            unit="ms/item",
            baseline=f"(a) plain Dask client.map, N={largest:,}",
            baseline_value=plain_ms[largest],
            target="(c) faster per item",
            met=ours_ms[largest] < value,
            note=f"a Slurm array task per item, {WORKERS} at a time; (c) "
            f"{ours_ms[largest]:.3g} ms/item at N={largest:,}",
        )
    )
    return figures
