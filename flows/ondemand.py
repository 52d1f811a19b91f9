"""One lot on demand (``auction-pipeline lot URL ... --site S``): fetch given lot pages into
the day's page backup and store them as a crawl does.

Researchers see a lot worth following that the day's crawl did not find, or that changed since
(the old scraper's ``auction ID|URL``). Its page is fetched as the crawl fetches a lot page
(the same :class:`~tasks.politeness.PoliteFetcher`: rate limit, robots.txt, caps, follow-ups and
images; :meth:`tasks.crawl.Crawl.fetch_lots`), into the day's WARC, so the pages stay the one
record of what the site served and ``reprocess`` rebuilds the day from them alone. The site's
day is then processed from that WARC, loaded and, when the day has a bag, archived again, in
this process: no Prefect server and no Slurm.

The WARC of the day is never lost: if it exists, a new file holding its records byte for byte
followed by the new ones replaces it only once complete, with its digest; until then (and on
any failure) the old file and digest stay as they were. Processing lets the later page of a lot
win (``tasks/process.py``). The command holds the day's lock (``tasks/runlock.py``), so it
cannot race a run of that day.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from flows.run import UsageError
from infra.atomic import write_atomic
from sites.loader import SiteDefinition, load_site_file, load_sites
from tasks.archive import archive_day
from tasks.checksums import (
    check_backup,
    restore_hint,
)
from tasks.crawl import Crawl, LotFetch
from tasks.normalise import LotRecord
from tasks.politeness import CrawlAborted, PoliteFetcher
from tasks.process import process_site
from tasks.runinfo import where_am_i
from tasks.runlock import day_lock, lock_warning
from tasks.schema import lots
from tasks.scrape import warcinfo
from tasks.search import lot_identity
from tasks.storage import DataRoot
from tasks.store import (
    check_database,
    database_url_for,
    load_day,
    read_records,
    recent_lot_counts,
    transaction,
)
from tasks.warc import AppendingRecorder, WarcRecorder

MAX_URLS = 500  # one command's lots; a whole sale is a crawl's job
ON_DEMAND_DAY_WARNING = (
    "this day's page backup was made by `auction-pipeline lot` and holds only lots fetched on "
    "demand, not a crawl of the site; `run` reuses it as the day's backup. To crawl the day, "
    "run it with --rescrape (lots the crawl does not find are then no longer in the day)"
)


def resolve_site(text: str) -> SiteDefinition:
    """The site ``--site`` names: a site of the sites directory the other commands use
    (``$AUCTION_PIPELINE_SITES_DIR`` or ``sites/``), or the path of a site YAML file."""
    if text.endswith((".yaml", ".yml")) or os.sep in text:
        path = Path(text)
        if not path.is_file():
            raise UsageError(f"--site {text}: no such site file")
        return load_site_file(path)
    return load_sites([text])[0]


def check_lot_urls(site: SiteDefinition, urls: list[str]) -> list[str]:
    """``urls`` if each is an http(s) URL on one of the site's hosts; else UsageError naming
    the URL and the hosts allowed, before any request is sent."""
    if not urls:
        raise UsageError("no lot URL given")
    if len(urls) > MAX_URLS:
        raise UsageError(
            f"{len(urls)} lot URLs given, at most {MAX_URLS} at once; crawl a whole sale with "
            "`auction-pipeline run` instead"
        )
    allowed = ", ".join(sorted(site.hosts))
    for url in urls:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 -- raises ValueError on a port that is no number
        except ValueError as exc:
            raise UsageError(f"{url!r} is not a valid URL ({exc})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(
                f"{url!r} is not an http(s) URL; give the lot page's full address on "
                f"{site.name}'s hosts ({allowed}); nothing was fetched"
            )
        if parts.hostname not in site.hosts:
            raise UsageError(
                f"{url} is not on a host of site {site.name!r}: allowed are {allowed} (add the "
                "host to the site's extra_hosts if it belongs to the site); nothing was fetched"
            )
    return urls


@dataclass(frozen=True)
class LotOutcome:
    """What became of one URL given: ``status`` is new, updated or failed (``error`` says
    why); ``warnings`` are follow-ups or images that failed while the lot was stored."""

    url: str
    status: str
    lot_key: str | None = None
    title: str | None = None
    page_url: str | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class OnDemandReport:
    """What ``auction-pipeline lot`` did, URL by URL, and where the day's data now is."""

    site: str
    day: str
    data_root: str
    warc_file: str
    lots: list[LotOutcome] = field(default_factory=list)
    requests: int = 0
    database: str | None = None
    archive: str | None = None
    superseded_archive: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every URL stored, and the day processed, loaded and (if it had a bag) archived."""
        return not self.errors and all(lot.status != "failed" for lot in self.lots)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (``--json``)."""
        return {"state": "COMPLETED" if self.ok else "FAILED", **asdict(self)}

    def text(self) -> str:
        """A short summary: one line per URL, then where the day's data is."""
        failed = sum(lot.status == "failed" for lot in self.lots)
        lines = [
            f"lot {self.site} {self.day}: {len(self.lots) - failed} of {len(self.lots)} URL(s) "
            f"stored ({self.requests} requests)"
        ]
        for lot in self.lots:
            if lot.status == "failed":
                error = (lot.error or "").removeprefix(f"{lot.url}: ")  # fetch errors name it
                lines.append(f"  FAILED   {lot.url}: {error}")
            else:
                lines.append(f"  {lot.status:<8} {lot.lot_key}  {lot.title}  ({lot.url})")
            lines += [f"           warning: {warning}" for warning in lot.warnings]
        lines.append(f"  page backup: {self.warc_file}")
        if self.database:
            lines.append(f"  database: {self.database}")
        if self.archive:
            lines.append(f"  archive:  {self.archive}")
        lines += [f"  error: {error}" for error in self.errors]
        return "\n".join(lines)


