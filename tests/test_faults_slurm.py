"""Faults injected into the real local Slurm cluster while the daily pipeline runs.

Each test starts ``auction-pipeline run --profile dev`` against a slow demo site, breaks
something at a chosen moment (a worker job scancelled mid-scrape, the flow process killed),
and then checks the data: lots in the database against the demo catalogue, WARC records,
requests the demo site received, and what Slurm says of the jobs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import CLI, REPO_ROOT, wait_for
from warcio.archiveiterator import ArchiveIterator

from infra import localslurm
from infra.slurm import accounted_jobs, job_records, run_slurm
from infra.watchdog import jobs_of_run
from sites.demo.catalogue import HOUSES, Catalogue, DemoConfig
from sites.demo.server import DemoSite

pytestmark = [pytest.mark.slurm, pytest.mark.prefect_server]

DAY = date(2026, 3, 14)


def _start_run(
    prefect_api_url: str, site: DemoSite, data_root: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """`auction-pipeline run --profile dev` for DAY in the background, output to files.

    The three houses only: these tests are about Slurm's faults, and the marketplaces' many
    small requests would only lengthen them under the demo's added latency.
    """
    houses = [arg for house in HOUSES for arg in ("--site", house)]
    return subprocess.Popen(
        [CLI, "run", "--profile", "dev", "--date", DAY.isoformat(),
         "--data-root", str(data_root), "--json", *houses],
        env={**os.environ, "PREFECT_API_URL": prefect_api_url, "DEMO_SITE_URL": site.url,
             "AUCTION_PIPELINE__DEV__WORKER_START_TIMEOUT": "120", **(env or {})},
        stdout=open(data_root.parent / "run.out", "w"),
        stderr=open(data_root.parent / "run.err", "w"),
        text=True, cwd=REPO_ROOT,
    )  # fmt: skip


def _finish(run: subprocess.Popen[str], data_root: Path, timeout: float = 600) -> dict[str, Any]:
    run.wait(timeout=timeout)
    err = (data_root.parent / "run.err").read_text()
    assert run.returncode == 0, err[-4000:]
    summary: dict[str, Any] = json.loads((data_root.parent / "run.out").read_text())
    return summary


def _scrapes(api: httpx.Client, since: str, state: str) -> list[dict[str, Any]]:
    """The scrape task runs started after ``since`` (ISO time) that are in ``state``."""
    found: list[dict[str, Any]] = api.post(
        "/task_runs/filter",
        json={"task_runs": {"name": {"like_": "scrape-"},
                            "state": {"type": {"any_": [state]}},
                            "start_time": {"after_": since}}},
    ).json()  # fmt: skip
    return found


def _running_scrape(api: httpx.Client, since: str) -> tuple[str, str, str] | None:
    """(task run id, site, Slurm job id) of a scrape task started after ``since`` (ISO time)
    and running on a worker job, once it has logged where it runs (the session's server holds
    earlier tests' runs too)."""
    for task_run in _scrapes(api, since, "RUNNING"):
        logs = api.post(
            "/logs/filter", json={"logs": {"task_run_id": {"any_": [task_run["id"]]}}}
        ).json()
        for log in logs:
            if match := re.match(r"running in Slurm job (\d+)", log["message"]):
                return task_run["id"], task_run["name"].removeprefix("scrape-"), match[1]
    return None


@dataclass(frozen=True)
class MidScrape:
    """A run caught while a site's scrape runs on a worker job and has fetched pages."""

    run: subprocess.Popen[str]
    task_run_id: str
    house: str
    job_id: str
    fetched: int


@contextlib.contextmanager
def _mid_scrape(
    prefect_api_url: str,
    site: DemoSite,
    data_root: Path,
    api: httpx.Client,
    env: dict[str, str] | None = None,
) -> Iterator[MidScrape]:
    """Start the run; yield once a scrape runs on a worker job and has sent requests. The
    run is killed on the way out if the test has not waited for it."""
    since = dt.datetime.now(dt.UTC).isoformat()
    run = _start_run(prefect_api_url, site, data_root, env)
    try:
        task_run_id, house, job_id = wait_for(
            lambda: _running_scrape(api, since), 180, "a scrape task ran on a worker job"
        )
        fetched = wait_for(lambda: site.request_count(f"/{house}/"), 60, f"{house} got requests")
        yield MidScrape(run, task_run_id, house, job_id, fetched)
    finally:
        if run.poll() is None:
            run.kill()


def _task_run_jobs(api: httpx.Client, task_run_id: str) -> list[str]:
    """The Slurm jobs a task run started in, in order (each attempt logs its place first)."""
    logs = api.post(
        "/logs/filter",
        json={"logs": {"task_run_id": {"any_": [task_run_id]}}, "sort": "TIMESTAMP_ASC"},
    ).json()
    return [m[1] for log in logs if (m := re.match(r"running in Slurm job (\d+)", log["message"]))]


def _expected_lots(site: DemoSite) -> set[tuple[str, str]]:
    catalogue = Catalogue(site.config)
    return {(slug, lot.lot_id) for slug in HOUSES for lot in catalogue.lots(slug, DAY)}


def _database(data_root: Path) -> tuple[set[tuple[str, str]], int]:
    """The stored (site, lot) pairs and the number of observation rows of DAY."""
    conn = sqlite3.connect(data_root / "auction.sqlite")
    try:
        lots = set(conn.execute("SELECT site, lot_key FROM lots").fetchall())
        (observations,) = conn.execute(
            "SELECT count(*) FROM observations WHERE crawl_date = ?", (DAY.isoformat(),)
        ).fetchone()
    finally:
        conn.close()
    return lots, observations


def _warc_urls(data_root: Path, house: str) -> Counter[str]:
    """How often each URL has a response record in the site's WARC of DAY."""
    path = data_root / "warc" / DAY.isoformat() / f"{house}-{DAY.isoformat()}.warc.gz"
    with open(path, "rb") as stream:
        return Counter(
            record.rec_headers.get_header("WARC-Target-URI")
            for record in ArchiveIterator(stream)
            if record.rec_type == "response"
        )


def test_a_task_whose_workers_keep_dying_fails_with_the_slurm_reason_after_the_bound(
    slurm_conf: Path, prefect_api_url: str, tmp_path: Path
) -> None:
    data_root = tmp_path / "data"
    api = httpx.Client(base_url=prefect_api_url, timeout=30)
    # The bound is Dask's allowed-failures (3 by default); 0 makes the first loss the last.
    bound = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
    with (
        DemoSite(DemoConfig(latency=0.3)) as site,
        _mid_scrape(prefect_api_url, site, data_root, api, bound) as mid,
    ):
        run_slurm(["scancel", mid.job_id])
        mid.run.wait(timeout=300)
        expected = _expected_lots(site)
    run, task_run_id, house, job_id = mid.run, mid.task_run_id, mid.house, mid.job_id
    assert run.returncode != 0
    summary = json.loads((data_root.parent / "run.out").read_text())
    assert summary["state"] == "FAILED"
    # The site's failure names Dask's verdict and what Slurm did to the job (so does any
    # other site whose task Dask had already assigned to that worker)...
    failed = {name: row["error"] for name, row in summary["sites"].items() if row["error"]}
    assert house in failed and len(failed) < len(summary["sites"]), failed
    for error in failed.values():
        assert error.startswith("scrape: KilledWorker"), error
        assert f"job {job_id} on n" in error and "was cancelled" in error, error
    # ...its task run is Crashed with the same text, not left Running...
    task_run = api.get(f"/task_runs/{task_run_id}").json()
    assert task_run["state_type"] == "CRASHED" and f"job {job_id}" in task_run["state"]["message"]
    # ...and the other sites were collected and loaded.
    lots, _ = _database(data_root)
    assert lots == {(name, lot) for name, lot in expected if name not in failed}


def _scraped(data_root: Path) -> set[str]:
    """The sites whose WARC of DAY is complete (it appears under its name only then)."""
    warcs = (data_root / "warc" / DAY.isoformat()).glob(f"*-{DAY.isoformat()}.warc.gz")
    return {path.name.removesuffix(f"-{DAY.isoformat()}.warc.gz") for path in warcs}


def _leftovers(data_root: Path) -> list[Path]:
    """Temp files a killed writer could leave: none may remain after a completed run."""
    return [p for p in data_root.rglob(".*") if p.is_file()]


def test_a_worker_job_scancelled_mid_scrape_has_its_site_redone_once(
    slurm_conf: Path, prefect_api_url: str, tmp_path: Path
) -> None:
    data_root = tmp_path / "data"
    api = httpx.Client(base_url=prefect_api_url, timeout=30)
    with (
        DemoSite(DemoConfig(latency=0.3)) as site,
        _mid_scrape(prefect_api_url, site, data_root, api) as mid,
    ):
        run_slurm(["scancel", mid.job_id])
        summary = _finish(mid.run, data_root)
        requests_to_house = site.request_count(f"/{mid.house}/")
        expected = _expected_lots(site)
    task_run_id, house, job_id = mid.task_run_id, mid.house, mid.job_id

    assert summary["state"] == "COMPLETED", summary
    # Slurm cancelled the job mid-scrape...
    (record,) = job_records([job_id])
    assert record.state == "CANCELLED"
    # ...and the site was scraped again on another worker job, in the same Prefect task run,
    # which ended Completed at its first run: the loss burned no retry.
    task_run = api.get(f"/task_runs/{task_run_id}").json()
    assert task_run["state_type"] == "COMPLETED" and task_run["run_count"] == 1
    assert _task_run_jobs(api, task_run_id)[0] == job_id
    assert len(set(_task_run_jobs(api, task_run_id))) == 2  # redone in another job
    assert requests_to_house > mid.fetched  # the redo fetched again

    # Output complete and not duplicated: every lot once, one observation each, and the
    # site's WARC holds each URL once (the killed attempt's partial file is gone).
    lots, observations = _database(data_root)
    assert lots == expected
    assert observations == len(expected)
    urls = _warc_urls(data_root, house)
    assert urls and max(urls.values()) == 1, urls.most_common(3)
    assert not _leftovers(data_root)


def _completed_scrape_on_a_live_job(api: httpx.Client, since: str) -> tuple[str, str] | None:
    """(task run id, Slurm job id) of a scrape that completed after ``since`` on a worker
    job that still runs (its result is held in that worker's memory)."""
    running = set(run_slurm(["squeue", "-h", "-t", "RUNNING", "-o", "%i"]).stdout.split())
    for task_run in _scrapes(api, since, "COMPLETED"):
        jobs = _task_run_jobs(api, task_run["id"])
        if jobs and jobs[-1] in running:
            return task_run["id"], jobs[-1]
    return None


@pytest.mark.timeout(900)
def test_a_worker_lost_after_its_tasks_completed_runs_none_of_them_again(
    slurm_conf: Path, prefect_api_url: str, tmp_path: Path
) -> None:
    """Prefect #15442: Dask recomputes the results a lost worker held, so tasks that had
    completed ran again. Here a worker job is scancelled right after a site's scrape
    completed on it; that scrape must not run again (nor fetch anything)."""
    data_root = tmp_path / "data"
    api = httpx.Client(base_url=prefect_api_url, timeout=30)
    since = dt.datetime.now(dt.UTC).isoformat()
    with DemoSite(DemoConfig(latency=0.2)) as site:
        run = _start_run(prefect_api_url, site, data_root)
        try:
            task_run_id, job_id = wait_for(
                lambda: _completed_scrape_on_a_live_job(api, since), 240,
                "a scrape completed on a worker job that still runs",
            )  # fmt: skip
            house = api.get(f"/task_runs/{task_run_id}").json()["name"].removeprefix("scrape-")
            requests_then = site.request_count(f"/{house}/")
            run_slurm(["scancel", job_id])
            summary = _finish(run, data_root)
        finally:
            if run.poll() is None:
                run.kill()
        requests_after = site.request_count(f"/{house}/")
        expected = _expected_lots(site)

    assert summary["state"] == "COMPLETED", summary
    task_run = api.get(f"/task_runs/{task_run_id}").json()
    assert task_run["state_type"] == "COMPLETED" and task_run["run_count"] == 1, task_run
    assert _task_run_jobs(api, task_run_id) == [job_id]  # it ran once, in the lost job
    assert requests_after == requests_then  # and nothing of its site was fetched again
    (record,) = job_records([job_id])
    assert record.state == "CANCELLED"
    lots, observations = _database(data_root)
    assert lots == expected and observations == len(expected)


def _processes_of_jobs(job_ids: list[str]) -> list[int]:
    """Processes on this machine started inside one of the Slurm jobs (their SLURM_JOB_ID)."""
    wanted = {f"SLURM_JOB_ID={job}".encode() for job in job_ids}
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):
            if wanted & set(environ.read_bytes().split(b"\0")):
                found.append(int(environ.parent.name))
    return found


