"""``sites check`` on every kind of page (issue 13, part 7), against the demo marketplaces.

A lot page with its follow-ups (the demo Catawiki bidding API, fetched or supplied from a
file; the demo eBay description behind an iframe), a follow-up resource on its own, a search
result page and a listing page: each rule is shown with what each step of its chain produced,
and a lot page with its lot id and database key. A rule that cannot work is refused as one
line naming the file, the field and the step before any request; a JSON page on which a chain
finds nothing gives a missing field, never a traceback.

Run through ``flows.cli.main`` (as a researcher types it) and :func:`check_site`, with site
files written here: the demo marketplaces' own site files come with issue 14.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from flows.cli import main
from sites.check import CheckError, check_site
from sites.demo.catalogue import Catalogue, DemoConfig
from sites.demo.marketplaces import MarketCatalogue, MarketLot
from sites.demo.server import DemoSite
from sites.loader import SITES_DIR

PROPS = "div.lot-details-page-wrapper::attr(data-props)"
BIDDING = "/buyer/api/v2/lots/{lot_id}/bidding?currency_code=EUR"

Cli = Callable[..., tuple[int, str, str]]


def _catawiki(base_url: str) -> dict[str, Any]:
    """A Catawiki-like site file: the lot page's data-props, and the bidding API follow-up."""
    return {
        "name": "cw-check",
        "house": "Catawiki (demo)",
        "base_url": base_url,
        "currency": "EUR",
        "date_languages": ["en"],
        "decimal_separator": ".",
        "lot_id": {"url_regex": r"/l/([0-9]+)"},
        "content_types": {"search": ["application/json"], "bidding": ["application/json"]},
        "search": {
            "url": "/buyer/api/v1/search?q={query}&page={page}",
            "queries": ["mambila"],
            "results": {"lot_ids": {"json": "lots[].id"}, "lot_url": "/l/{lot_id}"},
        },
        "follow": {"bidding": {"url": BIDDING}},
        "fields": {
            "lot_number": {"selector": {"css": PROPS, "json": "lotId"}, "parser": "int"},
            "title": {"selector": {"css": PROPS, "json": "lotTitle"}, "required": True},
            "sale_date": {
                "selector": {"json": "bidding.bidding_end_time"},
                "from": "bidding",
                "parser": "date",
                "required": True,
            },
            "bid_amount": {"selector": {"json": "bidding.current_bid_amount"}, "from": "bidding"},
        },
        "politeness": {"requests_per_second": 50},
    }


def _write(directory: Path, data: dict[str, Any]) -> Path:
    path = directory / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Iterator[Cli]:
    """``auction-pipeline ARGS...`` in this process: (exit code, stdout, stderr)."""
    before = signal.getsignal(signal.SIGTERM)  # main() installs its own handler

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    yield run
    signal.signal(signal.SIGTERM, before)


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoSite]:
    with DemoSite() as site:
        yield site


@pytest.fixture(scope="module")
def lot() -> MarketLot:
    return MarketCatalogue().search("catawiki", "mambila")[0]


def _block(report: str, start: str) -> list[str]:
    """The lines of ``report`` from the one starting with ``start`` up to the next field."""
    lines = report.splitlines()
    at = next(n for n, line in enumerate(lines) if line.startswith(start))
    end = next((n for n in range(at + 1, len(lines)) if "-> " in lines[n]), len(lines) - 1)
    return lines[at : end + 1]


@pytest.mark.timeout(60)
def test_a_lot_page_url_shows_its_id_key_and_fetched_follow_up(
    cli: Cli, demo: DemoSite, lot: MarketLot, tmp_path: Path
) -> None:
    path = _write(tmp_path, _catawiki(f"{demo.url}/catawiki"))
    before = len(demo.requested_paths())
    code, out, err = cli(
        "sites", "check", str(path), "--page", f"{demo.url}/catawiki/l/{lot.lot_id}"
    )
    assert code == 0, err
    bidding_url = f"{demo.url}/catawiki" + BIDDING.format(lot_id=lot.lot_id)
    assert f"  lot id: '{lot.lot_id}' (lot_id.url_regex '/l/([0-9]+)' over " in out
    assert f"  database key: site 'cw-check', lot_key '{lot.lot_id}'" in out
    assert f"follow-up bidding: {bidding_url}\n  HTTP 200, application/json" in out
    bid = _block(out, "  bid_amount")
    assert (
        bid[0].split()[:2] == ["bid_amount", "ok"] and "json: bidding.current_bid_amount" in bid[0]
    )
    assert bid[1].split()[:2] == ["body", "(1)"] and bid[2].split()[:2] == ["json", "(1)"]
    assert bid[-1].strip() == f"-> {str(int(lot.price))!r}"
    assert "record: ok" in out
    # the same polite fetcher as the crawl: the follow-up once, after its lot page
    sent = [p for p in demo.requested_paths()[before:] if p != "/robots.txt"]
    assert sent[0].startswith(f"/catawiki/l/{lot.lot_id}")
    assert sent[-1] == "/catawiki" + BIDDING.format(lot_id=lot.lot_id)
    assert sum("/bidding" in p for p in sent) == 1


