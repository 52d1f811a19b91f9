"""Tests of the demo marketplaces (eBay-, LiveAuctioneers- and Catawiki-like) over real HTTP.

The crawl tests of issue 13 compare what the pipeline stored with ``MarketCatalogue``, so the
pages must carry exactly the catalogue's lots, in its order, split over several pages, in the
structures the platforms use (``$rwidgets`` calls, ``window.__data``, ``data-props``, JSON-LD,
JSON APIs); sponsored results must be present and recognisable; the knobs must change only
what they say.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import chompjs
import httpx
import pytest
from parsel import Selector
from protego import Protego

from sites.demo.catalogue import MARKETPLACES, DemoConfig
from sites.demo.marketplaces import (
    QUERIES,
    RENAMED_KEYS,
    MarketCatalogue,
    MarketLot,
    matches,
    sale_start,
)
from sites.demo.server import DemoSite, main

HTML = "text/html; charset=utf-8"
JSON = "application/json; charset=utf-8"
ID_LENGTHS = {"ebay": 12, "liveauctioneers": 9, "catawiki": 8}


@pytest.fixture(scope="module")
def site() -> Iterator[DemoSite]:
    with DemoSite(DemoConfig()) as s:
        yield s


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(follow_redirects=False, timeout=5) as c:
        yield c


def get(client: httpx.Client, url: str, content_type: str = HTML) -> httpx.Response:
    resp = client.get(url)
    assert resp.status_code == 200, f"{url}: {resp.status_code}"
    assert resp.headers["content-type"] == content_type
    return resp


def ids(lots: list[MarketLot]) -> list[str]:
    return [lot.lot_id for lot in lots]


def rwidgets(page: Selector) -> list[tuple[str, dict[str, Any]]]:
    """Every (widget name, data) of the ``$rwidgets(...)`` calls in ``div#JSDF``, in order."""
    found = []
    for script in page.css("div#JSDF script:not([src])::text").getall():
        assert script.startswith("$rwidgets(")
        calls: list[list[Any]] = list(chompjs.parse_js_objects(script))
        for name, data in calls:  # ['com.ebay.raptor.vi.isum.smEngine', {...}]
            found.append((name, data))
    return found


def merged_widgets(page: Selector) -> dict[str, Any]:
    """The widgets' fields merged as the group's scraper did: a later null never overrides."""
    merged: dict[str, Any] = {}
    for _, data in rwidgets(page):
        for key, value in data.items():
            if value is not None or key not in merged:
                merged[key] = value
    return merged


def la_state(page: Selector) -> dict[str, Any]:
    """``window.__data`` of a LiveAuctioneers page, read the way the 2021 scraper did."""
    script = page.css("body script[data-reactroot]::text").get()
    assert script is not None and script.startswith("window.__data=") and script.endswith(";")
    literal = script[len("window.__data=") : -1]
    with pytest.raises(json.JSONDecodeError):
        json.loads(literal)  # a JavaScript literal: it has undefined values
    state: dict[str, Any] = json.loads(literal.replace("undefined", "null"))
    as_js = json.dumps(chompjs.parse_js_object(literal))  # a JS reader: undefined as a string
    assert json.loads(as_js.replace('"undefined"', "null")) == state
    return state


# -- the catalogue ----------------------------------------------------------------------------


def test_catalogue_is_deterministic_and_depends_on_the_seed() -> None:
    a, b, c = (MarketCatalogue(DemoConfig(seed=s)) for s in (7, 7, 8))
    for market in MARKETPLACES:
        assert a.lots(market) == b.lots(market)
        assert a.lots(market) != c.lots(market)
        assert [a.search(market, q) for q in QUERIES] == [b.search(market, q) for q in QUERIES]


@pytest.mark.parametrize("market", MARKETPLACES)
def test_queries_find_one_spelling_the_other_both_a_third_and_none(market: str) -> None:
    catalogue = MarketCatalogue()
    mambila, mambilla, chamba = (set(ids(catalogue.search(market, q))) for q in QUERIES)
    assert mambila - mambilla and mambilla - mambila and mambila & mambilla
    assert not chamba & (mambila | mambilla)
    organic = {lot.lot_id for lot in catalogue.lots(market) if not lot.promoted}
    assert organic - mambila - mambilla - chamba  # lots no query finds
    for query in QUERIES:
        assert catalogue.page_count(market, query) >= 2
        paged = [lot for n in (1, 2, 3, 4) for lot in catalogue.results_page(market, query, n)]
        assert paged == catalogue.search(market, query)
    for lot in catalogue.lots(market):
        assert lot.lot_id.isdigit() and len(lot.lot_id) == ID_LENGTHS[market]
        assert catalogue.lot(market, lot.lot_id) == lot
        assert lot.price >= lot.starting_price > 0
        assert lot.end_time > lot.start_time


