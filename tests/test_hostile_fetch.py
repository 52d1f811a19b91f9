"""The crawler and the page reader against a hostile auction house (``tests/hostile_site.py``).

One test per scenario of the hostile server: each drives ``scrape_site`` (and ``process_site``
where the page is read back from the WARC) and asserts on the data left behind (WARC records,
the failures file, processed and quarantined lots) and on the message, within a time bound.
The scenarios that could hang or take a worker's memory (Crawl-delay, the gzip bomb) run in a
child process with a deadline and an address-space limit, so a regression fails the test
instead of stalling or killing the suite.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hostile_site import (
    BOMB_DECODED_BYTES,
    DAY,
    LOTS,
    ODD_PRICES,
    HostileSite,
    bomb_chunks,
    write_site_file,
)
from warcio.archiveiterator import ArchiveIterator

from flows.cli import format_summary
from sites.loader import SiteDefinition, load_site_file
from tasks.process import LayoutChangeError, process_site
from tasks.scrape import SiteScrapeError, scrape_site
from tasks.storage import DataRoot
from tasks.warc import read_responses

REPO = Path(__file__).resolve().parent.parent
# Fast politeness for loopback: short timeouts, few retries, a give-up after 3 timeouts.
FAST = {
    "requests_per_second": 50,
    "timeout_seconds": 0.5,
    "max_retries": 2,
    "max_consecutive_timeouts": 3,
}


@pytest.fixture
def server() -> Iterator[HostileSite]:
    """A hostile server, stopped after the test (start it with the test's scenario)."""
    with HostileSite() as hostile:
        yield hostile


def _site(server: HostileSite, scenario: str, tmp_path: Path, **overrides: Any) -> SiteDefinition:
    """Serve ``scenario`` and load the site file written for it."""
    base_url = server.start(scenario)
    return load_site_file(write_site_file(tmp_path / "sites", scenario, base_url, FAST | overrides))


def _failures(tmp_path: Path, site: SiteDefinition) -> list[str]:
    path = DataRoot(tmp_path).failures_file(DAY, site.name)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [row["error"] for row in rows if "error" in row]


def _processed(tmp_path: Path, site: SiteDefinition) -> list[dict[str, Any]]:
    path = DataRoot(tmp_path).processed_file(DAY, site.name)
    return [json.loads(line) for line in path.read_text().splitlines()]


def _quarantined(tmp_path: Path, site: SiteDefinition) -> list[dict[str, Any]]:
    path = DataRoot(tmp_path).quarantine_file(DAY, site.name)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _child(site_file: Path, data_root: Path, timeout: float, address_space: int) -> dict[str, Any]:
    """Scrape and process one site in a child process under a deadline and ``RLIMIT_AS``.

    Returns what the child reported (errors, failures, lot count, peak RSS); a child that
    overran the deadline or died (MemoryError) fails the test with its stderr.
    """
    code = f"""
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, ({address_space}, {address_space}))
sys.path.insert(0, {str(REPO)!r})
from datetime import date
from sites.loader import load_site_file
from tasks.process import LayoutChangeError, process_site
from tasks.scrape import scrape_site
site = load_site_file(__import__("pathlib").Path({str(site_file)!r}))
out = {{"scrape_error": None, "process_error": None, "failed_urls": [], "lots": None}}
start = time.monotonic()
try:
    out["failed_urls"] = scrape_site(site, date.fromisoformat({DAY.isoformat()!r}),
                                     {str(data_root)!r}).failed_urls
except Exception as exc:
    out["scrape_error"] = f"{{type(exc).__name__}}: {{exc}}"
out["scrape_seconds"] = time.monotonic() - start
if out["scrape_error"] is None:
    try:
        out["lots"] = process_site(site, date.fromisoformat({DAY.isoformat()!r}),
                                   {str(data_root)!r}).lots
    except Exception as exc:
        out["process_error"] = f"{{type(exc).__name__}}: {{exc}}"
out["max_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(out))
"""
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, cwd=REPO
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{site_file.name}: scrape + process did not end within {timeout:g} s")
    assert done.returncode == 0, f"child failed ({done.returncode}): {done.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.mark.timeout(60)
def test_normal_scenario_is_the_harrow_finch_sale(server: HostileSite, tmp_path: Path) -> None:
    site = _site(server, "normal", tmp_path)
    report = scrape_site(site, DAY, str(tmp_path))
    process_site(site, DAY, str(tmp_path))
    assert report.lot_pages == LOTS and report.failed_urls == [] and report.images == LOTS
    titles = sorted(row["title"] for row in _processed(tmp_path, site))
    assert titles == sorted(lot.title for lot in server.lots)


@pytest.mark.timeout(60)
def test_huge_page_fails_its_lot_only(server: HostileSite, tmp_path: Path) -> None:
    site = _site(server, "huge-page", tmp_path)
    report = scrape_site(site, DAY, str(tmp_path))
    process_site(site, DAY, str(tmp_path))
    assert _failures(tmp_path, site) == [
        f"{server.lot_url(1)}: page larger than the 5000000-byte cap"
    ]
    assert report.lot_pages == LOTS - 1
    assert server.lot_url(1) not in {row["url"] for row in _processed(tmp_path, site)}
    assert len(_processed(tmp_path, site)) == LOTS - 1


@pytest.mark.timeout(60)
def test_gzip_page_is_extracted_from_its_decoded_text(server: HostileSite, tmp_path: Path) -> None:
    site = _site(server, "gzip-page", tmp_path)
    report = scrape_site(site, DAY, str(tmp_path))
    process_site(site, DAY, str(tmp_path))
    manifest = DataRoot(tmp_path).image_manifest(DAY, site.name).read_text().splitlines()
    image_lots = {json.loads(line)["lot_url"] for line in manifest}
    # Its image was found on the page as crawled, not only when processed from the WARC.
    assert server.lot_url(1) in image_lots and report.images == LOTS
    (first,) = [row for row in _processed(tmp_path, site) if row["url"] == server.lot_url(1)]
    assert first["title"] == server.lots[0].title
    # The WARC keeps the body as received: gzip bytes with their Content-Encoding header.
    with open(report.warc_file, "rb") as handle:
        for record in ArchiveIterator(handle):
            uri = record.rec_headers.get_header("WARC-Target-URI")
            if record.rec_type == "response" and uri == server.lot_url(1):
                assert record.http_headers.get_header("Content-Encoding") == "gzip"
                assert record.raw_stream.read(2) == b"\x1f\x8b"


def test_decoded_read_stops_at_the_cap() -> None:
    from tasks.politeness import DecodedTooLarge, decode_content

    bomb = b"".join(bomb_chunks(b"<html></html>", inflated=256 * 2**20))
    tracemalloc.start()
    with pytest.raises(DecodedTooLarge) as caught:
        decode_content(bomb, "gzip", 1_000_000, "http://x/lot/1")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < len(bomb) + 3_000_000, f"decoding took {peak} bytes for a 1 MB cap"
    message = str(caught.value)
    assert "http://x/lot/1" in message and f"{len(bomb)} bytes" in message
    assert "1000000-byte cap" in message and "politeness.max_decoded_bytes" in message
    page = b"<html>" + b"x" * 1000 + b"</html>"
    assert decode_content(zlib.compress(page), "deflate", 10_000, "u") == page
    assert decode_content(page, "identity", 10_000, "u") == page


@pytest.mark.timeout(120)
def test_gzip_bomb_fails_its_lot_when_fetched_and_when_read_back(
    server: HostileSite, tmp_path: Path
) -> None:
    site = _site(server, "gzip-bomb", tmp_path)
    site_file = tmp_path / "sites" / f"{site.name}.yaml"
    # 3 GiB inflated cannot fit in 1.5 GiB of address space: the cap must hold.
    result = _child(site_file, tmp_path, timeout=90, address_space=1536 * 2**20)
    assert result["scrape_error"] is None and result["process_error"] is None, result
    bomb_url = server.lot_url(1)
    (failure,) = result["failed_urls"]
    assert failure.startswith(f"{bomb_url}: ") and "Content-Encoding gzip" in failure
    assert "20000000-byte cap (politeness.max_decoded_bytes)" in failure
    assert result["lots"] == LOTS - 1 and len(_processed(tmp_path, site)) == LOTS - 1
    # The WARC holds the bomb as received (~3 MB of gzip), and the reader stops at the cap.
    warc = DataRoot(tmp_path).warc_file(DAY, site.name)
    (stored,) = [p for p in read_responses(warc) if p.url == bomb_url]
    assert stored.body == b"" and stored.error is not None
    assert "max_decoded_bytes" in stored.error and str(warc) in stored.error
    with open(warc, "rb") as handle:
        sizes = [
            len(r.raw_stream.read())
            for r in ArchiveIterator(handle)
            if r.rec_type == "response" and r.rec_headers.get_header("WARC-Target-URI") == bomb_url
        ]
    assert sizes and 2_000_000 < sizes[0] < BOMB_DECODED_BYTES // 100
    (held,) = _quarantined(tmp_path, site)
    assert held["url"] == bomb_url and "max_decoded_bytes" in held["error"]


@pytest.mark.timeout(60)
def test_wrong_content_type_fails_its_lot(server: HostileSite, tmp_path: Path) -> None:
    site = _site(server, "wrong-content-type", tmp_path)
    scrape_site(site, DAY, str(tmp_path))
    assert _failures(tmp_path, site) == [
        f"{server.lot_url(1)}: content type 'application/pdf', expected one of text/html (if "
        "the site serves lot pages as application/pdf, add it to content_types.lot in the site "
        "file)"
    ]
    # The refused response stays in the WARC as received, but is no lot page when read back.
    report = process_site(site, DAY, str(tmp_path))
    urls = [row["url"] for row in _processed(tmp_path, site)]
    assert report.lots == LOTS - 1 and server.lot_url(1) not in urls


@pytest.mark.timeout(60)
def test_bad_charsets_are_read_as_utf8_with_replacements(
    server: HostileSite, tmp_path: Path
) -> None:
    site = _site(server, "bad-charset", tmp_path)
    scrape_site(site, DAY, str(tmp_path))
    process_site(site, DAY, str(tmp_path))
    rows = {row["url"]: row for row in _processed(tmp_path, site)}
    assert len(rows) == LOTS
    assert rows[server.lot_url(1)]["title"] == server.lots[0].title
    second = rows[server.lot_url(2)]
    assert second["title"] == server.lots[1].title and "\ufffd" in second["description"]


@pytest.mark.timeout(60)
def test_redirect_loop_fails_its_lot_after_five_hops(server: HostileSite, tmp_path: Path) -> None:
    site = _site(server, "redirect-loop", tmp_path)
    report = scrape_site(site, DAY, str(tmp_path))
    assert _failures(tmp_path, site) == [f"{server.lot_url(1)}: more than 5 redirects"]
    hops = [p for p in read_responses(Path(report.warc_file)) if p.url == server.lot_url(1)]
    assert [p.status for p in hops] == [302] * 6


@pytest.mark.timeout(60)
def test_off_host_redirect_is_not_followed(server: HostileSite, tmp_path: Path) -> None:
    site = _site(server, "off-host-redirect", tmp_path)
    scrape_site(site, DAY, str(tmp_path))
    (failure,) = _failures(tmp_path, site)
    assert failure.startswith("http://localhost:") and "not on this site's hosts" in failure
    assert [r for r in server.requests() if r.host.startswith("localhost")] == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("scenario", ["hanging", "trickle"])
def test_a_site_that_keeps_timing_out_is_given_up(
    server: HostileSite, tmp_path: Path, scenario: str
) -> None:
    site = _site(server, scenario, tmp_path)
    start = time.monotonic()
    with pytest.raises(SiteScrapeError) as caught:
        scrape_site(site, DAY, str(tmp_path))
    elapsed = time.monotonic() - start
    message = str(caught.value)
    assert "3 requests in a row timed out" in message, message
    assert "politeness.max_consecutive_timeouts" in message
    # 3 timeouts of at most 4 x 0.5 s each plus backoff, not 12 lots x 3 attempts.
    assert elapsed < 12, f"gave up after {elapsed:.1f} s"
    assert len(server.requests("/harrow-finch/lot/")) == 3
    warc = DataRoot(tmp_path).warc_file(DAY, site.name)
    assert not warc.exists() and warc.with_name(warc.name + ".failed").exists()


@pytest.mark.timeout(60)
def test_enormous_retry_after_fails_the_site_at_once(server: HostileSite, tmp_path: Path) -> None:
    site = _site(server, "retry-after", tmp_path)
    start = time.monotonic()
    with pytest.raises(SiteScrapeError) as caught:
        scrape_site(site, DAY, str(tmp_path))
    assert time.monotonic() - start < 5
    message = str(caught.value)
    assert "HTTP 429 asks to retry after 99999999 s" in message
    assert "politeness.max_retry_after_seconds (120 s)" in message
    assert len(server.requests("/harrow-finch/")) == 1


@pytest.mark.timeout(60)
def test_server_errors_fail_the_site_after_the_retries(server: HostileSite, tmp_path: Path) -> None:
    site = _site(server, "server-error", tmp_path)
    with pytest.raises(SiteScrapeError, match=r"listing page failed: .*HTTP 500 after 3 attempt"):
        scrape_site(site, DAY, str(tmp_path))
    assert len(server.requests("/harrow-finch/auctions/")) == 3


@pytest.mark.timeout(60)
def test_enormous_crawl_delay_fails_the_site_at_once(server: HostileSite, tmp_path: Path) -> None:
    site = _site(server, "crawl-delay", tmp_path)
    result = _child(
        tmp_path / "sites" / f"{site.name}.yaml", tmp_path, timeout=30, address_space=2**32
    )
    message = result["scrape_error"]
    assert message is not None and message.startswith("SiteScrapeError: hostile-crawl-delay: ")
    assert f"{server.origin}/robots.txt" in message and "Crawl-delay: 99999" in message
    assert "politeness.max_crawl_delay_seconds (30 s)" in message
    assert result["scrape_seconds"] < 5
    assert [r.path for r in server.requests()] == ["/robots.txt"]


@pytest.mark.timeout(60)
def test_endless_pagination_stops_at_max_pages_with_a_warning(
    server: HostileSite, tmp_path: Path
) -> None:
    site = _site(server, "endless-pagination", tmp_path)
    site = site.model_copy(update={"listing": site.listing.model_copy(update={"max_pages": 4})})
    report = scrape_site(site, DAY, str(tmp_path))
    assert report.listing_pages == 4 and report.lot_pages == LOTS
    assert len(server.requests("/harrow-finch/auctions/")) == 4
    (warning,) = report.warnings
    assert "listing.max_pages (4)" in warning and "?page=5" in warning
    again = scrape_site(site, DAY, str(tmp_path))  # reused from the backup: warning kept
    assert again.reused and again.warnings == report.warnings


def test_scrape_warnings_reach_the_summary() -> None:
    row = {"pages": 5, "lots": 3, "images": 3, "failed_urls": 0, "error": None}
    summary = {"state": "COMPLETED", "date": "2026-03-14", "flow_run_id": "x"}
    text = format_summary(summary | {"sites": {"s": row | {"warnings": ["stopped at 4"]}}})
    assert "ok, warning: stopped at 4" in text


@pytest.mark.timeout(60)
def test_odd_prices_are_kept_as_raw_text_never_guessed(server: HostileSite, tmp_path: Path) -> None:
    site = _site(server, "odd-prices", tmp_path)
    site = site.model_copy(
        update={"checks": site.checks.model_copy(update={"max_invalid_share": 0.5})}
    )
    scrape_site(site, DAY, str(tmp_path))
    process_site(site, DAY, str(tmp_path))
    clean = {row["url"]: row for row in _processed(tmp_path, site)}
    held = {row["url"]: row for row in _quarantined(tmp_path, site)}
    for number, text in enumerate(ODD_PRICES[:4], start=1):
        url = server.lot_url(number)
        assert url not in clean, f"{text!r} was stored as {clean[url]['sold_price']}"
        assert held[url]["raw"]["price"] == text and "price" in held[url]["error"]
    # Beyond what Numeric(18, 2) holds: an invalid lot with its text, not a database error.
    huge = server.lot_url(5)
    assert huge not in clean and held[huge]["raw"]["price"] == ODD_PRICES[4]
    assert len(clean) + len(held) == LOTS


@pytest.mark.timeout(60)
def test_colliding_lot_urls_are_never_merged_silently(server: HostileSite, tmp_path: Path) -> None:
    site = _site(server, "colliding-lot-urls", tmp_path)
    report = scrape_site(site, DAY, str(tmp_path))
    assert report.lot_pages == LOTS and report.failed_urls == []
    with contextlib.suppress(LayoutChangeError):  # many held back: the layout check may trip
        process_site(site, DAY, str(tmp_path))
    clean = (
        _processed(tmp_path, site)
        if DataRoot(tmp_path).processed_file(DAY, site.name).exists()
        else []
    )
    held = _quarantined(tmp_path, site)
    # Every distinct URL was fetched and is either one clean lot with a key of its own or
    # held back with the collision named, never folded into another lot.
    expected = sorted(server.lot_url(n) for n in range(1, LOTS + 1))
    assert sorted(row["url"] for row in clean + held) == expected
    keys = [row["lot_key"] for row in clean]
    assert len(keys) == len(set(keys)), keys
    for row in held:
        assert row["error"] and "lot key" in row["error"], row
    # Their URLs differ in the query, which the key keeps: all of them are clean lots.
    assert not held and len(clean) == LOTS
