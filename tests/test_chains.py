"""Selector chains on embedded data (issue 13, part 2; the rule checks of part 7).

Each step of a chain (css/xpath, jsonld, regex, json) is tried on fragments shaped like the
platforms the research group scrapes: LiveAuctioneers' ``window.__data`` JavaScript literal
keyed by lot id, Catawiki's ``data-props`` JSON attribute, JSON-LD blocks with ``@graph`` and
its JSON APIs, eBay's ``$rwidgets(…)`` calls. A step that finds nothing makes the field
missing, never an error; a chain that cannot work is refused when its site file loads, naming
the file, the field and the step. A hostile lot id cannot change a ``{lot_id}`` expression,
and a 5 MB JSON page stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sites.check import check_site
from sites.loader import SITES_DIR, SiteDefinitionError, load_site_file
from sites.selectors import Selector, with_lot_id
from tasks.chains import Page, StepResult, evaluate, json_strings, kind_of, read_documents
from tasks.extract import extract_listing, extract_lot

# -- fragments modelled on the platforms (dreamingspires/auction-scraper's 2021 scrapers) ----

LIVEAUCTIONEERS = """<html><head><title>Mambila mask | LiveAuctioneers</title></head><body>
<div id="root"><h1 class="item-title">Mambila mask</h1>
<img class="thumbnail" src="https://p1.liveauctioneers.com/123/1.jpg?w=100">
<img class="thumbnail" src="https://p1.liveauctioneers.com/123/2.jpg?w=100"></div>
<script data-reactroot>
  window.__amplitude = {key: 'x1'};
  window.__data = {
    item: {'123': {title: 'Mambila mask, Cameroon', lotNumber: 17, lowBidEstimate: 1200,
                   highBidEstimate: 1500.5, isSold: false, buyerPremium: null,
                   subtitle: undefined,
                   photos: [1, 2], condition: 'Old repair to the left ear',},},
    itemDetail: {'123': {description: "Carved wood,\\n  kaolin. l'art d'Afrique",},},
    biddingInfo: {'123': {bidCount: 4, currentBid: 900,},},
    catalog: {'77': {saleStartTs: 1773475200, title: 'Tribal Art Sale'},},
    seller: {'9': {name: 'Gallery A',},},
  };
</script></body></html>"""

CATAWIKI_PROPS = {
    "lotId": 65432,
    "lotTitle": "Kota reliquary figure - Gabon",
    "lotSubtitle": "Mbulu ngulu",
    "description": "Brass over wood.",
    "specifications": [
        {"name": "Origin", "value": "Gabon"},
        {"name": "Material", "value": "Brass, wood"},
    ],
    "images": [{"large": "https://assets.catawiki.nl/a.jpg"}, {"large": None}],
    "expertsEstimate": {"min": {"EUR": 800}, "max": {"EUR": 1200}},
    "sellerInfo": {"id": 42, "name": "Tribal Finds", "isPro": True},
}
CATAWIKI = f"""<html><body>
<div class="lot-details-page-wrapper" data-props='{json.dumps(CATAWIKI_PROPS)}'></div>
<script type="application/ld+json">
{{"@context": "https://schema.org", "@graph": [
  {{"@type": "BreadcrumbList", "itemListElement": [
    {{"@type": "ListItem", "position": 1, "item": {{"name": "Tribal art"}}}},
    {{"@type": "ListItem", "position": 2, "item": {{"name": "African masks & figures"}}}}]}},
  {{"@type": "WebSite", "name": "Catawiki"}}]}}
</script>
<script type="application/ld+json">
[{{"@type": "Product", "name": "Kota reliquary figure", "offers": {{"price": "950.00",
  "priceCurrency": "EUR",}}}}]
</script>
<script>dataLayer = [{{"BiddingStartTime": "2026-03-10T18:00:00Z",
  "BiddingEndTime": "2026-03-17T19:02:00Z", "lot_state": "bidding"}}];</script>