def test_currencies_per_marketplace() -> None:
    catalogue = MarketCatalogue()
    assert {lot.currency for lot in catalogue.lots("ebay")} == {"GBP", "EUR", "USD"}
    assert {lot.currency for lot in catalogue.lots("liveauctioneers")} == {"USD"}
    assert {lot.currency for lot in catalogue.lots("catawiki")} == {"EUR"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("mambila", True),
        ("MAMBILA", True),
        ("mambilla", False),
        ("mambila figure", True),
        ("mambila mask", False),
        ("tadep", True),
        ("", False),
        ("mamb", False),
    ],
)
def test_keyword_matching(query: str, expected: bool) -> None:
    lot = next(
        lot
        for lot in MarketCatalogue().lots("ebay")
        if "MAMBILA Ancestor Figure (Tadep)" in lot.title and "Mambilla" not in lot.description
    )
    assert matches(lot, query) is expected


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"search_page_size": 0}, "search_page_size must be at least 1"),
        ({"renamed_slugs": frozenset({"12-ab"})}, r"renamed_slugs takes .*'12-ab'"),
        ({"renamed_json_key": frozenset({"sothebys"})}, "renamed_json_key takes .*sothebys"),
        ({"changed_layout": frozenset({"ebay"})}, "unknown house"),
        ({"unreachable": frozenset({"etsy"})}, "unknown house"),
    ],
)
def test_config_rejects_bad_marketplace_knobs(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DemoConfig(**settings)


def test_renamed_slug_of_an_unknown_lot_is_refused() -> None:
    with pytest.raises(ValueError, match=r"renamed_slugs names lot id\(s\) \['123'\]"):
        DemoSite(DemoConfig(renamed_slugs=frozenset({"123"})))


# -- eBay -------------------------------------------------------------------------------------


def ebay_results(client: httpx.Client, url: str) -> tuple[list[str], list[str], Selector]:
    """(organic ids, sponsored ids, page) of one eBay result page."""
    page = Selector(text=get(client, url).text)
    organic: list[str] = []
    sponsored: list[str] = []
    for item in page.css("ul.srp-results > li"):
        listing = item.attrib.get("listingid")
        if listing is None:
            continue  # a non-item answer, as eBay mixes in
        marked = item.css(".s-item__title--tagblock span[class*=SPONSORED]")
        (sponsored if marked else organic).append(listing)
        href = item.css("h3 > a::attr(href)").get() or ""
        assert "_trkparms=" in href and "hash=item" in href
        assert ("pulsar" in href) == bool(marked)
    return organic, sponsored, page


@pytest.mark.parametrize("query", QUERIES)
def test_ebay_search_pages_through_every_result_with_sponsored_ones_marked(
    site: DemoSite, client: httpx.Client, query: str
) -> None:
    catalogue = site.market_catalogue
    url: str | None = f"{site.url}/ebay/sch/i.html?_nkw={query}&_pgn=1&_skc=0"
    seen, ads, pages = [], [], 0
    while url:
        organic, sponsored, page = ebay_results(client, url)
        seen += organic
        ads += sponsored
        assert len(sponsored) == 2
        assert page.css("ul.srp-results > li:not([listingid])")
        nxt = page.css("a.pagination__next::attr(href)").get()
        url = urljoin(url, nxt) if nxt else None
        pages += 1
    assert seen == ids(catalogue.search("ebay", query))
    assert pages == catalogue.page_count("ebay", query) >= 2
    assert ads and not set(ads) & set(seen)
    assert all(catalogue.lot("ebay", ad).promoted for ad in ads)  # type: ignore[union-attr]
    last, _, _ = ebay_results(client, f"{site.url}/ebay/sch/i.html?_nkw={query}&_pgn={pages}")
    again, _, _ = ebay_results(client, f"{site.url}/ebay/sch/i.html?_nkw={query}&_pgn=99")
    assert again == last  # past the end eBay repeats its last page: nothing new, stop


def test_ebay_result_links_lead_to_the_lot_once_tracking_is_stripped(
    site: DemoSite, client: httpx.Client
) -> None:
    page = Selector(text=get(client, f"{site.url}/ebay/sch/i.html?_nkw=mambilla").text)
    for item in page.css("ul.srp-results > li[listingid]"):
        lot = site.market_catalogue.lot("ebay", item.attrib["listingid"])
        assert lot is not None
        link = urlsplit(item.css("h3 > a::attr(href)").get() or "")
        assert link.path == lot.path and link.query
        assert item.css("h3 > a::text").get() == lot.title


def test_ebay_item_page_keeps_its_fields_in_rwidgets(site: DemoSite, client: httpx.Client) -> None:
    for lot in site.market_catalogue.search("ebay", "mambila")[:4]:
        text = get(client, site.url + lot.path).text
        page = Selector(text=text)
        assert len(page.css("div#JSDF script:not([src])")) == 3
        names = [name for name, _ in rwidgets(page)]
        assert "com.ebay.raptor.vi.isum.smEngine" in names
        merch = dict(rwidgets(page))["com.ebay.raptor.vi.merch.MerchWidget"]["items"]
        assert len(merch) == 8 and lot.lot_id not in {m["listingId"] for m in merch}
        assert sum(1 for _, data in rwidgets(page) if "bidPriceDouble" in data) == 2
        fields = merged_widgets(page)
        assert fields["itemId"] == lot.lot_id
        assert fields["it"] == lot.title
        assert fields["entityName"] == lot.seller.seller_id
        assert fields["ccode"] == lot.currency
        assert fields["bidPriceDouble"] == float(lot.price)
        assert fields["bids"] == lot.bid_count
        assert fields["endTime"] == int(lot.end_time.timestamp()) * 1000
        images = [img["maxImageUrl"] for img in fields["fsImgList"]]
        for src in images:
            image = client.get(site.url + src)
            assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        assert get(client, f"{site.url}/ebay/itm/{lot.lot_id}?hash=x").text == text


def test_ebay_description_is_in_a_separate_page_behind_an_iframe(
    site: DemoSite, client: httpx.Client
) -> None:
    lot = site.market_catalogue.search("ebay", "chamba")[0]
    page = Selector(text=get(client, site.url + lot.path).text)
    src = page.css("div#desc_div iframe::attr(src)").get()
    assert src is not None and parse_qs(urlsplit(src).query)["item"] == [lot.lot_id]
    assert lot.description not in page.get()
    description = Selector(text=get(client, urljoin(site.url + lot.path, src)).text)
    assert lot.description in description.css("div#ds_div").xpath("string()").get("")


def test_ebay_seller_stub(site: DemoSite, client: httpx.Client) -> None:
    lot = site.market_catalogue.lots("ebay")[0]
    page = Selector(text=get(client, f"{site.url}/ebay/usr/{lot.seller.seller_id}").text)
    assert page.css("#member_info .mem_loc::text").get() == lot.seller.location
    assert re.fullmatch(r"\d+\.\d% Positive feedback", page.css("div.perctg::text").get(""))


# -- LiveAuctioneers --------------------------------------------------------------------------


@pytest.mark.parametrize("query", QUERIES)
def test_liveauctioneers_search_state_lists_item_ids_per_page(
    site: DemoSite, client: httpx.Client, query: str
) -> None:
    catalogue = site.market_catalogue
    seen: list[str] = []
    for page_number in range(1, catalogue.page_count("liveauctioneers", query) + 2):
        url = f"{site.url}/liveauctioneers/search/?keyword={query}&page={page_number}"
        page = Selector(text=get(client, url).text)
        state = la_state(page)
        item_ids = [str(i) for i in state["search"]["itemIds"]]
        for item_id in item_ids:
            assert state["item"]["byId"][item_id]["title"]
        links = [urlsplit(h).path for h in page.css("a.item-title::attr(href)").getall()]
        assert links == [catalogue.lot("liveauctioneers", i).path for i in item_ids]  # type: ignore[union-attr]
        seen += item_ids
    assert item_ids == []  # past the last page
    assert seen == ids(catalogue.search("liveauctioneers", query))


def test_liveauctioneers_item_page_holds_objects_keyed_by_id(
    site: DemoSite, client: httpx.Client
) -> None:
    for lot in site.market_catalogue.search("liveauctioneers", "mambilla")[:3]:
        page = Selector(text=get(client, site.url + lot.path).text)
        state = la_state(page)
        similar = [str(i) for i in state["similarItems"]["byId"][lot.lot_id]]
        assert sorted(state["item"]["byId"]) == sorted([lot.lot_id, *similar])  # pick by id
        assert list(state["itemDetail"]["byId"]) == [lot.lot_id]
        item = state["item"]["byId"][lot.lot_id]
        assert item["title"] == lot.title and item["lotNumber"] == lot.lot_number
        assert state["itemDetail"]["byId"][lot.lot_id]["description"] == lot.description
        bidding = state["biddingInfo"]["byId"][lot.lot_id]
        assert (bidding["leadingBid"], bidding["bidCount"]) == (int(lot.price), lot.bid_count)
        catalog = state["catalog"]["byId"][str(item["catalogId"])]
        assert catalog["saleStartTs"] == int(sale_start(lot).timestamp())
        assert lot.start_time < sale_start(lot) < lot.end_time
        assert state["seller"]["byId"][str(item["sellerId"])]["name"] == lot.seller.name
        assert (item["lowBidEstimate"], item["highBidEstimate"]) == (
            int(lot.estimate_low or 0),
            int(lot.estimate_high or 0),
        )
        thumbs = page.css("img[class^='Thumbnail__StyledThumbnailImage']::attr(src)").getall()
        assert len(thumbs) == len(lot.image_names)
        full = client.get(site.url + thumbs[0].split("?")[0])
        assert full.status_code == 200 and full.content[:8] == b"\x89PNG\r\n\x1a\n"


# -- Catawiki ---------------------------------------------------------------------------------


@pytest.mark.parametrize("query", QUERIES)
def test_catawiki_search_api_pages(site: DemoSite, client: httpx.Client, query: str) -> None:
    catalogue = site.market_catalogue
    seen: list[str] = []
    for page_number in range(1, catalogue.page_count("catawiki", query) + 2):
        url = f"{site.url}/catawiki/buyer/api/v1/search?q={query}&page={page_number}"
        data = get(client, url, JSON).json()
        for result in data["lots"]:
            lot = catalogue.lot("catawiki", str(result["id"]))
            assert lot is not None and (result["title"], result["url"]) == (lot.title, lot.path)
        seen += [str(result["id"]) for result in data["lots"]]
    assert data["lots"] == []
    assert seen == ids(catalogue.search("catawiki", query))


def test_catawiki_lot_page_data_props_json_ld_and_data_layer(
    site: DemoSite, client: httpx.Client
) -> None:
    for lot in site.market_catalogue.search("catawiki", "chamba")[:3]:
        text = get(client, site.url + lot.path).text
        page = Selector(text=text)
        props = json.loads(page.css("div.lot-details-page-wrapper::attr(data-props)").get(""))
        assert (props["lotId"], props["lotTitle"]) == (int(lot.lot_id), lot.title)
        assert (props["lotSubtitle"], props["description"]) == (lot.subtitle, lot.description)
        assert props["sellerInfo"]["id"] == int(lot.seller.seller_id)
        assert len(page.css("div[data-props]")) == 2  # the seller sidebar has its own props
        sidebar = page.css("div[data-react-component=LotsFromSellerSidebar]::attr(data-props)")
        assert json.loads(sidebar.get(""))["seller"]["sellerName"] == lot.seller.name
        specs = {spec["name"]: spec["value"] for spec in props["specifications"]}
        assert specs["Tribe/ culture"] == "Chamba"
        assert props["expertsEstimate"]["min"]["EUR"] == int(lot.estimate_low or 0)
        ld = page.css("script[type='application/ld+json']::text").getall()
        blocks = [json.loads(b) for b in ld]
        crumbs = next(b for b in blocks if b["@type"] == "BreadcrumbList")
        names = [element["item"]["name"] for element in crumbs["itemListElement"]]
        assert names[:3] == ["Home", "Art", "African & Tribal art"] and len(names) == 4
        layer_text = re.search(r"dataLayer = (\[.*?\]);", text)
        assert layer_text is not None
        layer = json.loads(layer_text.group(1))[0]
        assert layer["BiddingEndTime"] == lot.end_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert layer["lot_state"] == ("closed" if lot.closed else "bidding")


def test_catawiki_bidding_and_bids_apis(site: DemoSite, client: httpx.Client) -> None:
    lots = site.market_catalogue.lots("catawiki")
    assert any(lot.sold for lot in lots) and any(not lot.closed for lot in lots)
    for lot in lots:
        url = f"{site.url}/catawiki/buyer/api/v2/lots/{lot.lot_id}/bidding?currency_code=EUR"
        bidding = get(client, url, JSON).json()["bidding"]
        assert bidding["current_bid_amount"] == int(lot.price)
        assert bidding["start_bid_amount"] == int(lot.starting_price)
        assert bidding["min_bid_amount"] > bidding["current_bid_amount"]
        assert (bidding["closed"], bidding["sold"]) == (lot.closed, lot.sold)
        assert not bidding["sold"] or bidding["reserve_price_met"]
        assert bidding["bidding_end_time"] > bidding["bidding_start_time"]
    lot = lots[0]
    bids = get(client, f"{site.url}/catawiki/buyer/api/v1/lots/{lot.lot_id}/bids", JSON).json()
    assert bids["meta"]["total"] == lot.bid_count == len(bids["bids"])
    assert bids["bids"][0]["amount"] == int(lot.price)
    refused = client.get(
        f"{site.url}/catawiki/buyer/api/v2/lots/{lot.lot_id}/bidding?currency_code=USD"
    )
    assert refused.status_code == 422 and "currency_code 'USD'" in refused.json()["error"]


# -- slugs, routing, knobs --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("market", "template"),
    [
        ("liveauctioneers", "/liveauctioneers/item/{id}"),
        ("liveauctioneers", "/liveauctioneers/item/{id}_an-old-title"),
        ("catawiki", "/catawiki/l/{id}"),
        ("catawiki", "/catawiki/l/{id}-an-old-title"),
    ],
)
def test_other_slugs_redirect_to_the_canonical_lot_url(
    site: DemoSite, client: httpx.Client, market: str, template: str
) -> None:
    lot = site.market_catalogue.search(market, "mambila")[0]
    resp = client.get(site.url + template.format(id=lot.lot_id))
    assert resp.status_code == 301 and resp.headers["location"] == lot.path


