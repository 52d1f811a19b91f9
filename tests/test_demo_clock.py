"""Tests of the demo marketplaces' clock: lots open, gather bids and close as time moves.

The pipeline crawls the marketplaces several times a day over several days and follows each
lot until it closes, then compares what it stored with ``MarketCatalogue`` at each crawl's
``market_time``. So the pages served at a moment must show exactly the catalogue's state,
bids and price for that moment, read here as a site file would (``$rwidgets`` JSON,
``window.__data``, the Catawiki APIs); bids must never fall; a closed lot must leave search
but keep its page; ``hidden_from_search`` must hide open lots from search only; and
``DemoSite.reconfigure`` must change what the next request sees, atomically.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import chompjs
import httpx
import pytest
from parsel import Selector

from sites.demo.catalogue import MARKETPLACES, DemoConfig
from sites.demo.market_lot import BASE_TIME, sells
from sites.demo.marketplaces import QUERIES, MarketCatalogue, MarketLot
from sites.demo.server import DemoSite

CRAWLS = (
    datetime(2026, 3, 14, 6, tzinfo=UTC),
    datetime(2026, 3, 14, 18, tzinfo=UTC),
    datetime(2026, 3, 15, 12, tzinfo=UTC),
    datetime(2026, 3, 16, 12, tzinfo=UTC),
)
"""Crawls of the pipeline's multi-day test: twice on the 14th, at noon on the 15th and 16th."""
DAY = timedelta(days=1)
D14, D15, D16 = (datetime(2026, 3, d, tzinfo=UTC) for d in (14, 15, 16))
TOP = 20  # the site files' max_results
ORDER = {"upcoming": 0, "open": 1, "sold": 2, "unsold": 2, "withdrawn": 2}
EBAY_STATUS = {"ACTIVE": "open", "SOLD": "sold", "NO_WINNING_BID": "unsold",
               "NOT_AVAILABLE": "withdrawn"}  # fmt: skip
EBAY_MESSAGES = {
    "sold": "Bidding has ended on this item.",
    "unsold": "Bidding has ended on this item.",
    "withdrawn": "This listing was ended by the seller because the item is no longer available.",
}
LA_STATUS = {"online": "open", "sold": "sold", "passed": "unsold", "withdrawn": "withdrawn"}
CW_STATUS = {(False, False, False): "open", (True, True, False): "sold",
             (True, False, False): "unsold", (True, False, True): "withdrawn"}  # fmt: skip
CW_STATE = {"open": "bidding", "sold": "closed", "unsold": "closed", "withdrawn": "withdrawn"}


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(follow_redirects=False, timeout=5) as c:
        yield c


def at(moment: datetime, **knobs: Any) -> MarketCatalogue:
    return MarketCatalogue(DemoConfig(market_time=moment, **knobs))


def hits(catalogue: MarketCatalogue, market: str) -> list[MarketLot]:
    """The lots the site files' searches find: each query's top 20, merged by id."""
    found: dict[str, MarketLot] = {}
    for query in QUERIES:
        for lot in catalogue.search(market, query)[:TOP]:
            found.setdefault(lot.lot_id, lot)
    return list(found.values())


def followed(market: str) -> set[str]:
    """Every lot a crawl at any of ``CRAWLS`` finds on ``market``."""
    return {lot.lot_id for moment in CRAWLS for lot in hits(at(moment), market)}


# -- reading a lot's state from its pages, as a site file would ------------------------------


def ebay_state(client: httpx.Client, url: str, lot: MarketLot) -> tuple[str, int, Decimal]:
    resp = client.get(url + lot.path)
    assert resp.status_code == 200, lot.path
    page = Selector(text=resp.text)
    fields: dict[str, Any] = {}
    for script in page.css("div#JSDF script::text").getall():
        calls: list[list[Any]] = list(chompjs.parse_js_objects(script))
        for _, data in calls:
            for key, value in data.items():
                if value is not None or key not in fields:
                    fields[key] = value
    status = EBAY_STATUS[fields["endReason"] or fields["listingStatus"]]
    assert fields["listingStatus"] == ("ACTIVE" if status == "open" else "ENDED")
    message = page.css("div#msgPanel span.msgTextAlign::text").get()
    assert message == EBAY_MESSAGES.get(status), lot.path
    label = page.css("div.vi-price-label::text").get()
    bids = fields["bids"]
    expected_label = (
        "Winning bid:" if status == "sold" else "Current bid:" if bids else "Starting bid:"
    )
    assert label == expected_label, lot.path
    assert fields["endTime"] == int(lot.end_time.timestamp()) * 1000
    return status, bids, Decimal(str(fields["bidPriceDouble"]))


