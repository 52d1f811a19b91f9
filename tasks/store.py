"""Load the day's clean lots into the database: one writer, one transaction, idempotent.

Workers never touch the database; they write per-site files and this single loader reads
them. SQLite runs in DELETE journal mode because WAL does not work on network filesystems,
where the data root usually lives. Re-loading a day changes nothing: lots are keyed
(site, lot_key) and observations (site, lot_key, crawl_date), both written with upserts.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sites.loader import SiteDefinition
from tasks.normalise import LotRecord
from tasks.runinfo import RunPlace, where_am_i

SCHEMA = """
CREATE TABLE IF NOT EXISTS houses (
    site TEXT PRIMARY KEY,
    house TEXT NOT NULL,
    currency TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS lots (
    site TEXT NOT NULL REFERENCES houses(site),
    lot_key TEXT NOT NULL,
    url TEXT NOT NULL,
    lot_number INTEGER NOT NULL,
    title TEXT NOT NULL,
    description TEXT,
    currency TEXT NOT NULL,
    estimate_low TEXT,
    estimate_high TEXT,
    sold INTEGER NOT NULL,
    sold_price TEXT,
    sale_date TEXT NOT NULL,
    image_urls TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (site, lot_key)
);
CREATE TABLE IF NOT EXISTS observations (
    site TEXT NOT NULL,
    lot_key TEXT NOT NULL,
    crawl_date TEXT NOT NULL,
    sold INTEGER NOT NULL,
    sold_price TEXT,
    estimate_low TEXT,
    estimate_high TEXT,
    raw TEXT NOT NULL,
    PRIMARY KEY (site, lot_key, crawl_date),
    FOREIGN KEY (site, lot_key) REFERENCES lots(site, lot_key)
);
"""

UPSERT_HOUSE = """
INSERT INTO houses (site, house, currency) VALUES (?, ?, ?)
ON CONFLICT (site) DO UPDATE SET house = excluded.house, currency = excluded.currency
"""

UPSERT_LOT = """
INSERT INTO lots (site, lot_key, url, lot_number, title, description, currency, estimate_low,
                  estimate_high, sold, sold_price, sale_date, image_urls, first_seen, last_seen)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (site, lot_key) DO UPDATE SET
    url = excluded.url, lot_number = excluded.lot_number, title = excluded.title,
    description = excluded.description, currency = excluded.currency,
    estimate_low = excluded.estimate_low, estimate_high = excluded.estimate_high,
    sold = excluded.sold, sold_price = excluded.sold_price, sale_date = excluded.sale_date,
    image_urls = excluded.image_urls,
    first_seen = min(lots.first_seen, excluded.first_seen),
    last_seen = max(lots.last_seen, excluded.last_seen)
"""

# Same key, same values on a re-run: nothing changes. A reprocess after a selector fix
# replaces that day's observation with the corrected one.
UPSERT_OBSERVATION = """
INSERT INTO observations (site, lot_key, crawl_date, sold, sold_price, estimate_low,
                          estimate_high, raw)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (site, lot_key, crawl_date) DO UPDATE SET
    sold = excluded.sold, sold_price = excluded.sold_price,
    estimate_low = excluded.estimate_low, estimate_high = excluded.estimate_high,
    raw = excluded.raw
"""


@dataclass(frozen=True)
class LoadReport:
    """What one load did to the database."""

    day: str
    database: str
    lots_loaded: int
    new_lots: int
    lots_total: int
    place: RunPlace = field(default_factory=where_am_i)


def connect(path: Path) -> sqlite3.Connection:
    """Open the database with settings that are safe on a shared filesystem."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.executescript(SCHEMA)
    return conn


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def read_records(files: Iterable[Path]) -> list[LotRecord]:
    """Read clean lots from the per-site JSON-lines files the process step wrote."""
    records = []
    for file in files:
        for line in file.read_text(encoding="utf-8").splitlines():
            if line:
                records.append(LotRecord.model_validate_json(line))
    return records


def load_day(
    day: date, sites: list[SiteDefinition], processed_files: list[str], database: str
) -> LoadReport:
    """Upsert the day's lots and observations in one transaction; re-running is harmless."""
    records = read_records(Path(f) for f in processed_files)
    crawl_date = day.isoformat()
    conn = connect(Path(database))
    try:
        conn.execute("BEGIN IMMEDIATE")
        before = conn.execute("SELECT count(*) FROM lots").fetchone()[0]
        conn.executemany(UPSERT_HOUSE, [(s.name, s.house, s.currency) for s in sites])
        conn.executemany(
            UPSERT_LOT,
            [
                (
                    r.site,
                    r.lot_key,
                    r.url,
                    r.lot_number,
                    r.title,
                    r.description,
                    r.currency,
                    _text(r.estimate_low),
                    _text(r.estimate_high),
                    int(r.sold),
                    _text(r.sold_price),
                    r.sale_date.isoformat(),
                    json.dumps(r.image_urls),
                    crawl_date,
                    crawl_date,
                )
                for r in records
            ],
        )
        conn.executemany(
            UPSERT_OBSERVATION,
            [
                (
                    r.site,
                    r.lot_key,
                    crawl_date,
                    int(r.sold),
                    _text(r.sold_price),
                    _text(r.estimate_low),
                    _text(r.estimate_high),
                    json.dumps(r.raw, sort_keys=True, ensure_ascii=False),
                )
                for r in records
            ],
        )
        after = conn.execute("SELECT count(*) FROM lots").fetchone()[0]
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
    return LoadReport(
        day=crawl_date,
        database=database,
        lots_loaded=len(records),
        new_lots=after - before,
        lots_total=after,
    )