def _end_processes_of(job_ids: list[str]) -> None:
    """Make sure no process of the cancelled jobs is left to publish a WARC beside the
    re-run. The local cluster tracks a job's processes by process group; under load a few
    were still found after their jobs had left the queue (killed but not yet gone, or out of
    the group). Wait for them, then end what remains, as a cluster's proctrack/cgroup does."""
    deadline = time.monotonic() + 60
    while (left := _processes_of_jobs(job_ids)) and time.monotonic() < deadline:
        if time.monotonic() > deadline - 45:  # 15 s of grace, then SIGKILL
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    assert not left, f"processes {left} of the cancelled jobs {job_ids} survived SIGKILL"


def _flow_run_of(api: httpx.Client, data_root: Path, since: str) -> dict[str, Any] | None:
    """The flow run started after ``since`` that writes to ``data_root``."""
    runs = api.post(
        "/flow_runs/filter", json={"flow_runs": {"start_time": {"after_": since}}}
    ).json()
    mine = [r for r in runs if r["parameters"].get("data_root") == str(data_root)]
    return mine[0] if mine else None


def _jobs_of_run(flow_run_id: str) -> list[str]:
    """The run's worker jobs in the queue, by the comment each carries."""
    return jobs_of_run(run_slurm(["squeue", "-h", "-o", "%i %k"]).stdout, flow_run_id)


