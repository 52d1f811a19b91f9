"""Times as marketplaces write them (tasks/timestamps.py), the lot record's online fields
(an optional lot number, a current bid, a sale date from an end time), and lot numbers with
a suffix, which are not whole numbers."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sitefiles import market_site

from tasks.normalise import LotValidationError, normalise_lot, parse_int
from tasks.timestamps import parse_epoch, parse_iso_timestamp, parse_time, utc_day

UTC = dt.UTC


@pytest.mark.parametrize(
    ("text", "form", "expected"),
    [
        ("1773511200", "epoch-seconds", dt.datetime(2026, 3, 14, 18, 0, tzinfo=UTC)),
        ("1773511200000", "epoch-millis", dt.datetime(2026, 3, 14, 18, 0, tzinfo=UTC)),
        ("1773511200250", "epoch-millis", dt.datetime(2026, 3, 14, 18, 0, 0, 250000, tzinfo=UTC)),
        (" 1773511200 ", "epoch-seconds", dt.datetime(2026, 3, 14, 18, 0, tzinfo=UTC)),
        ("2026-03-14T18:00:00Z", "timestamp", dt.datetime(2026, 3, 14, 18, 0, tzinfo=UTC)),
        ("2026-03-14T18:00:00.000Z", "timestamp", dt.datetime(2026, 3, 14, 18, 0, tzinfo=UTC)),
        (
            "2026-03-14T19:00:00+01:00",
            "timestamp",
            dt.datetime(2026, 3, 14, 18, 0, tzinfo=UTC),
        ),
    ],
)
def test_times_in_each_form_are_read_to_the_same_instant(
    text: str, form: str, expected: dt.datetime
) -> None:
    assert parse_time(text, form) == expected


@pytest.mark.parametrize(
    ("text", "form", "named"),
    [
        ("1773511200000", "epoch-seconds", "use parser: epoch-millis"),  # the wrong unit
        ("1773511200", "epoch-millis", "use parser: epoch-seconds"),
        ("1773511200.0", "epoch-seconds", "a whole number of seconds"),
        ("-1", "epoch-seconds", "a whole number"),
        ("9" * 16, "epoch-seconds", "outside 1995-2099"),
        ("", "epoch-millis", "a whole number of millis"),
        ("2026-03-14T18:00:00", "timestamp", "has no time zone"),
        ("2026-03-14", "timestamp", "ISO 8601 date and time"),
        ("14 March 2026 18:00 GMT", "timestamp", "ISO 8601 date and time with a zone"),
        ("1773511200", "timestamp", "ISO 8601 date and time"),
        ("2026-03-14T18:00:00Z", "epoch-seconds", "a whole number"),
        ("x", "unix", "unknown time form"),
    ],
)
def test_a_time_that_reads_two_ways_or_none_is_refused_naming_the_text(
    text: str, form: str, named: str
) -> None:
    with pytest.raises(ValueError) as refused:
        parse_time(text, form)
    assert named in str(refused.value)


def test_an_online_lots_day_is_its_end_times_utc_day() -> None:
    late_in_new_york = parse_iso_timestamp("2026-03-14T21:30:00-05:00")
    assert utc_day(late_in_new_york) == dt.date(2026, 3, 15)
    assert utc_day(parse_epoch("1773446399", "epoch-seconds")) == dt.date(2026, 3, 13)


@pytest.mark.parametrize("text", ["7A", "7 bis", "12a", "Lot 7B"])
def test_a_lot_number_with_a_suffix_is_not_read_as_its_digits(text: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_int(text)
    assert repr(text) in str(refused.value) and "not a whole number" in str(refused.value)


@pytest.mark.parametrize(("text", "number"), [("7", 7), ("Lot 7", 7), ("Lot n° 7.", 7)])
def test_lot_numbers_with_words_before_them_are_read(text: str, number: int) -> None:
    assert parse_int(text) == number


def test_an_open_online_lot_has_a_current_bid_no_lot_number_and_its_end_day() -> None:
    site = market_site(
        {
            "sale_date": {"selector": {"css": ".end"}, "parser": "epoch-millis"},
            "current_bid": {"selector": {"css": ".bid"}, "parser": "price"},
        }
    )
    raw = {"title": "Mambila figure", "sale_date": "1773511200000", "current_bid": "€ 1,250.50"}
    record = normalise_lot(site, raw, "https://market.example/l/42")
    assert (record.lot_number, record.current_bid, record.currency) == (
        None,
        Decimal("1250.50"),
        "EUR",
    )
    assert record.sale_date == dt.date(2026, 3, 14)
    # Nothing on the page says how the lot stands: its status and result are unknown, not
    # "unsold".
    assert (record.status, record.sold, record.sold_price) == (None, None, None)


def test_a_bad_end_time_makes_the_lot_invalid_naming_field_text_and_form() -> None:
    site = market_site({"sale_date": {"selector": {"css": ".end"}, "parser": "epoch-seconds"}})
    with pytest.raises(LotValidationError) as invalid:
        normalise_lot(site, {"title": "T", "sale_date": "1773511200000"}, "https://m.example/1")
    message = str(invalid.value)
    assert "sale_date" in message and "1773511200000" in message and "epoch-millis" in message


def test_a_current_bid_in_another_currency_than_the_estimate_is_refused() -> None:
    site = market_site(
        {
            "sale_date": {"selector": {"css": ".end"}, "parser": "timestamp"},
            "estimate": {"selector": {"css": ".est"}, "parser": "estimate"},
            "current_bid": {"selector": {"css": ".bid"}, "parser": "price"},
        }
    )
    raw = {
        "title": "T",
        "sale_date": "2026-03-14T18:00:00Z",
        "estimate": "€ 100 - € 200",
        "current_bid": "US$ 150",
    }
    with pytest.raises(LotValidationError, match="current_bid"):
        normalise_lot(site, raw, "https://market.example/l/1")


def test_sale_date_from_a_time_needs_a_time_parser_and_lot_number_stays_an_int() -> None:
    with pytest.raises(ValueError, match="parser: date or timestamp or epoch-seconds"):
        market_site({"sale_date": {"selector": {"css": ".end"}, "parser": "price"}})
    with pytest.raises(ValueError, match="'lot_number' must have parser: int"):
        market_site(
            {
                "sale_date": {"selector": {"css": ".end"}, "parser": "timestamp"},
                "lot_number": {"selector": {"css": ".n"}, "parser": "text"},
            }
        )
