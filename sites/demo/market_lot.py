"""A demo marketplace lot and its clock: what a lot's pages show at a given moment.

The pipeline crawls the marketplaces several times a day and follows each lot until it
closes, so the demo must answer "what does this lot look like at time t?" purely. A lot is
drawn once, time-independently (its starting price, total bids and final price, reserve,
start, scheduled end, withdrawal time, seller); :func:`lot_as_of` derives from those facts
its state at ``t``: upcoming, open with the bids placed so far, or closed (sold, unsold or
withdrawn) by the platform's rules. Pages and tests built from one moment therefore agree.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

from sites.demo.sellers import Seller

BASE_TIME = datetime(2026, 3, 14, 18, 0, tzinfo=UTC)
"""The demo's market time when ``DemoConfig.market_time`` is None; lots' times lie around it."""

LOT_PATHS: dict[str, str] = {
    "ebay": "/ebay/itm/{slug}/{lot_id}",
    "liveauctioneers": "/liveauctioneers/item/{lot_id}_{slug}",
    "catawiki": "/catawiki/l/{lot_id}-{slug}",
}
"""Canonical lot URL path per marketplace (the platform's own pattern under a path prefix)."""

MarketStatus = Literal["upcoming", "open", "sold", "unsold", "withdrawn"]

_CENT = Decimal("0.01")
_BID_CLUSTERING = 3  # bids crowd towards the close: bid k of n at 1 - (1 - k/(n+1))**3


@dataclass(frozen=True)
class MarketLot:
    """One marketplace lot as its pages show it at ``as_of``: the truth a crawl is checked
    against.

    Drawn facts (the same at every moment): ``starting_price``, ``total_bids`` and
    ``final_price`` (the last bid, or the starting price without bids), ``reserve_price``
    (Catawiki; None without reserve), ``start_time`` (listed; LiveAuctioneers: the catalog's
    publication), ``scheduled_end_time`` and ``withdrawn_time`` (when the seller ends the
    listing early, or None).

    As of ``as_of``: ``bid_count`` is the bids placed so far, ``price`` the current bid (the
    starting price while nobody has bid) and, once ``closed``, the final price (the winning
    bid when ``sold``); ``reserve_price_met`` whether the current bid meets the reserve;
    ``end_time`` the scheduled end, or the withdrawal time once withdrawn; ``status`` one of
    upcoming, open, sold, unsold, withdrawn. Amounts are in ``currency``.
    """

    marketplace: str
    lot_id: str
    slug: str
    title: str
    subtitle: str
    description: str
    condition: str
    culture: str
    object_name: str
    material: str
    country: str
    height_cm: Decimal
    currency: str
    price: Decimal
    starting_price: Decimal
    buy_now_price: Decimal | None
    bid_count: int
    estimate_low: Decimal | None
    estimate_high: Decimal | None
    closed: bool
    sold: bool
    reserve_price_met: bool
    start_time: datetime
    end_time: datetime
    seller: Seller
    sale_id: str  # LiveAuctioneers catalog id, Catawiki auction id, "" on eBay
    lot_number: str
    image_names: tuple[str, ...]
    promoted: bool  # eBay: shown only in sponsored result slots, never as an organic result
    final_price: Decimal
    total_bids: int
    reserve_price: Decimal | None
    scheduled_end_time: datetime
    withdrawn_time: datetime | None
    as_of: datetime

    @property
    def path(self) -> str:
        """The lot page's canonical path on the demo server, e.g. ``/catawiki/l/4512-mask``."""
        return LOT_PATHS[self.marketplace].format(slug=self.slug, lot_id=self.lot_id)

    @property
    def search_text(self) -> str:
        """What a keyword search looks in: title, subtitle and description."""
        return f"{self.title} {self.subtitle} {self.description}"

    @property
    def status(self) -> MarketStatus:
        """upcoming (not listed yet), open, sold, unsold or withdrawn, as of ``as_of``."""
        if self.as_of < self.start_time:
            return "upcoming"
        if self.withdrawn_time is not None and self.as_of >= self.withdrawn_time:
            return "withdrawn"
        if not self.closed:
            return "open"
        return "sold" if self.sold else "unsold"

    @property
    def close_time(self) -> datetime:
        """When bidding ends for good: the withdrawal, else the scheduled end."""
        return self.withdrawn_time or self.scheduled_end_time


def bid_times(lot: MarketLot) -> list[datetime]:
    """When each of the lot's ``total_bids`` bids is placed, oldest first (deterministic).

    Bid k of n falls at fraction ``1 - (1 - k/(n+1))**3`` of the way from the start to the
    scheduled end: few early bids, most near the close, as on the platforms.
    """
    n = lot.total_bids
    span = (lot.scheduled_end_time - lot.start_time).total_seconds()
    return [
        lot.start_time + timedelta(seconds=round(span * (1 - (1 - k / (n + 1)) ** _BID_CLUSTERING)))
        for k in range(1, n + 1)
    ]


def bid_amount(lot: MarketLot, k: int) -> Decimal:
    """The lot's price after ``k`` bids: evenly from the starting price to the final price."""
    if k <= 0 or lot.total_bids == 0:
        return lot.starting_price
    k = min(k, lot.total_bids)
    step = (lot.final_price - lot.starting_price) * k / lot.total_bids
    whole = lot.marketplace != "ebay"  # LiveAuctioneers and Catawiki bid in whole units
    return (lot.starting_price + step).quantize(Decimal(1) if whole else _CENT)


def bids_placed(lot: MarketLot, moment: datetime) -> int:
    """How many of the lot's bids have been placed by ``moment`` (none after a withdrawal)."""
    until = min(moment, lot.withdrawn_time) if lot.withdrawn_time is not None else moment
    if until >= lot.scheduled_end_time:
        return lot.total_bids
    return sum(1 for placed in bid_times(lot) if placed <= until)


def sells(lot: MarketLot) -> bool:
    """Whether the lot sells at its scheduled end, by its platform's rule.

    eBay: any bid wins. LiveAuctioneers: any bid, else the lot is passed. Catawiki: a bid
    that meets the reserve (lots without reserve sell on any bid). A withdrawn lot never sells.
    """
    if lot.withdrawn_time is not None or lot.total_bids == 0:
        return False
    if lot.marketplace == "catawiki" and lot.reserve_price is not None:
        return lot.final_price >= lot.reserve_price
    return True


def lot_as_of(lot: MarketLot, moment: datetime) -> MarketLot:
    """``lot`` (any moment's copy of it) as its pages show it at ``moment`` (aware)."""
    withdrawn = lot.withdrawn_time is not None and moment >= lot.withdrawn_time
    if moment < lot.start_time:
        count, closed, sold = 0, False, False
    elif withdrawn:
        count, closed, sold = bids_placed(lot, moment), True, False
    elif moment >= lot.scheduled_end_time:
        count, closed, sold = lot.total_bids, True, sells(lot)
    else:
        count, closed, sold = bids_placed(lot, moment), False, False
    price = bid_amount(lot, count)
    reserve = lot.reserve_price
    return dataclasses.replace(
        lot,
        price=price,
        bid_count=count,
        closed=closed,
        sold=sold,
        reserve_price_met=reserve is None or (count > 0 and price >= reserve),
        end_time=lot.withdrawn_time if withdrawn and lot.withdrawn_time else lot.scheduled_end_time,
        as_of=moment,
    )