class _NothingFetched(Exception):
    """No lot page came: the day's WARC must not change (nor appear)."""


@dataclass
class _Fetch:
    by_identity: dict[str, LotFetch] = field(default_factory=dict)
    requests: int = 0
    aborted: str | None = None


def _fetch(site: SiteDefinition, root: DataRoot, day: date, urls: list[str]) -> _Fetch:
    """Fetch the lots at ``urls`` into the day's WARC (created like a crawl's, or a new
    version of it); the WARC changes only if some lot page was fetched."""
    path = root.warc_file(day, site.name)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    info = warcinfo(
        site, day, f"{site.house}: lot pages fetched on demand (auction-pipeline lot) at {now}"
    )
    recorder = (
        AppendingRecorder(path, info, restore_hint(root, day, path))
        if path.exists()
        else WarcRecorder(path, info)
    )
    out = _Fetch()
    try:
        with (
            recorder as warc,
            PoliteFetcher(site.user_agent, site.politeness, site.hosts, warc.record) as fetcher,
            ThreadPoolExecutor(site.politeness.concurrency) as pool,
        ):
            crawl = Crawl(site, root, fetcher, pool)
            try:
                crawl.fetch_lots(urls)
                results = crawl.results()
            except CrawlAborted as exc:  # request cap, Crawl-delay cap, site unresponsive
                out.aborted = str(exc)
                raise _NothingFetched from exc
            finally:
                crawl.cancel()
                out.requests = fetcher.requests_sent
            out.by_identity = {
                lot_identity(site, url): result
                for url, result in zip(crawl.lot_urls, results, strict=True)
            }
            if not any(result.ok for result in results):
                raise _NothingFetched
    except _NothingFetched:
        pass
    return out


def _add_images(root: DataRoot, day: date, site: str, rows: list[dict[str, str]]) -> None:
    """Add the lots' image rows to the day's image manifest (each row once)."""
    path = root.image_manifest(day, site)
    old = [line for line in (path.read_text().splitlines() if path.exists() else []) if line]
    merged = list(dict.fromkeys(old + [json.dumps(row, sort_keys=True) for row in rows]))
    if merged != old or not path.exists():
        write_atomic(path, "".join(line + "\n" for line in merged).encode())


def _known_keys(database_url: str, site: str, keys: list[str]) -> set[str]:
    """Which of ``keys`` the database has as lots of ``site`` already."""
    if not keys:
        return set()
    with transaction(database_url) as conn:
        query = select(lots.c.lot_key).where(lots.c.site == site, lots.c.lot_key.in_(keys))
        return set(conn.execute(query).scalars())


def _quarantined(root: DataRoot, day: date, site: str) -> dict[str, str]:
    """The lot pages of the day held back by processing: URL -> why."""
    path = root.quarantine_file(day, site)
    rows = (
        [json.loads(line) for line in path.read_text().splitlines() if line]
        if path.exists()
        else []
    )
    return {row["url"]: row.get("error") or "held back" for row in rows}


@dataclass
class _Stored:
    records: dict[str, LotRecord] = field(default_factory=dict)  # by lot page URL
    known: set[str] = field(default_factory=set)
    held: dict[str, str] = field(default_factory=dict)
    failure: str | None = None  # of the whole site's processing or load


