"""Load the day's clean lots into the database: one writer, one transaction per site, idempotent.

Workers never touch the database; they write per-site files and this single loader reads
them. The schema is in :mod:`tasks.schema`, and one upsert path serves SQLite (the default, a
file in the data root) and PostgreSQL (``$AUCTION_PIPELINE_DATABASE_URL``, for several writers or
remote readers). SQLite runs in DELETE journal mode because WAL does not work on network
filesystems, where the data root usually lives.

Re-loading a crawl changes nothing: lots are keyed (site, lot_key) with first_seen/last_seen,
and observations are append-only, keyed (site, lot_key, crawl_id): a day's one crawl, or each
of the marketplaces' crawls every six hours (``tasks/crawlid.py``). Reprocessing a crawl after
a selector fix replaces its observations; a lot's latest state comes from its most recent
crawl, so loading an older day afterwards does not overwrite it.

Each site loads in its own transaction, after its rows are checked against what the columns
can hold: a site whose rows the database would refuse (an amount too large for Numeric(18, 2),
a lot number beyond a 32-bit integer, a NUL character PostgreSQL refuses in text) fails alone,
with the lot URL, field and value named, and the other sites load. An SQLite file that is
empty or damaged is refused before anything is written, never taken for a new database.

Each site's sellers load in the same transaction as its lots: ``sellers`` keyed (site,
seller_id) with first_seen/last_seen and the latest profile, ``seller_observations`` one row
per crawl, replaced when the day is reprocessed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Dialect,
    Engine,
    Integer,
    Table,
    case,
    create_engine,
    delete,
    event,
    exists,
    func,
    inspect,
    make_url,
    select,
)
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.elements import ColumnElement

from sites.loader import SiteDefinition
from tasks.crawlid import CrawlId, crawl_of
from tasks.following import close_unfollowed, lots_to_follow
from tasks.jsonlines import UnstorableValueError, read_models
from tasks.migrate import BASELINE, HEAD, SchemaVersionError, current_revision, upgrade_schema
from tasks.normalise import LotRecord
from tasks.runinfo import RunPlace, where_am_i
from tasks.schema import Money, houses, lots, metadata, observations, sales, search_hits
from tasks.seller_rows import load_sellers, read_sellers, seller_rows
from tasks.sellers import SellerRecord
from tasks.storage import sellers_beside
from tasks.upsert import earlier, insert_for, later, upsert

DATABASE_URL_ENV = "AUCTION_PIPELINE_DATABASE_URL"
SQLITE_BUSY_TIMEOUT_MS = 60_000
POSTGRES_CONNECT_TIMEOUT_S = 10
SQLITE_FILE_NAME = "auction.sqlite"
SQLITE_HEADER = b"SQLite format 3\x00"


class DatabaseConnectionError(RuntimeError):
    """The database could not be opened; the message names the URL (password hidden) and
    what to check."""


class DatabaseDamagedError(DatabaseConnectionError):
    """The database file exists but is empty, not SQLite, or fails SQLite's integrity check.

    Never repaired or replaced by the pipeline: the message names the file and how to restore
    it (the day's archive bags hold each day's tables).
    """


class DatabaseVersionError(DatabaseConnectionError):
    """The database's schema was written by a newer release, or cannot be upgraded; nothing
    was written to it (see :mod:`tasks.migrate`)."""


class DatabaseError(RuntimeError):
    """A statement failed; the message is the database's own first line, never the SQL."""


# Columns of ``lots`` that hold its latest state: taken from the most recent crawl.
_LOT_LATEST = [
    c.name for c in lots.columns if c.name not in ("site", "lot_key", "first_seen", "last_seen")
]


@dataclass(frozen=True)
class LoadReport:
    """What one load did to the database."""

    day: str
    database: str
    lots_loaded: int
    new_lots: int
    lots_total: int
    new_lots_by_site: dict[str, int] = field(default_factory=dict)
    # Sites left as they were in the database, with the reason (their rows did not fit).
    failed_sites: dict[str, str] = field(default_factory=dict)
    place: RunPlace = field(default_factory=where_am_i)
    crawl: str = ""  # the crawl's id (tasks/crawlid.py)


