"""Tests of the site definitions, extraction and normalisation against the demo site's truth.

The demo catalogue knows every lot's true values, so the three shipped site files are checked
end to end without a server: every lot of every house on two sale dates must come out of
extraction and normalisation exactly as the catalogue has it, and the listing pages must
yield every lot URL exactly once. Table-driven tests pin the money and date parsers on the
wordings real houses use, and the failure paths must say what was wrong and where.
"""

from __future__ import annotations

import pickle
import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from sites.demo.catalogue import HOUSES, Catalogue, DemoConfig
from sites.demo.pages import NBSP, NNBSP, page_count, render_listing, render_lot
from sites.loader import (
    SITES_DIR,
    SiteDefinition,
    SiteDefinitionError,
    load_hook,
    load_site_file,
    load_sites,
)
from tasks.extract import extract_listing, extract_lot
from tasks.normalise import (
    LotValidationError,
    normalise_lot,
    parse_estimate,
    parse_int,
    parse_price,
    parse_sale_date,
)

DEMO_URL = "http://demo.test"
SLUGS = list(HOUSES)
# A Saturday ("samedi 14 mars 2026") and a first of the month ("dimanche 1er mars 2026").
DAYS = (date(2026, 3, 14), date(2026, 3, 1))


@pytest.fixture(scope="module")
def sites() -> dict[str, SiteDefinition]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEMO_SITE_URL", DEMO_URL)
        return {site.name: site for site in load_sites(SLUGS)}


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue()


def lot_url(slug: str, lot_id: str) -> str:
    return f"{DEMO_URL}/{slug}/lot/{lot_id}"


# -- the shipped site files against the demo's truth ------------------------------------------


@pytest.mark.parametrize("day", DAYS, ids=str)
@pytest.mark.parametrize("slug", SLUGS)
def test_every_lot_is_extracted_and_normalised_exactly(
    sites: dict[str, SiteDefinition], catalogue: Catalogue, slug: str, day: date
) -> None:
    site = sites[slug]
    lots = catalogue.lots(slug, day)
    assert any(lot.sold_price is None for lot in lots)  # both branches are exercised
    assert any(lot.sold_price is not None for lot in lots)
    for lot in lots:
        url = lot_url(slug, lot.lot_id)
        raw = extract_lot(site, render_lot(lot), url)
        record = normalise_lot(site, raw, url)
        assert record.site == slug
        assert record.house == HOUSES[slug].name
        assert record.lot_key == lot.lot_id
        assert record.url == url
        assert record.lot_number == lot.lot_number
        assert record.title == lot.title
        assert record.description == lot.description
        assert record.currency == lot.currency
        assert (record.estimate_low, record.estimate_high) == (lot.estimate_low, lot.estimate_high)
        assert record.sold is (lot.sold_price is not None)
        assert record.sold_price == lot.sold_price
        assert record.sale_date == lot.sale_date
        assert record.image_urls == [f"{DEMO_URL}/images/{slug}/{n}" for n in lot.image_names]
        assert record.raw == raw


def test_raw_values_keep_no_break_spaces(
    sites: dict[str, SiteDefinition], catalogue: Catalogue
) -> None:
    lot = next(x for x in catalogue.lots("hotel-lumiere", DAYS[0]) if x.sold_price is not None)
    raw = extract_lot(sites["hotel-lumiere"], render_lot(lot), lot_url("hotel-lumiere", "x"))
    assert isinstance(raw["estimate"], str) and raw["estimate"].startswith("Estimation : ")
    assert f"{NBSP}€" in raw["estimate"]
    assert isinstance(raw["price"], str) and raw["price"].endswith(f"{NBSP}€")
    if lot.sold_price is not None and lot.sold_price >= 1000:
        assert NNBSP in raw["price"]


