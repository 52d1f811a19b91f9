"""eBay-like pages of the demo site: search results, item pages, descriptions, sellers.

Shaped after the pages the group's scraper read in 2020-21 (dreamingspires/auction-scraper,
``scrapers/ebay``): results are ``li`` elements with a ``listingid`` attribute in
``ul.srp-results``, their title links (``h3 > a``) carry tracking query strings, and
sponsored results are mixed in, marked by an ``s-item__title--tagblock`` block with a
``...SPONSORED`` span and "pulsar" tracking; an item page (``/itm/ID`` or ``/itm/SLUG/ID``)
keeps its fields in ``$rwidgets([...], ...)`` calls inside ``div#JSDF`` scripts (the same key
may appear in several widgets, ``null`` in one and set in another) and its description in an
iframe under ``div#desc_div`` whose ``src`` is a separate page; its seller box links the
member page ``/usr/NAME`` (name, feedback score, location, member since, percent positive,
"about" text). As on eBay, a result page past the last one repeats the last one, so a crawl
stops on "no new result". Results are active listings only; an ended listing's page stays up
and says so: a message in ``div#msgPanel span.msgTextAlign`` ("Bidding has ended on this
item." or "This listing was ended by the seller because the item is no longer available."),
the price label in ``div.vi-price-label`` ("Current bid:", "Starting bid:", "Winning bid:")
and, in the item summary widget, ``listingStatus`` (ACTIVE, ENDED) and ``endReason`` (null
while active; SOLD, NO_WINNING_BID or NOT_AVAILABLE).
"""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal
from urllib.parse import quote_plus

from sites.demo.embed import document, e, number, script_json
from sites.demo.marketplaces import RENAMED_KEYS, MarketCatalogue, MarketLot
from sites.demo.sellers import Seller, seller_path

_SYMBOLS = {"GBP": "£", "USD": "US $", "EUR": "EUR "}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def search_path(query: str, page: int) -> str:
    """The search URL path of ``query``'s page ``page``, as eBay's own pagination links it."""
    return f"/ebay/sch/i.html?_nkw={quote_plus(query)}&_pgn={page}"


def description_path(lot: MarketLot) -> str:
    """Where the lot's description iframe points (eBay served it from another host)."""
    return (
        f"/ebay/ws/eBayISAPI.dll?ViewItemDescV4&item={lot.lot_id}&t=0"
        f"&seller={quote_plus(lot.seller.seller_id)}&excSoj=1&excTrk=1&lsite=0"
    )


def image_path(name: str, size: int) -> str:
    """An image URL path in eBay's scheme: an opaque token and a size (s-l1600 is the largest)."""
    return f"/ebay/images/g/{name}/s-l{size}.png"


def money(currency: str, amount: Decimal) -> str:
    """An amount as eBay.com prints it: ``£125.50``, ``US $49.99``, ``EUR 120.00``."""
    return f"{_SYMBOLS.get(currency, currency + ' ')}{amount:,.2f}"


def _tracked(lot: MarketLot, query: str, page: int, position: int, sponsored: bool) -> str:
    """The lot's link as a result shows it: its path plus tracking parameters per placement."""
    tag = hashlib.sha256(f"{query}/{page}/{position}/{lot.lot_id}".encode()).hexdigest()[:24]
    algo = "aid%3D1110006%26algo%3DPROMOTED%26pl%3Dpulsar" if sponsored else "ispr%3D1"
    return (
        f"{lot.path}?hash=item{int(lot.lot_id):x}:g:{lot.image_names[0]}&_trkparms={algo}"
        f"&amdata=enc%3AAQAH{tag}&_trksid=p2047675.m570.l1313"
    )


ENDED_MESSAGES: dict[str, str] = {
    "sold": "Bidding has ended on this item.",
    "unsold": "Bidding has ended on this item.",
    "withdrawn": "This listing was ended by the seller because the item is no longer available.",
}
"""The message an ended listing's page shows in ``div#msgPanel``, by status."""

