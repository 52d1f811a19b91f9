"""The demo marketplaces' data: eBay-, LiveAuctioneers- and Catawiki-like lots and searches.

The research group finds lots on marketplaces by keyword search with spelling variants
("mambila", "mambilla"), so the demo needs lots that match one spelling, the other, both, a
third query ("chamba") or none, over several result pages; and it follows each lot over
several crawls until it closes, so the catalogue is a moment's view: lots as of
``DemoConfig.market_time`` (default :data:`BASE_TIME`, 2026-03-14T18:00Z). Everything here is
pure and depends only on the configuration: the server renders pages from it and the tests
compare what a crawl stored against it, e.g. ``MarketCatalogue().search("ebay", "mambila")``
is the organic result order and ``lot.price`` the current bid a page shows.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import random
import re
from datetime import datetime

from sites.demo.catalogue import MARKETPLACES, DemoConfig
from sites.demo.market_draws import LIVE_SALES, LiveSale, digest, draw_lots, live_sale
from sites.demo.market_lot import BASE_TIME, LOT_PATHS, MarketLot, MarketStatus, lot_as_of
from sites.demo.sellers import Seller, seller_order

__all__ = [
    "BASE_TIME",
    "LIVE_SALES",
    "LOT_PATHS",
    "QUERIES",
    "RENAMED_KEYS",
    "LiveSale",
    "MarketCatalogue",
    "MarketLot",
    "MarketStatus",
    "live_sale",
    "market_catalogue",
    "matches",
    "sale_start",
    "words",
]

QUERIES: tuple[str, ...] = ("mambila", "mambilla", "chamba")
"""The queries the demo site files search for; each has at least two result pages by default."""

RENAMED_KEYS: dict[str, tuple[str, str]] = {
    "ebay": ("bidPriceDouble", "currentBidDouble"),  # in the $rwidgets data of a lot page
    "liveauctioneers": ("title", "lotTitle"),  # in window.__data's item.byId objects
    "catawiki": ("lotTitle", "title"),  # in the lot page's data-props JSON
}
"""The JSON key each marketplace renames under ``DemoConfig.renamed_json_key`` (old, new)."""


def words(text: str) -> set[str]:
    """The case-folded words of ``text``: what a keyword must equal to match."""
    return {w.casefold() for w in re.findall(r"\w+", text)}


def matches(lot: MarketLot, query: str) -> bool:
    """Whether every word of ``query`` is a word of the lot's title, subtitle or description."""
    wanted = words(query)
    return bool(wanted) and wanted <= words(lot.search_text)


def sale_start(lot: MarketLot) -> datetime:
    """When a LiveAuctioneers lot's live sale (its catalog) starts; its lots close during it."""
    return live_sale(lot.sale_id).starts


@functools.lru_cache(maxsize=8)
def _drawn(seed: int, renamed_slugs: frozenset[str]) -> dict[str, tuple[MarketLot, ...]]:
    """Every marketplace's drawn lots (time-independent), shared by all moments' catalogues."""
    config = DemoConfig(seed=seed, renamed_slugs=renamed_slugs)
    return {name: tuple(draw_lots(config, name)) for name in MARKETPLACES}