</body></html>"""

EBAY = """<html><body><h1 id="itemTitle">Details about  Mambila mask</h1>
<div id="JSDF">
<script src="https://ir.ebaystatic.com/rs/v/x.js"></script>
<script>$rwidgets(["com.ebay.raptor.vi.cta.ActionButtons",{"itemId":"304412345678",
"it":"Mambila mask","bidPrice":"US $120.00","entityName":"tribal_art_uk"}],
["com.ebay.raptor.vi.photo.PhotoViewer",{"maxImageUrl":["https://i.ebayimg.com/a/s-l1600.jpg",
"https://i.ebayimg.com/b/s-l1600.jpg"],"startTime":1773400000000,"endTime":null}]);</script>
<script>$rwidgets(["com.ebay.raptor.vi.Shipping",{"locale":"en_GB"}]);</script>
</div>
<div id="desc_div"><iframe src="https://vi.vipr.ebaydesc.com/ws/eBayISAPI.dll?item=304412345678">
</iframe></div></body></html>"""

CATAWIKI_BIDDING = json.dumps(
    {
        "bidding": {
            "start_bid_amount": 1,
            "current_bid_amount": 950,
            "min_bid_amount": 975,
            "reserve_price_met": False,
            "closed": False,
            "sold": None,
            "bidding_end_time": "2026-03-17T19:02:00Z",
        }
    }
)
CATAWIKI_SEARCH = json.dumps(
    {
        "lots": [
            {"id": 65432, "title": "Kota reliquary figure", "url": "/l/65432-kota"},
            {"id": 65433, "title": "Mambila figure", "url": "/l/65433-mambila", "promoted": True},
        ],
        "total": 2,
    }
)

PAGES = {
    "liveauctioneers": Page.from_text(LIVEAUCTIONEERS, "text/html; charset=utf-8"),
    "catawiki": Page.from_text(CATAWIKI, "text/html"),
    "ebay": Page.from_text(EBAY, "text/html"),
    "bidding": Page.from_text(CATAWIKI_BIDDING, "application/json"),
    "search": Page.from_text(CATAWIKI_SEARCH, "application/json; charset=utf-8"),
    "jsonld": Page.from_text(
        '{"@graph": [{"@type": "WebSite", "name": "Catawiki"},'
        ' {"@type": "Product", "name": "Kota"}]}',
        "application/ld+json",
    ),
}
LA_DATA = "script[data-reactroot]::text"
PROPS = "div.lot-details-page-wrapper::attr(data-props)"


def chain(**steps: Any) -> Selector:
    """A selector as a site file writes it (``json`` is the YAML key)."""
    return Selector.model_validate(steps)


# -- every step, on every platform's shape ---------------------------------------------------


@pytest.mark.parametrize(
    ("page", "steps", "expected"),
    [
        # css/xpath alone: as before, whitespace tidied.
        ("liveauctioneers", {"css": "h1"}, ["Mambila mask"]),
        (
            "liveauctioneers",
            {"xpath": "//img[@class='thumbnail']/@src"},
            [
                "https://p1.liveauctioneers.com/123/1.jpg?w=100",
                "https://p1.liveauctioneers.com/123/2.jpg?w=100",
            ],
        ),
        # css -> json on a JavaScript literal (unquoted keys, single quotes, trailing commas).
        (
            "liveauctioneers",
            {"css": LA_DATA, "json": 'item."123".title'},
            ["Mambila mask, Cameroon"],
        ),
        ("liveauctioneers", {"css": LA_DATA, "json": 'item."123".lotNumber'}, ["17"]),
        ("liveauctioneers", {"css": LA_DATA, "json": 'item."123".highBidEstimate'}, ["1500.5"]),
        ("liveauctioneers", {"css": LA_DATA, "json": 'item."123".isSold'}, ["false"]),
        ("liveauctioneers", {"css": LA_DATA, "json": 'item."123".buyerPremium'}, []),
        ("liveauctioneers", {"css": LA_DATA, "json": 'item."123".subtitle'}, []),
        ("liveauctioneers", {"css": LA_DATA, "json": 'item."123".photos'}, ["1", "2"]),
        ("liveauctioneers", {"css": LA_DATA, "json": "seller.*.name"}, ["Gallery A"]),
        (
            "liveauctioneers",
            {"css": LA_DATA, "json": "catalog.*"},
            ['{"saleStartTs":1773475200,"title":"Tribal Art Sale"}'],
        ),
        # the JSON string's escapes are decoded; ASCII whitespace runs become one space.
        (
            "liveauctioneers",
            {"css": LA_DATA, "json": 'itemDetail."123".description'},
            ["Carved wood, kaolin. l'art d'Afrique"],
        ),
        # the second literal of the script (window.__amplitude) is read too, separately.
        ("liveauctioneers", {"css": LA_DATA, "json": "key"}, ["x1"]),
        # css -> regex: the first group of every match.
        ("liveauctioneers", {"css": LA_DATA, "regex": r"bidCount: (\d+)"}, ["4"]),
        (
            "liveauctioneers",
            {"css": "img.thumbnail::attr(src)", "regex": r"/(\d)\.jpg"},
            [
                "1",
                "2",
            ],
        ),
        # css -> regex -> json: cut one assignment out, then read it.
        (
            "liveauctioneers",
            {"css": LA_DATA, "regex": r"(?s)window\.__data = (\{.*\});", "json": "seller.*.name"},
            ["Gallery A"],
        ),
        # regex alone: over the whole body.
        ("ebay", {"regex": r'"itemId":"(\d+)"'}, ["304412345678"]),
        # a Catawiki-like data-props attribute holding JSON.
        ("catawiki", {"css": PROPS, "json": "lotTitle"}, ["Kota reliquary figure - Gabon"]),
        (
            "catawiki",
            {"css": PROPS, "json": "specifications[?name=='Origin'].value | [0]"},
            ["Gabon"],
        ),
        (
            "catawiki",
            {"css": PROPS, "json": "images[].large"},
            ["https://assets.catawiki.nl/a.jpg"],
        ),
        ("catawiki", {"css": PROPS, "json": "expertsEstimate.[min.EUR, max.EUR]"}, ["800", "1200"]),
        ("catawiki", {"css": PROPS, "json": "sellerInfo.isPro"}, ["true"]),
        # JSON-LD: two blocks, one with @graph, one an array; trailing comma in the second.
        (
            "catawiki",
            {"jsonld": True, "json": "[?\"@type\"=='BreadcrumbList'].itemListElement[].item.name"},
            ["Tribal art", "African masks & figures"],
        ),
        ("catawiki", {"jsonld": True, "json": "[?\"@type\"=='Product'].offers.price"}, ["950.00"]),
        (
            "catawiki",
            {"jsonld": True, "json": '[]."@type"'},
            [
                "BreadcrumbList",
                "WebSite",
                "Product",
            ],
        ),
        # dataLayer = [{…}]: every script is read, only one has the key.
        (
            "catawiki",
            {"css": "script::text", "json": "[0].BiddingEndTime"},
            ["2026-03-17T19:02:00Z"],
        ),
        # eBay-like $rwidgets(...) calls: each argument is a document of its own.
        ("ebay", {"css": "div#JSDF script::text", "json": "[1].it"}, ["Mambila mask"]),
        (
            "ebay",
            {"css": "div#JSDF script::text", "json": "[1].maxImageUrl"},
            [
                "https://i.ebayimg.com/a/s-l1600.jpg",
                "https://i.ebayimg.com/b/s-l1600.jpg",
            ],
        ),
        ("ebay", {"css": "div#JSDF script::text", "json": "[1].startTime"}, ["1773400000000"]),
        ("ebay", {"css": "div#JSDF script::text", "json": "[1].endTime"}, []),
        ("ebay", {"css": "div#JSDF script::text", "json": "[1].locale"}, ["en_GB"]),
        (
            "ebay",
            {"css": "#desc_div iframe::attr(src)"},
            ["https://vi.vipr.ebaydesc.com/ws/eBayISAPI.dll?item=304412345678"],
        ),
        # JSON responses: json: alone.
        ("bidding", {"json": "bidding.current_bid_amount"}, ["950"]),
        ("bidding", {"json": "bidding.reserve_price_met"}, ["false"]),
        ("bidding", {"json": "bidding.sold"}, []),
        ("search", {"json": "lots[].id"}, ["65432", "65433"]),
        ("search", {"json": "lots[?!promoted].url"}, ["/l/65432-kota"]),
        ("search", {"json": "total"}, ["2"]),
        ("search", {"regex": r'"total": (\d+)'}, ["2"]),
        ("jsonld", {"jsonld": True, "json": "[].name"}, ["Catawiki", "Kota"]),
    ],
)
def test_each_step_reads_the_platforms_shapes(
    page: str, steps: dict[str, Any], expected: list[str]
) -> None:
    assert evaluate(PAGES[page], chain(**steps)) == expected


@pytest.mark.parametrize(
    ("page", "steps", "why"),
    [
        ("liveauctioneers", {"css": "h2.subtitle"}, "no element matches"),
        ("liveauctioneers", {"css": LA_DATA, "regex": r"soldPrice: (\d+)"}, "regex no match"),
        ("liveauctioneers", {"css": "h1", "json": "title"}, "text is neither JSON nor JS"),
        ("liveauctioneers", {"css": LA_DATA, "json": 'item."124".title'}, "no such lot"),
        ("liveauctioneers", {"css": LA_DATA, "json": "item.*.soldPrice"}, "a renamed key"),
        ("liveauctioneers", {"css": LA_DATA, "json": 'item."123".title.en'}, "a string's key"),
        ("liveauctioneers", {"css": LA_DATA, "json": 'sum(item."123".title)'}, "type error"),
        ("catawiki", {"css": PROPS, "json": "images[].small"}, "only missing values"),
        ("catawiki", {"jsonld": True, "json": "[?\"@type\"=='Offer'].price"}, "no such node"),
        ("liveauctioneers", {"jsonld": True, "json": "[].name"}, "no JSON-LD on the page"),
        ("bidding", {"css": "h1"}, "css on a JSON response"),
        ("bidding", {"json": "bidding.bid_count"}, "a key the API lacks"),
        ("ebay", {"css": "div#JSDF script::attr(src)", "json": "it"}, "a URL is no JSON"),
    ],
)
def test_a_step_finding_nothing_gives_nothing_never_an_error(
    page: str, steps: dict[str, Any], why: str
) -> None:
    assert evaluate(PAGES[page], chain(**steps)) == [], why


@pytest.mark.parametrize(
    ("text", "content_type", "steps"),
    [
        ("", "application/json", {"json": "a"}),
        ("not json {", "application/json", {"json": "a"}),
        ("{'a': 1", "application/json", {"json": "a"}),
        ("", "text/html", {"css": "h1"}),
        ("", "text/html", {"regex": "(x)"}),
        (
            "<html><script>{unclosed: [1, 2</script></html>",
            "text/html",
            {"css": "script::text", "json": "unclosed"},
        ),
        (
            "<html><script>if (a < b) { c() }</script></html>",
            "text/html",
            {"css": "script::text", "json": "@"},
        ),
    ],
)
def test_broken_or_empty_bodies_give_nothing(
    text: str, content_type: str, steps: dict[str, Any]
) -> None:
    assert evaluate(Page.from_text(text, content_type), chain(**steps)) == []


@pytest.mark.parametrize(
    ("value", "strings"),
    [
        (None, []),
        ("  Mambila\n  mask ", ["Mambila mask"]),
        ("1\u00a0200\u00a0€", ["1\u00a0200\u00a0€"]),  # no-break spaces kept, as for HTML
        ("", []),
        (1200, ["1200"]),
        (12.5, ["12.5"]),
        (1200.0, ["1200.0"]),
        (-3, ["-3"]),
        (True, ["true"]),
        (False, ["false"]),
        ([1, None, ["a", [2.5]], ""], ["1", "a", "2.5"]),
        ({"b": 1, "a": [None, "é"]}, ['{"b":1,"a":[null,"é"]}']),
        ([], []),
    ],
)
def test_json_values_become_field_strings(value: Any, strings: list[str]) -> None:
    assert json_strings(value) == strings


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        ("application/json", "json"),
        ("application/json; charset=utf-8", "json"),
        ("Application/JSON", "json"),
        ("application/ld+json", "json"),
        ("application/vnd.catawiki.v2+json", "json"),
        ("text/json", "json"),
        ("text/html; charset=iso-8859-1", "html"),
        ("application/javascript", "html"),
        ("", "html"),
        (None, "html"),
    ],
)
def test_the_content_type_says_whether_a_page_is_json(content_type: str | None, kind: str) -> None:
    assert kind_of(content_type) == kind


@pytest.mark.parametrize(
    ("text", "documents"),
    [
        ('{"a": 1}', [{"a": 1}]),
        ("[1, 2]", [[1, 2]]),
        ("window.__data = {a: 'x', b: [1, 2,],};", [{"a": "x", "b": [1, 2]}]),
        ('$rwidgets(["w", {x: 1}], ["v", {y: 2}]);', [["w", {"x": 1}], ["v", {"y": 2}]]),
        ("dataLayer = [{'lot_state': 'closed'}];", [[{"lot_state": "closed"}]]),
        ("var n = 5; function f() { return 1; }", []),
        (
            "window.__data={a:undefined,b:[undefined,1],c:{d:undefined}};",
            [{"a": None, "b": [None, 1], "c": {"d": None}}],
        ),
        ('{"a": "undefined"}', [{"a": "undefined"}]),  # strict JSON: a string like any other
        ("Mambila mask", []),
    ],
)
def test_text_is_read_as_json_else_as_javascript_literals(text: str, documents: list[Any]) -> None:
    assert read_documents(text) == documents


def test_each_step_is_traced_for_sites_check() -> None:
    trace: list[StepResult] = []
    selector = chain(css=LA_DATA, regex=r"(?s)window\.__data = (\{.*\});", json="seller.*.name")
    assert evaluate(PAGES["liveauctioneers"], selector, trace=trace) == ["Gallery A"]
    assert [step.step for step in trace] == ["css", "regex", "parse", "json"]
    assert "window.__data" in trace[0].values[0]
    assert trace[1].values[0].startswith("{\n    item:")
    assert trace[2].values[0]["seller"] == {"9": {"name": "Gallery A"}}
    assert trace[3].values == [["Gallery A"]]


def test_the_page_is_parsed_once_for_all_its_fields() -> None:
    page = Page.from_text(LIVEAUCTIONEERS)
    first = evaluate(page, chain(css=LA_DATA, json='item."123".title'))
    cached = dict(page._memo)
    assert evaluate(page, chain(css=LA_DATA, json='biddingInfo."123".bidCount')) == ["4"]
    assert first == ["Mambila mask, Cameroon"]
    assert page._memo.keys() == cached.keys()  # no new parse for the second field


# -- {lot_id} -----------------------------------------------------------------------------------

HOSTILE_IDS = [
    "123",
    "12-a_b.c",
    'x".title || "',
    "x'] || secret || ['",
    "x` || secret || `",
    "\\",
    'a\\"b',
    "\"'`",
    "line\nbreak",
    "Évé-日本",
    "{lot_id}",
    "",
]


@pytest.mark.parametrize("lot_id", HOSTILE_IDS)
def test_a_hostile_lot_id_stays_one_key_or_one_string(lot_id: str) -> None:
    document = {
        "item": {lot_id: {"title": "right"}, "x": {"title": "wrong"}, "": {"title": "empty"}},
        "items": [{"id": "x", "title": "wrong"}, {"id": lot_id, "title": "right"}],
        "secret": "LEAK",
    }
    page = Page.from_text(json.dumps(document), "application/json")
    as_key = chain(json='item."{lot_id}".title')
    as_string = chain(json="items[?id == '{lot_id}'].title")
    expected = ["empty"] if lot_id == "" else ["right"]
    assert evaluate(page, as_key, lot_id=lot_id) == expected
    assert evaluate(page, as_string, lot_id=lot_id) == ["right"]
    # an id the document does not have finds nothing, whatever it holds
    missing = Page.from_text(
        json.dumps({"item": {}, "items": [], "secret": "LEAK"}), "application/json"
    )
    assert evaluate(missing, as_key, lot_id=lot_id) == []
    assert evaluate(missing, as_string, lot_id=lot_id) == []


def test_the_lot_id_is_substituted_as_json_strings() -> None:
    assert with_lot_id('item."{lot_id}".title', 'a"b') == 'item."a\\"b".title'
    assert with_lot_id("[?id == '{lot_id}']", "a`b") == '[?id == `"a\\u0060b"`]'
    assert with_lot_id("[?id == '{lot_id}'].x", "é") == '[?id == `"\\u00e9"`].x'


def test_without_a_lot_id_a_placeholder_rule_finds_nothing() -> None:
    selector = chain(css=LA_DATA, json='item."{lot_id}".title')
    trace: list[StepResult] = []
    assert evaluate(PAGES["liveauctioneers"], selector, trace=trace) == []
    assert trace[-1].values == ["(no lot id to fill {lot_id} with)"]
    assert evaluate(PAGES["liveauctioneers"], selector, lot_id="123") == ["Mambila mask, Cameroon"]


# -- a marketplace site file, end to end through extract_lot and sites check -----------------

SITE = """
name: la-like
house: "LiveAuctioneers-like marketplace"
base_url: "http://la.test"
start_url: "/search/{date}"
currency: USD
date_languages: [en]
lot_id:
  url_regex: "/item/([0-9]+)_"
