"""An online lot's life in the lot record (tasks/lifecycle.py, tasks/normalise.py): its status
read only from the page, never "unsold" while open; start and end times; bids, starting and
buy-now prices, reserve; localised times with zones; and the site-file rules behind them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sitefiles import market_site

from sites.loader import SiteDefinition
from tasks.extract import RawLot
from tasks.normalise import LotRecord, LotValidationError, normalise_lot
from tasks.timestamps import parse_text_time

UTC = dt.UTC
URL = "https://market.example/l/42"


def _rule(css: str, parser: str = "text", **more: Any) -> dict[str, Any]:
    return {"selector": {"css": css}, "parser": parser, **more}


STATUSES = {
    "false/false": "open",
    "true/true": "sold",
    "true/false": "unsold",
    "Withdrawn": "withdrawn",
}


def _site(**extra: Any) -> SiteDefinition:
    return market_site(
        {
            "sale_date": _rule(".end", "timestamp"),
            "end_time": _rule(".end", "timestamp"),
            "start_time": _rule(".start", "epoch-seconds"),
            "status": _rule(".state", "status", statuses=STATUSES),
            "price": _rule(".result", "price"),
            "current_bid": _rule(".bid", "price"),
            "starting_price": _rule(".opening", "price"),
            "buy_now_price": _rule(".bin", "price"),
            "bid_count": _rule(".bids", "int"),
            "reserve_met": _rule(".reserve", "boolean"),
            **extra,
        },
        unsold_markers=["not sold"],
    )


def _lot(**raw: str) -> LotRecord:
    base = {"title": "Mambila figure", "sale_date": "2026-03-17T19:02:00.000Z"}
    return normalise_lot(_site(), {**base, "end_time": base["sale_date"], **raw}, URL)


def test_an_open_lot_is_open_with_its_bids_times_and_prices_and_never_unsold() -> None:
    record = _lot(
        status="false/false",
        start_time="1773169320",
        current_bid="€ 310",
        starting_price="€ 1",
        buy_now_price="€ 900",
        bid_count="12",
        reserve_met="false",
    )
    assert record.status == "open"
    assert record.sold is None and record.sold_price is None
    assert (record.current_bid, record.starting_price, record.buy_now_price) == (
        Decimal("310"),
        Decimal("1"),
        Decimal("900"),
    )
    assert (record.bid_count, record.reserve_met) == (12, False)
    assert record.start_time == dt.datetime(2026, 3, 10, 19, 2, tzinfo=UTC)
    assert record.end_time == dt.datetime(2026, 3, 17, 19, 2, tzinfo=UTC)
    assert record.sale_date == dt.date(2026, 3, 17)


@pytest.mark.parametrize(
    ("raw", "status", "sold"),
    [
        ({"status": "true/true", "price": "€ 410"}, "sold", True),
        ({"status": "TRUE/true"}, "sold", True),  # sold, its final price not shown
        ({"status": "true/false"}, "unsold", False),
        ({"status": " withdrawn "}, "withdrawn", False),  # whole text, any case and spacing
        ({"status": "true/false", "price": "not sold"}, "unsold", False),
    ],
)
def test_the_status_is_the_pages_and_sold_follows_it(
    raw: dict[str, str], status: str, sold: bool
) -> None:
    record = _lot(**raw)
    assert (record.status, record.sold) == (status, sold)
    assert (record.sold_price is not None) == ("price" in raw and raw["price"] != "not sold")


def test_a_house_lot_without_status_field_is_sold_by_its_price_and_unsold_by_its_marker() -> None:
    site = market_site(
        {"sale_date": _rule(".date", "date"), "price": _rule(".result", "price")},
        unsold_markers=["Unsold"],
    )
    base: RawLot = {"title": "Mask", "sale_date": "14 March 2026"}
    sold = normalise_lot(site, {**base, "price": "€ 2,100"}, URL)
    unsold = normalise_lot(site, {**base, "price": "Unsold"}, URL)
    silent = normalise_lot(site, base, URL)  # the page shows no result at all
    assert (sold.status, sold.sold, sold.sold_price) == ("sold", True, Decimal("2100"))
    assert (unsold.status, unsold.sold) == ("unsold", False)
    assert (silent.status, silent.sold) == (None, None)


@pytest.mark.parametrize(
    ("raw", "field", "named"),
    [
        ({"status": "false/true"}, "status", "not among the statuses"),  # unlisted: not guessed
        ({"status": "paused"}, "status", "add it there"),
        ({"status": "false/false", "price": "€ 410"}, "price", "status 'open'"),
        ({"status": "true/true", "price": "not sold"}, "price", "status 'sold'"),
        ({"reserve_met": "maybe"}, "reserve_met", "true or false"),
        ({"bid_count": "12A"}, "bid_count", "whole number"),
        ({"bid_count": "12 bids"}, "bid_count", "whole number"),  # a regex picks the digits
        ({"start_time": "1773169320000"}, "start_time", "epoch-millis"),
        ({"start_time": "1900000000"}, "start_time", "is after end_time"),
        ({"current_bid": "US$ 310", "starting_price": "€ 1"}, "starting_price",
         "lot's currency USD"),
        ({"price": "€ 410", "buy_now_price": "£ 900", "status": "true/true"}, "buy_now_price",
         "lot's currency EUR"),
    ],
)  # fmt: skip
def test_a_status_or_value_that_cannot_be_read_makes_the_lot_invalid_naming_it(
    raw: dict[str, str], field: str, named: str
) -> None:
    with pytest.raises(LotValidationError) as invalid:
        _lot(**raw)
    assert field in invalid.value.fields or named in str(invalid.value)
    assert named in str(invalid.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mar 19, 2026 14:35:00 PDT", dt.datetime(2026, 3, 19, 21, 35, tzinfo=UTC)),
        ("19 mars 2026 18:00 CET", dt.datetime(2026, 3, 19, 17, 0, tzinfo=UTC)),
        ("Sunday, 15 March 2026 at 18:00 UTC", dt.datetime(2026, 3, 15, 18, 0, tzinfo=UTC)),
        ("2026-03-19 14:35 +01:00", dt.datetime(2026, 3, 19, 13, 35, tzinfo=UTC)),
    ],
)
def test_localised_times_with_a_zone_are_read_in_utc(text: str, expected: dt.datetime) -> None:
    moment = parse_text_time(text, ["en", "fr"])
    assert moment == expected and moment.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("Mar 19, 2026 14:35", "no time zone"),
        ("Mar 19, 2026 14:35 IST", "stands for several zones"),  # India, Israel or Ireland
        ("Mar 19, 2026 2:35 PM CST", "stands for several zones"),
        ("Mar 19, 2026 GMT", "a time of day"),
        ("in 2 days 14:00 UTC", "cannot read"),  # relative to when the page is re-read
        ("Mar 19, 2426 14:35 UTC", "outside"),
    ],
)
def test_a_localised_time_without_one_clear_zone_is_refused(text: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        parse_text_time(text, ["en"])


def test_end_time_in_localised_text_sets_the_lots_utc_day() -> None:
    site = market_site(
        {"sale_date": _rule(".end", "datetime"), "end_time": _rule(".end", "datetime")}
    )
    raw: RawLot = {
        "title": "T",
        "sale_date": "Mar 19, 2026 20:30:00 PDT",
        "end_time": "Mar 19, 2026 20:30:00 PDT",
    }
    record = normalise_lot(site, raw, URL)
    assert record.end_time == dt.datetime(2026, 3, 20, 3, 30, tzinfo=UTC)
    assert record.sale_date == dt.date(2026, 3, 20)  # the UTC day, not the seller's


@pytest.mark.parametrize(
    ("rule", "named"),
    [
        (_rule(".s", "status"), "needs 'statuses'"),
        (_rule(".s", "text", statuses={"a": "open"}), "other parsers take no 'statuses'"),
        (_rule(".s", "status", statuses={"Open": "open", " open": "sold"}), "read alike"),
        (_rule(".s", "status", statuses={"x": "running"}), "statuses.x"),
        (_rule(".s", "status", statuses={"   ": "open"}), "empty text"),
    ],
)
def test_status_rules_are_checked_when_the_site_file_loads(
    rule: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        market_site({"sale_date": _rule(".end", "timestamp"), "status": rule})


def test_lifecycle_fields_need_their_parsers() -> None:
    with pytest.raises(ValueError, match="'bid_count' must have parser: int"):
        market_site({"sale_date": _rule(".end", "timestamp"), "bid_count": _rule(".b")})
    with pytest.raises(ValueError, match="'end_time' must have parser: timestamp"):
        market_site({"sale_date": _rule(".end", "timestamp"), "end_time": _rule(".e", "date")})


def test_a_record_whose_sold_flag_contradicts_its_status_does_not_validate() -> None:
    record = _lot(status="false/false").model_dump()
    with pytest.raises(ValueError, match="sold must be None for status 'open'"):
        LotRecord.model_validate({**record, "sold": False})
    with pytest.raises(ValueError, match="must be in UTC"):
        LotRecord.model_validate(
            {
                **record,
                "end_time": dt.datetime(
                    2026, 3, 17, 20, 2, tzinfo=dt.timezone(dt.timedelta(hours=1))
                ),
            }
        )