@pytest.mark.timeout(60)
def test_a_saved_lot_page_takes_its_follow_ups_from_files(
    cli: Cli, demo: DemoSite, lot: MarketLot, tmp_path: Path
) -> None:
    base = f"{demo.url}/catawiki"
    path = _write(tmp_path, _catawiki(base))
    lot_page = httpx.get(f"{base}/l/{lot.lot_id}", follow_redirects=True)
    saved = tmp_path / "lot.html"
    saved.write_bytes(lot_page.content)
    bidding = tmp_path / "bidding.json"
    bidding.write_bytes(httpx.get(base + BIDDING.format(lot_id=lot.lot_id)).content)
    sent = demo.request_count()

    # neither fetched nor supplied: shown so, its fields missing as processing leaves them
    code, out, err = cli(
        "sites", "check", str(path), "--page", str(saved), "--url", str(lot_page.url)
    )
    assert code == 0, err
    assert "  not fetched (a saved page: give it with --resource bidding=FILE)" in out
    assert _block(out, "  sale_date")[1].strip() == "(bidding not fetched: nothing to read)"
    assert _block(out, "  sale_date")[-1].strip() == "-> None"
    assert "record: INVALID" in out and "sale_date: got None" in out
    assert f"lot id: '{lot.lot_id}'" in out  # from --url: the page's own URL

    code, out, err = cli(
        "sites", "check", str(path), "--page", str(saved), "--url", str(lot_page.url),
        "--resource", f"bidding={bidding}",
    )  # fmt: skip
    assert code == 0, err
    assert f"  supplied from {bidding} (a JSON document)" in out
    assert _block(out, "  sale_date")[0].split()[:2] == ["sale_date", "ok"]
    assert "record: ok" in out and f"sale_date          {lot.end_time.date()!r}" in out

    # without --url the saved page is read as if at the base URL, and says what to give
    code, out, err = cli("sites", "check", str(path), "--page", str(saved))
    assert code == 0, err
    assert "lot id: NONE: expected a URL matching lot_id.url_regex" in out
    assert "(a saved page: give --url, where it was saved from)" in out
    assert "database key: NONE" in out and "not fetched: no URL (the lot id is unknown)" in out
    assert demo.request_count() == sent  # a saved page sends nothing


@pytest.mark.timeout(60)
def test_a_follow_up_resource_is_checked_on_its_own(
    cli: Cli, demo: DemoSite, lot: MarketLot, tmp_path: Path
) -> None:
    base = f"{demo.url}/catawiki"
    path = _write(tmp_path, _catawiki(base))
    url = base + BIDDING.format(lot_id=lot.lot_id)
    code, out, err = cli("sites", "check", str(path), "--page", url, "--kind", "follow:bidding")
    assert code == 0, err
    assert f"follow-up bidding page {url}:\n  HTTP 200, application/json" in out
    assert "(a JSON document)" in out
    assert _block(out, "  bid_amount")[-1].strip() == f"-> {str(int(lot.price))!r}"
    assert _block(out, "  sale_date")[0].split()[:2] == ["sale_date", "ok"]
    assert "  title " not in out and "record:" not in out  # only the rules reading from: it

    saved = tmp_path / "bidding.json"
    saved.write_bytes(httpx.get(url).content)
    assert check_site(path, str(saved), "follow:bidding") == out.rstrip("\n").replace(
        f"{url}:\n  HTTP 200, application/json; charset=utf-8", f"{saved} (as {base}/):"
    )


