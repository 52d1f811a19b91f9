"""One crawl of some sites through the pipeline's own steps, in this process: the lots the
database follows, scrape (into the crawl's WARC), process, load. What a run's tasks do on the
cluster, without Prefect or Slurm, for tests that need several crawls' data quickly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sites.loader import SiteDefinition
from tasks.crawlid import CrawlId
from tasks.process import process_site
from tasks.scrape import scrape_site
from tasks.store import database_url_for, followed_lots, load_day


def crawl_here(root: Path, sites: list[SiteDefinition], crawl: CrawlId) -> dict[str, Any]:
    """Crawl ``sites`` as ``crawl`` into data root ``root``; per site (scrape report, process
    report, the lots it revisited), and the load's summary under ``"load"``."""
    url = database_url_for(root)
    reports: dict[str, Any] = {}
    for site in sites:
        revisit = followed_lots(url, site, crawl)
        scraped = scrape_site(site, crawl, str(root), revisit=revisit)
        reports[site.name] = (scraped, process_site(site, crawl, str(root)), revisit)
    files = [processed.processed_file for _, processed, _ in reports.values()]
    reports["load"] = load_day(crawl, sites, files, url)
    return reports
