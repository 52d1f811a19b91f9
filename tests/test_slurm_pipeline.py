"""End to end on the real local Slurm cluster: the daily pipeline on profile ``dev``.

Proves every task ran inside a Slurm job on partition ``dev`` on at least two nodes, the
Prefect API lists every task run Completed, the database holds every lot the demo site
offers for the date, and the archive bag verifies. Also: a partition that cannot start jobs
fails the run in bounded time, naming the partition and Slurm's reason, and leaves no job.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from datetime import date
from pathlib import Path

import bagit
import httpx
import pytest
from conftest import recorded_task_runs
from expected import SITES, all_lots

from infra.profiles import load_profile
from infra.runner import WORKER_JOB_NAME
from infra.slurm import run_slurm
from sites.demo.server import DemoSite

pytestmark = [pytest.mark.slurm, pytest.mark.prefect_server]

DAY = date(2026, 3, 14)


def test_daily_pipeline_on_dev_partition(
    slurm_conf: Path, prefect_api_url: str, demo_site: DemoSite, cli, tmp_path: Path
) -> None:
    data_root = tmp_path / "data"
    result = cli(
        "run",
        "--profile",
        "dev",
        "--date",
        DAY.isoformat(),
        "--data-root",
        str(data_root),
        "--json",
        env={
            "PREFECT_API_URL": prefect_api_url,
            "DEMO_SITE_URL": demo_site.url,
            "AUCTION_PIPELINE__DEV__WORKER_START_TIMEOUT": "120",
            # The profile's prologue, plus a line each worker job writes to its stderr.
            "AUCTION_PIPELINE__DEV__PROLOGUE": json.dumps(
                [*load_profile("dev").prologue, 'echo "prologue on $SLURMD_NODENAME" >&2']  # type: ignore[union-attr]
            ),
        },
    )
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-2000:]
    summary = json.loads(result.stdout)
    assert summary["state"] == "COMPLETED"

    # Every task ran in a Slurm job on partition dev, on at least two distinct nodes.
    places = summary["task_places"]
    assert len(places) == len(SITES) * 2 + 2  # scrape + process per site, load, archive
    assert all(p["slurm_job_id"] for p in places), places
    assert {p["partition"] for p in places} == {"dev"}
    assert len({p["node"] for p in places}) >= 2, places
    assert {j["partition"] for j in summary["slurm_jobs"]} == {"dev"}

    # The Prefect API lists every task run of the flow run, all Completed.
    runs = recorded_task_runs(prefect_api_url, summary["flow_run_id"], len(places))
    assert len(runs) == len(places)
    assert {r["state_type"] for r in runs} == {"COMPLETED"}, [
        (r["name"], r["state_type"]) for r in runs
    ]

    # The database holds every lot the demo houses offer for that date, and every lot the
    # marketplaces' searches find (tests/test_marketplaces_slurm.py checks their values).
    expected = all_lots(demo_site.config, DAY)
    conn = sqlite3.connect(data_root / "auction.sqlite")
    stored = set(conn.execute("SELECT site, lot_key FROM lots").fetchall())
    observed = conn.execute(
        "SELECT count(*) FROM observations WHERE crawl_date = ?", (DAY.isoformat(),)
    ).fetchone()[0]
    conn.close()
    assert stored == expected
    assert observed == len(expected)
    assert sum(s["lots"] for s in summary["sites"].values()) == len(expected)

    # The archive's checksums verify, and it holds the day's lots.
    bag = bagit.Bag(summary["archive"])
    bag.validate()
    assert "sha256" in bag.algorithms
    lines = (Path(summary["archive"]) / "data" / "tables" / "lots.csv").read_text().splitlines()
    assert len(lines) == len(expected) + 1

    # The UI shows the per-site table and the job script as artifacts of the run.
    response = httpx.post(
        f"{prefect_api_url}/artifacts/filter",
        json={"artifacts": {"flow_run_id": {"any_": [summary["flow_run_id"]]}}},
        timeout=30,
    )
    artifacts = {a["key"]: a for a in response.json()}
    scrape_progress = {f"scrape-{site}" for site in SITES}
    assert set(artifacts) == {"daily-pipeline-sites", "slurm-job-script", *scrape_progress}
    # Each site's scrape showed its progress through the lot pages, on its own task run.
    for key in scrape_progress:
        assert artifacts[key]["type"] == "progress" and float(artifacts[key]["data"]) == 100.0
        assert artifacts[key]["task_run_id"]
    table = artifacts["daily-pipeline-sites"]["data"]
    table_rows = json.loads(table) if isinstance(table, str) else table
    assert {row["site"] for row in table_rows} == set(SITES)
    assert sum(row["new lots"] for row in table_rows) == len(expected)
    assert "#SBATCH -p dev" in artifacts["slurm-job-script"]["data"]

    # What the worker jobs wrote to stderr outside any task reached the run's log in the UI.
    logs = httpx.post(
        f"{prefect_api_url}/logs/filter",
        json={"logs": {"flow_run_id": {"any_": [summary["flow_run_id"]]}}},
        timeout=30,
    ).json()
    forwarded = {m["message"] for m in logs if m["message"].startswith("[Slurm job")}
    job_ids = {str(j["job_id"]) for j in summary["slurm_jobs"]}
    assert forwarded and all(
        re.fullmatch(r"\[Slurm job (\d+)\] prologue on n\d", m) for m in forwarded
    ), forwarded
    assert {re.search(r"\d+", m).group() for m in forwarded} >= job_ids  # type: ignore[union-attr]

    # The data root the run created is group-private: other users cannot even traverse it.
    assert data_root.stat().st_mode & 0o777 == 0o750

    # The rendered job script was saved where the user can read it.
    scripts = list((data_root / "logs" / "slurm").glob("worker-job-*.sh"))
    assert scripts and "#SBATCH -p dev" in scripts[0].read_text()


def test_partition_that_cannot_start_jobs_fails_in_bounded_time(
    slurm_conf: Path, prefect_api_url: str, demo_site: DemoSite, cli, tmp_path: Path
) -> None:
    run_slurm(["scontrol", "create", "PartitionName=closed", "Nodes=ALL", "State=DOWN"])
    try:
        started = time.monotonic()
        result = cli(
            "run",
            "--profile",
            "dev",
            "--date",
            DAY.isoformat(),
            "--site",
            "harrow-finch",
            "--data-root",
            str(tmp_path / "data"),
            env={
                "PREFECT_API_URL": prefect_api_url,
                "DEMO_SITE_URL": demo_site.url,
                "AUCTION_PIPELINE__DEV__PARTITION": "closed",
                "AUCTION_PIPELINE__DEV__WORKER_START_TIMEOUT": "15",
            },
            timeout=180,
        )
        elapsed = time.monotonic() - started
        assert result.returncode == 1, result.stdout + result.stderr
        output = result.stdout + result.stderr
        assert "'closed'" in output and "PartitionDown" in output, output[-3000:]
        assert elapsed < 150
        # Closing the cluster cancelled the pending worker job: nothing is left queued.
        queue = run_slurm(["squeue", "--noheader", "-p", "closed", "-o", "%i"]).stdout
        assert queue.strip() == ""
    finally:
        run_slurm(["scontrol", "delete", "PartitionName=closed"], check=False)


def test_a_worker_job_slurm_refuses_fails_the_run_at_once_with_sbatchs_reason(
    slurm_conf: Path,
    prefect_api_url: str,
    demo_site: DemoSite,
    cli,
    tmp_path: Path,
) -> None:
    # sbatch --test-only also names e.g. more memory than any node has ("Requested node
    # configuration is not available"); one refusal is enough to test the path.
    data_root = tmp_path / "data"
    started = time.monotonic()
    result = cli(
        "run", "--profile", "dev", "--date", DAY.isoformat(), "--site", "harrow-finch",
        "--data-root", str(data_root),
        env={
            "PREFECT_API_URL": prefect_api_url,
            "DEMO_SITE_URL": demo_site.url,
            "AUCTION_PIPELINE__DEV__PARTITION": "nope",
            "AUCTION_PIPELINE__DEV__WORKER_START_TIMEOUT": "300",  # not what ends the run
        },
        timeout=180,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert "Slurm refuses the Dask worker job of profile 'dev'" in output, output[-3000:]
    assert "invalid partition specified: nope" in output, output[-3000:]
    assert "AUCTION_PIPELINE__DEV__<KEY>" in output
    assert elapsed < 60  # well before the 300 s worker_start_timeout
    # Nothing was submitted, and the scrape never started: no page backup was written.
    assert not list(data_root.rglob("*.warc.gz"))
    queue = run_slurm(["squeue", "--noheader", "--name", WORKER_JOB_NAME, "-o", "%i"]).stdout
    assert queue.strip() == ""
