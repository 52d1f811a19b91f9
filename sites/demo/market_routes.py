"""URL routing of the three demo marketplaces, served by the demo site under path prefixes.

One server plays eBay (``/ebay/...``), LiveAuctioneers (``/liveauctioneers/...``) and Catawiki
(``/catawiki/...``): below its prefix each keeps the platform's own URL patterns, so a site
file written for the demo differs from one for the live platform only in its base URL. Pure:
the reply depends on the configuration and the request target alone.

- eBay: ``/sch/i.html?_nkw=Q&_pgn=N``, ``/itm/ID`` and ``/itm/SLUG/ID`` (any slug, as on eBay),
  ``/ws/eBayISAPI.dll?ViewItemDescV4&item=ID`` (the description iframe), ``/usr/NAME`` (the
  member page), ``/images/g/TOKEN/s-lSIZE.png``.
- LiveAuctioneers: ``/search/?keyword=Q&page=N``, ``/item/ID_slug``,
  ``/auctioneer/ID/slug`` (the seller's page), ``/images/NAME``.
- Catawiki: ``/buyer/api/v1/search?q=Q&page=N``, ``/l/ID-slug``,
  ``/buyer/api/v2/lots/ID/bidding?currency_code=EUR``, ``/buyer/api/v1/lots/ID/bids``,
  ``/u/ID`` (the seller's page), ``/images/SIZE/NAME``.

A LiveAuctioneers or Catawiki lot, or a LiveAuctioneers auctioneer, asked for under another
slug (an old one, or none) answers 301 to its canonical URL, as those platforms do. Seller
pages exist for the sellers with lots (``MarketCatalogue.sellers``); other ids are 404. Pages
are as of the configuration's ``market_time``: a lot not listed yet is 404 (pages, APIs and
images); a closed or withdrawn lot keeps its pages, which show the result.
"""

from __future__ import annotations

import json
from typing import NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

from sites.demo import catawiki, ebay, liveauctioneers
from sites.demo.catalogue import MARKETPLACES, Catalogue
from sites.demo.marketplaces import MarketCatalogue, MarketLot, market_catalogue
from sites.demo.sellers import seller_path

MARKET_SEARCHES: tuple[str, ...] = (
    ebay.search_path("mambila", 1),
    liveauctioneers.search_path("mambila", 1),
    catawiki.search_path("mambila", 1),
)
"""A first search page of each marketplace, for people browsing the demo site."""

HTML = "text/html; charset=utf-8"
JSON = "application/json; charset=utf-8"
PNG = "image/png"


class MarketReply(NamedTuple):
    """One HTTP response of a marketplace: status, content type, body, extra headers."""

    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def _html(text: str) -> MarketReply:
    return MarketReply(200, HTML, text.encode("utf-8"))


def _json(body: bytes, status: int = 200) -> MarketReply:
    return MarketReply(status, JSON, body)


def _json_error(status: int, message: str) -> MarketReply:
    return _json(json.dumps({"error": message}).encode("utf-8"), status)


def _moved(location: str) -> MarketReply:
    page = f'<!DOCTYPE html>\n<html><body><a href="{location}">Moved</a></body></html>\n'
    return MarketReply(301, HTML, page.encode("utf-8"), (("Location", location),))


def _param(params: dict[str, list[str]], name: str) -> str:
    return params.get(name, [""])[0]


def _page(params: dict[str, list[str]], name: str) -> int | None:
    """The page number parameter (1 when absent), or None when it is not a positive integer."""
    text = params.get(name, ["1"])[0]
    return int(text) if text.isdigit() and int(text) >= 1 else None


def _png(catalogue: Catalogue, lot: MarketLot | None, name: str) -> MarketReply | None:
    if lot is None:
        return None
    return MarketReply(200, PNG, catalogue.image_bytes(f"{lot.marketplace}/{name}"))


def route_marketplace(catalogue: Catalogue, target: str) -> MarketReply | None:
    """The fault-free reply to ``GET target`` when it names a marketplace page, else None.

    None means "not a page of a marketplace": the caller answers 404 as for any unknown path.
    """
    parts = urlsplit(target)
    segments = unquote(parts.path).split("/")[1:]
    if not segments or segments[0] not in MARKETPLACES:
        return None
    market = market_catalogue(catalogue.config)
    params = parse_qs(parts.query, keep_blank_values=True)
    renamed = segments[0] in catalogue.config.renamed_json_key
    if segments[0] == "ebay":
        return _ebay(catalogue, market, segments[1:], params, renamed)
    if segments[0] == "liveauctioneers":
        return _liveauctioneers(catalogue, market, segments[1:], params, renamed)
    return _catawiki(catalogue, market, segments[1:], params, renamed)


