"""LiveAuctioneers-like pages of the demo site: search result pages and item pages.

Shaped after what the group's scraper read in 2021 (dreamingspires/auction-scraper,
``scrapers/liveauctioneers``): the page's state sits in ``window.__data={...};``, the whole
text of a ``<script data-reactroot>`` in the body. It is a JavaScript object literal, not
JSON: the site writes ``undefined`` for unset values (the old scraper replaced them before
``json.loads``), and writes ``/`` and ``<`` as ``\\u002F`` and ``\\u003C``. A search page
(``/search/?keyword=Q&page=N``) holds ``search.itemIds`` with each result's ``item.byId``
entry; an item page (``/item/ID_slug``) holds ``item``, ``itemDetail``, ``biddingInfo``,
``catalog`` and ``seller`` objects, each under ``byId`` keyed by id as a string, and its
header links the auctioneer page (``/auctioneer/ID/slug``), whose state holds
``sellerDetail``, ``sellerRatings`` and ``sellerFollowerCount``. Amounts are USD numbers;
images are thumbnail ``<img>``s whose class starts ``Thumbnail__StyledThumbnailImage``. Past
the last page ``itemIds`` is empty. A lot is listed when its catalog is published (absentee
bids from then) and hammered in the live sale; searches show the lots not yet hammered. Its
``biddingInfo`` states the result: ``lotStatus`` online, sold, passed or withdrawn (with
``isClosed``, ``isPassed``, ``isWithdrawn``, ``salePrice``, ``leadingBid``, ``bidCount``), and
the ``catalog`` its sale's ``catalogStatus`` (online, live, done).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote_plus

from sites.demo.embed import document, e, iso_z, number, script_json
from sites.demo.marketplaces import RENAMED_KEYS, MarketCatalogue, MarketLot, live_sale
from sites.demo.sellers import Seller, seller_path

UNDEFINED = "\x00undefined"
"""Stands for JavaScript's ``undefined`` in the state; rendered without quotes."""

MARKET = "liveauctioneers"
_THUMB = "Thumbnail__StyledThumbnailImage-sc-1ymssrh-0 kXWTjd"


def search_path(query: str, page: int) -> str:
    """The search URL path of ``query``'s page ``page``."""
    return f"/liveauctioneers/search/?keyword={quote_plus(query)}&page={page}"


def image_path(name: str, thumbnail: bool = False) -> str:
    """An image's URL path; thumbnails carry the resizing parameters the site adds."""
    path = f"/liveauctioneers/images/{name}"
    return path + "?height=80&quality=70" if thumbnail else path


def state_literal(state: dict[str, Any]) -> str:
    """``window.__data={...};`` as the site writes it (``undefined`` unquoted)."""
    text = script_json(state).replace(script_json(UNDEFINED), "undefined")
    return f"window.__data={text};"


def _item(lot: MarketLot, renamed: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "itemId": int(lot.lot_id),
        "catalogId": int(lot.sale_id),
        "sellerId": int(lot.seller.seller_id),
        "title": lot.title,
        "lotNumber": lot.lot_number,
        "lowBidEstimate": number(lot.estimate_low or Decimal(0)),
        "highBidEstimate": number(lot.estimate_high or Decimal(0)),
        "startPrice": number(lot.starting_price),
        "publishDate": iso_z(lot.start_time),
        "photos": list(range(1, len(lot.image_names) + 1)),
        "isCatalogOnly": False,
        "buyNowPrice": UNDEFINED,
    }
    if renamed:
        old, new = RENAMED_KEYS["liveauctioneers"]
        item = {new if key == old else key: value for key, value in item.items()}
    return item


LOT_STATUSES: dict[str, str] = {
    "open": "online",
    "sold": "sold",
    "unsold": "passed",
    "withdrawn": "withdrawn",
}
"""``biddingInfo.lotStatus`` by the lot's status (upcoming lots have no page)."""

_LIVE_SALE_LENGTH = timedelta(hours=2)  # every demo sale is hammered within it


def _bidding(lot: MarketLot) -> dict[str, Any]:
    return {
        "itemId": int(lot.lot_id),
        "bidCount": lot.bid_count,
        "leadingBid": number(lot.price),
        "salePrice": number(lot.price) if lot.sold else 0,
        "isClosed": lot.closed,
        "isPassed": lot.status == "unsold",
        "isWithdrawn": lot.status == "withdrawn",
        "isReserveMet": lot.reserve_price_met,
        "soldDate": int(lot.end_time.timestamp()) if lot.sold else 0,
        "lotStatus": LOT_STATUSES.get(lot.status, "online"),
    }


