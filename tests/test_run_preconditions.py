"""What a run checks before it crawls, and what it reports when its flow raises.

Real command-line runs against the demo site and a real Prefect server: an unusable database
must stop the run before any request reaches a site, and the summary of a flow that raised
must still carry the date and every site with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Cli
from expected import SITES

from infra.ports import free_port
from sites.demo.server import DemoSite

DAY = "2026-03-14"


def test_an_unusable_database_stops_the_run_before_any_site_is_asked(
    cli: Cli, prefect_api_url: str, tmp_path: Path
) -> None:
    unreachable = f"postgresql://reader:pw@127.0.0.1:{free_port()}/auction"
    damaged_root = tmp_path / "damaged"
    damaged_root.mkdir()
    (damaged_root / "auction.sqlite").write_bytes(b"")  # a copy cut short
    cases = [
        (tmp_path / "pg", {"AUCTION_PIPELINE_DATABASE_URL": unreachable}, "cannot connect to"),
        (damaged_root, {}, "is empty (0 bytes), not a database"),
    ]
    for data_root, extra, named in cases:
        with DemoSite() as site:
            result = cli(
                "run",
                "--profile",
                "local",
                "--date",
                DAY,
                "--data-root",
                str(data_root),
                "--json",
                env={"PREFECT_API_URL": prefect_api_url, "DEMO_SITE_URL": site.url, **extra},
            )
            assert site.request_count() == 0  # found before the crawl, not after it
        assert result.returncode == 1, result.stderr[-3000:]
        summary = json.loads(result.stdout)
        assert summary["state"] == "FAILED"
        assert summary["date"] == DAY
        assert set(summary["sites"]) == set(SITES)
        for row in summary["sites"].values():
            assert named in row["error"] and row["lots"] == 0
        assert named in summary["message"]
    assert (damaged_root / "auction.sqlite").read_bytes() == b""
