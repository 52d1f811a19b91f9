"""Load a site's seller profiles of one crawl: ``sellers`` (latest) and ``seller_observations``.

Runs inside the site's load transaction (tasks/store.py), so a site's lots and sellers land
together or not at all. Like lots, a seller keeps first_seen/last_seen and the profile of its
most recent crawl; reprocessing a crawl replaces that crawl's observations, and a seller left
with no observation at all is removed (it was never really seen).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Connection, case, delete, exists, select

from tasks.crawlid import CrawlId
from tasks.jsonlines import read_models
from tasks.schema import seller_observations, sellers
from tasks.sellers import SellerRecord
from tasks.upsert import earlier, insert_for, later, upsert

PROFILE = ("url", "name", "location", "rating", "rating_scale", "ratings_count", "followers",
           "member_since", "description")  # fmt: skip


def read_sellers(files: Iterable[Path]) -> list[SellerRecord]:
    """The seller records of the processed sellers files that exist (a day processed by a
    release without sellers has none); UnstorableValueError for a line that does not
    validate."""
    return read_models([f for f in files if f.exists()], SellerRecord, "seller")


def _profile(record: SellerRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in PROFILE}


def seller_rows(records: list[SellerRecord], crawl: CrawlId) -> list[tuple[Any, dict[str, Any]]]:
    """(table, row) of every row the records write: for the storable-value check."""
    rows: list[tuple[Any, dict[str, Any]]] = []
    for r in records:
        rows.append((sellers, {"site": r.site, "seller_id": r.seller_id, **_profile(r)}))
        rows.append((seller_observations, _observation(r, crawl)))
    return rows


def _observation(record: SellerRecord, crawl: CrawlId) -> dict[str, Any]:
    return {
        "site": record.site,
        "seller_id": record.seller_id,
        "crawl_id": crawl.id,
        "crawl_date": crawl.day,
        "crawl_time": crawl.time,
        **_profile(record),
        "raw": json.dumps(record.raw, sort_keys=True, ensure_ascii=False),
    }


def load_sellers(conn: Connection, site: str, records: list[SellerRecord], crawl: CrawlId) -> int:
    """Upsert ``site``'s sellers of ``crawl`` and replace that crawl's seller observations;
    return how many sellers are new. Runs inside the caller's transaction."""
    day = crawl.day
    known = set(conn.execute(select(sellers.c.seller_id).where(sellers.c.site == site)).scalars())
    rows = [
        {"site": r.site, "seller_id": r.seller_id, "first_seen": day, "last_seen": day,
         **_profile(r)}
        for r in records
    ]  # fmt: skip

    def updates(new: Any) -> dict[str, ColumnElement[Any]]:
        newest = new.last_seen >= sellers.c.last_seen
        return {
            "first_seen": earlier(sellers.c.first_seen, new.first_seen),
            "last_seen": later(sellers.c.last_seen, new.last_seen),
            **{name: case((newest, new[name]), else_=sellers.c[name]) for name in PROFILE},
        }

    upsert(conn, sellers, rows, updates)
    table = seller_observations
    conn.execute(delete(table).where(table.c.crawl_id == crawl.id, table.c.site == site))
    observed = [_observation(r, crawl) for r in records]
    if observed:
        conn.execute(insert_for(conn, table), observed)
    seen = select(table.c.seller_id).where(
        table.c.site == sellers.c.site, table.c.seller_id == sellers.c.seller_id
    )
    conn.execute(delete(sellers).where(sellers.c.site == site, ~exists(seen)))
    return len({r.seller_id for r in records} - known)
