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
    """The lifecycle columns the site file of ``lot``'s marketplace stores for it: what the
    lot's demo pages state, and None for what they do not (eBay's listing page states no
    status; LiveAuctioneers gives no end time, the lots close one after another in the live
    sale; only eBay offers Buy It Now)."""
    status = "sold" if lot.sold else "unsold" if lot.closed else "open"
    common = {"bid_count": lot.bid_count, "start_time": lot.start_time}
    if lot.marketplace == "ebay":
        return {
            **common,
            "status": None,
            "sold": None,
            "end_time": lot.end_time,
            "starting_price": None,
            "reserve_met": None,
            "buy_now_price": lot.buy_now_price,
        }
    return {**common, "status": status, "sold": lot.sold if lot.closed else None,
            "end_time": lot.end_time if lot.marketplace == "catawiki" else None,
            "starting_price": lot.starting_price, "reserve_met": lot.reserve_price_met,
            "buy_now_price": None}  # fmt: skip


SITES = (*HOUSES, *MARKETPLACES)
"""Every site file in sites/: the three houses and the three marketplaces."""
