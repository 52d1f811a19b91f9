"""Process one site's stored pages for one day into clean, validated lots.

Reads the lot pages from the site's WARC file for the day (never the live site), extracts
each field with the site's selectors, parses prices, estimates and dates, and writes the
clean lots to one JSON-lines file per site and day. A lot's key is the platform's lot id where
the site file says where it is (``lot_id:``), else it comes from the URL; when two different
URLs give one URL key, the later pages are held back as invalid (naming both URLs) rather
than merged into one lot. A lot whose page is in the WARC twice (the crawl's and one fetched
later on demand, appended after it) is one lot of the day: the later valid page wins.

Before anything reaches the database the run is checked as a whole (Spidermon-style): the
fill rate of each required field, the share of lots failing validation, and the number of
lots against recent runs. A breach usually means the site changed its layout: the site fails
with the numbers and a sample URL, its lots go to ``quarantine/`` instead of ``processed/``,
and the pages stay in the WARC, so a reprocess after fixing the selectors recovers the day.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from infra.atomic import write_atomic
from sites.loader import SiteDefinition
from tasks.chains import Page, page_of
from tasks.checksums import check_backup, restore_hint
from tasks.crawlid import CrawlId, crawl_of
from tasks.extract import RawLot, extract_lot, extract_results, follow_up_urls
from tasks.normalise import (
    FieldProblem,
    LotRecord,
    LotValidationError,
    lot_key_for,
    lot_key_of,
    normalise_lot,
)
from tasks.politeness import accepted
from tasks.runinfo import RunPlace, where_am_i
from tasks.search import SearchMerge
from tasks.sellers import seller_url, stored_sellers
from tasks.storage import DataRoot
from tasks.warc import holds_crawl, read_pages, read_responses


class LayoutChangeError(RuntimeError):
    """The day's lots failed the site's checks: its layout probably changed."""


@dataclass(frozen=True)
class ProcessReport:
    """What processing one site's pages produced."""

    site: str
    day: str
    lots: int
    invalid: int
    fill_rates: dict[str, float]
    processed_file: str
    place: RunPlace = field(default_factory=where_am_i)
    sellers: int = 0  # seller profiles read
    crawl: str = ""  # the crawl's id (tasks/crawlid.py)


def fill_rates(site: SiteDefinition, raws: list[RawLot]) -> dict[str, float]:
    """Share of lot pages on which each required field's selector found something."""
    required = [name for name, rule in site.fields.items() if rule.required]
    if not raws:
        return {}  # no sale that day: nothing to judge the layout by
    return {name: sum(1 for raw in raws if raw.get(name)) / len(raws) for name in required}


def check_run(
    site: SiteDefinition,
    raws: list[RawLot],
    rates: dict[str, float],
    invalid: int,
    recent_counts: list[int],
) -> list[str]:
    """The site's checks for one run; each breach as a sentence (empty when all pass)."""
    breaches = []
    if len(raws) < site.checks.min_lots:
        breaches.append(
            f"{len(raws)} lot pages (at least {site.checks.min_lots} expected): the listing "
            "selectors may have stopped finding lots; after fixing them run the day again "
            "with --rescrape, since the lot pages were never fetched"
        )
    low = {n: r for n, r in rates.items() if r < site.fields[n].min_fill_rate}
    if low:
        shown = ", ".join(
            f"{n} {r:.0%} (needs {site.fields[n].min_fill_rate:.0%})"
            for n, r in sorted(low.items())
        )
        breaches.append(f"required fields below their fill rate: {shown}")
    if invalid > site.checks.max_invalid_share * len(raws):
        breaches.append(
            f"{invalid} of {len(raws)} lots failed validation "
            f"(at most {site.checks.max_invalid_share:.0%} may)"
        )
    ratio = site.checks.min_count_ratio
    history = recent_counts[: site.checks.count_history]
    if ratio is not None and len(history) >= 3:
        median = statistics.median(history)
        if len(raws) < ratio * median:
            breaches.append(
                f"{len(raws)} lots against a median of {median:g} over the last "
                f"{len(history)} runs (at least {ratio:.0%} expected)"
            )
    return breaches


def key_collision(site: SiteDefinition, url: str, owners: dict[str, str]) -> str | None:
    """The error for a lot page whose key an earlier, different URL already has, else None.

    Without ``lot_id:`` keys come from the URL (:func:`tasks.normalise.lot_key_of`), so /a/lot/X and
    /b/lot/X give one key: loading both would merge two lots silently. The first URL keeps the
    key and ``owners`` records it; the later ones become invalid lots, quarantined with their
    raw text, naming both URLs and the key.
    """
    if site.lot_id is not None:
        return None  # the platform's own ids: two URLs with one id are one lot
    key = lot_key_of(url)
    first = owners.setdefault(key, url)
    if not key or first == url:
        return None
    problem = FieldProblem(
        "url",
        url,
        f"a URL with a lot key of its own, but its lot key {key!r} is also that of {first}, "
        "processed before it; this page is held back so the two are not merged into one lot. "
        "If they are one lot, make the site's lot_links selector find one URL for it; if not, "
        "they need lot ids of the platform (the next issue)",
    )
    return str(LotValidationError(site.name, url, [problem]))


