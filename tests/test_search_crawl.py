"""A search-driven crawl of the demo LiveAuctioneers-like marketplace, against its catalogue:
each query's top results over several pages, a lot found by two spellings stored once with
both queries, lot pages fetched once by their platform id, and a reprocess from the WARC that
agrees with the crawl while sending no request.

Steps called directly (no Prefect, no Slurm), with a site file written here.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from sites.check import check_site
from sites.demo.marketplaces import QUERIES, MarketCatalogue
from sites.demo.server import DemoSite
from sites.loader import load_site_file
from tasks.crawl import page_of
from tasks.export import export_day
from tasks.extract import extract_results
from tasks.process import process_site
from tasks.scrape import scrape_site
from tasks.search import SearchMerge
from tasks.storage import DataRoot
from tasks.store import database_url_for, load_day, table_rows

DAY = date(2026, 3, 14)
TOP = 10
DATA = "script[data-reactroot]::text"


def _la_site(base_url: str) -> dict[str, Any]:
    def item(key: str) -> dict[str, str]:
        return {"css": DATA, "json": f'item.byId."{{lot_id}}".{key}'}

    return {
        "name": "la-demo",
        "house": "LiveAuctioneers (demo)",
        "base_url": base_url,
        "currency": "USD",
        "date_languages": ["en"],
        "lot_id": {"url_regex": r"/item/([0-9]+)"},
        "search": {
            "url": "/search/?keyword={query}&page={page}",
            "queries": list(QUERIES),
            "max_results": TOP,
            "results": {
                "lot_ids": {"css": DATA, "json": "search.itemIds[]"},
                "lot_url": "/item/{lot_id}",
            },
        },
        "fields": {
            "title": {"selector": item("title"), "required": True},
            "sale_date": {  # the live sale the lot is in: its catalog's start
                "selector": {"css": DATA, "json": "catalog.byId.* | [0].saleStartTs"},
                "parser": "epoch-seconds",
            },
            "current_bid": {
                "selector": {"css": DATA, "json": 'biddingInfo.byId."{lot_id}".leadingBid'},
                "parser": "price",
            },
            "catalog_lot_number": {"selector": item("lotNumber")},  # "7A": kept as text
            "images": {
                "selector": {"css": "img[class*=StyledThumbnailImage]::attr(src)"},
                "many": True,
            },
        },
        "politeness": {"requests_per_second": 50},
    }


def _ebay_search_site(directory: Path, base_url: str) -> Path:
    """A site file searching the demo eBay for "mambila": organic result links, sponsored
    ones excluded, the listing id read from the URL whatever its slug and tracking."""
    data = _la_site(base_url)
    data["name"] = "eb-demo"
    data["lot_id"] = {"url_regex": r"/itm/(?:[^/?]+/)?([0-9]+)"}
    data["search"] = {
        "url": "/sch/i.html?_nkw={query}&_pgn={page}",
        "queries": ["mambila"],
        "results": {
            "lot_links": {"css": "ul.srp-results li[listingid] h3 a.s-item__link::attr(href)"},
            "exclude": {"xpath": "//li[.//span[contains(@class, 'SPONSORED')]]//h3/a/@href"},
        },
    }
    path = directory / "eb-demo.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.timeout(120)
def test_a_search_crawl_stores_each_lot_once_with_the_queries_that_found_it(
    tmp_path: Path,
) -> None:
    catalogue = MarketCatalogue()
    expected: dict[str, list[str]] = {}
    for query in QUERIES:
        top = catalogue.search("liveauctioneers", query)[:TOP]
        assert catalogue.page_count("liveauctioneers", query) >= 2  # results over pages
        for lot in top:
            expected.setdefault(lot.lot_id, []).append(query)
    both = [lot_id for lot_id, queries in expected.items() if len(queries) > 1]
    assert both, "the demo must have lots that two spellings find"

    with DemoSite() as demo:
        path = tmp_path / "la-demo.yaml"
        path.write_text(yaml.safe_dump(_la_site(f"{demo.url}/liveauctioneers")))
        site = load_site_file(path)
        report = scrape_site(site, DAY, str(tmp_path))
        lot_requests = [p for p in demo.requested_paths() if p.startswith("/liveauctioneers/item/")]
        processed = process_site(site, DAY, str(tmp_path))
        requests_before = demo.request_count()
        first = DataRoot(tmp_path).processed_file(DAY, site.name).read_bytes()
        again = process_site(site, DAY, str(tmp_path))  # what reprocess does
        assert demo.request_count() == requests_before  # read from the WARC only
    assert DataRoot(tmp_path).processed_file(DAY, site.name).read_bytes() == first
    assert (again.lots, again.invalid) == (processed.lots, processed.invalid)

    # Every lot a query's top results hold, fetched once (a redirect to its slug URL aside).
    assert report.lot_pages == len(expected) and report.search_pages >= len(QUERIES) + 1
    fetched_ids = [p.split("/item/")[1].split("_")[0].split("?")[0] for p in lot_requests]
    assert sorted(set(fetched_ids)) == sorted(expected)
    url = database_url_for(tmp_path)
    load_day(DAY, [site], [processed.processed_file], url)
    lots = {row["lot_key"]: row for row in table_rows(url, "lots")}
    assert sorted(lots) == sorted(expected)
    for lot_id, row in lots.items():
        lot = catalogue.lot("liveauctioneers", lot_id)
        assert lot is not None
        assert (row["title"], row["current_bid"], row["currency"]) == (lot.title, lot.price, "USD")
        assert row["lot_number"] is None and not row["sold"]
    hits: dict[str, list[str]] = {}
    for row in table_rows(url, "search_hits"):
        hits.setdefault(row["lot_key"], []).append(row["query"])
    assert {k: sorted(v) for k, v in hits.items()} == {k: sorted(v) for k, v in expected.items()}
    # The day's export (the archive's tables) says which query found which lot.
    export_day(url, DAY, tmp_path / "tables")
    exported = (tmp_path / "tables" / "search_hits.csv").read_text().splitlines()
    assert exported[0] == "site,lot_key,crawl_id,crawl_date,query"
    assert len(exported) - 1 == sum(len(queries) for queries in expected.values())
    # Loading the day again changes nothing.
    before = {t: table_rows(url, t) for t in ("lots", "observations", "search_hits")}
    load_day(DAY, [site], [processed.processed_file], url)
    assert {t: table_rows(url, t) for t in ("lots", "observations", "search_hits")} == before


def test_sponsored_results_are_left_out_and_tracking_parameters_make_no_second_lot(
    tmp_path: Path,
) -> None:
    catalogue = MarketCatalogue()
    with DemoSite() as demo:
        base = f"{demo.url}/ebay"
        site = load_site_file(_ebay_search_site(tmp_path, base))

        merge = SearchMerge(site)
        for page in (1, 2):
            url = site.search.page_url(base, "mambila", page)  # type: ignore[union-attr]
            response = httpx.get(url)
            links = extract_results(
                site, page_of(response.content, response.headers["content-type"]), url
            )
            assert all("PROMOTED" not in link for link in links)
            merge.add("mambila", page, links)
    organic = [lot.lot_id for lot in catalogue.search("ebay", "mambila")]
    sponsored = {lot.lot_id for _, lot in catalogue.sponsored("mambila", 1)}
    found = [identity.removeprefix("id:") for identity in merge.urls]
    assert sponsored and not sponsored & set(found)
    assert found == organic[: len(found)] and len(found) > 8  # two pages, in order


def test_sites_check_shows_a_search_pages_results_and_what_exclude_left_out(
    tmp_path: Path,
) -> None:
    catalogue = MarketCatalogue()
    with DemoSite() as demo:
        base = f"{demo.url}/ebay"
        path = _ebay_search_site(tmp_path, base)
        url = f"{base}/sch/i.html?_nkw=mambila&_pgn=1"
        shown = check_site(path, url, "search")
    organic = catalogue.results_page("ebay", "mambila", 1)
    sponsored = catalogue.sponsored("mambila", 1)
    assert "query 'mambila', page 1" in shown
    assert f"results: {len(organic)}" in shown
    assert f"left out by exclude: {len(sponsored)}" in shown
    assert all(f"/{lot.lot_id}?" in shown for lot in organic[:10])