def _ebay(
    catalogue: Catalogue,
    market: MarketCatalogue,
    rest: list[str],
    params: dict[str, list[str]],
    renamed: bool,
) -> MarketReply | None:
    match rest:
        case ["sch", "i.html"]:
            page = _page(params, "_pgn")
            if page is None:
                return None
            return _html(ebay.render_search(market, _param(params, "_nkw"), page))
        case ["itm", lot_id] | ["itm", _, lot_id]:
            lot = market.page_lot("ebay", lot_id)
            return None if lot is None else _html(ebay.render_item(market, lot, renamed))
        case ["ws", "eBayISAPI.dll"] if "ViewItemDescV4" in params:
            lot = market.page_lot("ebay", _param(params, "item"))
            return None if lot is None else _html(ebay.render_description(lot))
        case ["usr", name]:
            page_text = ebay.render_seller(market, name)
            return None if page_text is None else _html(page_text)
        case ["images", "g", token, size] if size in ("s-l225.png", "s-l500.png", "s-l1600.png"):
            return _png(catalogue, market.lot_for_image("ebay", token), f"{token}/{size}")
    return None


def _liveauctioneers(
    catalogue: Catalogue,
    market: MarketCatalogue,
    rest: list[str],
    params: dict[str, list[str]],
    renamed: bool,
) -> MarketReply | None:
    match rest:
        case ["search", ""] | ["search"]:
            page = _page(params, "page")
            if page is None:
                return None
            query = _param(params, "keyword")
            return _html(liveauctioneers.render_search(market, query, page, renamed))
        case ["item", ref]:
            lot = market.page_lot("liveauctioneers", ref.split("_", 1)[0])
            if lot is None:
                return None
            if ref != f"{lot.lot_id}_{lot.slug}":
                return _moved(lot.path)
            return _html(liveauctioneers.render_item(market, lot, renamed))
        case ["auctioneer", seller_id, *slug] if len(slug) <= 1:
            seller = market.seller("liveauctioneers", seller_id)
            if seller is None:
                return None
            if slug != [seller.slug]:
                return _moved(seller_path("liveauctioneers", seller))
            return _html(liveauctioneers.render_auctioneer(market, seller))
        case ["images", name]:
            return _png(catalogue, market.lot_for_image("liveauctioneers", name), name)
    return None


def _catawiki(
    catalogue: Catalogue,
    market: MarketCatalogue,
    rest: list[str],
    params: dict[str, list[str]],
    renamed: bool,
) -> MarketReply | None:
    match rest:
        case ["buyer", "api", "v1", "search"]:
            page = _page(params, "page")
            if page is None:
                return _json_error(400, "page must be a positive integer")
            return _json(catawiki.search_json(market, _param(params, "q"), page))
        case ["buyer", "api", "v2", "lots", lot_id, "bidding"]:
            currency = _param(params, "currency_code") or "EUR"
            if currency != "EUR":
                return _json_error(422, f"currency_code {currency!r} is not supported: use EUR")
            lot = market.page_lot("catawiki", lot_id)
            return (
                _json_error(404, "lot not found")
                if lot is None
                else _json(catawiki.bidding_json(lot))
            )
        case ["buyer", "api", "v1", "lots", lot_id, "bids"]:
            lot = market.page_lot("catawiki", lot_id)
            return (
                _json_error(404, "lot not found") if lot is None else _json(catawiki.bids_json(lot))
            )
        case ["buyer", *_]:
            return _json_error(404, "not found")
        case ["l", ref]:
            lot = market.page_lot("catawiki", ref.split("-", 1)[0])
            if lot is None:
                return None
            if ref != f"{lot.lot_id}-{lot.slug}":
                return _moved(lot.path)
            return _html(catawiki.render_lot(market, lot, renamed))
        case ["u", seller_id]:
            seller = market.seller("catawiki", seller_id)
            return None if seller is None else _html(catawiki.render_seller(market, seller))
        case ["images", "thumb" | "large" as size, name]:
            return _png(catalogue, market.lot_for_image("catawiki", name), f"{size}/{name}")
    return None
