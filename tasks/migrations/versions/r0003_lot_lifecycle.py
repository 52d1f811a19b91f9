"""An online lot's life: its status, start and end, bids and prices; "sold" may be unknown.

A marketplace lot is observed while bidding is open, so "not sold" must be distinguishable
from "not known yet": ``sold`` becomes nullable in ``lots`` and ``observations``, and both
gain ``status``, ``start_time``, ``end_time``, ``bid_count``, ``starting_price``,
``buy_now_price`` and ``reserve_met`` (see tasks/store.py). Every existing row keeps its
values; the new columns are NULL on rows written before this revision (their pages were read
without them, and nothing is inferred for them). SQLite cannot alter a column, so there the
tables are copied (Alembic's batch mode) inside the migration's one transaction.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tasks.store import Money, UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """sold nullable, the lifecycle columns added, in lots then observations."""
    for table in ("lots", "observations"):
        with op.batch_alter_table(table) as batch:
            batch.alter_column("sold", existing_type=sa.Boolean(), nullable=True)
            batch.add_column(sa.Column("status", sa.String(16)))
            batch.add_column(sa.Column("start_time", UtcDateTime()))
            batch.add_column(sa.Column("end_time", UtcDateTime()))
            batch.add_column(sa.Column("bid_count", sa.Integer()))
            batch.add_column(sa.Column("starting_price", Money()))
            batch.add_column(sa.Column("buy_now_price", Money()))
            batch.add_column(sa.Column("reserve_met", sa.Boolean()))


def downgrade() -> None:
    """Not supported: the pipeline never drops a column holding research data."""
    raise NotImplementedError("the pipeline does not downgrade databases")
