"""Tests of the demo marketplaces' seller profile pages over real HTTP.

The pipeline will read each lot's seller and fetch its profile once per crawl, then compare
what it stored with ``Seller`` facts, so every seller of ``MarketCatalogue.sellers`` must
have a page at its platform's URL showing exactly those facts, read back here as a site file
would (CSS and regexes on eBay's HTML, the project's own chains on LiveAuctioneers'
``window.__data``, JSON on Catawiki's ``data-props``); every lot page must link its seller;
and one seller's facts must agree between its lot pages and its profile.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from parsel import Selector

from sites.demo.catalogue import MARKETPLACES, DemoConfig
from sites.demo.marketplaces import MarketCatalogue, MarketLot
from sites.demo.sellers import CatawikiFacts, EbayFacts, LiveAuctioneersFacts, Seller, seller_path
from sites.demo.server import DemoSite
from sites.selectors import Selector as Chain
from tasks.chains import Page, evaluate, read_documents

HTML = "text/html; charset=utf-8"
LA_STATE = "script[data-reactroot]::text"
PERCENT = re.compile(r"([0-9]+\.[0-9])%\u00a0?\s?Positive feedback")


@pytest.fixture(scope="module")
def site() -> Iterator[DemoSite]:
    with DemoSite(DemoConfig()) as s:
        yield s


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(follow_redirects=False, timeout=5) as c:
        yield c


def get(client: httpx.Client, url: str) -> httpx.Response:
    resp = client.get(url)
    assert resp.status_code == 200, f"{url}: {resp.status_code}"
    assert resp.headers["content-type"] == HTML
    return resp


def page_of(client: httpx.Client, url: str) -> Selector:
    return Selector(text=get(client, url).text)


def chain(text: str, css: str, json_path: str, lot_id: str | None = None) -> list[str]:
    """What a site file's chain ``{css, json}`` yields on a page, as the pipeline reads it."""
    return evaluate(Page.from_text(text, HTML), Chain(css=css, json=json_path), lot_id=lot_id)


def la_state(page: Selector) -> dict[str, Any]:
    script = page.css(LA_STATE).get("")
    assert script.startswith("window.__data={") and script.endswith("};")
    documents = read_documents(script)
    assert len(documents) == 1
    state: dict[str, Any] = documents[0]
    return state


def props(page: Selector, component: str) -> dict[str, Any]:
    text = page.css(f"div[data-react-component={component}]::attr(data-props)").get()
    assert text is not None, f"no {component} component"
    value: dict[str, Any] = json.loads(text)
    return value


def all_sellers() -> list[tuple[str, str]]:
    catalogue = MarketCatalogue()
    return [(m, s.seller_id) for m in MARKETPLACES for s in catalogue.sellers(m)]


# -- the catalogue ----------------------------------------------------------------------------


def test_sellers_are_the_sellers_of_the_lots_in_id_order() -> None:
    catalogue = MarketCatalogue()
    for market in MARKETPLACES:
        sellers = catalogue.sellers(market)
        lot_sellers = {lot.seller for lot in catalogue.lots(market)}
        assert set(sellers) == lot_sellers and len(sellers) == len(lot_sellers) >= 3
        if market != "ebay":
            assert [int(s.seller_id) for s in sellers] == sorted(int(s.seller_id) for s in sellers)
        else:
            assert [s.seller_id for s in sellers] == sorted(s.seller_id for s in sellers)
        for seller in sellers:
            assert catalogue.seller(market, seller.seller_id) == seller
        assert catalogue.seller(market, "nobody") is None
    promoted = {lot.seller for lot in catalogue.lots("ebay") if lot.promoted}
    assert promoted <= set(catalogue.sellers("ebay"))
    with pytest.raises(KeyError, match="unknown marketplace 'etsy'"):
        catalogue.sellers("etsy")