def stored_follow_ups(site: SiteDefinition, warc: Path) -> dict[str, Page]:
    """The follow-up resources in the WARC (any of the site's follow-up kinds), by URL, as
    the extraction reads them; those refused or over the decoded cap are left out."""
    found: dict[str, Page] = {}
    for page in read_responses(warc, site.politeness.max_decoded_bytes):
        usable = page.status == 200 and page.error is None
        if (
            usable
            and page.kind in site.follow
            and accepted(page.content_type, site.accepts(page.kind))
        ):
            found[page.url] = page_of(page.body, page.content_type)
    return found


def _resources_of(
    site: SiteDefinition, lot_page: Page, url: str, stored: dict[str, Page]
) -> dict[str, Page] | None:
    """The follow-ups of the lot page at ``url`` found in the WARC, by follow-up name."""
    if not site.follow:
        return None
    wanted = follow_up_urls(site, lot_page, url, extract_lot(site, lot_page, url))
    return {name: stored[u] for name, u in wanted.items() if u in stored}


def replay_searches(site: SiteDefinition, warc: Path) -> SearchMerge:
    """Which queries found each lot, from the result pages stored in the WARC, merged by the
    same rule the crawl followed (``tasks/search.py``), so a reprocess agrees with it."""
    merge = SearchMerge(site)
    if site.search is None:
        return merge
    for page in read_pages(warc, "search", site.politeness.max_decoded_bytes):
        asked = site.search.query_of(site.base_url, page.url)
        if asked is None or page.error or not accepted(page.content_type, site.accepts("search")):
            continue
        links = extract_results(site, page_of(page.body, page.content_type), page.url)
        merge.add(*asked, links)
    return merge


@dataclass
class _LotPage:
    """One lot page of the day as processing judged it: its record, or why it has none."""

    url: str
    raw: RawLot
    error: str | None
    record: LotRecord | None = None
    seller_url: str | None = None  # the seller's profile page, where the site has one


def _identity(site: SiteDefinition, raw: RawLot, url: str) -> str:
    """Which lot a page is, to tell a lot fetched twice in a day from two lots: the platform's
    lot id where the site has ``lot_id:`` (two slugs of one lot are one lot), else the URL
    (two different URLs with one URL key stay two pages, for :func:`key_collision`)."""
    if site.lot_id is not None:
        try:
            key = lot_key_for(site, raw, url)
        except ValueError:
            key = ""
        if key:
            return f"id:{key}"
    return f"url:{url}"


def _keep(
    pages: dict[str, _LotPage], superseded: list[_LotPage], identity: str, page: _LotPage
) -> None:
    """Take ``page`` as the one of its lot for the day, read after the earlier ones.

    A lot's page can be in the WARC twice: the crawl's, and one fetched later on demand
    (``auction-pipeline lot``), appended after it. The later page wins, so the day has one
    record of the lot, the most recent; but a later page that does not validate does not
    displace a valid earlier one (a bad fetch must not erase a good observation): it is held
    back in quarantine with its reason, and the earlier record stays.
    """
    earlier = pages.get(identity)
    if earlier is not None and earlier.record is not None and page.record is None:
        note = "a later page of this lot that did not validate; the earlier page is kept"
        superseded.append(_LotPage(page.url, page.raw, f"{page.error} ({note})"))
        return
    pages.pop(identity, None)  # re-inserted: the lots stay in the order of their pages
    pages[identity] = page


def _jsonl(rows: list[str]) -> bytes:
    return "".join(row + "\n" for row in rows).encode()


def judged_lot_by_lot(site: SiteDefinition) -> SiteDefinition:
    """``site`` with the checks of a whole day's crawl off (lot count, fill rates, invalid
    share): a day holding only lots fetched on demand is no crawl to judge a layout by. Each
    lot is still validated alone, an invalid one quarantined with its fields named."""
    fields = {
        name: rule.model_copy(update={"min_fill_rate": 0.0}) for name, rule in site.fields.items()
    }
    checks = site.checks.model_copy(
        update={"min_lots": 0, "max_invalid_share": 1.0, "min_count_ratio": None}
    )
    return site.model_copy(update={"fields": fields, "checks": checks})


