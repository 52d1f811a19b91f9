"""The command line as a user meets it: bad input, the demo, a run with failing sites, and
the local cluster's status/down commands."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
from datetime import date
from pathlib import Path

import bagit
import httpx
import pytest
from conftest import CLI, REPO_ROOT
from expected import SITES, all_lots

from infra import localslurm
from sites.demo.catalogue import Catalogue, DemoConfig
from sites.demo.server import DemoSite
from sites.loader import SITES_DIR
from tasks.history import lot_history, seller_activity
from tasks.store import database_url_for, table_rows

# Commands run without PREFECT_API_URL start a Prefect server with its history in the
# checkout's .state/prefect: one such test at a time.
pytestmark = pytest.mark.xdist_group("checkout-state")


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["run", "--profile", "gpu", "--date", "2026-03-14"], {}, "unknown profile 'gpu'"),
        (
            ["run", "--profile", "local", "--date", "2026-03-14", "--site", "sothebys"],
            {},
            "unknown site(s): sothebys",
        ),
        (["run", "--profile", "local", "--date", "14/03/2026"], {}, "invalid date '14/03/2026'"),
        (["run", "--profile", "local", "--date", "2026-02-30"], {}, "invalid date '2026-02-30'"),
        (
            ["run", "--profile", "dev", "--date", "2026-03-14"],
            {"AUCTION_PIPELINE_PROFILES": "/nonexistent/profiles.yaml"},
            "cannot read profiles file /nonexistent/profiles.yaml",
        ),
        (
            ["run", "--profile", "dev", "--date", "2026-03-14"],
            {"AUCTION_PIPELINE__DEV__WALLTIME": "forever"},
            "walltime 'forever' is not [D-]HH:MM:SS",
        ),
    ],
)
def test_bad_input_gets_one_line_error_and_writes_nothing(
    cli, tmp_path: Path, args: list[str], env: dict[str, str], named: str
) -> None:
    data_root = tmp_path / "data"
    result = cli(*args, "--data-root", str(data_root), env=env, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert named in result.stderr
    assert not data_root.exists()


def test_unreachable_prefect_api_is_named_and_nothing_is_written(cli, tmp_path: Path) -> None:
    data_root = tmp_path / "data"
    result = cli(
        "run",
        "--profile",
        "local",
        "--date",
        "2026-03-14",
        "--data-root",
        str(data_root),
        env={"PREFECT_API_URL": "http://127.0.0.1:9/api"},
        timeout=60,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "the Prefect API at http://127.0.0.1:9/api (from PREFECT_API_URL) is not reachable" in (
        result.stderr
    )
    assert not data_root.exists()


def test_demo_runs_with_its_own_prefect_server(cli, tmp_path: Path) -> None:
    """`demo` on embedded defaults: no PREFECT_API_URL, so it starts a server for the run."""
    data_root = tmp_path / "demo"
    result = cli(
        "demo",
        "--date",
        "2026-03-14",
        "--data-root",
        str(data_root),
        "--json",
        env={"PREFECT_API_URL": ""},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["state"] == "COMPLETED"
    assert set(summary["sites"]) == set(SITES)
    expected = all_lots(DemoConfig(), date(2026, 3, 14))
    for site, row in summary["sites"].items():
        assert row["lots"] == sum(1 for name, _ in expected if name == site), site
    bagit.Bag(summary["archive"]).validate()


def test_failing_sites_fail_alone_and_the_run_ends_failed(
    cli, prefect_api_url: str, tmp_path: Path
) -> None:
    config = DemoConfig(
        unreachable=frozenset({"hotel-lumiere"}), changed_layout=frozenset({"harrow-finch"})
    )
    data_root = tmp_path / "data"
    with DemoSite(config) as site:
        result = cli(
            "run",
            "--profile",
            "local",
            "--date",
            "2026-03-14",
            "--data-root",
            str(data_root),
            "--json",
            env={"PREFECT_API_URL": prefect_api_url, "DEMO_SITE_URL": site.url},
        )
    assert result.returncode == 1, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["state"] == "FAILED"
    sites = summary["sites"]
    assert "503" in sites["hotel-lumiere"]["error"]
    layout_error = sites["harrow-finch"]["error"]
    assert "LayoutChangeError" in layout_error
    assert "title 0%" in layout_error and "sale_date 0%" in layout_error
    assert "/harrow-finch/lot/" in layout_error  # a sample URL
    for healthy in set(SITES) - {"harrow-finch", "hotel-lumiere"}:
        assert sites[healthy]["error"] is None and sites[healthy]["lots"] > 0, healthy
    assert "harrow-finch" in summary["message"] and "hotel-lumiere" in summary["message"]
    # Only the healthy sites reached the database; the changed layout's pages were kept.
    conn = sqlite3.connect(data_root / "auction.sqlite")
    assert {row[0] for row in conn.execute("SELECT DISTINCT site FROM lots")} == set(SITES) - {
        "harrow-finch",
        "hotel-lumiere",
    }
    conn.close()
    assert (data_root / "warc" / "2026-03-14" / "harrow-finch-2026-03-14.warc.gz").exists()
    assert (data_root / "quarantine" / "2026-03-14" / "harrow-finch.jsonl").exists()
    assert not (data_root / "processed" / "2026-03-14" / "harrow-finch.jsonl").exists()


def test_cluster_status_and_down_act_on_exactly_one_state_dir(
    cli, slurm_conf: Path, tmp_path: Path
) -> None:
    status = cli("cluster", "status", "--state-dir", str(slurm_conf.parent))
    assert status.returncode == 0, status.stderr
    assert "slurmctld" in status.stdout
    for node in ("n1", "n2", "n3"):
        assert f"{node:<8}dev" in status.stdout
    # A state dir with no cluster: `down` stops nothing, and the session's cluster lives on.
    other = cli("cluster", "down", "--state-dir", str(tmp_path / "none"))
    assert other.returncode == 0 and "no local cluster running" in other.stderr
    session_daemons = localslurm.running_daemons(slurm_conf.parent)
    assert "slurmctld" in session_daemons

    # A second, one-node cluster: `down` stops exactly its daemons, by pid.
    second = tmp_path / "second"
    up = cli("cluster", "up", "--state-dir", str(second), "--nodes", "1")
    assert up.returncode == 0, up.stderr
    started = localslurm.running_daemons(second)
    assert set(started) == {"munged", "slurmctld", "slurmd-n1"}
    down = cli("cluster", "down", "--state-dir", str(second))
    assert down.returncode == 0, down.stderr
    for name, pid in started.items():
        assert f"{name} (pid {pid})" in down.stderr
    assert localslurm.running_daemons(second) == {}
    assert localslurm.running_daemons(slurm_conf.parent) == session_daemons


def test_slurm_profile_on_a_real_cluster_needs_a_reachable_prefect_api(cli, tmp_path: Path) -> None:
    """Without PREFECT_API_URL, workers on other nodes could not report: stop, say why."""
    foreign_conf = tmp_path / "slurm.conf"
    foreign_conf.write_text("ClusterName=university\n")
    result = cli(
        "run",
        "--profile",
        "prod",
        "--date",
        "2026-03-14",
        "--data-root",
        str(tmp_path / "d"),
        env={"SLURM_CONF": str(foreign_conf), "PREFECT_API_URL": ""},
        timeout=60,
    )
    assert result.returncode == 2
    assert "export PREFECT_API_URL=" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "d").exists()


def test_postgresql_and_sqlite_give_the_same_tables(
    cli, prefect_api_url: str, postgres_url: str, demo_site: DemoSite, tmp_path: Path
) -> None:
    env = {"PREFECT_API_URL": prefect_api_url, "DEMO_SITE_URL": demo_site.url}
    for name, url in (("sqlite", None), ("postgresql", postgres_url)):
        backend_env = {**env, "AUCTION_PIPELINE_DATABASE_URL": url} if url else env
        result = cli(
            "run",
            "--profile",
            "local",
            "--date",
            "2026-03-15",
            "--data-root",
            str(tmp_path / name),
            "--json",
            env=backend_env,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert json.loads(result.stdout)["database"].startswith(name)
    sqlite_url = database_url_for(tmp_path / "sqlite")
    for table in ("houses", "sales", "lots", "observations"):
        rows = table_rows(sqlite_url, table)
        assert rows, table
        assert table_rows(postgres_url, table) == rows, table
    # The bags' tables, read back through each backend's queries, are the same bytes.
    sqlite_tables, pg_tables = (
        tmp_path / name / "archive" / "2026-03-15" / "data" / "tables"
        for name in ("sqlite", "postgresql")
    )
    names = sorted(path.name for path in sqlite_tables.iterdir())
    assert "lot_history.parquet" in names and "sellers.csv" in names
    assert names == sorted(path.name for path in pg_tables.iterdir())
    for name in names:
        assert (sqlite_tables / name).read_bytes() == (pg_tables / name).read_bytes(), name
    lot = table_rows(sqlite_url, "lots")[-1]
    history = lot_history(sqlite_url, lot["site"], lot["lot_key"])
    assert history.rows and history == lot_history(postgres_url, lot["site"], lot["lot_key"])
    sellers = seller_activity(sqlite_url, "ebay")
    assert sellers and sellers == seller_activity(postgres_url, "ebay")


def test_sites_check_shows_what_each_selector_extracts(cli, tmp_path: Path) -> None:
    from sites.demo.catalogue import HOUSES
    from sites.demo.pages import render_lot

    lot = Catalogue(DemoConfig()).lots("hotel-lumiere", date(2026, 3, 14))[0]
    page = tmp_path / "lot.html"
    page.write_text(render_lot(lot), encoding="utf-8")
    result = cli("sites", "check", "sites/hotel-lumiere.yaml", "--page", str(page), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "valid site definition 'hotel-lumiere'" in result.stdout
    assert repr(lot.title) in result.stdout and "record: ok" in result.stdout
    assert "sold_price_ref" in result.stdout and HOUSES["hotel-lumiere"].currency in result.stdout

    changed = tmp_path / "changed.html"
    changed.write_text(render_lot(lot, changed_layout=True), encoding="utf-8")
    result = cli("sites", "check", "sites/hotel-lumiere.yaml", "--page", str(changed), timeout=60)
    assert result.returncode == 0
    assert "title         MISSING" in result.stdout and "record: INVALID" in result.stdout

    offsite = cli(
        "sites", "check", str(SITES_DIR / "hotel-lumiere.yaml"), "--page", "http://10.0.0.1/x"
    )
    assert offsite.returncode == 3 and "not on this site's hosts" in offsite.stderr
    assert len(offsite.stderr.strip().splitlines()) == 1

    broken = tmp_path / "hotel-lumiere.yaml"
    broken.write_text(
        (SITES_DIR / "hotel-lumiere.yaml").read_text().replace('css: "h1', 'css: "h1[[[')
    )
    result = cli("sites", "check", str(broken), timeout=60)
    assert result.returncode == 2
    assert str(broken) in result.stderr and "title" in result.stderr


def test_deploy_refuses_bad_input_with_one_line(cli, tmp_path: Path) -> None:
    bad = tmp_path / "prefect.yaml"
    bad.write_text(
        "deployments:\n  - name: gpu\n    entrypoint: flows/daily.py:daily_pipeline\n"
        "    schedules: [{cron: '0 6 * * *', timezone: UTC}]\n"
        "    parameters: {profile: gpu}\n    work_pool: {name: auction-pipeline}\n"
    )
    nowhere = {"PREFECT_API_URL": "http://127.0.0.1:9/api"}
    unknown = cli("deploy", "--file", str(bad), env=nowhere)
    assert unknown.returncode == 2 and "unknown profile 'gpu'" in unknown.stderr
    assert f"{bad}: deployments[gpu].parameters.profile" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1
    unset = cli("deploy", env={**nowhere, "AUCTION_PIPELINE_DEV_DATA_ROOT": ""})
    assert unset.returncode == 2 and "deployments[dev].parameters.data_root needs" in unset.stderr
    roots = {"AUCTION_PIPELINE_PROD_DATA_ROOT": "/p", "AUCTION_PIPELINE_DEV_DATA_ROOT": "/d"}
    unreachable = cli("deploy", env={**nowhere, **roots})
    assert unreachable.returncode == 3 and "is not reachable" in unreachable.stderr
    assert len(unreachable.stderr.strip().splitlines()) == 1


def test_sigterm_stops_the_prefect_server_the_command_started(tmp_path: Path) -> None:
    """`kill` (or a scheduler ending the session) must not leave the run's server behind."""
    proc = subprocess.Popen(
        [CLI, "demo", "--date", "2026-03-14", "--data-root", str(tmp_path / "demo")],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PREFECT_API_URL": ""},
        cwd=REPO_ROOT,
    )
    assert proc.stderr is not None
    url = None
    for line in proc.stderr:
        if match := re.search(r"started a Prefect server for this run at (\S+)", line):
            url = match.group(1)
            break
    assert url, "the demo never said it started a Prefect server"
    assert httpx.get(f"{url}/api/health", timeout=10).status_code == 200
    proc.send_signal(signal.SIGTERM)
    proc.stderr.read()  # drain, so the exiting process never blocks on a full pipe
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/api/health", timeout=5)
