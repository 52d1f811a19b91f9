"""Scrape one site for one day into its WARC file: listing or search pages, lot pages, images.

Every exchange goes into the site's WARC file for the day (see ``tasks/warc.py``), which
appears only when the crawl finished; images are also stored once by content hash, with a
manifest per site and day. A day already scraped is not fetched again (a re-run the same day
costs the site nothing and changes nothing) unless ``rescrape`` is asked for. One call owns
one site, which keeps the per-host rate limit honest; how the lots are found and fetched is
:mod:`tasks.crawl`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from importlib import metadata
from pathlib import Path

from infra.atomic import write_atomic
from sites.loader import SiteDefinition
from tasks.checksums import check_backup, restore_hint
from tasks.crawl import Crawl, SiteScrapeError
from tasks.crawlid import CrawlId, crawl_of
from tasks.politeness import CrawlAborted, PoliteFetcher, RequestSlot, accepted
from tasks.runinfo import RunPlace, where_am_i
from tasks.storage import DataRoot
from tasks.warc import WarcRecorder, read_responses

MAX_LOT_FAILURE_RATE = 0.1


@dataclass(frozen=True)
class ScrapeReport:
    """What one site's scrape fetched and stored, and where it ran.

    ``warnings`` are what the crawl completed with but a person should know, such as
    pagination cut short by ``listing.max_pages``: the run stays ok, the summary shows them.
    """

    site: str
    day: str
    listing_pages: int
    lot_pages: int
    images: int
    new_images: int
    failed_urls: list[str]
    requests_sent: int
    warc_file: str
    reused: bool = False
    warnings: list[str] = field(default_factory=list)
    search_pages: int = 0
    seller_pages: int = 0
    found: int = 0  # lots the listing or searches found
    revisited: int = 0  # lot pages fetched because the database follows them (not found)
    crawl: str = ""  # the crawl's id (tasks/crawlid.py)
    place: RunPlace = field(default_factory=where_am_i)


def warcinfo(
    site: SiteDefinition, day: date | CrawlId, description: str | None = None
) -> dict[str, str]:
    """The warcinfo record's fields of ``site``'s WARC of a crawl (a date: the day's);
    ``description`` says what the file holds (default: the crawl of the sale)."""
    crawl = crawl_of(day)
    return {
        "software": f"auction-pipeline/{metadata.version('auction-pipeline')} (warcio)",
        "format": "WARC File Format 1.1",
        "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
        "isPartOf": f"{site.name} {crawl.id}",
        "description": description
        or f"{site.house}: listing, lot and image pages of the crawl {crawl.id}",
        "http-header-user-agent": site.user_agent,
        "robots": "obey",
    }


def _reuse(site: SiteDefinition, crawl: CrawlId, root: DataRoot) -> ScrapeReport:
    """The report of a scrape whose WARC file is already complete (and intact: a damaged
    one fails the site with the way to restore it, rather than pass for the day's pages)."""
    warc = root.warc_file(crawl, site.name)
    check_backup(warc, restore_hint(root, crawl.day, warc))
    counts: dict[str, int] = {}
    for page in read_responses(warc, site.politeness.max_decoded_bytes):
        if (
            page.status == 200
            and page.error is None
            and accepted(page.content_type, site.accepts(page.kind))
        ):
            counts[page.kind] = counts.get(page.kind, 0) + 1
    manifest = root.image_manifest(crawl, site.name)
    images = len(manifest.read_text().splitlines()) if manifest.exists() else 0
    failures = root.failures_file(crawl, site.name)
    rows = (
        [json.loads(line) for line in failures.read_text().splitlines() if line]
        if failures.exists()
        else []
    )
    return ScrapeReport(
        site=site.name,
        day=crawl.day.isoformat(),
        crawl=crawl.id,
        listing_pages=counts.get("listing", 0),
        lot_pages=counts.get("lot", 0),
        images=images,
        new_images=0,
        failed_urls=[row["error"] for row in rows if "error" in row],
        requests_sent=0,
        warc_file=str(warc),
        reused=True,
        warnings=[row["warning"] for row in rows if "warning" in row],
        search_pages=counts.get("search", 0),
        seller_pages=counts.get("seller", 0),
    )


def scrape_site(
    site: SiteDefinition,
    day: date | CrawlId,
    data_root: str,
    rescrape: bool = False,
    progress: Callable[[int, int], None] | None = None,
    revisit: Sequence[str] = (),
    shared: RequestSlot | None = None,
) -> ScrapeReport:
    """Crawl ``site`` for ``day`` (a crawl, or a date: the day's crawl) into its WARC file
    under ``data_root``: its dated listing, its searches, or both, then the lots of
    ``revisit`` (URLs of lots the database follows until they close) that neither found.

    ``progress(done, total)`` is called after each listing or search page (``total`` grows
    with the lot pages found so far) and after each lot page is fetched with its images.
    Each request also holds a slot of ``shared`` (the site's rate shared across runs).
    """
    crawl_id = crawl_of(day)
    root = DataRoot(Path(data_root))
    warc_path = root.warc_file(crawl_id, site.name)
    if warc_path.exists() and not rescrape:
        return _reuse(site, crawl_id, root)
    image_rows: list[dict[str, str]] = []
    failed: list[str] = []
    with (
        WarcRecorder(warc_path, warcinfo(site, crawl_id)) as warc,
        PoliteFetcher(site.user_agent, site.politeness, site.hosts, warc.record, shared) as fetcher,
        ThreadPoolExecutor(site.politeness.concurrency) as pool,
    ):
        crawl = Crawl(site, root, fetcher, pool, progress or (lambda done, total: None))
        try:
            crawl.listing(crawl_id.day)
            crawl.searches()
            found = len(crawl.lot_urls)
            crawl.fetch_lots(list(revisit))  # those found again are not fetched twice
            revisited = len(crawl.lot_urls) - found
            lots = crawl.results()
        except CrawlAborted as exc:  # request cap, Crawl-delay cap, site unresponsive
            raise SiteScrapeError(f"{site.name}: {exc}") from exc
        finally:  # a failed crawl sends no further requests
            crawl.cancel()
        lot_pages = sum(lot.ok for lot in lots)
        # The failure rate judges the lots the day's listing or search found; a followed lot
        # the platform no longer serves is listed, and stays followed until follow_days.
        failed_lots = sum(not lot.ok for lot in lots[:found])
        for lot in lots:
            failed.extend(lot.failures)
            image_rows.extend(lot.images)
        if found and failed_lots / found > MAX_LOT_FAILURE_RATE:
            raise SiteScrapeError(
                f"{site.name}: {failed_lots} of {found} lot pages failed "
                f"(more than {MAX_LOT_FAILURE_RATE:.0%}); first: {failed[0]}"
            )
        lines = "".join(json.dumps(row, sort_keys=True) + "\n" for row in image_rows)
        write_atomic(root.image_manifest(crawl_id, site.name), lines.encode())
        lines = "".join(json.dumps({"error": message}) + "\n" for message in failed)
        lines += "".join(json.dumps({"warning": message}) + "\n" for message in crawl.warnings)
        write_atomic(root.failures_file(crawl_id, site.name), lines.encode())

    return ScrapeReport(
        site=site.name,
        day=crawl_id.day.isoformat(),
        crawl=crawl_id.id,
        found=found,
        revisited=revisited,
        listing_pages=crawl.listing_pages,
        lot_pages=lot_pages,
        images=len(image_rows),
        new_images=sum(lot.new_images for lot in lots),
        failed_urls=failed,
        requests_sent=fetcher.requests_sent,
        warc_file=str(warc_path),
        warnings=crawl.warnings,
        seller_pages=sum(lot.seller_pages for lot in lots),
        search_pages=crawl.search_pages,
    )
