"""One real run with every hostile house beside two demo houses: each hostile one fails (or
degrades) alone, within its caps, and the demo houses are loaded and archived.

The command line as a user runs it (local profile: two Dask worker processes of 2 GiB each,
a real Prefect server), with a sites directory holding ``hotel-lumiere`` and
``brooklyn-gallery`` and one ``hostile-<scenario>`` house per scenario of
``tests/hostile_site.py``, each on its own loopback server.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from conftest import Cli
from hostile_site import DAY, LOTS, SCENARIOS, HostileSite, write_site_file

from sites.demo.catalogue import Catalogue, DemoConfig
from sites.demo.server import DemoSite
from sites.loader import SITES_DIR
from tasks.archive import verify_archives
from tasks.store import database_url_for, table_rows

DEMO_HOUSES = ("hotel-lumiere", "brooklyn-gallery")
# Tight politeness, so the hanging and trickling houses give up in seconds, not minutes.
FAST = {
    "timeout_seconds": 0.5,
    "max_retries": 1,
    "max_consecutive_timeouts": 3,
    "requests_per_second": 50,
}
# What each house must come to: "fails" (the site fails alone, naming the cause), or a
# number of clean lots with the run's other sites unaffected.
OUTCOME: dict[str, str | int] = {
    "normal": LOTS,
    "huge-page": LOTS - 1,
    "gzip-page": LOTS,
    "gzip-bomb": LOTS - 1,
    "wrong-content-type": LOTS - 1,
    "bad-charset": LOTS,
    "redirect-loop": LOTS - 1,
    "off-host-redirect": LOTS - 1,
    "hanging": "timed out",
    "trickle": "timed out",
    "retry-after": "retry after 99999999 s",
    "server-error": "HTTP 500",
    "crawl-delay": "Crawl-delay: 99999",
    "endless-pagination": LOTS,
    "odd-prices": "LayoutChangeError",  # 5 of 14 lots unreadable: held back, not guessed
    "colliding-lot-urls": LOTS,
}


@pytest.mark.timeout(600)
def test_hostile_houses_fail_alone_and_the_demo_houses_are_loaded_and_archived(
    cli: Cli, prefect_api_url: str, tmp_path: Path
) -> None:
    assert set(OUTCOME) == set(SCENARIOS)
    sites_dir, data_root = tmp_path / "sites", tmp_path / "data"
    sites_dir.mkdir()
    for house in DEMO_HOUSES:
        shutil.copy(SITES_DIR / f"{house}.yaml", sites_dir)
    servers = [HostileSite() for _ in SCENARIOS]
    try:
        for server, scenario in zip(servers, SCENARIOS, strict=True):
            write_site_file(sites_dir, scenario, server.start(scenario), FAST)
        with DemoSite() as demo:
            started = time.monotonic()
            result = cli(
                "run",
                "--profile",
                "local",
                "--date",
                DAY.isoformat(),
                "--data-root",
                str(data_root),
                "--json",
                env={
                    "PREFECT_API_URL": prefect_api_url,
                    "DEMO_SITE_URL": demo.url,
                    "AUCTION_PIPELINE_SITES_DIR": str(sites_dir),
                },
                timeout=540,
            )
            elapsed = time.monotonic() - started
        off_host = servers[SCENARIOS.index("off-host-redirect")].requests()
    finally:
        for server in servers:
            server.stop()
    assert result.returncode == 1, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    rows = summary["sites"]
    assert set(rows) == {*DEMO_HOUSES, *(f"hostile-{s}" for s in SCENARIOS)}

    # The demo houses: every lot of the catalogue in the database and in the day's bag.
    catalogue = Catalogue(DemoConfig())
    lots = table_rows(database_url_for(data_root), "lots")
    for house in DEMO_HOUSES:
        assert rows[house]["error"] is None
        expected = len(catalogue.lots(house, DAY))
        assert sum(1 for r in lots if r["site"] == house) == expected == rows[house]["lots"]
        assert (Path(summary["archive"]) / "data" / "warc" / f"{house}-{DAY}.warc.gz").is_file()
    (check,) = verify_archives(data_root, DAY)
    assert check.ok, check.problems

    # Each hostile house came to what its scenario allows, and no worker was lost to one.
    for scenario, outcome in OUTCOME.items():
        row = rows[f"hostile-{scenario}"]
        if isinstance(outcome, int):
            assert row["error"] is None, (scenario, row["error"])
            assert row["lots"] == outcome, (scenario, row)
        else:
            assert row["error"] and outcome in row["error"], (scenario, row["error"])
        assert "KilledWorker" not in (row["error"] or "")
    assert "listing.max_pages" in " ".join(rows["hostile-endless-pagination"]["warnings"])
    assert all(r.host.startswith("127.0.0.1") for r in off_host)  # the redirect not followed
    assert elapsed < 300, f"the run took {elapsed:.0f} s"