@pytest.mark.timeout(900)  # two runs of the houses, under the whole suite's load
def test_a_killed_flow_process_leaves_nothing_running_and_is_rerun_reusing_its_sites(
    slurm_conf: Path, prefect_api_url: str, tmp_path: Path
) -> None:
    data_root = tmp_path / "data"
    api = httpx.Client(base_url=prefect_api_url, timeout=30)
    since = dt.datetime.now(dt.UTC).isoformat()
    with DemoSite(DemoConfig(latency=0.2)) as site:
        run = _start_run(prefect_api_url, site, data_root)
        try:
            wait_for(lambda: _scraped(data_root), 240, "a site's scrape finished")
            flow_run = wait_for(lambda: _flow_run_of(api, data_root, since), 30, "the flow run")
            jobs = _jobs_of_run(flow_run["id"])
            assert jobs, "the run's worker jobs carry its id as their comment"
            run.send_signal(signal.SIGKILL)  # the flow process dies without a word
            run.wait(timeout=30)
            killed = time.monotonic()
            # Its watchdog ends what it left: the run, its task runs and its worker jobs.
            wait_for(lambda: not _jobs_of_run(flow_run["id"]), 30, "the run's worker jobs gone")
            ended = wait_for(
                lambda: (
                    (r := api.get(f"/flow_runs/{flow_run['id']}").json())["state_type"] == "CRASHED"
                    and r
                ),
                30,
                "the flow run marked CRASHED",
            )
            task_runs = api.post(
                "/task_runs/filter", json={"flow_runs": {"id": {"any_": [flow_run["id"]]}}}
            ).json()
            settled = time.monotonic() - killed
        finally:
            if run.poll() is None:
                run.kill()
            _end_processes_of(jobs)  # as proctrack/cgroup would (see the helper)
        assert "ended without finishing its run" in ended["state"]["message"]
        assert task_runs and {t["state_type"] for t in task_runs} <= {"COMPLETED", "CRASHED"}
        assert "CRASHED" in {t["state_type"] for t in task_runs}  # those it had running
        assert {r.state for r in job_records(jobs)} <= {"CANCELLED", "COMPLETED"}
        assert settled < 30, settled
        finished = _scraped(data_root)
        assert finished and finished < set(HOUSES), finished
        before = {house: site.request_count(f"/{house}/") for house in HOUSES}

        rerun = _start_run(prefect_api_url, site, data_root)
        summary = _finish(rerun, data_root)
        during_rerun = {house: site.request_count(f"/{house}/") - before[house] for house in HOUSES}
        expected = _expected_lots(site)

    assert summary["state"] == "COMPLETED", summary
    # The finished sites were reused (no request), the others fetched.
    assert {house for house, sent in during_rerun.items() if sent == 0} == finished, during_rerun
    assert all(summary["sites"][house]["reused_backup"] for house in finished)
    # Same data as an undisturbed run: every lot of the catalogue once.
    lots, observations = _database(data_root)
    assert lots == expected
    assert observations == len(expected)
    assert not _leftovers(data_root)


