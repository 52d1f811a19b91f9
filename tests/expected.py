"""What a crawl of the default site files should store, from the demo catalogues: the lots of
the three houses' sales of a day, and the marketplace lots the site files' searches find
(each query's top ``max_results`` organic results), with the queries that found each.

Shared by the end-to-end tests, which run every site file in ``sites/``, so that adding a
site file changes one place.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
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


def followed(
    config: DemoConfig,
    crawls: list[tuple[datetime, frozenset[str]]],
    follow_days: int = 14,
) -> list[set[tuple[str, str]]]:
    """The marketplace lots each of a series of crawls stores: what its searches find as of
    its time (each crawl: its UTC time, lot ids hidden from search then), plus the lots
    stored before without a result, revisited until one shows (or ``follow_days`` after
    their end), as tasks/following.py says. The lots' states come from the catalogue as of
    each crawl's time."""
    stored: dict[tuple[str, str], MarketLot] = {}
    seen: list[set[tuple[str, str]]] = []
    for moment, hidden in crawls:
        now = dataclasses.replace(config, market_time=moment, hidden_from_search=hidden)
        catalogue = MarketCatalogue(now)
        found = set(market_hits(now))
        cutoff = moment - timedelta(days=follow_days)
        revisit = {
            key for key, lot in stored.items()
            if lot.status in ("open", "upcoming") and (
                lot.marketplace == "liveauctioneers" or lot.end_time >= cutoff)
        }  # fmt: skip
        crawl = found | revisit
        for site, lot_id in crawl:
            lot = catalogue.lot(site, lot_id)
            assert lot is not None
            stored[(site, lot_id)] = lot
        seen.append(crawl)
    return seen


FOLLOW_MOMENTS = [
    datetime(2026, 3, 14, 6, tzinfo=UTC),
    datetime(2026, 3, 14, 18, tzinfo=UTC),
    datetime(2026, 3, 15, 12, tzinfo=UTC),
    datetime(2026, 3, 16, 12, tzinfo=UTC),
]
"""The follow tests' crawls: two on the 14th, one on the 15th and one on the 16th (UTC)."""


def follow_subjects(config: DemoConfig) -> dict[str, MarketLot]:
    """Per marketplace, a lot the first crawl's searches find open that sells on the 16th
    before the last crawl: the one that will leave the search results on the 15th."""
    first = dataclasses.replace(config, market_time=FOLLOW_MOMENTS[0])
    found = set(market_hits(first))
    chosen = {}
    for site in MARKETPLACES:
        catalogue = MarketCatalogue(config).at(FOLLOW_MOMENTS[-1])
        closing = catalogue.closing_between(site, FOLLOW_MOMENTS[2], FOLLOW_MOMENTS[3])
        sold = [lot for lot in closing if lot.status == "sold" and (site, lot.lot_id) in found]
        assert sold, f"{site}: no lot found on the 14th that sells on the 16th"
        chosen[site] = sold[0]
    return chosen


def seller_counts(
    config: DemoConfig, site: str, lot_ids: set[str], moment: datetime
) -> dict[str, dict[str, int]]:
    """Per seller of the marketplace lots ``lot_ids``, as the catalogue has them at
    ``moment``: how many lots, how many sold, how many still open (upcoming or open)."""
    catalogue = MarketCatalogue(config).at(moment)
    counts: dict[str, dict[str, int]] = {}
    for lot_id in lot_ids:
        lot = catalogue.lot(site, lot_id)
        assert lot is not None, (site, lot_id)
        row = counts.setdefault(lot.seller.seller_id, {"lots": 0, "sold": 0, "open": 0})
        row["lots"] += 1
        row["sold"] += lot.status == "sold"
        row["open"] += lot.status in ("upcoming", "open")
    return counts
