"""Schema migrations: a database written by release 0.1 is upgraded in place, on SQLite and on
the real PostgreSQL the suite starts, losing no row and no value; an upgrade is all or
nothing; a database of a newer release is refused untouched.

``tests/fixtures/release-0.1.sqlite`` was written by release 0.1's own code (commit
df08180): two demo days of Harrow & Finch and a search of the demo LiveAuctioneers, with
search hits. Its rows are read with the sqlite3 module, not through the pipeline, so the
comparison does not depend on the code under test.
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, Table, create_engine, inspect

from tasks.migrate import BASELINE, HEAD, head_revision, upgrade_schema
from tasks.schema import metadata
from tasks.store import DatabaseVersionError, engine_for, table_rows

FIXTURE = Path(__file__).parent / "fixtures" / "release-0.1.sqlite"
TABLES = ("houses", "sales", "lots", "observations", "search_hits")
NEW_TABLES = ("sellers", "seller_observations")  # revision 0003
OLD_KEYS = {
    "houses": ["site"],
    "sales": ["site", "sale_date"],
    "lots": ["site", "lot_key"],
    "observations": ["site", "lot_key", "crawl_date"],
    "search_hits": ["site", "lot_key", "crawl_date", "query"],
}


def _old_rows(file: Path) -> dict[str, list[dict[str, Any]]]:
    """Every row of release 0.1's tables, as sqlite3 reads them, in key order."""
    with closing(sqlite3.connect(file)) as conn:
        conn.row_factory = sqlite3.Row
        found = {}
        for table in TABLES:
            keys = [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[5]]
            rows = conn.execute(f"SELECT * FROM {table} ORDER BY {', '.join(keys)}")
            found[table] = [dict(row) for row in rows]
    return found


def _copy(tmp_path: Path) -> Path:
    file = tmp_path / "auction.sqlite"
    shutil.copyfile(FIXTURE, file)
    return file


def _revision(file: Path) -> list[tuple[str]]:
    with closing(sqlite3.connect(file)) as conn:
        try:
            return conn.execute("SELECT version_num FROM alembic_version").fetchall()
        except sqlite3.OperationalError:  # no such table
            return []


def _dump(file: Path) -> list[str]:
    """The whole database as SQL text: schema and rows."""
    with closing(sqlite3.connect(file)) as conn:
        return list(conn.iterdump())


def _as_stored(value: Any) -> Any:
    """A value read through the pipeline, as release 0.1's SQLite file held it."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bool):
        return int(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _kept(old: dict[str, list[dict[str, Any]]], url: str) -> None:
    """Every old row is in the database at ``url`` with every value it had; new columns empty."""
    for table in TABLES:
        keys = OLD_KEYS[table]  # still unique: release 0.1 crawled once a day
        new = {tuple(_as_stored(row[k]) for k in keys): row for row in table_rows(url, table)}
        assert len(new) == len(old[table]), table
        for row in old[table]:
            got = new[tuple(row[k] for k in keys)]
            assert {name: _as_stored(got[name]) for name in row} == row, table
            if table in ("lots", "observations"):
                assert got["current_bid"] is None and got["status"] is None
                assert got["seller_id"] is None and got["bid_count"] is None
            if table in ("observations", "search_hits"):
                assert got["crawl_id"] == row["crawl_date"]  # the day's one crawl
    for table in NEW_TABLES:
        assert table_rows(url, table) == []


def test_the_0_1_fixture_holds_what_the_upgrade_must_keep() -> None:
    old = _old_rows(FIXTURE)
    assert [len(old[t]) for t in TABLES] == [2, 5, 67, 79, 24]
    assert not _revision(FIXTURE)  # release 0.1 had no version table


def test_revision_0001_is_release_0_1s_schema(tmp_path: Path) -> None:
    """The baseline revision, run on an empty file, builds exactly the tables 0.1 wrote."""
    built = tmp_path / "baseline.sqlite"
    engine = create_engine(f"sqlite:///{built}")
    with engine.connect() as conn:
        upgrade_schema(conn, metadata, to=BASELINE)
    engine.dispose()
    assert _revision(built) == [(BASELINE,)]
    with closing(sqlite3.connect(FIXTURE)) as old, closing(sqlite3.connect(built)) as new:
        for table in TABLES:
            assert list(new.execute(f"PRAGMA table_info({table})")) == list(
                old.execute(f"PRAGMA table_info({table})")
            ), table
            assert list(new.execute(f"PRAGMA foreign_key_list({table})")) == list(
                old.execute(f"PRAGMA foreign_key_list({table})")
            ), table


def test_a_0_1_sqlite_database_is_upgraded_in_place_keeping_every_row(tmp_path: Path) -> None:
    file = _copy(tmp_path)
    old = _old_rows(file)
    url = f"sqlite:///{file}"
    engine_for(url).dispose()
    assert _revision(file) == [(head_revision(),)]
    _kept(old, url)
    with closing(sqlite3.connect(file)) as conn:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    # Upgrading again changes nothing, not even a byte.
    before = file.read_bytes()
    engine_for(url).dispose()
    assert file.read_bytes() == before


def _schema(engine: Engine) -> dict[str, Any]:
    """Columns (name, nullability, type class), keys and references of the pipeline's tables."""
    found = inspect(engine)
    return {
        table: (
            sorted(
                (c["name"], c["nullable"], type(c["type"]).__name__)
                for c in found.get_columns(table)
            ),
            found.get_pk_constraint(table)["constrained_columns"],
            sorted(
                (tuple(fk["constrained_columns"]), fk["referred_table"])
                for fk in found.get_foreign_keys(table)
            ),
        )
        for table in (*TABLES, *NEW_TABLES)
    }