@pytest.mark.timeout(60)
def test_a_link_follow_up_shows_its_link_chain(cli: Cli, demo: DemoSite, tmp_path: Path) -> None:
    (item,) = [x for x in MarketCatalogue().lots("ebay") if not x.promoted][:1]
    data = {
        "name": "eb-check",
        "house": "eBay (demo)",
        "base_url": f"{demo.url}/ebay",
        "currency": "GBP",
        "date_languages": ["en"],
        "lot_id": {"url_regex": r"/itm/([0-9]+)"},
        "search": {
            "url": "/sch/i.html?_nkw={query}&_pgn={page}",
            "queries": ["mambila"],
            "results": {"lot_links": {"css": "li.s-item a.s-item__link::attr(href)"}},
        },
        "follow": {"description": {"link": {"css": "div#desc_div iframe::attr(src)"}}},
        "fields": {
            "title": {"selector": {"css": "h1#itemTitle"}, "required": True},
            "lot_number": {"selector": {"css": "span.nosuch"}, "parser": "int"},
            "sale_date": {"selector": {"css": "span.nosuch"}, "parser": "date"},
            "description": {"selector": {"css": "div#ds_div"}, "from": "description"},
        },
    }
    path = _write(tmp_path, data)
    code, out, err = cli(
        "sites", "check", str(path), "--page", f"{demo.url}/ebay/itm/{item.lot_id}"
    )
    assert code == 0, err
    follow = out[out.index("follow-up description: ") :].splitlines()
    assert "ViewItemDescV4" in follow[0] and item.lot_id in follow[0]
    assert follow[1].split()[:3] == ["link", "ok", "css:"]
    assert follow[2].split()[:2] == ["css", "(1)"] and "ViewItemDescV4" in follow[2]
    assert follow[3].startswith("  HTTP 200, text/html") and follow[3].endswith("(an HTML page)")
    assert follow[4].split()[:2] == ["description", "ok"]
    assert item.description[:30] in out


@pytest.mark.timeout(60)
def test_search_and_listing_pages_show_each_rules_steps(
    cli: Cli, demo: DemoSite, tmp_path: Path
) -> None:
    path = _write(tmp_path, _catawiki(f"{demo.url}/catawiki"))
    url = f"{demo.url}/catawiki/buyer/api/v1/search?q=mambila&page=1"
    code, out, err = cli("sites", "check", str(path), "--page", url, "--kind", "search")
    assert code == 0, err
    ids = _block(out, "  lot_ids")
    assert ids[0].split() == ["lot_ids", "ok", "json:", "lots[].id"]
    assert ids[1].split()[:2] == ["body", "(1)"] and ids[2].split()[:2] == ["json", "(1)"]
    expected = [x.lot_id for x in MarketCatalogue().search("catawiki", "mambila")]
    assert f"    {demo.url}/catawiki/l/{expected[0]}" in out

    harrow = tmp_path / "harrow-finch.yaml"
    text = (SITES_DIR / "harrow-finch.yaml").read_text(encoding="utf-8")
    harrow.write_text(text.replace("${DEMO_SITE_URL:-http://127.0.0.1:8765}", demo.url))
    day = date(2026, 3, 14)
    listing = f"{demo.url}/harrow-finch/auctions/{day}"
    code, out, err = cli("sites", "check", str(harrow), "--page", listing, "--kind", "listing")
    assert code == 0, err
    lots = Catalogue(DemoConfig()).lots("harrow-finch", day)
    links = _block(out, "  lot_links")
    assert links[0].split()[:3] == ["lot_links", "ok", "css:"]
    assert links[1].split()[0] == "css" and int(links[1].split()[1].strip("()")) >= 1
    assert "  next_page " in out and "  lot links: " in out and lots[0].lot_id in out


# -- a rule that cannot work: one line naming file, field and step, before any request -----