@pytest.mark.parametrize(
    "path",
    [
        "/ebay/itm/123456789012",
        "/ebay/itm/Some-Title/123456789012",
        "/ebay/sch/i.html?_nkw=mambila&_pgn=0",
        "/ebay/usr/nobody",
        "/ebay/images/g/0000000000000000/s-l1600.png",
        "/ebay/ws/eBayISAPI.dll?item=123",
        "/liveauctioneers/item/1_nothing",
        "/liveauctioneers/search/?keyword=mambila&page=two",
        "/catawiki/l/1-nothing",
        "/catawiki/images/huge/1-1.png",
        "/etsy/search?q=mambila",
    ],
)
def test_unknown_marketplace_paths_are_404(site: DemoSite, client: httpx.Client, path: str) -> None:
    assert client.get(site.url + path).status_code == 404


@pytest.mark.parametrize(
    "path",
    ["/catawiki/buyer/api/v2/lots/1/bidding", "/catawiki/buyer/api/v1/lots/1/bids",
     "/catawiki/buyer/api/v3/nothing"],
)  # fmt: skip
def test_catawiki_api_errors_are_json(site: DemoSite, client: httpx.Client, path: str) -> None:
    resp = client.get(site.url + path)
    assert resp.status_code == 404 and resp.headers["content-type"] == JSON
    assert "error" in resp.json()


