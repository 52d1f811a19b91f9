"""The pipeline's steps called directly against the demo site (no Prefect, no Slurm): polite
fetching under 429s, atomic page backups, idempotent loads and verifiable archives."""

from __future__ import annotations

import sqlite3
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import bagit
import pytest

from sites.demo.catalogue import HOUSES, Catalogue, DemoConfig
from sites.demo.server import DemoSite
from sites.loader import Politeness, load_sites
from tasks.archive import archive_day
from tasks.politeness import FetchError, PoliteFetcher, retry_after_seconds
from tasks.process import process_site
from tasks.scrape import SiteScrapeError, scrape_site
from tasks.storage import DataRoot, recover_directory, staged_directory
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
        paths = site.requested_paths()
    expected = Catalogue(config).lots("harrow-finch", DAY)
    assert report.lot_pages == len(expected)
    assert report.failed_urls == []
    assert report.requests_sent > report.listing_pages + report.lot_pages + report.images
    assert throttled_requests == report.requests_sent
    retried = {path for path in paths if paths.count(path) > 1}
    assert retried, "the demo site's 429s should have forced retries"
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

    report = archive_day(DAY, str(tmp_path), "run-1", [])
    bag = bagit.Bag(report.path)
    bag.validate()
    assert report.lots == expected
    payload = set(bag.payload_files())
    assert {"data/lots.csv", "data/lots.jsonl", "data/provenance.json"} <= payload
    assert any(p.startswith("data/pages/harrow-finch/pages/") for p in payload)
    lots_csv = (Path(report.path) / "data" / "lots.csv").read_text()
    # Re-archiving after a later day was loaded gives the same lots table, in a fresh bag.
    archive_day(DAY, str(tmp_path), "run-2", [])
    bag = bagit.Bag(report.path)
    bag.validate()
    assert (Path(report.path) / "data" / "lots.csv").read_text() == lots_csv
    assert '"flow_run_id": "run-2"' in (Path(report.path) / "data" / "provenance.json").read_text()
    assert [p.name for p in Path(report.path).parent.iterdir() if p.name.startswith(".")] == []


class _Redirector(BaseHTTPRequestHandler):
    """Serves robots.txt and a few redirects, some of them off the site."""

    def do_GET(self) -> None:
        targets = {
            "/away": "http://169.254.169.254/latest/meta-data/",
            "/loop": "/loop",
            "/hop": "/page",
        }
        if self.path == "/robots.txt":
            body, kind, status = b"User-agent: *\nDisallow: /private\n", "text/plain", 200
        elif self.path in targets:
            self.send_response(302)
            self.send_header("Location", targets[self.path])
            self.end_headers()
            return
        else:
            body, kind, status = b"<html><p>ok</p></html>", "text/html", 200
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_fetcher_stays_on_the_site_and_obeys_robots() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    politeness = Politeness(requests_per_second=50, max_retries=0, timeout_seconds=5)
    try:
        with PoliteFetcher("test-agent", politeness, frozenset({"127.0.0.1"})) as fetcher:
            assert fetcher.get(f"{base}/hop").url == f"{base}/page"
            with pytest.raises(FetchError, match="not on this site's hosts"):
                fetcher.get(f"{base}/away")
            with pytest.raises(FetchError, match="not on this site's hosts"):
                fetcher.get("http://10.0.0.1/admin")
            with pytest.raises(FetchError, match="more than 5 redirects"):
                fetcher.get(f"{base}/loop")
            with pytest.raises(FetchError, match=r"disallowed by robots\.txt"):
                fetcher.get(f"{base}/private/x")
    finally:
        server.shutdown()
        server.server_close()
    # robots.txt unreachable: RFC 9309 says assume everything is disallowed.
    with (
        PoliteFetcher("test-agent", politeness, frozenset({"127.0.0.1"})) as fetcher,
        pytest.raises(FetchError, match=r"disallowed by robots\.txt"),
    ):
        fetcher.get(f"{base}/page")


def test_a_kill_between_the_two_renames_is_repaired(tmp_path: Path) -> None:
    final = tmp_path / "raw" / "brooklyn-gallery"
    with staged_directory(final) as stage:
        (stage / "pages.jsonl").write_text("v1\n")
    # Simulate a kill after the old version was parked but before the new one moved in,
    # plus an unfinished stage from another killed attempt.
    parked = final.with_name(f".{final.name}.old-dead")
    final.rename(parked)
    (final.with_name(f".{final.name}.partial-dead") / "pages").mkdir(parents=True)
    recover_directory(final)
    assert (final / "pages.jsonl").read_text() == "v1\n"
    assert sorted(p.name for p in final.parent.iterdir()) == ["brooklyn-gallery"]