def _catalog(lot: MarketLot) -> dict[str, Any]:
    sale = live_sale(lot.sale_id)
    if lot.as_of < sale.starts:
        status = "online"  # absentee bidding
    else:
        status = "live" if lot.as_of < sale.starts + _LIVE_SALE_LENGTH else "done"
    return {
        "catalogId": int(lot.sale_id),
        "sellerId": int(lot.seller.seller_id),
        "title": sale.title,
        "saleStartTs": int(sale.starts.timestamp()),  # lots close during the sale
        "catalogStatus": status,
    }


def _street(seller: Seller) -> str:
    return f"{10 + int(seller.seller_id) % 80} Market Street"


def _seller(seller: Seller) -> dict[str, Any]:
    """The ``seller.byId`` entry of a lot page: the house as the lot's header shows it."""
    return {
        "sellerId": int(seller.seller_id),
        "name": seller.name,
        "address": _street(seller),
        "address2": "",
        "city": seller.city,
        "country": seller.country,
        "logoId": UNDEFINED,
    }


def _state(lots: list[MarketLot], renamed: bool, detail: bool) -> dict[str, Any]:
    """The ``item``, ``biddingInfo``, ``catalog`` and ``seller`` slices for ``lots`` (and
    ``itemDetail`` for the first one when ``detail``)."""
    state: dict[str, Any] = {
        "item": {"byId": {lot.lot_id: _item(lot, renamed) for lot in lots}},
        "biddingInfo": {"byId": {lot.lot_id: _bidding(lot) for lot in lots}},
        "catalog": {"byId": {lot.sale_id: _catalog(lot) for lot in lots}},
        "seller": {"byId": {lot.seller.seller_id: _seller(lot.seller) for lot in lots}},
    }
    if detail:
        state["itemDetail"] = {
            "byId": {
                lot.lot_id: {
                    "itemId": int(lot.lot_id),
                    "description": lot.description,
                    "conditionReport": lot.condition,
                }
                for lot in lots[:1]
            }
        }
    return state


def _auctioneer_info(seller: Seller) -> str:
    """The lot header's auctioneer block: the house's name linking its page, and its town."""
    href = e(seller_path(MARKET, seller))
    return (
        '<div class="AuctioneerInfo__StyledAuctioneerInfo-sc-1ouz4t9-0 auctioneerInfo">'
        f'<a class="AuctioneerInfo__StyledLink-sc-1ouz4t9-1" href="{href}">'
        f'<h3 class="AuctioneerInfo__sellerName-sc-1ouz4t9-2 sellerName">{e(seller.name)}</h3></a>'
        f'<div class="Address__StyledAddress-sc-z6rjg0-0 address">{e(seller.location)}</div>'
        "</div>\n"
    )


def _thumbnail(lot: MarketLot, name: str) -> str:
    src = e(image_path(name, thumbnail=True))
    return f'<img class="{_THUMB}" src="{src}" alt="{e(lot.title)}">'


def _thumbnails(lot: MarketLot) -> str:
    return "".join(_thumbnail(lot, name) for name in lot.image_names)


def render_search(
    catalogue: MarketCatalogue, query: str, page: int, renamed_key: bool = False
) -> str:
    """Result page ``page`` of ``query``: cards, and the state with ``search.itemIds``."""
    lots = catalogue.results_page("liveauctioneers", query, page)
    state = {
        "search": {
            "itemIds": [int(lot.lot_id) for lot in lots],
            "totalFound": len(catalogue.search("liveauctioneers", query)),
            "submittedSearch": {
                "keyword": query,
                "page": page,
                "pageSize": catalogue.config.search_page_size,
                "status": "online",
            },
            "error": UNDEFINED,
        },
        **_state(lots, renamed_key, detail=False),
    }
    cards = "".join(
        f'<div class="Card__StyledCard-sc-1xzzn2g-0 item-card"><a href="{e(lot.path)}">'
        f"{_thumbnail(lot, lot.image_names[0])}</a>"
        f'<a class="item-title" href="{e(lot.path)}">{e(lot.title)}</a></div>\n'
        for lot in lots
    )
    body = (
        f'<div id="root"><h1>{e(query)} for sale</h1>\n<div class="search-results">\n{cards}'
        f'</div></div>\n<script data-reactroot="">{state_literal(state)}</script>\n'
    )
    return document(f"{query} for Sale | LiveAuctioneers", body)