END_REASONS: dict[str, str | None] = {
    "open": None,
    "sold": "SOLD",
    "unsold": "NO_WINNING_BID",
    "withdrawn": "NOT_AVAILABLE",
}
"""The item summary widget's ``endReason`` by status (``listingStatus`` is ACTIVE or ENDED)."""


def price_label(lot: MarketLot) -> str:
    """The label before the item page's price: ``Current bid:``, ``Starting bid:`` (no bid)
    or, once sold, ``Winning bid:``."""
    if lot.sold:
        return "Winning bid:"
    return "Current bid:" if lot.bid_count else "Starting bid:"


def _bids(count: int) -> str:
    return f"{count} bid" if count == 1 else f"{count} bids"


def _result(lot: MarketLot, query: str, page: int, position: int, sponsored: bool) -> str:
    """One ``li`` of the result list."""
    href = e(_tracked(lot, query, page, position, sponsored))
    tag = (
        '<div class="s-item__title--tagblock"><span class="s-item__title--tagblock__SPONSORED"'
        ' role="text">SPONSORED</span></div>'
        if sponsored
        else ""
    )
    buy_now = (
        '<span class="s-item__purchase-options">or Buy It Now</span>' if lot.buy_now_price else ""
    )
    return (
        f'<li class="s-item" id="srp-river-results-listing{position + 1}" '
        f'listingid="{lot.lot_id}" r="{position + 1}">'
        '<div class="s-item__wrapper clearfix"><div class="s-item__image-section">'
        f'<a href="{href}" tabindex="-1"><img class="s-item__image-img" '
        f'src="{e(image_path(lot.image_names[0], 225))}" alt="{e(lot.title)}"></a></div>'
        f'<div class="s-item__info clearfix"><h3 class="s-item__title lvtitle">'
        f'<a class="s-item__link vip" href="{href}">{e(lot.title)}</a></h3>{tag}'
        '<div class="s-item__details clearfix"><div class="s-item__detail">'
        f'<span class="s-item__price">{e(money(lot.currency, lot.price))}</span></div>'
        f'<div class="s-item__detail"><span class="s-item__bids s-item__bidCount">'
        f"{_bids(lot.bid_count)}</span>{buy_now}</div>"
        f'<span class="s-item__location s-item__itemLocation">from {e(lot.seller.country)}'
        "</span></div></div></div></li>\n"
    )


def render_search(catalogue: MarketCatalogue, query: str, page: int) -> str:
    """Result page ``page`` of ``query``; past the last page, the last page again (as eBay)."""
    pages = catalogue.page_count("ebay", query)
    shown = min(page, max(pages, 1))
    organic = catalogue.results_page("ebay", query, shown)
    placed = [(lot, False) for lot in organic]
    for position, lot in reversed(catalogue.sponsored(query, shown)):
        placed.insert(position, (lot, True))
    items = [_result(lot, query, shown, i, ad) for i, (lot, ad) in enumerate(placed)]
    if organic:  # a non-item answer in the river, as eBay shows between results
        items.insert(
            1,
            '<li class="srp-river-answer srp-river-answer--NAVIGATION_ANSWER_TEXT_QUERY_CARD">'
            f'Related: <a href="{e(search_path("african tribal art", 1))}">african tribal art'
            "</a></li>\n",
        )
    total = len(catalogue.search("ebay", query))
    if shown < pages:
        nxt = f'<a class="pagination__next icon-link" href="{e(search_path(query, shown + 1))}">'
    else:
        nxt = '<a class="pagination__next icon-link" aria-disabled="true">'
    prev = (
        f'<a class="pagination__previous icon-link" href="{e(search_path(query, shown - 1))}">'
        "Previous page</a>"
        if shown > 1
        else ""
    )
    current = ' aria-current="page"'
    numbers = "".join(
        f'<li><a class="pagination__item" href="{e(search_path(query, n))}"'
        f"{current if n == shown else ''}>{n}</a></li>"
        for n in range(1, pages + 1)
    )
    body = (
        '<div id="mainContent"><div class="srp-controls__control">'
        f'<h1 class="srp-controls__count-heading"><span class="BOLD">{total}</span> results for '
        f'<span class="BOLD">{e(query)}</span></h1></div>\n'
        f'<ul class="srp-results srp-list clearfix">\n{"".join(items)}</ul>\n'
        f'<nav class="pagination" role="navigation">{prev}<ol class="pagination__items">'
        f"{numbers}</ol>{nxt}Next page</a></nav>\n</div>\n"
    )
    return document(f"{query} | eBay", body)


