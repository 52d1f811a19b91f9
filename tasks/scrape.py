"""Scrape one auction site for one sale date: listing pages, lot pages and images.

Pages are kept exactly as served under ``raw/<date>/<site>/`` with a ``pages.jsonl`` index,
so processing reads stored pages rather than the live site and can be re-run after a
selector fix. The directory appears only when the crawl finished; images are stored once by
content hash. One call owns one site, which keeps the per-host rate limit honest.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from infra.atomic import write_atomic
from sites.loader import SiteDefinition
from tasks.extract import extract_listing, extract_lot
from tasks.politeness import Fetched, FetchError, PoliteFetcher
from tasks.runinfo import RunPlace, where_am_i
from tasks.storage import DataRoot, staged_directory, store_content_addressed

INDEX_NAME = "pages.jsonl"
IMAGES_NAME = "images.jsonl"
MAX_LOT_FAILURE_RATE = 0.1


class SiteScrapeError(RuntimeError):
    """The site could not be scraped well enough to be trusted; the message says why."""


@dataclass(frozen=True)
class ScrapeReport:
    """What one site's scrape fetched and stored, and where it ran."""

    site: str
    day: str
    listing_pages: int
    lot_pages: int
    images: int
    new_images: int
    failed_urls: list[str]
    requests_sent: int
    raw_dir: str
    place: RunPlace = field(default_factory=where_am_i)


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


def _page_name(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:32] + ".html"


def scrape_site(site: SiteDefinition, day: date, data_root: str) -> ScrapeReport:
    """Crawl ``site`` for sale date ``day`` and store what was fetched under ``data_root``."""
    root = DataRoot(Path(data_root))
    final_dir = root.raw_dir(day, site.name)
    index: list[dict[str, object]] = []
    image_rows: list[dict[str, str]] = []
    failed: list[str] = []
    failed_lots = 0
    new_images = 0

    def keep(stage: Path, kind: str, fetched: Fetched) -> str:
        name = _page_name(fetched.url)
        write_atomic(stage / "pages" / name, fetched.body)
        index.append(
            {
                "kind": kind,
                "url": fetched.url,
                "status": fetched.status,
                "content_type": fetched.content_type,
                "path": f"pages/{name}",
                "sha256": hashlib.sha256(fetched.body).hexdigest(),
                "fetched_at": fetched.fetched_at,
                "attempts": fetched.attempts,
            }
        )
        return decode_html(fetched.body, fetched.content_type)

    with (
        PoliteFetcher(site.user_agent, site.politeness, site.hosts) as fetcher,
        staged_directory(final_dir) as stage,
    ):
        url: str | None = site.start_url_for(day.isoformat())
        lot_urls: list[str] = []
        seen_pages: set[str] = set()
        listing_pages = 0
        while url and url not in seen_pages and listing_pages < site.listing.max_pages:
            seen_pages.add(url)
            try:
                fetched = fetcher.get(url)
            except FetchError as exc:
                raise SiteScrapeError(f"{site.name}: listing page failed: {exc}") from exc
            listing_pages += 1
            links, url = extract_listing(site, keep(stage, "listing", fetched), fetched.url)
            lot_urls.extend(link for link in links if link not in lot_urls)

        for lot_url in lot_urls:
            try:
                fetched = fetcher.get(lot_url)
            except FetchError as exc:
                failed.append(str(exc))
                failed_lots += 1
                continue
            raw = extract_lot(site, keep(stage, "lot", fetched), fetched.url)
            images = raw.get("images") or []
            for image_url in images if isinstance(images, list) else [images]:
                try:
                    image = fetcher.get(image_url, expect=("image/",))
                except FetchError as exc:
                    failed.append(str(exc))
                    continue
                digest, is_new = store_content_addressed(root, image.body)
                new_images += is_new
                image_rows.append({"lot_url": fetched.url, "url": image.url, "sha256": digest})

        if lot_urls and failed_lots / len(lot_urls) > MAX_LOT_FAILURE_RATE:
            raise SiteScrapeError(
                f"{site.name}: {failed_lots} of {len(lot_urls)} lot pages failed "
                f"(more than {MAX_LOT_FAILURE_RATE:.0%}); first: {failed[0]}"
            )
        lines = "".join(json.dumps(row, sort_keys=True) + "\n" for row in index)
        write_atomic(stage / INDEX_NAME, lines.encode())
        lines = "".join(json.dumps(row, sort_keys=True) + "\n" for row in image_rows)
        write_atomic(stage / IMAGES_NAME, lines.encode())

    return ScrapeReport(
        site=site.name,
        day=day.isoformat(),
        listing_pages=listing_pages,
        lot_pages=sum(1 for row in index if row["kind"] == "lot"),
        images=len(image_rows),
        new_images=new_images,
        failed_urls=failed,
        requests_sent=fetcher.requests_sent,
        raw_dir=str(final_dir),
    )
