"""Scrape one auction site for one sale date: listing pages, lot pages and images.

Every exchange goes into the site's WARC file for the day (see ``tasks/warc.py``), which
appears only when the crawl finished; images are also stored once by content hash, with a
manifest per site and day. A day already scraped is not fetched again (a re-run the same day
costs the site nothing and changes nothing) unless ``rescrape`` is asked for. One call owns
one site, which keeps the per-host rate limit honest.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from importlib import metadata
from pathlib import Path

from infra.atomic import write_atomic
from sites.loader import SiteDefinition
from tasks.checksums import check_backup, restore_hint
from tasks.extract import extract_listing, extract_lot
from tasks.politeness import CrawlAborted, Fetched, FetchError, PoliteFetcher, accepted
from tasks.runinfo import RunPlace, where_am_i
from tasks.storage import DataRoot, store_content_addressed
from tasks.warc import WarcRecorder, read_responses

MAX_LOT_FAILURE_RATE = 0.1


class SiteScrapeError(RuntimeError):
    """The site could not be scraped well enough to be trusted; the message says why."""


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
    place: RunPlace = field(default_factory=where_am_i)


@dataclass
class LotFetch:
    """What fetching one lot page and its images gave."""

    ok: bool
    failures: list[str] = field(default_factory=list)
    images: list[dict[str, str]] = field(default_factory=list)
    new_images: int = 0


def decode_html(body: bytes, content_type: str) -> str:
    """The page's text, decoded with the charset its Content-Type names (UTF-8 otherwise).

    Used both when crawling and when processing stored pages, so both read the same text.
    """
    charset = "utf-8"
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            charset = value.strip('"')
    try:
        return body.decode(charset, errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def _warcinfo(site: SiteDefinition, day: date) -> dict[str, str]:
    return {
        "software": f"auction-pipeline/{metadata.version('auction-pipeline')} (warcio)",
        "format": "WARC File Format 1.1",
        "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
        "isPartOf": f"{site.name} {day.isoformat()}",
        "description": f"{site.house}: listing, lot and image pages of the sale on {day}",
        "http-header-user-agent": site.user_agent,
        "robots": "obey",
    }


def _reuse(site: SiteDefinition, day: date, root: DataRoot) -> ScrapeReport:
    """The report of a scrape whose WARC file is already complete (and intact: a damaged
    one fails the site with the way to restore it, rather than pass for the day's pages)."""
    warc = root.warc_file(day, site.name)
    check_backup(warc, restore_hint(root, day, warc))
    counts: dict[str, int] = {}
    for page in read_responses(warc, site.politeness.max_decoded_bytes):
        if (
            page.status == 200
            and page.error is None
            and accepted(page.content_type, site.accepts(page.kind))
        ):
            counts[page.kind] = counts.get(page.kind, 0) + 1
    manifest = root.image_manifest(day, site.name)
    images = len(manifest.read_text().splitlines()) if manifest.exists() else 0
    failures = root.failures_file(day, site.name)
    rows = (
        [json.loads(line) for line in failures.read_text().splitlines() if line]
        if failures.exists()
        else []
    )
    return ScrapeReport(
        site=site.name,
        day=day.isoformat(),
        listing_pages=counts.get("listing", 0),
        lot_pages=counts.get("lot", 0),
        images=images,
        new_images=0,
        failed_urls=[row["error"] for row in rows if "error" in row],
        requests_sent=0,
        warc_file=str(warc),
        reused=True,
        warnings=[row["warning"] for row in rows if "warning" in row],
    )


def _max_pages_warning(site: SiteDefinition, next_url: str | None, seen: set[str]) -> list[str]:
    """The warning for a listing cut short by ``listing.max_pages``, if it was."""
    if not next_url or next_url in seen:
        return []
    return [
        f"stopped at listing.max_pages ({site.listing.max_pages}) listing pages; the next one, "
        f"{next_url}, was not fetched, so the sale may have more lots. Raise listing.max_pages "
        f"in sites/{site.name}.yaml if the sale is really that long"
    ]


def scrape_site(
    site: SiteDefinition,
    day: date,
    data_root: str,
    rescrape: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ScrapeReport:
    """Crawl ``site`` for sale date ``day`` into its WARC file under ``data_root``.

    ``progress(done, total)`` is called after each listing page (``total`` grows with the
    lot pages found so far) and after each lot page is fetched with its images.
    """
    root = DataRoot(Path(data_root))
    warc_path = root.warc_file(day, site.name)
    if warc_path.exists() and not rescrape:
        return _reuse(site, day, root)
    image_rows: list[dict[str, str]] = []
    failed: list[str] = []
    new_images = 0
    with (
        WarcRecorder(warc_path, _warcinfo(site, day)) as warc,
        PoliteFetcher(site.user_agent, site.politeness, site.hosts, warc.record) as fetcher,
    ):

        def html(fetched: Fetched) -> str:
            return decode_html(fetched.body, fetched.content_type)

        def fetch_lot(lot_url: str) -> LotFetch:
            """One lot page and its images; failures are reported, not raised."""
            try:
                fetched = fetcher.get(lot_url, kind="lot", expect=site.accepts("lot"))
            except CrawlAborted:
                raise  # the whole crawl stops: a truncated day must not look finished
            except FetchError as exc:
                return LotFetch(ok=False, failures=[str(exc)])
            result = LotFetch(ok=True)
            raw = extract_lot(site, html(fetched), fetched.url)
            images = raw.get("images") or []
            for image_url in images if isinstance(images, list) else [images]:
                try:
                    image = fetcher.get(image_url, kind="image", expect=site.accepts("image"))
                except CrawlAborted:
                    raise
                except FetchError as exc:
                    result.failures.append(str(exc))
                    continue
                digest, is_new = store_content_addressed(root, image.body)
                result.new_images += is_new
                result.images.append(
                    {
                        "lot_url": fetched.url,
                        "url": image.url,
                        "sha256": digest,
                        "path": str(root.image_path(digest).relative_to(root.path)),
                    }
                )
            return result

        # Listing and lot pages share one pool of `concurrency` connections (and the
        # fetcher's rate limit): a listing page's lots are fetched while the next listing
        # page is still coming, so the rate limiter always has a request ready.
        report = progress or (lambda done, total: None)
        url: str | None = site.start_url_for(day.isoformat())
        lot_urls: list[str] = []
        known: set[str] = set()
        pending: list[Future[LotFetch]] = []
        seen_pages: set[str] = set()
        listing_pages = 0
        lots: list[LotFetch] = []
        with ThreadPoolExecutor(site.politeness.concurrency) as pool:
            try:
                while url and url not in seen_pages and listing_pages < site.listing.max_pages:
                    seen_pages.add(url)
                    try:
                        fetched = pool.submit(
                            fetcher.get, url, kind="listing", expect=site.accepts("listing")
                        ).result()
                    except CrawlAborted:
                        raise
                    except FetchError as exc:
                        raise SiteScrapeError(f"{site.name}: listing page failed: {exc}") from exc
                    listing_pages += 1
                    links, url = extract_listing(site, html(fetched), fetched.url)
                    new = [link for link in dict.fromkeys(links) if link not in known]
                    known.update(new)
                    lot_urls += new
                    pending += [pool.submit(fetch_lot, link) for link in new]
                    report(sum(future.done() for future in pending), len(lot_urls))
                for future in pending:
                    lots.append(future.result())
                    report(len(lots), len(lot_urls))
            except CrawlAborted as exc:  # request cap, Crawl-delay cap, site unresponsive
                raise SiteScrapeError(f"{site.name}: {exc}") from exc
            finally:  # a failed crawl sends no further requests
                for future in pending:
                    future.cancel()
        lot_pages = sum(lot.ok for lot in lots)
        failed_lots = len(lots) - lot_pages
        for lot in lots:
            failed.extend(lot.failures)
            image_rows.extend(lot.images)
            new_images += lot.new_images

        if lot_urls and failed_lots / len(lot_urls) > MAX_LOT_FAILURE_RATE:
            raise SiteScrapeError(
                f"{site.name}: {failed_lots} of {len(lot_urls)} lot pages failed "
                f"(more than {MAX_LOT_FAILURE_RATE:.0%}); first: {failed[0]}"
            )
        lines = "".join(json.dumps(row, sort_keys=True) + "\n" for row in image_rows)
        write_atomic(root.image_manifest(day, site.name), lines.encode())
        warnings = _max_pages_warning(site, url, seen_pages)
        lines = "".join(json.dumps({"error": message}) + "\n" for message in failed)
        lines += "".join(json.dumps({"warning": message}) + "\n" for message in warnings)
        write_atomic(root.failures_file(day, site.name), lines.encode())

    return ScrapeReport(
        site=site.name,
        day=day.isoformat(),
        listing_pages=listing_pages,
        lot_pages=lot_pages,
        images=len(image_rows),
        new_images=new_images,
        failed_urls=failed,
        requests_sent=fetcher.requests_sent,
        warc_file=str(warc_path),
        warnings=warnings,
    )
