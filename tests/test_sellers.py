"""Sellers (issue 14, part 1): each lot names its seller, each seller's profile is fetched once
per crawl into the WARC and read into the sellers tables; checked against the demo
marketplaces' sellers, with profiles that fail or cannot be read, and bad seller sections."""

from __future__ import annotations

import json
import pickle
from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from expected import market_hits
from sitefiles import market_site

from sites.demo.catalogue import MARKETPLACES, DemoConfig
from sites.demo.marketplaces import MarketCatalogue
from sites.demo.sellers import Seller
from sites.demo.server import DemoSite
from sites.loader import SiteDefinition, load_sites
from tasks.chains import Page
from tasks.process import process_site
from tasks.scrape import scrape_site
from tasks.sellers import SellerValidationError, normalise_seller
from tasks.storage import DataRoot
from tasks.store import database_url_for, load_day, table_rows
from tasks.warc import read_responses

DAY = date(2026, 3, 14)
PROFILE_PATHS = {"ebay": "/ebay/usr/", "liveauctioneers": "/liveauctioneers/auctioneer/",
                 "catawiki": "/catawiki/u/"}  # fmt: skip


def _crawl(root: Path, sites: list[SiteDefinition]) -> dict[str, Any]:
    reports = {}
    for definition in sites:
        scraped = scrape_site(definition, DAY, str(root))
        processed = process_site(definition, DAY, str(root))
        reports[definition.name] = (scraped, processed)
    files = [processed.processed_file for _, processed in reports.values()]
    return {"reports": reports, "load": load_day(DAY, sites, files, database_url_for(root))}


def _profile_facts(marketplace: str, seller: Seller) -> dict[str, Any]:
    """The seller row the site file should store for ``seller``, from the demo's facts."""
    if marketplace == "ebay":
        facts = seller.ebay
        return {"name": seller.name, "location": seller.location,
                "rating": facts.positive_percent, "rating_scale": 100,
                "ratings_count": facts.feedback_score, "followers": None,
                "member_since": facts.member_since}  # fmt: skip
    if marketplace == "liveauctioneers":
        la = seller.liveauctioneers
        return {"name": seller.name, "location": seller.location, "rating": la.rating,
                "rating_scale": 5, "ratings_count": la.ratings_count,
                "followers": la.followers, "member_since": None}  # fmt: skip
    cw = seller.catawiki
    return {"name": seller.name, "location": f"{seller.city}, {seller.country_code}",
            "rating": cw.score, "rating_scale": 100,
            "ratings_count": cw.positive_count + cw.neutral_count + cw.negative_count,
            "followers": None, "member_since": cw.member_since.date()}  # fmt: skip


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("sellers")
    config = DemoConfig()
    with DemoSite(config) as site, pytest.MonkeyPatch.context() as env:
        env.setenv("DEMO_SITE_URL", site.url)
        sites = load_sites(list(MARKETPLACES))
        first = _crawl(root, sites)
        requests = {m: site.request_count(PROFILE_PATHS[m]) for m in MARKETPLACES}
        paths = site.requested_paths()
        again = _crawl(root, sites)  # the same day again: reused, nothing new
        requests_again = site.request_count() - len(paths)
    return {"root": root, "config": config, "first": first, "again": again,
            "requests": requests, "paths": paths, "requests_again": requests_again}  # fmt: skip


def test_each_lot_names_its_seller_and_each_seller_is_stored_with_its_profile(
    crawled: dict[str, Any],
) -> None:
    config, url = crawled["config"], database_url_for(crawled["root"])
    catalogue = MarketCatalogue(config)
    hits = market_hits(config)
    lots = {(r["site"], r["lot_key"]): r for r in table_rows(url, "lots")}
    assert sorted(lots) == sorted(hits)
    expected: dict[tuple[str, str], Seller] = {}
    for site, lot_id in hits:
        lot = catalogue.lot(site, lot_id)
        assert lot is not None
        assert lots[(site, lot_id)]["seller_id"] == lot.seller.seller_id
        expected[(site, lot.seller.seller_id)] = lot.seller
    observed = {(r["site"], r["lot_key"]): r["seller_id"] for r in table_rows(url, "observations")}
    assert observed == {key: row["seller_id"] for key, row in lots.items()}
    sellers = {(r["site"], r["seller_id"]): r for r in table_rows(url, "sellers")}
    assert sorted(sellers) == sorted(expected)  # every seller of a found lot, nothing else
    for (site, seller_id), seller in expected.items():
        row = sellers[(site, seller_id)]
        facts = _profile_facts(site, seller)
        assert {name: row[name] for name in facts} == facts, (site, seller_id)
        assert row["description"] == " ".join(seller.description.split())
        assert (row["first_seen"], row["last_seen"]) == (DAY, DAY)
    assert len(table_rows(url, "seller_observations")) == len(expected)


