"""Alembic's environment: run the revisions on the connection :mod:`tasks.migrate` passes in.

The caller holds the transaction, so all revisions commit together or not at all.
"""

from __future__ import annotations

from alembic import context

config = context.config
context.configure(
    connection=config.attributes["connection"],
    target_metadata=config.attributes["metadata"],
    render_as_batch=True,  # SQLite: alter columns by copying the table
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
