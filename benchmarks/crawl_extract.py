"""Throughput of the crawl and of extraction, each as a ratio measured side by side.

    .venv/bin/python benchmarks/crawl_extract.py [--quick]

1. Extraction, one core: lot pages per second through extract + validate + normalise (what
   the process step does per page), against parsel's bare parse of the same pages. Median
   of several repetitions, both measured in the same run.
2. Crawl rate: K demo houses scraped at once (one fetcher each, as the flow does), each with
   a polite limit of r requests/s, against a demo site answering with latency; achieved
   requests/s over K·r. With latency above 1/r a single connection cannot keep up, which is
   what the per-site ``concurrency`` setting is for: both 1 and 4 are measured.

Prints a table and one JSON object. Ratios, not absolute times, are the figures to compare:
the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import parsel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sites.demo.catalogue import HOUSES, Catalogue, DemoConfig
from sites.demo.pages import render_lot
from sites.demo.server import DemoSite
from sites.loader import load_sites
from tasks.extract import extract_lot
from tasks.normalise import normalise_lot
from tasks.scrape import scrape_site

DAY = date(2026, 3, 14)


def _median_rate(count: int, run: object, repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()  # type: ignore[operator]
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates)


def bench_extraction(pages_per_house: int, repeats: int) -> dict[str, float]:
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
    full_rate = _median_rate(len(pages), full, repeats)
    bare_rate = _median_rate(len(pages), bare, repeats)
    return {
        "pages": len(pages),
        "full_pages_per_s": round(full_rate, 1),
        "bare_parse_pages_per_s": round(bare_rate, 1),
        "ratio": round(full_rate / bare_rate, 3),
    }


def bench_crawl(rate: float, latency: float, concurrency: int, lots: int) -> dict[str, float]:
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
    return {
        "sites": len(definitions),
        "polite_limit_per_s": limit,
        "latency_s": latency,
        "concurrency": concurrency,
        "requests": sum(sent),
        "achieved_per_s": round(achieved, 2),
        "ratio": round(achieved / limit, 3),
    }


def main(argv: list[str] | None = None) -> int:
    """Run both benchmarks and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller, for a smoke test")
    args = parser.parse_args(argv)
    extraction = bench_extraction(8 if args.quick else 40, 3 if args.quick else 5)
    crawls = [
        bench_crawl(rate=10, latency=0.02, concurrency=1, lots=6 if args.quick else 20),
        bench_crawl(rate=10, latency=0.25, concurrency=1, lots=6 if args.quick else 20),
        bench_crawl(rate=10, latency=0.25, concurrency=4, lots=6 if args.quick else 20),
    ]
    e = extraction
    print(f"extraction, one core, {e['pages']} lot pages:")
    print(f"  extract+validate+normalise {e['full_pages_per_s']:>8} pages/s")
    print(f"  bare parsel parse          {e['bare_parse_pages_per_s']:>8} pages/s")
    print(f"  ratio                      {e['ratio']:>8}")
    print("crawl rate, 3 sites at once:")
    for c in crawls:
        print(
            f"  limit {c['polite_limit_per_s']:g}/s, latency {c['latency_s']:g} s, concurrency "
            f"{c['concurrency']}: {c['achieved_per_s']}/s = {c['ratio']} of the limit"
        )
    print(json.dumps({"extraction": extraction, "crawl": crawls}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