def _pg_empty(url: str) -> str:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    metadata.drop_all(engine)
    engine.dispose()
    return url


def _copy_rows_into(url: str, old: dict[str, list[dict[str, Any]]]) -> None:
    """Insert release 0.1's rows into a database built at revision 0001 (in key order)."""
    engine = create_engine(url)
    reflected = MetaData()
    with engine.begin() as conn:
        for table in TABLES:
            target = Table(table, reflected, autoload_with=conn)
            rows = [
                {
                    name: (bool(v) if name in ("sold", "currency_known") else v)
                    for name, v in row.items()
                }
                for row in old[table]
            ]
            if rows:
                conn.execute(target.insert(), rows)
    engine.dispose()


def test_a_0_1_postgresql_database_is_upgraded_in_place(postgres_url: str) -> None:
    url = _pg_empty(postgres_url)
    old = _old_rows(FIXTURE)
    engine = create_engine(url)
    with engine.connect() as conn:
        upgrade_schema(conn, metadata, to=BASELINE)
        # As release 0.1 left it: its tables, and no version table.
        conn.exec_driver_sql("DROP TABLE alembic_version")
        conn.commit()
    engine.dispose()
    _copy_rows_into(url, old)
    engine_for(url).dispose()
    _kept(old, url)
    again = {t: table_rows(url, t) for t in TABLES}
    engine_for(url).dispose()
    assert {t: table_rows(url, t) for t in TABLES} == again


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_upgraded_database_has_the_schema_of_a_new_one(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        upgraded_url = f"sqlite:///{_copy(tmp_path)}"
        fresh_url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
        engine_for(upgraded_url).dispose()
        fresh = engine_for(fresh_url)
        upgraded = create_engine(upgraded_url)
        assert _schema(upgraded) == _schema(fresh)
        fresh.dispose()
        upgraded.dispose()
        return
    url = _pg_empty(request.getfixturevalue("postgres_url"))
    fresh = engine_for(url)
    new_schema = _schema(fresh)
    fresh.dispose()
    _pg_empty(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        upgrade_schema(conn, metadata, to=BASELINE)
    engine.dispose()
    upgraded = engine_for(url)
    assert _schema(upgraded) == new_schema
    upgraded.dispose()


def test_a_failed_upgrade_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    """The second table's copy fails (a leftover table has the name Alembic's batch mode
    copies into); the first table's copy, already done, is rolled back with it."""
    file = _copy(tmp_path)
    with closing(sqlite3.connect(file)) as conn, conn:
        conn.execute("CREATE TABLE _alembic_tmp_observations (leftover INTEGER)")
    before = _dump(file)
    with pytest.raises(
        DatabaseVersionError, match=rf"from revision 0001 to {HEAD} failed.*_alembic_tmp_obs"
    ):
        engine_for(f"sqlite:///{file}")
    assert _dump(file) == before
    assert not _revision(file)


def test_a_killed_upgrade_leaves_the_old_database_or_the_upgraded_one(tmp_path: Path) -> None:
    """SIGKILL at several moments of the upgrade: the file is always either release 0.1's
    database, unchanged, or fully upgraded, and never damaged (run by hand, the six kills
    gave both outcomes; which ones a run gives depends on the machine's speed)."""
    old_dump = _dump(FIXTURE)
    script = (
        "import sys; from tasks.store import engine_for; "
        "print('go', flush=True); engine_for(sys.argv[1]).dispose()"
    )
    for delay in (0.0, 0.02, 0.05, 0.1, 0.2, 0.4):
        file = _copy(tmp_path)
        child = subprocess.Popen(
            [sys.executable, "-c", script, f"sqlite:///{file}"], stdout=subprocess.PIPE
        )
        assert child.stdout is not None and child.stdout.readline() == b"go\n"
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        with closing(sqlite3.connect(file)) as conn:  # a hot journal is rolled back on open
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        if _revision(file):
            assert _revision(file) == [(head_revision(),)]
            _kept(_old_rows(FIXTURE), f"sqlite:///{file}")
        else:
            assert _dump(file) == old_dump
        file.unlink()


def test_a_database_of_a_newer_release_is_refused_untouched(tmp_path: Path) -> None:
    file = _copy(tmp_path)
    engine_for(f"sqlite:///{file}").dispose()
    with closing(sqlite3.connect(file)) as conn, conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    before = file.read_bytes()
    with pytest.raises(DatabaseVersionError) as refused:
        engine_for(f"sqlite:///{file}")
    message = str(refused.value)
    assert "9999" in message and head_revision() in message
    assert "Upgrade auction-pipeline" in message
    assert file.read_bytes() == before


def test_the_head_constant_is_the_newest_revision_file() -> None:
    """``tasks.migrate.HEAD`` lets a database at the newest revision be used without loading
    Alembic; it must name the versions directory's head, or new revisions would never run."""
    from tasks.migrate import HEAD, scripts

    assert scripts().get_current_head() == HEAD


def test_a_database_at_the_newest_revision_is_opened_without_importing_alembic(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{_copy(tmp_path)}"
    engine_for(url).dispose()  # upgraded here
    probe = (
        "import sys; from tasks.store import engine_for; engine_for(sys.argv[1]).dispose(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))"
    )
    done = subprocess.run([sys.executable, "-c", probe, url], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
