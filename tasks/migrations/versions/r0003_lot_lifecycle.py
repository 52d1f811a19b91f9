"""Online lots followed over several crawls a day: their life, their sellers, crawl ids.

- ``lots`` and ``observations``: ``sold`` becomes nullable (open is not "not sold"), and
  both gain ``status``, ``start_time``, ``end_time``, ``bid_count``, ``starting_price``,
  ``buy_now_price``, ``reserve_met`` and ``seller_id`` (see tasks/schema.py).
- ``observations`` and ``search_hits`` are keyed by the crawl (``crawl_id``, the day or the
  day and UTC time, tasks/crawlid.py) instead of the day, so four crawls a day keep four
  observations; ``observations`` gains ``crawl_time``. A key cannot be altered in place, so
  both tables are rebuilt under a new name, filled from the old ones, and renamed.
- ``sellers`` and ``seller_observations`` are new.

Every existing row keeps its values. An existing observation's crawl id is its day (what a
day's crawl is called), its crawl_time and the new columns are NULL (its page was read
without them, and nothing is inferred). Everything runs in the migration's one transaction
(tasks/migrate.py), so an interrupted upgrade leaves the database as it was.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tasks.schema import Money, UtcDateTime

revision = "0003"
down_revision = "0002"
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


def _lifecycle_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("status", sa.String(16)),
        sa.Column("start_time", UtcDateTime()),
        sa.Column("end_time", UtcDateTime()),
        sa.Column("bid_count", sa.Integer()),
        sa.Column("starting_price", Money()),
        sa.Column("buy_now_price", Money()),
        sa.Column("reserve_met", sa.Boolean()),
        sa.Column("seller_id", sa.String()),
    ]


def _profile_columns() -> list[sa.Column[object]]:
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


# The columns observations had at revision 0002, copied as they are.
_OBSERVED_0002 = (
    "site", "lot_key", "crawl_date", "house", "url", "lot_number", "title", "description",
    "sale_date", "image_urls", "sold", "sold_price", "estimate_low", "estimate_high",
    "currency", "reference_currency", "sold_price_ref", "estimate_low_ref",
    "estimate_high_ref", "rate_date", "currency_known", "fx_data_version", "raw", "current_bid",
)  # fmt: skip


def _day_as_id() -> str:
    """SQL for a row's crawl id from its crawl_date: the day, as YYYY-MM-DD text."""
    if op.get_bind().dialect.name == "postgresql":
        return "to_char(crawl_date, 'YYYY-MM-DD')"
    return "crawl_date"  # SQLite keeps dates as that text already


def _rebuild_observations() -> None:
    op.create_table(
        "observations_new",
        sa.Column("site", sa.String(), primary_key=True),
        sa.Column("lot_key", sa.String(), primary_key=True),
        sa.Column("crawl_id", sa.String(), primary_key=True),
        sa.Column("crawl_date", sa.Date(), nullable=False),
        sa.Column("crawl_time", UtcDateTime()),
        sa.Column("house", sa.String(), nullable=False),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("lot_number", sa.Integer()),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("sale_date", sa.Date(), nullable=False),
        sa.Column("image_urls", sa.Text(), nullable=False),
        sa.Column("sold", sa.Boolean()),
        sa.Column("sold_price", Money()),
        sa.Column("estimate_low", Money()),
        sa.Column("estimate_high", Money()),
        sa.Column("currency", sa.String(3), nullable=False),
        *_fx_columns(),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("current_bid", Money()),
        *_lifecycle_columns(),
        sa.ForeignKeyConstraint(["site", "lot_key"], ["lots.site", "lots.lot_key"]),
    )
    columns = ", ".join(_OBSERVED_0002)
    op.execute(
        f"INSERT INTO observations_new ({columns}, crawl_id) "
        f"SELECT {columns}, {_day_as_id()} FROM observations"
    )
    op.create_table(
        "search_hits_new",
        sa.Column("site", sa.String(), primary_key=True),
        sa.Column("lot_key", sa.String(), primary_key=True),
        sa.Column("crawl_id", sa.String(), primary_key=True),
        sa.Column("query", sa.String(), primary_key=True),
        sa.Column("crawl_date", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site", "lot_key", "crawl_id"],
            ["observations_new.site", "observations_new.lot_key", "observations_new.crawl_id"],
        ),
    )
    op.execute(
        "INSERT INTO search_hits_new (site, lot_key, crawl_id, query, crawl_date) "
        f"SELECT site, lot_key, {_day_as_id()}, query, crawl_date FROM search_hits"
    )
    op.drop_table("search_hits")  # first: it refers to observations
    op.drop_table("observations")
    # The references follow a renamed table (PostgreSQL by identity; SQLite rewrites them).
    op.rename_table("observations_new", "observations")
    op.rename_table("search_hits_new", "search_hits")


def upgrade() -> None:
    """lots altered in place, observations and search_hits rebuilt, seller tables created."""
    with op.batch_alter_table("lots") as batch:
        batch.alter_column("sold", existing_type=sa.Boolean(), nullable=True)
        for column in _lifecycle_columns():
            batch.add_column(column)
    _rebuild_observations()
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
        sa.Column("crawl_id", sa.String(), primary_key=True),
        sa.Column("crawl_date", sa.Date(), nullable=False),
        sa.Column("crawl_time", UtcDateTime()),
        *_profile_columns(),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["site", "seller_id"], ["sellers.site", "sellers.seller_id"]),
    )


def downgrade() -> None:
    """Not supported: the pipeline never drops a column holding research data."""
    raise NotImplementedError("the pipeline does not downgrade databases")
