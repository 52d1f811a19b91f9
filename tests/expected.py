"""What a crawl of the default site files should store, from the demo catalogues: the lots of
the three houses' sales of a day, and the marketplace lots the site files' searches find
(each query's top ``max_results`` organic results), with the queries that found each.

Shared by the end-to-end tests, which run every site file in ``sites/``, so that adding a
site file changes one place.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sites.demo.catalogue import HOUSES, MARKETPLACES, Catalogue, DemoConfig
from sites.demo.marketplaces import MarketCatalogue, MarketLot
from sites.loader import load_sites


def house_lots(config: DemoConfig, day: date) -> set[tuple[str, str]]:
    """(site, lot key) of every lot in the houses' sales of ``day``."""
    catalogue = Catalogue(config)
    return {(slug, lot.lot_id) for slug in HOUSES for lot in catalogue.lots(slug, day)}


def market_hits(config: DemoConfig) -> dict[tuple[str, str], list[str]]:
    """(site, lot id) of every marketplace lot the site files' searches find, with the
    queries (in the site file's order) whose top results hold it."""
    catalogue = MarketCatalogue(config)
    hits: dict[tuple[str, str], list[str]] = {}
    for site in load_sites(list(MARKETPLACES)):
        assert site.search is not None
        for query in site.search.queries:
            for lot in catalogue.search(site.name, query)[: site.search.max_results]:
                hits.setdefault((site.name, lot.lot_id), []).append(query)
    return hits


def all_lots(config: DemoConfig, day: date) -> set[tuple[str, str]]:
    """(site, lot key) of everything a run of every site file on ``day`` stores."""
    return house_lots(config, day) | set(market_hits(config))


def lifecycle(lot: MarketLot) -> dict[str, Any]:
    """The lifecycle columns the site file of ``lot``'s marketplace stores for it as of the
    catalogue's market time: what the lot's demo pages state, and None for what they do not
    (LiveAuctioneers gives no end time, its lots are hammered one after another in the live
    sale; only eBay offers Buy It Now; eBay states no starting price or reserve)."""
    sold = {"sold": True, "unsold": False, "withdrawn": False}.get(lot.status)
    common = {"status": lot.status, "sold": sold, "bid_count": lot.bid_count,
              "start_time": lot.start_time,
              "sold_price": lot.price if lot.status == "sold" else None}  # fmt: skip
    if lot.marketplace == "ebay":
        return {**common, "end_time": lot.end_time, "starting_price": None,
                "reserve_met": None, "buy_now_price": lot.buy_now_price}  # fmt: skip
    return {**common, "end_time": lot.end_time if lot.marketplace == "catawiki" else None,
            "starting_price": lot.starting_price, "reserve_met": lot.reserve_price_met,
            "buy_now_price": None}  # fmt: skip


SITES = (*HOUSES, *MARKETPLACES)
"""Every site file in sites/: the three houses and the three marketplaces."""
