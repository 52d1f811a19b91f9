"""One crawl of one site: find its lots (dated listing, keyword searches, or both) and fetch
each lot page once, with its follow-up resources and images, and each lot's seller's profile
once per crawl, through the site's polite fetcher.

Finding and fetching share one pool of ``concurrency`` connections and the fetcher's rate
limit: a result page's lots are fetched while the next result page is still coming, so the
rate limiter always has a request ready. A lot found twice (on two listing pages, by two
queries, under two tracking parameters) is fetched once. Failures of single lot pages are
collected; a failure that makes the day untrustworthy (a listing or search page, a cap of
the whole crawl) raises SiteScrapeError.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date

from sites.loader import SiteDefinition
from tasks.chains import Page, page_of
from tasks.extract import extract_listing, extract_lot, extract_results, follow_up_urls
from tasks.politeness import CrawlAborted, Fetched, FetchError, PoliteFetcher
from tasks.search import SearchMerge, lot_identity
from tasks.sellers import seller_url
from tasks.storage import DataRoot, store_content_addressed


class SiteScrapeError(RuntimeError):
    """The site could not be scraped well enough to be trusted; the message says why."""


def _page(fetched: Fetched) -> Page:
    return page_of(fetched.body, fetched.content_type)


@dataclass
class LotFetch:
    """What fetching one lot page and its images gave; ``url`` is the lot page's URL after
    redirects (empty when the page failed)."""

    ok: bool
    failures: list[str] = field(default_factory=list)
    images: list[dict[str, str]] = field(default_factory=list)
    new_images: int = 0
    url: str = ""
    seller_pages: int = 0


@dataclass
class Crawl:
    """The state of one site's crawl: lots found so far and their fetches."""

    site: SiteDefinition
    root: DataRoot
    fetcher: PoliteFetcher
    pool: ThreadPoolExecutor
    progress: Callable[[int, int], None] = lambda done, total: None
    lot_urls: list[str] = field(default_factory=list)
    pending: list[Future[LotFetch]] = field(default_factory=list)
    listing_pages: int = 0
    search_pages: int = 0
    warnings: list[str] = field(default_factory=list)
    _known: set[str] = field(default_factory=set)
    _sellers: set[str] = field(default_factory=set)  # profile URLs claimed by a lot's fetch
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _get(self, url: str, kind: str) -> Fetched:
        """A listing or search page, in the shared pool; its failure fails the site."""
        try:
            return self.pool.submit(
                self.fetcher.get, url, kind=kind, expect=self.site.accepts(kind)
            ).result()
        except CrawlAborted:
            raise
        except FetchError as exc:
            raise SiteScrapeError(f"{self.site.name}: {kind} page failed: {exc}") from exc

    def _found(self, links: list[str]) -> None:
        """Queue the fetch of every lot in ``links`` not found before (by its identity)."""
        for link in links:
            identity = lot_identity(self.site, link)
            if identity not in self._known:
                self._known.add(identity)
                self.lot_urls.append(link)
                self.pending.append(self.pool.submit(self._fetch_lot, link))
        self.progress(sum(f.done() for f in self.pending), len(self.lot_urls))

    def fetch_lots(self, links: list[str]) -> None:
        """Queue the fetch of the lot pages at ``links`` (asked for by URL, not found by a
        listing or search: ``auction-pipeline lot``), each lot once however many of its URLs
        are given; :meth:`results` waits for them."""
        self._found(links)

    def listing(self, day: date) -> None:
        """Follow the dated listing of ``day`` page by page, up to ``listing.max_pages``."""
        rule = self.site.listing
        url = self.site.start_url_for(day.isoformat())
        if rule is None or url is None:
            return
        seen: set[str] = set()
        next_url: str | None = url
        while next_url and next_url not in seen and self.listing_pages < rule.max_pages:
            seen.add(next_url)
            fetched = self._get(next_url, "listing")
            self.listing_pages += 1
            links, next_url = extract_listing(self.site, _page(fetched), fetched.url)
            self._found(links)
        if next_url and next_url not in seen:
            self.warnings.append(
                f"stopped at listing.max_pages ({rule.max_pages}) listing pages; the next one, "
                f"{next_url}, was not fetched, so the sale may have more lots. Raise "
                f"listing.max_pages in sites/{self.site.name}.yaml if the sale is really that "
                "long"
            )

    def searches(self) -> None:
        """Run each of the site's queries page by page (``tasks/search.py`` says when each
        stops), fetching every lot once however many queries find it."""
        search = self.site.search
        if search is None:
            return
        merge = SearchMerge(self.site)
        for query in search.queries:
            page = search.first_page
            while merge.wants(query):
                fetched = self._get(search.page_url(self.site.base_url, query, page), "search")
                self.search_pages += 1
                links = extract_results(self.site, _page(fetched), fetched.url)
                self._found(merge.add(query, page, links))
                page += 1
        self.warnings += merge.warnings

    def results(self) -> list[LotFetch]:
        """Wait for every queued lot fetch, reporting progress."""
        done = []
        for future in self.pending:
            done.append(future.result())
            self.progress(len(done), len(self.lot_urls))
        return done

    def cancel(self) -> None:
        """Cancel the lot fetches not started: a failed crawl sends no further requests."""
        for future in self.pending:
            future.cancel()

    def _first_of_seller(self, profile_url: str) -> bool:
        """Whether this lot's fetch is the crawl's first to reach the seller at
        ``profile_url`` (lot fetches run in several threads)."""
        with self._lock:
            first = profile_url not in self._sellers
            self._sellers.add(profile_url)
            return first

    def _fetch_lot(self, lot_url: str) -> LotFetch:
        """One lot page, its follow-ups and its images; failures are reported, not raised."""
        site, fetcher, root = self.site, self.fetcher, self.root
        try:
            fetched = fetcher.get(lot_url, kind="lot", expect=site.accepts("lot"))
        except CrawlAborted:
            raise  # the whole crawl stops: a truncated day must not look finished
        except FetchError as exc:
            return LotFetch(ok=False, failures=[str(exc)])
        result = LotFetch(ok=True, url=fetched.url)
        page = _page(fetched)
        raw = extract_lot(site, page, fetched.url)
        for name, url in follow_up_urls(site, page, fetched.url, raw).items():
            try:  # into the WARC beside the lot page; its fields stay missing if it fails
                fetcher.get(url, kind=name, expect=site.accepts(name))
            except CrawlAborted:
                raise
            except FetchError as exc:
                result.failures.append(str(exc))
        profile = seller_url(site, page, fetched.url, raw)
        if profile is not None and self._first_of_seller(profile):
            try:  # once per crawl, however many lots it sells; a failure loses the profile only
                fetcher.get(profile, kind="seller", expect=site.accepts("seller"))
                result.seller_pages += 1
            except CrawlAborted:
                raise
            except FetchError as exc:
                result.failures.append(str(exc))
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