def _write_sellers(
    site: SiteDefinition, day: CrawlId, root: DataRoot, warc: Path, kept: list[_LotPage]
) -> int:
    """The day's seller profiles, read from the WARC for the sellers its valid lots name,
    to ``processed/`` (readable ones) and ``quarantine/`` (the others, with their reason)."""
    wanted = {
        lot.seller_url: lot.record.seller_id
        for lot in kept
        if lot.record is not None and lot.record.seller_id and lot.seller_url
    }
    found = stored_sellers(site, warc, wanted)
    held_file = root.held_sellers_file(day, site.name)
    if found.held:
        write_atomic(held_file, _jsonl([json.dumps(r, ensure_ascii=False) for r in found.held]))
    else:
        held_file.unlink(missing_ok=True)
    write_atomic(
        root.sellers_file(day, site.name), _jsonl([r.model_dump_json() for r in found.records])
    )
    return len(found.records)


def process_site(
    site: SiteDefinition,
    day: date | CrawlId,
    data_root: str,
    recent_counts: list[int] | None = None,
) -> ProcessReport:
    """Extract, validate and check the lots of ``site`` of a crawl (a date: the day's crawl)
    from its WARC file.

    ``recent_counts`` are the site's lot counts of recent runs (most recent first), for the
    item-count check; the caller reads them from the database. A WARC holding no listing or
    search page (lots fetched on demand only) is judged lot by lot
    (:func:`judged_lot_by_lot`), by ``reprocess`` as by the command that fetched them.
    """
    crawl = crawl_of(day)
    root = DataRoot(Path(data_root))
    warc = root.warc_file(crawl, site.name)
    if not warc.exists():
        raise FileNotFoundError(
            f"{site.name}: no page backup for {crawl} ({warc} is missing); "
            "run the pipeline for that day first"
        )
    check_backup(warc, restore_hint(root, crawl.day, warc))  # a damaged backup is never read
    if not holds_crawl(warc):
        site = judged_lot_by_lot(site)
    pages: dict[str, _LotPage] = {}  # by lot identity: the page that counts for the day
    superseded: list[_LotPage] = []  # later pages of a lot that did not validate
    key_owners: dict[str, str] = {}
    searched = replay_searches(site, warc)
    follow_ups = stored_follow_ups(site, warc)
    for page in read_pages(warc, "lot", site.politeness.max_decoded_bytes):
        if not accepted(page.content_type, site.accepts("lot")):
            continue  # the crawl refused it (a failed URL of the day), it is no lot page
        if page.error is not None:  # e.g. a gzip bomb: an invalid lot, not a worker's memory
            _keep(pages, superseded, f"url:{page.url}", _LotPage(page.url, {}, page.error))
            continue
        lot_page = page_of(page.body, page.content_type)
        resources = _resources_of(site, lot_page, page.url, follow_ups)
        raw = extract_lot(site, lot_page, page.url, resources=resources)
        collision = key_collision(site, page.url, key_owners)
        try:
            record = normalise_lot(site, raw, page.url)
        except LotValidationError as exc:
            error = "; ".join(filter(None, [str(exc), collision]))
            _keep(pages, superseded, _identity(site, raw, page.url), _LotPage(page.url, raw, error))
            continue
        found = record.model_copy(update={"found_by": searched.queries_of(page.url)})
        lot = _LotPage(page.url, raw, collision, None if collision else found)
        lot.seller_url = seller_url(site, lot_page, page.url, raw)
        _keep(pages, superseded, _identity(site, raw, page.url), lot)
    kept = list(pages.values())
    raws = [lot.raw for lot in kept]
    urls = [lot.url for lot in kept]
    errors = {lot.url: lot.error for lot in kept if lot.error is not None}
    records = [lot.record for lot in kept if lot.record is not None]

    quarantine = root.quarantine_file(crawl, site.name)
    rates = fill_rates(site, raws)
    breaches = check_run(site, raws, rates, len(errors), recent_counts or [])
    # On a breach every lot of the day is held back; otherwise only the invalid ones.
    held = [
        json.dumps({"url": lot.url, "raw": lot.raw, "error": lot.error}, ensure_ascii=False)
        for lot in kept + superseded
        if breaches or lot.error is not None
    ]
    if held:
        write_atomic(quarantine, _jsonl(held))
    else:
        quarantine.unlink(missing_ok=True)  # an earlier breach of this day is resolved
    if breaches:
        sample = next((u for u in urls if u in errors), urls[0] if urls else warc)
        raise LayoutChangeError(
            f"{site.name} on {crawl}: {'; '.join(breaches)}. Sample page: {sample}. The site's "
            f"layout may have changed: fix the selectors in sites/{site.name}.yaml, then "
            f"`auction-pipeline reprocess --date {crawl.day} --site {site.name}`. "
            f"{len(raws)} lots quarantined in {quarantine}; pages kept in {warc}."
        )
    sellers = _write_sellers(site, crawl, root, warc, kept)
    out = root.processed_file(crawl, site.name)
    write_atomic(out, _jsonl([record.model_dump_json() for record in records]))
    return ProcessReport(
        site=site.name,
        day=crawl.day.isoformat(),
        crawl=crawl.id,
        lots=len(records),
        invalid=len(errors),
        fill_rates=rates,
        processed_file=str(out),
        sellers=sellers,
    )