def test_renamed_slug_keeps_the_id_and_moves_the_lot(client: httpx.Client) -> None:
    before = MarketCatalogue()
    chosen = {market: before.search(market, "mambila")[1] for market in MARKETPLACES}
    config = DemoConfig(renamed_slugs=frozenset(lot.lot_id for lot in chosen.values()))
    with DemoSite(config) as later:
        for market, old in chosen.items():
            new = later.market_catalogue.lot(market, old.lot_id)
            assert new is not None and new.slug != old.slug and new.path != old.path
            assert (new.title, new.price, new.seller) == (old.title, old.price, old.seller)
            assert get(client, later.url + new.path).status_code == 200
            moved = client.get(later.url + old.path)
            if market == "ebay":  # eBay reads only the id
                assert moved.status_code == 200
            else:
                assert moved.status_code == 301 and moved.headers["location"] == new.path
            others = [lot for lot in later.market_catalogue.lots(market) if lot != new]
            assert all(before.lot(market, lot.lot_id) == lot for lot in others)
        ebay_page = get(client, f"{later.url}/ebay/sch/i.html?_nkw=mambila").text
        assert chosen["ebay"].path + "?" not in ebay_page
        cw = get(client, f"{later.url}/catawiki/buyer/api/v1/search?q=mambila", JSON).json()
        urls = {str(r["id"]): r["url"] for r in cw["lots"]}
        assert urls[chosen["catawiki"].lot_id].endswith(chosen["catawiki"].slug + "-2")


