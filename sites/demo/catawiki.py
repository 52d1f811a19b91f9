"""Catawiki-like pages and JSON APIs of the demo site.

Shaped after what the group's scraper read in 2020-21 (dreamingspires/auction-scraper,
``scrapers/catawiki``): search is a JSON API (``/buyer/api/v1/search?q=Q&page=N`` ->
``{"lots": [{"id", "title", "url", ...}]}``, empty past the last page); a lot page
(``/l/ID-slug``) keeps its data in the ``data-props`` attribute (HTML-escaped JSON) of a
``div.lot-details-page-wrapper``, with the categories in a JSON-LD ``BreadcrumbList`` (beside
a JSON-LD ``Product`` block) and times in a ``dataLayer = [{...}];`` script; prices come from
the bidding API (``/buyer/api/v2/lots/ID/bidding?currency_code=EUR`` -> ``{"bidding":
{...}}``) and the bid count from ``/buyer/api/v1/lots/ID/bids`` (``meta.total``). Amounts are
EUR numbers; the experts' estimate is given in several currencies. The lot page's seller
sidebar (``LotsFromSellerSidebar``) and the seller page (``/u/ID``, a ``SellerProfile``
component) hold the same seller object in their ``data-props``. Searches find lots open for
bids only; a closed lot's page and APIs stay up with its result: the bidding API's
``closed``, ``sold`` and ``withdrawn`` flags, the dataLayer's ``lot_state`` (bidding, closed,
withdrawn) and, for a withdrawn lot, a notice in the page.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from urllib.parse import quote_plus

from sites.demo.embed import document, e, iso_z, number, script_json
from sites.demo.market_lot import bid_amount, bid_times
from sites.demo.marketplaces import RENAMED_KEYS, MarketCatalogue, MarketLot
from sites.demo.sellers import Seller, seller_path, slugify

_RATES = {"EUR": Decimal(1), "USD": Decimal("1.08"), "GBP": Decimal("0.86")}  # fixed, demo
_CATEGORY = (339, "African & Tribal art")
_KINDS = (("mask", "Masks"), ("headdress", "Masks"), ("figure", "Sculptures"),
          ("head", "Sculptures"), ("textile", "Textiles"), ("cloth", "Textiles"),
          ("apron", "Textiles"))  # fmt: skip


LOT_STATES: dict[str, str] = {
    "open": "bidding",
    "sold": "closed",
    "unsold": "closed",
    "withdrawn": "withdrawn",
}
"""The lot page's dataLayer ``lot_state`` by the lot's status (upcoming lots have no page)."""

WITHDRAWN_NOTICE = "This lot has been withdrawn by the seller and is no longer available."
_AVAILABILITY = {"upcoming": "PreOrder", "open": "InStock", "sold": "SoldOut",
                 "unsold": "OutOfStock", "withdrawn": "Discontinued"}  # fmt: skip


def search_path(query: str, page: int) -> str:
    """The search API's URL path for ``query``'s page ``page``."""
    return f"/catawiki/buyer/api/v1/search?q={quote_plus(query)}&page={page}"


def bidding_path(lot_id: str) -> str:
    """The bidding API's URL path for a lot (in EUR)."""
    return f"/catawiki/buyer/api/v2/lots/{lot_id}/bidding?currency_code=EUR"


def bids_path(lot_id: str) -> str:
    """The bids API's URL path for a lot (its ``meta.total`` is the bid count)."""
    return f"/catawiki/buyer/api/v1/lots/{lot_id}/bids?currency=EUR"


def image_path(name: str, size: str) -> str:
    """An image's URL path (``thumb`` or ``large``)."""
    return f"/catawiki/images/{size}/{name}"


def subcategory(lot: MarketLot) -> str:
    """The lot's last breadcrumb under "African & Tribal art"."""
    return next((name for word, name in _KINDS if word in lot.object_name), "Objects")


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def search_json(catalogue: MarketCatalogue, query: str, page: int) -> bytes:
    """The search API's answer for ``query``'s page ``page``."""
    lots = catalogue.results_page("catawiki", query, page)
    return _json(
        {
            "total": len(catalogue.search("catawiki", query)),
            "page": page,
            "lots": [
                {
                    "id": int(lot.lot_id),
                    "title": lot.title,
                    "subtitle": lot.subtitle,
                    "url": lot.path,
                    "thumbImageUrl": image_path(lot.image_names[0], "thumb"),
                    "auctionId": int(lot.sale_id),
                }
                for lot in lots
            ],
        }
    )


