"""Export one day's tables from the database for the archive: CSV, Parquet and a data dictionary.

``lots`` holds each lot observed on the day with what that day's crawl saw of it (sold, prices,
estimates, converted amounts), so a day's bag reads the same when it is rebuilt after later
days changed the lots' latest state; ``observations`` holds the day's observations as stored;
``lot_history`` every observation up to the day of the lots observed that day (how their bids
moved); ``search_hits`` which search query found which lot that day; ``sellers`` the profiles
of the lots' sellers read that day.

The files are deterministic, so rebuilding a bag from the same data gives byte-identical files
and an unchanged manifest: rows in a fixed order that ends with the primary key, columns in the
order of :data:`LOT_COLUMNS` / :data:`OBSERVATION_COLUMNS`, and no timestamps (Parquet records
only the writer's version). Those two lists also write ``data-dictionary.md``, so the
dictionary cannot drift from the files.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Connection, Table, func, select

from infra.atomic import write_atomic
from tasks.schema import lots, observations, search_hits, seller_observations, sellers
from tasks.store import transaction

Kind = Literal["text", "integer", "money", "date", "timestamp", "boolean"]

ARROW_TYPES: dict[Kind, pa.DataType] = {
    "text": pa.string(),
    "integer": pa.int64(),
    "money": pa.decimal128(18, 2),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "boolean": pa.bool_(),
}
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "write_statistics": True,
    "use_dictionary": True,
    "version": "2.6",
}


@dataclass(frozen=True)
class ColumnSpec:
    """One exported column: where it is read from, its type, unit or format, and meaning."""

    name: str
    table: Table
    kind: Kind
    unit: str
    meaning: str


def _observed(table: Table) -> list[ColumnSpec]:
    """What one crawl saw of a lot, as kept in ``table``."""
    return [
        ColumnSpec(
            "status",
            table,
            "text",
            "upcoming, open, sold, unsold, withdrawn, closed-unknown",
            "where the lot was in its life, as its page said (a house's result: sold or "
            "unsold); empty when the page said neither",
        ),
        ColumnSpec(
            "sold",
            table,
            "boolean",
            "true/false",
            "true if shown sold, false if unsold or withdrawn; empty while open or unknown",
        ),
        ColumnSpec("currency", table, "text", "ISO 4217 code", "currency of the amounts below"),
        ColumnSpec(
            "sold_price",
            table,
            "money",
            "amount in currency",
            "the final price: hammer price at a house, winning bid online; empty if not sold",
        ),
        ColumnSpec(
            "current_bid",
            table,
            "money",
            "amount in currency",
            "an online lot's current bid as its page showed it; empty for house sales",
        ),
        ColumnSpec("bid_count", table, "integer", "bids", "bids placed so far, as shown"),
        ColumnSpec(
            "starting_price", table, "money", "amount in currency", "an online lot's opening bid"
        ),
        ColumnSpec(
            "buy_now_price",
            table,
            "money",
            "amount in currency",
            "price to buy at once (eBay's Buy It Now); empty if none is offered",
        ),
        ColumnSpec(
            "reserve_met",
            table,
            "boolean",
            "true/false",
            "whether the page said the reserve price was met; empty if it said not",
        ),
        ColumnSpec(
            "seller_id",
            table,
            "text",
            "identifier",
            "the platform's id of the lot's seller (eBay: user name); see sellers",
        ),
        ColumnSpec(
            "start_time",
            table,
            "timestamp",
            "ISO 8601, UTC",
            "when an online lot's bidding opened",
        ),
        ColumnSpec(
            "end_time",
            table,
            "timestamp",
            "ISO 8601, UTC",
            "when an online lot's bidding ends or ended (as scheduled on the page)",
        ),
        ColumnSpec("estimate_low", table, "money", "amount in currency", "low estimate"),
        ColumnSpec("estimate_high", table, "money", "amount in currency", "high estimate"),
        ColumnSpec(
            "reference_currency",
            table,
            "text",
            "ISO 4217 code",
            "currency the *_ref amounts are converted to",
        ),
        ColumnSpec(
            "sold_price_ref",
            table,
            "money",
            "amount in reference_currency",
            "sold_price converted at the rate of rate_date; empty if unsold or not converted",
        ),
        ColumnSpec(
            "estimate_low_ref",
            table,
            "money",
            "amount in reference_currency",
            "estimate_low converted; empty if no estimate or not converted",
        ),
        ColumnSpec(
            "estimate_high_ref",
            table,
            "money",
            "amount in reference_currency",
            "estimate_high converted; empty if no estimate or not converted",
        ),
        ColumnSpec(
            "rate_date",
            table,
            "date",
            "YYYY-MM-DD",
            "day of the ECB exchange rate used; empty if not converted",
        ),
        ColumnSpec(
            "currency_known",
            table,
            "boolean",
            "true/false",
            "false when the rate data does not know currency: amounts kept, never converted",
        ),
        ColumnSpec(
            "fx_data_version", table, "text", "free text", "exchange-rate data used for *_ref"
        ),
    ]


# Every value of a day's lots table comes from that day's observation (what the page said
# that day), so rebuilding an old day's bag after later days were loaded changes nothing.
LOT_COLUMNS: list[ColumnSpec] = [
    ColumnSpec("site", observations, "text", "site name", "site definition used"),
    ColumnSpec("house", observations, "text", "name", "auction house"),
    ColumnSpec(
        "lot_key",
        observations,
        "text",
        "identifier",
        "the lot within its site: the platform's lot id where the site file says where it is "
        "(lot_id), else its URL's last path segment, with the query if any",
    ),
    ColumnSpec("crawl_date", observations, "date", "YYYY-MM-DD", "day the lot was observed"),
    ColumnSpec(
        "crawl_id",
        observations,
        "text",
        "YYYY-MM-DD or YYYY-MM-DDTHHMMZ",
        "the day's last crawl that saw the lot: the day (its one crawl) or the day and UTC time",
    ),
    ColumnSpec(
        "lot_number",
        observations,
        "integer",
        "number",
        "lot number in the sale; empty where the platform numbers no lots (eBay, Catawiki)",
    ),
    ColumnSpec("title", observations, "text", "text", "lot title as shown that day"),
    ColumnSpec("description", observations, "text", "text", "lot description; may be empty"),
    ColumnSpec("url", observations, "text", "absolute URL", "the lot's page"),
    ColumnSpec(
        "sale_date",
        observations,
        "date",
        "YYYY-MM-DD",
        "date of the sale the lot is in; an online lot's end time's day in UTC",
    ),
    ColumnSpec("image_urls", observations, "text", "JSON list of URLs", "the lot's images"),
    ColumnSpec(
        "first_seen", lots, "date", "YYYY-MM-DD", "earliest crawl date up to this day with the lot"
    ),
    *_observed(observations),
]

OBSERVATION_COLUMNS: list[ColumnSpec] = [
    ColumnSpec("site", observations, "text", "site name", "site definition of the lot"),
    ColumnSpec("lot_key", observations, "text", "identifier", "the lot within its site"),
    ColumnSpec("crawl_id", observations, "text", "YYYY-MM-DD[THHMMZ]", "the crawl"),
    ColumnSpec("crawl_date", observations, "date", "YYYY-MM-DD", "day of the observation"),
    ColumnSpec(
        "crawl_time",
        observations,
        "timestamp",
        "ISO 8601, UTC",
        "when a timed crawl started (nominally); empty for a day's one crawl",
    ),
    *_observed(observations),
    ColumnSpec(
        "raw",
        observations,
        "text",
        "JSON object, sorted keys",
        "strings extracted from the page, before parsing, for audit",
    ),
]

# A lot's moving parts over its crawls; what does not move (title, images...) is in lots.
_HISTORY_FIELDS = (
    "site", "lot_key", "crawl_id", "crawl_date", "crawl_time", "status", "sold", "currency",
    "current_bid", "bid_count", "starting_price", "buy_now_price", "reserve_met", "sold_price",
    "end_time", "seller_id", "reference_currency", "sold_price_ref",
)  # fmt: skip
LOT_HISTORY_COLUMNS: list[ColumnSpec] = [
    spec for name in _HISTORY_FIELDS for spec in OBSERVATION_COLUMNS if spec.name == name
]

SEARCH_HIT_COLUMNS: list[ColumnSpec] = [
    ColumnSpec("site", search_hits, "text", "site name", "site definition of the lot"),
    ColumnSpec("lot_key", search_hits, "text", "identifier", "the lot within its site"),
    ColumnSpec("crawl_id", search_hits, "text", "YYYY-MM-DD[THHMMZ]", "the crawl"),
    ColumnSpec("crawl_date", search_hits, "date", "YYYY-MM-DD", "day of the observation"),
    ColumnSpec(
        "query",
        search_hits,
        "text",
        "search terms",
        "a query of the site file's search: whose top results held the lot that day",
    ),
]

SELLER_COLUMNS: list[ColumnSpec] = [
    ColumnSpec("site", seller_observations, "text", "site name", "site definition used"),
    ColumnSpec(
        "seller_id",
        seller_observations,
        "text",
        "identifier",
        "the platform's id of the seller (eBay: user name), as lots name it in seller_id",
    ),
    ColumnSpec("crawl_date", seller_observations, "date", "YYYY-MM-DD", "day the profile was read"),
    ColumnSpec(
        "crawl_id",
        seller_observations,
        "text",
        "YYYY-MM-DD[THHMMZ]",
        "the day's last crawl that read it",
    ),
    ColumnSpec("url", seller_observations, "text", "absolute URL", "the seller's profile page"),
    ColumnSpec("name", seller_observations, "text", "text", "the seller's name as shown"),
    ColumnSpec(
        "location", seller_observations, "text", "free text", "where the profile says it is"
    ),
    ColumnSpec(
        "rating",
        seller_observations,
        "money",
        "number out of rating_scale",
        "the platform's rating: percent positive feedback (eBay), stars (LiveAuctioneers), "
        "feedback score (Catawiki)",
    ),
    ColumnSpec("rating_scale", seller_observations, "integer", "5 or 100", "what rating is out of"),
    ColumnSpec(
        "ratings_count",
        seller_observations,
        "integer",
        "ratings",
        "how many ratings, reviews or feedback entries the rating counts",
    ),
    ColumnSpec("followers", seller_observations, "integer", "accounts", "followers shown"),
    ColumnSpec(
        "member_since", seller_observations, "date", "YYYY-MM-DD", "when the account was opened"
    ),
    ColumnSpec("description", seller_observations, "text", "text", "the profile's about text"),
    ColumnSpec(
        "first_seen",
        sellers,
        "date",
        "YYYY-MM-DD",
        "earliest crawl date up to this day that read the profile",
    ),
    ColumnSpec(
        "raw",
        seller_observations,
        "text",
        "JSON object, sorted keys",
        "strings extracted from the profile, before parsing, for audit",
    ),
]

TABLES: dict[str, tuple[list[ColumnSpec], str]] = {
    "lots": (
        LOT_COLUMNS,
        "One row per lot observed on the day: what the lot is, and what the day's last crawl "
        "of it saw. Ordered by site, lot_number, lot_key.",
    ),
    "observations": (
        OBSERVATION_COLUMNS,
        "The day's observations as stored, one per lot and crawl (append-only in the "
        "database; the marketplaces are crawled several times a day). Ordered by site, "
        "lot_key, crawl_id.",
    ),
    "lot_history": (
        LOT_HISTORY_COLUMNS,
        "Every observation up to this day of each lot observed on the day, one row per lot "
        "and crawl, oldest first: how its status, bids and price moved (join lots on site and "
        "lot_key for what the lot is). Ordered by site, lot_key, crawl_id.",
    ),
    "search_hits": (
        SEARCH_HIT_COLUMNS,
        "Which search query found which lot that day, one row per pair (lots from a dated "
        "listing have none). Ordered by site, lot_key, query.",
    ),
    "sellers": (
        SELLER_COLUMNS,
        "The sellers of the day's lots whose profile pages were read that day, one row per "
        "seller, as the profile showed it that day. Ordered by site, seller_id.",
    ),
}


def _first_seen(table: Table, key: str, day: date) -> Any:
    """The earliest crawl date up to ``day`` of each row's ``key`` (lot_key, seller_id)."""
    earlier = table.alias("earlier")
    return (
        select(func.min(earlier.c.crawl_date))
        .where(
            earlier.c.site == table.c.site,
            earlier.c[key] == table.c[key],
            earlier.c.crawl_date <= day,
        )
        .scalar_subquery()
        .label("first_seen")
    )