@pytest.mark.timeout(900)  # the sites one after another on one job at a time
def test_work_outlasting_a_worker_jobs_one_minute_walltime_continues_on_replacements(
    slurm_conf: Path, prefect_api_url: str, tmp_path: Path
) -> None:
    data_root = tmp_path / "data"
    # One worker job at a time, with a 1-minute walltime: the sites' scrapes, one after
    # another, need more than one job's life. Workers retire 30 +/- 10 s into the job.
    limits = {
        "AUCTION_PIPELINE__DEV__WALLTIME": "00:01:00",
        "AUCTION_PIPELINE__DEV__ADAPT__MAXIMUM_JOBS": "1",
    }
    started = time.monotonic()
    with DemoSite(DemoConfig(latency=0.15)) as site:
        summary = _finish(_start_run(prefect_api_url, site, data_root, limits), data_root)
        expected = _expected_lots(site)
    elapsed = time.monotonic() - started

    assert summary["state"] == "COMPLETED", summary
    jobs = {job["job_id"] for job in summary["slurm_jobs"]}
    records = job_records(sorted(jobs))
    # The work went on in replacement jobs; each job left before Slurm's limit: retired
    # (COMPLETED), or cancelled by adapt or the run's end once retired, never TIMEOUT. On a
    # loaded machine slurmd has once failed to start a job's batch step ("missing from batch
    # node"), which Slurm records as NODE_FAIL; that job was replaced like any other.
    assert len(records) >= 2, records
    assert {r.state for r in records} <= {"COMPLETED", "CANCELLED", "NODE_FAIL"}, records
    assert "COMPLETED" in {r.state for r in records}, records
    assert all(r.start and r.end and (r.end - r.start).total_seconds() <= 60 for r in records)
    assert elapsed > 60  # more than one job's walltime of work
    lots, observations = _database(data_root)
    assert lots == expected
    assert observations == len(expected)
    assert not _leftovers(data_root)


