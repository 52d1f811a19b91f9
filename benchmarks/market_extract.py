"""Benchmark 4b of ``auction-pipeline bench``: extraction on the demo marketplaces' lot pages,
as a ratio to a bare parse of the same pages, measured side by side.

The house pages of :func:`benchmarks.crawl_extract.bench_extraction` are small HTML; the
marketplaces keep their data in JSON inside the page (eBay's ``$rwidgets(...)`` calls,
LiveAuctioneers' ``window.__data`` literal, Catawiki's ``data-props`` attribute and JSON-LD)
and in follow-ups (eBay's description page, Catawiki's bidding API). "Full" is what processing
does per stored lot: the pages as :class:`~tasks.chains.Page` objects, ``extract_lot`` with
the follow-ups, ``normalise_lot``. "Bare" is the least any extractor does on the same texts:
parse the HTML with parsel, select the elements the site files read, and ``json.loads`` each
JSON text in them (after the minimal preparation json needs) and each JSON follow-up.

Pages are rendered once, without HTTP, by the demo server's own routing; the clock covers
only the per-lot work. Every lot must normalise: a bench of failures would measure nothing.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import parsel

from benchmarks.common import Figure
from sites.demo.catalogue import MARKETPLACES, Catalogue, DemoConfig
from sites.demo.market_routes import route_marketplace
from sites.demo.marketplaces import market_catalogue
from sites.loader import SiteDefinition, load_sites
from tasks.chains import JSONLD_SCRIPTS, Page, decode_html
from tasks.extract import extract_lot, follow_up_urls
from tasks.normalise import LotValidationError, normalise_lot

MARKET_EXTRACTION_TARGET = 0.5
MAX_LOTS_PER_MARKET = 1000  # the demo has about 40 each; a cap on what one call renders

_DECODER = json.JSONDecoder()
_RWIDGET_OBJECT = re.compile(r"\[\s*'[^']*'\s*,\s*(?=\{)")  # ['com.ebay...Widget',{
_UNDEFINED = re.compile(r"(?<=[:,\[])undefined(?=[,\]}])")  # a bare JavaScript undefined
_STATE_PREFIX = "window.__data="


@dataclass(frozen=True)
class Response:
    """One rendered response as processing reads it: decoded text and content type."""

    text: str
    content_type: str


@dataclass(frozen=True)
class MarketLotPages:
    """One marketplace lot's page and its follow-ups (by follow-up name), as the crawl
    stores them."""

    site: SiteDefinition
    url: str
    page: Response
    follow_ups: dict[str, Response]


def _render(catalogue: Catalogue, url: str) -> Response:
    """The demo server's reply to ``GET url`` (routed directly, no HTTP); 200 or an error."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    reply = route_marketplace(catalogue, target)
    if reply is None or reply.status != 200:
        status = "no page" if reply is None else f"status {reply.status}"
        raise RuntimeError(f"bench: the demo marketplace answers {url} with {status}, not 200")
    return Response(decode_html(reply.body, reply.content_type), reply.content_type)


def market_lot_pages(
    lots_per_market: int, config: DemoConfig | None = None
) -> list[MarketLotPages]:
    """The first ``lots_per_market`` lots of each demo marketplace (all of them when it has
    fewer, about 40 by default) with their follow-ups, found as the crawl finds them
    (``follow_up_urls`` on the lot page), each rendered once."""
    if not 1 <= lots_per_market <= MAX_LOTS_PER_MARKET:
        raise ValueError(
            f"lots_per_market must be 1 to {MAX_LOTS_PER_MARKET}, got {lots_per_market}"
        )
    os.environ.setdefault("DEMO_SITE_URL", "http://demo.test")
    sites = {s.name: s for s in load_sites(list(MARKETPLACES))}
    catalogue = Catalogue(config or DemoConfig())
    market = market_catalogue(catalogue.config)
    found = []
    for name in MARKETPLACES:
        site = sites[name]
        for lot in market.lots(name)[:lots_per_market]:
            url = urljoin(site.base_url, lot.path)
            page = _render(catalogue, url)
            as_page = Page.from_text(page.text, page.content_type)
            wanted = follow_up_urls(site, as_page, url, extract_lot(site, as_page, url))
            missing = sorted(set(site.follow) - set(wanted))
            if missing:
                raise RuntimeError(f"bench: {url} names no URL for follow-up(s) {missing}")
            follow_ups = {kind: _render(catalogue, u) for kind, u in wanted.items()}
            found.append(MarketLotPages(site, url, page, follow_ups))
    return found


def process_lot(lot: MarketLotPages) -> None:
    """What processing does with one stored lot: Pages, extract with follow-ups, normalise."""
    page = Page.from_text(lot.page.text, lot.page.content_type)
    resources = {k: Page.from_text(r.text, r.content_type) for k, r in lot.follow_ups.items()}
    raw = extract_lot(lot.site, page, lot.url, resources=resources or None)
    normalise_lot(lot.site, raw, lot.url)


def _one(selector: parsel.Selector, css: str, url: str) -> str:
    """The first match of ``css``; a page without it is no page of this marketplace."""
    text = selector.css(css).get()
    if text is None:
        raise RuntimeError(f"bench: bare parse finds no {css!r} on {url}")
    return text


def _bare_ebay(lot: MarketLotPages) -> int:
    html = parsel.Selector(text=lot.page.text)
    count = 0
    for script in html.css("div#JSDF script::text").getall():
        for call in _RWIDGET_OBJECT.finditer(script):  # each widget's {...} object
            _DECODER.raw_decode(script, call.end())
            count += 1
    html.css("span[itemprop=availableAtOrFrom]::text").get()
    description = parsel.Selector(text=lot.follow_ups["description"].text)
    description.css("div#ds_div").xpath("string()").get()
    return count