def _last_crawl_of_day(table: Table, key: str, day: date) -> Any:
    """Whether a row is its ``key``'s last crawl of ``day`` (the day's state of it)."""
    later = table.alias("later")
    newest = (
        select(func.max(later.c.crawl_id))
        .where(
            later.c.site == table.c.site,
            later.c[key] == table.c[key],
            later.c.crawl_date == day,
        )
        .scalar_subquery()
    )
    return table.c.crawl_id == newest


def _day_rows(
    conn: Connection, table: Table, specs: list[ColumnSpec], key: str, day: date, *order: Any
) -> list[dict[str, Any]]:
    """One row per ``key`` of the day in ``table`` (an observations table): its last crawl
    of the day, in the columns of ``specs``, ``first_seen`` computed from the earlier ones."""
    columns = [
        _first_seen(table, key, day) if spec.name == "first_seen" else table.c[spec.name]
        for spec in specs
    ]
    query = (
        select(*columns)
        .where(table.c.crawl_date == day, _last_crawl_of_day(table, key, day))
        .order_by(*order)
    )
    return [dict(row) for row in conn.execute(query).mappings()]


def _query_lots(conn: Connection, day: date) -> list[dict[str, Any]]:
    o = observations
    return _day_rows(conn, o, LOT_COLUMNS, "lot_key", day, o.c.site, o.c.lot_number, o.c.lot_key)


