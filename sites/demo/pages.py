"""HTML and robots.txt of the demo site, rendered per house as plain strings (no I/O).

Each house has its own markup, language, date and money format, so one scraper configuration
per house is exercised the way it would be against real auction sites: a table (Harrow & Finch),
a grid of cards (Hôtel des Ventes Lumière) and a list with data attributes (Brooklyn Fine Arts).
A "changed layout" variant of the lot page renames every class and drops the headings, so the
normal selectors find nothing and a scraper's layout-change detection can be tested.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from html import escape

from sites.demo.catalogue import HOUSES, Catalogue, DemoLot, House

_MONTHS_EN = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_MONTHS_FR = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip
_WEEKDAYS_FR = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")

NNBSP = "\u202f"  # narrow no-break space: French thousands separator
NBSP = "\u00a0"  # no-break space: between a French amount and its currency sign
EN_DASH = "\u2013"  # between the two amounts of a British estimate; also in page ranges


def format_date(house: House, day: date) -> str:
    """A sale date the way ``house`` writes it ("14 March 2026", "samedi 14 mars 2026"...)."""
    if house.slug == "hotel-lumiere":
        number = "1er" if day.day == 1 else str(day.day)
        return f"{_WEEKDAYS_FR[day.weekday()]} {number} {_MONTHS_FR[day.month - 1]} {day.year}"
    if house.slug == "brooklyn-gallery":
        return f"{_MONTHS_EN[day.month - 1]} {day.day}, {day.year}"
    return f"{day.day} {_MONTHS_EN[day.month - 1]} {day.year}"


def format_money(house: House, amount: Decimal) -> str:
    """A whole amount in ``house``'s currency and style ("£1,200", "1 200 €", "$1,200")."""
    grouped = f"{int(amount):,}"
    if house.currency == "EUR":
        return grouped.replace(",", NNBSP) + NBSP + "€"
    symbol = {"GBP": "£", "USD": "$"}.get(house.currency, house.currency + " ")
    return symbol + grouped


def format_estimate(house: House, lot: DemoLot) -> str:
    """The estimate text of ``lot`` as printed by ``house``."""
    low, high = format_money(house, lot.estimate_low), format_money(house, lot.estimate_high)
    if house.slug == "hotel-lumiere":
        return f"Estimation : {low} - {high}"
    if house.slug == "harrow-finch":
        return f"{low} {EN_DASH} {high}"
    return f"{low} - {high}"


def format_result(house: House, lot: DemoLot) -> str:
    """The sale result of ``lot``: the hammer price with the house's wording, or its unsold word."""
    sold, unsold = {
        "harrow-finch": ("Sold for {}", "Unsold"),
        "hotel-lumiere": ("Adjugé {}", "Invendu"),
        "brooklyn-gallery": ("Hammer price: {}", "Passed"),
    }[house.slug]
    return unsold if lot.sold_price is None else sold.format(format_money(house, lot.sold_price))


def page_count(lot_count: int, page_size: int) -> int:
    """How many listing pages ``lot_count`` lots fill (at least one)."""
    return max(1, math.ceil(lot_count / page_size))


def _document(house: House | None, title: str, body: str) -> str:
    """Wrap ``body`` in a complete UTF-8 HTML document."""
    lang = house.language if house else "en"
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n</head>\n<body>\n{body}</body>\n</html>\n"
    )


def _e(text: object) -> str:
    """Escape any value for use in HTML text or a quoted attribute."""
    return escape(str(text))


def _images(lot: DemoLot, prefix: str, limit: int | None = None) -> str:
    """``<img>`` tags for the lot's first ``limit`` images, ``src`` starting ``prefix``."""
    return "".join(
        f'<img src="{prefix}images/{_e(lot.house)}/{_e(name)}" alt="{_e(lot.title)}">'
        for name in lot.image_names[:limit]
    )


# -- listing pages ----------------------------------------------------------------------------


def _plural(count: int) -> str:
    return f"{count} lot" if count == 1 else f"{count} lots"


def _listing_harrow(day: date, lots: list[DemoLot], total: int, page: int, pages: int) -> str:
    house = HOUSES["harrow-finch"]
    rows = "".join(
        f'<tr class="lot-row"><td class="lot-number">{lot.lot_number}</td>'
        f'<td class="lot-title"><a href="../lot/{_e(lot.lot_id)}">{_e(lot.title)}</a></td>'
        f'<td class="estimate">{_e(format_estimate(house, lot))}</td></tr>\n'
        for lot in lots
    )
    nav = ""
    if page > 1:
        nav += f'<a class="prev" href="?page={page - 1}">Previous page</a> '
    if page < pages:
        nav += f'<a class="next" href="?page={page + 1}">Next page</a>'
    return (
        f'<h1 class="house">{_e(house.name)}</h1>\n'
        f'<h2 class="sale-title">African &amp; Oceanic Art, {_e(format_date(house, day))}</h2>\n'
        f'<p class="lot-count">{_plural(total)}</p>\n'
        '<table class="lots">\n<thead><tr><th>Lot</th><th>Description</th><th>Estimate</th>'
        f"</tr></thead>\n<tbody>\n{rows}</tbody>\n</table>\n"
        f'<nav class="pagination">Page {page} of {pages} {nav}</nav>\n'
    )