def test_seller_facts_are_plausible_and_varied() -> None:
    catalogue = MarketCatalogue()
    ebay = [s.ebay for s in catalogue.sellers("ebay")]
    la = [s.liveauctioneers for s in catalogue.sellers("liveauctioneers")]
    cw = [s.catawiki for s in catalogue.sellers("catawiki")]
    for facts in (ebay, la, cw):
        assert len(set(facts)) == len(facts)
    assert all(Decimal(90) <= f.positive_percent < 100 and f.feedback_score > 0 for f in ebay)
    assert len({f.member_since for f in ebay}) == len({f.positive_percent for f in ebay}) == 4
    assert all(Decimal(1) <= f.rating <= 5 and f.followers > 0 for f in la)
    assert len({f.rating for f in la}) > 1 and len({f.ratings_count for f in la}) > 1
    assert all(Decimal(90) <= f.score <= 100 and f.member_since.year < 2026 for f in cw)
    assert len({f.score for f in cw}) == len(cw)
    descriptions = [s.description for m in MARKETPLACES for s in catalogue.sellers(m)]
    assert all(len(d) > 40 for d in descriptions) and len(set(descriptions)) == len(descriptions)


def test_derived_facts_follow_their_counts() -> None:
    la = LiveAuctioneersFacts(100, (2, 1, 1, 0, 0))
    assert (la.ratings_count, la.rating) == (4, Decimal("4.3"))  # 17 / 4, half up
    cw = CatawikiFacts(datetime(2015, 1, 1), 995, 40, 5)
    assert cw.score == Decimal("99.5")  # neutral reviews do not count
    seller = MarketCatalogue().sellers("ebay")[0]
    assert isinstance(seller.facts, EbayFacts)
    with pytest.raises(TypeError, match=f"seller '{seller.seller_id}' has EbayFacts"):
        _ = seller.catawiki


# -- profile pages show the facts -------------------------------------------------------------


def read_ebay_profile(page: Selector) -> dict[str, Any]:
    """The facts of an eBay member page, as the group's scraper found them."""
    since = page.xpath(
        "//div[@id='member_info']//span[contains(., 'Member since:')]/span[@class='info']/text()"
    ).get("")
    percent = PERCENT.fullmatch(page.css("div.perctg::text").get(""))
    assert percent is not None
    return {
        "name": page.css("div.mbg a.mbg-id::text").get(),
        "feedback_score": int(page.css("div.mbg span.mbg-l a::text").get("")),
        "positive_percent": Decimal(percent[1]),
        "member_since": datetime.strptime(since, "%b %d, %Y").date(),
        "location": page.css("#member_info span.mem_loc::text").get(),
        "description": page.css("h2.bio::text").get(),
    }


@pytest.mark.parametrize("seller_id", [s for m, s in all_sellers() if m == "ebay"])
def test_ebay_member_page_shows_the_facts(
    site: DemoSite, client: httpx.Client, seller_id: str
) -> None:
    seller = site.market_catalogue.seller("ebay", seller_id)
    assert seller is not None
    page = page_of(client, site.url + f"/ebay/usr/{seller_id}")
    facts = seller.ebay
    assert read_ebay_profile(page) == {
        "name": seller.name,
        "feedback_score": facts.feedback_score,
        "positive_percent": facts.positive_percent,
        "member_since": facts.member_since,
        "location": seller.location,
        "description": seller.description,
    }
    assert page.css("div.mbg a.mbg-id::attr(href)").get() == seller_path("ebay", seller)