def la_state(client: httpx.Client, url: str, lot: MarketLot) -> tuple[str, int, Decimal]:
    resp = client.get(url + lot.path)
    assert resp.status_code == 200, lot.path
    script = Selector(text=resp.text).css("script[data-reactroot]::text").get("")
    state: dict[str, Any] = chompjs.parse_js_object(script[len("window.__data=") : -1])
    bidding = state["biddingInfo"]["byId"][lot.lot_id]
    status = LA_STATUS[bidding["lotStatus"]]
    assert bidding["isClosed"] is (status != "open")
    assert bidding["isPassed"] is (status == "unsold")
    assert bidding["isWithdrawn"] is (status == "withdrawn")
    price = Decimal(str(bidding["leadingBid"]))
    assert Decimal(str(bidding["salePrice"])) == (price if status == "sold" else 0)
    catalog = state["catalog"]["byId"][lot.sale_id]
    assert catalog["catalogStatus"] in ("online", "live", "done")
    return status, bidding["bidCount"], price


def cw_state(client: httpx.Client, url: str, lot: MarketLot) -> tuple[str, int, Decimal]:
    api = f"{url}/catawiki/buyer/api/v2/lots/{lot.lot_id}/bidding?currency_code=EUR"
    bidding = client.get(api).json()["bidding"]
    status = CW_STATUS[(bidding["closed"], bidding["sold"], bidding["withdrawn"])]
    price = Decimal(str(bidding["current_bid_amount"]))
    bids = client.get(f"{url}/catawiki/buyer/api/v1/lots/{lot.lot_id}/bids").json()
    amounts = [Decimal(str(b["amount"])) for b in bids["bids"]]
    assert bids["meta"]["total"] == len(amounts)
    assert amounts == sorted(amounts, reverse=True) and amounts[:1] in ([], [price])
    times = [b["created_at"] for b in bids["bids"]]
    assert times == sorted(times, reverse=True)
    assert all(t <= lot.as_of.strftime("%Y-%m-%dT%H:%M:%SZ") for t in times)
    text = client.get(url + lot.path).text
    layer = re.search(r"dataLayer = (\[.*?\]);", text)
    assert layer is not None and json.loads(layer[1])[0]["lot_state"] == CW_STATE[status]
    assert ("lot-withdrawn-notice" in text) is (status == "withdrawn")
    return status, bids["meta"]["total"], price


READERS = {"ebay": ebay_state, "liveauctioneers": la_state, "catawiki": cw_state}


def searched_ids(client: httpx.Client, url: str, market: str, query: str) -> list[str]:
    """Every organic result id of ``query``, paging through the platform's search."""
    seen: list[str] = []
    for page in range(1, 11):
        if market == "ebay":
            text = client.get(f"{url}/ebay/sch/i.html?_nkw={query}&_pgn={page}").text
            items = Selector(text=text).css("ul.srp-results > li[listingid]")
            new = [
                i.attrib["listingid"]
                for i in items
                if not i.css(".s-item__title--tagblock span[class*=SPONSORED]")
            ]
        elif market == "liveauctioneers":
            text = client.get(f"{url}/liveauctioneers/search/?keyword={query}&page={page}").text
            script = Selector(text=text).css("script[data-reactroot]::text").get("")
            state: dict[str, Any] = chompjs.parse_js_object(script[len("window.__data=") : -1])
            new = [str(i) for i in state["search"]["itemIds"]]
        else:
            data = client.get(f"{url}/catawiki/buyer/api/v1/search?q={query}&page={page}").json()
            new = [str(lot["id"]) for lot in data["lots"]]
        if not new or set(new) <= set(seen):
            break
        seen += new
    return seen


