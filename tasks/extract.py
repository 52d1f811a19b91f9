"""Pull lot links and raw field strings out of a site's pages with its selectors; pure, no I/O.

Extraction is kept apart from fetching and from parsing (:mod:`tasks.normalise`), as Scrapy
keeps item loaders apart from spiders: the same function runs on a live page or on a page
restored from a WARC backup, so a selector fix can be re-run over past days, and the raw
strings it returns are stored beside the parsed values so every number can be audited.

Each selector is a chain (css/xpath, jsonld, regex, json; :mod:`sites.selectors`) evaluated
by :mod:`tasks.chains` on a :class:`~tasks.chains.Page`, which holds an HTML page or a JSON
document (a plain string is an HTML page).

Raw strings are kept as the page wrote them, except that runs of ASCII whitespace (newlines and
indentation of the markup) become one space. No-break spaces (U+00A0, U+202F) are kept: they
are part of how a house writes money, and only the parsers turn them into plain spaces.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urldefrag, urljoin, urlsplit

from sites.fields import FieldRule
from sites.loader import SiteDefinition, load_hook
from sites.selectors import Selector, uses_lot_id
from tasks.chains import Page, StepResult, evaluate, tidy_space

__all__ = ["Page", "RawLot", "RawValue", "extract_listing", "extract_lot", "tidy_space"]

RawValue = str | list[str] | None
"""One extracted field: a string, a list of strings for ``many`` rules, None if nothing matched."""

RawLot = dict[str, RawValue]
"""The raw values of one lot page, keyed by field name (every field rule of the site)."""

URL_FIELDS = frozenset({"images"})
"""Fields whose values are URLs, made absolute against the page's URL."""

Traces = dict[str, list[StepResult]]
"""What each step of each field's chain produced, by field name (for ``sites check``)."""


def _as_page(page: str | Page) -> Page:
    """A :class:`Page`; a plain string is an HTML page (what every caller passed before)."""
    return page if isinstance(page, Page) else Page(page)


def absolute_url(page_url: str, href: str) -> str | None:
    """``href`` resolved against ``page_url``, without its #fragment; None unless http(s)."""
    url = urldefrag(urljoin(page_url, href)).url
    return url if urlsplit(url).scheme in ("http", "https") else None


def extract_listing(
    site: SiteDefinition, html: str | Page, page_url: str
) -> tuple[list[str], str | None]:
    """The absolute lot URLs on a listing page (page order, each once) and the next page's URL.

    The next-page URL is None on the last page, and also when the link points back to the
    page itself, so a site that links "next" to the current page cannot trap the crawler.
    """
    if site.listing is None:
        return [], None  # a site found by search only has no listing pages
    page = _as_page(html)
    lots: dict[str, None] = {}  # an insertion-ordered set
    for href in evaluate(page, site.listing.lot_links, links=True):
        url = absolute_url(page_url, href)
        if url is not None:
            lots.setdefault(url, None)
    next_url = None
    if site.listing.next_page is not None:
        for href in evaluate(page, site.listing.next_page, links=True)[:1]:
            candidate = absolute_url(page_url, href)
            if candidate != urldefrag(page_url).url:
                next_url = candidate
    return list(lots), next_url


def extract_results(
    site: SiteDefinition, page: str | Page, page_url: str, *, exclude: bool = True
) -> list[str]:
    """The lot URLs on a search result page, in page order, each once, less the results the
    site's ``search.results.exclude`` names (links, or ids, e.g. of sponsored results), unless
    ``exclude`` is False (``sites check`` shows what it left out).

    Links are made absolute against the page's URL; ids become URLs by ``lot_url``.
    """
    search = site.search
    if search is None:
        return []
    doc, rule = _as_page(page), search.results

    def urls(selector: Selector | None) -> list[str]:
        if selector is None:
            return []
        if rule.lot_links is not None:
            found = [absolute_url(page_url, v) for v in evaluate(doc, selector, links=True)]
            return [url for url in found if url is not None]
        return [search.lot_url_for(site.base_url, value) for value in evaluate(doc, selector)]

    excluded = set(urls(rule.exclude)) if exclude else set()
    found = urls(rule.lot_links if rule.lot_links is not None else rule.lot_ids)
    return [url for url in dict.fromkeys(found) if url not in excluded]


