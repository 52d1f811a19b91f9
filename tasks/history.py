"""One lot's life over its crawls, and what each seller sold: read from the database, never
written.

``auction-pipeline lot-history SITE LOT`` prints :func:`lot_history` with
:func:`render_history`; the notebook plots the same rows and :func:`seller_activity`. The rows
have the columns of the bag's ``lot_history`` table (:data:`tasks.export.LOT_HISTORY_COLUMNS`),
so what the command shows, the CSV it writes and the archived table agree.

Reading never creates, upgrades or locks a database: a data root without one, or a database
of an older schema (the next run upgrades it), is refused with what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, select

from tasks.export import LOT_HISTORY_COLUMNS, ColumnSpec, render_csv
from tasks.schema import lots, observations, sellers
from tasks.store import masked, reading

EXAMPLES = 3
"""Lot keys a refusal shows, so the user sees what a key of the site looks like."""


class LotNotFound(LookupError):
    """The database holds no such lot (or site); the message says what it does hold."""


@dataclass(frozen=True)
class LotHistory:
    """A lot as the database knows it now, and every observation of it, oldest first."""

    site: str
    lot_key: str
    title: str
    url: str
    seller_id: str | None
    rows: list[dict[str, Any]]
    """One per crawl that saw the lot, in the columns of ``LOT_HISTORY_COLUMNS``."""

    def csv(self) -> bytes:
        """The rows as the bag's ``lot_history.csv`` writes them."""
        return render_csv(LOT_HISTORY_COLUMNS, self.rows)


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _no_database(where: str) -> LotNotFound:
    return LotNotFound(
        f"no database at {where} yet: run the pipeline first (auction-pipeline run), or give "
        "the data root that holds it (--data-root)"
    )


def _lot_count(conn: Connection, site: str, where: str) -> int:
    """How many lots of ``site`` the database holds; LotNotFound naming the sites it does
    hold when none."""
    count = int(conn.execute(select(func.count()).where(lots.c.site == site)).scalar_one())
    if not count:
        names = conn.execute(select(lots.c.site).distinct().order_by(lots.c.site)).scalars()
        held = ", ".join(names) or "none yet"
        raise LotNotFound(f"{where} holds no lots of site {site!r}; the sites it holds: {held}")
    return count


def _refusal(conn: Connection, site: str, lot: str, where: str) -> LotNotFound:
    """Why ``lot`` is not found: the site unknown (raised, naming the sites there are), or
    the lot (naming keys that contain it, else a few of the site's keys)."""
    count = _lot_count(conn, site, where)
    similar = list(
        conn.execute(
            select(lots.c.lot_key)
            .where(lots.c.site == site, lots.c.lot_key.like(f"%{_like_escaped(lot)}%", "\\"))
            .order_by(lots.c.lot_key)
            .limit(EXAMPLES)
        ).scalars()
    )
    if similar:
        hint = f"keys that contain it: {', '.join(similar)}"
    else:
        some = conn.execute(
            select(lots.c.lot_key)
            .where(lots.c.site == site)
            .order_by(lots.c.lot_key)
            .limit(EXAMPLES)
        ).scalars()
        hint = f"its keys look like {', '.join(some)}"
    return LotNotFound(
        f"{where} holds no lot {lot!r} of site {site!r} ({count} lots; {hint}). Give the "
        "lot_key (a column of the archive's lots.csv) or the lot's page URL as stored"
    )


def _lot_row(conn: Connection, site: str, lot: str) -> Any:
    """The lots row of ``lot``: its key, else a URL any observation of it was stored under."""
    row = conn.execute(select(lots).where(lots.c.site == site, lots.c.lot_key == lot)).first()
    if row is not None or "://" not in lot:
        return row
    key = conn.execute(
        select(observations.c.lot_key)
        .where(observations.c.site == site, observations.c.url == lot)
        .limit(1)
    ).scalar()
    if key is None:
        return None
    return conn.execute(select(lots).where(lots.c.site == site, lots.c.lot_key == key)).first()


def lot_history(database_url: str, site: str, lot: str) -> LotHistory:
    """Every observation of ``lot`` (its key, or its page URL) on ``site``, oldest crawl first.

    Raises :class:`LotNotFound` when the database, the site or the lot is not there, and
    :class:`tasks.store.DatabaseConnectionError` (or a subclass) when the database cannot be
    read as it is.
    """
    where = masked(database_url)
    with reading(database_url, lots) as conn:
        if conn is None:
            raise _no_database(where)
        row = _lot_row(conn, site, lot)
        if row is None:
            raise _refusal(conn, site, lot, where)
        query = (
            select(*(observations.c[spec.name] for spec in LOT_HISTORY_COLUMNS))
            .where(observations.c.site == site, observations.c.lot_key == row.lot_key)
            .order_by(observations.c.crawl_id)
        )
        rows = [dict(found) for found in conn.execute(query).mappings()]
    return LotHistory(site, row.lot_key, row.title, row.url, row.seller_id, rows)


SHOWN: tuple[tuple[str, str], ...] = (
    ("crawl_id", "crawl"),
    ("status", "status"),
    ("bid_count", "bids"),
    ("current_bid", "current bid"),
    ("sold_price", "sold price"),
    ("currency", "currency"),
    ("reserve_met", "reserve met"),
    ("end_time", "ends (UTC)"),
    ("seller_id", "seller"),
)
"""The columns ``lot-history`` prints, with their headings (``--csv`` writes them all)."""