# -- the state model, pure --------------------------------------------------------------------


@pytest.mark.parametrize("market", MARKETPLACES)
def test_a_lot_moves_forward_only_and_bids_never_fall(market: str) -> None:
    moments = [D14 - 5 * DAY + n * timedelta(hours=6) for n in range(4 * 24)]
    history = [at(moment).lots(market, include_upcoming=True) for moment in moments]
    for lots in zip(*history, strict=True):
        lot = lots[0]
        statuses = [x.status for x in lots]
        ranks = [ORDER[s] for s in statuses]
        assert ranks == sorted(ranks), (lot.lot_id, statuses)
        assert len(set(statuses) - {"upcoming", "open"}) <= 1, (lot.lot_id, statuses)
        counts, prices = [x.bid_count for x in lots], [x.price for x in lots]
        assert counts == sorted(counts) and prices == sorted(prices), lot.lot_id
        for x in lots:
            assert x.starting_price <= x.price <= x.final_price
            assert x.closed is (x.status in ("sold", "unsold", "withdrawn"))
            if x.status == "upcoming":
                assert (x.bid_count, x.price) == (0, x.starting_price)
            if x.status in ("sold", "unsold"):
                assert (x.bid_count, x.price) == (x.total_bids, x.final_price)
                assert x.sold is sells(x)
        final = lots[-1]
        if final.status == "sold":  # the platforms' rules
            assert final.bid_count > 0 and final.withdrawn_time is None
            if market == "catawiki":
                assert final.reserve_price_met
        if final.status == "unsold" and market != "catawiki":
            assert final.bid_count == 0  # eBay and LiveAuctioneers sell on any bid


def test_state_as_of_the_catalogue_agrees_with_the_drawn_facts() -> None:
    catalogue = at(CRAWLS[2])
    for market in MARKETPLACES:
        for lot in catalogue.lots(market, include_upcoming=True):
            assert lot.as_of == CRAWLS[2]
            assert (lot.status == "upcoming") is (CRAWLS[2] < lot.start_time)
            ended = CRAWLS[2] >= lot.close_time
            assert lot.closed is ended or lot.status == "upcoming"
            if lot.status == "withdrawn":
                assert lot.withdrawn_time is not None
                assert lot.end_time == lot.withdrawn_time < lot.scheduled_end_time
                assert not lot.sold and lot.bid_count == 0
    assert MarketCatalogue().market_time == BASE_TIME == at(BASE_TIME).market_time
    assert MarketCatalogue().lots("ebay") == at(BASE_TIME).lots("ebay")


@pytest.mark.parametrize("market", MARKETPLACES)
def test_three_crawl_days_see_lots_open_bid_on_close_and_appear(market: str) -> None:
    """The multi-day pipeline test's needs, among the lots the site files' searches find."""
    found = followed(market)
    first = at(CRAWLS[0])
    last = at(CRAWLS[-1])
    on_16th = [x for x in first.closing_between(market, D16, CRAWLS[-1]) if x.lot_id in found]
    rising = []
    for lot in on_16th:
        counts = [at(t).lot(market, lot.lot_id).bid_count for t in CRAWLS]  # type: ignore[union-attr]
        if lot.status == "open" and counts == sorted(counts) and counts[0] < counts[2] < counts[3]:
            rising.append(lot)
    assert len(rising) >= 2, [x.lot_id for x in on_16th]
    final = [last.lot(market, x.lot_id) for x in rising]
    assert any(x is not None and x.status == "sold" and x.price > x.starting_price for x in final)
    assert [x for x in first.closing_between(market, D15, D16) if x.lot_id in found]
    new = [x for x in first.listed_between(market, D15, CRAWLS[2]) if x.lot_id in found]
    assert new and all(x.status == "upcoming" for x in new)
    assert {x.lot_id for x in new} <= {x.lot_id for x in hits(at(CRAWLS[2]), market)}
    outcomes = {last.lot(market, i).status for i in found}  # type: ignore[union-attr]
    assert {"sold", "unsold", "withdrawn", "open"} <= outcomes


