"""Dialect-aware upserts: one INSERT ... ON CONFLICT path for SQLite and PostgreSQL.

The loaders of lots (tasks/store.py) and of sellers (tasks/seller_rows.py) write through
these, so both backends see the same statements.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, Table, case
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement


def insert_for(conn: Connection, table: Table) -> sqlite.Insert | postgresql.Insert:
    """The dialect's INSERT, which has ON CONFLICT DO UPDATE."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def upsert(
    conn: Connection,
    table: Table,
    rows: list[dict[str, Any]],
    updates: Callable[[Any], Mapping[str, ColumnElement[Any]]],
) -> None:
    """Insert ``rows`` in one executemany; on a key conflict set ``updates(excluded)``."""
    if not rows:
        return
    stmt = insert_for(conn, table)
    keys = [c.name for c in table.primary_key.columns]
    conn.execute(
        stmt.on_conflict_do_update(index_elements=keys, set_=dict(updates(stmt.excluded))),
        rows,
    )


def earlier(current: ColumnElement[Any], new: ColumnElement[Any]) -> ColumnElement[Any]:
    """The earlier of a column's stored value and the new one (first_seen)."""
    return case((new < current, new), else_=current)


def later(current: ColumnElement[Any], new: ColumnElement[Any]) -> ColumnElement[Any]:
    """The later of a column's stored value and the new one (last_seen)."""
    return case((new > current, new), else_=current)