def bidding_json(lot: MarketLot) -> bytes:
    """The bidding API's answer for ``lot``."""
    return _json(
        {
            "bidding": {
                "lot_id": int(lot.lot_id),
                "currency_code": "EUR",
                "start_bid_amount": number(lot.starting_price),
                "current_bid_amount": number(lot.price),
                "min_bid_amount": number(lot.price + (5 if lot.price < 100 else 10)),
                "reserve_price_met": lot.reserve_price_met,
                "closed": lot.closed,
                "sold": lot.sold,
                "withdrawn": lot.status == "withdrawn",
                "bidding_start_time": iso_z(lot.start_time, millis=True),
                "bidding_end_time": iso_z(lot.end_time, millis=True),
            }
        }
    )


def bids_json(lot: MarketLot) -> bytes:
    """The bids API's answer for ``lot``: the bids placed so far, newest first (the newest at
    the current bid)."""
    count = lot.bid_count
    times = bid_times(lot)
    bids = [
        {
            "id": int(lot.lot_id) * 100 + n,
            "amount": number(bid_amount(lot, n)),
            "currency_code": "EUR",
            "created_at": iso_z(times[n - 1]),
            "bidder": {"token": f"Bidder {1000 + (int(lot.lot_id) + n * 37) % 9000}"},
        }
        for n in range(count, 0, -1)
    ]
    return _json({"meta": {"total": count}, "bids": bids})


def _in_currencies(amount: Decimal) -> dict[str, int | float]:
    """An EUR amount in each currency Catawiki quotes estimates in, rounded to whole units."""
    return {code: number((amount * rate).quantize(Decimal(1))) for code, rate in _RATES.items()}


def _props(lot: MarketLot, renamed: bool) -> dict[str, Any]:
    """The ``data-props`` object of the lot page."""
    low, high = lot.estimate_low or Decimal(0), lot.estimate_high or Decimal(0)
    props: dict[str, Any] = {
        "lotId": int(lot.lot_id),
        "lotTitle": lot.title,
        "lotSubtitle": lot.subtitle,
        "description": lot.description,
        "auctionId": int(lot.sale_id),
        "category": {"id": _CATEGORY[0], "name": _CATEGORY[1], "subcategory": subcategory(lot)},
        "sellerInfo": {
            "id": int(lot.seller.seller_id),
            "name": lot.seller.name,
            "city": lot.seller.city,
            "country": {"code": lot.seller.country_code, "name": lot.seller.country},
        },
        "specifications": [
            {"name": "Object", "value": lot.object_name},
            {"name": "Tribe/ culture", "value": lot.culture},
            {"name": "Country", "value": lot.country},
            {"name": "Material", "value": lot.material},
            {"name": "Height", "value": f"{lot.height_cm} cm"},
        ],
        "images": [
            {"thumbnail": image_path(name, "thumb"), "large": image_path(name, "large")}
            for name in lot.image_names
        ],
        "expertsEstimate": {"min": _in_currencies(low), "max": _in_currencies(high)},
    }
    if renamed:
        old, new = RENAMED_KEYS["catawiki"]
        props = {new if key == old else key: value for key, value in props.items()}
    return props


def _ld_blocks(lot: MarketLot) -> str:
    """The page's two JSON-LD blocks: the breadcrumbs, then the product and its offer."""
    names = ("Home", "Art", _CATEGORY[1], subcategory(lot))
    crumbs = {
        "@context": "https://schema.org",
        "@type": "BreadcrumbList",
        "itemListElement": [
            {
                "@type": "ListItem",
                "position": n,
                "item": {"@id": f"/catawiki/c/{n}-{slugify(name)}", "name": name},
            }
            for n, name in enumerate(names, start=1)
        ],
    }
    product = {
        "@context": "https://schema.org",
        "@type": "Product",
        "name": lot.title,
        "image": image_path(lot.image_names[0], "large"),
        "offers": {
            "@type": "Offer",
            "priceCurrency": "EUR",
            "price": number(lot.price),
            "availability": f"https://schema.org/{_AVAILABILITY[lot.status]}",
        },
    }
    return "".join(
        f'<script type="application/ld+json">{script_json(block)}</script>\n'
        for block in (crumbs, product)
    )