def _kill_node(state_dir: Path, node: str) -> list[int]:
    """The virtual node dies at once: its slurmd and every process of the jobs it runs
    (slurmstepd and its children); the pids killed."""
    slurmd = int((state_dir / "run" / f"slurmd-{node}.pid").read_text())
    jobs = {r.job_id for r in job_records(_running_jobs()) if r.nodes == node}
    victims = [slurmd]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        stepd = any(cmdline.startswith(f"slurmstepd: [{job}.".encode()) for job in jobs)
        child = any(f"SLURM_JOB_ID={job}".encode() in environ for job in jobs)
        if stepd or child:
            victims.append(int(entry.name))
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return victims


def _running_jobs() -> list[str]:
    return run_slurm(["squeue", "-h", "-t", "R", "-o", "%i"]).stdout.split()


def test_a_lost_node_is_named_node_fail_and_its_work_is_redone_on_other_nodes(
    slurm_conf: Path, prefect_api_url: str, tmp_path: Path
) -> None:
    data_root = tmp_path / "data"
    api = httpx.Client(base_url=prefect_api_url, timeout=30)
    # Slow enough that the redone scrape outlasts Slurm's node-failure detection (~15 s).
    with DemoSite(DemoConfig(latency=0.4)) as site:
        node = ""
        try:
            with _mid_scrape(prefect_api_url, site, data_root, api) as mid:
                (record,) = job_records([mid.job_id])
                node = record.nodes
                assert len(_kill_node(slurm_conf.parent, node)) > 1
                summary = _finish(mid.run, data_root)
        finally:
            if node:
                localslurm.start_node(slurm_conf.parent, node)
        expected = _expected_lots(site)
    task_run_id, job_id = mid.task_run_id, mid.job_id

    assert summary["state"] == "COMPLETED", summary
    # Slurm itself records CANCELLED: dask-jobqueue cancelled the job of the worker it lost
    # before Slurm declared the node down. The product judges it by the node.
    (record,) = job_records([job_id])
    assert record.state in ("CANCELLED", "NODE_FAIL"), record
    # The site's scrape was redone in another job, on another node, in the same task run. On
    # a loaded machine the redo can lose its worker too (CI once saw three jobs): each
    # attempt logs its job, and none after the first may be on the lost node.
    jobs = _task_run_jobs(api, task_run_id)
    places = {p["slurm_job_id"]: p["node"] for p in summary["task_places"]}
    assert jobs[0] == job_id and job_id not in jobs[1:] and len(jobs) >= 2, (jobs, places)
    assert api.get(f"/task_runs/{task_run_id}").json()["run_count"] == 1
    assert node not in {places.get(j) for j in jobs[1:]}, (node, jobs, places)
    # The flow run's log names the loss as Slurm saw it.
    logs = api.post(
        "/logs/filter", json={"logs": {"flow_run_id": {"any_": [summary["flow_run_id"]]}}}
    ).json()
    named = [m["message"] for m in logs if f"Dask worker job {job_id}" in m["message"]]
    assert named and "lost its node (NODE_FAIL)" in named[0], named
    assert "scrape_with_progress" in named[0]
    lots, observations = _database(data_root)
    assert lots == expected
    assert observations == len(expected)


