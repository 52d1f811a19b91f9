"""The pipeline's steps called directly against the demo site (no Prefect, no Slurm): polite
fetching under 429s, atomic page backups, idempotent loads and verifiable archives."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import bagit
import pytest

from sites.demo.catalogue import HOUSES, Catalogue, DemoConfig
from sites.demo.server import DemoSite
from sites.loader import load_sites
from tasks.archive import archive_day
from tasks.politeness import retry_after_seconds
from tasks.process import process_site
from tasks.scrape import SiteScrapeError, scrape_site
from tasks.storage import DataRoot
from tasks.store import load_day

DAY = date(2026, 3, 14)


def _counts(database: Path) -> tuple[int, int]:
    conn = sqlite3.connect(database)
    lots = conn.execute("SELECT count(*) FROM lots").fetchone()[0]
    observations = conn.execute("SELECT count(*) FROM observations").fetchone()[0]
    conn.close()
    return lots, observations


def test_retry_after_header_forms() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0


def test_scrape_honours_429_and_keeps_every_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = DemoConfig(lots_per_sale=8, throttle_rate=0.3, retry_after=0)
    with DemoSite(config) as site:
        monkeypatch.setenv("DEMO_SITE_URL", site.url)
        (definition,) = load_sites(["harrow-finch"])
        report = scrape_site(definition, DAY, str(tmp_path))
        throttled_requests = site.request_count()
    expected = Catalogue(config).lots("harrow-finch", DAY)
    assert report.lot_pages == len(expected)
    assert report.failed_urls == []
    assert report.requests_sent > report.listing_pages + report.lot_pages + report.images
    assert throttled_requests == report.requests_sent
    index = (DataRoot(tmp_path).raw_dir(DAY, "harrow-finch") / "pages.jsonl").read_text()
    assert index.count('"kind": "lot"') == len(expected)


def test_failed_rescrape_leaves_the_earlier_backup_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with DemoSite(DemoConfig(lots_per_sale=5)) as site:
        monkeypatch.setenv("DEMO_SITE_URL", site.url)
        (definition,) = load_sites(["brooklyn-gallery"])
        scrape_site(definition, DAY, str(tmp_path))
    raw_dir = DataRoot(tmp_path).raw_dir(DAY, "brooklyn-gallery")
    before = sorted(p.name for p in (raw_dir / "pages").iterdir())
    with DemoSite(DemoConfig(unreachable=frozenset({"brooklyn-gallery"}))) as site:
        monkeypatch.setenv("DEMO_SITE_URL", site.url)
        (definition,) = load_sites(["brooklyn-gallery"])
        with pytest.raises(SiteScrapeError, match="HTTP 503"):
            scrape_site(definition, DAY, str(tmp_path))
    assert sorted(p.name for p in (raw_dir / "pages").iterdir()) == before
    leftovers = [p for p in raw_dir.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_process_load_and_archive_are_idempotent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = DemoConfig(lots_per_sale=6)
    with DemoSite(config) as site:
        monkeypatch.setenv("DEMO_SITE_URL", site.url)
        definitions = load_sites()
        for definition in definitions:
            scrape_site(definition, DAY, str(tmp_path))
    root = DataRoot(tmp_path)
    files = [process_site(d, DAY, str(tmp_path)).processed_file for d in definitions]
    expected = sum(len(Catalogue(config).lots(slug, DAY)) for slug in HOUSES)

    first = load_day(DAY, definitions, files, str(root.database))
    assert (first.lots_loaded, first.new_lots) == (expected, expected)
    snapshot = sqlite3.connect(root.database).execute("SELECT * FROM lots ORDER BY 1, 2").fetchall()
    again = load_day(DAY, definitions, files, str(root.database))
    assert again.new_lots == 0
    assert _counts(root.database) == (expected, expected)
    assert (
        sqlite3.connect(root.database).execute("SELECT * FROM lots ORDER BY 1, 2").fetchall()
        == snapshot
    )
    # The same lots seen on a later crawl date are the same lots, with one more observation.
    later = load_day(date(2026, 3, 15), definitions, files, str(root.database))
    assert later.new_lots == 0
    assert _counts(root.database) == (expected, 2 * expected)
    row = (
        sqlite3.connect(root.database)
        .execute("SELECT min(first_seen), max(last_seen) FROM lots")
        .fetchone()
    )
    assert row == ("2026-03-14", "2026-03-15")

    names = [d.name for d in definitions]
    report = archive_day(DAY, str(tmp_path), names, "run-1", [])
    bag = bagit.Bag(report.path)
    bag.validate()
    assert report.lots == expected
    payload = set(bag.payload_files())
    assert {"data/lots.csv", "data/lots.jsonl", "data/provenance.json"} <= payload
    assert any(p.startswith("data/pages/harrow-finch/pages/") for p in payload)
    # Re-archiving replaces the bag with an equally valid one.
    archive_day(DAY, str(tmp_path), names, "run-2", [])
    bagit.Bag(report.path).validate()