def _seller_json(seller: Seller) -> dict[str, Any]:
    """The seller object of the seller components (lot sidebar and seller page), one shape."""
    facts = seller.catawiki
    return {
        "id": int(seller.seller_id),
        "sellerName": seller.name,
        "url": seller_path("catawiki", seller),
        "createdAt": iso_z(facts.member_since),
        "score": {
            "score": number(facts.score),
            "positiveCount": facts.positive_count,
            "neutralCount": facts.neutral_count,
            "negativeCount": facts.negative_count,
        },
        "address": {"city": seller.city, "country": seller.country_code},
        "description": seller.description,
    }


def _lot_cards(lots: list[MarketLot]) -> list[dict[str, Any]]:
    return [
        {"id": int(x.lot_id), "title": x.title, "url": x.path,
         "thumbImageUrl": image_path(x.image_names[0], "thumb")}
        for x in lots
    ]  # fmt: skip


def _sidebar(catalogue: MarketCatalogue, lot: MarketLot) -> dict[str, Any]:
    """The "more from this seller" component's props: the seller and related lots."""
    return {"seller": _seller_json(lot.seller), "lots": _lot_cards(catalogue.related(lot))}


def render_seller(catalogue: MarketCatalogue, seller: Seller) -> str:
    """The seller's page (``/u/ID``): a ``SellerProfile`` component whose ``data-props`` hold
    the seller (as in the lot sidebar) and its open lots."""
    lots = [x for x in catalogue.lots("catawiki") if x.seller == seller and not x.closed]
    props = {"seller": _seller_json(seller), "lots": _lot_cards(lots[:24])}
    text = json.dumps(props, ensure_ascii=False, separators=(",", ":"))
    body = (
        '<div class="seller-profile-page" data-react-component="SellerProfile" '
        f'data-props="{e(text)}"></div>\n'
        f'<noscript><h1 class="seller-name">{e(seller.name)}</h1></noscript>\n'
    )
    head = f'<link rel="canonical" href="{e(seller_path("catawiki", seller))}">\n'
    return document(f"{seller.name} - Catawiki", body, head)


def render_lot(catalogue: MarketCatalogue, lot: MarketLot, renamed_key: bool = False) -> str:
    """The lot page of ``lot``; ``renamed_key`` renames ``lotTitle`` in its data-props."""
    layer = {
        "lot_id": int(lot.lot_id),
        "auction_id": int(lot.sale_id),
        "BiddingStartTime": iso_z(lot.start_time),
        "BiddingEndTime": iso_z(lot.end_time),
        "lot_state": LOT_STATES.get(lot.status, "bidding"),
    }
    head = (
        f'<link rel="canonical" href="{e(lot.path)}">\n{_ld_blocks(lot)}'
        f"<script>dataLayer = [{script_json(layer)}];</script>\n"
    )
    props = json.dumps(_props(lot, renamed_key), ensure_ascii=False, separators=(",", ":"))
    sidebar = json.dumps(_sidebar(catalogue, lot), ensure_ascii=False, separators=(",", ":"))
    notice = (
        f'<p class="lot-withdrawn-notice">{e(WITHDRAWN_NOTICE)}</p>'
        if lot.status == "withdrawn"
        else ""
    )
    body = (
        f'<div class="lot-details-page-wrapper" data-react-component="LotDetailsPage" '
        f'data-props="{e(props)}"></div>\n'
        f'<div class="lot-page-sidebar" data-react-component="LotsFromSellerSidebar" '
        f'data-props="{e(sidebar)}"></div>\n'
        f'<noscript><h1 class="lot-title">{e(lot.title)}</h1>{notice}'
        f'<a class="seller-name" href="{e(seller_path("catawiki", lot.seller))}">'
        f"{e(lot.seller.name)}</a></noscript>\n"
    )
    return document(f"{lot.title} - Catawiki", body, head)
