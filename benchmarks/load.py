"""Benchmark 5, load: rows written per second by the pipeline's idempotent database load
(``tasks/store.py: load_day``: read and validate the processed files, upsert houses, sales,
lots and observations in one transaction) against a bare ``executemany`` insert of the
observation rows into the same kind of database (SQLite, a fresh file each), side by side.

Rows, not lots: ``load_day`` writes each lot twice (its latest state in ``lots`` and the day's
row in ``observations``) plus a row per house and sale; counting lots would compare twice
the writing with once.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import tempfile
from datetime import date
from pathlib import Path

from benchmarks.common import Figure, median_seconds
from sites.demo.catalogue import HOUSES, Catalogue, DemoConfig
from sites.demo.pages import render_lot
from sites.loader import load_sites
from tasks.extract import extract_lot
from tasks.normalise import LotRecord, normalise_lot
from tasks.schema import observations
from tasks.store import load_day, observation_row, transaction

DAY = date(2026, 3, 14)
TARGET = 0.7


def demo_records(count: int) -> list[LotRecord]:
    """``count`` distinct lot records: the demo houses' lots, replicated with new keys."""
    os.environ.setdefault("DEMO_SITE_URL", "http://demo.test")
    sites = {s.name: s for s in load_sites()}
    catalogue = Catalogue(DemoConfig(lots_per_sale=20))
    base = [
        normalise_lot(sites[slug], extract_lot(sites[slug], render_lot(lot), url), url)
        for slug in HOUSES
        for lot in catalogue.lots(slug, DAY)
        for url in [f"http://demo.test/{slug}/lot/{lot.lot_id}"]
    ]
    return [
        base[i % len(base)].model_copy(update={"lot_key": f"{base[i % len(base)].lot_key}-{i}"})
        for i in range(count)
    ]


def bench_load(quick: bool) -> list[Figure]:
    """Rows/s of ``load_day`` into a fresh SQLite file, against bare executemany inserts."""
    count = 500 if quick else 5000
    repeats = 1 if quick else 3
    records = demo_records(count)
    sites = [s for s in load_sites() if s.name in {r.site for r in records}]
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        files = []
        for site in sites:
            path = Path(tmp) / f"{site.name}.jsonl"
            lines = [r.model_dump_json() for r in records if r.site == site.name]
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            files.append(str(path))
        rounds = itertools.count()  # a fresh database file per repetition

        def pipeline_load() -> None:
            url = f"sqlite:///{tmp}/load-{next(rounds)}.sqlite"
            report = load_day(DAY, sites, files, url)
            assert report.lots_loaded == count

        def bare_insert() -> None:
            url = f"sqlite:///{tmp}/bare-{next(rounds)}.sqlite"
            with transaction(url):  # the same schema, created empty
                pass
            rows = [observation_row(r, DAY) for r in records]
            columns = list(rows[0])
            sql = (
                f"INSERT INTO {observations.name} ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' for _ in columns)})"
            )
            values = [tuple(_plain(row[c]) for c in columns) for row in rows]
            with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
                conn.executemany(sql, values)

        # houses + sales + lots + observations
        written = len(sites) + len({(r.site, r.sale_date) for r in records}) + 2 * count
        ours = written / median_seconds(pipeline_load, repeats)
        bare = count / median_seconds(bare_insert, repeats)
    return [
        Figure(
            benchmark="load",
            case=f"load_day (idempotent upsert, 4 tables), {count:,} lots, {written:,} rows, "
            "SQLite",
            value=ours,
            unit="rows/s",
            baseline="bare executemany of the observation rows",
            baseline_value=bare,
            target=f">= {TARGET}",
            met=ours / bare >= TARGET,
        )
    ]


def _plain(value: object) -> object:
    """A value sqlite3 takes as it is (dates and decimals as text, lists as JSON-ish text)."""
    if value is None or isinstance(value, (int, float, str, bytes)):
        return value
    return str(value)