# -- over HTTP --------------------------------------------------------------------------------


@pytest.mark.parametrize("market", MARKETPLACES)
def test_pages_show_each_crawls_state_bids_and_price(client: httpx.Client, market: str) -> None:
    found = sorted(followed(market))
    seen: dict[str, list[tuple[str, int, Decimal]]] = {lot_id: [] for lot_id in found}
    with DemoSite(DemoConfig(market_time=CRAWLS[0])) as site:
        for moment in CRAWLS:
            assert site.reconfigure(market_time=moment).market_time == moment
            catalogue = site.market_catalogue
            assert catalogue.market_time == site.config.market_time == moment
            for lot_id in found:
                lot = catalogue.lot(market, lot_id)
                assert lot is not None
                if lot.status == "upcoming":
                    assert client.get(site.url + lot.path).status_code == 404
                    continue
                state = READERS[market](client, site.url, lot)
                assert state == (lot.status, lot.bid_count, lot.price), (lot_id, moment)
                seen[lot_id].append(state)
    for lot_id, states in seen.items():
        assert [s[1] for s in states] == sorted(s[1] for s in states), lot_id  # bids never fall
        assert [s[2] for s in states] == sorted(s[2] for s in states), lot_id
    statuses = {s[0] for states in seen.values() for s in states}
    assert statuses == {"open", "sold", "unsold", "withdrawn"}


@pytest.mark.parametrize("market", MARKETPLACES)
def test_a_closed_lot_leaves_search_but_keeps_its_page(client: httpx.Client, market: str) -> None:
    before, after = at(CRAWLS[1]), at(CRAWLS[-1])
    with DemoSite(DemoConfig(market_time=CRAWLS[1])) as site:
        listed = {q: searched_ids(client, site.url, market, q) for q in QUERIES}
        assert listed == {q: [x.lot_id for x in before.search(market, q)] for q in QUERIES}
        site.reconfigure(market_time=CRAWLS[-1])
        later = {q: searched_ids(client, site.url, market, q) for q in QUERIES}
        assert later == {q: [x.lot_id for x in after.search(market, q)] for q in QUERIES}
        gone = {i for ids in listed.values() for i in ids} - {
            i for ids in later.values() for i in ids
        }
        assert gone
        for lot_id in sorted(gone):
            lot = after.lot(market, lot_id)
            assert lot is not None and lot.closed
            state = READERS[market](client, site.url, lot)
            assert state[0] == lot.status != "open"
        appeared = {i for ids in later.values() for i in ids} - {
            i for ids in listed.values() for i in ids
        }
        assert appeared and all(after.lot(market, i).start_time > CRAWLS[1] for i in appeared)  # type: ignore[union-attr]


def test_hidden_lots_leave_search_but_their_pages_answer(client: httpx.Client) -> None:
    catalogue = MarketCatalogue()
    hidden = {market: catalogue.search(market, "mambila")[0] for market in MARKETPLACES}
    with DemoSite() as site:
        for market, lot in hidden.items():
            assert lot.lot_id in searched_ids(client, site.url, market, "mambila")
        site.reconfigure(hidden_from_search=frozenset(lot.lot_id for lot in hidden.values()))
        for market, lot in hidden.items():
            ids = searched_ids(client, site.url, market, "mambila")
            assert lot.lot_id not in ids and ids
            assert ids == [x.lot_id for x in site.market_catalogue.search(market, "mambila")]
            assert READERS[market](client, site.url, lot) == ("open", lot.bid_count, lot.price)
        assert site.market_catalogue.lot("ebay", hidden["ebay"].lot_id) == hidden["ebay"]