def _store(
    site: SiteDefinition,
    day: date,
    root: DataRoot,
    database_url: str,
    report: OnDemandReport,
    pages: list[str],
) -> _Stored:
    """Process the site's day from its WARC, load it and rebuild the day's bag if it has one
    (as the crawl's process, load and archive steps do)."""
    warc = root.warc_file(day, site.name)
    history = recent_lot_counts(database_url, site.name, day)
    stored = _Stored()
    try:  # a day of on-demand lots only is judged lot by lot (tasks/process.py)
        processed = process_site(site, day, str(root.path), history)
    except Exception as exc:  # a layout check, say: the run's process step fails the same way
        stored.failure = (
            f"processing the day failed ({type(exc).__name__}: {exc}); the pages are in {warc}"
        )
        report.errors.append(stored.failure)
        return stored
    stored.held = _quarantined(root, day, site.name)
    stored.records = {r.url: r for r in read_records([Path(processed.processed_file)])}
    mine = [stored.records[url].lot_key for url in pages if url in stored.records]
    stored.known = _known_keys(database_url, site.name, mine)
    loaded = load_day(day, [site], [processed.processed_file], database_url)
    report.database = loaded.database
    if site.name in loaded.failed_sites:
        stored.failure = f"load: {loaded.failed_sites[site.name]}"
        report.errors.append(stored.failure)
        return stored
    if root.archive_dir(day).is_dir():
        try:
            archived = archive_day(day, str(root.path), database_url, None, [where_am_i()])
        except Exception as exc:
            report.errors.append(f"archive: {type(exc).__name__}: {exc}")
        else:
            report.archive, report.superseded_archive = archived.path, archived.superseded
    return stored


def _outcome(url: str, fetched: _Fetch, stored: _Stored | None, identity: str) -> LotOutcome:
    """What became of ``url``, from its fetch and the day's processing and load."""
    result = fetched.by_identity.get(identity)
    if result is None or not result.ok:
        why = fetched.aborted or (
            result.failures[0] if result and result.failures else "not fetched"
        )
        return LotOutcome(url, "failed", error=why)
    page, warnings = result.url, list(result.failures)
    if stored is None or stored.failure:
        why = (stored.failure if stored else None) or "not stored"
        return LotOutcome(url, "failed", page_url=page, error=why, warnings=warnings)
    if page in stored.held:
        why = f"the lot page does not validate: {stored.held[page]}"
        return LotOutcome(url, "failed", page_url=page, error=why, warnings=warnings)
    record = stored.records.get(page)
    if record is None:
        why = "fetched, but processing found no lot on the page"
        return LotOutcome(url, "failed", page_url=page, error=why, warnings=warnings)
    status = "updated" if record.lot_key in stored.known else "new"
    return LotOutcome(url, status, record.lot_key, record.title, page, warnings=warnings)


def fetch_lots_on_demand(
    site: SiteDefinition,
    urls: list[str],
    day: date,
    data_root: Path,
    log: Callable[[str], None] = lambda line: None,
) -> OnDemandReport:
    """Fetch the lot pages at ``urls`` of ``site`` into ``day``'s WARC under ``data_root``
    and store them as a crawl of the day does; return what became of each URL.

    Refused before any request (UsageError) when a URL is not http(s) on the site's hosts;
    raises DataRootBusy when a run holds the day, BackupDamaged when the day's WARC no longer
    matches its digest (with the restore hint), DatabaseConnectionError for an unusable
    database. A URL that fails (a 404, a page that does not validate) fails alone.
    """
    check_lot_urls(site, urls)
    root = DataRoot(data_root)
    for warning in (root.prepare(), lock_warning(data_root)):
        if warning:
            log(warning)
    with day_lock(data_root, day, f"auction-pipeline lot ({site.name})"):
        database_url = database_url_for(data_root)
        check_database(database_url)
        warc = root.warc_file(day, site.name)
        fresh = not warc.exists()
        if not fresh:
            check_backup(warc, restore_hint(root, day, warc))
        report = OnDemandReport(site.name, day.isoformat(), str(data_root), str(warc))
        fetched = _fetch(site, root, day, urls)
        report.requests = fetched.requests
        results = list(fetched.by_identity.values())
        stored = None
        if any(result.ok for result in results):
            _add_images(root, day, site.name, [row for r in results for row in r.images])
            if fresh:
                lines = [{"error": e} for r in results for e in r.failures]
                lines.append({"warning": ON_DEMAND_DAY_WARNING})
                rows = "".join(json.dumps(line) + "\n" for line in lines)
                write_atomic(root.failures_file(day, site.name), rows.encode())
            pages = [r.url for r in results if r.ok]
            stored = _store(site, day, root, database_url, report, pages)
        for url in urls:
            report.lots.append(_outcome(url, fetched, stored, lot_identity(site, url)))
    return report