def _bare_liveauctioneers(lot: MarketLotPages) -> int:
    html = parsel.Selector(text=lot.page.text)
    state = _one(html, "script[data-reactroot]::text", lot.url).strip()
    json.loads(_UNDEFINED.sub("null", state.removeprefix(_STATE_PREFIX).removesuffix(";")))
    html.css("img[class*=StyledThumbnailImage]::attr(src)").getall()
    return 1


def _bare_catawiki(lot: MarketLotPages) -> int:
    html = parsel.Selector(text=lot.page.text)
    json.loads(_one(html, "div.lot-details-page-wrapper::attr(data-props)", lot.url))
    blocks = html.css(JSONLD_SCRIPTS).getall()
    for block in blocks:
        json.loads(block)
    json.loads(lot.follow_ups["bidding"].text)
    return 2 + len(blocks)


BARE: dict[str, Callable[[MarketLotPages], int]] = {
    "ebay": _bare_ebay,
    "liveauctioneers": _bare_liveauctioneers,
    "catawiki": _bare_catawiki,
}
"""Per marketplace: parsel + json.loads of the elements its site file reads; returns how many
JSON documents it decoded."""


def check_lots(lots: Sequence[MarketLotPages]) -> None:
    """Raise unless every lot normalises, reads a value from each follow-up, and the bare parse
    decodes at least one JSON document: the bench measures successes only."""
    for lot in lots:
        page = Page.from_text(lot.page.text, lot.page.content_type)
        resources = {k: Page.from_text(r.text, r.content_type) for k, r in lot.follow_ups.items()}
        raw = extract_lot(lot.site, page, lot.url, resources=resources or None)
        try:
            normalise_lot(lot.site, raw, lot.url)
        except LotValidationError as exc:
            raise RuntimeError(f"bench: a demo marketplace lot does not validate: {exc}") from exc
        for kind in lot.follow_ups:
            if all(raw.get(f) is None for f, r in lot.site.fields.items() if r.from_ == kind):
                raise RuntimeError(f"bench: {lot.url}: no field reads follow-up {kind!r}")
        if BARE[lot.site.name](lot) < 1:
            raise RuntimeError(f"bench: bare parse of {lot.url} decodes no JSON")


def _seconds(work: Callable[[MarketLotPages], object], lots: list[MarketLotPages]) -> float:
    """Wall time of ``work`` on every lot of ``lots``."""
    start = time.perf_counter()
    for lot in lots:
        work(lot)
    return time.perf_counter() - start


def interleaved_medians(
    groups: dict[str, list[MarketLotPages]], repeats: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Median seconds of the full and the bare work per marketplace, and of all of them
    (key ``""``), over ``repeats`` repetitions.

    Each repetition times full then bare on each marketplace in turn, so a neighbour's load
    on this shared machine falls on both sides of the ratio alike (timing all the full runs
    before all the bare ones let the per-marketplace ratios swing two-fold between runs).
    """
    full: dict[str, list[float]] = {"": []}
    bare: dict[str, list[float]] = {"": []}
    for _ in range(max(1, repeats)):
        for name, lots in groups.items():
            full.setdefault(name, []).append(_seconds(process_lot, lots))
            bare.setdefault(name, []).append(_seconds(BARE[name], lots))
        full[""].append(sum(times[-1] for name, times in full.items() if name))
        bare[""].append(sum(times[-1] for name, times in bare.items() if name))
    return (
        {name: statistics.median(times) for name, times in full.items()},
        {name: statistics.median(times) for name, times in bare.items()},
    )


def _mean_kb(responses: Sequence[Response]) -> str:
    """The mean UTF-8 size of ``responses`` in kB, as text ("-" for none)."""
    if not responses:
        return "-"
    return f"{statistics.mean(len(r.text.encode()) for r in responses) / 1000:.1f}"


def bench_market_extraction(
    lots_per_market: int, repeats: int, *, config: DemoConfig | None = None
) -> Figure:
    """Lot pages/s for the full per-lot work (with follow-ups) and for a bare parsel +
    json.loads of the same texts, on this one core; ``config`` picks the demo data."""
    lots = market_lot_pages(lots_per_market, config)
    check_lots(lots)  # also the warm-up: imports, dateparser's data, compiled expressions
    groups = {name: [lot for lot in lots if lot.site.name == name] for name in MARKETPLACES}
    full_s, bare_s = interleaved_medians(groups, repeats)
    full_rate, bare_rate = len(lots) / full_s[""], len(lots) / bare_s[""]
    follow_ups = [r for lot in lots for r in lot.follow_ups.values()]
    per_market = ", ".join(f"{n} {bare_s[n] / full_s[n]:.2f}" for n in MARKETPLACES)
    return Figure(
        benchmark="extraction",
        case=(
            f"extract+validate+normalise, {len(lots)} marketplace lot pages "
            f"+ {len(follow_ups)} follow-ups, one core"
        ),
        value=full_rate,
        unit="pages/s",
        baseline="bare parsel + json.loads",
        baseline_value=bare_rate,
        target=f">= {MARKET_EXTRACTION_TARGET}",
        met=full_rate / bare_rate >= MARKET_EXTRACTION_TARGET,
        note=(
            f"mean lot page {_mean_kb([lot.page for lot in lots])} kB, follow-up "
            f"{_mean_kb(follow_ups)} kB; ratio per marketplace: {per_market}"
        ),
    )