@pytest.fixture(scope="module")
def accounting_conf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A second local cluster, with slurmdbd on a private MariaDB: sacct works there."""
    state_dir = tmp_path_factory.mktemp("slurm-accounting")
    conf = localslurm.up(state_dir, nodes=2, log=lambda line: None, accounting=True)
    try:
        yield conf
    finally:
        localslurm.down(state_dir, log=lambda line: None)


def test_with_accounting_a_cancelled_worker_job_is_named_with_who_cancelled_it(
    accounting_conf: Path,
    prefect_api_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLURM_CONF", str(accounting_conf))  # this test's commands and the run
    data_root = tmp_path / "data"
    api = httpx.Client(base_url=prefect_api_url, timeout=30)
    with (
        DemoSite(DemoConfig(latency=0.3)) as site,
        _mid_scrape(prefect_api_url, site, data_root, api) as mid,
    ):
        run_slurm(["scancel", mid.job_id])
        summary = _finish(mid.run, data_root)
        expected = _expected_lots(site)
    job_id = mid.job_id
    assert summary["state"] == "COMPLETED", summary
    # Slurm's accounting keeps the job and who cancelled it (root here: uid 0)...
    (record,) = [r for r in accounted_jobs([job_id]) or [] if r.job_id == job_id]
    assert (record.state, record.reason) == ("CANCELLED", f"by {os.geteuid()}")
    # ...and the run's log says so.
    logs = api.post(
        "/logs/filter", json={"logs": {"flow_run_id": {"any_": [summary["flow_run_id"]]}}}
    ).json()
    named = [m["message"] for m in logs if f"Dask worker job {job_id}" in m["message"]]
    assert named and f"was cancelled by user {os.geteuid()} (CANCELLED)" in named[0], named
    lots, observations = _database(data_root)
    assert lots == expected and observations == len(expected)
