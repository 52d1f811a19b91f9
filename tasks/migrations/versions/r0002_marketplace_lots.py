"""Marketplace lots: a lot number is optional, and an open lot's current bid has a column.

Online marketplaces (eBay, Catawiki) number no lots, and a lot whose bidding is open shows a
current bid, not a hammer price. ``lot_number`` becomes nullable in ``lots`` and
``observations``; both gain ``current_bid`` (in the lot's currency). Every existing row is
kept as it was. SQLite cannot alter a column, so there the two tables are copied into new
ones (Alembic's batch mode) inside the migration's one transaction.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tasks.schema import Money

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """lot_number nullable, current_bid added, in lots then observations."""
    for table in ("lots", "observations"):
        with op.batch_alter_table(table) as batch:
            batch.alter_column("lot_number", existing_type=sa.Integer(), nullable=True)
            batch.add_column(sa.Column("current_bid", Money()))


def downgrade() -> None:
    """Not supported: the pipeline never drops a column holding research data."""
    raise NotImplementedError("the pipeline does not downgrade databases")