def _query_observations(conn: Connection, day: date) -> list[dict[str, Any]]:
    query = (
        select(*(observations.c[spec.name] for spec in OBSERVATION_COLUMNS))
        .where(observations.c.crawl_date == day)
        .order_by(*observations.primary_key.columns)
    )
    return [dict(row) for row in conn.execute(query).mappings()]


def _query_lot_history(conn: Connection, day: date) -> list[dict[str, Any]]:
    o, seen = observations, observations.alias("seen")
    observed_that_day = (
        select(seen.c.lot_key)
        .where(seen.c.site == o.c.site, seen.c.lot_key == o.c.lot_key, seen.c.crawl_date == day)
        .exists()
    )
    query = (
        select(*(o.c[spec.name] for spec in LOT_HISTORY_COLUMNS))
        .where(o.c.crawl_date <= day, observed_that_day)
        .order_by(*o.primary_key.columns)
    )
    return [dict(row) for row in conn.execute(query).mappings()]


def _query_search_hits(conn: Connection, day: date) -> list[dict[str, Any]]:
    query = (
        select(*(search_hits.c[spec.name] for spec in SEARCH_HIT_COLUMNS))
        .where(search_hits.c.crawl_date == day)
        .order_by(*search_hits.primary_key.columns)
    )
    return [dict(row) for row in conn.execute(query).mappings()]