listing:
  lot_links:
    css: "script[data-reactroot]::text"
    json: "search.itemIds"
fields:
  lot_number:
    selector: {css: "script[data-reactroot]::text", json: 'item."{lot_id}".lotNumber'}
    parser: int
    required: true
  title:
    selector: {css: "script[data-reactroot]::text", json: 'item."{lot_id}".title'}
    required: true
  sale_date:
    selector: {css: "script[data-reactroot]::text", json: "catalog.*.saleDate | [0]"}
    parser: date
    required: true
  estimate:
    selector:
      css: "script[data-reactroot]::text"
      # a projection over [item] skips the scripts' other literals, where to_string(null) would
      # make "null - null" out of nothing
      json: >-
        [item."{lot_id}"][?@].join(' - ', [to_string(lowBidEstimate),
        to_string(highBidEstimate)])
    parser: estimate
  images:
    selector: {css: "img.thumbnail::attr(src)", regex: "^([^?]+)"}
    many: true
  bids:
    selector: {css: "script[data-reactroot]::text", json: 'biddingInfo."{lot_id}".bidCount'}
"""


def _site(tmp_path: Path, text: str = SITE, name: str = "la-like") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


LOT_PAGE = LIVEAUCTIONEERS.replace(
    "catalog: {'77': {", "catalog: {'77': {saleDate: '2026-03-14', "
).replace("window.__data = {", "window.__data = {search: {itemIds: ['/item/123_mask']},")


def test_a_marketplace_lot_is_read_with_the_lot_id_from_its_url(tmp_path: Path) -> None:
    site = load_site_file(_site(tmp_path))
    raw = extract_lot(site, LOT_PAGE, "http://la.test/item/123_mambila-mask?ref=search")
    assert raw == {
        "lot_number": "17",
        "title": "Mambila mask, Cameroon",
        "sale_date": "2026-03-14",
        "estimate": "1200 - 1500.5",
        "images": [
            "https://p1.liveauctioneers.com/123/1.jpg",
            "https://p1.liveauctioneers.com/123/2.jpg",
        ],
        "bids": "4",
    }
    # a lot id given by the caller wins; one the page lacks leaves those fields missing
    other = extract_lot(site, LOT_PAGE, "http://la.test/item/123_x", lot_id="999")
    assert other["title"] is None and other["sale_date"] == "2026-03-14"
    assert extract_listing(site, LOT_PAGE, "http://la.test/search/x") == (
        ["http://la.test/item/123_mask"],
        None,
    )


def test_a_json_response_is_a_page_for_extract_lot(tmp_path: Path) -> None:
    text = SITE.replace('lot_id:\n  url_regex: "/item/([0-9]+)_"\n', "")
    bids = "json: 'biddingInfo.\"{lot_id}\".bidCount'"
    assert bids in text
    text = text.replace(
        f'css: "script[data-reactroot]::text", {bids}', 'json: "bidding.current_bid_amount"'
    )
    site = load_site_file(_site(tmp_path, text))
    raw = extract_lot(site, PAGES["bidding"], "http://la.test/api/lots/65432/bidding")
    assert raw["bids"] == "950"
    assert raw["title"] is None and raw["images"] is None  # html selectors find nothing in JSON


def test_sites_check_shows_each_step_of_each_chain(tmp_path: Path) -> None:
    page = tmp_path / "lot.html"
    page.write_text(LOT_PAGE, encoding="utf-8")
    # without lot_id: the placeholder rules show they had no lot id, the others their steps
    site = _site(tmp_path, SITE.replace('lot_id:\n  url_regex: "/item/([0-9]+)_"\n', ""))
    report = check_site(site, str(page))
    assert "(an HTML page)" in report
    assert (
        'title         MISSING  css: script[data-reactroot]::text | json: item."{lot_id}".title'
        in report
    )
    assert "no lot id to fill {lot_id} with" in report
    assert (
        "sale_date     ok       css: script[data-reactroot]::text | json: catalog.*.saleDate | [0]"
        in report
    )
    lines = report.splitlines()
    at = lines.index(next(line for line in lines if line.startswith("  sale_date")))
    assert lines[at + 1].split()[0:2] == ["css", "(1)"]
    assert lines[at + 2].split()[0:2] == ["parse", "(2)"]  # window.__amplitude and __data
    assert lines[at + 3].split() == ["json", "(1)", '["2026-03-14"]']
    assert lines[at + 4].strip() == "-> '2026-03-14'"
    images = lines.index(next(line for line in lines if line.startswith("  images")))
    assert lines[images + 2].split()[0:2] == ["regex", "(2)"]

    bidding = tmp_path / "bidding.json"
    bidding.write_text(CATAWIKI_BIDDING, encoding="utf-8")
    report = check_site(site, str(bidding))
    assert "(a JSON document)" in report and "lot_number    MISSING" in report


# -- chains refused when the site file loads -------------------------------------------------

HARROW = (SITES_DIR / "harrow-finch.yaml").read_text(encoding="utf-8")
TITLE = '      css: "h1"                 # a tag, not a class: survives restyling\n'


def _title_chain(yaml_lines: str) -> str:
    assert TITLE in HARROW
    return HARROW.replace(TITLE, yaml_lines)


@pytest.mark.parametrize(
    ("steps", "where", "fragment"),
    [
        ('      css: "h1["\n', "fields.title.selector.css", "not a valid CSS selector"),
        ('      xpath: "//h1["\n', "fields.title.selector.xpath", "not a valid XPath selector"),
        (
            '      css: "script::text"\n      regex: "lotId: \\\\d+"\n',
            "fields.title.selector.regex",
            "has no group: the chain keeps the first group",
        ),
        ('      regex: "lotId: (\\\\d+"\n', "fields.title.selector.regex", "not a valid regular"),
        (
            '      css: "script::text"\n      json: "item.[title"\n',
            "fields.title.selector.json",
            "not a valid JMESPath expression",
        ),
        ('      json: "items[?id ==]"\n', "fields.title.selector.json", "not a valid JMESPath"),
        (
            "      json: 'item.{lot_id}.title'\n",
            "fields.title.selector.json",
            "write the lot id placeholder quoted",
        ),
        (
            '      css: "h1"\n      jmespath: "title"\n',
            "fields.title.selector",
            "unknown step(s) 'jmespath': a selector's steps are css, xpath, jsonld, regex, json",
        ),
        ("      {}\n", "fields.title.selector", "a selector needs at least one step"),
        ("      jsonld: false\n", "fields.title.selector", "a selector needs at least one step"),
        (
            '      css: "h1"\n      xpath: "//h1"\n',
            "fields.title.selector",
            "give exactly one of 'css' or 'xpath'",
        ),
        (
            '      css: "h1"\n      jsonld: true\n      json: "[0].name"\n',
            "fields.title.selector",
            "jsonld: true reads the page's JSON-LD scripts itself",
        ),
        (
            '      jsonld: true\n      regex: "(x)"\n',
            "fields.title.selector",
            "jsonld: true yields JSON nodes, not text",
        ),
        ('      jsonld: "yes"\n', "fields.title.selector.jsonld", "valid boolean"),
        ("      json: 5\n", "fields.title.selector.json", "valid string"),
    ],
    ids=[
        "bad-css",
        "bad-xpath",
        "regex-without-group",
        "bad-regex",
        "bad-jmespath",
        "bad-filter",
        "bare-lot-id",
        "unknown-step",
        "no-step",
        "jsonld-false-only",
        "css-and-xpath",
        "jsonld-and-css",
        "jsonld-and-regex",
        "jsonld-not-a-boolean",
        "json-not-a-string",
    ],
)
def test_a_chain_that_cannot_work_is_refused_naming_file_field_and_step(
    tmp_path: Path, steps: str, where: str, fragment: str
) -> None:
    path = _site(tmp_path, _title_chain(steps), name="harrow-finch")
    with pytest.raises(SiteDefinitionError) as raised:
        load_site_file(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ")
    assert f"{where}: " in message, message
    assert fragment in message, message


@pytest.mark.parametrize(
    "steps",
    [
        '      css: "h1"\n',
        '      css: "script::text"\n      regex: "(?s)data = (\\\\{.*\\\\});"\n      json: a.b\n',
        "      json: 'item.\"{lot_id}\".title'\n",
        "      json: \"items[?id == '{lot_id}'].title | [0]\"\n",
        '      jsonld: true\n      json: "[?\\"@type\\"==\'Product\'].name"\n',
        "      xpath: \"//script[@id='x']/text()\"\n      json: title\n",
    ],
)
def test_chains_that_can_work_load(tmp_path: Path, steps: str) -> None:
    site = load_site_file(_site(tmp_path, _title_chain(steps), name="harrow-finch"))
    assert site.fields["title"].selector.steps


# -- a 5 MB JSON page --------------------------------------------------------------------------


def _big_lots(count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": 100000 + n,
            "title": f"Mambila mask {n}",
            "description": "Carved wood with kaolin and traces of camwood powder. " * 6,
            "price": {"amount": 120 + n, "currency": "EUR"},
            "specifications": [{"name": "Origin", "value": "Cameroon"}],
        }
        for n in range(count)
    ]


def test_a_5_mb_page_is_parsed_once_however_many_fields_read_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Twenty fields over a 5 MB JSON body, ten over the same data as a JavaScript literal in
    a script: each text is read into documents once per page, not once per field (what keeps
    big marketplace pages cheap; the time is measured by ``bench``, not asserted here)."""
    import tasks.chains

    parsed: list[int] = []
    real = tasks.chains.read_documents

    def counted(text: str) -> list[Any]:
        parsed.append(len(text))
        return real(text)

    monkeypatch.setattr(tasks.chains, "read_documents", counted)
    lots = _big_lots(12_000)
    body = json.dumps({"lots": lots, "byId": {str(lot["id"]): lot for lot in lots[:50]}})
    assert len(body) > 5_000_000
    selectors = [
        chain(json="lots[0].title"),
        chain(json="lots[-1].price.amount"),
        chain(json="lots[].id"),
        chain(json='byId."{lot_id}".title'),
        chain(json="lots[?price.amount > `12000`].id | length(@)"),
    ] * 4  # twenty fields
    page = Page.from_text(body, "application/json")
    values = [evaluate(page, selector, lot_id="100007") for selector in selectors]
    assert values[0] == ["Mambila mask 0"] and values[3] == ["Mambila mask 7"]
    assert len(values[2]) == 12_000 and values[4] == ["119"]
    assert parsed == [len(body)]

    # the same data as a JavaScript literal in a script (chompjs), ten fields reading it
    parsed.clear()
    script = body.replace('"title"', "title").replace('"id"', "id")
    html = f"<html><body><script data-reactroot>window.__data = {script};</script></body></html>"
    page = Page.from_text(html)
    js_fields = [chain(css=LA_DATA, json=f"lots[{n}].title") for n in range(10)]
    values = [evaluate(page, selector, lot_id="100007") for selector in js_fields]
    assert values[9] == ["Mambila mask 9"]
    assert len(parsed) == 1 and parsed[0] > 5_000_000


def test_a_page_nested_deeper_than_the_recursion_limit_holds_no_document() -> None:
    """A hostile page (``{"a": {"a": …`` 5000 deep, or ``[[[[…`` in a script) leaves the field
    missing, as any page without the data does, instead of crashing the site's processing."""
    from tasks.chains import read_documents

    assert read_documents('{"a": ' * 5000 + "1" + "}" * 5000) == []
    assert read_documents("window.__data = " + "[" * 100_000) == []
