"""``auction-pipeline bench [--quick]``: every benchmark in one go, against the local Slurm
cluster, printed as a table and written to ``benchmarks/results.json`` and
``benchmarks/RESULTS.md`` with the machine, versions and date.

Uses the Slurm cluster SLURM_CONF names or the one ``auction-pipeline cluster up`` started;
with neither it starts the local cluster for the run and stops it afterwards. A Prefect
server is started for the run unless PREFECT_API_URL is set. ``--quick`` runs everything
small (the test suite's smoke test); figures from it are not meant to be compared.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from benchmarks.common import Figure, machine, write_results
from infra import localslurm
from infra.prefect_api import prefect_api
from infra.slurm import run_slurm

BENCH_DIR = Path(__file__).resolve().parent


def note(message: str) -> None:
    """Progress on stderr; the table and file names on stdout."""
    print(message, file=sys.stderr, flush=True)


@contextmanager
def slurm_cluster() -> Iterator[None]:
    """The cluster to measure on: the configured or running one, else a local one for the run."""
    localslurm.use_running_cluster(log=note)
    if os.environ.get("SLURM_CONF"):
        yield
        return
    note("no Slurm cluster configured: starting the local one for the benchmarks")
    localslurm.up(localslurm.DEFAULT_STATE_DIR, 3, log=note)
    localslurm.use_running_cluster(log=note)
    try:
        yield
    finally:
        localslurm.down(localslurm.DEFAULT_STATE_DIR, log=note)
        os.environ.pop("SLURM_CONF", None)


def crawl_and_extraction(quick: bool) -> list[Figure]:
    """Benchmarks 3 (crawl rate, three latency/concurrency cases) and 4 (extraction: the
    houses' pages, then the marketplaces' lot pages with their follow-ups)."""
    from benchmarks.crawl_extract import bench_crawl, bench_extraction
    from benchmarks.market_extract import bench_market_extraction

    lots = 6 if quick else 40
    return [
        bench_extraction(8 if quick else 40, 3 if quick else 5),
        bench_market_extraction(8 if quick else 100, 3 if quick else 5),  # 100: all ~40 lots
        *(
            bench_crawl(rate=10, latency=latency, concurrency=concurrency, lots=lots)
            for latency, concurrency in ((0.02, 1), (0.25, 1), (0.25, 4))
        ),
    ]


def print_table(figures: Sequence[Figure]) -> None:
    """The figures as a plain table on stdout."""
    print(f"{'benchmark':<11} {'case':<58} {'value':>16} {'ratio':>7}  target")
    for f in figures:
        met = "" if f.met is None else (" met" if f.met else " MISSED")
        value = f"{f.value:.4g} {f.unit}"
        print(f"{f.benchmark:<11} {f.case[:58]:<58} {value:>16} {f.ratio:>7.3g}  {f.target}{met}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks, print the table, write the results files."""
    parser = argparse.ArgumentParser(prog="auction-pipeline bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="everything small: a smoke test")
    parser.add_argument(
        "--out", type=Path, default=BENCH_DIR, help="where results.json and RESULTS.md go"
    )
    args = parser.parse_args(argv)
    from benchmarks.coldstart import bench_cold_start
    from benchmarks.load import bench_load
    from benchmarks.overhead import bench_overhead
    from benchmarks.peers import bench_peers
    from benchmarks.scaleout import bench_scale_out

    figures: list[Figure] = []
    with slurm_cluster():
        slurm_version = run_slurm(["sinfo", "--version"]).stdout.strip()
        with prefect_api(log=note):
            overhead = bench_overhead(args.quick, log=note)
            figures += overhead.figures
            figures += bench_peers(args.quick, overhead.plain_ms, overhead.ours_ms, log=note)
            note("cold start")
            figures += bench_cold_start(args.quick)
            figures += bench_scale_out(args.quick, log=note)
    note("crawl and extraction")
    figures += crawl_and_extraction(args.quick)
    note("database load")
    figures += bench_load(args.quick)
    command = "auction-pipeline bench" + (" --quick" if args.quick else "")
    analysis_file = BENCH_DIR / "analysis.md"
    analysis = analysis_file.read_text(encoding="utf-8") if analysis_file.is_file() else ""
    json_path, md_path = write_results(figures, machine(slurm_version), args.out, command, analysis)
    print_table(figures)
    print(f"wrote {json_path} and {md_path}")
    return 0
