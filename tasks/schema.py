"""The database schema: tables, and the two column types that make both backends agree.

SQLAlchemy Core tables, one definition for SQLite and PostgreSQL. ``lots`` holds each lot's
latest state, keyed (site, lot_key), ``observations`` what each crawl saw of it, keyed by the
crawl; ``search_hits`` which query found which lot on a crawl; ``sellers`` and
``seller_observations`` the same for the lots' sellers. Changes go through a migration in
``tasks/migrations/versions/`` (see tasks/migrate.py), never by editing a released table.

Money is exact: ``Numeric(18, 2)`` on PostgreSQL and decimal text on SQLite, where SQLAlchemy's
Numeric goes through a float and rounds ``9999999999999999.99`` to ``10000000000000000.00``.
Times are UTC on both (:class:`UtcDateTime`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

_CENT = Decimal("0.01")
_MAX_MONEY = Decimal("1e16")  # Numeric(18, 2): 16 digits before the point


class Money(TypeDecorator[Decimal]):
    """An exact amount with two decimals: Numeric(18, 2), stored as text on SQLite.

    SQLite has no decimal type and SQLAlchemy's Numeric converts through a float there, which
    loses digits beyond about 15; as text the Decimal round-trips exactly. Amounts are rounded
    half away from zero to cents on both backends (what PostgreSQL's numeric does), so the
    two store identical values.
    """

    impl = Numeric(18, 2)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """Decimal text on SQLite, the native numeric elsewhere."""
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(24))
        return dialect.type_descriptor(Numeric(18, 2, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        """Round to cents and refuse what Numeric(18, 2) cannot hold."""
        if value is None:
            return None
        try:
            amount = Decimal(value).quantize(_CENT, rounding=ROUND_HALF_UP)
        except InvalidOperation:
            raise ValueError(f"not an amount of money: {value!r}") from None
        if not amount.is_finite() or abs(amount) >= _MAX_MONEY:
            raise ValueError(f"amount {value} does not fit Numeric(18, 2)")
        return str(amount) if dialect.name == "sqlite" else amount

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        """Back to Decimal (from text on SQLite)."""
        return None if value is None else Decimal(value)


class UtcDateTime(TypeDecorator[datetime]):
    """A moment in UTC: ``timestamp with time zone`` on PostgreSQL, naive UTC text on SQLite
    (which has no zones); read back as an aware UTC datetime on both, so both agree."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        """Refuse a naive time (its moment is unknown); store UTC."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"a time without a zone cannot be stored: {value.isoformat()}")
        moment = value.astimezone(UTC)
        return moment.replace(tzinfo=None) if dialect.name == "sqlite" else moment

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Aware UTC on both backends."""
        if value is None:
            return None
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


metadata = MetaData()

houses = Table(
    "houses",
    metadata,
    Column("site", String, primary_key=True),
    Column("house", String, nullable=False),
    Column("currency", String(3), nullable=False),
)

sales = Table(
    "sales",
    metadata,
    Column("site", String, primary_key=True),
    Column("sale_date", Date, primary_key=True),
    Column("listing_url", String, nullable=False),
    Column("first_seen", Date, nullable=False),
    Column("last_seen", Date, nullable=False),
    ForeignKeyConstraint(["site"], ["houses.site"]),
)


def _fx_columns() -> list[Column[Any]]:
    """The conversion to the reference currency, kept with the lot and each observation."""
    return [
        Column("reference_currency", String(3), nullable=False),
        Column("sold_price_ref", Money),
        Column("estimate_low_ref", Money),
        Column("estimate_high_ref", Money),
        Column("rate_date", Date),
        Column("currency_known", Boolean, nullable=False),
        Column("fx_data_version", String, nullable=False),
    ]


def _lifecycle_columns() -> list[Column[Any]]:
    """An online lot's life as a crawl saw it (schema revision 0003; None on house lots and
    on rows written before it)."""
    return [
        Column("status", String(16), comment="upcoming, open, sold, unsold, withdrawn, "
               "closed-unknown; NULL where the page said not"),
        Column("start_time", UtcDateTime),
        Column("end_time", UtcDateTime),
        Column("bid_count", Integer),
        Column("starting_price", Money),
        Column("buy_now_price", Money),
        Column("reserve_met", Boolean),
        Column("seller_id", String, comment="the platform's id of the seller (sellers)"),
    ]  # fmt: skip


lots = Table(
    "lots",
    metadata,
    Column("site", String, primary_key=True),
    Column("lot_key", String, primary_key=True),
    Column("url", String, nullable=False),
    # None where the platform numbers no lots (eBay, Catawiki); schema revision 0002.
    Column("lot_number", Integer),
    Column("title", Text, nullable=False),
    Column("description", Text),
    Column("currency", String(3), nullable=False),
    Column("sale_date", Date, nullable=False),
    Column("image_urls", Text, nullable=False, comment="JSON list of absolute URLs"),
    Column("first_seen", Date, nullable=False),
    Column("last_seen", Date, nullable=False),
    Column("sold", Boolean, comment="NULL: not known (open, or not shown); revision 0003"),
    Column("sold_price", Money),
    Column("estimate_low", Money),
    Column("estimate_high", Money),
    *_fx_columns(),
    Column("current_bid", Money, comment="an open lot's current bid, in currency"),
    *_lifecycle_columns(),
    ForeignKeyConstraint(["site", "sale_date"], ["sales.site", "sales.sale_date"]),
)

observations = Table(
    "observations",
    metadata,
    Column("site", String, primary_key=True),
    Column("lot_key", String, primary_key=True),
    # The crawl (tasks/crawlid.py): the day, or the day and UTC time; revision 0003. Rows
    # written before it have their day as crawl id and no crawl_time.
    Column("crawl_id", String, primary_key=True),
    Column("crawl_date", Date, nullable=False),
    Column("crawl_time", UtcDateTime, comment="when the crawl started (nominally), UTC"),
    # What the lot page said that day, so a day's archive never shows a later day's text.
    Column("house", String, nullable=False),
    Column("url", String, nullable=False),
    Column("lot_number", Integer),
    Column("title", String, nullable=False),
    Column("description", Text),
    Column("sale_date", Date, nullable=False),
    Column("image_urls", Text, nullable=False, comment="JSON list of absolute URLs"),
    Column("sold", Boolean, comment="NULL: not known (open, or not shown); revision 0003"),
    Column("sold_price", Money),
    Column("estimate_low", Money),
    Column("estimate_high", Money),
    Column("currency", String(3), nullable=False),
    *_fx_columns(),
    Column("raw", Text, nullable=False, comment="JSON object of the extracted strings"),
    Column("current_bid", Money, comment="an open lot's current bid, in currency"),
    *_lifecycle_columns(),
    ForeignKeyConstraint(["site", "lot_key"], ["lots.site", "lots.lot_key"]),
)

# Which search queries found a lot on a crawl ("found by mambilla, not by mambila"); a lot
# from a dated listing has none.
search_hits = Table(
    "search_hits",
    metadata,
    Column("site", String, primary_key=True),
    Column("lot_key", String, primary_key=True),
    Column("crawl_id", String, primary_key=True),
    Column("query", String, primary_key=True),
    Column("crawl_date", Date, nullable=False),
    ForeignKeyConstraint(
        ["site", "lot_key", "crawl_id"],
        ["observations.site", "observations.lot_key", "observations.crawl_id"],
    ),
)


def _profile_columns() -> list[Column[Any]]:
    """What a seller's profile page showed (schema revision 0003); NULL where it did not."""
    return [
        Column("url", String, nullable=False),
        Column("name", Text),
        Column("location", Text),
        Column("rating", Money, comment="on the scale rating_scale (5 stars, 100 percent)"),
        Column("rating_scale", Integer),
        Column("ratings_count", Integer),
        Column("followers", Integer),
        Column("member_since", Date),
        Column("description", Text),
    ]


# The lots' sellers: one row per seller with its latest profile, and one per crawl that read it.
sellers = Table(
    "sellers",
    metadata,
    Column("site", String, primary_key=True),
    Column("seller_id", String, primary_key=True),
    Column("first_seen", Date, nullable=False),
    Column("last_seen", Date, nullable=False),
    *_profile_columns(),
)

seller_observations = Table(
    "seller_observations",
    metadata,
    Column("site", String, primary_key=True),
    Column("seller_id", String, primary_key=True),
    Column("crawl_id", String, primary_key=True),
    Column("crawl_date", Date, nullable=False),
    Column("crawl_time", UtcDateTime),
    *_profile_columns(),
    Column("raw", Text, nullable=False, comment="JSON object of the extracted strings"),
    ForeignKeyConstraint(["site", "seller_id"], ["sellers.site", "sellers.seller_id"]),
)