def test_renamed_json_key_changes_one_marketplace_only(
    site: DemoSite, client: httpx.Client
) -> None:
    lots = {market: site.market_catalogue.search(market, "chamba")[0] for market in MARKETPLACES}
    normal = {market: get(client, site.url + lot.path).text for market, lot in lots.items()}
    for changed in MARKETPLACES:
        old, new = RENAMED_KEYS[changed]
        with DemoSite(DemoConfig(renamed_json_key=frozenset({changed}))) as other:
            for market, lot in lots.items():
                text = get(client, other.url + lot.path).text
                if market != changed:
                    assert text == normal[market]
            page = Selector(text=get(client, other.url + lots[changed].path).text)
            if changed == "ebay":
                fields = merged_widgets(page)
            elif changed == "liveauctioneers":
                fields = la_state(page)["item"]["byId"][lots[changed].lot_id]
            else:
                fields = json.loads(
                    page.css("div.lot-details-page-wrapper::attr(data-props)").get("")
                )
            assert old not in fields and new in fields


def test_faults_and_robots_apply_to_the_marketplaces(client: httpx.Client) -> None:
    lot = MarketCatalogue().search("catawiki", "mambila")[0]
    with DemoSite(DemoConfig(error_rate=1.0)) as failing:
        assert client.get(f"{failing.url}/ebay/sch/i.html?_nkw=mambila").status_code == 500
    with DemoSite(DemoConfig(throttle_rate=1.0, retry_after=4)) as throttled:
        resp = client.get(f"{throttled.url}/liveauctioneers/search/?keyword=mambila")
        assert resp.status_code == 429 and resp.headers["retry-after"] == "4"
    with DemoSite(DemoConfig(unreachable=frozenset({"catawiki"}))) as down:
        assert client.get(down.url + lot.path).status_code == 503
        assert client.get(f"{down.url}/catawiki/buyer/api/v1/search?q=x").status_code == 503
        assert client.get(f"{down.url}/ebay/sch/i.html?_nkw=mambila").status_code == 200
    with DemoSite(DemoConfig(latency=0.2)) as slow:
        started = time.monotonic()
        get(client, f"{slow.url}/catawiki/buyer/api/v1/search?q=mambila", JSON)
        assert time.monotonic() - started >= 0.2
    with DemoSite(DemoConfig(disallow=(lot.path,))) as polite:
        robots = Protego.parse(
            get(client, f"{polite.url}/robots.txt", "text/plain; charset=utf-8").text
        )
        assert not robots.can_fetch(polite.url + lot.path, "auction-pipeline")
        assert robots.can_fetch(
            f"{polite.url}/catawiki/buyer/api/v1/search?q=x", "auction-pipeline"
        )