def test_each_seller_is_fetched_once_per_crawl_into_the_warc(crawled: dict[str, Any]) -> None:
    config = crawled["config"]
    catalogue = MarketCatalogue(config)
    wanted = Counter(
        site for site, seller in {(s, catalogue.lot(s, i).seller.seller_id)  # type: ignore[union-attr]
                                  for s, i in market_hits(config)}
    )  # fmt: skip
    assert crawled["requests"] == dict(wanted)  # one request per seller, however many lots
    root = DataRoot(crawled["root"])
    for site in MARKETPLACES:
        kinds = Counter(p.kind for p in read_responses(root.warc_file(DAY, site)))
        assert kinds["seller"] == wanted[site], site
        scraped, processed = crawled["first"]["reports"][site]
        assert (scraped.seller_pages, processed.sellers) == (wanted[site], wanted[site])


def test_a_rerun_of_the_day_fetches_nothing_and_changes_no_seller(crawled: dict[str, Any]) -> None:
    assert crawled["requests_again"] == 0
    assert crawled["again"]["load"].new_lots == 0
    url = database_url_for(crawled["root"])
    assert len(table_rows(url, "seller_observations")) == len(table_rows(url, "sellers"))


def test_a_profile_refused_by_robots_loses_only_the_profile(tmp_path: Path) -> None:
    """eBay's member pages disallowed: the lots and their seller ids are stored, the failure
    is listed, no seller row is made up."""
    with (
        DemoSite(DemoConfig(disallow=("/ebay/usr/",))) as site,
        pytest.MonkeyPatch.context() as env,
    ):
        env.setenv("DEMO_SITE_URL", site.url)
        sites = load_sites(["ebay"])
        result = _crawl(tmp_path, sites)
        assert site.request_count("/ebay/usr/") == 0
    scraped, processed = result["reports"]["ebay"]
    assert processed.lots == scraped.lot_pages > 0 and processed.sellers == 0
    assert any("/ebay/usr/" in failure for failure in scraped.failed_urls)
    url = database_url_for(tmp_path)
    assert all(row["seller_id"] for row in table_rows(url, "lots"))
    assert table_rows(url, "sellers") == []


def _ebay_profile(rating: str, since: str = "Mar 12, 2009") -> Page:
    return Page(
        '<div class="mbg"><a class="mbg-id" href="#">galerie.kanaga</a>'
        '<span class="mbg-l"><a>(1377)</a></span></div>'
        '<div id="member_info"><span class="mem_loc">Bruxelles, Belgium</span>'
        f'<span><span>Member since: </span><span class="info">{since}</span></span></div>'
        f'<div class="perctg">{rating} Positive feedback</div><h2 class="bio">About</h2>'
    )


def test_a_profile_field_that_cannot_be_read_holds_the_seller_back_naming_it() -> None:
    ebay = load_sites(["ebay"])[0]
    good = normalise_seller(ebay, "galerie.kanaga", "https://e/usr/x", _ebay_profile("99.8%"))
    assert (good.rating, good.ratings_count, good.member_since) == (
        Decimal("99.8"), 1377, date(2009, 3, 12),
    )  # fmt: skip
    for rating, named in (
        ("99,8%", "a comma"),
        ("99,8 %", "a comma"),
        ("140.0%", "above its scale"),
    ):
        with pytest.raises(SellerValidationError, match=named) as held:
            normalise_seller(ebay, "galerie.kanaga", "https://e/usr/x", _ebay_profile(rating))
        assert "galerie.kanaga" in str(held.value) and "rating" in str(held.value)
        copy = pickle.loads(pickle.dumps(held.value))  # as a worker would send it
        assert (str(copy), copy.raw) == (str(held.value), held.value.raw)
        assert held.value.raw["rating"] == rating.removesuffix("%").strip()  # the regex group
    with pytest.raises(SellerValidationError, match="member_since"):
        normalise_seller(ebay, "x", "https://e/usr/x", _ebay_profile("99.8%", "yesterday"))


