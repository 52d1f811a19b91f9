"""Which crawl a backup, a processed file or an observation belongs to: a day, or a time of day.

Auction houses are crawled once a day, after their sale: the crawl is the day
("2026-03-14"). Marketplace lots stay open for days and their bids move, so the group crawls
them every six hours: each crawl is the day and its UTC start ("2026-03-14T0600Z"). The id
names the crawl's files (``warc/<day>/<site>-<id>.warc.gz``, ``processed/<id>/``) and keys its
observations, so four crawls a day keep four observations of a lot, and re-running a crawl
that completed (same id) reuses its backup and changes nothing. A day's crawl has the id of
the day alone, which is the layout and key every earlier release wrote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

_ID = re.compile(r"(\d{4}-\d{2}-\d{2})(?:T(\d{2})(\d{2})Z)?")
_AT = re.compile(r"([01]\d|2[0-3]):?([0-5]\d)")


@dataclass(frozen=True, order=True)
class CrawlId:
    """One crawl: its day and, for a timed crawl, its UTC time of day (minutes)."""

    day: date
    at: time | None = None

    @property
    def id(self) -> str:
        """``2026-03-14`` (the day's crawl) or ``2026-03-14T0600Z``."""
        if self.at is None:
            return self.day.isoformat()
        return f"{self.day.isoformat()}T{self.at:%H%M}Z"

    @property
    def moment(self) -> datetime:
        """When the crawl started, nominally, in UTC (a day's crawl: its midnight)."""
        return datetime.combine(self.day, self.at or time(0), UTC)

    @property
    def time(self) -> datetime | None:
        """A timed crawl's start in UTC (what observations record as crawl_time); None for
        a day's one crawl, which has no time of its own."""
        return None if self.at is None else self.moment

    def __str__(self) -> str:
        return self.id

    @classmethod
    def parse(cls, text: str) -> CrawlId:
        """``2026-03-14`` or ``2026-03-14T0600Z``; ValueError naming the expected form."""
        match = _ID.fullmatch(text.strip())
        if match is None:
            raise ValueError(
                f"crawl id {text!r}: expected a day (2026-03-14) or a day and UTC time "
                "(2026-03-14T0600Z)"
            )
        day = date.fromisoformat(match[1])
        if match[2] is None:
            return cls(day)
        return cls(day, _time(int(match[2]), int(match[3]), text))


def _time(hour: int, minute: int, text: str) -> time:
    try:
        return time(hour, minute)
    except ValueError:
        raise ValueError(f"crawl time in {text!r} is not a time of day") from None


def crawl_of(day: date | CrawlId) -> CrawlId:
    """``day`` as a crawl: a date is that day's (single) crawl."""
    return day if isinstance(day, CrawlId) else CrawlId(day)


def at_time(day: date, text: str) -> CrawlId:
    """The crawl of ``day`` at ``text`` ("06:00" or "0600", UTC); ValueError otherwise."""
    match = _AT.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"crawl time {text!r}: expected a UTC time of day such as 06:00")
    return CrawlId(day, time(int(match[1]), int(match[2])))


def scheduled(moment: datetime) -> CrawlId:
    """The crawl a run scheduled at ``moment`` (aware) is: its UTC day and minute."""
    utc = moment.astimezone(UTC)
    return CrawlId(utc.date(), time(utc.hour, utc.minute))