def extract_lot(
    site: SiteDefinition,
    html: str | Page,
    page_url: str,
    *,
    lot_id: str | None = None,
    traces: Traces | None = None,
    resources: Mapping[str, Page] | None = None,
) -> RawLot:
    """The raw string of every field rule of ``site`` on a lot page, keyed by field name.

    ``html`` is the page's HTML, or a :class:`Page` (an HTML page or a JSON document, e.g. a
    JSON API's response). A rule yields its first non-empty match (a list of all of them when
    ``many``), or None when its chain finds nothing, so a missing field is told apart from an
    empty list. Values of :data:`URL_FIELDS` are made absolute against ``page_url``.

    ``lot_id`` fills ``{lot_id}`` in ``json:`` expressions; when not given it is read as the
    site's ``lot_id:`` says (from the URL, or from its field, which is extracted first), and
    rules that need one yield None without it. With ``traces``, each field's chain records
    what each step produced. Rules with ``from: NAME`` read the follow-up resource
    ``resources[NAME]`` instead of the page (nothing when it was not fetched). A site with a
    ``hook`` file gets its ``adjust_lot(raw, html, url)`` applied last.
    """
    page = _as_page(html)
    raw: RawLot = {}
    waiting = []  # rules needing the lot id, which may itself be a field read first
    for name, rule in site.fields.items():
        if rule.selector.json_ is not None and uses_lot_id(rule.selector.json_):
            raw[name] = None  # keeps the site file's field order
            waiting.append(name)
        else:
            raw[name] = _field(site, page, page_url, name, None, traces, resources)
    if waiting and lot_id is None:
        lot_id = _lot_id(site, page_url, raw)
    for name in waiting:
        raw[name] = _field(site, page, page_url, name, lot_id, traces, resources)
    if site.hook is not None:
        adjusted = load_hook(site.hook)(dict(raw), page.text, page_url)
        raw = {str(k): v for k, v in adjusted.items()}
    return raw


def _field(
    site: SiteDefinition,
    page: Page,
    page_url: str,
    name: str,
    lot_id: str | None,
    traces: Traces | None,
    resources: Mapping[str, Page] | None = None,
) -> RawValue:
    """One field's raw value: its first string, all of them for ``many``, None for none."""
    rule = site.fields[name]
    if rule.from_ is not None:
        resource = (resources or {}).get(rule.from_)
        if resource is None:
            return None  # the follow-up was not fetched (or not found): the field is missing
        page = resource
    trace: list[StepResult] | None = None if traces is None else traces.setdefault(name, [])
    values = evaluate(page, rule.selector, lot_id=lot_id, trace=trace)
    if name in URL_FIELDS:
        values = [urljoin(page_url, value) for value in values]
    if rule.many:
        return values or None
    return values[0] if values else None


def extract_fields(
    rules: Mapping[str, FieldRule], html: str | Page, page_url: str, *, traces: Traces | None = None
) -> RawLot:
    """The raw string of each of ``rules`` on a page that is no lot page (a seller's profile):
    its first match, all of them for ``many``, None when the chain finds nothing."""
    page = _as_page(html)
    raw: RawLot = {}
    for name, rule in rules.items():
        trace = None if traces is None else traces.setdefault(name, [])
        values = evaluate(page, rule.selector, trace=trace)
        raw[name] = (values or None) if rule.many else (values[0] if values else None)
    return raw


def _lot_id(site: SiteDefinition, page_url: str, raw: RawLot) -> str | None:
    """The lot id as the site's ``lot_id:`` reads it from the URL or a field, else None."""
    if site.lot_id is None:
        return None
    try:
        return site.lot_id.read(page_url, raw)
    except ValueError:
        return None  # no id on this page: the rules needing one find nothing


def follow_up_urls(
    site: SiteDefinition, page: str | Page, page_url: str, raw: RawLot
) -> dict[str, str]:
    """The URL of each of the site's follow-ups for the lot page at ``page_url``, whose
    extracted values are ``raw`` (for a lot id read from a field).

    A template follow-up needs the lot's id; a link follow-up takes the first URL its chain
    finds on the page. One whose URL cannot be known is left out (its fields stay missing).
    """
    doc = _as_page(page)
    lot_id = _lot_id(site, page_url, raw)
    urls: dict[str, str] = {}
    for name, follow in site.follow.items():
        if follow.link is None:
            if lot_id is not None:
                urls[name] = follow.url_for(site.base_url, lot_id)
            continue
        for href in evaluate(doc, follow.link, lot_id=lot_id, links=True)[:1]:
            url = absolute_url(page_url, href)
            if url is not None:
                urls[name] = url
    return urls
