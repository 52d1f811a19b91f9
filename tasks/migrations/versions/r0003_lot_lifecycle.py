"""An online lot's life (status, start and end, bids, prices; "sold" may be unknown), sellers.

A marketplace lot is observed while bidding is open, so "not sold" must be distinguishable
from "not known yet": ``sold`` becomes nullable in ``lots`` and ``observations``, and both
gain ``status``, ``start_time``, ``end_time``, ``bid_count``, ``starting_price``,
``buy_now_price``, ``reserve_met`` and ``seller_id`` (see tasks/schema.py); the tables
``sellers`` and ``seller_observations`` are new. Every existing row keeps its
values; the new columns are NULL on rows written before this revision (their pages were read
without them, and nothing is inferred for them). SQLite cannot alter a column, so there the
tables are copied (Alembic's batch mode) inside the migration's one transaction.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tasks.schema import Money, UtcDateTime


def _profile_columns() -> list[sa.Column[object]]:
    """The seller profile's columns, as revision 0003 creates them."""
    return [
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("name", sa.Text()),
        sa.Column("location", sa.Text()),
        sa.Column("rating", Money()),
        sa.Column("rating_scale", sa.Integer()),
        sa.Column("ratings_count", sa.Integer()),
        sa.Column("followers", sa.Integer()),
        sa.Column("member_since", sa.Date()),
        sa.Column("description", sa.Text()),
    ]


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """sold nullable, the lifecycle columns added, in lots then observations; the two seller
    tables created."""
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
            batch.add_column(sa.Column("seller_id", sa.String()))
    op.create_table(
        "sellers",
        sa.Column("site", sa.String(), primary_key=True),
        sa.Column("seller_id", sa.String(), primary_key=True),
        sa.Column("first_seen", sa.Date(), nullable=False),
        sa.Column("last_seen", sa.Date(), nullable=False),
        *_profile_columns(),
    )
    op.create_table(
        "seller_observations",
        sa.Column("site", sa.String(), primary_key=True),
        sa.Column("seller_id", sa.String(), primary_key=True),
        sa.Column("crawl_date", sa.Date(), primary_key=True),
        *_profile_columns(),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["site", "seller_id"], ["sellers.site", "sellers.seller_id"]),
    )


def downgrade() -> None:
    """Not supported: the pipeline never drops a column holding research data."""
    raise NotImplementedError("the pipeline does not downgrade databases")