def render_item(catalogue: MarketCatalogue, lot: MarketLot, renamed_key: bool = False) -> str:
    """The item page of ``lot``; ``renamed_key`` renames the items' title key.

    As on the site, ``item.byId`` (and ``biddingInfo``...) also hold the similar items the
    page shows, so a reader must pick the lot's own entry by its id.
    """
    similar = catalogue.related(lot)
    state = {
        **_state([lot, *similar], renamed_key, detail=True),
        "similarItems": {"byId": {lot.lot_id: [int(x.lot_id) for x in similar]}},
    }
    cards = "".join(
        f'<a class="similar-item" href="{e(x.path)}">{e(x.title)}</a>\n' for x in similar
    )
    body = (
        '<div id="root"><div class="ItemPage__StyledItemPage-sc-7d3y0z-0">\n'
        f'<h1 class="LotTitle__StyledTitle-sc-10cnu4h-0">{e(lot.title)}</h1>\n'
        f"{_auctioneer_info(lot.seller)}"
        f'<div class="Thumbnails__StyledThumbnails-sc-1ntlhx5-0">{_thumbnails(lot)}</div>\n'
        f'<section class="SimilarItems__StyledSection-sc-1x2y3z-0">\n{cards}</section>\n'
        "</div></div>\n"
        f'<script data-reactroot="">{state_literal(state)}</script>\n'
    )
    head = f'<link rel="canonical" href="{e(lot.path)}">\n'
    return document(f"{lot.title} | LiveAuctioneers", body, head)


def _auctioneer_state(seller: Seller) -> dict[str, Any]:
    """The auctioneer page's state: ``sellerDetail``, ``sellerRatings``, ``sellerFollowerCount``."""
    facts = seller.liveauctioneers
    key, seller_id = seller.seller_id, int(seller.seller_id)
    detail = {
        **_seller(seller),
        "countryCode": seller.country_code,
        "description": seller.description,
        "slug": seller.slug,
        "websiteUrl": UNDEFINED,
    }
    ratings = {
        "sellerId": seller_id,
        "overall": number(facts.rating),
        "totalRatings": facts.ratings_count,
        "starCounts": {str(n): c for n, c in zip((5, 4, 3, 2, 1), facts.star_counts, strict=True)},
        "reviews": UNDEFINED,  # loaded by the page's script, as on the site
    }
    return {
        "sellerDetail": {"byId": {key: detail}},
        "sellerRatings": {"byId": {key: ratings}},
        "sellerFollowerCount": {"byId": {key: facts.followers}},
    }


def render_auctioneer(catalogue: MarketCatalogue, seller: Seller) -> str:
    """The auctioneer page of ``seller`` (``/auctioneer/ID/slug``): header, ratings, about text.

    The state holds the facts (``window.__data``); the server-rendered HTML repeats them as
    the 2021 scraper read them: ``titleName``, ``Address__StyledAddress``, "N Followers", a
    ``ratingsCounter`` with each star count in a ``blue`` span, ``seller-about-text``.
    """
    facts = seller.liveauctioneers
    counts = "".join(
        f'<div class="RatingsCounter__StyledRow-sc-1y5x8kr-1"><span>{n} Star{"s" * (n > 1)}</span> '
        f'<span class="RatingsCounter__blue-sc-1y5x8kr-2 blue">({count})</span></div>'
        for n, count in zip((5, 4, 3, 2, 1), facts.star_counts, strict=True)
    )
    lots = [lot for lot in catalogue.open_lots(MARKET) if lot.seller == seller]
    cards = "".join(
        f'<a class="item-title" href="{e(lot.path)}">{e(lot.title)}</a>\n' for lot in lots[:12]
    )
    body = (
        '<div id="root"><div class="SellerPage__StyledSellerPage-sc-1mh2ahb-0">\n'
        '<div class="SellerHeader__StyledSellerHeader-sc-16xgxpo-0"><h1>'
        f'<span class="SellerHeader__titleName-sc-16xgxpo-1 titleName">{e(seller.name)}</span>'
        f'</h1><div class="Address__StyledAddress-sc-z6rjg0-0">{e(seller.location)}</div>'
        f'<div class="SellerHeader__followers-sc-16xgxpo-2 followers">{facts.followers:,} '
        "Followers</div></div>\n"
        '<div class="RatingsCounter__StyledRatingsCounter-sc-1y5x8kr-0 ratingsCounter">'
        f'<span class="RatingsCounter__overall-sc-1y5x8kr-3">{facts.rating}</span> '
        f"<span>{facts.ratings_count:,} Ratings</span>{counts}</div>\n"
        '<div class="SellerAbout__StyledAbout-sc-7bb4d6-0 seller-about-text">'
        f"{e(seller.description)}</div>\n"
        f'<section class="SellerItems__StyledSection-sc-4a9b1c-0">\n{cards}</section>\n'
        "</div></div>\n"
        f'<script data-reactroot="">{state_literal(_auctioneer_state(seller))}</script>\n'
    )
    head = f'<link rel="canonical" href="{e(seller_path(MARKET, seller))}">\n'
    return document(f"{seller.name} | LiveAuctioneers", body, head)