def test_robots_allows_every_marketplace_page(site: DemoSite, client: httpx.Client) -> None:
    robots = Protego.parse(client.get(f"{site.url}/robots.txt").text)
    catalogue = site.market_catalogue
    paths = [lot.path for market in MARKETPLACES for lot in catalogue.search(market, "mambila")]
    paths += [
        "/ebay/sch/i.html?_nkw=mambila",
        "/liveauctioneers/search/?keyword=mambila",
        "/catawiki/buyer/api/v1/search?q=mambila",
        "/catawiki/buyer/api/v2/lots/1/bidding",
    ]
    assert all(robots.can_fetch(site.url + path, "auction-pipeline") for path in paths)


def test_same_config_serves_the_same_bytes(site: DemoSite, client: httpx.Client) -> None:
    catalogue = site.market_catalogue
    paths = [catalogue.search(market, "mambilla")[0].path for market in MARKETPLACES]
    paths += ["/ebay/sch/i.html?_nkw=chamba&_pgn=2", "/catawiki/buyer/api/v1/search?q=chamba"]
    with DemoSite(DemoConfig()) as twin:
        for path in paths:
            assert client.get(site.url + path).content == client.get(twin.url + path).content


def test_cli_rejects_bad_marketplace_knobs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--renamed-slug", "123"])
    assert exc.value.code == 2
    assert "renamed_slugs names lot id(s) ['123']" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["--renamed-json-key", "sothebys"])
    assert exc.value.code == 2
    assert "renamed_json_key takes marketplace names" in capsys.readouterr().err