def _set(where: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """An edit of the site file setting the dotted key ``where`` (created as needed)."""

    def edit(data: dict[str, Any]) -> None:
        *parents, last = where.split(".")
        for key in parents:
            data = data.setdefault(key, {})
        data[last] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "where", "fragment"),
    [
        (
            _set("fields.title.selector.json", "lotTitle.[x"),
            "fields.title.selector.json",
            "is not a valid JMESPath expression",
        ),
        (
            _set("fields.title.selector.json", "upper(lotTitle)"),
            "fields.title.selector.json",
            "upper() is not a JMESPath function",
        ),
        (
            _set("fields.title.selector.json", "starts_with(lotTitle)"),
            "fields.title.selector.json",
            "starts_with() takes 2 argument(s), given 1",
        ),
        (
            _set("fields.title.selector.json", "lotTitle" + " | lotTitle" * 100),
            "fields.title.selector.json",
            "nested more than 64 levels deep",
        ),
        (
            _set("fields.title.selector.json", "(" * 2000 + "lotTitle" + ")" * 2000),
            "fields.title.selector.json",
            "nested too deeply",
        ),
        (
            _set("fields.title.selector.regex", r"lotTitle\W+\w+"),
            "fields.title.selector.regex",
            "has no group: the chain keeps the first group",
        ),
        (
            _set("fields.title.selector.regex", "(" * 1500 + "x" + ")" * 1500),
            "fields.title.selector.regex",
            "nested too deeply",
        ),
        (
            _set("fields.title.selector.regex", "(x{99999999999})"),
            "fields.title.selector.regex",
            "the repetition number is too large",
        ),
        (
            _set("fields.bid_amount.selector.json", "bidding.[current"),
            "fields.bid_amount.selector.json",
            "not a valid JMESPath expression",
        ),
        (
            _set("follow.bidding", {"link": {"css": "iframe[", "json": "a"}}),
            "follow.bidding.link.css",
            "not a valid CSS selector",
        ),
        (
            _set("search.results.lot_ids.json", "lots[?id =="),
            "search.results.lot_ids.json",
            "not a valid JMESPath expression",
        ),
        (
            _set("search.results.exclude", {"regex": "promoted"}),
            "search.results.exclude.regex",
            "has no group",
        ),
        (_set("lot_id.url_regex", "/l/[0-9]+"), "lot_id.url_regex", "has no group"),
        (_set("lot_id.url_regex", "(" * 1500 + ")" * 1500), "lot_id.url_regex", "too deeply"),
    ],
    ids=[
        "bad-jmespath",
        "unknown-function",
        "wrong-arity",
        "too-deep-to-evaluate",
        "too-deep-to-parse",
        "regex-without-group",
        "regex-too-deep",
        "regex-huge-repeat",
        "follow-up-field",
        "follow-up-link",
        "search-results",
        "search-exclude",
        "lot-id-without-group",
        "lot-id-too-deep",
    ],
)
@pytest.mark.timeout(60)
def test_a_rule_that_cannot_work_is_one_line_before_any_request(
    cli: Cli,
    demo: DemoSite,
    lot: MarketLot,
    tmp_path: Path,
    edit: Callable[[dict[str, Any]], None],
    where: str,
    fragment: str,
) -> None:
    data = _catawiki(f"{demo.url}/catawiki")
    edit(data)
    path = _write(tmp_path, data)
    sent = demo.request_count()
    code, out, err = cli(
        "sites", "check", str(path), "--page", f"{demo.url}/catawiki/l/{lot.lot_id}"
    )
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"auction-pipeline: error: {path}: {where}: "), err
    assert fragment in err, err
    assert demo.request_count() == sent


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        (["--kind", "follow:bids"], "the site has no follow-up 'bids' (its follow-ups: bidding)"),
        (["--kind", "api"], "expected one of lot, listing, search, seller or follow:NAME"),
        (["--resource", "bids=x.json"], "the site has no follow-up 'bids'"),
        (["--resource", "bidding"], "expected NAME=FILE"),
        (["--resource", "bidding=missing.json"], "cannot read --resource bidding missing.json"),
        (["--resource", "bidding=a.json", "--resource", "bidding=b.json"], "given twice"),
        (["--kind", "search", "--resource", "bidding=a.json"], "use it with --kind lot"),
        (["--url", "http://example.org/l/1"], "give the http(s) URL a saved --page was"),
    ],
)
@pytest.mark.timeout(60)
def test_options_that_do_not_fit_the_site_are_refused_before_any_request(
    cli: Cli, demo: DemoSite, lot: MarketLot, tmp_path: Path, options: list[str], fragment: str
) -> None:
    path = _write(tmp_path, _catawiki(f"{demo.url}/catawiki"))
    (tmp_path / "a.json").write_text("{}")
    sent = demo.request_count()
    page = f"{demo.url}/catawiki/l/{lot.lot_id}"
    code, out, err = cli("sites", "check", str(path), "--page", page, *options)
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert fragment in err, err
    assert demo.request_count() == sent