class MarketCatalogue:
    """All lots of the three demo marketplaces and what each search returns, as of the
    configuration's ``market_time``.

    ``lot()`` knows every drawn lot, whatever its status; the platform only serves pages of
    listed lots (``page_lot()``, ``lots()``: not upcoming ones); its searches find open lots
    only (on LiveAuctioneers that is a published lot not yet hammered), minus
    ``hidden_from_search``.
    """

    def __init__(self, config: DemoConfig | None = None) -> None:
        """The lots for ``config`` at its market time; reject knobs naming unknown lots."""
        self.config = config or DemoConfig()
        self.market_time = self.config.market_time or BASE_TIME
        drawn = _drawn(self.config.seed, self.config.renamed_slugs)
        self._lots: dict[str, dict[str, MarketLot]] = {
            name: {lot.lot_id: lot_as_of(lot, self.market_time) for lot in drawn[name]}
            for name in MARKETPLACES
        }
        known = {lot_id for lots in self._lots.values() for lot_id in lots}
        for knob in ("renamed_slugs", "hidden_from_search"):
            unknown = sorted(getattr(self.config, knob) - known)
            if unknown:
                examples = ", ".join(sorted(self._lots["catawiki"])[:3])
                raise ValueError(
                    f"{knob} names lot id(s) {unknown} that no demo marketplace has with "
                    f"seed {self.config.seed}; use ids from MarketCatalogue(config).lots(...), "
                    f"e.g. {examples}"
                )
        self._images = {
            (lot.marketplace, name): lot
            for lots in self._lots.values()
            for lot in lots.values()
            if lot.status != "upcoming"
            for name in lot.image_names
        }

    def at(self, moment: datetime) -> MarketCatalogue:
        """The same marketplaces as of ``moment`` (an aware datetime)."""
        return market_catalogue(dataclasses.replace(self.config, market_time=moment))

    def lots(self, marketplace: str, include_upcoming: bool = False) -> list[MarketLot]:
        """The listed lots of ``marketplace`` (promoted ones included), in lot-id order;
        ``include_upcoming`` adds those not listed yet (their pages answer 404)."""
        lots = self._lots[self._known(marketplace)]
        return [
            lots[key] for key in sorted(lots) if include_upcoming or lots[key].status != "upcoming"
        ]

    def lot(self, marketplace: str, lot_id: str) -> MarketLot | None:
        """The lot with this platform id on ``marketplace`` (any status), or None."""
        return self._lots[self._known(marketplace)].get(lot_id)

    def page_lot(self, marketplace: str, lot_id: str) -> MarketLot | None:
        """The lot whose pages the platform serves under this id now: None when there is no
        such lot or it is not listed yet. Closed and withdrawn lots keep their pages."""
        lot = self.lot(marketplace, lot_id)
        return None if lot is None or lot.status == "upcoming" else lot

    def lot_for_image(self, marketplace: str, name: str) -> MarketLot | None:
        """The listed lot on ``marketplace`` that shows the image called ``name``, or None."""
        return self._images.get((marketplace, name))

    def sellers(self, marketplace: str) -> list[Seller]:
        """The sellers with at least one lot on ``marketplace``, in id order (numbers as numbers).

        Time-independent: every drawn lot counts, eBay's promoted ones too (their pages link
        their sellers' profiles like any other). A seller of the platform without lots has no
        profile page (it answers 404).
        """
        lots = self._lots[self._known(marketplace)].values()
        found = {lot.seller.seller_id: lot.seller for lot in lots}
        return sorted(found.values(), key=seller_order)

    def seller(self, marketplace: str, seller_id: str) -> Seller | None:
        """The seller with this id (eBay: user name) among ``sellers(marketplace)``, or None."""
        return next((s for s in self.sellers(marketplace) if s.seller_id == seller_id), None)

    def open_lots(self, marketplace: str) -> list[MarketLot]:
        """The lots open for bids now (promoted ones included), in lot-id order."""
        return [lot for lot in self.lots(marketplace) if lot.status == "open"]

    def search(self, marketplace: str, query: str) -> list[MarketLot]:
        """The organic results of ``query`` in the platform's "best match" order (seeded):
        open lots only, never promoted ones nor those in ``hidden_from_search``."""
        hidden = self.config.hidden_from_search
        found = [
            lot
            for lot in self.open_lots(marketplace)
            if not lot.promoted and lot.lot_id not in hidden and matches(lot, query)
        ]
        norm = " ".join(sorted(words(query)))
        return sorted(found, key=lambda lot: digest(self.config, marketplace, norm, lot.lot_id))

    def page_count(self, marketplace: str, query: str) -> int:
        """How many result pages ``query`` fills (0 when nothing matches)."""
        return math.ceil(len(self.search(marketplace, query)) / self.config.search_page_size)

    def results_page(self, marketplace: str, query: str, page: int) -> list[MarketLot]:
        """Organic results on page ``page`` (from 1); empty past the last page."""
        size = self.config.search_page_size
        return self.search(marketplace, query)[(page - 1) * size : page * size]

    def sponsored(self, query: str, page: int) -> list[tuple[int, MarketLot]]:
        """eBay's sponsored results on a result page: (position among the items, lot).

        Two per page that has organic results, drawn from the open promoted lots, which match
        no demo query: a crawl that stores one has failed to leave sponsored results out.
        """
        organic = self.results_page("ebay", query, page)
        promoted = [lot for lot in self.open_lots("ebay") if lot.promoted]
        if not organic or not promoted:
            return []
        rng = random.Random(f"demo-market/{self.config.seed}/ebay/sponsored/{query}/{page}")
        chosen = rng.sample(promoted, min(2, len(promoted)))
        return [(0, chosen[0]), *((min(4, len(organic)), lot) for lot in chosen[1:])]

    def related(self, lot: MarketLot, count: int = 8) -> list[MarketLot]:
        """Other open lots a lot page shows ("similar items", "more from this seller"), seeded."""
        others = [x for x in self.open_lots(lot.marketplace) if x != lot and not x.promoted]
        others.sort(  # the same seller's lots first
            key=lambda x: (x.seller != lot.seller, digest(self.config, lot.lot_id, x.lot_id))
        )
        return others[:count]

    def closing_between(self, marketplace: str, start: datetime, end: datetime) -> list[MarketLot]:
        """The lots (as of now, any status) whose bidding ends for good at ``start`` or later
        and before ``end`` (the scheduled end, or the withdrawal), earliest first.

        For tests that follow lots over days, e.g. the lots closing on the 16th.
        """
        lots = self._lots[self._known(marketplace)].values()
        found = [lot for lot in lots if start <= lot.close_time < end]
        return sorted(found, key=lambda lot: (lot.close_time, lot.lot_id))

    def listed_between(self, marketplace: str, start: datetime, end: datetime) -> list[MarketLot]:
        """The lots (as of now, any status) first listed at ``start`` or later and before
        ``end``, earliest first: e.g. the lots that appear on the 15th."""
        lots = self._lots[self._known(marketplace)].values()
        found = [lot for lot in lots if start <= lot.start_time < end]
        return sorted(found, key=lambda lot: (lot.start_time, lot.lot_id))

    def _known(self, marketplace: str) -> str:
        if marketplace not in self._lots:
            raise KeyError(f"unknown marketplace {marketplace!r}; known: {', '.join(MARKETPLACES)}")
        return marketplace


@functools.lru_cache(maxsize=32)
def market_catalogue(config: DemoConfig) -> MarketCatalogue:
    """The (immutable) catalogue for ``config``, built once per configuration."""
    return MarketCatalogue(config)