@pytest.mark.parametrize("seller_id", [s for m, s in all_sellers() if m == "liveauctioneers"])
def test_liveauctioneers_auctioneer_page_shows_the_facts(
    site: DemoSite, client: httpx.Client, seller_id: str
) -> None:
    seller = site.market_catalogue.seller("liveauctioneers", seller_id)
    assert seller is not None
    assert seller_path("liveauctioneers", seller) == (
        f"/liveauctioneers/auctioneer/{seller_id}/{seller.slug}"
    )
    text = get(client, site.url + seller_path("liveauctioneers", seller)).text
    page = Selector(text=text)
    facts = seller.liveauctioneers
    # The JSON paths a site file will use, through the pipeline's own chains.
    key = f'"{seller_id}"'
    assert chain(text, LA_STATE, f"sellerDetail.byId.{key}.name") == [seller.name]
    assert chain(text, LA_STATE, f"sellerFollowerCount.byId.{key}") == [str(facts.followers)]
    assert chain(text, LA_STATE, f"sellerRatings.byId.{key}.overall") == [str(facts.rating)]
    assert chain(text, LA_STATE, f"sellerRatings.byId.{key}.totalRatings") == [
        str(facts.ratings_count)
    ]
    assert chain(text, LA_STATE, f"sellerDetail.byId.{key}.logoId") == []  # undefined
    state = la_state(page)
    detail = state["sellerDetail"]["byId"][seller_id]
    assert (detail["sellerId"], detail["city"], detail["country"], detail["description"]) == (
        int(seller_id),
        seller.city,
        seller.country,
        seller.description,
    )
    stars = state["sellerRatings"]["byId"][seller_id]["starCounts"]
    assert [stars[str(n)] for n in (5, 4, 3, 2, 1)] == list(facts.star_counts)
    # The server-rendered HTML the 2021 scraper read says the same.
    assert page.css("span.titleName::text").get() == seller.name
    assert page.css("div[class*=Address__StyledAddress]::text").get() == seller.location
    followers = page.css("div.followers::text").get("")
    assert int(followers.split(" ")[0].replace(",", "")) == facts.followers
    counts = [int(c.strip("()")) for c in page.css("div.ratingsCounter span.blue::text").getall()]
    assert counts == list(facts.star_counts)
    assert page.css("div.seller-about-text::text").get() == seller.description


@pytest.mark.parametrize("seller_id", [s for m, s in all_sellers() if m == "catawiki"])
def test_catawiki_seller_page_shows_the_facts(
    site: DemoSite, client: httpx.Client, seller_id: str
) -> None:
    seller = site.market_catalogue.seller("catawiki", seller_id)
    assert seller is not None
    page = page_of(client, site.url + f"/catawiki/u/{seller_id}")
    data = props(page, "SellerProfile")["seller"]
    facts = seller.catawiki
    created = datetime.fromisoformat(data["createdAt"])
    assert created == facts.member_since and data["createdAt"].endswith("Z")
    assert data["score"] == {
        "score": float(facts.score),
        "positiveCount": facts.positive_count,
        "neutralCount": facts.neutral_count,
        "negativeCount": facts.negative_count,
    }
    assert (data["id"], data["sellerName"], data["description"]) == (
        int(seller_id),
        seller.name,
        seller.description,
    )
    assert data["address"] == {"city": seller.city, "country": seller.country_code}
    listed = [str(lot["id"]) for lot in props(page, "SellerProfile")["lots"]]
    mine = site.market_catalogue.lots("catawiki")
    assert listed == [x.lot_id for x in mine if x.seller == seller and not x.closed]


# -- lot pages link their sellers, and agree with the profiles ---------------------------------


def linked_seller(market: str, page: Selector, text: str, lot: MarketLot) -> tuple[str, str]:
    """(the profile link, the seller id in the lot's data) of a lot page."""
    if market == "ebay":
        href = page.css("div.mbg a[aria-label]::attr(href)").get("")
        script = page.css("div#JSDF script::text").get("")
        match = re.search(r'"entityName":"([^"]+)"', script)
        return href, match[1] if match else ""
    if market == "liveauctioneers":
        href = page.css("div.auctioneerInfo a::attr(href)").get("")
        found = chain(text, LA_STATE, 'item.byId."{lot_id}".sellerId', lot_id=lot.lot_id)
        return href, found[0] if found else ""
    sidebar = props(page, "LotsFromSellerSidebar")["seller"]
    assert page.css("noscript a.seller-name::attr(href)").get() == sidebar["url"]
    return sidebar["url"], str(props(page, "LotDetailsPage")["sellerInfo"]["id"])


@pytest.mark.parametrize("market", MARKETPLACES)
def test_every_lot_page_links_a_seller_with_a_profile(
    site: DemoSite, client: httpx.Client, market: str
) -> None:
    catalogue = site.market_catalogue
    linked: set[str] = set()
    for lot in catalogue.lots(market):
        text = get(client, site.url + lot.path).text
        href, seller_id = linked_seller(market, Selector(text=text), text, lot)
        seller = catalogue.seller(market, seller_id)
        assert seller == lot.seller, f"{lot.path}: seller id {seller_id!r}"
        assert href == seller_path(market, seller), lot.path
        linked.add(href)
    assert linked == {seller_path(market, s) for s in catalogue.sellers(market)}
    for href in linked:
        get(client, site.url + href)


