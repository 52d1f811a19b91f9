"""Bring a database's schema to the one this release writes, in place, before it is used.

Databases outlive releases: the research group's SQLite file (or PostgreSQL database) holds
every day since the first crawl. Each schema change is an Alembic revision in
``tasks/migrations/versions/``; the version a database is at is in its ``alembic_version``
table. :func:`upgrade_schema` runs on every connection the pipeline opens for writing:

- a new, empty database gets the current tables and is stamped at the newest revision;
- a database of release 0.1 (tables, no ``alembic_version``) is taken to be at revision
  0001 and upgraded from there;
- a database at an older revision is upgraded; one at the newest revision is left alone;
- a database at a revision this release does not know (written by a newer release) is
  refused with both versions named, before anything is written.

All revisions run in one transaction (PostgreSQL and SQLite both have transactional DDL):
an upgrade that fails or is killed leaves the database exactly as it was. On SQLite, foreign
keys are switched off while tables are copied (Alembic's batch mode: SQLite cannot alter a
column) and checked with ``PRAGMA foreign_key_check`` before the commit.

To change the schema: edit the tables in :mod:`tasks.schema`, and add
``versions/r000N_<what>.py`` with ``revision = "000N"``, ``down_revision`` the previous one,
and an ``upgrade()`` that turns the previous schema into the new one without losing a row;
``tests/test_migrations.py`` checks that an upgraded database of every earlier release has
the tables a new one gets.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, MetaData, inspect, text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:  # Alembic is imported only when a database needs upgrading (0.2 s)
    from alembic.config import Config
    from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).with_name("migrations")
BASELINE = "0001"
"""The revision of release 0.1's schema, the first one: its databases have no version table."""
HEAD = "0003"
"""The newest revision in ``migrations/versions/``: a database at it is used without loading
Alembic, on every connection the pipeline opens. ``tests/test_migrations.py`` checks that it
is the versions directory's head; raise it with each new revision."""


class SchemaVersionError(RuntimeError):
    """The database's schema cannot be used by this release; the message says why and what to do."""


@functools.lru_cache(maxsize=1)
def scripts() -> ScriptDirectory:
    """Alembic's view of ``migrations/versions/`` (imports Alembic)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    """The newest schema revision this release knows, e.g. ``"0002"``."""
    return HEAD


def current_revision(conn: Connection) -> str | None:
    """The revision the database says it is at, ``None`` when it has no version table."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _known(revision: str) -> bool:
    return revision in {script.revision for script in scripts().walk_revisions()}


def upgrade_schema(conn: Connection, metadata: MetaData, to: str | None = None) -> str | None:
    """Bring the database on ``conn`` to :func:`head_revision`; return the revision it was at.

    ``conn`` is outside any transaction: this runs its own and commits it. ``metadata`` holds
    the current tables, created directly in a database that has none of them. Returns
    ``None`` for a database created here; raises :class:`SchemaVersionError` for a database
    of a newer release, naming both revisions. ``to`` stops at an earlier revision (always by
    running the revisions), e.g. to build a database as an old release left it.
    """
    head = to or head_revision()
    was = current_revision(conn)
    conn.rollback()  # end the read's implicit transaction before choosing how to begin
    if was == head:
        return was
    if was is not None and not _known(was):
        raise SchemaVersionError(
            f"{_where(conn)} has schema revision {was}, newer than this auction-pipeline "
            f"knows (up to {head}); it was written by a later release. Upgrade "
            "auction-pipeline (git pull && infra/bootstrap.sh), or use the release that wrote it"
        )
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:  # takes effect only outside a transaction, hence on the driver's connection
        _sqlite_pragma(conn, "foreign_keys=OFF")
    from alembic import command

    try:
        with conn.begin():
            tables = set(inspect(conn).get_table_names())
            fresh = was is None and not tables & set(metadata.tables) and to is None
            if fresh:
                metadata.create_all(conn)
                command.stamp(_config(conn, metadata), head)
            else:  # without a version table, from revision 0001 (which adds what 0.1 lacked)
                command.upgrade(_config(conn, metadata), head)
            if sqlite:
                _check_foreign_keys(conn)
    except DBAPIError as error:
        reason = (str(error.orig).strip().splitlines() or [type(error).__name__])[0][:300]
        raise SchemaVersionError(
            f"{_where(conn)}: upgrading the schema from revision {was or BASELINE} to {head} "
            f"failed ({reason}); nothing was changed. Report this with the database file"
        ) from error
    finally:
        if sqlite:
            _sqlite_pragma(conn, "foreign_keys=ON")
    return None if fresh else (was or BASELINE)


def _sqlite_pragma(conn: Connection, setting: str) -> None:
    """Set a PRAGMA outside any transaction (the pipeline's SQLite connections run in
    autocommit at the driver and emit their own BEGIN; see tasks.store)."""
    driver = conn.connection.driver_connection
    assert driver is not None  # an open connection always has one
    driver.execute(f"PRAGMA {setting}")


def _where(conn: Connection) -> str:
    return conn.engine.url.render_as_string(hide_password=True)


def _config(conn: Connection | None = None, metadata: MetaData | None = None) -> Config:
    """Alembic's configuration: the versions directory, and the connection env.py runs on."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes.update(connection=conn, metadata=metadata)
    return config


def _check_foreign_keys(conn: Connection) -> None:
    """Refuse (rolling back) an upgrade after which some row points to no row: never commit
    a database whose references a copy broke."""
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchmany(5)
    if broken:
        found = "; ".join(f"{row[0]} row {row[1]} -> {row[2]}" for row in broken)
        raise SchemaVersionError(
            f"{_where(conn)}: the schema upgrade would leave rows pointing to no row ({found}); "
            "nothing was changed. Report this with the database file."
        )