def database_url_for(data_root: Path) -> str:
    """The database to use: ``$AUCTION_PIPELINE_DATABASE_URL``, else SQLite in the data root.

    The SQLite URL is built with SQLAlchemy's ``URL.create``, which escapes the path: a data
    root containing ``?``, ``#`` or ``%`` keeps its database inside it.
    """
    configured = os.environ.get(DATABASE_URL_ENV)
    if configured:
        return configured
    url = URL.create("sqlite", database=str(data_root.absolute() / SQLITE_FILE_NAME))
    return url.render_as_string(hide_password=False)


def masked(url: str | URL) -> str:
    """``url`` with its password replaced by ``***``, for messages and reports."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def _normalised_url(url: str) -> URL:
    """Parse ``url``; a PostgreSQL URL without a driver gets psycopg (version 3)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseConnectionError(
            f"{url.split('://')[0]}://… is not a database URL; expected e.g. "
            "sqlite:////path/auction.sqlite or postgresql://user:password@host:5432/db "
            f"(check ${DATABASE_URL_ENV})"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise DatabaseConnectionError(
            f"{masked(parsed)}: only SQLite and PostgreSQL are supported "
            f"(check ${DATABASE_URL_ENV})"
        )
    return parsed


def _sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL; None for an in-memory database."""
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def _configure_sqlite(engine: Engine) -> None:
    """Safe settings on every new SQLite connection, and real BEGIN statements.

    pysqlite otherwise opens transactions lazily and commits around some statements; with
    its own transaction handling off, the BEGIN emitted here makes ``engine.begin()`` one
    transaction. Loads ask for BEGIN IMMEDIATE (``sqlite_begin`` execution option) so the
    writer takes its lock up front rather than failing to upgrade a read lock.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=DELETE")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())


def _db_reason(error: DBAPIError) -> str:
    """The database's own first line of ``error``: never the statement or its parameters."""
    text = str(error.orig).strip() if error.orig is not None else ""
    return (text.splitlines() or [type(error).__name__])[0][:300]


def check_sqlite_file(file: Path) -> None:
    """Refuse an SQLite file that exists but cannot be the pipeline's database.

    A 0-byte file (a copy cut short, a full disk, a ``touch``) or one that does not start with
    SQLite's header would otherwise be taken for a new, empty database, and every lot would
    load as "new". A missing file is fine: it is created.
    """
    try:
        with open(file, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise DatabaseConnectionError(f"cannot read {file}: {exc.strerror}") from exc
    restore = (
        "restore it from a backup, or move it away to start a new database (each day's "
        "tables are also in archive/<date>/data/tables/)"
    )
    if not header:
        raise DatabaseDamagedError(f"{file} is empty (0 bytes), not a database; {restore}")
    if header != SQLITE_HEADER:
        raise DatabaseDamagedError(
            f"{file} is not an SQLite database (it starts with {header[:16]!r}); {restore}"
        )


def _check_integrity(conn: Connection, file: Path) -> None:
    """SQLite's ``quick_check`` (every page and index readable); refuse a damaged file."""
    try:
        found = [str(row[0]) for row in conn.exec_driver_sql("PRAGMA quick_check(5)")]
    except DBAPIError as error:
        found = [_db_reason(error)]
    conn.rollback()  # end the transaction the PRAGMA began
    if found != ["ok"]:
        raise DatabaseDamagedError(
            f"{file} is damaged (SQLite's quick_check: {'; '.join(found)[:300]}); nothing was "
            "written to it. Restore it from a backup (each day's tables are also in "
            "archive/<date>/data/tables/), or try `sqlite3 FILE .recover`"
        )


def _engine(url: str, *, create_schema: bool) -> Engine:
    parsed = _normalised_url(url)
    file: Path | None = None
    if parsed.get_backend_name() == "sqlite":
        file = _sqlite_file(parsed)
        if file is not None:
            check_sqlite_file(file)
            if create_schema:
                file.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
    else:
        engine = create_engine(parsed, connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S})
    if create_schema:
        try:
            with _connect(engine) as conn:
                if file is not None and file.is_file() and file.stat().st_size:
                    _check_integrity(conn, file)
                upgrade_schema(conn, metadata)
        except SchemaVersionError as error:
            engine.dispose()
            raise DatabaseVersionError(str(error)) from error
        except DBAPIError as error:
            engine.dispose()
            raise DatabaseError(f"{masked(engine.url)}: {_db_reason(error)}") from error
        except BaseException:
            engine.dispose()
            raise
    return engine


def engine_for(url: str) -> Engine:
    """An engine for ``url`` with the pipeline's tables created if missing.

    SQLite gets DELETE journal mode, foreign keys and a busy timeout on every connection, and
    an existing file is checked first (:func:`check_sqlite_file`, ``quick_check``);
    ``postgresql://`` URLs use psycopg 3. Raises :class:`DatabaseConnectionError` naming the
    URL (password hidden) when the database cannot be reached, and its subclass
    :class:`DatabaseDamagedError` when the file is empty or damaged.
    """
    return _engine(url, create_schema=True)


def check_database(url: str) -> None:
    """Open the database as the load will (schema created, SQLite file checked), or raise.

    Called when a run starts, so an unreachable or damaged database is reported before the
    sites are crawled, not after.
    """
    _engine(url, create_schema=True).dispose()


def _connection_hint(engine: Engine, reason: str) -> str:
    if engine.dialect.name == "sqlite":
        if "not a database" in reason or "malformed" in reason:
            return (
                "the file is damaged: restore it from a backup (each day's tables are also in "
                "archive/<date>/data/tables/)"
            )
        return (
            "check that the directory exists and is writable by this user, and that its "
            "filesystem supports file locking"
        )
    return (
        "check that the server is running and reachable from this node (host, port, "
        "firewall), the user name and password, and that the database exists; "
        f"the URL comes from ${DATABASE_URL_ENV}"
    )


def _connect(engine: Engine) -> Connection:
    """Open a connection, turning a failure into an error that names the URL and the fix."""
    try:
        return engine.connect()
    except DBAPIError as error:
        reason = _db_reason(error)
        raise DatabaseConnectionError(
            f"cannot connect to {masked(engine.url)}: {reason}; {_connection_hint(engine, reason)}"
        ) from error


@contextmanager
def connection(
    url: str, *, create_schema: bool = True, writer: bool = False
) -> Iterator[Connection]:
    """A connection to ``url`` outside any transaction; the caller begins its own.

    A ``writer`` takes SQLite's write lock as each transaction starts (BEGIN IMMEDIATE). A
    statement the database refuses becomes :class:`DatabaseError` with the database's own
    first line, not a dump of the SQL and its parameters. The engine is disposed afterwards,
    so nothing stays open between the pipeline's steps.
    """
    engine = _engine(url, create_schema=create_schema)
    try:
        with _connect(engine) as conn:
            if writer:
                conn.execution_options(sqlite_begin="IMMEDIATE")
            try:
                yield conn
            except DBAPIError as error:
                raise DatabaseError(f"{masked(engine.url)}: {_db_reason(error)}") from error
    finally:
        engine.dispose()


@contextmanager
def transaction(
    url: str, *, create_schema: bool = True, writer: bool = False
) -> Iterator[Connection]:
    """A connection to ``url`` in one transaction, committed when the block succeeds.

    For readers of the database such as the archive export (see :func:`connection`).
    """
    with connection(url, create_schema=create_schema, writer=writer) as conn, conn.begin():
        yield conn


def read_records(files: Iterable[Path]) -> list[LotRecord]:
    """Read clean lots from the per-site JSON-lines files the process step wrote.

    Raises UnstorableValueError naming the file, line and lot URL of a record that does not
    validate (a file written by hand, or by a release with looser rules).
    """
    return read_models(files, LotRecord, "lot")


def _observed(record: LotRecord) -> dict[str, Any]:
    """What one crawl saw of a lot: the values kept both as latest state and as observation."""
    return {
        "sold": record.sold,
        "sold_price": record.sold_price,
        "current_bid": record.current_bid,
        "status": record.status,
        "start_time": record.start_time,
        "end_time": record.end_time,
        "bid_count": record.bid_count,
        "starting_price": record.starting_price,
        "buy_now_price": record.buy_now_price,
        "reserve_met": record.reserve_met,
        "seller_id": record.seller_id,
        "estimate_low": record.estimate_low,
        "estimate_high": record.estimate_high,
        "currency": record.currency,
        "reference_currency": record.reference_currency,
        "sold_price_ref": record.sold_price_ref,
        "estimate_low_ref": record.estimate_low_ref,
        "estimate_high_ref": record.estimate_high_ref,
        "rate_date": record.rate_date,
        "currency_known": record.currency_known,
        "fx_data_version": record.fx_data_version,
    }


def _described(record: LotRecord) -> dict[str, Any]:
    """What the lot page says the lot is: kept as latest state and in each observation."""
    return {
        "url": record.url,
        "lot_number": record.lot_number,
        "title": record.title,
        "description": record.description,
        "sale_date": record.sale_date,
        "image_urls": json.dumps(record.image_urls, ensure_ascii=False),
    }


def _lot_row(record: LotRecord, crawl: CrawlId) -> dict[str, Any]:
    return {
        "site": record.site,
        "lot_key": record.lot_key,
        **_described(record),
        "first_seen": crawl.day,
        "last_seen": crawl.day,
        **_observed(record),
    }


def observation_row(record: LotRecord, day: date | CrawlId) -> dict[str, Any]:
    """The ``observations`` row of one lot seen on a crawl (a date: the day's crawl; also the
    load benchmark's rows)."""
    crawl = crawl_of(day)
    return {
        "site": record.site,
        "lot_key": record.lot_key,
        "crawl_id": crawl.id,
        "crawl_date": crawl.day,
        "crawl_time": crawl.time,
        "house": record.house,
        **_described(record),
        **_observed(record),
        "raw": json.dumps(record.raw, sort_keys=True, ensure_ascii=False),
    }


def _count(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


_INT32 = 2**31  # PostgreSQL's integer; SQLite's is wider, but both backends must agree


def _unstorable(table: Table, row: Mapping[str, Any], dialect: Dialect) -> str | None:
    """Why ``row`` cannot be written to ``table`` (column, value, what fits), or None."""
    for column in table.columns:
        value = row.get(column.name)
        if value is None:
            continue
        if isinstance(column.type, Money):
            try:
                column.type.process_bind_param(value, dialect)
            except ValueError as exc:
                return f"{column.name} = {value}: {exc} (at most 16 digits before the point)"
        elif isinstance(column.type, Integer) and not -_INT32 <= int(value) < _INT32:
            return f"{column.name} = {value}: beyond a 32-bit integer"
        elif isinstance(value, str) and "\x00" in value:
            return f"{column.name} holds a NUL character, which PostgreSQL refuses in text"
    return None


def _check_storable(
    records: list[LotRecord], profiles: list[SellerRecord], crawl: CrawlId, dialect: Dialect
) -> None:
    """Raise UnstorableValueError for the first record whose rows the database would refuse."""
    rows = [
        (f"lot {r.url}", r.site, table, row)
        for r in records
        for table, row in ((lots, _lot_row(r, crawl)), (observations, observation_row(r, crawl)))
    ]
    rows += [
        (f"seller {p.seller_id} ({p.url})", p.site, table, row)
        for p in profiles
        for table, row in seller_rows([p], crawl)
    ]
    for what, site, table, row in rows:
        why = _unstorable(table, row, dialect)
        if why is not None:
            raise UnstorableValueError(
                f"{what}: {why}; none of {site}'s lots were loaded (the other sites were)"
            )


def _load_site(
    conn: Connection,
    site: SiteDefinition,
    records: list[LotRecord],
    profiles: list[SellerRecord],
    crawl: CrawlId,
) -> int:
    """Upsert one site's house, sales, lots, observations and sellers; return how many lots
    are new.

    Runs inside the caller's transaction. Reprocessing a crawl replaces its observations of
    the site: a lot the fixed selectors no longer find must not linger from the earlier
    extraction, and a lot left with no observation at all was never really seen. A lot's
    latest state comes from its latest day's crawls, loaded in time order.
    """
    day = crawl.day
    known = set(conn.execute(select(lots.c.lot_key).where(lots.c.site == site.name)).scalars())
    upsert(
        conn,
        houses,
        [{"site": site.name, "house": site.house, "currency": site.currency}],
        lambda new: {"house": new.house, "currency": new.currency},
    )
    sale_rows = [
        {
            "site": site.name,
            "sale_date": sale_date,
            "listing_url": site.sale_url_for(sale_date.isoformat()),
            "first_seen": day,
            "last_seen": day,
        }
        for sale_date in sorted({r.sale_date for r in records})
    ]
    upsert(
        conn,
        sales,
        sale_rows,
        lambda new: {
            "listing_url": new.listing_url,
            "first_seen": earlier(sales.c.first_seen, new.first_seen),
            "last_seen": later(sales.c.last_seen, new.last_seen),
        },
    )

    def lot_updates(new: Any) -> dict[str, ColumnElement[Any]]:
        newest = new.last_seen >= lots.c.last_seen
        return {
            "first_seen": earlier(lots.c.first_seen, new.first_seen),
            "last_seen": later(lots.c.last_seen, new.last_seen),
            **{name: case((newest, new[name]), else_=lots.c[name]) for name in _LOT_LATEST},
        }

    upsert(conn, lots, [_lot_row(r, crawl) for r in records], lot_updates)
    for table in (search_hits, observations):  # the hits first: they refer to observations
        conn.execute(delete(table).where(table.c.crawl_id == crawl.id, table.c.site == site.name))
    upsert(
        conn,
        observations,
        [observation_row(r, crawl) for r in records],
        lambda new: {c.name: new[c.name] for c in observations.columns if not c.primary_key},
    )
    hits = [
        {
            "site": r.site,
            "lot_key": r.lot_key,
            "crawl_id": crawl.id,
            "crawl_date": day,
            "query": query,
        }
        for r in records
        for query in dict.fromkeys(r.found_by)
    ]
    if hits:
        conn.execute(insert_for(conn, search_hits), hits)
    seen = select(observations.c.lot_key).where(
        observations.c.site == lots.c.site, observations.c.lot_key == lots.c.lot_key
    )
    conn.execute(delete(lots).where(lots.c.site == site.name, ~exists(seen)))
    load_sellers(conn, site.name, profiles, crawl)
    close_unfollowed(conn, site, crawl)
    return len({r.lot_key for r in records} - known)


def load_day(
    day: date | CrawlId,
    sites: list[SiteDefinition],
    processed_files: list[str],
    database_url: str,
) -> LoadReport:
    """Upsert the day's houses, sales, lots, observations and sellers, one transaction per
    site; each processed lots file's sellers file beside it (if any) is read with it.

    ``day`` is the crawl (a date: the day's one crawl, ``tasks/crawlid.py``). Re-running a
    crawl changes nothing; reprocessing it replaces its observations. A lot listed
    twice in the crawl's files is loaded once (the last record wins). Every record's site must
    be among ``sites``, whose definitions give the house and the sale's listing URL. A site
    whose rows the database would refuse, or whose transaction fails, is left as it was and
    named in ``failed_sites`` with the reason; the other sites load. Only an unusable
    database (unreachable, damaged) raises.
    """
    crawl = crawl_of(day)
    failed: dict[str, str] = {}
    read: list[LotRecord] = []
    read_profiles: list[SellerRecord] = []
    for file in map(Path, processed_files):
        try:
            read += read_records([file])
            read_profiles += read_sellers([sellers_beside(file)])
        except UnstorableValueError as exc:  # processed/<date>/<site>[.sellers].jsonl
            failed[file.stem] = str(exc)
    records = list({(r.site, r.lot_key): r for r in read}.values())
    profiles = list({(p.site, p.seller_id): p for p in read_profiles}.values())
    by_name = {site.name: site for site in sites}
    unknown = sorted({r.site for r in records} - by_name.keys())
    if unknown:
        raise ValueError(
            f"processed files hold lots of {', '.join(unknown)}, which are not among the "
            f"site definitions passed to load_day ({', '.join(sorted(by_name)) or 'none'})"
        )
    new_by_site: dict[str, int] = {}
    with connection(database_url, writer=True) as conn:
        for site in (s for s in sites if s.name not in failed):
            mine = [r for r in records if r.site == site.name]
            its_sellers = [p for p in profiles if p.site == site.name]
            try:
                _check_storable(mine, its_sellers, crawl, conn.dialect)
                with conn.begin():
                    new_by_site[site.name] = _load_site(conn, site, mine, its_sellers, crawl)
            except UnstorableValueError as exc:
                failed[site.name] = str(exc)
            except DBAPIError as error:
                failed[site.name] = (
                    f"{masked(database_url)} refused the site's rows: {_db_reason(error)}"
                )
        with conn.begin():
            after = _count(conn, lots)
    loaded = [r for r in records if r.site not in failed]
    return LoadReport(
        day=crawl.day.isoformat(),
        crawl=crawl.id,
        database=masked(database_url),
        lots_loaded=len(loaded),
        new_lots=sum(new_by_site.values()),
        lots_total=after,
        new_lots_by_site=new_by_site,
        failed_sites=failed,
    )


@contextmanager
def existing(database_url: str, table: Table) -> Iterator[Connection | None]:
    """A read transaction on the database at ``database_url`` if it exists and holds
    ``table``, else None; never creates a database (a first run has none)."""
    parsed = _normalised_url(database_url)
    if parsed.get_backend_name() == "sqlite":
        file = _sqlite_file(parsed)
        if file is None or not file.is_file():
            yield None
            return
    with transaction(database_url, create_schema=False) as conn:
        yield conn if inspect(conn).has_table(table.name) else None


@contextmanager
def reading(database_url: str, table: Table) -> Iterator[Connection | None]:
    """As :func:`existing`, for commands that only read (``lot-history``, the notebook): a
    database at another schema revision is refused with what to do, never upgraded by a
    reader (the next run upgrades it, in one transaction)."""
    with existing(database_url, table) as conn:
        if conn is not None:
            revision = current_revision(conn) or BASELINE
            if revision != HEAD:
                raise DatabaseVersionError(
                    f"{masked(database_url)} has schema revision {revision}; this release "
                    f"reads {HEAD}. If it is older, the next `auction-pipeline run` (or "
                    "`reprocess`) upgrades it in place, losing nothing; if newer, upgrade "
                    "auction-pipeline (git pull && infra/bootstrap.sh). Nothing was read"
                )
        yield conn


def followed_lots(database_url: str, site: SiteDefinition, crawl: date | CrawlId) -> list[str]:
    """The lots of ``site`` that ``crawl`` revisits (``tasks/following.py``); none without a
    database yet."""
    with existing(database_url, lots) as conn:
        return [] if conn is None else lots_to_follow(conn, site, crawl_of(crawl))


def recent_lot_counts(
    database_url: str, site: str, before: date | CrawlId, runs: int = 7
) -> list[int]:
    """Observations of ``site`` per crawl on the ``runs`` latest crawls before ``before``.

    Most recent first. A sudden drop against these counts suggests the site's layout changed.
    Reading never creates the database: with no database or no observations yet, [].
    """
    with existing(database_url, observations) as conn:
        if conn is None:
            return []
        query = (
            select(func.count())
            .where(observations.c.site == site, observations.c.crawl_id < crawl_of(before).id)
            .group_by(observations.c.crawl_id)
            .order_by(observations.c.crawl_id.desc())
            .limit(runs)
        )
        return [int(n) for n in conn.execute(query).scalars()]


def table_rows(database_url: str, table: str) -> list[dict[str, Any]]:
    """Every row of one of the pipeline's tables, ordered by primary key (to compare stores)."""
    if table not in metadata.tables:
        raise ValueError(f"no table {table!r}; the tables are {', '.join(metadata.tables)}")
    chosen = metadata.tables[table]
    with transaction(database_url) as conn:
        query = select(chosen).order_by(*chosen.primary_key.columns)
        return [dict(row) for row in conn.execute(query).mappings()]