def test_ebay_lot_page_agrees_with_the_member_page(site: DemoSite, client: httpx.Client) -> None:
    for seller in site.market_catalogue.sellers("ebay"):
        lot = next(x for x in site.market_catalogue.lots("ebay") if x.seller == seller)
        item = page_of(client, site.url + lot.path)
        profile = read_ebay_profile(page_of(client, site.url + seller_path("ebay", seller)))
        assert item.css("div.mbg span.mbg-nw::text").get() == profile["name"]
        assert int(item.css("div.mbg span.mbg-l a::text").get("")) == profile["feedback_score"]
        percent = PERCENT.fullmatch(item.css("div#si-fb::text").get(""))
        assert percent is not None and Decimal(percent[1]) == profile["positive_percent"]
        location = item.css("span[itemprop=availableAtOrFrom]::text").get()
        assert location == profile["location"]


def test_liveauctioneers_lot_page_agrees_with_the_auctioneer_page(
    site: DemoSite, client: httpx.Client
) -> None:
    for seller in site.market_catalogue.sellers("liveauctioneers"):
        lot = next(x for x in site.market_catalogue.lots("liveauctioneers") if x.seller == seller)
        item = page_of(client, site.url + lot.path)
        profile = page_of(client, site.url + seller_path("liveauctioneers", seller))
        on_lot = la_state(item)["seller"]["byId"][seller.seller_id]
        detail = la_state(profile)["sellerDetail"]["byId"][seller.seller_id]
        for key in ("sellerId", "name", "address", "city", "country"):
            assert on_lot[key] == detail[key], key
        assert item.css("h3.sellerName::text").get() == profile.css(".titleName::text").get()
        assert (
            item.css("div.auctioneerInfo div.address::text").get()
            == profile.css("div[class*=Address__StyledAddress]::text").get()
        )


def test_catawiki_lot_sidebar_agrees_with_the_seller_page(
    site: DemoSite, client: httpx.Client
) -> None:
    for seller in site.market_catalogue.sellers("catawiki"):
        lots = [x for x in site.market_catalogue.lots("catawiki") if x.seller == seller]
        profile = props(
            page_of(client, site.url + seller_path("catawiki", seller)), "SellerProfile"
        )
        for lot in lots[:3]:
            page = page_of(client, site.url + lot.path)
            assert props(page, "LotsFromSellerSidebar")["seller"] == profile["seller"]
            info = props(page, "LotDetailsPage")["sellerInfo"]
            assert (info["name"], info["city"]) == (seller.name, seller.city)


# -- URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/ebay/usr/nobody",
        "/ebay/usr/7421",
        "/liveauctioneers/auctioneer/1/nobody",
        "/liveauctioneers/auctioneer/1",
        "/liveauctioneers/auctioneer/abc",
        "/liveauctioneers/auctioneer/903117",  # a Catawiki seller
        "/liveauctioneers/auctioneer/7421/kessler-vane-auctioneers/more",
        "/catawiki/u/1",
        "/catawiki/u/7421",  # a LiveAuctioneers seller
        "/catawiki/u/903117/lots",
        "/catawiki/u/",
    ],
)
def test_unknown_sellers_are_404(site: DemoSite, client: httpx.Client, path: str) -> None:
    assert client.get(site.url + path).status_code == 404


@pytest.mark.parametrize("tail", ["", "/", "/an-old-name", "/KESSLER-VANE-AUCTIONEERS"])
def test_liveauctioneers_other_slugs_redirect_to_the_auctioneer_page(
    site: DemoSite, client: httpx.Client, tail: str
) -> None:
    seller = site.market_catalogue.seller("liveauctioneers", "7421")
    assert isinstance(seller, Seller)
    canonical = seller_path("liveauctioneers", seller)
    assert canonical == "/liveauctioneers/auctioneer/7421/kessler-vane-auctioneers"
    resp = client.get(f"{site.url}/liveauctioneers/auctioneer/7421{tail}")
    assert resp.status_code == 301 and resp.headers["location"] == canonical
    get(client, site.url + resp.headers["location"])
