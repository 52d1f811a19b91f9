"""`auction-pipeline bench --quick` runs every benchmark on the local Slurm cluster and writes
its results files (figures are not asserted: speed is measured, not tested); the marketplace
extraction benchmark, which needs no cluster, is also run alone, small."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from benchmarks.market_extract import bench_market_extraction
from infra.runner import WORKER_JOB_NAME
from infra.slurm import run_slurm
from sites.demo.catalogue import DemoConfig


@pytest.mark.slurm
@pytest.mark.prefect_server
def test_bench_quick_runs_and_writes_its_results(
    slurm_conf: Path, prefect_api_url: str, cli, tmp_path: Path
) -> None:
    result = cli(
        "bench", "--quick", "--out", str(tmp_path),
        env={"PREFECT_API_URL": prefect_api_url, "SLURM_CONF": str(slurm_conf)}, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads((tmp_path / "results.json").read_text())
    figures = data["figures"]
    assert {f["benchmark"] for f in figures} >= {
        "overhead",
        "cold start",
        "extraction",
        "crawl",
        "load",
        "scale-out",
    }
    cases = {f["case"] for f in figures}
    extraction = [f["case"] for f in figures if f["benchmark"] == "extraction"]
    assert len(extraction) == 2, extraction  # the houses' pages and the marketplaces'
    assert any("marketplace lot pages + " in case for case in extraction), extraction
    assert any(case.startswith("(d) Parsl") for case in cases), cases
    assert any(case.startswith("(d) submitit") for case in cases), cases
    for figure in figures:  # every figure is a ratio of two measurements of the same run
        assert figure["value"] > 0 and figure["baseline_value"] > 0 and figure["baseline"]
        assert math.isfinite(figure["ratio"])
    assert re.fullmatch(r"slurm\S* \d+\.\d+\.\d+", data["machine"]["slurm"])
    markdown = (tmp_path / "RESULTS.md").read_text()
    assert "auction-pipeline bench --quick" in markdown
    assert "## Where a target is missed" in markdown  # benchmarks/analysis.md, appended
    assert markdown.count("\n| ") == len(figures) + 1  # header + one row per figure
    assert all(f"| {f['case']} |" in markdown for f in figures)
    assert "wrote" in result.stdout and "RESULTS.md" in result.stdout
    # Nothing the benchmarks started is left in the queue: Dask workers, Parsl blocks, arrays.
    queue = run_slurm(["squeue", "--noheader", "-o", "%i %j"]).stdout.splitlines()
    ours = ("parsl", "bench-submitit", WORKER_JOB_NAME)
    assert [line for line in queue if line.split(" ")[-1].startswith(ours)] == []


def test_market_extraction_is_a_ratio_over_every_lot_and_its_follow_ups() -> None:
    figure = bench_market_extraction(2, 1)
    # 2 lots of each of the three marketplaces; eBay's have one follow-up (the description),
    # Catawiki's two (bidding and bids).
    assert figure.benchmark == "extraction"
    assert figure.case == (
        "extract+validate+normalise, 6 marketplace lot pages + 6 follow-ups, one core"
    )
    assert figure.value > 0 and figure.baseline_value > 0 and math.isfinite(figure.ratio)
    assert figure.met == (figure.ratio >= 0.5)
    assert re.fullmatch(
        r"mean lot page \d+\.\d kB, follow-up \d+\.\d kB; ratio per marketplace: "
        r"ebay \d\.\d\d, liveauctioneers \d\.\d\d, catawiki \d\.\d\d",
        figure.note,
    ), figure.note


@pytest.mark.parametrize("marketplace", ["ebay", "liveauctioneers", "catawiki"])
def test_market_extraction_refuses_to_time_lots_that_do_not_validate(marketplace: str) -> None:
    # A renamed key empties a required field: every such lot fails, and timing failures
    # would measure nothing.
    config = DemoConfig(renamed_json_key=frozenset({marketplace}))
    with pytest.raises(RuntimeError, match=f"does not validate: site '{marketplace}'"):
        bench_market_extraction(1, 1, config=config)
