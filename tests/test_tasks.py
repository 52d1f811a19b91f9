"""The pipeline's steps called directly against the demo site (no Prefect, no Slurm): polite
crawling into WARC backups, bad pages, idempotent loads and byte-identical archives."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import bagit
import pytest
from conftest import tmpfs
from expected import all_lots

from sites.demo.catalogue import Catalogue, DemoConfig
from sites.demo.server import DemoSite
from sites.loader import Politeness, load_sites
from tasks.archive import archive_day, verify_archives
from tasks.checksums import damage
from tasks.extract import extract_lot
from tasks.normalise import LotValidationError, normalise_lot
from tasks.politeness import FetchError, PoliteFetcher, retry_after_seconds
from tasks.process import LayoutChangeError, process_site
from tasks.scrape import SiteScrapeError, scrape_site
from tasks.storage import DataRoot, recover_directory, staged_directory
from tasks.store import database_url_for, load_day, table_rows
from tasks.warc import read_responses

DAY = date(2026, 3, 14)


@pytest.fixture
def demo(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[DemoSite]]:
    """DemoSite, with DEMO_SITE_URL set to whichever instance the test starts."""

    class Site(DemoSite):
        def __enter__(self) -> DemoSite:
            site = super().__enter__()
            monkeypatch.setenv("DEMO_SITE_URL", site.url)
            return site

    yield Site


def test_retry_after_header_forms() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0


def test_every_exchange_is_in_the_warc_and_429s_are_waited_out(
    tmp_path: Path, demo: type[DemoSite]
) -> None:
    config = DemoConfig(lots_per_sale=6, throttle_rate=0.3, retry_after=1)
    with demo(config) as site:
        (definition,) = load_sites(["harrow-finch"])
        report = scrape_site(definition, DAY, str(tmp_path))
        served = site.request_count()
    expected = Catalogue(config).lots("harrow-finch", DAY)
    assert report.lot_pages == len(expected) and report.failed_urls == []
    responses = list(read_responses(Path(report.warc_file)))
    # Every request is in the WARC, robots.txt included.
    assert len(responses) == served == report.requests_sent
    throttled = [r for r in responses if r.status == 429]
    assert throttled, "the demo site's 429s should have forced retries"
    for response in throttled:
        retry = next(
            r for r in responses if r.url == response.url and r.fetched_at > response.fetched_at
        )
        waited = (retry.fetched_at - response.fetched_at).total_seconds()
        assert waited >= 0.95, f"{response.url} retried after {waited:.2f} s, Retry-After 1"
    kinds = {r.kind for r in responses if r.status == 200}
    assert kinds == {"robots", "listing", "lot", "image"}


def test_retry_after_pauses_every_connection_to_the_host(
    tmp_path: Path, demo: type[DemoSite]
) -> None:
    config = DemoConfig(lots_per_sale=10, throttle_rate=0.2, retry_after=1)
    with demo(config):
        (definition,) = load_sites(["brooklyn-gallery"])
        four = definition.model_copy(
            update={"politeness": definition.politeness.model_copy(update={"concurrency": 4})}
        )
        report = scrape_site(four, DAY, str(tmp_path))
    responses = sorted(read_responses(Path(report.warc_file)), key=lambda r: r.fetched_at)
    throttled = [r for r in responses if r.status == 429]
    assert throttled
    for response in throttled:
        # Requests already on the wire may still land just after; none may start later
        # inside the pause the site asked for.
        inside = [
            r for r in responses if 0.2 < (r.fetched_at - response.fetched_at).total_seconds() < 0.9
        ]
        assert inside == [], f"{len(inside)} requests inside the pause after {response.url}"


def test_robots_disallow_is_honoured(tmp_path: Path, demo: type[DemoSite]) -> None:
    lots = Catalogue(DemoConfig(lots_per_sale=12)).lots("brooklyn-gallery", DAY)
    banned = f"/brooklyn-gallery/lot/{lots[2].lot_id}"
    with demo(DemoConfig(lots_per_sale=12, disallow=(banned,))) as site:
        (definition,) = load_sites(["brooklyn-gallery"])
        report = scrape_site(definition, DAY, str(tmp_path))
        assert site.request_count(banned) == 0
    assert report.lot_pages == len(lots) - 1
    assert len(report.failed_urls) == 1 and "disallowed by robots.txt" in report.failed_urls[0]


def test_server_errors_are_retried_then_fail_the_site_with_the_reason(
    tmp_path: Path, demo: type[DemoSite]
) -> None:
    with demo(DemoConfig(error_rate=1.0)) as site:
        (definition,) = load_sites(["hotel-lumiere"])
        with pytest.raises(SiteScrapeError, match=r"listing page failed: .*HTTP 500 after 5"):
            scrape_site(definition, DAY, str(tmp_path))
        assert site.request_count("/hotel-lumiere/auctions/") == 5  # 1 + max_retries 4
    warc = DataRoot(tmp_path).warc_file(DAY, "hotel-lumiere")
    assert not warc.exists()
    # What the site answered is kept as evidence, under a name no reader takes for a backup.
    evidence = list(read_responses(warc.with_name(warc.name + ".failed")))
    assert [r.status for r in evidence if r.kind == "listing"] == [500] * 5


def test_a_finished_day_is_not_fetched_again_and_a_failed_rescrape_keeps_it(
    tmp_path: Path, demo: type[DemoSite]
) -> None:
    with demo(DemoConfig(lots_per_sale=5)) as site:
        (definition,) = load_sites(["brooklyn-gallery"])
        first = scrape_site(definition, DAY, str(tmp_path))
        before = site.request_count()
        again = scrape_site(definition, DAY, str(tmp_path))
        assert site.request_count() == before  # nothing fetched twice
    assert again.reused and again.lot_pages == first.lot_pages
    warc = Path(first.warc_file)
    backup = warc.read_bytes()
    with demo(DemoConfig(unreachable=frozenset({"brooklyn-gallery"}))):
        (definition,) = load_sites(["brooklyn-gallery"])  # the new server's URL
        with pytest.raises(SiteScrapeError, match="HTTP 503"):
            scrape_site(definition, DAY, str(tmp_path), rescrape=True)
    assert warc.read_bytes() == backup
    assert [p.name for p in warc.parent.iterdir() if p.name.startswith(".")] == []


class _Awkward(BaseHTTPRequestHandler):
    """robots.txt, redirects (some off the site), a 50 MB page, a PDF and garbage."""

    def do_GET(self) -> None:
        targets = {
            "/away": "http://169.254.169.254/latest/meta-data/",
            "/loop": "/loop",
            "/hop": "/page",
        }
        if self.path in targets:
            self.send_response(302)
            self.send_header("Location", targets[self.path])
            self.end_headers()
            return
        if self.path == "/huge":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(50 * 2**20))
            self.end_headers()
            chunk = b"<p>" + b"x" * 65533
            try:
                for _ in range(50 * 16):
                    self.wfile.write(chunk)
            except OSError:
                pass  # the client gave up at its cap, as it should
            return
        body, kind = {
            "/robots.txt": (b"User-agent: *\nDisallow: /private\n", "text/plain"),
            "/catalogue.pdf": (b"%PDF-1.7 ...", "application/pdf"),
            "/garbage": (bytes(range(256)) * 40, "text/html"),
        }.get(self.path, (b"<html><p>ok</p></html>", "text/html"))
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_bad_pages_get_a_clear_error_and_the_fetcher_stays_on_the_site() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Awkward)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    politeness = Politeness(requests_per_second=50, max_retries=0, timeout_seconds=5)
    hosts = frozenset({"127.0.0.1"})
    try:
        with PoliteFetcher("test-agent", politeness, hosts) as fetcher:
            assert fetcher.get(f"{base}/hop", kind="lot").url == f"{base}/page"
            with pytest.raises(FetchError, match="not on this site's hosts"):
                fetcher.get(f"{base}/away", kind="lot")
            with pytest.raises(FetchError, match="not on this site's hosts"):
                fetcher.get("http://10.0.0.1/admin", kind="lot")
            with pytest.raises(FetchError, match="more than 5 redirects"):
                fetcher.get(f"{base}/loop", kind="lot")
            with pytest.raises(FetchError, match=r"disallowed by robots\.txt"):
                fetcher.get(f"{base}/private/x", kind="lot")
            with pytest.raises(FetchError, match="larger than the 5000000-byte cap"):
                fetcher.get(f"{base}/huge", kind="lot")
            with pytest.raises(FetchError, match="content type 'application/pdf'"):
                fetcher.get(f"{base}/catalogue.pdf", kind="lot")
            garbage = fetcher.get(f"{base}/garbage", kind="lot")
    finally:
        server.shutdown()
        server.server_close()
    # Garbage that claims to be HTML extracts to nothing and fails validation by name.
    (site,) = load_sites(["harrow-finch"])
    raw = extract_lot(site, garbage.body.decode("utf-8", errors="replace"), garbage.url)
    with pytest.raises(LotValidationError, match="title"):
        normalise_lot(site, raw, garbage.url)
    # robots.txt unreachable: RFC 9309 says assume everything is disallowed.
    with (
        PoliteFetcher("test-agent", politeness, hosts) as fetcher,
        pytest.raises(FetchError, match=r"robots\.txt could not be fetched .*RFC 9309"),
    ):
        fetcher.get(f"{base}/page", kind="lot")


def test_a_crawl_stops_at_its_request_cap(tmp_path: Path, demo: type[DemoSite]) -> None:
    with demo(DemoConfig(lots_per_sale=20)) as site:
        (definition,) = load_sites(["harrow-finch"])
        capped = definition.model_copy(
            update={"politeness": definition.politeness.model_copy(update={"max_requests": 12})}
        )
        with pytest.raises(SiteScrapeError, match="cap of 12 requests"):
            scrape_site(capped, DAY, str(tmp_path))
        assert site.request_count() <= 12


def test_a_kill_between_the_two_renames_is_repaired(tmp_path: Path) -> None:
    final = tmp_path / "archive" / "2026-03-14"
    with staged_directory(final) as stage:
        (stage / "bagit.txt").write_text("v1\n")
    # Simulate a kill after the old version was parked but before the new one moved in,
    # plus an unfinished stage from another killed attempt.
    final.rename(final.with_name(f".{final.name}.old-dead"))
    (final.with_name(f".{final.name}.partial-dead") / "data").mkdir(parents=True)
    recover_directory(final)
    assert (final / "bagit.txt").read_text() == "v1\n"
    assert sorted(p.name for p in final.parent.iterdir()) == ["2026-03-14"]


def test_process_load_and_archive_are_idempotent(tmp_path: Path, demo: type[DemoSite]) -> None:
    config = DemoConfig(lots_per_sale=6)
    with demo(config):
        definitions = load_sites()
        for definition in definitions:
            scrape_site(definition, DAY, str(tmp_path))
    url = database_url_for(tmp_path)
    files = [process_site(d, DAY, str(tmp_path)).processed_file for d in definitions]
    expected = len(all_lots(config, DAY))

    first = load_day(DAY, definitions, files, url)
    assert (first.lots_loaded, first.new_lots) == (expected, expected)
    report = archive_day(DAY, str(tmp_path), url, "run-1", [])
    bag = Path(report.path)
    payload = {p: (bag / p).read_bytes() for p in bagit.Bag(str(bag)).payload_files()}
    manifest = (bag / "manifest-sha256.txt").read_bytes()
    assert any(p.startswith("data/warc/harrow-finch-2026-03-14.warc") for p in payload)
    assert any(p.startswith("data/images/") for p in payload)
    assert "data/tables/lots.parquet" in payload and "data/tables/data-dictionary.md" in payload

    names = ("houses", "sales", "lots", "observations", "search_hits")
    tables = {name: table_rows(url, name) for name in names}
    again = load_day(DAY, definitions, files, url)
    assert again.new_lots == 0
    assert {n: table_rows(url, n) for n in tables} == tables
    archive_day(DAY, str(tmp_path), url, "run-2", [])
    # Re-archiving: byte-identical payload and payload manifest; provenance says run-2.
    assert {p: (bag / p).read_bytes() for p in payload} == payload
    assert (bag / "manifest-sha256.txt").read_bytes() == manifest
    assert '"flow_run_id": "run-2"' in (bag / "provenance.json").read_text()
    assert [c.ok for c in verify_archives(tmp_path)] == [True]

    # A later crawl date: the same lots, one more observation each.
    later = load_day(date(2026, 3, 15), definitions, files, url)
    assert later.new_lots == 0
    assert len(table_rows(url, "lots")) == expected
    assert len(table_rows(url, "observations")) == 2 * expected


def test_verify_names_what_is_wrong(tmp_path: Path, demo: type[DemoSite]) -> None:
    with demo(DemoConfig(lots_per_sale=3)):
        (definition,) = load_sites(["harrow-finch"])
        scrape_site(definition, DAY, str(tmp_path))
    url = database_url_for(tmp_path)
    load_day(DAY, [definition], [process_site(definition, DAY, str(tmp_path)).processed_file], url)
    bag = Path(archive_day(DAY, str(tmp_path), url, "run", []).path)
    (bag / "data" / "tables" / "lots.csv").write_text("tampered\n")
    (check,) = verify_archives(tmp_path, DAY)
    assert not check.ok
    assert any("lots.csv" in problem for problem in check.problems), check.problems
    assert not verify_archives(tmp_path, date(2020, 1, 1))[0].ok


def test_changed_layout_is_quarantined_and_recent_counts_are_checked(
    tmp_path: Path, demo: type[DemoSite]
) -> None:
    with demo(DemoConfig(lots_per_sale=6, changed_layout=frozenset({"harrow-finch"}))):
        harrow, brooklyn = load_sites(["harrow-finch", "brooklyn-gallery"])
        scrape_site(harrow, DAY, str(tmp_path))
        scrape_site(brooklyn, DAY, str(tmp_path))
    root = DataRoot(tmp_path)
    with pytest.raises(LayoutChangeError, match=r"title 0% \(needs 90%\)") as info:
        process_site(harrow, DAY, str(tmp_path))
    assert "/harrow-finch/lot/" in str(info.value) and "reprocess" in str(info.value)
    assert root.quarantine_file(DAY, "harrow-finch").read_text().count("\n") >= 4
    assert not root.processed_file(DAY, "harrow-finch").exists()
    # A listing selector that finds nothing: zero lot pages is a breach, not an empty day.
    blind_root = tmp_path / "blind"
    with demo(DemoConfig(lots_per_sale=6)):
        (fresh,) = load_sites(["brooklyn-gallery"])  # this server's URL
        listing = fresh.listing.model_copy(
            update={"lot_links": fresh.listing.lot_links.model_copy(update={"css": "a.x"})}
        )
        blind = fresh.model_copy(update={"listing": listing})
        scrape_site(blind, DAY, str(blind_root))
    with pytest.raises(LayoutChangeError, match=r"0 lot pages .* --rescrape"):
        process_site(blind, DAY, str(blind_root))
    # Far fewer lots than the recent median is a breach too.
    with pytest.raises(LayoutChangeError, match="against a median of 40"):
        process_site(brooklyn, DAY, str(tmp_path), recent_counts=[40, 41, 39])
    assert process_site(brooklyn, DAY, str(tmp_path), recent_counts=[5, 6, 7]).lots > 0


def test_a_new_data_root_is_group_private_and_an_open_one_is_named(tmp_path: Path) -> None:
    new = DataRoot(tmp_path / "lab" / "data")
    assert new.prepare() is None
    assert new.path.stat().st_mode & 0o777 == 0o750
    assert new.prepare() is None  # already private: nothing to say
    opened = tmp_path / "open"
    opened.mkdir()
    opened.chmod(0o755)
    warning = DataRoot(opened).prepare()
    assert warning is not None and "mode 755" in warning and f"chmod o-rwx {opened}" in warning
    assert opened.stat().st_mode & 0o777 == 0o755  # the owner's choice is not changed


def test_a_full_disk_fails_the_crawl_naming_the_file_and_keeps_earlier_backups(
    tmp_path: Path, demo: type[DemoSite]
) -> None:
    with demo(), tmpfs(tmp_path / "small", size="2m") as root:
        site = load_sites(["harrow-finch"])[0]
        first = scrape_site(site, date(2026, 3, 13), str(root))
        kept = Path(first.warc_file).read_bytes()
        # Leave about 8 KiB free: the next day's crawl runs out of space part-way.
        free = os.statvfs(root).f_bavail * os.statvfs(root).f_frsize
        (root / "filler").write_bytes(b"\0" * max(0, free - 8192))
        with pytest.raises(OSError) as caught:
            scrape_site(site, DAY, str(root))
        message = str(caught.value)
        assert caught.value.errno == errno.ENOSPC
        assert "No space left on device" in message and str(root) in message
        # Nothing looks finished that is not, and the earlier day is untouched and intact.
        assert not DataRoot(root).warc_file(DAY, site.name).exists()
        assert not list(DataRoot(root).warc_dir(DAY).glob(".*.partial"))
        assert Path(first.warc_file).read_bytes() == kept
        assert damage(Path(first.warc_file)) is None
