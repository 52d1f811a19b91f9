"""Benchmarks 3 and 4 of ``auction-pipeline bench``: crawl rate and extraction, each as a ratio
measured side by side.

1. Extraction, one core: lot pages per second through extract + validate + normalise (what
   the process step does per page), against parsel's bare parse of the same pages. Median
   of several repetitions, both measured in the same run.
2. Crawl rate: K demo houses scraped at once (one fetcher each, as the flow does), each with
   a polite limit of r requests/s, against a demo site answering with latency; achieved
   requests/s over K·r. With latency above 1/r a single connection cannot keep up, which is
   what the per-site ``concurrency`` setting is for: both 1 and 4 are measured.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from datetime import date

import parsel

from benchmarks.common import Figure, median_seconds
from sites.demo.catalogue import HOUSES, Catalogue, DemoConfig
from sites.demo.pages import render_lot
from sites.demo.server import DemoSite
from sites.loader import load_sites
from tasks.extract import extract_lot
from tasks.normalise import normalise_lot
from tasks.scrape import scrape_site

DAY = date(2026, 3, 14)
EXTRACTION_TARGET = 0.5
CRAWL_TARGET = 0.9


def bench_extraction(pages_per_house: int, repeats: int) -> Figure:
    """Pages/s for the full per-page work and for a bare parse, on this one core."""
    os.environ.setdefault("DEMO_SITE_URL", "http://demo.test")
    sites = {s.name: s for s in load_sites()}
    catalogue = Catalogue(DemoConfig(lots_per_sale=pages_per_house))
    pages = []
    for slug in HOUSES:
        for lot in catalogue.lots(slug, DAY):
            url = f"http://demo.test/{slug}/lot/{lot.lot_id}"
            pages.append((sites[slug], render_lot(lot), url))

    def full() -> None:
        for site, html, url in pages:
            normalise_lot(site, extract_lot(site, html, url), url)

    def bare() -> None:
        for _, html, _ in pages:
            parsel.Selector(text=html).css("h1")

    full()  # warm up: imports, dateparser's language data, the rates table
    full_rate = len(pages) / median_seconds(full, repeats)
    bare_rate = len(pages) / median_seconds(bare, repeats)
    return Figure(
        benchmark="extraction",
        case=f"extract+validate+normalise, {len(pages)} lot pages, one core",
        value=full_rate,
        unit="pages/s",
        baseline="bare parsel parse",
        baseline_value=bare_rate,
        target=f">= {EXTRACTION_TARGET}",
        met=full_rate / bare_rate >= EXTRACTION_TARGET,
    )


def bench_crawl(rate: float, latency: float, concurrency: int, lots: int) -> Figure:
    """Achieved requests/s of K sites crawled at once, over K times the polite rate."""
    config = DemoConfig(lots_per_sale=lots, latency=latency, images_per_lot=1)
    with DemoSite(config) as site, tempfile.TemporaryDirectory() as tmp:
        os.environ["DEMO_SITE_URL"] = site.url
        definitions = [
            s.model_copy(
                update={
                    "politeness": s.politeness.model_copy(
                        update={"requests_per_second": rate, "concurrency": concurrency}
                    )
                }
            )
            for s in load_sites()
        ]
        sent: list[int] = []

        def crawl(definition: object) -> None:
            report = scrape_site(definition, DAY, tmp)  # type: ignore[arg-type]
            sent.append(report.requests_sent)

        threads = [threading.Thread(target=crawl, args=(d,)) for d in definitions]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
    achieved = sum(sent) / elapsed
    limit = rate * len(definitions)
    return Figure(
        benchmark="crawl",
        case=(
            f"{len(definitions)} sites at once, {latency * 1000:g} ms latency, "
            f"concurrency {concurrency}"
        ),
        value=achieved,
        unit="requests/s",
        baseline="polite limit K·r",
        baseline_value=limit,
        target=f">= {CRAWL_TARGET}",
        met=achieved / limit >= CRAWL_TARGET,
        note=f"{sum(sent)} requests",
    )
