"""Pull lot links and raw field strings out of a site's pages with its selectors; pure, no I/O.

Extraction is kept apart from fetching and from parsing (:mod:`tasks.normalise`), as Scrapy
keeps item loaders apart from spiders: the same function runs on a live page or on a page
restored from a WARC backup, so a selector fix can be re-run over past days, and the raw
strings it returns are stored beside the parsed values so every number can be audited.

Raw strings are kept as the page wrote them, except that runs of ASCII whitespace (newlines and
indentation of the markup) become one space. No-break spaces (U+00A0, U+202F) are kept: they
are part of how a house writes money, and only the parsers turn them into plain spaces.
"""

from __future__ import annotations

import re
from urllib.parse import urldefrag, urljoin, urlsplit

import parsel

from sites.loader import Selector, SiteDefinition, load_hook

RawValue = str | list[str] | None
"""One extracted field: a string, a list of strings for ``many`` rules, None if nothing matched."""

RawLot = dict[str, RawValue]
"""The raw values of one lot page, keyed by field name (every field rule of the site)."""

URL_FIELDS = frozenset({"images"})
"""Fields whose values are URLs, made absolute against the page's URL."""

# Only ASCII whitespace: Python's \s and str.split() would also swallow U+00A0 and U+202F.
_ASCII_SPACE = re.compile(r"[ \t\n\r\f\v]+")
_ASCII_SPACE_CHARS = " \t\n\r\f\v"


def tidy_space(text: str) -> str:
    """Collapse runs of ASCII whitespace to one space and trim them; keep no-break spaces.

    Markup indentation is noise, but the no-break spaces a house puts in "1 200 €" are part of
    the raw value kept for audit.
    """
    return _ASCII_SPACE.sub(" ", text).strip(_ASCII_SPACE_CHARS)


def _page(html: str) -> parsel.Selector:
    """A parsed page; an empty body is an empty page (parsel would raise "needs text")."""
    return parsel.Selector(text=html or "<html></html>")


def _matches(page: parsel.Selector, selector: Selector, *, links: bool = False) -> list[str]:
    """Every non-empty string ``selector`` finds on ``page``, in document order.

    A match that is an element (a CSS selector without ``::text``/``::attr``, or an XPath that
    selects elements) yields its whole text, ``string()``, not its HTML; with ``links`` it
    yields the element's ``href`` instead, so ``a.next`` works as a next-page selector.
    """
    if selector.css is not None:
        found = page.css(selector.css)
    elif selector.xpath is not None:
        found = page.xpath(selector.xpath)
    else:  # the loader guarantees exactly one of the two
        raise ValueError("a selector needs 'css' or 'xpath'")
    values: list[str] = []
    for match in found:
        # Text and attribute matches (and XPath numbers) have a plain Python value as root;
        # element matches have an lxml element.
        if isinstance(match.root, str | int | float):
            value = match.get()
        elif links:
            value = match.attrib.get("href", "")
        else:
            value = match.xpath("string()").get()
        value = tidy_space(value)
        if value:
            values.append(value)
    return values


def _absolute(page_url: str, href: str) -> str | None:
    """``href`` resolved against ``page_url``, without its #fragment; None unless http(s)."""
    url = urldefrag(urljoin(page_url, href)).url
    return url if urlsplit(url).scheme in ("http", "https") else None


def extract_listing(site: SiteDefinition, html: str, page_url: str) -> tuple[list[str], str | None]:
    """The absolute lot URLs on a listing page (page order, each once) and the next page's URL.

    The next-page URL is None on the last page, and also when the link points back to the
    page itself, so a site that links "next" to the current page cannot trap the crawler.
    """
    page = _page(html)
    lots: dict[str, None] = {}  # an insertion-ordered set
    for href in _matches(page, site.listing.lot_links, links=True):
        url = _absolute(page_url, href)
        if url is not None:
            lots.setdefault(url, None)
    next_url = None
    if site.listing.next_page is not None:
        for href in _matches(page, site.listing.next_page, links=True)[:1]:
            candidate = _absolute(page_url, href)
            if candidate != urldefrag(page_url).url:
                next_url = candidate
    return list(lots), next_url


def extract_lot(site: SiteDefinition, html: str, page_url: str) -> RawLot:
    """The raw string of every field rule of ``site`` on a lot page, keyed by field name.

    A rule yields its first non-empty match (a list of all of them when ``many``), or None
    when its selector finds nothing, so a missing field is told apart from an empty list.
    Values of :data:`URL_FIELDS` are made absolute against ``page_url``. A site with a
    ``hook`` file gets its ``adjust_lot(raw, html, url)`` applied last.
    """
    page = _page(html)
    raw: RawLot = {}
    for name, rule in site.fields.items():
        values = _matches(page, rule.selector)
        if name in URL_FIELDS:
            values = [urljoin(page_url, value) for value in values]
        if rule.many:
            raw[name] = values or None
        else:
            raw[name] = values[0] if values else None
    if site.hook is not None:
        adjusted = load_hook(site.hook)(dict(raw), html, page_url)
        raw = {str(k): v for k, v in adjusted.items()}
    return raw