def _query_sellers(conn: Connection, day: date) -> list[dict[str, Any]]:
    table = seller_observations
    return _day_rows(conn, table, SELLER_COLUMNS, "seller_id", day, *table.primary_key.columns)


def _csv_text(value: Any, kind: Kind) -> str:
    if value is None:
        return ""
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "money":
        return f"{Decimal(value):.2f}"
    if kind == "date":
        return str(value.isoformat())
    if kind == "timestamp":
        return str(value.astimezone(UTC).isoformat().replace("+00:00", "Z"))
    return str(value)


def render_csv(columns: Sequence[ColumnSpec], rows: Sequence[dict[str, Any]]) -> bytes:
    """CSV with a header row; empty field = missing, true/false, ISO dates, 2-decimal amounts."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([spec.name for spec in columns])
    for row in rows:
        writer.writerow([_csv_text(row[spec.name], spec.kind) for spec in columns])
    return buffer.getvalue().encode("utf-8")


def arrow_schema(columns: Sequence[ColumnSpec]) -> pa.Schema:
    """The Parquet schema of a file: types from the column kinds, meanings as field metadata."""
    return pa.schema(
        [
            pa.field(
                spec.name,
                ARROW_TYPES[spec.kind],
                metadata={"unit": spec.unit, "meaning": spec.meaning},
            )
            for spec in columns
        ]
    )


def render_parquet(columns: Sequence[ColumnSpec], rows: Sequence[dict[str, Any]]) -> bytes:
    """Parquet bytes of ``rows``; the same rows always give the same bytes."""
    schema = arrow_schema(columns)
    table = pa.Table.from_pylist(
        [{spec.name: row[spec.name] for spec in columns} for row in rows], schema=schema
    )
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **PARQUET_OPTIONS)
    return bytes(sink.getvalue().to_pybytes())


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_data_dictionary(day: date) -> bytes:
    """``data-dictionary.md``: per file, each column's type, unit or format, and meaning."""
    lines = [
        f"# Data dictionary: tables for {day.isoformat()}",
        "",
        "Each table comes as CSV (UTF-8, header row, `\\n` line ends; an empty field is a "
        "missing value, booleans are `true`/`false`, dates `YYYY-MM-DD`, times ISO 8601 in "
        "UTC (`2026-03-19T18:00:00Z`), amounts decimal numbers with two decimals) and as "
        "Parquet with the types below. Amounts are exact decimals, never floats.",
    ]
    for name, (columns, about) in TABLES.items():
        lines += [
            "",
            f"## {name}.csv, {name}.parquet",
            "",
            about,
            "",
            "| column | type | unit / format | meaning |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {spec.name} | {ARROW_TYPES[spec.kind]} | {_cell(spec.unit)} | "
            f"{_cell(spec.meaning)} |"
            for spec in columns
        ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def export_day(database_url: str, day: date, out_dir: Path) -> list[Path]:
    """Write the day's lots and observations (CSV and Parquet) and their data dictionary.

    Returns the paths written, in a fixed order. Each file is written atomically; re-running
    on the same data gives byte-identical files.
    """
    with transaction(database_url) as conn:
        contents = {
            "lots": _query_lots(conn, day),
            "observations": _query_observations(conn, day),
            "lot_history": _query_lot_history(conn, day),
            "search_hits": _query_search_hits(conn, day),
            "sellers": _query_sellers(conn, day),
        }
    written = []
    for name, (columns, _) in TABLES.items():
        rows = contents[name]
        for path, data in (
            (out_dir / f"{name}.csv", render_csv(columns, rows)),
            (out_dir / f"{name}.parquet", render_parquet(columns, rows)),
        ):
            write_atomic(path, data)
            written.append(path)
    dictionary = out_dir / "data-dictionary.md"
    write_atomic(dictionary, render_data_dictionary(day))
    written.append(dictionary)
    return written