def _merch(related: list[MarketLot]) -> str:
    """The third script: eBay's "similar sponsored items" carousel (other listings)."""
    items = [
        {
            "listingId": lot.lot_id,
            "title": lot.title,
            "url": lot.path,
            "image": image_path(lot.image_names[0], 225),
            "displayPrice": {"value": number(lot.price), "currency": lot.currency},
        }
        for lot in related
    ]
    data = {"placementId": "100010", "meta": {"name": "Similar sponsored items"}, "items": items}
    return f"$rwidgets(['com.ebay.raptor.vi.merch.MerchWidget',{script_json(data)}]);"


def _widgets(lot: MarketLot, renamed: bool) -> tuple[str, str]:
    """The item's two ``$rwidgets`` scripts: the item summary, then photos and bids."""
    millis = 1000
    summary = {
        "itemId": lot.lot_id,
        "it": lot.title,
        "kw": lot.title,
        "entityId": lot.seller.seller_id,
        "entityName": lot.seller.seller_id,
        "startTime": int(lot.start_time.timestamp()) * millis,
        "endTime": int(lot.end_time.timestamp()) * millis,
        "ccode": lot.currency,
        "locale": lot.seller.locale,
        "currentDomain": lot.seller.domain,
        "totalQty": 1,
        "videoUrl": None,
        "vatIncluded": False,
        "listingStatus": "ENDED" if lot.closed else "ACTIVE",
        "endReason": END_REASONS.get(lot.status),
        "bidPriceDouble": None,  # filled in by the bid layer below, as on eBay
        "binPriceDouble": None,
    }
    photos = {
        "fsImgList": [
            {"maxImageUrl": image_path(name, 1600), "displayImgUrl": image_path(name, 500)}
            for name in lot.image_names
        ]
    }
    bids = {
        "itemId": lot.lot_id,
        "bids": lot.bid_count,
        "bidPriceDouble": number(lot.price),
        "binPriceDouble": None if lot.buy_now_price is None else number(lot.buy_now_price),
        "ccode": lot.currency,
    }
    first = (
        "$rwidgets(['com.ebay.raptor.vi.cmig.Rlogid',"
        f"{script_json({'rlogid': 't6ulcpjqcj9%3Fuk%60fhhvdlkv' + lot.lot_id[-4:]})}],"
        f"['com.ebay.raptor.vi.isum.smEngine',{script_json(summary)}]);"
    )
    second = (
        f"$rwidgets(['com.ebay.raptor.vi.photoEnlarge.VIPhotoEnlarge',{script_json(photos)}],"
        f"['com.ebay.raptor.vi.bid.BidLayer',{script_json(bids)}]);"
    )
    if renamed:
        old, new = RENAMED_KEYS["ebay"]
        first, second = (s.replace(f'"{old}":', f'"{new}":') for s in (first, second))
    return first, second