def _listing_lumiere(day: date, lots: list[DemoLot], total: int, page: int, pages: int) -> str:
    house = HOUSES["hotel-lumiere"]
    cards = "".join(
        f'<div class="carte" data-lot="{lot.lot_number}">'
        f'<a class="lien" href="/hotel-lumiere/lot/{_e(lot.lot_id)}">'
        f"{_images(lot, '/', limit=1)}"
        f'<h3 class="titre">{_e(lot.title)}</h3></a>'
        f'<p class="numero">Lot n° {lot.lot_number}</p>'
        f'<p class="estimation">{_e(format_estimate(house, lot))}</p></div>\n'
        for lot in lots
    )
    links = []
    if page > 1:
        links.append(f'<a href="{day.isoformat()}?page={page - 1}">Page précédente</a>')
    if page < pages:
        links.append(f'<a href="{day.isoformat()}?page={page + 1}">Page suivante</a>')
    return (
        f'<header class="entete"><h1>{_e(house.name)}</h1></header>\n'
        f'<h2 class="vente">Vente du {_e(format_date(house, day))}, Arts d\'Afrique</h2>\n'
        f'<p class="nombre-lots">{_plural(total)}</p>\n'
        f'<div class="grille">\n{cards}</div>\n'
        f'<div class="pagination">{" | ".join(links)}</div>\n'
    )


def _listing_brooklyn(day: date, lots: list[DemoLot], total: int, page: int, pages: int) -> str:
    house = HOUSES["brooklyn-gallery"]
    items = "".join(
        f'<li class="lot" data-lot-id="{_e(lot.lot_id)}" data-lot-number="{lot.lot_number}" '
        f'data-estimate-low="{lot.estimate_low}" data-estimate-high="{lot.estimate_high}" '
        f'data-currency="{lot.currency}">'
        f'<a class="lot-link" href="../lot/{_e(lot.lot_id)}">{_e(lot.title)}</a> '
        f'<span class="estimate">{_e(format_estimate(house, lot))}</span></li>\n'
        for lot in lots
    )
    nav = ""
    if page > 1:
        nav += f'<a rel="prev" href="{day.isoformat()}?page={page - 1}">\u2039 Previous</a> '
    if page < pages:
        nav += f'<a rel="next" href="{day.isoformat()}?page={page + 1}">Next \u203a</a>'
    return (
        f'<div class="site-header">{_e(house.name)}, {_e(house.city)}</div>\n'
        f'<h1 class="sale-name">Arts of Africa, {_e(format_date(house, day))}</h1>\n'
        f'<p class="results" data-total="{total}">Showing {lots[0].lot_number}{EN_DASH}'
        f"{lots[-1].lot_number} of {_plural(total)}</p>\n"
        f'<ul class="lot-list">\n{items}</ul>\n<nav class="pager">{nav}</nav>\n'
    )


_Listing = Callable[[date, list[DemoLot], int, int, int], str]
_LISTINGS: dict[str, _Listing] = {
    "harrow-finch": _listing_harrow,
    "hotel-lumiere": _listing_lumiere,
    "brooklyn-gallery": _listing_brooklyn,
}


def render_listing(catalogue: Catalogue, house_slug: str, day: date, page: int) -> str | None:
    """Listing page ``page`` (from 1) of a house's sale on ``day``; None when there is no such page.

    Lot links are relative, and a next-page link is present on every page but the last.
    """
    house = HOUSES.get(house_slug)
    if house is None:
        return None
    lots = catalogue.lots(house_slug, day)
    size = catalogue.config.page_size
    pages = page_count(len(lots), size)
    if not 1 <= page <= pages:
        return None
    shown = lots[(page - 1) * size : page * size]
    body = _LISTINGS[house_slug](day, shown, len(lots), page, pages)
    return _document(house, f"{house.name}: {format_date(house, day)} (page {page})", body)


# -- lot pages --------------------------------------------------------------------------------


