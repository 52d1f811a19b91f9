"""Read the times marketplaces write into timezone-aware datetimes; never guess a zone or unit.

Platforms write a lot's start and end in a few machine forms: ISO 8601 with a zone
("2026-03-14T18:00:00.000Z" in Catawiki's bidding API, "2026-03-14T18:00:00+01:00"), or a
count since 1970-01-01 UTC in seconds (LiveAuctioneers) or milliseconds (eBay's
``endTime``). The site file names the form (parser ``timestamp``, ``epoch-seconds`` or
``epoch-millis``), since "1773511200000" read in the wrong unit is a date 56 000 years
away: the reader refuses, naming the text, rather than pick a unit by the number's size. A
time without a zone is refused too: which day it is depends on the zone.

Pages meant for people write times as localised text ("Mar 19, 2026 14:35:00 PDT", "19 mars
2026 18:00 CET"): parser ``datetime`` reads those with dateparser in the site's languages,
and only with a zone. Abbreviations that name several zones (IST is India, Israel or
Ireland; CST the US or China) are refused with the fix, never resolved to one of them.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Sequence

# Outside these years a value is a misread, not a lot: the unit or the field is wrong.
EARLIEST = dt.datetime(1995, 1, 1, tzinfo=dt.UTC)  # eBay's first auction
LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)

_DIGITS = re.compile(r"[0-9]{1,16}")
_UNITS = {"epoch-seconds": 1, "epoch-millis": 1000}
_OTHER_UNIT = {"epoch-seconds": "epoch-millis", "epoch-millis": "epoch-seconds"}


def _in_range(moment: dt.datetime, text: str, form: str) -> dt.datetime:
    if not EARLIEST <= moment < LATEST:
        other = _OTHER_UNIT.get(form)
        hint = f"; if the site counts in the other unit, use parser: {other}" if other else ""
        raise ValueError(
            f"{text!r} read as {form} is {moment.isoformat()}, outside "
            f"{EARLIEST.year}-{LATEST.year - 1}{hint}"
        )
    return moment


def parse_epoch(text: str, form: str) -> dt.datetime:
    """``text`` ("1773511200", "1773511200000") as a UTC datetime, in ``form``'s unit.

    ``form`` is "epoch-seconds" or "epoch-millis". Only plain digits are read (a JSON number
    such as 1773511200.0 written with a fraction is refused, not truncated).
    """
    written = text.strip()
    if not _DIGITS.fullmatch(written):
        raise ValueError(
            f"expected a whole number of {form.split('-')[1]} since 1970, got {text!r}"
        )
    seconds, fraction = divmod(int(written), _UNITS[form])
    try:
        moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    except (OverflowError, OSError, ValueError):
        moment = LATEST
    return _in_range(moment + dt.timedelta(milliseconds=fraction), text, form)


def parse_iso_timestamp(text: str) -> dt.datetime:
    """``text`` ("2026-03-14T18:00:00Z", "…+01:00", "….000Z") as an aware datetime.

    Refuses a time without a zone, and a date alone (use parser: date for those).
    """
    written = text.strip()
    if "T" not in written.upper() and " " not in written:
        raise ValueError(f"expected an ISO 8601 date and time with a zone, got {text!r}")
    try:
        moment = dt.datetime.fromisoformat(written)
    except ValueError:
        raise ValueError(
            f"expected an ISO 8601 date and time with a zone such as "
            f"'2026-03-14T18:00:00Z', got {text!r}"
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            f"{text!r} has no time zone (Z or +HH:MM), so its day is not known; "
            "only times with a zone are read"
        )
    return _in_range(moment, text, "timestamp")


# Zone abbreviations in use for more than one offset: reading one would be a guess.
AMBIGUOUS_ZONES = frozenset({"IST", "CST", "BST", "AST", "ADT", "AMT", "ECT", "GST", "SST"})
_CLOCK = re.compile(r"[0-9]{1,2}[:h.][0-9]{2}")
_WORDS = re.compile(r"[A-Za-z]+")
_TEXT_SETTINGS = {
    "REQUIRE_PARTS": ["day", "month", "year"],
    # Never "relative-time" ("in 2 days" depends on when the page is re-read) or "timestamp".
    "PARSERS": ["custom-formats", "absolute-time"],
}


def parse_text_time(text: str, languages: Sequence[str]) -> dt.datetime:
    """Localised date-and-time text with its zone ("Mar 19, 2026 14:35:00 PDT") as an aware
    datetime; ``languages`` are dateparser codes. Refuses text without a clock time or a
    zone, and zone abbreviations that name several zones (:data:`AMBIGUOUS_ZONES`)."""
    written = " ".join(text.split())
    ambiguous = sorted({w.upper() for w in _WORDS.findall(written)} & AMBIGUOUS_ZONES)
    if ambiguous:
        raise ValueError(
            f"{text!r} names its zone as {ambiguous[0]}, which stands for several zones; "
            "only an unambiguous zone is read (read the page's numeric offset or epoch time "
            "instead, with parser: timestamp or epoch-seconds)"
        )
    if not _CLOCK.search(written):
        raise ValueError(f"expected a date and a time of day with a zone, got {text!r}")
    moment = _parse_text_time(written, tuple(languages))
    if moment is None:
        raise ValueError(
            f"cannot read {text!r} as a date and time (languages: {', '.join(languages)})"
        )
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            f"{text!r} has no time zone, so its day is not known; only times with a zone are read"
        )
    return _in_range(moment.astimezone(dt.UTC), text, "datetime")


@functools.lru_cache(maxsize=4096)
def _parse_text_time(text: str, languages: tuple[str, ...]) -> dt.datetime | None:
    import dateparser  # lazy: slow to import (see tasks/normalise.py)

    parsed: dt.datetime | None = dateparser.parse(
        text, languages=list(languages), settings=_TEXT_SETTINGS
    )
    return parsed


def parse_time(text: str, form: str, languages: Sequence[str] = ("en",)) -> dt.datetime:
    """``text`` read in ``form`` (a site file's time parser) as an aware datetime in UTC;
    the ``datetime`` form reads text in ``languages``."""
    if form == "timestamp":
        return parse_iso_timestamp(text).astimezone(dt.UTC)
    if form in _UNITS:
        return parse_epoch(text, form)
    if form == "datetime":
        return parse_text_time(text, languages)
    raise ValueError(
        f"unknown time form {form!r}; expected timestamp, epoch-seconds, epoch-millis or datetime"
    )


def utc_day(moment: dt.datetime) -> dt.date:
    """The UTC calendar day of ``moment``: an online lot's sale date is its end's UTC day."""
    return moment.astimezone(dt.UTC).date()