def render_item(catalogue: MarketCatalogue, lot: MarketLot, renamed_key: bool = False) -> str:
    """The item page of ``lot``; ``renamed_key`` renames its price key (a layout change)."""
    first, second = _widgets(lot, renamed_key)
    merch = _merch(catalogue.related(lot))
    message = ENDED_MESSAGES.get(lot.status)
    panel = (
        f'<div id="msgPanel" class="msgPad"><span class="msgTextAlign">{e(message)}</span></div>\n'
        if message
        else ""
    )
    body = (
        f'<div id="CenterPanelInternal">\n{panel}'
        '<h1 class="it-ttl" itemprop="name" id="itemTitle"><span class="g-hdn">Details about'
        f"  &nbsp;</span>{e(lot.title)}</h1>\n"
        f'<div class="u-flL vi-price-label">{price_label(lot)}</div>'
        '<div class="u-flL w29 vi-price"><span class="notranslate" id="prcIsum_bidPrice" '
        f'itemprop="price" content="{number(lot.price)}">{e(money(lot.currency, lot.price))}'
        f'</span> <a id="vi-VR-bid-lnk"><span id="qty-test">{lot.bid_count}</span> '
        f"<span>{'bid' if lot.bid_count == 1 else 'bids'}</span></a></div>\n"
        '<div class="iti-eu-bld-gry"><span itemprop="availableAtOrFrom">'
        f"{e(lot.seller.location)}</span></div>\n"
        f"{_seller_box(lot.seller)}</div>\n"
        '<div id="desc_div"><iframe id="desc_ifr" title="Seller\'s description of item" '
        f'src="{e(description_path(lot))}" width="100%" height="400" frameborder="0">'
        "</iframe></div>\n"
        f'<div id="JSDF">\n<script type="text/javascript">{first}</script>\n'
        f'<script type="text/javascript">{second}</script>\n'
        f'<script type="text/javascript">{merch}</script>\n</div>\n'
    )
    head = f'<link rel="canonical" href="{e(lot.path)}">\n'
    return document(f"{lot.title} | eBay", body, head)


def render_description(lot: MarketLot) -> str:
    """The seller's description page the item page's iframe shows."""
    body = (
        f'<div id="ds_div"><font face="Arial" size="4"><p>{e(lot.description)}</p>'
        f"<p>Condition: {e(lot.condition)}</p></font></div>\n"
    )
    return document("eBay", body)


def member_since(day: date) -> str:
    """A date as eBay's member pages print it, in English whatever the locale: ``Jun 02, 2004``."""
    return f"{_MONTHS[day.month - 1]} {day.day:02d}, {day.year}"


def _feedback_score(seller: Seller) -> str:
    """The feedback score after a member's name, linked as on eBay: ``(<a>4812</a>)``."""
    score = seller.ebay.feedback_score
    return (
        f'<span class="mbg-l"> (<a href="{e(seller_path("ebay", seller))}" '
        f'title="feedback score: {score}">{score}</a>)</span>'
    )


def _seller_box(seller: Seller) -> str:
    """The item page's seller information: name, feedback score, percent positive."""
    return (
        f'<div class="si-content"><div class="mbg vi-VR-margBtm3">'
        f'<a href="{e(seller_path("ebay", seller))}" aria-label="Member id {e(seller.seller_id)}">'
        f'<span class="mbg-nw">{e(seller.seller_id)}</span></a>{_feedback_score(seller)}</div>'
        f'<div id="si-fb">{seller.ebay.positive_percent}%\u00a0Positive feedback</div></div>\n'
    )


def render_seller(catalogue: MarketCatalogue, name: str) -> str | None:
    """A member's profile page (``/usr/NAME``), or None for a name with no lot on the demo.

    As eBay's member page of 2020-21: the name and feedback score in ``div.mbg``, location and
    "Member since" in ``div#member_info``, ``div.perctg`` with the percent positive, and the
    seller's own words in ``h2.bio``.
    """
    seller = catalogue.seller("ebay", name)
    if seller is None:
        return None
    facts = seller.ebay
    body = (
        '<div id="user_info" class="user_info"><div class="mbg">'
        f'<a class="mbg-id" href="{e(seller_path("ebay", seller))}" title="{e(seller.name)}">'
        f"{e(seller.name)}</a>{_feedback_score(seller)}</div>\n"
        f'<div id="member_info" class="member_info"><span class="mem_loc">{e(seller.location)}'
        '</span> <span><span>Member since: </span><span class="info">'
        f"{member_since(facts.member_since)}</span></span></div></div>\n"
        '<div id="feedback_ratings" class="fdbk_ratings">'
        f'<div class="perctg">{facts.positive_percent}% Positive feedback</div></div>\n'
        f'<div class="bio_section"><h2 class="bio inline_value">{e(seller.description)}</h2>'
        "</div>\n"
    )
    return document(f"{seller.name} on eBay", body)