def _lot_harrow(house: House, lot: DemoLot) -> str:
    return (
        f'<div class="lot-detail" id="lot-{_e(lot.lot_id)}">\n'
        f'<p class="lot-label">Lot <span class="lot-number">{lot.lot_number}</span></p>\n'
        f'<h1 class="lot-title">{_e(lot.title)}</h1>\n<dl class="sale-facts">\n'
        f'<dt>Sale date</dt><dd class="sale-date">{_e(format_date(house, lot.sale_date))}</dd>\n'
        f'<dt>Estimate</dt><dd class="estimate">{_e(format_estimate(house, lot))}</dd>\n'
        f'<dt>Result</dt><dd class="price">{_e(format_result(house, lot))}</dd>\n</dl>\n'
        f'<div class="lot-description"><p>{_e(lot.description)}</p></div>\n'
        f'<div class="gallery">{_images(lot, "../../")}</div>\n</div>\n'
    )


def _lot_lumiere(house: House, lot: DemoLot) -> str:
    return (
        '<article class="fiche-lot">\n'
        f'<p class="numero">Lot n° <span class="numero-lot">{lot.lot_number}</span></p>\n'
        f'<h1 class="titre-lot">{_e(lot.title)}</h1>\n'
        f'<p class="date-vente">{_e(format_date(house, lot.sale_date))}</p>\n'
        f'<p class="estimation">{_e(format_estimate(house, lot))}</p>\n'
        f'<p class="adjudication">{_e(format_result(house, lot))}</p>\n'
        f'<div class="descriptif"><p>{_e(lot.description)}</p></div>\n'
        f'<div class="photos">{_images(lot, "/")}</div>\n</article>\n'
    )


def _lot_brooklyn(house: House, lot: DemoLot) -> str:
    return (
        f'<main class="lot-page" data-lot-id="{_e(lot.lot_id)}">\n'
        f'<header>Lot <span class="lot-no">{lot.lot_number}</span>'
        f'<h1 class="lot-name">{_e(lot.title)}</h1></header>\n'
        f'<div class="sale-info">Sale date: <time class="sale-date" '
        f'datetime="{lot.sale_date.isoformat()}">{_e(format_date(house, lot.sale_date))}'
        "</time></div>\n"
        f'<div class="estimate">Estimate: <span class="value">'
        f"{_e(format_estimate(house, lot))}</span></div>\n"
        f'<div class="result">{_e(format_result(house, lot))}</div>\n'
        f'<section class="description">{_e(lot.description)}</section>\n'
        f'<div class="images">{_images(lot, "../../")}</div>\n</main>\n'
    )


def _lot_changed(house: House, lot: DemoLot) -> str:
    """A redesigned lot page: new class names, no headings, same facts and wording."""
    return (
        '<section class="lot-v2">\n'
        f'<div class="lot-v2__ref">Lot <b class="lot-v2__num">{lot.lot_number}</b></div>\n'
        f'<div class="lot-v2__heading">{_e(lot.title)}</div>\n'
        f'<div class="lot-v2__when">{_e(format_date(house, lot.sale_date))}</div>\n'
        f'<div class="lot-v2__range">{_e(format_estimate(house, lot))}</div>\n'
        f'<div class="lot-v2__outcome">{_e(format_result(house, lot))}</div>\n'
        f'<div class="lot-v2__text">{_e(lot.description)}</div>\n'
        f'<div class="lot-v2__media">{_images(lot, "/")}</div>\n</section>\n'
    )


_LOT_PAGES: dict[str, Callable[[House, DemoLot], str]] = {
    "harrow-finch": _lot_harrow,
    "hotel-lumiere": _lot_lumiere,
    "brooklyn-gallery": _lot_brooklyn,
}


def render_lot(lot: DemoLot, changed_layout: bool = False) -> str:
    """The detail page of ``lot`` in its house's markup, or in the redesigned markup."""
    house = HOUSES[lot.house]
    body = (_lot_changed if changed_layout else _LOT_PAGES[lot.house])(house, lot)
    return _document(house, f"{house.name}: lot {lot.lot_number}", body)


# -- site-wide pages --------------------------------------------------------------------------


def render_index(today: date) -> str:
    """The home page: one link per house, to its sale on ``today``."""
    items = "".join(
        f'<li><a href="/{_e(h.slug)}/auctions/{today.isoformat()}">{_e(h.name)}</a> '
        f"({_e(h.city)}, {_e(h.currency)})</li>\n"
        for h in HOUSES.values()
    )
    return _document(
        None, "Demo auction houses", f"<h1>Demo auction houses</h1>\n<ul>\n{items}</ul>\n"
    )


def render_robots(crawl_delay: float | None = None, disallow: tuple[str, ...] = ()) -> str:
    """robots.txt: everything but ``/admin/`` and ``disallow`` is allowed; ``Crawl-delay``
    when one is set."""
    lines = ["User-agent: *", "Disallow: /admin/", *(f"Disallow: {path}" for path in disallow)]
    if crawl_delay is not None:
        lines.append(f"Crawl-delay: {crawl_delay:g}")
    return "\n".join(lines) + "\n"