def test_an_unreadable_profile_is_quarantined_raw_and_its_lots_still_load(tmp_path: Path) -> None:
    """Every eBay rating (about 98%) read against a scale of 50: each profile is held back
    with its raw strings and the reason; the lots load with their seller ids."""
    with DemoSite(DemoConfig()) as site, pytest.MonkeyPatch.context() as env:
        env.setenv("DEMO_SITE_URL", site.url)
        ebay = load_sites(["ebay"])[0]
        scrape_site(ebay, DAY, str(tmp_path))
    assert ebay.seller is not None
    bad = ebay.model_copy(update={"seller": ebay.seller.model_copy(update={"rating_scale": 50})})
    report = process_site(bad, DAY, str(tmp_path))
    root = DataRoot(tmp_path)
    lines = root.held_sellers_file(DAY, "ebay").read_text().splitlines()
    held = [json.loads(line) for line in lines]
    assert report.sellers == 0 and len(held) == 4
    assert all("above its scale of 50" in row["error"] and row["raw"]["rating"] for row in held)
    assert root.sellers_file(DAY, "ebay").read_text() == ""
    loaded = load_day(DAY, [bad], [report.processed_file], database_url_for(tmp_path))
    assert loaded.lots_loaded == report.lots > 0 and not loaded.failed_sites
    assert table_rows(database_url_for(tmp_path), "sellers") == []
    # Fixed (the real scale), a reprocess reads the profiles from the WARC: nothing is lost.
    again = process_site(ebay, DAY, str(tmp_path))
    assert again.sellers == 4 and not root.held_sellers_file(DAY, "ebay").exists()


@pytest.mark.parametrize(
    ("seller", "named"),
    [
        ({"url": "/usr/x", "fields": {}}, "has no {seller_id}"),
        ({"fields": {}}, "exactly one of 'url'"),
        ({"url": "/u/{seller_id}", "link": {"css": "a::attr(href)"}, "fields": {}},
         "exactly one of 'url'"),
        ({"url": "/u/{seller_id}", "fields": {"rating": {"selector": {"css": "b"},
                                                          "parser": "number"}}},
         "needs rating_scale"),
        ({"url": "/u/{seller_id}", "fields": {"rating": {"selector": {"css": "b"}}},
          "rating_scale": 5}, "fields.rating must have parser: number"),
        ({"url": "/u/{seller_id}", "fields": {"badges": {"selector": {"css": "b"},
                                                          "parser": "int"}}},
         "kept as raw text"),
        ({"url": "/u/{seller_id}", "fields": {"name": {"selector": {"json": "a.\"{lot_id}\""}}}},
         "has no lot id"),
        ({"url": "/u/{seller_id}", "fields": {"name": {"selector": {"css": "b"},
                                                        "from": "bidding"}}},
         "not from:"),
    ],
)  # fmt: skip
def test_a_bad_seller_section_is_refused_when_the_site_file_loads(
    seller: dict[str, Any], named: str
) -> None:
    fields = {"sale_date": {"selector": {"css": ".e"}, "parser": "timestamp"},
              "seller_id": {"selector": {"css": ".s"}}}  # fmt: skip
    with pytest.raises(ValueError, match=named):
        market_site(fields, seller=seller)


def test_a_seller_section_needs_the_lots_seller_id_on_the_lot_page() -> None:
    section = {"url": "/u/{seller_id}", "fields": {}}
    with pytest.raises(ValueError, match=r"needs a fields\.seller_id rule"):
        market_site({"sale_date": {"selector": {"css": ".e"}, "parser": "timestamp"}},
                    seller=section)  # fmt: skip
    with pytest.raises(ValueError, match="cannot use from:"):
        market_site(
            {"sale_date": {"selector": {"css": ".e"}, "parser": "timestamp"},
             "seller_id": {"selector": {"json": "id"}, "from": "api"}},
            seller=section, follow={"api": {"url": "/api/{lot_id}"}},
        )  # fmt: skip
