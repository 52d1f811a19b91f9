"""The schema of release 0.1: houses, sales, lots, observations and search_hits.

Frozen here as written by that release, so that a database of any later release can be
rebuilt step by step. Tables are created only where missing: a database of 0.1 has them all
(its earliest versions lacked ``search_hits``, which this adds).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tasks.schema import Money

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _fx_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("reference_currency", sa.String(3), nullable=False),
        sa.Column("sold_price_ref", Money()),
        sa.Column("estimate_low_ref", Money()),
        sa.Column("estimate_high_ref", Money()),
        sa.Column("rate_date", sa.Date()),
        sa.Column("currency_known", sa.Boolean(), nullable=False),
        sa.Column("fx_data_version", sa.String(), nullable=False),
    ]


def upgrade() -> None:
    """Create each table of release 0.1 that the database does not have yet."""
    op.create_table(
        "houses",
        sa.Column("site", sa.String(), primary_key=True),
        sa.Column("house", sa.String(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "sales",
        sa.Column("site", sa.String(), primary_key=True),
        sa.Column("sale_date", sa.Date(), primary_key=True),
        sa.Column("listing_url", sa.String(), nullable=False),
        sa.Column("first_seen", sa.Date(), nullable=False),
        sa.Column("last_seen", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["site"], ["houses.site"]),
        if_not_exists=True,
    )
    op.create_table(
        "lots",
        sa.Column("site", sa.String(), primary_key=True),
        sa.Column("lot_key", sa.String(), primary_key=True),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("lot_number", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("sale_date", sa.Date(), nullable=False),
        sa.Column("image_urls", sa.Text(), nullable=False, comment="JSON list of absolute URLs"),
        sa.Column("first_seen", sa.Date(), nullable=False),
        sa.Column("last_seen", sa.Date(), nullable=False),
        sa.Column("sold", sa.Boolean(), nullable=False),
        sa.Column("sold_price", Money()),
        sa.Column("estimate_low", Money()),
        sa.Column("estimate_high", Money()),
        *_fx_columns(),
        sa.ForeignKeyConstraint(["site", "sale_date"], ["sales.site", "sales.sale_date"]),
        if_not_exists=True,
    )
    op.create_table(
        "observations",
        sa.Column("site", sa.String(), primary_key=True),
        sa.Column("lot_key", sa.String(), primary_key=True),
        sa.Column("crawl_date", sa.Date(), primary_key=True),
        sa.Column("house", sa.String(), nullable=False),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("lot_number", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("sale_date", sa.Date(), nullable=False),
        sa.Column("image_urls", sa.Text(), nullable=False, comment="JSON list of absolute URLs"),
        sa.Column("sold", sa.Boolean(), nullable=False),
        sa.Column("sold_price", Money()),
        sa.Column("estimate_low", Money()),
        sa.Column("estimate_high", Money()),
        sa.Column("currency", sa.String(3), nullable=False),
        *_fx_columns(),
        sa.Column("raw", sa.Text(), nullable=False, comment="JSON object of the extracted strings"),
        sa.ForeignKeyConstraint(["site", "lot_key"], ["lots.site", "lots.lot_key"]),
        if_not_exists=True,
    )
    op.create_table(
        "search_hits",
        sa.Column("site", sa.String(), primary_key=True),
        sa.Column("lot_key", sa.String(), primary_key=True),
        sa.Column("crawl_date", sa.Date(), primary_key=True),
        sa.Column("query", sa.String(), primary_key=True),
        sa.ForeignKeyConstraint(
            ["site", "lot_key", "crawl_date"],
            ["observations.site", "observations.lot_key", "observations.crawl_date"],
        ),
        if_not_exists=True,
    )


def downgrade() -> None:
    """Not supported: the pipeline never drops a table holding research data."""
    raise NotImplementedError("the pipeline does not downgrade databases")