def _render_listing_url(catalogue: Catalogue, url: str) -> str:
    """What the demo site would serve at a listing URL a scraper followed."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == DEMO_URL
    match = re.fullmatch(r"/([a-z-]+)/auctions/(\d{4}-\d{2}-\d{2})", parts.path)
    assert match is not None, url
    page = int(parse_qs(parts.query).get("page", ["1"])[0])
    html = render_listing(catalogue, match[1], date.fromisoformat(match[2]), page)
    assert html is not None, f"{url} is not a listing page of the demo site"
    return html


@pytest.mark.parametrize("page_size", [10, 4])
@pytest.mark.parametrize("day", DAYS, ids=str)
@pytest.mark.parametrize("slug", SLUGS)
def test_listing_pages_yield_every_lot_url_exactly_once(
    sites: dict[str, SiteDefinition], slug: str, day: date, page_size: int
) -> None:
    catalogue = Catalogue(DemoConfig(page_size=page_size))
    site = sites[slug]
    expected = [lot_url(slug, lot.lot_id) for lot in catalogue.lots(slug, day)]
    url: str | None = site.start_url_for(day.isoformat())
    seen: list[str] = []
    pages = 0
    while url is not None:
        pages += 1
        assert pages <= site.listing.max_pages
        links, url = extract_listing(site, _render_listing_url(catalogue, url), url)
        seen += links
    assert seen == expected
    assert pages == page_count(len(expected), page_size)


@pytest.mark.parametrize("slug", SLUGS)
def test_changed_layout_fails_with_the_missing_fields_named(
    sites: dict[str, SiteDefinition], catalogue: Catalogue, slug: str
) -> None:
    site = sites[slug]
    lot = catalogue.lots(slug, DAYS[0])[0]
    url = lot_url(slug, lot.lot_id)
    raw = extract_lot(site, render_lot(lot, changed_layout=True), url)
    assert raw["title"] is None
    assert raw["sale_date"] is None
    assert raw["price"] is None
    with pytest.raises(LotValidationError) as caught:
        normalise_lot(site, raw, url)
    assert {"title", "sale_date"} <= set(caught.value.fields)
    message = str(caught.value)
    assert slug in message
    assert url in message
    assert "title: got None (the selector found nothing)" in message


# -- extraction details -----------------------------------------------------------------------


def test_listing_links_are_absolute_unique_and_http_only(sites: dict[str, SiteDefinition]) -> None:
    page = "http://demo.test/brooklyn-gallery/auctions/2026-03-14"
    html = (
        '<a href="../lot/a">A</a><a href="../lot/a#photos">A again</a>'
        '<a href="/brooklyn-gallery/lot/b">B</a><a href="javascript:open(\'/lot/c\')">C</a>'
        '<a rel="next" href="2026-03-14?page=2">Next</a>'
    )
    links, next_url = extract_listing(sites["brooklyn-gallery"], html, page)
    assert links == [
        "http://demo.test/brooklyn-gallery/lot/a",
        "http://demo.test/brooklyn-gallery/lot/b",
    ]
    assert next_url == page + "?page=2"


def test_a_next_link_to_the_page_itself_ends_the_listing(
    sites: dict[str, SiteDefinition],
) -> None:
    page = "http://demo.test/brooklyn-gallery/auctions/2026-03-14?page=3"
    html = '<a rel="next" href="?page=3">Next</a>'
    assert extract_listing(sites["brooklyn-gallery"], html, page) == ([], None)


def test_an_empty_page_yields_nothing(sites: dict[str, SiteDefinition]) -> None:
    site = sites["harrow-finch"]
    assert extract_listing(site, "", DEMO_URL) == ([], None)
    assert set(extract_lot(site, "", DEMO_URL).values()) == {None}


def test_element_matches_give_their_text_not_their_html(
    sites: dict[str, SiteDefinition],
) -> None:
    html = (
        '<div class="lot-description">\n  <p>Mask in <i>wood</i>,</p>\n  <p>Côte d\'Ivoire.</p>'
        "</div><h1>  First\n title </h1><h1>Second</h1>"
    )
    raw = extract_lot(sites["harrow-finch"], html, DEMO_URL)
    assert raw["description"] == "Mask in wood, Côte d'Ivoire."
    assert raw["title"] == "First title"  # the first match, not both joined
    assert raw["images"] is None


# -- parsers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "default", "expected"),
    [
        ("Sold for £2,100", "GBP", (Decimal(2100), "GBP")),
        (f"Adjugé 2{NNBSP}100{NBSP}€", "EUR", (Decimal(2100), "EUR")),
        ("Adjugé 2 100 €", "EUR", (Decimal(2100), "EUR")),
        (f"1{NNBSP}200{NBSP}€", "EUR", (Decimal(1200), "EUR")),
        ("Hammer price: $2,100", "USD", (Decimal(2100), "USD")),
        ("$2,100", "CAD", (Decimal(2100), "CAD")),  # "$" is the site's dollar
        ("US$ 2,100", "CAD", (Decimal(2100), "USD")),
        ("¥120,000", "CNY", (Decimal(120000), "CNY")),
        ("CHF 1,200.50", "EUR", (Decimal("1200.50"), "CHF")),
        ("1 200 eur", "GBP", (Decimal(1200), "EUR")),
        ("2,100", "GBP", (Decimal(2100), "GBP")),  # no sign: the site's currency
        ("Unsold", "GBP", (None, "GBP")),
        ("INVENDU", "EUR", (None, "EUR")),
        ("Lot passed at $1,000", "USD", (None, "USD")),  # the marker wins over an amount
    ],
)
def test_parse_price(text: str, default: str, expected: tuple[Decimal | None, str]) -> None:
    # "." as the English-style houses declare it (decimal_separator); the French rows group by
    # spaces only, so they read the same either way.
    assert parse_price(text, default, ["Unsold", "Invendu", "Passed"], ".") == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Result pending", "no amount in 'Result pending' and no unsold marker ('Unsold')"),
        ("kr 1 200", "unknown currency sign 'kr'"),
        # Never guess: a shared sign that is not the site's, or a currency word not known.
        ("$2,100", "currency sign '$' is shared by USD"),
        ("¥120,000", "currency sign '¥' is shared by"),
        ("Sold for 1,200 abc", "a word 'abc' follows the amount"),
        ("Adjugé 2 100 Frs", "a word 'Frs' follows the amount"),
        ("1,000 dollars", "a word 'dollars' follows the amount"),
    ],
)
def test_parse_price_failures_say_what_was_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_price(text, "GBP", ["Unsold"])


@pytest.mark.parametrize(
    ("text", "default", "expected"),
    [
        (f"Estimation : 18{NNBSP}000{NBSP}€ - 26{NNBSP}000{NBSP}€", "EUR", (18000, 26000, "EUR")),
        ("Estimation : 18 000 € - 26 000 €", "EUR", (18000, 26000, "EUR")),
        ("£1,500 \u2013 £2,200", "GBP", (1500, 2200, "GBP")),
        ("£1,500\u2014£2,200", "GBP", (1500, 2200, "GBP")),
        ("$3,600 - $6,000", "USD", (3600, 6000, "USD")),
        ("£1,500 to £2,200", "GBP", (1500, 2200, "GBP")),
        ("1 000 à 1 500 €", "GBP", (1000, 1500, "EUR")),  # a side without sign takes the other's
        ("1,500-2,200 GBP", "EUR", (1500, 2200, "GBP")),
        ("Pre-sale estimate: £1,500 - £2,200", "GBP", (1500, 2200, "GBP")),
        ("£800", "GBP", (800, 800, "GBP")),  # a point estimate
        ("Estimate on request", "GBP", (None, None, "GBP")),  # no digit: no estimate
    ],
)
def test_parse_estimate(
    text: str, default: str, expected: tuple[int | None, int | None, str]
) -> None:
    low, high, currency = expected
    assert parse_estimate(text, default, ".") == (
        None if low is None else Decimal(low),
        None if high is None else Decimal(high),
        currency,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kr 1 000 - kr 2 000", "unknown currency sign 'kr'"),
        ("£2,000 - £1,000", "has its low amount above its high amount"),
        ("£1,000 - €2,000", "mixes GBP and EUR"),
    ],
)
def test_parse_estimate_failures_say_what_was_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_estimate(text, "GBP", ".")


@pytest.mark.parametrize(
    ("text", "languages", "expected"),
    [
        ("samedi 14 mars 2026", ["fr"], date(2026, 3, 14)),
        ("dimanche 1er mars 2026", ["fr"], date(2026, 3, 1)),
        (f"14{NBSP}mars{NBSP}2026", ["fr"], date(2026, 3, 14)),
        ("March 14, 2026", ["en"], date(2026, 3, 14)),
        ("14 March 2026", ["en"], date(2026, 3, 14)),
        ("2026-03-14", ["en"], date(2026, 3, 14)),
        ("14 mars 2026", ["en", "fr"], date(2026, 3, 14)),
    ],
)
def test_parse_sale_date(text: str, languages: list[str], expected: date) -> None:
    assert parse_sale_date(text, languages) == expected


@pytest.mark.parametrize(
    ("text", "languages"),
    [
        ("March 2026", ["en"]),  # no day
        ("samedi 14 mars 2026", ["en"]),  # wrong language
        ("yesterday", ["en"]),  # relative: would depend on when the page is read
        ("1700000000", ["en"]),  # a bare timestamp
        ("", ["en"]),
    ],
)
def test_parse_sale_date_failures_name_the_text(text: str, languages: list[str]) -> None:
    with pytest.raises(ValueError, match=re.escape(f"cannot read {text!r} as a date")):
        parse_sale_date(text, languages)


@pytest.mark.parametrize(("text", "expected"), [("7", 7), ("Lot 12", 12), ("Lot n° 3", 3)])
def test_parse_int(text: str, expected: int) -> None:
    assert parse_int(text) == expected


@pytest.mark.parametrize("text", ["", "Lot", "12 of 30"])
def test_parse_int_rejects_anything_but_one_number(text: str) -> None:
    with pytest.raises(ValueError, match="exactly one whole number"):
        parse_int(text)


# -- record validation ------------------------------------------------------------------------


def test_an_unreadable_value_names_field_raw_value_and_expectation(
    sites: dict[str, SiteDefinition], catalogue: Catalogue
) -> None:
    site = sites["harrow-finch"]
    raw = extract_lot(site, render_lot(catalogue.lots(site.name, DAYS[0])[0]), DEMO_URL)
    raw["price"] = "Result pending"
    raw["sale_date"] = "soon"
    url = lot_url(site.name, "hf-20260314-001")
    with pytest.raises(LotValidationError) as caught:
        normalise_lot(site, raw, url)
    error = caught.value
    assert error.fields == ("sale_date", "price")
    assert (error.site, error.url) == ("harrow-finch", url)
    message = str(error)
    assert "sale_date: got 'soon', expected a date with day, month and year" in message
    assert "price: got 'Result pending', expected an amount" in message
    assert "unsold marker ('Unsold')" in message
    # Dask and Prefect move exceptions between processes by pickling them.
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.fields) == (message, error.fields)


def test_a_price_in_another_currency_than_the_estimate_is_rejected(
    sites: dict[str, SiteDefinition], catalogue: Catalogue
) -> None:
    site = sites["harrow-finch"]
    raw = extract_lot(site, render_lot(catalogue.lots(site.name, DAYS[0])[0]), DEMO_URL)
    raw["price"] = "Sold for €2,100"
    url = lot_url(site.name, "hf-20260314-001")
    with pytest.raises(LotValidationError, match="in the lot's currency GBP"):
        normalise_lot(site, raw, url)
    raw["estimate"] = "Estimate on request"  # no estimate: nothing to disagree with
    record = normalise_lot(site, raw, url)
    assert (record.currency, record.sold_price) == ("EUR", Decimal(2100))
    assert record.estimate_low is None


def test_a_record_field_with_the_wrong_parser_is_rejected_on_load(tmp_path: Path) -> None:
    text = (SITES_DIR / "harrow-finch.yaml").read_text()
    assert "parser: price" in text
    broken = tmp_path / "harrow-finch.yaml"
    broken.write_text(text.replace("parser: price", "parser: text"))
    with pytest.raises(SiteDefinitionError, match="'price' must have parser: price") as info:
        load_site_file(broken)
    assert str(broken) in str(info.value)


# -- site files and the loader ----------------------------------------------------------------


def test_base_url_comes_from_the_environment_or_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = SITES_DIR / "hotel-lumiere.yaml"
    monkeypatch.setenv("DEMO_SITE_URL", "http://mirror.test:9000")
    assert load_site_file(path).base_url == "http://mirror.test:9000/hotel-lumiere"
    monkeypatch.delenv("DEMO_SITE_URL")
    site = load_site_file(path)
    assert site.start_url_for("2026-03-14") == (
        "http://127.0.0.1:8765/hotel-lumiere/auctions/2026-03-14"
    )
    assert site.politeness.requests_per_second == 20
    assert site.politeness.max_retries == 4


_KEY_LINE = re.compile(r"^\s*(?:- )?[A-Za-z_][\w-]*:")


@pytest.mark.parametrize("slug", SLUGS)
def test_every_key_of_the_shipped_site_files_is_commented(slug: str) -> None:
    lines = (SITES_DIR / f"{slug}.yaml").read_text(encoding="utf-8").splitlines()
    bare = [
        f"line {number}: {line.strip()}"
        for number, line in enumerate(lines, 1)
        if _KEY_LINE.match(line)
        and " # " not in line
        and not (number > 1 and lines[number - 2].lstrip().startswith("#"))
    ]
    assert not bare, f"sites/{slug}.yaml: keys without a comment: {bare}"


def _harrow_text() -> str:
    return (SITES_DIR / "harrow-finch.yaml").read_text(encoding="utf-8")


def _harrow_data() -> dict[str, object]:
    data = yaml.safe_load(_harrow_text())
    assert isinstance(data, dict)
    return data


def _without_title() -> str:
    data = _harrow_data()
    fields = data["fields"]
    assert isinstance(fields, dict)
    del fields["title"]
    return yaml.safe_dump(data, allow_unicode=True)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            _harrow_text().replace("parser: price", "parser: money"),
            ["fields.price.parser", "Input should be 'text', 'price'"],
        ),
        (
            _harrow_text().replace('css: "h1"', 'css: "h1["'),
            ["fields.title.selector.css", "not a valid CSS selector"],
        ),
        (
            _harrow_text().replace("xpath: \"//dt[normalize-space()='Sale date']", 'xpath: "//dt['),
            ["fields.sale_date.selector.xpath", "not a valid XPath selector"],
        ),
        (
            _harrow_text().replace('css: "h1"', 'css: "h1"\n      xpath: "//h1"'),
            ["fields.title.selector", "give exactly one of 'css' or 'xpath'"],
        ),
        (_without_title(), ["fields: Value error, missing rules for required field(s): title"]),
        (
            _harrow_text().replace("requests_per_second: 20", "requests_per_second: 500"),
            ["politeness.requests_per_second", "less than or equal to 50"],
        ),
        (_harrow_text().replace("currency: GBP", "currency: pounds"), ["currency: String"]),
        (_harrow_text() + "\nname: other\n", ["duplicate key 'name'"]),
        (
            _harrow_text().replace("${DEMO_SITE_URL:-http://127.0.0.1:8765}", "${NO_SUCH_VAR_9F}"),
            ["base_url: environment variable NO_SUCH_VAR_9F is not set"],
        ),
        ("- just\n- a list\n", ["expected a mapping of site settings"]),
        ("name: [unclosed\n", ["not valid YAML"]),
    ],
    ids=[
        "bad-parser",
        "bad-css",
        "bad-xpath",
        "two-selectors",
        "no-title",
        "too-fast",
        "bad-currency",
        "duplicate-key",
        "unset-env",
        "not-a-mapping",
        "not-yaml",
    ],
)
def test_a_bad_site_file_is_rejected_naming_file_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, fragments: list[str]
) -> None:
    monkeypatch.delenv("NO_SUCH_VAR_9F", raising=False)
    path = tmp_path / "harrow-finch.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SiteDefinitionError) as caught:
        load_sites(["harrow-finch"], directory=tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in message


def test_environment_references_in_comments_are_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_SUCH_VAR_9F", raising=False)
    path = tmp_path / "harrow-finch.yaml"
    path.write_text("# set ${NO_SUCH_VAR_9F} to move the site\n" + _harrow_text(), "utf-8")
    assert load_site_file(path).name == "harrow-finch"


def test_a_file_that_is_not_utf8_or_misnamed_is_rejected(tmp_path: Path) -> None:
    latin1 = tmp_path / "harrow-finch.yaml"
    latin1.write_bytes("name: harrow-finch\nhouse: Hôtel\n".encode("latin-1"))
    with pytest.raises(SiteDefinitionError, match=r"harrow-finch\.yaml: not UTF-8 text"):
        load_site_file(latin1)
    misnamed = tmp_path / "other.yaml"
    misnamed.write_text(_harrow_text(), encoding="utf-8")
    with pytest.raises(SiteDefinitionError, match="must match the file name 'other'"):
        load_site_file(misnamed)
    with pytest.raises(SiteDefinitionError, match=r"unknown site.*sothebys"):
        load_sites(["sothebys"], directory=tmp_path)


def test_a_python_hook_adjusts_what_the_selectors_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEMO_SITE_URL", "http://demo.test")
    text = (SITES_DIR / "harrow-finch.yaml").read_text(encoding="utf-8")
    (tmp_path / "harrow-finch.yaml").write_text(text + "hook: harrow_fix.py\n", encoding="utf-8")
    (tmp_path / "harrow_fix.py").write_text(
        "def adjust_lot(raw, html, url):\n    raw['title'] = raw['title'].upper()\n    return raw\n"
    )
    (site,) = load_sites(["harrow-finch"], directory=tmp_path)
    assert site.hook == str((tmp_path / "harrow_fix.py").resolve())
    lot = Catalogue(DemoConfig()).lots("harrow-finch", date(2026, 3, 14))[0]
    url = f"http://demo.test/harrow-finch/lot/{lot.lot_id}"
    record = normalise_lot(site, extract_lot(site, render_lot(lot), url), url)
    assert record.title == lot.title.upper()

    (tmp_path / "harrow_fix.py").write_text("def something_else(raw, html, url):\n    pass\n")
    load_hook.cache_clear()
    with pytest.raises(SiteDefinitionError, match="must define adjust_lot") as info:
        load_sites(["harrow-finch"], directory=tmp_path)
    assert "harrow-finch.yaml: hook:" in str(info.value)
