"""Following online lots until they close: which lots a crawl revisits, and when to stop.

A search shows a lot only while it ranks among the top results: lots drop out of them days
before they close, and the final price, the researchers' main figure, is only on the lot's
page after the close. So each crawl of a site also revisits the lots the database holds
without a result: open or upcoming, or without a status but with an end time (the page said
when, not yet how). Revisits go through the site's polite fetcher with the crawl's other
requests (one rate limit, one request cap). A lot is followed until its page gives a result
(sold, unsold, withdrawn) or until ``follow_days`` after its end; then the lot's latest state
is marked ``closed-unknown`` (result unknown), never guessed. Nothing here changes an
observation: those are what crawls saw.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, or_, select, update

from sites.loader import SiteDefinition
from tasks.crawlid import CrawlId
from tasks.schema import lots

UNFINISHED = ("upcoming", "open")
"""Statuses of a lot whose result is still to come."""


def _unfinished() -> Any:
    """Lots still to be followed: open or upcoming, or with an end but no status."""
    return or_(
        lots.c.status.in_(UNFINISHED),
        and_(lots.c.status.is_(None), lots.c.end_time.is_not(None)),
    )


def _cutoff(site: SiteDefinition, crawl: CrawlId) -> datetime:
    """The end before which a lot without a result is no longer followed."""
    return crawl.moment - timedelta(days=site.follow_days)


def lots_to_follow(conn: Connection, site: SiteDefinition, crawl: CrawlId) -> list[str]:
    """The lot page URLs ``crawl`` of ``site`` revisits, in lot key order (none with
    ``follow_days: 0``)."""
    if site.follow_days == 0:
        return []
    query = (
        select(lots.c.url)
        .where(
            lots.c.site == site.name,
            _unfinished(),
            or_(lots.c.end_time.is_(None), lots.c.end_time >= _cutoff(site, crawl)),
        )
        .order_by(lots.c.lot_key)
    )
    return list(conn.execute(query).scalars())


def close_unfollowed(conn: Connection, site: SiteDefinition, crawl: CrawlId) -> int:
    """Mark ``closed-unknown`` the lots of ``site`` whose end is more than ``follow_days``
    before ``crawl`` without a result; return how many. Runs in the site's load transaction."""
    if site.follow_days == 0:
        return 0
    result = conn.execute(
        update(lots)
        .where(lots.c.site == site.name, _unfinished(), lots.c.end_time < _cutoff(site, crawl))
        .values(status="closed-unknown", sold=None)
    )
    return int(result.rowcount or 0)