def _printable(text: str) -> str:
    """``text`` with control characters escaped (``\\x1b``), so a title or URL a hostile
    site wrote cannot move the cursor or recolour the user's terminal."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _shown(value: Any, spec: ColumnSpec) -> str:
    if value is None:
        return ""
    if spec.kind == "money":
        return f"{Decimal(value):,.2f}"
    if spec.kind == "boolean":
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    return _printable(str(value))


def _table(headings: Sequence[str], cells: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    """Plain-text columns, two spaces apart; the columns in ``right`` aligned right."""
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headings)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if i in right else v.ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    return [line(headings), *(line(row) for row in cells)]


def render_history(history: LotHistory) -> str:
    """The lot, then one line per crawl: status, bids, prices, end time, seller."""
    specs = {spec.name: spec for spec in LOT_HISTORY_COLUMNS}
    cells = [[_shown(row[name], specs[name]) for name, _ in SHOWN] for row in history.rows]
    right = {i for i, (name, _) in enumerate(SHOWN) if specs[name].kind in ("money", "integer")}
    last = history.rows[-1] if history.rows else {}
    crawls = f"{len(history.rows)} observation{'s' * (len(history.rows) != 1)}"
    if history.rows:
        crawls += f", {history.rows[0]['crawl_id']} to {last['crawl_id']}"
    lines = [
        _printable(f"{history.site} {history.lot_key}: {history.title}"),
        _printable(history.url),
        f"{crawls}; last status: {last.get('status') or 'not shown'}",
        "",
        *_table([heading for _, heading in SHOWN], cells, right),
    ]
    return "\n".join(lines)


def most_observed(database_url: str, site: str, limit: int = 20) -> list[dict[str, Any]]:
    """The lots of ``site`` seen by the most crawls (the longest followed), most first: key,
    title, latest status, crawls, first and last crawl id. :class:`LotNotFound` without a
    database or without lots of ``site``."""
    o = observations
    crawls = func.count(o.c.crawl_id).label("crawls")
    query = (
        select(
            lots.c.lot_key,
            lots.c.title,
            lots.c.status,
            crawls,
            func.min(o.c.crawl_id).label("first_crawl"),
            func.max(o.c.crawl_id).label("last_crawl"),
        )
        .join(o, (o.c.site == lots.c.site) & (o.c.lot_key == lots.c.lot_key))
        .where(lots.c.site == site)
        .group_by(lots.c.lot_key, lots.c.title, lots.c.status)
        .order_by(crawls.desc(), lots.c.lot_key)
        .limit(limit)
    )
    with reading(database_url, lots) as conn:
        if conn is None:
            raise _no_database(masked(database_url))
        _lot_count(conn, site, masked(database_url))
        return [dict(row) for row in conn.execute(query).mappings()]


def render_most_observed(site: str, found: list[dict[str, Any]]) -> str:
    """``lot-history SITE`` without a lot: which lots there are to look at."""
    cells = [
        [_printable(row["lot_key"]), str(row["crawls"]), row["first_crawl"], row["last_crawl"],
         row["status"] or "", _printable(row["title"][:60])]
        for row in found
    ]  # fmt: skip
    headings = ["lot", "crawls", "first crawl", "last crawl", "status", "title"]
    lines = [f"the {len(found)} lots of {site} seen by the most crawls:", ""]
    return "\n".join([*lines, *_table(headings, cells, right={1})])


def seller_activity(database_url: str, site: str) -> list[dict[str, Any]]:
    """Per seller of ``site``: its name, how many lots it had, how many sold, went unsold or
    are still open, and the sold lots' total in the reference currency (summed exactly, in
    Python: SQLite would sum the amounts as floats). Lots in their latest known state; most
    lots first. [] when there is no database yet."""
    query = (
        select(
            lots.c.seller_id,
            sellers.c.name,
            lots.c.status,
            lots.c.sold,
            lots.c.reference_currency,
            lots.c.sold_price_ref,
        )
        .select_from(
            lots.outerjoin(
                sellers, (sellers.c.site == lots.c.site) & (sellers.c.seller_id == lots.c.seller_id)
            )
        )
        .where(lots.c.site == site, lots.c.seller_id.is_not(None))
    )
    with reading(database_url, lots) as conn:
        found = [] if conn is None else list(conn.execute(query))
    by_seller: dict[tuple[str, str], dict[str, Any]] = {}
    for lot in found:
        row = by_seller.setdefault(
            (lot.seller_id, lot.reference_currency),
            {"seller_id": lot.seller_id, "name": lot.name, "lots": 0, "sold": 0, "unsold": 0,
             "open": 0, "reference_currency": lot.reference_currency,
             "sold_total_ref": Decimal("0.00")},
        )  # fmt: skip
        row["lots"] += 1
        row["sold"] += lot.sold is True
        row["unsold"] += lot.sold is False
        row["open"] += lot.status in ("upcoming", "open")
        if lot.sold and lot.sold_price_ref is not None:
            row["sold_total_ref"] += lot.sold_price_ref
    return sorted(by_seller.values(), key=lambda row: (-row["lots"], row["seller_id"]))