# -- a JSON page on which a chain finds nothing -----------------------------------------------


@pytest.mark.timeout(60)
def test_a_json_page_where_a_chain_finds_nothing_gives_missing_fields(
    cli: Cli, demo: DemoSite, lot: MarketLot, tmp_path: Path
) -> None:
    base = f"{demo.url}/catawiki"
    data = _catawiki(base)
    data["content_types"]["lot"] = ["application/json"]  # a JSON API as the lot page itself
    data["fields"]["sale_date"] = {"selector": {"json": "bidding.no_such_key"}, "parser": "date"}
    data["fields"]["description"] = {"selector": {"css": "h1::text", "json": "text"}}
    path = _write(tmp_path, data)
    url = base + BIDDING.format(lot_id=lot.lot_id)
    code, out, err = cli("sites", "check", str(path), "--page", url)  # a URL answering JSON
    assert code == 0, err
    assert "HTTP 200, application/json" in out and "(a JSON document)" in out
    for field in ("lot_number", "title", "sale_date", "description"):
        assert _block(out, f"  {field} ")[0].split()[:2] == [field, "MISSING"], field
        assert _block(out, f"  {field} ")[-1].strip() == "-> None"
    assert _block(out, "  title")[1].split() == ["css", "(0)", "[]"]  # no elements in JSON
    assert _block(out, "  sale_date")[2].split() == ["json", "(0)", "[]"]
    assert "record: INVALID" in out and "title: got None" in out

    # a saved .json file: a JSON document, even when it holds no JSON at all
    for text, note in [
        ('{"bidding": {}}', None),
        ("<html><h1>Service unavailable</h1></html>", "the body is empty, or neither JSON"),
    ]:
        saved = tmp_path / "page.json"
        saved.write_text(text, encoding="utf-8")
        report = check_site(path, str(saved), url=url)
        assert "(a JSON document)" in report
        assert _block(report, "  sale_date")[0].split()[:2] == ["sale_date", "MISSING"]
        assert "record: INVALID" in report
        if note:
            assert note in report


def test_text_that_is_neither_json_nor_javascript_is_named_in_its_step(tmp_path: Path) -> None:
    data = _catawiki("http://cw.test")
    data["fields"]["title"]["selector"] = {"css": "h1::text", "json": "lotTitle"}
    path = _write(tmp_path, data)
    page = tmp_path / "lot.html"
    page.write_text("<html><h1>Kota reliquary figure</h1></html>", encoding="utf-8")
    report = check_site(path, str(page), url="http://cw.test/l/123-kota")
    title = _block(report, "  title")
    assert title[0].split()[:2] == ["title", "MISSING"]
    assert title[2].split()[:3] == ["parse", "(0)", "[]"]
    assert title[2].endswith("<- the text is neither JSON nor a JavaScript literal")
    with pytest.raises(CheckError, match="follow:NAME"):
        check_site(path, str(page), "follow")


@pytest.mark.timeout(60)
def test_a_seller_profile_page_shows_each_rule_and_the_seller_record(
    cli: Cli, demo: DemoSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEMO_SITE_URL", demo.url)
    seller = MarketCatalogue().sellers("liveauctioneers")[0]
    url = f"{demo.url}/liveauctioneers/auctioneer/{seller.seller_id}/{seller.slug}"
    file = str(SITES_DIR / "liveauctioneers.yaml")
    code, out, err = cli("sites", "check", file, "--page", url, "--kind", "seller")
    assert code == 0, err
    assert f"seller page {url}:" in out and "seller: ok" in out
    assert _block(out, "  followers")[-1].strip() == f"-> {str(seller.liveauctioneers.followers)!r}"
    assert f"  name               {seller.name!r}" in out
    assert f"  rating             Decimal('{seller.liveauctioneers.rating}')" in out

    # The same page saved with a rating the scale cannot hold: the seller is INVALID.
    saved = tmp_path / "profile.html"
    text = httpx.get(url).text
    rating = f'"overall":{seller.liveauctioneers.rating}'
    assert rating in text
    saved.write_text(text.replace(rating, '"overall":7.5'), encoding="utf-8")
    code, out, err = cli("sites", "check", file, "--page", str(saved), "--kind", "seller")
    assert code == 0, err
    assert "seller: INVALID" in out and "above its scale of 5" in out