def test_reconfigure_swaps_the_whole_config_between_requests(client: httpx.Client) -> None:
    catalogue = at(CRAWLS[0])
    lot = next(x for x in catalogue.closing_between("catawiki", D16, CRAWLS[-1]) if x.total_bids)
    api = f"/catawiki/buyer/api/v2/lots/{lot.lot_id}/bidding?currency_code=EUR"
    pages = {}
    with DemoSite(DemoConfig(market_time=CRAWLS[0], seed=7)) as site:
        early = client.get(site.url + api).json()["bidding"]
        assert (early["closed"], early["current_bid_amount"]) == (False, int(lot.price))
        site.reconfigure(market_time=CRAWLS[-1], latency=0.0)
        late = client.get(site.url + api).json()["bidding"]
        assert late["closed"] is True and late["current_bid_amount"] > early["current_bid_amount"]
        assert site.config == DemoConfig(market_time=CRAWLS[-1])
        for moment in (CRAWLS[1], CRAWLS[-1]):
            site.reconfigure(market_time=moment)
            pages[moment] = client.get(site.url + lot.path).content
        assert pages[CRAWLS[1]] != pages[CRAWLS[-1]]
        # Each response is rendered from one configuration while another thread swaps them.
        stop = threading.Event()

        def swap() -> None:
            for n in range(1_000_000):  # until the requests are done
                if stop.is_set():
                    break
                site.reconfigure(market_time=CRAWLS[1] if n % 2 else CRAWLS[-1])

        swapper = threading.Thread(target=swap)
        swapper.start()
        try:
            bodies = [client.get(site.url + lot.path).content for _ in range(40)]
        finally:
            stop.set()
            swapper.join(timeout=30)
        assert not swapper.is_alive()
        assert set(bodies) <= set(pages.values())


def test_upcoming_lots_have_no_pages_until_listed(client: httpx.Client) -> None:
    catalogue = at(CRAWLS[1])
    with DemoSite(DemoConfig(market_time=CRAWLS[1])) as site:
        for market in MARKETPLACES:
            new = catalogue.listed_between(market, D15, CRAWLS[2])
            assert new and all(x.status == "upcoming" for x in new)
            assert not {x.lot_id for x in new} & {x.lot_id for x in catalogue.lots(market)}
            assert client.get(site.url + new[0].path).status_code == 404
        site.reconfigure(market_time=CRAWLS[2])
        for market in MARKETPLACES:
            lot = site.market_catalogue.lot(
                market, catalogue.listed_between(market, D15, CRAWLS[2])[0].lot_id
            )
            assert lot is not None and lot.status == "open"
            assert READERS[market](client, site.url, lot) == ("open", 0, lot.starting_price)


# -- bad values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"market_time": datetime(2026, 3, 15, 12)}, "market_time must be timezone-aware"),
        ({"market_time": "2026-03-15T12:00Z"}, "market_time must be a timezone-aware datetime"),
        ({"market_time": datetime(1999, 1, 1, tzinfo=UTC)}, "market_time must lie in"),
        ({"hidden_from_search": frozenset({"12-ab"})}, r"hidden_from_search takes .*'12-ab'"),
    ],
)
def test_bad_clock_values_are_refused_naming_the_field(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        DemoConfig(**settings)


def test_unknown_hidden_lots_and_fields_are_refused_and_change_nothing() -> None:
    with pytest.raises(ValueError, match=r"hidden_from_search names lot id\(s\) \['123'\]"):
        DemoSite(DemoConfig(hidden_from_search=frozenset({"123"})))
    site = DemoSite(DemoConfig(market_time=CRAWLS[0]))
    with pytest.raises(ValueError, match="market_time must be timezone-aware"):
        site.reconfigure(market_time=datetime(2026, 3, 16, 12))
    with pytest.raises(ValueError, match=r"hidden_from_search names lot id\(s\) \['123'\]"):
        site.reconfigure(hidden_from_search=frozenset({"123"}))
    with pytest.raises(TypeError, match=r"unknown DemoConfig field\(s\) \['market_tme'\]"):
        site.reconfigure(market_tme=CRAWLS[1])
    assert site.config == DemoConfig(market_time=CRAWLS[0])
    assert site.market_catalogue.market_time == CRAWLS[0]
    paris = datetime(2026, 3, 15, 14, tzinfo=timezone(timedelta(hours=1)))
    stored = DemoConfig(market_time=paris).market_time
    assert stored == datetime(2026, 3, 15, 13, tzinfo=UTC) and stored.tzinfo is UTC
